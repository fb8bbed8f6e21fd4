/* postroom: ISC license, see LICENSE. */
/*
 * SMTP AUTH (RFC 4954), PLAIN (RFC 4616) and LOGIN. smtp-recv never sees a password hash: it
 * hands user and password to the checkpassword program named by CHECKPASSWORD on fd 3, as
 * qmail-popup does, and takes its exit code as the answer.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "checkpw.h"
#include "die.h"
#include "log.h"
#include "resolve.h"
#include "smtp-recv.h"

/* What the checkpassword interface carries: user, password and a timestamp in 512 bytes. */
#define CREDENTIALS_MAX 512
/* What an AUTH line can hold once decoded: longer credentials are refused, not misread. */
#define DECODED_MAX (AUTH_LINE_MAX / 4 * 3)

/* Every buffer an AUTH exchange's secrets pass through, in one place, so that a session that
   ends in the middle of one (a longjmp past the wipes below, under tls-server) is wiped by
   auth_wipe before the next session. */
static struct {
	char line[AUTH_LINE_MAX + 1];		/* a response line, base64 */
	char plain[DECODED_MAX];		/* PLAIN's decoded credentials */
	char user[DECODED_MAX], pass[DECODED_MAX];	/* LOGIN's */
} secrets;

int auth_offered(const struct session *s)
{
	return s->c->checkpassword && !s->authuser[0] && (s->tls_protocol || s->c->auth_plaintext);
}

/* The checkpassword program's side: stdin /dev/null, stdout our stderr (nothing it prints may
   reach the client), a time limit that survives exec, so that a hung check dies. */
_Noreturn static void exec_checkpassword(void *ctx)
{
	struct session *s = ctx;
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
		_exit(EXIT_TEMP);
	alarm((unsigned)s->c->auth_timeout);
	execvp(s->c->checkpassword[0], s->c->checkpassword);
	log_line("%ld trouble: unable to run %s: %s", (long)getpid(), s->c->checkpassword[0],
		 strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Runs the checkpassword program with "user\0password\0\0" on fd 3. For CHECKPW_TROUBLE,
   why says what went wrong. */
static enum checkpw_verdict checkpassword(struct session *s, const char *user, size_t ulen,
					  const char *pass, size_t plen, char *why,
					  size_t whysize)
{
	char data[CREDENTIALS_MAX];

	memcpy(data, user, ulen);
	data[ulen] = 0;
	memcpy(data + ulen + 1, pass, plen);
	data[ulen + 1 + plen] = 0;
	data[ulen + 2 + plen] = 0;	/* no timestamp: PLAIN and LOGIN have no challenge */
	enum checkpw_verdict v = checkpw_run(data, ulen + plen + 3, s->c->checkpassword[0],
					     exec_checkpassword, s, why, whysize);
	explicit_bzero(data, sizeof data);
	return v;
}

/* One base64 line from the client after a 334; 0 (reply said) when cancelled or malformed.
   The line read here is wiped before returning; the input buffer, by the command loop. */
static int response(struct session *s, const char *prompt, const char *initial, char *out,
		    size_t max, size_t *n)
{
	char *line = secrets.line;
	size_t len;
	int ok = 0;

	if (!initial) {
		reply(s, prompt);
		if (!read_line(s, line, sizeof secrets.line - 1, &len, 1))
			goto done;	/* refused, perhaps for its length: still a password */
		initial = line;
	}
	if (!strcmp(initial, "*")) {
		error(s, "501 5.0.0 authentication cancelled");
	} else if (!strcmp(initial, "=")) {	/* an empty initial response (RFC 4954 section 4) */
		*n = 0;
		ok = 1;
	} else if (base64_decode(initial, strlen(initial), out, max, n)) {
		ok = 1;
	} else {
		error(s, "501 5.5.2 cannot decode the response");
	}
done:
	explicit_bzero(line, sizeof secrets.line);	/* the password, encoded */
	return ok;
}

static void log_auth(struct session *s, const char *mechanism, const char *user, size_t n,
		     const char *result, const char *reason)
{
	char esc[600], why[300];

	log_escape(why, sizeof why, reason ? reason : "", reason ? strlen(reason) : 0);
	log_line("%ld auth %s client=%s mechanism=%s user=\"%s\"%s%s%s", (long)getpid(), result,
		 s->c->remoteip, mechanism, log_escape(esc, sizeof esc, user, n),
		 reason ? " reason=\"" : "", why, reason ? "\"" : "");
}

/* A user name that can go into a log line or a reply as it is: no controls, no blanks, no
   quotes, as any address is. */
static int plain_name(const char *user, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c <= ' ' || c == 0x7f || c == '"' || c == '\\')
			return 0;
	}
	return n > 0;
}

static void check(struct session *s, const char *mechanism, const char *user, size_t ulen,
		  const char *pass, size_t plen)
{
	enum checkpw_verdict v = CHECKPW_REFUSED;
	char why[200] = "";

	if (plain_name(user, ulen) && ulen < sizeof s->authuser && ulen + plen + 3 <= CREDENTIALS_MAX &&
	    !memchr(pass, 0, plen))
		v = checkpassword(s, user, ulen, pass, plen, why, sizeof why);
	if (v != CHECKPW_ACCEPTED) {
		/* Trouble counts too: each attempt costs a process and perhaps a database login. */
		log_auth(s, mechanism, user, ulen, v == CHECKPW_TROUBLE ? "trouble" : "failed",
			 v == CHECKPW_TROUBLE ? why : 0);
		reply(s, v == CHECKPW_TROUBLE ? "454 4.7.0 temporary authentication failure"
					      : "535 5.7.8 authentication credentials invalid");
		if (++s->auth_failures >= s->c->auth_maxfail)
			session_end(s, "421 4.7.0 too many failed authentications, closing connection",
				    0);
		return;
	}
	/* checkpassword-mysql compares addresses lower-cased: so does the sender check. */
	for (size_t i = 0; i < ulen; i++)
		s->authuser[i] = (char)tolower((unsigned char)user[i]);
	s->authuser[ulen] = 0;
	log_auth(s, mechanism, user, ulen, "ok", 0);
	reply(s, "235 2.7.0 authentication successful");
}

/* x[0..n): [authzid] NUL authcid NUL passwd (RFC 4616). */
static void plain_credentials(struct session *s, const char *x, size_t n)
{
	const char *user = memchr(x, 0, n);
	const char *pass = user ? memchr(user + 1, 0, n - (size_t)(user + 1 - x)) : 0;

	if (!pass) {
		error(s, "501 5.5.2 malformed PLAIN response");
		return;
	}
	user++;
	pass++;
	size_t authz = (size_t)(user - 1 - x), ulen = (size_t)(pass - 1 - user);
	if (authz && (authz != ulen || memcmp(x, user, ulen))) {
		log_auth(s, "PLAIN", user, ulen, "failed", "authorization identity of another user");
		error(s, "535 5.7.8 the authorization identity must be the user's own");
		return;
	}
	check(s, "PLAIN", user, ulen, pass, n - (size_t)(pass - x));
}

static void auth_plain(struct session *s, const char *initial)
{
	char *x = secrets.plain;
	size_t n;

	if (response(s, "334 ", initial, x, sizeof secrets.plain, &n))
		plain_credentials(s, x, n);
	explicit_bzero(x, sizeof secrets.plain);
}

static void auth_login(struct session *s, const char *initial)
{
	char *user = secrets.user, *pass = secrets.pass;
	size_t ulen, plen;

	if (!response(s, "334 VXNlcm5hbWU6", initial, user, sizeof secrets.user, &ulen))	/* "Username:" */
		return;
	if (!response(s, "334 UGFzc3dvcmQ6", 0, pass, sizeof secrets.pass, &plen)) {	/* "Password:" */
		explicit_bzero(pass, sizeof secrets.pass);
		return;
	}
	check(s, "LOGIN", user, ulen, pass, plen);
	explicit_bzero(pass, sizeof secrets.pass);
}

void auth_wipe(void)
{
	explicit_bzero(&secrets, sizeof secrets);
}

void do_auth(struct session *s, const char *arg)
{
	if (!s->c->checkpassword) {
		error(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (!s->tls_protocol && !s->c->auth_plaintext) {
		error(s, "538 5.7.11 encryption required for authentication: STARTTLS first");
		return;
	}
	if (s->hello < 2 || s->authuser[0] || s->in_mail) {
		error(s, s->hello < 2 ? "503 5.5.1 send EHLO first"
			 : s->authuser[0] ? "503 5.5.1 already authenticated"
					  : "503 5.5.1 AUTH not allowed during a mail transaction");
		return;
	}
	char mechanism[16];
	size_t n = strcspn(arg, " ");
	const char *initial = arg[n] ? arg + n + 1 : 0;
	if (n >= sizeof mechanism) {
		error(s, "504 5.5.4 unrecognized authentication mechanism");
		return;
	}
	memcpy(mechanism, arg, n);
	mechanism[n] = 0;
	if (!strcasecmp(mechanism, "PLAIN"))
		auth_plain(s, initial);
	else if (!strcasecmp(mechanism, "LOGIN"))
		auth_login(s, initial);
	else
		error(s, n ? "504 5.5.4 unrecognized authentication mechanism"
			   : "501 5.5.4 syntax: AUTH mechanism [initial-response]");
}

/*
 * Postfix's reject_sender_login_mismatch, read from users.cdb: the sender must be an address
 * whose mail reaches the user's own mailbox (the address itself, an alias of it, an address
 * extension). The null sender is allowed, for bounces and replies a client generates.
 */
int sender_allowed(struct session *s, const char *sender, size_t n)
{
	if (!s->c->sender_login || !s->authuser[0] || n == 0)
		return 1;
	if (!open_userdb(s))
		return 0;
	struct targets t = TARGETS_ZERO;
	if (!resolve(&s->db, sender, n, &s->c->resolve, &t)) {
		log_line("%ld trouble: lookup in %s failed: %s", (long)getpid(), s->c->userdb,
			 strerror(errno));
		reply(s, "451 4.3.0 temporary failure looking up the sender");
		return 0;
	}
	int owned = 0;
	for (size_t i = 0; i < t.n; i++)
		if (t.t[i].kind == TARGET_MAILBOX && !strcmp(t.t[i].addr, s->authuser))
			owned = 1;
	targets_free(&t);
	if (!owned) {
		char esc[600], line[700];
		snprintf(line, sizeof line, "553 5.7.1 sender <%s> is not owned by user %s",
			 log_escape(esc, sizeof esc, sender, n), s->authuser);
		log_line("%ld reject client=%s from=<%s> user=%s reason=\"sender not owned\"",
			 (long)getpid(), s->c->remoteip, esc, s->authuser);
		error(s, line);
		return 0;
	}
	return 1;
}
