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

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "deadline.h"
#include "die.h"
#include "log.h"
#include "tls-server.h"

struct worker {
	pid_t pid;
	int busy;
	int retiring;	/* takes no more clients (-S): not counted against srv->max */
	int served;	/* it took a client once at least */
};
struct workers {
	struct worker *w;	/* one per live worker */
	size_t n, room;
	long long hold_until;	/* no fork before this instant (deadline_now_ms) */
};

/* A worker that fails before it serves anyone (its program cannot be started: no such file, a
   process limit) would be forked again at once, in a loop: wait this long first, as
   s6-supervise does for a service that dies at once. */
#define SPAWN_HOLD_MS 1000

static size_t idle(const struct workers *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++)
		k += !t->w[i].busy;
	return k;
}

/* The workers that count against srv->max: all but those that only finish their sessions. */
static size_t counted(const struct workers *t)
{
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++)
		k += !t->w[i].retiring;
	return k;
}

static struct worker *find(struct workers *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->w[i].pid == pid)
			return &t->w[i];
	return 0;
}

/* 1, or 0 when fork failed (logged). */
static int spawn(const struct server *srv, struct workers *t, int status_read, int sigfd)
{
	/* Room for a worker more: retiring ones may outnumber srv->max. */
	if (t->n == t->room) {
		struct worker *w = realloc(t->w, 2 * t->room * sizeof *w);
		if (!w) {
			log_line("trouble: unable to fork a worker: out of memory");
			return 0;
		}
		t->w = w;
		t->room *= 2;
	}
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
	t->w[t->n++] = (struct worker){ .pid = pid };
	return 1;
}

static void reap(struct workers *t)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker *w = find(t, pid);
		if (!w)
			continue;
		int failed = WIFSIGNALED(status) || WEXITSTATUS(status);
		if (failed && !w->served)
			t->hold_until = deadline_now_ms() + SPAWN_HOLD_MS;
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
	struct worker *w = find(t, m.pid);
	if (w) {
		w->busy = m.busy != WORKER_IDLE;
		w->retiring = m.busy == WORKER_RETIRING;
		w->served |= w->busy;
	}
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

/*
 * One handshake in memory, with a client of our own, before any worker is forked. OpenSSL
 * builds much of its state lazily, at the first handshake (the providers' method caches, the
 * record layer's): built here, it is shared by every worker, where each worker would build it
 * for itself on its first client (about 70 KiB of each worker's heap). Nothing depends on it:
 * a handshake that fails here leaves the workers to do that work themselves.
 */
static void warm_up(SSL_CTX *server)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = cctx ? SSL_new(cctx) : 0, *s = SSL_new(server);
	BIO *cb = 0, *sb = 0;

	if (c && s && BIO_new_bio_pair(&cb, 0, &sb, 0)) {
		SSL_set_bio(c, cb, cb);
		SSL_set_bio(s, sb, sb);
		SSL_set_connect_state(c);
		SSL_set_accept_state(s);
		/* Each side takes its turn until both are done; a few rounds are enough. */
		int done = 0;
		for (int round = 0; round < 10 && !done; round++)
			done = (SSL_do_handshake(c) == 1) & (SSL_do_handshake(s) == 1);
		char byte;
		if (done && SSL_write(c, "x", 1) == 1)
			(void)SSL_read(s, &byte, 1);
	}
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	ERR_clear_error();
}

void master_run(const struct server *srv, int status_read)
{
	static struct workers t;
	sigset_t sigs;
	int backoff;		/* poll's timeout: -1, or until hold_until */

	warm_up(srv->ctx);

	t.room = srv->max;
	t.w = calloc(t.room, sizeof *t.w);
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
		long long now = deadline_now_ms();
		backoff = -1;
		if (now < t.hold_until)
			backoff = (int)(t.hold_until - now);
		else
			while (counted(&t) < srv->max && idle(&t) == 0)
				if (!spawn(srv, &t, status_read, sigfd)) {
					t.hold_until = now + SPAWN_HOLD_MS;
					backoff = SPAWN_HOLD_MS;
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
