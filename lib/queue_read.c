/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "queue.h"
#include "sync.h"

/* The record types a queue file may hold (queue.h). */
#define RECORD_TYPES "DXRPSJLNW"

static int fail(struct queue_msg *m, int e)
{
	queue_msg_close(m);
	errno = e;
	return 0;
}

static int read_rest(int fd, off_t off, struct sa *out)
{
	for (;;) {
		if (!sa_ready(out, 65536))
			return 0;
		ssize_t r = pread(fd, out->s + out->len, 65536, off + (off_t)out->len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (r == 0)
			return 1;
		out->len += (size_t)r;
	}
}

/* Grows the per-recipient arrays to hold one more. */
static int rcpt_room(struct queue_msg *m, size_t *cap)
{
	if (m->nrcpt < *cap)
		return 1;
	size_t n = *cap ? *cap * 2 : 8;
	const char **r = realloc(m->rcpt, n * sizeof *r);
	if (r)
		m->rcpt = r;
	const char **o = realloc(m->orcpt, n * sizeof *o);
	if (o)
		m->orcpt = o;
	unsigned *f = realloc(m->notify, n * sizeof *f);
	if (f)
		m->notify = f;
	if (!r || !o || !f)
		return 0;
	*cap = n;
	return 1;
}

/*
 * Splits the envelope into sender, recipients and their DSN parameters, then the records;
 * 0 (EPROTO) if it is not whole, -1 when out of memory.
 */
static int parse(struct queue_msg *m)
{
	char *s = m->env.s, *end = s + m->env.len;
	size_t cap = 0;

	if (s == end || *s != 'F')
		return 0;
	char *nul = memchr(s, 0, (size_t)(end - s));
	if (!nul)
		return 0;
	m->sender = s + 1;
	for (s = nul + 1; s < end && *s; s = nul + 1) {
		nul = memchr(s, 0, (size_t)(end - s));
		if (!nul)
			return 0;
		switch (*s) {
		case 'E':
			if (m->nrcpt)
				return 0;
			m->envid = s + 1;
			break;
		case 'H':
			if (m->nrcpt)
				return 0;
			m->ret_hdrs = !strcasecmp(s + 1, "HDRS");
			break;
		case 'T':
			if (!rcpt_room(m, &cap))
				return -1;
			m->rcpt[m->nrcpt] = s + 1;
			m->orcpt[m->nrcpt] = 0;
			m->notify[m->nrcpt] = QUEUE_NOTIFY_DEFAULT;
			m->nrcpt++;
			break;
		case 'N':
			if (!m->nrcpt)
				return 0;
			m->notify[m->nrcpt - 1] = queue_notify_parse(s + 1);
			if (!m->notify[m->nrcpt - 1])
				m->notify[m->nrcpt - 1] = QUEUE_NOTIFY_DEFAULT;
			break;
		case 'O':
			if (!m->nrcpt)
				return 0;
			m->orcpt[m->nrcpt - 1] = s + 1;
			break;
		default:
			return 0;
		}
	}
	if (s == end || *s != 0 || m->nrcpt == 0)
		return 0;
	s++;
	/* Records; a torn or unknown tail ends them. */
	cap = 0;
	m->valid_len = (size_t)(s - m->env.s);
	while (s < end && *s && strchr(RECORD_TYPES, *s)) {
		nul = memchr(s, 0, (size_t)(end - s));
		if (!nul)
			break;
		if (m->nrec == cap) {
			cap = cap ? cap * 2 : 8;
			struct queue_record *r = realloc(m->rec, cap * sizeof *r);
			if (!r)
				return -1;
			m->rec = r;
		}
		struct queue_record *r = &m->rec[m->nrec++];
		r->type = *s;
		r->target = s + 1;
		r->reason = "";
		char *tab = memchr(s, '\t', (size_t)(nul - s));
		if (tab) {
			*tab = 0;
			r->reason = tab + 1;
		}
		s = nul + 1;
		m->valid_len = (size_t)(s - m->env.s);
	}
	return 1;
}

unsigned queue_notify_parse(const char *s)
{
	unsigned bits = 0;

	if (!strcasecmp(s, "NEVER"))
		return QUEUE_NOTIFY_NEVER;
	while (*s) {
		size_t n = strcspn(s, ",");
		if (n == 7 && !strncasecmp(s, "SUCCESS", 7))
			bits |= QUEUE_NOTIFY_SUCCESS;
		else if (n == 7 && !strncasecmp(s, "FAILURE", 7))
			bits |= QUEUE_NOTIFY_FAILURE;
		else if (n == 5 && !strncasecmp(s, "DELAY", 5))
			bits |= QUEUE_NOTIFY_DELAY;
		else
			return 0;
		s += n;
		if (*s == ',' && !*++s)
			return 0;
	}
	return bits;
}

/* Reads the header, envelope and records of the open m->fd; 0 with errno. */
static int load(struct queue_msg *m, const struct stat *st)
{
	char header[QUEUE_HEADER_LEN];

	ssize_t r = pread(m->fd, header, sizeof header, 0);
	if (r < 0)
		return fail(m, errno);
	if (r != QUEUE_HEADER_LEN || memcmp(header, "PRQ1 ", 5) || header[25] != '\n' ||
	    !scan_ullong(header + 5, 20, &m->msglen) ||
	    m->msglen > (unsigned long long)st->st_size)
		return fail(m, EPROTO);
	m->env_off = (off_t)(QUEUE_HEADER_LEN + m->msglen);
	if (!read_rest(m->fd, m->env_off, &m->env) || !sa_terminate(&m->env))
		return fail(m, errno);
	int p = parse(m);
	if (p <= 0)
		return fail(m, p < 0 ? ENOMEM : EPROTO);
	return 1;
}

int queue_msg_peek(struct queue_msg *m, int dirfd, const char *dir, const char *id)
{
	char path[QUEUE_ID_MAX + 16];
	struct stat st;

	*m = (struct queue_msg)QUEUE_MSG_ZERO;
	if (strlen(id) >= sizeof m->id || strchr(id, '/') || id[0] == '.')
		return fail(m, EPROTO);
	strcpy(m->id, id);
	snprintf(path, sizeof path, "%s/%s", dir, id);
	m->fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0 || fstat(m->fd, &st) < 0)
		return fail(m, errno);
	return load(m, &st);
}

const struct queue_record *queue_msg_latest(const struct queue_msg *m, const char *types,
					    const char *target)
{
	for (size_t i = m->nrec; i-- > 0;)
		if (strchr(types, m->rec[i].type) && !strcmp(m->rec[i].target, target))
			return &m->rec[i];
	return 0;
}

int queue_msg_open(struct queue_msg *m, int dirfd, const char *id)
{
	char path[QUEUE_ID_MAX + 8];
	struct stat st;

	*m = (struct queue_msg)QUEUE_MSG_ZERO;
	if (strlen(id) >= sizeof m->id)
		return fail(m, EPROTO);
	strcpy(m->id, id);
	snprintf(path, sizeof path, "msg/%s", id);
	m->fd = openat(dirfd, path, O_RDWR | O_CLOEXEC);
	if (m->fd < 0)
		return fail(m, errno);
	if (flock(m->fd, LOCK_EX | LOCK_NB) < 0)
		return fail(m, errno);
	/* Finished by another process between our open and our lock: removed, or moved to
	   bounce/ (then msg/ID is gone or names another file). */
	struct stat now;
	if (fstat(m->fd, &st) < 0)
		return fail(m, errno);
	if (st.st_nlink == 0 || fstatat(dirfd, path, &now, 0) < 0 || now.st_ino != st.st_ino ||
	    now.st_dev != st.st_dev)
		return fail(m, ENOENT);
	return load(m, &st);
}

char queue_msg_record(const struct queue_msg *m, const char *types, const char *target)
{
	for (size_t i = 0; i < m->nrec; i++)
		if (strchr(types, m->rec[i].type) && !strcmp(m->rec[i].target, target))
			return m->rec[i].type;
	/* Records added by this process count too, synced or not. */
	for (size_t i = 0; i < m->pending.len; i += strlen(m->pending.s + i) + 1) {
		const char *t = m->pending.s + i + 1;
		size_t n = strcspn(t, "\t");
		if (strchr(types, m->pending.s[i]) && strlen(target) == n && !memcmp(t, target, n))
			return m->pending.s[i];
	}
	return 0;
}

int queue_msg_add_record(struct queue_msg *m, char type, const char *target, const char *reason)
{
	if (!sa_catc(&m->pending, type) || !sa_cats(&m->pending, target))
		return 0;
	if (type != QUEUE_REC_DELIVERED) {
		/* A reason is one line of text: no NUL, tab or line end can reach the file. */
		if (!sa_catc(&m->pending, '\t'))
			return 0;
		for (const char *r = reason; *r; r++)
			if (!sa_catc(&m->pending, (*r == '\t' || *r == '\n' || *r == '\r') ? ' ' : *r))
				return 0;
	}
	return sa_cat0(&m->pending);
}

int queue_msg_sync(struct queue_msg *m)
{
	const char *rec = m->pending.s + m->pending_synced;
	size_t len = m->pending.len - m->pending_synced;

	if (len == 0)
		return 1;
	off_t at = m->env_off + (off_t)m->valid_len;
	if (m->valid_len < m->env.len) {
		/* A torn tail: cut it off, and forget it was read. */
		if (ftruncate(m->fd, at) < 0)
			return 0;
		m->env.len = m->valid_len;
	}
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(m->fd, rec + done, len - done, at + (off_t)done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		done += (size_t)w;
	}
	if (fdatasync(m->fd) < 0)
		return 0;
	/* They stay in pending, so queue_msg_record still sees them. */
	m->valid_len += len;
	m->pending_synced = m->pending.len;
	return 1;
}

int queue_msg_defer(struct queue_msg *m, time_t when)
{
	struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = when } };

	return futimens(m->fd, t) == 0;
}

void queue_msg_close(struct queue_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	sa_free(&m->env);
	sa_free(&m->pending);
	free(m->rcpt);
	free(m->orcpt);
	free(m->notify);
	free(m->rec);
	m->rcpt = m->orcpt = 0;
	m->notify = 0;
	m->rec = 0;
	m->nrcpt = m->nrec = 0;
}

int queue_remove(int dirfd, const char *id)
{
	char path[QUEUE_ID_MAX + 8];

	snprintf(path, sizeof path, "msg/%s", id);
	return unlinkat(dirfd, path, 0) == 0 && sync_dir_at(dirfd, "msg");
}

int queue_bounce(int dirfd, const char *id)
{
	char from[QUEUE_ID_MAX + 8], to[QUEUE_ID_MAX + 8];

	snprintf(from, sizeof from, "msg/%s", id);
	snprintf(to, sizeof to, "bounce/%s", id);
	/* bounce/ first: a crash between the two flushes leaves it in both or in msg/, never lost. */
	return renameat(dirfd, from, dirfd, to) == 0 && sync_dir_at(dirfd, "bounce") &&
	       sync_dir_at(dirfd, "msg");
}

double queue_age(const char *id, const struct timespec *now)
{
	char *end;
	long long sec = strtoll(id, &end, 10);

	/* "-" since ids became Atoms; "." in the files of a queue from before. */
	if (*end != '-' && *end != '.')
		return 0;
	long usec = strtol(end + 1, &end, 10);
	double age = (double)(now->tv_sec - sec) + (double)now->tv_nsec / 1e9 - (double)usec / 1e6;
	return age < 0 ? 0 : age;
}
