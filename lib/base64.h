/* postroom: ISC license, see LICENSE. */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>

/* The value (0-63) of one base64 digit, or -1 for any other byte. */
int base64_value(char c);

/*
 * Decodes base64 (RFC 4648 section 4, padding required, no white space) as SASL sends it.
 * Returns 1 with the bytes in out[0..*outlen), or 0 for bad input or when it would not fit in
 * max bytes.
 */
int base64_decode(const char *in, size_t n, char *out, size_t max, size_t *outlen);

/* The encoded length of n bytes, without a NUL. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)
/* Encodes in[0..n) with padding into out, which has room for BASE64_LEN(n) + 1 bytes; NUL-terminates. */
void base64_encode(const char *in, size_t n, char *out);

#endif
