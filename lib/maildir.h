/* postroom: ISC license, see LICENSE. */
#ifndef MAILDIR_H
#define MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Delivery into a Maildir (D. J. Bernstein's layout, with Courier's Maildir++ quota):
 * write tmp/NAME, fsync it, link it to new/NAME, unlink tmp/NAME, fsync new/. On Linux the link
 * is durable only once new/ is fsynced, so "delivered" is said only after that second flush.
 * The file starts with Return-Path, X-Original-To (when the original recipient is known) and
 * Delivered-To, their values with every control byte turned into '_' (as qmail-local does, so
 * that no value can add a header line), then the message without its own Return-Path fields
 * (RFC 5321 section 4.4: the one that counts is the one added at final delivery).
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
	const char *original_recipient;	/* the envelope recipient as given, for X-Original-To;
					 * 0 or "": no X-Original-To */
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

/* A server after login (imap-serve -A, pop3-serve -A) makes maildir its working directory and,
   run as root (by a checkpassword program that stays root), becomes its owner: nothing after
   login needs more, and a mistake then reaches one user's mail at most. A Maildir that root
   owns is served as root. 1, or 0 with errno set (EPERM when root could not be given up). */
int maildir_enter(const char *maildir);

/* Makes sure MAILDIR/tmp, new and cur exist (mode 0700), as Dovecot does on first delivery or
 * login. 1, or 0 with errno set. */
int maildir_make(const char *maildir);

/*
 * Maildir++ quota (maildir_quota.c). The quota belongs to the whole Maildir: a Maildir++ folder
 * (a directory with a maildirfolder file) counts against its parent, the root, which alone
 * holds maildirsize: "<bytes>S[,<count>C]", then "<bytes> <count>" lines. It is rebuilt from the
 * file names' ",S=" sizes when missing, stale or stating another byte limit; a count limit in it
 * is kept. Deliveries serialise their check and their update on the root's postroom-quota.lock
 * (flock), so that concurrent deliveries cannot all pass one check.
 * Return 1, or 0 with errno set, except maildir_quota_lock.
 */
struct maildir_quota {
	unsigned long long bytes_limit;	/* 0: none */
	unsigned long long count_limit;	/* 0: none */
	unsigned long long bytes;	/* in use */
	unsigned long long count;
};

/* The quota root of maildir into root (size bytes): maildir itself, or its parent if a folder. */
int maildir_quota_root(const char *maildir, char *root, size_t size);
/* Waits for the root's quota lock; its fd (close it to unlock), or -1 with errno set. */
int maildir_quota_lock(const char *root);
/* The limits (quota bytes, and the count maildirsize states) and the usage of root. */
int maildir_quota_read(const char *root, unsigned long long quota, struct maildir_quota *q);
/* Appends one message of bytes to root's maildirsize if there is one (else 0, ENOENT). */
int maildir_quota_add(const char *root, unsigned long long bytes);

#endif
