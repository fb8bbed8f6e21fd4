/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the queue file reader (lib/queue_read.c). The input is a whole queue file
 * (queue(5): "PRQ1 " length "\n", message, envelope, records), written as msg/ID in a private
 * directory and read with queue_msg_peek, as queue-list reads it (queue_msg_open takes a lock
 * too, and reads the same way). What it gives is looked through: the sender, each recipient's
 * DSN parameters and latest records, every record; queue_notify_parse and queue_age get the
 * input's first line as text.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

#define ID "1700000000-123456-42"

static int dirfd_ = -1;
static char dir[4096];

static void cleanup(void)
{
	unlinkat(dirfd_, "msg/" ID, 0);
	unlinkat(dirfd_, "msg", AT_REMOVEDIR);
	rmdir(dir);
}

/* A private directory with msg/ in it, removed at exit; on /dev/shm when there is one (a file
   is written for each input). */
static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof dir, "%s/postroom-fuzz-queue.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir) || (dirfd_ = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0 ||
	    mkdirat(dirfd_, "msg", 0700) < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dirfd_ < 0)
		setup();
	int fd = openat(dirfd_, "msg/" ID, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) < 0)
		abort();

	struct queue_msg m;
	if (queue_msg_peek(&m, dirfd_, "msg", ID)) {
		if (!m.sender || !m.nrcpt || m.valid_len > m.env.len)
			abort();
		for (size_t i = 0; i < m.nrcpt; i++) {
			if (strlen(m.rcpt[i]) > m.env.len || (m.orcpt[i] && strlen(m.orcpt[i]) > m.env.len))
				abort();
			if (!m.notify[i])
				abort();
			queue_msg_latest(&m, "DXRPSJLNW", m.rcpt[i]);
			queue_msg_record(&m, "DX", m.rcpt[i]);
		}
		for (size_t i = 0; i < m.nrec; i++)
			if (!m.rec[i].target || !m.rec[i].reason ||
			    strlen(m.rec[i].target) + strlen(m.rec[i].reason) > m.env.len)
				abort();
		queue_msg_close(&m);
	}

	/* The first line as text: a NOTIFY value and a queue id. */
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = 0;
	unsigned bits = queue_notify_parse(s);
	if (bits & ~(QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY |
		     QUEUE_NOTIFY_NEVER))
		abort();
	struct timespec now = { 1800000000, 0 };
	queue_age(s, &now);
	free(s);
	return 0;
}
