/* postroom: ISC license, see LICENSE. */
#ifndef MIME_H
#define MIME_H

#include <stddef.h>
#include <time.h>

#include "sa.h"

/*
 * A message's RFC 5322 header and MIME structure (RFC 2045-2047, 2231), parsed in memory for
 * IMAP: ENVELOPE, BODY and BODYSTRUCTURE, BODY[section], and the decoded text SEARCH looks in.
 * The parser copies nothing; it records offsets into the caller's bytes, which must outlive the
 * parse. Files in a Maildir end lines with LF: what this module gives IMAP is CRLF-terminated,
 * and every size and line count is of that form (Dovecot's "virtual size"), so that a message
 * stored with LF or with CRLF looks the same to clients.
 * Malformed input never fails the parse: it degrades as Dovecot's parser does (a multipart
 * without its boundary is one text/plain part; nesting deeper than MIME_DEPTH_MAX stops being
 * parsed).
 */

#define MIME_DEPTH_MAX 100
#define MIME_PARTS_MAX 10000

struct mime_msg;

/* 0 only when out of memory. */
struct mime_msg *mime_parse(const char *msg, size_t len);
void mime_free(struct mime_msg *m);

/* RFC822.SIZE: the message's size with every line ending CRLF. */
unsigned long long mime_vsize(const struct mime_msg *m);

/* Append the IMAP ENVELOPE, BODY (extended 0) or BODYSTRUCTURE (extended 1) of the message, as
   Dovecot writes them, without the outer parentheses (as Dovecot caches them; the FETCH reply
   adds them). 1, or 0 when out of memory. */
int mime_envelope(const struct mime_msg *m, struct sa *out);
int mime_bodystructure(const struct mime_msg *m, int extended, struct sa *out);

/* A BODY[section] specifier (RFC 3501 section 6.4.5), parsed by the IMAP command parser. */
enum mime_section_kind {
	MIME_SECTION_ALL,		/* BODY[] or BODY[1.2]: the whole part */
	MIME_SECTION_HEADER,
	MIME_SECTION_HEADER_FIELDS,
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT,
	MIME_SECTION_MIME,
};
struct mime_section {
	unsigned part[MIME_DEPTH_MAX];	/* 1-based part numbers, as in "1.2.3" */
	size_t nparts;			/* 0: the message itself */
	enum mime_section_kind kind;
	const char *const *fields;	/* HEADER.FIELDS (NOT): names, matched without case */
	size_t nfields;
};
/* Appends the section's bytes (CRLF line ends) to out; a part that does not exist is empty, as
   Dovecot answers. 1, or 0 when out of memory. */
int mime_section_get(const struct mime_msg *m, const struct mime_section *sec, struct sa *out);

/*
 * BINARY[section] (RFC 3516): the section's bytes with its Content-Transfer-Encoding undone:
 * base64 and quoted-printable decoded, 7bit, 8bit and binary (or none) as they are, with CRLF
 * line ends (NULs kept). The message itself ([]), a multipart and a message/rfc822 have no
 * encoding of their own to undo (RFC 2045 section 6.4): their bytes as they are. A part that
 * does not exist is empty. *decoded is set when an encoding was undone (Dovecot then sends a
 * literal8). Appends to out.
 */
enum mime_binary_result {
	MIME_BINARY_OK,
	MIME_BINARY_NOMEM,
	MIME_BINARY_UNKNOWN_CTE,	/* an encoding we cannot undo */
	MIME_BINARY_BROKEN,		/* base64 with bytes out of its alphabet */
};
enum mime_binary_result mime_section_binary(const struct mime_msg *m,
					    const struct mime_section *sec, struct sa *out,
					    int *decoded);

/*
 * For SEARCH. mime_header_text appends the values of every header field of the top-level
 * message named name (every field when name is 0, as "Name: value" lines), unfolded, RFC 2047
 * encoded-words decoded and converted to UTF-8, each followed by '\n'. mime_body_text appends
 * the text of the body: every text/ part (and message/rfc822's header and text), its transfer
 * encoding (base64, quoted-printable) undone and its charset converted to UTF-8 (bytes that do
 * not convert are dropped). 1, or 0 when out of memory.
 */
int mime_header_text(const struct mime_msg *m, const char *name, struct sa *out);
int mime_body_text(const struct mime_msg *m, struct sa *out);

/* The Date: field's date as the sender wrote it, for SENTBEFORE/SENTON/SENTSINCE (RFC 3501
   compares dates without time and timezone): 1 with *year, *month (1-12) and *day, or 0 when
   there is no date that parses. */
int mime_sent_date(const struct mime_msg *m, int *year, int *month, int *day);

/* 1 when needle (UTF-8) occurs in hay (UTF-8) under simple Unicode case folding, as SEARCH
   compares text; an empty needle occurs everywhere. */
int mime_text_contains(const char *hay, size_t haylen, const char *needle, size_t needlelen);

/*
 * For SORT and THREAD (RFC 5256, RFC 5957), lib/mime_thread.c and the address parser of the
 * ENVELOPE: mime_first_address appends the parts of the first address of the first field
 * named field (mailbox, the display name as written, domain; nothing for what it lacks).
 * mime_decode_words appends s with its RFC 2047 encoded-words decoded to UTF-8, unfolded.
 * mime_sent_time gives the first Date: field's date and time in UTC, or 0 when it does not
 * parse. mime_msgids appends the msg-ids ("<...>", without the brackets) of the first field
 * named field, separated by spaces: the first alone when first is set (RFC 5256 takes
 * In-Reply-To's first), else at most max of them, the last ones. Each returns 1, or 0 when
 * out of memory.
 */
int mime_first_address(const struct mime_msg *m, const char *field, struct sa *mailbox,
		       struct sa *name, struct sa *domain);
int mime_decode_words(const char *s, size_t n, struct sa *out);
int mime_sent_time(const struct mime_msg *m, time_t *t);
int mime_msgids(const struct mime_msg *m, const char *field, int first, size_t max,
		struct sa *out);

/* PREVIEW (RFC 8970), as Dovecot makes its snippet (lib/mime_preview.c says how): at most
   MIME_PREVIEW_CHARS characters of UTF-8 appended to out, nothing when the message has no
   text. 1, or 0 when out of memory. */
#define MIME_PREVIEW_CHARS 200
int mime_preview(const struct mime_msg *m, struct sa *out);

#endif
