/* postroom: ISC license, see LICENSE. */
/*
 * imap-serve: an IMAP4rev1 server on stdin and stdout, in two steps, as qmail-popup and
 * qmail-pop3d split POP3. "imap-serve CHECKPASSWORD [ARGS...]" speaks IMAP until a client logs
 * in, and hands the credentials to the checkpassword program on fd 3; that program, on success,
 * runs "imap-serve -A" in the user's Maildir, which answers the login and serves the mailbox.
 * Run by hand, "imap-serve -A" in a Maildir is a preauthenticated session on the terminal.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "die.h"
#include "env.h"
#include "imap-serve.h"
#include "pool.h"

const char *PROG = "imap-serve";

#define USAGE "imap-serve CHECKPASSWORD [ARGS...] | imap-serve -A"

static unsigned long number(const char *name, unsigned long def, unsigned long min,
			    unsigned long max)
{
	unsigned long v;
	if (!env_ulong(name, def, min, max, &v))
		die(EXIT_PERM, "%s must be a number from %lu to %lu", name, min, max);
	return v;
}

static void read_config(struct config *cf)
{
	cf->auth_plaintext = (int)number("IMAP_AUTH_PLAINTEXT", 0, 0, 1);
	cf->login_timeout = number("IMAP_LOGIN_TIMEOUT", 60, 1, 86400);
	cf->timeout = number("IMAP_TIMEOUT", 1800, 1, 86400);
	cf->auth_failures = number("IMAP_AUTH_FAILURES", 3, 1, 100);
	cf->appendlimit = number("IMAP_APPENDLIMIT", 50UL << 20, 1024, 1UL << 30);
	cf->bad_commands = number("IMAP_BAD_COMMANDS", 20, 1, 10000);
	const char *u = getenv("IMAP_LOGIN_USER");
	cf->login_user = u && *u ? u : 0;
}

/*
 * Under tls-server: one session after another, each in a child forked for it, so that a
 * session starts without an exec and ends with all its state (a client that took over its
 * process reaches no other session).
 */
_Noreturn static void serve_pool(const struct config *cf, int pool)
{
	static struct pool_session ps = POOL_SESSION_ZERO;

	if (!pool_env_save())
		die(EXIT_TEMP, "out of memory");
	for (;;) {
		if (!pool_receive(pool, &ps)) {
			if (errno == 0)
				exit(0);
			die_sys_code(EXIT_TEMP, "unable to receive a session");
		}
		if (!pool_install(&ps))
			die_sys_code(EXIT_TEMP, "unable to take a session");
		pid_t pid = fork();
		if (pid < 0)
			die_sys("unable to fork");
		if (pid == 0) {
			close(pool);
			login_serve(cf);
		}
		int status, code = EXIT_TEMP;
		if (!pool_release(pool))
			die_sys_code(EXIT_TEMP, "unable to end a session");
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				die_sys("unable to wait");
		if (WIFEXITED(status))
			code = WEXITSTATUS(status);
		if (!pool_done(pool, code))
			die_sys_code(EXIT_TEMP, "unable to end a session");
	}
}

int main(int argc, char **argv)
{
	struct config cf = { 0 };

	/* A client that goes away is a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	read_config(&cf);
	if (argc == 2 && !strcmp(argv[1], "-A"))
		session_serve(&cf);
	if (argc < 2 || argv[1][0] == '-')
		die_usage(USAGE);
	cf.checkpassword = argv + 1;
	int pool = pool_fd_from_env();
	if (pool == -2)
		die(EXIT_PERM, "POOLFD names no open descriptor");
	if (pool < 0)
		login_serve(&cf);
	serve_pool(&cf, pool);
}
