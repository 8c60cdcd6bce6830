/* Service tokens: mint and verify (format in include/sbx/svc_token.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sbx/svc_token.h"

#define MAC_LEN     32
#define MAC_B64_LEN 43
#define DOMAIN_TAG  "sbx-svc-token-v1\n"

int svc_token_key_load(const char *path, struct svc_token_key *key)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    int rc = 0;
    for (;;) {
        unsigned char extra;
        unsigned char *dst = len < sizeof(key->bytes) ? key->bytes + len : &extra;
        size_t room = len < sizeof(key->bytes) ? sizeof(key->bytes) - len : 1;
        ssize_t n = read(fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > sizeof(key->bytes)) {
            rc = -EINVAL;
            goto out;
        }
    }
    if (len < SVC_TOKEN_KEY_MIN) {
        rc = -EINVAL;
        goto out;
    }
    key->len = len;
out:
    close(fd);
    return rc;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int svc_token_sandbox_valid(const char *name, size_t len)
{
    if (len == 0 || len > SVC_TOKEN_SANDBOX_MAX)
        return 0;
    if (name[0] == '-' || name[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_name_char(name[i]))
            return 0;
        if (i > 0 && name[i] == '-' && name[i - 1] == '-')
            return 0;
    }
    return 1;
}

static void b64url(const unsigned char *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (left > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        if (left > 2)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

/* MAC over the canonical fields, written as base64url to out (MAC_B64_LEN + 1 bytes). */
static int compute_mac(const struct svc_token_key *key, const char *sandbox, size_t sandbox_len,
                       unsigned port, int64_t expires, char *out)
{
    char msg[sizeof(DOMAIN_TAG) + SVC_TOKEN_SANDBOX_MAX + 40];
    int n = snprintf(msg, sizeof(msg), DOMAIN_TAG "%.*s\n%u\n%lld", (int)sandbox_len, sandbox,
                     port, (long long)expires);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EINVAL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), key->bytes, (int)key->len, (const unsigned char *)msg, (size_t)n,
              mac, &mac_len) || mac_len != MAC_LEN)
        return -EIO;
    b64url(mac, MAC_LEN, out);
    return 0;
}

int svc_token_mint(const struct svc_token_key *key, const char *sandbox, unsigned port,
                   int64_t expires, char *out, size_t out_size)
{
    size_t sandbox_len = strlen(sandbox);
    if (!svc_token_sandbox_valid(sandbox, sandbox_len) || port == 0 || port > 65535 || expires <= 0)
        return -EINVAL;
    if (out_size < SVC_TOKEN_MAX_LEN + 1)
        return -ENOSPC;
    char mac[MAC_B64_LEN + 1];
    int rc = compute_mac(key, sandbox, sandbox_len, port, expires, mac);
    if (rc < 0)
        return rc;
    int n = snprintf(out, out_size, "v1.%s.%u.%lld.%s", sandbox, port, (long long)expires, mac);
    if (n < 0 || (size_t)n > SVC_TOKEN_MAX_LEN)
        return -ENOSPC;
    return n;
}

/* Parses a decimal without sign or leading zero, at most max_digits long. */
static int parse_decimal(const char *s, size_t len, size_t max_digits, int64_t *out)
{
    if (len == 0 || len > max_digits || (s[0] == '0'))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

struct token_fields {
    const char *sandbox;
    size_t sandbox_len;
    int64_t port;
    int64_t expires;
    const char *mac;
};

/* Splits "v1.<sandbox>.<port>.<expires>.<mac>"; returns 0 or -1. */
static int split_token(const char *t, size_t len, struct token_fields *f)
{
    const char *field[5];
    size_t flen[5];
    size_t start = 0, nf = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && t[i] != '.')
            continue;
        if (nf == 5)
            return -1;
        field[nf] = t + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 5 || flen[0] != 2 || memcmp(field[0], "v1", 2) != 0)
        return -1;
    if (!svc_token_sandbox_valid(field[1], flen[1]))
        return -1;
    if (parse_decimal(field[2], flen[2], 5, &f->port) < 0 || f->port > 65535)
        return -1;
    if (parse_decimal(field[3], flen[3], 18, &f->expires) < 0)
        return -1;
    if (flen[4] != MAC_B64_LEN)
        return -1;
    f->sandbox = field[1];
    f->sandbox_len = flen[1];
    f->mac = field[4];
    return 0;
}

enum svc_token_verdict svc_token_verify(const struct svc_token_key *key, const char *token,
                                        size_t len, const char *sandbox, unsigned port,
                                        int64_t now, int64_t *expires)
{
    struct token_fields f;
    if (len > SVC_TOKEN_MAX_LEN || split_token(token, len, &f) < 0)
        return SVC_TOKEN_MALFORMED;
    char mac[MAC_B64_LEN + 1];
    if (compute_mac(key, f.sandbox, f.sandbox_len, (unsigned)f.port, f.expires, mac) < 0)
        return SVC_TOKEN_MALFORMED;
    if (CRYPTO_memcmp(mac, f.mac, MAC_B64_LEN) != 0)
        return SVC_TOKEN_BAD_SIGNATURE;
    if (expires)
        *expires = f.expires;
    if (f.expires <= now)
        return SVC_TOKEN_EXPIRED;
    if (f.expires - now > SVC_TOKEN_MAX_TTL + 60) /* a minute of clock skew */
        return SVC_TOKEN_TOO_LONG;
    if (strlen(sandbox) != f.sandbox_len || memcmp(sandbox, f.sandbox, f.sandbox_len) != 0 ||
        port != (unsigned)f.port)
        return SVC_TOKEN_WRONG_TARGET;
    return SVC_TOKEN_OK;
}

const char *svc_token_verdict_str(enum svc_token_verdict v)
{
    switch (v) {
    case SVC_TOKEN_OK: return "ok";
    case SVC_TOKEN_MALFORMED: return "malformed";
    case SVC_TOKEN_BAD_SIGNATURE: return "bad signature";
    case SVC_TOKEN_EXPIRED: return "expired";
    case SVC_TOKEN_TOO_LONG: return "lifetime too long";
    case SVC_TOKEN_WRONG_TARGET: return "wrong sandbox or port";
    }
    return "?";
}
