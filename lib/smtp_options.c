/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "smtp_options.h"

int smtp_timeouts_parse(struct smtpc_timeouts *t, const char *list, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
		{ "connect", offsetof(struct smtpc_timeouts, connect) },
		{ "greeting", offsetof(struct smtpc_timeouts, greeting) },
		{ "helo", offsetof(struct smtpc_timeouts, helo) },
		{ "mail", offsetof(struct smtpc_timeouts, mail) },
		{ "rcpt", offsetof(struct smtpc_timeouts, rcpt) },
		{ "data", offsetof(struct smtpc_timeouts, data) },
		{ "block", offsetof(struct smtpc_timeouts, block) },
		{ "dot", offsetof(struct smtpc_timeouts, dot) },
		{ "quit", offsetof(struct smtpc_timeouts, quit) },
		{ "attempt", offsetof(struct smtpc_timeouts, attempt) },
	};
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		unsigned long long v;
		size_t i;

		for (i = 0; eq && i < sizeof names / sizeof *names; i++)
			if (strlen(names[i].name) == (size_t)(eq - p) &&
			    !memcmp(names[i].name, p, (size_t)(eq - p)))
				break;
		if (!eq || i == sizeof names / sizeof *names ||
		    !scan_ullong(eq + 1, len - (size_t)(eq - p) - 1, &v) || v < 1 || v > 86400) {
			snprintf(why, whylen,
				 "bad timeout '%.*s': NAME=SECONDS (1 to 86400), NAME one of connect "
				 "greeting helo mail rcpt data block dot quit attempt", (int)len, p);
			return 0;
		}
		*(unsigned *)((char *)t + names[i].off) = (unsigned)v;
		p += len + (end != 0);
	}
	return 1;
}

int smtp_relay_parse(const char *spec, char *host, size_t hostlen, unsigned *port, char *why,
		     size_t whylen)
{
	const char *h = spec, *colon = 0;
	size_t hl;
	unsigned long long v = 25;

	if (*spec == '[') {
		const char *close = strchr(spec, ']');
		if (!close || (close[1] && close[1] != ':'))
			goto bad;
		h = spec + 1;
		hl = (size_t)(close - h);
		colon = close[1] ? close + 1 : 0;
	} else {
		colon = strchr(spec, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = 0;	/* a bare IPv6 address */
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (!hl || hl >= hostlen || (colon && (!scan_ullong_str(colon + 1, &v) || !v || v > 65535)))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (unsigned)v;
	return 1;
bad:
	snprintf(why, whylen, "bad relay host '%s': HOST, HOST:PORT or [ADDRESS]:PORT", spec);
	return 0;
}

/* Line number k (0 or 1) of s, without its line end, into out. */
static int line_of(const char *s, int k, char *out)
{
	for (; k > 0; k--) {
		s = strchr(s, '\n');
		if (!s)
			return 0;
		s++;
	}
	size_t n = strcspn(s, "\n");
	if (n && s[n - 1] == '\r')
		n--;
	if (!n || n >= SMTP_CRED_MAX)
		return 0;
	memcpy(out, s, n);
	out[n] = 0;
	return 1;
}

int smtp_credentials_read(const char *file, char *user, char *password, char *why,
			  size_t whylen)
{
	char buf[2 * SMTP_CRED_MAX + 8];
	struct stat st;
	ssize_t got = 0, r;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(why, whylen, "unable to open the credentials file %s: %s", file,
			 strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0 || (st.st_mode & 077)) {
		snprintf(why, whylen,
			 "the credentials file %s may be read or written by others (mode %04o): "
			 "make it 0600 or 0400",
			 file, (unsigned)(st.st_mode & 07777));
		close(fd);
		return 0;
	}
	while ((size_t)got < sizeof buf - 1 &&
	       (r = read(fd, buf + got, sizeof buf - 1 - (size_t)got)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "unable to read %s: %s", file, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof buf);
			return 0;
		}
		got += r;
	}
	close(fd);
	buf[got] = 0;
	int ok = line_of(buf, 0, user) && line_of(buf, 1, password);
	explicit_bzero(buf, sizeof buf);
	if (!ok)
		snprintf(why, whylen,
			 "the credentials file %s must hold a user line and a password line "
			 "(each 1 to %d bytes)", file, SMTP_CRED_MAX - 1);
	return ok;
}

size_t smtp_result_line_size(const struct smtpc_rcpt *r)
{
	/* Escaping makes at most 4 bytes of 1: the address, the text; the rest is bounded. */
	return 4 * strlen(r->addr) + 4 + 4 * SMTPC_TEXT_MAX + 4 + SMTPC_WHERE_MAX +
	       SMTPC_TLS_DESC_MAX + 64;
}

int smtp_result_line(const struct smtpc_rcpt *r, char *out, size_t outsize)
{
	static const char *names[] = { "deferred", "delivered", "deferred", "failed" };
	char text[SMTPC_TEXT_MAX * 4 + 4];
	size_t alen = strlen(r->addr), asize = 4 * alen + 4;
	char *addr = malloc(asize);

	if (!addr)
		return 0;
	/* The address too: a control byte in it would break the line, or fake a second one. */
	log_escape(addr, asize, r->addr, alen);
	log_escape(text, sizeof text, r->reply.text, strlen(r->reply.text));
	int n = snprintf(out, outsize, "%s %s %d %s \"%s\" host=%s tls=%s", addr, names[r->status],
			 r->reply.code, r->reply.enhanced, text, r->where[0] ? r->where : "-",
			 r->tls[0] ? r->tls : "none");
	free(addr);
	if (n < 0 || (size_t)n >= outsize) {
		errno = EMSGSIZE;
		return 0;
	}
	return 1;
}
