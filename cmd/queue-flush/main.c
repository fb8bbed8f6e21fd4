/* postroom: ISC license, see LICENSE. */
/*
 * queue-flush [-d domain] [id...]: "try it now", as postqueue -f is Postfix's. A message is due
 * when its file's mtime has come (queue(5)), so making messages due is setting that time, and
 * needs no lock: an attempt in progress sets its own time when it ends, which is right, since it
 * has just tried. Then one byte 'F' on the trigger tells queue-run to rescan and to forget what
 * it remembers of unreachable destinations and postponed messages, which would otherwise keep
 * it from trying them at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "queue_admin.h"

const char *PROG = "queue-flush";

#define USAGE "[-d domain] [id ...]"

struct config {
	const char *domain;	/* -d */
	char **ids;
	int nids;
	const char *queuedir;
};

/* Whether msg/id waits for the domain: a recipient there, or a target there whose last attempt
   failed for now (an alias may lead out of our domains). 1, 0, or -1 with errno. */
static int wants(int dirfd, const char *id, const char *domain)
{
	struct queue_msg m;
	int yes = 0;

	if (!queue_msg_peek(&m, dirfd, "msg", id))
		return errno == EPROTO ? 0 : -1;
	for (size_t i = 0; i < m.nrcpt && !yes; i++)
		yes = queue_admin_in_domain(m.rcpt[i], domain);
	for (size_t i = 0; i < m.nrec && !yes; i++)
		yes = m.rec[i].type == QUEUE_REC_LAST && queue_admin_in_domain(m.rec[i].target, domain);
	queue_msg_close(&m);
	return yes;
}

/* Makes msg/id due now. named: the id was given, so its absence is reported. Exit status. */
static int flush(const struct config *c, int dirfd, const char *id, int named)
{
	char path[QUEUE_ID_MAX + 8], esc[4 * QUEUE_ID_MAX + 4];
	struct stat st;
	int yes = 1;

	log_escape(esc, sizeof esc, id, strlen(id));
	if (!queue_admin_id_ok(id)) {
		log_line("%s: not a valid queue id", esc);
		return EXIT_PERM;
	}
	snprintf(path, sizeof path, "msg/%s", id);
	if (c->domain)
		yes = wants(dirfd, id, c->domain);
	if (yes > 0 && utimensat(dirfd, path, 0, AT_SYMLINK_NOFOLLOW) == 0) {
		printf("%s: due now\n", esc);
		return 0;
	}
	if (yes == 0)
		return 0;
	if (errno != ENOENT) {
		log_line("%s: unable to %s: %s", esc, yes < 0 ? "read it" : "set its time",
			 strerror(errno));
		return EXIT_TEMP;
	}
	if (!named)
		return 0;	/* delivered since msg/ was read */
	snprintf(path, sizeof path, "hold/%s", id);
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		log_line("%s: on hold: release it first", esc);
	else
		log_line("%s: not in the queue", esc);
	return EXIT_PERM;
}

int main(int argc, char **argv)
{
	static struct config c;
	int opt, status = 0;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "d:")) != -1) {
		switch (opt) {
		case 'd':
			if (!*optarg || strchr(optarg, '@'))
				die_usage(USAGE);
			c.domain = optarg;
			break;
		default:
			die_usage(USAGE);
		}
	}
	c.ids = argv + optind;
	c.nids = argc - optind;
	c.queuedir = env_need("QUEUEDIR");
	signal(SIGPIPE, SIG_IGN);	/* for the trigger: a reader gone is no reader */

	int dirfd = open(c.queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", c.queuedir);
	if (c.nids) {
		for (int i = 0; i < c.nids; i++) {
			int r = flush(&c, dirfd, c.ids[i], 1);
			if (r > status)
				status = r;
		}
	} else {
		struct queue_admin_ids ids = QUEUE_ADMIN_IDS_ZERO;
		if (!queue_admin_list(&ids, dirfd, "msg"))
			die_sys_code(EXIT_TEMP, "unable to read %s/msg", c.queuedir);
		for (size_t i = 0; i < ids.n; i++) {
			int r = flush(&c, dirfd, ids.id[i], 0);
			if (r > status)
				status = r;
		}
		queue_admin_ids_free(&ids);
	}
	/* Even when nothing was made due: queue-run's memory of destinations goes all the same. */
	if (!queue_admin_trigger(dirfd, 'F'))
		die_sys_code(EXIT_TEMP, "unable to write to %s/trigger", c.queuedir);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	return status;
}
