/* postroom: ISC license, see LICENSE. */
#ifndef INJECT_H
#define INJECT_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "queue.h"
#include "sa.h"

/*
 * Handing a message to the queue: in-process through lib/queue, or, when a program is named
 * (QMAILQUEUE: queue-inject, or a content filter in front of it), to that program by the
 * qmail-queue protocol: message on its fd 0, envelope on its fd 1, and a filter's own error text
 * on its fd 6 with exit code 82 ("D<text>" permanent, "Z<text>" temporary).
 * Errors while the message is written are remembered and reported by inject_finish, so that the
 * caller can go on reading the client's data to its end. The caller ignores SIGPIPE: a program
 * that stops reading must not kill it.
 */

struct inject {
	int external;
	struct queue_new q;		/* in-process */
	pid_t pid;			/* external */
	int msgfd;
	int envfd;
	int errfd;
	struct buf out;
	char space[16384];
	int write_errno;		/* first error while writing the message, 0 if none */
	char id[QUEUE_ID_MAX];		/* the queue id (in-process) or this message's own id */
};

struct inject_result {
	int ok;
	int temporary;		/* when not ok */
	char text[300];		/* when not ok: what went wrong, for the SMTP reply */
};

/* Starts a message. program 0 or "": in-process. Returns 1, or 0 with errno set. */
int inject_start(struct inject *j, const char *queuedir, const char *program);
void inject_put(struct inject *j, const char *s, size_t n);
/*
 * Ends the message with its envelope: F<sender>\0, items[0..items_len), the final \0. items
 * is the rest of the envelope as queue(5) has it, made with inject_item: [E<envid>\0]
 * [H<ret>\0], then for each recipient T<rcpt>\0 [N<notify>\0] [O<orcpt>\0]; without DSN
 * parameters, T<rcpt>\0 for each recipient: qmail-queue's envelope. The caller has checked
 * them (the in-process queue takes them as they are; queue-inject checks them again).
 */
void inject_finish(struct inject *j, const char *sender, const char *items, size_t items_len,
		   struct inject_result *r);
/* Drops the message: nothing is queued. */
void inject_abort(struct inject *j);

/*
 * Envelope items (queue(5)): the recipients, and the DSN parameters of RFC 3461 section 4 as the
 * client gave them (checked with dsn_param.h). Actions return 1, or 0 with errno set.
 */

/* Appends type, s[0..n) and a NUL to items; the values of 'H' (RET) and 'N' (NOTIFY) are
   upper-cased, as queue(5) stores them. */
int inject_item(struct sa *items, char type, const char *s, size_t n);
/* The value of the next item of type at or after *pos in items[0..len) (NUL-terminated), *pos
   moved past it; 0 when there is none. */
const char *inject_item_next(const char *items, size_t len, size_t *pos, char type);

#endif
