/* TLS for client connections (OpenSSL), non-blocking. */
#ifndef ROUTER_TLS_H
#define ROUTER_TLS_H

#include <stdbool.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* Loads a certificate chain and key (PEM). Returns a context or NULL after logging why. */
SSL_CTX *tls_ctx_new(const char *cert_file, const char *key_file);

/* One step of the server handshake. 0 done, -EAGAIN wait (for writability when
 * *want_write, else readability), -EPROTO failed. */
int tls_handshake(SSL *ssl, bool *want_write);

/* Reads plaintext: n > 0, 0 at end of stream, -EAGAIN (see *want_write), -EIO. */
ssize_t tls_read(SSL *ssl, void *buf, size_t len, bool *want_write);

/* Writes plaintext: n > 0, -EAGAIN (see *want_write), -EIO. */
ssize_t tls_write(SSL *ssl, const void *buf, size_t len, bool *want_write);

#endif
