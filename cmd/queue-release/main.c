/* postroom: ISC license, see LICENSE. */
/*
 * queue-release id...: takes messages off hold, as postsuper -H is Postfix's: moved from hold/
 * back to msg/, due at once, and queue-run woken through the trigger as queue-inject wakes it.
 * Under the file's lock, as the other tools work, so that it never races queue-remove.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "queue_admin.h"

const char *PROG = "queue-release";

#define USAGE "id ..."

int main(int argc, char **argv)
{
	char esc[4 * QUEUE_ID_MAX + 4];
	const char *step;
	int status = 0, released = 0;

	opterr = 0;	/* our usage line is the one message */
	if (getopt(argc, argv, "") != -1 || optind == argc)
		die_usage(USAGE);
	const char *queuedir = env_need("QUEUEDIR");
	signal(SIGPIPE, SIG_IGN);	/* for the trigger: a reader gone is no reader */

	int dirfd = open(queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", queuedir);
	for (int i = optind; i < argc; i++) {
		const char *id = argv[i];
		log_escape(esc, sizeof esc, id, strlen(id));
		switch (queue_admin_apply(dirfd, QUEUE_OP_RELEASE, id, &step)) {
		case QUEUE_ADMIN_DONE:
			printf("%s: released\n", esc);
			released = 1;
			break;
		case QUEUE_ADMIN_ALREADY:
			printf("%s: not on hold\n", esc);
			break;
		case QUEUE_ADMIN_BADID:
			log_line("%s: not a valid queue id", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_NOTFOUND:
			log_line("%s: not in the queue", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_GONE:
			log_line("%s: not in the queue (delivered meanwhile?)", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_ERROR:
			log_line("%s: unable to %s: %s", esc, step, strerror(errno));
			status = EXIT_TEMP;
			break;
		}
	}
	/* One wake-up for them all, once their locks are gone (a queue-run that came while one was
	   held would skip it until its next scan). Its failure is no error: queue-run scans msg/
	   every minute anyway, as after queue-inject's wake-up. */
	if (released)
		(void)queue_admin_trigger(dirfd, 0);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	return status;
}
