/* postroom: ISC license, see LICENSE. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime-internal.h"

/*
 * ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2) written byte for byte as Dovecot
 * 2.3 writes them, because clients cache them and a mailbox moves between the two servers:
 *  - strings are quoted unless they hold CR, LF, 8-bit bytes or more than four '"' or '\\';
 *    then they are literals;
 *  - names and the subject are cleaned "for humans": blanks collapsed, line breaks dropped;
 *    anything cleaned, or holding '"', '\\' or 8-bit bytes, goes as a literal;
 *  - encoded-words stay encoded; RFC 2231 parameters are joined but not decoded;
 *  - Date, Subject, Message-ID and In-Reply-To take the last field of that name, the address
 *    fields add up over every field, the Content-* fields take the first.
 */

struct nstr {
	size_t off;		/* into the arena */
	int set;
};

struct addr {
	struct nstr name, route, mailbox, domain;
};

struct addrs {
	struct addr *a;
	size_t n, cap;
};

struct actx {
	struct mime_lex x;
	struct sa *arena;
	struct sa tmp;		/* the address parser's working string */
	struct addr cur;
	struct addrs *out;
	int nomem;
};

static struct nstr keep(struct actx *c, const char *s, size_t n)
{
	struct nstr r = { c->arena->len, 1 };
	if (!sa_catb(c->arena, s, n) || !sa_catc(c->arena, 0))
		c->nomem = 1;
	return r;
}

static void add_addr(struct actx *c)
{
	struct addrs *o = c->out;

	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4;
		struct addr *n = realloc(o->a, cap * sizeof *n);
		if (!n) {
			c->nomem = 1;
			return;
		}
		o->a = n;
		o->cap = cap;
	}
	o->a[o->n++] = c->cur;
	memset(&c->cur, 0, sizeof c->cur);
}

static int is_empty(const struct actx *c, struct nstr s)
{
	return !s.set || c->arena->s[s.off] == 0;
}

static void add_fixed(struct actx *c)
{
	if (!c->cur.mailbox.set)
		c->cur.mailbox = keep(c, "MISSING_MAILBOX", 15);
	if (is_empty(c, c->cur.domain))
		c->cur.domain = keep(c, "MISSING_DOMAIN", 14);
	add_addr(c);
}

static int local_part(struct actx *c)
{
	int r;

	c->tmp.len = 0;
	if (*c->x.p == '"')
		r = mime_lex_quoted(&c->x, &c->tmp);
	else
		r = mime_lex_dot_atom(&c->x, &c->tmp);
	if (r < 0)
		return -1;
	c->cur.mailbox = keep(c, c->tmp.s ? c->tmp.s : "", c->tmp.len);
	return r;
}

static int domain(struct actx *c)
{
	c->tmp.len = 0;
	int r = mime_lex_domain(&c->x, &c->tmp);
	if (r < 0)
		return -1;
	c->cur.domain = keep(c, c->tmp.s ? c->tmp.s : "", c->tmp.len);
	return r;
}

static int domain_list(struct actx *c)
{
	c->tmp.len = 0;
	for (;;) {
		if (c->x.p >= c->x.end)
			return 0;
		if (*c->x.p != '@')
			break;
		if (c->tmp.len > 0 && !sa_catc(&c->tmp, ','))
			c->nomem = 1;
		if (!sa_catc(&c->tmp, '@'))
			c->nomem = 1;
		int r = mime_lex_domain(&c->x, &c->tmp);
		if (r <= 0)
			return r;
		while (mime_lex_skip(&c->x) > 0 && *c->x.p == ',')
			c->x.p++;
	}
	c->cur.route = keep(c, c->tmp.s ? c->tmp.s : "", c->tmp.len);
	return 1;
}

static int angle_addr(struct actx *c)
{
	c->x.p++;		/* the '<' */
	if (mime_lex_skip(&c->x) <= 0)
		return -1;
	if (*c->x.p == '@') {
		if (domain_list(c) > 0 && *c->x.p == ':')
			c->x.p++;
		else {
			c->cur.route = keep(c, "INVALID_ROUTE", 13);
			if (c->x.p >= c->x.end)
				return -1;
		}
		if (mime_lex_skip(&c->x) <= 0)
			return -1;
	}
	if (*c->x.p != '>') {
		if (local_part(c) <= 0)
			return -1;
		if (*c->x.p == '@' && domain(c) <= 0)
			return -1;
	}
	if (*c->x.p != '>')
		return -1;
	c->x.p++;
	return mime_lex_skip(&c->x);
}

static int name_addr(struct actx *c)
{
	c->tmp.len = 0;
	if (mime_lex_phrase(&c->x, &c->tmp) <= 0 || *c->x.p != '<')
		return -1;
	if (c->tmp.len > 0)
		c->cur.name = keep(c, c->tmp.s, c->tmp.len);
	if (angle_addr(c) < 0)
		c->cur.domain = keep(c, "SYNTAX_ERROR", 12);
	return c->x.p < c->x.end;
}

static int addr_spec(struct actx *c, int *invalid)
{
	int r, r2 = -2;
	int quoted = *c->x.p == '"';

	c->x.comment->len = 0;
	r = local_part(c);
	if (r <= 0)
		*invalid = 1;
	if (r != 0 && c->x.p < c->x.end && *c->x.p == '@') {
		r2 = domain(c);
		if (r2 <= 0)
			r = r2;
	}
	if (c->x.comment->len > 0)
		c->cur.name = keep(c, c->x.comment->s, c->x.comment->len);
	else if (r2 == -2) {
		/* A lone word is a mailbox; words that follow make it a display name. */
		if (!sa_catc(&c->tmp, ' '))
			c->nomem = 1;
		size_t before = c->tmp.len;
		(void)mime_lex_phrase(&c->x, &c->tmp);
		if (c->tmp.len != before) {
			c->cur.mailbox.set = 0;
			c->cur.name = keep(c, c->tmp.s, c->tmp.len);
		} else if (!quoted)
			c->cur.domain = keep(c, "", 0);
		*invalid = 1;
		r = -1;
	}
	return r;
}

static int mailbox(struct actx *c)
{
	const unsigned char *start = c->x.p;
	int r, invalid = 0;

	if ((r = name_addr(c)) < 0) {
		c->x.p = start;
		r = addr_spec(c, &invalid);
		if (invalid && !c->cur.name.set && c->cur.mailbox.set && !c->cur.domain.set) {
			c->cur.name = c->cur.mailbox;
			c->cur.mailbox.set = 0;
		}
	}
	add_fixed(c);
	return r;
}

static int group(struct actx *c)
{
	int r;

	c->tmp.len = 0;
	if (mime_lex_phrase(&c->x, &c->tmp) <= 0 || *c->x.p != ':')
		return -1;
	c->x.p++;
	r = mime_lex_skip(&c->x);
	c->cur.mailbox = keep(c, c->tmp.s ? c->tmp.s : "", c->tmp.len);
	add_addr(c);
	if (r > 0 && *c->x.p != ';') {
		for (;;) {
			(void)mailbox(c);
			if (c->x.p >= c->x.end || *c->x.p != ',')
				break;
			c->x.p++;
			if (mime_lex_skip(&c->x) <= 0) {
				r = -1;
				break;
			}
		}
	}
	if (r >= 0) {
		if (c->x.p >= c->x.end || *c->x.p != ';')
			r = -1;
		else {
			c->x.p++;
			r = mime_lex_skip(&c->x);
		}
	}
	add_addr(c);		/* the end of the group: all NIL */
	return r == 0 ? 0 : 1;
}

/* Adds the addresses of one field value to out (RFC 5322 section 3.4, with Dovecot's repairs:
   MISSING_MAILBOX, MISSING_DOMAIN, SYNTAX_ERROR, INVALID_ROUTE). */
static int parse_addresses(const char *v, size_t len, struct sa *arena, struct addrs *out)
{
	struct sa comment = SA_ZERO;
	struct actx c;

	memset(&c, 0, sizeof c);
	c.x.p = (const unsigned char *)v;
	c.x.end = c.x.p + len;
	c.x.comment = &comment;
	c.arena = arena;
	c.out = out;
	c.tmp = (struct sa)SA_ZERO;
	if (mime_lex_skip(&c.x) > 0) {
		for (;;) {
			const unsigned char *start = c.x.p;
			int r = group(&c);
			if (r < 0) {
				c.x.p = start;
				r = mailbox(&c);
			}
			if (r == 0 || c.nomem)
				break;
			if (c.x.p >= c.x.end || *c.x.p != ',')
				break;
			c.x.p++;
			if ((r = mime_lex_skip(&c.x)) <= 0) {
				if (r < 0)
					add_fixed(&c);
				break;
			}
		}
	}
	sa_free(&comment);
	sa_free(&c.tmp);
	return !c.nomem && !c.x.nomem;
}

/* For SORT (RFC 5256, RFC 5957): the first address of the first field named field. */
int mime_first_address(const struct mime_msg *m, const char *field, struct sa *mailbox,
		       struct sa *name, struct sa *domain)
{
	const struct mime_part *p = &m->parts[0];
	struct sa arena = SA_ZERO, val = SA_ZERO;
	struct addrs a = { 0, 0, 0 };
	int ok = sa_catb(&arena, "", 0);

	for (size_t i = 0; i < p->nhdr && ok; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		if (!mime_hdr_is(m, h, field))
			continue;
		ok = mime_hdr_value(m, h, &val) && parse_addresses(val.s, val.len, &arena, &a);
		break;
	}
	if (ok && a.n) {
		const struct addr *x = &a.a[0];
		if (x->mailbox.set)
			ok = sa_cats(mailbox, arena.s + x->mailbox.off);
		if (ok && x->name.set)
			ok = sa_cats(name, arena.s + x->name.off);
		if (ok && x->domain.set)
			ok = sa_cats(domain, arena.s + x->domain.off);
	}
	free(a.a);
	sa_free(&arena);
	sa_free(&val);
	return ok;
}

/* --- IMAP strings ------------------------------------------------------------------------- */

static int put_literal(struct sa *out, const char *s, size_t n)
{
	return sa_catf(out, "{%zu}\r\n", n) && sa_catb(out, s, n);
}

/* A string or NIL: quoted when that is short and clean, else a literal. */
static int put_nstring(struct sa *out, const char *s)
{
	int escapes = 0;

	if (!s)
		return sa_cats(out, "NIL");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			if (++escapes > 4)
				return put_literal(out, s, strlen(s));
		} else if (*p == '\r' || *p == '\n' || *p >= 0x80)
			return put_literal(out, s, strlen(s));
	}
	if (!sa_catc(out, '"'))
		return 0;
	for (const char *p = s; *p; p++) {
		if ((*p == '"' || *p == '\\') && !sa_catc(out, '\\'))
			return 0;
		if (!sa_catc(out, *p))
			return 0;
	}
	return sa_catc(out, '"');
}

/* The same with line breaks taken out (a space put in where the next line has no blank). */
static int put_nstring_nolf(struct sa *out, const char *s)
{
	if (!s || !strpbrk(s, "\r\n"))
		return put_nstring(out, s);
	struct sa t = SA_ZERO;
	int ok = sa_catb(&t, "", 0);
	for (const char *p = s; *p && ok; p++) {
		if (*p != '\r' && *p != '\n')
			ok = sa_catc(&t, *p);
		else if (p[1] != ' ' && p[1] != '\t' && p[1] != '\r' && p[1] != '\n' && p[1])
			ok = sa_catc(&t, ' ');
	}
	ok = ok && put_nstring(out, t.s);
	sa_free(&t);
	return ok;
}

/* A display name or subject: blanks collapsed to one space, line breaks removed, no blanks
   at either end. Untouched clean text is quoted; anything else is a literal. */
static int put_human(struct sa *out, const char *s)
{
	size_t n = strlen(s);
	int modify = 0, last_lwsp = 1, prefix = 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\t' || c == ' ') {
			if (c == '\t' || last_lwsp)
				modify = 1;
			last_lwsp = 1;
		} else if (c == '\r' || c == '\n')
			modify = 1;
		else {
			if (c == '"' || c == '\\' || c >= 0x80)
				modify = 1;
			last_lwsp = 0;
		}
		if (!last_lwsp)
			prefix = 0;
	}
	if (last_lwsp && n > 0 && !prefix)
		modify = 1;
	if (!modify)
		return sa_catc(out, '"') && sa_catb(out, s, n) && sa_catc(out, '"');
	struct sa t = SA_ZERO;
	int ok = sa_catb(&t, "", 0);
	last_lwsp = 1;
	for (size_t i = 0; i < n && ok; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t') {
			if (!last_lwsp)
				ok = sa_catc(&t, ' ');
			last_lwsp = 1;
		} else if (c != '\r' && c != '\n') {
			ok = sa_catc(&t, c);
			last_lwsp = 0;
		}
	}
	if (ok && t.len > 0 && t.s[t.len - 1] == ' ')
		t.len--;
	if (ok)
		ok = t.len == 0 ? sa_cats(out, "\"\"") : put_literal(out, t.s, t.len);
	sa_free(&t);
	return ok;
}

/* --- ENVELOPE ----------------------------------------------------------------------------- */

enum { E_DATE, E_SUBJECT, E_FROM, E_SENDER, E_REPLY_TO, E_TO, E_CC, E_BCC, E_IN_REPLY_TO,
	E_MESSAGE_ID, E_N };
static const char *const envelope_fields[E_N] = { "Date", "Subject", "From", "Sender",
	"Reply-To", "To", "Cc", "Bcc", "In-Reply-To", "Message-ID" };

static int put_addrs(struct sa *out, const struct addrs *a, const struct sa *arena)
{
	if (a->n == 0)
		return sa_cats(out, "NIL");
	if (!sa_catc(out, '('))
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct addr *x = &a->a[i];
		const char *name = x->name.set ? arena->s + x->name.off : 0;
		if (!sa_catc(out, '(') ||
		    !(name ? put_human(out, name) : sa_cats(out, "NIL")) || !sa_catc(out, ' ') ||
		    !put_nstring(out, x->route.set ? arena->s + x->route.off : 0) ||
		    !sa_catc(out, ' ') ||
		    !put_nstring(out, x->mailbox.set ? arena->s + x->mailbox.off : 0) ||
		    !sa_catc(out, ' ') ||
		    !put_nstring(out, x->domain.set ? arena->s + x->domain.off : 0) ||
		    !sa_catc(out, ')'))
			return 0;
	}
	return sa_catc(out, ')');
}

static int envelope_of(const struct mime_msg *m, const struct mime_part *p, struct sa *out)
{
	struct sa arena = SA_ZERO, val = SA_ZERO;
	struct addrs a[E_N];
	size_t text[E_N];
	int has[E_N] = { 0 };
	int ok = sa_catb(&arena, "", 0);

	memset(a, 0, sizeof a);
	for (size_t i = 0; i < p->nhdr && ok; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		for (int f = 0; f < E_N; f++) {
			if (!mime_hdr_is(m, h, envelope_fields[f]))
				continue;
			val.len = 0;
			ok = mime_hdr_value(m, h, &val);
			if (!ok)
				break;
			if (f >= E_FROM && f <= E_BCC) {
				ok = parse_addresses(val.s, val.len, &arena, &a[f]);
			} else {
				text[f] = arena.len;
				has[f] = 1;
				ok = sa_catb(&arena, val.s, val.len) && sa_catc(&arena, 0);
			}
			break;
		}
	}
	ok = ok && put_nstring_nolf(out, has[E_DATE] ? arena.s + text[E_DATE] : 0) &&
		sa_catc(out, ' ') &&
		(has[E_SUBJECT] ? put_human(out, arena.s + text[E_SUBJECT]) : sa_cats(out, "NIL"));
	for (int f = E_FROM; f <= E_BCC && ok; f++) {
		const struct addrs *x = &a[f];
		if ((f == E_SENDER || f == E_REPLY_TO) && x->n == 0)
			x = &a[E_FROM];
		ok = sa_catc(out, ' ') && put_addrs(out, x, &arena);
	}
	ok = ok && sa_catc(out, ' ') &&
		put_nstring_nolf(out, has[E_IN_REPLY_TO] ? arena.s + text[E_IN_REPLY_TO] : 0) &&
		sa_catc(out, ' ') &&
		put_nstring_nolf(out, has[E_MESSAGE_ID] ? arena.s + text[E_MESSAGE_ID] : 0);
	for (int f = 0; f < E_N; f++)
		free(a[f].a);
	sa_free(&arena);
	sa_free(&val);
	return ok;
}

int mime_envelope(const struct mime_msg *m, struct sa *out)
{
	return envelope_of(m, &m->parts[0], out);
}

/* --- BODY and BODYSTRUCTURE --------------------------------------------------------------- */

/* A part's Content-* fields, parsed; strings in the arena, -1 offsets for absent ones. */
struct cdata {
	struct sa arena;
	long type, subtype, cte, id, desc, md5, location, disp;
	long params, dparams, lang;	/* NUL-separated lists */
	size_t nparams, ndparams, nlang;
	int has_dparams;
};

static long put_arena(struct cdata *d, const char *s, size_t n, int *ok)
{
	long off = (long)d->arena.len;
	if (!sa_catb(&d->arena, s, n) || !sa_catc(&d->arena, 0))
		*ok = 0;
	return off;
}

static int content_fields(const struct mime_msg *m, const struct mime_part *p, struct cdata *d)
{
	struct sa val = SA_ZERO, tok = SA_ZERO;
	int ok = 1;

	d->type = d->subtype = d->cte = d->id = d->desc = d->md5 = d->location = d->disp = -1;
	d->params = d->dparams = d->lang = -1;
	d->nparams = d->ndparams = d->nlang = 0;
	d->has_dparams = 0;
	if (!(p->flags & MIME_F_MIME))
		return 1;
	for (size_t i = 0; i < p->nhdr && ok; i++) {
		const struct mime_hdr *h = &m->hdrs[p->hdr0 + i];
		if (!h->colon || h->namelen < 8 || strncasecmp(m->msg + h->off, "Content-", 8) != 0)
			continue;
		val.len = 0;
		if (!mime_hdr_value(m, h, &val))
			return 0;
		struct mime_lex x = MIME_LEX_ZERO;
		x.p = (const unsigned char *)val.s;
		x.end = x.p + val.len;
		tok.len = 0;
		if (mime_hdr_is(m, h, "Content-Type") && d->type < 0) {
			mime_lex_skip(&x);
			int r = mime_lex_content_type(&x, &tok);
			char *slash = tok.s ? memchr(tok.s, '/', tok.len) : 0;
			size_t tl = slash ? (size_t)(slash - tok.s) : tok.len;
			d->type = put_arena(d, tok.s ? tok.s : "", tl, &ok);
			d->subtype = slash ? put_arena(d, slash + 1, tok.len - tl - 1, &ok) :
				put_arena(d, "", 0, &ok);
			if (r >= 0) {
				struct sa ps = SA_ZERO;
				ok = ok && mime_params(&x, &ps, &d->nparams);
				d->params = put_arena(d, ps.s ? ps.s : "", ps.len, &ok);
				sa_free(&ps);
			}
		} else if (mime_hdr_is(m, h, "Content-Transfer-Encoding") && d->cte < 0) {
			mime_lex_skip(&x);
			if (mime_lex_token(&x, &tok) >= 0 && mime_lex_skip(&x) == 0 && tok.len > 0)
				d->cte = put_arena(d, tok.s, tok.len, &ok);
		} else if (mime_hdr_is(m, h, "Content-ID") && d->id < 0)
			d->id = put_arena(d, val.s, val.len, &ok);
		else if (mime_hdr_is(m, h, "Content-Description") && d->desc < 0)
			d->desc = put_arena(d, val.s, val.len, &ok);
		else if (mime_hdr_is(m, h, "Content-MD5") && d->md5 < 0)
			d->md5 = put_arena(d, val.s, val.len, &ok);
		else if (mime_hdr_is(m, h, "Content-Location") && d->location < 0)
			d->location = put_arena(d, val.s, val.len, &ok);
		else if (mime_hdr_is(m, h, "Content-Language") && d->lang < 0) {
			struct sa langs = SA_ZERO;
			size_t n = 0;
			mime_lex_skip(&x);
			while (ok && mime_lex_atom(&x, &tok) >= 0) {
				ok = sa_catb(&langs, tok.s, tok.len) && sa_catc(&langs, 0);
				n++;
				tok.len = 0;
				if (x.p >= x.end || *x.p != ',')
					break;
				x.p++;
				mime_lex_skip(&x);
			}
			if (n > 0) {
				d->lang = put_arena(d, langs.s, langs.len, &ok);
				d->nlang = n;
			}
			sa_free(&langs);
		} else if (mime_hdr_is(m, h, "Content-Disposition") && !d->has_dparams) {
			/* A later field counts while the earlier ones had no parameters. */
			mime_lex_skip(&x);
			if (mime_lex_token(&x, &tok) < 0)
				continue;
			d->disp = put_arena(d, tok.s ? tok.s : "", tok.len, &ok);
			struct sa ps = SA_ZERO;
			size_t n = 0;
			ok = ok && mime_params(&x, &ps, &n);
			d->dparams = put_arena(d, ps.s ? ps.s : "", ps.len, &ok);
			d->ndparams = n;
			d->has_dparams = n > 0;
			sa_free(&ps);
		}
		if (x.nomem)
			ok = 0;
	}
	sa_free(&val);
	sa_free(&tok);
	return ok;
}

static const char *at(const struct cdata *d, long off)
{
	return off < 0 ? 0 : d->arena.s + off;
}

static int put_params(struct sa *out, const struct cdata *d, long list, size_t n,
	int default_charset)
{
	int charset = 0;

	if (!default_charset && n == 0)
		return sa_cats(out, "NIL");
	if (!sa_catc(out, '('))
		return 0;
	const char *s = at(d, list);
	for (size_t i = 0; i < n; i++) {
		const char *name = s;
		const char *value = name + strlen(name) + 1;
		s = value + strlen(value) + 1;
		if (strcasecmp(name, "charset") == 0)
			charset = 1;
		if ((i > 0 && !sa_catc(out, ' ')) || !put_nstring(out, name) ||
		    !sa_catc(out, ' ') || !put_nstring(out, value))
			return 0;
	}
	if (default_charset && !charset &&
	    ((n > 0 && !sa_catc(out, ' ')) || !sa_cats(out, "\"charset\" \"us-ascii\"")))
		return 0;
	return sa_catc(out, ')');
}

static int put_common(struct sa *out, const struct cdata *d)
{
	if (!sa_catc(out, ' '))
		return 0;
	if (d->disp < 0) {
		if (!sa_cats(out, "NIL"))
			return 0;
	} else if (!sa_catc(out, '(') || !put_nstring(out, at(d, d->disp)) ||
	    !sa_catc(out, ' ') || !put_params(out, d, d->dparams, d->ndparams, 0) ||
	    !sa_catc(out, ')'))
		return 0;
	if (!sa_catc(out, ' '))
		return 0;
	if (d->lang < 0) {
		if (!sa_cats(out, "NIL"))
			return 0;
	} else {
		const char *s = at(d, d->lang);
		if (!sa_catc(out, '('))
			return 0;
		for (size_t i = 0; i < d->nlang; i++) {
			if ((i > 0 && !sa_catc(out, ' ')) || !put_nstring(out, s))
				return 0;
			s += strlen(s) + 1;
		}
		if (!sa_catc(out, ')'))
			return 0;
	}
	return sa_catc(out, ' ') && put_nstring_nolf(out, at(d, d->location));
}

static int put_part(const struct mime_msg *m, int part, int extended, struct sa *out);

static int put_children(const struct mime_msg *m, int first, int extended, struct sa *out)
{
	for (int c = first; c >= 0; c = m->parts[c].next) {
		if (!sa_catc(out, '(') || !put_part(m, c, extended, out) || !sa_catc(out, ')'))
			return 0;
	}
	return 1;
}

static int put_part(const struct mime_msg *m, int part, int extended, struct sa *out)
{
	const struct mime_part *p = &m->parts[part];
	struct cdata d;
	int ok, text;

	d.arena = (struct sa)SA_ZERO;
	ok = sa_catb(&d.arena, "", 0) && content_fields(m, p, &d);
	if (!ok)
		goto done;
	if (p->flags & MIME_F_MULTIPART) {
		if (p->child >= 0)
			ok = put_children(m, p->child, extended, out);
		else
			/* No parts: Dovecot shows one empty text/plain. */
			ok = sa_cats(out, extended ?
				"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 "
				"NIL NIL NIL NIL)" :
				"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
		ok = ok && sa_catc(out, ' ') && put_nstring(out, at(&d, d.subtype) ? at(&d, d.subtype) : "");
		if (ok && extended)
			ok = sa_catc(out, ' ') && put_params(out, &d, d.params, d.nparams, 0) &&
				put_common(out, &d);
		goto done;
	}
	if (p->flags & MIME_F_RFC822) {
		text = 0;
		ok = sa_cats(out, "\"message\" \"rfc822\"");
	} else if (p->flags & MIME_F_OVERFLOW) {
		/* Dovecot shows a multipart nested too deep as opaque data. */
		text = 0;
		ok = sa_cats(out, "\"application\" \"octet-stream\"");
	} else if (d.type < 0) {
		text = 1;
		ok = sa_cats(out, "\"text\" \"plain\"");
	} else {
		text = strcasecmp(at(&d, d.type), "text") == 0;
		ok = put_nstring(out, at(&d, d.type)) && sa_catc(out, ' ') &&
			put_nstring(out, at(&d, d.subtype));
	}
	ok = ok && sa_catc(out, ' ') && put_params(out, &d, d.params, d.nparams, text) &&
		sa_catc(out, ' ') && put_nstring_nolf(out, at(&d, d.id)) && sa_catc(out, ' ') &&
		put_nstring_nolf(out, at(&d, d.desc)) && sa_catc(out, ' ') &&
		(d.cte >= 0 ? put_nstring(out, at(&d, d.cte)) : sa_cats(out, "\"7bit\"")) &&
		sa_catf(out, " %llu", p->bvsize);
	if (!ok)
		goto done;
	if (text)
		ok = sa_catf(out, " %lu", p->blines);
	else if ((p->flags & MIME_F_RFC822) && p->child >= 0)
		ok = sa_cats(out, " (") && envelope_of(m, &m->parts[p->child], out) &&
			sa_cats(out, ") ") && put_children(m, p->child, extended, out) &&
			sa_catf(out, " %lu", p->blines);
	if (ok && extended)
		ok = sa_catc(out, ' ') && put_nstring_nolf(out, at(&d, d.md5)) &&
			put_common(out, &d);
done:
	sa_free(&d.arena);
	return ok;
}

int mime_bodystructure(const struct mime_msg *m, int extended, struct sa *out)
{
	return put_part(m, 0, extended, out);
}
