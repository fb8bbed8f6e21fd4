/* postroom: ISC license, see LICENSE. */
#ifndef IMAP_SERVE_H
#define IMAP_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "deflate_io.h"
#include "imap_cmd.h"
#include "mailbox.h"
#include "sa.h"

/* Settings from the environment (imap-serve(8) lists them). */
struct config {
	char **checkpassword;		/* pre-login: the program and its arguments */
	const char *login_user;		/* pre-login: parse as this user (IMAP_LOGIN_USER) */
	int auth_plaintext;		/* LOGIN and AUTHENTICATE allowed without TLS */
	unsigned long login_timeout;	/* seconds, before login */
	unsigned long timeout;		/* seconds, after login (RFC 3501: at least 30 minutes) */
	unsigned long auth_failures;	/* failed logins before we hang up */
	unsigned long appendlimit;	/* bytes in one APPEND */
	unsigned long bad_commands;	/* BAD replies in a row before we hang up */
};

/* The connection: its input and output, and the command being answered. */
struct conn {
	struct buf in, out;
	struct imap_cmd cmd;
	struct imap_limits limits;
	unsigned long bad_in_a_row;
	unsigned long timeout;	/* seconds a whole command may take to arrive */
	struct deflate_io *compress;	/* 0, or COMPRESS=DEFLATE's state (compress.c) */
	/* Last, so that the small fields share pages: an idle session gives the buffers' pages
	   back (buf_rest), not theirs. */
	char inspace[16384], outspace[16384];
};

void conn_init(struct conn *c, const struct config *cf, unsigned long timeout);
/* One APPEND's messages together (MULTIAPPEND): at most this or APPENDLIMIT, whichever is
   more, and at most APPEND_MESSAGES_MAX of them (append.c). */
#define APPEND_TOTAL_MIN (100UL << 20)
#define APPEND_MESSAGES_MAX 1000
/* printf to the client; a write that fails ends the session (exit 0: the client left). */
void out(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_bytes(struct conn *c, const char *s, size_t n);
/* s as an IMAP string: quoted when it can be, else a literal; NIL for 0. */
void out_string(struct conn *c, const char *s, size_t n);
void out_flush(struct conn *c);
/* Reads the next command; answers BAD/NO/BYE itself for what imap_cmd_read refuses. 1 with a
   command, 0 when the connection is over. */
int conn_next(struct conn *c, const struct config *cf);
/* Logs (and tells the client) why its input ended, when there is more to say than that it
   left: errno EPROTO, compressed input that is not valid. */
void conn_input_failed(struct conn *c);
/* The tag of the command being answered, NUL-terminated in a static buffer. */
const char *conn_tag(struct conn *c);
/* "TAG BAD text" for the current command, counting bad commands in a row. */
void bad(struct conn *c, const struct config *cf, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The capability list after login, and before (which depends on TLS). */
void out_capabilities(struct conn *c, const struct config *cf);
#define CAPS_COMMON "IMAP4rev1 IMAP4rev2 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"

/* "* ID (...)": what we say of ourselves (login.c). */
void cmd_id_reply(struct conn *c);

/* Pre-login (login.c): never returns. */
_Noreturn void login_serve(const struct config *cf);
/* Authenticated (session.c): never returns. */
_Noreturn void session_serve(const struct config *cf);

/* The authenticated session. */
struct session {
	const struct config *cf;
	const char *root;		/* MAILDIR */
	const char *user;
	struct mbox box;		/* the selected folder, when selected */
	int selected;
	size_t announced;		/* messages the client has been told exist */
	size_t recent_announced;
	uint32_t keywords_announced;	/* the folder's keywords the client has been told of */
	int enabled_utf8;
	int rev2;			/* ENABLE IMAP4rev2: RFC 9051's rules (rev2.c) */
	int condstore, qresync;		/* RFC 7162, once enabled */
	int uidonly;			/* RFC 9586, once enabled */
	unsigned long files_read;	/* message files read in folders closed since login */
	uint32_t *vanished;		/* UIDs expunged, for the next VANISHED (QRESYNC) */
	size_t nvanished, capvanished;
	int searched_modseq;		/* the last search keys had MODSEQ (RFC 7162 3.1.5) */
	uint32_t *saved;		/* SEARCHRES's "$": UIDs, ascending (search.c) */
	size_t nsaved;
	struct conn c;			/* last: its buffers end it (see struct conn) */
};

/* folder.c: commands on folders; each answers the tagged reply itself. */
void cmd_select(struct session *s, int readonly);
void cmd_create(struct session *s);
void cmd_delete(struct session *s);
void cmd_rename(struct session *s);
void cmd_subscribe(struct session *s, int on);
void cmd_list(struct session *s, int lsub);
void cmd_status(struct session *s);
void cmd_append(struct session *s);
void cmd_namespace(struct session *s);
void cmd_getquota(struct session *s, int root);
/* 1 when adding count messages of bytes would take the Maildir++ quota of root past a limit. */
int over_quota(const char *root, unsigned long long bytes, unsigned long long count);
/* The tagged OK/NO of a folder action by its errno. */
void answer_mbox_error(struct session *s, const char *why);

/* messages.c: FETCH, STORE, COPY, MOVE, EXPUNGE, SEARCH (search.c) with their UID forms. */
void cmd_fetch(struct session *s, int uid, size_t arg);
void cmd_store(struct session *s, int uid, size_t arg);
void cmd_copy(struct session *s, int uid, size_t arg, int move);
void cmd_expunge(struct session *s, int uid, size_t arg);
void cmd_search(struct session *s, int uid, size_t arg);

/* search.c, for SEARCH, SORT and THREAD. search_keys: the search keys from token first to the
   end of the command, tried on every message of the view: match[idx] set for those that
   match. search_charset: 1 when token i names a charset we search in. Both answer BAD or NO
   themselves when they return 0. */
int search_keys(struct session *s, size_t first, unsigned char *match);
int search_charset(struct session *s, size_t i);
/* RETURN (...) of SEARCH (RFC 4731) or SORT (RFC 5267, without SAVE) at token *i: 0 when
   there is none, RET_BAD when it is not valid, else RET_ESEARCH and the options (ALL for an
   empty list), *i moved past it. */
#define RET_MIN 1u
#define RET_MAX 2u
#define RET_ALL 4u
#define RET_COUNT 8u
#define RET_SAVE 16u
#define RET_ESEARCH 32u
#define RET_BAD 64u
unsigned search_return_opts(struct session *s, size_t *i, int sort);
/* "* ESEARCH (TAG ...) [UID] MIN MAX ALL COUNT [MODSEQ m]" of the numbers v[0..n) as opts
   asks; sorted: v is in a SORT's order, whose first and last are MIN and MAX (RFC 5267);
   modseq: result_modseq's, 0 for none. */
void out_esearch(struct session *s, int uid, unsigned opts, const uint32_t *v, size_t n,
		 int sorted, uint64_t modseq);
/* When the search keys had MODSEQ: the modseq a reply about the messages idx[0..n) (in its
   order) ends with (RFC 7162 section 3.1.5, RFC 4731 section 3.2); else 0. */
uint64_t result_modseq(struct session *s, const size_t *idx, size_t n, unsigned opts);
/* The end of a SEARCH or SORT reply: " (MODSEQ m)" when modseq is not 0, and CRLF. */
void out_search_modseq(struct session *s, uint64_t modseq);
/* Numbers as a sequence set, runs of consecutive numbers as a:b. */
void out_number_set(struct session *s, const uint32_t *v, size_t n);
/* SEARCHRES (RFC 5182): "$" empties on SELECT, EXAMINE, CLOSE and UNSELECT; want[idx] set for
   each message of "$" still in the view. */
void searchres_clear(struct session *s);
void searchres_mark(struct session *s, unsigned char *want);

/* sort.c and thread.c: SORT (RFC 5256, RFC 5957, ESORT of RFC 5267) and THREAD. */
void cmd_sort(struct session *s, int uid, size_t arg);
void cmd_thread(struct session *s, int uid, size_t arg);

/* binary.c: FETCH's BINARY items (RFC 3516). binary_get: the section's bytes, decoded, into
   v (*decoded when an encoding was undone); 0 with the tagged NO's code and text in *no when
   they cannot be had. binary_out: the item "BINARY[spec]<start> ~{n}..." (a literal8 when
   decoded or holding a NUL), or "BINARY.SIZE[spec] n". */
struct mime_msg;
struct mime_section;
int binary_get(const struct mime_msg *m, const struct mime_section *sec, struct sa *v,
	       int *decoded, const char **no);
void binary_out(struct session *s, const char *spec, int size_only, int partial,
		unsigned long long start, unsigned long long count, const struct sa *v,
		int decoded);

/* Expunges the \\Deleted messages among want (all when 0), announcing each EXPUNGE. */
void expunge_announced(struct session *s, const unsigned char *want);

/* session.c: untagged replies for what changed in the selected folder; with allow_expunge 0
   (during FETCH, STORE, SEARCH) expunges wait. */
void announce_changes(struct session *s, int allow_expunge);
/* "* FLAGS (...)" when the folder has keywords the client has not been told of. */
void announce_keywords(struct session *s);
/* "* N FETCH (UID u FLAGS (...))" for message idx; the folder's flags as a list (with \\* when
   permanent, for PERMANENTFLAGS). */
void out_flags(struct session *s, size_t idx);
/* "* n FETCH (", or with UIDONLY "* uid UIDFETCH (" (RFC 9586): 0 in that case, where the UID
   is not said again unless asked for. */
int out_fetch_start(struct session *s, size_t idx);
void out_flag_list(struct session *s, unsigned flags, uint32_t keywords);
void out_folder_flags(struct session *s, int permanent);

/* rev2.c: IMAP4rev2 (RFC 9051) once enabled. rev2_select_list: SELECT's "* LIST" of the
   folder just opened, its attributes as LIST gives them. out_list_attrs (folder.c): the
   "(...)" of a LIST reply. */
void rev2_select_list(struct session *s);
void out_list_attrs(struct session *s, unsigned attrs, int with_subscribed, int with_special);

/* compress.c: COMPRESS (RFC 4978), and for the logout's log line the bytes it saw (compressed/
   uncompressed), or "" when the session did not compress. */
void cmd_compress(struct session *s);
const char *compress_counts(const struct conn *c);

/* objectid.c: OBJECTID (RFC 8474). objectid_valid: s[0..n) has RFC 8474's objectid
   syntax. emailid_get appends message idx's EMAILID; out_emailid says "EMAILID (id)" (0, and
   nothing said, when out of memory); out_threadid "THREADID (id)" or "THREADID NIL". mailboxid_get: folder
   name's MAILBOXID (0, logged, when it cannot be had); out_mailboxid_selected: SELECT's
   "* OK [MAILBOXID (id)]". */
#define OBJECTID_MAX 255
int objectid_valid(const char *s, size_t n);
int emailid_get(struct session *s, size_t idx, struct sa *out);
int out_emailid(struct session *s, size_t idx);
int out_threadid(struct session *s, size_t idx);
/* Message idx's THREADID appended to out; nothing appended for NIL (objectid.c). */
int threadid_get(struct session *s, size_t idx, struct sa *out);
int mailboxid_get(struct session *s, const char *name, char id[33]);
void out_mailboxid_selected(struct session *s);

/* Token i as a folder name: an astring, "INBOX" in any case made "INBOX". 0 when it is not one
   (or too long). */
int arg_folder(struct session *s, size_t i, char *out, size_t size);
#define FOLDER_NAME_MAX 1024

/* Sequence sets (messages.c): parses token i's set against the view; want[idx] set for each
   message in it. 0 when the set is not valid (BAD). */
int seqset_parse(struct session *s, size_t i, int uid, unsigned char *want);

/* condstore.c: CONDSTORE and QRESYNC (RFC 7162). condstore_on: modseqs on for the session
   (and its folder), telling HIGHESTMODSEQ when a command turned them on with a folder
   selected; 0 when the folder's cannot be kept. */
int condstore_on(struct session *s);
void condstore_commit(struct session *s);
void out_highestmodseq(struct session *s);
/* "MODSEQ (n)" of message idx. */
void out_modseq(struct session *s, size_t idx);
/* The mbox_events expunged handler of every command: "* n EXPUNGE", or with QRESYNC the UID
   kept for flush_vanished's one "* VANISHED set" once the library is done. */
void on_expunged(void *ctx, size_t seq);
void flush_vanished(struct session *s);
void out_uid_runs(struct session *s, const struct mbox_uid_run *r, size_t n);
/* "* VANISHED (EARLIER) set" of the UIDs within known (any when nknown is 0) gone since. */
void out_vanished_earlier(struct session *s, uint64_t since, const struct mbox_uid_run *known,
			  size_t nknown);
/* Token i, a UID set, as runs (malloc'd); "*" reaches to the highest UID there can be. */
int uid_set_runs(struct session *s, size_t i, struct mbox_uid_run **out, size_t *n);
/* Token i as a mod-sequence-value; zero_ok for UNCHANGEDSINCE 0 and CHANGEDSINCE 0. */
int arg_modseq(struct session *s, size_t i, int zero_ok, uint64_t *v);
struct select_params {
	int condstore, qresync;
	int uidrequired;		/* not valid for message numbers under UIDONLY */
	uint32_t uidvalidity;
	uint64_t since;
	struct mbox_uid_run *known;
	size_t nknown;
};
int select_params_parse(struct session *s, size_t i, struct select_params *p);
void select_params_free(struct select_params *p);
/* After SELECT's own replies: VANISHED (EARLIER) and the FETCHes of what changed. */
void qresync_select(struct session *s, const struct select_params *p);

/* utf8_accept.c: UTF8=ACCEPT (RFC 6855), once the session enabled it (s->enabled_utf8).
   utf8_command_ok: 0, BAD answered, when a quoted string or atom holds 8-bit bytes that are
   not UTF-8. folder_from_wire: a folder argument (UTF-8) made modified UTF-7 in place; 0 with
   errno when it is not UTF-8 or does not fit. folder_to_wire: a folder's name as the client
   sees it (UTF-8 in buf once enabled). out_wire_name: such a name as a string, quoted with its
   UTF-8 once enabled; out_folder_name both. folder_name_chars_ok: 1 when a modified UTF-7 name
   stands for none of the characters section 3 keeps out of names. header_has_8bit: 1 when the
   header of the message m[0..n) has a byte over 0x7f. */
int utf8_command_ok(struct session *s);
int folder_from_wire(struct session *s, char *name, size_t size);
const char *folder_to_wire(struct session *s, const char *name, char *buf, size_t size);
void out_wire_name(struct session *s, const char *wire);
void out_folder_name(struct session *s, const char *name);
int folder_name_chars_ok(const char *name);
int header_has_8bit(const char *m, size_t n);

#endif
