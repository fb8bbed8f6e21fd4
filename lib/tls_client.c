/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "deadline.h"
#include "fmt.h"
#include "tls_client.h"

/* OpenSSL's own reason for the last failure, or what errno says. */
static void set_why(struct tls_client *t, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char reason[200];

	if (e)
		ERR_error_string_n(e, reason, sizeof reason);
	else if (errno)
		str_copy(reason, sizeof reason, strerror(errno));
	else
		str_copy(reason, sizeof reason, "connection closed");
	snprintf(t->why, sizeof t->why, "%s: %s", what, reason);
	ERR_clear_error();
}

/*
 * One SSL call's outcome: 1 done, 0 wait and retry (waited), -1 failed (errno set; EPROTO for
 * a TLS error, 0-byte EOF reported as ECONNRESET).
 */
static int settle(SSL *ssl, int fd, int r, long long deadline)
{
	int saved = errno;

	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_NONE:
		return 1;
	case SSL_ERROR_WANT_READ:
		return deadline_wait_fd(fd, POLLIN, deadline) ? 0 : -1;
	case SSL_ERROR_WANT_WRITE:
		return deadline_wait_fd(fd, POLLOUT, deadline) ? 0 : -1;
	case SSL_ERROR_ZERO_RETURN:
		errno = 0;
		return -1;
	case SSL_ERROR_SYSCALL:
		errno = saved ? saved : ECONNRESET;
		return -1;
	default:
		errno = EPROTO;
		return -1;
	}
}

int tls_client_start(struct tls_client *t, int fd, const struct tls_client_config *c,
		     long long deadline)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	t->ctx = ctx;
	if (!ctx) {
		errno = ENOMEM;
		set_why(t, "TLS context");
		return 0;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* The chain is checked, but a failure does not stop the handshake: opportunistic TLS
	   encrypts to any peer, and -t verify wants the reason in its deferral. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, 0);
	if (c->cafile ? !SSL_CTX_load_verify_locations(ctx, c->cafile, 0)
		      : !SSL_CTX_set_default_verify_paths(ctx)) {
		errno = EPROTO;
		set_why(t, c->cafile ? "unable to load the CA file" : "unable to load the trust store");
		return 0;
	}
	SSL *ssl = SSL_new(ctx);
	t->ssl = ssl;
	if (!ssl || !SSL_set_fd(ssl, fd)) {
		errno = ENOMEM;
		set_why(t, "TLS session");
		return 0;
	}
	if (c->sni && !SSL_set_tlsext_host_name(ssl, c->sni)) {
		errno = EINVAL;
		set_why(t, "SNI");
		return 0;
	}
	if (c->name) {
		/* RFC 6125: the reference identity against subjectAltName (CN only without one); a
		   wildcard only as the whole left-most label. A numeric address matches an IP SAN. */
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		int ok = X509_VERIFY_PARAM_set1_ip_asc(p, c->name) ||
			 X509_VERIFY_PARAM_set1_host(p, c->name, 0);
		if (!ok) {
			errno = EINVAL;
			set_why(t, "certificate name");
			return 0;
		}
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int r = settle(ssl, fd, SSL_connect(ssl), deadline);
		if (r > 0)
			break;
		if (r < 0) {
			if (!errno)
				errno = ECONNRESET;
			set_why(t, "TLS handshake failed");
			return 0;
		}
	}
	str_copy(t->protocol, sizeof t->protocol, SSL_get_version(ssl));
	str_copy(t->cipher, sizeof t->cipher, SSL_get_cipher_name(ssl));
	X509 *peer = SSL_get1_peer_certificate(ssl);
	long v = SSL_get_verify_result(ssl);
	if (!peer) {
		str_copy(t->why, sizeof t->why, "no certificate");
	} else if (v != X509_V_OK) {
		snprintf(t->why, sizeof t->why, "certificate verification failed: %s",
			 X509_verify_cert_error_string(v));
	} else if (!c->name) {
		str_copy(t->why, sizeof t->why, "no name to verify");
	} else {
		t->verified = 1;
	}
	X509_free(peer);
	return 1;
}

ssize_t tls_client_read(struct tls_client *t, int fd, char *s, size_t n, long long deadline)
{
	for (;;) {
		size_t got = 0;
		ERR_clear_error();
		errno = 0;
		int ok = SSL_read_ex(t->ssl, s, n, &got);
		int r = settle(t->ssl, fd, ok ? 1 : 0, deadline);
		if (r > 0)
			return (ssize_t)got;
		if (r < 0) {
			if (!errno)
				return 0;	/* close_notify */
			set_why(t, "TLS read");
			return errno == ECONNRESET ? 0 : -1;
		}
	}
}

int tls_client_write(struct tls_client *t, int fd, const char *s, size_t n, long long deadline)
{
	while (n) {
		size_t put = 0;
		ERR_clear_error();
		errno = 0;
		int ok = SSL_write_ex(t->ssl, s, n, &put);
		int r = settle(t->ssl, fd, ok ? 1 : 0, deadline);
		if (r < 0) {
			if (!errno)
				errno = EPIPE;
			set_why(t, "TLS write");
			return 0;
		}
		if (r > 0) {
			s += put;
			n -= put;
		}
	}
	return 1;
}

size_t tls_client_pending(const struct tls_client *t)
{
	return t->ssl ? (size_t)SSL_pending(t->ssl) : 0;
}

void tls_client_free(struct tls_client *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	t->ssl = t->ctx = 0;
}
