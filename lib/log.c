/* postroom: ISC license, see LICENSE. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#include "die.h"
#include "log.h"
#include "utf8.h"

static void write_line(char *line, int len)
{
	int saved = errno;

	if (len < 0)
		return;
	if (len >= LOG_LINE_MAX - 1) {
		memcpy(line + LOG_LINE_MAX - 5, "...", 3);
		len = LOG_LINE_MAX - 2;
	}
	line[len++] = '\n';
	while (write(2, line, (size_t)len) < 0 && errno == EINTR)
		;
	errno = saved;
}

void log_vline(const char *prefix, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n = snprintf(line, sizeof line, "%s: %s", PROG, prefix);

	if (n < 0 || n >= LOG_LINE_MAX)
		return;
	int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	write_line(line, n + m >= LOG_LINE_MAX ? LOG_LINE_MAX : n + m);
}

void log_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("", fmt, ap);
	va_end(ap);
}

char *log_escape(char *out, size_t outsize, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;

	if (outsize == 0)
		return out;
	for (size_t i = 0; i < n;) {
		/* Printable ASCII and well-formed UTF-8 other than the C1 controls (U+0080-U+009F,
		   which terminals obey) go as they are; any other byte becomes \xNN. */
		size_t plain = utf8_len(u + i, n - i);
		if (plain == 1 && (u[i] < 0x20 || u[i] == 0x7f || u[i] == '"' || u[i] == '\\'))
			plain = 0;
		if (plain == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0)
			plain = 0;
		size_t need = plain ? plain : 4;
		if (o + need + 4 > outsize) {
			if (outsize >= 4) {
				o = o + 3 < outsize ? o : outsize - 4;
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			memcpy(out + o, s + i, plain);
			o += plain;
			i += plain;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[u[i] >> 4];
			out[o++] = hex[u[i] & 15];
			i++;
		}
	}
	out[o] = 0;
	return out;
}
