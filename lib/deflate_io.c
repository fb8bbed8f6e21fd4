/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "deadline.h"
#include "deflate_io.h"

/*
 * Our output's deflater: a 4 KiB window (windowBits 12) and memLevel 5 cost 32 KiB besides
 * zlib's state, where the defaults (15, 8) cost 256 KiB, for output that is mostly short
 * replies and message text. The peer's compressor may use any window: inflate takes 32 KiB.
 */
#define OUT_WINDOW_BITS 12
#define OUT_MEM_LEVEL 5
#define IN_WINDOW_BITS 15
/* Compressed bytes read from the fd at once, and written at once. */
#define IN_CHUNK 4096
#define OUT_CHUNK 4096
/* Inflated bytes that did not fit the reader's space, kept so that we know of them. */
#define CARRY 256

struct deflate_io {
	struct buf_filter reader, writer;
	z_stream inz, outz;
	unsigned char *in;	/* compressed input; inz.next_in points into it */
	size_t incap;
	/*
	 * inflate gives what it can into the space it is given; when that fills, more may be
	 * waiting inside it, with or without compressed input left. So that we never wait on the
	 * fd with a command in the inflater, whatever did not fit is inflated into carry at once:
	 * then input is held exactly when carry is not empty.
	 */
	char carry[CARRY];
	size_t carry_pos, carry_len;
	int more;	/* the last inflate filled its space: it may hold more */
	int ended;	/* the peer ended its stream (a final block): end of input */
	int failed;	/* errno of an inflate failure, given by the next read */
	int dirty;	/* output deflated since the last sync flush */
};

#define READER(f) ((struct deflate_io *)((char *)(f) - offsetof(struct deflate_io, reader)))
#define WRITER(f) ((struct deflate_io *)((char *)(f) - offsetof(struct deflate_io, writer)))

/* Inflates into s (n bytes): the bytes made, or -1 with errno. */
static ssize_t inflate_into(struct deflate_io *d, char *s, size_t n)
{
	if (d->ended || !n)
		return 0;
	d->inz.next_out = (unsigned char *)s;
	d->inz.avail_out = n > UINT_MAX ? UINT_MAX : (unsigned)n;
	unsigned room = d->inz.avail_out;
	int r = inflate(&d->inz, Z_SYNC_FLUSH);
	size_t made = room - d->inz.avail_out;
	d->more = d->inz.avail_out == 0;
	switch (r) {
	case Z_OK:
	case Z_BUF_ERROR:	/* no progress possible: it needs more input */
		break;
	case Z_STREAM_END:
		d->ended = 1;
		d->more = 0;
		break;
	case Z_MEM_ERROR:
		errno = ENOMEM;
		return -1;
	default:		/* Z_DATA_ERROR, Z_NEED_DICT (no dictionary in raw DEFLATE) */
		errno = EPROTO;
		return -1;
	}
	/* With room left, inflate stops only for want of input: anything else is a stream we
	   cannot follow, which must not make us loop. */
	if (!made && d->inz.avail_in && !d->more && !d->ended) {
		errno = EPROTO;
		return -1;
	}
	return (ssize_t)made;
}

/* When the last inflate filled its space: what else it holds, into carry. */
static void inflate_carry(struct deflate_io *d)
{
	if (!d->more || d->failed)
		return;
	d->carry_pos = 0;
	ssize_t r = inflate_into(d, d->carry, sizeof d->carry);
	if (r < 0) {
		d->failed = errno;
		d->carry_len = 0;
		return;
	}
	d->carry_len = (size_t)r;
}

/* Fills s from carry, then from the inflater. The bytes given, or -1 with errno. */
static ssize_t inflate_held(struct deflate_io *d, char *s, size_t n)
{
	size_t got = d->carry_len - d->carry_pos;
	if (got > n)
		got = n;
	memcpy(s, d->carry + d->carry_pos, got);
	d->carry_pos += got;
	if (d->carry_pos < d->carry_len)
		return (ssize_t)got;
	d->carry_pos = d->carry_len = 0;
	if (d->more || d->inz.avail_in) {
		ssize_t r = inflate_into(d, s + got, n - got);
		if (r < 0 && !got)
			return -1;
		if (r < 0) {
			d->failed = errno;	/* told by the next read, after these bytes */
			return (ssize_t)got;
		}
		got += (size_t)r;
	}
	inflate_carry(d);
	return (ssize_t)got;
}

/* The wait left until end (0: none), or -1 when it has passed. */
static int wait_left(long long end)
{
	if (!end)
		return 0;
	long long left = end - deadline_now_ms();
	if (left <= 0)
		return -1;
	return left < INT_MAX ? (int)left : INT_MAX;
}

static ssize_t inflate_read(struct buf_filter *f, int fd, char *s, size_t n, int timeout_ms)
{
	struct deflate_io *d = READER(f);
	/* timeout_ms bounds the whole call, however many reads its bytes take. */
	long long end = timeout_ms > 0 ? deadline_now_ms() + timeout_ms : 0;

	for (;;) {
		if (d->failed) {
			errno = d->failed;
			return -1;
		}
		ssize_t got = inflate_held(d, s, n);
		if (got != 0 || d->ended)
			return got;
		int wait = wait_left(end);
		if (wait < 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		ssize_t r = fd_read_timeout(fd, (char *)d->in, d->incap, wait);
		if (r <= 0)
			return r;
		d->inz.next_in = d->in;
		d->inz.avail_in = (unsigned)r;
	}
}

static int inflate_ready(const struct buf_filter *f)
{
	const struct deflate_io *d = READER((struct buf_filter *)f);
	return d->carry_pos < d->carry_len || d->ended || d->failed;
}

static int deflate_write(struct buf_filter *f, int fd, const char *s, size_t n, int timeout_ms,
			 int flush)
{
	struct deflate_io *d = WRITER(f);
	unsigned char chunk[OUT_CHUNK];

	if (n)
		d->dirty = 1;
	/* A sync flush with nothing new would only add an empty block. */
	int mode = flush && d->dirty ? Z_SYNC_FLUSH : Z_NO_FLUSH;
	if (!n && mode == Z_NO_FLUSH)
		return 1;
	while (n || mode == Z_SYNC_FLUSH) {
		unsigned take = n > UINT_MAX ? UINT_MAX : (unsigned)n;
		d->outz.next_in = (unsigned char *)s;
		d->outz.avail_in = take;
		do {
			d->outz.next_out = chunk;
			d->outz.avail_out = sizeof chunk;
			if (deflate(&d->outz, mode) == Z_STREAM_ERROR) {
				errno = EINVAL;
				return 0;
			}
			size_t have = sizeof chunk - d->outz.avail_out;
			if (have && !fd_write_timeout(fd, (char *)chunk, have, timeout_ms))
				return 0;
		} while (d->outz.avail_in || d->outz.avail_out == 0);
		s += take;
		n -= take;
		if (!n && mode == Z_SYNC_FLUSH) {
			d->dirty = 0;
			break;
		}
	}
	return 1;
}

struct deflate_io *deflate_io_new(const struct buf *in)
{
	struct deflate_io *d = calloc(1, sizeof *d);
	size_t early = buf_unread(in);
	size_t incap = early > IN_CHUNK ? early : IN_CHUNK;
	if (!d || !(d->in = malloc(incap)))
		goto nomem;
	d->incap = incap;
	if (inflateInit2(&d->inz, -IN_WINDOW_BITS) != Z_OK)
		goto nomem;
	if (deflateInit2(&d->outz, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -OUT_WINDOW_BITS,
			 OUT_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&d->inz);
		goto nomem;
	}
	d->reader = (struct buf_filter){ inflate_read, 0, inflate_ready };
	d->writer = (struct buf_filter){ 0, deflate_write, 0 };
	return d;
nomem:
	if (d)
		free(d->in);
	free(d);
	errno = ENOMEM;
	return 0;
}

void deflate_io_start(struct deflate_io *d, struct buf *in, struct buf *out)
{
	size_t early = buf_unread(in);
	if (early > d->incap)	/* more came since deflate_io_new: cannot be, in one process */
		early = d->incap;
	memcpy(d->in, buf_peek(in), early);
	buf_skip(in, early);
	d->inz.next_in = d->in;
	d->inz.avail_in = (unsigned)early;
	in->filter = &d->reader;
	out->filter = &d->writer;
}

void deflate_io_counts(const struct deflate_io *d, struct deflate_io_counts *c)
{
	c->in_compressed = d->inz.total_in;
	c->in_plain = d->inz.total_out;
	c->out_plain = d->outz.total_in;
	c->out_compressed = d->outz.total_out;
}
