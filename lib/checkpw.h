/* postroom: ISC license, see LICENSE. */
#ifndef CHECKPW_H
#define CHECKPW_H

#include <stddef.h>

#include "buf.h"
#include "ucspitls.h"

/*
 * The caller's side of the checkpassword interface (postroom(7)): a child gets the credentials
 * ("user\0password\0timestamp\0") on fd 3 and runs the program; its exit says the answer:
 * 0 accepted, 1 refused, anything else trouble. What the child does besides (its fds 0 and 1,
 * its environment, the exec and what it logs when that fails) is the caller's: exec_child runs
 * in the child with fd 3 in place and must not return.
 */

enum checkpw_verdict { CHECKPW_ACCEPTED, CHECKPW_REFUSED, CHECKPW_TROUBLE };

/* name: the program, for why (size whysize), which says what went wrong on TROUBLE. */
enum checkpw_verdict checkpw_run(const char *cred, size_t len, const char *name,
				 void (*exec_child)(void *ctx), void *ctx, char *why,
				 size_t whysize);

/*
 * Under tls-server (pool(5)) no process need wait for the checkpassword program: the process
 * that read the login leaves its pool parent a note (pool_note) and becomes the program; should
 * that refuse, the parent starts a new process for the session, which takes the note back and
 * answers the login as the first would have. The note holds what a pre-login process knows of
 * its session: what the client sent that is not read yet, TLS started and its SSL_ pairs, and
 * the caller's own counters.
 */
#define CHECKPW_NOTE_INPUT 16384
/* What both servers' pre-login processes keep of a session, and a note carries across. */
struct checkpw_state {
	int secure;		/* TLS: implicit, or started */
	int started_tls;	/* by STARTTLS or STLS, in this process or one before it */
	unsigned long failures;	/* refused logins */
};
struct checkpw_note {
	char tag[128];		/* the login command's, for IMAP's answer */
	struct checkpw_state st;
	long long end_ms;	/* POP3's deadline for the whole login */
	size_t tlslen, unread;
	char tls[4096];		/* after STARTTLS, its SSL_ pairs: NAME=value\0... */
	char input[CHECKPW_NOTE_INPUT];
};
/* Leaves note n, with the environment's SSL_ pairs when n->st.started_tls and what in holds
   unread, and becomes the checkpassword program. Returns when no note could be left (no pool
   parent to take it): the caller then runs checkpw_run. */
void checkpw_exec_noted(struct checkpw_note *n, const struct buf *in, const char *cred,
			size_t len, void (*exec_child)(void *ctx), void *ctx);
/* In the process that takes a session back: the note, with the TLS session back on fds 0 and
   1 (t, from ucspitls_available) if it was started, in holding what was unread, *st as the
   note has it, and *v the program's verdict (trouble logged); 0 for the session's first
   process. The caller wipes the note when done. */
struct checkpw_note *checkpw_resumed(struct ucspitls *t, struct buf *in,
				     struct checkpw_state *st, enum checkpw_verdict *v);

/*
 * What a client sent right after its login, read ahead by the pre-login process, travels to the
 * program the checkpassword program runs (imap-serve -A, pop3-serve -A) in an environment
 * variable, base64. export: in the child before the exec; 1, or 0 when out of memory. import:
 * in that program, into its empty read buffer in, the variable unset; 1, or 0 with EINVAL for
 * a value that is not base64 or does not fit.
 */
int checkpw_pending_export(const char *var, const char *data, size_t len);
int checkpw_pending_import(const char *var, struct buf *in);

#endif
