/* postroom: ISC license, see LICENSE. */
#ifndef TLS_SERVER_H
#define TLS_SERVER_H

#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../tls-wrap/tls-wrap.h"

/* What main read from the command line and the environment; frozen before the first fork. */
struct server {
	struct serve_options serve;
	const char *rules;		/* -x: tcprules' CDB, or 0 */
	unsigned long max;		/* -c: workers (and so sessions) at once */
	unsigned long uses;		/* -m: sessions a worker serves before it exits */
	unsigned long sessions;		/* -S: sessions a worker holds at once */
	char **prog;
	SSL_CTX *ctx;			/* the default pair's context; SNI switches from it */
	int listen_fd;
	int status_fd;			/* workers tell the master busy or idle on it */
	pid_t master;
};

/* What a worker tells the master, in one write (atomic on a pipe). */
struct worker_status {
	pid_t pid;
	int busy;	/* one of: */
};
#define WORKER_IDLE 0		/* waiting for a client */
#define WORKER_BUSY 1		/* no room for one more */
#define WORKER_RETIRING 2	/* no more clients (-m, SIGTERM): finishing its sessions (-S) */

/* master.c: keeps enough workers (one idle at least, srv->max at most) until told to stop. */
_Noreturn void master_run(const struct server *srv, int status_read);
/* worker.c: runs the program once, then accepts clients and hands them to it one after
   another, srv->uses of them at most. */
_Noreturn void worker_run(const struct server *srv);

/* worker.c, for shared.c too. */
extern volatile sig_atomic_t stopping;	/* SIGTERM came: no more clients */
extern int listening;			/* the listening socket, -1 once SIGTERM closed it */
/* SIGTERM's handler, and the end of the worker with its master's. */
void worker_signals(const struct server *srv);
void tell_master(const struct server *srv, int busy);
/* The program: its end of the pool socket as POOLFD (and POOLSESSIONS when at_once > 1),
   /dev/null on 0 and 1 between sessions. 1, or 0 when it could not be started (logged). */
int program_start(struct program *p, unsigned long at_once);
/* The program is done with (end of file on its socket) or has gone (it crashed, or was
   killed): reaped, and a death by signal, perhaps a parser's crash, logged. */
void program_gone(struct program *p);
/* One client on fd: tcprules, the TCP variables in ps, and the session through p. */
void session(const struct server *srv, struct program *p, struct pool_session *ps, int fd,
	     const struct sockaddr_storage *remote);

/* shared.c: a worker of srv->sessions clients at once, one thread each (-S). */
_Noreturn void worker_run_shared(const struct server *srv);

#endif
