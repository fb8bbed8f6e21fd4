/* postroom: ISC license, see LICENSE. */
#ifndef QUEUE_ADMIN_H
#define QUEUE_ADMIN_H

#include <stddef.h>
#include <time.h>

#include "queue.h"

/*
 * What the administrator's tools share (queue-list, queue-flush, queue-remove, queue-hold,
 * queue-release). They work beside a running queue-run, so every change to a queue file is made
 * under the file's flock(2) lock, the one queue-run holds while it delivers (queue(5)), and only
 * after checking that the name still refers to the file that was locked.
 * Actions return 1, or 0 with errno set.
 */

/* 1 if id can name a queue file: not empty, shorter than QUEUE_ID_MAX, no '/', no leading '.'. */
int queue_admin_id_ok(const char *id);

/* Unix seconds at which the message was queued, from its id (either form of queue(5)); 0 when
   the id does not say. */
time_t queue_admin_queued(const char *id);

/* 1 if the address's domain (after its last '@') is domain, ignoring case. */
int queue_admin_in_domain(const char *addr, const char *domain);

/* The names in dir (relative to the queue's dirfd) that can be queue ids, sorted by strcmp. A
   missing dir is an empty list: hold/ is missing from queues made before it existed. */
struct queue_admin_ids {
	char (*id)[QUEUE_ID_MAX];
	size_t n, cap;
};
#define QUEUE_ADMIN_IDS_ZERO { 0, 0, 0 }
int queue_admin_list(struct queue_admin_ids *out, int dirfd, const char *dir);
void queue_admin_ids_free(struct queue_admin_ids *ids);

/* Makes hold/ (mode 0750, with msg/'s owner when run as root) if it is missing, durably. */
int queue_admin_hold_dir(int dirfd);

/*
 * Writes the byte c to the trigger FIFO without blocking: "\0" (rescan, as queue-inject does) or
 * 'F' (queue-flush: also forget what you remember of destinations and postponements). Nobody
 * reading (ENXIO) is success: a queue-run that starts later scans msg/ anyway. A missing trigger
 * is an error (ENOENT), and so is one that is not a FIFO (EINVAL). A full FIFO is waited on for a
 * second (then EAGAIN), since queue-run drains it at once when it is alive.
 * The caller ignores SIGPIPE: a reader that goes away between the open and the write is nobody
 * reading too.
 */
int queue_admin_trigger(int dirfd, char c);

/* --- Listing ---------------------------------------------------------------------------------- */

enum queue_admin_state {
	QUEUE_STATE_DEFERRED,	/* waiting for its next attempt */
	QUEUE_STATE_ACTIVE,	/* a process (normally queue-run) holds the file's lock */
	QUEUE_STATE_HELD,	/* in hold/ */
	QUEUE_STATE_DELIVERED,	/* a D or S record names the recipient */
	QUEUE_STATE_FAILED,	/* an X, R, P or J record names it */
	QUEUE_STATE_INVALID,	/* the file is not a queue file */
};

/* One queue file as queue-list shows it. */
struct queue_admin_entry {
	struct queue_msg m;	/* when valid */
	const char *dir;	/* "msg" or "hold" */
	int valid;
	int active;
	time_t next;		/* mtime: the next attempt, for a file in msg/ */
	const struct queue_record *pending_l;	/* the latest L of a target not done, or 0 */
};
#define QUEUE_ADMIN_ENTRY_ZERO { .m = QUEUE_MSG_ZERO }

/*
 * Reads dir/id without changing anything. A file that is not a queue file is 1 with valid 0.
 * "active" is tested with a shared lock taken without waiting and dropped at once, so a
 * delivery that starts meanwhile is refused only for that instant.
 * Returns 1, or 0 with errno (ENOENT: gone meanwhile).
 */
int queue_admin_peek(struct queue_admin_entry *e, int dirfd, const char *dir, const char *id);
void queue_admin_entry_free(struct queue_admin_entry *e);

/*
 * The state of the entry's recipient i, from the records that name its address (ignoring case;
 * queue(5)), and in *reason the text to show with it, or 0: for a failure, its reason; for a
 * recipient not done, the last temporary failure (L) of that address, else the message's latest.
 * A recipient whose records name only the targets it was expanded to (an alias) has none of its
 * own, so it is not done until the message is.
 */
enum queue_admin_state queue_admin_rcpt_state(const struct queue_admin_entry *e, size_t i,
					      const char **reason);
/* "deferred", "active", ... */
const char *queue_admin_state_name(enum queue_admin_state s);

/* --- Changing --------------------------------------------------------------------------------- */

enum queue_admin_op {
	QUEUE_OP_REMOVE,	/* unlink from msg/ or hold/ */
	QUEUE_OP_HOLD,		/* msg/ -> hold/ */
	QUEUE_OP_RELEASE,	/* hold/ -> msg/, due now */
};

enum queue_admin_result {
	QUEUE_ADMIN_DONE,
	QUEUE_ADMIN_ALREADY,	/* hold: already in hold/; release: already in msg/ */
	QUEUE_ADMIN_BADID,	/* not a valid id: nothing looked at */
	QUEUE_ADMIN_NOTFOUND,	/* in neither msg/ nor hold/ */
	QUEUE_ADMIN_GONE,	/* it was there, but delivered (or removed) while we waited */
	QUEUE_ADMIN_ERROR,	/* errno set, *step says what failed */
};

/*
 * Does op on the message id: finds it in msg/ or hold/, opens it and takes its lock, waiting
 * without limit for a delivery attempt in progress to end (queue-run bounds its attempts), then
 * checks that the name still refers to the locked file, and only then changes it, flushing the
 * directories so that the change survives a crash. When it returns, no queue-run can start a
 * delivery of a removed or held message. *step: "open", "lock", "unlink", "move",
 * "sync msg/"... for QUEUE_ADMIN_ERROR.
 */
enum queue_admin_result queue_admin_apply(int dirfd, enum queue_admin_op op, const char *id,
					  const char **step);

/*
 * The whole of queue-remove, queue-hold and queue-release: op on each id of argv (after the
 * program's name), one line on stdout for each id done ("ID: done", or "ID: already" when it
 * already was), one on stderr for each failure; for QUEUE_OP_RELEASE one byte on the trigger
 * once, after all. Returns the exit code: 0, 100 (an id bad or not found), 111.
 */
int queue_admin_main(int argc, char **argv, enum queue_admin_op op, const char *done,
		     const char *already);

#endif
