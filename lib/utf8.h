/* postroom: ISC license, see LICENSE. */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), 1 for an ASCII byte, 0 when it is not well-formed.
 */
size_t utf8_len(const unsigned char *s, size_t n);

#endif
