/* postroom: ISC license, see LICENSE. */
/*
 * checkpassword-mysql [-m MYSQL-OPTIONS [-q QUERIES]] [-d SECONDS] [-p] PROG...
 *
 * The checkpassword interface: "user\0password\0timestamp\0" on fd 3 (at most 512 bytes); on
 * success, PROG runs as its arguments say, with USER, HOME and MAILDIR set and the working
 * directory at the mailbox. Exit 1: wrong credentials; 2: misuse; 111: a temporary failure.
 *
 * The mailbox is looked up in users.cdb ($USERDB); with -m, in MySQL first, so a password
 * changed there works at once, and in the CDB only when MySQL cannot be reached, so logins go
 * on while it is down.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "die.h"
#include "fmt.h"
#include "log.h"
#include "maildir.h"
#include "password.h"
#include "sql.h"
#include "userdb.h"

const char *PROG = "checkpassword-mysql";

#define USAGE "[-m MYSQL-OPTIONS [-q QUERIES]] [-d SECONDS] [-p] PROG..."
#define EXIT_BAD_CREDENTIALS 1
#define EXIT_MISUSE 2
#define INPUT_MAX 512	/* the checkpassword interface's limit */

struct credentials {
	char input[INPUT_MAX + 1];
	char *user;	/* lower-cased */
	char *password;
};

/* What the database says about the user. */
struct account {
	int found;
	int active;
	char *password_hash;	/* malloc'd, as is maildir */
	char *maildir;
	const char *source;	/* "mysql" or "cdb", for the log */
};

struct options {
	const char *optfile;
	const char *queryfile;
	unsigned long long delay;
	int allow_plain;
	struct timespec start;	/* a refusal comes delay seconds after this, whatever it cost */
};

_Noreturn static void misuse(const char *what)
{
	log_line("fatal: %s", what);
	exit(EXIT_MISUSE);
}

/* Reads fd 3 to end of file: at most 512 bytes, user and password each NUL-terminated. */
static void read_credentials(struct credentials *c)
{
	size_t len = 0;

	for (;;) {
		ssize_t r = read(3, c->input + len, sizeof c->input - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			misuse(errno == EBADF ? "nothing on fd 3 (the checkpassword interface)" :
						"unable to read fd 3");
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > INPUT_MAX)
			misuse("more than 512 bytes on fd 3");
	}
	close(3);
	char *nul = memchr(c->input, 0, len);
	char *nul2 = nul ? memchr(nul + 1, 0, len - (size_t)(nul + 1 - c->input)) : 0;
	if (!nul2)
		misuse("fd 3 does not hold user\\0password\\0");
	c->user = c->input;
	c->password = nul + 1;
	addr_lower(c->user, strlen(c->user));
}

static int lookup_cdb(const char *user, struct account *a)
{
	struct userdb db = USERDB_ZERO;
	struct userdb_mailbox mb;
	const char *path = env_need("USERDB");

	a->source = "cdb";
	if (!userdb_open(&db, path))
		die_sys_code(EXIT_TEMP, "unable to open %s", path);
	int r = userdb_mailbox(&db, user, strlen(user), &mb);
	if (r < 0)
		die_sys_code(EXIT_TEMP, "unable to read %s", path);
	if (r == 1) {
		a->found = a->active = 1;
		a->password_hash = strndup(mb.password, mb.password_len);
		a->maildir = strndup(mb.maildir, mb.maildir_len);
		if (!a->password_hash || !a->maildir)
			die(EXIT_TEMP, "out of memory");
	}
	userdb_close(&db);
	return 1;
}

struct lookup {
	const char *user;
	struct account *a;
};

static int take_row(void *ctx, char **f, unsigned long *len, unsigned n, char *why,
		    size_t whylen)
{
	struct lookup *l = ctx;
	struct account *a = l->a;

	if (n < 4) {
		snprintf(why, whylen, "the password query returns %u columns, it must return 4", n);
		return 0;
	}
	/*
	 * The server compares with its collation, which may find "alicé" or "alice " equal to
	 * "alice": only the address itself, byte for byte once lower-cased, is this user.
	 */
	addr_lower(f[0], len[0]);
	if (a->found || len[0] != strlen(l->user) || memcmp(f[0], l->user, len[0]))
		return 1;
	a->found = 1;
	a->active = len[3] == 1 && f[3][0] == '1';
	a->password_hash = strndup(f[1], len[1]);
	a->maildir = strndup(f[2], len[2]);
	if (!a->password_hash || !a->maildir) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	return 1;
}

/* Asks MySQL; returns 0 when it cannot be reached, so that the CDB answers instead. */
static int lookup_mysql(const struct options *o, const char *user, struct account *a)
{
	struct sql_queries q;
	char why[512];

	if (sql_queries_init(&q, o->queryfile, why, sizeof why) <= 0)
		die(EXIT_TEMP, "%s", why);
	/* A missing or unreadable option file is a mistake to fix, not an outage to ride out. */
	if (access(o->optfile, R_OK) != 0)
		die_sys_code(EXIT_TEMP, "unable to read %s", o->optfile);
	MYSQL *db = sql_connect(o->optfile, why, sizeof why);
	if (!db) {
		log_line("%s; asking USERDB instead", why);
		sql_queries_free(&q);
		return 0;
	}
	a->source = "mysql";
	char *query = sql_expand(db, q.q[SQL_PASSWORD], user);
	if (!query)
		die(EXIT_TEMP, "out of memory");
	struct lookup l = { .user = user, .a = a };
	if (!sql_each_row(db, query, take_row, &l, why, sizeof why))
		die(EXIT_TEMP, "%s", why);
	free(query);
	mysql_close(db);
	sql_queries_free(&q);
	return 1;
}

_Noreturn static void refuse(const struct options *o, const struct credentials *c,
			     const char *reason)
{
	char user[300];
	const char *remote = getenv("TCPREMOTEIP");

	log_line("refused user \"%s\" from %s: %s",
		 log_escape(user, sizeof user, c->user, strlen(c->user)),
		 remote && *remote ? remote : "unknown", reason);
	/*
	 * Until start + delay, not for delay: an unknown user, a cheap hash and a costly one are
	 * then refused after the same time, which tells nothing about who exists.
	 */
	struct timespec until = o->start;
	until.tv_sec += (time_t)o->delay;
	if (o->delay)
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, 0) == EINTR)
			;
	exit(EXIT_BAD_CREDENTIALS);
}

/* Sets USER, HOME and MAILDIR, enters the mailbox (made if new, as Dovecot does) and runs PROG. */
_Noreturn static void run_prog(const struct credentials *c, const struct account *a, char **prog)
{
	const char *root = env_need("MAILROOT");
	char path[PATH_MAX];
	size_t n = strlen(a->maildir);

	while (n > 1 && a->maildir[n - 1] == '/')
		n--;
	if ((size_t)snprintf(path, sizeof path, "%s/%.*s", root, (int)n, a->maildir) >= sizeof path)
		die(EXIT_TEMP, "mailbox path too long for %s", c->user);
	if (chdir(path) < 0) {
		if (errno != ENOENT || !maildir_make(path) || chdir(path) < 0)
			die_sys_code(EXIT_TEMP, "unable to enter %s", path);
	}
	/* Absolute, so that PROG can use them from anywhere, whatever MAILROOT looked like. */
	if (!getcwd(path, sizeof path))
		die_sys_code(EXIT_TEMP, "unable to find the absolute path of the mailbox of %s",
			     c->user);
	if (setenv("USER", c->user, 1) < 0 || setenv("HOME", path, 1) < 0 ||
	    setenv("MAILDIR", path, 1) < 0)
		die(EXIT_TEMP, "out of memory");
	char user[300];
	const char *remote = getenv("TCPREMOTEIP");
	log_line("authenticated %s from %s (%s)", log_escape(user, sizeof user, c->user,
							   strlen(c->user)),
		 remote && *remote ? remote : "unknown", a->source);
	execvp(prog[0], prog);
	die_sys_code(EXIT_TEMP, "unable to run %s", prog[0]);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	int opt;

	opterr = 0;	/* our usage line is the one message */
	/* "+": the options end at PROG, whose own options are its own. */
	while ((opt = getopt(argc, argv, "+m:q:d:p")) != -1) {
		switch (opt) {
		case 'm':
			o->optfile = optarg;
			break;
		case 'q':
			o->queryfile = optarg;
			break;
		case 'd':
			if (!scan_ullong_str(optarg, &o->delay) || o->delay > 60)
				misuse("-d wants a number of seconds from 0 to 60");
			break;
		case 'p':
			o->allow_plain = 1;
			break;
		default:
			misuse("usage: checkpassword-mysql " USAGE);
		}
	}
	if (optind == argc || (o->queryfile && !o->optfile))
		misuse("usage: checkpassword-mysql " USAGE);
}

int main(int argc, char **argv)
{
	struct options o = { .delay = 2 };
	struct credentials c;
	struct account a = { 0 };

	clock_gettime(CLOCK_MONOTONIC, &o.start);
	parse_options(argc, argv, &o);
	read_credentials(&c);
	if (!o.optfile || !lookup_mysql(&o, c.user, &a))
		lookup_cdb(c.user, &a);
	if (!a.found) {
		password_check_nobody(c.password);
		refuse(&o, &c, "unknown user");
	}
	if (!a.active) {
		password_check_nobody(c.password);
		refuse(&o, &c, "mailbox or domain inactive");
	}
	if (!userdb_maildir_safe(a.maildir, strlen(a.maildir))) {
		password_check_nobody(c.password);
		refuse(&o, &c, "unsafe maildir in the database");
	}
	switch (password_check(a.password_hash, strlen(a.password_hash), c.password,
			       o.allow_plain)) {
	case PASSWORD_OK:
		break;
	case PASSWORD_WRONG:
		refuse(&o, &c, "wrong password");
	case PASSWORD_UNUSABLE:
		password_check_nobody(c.password);
		refuse(&o, &c, o.allow_plain ? "password hash scheme not supported" :
			       "password hash scheme not supported or {PLAIN} not allowed (-p)");
	}
	memset(c.password, 0, strlen(c.password));
	run_prog(&c, &a, argv + optind);
}
