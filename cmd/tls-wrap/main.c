/* postroom: ISC license, see LICENSE. */
/*
 * tls-wrap: the TLS layer in front of a stdin/stdout program, so that no protocol parser ever
 * holds a private key. It loads the keys, drops privileges, and then either does the handshake
 * at once and runs the program on plain pipes (465, 993, 995), or, with -n, runs the program in
 * cleartext and does the handshake when the program asks for it (UCSPI-TLS, for STARTTLS).
 * tls-wrap stays in the middle until the program is done, then logs one line for the session.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "tls-wrap.h"

const char *PROG = "tls-wrap";

#define USAGE "[-n] [-c CERTFILE] [-k KEYFILE] [-s SNIDIR] [-u USER] [-g GROUP] " \
	      "[-t HANDSHAKE-SECONDS] [-i IDLE-SECONDS] PROG [ARG...]"

struct options {
	struct serve_options serve;
	const char *certfile, *keyfile, *snidir, *user, *group;
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
	o->serve.handshake_timeout = 30;
	o->serve.idle_timeout = 1800;
	/* "+": the program's own options are not ours. */
	while ((c = getopt(argc, argv, "+nc:k:s:u:g:t:i:")) != -1) {
		switch (c) {
		case 'n': o->serve.starttls = 1; break;
		case 'c': o->certfile = optarg; break;
		case 'k': o->keyfile = optarg; break;
		case 's': o->snidir = optarg; break;
		case 'u': o->user = optarg; break;
		case 'g': o->group = optarg; break;
		case 't': o->serve.handshake_timeout = seconds(optarg); break;
		case 'i': o->serve.idle_timeout = seconds(optarg); break;
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

/* Each session its own process: fork, the session's descriptors and environment, exec. */
static int exec_start(struct program *p, const struct pool_session *ps)
{
	static struct pool_session copy;

	p->pid = fork();
	if (p->pid < 0) {
		log_line("trouble: unable to fork: %s", strerror(errno));
		return 0;
	}
	if (p->pid > 0)
		return 1;
	copy = *ps;
	if (!pool_install(&copy))
		_exit(EXIT_TEMP);
	signal(SIGPIPE, SIG_DFL);
	execvp(p->argv[0], p->argv);
	log_line("fatal: unable to run %s: %s", p->argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);	/* as a shell and execline say it */
}

static int exec_wait(struct program *p)
{
	int status;

	while (waitpid(p->pid, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_TEMP;
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_TEMP;
}

int main(int argc, char **argv)
{
	static struct options o;
	static struct keys keys;
	static struct session s;
	static struct pool_session ps = POOL_SESSION_ZERO;
	struct program program = { .start = exec_start, .wait = exec_wait, .argv = 0, .chan = -1 };

	options(argc, argv, &o);
	program.argv = o.prog;
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
	s.client = getenv("TCPREMOTEIP") ? getenv("TCPREMOTEIP") : "unknown";
	SSL_set_rfd(s.ssl, s.net_in);
	SSL_set_wfd(s.ssl, s.net_out);
	return serve(&s, &o.serve, &program, &ps);
}
