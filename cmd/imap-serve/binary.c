/* postroom: ISC license, see LICENSE. */
/*
 * FETCH BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE (RFC 3516): a part with its
 * transfer encoding undone (lib/mime_binary.c), sent as a literal8 when something was decoded
 * or the bytes hold a NUL, as Dovecot sends it.
 */
#include <string.h>

#include "imap-serve.h"
#include "mime.h"

int binary_get(const struct mime_msg *m, const struct mime_section *sec, struct sa *v,
	       int *decoded, const char **no)
{
	sa_truncate(v, 0);
	switch (mime_section_binary(m, sec, v, decoded)) {
	case MIME_BINARY_OK:
		return 1;
	case MIME_BINARY_UNKNOWN_CTE:
		*no = "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding";
		return 0;
	case MIME_BINARY_BROKEN:
		*no = "[PARSE] Invalid data in MIME part";
		return 0;
	case MIME_BINARY_NOMEM:
	default:
		*no = "[SERVERBUG] Out of memory";
		return 0;
	}
}

void binary_out(struct session *s, const char *spec, int size_only, int partial,
		unsigned long long start, unsigned long long count, const struct sa *v,
		int decoded)
{
	const char *p = v->s ? v->s : "";
	size_t n = v->len;

	if (size_only) {
		out(&s->c, "BINARY.SIZE[%s] %zu", spec, n);
		return;
	}
	out(&s->c, "BINARY[%s]", spec);
	if (partial) {
		out(&s->c, "<%llu>", start);
		start = start < n ? start : n;
		count = n - start < count ? n - start : count;
		p += start;
		n = (size_t)count;
	}
	int nul = memchr(v->s ? v->s : "", 0, v->len) != 0;
	out(&s->c, " %s{%zu}\r\n", decoded || nul ? "~" : "", n);
	out_bytes(&s->c, p, n);
}
