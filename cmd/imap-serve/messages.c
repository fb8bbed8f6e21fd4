/* postroom: ISC license, see LICENSE. */
/*
 * Commands on the selected folder's messages: FETCH, STORE, COPY, MOVE and EXPUNGE, with their
 * UID forms, and the sequence sets they all take.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "imap-serve.h"
#include "log.h"
#include "mime.h"

/* A number of a sequence set: digits, no sign, not 0, below 2^32. */
static int set_number(const char **p, uint32_t *n)
{
	unsigned long long v = 0;
	const char *s = *p;

	if (*s < '1' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned)(*s++ - '0');
		if (v > 0xffffffffULL)
			return 0;
	}
	*n = (uint32_t)v;
	*p = s;
	return 1;
}

int seqset_parse(struct session *s, size_t i, int uid, unsigned char *want)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	const struct mbox *m = &s->box;
	char set[8192];

	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_ATOM ||
	    !imap_tok_cstr(cmd, i, set, sizeof set))
		return 0;
	if (!strcmp(set, "$")) {
		searchres_mark(s, want);
		return 1;
	}
	/* "*" is the last message, or the highest UID in use. */
	uint32_t star = uid ? (m->count ? m->msg[m->count - 1].uid : 0) : (uint32_t)m->count;
	if (!uid && !m->count)
		return 0;
	const char *p = set;
	for (;;) {
		uint32_t lo, hi;
		if (*p == '*')
			lo = star, p++;
		else if (!set_number(&p, &lo))
			return 0;
		hi = lo;
		if (*p == ':') {
			p++;
			if (*p == '*')
				hi = star, p++;
			else if (!set_number(&p, &hi))
				return 0;
		}
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (uid) {
			/* The view is in UID order: find the range by bisection. */
			size_t a = 0, b = m->count;
			while (a < b) {
				size_t mid = (a + b) / 2;
				if (m->msg[mid].uid < lo)
					a = mid + 1;
				else
					b = mid;
			}
			for (; a < m->count && m->msg[a].uid <= hi; a++)
				want[a] = 1;
		} else {
			if (hi > m->count)
				return 0;
			memset(want + lo - 1, 1, hi - lo + 1);
		}
		if (*p == 0)
			return 1;
		if (*p++ != ',')
			return 0;
	}
}

/* The messages of the set at token i, or 0 (answered) when the set is not valid. */
static unsigned char *selected_set(struct session *s, int uid, size_t i)
{
	unsigned char *want = calloc(s->box.count + 1, 1);
	if (!want) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", conn_tag(&s->c));
		return 0;
	}
	if (!seqset_parse(s, i, uid, want)) {
		bad(&s->c, s->cf, "Invalid message set");
		free(want);
		return 0;
	}
	return want;
}

enum item_kind {
	ITEM_FLAGS, ITEM_INTERNALDATE, ITEM_SIZE, ITEM_ENVELOPE, ITEM_UID, ITEM_BODY,
	ITEM_BODYSTRUCTURE, ITEM_RFC822, ITEM_RFC822_HEADER, ITEM_RFC822_TEXT, ITEM_SECTION,
	ITEM_MODSEQ,
	ITEM_BINARY, ITEM_BINARY_SIZE,	/* binary.c */
	ITEM_EMAILID, ITEM_THREADID,	/* objectid.c */
	ITEM_PREVIEW,
};

struct item {
	enum item_kind kind;
	int peek;
	struct mime_section sec;
	const char *fields[64];
	char *spec;		/* the section as the client wrote it, for the reply */
	int partial;
	unsigned long long start, count;
	int lazy;		/* PREVIEW (LAZY) */
};

#define ITEMS_MAX 64

struct fetch {
	struct item item[ITEMS_MAX];
	size_t n;
	char space[8192];	/* the items' section texts and field names */
	size_t used;
	int sets_seen;		/* some item marks the message \Seen */
	int needs_message;	/* some item needs the message's bytes */
	int modseq;		/* MODSEQ is asked for, or implied by CHANGEDSINCE */
	int changedsince_set, vanished;	/* the modifiers (RFC 7162) */
	uint64_t changedsince;
	const char *no;		/* the tagged NO when a BINARY item cannot be had (binary.c) */
};

static char *keep(struct fetch *f, const char *s, size_t n)
{
	if (f->used + n + 1 > sizeof f->space)
		return 0;
	char *p = f->space + f->used;
	memcpy(p, s, n);
	p[n] = 0;
	f->used += n + 1;
	return p;
}

/* The text inside BODY[...]: part numbers, then HEADER, HEADER.FIELDS[.NOT] (names), TEXT or
   MIME (RFC 3501 section 6.4.5). */
static int parse_section(struct fetch *f, struct item *it, const char *p, const char *end)
{
	struct mime_section *sec = &it->sec;

	sec->nparts = 0;
	sec->kind = MIME_SECTION_ALL;
	while (p < end && isdigit((unsigned char)*p)) {
		unsigned long v = 0;
		while (p < end && isdigit((unsigned char)*p) && v < 100000000)
			v = v * 10 + (unsigned)(*p++ - '0');
		if (v == 0 || sec->nparts == MIME_DEPTH_MAX)
			return 0;
		sec->part[sec->nparts++] = (unsigned)v;
		if (p == end)
			return 1;
		if (*p++ != '.')
			return 0;
	}
	size_t n = (size_t)(end - p);
	if (n == 0)
		return sec->nparts == 0;	/* "1." is not a section */
	if (n == 4 && !strncasecmp(p, "TEXT", 4)) {
		sec->kind = MIME_SECTION_TEXT;
		return 1;
	}
	if (n == 4 && !strncasecmp(p, "MIME", 4)) {
		sec->kind = MIME_SECTION_MIME;
		return sec->nparts > 0;
	}
	if (n == 6 && !strncasecmp(p, "HEADER", 6)) {
		sec->kind = MIME_SECTION_HEADER;
		return 1;
	}
	size_t k;
	if (n > 17 && !strncasecmp(p, "HEADER.FIELDS.NOT", 17)) {
		sec->kind = MIME_SECTION_HEADER_FIELDS_NOT;
		k = 17;
	} else if (n > 13 && !strncasecmp(p, "HEADER.FIELDS", 13)) {
		sec->kind = MIME_SECTION_HEADER_FIELDS;
		k = 13;
	} else {
		return 0;
	}
	p += k;
	while (p < end && *p == ' ')
		p++;
	if (p == end || *p++ != '(' || end[-1] != ')')
		return 0;
	end--;
	sec->nfields = 0;
	sec->fields = it->fields;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		const char *w = p;
		if (*p == '"') {
			w = ++p;
			while (p < end && *p != '"')
				p++;
			if (p == end)
				return 0;
		} else {
			while (p < end && *p != ' ')
				p++;
		}
		if (p == w || sec->nfields == sizeof it->fields / sizeof *it->fields)
			return 0;
		char *name = keep(f, w, (size_t)(p - w));
		if (!name)
			return 0;
		it->fields[sec->nfields++] = name;
		if (p < end && *p == '"')
			p++;
	}
	return sec->nfields > 0;
}

/* BINARY, BINARY.PEEK or BINARY.SIZE (the item name's first head bytes): 1 and *kind, or 0. */
static int binary_item_name(const char *a, size_t head, int *peek, enum item_kind *kind)
{
	if (head == 6) {
		*kind = ITEM_BINARY;
	} else if (!strncasecmp(a, "BINARY.PEEK", 11)) {
		*kind = ITEM_BINARY;
		*peek = 1;
	} else if (!strncasecmp(a, "BINARY.SIZE", 11)) {
		*kind = ITEM_BINARY_SIZE;
		*peek = 1;
	} else {
		return 0;
	}
	return 1;
}

static int parse_item(struct fetch *f, const char *a, size_t n)
{
	static const struct {
		const char *name;
		enum item_kind kind;
	} simple[] = {
		{ "FLAGS", ITEM_FLAGS }, { "INTERNALDATE", ITEM_INTERNALDATE },
		{ "RFC822.SIZE", ITEM_SIZE }, { "ENVELOPE", ITEM_ENVELOPE }, { "UID", ITEM_UID },
		{ "BODY", ITEM_BODY }, { "BODYSTRUCTURE", ITEM_BODYSTRUCTURE },
		{ "RFC822", ITEM_RFC822 }, { "RFC822.HEADER", ITEM_RFC822_HEADER },
		{ "RFC822.TEXT", ITEM_RFC822_TEXT }, { "MODSEQ", ITEM_MODSEQ },
		{ "EMAILID", ITEM_EMAILID }, { "THREADID", ITEM_THREADID },
		{ "PREVIEW", ITEM_PREVIEW },
	};
	if (f->n == ITEMS_MAX)
		return 0;
	struct item *it = &f->item[f->n];
	memset(it, 0, sizeof *it);
	for (size_t k = 0; k < sizeof simple / sizeof *simple; k++)
		if (strlen(simple[k].name) == n && !strncasecmp(a, simple[k].name, n)) {
			it->kind = simple[k].kind;
			f->n++;
			if (it->kind == ITEM_RFC822 || it->kind == ITEM_RFC822_TEXT)
				f->sets_seen = 1;
			if (it->kind >= ITEM_ENVELOPE && it->kind != ITEM_UID &&
			    it->kind != ITEM_MODSEQ && it->kind < ITEM_EMAILID)
				f->needs_message = 1;
			if (it->kind == ITEM_MODSEQ)
				f->modseq = 1;
			return 1;
		}
	const char *open = memchr(a, '[', n), *end = a + n;
	if (!open)
		return 0;
	size_t head = (size_t)(open - a);
	enum item_kind kind = ITEM_SECTION;
	if (head == 9 && !strncasecmp(a, "BODY.PEEK", 9))
		it->peek = 1;
	else if ((head == 6 || head == 11) && !strncasecmp(a, "BINARY", 6)) {
		if (!binary_item_name(a, head, &it->peek, &kind))
			return 0;
	} else if (head != 4 || strncasecmp(a, "BODY", 4))
		return 0;
	const char *close = memchr(open, ']', (size_t)(end - open));
	if (!close || !parse_section(f, it, open + 1, close))
		return 0;
	/* BINARY takes part numbers only (RFC 3516's section-binary); BINARY.SIZE no partial */
	if (kind != ITEM_SECTION && (it->sec.kind != MIME_SECTION_ALL ||
				     (kind == ITEM_BINARY_SIZE && close + 1 < end)))
		return 0;
	it->spec = keep(f, open + 1, (size_t)(close - open - 1));
	if (!it->spec)
		return 0;
	const char *p = close + 1;
	if (p < end) {
		/* <start.count> */
		char *e;
		if (*p != '<' || end[-1] != '>' || !isdigit((unsigned char)p[1]))
			return 0;
		it->start = strtoull(p + 1, &e, 10);
		if (*e != '.' || !isdigit((unsigned char)e[1]))
			return 0;
		it->count = strtoull(e + 1, &e, 10);
		if (e != end - 1 || it->count == 0)
			return 0;
		it->partial = 1;
	}
	it->kind = kind;
	if (!it->peek)
		f->sets_seen = 1;
	f->needs_message = 1;
	f->n++;
	return 1;
}

/* RFC 8970's modifiers after PREVIEW at token *i: "(LAZY)", the only one there is; *i is
   left at the list's ")". */
static int preview_modifiers(struct session *s, size_t *i, struct item *it)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t k = *i + 1, end = imap_tok_skip(cmd, k);

	if (end != k + 3 || !imap_tok_is(cmd, k + 1, "LAZY"))
		return 0;
	it->lazy = 1;
	*i = end - 1;
	return 1;
}

/* The items from token i to token end. */
static int parse_items(struct session *s, size_t i, size_t end, struct fetch *f)
{
	const struct imap_cmd *cmd = &s->c.cmd;

	if (i + 1 == end && cmd->tok[i].type == IMAP_ATOM) {
		const char *a = IMAP_TOK(cmd, i);
		size_t n = cmd->tok[i].len;
		const char *macro = 0;
		if (n == 3 && !strncasecmp(a, "ALL", 3))
			macro = "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE";
		else if (n == 4 && !strncasecmp(a, "FAST", 4))
			macro = "FLAGS INTERNALDATE RFC822.SIZE";
		else if (n == 4 && !strncasecmp(a, "FULL", 4))
			macro = "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY";
		if (macro) {
			for (const char *w = macro; *w;) {
				size_t len = strcspn(w, " ");
				parse_item(f, w, len);
				w += len + (w[len] == ' ');
			}
			return 1;
		}
		return parse_item(f, a, n);
	}
	if (i >= end || cmd->tok[i].type != IMAP_LPAREN || imap_tok_skip(cmd, i) != end)
		return 0;
	for (i++; i + 1 < end; i++) {
		if (cmd->tok[i].type != IMAP_ATOM ||
		    !parse_item(f, IMAP_TOK(cmd, i), cmd->tok[i].len))
			return 0;
		if (f->item[f->n - 1].kind == ITEM_PREVIEW && cmd->tok[i + 1].type == IMAP_LPAREN &&
		    !preview_modifiers(s, &i, &f->item[f->n - 1]))
			return 0;
	}
	return f->n > 0;
}

/* IMAP4rev2 took RFC822, RFC822.HEADER and RFC822.TEXT out of FETCH (RFC 9051 appendix E). */
static int items_allowed(const struct session *s, const struct fetch *f)
{
	for (size_t k = 0; k < f->n && s->rev2; k++)
		if (f->item[k].kind == ITEM_RFC822 || f->item[k].kind == ITEM_RFC822_HEADER ||
		    f->item[k].kind == ITEM_RFC822_TEXT)
			return 0;
	return 1;
}

/* The modifiers (RFC 4466) from token i, if any: CHANGEDSINCE and, for UID FETCH once QRESYNC
   is on, VANISHED (RFC 7162). */
static int parse_modifiers(struct session *s, size_t i, int uid, struct fetch *f)
{
	const struct imap_cmd *cmd = &s->c.cmd;

	if (i == cmd->ntok)
		return 1;
	if (cmd->tok[i].type != IMAP_LPAREN || imap_tok_skip(cmd, i) != cmd->ntok)
		return 0;
	for (i++; i + 1 < cmd->ntok; i++) {
		if (imap_tok_is(cmd, i, "CHANGEDSINCE") && !f->changedsince_set) {
			/* 0 is not a mod-sequence-value, but clients send it for "everything"
			   (iPhone Mail), and Dovecot takes it. */
			if (!arg_modseq(s, ++i, 1, &f->changedsince))
				return 0;
			f->changedsince_set = f->modseq = 1;
		} else if (imap_tok_is(cmd, i, "VANISHED") && !f->vanished) {
			f->vanished = 1;
		} else {
			return 0;
		}
	}
	return !f->vanished || (uid && s->qresync && f->changedsince_set);
}

/* One message's bytes and structure, read only when an item needs them. */
struct loaded {
	const char *data;
	size_t len;
	struct mime_msg *mime;
	int tried;
};

static int load(struct session *s, size_t idx, struct loaded *l)
{
	char why[256];
	if (l->tried)
		return l->mime != 0;
	l->tried = 1;
	if (!mbox_read(&s->box, idx, &l->data, &l->len, why, sizeof why)) {
		if (errno != ENOENT)
			log_line("%s: unable to read message %u of %s: %s", s->user,
				 s->box.msg[idx].uid, s->box.name, why);
		return 0;
	}
	l->mime = mime_parse(l->data, l->len);
	return l->mime != 0;
}

static void unload(struct loaded *l)
{
	if (l->mime)
		mime_free(l->mime);
	if (l->data)
		mbox_release(l->data, l->len);
	*l = (struct loaded){ 0 };
}

/* ENVELOPE, BODY or BODYSTRUCTURE, from the cache or computed and cached. */
static int structure(struct session *s, size_t idx, struct loaded *l, enum item_kind kind,
		     struct sa *v)
{
	enum mbox_cache_kind ck = kind == ITEM_ENVELOPE ? MBOX_CACHE_ENVELOPE :
				  kind == ITEM_BODY ? MBOX_CACHE_BODY : MBOX_CACHE_BODYSTRUCTURE;
	sa_truncate(v, 0);
	if (mbox_cache_get(&s->box, idx, ck, v))
		return 1;
	if (!load(s, idx, l))
		return 0;
	int ok = kind == ITEM_ENVELOPE ? mime_envelope(l->mime, v) :
					 mime_bodystructure(l->mime, kind == ITEM_BODYSTRUCTURE, v);
	if (ok)
		mbox_cache_put(&s->box, idx, ck, v->s, v->len);
	return ok;
}

static unsigned long long message_vsize(struct session *s, size_t idx, struct loaded *l)
{
	struct mbox_msg *m = &s->box.msg[idx];
	if (!m->vsize && load(s, idx, l)) {
		m->vsize = mime_vsize(l->mime);
		mbox_cache_vsize(&s->box, idx, m->vsize);
	}
	return m->vsize;
}

static void out_internaldate(struct session *s, time_t t)
{
	struct tm tm;
	char text[64];
	localtime_r(&t, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	strftime(text, sizeof text, "%d-%b-%Y %H:%M:%S", &tm);
	out(&s->c, "INTERNALDATE \"%s %c%02ld%02ld\"", text, sign, off / 60, off % 60);
}

/* Bytes of a body item, cut to its <start.count> when it has one, as a literal. */
static void out_body_bytes(struct session *s, const struct item *it, const char *p, size_t n)
{
	if (it->partial) {
		unsigned long long start = it->start < n ? it->start : n;
		unsigned long long count = n - start < it->count ? n - start : it->count;
		p += start;
		n = (size_t)count;
	}
	out(&s->c, "{%zu}\r\n", n);
	out_bytes(&s->c, p, n);
}

/* "PREVIEW ..." (RFC 8970): from the cache, else made and cached; NIL for LAZY when it is
   not cached, and when the message cannot be read. */
static void out_preview(struct session *s, size_t idx, const struct item *it, struct loaded *l,
			struct sa *v)
{
	sa_truncate(v, 0);
	int have = mbox_cache_get(&s->box, idx, MBOX_CACHE_PREVIEW, v);
	if (!have && !it->lazy && load(s, idx, l) && mime_preview(l->mime, v)) {
		mbox_cache_put(&s->box, idx, MBOX_CACHE_PREVIEW, v->s ? v->s : "", v->len);
		have = 1;
	}
	out(&s->c, "PREVIEW ");
	if (have)
		out_string(&s->c, v->s ? v->s : "", v->len);
	else
		out(&s->c, "NIL");
}

/* One message's FETCH reply; 0 when its file is gone. */
static int fetch_one(struct session *s, struct fetch *f, size_t idx, int uid, struct sa *v)
{
	struct mbox_msg *m = &s->box.msg[idx];
	struct loaded l = { 0 };
	char why[256];
	int ok = 1, flags_done = 0;

	if (m->gone)
		return 0;
	if (f->changedsince_set && m->modseq <= f->changedsince)
		return 1;
	if (f->needs_message && !load(s, idx, &l)) {
		unload(&l);
		return 0;
	}
	/* RFC 3516: a section that cannot be decoded fails the whole command, before any of it
	   is answered. */
	int decoded;
	for (size_t k = 0; k < f->n && !f->no; k++)
		if (f->item[k].kind == ITEM_BINARY || f->item[k].kind == ITEM_BINARY_SIZE)
			binary_get(l.mime, &f->item[k].sec, v, &decoded, &f->no);
	if (f->no) {
		unload(&l);
		return 0;
	}
	if (f->sets_seen && !s->box.readonly && !(m->flags & MBOX_SEEN)) {
		if (mbox_store(&s->box, idx, (struct mbox_change){ .add = MBOX_SEEN }, why,
			       sizeof why)) {
			flags_done = -1;	/* FLAGS goes into this reply even if not asked */
			condstore_commit(s);
		} else
			log_line("%s: unable to mark %u seen: %s", s->user, m->uid, why);
	}
	/* Once CONDSTORE is on, a FETCH that changed the flags says the UID and the modseq,
	   asked or not (RFC 7162 section 3.2.4); so does CHANGEDSINCE. IMAP4rev2 wants the UID
	   with FLAGS not asked for (RFC 9051 appendix E, 21). */
	int with_uid = uid || (flags_done == -1 && (s->condstore || s->rev2));
	int with_modseq = f->modseq || (flags_done == -1 && s->condstore);
	/* With UIDONLY the UID leads the reply, and UID is said only when asked for. */
	if (!out_fetch_start(s, idx))
		with_uid = 0;
	const char *sep = "";
	if (with_uid) {
		out(&s->c, "UID %u", m->uid);
		sep = " ";
	}
	if (with_modseq) {
		out(&s->c, "%s", sep);
		out_modseq(s, idx);
		sep = " ";
	}
	for (size_t k = 0; k < f->n && ok; k++) {
		const struct item *it = &f->item[k];
		if ((it->kind == ITEM_UID && with_uid) || it->kind == ITEM_MODSEQ)
			continue;
		if (it->kind == ITEM_FLAGS && flags_done == 1)
			continue;
		out(&s->c, "%s", sep);
		sep = " ";
		switch (it->kind) {
		case ITEM_FLAGS:
			out(&s->c, "FLAGS ");
			out_flag_list(s, m->flags, m->keywords);
			flags_done = 1;
			break;
		case ITEM_INTERNALDATE:
			out_internaldate(s, mbox_internaldate(&s->box, idx));
			break;
		case ITEM_SIZE:
			out(&s->c, "RFC822.SIZE %llu", message_vsize(s, idx, &l));
			break;
		case ITEM_UID:
			out(&s->c, "UID %u", m->uid);
			break;
		case ITEM_MODSEQ:	/* said first, with the UID */
			break;
		case ITEM_ENVELOPE:
		case ITEM_BODY:
		case ITEM_BODYSTRUCTURE:
			ok = structure(s, idx, &l, it->kind, v);
			if (ok) {
				/* lib/mime gives the list's contents, without its parentheses. */
				out(&s->c, "%s (", it->kind == ITEM_ENVELOPE ? "ENVELOPE" :
						   it->kind == ITEM_BODY ? "BODY" : "BODYSTRUCTURE");
				out_bytes(&s->c, v->s, v->len);
				out_bytes(&s->c, ")", 1);
			}
			break;
		case ITEM_EMAILID:
			ok = out_emailid(s, idx);
			break;
		case ITEM_THREADID:
			ok = out_threadid(s, idx);
			break;
		case ITEM_PREVIEW:
			out_preview(s, idx, it, &l, v);
			break;
		case ITEM_BINARY:
		case ITEM_BINARY_SIZE:
			binary_get(l.mime, &it->sec, v, &decoded, &f->no);
			binary_out(s, it->spec, it->kind == ITEM_BINARY_SIZE, it->partial, it->start,
				   it->count, v, decoded);
			break;
		case ITEM_RFC822:
		case ITEM_RFC822_HEADER:
		case ITEM_RFC822_TEXT:
		case ITEM_SECTION: {
			struct mime_section whole = { .nparts = 0, .kind = MIME_SECTION_ALL };
			const struct mime_section *sec = &it->sec;
			if (it->kind == ITEM_RFC822)
				sec = &whole;
			else if (it->kind == ITEM_RFC822_HEADER)
				whole.kind = MIME_SECTION_HEADER, sec = &whole;
			else if (it->kind == ITEM_RFC822_TEXT)
				whole.kind = MIME_SECTION_TEXT, sec = &whole;
			sa_truncate(v, 0);
			ok = mime_section_get(l.mime, sec, v);
			if (!ok)
				break;
			if (it->kind == ITEM_SECTION) {
				out(&s->c, "BODY[%s]", it->spec);
				if (it->partial)
					out(&s->c, "<%llu>", it->start);
				out(&s->c, " ");
			} else {
				out(&s->c, "%s ", it->kind == ITEM_RFC822 ? "RFC822" :
						  it->kind == ITEM_RFC822_HEADER ? "RFC822.HEADER" :
										   "RFC822.TEXT");
			}
			out_body_bytes(s, it, v->s ? v->s : "", v->len);
			break;
		}
		}
	}
	if (flags_done == -1) {
		out(&s->c, "%sFLAGS ", sep);
		out_flag_list(s, m->flags, m->keywords);
	}
	out(&s->c, ")\r\n");
	unload(&l);
	if (!ok)
		log_line("%s: out of memory fetching %u", s->user, m->uid);
	return 1;
}

void cmd_fetch(struct session *s, int uid, size_t arg)
{
	static struct fetch f;
	struct sa v = SA_ZERO;

	f.n = f.used = 0;
	f.sets_seen = f.needs_message = 0;
	f.modseq = f.changedsince_set = f.vanished = 0;
	f.no = 0;
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t items = arg + 1, end = items < cmd->ntok && cmd->tok[items].type == IMAP_LPAREN ?
					  imap_tok_skip(cmd, items) : items + 1;
	if (end > cmd->ntok || !parse_items(s, items, end, &f) || !items_allowed(s, &f) ||
	    !parse_modifiers(s, end, uid, &f)) {
		bad(&s->c, s->cf, "Invalid FETCH items");
		return;
	}
	if (f.modseq && !condstore_on(s)) {
		out(&s->c, "%s NO [SERVERBUG] Modseqs are not available\r\n", conn_tag(&s->c));
		return;
	}
	unsigned char *want = selected_set(s, uid, arg);
	if (!want)
		return;
	if (f.vanished) {
		struct mbox_uid_run *runs;
		size_t nruns;
		if (!uid_set_runs(s, arg, &runs, &nruns)) {
			free(want);
			bad(&s->c, s->cf, "Invalid message set");
			return;
		}
		out_vanished_earlier(s, f.changedsince, runs, nruns);
		free(runs);
	}
	size_t missing = 0;
	for (size_t i = 0; i < s->box.count && !f.no; i++)
		if (want[i] && !fetch_one(s, &f, i, uid, &v) && !f.no)
			missing++;
	free(want);
	sa_free(&v);
	announce_changes(s, uid);
	if (f.no)
		out(&s->c, "%s NO %s\r\n", conn_tag(&s->c), f.no);
	else if (missing)
		out(&s->c, "%s NO [EXPUNGEISSUED] Some messages were expunged meanwhile\r\n",
		    conn_tag(&s->c));
	else
		out(&s->c, "%s OK Fetch completed\r\n", conn_tag(&s->c));
}

/* What STORE's reply says of message idx: its flags unless .SILENT; with CONDSTORE its UID
   and modseq, even when .SILENT (RFC 7162 sections 3.1.3 and 3.2.4). */
static void out_stored(struct session *s, size_t idx, int silent)
{
	if (!silent) {
		out_flags(s, idx);
	} else if (s->condstore && s->box.modseq) {
		if (out_fetch_start(s, idx))
			out(&s->c, "UID %u ", s->box.msg[idx].uid);
		out_modseq(s, idx);
		out(&s->c, ")\r\n");
	}
}

/* STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags */
void cmd_store(struct session *s, int uid, size_t arg)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	char what[32], why[256];
	int mode = 0, silent = 0, conditional = 0;
	uint64_t unchangedsince = 0;

	size_t at = arg + 1;	/* the item's token */
	if (at < cmd->ntok && cmd->tok[at].type == IMAP_LPAREN) {
		size_t close = imap_tok_skip(cmd, at);
		if (close != at + 4 || !imap_tok_is(cmd, at + 1, "UNCHANGEDSINCE") ||
		    !arg_modseq(s, at + 2, 1, &unchangedsince))
			goto syntax;
		conditional = 1;
		at = close;
	}
	if (!imap_tok_cstr(cmd, at, what, sizeof what) || cmd->tok[at].type != IMAP_ATOM)
		goto syntax;
	char *w = what;
	if (*w == '+' || *w == '-')
		mode = *w++ == '+' ? 1 : -1;
	if (!strcasecmp(w, "FLAGS.SILENT"))
		silent = 1;
	else if (strcasecmp(w, "FLAGS"))
		goto syntax;
	size_t i = at + 1, end = cmd->ntok;
	if (i < cmd->ntok && cmd->tok[i].type == IMAP_LPAREN) {
		if (imap_tok_skip(cmd, i) != cmd->ntok)
			goto syntax;
		i++;
		end = cmd->ntok - 1;
	}
	unsigned flags = 0;
	uint32_t keywords = 0;
	static const char *const names[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					     "\\Draft" };
	/* Checked whole before anything changes: a bad command creates no keyword. */
	size_t first = i;
	for (; i < end; i++) {
		char word[256];
		if (cmd->tok[i].type != IMAP_ATOM || !imap_tok_cstr(cmd, i, word, sizeof word) ||
		    strpbrk(word, "[]%*"))
			goto syntax;
		if (word[0] == '\\') {
			size_t k = 0;
			while (k < 5 && strcasecmp(word, names[k]))
				k++;
			if (k < 5)
				flags |= 1u << k;
			else if (strcasecmp(word, "\\Recent"))
				goto syntax;
		}
	}
	if (conditional) {
		if (!condstore_on(s)) {
			out(&s->c, "%s NO [SERVERBUG] Modseqs are not available\r\n",
			    conn_tag(&s->c));
			return;
		}
		/* The test is against the modseqs as they are now, others' changes included;
		   no expunge is told in the middle of a STORE. */
		announce_changes(s, 0);
	}
	unsigned char *want = selected_set(s, uid, arg);
	if (!want)
		return;
	if (s->box.readonly) {
		free(want);
		out(&s->c, "%s NO [READ-ONLY] The folder is read-only\r\n", conn_tag(&s->c));
		return;
	}
	for (i = first; i < end; i++) {
		char word[256];
		imap_tok_cstr(cmd, i, word, sizeof word);
		if (word[0] == '\\')
			continue;
		int kw = mbox_keyword(&s->box, word, mode >= 0);
		if (kw >= 0) {
			keywords |= 1u << kw;
		} else if (mode >= 0) {
			free(want);
			out(&s->c, "%s NO [LIMIT] No room for more keywords in this folder\r\n",
			    conn_tag(&s->c));
			return;
		}
	}
	announce_keywords(s);
	/* FLAGS replaces: what it does not name goes. */
	struct mbox_change change = mode > 0 ? (struct mbox_change){ flags, 0, keywords, 0 } :
				    mode < 0 ? (struct mbox_change){ 0, flags, 0, keywords } :
				    (struct mbox_change){ flags, ~flags, keywords, ~keywords };
	size_t failed = 0, missing = 0, modified = 0;
	/* want[k]: 1 to store, 2 stored (to be told once the command has its modseq), 3 failed
	   UNCHANGEDSINCE. */
	for (size_t k = 0; k < s->box.count; k++) {
		if (!want[k])
			continue;
		struct mbox_msg *m = &s->box.msg[k];
		if (m->gone) {
			want[k] = 0;
			missing++;
			continue;
		}
		if (conditional && m->modseq > unchangedsince) {
			want[k] = 3;
			modified++;
			continue;
		}
		unsigned nf = mode > 0 ? m->flags | flags : mode < 0 ? m->flags & ~flags :
				 (m->flags & MBOX_RECENT) | flags;
		uint32_t nk = mode > 0 ? m->keywords | keywords :
			      mode < 0 ? m->keywords & ~keywords : keywords;
		if ((nf != m->flags || nk != m->keywords) &&
		    !mbox_store(&s->box, k, change, why, sizeof why)) {
			want[k] = 0;
			if (errno == ENOENT) {
				missing++;
				continue;
			}
			log_line("%s: unable to store flags of %u: %s", s->user, m->uid, why);
			failed++;
			continue;
		}
		want[k] = 2;
	}
	condstore_commit(s);
	/* The messages that failed UNCHANGEDSINCE, as numbers (UIDs for UID STORE) taken now:
	   the sync below may add to the view, and for UID STORE take expunged ones out. */
	uint32_t *failed_test = modified ? malloc(modified * sizeof *failed_test) : 0;
	size_t nfailed_test = 0;
	for (size_t k = 0; k < s->box.count; k++) {
		if (want[k] == 2)
			out_stored(s, k, silent);
		else if (want[k] == 3 && failed_test)
			failed_test[nfailed_test++] = uid ? s->box.msg[k].uid : (uint32_t)(k + 1);
	}
	free(want);
	announce_changes(s, uid);
	if (failed || (modified && !failed_test)) {
		out(&s->c, "%s NO [SERVERBUG] Some flags could not be stored\r\n", conn_tag(&s->c));
	} else if (modified) {
		/* RFC 7162 section 3.1.3: MODIFIED with the messages that failed the test. */
		out(&s->c, "%s OK [MODIFIED ", conn_tag(&s->c));
		out_number_set(s, failed_test, nfailed_test);
		out(&s->c, "] Conditional STORE failed\r\n");
	} else if (missing)
		out(&s->c, "%s NO [EXPUNGEISSUED] Some messages were expunged meanwhile\r\n",
		    conn_tag(&s->c));
	else
		out(&s->c, "%s OK Store completed\r\n", conn_tag(&s->c));
	free(failed_test);
	return;
syntax:
	bad(&s->c, s->cf, "STORE needs a set, FLAGS, +FLAGS or -FLAGS, and flags");
}

/* A list of UIDs, in the order given, as a UIDPLUS set: runs become a:b. */
static void out_uid_set(struct session *s, const uint32_t *u, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && u[j + 1] == u[j] + 1)
			j++;
		out(&s->c, i ? ",%u" : "%u", u[i]);
		if (j > i)
			out(&s->c, ":%u", u[j]);
		i = j + 1;
	}
}

void cmd_copy(struct session *s, int uid, size_t arg, int move)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	char dest[FOLDER_NAME_MAX], why[256];
	const char *tag = conn_tag(&s->c);

	if (arg + 2 != cmd->ntok || !arg_folder(s, arg + 1, dest, sizeof dest)) {
		bad(&s->c, s->cf, "%s needs a set and a folder", move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->box.readonly) {
		out(&s->c, "%s NO [READ-ONLY] The folder is read-only\r\n", tag);
		return;
	}
	unsigned char *want = selected_set(s, uid, arg);
	if (!want)
		return;
	size_t n = 0;
	for (size_t i = 0; i < s->box.count; i++)
		n += want[i] && !s->box.msg[i].gone;
	size_t *idx = malloc((n + 1) * sizeof *idx);
	uint32_t *from = malloc((n + 1) * sizeof *from), *to = malloc((n + 1) * sizeof *to);
	if (!idx || !from || !to) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", tag);
		goto done;
	}
	n = 0;
	for (size_t i = 0; i < s->box.count; i++)
		if (want[i] && !s->box.msg[i].gone) {
			from[n] = s->box.msg[i].uid;
			idx[n++] = i;
		}
	if (n == 0) {
		/* RFC 9051: an empty UID set is not an error. */
		out(&s->c, "%s OK No messages %s\r\n", tag, move ? "moved" : "copied");
		goto done;
	}
	/* A copy adds to the quota (a move takes away as much as it adds). */
	unsigned long long bytes = 0;
	for (size_t k = 0; k < n && !move; k++) {
		const struct mbox_msg *m = &s->box.msg[idx[k]];
		struct stat st;
		char path[4096];
		if (m->vsize)
			bytes += m->vsize;
		else if (snprintf(path, sizeof path, "%s/%s", s->box.dir, m->file) <
				 (int)sizeof path && stat(path, &st) == 0)
			bytes += (unsigned long long)st.st_size;
	}
	if (!move && over_quota(s->root, bytes, n)) {
		out(&s->c, "%s NO [OVERQUOTA] The mailbox is over its quota\r\n", tag);
		goto done;
	}
	uint32_t uidvalidity;
	if (!mbox_copy(&s->box, idx, n, dest, &uidvalidity, to, why, sizeof why)) {
		if (errno == ENOENT)
			out(&s->c, "%s NO [TRYCREATE] No such folder\r\n", tag);
		else
			answer_mbox_error(s, why);
		goto done;
	}
	if (move) {
		out(&s->c, "* OK [COPYUID %u ", uidvalidity);
		out_uid_set(s, from, n);
		out(&s->c, " ");
		out_uid_set(s, to, n);
		out(&s->c, "] Moved\r\n");
		memset(want, 0, s->box.count);
		for (size_t k = 0; k < n; k++) {
			struct mbox_msg *m = &s->box.msg[idx[k]];
			want[idx[k]] = 1;
			if (!(m->flags & MBOX_DELETED) &&
			    !mbox_store(&s->box, idx[k], (struct mbox_change){ .add = MBOX_DELETED },
					why, sizeof why))
				log_line("%s: unable to flag %u for MOVE: %s", s->user, m->uid, why);
		}
		size_t before = s->box.count;
		expunge_announced(s, want);
		announce_changes(s, 1);
		if (s->qresync && s->box.count < before && s->box.modseq)
			out_highestmodseq(s);	/* RFC 6851 section 4.4 */
		out(&s->c, "%s OK Move completed\r\n", tag);
		goto done;
	}
	announce_changes(s, 1);
	out(&s->c, "%s OK [COPYUID %u ", tag, uidvalidity);
	out_uid_set(s, from, n);
	out(&s->c, " ");
	out_uid_set(s, to, n);
	out(&s->c, "] Copy completed\r\n");
done:
	free(want);
	free(idx);
	free(from);
	free(to);
}

/* Expunges the \Deleted messages among want (all when 0), announcing each. */
void expunge_announced(struct session *s, const unsigned char *want)
{
	char why[256];
	struct mbox_events ev = { on_expunged, 0, s };
	if (!mbox_expunge(&s->box, &ev, want, why, sizeof why))
		log_line("%s: unable to expunge in %s: %s", s->user, s->box.name, why);
	flush_vanished(s);
}

void cmd_expunge(struct session *s, int uid, size_t arg)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	unsigned char *want = 0;

	if (cmd->ntok != arg + (uid ? 1 : 0)) {
		bad(&s->c, s->cf, uid ? "UID EXPUNGE needs a set" : "EXPUNGE takes no arguments");
		return;
	}
	if (s->box.readonly) {
		out(&s->c, "%s NO [READ-ONLY] The folder is read-only\r\n", conn_tag(&s->c));
		return;
	}
	if (uid && !(want = selected_set(s, 1, arg)))
		return;
	size_t before = s->box.count;
	expunge_announced(s, want);
	free(want);
	int expunged = s->box.count < before;
	announce_changes(s, 1);
	/* With QRESYNC the client learns the modseq of its expunges here, and only here
	   (RFC 7162 section 3.2.7). */
	if (s->qresync && expunged && s->box.modseq)
		out(&s->c, "%s OK [HIGHESTMODSEQ %" PRIu64 "] Expunge completed\r\n",
		    conn_tag(&s->c), s->box.highestmodseq);
	else
		out(&s->c, "%s OK Expunge completed\r\n", conn_tag(&s->c));
}
