/* postroom: ISC license, see LICENSE. */
#ifndef SASL_H
#define SASL_H

#include <stddef.h>

/*
 * SASL PLAIN (RFC 4616): the decoded response "[authzid] NUL authcid NUL passwd". We log in
 * only as whom the password proves: an authorization identity naming someone else is refused.
 */
enum sasl_plain_result {
	SASL_PLAIN_OK,
	SASL_PLAIN_MALFORMED,	/* not two NULs */
	SASL_PLAIN_OTHER_USER,	/* an authzid that is not the authcid */
};

struct sasl_plain {
	const char *user, *pass;	/* into the response; not NUL-terminated */
	size_t ulen, plen;
};

enum sasl_plain_result sasl_plain_split(const char *x, size_t n, struct sasl_plain *p);

#endif
