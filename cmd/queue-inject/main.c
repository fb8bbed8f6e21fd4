/* postroom: ISC license, see LICENSE. */
/*
 * queue-inject: puts one message into the queue, speaking qmail-queue's protocol so that anything
 * written for qmail-queue (qmail-smtpd, qmail-qfilter, a content filter) can sit in front of it.
 * The message comes on fd 0, then the envelope on fd 1: qmail-queue's, or with the DSN items
 * smtp-recv adds (envelope_copy checks them, and their places). Exit 0 means durable: the file
 * and the directory entry naming it are on disk. The exit codes are qmail-queue's
 * (queue-inject(8)).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "die.h"
#include "getln.h"
#include "queue.h"

const char *PROG = "queue-inject";

enum {
	QQ_ADDR_TOOLONG = 11,
	QQ_NOMEM = 51,
	QQ_TIMEOUT = 52,
	QQ_WRITE = 53,
	QQ_READ = 54,
	QQ_QUEUEDIR = 62,
	QQ_ENVELOPE = 91,
};

#define TIMEOUT_SECONDS 86400

static void timeout(int sig)
{
	(void)sig;
	_exit(QQ_TIMEOUT);
}

static void copy_message(struct queue_new *q)
{
	char space[65536];

	for (;;) {
		ssize_t r = read(0, space, sizeof space);
		if (r == 0)
			return;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			queue_new_abort(q);
			die_sys_code(QQ_READ, "unable to read the message");
		}
		if (!queue_new_message(q, space, (size_t)r)) {
			queue_new_abort(q);
			die_sys_code(QQ_WRITE, "unable to write the message");
		}
	}
}

/* A disk that is full or failing is 53; a queue that is not as queue-init made it, 62. */
static int commit_code(int e)
{
	switch (e) {
	case ENOMEM:
		return QQ_NOMEM;
	case ENOENT:
	case ENOTDIR:
	case EACCES:
	case EPERM:
	case EROFS:
		return QQ_QUEUEDIR;
	default:
		return QQ_WRITE;
	}
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		die_usage("< message 1< envelope");
	signal(SIGALRM, timeout);
	alarm(TIMEOUT_SECONDS);
	signal(SIGPIPE, SIG_IGN);

	const char *queuedir = getenv("QUEUEDIR");
	if (!queuedir || !*queuedir)
		die(QQ_QUEUEDIR, "QUEUEDIR is not set");
	static struct queue_new q;
	if (!queue_new_open(&q, queuedir))
		die_sys_code(QQ_QUEUEDIR, "unable to create a file in %s/tmp", queuedir);
	copy_message(&q);

	char space[4096];
	struct buf in;
	buf_init(&in, 1, space, sizeof space);
	enum envelope_result r = envelope_copy(&in, &q);
	if (r != ENVELOPE_OK) {
		queue_new_abort(&q);
		switch (r) {
		case ENVELOPE_TOOLONG:
			die(QQ_ADDR_TOOLONG, "envelope address longer than %d bytes", QUEUE_ADDR_MAX);
		case ENVELOPE_READ:
			die_sys_code(QQ_READ, "unable to read the envelope");
		case ENVELOPE_WRITE:
			die_sys_code(QQ_WRITE, "unable to write the envelope");
		default:
			die(QQ_ENVELOPE, "envelope format error");
		}
	}
	if (!queue_new_commit(&q))
		die_sys_code(commit_code(errno), "unable to queue the message");
	return 0;
}
