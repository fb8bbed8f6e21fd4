/* postroom: ISC license, see LICENSE. */
/*
 * SORT and UID SORT (RFC 5256), with DISPLAYFROM and DISPLAYTO (RFC 5957, SORT=DISPLAY) and
 * SORT RETURN (RFC 5267, ESORT), and the keys SORT and THREAD compare (sort.h). The keys of a
 * message are one record of postroom-cache, so that a SORT of a folder whose keys a session
 * computed before reads that file and no message.
 */
#define _GNU_SOURCE	/* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_subject.h"
#include "log.h"
#include "mime.h"
#include "sort.h"

/* The record in postroom-cache: for each field, "<length>\n<bytes>". */
enum { F_SENT, F_REPLY, F_SUBJECT, F_FROM, F_TO, F_CC, F_DFROM, F_DTO, F_MSGID, F_REFS, F_N };

int sort_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
		if (x >= 'a' && x <= 'z')
			x -= 'a' - 'A';
		if (y >= 'a' && y <= 'z')
			y -= 'a' - 'A';
		if (x != y || !x)
			return x < y ? -1 : x > y;
	}
}

/* The header alone, parsed: the keys are all in it. */
static struct mime_msg *parse_header(const char *data, size_t len)
{
	const char *end = len && data[0] == '\n' ? data : memmem(data, len, "\n\n", 2);
	const char *crlf = memmem(data, len, "\r\n\r\n", 4);
	size_t n = len;
	if (end)
		n = (size_t)(end - data) + 1;
	if (crlf && (size_t)(crlf - data) + 2 < n)
		n = (size_t)(crlf - data) + 2;
	return mime_parse(data, n);
}

static int put_field(struct sa *rec, const char *s, size_t n)
{
	return sa_catf(rec, "%zu\n", n) && sa_catb(rec, s ? s : "", n);
}

/* A field's text up to its first line's end: mime_header_text gives one line a field. */
static size_t first_line(const struct sa *v)
{
	const char *nl = v->len ? memchr(v->s, '\n', v->len) : 0;
	return nl ? (size_t)(nl - v->s) : v->len;
}

/* The address keys of field: its first mailbox, and its display name (RFC 5957: the decoded
   name, or else "mailbox@domain"). */
static int put_address(struct sa *rec, const struct mime_msg *m, const char *field,
		       struct sa *display)
{
	struct sa mailbox = SA_ZERO, name = SA_ZERO, domain = SA_ZERO;
	int ok = mime_first_address(m, field, &mailbox, &name, &domain) &&
		 put_field(rec, mailbox.s, mailbox.len);
	if (ok && name.len)
		ok = mime_decode_words(name.s, name.len, display);
	if (ok && !display->len && mailbox.len)
		ok = sa_catb(display, mailbox.s, mailbox.len) && sa_catc(display, '@') &&
		     sa_catb(display, domain.s ? domain.s : "", domain.len);
	sa_free(&mailbox);
	sa_free(&name);
	sa_free(&domain);
	return ok;
}

/* The record of a message's header. */
static int compute(const struct mime_msg *m, struct sa *rec)
{
	struct sa v = SA_ZERO, base = SA_ZERO, dfrom = SA_ZERO, dto = SA_ZERO;
	char num[32] = "";
	time_t sent;
	int reply = 0;

	if (mime_sent_time(m, &sent))
		snprintf(num, sizeof num, "%lld", (long long)sent);
	int ok = mime_header_text(m, "Subject", &v) &&
		 imap_base_subject(v.s ? v.s : "", first_line(&v), &base, &reply) &&
		 put_field(rec, num, strlen(num)) && put_field(rec, reply ? "1" : "0", 1) &&
		 put_field(rec, base.s, base.len) && put_address(rec, m, "From", &dfrom) &&
		 put_address(rec, m, "To", &dto);
	struct sa ignored = SA_ZERO;
	ok = ok && put_address(rec, m, "Cc", &ignored) && put_field(rec, dfrom.s, dfrom.len) &&
	     put_field(rec, dto.s, dto.len);
	sa_truncate(&v, 0);
	v.len = 0;
	ok = ok && mime_msgids(m, "Message-ID", 1, 1, &v) && put_field(rec, v.s, v.len);
	v.len = 0;
	ok = ok && mime_msgids(m, "References", 0, SORT_REFS_MAX, &v);
	if (ok && !v.len)
		ok = mime_msgids(m, "In-Reply-To", 1, 1, &v);
	ok = ok && put_field(rec, v.s, v.len);
	sa_free(&v);
	sa_free(&base);
	sa_free(&dfrom);
	sa_free(&dto);
	sa_free(&ignored);
	return ok;
}

/* No Date: the internal date stands in, read only then (sort_keys_get). */
#define SENT_UNKNOWN ((time_t)INT64_MIN)

/* Cuts the record into k's strings; 0 when it is not what compute writes. */
static int split(const struct sa *rec, struct sort_keys *k)
{
	const char **field[F_N] = { 0, 0, &k->subject, &k->from, &k->to, &k->cc, &k->dfrom,
				    &k->dto, &k->msgid, &k->refs };
	char *space = malloc(rec->len + 1), *at = space;
	size_t off = 0;

	if (!space)
		return 0;
	k->space = space;
	k->sent = SENT_UNKNOWN;
	for (int f = 0; f < F_N; f++) {
		char *end;
		if (off >= rec->len)
			return 0;
		unsigned long long n = strtoull(rec->s + off, &end, 10);
		if (end == rec->s + off || *end != '\n' || n > rec->len - (size_t)(end + 1 - rec->s))
			return 0;
		off = (size_t)(end + 1 - rec->s);
		/* a NUL inside would cut a key short: the record is not ours */
		if (memchr(rec->s + off, 0, (size_t)n))
			return 0;
		memcpy(at, rec->s + off, (size_t)n);
		at[n] = 0;
		if (f == F_SENT && n)
			k->sent = (time_t)strtoll(at, 0, 10);
		else if (f == F_REPLY)
			k->reply = at[0] == '1';
		else if (field[f])
			*field[f] = at;
		at += n + 1;
		off += (size_t)n;
	}
	return off == rec->len;
}

static void empty_keys(struct sort_keys *k)
{
	free(k->space);
	*k = (struct sort_keys){ .sent = SENT_UNKNOWN, .subject = "", .from = "", .to = "",
				 .cc = "", .dfrom = "", .dto = "", .msgid = "", .refs = "" };
}

int sort_keys_get(struct session *s, size_t idx, struct sort_keys *k)
{
	struct sa rec = SA_ZERO;
	const char *data;
	size_t len;
	char why[256];
	int ok = 0;

	*k = (struct sort_keys){ 0 };
	if (mbox_cache_get(&s->box, idx, MBOX_CACHE_SORT_KEYS, &rec) && split(&rec, k)) {
		sa_free(&rec);
		if (k->sent == SENT_UNKNOWN)
			k->sent = mbox_internaldate(&s->box, idx);
		return 1;
	}
	sa_truncate(&rec, 0);
	rec.len = 0;
	if (mbox_read(&s->box, idx, &data, &len, why, sizeof why)) {
		struct mime_msg *m = parse_header(data, len);
		free(k->space);
		*k = (struct sort_keys){ 0 };
		ok = m && compute(m, &rec) && split(&rec, k);
		if (ok)
			mbox_cache_put(&s->box, idx, MBOX_CACHE_SORT_KEYS, rec.s, rec.len);
		if (m)
			mime_free(m);
		mbox_release(data, len);
	} else if (errno != ENOENT) {
		log_line("%s: unable to read message %u of %s: %s", s->user, s->box.msg[idx].uid,
			 s->box.name, why);
	}
	sa_free(&rec);
	if (!ok)
		empty_keys(k);
	if (k->sent == SENT_UNKNOWN)
		k->sent = mbox_internaldate(&s->box, idx);
	return ok;
}

void sort_keys_free(struct sort_keys *k)
{
	free(k->space);
	k->space = 0;
}

/* --- SORT ---------------------------------------------------------------------------------- */

enum criterion { C_ARRIVAL, C_CC, C_DATE, C_FROM, C_SIZE, C_SUBJECT, C_TO, C_DISPLAYFROM,
	C_DISPLAYTO };

#define CRITERIA_MAX 16

struct order {
	enum criterion c[CRITERIA_MAX];
	int reverse[CRITERIA_MAX];
	size_t n;
};

struct entry {
	size_t idx;
	struct sort_keys k;
	unsigned long long size;
};

/* qsort has no context argument: the order of the SORT being answered. */
static const struct order *current;
static struct session *current_session;

static int compare_one(const struct entry *a, const struct entry *b, enum criterion c)
{
	const struct mbox_msg *ma = &current_session->box.msg[a->idx];
	const struct mbox_msg *mb = &current_session->box.msg[b->idx];
	switch (c) {
	case C_ARRIVAL:
		return ma->internaldate < mb->internaldate ? -1 : ma->internaldate > mb->internaldate;
	case C_DATE:
		return a->k.sent < b->k.sent ? -1 : a->k.sent > b->k.sent;
	case C_SIZE:
		return a->size < b->size ? -1 : a->size > b->size;
	case C_CC:
		return sort_casecmp(a->k.cc, b->k.cc);
	case C_FROM:
		return sort_casecmp(a->k.from, b->k.from);
	case C_TO:
		return sort_casecmp(a->k.to, b->k.to);
	case C_SUBJECT:
		return sort_casecmp(a->k.subject, b->k.subject);
	case C_DISPLAYFROM:
		return sort_casecmp(a->k.dfrom, b->k.dfrom);
	case C_DISPLAYTO:
		return sort_casecmp(a->k.dto, b->k.dto);
	}
	return 0;
}

static int compare_entries(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	for (size_t i = 0; i < current->n; i++) {
		int r = compare_one(a, b, current->c[i]);
		if (r)
			return current->reverse[i] ? -r : r;
	}
	/* ties: by sequence number, whatever REVERSE says (RFC 5256 section 3) */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* "(" [REVERSE] key ... ")" at token *i. */
static int parse_order(struct session *s, size_t *i, struct order *o)
{
	static const char *const names[] = { "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT",
					      "TO", "DISPLAYFROM", "DISPLAYTO" };
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t at = *i;
	int reverse = 0;

	o->n = 0;
	if (at >= cmd->ntok || cmd->tok[at].type != IMAP_LPAREN)
		return 0;
	for (at++; at < cmd->ntok && cmd->tok[at].type != IMAP_RPAREN; at++) {
		if (imap_tok_is(cmd, at, "REVERSE")) {
			if (reverse)
				return 0;
			reverse = 1;
			continue;
		}
		size_t k = 0;
		while (k < sizeof names / sizeof *names && !imap_tok_is(cmd, at, names[k]))
			k++;
		if (k == sizeof names / sizeof *names || o->n == CRITERIA_MAX)
			return 0;
		o->c[o->n] = (enum criterion)k;
		o->reverse[o->n++] = reverse;
		reverse = 0;
	}
	if (at >= cmd->ntok || reverse || !o->n)
		return 0;
	*i = at + 1;
	return 1;
}

/* The size SORT compares, RFC822.SIZE, computed (and cached) when the view lacks it. */
static unsigned long long message_size(struct session *s, size_t idx)
{
	struct mbox_msg *m = &s->box.msg[idx];
	const char *data;
	size_t len;
	char why[256];

	if (m->vsize || !mbox_read(&s->box, idx, &data, &len, why, sizeof why))
		return m->vsize;
	struct mime_msg *mime = mime_parse(data, len);
	if (mime) {
		m->vsize = mime_vsize(mime);
		mbox_cache_vsize(&s->box, idx, m->vsize);
		mime_free(mime);
	}
	mbox_release(data, len);
	return m->vsize;
}

void cmd_sort(struct session *s, int uid, size_t arg)
{
	static struct order o;
	const char *tag = conn_tag(&s->c);
	unsigned opts = search_return_opts(s, &arg, 1);
	int needs_keys = 0, needs_size = 0;

	if (opts == RET_BAD || !parse_order(s, &arg, &o)) {
		bad(&s->c, s->cf, "SORT needs (criteria), a charset and search keys");
		return;
	}
	if (arg + 1 >= s->c.cmd.ntok) {
		bad(&s->c, s->cf, "SORT needs a charset and search keys");
		return;
	}
	if (!search_charset(s, arg))
		return;
	for (size_t i = 0; i < o.n; i++) {
		needs_size |= o.c[i] == C_SIZE;
		needs_keys |= o.c[i] != C_SIZE && o.c[i] != C_ARRIVAL;
	}
	unsigned char *match = calloc(s->box.count + 1, 1);
	struct entry *e = malloc((s->box.count + 1) * sizeof *e);
	uint32_t *v = malloc((s->box.count + 1) * sizeof *v);
	size_t *order = malloc((s->box.count + 1) * sizeof *order);
	size_t n = 0;
	if (!match || !e || !v || !order) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", tag);
		goto done;
	}
	if (!search_keys(s, arg + 1, match))
		goto done;
	for (size_t i = 0; i < s->box.count; i++) {
		if (!match[i])
			continue;
		e[n] = (struct entry){ .idx = i };
		if (needs_keys)
			sort_keys_get(s, i, &e[n].k);
		if (needs_size)
			e[n].size = message_size(s, i);
		n++;
	}
	for (size_t i = 0; i < o.n; i++)
		if (o.c[i] == C_ARRIVAL)
			for (size_t j = 0; j < n; j++)
				mbox_internaldate(&s->box, e[j].idx);	/* read before comparing */
	current = &o;
	current_session = s;
	qsort(e, n, sizeof *e, compare_entries);
	for (size_t i = 0; i < n; i++) {
		v[i] = uid ? s->box.msg[e[i].idx].uid : (uint32_t)(e[i].idx + 1);
		order[i] = e[i].idx;
	}
	uint64_t modseq = result_modseq(s, order, n, opts);
	if (opts & RET_ESEARCH) {
		out_esearch(s, uid, opts, v, n, 1, modseq);
	} else {
		out(&s->c, "* SORT");
		for (size_t i = 0; i < n; i++)
			out(&s->c, " %u", v[i]);
		out_search_modseq(s, modseq);	/* RFC 7162 section 3.1.9 */
	}
	announce_changes(s, uid);
	out(&s->c, "%s OK Sort completed\r\n", tag);
done:
	for (size_t i = 0; i < n; i++)
		sort_keys_free(&e[i].k);
	free(match);
	free(e);
	free(v);
	free(order);
}
