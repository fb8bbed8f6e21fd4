/* postroom: ISC license, see LICENSE. */
#ifndef USERDB_SQL_H
#define USERDB_SQL_H

#include "sa.h"
#include "sql.h"

/*
 * users.cdb from MySQL: every row and the stamp read in one consistent snapshot, so that the CDB
 * never mixes two states of the database, and its stamp says exactly which state it holds.
 */

struct userdb_sql_counts {
	unsigned long domains, mailboxes, aliases, skipped;
};

/* The stamp query's rows, fields joined by tabs and rows by newlines, into out. 1, or 0 with why. */
int userdb_sql_stamp(MYSQL *db, const struct sql_queries *q, struct sa *out, char *why,
		     size_t whylen);

/*
 * Compiles the database into path (atomically replaced), with the stamp of the same snapshot,
 * which is also left in stamp. A bad row is skipped with a log line (one admin's typo must not
 * freeze every other change). Returns 1; 0 for a failure a retry may cure; -1 when it cannot
 * (a query the server rejects as wrong); why says what happened.
 */
int userdb_sql_compile(MYSQL *db, const struct sql_queries *q, const char *path,
		       struct sa *stamp, struct userdb_sql_counts *counts, char *why,
		       size_t whylen);

/* userdb_sql_compile without keeping the stamp. */
int userdb_sql_compile_now(MYSQL *db, const struct sql_queries *q, const char *path,
			   struct userdb_sql_counts *counts, char *why, size_t whylen);

#endif
