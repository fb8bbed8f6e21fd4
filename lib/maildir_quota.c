/* postroom: ISC license, see LICENSE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "maildir.h"

/*
 * Maildir++ quota, as Courier defined it and Dovecot keeps it: maildirsize, in the Maildir's root
 * only, is a cache of the size of the whole Maildir, folders included. Its first line states the
 * limits ("<bytes>S", "<count>C", comma-separated: Dovecot writes "100000S,50C"); each later
 * line adds "<bytes> <count>". It is rebuilt when missing, when it states another byte limit,
 * when it has grown past 5120 bytes or is older than 15 minutes. Losing an update costs accuracy
 * until the next rebuild, never mail.
 */

#define MAILDIRSIZE_MAX 5120
#define MAILDIRSIZE_AGE (15 * 60)
#define DOTLOCK_STALE 30	/* seconds: Dovecot's stale_timeout for maildirsize.lock */
#define LOCK_NAME "postroom-quota.lock"

int maildir_quota_root(const char *maildir, char *root, size_t size)
{
	char path[PATH_MAX];
	size_t n = strlen(maildir);

	while (n > 1 && maildir[n - 1] == '/')
		n--;
	if (n >= size || snprintf(path, sizeof path, "%.*s/maildirfolder", (int)n, maildir) >=
				 (int)sizeof path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	memcpy(root, maildir, n);
	root[n] = 0;
	struct stat st;
	if (stat(path, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR;	/* not a folder: its own root */
	/* A Maildir++ folder ROOT/.Name: the quota is ROOT's. */
	char *slash = strrchr(root, '/');
	if (!slash)
		strcpy(root, ".");
	else if (slash == root)
		root[1] = 0;
	else
		*slash = 0;
	return 1;
}

int maildir_quota_lock(const char *root)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof path, "%s/" LOCK_NAME, root) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

/* Size of a message file: ",S=<n>" in its name, else stat. */
static int file_size(int dirfd, const char *name, unsigned long long *size)
{
	const char *s = strstr(name, ",S=");
	if (s) {
		s += 3;
		size_t n = strspn(s, "0123456789");
		if (n && scan_ullong(s, n, size))
			return 1;
	}
	struct stat st;
	if (fstatat(dirfd, name, &st, 0) < 0)
		return errno == ENOENT ? (*size = 0, 1) : 0;	/* moved away meanwhile */
	*size = (unsigned long long)st.st_size;
	return 1;
}

static int add_dir(const char *path, unsigned long long *bytes, unsigned long long *count)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR;	/* a folder without new/ or cur/ */
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		unsigned long long size;
		if (!file_size(dirfd(d), e->d_name, &size)) {
			int err = errno;
			closedir(d);
			errno = err;
			return 0;
		}
		*bytes += size;
		(*count)++;
	}
	closedir(d);
	return 1;
}

/* A Maildir++ folder: a directory named ".Name". .nfs files, .DS_Store and Dovecot's ".temp."
 * dotlock files are regular files there, not folders. */
static int is_folder(int dirfd, const struct dirent *e)
{
	if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
		return 0;
	if (e->d_type == DT_DIR)
		return 1;
	if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
		return 0;
	struct stat st;
	return fstatat(dirfd, e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

/* Sums new/ and cur/ of the Maildir and of each Maildir++ folder (".Name"). */
static int recalculate(const char *root, unsigned long long *bytes, unsigned long long *count)
{
	char path[PATH_MAX];

	*bytes = *count = 0;
	static const char *const sub[] = { "new", "cur" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", root, sub[i]);
		if (!add_dir(path, bytes, count))
			return 0;
	}
	DIR *d = opendir(root);
	if (!d)
		return 0;
	struct dirent *e;
	int ok = 1;
	while (ok && (e = readdir(d))) {
		if (!is_folder(dirfd(d), e))
			continue;
		for (int i = 0; ok && i < 2; i++) {
			if (snprintf(path, sizeof path, "%s/%s/%s", root, e->d_name, sub[i]) >=
			    (int)sizeof path)
				continue;
			ok = add_dir(path, bytes, count);
		}
	}
	int err = errno;
	closedir(d);
	errno = err;
	return ok;
}

/*
 * The header line s[0..n): "<n>S" and "<n>C" parts separated by commas, as Courier defines it.
 * 1 with the limits (0 for a part that is absent), or 0 if it is no such line.
 */
static int parse_limits(const char *s, size_t n, unsigned long long *bytes,
			unsigned long long *count, int *has_bytes)
{
	*bytes = *count = 0;
	*has_bytes = 0;
	while (n) {
		size_t d = 0;
		while (d < n && s[d] >= '0' && s[d] <= '9')
			d++;
		unsigned long long v;
		if (d == n || !scan_ullong(s, d, &v))
			return 0;
		if (s[d] == 'S') {
			*bytes = v;
			*has_bytes = 1;
		} else if (s[d] == 'C') {
			*count = v;
		} else {
			return 0;
		}
		s += d + 1;
		n -= d + 1;
		if (n && (*s != ',' || n == 1))
			return 0;
		if (n)
			s++, n--;
	}
	return 1;
}

/* Sums the "<bytes> <count>" lines in s (NUL-terminated); 0 if one is malformed. */
static int sum_lines(const char *s, struct maildir_quota *q)
{
	long long bytes = 0, count = 0;

	for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
		char *end;
		errno = 0;
		long long b = strtoll(s, &end, 10);
		if (end == s || (*end != ' ' && *end != '\t') || errno)
			return 0;
		const char *c = end;
		long long n = strtoll(c, &end, 10);
		if (end == c || end != nl || errno)
			return 0;
		bytes += b;
		count += n;
	}
	if (*s)
		return 0;	/* a torn last line */
	q->bytes = bytes < 0 ? 0 : (unsigned long long)bytes;
	q->count = count < 0 ? 0 : (unsigned long long)count;
	return 1;
}

/*
 * Reads maildirsize: 1 when it is usable (the usage in *q), 0 when it must be rebuilt. Either
 * way a count limit in its header is kept in q->count_limit.
 */
static int read_maildirsize(const char *path, struct maildir_quota *q)
{
	char text[MAILDIRSIZE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 ? read(fd, text, sizeof text) : -1;
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = 0;
	char *nl = strchr(text, '\n');
	unsigned long long bytes, count;
	int has_bytes;
	if (!nl || !parse_limits(text, (size_t)(nl - text), &bytes, &count, &has_bytes))
		return 0;
	q->count_limit = count;
	if (n > MAILDIRSIZE_MAX || st.st_mtime + MAILDIRSIZE_AGE < time(0) || !has_bytes ||
	    bytes != q->bytes_limit)
		return 0;
	return sum_lines(nl + 1, q);
}

/*
 * Replaces maildirsize whole, the way Dovecot does: write maildirsize.lock (created exclusively,
 * so that a Dovecot rewrite and ours never mix), then rename it over maildirsize. When another
 * rewrite holds the lock, ours is skipped: the numbers are the same. No fsync: it is a cache.
 */
static void write_maildirsize(const char *root, const struct maildir_quota *q)
{
	char path[PATH_MAX], lock[PATH_MAX];
	char text[4 * FMT_ULLONG + 8];
	int fd = -1;

	snprintf(path, sizeof path, "%s/maildirsize", root);
	if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock)
		return;
	for (int tries = 0; fd < 0; tries++) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		struct stat st;
		if (errno != EEXIST || tries || stat(lock, &st) < 0 ||
		    st.st_mtime + DOTLOCK_STALE > time(0))
			return;
		unlink(lock);	/* left by a crash; Dovecot too takes it as stale by now */
	}
	int n = q->count_limit
		? snprintf(text, sizeof text, "%lluS,%lluC\n%llu %llu\n", q->bytes_limit,
			   q->count_limit, q->bytes, q->count)
		: snprintf(text, sizeof text, "%lluS\n%llu %llu\n", q->bytes_limit, q->bytes, q->count);
	int ok = write(fd, text, (size_t)n) == n;
	if (close(fd) < 0)
		ok = 0;
	if (!ok || rename(lock, path) < 0)
		unlink(lock);
}

int maildir_quota_read(const char *root, unsigned long long quota, struct maildir_quota *q)
{
	char path[PATH_MAX];

	*q = (struct maildir_quota){ .bytes_limit = quota };
	if (snprintf(path, sizeof path, "%s/maildirsize", root) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	if (read_maildirsize(path, q))
		return 1;
	if (!recalculate(root, &q->bytes, &q->count))
		return 0;
	write_maildirsize(root, q);
	return 1;
}

int maildir_quota_add(const char *root, unsigned long long bytes)
{
	char path[PATH_MAX], line[FMT_ULLONG + 4];

	snprintf(path, sizeof path, "%s/maildirsize", root);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int n = snprintf(line, sizeof line, "%llu 1\n", bytes);
	int ok = write(fd, line, (size_t)n) == n;
	int e = errno;
	close(fd);
	errno = e;
	return ok;
}
