/* postroom: ISC license, see LICENSE. */
/*
 * userdb-lookup ADDRESS...: where mail for each address goes, by the same resolution queue-run
 * and smtp-recv use (userdb(5)), read from users.cdb ($USERDB). One line per final target:
 *   ADDRESS<TAB>mailbox<TAB>MAILBOX<TAB>MAILDIR<TAB>QUOTA
 *   ADDRESS<TAB>remote<TAB>TARGET
 *   ADDRESS<TAB>failed<TAB>TARGET<TAB>REASON
 * An administrator's answer to "why did this mail go there?", as postmap -q is Postfix's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "resolve.h"
#include "userdb.h"

const char *PROG = "userdb-lookup";

#define USAGE "ADDRESS..."

static void print_targets(const char *addr, const struct targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct target *x = &t->t[i];
		switch (x->kind) {
		case TARGET_MAILBOX:
			printf("%s\tmailbox\t%s\t%s\t%llu\n", addr, x->addr, x->maildir, x->quota);
			break;
		case TARGET_REMOTE:
			printf("%s\tremote\t%s\n", addr, x->addr);
			break;
		case TARGET_FAILED:
			printf("%s\tfailed\t%s\t%s\n", addr, x->addr, x->reason);
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct userdb db = USERDB_ZERO;
	const char *path = env_need("USERDB");
	struct resolve_config rc;

	opterr = 0;
	if (getopt(argc, argv, "") != -1 || optind == argc)
		die_usage(USAGE);
	resolve_config_env(&rc);
	if (!userdb_open(&db, path))
		die_sys_code(EXIT_TEMP, "unable to open %s", path);
	for (int i = optind; i < argc; i++) {
		struct targets t = TARGETS_ZERO;
		if (!resolve(&db, argv[i], strlen(argv[i]), &rc, &t))
			die_sys_code(EXIT_TEMP, "unable to read %s", path);
		print_targets(argv[i], &t);
		targets_free(&t);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	userdb_close(&db);
	return 0;
}
