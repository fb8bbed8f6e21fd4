/* postroom: ISC license, see LICENSE. */
#define _GNU_SOURCE	/* close_range */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "memory.h"
#include "pool.h"

extern char **environ;

int pool_pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0;
}

/* Room for one descriptor more than a session may bring, so that a message with too many is
   seen whole (not cut short by the kernel, which would close the rest unseen) and refused. */
union control {
	struct cmsghdr align;
	char space[CMSG_SPACE(sizeof(int) * (POOL_FDS_MAX + 1))];
};

int pool_send(int fd, const struct pool_session *s)
{
	union control c;
	struct iovec iov = { .iov_base = (void *)s->env, .iov_len = s->len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (s->nfd > POOL_FDS_MAX || s->len > POOL_ENV_MAX) {
		errno = EINVAL;
		return 0;
	}
	/* A message of no bytes would read as end of file at the other end. */
	if (!s->len)
		iov.iov_base = (void *)"", iov.iov_len = 1;
	if (s->nfd) {
		memset(&c, 0, sizeof c);
		m.msg_control = c.space;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * s->nfd);
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int) * s->nfd);
		memcpy(CMSG_DATA(h), s->fd, sizeof(int) * s->nfd);
	}
	ssize_t w;
	while ((w = sendmsg(fd, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return w >= 0;
}

/* Closes what a refused message brought, so that nothing leaks. */
static int refuse(struct pool_session *s)
{
	for (size_t i = 0; i < s->nfd; i++)
		close(s->fd[i]);
	s->nfd = 0;
	errno = EPROTO;
	return 0;
}

int pool_receive(int fd, struct pool_session *s)
{
	union control c;
	struct iovec iov = { .iov_base = s->env, .iov_len = sizeof s->env };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = c.space, .msg_controllen = sizeof c.space };
	ssize_t r;

	s->nfd = 0;
	s->len = 0;
	while ((r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return 0;
	if (r == 0) {
		errno = 0;
		return 0;
	}
	int excess = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;
			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof got);
			if (s->nfd < POOL_FDS_MAX) {
				s->fd[s->nfd++] = got;
			} else {
				close(got);	/* more than any session has: refused below */
				excess = 1;
			}
		}
	}
	if (excess || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
		return refuse(s);
	s->len = (size_t)r;
	if (s->len == 1 && s->env[0] == 0)
		s->len = 0;	/* pool_send's placeholder for no environment */
	else if (s->env[s->len - 1] != 0)
		return refuse(s);
	return 1;
}

int pool_done(int fd, int code)
{
	unsigned char b = (unsigned char)code;
	ssize_t w;

	while ((w = send(fd, &b, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return w == 1;
}

int pool_wait(int fd)
{
	unsigned char b;
	ssize_t r;

	while ((r = recv(fd, &b, 1, 0)) < 0 && errno == EINTR)
		;
	if (r == 1)
		return b;
	if (r == 0)
		errno = 0;
	return -1;
}

/* The number first, then the code: five bytes, in one message. */
int pool_done_numbered(int fd, unsigned number, int code)
{
	unsigned char m[5];
	ssize_t w;

	memcpy(m, &number, 4);
	m[4] = (unsigned char)code;
	while ((w = send(fd, m, sizeof m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return w == sizeof m;
}

int pool_wait_numbered(int fd, unsigned *number)
{
	unsigned char m[6];	/* a byte more: a longer message is seen, and refused */
	ssize_t r;

	while ((r = recv(fd, m, sizeof m, 0)) < 0 && errno == EINTR)
		;
	if (r == 5) {
		memcpy(number, m, 4);
		return m[4];
	}
	errno = r == 0 ? 0 : r < 0 ? errno : EPROTO;
	return -1;
}

unsigned pool_sessions_at_once(void)
{
	const char *v = getenv("POOLSESSIONS");
	char *end;

	if (!v || !*v)
		return 1;
	unsigned long n = strtoul(v, &end, 10);
	unsigned at_once = *end || n < 1 || n > POOL_SESSIONS_MAX ? 0 : (unsigned)n;
	/* Ours alone, as POOLFD. */
	unsetenv("POOLSESSIONS");
	return at_once;
}

int pool_fd_from_env(void)
{
	const char *v = getenv("POOLFD");
	char *end;

	if (!v || !*v)
		return -1;
	long fd = strtol(v, &end, 10);
	if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		return -2;
	/* Ours alone: a program we run must not take some descriptor of its own for it. */
	unsetenv("POOLFD");
	return (int)fd;
}

static char **saved_env;

int pool_env_save(void)
{
	size_t n = 0;

	while (environ[n])
		n++;
	saved_env = calloc(n + 1, sizeof *saved_env);
	if (!saved_env)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(saved_env[i] = strdup(environ[i])))
			return 0;
	return 1;
}

int pool_install(struct pool_session *s)
{
	static char live[POOL_ENV_MAX];
	static char fdvars[3][24];
	static const char *const names[3] = { "SSLCTLFD", "SSLREADFD", "SSLWRITEFD" };

	if (s->nfd != 2 && s->nfd != 5) {
		errno = EPROTO;
		return 0;
	}
	if (dup2(s->fd[0], 0) < 0 || dup2(s->fd[1], 1) < 0)
		return 0;
	for (size_t i = 0; i < 2; i++)
		if (s->fd[i] > 1)
			close(s->fd[i]);
	if (saved_env) {
		/* putenv keeps our pointers; nothing writes through them. */
		clearenv();
		for (char **e = saved_env; *e; e++)
			if (putenv(*e) < 0)
				return 0;
	}
	memcpy(live, s->env, s->len);
	for (size_t i = 0; i < s->len; i += strlen(live + i) + 1)
		if (strchr(live + i, '=') && putenv(live + i) < 0)
			return 0;
	for (size_t i = 2; i < s->nfd; i++) {
		snprintf(fdvars[i - 2], sizeof fdvars[i - 2], "%s=%d", names[i - 2], s->fd[i]);
		if (fcntl(s->fd[i], F_SETFD, 0) < 0 || putenv(fdvars[i - 2]) < 0)
			return 0;
	}
	return 1;
}

/* Every descriptor from lo to hi closed; one at a time where the kernel has no close_range
   (before Linux 5.9), up to the limit on open files. */
static void close_from(unsigned lo, unsigned hi)
{
	if (close_range(lo, hi, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	unsigned top = max > 0 && (unsigned long)max - 1 < hi ? (unsigned)max - 1 : hi;
	for (unsigned fd = lo; fd <= top; fd++)
		close((int)fd);
}

int pool_release(int keep)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return 0;
	int ok = dup2(null, 0) >= 0 && dup2(null, 1) >= 0;
	if (null > 1)
		close(null);
	/* Whatever the session left open (a queue file it was cut off in, the TLS descriptors it
	   never used) goes with it. */
	if (keep > 3)
		close_from(3, (unsigned)keep - 1);
	close_from((unsigned)keep + 1, ~0U);
	return ok;
}

/* The session's note, as the child writes it (note_fd) and as the next child finds it. */
static int note_fd = -1;
static _Alignas(4096) char note[POOL_NOTE_MAX];	/* whole pages, given back after each session */
static size_t note_len;
static int note_status;
static int resumed;

int pool_note(const void *p, size_t len)
{
	if (note_fd < 0) {
		errno = ENOTSUP;
		return 0;
	}
	if (len > POOL_NOTE_MAX) {
		errno = EMSGSIZE;
		return 0;
	}
	ssize_t r;
	while ((r = send(note_fd, p, len, 0)) < 0 && errno == EINTR)
		;
	if (r >= 0 && (size_t)r != len)
		errno = EMSGSIZE;
	if (r < 0 || (size_t)r != len)
		return 0;
	char v[16];
	snprintf(v, sizeof v, "%d", note_fd);
	if (fcntl(note_fd, F_SETFD, 0) < 0 || setenv("POOLNOTEFD", v, 1) < 0)
		return 0;
	return 1;
}

void pool_note_close(void)
{
	if (note_fd >= 0)
		close(note_fd);
	note_fd = -1;
}

void pool_session_started(void)
{
	const char *v = getenv("POOLNOTEFD");
	char *end;

	if (!v)
		return;
	long fd = strtol(v, &end, 10);
	unsetenv("POOLNOTEFD");
	if (*end || end == v || fd < 3 || fd > 65535)
		return;
	/* An empty datagram: the parent's sign that the login is over. */
	while (send((int)fd, "", 0, 0) < 0 && errno == EINTR)
		;
	close((int)fd);
}

void *pool_resumed(size_t *len, int *status)
{
	if (!resumed)
		return 0;
	*len = note_len;
	*status = note_status;
	return note;
}

/* Wipes the note, and gives its pages back: the parent waits through whole sessions. */
static void forget_note(void)
{
	explicit_bzero(note, note_len);
	if (note_len)
		memory_discard(note, sizeof note);
	note_len = 0;
	resumed = 0;
}

/* Takes the note the child left on fd, if any: the first datagram, kept by the kernel until
   the process is over, so that we touch no memory of ours while a session lasts. An empty
   datagram after it (pool_session_started) voids it; whatever comes after that is not ours
   to read. */
static void read_note(int fd)
{
	ssize_t r;

	while ((r = recv(fd, note, sizeof note, MSG_DONTWAIT | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	note_len = r > 0 ? (size_t)r : 0;
	if (note_len > sizeof note) {
		note_len = sizeof note;	/* cut short: no note, and nothing of it kept */
		forget_note();
		return;
	}
	char sign;
	while ((r = recv(fd, &sign, 1, MSG_DONTWAIT | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (r == 0)
		forget_note();	/* the session started: the login is over */
}

/*
 * The sessions of a server that forks a child for each: a session is the child serving it,
 * and after a note, the children that take it up again. We keep its descriptors and pairs
 * until it is over (a child that resumes it gets them again), and a pidfd, which poll(2) finds
 * readable when the child is gone.
 */
struct kept {
	pid_t pid;
	int pidfd;
	int note;		/* our end of the child's note socket */
	unsigned number;	/* its number on POOLFD: the sessions there before it */
	int fd[POOL_FDS_MAX];
	size_t nfd, len;
	char env[];		/* len bytes of pairs, as received */
};

/* Every descriptor above 2 but those in keep (n of them) closed: a child holds its own
   session's and nothing of another's. */
static void close_all_but(int *keep, size_t n)
{
	unsigned from = 3;

	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned)keep[i] > from)
			close_from(from, (unsigned)keep[i] - 1);
		from = (unsigned)keep[i] + 1;
	}
	close_from(from, ~0U);
}

/* Starts a child for session k: 1, or 0 when it could not (logged; the session is over). */
static int start_child(struct kept *k, void (*serve)(const void *ctx), const void *ctx)
{
	static struct pool_session ps;	/* the child's copy; zero, so in no data page of ours */
	int p[2];

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, p) < 0) {
		log_line("trouble: unable to make a socket pair: %s", strerror(errno));
		return 0;
	}
	k->pid = fork();
	if (k->pid < 0) {
		log_line("trouble: unable to fork: %s", strerror(errno));
		close(p[0]), close(p[1]);
		return 0;
	}
	if (k->pid == 0) {
		int keep[POOL_FDS_MAX + 1];
		memcpy(keep, k->fd, k->nfd * sizeof *keep);
		keep[k->nfd] = p[1];
		close_all_but(keep, k->nfd + 1);
		memcpy(ps.fd, k->fd, sizeof ps.fd);
		ps.nfd = k->nfd;
		memcpy(ps.env, k->env, k->len);
		ps.len = k->len;
		note_fd = p[1];
		if (!pool_install(&ps))
			_exit(EXIT_TEMP);
		serve(ctx);
		_exit(EXIT_TEMP);
	}
	close(p[1]);
	k->note = p[0];
	k->pidfd = (int)syscall(SYS_pidfd_open, k->pid, 0);
	if (k->pidfd < 0)
		die_sys_code(EXIT_TEMP, "unable to watch a child");
	/* The child has its own copy of the note, if any: ours, perhaps with a password the
	   client pipelined, goes. */
	forget_note();
	return 1;
}

/* Session k is over: its descriptors closed (the client sees the end) and its code told. */
static void end_session(int pool, unsigned max, struct kept *k, int code)
{
	for (size_t i = 0; i < k->nfd; i++)
		close(k->fd[i]);
	int told = max > 1 ? pool_done_numbered(pool, k->number, code) : pool_done(pool, code);
	if (!told)
		die_sys_code(EXIT_TEMP, "unable to end a session");
}

/* Session k's child is gone: a new one if it left a note and failed; else the session is
   over, answered on POOLFD, and forgotten. 1 while the session goes on. */
static int child_ended(int pool, unsigned max, struct kept *k,
		       void (*serve)(const void *ctx), const void *ctx)
{
	int status = 0;

	while (waitpid(k->pid, &status, 0) < 0)
		if (errno != EINTR)
			die_sys("unable to wait");
	close(k->pidfd);
	read_note(k->note);
	close(k->note);
	if (note_len && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		note_status = status;
		resumed = 1;
		if (start_child(k, serve, ctx))
			return 1;
		status = EXIT_TEMP << 8;
	}
	forget_note();
	end_session(pool, max, k, WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_TEMP);
	return 0;
}

/* A session received: kept in as little memory as it needs. */
static struct kept *keep_session(const struct pool_session *ps, unsigned number)
{
	struct kept *k = malloc(sizeof *k + ps->len);

	if (!k)
		die(EXIT_TEMP, "out of memory");
	memcpy(k->fd, ps->fd, sizeof k->fd);
	k->nfd = ps->nfd;
	k->len = ps->len;
	memcpy(k->env, ps->env, ps->len);
	k->number = number;
	return k;
}

_Noreturn static void serve_forked(int pool, unsigned max, void (*serve)(const void *ctx),
				   const void *ctx)
{
	/* Zero, not POOL_SESSION_ZERO (pool_receive sets what it uses): initialised, its 8 KiB
	   would sit in the data pages that every session process dirties. */
	static struct pool_session ps;
	struct kept **live = calloc(max, sizeof *live);
	struct pollfd *p = calloc(max + 1, sizeof *p);
	unsigned n = 0, received = 0;

	if (!live || !p || !pool_env_save())
		die(EXIT_TEMP, "out of memory");
	for (;;) {
		p[0] = (struct pollfd){ .fd = n < max ? pool : -1, .events = POLLIN };
		for (unsigned i = 0; i < n; i++)
			p[i + 1] = (struct pollfd){ .fd = live[i]->pidfd, .events = POLLIN };
		if (poll(p, n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_sys_code(EXIT_TEMP, "unable to poll");
		}
		/* From the last, so that one taken out (the last moved into its place) is not
		   looked at twice. */
		for (unsigned i = n; i-- > 0;)
			if (p[i + 1].revents && !child_ended(pool, max, live[i], serve, ctx)) {
				free(live[i]);
				live[i] = live[--n];
			}
		if (!p[0].revents)
			continue;
		if (!pool_receive(pool, &ps)) {
			if (errno == 0)
				exit(0);	/* no more sessions; those still running end on their own */
			die_sys_code(EXIT_TEMP, "unable to receive a session");
		}
		if (ps.nfd != 2 && ps.nfd != 5) {
			errno = EPROTO;
			die_sys_code(EXIT_TEMP, "unable to take a session");
		}
		struct kept *k = keep_session(&ps, received++);
		explicit_bzero(ps.env, ps.len);
		if (start_child(k, serve, ctx)) {
			live[n++] = k;
			continue;
		}
		end_session(pool, max, k, EXIT_TEMP);
		free(k);
	}
}

void pool_serve_sessions(void (*serve)(const void *ctx), const void *ctx)
{
	int pool = pool_fd_from_env();

	if (pool == -2)
		die(EXIT_PERM, "POOLFD names no open descriptor");
	if (pool < 0) {
		serve(ctx);
		exit(0);
	}
	unsigned at_once = pool_sessions_at_once();
	if (!at_once)
		die(EXIT_PERM, "POOLSESSIONS: a number from 1 to %d", POOL_SESSIONS_MAX);
	serve_forked(pool, at_once, serve, ctx);
}
