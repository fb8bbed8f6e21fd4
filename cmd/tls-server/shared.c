/* postroom: ISC license, see LICENSE. */
/*
 * A worker that holds several clients at once (-S), for servers whose sessions idle for hours
 * (IMAP, POP3): a worker of one would keep a process, its heap and OpenSSL's pages, for each
 * idle client. Here each client has a thread, which runs the same session as a worker of one
 * (serve.c, relay.c), and all go to one copy of the program, which serves them at once
 * (POOLSESSIONS, pool(5)) and ends each with its number. The main thread accepts clients while
 * there is room, and reads the program's answers, each for the thread whose session it ends.
 * A worker with no room left, or no longer taking clients, is busy for the master.
 */
#define _GNU_SOURCE	/* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "memory.h"
#include "pool.h"
#include "tls-server.h"

/* A worker of one waits this long for a client before it exits (worker.c); so does this one
   with no session. */
#define IDLE_MS (100 * 1000)
/* Enough for a session's deepest calls (OpenSSL's handshake, a log line); only the pages it
   touches cost memory, and a resting session gives those back (memory_give_back). Ours, not
   glibc's, which keeps the stacks of ended threads, touched pages and all, for new ones. */
#define THREAD_STACK (256 * 1024)
#define GUARD 4096

/* One client's thread. */
struct slot {
	struct program p;	/* first: serve's callbacks find the slot from it */
	const struct server *srv;
	int used;		/* until the thread is joined and its stack unmapped */
	int ended;		/* the thread is over: to be joined */
	pthread_t thread;
	char *stack;		/* GUARD + THREAD_STACK bytes, mapped */
	int fd;
	struct sockaddr_storage remote;
	int handed;		/* the program has the session: number and generation are set */
	unsigned number;	/* the session's number on the program's socket */
	unsigned generation;	/* which copy of the program took it */
	int answered, code;	/* the program's answer: its exit code for the session */
};

static struct {
	pthread_mutex_t lock;	/* over everything below */
	pthread_cond_t answer;	/* some slot was answered */
	struct program prog;
	unsigned generation;	/* a new copy of the program, a new count of sessions */
	unsigned sent;		/* sessions handed to this copy */
	struct slot *slots;
	unsigned long active;
	int wake[2];		/* a thread ended: the main thread looks again */
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .answer = PTHREAD_COND_INITIALIZER };

static int shared_start(struct program *p, const struct pool_session *ps)
{
	struct slot *s = (struct slot *)p;
	int ok = 0;

	pthread_mutex_lock(&w.lock);
	/* A program gone (read_answer saw it) is started again for the client that needs it,
	   not at once: one that cannot run would be started in a loop. */
	if (w.prog.chan < 0 && program_start(&w.prog, s->srv->sessions))
		(void)!write(w.wake[1], "", 1);	/* the main thread has its socket to watch */
	if (w.prog.chan >= 0 && pool_send(w.prog.chan, ps)) {
		s->handed = 1;
		s->number = w.sent++;
		s->generation = w.generation;
		ok = 1;
	} else if (w.prog.chan >= 0) {
		/* Gone since: the main thread finds out, and the next client starts it again. */
		log_line("trouble: unable to hand a session to %s: %s", w.prog.argv[0],
			 strerror(errno));
	}
	pthread_mutex_unlock(&w.lock);
	/* Nothing reads ps after the program has it (serve.c): its pages go, so that an idle
	   session does not keep its 8 KiB. */
	memory_discard((void *)ps, sizeof *ps);
	return ok;
}

static int shared_wait(struct program *p)
{
	struct slot *s = (struct slot *)p;

	pthread_mutex_lock(&w.lock);
	while (!s->answered)
		pthread_cond_wait(&w.answer, &w.lock);
	int code = s->code;
	pthread_mutex_unlock(&w.lock);
	return code;
}

static void *client_thread(void *arg)
{
	struct slot *s = arg;
	struct pool_session *ps = mmap(0, sizeof *ps, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ps != MAP_FAILED) {
		session(s->srv, &s->p, ps, s->fd, &s->remote);
		munmap(ps, sizeof *ps);
	} else {
		log_line("trouble: unable to take a client: %s", strerror(errno));
	}
	close(s->fd);
	pthread_mutex_lock(&w.lock);
	s->ended = 1;
	w.active--;
	pthread_mutex_unlock(&w.lock);
	(void)!write(w.wake[1], "", 1);
	return 0;
}

/* The program's answer for one session; or the program is gone, and every session it had
   ends with 111, as under a worker of one. */
static void read_answer(unsigned long max)
{
	unsigned number;
	int code = pool_wait_numbered(w.prog.chan, &number);
	struct program gone = w.prog;

	pthread_mutex_lock(&w.lock);
	for (unsigned long i = 0; i < max; i++) {
		struct slot *s = &w.slots[i];
		if (!s->used || !s->handed || s->answered || s->generation != w.generation)
			continue;
		if (code < 0 || s->number == number) {
			s->answered = 1;
			s->code = code < 0 ? EXIT_TEMP : code;
		}
	}
	if (code < 0) {
		/* The next client starts it again (shared_start). */
		w.prog.chan = -1;
		w.generation++;
		w.sent = 0;
	}
	pthread_cond_broadcast(&w.answer);
	pthread_mutex_unlock(&w.lock);
	/* Reaped without the lock: a program that closed its socket may take its time to go. */
	if (code < 0)
		program_gone(&gone);
}

/* The threads that are over, joined, their stacks unmapped, their slots free; and the heap's
   free pages (their sessions' TLS state) given back. */
static void reap_threads(unsigned long max)
{
	int reaped = 0;

	for (unsigned long i = 0; i < max; i++) {
		struct slot *s = &w.slots[i];
		pthread_mutex_lock(&w.lock);
		int ended = s->used && s->ended;
		pthread_mutex_unlock(&w.lock);
		if (!ended)
			continue;
		pthread_join(s->thread, 0);
		munmap(s->stack, GUARD + THREAD_STACK);
		pthread_mutex_lock(&w.lock);
		s->used = 0;
		pthread_mutex_unlock(&w.lock);
		reaped = 1;
	}
	if (reaped)
		malloc_trim(0);
}

/* A thread, on a stack of its own with a guard page below, for the client on fd, with SIGTERM
   (the main thread's) blocked. 1, or 0 (logged). */
static int start_client(const struct server *srv, int fd, const struct sockaddr_storage *remote)
{
	struct slot *s = 0;
	pthread_attr_t attr;
	sigset_t term, old;

	/* A slot is free: fewer than srv->sessions run, and reap_threads has just run. */
	for (unsigned long i = 0; i < srv->sessions && !s; i++)
		if (!w.slots[i].used)
			s = &w.slots[i];
	if (!s) {
		log_line("trouble: unable to start a thread: no room");
		return 0;
	}
	char *stack = mmap(0, GUARD + THREAD_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED || mprotect(stack, GUARD, PROT_NONE) < 0) {
		log_line("trouble: unable to start a thread: %s", strerror(errno));
		if (stack != MAP_FAILED)
			munmap(stack, GUARD + THREAD_STACK);
		return 0;
	}
	pthread_mutex_lock(&w.lock);
	*s = (struct slot){ .p = { .start = shared_start, .wait = shared_wait, .chan = -1 },
			    .srv = srv, .used = 1, .stack = stack, .fd = fd, .remote = *remote };
	w.active++;
	pthread_mutex_unlock(&w.lock);

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack + GUARD, THREAD_STACK);
	int e = pthread_create(&s->thread, &attr, client_thread, s);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, 0);
	if (!e)
		return 1;
	log_line("trouble: unable to start a thread: %s", strerror(e));
	munmap(stack, GUARD + THREAD_STACK);
	pthread_mutex_lock(&w.lock);
	s->used = 0;
	w.active--;
	pthread_mutex_unlock(&w.lock);
	return 0;
}

static void take_client(const struct server *srv, unsigned long *served)
{
	struct sockaddr_storage remote;
	socklen_t len = sizeof remote;
	int fd = accept4(listening, (struct sockaddr *)&remote, &len, SOCK_CLOEXEC);

	if (fd < 0) {
		/* Another worker took it (EAGAIN), or the client left first: nothing to say. */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNABORTED)
			return;
		log_line("trouble: unable to accept: %s", strerror(errno));
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			sleep(1);
		return;
	}
	(*served)++;
	if (!start_client(srv, fd, &remote))
		close(fd);
}

void worker_run_shared(const struct server *srv)
{
	unsigned long served = 0;
	int told = WORKER_IDLE;

	worker_signals(srv);
	/* One heap for all threads: an arena per thread would keep its pages apart. */
	mallopt(M_ARENA_MAX, 1);
	w.prog = (struct program){ .argv = srv->prog, .chan = -1 };
	w.slots = calloc(srv->sessions, sizeof *w.slots);
	if (!w.slots || pipe2(w.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(EXIT_TEMP);
	if (!program_start(&w.prog, srv->sessions))
		_exit(EXIT_TEMP);

	for (;;) {
		int taking = !stopping && listening >= 0 && served < srv->uses;
		pthread_mutex_lock(&w.lock);
		unsigned long active = w.active;
		int chan = w.prog.chan;	/* closed by this thread alone: stays valid in poll */
		pthread_mutex_unlock(&w.lock);
		if (!taking && active == 0)
			break;
		/* Busy: the master forks another worker for the clients to come. Retiring: the
		   same, and this one no longer counts against -c, however long its sessions. */
		int full = !taking || active >= srv->sessions;
		int state = !taking ? WORKER_RETIRING : full ? WORKER_BUSY : WORKER_IDLE;
		if (state != told)
			tell_master(srv, told = state);

		struct pollfd p[3] = { { .fd = full ? -1 : listening, .events = POLLIN },
				       { .fd = chan, .events = POLLIN },
				       { .fd = w.wake[0], .events = POLLIN } };
		int r = poll(p, 3, active == 0 ? IDLE_MS : -1);
		if (r < 0 && errno != EINTR)
			die_sys_code(EXIT_TEMP, "unable to poll");
		if (r == 0)
			break;	/* no client for too long */
		if (r <= 0)
			continue;
		char drain[64];
		if (p[2].revents)
			while (read(w.wake[0], drain, sizeof drain) > 0)
				;
		reap_threads(srv->sessions);
		if (p[1].revents)
			read_answer(srv->sessions);
		if (p[0].revents && listening >= 0)
			take_client(srv, &served);
	}
	/* Every session is over: the program sees end of file, and is gone before we are. */
	reap_threads(srv->sessions);
	program_gone(&w.prog);
	_exit(0);
}
