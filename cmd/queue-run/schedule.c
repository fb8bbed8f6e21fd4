/* postroom: ISC license, see LICENSE. */
/*
 * The scheduler: which message to attempt when, and by which worker. State lives on disk (a
 * message is due when its file's mtime has come); in memory there are only the workers, the list
 * of due messages from the last scan, and the messages whose worker ran into trouble, so a
 * restart loses nothing.
 *
 * Workers are long-lived processes (forked once; retired after WORKER_MAX_USE messages by
 * closing their pipe, and replaced): on these machines a fork costs more CPU than a whole delivery. Each gets message ids
 * on its own pipe, one per line, and answers "<slot> <outcome>\n" on a pipe shared by all (a
 * line is far below PIPE_BUF, so answers never mix). A worker whose scheduler is gone sees end of
 * file on its pipe and exits after the message in hand; the queue file's lock keeps a new
 * scheduler's workers off that message meanwhile.
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
#include "getln.h"
#include "die.h"
#include "log.h"
#include "queue-run.h"
#include "queue.h"

#define IDLE_WAKE 60		/* seconds between scans when nothing is due */
#define TROUBLE_WAIT 60		/* seconds before a message whose worker failed is tried again */
#define TMP_MAX_AGE (36 * 3600)	/* files in tmp/ older than this were left by a crash */
#define WORKER_MAX_USE 1000	/* messages per worker process, to bound what a leak could cost */

struct worker {
	pid_t pid;		/* 0: no process */
	int cmd;		/* the pipe its message ids go down; -1: retiring */
	int busy;
	unsigned uses;
	char id[QUEUE_ID_MAX];
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
	char (*todo)[QUEUE_ID_MAX];	/* due messages found by the last scan, not yet handed out */
	size_t ntodo, todo_cap, todo_next;
	struct postponed *later;
	size_t nlater;
	time_t next_due;		/* earliest future mtime seen by the last scan */
	time_t last_cleanup;
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

static void drain(int fd)
{
	char junk[256];
	while (read(fd, junk, sizeof junk) > 0)
		;
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

/* The worker's side: ids in, outcomes out, until end of file. */
static _Noreturn void worker_main(const struct config *c, int dirfd, unsigned slot, int cmd,
				  int results)
{
	char space[512], id[QUEUE_ID_MAX + 2], answer[32];
	struct buf in;
	size_t len;

	buf_init(&in, cmd, space, sizeof space);
	for (;;) {
		if (getln(&in, id, sizeof id, &len, '\n') != GETLN_OK)
			_exit(0);
		id[len - 1] = 0;
		enum outcome o = deliver_message(c, dirfd, id);
		int n = snprintf(answer, sizeof answer, "%u %d\n", slot, (int)o);
		if (!fd_write_all(results, answer, (size_t)n))
			_exit(111);
	}
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
	s->workers[slot] = (struct worker){ .pid = pid, .cmd = p[1] };
	return 1;
}

/* Hands id to an idle worker; 0 when none is idle or one cannot be started. */
static int dispatch(struct scheduler *s, const char *id)
{
	for (unsigned i = 0; i < s->c->concurrency; i++) {
		struct worker *w = &s->workers[i];
		if (w->busy || (w->pid && w->cmd < 0))
			continue;
		if (!w->pid && !spawn(s, i)) {
			log_line("trouble: unable to start a worker: %s", strerror(errno));
			return 0;
		}
		char line[QUEUE_ID_MAX + 2];
		int n = snprintf(line, sizeof line, "%s\n", id);
		if (!fd_write_all(w->cmd, line, (size_t)n)) {
			/* It died after its last answer; reap() clears the slot. Try the next. */
			continue;
		}
		w->busy = 1;
		w->uses++;
		strcpy(w->id, id);
		s->busy++;
		return 1;
	}
	return 0;
}

static void read_results(struct scheduler *s)
{
	struct buf *in = &s->answers;
	char line[64];
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
		unsigned slot;
		int outcome;
		if (sscanf(line, "%u %d", &slot, &outcome) != 2 || slot >= s->c->concurrency ||
		    !s->workers[slot].busy)
			continue;
		struct worker *w = &s->workers[slot];
		if (outcome == OUTCOME_TROUBLE)
			postpone(s, w->id);
		w->busy = 0;
		s->busy--;
		if (w->uses >= WORKER_MAX_USE) {
			close(w->cmd);	/* it exits at end of file; reap() frees the slot */
			w->cmd = -1;
		}
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
				postpone(s, w->id);
				w->busy = 0;
				s->busy--;
			}
			if (w->cmd >= 0)
				close(w->cmd);
			w->cmd = -1;
			w->pid = 0;
		}
	}
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

static int todo_add(struct scheduler *s, const char *id)
{
	if (s->ntodo == s->todo_cap) {
		size_t cap = s->todo_cap ? s->todo_cap * 2 : 64;
		void *t = realloc(s->todo, cap * sizeof *s->todo);
		if (!t)
			return 0;
		s->todo = t;
		s->todo_cap = cap;
	}
	strcpy(s->todo[s->ntodo++], id);
	return 1;
}

/* Lists the due messages (all of them with all) that no worker has; 0 if msg/ is unreadable. */
static int scan(struct scheduler *s, int all)
{
	int fd = openat(s->dirfd, "msg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	time_t now = time(0);

	s->ntodo = s->todo_next = 0;
	s->next_due = now + IDLE_WAKE;
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
		if (!todo_add(s, e->d_name))
			break;
	}
	closedir(d);
	return 1;
}

/* Hands out listed messages while workers are idle. */
static void hand_out(struct scheduler *s)
{
	while (s->todo_next < s->ntodo && s->busy < s->c->concurrency) {
		if (!dispatch(s, s->todo[s->todo_next]))
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
	while (s->todo_next < s->ntodo || s->busy) {
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
	log_line("start concurrency=%u", s->c->concurrency);

	int rescan = 1;
	for (;;) {
		time_t now = time(0);
		if (rescan || now >= s->next_due) {
			/* Scanning costs a look at every queued file: do it once the list is handed
			   out, not once per new message. */
			if (s->todo_next >= s->ntodo) {
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
		if (s->todo_next < s->ntodo)
			timeout = s->busy < s->c->concurrency ? 1000 : -1;
		struct pollfd p = { .fd = trigger, .events = POLLIN };
		wait_for_workers(s, trigger, timeout);
		if (poll(&p, 1, 0) > 0) {
			drain(trigger);
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
	return c->once ? run_once(&s) : run_forever(&s);
}
