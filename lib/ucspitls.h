/* postroom: ISC license, see LICENSE. */
#ifndef UCSPITLS_H
#define UCSPITLS_H

/*
 * The program's side of UCSPI-TLS (postroom(7), tls-wrap(8)): a server started by tls-wrap -n,
 * s6-ucspitlsd or sslserver -n talks cleartext on 0/1 and may ask for TLS on SSLCTLFD.
 */

struct ucspitls {
	int ctl, rfd, wfd;
};

/* 1 when SSLCTLFD, SSLREADFD and SSLWRITEFD name open descriptors and UCSPITLS is set and not
   "-", else 0. Whatever the answer, the descriptors are kept from our own children. */
int ucspitls_available(struct ucspitls *t);
/* 1 when UCSPITLS is "!": TLS is required before anything private (AUTH, mail). */
int ucspitls_required(void);
/*
 * Starts TLS. The caller has flushed its go-ahead reply and must throw away whatever it buffered
 * from the cleartext side. On success fds 0 and 1 carry the TLS session and the session's
 * details (SSL_PROTOCOL, SSL_CIPHER, ...) are in the environment; returns 1. Returns 0 when the
 * handshake failed: the connection is then unusable.
 */
int ucspitls_start(struct ucspitls *t);
/* In a process that takes over a session another one started TLS in (pool_resumed): fds 0 and
   1 on the TLS session again, and its details (SSL_ pairs, NAME=value\0..., len bytes, which
   the environment keeps) set. 1, or 0 with errno set. */
int ucspitls_resume(struct ucspitls *t, char *details, size_t len);

#endif
