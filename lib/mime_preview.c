/* postroom: ISC license, see LICENSE. */
#include <string.h>
#include <strings.h>

#include "mime-internal.h"

/*
 * PREVIEW (RFC 8970): a short plain-text rendering of the start of a message, made as Dovecot
 * 2.3 makes its snippet, so that a client moving between the two sees the same text:
 *   - the part: the first part, in order, that is not a multipart holding parts, not looking
 *     inside message/rfc822 parts, whose Content-Type is text/ (or that has none: text/plain).
 *     Parts of other types are passed over; a Content-Type that does not parse ends the search
 *     with no text, as Dovecot's decoder gives up there;
 *   - its text: transfer encoding undone, charset converted to UTF-8; text/html with its tags,
 *     comments, <style>, <script> and <blockquote> taken away and character references
 *     decoded (&nbsp; is U+00A0, which stays; an unknown name is left out);
 *   - lines that start with '>' (quoted) left out, unless there is nothing else: then the
 *     quoted text, after one '>';
 *   - runs of white space (and NULs) made one space, none at either end; a byte-order mark
 *     dropped; at most MIME_PREVIEW_CHARS characters.
 * Only the first PART_MAX bytes of the part are read: far more than the characters needed, so
 * that a huge part costs no more than a small one.
 */

#define PART_MAX (64u << 10)

/* The text being built: main text, or quoted text. */
struct builder {
	struct sa *out;
	size_t chars;
	int space;	/* white space seen since the last character, not yet written */
};

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f' || !c;
}

static size_t utf8_len(unsigned char c)
{
	return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

/* Adds one character (n bytes); 0 when out of memory. */
static int put_char(struct builder *b, const char *s, size_t n)
{
	if (b->chars >= MIME_PREVIEW_CHARS)
		return 1;
	if (b->space && b->chars) {
		if (!sa_catc(b->out, ' '))
			return 0;
		if (++b->chars >= MIME_PREVIEW_CHARS)
			return 1;
	}
	b->space = 0;
	b->chars++;
	return sa_catb(b->out, s, n);
}

/* Folds text into main and quoted; stops once main is full. */
static int fold(const char *text, size_t len, struct builder *main, struct builder *quoted)
{
	enum { NEWLINE, NORMAL, QUOTED } state = NEWLINE;

	for (size_t i = 0; i < len && main->chars < MIME_PREVIEW_CHARS;) {
		unsigned char c = (unsigned char)text[i];
		if (state == NEWLINE) {
			if (c == '>') {
				state = QUOTED;
				quoted->space = 1;
				i++;
				continue;
			}
			state = NORMAL;
		}
		struct builder *b = state == QUOTED ? quoted : main;
		if (c == 0xef && len - i >= 3 && !memcmp(text + i, "\xef\xbb\xbf", 3)) {
			i += 3;
			continue;
		}
		if (is_blank(c)) {
			if (c == '\n')
				state = NEWLINE;
			b->space = 1;
			i++;
			continue;
		}
		size_t n = utf8_len(c);
		if (n > len - i)
			n = len - i;
		if (!put_char(b, text + i, n))
			return 0;
		i += n;
	}
	return 1;
}

/* ---- HTML ---- */

static const struct {
	const char *name;
	const char *utf8;
} entities[] = {
	{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" }, { "apos", "'" },
	{ "nbsp", "\xc2\xa0" }, { "copy", "\xc2\xa9" }, { "reg", "\xc2\xae" }, { "euro", "\xe2\x82\xac" },
	{ "hellip", "\xe2\x80\xa6" }, { "mdash", "\xe2\x80\x94" }, { "ndash", "\xe2\x80\x93" },
	{ "lsquo", "\xe2\x80\x98" }, { "rsquo", "\xe2\x80\x99" }, { "ldquo", "\xe2\x80\x9c" },
	{ "rdquo", "\xe2\x80\x9d" }, { "bull", "\xe2\x80\xa2" }, { "trade", "\xe2\x84\xa2" },
	{ "laquo", "\xc2\xab" }, { "raquo", "\xc2\xbb" }, { "deg", "\xc2\xb0" },
	{ "eacute", "\xc3\xa9" }, { "egrave", "\xc3\xa8" }, { "agrave", "\xc3\xa0" },
	{ "aacute", "\xc3\xa1" }, { "ccedil", "\xc3\xa7" }, { "ouml", "\xc3\xb6" },
	{ "uuml", "\xc3\xbc" }, { "auml", "\xc3\xa4" }, { "szlig", "\xc3\x9f" },
	{ "Ouml", "\xc3\x96" }, { "Uuml", "\xc3\x9c" }, { "Auml", "\xc3\x84" },
	{ "Eacute", "\xc3\x89" },
};

static int put_codepoint(struct sa *out, unsigned long cp)
{
	char b[4];
	size_t n;

	if (!cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 1;	/* not a character: left out */
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	}
	return sa_catb(out, b, n);
}

/* The character reference at s[0] == '&': its length (0 when it is not one: the '&' is
   text), its character appended; an unknown name is left out, as Dovecot leaves it out. */
static size_t entity(const char *s, size_t n, struct sa *out, int *ok)
{
	const char *semi = memchr(s, ';', n < 12 ? n : 12);
	if (!semi || semi == s + 1)
		return 0;
	size_t len = (size_t)(semi - s - 1);
	const char *name = s + 1;
	if (name[0] == '#') {
		unsigned long cp = 0;
		int hex = len > 1 && (name[1] == 'x' || name[1] == 'X');
		size_t k = hex ? 2 : 1;
		if (k >= len)
			return 0;
		for (; k < len; k++) {
			char c = name[k];
			int d = c >= '0' && c <= '9' ? c - '0' :
				hex && c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				return 0;
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
			if (cp > 0x10ffff)
				cp = 0x110000;
		}
		*ok = put_codepoint(out, cp);
		return len + 2;
	}
	for (size_t k = 0; k < len; k++)
		if (!((name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
		      (name[k] >= '0' && name[k] <= '9')))
			return 0;
	for (size_t e = 0; e < sizeof entities / sizeof *entities; e++)
		if (strlen(entities[e].name) == len && !memcmp(entities[e].name, name, len)) {
			*ok = sa_cats(out, entities[e].utf8);
			break;
		}
	return len + 2;
}

/* The end of the element whose contents are hidden (after "</name ...>"), or n. */
static size_t skip_element(const char *s, size_t i, size_t n, const char *name)
{
	size_t nl = strlen(name);
	int depth = 1;

	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (!lt)
			return n;
		i = (size_t)(lt - s) + 1;
		int closing = i < n && s[i] == '/';
		size_t t = i + (size_t)closing;
		if (n - t >= nl && !strncasecmp(s + t, name, nl) &&
		    (t + nl == n || !((s[t + nl] | 0x20) >= 'a' && (s[t + nl] | 0x20) <= 'z'))) {
			depth += closing ? -1 : 1;
			if (!depth) {
				const char *gt = memchr(s + t, '>', n - t);
				return gt ? (size_t)(gt - s) + 1 : n;
			}
		}
	}
	return n;
}

static int html_text(const char *s, size_t n, struct sa *out)
{
	static const char *const hidden[] = { "style", "script", "blockquote" };
	int ok = 1;

	for (size_t i = 0; i < n && ok;) {
		if (s[i] == '&') {
			size_t used = entity(s + i, n - i, out, &ok);
			if (used) {
				i += used;
				continue;
			}
		}
		if (s[i] != '<') {
			ok = sa_catc(out, s[i++]);
			continue;
		}
		if (n - i >= 4 && !memcmp(s + i, "<!--", 4)) {
			size_t e = i + 4;
			while (e + 3 <= n && memcmp(s + e, "-->", 3))
				e++;
			i = e + 3 <= n ? e + 3 : n;
			continue;	/* a comment joins what is on either side, as in Dovecot */
		}
		size_t t = i + 1;
		const char *gt = memchr(s + t, '>', n - t);
		size_t after = gt ? (size_t)(gt - s) + 1 : n;
		for (size_t h = 0; h < sizeof hidden / sizeof *hidden; h++) {
			size_t hl = strlen(hidden[h]);
			if (n - t >= hl && !strncasecmp(s + t, hidden[h], hl) &&
			    (t + hl == n || s[t + hl] == '>' || is_blank((unsigned char)s[t + hl]) ||
			     s[t + hl] == '/'))
				after = skip_element(s, after, n, hidden[h]);
		}
		/* A tag separates words: "a<br>b" and "a<p>b" are two words. */
		ok = sa_catc(out, ' ');
		i = after;
	}
	return ok;
}

/* ---- the part ---- */

/* The part's first Content-Type, lower-cased, in ct: 1 with it, 0 when it has none, -1 when
   it does not parse. */
static int declared_type(const struct mime_msg *m, const struct mime_part *p, char *ct,
			 size_t size)
{
	for (size_t i = 0; i < p->nhdr; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		if (!mime_hdr_is(m, h, "Content-Type"))
			continue;
		struct sa v = SA_ZERO, t = SA_ZERO;
		int r = -1;
		if (mime_hdr_value(m, h, &v)) {
			struct mime_lex x = MIME_LEX_ZERO;
			x.p = (const unsigned char *)(v.s ? v.s : "");
			x.end = x.p + v.len;
			if (mime_lex_content_type(&x, &t) >= 0 && t.len && t.len < size) {
				for (size_t k = 0; k < t.len; k++)
					ct[k] = (char)(t.s[k] >= 'A' && t.s[k] <= 'Z' ? t.s[k] + 32 : t.s[k]);
				ct[t.len] = 0;
				r = 1;
			}
		}
		sa_free(&v);
		sa_free(&t);
		return r;
	}
	return 0;
}

static int inside_message(const struct mime_msg *m, const struct mime_part *p)
{
	for (int q = p->parent; q >= 0; q = m->parts[q].parent)
		if (m->parts[q].flags & MIME_F_RFC822)
			return 1;
	return 0;
}

/* The index of the part whose text is the preview, or -1 (*html set for text/html). */
static int preview_part(const struct mime_msg *m, int *html)
{
	char ct[128];

	for (size_t i = 0; i < m->nparts; i++) {
		const struct mime_part *p = &m->parts[i];
		if (inside_message(m, p))
			continue;
		if (p->child >= 0 && !(p->flags & MIME_F_RFC822))
			continue;	/* a multipart: its parts come next */
		int r = declared_type(m, p, ct, sizeof ct);
		if (r < 0)
			return -1;
		if (r == 0 || !strncmp(ct, "text/", 5)) {
			*html = r > 0 && !strcmp(ct, "text/html");
			return (int)i;
		}
	}
	return -1;
}

int mime_preview(const struct mime_msg *m, struct sa *out)
{
	int html = 0, i = preview_part(m, &html);
	size_t start = out->len;

	if (!sa_catb(out, "", 0))
		return 0;
	if (i < 0)
		return 1;
	/* A copy of the part cut short, at a line's end so that no encoding is cut midway. Its
	   Content-Transfer-Encoding and charset count even without MIME-Version, as Dovecot's
	   snippet decodes them. */
	struct mime_part p = m->parts[i];
	p.flags |= MIME_F_MIME;
	if (p.be > p.bs && p.be - p.bs > PART_MAX) {
		size_t cut = p.bs + PART_MAX;
		while (cut > p.bs && m->msg[cut - 1] != '\n')
			cut--;
		p.be = cut > p.bs ? cut : p.bs + PART_MAX;
	}
	struct sa text = SA_ZERO, plain = SA_ZERO, q = SA_ZERO;
	int ok = mime_part_text(m, &p, &text);
	const struct sa *src = &text;
	if (ok && html) {
		ok = html_text(text.s ? text.s : "", text.len, &plain);
		src = &plain;
	}
	struct builder main = { out, 0, 0 }, quoted = { &q, 0, 0 };
	if (ok)
		ok = fold(src->s ? src->s : "", src->len, &main, &quoted);
	if (ok && out->len == start && q.len) {
		/* Only quoted text: that, after one '>', within the same length. */
		ok = sa_catc(out, '>');
		size_t chars = 1;
		for (size_t k = 0; ok && k < q.len && chars < MIME_PREVIEW_CHARS; chars++) {
			size_t n = utf8_len((unsigned char)q.s[k]);
			if (n > q.len - k)
				n = q.len - k;
			ok = sa_catb(out, q.s + k, n);
			k += n;
		}
	}
	sa_free(&text);
	sa_free(&plain);
	sa_free(&q);
	return ok;
}
