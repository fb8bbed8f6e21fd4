/* postroom: ISC license, see LICENSE. */
/*
 * CONDSTORE's modification sequences (RFC 7162) for a Maildir folder, in our own file
 * "postroom-modseq" beside dovecot-uidlist (postroom-modseq(5) describes it).
 *
 * A Maildir keeps no history: a flag changed by Dovecot, by mutt on the files or by another
 * session is seen only as a file name that differs from what was seen before. So the file
 * records, for each message, the flags as last seen with the modseq given when they were
 * seen, and for each message that went, the modseq at which its going was seen. Whoever
 * syncs a view with modseqs on compares the disk (the view, just scanned) with the file and
 * records what differs under one new modseq; sessions that never asked for CONDSTORE pay
 * nothing, and what they changed is given its modseq by the next session that asks. Every
 * answer about modseqs comes after such a sync, so a change is never missed; at worst a
 * session whose scan is a moment old records a state that the next sync records again,
 * which costs the client a flag fetch, never a lost change.
 *
 * The file is appended to under Dovecot-style dotlock (postroom-modseq.lock) and rewritten
 * whole, through the lock file and a rename, when it has grown to twice what it holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mailbox-internal.h"
#include "sa.h"

#define MODSEQ_FILE "postroom-modseq"
/* Runs of expunged UIDs remembered for VANISHED (EARLIER); older ones are forgotten at a
   rewrite, and a client that asks about changes from before them is told of every UID that
   is missing in the range it asks about, as RFC 7162 allows. */
#define MODSEQ_GONE_MAX 10000

/* A message's flags as one number: MBOX_* system flags (RECENT never), keywords above them. */
#define STATE_KW_SHIFT 5
#define STATE_FLAGS (MBOX_SEEN | MBOX_ANSWERED | MBOX_FLAGGED | MBOX_DELETED | MBOX_DRAFT)

struct live {
	uint32_t uid;
	uint32_t state;
	uint64_t modseq;
};

struct gone {
	uint32_t lo, hi;
	uint64_t modseq;
};

struct mbox_modseq {
	uint32_t uidvalidity;	/* 0: nothing read yet */
	uint64_t highest;
	uint64_t floor;		/* expunges seen before this modseq are not all remembered */
	uint32_t covered;	/* every UID below it is live here or recorded gone */
	struct live *live;	/* UID order */
	size_t nlive, caplive;
	struct gone *gone;	/* file order, which is modseq order */
	size_t ngone, capgone;
	size_t lines;		/* records in the file, for the decision to rewrite */
	int broken;		/* a line was not understood: the next write rewrites */
	int ends_cut;		/* the file does not end in a newline: the next write rewrites */
	/* The file as read: a later read takes only what was appended, unless it was replaced.
	   A rewrite may get the same inode number back, so its header's H (the highest modseq
	   when it was written, never the same twice) tells one file from the next. */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint64_t generation;
};

static uint32_t state_of(const struct mbox_msg *msg)
{
	return (msg->flags & STATE_FLAGS) | (msg->keywords << STATE_KW_SHIFT);
}

/* The flags as Maildir info letters: "DFRST" then keyword letters, as in file names. */
static void state_letters(uint32_t state, char out[40])
{
	static const struct { unsigned flag; char letter; } sys[] = {
		{ MBOX_DRAFT, 'D' }, { MBOX_FLAGGED, 'F' }, { MBOX_ANSWERED, 'R' },
		{ MBOX_SEEN, 'S' }, { MBOX_DELETED, 'T' },
	};
	size_t o = 0;
	for (size_t i = 0; i < sizeof sys / sizeof *sys; i++)
		if (state & sys[i].flag)
			out[o++] = sys[i].letter;
	for (unsigned k = 0; k < MBOX_KEYWORDS_MAX; k++)
		if (state & (1u << (k + STATE_KW_SHIFT)))
			out[o++] = (char)('a' + k);
	out[o] = 0;
}

static int letters_state(const char *s, size_t n, uint32_t *state)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		switch (s[i]) {
		case 'D': v |= MBOX_DRAFT; break;
		case 'F': v |= MBOX_FLAGGED; break;
		case 'R': v |= MBOX_ANSWERED; break;
		case 'S': v |= MBOX_SEEN; break;
		case 'T': v |= MBOX_DELETED; break;
		default:
			if (s[i] < 'a' || s[i] > 'z')
				return 0;
			v |= 1u << (s[i] - 'a' + STATE_KW_SHIFT);
		}
	}
	*state = v;
	return 1;
}

static void store_clear(struct mbox_modseq *st)
{
	free(st->live);
	free(st->gone);
	*st = (struct mbox_modseq){ 0 };
}

void mbox_modseq_free(struct mbox *m)
{
	if (m->modseq) {
		store_clear(m->modseq);
		free(m->modseq);
		m->modseq = 0;
	}
}

/* The record of uid: its index, or where it would go (with *found 0). */
static size_t live_find(const struct mbox_modseq *st, uint32_t uid, int *found)
{
	size_t lo = 0, hi = st->nlive;
	*found = 0;
	if (st->nlive && st->live[st->nlive - 1].uid < uid)
		return st->nlive;	/* the usual case: a new message */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->live[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < st->nlive && st->live[lo].uid == uid;
	return lo;
}

static int live_set(struct mbox_modseq *st, uint32_t uid, uint32_t state, uint64_t modseq)
{
	int found;
	size_t i = live_find(st, uid, &found);
	if (!found) {
		if (st->nlive == st->caplive) {
			size_t cap = st->caplive ? st->caplive * 2 : 64;
			struct live *l = realloc(st->live, cap * sizeof *l);
			if (!l)
				return 0;
			st->live = l;
			st->caplive = cap;
		}
		memmove(st->live + i + 1, st->live + i, (st->nlive - i) * sizeof *st->live);
		st->nlive++;
	}
	st->live[i] = (struct live){ uid, state, modseq };
	if (uid >= st->covered)
		st->covered = uid + 1;
	return 1;
}

/* Records lo..hi as gone at modseq: their live records go, the run is remembered. */
static int gone_add(struct mbox_modseq *st, uint32_t lo, uint32_t hi, uint64_t modseq)
{
	int found;
	size_t i = live_find(st, lo, &found), j = i;
	while (j < st->nlive && st->live[j].uid <= hi)
		j++;
	memmove(st->live + i, st->live + j, (st->nlive - j) * sizeof *st->live);
	st->nlive -= j - i;
	if (st->ngone && st->gone[st->ngone - 1].modseq == modseq &&
	    st->gone[st->ngone - 1].hi + 1 == lo) {
		st->gone[st->ngone - 1].hi = hi;	/* one run, as it will be written */
	} else {
		if (st->ngone == st->capgone) {
			size_t cap = st->capgone ? st->capgone * 2 : 16;
			struct gone *g = realloc(st->gone, cap * sizeof *g);
			if (!g)
				return 0;
			st->gone = g;
			st->capgone = cap;
		}
		st->gone[st->ngone++] = (struct gone){ lo, hi, modseq };
	}
	if (hi >= st->covered)
		st->covered = hi + 1;
	return 1;
}

static int parse_number(const char **p, const char *end, uint64_t max, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;
	if (s == end || *s < '0' || *s > '9')
		return 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (n > (max - (uint64_t)(*s - '0')) / 10)
			return 0;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v = n;
	return 1;
}

/* One record line (without its newline); 0 when it is not one. */
static int parse_record(struct mbox_modseq *st, const char *s, const char *end)
{
	uint64_t a, b, modseq;
	if (*s == '-') {
		s++;
		if (!parse_number(&s, end, UINT32_MAX, &a) || !a)
			return 0;
		b = a;
		if (s < end && *s == ':' && (s++, !parse_number(&s, end, UINT32_MAX, &b) || b < a))
			return 0;
		if (s == end || *s++ != ' ' || !parse_number(&s, end, INT64_MAX, &modseq) ||
		    s != end)
			return 0;
		if (!gone_add(st, (uint32_t)a, (uint32_t)b, modseq))
			return -1;
	} else {
		uint32_t state;
		if (!parse_number(&s, end, UINT32_MAX, &a) || !a || s == end || *s++ != ' ' ||
		    !parse_number(&s, end, INT64_MAX, &modseq) || end - s < 2 || s[0] != ' ' ||
		    s[1] != ':' || !letters_state(s + 2, (size_t)(end - s - 2), &state))
			return 0;
		if (!live_set(st, (uint32_t)a, state, modseq))
			return -1;
	}
	if (modseq > st->highest)
		st->highest = modseq;
	st->lines++;
	return 1;
}

static int parse_header(struct mbox_modseq *st, const char *s, const char *end)
{
	static const char magic[] = "postroom-modseq 1 V";
	uint64_t v, f;
	size_t n = sizeof magic - 1;
	if ((size_t)(end - s) < n || memcmp(s, magic, n))
		return 0;
	s += n;
	if (!parse_number(&s, end, UINT32_MAX, &v) || !v || end - s < 3 || memcmp(s, " F", 2))
		return 0;
	s += 2;
	uint64_t h = 0;
	if (!parse_number(&s, end, INT64_MAX, &f) ||
	    (s != end && (end - s < 3 || memcmp(s, " H", 2) ||
			  (s += 2, !parse_number(&s, end, INT64_MAX, &h)) || s != end)))
		return 0;
	st->uidvalidity = (uint32_t)v;
	st->floor = f;
	st->highest = f > h ? f : h;
	st->generation = h;
	return 1;
}

/* The H of the header of the open file fd, or 0 when there is none. */
static uint64_t file_generation(int fd)
{
	char head[128];
	ssize_t n = pread(fd, head, sizeof head - 1, 0);
	if (n <= 0)
		return 0;
	const char *nl = memchr(head, '\n', (size_t)n);
	struct mbox_modseq probe = { 0 };
	return nl && parse_header(&probe, head, nl) ? probe.generation : 0;
}

static int same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Parses text[0..len), the whole file (from_start) or what was added to it; a last line
   without its newline is left for later (it is being written, or was cut by a crash). */
static int parse(struct mbox_modseq *st, const char *text, size_t len, int from_start)
{
	const char *p = text, *end = text + len;
	st->ends_cut = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			st->ends_cut = 1;
			break;
		}
		int r = from_start && p == text ? parse_header(st, p, nl) : parse_record(st, p, nl);
		if (r < 0)
			return 0;
		if (!r) {
			if (from_start && p == text) {
				errno = EINVAL;
				return 0;
			}
			st->broken = 1;
		}
		p = nl + 1;
	}
	/* Bytes of a cut line are read again with what follows them. */
	st->size -= (off_t)(end - p);
	return 1;
}

static int modseq_path(const struct mbox *m, char *path, size_t size)
{
	if (snprintf(path, size, "%s/" MODSEQ_FILE, m->dir) >= (int)size) {
		errno = ENAMETOOLONG;
		return 0;
	}
	return 1;
}

/*
 * Brings st up to date with the file: reads what was appended since the last read, or the
 * whole file when it was replaced or is new to us. 1 (with uidvalidity 0 when there is no
 * usable file), or 0 on I/O trouble.
 */
static int store_read(const struct mbox *m, struct mbox_modseq *st)
{
	char path[PATH_MAX];
	struct stat sb;

	if (!modseq_path(m, path, sizeof path))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return 0;
		store_clear(st);
		return 1;
	}
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return 0;
	}
	int whole = !st->uidvalidity || sb.st_ino != st->ino || sb.st_dev != st->dev ||
		    sb.st_size < st->size;
	if (!whole && sb.st_size == st->size && same_time(&sb.st_mtim, &st->mtime)) {
		close(fd);
		return 1;
	}
	if (!whole && (sb.st_size == st->size || file_generation(fd) != st->generation))
		whole = 1;	/* another file under the same inode number */
	if ((unsigned long long)sb.st_size > MBOX_FILE_MAX) {
		close(fd);
		errno = EFBIG;
		return 0;
	}
	off_t from = whole ? 0 : st->size;
	size_t len = (size_t)(sb.st_size - from);
	char *text = malloc(len ? len : 1);
	ssize_t got = text ? pread(fd, text, len, from) : -1;
	int e = errno;
	close(fd);
	if (got < 0 || !text) {
		free(text);
		errno = text ? e : ENOMEM;
		return 0;
	}
	if (whole)
		store_clear(st);
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = from + got;
	st->mtime = sb.st_mtim;
	int ok = parse(st, text, (size_t)got, whole);
	e = errno;
	free(text);
	if (!ok && whole && e == EINVAL) {
		store_clear(st);	/* not our file, or garbled: made anew */
		return 1;
	}
	errno = e;
	return ok;
}

/*
 * A new file starts its modseqs at the time in microseconds: should the file be lost and made
 * again, its values stay above any the lost one gave out (that would take more than a change
 * per microsecond), so a client's remembered modseq never looks newer than the folder.
 */
static uint64_t modseq_origin(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static int put_live(struct sa *s, const struct live *l)
{
	char letters[40];
	state_letters(l->state, letters);
	return sa_catf(s, "%" PRIu32 " %" PRIu64 " :%s\n", l->uid, l->modseq, letters);
}

static int put_gone(struct sa *s, const struct gone *g)
{
	if (g->lo == g->hi)
		return sa_catf(s, "-%" PRIu32 " %" PRIu64 "\n", g->lo, g->modseq);
	return sa_catf(s, "-%" PRIu32 ":%" PRIu32 " %" PRIu64 "\n", g->lo, g->hi, g->modseq);
}

static int live_modseq_cmp(const void *a, const void *b)
{
	const struct live *x = a, *y = b;
	if (x->modseq != y->modseq)
		return x->modseq < y->modseq ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The file anew: header, the oldest remembered expunges first, then the live records by
   modseq (so that the file stays in modseq order). The caller holds the lock (fd). */
static int store_rewrite(const struct mbox *m, struct mbox_modseq *st, int lockfd)
{
	char path[PATH_MAX];
	struct sa s = SA_ZERO;

	if (!modseq_path(m, path, sizeof path)) {
		dotlock_release(lockfd, path);
		return 0;
	}
	if (st->ngone > MODSEQ_GONE_MAX) {
		size_t drop = st->ngone - MODSEQ_GONE_MAX;
		uint64_t dropped = st->gone[drop - 1].modseq;
		if (dropped > st->floor)
			st->floor = dropped;
		memmove(st->gone, st->gone + drop, MODSEQ_GONE_MAX * sizeof *st->gone);
		st->ngone = MODSEQ_GONE_MAX;
	}
	struct live *order = malloc((st->nlive ? st->nlive : 1) * sizeof *order);
	int ok = order && sa_catf(&s, "postroom-modseq 1 V%" PRIu32 " F%" PRIu64 " H%" PRIu64 "\n",
				  st->uidvalidity, st->floor, st->highest);
	size_t gi = 0, li = 0;
	if (ok && st->nlive) {
		memcpy(order, st->live, st->nlive * sizeof *order);
		qsort(order, st->nlive, sizeof *order, live_modseq_cmp);
	}
	while (ok && (gi < st->ngone || li < st->nlive)) {
		if (li == st->nlive || (gi < st->ngone && st->gone[gi].modseq <= order[li].modseq))
			ok = put_gone(&s, &st->gone[gi++]);
		else
			ok = put_live(&s, &order[li++]);
	}
	free(order);
	if (!ok) {
		sa_free(&s);
		dotlock_release(lockfd, path);
		errno = ENOMEM;
		return 0;
	}
	ok = dotlock_replace(lockfd, path, s.s, s.len);
	int e = errno;
	sa_free(&s);
	struct stat sb;
	if (ok && stat(path, &sb) == 0) {
		st->dev = sb.st_dev;
		st->ino = sb.st_ino;
		st->size = sb.st_size;
		st->mtime = sb.st_mtim;
		st->generation = st->highest;
		st->lines = st->nlive + st->ngone;
		st->broken = st->ends_cut = 0;
	} else if (ok) {
		st->uidvalidity = 0;	/* read whole next time */
	}
	errno = e;
	return ok;
}

static int store_append(const struct mbox *m, struct mbox_modseq *st, const struct sa *lines,
			size_t nlines)
{
	char path[PATH_MAX];
	struct stat sb;

	if (!modseq_path(m, path, sizeof path))
		return 0;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* Synced: a modseq once given out must not be given again after a power cut. */
	int ok = fd_write_all(fd, lines->s, lines->len) && fdatasync(fd) == 0 &&
		 fstat(fd, &sb) == 0;
	int e = errno;
	close(fd);
	if (!ok) {
		st->uidvalidity = 0;	/* unsure what is there: read whole next time */
		errno = e;
		return 0;
	}
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->lines += nlines;
	return 1;
}

/*
 * What the view shows that st does not: lines to record it under modseq next, applied to st as
 * they are made. dirty_only: only messages of this session's own changes (modseq 0), whose
 * state the view knows for sure; else the whole view, just scanned. Returns the number of
 * lines, or -1.
 */
static long observe(const struct mbox *m, struct mbox_modseq *st, uint64_t next, int dirty_only,
		    struct sa *lines)
{
	long n = 0;

	for (size_t i = 0; i < m->count; i++) {
		const struct mbox_msg *msg = &m->msg[i];
		if (msg->gone || (dirty_only && msg->modseq))
			continue;
		uint32_t state = state_of(msg);
		int found;
		size_t at = live_find(st, msg->uid, &found);
		if (found && st->live[at].state == state)
			continue;
		if (!found && msg->uid > st->covered && !dirty_only) {
			/* UIDs given out and gone before anyone here saw them. */
			struct gone g = { st->covered ? st->covered : 1, msg->uid - 1, next };
			if (g.lo <= g.hi && (!gone_add(st, g.lo, g.hi, next) || !put_gone(lines, &g)))
				return -1;
			n += g.lo <= g.hi;
		}
		struct live l = { msg->uid, state, next };
		if (!live_set(st, l.uid, l.state, l.modseq) || !put_live(lines, &l))
			return -1;
		n++;
	}
	/* Live records the view does not have, below its next UID: expunged (by this session,
	   or by someone whose expunge the view has seen). */
	for (size_t i = 0, vi = 0; i < st->nlive;) {
		uint32_t uid = st->live[i].uid;
		if (uid >= m->uidnext)
			break;
		while (vi < m->count && m->msg[vi].uid < uid)
			vi++;
		if (vi < m->count && m->msg[vi].uid == uid && !m->msg[vi].gone) {
			i++;
			continue;
		}
		struct gone g = { uid, uid, next };
		if (!gone_add(st, uid, uid, next))	/* takes st->live[i] away */
			return -1;
		if (!put_gone(lines, &g))
			return -1;
		n++;
	}
	return n;
}

/* 1 when the view shows something st has not recorded (see observe). */
static int view_differs(const struct mbox *m, const struct mbox_modseq *st, int dirty_only)
{
	for (size_t i = 0; i < m->count; i++) {
		const struct mbox_msg *msg = &m->msg[i];
		if (msg->gone || (dirty_only && msg->modseq))
			continue;
		int found;
		size_t at = live_find(st, msg->uid, &found);
		if (!found || st->live[at].state != state_of(msg))
			return 1;
	}
	for (size_t i = 0; i < st->nlive && st->live[i].uid < m->uidnext; i++)
		if (!mbox_view_has(m, st->live[i].uid))
			return 1;
	return 0;
}

/* The view's modseqs from st; each message i < nchanged whose modseq rose gets changed[i]
   set. */
static void view_modseqs(struct mbox *m, const struct mbox_modseq *st, unsigned char *changed,
			 size_t nchanged)
{
	for (size_t i = 0; i < m->count; i++) {
		struct mbox_msg *msg = &m->msg[i];
		int found;
		size_t at = live_find(st, msg->uid, &found);
		/* One the file does not know (a read-only session's new message) is at the
		   folder's highest: never 0, which is not a modseq. */
		uint64_t v = found ? st->live[at].modseq : msg->modseq ? msg->modseq : st->highest;
		if (i < nchanged && msg->modseq && v > msg->modseq)
			changed[i] = 1;
		msg->modseq = v;
	}
	m->highestmodseq = st->highest;
}

/* Makes the file new for the view: every message at the origin. The lock is used up. */
static int store_create(struct mbox *m, struct mbox_modseq *st, int lockfd)
{
	store_clear(st);
	st->uidvalidity = m->uidvalidity;
	st->highest = st->floor = modseq_origin();
	st->covered = 1;
	for (size_t i = 0; i < m->count; i++)
		if (!m->msg[i].gone &&
		    !live_set(st, m->msg[i].uid, state_of(&m->msg[i]), st->highest)) {
			char path[PATH_MAX];
			if (modseq_path(m, path, sizeof path))
				dotlock_release(lockfd, path);
			return 0;
		}
	return store_rewrite(m, st, lockfd);
}

/* Under the lock: the file read again, then what the view shows that it does not. */
static int record_locked(struct mbox *m, struct mbox_modseq *st, int dirty_only, int lockfd)
{
	struct sa lines = SA_ZERO;

	if (!store_read(m, st))
		return 0;
	if (st->uidvalidity != m->uidvalidity)
		return store_create(m, st, lockfd);
	long n = observe(m, st, st->highest + 1, dirty_only, &lines);
	int ok = 1;
	if (n < 0) {
		ok = 0;
		errno = ENOMEM;
	} else if (n && (st->broken || st->ends_cut ||
			 st->lines + (size_t)n > 2 * (st->nlive + st->ngone) + 1000)) {
		st->highest++;
		ok = store_rewrite(m, st, lockfd);
		lockfd = -1;
	} else if (n) {
		ok = store_append(m, st, &lines, (size_t)n);
		if (ok)
			st->highest++;
	}
	int e = errno;
	sa_free(&lines);
	if (lockfd >= 0) {
		char path[PATH_MAX];
		if (modseq_path(m, path, sizeof path))
			dotlock_release(lockfd, path);
	}
	errno = e;
	return ok;
}

/*
 * Records what the view shows that the file does not, and gives the view its modseqs. The
 * file is read first without the lock: when nothing differs, nothing is locked or written.
 */
static int record(struct mbox *m, int dirty_only, unsigned char *changed, size_t nchanged,
		  char *why, size_t whysize)
{
	struct mbox_modseq *st = m->modseq;
	char path[PATH_MAX];

	if (!m->uidvalidity)
		return 1;	/* an empty folder nobody numbered yet */
	if (!store_read(m, st))
		return mbox_fail(why, whysize, errno, "unable to read %s/" MODSEQ_FILE, m->dir);
	if (st->uidvalidity != m->uidvalidity || view_differs(m, st, dirty_only)) {
		int lockfd = modseq_path(m, path, sizeof path) ? dotlock_take(path) : -1;
		if (lockfd < 0 || !record_locked(m, st, dirty_only, lockfd)) {
			int e = errno;
			/* What was added in memory was not written: the file, read again, is
			   what is true. A session that may not write the folder (EXAMINE of a
			   read-only Maildir) answers from it, when there is one. */
			store_clear(st);
			if (m->readonly && (e == EACCES || e == EROFS || e == EPERM) &&
			    store_read(m, st) && st->uidvalidity == m->uidvalidity) {
				view_modseqs(m, st, changed, nchanged);
				return 1;
			}
			store_clear(st);
			return mbox_fail(why, whysize, e, "unable to record modseqs in %s", m->dir);
		}
	}
	view_modseqs(m, st, changed, nchanged);
	return 1;
}

int mbox_modseq_enable(struct mbox *m, char *why, size_t whysize)
{
	if (m->modseq)
		return 1;
	m->modseq = calloc(1, sizeof *m->modseq);
	if (!m->modseq)
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	if (record(m, 0, 0, 0, why, whysize))
		return 1;
	int e = errno;
	mbox_modseq_free(m);	/* the view has none: NOMODSEQ */
	errno = e;
	return 0;
}

int mbox_status_modseq(const char *root, const char *name, uint64_t *highest, char *why,
		       size_t whysize)
{
	struct mbox m;

	/* Read-only: a look does not take messages out of new/, as EXAMINE does not. */
	if (!mbox_open(&m, root, name, 1, why, whysize))
		return 0;
	int ok = mbox_modseq_enable(&m, why, whysize);
	*highest = ok ? m.highestmodseq : 0;
	int e = errno;
	mbox_close(&m);
	errno = e;
	return ok;
}

int mbox_modseq_commit(struct mbox *m, char *why, size_t whysize)
{
	if (!m->modseq)
		return 1;
	return record(m, 1, 0, 0, why, whysize);
}

int modseq_sync(struct mbox *m, unsigned char *changed, size_t nchanged, char *why,
		size_t whysize)
{
	if (!m->modseq)
		return 1;
	return record(m, 0, changed, nchanged, why, whysize);
}

int modseq_unchanged(const struct mbox *m)
{
	const struct mbox_modseq *st = m->modseq;
	char path[PATH_MAX];
	struct stat sb;

	if (!st)
		return 1;
	if (!modseq_path(m, path, sizeof path) || stat(path, &sb) < 0)
		return 0;
	return st->ino && sb.st_ino == st->ino && sb.st_dev == st->dev && sb.st_size == st->size &&
	       same_time(&sb.st_mtim, &st->mtime);
}

void modseq_rest(struct mbox *m)
{
	struct mbox_modseq *st = m->modseq;
	if (!st)
		return;
	/* The records go, to be read whole when next needed; what the file was is kept, so
	   that a session that wakes to find nothing changed does not look at the folder. */
	struct mbox_modseq seen = *st;
	store_clear(st);
	st->dev = seen.dev;
	st->ino = seen.ino;
	st->size = seen.size;
	st->mtime = seen.mtime;
	st->generation = seen.generation;
}

/* ---- VANISHED (EARLIER) ---- */

static int run_cmp(const void *a, const void *b)
{
	const struct mbox_uid_run *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts runs and merges those that touch; returns the new count. */
static size_t runs_normalize(struct mbox_uid_run *r, size_t n)
{
	if (!n)
		return 0;
	qsort(r, n, sizeof *r, run_cmp);
	size_t o = 0;
	for (size_t i = 1; i < n; i++) {
		if (r[i].lo <= r[o].hi || r[i].lo - 1 == r[o].hi) {
			if (r[i].hi > r[o].hi)
				r[o].hi = r[i].hi;
		} else {
			r[++o] = r[i];
		}
	}
	return o + 1;
}

static int runs_push(struct mbox_uid_run **out, size_t *n, size_t *cap, uint32_t lo, uint32_t hi)
{
	if (*n && (*out)[*n - 1].hi + 1 == lo) {
		(*out)[*n - 1].hi = hi;
		return 1;
	}
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct mbox_uid_run *r = realloc(*out, c * sizeof *r);
		if (!r)
			return 0;
		*out = r;
		*cap = c;
	}
	(*out)[(*n)++] = (struct mbox_uid_run){ lo, hi };
	return 1;
}

int mbox_modseq_vanished(struct mbox *m, uint64_t since, const struct mbox_uid_run *known,
			 size_t nknown, struct mbox_uid_run **out, size_t *nout, char *why,
			 size_t whysize)
{
	struct mbox_modseq *st = m->modseq;
	struct mbox_uid_run *cand = 0, *want = 0;
	size_t ncand = 0, capcand = 0, nwant = 0, cap = 0;

	*out = 0;
	*nout = 0;
	if (!st || m->uidnext <= 1)
		return 1;
	if (!st->uidvalidity && !store_read(m, st))
		return mbox_fail(why, whysize, errno, "unable to read %s/" MODSEQ_FILE, m->dir);
	/* What may have gone since: the remembered runs, or when the question reaches past
	   them, every UID the folder gave out. */
	int ok = 1;
	if (since < st->floor || !st->uidvalidity) {
		ok = runs_push(&cand, &ncand, &capcand, 1, m->uidnext - 1);
	} else {
		for (size_t i = 0; ok && i < st->ngone; i++)
			if (st->gone[i].modseq > since)
				ok = runs_push(&cand, &ncand, &capcand, st->gone[i].lo, st->gone[i].hi);
		ncand = runs_normalize(cand, ncand);
	}
	if (ok && nknown) {
		want = malloc(nknown * sizeof *want);
		ok = want != 0;
		if (ok) {
			memcpy(want, known, nknown * sizeof *want);
			nwant = runs_normalize(want, nknown);
		}
	}
	/* The candidates, within what the client knows, less what the view has. */
	size_t wi = 0, vi = 0;
	for (size_t i = 0; ok && i < ncand; i++) {
		uint64_t lo = cand[i].lo, hi = cand[i].hi;
		while (ok && lo <= hi) {
			uint64_t a = lo, b = hi;
			if (want) {
				while (wi < nwant && want[wi].hi < a)
					wi++;
				if (wi == nwant)
					break;
				if (want[wi].lo > a)
					a = want[wi].lo;
				if (want[wi].hi < b)
					b = want[wi].hi;
				if (a > b) {
					lo = a;
					continue;
				}
			}
			/* a..b less the view's UIDs in it. */
			while (vi < m->count && m->msg[vi].uid < a)
				vi++;
			uint64_t from = a;
			for (; ok && vi < m->count && m->msg[vi].uid <= b; vi++) {
				if (m->msg[vi].uid > from)
					ok = runs_push(out, nout, &cap, (uint32_t)from,
						       m->msg[vi].uid - 1);
				from = (uint64_t)m->msg[vi].uid + 1;
			}
			if (ok && from <= b)
				ok = runs_push(out, nout, &cap, (uint32_t)from, (uint32_t)b);
			lo = b + 1;
		}
	}
	free(cand);
	free(want);
	if (!ok) {
		free(*out);
		*out = 0;
		*nout = 0;
		return mbox_fail(why, whysize, ENOMEM, "out of memory");
	}
	return 1;
}
