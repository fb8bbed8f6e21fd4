/* postroom: ISC license, see LICENSE. */
#include "smtp_data.h"

enum data_result data_decode(struct data_decoder *d, const char *in, size_t n, size_t *used,
			     char *out, size_t *outlen)
{
	size_t o = 0, i = 0;
	enum data_result r = DATA_MORE;

	for (; i < n; i++) {
		char c = in[i];
		if (++d->line > d->line_max)
			d->toolong = 1;
		switch (d->state) {
		case DATA_BOL:
		case DATA_TEXT:
			if (c == '\r')
				d->state = DATA_CR;
			else if (c == '\n')
				r = DATA_BARE;
			else if (c == '.' && d->state == DATA_BOL) {
				/* Dropped: stuffing, which RFC 5321 4.5.3.1.6 does not count against the
				   line, or the end. */
				d->state = DATA_DOT;
				d->line--;
			}
			else {
				out[o++] = c;
				d->state = DATA_TEXT;
			}
			break;
		case DATA_DOT:
			if (c == '\r')
				d->state = DATA_DOTCR;
			else if (c == '\n')
				r = DATA_BARE;
			else {
				out[o++] = c;
				d->state = DATA_TEXT;
			}
			break;
		case DATA_DOTCR:
			if (c == '\n') {
				i++;
				r = DATA_END;
			} else
				r = DATA_BARE;
			break;
		case DATA_CR:
			if (c == '\n') {
				out[o++] = '\n';
				d->state = DATA_BOL;
				d->line = 0;
			} else
				r = DATA_BARE;
			break;
		}
		if (r != DATA_MORE)
			break;
	}
	*used = i;
	*outlen = o;
	return r;
}
