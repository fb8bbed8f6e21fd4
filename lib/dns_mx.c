/* postroom: ISC license, see LICENSE. */
/*
 * The addresses to try for a mail domain, as RFC 5321 section 5.1 orders them, over
 * dns_lookup. What a sender must not bounce on (a name server down, MX hosts that have no
 * address yet) is DNS_TEMP; only what the domain itself says for ever (NXDOMAIN, a null MX,
 * no MX and no address) is DNS_PERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "dns-internal.h"

struct host {
	unsigned preference;
	char name[DNS_NAME_MAX + 1];
};

void mx_list_free(struct mx_list *l)
{
	free(l->a);
	l->a = 0;
	l->n = l->cap = 0;
}

void mx_skips_free(struct mx_skips *s)
{
	free(s->s);
	s->s = 0;
	s->n = s->cap = 0;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 1;
	size_t c = *cap ? *cap * 2 : 8;
	void *q = reallocarray(*p, c, size);
	if (!q)
		return 0;
	*p = q;
	*cap = c;
	return 1;
}

static int add_address(struct mx_list *l, unsigned preference, const char *host, int family,
		       const void *addr)
{
	if (!grow((void **)&l->a, &l->cap, l->n, sizeof *l->a))
		return 0;
	struct mx_address *a = &l->a[l->n++];
	memset(a, 0, sizeof *a);
	a->preference = preference;
	snprintf(a->host, sizeof a->host, "%s", host);
	a->family = family;
	if (family == AF_INET)
		memcpy(&a->addr.v4, addr, sizeof a->addr.v4);
	else
		memcpy(&a->addr.v6, addr, sizeof a->addr.v6);
	return 1;
}

static int add_skip(struct mx_skips *s, const struct host *h, enum mx_skip_reason reason,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int add_skip(struct mx_skips *s, const struct host *h, enum mx_skip_reason reason,
		    const char *fmt, ...)
{
	va_list ap;

	if (!s)
		return 1;
	if (!grow((void **)&s->s, &s->cap, s->n, sizeof *s->s))
		return 0;
	struct mx_skip *k = &s->s[s->n++];
	k->preference = h->preference;
	snprintf(k->host, sizeof k->host, "%s", h->name);
	k->reason = reason;
	va_start(ap, fmt);
	vsnprintf(k->why, sizeof k->why, fmt, ap);
	va_end(ap);
	return 1;
}

/* A seed that differs on every run, so that equal-preference hosts share the load (RFC 5321
 * section 5.1). Not for secrets: the order only has to vary. */
static uint64_t random_seed(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
		return s;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, &s, sizeof s);
		close(fd);
		if (n == (ssize_t)sizeof s)
			return s;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid() << 40;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static int by_preference(const void *a, const void *b)
{
	unsigned x = ((const struct host *)a)->preference, y = ((const struct host *)b)->preference;
	return x < y ? -1 : x > y;
}

/* Sorted by preference, each run of equal preference in a random order (Fisher-Yates). */
static void order_hosts(struct host *h, size_t n)
{
	uint64_t seed = random_seed();

	qsort(h, n, sizeof *h, by_preference);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && h[j].preference == h[i].preference)
			j++;
		for (size_t k = j - 1; k > i; k--) {
			size_t r = i + (size_t)(splitmix64(&seed) % (k - i + 1));
			struct host t = h[k];
			h[k] = h[r];
			h[r] = t;
		}
		i = j;
	}
}

/* 192.0.2.1, 2001:db8::1 or [...] where a host name belongs. */
static int is_address_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return host[0] == '[' || inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Letters, digits, '-' and '_' (some MX hosts have one), labels of 1 to 63. */
static int is_host_name(const char *s)
{
	size_t label = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			   (*s >= '0' && *s <= '9') || *s == '-' || *s == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* [192.0.2.1] or [IPv6:2001:db8::1] (RFC 5321 section 4.1.3): that address, no DNS. */
static enum dns_status literal(const struct dns_config *c, const char *domain, struct mx_list *out,
			       char *why, size_t whylen)
{
	size_t n = strlen(domain);
	char inner[64], host[DNS_NAME_MAX + 1], text[INET6_ADDRSTRLEN];
	unsigned char a[sizeof(struct in6_addr)];
	int family = AF_INET;

	if (n < 3 || domain[n - 1] != ']' || n - 2 >= sizeof inner) {
		snprintf(why, whylen, "%.*s: not an address literal", DNS_NAME_MAX, domain);
		return DNS_PERM;
	}
	memcpy(inner, domain + 1, n - 2);
	inner[n - 2] = 0;
	const char *p = inner;
	if (strncasecmp(p, "IPv6:", 5) == 0) {
		family = AF_INET6;
		p += 5;
	}
	if (inet_pton(family, p, a) != 1) {
		snprintf(why, whylen, "%s: not an address literal", domain);
		return DNS_PERM;
	}
	if (c->family != AF_UNSPEC && c->family != family) {
		snprintf(why, whylen, "%s: an IPv%c address, and only IPv%c was asked for", domain,
			 family == AF_INET ? '4' : '6', c->family == AF_INET ? '4' : '6');
		return DNS_TEMP;
	}
	inet_ntop(family, a, text, sizeof text);
	snprintf(host, sizeof host, "[%s%s]", family == AF_INET6 ? "IPv6:" : "", text);
	if (!add_address(out, 0, host, family, a)) {
		snprintf(why, whylen, "out of memory");
		return DNS_TEMP;
	}
	out->a[out->n - 1].literal = 1;
	return DNS_OK;
}

/*
 * The addresses of one host, IPv6 first, of the families asked. Returns 1 when the lookups
 * ended (some found or none), 0 on a temporary failure (why says) or ENOMEM.
 */
static int host_addresses(struct dns_resolver *r, const struct dns_config *c, const struct host *h,
			  struct mx_list *out, size_t *added, char *why, size_t whylen)
{
	static const struct { int family; unsigned type; } order[] = {
		{ AF_INET6, ns_t_aaaa }, { AF_INET, ns_t_a },
	};
	int temp = 0;

	*added = 0;
	for (size_t f = 0; f < 2; f++) {
		if (c->family != AF_UNSPEC && c->family != order[f].family)
			continue;
		struct dns_rrs rrs = DNS_RRS_ZERO;
		char w[256];
		switch (dns_lookup(r, h->name, order[f].type, &rrs, w, sizeof w)) {
		case DNS_FOUND:
			for (size_t i = 0; i < rrs.n && i < DNS_ADDR_MAX; i++) {
				const void *a = order[f].family == AF_INET ? (const void *)&rrs.rr[i].u.a
									   : (const void *)&rrs.rr[i].u.aaaa;
				if (!add_address(out, h->preference, h->name, order[f].family, a)) {
					dns_rrs_free(&rrs);
					snprintf(why, whylen, "out of memory");
					errno = ENOMEM;
					return 0;
				}
				(*added)++;
			}
			break;
		case DNS_NODATA:
		case DNS_NXDOMAIN:
			break;
		case DNS_FAILED:
			if (!temp)
				snprintf(why, whylen, "%s", w);
			temp = 1;
			break;
		}
		dns_rrs_free(&rrs);
	}
	if (temp && *added == 0) {
		errno = EAGAIN;
		return 0;
	}
	return 1;
}

static const char *families(const struct dns_config *c)
{
	return c->family == AF_INET ? "A" : c->family == AF_INET6 ? "AAAA" : "AAAA or A";
}

/* The MX hosts of domain (at most DNS_MX_MAX, each once), ordered; *n 0 for no MX at all. */
static enum dns_status mx_hosts(struct dns_resolver *r, const char *domain, struct host **hosts,
				size_t *n, struct mx_skips *skipped, int *null_mx, char *why,
				size_t whylen)
{
	struct dns_rrs rrs = DNS_RRS_ZERO;
	size_t nulls = 0;

	*hosts = 0;
	*n = 0;
	switch (dns_lookup(r, domain, ns_t_mx, &rrs, why, whylen)) {
	case DNS_NODATA:
		return DNS_OK;
	case DNS_NXDOMAIN:
		return DNS_PERM;
	case DNS_FAILED:
		return DNS_TEMP;
	case DNS_FOUND:
		break;
	}
	struct host *h = calloc(rrs.n, sizeof *h);
	if (!h) {
		dns_rrs_free(&rrs);
		snprintf(why, whylen, "out of memory");
		return DNS_TEMP;
	}
	size_t k = 0;
	for (size_t i = 0; i < rrs.n; i++) {
		h[k].preference = rrs.rr[i].u.mx.preference;
		memcpy(h[k].name, rrs.rr[i].u.mx.host, sizeof h[k].name);
		if (!h[k].name[0])
			nulls++;
		k++;
	}
	dns_rrs_free(&rrs);
	if (nulls == k) {
		free(h);
		*null_mx = 1;
		snprintf(why, whylen, "%s does not accept mail (null MX, RFC 7505)", domain);
		return DNS_PERM;
	}
	order_hosts(h, k);
	/* Each name once, at its best preference; the null MX out; then the bound. */
	size_t m = 0;
	for (size_t i = 0; i < k && m < DNS_MX_MAX; i++) {
		size_t j;
		if (!h[i].name[0]) {
			struct host dot = { h[i].preference, "." };
			if (!add_skip(skipped, &dot, MX_SKIP_NULL, "a null MX among other MX records")) {
				free(h);
				snprintf(why, whylen, "out of memory");
				return DNS_TEMP;
			}
			continue;
		}
		for (j = 0; j < m && strcmp(h[j].name, h[i].name) != 0; j++)
			;
		if (j == m)
			h[m++] = h[i];
	}
	*hosts = h;
	*n = m;
	return DNS_OK;
}

/* Appends s to the string in buf (size bytes), cut when full: it only feeds a log line. */
static void cat_cut(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf), k = strlen(s);

	if (k > size - 1 - n)
		k = size - 1 - n;
	memcpy(buf + n, s, k);
	buf[n + k] = 0;
}

/* No address for the domain with no MX: permanent, unless only the family not asked for has one
 * (a -4 or -6 choice of ours, not the domain's). */
static enum dns_status implicit_none(struct dns_resolver *r, const struct dns_config *c,
				     const char *domain, char *why, size_t whylen)
{
	if (c->family != AF_UNSPEC) {
		struct dns_rrs rrs = DNS_RRS_ZERO;
		char w[256];
		unsigned other = c->family == AF_INET ? ns_t_aaaa : ns_t_a;
		enum dns_answer a = dns_lookup(r, domain, other, &rrs, w, sizeof w);
		dns_rrs_free(&rrs);
		if (a == DNS_FOUND) {
			snprintf(why, whylen, "%s has no MX and only IPv%c addresses, and IPv%c only was asked for",
				 domain, c->family == AF_INET ? '6' : '4', c->family == AF_INET ? '4' : '6');
			return DNS_TEMP;
		}
	}
	snprintf(why, whylen, "%s has no MX and no %s record", domain, families(c));
	return DNS_PERM;
}

enum dns_status mx_lookup_skips(const struct dns_config *c, const char *domain, struct mx_list *out,
				struct mx_skips *skipped, char *why, size_t whylen)
{
	char dom[DNS_NAME_MAX + 1];
	struct host *hosts = 0;
	size_t n = 0;
	enum dns_status st;

	if (whylen)
		why[0] = 0;
	out->n = 0;
	out->null_mx = 0;
	if (domain[0] == '[')
		return literal(c, domain, out, why, whylen);
	if (!dns_name_copy(dom, domain) || !is_host_name(dom)) {
		snprintf(why, whylen, "%.*s: not a valid domain name", DNS_NAME_MAX, domain);
		return DNS_PERM;
	}
	struct dns_resolver *r = dns_open(c, why, whylen);
	if (!r)
		return DNS_TEMP;
	st = mx_hosts(r, dom, &hosts, &n, skipped, &out->null_mx, why, whylen);
	if (st != DNS_OK)
		goto done;

	int implicit = n == 0;
	struct host self = { 0, "" };
	if (implicit) {	/* RFC 5321 section 5.1: the domain as its own MX, preference 0 */
		memcpy(self.name, dom, sizeof dom);
		hosts = realloc(hosts, sizeof *hosts);
		if (!hosts) {
			snprintf(why, whylen, "out of memory");
			st = DNS_TEMP;
			goto done;
		}
		hosts[0] = self;
		n = 1;
	}

	/* Why each MX host was passed over, for the one line of a failure with none left. */
	char tempwhy[256] = "", notes[512] = "", note[DNS_NAME_MAX + 300];
	size_t asked = 0;	/* hosts whose addresses were looked up */
	for (size_t i = 0; i < n && out->n < DNS_ADDRESSES_MAX && asked < DNS_HOSTS_MAX; i++) {
		const struct host *h = &hosts[i];
		size_t added;
		int ok = 1;
		note[0] = 0;
		if (is_address_literal(h->name)) {
			ok = add_skip(skipped, h, MX_SKIP_LITERAL, "an address literal, not a host name");
			snprintf(note, sizeof note, "%s: an address literal", h->name);
		} else if (!is_host_name(h->name)) {
			ok = add_skip(skipped, h, MX_SKIP_MALFORMED, "not a host name");
			snprintf(note, sizeof note, "%s: not a host name", h->name);
		} else if (asked++, !host_addresses(r, c, h, out, &added, tempwhy, sizeof tempwhy)) {
			if (errno == ENOMEM) {
				snprintf(why, whylen, "out of memory");
				st = DNS_TEMP;
				goto done;
			}
			if (!implicit)
				ok = add_skip(skipped, h, MX_SKIP_TEMP, "%s", tempwhy);
			snprintf(note, sizeof note, "%s", tempwhy);
		} else if (added == 0 && !implicit) {
			ok = add_skip(skipped, h, MX_SKIP_NOADDRESS, "no %s record", families(c));
			snprintf(note, sizeof note, "%s: no %s record", h->name, families(c));
		}
		if (!ok) {
			snprintf(why, whylen, "out of memory");
			st = DNS_TEMP;
			goto done;
		}
		if (note[0]) {
			if (notes[0])
				cat_cut(notes, sizeof notes, "; ");
			cat_cut(notes, sizeof notes, note);
		}
	}
	if (out->n > DNS_ADDRESSES_MAX)
		out->n = DNS_ADDRESSES_MAX;
	if (out->n > 0) {
		st = DNS_OK;
	} else if (implicit && tempwhy[0]) {
		snprintf(why, whylen, "%s", tempwhy);
		st = DNS_TEMP;
	} else if (implicit) {
		st = implicit_none(r, c, dom, why, whylen);
	} else {
		snprintf(why, whylen, "%s: no MX host has a usable address (%s)", dom, notes);
		st = DNS_TEMP;
	}
done:
	free(hosts);
	dns_close(r);
	return st;
}

enum dns_status mx_lookup(const struct dns_config *c, const char *domain, struct mx_list *out,
			  char *why, size_t whylen)
{
	return mx_lookup_skips(c, domain, out, 0, why, whylen);
}
