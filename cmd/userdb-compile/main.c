/* postroom: ISC license, see LICENSE. */
/*
 * userdb-compile: compiles the user database into the CDB that every hot-path lookup reads,
 * from a text file (-f) or from MySQL (-m), once or, with -w, whenever MySQL's data changes.
 * The new CDB replaces the old one in one rename, and only when the whole input was read: a
 * mistake on line 40, or MySQL going away half-way, leaves the running system on the last good
 * database.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "die.h"
#include "fmt.h"
#include "log.h"
#include "userdb_build.h"
#include "userdb_sql.h"
#include "userdb-compile.h"

const char *PROG = "userdb-compile";

#define USAGE "-f USERS.TXT OUT.cdb | -m MYSQL-OPTIONS [-q QUERIES] [-w SECONDS] OUT.cdb"

static void compile_text(const char *text, const char *out)
{
	int fd = open(text, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", text);
	struct userdb_build b = USERDB_BUILD_ZERO;
	if (!userdb_build_start(&b, out))
		die_sys_code(EXIT_TEMP, "unable to create a temporary file next to %s", out);
	struct userdb_text_error err;
	int r = userdb_text_compile(fd, &b, &err);
	if (r < 0) {
		userdb_build_abort(&b);
		if (err.line)
			die(EXIT_PERM, "%s line %lu: %s", text, err.line, err.what);
		die(EXIT_PERM, "%s: %s", text, err.what);
	}
	if (r == 0) {
		userdb_build_abort(&b);
		die_sys_code(EXIT_TEMP, "unable to compile %s", text);
	}
	if (!userdb_build_finish(&b))
		die_sys_code(EXIT_TEMP, "unable to write %s", out);
}

static void compile_mysql(const char *optfile, const struct sql_queries *q, const char *out)
{
	char why[512];
	MYSQL *db = sql_connect(optfile, why, sizeof why);
	if (!db)
		die(EXIT_TEMP, "%s", why);
	struct userdb_sql_counts counts;
	int r = userdb_sql_compile_now(db, q, out, &counts, why, sizeof why);
	mysql_close(db);
	if (r <= 0)
		die(r < 0 ? EXIT_PERM : EXIT_TEMP, "%s", why);
	if (counts.skipped)
		log_line("compiled %s with %lu bad rows skipped", out, counts.skipped);
}

int main(int argc, char **argv)
{
	const char *text = 0, *optfile = 0, *queryfile = 0;
	unsigned long long interval = 0;
	int opt;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "f:m:q:w:")) != -1) {
		switch (opt) {
		case 'f':
			text = optarg;
			break;
		case 'm':
			optfile = optarg;
			break;
		case 'q':
			queryfile = optarg;
			break;
		case 'w':
			if (!scan_ullong_str(optarg, &interval) || interval == 0 || interval > 86400)
				die(EXIT_PERM, "-w wants a number of seconds from 1 to 86400: %s",
				    optarg);
			break;
		default:
			die_usage(USAGE);
		}
	}
	if (argc - optind != 1 || !text == !optfile || (text && (queryfile || interval)))
		die_usage(USAGE);
	const char *out = argv[optind];

	if (text) {
		compile_text(text, out);
		return 0;
	}
	struct sql_queries q;
	char why[512];
	int r = sql_queries_init(&q, queryfile, why, sizeof why);
	if (r <= 0)
		die(r < 0 ? EXIT_PERM : EXIT_TEMP, "%s", why);
	if (interval)
		sync_forever(optfile, &q, out, (unsigned)interval);
	compile_mysql(optfile, &q, out);
	sql_queries_free(&q);
	return 0;
}
