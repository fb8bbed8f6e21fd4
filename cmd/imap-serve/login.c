/* postroom: ISC license, see LICENSE. */
/*
 * Before login: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and AUTHENTICATE PLAIN, and
 * nothing that touches mail. On credentials the checkpassword program runs with them on fd 3
 * and with the client on fds 0 and 1; on success it runs "imap-serve -A", which answers the
 * login's tag (IMAPLOGINTAG, Courier's name for it) and serves the session while we wait; its
 * exit ends ours. Exit 1 means the credentials were wrong, and we go on.
 *
 * Under tls-server (pool(5)) nothing waits: this process becomes the checkpassword program,
 * after it has left its pool parent a note (pool_note); should the program refuse, the parent
 * starts a new process for the session, which finds the note and goes on from it (resume).
 *
 * With IMAP_LOGIN_USER the parsing is done by a child that runs as that user, so that what a
 * client can reach before logging in is a process that can open no mailbox: the child hands
 * each login to us, the parent, which stays as it was started (root, usually) only to run the
 * checkpassword program, which needs those rights to become the mailbox's owner.
 */
#define _GNU_SOURCE	/* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "checkpw.h"
#include "die.h"
#include "getln.h"
#include "imap-serve.h"
#include "fmt.h"
#include "log.h"
#include "pool.h"
#include "sasl.h"
#include "ucspitls.h"

/* user, password and timestamp, as the checkpassword interface bounds them */
#define CREDENTIALS_MAX 512

struct login {
	const struct config *cf;
	struct conn c;
	struct ucspitls tls;
	int can_starttls;
	struct checkpw_state st;
	int to_parent, from_parent;	/* the parser child's pipes, or -1 */
};

/* A note holds whatever the client may have sent ahead. */
_Static_assert(sizeof ((struct conn *)0)->inspace <= CHECKPW_NOTE_INPUT, "input over a note");

/* A login to check, as the parser hands it to the parent. */
struct attempt {
	const struct config *cf;
	char tag[128];
	char cred[CREDENTIALS_MAX];	/* user\0password\0\0 */
	size_t credlen;
	int secure_started;		/* the parser started TLS: the parent takes over its fds */
	char pending[sizeof ((struct conn *)0)->inspace];	/* commands the client sent ahead */
	size_t pendinglen;
};

static void out_login_caps(struct login *l)
{
	out(&l->c, "%s", CAPS_COMMON);
	if (l->can_starttls)
		out(&l->c, " STARTTLS");
	if (l->st.secure || l->cf->auth_plaintext)
		out(&l->c, " AUTH=PLAIN");
	else
		out(&l->c, " LOGINDISABLED");
}

/* The checkpassword program's side: the client on fds 0 and 1, the login's tag and what the
   client sent after the login in its environment, for the imap-serve -A it runs. */
_Noreturn static void exec_checkpassword(void *ctx)
{
	const struct attempt *a = ctx;

	if (setenv("IMAPLOGINTAG", a->tag, 1) < 0 ||
	    !checkpw_pending_export("IMAPLOGINPENDING", a->pending, a->pendinglen))
		_exit(EXIT_TEMP);
	execvp(a->cf->checkpassword[0], a->cf->checkpassword);
	log_line("trouble: unable to run %s: %s", a->cf->checkpassword[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Runs the checkpassword program; returns only when the session it started is over (accepted)
   or it refused. */
static enum checkpw_verdict run_checkpassword(const struct attempt *a)
{
	char why[256];
	enum checkpw_verdict v = checkpw_run(a->cred, a->credlen, a->cf->checkpassword[0],
					     exec_checkpassword, (void *)a, why, sizeof why);
	if (v == CHECKPW_TROUBLE)
		log_line("trouble: %s", why);
	return v;
}

/*
 * How much of what the client sent after a login goes to the session: up to a command that
 * would log in again (LOGIN, AUTHENTICATE), if any. That one stays here, for when this login
 * fails, and its password never reaches an environment (the session's is readable in /proc
 * by its owner's other processes).
 */
static size_t pending_commands(const char *p, size_t n)
{
	static const char *const logins[] = { "LOGIN", "AUTHENTICATE" };

	for (size_t at = 0; at < n;) {
		const char *sp = memchr(p + at, ' ', n - at), *nl = memchr(p + at, '\n', n - at);
		if (sp && (!nl || sp < nl)) {
			size_t word = (size_t)(sp + 1 - p);
			for (size_t k = 0; k < sizeof logins / sizeof logins[0]; k++) {
				size_t len = strlen(logins[k]);
				if (n - word > len && !strncasecmp(p + word, logins[k], len) &&
				    (p[word + len] == ' ' || p[word + len] == '\r' || p[word + len] == '\n'))
					return at;
			}
		}
		at = nl ? (size_t)(nl - p) + 1 : n;
	}
	return n;
}

/* Under a pool parent: leaves it a note, and becomes the checkpassword program. Returns when
   there is no pool parent to take a note. */
static void exec_with_note(struct login *l, struct attempt *a)
{
	static struct checkpw_note n;

	str_copy(n.tag, sizeof n.tag, a->tag);
	n.st = l->st;
	checkpw_exec_noted(&n, &l->c.in, a->cred, a->credlen, exec_checkpassword, a);
}

/* The parser's side of a login: straight to checkpassword, or through the parent. */
static enum checkpw_verdict verify(struct login *l, struct attempt *a)
{
	out_flush(&l->c);
	/* What the client sent after the login command belongs to the session. */
	a->pendinglen = pending_commands(buf_peek(&l->c.in), buf_unread(&l->c.in));
	memcpy(a->pending, buf_peek(&l->c.in), a->pendinglen);
	enum checkpw_verdict v;
	if (l->to_parent < 0) {
		exec_with_note(l, a);
		v = run_checkpassword(a);
	} else {
		char answer;
		if (!fd_write_all(l->to_parent, (const char *)a, sizeof *a) ||
		    read(l->from_parent, &answer, 1) != 1)
			exit(EXIT_TEMP);
		v = answer == 'y' ? CHECKPW_ACCEPTED :
		    answer == 'n' ? CHECKPW_REFUSED : CHECKPW_TROUBLE;
	}
	explicit_bzero(a->cred, sizeof a->cred);
	if (v == CHECKPW_ACCEPTED)
		exit(0);
	return v;
}

/* The answer to a login that did not succeed. */
static void answer(struct login *l, enum checkpw_verdict v, const char *tag)
{
	if (v == CHECKPW_TROUBLE) {
		out(&l->c, "%s NO [UNAVAILABLE] Temporary authentication failure, try again later\r\n",
		    tag);
		return;
	}
	out(&l->c, "%s NO [AUTHENTICATIONFAILED] Authentication failed\r\n", tag);
	if (++l->st.failures >= l->cf->auth_failures) {
		out(&l->c, "* BYE Too many failed logins\r\n");
		out_flush(&l->c);
		log_line("closed: %lu failed logins", l->st.failures);
		exit(0);
	}
}

static void login_with(struct login *l, const char *user, size_t ulen, const char *pass,
		       size_t plen)
{
	struct attempt a;

	a.credlen = ulen + plen + 3;
	if (ulen == 0 || a.credlen > sizeof a.cred || memchr(user, 0, ulen) ||
	    memchr(pass, 0, plen)) {
		/* Not a login that could succeed: refused like a wrong password. */
		a.credlen = 0;
	} else {
		memcpy(a.cred, user, ulen);
		a.cred[ulen] = 0;
		memcpy(a.cred + ulen + 1, pass, plen);
		a.cred[ulen + 1 + plen] = 0;
		a.cred[ulen + 2 + plen] = 0;
	}
	a.cf = l->cf;
	str_copy(a.tag, sizeof a.tag, conn_tag(&l->c));
	a.secure_started = l->st.started_tls;
	enum checkpw_verdict v = a.credlen ? verify(l, &a) : CHECKPW_REFUSED;
	explicit_bzero(&a, sizeof a);
	answer(l, v, conn_tag(&l->c));
}

static int login_allowed(struct login *l)
{
	if (l->st.secure || l->cf->auth_plaintext)
		return 1;
	out(&l->c, "%s NO [PRIVACYREQUIRED] Log in only after STARTTLS\r\n", conn_tag(&l->c));
	return 0;
}

static void cmd_login(struct login *l)
{
	struct imap_cmd *cmd = &l->c.cmd;

	if (cmd->ntok != 4 || cmd->tok[2].type == IMAP_LPAREN || cmd->tok[2].type == IMAP_RPAREN ||
	    cmd->tok[3].type == IMAP_LPAREN || cmd->tok[3].type == IMAP_RPAREN) {
		bad(&l->c, l->cf, "LOGIN needs a user name and a password");
		return;
	}
	if (!login_allowed(l))
		return;
	login_with(l, IMAP_TOK(cmd, 2), cmd->tok[2].len, IMAP_TOK(cmd, 3), cmd->tok[3].len);
}

/* AUTHENTICATE PLAIN (RFC 4616), with or without an initial response (SASL-IR, RFC 4959). */
static void cmd_authenticate(struct login *l)
{
	struct imap_cmd *cmd = &l->c.cmd;
	char line[2048], plain[1536];
	size_t n, len;

	if (cmd->ntok < 3 || cmd->ntok > 4 || cmd->tok[2].type != IMAP_ATOM) {
		bad(&l->c, l->cf, "AUTHENTICATE needs a mechanism");
		return;
	}
	if (!imap_tok_is(cmd, 2, "PLAIN")) {
		out(&l->c, "%s NO Unsupported authentication mechanism\r\n", conn_tag(&l->c));
		return;
	}
	if (!login_allowed(l))
		return;
	if (cmd->ntok == 4) {
		n = cmd->tok[3].len;
		if (n >= sizeof line) {
			bad(&l->c, l->cf, "Initial response too long");
			return;
		}
		memcpy(line, IMAP_TOK(cmd, 3), n);
	} else {
		out(&l->c, "+ \r\n");
		out_flush(&l->c);
		enum getln_result g = getln(&l->c.in, line, sizeof line, &n, '\n');
		if (g == GETLN_EOF || g == GETLN_ERR)
			exit(0);
		if (g == GETLN_TOOLONG) {
			bad(&l->c, l->cf, "Response too long");
			return;
		}
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
	}
	line[n] = 0;
	if (!strcmp(line, "*")) {
		bad(&l->c, l->cf, "Authentication aborted");
		return;
	}
	if (!strcmp(line, "="))
		len = 0;
	else if (!base64_decode(line, n, plain, sizeof plain, &len)) {
		bad(&l->c, l->cf, "Invalid base64 data");
		explicit_bzero(line, sizeof line);
		return;
	}
	explicit_bzero(line, sizeof line);
	buf_wipe_consumed(&l->c.in);
	struct sasl_plain sp;
	switch (sasl_plain_split(plain, len, &sp)) {
	case SASL_PLAIN_OK:
		break;
	case SASL_PLAIN_MALFORMED:
		explicit_bzero(plain, sizeof plain);
		bad(&l->c, l->cf, "Invalid PLAIN response");
		return;
	case SASL_PLAIN_OTHER_USER:
		explicit_bzero(plain, sizeof plain);
		out(&l->c, "%s NO [AUTHORIZATIONFAILED] Logging in as another user is not allowed\r\n",
		    conn_tag(&l->c));
		return;
	}
	login_with(l, sp.user, sp.ulen, sp.pass, sp.plen);
	explicit_bzero(plain, sizeof plain);
}

static void cmd_starttls(struct login *l)
{
	if (!l->can_starttls) {
		bad(&l->c, l->cf,
		    l->st.secure ? "TLS is already active" : "STARTTLS is not offered");
		return;
	}
	out(&l->c, "%s OK Begin TLS negotiation now\r\n", conn_tag(&l->c));
	out_flush(&l->c);
	if (!ucspitls_start(&l->tls)) {
		log_line("closed: TLS handshake failed");
		exit(0);
	}
	/* Nothing the client sent in cleartext may count as sent under TLS (CVE-2011-0411). */
	buf_discard(&l->c.in);
	l->can_starttls = 0;
	l->st.secure = l->st.started_tls = 1;
}

/* ID (RFC 2971): the client's list is read and forgotten; ours names the program. */
void cmd_id_reply(struct conn *c)
{
	out(c, "* ID (\"name\" \"postroom\")\r\n");
}

/* greet: the session's first process (not one that takes it back from a refused login). */
_Noreturn static void parse_commands(struct login *l, int greet)
{
	const struct config *cf = l->cf;

	if (greet) {
		out(&l->c, "* OK [CAPABILITY ");
		out_login_caps(l);
		out(&l->c, "] postroom ready\r\n");
	}
	while (conn_next(&l->c, cf)) {
		struct imap_cmd *cmd = &l->c.cmd;
		const char *tag = conn_tag(&l->c);
		unsigned long bad_before = l->c.bad_in_a_row;
		int known = 1;
		if (imap_tok_is(cmd, 1, "CAPABILITY") && cmd->ntok == 2) {
			out(&l->c, "* CAPABILITY ");
			out_login_caps(l);
			out(&l->c, "\r\n%s OK Capability completed\r\n", tag);
		} else if (imap_tok_is(cmd, 1, "NOOP") && cmd->ntok == 2) {
			out(&l->c, "%s OK NOOP completed\r\n", tag);
		} else if (imap_tok_is(cmd, 1, "LOGOUT") && cmd->ntok == 2) {
			out(&l->c, "* BYE Logging out\r\n%s OK Logout completed\r\n", tag);
			out_flush(&l->c);
			exit(0);
		} else if (imap_tok_is(cmd, 1, "ID")) {
			cmd_id_reply(&l->c);
			out(&l->c, "%s OK ID completed\r\n", tag);
		} else if (imap_tok_is(cmd, 1, "STARTTLS") && cmd->ntok == 2) {
			cmd_starttls(l);
		} else if (imap_tok_is(cmd, 1, "LOGIN")) {
			cmd_login(l);
		} else if (imap_tok_is(cmd, 1, "AUTHENTICATE")) {
			cmd_authenticate(l);
		} else {
			known = 0;
		}
		if (!known)
			bad(&l->c, cf, "Log in first, or no such command");
		else if (l->c.bad_in_a_row == bad_before)
			l->c.bad_in_a_row = 0;
		/* A password may have come in a literal: not kept past its command. */
		explicit_bzero(cmd->data.s, cmd->data.len);
		buf_wipe_consumed(&l->c.in);
	}
	exit(0);
}

/* The parent of a parser that runs as IMAP_LOGIN_USER: checks each login the parser hands
   over. Exits when the parser does, or when a session it started is over. */
_Noreturn static void check_for_parser(struct login *l, int from_parser, int to_parser,
				       pid_t parser)
{
	static struct attempt a;
	int took_fds = 0;

	for (;;) {
		size_t got = 0;
		while (got < sizeof a) {
			ssize_t r = read(from_parser, (char *)&a + got, sizeof a - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got != sizeof a) {
			int status;
			while (waitpid(parser, &status, 0) < 0 && errno == EINTR)
				;
			exit(0);
		}
		if (a.credlen > sizeof a.cred || a.pendinglen > sizeof a.pending)
			exit(EXIT_TEMP);
		a.tag[sizeof a.tag - 1] = 0;
		/* The parser started TLS in its own process: its fds 0 and 1 are TLS's pipes, ours
		   are still the cleartext ones, which the session must not use. */
		if (a.secure_started && !took_fds && l->tls.rfd >= 0) {
			if (dup2(l->tls.rfd, 0) < 0 || dup2(l->tls.wfd, 1) < 0)
				exit(EXIT_TEMP);
			took_fds = 1;
		}
		a.cf = l->cf;	/* not the parser's pointer: ours */
		enum checkpw_verdict v = run_checkpassword(&a);
		explicit_bzero(&a, sizeof a);
		if (v == CHECKPW_ACCEPTED) {
			kill(parser, SIGTERM);
			exit(0);
		}
		char answer = v == CHECKPW_REFUSED ? 'n' : 't';
		if (!fd_write_all(to_parser, &answer, 1))
			exit(0);
	}
}

/* IMAP_LOGIN_USER, from /etc/passwd itself: imap-serve is linked statically, and glibc's
   getpwnam would load the system's NSS modules into it (a system user is in the file). */
static struct passwd *login_user(const char *name)
{
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw = 0;

	if (!f)
		die_sys_code(EXIT_TEMP, "unable to read /etc/passwd");
	while ((pw = fgetpwent(f)) && strcmp(pw->pw_name, name))
		;
	/* fgetpwent's entry is in storage of its own, not the file's: it outlives fclose. */
	fclose(f);
	if (!pw)
		die(EXIT_TEMP, "IMAP_LOGIN_USER %s: no such user in /etc/passwd", name);
	return pw;
}

static void become(const struct passwd *pw)
{
	if ((getuid() == 0 && setgroups(1, &pw->pw_gid) < 0) || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		die_sys("unable to become %s", pw->pw_name);
	if (pw->pw_uid != 0 && setuid(0) == 0)
		die(EXIT_TEMP, "could not give up root to become %s", pw->pw_name);
}

/* A session taken back from a checkpassword program that refused (exec_with_note): 1 when
   this process goes on from the note, with the answer to the login given; 0 when there is no
   note (the session's first process). */
static int resume(struct login *l)
{
	enum checkpw_verdict v;
	struct checkpw_note *n = checkpw_resumed(&l->tls, &l->c.in, &l->st, &v);

	if (!n)
		return 0;
	l->can_starttls = l->can_starttls && !l->st.secure;
	char tag[sizeof n->tag];
	str_copy(tag, sizeof tag, n->tag);
	explicit_bzero(n, sizeof *n);
	answer(l, v, tag);
	return 1;
}

_Noreturn void login_serve(const struct config *cf)
{
	static struct login l;

	l.cf = cf;
	l.to_parent = l.from_parent = -1;
	conn_init(&l.c, cf, cf->login_timeout);
	/* Before login nothing needs more than a user name and a password: no APPEND here. */
	l.c.limits.literal_max = l.c.limits.append_max = l.c.limits.append_total = 8192;
	l.c.limits.discard_max = 0;
	const char *protocol = getenv("SSL_PROTOCOL");
	l.st.secure = protocol && *protocol;
	l.tls = (struct ucspitls){ -1, -1, -1 };
	l.can_starttls = ucspitls_available(&l.tls) && !l.st.secure;
	if (!cf->login_user)
		parse_commands(&l, !resume(&l));

	struct passwd *pw = login_user(cf->login_user);
	/* The parser has no channel to the pool's parent, which runs with our rights. */
	pool_note_close();
	int up[2], down[2];
	if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
		die_sys("unable to make a pipe");
	pid_t pid = fork();
	if (pid < 0)
		die_sys("unable to fork");
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		become(pw);
		l.to_parent = up[1];
		l.from_parent = down[0];
		parse_commands(&l, 1);
	}
	close(up[1]);
	close(down[0]);
	check_for_parser(&l, up[0], down[1], pid);
}
