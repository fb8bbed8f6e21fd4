/* postroom: ISC license, see LICENSE. */
/*
 * queue-remove id...: takes messages out of the queue for good, from msg/ or hold/, as postsuper
 * -d is Postfix's. It waits for an attempt in progress (queue-run holds the file's lock while it
 * delivers) and checks that the message is still there once it has the lock, so that when it
 * says "removed" no delivery of the message can start any more, and none was cut short.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "queue_admin.h"

const char *PROG = "queue-remove";

#define USAGE "id ..."

int main(int argc, char **argv)
{
	char esc[4 * QUEUE_ID_MAX + 4];
	const char *step;
	int status = 0;

	opterr = 0;	/* our usage line is the one message */
	if (getopt(argc, argv, "") != -1 || optind == argc)
		die_usage(USAGE);
	const char *queuedir = env_need("QUEUEDIR");

	int dirfd = open(queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", queuedir);
	for (int i = optind; i < argc; i++) {
		const char *id = argv[i];
		log_escape(esc, sizeof esc, id, strlen(id));
		switch (queue_admin_apply(dirfd, QUEUE_OP_REMOVE, id, &step)) {
		case QUEUE_ADMIN_DONE:
			printf("%s: removed\n", esc);
			break;
		case QUEUE_ADMIN_ALREADY:
			printf("%s: removed\n", esc);
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
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	return status;
}
