/* postroom: ISC license, see LICENSE. */
#ifndef STR_H
#define STR_H

#include <stddef.h>

/*
 * A growable byte string, for replies and values whose size the program cannot know in advance
 * (an IMAP BODYSTRUCTURE, a decoded header). Every append is bounded by the caller's own limit
 * where a peer drives the size; here, only allocation failure stops growth. s is always
 * NUL-terminated when not 0, so that a string without NULs can be used as a C string.
 * Appends return 1, or 0 (ENOMEM) leaving the string as it was.
 */
struct str {
	char *s;
	size_t len;
	size_t cap;
};
#define STR_ZERO { 0, 0, 0 }

int str_put(struct str *x, const char *s, size_t n);
int str_puts(struct str *x, const char *s);
int str_putc(struct str *x, char c);
int str_printf(struct str *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes without changing len. */
int str_reserve(struct str *x, size_t n);
/* Keeps the first n bytes. */
void str_truncate(struct str *x, size_t n);
void str_free(struct str *x);

#endif
