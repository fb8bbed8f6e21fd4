/* postroom: ISC license, see LICENSE. */
#ifndef SQL_H
#define SQL_H

#include <stddef.h>
#include <mysql.h>

/*
 * MySQL (MariaDB) access for the programs that read the user database's truth: connection
 * settings from a MySQL option file, and the queries, PostfixAdmin's by default, replaceable
 * from a file (userdb-compile(8) lists them and the columns each must return).
 */

enum sql_query {
	SQL_DOMAINS,		/* domain */
	SQL_ALIAS_DOMAINS,	/* alias domain, target domain */
	SQL_MAILBOXES,		/* address, password hash, maildir, quota bytes */
	SQL_ALIASES,		/* address or @domain, comma-separated targets */
	SQL_STAMP,		/* anything that changes whenever the rows above do */
	SQL_PASSWORD,		/* for '%u': address, password hash, maildir, active (1 or 0) */
	SQL_NQUERIES
};

struct sql_queries {
	const char *q[SQL_NQUERIES];
	char *text;		/* the file the replaced queries point into */
};

/*
 * PostfixAdmin's queries, replaced by those of the file path when path is not null ("name = SQL"
 * lines; a line that starts with white space continues the query before it; comment lines,
 * starting with '#', and blank lines are left out). 1; 0 the file cannot be read; -1 it is
 * malformed; why says which.
 */
int sql_queries_init(struct sql_queries *q, const char *path, char *why, size_t whylen);
void sql_queries_free(struct sql_queries *q);

/*
 * Connects with the [client] and [postroom] groups of the option file path, with short
 * timeouts so that an unreachable server is a quick temporary failure. NULL on failure, with
 * why.
 */
MYSQL *sql_connect(const char *optfile, char *why, size_t whylen);

/* 1 if the last error on db means the query itself is wrong (a retry cannot help). */
int sql_error_permanent(MYSQL *db);
/* 1 if it means the connection is gone (the server went away, restarted, timed it out). */
int sql_error_connection(MYSQL *db);

/*
 * Runs query and calls row for each row (NULL fields as ""); row returns 1 to go on, 0 to stop
 * with an error it put in why. Returns 1; 0 on a server error or a row's, with why.
 */
typedef int sql_row_fn(void *ctx, char **fields, unsigned long *lengths, unsigned nfields,
		       char *why, size_t whylen);
int sql_each_row(MYSQL *db, const char *query, sql_row_fn *row, void *ctx, char *why,
		 size_t whylen);
/* Runs a statement that returns no rows. 1, or 0 with why. */
int sql_exec(MYSQL *db, const char *statement, char *why, size_t whylen);

/*
 * query with each '%u' replaced by value, escaped for a quoted SQL string (the query writes
 * the quotes: ... WHERE username = '%u'). Returns a malloc'd string, or 0 (ENOMEM).
 */
char *sql_expand(MYSQL *db, const char *query, const char *value);
/* Appends s escaped for use between single quotes in a statement. 1, or 0 (ENOMEM). */
struct sa;
int sql_cat_escaped(MYSQL *db, struct sa *out, const char *s);

#endif
