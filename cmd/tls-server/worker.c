/* postroom: ISC license, see LICENSE. */
/*
 * A worker: the program exec'd once with POOLFD, then, for each client, accept(2), tcprules,
 * the TCP variables, and the session (tls-wrap's serve) with the program reached through the
 * pool socket instead of a fork. After srv->uses sessions, or on SIGTERM once its session is
 * over, the worker exits and the master forks a fresh one. A program that went away is started
 * again for the next session.
 */
#define _GNU_SOURCE	/* accept4, gettid */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "pool.h"
#include "tcprules.h"
#include "tls-server.h"

extern char **environ;

volatile sig_atomic_t stopping;
int listening = -1;

/* SIGTERM: no more clients. The listening socket goes at once, so that a new master can bind
   the port while this worker finishes its session. */
static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	if (listening >= 0)
		close(listening);
	listening = -1;
}

void worker_signals(const struct server *srv)
{
	struct sigaction sa = { .sa_handler = on_term };	/* no SA_RESTART: accept stops */

	listening = srv->listen_fd;
	sigaction(SIGTERM, &sa, 0);
	/* A master gone for good (killed) stops its workers as SIGTERM would. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != srv->master)
		_exit(0);
}

void tell_master(const struct server *srv, int busy)
{
	struct worker_status m = { .pid = getpid(), .busy = busy };

	(void)!write(srv->status_fd, &m, sizeof m);
}

/* The program's environment: ours, less any POOLFD or POOLSESSIONS, plus the two for it; made
   before the fork, since a worker of -S forks with other threads running, and a child of such
   a process must not allocate. 0 when out of memory. */
static char **program_env(int fd, unsigned long at_once)
{
	static char poolfd[32], sessions[48];
	size_t n = 0, k = 0;

	while (environ[n])
		n++;
	char **env = calloc(n + 3, sizeof *env);
	if (!env)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "POOLFD=", 7) && strncmp(environ[i], "POOLSESSIONS=", 13))
			env[k++] = environ[i];
	snprintf(poolfd, sizeof poolfd, "POOLFD=%d", fd);
	env[k++] = poolfd;
	snprintf(sessions, sizeof sessions, "POOLSESSIONS=%lu", at_once);
	if (at_once > 1)
		env[k++] = sessions;
	return env;
}

int program_start(struct program *p, unsigned long at_once)
{
	int sv[2];
	char **env;

	if (!pool_pair(sv)) {
		log_line("trouble: unable to make a socket pair: %s", strerror(errno));
		return 0;
	}
	if (!(env = program_env(sv[1], at_once))) {
		log_line("trouble: unable to start %s: out of memory", p->argv[0]);
		close(sv[0]), close(sv[1]);
		return 0;
	}
	p->pid = fork();
	if (p->pid < 0) {
		log_line("trouble: unable to fork: %s", strerror(errno));
		close(sv[0]), close(sv[1]);
		free(env);
		return 0;
	}
	if (p->pid == 0) {
		sigset_t none;
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || fcntl(sv[1], F_SETFD, 0) < 0)
			_exit(EXIT_TEMP);
		if (null > 1)
			close(null);
		signal(SIGPIPE, SIG_DFL);
		/* A session thread of -S, which may start the program, blocks SIGTERM. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, 0);
		execvpe(p->argv[0], p->argv, env);
		log_line("fatal: unable to run %s: %s", p->argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	free(env);
	close(sv[1]);
	p->chan = sv[0];
	return 1;
}

void program_gone(struct program *p)
{
	int status = 0;

	if (p->chan >= 0)
		close(p->chan);
	p->chan = -1;
	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status))
		log_line("trouble: %s (pid %ld) killed by signal %d", p->argv[0], (long)p->pid,
			 WTERMSIG(status));
}

/* Hands the session over; a program that has gone is started afresh, so that the client does
   not pay for it. */
static int pool_start(struct program *p, const struct pool_session *ps)
{
	if (p->chan >= 0) {
		if (pool_send(p->chan, ps))
			return 1;
		log_line("trouble: unable to hand a session to %s: %s; starting it again",
			 p->argv[0], strerror(errno));
		program_gone(p);
	}
	if (program_start(p, 1) && pool_send(p->chan, ps))
		return 1;
	log_line("trouble: unable to hand a session to %s: %s", p->argv[0], strerror(errno));
	return 0;
}

static int pool_end(struct program *p)
{
	int code = p->chan >= 0 ? pool_wait(p->chan) : -1;

	if (code >= 0)
		return code;
	/* Gone in the middle of the session: started again for the next one. */
	program_gone(p);
	return EXIT_TEMP;
}

/* NAME=value\0 into the session's environment; 0 when it does not fit. */
static int env_set(struct pool_session *ps, const char *name, const char *value)
{
	int n = snprintf(ps->env + ps->len, sizeof ps->env - ps->len, "%s=%s", name, value);

	if (n < 0 || (size_t)n >= sizeof ps->env - ps->len)
		return 0;
	ps->len += (size_t)n + 1;
	return 1;
}

/* An address as tcpserver writes it: IPv4 dotted (also when it came mapped into IPv6). */
static void address(const struct sockaddr_storage *sa, char *ip, size_t size, char *port)
{
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, (socklen_t)size);
		else
			inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)size);
		snprintf(port, 8, "%u", ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)size);
		snprintf(port, 8, "%u", ntohs(a->sin_port));
	}
}

void session(const struct server *srv, struct program *p, struct pool_session *ps, int fd,
	     const struct sockaddr_storage *remote)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof local;
	char rip[INET6_ADDRSTRLEN], lip[INET6_ADDRSTRLEN], rport[8], lport[8];
	struct session s = { .net_in = fd, .net_out = fd, .client = rip };

	address(remote, rip, sizeof rip, rport);
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
		memset(&local, 0, sizeof local);
	address(&local, lip, sizeof lip, lport);
	ps->len = 0;
	ps->nfd = 0;
	if (!env_set(ps, "PROTO", "TCP") || !env_set(ps, "TCPREMOTEIP", rip) ||
	    !env_set(ps, "TCPREMOTEPORT", rport) || !env_set(ps, "TCPLOCALIP", lip) ||
	    !env_set(ps, "TCPLOCALPORT", lport))
		return;
	if (srv->rules) {
		switch (tcprules_check(srv->rules, rip, ps->env, sizeof ps->env, &ps->len)) {
		case TCPRULES_ALLOW:
			break;
		case TCPRULES_DENY:
			log_line("%ld client=%s denied", (long)gettid(), rip);
			return;
		case TCPRULES_ERROR:
			log_line("%ld client=%s trouble: unable to read %s: %s", (long)gettid(), rip,
				 srv->rules, strerror(errno));
			return;
		}
	}
	s.ssl = SSL_new(srv->ctx);
	if (!s.ssl) {
		log_line("%ld client=%s trouble: unable to start TLS: %s", (long)gettid(), rip,
			 tls_reason());
		return;
	}
	SSL_set_fd(s.ssl, fd);
	serve(&s, &srv->serve, p, ps);
	SSL_free(s.ssl);
}

void worker_run(const struct server *srv)
{
	static struct pool_session ps;
	struct program p = { .start = pool_start, .wait = pool_end, .argv = srv->prog, .chan = -1 };

	if (srv->sessions > 1)
		worker_run_shared(srv);
	worker_signals(srv);
	if (!program_start(&p, 1))
		_exit(EXIT_TEMP);

	for (unsigned long served = 0; served < srv->uses && !stopping;) {
		struct sockaddr_storage remote;
		socklen_t len = sizeof remote;
		int fd = accept4(listening, (struct sockaddr *)&remote, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;	/* idle too long */
			if (errno == EINTR || errno == ECONNABORTED || stopping)
				continue;
			log_line("trouble: unable to accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				sleep(1);
			continue;
		}
		tell_master(srv, WORKER_BUSY);
		served++;
		session(srv, &p, &ps, fd, &remote);
		close(fd);
		tell_master(srv, WORKER_IDLE);
	}
	/* The program sees end of file, and is gone before we are. */
	program_gone(&p);
	_exit(0);
}
