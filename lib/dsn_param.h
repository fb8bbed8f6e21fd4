/* postroom: ISC license, see LICENSE. */
#ifndef DSN_PARAM_H
#define DSN_PARAM_H

#include <stddef.h>

/*
 * The DSN parameters of RFC 3461 section 4 as a client gives them in SMTP, and as the queue's
 * envelope items keep them (queue(5)): one check each, for smtp-recv, queue-inject and
 * smtp-send alike. Each returns 1 when s[0..n) is valid.
 */
#define DSN_ENVID_MAX 100	/* RFC 3461 4.4: ENVID, as given (xtext) */
#define DSN_ORCPT_MAX 500	/* RFC 3461 4.2: ORCPT's value, "addr-type;xtext" */
#define DSN_NOTIFY_MAX 21	/* "SUCCESS,FAILURE,DELAY" */

/* RET: FULL or HDRS, in any case. */
int dsn_ret_ok(const char *s, size_t n);
/* ENVID: xtext of 1 to DSN_ENVID_MAX characters, standing for printable ASCII (spaces too). */
int dsn_envid_ok(const char *s, size_t n);
/* NOTIFY: NEVER alone, or a comma list of SUCCESS, FAILURE and DELAY, each at most once; any
   case. */
int dsn_notify_ok(const char *s, size_t n);
/* ORCPT: addr-type ";" xtext, at most DSN_ORCPT_MAX characters; addr-type an atom, the xtext
   not empty and standing for printable ASCII (spaces too). */
int dsn_orcpt_ok(const char *s, size_t n);

#endif
