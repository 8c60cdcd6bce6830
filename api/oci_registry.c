/* The registry client: one curl easy handle per pull, on the build thread. */
#include "oci_registry.h"

#include "apilog.h"
#include "oci_image.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_INSECURE 16
#define TOKEN_MAX (64 << 10)
#define ACCEPT_MANIFESTS                                                                  \
    "Accept: application/vnd.oci.image.index.v1+json, "                                  \
    "application/vnd.docker.distribution.manifest.list.v2+json, "                        \
    "application/vnd.oci.image.manifest.v1+json, "                                       \
    "application/vnd.docker.distribution.manifest.v2+json"

static char insecure[MAX_INSECURE][256];
static size_t n_insecure;

int oci_registry_allow_insecure(const char *host)
{
    if (!*host || strlen(host) >= sizeof(insecure[0]) || strpbrk(host, "/ @") ||
        n_insecure == MAX_INSECURE)
        return -1;
    snprintf(insecure[n_insecure++], sizeof(insecure[0]), "%s", host);
    return 0;
}

static bool is_insecure(const char *host)
{
    for (size_t i = 0; i < n_insecure; i++)
        if (!strcmp(insecure[i], host))
            return true;
    return false;
}

/* Where a response body goes: memory (fd < 0) or a file, hashed as it comes. */
struct sink {
    CURL *curl;
    int fd;
    EVP_MD_CTX *sha;
    char *buf;
    size_t len;
    int64_t max;
    bool too_big, write_failed;
    char err[1024];                 /* the body of a response other than 200 */
    size_t errlen;
    char auth[2048];                /* WWW-Authenticate */
    char ctype[160];                /* Content-Type */
};

struct reg {
    CURL *curl;
    struct oci_ref ref;
    char base[300];                 /* scheme://host */
    bool plain_http;
    char *basic;                    /* "Authorization: Basic ..." of the login, or NULL */
    char *bearer;                   /* "Authorization: Bearer TOKEN" once there is one */
    bool use_basic;                 /* the registry challenged with Basic: send basic */
    char **run;                     /* the image's run settings (oci_check_config) */
    char *msg;
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    long code = 0;

    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        size_t room = sizeof(s->err) - 1 - s->errlen, take = n < room ? n : room;
        memcpy(s->err + s->errlen, p, take);
        s->errlen += take;
        s->err[s->errlen] = '\0';
        return n;
    }
    if ((int64_t)n > s->max - (int64_t)s->len) {
        s->too_big = true;
        return 0;
    }
    if (s->fd >= 0) {
        for (size_t off = 0; off < n;) {
            ssize_t w = write(s->fd, p + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s->write_failed = true;
                return 0;
            }
            off += (size_t)w;
        }
        EVP_DigestUpdate(s->sha, p, n);
    } else {
        char *grown = realloc(s->buf, s->len + n + 1);
        if (!grown)
            return 0;
        s->buf = grown;
        memcpy(s->buf + s->len, p, n);
        s->buf[s->len + n] = '\0';
    }
    s->len += n;
    return n;
}

/* Copies header value into out when line is "name: value". */
static void take_header(const char *line, size_t n, const char *name, char *out, size_t len)
{
    size_t k = strlen(name);

    if (n <= k || strncasecmp(line, name, k))
        return;
    line += k;
    n -= k;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), line);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;

    if (n >= 5 && !strncmp(p, "HTTP/", 5)) {   /* a new response (redirects) */
        s->auth[0] = s->ctype[0] = '\0';
        s->errlen = 0;
        s->err[0] = '\0';
    }
    take_header(p, n, "www-authenticate:", s->auth, sizeof(s->auth));
    take_header(p, n, "content-type:", s->ctype, sizeof(s->ctype));
    return n;
}

/* free() of a string that held a secret, wiped first. */
static void free_secret(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

/* curl_slist_free_all, the copies of the headers (Authorization) wiped first. */
static void free_headers(struct curl_slist *hdrs)
{
    for (struct curl_slist *h = hdrs; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
}

/* The Authorization header line for the registry itself, or NULL. */
static const char *registry_authz(const struct reg *r)
{
    return r->use_basic ? r->basic : r->bearer;
}

/* GET url into s, with header line authz when not NULL (curl leaves it out
 * of redirects to another host); the HTTP status, or -1 with msg. */
static long http_get(struct reg *r, const char *url, const char *accept, const char *authz,
                     struct sink *s)
{
    const char *protos = r->plain_http ? "http,https" : "https";
    struct curl_slist *hdrs = NULL;
    CURLcode cc;
    long code = 0;

    curl_easy_reset(r->curl);
    if (accept)
        hdrs = curl_slist_append(hdrs, accept);
    if (authz)
        hdrs = curl_slist_append(hdrs, authz);
    s->curl = r->curl;
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "sbx-api");
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 1L);   /* blobs: to a CDN */
    curl_easy_setopt(r->curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, protos);
    curl_easy_setopt(r->curl, CURLOPT_REDIR_PROTOCOLS_STR, protos);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, s);
    cc = curl_easy_perform(r->curl);
    free_headers(hdrs);
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (s->too_big) {
        snprintf(r->msg, r->len, "a response larger than expected (%lld bytes)",
                 (long long)s->max);
        return -1;
    }
    if (s->write_failed) {
        snprintf(r->msg, r->len, "writing a download: %s", strerror(errno));
        return -1;
    }
    if (cc != CURLE_OK) {
        snprintf(r->msg, r->len, "%.120s: %s", url, curl_easy_strerror(cc));
        return -1;
    }
    return code;
}

/* The value of key in a challenge like: Bearer realm="...",service="..." */
static void challenge_param(const char *h, const char *key, char *out, size_t len)
{
    size_t k = strlen(key);
    const char *p = h;

    out[0] = '\0';
    while ((p = strcasestr(p, key))) {
        bool start = p == h || p[-1] == ' ' || p[-1] == ',';
        p += k;
        if (!start || *p != '=')
            continue;
        p++;
        if (*p == '"') {
            const char *end = strchr(++p, '"');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
        } else {
            snprintf(out, len, "%.*s", (int)strcspn(p, ","), p);
        }
        return;
    }
}

/* "HOST" or "HOST:PORT" of url into out; -1 when it is not a URL. plain
 * says whether its scheme is http. */
static int url_host(const char *url, char *out, size_t len, bool *plain)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0);       /* only when given */
        snprintf(out, len, "%.200s%s%.8s", host, port ? ":" : "", port ? port : "");
        *plain = !strcasecmp(scheme, "http");
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* Where the login may go as a token request: realm over HTTPS, or over plain
 * HTTP to a host named with --insecure-registry. Fills host (for messages). */
static int check_realm(struct reg *r, const char *realm, char *host, size_t len)
{
    bool plain;

    if (url_host(realm, host, len, &plain)) {
        snprintf(r->msg, r->len, "the registry's token realm is not a URL: %.100s", realm);
        return -1;
    }
    if (plain && !is_insecure(host)) {
        snprintf(r->msg, r->len, "the token realm %.100s is plain HTTP and %.100s is not an "
                 "insecure registry: the credentials are not sent there", realm, host);
        return -1;
    }
    return 0;
}

/* The bearer token for the challenge in auth (the flow of Docker Hub): asked
 * for with the login as Basic auth when there is one, anonymously if not. */
static int get_token(struct reg *r, const char *auth)
{
    char realm[1024], service[256], scope[600], url[2400], host[256];
    struct sink s = { .fd = -1, .max = TOKEN_MAX };
    char *esc_service, *esc_scope;
    json_t *doc = NULL;
    const char *tok;
    long code;
    int rc = -1;

    challenge_param(auth, "realm", realm, sizeof(realm));
    challenge_param(auth, "service", service, sizeof(service));
    challenge_param(auth, "scope", scope, sizeof(scope));
    if (r->basic && check_realm(r, realm, host, sizeof(host)))
        return -1;
    if (!scope[0])
        snprintf(scope, sizeof(scope), "repository:%s:pull", r->ref.repo);
    esc_service = curl_easy_escape(r->curl, service, 0);
    esc_scope = curl_easy_escape(r->curl, scope, 0);
    snprintf(url, sizeof(url), "%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?',
             esc_service ? esc_service : "", esc_scope ? esc_scope : "");
    curl_free(esc_service);
    curl_free(esc_scope);
    code = http_get(r, url, NULL, r->basic, &s);
    if (code < 0)
        goto out;
    if (r->basic && (code == 401 || code == 403)) {
        snprintf(r->msg, r->len, "registry credentials refused by %s: HTTP %ld", host, code);
        goto out;
    }
    if (code != 200) {
        snprintf(r->msg, r->len, "token request to %.100s: HTTP %ld", realm, code);
        goto out;
    }
    doc = oci_json(s.buf ? s.buf : "", s.len, "the token response", r->msg, r->len);
    tok = json_string_value(json_object_get(doc, "token"));
    if (!tok)
        tok = json_string_value(json_object_get(doc, "access_token"));
    if (!tok || !*tok || strpbrk(tok, "\r\n")) {
        if (doc)
            snprintf(r->msg, r->len, "the token response holds no token");
        goto out;
    }
    free_secret(r->bearer);
    if (asprintf(&r->bearer, "Authorization: Bearer %s", tok) < 0) {
        r->bearer = NULL;
        snprintf(r->msg, r->len, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    if (s.buf)
        explicit_bzero(s.buf, s.len);
    free(s.buf);
    return rc;
}

/* Answers the registry's 401 challenge auth: a bearer token, or the login as
 * Basic auth from now on. Returns 0 (ask again), or -1 with msg. */
static int answer_challenge(struct reg *r, const char *auth)
{
    bool basic = !strncasecmp(auth, "Basic", 5) && (auth[5] == ' ' || !auth[5]);

    if (!strncasecmp(auth, "Bearer ", 7))
        return get_token(r, auth);
    if (basic && !r->basic) {
        snprintf(r->msg, r->len, "the registry %.200s wants a username and password (%.60s), "
                 "none were given (registry_auth)", r->ref.registry, auth);
        return -1;
    }
    if (basic && r->use_basic) {
        snprintf(r->msg, r->len, "registry credentials refused by %.200s: HTTP 401",
                 r->ref.registry);
        return -1;
    }
    if (basic) {
        r->use_basic = true;
        return 0;
    }
    snprintf(r->msg, r->len, "the registry wants credentials (%.40s), none are supported",
             auth[0] ? auth : "no challenge");
    return -1;
}

/* "CODE: message" of a registry error body, else its start. */
static void describe_error(const char *body, char *out, size_t len)
{
    json_t *doc = json_loads(body, 0, NULL);
    json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));

    if (code || m)
        snprintf(out, len, ": %.40s%s%.100s", code ? code : "", code && m ? " " : "",
                 m ? m : "");
    else
        out[0] = '\0';
    json_decref(doc);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
}

/* GET BASE/v2/REPO/KIND/NAME into s, with a token when the registry asks. */
static int reg_get(struct reg *r, const char *kind, const char *name, const char *accept,
                   struct sink *s)
{
    char url[1024], why[200];
    long code;

    snprintf(url, sizeof(url), "%s/v2/%s/%s/%s", r->base, r->ref.repo, kind, name);
    code = http_get(r, url, accept, registry_authz(r), s);
    /* No token yet, or it expired (Docker Hub's last 5 minutes): one new one;
     * or the login, for a registry that wants Basic auth. */
    if (code == 401) {
        if (answer_challenge(r, s->auth))
            return -1;
        code = http_get(r, url, accept, registry_authz(r), s);
    }
    if (code == 401 && r->use_basic) {
        snprintf(r->msg, r->len, "registry credentials refused by %.200s: HTTP 401",
                 r->ref.registry);
        return -1;
    }
    if (code < 0)
        return -1;
    if (code == 200)
        return 0;
    describe_error(s->err, why, sizeof(why));
    /* "manifest NAME", "blob DIGEST" */
    snprintf(r->msg, r->len, "%.*s %.80s: HTTP %ld%s", (int)strlen(kind) - 1, kind, name, code,
             why);
    return -1;
}

/* A manifest or index by tag or digest (checked against want when given). */
static json_t *get_manifest(struct reg *r, const char *name, const struct oci_desc *want,
                            enum oci_doc *kind)
{
    struct sink s = { .fd = -1, .max = OCI_DOC_MAX };
    char got[OCI_DIGEST_LEN];
    json_t *doc = NULL;

    if (reg_get(r, "manifests", name, ACCEPT_MANIFESTS, &s))
        goto out;
    oci_sha256(s.buf ? s.buf : "", s.len, got);
    if (want && oci_check_blob(want, s.buf ? s.buf : "", s.len, "manifest", r->msg, r->len))
        goto out;
    if (!want && oci_digest_valid(name) && strcmp(got, name)) {
        snprintf(r->msg, r->len, "manifest digest mismatch: asked for %.23s..., got %.23s...",
                 name, got);
        goto out;
    }
    doc = oci_json(s.buf ? s.buf : "", s.len, "the manifest", r->msg, r->len);
    if (doc && oci_doc_kind(doc, s.ctype, kind, r->msg, r->len)) {
        json_decref(doc);
        doc = NULL;
    }
out:
    free(s.buf);
    return doc;
}

static int get_config(struct reg *r, const struct oci_desc *d)
{
    struct sink s = { .fd = -1, .max = OCI_DOC_MAX };
    int rc = -1;
    json_t *doc = NULL;

    if (d->size > OCI_DOC_MAX) {
        snprintf(r->msg, r->len, "the image config is larger than 4 MiB");
        return -1;
    }
    if (reg_get(r, "blobs", d->digest, NULL, &s) == 0 &&
        oci_check_blob(d, s.buf ? s.buf : "", s.len, "config", r->msg, r->len) == 0 &&
        (doc = oci_json(s.buf ? s.buf : "", s.len, "the image config", r->msg, r->len)))
        rc = oci_check_config(doc, r->run, r->msg, r->len);
    json_decref(doc);
    free(s.buf);
    return rc;
}

/* Downloads layer d to path, checking size and digest as it streams. */
static int get_layer(struct reg *r, const struct oci_desc *d, const char *path)
{
    struct sink s = { .fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
                      .max = d->size, .sha = EVP_MD_CTX_new() };
    char got[OCI_DIGEST_LEN];
    int rc = -1;

    if (s.fd < 0 || !s.sha) {
        snprintf(r->msg, r->len, "%.200s: %s", path, strerror(errno));
        goto out;
    }
    EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL);
    if (reg_get(r, "blobs", d->digest, NULL, &s))
        goto out;
    oci_sha256_final(s.sha, got);
    rc = oci_check_digest(d, got, (int64_t)s.len, "layer", r->msg, r->len);
out:
    if (s.fd >= 0)
        close(s.fd);
    EVP_MD_CTX_free(s.sha);
    return rc;
}

/* The image manifest of the reference (through an index when there is one). */
static int resolve(struct reg *r, struct oci_manifest *m)
{
    const char *name = r->ref.digest[0] ? r->ref.digest : r->ref.tag;
    struct oci_desc pick;
    enum oci_doc kind;
    json_t *doc = get_manifest(r, name, NULL, &kind);
    int rc = -1;

    if (!doc)
        return -1;
    if (kind == OCI_DOC_INDEX) {
        if (oci_pick_platform(doc, &pick, r->msg, r->len))
            goto out;
        json_decref(doc);
        doc = get_manifest(r, pick.digest, &pick, &kind);
        if (!doc)
            return -1;
        if (kind != OCI_DOC_MANIFEST) {
            snprintf(r->msg, r->len, "the index points at another index");
            goto out;
        }
    }
    rc = oci_parse_manifest(doc, m, r->msg, r->len);
out:
    json_decref(doc);
    return rc;
}

static int pull_layers(struct reg *r, const struct oci_manifest *m, const char *work,
                       const char *root, struct oci_budget *budget)
{
    char path[1200];
    int64_t total = 0;

    for (size_t i = 0; i < m->n_layers && total <= budget->limit; i++)
        total += m->layers[i].size < budget->limit ? m->layers[i].size : budget->limit + 1;
    if (total > budget->limit) {
        snprintf(r->msg, r->len, "the image's layers (%lld bytes compressed) are larger "
                 "than the snapshot's capacity", (long long)total);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/layer", work);
    for (size_t i = 0; i < m->n_layers; i++) {
        int rc, fd = -1;

        log_info("pulling %s/%s: layer %zu of %zu (%lld bytes)", r->ref.registry, r->ref.repo,
                 i + 1, m->n_layers, (long long)m->layers[i].size);
        rc = get_layer(r, &m->layers[i], path);
        if (rc == 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            snprintf(r->msg, r->len, "%.200s: %s", path, strerror(errno));
            rc = -1;
        }
        if (rc == 0 && oci_apply_layer(root, fd, true, budget, r->msg, r->len))
            rc = -1;
        if (fd >= 0)
            close(fd);
        unlink(path);
        if (rc)
            return -1;
    }
    return 0;
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* "Authorization: Basic base64(USER:PASSWORD)" of auth into r->basic. */
static int make_basic(struct reg *r, const struct oci_registry_auth *auth)
{
    static const char prefix[] = "Authorization: Basic ";
    size_t n = strlen(auth->username) + 1 + strlen(auth->password);
    char *plain = malloc(n + 1), *line = malloc(sizeof(prefix) + 4 * ((n + 2) / 3));
    int rc = -1;

    if (!plain || !line) {
        snprintf(r->msg, r->len, "out of memory");
        goto out;
    }
    snprintf(plain, n + 1, "%s:%s", auth->username, auth->password);
    memcpy(line, prefix, sizeof(prefix) - 1);
    EVP_EncodeBlock((unsigned char *)line + sizeof(prefix) - 1, (unsigned char *)plain, (int)n);
    r->basic = line;
    line = NULL;
    rc = 0;
out:
    free_secret(plain);
    free(line);
    return rc;
}

int oci_registry_pull(const char *refstr, const struct oci_registry_auth *auth,
                      const char *work, const char *root, struct oci_budget *budget, char **run,
                      char *msg, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct reg r = { .run = run, .msg = msg, .len = len };
    struct oci_manifest *m = NULL;
    int rc = -1;

    if (oci_ref_parse(refstr, &r.ref, msg, len))
        return -1;
    pthread_once(&once, curl_init_once);
    r.plain_http = is_insecure(r.ref.registry);
    snprintf(r.base, sizeof(r.base), "%s://%s", r.plain_http ? "http" : "https",
             r.ref.registry);
    r.curl = curl_easy_init();
    m = malloc(sizeof(*m));
    if (!r.curl || !m) {
        snprintf(msg, len, "out of memory");
        goto out;
    }
    if (auth && make_basic(&r, auth))
        goto out;
    if (resolve(&r, m) || get_config(&r, &m->config) ||
        pull_layers(&r, m, work, root, budget))
        goto out;
    rc = 0;
out:
    free(m);
    free_secret(r.basic);
    free_secret(r.bearer);
    if (r.curl)
        curl_easy_cleanup(r.curl);
    return rc;
}
