/* postroom: ISC license, see LICENSE. */
#ifndef SORT_H
#define SORT_H

#include <stddef.h>
#include <time.h>

#include "imap-serve.h"

/*
 * What SORT and THREAD compare of a message, read from postroom-cache when a session has
 * computed it before (so that a warm SORT or THREAD opens no message file), else from the
 * message's header, and then cached.
 */
struct sort_keys {
	time_t sent;		/* the Date: field's time, or the internal date without one */
	int reply;		/* the subject was a reply or forward (RFC 5256 section 2.1) */
	const char *subject;	/* the base subject */
	const char *from, *to, *cc;	/* addr-mailbox of the field's first address */
	const char *dfrom, *dto;	/* RFC 5957's display names */
	const char *msgid;		/* Message-ID's msg-id, without <>, or "" */
	const char *refs;		/* References' msg-ids (or In-Reply-To's first), spaces */
	char *space;			/* the strings above, NUL-terminated */
};

/* References a message keeps at most, the last ones (the nearest ancestors). */
#define SORT_REFS_MAX 256

/* The keys of message idx; 0 when the message cannot be read (then all keys are empty and
   its dates the internal date: it sorts and threads all the same). */
int sort_keys_get(struct session *s, size_t idx, struct sort_keys *k);
void sort_keys_free(struct sort_keys *k);

/* i;ascii-casemap: bytes compared with a-z as A-Z. */
int sort_casecmp(const char *a, const char *b);

#endif
