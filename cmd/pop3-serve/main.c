/* postroom: ISC license, see LICENSE. */
/*
 * pop3-serve: a POP3 server (RFC 1939) on stdin and stdout, in two steps, as qmail-popup and
 * qmail-pop3d split it. "pop3-serve CHECKPASSWORD [ARGS...]" speaks POP3 until a client logs in,
 * and hands the credentials to the checkpassword program on fd 3; that program, on success,
 * runs "pop3-serve -A" in the user's Maildir, which answers the login and serves the mailbox.
 * Run by hand, "pop3-serve -A" in a Maildir is a session already logged in.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "die.h"
#include "env.h"
#include "pool.h"
#include "pop3-serve.h"

const char *PROG = "pop3-serve";

#define USAGE "pop3-serve CHECKPASSWORD [ARGS...] | pop3-serve -A"

static void read_config(struct config *cf)
{
	cf->auth_plaintext = (int)env_number("POP3_AUTH_PLAINTEXT", 0, 0, 1);
	cf->timeout = env_number("POP3_TIMEOUT", 600, 1, 86400);
	cf->login_timeout = env_number("POP3_LOGIN_TIMEOUT", 600, 1, 86400);
	cf->auth_failures = env_number("POP3_AUTH_FAILURES", 3, 1, 100);
	cf->bad_commands = env_number("POP3_BAD_COMMANDS", 20, 1, 10000);
	cf->login_delay = env_number("POP3_LOGIN_DELAY", 0, 0, 86400);
	const char *expire = getenv("POP3_EXPIRE");
	if (!expire || !*expire || !strcmp(expire, "NEVER"))
		cf->expire_at_once = 0;
	else if (!strcmp(expire, "0"))
		cf->expire_at_once = 1;
	else
		die(EXIT_PERM, "POP3_EXPIRE must be NEVER or 0");
}

static void serve_login(const void *cf)
{
	login_serve(cf);
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
	/* One session, or under tls-server one after another, each in a child (pool(5)). */
	pool_serve_sessions(serve_login, &cf);
}
