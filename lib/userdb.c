/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "fmt.h"
#include "sync.h"
#include "userdb.h"

int userdb_open(struct userdb *u, const char *path)
{
	u->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (u->fd < 0)
		return 0;
	if (cdb_init(&u->cdb, u->fd) < 0) {
		int e = errno;
		close(u->fd);
		u->fd = -1;
		errno = e ? e : EIO;
		return 0;
	}
	return 1;
}

void userdb_close(struct userdb *u)
{
	if (u->fd < 0)
		return;
	cdb_free(&u->cdb);
	close(u->fd);
	u->fd = -1;
}

/* Builds type + lower-cased name in key; 0 when the name cannot be a key. */
static size_t make_key(char *key, char type, const char *name, size_t n)
{
	if (n + 1 > USERDB_KEY_MAX)
		return 0;
	key[0] = type;
	memcpy(key + 1, name, n);
	addr_lower(key + 1, n);
	return n + 1;
}

/* Looks key up; 1 found (value in *val, *vlen), 0 not, -1 error. */
static int find(struct userdb *u, char type, const char *name, size_t n, const char **val,
		size_t *vlen)
{
	char key[USERDB_KEY_MAX];
	size_t klen = make_key(key, type, name, n);

	if (!klen)
		return 0;
	int r = cdb_find(&u->cdb, key, (unsigned)klen);
	if (r < 0) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	if (r == 0)
		return 0;
	*vlen = cdb_datalen(&u->cdb);
	*val = cdb_get(&u->cdb, cdb_datalen(&u->cdb), cdb_datapos(&u->cdb));
	if (!*val) {
		errno = EIO;
		return -1;
	}
	return 1;
}

int userdb_domain(struct userdb *u, const char *domain, size_t n)
{
	const char *val;
	size_t vlen;

	return find(u, 'D', domain, n, &val, &vlen);
}

int userdb_domain_target(struct userdb *u, const char *domain, size_t n, const char **target,
			 size_t *tlen)
{
	return find(u, 'D', domain, n, target, tlen);
}

int userdb_stamp(struct userdb *u, const char **stamp, size_t *len)
{
	return find(u, 'C', "", 0, stamp, len);
}

int userdb_first_domain(struct userdb *u, char *out, size_t size)
{
	unsigned pos;
	int r;

	cdb_seqinit(&pos, &u->cdb);
	while ((r = cdb_seqnext(&pos, &u->cdb)) > 0) {
		unsigned klen = cdb_keylen(&u->cdb);
		const char *key = cdb_getkey(&u->cdb);
		if (!key)
			break;
		if (klen > 1 && key[0] == 'D' && klen - 1 < size) {
			memcpy(out, key + 1, klen - 1);
			out[klen - 1] = 0;
			return 1;
		}
	}
	if (r < 0 || (r > 0 && !cdb_getkey(&u->cdb))) {
		errno = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

int userdb_mailbox(struct userdb *u, const char *addr, size_t n, struct userdb_mailbox *mb)
{
	const char *val;
	size_t vlen;
	int r = find(u, 'M', addr, n, &val, &vlen);

	if (r != 1)
		return r;
	/* password \0 maildir \0 quota */
	const char *nul1 = memchr(val, 0, vlen);
	const char *nul2 = nul1 ? memchr(nul1 + 1, 0, vlen - (size_t)(nul1 + 1 - val)) : 0;
	if (!nul2) {
		errno = EPROTO;
		return -1;
	}
	mb->password = val;
	mb->password_len = (size_t)(nul1 - val);
	mb->maildir = nul1 + 1;
	mb->maildir_len = (size_t)(nul2 - nul1 - 1);
	if (!scan_ullong(nul2 + 1, vlen - (size_t)(nul2 + 1 - val), &mb->quota)) {
		errno = EPROTO;
		return -1;
	}
	return 1;
}

int userdb_alias(struct userdb *u, const char *addr, size_t n, const char **targets, size_t *len)
{
	int r = find(u, 'A', addr, n, targets, len);

	if (r == 1 && (*len == 0 || (*targets)[*len - 1] != 0)) {
		errno = EPROTO;
		return -1;
	}
	return r;
}

int userdb_maildir_safe(const char *maildir, size_t n)
{
	if (n == 0 || maildir[0] == '/' || memchr(maildir, 0, n))
		return 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && maildir[j] != '/')
			j++;
		if (j - i == 2 && maildir[i] == '.' && maildir[i + 1] == '.')
			return 0;
		i = j + 1;
	}
	return 1;
}

/*
 * The database holds every password hash, so it is never readable by all: a new one gets
 * USERDB_MODE, and a replacement the mode, owner and group of the file it replaces (an admin's
 * chmod or chgrp survives a recompile), as far as the user compiling may set them; when the
 * group cannot be kept, only the owner may read it.
 */
static int keep_access(int fd, const char *path)
{
	struct stat old;

	if (stat(path, &old) < 0)
		return errno == ENOENT ? fchmod(fd, USERDB_MODE) == 0 : 0;
	mode_t mode = old.st_mode & 0777 & ~(mode_t)0007;
	if (fchown(fd, old.st_uid, old.st_gid) < 0 && fchown(fd, (uid_t)-1, old.st_gid) < 0)
		mode &= 0700;	/* the old group's access must not go to our own group instead */
	return fchmod(fd, mode) == 0;
}

int userdb_make_start(struct userdb_make *m, const char *path)
{
	size_t n = strlen(path) + 40;

	m->path = strdup(path);
	m->tmppath = malloc(n);
	if (!m->path || !m->tmppath) {
		free(m->path);
		free(m->tmppath);
		m->path = m->tmppath = 0;
		return 0;
	}
	snprintf(m->tmppath, n, "%s.tmp.%ld", path, (long)getpid());
	/* Read-write: tinycdb reads back what it wrote to find duplicate keys. Created 0600 so that
	 * no one else can open it before its mode is set. */
	m->fd = open(m->tmppath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (m->fd < 0 || !keep_access(m->fd, path)) {
		int e = errno;
		userdb_make_abort(m);
		errno = e;
		return 0;
	}
	if (cdb_make_start(&m->cdbm, m->fd) < 0) {
		int e = errno;
		userdb_make_abort(m);
		errno = e;
		return 0;
	}
	m->started = 1;
	if (cdb_make_add(&m->cdbm, "V", 1, "1", 1) != 0) {
		int e = errno;
		userdb_make_abort(m);
		errno = e;
		return 0;
	}
	return 1;
}

/* Adds key type+name -> val; with unique, a duplicate key gives -1 and EEXIST. */
static int put(struct userdb_make *m, char type, const char *name, size_t n, const char *val,
	       size_t vlen, int unique)
{
	char key[USERDB_KEY_MAX];
	size_t klen = make_key(key, type, name, n);

	if (!klen) {
		errno = ENAMETOOLONG;
		return 0;
	}
	if (vlen > UINT_MAX / 2) {
		errno = E2BIG;
		return 0;
	}
	int r = cdb_make_put(&m->cdbm, key, (unsigned)klen, val, (unsigned)vlen,
			     unique ? CDB_PUT_INSERT : CDB_PUT_REPLACE);
	if (r < 0)
		return errno == EEXIST ? -1 : 0;
	if (r > 0 && unique) {
		errno = EEXIST;
		return -1;
	}
	return 1;
}

int userdb_make_domain(struct userdb_make *m, const char *domain, size_t n, const char *target,
		       size_t tlen)
{
	return put(m, 'D', domain, n, target, tlen, 0);
}

int userdb_make_stamp(struct userdb_make *m, const char *stamp, size_t n)
{
	return put(m, 'C', "", 0, stamp, n, 0);
}

int userdb_make_mailbox(struct userdb_make *m, const char *addr, size_t n, const char *password,
			const char *maildir, unsigned long long quota)
{
	char q[FMT_ULLONG];
	size_t plen = strlen(password), mlen = strlen(maildir);
	int qlen = snprintf(q, sizeof q, "%llu", quota);
	char *val = malloc(plen + mlen + 2 + (size_t)qlen);

	if (!val)
		return 0;
	memcpy(val, password, plen + 1);
	memcpy(val + plen + 1, maildir, mlen + 1);
	memcpy(val + plen + mlen + 2, q, (size_t)qlen);
	int r = put(m, 'M', addr, n, val, plen + mlen + 2 + (size_t)qlen, 1);
	free(val);
	return r;
}

int userdb_make_alias(struct userdb_make *m, const char *addr, size_t n, const char *targets,
		      size_t len)
{
	return put(m, 'A', addr, n, targets, len, 1);
}

int userdb_make_finish(struct userdb_make *m)
{
	m->started = 0;
	if (cdb_make_finish(&m->cdbm) < 0 || fsync(m->fd) < 0 || close(m->fd) < 0) {
		int e = errno;
		m->fd = -1;
		userdb_make_abort(m);
		errno = e;
		return 0;
	}
	m->fd = -1;
	if (rename(m->tmppath, m->path) < 0 || !sync_parent(m->path)) {
		int e = errno;
		userdb_make_abort(m);
		errno = e;
		return 0;
	}
	free(m->path);
	free(m->tmppath);
	m->path = m->tmppath = 0;
	return 1;
}

void userdb_make_abort(struct userdb_make *m)
{
	int e = errno;

	/* tinycdb frees its record lists only in cdb_make_finish: a long-running compiler that
	 * gives up on a build must still call it, into the file about to be removed. */
	if (m->started)
		(void)cdb_make_finish(&m->cdbm);
	m->started = 0;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->tmppath)
		unlink(m->tmppath);
	free(m->path);
	free(m->tmppath);
	m->path = m->tmppath = 0;
	errno = e;
}
