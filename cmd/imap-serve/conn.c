/* postroom: ISC license, see LICENSE. */
/*
 * The connection's I/O, shared by the pre-login and the authenticated process: buffered output,
 * IMAP strings, and reading commands with every limit, answering what cannot be a command.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadline.h"
#include "imap-serve.h"
#include "log.h"

void conn_init(struct conn *c, const struct config *cf, unsigned long timeout)
{
	buf_init(&c->in, 0, c->inspace, sizeof c->inspace);
	buf_init(&c->out, 1, c->outspace, sizeof c->outspace);
	c->in.timeout_ms = (int)(timeout * 1000);
	c->out.timeout_ms = (int)(timeout * 1000);
	c->in.flush_first = &c->out;
	c->limits = (struct imap_limits){
		.line_max = 65536,		/* Dovecot's imap_max_line_length */
		.literal_max = 65536,
		.append_max = cf->appendlimit,
		/* the messages of one MULTIAPPEND together, in memory at once */
		.append_total = cf->appendlimit > APPEND_TOTAL_MIN ? cf->appendlimit
								    : APPEND_TOTAL_MIN,
		/* an APPEND over APPENDLIMIT is skipped, up to the largest limit one may set */
		.discard_max = 1ULL << 30,
		.tokens_max = 20000,
		.depth_max = 64,
	};
	c->bad_in_a_row = 0;
	c->timeout = timeout;
	c->compress = 0;
}

_Noreturn static void gone(void)
{
	/* The client stopped reading or left: nothing more to say to it. */
	exit(0);
}

void out_bytes(struct conn *c, const char *s, size_t n)
{
	if (!buf_put(&c->out, s, n))
		gone();
}

void out(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int ok = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (!ok)
		gone();
}

void out_string(struct conn *c, const char *s, size_t n)
{
	if (!s) {
		out_bytes(c, "NIL", 3);
		return;
	}
	int quotable = n < 1024;
	for (size_t i = 0; quotable && i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == 0 || ch == '\r' || ch == '\n' || ch >= 0x80)
			quotable = 0;
	}
	if (!quotable) {
		out(c, "{%zu}\r\n", n);
		out_bytes(c, s, n);
		return;
	}
	out_bytes(c, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out_bytes(c, "\\", 1);
		out_bytes(c, s + i, 1);
	}
	out_bytes(c, "\"", 1);
}

void out_flush(struct conn *c)
{
	if (!buf_flush(&c->out))
		gone();
}

const char *conn_tag(struct conn *c)
{
	static char tag[128];
	if (!c->cmd.ntok || c->cmd.tok[0].type != IMAP_ATOM ||
	    !imap_tok_cstr(&c->cmd, 0, tag, sizeof tag))
		return "*";
	/* A tag is astring characters but '+' (RFC 3501's tag rule): none of the wildcards or
	   the backslash, which an atom of ours may hold; else answer untagged. */
	if (strpbrk(tag, "+[%*\\"))
		return "*";
	return tag;
}

void bad(struct conn *c, const struct config *cf, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	out(c, "%s BAD %s\r\n", conn_tag(c), text);
	if (++c->bad_in_a_row >= cf->bad_commands) {
		out(c, "* BYE Too many bad commands\r\n");
		out_flush(c);
		log_line("closed: too many bad commands");
		exit(0);
	}
}

void conn_input_failed(struct conn *c)
{
	if (errno != EPROTO)
		return;
	/* Our side of the stream still works: the client may learn why. */
	log_line("closed: compressed input not valid");
	out(c, "* BYE Compressed input not valid\r\n");
	buf_flush(&c->out);
}

int conn_next(struct conn *c, const struct config *cf)
{
	char why[256];

	for (;;) {
		errno = 0;
		/* The whole command within the timeout, not each byte of it: a client that drips
		   a byte a minute holds no session for ever. */
		c->in.deadline_ms = deadline_in((unsigned)c->timeout);
		enum imap_read_result r = imap_cmd_read(&c->cmd, &c->in, &c->out, &c->limits, why,
							sizeof why);
		switch (r) {
		case IMAP_READ_OK:
			if (c->cmd.ntok == 0)
				continue;	/* an empty line: nothing to answer */
			if (c->cmd.ntok < 2 || c->cmd.tok[1].type != IMAP_ATOM ||
			    !strcmp(conn_tag(c), "*")) {
				bad(c, cf, "Error in IMAP command received by server");
				continue;
			}
			return 1;
		case IMAP_READ_BAD:
			bad(c, cf, "%s", why);
			continue;
		case IMAP_READ_TOOBIG:
			out(c, "%s NO [TOOBIG] %s\r\n", conn_tag(c), why);
			continue;
		case IMAP_READ_TOOBIG_CLOSE:
			out(c, "%s BAD [TOOBIG] %s\r\n", conn_tag(c), why);
			/* what follows is the literal's bytes, not commands */
			__attribute__((fallthrough));
		case IMAP_READ_FATAL:
			out(c, "* BYE %s\r\n", why);
			out_flush(c);
			log_line("closed: %s", why);
			return 0;
		case IMAP_READ_EOF:
		default:
			if (errno == ETIMEDOUT) {
				out(c, "* BYE Disconnected for inactivity\r\n");
				buf_flush(&c->out);
				log_line("closed: timed out");
			}
			conn_input_failed(c);
			return 0;
		}
	}
}
