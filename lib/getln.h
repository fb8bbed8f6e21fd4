/* postroom: ISC license, see LICENSE. */
#ifndef GETLN_H
#define GETLN_H

#include <stddef.h>

#include "buf.h"

/*
 * Bounded line reads from a struct buf. The caller owns the line buffer; nothing here allocates,
 * so a peer sending an endless line costs nothing but the time to drain it.
 */

enum getln_result {
	GETLN_OK,	/* a whole line, terminator included, is in line[0..*len) */
	GETLN_TOOLONG,	/* no terminator within max bytes; the rest of the line was drained */
	GETLN_EOF,	/* end of input; *len bytes of an unterminated last line are in line */
	GETLN_ERR,	/* read error or timeout, errno set */
};

/* Reads up to and including the byte sep ('\n' for lines, '\0' for envelope fields). */
enum getln_result getln(struct buf *b, char *line, size_t max, size_t *len, char sep);

#endif
