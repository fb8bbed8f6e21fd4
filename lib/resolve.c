/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "resolve.h"

struct path {
	const char *key[RESOLVE_DEPTH_MAX + 1];
	int depth;
};

static int add(struct targets *out, enum target_kind kind, const char *addr, size_t n,
	       const char *maildir, size_t mlen, unsigned long long quota, const char *reason)
{
	for (size_t i = 0; i < out->n; i++)
		if (out->t[i].kind == kind && strlen(out->t[i].addr) == n &&
		    !memcmp(out->t[i].addr, addr, n))
			return 1;
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		struct target *t = realloc(out->t, cap * sizeof *t);
		if (!t)
			return 0;
		out->t = t;
		out->cap = cap;
	}
	struct target *t = &out->t[out->n];
	*t = (struct target){ .kind = kind, .quota = quota, .reason = reason };
	t->addr = strndup(addr, n);
	if (!t->addr)
		return 0;
	if (maildir) {
		t->maildir = strndup(maildir, mlen);
		if (!t->maildir) {
			free(t->addr);
			return 0;
		}
	}
	out->n++;
	return 1;
}

static int add_failed(struct targets *out, const char *addr, size_t n, const char *reason)
{
	return add(out, TARGET_FAILED, addr, n, 0, 0, 0, reason);
}

/* Mailbox key (lower-cased address): adds it, or 0 found / -1 error. */
static int try_mailbox(struct userdb *u, const char *key, size_t n, struct targets *out)
{
	struct userdb_mailbox mb;
	int r = userdb_mailbox(u, key, n, &mb);

	if (r != 1)
		return r;
	return add(out, TARGET_MAILBOX, key, n, mb.maildir, mb.maildir_len, mb.quota, 0) ? 1 : -1;
}

static int expand(struct userdb *u, const char *rcpt, size_t n, const char *delims,
		  struct path *path, struct targets *out);

static int expand_alias(struct userdb *u, const char *rcpt, size_t n, const char *key, size_t klen,
			const char *targets, size_t tlen, const char *delims, struct path *path,
			struct targets *out)
{
	for (int i = 0; i < path->depth; i++)
		if (!strcmp(path->key[i], key))
			return add_failed(out, rcpt, n, "5.4.6 alias loop") ? 1 : -1;
	if (path->depth == RESOLVE_DEPTH_MAX)
		return add_failed(out, rcpt, n, "5.4.6 alias expansion too deep") ? 1 : -1;
	path->key[path->depth++] = key;
	int r = 1;
	for (size_t i = 0; i < tlen && r > 0; i += strlen(targets + i) + 1) {
		const char *t = targets + i;
		size_t len = strlen(t);
		/* An alias that names itself keeps a copy in its own mailbox. */
		if (len == klen && !strncasecmp(t, key, klen)) {
			r = try_mailbox(u, key, klen, out);
			if (r == 0)
				r = add_failed(out, t, len, "5.1.1 unknown user") ? 1 : -1;
		} else {
			r = expand(u, t, len, delims, path, out);
		}
	}
	path->depth--;
	return r;
}

/* Looks up an alias, then a mailbox, by key; 1 handled, 0 neither exists, -1 error. */
static int try_key(struct userdb *u, const char *rcpt, size_t n, const char *key, size_t klen,
		   const char *delims, struct path *path, struct targets *out)
{
	const char *targets;
	size_t tlen;
	int r = userdb_alias(u, key, klen, &targets, &tlen);

	if (r != 0)
		return r < 0 ? -1 : expand_alias(u, rcpt, n, key, klen, targets, tlen, delims, path, out);
	if (key[0] == '@')
		return 0;
	return try_mailbox(u, key, klen, out);
}

/*
 * The lookups for one address (key, lower-cased): alias or mailbox, then the same for the base
 * address when the local part has an extension. 1 handled, 0 neither exists, -1 error.
 */
static int try_address(struct userdb *u, const char *rcpt, size_t n, const char *key, size_t klen,
		       const char *delims, struct path *path, struct targets *out)
{
	int r = try_key(u, rcpt, n, key, klen, delims, path, out);
	if (r != 0)
		return r;

	/* user+ext@domain: the same lookups for user@domain. */
	size_t at = addr_at(key, klen);
	size_t ext = strcspn(key, delims);
	if (!*delims || ext == 0 || ext >= at)
		return 0;
	char base[USERDB_KEY_MAX];
	memcpy(base, key, ext);
	memcpy(base + ext, key + at, klen - at + 1);
	return try_key(u, rcpt, n, base, ext + klen - at, delims, path, out);
}

static int expand(struct userdb *u, const char *rcpt, size_t n, const char *delims,
		  struct path *path, struct targets *out)
{
	char key[USERDB_KEY_MAX];
	size_t at = addr_at(rcpt, n);

	if (at == n || n >= sizeof key)
		return add_failed(out, rcpt, n, "5.1.3 bad address syntax") ? 1 : -1;
	const char *domain = rcpt + at + 1;
	size_t dlen = n - at - 1;
	const char *target;
	size_t tlen;
	int r = userdb_domain_target(u, domain, dlen, &target, &tlen);
	if (r < 0)
		return -1;
	if (r == 0)
		return add(out, TARGET_REMOTE, rcpt, n, 0, 0, 0, 0) ? 1 : -1;

	memcpy(key, rcpt, n);
	key[n] = 0;
	addr_lower(key, n);
	r = try_address(u, rcpt, n, key, n, delims, path, out);
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
		r = try_address(u, rcpt, n, alias_key, alias_len, delims, path, out);
		if (r != 0)
			return r;
	}

	/* The catch-all, "@domain". */
	r = try_key(u, rcpt, n, key + at, n - at, delims, path, out);
	if (r == 0 && tlen && alias_len < sizeof alias_key)
		r = try_key(u, rcpt, n, alias_key + at, alias_len - at, delims, path, out);
	if (r != 0)
		return r;
	return add_failed(out, key, n, "5.1.1 unknown user") ? 1 : -1;
}

int resolve(struct userdb *u, const char *rcpt, size_t n, const char *delimiters,
	    struct targets *out)
{
	struct path path = { .depth = 0 };

	errno = 0;
	if (expand(u, rcpt, n, delimiters, &path, out) < 0) {
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
	t->t = 0;
	t->n = t->cap = 0;
}
