/* postroom: ISC license, see LICENSE. */
#include <string.h>

#include "sasl.h"

enum sasl_plain_result sasl_plain_split(const char *x, size_t n, struct sasl_plain *p)
{
	const char *z1 = memchr(x, 0, n);
	const char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - x)) : 0;

	if (!z2)
		return SASL_PLAIN_MALFORMED;
	p->user = z1 + 1;
	p->ulen = (size_t)(z2 - p->user);
	p->pass = z2 + 1;
	p->plen = n - (size_t)(p->pass - x);
	size_t authz = (size_t)(z1 - x);
	if (authz && (authz != p->ulen || memcmp(x, p->user, p->ulen)))
		return SASL_PLAIN_OTHER_USER;
	return SASL_PLAIN_OK;
}
