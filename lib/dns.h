/* postroom: ISC license, see LICENSE. */
#ifndef DNS_H
#define DNS_H

#include <netinet/in.h>
#include <stddef.h>

/*
 * DNS through glibc's resolver (res_ninit/res_nquery, libresolv), with answers read by one
 * bounds-checked record reader (MX, A, AAAA, CNAME; TXT and TLSA for the TLS-policy and
 * SPF/DKIM work to come). mx-lookup prints what mx_lookup finds; smtp-send calls it in-process.
 */

#define DNS_NAME_MAX 255	/* a domain name in text, without the final dot */

enum dns_status {
	DNS_OK,
	DNS_PERM,	/* no retry can help: NXDOMAIN, a null MX (RFC 7505) */
	DNS_TEMP,	/* try later: SERVFAIL, a timeout, no name server, MX hosts without addresses */
};

struct dns_config {
	int family;		/* AF_UNSPEC: both; AF_INET: IPv4 only (-4); AF_INET6: IPv6 only (-6) */
	const char *server;	/* a numeric name server address to ask (-s), or 0 for resolv.conf's */
};

/* One address to try: the MX host it belongs to and its preference. */
struct mx_address {
	unsigned preference;
	char host[DNS_NAME_MAX + 1];	/* lower-cased, no final dot; the literal for [a.b.c.d] */
	int family;			/* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

struct mx_list {
	struct mx_address *a;
	size_t n;
	size_t cap;
};
#define MX_LIST_ZERO { 0, 0, 0 }

/*
 * The addresses to try for mail to domain, in order (RFC 5321 section 5.1): preference
 * ascending, hosts of equal preference shuffled, each host's IPv6 then IPv4 addresses; the
 * domain's own addresses as preference 0 when it has no MX; an address literal ([192.0.2.1],
 * [IPv6:2001:db8::1]) as itself. Anything but DNS_OK leaves one line in why (whylen bytes)
 * saying what went wrong, for a log line or a bounce.
 */
enum dns_status mx_lookup(const struct dns_config *c, const char *domain, struct mx_list *out,
			  char *why, size_t whylen);
void mx_list_free(struct mx_list *l);

#endif
