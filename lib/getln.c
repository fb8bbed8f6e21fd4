/* postroom: ISC license, see LICENSE. */
#include <string.h>

#include "getln.h"

/* Drops input up to and including the next sep. */
static enum getln_result drain(struct buf *b, char sep)
{
	for (;;) {
		char *end = memchr(buf_peek(b), sep, buf_unread(b));
		if (end) {
			buf_skip(b, (size_t)(end - buf_peek(b)) + 1);
			return GETLN_TOOLONG;
		}
		buf_skip(b, buf_unread(b));
		ssize_t r = buf_fill(b);
		if (r == 0)
			return GETLN_TOOLONG;
		if (r < 0)
			return GETLN_ERR;
	}
}

enum getln_result getln(struct buf *b, char *line, size_t max, size_t *len, char sep)
{
	*len = 0;
	for (;;) {
		size_t avail = buf_unread(b);
		char *end = memchr(buf_peek(b), sep, avail);
		size_t take = end ? (size_t)(end - buf_peek(b)) + 1 : avail;

		if (take > max - *len) {
			take = max - *len;
			memcpy(line + *len, buf_peek(b), take);
			*len += take;
			buf_skip(b, take);
			return drain(b, sep);
		}
		memcpy(line + *len, buf_peek(b), take);
		*len += take;
		buf_skip(b, take);
		if (end)
			return GETLN_OK;
		ssize_t r = buf_fill(b);
		if (r == 0)
			return GETLN_EOF;
		if (r < 0)
			return GETLN_ERR;
	}
}
