/* postroom: ISC license, see LICENSE. */
#ifndef DNS_H
#define DNS_H

#include <arpa/nameser.h>
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
	int literal;			/* the domain was an address literal: no name to send as SNI
					 * or to verify a certificate against, only the address */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

struct mx_list {
	struct mx_address *a;
	size_t n;
	size_t cap;
	int null_mx;	/* DNS_PERM because the domain has a null MX (RFC 7505: 556 5.1.10) */
};
#define MX_LIST_ZERO { 0, 0, 0, 0 }

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

/*
 * What mx_lookup_skips passed over, for the caller's log (library code never prints): MX hosts
 * that are address literals (RFC 5321 section 5.1 wants names), malformed names, a null MX among
 * other MX records, hosts without an address of the family asked, hosts whose address lookup
 * failed for now.
 */
enum mx_skip_reason {
	MX_SKIP_LITERAL,	/* an address literal: 192.0.2.1 or [192.0.2.1] as an MX host */
	MX_SKIP_MALFORMED,	/* not a host name (letters, digits, '-', '.') */
	MX_SKIP_NULL,		/* "." among other MX records */
	MX_SKIP_NOADDRESS,	/* no AAAA/A record (of the family asked) */
	MX_SKIP_TEMP,		/* the address lookup failed for now */
};

struct mx_skip {
	unsigned preference;
	char host[DNS_NAME_MAX + 1];	/* as the MX record names it, lower-cased */
	enum mx_skip_reason reason;
	char why[128];			/* one phrase for a log line */
};

struct mx_skips {
	struct mx_skip *s;
	size_t n;
	size_t cap;
};
#define MX_SKIPS_ZERO { 0, 0, 0 }

/*
 * mx_lookup, and each MX host it passed over appended to skipped (when not 0) whatever the
 * result. Bounds: at most DNS_MX_MAX MX hosts and DNS_ADDR_MAX addresses of each family per host
 * are used; a CNAME chain is followed for at most DNS_CNAME_MAX links.
 */
#define DNS_MX_MAX 64
#define DNS_ADDR_MAX 32
/*
 * Addresses are looked up for the hosts in order only until DNS_ADDRESSES_MAX addresses are
 * found or DNS_HOSTS_MAX hosts were asked about: a domain with dozens of MX hosts, each slow to
 * answer, would otherwise hold a delivery for hours (Postfix stops at 5 addresses,
 * smtp_mx_address_limit). The hosts after that are neither looked up nor listed.
 */
#define DNS_ADDRESSES_MAX 10
#define DNS_HOSTS_MAX 10
#define DNS_CNAME_MAX 8
#define DNS_ANSWER_MAX 256	/* answer records read from one reply; the rest are ignored */
enum dns_status mx_lookup_skips(const struct dns_config *c, const char *domain, struct mx_list *out,
				struct mx_skips *skipped, char *why, size_t whylen);
void mx_skips_free(struct mx_skips *s);

/*
 * The record reader (dns_record.c): every resource record of an answer, its lengths checked
 * against the message and against what its type needs, names uncompressed, lower-cased and
 * without the final dot ("" is the root). Written once for MX, A, AAAA, CNAME, TXT and TLSA.
 */
struct dns_msg {
	ns_msg h;
};

/* 1, or 0 with errno EBADMSG when the header or a section count does not fit in len bytes. */
int dns_msg_init(struct dns_msg *m, const unsigned char *buf, size_t len);
unsigned dns_msg_rcode(const struct dns_msg *m);
size_t dns_msg_count(const struct dns_msg *m, ns_sect section);

struct dns_rr {
	char owner[DNS_NAME_MAX + 1];
	unsigned type;		/* ns_t_mx, ns_t_a, ... */
	unsigned long ttl;
	const unsigned char *rdata;	/* rdlen bytes: into the message, or owned by a dns_rrs */
	size_t rdlen;
	union {
		struct {
			unsigned preference;
			char host[DNS_NAME_MAX + 1];	/* "" for a null MX */
		} mx;
		struct in_addr a;
		struct in6_addr aaaa;
		char cname[DNS_NAME_MAX + 1];
		/* TXT: the rdata is one or more character-strings; dns_txt_join joins them. */
		struct {
			unsigned usage, selector, matching;	/* the data is rdata + 3 */
		} tlsa;
	} u;
};

enum dns_rr_status {
	DNS_RR_OK,	/* class IN, one of the types above, decoded into u */
	DNS_RR_OTHER,	/* well formed, another class or type: owner, type, ttl, rdata only */
	DNS_RR_BAD,	/* does not fit the message, or its rdata does not fit its type */
};

/* Record i of section: in order (i = 0, 1, ...) each call costs one record, as m keeps its
   place; going back starts the section over. */
enum dns_rr_status dns_msg_rr(struct dns_msg *m, ns_sect section, size_t i, struct dns_rr *rr);
/* The character-strings of a TXT record joined (SPF, DKIM), NUL-terminated in out; 1, or 0
 * (errno EMSGSIZE) when they do not fit in outsize bytes. */
int dns_txt_join(const struct dns_rr *rr, char *out, size_t outsize, size_t *outlen);

/*
 * Queries (dns.c): a resolver of our own (res_ninit state; -s replaces resolv.conf's servers)
 * and a lookup that follows CNAMEs (DNS_CNAME_MAX links) and keeps the records of the type
 * asked owned by the final name. Actions return 1, or 0 with errno set; why says what failed.
 */
struct dns_resolver;
struct dns_resolver *dns_open(const struct dns_config *c, char *why, size_t whylen);
void dns_close(struct dns_resolver *r);

struct dns_rrs {
	struct dns_rr *rr;
	size_t n;
	size_t cap;
};
#define DNS_RRS_ZERO { 0, 0, 0 }
void dns_rrs_free(struct dns_rrs *l);

enum dns_answer {
	DNS_FOUND,	/* records appended to out */
	DNS_NODATA,	/* the name exists, without records of that type */
	DNS_NXDOMAIN,	/* the name does not exist */
	DNS_FAILED,	/* SERVFAIL, a timeout, no name server, a malformed answer: why says */
};
enum dns_answer dns_lookup(struct dns_resolver *r, const char *name, unsigned type,
			   struct dns_rrs *out, char *why, size_t whylen);

#endif
