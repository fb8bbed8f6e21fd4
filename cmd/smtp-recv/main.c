/* postroom: ISC license, see LICENSE. */
/*
 * smtp-recv: an SMTP server on stdin and stdout, for tcpserver (or s6-tcpserver) to run once per
 * connection, or for tls-server to run once and hand one connection after another (POOLFD). It
 * decides what it may accept (our domains, known users, relaying only for RELAYCLIENT) and
 * answers 250 to DATA only once the queue holds the message durably. It never looks up DNS,
 * never touches a mailbox, and holds no key: those are other programs' steps.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "env.h"
#include "pool.h"
#include "smtp-recv.h"
#include "ucspitls.h"

const char *PROG = "smtp-recv";

/* CHECKPASSWORD="checkpassword-mysql -m /etc/postroom/mysql.cnf true": words split at blanks,
   with no quoting, as a command line in a run script would be written. */
static char **words(const char *line)
{
	static char copy[4096];
	static char *argv[64];
	size_t n = 0;

	if (!line || !*line)
		return 0;
	if (strlen(line) >= sizeof copy)
		die(EXIT_PERM, "CHECKPASSWORD is too long");
	strcpy(copy, line);
	for (char *w = strtok(copy, " \t"); w; w = strtok(0, " \t")) {
		if (n == sizeof argv / sizeof *argv - 1)
			die(EXIT_PERM, "CHECKPASSWORD has too many words");
		argv[n++] = w;
	}
	argv[n] = 0;
	return n ? argv : 0;
}

static int flag(const char *name, unsigned long def)
{
	unsigned long v;

	if (!env_ulong(name, def, 0, 1, &v))
		die(EXIT_PERM, "%s must be 0 or 1", name);
	return v == 1;
}

/* The configuration, from the environment: read again for every session, since a session from
   tls-server brings its own (TCPREMOTEIP, RELAYCLIENT...). */
static void configure(struct config *c)
{
	static char host[256];

	c->queuedir = env_need("QUEUEDIR");
	c->userdb = env_need("USERDB");
	c->qmailqueue = getenv("QMAILQUEUE");
	c->hostname = getenv("SMTP_HOSTNAME");
	if (!c->hostname || !*c->hostname) {
		if (!host[0] && gethostname(host, sizeof host - 1) < 0)
			die_sys_code(EXIT_TEMP, "unable to get the host name");
		c->hostname = host;
	}
	resolve_config_env(&c->resolve);
	c->remoteip = getenv("TCPREMOTEIP") ? getenv("TCPREMOTEIP") : "unknown";
	c->localip = getenv("TCPLOCALIP") ? getenv("TCPLOCALIP") : "unknown";
	c->relayclient = getenv("RELAYCLIENT") != 0;
	c->databytes = env_number("DATABYTES", 26214400, 1024, 2147483647);
	c->maxrcpt = env_number("MAXRCPT", 100, 1, 100000);
	c->maxerrors = env_number("MAXERRORS", 10, 1, 1000);
	c->maxcommands = env_number("MAXCOMMANDS", 10000, 10, 10000000);
	c->line_max = env_number("SMTP_LINE_MAX", 512, 512, SMTP_LINE_LIMIT);
	c->text_max = env_number("SMTP_TEXT_MAX", 1000, 1000, 1048576);
	c->timeout = env_number("SMTP_TIMEOUT", 300, 1, 86400);
	c->command_timeout = env_number("SMTP_COMMAND_TIMEOUT", 300, 1, 86400);
	c->data_timeout = env_number("SMTP_DATA_TIMEOUT", 600, 1, 86400);
	c->data_rate = env_number("SMTP_DATA_RATE", 8192, 1, 2147483647);
	c->checkpassword = words(getenv("CHECKPASSWORD"));
	c->auth_plaintext = flag("SMTP_AUTH_PLAINTEXT", 0);
	c->auth_required = flag("SMTP_AUTH_REQUIRED", 0);
	c->sender_login = flag("SMTP_SENDER_LOGIN", 0);
	/* Off for a queue program behind QMAILQUEUE that knows no DSN envelope items. */
	c->dsn = flag("SMTP_DSN", 1);
	c->tls_required = ucspitls_required();
	c->auth_maxfail = env_number("SMTP_AUTH_MAXFAIL", 3, 1, 1000);
	c->auth_timeout = env_number("SMTP_AUTH_TIMEOUT", 60, 1, 3600);
	if (c->auth_required && !c->checkpassword)
		die(EXIT_PERM, "SMTP_AUTH_REQUIRED is set but CHECKPASSWORD is not");
}

/* One session on fds 0 and 1, as the environment describes it. */
static int one_session(struct session *s, struct config *c, jmp_buf *done)
{
	configure(c);
	session_clear(s);
	s->c = c;
	s->done = done;
	s->tls_offer = ucspitls_available(&s->tls);
	/* Under tls-wrap without -n the handshake is done before we start. */
	if (!s->tls_offer)
		session_tls_details(s);
	return session_run(s);
}

int main(int argc, char **argv)
{
	static struct config c;
	static struct session s;
	static struct pool_session ps = POOL_SESSION_ZERO;
	static jmp_buf done;

	(void)argv;
	if (argc > 1)
		die_usage("(run by tcpserver or tls-server, with the environment in smtp-recv(8))");
	signal(SIGPIPE, SIG_IGN);
	int pool = pool_fd_from_env();
	if (pool == -2)
		die(EXIT_PERM, "POOLFD names no open descriptor");
	if (pool < 0)
		return one_session(&s, &c, 0);
	if (pool_sessions_at_once() != 1)
		die(EXIT_PERM, "one session at a time: run under tls-server without -S");

	/* Under tls-server: one session after another, each with its own descriptors and
	   environment, until the worker has no more. */
	if (!pool_env_save())
		die(EXIT_TEMP, "out of memory");
	for (;;) {
		if (!pool_receive(pool, &ps)) {
			if (errno == 0)
				return 0;
			die_sys_code(EXIT_TEMP, "unable to receive a session");
		}
		if (!pool_install(&ps))
			die_sys_code(EXIT_TEMP, "unable to take a session");
		int code;
		if (setjmp(done) == 0)
			code = one_session(&s, &c, &done);
		else
			code = s.exit_code;	/* session_exit's */
		session_close(&s);
		if (!pool_release(pool) || !pool_done(pool, code))
			die_sys_code(EXIT_TEMP, "unable to end a session");
	}
}
