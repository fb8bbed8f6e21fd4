/* postroom: ISC license, see LICENSE. */
#define _GNU_SOURCE	/* renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "die.h"
#include "fmt.h"
#include "log.h"
#include "queue_admin.h"
#include "sync.h"

/* The record types that give a target its final answer (queue.h). */
#define FINAL_TYPES "DSXRPJ"
#define DONE_TYPES "DS"

/* A message renamed between our open and our lock is looked for again; one that keeps moving
   (held and released in a loop by someone else) is given up on after this many looks. */
#define LOCK_TRIES 10

int queue_admin_id_ok(const char *id)
{
	return id[0] && id[0] != '.' && strlen(id) < QUEUE_ID_MAX && !strchr(id, '/');
}

time_t queue_admin_queued(const char *id)
{
	unsigned long long sec = 0;
	size_t n = strspn(id, "0123456789");

	/* "-" since ids became Atoms; "." in the files of a queue from before (queue(5)). */
	if (n == 0 || (id[n] != '-' && id[n] != '.') || !scan_ullong(id, n, &sec) ||
	    sec > (unsigned long long)INT64_MAX)
		return 0;
	return (time_t)sec;
}

int queue_admin_in_domain(const char *addr, const char *domain)
{
	const char *at = strrchr(addr, '@');

	return at && !strcasecmp(at + 1, domain);
}

static int by_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

int queue_admin_list(struct queue_admin_ids *out, int dirfd, const char *dir)
{
	int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
		return 0;
	}
	struct dirent *de;
	for (;;) {
		errno = 0;
		if (!(de = readdir(d)))
			break;
		if (!queue_admin_id_ok(de->d_name))
			continue;
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 64;
			void *p = realloc(out->id, cap * sizeof *out->id);
			if (!p)
				break;
			out->id = p;
			out->cap = cap;
		}
		strcpy(out->id[out->n++], de->d_name);
	}
	int e = errno;
	closedir(d);
	if (e) {
		errno = e;
		return 0;
	}
	if (out->n)	/* qsort's base may not be null, even for no element */
		qsort(out->id, out->n, sizeof *out->id, by_id);
	return 1;
}

void queue_admin_ids_free(struct queue_admin_ids *ids)
{
	free(ids->id);
	*ids = (struct queue_admin_ids)QUEUE_ADMIN_IDS_ZERO;
}

int queue_admin_hold_dir(int dirfd)
{
	struct stat st;

	if (mkdirat(dirfd, "hold", 0750) < 0) {
		if (errno != EEXIST || fstatat(dirfd, "hold", &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return 0;
		}
		return 1;
	}
	/* The mode queue-init gives its directories, whatever the umask; and an administrator
	   working as root must not leave the queue user a hold/ it cannot move messages out of. */
	if (fchmodat(dirfd, "hold", 0750, 0) < 0)
		return 0;
	if (geteuid() == 0 && (fstatat(dirfd, "msg", &st, 0) < 0 ||
			       fchownat(dirfd, "hold", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0))
		return 0;
	return sync_dir_at(dirfd, ".");
}

int queue_admin_trigger(int dirfd, char c)
{
	struct stat st;
	int fd = openat(dirfd, "trigger", O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return errno == ENXIO;	/* no reader: no queue-run to tell */
	/* A regular file in its place would grow by a byte at each call. */
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return 0;
	}
	int ok = 0, waited = 0;
	for (;;) {
		ssize_t w = write(fd, &c, 1);
		if (w == 1 || (w < 0 && errno == EPIPE)) {
			ok = 1;
			break;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && !waited) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			waited = 1;
			continue;
		}
		break;
	}
	int e = errno;
	close(fd);
	errno = e;
	return ok;
}

/* --- Listing ---------------------------------------------------------------------------------- */

/* The latest record of one of types whose target is addr (ignoring case: queue-run writes
   mailboxes lower-cased, the envelope keeps the sender's spelling), or 0. */
static const struct queue_record *latest(const struct queue_msg *m, const char *types,
					 const char *addr)
{
	for (size_t i = m->nrec; i-- > 0;)
		if (strchr(types, m->rec[i].type) && !strcasecmp(m->rec[i].target, addr))
			return &m->rec[i];
	return 0;
}

/* The latest L of a target that has no final answer since: the message's current trouble. */
static const struct queue_record *pending_l(const struct queue_msg *m)
{
	for (size_t i = m->nrec; i-- > 0;)
		if (m->rec[i].type == QUEUE_REC_LAST && !latest(m, FINAL_TYPES, m->rec[i].target))
			return &m->rec[i];
	return 0;
}

int queue_admin_peek(struct queue_admin_entry *e, int dirfd, const char *dir, const char *id)
{
	char path[QUEUE_ID_MAX + 8];
	struct stat st;

	*e = (struct queue_admin_entry)QUEUE_ADMIN_ENTRY_ZERO;
	e->dir = dir;
	str_copy(e->m.id, sizeof e->m.id, id);
	if (snprintf(path, sizeof path, "%s/%s", dir, id) >= (int)sizeof path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	/* Only a regular file is opened: opening a FIFO left in msg/ would wait for a writer. */
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	e->next = st.st_mtime;
	if (!S_ISREG(st.st_mode))
		return 1;
	if (!queue_msg_peek(&e->m, dirfd, dir, id)) {
		if (errno != EPROTO)
			return 0;
		e->m = (struct queue_msg)QUEUE_MSG_ZERO;
		str_copy(e->m.id, sizeof e->m.id, id);
		return 1;
	}
	e->valid = 1;
	if (fstat(e->m.fd, &st) == 0)
		e->next = st.st_mtime;
	if (!strcmp(dir, "msg")) {
		/* Taken without waiting and dropped at once: a queue-run worker that tries the lock
		   in that instant skips the message until its next scan, and nothing else changes. */
		if (flock(e->m.fd, LOCK_SH | LOCK_NB) == 0)
			flock(e->m.fd, LOCK_UN);
		else if (errno == EWOULDBLOCK)
			e->active = 1;
	}
	e->pending_l = pending_l(&e->m);
	return 1;
}

void queue_admin_entry_free(struct queue_admin_entry *e)
{
	queue_msg_close(&e->m);
}

enum queue_admin_state queue_admin_rcpt_state(const struct queue_admin_entry *e, size_t i,
					      const char **reason)
{
	*reason = 0;
	if (!e->valid)
		return QUEUE_STATE_INVALID;
	const char *rcpt = e->m.rcpt[i];
	const struct queue_record *r = latest(&e->m, FINAL_TYPES, rcpt);
	if (r) {
		if (strchr(DONE_TYPES, r->type))
			return QUEUE_STATE_DELIVERED;
		*reason = r->reason;
		return QUEUE_STATE_FAILED;
	}
	r = latest(&e->m, "L", rcpt);
	if (!r)
		r = e->pending_l;
	if (r)
		*reason = r->reason;
	if (!strcmp(e->dir, "hold"))
		return QUEUE_STATE_HELD;
	return e->active ? QUEUE_STATE_ACTIVE : QUEUE_STATE_DEFERRED;
}

const char *queue_admin_state_name(enum queue_admin_state s)
{
	switch (s) {
	case QUEUE_STATE_DEFERRED:
		return "deferred";
	case QUEUE_STATE_ACTIVE:
		return "active";
	case QUEUE_STATE_HELD:
		return "held";
	case QUEUE_STATE_DELIVERED:
		return "delivered";
	case QUEUE_STATE_FAILED:
		return "failed";
	case QUEUE_STATE_INVALID:
		break;
	}
	return "invalid";
}

/* --- Changing --------------------------------------------------------------------------------- */

static const char *const dirs[] = { "msg", "hold" };

enum look {
	LOOK_LOCKED,	/* opened, locked, and still named so */
	LOOK_ABSENT,
	LOOK_FINISHED,	/* unlinked by the attempt we waited for */
	LOOK_MOVED,	/* renamed while we waited */
	LOOK_ERROR,	/* errno and *step set */
};

static enum look look(int dirfd, const char *dir, const char *id, int *fd, const char **step)
{
	char path[QUEUE_ID_MAX + 8];
	struct stat st, now;

	snprintf(path, sizeof path, "%s/%s", dir, id);
	/* O_NONBLOCK: a FIFO in its place must not hang us; it changes nothing for a file. */
	int f = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (f < 0) {
		if (errno == ENOENT)
			return LOOK_ABSENT;
		*step = "open it";
		return LOOK_ERROR;
	}
	/* Blocking: a delivery attempt in progress ends first. */
	while (flock(f, LOCK_EX) < 0) {
		if (errno != EINTR) {
			*step = "lock it";
			goto error;
		}
	}
	if (fstat(f, &st) < 0) {
		*step = "stat it";
		goto error;
	}
	if (st.st_nlink == 0) {
		close(f);
		return LOOK_FINISHED;
	}
	if (fstatat(dirfd, path, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino &&
	    now.st_dev == st.st_dev) {
		*fd = f;
		return LOOK_LOCKED;
	}
	close(f);
	return LOOK_MOVED;
error:;
	int e = errno;
	close(f);
	errno = e;
	return LOOK_ERROR;
}

/* Finds id in msg/ or hold/ and locks it: *fd and *dir set. */
static enum queue_admin_result lock_id(int dirfd, const char *id, int *fd, const char **dir,
				       const char **step)
{
	int seen = 0;

	for (int tries = 0; tries < LOCK_TRIES; tries++) {
		enum look l = LOOK_ABSENT;
		for (size_t i = 0; i < sizeof dirs / sizeof *dirs && l == LOOK_ABSENT; i++) {
			l = look(dirfd, dirs[i], id, fd, step);
			*dir = dirs[i];
		}
		switch (l) {
		case LOOK_LOCKED:
			return QUEUE_ADMIN_DONE;
		case LOOK_ABSENT:
			return seen ? QUEUE_ADMIN_GONE : QUEUE_ADMIN_NOTFOUND;
		case LOOK_FINISHED:
			return QUEUE_ADMIN_GONE;
		case LOOK_ERROR:
			return QUEUE_ADMIN_ERROR;
		case LOOK_MOVED:
			/* Held, released, or moved to bounce/ by an older queue-run: look again. */
			seen = 1;
			break;
		}
	}
	*step = "find it: it keeps moving";
	errno = EAGAIN;
	return QUEUE_ADMIN_ERROR;
}

/* Renames from/id to to/id, never over an existing file. */
static int move(int dirfd, const char *from, const char *to, const char *id)
{
	char a[QUEUE_ID_MAX + 8], b[QUEUE_ID_MAX + 8];
	struct stat st;

	snprintf(a, sizeof a, "%s/%s", from, id);
	snprintf(b, sizeof b, "%s/%s", to, id);
	if (renameat2(dirfd, a, dirfd, b, RENAME_NOREPLACE) == 0)
		return 1;
	if (errno != EINVAL && errno != ENOSYS)
		return 0;
	/* A file system without RENAME_NOREPLACE: the same check, with a window we cannot close. */
	if (fstatat(dirfd, b, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return 0;
	}
	return renameat(dirfd, a, dirfd, b) == 0;
}

/* The change itself, on the locked file fd found in dir. */
static enum queue_admin_result change(int dirfd, enum queue_admin_op op, const char *id, int fd,
				      const char *dir, const char **step)
{
	char path[QUEUE_ID_MAX + 8];
	int in_msg = !strcmp(dir, "msg");

	switch (op) {
	case QUEUE_OP_REMOVE:
		snprintf(path, sizeof path, "%s/%s", dir, id);
		if (unlinkat(dirfd, path, 0) < 0) {
			*step = "remove it";
			return QUEUE_ADMIN_ERROR;
		}
		/* Else a crash could bring it back, and deliver it. */
		if (!sync_dir_at(dirfd, dir)) {
			*step = in_msg ? "sync msg/" : "sync hold/";
			return QUEUE_ADMIN_ERROR;
		}
		return QUEUE_ADMIN_DONE;
	case QUEUE_OP_HOLD:
		if (!in_msg)
			return QUEUE_ADMIN_ALREADY;
		/* hold/ first: a crash between the two flushes leaves it in both or in msg/, never
		   lost (as queue_bounce does it). */
		if (!move(dirfd, "msg", "hold", id)) {
			*step = "move it to hold/";
			return QUEUE_ADMIN_ERROR;
		}
		if (!sync_dir_at(dirfd, "hold")) {
			*step = "sync hold/";
			return QUEUE_ADMIN_ERROR;
		}
		if (!sync_dir_at(dirfd, "msg")) {
			*step = "sync msg/";
			return QUEUE_ADMIN_ERROR;
		}
		return QUEUE_ADMIN_DONE;
	case QUEUE_OP_RELEASE:
		if (in_msg)
			return QUEUE_ADMIN_ALREADY;
		/* Due as it lands in msg/. The time is not flushed: lost, an older one remains,
		   and the message is only tried earlier (queue(5)). */
		if (futimens(fd, 0) < 0) {
			*step = "set its time";
			return QUEUE_ADMIN_ERROR;
		}
		if (!move(dirfd, "hold", "msg", id)) {
			*step = "move it to msg/";
			return QUEUE_ADMIN_ERROR;
		}
		if (!sync_dir_at(dirfd, "msg")) {
			*step = "sync msg/";
			return QUEUE_ADMIN_ERROR;
		}
		if (!sync_dir_at(dirfd, "hold")) {
			*step = "sync hold/";
			return QUEUE_ADMIN_ERROR;
		}
		return QUEUE_ADMIN_DONE;
	}
	return QUEUE_ADMIN_ERROR;
}

enum queue_admin_result queue_admin_apply(int dirfd, enum queue_admin_op op, const char *id,
					  const char **step)
{
	int fd;
	const char *dir;

	*step = "";
	if (!queue_admin_id_ok(id))
		return QUEUE_ADMIN_BADID;
	if (op == QUEUE_OP_HOLD && !queue_admin_hold_dir(dirfd)) {
		*step = "create hold/";
		return QUEUE_ADMIN_ERROR;
	}
	enum queue_admin_result r = lock_id(dirfd, id, &fd, &dir, step);
	if (r != QUEUE_ADMIN_DONE)
		return r;
	r = change(dirfd, op, id, fd, dir, step);
	int e = errno;
	/* The lock goes last: a queue-run that opened the old name meanwhile finds it gone. */
	close(fd);
	errno = e;
	return r;
}

int queue_admin_main(int argc, char **argv, enum queue_admin_op op, const char *done,
		     const char *already)
{
	char esc[4 * QUEUE_ID_MAX + 4];
	const char *step;
	int status = 0, changed = 0;

	opterr = 0;	/* our usage line is the one message */
	if (getopt(argc, argv, "") != -1 || optind == argc)
		die_usage("id ...");
	const char *queuedir = env_need("QUEUEDIR");
	signal(SIGPIPE, SIG_IGN);	/* for the trigger: a reader gone is no reader */
	int dirfd = open(queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", queuedir);
	for (int i = optind; i < argc; i++) {
		const char *id = argv[i];
		log_escape(esc, sizeof esc, id, strlen(id));
		switch (queue_admin_apply(dirfd, op, id, &step)) {
		case QUEUE_ADMIN_DONE:
			printf("%s: %s\n", esc, done);
			changed = 1;
			break;
		case QUEUE_ADMIN_ALREADY:
			printf("%s: %s\n", esc, already);
			break;
		case QUEUE_ADMIN_BADID:
			log_line("%s: not a valid queue id", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_NOTFOUND:
			log_line("%s: not in the queue", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_GONE:
			log_line("%s: not in the queue (delivered meanwhile?)", esc);
			status = status ? status : EXIT_PERM;
			break;
		case QUEUE_ADMIN_ERROR:
			log_line("%s: unable to %s: %s", esc, step, strerror(errno));
			status = EXIT_TEMP;
			break;
		}
	}
	/* One wake-up for all the released, once their locks are gone (a queue-run that came while
	   one was held would skip it until its next scan). Its failure is no error: queue-run scans
	   msg/ every minute anyway, as after queue-inject's wake-up. */
	if (op == QUEUE_OP_RELEASE && changed)
		(void)queue_admin_trigger(dirfd, 0);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	return status;
}
