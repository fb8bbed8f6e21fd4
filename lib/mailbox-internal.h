/* postroom: ISC license, see LICENSE. */
#ifndef MAILBOX_INTERNAL_H
#define MAILBOX_INTERNAL_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "mailbox.h"

/*
 * What the files of lib/mailbox*.c share and nothing else needs: Dovecot's dotlocks, the
 * dovecot-uidlist and dovecot-keywords files, folder paths, and the cache's hooks.
 * Return conventions as in mailbox.h: 1, or 0 with errno set.
 */

#define MBOX_UIDLIST "dovecot-uidlist"
#define MBOX_KEYWORDS "dovecot-keywords"
#define MBOX_CACHE_FILE "postroom-cache"
#define MBOX_FILE_MAX (256u << 20)	/* no file of ours or Dovecot's is read past this */

/* why gets "what: strerror(e)"; errno is e; returns 0, for "return mbox_fail(...)". */
int mbox_fail(char *why, size_t whysize, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* This host's name, as Dovecot writes it in a dotlock ("pid:host") and in file names. */
const char *mbox_hostname(void);

/*
 * Dovecot's dotlock on path: path.lock created with O_EXCL (Dovecot 2.3's dotlock_use_excl
 * default), holding "pid:host". A lock whose process is gone from this host, or that nobody has
 * touched for MBOX_LOCK_STALE seconds, is stale and broken, as Dovecot breaks it, and so is an
 * empty one MBOX_LOCK_EMPTY_STALE_MS old (what a power cut leaves); a live one is
 * waited for up to MBOX_LOCK_WAIT seconds (then EAGAIN). Returns the lock's fd, or -1.
 * dotlock_replace writes data in the lock and renames it over path (Dovecot's way of
 * replacing dovecot-keywords and subscriptions); dotlock_release just removes it.
 */
#define MBOX_LOCK_STALE 120
#define MBOX_LOCK_EMPTY_STALE_MS 500	/* an empty lock (see lock_stale) */
#define MBOX_LOCK_WAIT 30
int dotlock_take(const char *path);
int dotlock_replace(int fd, const char *path, const char *data, size_t len);
void dotlock_release(int fd, const char *path);

/* A file read whole into memory (NUL-terminated), at most MBOX_FILE_MAX bytes; 1, 0 with
   ENOENT when there is none, 0 with another errno on trouble. */
int mbox_slurp(const char *path, char **data, size_t *len, struct stat *st);

/* The length of a Maildir file name's base: up to the ":2," info. */
size_t mbox_base_len(const char *name);
/* Dovecot's order for messages it numbers in one go: the leading seconds, then ".M<usec>",
   then the base names. */
int mbox_name_cmp(const char *a, const char *b);

/* A map from base names to indexes (open addressing; keys are not copied). */
struct mbox_map {
	struct mbox_map_slot { const char *key; size_t len; size_t val; } *slot;
	size_t cap, n;
};
#define MBOX_MAP_ZERO { 0, 0, 0 }
int mbox_map_put(struct mbox_map *map, const char *key, size_t len, size_t val);
/* 1 and *val, or 0. */
int mbox_map_get(const struct mbox_map *map, const char *key, size_t len, size_t *val);
void mbox_map_free(struct mbox_map *map);

/* dovecot-uidlist, version 3, in memory. */
struct uidlist_rec {
	uint32_t uid;
	char *ext;	/* the fields between the UID and ':', kept as they were ("W123 S120") */
	char *base;
};
struct uidlist {
	uint32_t uidvalidity;	/* 0: there is no usable file */
	uint32_t nextuid;
	char guid[33];
	struct uidlist_rec *rec;	/* UID order */
	size_t n, cap;
	struct mbox_map map;	/* base -> index in rec */
	int broken;	/* lines were skipped: the next write rewrites the file */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};
#define UIDLIST_ZERO { 0 }
/* Reads dir's uidlist if it changed since u was read; 1 (uidvalidity 0 when there is none,
   or its header is unreadable), 0 on I/O trouble. */
int uidlist_read(const char *dir, struct uidlist *u);
/* UIDs for base names bases[0..n) (each base[i] of length lens[i]): those the list has keep
   theirs, the others get the next ones in the order given. Takes the lock, reads the latest
   file, appends (or rewrites it when it is missing or broken), unlocks. A new file gets a new
   UIDVALIDITY from root. u is left as the file now is. Lines of messages that are gone stay,
   as Dovecot leaves them until it rewrites the file for reasons of its own. */
int uidlist_assign(const char *root, const char *dir, struct uidlist *u, const char *const *bases,
		   const size_t *lens, size_t n, uint32_t *uids);
/* The same, each new record with the fields exts[i] (when exts and exts[i] are not 0), as
   COPY records the message's GUID ("G<guid>") where the file's new name differs from it. */
int uidlist_assign_ext(const char *root, const char *dir, struct uidlist *u,
		       const char *const *bases, const size_t *lens, const char *const *exts,
		       size_t n, uint32_t *uids);
/* The uidlist of the view (mailbox_guid.c): as the last scan read it, or empty after
   mbox_rest (size -1) until the next scan. */
struct uidlist *mbox_view_uidlist(struct mbox *m);
/* Writes a fresh uidlist in dir (which has none) with u's records and a new UIDVALIDITY. */
int uidlist_create(const char *root, const char *dir, struct uidlist *u);
void uidlist_free(struct uidlist *u);
/* The next UIDVALIDITY for a new mailbox of root, through Dovecot's dovecot-uidvalidity. */
uint32_t uidvalidity_next(const char *root);

/* dovecot-keywords of dir into kw (freeing what was there); a missing or garbled file gives
   no keywords. keywords_add: the index of name, added under the lock when it is new; -1
   when there is no room or the file cannot be written. */
void keywords_read(const char *dir, char *kw[MBOX_KEYWORDS_MAX]);
int keywords_add(const char *dir, char *kw[MBOX_KEYWORDS_MAX], const char *name);
void keywords_free(char *kw[MBOX_KEYWORDS_MAX]);

/* The directory of folder name of root into out ("INBOX" in any case is root): 1, or 0 with
   EINVAL (no valid name) or ENAMETOOLONG. exists: 1 only when it is there with a cur/. */
int mbox_folder_dir(const char *root, const char *name, char *out, size_t size);
int mbox_folder_exists(const char *dir);
/* Appends "-bytes -count" to root's maildirsize (when there is one), after an expunge. */
void mbox_quota_sub(const char *root, unsigned long long bytes, unsigned long long count);

/* The cache (mailbox_cache.c): loaded by mbox_open, saved by mbox_close. fill: the sizes of
   the view's messages from what is in memory, without reading the file. */
void mbox_cache_load(struct mbox *m);
void mbox_cache_fill(struct mbox *m);
void mbox_cache_save(struct mbox *m);
void mbox_cache_free(struct mbox *m);
/* Writes the values the session added to the cache, if any, and frees the cache. */
void mbox_cache_rest(struct mbox *m);

/* 1 when the view (in UID order) has uid and it is not gone. */
int mbox_view_has(const struct mbox *m, uint32_t uid);

/* The modseq records (mailbox_modseq.c). sync: after a scan, records what the view shows
   that the file does not, and sets changed[i] (i < nchanged) for each message whose modseq
   rose. unchanged: the file is as last read. rest: drops the records until next needed. */
int modseq_sync(struct mbox *m, unsigned char *changed, size_t nchanged, char *why,
		size_t whysize);
int modseq_unchanged(const struct mbox *m);
void modseq_rest(struct mbox *m);
void mbox_modseq_free(struct mbox *m);

#endif
