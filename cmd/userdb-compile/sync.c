/* postroom: ISC license, see LICENSE. */
/*
 * The sync service: every interval, one cheap question to MySQL (the stamp query); a full
 * compile only when the answer changed. The stamp of the CDB in place is stored in it, so a
 * restart does not recompile what is already current. While MySQL is unreachable the last CDB
 * stays in place and mail keeps flowing; one line says so when it happens, one when it ends.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "userdb.h"
#include "userdb_sql.h"
#include "userdb-compile.h"

/*
 * SIGTERM and SIGINT (stop) and SIGHUP (compile now) stay blocked and are taken only while the
 * loop waits, with sigtimedwait: one that comes during a compile waits for its end, and none can
 * slip in between a check and the sleep.
 */
static sigset_t our_signals;
static int stop_asked, recompile_asked;

static void block_signals(void)
{
	sigemptyset(&our_signals);
	sigaddset(&our_signals, SIGTERM);
	sigaddset(&our_signals, SIGINT);
	sigaddset(&our_signals, SIGHUP);
	sigprocmask(SIG_BLOCK, &our_signals, 0);
}

/* The stamp stored in the CDB at path, into out: 1, or 0 when there is none (no CDB yet, or one
 * compiled from a text file). */
static int stamp_in_place(const char *path, struct sa *out)
{
	struct userdb u = USERDB_ZERO;
	const char *s;
	size_t n;
	int found = 0;

	out->len = 0;
	if (!userdb_open(&u, path))
		return 0;
	if (userdb_stamp(&u, &s, &n) == 1 && sa_catb(out, s, n))
		found = 1;
	userdb_close(&u);
	return found;
}

static void pause_for(unsigned seconds)
{
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	while (!stop_asked && !recompile_asked) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		struct timespec left = { end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec };
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			return;
		int sig = sigtimedwait(&our_signals, 0, &left);
		if (sig == SIGHUP)
			recompile_asked = 1;
		else if (sig > 0)
			stop_asked = 1;
		else if (errno == EAGAIN)
			return;
	}
}

/*
 * Logs line, unless the previous round logged trouble of the same kind: a long outage is one
 * line, not one every interval. Clearing last (len 0) forgets it.
 */
static void log_trouble(struct sa *last, const char *kind, const char *line)
{
	size_t n = strlen(kind);

	if (last->len == n && !memcmp(last->s, kind, n))
		return;
	char esc[LOG_LINE_MAX / 2];
	log_line("%s", log_escape(esc, sizeof esc, line, strlen(line)));
	last->len = 0;
	if (!sa_catb(last, kind, n))
		last->len = 0;	/* out of memory: the next round logs again, no worse */
}

#define UNREACHABLE "unreachable"

struct sync {
	const char *optfile;
	const struct sql_queries *q;
	const char *out;
	MYSQL *db;
	struct sa have;		/* the stamp of the CDB in place */
	int have_stamp;		/* 0: compile whatever the stamp says */
	struct sa now;
	struct sa trouble;	/* the kind of trouble last logged */
	char why[512];
};

static void trouble(struct sync *s, const char *kind)
{
	char line[640];

	snprintf(line, sizeof line, "%s; keeping %s as it is, retrying", s->why, s->out);
	log_trouble(&s->trouble, kind, line);
}

static void disconnect(struct sync *s)
{
	if (s->db)
		mysql_close(s->db);
	s->db = 0;
}

/* Connects unless connected. 1, or 0 (logged). */
static int connect_db(struct sync *s)
{
	if (s->db)
		return 1;
	s->db = sql_connect(s->optfile, s->why, sizeof s->why);
	if (!s->db) {
		trouble(s, UNREACHABLE);
		return 0;
	}
	/* Only an outage ends here: a compile that keeps failing is not logged again. */
	if (s->trouble.len == strlen(UNREACHABLE) && !memcmp(s->trouble.s, UNREACHABLE, s->trouble.len)) {
		log_line("MySQL is reachable again");
		s->trouble.len = 0;
	}
	return 1;
}

/*
 * The stamp into s->now. A connection the server dropped (its idle timeout, a restart) is
 * made again at once, once; a query the server refuses keeps the connection. 1, or 0 (logged).
 */
static int read_stamp(struct sync *s)
{
	if (userdb_sql_stamp(s->db, s->q, &s->now, s->why, sizeof s->why))
		return 1;
	if (!sql_error_connection(s->db)) {
		trouble(s, s->why);
		return 0;
	}
	disconnect(s);
	if (!connect_db(s))
		return 0;
	if (userdb_sql_stamp(s->db, s->q, &s->now, s->why, sizeof s->why))
		return 1;
	trouble(s, sql_error_connection(s->db) ? UNREACHABLE : s->why);
	if (sql_error_connection(s->db))
		disconnect(s);
	return 0;
}

/* One round: the stamp, and a compile when it changed. */
static void sync_once(struct sync *s)
{
	if (!connect_db(s) || !read_stamp(s))
		return;
	if (!recompile_asked && s->have_stamp && s->now.len == s->have.len &&
	    !memcmp(s->now.s, s->have.s, s->now.len))
		return;
	recompile_asked = 0;
	struct userdb_sql_counts c;
	/* s->now becomes the stamp of the snapshot the rows came from. */
	int r = userdb_sql_compile(s->db, s->q, s->out, &s->now, &c, s->why, sizeof s->why);
	if (r <= 0) {
		trouble(s, s->why);
		if (r == 0)
			disconnect(s);
		return;
	}
	s->trouble.len = 0;
	log_line("compiled %s: %lu domains, %lu mailboxes, %lu aliases, %lu bad rows skipped",
		 s->out, c.domains, c.mailboxes, c.aliases, c.skipped);
	struct sa swap = s->have;
	s->have = s->now;
	s->now = swap;
	s->have_stamp = 1;
}

_Noreturn void sync_forever(const char *optfile, const struct sql_queries *q, const char *out,
			    unsigned interval)
{
	struct sync s = { .optfile = optfile, .q = q, .out = out, .have = SA_ZERO, .now = SA_ZERO,
			  .trouble = SA_ZERO };

	block_signals();
	s.have_stamp = stamp_in_place(out, &s.have);
	log_line("started: %s from MySQL every %u s", out, interval);
	for (; !stop_asked; pause_for(interval))
		sync_once(&s);
	disconnect(&s);
	log_line("stopped");
	exit(0);
}
