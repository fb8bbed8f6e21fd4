/* postroom: ISC license, see LICENSE. */
/*
 * The SMTP command loop (RFC 5321 section 4). Replies are buffered and go out when the client
 * has nothing more pipelined for us (the input buffer flushes the output before it reads).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "deadline.h"
#include "die.h"
#include "getln.h"
#include "log.h"
#include "resolve.h"
#include "smtp-recv.h"
#include "ucspitls.h"

void reply(struct session *s, const char *line)
{
	if (!buf_puts(&s->out, line) || !buf_put(&s->out, "\r\n", 2)) {
		log_line("%ld disconnect client=%s reason=\"write error: %s\" messages=%lu exit=111",
			 (long)getpid(), s->c->remoteip, strerror(errno), s->messages);
		session_exit(s, EXIT_TEMP);
	}
}

void session_exit(struct session *s, int code)
{
	if (!s->done)
		exit(code);
	s->exit_code = code;
	longjmp(*s->done, 1);
}

void session_clear(struct session *s)
{
	struct sa sender = s->sender, env = s->env;

	/* Not the command line's buffer: session_close wiped what the last session used of it. */
	memset(s, 0, offsetof(struct session, line));
	s->sender = sender;
	s->env = env;
	s->db.fd = -1;
}

static void wipe_stack(void);

/* Under tls-server the process outlives its sessions: nothing of one may reach the next. */
void session_close(struct session *s)
{
	if (s->message)
		inject_abort(s->message);
	s->message = 0;
	if (s->db_open)
		userdb_close(&s->db);
	s->db_open = 0;
	session_reset(s);
	/* Any line may have held a secret: credentials sent after a refused AUTH come as an
	   unknown command, and a session that ended (longjmp) inside AUTH skipped the command
	   loop's wipe. So every place a line went: the input buffer, the command line's buffer as
	   far as the session used it, AUTH's buffers, and the stack. */
	explicit_bzero(s->inspace, sizeof s->inspace);
	explicit_bzero(s->line, s->line_used);
	s->line_used = 0;
	auth_wipe();
	wipe_stack();
}

void session_end(struct session *s, const char *line, int code)
{
	char why[200];

	if (line) {
		reply(s, line);
		buf_flush(&s->out);
	}
	log_escape(why, sizeof why, line ? line : "", line ? strlen(line) : 0);
	log_line("%ld disconnect client=%s messages=%lu%s%s%s exit=%d", (long)getpid(),
		 s->c->remoteip, s->messages, line ? " reply=\"" : "", why, line ? "\"" : "", code);
	session_exit(s, code);
}

void error(struct session *s, const char *line)
{
	reply(s, line);
	if (++s->errors >= s->c->maxerrors)
		session_end(s, "421 4.7.0 too many errors, closing connection", 0);
}

void session_reset(struct session *s)
{
	s->in_mail = 0;
	s->utf8 = 0;
	s->sender.len = 0;
	s->env.len = 0;
	s->nrcpt = 0;
}

int is_verb(const char *line, const char *verb, const char **rest)
{
	size_t n = strlen(verb);

	if (strncasecmp(line, verb, n) || (line[n] && line[n] != ' '))
		return 0;
	*rest = line + n + (line[n] == ' ');
	return 1;
}

/* 1 if s holds nothing but spaces: no argument at all. */
static int blank(const char *s)
{
	return s[strspn(s, " ")] == 0;
}

/* Keeps the client's HELO name (n bytes at name) for Received: printable ASCII, no more than
   fits. */
static void set_helo(struct session *s, const char *name, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o < sizeof s->helo - 1; i++)
		s->helo[o++] = name[i] > 32 && name[i] < 127 && name[i] != '(' && name[i] != ')'
				       ? name[i] : '?';
	s->helo[o] = 0;
}

static void do_helo(struct session *s, const char *arg, int ehlo)
{
	char line[600];

	/* Spaces around the name are no part of it; spaces alone are no name. */
	arg += strspn(arg, " ");
	size_t n = strlen(arg);
	while (n && arg[n - 1] == ' ')
		n--;
	if (!n) {
		error(s, "501 5.5.4 a domain name or address literal is required");
		return;
	}
	session_reset(s);
	set_helo(s, arg, n);
	s->hello = ehlo ? 2 : 1;
	snprintf(line, sizeof line, "250%s%s", ehlo ? "-" : " ", s->c->hostname);
	reply(s, line);
	if (!ehlo)
		return;
	reply(s, "250-PIPELINING");
	snprintf(line, sizeof line, "250-SIZE %lu", s->c->databytes);
	reply(s, line);
	reply(s, "250-8BITMIME");
	reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->c->dsn)
		reply(s, "250-DSN");
	if (s->tls_offer && !s->tls_protocol)
		reply(s, "250-STARTTLS");
	if (auth_offered(s))
		reply(s, "250-AUTH PLAIN LOGIN");
	reply(s, "250 SMTPUTF8");
}

int session_tls_details(struct session *s)
{
	const char *protocol = getenv("SSL_PROTOCOL"), *cipher = getenv("SSL_CIPHER");

	if (!protocol || !*protocol)
		return 0;
	s->tls_protocol = protocol;
	s->tls_cipher = cipher && *cipher ? cipher : "unknown";
	return 1;
}

/* RFC 3207: the reply goes out in cleartext, then everything about the session is forgotten,
   including whatever the client sent after STARTTLS before the handshake (CVE-2011-0411). */
static void do_starttls(struct session *s, const char *arg)
{
	if (*arg) {
		error(s, "501 5.5.4 STARTTLS takes no argument");
		return;
	}
	if (!s->tls_offer || s->tls_protocol) {
		error(s, s->tls_protocol ? "503 5.5.1 TLS is already on"
					 : "502 5.5.1 STARTTLS not available");
		return;
	}
	reply(s, "220 2.0.0 ready to start TLS");
	if (!buf_flush(&s->out))
		session_end(s, 0, EXIT_TEMP);
	size_t injected = buf_unread(&s->in);
	buf_discard(&s->in);
	if (!ucspitls_start(&s->tls)) {
		log_line("%ld disconnect client=%s reason=\"TLS handshake failed\" messages=%lu exit=0",
			 (long)getpid(), s->c->remoteip, s->messages);
		session_exit(s, 0);
	}
	if (!session_tls_details(s))
		s->tls_protocol = s->tls_cipher = "unknown";	/* on, though not said how */
	s->hello = 0;
	s->helo[0] = 0;
	s->authuser[0] = 0;
	session_reset(s);
	log_line("%ld starttls client=%s protocol=%s cipher=%s", (long)getpid(), s->c->remoteip,
		 s->tls_protocol, s->tls_cipher);
	if (injected)
		log_line("%ld discarded %zu bytes sent after STARTTLS before the handshake client=%s",
			 (long)getpid(), injected, s->c->remoteip);
}

/* UCSPITLS=!: nothing private happens before TLS. 1 if the command may go on. */
static int tls_gate(struct session *s)
{
	if (!s->c->tls_required || s->tls_protocol)
		return 1;
	error(s, "530 5.7.0 must issue a STARTTLS command first");
	return 0;
}

/* Finds the end of "<...>" at s, minding quoted local parts; 0 if there is none. */
static size_t path_len(const char *s)
{
	int quoted = 0;

	if (*s != '<')
		return 0;
	for (size_t i = 1; s[i]; i++) {
		if (quoted && s[i] == '\\' && s[i + 1])
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == '>' && !quoted)
			return i + 1;
	}
	return 0;
}

/* Splits "FROM:<path> params" (after the verb); 0 on bad syntax. */
static int split_path(const char *arg, const char *keyword, const char **path, size_t *len,
		      const char **params)
{
	size_t k = strlen(keyword);

	if (strncasecmp(arg, keyword, k))
		return 0;
	arg += k;
	while (*arg == ' ')
		arg++;	/* "MAIL FROM: <a@b>" is common enough to allow */
	*len = path_len(arg);
	if (!*len || (arg[*len] && arg[*len] != ' '))
		return 0;
	*path = arg;
	*params = arg + *len;
	while (**params == ' ')
		(*params)++;
	return 1;
}

/* Is p[0..n) the parameter name (any case)? */
static int param_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(p, name, n);
}

/*
 * SIZE=value (RFC 1870: 1*20DIGIT, nothing else: no sign, no blank). 1 and *size, or 0 for bad
 * syntax. A value of 20 digits beyond what 64 bits hold is well formed and exceeds any limit:
 * *size is then the largest value there is.
 */
static int size_value(const char *v, size_t n, unsigned long long *size)
{
	if (n < 1 || n > 20 || strspn(v, "0123456789") < n)
		return 0;
	*size = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(v[i] - '0');
		if (*size > (ULLONG_MAX - d) / 10) {
			*size = ULLONG_MAX;
			return 1;
		}
		*size = *size * 10 + d;
	}
	return 1;
}

static int has_non_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* Is p[0..n) the parameter keyword (any case), with or without "=value"? */
static int keyword_is(const char *p, size_t n, const char *keyword)
{
	size_t k = strlen(keyword);

	return n >= k && !strncasecmp(p, keyword, k) && (n == k || p[k] == '=');
}

/* A DSN parameter's value (after "KEYWORD="), or 0 when it has no "=": the syntax error said. */
static const char *dsn_value(struct session *s, const char *p, size_t n, const char *keyword,
			     size_t *vn)
{
	char line[100];
	size_t k = strlen(keyword);

	if (n == k) {
		snprintf(line, sizeof line, "501 5.5.4 %s needs a value", keyword);
		error(s, line);
		return 0;
	}
	*vn = n - k - 1;
	return p + k + 1;
}

/* A parameter that was given before: 501 (RFC 3461 section 4: each at most once). */
static int dsn_again(struct session *s, const char *seen, const char *keyword)
{
	char line[100];

	if (!seen)
		return 0;
	snprintf(line, sizeof line, "501 5.5.4 duplicate %s parameter", keyword);
	error(s, line);
	return 1;
}

/* RET= or ENVID= (RFC 3461 sections 4.3, 4.4): 1 and the value, or 0 (the error said). */
static int dsn_mail_param(struct session *s, const char *p, size_t n, const char **ret,
			  size_t *retn, const char **envid, size_t *envidn)
{
	const char *v;
	size_t vn;

	if (keyword_is(p, n, "RET")) {
		if (dsn_again(s, *ret, "RET") || !(v = dsn_value(s, p, n, "RET", &vn)))
			return 0;
		if (!dsn_ret_ok(v, vn)) {
			error(s, "501 5.5.4 bad RET parameter: FULL or HDRS");
			return 0;
		}
		*ret = v;
		*retn = vn;
		return 1;
	}
	if (dsn_again(s, *envid, "ENVID") || !(v = dsn_value(s, p, n, "ENVID", &vn)))
		return 0;
	if (vn > DSN_ENVID_MAX) {
		error(s, "501 5.5.4 ENVID longer than 100 characters");
		return 0;
	}
	if (!dsn_envid_ok(v, vn)) {
		error(s, "501 5.5.4 bad ENVID parameter: xtext of printable characters");
		return 0;
	}
	*envid = v;
	*envidn = vn;
	return 1;
}

static void do_mail(struct session *s, const char *arg)
{
	const char *path, *params;
	size_t len, start, alen;

	if (!s->hello) {
		error(s, "503 5.5.1 send HELO or EHLO first");
		return;
	}
	if (s->in_mail) {
		error(s, "503 5.5.1 nested MAIL command");
		return;
	}
	if (!tls_gate(s))
		return;
	if (s->c->auth_required && !s->authuser[0]) {
		error(s, "530 5.7.0 authentication required");
		return;
	}
	if (!split_path(arg, "FROM:", &path, &len, &params)) {
		error(s, "501 5.5.4 syntax: MAIL FROM:<address>");
		return;
	}
	/* Parameters first: SMTPUTF8 decides what the address may contain. */
	int utf8 = 0;
	const char *ret = 0, *envid = 0;
	size_t retn = 0, envidn = 0;
	while (*params) {
		/* Each parameter is looked at where it is: AUTH= may hold a whole mailbox, as long
		   as the line allows. */
		const char *p = params;
		size_t n = strcspn(params, " ");
		unsigned long long size;
		if (s->hello < 2) {
			error(s, "555 5.5.4 unsupported MAIL parameter");
			return;
		}
		if (s->c->dsn && (keyword_is(p, n, "RET") || keyword_is(p, n, "ENVID"))) {
			if (!dsn_mail_param(s, p, n, &ret, &retn, &envid, &envidn))
				return;
		} else if (n >= 5 && !strncasecmp(p, "SIZE=", 5)) {
			if (!size_value(p + 5, n - 5, &size)) {
				error(s, "501 5.5.4 bad SIZE parameter");
				return;
			}
			if (size > s->c->databytes) {
				reply(s, "552 5.3.4 message size exceeds the fixed maximum");
				return;
			}
		} else if (param_is(p, n, "BODY=8BITMIME") || param_is(p, n, "BODY=7BIT")) {
			/* Both are stored as they come. */
		} else if (param_is(p, n, "SMTPUTF8")) {
			utf8 = 1;
		} else if (n >= 5 && !strncasecmp(p, "AUTH=", 5) && s->c->checkpassword) {
			/* RFC 4954 section 5: accepted; we vouch for no other sender's identity. */
		} else {
			error(s, "555 5.5.4 unsupported MAIL parameter");
			return;
		}
		params += n;
		while (*params == ' ')
			params++;
	}
	switch (addr_parse_path(path, len, &start, &alen, utf8 ? ADDR_UTF8 : 0)) {
	case ADDR_OK:
		break;
	case ADDR_TOOLONG:
		error(s, "501 5.1.7 sender address too long");
		return;
	default:
		error(s, !utf8 && has_non_ascii(path, len)
				 ? "553 5.6.7 non-ASCII addresses require SMTPUTF8"
				 : "501 5.1.7 bad sender address syntax");
		return;
	}
	if (!sender_allowed(s, path + start, alen))
		return;
	session_reset(s);
	if (!sa_catb(&s->sender, path + start, alen) || !sa_terminate(&s->sender) ||
	    (envid && !inject_item(&s->env, 'E', envid, envidn)) ||
	    (ret && !inject_item(&s->env, 'H', ret, retn)))
		session_end(s, "421 4.3.0 out of memory", EXIT_TEMP);
	s->in_mail = 1;
	s->utf8 = utf8;
	reply(s, "250 2.1.0 sender ok");
}

static void log_reject(struct session *s, const char *rcpt, size_t n, const char *line)
{
	char to[600], why[300];

	log_line("%ld reject client=%s to=<%s> reply=\"%s\"", (long)getpid(), s->c->remoteip,
		 log_escape(to, sizeof to, rcpt, n), log_escape(why, sizeof why, line, strlen(line)));
}

/* Is rcpt (a local-domain address) someone we deliver to? 1 yes, 0 no (reply set), -1 trouble. */
static int known_local(struct session *s, const char *rcpt, size_t n, const char **why)
{
	static char line[100];	/* the reply, when it is the resolver's own reason */
	struct targets t = TARGETS_ZERO;

	if (!resolve(&s->db, rcpt, n, &s->c->resolve, &t))
		return -1;
	int deliverable = 0;
	*why = "550 5.1.1 no such user here";
	for (size_t i = 0; i < t.n; i++) {
		if (t.t[i].kind != TARGET_FAILED)
			deliverable = 1;
		else if (!strncmp(t.t[i].reason, "5.4.6", 5)) {	/* a loop, or too large */
			snprintf(line, sizeof line, "550 %s for this address", t.t[i].reason);
			*why = line;
		}
	}
	targets_free(&t);
	return deliverable;
}

/* Opens users.cdb at the first need; 0 (and a 451 said) when it cannot be read. */
int open_userdb(struct session *s)
{
	if (s->db_open)
		return 1;
	if (!userdb_open(&s->db, s->c->userdb)) {
		log_line("%ld trouble: unable to open %s: %s", (long)getpid(), s->c->userdb,
			 strerror(errno));
		reply(s, "451 4.3.0 temporary failure looking up the recipient");
		return 0;
	}
	s->db_open = 1;
	return 1;
}

/*
 * "<Postmaster>" with no domain must be accepted (RFC 5321 4.5.1): it means the postmaster of
 * this host, taken as postmaster@ our host name, or of the domain above it (mx.example.test ->
 * example.test), whichever is a domain of ours, else of our first domain.
 */
static int postmaster_address(struct session *s, char *out)
{
	const char *domain = s->c->hostname;
	char first[ADDR_DOMAIN_MAX + 1];

	for (int i = 0; i < 2 && domain; i++) {
		if (strlen(domain) <= ADDR_DOMAIN_MAX && userdb_domain(&s->db, domain, strlen(domain)) == 1) {
			sprintf(out, "postmaster@%s", domain);
			return 1;
		}
		domain = strchr(domain, '.');
		if (domain)
			domain++;
	}
	if (userdb_first_domain(&s->db, first, sizeof first) != 1)
		return 0;
	sprintf(out, "postmaster@%s", first);
	return 1;
}

static void do_rcpt(struct session *s, const char *arg)
{
	const char *path, *params;
	size_t len, start, alen;

	if (!s->in_mail) {
		error(s, "503 5.5.1 need MAIL before RCPT");
		return;
	}
	if (!split_path(arg, "TO:", &path, &len, &params)) {
		error(s, "501 5.5.4 syntax: RCPT TO:<address>");
		return;
	}
	/* NOTIFY= and ORCPT= (RFC 3461 sections 4.1, 4.2); no other. */
	const char *notify = 0, *orcpt = 0;
	size_t notifyn = 0, orcptn = 0;
	while (*params) {
		const char *p = params, *v;
		size_t n = strcspn(params, " "), vn;
		if (s->hello < 2 || !s->c->dsn ||
		    (!keyword_is(p, n, "NOTIFY") && !keyword_is(p, n, "ORCPT"))) {
			error(s, "555 5.5.4 unsupported RCPT parameter");
			return;
		}
		if (keyword_is(p, n, "NOTIFY")) {
			if (dsn_again(s, notify, "NOTIFY") || !(v = dsn_value(s, p, n, "NOTIFY", &vn)))
				return;
			if (!dsn_notify_ok(v, vn)) {
				error(s, "501 5.5.4 bad NOTIFY parameter: NEVER, or a list of SUCCESS, FAILURE, DELAY");
				return;
			}
			notify = v;
			notifyn = vn;
		} else {
			if (dsn_again(s, orcpt, "ORCPT") || !(v = dsn_value(s, p, n, "ORCPT", &vn)))
				return;
			if (!dsn_orcpt_ok(v, vn)) {
				error(s, vn > DSN_ORCPT_MAX
						 ? "501 5.5.4 ORCPT longer than 500 characters"
						 : "501 5.5.4 bad ORCPT parameter: addr-type;xtext");
				return;
			}
			orcpt = v;
			orcptn = vn;
		}
		params += n;
		while (*params == ' ')
			params++;
	}
	if (!open_userdb(s))
		return;
	char postmaster[ADDR_DOMAIN_MAX + 20];
	enum addr_result r;
	if (len == 12 && !strncasecmp(path, "<postmaster>", 12) && postmaster_address(s, postmaster)) {
		path = postmaster;
		start = 0;
		alen = strlen(postmaster);
		r = ADDR_OK;
	} else {
		r = addr_parse_path(path, len, &start, &alen, s->utf8 ? ADDR_UTF8 : 0);
	}
	if (r != ADDR_OK || alen == 0) {
		error(s, r == ADDR_TOOLONG ? "501 5.1.3 recipient address too long"
			 : !s->utf8 && has_non_ascii(path, len)
				 ? "553 5.6.7 non-ASCII addresses require SMTPUTF8"
				 : "501 5.1.3 bad recipient address syntax");
		return;
	}
	const char *rcpt = path + start;
	if (s->nrcpt >= s->c->maxrcpt) {
		reply(s, "452 4.5.3 too many recipients");
		return;
	}
	size_t at = addr_at(rcpt, alen);
	int local = userdb_domain(&s->db, rcpt + at + 1, alen - at - 1);
	const char *why = 0;
	if (local == 1) {
		int known = known_local(s, rcpt, alen, &why);
		if (known < 0)
			local = -1;
		else if (!known) {
			log_reject(s, rcpt, alen, why);
			error(s, why);
			return;
		}
	} else if (local == 0 && !s->c->relayclient && !s->authuser[0]) {
		why = "554 5.7.1 relay access denied";
		log_reject(s, rcpt, alen, why);
		error(s, why);
		return;
	}
	if (local < 0) {
		log_line("%ld trouble: lookup in %s failed: %s", (long)getpid(), s->c->userdb,
			 strerror(errno));
		reply(s, "451 4.3.0 temporary failure looking up the recipient");
		return;
	}
	if (!inject_item(&s->env, 'T', rcpt, alen) ||
	    (notify && !inject_item(&s->env, 'N', notify, notifyn)) ||
	    (orcpt && !inject_item(&s->env, 'O', orcpt, orcptn)))
		session_end(s, "421 4.3.0 out of memory", EXIT_TEMP);
	s->nrcpt++;
	reply(s, "250 2.1.5 recipient ok");
}

static void command(struct session *s, char *line)
{
	const char *arg;

	if (is_verb(line, "EHLO", &arg))
		do_helo(s, arg, 1);
	else if (is_verb(line, "HELO", &arg))
		do_helo(s, arg, 0);
	else if (is_verb(line, "MAIL", &arg))
		do_mail(s, arg);
	else if (is_verb(line, "RCPT", &arg))
		do_rcpt(s, arg);
	else if (is_verb(line, "DATA", &arg)) {
		if (*arg)
			error(s, "501 5.5.4 DATA takes no argument");
		else if (!s->in_mail)
			error(s, "503 5.5.1 need MAIL before DATA");
		else if (!s->nrcpt)
			error(s, "554 5.5.1 no valid recipients");
		else
			smtp_data(s);
	} else if (is_verb(line, "STARTTLS", &arg)) {
		do_starttls(s, arg);
	} else if (is_verb(line, "AUTH", &arg)) {
		if (tls_gate(s))
			do_auth(s, arg);
	} else if (is_verb(line, "RSET", &arg)) {
		if (!blank(arg)) {
			error(s, "501 5.5.4 syntax: RSET");
			return;
		}
		session_reset(s);
		reply(s, "250 2.0.0 ok");
	} else if (is_verb(line, "NOOP", &arg))
		reply(s, "250 2.0.0 ok");
	else if (is_verb(line, "QUIT", &arg))
		session_end(s, "221 2.0.0 bye", 0);
	else if (is_verb(line, "VRFY", &arg)) {
		if (blank(arg))
			error(s, "501 5.5.4 syntax: VRFY address");
		else
			reply(s, "252 2.5.0 cannot verify, but will accept mail and attempt delivery");
	} else if (is_verb(line, "HELP", &arg))
		reply(s, "214 2.0.0 commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
	else if (is_verb(line, "EXPN", &arg) || is_verb(line, "BDAT", &arg) ||
		 is_verb(line, "TURN", &arg) || is_verb(line, "ETRN", &arg))
		error(s, "502 5.5.1 command not implemented");
	else
		error(s, "500 5.5.2 command not recognized");
}

int read_line(struct session *s, char *line, size_t max, size_t *len, int auth)
{
	/* Each read has SMTP_TIMEOUT, and the whole line SMTP_COMMAND_TIMEOUT: a client that sends
	   a byte now and then, never ending its line, would otherwise hold its slot for ever. */
	s->in.deadline_ms = deadline_in((unsigned)s->c->command_timeout);
	enum getln_result r = getln(&s->in, line, max, len, '\n');
	s->in.deadline_ms = 0;
	/* How much of the command line's buffer a session wiped at its end must cover. */
	size_t used = *len + 3 < max + 1 ? *len + 3 : max + 1;
	if (line == s->line && used > s->line_used)
		s->line_used = used;

	if (r == GETLN_ERR && errno == ETIMEDOUT)
		session_end(s, *len ? "421 4.4.2 command not completed in time, closing connection"
				    : "421 4.4.2 timeout, closing connection", 0);
	if (r == GETLN_ERR || r == GETLN_EOF)
		session_end(s, 0, 0);
	if (++s->commands > s->c->maxcommands)
		session_end(s, "421 4.7.0 too many commands, closing connection", 0);
	if (r == GETLN_TOOLONG) {
		/* RFC 4954 section 4 gives 5.5.6 to an AUTH line or response too long; any other
		   line is a syntax error (RFC 3463: 5.5.2). */
		error(s, auth || !strncasecmp(line, "AUTH ", 5)
				 ? "500 5.5.6 authentication exchange line is too long"
				 : "500 5.5.2 line too long");
		return 0;
	}
	/* CRLF, or a bare LF from a hand-typed session. */
	(*len)--;
	if (*len && line[*len - 1] == '\r')
		(*len)--;
	line[*len] = 0;
	if (memchr(line, 0, *len) || memchr(line, '\r', *len)) {
		error(s, "500 5.5.2 bad characters in command");
		return 0;
	}
	return 1;
}

/*
 * Overwrites the stack below the command loop's frame. What the calls for a command left there
 * stays after they return, registers included: the dynamic linker's lazy binding saves every
 * vector register on the stack, and memchr and memcpy leave input in them (32 bytes of an AUTH
 * line were seen there, under the sanitizers' build). Far more than those calls use. Called
 * from the loop after an AUTH line, and after each session served under tls-server, from the
 * loop of sessions, whose frame is above the command loop's (the line itself is in the
 * session, not on the stack).
 */
static void __attribute__((noinline)) wipe_stack(void)
{
	char below[65536];

	explicit_bzero(below, sizeof below);
	__asm__ __volatile__("" : : "r"(below) : "memory");
}

/* What a command line may hold beyond SMTP_LINE_MAX: the DSN parameters (RFC 3461 section 4). */
static size_t line_extra(const struct session *s, const char *line)
{
	const char *arg;

	if (!s->c->dsn)
		return 0;
	if (is_verb(line, "MAIL", &arg))
		return DSN_MAIL_EXTRA;
	if (is_verb(line, "RCPT", &arg))
		return DSN_RCPT_EXTRA;
	return 0;
}

int session_run(struct session *s)
{
	char *line = s->line;
	size_t max = s->c->line_max > AUTH_LINE_MAX ? s->c->line_max : AUTH_LINE_MAX;
	char greeting[300];
	size_t len;

	buf_init(&s->in, 0, s->inspace, sizeof s->inspace);
	buf_init(&s->out, 1, s->outspace, sizeof s->outspace);
	s->in.flush_first = &s->out;
	s->in.timeout_ms = (int)(s->c->timeout * 1000);
	s->out.timeout_ms = s->in.timeout_ms;	/* a client that stops reading our replies */
	log_line("%ld connect client=%s local=%s%s%s", (long)getpid(), s->c->remoteip, s->c->localip,
		 s->tls_protocol ? " tls=" : "", s->tls_protocol ? s->tls_protocol : "");
	snprintf(greeting, sizeof greeting, "220 %s ESMTP postroom", s->c->hostname);
	reply(s, greeting);

	for (;;) {
		const char *arg;
		int secret = 1;	/* a refused line may have been an AUTH */
		if (!read_line(s, line, max, &len, 0))
			;	/* refused */
		else if (len > s->c->line_max - 2 + line_extra(s, line) && !is_verb(line, "AUTH", &arg))
			error(s, "500 5.5.2 line too long");
		else {
			secret = is_verb(line, "AUTH", &arg);
			command(s, line);
		}
		/* An AUTH line holds a password, encoded, and so may a line refused before its verb
		   was known: keep no copy of such a line, in line (CR LF and NUL included) or
		   anywhere in the input buffer, where AUTH LOGIN's own lines went through too; and
		   none on the stack where AUTH's work went on. Other lines hold nothing secret. */
		if (secret) {
			explicit_bzero(line, len + 3 < max + 1 ? len + 3 : max + 1);
			buf_wipe_consumed(&s->in);
			wipe_stack();
		}
	}
}
