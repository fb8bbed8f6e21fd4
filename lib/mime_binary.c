/* postroom: ISC license, see LICENSE. */
/*
 * BINARY[section] (RFC 3516): a part's content with its transfer encoding undone. The text
 * decoders of mime_text.c are lenient, for SEARCH; these answer a client that asked for the
 * exact bytes, so broken base64 is an error (Dovecot answers NO [PARSE]) and quoted-printable
 * keeps the message's line ends as CRLF, but a bad escape is an error too.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fmt.h"
#include "base64.h"
#include "mime-internal.h"

/* msg[a..b) with every line ending CRLF; NULs kept (a literal8 carries them). */
static int put_crlf_binary(struct sa *out, const char *msg, size_t a, size_t b)
{
	if (b <= a)
		return 1;
	if (!sa_ready(out, (b - a) * 2))
		return 0;
	for (size_t i = a; i < b; i++) {
		if (msg[i] == '\n' && (i == a || msg[i - 1] != '\r'))
			out->s[out->len++] = '\r';
		out->s[out->len++] = msg[i];
	}
	out->s[out->len] = 0;
	return 1;
}

/* RFC 4648 base64 with line breaks and blanks between the digits; decoding stops at the
   padding. BROKEN for a byte out of the alphabet. */
static enum mime_binary_result base64_binary(struct sa *out, const char *s, size_t n)
{
	if (!sa_ready(out, n / 4 * 3 + 3))
		return MIME_BINARY_NOMEM;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		if (s[i] == '\r' || s[i] == '\n' || s[i] == ' ' || s[i] == '\t')
			continue;
		int v = base64_value(s[i]);
		if (v < 0)
			return MIME_BINARY_BROKEN;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->s[out->len++] = (char)((acc >> bits) & 0xff);
		}
	}
	out->s[out->len] = 0;
	return MIME_BINARY_OK;
}

/* Quoted-printable (RFC 2045 section 6.7) line by line: blanks at a line's end are transport
   padding and go; "=" at its end joins it to the next; every other line end is CRLF. An "="
   that starts no escape makes the part BROKEN, as Dovecot has it. */
static enum mime_binary_result qp_binary(struct sa *out, const char *s, size_t n)
{
	/* a line end may grow from LF to CRLF: at most twice the bytes */
	if (!sa_ready(out, 2 * n + 2))
		return MIME_BINARY_NOMEM;
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - s) : n, next = nl ? end + 1 : n;
		while (end > i && (s[end - 1] == '\r' || s[end - 1] == ' ' || s[end - 1] == '\t'))
			end--;
		/* an "=" at the end is no escape: those end in hex digits */
		int soft = end > i && s[end - 1] == '=';
		if (soft)
			end--;
		for (size_t k = i; k < end; k++) {
			if (s[k] == '=') {
				if (k + 2 >= end || scan_hexdigit(s[k + 1]) < 0 || scan_hexdigit(s[k + 2]) < 0)
					return MIME_BINARY_BROKEN;
				out->s[out->len++] = (char)(scan_hexdigit(s[k + 1]) * 16 + scan_hexdigit(s[k + 2]));
				k += 2;
			} else {
				out->s[out->len++] = s[k];
			}
		}
		if (nl && !soft) {
			out->s[out->len++] = '\r';
			out->s[out->len++] = '\n';
		}
		i = next;
	}
	out->s[out->len] = 0;
	return MIME_BINARY_OK;
}

/* The part's Content-Transfer-Encoding as Dovecot reads it for decoding: the last such field,
   MIME-Version or not, whose value must be one token (comments aside); "" when there is none,
   "?" when the value is something else. 1, or 0 when out of memory. */
static int part_cte(const struct mime_msg *m, const struct mime_part *p, char *cte, size_t size)
{
	struct sa v = SA_ZERO, tok = SA_ZERO;
	const struct mime_hdr *last = 0;
	int ok = 1;

	for (size_t i = 0; i < p->nhdr; i++)
		if (mime_hdr_is(m, &m->hdrs[p->hdr0 + i], "Content-Transfer-Encoding"))
			last = &m->hdrs[p->hdr0 + i];
	*cte = 0;
	if (!last)
		return 1;
	snprintf(cte, size, "?");
	if (!mime_hdr_value(m, last, &v)) {
		ok = 0;
	} else {
		struct mime_lex x = MIME_LEX_ZERO;
		x.p = (const unsigned char *)(v.s ? v.s : "");
		x.end = x.p + v.len;
		mime_lex_skip(&x);
		if (mime_lex_token(&x, &tok) >= 0 && tok.len > 0 && tok.len < size) {
			mime_lex_skip(&x);
			if (x.p == x.end)
				snprintf(cte, size, "%.*s", (int)tok.len, tok.s);
		}
		ok = !x.nomem;
	}
	sa_free(&v);
	sa_free(&tok);
	return ok;
}

enum mime_binary_result mime_section_binary(const struct mime_msg *m,
					    const struct mime_section *sec, struct sa *out,
					    int *decoded)
{
	char cte[32];

	*decoded = 0;
	if (!sa_catb(out, "", 0))
		return MIME_BINARY_NOMEM;
	if (sec->nparts == 0)
		return put_crlf_binary(out, m->msg, 0, m->len) ? MIME_BINARY_OK : MIME_BINARY_NOMEM;
	int i = mime_find_part(m, sec);
	if (i < 0)
		return MIME_BINARY_OK;
	const struct mime_part *p = &m->parts[i];
	if (!part_cte(m, p, cte, sizeof cte))
		return MIME_BINARY_NOMEM;
	const char *body = m->msg + p->bs;
	size_t n = p->be > p->bs ? p->be - p->bs : 0;
	int composite = p->flags & (MIME_F_MULTIPART | MIME_F_RFC822);
	if (composite || !*cte || !strcasecmp(cte, "7bit") || !strcasecmp(cte, "8bit") ||
	    !strcasecmp(cte, "binary"))
		return put_crlf_binary(out, m->msg, p->bs, p->be) ? MIME_BINARY_OK
								   : MIME_BINARY_NOMEM;
	*decoded = 1;
	if (!strcasecmp(cte, "base64"))
		return base64_binary(out, body, n);
	if (!strcasecmp(cte, "quoted-printable"))
		return qp_binary(out, body, n);
	return MIME_BINARY_UNKNOWN_CTE;
}
