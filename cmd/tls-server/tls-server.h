/* postroom: ISC license, see LICENSE. */
#ifndef TLS_SERVER_H
#define TLS_SERVER_H

#include <sys/types.h>

#include "../tls-wrap/tls-wrap.h"

/* What main read from the command line and the environment; frozen before the first fork. */
struct server {
	struct serve_options serve;
	const char *rules;		/* -x: tcprules' CDB, or 0 */
	unsigned long max;		/* -c: workers (and so sessions) at once */
	unsigned long uses;		/* -m: sessions a worker serves before it exits */
	char **prog;
	SSL_CTX *ctx;			/* the default pair's context; SNI switches from it */
	int listen_fd;
	int status_fd;			/* workers tell the master busy or idle on it */
	pid_t master;
};

/* What a worker tells the master, in one write (atomic on a pipe). */
struct worker_status {
	pid_t pid;
	int busy;
};

/* master.c: keeps enough workers (one idle at least, srv->max at most) until told to stop. */
_Noreturn void master_run(const struct server *srv, int status_read);
/* worker.c: runs the program once, then accepts clients and hands them to it one after
   another, srv->uses of them at most. */
_Noreturn void worker_run(const struct server *srv);

#endif
