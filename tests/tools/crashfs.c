/* postroom: ISC license, see LICENSE. */
/*
 * crashfs BACKING SHADOW MOUNTPOINT [FUSE-OPTION...]: a pass-through FUSE file system over the
 * directory BACKING that can cut the power, for the crash tests (issue 19). Every operation on
 * MOUNTPOINT is done on BACKING; beside that, crashfs keeps what a disk would hold if the power
 * failed now, and on a cut makes BACKING exactly that. It runs in the foreground, single-threaded,
 * until MOUNTPOINT is unmounted. SHADOW is an empty directory outside both, where crashfs keeps
 * the synced contents of files (so memory does not grow with the data); it empties it on exit.
 *
 * The model (strict POSIX: nothing is durable that no sync made durable, whatever the order of
 * the calls; no ext4 ordering luck):
 *
 *  - At mount, all of BACKING is durable: a freshly synced disk.
 *  - A file (an inode, whatever its names) is durable as of its last sync point: its contents,
 *    size, mode, owner and times then are what a cut gives back, all of it; later writes are
 *    lost entirely (no torn mix of old and new). fdatasync counts as fsync (only the times
 *    could differ). A file never synced is empty after a cut, with the mode and owner it was
 *    made with, if any durable entry names it; with no durable entry it is gone.
 *  - A directory's entries (name -> inode) are durable as of its last fsync. Each name made or
 *    removed (create, mknod, mkdir, symlink, link, unlink, rmdir, rename) is an operation on the
 *    directory that holds the name, undone by a cut unless that directory is fsynced after it;
 *    syncing the file it names does not help. A rename is two such operations: the name leaves
 *    the old directory and comes into the new one, each durable only by an fsync of its own
 *    directory (a rename over an existing name replaces it there, and the name it replaced
 *    comes back without that fsync too). After a cut a renamed file may so have its old name,
 *    its new name, both (a hard link) or, if only the old directory was synced, none. This is
 *    stricter than a journaling file system, which makes a rename atomic: what passes here
 *    passes there.
 *  - A directory exists after a cut if a durable entry names it; its entries are its own durable
 *    ones (none, if it was made during the mount and never fsynced). A directory that two durable
 *    entries name (it was moved) is rebuilt once, at the first in name order of a depth-first
 *    walk, and cycles are cut the same way, since a disk cannot hold a directory with two names.
 *  - An inode that several durable entries name is rebuilt as one file with those hard links.
 *    Symbolic links and special files (FIFOs, devices) have no data: a durable entry is enough.
 *    Directories, links and special files keep the mode and owner last set through the mount.
 *  - A sync point is an fsync or fdatasync of a file (and the ones the kernel makes for a write
 *    on an O_SYNC or O_DSYNC descriptor) or an fsync of a directory. sync(2) and syncfs(2) never
 *    reach a FUSE file system (the kernel passes them only to virtiofs), so they are not sync
 *    points, and a program that relies on them fails here. crashfs does not flush BACKING itself:
 *    the model, not the disk under it, is what a test checks.
 *  - A cut happens at an instant between two operations: every operation after it fails with
 *    EIO, as on a disk that has gone (but a stat of the root, on the way to the control file),
 *    and BACKING is made the durable state at once. That is the one crash state that keeps
 *    nothing it need not, the worst; a real crash may keep more.
 *  - O_TMPFILE is not offered (libfuse 3.14 has no tmpfile operation): the kernel answers
 *    EOPNOTSUPP, and programs take their fallback path. Extended attributes are not offered.
 *  - Everything on BACKING must happen through the mount while it is mounted.
 *
 * Control, through the file .crashfs in the root of the mount (hidden from listings; no file of
 * that name can be made there):
 *  - reading it gives "syncs N\npower on\n" (or "power off"): N sync points so far;
 *  - writing "cut-after N" arms a cut at the N+1st sync point from now: the N next ones happen,
 *    the one after fails with EIO and the power is off from then on;
 *  - writing "cut" cuts the power now.
 * An unmount without a cut leaves BACKING as the programs left it: a clean shutdown.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CONTROL_NAME ".crashfs"
#define CONTROL_PATH "/" CONTROL_NAME
#define STATUS_FMT 64		/* "syncs <20 digits>\npower off\n" and a NUL */
#define SHADOW_NAME_FMT 24	/* a node id in decimal, ".new" and a NUL */

const char *PROG = "crashfs";

struct node;

struct entry {
	char *name;
	struct node *node;
};

/* The names in one directory, unordered but for rebuild_dir, which sorts a copy. */
struct entries {
	struct entry *v;
	size_t n, cap;
};
#define ENTRIES_ZERO { 0, 0, 0 }

/* An inode: one per file, directory, link or special file, whatever names it has or had. */
struct node {
	unsigned long id;	/* its shadow copy is SHADOW/<id> */
	mode_t mode;		/* type and permissions */
	uid_t uid;
	gid_t gid;
	dev_t rdev;		/* special files */
	char *target;		/* symbolic links */
	int synced;		/* regular files: SHADOW/<id> holds what a cut gives back */
	ino_t baseline_ino;	/* files found at mount, to find their other hard links */
	struct entries live;	/* directories: the entries now */
	struct entries durable;	/* directories: the entries as of the last fsync */
	char *rebuilt;		/* during a cut: where it was rebuilt, relative to BACKING */
	struct node *next;	/* in the list of all nodes */
};
#define NODE_ZERO { 0, 0, 0, 0, 0, 0, 0, 0, ENTRIES_ZERO, ENTRIES_ZERO, 0, 0 }

/* What an open file or directory of the mount is, behind fuse_file_info's fh. */
struct handle {
	int fd;
	DIR *dir;		/* directories */
	struct node *node;
	int control;		/* the .crashfs file */
};
#define HANDLE_ZERO { -1, 0, 0, 0 }

struct crashfs {
	int backing;		/* BACKING, opened O_DIRECTORY */
	int shadow;		/* SHADOW, opened O_DIRECTORY */
	struct node *root;
	struct node *nodes;	/* every node ever made, freed at exit */
	unsigned long next_id;
	unsigned long syncs;	/* sync points so far */
	unsigned long cut_at;	/* the number of the sync point that fails; 0: none armed */
	int off;		/* the power is cut: everything fails with EIO */
};
#define CRASHFS_ZERO { -1, -1, 0, 0, 1, 0, 0, 0 }

/* --- messages ------------------------------------------------------------------------------ */

static void warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A model that lost track of BACKING cannot say what a crash leaves: stop, loudly, so that the
   test using the mount fails rather than checks a state no disk could hold. */
static _Noreturn void fatal(const char *what, const char *path)
{
	warn("fatal: %s %s: %s", what, path ? path : "", strerror(errno));
	exit(111);
}

/* --- entries ------------------------------------------------------------------------------- */

static struct entry *entries_find(struct entries *e, const char *name, size_t len)
{
	for (size_t i = 0; i < e->n; i++)
		if (strlen(e->v[i].name) == len && memcmp(e->v[i].name, name, len) == 0)
			return &e->v[i];
	return 0;
}

/* NAME names NODE in E, replacing what it named before. 1, or 0 with errno set. */
static int entries_set(struct entries *e, const char *name, struct node *node)
{
	struct entry *old = entries_find(e, name, strlen(name));
	if (old) {
		old->node = node;
		return 1;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 8;
		struct entry *v = realloc(e->v, cap * sizeof *v);
		if (!v)
			return 0;
		e->v = v;
		e->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return 0;
	e->v[e->n++] = (struct entry){ copy, node };
	return 1;
}

static void entries_remove(struct entries *e, const char *name)
{
	struct entry *old = entries_find(e, name, strlen(name));
	if (!old)
		return;
	free(old->name);
	*old = e->v[--e->n];
}

static void entries_free(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	*e = (struct entries)ENTRIES_ZERO;
}

/* TO becomes a copy of FROM. 1, or 0 with errno set and TO as it was. */
static int entries_copy(struct entries *to, const struct entries *from)
{
	struct entries copy = ENTRIES_ZERO;
	for (size_t i = 0; i < from->n; i++)
		if (!entries_set(&copy, from->v[i].name, from->v[i].node)) {
			entries_free(&copy);
			return 0;
		}
	entries_free(to);
	*to = copy;
	return 1;
}

/* --- nodes and paths ----------------------------------------------------------------------- */

static struct crashfs *fs(void)
{
	return fuse_get_context()->private_data;
}

static struct node *node_new(struct crashfs *c, mode_t mode, uid_t uid, gid_t gid)
{
	struct node *n = malloc(sizeof *n);
	if (!n)
		return 0;
	*n = (struct node)NODE_ZERO;
	n->id = c->next_id++;
	n->mode = mode;
	n->uid = uid;
	n->gid = gid;
	n->next = c->nodes;
	c->nodes = n;
	return n;
}

/* A FUSE path ("/a/b") as a path relative to BACKING, for the *at() calls. */
static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static int is_control(const char *path)
{
	return path && strcmp(path, CONTROL_PATH) == 0;
}

/* The node the first LEN bytes of PATH name now, or 0. */
static struct node *node_at_n(struct crashfs *c, const char *path, size_t len)
{
	struct node *n = c->root;
	size_t i = 0;
	while (n) {
		while (i < len && path[i] == '/')
			i++;
		if (i == len)
			return n;
		size_t part = strcspn(path + i, "/");
		if (part > len - i)
			part = len - i;
		struct entry *e = entries_find(&n->live, path + i, part);
		n = e ? e->node : 0;
		i += part;
	}
	return 0;
}

static struct node *node_at(struct crashfs *c, const char *path)
{
	struct node *n = node_at_n(c, path, strlen(path));
	if (!n) {
		errno = ENOENT;
		fatal("the model has no", path);
	}
	return n;
}

/* The directory that holds PATH's last name; sets *NAME to that name. */
static struct node *parent_at(struct crashfs *c, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	struct node *n = node_at_n(c, path, (size_t)(slash - path));
	if (!n || !S_ISDIR(n->mode)) {
		errno = ENOENT;
		fatal("the model has no directory for", path);
	}
	return n;
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* --- the shadow copies --------------------------------------------------------------------- */

static int copy_data(int in, int out)
{
	char buf[65536];
	off_t off = 0;
	for (;;) {
		ssize_t r = pread(in, buf, sizeof buf, off);
		if (r < 0)
			return 0;
		if (r == 0)
			return 1;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));
			if (w < 0)
				return 0;
			done += w;
		}
		off += r;
	}
}

/* OUT gets IN's mode, owner and times: fsync makes them durable with the data. */
static int copy_attributes(int in, int out)
{
	struct stat st;
	if (fstat(in, &st) < 0 || fchown(out, st.st_uid, st.st_gid) < 0 ||
	    fchmod(out, st.st_mode & 07777) < 0)
		return 0;
	struct timespec times[2] = { st.st_atim, st.st_mtim };
	return futimens(out, times) == 0;
}

static int copy_file(int in, int out)
{
	return copy_data(in, out) && copy_attributes(in, out);
}

/*
 * The file behind FD as it is now becomes what a cut gives back: copied to SHADOW/<id>.new and
 * renamed over SHADOW/<id>, so that a failed copy leaves the last good one. FD is reopened
 * through /proc because it may be open for writing only. 0, or -errno for the sync call.
 */
static int snapshot(struct crashfs *c, struct node *n, int fd)
{
	char self[40], name[SHADOW_NAME_FMT], tmp[SHADOW_NAME_FMT];
	snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
	snprintf(name, sizeof name, "%lu", n->id);
	snprintf(tmp, sizeof tmp, "%lu.new", n->id);
	int in = open(self, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = openat(c->shadow, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = out >= 0 && copy_file(in, out);
	int e = errno;
	close(in);
	if (out >= 0)
		close(out);
	if (!ok || renameat(c->shadow, tmp, c->shadow, name) < 0) {
		e = ok ? errno : e;
		unlinkat(c->shadow, tmp, 0);
		return -e;
	}
	n->synced = 1;
	return 0;
}

/* --- the power cut ------------------------------------------------------------------------- */

/* Empties the directory DIRFD. Passes until nothing is left, as readdir need not see the
   entries of a directory that changes under it. 1, or 0 with errno set. */
static int clear_dir(int dirfd)
{
	for (int removed = 1; removed;) {
		removed = 0;
		int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd < 0 ? 0 : fdopendir(fd);
		if (!d)
			return 0;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			removed = 1;
			if (unlinkat(dirfd, de->d_name, 0) == 0)
				continue;
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int ok = sub >= 0 && clear_dir(sub);
			if (sub >= 0)
				close(sub);
			if (!ok || unlinkat(dirfd, de->d_name, AT_REMOVEDIR) < 0) {
				closedir(d);
				return 0;
			}
		}
		closedir(d);
	}
	return 1;
}

static int rebuild_dir(struct crashfs *c, int dirfd, struct node *dir, const char *path);

static int rebuild_file(struct crashfs *c, int dirfd, const char *name, struct node *n)
{
	char shadow[SHADOW_NAME_FMT];
	int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, n->mode & 07777);
	if (out < 0)
		return 0;
	int ok;
	if (n->synced) {
		snprintf(shadow, sizeof shadow, "%lu", n->id);
		int in = openat(c->shadow, shadow, O_RDONLY | O_CLOEXEC);
		ok = in >= 0 && copy_file(in, out);
		if (in >= 0)
			close(in);
	} else {
		ok = fchown(out, n->uid, n->gid) == 0;	/* never synced: empty */
	}
	close(out);
	return ok;
}

static int rebuild_subdir(struct crashfs *c, int dirfd, const char *name, struct node *n,
			  const char *path)
{
	if (mkdirat(dirfd, name, n->mode & 07777) < 0 ||
	    fchownat(dirfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return 0;
	int ok = rebuild_dir(c, sub, n, path);
	close(sub);
	return ok;
}

/* Makes the durable entry NAME -> N in DIRFD, at PATH relative to BACKING. */
static int rebuild_entry(struct crashfs *c, int dirfd, const char *name, struct node *n,
			 const char *path)
{
	if (n->rebuilt) {
		if (S_ISDIR(n->mode))
			return 1;	/* a directory has one name */
		return linkat(c->backing, n->rebuilt, dirfd, name, 0) == 0;
	}
	n->rebuilt = strdup(path);
	if (!n->rebuilt)
		return 0;
	if (S_ISDIR(n->mode))
		return rebuild_subdir(c, dirfd, name, n, path);
	if (S_ISREG(n->mode))
		return rebuild_file(c, dirfd, name, n);
	int made = S_ISLNK(n->mode) ? symlinkat(n->target, dirfd, name)
				    : mknodat(dirfd, name, n->mode, n->rdev);
	return made == 0 && fchownat(dirfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) == 0;
}

static int entry_order(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Fills DIRFD, at PATH relative to BACKING ("" for the root), with DIR's durable entries, in
   name order so that which name a moved directory keeps does not depend on the call order. */
static int rebuild_dir(struct crashfs *c, int dirfd, struct node *dir, const char *path)
{
	struct entries sorted = ENTRIES_ZERO;
	if (!entries_copy(&sorted, &dir->durable))
		return 0;
	qsort(sorted.v, sorted.n, sizeof *sorted.v, entry_order);
	int ok = 1;
	for (size_t i = 0; ok && i < sorted.n; i++) {
		char sub[PATH_MAX];
		const char *name = sorted.v[i].name;
		if (snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "/" : "", name) >= (int)sizeof sub) {
			errno = ENAMETOOLONG;
			ok = 0;
			break;
		}
		ok = rebuild_entry(c, dirfd, name, sorted.v[i].node, sub);
		if (!ok)
			warn("unable to rebuild %s: %s", sub, strerror(errno));
	}
	entries_free(&sorted);
	return ok;
}

/* The power fails: from now on every operation fails, and BACKING becomes the durable state. */
static void power_cut(struct crashfs *c)
{
	if (c->off)
		return;
	c->off = 1;
	c->root->rebuilt = strdup("");
	if (!c->root->rebuilt || !clear_dir(c->backing))
		fatal("unable to clear", "BACKING");
	if (!rebuild_dir(c, c->backing, c->root, ""))
		fatal("unable to rebuild", "BACKING");
}

/* Every fsync, fdatasync and directory fsync passes here: counted, or the one the power fails
   at. 0 to go on with it, or -EIO. */
static int sync_point(struct crashfs *c)
{
	if (c->off)
		return -EIO;
	if (c->cut_at != 0 && c->syncs + 1 == c->cut_at) {
		power_cut(c);
		return -EIO;
	}
	c->syncs++;
	return 0;
}

/* --- the control file ---------------------------------------------------------------------- */

static int control_stat(struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	return 0;
}

static int control_read(struct crashfs *c, char *buf, size_t size, off_t off)
{
	char status[STATUS_FMT];
	int len = snprintf(status, sizeof status, "syncs %lu\npower %s\n", c->syncs,
			   c->off ? "off" : "on");
	if (off >= len)
		return 0;
	size_t n = (size_t)(len - off) < size ? (size_t)(len - off) : size;
	memcpy(buf, status + off, n);
	return (int)n;
}

/* "cut" or "cut-after N", with or without a final newline. */
static int control_write(struct crashfs *c, const char *buf, size_t size)
{
	char cmd[64];
	if (size >= sizeof cmd)
		return -EINVAL;
	memcpy(cmd, buf, size);
	cmd[size] = 0;
	cmd[strcspn(cmd, "\n")] = 0;
	unsigned long n;
	char end;
	if (strcmp(cmd, "cut") == 0)
		power_cut(c);
	else if (sscanf(cmd, "cut-after %lu%c", &n, &end) == 1)
		c->cut_at = c->syncs + n + 1;
	else
		return -EINVAL;
	return (int)size;
}

static int control_open(struct fuse_file_info *fi)
{
	struct handle *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	*h = (struct handle)HANDLE_ZERO;
	h->control = 1;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;	/* its size says 0: read past it all the same */
	return 0;
}

/* --- names --------------------------------------------------------------------------------- */

/* After mknod, mkdir or symlink made PATH in BACKING: it belongs to the caller, and its name is a
   live entry of its directory. 0 or -errno. */
static int name_made(struct crashfs *c, const char *path, mode_t mode, dev_t rdev,
		     const char *target)
{
	struct fuse_context *ctx = fuse_get_context();
	if (fchownat(c->backing, rel(path), ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	const char *name;
	struct node *dir = parent_at(c, path, &name);
	struct node *n = node_new(c, mode, ctx->uid, ctx->gid);
	if (!n || (target && !(n->target = strdup(target))) || !entries_set(&dir->live, name, n))
		fatal("out of memory for", path);
	n->rdev = rdev;
	return 0;
}

static void name_gone(struct crashfs *c, const char *path)
{
	const char *name;
	struct node *dir = parent_at(c, path, &name);
	entries_remove(&dir->live, name);
}

static void name_renamed(struct crashfs *c, const char *from, const char *to, unsigned flags)
{
	const char *from_name, *to_name;
	struct node *from_dir = parent_at(c, from, &from_name);
	struct node *to_dir = parent_at(c, to, &to_name);
	struct entry *src = entries_find(&from_dir->live, from_name, strlen(from_name));
	struct entry *dst = entries_find(&to_dir->live, to_name, strlen(to_name));
	if (!src)
		fatal("the model has no", from);
	if (flags & RENAME_EXCHANGE) {
		if (!dst)
			fatal("the model has no", to);
		struct node *n = src->node;
		src->node = dst->node;
		dst->node = n;
		return;
	}
	if (dst && dst->node == src->node)
		return;		/* two links to one file: rename does nothing */
	struct node *n = src->node;
	entries_remove(&from_dir->live, from_name);
	if (!entries_set(&to_dir->live, to_name, n))
		fatal("out of memory for", to);
}

/* --- operations ---------------------------------------------------------------------------- */

static int cf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if ((fi && handle_of(fi)->control) || is_control(path))
		return control_stat(st);
	/* The root answers after a cut too: the kernel checks its permissions on the way to the
	   control file. */
	if (c->off && !(path && strcmp(path, "/") == 0))
		return -EIO;
	int r = fi ? fstat(handle_of(fi)->fd, st)
		   : fstatat(c->backing, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int cf_readlink(const char *path, char *buf, size_t size)
{
	struct crashfs *c = fs();
	if (c->off)
		return -EIO;
	ssize_t n = readlinkat(c->backing, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int cf_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EEXIST;
	if (c->off)
		return -EIO;
	if (mknodat(c->backing, rel(path), mode, rdev) < 0)
		return -errno;
	return name_made(c, path, mode, rdev, 0);
}

static int cf_mkdir(const char *path, mode_t mode)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EEXIST;
	if (c->off)
		return -EIO;
	if (mkdirat(c->backing, rel(path), mode) < 0)
		return -errno;
	return name_made(c, path, S_IFDIR | (mode & 07777), 0, 0);
}

static int cf_symlink(const char *target, const char *path)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EEXIST;
	if (c->off)
		return -EIO;
	if (symlinkat(target, c->backing, rel(path)) < 0)
		return -errno;
	return name_made(c, path, S_IFLNK | 0777, 0, target);
}

static int cf_unlink(const char *path)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EPERM;
	if (c->off)
		return -EIO;
	if (unlinkat(c->backing, rel(path), 0) < 0)
		return -errno;
	name_gone(c, path);
	return 0;
}

static int cf_rmdir(const char *path)
{
	struct crashfs *c = fs();
	if (c->off)
		return -EIO;
	if (unlinkat(c->backing, rel(path), AT_REMOVEDIR) < 0)
		return -errno;
	name_gone(c, path);
	return 0;
}

static int cf_rename(const char *from, const char *to, unsigned int flags)
{
	struct crashfs *c = fs();
	if (is_control(from) || is_control(to))
		return -EPERM;
	if (c->off)
		return -EIO;
	if (renameat2(c->backing, rel(from), c->backing, rel(to), flags) < 0)
		return -errno;
	name_renamed(c, from, to, flags);
	return 0;
}

static int cf_link(const char *from, const char *to)
{
	struct crashfs *c = fs();
	if (is_control(from) || is_control(to))
		return -EPERM;
	if (c->off)
		return -EIO;
	if (linkat(c->backing, rel(from), c->backing, rel(to), 0) < 0)
		return -errno;
	const char *name;
	struct node *dir = parent_at(c, to, &name);
	if (!entries_set(&dir->live, name, node_at(c, from)))
		fatal("out of memory for", to);
	return 0;
}

static int cf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EPERM;
	if (c->off)
		return -EIO;
	int r = fi ? fchmod(handle_of(fi)->fd, mode) : fchmodat(c->backing, rel(path), mode, 0);
	if (r < 0)
		return -errno;
	struct node *n = fi ? handle_of(fi)->node : node_at(c, path);
	n->mode = (n->mode & S_IFMT) | (mode & 07777);
	return 0;
}

static int cf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return -EPERM;
	if (c->off)
		return -EIO;
	int r = fi ? fchown(handle_of(fi)->fd, uid, gid)
		   : fchownat(c->backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	struct node *n = fi ? handle_of(fi)->node : node_at(c, path);
	if (uid != (uid_t)-1)
		n->uid = uid;
	if (gid != (gid_t)-1)
		n->gid = gid;
	return 0;
}

static int cf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if ((fi && handle_of(fi)->control) || is_control(path))
		return 0;	/* the shell's > before a command */
	if (c->off)
		return -EIO;
	if (fi)
		return ftruncate(handle_of(fi)->fd, size) < 0 ? -errno : 0;
	int fd = openat(c->backing, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = ftruncate(fd, size) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int cf_utimens(const char *path, const struct timespec times[2], struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if ((fi && handle_of(fi)->control) || is_control(path))
		return 0;
	if (c->off)
		return -EIO;
	int r = fi ? futimens(handle_of(fi)->fd, times)
		   : utimensat(c->backing, rel(path), times, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int handle_new(struct fuse_file_info *fi, int fd, struct node *n)
{
	struct handle *h = malloc(sizeof *h);
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	*h = (struct handle)HANDLE_ZERO;
	h->fd = fd;
	h->node = n;
	fi->fh = (uintptr_t)h;
	return 0;
}

static int cf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return control_open(fi);
	if (c->off)
		return -EIO;
	const char *name;
	struct node *dir = parent_at(c, path, &name);
	struct entry *old = entries_find(&dir->live, name, strlen(name));
	int fd = openat(c->backing, rel(path), fi->flags | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (old)
		return handle_new(fi, fd, old->node);	/* it was there: an open */
	struct fuse_context *ctx = fuse_get_context();
	if (fchown(fd, ctx->uid, ctx->gid) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct node *n = node_new(c, S_IFREG | (mode & 07777), ctx->uid, ctx->gid);
	if (!n || !entries_set(&dir->live, name, n))
		fatal("out of memory for", path);
	return handle_new(fi, fd, n);
}

static int cf_open(const char *path, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if (is_control(path))
		return control_open(fi);
	if (c->off)
		return -EIO;
	int fd = openat(c->backing, rel(path), fi->flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return handle_new(fi, fd, node_at(c, path));
}

static int cf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	(void)path;
	if (handle_of(fi)->control)
		return control_read(c, buf, size, off);
	if (c->off)
		return -EIO;
	ssize_t n = pread(handle_of(fi)->fd, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int cf_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	(void)path;
	if (handle_of(fi)->control)
		return control_write(c, buf, size);
	if (c->off)
		return -EIO;
	ssize_t n = pwrite(handle_of(fi)->fd, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int cf_statfs(const char *path, struct statvfs *st)
{
	struct crashfs *c = fs();
	(void)path;
	if (c->off)
		return -EIO;
	return fstatvfs(c->backing, st) < 0 ? -errno : 0;
}

static int cf_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	(void)path;
	if (h->fd >= 0)
		close(h->fd);
	free(h);
	return 0;
}

static int cf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	(void)path;
	(void)datasync;		/* counted as fsync: see the model */
	if (handle_of(fi)->control)
		return 0;
	int r = sync_point(c);
	return r < 0 ? r : snapshot(c, handle_of(fi)->node, handle_of(fi)->fd);
}

static int cf_opendir(const char *path, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	if (c->off)
		return -EIO;
	int fd = openat(c->backing, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = handle_new(fi, fd, node_at(c, path));
	if (r < 0)
		return r;
	struct handle *h = handle_of(fi);
	int listed = dup(fd);
	h->dir = listed < 0 ? 0 : fdopendir(listed);
	if (!h->dir) {
		int e = errno;
		if (listed >= 0)
			close(listed);
		close(fd);
		free(h);
		return -e;
	}
	return 0;
}

static int cf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct crashfs *c = fs();
	struct handle *h = handle_of(fi);
	(void)path;
	(void)off;
	(void)flags;
	if (c->off)
		return -EIO;
	/* The whole directory in one go (offsets 0): libfuse buffers it. */
	rewinddir(h->dir);
	errno = 0;
	struct dirent *de;
	while ((de = readdir(h->dir)))
		if (fill(buf, de->d_name, 0, 0, 0))
			break;
	return errno ? -errno : 0;
}

static int cf_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	(void)path;
	closedir(h->dir);
	close(h->fd);
	free(h);
	return 0;
}

static int cf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	struct node *dir = handle_of(fi)->node;
	(void)path;
	(void)datasync;
	int r = sync_point(c);
	if (r < 0)
		return r;
	return entries_copy(&dir->durable, &dir->live) ? 0 : -ENOMEM;
}

static int cf_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct crashfs *c = fs();
	(void)path;
	if (c->off)
		return -EIO;
	return fallocate(handle_of(fi)->fd, mode, off, len) < 0 ? -errno : 0;
}

static void *cf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* Every lookup and attribute read reaches the model: nothing the kernel remembers can hide
	   a name that is gone. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* An unlinked file that is still open has no name at all, as on a disk (no .fuse_hidden
	   files in BACKING); its operations come with no path and use the handle. */
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 1;
	cfg->use_ino = 1;	/* hard links show as one inode */
	return fs();
}

static const struct fuse_operations ops = {
	.getattr = cf_getattr,
	.readlink = cf_readlink,
	.mknod = cf_mknod,
	.mkdir = cf_mkdir,
	.unlink = cf_unlink,
	.rmdir = cf_rmdir,
	.symlink = cf_symlink,
	.rename = cf_rename,
	.link = cf_link,
	.chmod = cf_chmod,
	.chown = cf_chown,
	.truncate = cf_truncate,
	.open = cf_open,
	.read = cf_read,
	.write = cf_write,
	.statfs = cf_statfs,
	.release = cf_release,
	.fsync = cf_fsync,
	.opendir = cf_opendir,
	.readdir = cf_readdir,
	.releasedir = cf_releasedir,
	.fsyncdir = cf_fsyncdir,
	.init = cf_init,
	.create = cf_create,
	.utimens = cf_utimens,
	.fallocate = cf_fallocate,
};

/* --- the baseline: BACKING at mount -------------------------------------------------------- */

static struct node *baseline_link_of(struct crashfs *c, const struct stat *st)
{
	if (!S_ISREG(st->st_mode) || st->st_nlink < 2)
		return 0;
	for (struct node *n = c->nodes; n; n = n->next)
		if (S_ISREG(n->mode) && n->baseline_ino == st->st_ino)
			return n;
	return 0;
}

static int baseline_dir(struct crashfs *c, int dirfd, struct node *dir);

/* The node for NAME in DIRFD, as found at mount, with its data snapshot taken. */
static struct node *baseline_node(struct crashfs *c, int dirfd, const char *name,
				  const struct stat *st)
{
	struct node *n = node_new(c, st->st_mode, st->st_uid, st->st_gid);
	if (!n)
		return 0;
	n->rdev = st->st_rdev;
	n->baseline_ino = st->st_ino;
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t len = readlinkat(dirfd, name, target, sizeof target - 1);
		if (len < 0)
			return 0;
		target[len] = 0;
		n->target = strdup(target);
		return n->target ? n : 0;
	}
	int flags = S_ISDIR(st->st_mode) ? O_DIRECTORY : 0;
	if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))
		return n;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags);
	if (fd < 0)
		return 0;
	int ok = S_ISDIR(st->st_mode) ? baseline_dir(c, fd, n) : snapshot(c, n, fd) == 0;
	close(fd);
	return ok ? n : 0;
}

/* Every entry of DIRFD becomes a live and durable entry of DIR. 1, or 0 with errno set. */
static int baseline_dir(struct crashfs *c, int dirfd, struct node *dir)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	if (!d)
		return 0;
	struct dirent *de;
	int ok = 1;
	while (ok && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		struct stat st;
		struct node *n = 0;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			n = baseline_link_of(c, &st);
			if (!n)
				n = baseline_node(c, dirfd, de->d_name, &st);
		}
		ok = n && entries_set(&dir->live, de->d_name, n) &&
		     entries_set(&dir->durable, de->d_name, n);
		if (!ok)
			warn("unable to take %s: %s", de->d_name, strerror(errno));
	}
	closedir(d);
	return ok;
}

/* --- start and end ------------------------------------------------------------------------- */

struct args {
	const char *backing;
	const char *shadow;
	int paths;
};
#define ARGS_ZERO { 0, 0, 0 }

/* The first two paths are ours; the third, the mount point, and the options are libfuse's. */
static int take_paths(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct args *a = data;
	(void)out;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	a->paths++;
	if (a->paths == 1)
		a->backing = arg;
	else if (a->paths == 2)
		a->shadow = arg;
	return a->paths > 2;
}

static int dir_is_empty(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? 0 : fdopendir(fd);
	if (!d)
		return 0;
	struct dirent *de;
	int empty = 1;
	while (empty && (de = readdir(d)))
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fatal("unable to open", path);
	return fd;
}

static void crashfs_start(struct crashfs *c, const struct args *a)
{
	c->backing = open_dir(a->backing);
	c->shadow = open_dir(a->shadow);
	if (!dir_is_empty(c->shadow)) {
		errno = ENOTEMPTY;
		fatal("the shadow directory must be empty:", a->shadow);
	}
	/* Modes come from the callers, with their umask already applied by the kernel. */
	umask(0);
	c->root = node_new(c, S_IFDIR | 0755, 0, 0);
	if (!c->root || !baseline_dir(c, c->backing, c->root))
		fatal("unable to take", a->backing);
}

/* Removes the shadow copies and frees the model. */
static void crashfs_end(struct crashfs *c)
{
	char name[SHADOW_NAME_FMT];
	while (c->nodes) {
		struct node *n = c->nodes;
		c->nodes = n->next;
		snprintf(name, sizeof name, "%lu", n->id);
		if (n->synced)
			unlinkat(c->shadow, name, 0);
		entries_free(&n->live);
		entries_free(&n->durable);
		free(n->target);
		free(n->rebuilt);
		free(n);
	}
	close(c->backing);
	close(c->shadow);
}

int main(int argc, char **argv)
{
	struct fuse_args fargs = FUSE_ARGS_INIT(argc, argv);
	struct args a = ARGS_ZERO;
	struct crashfs c = CRASHFS_ZERO;

	if (fuse_opt_parse(&fargs, &a, 0, take_paths) < 0 || a.paths != 3) {
		fprintf(stderr, "usage: %s BACKING SHADOW MOUNTPOINT [-o OPTION...]\n", PROG);
		return 100;
	}
	crashfs_start(&c, &a);
	/* One thread, so that the model needs no lock and a cut falls between two operations.
	   allow_other and default_permissions: programs under test may run as other users, and the
	   kernel checks their permissions as on BACKING. */
	if (fuse_opt_add_arg(&fargs, "-f") < 0 || fuse_opt_add_arg(&fargs, "-s") < 0 ||
	    fuse_opt_add_arg(&fargs, "-oallow_other,default_permissions,fsname=crashfs") < 0)
		fatal("out of memory for", "arguments");
	int r = fuse_main(fargs.argc, fargs.argv, &ops, &c);
	fuse_opt_free_args(&fargs);
	crashfs_end(&c);
	return r == 0 ? 0 : 111;
}
