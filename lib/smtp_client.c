/* postroom: ISC license, see LICENSE. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base64.h"
#include "deadline.h"
#include "fmt.h"
#include "smtp_client.h"

/* --- replies ---------------------------------------------------------------------------------- */

static void vreply_set(struct smtpc_reply *r, int code, const char *enhanced, const char *fmt,
		       va_list ap)
{
	r->code = code;
	str_copy(r->enhanced, sizeof r->enhanced, enhanced);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
}

void smtpc_reply_set(struct smtpc_reply *r, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply_set(r, code, enhanced, fmt, ap);
	va_end(ap);
}

/* A step's deadline: timeout seconds from now, but never past the attempt's (c->deadline). */
static long long step_until(const struct smtpc *s, unsigned timeout)
{
	long long d = deadline_in(timeout);

	return s->c->deadline && s->c->deadline < d ? s->c->deadline : d;
}

/* The session failed: s->why says why, and the connection is not used again. */
static int fail(struct smtpc *s, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct smtpc *s, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply_set(&s->why, code, enhanced, fmt, ap);
	va_end(ap);
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	return 0;
}

static void event(const struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(const struct smtpc *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!s->c->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	s->c->log(s->c->log_arg, line);
}

/* A network failure while doing what: 421 4.4.2, with errno's text. */
static int fail_io(struct smtpc *s, const char *what)
{
	int e = errno;

	if (s->tls_on && e == EPROTO)
		return fail(s, 421, "4.4.2", "TLS failure with %s[%s] while %s: %s", s->host, s->addr,
			    what, s->tls.why);
	if (e == ETIMEDOUT)
		return fail(s, 421, "4.4.2", "timeout with %s[%s] while %s", s->host, s->addr, what);
	if (e == 0 || e == ECONNRESET || e == EPIPE)
		return fail(s, 421, "4.4.2", "lost connection with %s[%s] while %s", s->host,
			    s->addr, what);
	return fail(s, 421, "4.4.2", "error with %s[%s] while %s: %s", s->host, s->addr, what,
		    strerror(e));
}

/* Reads more into s->in: >0, 0 at end of input (errno 0), -1 with errno set. */
static ssize_t io_fill(struct smtpc *s, long long until)
{
	if (s->pos == s->len)
		s->pos = s->len = 0;
	if (s->len == sizeof s->in) {
		memmove(s->in, s->in + s->pos, s->len - s->pos);
		s->len -= s->pos;
		s->pos = 0;
	}
	char *at = s->in + s->len;
	size_t room = sizeof s->in - s->len;
	ssize_t r;
	if (s->tls_on) {
		r = tls_client_read(&s->tls, s->fd, at, room, until);
	} else {
		for (;;) {
			r = read(s->fd, at, room);
			if (r >= 0 || (errno != EAGAIN && errno != EINTR))
				break;
			if (!deadline_wait_fd(s->fd, POLLIN, until))
				return -1;
		}
	}
	if (r == 0)
		errno = 0;
	if (r > 0)
		s->len += (size_t)r;
	return r;
}

static int io_write(struct smtpc *s, const char *p, size_t n, long long until)
{
	if (s->tls_on)
		return tls_client_write(&s->tls, s->fd, p, n, until);
	while (n) {
		/* MSG_NOSIGNAL: a peer that hung up is an error here, not a signal. */
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN || !deadline_wait_fd(s->fd, POLLOUT, until))
				return 0;
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 1;
}

/* Sends the commands waiting in s->out in one write. */
static int flush_out(struct smtpc *s, unsigned timeout, const char *what)
{
	int ok = io_write(s, s->out.s, s->out.len, step_until(s, timeout));

	s->out.len = 0;
	return ok ? 1 : fail_io(s, what);
}

static int queue_cmd(struct smtpc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int queue_cmd(struct smtpc *s, const char *fmt, ...)
{
	char line[1024];	/* addresses are at most SMTPC_PATH_MAX: every command fits */
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof line - 2)
		return fail(s, 451, "4.3.0", "command too long for %s[%s]", s->host, s->addr);
	memcpy(line + n, "\r\n", 2);
	if (!sa_catb(&s->out, line, (size_t)n + 2))
		return fail(s, 451, "4.3.0", "out of memory");
	return 1;
}

/* "x.y.z" at the start of text whose class is that of code: its length, else 0. */
static size_t enhanced_len(const char *t, size_t n, int code)
{
	size_t i = 0, part = 0;

	if (n < 5 || t[0] != '0' + code / 100 || t[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		size_t start = i;
		while (i < n && i - start < 3 && t[i] >= '0' && t[i] <= '9')
			i++;
		if (i == start)
			return 0;
		if (part == 0) {
			if (i >= n || t[i] != '.')
				return 0;
			i++;
		}
	}
	return i == n || t[i] == ' ' ? i : 0;
}

static void ehlo_line(struct smtpc *s, const char *t, size_t n)
{
	char kw[32];
	size_t k = 0;

	while (k < n && k < sizeof kw - 1 && t[k] != ' ' && t[k] != '=') {
		kw[k] = t[k];
		k++;
	}
	kw[k] = 0;
	const char *arg = t + k + (k < n);
	size_t argn = k < n ? n - k - 1 : 0;
	if (!strcasecmp(kw, "PIPELINING")) {
		s->ext |= SMTPC_PIPELINING;
	} else if (!strcasecmp(kw, "SIZE")) {
		unsigned long long v = 0;
		s->ext |= SMTPC_SIZE;
		s->size_max = argn && scan_ullong(arg, argn, &v) ? v : 0;
	} else if (!strcasecmp(kw, "8BITMIME")) {
		s->ext |= SMTPC_8BITMIME;
	} else if (!strcasecmp(kw, "SMTPUTF8")) {
		s->ext |= SMTPC_SMTPUTF8;
	} else if (!strcasecmp(kw, "STARTTLS")) {
		s->ext |= SMTPC_STARTTLS;
	} else if (!strcasecmp(kw, "ENHANCEDSTATUSCODES")) {
		s->ext |= SMTPC_ENHANCED;
	} else if (!strcasecmp(kw, "DSN")) {
		s->ext |= SMTPC_DSN;
	} else if (!strcasecmp(kw, "AUTH") && t[k] == ' ') {
		while (argn) {
			size_t w = 0;
			while (w < argn && arg[w] != ' ')
				w++;
			if (w == 5 && !strncasecmp(arg, "PLAIN", 5))
				s->ext |= SMTPC_AUTH_PLAIN;
			if (w == 5 && !strncasecmp(arg, "LOGIN", 5))
				s->ext |= SMTPC_AUTH_LOGIN;
			arg += w + (w < argn);
			argn -= w + (w < argn);
		}
	}
}

/*
 * Reads one reply into r, within timeout seconds for the whole of it. ehlo: the lines after the
 * first are extensions. Returns 1, or 0 (s->why says why: the connection is then closed).
 * A line is cut at LF, a CR before it dropped; bare-LF lines are accepted, as most clients do.
 */
static int read_reply(struct smtpc *s, unsigned timeout, struct smtpc_reply *r, int ehlo,
		      const char *what)
{
	long long until = step_until(s, timeout);
	char line[SMTPC_LINE_MAX];
	size_t lines = 0, total = 0, tlen = 0;

	r->code = 0;
	r->enhanced[0] = r->text[0] = 0;
	if (ehlo) {
		s->ext = 0;
		s->size_max = 0;
	}
	for (;;) {
		size_t n = 0;
		for (;;) {
			char *lf = memchr(s->in + s->pos, '\n', s->len - s->pos);
			size_t take = lf ? (size_t)(lf - (s->in + s->pos)) + 1 : s->len - s->pos;
			if (n + take > sizeof line || total + n + take > SMTPC_REPLY_MAX) {
				if (total + n + take > SMTPC_REPLY_MAX)
					return fail(s, 421, "4.5.0",
						    "%s[%s] sent a reply of more than %d bytes while %s",
						    s->host, s->addr, SMTPC_REPLY_MAX, what);
				return fail(s, 421, "4.5.0",
					    "%s[%s] sent a reply line longer than %d bytes while %s",
					    s->host, s->addr, SMTPC_LINE_MAX, what);
			}
			memcpy(line + n, s->in + s->pos, take);
			n += take;
			s->pos += take;
			if (lf)
				break;
			if (io_fill(s, until) <= 0)
				return fail_io(s, what);
		}
		total += n;
		n--;			/* the LF */
		if (n && line[n - 1] == '\r')
			n--;
		int code = 0;
		if (n >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
		    line[2] >= '0' && line[2] <= '9' && (n == 3 || line[3] == ' ' || line[3] == '-'))
			code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (!code || (r->code && code != r->code))
			return fail(s, 421, "4.5.0", "%s[%s] sent a malformed reply while %s", s->host,
				    s->addr, what);
		r->code = code;
		const char *t = line + 4;
		size_t tn = n > 4 ? n - 4 : 0;
		size_t e = enhanced_len(t, tn, code);
		if (e && !r->enhanced[0]) {
			memcpy(r->enhanced, t, e);
			r->enhanced[e] = 0;
		}
		if (e) {
			t += e;
			tn -= e;
			while (tn && *t == ' ') {
				t++;
				tn--;
			}
		}
		if (ehlo && lines > 0)
			ehlo_line(s, t, tn);
		/* The text kept: every line's, joined by a space, cut to fit. */
		if (tn && tlen + 1 < sizeof r->text) {
			if (tlen)
				r->text[tlen++] = ' ';
			size_t c = tn < sizeof r->text - 1 - tlen ? tn : sizeof r->text - 1 - tlen;
			memcpy(r->text + tlen, t, c);
			tlen += c;
			r->text[tlen] = 0;
		}
		if (++lines > SMTPC_LINES_MAX)
			return fail(s, 421, "4.5.0", "%s[%s] sent a reply of more than %d lines while %s",
				    s->host, s->addr, SMTPC_LINES_MAX, what);
		if (n <= 3 || line[3] == ' ')
			break;
	}
	if (!r->enhanced[0])
		snprintf(r->enhanced, sizeof r->enhanced, "%d.0.0", r->code / 100);
	return 1;
}

/* Sends one command (queued with queue_cmd) and reads its reply. */
static int command(struct smtpc *s, unsigned timeout, struct smtpc_reply *r, int ehlo,
		   const char *what)
{
	return flush_out(s, timeout, what) && read_reply(s, timeout, r, ehlo, what);
}

/* --- opening a session ------------------------------------------------------------------------ */

static int connect_to(struct smtpc *s, int family, const void *addr, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((unsigned short)port);
		memcpy(&a->sin6_addr, addr, sizeof a->sin6_addr);
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((unsigned short)port);
		memcpy(&a->sin_addr, addr, sizeof a->sin_addr);
		len = sizeof *a;
	}
	s->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return fail(s, 421, "4.4.1", "unable to make a socket: %s", strerror(errno));
	if (connect(s->fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;
		if (e == EINPROGRESS) {
			socklen_t el = sizeof e;
			if (!deadline_wait_fd(s->fd, POLLOUT, step_until(s, s->c->t.connect)))
				e = errno;
			else if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
		}
		if (e)
			return fail(s, 421, "4.4.1", "connect to %s[%s]:%u: %s", s->host, s->addr,
				    port, e == ETIMEDOUT ? "timed out" : strerror(e));
	}
	return 1;
}

/* The handshake, on a fresh connection (implicit TLS) or after 220 to STARTTLS. */
/* 1 when name is an address, bare or as a literal ([192.0.2.1], [IPv6:2001:db8::1]): the bare
   address into bare (INET6_ADDRSTRLEN bytes). */
static int numeric_name(const char *name, char *bare)
{
	unsigned char probe[sizeof(struct in6_addr)];
	size_t n = strlen(name);

	if (n > 2 && name[0] == '[' && name[n - 1] == ']') {
		name++;
		n -= 2;
		if (n > 5 && !strncasecmp(name, "IPv6:", 5)) {
			name += 5;
			n -= 5;
		}
	}
	if (n >= INET6_ADDRSTRLEN)
		return 0;
	memcpy(bare, name, n);
	bare[n] = 0;
	return inet_pton(AF_INET, bare, probe) == 1 || inet_pton(AF_INET6, bare, probe) == 1;
}

static int start_tls(struct smtpc *s, const char *tlsname)
{
	/* SNI is a host name, never an address (RFC 6066 section 3); an address is verified
	   against the certificate's IP addresses, bare, without a literal's brackets. */
	char bare[INET6_ADDRSTRLEN];
	int numeric = numeric_name(tlsname, bare);
	struct tls_client_config tc = { s->c->cafile, numeric ? bare : tlsname,
					numeric ? 0 : tlsname };

	s->pos = s->len = 0;	/* nothing read in cleartext survives (CVE-2011-0411) */
	if (!tls_client_start(&s->tls, s->fd, &tc, step_until(s, s->c->t.helo)))
		return 0;
	s->tls_on = 1;
	event(s, "tls host=%s[%s] protocol=%s cipher=%s verified=%s%s%s", s->host, s->addr,
	      s->tls.protocol, s->tls.cipher, s->tls.verified ? "yes" : "no",
	      s->tls.verified ? "" : " reason=", s->tls.verified ? "" : s->tls.why);
	if (s->c->tls == SMTPC_TLS_VERIFY && !s->tls.verified)
		return fail(s, 421, "4.7.5", "TLS: the certificate of %s[%s] does not verify: %s",
			    s->host, s->addr, s->tls.why);
	return 1;
}

/* EHLO, or HELO after a 5xx to it: 1 on 250. */
static int hello(struct smtpc *s, struct smtpc_reply *r)
{
	if (!queue_cmd(s, "EHLO %s", s->c->helo) || !command(s, s->c->t.helo, r, 1, "sending EHLO"))
		return 0;
	if (r->code == 250) {
		s->esmtp = 1;
		return 1;
	}
	if (r->code / 100 != 5)
		return 0;
	s->ext = 0;
	s->esmtp = 0;
	return queue_cmd(s, "HELO %s", s->c->helo) &&
	       command(s, s->c->t.helo, r, 0, "sending HELO") && r->code == 250;
}

static enum smtpc_open_result refused(struct smtpc *s, const struct smtpc_reply *r,
				      enum smtpc_open_result res)
{
	if (s->fd >= 0)
		s->why = *r;
	return res;
}

/* Queues "PREFIX SECRET" without a copy on the stack: only s->out holds it, and
   forget_secret clears that. */
static int queue_secret(struct smtpc *s, const char *prefix, const char *secret)
{
	if (!sa_cats(&s->out, prefix) || !sa_cats(&s->out, secret) || !sa_catb(&s->out, "\r\n", 2))
		return fail(s, 451, "4.3.0", "out of memory");
	return 1;
}

static void forget_secret(struct smtpc *s)
{
	if (s->out.s)
		explicit_bzero(s->out.s, s->out.cap);
	s->out.len = 0;
}

static enum smtpc_open_result authenticate(struct smtpc *s)
{
	struct smtpc_reply r;
	const char *u = s->c->user, *p = s->c->password ? s->c->password : "";
	size_t ul = strlen(u), pl = strlen(p);
	/* Two credentials of smtp_credentials_read's 511 bytes and two NULs fit; the line is
	   then 1379 bytes, under RFC 4954's 12288. */
	char plain[1024], b64[BASE64_LEN(sizeof plain) + 1];
	int ok;

	if (!s->tls_on) {
		fail(s, 421, "4.7.0", "refusing to send credentials to %s[%s] without TLS", s->host,
		     s->addr);
		return SMTPC_OPEN_DEFER;
	}
	if (ul + pl + 2 > sizeof plain) {
		fail(s, 421, "4.7.0", "credentials too long");
		return SMTPC_OPEN_DEFER;
	}
	if (s->ext & SMTPC_AUTH_PLAIN) {
		/* RFC 4616: authorization identity empty, then the user and the password. */
		plain[0] = 0;
		memcpy(plain + 1, u, ul);
		plain[1 + ul] = 0;
		memcpy(plain + 2 + ul, p, pl);
		base64_encode(plain, ul + pl + 2, b64);
		ok = queue_secret(s, "AUTH PLAIN ", b64) &&
		     command(s, s->c->t.helo, &r, 0, "sending AUTH");
		forget_secret(s);
	} else if (s->ext & SMTPC_AUTH_LOGIN) {
		base64_encode(u, ul, b64);
		ok = queue_secret(s, "AUTH LOGIN ", b64) &&
		     command(s, s->c->t.helo, &r, 0, "sending AUTH");
		forget_secret(s);
		if (ok && r.code == 334) {
			base64_encode(p, pl, b64);
			ok = queue_secret(s, "", b64) && command(s, s->c->t.helo, &r, 0, "sending AUTH");
			forget_secret(s);
		}
	} else {
		explicit_bzero(plain, sizeof plain);
		fail(s, 421, "4.7.0", "%s[%s] offers neither AUTH PLAIN nor AUTH LOGIN", s->host,
		     s->addr);
		return SMTPC_OPEN_DEFER;
	}
	explicit_bzero(plain, sizeof plain);
	explicit_bzero(b64, sizeof b64);
	if (!ok)
		return SMTPC_OPEN_NEXT;
	if (r.code != 235) {
		event(s, "auth host=%s[%s] user=%s refused: %d %s", s->host, s->addr, u, r.code,
		      r.enhanced);
		/* As Postfix's smtp_sasl_auth_soft_bounce: a refusal may be a typo an
		   administrator fixes, so the mail waits (the caller defers, even on a 5xx). */
		s->why = r;
		return SMTPC_OPEN_DEFER;
	}
	return SMTPC_OPEN_OK;
}

enum smtpc_open_result smtpc_open(struct smtpc *s, const struct smtpc_config *c, const char *host,
				  int family, const void *addr, unsigned port, const char *tlsname,
				  int loopcheck)
{
	struct smtpc_reply r;

	memset(s, 0, sizeof *s);
	s->c = c;
	s->fd = -1;
	s->port = port;
	str_copy(s->host, sizeof s->host, host);
	inet_ntop(family, addr, s->addr, sizeof s->addr);
	if (!connect_to(s, family, addr, port))
		return SMTPC_OPEN_NEXT;
	if (c->implicit_tls && !start_tls(s, tlsname)) {
		if (s->fd >= 0)
			fail(s, 421, "4.7.5", "TLS with %s[%s]: %s", s->host, s->addr, s->tls.why);
		return SMTPC_OPEN_NEXT;
	}
	if (!read_reply(s, c->t.greeting, &r, 0, "waiting for the greeting"))
		return SMTPC_OPEN_NEXT;
	if (r.code != 220)
		return refused(s, &r, SMTPC_OPEN_NEXT);
	s->greeted = 1;
	/* The greeting's first word is the peer's name: ours means the mail would loop. */
	size_t hl = strlen(c->helo);
	if (loopcheck && !strncasecmp(r.text, c->helo, hl) && (!r.text[hl] || r.text[hl] == ' ')) {
		fail(s, 554, "5.4.6", "%s[%s] greeted me with my own host name %s", s->host, s->addr,
		     c->helo);
		return SMTPC_OPEN_LOOP;
	}
	if (!hello(s, &r))
		return refused(s, &r, SMTPC_OPEN_NEXT);
	if (!s->tls_on && c->tls != SMTPC_TLS_NONE) {
		if (s->ext & SMTPC_STARTTLS) {
			if (!queue_cmd(s, "STARTTLS") ||
			    !command(s, c->t.helo, &r, 0, "sending STARTTLS"))
				return SMTPC_OPEN_NEXT;
			if (r.code == 220) {
				if (!start_tls(s, tlsname)) {
					if (s->fd < 0)
						return SMTPC_OPEN_NEXT;	/* not verified */
					fail(s, 421, "4.7.5", "TLS with %s[%s]: %s", s->host,
					     s->addr, s->tls.why);
					return c->tls == SMTPC_TLS_MAY ? SMTPC_OPEN_TLS_FAILED
								       : SMTPC_OPEN_NEXT;
				}
				if (!hello(s, &r))
					return refused(s, &r, SMTPC_OPEN_NEXT);
			} else if (c->tls != SMTPC_TLS_MAY) {
				smtpc_reply_set(&s->why, 421, "4.7.4",
						"TLS is required, but %s[%s] refused STARTTLS: %d %s",
						s->host, s->addr, r.code, r.text);
				return SMTPC_OPEN_NEXT;
			}
		} else if (c->tls != SMTPC_TLS_MAY) {
			smtpc_reply_set(&s->why, 421, "4.7.4",
					"TLS is required, but was not offered by %s[%s]", s->host,
					s->addr);
			return SMTPC_OPEN_NEXT;
		}
	}
	if (c->user)
		return authenticate(s);
	return SMTPC_OPEN_OK;
}

/* --- sending ---------------------------------------------------------------------------------- */

void smtpc_msg_init(struct smtpc_msg *m, const char *s, size_t len)
{
	unsigned long long size = len;
	int bol = 1;	/* at the start of a line: a last line without LF gets a CRLF */

	m->s = s;
	m->len = len;
	m->eightbit = 0;
	m->envid = m->ret = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c & 0x80)
			m->eightbit = 1;
		/* RFC 1870 section 3: CRLF counted, the dot-stuffing not. */
		if (c == '\n')
			size++;
		bol = c == '\n';
	}
	if (len && !bol)
		size += 2;
	m->size = size;
}

void smtpc_tls_desc(const struct smtpc *s, char *out, size_t outsize)
{
	if (!s->tls_on)
		snprintf(out, outsize, "none");
	else
		snprintf(out, outsize, "%s/%s/%s", s->tls.protocol, s->tls.cipher,
			 s->tls.verified ? "verified" : "unverified");
}

static int nonascii(const char *a)
{
	for (; *a; a++)
		if (*a & 0x80)
			return 1;
	return 0;
}

static int has_controls(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a < 0x20 || *a == 0x7f)
			return 1;
	return 0;
}

static void decide(struct smtpc *s, struct smtpc_rcpt *r, const struct smtpc_reply *why)
{
	r->reply = *why;
	r->status = why->code / 100 == 2 ? SMTPC_DELIVERED
		    : why->code / 100 == 5 ? SMTPC_FAILED : SMTPC_DEFERRED;
	/* RFC 3461 section 5.2: a peer with DSN that took the message takes the duty to notify
	   with it; without DSN, a "relayed" notice is ours to send (NOTIFY=SUCCESS). */
	r->dsn_passed = r->status == SMTPC_DELIVERED && (s->ext & SMTPC_DSN);
	snprintf(r->where, sizeof r->where, "%s[%s]", s->host, s->addr);
	smtpc_tls_desc(s, r->tls, sizeof r->tls);
}

/*
 * A DSN parameter (RFC 3461 section 4) is sent when the peer offers DSN and the value is one
 * that cannot break the command: 1 to max characters, "!" to "~" but "=" (an esmtp-value,
 * RFC 5321 section 4.1.2). smtp-recv and queue-inject check the values fully before they are
 * queued; a value that fails here is left out, and the peer applies its default.
 */
static int dsn_value_ok(const char *v, size_t max)
{
	size_t n = 0;

	for (; v[n]; n++)
		if (v[n] < '!' || v[n] > '~' || v[n] == '=')
			return 0;
	return n >= 1 && n <= max;
}

/* " RET=... ENVID=..." for MAIL, or "" (out: at least 128 bytes). */
static void mail_dsn(const struct smtpc *s, const struct smtpc_msg *m, char *out, size_t size)
{
	size_t o = 0;

	*out = 0;
	if (!(s->ext & SMTPC_DSN))
		return;
	if (m->ret && dsn_value_ok(m->ret, 4))
		o += (size_t)snprintf(out + o, size - o, " RET=%s", m->ret);
	if (m->envid && dsn_value_ok(m->envid, 100) && o < size)
		snprintf(out + o, size - o, " ENVID=%s", m->envid);
}

/* "RCPT TO:<addr>", with NOTIFY= and ORCPT= when the peer offers DSN. */
static int queue_rcpt(struct smtpc *s, const struct smtpc_rcpt *x)
{
	int dsn = !!(s->ext & SMTPC_DSN);
	int notify = dsn && x->notify && dsn_value_ok(x->notify, 21);
	int orcpt = dsn && x->orcpt && dsn_value_ok(x->orcpt, 500);

	return queue_cmd(s, "RCPT TO:<%s>%s%s%s%s", x->addr, notify ? " NOTIFY=" : "",
			 notify ? x->notify : "", orcpt ? " ORCPT=" : "", orcpt ? x->orcpt : "");
}

/* Sends the message: CRLF line ends, dot-stuffed, a last line without LF ended, then the dot. */
static int send_body(struct smtpc *s, const struct smtpc_msg *m)
{
	char out[16384];
	size_t o = 0;
	int bol = 1;

	for (size_t i = 0; i <= m->len; i++) {
		if (o > sizeof out - 8) {
			if (!io_write(s, out, o, step_until(s, s->c->t.block)))
				return fail_io(s, "sending the message");
			o = 0;
		}
		if (i == m->len) {
			if (!bol)
				memcpy(out + o, "\r\n", 2), o += 2;
			memcpy(out + o, ".\r\n", 3);
			o += 3;
			break;
		}
		char c = m->s[i];
		if (bol && c == '.')
			out[o++] = '.';
		if (c == '\n')
			out[o++] = '\r';
		out[o++] = c;
		bol = c == '\n';
	}
	return io_write(s, out, o, step_until(s, s->c->t.block)) ? 1 : fail_io(s, "sending the message");
}

/* A reply to RCPT that leaves the recipient for a next transaction once others were accepted:
   452, and 552, which RFC 5321 4.5.3.1.10 says old servers give for too many recipients. */
static int too_many(int code)
{
	return code == 452 || code == 552;
}

/*
 * One transaction for the pending recipients listed in idx[0..k). Returns 1 with each decided or
 * left pending for a next transaction (a 452 or 552 after others were accepted), 0 when the
 * connection broke.
 */
static int transaction(struct smtpc *s, const char *sender, const struct smtpc_msg *m, int utf8,
		       struct smtpc_rcpt *r, const size_t *idx, size_t k)
{
	int pipe = !!(s->ext & SMTPC_PIPELINING);
	struct smtpc_reply mail, rr, data;
	size_t accepted = 0;
	char size[32] = "", dsn[128];
	int mail_ok;

	if (s->ext & SMTPC_SIZE)
		snprintf(size, sizeof size, " SIZE=%llu", m->size);
	mail_dsn(s, m, dsn, sizeof dsn);
	if (!queue_cmd(s, "MAIL FROM:<%s>%s%s%s%s", sender, size,
		       m->eightbit && (s->ext & SMTPC_8BITMIME) ? " BODY=8BITMIME" : "",
		       utf8 ? " SMTPUTF8" : "", dsn))
		return 0;
	s->dirty = 1;
	if (pipe) {
		for (size_t j = 0; j < k; j++)
			if (!queue_rcpt(s, &r[idx[j]]))
				return 0;
		if (!queue_cmd(s, "DATA") || !flush_out(s, s->c->t.mail, "sending MAIL FROM"))
			return 0;
	} else if (!flush_out(s, s->c->t.mail, "sending MAIL FROM")) {
		return 0;
	}
	if (!read_reply(s, s->c->t.mail, &mail, 0, "sending MAIL FROM"))
		return 0;
	mail_ok = mail.code / 100 == 2;
	if (!mail_ok)
		for (size_t j = 0; j < k; j++)
			decide(s, &r[idx[j]], &mail);
	if (!pipe && !mail_ok)
		return 1;
	for (size_t j = 0; j < k; j++) {
		struct smtpc_rcpt *x = &r[idx[j]];
		if (!pipe && (!queue_rcpt(s, x) ||
			      !flush_out(s, s->c->t.rcpt, "sending RCPT TO")))
			return 0;
		if (!read_reply(s, s->c->t.rcpt, &rr, 0, "sending RCPT TO"))
			return 0;
		if (!mail_ok)
			continue;
		if (rr.code / 100 == 2)
			accepted++;
		else if (!too_many(rr.code) || !accepted)
			decide(s, x, &rr);
		/* else too many recipients: they wait for the next transaction */
		x->reply = rr;
	}
	if (!pipe) {
		if (!accepted)
			return 1;
		if (!queue_cmd(s, "DATA") || !flush_out(s, s->c->t.data, "sending DATA"))
			return 0;
	}
	if (!read_reply(s, s->c->t.data, &data, 0, "sending DATA"))
		return 0;
	if (data.code != 354) {
		/* A 4xx or 5xx ends the transaction. Anything else (a 250: no body was sent)
		   leaves the peer in a state we do not know: the mail waits, the connection
		   goes. */
		int odd = data.code / 100 != 4 && data.code / 100 != 5;
		if (odd)
			fail(s, 451, "4.5.0", "%s[%s] sent an unexpected reply to DATA: %d %s",
			     s->host, s->addr, data.code, data.text);
		for (size_t j = 0; j < k && mail_ok; j++)
			if (r[idx[j]].status == SMTPC_PENDING && r[idx[j]].reply.code / 100 == 2)
				decide(s, &r[idx[j]], odd ? &s->why : &data);
		return !odd;
	}
	if (!mail_ok || !accepted) {
		/* A server that says 354 with no recipient (RFC 2920 section 3.1): an empty
		   message ends the transaction. */
		if (!queue_cmd(s, ".") || !command(s, s->c->t.dot, &data, 0, "sending the final dot"))
			return 0;
		s->dirty = 0;
		return 1;
	}
	if (!send_body(s, m) || !read_reply(s, s->c->t.dot, &data, 0, "sending the final dot")) {
		/* The peer may have the message: waiting (a duplicate, perhaps) beats
		   trying another host at once (RFC 5321 section 6.1). */
		for (size_t j = 0; j < k; j++)
			if (r[idx[j]].status == SMTPC_PENDING && r[idx[j]].reply.code / 100 == 2) {
				r[idx[j]].reply = s->why;
				r[idx[j]].status = SMTPC_DEFERRED;
				snprintf(r[idx[j]].where, sizeof r[idx[j]].where, "%s[%s]", s->host,
					 s->addr);
				smtpc_tls_desc(s, r[idx[j]].tls, sizeof r[idx[j]].tls);
			}
		return 0;
	}
	s->dirty = 0;
	for (size_t j = 0; j < k; j++)
		if (r[idx[j]].status == SMTPC_PENDING && r[idx[j]].reply.code / 100 == 2)
			decide(s, &r[idx[j]], &data);
	return 1;
}

int smtpc_send(struct smtpc *s, const char *sender, const struct smtpc_msg *m,
	       struct smtpc_rcpt *r, size_t n)
{
	struct smtpc_reply why;
	int utf8 = nonascii(sender);
	size_t *idx;

	if (s->fd < 0)
		return 0;
	/* Each address checked before it is sent: one a server cannot take fails alone, and
	   never the session (the others' mail would wait for ever behind it). */
	for (size_t i = 0; i < n; i++) {
		if (r[i].status != SMTPC_PENDING)
			continue;
		if (has_controls(r[i].addr) || has_controls(sender)) {
			smtpc_reply_set(&why, 553, "5.1.3", "control characters in the address");
			decide(s, &r[i], &why);
		} else if (strlen(sender) > SMTPC_PATH_MAX) {
			smtpc_reply_set(&why, 553, "5.1.3",
					"sender address longer than %d bytes (RFC 5321 4.5.3.1.3)",
					SMTPC_PATH_MAX);
			decide(s, &r[i], &why);
		} else if (strlen(r[i].addr) > SMTPC_PATH_MAX) {
			smtpc_reply_set(&why, 553, "5.1.3",
					"recipient address longer than %d bytes (RFC 5321 4.5.3.1.3)",
					SMTPC_PATH_MAX);
			decide(s, &r[i], &why);
		} else if (nonascii(r[i].addr)) {
			utf8 = 1;
		}
	}
	if (utf8 && !(s->ext & SMTPC_SMTPUTF8))
		smtpc_reply_set(&why, 553, "5.6.7",
				"SMTPUTF8 is required, but was not offered by %s[%s]", s->host,
				s->addr);
	else if ((s->ext & SMTPC_SIZE) && s->size_max && m->size > s->size_max)
		smtpc_reply_set(&why, 552, "5.3.4",
				"message size %llu exceeds the size limit %llu of %s[%s]", m->size,
				s->size_max, s->host, s->addr);
	else
		why.code = 0;
	if (why.code) {
		for (size_t i = 0; i < n; i++)
			if (r[i].status == SMTPC_PENDING)
				decide(s, &r[i], &why);
		return 1;
	}
	idx = malloc(SMTPC_RCPT_MAX * sizeof *idx);
	if (!idx)
		return fail(s, 451, "4.3.0", "out of memory");
	for (;;) {
		size_t k = 0, before = 0;
		for (size_t i = 0; i < n; i++) {
			if (r[i].status != SMTPC_PENDING)
				continue;
			before++;
			if (k < SMTPC_RCPT_MAX)
				idx[k++] = i;
		}
		if (!k)
			break;
		if (s->dirty) {
			if (!queue_cmd(s, "RSET") ||
			    !command(s, s->c->t.helo, &why, 0, "sending RSET"))
				break;
			if (why.code != 250) {
				fail(s, 421, "4.4.2", "%s[%s] refused RSET: %d %s", s->host, s->addr,
				     why.code, why.text);
				break;
			}
			s->dirty = 0;
		}
		if (!transaction(s, sender, m, utf8, r, idx, k))
			break;
		size_t left = 0;
		for (size_t i = 0; i < n; i++)
			left += r[i].status == SMTPC_PENDING;
		if (left == before) {
			/* Nothing was decided: never loop on a peer that only says 452. */
			for (size_t j = 0; j < k; j++)
				decide(s, &r[idx[j]], &r[idx[j]].reply);
		}
	}
	free(idx);
	return s->fd >= 0;
}

void smtpc_close(struct smtpc *s)
{
	struct smtpc_reply r;

	/* Every answer is in: QUIT is a courtesy, waited for briefly (c->t.quit). */
	if (s->fd >= 0 && queue_cmd(s, "QUIT"))
		(void)command(s, s->c->t.quit, &r, 0, "sending QUIT");
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	tls_client_free(&s->tls);
	s->tls_on = 0;
	sa_free(&s->out);
}
