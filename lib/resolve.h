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
	size_t *slot;		/* a hash of t by kind and address (index + 1; 0 empty)... */
	size_t nslot;		/* ...so that adding a target does not scan them all */
};
#define TARGETS_ZERO { 0, 0, 0, 0, 0 }

/*
 * Bounds on one recipient's expansion (userdb(5)). Past either of the last two the recipient
 * fails with "5.4.6 alias expansion too large" and contributes no other target.
 */
#define RESOLVE_DEPTH_MAX 10		/* aliases nested in one another */
#define RESOLVE_TARGETS_MAX 1000	/* final targets, as Postfix's virtual_alias_expansion_limit */
#define RESOLVE_LOOKUPS_MAX 20000	/* user database lookups */

/* How to resolve: the same for every program that resolves, so they read it in one place. */
struct resolve_config {
	const char *delimiters;	/* characters that start an address extension ("+" for
				 * user+tag@domain), or "" for none: RECIPIENT_DELIMITER */
	const char *postmaster;	/* where postmaster@ a domain of ours goes when the domain has
				 * no alias, mailbox or catch-all for it: POSTMASTER, or 0 for
				 * postmaster@ the first domain of the user database */
};

/* Fills rc from the environment (RECIPIENT_DELIMITER, POSTMASTER), with their defaults. */
void resolve_config_env(struct resolve_config *rc);

/*
 * Adds the final targets of rcpt[0..n) to out, leaving out those it already holds (a mailbox
 * reached twice gets one copy).
 * postmaster@ every domain of ours is deliverable (RFC 5321 section 4.5.1): without an alias,
 * mailbox or catch-all of its own, it resolves as rc->postmaster.
 * Each alias is expanded once per call; an alias met again while it is being expanded (a loop)
 * contributes nothing, and only a recipient that reaches no mailbox and no remote address
 * through a loop fails with "5.4.6 alias loop".
 * Returns 1, or 0 with errno set (a database error or no memory: try again later).
 */
int resolve(struct userdb *u, const char *rcpt, size_t n, const struct resolve_config *rc,
	    struct targets *out);
void targets_free(struct targets *t);

#endif
