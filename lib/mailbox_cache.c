/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mailbox-internal.h"

/*
 * postroom-cache: what is costly to compute from a message (its RFC822.SIZE, ENVELOPE, BODY,
 * BODYSTRUCTURE, the decoded header fields SEARCH looks in most, the keys SORT and THREAD
 * compare, and the PREVIEW text), keyed by UID, so that a
 * client's FETCH of a whole folder reads one file instead of every message. It is only a
 * cache: a file that is missing, of another UIDVALIDITY, or wrong in any byte is ignored
 * whole, and a session that cannot write it loses nothing.
 *   postroom-cache 1 <uidvalidity>\n
 *   <uid> W <vsize>\n
 *   <uid> E|B|S|H|T|P <length>\n<length bytes>\n
 * A session reads it when it selects the folder, and again when it needs a value after it
 * rested (mbox_rest). It is rewritten whole (temporary file, rename) when a session that added
 * to it rests or closes the folder, keeping only messages still in the folder
 * and at most CACHE_MAX bytes of strings, those of the newest messages first, which are the
 * ones clients fetch.
 */

#define CACHE_MAX (32u << 20)
#define VALUE_MAX (1u << 20)	/* a longer value is computed each time */

static const char kinds[] = "EBSHTP";	/* by enum mbox_cache_kind */
#define KINDS 6

struct centry {
	uint32_t uid;
	unsigned long long vsize;
	char *s[KINDS];
	uint32_t n[KINDS];
};

struct mbox_cache {
	struct centry *e;	/* UID order */
	size_t n, cap;
	int dirty;
	int loaded;	/* the file's entries are in e; before that, e holds only this
			   session's own, which win over the file's when it is read */
	struct stat file;	/* the file as read (st_ino 0: there was none) */
};

static void entries_free(struct mbox_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (int k = 0; k < KINDS; k++)
			free(c->e[i].s[k]);
	free(c->e);
	c->e = 0;
	c->n = c->cap = 0;
}

void mbox_cache_free(struct mbox *m)
{
	if (!m->cache)
		return;
	entries_free(m->cache);
	free(m->cache);
	m->cache = 0;
}

/* The entry of uid: its index, or where it would go (*found 0). */
static size_t find(const struct mbox_cache *c, uint32_t uid, int *found)
{
	size_t lo = 0, hi = c->n;

	/* Most lookups are for the newest messages, at the end. */
	if (c->n && c->e[c->n - 1].uid < uid) {
		*found = 0;
		return c->n;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->e[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < c->n && c->e[lo].uid == uid;
	return lo;
}

/* The entry of uid, made when missing; 0 when out of memory. */
static struct centry *entry(struct mbox_cache *c, uint32_t uid)
{
	int found;
	size_t i = find(c, uid, &found);

	if (found)
		return &c->e[i];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct centry *e = realloc(c->e, cap * sizeof *e);
		if (!e)
			return 0;
		c->e = e;
		c->cap = cap;
	}
	memmove(c->e + i + 1, c->e + i, (c->n - i) * sizeof *c->e);
	c->e[i] = (struct centry){ .uid = uid };
	c->n++;
	return &c->e[i];
}

/* A decimal number at *p ending with the byte end; 0 when it is not one. */
static int number(const char **p, const char *limit, char end, unsigned long long *v)
{
	const char *s = *p;
	size_t n = 0;

	while (s + n < limit && s[n] >= '0' && s[n] <= '9')
		n++;
	if (!n || n > 19 || s + n >= limit || s[n] != end)
		return 0;
	*v = strtoull(s, 0, 10);
	*p = s + n + 1;
	return 1;
}

static int parse(struct mbox_cache *c, const char *text, size_t len, uint32_t uidvalidity)
{
	const char *p = text, *end = text + len;
	char head[64];
	int hl = snprintf(head, sizeof head, "postroom-cache 1 %lu\n", (unsigned long)uidvalidity);

	if (len < (size_t)hl || memcmp(text, head, (size_t)hl))
		return 0;
	p += hl;
	uint32_t last = 0;
	while (p < end) {
		unsigned long long uid, v;
		if (!number(&p, end, ' ', &uid) || !uid || uid > UINT32_MAX || uid < last ||
		    end - p < 2 || p[1] != ' ')
			return 0;
		char kind = p[0];
		p += 2;
		if (!number(&p, end, '\n', &v))
			return 0;
		struct centry *e = entry(c, (uint32_t)uid);
		if (!e)
			return 0;
		last = (uint32_t)uid;
		if (kind == 'W') {
			e->vsize = v;
			continue;
		}
		const char *k = strchr(kinds, kind);
		if (!k || !kind || v > VALUE_MAX || (size_t)(end - p) < v + 1 || p[v] != '\n')
			return 0;
		int i = (int)(k - kinds);
		free(e->s[i]);
		if (!(e->s[i] = malloc(v + 1)))
			return 0;
		memcpy(e->s[i], p, v);
		e->s[i][v] = 0;
		e->n[i] = (uint32_t)v;
		p += v + 1;
	}
	return 1;
}

/* The cache as an empty one that has not read its file. */
static struct mbox_cache *cache_of(struct mbox *m)
{
	if (!m->cache)
		m->cache = calloc(1, sizeof *m->cache);
	return m->cache;
}

/* Reads the file into c once, keeping what c already holds (newer than the file). */
static void read_file(struct mbox *m, struct mbox_cache *c)
{
	struct mbox_cache f = { 0 };
	char path[PATH_MAX];
	char *text;
	size_t len;

	if (c->loaded)
		return;
	c->loaded = 1;
	c->file.st_ino = 0;
	if (snprintf(path, sizeof path, "%s/" MBOX_CACHE_FILE, m->dir) >= (int)sizeof path ||
	    !mbox_slurp(path, &text, &len, &c->file))
		return;
	int ok = parse(&f, text, len, m->uidvalidity);
	free(text);
	/* Room for all of ours first, so that the merge cannot fail halfway. */
	if (ok && f.cap < f.n + c->n) {
		struct centry *e = realloc(f.e, (f.n + c->n) * sizeof *e);
		if (e) {
			f.e = e;
			f.cap = f.n + c->n;
		}
		ok = e != 0;
	}
	for (size_t i = 0; ok && i < c->n; i++) {
		struct centry *mine = &c->e[i], *e = entry(&f, mine->uid);
		if (mine->vsize)
			e->vsize = mine->vsize;
		for (int k = 0; k < KINDS; k++)
			if (mine->s[k]) {
				free(e->s[k]);
				e->s[k] = mine->s[k];
				e->n[k] = mine->n[k];
				mine->s[k] = 0;
			}
	}
	if (!ok) {
		/* Only c's own entries: the file is ignored, as a cache may be. */
		entries_free(&f);
		return;
	}
	entries_free(c);
	c->e = f.e;
	c->n = f.n;
	c->cap = f.cap;
}

void mbox_cache_load(struct mbox *m)
{
	struct mbox_cache *c = cache_of(m);

	if (c)
		read_file(m, c);
	mbox_cache_fill(m);
}

void mbox_cache_fill(struct mbox *m)
{
	struct mbox_cache *c = m->cache;

	for (size_t i = 0; c && i < m->count && c->n; i++) {
		int found;
		size_t k = find(c, m->msg[i].uid, &found);
		if (found && !m->msg[i].vsize)
			m->msg[i].vsize = c->e[k].vsize;
	}
}

void mbox_cache_rest(struct mbox *m)
{
	/* What the session computed goes to the file now, not when the folder is closed: the
	   session may rest for hours, and the other sessions can use it meanwhile. */
	if (m->cache && m->cache->dirty)
		mbox_cache_save(m);
	if (m->cache && !m->cache->dirty)
		mbox_cache_free(m);
}

void mbox_cache_save(struct mbox *m)
{
	struct mbox_cache *c = m->cache;
	char path[PATH_MAX], tmp[PATH_MAX];

	if (!c || !c->dirty)
		return;
	/* Other sessions may have written the file since we read it: their values are kept. */
	if (c->loaded && snprintf(path, sizeof path, "%s/" MBOX_CACHE_FILE, m->dir) <
				 (int)sizeof path) {
		struct stat now;
		int there = stat(path, &now) == 0;
		if (there != (c->file.st_ino != 0) ||
		    (there && (now.st_ino != c->file.st_ino || now.st_dev != c->file.st_dev ||
			       now.st_size != c->file.st_size ||
			       now.st_mtim.tv_sec != c->file.st_mtim.tv_sec ||
			       now.st_mtim.tv_nsec != c->file.st_mtim.tv_nsec)))
			c->loaded = 0;
	}
	read_file(m, c);
	/* The strings of the newest messages that fit in the bound. */
	size_t budget = CACHE_MAX, keep_from = 0;
	for (size_t i = c->n; i-- > 0;) {
		size_t sz = 0;
		for (int k = 0; k < KINDS; k++)
			sz += c->e[i].n[k] + 32;
		if (!mbox_view_has(m, c->e[i].uid))
			continue;
		if (sz > budget) {
			keep_from = i + 1;
			break;
		}
		budget -= sz;
	}
	struct sa s = SA_ZERO;
	int ok = sa_catf(&s, "postroom-cache 1 %lu\n", (unsigned long)m->uidvalidity);
	for (size_t i = 0; ok && i < c->n; i++) {
		const struct centry *e = &c->e[i];
		if (!mbox_view_has(m, e->uid))
			continue;
		if (e->vsize)
			ok = sa_catf(&s, "%lu W %llu\n", (unsigned long)e->uid, e->vsize);
		for (int k = 0; ok && k < KINDS && i >= keep_from; k++)
			if (e->s[k])
				ok = sa_catf(&s, "%lu %c %lu\n", (unsigned long)e->uid, kinds[k],
						(unsigned long)e->n[k]) &&
				     sa_catb(&s, e->s[k], e->n[k]) && sa_catc(&s, '\n');
	}
	if (ok && snprintf(path, sizeof path, "%s/" MBOX_CACHE_FILE, m->dir) < (int)sizeof path &&
	    snprintf(tmp, sizeof tmp, "%s/" MBOX_CACHE_FILE ".%ld.tmp", m->dir, (long)getpid()) <
		    (int)sizeof tmp) {
		/* No fsync: after a crash an empty or short file is just a cache to ignore. */
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			ok = fd_write_all(fd, s.s, s.len);
			if (close(fd) < 0)
				ok = 0;
			if (!ok || rename(tmp, path) < 0)
				unlink(tmp);
		}
	}
	sa_free(&s);
	c->dirty = 0;
}

int mbox_cache_get(struct mbox *m, size_t idx, enum mbox_cache_kind kind, struct sa *out)
{
	struct mbox_cache *c = cache_of(m);
	int found;

	if (!c || idx >= m->count || (unsigned)kind >= KINDS)
		return 0;
	read_file(m, c);
	size_t i = find(c, m->msg[idx].uid, &found);
	if (!found || !c->e[i].s[kind])
		return 0;
	return sa_catb(out, c->e[i].s[kind], c->e[i].n[kind]);
}

void mbox_cache_put(struct mbox *m, size_t idx, enum mbox_cache_kind kind, const char *s,
		    size_t n)
{
	struct mbox_cache *c = cache_of(m);
	if (!c || idx >= m->count || (unsigned)kind >= KINDS || n > VALUE_MAX)
		return;
	struct centry *e = entry(c, m->msg[idx].uid);
	if (!e)
		return;
	char *copy = malloc(n + 1);
	if (!copy)
		return;
	memcpy(copy, s, n);
	copy[n] = 0;
	free(e->s[kind]);
	e->s[kind] = copy;
	e->n[kind] = (uint32_t)n;
	c->dirty = 1;
}

void mbox_cache_vsize(struct mbox *m, size_t idx, unsigned long long vsize)
{
	struct mbox_cache *c = cache_of(m);
	if (idx >= m->count)
		return;
	m->msg[idx].vsize = vsize;
	struct centry *e = c ? entry(c, m->msg[idx].uid) : 0;
	if (e && e->vsize != vsize) {
		e->vsize = vsize;
		c->dirty = 1;
	}
}
