/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <stddef.h>

/*
 * The SMTP DATA decoder (RFC 5321 4.1.1.4 and 4.5.2): CRLF line ends become LF, a leading dot is
 * removed, and CRLF "." CRLF ends the message. A CR or LF that is not part of a CRLF pair is never
 * guessed at: it is what the 2023 "SMTP smuggling" attacks use to hide a second message, so the
 * decoder stops and says so.
 */

enum data_state {
	DATA_BOL,	/* at the start of a line */
	DATA_DOT,	/* after a dot at the start of a line */
	DATA_DOTCR,	/* after "." CR at the start of a line */
	DATA_TEXT,	/* inside a line */
	DATA_CR,	/* after a CR inside a line */
};

struct data_decoder {
	enum data_state state;
	size_t line;		/* octets of the current line on the wire, CRLF included */
	size_t line_max;	/* longer lines set toolong */
	int toolong;
};
#define DATA_DECODER(max) { DATA_BOL, 0, (max), 0 }

enum data_result {
	DATA_MORE,	/* all input used; the message goes on */
	DATA_END,	/* the terminating line was seen; *used stops after it */
	DATA_BARE,	/* a bare CR or LF */
};

/*
 * Decodes in[0..n) into out (which has room for n bytes): *used input octets were consumed and
 * *outlen octets written.
 */
enum data_result data_decode(struct data_decoder *d, const char *in, size_t n, size_t *used,
			     char *out, size_t *outlen);

#endif
