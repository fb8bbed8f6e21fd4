/* postroom: ISC license, see LICENSE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mailbox-internal.h"
#include "maildir.h"
#include "sync.h"

/*
 * A session's view of one Maildir folder, kept in step with the disk the way Dovecot keeps its
 * own: new/ is read before cur/ (a message moving from one to the other is seen in one of
 * them), file base names are matched to UIDs through dovecot-uidlist, and files the list does
 * not know get the next UIDs, in Dovecot's order, under its lock.
 */

/* A directory whose mtime is this recent may change again within the same timestamp tick,
   so the cheap "nothing changed" test does not trust it (Dovecot's rule too). */
#define MTIME_SETTLE 2

struct mbox_sync_state {
	struct uidlist ul;	/* empty after mbox_rest, read again by the next full scan */
	struct {		/* dovecot-uidlist as the last full scan saw it, for unchanged() */
		ino_t ino;	/* 0: there was none */
		off_t size;
		struct timespec mtime;
	} ul_seen;
	struct timespec new_mtime, cur_mtime;
	struct timespec scanned;	/* when the last full scan began */
	int scanned_ok;
	/* The view's file names as mbox_rest packed them, end to end; a name changed since is
	   one of its own (see msg_set_file). */
	char *names;
	size_t names_size;
};

/* One file that a scan found. */
struct found {
	char *file;	/* "cur/name" or "new/name" */
	size_t blen;	/* its base name's length, from file + 4 */
	uint32_t uid;
	int recent;	/* moved from new/ by this scan */
};

struct scan {
	struct found *f;
	size_t n, cap;
	struct mbox_map map;
};

enum { OPEN_STATUS = 1 };	/* mbox_status's quick view: no stat of each file, no cache */

static void scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->f[i].file);
	free(s->f);
	mbox_map_free(&s->map);
	*s = (struct scan){ 0 };
}

static const char *base_of(const char *file)
{
	return file + 4;	/* past "cur/" or "new/" */
}

/* Adds dir/name unless a file of that base is already in s. */
static int scan_add(struct scan *s, const char *sub, const char *name, int recent)
{
	size_t blen = mbox_base_len(name), k;

	if (!blen || mbox_map_get(&s->map, name, blen, &k))
		return 1;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct found *f = realloc(s->f, cap * sizeof *f);
		if (!f)
			return 0;
		s->f = f;
		s->cap = cap;
	}
	size_t nl = strlen(name);
	char *file = malloc(nl + 5);
	if (!file)
		return 0;
	memcpy(file, sub, 3);
	file[3] = '/';
	memcpy(file + 4, name, nl + 1);
	if (!mbox_map_put(&s->map, file + 4, blen, s->n)) {
		free(file);
		return 0;
	}
	/* The map's keys point into files, which stay where they are when f grows. */
	s->f[s->n++] = (struct found){ file, blen, 0, recent };
	return 1;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/*
 * Reads new/ then cur/ of m's folder into s. With move, each file of new/ goes to cur/ first
 * (under the same name, as Dovecot moves them), and the ones this call moved are recent.
 */
static int scan_dirs(struct mbox *m, int move, struct scan *s)
{
	char path[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	struct mbox_sync_state *st = m->state;
	struct stat sb;

	clock_gettime(CLOCK_REALTIME, &st->scanned);
	static const char *const sub[] = { "new", "cur" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", m->dir, sub[i]);
		/* The mtime before reading: a change during the read shows next time. */
		if (stat(path, &sb) < 0)
			return 0;
		if (i == 0)
			st->new_mtime = sb.st_mtim;
		else
			st->cur_mtime = sb.st_mtim;
		DIR *d = opendir(path);
		if (!d)
			return 0;
		struct dirent *de;
		int ok = 1;
		while (ok && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			if (i == 0 && move) {
				if (snprintf(from, sizeof from, "%s/new/%s", m->dir, de->d_name) >=
					    (int)sizeof from ||
				    snprintf(to, sizeof to, "%s/cur/%s", m->dir, de->d_name) >=
					    (int)sizeof to)
					continue;
				/* Whoever renames it first has it as recent; the others see it in
				   cur/ a moment later. */
				if (rename(from, to) == 0)
					ok = scan_add(s, "cur", de->d_name, 1);
				continue;
			}
			ok = scan_add(s, sub[i], de->d_name, 0);
		}
		int e = errno;
		closedir(d);
		if (!ok) {
			errno = e;
			return 0;
		}
	}
	if (move && stat(path, &sb) == 0)
		st->cur_mtime = sb.st_mtim;	/* our own moves are no news */
	st->scanned_ok = 1;
	return 1;
}

/* Flags and keywords from a name's ":2," info. */
static void parse_info(const char *name, unsigned *flags, uint32_t *keywords)
{
	const char *info = strstr(name, ":2,");

	*flags = 0;
	*keywords = 0;
	if (!info)
		return;
	for (const char *p = info + 3; *p; p++) {
		switch (*p) {
		case 'D': *flags |= MBOX_DRAFT; break;
		case 'F': *flags |= MBOX_FLAGGED; break;
		case 'R': *flags |= MBOX_ANSWERED; break;
		case 'S': *flags |= MBOX_SEEN; break;
		case 'T': *flags |= MBOX_DELETED; break;
		default:
			if (*p >= 'a' && *p <= 'z')
				*keywords |= 1u << (*p - 'a');
		}
	}
}

/* The number after key (",S=", ",W=") in the base name, or 0. */
static unsigned long long name_number(const char *name, const char *key)
{
	size_t blen = mbox_base_len(name);
	const char *p = strstr(name, key);

	if (!p || p >= name + blen)
		return 0;
	p += strlen(key);
	unsigned long long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > ULLONG_MAX / 10 - 10)
			return 0;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v;
}

/*
 * The file name for new flags: the base, ":2,", then the flag letters in ASCII order, letters
 * we do not know (another program's) kept.
 */
static int make_name(const char *name, unsigned flags, uint32_t keywords, char *out, size_t size)
{
	size_t blen = mbox_base_len(name);
	int have[128] = { 0 };
	const char *info = strstr(name, ":2,");

	if (info)
		for (const char *p = info + 3; *p; p++)
			if ((unsigned char)*p < 128 && !strchr("DFRST", *p) && !(*p >= 'a' && *p <= 'z'))
				have[(unsigned char)*p] = 1;
	have['D'] = !!(flags & MBOX_DRAFT);
	have['F'] = !!(flags & MBOX_FLAGGED);
	have['R'] = !!(flags & MBOX_ANSWERED);
	have['S'] = !!(flags & MBOX_SEEN);
	have['T'] = !!(flags & MBOX_DELETED);
	for (int i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if (keywords & (1u << i))
			have['a' + i] = 1;
	if (blen + 4 + 128 >= size)
		return errno = ENAMETOOLONG, 0;
	memcpy(out, name, blen);
	size_t o = blen;
	memcpy(out + o, ":2,", 3);
	o += 3;
	for (int c = 33; c < 127; c++)
		if (have[c] && c != '/' && c != ',')
			out[o++] = (char)c;
	out[o] = 0;
	return 1;
}

void mbox_quota_sub(const char *root, unsigned long long bytes, unsigned long long count)
{
	char path[PATH_MAX], line[64];

	/* Negative lines are Maildir++'s own way to count an expunge (Dovecot writes them). */
	if (snprintf(path, sizeof path, "%s/maildirsize", root) >= (int)sizeof path)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "-%llu -%llu\n", bytes, count);
	(void)!write(fd, line, (size_t)n);
	close(fd);
}

static int found_uid_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct found *)a)->uid, y = ((const struct found *)b)->uid;
	return x < y ? -1 : x > y;
}

static int found_name_cmp(const void *a, const void *b)
{
	return mbox_name_cmp(base_of((*(struct found *const *)a)->file),
			     base_of((*(struct found *const *)b)->file));
}

/* UIDs for every file of s: from the list, or new ones. A read-only session that may not
   write the list numbers the rest for itself, past the list's next UID, until someone can. */
static int give_uids(struct mbox *m, struct scan *s)
{
	struct uidlist *u = &m->state->ul;
	size_t unknown = 0, k;

	for (size_t i = 0; i < s->n; i++) {
		if (u->uidvalidity && mbox_map_get(&u->map, base_of(s->f[i].file), s->f[i].blen, &k))
			s->f[i].uid = u->rec[k].uid;
		else
			s->f[i].uid = 0, unknown++;
	}
	if (!unknown && u->uidvalidity)
		return 1;
	struct found **todo = malloc((unknown ? unknown : 1) * sizeof *todo);
	const char **bases = malloc((unknown ? unknown : 1) * sizeof *bases);
	size_t *lens = malloc((unknown ? unknown : 1) * sizeof *lens);
	uint32_t *uids = malloc((unknown ? unknown : 1) * sizeof *uids);
	int ok = todo && bases && lens && uids;
	if (ok) {
		size_t j = 0;
		for (size_t i = 0; i < s->n; i++)
			if (!s->f[i].uid)
				todo[j++] = &s->f[i];
		qsort(todo, unknown, sizeof *todo, found_name_cmp);
		for (j = 0; j < unknown; j++) {
			bases[j] = base_of(todo[j]->file);
			lens[j] = todo[j]->blen;
		}
		ok = uidlist_assign(m->root, m->dir, u, bases, lens, unknown, uids);
		if (!ok && m->readonly && (errno == EACCES || errno == EROFS || errno == EPERM)) {
			if (!u->uidvalidity)
				u->uidvalidity = (uint32_t)time(0);
			for (j = 0; j < unknown; j++)
				uids[j] = u->nextuid + (uint32_t)j;
			ok = 1;
		}
		for (j = 0; ok && j < unknown; j++)
			todo[j]->uid = uids[j];
	}
	int e = errno;
	free(todo);
	free(bases);
	free(lens);
	free(uids);
	errno = ok ? errno : e ? e : ENOMEM;
	return ok;
}

/* Gives msg the file name file (taken, or 0), freeing the one it had unless that is in the
   packed block. */
static void msg_set_file(struct mbox *m, struct mbox_msg *msg, char *file)
{
	const struct mbox_sync_state *st = m->state;
	uintptr_t p = (uintptr_t)msg->file;

	if (!st || !st->names || p < (uintptr_t)st->names ||
	    p >= (uintptr_t)st->names + st->names_size)
		free(msg->file);
	msg->file = file;
}

static void msg_free(struct mbox *m, struct mbox_msg *msg)
{
	msg_set_file(m, msg, 0);
}

static int view_grow(struct mbox *m, size_t more)
{
	if (m->count + more <= m->cap)
		return 1;
	size_t cap = m->cap ? m->cap : 64;
	while (cap < m->count + more)
		cap *= 2;
	struct mbox_msg *v = realloc(m->msg, cap * sizeof *v);
	if (!v)
		return 0;
	m->msg = v;
	m->cap = cap;
	return 1;
}

/* Appends the file f (taking it) to the view. */
static void view_add(struct mbox *m, struct found *f, int opts)
{
	struct mbox_msg *msg = &m->msg[m->count++];
	const char *name = base_of(f->file);

	*msg = (struct mbox_msg){ .uid = f->uid, .file = f->file };
	f->file = 0;
	parse_info(name, &msg->flags, &msg->keywords);
	if (f->recent)
		msg->flags |= MBOX_RECENT;
	msg->vsize = name_number(name, ",W=");
	(void)opts;	/* the internal date is read when asked for: mbox_internaldate */
}

/* Nothing changed on disk since the last full scan, as far as can be known cheaply. */
static int unchanged(struct mbox *m)
{
	struct mbox_sync_state *st = m->state;
	char path[PATH_MAX];
	struct stat a, b, u;

	if (!st->scanned_ok || !modseq_unchanged(m))
		return 0;
	snprintf(path, sizeof path, "%s/new", m->dir);
	if (stat(path, &a) < 0 || !same_time(&a.st_mtim, &st->new_mtime))
		return 0;
	snprintf(path, sizeof path, "%s/cur", m->dir);
	if (stat(path, &b) < 0 || !same_time(&b.st_mtim, &st->cur_mtime))
		return 0;
	time_t newest = a.st_mtime > b.st_mtime ? a.st_mtime : b.st_mtime;
	if (st->scanned.tv_sec < newest + MTIME_SETTLE)
		return 0;
	snprintf(path, sizeof path, "%s/" MBOX_UIDLIST, m->dir);
	if (stat(path, &u) < 0)
		return errno == ENOENT && st->ul_seen.ino == 0;
	return u.st_ino == st->ul_seen.ino && u.st_size == st->ul_seen.size &&
	       same_time(&u.st_mtim, &st->ul_seen.mtime);
}

int mbox_view_has(const struct mbox *m, uint32_t uid)
{
	size_t lo = 0, hi = m->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->msg[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->count && m->msg[lo].uid == uid && !m->msg[lo].gone;
}

static int do_sync(struct mbox *m, const struct mbox_events *ev, int allow_expunge, int opts,
		   char *why, size_t whysize)
{
	struct scan s = { 0 };
	unsigned char *changed = 0;

	int held_back = 0;	/* messages gone during a FETCH, to be announced now */
	for (size_t i = 0; allow_expunge && i < m->count && !held_back; i++)
		held_back = m->msg[i].gone;
	if (m->count && !held_back && unchanged(m))
		return 1;
	for (int attempt = 0;; attempt++) {
		if (!scan_dirs(m, !m->readonly, &s) || !uidlist_read(m->dir, &m->state->ul) ||
		    !give_uids(m, &s)) {
			int e = errno;
			scan_free(&s);
			return mbox_fail(why, whysize, e, "unable to read %s", m->dir);
		}
		if (s.n)
			qsort(s.f, s.n, sizeof *s.f, found_uid_cmp);
		/* A file renamed while readdir ran may have been missed: one more look before
		   a message is taken for expunged. */
		size_t j = 0, missing = 0;
		for (size_t i = 0; i < m->count; i++) {
			while (j < s.n && s.f[j].uid < m->msg[i].uid)
				j++;
			if (!m->msg[i].gone && (j == s.n || s.f[j].uid != m->msg[i].uid))
				missing++;
		}
		if (!missing || attempt)
			break;
		scan_free(&s);
	}
	keywords_read(m->dir, m->keyword);
	changed = calloc(m->count + 1, 1);
	if (!changed || !view_grow(m, s.n)) {
		free(changed);
		scan_free(&s);
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	}
	uint32_t last = m->count ? m->msg[m->count - 1].uid : 0;
	size_t j = 0;
	for (size_t i = 0; i < m->count; i++) {
		struct mbox_msg *msg = &m->msg[i];
		while (j < s.n && s.f[j].uid < msg->uid)
			j++;
		if (j == s.n || s.f[j].uid != msg->uid) {
			msg->gone = 1;
			continue;
		}
		struct found *f = &s.f[j];
		if (strcmp(f->file, msg->file)) {
			unsigned flags;
			uint32_t kw;
			parse_info(base_of(f->file), &flags, &kw);
			if (flags != (msg->flags & ~MBOX_RECENT) || kw != msg->keywords) {
				changed[i] = 1;
				msg->flags = flags | (msg->flags & MBOX_RECENT);
				msg->keywords = kw;
			}
			msg_set_file(m, msg, f->file);
			f->file = 0;
		}
	}
	if (allow_expunge) {
		/* Highest first: each number is then right in the view as it is at that moment. */
		for (size_t i = m->count; i-- > 0;)
			if (m->msg[i].gone && ev && ev->expunged)
				ev->expunged(ev->ctx, i + 1);
		size_t o = 0;
		for (size_t i = 0; i < m->count; i++) {
			if (m->msg[i].gone) {
				msg_free(m, &m->msg[i]);
				continue;
			}
			changed[o] = changed[i];
			m->msg[o++] = m->msg[i];
		}
		m->count = o;
	}
	size_t known = m->count;	/* the messages changed[] is about */
	/* New messages: only past the last UID the session has, so that sequence numbers keep
	   following UIDs. One numbered lower (a race with another session's numbering) waits
	   for the next session. */
	for (j = 0; j < s.n; j++)
		if (s.f[j].uid > last && s.f[j].file)
			view_add(m, &s.f[j], opts);
	uint32_t next = m->state->ul.nextuid;
	if (m->count && m->msg[m->count - 1].uid >= next)
		next = m->msg[m->count - 1].uid + 1;
	m->uidnext = next;
	m->uidvalidity = m->state->ul.uidvalidity;
	m->state->ul_seen.ino = m->state->ul.ino;
	m->state->ul_seen.size = m->state->ul.size;
	m->state->ul_seen.mtime = m->state->ul.mtime;
	scan_free(&s);
	/* Modseqs before the FETCHes that tell of changes, which carry them. A failure leaves
	   the modseqs as they were, to be recorded by the next sync: the flags are still told. */
	if (!(opts & OPEN_STATUS))
		modseq_sync(m, changed, known, 0, 0);
	for (size_t i = 0; i < known; i++)
		if (changed[i] && ev && ev->changed)
			ev->changed(ev->ctx, i + 1);
	free(changed);
	return 1;
}

int mbox_sync(struct mbox *m, const struct mbox_events *ev, int allow_expunge, char *why,
	      size_t whysize)
{
	size_t before = m->count;
	int ok = do_sync(m, ev, allow_expunge, 0, why, whysize);

	/* Sizes of the new messages that this session or an earlier one cached, as far as the
	   cache is in memory: a new message is seldom in the file, not worth reading it for. */
	if (ok && m->count > before)
		mbox_cache_fill(m);
	return ok;
}

/*
 * The view's names were allocated one by one as scans found them, among the scans'
 * temporaries; once those are freed the names keep most of the heap's pages from the system
 * (an idle session's heap was twice what it held). Packed end to end in one block, with the
 * view cut to its length, they leave the rest of the heap free to be given back.
 */
static void pack_view(struct mbox *m)
{
	struct mbox_sync_state *st = m->state;
	size_t size = 0;

	for (size_t i = 0; i < m->count; i++)
		if (m->msg[i].file)
			size += strlen(m->msg[i].file) + 1;
	char *names = size ? malloc(size) : 0;
	if (size && !names)
		return;	/* stays as it was: only memory is lost */
	char *p = names;
	for (size_t i = 0; i < m->count; i++) {
		struct mbox_msg *msg = &m->msg[i];
		if (!msg->file)
			continue;
		size_t n = strlen(msg->file) + 1;
		memcpy(p, msg->file, n);
		msg_set_file(m, msg, p);
		p += n;
	}
	free(st->names);
	st->names = names;
	st->names_size = size;

	if (m->count < m->cap) {
		struct mbox_msg *v = m->count ? malloc(m->count * sizeof *v) : 0;
		if (v || !m->count) {
			if (m->count)
				memcpy(v, m->msg, m->count * sizeof *v);
			free(m->msg);
			m->msg = v;
			m->cap = m->count;
		}
	}
}

struct uidlist *mbox_view_uidlist(struct mbox *m)
{
	return m->state ? &m->state->ul : 0;
}

void mbox_rest(struct mbox *m)
{
	if (!m->state)
		return;
	mbox_cache_rest(m);
	modseq_rest(m);
	/* A read-only session that could not write the list numbered new messages in its own
	   copy: that copy stays. */
	if (!m->readonly) {
		uidlist_free(&m->state->ul);
		m->state->ul.size = -1;	/* read again, whatever the file looks like */
	}
	pack_view(m);
}

static int open_view(struct mbox *m, const char *root, const char *name, int readonly, int opts,
		     char *why, size_t whysize)
{
	char dir[PATH_MAX];

	*m = (struct mbox){ 0 };
	if (!mbox_folder_dir(root, name, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	if (!mbox_folder_exists(dir)) {
		/* INBOX always exists: a Maildir nothing was delivered to yet is made now. */
		if (strcasecmp(name, "INBOX") || !maildir_make(root))
			return mbox_fail(why, whysize, ENOENT, "no folder %s", name);
	}
	m->root = strdup(root);
	m->name = strdup(strcasecmp(name, "INBOX") ? name : "INBOX");
	m->dir = strdup(dir);
	m->state = calloc(1, sizeof *m->state);
	m->readonly = readonly;
	if (!m->root || !m->name || !m->dir || !m->state) {
		mbox_close(m);
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	}
	m->state->ul.size = -1;
	if (!do_sync(m, 0, 1, opts, why, whysize)) {
		int e = errno;
		mbox_close(m);
		errno = e;
		return 0;
	}
	if (!(opts & OPEN_STATUS))
		mbox_cache_load(m);
	return 1;
}

int mbox_open(struct mbox *m, const char *root, const char *name, int readonly, char *why,
	      size_t whysize)
{
	return open_view(m, root, name, readonly, 0, why, whysize);
}

void mbox_close(struct mbox *m)
{
	if (m->cache)
		mbox_cache_save(m);
	mbox_cache_free(m);
	mbox_modseq_free(m);
	for (size_t i = 0; i < m->count; i++)
		msg_free(m, &m->msg[i]);
	free(m->msg);
	keywords_free(m->keyword);
	if (m->state) {
		uidlist_free(&m->state->ul);
		free(m->state->names);
		free(m->state);
	}
	free(m->root);
	free(m->name);
	free(m->dir);
	*m = (struct mbox){ 0 };
}

/* Finds the file of msg again after someone renamed it (new flags, or new/ to cur/): 1 and
   msg->file updated, or 0 (ENOENT: it is gone). */
static int relocate(struct mbox *m, struct mbox_msg *msg)
{
	const char *base = base_of(msg->file);
	size_t blen = mbox_base_len(base);
	char path[PATH_MAX];

	static const char *const sub[] = { "cur", "new" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", m->dir, sub[i]);
		DIR *d = opendir(path);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (mbox_base_len(de->d_name) != blen || memcmp(de->d_name, base, blen))
				continue;
			size_t nl = strlen(de->d_name);
			char *file = malloc(nl + 5);
			if (!file)
				break;
			snprintf(file, nl + 5, "%s/%s", sub[i], de->d_name);
			msg_set_file(m, msg, file);
			closedir(d);
			return 1;
		}
		closedir(d);
	}
	errno = ENOENT;
	return 0;
}

int mbox_store(struct mbox *m, size_t idx, struct mbox_change ch, char *why, size_t whysize)
{
	char name[PATH_MAX], from[PATH_MAX], to[PATH_MAX];

	if (idx >= m->count)
		return mbox_fail(why, whysize, EINVAL, "no message %zu", idx + 1);
	if (m->readonly)
		return mbox_fail(why, whysize, EROFS, "the folder is read-only");
	struct mbox_msg *msg = &m->msg[idx];
	if (msg->gone)
		return 1;	/* expunged by someone: nothing to store, as Dovecot has it */
	unsigned flags;
	uint32_t keywords;
	for (int attempt = 0; attempt < 3; attempt++) {
		/* On the flags as the view has them, or as someone else renamed the file to. */
		flags = ((msg->flags & ~MBOX_RECENT) | ch.add) & ~ch.remove & ~MBOX_RECENT;
		keywords = (msg->keywords | ch.kw_add) & ~ch.kw_remove;
		if (!make_name(base_of(msg->file), flags, keywords, name, sizeof name))
			return mbox_fail(why, whysize, errno, "file name of message %zu", idx + 1);
		if (!strcmp(name, base_of(msg->file)))
			break;
		/* Renamed within its own directory, as Dovecot does it. */
		int n1 = snprintf(from, sizeof from, "%s/%s", m->dir, msg->file);
		int n2 = snprintf(to, sizeof to, "%s/%.3s/%s", m->dir, msg->file, name);
		if (n1 >= (int)sizeof from || n2 >= (int)sizeof to)
			return mbox_fail(why, whysize, ENAMETOOLONG, "file name of message %zu",
					 idx + 1);
		if (rename(from, to) == 0) {
			size_t nl = strlen(name);
			char *file = malloc(nl + 5);
			if (!file)
				return mbox_fail(why, whysize, ENOMEM, "out of memory");
			snprintf(file, nl + 5, "%.3s/%s", msg->file, name);
			msg_set_file(m, msg, file);
			break;
		}
		if (errno != ENOENT)
			return mbox_fail(why, whysize, errno, "unable to rename %s", from);
		if (!relocate(m, msg)) {
			msg->gone = 1;
			return 1;
		}
		unsigned theirs;
		parse_info(base_of(msg->file), &theirs, &msg->keywords);
		msg->flags = theirs | (msg->flags & MBOX_RECENT);
	}
	if (m->modseq && ((msg->flags & ~MBOX_RECENT) != flags || msg->keywords != keywords))
		msg->modseq = 0;	/* its new modseq comes with mbox_modseq_commit */
	msg->flags = flags | (msg->flags & MBOX_RECENT);
	msg->keywords = keywords;
	return 1;
}

time_t mbox_internaldate(struct mbox *m, size_t idx)
{
	struct mbox_msg *msg = &m->msg[idx];
	char path[PATH_MAX];
	struct stat st;

	/* Read on first use, not at every SELECT: a stat per message made a warm SELECT of
	   10 000 messages a hundred times Dovecot's (bench/imap-sort). */
	for (int attempt = 0; !msg->internaldate && msg->file && attempt < 2; attempt++) {
		if (snprintf(path, sizeof path, "%s/%s", m->dir, msg->file) >= (int)sizeof path)
			break;
		if (stat(path, &st) == 0)
			msg->internaldate = st.st_mtime;
		else if (errno != ENOENT || !relocate(m, msg))
			break;
	}
	return msg->internaldate;
}

int mbox_keyword(struct mbox *m, const char *name, int create)
{
	for (int i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if (m->keyword[i] && !strcasecmp(m->keyword[i], name))
			return i;
	if (!create || m->readonly)
		return -1;
	return keywords_add(m->dir, m->keyword, name);
}

int mbox_expunge(struct mbox *m, const struct mbox_events *ev, const unsigned char *want,
		 char *why, size_t whysize)
{
	char path[PATH_MAX];
	unsigned long long bytes = 0, count = 0;

	if (m->readonly)
		return mbox_fail(why, whysize, EROFS, "the folder is read-only");
	int ok = 1, e = 0;
	for (size_t i = 0; i < m->count; i++) {
		struct mbox_msg *msg = &m->msg[i];
		if (msg->gone || !(msg->flags & MBOX_DELETED) || (want && !want[i]))
			continue;
		for (int attempt = 0; attempt < 3; attempt++) {
			snprintf(path, sizeof path, "%s/%s", m->dir, msg->file);
			struct stat st;
			unsigned long long size = name_number(base_of(msg->file), ",S=");
			if (!size && stat(path, &st) == 0)
				size = (unsigned long long)st.st_size;
			if (unlink(path) == 0) {
				bytes += size;
				count++;
				msg->gone = 1;
				break;
			}
			if (errno != ENOENT) {
				ok = 0;
				e = errno;
				break;
			}
			if (!relocate(m, msg)) {
				msg->gone = 1;	/* someone else expunged it first */
				break;
			}
		}
		if (!ok)
			break;
	}
	if (count) {
		char cur[PATH_MAX];
		snprintf(cur, sizeof cur, "%s/cur", m->dir);
		sync_dir_at(AT_FDCWD, cur);
		mbox_quota_sub(m->root, bytes, count);
	}
	for (size_t i = m->count; i-- > 0;)
		if (m->msg[i].gone && ev && ev->expunged)
			ev->expunged(ev->ctx, i + 1);
	size_t o = 0;
	for (size_t i = 0; i < m->count; i++) {
		if (m->msg[i].gone)
			msg_free(m, &m->msg[i]);
		else
			m->msg[o++] = m->msg[i];
	}
	m->count = o;
	if (count)
		mbox_modseq_commit(m, 0, 0);	/* else the next sync records them */
	return ok ? 1 : mbox_fail(why, whysize, e, "unable to expunge in %s", m->dir);
}

int mbox_read(struct mbox *m, size_t idx, const char **data, size_t *len, char *why,
	      size_t whysize)
{
	char path[PATH_MAX];

	if (idx >= m->count)
		return mbox_fail(why, whysize, EINVAL, "no message %zu", idx + 1);
	struct mbox_msg *msg = &m->msg[idx];
	int fd = -1;
	for (int attempt = 0; fd < 0 && attempt < 3; attempt++) {
		snprintf(path, sizeof path, "%s/%s", m->dir, msg->file);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && (errno != ENOENT || !relocate(m, msg)))
			return mbox_fail(why, whysize, errno, "unable to open message %zu", idx + 1);
	}
	if (fd < 0)
		return mbox_fail(why, whysize, ENOENT, "unable to open message %zu", idx + 1);
	m->reads++;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return mbox_fail(why, whysize, e, "unable to stat message %zu", idx + 1);
	}
	if (st.st_size == 0) {
		close(fd);
		*data = "";
		*len = 0;
		return 1;
	}
	void *p = mmap(0, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return mbox_fail(why, whysize, e, "unable to map message %zu", idx + 1);
	*data = p;
	*len = (size_t)st.st_size;
	return 1;
}

void mbox_release(const char *data, size_t len)
{
	if (data && len)
		munmap((void *)data, len);
}

/* A new base name as Dovecot makes them, "<sec>.M<usec>P<pid>.<host>", with ",S=" and ",W="
   when known. Names repeat only within one microsecond of one process: the caller's O_EXCL or
   link notices, and it asks again. */
static void new_base(char *out, size_t size, unsigned long long s, unsigned long long w)
{
	struct timeval tv;
	gettimeofday(&tv, 0);
	int n = snprintf(out, size, "%lld.M%06ldP%ld.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
			 (long)getpid(), mbox_hostname());
	if (n > 0 && (size_t)n < size && s)
		n += snprintf(out + n, size - (size_t)n, ",S=%llu", s);
	if (n > 0 && (size_t)n < size && w)
		snprintf(out + n, size - (size_t)n, ",W=%llu", w);
}

/* Keyword names to letters of the folder in dir, adding those it lacks (while there is room:
   past 26 a keyword is dropped, as a Maildir cannot hold it). */
static uint32_t keyword_bits(const char *dir, const char *const *names, size_t n)
{
	char *kw[MBOX_KEYWORDS_MAX] = { 0 };
	uint32_t bits = 0;

	keywords_read(dir, kw);
	for (size_t i = 0; i < n; i++) {
		int k = -1;
		for (int j = 0; j < MBOX_KEYWORDS_MAX && k < 0; j++)
			if (kw[j] && !strcasecmp(kw[j], names[i]))
				k = j;
		if (k < 0)
			k = keywords_add(dir, kw, names[i]);
		if (k >= 0)
			bits |= 1u << k;
	}
	keywords_free(kw);
	return bits;
}

/* Adds the message's bytes to maildirsize, when the Maildir keeps one. */
static void quota_add(const char *root, unsigned long long bytes)
{
	if (!maildir_quota_add(root, bytes) && errno != ENOENT) {
		/* a cache: the next rebuild corrects it */
	}
}

/*
 * Where an appended message goes, relative to its folder: without flags into new/ with no
 * info, as Dovecot saves it, so that it is \Recent for the session that sees it first (RFC
 * 3501 section 6.3.11); with flags into cur/ under its name with them.
 */
static const char *placed(unsigned flags, uint32_t kw, const char *base, const char *fname)
{
	static char rel[512];
	snprintf(rel, sizeof rel, "%s/%s", flags || kw ? "cur" : "new", flags || kw ? fname : base);
	return rel;
}

/* One message of an APPEND on its way in: written to tmp/, then linked to its place. */
struct arriving {
	char base[300];
	char rel[512];		/* its place, relative to the folder: "new/..." or "cur/..." */
	size_t size;		/* its bytes as stored, with LF line ends */
	uint32_t kw;
	int written, linked;
};

/* Writes msg to tmp/ of dir under a new name: LF line ends, as Dovecot and every delivery store
   messages (W= is the size with CRLF, which is what IMAP counts), its date, fsync. 1, or 0 with
   errno. */
static int write_tmp(const char *dir, const struct mbox_new *msg, struct arriving *a)
{
	char tmp[PATH_MAX], fname[450];
	char *lf = malloc(msg->len ? msg->len : 1);
	if (!lf)
		return 0;
	size_t n = 0, lines = 0;
	for (size_t i = 0; i < msg->len; i++) {
		if (msg->data[i] == '\r' && i + 1 < msg->len && msg->data[i + 1] == '\n')
			continue;
		if (msg->data[i] == '\n')
			lines++;
		lf[n++] = msg->data[i];
	}
	int fd = -1;
	for (int tries = 0;; tries++) {
		new_base(a->base, sizeof a->base, n, (unsigned long long)n + lines);
		if (!make_name(a->base, msg->flags, a->kw, fname, sizeof fname) ||
		    snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, a->base) >= (int)sizeof tmp) {
			free(lf);
			return errno = ENAMETOOLONG, 0;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries == 100) {
			free(lf);
			return 0;
		}
	}
	a->written = 1;
	a->size = n;
	snprintf(a->rel, sizeof a->rel, "%s", placed(msg->flags, a->kw, a->base, fname));
	int ok = fd_write_all(fd, lf, n);
	free(lf);
	if (ok && msg->internaldate > 0) {
		struct timespec t[2] = { { msg->internaldate, 0 }, { msg->internaldate, 0 } };
		ok = futimens(fd, t) == 0;
	}
	ok = ok && fsync(fd) == 0;
	int e = errno;
	if (close(fd) < 0 && ok) {
		ok = 0;
		e = errno;
	}
	return ok ? 1 : (errno = e, 0);
}

/* Links a's tmp/ file to its place in dir, under another name when that one is taken (the same
   microsecond elsewhere). 1, or 0 with errno. */
static int link_in(const char *dir, const struct mbox_new *msg, struct arriving *a)
{
	char tmp[PATH_MAX], dest[PATH_MAX], again[300], fname[450];

	snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, a->base);
	for (int tries = 0;; tries++) {
		if (snprintf(dest, sizeof dest, "%s/%s", dir, a->rel) >= (int)sizeof dest)
			return errno = ENAMETOOLONG, 0;
		if (link(tmp, dest) == 0)
			break;
		if (errno != EEXIST || tries == 100)
			return 0;
		unsigned long long s = name_number(a->base, ",S="), w = name_number(a->base, ",W=");
		new_base(again, sizeof again, s, w);
		if (!make_name(again, msg->flags, a->kw, fname, sizeof fname))
			return errno = ENAMETOOLONG, 0;
		snprintf(a->rel, sizeof a->rel, "%s", placed(msg->flags, a->kw, again, fname));
		/* the tmp/ file keeps its name: its base is what is removed at the end */
		char rename_to[PATH_MAX];
		if (snprintf(rename_to, sizeof rename_to, "%s/tmp/%s", dir, again) >=
			    (int)sizeof rename_to || rename(tmp, rename_to) < 0)
			return 0;
		memcpy(a->base, again, sizeof a->base);
		memcpy(tmp, rename_to, sizeof tmp);
	}
	a->linked = 1;
	return 1;
}

/* Removes what an APPEND left: the tmp/ files, and with undo the messages linked in. */
static void arrivals_clean(const char *dir, struct arriving *a, size_t n, int undo)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		if (undo && a[i].linked) {
			snprintf(path, sizeof path, "%s/%s", dir, a[i].rel);
			unlink(path);
		}
		if (a[i].written) {
			snprintf(path, sizeof path, "%s/tmp/%s", dir, a[i].base);
			unlink(path);
		}
	}
}

/* fsync of new/ and cur/ of dir, those the messages went to. */
static int sync_places(const char *dir, const struct arriving *a, size_t n)
{
	char path[PATH_MAX];
	int to_new = 0, to_cur = 0;
	for (size_t i = 0; i < n; i++)
		*(a[i].rel[0] == 'n' ? &to_new : &to_cur) = 1;
	for (int k = 0; k < 2; k++) {
		if (!(k ? to_cur : to_new))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, k ? "cur" : "new");
		if (!sync_dir_at(AT_FDCWD, path))
			return 0;
	}
	return 1;
}

int mbox_append_batch(const char *root, const char *name, const struct mbox_new *msgs, size_t n,
		      uint32_t *uidvalidity, uint32_t *uids, char *why, size_t whysize)
{
	char dir[PATH_MAX - 64];

	if (!mbox_folder_dir(root, name, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	if (!mbox_folder_exists(dir) && (strcasecmp(name, "INBOX") || !maildir_make(root)))
		return mbox_fail(why, whysize, ENOENT, "no folder %s", name);
	/* Messages already there that have no UID yet (a delivery's) get theirs first, as
	   Dovecot's sync before an append gives them: UIDs follow the order of arrival. */
	struct mbox before;
	if (!open_view(&before, root, name, 1, OPEN_STATUS, why, whysize))
		return 0;
	mbox_close(&before);
	struct arriving *a = calloc(n ? n : 1, sizeof *a);
	const char **bases = calloc(n ? n : 1, sizeof *bases);
	size_t *lens = calloc(n ? n : 1, sizeof *lens);
	if (!a || !bases || !lens) {
		free(a);
		free(bases);
		free(lens);
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	}
	/* All or nothing (RFC 3502): every message durable in tmp/ first, then all linked in
	   and their directories synced; any failure takes back what was linked. */
	int ok = 1, e = 0;
	for (size_t i = 0; i < n && ok; i++) {
		a[i].kw = msgs[i].nkeywords ? keyword_bits(dir, msgs[i].keywords,
							   msgs[i].nkeywords) : 0;
		ok = write_tmp(dir, &msgs[i], &a[i]);
	}
	for (size_t i = 0; i < n && ok; i++)
		ok = link_in(dir, &msgs[i], &a[i]);
	ok = ok && sync_places(dir, a, n);
	if (!ok) {
		e = errno;
		arrivals_clean(dir, a, n, 1);
		free(a);
		free(bases);
		free(lens);
		return mbox_fail(why, whysize, e, "unable to store the messages in %s", dir);
	}
	arrivals_clean(dir, a, n, 0);
	unsigned long long total = 0;
	for (size_t i = 0; i < n; i++) {
		total += a[i].size;
		bases[i] = a[i].base;
		lens[i] = strlen(a[i].base);
	}
	quota_add(root, total);
	struct uidlist u = UIDLIST_ZERO;
	ok = uidlist_assign(root, dir, &u, bases, lens, n, uids);
	/* The messages are stored either way: a NO now would have the client append them again.
	   Without UIDs now (*uidvalidity 0: no APPENDUID, as RFC 4315 allows) they get them on
	   the next sync. */
	*uidvalidity = ok ? u.uidvalidity : 0;
	uidlist_free(&u);
	free(a);
	free(bases);
	free(lens);
	return 1;
}

int mbox_append(const char *root, const char *name, const char *data, size_t len,
		unsigned flags, const char *const *keywords, size_t nkeywords, time_t internaldate,
		uint32_t *uidvalidity, uint32_t *uid, char *why, size_t whysize)
{
	struct mbox_new one = { data, len, flags, keywords, nkeywords, internaldate };
	return mbox_append_batch(root, name, &one, 1, uidvalidity, uid, why, whysize);
}

/* Copies src to a new file dest, through tmp/ of the folder dir, for when no link can be. */
static int copy_file(const char *src, const char *dir, const char *base, const char *dest)
{
	char tmp[PATH_MAX], buf[65536];

	if (snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, base) >= (int)sizeof tmp)
		return errno = ENAMETOOLONG, 0;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return 0;
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return errno = e, 0;
	}
	int ok = 1;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ok = r == 0;
			break;
		}
		if (!fd_write_all(out, buf, (size_t)r)) {
			ok = 0;
			break;
		}
	}
	struct stat st;
	if (ok && fstat(in, &st) == 0) {
		struct timespec t[2] = { st.st_mtim, st.st_mtim };
		futimens(out, t);	/* the internal date goes along */
	}
	ok = ok && fsync(out) == 0;
	int e = errno;
	close(in);
	if (close(out) < 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (ok && link(tmp, dest) < 0) {
		ok = 0;
		e = errno;
	}
	unlink(tmp);
	errno = e;
	return ok;
}

int mbox_copy(struct mbox *m, const size_t *idx, size_t n, const char *dest,
	      uint32_t *uidvalidity, uint32_t *uids, char *why, size_t whysize)
{
	char dir[PATH_MAX - 64], src[PATH_MAX], to[PATH_MAX], fname[450];

	if (!mbox_folder_dir(m->root, dest, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	if (!mbox_folder_exists(dir) && (strcasecmp(dest, "INBOX") || !maildir_make(m->root)))
		return mbox_fail(why, whysize, ENOENT, "no folder %s", dest);
	for (size_t i = 0; i < n; i++)
		if (idx[i] >= m->count || m->msg[idx[i]].gone)
			return mbox_fail(why, whysize, ENOENT, "message %zu was expunged", idx[i] + 1);
	char **bases = calloc(n ? n : 1, sizeof *bases);
	char **exts = calloc(n ? n : 1, sizeof *exts);
	size_t *lens = calloc(n ? n : 1, sizeof *lens);
	if (!bases || !exts || !lens) {
		free(bases);
		free(exts);
		free(lens);
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	}
	/* Keyword letters mean other names in another folder: mapped through the names. */
	int map[MBOX_KEYWORDS_MAX];
	for (int k = 0; k < MBOX_KEYWORDS_MAX; k++)
		map[k] = -2;
	int ok = 1, e = 0;
	size_t done = 0;
	for (; ok && done < n; done++) {
		struct mbox_msg *msg = &m->msg[idx[done]];
		uint32_t kw = 0;
		for (int k = 0; k < MBOX_KEYWORDS_MAX; k++) {
			if (!(msg->keywords & (1u << k)) || !m->keyword[k])
				continue;
			if (map[k] == -2) {
				const char *nm = m->keyword[k];
				uint32_t b = keyword_bits(dir, &nm, 1);
				map[k] = b ? __builtin_ctz(b) : -1;
			}
			if (map[k] >= 0)
				kw |= 1u << map[k];
		}
		const char *sbase = base_of(msg->file);
		unsigned long long s = name_number(sbase, ",S="), w = name_number(sbase, ",W=");
		struct stat st;
		for (int tries = 0;; tries++) {
			char base[300];
			snprintf(src, sizeof src, "%s/%s", m->dir, msg->file);
			if (!s && stat(src, &st) == 0)
				s = (unsigned long long)st.st_size;
			new_base(base, sizeof base, s, w);
			if (!make_name(base, msg->flags, kw, fname, sizeof fname) ||
			    snprintf(to, sizeof to, "%s/cur/%s", dir, fname) >= (int)sizeof to) {
				ok = 0;
				e = ENAMETOOLONG;
				break;
			}
			int r = link(src, to) == 0 || ((errno == EXDEV || errno == EPERM ||
							errno == EMLINK) && copy_file(src, dir, base, to));
			if (r) {
				/* The copy keeps the message's GUID (OBJECTID's EMAILID), in its
				   uidlist line as Dovecot writes it: "G<guid>". */
				struct sa g = SA_ZERO;
				bases[done] = strdup(base);
				lens[done] = strlen(base);
				if (sa_cats(&g, "G") && mbox_message_guid(m, idx[done], &g) &&
				    sa_terminate(&g))
					exts[done] = g.s;
				else
					sa_free(&g);
				ok = bases[done] != 0 && exts[done] != 0;
				e = ENOMEM;
				break;
			}
			if (errno == ENOENT && tries < 3 && relocate(m, msg))
				continue;
			if (errno != EEXIST || tries > 100) {
				ok = 0;
				e = errno;
				break;
			}
		}
		if (ok)
			quota_add(m->root, s);
	}
	if (ok) {
		snprintf(to, sizeof to, "%s/cur", dir);
		if (!sync_dir_at(AT_FDCWD, to)) {
			ok = 0;
			e = errno;
		}
	}
	if (ok) {
		struct uidlist u = UIDLIST_ZERO;
		ok = uidlist_assign_ext(m->root, dir, &u, (const char *const *)bases, lens,
					(const char *const *)exts, n, uids);
		e = errno;
		*uidvalidity = u.uidvalidity;
		uidlist_free(&u);
	}
	for (size_t i = 0; i < n; i++) {
		free(bases[i]);
		free(exts[i]);
	}
	free(exts);
	free(bases);
	free(lens);
	return ok ? 1 : mbox_fail(why, whysize, e, "unable to copy into %s", dest);
}

int mbox_status(const char *root, const char *name, struct mbox_status *st, char *why,
		size_t whysize)
{
	struct mbox m;

	if (!open_view(&m, root, name, 1, OPEN_STATUS, why, whysize))
		return 0;
	*st = (struct mbox_status){ .messages = (uint32_t)m.count, .uidnext = m.uidnext,
				    .uidvalidity = m.uidvalidity };
	for (size_t i = 0; i < m.count; i++) {
		const struct mbox_msg *msg = &m.msg[i];
		/* Not moved to cur/ yet: recent for whoever opens the folder next. */
		if (!strncmp(msg->file, "new/", 4))
			st->recent++;
		if (!(msg->flags & MBOX_SEEN))
			st->unseen++;
		if (msg->flags & MBOX_DELETED)
			st->deleted++;
		/* RFC822.SIZE's sum at least (RFC 9051 6.3.11): Dovecot's ",W=" is that size,
		   ",S=" the file's, below it by a byte a line. */
		unsigned long long v = msg->vsize;
		if (!v)
			v = name_number(base_of(msg->file), ",W=");
		if (!v)
			v = name_number(base_of(msg->file), ",S=");
		st->size += v;
	}
	mbox_close(&m);
	return 1;
}
