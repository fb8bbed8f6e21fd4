/* postroom: ISC license, see LICENSE. */
#ifndef TLS_CLIENT_H
#define TLS_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The client side of TLS (smtp-send's STARTTLS and implicit TLS), over OpenSSL. The socket is
 * non-blocking; every call takes a deadline (deadline.h) and fails with ETIMEDOUT when it
 * passes. Only this file's .c knows OpenSSL: smtp-recv, which must not link it, never pulls
 * it in from the library.
 */

#define TLS_WHY_MAX 256

struct tls_client {
	void *ctx;		/* SSL_CTX */
	void *ssl;		/* SSL */
	char protocol[32];	/* "TLSv1.3" */
	char cipher[64];	/* "TLS_AES_256_GCM_SHA384" */
	int verified;		/* the chain verified and names the peer */
	char why[TLS_WHY_MAX];	/* why the handshake failed, or why the peer is not verified */
};
#define TLS_CLIENT_ZERO { 0, 0, "", "", 0, "" }

struct tls_client_config {
	const char *cafile;	/* trust anchors; 0: the system's store */
	const char *name;	/* the name (or numeric address) the certificate must match */
	const char *sni;	/* the server name to send, or 0 (never an address) */
};

/*
 * Handshake on fd (TLS 1.2 or 1.3). Returns 1 (t->protocol, t->cipher, t->verified set; when
 * not verified, t->why says why), or 0 with t->why set and errno set (EPROTO for a TLS failure).
 * Verification never fails the handshake: the caller decides what an unverified peer means.
 */
int tls_client_start(struct tls_client *t, int fd, const struct tls_client_config *c,
		     long long deadline);
/* Reads at most n bytes: >0, 0 at a clean or unclean end, -1 with errno set. */
ssize_t tls_client_read(struct tls_client *t, int fd, char *s, size_t n, long long deadline);
/* Returns 1, or 0 with errno set. */
int tls_client_write(struct tls_client *t, int fd, const char *s, size_t n, long long deadline);
/* Bytes decrypted and waiting: a reader must not poll the fd while there are some. */
size_t tls_client_pending(const struct tls_client *t);
/* Frees the session (no close_notify wait) and the context. */
void tls_client_free(struct tls_client *t);

#endif
