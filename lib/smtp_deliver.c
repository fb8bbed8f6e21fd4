/* postroom: ISC license, see LICENSE. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "deadline.h"
#include "fmt.h"
#include "smtp_deliver.h"

void smtp_decide_all(struct smtpc_rcpt *r, size_t n, const struct smtpc_reply *why,
		     const char *where, enum smtpc_status status)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].status != SMTPC_PENDING)
			continue;
		r[i].reply = *why;
		r[i].status = status;
		str_copy(r[i].where, sizeof r[i].where, where);
		str_copy(r[i].tls, sizeof r[i].tls, "none");
	}
}

int smtp_own_address(int family, const void *addr)
{
	struct ifaddrs *list, *i;
	int own = 0;

	if (getifaddrs(&list) < 0)
		return 0;
	for (i = list; i && !own; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET)
			own = !memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, addr,
				      sizeof(struct in_addr));
		else
			own = !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, addr,
				      sizeof(struct in6_addr));
	}
	freeifaddrs(list);
	return own;
}

static void where_of(const struct mx_address *a, char *out, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(a->family, &a->addr, addr, sizeof addr);
	snprintf(out, size, "%s[%s]", a->host, addr);
}

static int is_self(const struct smtpc_config *c, const struct mx_address *a)
{
	return !strcasecmp(a->host, c->helo) || smtp_own_address(a->family, &a->addr);
}

static void loops(const struct smtp_route *route, const struct mx_address *a,
		  struct smtpc_rcpt *r, size_t n)
{
	struct smtpc_reply why;
	char where[SMTPC_WHERE_MAX];

	where_of(a, where, sizeof where);
	smtpc_reply_set(&why, 554, "5.4.6", "mail for %s loops back to myself", route->domain);
	smtp_decide_all(r, n, &why, where, SMTPC_FAILED);
}

static void note(const struct smtpc_config *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(const struct smtpc_config *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!c->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	c->log(c->log_arg, line);
}

/* Appends "why" to the list of what each address said, cut to fit. */
static void tried_add(char *tried, size_t size, const char *why)
{
	size_t len = strlen(tried);

	if (len && len + 2 < size) {
		memcpy(tried + len, "; ", 3);
		len += 2;
	}
	str_copy(tried + len, size - len, why);
}

/*
 * The result is out (route->decided), then the session that gave it ends, or, when it carried
 * the message (sent), is kept: never one that failed AUTH or anything else before a
 * transaction, whose next MAIL would be refused for good.
 */
static void finish(const struct smtp_route *route, struct smtpc_rcpt *r, size_t n, struct smtpc *s,
		   int sent)
{
	if (route->decided)
		route->decided(route->decided_arg, r, n);
	if (s && sent && route->keep && s->fd >= 0 && !s->dirty) {
		*route->keep = *s;
		*route->kept = 1;
		return;
	}
	if (s)
		smtpc_close(s);
}

int smtp_route_mx(const struct dns_config *dc, const char *domain, struct mx_list *mx,
		  struct smtpc_rcpt *r, size_t n)
{
	char why[512];
	struct smtpc_reply w;

	enum dns_status st = mx_lookup(dc, domain, mx, why, sizeof why);
	if (st == DNS_OK)
		return 1;
	if (mx->null_mx)
		/* RFC 7505 section 4.2, with RFC 7504's code. */
		smtpc_reply_set(&w, 556, "5.1.10", "Recipient address has null MX");
	else if (st == DNS_PERM)
		smtpc_reply_set(&w, 550, "5.1.2", "%s", why);
	else
		smtpc_reply_set(&w, 451, "4.4.3", "%s", why);
	smtp_decide_all(r, n, &w, "-", st == DNS_PERM ? SMTPC_FAILED : SMTPC_DEFERRED);
	return 0;
}

size_t smtp_relay_addresses(const char *host, int family, struct mx_address *a, size_t max,
			    int *permanent, char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *i;
	size_t n = 0;

	*permanent = 0;
	memset(a, 0, sizeof *a);
	str_copy(a->host, sizeof a->host, host);
	if (inet_pton(AF_INET, host, &a->addr.v4) == 1 && family != AF_INET6) {
		a->family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, host, &a->addr.v6) == 1 && family != AF_INET) {
		a->family = AF_INET6;
		return 1;
	}
	hints.ai_family = family;
	int e = getaddrinfo(host, 0, &hints, &res);
	if (e) {
		*permanent = e == EAI_NONAME;
		snprintf(why, whylen, "unable to find the address of %s: %s", host, gai_strerror(e));
		return 0;
	}
	for (i = res; i && n < max; i = i->ai_next) {
		memset(&a[n], 0, sizeof a[n]);
		str_copy(a[n].host, sizeof a[n].host, host);
		a[n].family = i->ai_family;
		if (i->ai_family == AF_INET)
			a[n].addr.v4 = ((struct sockaddr_in *)i->ai_addr)->sin_addr;
		else if (i->ai_family == AF_INET6)
			a[n].addr.v6 = ((struct sockaddr_in6 *)i->ai_addr)->sin6_addr;
		else
			continue;
		n++;
	}
	freeaddrinfo(res);
	if (!n)
		snprintf(why, whylen, "%s has no address", host);
	return n;
}

void smtp_deliver(const struct smtpc_config *c0, const struct smtp_route *route,
		  const char *sender, const struct smtpc_msg *m, struct smtpc_rcpt *r, size_t n)
{
	struct smtpc s;
	struct smtpc_config cc = *c0, clear;
	const struct smtpc_config *c = &cc;
	struct smtpc_reply last;
	char tried[SMTPC_TEXT_MAX] = "";
	size_t na = route->n, sessions = 0;

	if (!cc.deadline)
		cc.deadline = deadline_in(cc.t.attempt);
	if (route->mx) {
		/* A smarthost's password goes to the smarthost only, never to a domain's MX. */
		cc.user = 0;
		cc.password = 0;
	}
	clear = cc;
	clear.tls = SMTPC_TLS_NONE;
	smtpc_reply_set(&last, 421, "4.4.1", "no host to try");
	if (route->mx) {
		/* RFC 5321 section 5.1: when we are one of the MX hosts, only better ones are
		   tried; when we are the best, the mail loops (Postfix says the same). */
		for (size_t i = 0; i < na; i++) {
			if (!is_self(c, &route->a[i]))
				continue;
			size_t cut = 0;
			while (route->a[cut].preference < route->a[i].preference)
				cut++;
			if (!cut) {
				note(c, "loop host=%s preference=%u: mail for %s loops back to myself",
				     route->a[i].host, route->a[i].preference, route->domain);
				loops(route, &route->a[i], r, n);
				finish(route, r, n, 0, 0);
				return;
			}
			na = cut;
			break;
		}
	}
	size_t i;
	for (i = 0; i < na; i++) {
		const struct mx_address *a = &route->a[i];
		char bare[INET6_ADDRSTRLEN];
		const char *tlsname = route->tlsname ? route->tlsname : a->host;
		const struct smtpc_config *use = c;
		enum smtpc_open_result res;
		int greeted = 0;

		size_t pending = 0;
		for (size_t j = 0; j < n; j++)
			pending += r[j].status == SMTPC_PENDING;
		if (!pending)
			break;	/* a session that broke after deciding them all */
		if (i == SMTP_ADDRESS_LIMIT || sessions == SMTP_SESSION_LIMIT) {
			note(c, "domain=%s: %zu more addresses not tried: %s %d", route->domain,
			     na - i, i == SMTP_ADDRESS_LIMIT ? "addresses tried" : "sessions held",
			     i == SMTP_ADDRESS_LIMIT ? SMTP_ADDRESS_LIMIT : SMTP_SESSION_LIMIT);
			break;
		}
		if (deadline_now_ms() >= c->deadline) {
			note(c, "domain=%s: the attempt's %u s are over; %zu more addresses not tried",
			     route->domain, c->t.attempt, na - i);
			tried_add(tried, sizeof tried, "the delivery attempt's time limit was reached");
			break;
		}
		if (!route->tlsname && a->literal) {
			/* An address literal has no name: the certificate must name the address. */
			inet_ntop(a->family, &a->addr, bare, sizeof bare);
			tlsname = bare;
		}
		for (;;) {
			res = smtpc_open(&s, use, a->host, a->family, &a->addr, route->port, tlsname,
					 route->mx);
			greeted |= s.greeted;
			if (res != SMTPC_OPEN_TLS_FAILED)
				break;
			note(c, "tls host=%s[%s] failed: %s; retrying in cleartext", s.host, s.addr,
			     s.why.text);
			smtpc_close(&s);
			use = &clear;
		}
		sessions += greeted;
		if (res == SMTPC_OPEN_OK && route->reached)
			*route->reached = 1;
		if (res == SMTPC_OPEN_OK) {
			if (smtpc_send(&s, sender, m, r, n)) {
				finish(route, r, n, &s, 1);
				return;
			}
		} else if (res == SMTPC_OPEN_LOOP) {
			note(c, "loop host=%s[%s]: %s", s.host, s.addr, s.why.text);
			smtpc_close(&s);
			loops(route, a, r, n);
			finish(route, r, n, 0, 0);
			return;
		} else if (res == SMTPC_OPEN_DEFER) {
			char where[SMTPC_WHERE_MAX];
			where_of(a, where, sizeof where);
			for (size_t j = 0; j < n; j++) {
				if (r[j].status != SMTPC_PENDING)
					continue;
				smtp_decide_all(&r[j], 1, &s.why, where, SMTPC_DEFERRED);
				smtpc_tls_desc(&s, r[j].tls, sizeof r[j].tls);
			}
			finish(route, r, n, &s, 0);
			return;
		}
		note(c, "host=%s[%s] port=%u: %d %s %s", s.host, s.addr, route->port, s.why.code,
		     s.why.enhanced, s.why.text);
		/* A peer's own reply is named with its host; our texts name it already. */
		char one[SMTPC_TEXT_MAX + SMTPC_WHERE_MAX + 16];
		if (s.why.text[0] && !strstr(s.why.text, s.addr))
			snprintf(one, sizeof one, "%s[%s] said: %d %s", s.host, s.addr, s.why.code,
				 s.why.text);
		else
			snprintf(one, sizeof one, "%s", s.why.text);
		tried_add(tried, sizeof tried, one);
		last = s.why;
		smtpc_close(&s);
	}
	/* Whatever the last host said, the others may answer later: the mail waits. */
	if (last.code / 100 != 4) {
		last.code = 451;
		snprintf(last.enhanced, sizeof last.enhanced, "4.4.0");
	}
	if (tried[0])
		str_copy(last.text, sizeof last.text, tried);
	char where[SMTPC_WHERE_MAX] = "-";
	if (i)
		where_of(&route->a[i - 1], where, sizeof where);
	smtp_decide_all(r, n, &last, where, SMTPC_DEFERRED);
	/* Recipients the session decided keep their host; only the pending ones got this. */
	finish(route, r, n, 0, 0);
}
