/* postroom: ISC license, see LICENSE. */
#ifndef SA_H
#define SA_H

#include <stddef.h>

/*
 * A growable byte string. Growth is overflow-checked; callers that take bytes from a peer bound
 * them before they get here. Actions return 1, or 0 with errno set (ENOMEM).
 */

struct sa {
	char *s;
	size_t len;
	size_t cap;
};
#define SA_ZERO { 0, 0, 0 }

int sa_ready(struct sa *sa, size_t extra);
int sa_catb(struct sa *sa, const char *s, size_t n);
int sa_cats(struct sa *sa, const char *s);
int sa_catc(struct sa *sa, char c);
/* Appends a NUL that is counted in len: used to build NUL-separated lists. */
int sa_cat0(struct sa *sa);
int sa_catf(struct sa *sa, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps the first n bytes (and the NUL after them), when there are more. */
void sa_truncate(struct sa *sa, size_t n);
/* Makes s a C string without counting the NUL in len. */
int sa_terminate(struct sa *sa);
void sa_free(struct sa *sa);
/* Gives back the room beyond the string (and its NUL), for a string that will wait long. */
void sa_shrink(struct sa *sa);

#endif
