/* postroom: ISC license, see LICENSE. */
/* O_TMPFILE is Linux's; open_nameless() falls back to tmp/ where it is missing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "dsn_param.h"
#include "getln.h"
#include "queue.h"
#include "sync.h"

/* Queue ids: "<seconds>-<microseconds>-<pid>", unique per process and instant. The same id names
   the file and goes into the 250 reply, the Received header and the log lines, so it must be an
   RFC 5322 Atom (RFC 5321 section 4.4): "-" is atext, the "." of the first form was not. */
void queue_make_id(char *id)
{
	static struct timeval last;
	struct timeval tv;

	gettimeofday(&tv, 0);
	/* Two messages from one process within one microsecond: step on to the next one. */
	if (tv.tv_sec < last.tv_sec || (tv.tv_sec == last.tv_sec && tv.tv_usec <= last.tv_usec)) {
		tv = last;
		if (++tv.tv_usec == 1000000) {
			tv.tv_usec = 0;
			tv.tv_sec++;
		}
	}
	last = tv;
	snprintf(id, QUEUE_ID_MAX, "%lld-%06ld-%ld", (long long)tv.tv_sec, (long)tv.tv_usec,
		 (long)getpid());
}

/*
 * The file is made nameless in msg/ (O_TMPFILE) and given its name only once it is whole and
 * synced: nothing half-written is ever visible, a crash leaves nothing to clean, and concurrent
 * sessions do not fight over tmp/'s directory lock twice per message. Where O_TMPFILE or
 * /proc/self/fd is missing, the file is written as tmp/ID instead and linked from there.
 */
static int open_nameless(struct queue_new *q)
{
#ifdef O_TMPFILE
	static int proc = -1;

	if (proc < 0)
		proc = access("/proc/self/fd", X_OK) == 0;
	if (!proc)
		return -1;
	q->fd = openat(q->dirfd, "msg", O_TMPFILE | O_RDWR | O_CLOEXEC, 0640);
	if (q->fd >= 0) {
		q->nameless = 1;
		queue_make_id(q->id);
		return 1;
	}
	if (errno == EISDIR || errno == EOPNOTSUPP || errno == EINVAL)
		return -1;	/* no O_TMPFILE here: use tmp/ */
	return 0;
#else
	return -1;
#endif
}

int queue_new_open(struct queue_new *q, const char *queuedir)
{
	char path[QUEUE_ID_MAX + 8];

	q->fd = -1;
	q->msglen = 0;
	q->in_envelope = 0;
	q->nameless = 0;
	q->dirfd = open(queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0)
		return 0;
	int r = open_nameless(q);
	if (r == 0) {
		int e = errno;
		close(q->dirfd);
		errno = e;
		return 0;
	}
	for (int tries = 0; q->fd < 0; tries++) {
		queue_make_id(q->id);
		snprintf(path, sizeof path, "tmp/%s", q->id);
		q->fd = openat(q->dirfd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (q->fd < 0 && (errno != EEXIST || tries == 100)) {
			int e = errno;
			close(q->dirfd);
			errno = e;
			return 0;
		}
	}
	buf_init(&q->out, q->fd, q->space, sizeof q->space);
	/* A placeholder header; commit writes the length once it is known. */
	return buf_put(&q->out, "PRQ1 00000000000000000000\n", QUEUE_HEADER_LEN);
}

int queue_new_message(struct queue_new *q, const char *s, size_t n)
{
	q->msglen += n;
	return buf_put(&q->out, s, n);
}

int queue_new_envelope(struct queue_new *q, const char *s, size_t n)
{
	q->in_envelope = 1;
	return buf_put(&q->out, s, n);
}

/* Wakes queue-run; nobody listening is fine, it scans the queue when it starts. */
static void pull_trigger(int dirfd)
{
	int fd = openat(dirfd, "trigger", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "", 1) < 0) {
		/* A full FIFO already holds a wake-up. */
	}
	close(fd);
}

int queue_new_commit(struct queue_new *q)
{
	char header[QUEUE_HEADER_LEN + 1], tmp[QUEUE_ID_MAX + 8], msg[QUEUE_ID_MAX + 8];

	snprintf(header, sizeof header, "PRQ1 %020llu\n", q->msglen);
	if (!buf_flush(&q->out) ||
	    pwrite(q->fd, header, QUEUE_HEADER_LEN, 0) != QUEUE_HEADER_LEN ||
	    fdatasync(q->fd) < 0)
		goto fail;
	snprintf(tmp, sizeof tmp, "tmp/%s", q->id);
	char self[40];
	snprintf(self, sizeof self, "/proc/self/fd/%d", q->fd);
	for (int tries = 0;; tries++) {
		snprintf(msg, sizeof msg, "msg/%s", q->id);
		int r = q->nameless ? linkat(AT_FDCWD, self, q->dirfd, msg, AT_SYMLINK_FOLLOW)
				    : linkat(q->dirfd, tmp, q->dirfd, msg, 0);
		if (r == 0)
			break;
		/* A clock set back can repeat an id: take another name. */
		if (errno != EEXIST || tries == 100)
			goto fail;
		queue_make_id(q->id);
	}
	if (!q->nameless)
		unlinkat(q->dirfd, tmp, 0);
	if (close(q->fd) < 0) {
		q->fd = -1;
		goto unqueue;
	}
	q->fd = -1;
	if (!sync_dir_at(q->dirfd, "msg"))
		goto unqueue;
	pull_trigger(q->dirfd);
	close(q->dirfd);
	q->dirfd = -1;
	return 1;
unqueue:;
	/* Not durable, so not acknowledged: take it back rather than deliver it unannounced. */
	int e = errno;
	unlinkat(q->dirfd, msg, 0);
	close(q->dirfd);
	q->dirfd = -1;
	errno = e;
	return 0;
fail:
	queue_new_abort(q);
	return 0;
}

void queue_new_abort(struct queue_new *q)
{
	char tmp[QUEUE_ID_MAX + 8];
	int e = errno;

	if (q->fd >= 0) {
		close(q->fd);
		q->fd = -1;
		snprintf(tmp, sizeof tmp, "tmp/%s", q->id);
		if (!q->nameless)
			unlinkat(q->dirfd, tmp, 0);
	}
	if (q->dirfd >= 0)
		close(q->dirfd);
	q->dirfd = -1;
	errno = e;
}

static int address_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return 0;
	return 1;
}

/*
 * The value of a DSN item (queue.h) as smtp-recv stores it: E an xtext ENVID, H FULL or HDRS,
 * N NEVER or a list of SUCCESS, FAILURE, DELAY (each once; any case, as queue_read takes
 * them), O addr-type;xtext. A filter in front of queue-inject passes them on as they are.
 */
static int dsn_item_ok(char type, const char *s, size_t n)
{
	switch (type) {
	case 'E':
		return dsn_envid_ok(s, n);
	case 'H':
		return dsn_ret_ok(s, n);
	case 'N':
		return dsn_notify_ok(s, n);
	case 'O':
		return dsn_orcpt_ok(s, n);
	}
	return 0;
}

/* A bit for each DSN item type, to see that none comes twice for its owner. */
static unsigned item_bit(char type)
{
	return type == 'E' ? 1u : type == 'H' ? 2u : type == 'N' ? 4u : 8u;
}

/*
 * F<sender>, then E and H (each at most once), then for each recipient T<rcpt> followed by its
 * N and O (each at most once), then the empty field: anything else, or out of its place, is a
 * syntax error (qmail-queue's 91).
 */
enum envelope_result envelope_copy(struct buf *in, struct queue_new *q)
{
	char field[QUEUE_ADDR_MAX + 2];	/* type byte, address, NUL */
	size_t len;
	int nrcpt = 0;
	unsigned seen = 0;	/* the DSN items of the sender, then of the last recipient */

	for (int first = 1;; first = 0) {
		switch (getln(in, field, sizeof field, &len, '\0')) {
		case GETLN_OK:
			break;
		case GETLN_TOOLONG:
			return ENVELOPE_TOOLONG;
		case GETLN_EOF:
			return ENVELOPE_SYNTAX;
		case GETLN_ERR:
			return ENVELOPE_READ;
		}
		if (len == 1) {	/* the empty field that ends the envelope */
			if (first || nrcpt == 0)
				return ENVELOPE_SYNTAX;
			break;
		}
		char type = field[0];
		const char *value = field + 1;
		size_t n = len - 2;
		if (first != (type == 'F'))
			return ENVELOPE_SYNTAX;
		switch (type) {
		case 'F':
			break;
		case 'T':
			if (n == 0)
				return ENVELOPE_SYNTAX;	/* an empty recipient */
			nrcpt++;
			seen = 0;
			break;
		case 'E':
		case 'H':
		case 'N':
		case 'O':
			/* E and H belong to the sender (before any T), N and O to a recipient. */
			if ((type == 'E' || type == 'H') != (nrcpt == 0) || (seen & item_bit(type)) ||
			    !dsn_item_ok(type, value, n))
				return ENVELOPE_SYNTAX;
			seen |= item_bit(type);
			break;
		default:
			return ENVELOPE_SYNTAX;
		}
		if (!address_ok(value, n))
			return ENVELOPE_SYNTAX;
		if (!queue_new_envelope(q, field, len))
			return ENVELOPE_WRITE;
	}
	/* Nothing may follow the end. */
	if (buf_unread(in) > 0)
		return ENVELOPE_SYNTAX;
	ssize_t r = buf_fill(in);
	if (r < 0)
		return ENVELOPE_READ;
	if (r > 0)
		return ENVELOPE_SYNTAX;
	return queue_new_envelope(q, "", 1) ? ENVELOPE_OK : ENVELOPE_WRITE;
}
