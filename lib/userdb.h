/* postroom: ISC license, see LICENSE. */
#ifndef USERDB_H
#define USERDB_H

#include <stddef.h>
#include <cdb.h>

/*
 * users.cdb: the compiled user database every hot-path lookup reads (userdb(5)).
 * Keys are a type byte and a lower-cased name:
 *   "D" domain           -> ""                               a local domain
 *   "D" domain           -> target-domain                    an alias domain of target-domain
 *   "M" local@domain     -> password \0 maildir \0 quota     a mailbox
 *   "A" local@domain     -> target \0 target \0 ...          an alias
 *   "A" "@" domain       -> target \0 ...                    a catch-all
 *   "V"                  -> "1"                              format version
 *   "C"                  -> stamp                            the source's change stamp (MySQL)
 */

#define USERDB_KEY_MAX 1100	/* a key: type byte plus an address of up to 1003 bytes, with room */

struct userdb {
	struct cdb cdb;
	int fd;
};
#define USERDB_ZERO { .fd = -1 }

/* Opens (and maps) the CDB. Returns 1, or 0 with errno set. */
int userdb_open(struct userdb *u, const char *path);
void userdb_close(struct userdb *u);

/* Lookups return 1 found, 0 not found, -1 with errno set. Names are lower-cased here. */
int userdb_domain(struct userdb *u, const char *domain, size_t n);
/* The same; *target (not NUL-terminated, *tlen bytes) is the target of an alias domain, or
 * empty for a plain domain. */
int userdb_domain_target(struct userdb *u, const char *domain, size_t n, const char **target,
			 size_t *tlen);
/* The change stamp userdb-compile -m stored (not NUL-terminated): 1, 0 none, -1 error. */
int userdb_stamp(struct userdb *u, const char **stamp, size_t *len);
/* The first local domain in the database, into out (size bytes): 1, 0 none, -1 error. */
int userdb_first_domain(struct userdb *u, char *out, size_t size);

struct userdb_mailbox {
	const char *password;	/* these point into the mapped CDB: valid until userdb_close */
	size_t password_len;
	const char *maildir;	/* relative to MAILROOT */
	size_t maildir_len;
	unsigned long long quota;	/* bytes; 0: none */
};
int userdb_mailbox(struct userdb *u, const char *addr, size_t n, struct userdb_mailbox *mb);
/* Sets *targets to "t1\0t2\0...", *len to its size (each target NUL-terminated). */
int userdb_alias(struct userdb *u, const char *addr, size_t n, const char **targets, size_t *len);

/*
 * Writing: userdb_make_start creates PATH.tmp.PID next to PATH; userdb_make_finish fsyncs it,
 * renames it over PATH and fsyncs the directory, so readers see the old or the new database,
 * never a mix. Actions return 1, or 0 with errno set; the add functions return -1 (errno EEXIST)
 * for a duplicate mailbox or alias. A new PATH gets USERDB_MODE; a replacement keeps the mode
 * (less any access for others), owner and group of the old one.
 */
#define USERDB_MODE 0640	/* password hashes: the services' group may read, others not */
struct userdb_make {
	struct cdb_make cdbm;
	int started;		/* cdbm holds memory that only cdb_make_finish frees */
	int fd;
	char *path;
	char *tmppath;
};
#define USERDB_MAKE_ZERO { .fd = -1 }

int userdb_make_start(struct userdb_make *m, const char *path);
/* target (tlen bytes): the target domain of an alias domain; tlen 0 for a plain domain. */
int userdb_make_domain(struct userdb_make *m, const char *domain, size_t n, const char *target,
		       size_t tlen);
int userdb_make_stamp(struct userdb_make *m, const char *stamp, size_t n);
int userdb_make_mailbox(struct userdb_make *m, const char *addr, size_t n, const char *password,
			const char *maildir, unsigned long long quota);
int userdb_make_alias(struct userdb_make *m, const char *addr, size_t n, const char *targets,
		      size_t len);
int userdb_make_finish(struct userdb_make *m);
/* Removes the temporary file; PATH stays as it was. */
void userdb_make_abort(struct userdb_make *m);

/* 1 if a mailbox path from the database is safe below MAILROOT: relative, no ".." component. */
int userdb_maildir_safe(const char *maildir, size_t n);

#endif
