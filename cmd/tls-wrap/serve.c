/* postroom: ISC license, see LICENSE. */
/*
 * One client's session, whoever runs the program: tls-wrap forks and execs it for each
 * connection, tls-server hands the connection to a program that stays up between sessions
 * (lib/pool). Either way the program gets the same descriptors and environment, described as a
 * pool_session, and its exit code comes back to be logged.
 */
#define _GNU_SOURCE	/* pipe2, gettid */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "die.h"
#include "log.h"
#include "tls-wrap.h"

#define DETAILS_MAX 4

void session_log(struct session *s, int tls, int code)
{
	const char *sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
	char esc[300], why[300];

	log_escape(esc, sizeof esc, sni ? sni : "", sni ? strlen(sni) : 0);
	log_escape(why, sizeof why, s->failure, strlen(s->failure));
	if (!tls)
		log_line("%ld client=%s tls=none exit=%d", (long)gettid(), s->client, code);
	else
		log_line("%ld client=%s sni=%s protocol=%s cipher=%s in=%llu out=%llu result=\"%s\" exit=%d",
			 (long)gettid(), s->client, sni ? esc : "-",
			 SSL_is_init_finished(s->ssl) ? SSL_get_version(s->ssl) : "-",
			 SSL_is_init_finished(s->ssl) ? SSL_get_cipher_name(s->ssl) : "-",
			 s->bytes_in, s->bytes_out, s->failure[0] ? why : "ok", code);
}

/* A session that could not be set up, for want of descriptors or memory: logged, and 111 for
   that session alone (under tls-server the worker goes on with the next). */
static int trouble(struct session *s, int tls, const char *what)
{
	log_line("%ld client=%s trouble: unable to %s: %s", (long)gettid(), s->client, what,
		 strerror(errno));
	session_log(s, tls, EXIT_TEMP);
	return EXIT_TEMP;
}

/* Appends NAME=value\0 to the session's environment: 1, or 0 when it does not fit. */
static int env_add(struct pool_session *ps, const char *pair)
{
	size_t n = strlen(pair) + 1;

	if (ps->len + n > sizeof ps->env) {
		errno = E2BIG;
		return 0;
	}
	memcpy(ps->env + ps->len, pair, n);
	ps->len += n;
	return 1;
}

/* 1 when the session's environment sets name (a rule of tcprules may), or ours does. */
static int env_sets(const struct pool_session *ps, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < ps->len; i += strlen(ps->env + i) + 1)
		if (!strncmp(ps->env + i, name, n) && ps->env[i + n] == '=')
			return 1;
	return getenv(name) != 0;
}

/* Pipes for the program's cleartext (down: client to program, up: program to client); ours
   are close-on-exec, and so are the program's until the program is given them. */
static int pipes(int down[2], int up[2])
{
	if (pipe2(down, O_CLOEXEC) < 0)
		return 0;
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]), close(down[1]);
		return 0;
	}
	return 1;
}

/* 465, 993, 995: the handshake first, then the program on pipes with the details in its
   environment. */
static int implicit_tls(struct session *s, const struct serve_options *o, struct program *p,
			struct pool_session *ps)
{
	char details[DETAILS_MAX][300];
	int down[2], up[2];

	if (!tls_handshake(s, o->handshake_timeout)) {
		session_log(s, 1, EXIT_TEMP);
		return EXIT_TEMP;
	}
	size_t n = tls_details(s, details, DETAILS_MAX);
	for (size_t i = 0; i < n; i++)
		if (!env_add(ps, details[i]))
			return trouble(s, 1, "set the session's environment");
	if (!pipes(down, up))
		return trouble(s, 1, "make a pipe");
	ps->fd[0] = down[0];
	ps->fd[1] = up[1];
	ps->nfd = 2;
	int started = p->start(p, ps);
	close(down[0]), close(up[1]);
	if (!started) {
		close(down[1]), close(up[0]);
		session_log(s, 1, EXIT_TEMP);
		return EXIT_TEMP;
	}
	tls_relay(s, down[1], up[0], o->idle_timeout);
	int code = p->wait(p);
	session_log(s, 1, code);
	return code;
}

/* The answer to Y: NAME=value\0 for each detail, then \0, in one write. A program that is gone
   by now is found out by the relay. */
static void send_details(struct session *s, int fd)
{
	char details[DETAILS_MAX][300], reply[DETAILS_MAX * 300 + 1];
	size_t n = tls_details(s, details, DETAILS_MAX), len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(details[i]) + 1;
		memcpy(reply + len, details[i], k);
		len += k;
	}
	reply[len++] = 0;
	fd_write_all(fd, reply, len);
}

/* UCSPI-TLS (-n): the program talks cleartext on the client's socket until it writes y or Y on
   SSLCTLFD; then we do the handshake and relay through SSLREADFD/SSLWRITEFD. */
static int starttls(struct session *s, const struct serve_options *o, struct program *p,
		    struct pool_session *ps)
{
	int ctl[2], down[2], up[2];
	char request;

	if (!env_sets(ps, "UCSPITLS") && !env_add(ps, "UCSPITLS="))
		return trouble(s, 0, "set the session's environment");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
		return trouble(s, 0, "make a socket pair");
	if (!pipes(down, up)) {
		close(ctl[0]), close(ctl[1]);
		return trouble(s, 0, "make a pipe");
	}
	ps->fd[0] = s->net_in;
	ps->fd[1] = s->net_out;
	ps->fd[2] = ctl[1];
	ps->fd[3] = down[0];
	ps->fd[4] = up[1];
	ps->nfd = 5;
	int started = p->start(p, ps);
	close(ctl[1]), close(down[0]), close(up[1]);
	if (!started) {
		close(ctl[0]), close(down[1]), close(up[0]);
		session_log(s, 0, EXIT_TEMP);
		return EXIT_TEMP;
	}

	ssize_t r;
	while ((r = read(ctl[0], &request, 1)) < 0 && errno == EINTR)
		;
	int tls = r == 1 && (request == 'y' || request == 'Y');
	if (tls && tls_handshake(s, o->handshake_timeout)) {
		if (request == 'Y')
			send_details(s, ctl[0]);
		close(ctl[0]);
		tls_relay(s, down[1], up[0], o->idle_timeout);
	} else {
		/* No TLS, or a failed handshake: the program sees end of file on all three. */
		close(ctl[0]), close(down[1]), close(up[0]);
	}
	int code = p->wait(p);
	session_log(s, tls, code);
	return code;
}

int serve(struct session *s, const struct serve_options *o, struct program *p,
	  struct pool_session *ps)
{
	s->bytes_in = s->bytes_out = 0;
	s->failure[0] = 0;
	return o->starttls ? starttls(s, o, p, ps) : implicit_tls(s, o, p, ps);
}
