/* postroom: ISC license, see LICENSE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "maildir.h"

/*
 * Maildir++ quota, as Courier defined it and Dovecot keeps it: maildirsize is a cache of the
 * Maildir's size. Its first line states the quota; each later line adds "<bytes> <count>".
 * It is rebuilt when missing, when it states another quota, when it has grown past 5120 bytes or
 * is older than 15 minutes. Losing an update costs accuracy until the next rebuild, never mail.
 */

#define MAILDIRSIZE_MAX 5120
#define MAILDIRSIZE_AGE (15 * 60)

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
		return errno == ENOENT;
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

/* Sums new/ and cur/ of the Maildir and of each Maildir++ folder (".Name"). */
static int recalculate(const char *maildir, unsigned long long *bytes, unsigned long long *count)
{
	char path[PATH_MAX];

	*bytes = *count = 0;
	static const char *const sub[] = { "new", "cur" };
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", maildir, sub[i]);
		if (!add_dir(path, bytes, count))
			return 0;
	}
	DIR *d = opendir(maildir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		for (int i = 0; i < 2; i++) {
			if (snprintf(path, sizeof path, "%s/%s/%s", maildir, e->d_name, sub[i]) >=
			    (int)sizeof path)
				continue;
			if (!add_dir(path, bytes, count)) {
				int err = errno;
				closedir(d);
				errno = err;
				return 0;
			}
		}
	}
	closedir(d);
	return 1;
}

/* Reads maildirsize; 1 usable (sum in *used), 0 must be rebuilt. */
static int read_maildirsize(const char *path, unsigned long long quota, unsigned long long *used)
{
	char text[MAILDIRSIZE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	ssize_t n = fstat(fd, &st) == 0 ? read(fd, text, sizeof text) : -1;
	close(fd);
	if (n < 0 || n > MAILDIRSIZE_MAX || st.st_mtime + MAILDIRSIZE_AGE < time(0))
		return 0;
	text[n] = 0;
	char *line = text, *nl = strchr(line, '\n');
	char want[FMT_ULLONG + 2];
	snprintf(want, sizeof want, "%lluS", quota);
	if (!nl || (size_t)(nl - line) != strlen(want) || memcmp(line, want, strlen(want)))
		return 0;
	long long sum = 0;
	for (line = nl + 1; (nl = strchr(line, '\n')); line = nl + 1) {
		char *end;
		long long b = strtoll(line, &end, 10);
		if (end == line)
			return 0;
		sum += b;
	}
	*used = sum < 0 ? 0 : (unsigned long long)sum;
	return 1;
}

int maildir_quota_used(const char *maildir, unsigned long long quota, unsigned long long *used)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned long long count;

	snprintf(path, sizeof path, "%s/maildirsize", maildir);
	if (read_maildirsize(path, quota, used))
		return 1;
	if (!recalculate(maildir, used, &count))
		return 0;
	/* Replace it whole: tmp file, rename. No fsync: it is a cache. */
	snprintf(tmp, sizeof tmp, "%s/tmp/maildirsize.%ld", maildir, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 1;
	char text[3 * FMT_ULLONG + 8];
	int n = snprintf(text, sizeof text, "%lluS\n%llu %llu\n", quota, *used, count);
	int ok = write(fd, text, (size_t)n) == n;
	if (close(fd) < 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
	return 1;
}

int maildir_quota_add(const char *maildir, unsigned long long bytes)
{
	char path[PATH_MAX], line[FMT_ULLONG + 4];

	snprintf(path, sizeof path, "%s/maildirsize", maildir);
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
