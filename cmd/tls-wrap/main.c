/* postroom: ISC license, see LICENSE. */
/*
 * tls-wrap: the TLS layer in front of a stdin/stdout program, so that no protocol parser ever
 * holds a private key. It loads the keys, drops privileges, and then either does the handshake
 * at once and runs the program on plain pipes (465, 993, 995), or, with -n, runs the program in
 * cleartext and does the handshake when the program asks for it (UCSPI-TLS, for STARTTLS).
 * tls-wrap stays in the middle until the program is done, then logs one line for the session.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "die.h"
#include "log.h"
#include "tls-wrap.h"

const char *PROG = "tls-wrap";

#define USAGE "[-n] [-c CERTFILE] [-k KEYFILE] [-s SNIDIR] [-u USER] [-g GROUP] " \
	      "[-t HANDSHAKE-SECONDS] [-i IDLE-SECONDS] PROG [ARG...]"

#define DETAILS_MAX 4

struct options {
	int starttls;		/* -n: UCSPI-TLS */
	const char *certfile, *keyfile, *snidir, *user, *group;
	unsigned long handshake_timeout, idle_timeout;
	char **prog;
};

static unsigned long seconds(const char *arg)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);

	if (end == arg || *end || n < 1 || n > 86400)
		die(EXIT_PERM, "timeouts are seconds, from 1 to 86400: %s", arg);
	return n;
}

static void options(int argc, char **argv, struct options *o)
{
	int c;

	o->certfile = getenv("CERTFILE");
	o->keyfile = getenv("KEYFILE");
	o->user = getenv("TLS_UID");
	o->group = getenv("TLS_GID");
	o->handshake_timeout = 30;
	o->idle_timeout = 1800;
	/* "+": the program's own options are not ours. */
	while ((c = getopt(argc, argv, "+nc:k:s:u:g:t:i:")) != -1) {
		switch (c) {
		case 'n': o->starttls = 1; break;
		case 'c': o->certfile = optarg; break;
		case 'k': o->keyfile = optarg; break;
		case 's': o->snidir = optarg; break;
		case 'u': o->user = optarg; break;
		case 'g': o->group = optarg; break;
		case 't': o->handshake_timeout = seconds(optarg); break;
		case 'i': o->idle_timeout = seconds(optarg); break;
		default: die_usage(USAGE);
		}
	}
	if (optind == argc)
		die_usage(USAGE);
	o->prog = argv + optind;
	if (!o->certfile || !*o->certfile)
		die(EXIT_PERM, "no certificate: set CERTFILE or give -c");
	if (!o->keyfile || !*o->keyfile)
		o->keyfile = o->certfile;	/* as ucspi-ssl: the key may sit in the same file */
	if (o->user && !*o->user)
		o->user = 0;
	if (o->group && !*o->group)
		o->group = 0;
}

static int number(const char *s, unsigned long *out)
{
	char *end;

	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end;
}

/* To USER (a name or a number) and GROUP (the user's own group when not given). */
static void drop_privileges(const char *user, const char *group)
{
	unsigned long n;
	uid_t uid = 0;
	gid_t gid = 0;
	int have_gid = 0;

	if (group) {
		struct group *g;
		if (number(group, &n))
			gid = (gid_t)n;
		else if ((g = getgrnam(group)))
			gid = g->gr_gid;
		else
			die(EXIT_PERM, "no such group: %s", group);
		have_gid = 1;
	}
	if (user) {
		struct passwd *pw;
		if (number(user, &n))
			uid = (uid_t)n;
		else if ((pw = getpwnam(user))) {
			uid = pw->pw_uid;
			if (!have_gid)
				gid = pw->pw_gid, have_gid = 1;
		} else
			die(EXIT_PERM, "no such user: %s", user);
		if (!have_gid)
			die(EXIT_PERM, "a numeric user needs a group too (-g or TLS_GID)");
	} else if (group) {
		die(EXIT_PERM, "a group needs a user too (-u or TLS_UID)");
	}
	if (!have_gid)
		return;
	if (geteuid() == 0 && setgroups(1, &gid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set supplementary groups");
	if (setgid(gid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set group %lu", (unsigned long)gid);
	if (user && setuid(uid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set user %lu", (unsigned long)uid);
	if (user && uid != 0 && setuid(0) == 0)
		die(EXIT_TEMP, "privileges could not be dropped");
}

static _Noreturn void run(char **prog)
{
	signal(SIGPIPE, SIG_DFL);
	execvp(prog[0], prog);
	log_line("fatal: unable to run %s: %s", prog[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);	/* as a shell and execline say it */
}

static void setenv_number(const char *name, int n)
{
	char v[16];

	snprintf(v, sizeof v, "%d", n);
	if (setenv(name, v, 1) < 0)
		die(EXIT_TEMP, "out of memory");
}

static int wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_TEMP;
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_TEMP;
}

static void log_session(struct session *s, int tls, int code)
{
	const char *client = getenv("TCPREMOTEIP") ? getenv("TCPREMOTEIP") : "unknown";
	const char *sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
	char esc[300], why[300];

	log_escape(esc, sizeof esc, sni ? sni : "", sni ? strlen(sni) : 0);
	log_escape(why, sizeof why, s->failure, strlen(s->failure));
	if (!tls)
		log_line("%ld client=%s tls=none exit=%d", (long)getpid(), client, code);
	else
		log_line("%ld client=%s sni=%s protocol=%s cipher=%s in=%llu out=%llu result=\"%s\" exit=%d",
			 (long)getpid(), client, sni ? esc : "-",
			 SSL_is_init_finished(s->ssl) ? SSL_get_version(s->ssl) : "-",
			 SSL_is_init_finished(s->ssl) ? SSL_get_cipher_name(s->ssl) : "-",
			 s->bytes_in, s->bytes_out, s->failure[0] ? why : "ok", code);
}

/* The program's two pipes (down: client to program, up: program to client), then the fork. */
static pid_t fork_with_pipes(int down[2], int up[2])
{
	if (pipe(down) < 0 || pipe(up) < 0)
		die_sys_code(EXIT_TEMP, "unable to make a pipe");
	pid_t pid = fork();
	if (pid < 0)
		die_sys_code(EXIT_TEMP, "unable to fork");
	return pid;
}

/* 465, 993, 995: the handshake first, then the program on pipes with the details in its
   environment. */
static int implicit_tls(struct session *s, const struct options *o)
{
	char details[DETAILS_MAX][300];
	int down[2], up[2];

	if (!tls_handshake(s, o->handshake_timeout)) {
		log_session(s, 1, EXIT_TEMP);
		return EXIT_TEMP;
	}
	pid_t pid = fork_with_pipes(down, up);
	if (pid == 0) {
		size_t n = tls_details(s, details, DETAILS_MAX);
		for (size_t i = 0; i < n; i++)
			putenv(details[i]);
		if (dup2(down[0], 0) < 0 || dup2(up[1], 1) < 0)
			_exit(EXIT_TEMP);
		close(down[0]), close(down[1]), close(up[0]), close(up[1]);
		run(o->prog);
	}
	close(down[0]);
	close(up[1]);
	tls_relay(s, down[1], up[0], o->idle_timeout);
	int code = wait_for(pid);
	log_session(s, 1, code);
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

/* UCSPI-TLS (-n): the program talks cleartext on 0/1 until it writes y or Y on SSLCTLFD; then
   we do the handshake on the client's socket and relay through SSLREADFD/SSLWRITEFD. */
static int starttls(struct session *s, const struct options *o)
{
	int ctl[2], down[2], up[2];
	char request;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) < 0)
		die_sys_code(EXIT_TEMP, "unable to make a socket pair");
	pid_t pid = fork_with_pipes(down, up);
	if (pid == 0) {
		close(ctl[0]), close(down[1]), close(up[0]);
		setenv_number("SSLCTLFD", ctl[1]);
		setenv_number("SSLREADFD", down[0]);
		setenv_number("SSLWRITEFD", up[1]);
		if (!getenv("UCSPITLS") && setenv("UCSPITLS", "", 1) < 0)
			_exit(EXIT_TEMP);
		run(o->prog);
	}
	close(ctl[1]), close(down[0]), close(up[1]);

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
	int code = wait_for(pid);
	log_session(s, tls, code);
	return code;
}

int main(int argc, char **argv)
{
	static struct options o;
	static struct keys keys;
	static struct session s;

	options(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	keys_load(&keys, o.certfile, o.keyfile, o.snidir);
	drop_privileges(o.user, o.group);
	/* The key stays in this process's memory: not even the program, same user, may read it. */
	prctl(PR_SET_DUMPABLE, 0);

	s.ssl = SSL_new(keys.fallback);
	if (!s.ssl)
		die(EXIT_TEMP, "unable to start TLS: %s", tls_reason());
	s.net_in = 0;
	s.net_out = 1;
	SSL_set_rfd(s.ssl, s.net_in);
	SSL_set_wfd(s.ssl, s.net_out);
	return o.starttls ? starttls(&s, &o) : implicit_tls(&s, &o);
}
