/* postroom: ISC license, see LICENSE. */
#ifndef DNS_INTERNAL_H
#define DNS_INTERNAL_H

/* Shared by dns.c, dns_mx.c and dns_record.c only. */

/*
 * A name in presentation form (from the caller, or from ns_name_uncompress) into out
 * (DNS_NAME_MAX + 1 bytes): without the final dot ("" for the root), lower-cased, since names
 * compare without case (RFC 4343). 0 if it is longer than DNS_NAME_MAX.
 */
int dns_name_copy(char *out, const char *name);

#endif
