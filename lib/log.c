/* postroom: ISC license, see LICENSE. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#include "die.h"
#include "log.h"

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
	size_t o = 0;

	if (outsize == 0)
		return out;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = (c >= 0x20 && c != 0x7f && c != '"' && c != '\\');
		size_t need = plain ? 1 : 4;

		if (o + need + 4 > outsize) {
			if (outsize >= 4) {
				o = o + 3 < outsize ? o : outsize - 4;
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
	return out;
}
