/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime-internal.h"

/*
 * The MIME structure parser. It walks the message once, line by line, as Dovecot's
 * message-parser does, so that broken messages split into the same parts (and the sizes
 * IMAP reports agree with Dovecot's to the byte):
 *  - a header ends at its blank line, at the end of the message, or at a line that is a
 *    boundary of an enclosing multipart (then the [CR]LF before that line is the parent's);
 *  - a boundary line is "--" followed by any active boundary as a prefix (the longest one
 *    wins, the innermost first); the [CR]LF before it belongs to the boundary, not the part;
 *  - a multipart's own boundary becomes active only when its header ends with a blank line;
 *  - finding an outer boundary closes every inner part; a closing "--" boundary retires its
 *    own boundary and every inner one.
 */

#define BOUNDARY_MAX 80		/* Dovecot keeps this much of a boundary parameter */

struct boundary {
	int part;
	const char *s;
	size_t len;
};

struct parser {
	struct mime_msg *m;
	const char *p;
	size_t len;
	struct boundary *b;
	size_t nb, bcap;
	struct sa tmp, params;
	int nomem;
};

static int add_part(struct parser *ps, int parent)
{
	struct mime_msg *m = ps->m;

	if (m->nparts == m->partcap) {
		size_t cap = m->partcap ? m->partcap * 2 : 8;
		struct mime_part *n = realloc(m->parts, cap * sizeof *n);
		if (!n) {
			ps->nomem = 1;
			return -1;
		}
		m->parts = n;
		m->partcap = cap;
	}
	int i = (int)m->nparts++;
	struct mime_part *p = &m->parts[i];
	memset(p, 0, sizeof *p);
	p->parent = parent;
	p->child = p->next = -1;
	p->hdr0 = m->nhdrs;
	if (parent >= 0) {
		struct mime_part *par = &m->parts[parent];
		p->depth = par->depth + 1;
		if (par->child < 0)
			par->child = i;
		else {
			int c = par->child;
			while (m->parts[c].next >= 0)
				c = m->parts[c].next;
			m->parts[c].next = i;
		}
	}
	return i;
}

static struct mime_hdr *add_hdr(struct parser *ps)
{
	struct mime_msg *m = ps->m;

	if (m->nhdrs == m->hdrcap) {
		size_t cap = m->hdrcap ? m->hdrcap * 2 : 32;
		struct mime_hdr *n = realloc(m->hdrs, cap * sizeof *n);
		if (!n) {
			ps->nomem = 1;
			return 0;
		}
		m->hdrs = n;
		m->hdrcap = cap;
	}
	return &m->hdrs[m->nhdrs++];
}

/* The active boundary that the line at off starts ("--" and the boundary as a prefix), or -1;
   *closing tells whether "--" follows it. */
static int boundary_at(const struct parser *ps, size_t off, int *closing)
{
	const char *d = ps->p + off;
	size_t size = ps->len - off;

	if (ps->nb == 0 || size < 2 || d[0] != '-' || d[1] != '-')
		return -1;
	d += 2;
	size -= 2;
	size_t find = size;
	const char *lf = memchr(d, '\n', size);
	if (lf) {
		find = (size_t)(lf - d);
		if (find > 0 && d[find - 1] == '\r')
			find--;
		if (find > 2 && d[find - 1] == '-' && d[find - 2] == '-')
			find -= 2;
	} else if (find > BOUNDARY_MAX + 4)
		find = BOUNDARY_MAX + 4;
	int best = -1;
	for (size_t i = ps->nb; i-- > 0;) {
		const struct boundary *b = &ps->b[i];
		if (b->len <= find && memcmp(b->s, d, b->len) == 0 &&
		    (best < 0 || ps->b[best].len < b->len)) {
			best = (int)i;
			if (b->len == find)
				break;
		}
	}
	if (best >= 0)
		*closing = size >= ps->b[best].len + 2 && d[ps->b[best].len] == '-' &&
			d[ps->b[best].len + 1] == '-';
	return best;
}

static int is_lwsp(char c)
{
	return c == ' ' || c == '\t';
}

static size_t line_end(const struct parser *ps, size_t off)
{
	const char *lf = memchr(ps->p + off, '\n', ps->len - off);
	return lf ? (size_t)(lf - ps->p) + 1 : ps->len;
}

/* Content-Type decides the part's kind and, for a multipart, its boundary (*bnd). */
static void content_type(struct parser *ps, int part, const struct mime_hdr *h,
	const char **bnd, size_t *bndlen)
{
	struct mime_part *p = &ps->m->parts[part];

	ps->tmp.len = 0;
	if (!mime_hdr_value(ps->m, h, &ps->tmp)) {
		ps->nomem = 1;
		return;
	}
	struct mime_lex x = MIME_LEX_ZERO;
	struct sa ct = SA_ZERO;
	x.p = (const unsigned char *)ps->tmp.s;
	x.end = x.p + ps->tmp.len;
	mime_lex_skip(&x);
	int r = mime_lex_content_type(&x, &ct);
	if (x.nomem || (ct.len == 0 && !sa_catb(&ct, "", 0))) {
		sa_free(&ct);
		ps->nomem = 1;
		return;
	}
	if (strcasecmp(ct.s, "message/rfc822") == 0)
		p->flags |= MIME_F_RFC822;
	else if (strncasecmp(ct.s, "text", 4) == 0 && (ct.len == 4 || ct.s[4] == '/'))
		p->flags |= MIME_F_TEXT;
	else if (strncasecmp(ct.s, "multipart/", 10) == 0) {
		p->flags |= MIME_F_MULTIPART;
		if (strcasecmp(ct.s + 10, "digest") == 0)
			p->flags |= MIME_F_DIGEST;
	}
	sa_free(&ct);
	if (r < 0 || !(p->flags & MIME_F_MULTIPART))
		return;
	size_t n;
	ps->params.len = 0;
	if (!mime_params(&x, &ps->params, &n) || x.nomem) {
		ps->nomem = 1;
		return;
	}
	const char *s = ps->params.s;
	for (size_t i = 0; i < n; i++) {
		const char *name = s;
		const char *val = name + strlen(name) + 1;
		s = val + strlen(val) + 1;
		if (strcasecmp(name, "boundary") == 0) {
			size_t l = strlen(val);
			if (l > BOUNDARY_MAX)
				l = BOUNDARY_MAX;
			/* A copy (unquoted, joined) that lives until the parse ends. */
			char *c = malloc(l + 1);
			if (!c) {
				ps->nomem = 1;
				return;
			}
			memcpy(c, val, l);
			c[l] = 0;
			*bnd = c;
			*bndlen = l;
			return;
		}
	}
}

/* Reads the header of part from *off; leaves *off at its body. Returns 1 when the header
   ended with a blank line (so a multipart's boundary may start), 0 otherwise. */
static int parse_header(struct parser *ps, int part, size_t *off, const char **bnd,
	size_t *bndlen)
{
	size_t pos = *off;
	size_t prev_nl = 0;
	int seen_ct = 0, blank = 0;

	ps->m->parts[part].hs = pos;
	ps->m->parts[part].hdr0 = ps->m->nhdrs;
	for (;;) {
		int closing;
		int b = boundary_at(ps, pos, &closing);
		if (b >= 0 && ps->b[b].part != part) {
			/* A boundary cuts the header short: the [CR]LF before it is the parent's. */
			ps->m->parts[part].he = pos - prev_nl;
			break;
		}
		if (pos >= ps->len) {
			ps->m->parts[part].he = pos;
			break;
		}
		size_t e = line_end(ps, pos);
		size_t content = e;
		if (content > pos && ps->p[content - 1] == '\n')
			content--;
		if (content > pos && ps->p[content - 1] == '\r' && content < e)
			content--;
		if (content == pos && e > pos && ps->p[e - 1] == '\n') {
			ps->m->parts[part].he = e;
			pos = e;
			blank = 1;
			break;
		}
		/* A field: its continuation lines start with a blank. */
		while (e < ps->len && is_lwsp(ps->p[e])) {
			e = line_end(ps, e);
			content = e;
			if (content > 0 && ps->p[content - 1] == '\n') {
				content--;
				if (content > 0 && ps->p[content - 1] == '\r')
					content--;
			}
		}
		struct mime_hdr *h = add_hdr(ps);
		if (!h)
			return 0;
		h->off = pos;
		h->end = e;
		h->vend = content;
		const char *colon = memchr(ps->p + pos, ':', content - pos);
		const char *nl = memchr(ps->p + pos, '\n', content - pos);
		if (colon && (!nl || colon < nl)) {
			size_t c = (size_t)(colon - ps->p);
			size_t nend = c;
			while (nend > pos && is_lwsp(ps->p[nend - 1]))
				nend--;
			h->namelen = nend - pos;
			h->colon = 1;
			/* Blanks after the colon are skipped, unless the first line is nothing but
			   blanks: then one is. */
			size_t v = c + 1;
			size_t first_end = nl ? (size_t)(nl - ps->p) : content;
			if (first_end > v && ps->p[first_end - 1] == '\r' && nl)
				first_end--;
			size_t w = v;
			while (w < first_end && is_lwsp(ps->p[w]))
				w++;
			if (w == first_end && first_end > v)
				w = v + 1;
			h->value = w;
		} else {
			h->namelen = (nl ? (size_t)(nl - ps->p) : content) - pos;
			h->colon = 0;
			h->value = content;
		}
		ps->m->parts[part].nhdr++;
		prev_nl = e - content;
		if (h->colon) {
			struct mime_part *p = &ps->m->parts[part];
			if (mime_hdr_is(ps->m, h, "MIME-Version"))
				p->flags |= MIME_F_MIME;
			else if (mime_hdr_is(ps->m, h, "Content-Type")) {
				p->flags |= MIME_F_MIME;
				if (!seen_ct) {
					seen_ct = 1;
					content_type(ps, part, h, bnd, bndlen);
				}
			}
		}
		pos = e;
	}
	struct mime_part *p = &ps->m->parts[part];
	if (!(p->flags & MIME_F_MIME))
		p->flags = 0;
	if (!seen_ct || !(p->flags & MIME_F_MIME)) {
		if (p->parent >= 0 && (ps->m->parts[p->parent].flags & MIME_F_DIGEST))
			p->flags |= MIME_F_RFC822;
		else
			p->flags |= MIME_F_TEXT;
	}
	*off = pos;
	return blank;
}

static int push_boundary(struct parser *ps, int part, const char *s, size_t len)
{
	if (ps->nb == ps->bcap) {
		size_t cap = ps->bcap ? ps->bcap * 2 : 8;
		struct boundary *n = realloc(ps->b, cap * sizeof *n);
		if (!n) {
			ps->nomem = 1;
			return 0;
		}
		ps->b = n;
		ps->bcap = cap;
	}
	ps->b[ps->nb].part = part;
	ps->b[ps->nb].s = s;
	ps->b[ps->nb].len = len;
	ps->nb++;
	return 1;
}

static void pop_boundaries(struct parser *ps, size_t keep)
{
	while (ps->nb > keep) {
		ps->nb--;
		free((char *)ps->b[ps->nb].s);
	}
}

/* Scans body text from off (at a line start) to the next boundary line or the end. Returns
   the boundary's index, or -1 at the end of the message; *end is where the body stops (the
   [CR]LF before the boundary line), *bline where the boundary line starts. */
static int find_boundary(struct parser *ps, size_t off, size_t *end, size_t *bline,
	int *closing)
{
	int b = boundary_at(ps, off, closing);
	if (b >= 0) {
		*end = *bline = off;
		return b;
	}
	size_t pos = off;
	while (pos < ps->len) {
		const char *lf = memchr(ps->p + pos, '\n', ps->len - pos);
		if (!lf)
			break;
		size_t l = (size_t)(lf - ps->p);
		pos = l + 1;
		if (pos >= ps->len || ps->p[pos] != '-')
			continue;
		b = boundary_at(ps, pos, closing);
		if (b >= 0) {
			*end = (l > off && ps->p[l - 1] == '\r') ? l - 1 : l;
			*bline = pos;
			return b;
		}
	}
	*end = *bline = ps->len;
	return -1;
}

static void parse(struct parser *ps)
{
	struct mime_msg *m = ps->m;
	size_t pos = 0;
	int cur = add_part(ps, -1);

	if (cur < 0)
		return;
	/* Each turn starts a part's header at pos. */
	for (;;) {
		const char *bnd = 0;
		size_t bndlen = 0;
		int blank = parse_header(ps, cur, &pos, &bnd, &bndlen);
		if (ps->nomem) {
			free((char *)bnd);
			return;
		}
		struct mime_part *p = &m->parts[cur];
		p->bs = pos;
		/* An empty body right before an enclosing boundary: Dovecot gives the blank
		   line's [CR]LF to the boundary, as it does the one before any boundary line. */
		int closing;
		int pushes = (p->flags & MIME_F_MULTIPART) && bnd && blank &&
			p->depth + 1 < MIME_DEPTH_MAX && m->nparts < MIME_PARTS_MAX;
		int fb = blank ? boundary_at(ps, pos, &closing) : -1;
		/* (a multipart's own boundary, not active yet, would win over a prefix of it) */
		if (fb >= 0 && ps->b[fb].part != cur &&
		    !(pushes && ps->b[fb].len <= bndlen && memcmp(bnd, ps->b[fb].s, ps->b[fb].len) == 0 &&
		    pos + 2 + bndlen <= ps->len && memcmp(m->msg + pos + 2, bnd, bndlen) == 0)) {
			size_t nl = pos - p->hs >= 2 && m->msg[pos - 2] == '\r' ? 2 : 1;
			p->he = pos - nl;
		}
		int nested_ok = p->depth + 1 < MIME_DEPTH_MAX && m->nparts < MIME_PARTS_MAX;
		if ((p->flags & MIME_F_MULTIPART) && bnd && blank && nested_ok) {
			if (!push_boundary(ps, cur, bnd, bndlen)) {
				free((char *)bnd);
				return;
			}
		} else {
			free((char *)bnd);
			if ((p->flags & MIME_F_MULTIPART) && !nested_ok)
				p->flags = (p->flags & ~MIME_F_MULTIPART) | MIME_F_OVERFLOW;
			if ((p->flags & MIME_F_RFC822) && nested_ok) {
				int c = add_part(ps, cur);
				if (c < 0)
					return;
				cur = c;
				continue;
			}
			/* Too deep to look inside: an opaque leaf, as in Dovecot. */
			if (p->flags & MIME_F_RFC822)
				p->flags = (p->flags & ~MIME_F_RFC822) | MIME_F_OVERFLOW;
		}
		/* The body of cur, then whatever follows it, up to the next part's header. */
		for (;;) {
			size_t end, bline;
			int closing = 0;
			int b = find_boundary(ps, pos, &end, &bline, &closing);
			if (b < 0) {
				/* The end of the message closes every open part. */
				for (int i = cur; i >= 0; i = m->parts[i].parent)
					m->parts[i].be = ps->len;
				return;
			}
			int owner = ps->b[b].part;
			/* Close the parts inside the boundary's multipart. */
			for (int i = cur; i != owner && i >= 0; i = m->parts[i].parent) {
				m->parts[i].be = end;
				if (m->parts[i].bs > end)
					m->parts[i].bs = end;
			}
			/* Ends after "--boundary[--]"; the rest of the line goes with it. */
			size_t after = bline + 2 + ps->b[b].len + (closing ? 2 : 0);
			pop_boundaries(ps, closing ? (size_t)b : (size_t)b + 1);
			cur = owner;
			const char *lf = memchr(ps->p + after, '\n', ps->len - after);
			if (!lf) {
				for (int i = cur; i >= 0; i = m->parts[i].parent)
					m->parts[i].be = ps->len;
				return;
			}
			pos = (size_t)(lf - ps->p) + 1;
			if (ps->nb > 0 && ps->b[ps->nb - 1].part == cur) {
				if (m->nparts >= MIME_PARTS_MAX)
					continue;	/* no more parts: the rest is the multipart's text */
				int c = add_part(ps, cur);
				if (c < 0)
					return;
				/* Parts of a multipart are MIME without a MIME-Version of their own. */
				m->parts[c].flags = MIME_F_MIME;
				cur = c;
				break;
			}
			/* The epilogue: text of cur up to an enclosing boundary. */
		}
	}
}

/* Line count and CRLF size of msg[a..b): a LF without a CR before it counts as two bytes. */
static void stats(const char *msg, size_t a, size_t b, unsigned long long *vsize,
	unsigned long *lines)
{
	size_t pos = a;

	*vsize += b - a;
	while (pos < b) {
		const char *lf = memchr(msg + pos, '\n', b - pos);
		if (!lf)
			break;
		size_t l = (size_t)(lf - msg);
		(*lines)++;
		if (l == 0 || msg[l - 1] != '\r')
			(*vsize)++;
		pos = l + 1;
	}
}

/* Sizes bottom-up: a part's body is its own bytes between its children plus the children's
   headers and bodies. Children have higher indexes than their parents. */
static void sizes(struct mime_msg *m)
{
	for (size_t i = m->nparts; i-- > 0;) {
		struct mime_part *p = &m->parts[i];
		p->hvsize = 0;
		p->hlines = 0;
		stats(m->msg, p->hs, p->he, &p->hvsize, &p->hlines);
		p->bvsize = 0;
		p->blines = 0;
		size_t cursor = p->bs;
		for (int c = p->child; c >= 0; c = m->parts[c].next) {
			const struct mime_part *q = &m->parts[c];
			if (q->hs > cursor)
				stats(m->msg, cursor, q->hs, &p->bvsize, &p->blines);
			p->bvsize += q->hvsize + q->bvsize;
			p->blines += q->hlines + q->blines;
			if (q->bs > q->he)
				stats(m->msg, q->he, q->bs, &p->bvsize, &p->blines);
			cursor = q->be > cursor ? q->be : cursor;
		}
		if (p->be > cursor)
			stats(m->msg, cursor, p->be, &p->bvsize, &p->blines);
	}
}

struct mime_msg *mime_parse(const char *msg, size_t len)
{
	struct mime_msg *m = calloc(1, sizeof *m);
	if (!m)
		return 0;
	m->msg = msg;
	m->len = len;
	struct parser ps = { .m = m, .p = msg, .len = len };
	ps.tmp = (struct sa)SA_ZERO;
	ps.params = (struct sa)SA_ZERO;
	parse(&ps);
	pop_boundaries(&ps, 0);
	free(ps.b);
	sa_free(&ps.tmp);
	sa_free(&ps.params);
	if (ps.nomem) {
		mime_free(m);
		errno = ENOMEM;
		return 0;
	}
	sizes(m);
	return m;
}

void mime_free(struct mime_msg *m)
{
	if (!m)
		return;
	free(m->parts);
	free(m->hdrs);
	free(m);
}

unsigned long long mime_vsize(const struct mime_msg *m)
{
	return m->parts[0].hvsize + m->parts[0].bvsize;
}

int mime_hdr_is(const struct mime_msg *m, const struct mime_hdr *h, const char *name)
{
	size_t n = strlen(name);
	return h->colon && h->namelen == n && strncasecmp(m->msg + h->off, name, n) == 0;
}

int mime_hdr_value(const struct mime_msg *m, const struct mime_hdr *h, struct sa *out)
{
	size_t pos = h->value;

	if (!sa_ready(out, h->vend - h->value + 1))
		return 0;
	while (pos < h->vend) {
		char c = m->msg[pos];
		if (c == 0)
			break;
		if (c == '\r' && pos + 1 < h->vend && m->msg[pos + 1] == '\n') {
			pos++;
			continue;
		}
		out->s[out->len++] = c;
		pos++;
	}
	out->s[out->len] = 0;
	return 1;
}

/* --- BODY[section] ------------------------------------------------------------------------ */

/* Appends msg[a..b) with every line ending CRLF and NULs as 0x80 (IMAP literals carry no
   NULs; Dovecot sends 0x80 in their place). */
static int put_crlf(struct sa *out, const char *msg, size_t a, size_t b)
{
	if (b <= a)
		return 1;
	if (!sa_ready(out, (b - a) * 2))
		return 0;
	for (size_t i = a; i < b; i++) {
		char c = msg[i];
		if (c == '\n' && (i == 0 || msg[i - 1] != '\r'))
			out->s[out->len++] = '\r';
		out->s[out->len++] = c ? c : (char)0x80;
	}
	out->s[out->len] = 0;
	return 1;
}

/* The part a section number names, as Dovecot finds it: in a multipart, the n-th child; in
   anything else, only 1, meaning the part itself; a message/rfc822 that the path goes on
   into stands for the message inside it. */
int mime_find_part(const struct mime_msg *m, const struct mime_section *sec)
{
	int part = 0;

	for (size_t i = 0; i < sec->nparts && part >= 0; i++) {
		unsigned num = sec->part[i];
		const struct mime_part *p = &m->parts[part];
		if (p->flags & MIME_F_MULTIPART) {
			part = p->child;
			for (; num > 1 && part >= 0; num--)
				part = m->parts[part].next;
			if (num == 0)
				part = -1;
		} else if (num != 1)
			part = -1;
		else if (i + 1 < sec->nparts && !(p->flags & MIME_F_RFC822))
			part = -1;
		if (part >= 0 && (m->parts[part].flags & MIME_F_RFC822) && i + 1 < sec->nparts)
			part = m->parts[part].child;
	}
	return part;
}

static int field_listed(const struct mime_msg *m, const struct mime_hdr *h,
	const struct mime_section *sec)
{
	for (size_t i = 0; i < sec->nfields; i++) {
		if (mime_hdr_is(m, h, sec->fields[i]))
			return 1;
	}
	return 0;
}

/* HEADER.FIELDS (NOT): the fields as they are, then the blank line when the header had one,
   except that the message's own HEADER.FIELDS always ends with one (Dovecot builds that
   from its cache). */
static int header_fields(const struct mime_msg *m, const struct mime_part *p,
	const struct mime_section *sec, int want, int always_blank, struct sa *out)
{
	for (size_t i = 0; i < p->nhdr; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		if (field_listed(m, h, sec) != want)
			continue;
		size_t end = h->end > p->he ? p->he : h->end;
		if (!put_crlf(out, m->msg, h->off, end))
			return 0;
		/* A field on the last line of a message has no line end of its own. */
		if (end == h->vend && !sa_catb(out, "\r\n", 2))
			return 0;
	}
	/* the blank line is whatever the header holds after its last field */
	size_t last = p->nhdr ? m->hdrs[p->hdr0 + p->nhdr - 1].end : p->hs;
	int blank = p->he > last;
	/* (a part's empty header still gets its blank line) */
	if (p != &m->parts[0] && p->he == p->hs)
		blank = 1;
	return !(always_blank || blank) || sa_catb(out, "\r\n", 2);
}

int mime_section_get(const struct mime_msg *m, const struct mime_section *sec, struct sa *out)
{
	const struct mime_part *p;

	if (sec->nparts == 0) {
		p = &m->parts[0];
		switch (sec->kind) {
		case MIME_SECTION_ALL:
			return put_crlf(out, m->msg, 0, m->len);
		case MIME_SECTION_TEXT:
			return put_crlf(out, m->msg, p->bs, p->be);
		case MIME_SECTION_MIME:
		case MIME_SECTION_HEADER:
			return put_crlf(out, m->msg, p->hs, p->he);
		case MIME_SECTION_HEADER_FIELDS:
			return header_fields(m, p, sec, 1, 1, out);
		case MIME_SECTION_HEADER_FIELDS_NOT:
			return header_fields(m, p, sec, 0, 0, out);
		}
		return 1;
	}
	int i = mime_find_part(m, sec);
	if (i < 0)
		return 1;
	p = &m->parts[i];
	switch (sec->kind) {
	case MIME_SECTION_ALL:
		return put_crlf(out, m->msg, p->bs, p->be);
	case MIME_SECTION_MIME:
		return put_crlf(out, m->msg, p->hs, p->he);
	default:
		break;
	}
	/* HEADER, TEXT and HEADER.FIELDS of a part are those of the message inside a
	   message/rfc822; other parts have none. */
	if (!(p->flags & MIME_F_RFC822) || p->child < 0)
		return 1;
	p = &m->parts[p->child];
	switch (sec->kind) {
	case MIME_SECTION_HEADER:
		return put_crlf(out, m->msg, p->hs, p->he);
	case MIME_SECTION_TEXT:
		return put_crlf(out, m->msg, p->bs, p->be);
	case MIME_SECTION_HEADER_FIELDS:
		return header_fields(m, p, sec, 1, 0, out);
	case MIME_SECTION_HEADER_FIELDS_NOT:
		return header_fields(m, p, sec, 0, 0, out);
	default:
		return 1;
	}
}

/* --- the RFC 5322 lexer ------------------------------------------------------------------- */

/* atext (RFC 5322 section 3.2.3) with 8-bit bytes, as Dovecot reads it; MIME tokens
   (RFC 2045 section 5.1) are atext without "/", "=", "?", and with ".". */
static int atext(unsigned char c)
{
	if (c >= 0x80)
		return 1;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != 0;
}

static int token_char(unsigned char c)
{
	return c == '.' || (atext(c) && c != '/' && c != '=' && c != '?');
}

static void lex_put(struct mime_lex *x, struct sa *s, const unsigned char *a, size_t n)
{
	if (s && !sa_catb(s, (const char *)a, n))
		x->nomem = 1;
}

static int skip_comment(struct mime_lex *x)
{
	int level = 1;
	const unsigned char *start = ++x->p;

	if (x->comment)
		x->comment->len = 0;
	for (; x->p < x->end; x->p++) {
		switch (*x->p) {
		case '(':
			level++;
			break;
		case ')':
			if (--level == 0) {
				lex_put(x, x->comment, start, (size_t)(x->p - start));
				x->p++;
				return x->p < x->end;
			}
			break;
		case '\n': {
			size_t n = (size_t)(x->p - start);
			if (n > 0 && start[n - 1] == '\r')
				n--;
			lex_put(x, x->comment, start, n);
			start = x->p + 1;
			break;
		}
		case '\\':
			x->p++;
			if (x->p >= x->end)
				return -1;
			if (*x->p == '\r' || *x->p == '\n') {
				x->p--;
				break;
			}
			lex_put(x, x->comment, start, (size_t)(x->p - 1 - start));
			start = x->p;
			break;
		}
	}
	return -1;
}

int mime_lex_skip(struct mime_lex *x)
{
	while (x->p < x->end) {
		if (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n') {
			x->p++;
			continue;
		}
		if (*x->p != '(')
			break;
		if (skip_comment(x) < 0)
			return -1;
	}
	return x->p < x->end;
}

static int run(struct mime_lex *x, struct sa *out, int (*ok)(unsigned char))
{
	const unsigned char *start = x->p;

	while (x->p < x->end && ok(*x->p))
		x->p++;
	lex_put(x, out, start, (size_t)(x->p - start));
	return x->p < x->end ? mime_lex_skip(x) : 0;
}

int mime_lex_token(struct mime_lex *x, struct sa *out)
{
	return run(x, out, token_char);
}

int mime_lex_atom(struct mime_lex *x, struct sa *out)
{
	if (x->p >= x->end || !atext(*x->p))
		return -1;
	return run(x, out, atext);
}

int mime_lex_dot_atom(struct mime_lex *x, struct sa *out)
{
	if (x->p >= x->end || !atext(*x->p))
		return -1;
	for (;;) {
		const unsigned char *start = x->p;
		while (x->p < x->end && atext(*x->p))
			x->p++;
		if (x->p == start)
			return -1;
		lex_put(x, out, start, (size_t)(x->p - start));
		if (x->p >= x->end)
			return 0;
		int r = mime_lex_skip(x);
		if (r <= 0)
			return r;
		if (*x->p != '.')
			return 1;
		x->p++;
		lex_put(x, out, (const unsigned char *)".", 1);
		if (mime_lex_skip(x) <= 0)
			return -1;
	}
}

/*
 * A quoted-string (close '"') or a domain literal (close ']') at x->p, unfolded: each line break
 * goes, with the CR before it. A quoted-string loses its quotes and the backslash of each
 * quoted pair; a domain literal keeps its brackets and backslashes, as Dovecot's ENVELOPE does.
 */
static int delimited(struct mime_lex *x, struct sa *out, unsigned char close)
{
	int literal = close == ']';
	const unsigned char *start = literal ? x->p++ : ++x->p;

	for (; x->p < x->end; x->p++) {
		if (*x->p == close) {
			lex_put(x, out, start, (size_t)(x->p - start) + (size_t)literal);
			x->p++;
			return mime_lex_skip(x);
		}
		switch (*x->p) {
		case '[':
			if (literal)
				return -1;
			break;
		case '\n': {
			size_t n = (size_t)(x->p - start);
			if (n > 0 && start[n - 1] == '\r')
				n--;
			lex_put(x, out, start, n);
			start = x->p + 1;
			break;
		}
		case '\\':
			x->p++;
			if (x->p >= x->end)
				return -1;
			if (*x->p == '\r' || *x->p == '\n') {
				x->p--;	/* a backslash before a line break is itself */
				break;
			}
			if (!literal) {
				lex_put(x, out, start, (size_t)(x->p - 1 - start));
				start = x->p;
			}
			break;
		}
	}
	return -1;
}

int mime_lex_quoted(struct mime_lex *x, struct sa *out)
{
	return delimited(x, out, '"');
}

static int atom_or_dot(unsigned char c)
{
	return c == '.' || atext(c);
}

int mime_lex_phrase(struct mime_lex *x, struct sa *out)
{
	if (x->p >= x->end)
		return 0;
	if (*x->p == '.')
		return -1;
	for (;;) {
		int r = *x->p == '"' ? mime_lex_quoted(x, out) : run(x, out, atom_or_dot);
		if (r <= 0)
			return r;
		if (!atext(*x->p) && *x->p != '"' && *x->p != '.')
			break;
		lex_put(x, out, (const unsigned char *)" ", 1);
	}
	return mime_lex_skip(x);
}

int mime_lex_domain(struct mime_lex *x, struct sa *out)
{
	x->p++;			/* the '@' */
	if (mime_lex_skip(x) <= 0)
		return -1;
	return *x->p == '[' ? delimited(x, out, ']') : mime_lex_dot_atom(x, out);
}

/* type "/" subtype, strictly: on an error out keeps only a lone type (Dovecot writes "text"
   with an empty subtype for "Content-Type: text") or nothing. */
int mime_lex_content_type(struct mime_lex *x, struct sa *out)
{
	size_t start = out->len;

	if (mime_lex_skip(x) <= 0)
		return -1;
	if (mime_lex_token(x, out) <= 0 || out->len == start)
		return -1;
	if (*x->p != '/') {
		sa_truncate(out, start);
		return -1;
	}
	x->p++;
	if (mime_lex_skip(x) <= 0) {
		sa_truncate(out, start);
		return -1;
	}
	lex_put(x, out, (const unsigned char *)"/", 1);
	size_t sub = out->len;
	int r = mime_lex_token(x, out);
	if (r < 0 || out->len == sub || (x->p < x->end && *x->p != ';')) {
		sa_truncate(out, start);
		return -1;
	}
	return r;
}

/* One ";" name "=" value: 1 with the name and value, 0 at the end, -1 on bad syntax. */
static int param(struct mime_lex *x, struct sa *name, struct sa *value)
{
	name->len = 0;
	value->len = 0;
	if (x->p >= x->end)
		return 0;
	if (*x->p != ';')
		return -1;
	x->p++;
	if (mime_lex_skip(x) <= 0)
		return -1;
	if (mime_lex_token(x, name) <= 0)
		return -1;
	if (*x->p != '=')
		return -1;
	x->p++;
	int r = mime_lex_skip(x);
	if (r <= 0) {
		/* an empty value at the end */
	} else if (*x->p == '"')
		r = mime_lex_quoted(x, value);
	else if (*x->p == '=') {
		const unsigned char *start = x->p;
		while (x->p < x->end && *x->p != ';' && *x->p != ' ' && *x->p != '\t' &&
		    *x->p != '\r' && *x->p != '\n')
			x->p++;
		lex_put(x, value, start, (size_t)(x->p - start));
	} else
		r = mime_lex_token(x, value);
	if (!sa_catb(name, "", 0) || !sa_catb(value, "", 0))
		x->nomem = 1;
	return r < 0 ? -1 : 1;
}

struct cont {
	size_t name, value;	/* offsets into the scratch string */
	unsigned idx;
	int extended;
};

static int put_pair(struct sa *out, const char *name, size_t nlen, const char *value)
{
	return sa_catb(out, name, nlen) && sa_catc(out, 0) && sa_cats(out, value) &&
		sa_catc(out, 0);
}

int mime_params(struct mime_lex *x, struct sa *out, size_t *count)
{
	struct sa name = SA_ZERO, value = SA_ZERO, scratch = SA_ZERO, joined = SA_ZERO;
	struct cont *c = 0;
	size_t nc = 0, cap = 0;
	unsigned idx = 0;
	int r, ok = 1;

	*count = 0;
	while ((r = param(x, &name, &value)) != 0 && !x->nomem) {
		if (r < 0) {
			/* Dovecot carries on one byte further. */
			if (x->p >= x->end)
				break;
			x->p++;
			continue;
		}
		/* name*N, name*N* and name* are RFC 2231 pieces, joined below. */
		char *star = strchr(name.s, '*');
		int extended = 0;
		if (star) {
			char *q = star;
			if (q[1] != 0) {
				q++;
				idx = 0;
				for (; *q >= '0' && *q <= '9'; q++)
					idx = idx * 10 + (unsigned)(*q - '0');
			}
			if (*q == '*') {
				extended = 1;
				q++;
			}
			if (*q != 0)
				star = 0;
		}
		if (!star) {
			if (!put_pair(out, name.s, name.len, value.s)) {
				ok = 0;
				break;
			}
			(*count)++;
			continue;
		}
		if (nc == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct cont *n = realloc(c, ncap * sizeof *n);
			if (!n) {
				ok = 0;
				break;
			}
			c = n;
			cap = ncap;
		}
		c[nc].name = scratch.len;
		c[nc].idx = idx;
		c[nc].extended = extended;
		if (!sa_catb(&scratch, name.s, (size_t)(star - name.s)) || !sa_catc(&scratch, 0)) {
			ok = 0;
			break;
		}
		c[nc].value = scratch.len;
		if (!sa_catb(&scratch, value.s, value.len) || !sa_catc(&scratch, 0)) {
			ok = 0;
			break;
		}
		nc++;
	}
	if (x->nomem)
		ok = 0;
	/* Sort the pieces by name and number (insertion sort: there are few). */
	for (size_t i = 1; ok && i < nc; i++) {
		struct cont t = c[i];
		size_t j = i;
		while (j > 0) {
			int d = strcmp(scratch.s + c[j - 1].name, scratch.s + t.name);
			if (d < 0 || (d == 0 && c[j - 1].idx <= t.idx))
				break;
			c[j] = c[j - 1];
			j--;
		}
		c[j] = t;
	}
	for (size_t i = 0, next; ok && i < nc; i = next) {
		int inorder = 1, ext = 0;
		unsigned want = 0;
		for (next = i; next < nc; next++) {
			if (strcasecmp(scratch.s + c[i].name, scratch.s + c[next].name) != 0)
				break;
			if (c[next].idx != want)
				inorder = 0;
			if (c[next].extended)
				ext = 1;
			want++;
		}
		if (!inorder) {
			/* Out of order or missing pieces stay apart, numbered. */
			for (size_t j = i; ok && j < next; j++) {
				joined.len = 0;
				ok = sa_catf(&joined, c[j].extended ? "%s*%u*" : "%s*%u",
					scratch.s + c[j].name, c[j].idx) &&
					put_pair(out, joined.s, joined.len, scratch.s + c[j].value);
				(*count)++;
			}
			continue;
		}
		joined.len = 0;
		if (!sa_catb(&joined, "", 0))
			ok = 0;
		if (ok && !c[i].extended && ext)
			ok = sa_cats(&joined, "''");
		for (size_t j = i; ok && j < next; j++) {
			const char *v = scratch.s + c[j].value;
			if (!c[j].extended && ext) {
				for (; *v && ok; v++)
					ok = *v == '%' ? sa_cats(&joined, "%25") : sa_catc(&joined, *v);
			} else
				ok = sa_cats(&joined, v);
		}
		if (!ok)
			break;
		const char *n = scratch.s + c[i].name;
		ok = sa_cats(out, n) && (!ext || sa_catc(out, '*')) && sa_catc(out, 0) &&
			sa_catb(out, joined.s, joined.len) && sa_catc(out, 0);
		(*count)++;
	}
	free(c);
	sa_free(&name);
	sa_free(&value);
	sa_free(&scratch);
	sa_free(&joined);
	if (!ok)
		x->nomem = 1;
	return ok;
}
