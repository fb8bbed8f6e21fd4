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

static volatile sig_atomic_t stop_asked, recompile_asked;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		recompile_asked = 1;
	else
		stop_asked = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: a signal cuts the sleep short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, 0);
	sigaction(SIGINT, &sa, 0);
	sigaction(SIGHUP, &sa, 0);
}

/* The stamp stored in the CDB at path, into out (empty when there is none). */
static void stamp_in_place(const char *path, struct sa *out)
{
	struct userdb u = USERDB_ZERO;
	const char *s;
	size_t n;

	out->len = 0;
	if (!userdb_open(&u, path))
		return;
	if (userdb_stamp(&u, &s, &n) == 1 && !sa_catb(out, s, n))
		out->len = 0;
	userdb_close(&u);
}

static void pause_for(unsigned seconds)
{
	struct timespec left = { .tv_sec = seconds };

	while (!stop_asked && !recompile_asked && nanosleep(&left, &left) < 0 && errno == EINTR)
		;
}

/*
 * Logs line, unless the previous round logged trouble of the same kind: a long outage is one
 * line, not one every interval. An empty kind forgets the last one.
 */
static void log_trouble(struct sa *last, const char *kind, const char *line)
{
	size_t n = strlen(kind);

	if (n && last->len == n && !memcmp(last->s, kind, n))
		return;
	last->len = 0;
	if (!n || !sa_catb(last, kind, n))
		return;
	char esc[LOG_LINE_MAX / 2];
	log_line("%s", log_escape(esc, sizeof esc, line, strlen(line)));
}

#define UNREACHABLE "unreachable"

_Noreturn void sync_forever(const char *optfile, const struct sql_queries *q, const char *out,
			    unsigned interval)
{
	struct sa have = SA_ZERO, now = SA_ZERO, trouble = SA_ZERO;
	MYSQL *db = 0;
	char why[512], line[640];

	catch_signals();
	stamp_in_place(out, &have);
	log_line("started: %s from MySQL every %u s", out, interval);
	for (; !stop_asked; pause_for(interval)) {
		if (!db) {
			db = sql_connect(optfile, why, sizeof why);
			if (!db) {
				snprintf(line, sizeof line, "%s; keeping %s as it is, retrying", why,
					 out);
				log_trouble(&trouble, UNREACHABLE, line);
				continue;
			}
			if (trouble.len == strlen(UNREACHABLE) &&
			    !memcmp(trouble.s, UNREACHABLE, trouble.len))
				log_line("MySQL is reachable again");
			log_trouble(&trouble, "", "");
		}
		if (!userdb_sql_stamp(db, q, &now, why, sizeof why)) {
			/* Most likely the server went away: the next round reconnects. */
			snprintf(line, sizeof line, "%s; keeping %s as it is, retrying", why, out);
			log_trouble(&trouble, UNREACHABLE, line);
			mysql_close(db);
			db = 0;
			continue;
		}
		if (!recompile_asked && now.len == have.len && !memcmp(now.s, have.s, now.len))
			continue;
		recompile_asked = 0;
		struct userdb_sql_counts c;
		int r = userdb_sql_compile(db, q, out, &now, &c, why, sizeof why);
		if (r <= 0) {
			snprintf(line, sizeof line, "%s; keeping %s as it is, retrying", why, out);
			log_trouble(&trouble, why, line);
			if (r == 0) {
				mysql_close(db);
				db = 0;
			}
			continue;
		}
		log_trouble(&trouble, "", "");
		log_line("compiled %s: %lu domains, %lu mailboxes, %lu aliases, %lu bad rows skipped",
			 out, c.domains, c.mailboxes, c.aliases, c.skipped);
		struct sa swap = have;
		have = now;
		now = swap;
	}
	if (db)
		mysql_close(db);
	log_line("stopped");
	exit(0);
}
