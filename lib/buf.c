/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "deadline.h"
#include "memory.h"

void buf_init(struct buf *b, int fd, char *space, size_t cap)
{
	b->fd = fd;
	b->x = space;
	b->cap = cap;
	b->pos = b->len = 0;
	b->timeout_ms = 0;
	b->flush_first = 0;
	b->deadline_ms = 0;
	b->filter = 0;
}

int buf_input_ready(const struct buf *b)
{
	return buf_unread(b) || (b->filter && b->filter->ready(b->filter));
}

/* The longest the next read may wait: the per-read timeout or what is left of the deadline,
   whichever is shorter; 0 for no limit, -1 when the deadline has passed. */
static int read_wait(const struct buf *b)
{
	if (b->deadline_ms <= 0)
		return b->timeout_ms;
	long long left = b->deadline_ms - deadline_now_ms();
	if (left <= 0)
		return -1;
	if (b->timeout_ms > 0 && b->timeout_ms < left)
		return b->timeout_ms;
	return left < INT_MAX ? (int)left : INT_MAX;
}

ssize_t fd_read_timeout(int fd, char *s, size_t n, int timeout_ms)
{
	for (;;) {
		if (timeout_ms > 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int r = poll(&p, 1, timeout_ms);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (r == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		ssize_t r = read(fd, s, n);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

ssize_t buf_fill(struct buf *b)
{
	if (b->pos == b->len)
		b->pos = b->len = 0;
	else if (b->len == b->cap) {
		memmove(b->x, b->x + b->pos, b->len - b->pos);
		b->len -= b->pos;
		b->pos = 0;
	}
	if (b->len == b->cap) {
		errno = ENOBUFS;
		return -1;
	}
	if (b->flush_first && !buf_flush(b->flush_first))
		return -1;
	int wait = read_wait(b);
	if (wait < 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	char *end = b->x + b->len;
	size_t room = b->cap - b->len;
	ssize_t r = b->filter ? b->filter->read(b->filter, b->fd, end, room, wait)
			      : fd_read_timeout(b->fd, end, room, wait);
	if (r > 0)
		b->len += (size_t)r;
	return r;
}

void buf_skip(struct buf *b, size_t n)
{
	b->pos += n;
	if (b->pos >= b->len)
		b->pos = b->len = 0;
}

void buf_discard(struct buf *b)
{
	b->pos = b->len = 0;
}

void buf_wipe_consumed(struct buf *b)
{
	/* Consumed bytes are not only those before pos: buf_skip rewinds to 0 once everything is
	   read, and buf_fill moves unread bytes to the front, so a line that straddled the end of
	   the buffer left its first part after len. Only [pos, len) is still needed. */
	explicit_bzero(b->x, b->pos);
	explicit_bzero(b->x + b->len, b->cap - b->len);
}

int fd_write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		s += w;
		n -= (size_t)w;
	}
	return 1;
}

/*
 * Writes with a timeout: a peer that stops reading must not hold us for ever. A blocking write
 * larger than the room poll saw could still block, so each write is at most WRITE_STEP bytes,
 * which fits whenever a pipe or a socket says it is writable.
 */
#define WRITE_STEP 512

int fd_write_timeout(int fd, const char *s, size_t n, int timeout_ms)
{
	if (timeout_ms <= 0)
		return fd_write_all(fd, s, n);
	while (n) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0;
		if (r == 0) {
			errno = ETIMEDOUT;
			return 0;
		}
		ssize_t w = write(fd, s, n < WRITE_STEP ? n : WRITE_STEP);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return 0;
		s += w;
		n -= (size_t)w;
	}
	return 1;
}

/* n bytes to the fd, or to the filter; flush: the filter sends out all it holds. */
static int send_out(struct buf *b, const char *s, size_t n, int flush)
{
	if (b->filter)
		return b->filter->write(b->filter, b->fd, s, n, b->timeout_ms, flush);
	return fd_write_timeout(b->fd, s, n, b->timeout_ms);
}

int buf_flush(struct buf *b)
{
	/* Even with nothing here, a filter may hold bytes that were written past the buffer. */
	if (!b->len && !b->filter)
		return 1;
	if (!send_out(b, b->x, b->len, 1))
		return 0;
	b->len = 0;
	return 1;
}

int buf_put(struct buf *b, const char *s, size_t n)
{
	if (n > b->cap - b->len) {
		if (!buf_flush(b))
			return 0;
		if (n >= b->cap)
			return send_out(b, s, n, 0);
	}
	memcpy(b->x + b->len, s, n);
	b->len += n;
	return 1;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	char small[1024];
	va_list again;

	va_copy(again, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	if (n < 0) {
		va_end(again);
		errno = EINVAL;
		return 0;
	}
	if ((size_t)n < sizeof small) {
		va_end(again);
		return buf_put(b, small, (size_t)n);
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		va_end(again);
		return 0;
	}
	vsnprintf(big, (size_t)n + 1, fmt, again);
	va_end(again);
	int ok = buf_put(b, big, (size_t)n);
	free(big);
	return ok;
}

void buf_rest(struct buf *b)
{
	if (b->pos != b->len)
		return;
	b->pos = b->len = 0;
	memory_discard(b->x, b->cap);
}
