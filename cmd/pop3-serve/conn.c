/* postroom: ISC license, see LICENSE. */
/*
 * The connection's I/O, shared by the pre-login and the authenticated process: buffered output,
 * and reading command lines with their limits (length, time, errors in a row).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "getln.h"
#include "log.h"
#include "pop3-serve.h"

void conn_init(struct conn *c, const struct config *cf)
{
	c->cf = cf;
	buf_init(&c->in, 0, c->inspace, sizeof c->inspace);
	buf_init(&c->out, 1, c->outspace, sizeof c->outspace);
	c->in.timeout_ms = (int)(cf->timeout * 1000);
	c->out.timeout_ms = (int)(cf->timeout * 1000);
	/* Replies go out before we wait for more commands (PIPELINING, RFC 2449). */
	c->in.flush_first = &c->out;
	c->bad_in_a_row = 0;
	c->end_ms = 0;
}

void out_bytes(struct conn *c, const char *s, size_t n)
{
	if (!buf_put(&c->out, s, n))
		exit(0);	/* the client stopped reading or left */
}

void out(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int ok = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (!ok)
		exit(0);	/* the client stopped reading or left */
}

void out_flush(struct conn *c)
{
	if (!buf_flush(&c->out))
		exit(0);
}

void out_err(struct conn *c, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (++c->bad_in_a_row >= c->cf->bad_commands) {
		out(c, "-ERR Too many bad commands\r\n");
		out_flush(c);
		log_line("closed: too many bad commands");
		exit(0);
	}
	out(c, "-ERR %s\r\n", text);
}

void out_capa_common(struct conn *c)
{
	out(c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	out(c, "EXPIRE %s\r\n", c->cf->expire_at_once ? "0" : "NEVER");
	if (c->cf->login_delay)
		out(c, "LOGIN-DELAY %lu\r\n", c->cf->login_delay);
	out(c, "IMPLEMENTATION postroom\r\n");
}

/* Splits the line into words at single spaces, as RFC 1939's commands are written; a fifth
   word makes nargs 5, which no command takes. */
static void split(struct conn *c)
{
	char *p = c->line;

	c->nargs = 0;
	memset(c->arg, 0, sizeof c->arg);
	while (*p) {
		if (c->nargs == sizeof c->arg / sizeof c->arg[0]) {
			c->nargs++;
			break;
		}
		c->arg[c->nargs++] = p;
		char *sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = 0;
		p = sp + 1;
	}
	for (p = c->arg[0]; p && *p; p++)
		*p = (char)toupper((unsigned char)*p);
}

int conn_next(struct conn *c)
{
	for (;;) {
		size_t n;
		errno = 0;
		/* The whole line within the timeout, not each byte of it, and the login within
		   its own. */
		c->in.deadline_ms = deadline_in((unsigned)c->cf->timeout);
		if (c->end_ms && c->end_ms < c->in.deadline_ms)
			c->in.deadline_ms = c->end_ms;
		enum getln_result r = getln(&c->in, c->line, POP3_LINE_MAX + 2, &n, '\n');
		switch (r) {
		case GETLN_OK:
			break;
		case GETLN_TOOLONG:
			out_err(c, "Line too long");
			continue;
		case GETLN_ERR:
			if (errno == ETIMEDOUT) {
				out(c, "-ERR Disconnected for inactivity\r\n");
				buf_flush(&c->out);
				log_line("closed: timed out");
			}
			return 0;
		case GETLN_EOF:
		default:
			return 0;
		}
		while (n && (c->line[n - 1] == '\n' || c->line[n - 1] == '\r'))
			n--;
		c->line[n] = 0;
		c->len = n;
		if (memchr(c->line, 0, n)) {
			out_err(c, "NUL in command");
			continue;
		}
		split(c);
		if (!c->nargs) {
			out_err(c, "Empty command");
			continue;
		}
		return 1;
	}
}

int conn_is(const struct conn *c, const char *verb)
{
	return c->nargs && !strcmp(c->arg[0], verb);
}

char *conn_rest(struct conn *c, size_t *len)
{
	if (c->nargs < 2) {
		*len = 0;
		return c->line + c->len;
	}
	char *rest = c->arg[1];
	*len = (size_t)(c->line + c->len - rest);
	for (size_t i = 0; i < *len; i++)
		if (!rest[i])
			rest[i] = ' ';
	return rest;
}
