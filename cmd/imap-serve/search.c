/* postroom: ISC license, see LICENSE. */
/*
 * SEARCH and UID SEARCH (RFC 3501 section 6.4.4): the keys are parsed into a tree, then every
 * message of the view is tried against it. A message's bytes are read, and its headers or text
 * decoded, only when a key needs them, once per message. With RETURN (RFC 4731, ESEARCH) the
 * answer is an ESEARCH of the options asked for; RETURN (SAVE) keeps the result for "$"
 * (RFC 5182, SEARCHRES); OLDER and YOUNGER are WITHIN's keys (RFC 5032). SORT and THREAD
 * take their search keys from here (search_keys).
 */
#define _GNU_SOURCE	/* memmem */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap-serve.h"
#include "log.h"
#include "mime.h"

enum key_type {
	KEY_ALL, KEY_FLAG, KEY_NOFLAG, KEY_KEYWORD, KEY_NOKEYWORD, KEY_NEW, KEY_OLD, KEY_SET,
	KEY_LARGER, KEY_SMALLER, KEY_BEFORE, KEY_ON, KEY_SINCE, KEY_SENTBEFORE, KEY_SENTON,
	KEY_SENTSINCE, KEY_HEADER, KEY_BODY, KEY_TEXT, KEY_NOT, KEY_OR, KEY_AND, KEY_NONE,
	KEY_OLDER, KEY_YOUNGER, KEY_MODSEQ, KEY_EMAILID, KEY_THREADID,
};

struct key {
	enum key_type type;
	unsigned flag;
	int keyword;
	unsigned long long number;
	int date;			/* yyyymmdd */
	char *field;			/* HEADER's field name, 0 for every field */
	int cached;			/* its index in cached_fields, or -1 */
	char *text;
	size_t textlen;
	unsigned char *set;		/* messages in a sequence or UID set */
	struct key *a, *b;		/* NOT's a; OR's a and b; AND's list from a, by next */
	struct key *next;
};

#define KEYS_MAX 2000
/* Each sequence or UID set key costs a byte per message of the folder: a few suffice. */
#define SET_KEYS_MAX 16

struct parse {
	struct session *s;
	size_t i;			/* the next token */
	struct key keys[KEYS_MAX];
	size_t nkeys;
	size_t nsets;
	unsigned depth;
	int badcharset;
	int uidrequired;		/* a key with message numbers under UIDONLY */
};

static struct key *new_key(struct parse *p, enum key_type type)
{
	if (p->nkeys == KEYS_MAX)
		return 0;
	struct key *k = &p->keys[p->nkeys++];
	memset(k, 0, sizeof *k);
	k->type = type;
	return k;
}

/* "1-Feb-1994" as yyyymmdd; 0 when it is not a date. */
static int parse_date(const char *t)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int day, year;
	char mon[4];
	int used = 0;

	if (sscanf(t, "%2d-%3c-%4d%n", &day, mon, &year, &used) != 3 || t[used] || day < 1 ||
	    day > 31)
		return 0;
	mon[3] = 0;
	for (int m = 0; m < 12; m++)
		if (!strncasecmp(months + 3 * m, mon, 3))
			return year * 10000 + (m + 1) * 100 + day;
	return 0;
}

static char *string_arg(struct parse *p, size_t *len)
{
	struct imap_cmd *cmd = &p->s->c.cmd;
	if (p->i >= cmd->ntok || cmd->tok[p->i].type == IMAP_LPAREN ||
	    cmd->tok[p->i].type == IMAP_RPAREN)
		return 0;
	/* NUL-terminated in place: the byte after a token is a separator we no longer need,
	   or the command's own terminating NUL. */
	char *t = cmd->data.s + cmd->tok[p->i].off;
	*len = cmd->tok[p->i].len;
	t[*len] = 0;
	p->i++;
	return t;
}

static struct key *parse_key(struct parse *p);

/* The fields whose decoded text postroom-cache keeps, since clients search them most. */
static const char *const cached_fields[] = { "FROM", "TO", "CC", "BCC", "SUBJECT" };
#define CACHED_FIELDS (sizeof cached_fields / sizeof *cached_fields)

static int cached_index(const char *field)
{
	for (size_t i = 0; i < CACHED_FIELDS; i++)
		if (!strcasecmp(field, cached_fields[i]))
			return (int)i;
	return -1;
}

/* Keys until the list's ')' (or the end), as one AND. */
static struct key *parse_keys(struct parse *p, int in_list)
{
	struct imap_cmd *cmd = &p->s->c.cmd;
	struct key *and = new_key(p, KEY_AND), **last;
	if (!and)
		return 0;
	last = &and->a;
	while (p->i < cmd->ntok) {
		if (cmd->tok[p->i].type == IMAP_RPAREN) {
			if (!in_list)
				return 0;
			p->i++;
			return and->a ? and : 0;
		}
		struct key *k = parse_key(p);
		if (!k)
			return 0;
		*last = k;
		last = &k->next;
	}
	return in_list || !and->a ? 0 : and;
}

static struct key *parse_key(struct parse *p)
{
	static const struct {
		const char *name;
		enum key_type type;
		unsigned flag;
	} plain[] = {
		{ "ALL", KEY_ALL, 0 }, { "ANSWERED", KEY_FLAG, MBOX_ANSWERED },
		{ "DELETED", KEY_FLAG, MBOX_DELETED }, { "DRAFT", KEY_FLAG, MBOX_DRAFT },
		{ "FLAGGED", KEY_FLAG, MBOX_FLAGGED }, { "RECENT", KEY_FLAG, MBOX_RECENT },
		{ "SEEN", KEY_FLAG, MBOX_SEEN }, { "UNANSWERED", KEY_NOFLAG, MBOX_ANSWERED },
		{ "UNDELETED", KEY_NOFLAG, MBOX_DELETED }, { "UNDRAFT", KEY_NOFLAG, MBOX_DRAFT },
		{ "UNFLAGGED", KEY_NOFLAG, MBOX_FLAGGED }, { "UNSEEN", KEY_NOFLAG, MBOX_SEEN },
		{ "NEW", KEY_NEW, 0 }, { "OLD", KEY_OLD, 0 },
	};
	static const struct {
		const char *name;
		enum key_type type;
	} dated[] = {
		{ "BEFORE", KEY_BEFORE }, { "ON", KEY_ON }, { "SINCE", KEY_SINCE },
		{ "SENTBEFORE", KEY_SENTBEFORE }, { "SENTON", KEY_SENTON },
		{ "SENTSINCE", KEY_SENTSINCE },
	};
	static const char *const fields[] = { "FROM", "TO", "CC", "BCC", "SUBJECT" };
	struct imap_cmd *cmd = &p->s->c.cmd;
	struct session *s = p->s;
	size_t i = p->i;
	struct key *k;
	size_t len;

	if (i >= cmd->ntok || ++p->depth > 64)
		return 0;
	if (cmd->tok[i].type == IMAP_LPAREN) {
		p->i++;
		k = parse_keys(p, 1);
		p->depth--;
		return k;
	}
	if (cmd->tok[i].type != IMAP_ATOM)
		return 0;
	const char *a = IMAP_TOK(cmd, i);
	p->i++;
	k = 0;
	for (size_t n = 0; n < sizeof plain / sizeof *plain && !k; n++)
		if (imap_tok_is(cmd, i, plain[n].name)) {
			/* IMAP4rev2 has no \Recent, and so no RECENT, NEW or OLD. */
			int recent = plain[n].flag == MBOX_RECENT || plain[n].type == KEY_NEW ||
				     plain[n].type == KEY_OLD;
			if ((recent && s->rev2) || !(k = new_key(p, plain[n].type)))
				return 0;
			k->flag = plain[n].flag;
		}
	for (size_t n = 0; n < sizeof dated / sizeof *dated && !k; n++)
		if (imap_tok_is(cmd, i, dated[n].name)) {
			char *t = string_arg(p, &len);
			if (!t || !(k = new_key(p, dated[n].type)) || !(k->date = parse_date(t)))
				return 0;
		}
	for (size_t n = 0; n < sizeof fields / sizeof *fields && !k; n++)
		if (imap_tok_is(cmd, i, fields[n])) {
			if (!(k = new_key(p, KEY_HEADER)))
				return 0;
			k->field = (char *)fields[n];
			k->cached = cached_index(k->field);
			if (!(k->text = string_arg(p, &k->textlen)))
				return 0;
		}
	if (k) {
	} else if (imap_tok_is(cmd, i, "HEADER")) {
		if (!(k = new_key(p, KEY_HEADER)) || !(k->field = string_arg(p, &len)) ||
		    !(k->text = string_arg(p, &k->textlen)))
			return 0;
		k->cached = cached_index(k->field);
	} else if (imap_tok_is(cmd, i, "BODY") || imap_tok_is(cmd, i, "TEXT")) {
		if (!(k = new_key(p, imap_tok_is(cmd, i, "BODY") ? KEY_BODY : KEY_TEXT)) ||
		    !(k->text = string_arg(p, &k->textlen)))
			return 0;
	} else if (imap_tok_is(cmd, i, "KEYWORD") || imap_tok_is(cmd, i, "UNKEYWORD")) {
		int un = imap_tok_is(cmd, i, "UNKEYWORD");
		char *t = string_arg(p, &len);
		if (!t || !(k = new_key(p, un ? KEY_NOKEYWORD : KEY_KEYWORD)))
			return 0;
		k->keyword = mbox_keyword(&s->box, t, 0);
	} else if (imap_tok_is(cmd, i, "LARGER") || imap_tok_is(cmd, i, "SMALLER")) {
		int larger = imap_tok_is(cmd, i, "LARGER");
		char *t = string_arg(p, &len), *end;
		if (!t || !isdigit((unsigned char)*t) || !(k = new_key(p, larger ? KEY_LARGER :
										   KEY_SMALLER)))
			return 0;
		errno = 0;
		k->number = strtoull(t, &end, 10);
		if (*end || errno)
			return 0;
	} else if (imap_tok_is(cmd, i, "OLDER") || imap_tok_is(cmd, i, "YOUNGER")) {
		/* WITHIN: an interval in seconds, nz-number */
		int older = imap_tok_is(cmd, i, "OLDER");
		char *t = string_arg(p, &len), *end;
		if (!t || *t < '1' || *t > '9' || !(k = new_key(p, older ? KEY_OLDER : KEY_YOUNGER)))
			return 0;
		errno = 0;
		k->number = strtoull(t, &end, 10);
		if (*end || errno)
			return 0;
	} else if (imap_tok_is(cmd, i, "MODSEQ")) {
		/* RFC 7162: MODSEQ ["/flags/..." priv|shared|all] n. One modseq per message here,
		   so the entry's name and type change nothing (section 3.1.5). */
		if (p->i + 2 < cmd->ntok && cmd->tok[p->i].type != IMAP_ATOM) {
			char type[16];
			if (!imap_tok_cstr(cmd, p->i + 1, type, sizeof type) ||
			    (strcasecmp(type, "priv") && strcasecmp(type, "shared") &&
			     strcasecmp(type, "all")))
				return 0;
			p->i += 2;
		}
		uint64_t modseq;
		if (!arg_modseq(s, p->i++, 1, &modseq) || !(k = new_key(p, KEY_MODSEQ)))
			return 0;
		k->number = modseq;
		/* The modseqs must be there before the first message is tried. */
		if (!condstore_on(s))
			return 0;
		s->searched_modseq = 1;
	} else if (imap_tok_is(cmd, i, "EMAILID") || imap_tok_is(cmd, i, "THREADID")) {
		/* RFC 8474 section 6: an objectid, compared exactly */
		int email = imap_tok_is(cmd, i, "EMAILID");
		if (!(k = new_key(p, email ? KEY_EMAILID : KEY_THREADID)) ||
		    !(k->text = string_arg(p, &k->textlen)) || !objectid_valid(k->text, k->textlen))
			return 0;
	} else if (imap_tok_is(cmd, i, "NOT")) {
		if (!(k = new_key(p, KEY_NOT)) || !(k->a = parse_key(p)))
			return 0;
	} else if (imap_tok_is(cmd, i, "OR")) {
		if (!(k = new_key(p, KEY_OR)) || !(k->a = parse_key(p)) || !(k->b = parse_key(p)))
			return 0;
	} else if (imap_tok_is(cmd, i, "UID") || isdigit((unsigned char)*a) || *a == '*' ||
		   *a == '$') {
		int uid = imap_tok_is(cmd, i, "UID");
		size_t at = uid ? p->i++ : i;
		if (!uid && *a != '$' && s->uidonly) {
			p->uidrequired = 1;	/* RFC 9586: no message numbers */
			return 0;
		}
		if (p->nsets++ == SET_KEYS_MAX || !(k = new_key(p, KEY_SET)) ||
		    !(k->set = calloc(s->box.count + 1, 1)))
			return 0;
		if (!seqset_parse(s, at, uid, k->set)) {
			free(k->set);
			k->set = 0;
			return 0;
		}
	} else {
		return 0;
	}
	p->depth--;
	return k;
}

/* One message, as far as the keys have needed it. */
struct candidate {
	struct session *s;
	size_t idx;
	const char *data;
	size_t len;
	struct mime_msg *mime;
	struct mime_msg *head;	/* the header alone, until the whole is parsed */
	int loaded;
	struct sa headers;	/* every field, decoded: for TEXT */
	int have_headers;
	struct sa body;
	int have_body;
	struct sa field;
	struct sa cached;	/* cached_fields' text: "<length>\n<bytes>" for each */
	int cached_state;	/* 0 not looked at, 1 there, -1 not to be had */
	size_t field_off[CACHED_FIELDS], field_len[CACHED_FIELDS];
};

static struct mime_msg *candidate_mime(struct candidate *c)
{
	char why[256];
	if (!c->loaded) {
		c->loaded = 1;
		if (c->head) {
			mime_free(c->head);
			c->head = 0;
		}
		if (c->data || mbox_read(&c->s->box, c->idx, &c->data, &c->len, why, sizeof why))
			c->mime = mime_parse(c->data, c->len);
	}
	return c->mime;
}

/* For keys on the header alone: the header parsed without the body, whose MIME structure
   (every boundary of every part) is most of a parse's work. */
static struct mime_msg *candidate_head(struct candidate *c)
{
	char why[256];
	if (c->loaded || c->head)
		return c->loaded ? c->mime : c->head;
	if (!c->data && !mbox_read(&c->s->box, c->idx, &c->data, &c->len, why, sizeof why)) {
		c->loaded = 1;
		return 0;
	}
	const char *end = c->len && c->data[0] == '\n' ? c->data : memmem(c->data, c->len, "\n\n", 2);
	const char *crlf = memmem(c->data, c->len, "\r\n\r\n", 4);
	size_t n = c->len;
	if (end)
		n = (size_t)(end - c->data) + 1;
	if (crlf && (size_t)(crlf - c->data) + 2 < n)
		n = (size_t)(crlf - c->data) + 2;
	c->head = mime_parse(c->data, n);
	return c->head;
}

/* Cuts c->cached into its fields; 0 when it is not what we wrote. */
static int split_cached(struct candidate *c)
{
	size_t at = 0;
	for (size_t i = 0; i < CACHED_FIELDS; i++) {
		char *end;
		if (at >= c->cached.len)
			return 0;
		unsigned long long n = strtoull(c->cached.s + at, &end, 10);
		if (*end != '\n' || n > c->cached.len)
			return 0;
		at = (size_t)(end + 1 - c->cached.s);
		if (n > c->cached.len - at)
			return 0;
		c->field_off[i] = at;
		c->field_len[i] = (size_t)n;
		at += (size_t)n;
	}
	return at == c->cached.len;
}

/* The decoded text of cached field f of the message, from postroom-cache, or computed from
   its header and put there. 0 when it cannot be had (the caller then reads the header). */
static int cached_field(struct candidate *c, int f, const char **text, size_t *len)
{
	if (!c->cached_state) {
		c->cached_state = -1;
		if (mbox_cache_get(&c->s->box, c->idx, MBOX_CACHE_SEARCH_HEADERS, &c->cached) &&
		    split_cached(c)) {
			c->cached_state = 1;
		} else {
			struct mime_msg *mime = candidate_head(c);
			struct sa one = SA_ZERO;
			int ok = mime != 0;
			sa_truncate(&c->cached, 0);
			for (size_t i = 0; ok && i < CACHED_FIELDS; i++) {
				sa_truncate(&one, 0);
				ok = mime_header_text(mime, cached_fields[i], &one) &&
				     sa_catf(&c->cached, "%zu\n", one.len) &&
				     sa_catb(&c->cached, one.s ? one.s : "", one.len);
			}
			sa_free(&one);
			if (ok && split_cached(c)) {
				mbox_cache_put(&c->s->box, c->idx, MBOX_CACHE_SEARCH_HEADERS,
					       c->cached.s, c->cached.len);
				c->cached_state = 1;
			}
		}
	}
	if (c->cached_state != 1)
		return 0;
	*text = c->cached.s + c->field_off[f];
	*len = c->field_len[f];
	return 1;
}

static int local_date(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static int matches(struct candidate *c, const struct key *k)
{
	const struct mbox_msg *m = &c->s->box.msg[c->idx];
	struct mime_msg *mime;
	int y, mo, d;

	switch (k->type) {
	case KEY_ALL:
		return 1;
	case KEY_NONE:
		return 0;
	case KEY_FLAG:
		return (m->flags & k->flag) != 0;
	case KEY_NOFLAG:
		return !(m->flags & k->flag);
	case KEY_KEYWORD:
		return k->keyword >= 0 && (m->keywords & (1u << k->keyword));
	case KEY_NOKEYWORD:
		return k->keyword < 0 || !(m->keywords & (1u << k->keyword));
	case KEY_NEW:
		return (m->flags & MBOX_RECENT) && !(m->flags & MBOX_SEEN);
	case KEY_OLD:
		return !(m->flags & MBOX_RECENT);
	case KEY_SET:
		return k->set[c->idx];
	case KEY_LARGER:
	case KEY_SMALLER: {
		unsigned long long size = m->vsize;
		if (!size && (mime = candidate_mime(c)))
			size = mime_vsize(mime);
		return k->type == KEY_LARGER ? size > k->number : size < k->number;
	}
	case KEY_BEFORE:
		return local_date(mbox_internaldate(&c->s->box, c->idx)) < k->date;
	case KEY_ON:
		return local_date(mbox_internaldate(&c->s->box, c->idx)) == k->date;
	case KEY_SINCE:
		return local_date(mbox_internaldate(&c->s->box, c->idx)) >= k->date;
	case KEY_OLDER:
	case KEY_YOUNGER: {
		/* As Dovecot compares: OLDER n is at least n seconds old, YOUNGER n at most. */
		long long age = (long long)time(0) - (long long)mbox_internaldate(&c->s->box, c->idx);
		return k->type == KEY_OLDER ? age >= (long long)k->number :
					      age <= (long long)k->number;
	}
	case KEY_SENTBEFORE:
	case KEY_SENTON:
	case KEY_SENTSINCE: {
		if (!(mime = candidate_head(c)))
			return 0;
		/* No usable Date: the internal date stands in, as Dovecot does. */
		int sent = mime_sent_date(mime, &y, &mo, &d) ? y * 10000 + mo * 100 + d :
				local_date(mbox_internaldate(&c->s->box, c->idx));
		return k->type == KEY_SENTBEFORE ? sent < k->date :
		       k->type == KEY_SENTON	 ? sent == k->date :
						   sent >= k->date;
	}
	case KEY_HEADER: {
		const char *text;
		size_t len;
		if (k->cached >= 0 && cached_field(c, k->cached, &text, &len))
			return k->textlen ? len && mime_text_contains(text, len, k->text, k->textlen)
					  : len > 0;
		if (!(mime = candidate_head(c)))
			return 0;
		sa_truncate(&c->field, 0);
		if (!mime_header_text(mime, k->field, &c->field))
			return 0;
		if (!k->textlen)
			return c->field.len > 0;
		return mime_text_contains(c->field.s, c->field.len, k->text, k->textlen);
	}
	case KEY_TEXT:
		if (!(mime = candidate_mime(c)))
			return 0;
		if (!c->have_headers) {
			c->have_headers = 1;
			mime_header_text(mime, 0, &c->headers);
		}
		if (c->headers.len &&
		    mime_text_contains(c->headers.s, c->headers.len, k->text, k->textlen))
			return 1;
		/* FALLTHROUGH - to the body */
	case KEY_BODY:
		if (!(mime = candidate_mime(c)))
			return 0;
		if (!c->have_body) {
			c->have_body = 1;
			mime_body_text(mime, &c->body);
		}
		if (!k->textlen)
			return 1;
		return c->body.len && mime_text_contains(c->body.s, c->body.len, k->text,
							  k->textlen);
	case KEY_MODSEQ:
		return c->s->box.msg[c->idx].modseq >= k->number;
	case KEY_EMAILID:
		sa_truncate(&c->field, 0);
		return emailid_get(c->s, c->idx, &c->field) && c->field.len == k->textlen &&
		       !memcmp(c->field.s, k->text, k->textlen);
	case KEY_THREADID:
		sa_truncate(&c->field, 0);
		c->field.len = 0;
		return threadid_get(c->s, c->idx, &c->field) && c->field.len == k->textlen &&
		       !memcmp(c->field.s, k->text, k->textlen);
	case KEY_NOT:
		return !matches(c, k->a);
	case KEY_OR:
		return matches(c, k->a) || matches(c, k->b);
	case KEY_AND:
		for (const struct key *x = k->a; x; x = x->next)
			if (!matches(c, x))
				return 0;
		return 1;
	}
	return 0;
}

static void free_candidate(struct candidate *c)
{
	if (c->mime)
		mime_free(c->mime);
	if (c->head)
		mime_free(c->head);
	if (c->data)
		mbox_release(c->data, c->len);
	sa_free(&c->headers);
	sa_free(&c->body);
	sa_free(&c->field);
	sa_free(&c->cached);
}

int search_keys(struct session *s, size_t first, unsigned char *match)
{
	static struct parse p;
	int ok = 1;

	p.s = s;
	p.i = first;
	p.nkeys = p.nsets = 0;
	s->searched_modseq = 0;
	p.depth = 0;
	p.uidrequired = 0;
	struct key *root = parse_keys(&p, 0);
	if (!root) {
		if (p.uidrequired)
			bad(&s->c, s->cf, "[UIDREQUIRED] Message numbers are not used with UIDONLY");
		else
			bad(&s->c, s->cf, "Invalid SEARCH keys");
		ok = 0;
	}
	for (size_t i = 0; ok && i < s->box.count; i++) {
		match[i] = 0;
		if (s->box.msg[i].gone)
			continue;
		struct candidate c = { .s = s, .idx = i };
		match[i] = (unsigned char)matches(&c, root);
		free_candidate(&c);
	}
	for (size_t i = 0; i < p.nkeys; i++)
		free(p.keys[i].set);
	return ok;
}

int search_charset(struct session *s, size_t i)
{
	char charset[64];
	if (!imap_tok_cstr(&s->c.cmd, i, charset, sizeof charset)) {
		bad(&s->c, s->cf, "CHARSET needs a name");
		return 0;
	}
	if (strcasecmp(charset, "UTF-8") && strcasecmp(charset, "US-ASCII")) {
		out(&s->c, "%s NO [BADCHARSET (UTF-8 US-ASCII)] Unknown charset\r\n", conn_tag(&s->c));
		return 0;
	}
	return 1;
}

/* SEARCHRES: the saved result is a list of UIDs, in the view's (UID) order, so that messages
   expunged since simply drop out of "$" (RFC 5182 section 2.1). */
void searchres_clear(struct session *s)
{
	free(s->saved);
	s->saved = 0;
	s->nsaved = 0;
}

static void searchres_save(struct session *s, const unsigned char *match, unsigned opts)
{
	size_t n = 0, min = 0, max = 0, found = 0;
	searchres_clear(s);
	for (size_t i = 0; i < s->box.count; i++)
		if (match[i]) {
			if (!found++)
				min = i;
			max = i;
		}
	if (!found || !(s->saved = malloc(found * sizeof *s->saved)))
		return;
	/* With MIN or MAX (and no ALL or COUNT) only those are kept (section 2.4). */
	if ((opts & (RET_MIN | RET_MAX)) && !(opts & (RET_ALL | RET_COUNT))) {
		if (opts & RET_MIN)
			s->saved[n++] = s->box.msg[min].uid;
		if ((opts & RET_MAX) && (max != min || !(opts & RET_MIN)))
			s->saved[n++] = s->box.msg[max].uid;
	} else {
		for (size_t i = 0; i < s->box.count; i++)
			if (match[i])
				s->saved[n++] = s->box.msg[i].uid;
	}
	s->nsaved = n;
}

void searchres_mark(struct session *s, unsigned char *want)
{
	size_t k = 0;
	for (size_t i = 0; i < s->box.count && k < s->nsaved; i++) {
		while (k < s->nsaved && s->saved[k] < s->box.msg[i].uid)
			k++;
		if (k < s->nsaved && s->saved[k] == s->box.msg[i].uid)
			want[i] = 1;
	}
}

void out_search_modseq(struct session *s, uint64_t modseq)
{
	if (modseq)
		out(&s->c, " (MODSEQ %" PRIu64 ")", modseq);
	out(&s->c, "\r\n");
}

void out_number_set(struct session *s, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		out(&s->c, i ? ",%u" : "%u", v[i]);
		if (j > i)
			out(&s->c, ":%u", v[j]);
		i = j + 1;
	}
}

unsigned search_return_opts(struct session *s, size_t *i, int sort)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = { { "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL },
		      { "COUNT", RET_COUNT }, { "SAVE", RET_SAVE } };
	const struct imap_cmd *cmd = &s->c.cmd;
	unsigned opts = 0;
	size_t at = *i;

	if (!imap_tok_is(cmd, at, "RETURN"))
		return 0;
	if (++at >= cmd->ntok || cmd->tok[at].type != IMAP_LPAREN)
		return RET_BAD;
	for (at++; at < cmd->ntok && cmd->tok[at].type != IMAP_RPAREN; at++) {
		size_t k = 0;
		while (k < sizeof names / sizeof *names && !imap_tok_is(cmd, at, names[k].name))
			k++;
		if (k == sizeof names / sizeof *names || (sort && names[k].bit == RET_SAVE))
			return RET_BAD;
		opts |= names[k].bit;
	}
	if (at >= cmd->ntok)
		return RET_BAD;
	*i = at + 1;
	return RET_ESEARCH | (opts ? opts : RET_ALL);
}

uint64_t result_modseq(struct session *s, const size_t *idx, size_t n, unsigned opts)
{
	uint64_t high = 0;

	if (!s->searched_modseq || !n)
		return 0;
	if ((opts & RET_ESEARCH) && (opts & (RET_MIN | RET_MAX)) &&
	    !(opts & (RET_ALL | RET_COUNT))) {
		/* Only the messages told of: the first and last in the reply's order (RFC 4731
		   section 3.2). */
		uint64_t a = s->box.msg[idx[0]].modseq, b = s->box.msg[idx[n - 1]].modseq;
		if (!(opts & RET_MAX))
			return a;
		if (!(opts & RET_MIN))
			return b;
		return a > b ? a : b;
	}
	for (size_t k = 0; k < n; k++)
		if (s->box.msg[idx[k]].modseq > high)
			high = s->box.msg[idx[k]].modseq;
	return high;
}

void out_esearch(struct session *s, int uid, unsigned opts, const uint32_t *v, size_t n,
		 int sorted, uint64_t modseq)
{
	uint32_t min = 0, max = 0;
	for (size_t k = 0; k < n && !sorted; k++) {
		if (!k || v[k] < min)
			min = v[k];
		if (!k || v[k] > max)
			max = v[k];
	}
	if (sorted && n) {
		/* ESORT: MIN and MAX are the first and the last in the sort's order */
		min = v[0];
		max = v[n - 1];
	}
	out(&s->c, "* ESEARCH (TAG \"%s\")%s", conn_tag(&s->c), uid ? " UID" : "");
	if ((opts & RET_MIN) && n)
		out(&s->c, " MIN %u", min);
	if ((opts & RET_MAX) && n)
		out(&s->c, " MAX %u", max);
	if ((opts & RET_ALL) && n) {
		out(&s->c, " ALL ");
		out_number_set(s, v, n);
	}
	if (opts & RET_COUNT)
		out(&s->c, " COUNT %zu", n);
	if (modseq)
		out(&s->c, " MODSEQ %" PRIu64, modseq);
	out(&s->c, "\r\n");
}

void cmd_search(struct session *s, int uid, size_t arg)
{
	struct imap_cmd *cmd = &s->c.cmd;
	const char *tag = conn_tag(&s->c);
	unsigned opts = search_return_opts(s, &arg, 0);

	if (opts == RET_BAD) {
		bad(&s->c, s->cf, "Invalid RETURN options");
		return;
	}
	/* IMAP4rev2 answers ESEARCH always: no RETURN is RETURN (ALL) (RFC 9051 6.4.4). */
	if (!opts && s->rev2)
		opts = RET_ESEARCH | RET_ALL;
	unsigned char *match = calloc(s->box.count + 1, 1);
	uint32_t *found = malloc((s->box.count + 1) * sizeof *found);
	size_t *idx = malloc((s->box.count + 1) * sizeof *idx);
	if (!match || !found || !idx) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", tag);
		goto failed;
	}
	if (imap_tok_is(cmd, arg, "CHARSET")) {
		/* RFC 6855 section 3: a client that enabled UTF8=ACCEPT names no charset. */
		if (s->enabled_utf8) {
			bad(&s->c, s->cf, "No CHARSET after ENABLE UTF8=ACCEPT");
			goto failed;
		}
		if (!search_charset(s, arg + 1))
			goto failed;
		arg += 2;
	}
	if (!search_keys(s, arg, match))
		goto failed;
	size_t n = 0;
	for (size_t i = 0; i < s->box.count; i++)
		if (match[i]) {
			idx[n] = i;
			found[n++] = uid ? s->box.msg[i].uid : (uint32_t)(i + 1);
		}
	if (opts & RET_SAVE)
		searchres_save(s, match, opts);
	uint64_t modseq = result_modseq(s, idx, n, opts);
	if (!(opts & RET_ESEARCH)) {
		out(&s->c, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			out(&s->c, " %u", found[i]);
		out_search_modseq(s, modseq);
	} else if (opts & ~(RET_ESEARCH | RET_SAVE)) {
		/* SAVE alone asks for no ESEARCH reply (RFC 5182 section 2.4) */
		out_esearch(s, uid, opts, found, n, 0, modseq);
	}
	free(match);
	free(found);
	free(idx);
	announce_changes(s, uid);
	out(&s->c, "%s OK Search completed\r\n", tag);
	return;
failed:
	/* A SEARCH with SAVE that fails leaves "$" empty (RFC 5182 section 2.1). */
	if (opts & RET_SAVE)
		searchres_clear(s);
	free(match);
	free(found);
	free(idx);
}
