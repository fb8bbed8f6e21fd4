/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fmt.h"
#include "log.h"
#include "sa.h"
#include "userdb_build.h"

static int bad(struct userdb_build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct userdb_build *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->why, sizeof b->why, fmt, ap);
	va_end(ap);
	return -1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct userdb_build_domain *)a)->name,
		      ((const struct userdb_build_domain *)b)->name);
}

/* The declared domain name, or 0. A search once the list is sorted: every address of the
 * database asks. */
static struct userdb_build_domain *find_domain(const struct userdb_build *b, const char *name)
{
	if (b->domains_sorted && b->ndomains) {	/* bsearch and qsort take no null array */
		struct userdb_build_domain key;
		str_copy(key.name, sizeof key.name, name);
		return bsearch(&key, b->domains, b->ndomains, sizeof *b->domains, by_name);
	}
	for (size_t i = 0; i < b->ndomains; i++)
		if (!strcmp(b->domains[i].name, name))
			return &b->domains[i];
	return 0;
}

int userdb_build_start(struct userdb_build *b, const char *path)
{
	b->nmailboxes = b->naliases = b->skipped = 0;
	b->why[0] = 0;
	return userdb_make_start(&b->make, path);
}

/* Copies a domain name, lower-cased and checked, into out (ADDR_DOMAIN_MAX + 1 bytes). */
static int domain_name(struct userdb_build *b, const char *name, char *out, const char *what)
{
	size_t n = strlen(name);

	if (n > ADDR_DOMAIN_MAX || addr_check_domain(name, n, ADDR_UTF8) != ADDR_OK)
		return bad(b, "bad %s name: %s", what, name);
	memcpy(out, name, n + 1);
	addr_lower(out, n);
	return 1;
}

int userdb_build_domain(struct userdb_build *b, const char *name, const char *target)
{
	char d[ADDR_DOMAIN_MAX + 1], t[ADDR_DOMAIN_MAX + 1] = "";

	if (domain_name(b, name, d, "domain") < 0)
		return -1;
	if (target && *target) {
		if (domain_name(b, target, t, "target domain") < 0)
			return -1;
		const struct userdb_build_domain *td = find_domain(b, t);
		if (!td)
			return bad(b, "alias domain %s: target %s is not a domain", d, t);
		if (*td->target)
			return bad(b, "alias domain %s: target %s is itself an alias domain", d, t);
		if (!strcmp(d, t))
			return bad(b, "alias domain %s points at itself", d);
	}
	struct userdb_build_domain *old = find_domain(b, d);
	if (old) {
		if (!*t || !strcmp(old->target, t))
			return 1;
		if (*old->target)
			return bad(b, "alias domain %s is declared twice", d);
		/* A plain domain that is also an alias domain, as PostfixAdmin keeps them. */
		memcpy(old->target, t, sizeof t);
		return 1;
	}
	if (b->ndomains == b->domains_cap) {
		size_t cap = b->domains_cap ? 2 * b->domains_cap : 16;
		struct userdb_build_domain *more = realloc(b->domains, cap * sizeof *more);
		if (!more)
			return 0;
		b->domains = more;
		b->domains_cap = cap;
	}
	struct userdb_build_domain *nd = &b->domains[b->ndomains++];
	memcpy(nd->name, d, sizeof d);
	memcpy(nd->target, t, sizeof t);
	return 1;
}

int userdb_build_domains_done(struct userdb_build *b)
{
	if (b->ndomains)
		qsort(b->domains, b->ndomains, sizeof *b->domains, by_name);
	b->domains_sorted = 1;
	for (size_t i = 0; i < b->ndomains; i++) {
		struct userdb_build_domain *d = &b->domains[i];
		const struct userdb_build_domain *td = *d->target ? find_domain(b, d->target) : 0;
		if (td && *td->target) {
			if (!b->lenient)
				return bad(b, "alias domain %s: target %s is itself an alias domain",
					   d->name, d->target);
			log_line("skipping a row: alias domain %s: target %s is itself an alias domain; "
				 "%s stays a plain domain", d->name, d->target, d->name);
			b->skipped++;
			d->target[0] = 0;
		}
	}
	for (size_t i = 0; i < b->ndomains; i++) {
		const struct userdb_build_domain *d = &b->domains[i];
		if (userdb_make_domain(&b->make, d->name, strlen(d->name), d->target,
				       strlen(d->target)) != 1)
			return 0;
	}
	return 1;
}

/* Copies an address, lower-cased and checked, into out (USERDB_KEY_MAX bytes): local@domain
 * (or @domain when catchall) in a declared domain. */
static int address(struct userdb_build *b, const char *a, char *out, int catchall)
{
	size_t n = strlen(a);

	if (n >= USERDB_KEY_MAX)
		return bad(b, "address too long: %.40s...", a);
	memcpy(out, a, n + 1);
	addr_lower(out, n);
	if (catchall && out[0] == '@') {
		if (addr_check_domain(out + 1, n - 1, ADDR_UTF8) != ADDR_OK)
			return bad(b, "bad catch-all domain: %s", out);
	} else if (addr_check_mailbox(out, n, ADDR_UTF8) != ADDR_OK) {
		return bad(b, "bad address: %s", out);
	}
	const char *domain = out + addr_at(out, n) + 1;
	if (!find_domain(b, domain))
		return bad(b, "domain %s is not a local domain", domain);
	return 1;
}

int userdb_build_mailbox(struct userdb_build *b, const char *addr, const char *password,
			 const char *maildir, const char *quota)
{
	char a[USERDB_KEY_MAX];
	unsigned long long q = 0;

	if (address(b, addr, a, 0) < 0)
		return -1;
	if (!userdb_maildir_safe(maildir, strlen(maildir)))
		return bad(b, "%s: maildir must be relative to MAILROOT, without ..: %s", a, maildir);
	if (quota && *quota) {
		const char *digits = *quota == '-' ? quota + 1 : quota;
		if (!scan_ullong_str(digits, &q))
			return bad(b, "%s: quota is not a number of bytes: %s", a, quota);
		if (*quota == '-')
			q = 0;
	}
	int r = userdb_make_mailbox(&b->make, a, strlen(a), password, maildir, q);
	if (r < 0)
		return bad(b, "mailbox %s is defined twice", a);
	if (r > 0)
		b->nmailboxes++;
	return r;
}

int userdb_build_alias(struct userdb_build *b, const char *addr, const char *targets)
{
	char a[USERDB_KEY_MAX];
	struct sa list = SA_ZERO;
	int r = 1;

	if (address(b, addr, a, 1) < 0)
		return -1;
	for (const char *t = targets; r > 0;) {
		const char *end = strchr(t, ',');
		size_t n = end ? (size_t)(end - t) : strlen(t);
		while (n && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n'))
			t++, n--;
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' ||
			     t[n - 1] == '\n'))
			n--;
		if (addr_check_mailbox(t, n, ADDR_UTF8) != ADDR_OK)
			r = bad(b, "%s: bad alias target: %.*s", a, (int)(n > 200 ? 200 : n), t);
		else if (!sa_catb(&list, t, n) || !sa_cat0(&list))
			r = 0;
		if (!end)
			break;
		t = end + 1;
	}
	if (r > 0) {
		r = userdb_make_alias(&b->make, a, strlen(a), list.s, list.len);
		if (r < 0)
			r = bad(b, "alias %s is defined twice", a);
		if (r > 0)
			b->naliases++;
	}
	sa_free(&list);
	return r;
}

int userdb_build_stamp(struct userdb_build *b, const char *stamp, size_t n)
{
	return userdb_make_stamp(&b->make, stamp, n);
}

static void free_domains(struct userdb_build *b)
{
	free(b->domains);
	b->domains = 0;
	b->ndomains = b->domains_cap = 0;
	b->domains_sorted = 0;
}

int userdb_build_finish(struct userdb_build *b)
{
	free_domains(b);
	return userdb_make_finish(&b->make);
}

void userdb_build_abort(struct userdb_build *b)
{
	free_domains(b);
	userdb_make_abort(&b->make);
}
