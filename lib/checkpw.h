/* postroom: ISC license, see LICENSE. */
#ifndef CHECKPW_H
#define CHECKPW_H

#include <stddef.h>

#include "buf.h"

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
 * What a client sent right after its login, read ahead by the pre-login process, travels to the
 * program the checkpassword program runs (imap-serve -A, pop3-serve -A) in an environment
 * variable, base64. export: in the child before the exec; 1, or 0 when out of memory. import:
 * in that program, into its empty read buffer in, the variable unset; 1, or 0 with EINVAL for
 * a value that is not base64 or does not fit.
 */
int checkpw_pending_export(const char *var, const char *data, size_t len);
int checkpw_pending_import(const char *var, struct buf *in);

#endif
