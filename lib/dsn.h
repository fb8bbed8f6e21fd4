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

/* What a diagnostic is: it decides Diagnostic-Code's type (RFC 3464 2.3.6). */
enum dsn_diag {
	DSN_DIAG_LOCAL,		/* our own words ("X-Postroom;"): a local failure, a timeout,
				   a connection refused, the message expired */
	DSN_DIAG_SMTP,		/* a peer's SMTP reply as it came, "550 5.1.1 no such user"
				   ("smtp;") */
};

/* What became of one recipient. */
struct dsn_rcpt {
	const char *final;	/* the address the outcome is about (Final-Recipient: rfc822;) */
	const char *orcpt;	/* ORCPT as the client gave it ("rfc822;xtext"), or 0: becomes
				   Original-Recipient, its type kept and its xtext decoded */
	const char *original;	/* without an ORCPT: the envelope recipient it came from when
				   it differs from final (an alias), or 0. Named in the text
				   part and in X-Postroom-Envelope-Recipient, never in
				   Original-Recipient (RFC 3461 6.3 (d): only from an ORCPT) */
	const char *action;	/* "failed", "delayed", "delivered", "relayed", "expanded" */
	const char *status;	/* "5.1.1"; one that is not "[245].d{1,3}.d{1,3}" becomes the
				   action's X.0.0 */
	const char *remote_mta;	/* the host name of the peer that answered (not "NAME[ADDR]"),
				   or 0 */
	const char *diagnostic;	/* what was said, raw bytes (made ASCII here), or 0 for none */
	enum dsn_diag diagnostic_type;
	time_t last_attempt;	/* 0: not known */
	time_t will_retry_until;	/* "delayed": when the message expires; 0: not said */
};
#define DSN_RCPT_ZERO { 0, 0, 0, 0, 0, 0, 0, DSN_DIAG_LOCAL, 0, 0 }

struct dsn {
	const char *reporting_mta;	/* our host name (Reporting-MTA: dns;), never 0 */
	const char *queue_id;		/* the original's queue id (X-Postroom-Queue-ID), never 0 */
	time_t arrival;			/* when the original was queued (Arrival-Date); 0: not
					   known */
	time_t now;			/* Date: of the notice */
	const char *envid;		/* ENVID as the client gave it (xtext), or 0: becomes
					   Original-Envelope-Id, decoded */
	const char *to;			/* the original's envelope sender: the notice's recipient,
					   never 0 or "" */
	const char *postmaster;		/* the address in From: (MAILER-DAEMON-like), never 0 */
	int headers_only;		/* RET=HDRS: return the header only */
	unsigned long long return_max;	/* return at most this many bytes of the original;
					   a longer one has its header only (cut to this size at
					   a line end); 0: nothing is returned */
	const struct dsn_rcpt *r;
	size_t n;			/* at least 1 */
};
#define DSN_ZERO { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * Writes the notice, LF line ends as the queue holds messages, through put (which returns 1,
 * or 0 with errno). The original message is read from fd with pread, len bytes at offset off
 * (a queue file), in fixed chunks: twice or three times, never whole into memory.
 *
 * The notice: a header (Subject by the worst action: failed, then delayed, then the rest;
 * Auto-Submitted: auto-replied, RFC 3834) and a multipart/report of a text/plain explanation,
 * the message/delivery-status part and the original: message/rfc822 when it is returned whole
 * (not RET=HDRS, at most return_max bytes, no line over 998 octets, no NUL), else its header
 * as text/rfc822-headers (whole lines up to the empty line, at most return_max bytes, before
 * any line that could not be returned), or no third part when that is empty. An original with
 * bytes above 127 gets "Content-Transfer-Encoding: 8bit", on its part and on the notice. Every
 * line is at most 998 octets: header fields are folded, and bytes of the fields and of the
 * text that are not printable ASCII (controls, 8-bit bytes from a peer's reply) become '?',
 * but for an address in UTF-8, which is given as RFC 6533's "utf-8;" with \x{HEX}. The
 * boundary, made of the queue id and the time, occurs in none of the parts.
 *
 * Returns 1, or 0 with errno set: EINVAL (a field said to be never 0 is 0, n is 0, an action
 * is not one of the five), EPROTO (fd holds fewer than len bytes at off), EEXIST (16 boundaries
 * all occurred in the parts), EOVERFLOW (a time gmtime cannot take), ENOMEM, a pread or put
 * error.
 */
int dsn_write(const struct dsn *d, int fd, off_t off, unsigned long long len,
	      int (*put)(void *arg, const char *s, size_t n), void *arg);

#endif
