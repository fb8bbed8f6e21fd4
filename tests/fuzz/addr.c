/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the RFC 5321 address parser (lib/addr.c). The input is taken whole as a
 * path ("<...>", as MAIL FROM and RCPT TO give it), as a mailbox and as a domain, with and
 * without SMTPUTF8; a parsed mailbox is split at its '@' and lower-cased, as smtp-recv does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: ASan sees any read past the end. */
	char *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	for (int flags = 0; flags <= ADDR_UTF8; flags += ADDR_UTF8) {
		size_t start, len;
		if (addr_parse_path(s, size, &start, &len, flags) == ADDR_OK) {
			if (start > size || len > size - start)
				abort();
			size_t at = addr_at(s + start, len);
			if (at > len)
				abort();
			if (len && at < len &&
			    addr_check_domain(s + start + at + 1, len - at - 1, flags) != ADDR_OK)
				abort();	/* a path's mailbox has a valid domain */
			addr_lower(s + start, len);
		}
		addr_check_mailbox(s, size, flags);
		addr_check_domain(s, size, flags);
	}
	free(s);
	return 0;
}
