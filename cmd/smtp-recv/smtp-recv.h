/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_RECV_H
#define SMTP_RECV_H

#include <setjmp.h>
#include <stddef.h>

#include "addr.h"
#include "buf.h"
#include "dsn_param.h"
#include "inject.h"
#include "resolve.h"
#include "sa.h"
#include "ucspitls.h"
#include "userdb.h"

/* RFC 4954 section 4: an AUTH line may be longer than any other command. */
#define AUTH_LINE_MAX 12288
/* The most SMTP_LINE_MAX may be: the command line buffer's size. */
#define SMTP_LINE_LIMIT 65536
_Static_assert(AUTH_LINE_MAX <= SMTP_LINE_LIMIT, "an AUTH line must fit the line buffer");

/* RFC 3461 section 4: DSN parameters make MAIL up to 110 octets longer, RCPT up to 500. */
#define DSN_MAIL_EXTRA 110
#define DSN_RCPT_EXTRA 500
/* The envelope items of one recipient (inject.h): T<address>\0 (ADDR_PATH_MAX less "<>"),
   N<notify>\0, O<orcpt>\0; and of MAIL, E<envid>\0 H<ret>\0. */
#define RCPT_ITEMS_MAX ((ADDR_PATH_MAX - 2 + 2) + (DSN_NOTIFY_MAX + 2) + (DSN_ORCPT_MAX + 2))
#define MAIL_ITEMS_MAX ((DSN_ENVID_MAX + 2) + (4 + 2))

/* What main read from the environment; frozen before the session starts. */
struct config {
	const char *hostname;
	const char *queuedir;
	const char *userdb;
	const char *qmailqueue;		/* external queue program, or 0: in-process */
	struct resolve_config resolve;	/* RECIPIENT_DELIMITER, POSTMASTER */
	const char *remoteip;
	const char *localip;
	int relayclient;
	char **checkpassword;		/* CHECKPASSWORD as words, or 0: no AUTH */
	int auth_plaintext;		/* SMTP_AUTH_PLAINTEXT: AUTH without TLS */
	int auth_required;		/* SMTP_AUTH_REQUIRED: no mail without AUTH */
	int sender_login;		/* SMTP_SENDER_LOGIN: senders must be the user's */
	int dsn;			/* SMTP_DSN: the DSN extension (RFC 3461) is on */
	int tls_required;		/* UCSPITLS=!: no AUTH or mail before STARTTLS */
	unsigned long auth_maxfail;	/* failed AUTHs before the connection closes */
	unsigned long auth_timeout;	/* seconds for the checkpassword program */
	unsigned long databytes;	/* message size limit (SIZE) */
	unsigned long maxrcpt;
	unsigned long maxerrors;
	unsigned long maxcommands;
	unsigned long line_max;		/* command line, CRLF included */
	unsigned long text_max;		/* text line in DATA, CRLF included */
	unsigned long timeout;		/* seconds for each read */
	unsigned long command_timeout;	/* seconds for a whole command line, waiting included */
	unsigned long data_timeout;	/* seconds for all of DATA... */
	unsigned long data_rate;	/* ...and one more per this many bytes (up to DATABYTES) */
};

struct session {
	const struct config *c;
	struct buf in;
	struct buf out;
	char inspace[8192];
	char outspace[4096];
	int hello;		/* 0 none yet, 1 HELO, 2 EHLO */
	char helo[256];		/* the client's name, made safe for a header */
	int in_mail;		/* MAIL given */
	int utf8;		/* MAIL ... SMTPUTF8 */
	struct sa sender;
	/* The envelope after F<sender>\0 (inject_finish's items): MAIL's DSN parameters, then
	   each accepted recipient with its own; at most MAXRCPT * RCPT_ITEMS_MAX bytes of them
	   (and MAIL_ITEMS_MAX). */
	struct sa env;
	size_t nrcpt;
	unsigned long errors;
	unsigned long commands;
	unsigned long messages;
	struct userdb db;
	int db_open;
	struct ucspitls tls;
	int tls_offer;		/* STARTTLS can be offered (UCSPI-TLS) */
	/* TLS from the start (tls-wrap without -n) or after STARTTLS: the protocol and cipher as
	   the TLS layer named them (SSL_PROTOCOL, SSL_CIPHER); 0 in cleartext. */
	const char *tls_protocol, *tls_cipher;
	char authuser[256];	/* after AUTH: the user, lower-cased; "" before */
	unsigned long auth_failures;
	jmp_buf *done;		/* under tls-server: where the session's end goes (longjmp, the
				   code in exit_code); 0: the end is the process's exit */
	int exit_code;
	struct inject *message;	/* DATA's message, while it is being queued */
	/* Last, so that session_clear can leave it alone: the command line (AUTH's initial
	   response may be longer than a command, RFC 4954 section 4), and how much of it the
	   session has used. */
	size_t line_used;
	char line[SMTP_LINE_LIMIT + 1];
};

/* session.c: the command loop; returns the exit code. */
int session_run(struct session *s);
/* Writes one reply line (CRLF added); buffered until the client waits for it. */
void reply(struct session *s, const char *line);
/* Forgets the mail transaction (RSET, EHLO, and after DATA). */
void session_reset(struct session *s);
/* Takes SSL_PROTOCOL and SSL_CIPHER from the environment, where the TLS layer put them: 1 if
   TLS is on. */
int session_tls_details(struct session *s);
/* Ends the session after a last reply, with a log line. */
_Noreturn void session_end(struct session *s, const char *line, int code);
/* Ends the session with code: exit, or back to the loop of sessions (s->done). */
_Noreturn void session_exit(struct session *s, int code);
/* Before a session: everything of the one before forgotten (the buffers' memory is kept). */
void session_clear(struct session *s);
/* After a session: what it opened is closed, an unfinished message dropped, and whatever may
   have held a secret (the input buffer, the command line, AUTH's buffers, the stack below)
   wiped. */
void session_close(struct session *s);
/* A reply that counts as an error; too many end the session. */
void error(struct session *s, const char *line);
/* Reads a command line, or with auth an AUTH response, into line (NUL-terminated, CRLF gone);
   0 when it was refused (too long, bad bytes) with the error said. Ends the session at end of
   input or timeout. */
int read_line(struct session *s, char *line, size_t max, size_t *len, int auth);
/* "VERB rest": 1 if line starts with verb (any case) followed by end or a space. */
int is_verb(const char *line, const char *verb, const char **rest);
int open_userdb(struct session *s);

/* auth.c: SMTP AUTH (RFC 4954) through a checkpassword program. */
int auth_offered(const struct session *s);
/* Overwrites every buffer that held credentials. */
void auth_wipe(void);
void do_auth(struct session *s, const char *arg);
/* SMTP_SENDER_LOGIN: 1 if an authenticated user may use this sender, else 0 (reply said). */
int sender_allowed(struct session *s, const char *sender, size_t n);

/* data.c: DATA, from 354 to the final reply. */
void smtp_data(struct session *s);

#endif
