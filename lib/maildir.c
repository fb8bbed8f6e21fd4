/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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

/*
 * Run as root, a delivery gives what it creates to the owner of the directory it creates it
 * in, as if it had run as that user: mail stores owned by one user (vmail, say) stay that
 * user's, and the IMAP server, which runs as the Maildir's owner, can read every message.
 */
static int inherit_owner(const char *path, int fd, const char *dir)
{
	struct stat st;

	if (geteuid() != 0)
		return 1;
	if (stat(dir, &st) < 0)
		return 0;
	if (st.st_uid == 0 && st.st_gid == 0)
		return 1;
	return fd >= 0 ? fchown(fd, st.st_uid, st.st_gid) == 0
		       : chown(path, st.st_uid, st.st_gid) == 0;
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
					char made[PATH_MAX];
					memcpy(made, p, (size_t)(s - p) + 1);
					*parent_end = 0;
					ok = inherit_owner(made, -1, p[0] ? p : "/") &&
					     sync_dir_at(AT_FDCWD, p[0] ? p : "/");
					*parent_end = '/';
				} else {
					ok = inherit_owner(p, -1, ".") && sync_dir_at(AT_FDCWD, ".");
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

/*
 * A Maildir named ".Name" inside another Maildir is a Maildir++ folder: it gets the
 * maildirfolder file Dovecot and Courier give their folders, which is what tells a delivery
 * there that the quota is the parent's.
 */
static int mark_folder(const char *maildir)
{
	char parent[PATH_MAX], path[PATH_MAX];
	size_t n = strlen(maildir);

	while (n > 1 && maildir[n - 1] == '/')
		n--;
	if (n >= sizeof parent)
		return 1;
	memcpy(parent, maildir, n);
	parent[n] = 0;
	char *slash = strrchr(parent, '/');
	const char *name = slash ? slash + 1 : parent;
	if (name[0] != '.' || !strcmp(name, ".") || !strcmp(name, ".."))
		return 1;
	if (slash)
		slash[slash == parent] = 0;	/* "/.x" has the parent "/" */
	struct stat st;
	if (snprintf(path, sizeof path, "%s/cur", slash ? parent : ".") >= (int)sizeof path ||
	    stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 1;	/* not inside a Maildir: a Maildir that happens to have a dot name */
	if (snprintf(path, sizeof path, "%.*s/maildirfolder", (int)n, maildir) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	path[n] = 0;
	int owned = inherit_owner(0, fd, path);
	close(fd);
	if (!owned)
		return 0;
	/* Durable, or after a crash the folder would be a quota root of its own. */
	return sync_dir_at(AT_FDCWD, path);
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
	return mark_folder(maildir);
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

/*
 * Drops the message's own Return-Path fields, continuation lines included, while the header
 * streams through: a line is held back only until its first bytes tell whether it is one.
 */
struct rp_filter {
	enum { RP_LINE_START, RP_PASS, RP_DROP, RP_BODY } state;
	int dropping;	/* the last field seen was a Return-Path: its continuations go too */
	size_t len;
	char held[32];
};

/* "return-path" WSP* ":" at the start of held[0..len): 1 yes, 0 no, -1 not known yet. */
static int rp_match(const struct rp_filter *f)
{
	static const char name[] = "return-path";
	size_t i = 0;

	if (f->len == 1 && f->held[0] == '\r')
		return -1;	/* perhaps the empty line that ends the header */
	for (; i < f->len && i < sizeof name - 1; i++) {
		char c = f->held[i];
		if ((c >= 'A' && c <= 'Z' ? c + 'a' - 'A' : c) != name[i])
			return 0;
	}
	if (i < sizeof name - 1)
		return -1;
	for (; i < f->len; i++) {
		if (f->held[i] == ':')
			return 1;
		if (f->held[i] != ' ' && f->held[i] != '\t')
			return 0;
	}
	return f->len < sizeof f->held ? -1 : 0;
}

/* Filters in[0..n) into out (room for n + sizeof f->held bytes); returns the bytes put out. */
static size_t rp_feed(struct rp_filter *f, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		switch (f->state) {
		case RP_BODY:
			memcpy(out + o, in + i, n - i);
			return o + n - i;
		case RP_PASS:
			out[o++] = c;
			if (c == '\n')
				f->state = RP_LINE_START;
			break;
		case RP_DROP:
			if (c == '\n')
				f->state = RP_LINE_START;
			break;
		case RP_LINE_START:
			if (f->len == 0 && (c == ' ' || c == '\t')) {
				/* A continuation line goes with the field it continues. */
				f->state = f->dropping ? RP_DROP : RP_PASS;
				if (!f->dropping)
					out[o++] = c;
				break;
			}
			if (c == '\n') {
				/* An empty line ends the header; a short line is no field of interest. */
				int end = f->len == 0 || (f->len == 1 && f->held[0] == '\r');
				memcpy(out + o, f->held, f->len);
				o += f->len;
				out[o++] = c;
				f->len = 0;
				f->dropping = 0;
				if (end)
					f->state = RP_BODY;
				break;
			}
			f->held[f->len++] = c;
			int m = rp_match(f);
			if (m == 1) {
				f->dropping = 1;
				f->state = RP_DROP;
			} else if (m == 0) {
				memcpy(out + o, f->held, f->len);
				o += f->len;
				f->dropping = 0;
				f->state = RP_PASS;
			}
			if (m != -1)
				f->len = 0;
			break;
		}
	}
	return o;
}

/* What the filter still holds at the end of the message. */
static size_t rp_flush(struct rp_filter *f, char *out)
{
	size_t o = f->state == RP_LINE_START ? f->len : 0;
	memcpy(out, f->held, o);
	f->len = 0;
	return o;
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
	char chunk[COPY_CHUNK], filtered[COPY_CHUNK + sizeof ((struct rp_filter *)0)->held];
	struct rp_filter rp = { .state = RP_LINE_START };

	for (;;) {
		size_t want = sizeof chunk;
		if (cp->left >= 0 && (unsigned long long)cp->left < want)
			want = (size_t)cp->left;
		if (want == 0)
			break;
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
			break;
		}
		cp->off += r;
		if (cp->left >= 0)
			cp->left -= r;
		if (lc->in_header && loop_feed(lc, chunk, (size_t)r))
			return -1;
		const char *data = chunk;
		size_t len = (size_t)r;
		if (rp.state != RP_BODY) {
			len = rp_feed(&rp, chunk, len, filtered);
			data = filtered;
		}
		if (!fd_write_all(cp->outfd, data, len))
			return 0;
		cp->written += len;
	}
	size_t len = rp_flush(&rp, filtered);
	if (!fd_write_all(cp->outfd, filtered, len))
		return 0;
	cp->written += len;
	return 1;
}

/* A header field's value: s with every control byte turned into '_', as qmail-local does, so that
 * an envelope address can never end the line and add a field. 0 if it does not fit. */
static int header_value(char *out, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n >= size)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = c && (c < 0x20 || c == 0x7f) ? '_' : (char)c;
	}
	return 1;
}

/* Moves tmp/NAME to new/NAME,S=<size> and makes it durable; why gets the new name. */
/* The message's place in new/: NEW and NEWDIR (PATH_MAX bytes each). */
struct placed {
	char new[PATH_MAX];
	char newdir[PATH_MAX];
};

/* Links tmp into new/ (the message is visible, not yet durable) and removes tmp. */
static enum maildir_result place(const struct maildir_delivery *d, const char *tmp,
				 const char *name, unsigned long long size, struct placed *p,
				 char *why, size_t whylen)
{
	snprintf(p->newdir, sizeof p->newdir, "%s/new", d->maildir);
	if (snprintf(p->new, sizeof p->new, "%s/%s,S=%llu", p->newdir, name, size) >=
	    (int)sizeof p->new) {
		unlink(tmp);
		return fail(why, whylen, ENAMETOOLONG, "unable to link into", p->newdir);
	}
	if (link(tmp, p->new) < 0) {
		int e = errno;
		unlink(tmp);
		return fail(why, whylen, e, "unable to link into", p->newdir);
	}
	unlink(tmp);
	return MAILDIR_OK;
}

/* Flushes new/: only then is the message delivered. */
static enum maildir_result make_durable(const struct maildir_delivery *d, const struct placed *p,
					char *why, size_t whylen)
{
	if (!sync_dir_at(AT_FDCWD, p->newdir)) {
		/* The file is in new/ but may not survive a crash: say temporary, a repeat is safe. */
		int e = errno;
		unlink(p->new);
		return fail(why, whylen, e, "unable to sync", p->newdir);
	}
	snprintf(why, whylen, "%s", p->new + strlen(d->maildir) + 1);
	return MAILDIR_OK;
}

static enum maildir_result commit(const struct maildir_delivery *d, const char *tmp,
				  const char *name, unsigned long long size, char *why,
				  size_t whylen)
{
	struct placed p;
	enum maildir_result r = place(d, tmp, name, size, &p, why, whylen);

	return r == MAILDIR_OK ? make_durable(d, &p, why, whylen) : r;
}

/*
 * The quota step, under the root's lock: the check against the usage, the link into new/, and
 * the line added to maildirsize, so that concurrent deliveries see each other's messages. A
 * Maildir without a quota still gets its line when it has a maildirsize (Dovecot's, say).
 */
static enum maildir_result commit_counted(const struct maildir_delivery *d, const char *tmp,
					  const char *name, unsigned long long size, char *why,
					  size_t whylen)
{
	char root[PATH_MAX], path[PATH_MAX];
	int e;

	if (!maildir_quota_root(d->maildir, root, sizeof root)) {
		e = errno;
		unlink(tmp);
		return fail(why, whylen, e, "unable to find the quota root of", d->maildir);
	}
	/* Without a quota of ours, only a maildirsize already there (Dovecot's) needs the step. */
	struct stat st;
	if (!d->quota && (snprintf(path, sizeof path, "%s/maildirsize", root) >= (int)sizeof path ||
			  stat(path, &st) < 0))
		return commit(d, tmp, name, size, why, whylen);
	int lock = maildir_quota_lock(root);
	if (lock < 0 && d->quota) {
		e = errno;
		unlink(tmp);
		return fail(why, whylen, e, "unable to lock the quota of", root);
	}
	enum maildir_result r = MAILDIR_OK;
	struct maildir_quota q;
	if (d->quota && !maildir_quota_read(root, d->quota, &q)) {
		e = errno;
		r = fail(why, whylen, e, "unable to read the quota of", root);
	} else if (d->quota && q.bytes + size > q.bytes_limit) {
		snprintf(why, whylen, "%s mailbox full: %llu of %llu bytes used, message %llu bytes",
			 d->overquota_permanent ? "5.2.2" : "4.2.2", q.bytes, q.bytes_limit, size);
		r = d->overquota_permanent ? MAILDIR_PERM : MAILDIR_TEMP;
	} else if (d->quota && q.count_limit && q.count + 1 > q.count_limit) {
		snprintf(why, whylen, "%s mailbox full: %llu of %llu messages",
			 d->overquota_permanent ? "5.2.2" : "4.2.2", q.count, q.count_limit);
		r = d->overquota_permanent ? MAILDIR_PERM : MAILDIR_TEMP;
	}
	struct placed p;
	if (r != MAILDIR_OK) {
		unlink(tmp);
	} else {
		r = place(d, tmp, name, size, &p, why, whylen);
		if (r == MAILDIR_OK)
			maildir_quota_add(root, size);	/* a cache: a failure only costs a rescan */
	}
	if (lock >= 0)
		close(lock);
	/* The flush of new/ outside the lock: deliveries to one mailbox need not wait on each
	   other's. If it fails, maildirsize counts one message too many until its next rebuild. */
	return r == MAILDIR_OK ? make_durable(d, &p, why, whylen) : r;
}

enum maildir_result maildir_deliver(const struct maildir_delivery *d, int fd, off_t off,
				    long long len, char *why, size_t whylen)
{
	static unsigned long counter;
	char tmp[PATH_MAX], name[400];
	char sender[HEADER_LINE_MAX], rcpt[HEADER_LINE_MAX], orig[HEADER_LINE_MAX];
	char head[3 * HEADER_LINE_MAX + 64];
	struct timeval tv;
	int out = -1;

	const char *o = d->original_recipient ? d->original_recipient : "";
	if (!header_value(sender, sizeof sender, d->sender) ||
	    !header_value(rcpt, sizeof rcpt, d->recipient) || !header_value(orig, sizeof orig, o)) {
		snprintf(why, whylen, "envelope address too long");
		return MAILDIR_PERM;
	}
	for (int tries = 0, made = 0;; tries++) {
		gettimeofday(&tv, 0);
		snprintf(name, sizeof name, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec,
			 (long)tv.tv_usec, (long)getpid(), ++counter, host_part());
		if (snprintf(tmp, sizeof tmp, "%s/tmp/%s", d->maildir, name) >= (int)sizeof tmp)
			return fail(why, whylen, ENAMETOOLONG, "unable to create a file in", d->maildir);
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out >= 0) {
			tmp[strlen(tmp) - strlen(name) - 1] = 0;
			int owned = inherit_owner(0, out, tmp);
			tmp[strlen(tmp)] = '/';
			if (!owned) {
				int e = errno;
				close(out);
				unlink(tmp);
				return fail(why, whylen, e, "unable to give to the Maildir's owner", tmp);
			}
			break;
		}
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

	/* Postfix's order: Return-Path, X-Original-To, Delivered-To. */
	int hlen = orig[0] ? snprintf(head, sizeof head,
				      "Return-Path: <%s>\nX-Original-To: %s\nDelivered-To: %s\n",
				      sender, orig, rcpt)
			   : snprintf(head, sizeof head, "Return-Path: <%s>\nDelivered-To: %s\n",
				      sender, rcpt);
	struct copy cp = { .infd = fd, .off = off, .left = len, .outfd = out };
	struct loop_check lc = { .recipient = rcpt, .in_header = 1 };
	int r;
	if (!fd_write_all(out, head, (size_t)hlen)) {
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
				 rcpt);
			return MAILDIR_PERM;
		}
		if (r == -2) {
			snprintf(why, whylen, "unable to read the message: %s", strerror(e));
			return MAILDIR_TEMP;
		}
		return fail(why, whylen, e, "unable to write", tmp);
	}
	return commit_counted(d, tmp, name, cp.written, why, whylen);
}

int maildir_enter(const char *maildir)
{
	struct stat st;

	if (chdir(maildir) < 0)
		return 0;
	if (geteuid() != 0)
		return 1;
	if (stat(".", &st) < 0)
		return 0;
	if (st.st_uid == 0)
		return 1;
	if (setgroups(1, &st.st_gid) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)
		return 0;
	if (setuid(0) == 0) {
		errno = EPERM;
		return 0;
	}
	return 1;
}
