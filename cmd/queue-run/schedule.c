/* postroom: ISC license, see LICENSE. */
/*
 * The scheduler: which message to attempt when, and how many at once. State lives on disk (a
 * message is due when its file's mtime has come); in memory there is only the list of running
 * workers and of messages whose worker ran into trouble, so a restart loses nothing.
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

#include "die.h"
#include "log.h"
#include "queue-run.h"
#include "queue.h"

#define IDLE_WAKE 60		/* seconds between scans when nothing is due */
#define TROUBLE_WAIT 60		/* seconds before a message whose worker failed is tried again */
#define TMP_MAX_AGE (36 * 3600)	/* files in tmp/ older than this were left by a crash */

struct worker {
	pid_t pid;
	char id[QUEUE_ID_MAX];
};

struct postponed {
	char id[QUEUE_ID_MAX];
	time_t until;
};

struct scheduler {
	const struct config *c;
	int dirfd;
	struct worker *workers;		/* c->concurrency slots; pid 0 is free */
	unsigned running;
	struct postponed *later;
	size_t nlater;
	time_t next_due;		/* earliest mtime in the future seen by the last scan */
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

static int is_running(const struct scheduler *s, const char *id)
{
	for (unsigned i = 0; i < s->c->concurrency; i++)
		if (s->workers[i].pid && !strcmp(s->workers[i].id, id))
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

static void reap(struct scheduler *s)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < s->c->concurrency; i++) {
			struct worker *w = &s->workers[i];
			if (w->pid != pid)
				continue;
			if (!WIFEXITED(status) || WEXITSTATUS(status) == OUTCOME_TROUBLE) {
				if (!WIFEXITED(status))
					log_line("%s trouble: worker killed by signal %d", w->id,
						 WTERMSIG(status));
				postpone(s, w->id);
			}
			w->pid = 0;
			s->running--;
		}
	}
}

static int start(struct scheduler *s, const char *id)
{
	unsigned i = 0;

	while (s->workers[i].pid)
		i++;
	pid_t pid = fork();
	if (pid < 0) {
		log_line("trouble: unable to fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		close(selfpipe[0]);
		close(selfpipe[1]);
		_exit(deliver_message(s->c, s->dirfd, id));
	}
	s->workers[i].pid = pid;
	strcpy(s->workers[i].id, id);
	s->running++;
	return 1;
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

/*
 * Starts workers for due messages while slots are free. Returns 1 when it saw every due message
 * started (or running), 0 when it stopped for want of a slot.
 */
static int scan(struct scheduler *s, int all)
{
	int fd = openat(s->dirfd, "msg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	time_t now = time(0);
	int complete = 1;

	s->next_due = now + IDLE_WAKE;
	if (!d) {
		log_line("trouble: unable to read %s/msg: %s", s->c->queuedir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || strlen(e->d_name) >= QUEUE_ID_MAX ||
		    is_running(s, e->d_name) || is_postponed(s, e->d_name, now))
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
		if (s->running == s->c->concurrency) {
			complete = 0;
			break;
		}
		if (!start(s, e->d_name)) {
			complete = 0;
			s->next_due = now + 1;
			break;
		}
	}
	closedir(d);
	return complete;
}

/* Sleeps until a worker exits (or a second passes), then reaps. */
static void wait_child(struct scheduler *s)
{
	struct pollfd p = { .fd = selfpipe[0], .events = POLLIN };
	char junk[64];

	poll(&p, 1, 1000);
	while (read(selfpipe[0], junk, sizeof junk) > 0)
		;
	reap(s);
}

/* -1: every message once, due or not; a message still locked by another process is left. */
static int run_once(struct scheduler *s)
{
	/* All slots busy: wait for one, then scan again; what was started is skipped. */
	while (!scan(s, 1))
		wait_child(s);
	while (s->running)
		wait_child(s);
	return 0;
}

static void drain(int fd)
{
	char junk[256];
	while (read(fd, junk, sizeof junk) > 0)
		;
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

	for (;;) {
		time_t now = time(0);
		cleanup_tmp(s, now);
		int complete = scan(s, 0);
		int timeout = complete ? (int)(s->next_due - time(0)) * 1000 : -1;
		if (complete && timeout < 0)
			timeout = 0;
		struct pollfd p[2] = {
			{ .fd = selfpipe[0], .events = POLLIN },
			{ .fd = trigger, .events = POLLIN },
		};
		/* With every slot busy only a finished worker helps; the trigger waits till then. */
		if (poll(p, complete ? 2 : 1, timeout) < 0 && errno != EINTR)
			die_sys_code(EXIT_TEMP, "unable to poll");
		drain(selfpipe[0]);
		if (complete)
			drain(trigger);
		reap(s);
	}
}

int schedule_run(const struct config *c)
{
	static struct scheduler s;

	s.c = c;
	s.dirfd = open(c->queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", c->queuedir);
	s.workers = calloc(c->concurrency, sizeof *s.workers);
	if (!s.workers)
		die_sys_code(EXIT_TEMP, "unable to allocate");
	if (pipe(selfpipe) < 0)
		die_sys_code(EXIT_TEMP, "unable to make a pipe");
	for (int i = 0; i < 2; i++) {
		fcntl(selfpipe[i], F_SETFL, O_NONBLOCK);
		fcntl(selfpipe[i], F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa = { .sa_handler = on_child, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, 0);
	signal(SIGPIPE, SIG_IGN);
	return c->once ? run_once(&s) : run_forever(&s);
}
