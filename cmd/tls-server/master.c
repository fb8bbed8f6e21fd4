/* postroom: ISC license, see LICENSE. */
/*
 * The master: forks workers as clients come, so that one is always waiting in accept(2) while
 * fewer than srv->max are busy, and reaps them. Workers tell it on a pipe when they take a
 * client and when they are free again; it never touches a client itself.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "tls-server.h"

struct workers {
	struct worker_status *w;	/* pid and busy, one per live worker */
	size_t n;
};

static size_t idle(const struct workers *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++)
		k += !t->w[i].busy;
	return k;
}

static struct worker_status *find(struct workers *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->w[i].pid == pid)
			return &t->w[i];
	return 0;
}

/* 1, or 0 when fork failed (logged). */
static int spawn(const struct server *srv, struct workers *t, int status_read, int sigfd)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_line("trouble: unable to fork a worker: %s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		sigset_t none;
		close(status_read);
		close(sigfd);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, 0);
		worker_run(srv);
	}
	t->w[t->n++] = (struct worker_status){ .pid = pid, .busy = 0 };
	return 1;
}

static void reap(struct workers *t)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker_status *w = find(t, pid);
		if (!w)
			continue;
		*w = t->w[--t->n];
		if (WIFSIGNALED(status))
			log_line("trouble: worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
		else if (WEXITSTATUS(status))
			log_line("trouble: worker %ld exited %d", (long)pid, WEXITSTATUS(status));
	}
}

static void read_status(struct workers *t, int fd)
{
	struct worker_status m;

	/* Each message is one write of its whole size: a read takes whole ones. */
	if (read(fd, &m, sizeof m) != sizeof m)
		return;
	struct worker_status *w = find(t, m.pid);
	if (w)
		w->busy = m.busy;
}

/* Told to stop: no new client from now on. The idle workers (and their programs) are gone
   before we are, so that a stopped service leaves nothing behind but the sessions still
   running, which end on their own. */
static _Noreturn void stop(struct workers *t, int status_read, int sigfd)
{
	for (size_t i = 0; i < t->n; i++)
		kill(t->w[i].pid, SIGTERM);
	while (idle(t) > 0) {
		struct pollfd p[2] = { { .fd = status_read, .events = POLLIN },
				       { .fd = sigfd, .events = POLLIN } };
		struct signalfd_siginfo si;
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN)
			read_status(t, status_read);
		if ((p[1].revents & POLLIN) && read(sigfd, &si, sizeof si) == sizeof si &&
		    si.ssi_signo == SIGCHLD)
			reap(t);
	}
	_exit(0);
}

void master_run(const struct server *srv, int status_read)
{
	static struct workers t;
	sigset_t sigs;
	int backoff = -1;	/* after a failed fork, wait a second before the next */

	t.w = calloc(srv->max, sizeof *t.w);
	if (!t.w)
		die(EXIT_TEMP, "out of memory");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGCHLD);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, 0);
	int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sigfd < 0)
		die_sys_code(EXIT_TEMP, "unable to make a signalfd");

	for (;;) {
		backoff = -1;
		while (t.n < srv->max && idle(&t) == 0)
			if (!spawn(srv, &t, status_read, sigfd)) {
				backoff = 1000;
				break;
			}
		struct pollfd p[2] = { { .fd = status_read, .events = POLLIN },
				       { .fd = sigfd, .events = POLLIN } };
		if (poll(p, 2, backoff) < 0 && errno != EINTR)
			die_sys_code(EXIT_TEMP, "unable to poll");
		if (p[0].revents & POLLIN)
			read_status(&t, status_read);
		if (!(p[1].revents & POLLIN))
			continue;
		struct signalfd_siginfo si;
		if (read(sigfd, &si, sizeof si) != sizeof si)
			continue;
		if (si.ssi_signo == SIGCHLD) {
			reap(&t);
			continue;
		}
		stop(&t, status_read, sigfd);
	}
}
