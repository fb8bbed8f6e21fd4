/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "fmt.h"
#include "sa.h"
#include "userdb.h"
#include "userdb_build.h"

#define TEXT_MAX (64UL << 20)	/* a users file larger than this is surely a mistake */
#define FIELDS_MAX 8

struct line {
	unsigned long number;
	size_t nfields;
	char *field[FIELDS_MAX];
};

static int bad(struct userdb_text_error *err, unsigned long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct userdb_text_error *err, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->what, sizeof err->what, fmt, ap);
	va_end(ap);
	return -1;
}

static int read_all(int fd, struct sa *text)
{
	for (;;) {
		if (!sa_ready(text, 65536))
			return 0;
		ssize_t r = read(fd, text->s + text->len, 65536);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (r == 0)
			return 1;
		text->len += (size_t)r;
		if (text->len > TEXT_MAX) {
			errno = EFBIG;
			return 0;
		}
	}
}

/* Splits s in place into white-space separated fields; a field starting with '#' ends the line. */
static int split(char *s, struct line *l)
{
	l->nfields = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			*s++ = 0;
		if (!*s || *s == '#')
			return 1;
		if (l->nfields == FIELDS_MAX)
			return 0;
		l->field[l->nfields++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r')
			s++;
	}
}

/* Adds one line of the given pass to b: 1, 0 system error, -1 bad line (why in b->why). */
static int do_line(struct userdb_build *b, int pass, const struct line *l)
{
	const char *what = l->field[0];
	size_t n = l->nfields;

	if (!strcmp(what, "domain")) {
		if (pass != 1)
			return 1;
		if (n != 2) {
			str_copy(b->why, sizeof b->why, "usage: domain NAME");
			return -1;
		}
		return userdb_build_domain(b, l->field[1], 0);
	}
	if (!strcmp(what, "alias-domain")) {
		if (pass != 2)
			return 1;
		if (n != 3) {
			str_copy(b->why, sizeof b->why, "usage: alias-domain ALIAS-DOMAIN TARGET-DOMAIN");
			return -1;
		}
		return userdb_build_domain(b, l->field[1], l->field[2]);
	}
	if (!strcmp(what, "mailbox")) {
		if (pass != 3)
			return 1;
		if (n < 4 || n > 5) {
			str_copy(b->why, sizeof b->why,
				 "usage: mailbox ADDRESS PASSWORD-HASH MAILDIR [QUOTA-BYTES]");
			return -1;
		}
		if (n == 5 && l->field[4][0] == '-') {
			snprintf(b->why, sizeof b->why, "quota is not a number of bytes: %s",
				 l->field[4]);
			return -1;
		}
		return userdb_build_mailbox(b, l->field[1], l->field[2], l->field[3],
					    n == 5 ? l->field[4] : "");
	}
	if (!strcmp(what, "alias")) {
		if (pass != 3)
			return 1;
		if (n != 3) {
			str_copy(b->why, sizeof b->why, "usage: alias ADDRESS TARGET[,TARGET...]");
			return -1;
		}
		return userdb_build_alias(b, l->field[1], l->field[2]);
	}
	snprintf(b->why, sizeof b->why, "unknown directive: %.200s", what);
	return -1;
}

int userdb_text_compile(int fd, struct userdb_build *b, struct userdb_text_error *err)
{
	struct sa text = SA_ZERO;
	int r = 1;

	if (!read_all(fd, &text) || !sa_terminate(&text)) {
		sa_free(&text);
		return 0;
	}
	if (memchr(text.s, 0, text.len)) {
		sa_free(&text);
		return bad(err, 0, "the file contains a NUL byte");
	}
	/*
	 * Pass 1 declares the domains and pass 2 the alias domains, so that lines may come in any
	 * order; pass 3 does the rest.
	 */
	for (int pass = 1; pass <= 3 && r > 0; pass++) {
		char *s = text.s;
		unsigned long number = 1;
		for (; r > 0 && *s; number++) {
			char *nl = strchr(s, '\n');
			size_t len = nl ? (size_t)(nl - s) : strlen(s);
			struct line l = { .number = number };
			/* split() writes NULs: it works on a copy, so later passes see the line whole. */
			char copy[4096];

			if (len >= sizeof copy) {
				r = bad(err, number, "line too long");
				break;
			}
			memcpy(copy, s, len);
			copy[len] = 0;
			s = nl ? nl + 1 : s + len;
			if (!split(copy, &l)) {
				r = bad(err, number, "too many fields");
				break;
			}
			if (l.nfields == 0)
				continue;
			r = do_line(b, pass, &l);
			if (r < 0)
				r = bad(err, number, "%s", b->why);
		}
		if (r > 0 && pass == 2) {
			r = userdb_build_domains_done(b);
			if (r < 0)
				r = bad(err, 0, "%s", b->why);
		}
	}
	sa_free(&text);
	return r;
}
