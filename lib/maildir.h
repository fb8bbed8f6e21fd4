/* postroom: ISC license, see LICENSE. */
#ifndef MAILDIR_H
#define MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Delivery into a Maildir (D. J. Bernstein's layout, with Courier's Maildir++ quota):
 * write tmp/NAME, fsync it, link it to new/NAME, unlink tmp/NAME, fsync new/. On Linux the link
 * is durable only once new/ is fsynced, so "delivered" is said only after that second flush.
 * The file starts with Return-Path and Delivered-To, then the message as given.
 */

enum maildir_result {
	MAILDIR_OK,
	MAILDIR_TEMP,	/* try again later: I/O trouble, over quota (by default) */
	MAILDIR_PERM,	/* never: a mail loop, over quota with overquota_permanent */
};

struct maildir_delivery {
	const char *maildir;	/* the Maildir's path; created with tmp/ new/ cur/ when missing */
	const char *sender;	/* envelope sender, "" for the null sender */
	const char *recipient;	/* the mailbox address, for Delivered-To and loop detection */
	unsigned long long quota;	/* bytes; 0: no quota */
	int overquota_permanent;
};

/*
 * Delivers the message read from fd: exactly len bytes from offset off when len >= 0 (pread,
 * the file position is left alone), else everything up to end of file.
 * why (size whylen) gets a one-line reason on failure, and the new file's name on success.
 */
enum maildir_result maildir_deliver(const struct maildir_delivery *d, int fd, off_t off,
				    long long len, char *why, size_t whylen);

/* Makes sure MAILDIR/tmp, new and cur exist (mode 0700), as Dovecot does on first delivery or
 * login. 1, or 0 with errno set. */
int maildir_make(const char *maildir);

/*
 * Maildir++ quota (maildir_quota.c). maildirsize holds "<quota>S" then "<bytes> <count>" lines;
 * it is rebuilt from the file names' ",S=" sizes when missing, stale or for another quota.
 * Return 1, or 0 with errno set.
 */
int maildir_quota_used(const char *maildir, unsigned long long quota, unsigned long long *used);
int maildir_quota_add(const char *maildir, unsigned long long bytes);

#endif
