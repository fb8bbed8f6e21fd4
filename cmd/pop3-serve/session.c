/* postroom: ISC license, see LICENSE. */
/*
 * The TRANSACTION and UPDATE states (RFC 1939) on the Maildir's INBOX, through the same
 * library as imap-serve: the same UIDs (dovecot-uidlist), so UIDL is Dovecot's default
 * pop3_uidl_format, and the same flags. The session sees the messages there were at login;
 * DELE and RETR only mark, and QUIT carries the marks out: nothing changes on disk when the
 * connection drops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "checkpw.h"
#include "die.h"
#include "log.h"
#include "mailbox.h"
#include "maildir.h"
#include "pool.h"
#include "pop3-serve.h"

/* One POP3 session at a time per mailbox, as Dovecot's pop3_lock_session; its contents are the
   time of the last login, for LOGIN-DELAY. */
#define LOCK_FILE "postroom-pop3.lock"

#define DELETED 1	/* by DELE, until RSET */
#define RETRIEVED 2	/* by RETR */
#define GONE 4		/* expunged by someone else before we could size it: never listed */

struct session {
	const struct config *cf;
	struct conn c;
	const char *user;
	struct mbox box;
	size_t n;			/* the messages at login: box.msg[0..n) */
	unsigned char *mark;		/* DELETED, RETRIEVED, by message */
	unsigned long long *size;	/* as on the wire: CRLF line ends */
};

/* The size of data with every bare LF counted as CRLF, as RFC 1939 wants it (and as
   RFC822.SIZE is). */
static unsigned long long wire_size(const char *data, size_t len)
{
	unsigned long long size = len;

	for (const char *p = data; (p = memchr(p, '\n', len - (size_t)(p - data))); p++)
		if (p == data || p[-1] != '\r')
			size++;
	return size;
}

/* The mailbox cannot be read (permissions, I/O): the login fails for now. */
_Noreturn static void unavailable(struct session *s, const char *why)
{
	out(&s->c, "-ERR [SYS/TEMP] Unable to open the mailbox\r\n");
	out_flush(&s->c);
	log_line("%s: trouble: %s", s->user, why);
	exit(0);
}

/* Takes the mailbox: the lock, LOGIN-DELAY, the messages and their sizes. Answers and exits
   when the session cannot start. */
static void take_mailbox(struct session *s)
{
	char why[256];
	int fd = open(LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		die_sys("unable to open %s", LOCK_FILE);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			die_sys("unable to lock %s", LOCK_FILE);
		out(&s->c, "-ERR [IN-USE] Mailbox in use by another POP3 session\r\n");
		out_flush(&s->c);
		log_line("%s: refused: mailbox in use", s->user);
		exit(0);
	}
	char last[32] = { 0 };
	time_t now = time(0);
	ssize_t r = pread(fd, last, sizeof last - 1, 0);
	long long then = r > 0 ? strtoll(last, 0, 10) : 0;
	if (s->cf->login_delay && then > 0 && now >= then &&
	    now - then < (long long)s->cf->login_delay) {
		out(&s->c, "-ERR [LOGIN-DELAY] Logged in %lld s ago; wait %lu s between logins\r\n",
		    (long long)(now - then), s->cf->login_delay);
		out_flush(&s->c);
		log_line("%s: refused: login delay", s->user);
		exit(0);
	}

	if (!mbox_open(&s->box, ".", "INBOX", 0, why, sizeof why))
		unavailable(s, why);
	s->n = s->box.count;
	s->mark = calloc(s->n + 1, 1);
	s->size = calloc(s->n + 1, sizeof *s->size);
	if (!s->mark || !s->size)
		die(EXIT_TEMP, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		s->size[i] = s->box.msg[i].vsize;
		const char *data;
		size_t len;
		if (s->size[i])
			continue;
		if (!mbox_read(&s->box, i, &data, &len, why, sizeof why)) {
			if (errno != ENOENT)
				unavailable(s, why);
			/* Expunged by another session since the scan: not part of this one. */
			s->mark[i] = GONE;
			continue;
		}
		s->size[i] = wire_size(data, len);
		mbox_release(data, len);
		mbox_cache_vsize(&s->box, i, s->size[i]);
	}
	/* A login that got this far counts for LOGIN-DELAY. */
	int n = snprintf(last, sizeof last, "%lld\n", (long long)now);
	if (pwrite(fd, last, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		log_line("%s: unable to write %s: %s", s->user, LOCK_FILE, strerror(errno));
}

/* Message number arg: its index + 1, or 0 after answering -ERR. */
static size_t message(struct session *s, const char *arg)
{
	char *end;

	errno = 0;
	unsigned long long v = arg && *arg >= '0' && *arg <= '9' ? strtoull(arg, &end, 10) : 0;
	if (!v || errno || *end || v > s->n) {
		out_err(&s->c, "No such message");
		return 0;
	}
	if (s->mark[v - 1] & (DELETED | GONE)) {
		out_err(&s->c, "Message %llu is deleted", v);
		return 0;
	}
	return (size_t)v;
}

static void cmd_stat(struct session *s)
{
	size_t count = 0;
	unsigned long long bytes = 0;

	for (size_t i = 0; i < s->n; i++)
		if (!(s->mark[i] & (DELETED | GONE))) {
			count++;
			bytes += s->size[i];
		}
	out(&s->c, "+OK %zu %llu\r\n", count, bytes);
}

/* LIST and UIDL: one message, or a list of all that are not deleted. */
static void cmd_list(struct session *s, int uidl)
{
	char value[32];

	if (s->c.nargs > 2) {
		out_err(&s->c, "Too many arguments");
		return;
	}
	if (s->c.nargs == 2) {
		size_t v = message(s, s->c.arg[1]);
		if (!v)
			return;
		if (uidl)
			snprintf(value, sizeof value, "%08X%08X", (unsigned)s->box.msg[v - 1].uid,
				 (unsigned)s->box.uidvalidity);
		else
			snprintf(value, sizeof value, "%llu", s->size[v - 1]);
		out(&s->c, "+OK %zu %s\r\n", v, value);
		return;
	}
	out(&s->c, "+OK\r\n");
	for (size_t i = 0; i < s->n; i++) {
		if (s->mark[i] & (DELETED | GONE))
			continue;
		if (uidl)
			out(&s->c, "%zu %08X%08X\r\n", i + 1, (unsigned)s->box.msg[i].uid,
			    (unsigned)s->box.uidvalidity);
		else
			out(&s->c, "%zu %llu\r\n", i + 1, s->size[i]);
	}
	out(&s->c, ".\r\n");
}

/* The message's lines with CRLF ends, dot-stuffed; with body_lines >= 0 (TOP), the header,
   the empty line and that many lines of the body. Then the final ".". */
static void send_lines(struct session *s, const char *d, size_t len, long long body_lines)
{
	int in_body = 0;
	long long body = 0;

	for (size_t i = 0; i < len;) {
		if (in_body && body_lines >= 0 && body >= body_lines)
			break;
		const char *nl = memchr(d + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - d) : len, content = end;
		if (content > i && d[content - 1] == '\r')
			content--;
		if (d[i] == '.')
			out_bytes(&s->c, ".", 1);
		out_bytes(&s->c, d + i, content - i);
		out_bytes(&s->c, "\r\n", 2);
		if (in_body)
			body++;
		else if (content == i)
			in_body = 1;
		i = nl ? end + 1 : len;
	}
	out_bytes(&s->c, ".\r\n", 3);
}

/* RETR (body_lines -1) and TOP. */
static void cmd_retr(struct session *s, int top)
{
	char why[256];
	long long lines = -1;

	if (s->c.nargs != (top ? 3u : 2u)) {
		out_err(&s->c, top ? "TOP takes a message number and a number of lines" :
				 "RETR takes a message number");
		return;
	}
	if (top) {
		char *end;
		const char *a = s->c.arg[2];
		errno = 0;
		lines = *a >= '0' && *a <= '9' ? strtoll(a, &end, 10) : -1;
		if (lines < 0 || (errno && errno != ERANGE) || *end) {
			out_err(&s->c, "Not a number of lines");
			return;
		}
		/* More lines than any message has: the whole message (RFC 1939). */
	}
	size_t v = message(s, s->c.arg[1]);
	if (!v)
		return;
	const char *data;
	size_t len;
	if (!mbox_read(&s->box, v - 1, &data, &len, why, sizeof why)) {
		log_line("%s: %s", s->user, why);
		out(&s->c, "-ERR [SYS/TEMP] Unable to read message %zu\r\n", v);
		return;
	}
	if (top)
		out(&s->c, "+OK\r\n");
	else
		out(&s->c, "+OK %llu octets\r\n", s->size[v - 1]);
	send_lines(s, data, len, lines);
	mbox_release(data, len);
	if (!top)
		s->mark[v - 1] |= RETRIEVED;
}

static void cmd_dele(struct session *s)
{
	if (s->c.nargs != 2) {
		out_err(&s->c, "DELE takes a message number");
		return;
	}
	size_t v = message(s, s->c.arg[1]);
	if (!v)
		return;
	s->mark[v - 1] |= DELETED;
	out(&s->c, "+OK Message %zu deleted\r\n", v);
}

static void cmd_rset(struct session *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->mark[i] &= (unsigned char)~DELETED;
	out(&s->c, "+OK\r\n");
}

/* The UPDATE state: the deleted messages go (and with POP3_EXPIRE=0 the retrieved ones), the
   other retrieved ones become \Seen. 1, or 0 when some of it failed (logged). */
static int update(struct session *s, size_t *deleted, size_t *seen)
{
	char why[256];
	int ok = 1;

	*deleted = *seen = 0;
	/* Flags an IMAP session changed meanwhile are kept: the view is brought up to date first
	   (with expunges held back, so that indexes stay as they are). It may grow: messages
	   delivered since the login come after ours, and none of them is touched. */
	if (!mbox_sync(&s->box, 0, 0, why, sizeof why)) {
		log_line("%s: trouble: %s", s->user, why);
		return 0;
	}
	unsigned char *want = calloc(s->box.count + 1, 1);
	if (!want)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		struct mbox_msg *m = &s->box.msg[i];
		int go = (s->mark[i] & DELETED) ||
			 (s->cf->expire_at_once && (s->mark[i] & RETRIEVED));
		unsigned flags = m->flags & ~(unsigned)MBOX_RECENT;
		if (m->gone || (s->mark[i] & GONE) ||
		    (!go && (!(s->mark[i] & RETRIEVED) || (flags & MBOX_SEEN))))
			continue;
		struct mbox_change change = { .add = go ? MBOX_DELETED : MBOX_SEEN };
		if (!mbox_store(&s->box, i, change, why, sizeof why)) {
			log_line("%s: trouble: %s", s->user, why);
			ok = 0;
			continue;
		}
		if (go) {
			want[i] = 1;
			(*deleted)++;
		} else {
			(*seen)++;
		}
	}
	if (*deleted && !mbox_expunge(&s->box, 0, want, why, sizeof why)) {
		log_line("%s: trouble: %s", s->user, why);
		ok = 0;
	}
	free(want);
	return ok;
}

_Noreturn static void cmd_quit(struct session *s)
{
	size_t deleted, seen;

	if (update(s, &deleted, &seen))
		out(&s->c, "+OK Bye\r\n");
	else
		out(&s->c, "-ERR [SYS/TEMP] Some deletions or flags could not be saved\r\n");
	out_flush(&s->c);
	log_line("%s: quit: %zu deleted, %zu marked seen", s->user, deleted, seen);
	mbox_close(&s->box);
	exit(0);
}

static void dispatch(struct session *s)
{
	struct conn *c = &s->c;

	if (conn_is(c, "STAT") && c->nargs == 1)
		cmd_stat(s);
	else if (conn_is(c, "LIST"))
		cmd_list(s, 0);
	else if (conn_is(c, "UIDL"))
		cmd_list(s, 1);
	else if (conn_is(c, "RETR"))
		cmd_retr(s, 0);
	else if (conn_is(c, "TOP"))
		cmd_retr(s, 1);
	else if (conn_is(c, "DELE"))
		cmd_dele(s);
	else if (conn_is(c, "RSET") && c->nargs == 1)
		cmd_rset(s);
	else if (conn_is(c, "NOOP") && c->nargs == 1)
		out(c, "+OK\r\n");
	else if (conn_is(c, "QUIT") && c->nargs == 1)
		cmd_quit(s);
	else if (conn_is(c, "CAPA") && c->nargs == 1) {
		out(c, "+OK Capability list follows\r\n");
		out_capa_common(c);
		out(c, ".\r\n");
	} else
		out_err(c, "Unknown command");
}

_Noreturn void session_serve(const struct config *cf)
{
	static struct session s;

	s.cf = cf;
	const char *maildir = env_need("MAILDIR");
	const char *user = getenv("USER");
	s.user = user && *user ? user : "-";
	if (!maildir_enter(maildir))
		die_sys("unable to enter %s as its owner", maildir);
	if (!maildir_make("."))
		die_sys("unable to make the Maildir %s", maildir);
	conn_init(&s.c, cf);
	/* Commands the client sent right after its login, read by the pre-login process. */
	if (!checkpw_pending_import("POP3LOGINPENDING", &s.c.in))
		die(EXIT_PERM, "POP3LOGINPENDING is not valid");
	int login = getenv("POP3LOGIN") != 0;
	unsetenv("POP3LOGIN");
	take_mailbox(&s);
	/* The login is over: should this session end badly, tls-server's pool does not take it
	   back to before it (pool(5)). */
	pool_session_started();
	out(&s.c, login ? "+OK Logged in\r\n" : "+OK postroom POP3 session\r\n");
	log_line("%s: logged in: %zu messages", s.user, s.n);
	while (conn_next(&s.c)) {
		unsigned long bad_before = s.c.bad_in_a_row;
		dispatch(&s);
		if (s.c.bad_in_a_row == bad_before)
			s.c.bad_in_a_row = 0;
	}
	/* No QUIT: nothing is carried out (RFC 1939 section 6); the sizes learnt are kept. */
	log_line("%s: connection closed without QUIT", s.user);
	mbox_close(&s.box);
	exit(0);
}
