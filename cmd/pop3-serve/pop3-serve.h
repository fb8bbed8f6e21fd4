/* postroom: ISC license, see LICENSE. */
#ifndef POP3_SERVE_H
#define POP3_SERVE_H

#include <stddef.h>

#include "buf.h"

/* Settings from the environment (pop3-serve(8) lists them). */
struct config {
	char **checkpassword;		/* pre-login: the program and its arguments */
	int auth_plaintext;		/* USER, PASS and AUTH allowed without TLS */
	unsigned long timeout;		/* seconds a command may take to arrive */
	unsigned long login_timeout;	/* seconds the whole login may take */
	unsigned long auth_failures;	/* failed logins before we hang up */
	unsigned long bad_commands;	/* errors in a row before we hang up */
	unsigned long login_delay;	/* seconds between two logins to one mailbox; 0: none */
	int expire_at_once;		/* POP3_EXPIRE=0: retrieved messages go at QUIT */
};

/* A command line, CRLF excluded: RFC 2449 allows 255 octets; SASL responses are longer. */
#define POP3_LINE_MAX 2048

/* The connection: its input and output, and the command being answered. */
struct conn {
	const struct config *cf;
	struct buf in, out;
	char inspace[4096], outspace[16384];
	char line[POP3_LINE_MAX + 2];	/* the command, NUL-terminated */
	size_t len;
	char *arg[4];			/* its words (arg[0] upper-cased), 0 past the last */
	size_t nargs;
	unsigned long bad_in_a_row;
	long long end_ms;		/* 0, or no command read past this (deadline_now_ms) */
};

void conn_init(struct conn *c, const struct config *cf);
/* printf to the client; a write that fails ends the session (exit 0: the client left). */
void out(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_bytes(struct conn *c, const char *s, size_t n);
void out_flush(struct conn *c);
/* Reads the next command into c->line and c->arg; answers what cannot be one (a line too
   long) itself. 1 with a command, 0 when the connection is over. */
int conn_next(struct conn *c);
/* 1 when the command is verb (given in capitals). */
int conn_is(const struct conn *c, const char *verb);
/* Everything after the command word, spaces and all (PASS's password may have some); its
   length in *len. "" when there is nothing. */
char *conn_rest(struct conn *c, size_t *len);
/* "-ERR text" for a command that was wrong, counting them: after cf->bad_commands in a row the
   connection closes. A command answered without out_err() resets the count. */
void out_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line of CAPA (RFC 2449) that both states share. */
void out_capa_common(struct conn *c);

/* Pre-login (login.c) and authenticated (session.c): neither returns. */
_Noreturn void login_serve(const struct config *cf);
_Noreturn void session_serve(const struct config *cf);

#endif
