/* postroom: ISC license, see LICENSE. */
/*
 * queue-hold id...: puts messages on hold, as postsuper -h is Postfix's: moved from msg/ to
 * hold/, where queue-run never looks, until queue-release. A rename keeps the file as it is, with
 * its records, so a held message loses nothing. It waits for an attempt in progress, as
 * queue-remove does, so that once it has said "held" no delivery of the message can start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "queue_admin.h"

const char *PROG = "queue-hold";

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
		switch (queue_admin_apply(dirfd, QUEUE_OP_HOLD, id, &step)) {
		case QUEUE_ADMIN_DONE:
			printf("%s: held\n", esc);
			break;
		case QUEUE_ADMIN_ALREADY:
			printf("%s: already on hold\n", esc);
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
