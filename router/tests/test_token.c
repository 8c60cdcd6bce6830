/* Service tokens and service URL pieces: mint/verify round trips, every refusal,
 * Host parsing, query decoding, redirect targets and cookies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../route.h"
#include "check.h"
#include "sbx/svc_token.h"

static struct http_span span(const char *s)
{
    return (struct http_span){s, strlen(s)};
}

static void test_tokens(void)
{
    struct svc_token_key key = {.len = 32}, other = {.len = 32};
    memset(key.bytes, 7, 32);
    memset(other.bytes, 8, 32);
    char tok[SVC_TOKEN_MAX_LEN + 1];
    int64_t now = 1800000000, exp = 0;
    int n = svc_token_mint(&key, "box-1", 8080, now + 600, tok, sizeof(tok));
    CHECK(n > 0 && (size_t)n == strlen(tok));
    CHECK(strncmp(tok, "v1.box-1.8080.1800000600.", 25) == 0);
    CHECK(svc_token_verify(&key, tok, (size_t)n, "box-1", 8080, now, &exp) == SVC_TOKEN_OK);
    CHECK(exp == now + 600);
    CHECK(svc_token_verify(&key, tok, (size_t)n, "box-1", 8080, now + 600, NULL) == SVC_TOKEN_EXPIRED);
    CHECK(svc_token_verify(&key, tok, (size_t)n, "box-1", 8081, now, NULL) == SVC_TOKEN_WRONG_TARGET);
    CHECK(svc_token_verify(&key, tok, (size_t)n, "box-2", 8080, now, NULL) == SVC_TOKEN_WRONG_TARGET);
    CHECK(svc_token_verify(&other, tok, (size_t)n, "box-1", 8080, now, NULL) == SVC_TOKEN_BAD_SIGNATURE);
    CHECK(svc_token_verify(&key, tok, (size_t)n - 1, "box-1", 8080, now, NULL) == SVC_TOKEN_MALFORMED);
    CHECK(svc_token_verify(&key, tok, 0, "box-1", 8080, now, NULL) == SVC_TOKEN_MALFORMED);
    /* Each byte changed breaks it. */
    for (int i = 0; i < n; i++) {
        char bad[SVC_TOKEN_MAX_LEN + 1];
        memcpy(bad, tok, (size_t)n);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        CHECK(svc_token_verify(&key, bad, (size_t)n, "box-1", 8080, now, NULL) != SVC_TOKEN_OK);
    }
    n = svc_token_mint(&key, "box-1", 8080, now + 3 * 86400, tok, sizeof(tok));
    CHECK(svc_token_verify(&key, tok, (size_t)n, "box-1", 8080, now, NULL) == SVC_TOKEN_TOO_LONG);
    CHECK(svc_token_mint(&key, "Box", 80, now, tok, sizeof(tok)) == -EINVAL);
    CHECK(svc_token_mint(&key, "a--b", 80, now, tok, sizeof(tok)) == -EINVAL);
    CHECK(svc_token_mint(&key, "box", 0, now, tok, sizeof(tok)) == -EINVAL);
    CHECK(svc_token_mint(&key, "box", 65536, now, tok, sizeof(tok)) == -EINVAL);
    CHECK(svc_token_mint(&key, "box", 80, now, tok, 10) == -ENOSPC);
    char long_name[80];
    memset(long_name, 'a', 63);
    long_name[63] = '\0';
    n = svc_token_mint(&key, long_name, 65535, 999999999999999999LL, tok, sizeof(tok));
    CHECK(n > 0 && n <= SVC_TOKEN_MAX_LEN);
    long_name[63] = 'a';
    long_name[64] = '\0';
    CHECK(svc_token_mint(&key, long_name, 80, now, tok, sizeof(tok)) == -EINVAL);
    CHECK(svc_token_verify(&key, "v1.box.080.1800000600.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                           66, "box", 80, now, NULL) == SVC_TOKEN_MALFORMED);
}

static void test_key_file(void)
{
    char path[] = "/tmp/sbx-key-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    struct svc_token_key key;
    CHECK(write(fd, "short", 5) == 5);
    CHECK(svc_token_key_load(path, &key) == -EINVAL);
    char big[2000];
    memset(big, 'k', sizeof(big));
    CHECK(write(fd, big, 60) == 60);
    CHECK(svc_token_key_load(path, &key) == 0 && key.len == 65);
    CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
    CHECK(svc_token_key_load(path, &key) == -EINVAL);
    CHECK(svc_token_key_load("/nonexistent/key", &key) == -ENOENT);
    close(fd);
    unlink(path);
}

static void test_hosts(void)
{
    struct route_target t;
    CHECK(route_parse_host(span("box1--8080.sbx.example.com"), "sbx.example.com", &t) == 0);
    CHECK(strcmp(t.sandbox, "box1") == 0 && t.port == 8080);
    CHECK(route_parse_host(span("My-Box--443.SBX.example.com.:8443"), "sbx.example.com", &t) == 0);
    CHECK(strcmp(t.sandbox, "my-box") == 0 && t.port == 443);
    CHECK(route_parse_host(span("box1--8080.localhost"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1--8080.evil.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1--8080.sbx.example.com.evil"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1-8080.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1--0.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1--080.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box1--65536.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("--80.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("a--b--80.sbx.example.com"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("[::1]:80"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span("box--80.sbx.example.com:x"), "sbx.example.com", &t) < 0);
    CHECK(route_parse_host(span(""), "sbx.example.com", &t) < 0);
}

static void test_query_and_next(void)
{
    char out[64];
    struct http_span url = span("/_svc/auth?x=1&token=ab%2Ecd&next=%2Fa%3Fb%3D1#frag");
    CHECK(route_path_is(url, "/_svc/auth"));
    CHECK(!route_path_is(span("/_svc/auth2"), "/_svc/auth"));
    CHECK(route_query_param(url, "token", out, sizeof(out)) == 5 && strcmp(out, "ab.cd") == 0);
    CHECK(route_query_param(url, "next", out, sizeof(out)) == 6 && strcmp(out, "/a?b=1") == 0);
    CHECK(route_query_param(url, "nope", out, sizeof(out)) == -1);
    CHECK(route_query_param(span("/?t=%zz"), "t", out, sizeof(out)) == -2);
    CHECK(route_query_param(span("/?t=%4"), "t", out, sizeof(out)) == -2);
    CHECK(route_query_param(span("/?t=%00"), "t", out, sizeof(out)) == -2);
    CHECK(route_query_param(span("/?t=aaaaaaaa"), "t", out, 4) == -2);
    CHECK(route_next_ok("/", 1));
    CHECK(route_next_ok("/app/x?y=1#z", 12));
    CHECK(!route_next_ok("//evil", 6));
    CHECK(!route_next_ok("/\\evil", 6));
    CHECK(!route_next_ok("https://evil", 12));
    CHECK(!route_next_ok("/a\r\nSet-Cookie: x", 17));
    CHECK(!route_next_ok("/a b", 4));
    CHECK(!route_next_ok("", 0));
}

static void test_cookies(void)
{
    struct http_span v;
    char out[128];
    struct http_span h = span("a=1; sbx_svc=tok; b=\"q\"");
    size_t pos = 0;
    CHECK(route_cookie_find(h, "sbx_svc", &pos, &v) && v.len == 3 && memcmp(v.p, "tok", 3) == 0);
    CHECK(!route_cookie_find(h, "sbx_svc", &pos, &v));
    CHECK(!route_cookie_find(h, "sbx_svc", &pos, &v));
    pos = 0;
    CHECK(route_cookie_find(h, "b", &pos, &v) && v.len == 1 && v.p[0] == 'q');
    pos = 0;
    CHECK(!route_cookie_find(h, "sbx", &pos, &v));
    struct http_span two = span("sbx_svc=one; x=1; sbx_svc=two");
    pos = 0;
    CHECK(route_cookie_find(two, "sbx_svc", &pos, &v) && v.len == 3 && memcmp(v.p, "one", 3) == 0);
    CHECK(route_cookie_find(two, "sbx_svc", &pos, &v) && v.len == 3 && memcmp(v.p, "two", 3) == 0);
    CHECK(!route_cookie_find(two, "sbx_svc", &pos, &v));
    size_t n = route_cookie_strip(h, "sbx_svc", out, sizeof(out));
    CHECK(n == 10 && memcmp(out, "a=1; b=\"q\"", 10) == 0);
    CHECK(route_cookie_strip(span("sbx_svc=1;sbx_svc=2"), "sbx_svc", out, sizeof(out)) == 0);
    CHECK(route_cookie_strip(span(";;a=1;b"), "sbx_svc", out, sizeof(out)) == 6);
}

int main(void)
{
    test_tokens();
    test_key_file();
    test_hosts();
    test_query_and_next();
    test_cookies();
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    else
        printf("all passed\n");
    return failures ? 1 : 0;
}
