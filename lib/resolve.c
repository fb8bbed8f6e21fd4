/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "resolve.h"

/*
 * The aliases met in one recipient's expansion. Each is expanded once: met again while it is
 * being expanded, it is a loop; met again later, its targets are already there. So the work is
 * linear in the size of the database, where following every path was exponential (a chain of
 * aliases each naming the next several times).
 */
enum memo_state { MEMO_NONE, MEMO_EXPANDING, MEMO_EXPANDED };

struct memo_entry {
	char *key;		/* lower-cased alias key; 0: an empty slot */
	size_t len;
	enum memo_state state;
};

struct memo {
	struct memo_entry *e;	/* open addressing, at most half full */
	size_t n;
	size_t nslot;
};

/* One recipient's expansion. */
struct ctx {
	struct userdb *u;
	const char *delims;
	const char *postmaster;	/* rc->postmaster */
	int in_postmaster;	/* expanding the postmaster address: no fallback from within it */
	struct targets mine;	/* its targets, merged into the caller's at the end */
	struct memo memo;
	unsigned long lookups;
	int depth;
	int loop;		/* an alias was met while it was being expanded */
	unsigned long cut;	/* expansions cut short at RESOLVE_DEPTH_MAX so far */
	int over;		/* a bound was passed: the recipient fails as a whole */
};

/* FNV-1a, over a tag byte and the bytes of s. */
static size_t hash(unsigned char tag, const char *s, size_t n)
{
	uint64_t h = 14695981039346656037u;

	h = (h ^ tag) * 1099511628211u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return (size_t)h;
}

/* The hash slot of (kind, addr) in t (t->nslot > 0): its entry, or the empty slot for it. */
static size_t *target_slot(const struct targets *t, enum target_kind kind, const char *addr,
			   size_t n)
{
	size_t mask = t->nslot - 1;

	for (size_t i = hash((unsigned char)kind, addr, n) & mask;; i = (i + 1) & mask) {
		size_t *s = &t->slot[i];
		if (!*s)
			return s;
		const struct target *x = &t->t[*s - 1];
		if (x->kind == kind && strlen(x->addr) == n && !memcmp(x->addr, addr, n))
			return s;
	}
}

static int targets_has(const struct targets *t, enum target_kind kind, const char *addr, size_t n)
{
	return t->nslot && *target_slot(t, kind, addr, n);
}

/* Appends *x, which t does not hold yet; t takes over its strings. 1, or 0 (no memory). */
static int targets_append(struct targets *t, const struct target *x)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct target *a = cap < SIZE_MAX / 2 / sizeof *a ? realloc(t->t, cap * sizeof *a) : 0;
		if (!a)
			return 0;
		t->t = a;
		t->cap = cap;
	}
	if ((t->n + 1) * 2 > t->nslot) {
		size_t nslot = t->nslot ? t->nslot * 2 : 16;
		size_t *slot = calloc(nslot, sizeof *slot);
		if (!slot)
			return 0;
		free(t->slot);
		t->slot = slot;
		t->nslot = nslot;
		for (size_t i = 0; i < t->n; i++)
			*target_slot(t, t->t[i].kind, t->t[i].addr, strlen(t->t[i].addr)) = i + 1;
	}
	*target_slot(t, x->kind, x->addr, strlen(x->addr)) = t->n + 1;
	t->t[t->n++] = *x;
	return 1;
}

/* The memo slot of key (m->nslot > 0): its entry, or the empty slot for it. */
static struct memo_entry *memo_slot(const struct memo *m, const char *key, size_t n)
{
	size_t mask = m->nslot - 1;

	for (size_t i = hash(0, key, n) & mask;; i = (i + 1) & mask) {
		struct memo_entry *e = &m->e[i];
		if (!e->key || (e->len == n && !memcmp(e->key, key, n)))
			return e;
	}
}

static enum memo_state memo_get(const struct memo *m, const char *key, size_t n)
{
	if (!m->nslot)
		return MEMO_NONE;
	const struct memo_entry *e = memo_slot(m, key, n);
	return e->key ? e->state : MEMO_NONE;
}

/* Sets key's state, adding it if new. 1, or 0 (no memory). */
static int memo_set(struct memo *m, const char *key, size_t n, enum memo_state state)
{
	struct memo_entry *e = m->nslot ? memo_slot(m, key, n) : 0;

	if (e && e->key) {
		e->state = state;
		return 1;
	}
	if ((m->n + 1) * 2 > m->nslot) {
		struct memo old = *m;
		m->nslot = old.nslot ? old.nslot * 2 : 64;
		m->e = calloc(m->nslot, sizeof *m->e);
		if (!m->e) {
			*m = old;
			return 0;
		}
		for (size_t i = 0; i < old.nslot; i++)
			if (old.e[i].key)
				*memo_slot(m, old.e[i].key, old.e[i].len) = old.e[i];
		free(old.e);
	}
	e = memo_slot(m, key, n);
	e->key = malloc(n ? n : 1);
	if (!e->key)
		return 0;
	memcpy(e->key, key, n);
	e->len = n;
	e->state = state;
	m->n++;
	return 1;
}

static void memo_free(struct memo *m)
{
	for (size_t i = 0; i < m->nslot; i++)
		free(m->e[i].key);
	free(m->e);
	*m = (struct memo){ 0 };
}

/* Counts one database lookup; 0 (and the expansion over its bound) past RESOLVE_LOOKUPS_MAX. */
static int lookup_ok(struct ctx *c)
{
	if (c->lookups == RESOLVE_LOOKUPS_MAX) {
		c->over = 1;
		return 0;
	}
	c->lookups++;
	return 1;
}

/* Adds a target to this recipient's, once; past RESOLVE_TARGETS_MAX, marks it over. 1 or -1. */
static int add(struct ctx *c, enum target_kind kind, const char *addr, size_t n,
	       const char *maildir, size_t mlen, unsigned long long quota, const char *reason)
{
	if (targets_has(&c->mine, kind, addr, n))
		return 1;
	if (c->mine.n == RESOLVE_TARGETS_MAX) {
		c->over = 1;
		return 1;
	}
	struct target t = { .kind = kind, .quota = quota, .reason = reason };
	t.addr = strndup(addr, n);
	if (maildir)
		t.maildir = strndup(maildir, mlen);
	if (!t.addr || (maildir && !t.maildir) || !targets_append(&c->mine, &t)) {
		free(t.addr);
		free(t.maildir);
		return -1;
	}
	return 1;
}

static int add_failed(struct ctx *c, const char *addr, size_t n, const char *reason)
{
	return add(c, TARGET_FAILED, addr, n, 0, 0, 0, reason);
}

/* Mailbox key (lower-cased address): adds it, or 0 found / -1 error. */
static int try_mailbox(struct ctx *c, const char *key, size_t n)
{
	struct userdb_mailbox mb;

	if (!lookup_ok(c))
		return 1;
	int r = userdb_mailbox(c->u, key, n, &mb);
	if (r != 1)
		return r;
	return add(c, TARGET_MAILBOX, key, n, mb.maildir, mb.maildir_len, mb.quota, 0);
}

static int expand(struct ctx *c, const char *rcpt, size_t n);

static int expand_alias(struct ctx *c, const char *rcpt, size_t n, const char *key, size_t klen,
			const char *targets, size_t tlen)
{
	if (c->depth == RESOLVE_DEPTH_MAX) {
		c->cut++;
		return add_failed(c, rcpt, n, "5.4.6 alias expansion too deep");
	}
	if (!memo_set(&c->memo, key, klen, MEMO_EXPANDING))
		return -1;
	unsigned long cut = c->cut;
	c->depth++;
	int r = 1;
	for (size_t i = 0; i < tlen && r > 0 && !c->over; i += strlen(targets + i) + 1) {
		const char *t = targets + i;
		size_t len = strlen(t);
		/* An alias that names itself keeps a copy in its own mailbox. */
		if (len == klen && !strncasecmp(t, key, klen)) {
			r = try_mailbox(c, key, klen);
			if (r == 0)
				r = add_failed(c, t, len, "5.1.1 unknown user");
		} else {
			r = expand(c, t, len);
		}
	}
	c->depth--;
	/* Cut short somewhere below: met again nearer the top, it is expanded again, deeper. */
	if (r > 0 && !memo_set(&c->memo, key, klen, c->cut == cut ? MEMO_EXPANDED : MEMO_NONE))
		return -1;
	return r;
}

/* Looks up an alias, then a mailbox, by key; 1 handled, 0 neither exists, -1 error. */
static int try_key(struct ctx *c, const char *rcpt, size_t n, const char *key, size_t klen)
{
	const char *targets;
	size_t tlen;

	/* Met before: its targets are there already, or it is a loop, which adds nothing. */
	switch (memo_get(&c->memo, key, klen)) {
	case MEMO_EXPANDING:
		c->loop = 1;
		return 1;
	case MEMO_EXPANDED:
		return 1;
	case MEMO_NONE:
		break;
	}
	if (!lookup_ok(c))
		return 1;
	int r = userdb_alias(c->u, key, klen, &targets, &tlen);
	if (r != 0)
		return r < 0 ? -1 : expand_alias(c, rcpt, n, key, klen, targets, tlen);
	if (key[0] == '@')
		return 0;
	return try_mailbox(c, key, klen);
}

/*
 * The lookups for one address (key, lower-cased): alias or mailbox, then the same for the base
 * address when the local part has an extension. 1 handled, 0 neither exists, -1 error.
 */
static int try_address(struct ctx *c, const char *rcpt, size_t n, const char *key, size_t klen)
{
	int r = try_key(c, rcpt, n, key, klen);
	if (r != 0)
		return r;

	/* user+ext@domain: the same lookups for user@domain. */
	size_t at = addr_at(key, klen);
	size_t ext = strcspn(key, c->delims);
	if (!*c->delims || ext == 0 || ext >= at)
		return 0;
	char base[USERDB_KEY_MAX];
	memcpy(base, key, ext);
	memcpy(base + ext, key + at, klen - at + 1);
	return try_key(c, rcpt, n, base, ext + klen - at);
}

/*
 * postmaster@ a domain of ours that has no address for it: the configured postmaster address,
 * or postmaster@ the first domain. 0 when that is this very address (nowhere else to go).
 */
static int postmaster_fallback(struct ctx *c, const char *key, size_t n)
{
	char first[USERDB_KEY_MAX];
	const char *pm = c->postmaster;

	if (c->in_postmaster)
		return 0;
	if (!pm || !*pm) {
		memcpy(first, "postmaster@", 11);
		int r = userdb_first_domain(c->u, first + 11, sizeof first - 11);
		if (r <= 0)
			return r;
		pm = first;
	}
	size_t len = strlen(pm);
	if (len == n && !strncasecmp(pm, key, n))
		return 0;
	c->in_postmaster = 1;
	int r = expand(c, pm, len);
	c->in_postmaster = 0;
	return r;
}

static int expand(struct ctx *c, const char *rcpt, size_t n)
{
	char key[USERDB_KEY_MAX];
	size_t at = addr_at(rcpt, n);

	if (at == n || n >= sizeof key)
		return add_failed(c, rcpt, n, "5.1.3 bad address syntax");
	const char *domain = rcpt + at + 1;
	size_t dlen = n - at - 1;
	const char *target;
	size_t tlen;
	if (!lookup_ok(c))
		return 1;
	int r = userdb_domain_target(c->u, domain, dlen, &target, &tlen);
	if (r < 0)
		return -1;
	if (r == 0)
		return add(c, TARGET_REMOTE, rcpt, n, 0, 0, 0, 0);

	memcpy(key, rcpt, n);
	key[n] = 0;
	addr_lower(key, n);
	r = try_address(c, rcpt, n, key, n);
	if (r != 0)
		return r;

	/*
	 * An alias domain (PostfixAdmin's alias_domain): local@domain is local@target, unless
	 * domain itself has an alias or mailbox for it, and domain's own catch-all comes before
	 * target's, as in Postfix's lookup order with PostfixAdmin's maps.
	 */
	char alias_key[USERDB_KEY_MAX];
	size_t alias_len = at + 1 + tlen;
	if (tlen && alias_len < sizeof alias_key) {
		memcpy(alias_key, key, at + 1);
		memcpy(alias_key + at + 1, target, tlen);
		alias_key[alias_len] = 0;
		addr_lower(alias_key, alias_len);
		r = try_address(c, rcpt, n, alias_key, alias_len);
		if (r != 0)
			return r;
	}

	/* The catch-all, "@domain". */
	r = try_key(c, rcpt, n, key + at, n - at);
	if (r == 0 && tlen && alias_len < sizeof alias_key)
		r = try_key(c, rcpt, n, alias_key + at, alias_len - at);
	if (r == 0 && at == 10 && !memcmp(key, "postmaster", 10))
		r = postmaster_fallback(c, key, n);
	if (r != 0)
		return r;
	return add_failed(c, key, n, "5.1.1 unknown user");
}

static int deliverable(const struct targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->t[i].kind != TARGET_FAILED)
			return 1;
	return 0;
}

/* Moves the targets of from that out does not hold yet into out. 1, or 0 (no memory). */
static int targets_merge(struct targets *out, struct targets *from)
{
	for (size_t i = 0; i < from->n; i++) {
		struct target *x = &from->t[i];
		if (targets_has(out, x->kind, x->addr, strlen(x->addr)))
			continue;
		if (!targets_append(out, x))
			return 0;
		x->addr = x->maildir = 0;
	}
	return 1;
}

void resolve_config_env(struct resolve_config *rc)
{
	const char *delimiters = getenv("RECIPIENT_DELIMITER");

	rc->delimiters = delimiters ? delimiters : "+";
	rc->postmaster = getenv("POSTMASTER");
}

int resolve(struct userdb *u, const char *rcpt, size_t n, const struct resolve_config *rc,
	    struct targets *out)
{
	struct ctx c = { .u = u, .delims = rc->delimiters, .postmaster = rc->postmaster,
			 .mine = TARGETS_ZERO };

	errno = 0;
	int r = expand(&c, rcpt, n);
	if (r > 0 && c.over) {
		/* All or nothing: a part of a list is not what its owner asked for. */
		targets_free(&c.mine);
		c.over = 0;
		r = add_failed(&c, rcpt, n, "5.4.6 alias expansion too large");
	} else if (r > 0 && c.loop && !deliverable(&c.mine)) {
		r = add_failed(&c, rcpt, n, "5.4.6 alias loop");
	}
	int ok = r > 0 && targets_merge(out, &c.mine);
	targets_free(&c.mine);
	memo_free(&c.memo);
	if (!ok) {
		if (!errno)
			errno = ENOMEM;
		return 0;
	}
	return 1;
}

void targets_free(struct targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->t[i].addr);
		free(t->t[i].maildir);
	}
	free(t->t);
	free(t->slot);
	*t = (struct targets)TARGETS_ZERO;
}
