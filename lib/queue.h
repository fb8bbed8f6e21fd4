/* postroom: ISC license, see LICENSE. */
#ifndef QUEUE_H
#define QUEUE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "sa.h"

/*
 * The queue (queue(5)). QUEUEDIR holds msg/ (queued messages), tmp/ (files being written where
 * O_TMPFILE is not available), hold/ (messages an administrator put on hold: queue-hold(8)),
 * bounce/ (where earlier versions left finished messages with failures; queue-run moves them
 * back to msg/ to send their notices) and the FIFO trigger. A queue file is
 *     "PRQ1 " <message length, 20 digits> "\n"   the header, QUEUE_HEADER_LEN bytes
 *     message                                     LF line ends, as handed to queue-inject
 *     envelope                                    F<sender>\0 [E<envid>\0] [H<ret>\0]
 *                                                 then per recipient T<rcpt>\0 [N<notify>\0]
 *                                                 [O<orcpt>\0], then \0 (qmail-queue's, with the
 *                                                 DSN parameters of RFC 3461 as given in SMTP)
 *     records                                     D<mailbox>\0 delivered
 *                                                 X<mailbox>\t<reason>\0 delivery failed for good
 *                                                 R<address>\t<reason>\0 address did not resolve
 *                                                 P<address>\t<reason>\0 earlier versions' failure
 *                                                 S<address>\t<reply>\0 a remote peer took it
 *                                                 J<address>\t<reply>\0 remote failure for good
 *                                                 L<address>\t<reason>\0 the last temporary failure
 *                                                 N<address>\t<id>\0 the sender was sent a notice
 *                                                   (DSN) of its final state, queued as id
 *                                                 W<address>\t<id>\0 the sender was warned that it
 *                                                   is late (a "delayed" DSN), queued as id
 * and its mtime is the time of its next delivery attempt. A record names a target by its kind
 * (the type letter) and its address, so that no failure can hide a delivery to a mailbox of the
 * same address. P, written before X and R told the two apart, counts as an R only: a mailbox it
 * named is tried again (a delivery may repeat, never be skipped).
 */

#define QUEUE_HEADER_LEN 26
#define QUEUE_ID_MAX 48
#define QUEUE_ADDR_MAX 1003	/* qmail-queue's limit on one envelope address */

/*
 * Writing a new message. Actions return 1, or 0 with errno set.
 * queue_new_commit returns only once the message is durable: the file is fdatasynced, linked
 * into msg/ and msg/ is fsynced (2 flushes). Then it wakes queue-run through the trigger.
 */
struct queue_new {
	int dirfd;
	int fd;
	char id[QUEUE_ID_MAX];
	unsigned long long msglen;
	int in_envelope;
	int nameless;		/* made with O_TMPFILE in msg/, not as tmp/ID */
	struct buf out;
	char space[16384];
};

/* A new id, "<seconds>-<microseconds>-<pid>" (6 digits of microseconds), unique within this
   process (QUEUE_ID_MAX bytes): an Atom, fit for the Received header's "id" (RFC 5321 4.4).
   Queues written before this form hold "<seconds>.<microseconds>.<pid>" too. */
void queue_make_id(char *id);

int queue_new_open(struct queue_new *q, const char *queuedir);
int queue_new_message(struct queue_new *q, const char *s, size_t n);
int queue_new_envelope(struct queue_new *q, const char *s, size_t n);
int queue_new_commit(struct queue_new *q);
void queue_new_abort(struct queue_new *q);

/*
 * Copies a qmail-queue envelope from in to q, checking it as it goes; nothing about it is held in
 * memory beyond one address.
 */
enum envelope_result {
	ENVELOPE_OK,
	ENVELOPE_SYNTAX,	/* qmail-queue exit 91 */
	ENVELOPE_TOOLONG,	/* an address over QUEUE_ADDR_MAX bytes: exit 11 */
	ENVELOPE_READ,		/* errno set: exit 54 (52 on ETIMEDOUT) */
	ENVELOPE_WRITE,		/* errno set: exit 53 */
};
enum envelope_result envelope_copy(struct buf *in, struct queue_new *q);

/* Reading a queued message, for delivery. */
#define QUEUE_REC_DELIVERED 'D'	/* a mailbox was delivered to */
#define QUEUE_REC_FAILED 'X'		/* delivery to a mailbox failed permanently */
#define QUEUE_REC_UNRESOLVED 'R'	/* an address resolved to a failure (unknown user, loop) */
#define QUEUE_REC_LEGACY 'P'		/* read, never written: a failure of either kind */
#define QUEUE_REC_SENT 'S'		/* a remote peer accepted the recipient */
#define QUEUE_REC_REJECTED 'J'		/* a remote peer refused it for good, or it expired */
#define QUEUE_REC_LAST 'L'		/* the last temporary failure: not final; the latest counts */
#define QUEUE_REC_NOTIFIED 'N'		/* a DSN of the final state went to the sender */
#define QUEUE_REC_WARNED 'W'		/* a "delayed" DSN went to the sender */

/* The DSN parameters of a recipient (RFC 3461 section 4), as stored. */
#define QUEUE_NOTIFY_SUCCESS 1u
#define QUEUE_NOTIFY_FAILURE 2u
#define QUEUE_NOTIFY_DELAY 4u
#define QUEUE_NOTIFY_NEVER 8u
#define QUEUE_NOTIFY_DEFAULT (QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY)	/* none given */

struct queue_record {
	char type;		/* one of QUEUE_REC_* */
	const char *target;	/* NUL-terminated */
	const char *reason;	/* after the tab, for all but 'D'; else "" */
};

struct queue_msg {
	int fd;
	char id[QUEUE_ID_MAX];
	unsigned long long msglen;	/* the message is at offset QUEUE_HEADER_LEN */
	off_t env_off;			/* file offset of the envelope */
	struct sa env;			/* envelope and records, as on disk */
	size_t valid_len;		/* env up to the last whole record */
	const char *sender;
	const char *envid;		/* ENVID as given (xtext), or 0 */
	int ret_hdrs;			/* RET=HDRS */
	const char **rcpt;
	const char **orcpt;		/* per recipient: ORCPT as given ("rfc822;xtext"), or 0 */
	unsigned *notify;		/* per recipient: QUEUE_NOTIFY_* (QUEUE_NOTIFY_DEFAULT if none) */
	size_t nrcpt;
	struct queue_record *rec;
	size_t nrec;
	struct sa pending;		/* records added by this process... */
	size_t pending_synced;		/* ...of which this many bytes are in the file */
};
#define QUEUE_MSG_ZERO { .fd = -1 }

/*
 * Opens msg/ID read-write and takes its lock. Returns 1, or 0 with errno: EWOULDBLOCK (another
 * process is delivering it), ENOENT (gone), EPROTO (not a queue file).
 */
int queue_msg_open(struct queue_msg *m, int dirfd, const char *id);
/* Reads dir/ID (dir: "msg" or "hold") without a lock and read-only, for tools that only look
   (queue-list); records added meanwhile are simply not seen. Same errors but EWOULDBLOCK. */
int queue_msg_peek(struct queue_msg *m, int dirfd, const char *dir, const char *id);
/* The latest record of one of types for target (its reason), or 0. */
const struct queue_record *queue_msg_latest(const struct queue_msg *m, const char *types,
					    const char *target);
/* "NEVER", "SUCCESS,FAILURE,DELAY" (any case, any order): QUEUE_NOTIFY_* bits, or 0 when it
   is not a valid NOTIFY value. */
unsigned queue_notify_parse(const char *s);
/*
 * The type of target's record, among those whose type is in types (the record types of one kind
 * of target, e.g. "DX" for a mailbox), or 0 if it has none yet.
 */
char queue_msg_record(const struct queue_msg *m, const char *types, const char *target);
/* Adds a record to be written by queue_msg_sync. reason: for all types but 'D'. */
int queue_msg_add_record(struct queue_msg *m, char type, const char *target, const char *reason);
/* Appends the pending records and fdatasyncs (1 flush); drops a torn tail first. */
int queue_msg_sync(struct queue_msg *m);
/* Sets the time of the next attempt (the file's mtime). */
int queue_msg_defer(struct queue_msg *m, time_t when);
void queue_msg_close(struct queue_msg *m);

/* Delivery finished: unlink msg/ID and fsync msg/ (1 flush). */
int queue_remove(int dirfd, const char *id);
/* Delivery finished with failures: rename msg/ID to bounce/ID, fsync both directories. */
int queue_bounce(int dirfd, const char *id);

/* Seconds since the message was queued, from its id; 0 when the id does not say. */
double queue_age(const char *id, const struct timespec *now);

#endif
