/* postroom: ISC license, see LICENSE. */
/*
 * tls-server: tcpserver and tls-wrap in one, shaped by what a connection costs. A connection
 * through tcpserver, tls-wrap and the server costs two fork+execs, OpenSSL's start and the
 * reading of the keys: several times the work of the session itself (postroom(7)). Here a
 * master loads the keys and binds the port once; workers forked from it (sharing its pages)
 * accept clients one after another, each with one copy of the server program, exec'd once,
 * to which it hands every session over a socket (lib/pool). The keys stay in the master and
 * its workers: the program, a protocol parser, never holds one. The client sees what it saw
 * under tcpserver and tls-wrap, and so does the program.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <unistd.h>

#include "die.h"
#include "tls-server.h"

const char *PROG = "tls-server";

#define USAGE "[-n] [-c MAX] [-S SESSIONS] [-b BACKLOG] [-m USES] [-x RULES.cdb] [-s SNIDIR] [-u USER] " \
	      "[-g GROUP] [-t HANDSHAKE-SECONDS] [-i IDLE-SECONDS] HOST PORT PROG [ARG...]"

/* A worker that waited this long for a client exits (Postfix's max_idle); the master keeps
   one at least. */
#define WORKER_IDLE_SECONDS 100

static unsigned long number(const char *arg, unsigned long min, unsigned long max,
			    const char *what)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);

	if (end == arg || *end || n < min || n > max)
		die(EXIT_PERM, "%s: a number from %lu to %lu: %s", what, min, max, arg);
	return n;
}

/* Binds HOST PORT (numeric both: no DNS), SO_REUSEADDR, with the backlog asked for. */
static int listen_on(const char *host, const char *port, int backlog)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	int on = 1;

	/* tcpserver's "0": every address. */
	int e = getaddrinfo(strcmp(host, "0") ? host : "0.0.0.0", port, &hints, &ai);
	if (e)
		die(EXIT_PERM, "unable to listen on %s port %s: %s", host, port, gai_strerror(e));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die_sys_code(EXIT_TEMP, "unable to make a socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die_sys_code(EXIT_TEMP, "unable to bind %s port %s", host, port);
	if (listen(fd, backlog) < 0)
		die_sys_code(EXIT_TEMP, "unable to listen on %s port %s", host, port);
	freeaddrinfo(ai);
	/* accept(2) gives up after this (the socket's receive timeout): an idle worker exits. */
	struct timeval idle = { .tv_sec = WORKER_IDLE_SECONDS };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
	return fd;
}

int main(int argc, char **argv)
{
	static struct server srv;
	static struct keys keys;
	const char *snidir = 0, *user = getenv("TLS_UID"), *group = getenv("TLS_GID");
	const char *certfile = getenv("CERTFILE"), *keyfile = getenv("KEYFILE");
	unsigned long backlog = 256;
	int c, status[2];

	srv.serve.handshake_timeout = 30;
	srv.serve.idle_timeout = 1800;
	srv.max = 100;
	srv.uses = 100;
	srv.sessions = 1;
	while ((c = getopt(argc, argv, "+nc:S:b:m:x:s:u:g:t:i:")) != -1) {
		switch (c) {
		case 'n': srv.serve.starttls = 1; break;
		case 'c': srv.max = number(optarg, 1, 100000, "-c"); break;
		case 'S': srv.sessions = number(optarg, 1, POOL_SESSIONS_MAX, "-S"); break;
		case 'b': backlog = number(optarg, 1, 65535, "-b"); break;
		case 'm': srv.uses = number(optarg, 1, 1000000, "-m"); break;
		case 'x': srv.rules = optarg; break;
		case 's': snidir = optarg; break;
		case 'u': user = optarg; break;
		case 'g': group = optarg; break;
		case 't': srv.serve.handshake_timeout = number(optarg, 1, 86400, "-t"); break;
		case 'i': srv.serve.idle_timeout = number(optarg, 1, 86400, "-i"); break;
		default: die_usage(USAGE);
		}
	}
	if (argc - optind < 3)
		die_usage(USAGE);
	srv.prog = argv + optind + 2;
	if (!certfile || !*certfile)
		die(EXIT_PERM, "no certificate: set CERTFILE");
	if (!keyfile || !*keyfile)
		keyfile = certfile;

	signal(SIGPIPE, SIG_IGN);
	keys_load(&keys, certfile, keyfile, snidir);
	srv.ctx = keys.fallback;
	srv.listen_fd = listen_on(argv[optind], argv[optind + 1], (int)backlog);
	/* Workers of several sessions wait in poll(2), all of them: the one that comes second to
	   a client must find it taken, not block in accept(2). */
	if (srv.sessions > 1)
		fcntl(srv.listen_fd, F_SETFL, fcntl(srv.listen_fd, F_GETFL) | O_NONBLOCK);
	drop_privileges(user && *user ? user : 0, group && *group ? group : 0);
	/* The key stays in our memory: not even the program, same user, may read it. */
	prctl(PR_SET_DUMPABLE, 0);
	if (pipe2(status, O_CLOEXEC) < 0)
		die_sys_code(EXIT_TEMP, "unable to make a pipe");
	srv.status_fd = status[1];
	srv.master = getpid();
	master_run(&srv, status[0]);
}
