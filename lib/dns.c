/* postroom: ISC license, see LICENSE. */
/*
 * Queries through glibc's resolver with a state of our own (res_ninit, not the global _res), so
 * that -s can replace resolv.conf's name servers without touching anything else and a caller
 * may keep several. res_nquery, not res_nsearch: mail domains are absolute, the search list must
 * never turn "example" into "example.our.lan".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns-internal.h"

struct dns_resolver {
	struct __res_state rs;
	unsigned char buf[NS_MAXMSG];	/* the largest message, so glibc never truncates */
};

/*
 * One name server instead of resolv.conf's. glibc keeps IPv4 servers in nsaddr_list and IPv6
 * ones in _u._ext.nsaddrs (malloc'ed, freed by res_nclose), with the nsaddr_list entry's family
 * 0 meaning "the address is in _ext" (res_send.c get_nsaddr). Clearing _ext.nscount makes
 * res_send rebuild its copy from what we set.
 */
static int set_server(res_state rs, const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	int v4 = inet_pton(AF_INET, addr, &a4) == 1;

	if (!v4 && inet_pton(AF_INET6, addr, &a6) != 1) {
		errno = EINVAL;
		return 0;
	}
	for (int i = 0; i < rs->nscount && i < MAXNS; i++) {
		free(rs->_u._ext.nsaddrs[i]);
		rs->_u._ext.nsaddrs[i] = 0;
		rs->_u._ext.nssocks[i] = -1;
	}
	memset(&rs->nsaddr_list[0], 0, sizeof rs->nsaddr_list[0]);
	if (v4) {
		rs->nsaddr_list[0].sin_family = AF_INET;
		rs->nsaddr_list[0].sin_port = htons(NS_DEFAULTPORT);
		rs->nsaddr_list[0].sin_addr = a4;
	} else {
		struct sockaddr_in6 *sa6 = calloc(1, sizeof *sa6);
		if (!sa6)
			return 0;
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons(NS_DEFAULTPORT);
		sa6->sin6_addr = a6;
		rs->_u._ext.nsaddrs[0] = sa6;
	}
	rs->nscount = 1;
	rs->_u._ext.nscount = 0;
	return 1;
}

struct dns_resolver *dns_open(const struct dns_config *c, char *why, size_t whylen)
{
	struct dns_resolver *r = calloc(1, sizeof *r);

	if (!r) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	if (res_ninit(&r->rs) != 0) {
		int e = errno;
		free(r);
		snprintf(why, whylen, "unable to set up the resolver from resolv.conf");
		errno = e ? e : EIO;
		return 0;
	}
	if (c->server && !set_server(&r->rs, c->server)) {
		int e = errno;
		snprintf(why, whylen, "%s: %s", c->server,
			 e == EINVAL ? "not a numeric name server address" : strerror(e));
		dns_close(r);
		errno = e;
		return 0;
	}
	return r;
}

void dns_close(struct dns_resolver *r)
{
	if (!r)
		return;
	res_nclose(&r->rs);
	free(r);
}

void dns_rrs_free(struct dns_rrs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((void *)l->rr[i].rdata);
	free(l->rr);
	l->rr = 0;
	l->n = l->cap = 0;
}

/* A copy of rr whose rdata belongs to l (the answer buffer is reused by the next query). */
static int rrs_add(struct dns_rrs *l, const struct dns_rr *rr)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct dns_rr *p = reallocarray(l->rr, cap, sizeof *p);
		if (!p)
			return 0;
		l->rr = p;
		l->cap = cap;
	}
	unsigned char *data = malloc(rr->rdlen ? rr->rdlen : 1);
	if (!data)
		return 0;
	memcpy(data, rr->rdata, rr->rdlen);
	l->rr[l->n] = *rr;
	l->rr[l->n].rdata = data;
	l->n++;
	return 1;
}

static const char *type_name(unsigned type)
{
	switch (type) {
	case ns_t_mx: return "MX";
	case ns_t_a: return "A";
	case ns_t_aaaa: return "AAAA";
	case ns_t_cname: return "CNAME";
	case ns_t_txt: return "TXT";
	case ns_t_tlsa: return "TLSA";
	default: return "?";
	}
}

/* res_nquery's -1: what its h_errno (and errno, for the transport) says. */
static enum dns_answer query_failed(struct dns_resolver *r, int e, const char *name, unsigned type,
				    char *why, size_t whylen)
{
	const char *t = type_name(type);

	switch (r->rs.res_h_errno) {
	case HOST_NOT_FOUND:
		snprintf(why, whylen, "%s: no such domain (NXDOMAIN)", name);
		return DNS_NXDOMAIN;
	case NO_DATA:
		snprintf(why, whylen, "%s: no %s record", name, t);
		return DNS_NODATA;
	case TRY_AGAIN:
		if (e == ECONNREFUSED)
			snprintf(why, whylen, "%s %s: no name server answers (connection refused)", name, t);
		else
			snprintf(why, whylen, "%s %s: the name server failed (SERVFAIL) or did not answer",
				 name, t);
		return DNS_FAILED;
	case NO_RECOVERY:
		snprintf(why, whylen, "%s %s: the name server refused the query or sent a malformed answer",
			 name, t);
		return DNS_FAILED;
	default:
		snprintf(why, whylen, "%s %s: lookup failed: %s", name, t, strerror(e ? e : EIO));
		return DNS_FAILED;
	}
}

enum dns_answer dns_lookup(struct dns_resolver *r, const char *name, unsigned type,
			   struct dns_rrs *out, char *why, size_t whylen)
{
	char cur[DNS_NAME_MAX + 1], queried[DNS_NAME_MAX + 1];
	int links = 0;

	if (!dns_name_copy(cur, name) || !cur[0]) {
		snprintf(why, whylen, "not a domain name of 1 to %d characters", DNS_NAME_MAX);
		errno = EINVAL;
		return DNS_FAILED;
	}
	for (;;) {
		memcpy(queried, cur, sizeof cur);
		errno = 0;
		int n = res_nquery(&r->rs, cur, ns_c_in, (int)type, r->buf, sizeof r->buf);
		if (n < 0)
			return query_failed(r, errno, cur, type, why, whylen);

		struct dns_msg m;
		if ((size_t)n > sizeof r->buf || !dns_msg_init(&m, r->buf, (size_t)n)) {
			snprintf(why, whylen, "%s %s: malformed answer", cur, type_name(type));
			errno = EBADMSG;
			return DNS_FAILED;
		}
		/* Past DNS_ANSWER_MAX records an answer is no use to mail, only costly to read. */
		size_t count = dns_msg_count(&m, ns_s_an);
		if (count > DNS_ANSWER_MAX)
			count = DNS_ANSWER_MAX;
		/* The records of cur, or its CNAME: a recursive server gives the whole chain in one
		 * answer; a link it left out is asked for in the next round of the outer loop. */
		for (;;) {
			char next[DNS_NAME_MAX + 1] = "";
			int found = 0;
			for (size_t i = 0; i < count; i++) {
				struct dns_rr rr;
				enum dns_rr_status st = dns_msg_rr(&m, ns_s_an, i, &rr);
				if (st == DNS_RR_BAD) {
					snprintf(why, whylen, "%s %s: malformed record in the answer", cur,
						 type_name(type));
					errno = EBADMSG;
					return DNS_FAILED;
				}
				if (st != DNS_RR_OK || strcmp(rr.owner, cur) != 0)
					continue;
				if (rr.type == type) {
					if (!rrs_add(out, &rr)) {
						snprintf(why, whylen, "out of memory");
						return DNS_FAILED;
					}
					found = 1;
				} else if (rr.type == ns_t_cname && type != ns_t_cname) {
					memcpy(next, rr.u.cname, sizeof next);
				}
			}
			if (found)
				return DNS_FOUND;
			if (!next[0])
				break;
			if (++links > DNS_CNAME_MAX) {
				snprintf(why, whylen, "%s: a CNAME chain of more than %d links", name,
					 DNS_CNAME_MAX);
				errno = ELOOP;
				return DNS_FAILED;
			}
			memcpy(cur, next, sizeof cur);
		}
		if (strcmp(cur, queried) == 0) {
			snprintf(why, whylen, "%s: no %s record", cur, type_name(type));
			return DNS_NODATA;
		}
	}
}
