/* postroom: ISC license, see LICENSE. */
#ifndef TLS_WRAP_H
#define TLS_WRAP_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

#include "pool.h"

/* keys.c: the certificates and keys, all loaded before privileges drop. */
struct keys {
	SSL_CTX *fallback;	/* CERTFILE/KEYFILE: for clients that name no host we know */
	struct named_pair *named;	/* SNI: chosen by the name the client asks for */
	size_t n;
};
/* Loads the default pair, CERTFILE:name/KEYFILE:name pairs from the environment, and every
   pair in snidir (or none when 0). Dies with one line (111) on a file it cannot use. */
void keys_load(struct keys *k, const char *certfile, const char *keyfile, const char *snidir);

/* relay.c: the TLS session. */
struct session {
	SSL *ssl;
	int net_in, net_out;	/* the client, usually the same socket on 0 and 1 */
	const char *client;	/* its address, for the log */
	unsigned long long bytes_in, bytes_out;	/* cleartext, each way */
	char failure[160];	/* why the handshake or the session failed; "" if it did not */
};
/* Handshake within timeout seconds. 1, or 0 with s->failure set. */
int tls_handshake(struct session *s, unsigned long timeout);
/* The session's details as NAME=value strings for the environment: protocol, cipher, SNI. */
size_t tls_details(struct session *s, char out[][300], size_t max);
/* Carries bytes between the client (TLS) and the program (to_prog, from_prog) until the program
   closes its output or either side fails; idle: seconds without traffic before giving up. */
void tls_relay(struct session *s, int to_prog, int from_prog, unsigned long idle);
/* The last OpenSSL error's reason, for a log line. */
const char *tls_reason(void);

/* serve.c: one session, the program run however the caller runs it. */
struct serve_options {
	int starttls;		/* UCSPI-TLS (-n); else the handshake comes first */
	unsigned long handshake_timeout, idle_timeout;	/* seconds */
};
struct program {
	/* Gives the program its session (descriptors and environment): 1, or 0 when it could
	   not. */
	int (*start)(struct program *p, const struct pool_session *ps);
	/* Waits for the session's end: the program's exit code for it. */
	int (*wait)(struct program *p);
	char **argv;
	pid_t pid;		/* tls-wrap: the process for this session */
	int chan;		/* tls-server: the program's POOLFD, or -1 once it is gone */
};
/* Serves the client of s: the pairs already in ps (the TCP variables) go to the program with
   the ones of TLS. Returns the program's exit code; the session's log line is written. */
int serve(struct session *s, const struct serve_options *o, struct program *p,
	  struct pool_session *ps);
/* The session's log line: one per session, with the exit code. */
void session_log(struct session *s, int tls, int code);

/* privilege.c: to USER (a name or a number) and GROUP (the user's own group when not given);
   neither: nothing changes. Dies (100 or 111) when it cannot. */
void drop_privileges(const char *user, const char *group);

#endif
