/* postroom: ISC license, see LICENSE. */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Buffered I/O on a file descriptor, with a caller-owned buffer, for protocol fds where stdio is
 * unwelcome. A buffer is used for reading or for writing, never both.
 * A read buffer may carry a deadline per read (timeout_ms > 0): a read that waits longer fails
 * with ETIMEDOUT; so may a write buffer, for each wait until the fd takes more bytes (a peer
 * that stops reading). It may also carry a total deadline (deadline_ms > 0, on
 * deadline_now_ms's clock), which bounds a whole exchange however its bytes trickle in: no
 * read waits past it, and once it has passed buf_fill fails with ETIMEDOUT at once.
 */

/*
 * A filter between a buffer and its fd, such as compression: when a buffer has one, its reads
 * and writes of the fd go through it. read is fd_read_timeout's contract (bytes given, 0 at end
 * of input, -1 with errno), giving bytes that come from the fd transformed; it may hold bytes
 * of its own, which ready tells of (1: read would give some without waiting for the fd).
 * write takes n bytes (n may be 0); with flush, everything it was given so far reaches the fd
 * before it returns: 1, or 0 with errno set.
 */
struct buf_filter {
	ssize_t (*read)(struct buf_filter *f, int fd, char *s, size_t n, int timeout_ms);
	int (*write)(struct buf_filter *f, int fd, const char *s, size_t n, int timeout_ms,
		     int flush);
	int (*ready)(const struct buf_filter *f);
};

struct buf {
	int fd;
	char *x;
	size_t cap;
	size_t pos;	/* read: first unread byte */
	size_t len;	/* read: end of data; write: bytes pending */
	int timeout_ms;	/* 0: wait forever */
	struct buf *flush_first;	/* read: flushed before each read, so that replies go out
					   before we wait for more commands (PIPELINING) */
	long long deadline_ms;	/* read: 0, or no read past this instant of deadline_now_ms() */
	struct buf_filter *filter;	/* 0, or what reads and writes of fd go through */
};
#define BUF_ZERO { -1, 0, 0, 0, 0, 0, 0, 0, 0 }

void buf_init(struct buf *b, int fd, char *space, size_t cap);

/* Reads more input. Returns bytes added, 0 at end of file, -1 with errno set. */
ssize_t buf_fill(struct buf *b);
/* Unread bytes, and consuming them. */
#define buf_unread(b) ((b)->len - (b)->pos)
#define buf_peek(b) ((b)->x + (b)->pos)
/* 1 when input is there to be taken without waiting for the fd: unread bytes, or bytes the
   filter holds. A poll(2) of the fd alone cannot see the latter. */
int buf_input_ready(const struct buf *b);
void buf_skip(struct buf *b, size_t n);
/* Throws away everything buffered (used after STARTTLS). */
void buf_discard(struct buf *b);
/* Overwrites every byte of the buffer but the unread ones, so that a secret (a password) that
   was read does not linger, wherever in the buffer it was. */
void buf_wipe_consumed(struct buf *b);

/* A buffer with nothing in it (no byte unread, or none pending) gives its pages back to the
   system, for a session about to wait long (memory_discard). */
void buf_rest(struct buf *b);

/* Writing. Return 1, or 0 with errno set. */
int buf_put(struct buf *b, const char *s, size_t n);
int buf_puts(struct buf *b, const char *s);
/* printf into the buffer, whatever the length (a long result is formatted in memory first). */
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
int buf_flush(struct buf *b);

/* write(2) everything, retrying on EINTR and short writes. Returns 1, or 0 with errno set. */
int fd_write_all(int fd, const char *s, size_t n);
/* The same, waiting at most timeout_ms (0: no limit) each time the fd is full: 0 with
   ETIMEDOUT when that runs out. */
int fd_write_timeout(int fd, const char *s, size_t n, int timeout_ms);
/* read(2) with a timeout in milliseconds (0: none); -1 with ETIMEDOUT when it runs out. */
ssize_t fd_read_timeout(int fd, char *s, size_t n, int timeout_ms);

#endif
