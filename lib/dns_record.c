/* postroom: ISC license, see LICENSE. */
/*
 * The one reader of DNS answers. ns_initparse and ns_parserr check that each record lies inside
 * the message; what each type's rdata must hold (4 bytes for A, a name that ends exactly at the
 * end of the rdata for MX and CNAME, character-strings that fill the rdata for TXT) is checked
 * here, so nothing read from a name server is trusted for its lengths.
 */
#include <errno.h>
#include <resolv.h>
#include <string.h>

#include "dns.h"
#include "dns-internal.h"

int dns_msg_init(struct dns_msg *m, const unsigned char *buf, size_t len)
{
	if (len > NS_MAXMSG || ns_initparse(buf, (int)len, &m->h) < 0) {
		errno = EBADMSG;
		return 0;
	}
	return 1;
}

unsigned dns_msg_rcode(const struct dns_msg *m)
{
	return (unsigned)ns_msg_getflag(m->h, ns_f_rcode);
}

size_t dns_msg_count(const struct dns_msg *m, ns_sect section)
{
	return ns_msg_count(m->h, section);
}

int dns_name_copy(char *out, const char *name)
{
	size_t n = strlen(name);

	if (n == 1 && name[0] == '.')
		n = 0;
	else if (n > 0 && name[n - 1] == '.' && (n < 2 || name[n - 2] != '\\'))
		n--;
	if (n > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		out[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	out[n] = 0;
	return 1;
}

/* The name at p inside rdata: it must end exactly at end (no bytes after it, none missing). */
static int rdata_name(const struct dns_msg *m, const unsigned char *p, const unsigned char *end,
		      char *out)
{
	char name[NS_MAXDNAME];
	int n = ns_name_uncompress(ns_msg_base(m->h), ns_msg_end(m->h), p, name, sizeof name);

	if (n < 0 || n != end - p)
		return 0;
	return dns_name_copy(out, name);
}

/* Each character-string is a length byte and that many bytes; together they fill the rdata. */
static int txt_valid(const unsigned char *p, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return 0;
	while (i < len) {
		size_t n = p[i];
		if (n > len - i - 1)
			return 0;
		i += 1 + n;
	}
	return 1;
}

enum dns_rr_status dns_msg_rr(struct dns_msg *m, ns_sect section, size_t i, struct dns_rr *rr)
{
	ns_rr r;

	/* The handle's cursor moves on with each record, so reading them in order is linear; a
	   copy of the handle for each call would skip i records every time. */
	if (i >= (size_t)ns_msg_count(m->h, section) || ns_parserr(&m->h, section, (int)i, &r) < 0)
		return DNS_RR_BAD;
	if (!dns_name_copy(rr->owner, ns_rr_name(r)))
		return DNS_RR_BAD;
	rr->type = ns_rr_type(r);
	rr->ttl = ns_rr_ttl(r);
	rr->rdata = ns_rr_rdata(r);
	rr->rdlen = ns_rr_rdlen(r);
	memset(&rr->u, 0, sizeof rr->u);
	if (ns_rr_class(r) != ns_c_in)
		return DNS_RR_OTHER;

	const unsigned char *p = rr->rdata, *end = p + rr->rdlen;
	switch (rr->type) {
	case ns_t_a:
		if (rr->rdlen != sizeof rr->u.a)
			return DNS_RR_BAD;
		memcpy(&rr->u.a, p, sizeof rr->u.a);
		return DNS_RR_OK;
	case ns_t_aaaa:
		if (rr->rdlen != sizeof rr->u.aaaa)
			return DNS_RR_BAD;
		memcpy(&rr->u.aaaa, p, sizeof rr->u.aaaa);
		return DNS_RR_OK;
	case ns_t_mx:
		if (rr->rdlen < 3)
			return DNS_RR_BAD;
		rr->u.mx.preference = (unsigned)p[0] << 8 | p[1];
		return rdata_name(m, p + 2, end, rr->u.mx.host) ? DNS_RR_OK : DNS_RR_BAD;
	case ns_t_cname:
		return rdata_name(m, p, end, rr->u.cname) ? DNS_RR_OK : DNS_RR_BAD;
	case ns_t_txt:
		return txt_valid(p, rr->rdlen) ? DNS_RR_OK : DNS_RR_BAD;
	case ns_t_tlsa:
		if (rr->rdlen < 4)	/* usage, selector, matching type, and some data */
			return DNS_RR_BAD;
		rr->u.tlsa.usage = p[0];
		rr->u.tlsa.selector = p[1];
		rr->u.tlsa.matching = p[2];
		return DNS_RR_OK;
	default:
		return DNS_RR_OTHER;
	}
}

int dns_txt_join(const struct dns_rr *rr, char *out, size_t outsize, size_t *outlen)
{
	size_t i = 0, o = 0;

	if (rr->type != ns_t_txt || !txt_valid(rr->rdata, rr->rdlen)) {
		errno = EBADMSG;
		return 0;
	}
	if (outsize == 0) {
		errno = EMSGSIZE;
		return 0;
	}
	while (i < rr->rdlen) {
		size_t n = rr->rdata[i++];
		if (n >= outsize - o) {
			errno = EMSGSIZE;
			return 0;
		}
		memcpy(out + o, rr->rdata + i, n);
		o += n;
		i += n;
	}
	out[o] = 0;
	if (outlen)
		*outlen = o;
	return 1;
}
