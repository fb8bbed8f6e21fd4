/* postroom: ISC license, see LICENSE. */
#ifndef DEFLATE_IO_H
#define DEFLATE_IO_H

#include <stddef.h>

#include "buf.h"

/*
 * Raw DEFLATE (RFC 1951) on a connection's two buffers, as IMAP's COMPRESS=DEFLATE (RFC 4978)
 * wants it: what is read is inflated, what is written deflated, and every buf_flush ends the
 * output with a sync flush so that the peer can inflate all of it without waiting for more.
 * Input is inflated as far as it goes before the fd is read again, so that a command that
 * arrived whole is never left waiting in the inflater; buf_input_ready tells of what it holds.
 * Inflated bytes land in the read buffer only, whose limits still bound what is kept.
 *
 * The state (zlib's, about 80 KiB: deflate with a 4 KiB window, inflate with the 32 KiB one
 * the peer may use) is allocated only when compression starts, and lives until the process
 * ends.
 */

struct deflate_io;

/* The state for compressing a connection whose read buffer is in, or 0 with errno set (ENOMEM):
   made before the peer is told that compression starts. */
struct deflate_io *deflate_io_new(const struct buf *in);
/* From now on in and out are compressed: the bytes unread in in are the first compressed
   ones (the peer's, sent after its command). out must have been flushed. */
void deflate_io_start(struct deflate_io *d, struct buf *in, struct buf *out);

/* Bytes so far: compressed and inflated in, uncompressed and deflated out. */
struct deflate_io_counts {
	unsigned long long in_compressed, in_plain, out_plain, out_compressed;
};
void deflate_io_counts(const struct deflate_io *d, struct deflate_io_counts *c);

/* Reads fail with EPROTO when the peer's compressed stream is not valid DEFLATE. */

#endif
