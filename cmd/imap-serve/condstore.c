/* postroom: ISC license, see LICENSE. */
/*
 * CONDSTORE and QRESYNC (RFC 7162), the session's side: when modseqs are turned on, how they
 * show in replies, and VANISHED. The modseqs themselves are lib/mailbox_modseq.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-serve.h"
#include "log.h"

int condstore_on(struct session *s)
{
	char why[256];
	int was = s->condstore;

	s->condstore = 1;
	if (!s->selected || s->box.modseq)
		return 1;
	if (!mbox_modseq_enable(&s->box, why, sizeof why)) {
		log_line("%s: unable to keep modseqs of %s: %s", s->user, s->box.name, why);
		return 0;
	}
	/* Turned on by a command while a folder is selected: the client learns the folder's
	   highest modseq now, as it would have from SELECT (RFC 7162 section 3.1). */
	if (!was)
		out_highestmodseq(s);
	return 1;
}

void out_highestmodseq(struct session *s)
{
	out(&s->c, "* OK [HIGHESTMODSEQ %" PRIu64 "] Highest\r\n", s->box.highestmodseq);
}

void out_modseq(struct session *s, size_t idx)
{
	out(&s->c, "MODSEQ (%" PRIu64 ")", s->box.msg[idx].modseq);
}

/* Gives the session's own changes their modseq before a reply tells of them. */
void condstore_commit(struct session *s)
{
	char why[256];
	if (s->box.modseq && !mbox_modseq_commit(&s->box, why, sizeof why))
		log_line("%s: unable to record modseqs in %s: %s", s->user, s->box.name, why);
}

void on_expunged(void *ctx, size_t seq)
{
	struct session *s = ctx;

	if (s->announced)
		s->announced--;
	if (!s->qresync && !s->uidonly) {
		out(&s->c, "* %zu EXPUNGE\r\n", seq);
		return;
	}
	/* One VANISHED for all of them, once the library is done (flush_vanished). The list
	   cannot grow past the view. */
	if (s->nvanished == s->capvanished) {
		size_t cap = s->capvanished ? s->capvanished * 2 : 64;
		uint32_t *v = realloc(s->vanished, cap * sizeof *v);
		if (!v) {
			/* The client would lose count of the messages: better it starts again. */
			out(&s->c, "* BYE Out of memory\r\n");
			out_flush(&s->c);
			log_line("%s: out of memory telling of expunges", s->user);
			exit(111);
		}
		s->vanished = v;
		s->capvanished = cap;
	}
	s->vanished[s->nvanished++] = s->box.msg[seq - 1].uid;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void out_uid_runs(struct session *s, const struct mbox_uid_run *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out(&s->c, i ? ",%" PRIu32 : "%" PRIu32, r[i].lo);
		if (r[i].hi > r[i].lo)
			out(&s->c, ":%" PRIu32, r[i].hi);
	}
}

void flush_vanished(struct session *s)
{
	if (!s->nvanished)
		return;
	qsort(s->vanished, s->nvanished, sizeof *s->vanished, uid_cmp);
	out(&s->c, "* VANISHED ");
	for (size_t i = 0; i < s->nvanished;) {
		size_t j = i;
		while (j + 1 < s->nvanished && s->vanished[j + 1] == s->vanished[j] + 1)
			j++;
		out(&s->c, i ? ",%" PRIu32 : "%" PRIu32, s->vanished[i]);
		if (j > i)
			out(&s->c, ":%" PRIu32, s->vanished[j]);
		i = j + 1;
	}
	out(&s->c, "\r\n");
	s->nvanished = 0;
	free(s->vanished);
	s->vanished = 0;
	s->capvanished = 0;
}

void out_vanished_earlier(struct session *s, uint64_t since, const struct mbox_uid_run *known,
			  size_t nknown)
{
	struct mbox_uid_run *gone;
	size_t n;
	char why[256];

	if (!mbox_modseq_vanished(&s->box, since, known, nknown, &gone, &n, why, sizeof why)) {
		log_line("%s: unable to tell what vanished from %s: %s", s->user, s->box.name, why);
		return;
	}
	if (n) {
		out(&s->c, "* VANISHED (EARLIER) ");
		out_uid_runs(s, gone, n);
		out(&s->c, "\r\n");
	}
	free(gone);
}

/* A mod-sequence-value (RFC 7162: 1 to 2^63-1), or with zero_ok also 0. */
int arg_modseq(struct session *s, size_t i, int zero_ok, uint64_t *v)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	char num[24];

	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_ATOM ||
	    !imap_tok_cstr(cmd, i, num, sizeof num))
		return 0;
	uint64_t n = 0;
	for (const char *p = num; *p; p++) {
		if (*p < '0' || *p > '9' || n > (INT64_MAX - (uint64_t)(*p - '0')) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (!num[0] || (num[0] == '0' && num[1]) || (!n && !zero_ok))
		return 0;
	*v = n;
	return 1;
}

/* One number of a set: 1 to 2^32-1, or "*" as star when star is not 0. */
static int set_number(const char **p, uint32_t star, unsigned long long *v)
{
	const char *s = *p;
	unsigned long long n = 0;

	if (*s == '*' && star) {
		*v = star;
		*p = s + 1;
		return 1;
	}
	while (*s >= '0' && *s <= '9' && n <= UINT32_MAX)
		n = n * 10 + (unsigned)(*s++ - '0');
	if (s == *p || !n || n > UINT32_MAX)
		return 0;
	*v = n;
	*p = s;
	return 1;
}

/* A UID set of the client's as runs in *out (malloc'd): any UIDs, and "*" only when star is
   not 0 (known-uids may not have it). */
static int arg_uid_runs(struct session *s, size_t i, uint32_t star, struct mbox_uid_run **out,
			size_t *n)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	char set[8192];

	*out = 0;
	*n = 0;
	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_ATOM ||
	    !imap_tok_cstr(cmd, i, set, sizeof set))
		return 0;
	size_t cap = 1;
	for (const char *p = set; *p; p++)
		cap += *p == ',';
	struct mbox_uid_run *r = malloc(cap * sizeof *r);
	if (!r)
		return 0;
	const char *p = set;
	for (;;) {
		unsigned long long lo, hi;
		if (!set_number(&p, star, &lo))
			break;
		hi = lo;
		if (*p == ':' && (p++, !set_number(&p, star, &hi)))
			break;
		if (lo > hi) {
			unsigned long long t = lo;
			lo = hi;
			hi = t;
		}
		r[(*n)++] = (struct mbox_uid_run){ (uint32_t)lo, (uint32_t)hi };
		if (!*p) {
			*out = r;
			return 1;
		}
		if (*p++ != ',')
			break;
	}
	free(r);
	*n = 0;
	return 0;
}

int uid_set_runs(struct session *s, size_t i, struct mbox_uid_run **out, size_t *n)
{
	/* "*" reaches past the last message: UIDs above it may have been expunged too. */
	return arg_uid_runs(s, i, UINT32_MAX, out, n);
}

static void runs_merge(struct mbox_uid_run *r, size_t *n);

/*
 * SELECT's parameters from token i (RFC 4466's list): (CONDSTORE) or (QRESYNC (uidvalidity
 * modseq [known-uids [(seqs uids)]])). 0 when they are not valid.
 */
int select_params_parse(struct session *s, size_t i, struct select_params *p)
{
	const struct imap_cmd *cmd = &s->c.cmd;

	*p = (struct select_params){ 0 };
	if (i == cmd->ntok)
		return 1;
	if (cmd->tok[i].type != IMAP_LPAREN || imap_tok_skip(cmd, i) != cmd->ntok)
		return 0;
	for (i++; i + 1 < cmd->ntok;) {
		if (imap_tok_is(cmd, i, "CONDSTORE")) {
			p->condstore = 1;
			i++;
			continue;
		}
		if (!imap_tok_is(cmd, i, "QRESYNC") || p->qresync || i + 1 >= cmd->ntok ||
		    cmd->tok[i + 1].type != IMAP_LPAREN)
			return 0;
		size_t end = imap_tok_skip(cmd, i + 1) - 1;	/* its ")" */
		size_t k = i + 2;
		char num[16];
		unsigned long uv;
		char *e;
		if (k >= end || cmd->tok[k].type != IMAP_ATOM ||
		    !imap_tok_cstr(cmd, k, num, sizeof num) || num[0] < '1' || num[0] > '9')
			return 0;
		errno = 0;
		uv = strtoul(num, &e, 10);
		if (*e || errno || uv > UINT32_MAX || !arg_modseq(s, k + 1, 0, &p->since) ||
		    k + 1 >= end)
			return 0;
		p->uidvalidity = (uint32_t)uv;
		k += 2;
		if (k < end && cmd->tok[k].type == IMAP_ATOM) {
			if (!arg_uid_runs(s, k, 0, &p->known, &p->nknown))
				return 0;
			runs_merge(p->known, &p->nknown);
			k++;
		}
		if (k < end && s->uidonly) {
			p->uidrequired = 1;	/* seq-match-data has message numbers */
			return 0;
		}
		if (k < end) {
			/* seq-match-data: checked, then not needed, since the folder remembers
			   its expunges or the answer covers every missing UID. */
			struct mbox_uid_run *a, *b;
			size_t na, nb;
			int ok = cmd->tok[k].type == IMAP_LPAREN && imap_tok_skip(cmd, k) == end &&
				 arg_uid_runs(s, k + 1, 0, &a, &na);
			if (ok) {
				ok = arg_uid_runs(s, k + 2, 0, &b, &nb) && k + 3 == end - 1;
				if (ok)
					free(b);
				free(a);
			}
			if (!ok)
				return 0;
		}
		p->qresync = 1;
		i = end + 1;
	}
	return 1;
}

void select_params_free(struct select_params *p)
{
	free(p->known);
	p->known = 0;
}

static int run_cmp(const void *a, const void *b)
{
	const struct mbox_uid_run *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* uid in one of the runs r[0..n), sorted and merged (runs_merge). */
static int in_runs(const struct mbox_uid_run *r, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].lo <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && r[lo - 1].hi >= uid;
}

/* Sorts runs and merges those that overlap or touch: n becomes their new count. */
static void runs_merge(struct mbox_uid_run *r, size_t *n)
{
	if (!*n)
		return;
	qsort(r, *n, sizeof *r, run_cmp);
	size_t o = 0;
	for (size_t i = 1; i < *n; i++) {
		if ((uint64_t)r[i].lo <= (uint64_t)r[o].hi + 1) {
			if (r[i].hi > r[o].hi)
				r[o].hi = r[i].hi;
		} else {
			r[++o] = r[i];
		}
	}
	*n = o + 1;
}

void qresync_select(struct session *s, const struct select_params *p)
{
	if (p->uidvalidity != s->box.uidvalidity)
		return;	/* the client's copy is of another folder: it starts over */
	out_vanished_earlier(s, p->since, p->known, p->nknown);
	for (size_t i = 0; i < s->box.count; i++) {
		const struct mbox_msg *m = &s->box.msg[i];
		if (m->gone || m->modseq <= p->since)
			continue;
		/* Only what the client knows of can have changed for it. */
		if (p->nknown && !in_runs(p->known, p->nknown, m->uid))
			continue;
		out_flags(s, i);
	}
}
