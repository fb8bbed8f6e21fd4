/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysqld_error.h>

#include "fmt.h"
#include "sa.h"
#include "sql.h"

#define CONNECT_TIMEOUT 5	/* seconds */
#define IO_TIMEOUT 30
#define QUERY_FILE_MAX (1UL << 20)

static const char *const names[SQL_NQUERIES] = {
	[SQL_DOMAINS] = "domains",
	[SQL_ALIAS_DOMAINS] = "alias_domains",
	[SQL_MAILBOXES] = "mailboxes",
	[SQL_ALIASES] = "aliases",
	[SQL_STAMP] = "stamp",
	[SQL_PASSWORD] = "password",
};

/*
 * PostfixAdmin's tables as they are. Inactive rows, and everything in an inactive domain, do
 * not exist for mail; a backup-MX domain is relayed, not delivered here; "ALL" is PostfixAdmin's
 * placeholder row for superadmins, not a domain.
 */
static const char *const defaults[SQL_NQUERIES] = {
	[SQL_DOMAINS] = "SELECT domain FROM domain"
		" WHERE active = 1 AND backupmx = 0 AND domain <> 'ALL'",
	[SQL_ALIAS_DOMAINS] = "SELECT a.alias_domain, a.target_domain FROM alias_domain a"
		" JOIN domain ad ON ad.domain = a.alias_domain"
		" JOIN domain td ON td.domain = a.target_domain"
		" WHERE a.active = 1 AND ad.active = 1 AND ad.backupmx = 0"
		" AND td.active = 1 AND td.backupmx = 0",
	[SQL_MAILBOXES] = "SELECT m.username, m.password, m.maildir, m.quota FROM mailbox m"
		" JOIN domain d ON d.domain = m.domain"
		" WHERE m.active = 1 AND d.active = 1 AND d.backupmx = 0",
	[SQL_ALIASES] = "SELECT a.address, a.goto FROM alias a"
		" JOIN domain d ON d.domain = a.domain"
		" WHERE a.active = 1 AND d.active = 1 AND d.backupmx = 0",
	/* Content checksums: cheap for a small organisation's tables, and they see every change,
	 * including hand edits that do not touch the modified column. */
	[SQL_STAMP] = "CHECKSUM TABLE domain, mailbox, alias, alias_domain",
	[SQL_PASSWORD] = "SELECT m.username, m.password, m.maildir, m.active = 1 AND d.active = 1"
		" FROM mailbox m JOIN domain d ON d.domain = m.domain"
		" WHERE m.username = '%u'",
};

static void queries_default(struct sql_queries *q)
{
	for (int i = 0; i < SQL_NQUERIES; i++)
		q->q[i] = defaults[i];
	q->text = 0;
}

void sql_queries_free(struct sql_queries *q)
{
	free(q->text);
	queries_default(q);
}

static int parse_queries(struct sql_queries *q, const char *text, const char *path, char *why,
			 size_t whylen);

static int load_bad(char *why, size_t whylen, const char *path, unsigned long line,
		    const char *what)
{
	snprintf(why, whylen, "%s line %lu: %s", path, line, what);
	return -1;
}

int sql_queries_init(struct sql_queries *q, const char *path, char *why, size_t whylen)
{
	struct sa text = SA_ZERO;

	queries_default(q);
	if (!path)
		return 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whylen, "unable to open %s: %s", path, strerror(errno));
		return 0;
	}
	for (;;) {
		if (!sa_ready(&text, 4096))
			break;
		ssize_t r = read(fd, text.s + text.len, 4096);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0 && sa_terminate(&text)) {
				close(fd);
				goto parse;
			}
			break;
		}
		text.len += (size_t)r;
		if (text.len > QUERY_FILE_MAX) {
			errno = EFBIG;
			break;
		}
	}
	snprintf(why, whylen, "unable to read %s: %s", path, strerror(errno));
	close(fd);
	sa_free(&text);
	return 0;
parse:
	if (memchr(text.s, 0, text.len)) {
		sa_free(&text);
		return load_bad(why, whylen, path, 0, "the file contains a NUL byte");
	}
	int r = parse_queries(q, text.s, path, why, whylen);
	sa_free(&text);
	return r;
}

/* 1 if line (up to its newline) is empty, white space only, or a '#' comment. */
static int ignored_line(const char *line)
{
	if (*line == '#')
		return 1;
	while (*line == ' ' || *line == '\t' || *line == '\r')
		line++;
	return *line == '\n' || *line == 0;
}

/*
 * The queries go into a buffer of their own, each NUL-terminated: a continuation line is
 * joined with a newline (so that an SQL "--" comment ends where the line does), comment and
 * blank lines are left out wherever they are.
 */
static int parse_queries(struct sql_queries *q, const char *text, const char *path, char *why,
			 size_t whylen)
{
	struct sa out = SA_ZERO;
	long start[SQL_NQUERIES];
	int current = -1;
	unsigned long number = 0;

	for (int i = 0; i < SQL_NQUERIES; i++)
		start[i] = -1;
	for (const char *s = text, *next; *s; s = next) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		next = s + len + (nl ? 1 : 0);
		number++;
		if (ignored_line(s))
			continue;
		if (*s == ' ' || *s == '\t') {
			if (current < 0) {
				sa_free(&out);
				return load_bad(why, whylen, path, number,
						"continuation line without a query before it");
			}
			if (!sa_catc(&out, '\n') || !sa_catb(&out, s, len))
				goto nomem;
			continue;
		}
		const char *eq = memchr(s, '=', len);
		if (!eq) {
			sa_free(&out);
			return load_bad(why, whylen, path, number, "expected: name = SQL");
		}
		const char *end = eq;
		while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		current = -1;
		for (int i = 0; i < SQL_NQUERIES; i++)
			if (strlen(names[i]) == (size_t)(end - s) && !memcmp(s, names[i], (size_t)(end - s)))
				current = i;
		if (current < 0) {
			sa_free(&out);
			return load_bad(why, whylen, path, number,
					"unknown query name (domains, alias_domains, mailboxes, "
					"aliases, stamp, password)");
		}
		const char *sql = eq + 1;
		while (*sql == ' ' || *sql == '\t')
			sql++;
		if ((out.len && !sa_cat0(&out)) || !sa_ready(&out, 1))
			goto nomem;
		start[current] = (long)out.len;
		if (!sa_catb(&out, sql, (size_t)(s + len - sql)))
			goto nomem;
	}
	if (!sa_cat0(&out))
		goto nomem;
	for (int i = 0; i < SQL_NQUERIES; i++)
		if (start[i] >= 0)
			q->q[i] = out.s + start[i];
	free(q->text);
	q->text = out.s;
	return 1;
nomem:
	snprintf(why, whylen, "out of memory");
	sa_free(&out);
	return 0;
}

MYSQL *sql_connect(const char *optfile, char *why, size_t whylen)
{
	unsigned connect_timeout = CONNECT_TIMEOUT, io_timeout = IO_TIMEOUT;
	int fd = open(optfile, O_RDONLY | O_CLOEXEC);

	/* libmysqlclient says nothing about an option file it cannot read: check it ourselves. */
	if (fd < 0) {
		snprintf(why, whylen, "unable to open %s: %s", optfile, strerror(errno));
		return 0;
	}
	close(fd);
	MYSQL *db = mysql_init(0);
	if (!db) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	mysql_options(db, MYSQL_READ_DEFAULT_FILE, optfile);
	mysql_options(db, MYSQL_READ_DEFAULT_GROUP, "postroom");
	mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(db, 0, 0, 0, 0, 0, 0, 0)) {
		snprintf(why, whylen, "unable to connect to MySQL: %s", mysql_error(db));
		mysql_close(db);
		return 0;
	}
	return db;
}

int sql_error_permanent(MYSQL *db)
{
	switch (mysql_errno(db)) {
	case ER_PARSE_ERROR:
	case ER_NO_SUCH_TABLE:
	case ER_BAD_FIELD_ERROR:
	case ER_BAD_TABLE_ERROR:
	case ER_NON_UNIQ_ERROR:
	case ER_WRONG_VALUE_COUNT_ON_ROW:
		return 1;
	default:
		return 0;
	}
}

int sql_error_connection(MYSQL *db)
{
	unsigned e = mysql_errno(db);

	return (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR) || e == ER_SERVER_SHUTDOWN ||
	       e == ER_CONNECTION_KILLED;
}

int sql_each_row(MYSQL *db, const char *query, sql_row_fn *row, void *ctx, char *why,
		 size_t whylen)
{
	if (mysql_query(db, query) != 0) {
		snprintf(why, whylen, "query failed: %s: %.200s", mysql_error(db), query);
		return 0;
	}
	/* Row by row from the server: a large table never has to fit in memory at once. */
	MYSQL_RES *res = mysql_use_result(db);
	if (!res) {
		if (mysql_field_count(db) == 0)
			snprintf(why, whylen, "query returned no rows at all: %.200s", query);
		else
			snprintf(why, whylen, "query failed: %s: %.200s", mysql_error(db), query);
		return 0;
	}
	unsigned nfields = mysql_num_fields(res);
	int ok = 1;
	MYSQL_ROW r;
	while ((r = mysql_fetch_row(res))) {
		if (!ok)
			continue;	/* the rest must still be read before the next query */
		unsigned long *lengths = mysql_fetch_lengths(res);
		for (unsigned i = 0; i < nfields; i++)
			if (!r[i]) {
				r[i] = "";
				lengths[i] = 0;
			}
		ok = row(ctx, r, lengths, nfields, why, whylen);
	}
	if (ok && mysql_errno(db)) {
		snprintf(why, whylen, "reading rows failed: %s", mysql_error(db));
		ok = 0;
	}
	mysql_free_result(res);
	return ok;
}

int sql_exec(MYSQL *db, const char *statement, char *why, size_t whylen)
{
	if (mysql_query(db, statement) != 0) {
		snprintf(why, whylen, "%s: %.200s", mysql_error(db), statement);
		return 0;
	}
	MYSQL_RES *res = mysql_store_result(db);
	if (res)
		mysql_free_result(res);
	return 1;
}

int sql_cat_escaped(MYSQL *db, struct sa *out, const char *s)
{
	size_t n = strlen(s);

	if (n > (((size_t)-1) - 1) / 2 || !sa_ready(out, 2 * n + 1))
		return 0;
	out->len += mysql_real_escape_string(db, out->s + out->len, s, (unsigned long)n);
	return 1;
}

char *sql_expand(MYSQL *db, const char *query, const char *value)
{
	struct sa out = SA_ZERO;

	for (const char *s = query; *s;) {
		const char *p = strstr(s, "%u");
		size_t n = p ? (size_t)(p - s) : strlen(s);
		if (!sa_catb(&out, s, n) || (p && !sql_cat_escaped(db, &out, value)) ||
		    !sa_terminate(&out)) {
			sa_free(&out);
			return 0;
		}
		s = p ? p + 2 : s + n;
	}
	if (!sa_terminate(&out)) {
		sa_free(&out);
		return 0;
	}
	return out.s;
}
