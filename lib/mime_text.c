/* postroom: ISC license, see LICENSE. */
#define _GNU_SOURCE	/* memmem */
#include <errno.h>
#include <iconv.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "fmt.h"
#include "base64.h"
#include "mime-internal.h"
#include "utf8.h"

/*
 * The text SEARCH looks in: header values with their RFC 2047 encoded-words decoded, bodies
 * with their transfer encoding undone, everything converted to UTF-8 with glibc's iconv;
 * and the Date field's calendar date. Nothing here is sent to clients, so where input is
 * broken the aim is to keep what text there is, not to match anyone byte for byte.
 */

/* --- charsets ----------------------------------------------------------------------------- */

static int is_utf8_name(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
		strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Appends the well-formed UTF-8 in s[0..n); other bytes are dropped. */
static int put_valid_utf8(struct sa *out, const char *s, size_t n)
{
	/* Only ever shorter: room for all of it at once, then bytes copied, not appended. */
	if (!sa_ready(out, n))
		return 0;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t run = i;	/* well-formed bytes from i on, copied as one */
		while (run < n) {
			size_t l = u[run] < 0x80 ? 1 : utf8_len(u + run, n - run);
			if (l == 0)
				break;
			run += l;
		}
		memcpy(out->s + out->len, s + i, run - i);
		out->len += run - i;
		i = run + (run < n);	/* past the byte that is not UTF-8 */
	}
	out->s[out->len] = 0;
	return 1;
}

/* Converts s[0..n) from charset to UTF-8, dropping what does not convert. Returns 1, 0 when
   out of memory, -1 when iconv does not know the charset (out unchanged). */
static int convert(const char *charset, const char *s, size_t n, struct sa *out)
{
	if (!charset || !*charset || is_utf8_name(charset))
		return put_valid_utf8(out, s, n);
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return -1;
	char *in = (char *)s;
	size_t left = n;
	int ok = 1;
	while (left > 0 && ok) {
		if (!sa_ready(out, left * 4 + 16)) {
			ok = 0;
			break;
		}
		char *o = out->s + out->len;
		size_t room = out->cap - out->len - 1;
		size_t r = iconv(cd, &in, &left, &o, &room);
		out->len = (size_t)(o - out->s);
		out->s[out->len] = 0;
		if (r == (size_t)-1) {
			if (errno == E2BIG)
				continue;
			/* an invalid or cut-off sequence: skip a byte */
			in++;
			left--;
			iconv(cd, 0, 0, 0, 0);
		}
	}
	iconv_close(cd);
	return ok;
}

/* --- RFC 2047 ----------------------------------------------------------------------------- */

/* base64, skipping what is not in the alphabet, stopping at '='. */
static int base64_put(struct sa *out, const char *s, size_t n)
{
	/* At most 3 bytes for each 4 digits: room for all of it at once, not a check a byte. */
	if (!sa_ready(out, n / 4 * 3 + 3))
		return 0;
	unsigned acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		int v = base64_value(s[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->s[out->len++] = (char)((acc >> bits) & 0xff);
		}
	}
	out->s[out->len] = 0;
	return 1;
}

/* quoted-printable (RFC 2045 section 6.7); with q set, RFC 2047's Q ("_" is a space). */
static int qp_put(struct sa *out, const char *s, size_t n, int q)
{
	/* Decoding only shortens: room for all of it at once. */
	if (!sa_ready(out, n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '_' && q)
			c = ' ';
		else if (c == '=') {
			if (i + 2 < n && scan_hexdigit(s[i + 1]) >= 0 && scan_hexdigit(s[i + 2]) >= 0) {
				c = (char)(scan_hexdigit(s[i + 1]) * 16 + scan_hexdigit(s[i + 2]));
				i += 2;
			} else {
				/* a soft line break: "=" and blanks to the end of the line */
				size_t j = i + 1;
				while (j < n && (s[j] == ' ' || s[j] == '\t'))
					j++;
				if (j < n && s[j] == '\r')
					j++;
				if (j < n && s[j] == '\n') {
					i = j;
					continue;
				}
				if (j >= n && !q) {
					i = j;
					continue;
				}
			}
		}
		out->s[out->len++] = c;
	}
	out->s[out->len] = 0;
	return 1;
}

/* An encoded-word at s[0..n): its charset (without an RFC 2231 "*language") and its
   decoded bytes appended to raw. Returns its length, or 0 when s does not start one. */
#define ENCODED_WORD_MAX 1024

static size_t encoded_word(const char *s, size_t n, char *charset, size_t cslen,
	struct sa *raw, int *nomem)
{
	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	/* RFC 2047 allows 75 bytes; longer ones are taken, up to a bound, so that a header of
	   many "=?" without their "?=" costs a scan of that bound each, not of the header. */
	if (n > ENCODED_WORD_MAX)
		n = ENCODED_WORD_MAX;
	const char *q1 = memchr(s + 2, '?', n - 2);
	if (!q1 || q1 == s + 2 || (size_t)(q1 - s) + 3 >= n || q1[2] != '?')
		return 0;
	char enc = q1[1];
	if (enc != 'b' && enc != 'B' && enc != 'q' && enc != 'Q')
		return 0;
	const char *text = q1 + 3;
	const char *end = 0;
	for (const char *p = text; p + 1 < s + n; p++) {
		if (p[0] == '?' && p[1] == '=') {
			end = p;
			break;
		}
		if (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' || p[0] == '\n')
			return 0;
	}
	if (!end)
		return 0;
	size_t l = (size_t)(q1 - (s + 2));
	const char *star = memchr(s + 2, '*', l);
	if (star)
		l = (size_t)(star - (s + 2));
	if (l == 0 || l >= cslen)
		return 0;
	memcpy(charset, s + 2, l);
	charset[l] = 0;
	int ok = (enc == 'b' || enc == 'B') ? base64_put(raw, text, (size_t)(end - text)) :
		qp_put(raw, text, (size_t)(end - text), 1);
	if (!ok)
		*nomem = 1;
	return (size_t)(end + 2 - s);
}

/* Unfolds s[0..n) (line breaks removed) and decodes its encoded-words into UTF-8: words
   with only blanks between them are joined, and bytes of one charset are converted
   together so that a character split over two words survives. Text outside encoded-words
   that is not UTF-8 is taken as ISO-8859-1. */
static int decode_2047(const char *s, size_t n, struct sa *out)
{
	struct sa raw = SA_ZERO, plain = SA_ZERO;
	char cs[64], pending_cs[64] = "";
	int nomem = 0, ok = 1;
	size_t i = 0;

	while (i < n && ok) {
		size_t w = encoded_word(s + i, n - i, cs, sizeof cs, &raw, &nomem);
		if (nomem) {
			ok = 0;
			break;
		}
		if (w) {
			/* raw only ever holds words of one charset: a word of another one is
			   not joined (the probe below) */
			if (!*pending_cs)
				memcpy(pending_cs, cs, sizeof cs);
			i += w;
			/* blanks up to the next encoded-word are dropped */
			size_t j = i;
			while (j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n'))
				j++;
			char cs2[64];
			struct sa probe = SA_ZERO;
			size_t w2 = encoded_word(s + j, n - j, cs2, sizeof cs2, &probe, &nomem);
			sa_free(&probe);
			if (w2 && strcasecmp(cs2, pending_cs) == 0) {
				i = j;
				continue;
			}
			int r = convert(pending_cs, raw.s ? raw.s : "", raw.len, out);
			if (r < 0)
				r = put_valid_utf8(out, raw.s ? raw.s : "", raw.len);
			ok = r;
			raw.len = 0;
			*pending_cs = 0;
			if (w2)
				i = j;
			continue;
		}
		/* plain text up to the next "=?" */
		size_t j = i + 1;
		while (j < n && !(s[j] == '=' && j + 1 < n && s[j + 1] == '?'))
			j++;
		plain.len = 0;
		for (size_t k = i; k < j && ok; k++) {
			if (s[k] != '\r' && s[k] != '\n')
				ok = sa_catc(&plain, s[k]);
		}
		for (size_t k = 0; k < plain.len && ok;) {
			size_t l = utf8_len((const unsigned char *)plain.s + k, plain.len - k);
			if (l) {
				ok = sa_catb(out, plain.s + k, l);
				k += l;
			} else {
				unsigned char c = (unsigned char)plain.s[k++];
				char two[2] = { (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };
				ok = sa_catb(out, two, 2);
			}
		}
		i = j;
	}
	sa_free(&raw);
	sa_free(&plain);
	if (ok && !sa_catb(out, "", 0))
		ok = 0;
	return ok;
}

int mime_decode_words(const char *s, size_t n, struct sa *out)
{
	return decode_2047(s, n, out);
}

int mime_header_text(const struct mime_msg *m, const char *name, struct sa *out)
{
	const struct mime_part *p = &m->parts[0];
	struct sa v = SA_ZERO;
	int ok = sa_catb(out, "", 0);

	for (size_t i = 0; i < p->nhdr && ok; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		if (name ? !mime_hdr_is(m, h, name) : !h->colon)
			continue;
		v.len = 0;
		ok = mime_hdr_value(m, h, &v);
		if (ok && !name)
			ok = sa_catb(out, m->msg + h->off, h->namelen) && sa_cats(out, ": ");
		ok = ok && decode_2047(v.s, v.len, out) && sa_catc(out, '\n');
	}
	sa_free(&v);
	return ok;
}

/* --- bodies ------------------------------------------------------------------------------- */

/* The part's charset parameter and transfer encoding, from its first Content-Type and
   Content-Transfer-Encoding (only when the part is MIME). */
static int part_encoding(const struct mime_msg *m, const struct mime_part *p, char *cs,
	size_t cslen, char *cte, size_t ctelen)
{
	struct sa v = SA_ZERO, tok = SA_ZERO, ps = SA_ZERO;
	int seen_ct = 0, seen_cte = 0, ok = 1;

	*cs = *cte = 0;
	if (!(p->flags & MIME_F_MIME))
		return 1;
	for (size_t i = 0; i < p->nhdr && ok; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		int is_ct = !seen_ct && mime_hdr_is(m, h, "Content-Type");
		int is_cte = !seen_cte && mime_hdr_is(m, h, "Content-Transfer-Encoding");
		if (!is_ct && !is_cte)
			continue;
		v.len = tok.len = ps.len = 0;
		if (!mime_hdr_value(m, h, &v)) {
			ok = 0;
			break;
		}
		struct mime_lex x = MIME_LEX_ZERO;
		x.p = (const unsigned char *)v.s;
		x.end = x.p + v.len;
		mime_lex_skip(&x);
		if (is_cte) {
			seen_cte = 1;
			if (mime_lex_token(&x, &tok) >= 0 && tok.len > 0 && tok.len < ctelen) {
				memcpy(cte, tok.s, tok.len);
				cte[tok.len] = 0;
			}
			continue;
		}
		seen_ct = 1;
		size_t n;
		if (mime_lex_content_type(&x, &tok) < 0)
			continue;
		if (!mime_params(&x, &ps, &n)) {
			ok = 0;
			break;
		}
		const char *s = ps.s;
		for (size_t k = 0; k < n; k++) {
			const char *val = s + strlen(s) + 1;
			if (strcasecmp(s, "charset") == 0 && strlen(val) < cslen)
				strcpy(cs, val);
			s = val + strlen(val) + 1;
		}
	}
	sa_free(&v);
	sa_free(&tok);
	sa_free(&ps);
	return ok;
}

int mime_part_text(const struct mime_msg *m, const struct mime_part *p, struct sa *out)
{
	char cs[64], cte[32];
	struct sa raw = SA_ZERO;
	const char *body = m->msg + p->bs;
	size_t n = p->be > p->bs ? p->be - p->bs : 0;
	int ok;

	if (!part_encoding(m, p, cs, sizeof cs, cte, sizeof cte))
		return 0;
	if (strcasecmp(cte, "base64") == 0)
		ok = base64_put(&raw, body, n);
	else if (strcasecmp(cte, "quoted-printable") == 0)
		ok = qp_put(&raw, body, n, 0);
	else
		ok = sa_catb(&raw, body, n);
	if (ok) {
		int r = convert(cs, raw.s ? raw.s : "", raw.len, out);
		ok = r < 0 ? put_valid_utf8(out, raw.s ? raw.s : "", raw.len) : r;
	}
	sa_free(&raw);
	return ok;
}

int mime_body_text(const struct mime_msg *m, struct sa *out)
{
	int ok = sa_catb(out, "", 0);
	struct sa v = SA_ZERO;

	for (size_t i = 1; i < m->nparts && ok; i++) {
		const struct mime_part *p = &m->parts[i];
		/* the header of a message inside a message/rfc822 is text of the body */
		if (m->parts[p->parent].flags & MIME_F_RFC822) {
			for (size_t k = 0; k < p->nhdr && ok; k++) {
				const struct mime_hdr *h = &m->hdrs[p->hdr0 + k];
				if (!h->colon)
					continue;
				v.len = 0;
				ok = mime_hdr_value(m, h, &v) &&
					sa_catb(out, m->msg + h->off, h->namelen) && sa_cats(out, ": ") &&
					decode_2047(v.s, v.len, out) && sa_catc(out, '\n');
			}
		}
	}
	for (size_t i = 0; i < m->nparts && ok; i++) {
		const struct mime_part *p = &m->parts[i];
		if ((p->flags & MIME_F_TEXT) && p->child < 0)
			ok = mime_part_text(m, p, out) && sa_catc(out, '\n');
	}
	sa_free(&v);
	return ok;
}

/* --- Date --------------------------------------------------------------------------------- */

static int month_of(const char *w, size_t n)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	if (n < 3)
		return 0;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(w, names + 3 * i, 3) == 0)
			return i + 1;
	}
	return 0;
}

/* RFC 5322 section 3.3 and its obsolete forms, leniently: an optional day name, then day,
   month name and year in that order, separated by blanks, commas or hyphens; a two-digit
   year is 19xx from 50 up and 20xx below (section 4.3), a three-digit one 1900 plus it. */
int mime_sent_date(const struct mime_msg *m, int *year, int *month, int *day)
{
	const struct mime_part *p = &m->parts[0];
	const struct mime_hdr *date = 0;
	struct sa v = SA_ZERO;

	for (size_t i = 0; i < p->nhdr; i++) {
		if (mime_hdr_is(m, &m->hdrs[p->hdr0 + i], "Date"))
			date = &m->hdrs[p->hdr0 + i];
	}
	if (!date || !mime_hdr_value(m, date, &v)) {
		sa_free(&v);
		return 0;
	}
	int d = 0, mo = 0, y = -1, step = 0;
	const char *s = v.s, *e = v.s + v.len;
	while (s < e && step < 3) {
		if (*s == '(') {
			int level = 0;
			for (; s < e; s++) {
				if (*s == '(')
					level++;
				else if (*s == ')' && --level == 0) {
					s++;
					break;
				}
			}
			continue;
		}
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z'))) {
			s++;
			continue;
		}
		const char *w = s;
		while (s < e && ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z')))
			s++;
		size_t n = (size_t)(s - w);
		int digits = *w >= '0' && *w <= '9';
		if (step == 0) {
			if (digits && n <= 2) {
				d = atoi(w);
				step = 1;
			}
			/* else a day name (or noise) before the day */
		} else if (step == 1) {
			if (digits || !(mo = month_of(w, n)))
				break;
			step = 2;
		} else if (step == 2) {
			if (!digits || n > 4)
				break;
			y = atoi(w);
			if (n <= 2)
				y += y < 50 ? 2000 : 1900;
			else if (n == 3)
				y += 1900;
			step = 3;
		}
	}
	sa_free(&v);
	if (step < 3 || d < 1 || d > 31)
		return 0;
	*year = y;
	*month = mo;
	*day = d;
	return 1;
}

/* --- case-insensitive search -------------------------------------------------------------- */

/* Lower case from glibc's built-in C.UTF-8 tables, whatever the process's locale is. */
static unsigned fold(unsigned cp)
{
	static locale_t loc;
	static int tried;

	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if (!tried) {
		tried = 1;
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return loc ? (unsigned)towlower_l((wint_t)cp, loc) : cp;
}

/* The code points of UTF-8 text, folded; a byte that is not UTF-8 stands for itself. */
static unsigned *folded(const char *s, size_t n, size_t *count)
{
	unsigned *cp = malloc((n ? n : 1) * sizeof *cp);
	size_t k = 0;

	if (!cp)
		return 0;
	for (size_t i = 0; i < n;) {
		const unsigned char *u = (const unsigned char *)s + i;
		if (*u < 0x80) {	/* most text: no decoding, no locale */
			cp[k++] = *u >= 'A' && *u <= 'Z' ? *u + 32u : *u;
			i++;
			continue;
		}
		size_t l = utf8_len(u, n - i);
		unsigned c;
		if (l == 0) {
			c = 0x110000u + *u;	/* outside Unicode: matches only itself */
			l = 1;
		} else if (l == 1)
			c = *u;
		else if (l == 2)
			c = ((u[0] & 0x1fu) << 6) | (u[1] & 0x3fu);
		else if (l == 3)
			c = ((u[0] & 0x0fu) << 12) | ((u[1] & 0x3fu) << 6) | (u[2] & 0x3fu);
		else
			c = ((u[0] & 0x07u) << 18) | ((u[1] & 0x3fu) << 12) | ((u[2] & 0x3fu) << 6) |
				(u[3] & 0x3fu);
		cp[k++] = c < 0x110000u ? fold(c) : c;
		i += l;
	}
	*count = k;
	return cp;
}

int mime_text_contains(const char *hay, size_t haylen, const char *needle, size_t needlelen)
{
	if (needlelen == 0)
		return 1;
	size_t nh, nn;
	unsigned *h = folded(hay, haylen, &nh);
	unsigned *n = folded(needle, needlelen, &nn);
	int found = 0;
	if (h && n) {
		/* memmem is linear (two-way); a match must also fall on a code point. */
		const char *hb = (const char *)h, *nb = (const char *)n;
		size_t hl = nh * sizeof *h, nl = nn * sizeof *n;
		for (const char *at = hb; !found && (size_t)(at - hb) + nl <= hl;) {
			const char *m = memmem(at, hl - (size_t)(at - hb), nb, nl);
			if (!m)
				break;
			if ((size_t)(m - hb) % sizeof *h == 0)
				found = 1;
			else
				at = m + 1;
		}
	}
	free(h);
	free(n);
	return found;
}
