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

static int domain_known(const struct sa *domains, const char *d)
{
	for (size_t i = 0; i < domains->len; i += strlen(domains->s + i) + 1)
		if (!strcmp(domains->s + i, d))
			return 1;
	return 0;
}

/* Checks an address field: a mailbox in a declared domain ("@domain" too when catchall). */
static int check_address(struct userdb_text_error *err, const struct line *l, char *a,
			 const struct sa *domains, int catchall)
{
	size_t n = strlen(a);

	addr_lower(a, n);
	if (catchall && a[0] == '@') {
		if (addr_check_domain(a + 1, n - 1, ADDR_UTF8) != ADDR_OK)
			return bad(err, l->number, "bad catch-all domain: %s", a);
	} else if (addr_check_mailbox(a, n, ADDR_UTF8) != ADDR_OK) {
		return bad(err, l->number, "bad address: %s", a);
	}
	const char *domain = a + addr_at(a, n) + 1;
	if (!domain_known(domains, domain))
		return bad(err, l->number, "domain %s is not declared by a domain line", domain);
	return 1;
}

static int do_mailbox(struct userdb_make *m, struct userdb_text_error *err, struct line *l,
		      const struct sa *domains)
{
	unsigned long long quota = 0;

	if (l->nfields < 4 || l->nfields > 5)
		return bad(err, l->number, "usage: mailbox ADDRESS PASSWORD-HASH MAILDIR [QUOTA-BYTES]");
	if (check_address(err, l, l->field[1], domains, 0) < 0)
		return -1;
	if (!userdb_maildir_safe(l->field[3], strlen(l->field[3])))
		return bad(err, l->number, "maildir must be relative to MAILROOT, without ..: %s",
			   l->field[3]);
	if (l->nfields == 5 && !scan_ullong_str(l->field[4], &quota))
		return bad(err, l->number, "quota is not a number of bytes: %s", l->field[4]);
	int r = userdb_make_mailbox(m, l->field[1], strlen(l->field[1]), l->field[2], l->field[3],
				    quota);
	if (r < 0)
		return bad(err, l->number, "mailbox %s is defined twice", l->field[1]);
	return r;
}

static int do_alias(struct userdb_make *m, struct userdb_text_error *err, struct line *l,
		    const struct sa *domains)
{
	struct sa targets = SA_ZERO;
	int r;

	if (l->nfields != 3)
		return bad(err, l->number, "usage: alias ADDRESS TARGET[,TARGET...]");
	if (check_address(err, l, l->field[1], domains, 1) < 0)
		return -1;
	for (char *t = l->field[2], *end; t; t = end) {
		end = strchr(t, ',');
		size_t n = end ? (size_t)(end - t) : strlen(t);
		if (end)
			end++;
		if (addr_check_mailbox(t, n, ADDR_UTF8) != ADDR_OK) {
			sa_free(&targets);
			return bad(err, l->number, "bad alias target: %.*s", (int)n, t);
		}
		if (!sa_catb(&targets, t, n) || !sa_cat0(&targets)) {
			sa_free(&targets);
			return 0;
		}
	}
	r = userdb_make_alias(m, l->field[1], strlen(l->field[1]), targets.s, targets.len);
	sa_free(&targets);
	if (r < 0)
		return bad(err, l->number, "alias %s is defined twice", l->field[1]);
	return r;
}

int userdb_text_compile(int fd, struct userdb_make *m, struct userdb_text_error *err)
{
	struct sa text = SA_ZERO;
	struct sa domains = SA_ZERO;
	int r = 1;

	if (!read_all(fd, &text) || !sa_terminate(&text)) {
		sa_free(&text);
		return 0;
	}
	if (memchr(text.s, 0, text.len)) {
		sa_free(&text);
		return bad(err, 0, "the file contains a NUL byte");
	}
	/* Pass 1 declares the domains, so that lines may come in any order; pass 2 does the rest. */
	for (int pass = 1; pass <= 2 && r > 0; pass++) {
		char *s = text.s;
		for (unsigned long number = 1; r > 0 && *s; number++) {
			char *nl = strchr(s, '\n');
			char *next = nl ? nl + 1 : s + strlen(s);
			struct line l = { .number = number };
			char saved = nl ? '\n' : 0;

			if (nl)
				*nl = 0;
			/* split() writes NULs; work on a copy of the line so pass 2 sees it whole. */
			char copy[4096];
			size_t len = strlen(s);
			if (len >= sizeof copy) {
				r = bad(err, number, "line too long");
				break;
			}
			memcpy(copy, s, len + 1);
			if (nl)
				*nl = saved;
			s = next;
			if (!split(copy, &l)) {
				r = bad(err, number, "too many fields");
				break;
			}
			if (l.nfields == 0)
				continue;
			const char *what = l.field[0];
			if (!strcmp(what, "domain")) {
				if (pass == 2)
					continue;
				if (l.nfields != 2)
					r = bad(err, number, "usage: domain NAME");
				else {
					size_t n = strlen(l.field[1]);
					addr_lower(l.field[1], n);
					if (addr_check_domain(l.field[1], n, ADDR_UTF8) != ADDR_OK)
						r = bad(err, number, "bad domain name: %s", l.field[1]);
					else if (!domain_known(&domains, l.field[1]))
						r = sa_catb(&domains, l.field[1], n + 1) &&
						    userdb_make_domain(m, l.field[1], n);
				}
			} else if (!strcmp(what, "mailbox")) {
				if (pass == 2)
					r = do_mailbox(m, err, &l, &domains);
			} else if (!strcmp(what, "alias")) {
				if (pass == 2)
					r = do_alias(m, err, &l, &domains);
			} else {
				r = bad(err, number, "unknown directive: %s", what);
			}
		}
	}
	sa_free(&text);
	sa_free(&domains);
	return r;
}
