/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "userdb_build.h"
#include "userdb_sql.h"

static int stamp_row(void *ctx, char **f, unsigned long *len, unsigned n, char *why,
		     size_t whylen)
{
	struct sa *out = ctx;

	for (unsigned i = 0; i < n; i++)
		if (!sa_catb(out, f[i], len[i]) || !sa_catc(out, i + 1 < n ? '\t' : '\n')) {
			snprintf(why, whylen, "out of memory for the stamp");
			return 0;
		}
	return 1;
}

int userdb_sql_stamp(MYSQL *db, const struct sql_queries *q, struct sa *out, char *why,
		     size_t whylen)
{
	out->len = 0;
	return sql_each_row(db, q->q[SQL_STAMP], stamp_row, out, why, whylen);
}

struct rows {
	struct userdb_build b;
	enum sql_query query;
	unsigned long skipped;
	int system_error;	/* our own write failed */
	int wrong_query;	/* a query returns fewer columns than it must */
};

/* A field as a C string: a NUL inside it makes the row bad. */
static int whole(const char *f, unsigned long len)
{
	return strlen(f) == len;
}

static int add_row(void *ctx, char **f, unsigned long *len, unsigned n, char *why, size_t whylen)
{
	static const unsigned columns[SQL_NQUERIES] = {
		[SQL_DOMAINS] = 1, [SQL_ALIAS_DOMAINS] = 2, [SQL_MAILBOXES] = 4, [SQL_ALIASES] = 2,
	};
	struct rows *rows = ctx;
	int r;

	if (n < columns[rows->query]) {
		snprintf(why, whylen, "the query returns %u columns, it must return %u", n,
			 columns[rows->query]);
		rows->wrong_query = 1;
		return 0;
	}
	for (unsigned i = 0; i < columns[rows->query]; i++)
		if (!whole(f[i], len[i])) {
			log_line("skipping a row with a NUL byte in column %u", i + 1);
			rows->skipped++;
			return 1;
		}
	switch (rows->query) {
	case SQL_DOMAINS:
		r = userdb_build_domain(&rows->b, f[0], 0);
		break;
	case SQL_ALIAS_DOMAINS:
		r = userdb_build_domain(&rows->b, f[0], f[1]);
		break;
	case SQL_MAILBOXES:
		r = userdb_build_mailbox(&rows->b, f[0], f[1], f[2], f[3]);
		break;
	default:
		r = userdb_build_alias(&rows->b, f[0], f[1]);
		break;
	}
	if (r < 0) {
		char esc[300];
		log_line("skipping a row: %s", log_escape(esc, sizeof esc, rows->b.why,
							   strlen(rows->b.why)));
		rows->skipped++;
		return 1;
	}
	if (r == 0) {
		snprintf(why, whylen, "unable to write %s: %s", rows->b.make.tmppath,
			 strerror(errno));
		rows->system_error = 1;
		return 0;
	}
	return 1;
}

static int fail(MYSQL *db, struct rows *rows, int rollback)
{
	char ignored[256];
	int permanent = rows->wrong_query || (sql_error_permanent(db) && !rows->system_error);

	userdb_build_abort(&rows->b);
	if (rollback)
		sql_exec(db, "ROLLBACK", ignored, sizeof ignored);
	return permanent ? -1 : 0;
}

int userdb_sql_compile(MYSQL *db, const struct sql_queries *q, const char *path,
		       struct sa *stamp, struct userdb_sql_counts *counts, char *why,
		       size_t whylen)
{
	struct rows rows = { .b = USERDB_BUILD_ZERO };

	rows.b.lenient = 1;
	if (!userdb_build_start(&rows.b, path)) {
		snprintf(why, whylen, "unable to create a temporary file next to %s: %s", path,
			 strerror(errno));
		return 0;
	}
	/* REPEATABLE READ whatever the server's default: under READ COMMITTED the "snapshot"
	 * would let each query see a different state. */
	if (!sql_exec(db, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", why, whylen) ||
	    !sql_exec(db, "START TRANSACTION WITH CONSISTENT SNAPSHOT", why, whylen))
		return fail(db, &rows, 0);
	if (!userdb_sql_stamp(db, q, stamp, why, whylen))
		return fail(db, &rows, 1);
	static const enum sql_query order[] = { SQL_DOMAINS, SQL_ALIAS_DOMAINS, SQL_MAILBOXES,
						SQL_ALIASES };
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
		rows.query = order[i];
		if (!sql_each_row(db, q->q[order[i]], add_row, &rows, why, whylen))
			return fail(db, &rows, 1);
		/* Lenient, so only a write error stops it. */
		if (order[i] == SQL_ALIAS_DOMAINS && userdb_build_domains_done(&rows.b) <= 0) {
			snprintf(why, whylen, "unable to write %s: %s", rows.b.make.tmppath,
				 strerror(errno));
			rows.system_error = 1;
			return fail(db, &rows, 1);
		}
	}
	sql_exec(db, "COMMIT", why, whylen);
	int ok = userdb_build_stamp(&rows.b, stamp->s ? stamp->s : "", stamp->len) > 0;
	counts->domains = rows.b.ndomains;
	counts->mailboxes = rows.b.nmailboxes;
	counts->aliases = rows.b.naliases;
	counts->skipped = rows.skipped + rows.b.skipped;
	if (!ok || !userdb_build_finish(&rows.b)) {
		snprintf(why, whylen, "unable to write %s: %s", path, strerror(errno));
		userdb_build_abort(&rows.b);
		return 0;
	}
	return 1;
}

int userdb_sql_compile_now(MYSQL *db, const struct sql_queries *q, const char *path,
			   struct userdb_sql_counts *counts, char *why, size_t whylen)
{
	struct sa stamp = SA_ZERO;
	int r = userdb_sql_compile(db, q, path, &stamp, counts, why, whylen);

	sa_free(&stamp);
	return r;
}
