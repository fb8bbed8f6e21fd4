/* postroom: ISC license, see LICENSE. */
/*
 * imap-serve: an IMAP4rev1 server on stdin and stdout, in two steps, as qmail-popup and
 * qmail-pop3d split POP3. "imap-serve CHECKPASSWORD [ARGS...]" speaks IMAP until a client logs
 * in, and hands the credentials to the checkpassword program on fd 3; that program, on success,
 * runs "imap-serve -A" in the user's Maildir, which answers the login and serves the mailbox.
 * Run by hand, "imap-serve -A" in a Maildir is a preauthenticated session on the terminal.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "die.h"
#include "env.h"
#include "imap-serve.h"
#include "pool.h"

const char *PROG = "imap-serve";

#define USAGE "imap-serve CHECKPASSWORD [ARGS...] | imap-serve -A"

static void read_config(struct config *cf)
{
	cf->auth_plaintext = (int)env_number("IMAP_AUTH_PLAINTEXT", 0, 0, 1);
	cf->login_timeout = env_number("IMAP_LOGIN_TIMEOUT", 60, 1, 86400);
	cf->timeout = env_number("IMAP_TIMEOUT", 1800, 1, 86400);
	cf->auth_failures = env_number("IMAP_AUTH_FAILURES", 3, 1, 100);
	cf->appendlimit = env_number("IMAP_APPENDLIMIT", 50UL << 20, 1024, 1UL << 30);
	cf->bad_commands = env_number("IMAP_BAD_COMMANDS", 20, 1, 10000);
	const char *u = getenv("IMAP_LOGIN_USER");
	cf->login_user = u && *u ? u : 0;
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
