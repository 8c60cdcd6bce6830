/* TLS for client connections (see tls.h). */
#include <errno.h>

#include <openssl/err.h>

#include "log.h"
#include "tls.h"

SSL_CTX *tls_ctx_new(const char *cert_file, const char *key_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Writes may be retried from a moved buffer and may complete partially. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;
fail:
    log_error("tls: cannot load %s / %s: %s", cert_file, key_file,
              ERR_error_string(ERR_get_error(), NULL));
    SSL_CTX_free(ctx);
    return NULL;
}

/* Maps an SSL_get_error result: -EAGAIN with *want_write set, or the given failure. */
static int map_error(SSL *ssl, int ret, bool *want_write, int failure)
{
    int err = SSL_get_error(ssl, ret);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ) {
        *want_write = false;
        return -EAGAIN;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        *want_write = true;
        return -EAGAIN;
    }
    return failure;
}

int tls_handshake(SSL *ssl, bool *want_write)
{
    int ret = SSL_accept(ssl);
    return ret == 1 ? 0 : map_error(ssl, ret, want_write, -EPROTO);
}

ssize_t tls_read(SSL *ssl, void *buf, size_t len, bool *want_write)
{
    size_t n = 0;
    int ret = SSL_read_ex(ssl, buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    if (SSL_get_error(ssl, ret) == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return 0;
    }
    return map_error(ssl, ret, want_write, -EIO);
}

ssize_t tls_write(SSL *ssl, const void *buf, size_t len, bool *want_write)
{
    size_t n = 0;
    int ret = SSL_write_ex(ssl, buf, len, &n);
    return ret == 1 ? (ssize_t)n : map_error(ssl, ret, want_write, -EIO);
}
