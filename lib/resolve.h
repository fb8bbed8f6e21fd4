/* postroom: ISC license, see LICENSE. */
#ifndef RESOLVE_H
#define RESOLVE_H

#include <stddef.h>

#include "userdb.h"

/*
 * Where mail for a recipient goes: the final targets after alias expansion (userdb(5) gives the
 * order of lookups). queue-run delivers to them; smtp-recv asks the same question at RCPT time.
 */

enum target_kind {
	TARGET_MAILBOX,	/* a local mailbox */
	TARGET_REMOTE,	/* an address in a domain that is not ours */
	TARGET_FAILED,	/* nothing can deliver to it: unknown user, alias loop */
};

struct target {
	enum target_kind kind;
	char *addr;		/* mailbox (lower-cased), remote address, or the address that failed */
	char *maildir;		/* TARGET_MAILBOX: relative to MAILROOT */
	unsigned long long quota;
	const char *reason;	/* TARGET_FAILED: enhanced status code and text */
};

struct targets {
	struct target *t;
	size_t n;
	size_t cap;
};
#define TARGETS_ZERO { 0, 0, 0 }

#define RESOLVE_DEPTH_MAX 10

/*
 * Adds the final targets of rcpt[0..n) to out, leaving out those it already holds (a mailbox
 * reached twice gets one copy). delimiters: characters that start an address extension
 * ("+" for user+tag@domain), or "" for none.
 * Returns 1, or 0 with errno set (a database error or no memory: try again later).
 */
int resolve(struct userdb *u, const char *rcpt, size_t n, const char *delimiters,
	    struct targets *out);
void targets_free(struct targets *t);

#endif
