/* postroom: ISC license, see LICENSE. */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sa.h"

/*
 * IMAP folders over Maildir++, laid out exactly as Dovecot lays them out, so that a mailbox moves
 * between Dovecot and postroom both ways (and both may even serve it at once):
 *   - root: the user's Maildir (MAILDIR), which is INBOX; folder "A.B" is the directory ".A.B"
 *     with a "maildirfolder" file; names are modified UTF-7 on the wire and on disk alike; the
 *     hierarchy separator is '.';
 *   - flags in the file name's ":2," info, letters in ASCII order: D(raft) F(lagged)
 *     R(eplied = \Answered) S(een) T(rashed = \Deleted), then keyword letters a-z, letter i
 *     being line i of the folder's dovecot-keywords ("<i> <name>");
 *   - UIDs in dovecot-uidlist, version 3 ("3 V<uidvalidity> N<nextuid> G<guid>" then
 *     "<uid> [<ext>...] :<base name>"), changed only while holding dovecot-uidlist.lock as
 *     Dovecot takes it (created exclusively, stale after Dovecot's timeout), appended to for new
 *     messages and rewritten by rename when lines must go;
 *   - "subscriptions" in the root (Dovecot's version 2 format: a "V\t2" line, then one name per
 *     line);
 *   - \Recent as Dovecot has it for Maildir: a message is recent in the one session that moves
 *     it from new/ to cur/ (a read-write SELECT does; EXAMINE and STATUS do not);
 *   - our own per-folder cache, "postroom-cache", of what is costly to compute (sizes, ENVELOPE,
 *     BODYSTRUCTURE), keyed by UID; it may be deleted at any time and nothing is lost.
 * Actions return 1 on success, or 0 with a one-line reason in why (size whysize) and errno
 * set: ENOENT (no such folder), EEXIST, EINVAL (a name that is not valid), EROFS (read-only),
 * or an I/O error, which IMAP reports as NO.
 */

/* System flags, as bits. MBOX_RECENT is the session's, never stored. */
#define MBOX_SEEN	0x01
#define MBOX_ANSWERED	0x02
#define MBOX_FLAGGED	0x04
#define MBOX_DELETED	0x08
#define MBOX_DRAFT	0x10
#define MBOX_RECENT	0x20
#define MBOX_KEYWORDS_MAX 26	/* the letters a-z */

struct mbox_msg {
	uint32_t uid;
	unsigned flags;		/* MBOX_* */
	uint32_t keywords;	/* bit i: keyword i */
	int gone;		/* expunged by someone, still in the session's view (see mbox_sync) */
	time_t internaldate;	/* the file's mtime, as Dovecot uses it: 0 until
				   mbox_internaldate reads it */
	unsigned long long vsize;	/* RFC822.SIZE when the name's ",W=" or the cache knows it,
					   else 0 (the caller computes it and may mbox_cache_put it) */
	char *file;		/* the file, relative to the folder directory: "cur/..." */
	uint64_t modseq;	/* CONDSTORE: once mbox_modseq_enable ran; 0 while a change of
				   this session's own waits for mbox_modseq_commit */
};

struct mbox_cache;

/* A selected folder: the session's view of it, messages in sequence-number order (msg[0] is
   message 1), which changes only through mbox_sync and mbox_expunge. */
struct mbox {
	char *root;
	char *name;		/* "INBOX", or the folder's IMAP name */
	char *dir;		/* its directory */
	int readonly;
	uint32_t uidvalidity;
	uint32_t uidnext;
	struct mbox_msg *msg;
	size_t count;
	size_t cap;
	char *keyword[MBOX_KEYWORDS_MAX];	/* names of the folder's keywords, 0 for unused */
	struct mbox_cache *cache;
	struct mbox_sync_state *state;	/* the library's own: what the last sync saw */
	struct mbox_modseq *modseq;	/* CONDSTORE's records, once enabled */
	uint64_t highestmodseq;
	unsigned long reads;		/* message files mbox_read opened, for the log */
};

/* What a sync found, for the untagged replies: expunged(seq) for each message that left, its
   number counted in the view as it is at that moment (EXPUNGE's rule), then changed(seq) for
   each message whose flags or keywords someone else changed. New messages are appended to
   m->msg; the caller compares m->count with what it last announced. */
struct mbox_events {
	void (*expunged)(void *ctx, size_t seq);
	void (*changed)(void *ctx, size_t seq);
	void *ctx;
};

/* Opens the folder name ("INBOX" in any case, or a folder's name) of the Maildir root, reading
   new/ and cur/ and giving UIDs to messages that have none yet. */
int mbox_open(struct mbox *m, const char *root, const char *name, int readonly, char *why,
	      size_t whysize);
void mbox_close(struct mbox *m);

/* Brings the view up to date with the disk. With allow_expunge 0 (during FETCH, STORE and
   SEARCH, which may not announce EXPUNGE) a vanished message stays in the view with gone set. */
int mbox_sync(struct mbox *m, const struct mbox_events *ev, int allow_expunge, char *why,
	      size_t whysize);

/* Adds the flags add (MBOX_RECENT ignored) and keywords kw_add to message idx (0-based), and
   takes away remove and kw_remove, renaming its file. A change someone else made to the file
   meanwhile is kept where these do not say otherwise. */
struct mbox_change {
	unsigned add, remove;
	uint32_t kw_add, kw_remove;
};
int mbox_store(struct mbox *m, size_t idx, struct mbox_change ch, char *why,
	       size_t whysize);
/* Message idx's internal date (its file's mtime), read on first use. */
time_t mbox_internaldate(struct mbox *m, size_t idx);
/* The index of keyword name in the folder, adding it to dovecot-keywords when create is set and
   there is room; -1 when it is not there (or there is no room). Keywords match without case. */
int mbox_keyword(struct mbox *m, const char *name, int create);

/* Removes the messages flagged \Deleted (only those whose idx has want[idx] set, when want is
   not 0: UID EXPUNGE), reporting each through ev->expunged. */
int mbox_expunge(struct mbox *m, const struct mbox_events *ev, const unsigned char *want,
		 char *why, size_t whysize);

/* The message's bytes: *data and *len, valid until mbox_release. 0 with ENOENT when the file
   is gone. */
int mbox_read(struct mbox *m, size_t idx, const char **data, size_t *len, char *why,
	      size_t whysize);
void mbox_release(const char *data, size_t len);

/* APPEND: stores data as a new message of folder name with flags and keywords (names) and
   internal date (0: now), durably (tmp/, fsync, cur/, fsync of cur/ before the UID is given).
   *uidvalidity and *uid say what it got (UIDPLUS). */
int mbox_append(const char *root, const char *name, const char *data, size_t len,
		unsigned flags, const char *const *keywords, size_t nkeywords, time_t internaldate,
		uint32_t *uidvalidity, uint32_t *uid, char *why, size_t whysize);
/* MULTIAPPEND (RFC 3502): the n messages msgs[] into folder name, all or none: each written
   and synced in tmp/ first, then all moved in and new/ and cur/ synced before any UID is
   given. uids[0..n) get their UIDs, consecutive and in order; *uidvalidity 0 when the
   messages are stored but dovecot-uidlist could not be written (they get UIDs at the next
   sync). mbox_append is the batch of one. */
struct mbox_new {
	const char *data;
	size_t len;
	unsigned flags;
	const char *const *keywords;
	size_t nkeywords;
	time_t internaldate;	/* 0: now */
};
int mbox_append_batch(const char *root, const char *name, const struct mbox_new *msgs, size_t n,
		      uint32_t *uidvalidity, uint32_t *uids, char *why, size_t whysize);
/* COPY: the messages idx[0..n) of m into folder dest (hard links where possible), with their
   flags and keywords; uids[0..n) get their new UIDs, *uidvalidity dest's. */
int mbox_copy(struct mbox *m, const size_t *idx, size_t n, const char *dest,
	      uint32_t *uidvalidity, uint32_t *uids, char *why, size_t whysize);

/* The session is about to wait for its client, perhaps for hours: drops what can be read
   again (the folder's cache when this session added nothing to it, the copy of
   dovecot-uidlist), and the next command that needs it reads it again. */
void mbox_rest(struct mbox *m);

/* Cached strings of a message, by kind, in the folder's postroom-cache. get: 1 and the value
   appended to out, or 0 when not cached. put never fails the caller's command. */
enum mbox_cache_kind {
	MBOX_CACHE_ENVELOPE,
	MBOX_CACHE_BODY,
	MBOX_CACHE_BODYSTRUCTURE,
	MBOX_CACHE_SEARCH_HEADERS,	/* imap-serve's own layout: search.c */
	MBOX_CACHE_SORT_KEYS,		/* imap-serve's own layout: sort.c */
	MBOX_CACHE_PREVIEW,		/* RFC 8970's text (mime_preview) */
};
int mbox_cache_get(struct mbox *m, size_t idx, enum mbox_cache_kind kind, struct sa *out);
void mbox_cache_put(struct mbox *m, size_t idx, enum mbox_cache_kind kind, const char *s,
		    size_t n);
/* Records message idx's RFC822.SIZE for the next session. */
void mbox_cache_vsize(struct mbox *m, size_t idx, unsigned long long vsize);

/*
 * CONDSTORE and QRESYNC (RFC 7162): modification sequences, kept in the folder's
 * postroom-modseq (postroom-modseq(5)). mbox_modseq_enable gives every message of the view its
 * modseq (msg->modseq, m->highestmodseq) and from then on every mbox_sync keeps them, telling
 * through ev->changed of each message whose modseq rose; a view that never enables them costs
 * nothing. mbox_store leaves a message it changed at modseq 0 until mbox_modseq_commit gives
 * the command's changes their new modseq (one for the whole command), and the session's own
 * expunges are recorded then too.
 */
int mbox_modseq_enable(struct mbox *m, char *why, size_t whysize);
int mbox_modseq_commit(struct mbox *m, char *why, size_t whysize);
/* STATUS HIGHESTMODSEQ of a folder that is not selected: its modseqs brought up to date. */
int mbox_status_modseq(const char *root, const char *name, uint64_t *highest, char *why,
		       size_t whysize);
/* VANISHED (EARLIER): the UIDs gone since modseq since, within the runs known[0..nknown) (any
   UID when nknown is 0) and not in the view, as runs in *out (malloc'd, *nout of them). When
   since is older than what the file remembers (postroom-modseq(5)), every UID below uidnext
   that the view lacks, as RFC 7162 allows. */
struct mbox_uid_run {
	uint32_t lo, hi;
};
int mbox_modseq_vanished(struct mbox *m, uint64_t since, const struct mbox_uid_run *known,
			 size_t nknown, struct mbox_uid_run **out, size_t *nout, char *why,
			 size_t whysize);

/*
 * OBJECTID (RFC 8474): the ids Dovecot keeps for Maildir (lib/mailbox_guid.c).
 * mbox_guid: folder name's GUID (32 hex digits, the "G" of its dovecot-uidlist header, which
 * Dovecot calls the mailbox GUID), given one under the lock when it has none.
 * mbox_message_guid: message idx's GUID as Dovecot has it: the "G" field of its
 * dovecot-uidlist line (COPY writes one), else its file's base name; appended to out.
 */
int mbox_guid(const char *root, const char *name, char guid[33], char *why, size_t whysize);
int mbox_message_guid(struct mbox *m, size_t idx, struct sa *out);

/* STATUS without selecting: counts and UIDs of folder name. */
struct mbox_status {
	uint32_t messages, recent, unseen, deleted, uidnext, uidvalidity;
	unsigned long long size;	/* sum of RFC822.SIZE, as far as known */
};
int mbox_status(const char *root, const char *name, struct mbox_status *st, char *why,
		size_t whysize);

/* Folders. LIST attributes, as bits: */
#define MBOX_NOSELECT		0x001
#define MBOX_HASCHILDREN	0x002
#define MBOX_HASNOCHILDREN	0x004
#define MBOX_NOINFERIORS	0x008
#define MBOX_SUBSCRIBED		0x010
#define MBOX_NONEXISTENT	0x020	/* subscribed, but not there (LIST-EXTENDED) */
#define MBOX_SENT		0x100	/* SPECIAL-USE (RFC 6154) */
#define MBOX_DRAFTS		0x200
#define MBOX_TRASH		0x400
#define MBOX_JUNK		0x800
#define MBOX_ARCHIVE		0x1000
/* Calls each(ctx, name, attributes) for INBOX and every folder (and every subscribed name that
   has no folder), in no particular order; stops when each returns 0. */
int mbox_list(const char *root, int (*each)(void *ctx, const char *name, unsigned attrs),
	      void *ctx, char *why, size_t whysize);
int mbox_create(const char *root, const char *name, char *why, size_t whysize);
/* DELETE: a folder with children becomes \Noselect as RFC 3501 says; INBOX cannot go. */
int mbox_delete(const char *root, const char *name, char *why, size_t whysize);
/* RENAME, children along; renaming INBOX moves its messages to the new folder. */
int mbox_rename(const char *root, const char *from, const char *to, char *why,
		size_t whysize);
int mbox_subscribe(const char *root, const char *name, int subscribe, char *why,
		   size_t whysize);
/* On first login (no folder with a special use yet): creates and subscribes Sent, Drafts,
   Trash, Junk and Archive. Names that clients use for the same things ("Sent Messages",
   "Deleted Messages", "Junk E-mail", ...) are found through their attributes, never made. */
int mbox_ensure_special(const char *root, char *why, size_t whysize);

/* 1 when name is a valid folder name: modified UTF-7 (RFC 3501 section 5.1.3) that decodes,
   no empty hierarchy level, no '/', not starting with '.'. */
int mbox_name_valid(const char *name);

#endif
