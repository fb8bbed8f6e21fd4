/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

int str_reserve(struct str *x, size_t n)
{
	if (x->cap - x->len > n)	/* room for n bytes and the NUL */
		return 1;
	if (n > ((size_t)-1) / 2 - x->len) {
		errno = ENOMEM;
		return 0;
	}
	size_t cap = x->cap ? x->cap : 64;
	while (cap - x->len <= n)
		cap *= 2;
	char *s = realloc(x->s, cap);
	if (!s)
		return 0;
	x->s = s;
	x->cap = cap;
	return 1;
}

int str_put(struct str *x, const char *s, size_t n)
{
	if (!str_reserve(x, n))
		return 0;
	if (n)
		memcpy(x->s + x->len, s, n);
	x->len += n;
	x->s[x->len] = 0;
	return 1;
}

int str_puts(struct str *x, const char *s)
{
	return str_put(x, s, strlen(s));
}

int str_putc(struct str *x, char c)
{
	return str_put(x, &c, 1);
}

int str_printf(struct str *x, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	if ((size_t)n < sizeof small)
		return str_put(x, small, (size_t)n);
	if (!str_reserve(x, (size_t)n))
		return 0;
	va_start(ap, fmt);
	vsnprintf(x->s + x->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	x->len += (size_t)n;
	return 1;
}

void str_truncate(struct str *x, size_t n)
{
	if (n < x->len) {
		x->len = n;
		x->s[n] = 0;
	}
}

void str_free(struct str *x)
{
	free(x->s);
	x->s = 0;
	x->len = x->cap = 0;
}
