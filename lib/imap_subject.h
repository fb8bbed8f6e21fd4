/* postroom: ISC license, see LICENSE. */
#ifndef IMAP_SUBJECT_H
#define IMAP_SUBJECT_H

#include <stddef.h>

#include "sa.h"

/*
 * The "base subject" of RFC 5256 section 2.1, which SORT SUBJECT and both THREAD algorithms
 * compare: the subject with the artifacts of mail software taken off ("Re:", "Fwd:",
 * "[list]" tags, "(fwd)", "[fwd: ...]"). s is the subject already decoded to UTF-8 (step 1's
 * RFC 2047 part). The base subject is appended to out and NUL-terminated; *reply is set when
 * the extraction took off a reply or forward marker (a subj-refwd, a "(fwd)" trailer, or a
 * "[fwd:" ... "]" pair), which THREAD=REFERENCES needs. 1, or 0 when out of memory.
 */
int imap_base_subject(const char *s, size_t n, struct sa *out, int *reply);

#endif
