/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "maildir.h"
#include "sync.h"
#include "temp.h"

#define COPY_CHUNK 65536
#define HEADER_LINE_MAX 1100	/* longer header lines cannot be a Delivered-To of ours */

static enum maildir_result fail(char *why, size_t whylen, int e, const char *what,
				const char *path)
{
	snprintf(why, whylen, "%s %s: %s", what, path, strerror(e));
	return temp_errno(e) ? MAILDIR_TEMP : MAILDIR_PERM;
}

/* mkdir -p with mode 0700; each directory created is made durable in its parent. */
static int make_dirs(const char *path)
{
	char p[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof p) {
		errno = ENAMETOOLONG;
		return 0;
	}
	memcpy(p, path, n + 1);
	char *parent_end = p[0] == '/' ? p : 0;	/* the slash before the component being made */
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char c = *s;
		if (s[-1] != '/') {
			*s = 0;
			if (mkdir(p, 0700) == 0) {
				int ok = 1;
				if (parent_end) {
					*parent_end = 0;
					ok = sync_dir_at(AT_FDCWD, p[0] ? p : "/");
					*parent_end = '/';
				} else {
					ok = sync_dir_at(AT_FDCWD, ".");
				}
				if (!ok)
					return 0;
			} else if (errno != EEXIST) {
				return 0;
			}
			*s = c;
			parent_end = s;
		}
		if (!c)
			return 1;
	}
}

int maildir_make(const char *maildir)
{
	char path[PATH_MAX];
	static const char *const sub[] = { "cur", "new", "tmp" };

	for (size_t i = 0; i < 3; i++) {
		if (snprintf(path, sizeof path, "%s/%s", maildir, sub[i]) >= (int)sizeof path) {
			errno = ENAMETOOLONG;
			return 0;
		}
		struct stat st;
		if (stat(path, &st) == 0)
			continue;
		if (errno != ENOENT || !make_dirs(path))
			return 0;
	}
	return 1;
}

/* This host's name as a Maildir file name part: '/' and ':' are escaped as the spec says. */
static const char *host_part(void)
{
	static char host[256];
	char raw[200];

	if (host[0])
		return host;
	if (gethostname(raw, sizeof raw - 1) < 0)
		strcpy(raw, "localhost");
	raw[sizeof raw - 1] = 0;
	size_t o = 0;
	for (const char *p = raw; *p && o < sizeof host - 5; p++) {
		if (*p == '/' || *p == ':')
			o += (size_t)snprintf(host + o, sizeof host - o, "\\%03o", (unsigned char)*p);
		else
			host[o++] = *p;
	}
	host[o] = 0;
	return host;
}

/* Watches the header for "Delivered-To: <recipient>" while the message is copied. */
struct loop_check {
	const char *recipient;
	int in_header;
	size_t len;
	int overflow;
	char line[HEADER_LINE_MAX];
};

static int is_our_delivered_to(struct loop_check *c)
{
	static const char field[] = "delivered-to:";
	size_t n = c->len;

	while (n && (c->line[n - 1] == '\r' || c->line[n - 1] == ' ' || c->line[n - 1] == '\t'))
		n--;
	if (n < sizeof field - 1 || strncasecmp(c->line, field, sizeof field - 1))
		return 0;
	size_t i = sizeof field - 1;
	while (i < n && (c->line[i] == ' ' || c->line[i] == '\t'))
		i++;
	size_t rlen = strlen(c->recipient);
	return n - i == rlen && !strncasecmp(c->line + i, c->recipient, rlen);
}

/* Feeds bytes; returns 1 when a loop was seen. */
static int loop_feed(struct loop_check *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n && c->in_header; i++) {
		if (s[i] != '\n') {
			if (c->len < sizeof c->line)
				c->line[c->len++] = s[i];
			else
				c->overflow = 1;
			continue;
		}
		if (c->len == 0 || (c->len == 1 && c->line[0] == '\r'))
			c->in_header = 0;
		else if (!c->overflow && is_our_delivered_to(c))
			return 1;
		c->len = 0;
		c->overflow = 0;
	}
	return 0;
}

struct copy {
	int infd;
	off_t off;
	long long left;		/* -1: to end of file */
	int outfd;
	unsigned long long written;
};

/* Copies the message; 1 done, 0 error (errno), -1 loop found, -2 read error (errno). */
static int copy_message(struct copy *cp, struct loop_check *lc)
{
	char chunk[COPY_CHUNK];

	for (;;) {
		size_t want = sizeof chunk;
		if (cp->left >= 0 && (unsigned long long)cp->left < want)
			want = (size_t)cp->left;
		if (want == 0)
			return 1;
		ssize_t r = cp->left >= 0 ? pread(cp->infd, chunk, want, cp->off)
					  : read(cp->infd, chunk, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -2;
		}
		if (r == 0) {
			if (cp->left > 0) {
				errno = EIO;	/* the queue file is shorter than its header says */
				return -2;
			}
			return 1;
		}
		cp->off += r;
		if (cp->left >= 0)
			cp->left -= r;
		if (lc->in_header && loop_feed(lc, chunk, (size_t)r))
			return -1;
		if (!fd_write_all(cp->outfd, chunk, (size_t)r))
			return 0;
		cp->written += (unsigned long long)r;
	}
}

enum maildir_result maildir_deliver(const struct maildir_delivery *d, int fd, off_t off,
				    long long len, char *why, size_t whylen)
{
	static unsigned long counter;
	char tmp[PATH_MAX], new[PATH_MAX], newdir[PATH_MAX], name[400];
	char head[2 * 1100];
	struct timeval tv;
	int out = -1;

	for (int tries = 0, made = 0;; tries++) {
		gettimeofday(&tv, 0);
		snprintf(name, sizeof name, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
			 (long)tv.tv_usec, (long)getpid(), ++counter, host_part());
		if (snprintf(tmp, sizeof tmp, "%s/tmp/%s", d->maildir, name) >= (int)sizeof tmp)
			return fail(why, whylen, ENAMETOOLONG, "unable to create a file in", d->maildir);
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out >= 0)
			break;
		/* The first delivery makes the Maildir (and its parents), as Dovecot does. */
		if (errno == ENOENT && !made) {
			if (!maildir_make(d->maildir))
				return fail(why, whylen, errno, "unable to create Maildir", d->maildir);
			made = 1;
			continue;
		}
		if (errno != EEXIST || tries == 10)
			return fail(why, whylen, errno, "unable to create", tmp);
	}

	int hlen = snprintf(head, sizeof head, "Return-Path: <%s>\nDelivered-To: %s\n", d->sender,
			    d->recipient);
	struct copy cp = { .infd = fd, .off = off, .left = len, .outfd = out };
	struct loop_check lc = { .recipient = d->recipient, .in_header = 1 };
	int r;
	if (hlen < 0 || hlen >= (int)sizeof head) {
		errno = ENAMETOOLONG;
		r = 0;
	} else if (!fd_write_all(out, head, (size_t)hlen)) {
		r = 0;
	} else {
		cp.written = (unsigned long long)hlen;
		r = copy_message(&cp, &lc);
	}
	if (r == 1 && fdatasync(out) < 0)
		r = 0;
	int e = errno;
	if (close(out) < 0 && r == 1) {
		e = errno;
		r = 0;
	}
	if (r != 1) {
		unlink(tmp);
		if (r == -1) {
			snprintf(why, whylen, "mail loop: a Delivered-To: %s header is already present",
				 d->recipient);
			return MAILDIR_PERM;
		}
		if (r == -2) {
			snprintf(why, whylen, "unable to read the message: %s", strerror(e));
			return MAILDIR_TEMP;
		}
		return fail(why, whylen, e, "unable to write", tmp);
	}

	if (d->quota) {
		unsigned long long used;
		if (!maildir_quota_used(d->maildir, d->quota, &used)) {
			e = errno;
			unlink(tmp);
			return fail(why, whylen, e, "unable to read the quota of", d->maildir);
		}
		if (used + cp.written > d->quota) {
			unlink(tmp);
			snprintf(why, whylen, "%s mailbox full: %llu of %llu bytes used, message %llu bytes",
				 d->overquota_permanent ? "5.2.2" : "4.2.2", used, d->quota, cp.written);
			return d->overquota_permanent ? MAILDIR_PERM : MAILDIR_TEMP;
		}
	}

	snprintf(newdir, sizeof newdir, "%s/new", d->maildir);
	if (snprintf(new, sizeof new, "%s/%s,S=%llu", newdir, name, cp.written) >= (int)sizeof new) {
		unlink(tmp);
		return fail(why, whylen, ENAMETOOLONG, "unable to link into", newdir);
	}
	if (link(tmp, new) < 0) {
		e = errno;
		unlink(tmp);
		return fail(why, whylen, e, "unable to link into", newdir);
	}
	unlink(tmp);
	if (!sync_dir_at(AT_FDCWD, newdir)) {
		/* The file is in new/ but may not survive a crash: say temporary, a repeat is safe. */
		e = errno;
		unlink(new);
		return fail(why, whylen, e, "unable to sync", newdir);
	}
	if (d->quota)
		maildir_quota_add(d->maildir, cp.written);	/* a cache: a failure only costs a rescan */
	snprintf(why, whylen, "%s", new + strlen(d->maildir) + 1);
	return MAILDIR_OK;
}
