/* postroom: ISC license, see LICENSE. */
#ifndef FMT_H
#define FMT_H

#include <stddef.h>

/* Number conversion without locale or stdio surprises. */

#define FMT_ULLONG 21	/* digits of the largest unsigned long long, plus NUL */

/*
 * Parses all of s[0..n) as a decimal number: digits only, no sign, no white space, no overflow.
 * Returns 1 and sets *out, or 0.
 */
int scan_ullong(const char *s, size_t n, unsigned long long *out);
/* The same for a C string. */
int scan_ullong_str(const char *s, unsigned long long *out);

/* The value of the hexadecimal digit c (either case), or -1. */
int scan_hexdigit(char c);

/* Copies the C string src into dst (size bytes), cut to fit, always NUL-terminated. */
void str_copy(char *dst, size_t size, const char *src);

#endif
