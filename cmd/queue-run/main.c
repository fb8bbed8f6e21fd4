/* postroom: ISC license, see LICENSE. */
/*
 * queue-run: delivers what is in the queue. It runs forever under s6, woken by queue-inject
 * through the trigger FIFO, or with -1 makes one pass and exits, for an administrator who wants
 * to see what happens to the mail that is waiting. Each message is delivered by its own worker
 * process, so that a slow Maildir or a crash touches one message, and up to -c at once, so that
 * the disk's flushes overlap.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "fmt.h"
#include "queue-run.h"

const char *PROG = "queue-run";

#define USAGE "[-1] [-c concurrency] [-d program]"
#define CONCURRENCY_DEFAULT 10
#define CONCURRENCY_MAX 1000

int main(int argc, char **argv)
{
	static struct config c = { .concurrency = CONCURRENCY_DEFAULT };
	unsigned long long n;
	int opt;

	c.localdelivery = getenv("LOCALDELIVERY");
	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "1c:d:")) != -1) {
		switch (opt) {
		case '1':
			c.once = 1;
			break;
		case 'c':
			if (!scan_ullong_str(optarg, &n) || n < 1 || n > CONCURRENCY_MAX)
				die_usage(USAGE);
			c.concurrency = (unsigned)n;
			break;
		case 'd':
			c.localdelivery = optarg;
			break;
		default:
			die_usage(USAGE);
		}
	}
	if (optind != argc)
		die_usage(USAGE);
	if (c.localdelivery && !*c.localdelivery)
		c.localdelivery = 0;
	c.queuedir = env_need("QUEUEDIR");
	c.userdb = env_need("USERDB");
	c.mailroot = env_need("MAILROOT");
	resolve_config_env(&c.resolve);
	const char *overquota = getenv("OVERQUOTA");
	if (overquota && *overquota && strcmp(overquota, "defer")) {
		if (strcmp(overquota, "bounce"))
			die(EXIT_PERM, "OVERQUOTA must be defer or bounce");
		c.overquota_permanent = 1;
	}
	return schedule_run(&c);
}
