/* postroom: ISC license, see LICENSE. */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/*
 * Delivery status notifications (RFC 3464; RFC 3461 for ENVID, ORCPT and RET; RFC 6522 for
 * multipart/report): the message queue-run sends from <> to a sender when recipients failed,
 * are late, or (NOTIFY=SUCCESS) were delivered or relayed.
 */

/* What became of one recipient. */
struct dsn_rcpt {
	const char *final;	/* the address the outcome is about (Final-Recipient: rfc822;) */
	const char *orcpt;	/* ORCPT as the client gave it ("rfc822;xtext"), or 0 */
	const char *original;	/* without an ORCPT: the envelope recipient it came from when
				   it differs from final (an alias), or 0 */
	const char *action;	/* "failed", "delayed", "delivered", "relayed" */
	const char *status;	/* "5.1.1" */
	const char *remote_mta;	/* the host name of the peer that answered, or 0 */
	const char *diagnostic;	/* the peer's reply ("550 5.1.1 no such user": smtp;), or our
				   own words for a local failure; 0 for none */
	time_t last_attempt;	/* 0: not known */
	time_t will_retry_until;	/* "delayed": when the message expires; 0: not said */
};

struct dsn {
	const char *reporting_mta;	/* our host name (Reporting-MTA: dns;) */
	const char *queue_id;		/* the original's queue id (X-Postmaster-Queue-Id?) */
	time_t arrival;			/* when the original was queued (Arrival-Date) */
	time_t now;			/* Date: of the notice */
	const char *envid;		/* ENVID as the client gave it (xtext), or 0 */
	const char *to;			/* the original's envelope sender: the notice's recipient */
	const char *postmaster;		/* the address in From: (MAILER-DAEMON-like), never 0 */
	int headers_only;		/* RET=HDRS: return the header only */
	unsigned long long return_max;	/* return at most this many bytes of the original;
					   a longer one has its header only */
	const struct dsn_rcpt *r;
	size_t n;
};

/*
 * Writes the notice, LF line ends as the queue holds messages, through put (which returns 1,
 * or 0 with errno). The original message is read from fd, len bytes at offset off (a queue
 * file). Returns 1, or 0 with errno set.
 */
int dsn_write(const struct dsn *d, int fd, off_t off, unsigned long long len,
	      int (*put)(void *arg, const char *s, size_t n), void *arg);

#endif
