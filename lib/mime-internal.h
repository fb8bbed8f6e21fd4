/* postroom: ISC license, see LICENSE. */
#ifndef MIME_INTERNAL_H
#define MIME_INTERNAL_H

#include <stddef.h>

#include "mime.h"
#include "sa.h"

/*
 * What lib/mime.c, lib/mime_imap.c and lib/mime_text.c share: the part tree and header index
 * of a parsed message, and the RFC 5322 tokenizer that Content-Type, Content-Disposition and
 * the address fields are read with. Offsets are into the caller's message.
 */

/* Part flags, as the parser decides them from Content-Type (RFC 2045 section 5.2 defaults). */
#define MIME_F_MULTIPART 1
#define MIME_F_RFC822 2		/* message/rfc822 (or a digest's part without Content-Type) */
#define MIME_F_TEXT 4
#define MIME_F_DIGEST 8		/* multipart/digest: its parts default to message/rfc822 */
#define MIME_F_MIME 16		/* MIME-Version or Content-Type seen: Content-* fields count */
#define MIME_F_OVERFLOW 32	/* a multipart too deep to parse: application/octet-stream */

/* One header field, with its continuation lines. */
struct mime_hdr {
	size_t off;		/* the field's first byte */
	size_t namelen;		/* the name, without blanks before the colon */
	size_t value;		/* after the colon and the blanks that follow it */
	size_t vend;		/* end of the value: the last line's [CR]LF is not in it */
	size_t end;		/* after the last line's LF (or the end of the message) */
	int colon;		/* 0: a line with no colon, whose whole text is its name */
};

struct mime_part {
	size_t hs, he;		/* the header, with its blank line when there is one */
	size_t bs, be;		/* the body */
	unsigned long long hvsize, bvsize;	/* sizes with CRLF line ends */
	unsigned long hlines, blines;
	size_t hdr0, nhdr;	/* its fields: hdrs[hdr0 .. hdr0 + nhdr) */
	int flags;
	int parent, child, next;	/* part indexes, -1 for none */
	unsigned depth;
};

struct mime_msg {
	const char *msg;
	size_t len;
	struct mime_part *parts;
	size_t nparts, partcap;
	struct mime_hdr *hdrs;
	size_t nhdrs, hdrcap;
};

/* The field's value as Dovecot reads it: continuation lines joined with LF, CRs before LFs
   dropped, cut at a NUL. Appends to out; 1, or 0 when out of memory. */
int mime_hdr_value(const struct mime_msg *m, const struct mime_hdr *h, struct sa *out);
/* 1 when the field is named name (ASCII case-insensitive). */
int mime_hdr_is(const struct mime_msg *m, const struct mime_hdr *h, const char *name);

/* The RFC 5322 lexer (comments, quoted strings, atoms, MIME tokens) over a NUL-free value. */
struct mime_lex {
	const unsigned char *p, *end;
	struct sa *comment;	/* when not 0, the text of the last comment skipped */
	int nomem;
};
int mime_lex_skip(struct mime_lex *x);
int mime_lex_token(struct mime_lex *x, struct sa *out);
int mime_lex_atom(struct mime_lex *x, struct sa *out);
int mime_lex_dot_atom(struct mime_lex *x, struct sa *out);
int mime_lex_quoted(struct mime_lex *x, struct sa *out);
int mime_lex_phrase(struct mime_lex *x, struct sa *out);
int mime_lex_domain(struct mime_lex *x, struct sa *out);
int mime_lex_content_type(struct mime_lex *x, struct sa *out);

/* Content-Type style parameters after the type (RFC 2045, with RFC 2231 continuations joined
   as Dovecot 2.3 does): name/value pairs, NUL-separated, appended to out; *count set. */
int mime_params(struct mime_lex *x, struct sa *out, size_t *count);

#define MIME_LEX_ZERO { 0, 0, 0, 0 }

/* The index of the part a section's numbers name (as Dovecot finds it), or -1. */
int mime_find_part(const struct mime_msg *m, const struct mime_section *sec);

/* For mime_body_text: the part's decoded text (transfer encoding undone, charset converted). */
int mime_part_text(const struct mime_msg *m, const struct mime_part *p, struct sa *out);

#endif
