/* postroom: ISC license, see LICENSE. */
/*
 * userdb-admin -m MYSQL-OPTIONS [-c OUT.cdb] [-q QUERIES] [-y] COMMAND [ARG...]:
 * PostfixAdmin's pages on the command line. Adds and removes domains, mailboxes, aliases and
 * alias domains in PostfixAdmin's tables, writing the rows as PostfixAdmin does (a mailbox gets
 * its own alias row, maildir domain/local/), then compiles users.cdb again so that the change
 * is live at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "addr.h"
#include "die.h"
#include "fmt.h"
#include "log.h"
#include "password.h"
#include "sa.h"
#include "sql.h"
#include "userdb_sql.h"

const char *PROG = "userdb-admin";

#define USAGE "-m MYSQL-OPTIONS [-c OUT.cdb] [-q QUERIES] [-y] COMMAND [ARG...] (see userdb-admin(8))"
#define PASSWORD_MAX 1024

struct admin {
	MYSQL *db;
	enum password_scheme scheme;
	int changed;
};

/* --- statements --------------------------------------------------------------------------- */

/*
 * Runs fmt with each %s replaced by the next argument quoted as an SQL string: the only way
 * values get into statements here. Returns the number of rows the statement touched.
 */
static unsigned long long run(struct admin *a, const char *fmt, ...)
{
	struct sa stmt = SA_ZERO;
	va_list ap;
	char why[512];

	va_start(ap, fmt);
	for (const char *s = fmt; *s; s++) {
		int ok;
		if (s[0] == '%' && s[1] == 's') {
			ok = sa_catc(&stmt, '\'') && sql_cat_escaped(a->db, &stmt, va_arg(ap, char *)) &&
			     sa_catc(&stmt, '\'');
			s++;
		} else {
			ok = sa_catc(&stmt, *s);
		}
		if (!ok)
			die(EXIT_TEMP, "out of memory");
	}
	va_end(ap);
	if (!sa_terminate(&stmt))
		die(EXIT_TEMP, "out of memory");
	if (!sql_exec(a->db, stmt.s, why, sizeof why))
		die(sql_error_permanent(a->db) ? EXIT_PERM : EXIT_TEMP, "%s", why);
	sa_free(&stmt);
	unsigned long long n = mysql_affected_rows(a->db);
	if (n && n != (unsigned long long)-1)
		a->changed = 1;
	return n == (unsigned long long)-1 ? 0 : n;
}

static int count_row(void *ctx, char **f, unsigned long *len, unsigned n, char *why,
		     size_t whylen)
{
	(void)f, (void)len, (void)n, (void)why, (void)whylen;
	++*(unsigned long *)ctx;
	return 1;
}

/* 1 if "SELECT 1 FROM table WHERE column = value" finds a row. */
static int exists(struct admin *a, const char *table, const char *column, const char *value)
{
	struct sa q = SA_ZERO;
	unsigned long rows = 0;
	char why[512];

	if (!sa_catf(&q, "SELECT 1 FROM %s WHERE %s = '", table, column) ||
	    !sql_cat_escaped(a->db, &q, value) || !sa_cats(&q, "'") || !sa_terminate(&q))
		die(EXIT_TEMP, "out of memory");
	if (!sql_each_row(a->db, q.s, count_row, &rows, why, sizeof why))
		die(sql_error_permanent(a->db) ? EXIT_PERM : EXIT_TEMP, "%s", why);
	sa_free(&q);
	return rows > 0;
}

static int print_row(void *ctx, char **f, unsigned long *len, unsigned n, char *why,
		     size_t whylen)
{
	(void)ctx, (void)len, (void)why, (void)whylen;
	for (unsigned i = 0; i < n; i++)
		printf("%s%c", f[i], i + 1 < n ? '\t' : '\n');
	return 1;
}

static void list(struct admin *a, const char *fmt, const char *value)
{
	struct sa q = SA_ZERO;
	char why[512];

	const char *p = strstr(fmt, "%s");
	if (!sa_catb(&q, fmt, p ? (size_t)(p - fmt) : strlen(fmt)))
		die(EXIT_TEMP, "out of memory");
	if (p && (!sa_catc(&q, '\'') || !sql_cat_escaped(a->db, &q, value) ||
		  !sa_catc(&q, '\'') || !sa_cats(&q, p + 2)))
		die(EXIT_TEMP, "out of memory");
	if (!sa_terminate(&q))
		die(EXIT_TEMP, "out of memory");
	if (!sql_each_row(a->db, q.s, print_row, 0, why, sizeof why))
		die(sql_error_permanent(a->db) ? EXIT_PERM : EXIT_TEMP, "%s", why);
	sa_free(&q);
}

/* --- arguments ---------------------------------------------------------------------------- */

/* A domain name argument, lower-cased in place. */
static char *domain_arg(char *d)
{
	size_t n = strlen(d);

	addr_lower(d, n);
	if (addr_check_domain(d, n, ADDR_UTF8) != ADDR_OK)
		die(EXIT_PERM, "not a domain name: %s", d);
	return d;
}

/* An address argument, lower-cased in place; *domain points at its domain. */
static char *address_arg(char *addr, const char **domain)
{
	size_t n = strlen(addr);

	addr_lower(addr, n);
	if (addr_check_mailbox(addr, n, ADDR_UTF8) != ADDR_OK)
		die(EXIT_PERM, "not an address: %s", addr);
	*domain = addr + addr_at(addr, n) + 1;
	return addr;
}

static int yes_no(const char *s)
{
	if (!strcmp(s, "yes"))
		return 1;
	if (!strcmp(s, "no"))
		return 0;
	die(EXIT_PERM, "expected yes or no: %s", s);
}

static void need_domain(struct admin *a, const char *domain)
{
	if (!exists(a, "domain", "domain", domain))
		die(EXIT_PERM, "no such domain: %s", domain);
}

/* The terminal as it was before the password prompt turned echo off; restored on every exit. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_quiet;

static void restore_tty(void)
{
	if (tty_quiet)
		tcsetattr(0, TCSAFLUSH, &saved_tty);
	tty_quiet = 0;
}

static void restore_tty_and_die(int sig)
{
	restore_tty();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* The password: the first line of stdin; asked for without echo when stdin is a terminal. */
static void read_password(char *out)
{
	if (isatty(0) && tcgetattr(0, &saved_tty) == 0) {
		struct termios quiet = saved_tty;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		atexit(restore_tty);
		signal(SIGINT, restore_tty_and_die);
		signal(SIGTERM, restore_tty_and_die);
		signal(SIGQUIT, restore_tty_and_die);
		tty_quiet = 1;
		tcsetattr(0, TCSAFLUSH, &quiet);
		fputs("password: ", stderr);
	}
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (n == PASSWORD_MAX - 1)
			die(EXIT_PERM, "password longer than %d bytes", PASSWORD_MAX - 1);
		out[n++] = c;
	}
	if (tty_quiet) {
		restore_tty();
		fputs("\n", stderr);
	}
	if (n && out[n - 1] == '\r')
		n--;
	out[n] = 0;
	if (!n)
		die(EXIT_PERM, "empty password (give it on the first line of stdin)");
	if (memchr(out, 0, n))
		die(EXIT_PERM, "the password contains a NUL byte");
}

static void new_hash(struct admin *a, char *hash)
{
	char password[PASSWORD_MAX];

	read_password(password);
	if (!password_hash(password, a->scheme, hash))
		die_sys_code(EXIT_TEMP, "unable to hash the password");
	memset(password, 0, sizeof password);
}

/* --- commands ----------------------------------------------------------------------------- */

static void domain_add(struct admin *a, char **arg)
{
	const char *d = domain_arg(arg[0]);

	if (exists(a, "domain", "domain", d))
		die(EXIT_PERM, "domain %s exists already", d);
	run(a, "INSERT INTO domain (domain, description, transport, created, modified, active)"
	       " VALUES (%s, %s, 'virtual', NOW(), NOW(), 1)", d, arg[1] ? arg[1] : "");
}

static void domain_del(struct admin *a, char **arg)
{
	const char *d = domain_arg(arg[0]);

	need_domain(a, d);
	/* As PostfixAdmin deletes a domain: with everything in it. */
	run(a, "DELETE FROM alias WHERE domain = %s", d);
	run(a, "DELETE FROM mailbox WHERE domain = %s", d);
	run(a, "DELETE FROM alias_domain WHERE alias_domain = %s OR target_domain = %s", d, d);
	run(a, "DELETE FROM domain WHERE domain = %s", d);
}

static void domain_active(struct admin *a, char **arg)
{
	const char *d = domain_arg(arg[0]);

	need_domain(a, d);
	run(a, "UPDATE domain SET active = %s, modified = NOW() WHERE domain = %s",
	    yes_no(arg[1]) ? "1" : "0", d);
}

static void alias_domain_add(struct admin *a, char **arg)
{
	const char *alias = domain_arg(arg[0]), *target = domain_arg(arg[1]);

	need_domain(a, target);
	if (!strcmp(alias, target))
		die(EXIT_PERM, "an alias domain cannot point at itself: %s", alias);
	if (exists(a, "alias_domain", "alias_domain", target))
		die(EXIT_PERM, "%s is itself an alias domain", target);
	if (exists(a, "alias_domain", "target_domain", alias))
		die(EXIT_PERM, "%s is the target of an alias domain", alias);
	if (!exists(a, "domain", "domain", alias))
		run(a, "INSERT INTO domain (domain, description, transport, created, modified,"
		       " active) VALUES (%s, %s, 'virtual', NOW(), NOW(), 1)", alias, "");
	if (exists(a, "alias_domain", "alias_domain", alias))
		die(EXIT_PERM, "alias domain %s exists already", alias);
	run(a, "INSERT INTO alias_domain (alias_domain, target_domain, created, modified, active)"
	       " VALUES (%s, %s, NOW(), NOW(), 1)", alias, target);
}

static void alias_domain_del(struct admin *a, char **arg)
{
	const char *alias = domain_arg(arg[0]);

	if (!run(a, "DELETE FROM alias_domain WHERE alias_domain = %s", alias))
		die(EXIT_PERM, "no such alias domain: %s", alias);
}

static void mailbox_add(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = address_arg(arg[0], &domain);
	unsigned long long quota = 0;
	char hash[PASSWORD_HASH_MAX], quota_text[FMT_ULLONG], maildir[600];

	if (arg[1] && !scan_ullong_str(arg[1], &quota))
		die(EXIT_PERM, "quota is not a number of bytes: %s", arg[1]);
	need_domain(a, domain);
	if (exists(a, "mailbox", "username", addr) || exists(a, "alias", "address", addr))
		die(EXIT_PERM, "%s exists already", addr);
	new_hash(a, hash);
	snprintf(quota_text, sizeof quota_text, "%llu", quota);
	size_t local_len = (size_t)(domain - 1 - addr);
	snprintf(maildir, sizeof maildir, "%s/%.*s/", domain, (int)local_len, addr);
	char local[ADDR_LOCAL_MAX + 1];
	snprintf(local, sizeof local, "%.*s", (int)local_len, addr);
	run(a, "INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain,"
	       " created, modified, active) VALUES (%s, %s, '', %s, %s, %s, %s, NOW(), NOW(), 1)",
	    addr, hash, maildir, quota_text, local, domain);
	/* PostfixAdmin's own alias row for every mailbox: mail to it goes to itself. */
	run(a, "INSERT INTO alias (address, goto, domain, created, modified, active)"
	       " VALUES (%s, %s, %s, NOW(), NOW(), 1)", addr, addr, domain);
}

static void mailbox_del(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = address_arg(arg[0], &domain);

	if (!run(a, "DELETE FROM mailbox WHERE username = %s", addr))
		die(EXIT_PERM, "no such mailbox: %s", addr);
	run(a, "DELETE FROM alias WHERE address = %s", addr);
}

static void mailbox_active(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = address_arg(arg[0], &domain);

	if (!exists(a, "mailbox", "username", addr))
		die(EXIT_PERM, "no such mailbox: %s", addr);
	run(a, "UPDATE mailbox SET active = %s, modified = NOW() WHERE username = %s",
	    yes_no(arg[1]) ? "1" : "0", addr);
}

static void password(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = address_arg(arg[0], &domain);
	char hash[PASSWORD_HASH_MAX];

	if (!exists(a, "mailbox", "username", addr))
		die(EXIT_PERM, "no such mailbox: %s", addr);
	new_hash(a, hash);
	run(a, "UPDATE mailbox SET password = %s, modified = NOW() WHERE username = %s", hash,
	    addr);
}

/* The alias's address: local@domain, or @domain for a catch-all. */
static char *alias_address(char *addr, const char **domain)
{
	if (addr[0] != '@')
		return address_arg(addr, domain);
	*domain = domain_arg(addr + 1);
	return addr;
}

static void alias_set(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = alias_address(arg[0], &domain);
	struct sa targets = SA_ZERO;

	need_domain(a, domain);
	for (char *t = arg[1], *end; t; t = end) {
		end = strchr(t, ',');
		if (end)
			*end++ = 0;
		const char *ignored;
		if (!sa_cats(&targets, address_arg(t, &ignored)) ||
		    (end && !sa_catc(&targets, ',')))
			die(EXIT_TEMP, "out of memory");
	}
	if (!sa_terminate(&targets))
		die(EXIT_TEMP, "out of memory");
	if (exists(a, "alias", "address", addr))
		run(a, "UPDATE alias SET goto = %s, modified = NOW() WHERE address = %s", targets.s,
		    addr);
	else
		run(a, "INSERT INTO alias (address, goto, domain, created, modified, active)"
		       " VALUES (%s, %s, %s, NOW(), NOW(), 1)", addr, targets.s, domain);
	sa_free(&targets);
}

static void alias_del(struct admin *a, char **arg)
{
	const char *domain;
	char *addr = alias_address(arg[0], &domain);

	if (exists(a, "mailbox", "username", addr))
		die(EXIT_PERM, "%s is a mailbox: its own alias goes with mailbox-del", addr);
	if (!run(a, "DELETE FROM alias WHERE address = %s", addr))
		die(EXIT_PERM, "no such alias: %s", addr);
}

static void show(struct admin *a, char **arg)
{
	if (!arg[0]) {
		list(a, "SELECT d.domain, d.active, COALESCE(ad.target_domain, '') FROM domain d"
			" LEFT JOIN alias_domain ad ON ad.alias_domain = d.domain"
			" WHERE d.domain <> 'ALL' ORDER BY d.domain", 0);
		return;
	}
	const char *d = domain_arg(arg[0]);
	need_domain(a, d);
	list(a, "SELECT 'mailbox', username, active, quota, maildir FROM mailbox"
		" WHERE domain = %s ORDER BY username", d);
	list(a, "SELECT 'alias', address, active, goto FROM alias WHERE domain = %s"
		" ORDER BY address", d);
}

static const struct command {
	const char *name;
	int min_args, max_args;
	void (*run)(struct admin *, char **);
	const char *usage;
} commands[] = {
	{ "domain-add", 1, 2, domain_add, "DOMAIN [DESCRIPTION]" },
	{ "domain-del", 1, 1, domain_del, "DOMAIN" },
	{ "domain-active", 2, 2, domain_active, "DOMAIN yes|no" },
	{ "alias-domain-add", 2, 2, alias_domain_add, "ALIAS-DOMAIN TARGET-DOMAIN" },
	{ "alias-domain-del", 1, 1, alias_domain_del, "ALIAS-DOMAIN" },
	{ "mailbox-add", 1, 2, mailbox_add, "ADDRESS [QUOTA-BYTES] < password" },
	{ "mailbox-del", 1, 1, mailbox_del, "ADDRESS" },
	{ "mailbox-active", 2, 2, mailbox_active, "ADDRESS yes|no" },
	{ "password", 1, 1, password, "ADDRESS < password" },
	{ "alias-set", 2, 2, alias_set, "ADDRESS|@DOMAIN TARGET[,TARGET...]" },
	{ "alias-del", 1, 1, alias_del, "ADDRESS|@DOMAIN" },
	{ "list", 0, 1, show, "[DOMAIN]" },
};

static const struct command *find_command(const char *name, int nargs)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->name, name))
			continue;
		if (nargs < c->min_args || nargs > c->max_args)
			die(EXIT_PERM, "usage: userdb-admin ... %s %s", c->name, c->usage);
		return c;
	}
	die(EXIT_PERM, "unknown command: %s (see userdb-admin(8))", name);
}

/* Compiles out again from what MySQL holds now, with the queries the sync service uses. */
static void recompile(struct admin *a, const struct sql_queries *q, const char *out)
{
	struct userdb_sql_counts counts;
	char why[512];

	int r = userdb_sql_compile_now(a->db, q, out, &counts, why, sizeof why);
	if (r <= 0)
		die(r < 0 ? EXIT_PERM : EXIT_TEMP, "the change is in MySQL, but %s", why);
}

int main(int argc, char **argv)
{
	struct admin a = { .scheme = PASSWORD_SHA512_CRYPT };
	const char *optfile = 0, *queryfile = 0, *out = getenv("USERDB");
	int opt;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "+m:c:q:y")) != -1) {
		switch (opt) {
		case 'm':
			optfile = optarg;
			break;
		case 'c':
			out = optarg;
			break;
		case 'q':
			queryfile = optarg;
			break;
		case 'y':
			a.scheme = PASSWORD_YESCRYPT;
			break;
		default:
			die_usage(USAGE);
		}
	}
	if (!optfile || optind == argc)
		die_usage(USAGE);
	const struct command *c = find_command(argv[optind], argc - optind - 1);

	/* The queries file first: a mistake in it must stop us before the change, not after. */
	struct sql_queries q;
	char why[512];
	int r = sql_queries_init(&q, queryfile, why, sizeof why);
	if (r <= 0)
		die(r < 0 ? EXIT_PERM : EXIT_TEMP, "%s", why);
	a.db = sql_connect(optfile, why, sizeof why);
	if (!a.db)
		die(EXIT_TEMP, "%s", why);
	/* One transaction: a mailbox never exists without its alias row, nor the other way. */
	if (!sql_exec(a.db, "START TRANSACTION", why, sizeof why))
		die(EXIT_TEMP, "%s", why);
	c->run(&a, argv + optind + 1);
	if (!sql_exec(a.db, "COMMIT", why, sizeof why))
		die(EXIT_TEMP, "%s", why);
	if (a.changed && out && *out)
		recompile(&a, &q, out);
	mysql_close(a.db);
	sql_queries_free(&q);
	return 0;
}
