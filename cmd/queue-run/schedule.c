/* postroom: ISC license, see LICENSE. */
/*
 * The scheduler: which message to attempt when, and by which worker. State lives on disk (a
 * message is due when its file's mtime has come); in memory there are only the workers, the list
 * of due messages from the last scan, the messages whose worker ran into trouble, and the
 * destinations (the remote domains, or the smarthost), so a restart loses nothing that matters.
 *
 * Workers are long-lived processes (forked once; retired after WORKER_MAX_USE messages by
 * closing their pipe, and replaced): on these machines a fork costs more CPU than a whole
 * delivery. Each gets message ids on its own pipe, one per line, and speaks to the scheduler on
 * a pipe shared by all, one line per event (far below PIPE_BUF, so lines never mix):
 *     <slot> ask <dest>            may I deliver to dest?  answer on its pipe: go, busy, down <t>
 *     <slot> done <up> <kept> <dest>   how it went; kept: the session stays open, and the slot
 *     <slot> release <dest>        the kept session is closed
 *     <slot> end <outcome>         the message is finished with (enum outcome)
 * A destination has at most domain_limit deliveries at once (a kept session counts: it is one
 * at the peer). A message that finds its destination busy is parked, and handed out again when
 * a slot is free, first to a worker that keeps a session to it. A destination whose hosts all
 * failed is down: its messages wait for its next try (the interval doubles, as a message's),
 * made by one message alone; when that one gets through, the messages that waited for it are
 * made due at once.
 * A worker whose scheduler is gone finishes the message in hand, records it, and exits
 * (worker.c); the queue file's lock keeps a new scheduler's workers off that message meanwhile.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "die.h"
#include "fmt.h"
#include "getln.h"
#include "log.h"
#include "queue-run.h"
#include "queue.h"
#include "sync.h"

#define IDLE_WAKE 60		/* seconds between scans when nothing is due */
#define TROUBLE_WAIT 60		/* seconds before a message whose worker failed is tried again */
#define TMP_MAX_AGE (36 * 3600)	/* files in tmp/ older than this were left by a crash */
#define WORKER_MAX_USE 1000	/* messages per worker process, to bound what a leak could cost */


struct worker {
	pid_t pid;		/* 0: no process */
	int cmd;		/* the pipe its message ids go down; -1: retiring */
	int busy;
	unsigned uses;
	int dest;		/* the destination whose slot it holds, or -1 */
	char id[QUEUE_ID_MAX];
};

typedef char queue_id[QUEUE_ID_MAX];

/* A list of message ids. */
struct idlist {
	queue_id *v;
	size_t n, cap;
};

struct dest {
	char name[DEST_MAX];
	unsigned active;	/* slots held: deliveries, and kept sessions */
	time_t down_until;	/* 0: up */
	unsigned backoff;	/* the last wait after a failure */
	int probing;		/* one message is trying it after its wait */
	struct idlist parked;	/* waiting for a slot */
	struct idlist invited;	/* taken from parked for a free slot, not yet asking for it */
	struct idlist asleep;	/* deferred while it was down: made due when it is up again */
};

struct postponed {
	char id[QUEUE_ID_MAX];
	time_t until;
};

struct scheduler {
	const struct config *c;
	int dirfd;
	struct worker *workers;		/* c->concurrency slots */
	unsigned busy;
	int results;			/* read end of the workers' answers */
	int results_w;
	struct buf answers;		/* reads results */
	char answers_space[4096];
	struct idlist todo;		/* due messages found by the last scan... */
	size_t todo_next;		/* ...of which these are handed out */
	struct postponed *later;
	size_t nlater;
	time_t next_due;		/* earliest future mtime seen by the last scan */
	time_t last_cleanup;
	struct dest *dests;
	size_t ndests, dests_cap;
	struct idlist ready;		/* unparked: handed out before the scan's list */
};

static int selfpipe[2] = { -1, -1 };

static void on_child(int sig)
{
	int e = errno;
	(void)sig;
	if (write(selfpipe[1], "", 1) < 0) {
		/* The pipe is full: a wake-up is already waiting. */
	}
	errno = e;
}

/* Empties a pipe; 1 when it held an 'F' (queue-flush: forget what failed lately). */
static int drain(int fd)
{
	char junk[256];
	ssize_t r;
	int flush = 0;
	while ((r = read(fd, junk, sizeof junk)) > 0)
		flush |= memchr(junk, 'F', (size_t)r) != 0;
	return flush;
}

static int is_busy(const struct scheduler *s, const char *id)
{
	for (unsigned i = 0; i < s->c->concurrency; i++)
		if (s->workers[i].busy && !strcmp(s->workers[i].id, id))
			return 1;
	return 0;
}

static int is_postponed(struct scheduler *s, const char *id, time_t now)
{
	for (size_t i = 0; i < s->nlater; i++)
		if (!strcmp(s->later[i].id, id)) {
			if (s->later[i].until > now)
				return 1;
			s->later[i] = s->later[--s->nlater];
			return 0;
		}
	return 0;
}

static void postpone(struct scheduler *s, const char *id)
{
	struct postponed *p = realloc(s->later, (s->nlater + 1) * sizeof *p);
	if (!p)
		return;	/* then it is simply tried again at the next scan */
	s->later = p;
	strcpy(p[s->nlater].id, id);
	p[s->nlater++].until = time(0) + TROUBLE_WAIT;
}

/* Appends id to l; 0 when out of memory. */
static int idlist_push(struct idlist *l, const char *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, cap * sizeof *l->v);
		if (!v)
			return 0;
		l->v = v;
		l->cap = cap;
	}
	strcpy(l->v[l->n++], id);
	return 1;
}

/* Appends id to l unless it is there already. */
static int idlist_add(struct idlist *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], id))
			return 1;
	return idlist_push(l, id);
}

/* Takes the oldest id of l into id; 0 when l is empty. */
static int idlist_take(struct idlist *l, char *id)
{
	if (!l->n)
		return 0;
	strcpy(id, l->v[0]);
	memmove(l->v, l->v + 1, (l->n - 1) * sizeof *l->v);
	l->n--;
	return 1;
}

static void idlist_remove(struct idlist *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], id)) {
			memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
			l->n--;
			return;
		}
}

static int dest_find(struct scheduler *s, const char *name)
{
	for (size_t i = 0; i < s->ndests; i++)
		if (!strcmp(s->dests[i].name, name))
			return (int)i;
	if (s->ndests == s->dests_cap) {
		size_t cap = s->dests_cap ? s->dests_cap * 2 : 16;
		struct dest *d = realloc(s->dests, cap * sizeof *d);
		if (!d)
			return -1;
		s->dests = d;
		s->dests_cap = cap;
	}
	struct dest *d = &s->dests[s->ndests];
	*d = (struct dest){ 0 };
	str_copy(d->name, sizeof d->name, name);
	return (int)s->ndests++;
}

static void wake(struct scheduler *s, struct dest *d);

/* Forgets destinations that hold nothing (no worker points at them: they have no slot). */
static void dests_tidy(struct scheduler *s, time_t now)
{
	size_t keep = 0;
	for (size_t i = 0; i < s->ndests; i++) {
		struct dest *d = &s->dests[i];
		int idle = !d->active && !d->parked.n && !d->invited.n && !d->asleep.n &&
			   d->down_until <= now && !d->probing;
		if (idle) {
			free(d->parked.v);
			free(d->invited.v);
			free(d->asleep.v);
			continue;
		}
		if (keep != i) {
			s->dests[keep] = *d;
			for (unsigned w = 0; w < s->c->concurrency; w++)
				if (s->workers[w].dest == (int)i)
					s->workers[w].dest = (int)keep;
		}
		keep++;
	}
	s->ndests = keep;
}

/* queue-flush: whatever failed lately may be tried now. */
static void forget(struct scheduler *s)
{
	for (size_t i = 0; i < s->ndests; i++) {
		s->dests[i].down_until = 0;
		s->dests[i].backoff = 0;
		s->dests[i].probing = 0;
		wake(s, &s->dests[i]);
	}
	s->nlater = 0;
	log_line("flush: every destination and message may be tried now");
}

static void answer(struct worker *w, const char *line)
{
	if (w->cmd >= 0 && !fd_write_all(w->cmd, line, strlen(line))) {
		/* It died; reap() clears the slot. */
	}
}

/*
 * Parked messages of d go to the ready list while d has free slots, counting those already
 * invited and not yet asking: a slot is never offered twice, and none stays unoffered.
 */
static void refill(struct scheduler *s, struct dest *d, time_t now)
{
	queue_id id;

	while (d->parked.n && !d->probing && d->down_until <= now &&
	       d->active + d->invited.n < s->c->domain_limit && idlist_take(&d->parked, id)) {
		idlist_add(&d->invited, id);
		idlist_add(&s->ready, id);
	}
}

/* A worker's message asks for a destination, or ends: any invitation it had is used up. */
static void uninvite(struct scheduler *s, const char *id)
{
	for (size_t i = 0; i < s->ndests; i++)
		idlist_remove(&s->dests[i].invited, id);
}

static void release(struct scheduler *s, struct worker *w)
{
	if (w->dest < 0)
		return;
	struct dest *d = &s->dests[w->dest];
	w->dest = -1;
	if (d->active)
		d->active--;
	refill(s, d, time(0));
}

static int give(struct scheduler *s, struct worker *w, const char *id);

/* An idle worker that keeps a session to destination di takes a message parked on it. */
static void feed_keepers(struct scheduler *s, int di)
{
	struct dest *d = &s->dests[di];
	queue_id id;

	for (unsigned i = 0; i < s->c->concurrency && d->parked.n; i++) {
		struct worker *k = &s->workers[i];
		if (k->busy || k->dest != di || !k->pid || k->cmd < 0)
			continue;
		/* The oldest that is not in hand: one in hand (parking as it asks) stays parked. */
		size_t j = 0;
		while (j < d->parked.n && is_busy(s, d->parked.v[j]))
			j++;
		if (j == d->parked.n)
			return;
		strcpy(id, d->parked.v[j]);
		idlist_remove(&d->parked, id);
		idlist_add(&d->invited, id);
		if (!give(s, k, id))
			idlist_add(&s->ready, id);
	}
}

static void on_ask(struct scheduler *s, struct worker *w, const char *name)
{
	int di = dest_find(s, name);
	time_t now = time(0);
	char line[64];

	uninvite(s, w->id);
	if (di < 0) {
		answer(w, "busy\n");
		idlist_add(&s->ready, w->id);
		return;
	}
	struct dest *d = &s->dests[di];
	if (w->dest == di) {
		answer(w, "go\n");	/* its kept session */
		return;
	}
	release(s, w);
	if (d->down_until > now) {
		snprintf(line, sizeof line, "down %lld\n", (long long)d->down_until);
		idlist_add(&d->asleep, w->id);
		answer(w, line);
		return;
	}
	/* The slots offered to parked messages are theirs: they waited first. */
	if (d->probing || d->active + d->invited.n >= s->c->domain_limit) {
		idlist_add(&d->parked, w->id);
		answer(w, "busy\n");
		feed_keepers(s, di);
		return;
	}
	if (d->down_until)
		d->probing = 1;	/* its wait is over: this message tries it alone */
	d->active++;
	w->dest = di;
	answer(w, "go\n");
}

/* Makes the messages that waited for d due now: it takes mail again. */
static void wake(struct scheduler *s, struct dest *d)
{
	queue_id id;
	char path[QUEUE_ID_MAX + 8];
	struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };

	while (idlist_take(&d->asleep, id)) {
		snprintf(path, sizeof path, "msg/%s", id);
		utimensat(s->dirfd, path, t, 0);
		idlist_add(&s->ready, id);
	}
	while (idlist_take(&d->parked, id))
		idlist_add(&s->ready, id);
}

static void on_done(struct scheduler *s, struct worker *w, int up, int kept, const char *name)
{
	int di = dest_find(s, name);
	if (di < 0)
		return;
	struct dest *d = &s->dests[di];
	int was_down = d->down_until != 0;
	time_t now = time(0);

	if (up) {
		d->probing = 0;
		d->down_until = 0;
		d->backoff = 0;
		if (was_down) {
			log_line("destination %s takes mail again: its waiting messages are due", d->name);
			wake(s, d);
		}
	} else if (d->down_until <= now || d->probing) {
		/* The failures of deliveries that were under way when it went down say nothing
		   new: only a first failure, or a probe's, makes the wait longer. */
		unsigned b = d->backoff ? d->backoff * 2 : s->c->retry_min;
		d->probing = 0;
		d->backoff = b > s->c->retry_max ? s->c->retry_max : b;
		d->down_until = now + (time_t)d->backoff;
		log_line("destination %s took no mail: delivery to it suspended for %u s", d->name,
			 d->backoff);
		/* Those parked for a slot learn it is down when they ask. */
		queue_id id;
		while (idlist_take(&d->parked, id))
			idlist_add(&s->ready, id);
	}
	if (!kept || w->dest != di)
		release(s, w);
}

static void on_end(struct scheduler *s, struct worker *w, int outcome)
{
	uninvite(s, w->id);
	if (outcome == OUTCOME_TROUBLE)
		postpone(s, w->id);
	if (outcome == OUTCOME_SKIPPED && s->next_due > time(0) + 1)
		s->next_due = time(0) + 1;	/* locked by someone else (queue-list): soon again */
	if (outcome == OUTCOME_PENDING || outcome == OUTCOME_WAITING) {
		/* Its next attempt may come before the next scan would. */
		char path[QUEUE_ID_MAX + 8];
		struct stat st;
		snprintf(path, sizeof path, "msg/%s", w->id);
		if (fstatat(s->dirfd, path, &st, 0) == 0 && st.st_mtime < s->next_due)
			s->next_due = st.st_mtime;
	}
	w->busy = 0;
	s->busy--;
	if (w->uses >= WORKER_MAX_USE) {
		close(w->cmd);	/* it exits at end of file; reap() frees the slot */
		w->cmd = -1;
		return;
	}
	/* Its kept session is worth a message that waits for the same destination. */
	if (w->dest >= 0)
		feed_keepers(s, w->dest);
}

static int spawn(struct scheduler *s, unsigned slot)
{
	int p[2];

	/* Close-on-exec: an external delivery program has no business with the worker's pipe. */
	if (pipe(p) < 0 || fcntl(p[0], F_SETFD, FD_CLOEXEC) < 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) < 0)
		return 0;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		close(p[1]);
		close(selfpipe[0]);
		close(selfpipe[1]);
		close(s->results);
		for (unsigned i = 0; i < s->c->concurrency; i++)
			if (s->workers[i].pid && s->workers[i].cmd >= 0)
				close(s->workers[i].cmd);
		worker_main(s->c, s->dirfd, slot, p[0], s->results_w);
	}
	close(p[0]);
	s->workers[slot] = (struct worker){ .pid = pid, .cmd = p[1], .dest = -1 };
	return 1;
}

static int give(struct scheduler *s, struct worker *w, const char *id)
{
	char line[QUEUE_ID_MAX + 2];
	int n = snprintf(line, sizeof line, "%s\n", id);
	if (!fd_write_all(w->cmd, line, (size_t)n))
		return 0;	/* it died after its last answer; reap() clears the slot */
	w->busy = 1;
	w->uses++;
	strcpy(w->id, id);
	s->busy++;
	return 1;
}

/*
 * Hands id to an idle worker, one that holds no kept session first (those are for the
 * messages parked on their destination); 0 when none is idle or one cannot be started.
 */
static int dispatch(struct scheduler *s, const char *id)
{
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < s->c->concurrency; i++) {
			struct worker *w = &s->workers[i];
			if (w->busy || (w->pid && w->cmd < 0) || (pass == 0 && w->dest >= 0))
				continue;
			if (!w->pid && !spawn(s, i)) {
				log_line("trouble: unable to start a worker: %s", strerror(errno));
				return 0;
			}
			if (give(s, w, id))
				return 1;
		}
	return 0;
}

static void read_results(struct scheduler *s)
{
	struct buf *in = &s->answers;
	char line[DEST_MAX + 64], name[DEST_MAX];
	size_t len;

	for (;;) {
		/* Only what is already in the pipe: the results fd is non-blocking. */
		if (buf_unread(in) == 0 || !memchr(buf_peek(in), '\n', buf_unread(in))) {
			ssize_t r = buf_fill(in);
			if (r <= 0)
				return;
			continue;
		}
		if (getln(in, line, sizeof line, &len, '\n') != GETLN_OK)
			return;
		line[len - 1] = 0;
		unsigned slot;
		int n = 0, a, b;
		if (sscanf(line, "%u %n", &slot, &n) != 1 || slot >= s->c->concurrency ||
		    !s->workers[slot].pid)
			continue;
		struct worker *w = &s->workers[slot];
		const char *rest = line + n;
		if (sscanf(rest, "end %d", &a) == 1 && w->busy)
			on_end(s, w, a);
		else if (!strncmp(rest, "ask ", 4) && w->busy)
			on_ask(s, w, rest + 4);
		else if (sscanf(rest, "done %d %d %299s", &a, &b, name) == 3)
			on_done(s, w, a, b, name);
		else if (!strncmp(rest, "release ", 8))
			release(s, w);
	}
}

static void reap(struct scheduler *s)
{
	pid_t pid;
	int status;

	/* Answers first: a worker that answered and then exited was not busy. */
	read_results(s);
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < s->c->concurrency; i++) {
			struct worker *w = &s->workers[i];
			if (w->pid != pid)
				continue;
			if (w->busy) {
				log_line("%s trouble: worker %ld died (status %d)", w->id, (long)pid, status);
				uninvite(s, w->id);
				postpone(s, w->id);
				w->busy = 0;
				s->busy--;
			}
			/* Had it been trying a destination after its wait, the next message will. */
			if (w->dest >= 0)
				s->dests[w->dest].probing = 0;
			release(s, w);
			if (w->cmd >= 0)
				close(w->cmd);
			w->cmd = -1;
			w->pid = 0;
		}
	}
}

/* Messages an earlier version left in bounce/ go back to msg/, to have their notices sent. */
static void adopt_bounces(struct scheduler *s)
{
	int fd = openat(s->dirfd, "bounce", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	struct dirent *e;
	struct idlist moved = { 0 };
	char from[QUEUE_ID_MAX + 8], to[QUEUE_ID_MAX + 8];

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= QUEUE_ID_MAX)
			continue;
		snprintf(from, sizeof from, "bounce/%.*s", QUEUE_ID_MAX - 1, e->d_name);
		snprintf(to, sizeof to, "msg/%.*s", QUEUE_ID_MAX - 1, e->d_name);
		/* linkat, not rename: never over a msg/ file of the same name. */
		if ((linkat(s->dirfd, from, s->dirfd, to, 0) == 0 || errno == EEXIST) &&
		    idlist_push(&moved, e->d_name))
			log_line("%s moved from bounce/ to msg/: its notice is sent from there", e->d_name);
	}
	closedir(d);
	/* msg/ holds them durably before bounce/ lets go, and only of what msg/ holds as the very
	   same file: never the one copy of a message. */
	if (moved.n && sync_dir_at(s->dirfd, "msg")) {
		for (size_t i = 0; i < moved.n; i++) {
			struct stat a, b;
			snprintf(from, sizeof from, "bounce/%s", moved.v[i]);
			snprintf(to, sizeof to, "msg/%s", moved.v[i]);
			if (fstatat(s->dirfd, from, &a, 0) == 0 && fstatat(s->dirfd, to, &b, 0) == 0 &&
			    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
				unlinkat(s->dirfd, from, 0);
		}
		sync_dir_at(s->dirfd, "bounce");
	}
	free(moved.v);
}

/* Removes what crashed writers left in tmp/ long ago. */
static void cleanup_tmp(struct scheduler *s, time_t now)
{
	if (now - s->last_cleanup < 3600)
		return;
	s->last_cleanup = now;
	int fd = openat(s->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && fstatat(fd, e->d_name, &st, 0) == 0 &&
		    st.st_mtime + TMP_MAX_AGE < now && unlinkat(fd, e->d_name, 0) == 0)
			log_line("%s removed from tmp/: left by a crashed writer", e->d_name);
	closedir(d);
}

/* Lists the due messages (all of them with all) that no worker has; 0 if msg/ is unreadable. */
static int scan(struct scheduler *s, int all)
{
	int fd = openat(s->dirfd, "msg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	time_t now = time(0);

	s->todo.n = s->todo_next = 0;
	s->next_due = now + IDLE_WAKE;
	/* Postponements of files that are gone would otherwise stay for ever. */
	for (size_t i = 0; i < s->nlater;)
		if (s->later[i].until <= now)
			s->later[i] = s->later[--s->nlater];
		else
			i++;
	if (!d) {
		log_line("trouble: unable to read %s/msg: %s", s->c->queuedir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || strlen(e->d_name) >= QUEUE_ID_MAX ||
		    is_busy(s, e->d_name) || is_postponed(s, e->d_name, now))
			continue;
		if (!all) {
			if (fstatat(fd, e->d_name, &st, 0) < 0)
				continue;
			if (st.st_mtime > now) {
				if (st.st_mtime < s->next_due)
					s->next_due = st.st_mtime;
				continue;
			}
		}
		if (!idlist_push(&s->todo, e->d_name))
			break;
	}
	closedir(d);
	dests_tidy(s, now);
	return 1;
}

/* Hands out the ready messages, then the listed ones, while workers are idle. */
static void hand_out(struct scheduler *s)
{
	time_t now = time(0);
	for (size_t i = 0; i < s->ndests; i++)
		refill(s, &s->dests[i], now);
	/* One in hand stays ready: its attempt may end waiting, and it goes again after. */
	for (size_t i = 0; i < s->ready.n && s->busy < s->c->concurrency;) {
		if (is_busy(s, s->ready.v[i])) {
			i++;
			continue;
		}
		queue_id id;
		strcpy(id, s->ready.v[i]);
		if (!dispatch(s, id))
			return;
		idlist_remove(&s->ready, id);
	}
	while (s->todo_next < s->todo.n && s->busy < s->c->concurrency) {
		const char *id = s->todo.v[s->todo_next];
		if (!is_busy(s, id) && !dispatch(s, id))
			break;
		s->todo_next++;
	}
}

static void wait_for_workers(struct scheduler *s, int trigger, int timeout_ms)
{
	struct pollfd p[3] = {
		{ .fd = selfpipe[0], .events = POLLIN },
		{ .fd = s->results, .events = POLLIN },
		{ .fd = trigger, .events = POLLIN },
	};

	if (poll(p, trigger >= 0 ? 3 : 2, timeout_ms) < 0 && errno != EINTR)
		die_sys_code(EXIT_TEMP, "unable to poll");
	drain(selfpipe[0]);
	reap(s);
}

static void stop_workers(struct scheduler *s)
{
	for (unsigned i = 0; i < s->c->concurrency; i++)
		if (s->workers[i].pid && s->workers[i].cmd >= 0) {
			close(s->workers[i].cmd);
			s->workers[i].cmd = -1;
		}
	for (unsigned i = 0; i < s->c->concurrency; i++)
		if (s->workers[i].pid)
			while (waitpid(s->workers[i].pid, 0, 0) < 0 && errno == EINTR)
				;
}

/* -1: every message once, due or not; one still locked by another process is left. */
static int run_once(struct scheduler *s)
{
	if (!scan(s, 1))
		return EXIT_TEMP;
	for (;;) {
		int parked = s->ready.n > 0;
		for (size_t i = 0; i < s->ndests; i++)
			parked |= s->dests[i].parked.n > 0;
		if (s->todo_next >= s->todo.n && !s->busy && !parked)
			break;
		hand_out(s);
		wait_for_workers(s, -1, 1000);
	}
	stop_workers(s);
	return 0;
}

static int run_forever(struct scheduler *s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/trigger", s->c->queuedir);
	int trigger = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	/* Holding a writer open keeps the FIFO from reporting end of file after each writer. */
	int keep = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (trigger < 0 || keep < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", path);
	log_line("start concurrency=%u per_destination=%u", s->c->concurrency, s->c->domain_limit);

	int rescan = 1;
	for (;;) {
		time_t now = time(0);
		if (rescan || now >= s->next_due) {
			/* Scanning costs a look at every queued file: do it once the list is handed
			   out, not once per new message. */
			if (s->todo_next >= s->todo.n) {
				cleanup_tmp(s, now);
				scan(s, 0);
				rescan = 0;
			}
		}
		hand_out(s);
		int timeout = (int)(s->next_due - time(0)) * 1000;
		if (timeout < 0)
			timeout = 0;
		/* With messages listed and every worker busy, only a worker's answer helps (it, a
		   worker's death and the trigger all wake the poll); with a worker idle, one could not
		   be started: try again in a second. */
		if (s->todo_next < s->todo.n || s->ready.n)
			timeout = s->busy < s->c->concurrency ? 1000 : -1;
		struct pollfd p = { .fd = trigger, .events = POLLIN };
		wait_for_workers(s, trigger, timeout);
		if (poll(&p, 1, 0) > 0) {
			if (drain(trigger))
				forget(s);
			rescan = 1;
		}
	}
}

int schedule_run(const struct config *c)
{
	static struct scheduler s;
	int results[2];

	s.c = c;
	s.dirfd = open(c->queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", c->queuedir);
	s.workers = calloc(c->concurrency, sizeof *s.workers);
	if (!s.workers)
		die_sys_code(EXIT_TEMP, "unable to allocate");
	for (unsigned i = 0; i < c->concurrency; i++)
		s.workers[i].dest = -1;
	if (pipe(selfpipe) < 0 || pipe(results) < 0)
		die_sys_code(EXIT_TEMP, "unable to make a pipe");
	for (int i = 0; i < 2; i++) {
		fcntl(selfpipe[i], F_SETFL, O_NONBLOCK);
		fcntl(selfpipe[i], F_SETFD, FD_CLOEXEC);
		fcntl(results[i], F_SETFD, FD_CLOEXEC);
	}
	fcntl(results[0], F_SETFL, O_NONBLOCK);
	s.results = results[0];
	s.results_w = results[1];
	buf_init(&s.answers, s.results, s.answers_space, sizeof s.answers_space);
	struct sigaction sa = { .sa_handler = on_child, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, 0);
	signal(SIGPIPE, SIG_IGN);
	adopt_bounces(&s);
	return c->once ? run_once(&s) : run_forever(&s);
}
