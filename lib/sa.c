/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa.h"

int sa_ready(struct sa *sa, size_t extra)
{
	if (extra > SIZE_MAX - sa->len - 1) {
		errno = ENOMEM;
		return 0;
	}
	size_t want = sa->len + extra + 1;
	if (want <= sa->cap)
		return 1;
	size_t cap = sa->cap ? sa->cap : 64;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	char *s = realloc(sa->s, cap);
	if (!s)
		return 0;
	sa->s = s;
	sa->cap = cap;
	return 1;
}

int sa_catb(struct sa *sa, const char *s, size_t n)
{
	if (!sa_ready(sa, n))
		return 0;
	if (n)
		memcpy(sa->s + sa->len, s, n);
	sa->len += n;
	sa->s[sa->len] = 0;
	return 1;
}

int sa_cats(struct sa *sa, const char *s)
{
	return sa_catb(sa, s, strlen(s));
}

int sa_catc(struct sa *sa, char c)
{
	return sa_catb(sa, &c, 1);
}

int sa_cat0(struct sa *sa)
{
	return sa_catb(sa, "", 1);
}

int sa_catf(struct sa *sa, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	if ((size_t)n < sizeof small)
		return sa_catb(sa, small, (size_t)n);
	if (!sa_ready(sa, (size_t)n))
		return 0;
	va_start(ap, fmt);
	vsnprintf(sa->s + sa->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sa->len += (size_t)n;
	return 1;
}

void sa_truncate(struct sa *sa, size_t n)
{
	if (n < sa->len) {
		sa->len = n;
		sa->s[n] = 0;
	}
}

int sa_terminate(struct sa *sa)
{
	if (!sa_ready(sa, 0))
		return 0;
	sa->s[sa->len] = 0;
	return 1;
}

void sa_free(struct sa *sa)
{
	free(sa->s);
	sa->s = 0;
	sa->len = sa->cap = 0;
}

void sa_shrink(struct sa *sa)
{
	if (!sa->s || sa->cap <= sa->len + 1)
		return;
	char *s = realloc(sa->s, sa->len + 1);
	if (s) {
		sa->s = s;
		sa->cap = sa->len + 1;
	}
}
