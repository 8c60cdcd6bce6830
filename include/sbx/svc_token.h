/* Service tokens: short-lived credentials for one sandbox port, minted by sbx-api
 * (and by `sbx-router mint-token` for tests) and checked by sbx-router.
 *
 * Wire format (ASCII, safe in a URL query, a cookie value and an HTTP header):
 *
 *     v1.<sandbox>.<port>.<expires>.<mac>
 *
 *   sandbox  the sandbox name: 1..63 of [a-z0-9-], first and last not '-', no "--"
 *   port     decimal 1..65535, no leading zero
 *   expires  Unix time (seconds, decimal, no leading zero) after which the token is dead
 *   mac      base64url without padding (43 chars) of
 *            HMAC-SHA256(key, "sbx-svc-token-v1\n<sandbox>\n<port>\n<expires>")
 *
 * The key is the whole content of a key file shared by sbx-api and sbx-router
 * (32..1024 bytes, e.g. `head -c 32 /dev/urandom`). Lifetimes are at most
 * SVC_TOKEN_MAX_TTL: a token claiming to live longer is refused even if signed.
 */
#ifndef SBX_SVC_TOKEN_H
#define SBX_SVC_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define SVC_TOKEN_DEFAULT_TTL 600     /* seconds */
#define SVC_TOKEN_MAX_TTL     86400   /* seconds */
#define SVC_TOKEN_MAX_LEN     160     /* longest token, without NUL */
#define SVC_TOKEN_SANDBOX_MAX 63
#define SVC_TOKEN_KEY_MIN     32
#define SVC_TOKEN_KEY_MAX     1024

struct svc_token_key {
    unsigned char bytes[SVC_TOKEN_KEY_MAX];
    size_t len;
};

enum svc_token_verdict {
    SVC_TOKEN_OK = 0,
    SVC_TOKEN_MALFORMED,     /* not a v1 token */
    SVC_TOKEN_BAD_SIGNATURE, /* well formed, MAC does not match this key */
    SVC_TOKEN_EXPIRED,       /* genuine, but past its expiry */
    SVC_TOKEN_TOO_LONG,      /* genuine, but expires more than SVC_TOKEN_MAX_TTL from now */
    SVC_TOKEN_WRONG_TARGET,  /* genuine and live, but for another sandbox or port */
};

/* Reads the key file at `path` into `key`. Returns 0, or -errno (-EINVAL when the file
 * is shorter than SVC_TOKEN_KEY_MIN or longer than SVC_TOKEN_KEY_MAX bytes). */
int svc_token_key_load(const char *path, struct svc_token_key *key);

/* Returns 1 if `name` (len bytes, not NUL terminated) is a valid sandbox name, else 0. */
int svc_token_sandbox_valid(const char *name, size_t len);

/* Writes the token for `sandbox` (NUL terminated) and `port` expiring at `expires`
 * (Unix seconds) to `out` (NUL terminated). Returns its length, -EINVAL for a bad
 * sandbox name, port or expiry, -ENOSPC if out_size is below SVC_TOKEN_MAX_LEN + 1.
 * The caller bounds the lifetime (see SVC_TOKEN_MAX_TTL). */
int svc_token_mint(const struct svc_token_key *key, const char *sandbox, unsigned port,
                   int64_t expires, char *out, size_t out_size);

/* Checks `token` (len bytes, untrusted, not NUL terminated) against `key` at time `now`
 * for `sandbox` (NUL terminated) and `port`. Checks run in the order of the verdicts
 * above, so EXPIRED and WRONG_TARGET are only said of genuine tokens. When
 * `expires` is not NULL and the token is genuine, *expires gets its expiry. */
enum svc_token_verdict svc_token_verify(const struct svc_token_key *key, const char *token,
                                        size_t len, const char *sandbox, unsigned port,
                                        int64_t now, int64_t *expires);

/* Short English name of a verdict, for logs. */
const char *svc_token_verdict_str(enum svc_token_verdict v);

#endif
