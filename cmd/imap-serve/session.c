/* postroom: ISC license, see LICENSE. */
/*
 * After login: the user's Maildir, the command loop, the untagged replies that tell the client
 * what changed (after each command, never in the middle of one's reply), and IDLE.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpw.h"
#include "deadline.h"
#include "die.h"
#include "getln.h"
#include "imap-serve.h"
#include "log.h"
#include "maildir.h"
#include "memory.h"
#include "pool.h"

#define CAPS_SESSION CAPS_COMMON " UIDPLUS MOVE NAMESPACE UNSELECT CHILDREN SPECIAL-USE" \
	" LIST-EXTENDED LIST-STATUS QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE" \
	" ESEARCH SEARCHRES WITHIN SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT" \
	" THREAD=REFERENCES CONDSTORE QRESYNC COMPRESS=DEFLATE MULTIAPPEND BINARY UIDONLY" \
	" OBJECTID PREVIEW UTF8=ACCEPT"

void out_capabilities(struct conn *c, const struct config *cf)
{
	out(c, "%s APPENDLIMIT=%lu", CAPS_SESSION, cf->appendlimit);
}

static const char *const system_flags[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					    "\\Draft", "\\Recent" };

void out_flag_list(struct session *s, unsigned flags, uint32_t keywords)
{
	int first = 1;
	if (s->rev2)
		flags &= ~MBOX_RECENT;	/* not a flag of IMAP4rev2 */
	out(&s->c, "(");
	for (unsigned i = 0; i < 6; i++)
		if (flags & (1u << i)) {
			out(&s->c, first ? "%s" : " %s", system_flags[i]);
			first = 0;
		}
	for (unsigned i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if ((keywords & (1u << i)) && s->box.keyword[i]) {
			out(&s->c, first ? "%s" : " %s", s->box.keyword[i]);
			first = 0;
		}
	out(&s->c, ")");
}

int out_fetch_start(struct session *s, size_t idx)
{
	if (s->uidonly) {
		out(&s->c, "* %u UIDFETCH (", s->box.msg[idx].uid);
		return 0;
	}
	out(&s->c, "* %zu FETCH (", idx + 1);
	return 1;
}

void out_flags(struct session *s, size_t idx)
{
	const struct mbox_msg *m = &s->box.msg[idx];
	if (out_fetch_start(s, idx))
		out(&s->c, "UID %u ", m->uid);
	out(&s->c, "FLAGS ");
	out_flag_list(s, m->flags, m->keywords);
	if (s->condstore && s->box.modseq) {
		out(&s->c, " ");
		out_modseq(s, idx);
	}
	out(&s->c, ")\r\n");
}

/* The folder's flags and keywords, for SELECT's FLAGS and PERMANENTFLAGS. */
void out_folder_flags(struct session *s, int permanent)
{
	out(&s->c, "(\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if (s->box.keyword[i])
			out(&s->c, " %s", s->box.keyword[i]);
	out(&s->c, permanent ? " \\*)" : ")");
}

static void on_changed(void *ctx, size_t seq)
{
	struct session *s = ctx;
	if (seq <= s->announced)
		out_flags(s, seq - 1);
}

static uint32_t keyword_set(const struct mbox *m)
{
	uint32_t set = 0;
	for (unsigned i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if (m->keyword[i])
			set |= 1u << i;
	return set;
}

void announce_keywords(struct session *s)
{
	uint32_t now = keyword_set(&s->box);
	if (now != s->keywords_announced) {
		out(&s->c, "* FLAGS ");
		out_folder_flags(s, 0);
		out(&s->c, "\r\n");
		if (!s->box.readonly) {
			out(&s->c, "* OK [PERMANENTFLAGS ");
			out_folder_flags(s, 1);
			out(&s->c, "] Flags permitted\r\n");
		}
		s->keywords_announced = now;
	}
}

void announce_changes(struct session *s, int allow_expunge)
{
	char why[256];

	if (!s->selected)
		return;
	struct mbox_events ev = { on_expunged, on_changed, s };
	if (!mbox_sync(&s->box, &ev, allow_expunge, why, sizeof why))
		log_line("%s: unable to read folder %s: %s", s->user, s->box.name, why);
	flush_vanished(s);
	announce_keywords(s);
	size_t recent = 0;
	for (size_t i = 0; i < s->box.count; i++)
		if (s->box.msg[i].flags & MBOX_RECENT)
			recent++;
	/* RECENT goes with new messages, as Dovecot sends it: after expunges the client counts
	   down by itself. */
	if (s->box.count != s->announced) {
		out(&s->c, "* %zu EXISTS\r\n", s->box.count);
		if ((s->box.count > s->announced || recent != s->recent_announced) && !s->rev2)
			out(&s->c, "* %zu RECENT\r\n", recent);
		s->announced = s->box.count;
	}
	s->recent_announced = recent;
}

void answer_mbox_error(struct session *s, const char *why)
{
	const char *code = "";
	switch (errno) {
	case ENOENT: code = "[NONEXISTENT] "; break;
	case EEXIST: code = "[ALREADYEXISTS] "; break;
	case EROFS: case EACCES: case EPERM: code = "[NOPERM] "; break;
	case EDQUOT: code = "[OVERQUOTA] "; break;
	case EINVAL: code = "[CANNOT] "; break;
	default: code = "[SERVERBUG] "; break;
	}
	out(&s->c, "%s NO %s%s\r\n", conn_tag(&s->c), code, why);
}

/* IDLE (RFC 2177): changes as they happen, inotify telling us when new/ or cur/ change. */
/* How long a client may be quiet between commands before its session rests. */
#define QUIET_MS 2000

/*
 * A session spends most of its life waiting for its client, often for hours in IDLE. Before
 * such a wait it gives back what the next command can read again (mbox_rest), and the heap's
 * free pages: an idle session's memory is most of a server's.
 */
static void rest(struct session *s)
{
	if (s->selected)
		mbox_rest(&s->box);
	sa_shrink(&s->c.cmd.data);	/* room for a line as long as allowed: 64 KiB */
	buf_rest(&s->c.in);
	buf_rest(&s->c.out);
	memory_give_back();
}

/* Rests once the client has been quiet for QUIET_MS with nothing of it left to read: not
   between the commands of a busy client, which would read the cache again each time. */
static void rest_when_quiet(struct session *s)
{
	struct pollfd p = { 0, POLLIN, 0 };

	if (buf_input_ready(&s->c.in))
		return;
	int r;
	while ((r = poll(&p, 1, QUIET_MS)) < 0 && errno == EINTR)
		;
	if (r == 0)
		rest(s);
}

/* An inotify descriptor on the selected folder's new/ and cur/, or -1. Apart from cmd_idle,
   whose frame stays through the wait: the stack below it is given back when it rests. */
static __attribute__((noinline)) int watch_folder(struct session *s)
{
	char dir[4096];
	const uint32_t events = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB;
	int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	for (int i = 0; i < 2 && ino >= 0; i++) {
		snprintf(dir, sizeof dir, "%s/%s", s->box.dir, i ? "cur" : "new");
		if (inotify_add_watch(ino, dir, events) < 0)
			log_line("%s: unable to watch %s: %s", s->user, dir, strerror(errno));
	}
	return ino;
}

/* The folder changed during IDLE: what changed, told, and the session rests again. */
static __attribute__((noinline)) void folder_changed(struct session *s, int ino)
{
	char events[4096];

	while (read(ino, events, sizeof events) > 0)
		;
	announce_changes(s, 1);
	out_flush(&s->c);
	rest(s);
}

static void cmd_idle(struct session *s)
{
	char line[256];
	size_t n;
	int ino = -1;

	if (s->c.cmd.ntok != 2) {
		bad(&s->c, s->cf, "IDLE takes no arguments");
		return;
	}
	if (s->selected)
		ino = watch_folder(s);
	out(&s->c, "+ idling\r\n");
	out_flush(&s->c);
	rest(s);
	long long end = deadline_in((unsigned)s->cf->timeout);
	long long keepalive = deadline_in(120);
	for (;;) {
		/* Not only unread bytes: under COMPRESS the inflater may hold some (buf.h). */
		if (!buf_input_ready(&s->c.in)) {
			struct pollfd p[2] = { { 0, POLLIN, 0 }, { ino, POLLIN, 0 } };
			long long now = deadline_now_ms();
			if (now >= end) {
				out(&s->c, "* BYE Disconnected for inactivity\r\n");
				out_flush(&s->c);
				log_line("%s: closed: timed out in IDLE", s->user);
				exit(0);
			}
			long long wait = (keepalive < end ? keepalive : end) - now;
			int r = poll(p, ino >= 0 ? 2 : 1, wait > 0 ? (int)wait : 0);
			if (r < 0 && errno != EINTR)
				die_sys("unable to poll");
			if (r <= 0) {
				if (deadline_now_ms() >= keepalive) {
					out(&s->c, "* OK Still here\r\n");
					out_flush(&s->c);
					keepalive = deadline_in(120);
				}
				continue;
			}
			if (ino >= 0 && p[1].revents)
				folder_changed(s, ino);
			if (!p[0].revents)
				continue;
		}
		/* DONE has the usual time to arrive, counted from now. */
		s->c.in.deadline_ms = deadline_in((unsigned)s->cf->timeout);
		enum getln_result g = getln(&s->c.in, line, sizeof line, &n, '\n');
		if (g == GETLN_EOF || g == GETLN_ERR) {
			conn_input_failed(&s->c);
			exit(0);
		}
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (ino >= 0)
			close(ino);
		if (g == GETLN_OK && n == 4 && !strncasecmp(line, "DONE", 4)) {
			out(&s->c, "%s OK Idle completed\r\n", conn_tag(&s->c));
		} else {
			bad(&s->c, s->cf, "Expected DONE");
		}
		return;
	}
}

static void cmd_enable(struct session *s)
{
	const struct imap_cmd *cmd = &s->c.cmd;

	if (cmd->ntok < 3) {
		bad(&s->c, s->cf, "ENABLE needs capabilities");
		return;
	}
	for (size_t i = 2; i < cmd->ntok; i++)
		if (cmd->tok[i].type != IMAP_ATOM) {
			bad(&s->c, s->cf, "ENABLE takes capability names");
			return;
		}
	/* Only what this ENABLE turned on is listed (RFC 5161); unknown names are ignored. */
	int condstore = 0, qresync = 0, uidonly = 0, rev2 = 0, utf8 = 0;
	for (size_t i = 2; i < cmd->ntok; i++) {
		if (imap_tok_is(cmd, i, "CONDSTORE") && !s->condstore)
			condstore = 1;
		else if (imap_tok_is(cmd, i, "QRESYNC") && !s->qresync)
			qresync = 1;
		else if (imap_tok_is(cmd, i, "UIDONLY") && !s->uidonly)
			uidonly = 1;
		else if (imap_tok_is(cmd, i, "IMAP4rev2") && !s->rev2)
			rev2 = 1;
		/* Valid in the authenticated state only (RFC 6855 section 3): with a folder
		   selected it is not enabled, and so not listed. */
		else if (imap_tok_is(cmd, i, "UTF8=ACCEPT") && !s->enabled_utf8 && !s->selected)
			utf8 = 1;
	}
	out(&s->c, "* ENABLED%s%s%s%s%s\r\n", condstore ? " CONDSTORE" : "",
	    qresync ? " QRESYNC" : "", uidonly ? " UIDONLY" : "", rev2 ? " IMAP4rev2" : "",
	    utf8 ? " UTF8=ACCEPT" : "");
	if (uidonly)
		s->uidonly = 1;
	if (rev2)
		s->rev2 = 1;
	if (utf8)
		s->enabled_utf8 = 1;
	/* QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3). */
	if (condstore || qresync)
		condstore_on(s);
	if (qresync)
		s->qresync = 1;
	out(&s->c, "%s OK Enabled\r\n", conn_tag(&s->c));
}

static void unselect(struct session *s)
{
	searchres_clear(s);
	if (s->selected) {
		s->files_read += s->box.reads;
		mbox_close(&s->box);
		s->selected = 0;
		s->announced = s->recent_announced = 0;
		s->nvanished = 0;
	}
}

static void cmd_close(struct session *s, int expunge)
{
	char why[256];
	if (expunge && !s->box.readonly) {
		/* CLOSE expunges silently. */
		struct mbox_events quiet = { 0, 0, 0 };
		if (!mbox_expunge(&s->box, &quiet, 0, why, sizeof why))
			log_line("%s: unable to expunge in %s: %s", s->user, s->box.name, why);
	}
	unselect(s);
	out(&s->c, "%s OK %s completed\r\n", conn_tag(&s->c), expunge ? "Close" : "Unselect");
}

/* One command, in any state after login; the UID forms take their verb as token 2. */
static void dispatch(struct session *s)
{
	struct imap_cmd *cmd = &s->c.cmd;
	struct conn *c = &s->c;
	const char *tag = conn_tag(c);
	size_t n = cmd->ntok;

	if (!utf8_command_ok(s))
		return;
	if (imap_tok_is(cmd, 1, "CAPABILITY") && n == 2) {
		out(c, "* CAPABILITY ");
		out_capabilities(c, s->cf);
		out(c, "\r\n%s OK Capability completed\r\n", tag);
	} else if (imap_tok_is(cmd, 1, "NOOP") && n == 2) {
		announce_changes(s, 1);
		out(c, "%s OK NOOP completed\r\n", tag);
	} else if (imap_tok_is(cmd, 1, "CHECK") && n == 2 && s->selected) {
		announce_changes(s, 1);
		out(c, "%s OK Check completed\r\n", tag);
	} else if (imap_tok_is(cmd, 1, "LOGOUT") && n == 2) {
		out(c, "* BYE Logging out\r\n%s OK Logout completed\r\n", tag);
		out_flush(c);
		unselect(s);
		/* How many messages were read, for an admin (and a test) to see what a client's
		   sync cost: a client that resynchronises with CONDSTORE reads none. */
		log_line("%s: logged out read=%lu%s", s->user, s->files_read, compress_counts(c));
		exit(0);
	} else if (imap_tok_is(cmd, 1, "ID")) {
		cmd_id_reply(c);
		out(c, "%s OK ID completed\r\n", tag);
	} else if (imap_tok_is(cmd, 1, "ENABLE")) {
		cmd_enable(s);
	} else if (imap_tok_is(cmd, 1, "SELECT") || imap_tok_is(cmd, 1, "EXAMINE")) {
		/* A server that offers CONDSTORE says so, enabled or not (RFC 7162 3.2.11). */
		if (s->selected)
			out(c, "* OK [CLOSED] Previous mailbox closed\r\n");
		unselect(s);
		cmd_select(s, imap_tok_is(cmd, 1, "EXAMINE"));
	} else if (imap_tok_is(cmd, 1, "CREATE")) {
		cmd_create(s);
	} else if (imap_tok_is(cmd, 1, "DELETE")) {
		cmd_delete(s);
	} else if (imap_tok_is(cmd, 1, "RENAME")) {
		cmd_rename(s);
	} else if (imap_tok_is(cmd, 1, "SUBSCRIBE")) {
		cmd_subscribe(s, 1);
	} else if (imap_tok_is(cmd, 1, "UNSUBSCRIBE")) {
		cmd_subscribe(s, 0);
	} else if (imap_tok_is(cmd, 1, "LIST")) {
		cmd_list(s, 0);
	} else if (imap_tok_is(cmd, 1, "LSUB")) {
		cmd_list(s, 1);
	} else if (imap_tok_is(cmd, 1, "STATUS")) {
		cmd_status(s);
	} else if (imap_tok_is(cmd, 1, "APPEND")) {
		cmd_append(s);
	} else if (imap_tok_is(cmd, 1, "NAMESPACE") && n == 2) {
		cmd_namespace(s);
	} else if (imap_tok_is(cmd, 1, "GETQUOTA")) {
		cmd_getquota(s, 0);
	} else if (imap_tok_is(cmd, 1, "GETQUOTAROOT")) {
		cmd_getquota(s, 1);
	} else if (imap_tok_is(cmd, 1, "SETQUOTA")) {
		out(c, "%s NO [NOPERM] Quotas are set by the administrator\r\n", tag);
	} else if (imap_tok_is(cmd, 1, "IDLE")) {
		cmd_idle(s);
	} else if (imap_tok_is(cmd, 1, "COMPRESS")) {
		cmd_compress(s);
	} else if (!s->selected) {
		if (imap_tok_is(cmd, 1, "FETCH") || imap_tok_is(cmd, 1, "STORE") ||
		    imap_tok_is(cmd, 1, "SEARCH") || imap_tok_is(cmd, 1, "COPY") ||
		    imap_tok_is(cmd, 1, "SORT") || imap_tok_is(cmd, 1, "THREAD") ||
		    imap_tok_is(cmd, 1, "MOVE") || imap_tok_is(cmd, 1, "EXPUNGE") ||
		    imap_tok_is(cmd, 1, "UID") || imap_tok_is(cmd, 1, "CLOSE") ||
		    imap_tok_is(cmd, 1, "UNSELECT") || imap_tok_is(cmd, 1, "CHECK"))
			bad(c, s->cf, "No folder selected");
		else
			bad(c, s->cf, "Unknown command");
		return;
	} else if (imap_tok_is(cmd, 1, "CLOSE") && n == 2) {
		cmd_close(s, 1);
		return;
	} else if (imap_tok_is(cmd, 1, "UNSELECT") && n == 2) {
		cmd_close(s, 0);
		return;
	} else {
		int uid = imap_tok_is(cmd, 1, "UID");
		size_t verb = uid ? 2 : 1;
		if (!uid && s->uidonly && !imap_tok_is(cmd, verb, "EXPUNGE")) {
			/* RFC 9586 section 3: no message numbers once UIDONLY is on. */
			bad(c, s->cf, "[UIDREQUIRED] Message numbers are not used with UIDONLY");
			return;
		}
		if (imap_tok_is(cmd, verb, "FETCH"))
			cmd_fetch(s, uid, verb + 1);
		else if (imap_tok_is(cmd, verb, "STORE"))
			cmd_store(s, uid, verb + 1);
		else if (imap_tok_is(cmd, verb, "SEARCH"))
			cmd_search(s, uid, verb + 1);
		else if (imap_tok_is(cmd, verb, "SORT"))
			cmd_sort(s, uid, verb + 1);
		else if (imap_tok_is(cmd, verb, "THREAD"))
			cmd_thread(s, uid, verb + 1);
		else if (imap_tok_is(cmd, verb, "COPY"))
			cmd_copy(s, uid, verb + 1, 0);
		else if (imap_tok_is(cmd, verb, "MOVE"))
			cmd_copy(s, uid, verb + 1, 1);
		else if (imap_tok_is(cmd, verb, "EXPUNGE"))
			cmd_expunge(s, uid, verb + 1);
		else
			bad(c, s->cf, "Unknown command");
		return;
	}
}

_Noreturn void session_serve(const struct config *cf)
{
	static struct session s;
	char why[256];

	s.cf = cf;
	const char *maildir = env_need("MAILDIR");
	const char *user = getenv("USER");
	s.user = user && *user ? user : "-";
	if (!maildir_enter(maildir))
		die_sys("unable to enter %s as its owner", maildir);
	/* From here on the Maildir is ".": its owner may not be able to reach it by its path,
	   through directories only root may enter. */
	s.root = ".";
	conn_init(&s.c, cf, cf->timeout);
	/* Commands the client sent right after its login, read by the pre-login process. */
	if (!checkpw_pending_import("IMAPLOGINPENDING", &s.c.in))
		die(EXIT_PERM, "IMAPLOGINPENDING is not valid");
	if (!mbox_ensure_special(s.root, why, sizeof why))
		log_line("%s: unable to make the special folders: %s", s.user, why);

	/* The login is over: should this session end badly, tls-server's pool does not take it
	   back to before it (pool(5)). */
	pool_session_started();
	const char *tag = getenv("IMAPLOGINTAG");
	if (tag && *tag) {
		out(&s.c, "%s OK [CAPABILITY ", tag);
		out_capabilities(&s.c, cf);
		out(&s.c, "] Logged in\r\n");
	} else {
		out(&s.c, "* PREAUTH [CAPABILITY ");
		out_capabilities(&s.c, cf);
		out(&s.c, "] Logged in as %s\r\n", s.user);
	}
	unsetenv("IMAPLOGINTAG");
	while (conn_next(&s.c, cf)) {
		unsigned long bad_before = s.c.bad_in_a_row;
		dispatch(&s);
		if (s.c.bad_in_a_row == bad_before)
			s.c.bad_in_a_row = 0;
		out_flush(&s.c);
		rest_when_quiet(&s);
	}
	unselect(&s);
	exit(0);
}
