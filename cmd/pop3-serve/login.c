/* postroom: ISC license, see LICENSE. */
/*
 * The AUTHORIZATION state: CAPA, STLS, USER and PASS, AUTH PLAIN, QUIT, and nothing that
 * touches mail. On credentials the checkpassword program runs with them on fd 3 and with the
 * client on fds 0 and 1; on success it runs "pop3-serve -A", which answers the login (told so
 * by POP3LOGIN) and serves the mailbox while we wait; its exit ends ours. Exit 1 means the
 * credentials were wrong, and we go on. Under tls-server nothing waits: this process becomes the
 * checkpassword program, and a refusal is answered by the next process of the session, which
 * its pool parent starts with the note we left (checkpw_exec_noted).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base64.h"
#include "checkpw.h"
#include "deadline.h"
#include "die.h"
#include "getln.h"
#include "log.h"
#include "pop3-serve.h"
#include "sasl.h"
#include "ucspitls.h"

/* user, password and timestamp, as the checkpassword interface bounds them */
#define CREDENTIALS_MAX 512
#define USER_MAX 255

struct login {
	const struct config *cf;
	struct conn c;
	struct ucspitls tls;
	int can_stls;
	struct checkpw_state st;
	char user[USER_MAX + 1];	/* from USER, for the PASS that follows */
	size_t ulen;
};

/* A note holds whatever the client may have sent ahead. */
_Static_assert(sizeof ((struct conn *)0)->inspace <= CHECKPW_NOTE_INPUT, "input over a note");

/* A login for the checkpassword program, and what the client sent after it, for the session. */
struct attempt {
	const struct config *cf;
	char cred[CREDENTIALS_MAX];	/* user\0password\0\0 */
	size_t credlen;
	char pending[sizeof ((struct conn *)0)->inspace];
	size_t pendinglen;
};

static int login_allowed(struct login *l)
{
	return l->st.secure || l->cf->auth_plaintext;
}

static void cmd_capa(struct login *l)
{
	out(&l->c, "+OK Capability list follows\r\n");
	out_capa_common(&l->c);
	if (l->can_stls)
		out(&l->c, "STLS\r\n");
	if (login_allowed(l))
		out(&l->c, "USER\r\nSASL PLAIN\r\n");
	out(&l->c, ".\r\n");
}

/* The checkpassword program's side: the client on fds 0 and 1, and for the pop3-serve -A it
   runs, the news that it answers a login, and what the client sent after it. */
_Noreturn static void exec_checkpassword(void *ctx)
{
	const struct attempt *a = ctx;

	if (setenv("POP3LOGIN", "1", 1) < 0 ||
	    !checkpw_pending_export("POP3LOGINPENDING", a->pending, a->pendinglen))
		_exit(EXIT_TEMP);
	execvp(a->cf->checkpassword[0], a->cf->checkpassword);
	log_line("trouble: unable to run %s: %s", a->cf->checkpassword[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* A login that did not succeed: "-ERR reply", and after POP3_AUTH_FAILURES of them the end. */
static void failed(struct login *l, const char *reply)
{
	out(&l->c, "-ERR %s\r\n", reply);
	if (++l->st.failures >= l->cf->auth_failures) {
		out_flush(&l->c);
		log_line("closed: %lu failed logins", l->st.failures);
		exit(0);
	}
}

/*
 * How much of what the client sent after a login goes to the session: up to a line that would
 * log in again (USER, PASS, AUTH), if any. Those stay here, for when this login fails, and
 * their password never reaches an environment (the session's is readable in /proc by its
 * owner's other processes).
 */
static size_t pending_commands(const char *p, size_t n)
{
	static const char *const logins[] = { "USER", "PASS", "AUTH" };

	for (size_t at = 0; at < n;) {
		for (size_t k = 0; k < sizeof logins / sizeof logins[0]; k++)
			if (n - at >= 4 && !strncasecmp(p + at, logins[k], 4) &&
			    (n - at == 4 || p[at + 4] == ' ' || p[at + 4] == '\r' || p[at + 4] == '\n'))
				return at;
		const char *nl = memchr(p + at, '\n', n - at);
		at = nl ? (size_t)(nl - p) + 1 : n;
	}
	return n;
}

/* The answer to a login that did not succeed. */
static void answer(struct login *l, enum checkpw_verdict v)
{
	/* Trouble counts as a failure: a client may not run the program without end while the
	   user database is down. */
	if (v == CHECKPW_TROUBLE)
		failed(l, "[SYS/TEMP] Temporary authentication failure, try again later");
	else
		failed(l, "[AUTH] Authentication failed");
}

/* Under a pool parent: leaves it a note, and becomes the checkpassword program. Returns when
   there is no pool parent to take a note. */
static void exec_with_note(struct login *l, struct attempt *a)
{
	static struct checkpw_note n;

	n.end_ms = l->c.end_ms;
	n.st = l->st;
	checkpw_exec_noted(&n, &l->c.in, a->cred, a->credlen, exec_checkpassword, a);
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
	l->can_stls = l->can_stls && !l->st.secure;
	l->c.end_ms = n->end_ms;
	explicit_bzero(n, sizeof *n);
	answer(l, v);
	return 1;
}

/* Runs the checkpassword program; returns only when it refused, or could not say. */
static void login_with(struct login *l, const char *user, size_t ulen, const char *pass,
		       size_t plen)
{
	static struct attempt a;
	char why[256];

	a.cf = l->cf;
	a.credlen = ulen + plen + 3;
	if (ulen == 0 || a.credlen > sizeof a.cred || memchr(user, 0, ulen) ||
	    memchr(pass, 0, plen)) {
		/* Not a login that could succeed: refused like a wrong password. */
		failed(l, "[AUTH] Authentication failed");
		return;
	}
	memcpy(a.cred, user, ulen);
	a.cred[ulen] = 0;
	memcpy(a.cred + ulen + 1, pass, plen);
	a.cred[ulen + 1 + plen] = 0;
	a.cred[ulen + 2 + plen] = 0;
	out_flush(&l->c);
	/* What the client sent after the login belongs to the session (PIPELINING). */
	a.pendinglen = pending_commands(buf_peek(&l->c.in), buf_unread(&l->c.in));
	memcpy(a.pending, buf_peek(&l->c.in), a.pendinglen);
	exec_with_note(l, &a);
	enum checkpw_verdict v = checkpw_run(a.cred, a.credlen, l->cf->checkpassword[0],
					     exec_checkpassword, &a, why, sizeof why);
	explicit_bzero(&a, sizeof a);
	if (v == CHECKPW_ACCEPTED)
		exit(0);	/* the session it ran is over */
	if (v == CHECKPW_TROUBLE)
		log_line("trouble: %s", why);
	answer(l, v);
}

static void cmd_stls(struct login *l)
{
	if (!l->can_stls) {
		out_err(&l->c, "%s",
			l->st.secure ? "TLS is already active" : "STLS is not offered");
		return;
	}
	out(&l->c, "+OK Begin TLS negotiation\r\n");
	out_flush(&l->c);
	if (!ucspitls_start(&l->tls)) {
		log_line("closed: TLS handshake failed");
		exit(0);
	}
	/* Nothing the client sent in cleartext may count as sent under TLS (CVE-2011-0411), and
	   RFC 2595 says to forget a USER given before. */
	buf_discard(&l->c.in);
	l->can_stls = 0;
	l->st.secure = l->st.started_tls = 1;
	l->ulen = 0;
}

static void cmd_user(struct login *l)
{
	if (!login_allowed(l)) {
		out_err(&l->c, "[AUTH] Log in only after STLS");
		return;
	}
	if (l->c.nargs != 2 || strlen(l->c.arg[1]) > USER_MAX) {
		out_err(&l->c, "USER takes a name");
		return;
	}
	l->ulen = strlen(l->c.arg[1]);
	memcpy(l->user, l->c.arg[1], l->ulen);
	out(&l->c, "+OK\r\n");
}

static void cmd_pass(struct login *l)
{
	size_t plen;
	char *pass = conn_rest(&l->c, &plen);

	if (!login_allowed(l)) {
		out_err(&l->c, "[AUTH] Log in only after STLS");
		return;
	}
	if (!l->ulen) {
		out_err(&l->c, "USER first");
		return;
	}
	login_with(l, l->user, l->ulen, pass, plen);
	l->ulen = 0;
}

/* AUTH PLAIN (RFC 5034), with an initial response or after "+ "; AUTH alone lists the
   mechanisms, as clients written to the draft before RFC 5034 ask. */
static void cmd_auth(struct login *l)
{
	char line[POP3_LINE_MAX + 2], plain[CREDENTIALS_MAX + USER_MAX + 2];
	size_t n, len;

	if (l->c.nargs == 1) {
		out(&l->c, "+OK\r\n%s.\r\n", login_allowed(l) ? "PLAIN\r\n" : "");
		return;
	}
	if (l->c.nargs > 3) {
		out_err(&l->c, "AUTH takes a mechanism and an initial response");
		return;
	}
	if (strcasecmp(l->c.arg[1], "PLAIN")) {
		out_err(&l->c, "Unsupported authentication mechanism");
		return;
	}
	if (!login_allowed(l)) {
		out_err(&l->c, "[AUTH] Log in only after STLS");
		return;
	}
	if (l->c.nargs == 3) {
		n = strlen(l->c.arg[2]);
		memcpy(line, l->c.arg[2], n + 1);
	} else {
		out(&l->c, "+ \r\n");
		out_flush(&l->c);
		enum getln_result g = getln(&l->c.in, line, sizeof line, &n, '\n');
		if (g == GETLN_EOF || g == GETLN_ERR)
			exit(0);
		if (g == GETLN_TOOLONG) {
			out_err(&l->c, "Response too long");
			return;
		}
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		line[n] = 0;
	}
	if (!strcmp(line, "*")) {
		out_err(&l->c, "Authentication aborted");
		return;
	}
	int ok = !strcmp(line, "=") ? (len = 0, 1) :
				       base64_decode(line, n, plain, sizeof plain, &len);
	explicit_bzero(line, sizeof line);
	buf_wipe_consumed(&l->c.in);
	if (!ok) {
		out_err(&l->c, "Invalid base64 data");
		return;
	}
	struct sasl_plain sp;
	switch (sasl_plain_split(plain, len, &sp)) {
	case SASL_PLAIN_OK:
		login_with(l, sp.user, sp.ulen, sp.pass, sp.plen);
		break;
	case SASL_PLAIN_MALFORMED:
		out_err(&l->c, "Invalid PLAIN response");
		break;
	case SASL_PLAIN_OTHER_USER:
		failed(l, "[AUTH] Logging in as another user is not allowed");
		break;
	}
	explicit_bzero(plain, sizeof plain);
}

_Noreturn void login_serve(const struct config *cf)
{
	static struct login l;

	l.cf = cf;
	conn_init(&l.c, cf);
	l.c.end_ms = deadline_in((unsigned)cf->login_timeout);
	const char *protocol = getenv("SSL_PROTOCOL");
	l.st.secure = protocol && *protocol;
	l.tls = (struct ucspitls){ -1, -1, -1 };
	l.can_stls = ucspitls_available(&l.tls) && !l.st.secure;
	if (!resume(&l))
		out(&l.c, "+OK postroom ready\r\n");
	while (conn_next(&l.c)) {
		unsigned long bad_before = l.c.bad_in_a_row;
		if (conn_is(&l.c, "CAPA") && l.c.nargs == 1)
			cmd_capa(&l);
		else if (conn_is(&l.c, "QUIT") && l.c.nargs == 1) {
			out(&l.c, "+OK Bye\r\n");
			out_flush(&l.c);
			exit(0);
		} else if (conn_is(&l.c, "STLS") && l.c.nargs == 1)
			cmd_stls(&l);
		else if (conn_is(&l.c, "USER"))
			cmd_user(&l);
		else if (conn_is(&l.c, "PASS"))
			cmd_pass(&l);
		else if (conn_is(&l.c, "AUTH"))
			cmd_auth(&l);
		else
			out_err(&l.c, "Log in first, or no such command");
		if (l.c.bad_in_a_row == bad_before)
			l.c.bad_in_a_row = 0;
		/* A password is not kept past its command. */
		explicit_bzero(l.c.line, sizeof l.c.line);
		buf_wipe_consumed(&l.c.in);
	}
	exit(0);
}
