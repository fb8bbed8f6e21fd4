/* postroom: ISC license, see LICENSE. */
#ifndef USERDB_SQL_H
#define USERDB_SQL_H

#include "sa.h"
#include "sql.h"

/*
 * users.cdb from MySQL: the stamp first, then every row in one consistent snapshot, so that the
 * CDB never mixes two states of the database, and its stamp is never newer than its rows.
 */

struct userdb_sql_counts {
	unsigned long domains, mailboxes, aliases, skipped;
};

/* The stamp query's rows, fields joined by tabs and rows by newlines, into out. 1, or 0 with why. */
int userdb_sql_stamp(MYSQL *db, const struct sql_queries *q, struct sa *out, char *why,
		     size_t whylen);

/*
 * Compiles the database into path (atomically replaced), with stamp, which the caller took
 * with userdb_sql_stamp just before: rows read after it are never older than it says. A bad
 * row is skipped with a log line (one admin's typo must not freeze every other change).
 * Returns 1; 0 for a failure a retry may cure; -1 when it cannot (a query the server rejects
 * as wrong, an alias domain of an alias domain); why says what happened.
 */
int userdb_sql_compile(MYSQL *db, const struct sql_queries *q, const char *path,
		       const struct sa *stamp, struct userdb_sql_counts *counts, char *why,
		       size_t whylen);

/* The stamp, then the compile: what a one-off compile does. Returns as userdb_sql_compile. */
int userdb_sql_compile_now(MYSQL *db, const struct sql_queries *q, const char *path,
			   struct userdb_sql_counts *counts, char *why, size_t whylen);

#endif
