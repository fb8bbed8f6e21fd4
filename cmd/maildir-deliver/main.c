/* postroom: ISC license, see LICENSE. */
/*
 * maildir-deliver MAILDIR: one message from stdin into one Maildir, with SENDER and RECIPIENT from
 * the environment as qmail-local gives them (and ORIGINAL_RECIPIENT as Postfix's pipe(8) does). queue-run does the same in-process through
 * lib/maildir; this program is the same step for a shell, a filter, or queue-run's external path.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "fmt.h"
#include "log.h"
#include "maildir.h"

const char *PROG = "maildir-deliver";

#define USAGE "[-q quota-bytes] MAILDIR"

int main(int argc, char **argv)
{
	struct maildir_delivery d = { 0 };
	const char *quota = getenv("QUOTA");
	const char *overquota = getenv("OVERQUOTA");
	int opt;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "q:")) != -1) {
		if (opt != 'q')
			die_usage(USAGE);
		quota = optarg;
	}
	if (argc - optind != 1 || !argv[optind][0])
		die_usage(USAGE);
	d.maildir = argv[optind];
	d.sender = getenv("SENDER");
	d.recipient = getenv("RECIPIENT");
	d.original_recipient = getenv("ORIGINAL_RECIPIENT");	/* Postfix pipe(8)'s name for it */
	if (!d.sender || !d.recipient || !*d.recipient)
		die(EXIT_PERM, "SENDER and RECIPIENT must be set");
	if (quota && *quota && !scan_ullong_str(quota, &d.quota))
		die(EXIT_PERM, "quota is not a number of bytes: %s", quota);
	if (overquota && *overquota && strcmp(overquota, "defer")) {
		if (strcmp(overquota, "bounce"))
			die(EXIT_PERM, "OVERQUOTA must be defer or bounce");
		d.overquota_permanent = 1;
	}

	char why[1024];
	switch (maildir_deliver(&d, 0, 0, -1, why, sizeof why)) {
	case MAILDIR_OK:
		return 0;
	case MAILDIR_PERM:
		die(EXIT_PERM, "%s", why);
	default:
		die(EXIT_TEMP, "%s", why);
	}
}
