/* postroom: ISC license, see LICENSE. */
#ifndef USERDB_BUILD_H
#define USERDB_BUILD_H

#include "addr.h"
#include "userdb.h"

/*
 * Building users.cdb from rows, whatever their source (the text file, MySQL), so that both
 * sources are checked by the same rules (userdb(5)) and give the same records.
 *
 * Order: every domain (plain domains before the alias domains that point at them), then
 * userdb_build_domains_done, then mailboxes and aliases in any order, then finish or abort.
 * Each add returns 1; 0 with errno set (a system error: give up); -1 for a bad row, with what
 * is wrong in b->why (the caller decides whether that ends the build or skips the row).
 */
struct userdb_build_domain {
	char name[ADDR_DOMAIN_MAX + 1];
	char target[ADDR_DOMAIN_MAX + 1];	/* empty for a plain domain */
};

struct userdb_build {
	struct userdb_make make;
	struct userdb_build_domain *domains;	/* sorted by name once the domains are done */
	size_t ndomains, domains_cap;
	int domains_sorted;
	unsigned long nmailboxes, naliases;
	int lenient;		/* set by the caller: a bad alias domain becomes a plain domain */
	unsigned long skipped;	/* alias domains that lenient made plain */
	char why[256];
};
#define USERDB_BUILD_ZERO { .make = USERDB_MAKE_ZERO }

int userdb_build_start(struct userdb_build *b, const char *path);
/* A local domain; with a non-empty target, an alias domain of that (already declared) domain. */
int userdb_build_domain(struct userdb_build *b, const char *name, const char *target);
/* Writes the domain records; mailboxes and aliases can be added from now on. An alias domain
 * whose target turned out to be an alias domain itself is bad (-1), or with lenient set, a
 * plain domain, with a log line. */
int userdb_build_domains_done(struct userdb_build *b);
/* quota: decimal bytes; empty, 0 or negative (PostfixAdmin's -1) mean unlimited. */
int userdb_build_mailbox(struct userdb_build *b, const char *addr, const char *password,
			 const char *maildir, const char *quota);
/* addr: local@domain, or @domain for a catch-all; targets: comma-separated addresses, with
 * white space around each ignored. */
int userdb_build_alias(struct userdb_build *b, const char *addr, const char *targets);
/* What the source looked like when it was read (userdb_stamp), for a cheap change check. */
int userdb_build_stamp(struct userdb_build *b, const char *stamp, size_t n);
int userdb_build_finish(struct userdb_build *b);
void userdb_build_abort(struct userdb_build *b);

/*
 * The text form (userdb(5)): "domain", "alias-domain", "mailbox" and "alias" lines read from fd
 * and added to b, which is started and not yet finished. Returns 1; 0 with errno set on a read
 * or write error; -1 for bad input, with the line number (0: the file as a whole) and what is
 * wrong in err.
 */
struct userdb_text_error {
	unsigned long line;
	char what[256];
};
int userdb_text_compile(int fd, struct userdb_build *b, struct userdb_text_error *err);

#endif
