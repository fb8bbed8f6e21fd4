/* postroom: ISC license, see LICENSE. */
/*
 * One delivery attempt for one queued message: resolve every recipient to its final targets,
 * deliver to the local mailboxes and the remote destinations not yet done, send the notices the
 * outcome calls for, then write down what happened with one flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fmt.h"
#include "log.h"
#include "maildir.h"
#include "queue-run.h"
#include "queue.h"
#include "resolve.h"
#include "userdb.h"

#define REASON_MAX 1024
#define PROGRAM_TIMEOUT 1000	/* seconds an external delivery program may take */

void log_result(struct attempt *a, size_t target, const char *result, const char *reason)
{
	char to[600], orig[600], why[REASON_MAX + 100];
	const struct target *t = &a->targets.t[target];
	const char *rcpt = a->m.rcpt[a->origin[target]];
	double delay = queue_age(a->m.id, &a->now);

	log_escape(to, sizeof to, t->addr, strlen(t->addr));
	orig[0] = 0;
	if (strcasecmp(rcpt, t->addr)) {
		char esc[600];
		snprintf(orig, sizeof orig, " orig_to=<%s>",
			 log_escape(esc, sizeof esc, rcpt, strlen(rcpt)));
	}
	why[0] = 0;
	if (reason) {
		char esc[REASON_MAX];
		snprintf(why, sizeof why, " reason=\"%s\"",
			 log_escape(esc, sizeof esc, reason, strlen(reason)));
	}
	log_line("%s from=<%s> to=<%s>%s result=%s delay=%.3fs%s", a->m.id, a->sender, to, orig,
		 result, delay, why);
}

/*
 * Feeds the message to the program's stdin while collecting what it says on stderr (its last
 * line is the reason), both through poll so that neither pipe can fill up and stall the other.
 * Returns 1 when the whole message was read from the queue file, 0 when it could not be; the
 * program's stdin is closed either way. Gives up at the deadline.
 */
int feed_program(struct attempt *a, int in, int err, char *text, size_t size, time_t deadline)
{
	char chunk[65536];
	size_t have = 0, len = 0, sent = 0;
	off_t off = QUEUE_HEADER_LEN;
	unsigned long long left = a->m.msglen;
	int whole = 1;

	while (in >= 0 || err >= 0) {
		struct pollfd p[2] = { { .fd = in, .events = POLLOUT }, { .fd = err, .events = POLLIN } };
		int wait = (int)(deadline - time(0)) * 1000;
		if (wait <= 0 || poll(p, 2, wait) == 0)
			break;
		if (in >= 0 && p[0].revents) {
			if (sent == have && left) {
				ssize_t r = pread(a->m.fd, chunk, left < sizeof chunk ? left : sizeof chunk, off);
				if (r <= 0) {
					whole = 0;	/* never hand on a shortened message as delivered */
					left = 0;
				} else {
					have = (size_t)r;
					sent = 0;
					off += r;
					left -= (unsigned long long)r;
				}
			}
			ssize_t w = sent < have ? write(in, chunk + sent, have - sent) : 0;
			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EINTR && errno != EAGAIN) || (sent == have && !left)) {
				close(in);	/* done, or it stopped reading: its exit code tells */
				in = -1;
			}
		}
		if (err >= 0 && p[1].revents) {
			char junk[512];
			ssize_t r = len < size - 1 ? read(err, text + len, size - 1 - len) : read(err, junk, sizeof junk);
			if (r > 0 && len < size - 1)
				len += (size_t)r;
			else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				close(err);
				err = -1;
			}
		}
	}
	if (in >= 0)
		close(in);
	if (err >= 0)
		close(err);
	text[len] = 0;
	return whole;
}

/* Runs the external delivery program with the message on its stdin. */
static enum maildir_result run_program(struct attempt *a, const char *maildir,
				       const struct target *t, const char *orig, char *why,
				       size_t whylen)
{
	int in[2], err[2];

	if (pipe(in) < 0) {
		snprintf(why, whylen, "unable to make a pipe: %s", strerror(errno));
		return MAILDIR_TEMP;
	}
	if (pipe(err) < 0) {
		snprintf(why, whylen, "unable to make a pipe: %s", strerror(errno));
		close(in[0]), close(in[1]);
		return MAILDIR_TEMP;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whylen, "unable to fork: %s", strerror(errno));
		close(in[0]), close(in[1]), close(err[0]), close(err[1]);
		return MAILDIR_TEMP;
	}
	if (pid == 0) {
		char quota[32];
		dup2(in[0], 0);
		dup2(err[1], 2);
		close(in[0]), close(in[1]), close(err[0]), close(err[1]);
		snprintf(quota, sizeof quota, "%llu", t->quota);
		setenv("SENDER", a->m.sender, 1);
		setenv("RECIPIENT", t->addr, 1);
		setenv("ORIGINAL_RECIPIENT", orig, 1);
		if (t->quota)
			setenv("QUOTA", quota, 1);
		else
			unsetenv("QUOTA");
		if (a->c->overquota_permanent)
			setenv("OVERQUOTA", "bounce", 1);
		signal(SIGPIPE, SIG_DFL);
		execl(a->c->localdelivery, a->c->localdelivery, maildir, (char *)0);
		fprintf(stderr, "unable to run %s: %s\n", a->c->localdelivery, strerror(errno));
		_exit(111);
	}
	close(in[0]);
	close(err[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);

	char text[2048];
	time_t deadline = time(0) + PROGRAM_TIMEOUT;
	int whole = feed_program(a, in[1], err[0], text, sizeof text, deadline);
	int status;
	pid_t r;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && time(0) < deadline)
		usleep(1000);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(why, whylen, "%s timed out after %d seconds", a->c->localdelivery,
			 PROGRAM_TIMEOUT);
		return MAILDIR_TEMP;
	}
	if (r < 0) {
		snprintf(why, whylen, "unable to wait for %s", a->c->localdelivery);
		return MAILDIR_TEMP;
	}

	/* Its last line on stderr is the reason, without "program: fatal: " if it says so. */
	size_t len = strlen(text);
	while (len && text[len - 1] == '\n')
		text[--len] = 0;
	char *line = strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text;
	char *fatal = strstr(line, ": fatal: ");
	str_copy(why, whylen, fatal ? fatal + 9 : line);
	if (!whole) {
		snprintf(why, whylen, "unable to read the queue file: %s", strerror(EIO));
		return MAILDIR_TEMP;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return MAILDIR_OK;
	if (!*why)
		snprintf(why, whylen, "%s failed", a->c->localdelivery);
	return WIFEXITED(status) && WEXITSTATUS(status) == 100 ? MAILDIR_PERM : MAILDIR_TEMP;
}

/* orig: the envelope recipient t came from, for X-Original-To. */
static enum maildir_result deliver_local(struct attempt *a, const struct target *t,
					 const char *orig, char *why, size_t whylen)
{
	char maildir[PATH_MAX];

	if (!userdb_maildir_safe(t->maildir, strlen(t->maildir))) {
		snprintf(why, whylen, "unsafe maildir path in the user database: %s", t->maildir);
		return MAILDIR_TEMP;
	}
	if (snprintf(maildir, sizeof maildir, "%s/%s", a->c->mailroot, t->maildir) >=
	    (int)sizeof maildir) {
		snprintf(why, whylen, "maildir path too long");
		return MAILDIR_TEMP;
	}
	if (a->c->localdelivery)
		return run_program(a, maildir, t, orig, why, whylen);
	struct maildir_delivery d = {
		.maildir = maildir,
		.sender = a->m.sender,
		.recipient = t->addr,
		.original_recipient = orig,
		.quota = t->quota,
		.overquota_permanent = a->c->overquota_permanent,
	};
	return maildir_deliver(&d, a->m.fd, QUEUE_HEADER_LEN, (long long)a->m.msglen, why, whylen);
}

/*
 * The user database, kept open across the messages a worker handles and opened again when
 * userdb-compile has renamed a new one into place.
 */
struct userdb *userdb_current(const char *path)
{
	static struct userdb db = USERDB_ZERO;
	static struct stat seen;
	struct stat st;

	if (stat(path, &st) < 0)
		return 0;
	if (db.fd >= 0 && st.st_ino == seen.st_ino && st.st_dev == seen.st_dev &&
	    st.st_size == seen.st_size && st.st_mtim.tv_sec == seen.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
		return &db;
	userdb_close(&db);
	if (!userdb_open(&db, path))
		return 0;
	if (fstat(db.fd, &seen) < 0) {
		int e = errno;
		userdb_close(&db);
		errno = e;
		return 0;
	}
	return &db;
}

/* Resolves every recipient; 0 with errno when the user database cannot answer. */
static int resolve_all(struct attempt *a)
{
	struct userdb *db = userdb_current(a->c->userdb);

	if (!db)
		return 0;
	for (size_t i = 0; i < a->m.nrcpt; i++) {
		size_t before = a->targets.n;
		const char *r = a->m.rcpt[i];
		if (!resolve(db, r, strlen(r), &a->c->resolve, &a->targets))
			return 0;
		size_t *o = realloc(a->origin, (a->targets.n + 1) * sizeof *o);
		if (!o)
			return 0;
		a->origin = o;
		for (size_t j = before; j < a->targets.n; j++)
			a->origin[j] = i;
	}
	return 1;
}

/*
 * The record types that tell a target of this kind is done: a record is the target's only if
 * both its kind and its address match, so a failure never hides a mailbox of the same address.
 * A legacy P counts for a failure only: a mailbox it may have named is tried again.
 */
const char *record_types(enum target_kind kind)
{
	static const char mailbox[] = { QUEUE_REC_DELIVERED, QUEUE_REC_FAILED, 0 };
	static const char failed[] = { QUEUE_REC_UNRESOLVED, QUEUE_REC_LEGACY, 0 };
	static const char remote[] = { QUEUE_REC_SENT, QUEUE_REC_REJECTED, 0 };

	switch (kind) {
	case TARGET_MAILBOX:
		return mailbox;
	case TARGET_FAILED:
		return failed;
	case TARGET_REMOTE:
		break;
	}
	return remote;
}

/* The local and unresolvable targets without a record; counts what is left for later. */
static void attempt_local(struct attempt *a, size_t *pending, int *failed)
{
	char why[REASON_MAX];

	for (size_t i = 0; i < a->targets.n; i++) {
		const struct target *t = &a->targets.t[i];
		if (t->kind == TARGET_REMOTE)
			continue;
		char done = queue_msg_record(&a->m, record_types(t->kind), t->addr);
		if (done) {
			if (done != QUEUE_REC_DELIVERED)
				*failed = 1;
			continue;
		}
		if (t->kind == TARGET_FAILED) {
			*failed = 1;
			a->state[i] = TS_FAILED;
			queue_msg_add_record(&a->m, QUEUE_REC_UNRESOLVED, t->addr, t->reason);
			log_result(a, i, "failed", t->reason);
			continue;
		}
		switch (deliver_local(a, t, a->m.rcpt[a->origin[i]], why, sizeof why)) {
		case MAILDIR_OK:
			a->state[i] = TS_DELIVERED;
			queue_msg_add_record(&a->m, QUEUE_REC_DELIVERED, t->addr, 0);
			log_result(a, i, "delivered", 0);
			break;
		case MAILDIR_PERM:
			*failed = 1;
			a->state[i] = TS_FAILED;
			queue_msg_add_record(&a->m, QUEUE_REC_FAILED, t->addr, why);
			log_result(a, i, "failed", why);
			break;
		case MAILDIR_TEMP:
			++*pending;
			a->state[i] = TS_PENDING;
			queue_msg_add_record(&a->m, QUEUE_REC_LAST, t->addr, why);
			log_result(a, i, "deferred", why);
			break;
		}
	}
}

const char *latest_reason(const struct attempt *a, const char *types, const char *addr)
{
	const char *found = 0;
	const struct queue_record *r = queue_msg_latest(&a->m, types, addr);
	if (r)
		found = r->reason;
	/* This attempt's records are not in m.rec: they come after. */
	for (size_t j = 0; j < a->m.pending.len; j += strlen(a->m.pending.s + j) + 1) {
		const char *p = a->m.pending.s + j;
		size_t n = strcspn(p + 1, "\t");
		if (strchr(types, p[0]) && strlen(addr) == n && !memcmp(p + 1, addr, n))
			found = p[1 + n] ? p + 2 + n : "";
	}
	return found ? found : "";
}

/*
 * Past the queue's lifetime, what is still pending fails with its last error, so that the
 * sender hears of it (the notice says the message expired) and the queue lets go of it.
 */
static void expire(struct attempt *a, size_t *pending, int *failed)
{
	char why[REASON_MAX];

	for (size_t i = 0; i < a->targets.n; i++) {
		const struct target *t = &a->targets.t[i];
		if (t->kind == TARGET_FAILED || queue_msg_record(&a->m, record_types(t->kind), t->addr))
			continue;
		/* A copy: the record added below may move the pending records. */
		char lasttext[REASON_MAX - 16];
		str_copy(lasttext, sizeof lasttext, latest_reason(a, "L", t->addr));
		if (t->kind == TARGET_REMOTE)
			snprintf(why, sizeof why, "%s", *lasttext ? lasttext : "- 451 4.4.7 not tried");
		else
			snprintf(why, sizeof why, "4.4.7 %s", *lasttext ? lasttext : "not tried");
		queue_msg_add_record(&a->m, t->kind == TARGET_REMOTE ? QUEUE_REC_REJECTED
								     : QUEUE_REC_FAILED, t->addr, why);
		a->state[i] = TS_FAILED;
		char text[REASON_MAX + 64];
		snprintf(text, sizeof text, "expired after %u s in the queue; last: %s", a->c->lifetime,
			 *lasttext ? lasttext : "not tried");
		log_result(a, i, "failed", text);
		*failed = 1;
	}
	*pending = 0;
}

/* The next attempt: the wait doubles with the message's age, within the configured bounds. */
static time_t next_attempt(const struct attempt *a)
{
	double age = queue_age(a->m.id, &a->now);
	double min = a->c->retry_min, max = a->c->retry_max;
	double wait = age < min ? min : age > max ? max : age;
	time_t when = a->now.tv_sec + (time_t)wait;
	return when < a->not_before ? a->not_before : when;
}

/* A file in msg/ that is not a queue file: logged, and looked at again in an hour. */
static enum outcome postpone_bad(int dirfd, const char *id)
{
	char path[QUEUE_ID_MAX + 8];
	struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = time(0) + 3600 } };

	snprintf(path, sizeof path, "msg/%s", id);
	utimensat(dirfd, path, t, 0);
	log_line("%s trouble: not a queue file; left in msg/ for inspection", id);
	return OUTCOME_TROUBLE;
}

/* Writes down the attempt and ends it: the message waits, or leaves the queue. */
static enum outcome conclude(struct attempt *a, size_t pending, int failed)
{
	const char *id = a->m.id;

	if (!notify_send(a)) {
		log_line("%s trouble: unable to queue a notice: %s", id, strerror(errno));
		/* What was delivered is recorded all the same; the notice comes next time, since
		   a final record without its N record calls for one. */
		if (queue_msg_sync(&a->m))
			queue_msg_defer(&a->m, a->now.tv_sec + 60);
		return OUTCOME_TROUBLE;
	}
	if (pending || a->waiting) {
		if (!queue_msg_sync(&a->m) ||
		    !queue_msg_defer(&a->m, a->waiting && !pending ? a->now.tv_sec + (time_t)a->c->retry_min
								    : next_attempt(a))) {
			log_line("%s trouble: unable to record deliveries: %s", id, strerror(errno));
			return OUTCOME_TROUBLE;
		}
		return a->waiting ? OUTCOME_WAITING : OUTCOME_PENDING;
	}
	/* Every target has its final answer and every notice is queued: nothing to keep. */
	if (!queue_remove(a->dirfd, id)) {
		log_line("%s trouble: unable to remove: %s", id, strerror(errno));
		return OUTCOME_TROUBLE;
	}
	log_line("%s done%s", id, failed ? " with failures" : "");
	return OUTCOME_FINISHED;
}

enum outcome deliver_message(const struct config *c, int dirfd, const char *id)
{
	static struct attempt a;

	a = (struct attempt){ .c = c, .dirfd = dirfd, .targets = TARGETS_ZERO };
	if (!queue_msg_open(&a.m, dirfd, id)) {
		if (errno == EWOULDBLOCK || errno == ENOENT)
			return OUTCOME_SKIPPED;
		if (errno == EPROTO)
			return postpone_bad(dirfd, id);
		log_line("%s trouble: unable to open: %s", id, strerror(errno));
		return OUTCOME_TROUBLE;
	}
	clock_gettime(CLOCK_REALTIME, &a.now);
	log_escape(a.sender, sizeof a.sender, a.m.sender, strlen(a.m.sender));

	size_t pending = 0;
	int failed = 0;
	enum outcome outcome;
	if (!resolve_all(&a) || !(a.state = calloc(a.targets.n + 1, 1))) {
		log_line("%s from=<%s> result=deferred reason=\"unable to read %s: %s\"", id, a.sender,
			 c->userdb, strerror(errno));
		outcome = queue_msg_defer(&a.m, next_attempt(&a)) ? OUTCOME_PENDING : OUTCOME_TROUBLE;
	} else {
		attempt_local(&a, &pending, &failed);
		remote_attempt(&a, &pending, &failed);
		if ((pending || a.waiting) && queue_age(id, &a.now) >= c->lifetime) {
			a.waiting = 0;
			expire(&a, &pending, &failed);
		}
		outcome = conclude(&a, pending, failed);
	}
	if (a.text)
		munmap((void *)a.text, a.mapped);
	queue_msg_close(&a.m);
	targets_free(&a.targets);
	free(a.origin);
	free(a.state);
	return outcome;
}
