/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>

#include "sa.h"
#include "tls_client.h"

/*
 * An SMTP client session (RFC 5321, with PIPELINING 2920, SIZE 1870, 8BITMIME 6152, SMTPUTF8
 * 6531, STARTTLS 3207, AUTH 4954 PLAIN 4616 / LOGIN, ENHANCEDSTATUSCODES 2034): one connection
 * to one address, over which the caller sends one message or several (smtpc_send, with RSET
 * between when one ends early), then smtpc_close. smtp_deliver (smtp_deliver.h) walks a list of
 * addresses with it; queue-run may hold a session open across messages for the same host.
 * Everything the peer sends is bounded: reply line length, lines per reply, bytes per reply,
 * and the time each step may take (RFC 5321 section 4.5.3.2). Nothing here prints or exits.
 *
 * SIGPIPE: cleartext writes use send(MSG_NOSIGNAL), but OpenSSL writes to the socket with
 * write(2), so a peer that hangs up during TLS raises SIGPIPE: a caller (smtp-send, queue-run
 * delivering in-process) must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before smtpc_open.
 */

#define SMTPC_TEXT_MAX 512	/* the peer's text kept for a result (lines joined by a space) */
#define SMTPC_LINE_MAX 2048	/* a reply line, CRLF included (RFC 5321 says 512) */
#define SMTPC_LINES_MAX 200	/* lines in one reply */
#define SMTPC_REPLY_MAX 32768	/* bytes in one reply */
#define SMTPC_WHERE_MAX (256 + INET6_ADDRSTRLEN + 2)
#define SMTPC_TLS_DESC_MAX 128
#define SMTPC_PATH_MAX 254	/* an address: RFC 5321 4.5.3.1.3's 256-octet path less "<>" */
#define SMTPC_RCPT_MAX 100	/* recipients in one transaction (RFC 5321 4.5.3.1.8's minimum
				   a server must take); the rest go in the next, on the same
				   connection. A pipelined batch of them (at most ~27 kB of
				   commands, a few kB of replies) fits in the sockets' buffers,
				   so writing it whole before reading cannot deadlock. */

enum smtpc_tls {
	SMTPC_TLS_NONE,		/* never STARTTLS */
	SMTPC_TLS_MAY,		/* STARTTLS when offered, any certificate; cleartext otherwise */
	SMTPC_TLS_ENCRYPT,	/* TLS required, any certificate */
	SMTPC_TLS_VERIFY,	/* TLS required, the certificate verified and naming the host */
};

/* Seconds each step may take; the defaults are RFC 5321 section 4.5.3.2's. */
struct smtpc_timeouts {
	unsigned connect;	/* 30 */
	unsigned greeting;	/* 300: the 220 greeting */
	unsigned helo;		/* 300: EHLO, HELO, STARTTLS and its handshake, AUTH, RSET, QUIT */
	unsigned mail;		/* 300 */
	unsigned rcpt;		/* 300 */
	unsigned data;		/* 120: the 354 */
	unsigned block;		/* 180: each write of the message */
	unsigned dot;		/* 600: the reply to the final dot */
	unsigned quit;		/* 5: QUIT's reply, once every recipient has its answer (nothing
				   depends on it, so a peer slow to say goodbye holds nothing up) */
	unsigned attempt;	/* 1800: the whole delivery attempt (smtp_deliver), every host */
};
#define SMTPC_TIMEOUTS_DEFAULT { 30, 300, 300, 300, 300, 120, 180, 600, 5, 1800 }

struct smtpc_config {
	const char *helo;		/* our host name, for EHLO */
	enum smtpc_tls tls;
	int implicit_tls;		/* TLS before the greeting (port 465) */
	const char *cafile;		/* for verification; 0: the system's trust store */
	const char *user, *password;	/* AUTH when user is set (only over TLS; smtp_deliver
					   clears them on an MX route: a smarthost's only) */
	struct smtpc_timeouts t;
	long long deadline;		/* deadline.h ms: no step of a session goes past it (the
					   attempt's; smtp_deliver sets it); 0: none */
	/* Events worth a log line (a host that failed, TLS details, a fallback to cleartext):
	   one line, without the program's name; 0 for none. The line holds raw bytes from the
	   peer and from the addresses: the callback escapes them (log_escape) before writing. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

/* A reply, or what we say in its place (a connection refused, a size over the limit). */
struct smtpc_reply {
	int code;			/* 250, 550; ours: 421 and 4.4.x for the network, 55x */
	char enhanced[16];		/* "5.1.1"; derived from the code when the peer gave none */
	char text[SMTPC_TEXT_MAX];	/* the peer's text, raw bytes (escape before printing) */
};

/* The message: its bytes as the queue holds them (LF line ends), and what smtpc_msg_init found. */
struct smtpc_msg {
	const char *s;
	size_t len;
	unsigned long long size;	/* RFC 1870 section 3: CRLF line ends, no dot-stuffing, no final dot */
	int eightbit;			/* some byte above 127 */
	/* DSN (RFC 3461), sent on MAIL only to a peer that offers DSN, and only a value of
	   printable ASCII without "=" or a space (else it is left out): */
	const char *envid;		/* ENVID as given (xtext, at most 100), or 0 */
	const char *ret;		/* "FULL" or "HDRS", or 0 */
};
void smtpc_msg_init(struct smtpc_msg *m, const char *s, size_t len);

enum smtpc_status {
	SMTPC_PENDING,		/* no final word yet: try another host */
	SMTPC_DELIVERED,
	SMTPC_DEFERRED,
	SMTPC_FAILED,
};

struct smtpc_rcpt {
	const char *addr;
	/* DSN, sent on RCPT as smtpc_msg's are on MAIL: */
	const char *notify;		/* NOTIFY as given ("SUCCESS,FAILURE", "NEVER"), or 0 */
	const char *orcpt;		/* ORCPT as given ("rfc822;xtext", at most 500), or 0 */
	int dsn_passed;			/* set with SMTPC_DELIVERED when the peer offered DSN: the
					   parameters went on, and so did the duty to notify (RFC
					   3461 5.2); 0 for any other status or peer */
	enum smtpc_status status;
	struct smtpc_reply reply;	/* the reply that decided it */
	char where[SMTPC_WHERE_MAX];	/* "NAME[ADDRESS]" of the host that decided it, or "-" */
	char tls[SMTPC_TLS_DESC_MAX];	/* smtpc_tls_desc of that session */
};

/* Extensions the peer offered (EHLO). */
#define SMTPC_PIPELINING 1u
#define SMTPC_SIZE 2u
#define SMTPC_8BITMIME 4u
#define SMTPC_SMTPUTF8 8u
#define SMTPC_STARTTLS 16u
#define SMTPC_AUTH_PLAIN 32u
#define SMTPC_AUTH_LOGIN 64u
#define SMTPC_ENHANCED 128u
#define SMTPC_DSN 256u

struct smtpc {
	const struct smtpc_config *c;
	int fd;
	int tls_on;
	struct tls_client tls;
	char host[256];			/* the peer's name, for messages and TLS */
	char addr[INET6_ADDRSTRLEN];	/* the peer's address, numeric */
	unsigned port;
	unsigned ext;
	unsigned long long size_max;	/* SIZE's value; 0: none given */
	int esmtp;			/* EHLO succeeded (else HELO) */
	int dirty;			/* a transaction was started and not finished: RSET first */
	int greeted;			/* the peer said 220 (for smtp_deliver's session limit) */
	struct smtpc_reply why;		/* why the session failed (connect/open/send returning 0) */
	char in[4096];
	size_t pos, len;
	struct sa out;			/* commands waiting for one write */
};

enum smtpc_open_result {
	SMTPC_OPEN_OK,
	SMTPC_OPEN_NEXT,	/* this host cannot take the mail now: try the next one (why) */
	SMTPC_OPEN_TLS_FAILED,	/* an opportunistic handshake failed: the same host may be
				   retried in cleartext (why) */
	SMTPC_OPEN_DEFER,	/* stop: the mail waits (a refused AUTH; why) */
	SMTPC_OPEN_LOOP,	/* the peer greets with our own name (why) */
};

/*
 * Connects to addr (family AF_INET or AF_INET6, network order) port, known as host, reads the
 * greeting, EHLO (HELO after a 5xx), STARTTLS per c->tls (verifying against tlsname), and AUTH.
 * loopcheck: a peer that greets with c->helo is us (SMTPC_OPEN_LOOP).
 * Whatever the result, smtpc_close frees the session.
 */
enum smtpc_open_result smtpc_open(struct smtpc *s, const struct smtpc_config *c, const char *host,
				  int family, const void *addr, unsigned port, const char *tlsname,
				  int loopcheck);

/*
 * One message from sender ("" for <>) to the recipients whose status is SMTPC_PENDING, in as
 * many transactions as 452 or 552 replies (RFC 5321 4.5.3.1.10) and SMTPC_RCPT_MAX make
 * necessary. Sets each one's final status; returns 1 with
 * the session usable for another message, or 0 when the connection broke (recipients still
 * pending should go to another host; s->why says what happened).
 */
int smtpc_send(struct smtpc *s, const char *sender, const struct smtpc_msg *m,
	       struct smtpc_rcpt *r, size_t n);

/* QUIT (when the connection still works; its reply waited for c->t.quit seconds at most, and
   nothing decided changes with it), close, free. */
void smtpc_close(struct smtpc *s);

/* "TLSv1.3/TLS_AES_256_GCM_SHA384/verified" (or "/unverified"), or "none", into out. */
void smtpc_tls_desc(const struct smtpc *s, char *out, size_t outsize);

/* Fills r with code, enhanced ("4.4.1") and text (printf). */
void smtpc_reply_set(struct smtpc_reply *r, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
