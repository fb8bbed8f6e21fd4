/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fmt.h"
#include "mailbox-internal.h"
#include "sync.h"

/*
 * Dovecot's own files of a Maildir, as Dovecot 2.3 writes them (checked against doveadm with
 * strace): dovecot-uidlist is appended to, or rewritten through dovecot-uidlist.tmp and a
 * rename, only while dovecot-uidlist.lock exists (O_EXCL, holding "pid:host"); dovecot-keywords
 * is replaced by writing dovecot-keywords.lock and renaming it over the file.
 */

int mbox_fail(char *why, size_t whysize, int e, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (why && whysize)
		snprintf(why, whysize, "%s: %s", what, strerror(e));
	errno = e;
	return 0;
}

const char *mbox_hostname(void)
{
	static char host[256];

	if (!host[0]) {
		char raw[200];
		if (gethostname(raw, sizeof raw - 1) < 0)
			strcpy(raw, "localhost");
		raw[sizeof raw - 1] = 0;
		/* '/' and ':' cannot be in a Maildir file name: escaped as the Maildir spec says. */
		size_t o = 0;
		for (const char *p = raw; *p && o < sizeof host - 5; p++) {
			if (*p == '/' || *p == ':')
				o += (size_t)snprintf(host + o, sizeof host - o, "\\%03o",
						      (unsigned char)*p);
			else
				host[o++] = *p;
		}
		host[o] = 0;
	}
	return host;
}

int mbox_slurp(const char *path, char **data, size_t *len, struct stat *st)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!st)
		st = &sb;
	if (fd < 0)
		return 0;
	if (fstat(fd, st) < 0)
		goto fail;
	if ((unsigned long long)st->st_size > MBOX_FILE_MAX) {
		errno = EFBIG;
		goto fail;
	}
	size_t cap = (size_t)st->st_size + 1, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		goto fail;
	/* Read to the end, not to st_size: an appender may be adding a line meanwhile. */
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > MBOX_FILE_MAX) {
				free(buf);
				errno = EFBIG;
				goto fail;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			errno = e;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 1;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return 0;
}

/* ---- dotlocks ---- */

static int lock_path(const char *path, char *lock, size_t size)
{
	if (snprintf(lock, size, "%s.lock", path) >= (int)size) {
		errno = ENAMETOOLONG;
		return 0;
	}
	return 1;
}

/* Dovecot's rule: a lock is stale when the "pid:host" in it names a process of this host that
   is gone, or when it has not changed for the stale timeout. */
static int lock_stale(const char *lock, struct stat *st)
{
	char text[300];
	int fd = open(lock, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -1 : 0;
	ssize_t n = fstat(fd, st) == 0 ? read(fd, text, sizeof text - 1) : -1;
	close(fd);
	if (n < 0)
		return 0;
	text[n] = 0;
	char *colon = strchr(text, ':');
	if (colon && colon > text && strspn(text, "0123456789") == (size_t)(colon - text) &&
	    !strcmp(colon + 1, mbox_hostname())) {
		long pid = strtol(text, 0, 10);
		if (pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			return 1;
	}
	/* An empty lock whose maker had time to write its "pid:host" (it does so right after
	   making it) never will: its maker died in between, or a power cut kept the file's
	   name and lost what was in it. */
	if (n == 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		long long age_ms = ((long long)now.tv_sec - st->st_mtim.tv_sec) * 1000 +
				   (now.tv_nsec - st->st_mtim.tv_nsec) / 1000000;
		if (age_ms > MBOX_LOCK_EMPTY_STALE_MS)
			return 1;
	}
	return st->st_mtime + MBOX_LOCK_STALE < time(0);
}

int dotlock_take(const char *path)
{
	char lock[PATH_MAX];
	struct timespec start, now, pause = { 0, 10 * 1000 * 1000 };

	if (!lock_path(path, lock, sizeof lock))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			char id[300];
			int n = snprintf(id, sizeof id, "%ld:%s", (long)getpid(), mbox_hostname());
			if (n > 0 && (size_t)n < sizeof id)
				(void)!write(fd, id, (size_t)n);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		struct stat st;
		int stale = lock_stale(lock, &st);
		if (stale < 0)
			continue;	/* released meanwhile */
		if (stale) {
			/* Only the lock judged stale: another process may have broken it and taken
			   a fresh one meanwhile. */
			struct stat again;
			if (stat(lock, &again) == 0 && again.st_ino == st.st_ino)
				unlink(lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= MBOX_LOCK_WAIT) {
			errno = EAGAIN;
			return -1;
		}
		nanosleep(&pause, 0);
		if (pause.tv_nsec < 100 * 1000 * 1000)
			pause.tv_nsec += 10 * 1000 * 1000;
	}
}

int dotlock_replace(int fd, const char *path, const char *data, size_t len)
{
	char lock[PATH_MAX];

	if (!lock_path(path, lock, sizeof lock)) {
		close(fd);
		return 0;
	}
	/* The lock holds "pid:host" until now; the file's contents replace it. */
	int ok = ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
		 fd_write_all(fd, data, len) && fsync(fd) == 0;
	int e = errno;
	if (close(fd) < 0 && ok) {
		ok = 0;
		e = errno;
	}
	/* The rename is durable once the directory is flushed: a power cut must not bring the
	   old file back after what the new one holds was told to a client. */
	if (ok && rename(lock, path) == 0)
		return sync_parent(path) ? 1 : 0;
	if (ok)
		e = errno;
	unlink(lock);
	errno = e;
	return 0;
}

void dotlock_release(int fd, const char *path)
{
	char lock[PATH_MAX];

	if (fd >= 0)
		close(fd);
	if (lock_path(path, lock, sizeof lock))
		unlink(lock);
}

/* ---- names ---- */

size_t mbox_base_len(const char *name)
{
	const char *colon = strchr(name, ':');
	return colon ? (size_t)(colon - name) : strlen(name);
}

/* The number at *s, advancing it; digits only, saturating. */
static unsigned long long leading_number(const char **s)
{
	unsigned long long v = 0;

	for (; **s >= '0' && **s <= '9'; (*s)++)
		v = v > ULLONG_MAX / 10 - 10 ? ULLONG_MAX : v * 10 + (unsigned)(**s - '0');
	return v;
}

int mbox_name_cmp(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	unsigned long long sa = leading_number(&pa), sb = leading_number(&pb);

	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (pa[0] == '.' && pa[1] == 'M' && pb[0] == '.' && pb[1] == 'M') {
		const char *ua = pa + 2, *ub = pb + 2;
		unsigned long long va = leading_number(&ua), vb = leading_number(&ub);
		if (va != vb)
			return va < vb ? -1 : 1;
	}
	size_t la = mbox_base_len(a), lb = mbox_base_len(b);
	int c = memcmp(a, b, la < lb ? la : lb);
	return c ? c : la < lb ? -1 : la > lb;
}

/* ---- the base name map ---- */

static size_t map_hash(const char *s, size_t n)
{
	size_t h = 14695981039346656037ull & (size_t)-1;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * (size_t)1099511628211ull;
	return h;
}

static int map_grow(struct mbox_map *map)
{
	size_t cap = map->cap ? map->cap * 2 : 64;
	struct mbox_map_slot *slot = calloc(cap, sizeof *slot);

	if (!slot)
		return 0;
	for (size_t i = 0; i < map->cap; i++) {
		if (!map->slot[i].key)
			continue;
		size_t j = map_hash(map->slot[i].key, map->slot[i].len) & (cap - 1);
		while (slot[j].key)
			j = (j + 1) & (cap - 1);
		slot[j] = map->slot[i];
	}
	free(map->slot);
	map->slot = slot;
	map->cap = cap;
	return 1;
}

int mbox_map_put(struct mbox_map *map, const char *key, size_t len, size_t val)
{
	if ((map->n + 1) * 2 > map->cap && !map_grow(map))
		return 0;
	size_t j = map_hash(key, len) & (map->cap - 1);
	while (map->slot[j].key) {
		if (map->slot[j].len == len && !memcmp(map->slot[j].key, key, len)) {
			map->slot[j].val = val;
			return 1;
		}
		j = (j + 1) & (map->cap - 1);
	}
	map->slot[j] = (struct mbox_map_slot){ key, len, val };
	map->n++;
	return 1;
}

int mbox_map_get(const struct mbox_map *map, const char *key, size_t len, size_t *val)
{
	if (!map->cap)
		return 0;
	size_t j = map_hash(key, len) & (map->cap - 1);
	while (map->slot[j].key) {
		if (map->slot[j].len == len && !memcmp(map->slot[j].key, key, len)) {
			*val = map->slot[j].val;
			return 1;
		}
		j = (j + 1) & (map->cap - 1);
	}
	return 0;
}

void mbox_map_free(struct mbox_map *map)
{
	free(map->slot);
	*map = (struct mbox_map)MBOX_MAP_ZERO;
}

/* ---- dovecot-uidlist ---- */

static void records_free(struct uidlist *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->rec[i].ext);
		free(u->rec[i].base);
	}
	free(u->rec);
	u->rec = 0;
	u->n = u->cap = 0;
	mbox_map_free(&u->map);
}

void uidlist_free(struct uidlist *u)
{
	records_free(u);
	*u = (struct uidlist)UIDLIST_ZERO;
}

/* Adds a record that takes ext and base (malloc'd); 1, or 0 (ENOMEM, both freed). */
static int records_add(struct uidlist *u, uint32_t uid, char *ext, char *base)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		struct uidlist_rec *r = realloc(u->rec, cap * sizeof *r);
		if (!r)
			goto fail;
		u->rec = r;
		u->cap = cap;
	}
	/* The map points into the records' own strings, which do not move. */
	if (!mbox_map_put(&u->map, base, strlen(base), u->n))
		goto fail;
	u->rec[u->n++] = (struct uidlist_rec){ uid, ext, base };
	return 1;
fail:
	free(ext);
	free(base);
	errno = ENOMEM;
	return 0;
}

static int parse_u32(const char *s, size_t n, uint32_t *v)
{
	unsigned long long x;
	if (!scan_ullong(s, n, &x) || x > UINT32_MAX)
		return 0;
	*v = (uint32_t)x;
	return 1;
}

/*
 * Parses text as a uidlist: version 3 ("3 V<uidvalidity> N<nextuid> G<guid>", then
 * "<uid> [<ext>...] :<name>") or Dovecot's old version 1 ("1 <uidvalidity> <nextuid>", then
 * "<uid> <name>"). An unreadable header loses the file (uidvalidity 0): its UIDs mean nothing
 * without it. A bad line is skipped and the file marked broken, so that the next write
 * rewrites it, as Dovecot rebuilds a broken uidlist; its UIDVALIDITY stays. A last line
 * without its newline is an append in progress unless locked says no one can be appending.
 */
static int parse(struct uidlist *u, char *text, size_t len, int locked)
{
	char *p = text, *end = text + len;
	char *nl = memchr(p, '\n', len);

	records_free(u);
	u->uidvalidity = 0;
	u->nextuid = 1;
	u->guid[0] = 0;
	u->broken = 0;
	if (!nl)
		return 1;
	*nl = 0;
	int version = 0;
	uint32_t v = 0, next = 0;
	if (!strncmp(p, "3 ", 2)) {
		version = 3;
		for (char *f = p + 2, *sp; *f; f = sp + (*sp != 0)) {
			sp = f + strcspn(f, " ");
			size_t fl = (size_t)(sp - f);
			if (fl > 1 && f[0] == 'V' && !parse_u32(f + 1, fl - 1, &v))
				v = 0;
			else if (fl > 1 && f[0] == 'N' && !parse_u32(f + 1, fl - 1, &next))
				next = 0;
			else if (fl == 33 && f[0] == 'G' && strspn(f + 1, "0123456789abcdef") >= 32)
				memcpy(u->guid, f + 1, 32), u->guid[32] = 0;
		}
	} else if (!strncmp(p, "1 ", 2)) {
		version = 1;
		char *a = p + 2, *b = strchr(a, ' ');
		if (!b || !parse_u32(a, (size_t)(b - a), &v) || !parse_u32(b + 1, strlen(b + 1), &next))
			v = 0;
	}
	if (!version || !v)
		return 1;
	u->uidvalidity = v;
	uint32_t last = 0;
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			if (locked)
				u->broken = 1;
			break;
		}
		*nl = 0;
		size_t dl = strspn(p, "0123456789");
		uint32_t uid;
		char *name = 0, *ext = p + dl;
		if (dl && p[dl] == ' ' && parse_u32(p, dl, &uid) && uid > last) {
			if (version == 3) {
				char *c = strstr(ext, " :");
				if (c) {
					name = c + 2;
					*c = 0;
				}
			} else {
				char *sp = strrchr(ext, ' ');
				name = sp + 1;
				*sp = 0;
			}
		}
		size_t bl = name ? mbox_base_len(name) : 0;
		size_t found;
		if (!bl || name[bl] || mbox_map_get(&u->map, name, bl, &found) || uid == UINT32_MAX) {
			u->broken = 1;
			continue;
		}
		while (*ext == ' ')
			ext++;
		char *e = strdup(version == 3 ? ext : ""), *b = strndup(name, bl);
		if (!e || !b || !records_add(u, uid, e, b)) {
			free(e);
			free(b);
			return 0;
		}
		last = uid;
	}
	u->nextuid = next > last ? next : last + 1;
	return 1;
}

static int uidlist_path(const char *dir, const char *suffix, char *path, size_t size)
{
	if (snprintf(path, size, "%s/" MBOX_UIDLIST "%s", dir, suffix) >= (int)size) {
		errno = ENAMETOOLONG;
		return 0;
	}
	return 1;
}

static void remember(struct uidlist *u, const struct stat *st)
{
	u->dev = st->st_dev;
	u->ino = st->st_ino;
	u->size = st->st_size;
	u->mtime = st->st_mtim;
}

static int read_file(const char *dir, struct uidlist *u, int force, int locked)
{
	char path[PATH_MAX];
	struct stat st;

	if (!uidlist_path(dir, "", path, sizeof path))
		return 0;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return 0;
		records_free(u);
		u->uidvalidity = 0;
		u->nextuid = 1;
		u->ino = 0;
		u->size = -1;
		return 1;
	}
	if (!force && st.st_ino == u->ino && st.st_dev == u->dev && st.st_size == u->size &&
	    st.st_mtim.tv_sec == u->mtime.tv_sec && st.st_mtim.tv_nsec == u->mtime.tv_nsec)
		return 1;
	char *text;
	size_t len;
	if (!mbox_slurp(path, &text, &len, &st)) {
		if (errno != ENOENT)
			return 0;
		return read_file(dir, u, force, locked);	/* replaced between stat and open */
	}
	int ok = parse(u, text, len, locked);
	free(text);
	if (ok)
		remember(u, &st);
	return ok;
}

int uidlist_read(const char *dir, struct uidlist *u)
{
	return read_file(dir, u, 0, 0);
}

static int put_record(struct sa *s, const struct uidlist_rec *r)
{
	return sa_catf(s, "%lu%s%s :%s\n", (unsigned long)r->uid, r->ext[0] ? " " : "", r->ext,
			  r->base);
}

/* Writes s to the open fd, synced, and closes it; *st is the file's after the write. */
static int write_synced(int fd, struct sa *s, struct stat *st)
{
	int ok = fd_write_all(fd, s->s, s->len) && fdatasync(fd) == 0 && fstat(fd, st) == 0;
	int e = errno;
	sa_free(s);
	if (close(fd) < 0 && ok) {
		ok = 0;
		e = errno;
	}
	errno = e;
	return ok;
}

/* Dovecot's rewrite: dovecot-uidlist.tmp, written whole and synced, renamed over the file.
   The caller holds the lock. */
static int rewrite(const char *dir, struct uidlist *u)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	struct sa s = SA_ZERO;
	struct stat st;

	if (!uidlist_path(dir, ".tmp", tmp, sizeof tmp) || !uidlist_path(dir, "", path, sizeof path))
		return 0;
	int ok = sa_catf(&s, "3 V%lu N%lu G%s\n", (unsigned long)u->uidvalidity,
			    (unsigned long)u->nextuid, u->guid);
	for (size_t i = 0; ok && i < u->n; i++)
		ok = put_record(&s, &u->rec[i]);
	int fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : -1;
	if (fd < 0) {
		sa_free(&s);
		return 0;
	}
	if (!write_synced(fd, &s, &st) || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return 0;
	}
	if (!sync_parent(path))
		return 0;	/* UIDs are told only once the new list cannot be undone */
	u->broken = 0;
	remember(u, &st);
	return 1;
}

/* Appends records from..n to the file, as Dovecot appends; its header's N is left behind,
   and readers take the last UID + 1 when that is higher, as Dovecot does. */
static int append(const char *dir, struct uidlist *u, size_t from)
{
	char path[PATH_MAX];
	struct sa s = SA_ZERO;
	struct stat st;

	if (!uidlist_path(dir, "", path, sizeof path))
		return 0;
	int ok = 1;
	for (size_t i = from; ok && i < u->n; i++)
		ok = put_record(&s, &u->rec[i]);
	int fd = ok ? open(path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	if (fd < 0) {
		sa_free(&s);
		return 0;
	}
	if (!write_synced(fd, &s, &st))
		return 0;
	remember(u, &st);
	return 1;
}

static void new_guid(char guid[33])
{
	unsigned char b[16];

	if (getentropy(b, sizeof b) < 0) {
		/* Only unique, not secret: time, pid and an address will do. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long x = (unsigned long long)ts.tv_sec * 1000000007ull ^
				       (unsigned long long)ts.tv_nsec ^
				       ((unsigned long long)getpid() << 32) ^ (uintptr_t)b;
		for (int i = 0; i < 16; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
			b[i] = (unsigned char)(x >> 56);
	}
	for (int i = 0; i < 16; i++)
		snprintf(guid + 2 * i, 3, "%02x", b[i]);
}

/* A fresh list for a mailbox whose dovecot-uidlist was lost (or never was). */
static void start_fresh(const char *root, struct uidlist *u)
{
	records_free(u);
	u->uidvalidity = uidvalidity_next(root);
	u->nextuid = 1;
	new_guid(u->guid);
}

int uidlist_assign(const char *root, const char *dir, struct uidlist *u, const char *const *bases,
		   const size_t *lens, size_t n, uint32_t *uids)
{
	return uidlist_assign_ext(root, dir, u, bases, lens, 0, n, uids);
}

int uidlist_assign_ext(const char *root, const char *dir, struct uidlist *u,
		       const char *const *bases, const size_t *lens, const char *const *exts,
		       size_t n, uint32_t *uids)
{
	char path[PATH_MAX];

	if (!uidlist_path(dir, "", path, sizeof path))
		return 0;
	int fd = dotlock_take(path);
	if (fd < 0)
		return 0;
	int ok = read_file(dir, u, 1, 1);
	if (!ok)
		goto done;
	int whole = u->broken || !u->uidvalidity || u->ino == 0;
	if (!u->uidvalidity)
		start_fresh(root, u);
	if (!u->guid[0])
		new_guid(u->guid), whole = 1;
	size_t from = u->n;
	for (size_t i = 0; ok && i < n; i++) {
		size_t k;
		if (mbox_map_get(&u->map, bases[i], lens[i], &k)) {
			uids[i] = u->rec[k].uid;
			continue;
		}
		if (u->nextuid == UINT32_MAX) {
			errno = EOVERFLOW;	/* Dovecot too stops here: a new UIDVALIDITY is needed */
			ok = 0;
			break;
		}
		char *e = strdup(exts && exts[i] ? exts[i] : ""), *b = strndup(bases[i], lens[i]);
		if (!e || !b) {
			free(e);
			free(b);
			ok = 0;
			break;
		}
		uids[i] = u->nextuid;
		ok = records_add(u, u->nextuid++, e, b);
	}
	if (ok && (whole || from < u->n))
		ok = whole ? rewrite(dir, u) : append(dir, u, from);
done:;
	int e = errno;
	dotlock_release(fd, path);
	if (!ok) {
		/* What is in memory may not be what is on disk: read it again next time. */
		u->ino = 0;
		u->size = -1;
		errno = e;
	}
	return ok;
}

int uidlist_create(const char *root, const char *dir, struct uidlist *u)
{
	char path[PATH_MAX];

	if (!uidlist_path(dir, "", path, sizeof path))
		return 0;
	int fd = dotlock_take(path);
	if (fd < 0)
		return 0;
	if (!u->uidvalidity)
		u->uidvalidity = uidvalidity_next(root);
	if (!u->guid[0])
		new_guid(u->guid);
	if (u->n && u->nextuid <= u->rec[u->n - 1].uid)
		u->nextuid = u->rec[u->n - 1].uid + 1;
	if (!u->nextuid)
		u->nextuid = 1;
	int ok = rewrite(dir, u);
	int e = errno;
	dotlock_release(fd, path);
	errno = e;
	return ok;
}

/*
 * Dovecot's dovecot-uidvalidity in the root holds the last UIDVALIDITY given (8 hex digits),
 * and an empty file dovecot-uidvalidity.<hex> names it too: renaming that file to the next
 * value is what makes two processes never hand out the same one. The next value is the time,
 * or one more than the last when the clock has not moved past it.
 */
uint32_t uidvalidity_next(const char *root)
{
	char path[PATH_MAX - 32], from[PATH_MAX], to[PATH_MAX], text[16];
	uint32_t now = (uint32_t)time(0);

	if (snprintf(path, sizeof path, "%s/dovecot-uidvalidity", root) >= (int)sizeof path)
		return now;
	for (int tries = 0; tries < 20; tries++) {
		uint32_t last = 0;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, text, sizeof text - 1);
			close(fd);
			text[n > 0 ? n : 0] = 0;
			char *end;
			unsigned long v = strtoul(text, &end, 16);
			if (end != text && v <= UINT32_MAX)
				last = (uint32_t)v;
		}
		uint32_t next = now > last ? now : last + 1;
		if (!next)
			next = 1;
		snprintf(from, sizeof from, "%s.%08lx", path, (unsigned long)last);
		snprintf(to, sizeof to, "%s.%08lx", path, (unsigned long)next);
		if (last && rename(from, to) < 0) {
			if (errno != ENOENT)
				return next;	/* cannot write the root: unique enough */
			/* Someone else took it, or there never was one: make ours. */
			fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
			if (fd < 0) {
				if (errno == EEXIST) {
					now = next + 1;
					continue;
				}
				return next;
			}
			close(fd);
		} else if (!last) {
			fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
			if (fd < 0 && errno == EEXIST) {
				now = next + 1;
				continue;
			}
			if (fd >= 0)
				close(fd);
		}
		char tmp[PATH_MAX];
		int n = snprintf(text, sizeof text, "%08lx", (unsigned long)next);
		if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) < (int)sizeof tmp) {
			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
			if (fd >= 0) {
				int ok = fd_write_all(fd, text, (size_t)n);
				close(fd);
				if (!ok || rename(tmp, path) < 0)
					unlink(tmp);
			}
		}
		return next;
	}
	return now;
}

/* ---- dovecot-keywords ---- */

void keywords_free(char *kw[MBOX_KEYWORDS_MAX])
{
	for (int i = 0; i < MBOX_KEYWORDS_MAX; i++) {
		free(kw[i]);
		kw[i] = 0;
	}
}

static int keyword_ok(const char *s, size_t n)
{
	if (!n || n > 250 || s[0] == '\\')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

void keywords_read(const char *dir, char *kw[MBOX_KEYWORDS_MAX])
{
	char path[PATH_MAX];
	char *text;
	size_t len;

	keywords_free(kw);
	if (snprintf(path, sizeof path, "%s/" MBOX_KEYWORDS, dir) >= (int)sizeof path ||
	    !mbox_slurp(path, &text, &len, 0))
		return;
	for (char *p = text, *nl; (nl = memchr(p, '\n', len - (size_t)(p - text))); p = nl + 1) {
		*nl = 0;
		size_t dl = strspn(p, "0123456789");
		unsigned long long idx;
		if (!dl || dl > 3 || p[dl] != ' ' || !scan_ullong(p, dl, &idx) ||
		    idx >= MBOX_KEYWORDS_MAX || kw[idx] || !keyword_ok(p + dl + 1, strlen(p + dl + 1)))
			continue;
		kw[idx] = strdup(p + dl + 1);
	}
	free(text);
}

int keywords_add(const char *dir, char *kw[MBOX_KEYWORDS_MAX], const char *name)
{
	char path[PATH_MAX];

	if (!keyword_ok(name, strlen(name)) ||
	    snprintf(path, sizeof path, "%s/" MBOX_KEYWORDS, dir) >= (int)sizeof path)
		return -1;
	int fd = dotlock_take(path);
	if (fd < 0)
		return -1;
	keywords_read(dir, kw);
	int idx = -1, room = -1;
	for (int i = 0; i < MBOX_KEYWORDS_MAX; i++) {
		if (kw[i] && !strcasecmp(kw[i], name))
			idx = i;
		else if (!kw[i] && room < 0)
			room = i;
	}
	if (idx >= 0 || room < 0) {
		dotlock_release(fd, path);
		return idx;
	}
	kw[room] = strdup(name);
	struct sa s = SA_ZERO;
	int ok = kw[room] != 0;
	for (int i = 0; ok && i < MBOX_KEYWORDS_MAX; i++)
		if (kw[i])
			ok = sa_catf(&s, "%d %s\n", i, kw[i]);
	if (!ok || !dotlock_replace(fd, path, s.s, s.len)) {
		if (!ok)
			dotlock_release(fd, path);
		free(kw[room]);
		kw[room] = 0;
		room = -1;
	}
	sa_free(&s);
	return room;
}
