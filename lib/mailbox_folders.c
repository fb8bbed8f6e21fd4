/* postroom: ISC license, see LICENSE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox-internal.h"
#include "mutf7.h"
#include "maildir.h"
#include "sync.h"

/*
 * Folders as Dovecot 2.3 keeps them in Maildir++ (checked with doveadm): folder "A.B" is the
 * directory ".A.B" of the root, its name on disk the IMAP name (modified UTF-7) itself.
 *   - CREATE "A.B" makes ".A.B" alone; "A" is then a name with children but no folder
 *     (\NonExistent, which implies \Noselect).
 *   - DELETE removes the folder's directory, messages and all; its children stay, and so the
 *     name lists as \NonExistent \HasChildren: RFC 3501's \Noselect for a deleted parent.
 *     Subscriptions are left alone, as Dovecot leaves them.
 *   - RENAME renames the folder and every ".A.*" child directory; subscriptions stay as they
 *     were, as Dovecot's RENAME leaves them.
 *   - subscriptions: "V\t2\n\n", then one name a line with '\t' for the separator.
 * SPECIAL-USE attributes (RFC 6154) come from names: for each use, the first of its names
 * below that is a top-level folder gets it, and no other folder, so that a Maildir that came
 * from another server with both "Sent" and "Sent Messages" shows a client one Sent folder.
 */

static const struct special {
	unsigned attr;
	const char *names[4];
} specials[] = {
	{ MBOX_SENT, { "Sent", "Sent Messages", "Sent Items", 0 } },
	{ MBOX_DRAFTS, { "Drafts", 0 } },
	{ MBOX_TRASH, { "Trash", "Deleted Messages", "Deleted Items", 0 } },
	{ MBOX_JUNK, { "Junk", "Junk E-mail", "Spam", 0 } },
	{ MBOX_ARCHIVE, { "Archive", "Archives", 0 } },
};
#define SPECIAL_ATTRS (MBOX_SENT | MBOX_DRAFTS | MBOX_TRASH | MBOX_JUNK | MBOX_ARCHIVE)
#define NAME_MAX_LEN 240	/* ".Name" and a Dovecot temporary suffix fit in NAME_MAX */

int mbox_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > NAME_MAX_LEN || name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		/* LIST's wildcards in a name would make it unlistable on its own. */
		if (c < 0x20 || c > 0x7e || c == '/' || c == '*' || c == '%')
			return 0;
	}
	/* Modified UTF-7 that decodes: whole UTF-16 in each run, nothing in BASE64 that could
	   have been written as itself. */
	char utf8[4 * NAME_MAX_LEN + 1];
	return mutf7_to_utf8(name, utf8, sizeof utf8);
}

static int is_inbox(const char *name)
{
	return !strcasecmp(name, "INBOX");
}

int mbox_folder_dir(const char *root, const char *name, char *out, size_t size)
{
	int r;

	if (is_inbox(name))
		r = snprintf(out, size, "%s", root);
	else if (!mbox_name_valid(name))
		return errno = EINVAL, 0;
	else if (!strncasecmp(name, "INBOX.", 6))
		r = snprintf(out, size, "%s/.INBOX%s", root, name + 5);	/* INBOX's case is fixed */
	else
		r = snprintf(out, size, "%s/.%s", root, name);
	if (r < 0 || (size_t)r >= size)
		return errno = ENAMETOOLONG, 0;
	return 1;
}

int mbox_folder_exists(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof path, "%s/cur", dir) < (int)sizeof path &&
	       stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A name as the folders below know it: INBOX, and INBOX's children, with INBOX upper case. */
static void normalise(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s", name);
	if (is_inbox(out) || !strncasecmp(out, "INBOX.", 6))
		memcpy(out, "INBOX", 5);
}

/* ---- subscriptions ---- */

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct names){ 0 };
}

static int names_add(struct names *s, const char *name, size_t len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		char **v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return 0;
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strndup(name, len)))
		return 0;
	s->n++;
	return 1;
}

static int subs_path(const char *root, char *path, size_t size)
{
	if (snprintf(path, size, "%s/subscriptions", root) >= (int)size)
		return errno = ENAMETOOLONG, 0;
	return 1;
}

/* The subscribed names, in the file's order; a missing file is no subscriptions. Lines that
   are no valid name are dropped. */
static int subs_read(const char *root, struct names *s)
{
	char path[PATH_MAX];
	char *text;
	size_t len;

	if (!subs_path(root, path, sizeof path))
		return 0;
	if (!mbox_slurp(path, &text, &len, 0))
		return errno == ENOENT;
	char *p = text;
	/* Version 2 has a header ended by an empty line; version 1 is bare names. */
	if (!strncmp(p, "V\t", 2)) {
		char *blank = strstr(p, "\n\n");
		p = blank ? blank + 2 : text + len;
	}
	int ok = 1;
	for (char *nl; ok && *p; p = nl + (*nl != 0)) {
		nl = p + strcspn(p, "\n");
		for (char *c = p; c < nl; c++)
			if (*c == '\t')
				*c = '.';
		char c = *nl;
		*nl = 0;
		char norm[NAME_MAX_LEN + 8];
		normalise(p, norm, sizeof norm);
		if ((is_inbox(norm) || mbox_name_valid(norm)) && strlen(p) <= NAME_MAX_LEN) {
			int dup = 0;
			for (size_t i = 0; i < s->n && !dup; i++)
				dup = !strcmp(s->v[i], norm);
			if (!dup)
				ok = names_add(s, norm, strlen(norm));
		}
		*nl = c;
	}
	free(text);
	return ok;
}

int mbox_subscribe(const char *root, const char *name, int subscribe, char *why,
		   size_t whysize)
{
	char path[PATH_MAX], norm[NAME_MAX_LEN + 8];

	if (!is_inbox(name) && !mbox_name_valid(name))
		return mbox_fail(why, whysize, EINVAL, "not a valid folder name");
	normalise(name, norm, sizeof norm);
	if (!subs_path(root, path, sizeof path))
		return mbox_fail(why, whysize, errno, "subscriptions");
	int fd = dotlock_take(path);
	if (fd < 0)
		return mbox_fail(why, whysize, errno, "unable to lock %s", path);
	struct names s = { 0 };
	if (!subs_read(root, &s)) {
		int e = errno;
		dotlock_release(fd, path);
		names_free(&s);
		return mbox_fail(why, whysize, e, "unable to read %s", path);
	}
	size_t at = (size_t)-1;	/* where name is in the file, if it is */
	for (size_t i = 0; i < s.n; i++)
		if (!strcmp(s.v[i], norm))
			at = i;
	if ((at != (size_t)-1) == !!subscribe) {
		dotlock_release(fd, path);
		names_free(&s);
		return 1;
	}
	struct sa text = SA_ZERO;
	int ok = sa_cats(&text, "V\t2\n\n");
	for (size_t i = 0; ok && i <= s.n; i++) {
		const char *n = i < s.n ? s.v[i] : subscribe ? norm : 0;
		if (!n || i == at)
			continue;
		size_t start = text.len;
		ok = sa_cats(&text, n) && sa_catc(&text, '\n');
		for (size_t j = start; ok && j < text.len; j++)
			if (text.s[j] == '.')
				text.s[j] = '\t';
	}
	names_free(&s);
	if (!ok) {
		dotlock_release(fd, path);
		sa_free(&text);
		return mbox_fail(why, whysize, ENOMEM, "subscriptions");
	}
	ok = dotlock_replace(fd, path, text.s, text.len);
	sa_free(&text);
	return ok ? 1 : mbox_fail(why, whysize, errno, "unable to write %s", path);
}

/* ---- LIST ---- */

struct entry {
	char *name;
	unsigned attrs;
	int exists;
};

struct listing {
	struct entry *e;
	size_t n, cap;
	struct mbox_map map;
};

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	mbox_map_free(&l->map);
}

/* The entry of name, made when missing; its index, or (size_t)-1 (ENOMEM). */
static size_t listing_get(struct listing *l, const char *name, size_t len)
{
	size_t k;

	if (mbox_map_get(&l->map, name, len, &k))
		return k;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct entry *e = realloc(l->e, cap * sizeof *e);
		if (!e)
			return (size_t)-1;
		l->e = e;
		l->cap = cap;
	}
	char *copy = strndup(name, len);
	if (!copy || !mbox_map_put(&l->map, copy, len, l->n)) {
		free(copy);
		return (size_t)-1;
	}
	l->e[l->n] = (struct entry){ copy, 0, 0 };
	return l->n++;
}

/* The folders of root into l; every parent of one is an entry with children. */
static int listing_build(const char *root, struct listing *l)
{
	DIR *d = opendir(root);

	if (!d)
		return 0;
	size_t inbox = listing_get(l, "INBOX", 5);
	if (inbox == (size_t)-1) {
		closedir(d);
		return errno = ENOMEM, 0;
	}
	l->e[inbox].exists = 1;
	struct dirent *de;
	int ok = 1;
	while (ok && (de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] != '.' || !mbox_name_valid(n + 1))
			continue;
		if (de->d_type != DT_DIR) {
			struct stat st;
			if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
				continue;
			if (fstatat(dirfd(d), n, &st, 0) < 0 || !S_ISDIR(st.st_mode))
				continue;
		}
		size_t k = listing_get(l, n + 1, strlen(n + 1));
		if (k == (size_t)-1) {
			ok = 0;
			break;
		}
		l->e[k].exists = 1;
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s/%s", root, n) >= (int)sizeof path ||
		    !mbox_folder_exists(path))
			l->e[k].attrs |= MBOX_NOSELECT;
		/* Each parent has children, whether or not it is a folder itself. */
		for (const char *dot = strchr(n + 1, '.'); ok && dot; dot = strchr(dot + 1, '.')) {
			size_t p = listing_get(l, n + 1, (size_t)(dot - (n + 1)));
			if (p == (size_t)-1)
				ok = 0;
			else
				l->e[p].attrs |= MBOX_HASCHILDREN;
		}
	}
	closedir(d);
	if (!ok)
		return errno = ENOMEM, 0;
	for (size_t i = 0; i < l->n; i++) {
		struct entry *e = &l->e[i];
		if (!e->exists)
			e->attrs |= MBOX_NONEXISTENT | MBOX_NOSELECT;
		if (!(e->attrs & MBOX_HASCHILDREN))
			e->attrs |= MBOX_HASNOCHILDREN;
	}
	for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
		for (const char *const *n = specials[s].names; *n; n++) {
			size_t k;
			if (mbox_map_get(&l->map, *n, strlen(*n), &k) && l->e[k].exists) {
				l->e[k].attrs |= specials[s].attr;
				break;
			}
		}
	}
	return 1;
}

int mbox_list(const char *root, int (*each)(void *ctx, const char *name, unsigned attrs),
	      void *ctx, char *why, size_t whysize)
{
	struct listing l = { 0 };
	struct names subs = { 0 };

	if (!listing_build(root, &l) || !subs_read(root, &subs)) {
		int e = errno;
		listing_free(&l);
		names_free(&subs);
		return mbox_fail(why, whysize, e, "unable to list %s", root);
	}
	for (size_t i = 0; i < subs.n; i++) {
		size_t k = listing_get(&l, subs.v[i], strlen(subs.v[i]));
		if (k == (size_t)-1)
			continue;
		if (!l.e[k].exists && !(l.e[k].attrs & MBOX_NONEXISTENT))
			l.e[k].attrs |= MBOX_NONEXISTENT | MBOX_NOSELECT;
		l.e[k].attrs |= MBOX_SUBSCRIBED;
	}
	names_free(&subs);
	for (size_t i = 0; i < l.n; i++)
		if (!each(ctx, l.e[i].name, l.e[i].attrs))
			break;
	listing_free(&l);
	return 1;
}

/* ---- CREATE, DELETE, RENAME ---- */

/* A scratch name in root/tmp, where Dovecot never looks for folders. */
static int scratch(const char *root, const char *what, char *out, size_t size)
{
	static unsigned long counter;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (snprintf(out, size, "%s/tmp/postroom-%s.%lld.%ldP%ldQ%lu", root, what,
		     (long long)ts.tv_sec, ts.tv_nsec, (long)getpid(), ++counter) >= (int)size)
		return errno = ENAMETOOLONG, 0;
	return 1;
}

/* Removes a folder directory's files and its cur/ new/ tmp/ (and what is in those). */
static void remove_tree(const char *path, int depth)
{
	DIR *d = opendir(path);

	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0 || depth >= 3)
				continue;
			if (errno == EISDIR || errno == EPERM) {
				char sub[PATH_MAX];
				if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) < (int)sizeof sub)
					remove_tree(sub, depth + 1);
			}
		}
		closedir(d);
	}
	rmdir(path);
}

/* Sum of the ",S=" sizes (or the files' sizes) and count of a folder's messages. */
static void folder_usage(const char *dir, unsigned long long *bytes, unsigned long long *count)
{
	static const char *const sub[] = { "cur", "new" };
	char path[PATH_MAX];

	for (int i = 0; i < 2; i++) {
		if (snprintf(path, sizeof path, "%s/%s", dir, sub[i]) >= (int)sizeof path)
			continue;
		DIR *d = opendir(path);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			const char *s = strstr(de->d_name, ",S=");
			struct stat st;
			if (s && s < de->d_name + mbox_base_len(de->d_name))
				*bytes += strtoull(s + 3, 0, 10);
			else if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
				*bytes += (unsigned long long)st.st_size;
			(*count)++;
		}
		closedir(d);
	}
}

int mbox_create(const char *root, const char *name, char *why, size_t whysize)
{
	char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX], trimmed[NAME_MAX_LEN + 8];
	size_t n = strlen(name);

	/* "A." asks for a name that will hold children: in Maildir++ that is just "A". */
	if (n && n < sizeof trimmed && name[n - 1] == '.')
		n--;
	if (n >= sizeof trimmed)
		return mbox_fail(why, whysize, EINVAL, "folder name too long");
	memcpy(trimmed, name, n);
	trimmed[n] = 0;
	if (is_inbox(trimmed))
		return mbox_fail(why, whysize, EEXIST, "INBOX exists");
	if (!mbox_folder_dir(root, trimmed, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	struct stat st;
	if (stat(dir, &st) == 0)
		return mbox_fail(why, whysize, EEXIST, "folder %s exists", trimmed);
	if (!maildir_make(root))
		return mbox_fail(why, whysize, errno, "unable to make %s", root);
	/* Made whole in tmp/, then renamed into place: never half a folder, for anyone. */
	if (!scratch(root, "create", tmp, sizeof tmp) || mkdir(tmp, 0700) < 0)
		return mbox_fail(why, whysize, errno, "unable to create a folder in %s/tmp", root);
	int ok = 1;
	static const char *const sub[] = { "cur", "new", "tmp" };
	for (int i = 0; ok && i < 3; i++)
		ok = snprintf(path, sizeof path, "%s/%s", tmp, sub[i]) < (int)sizeof path &&
		     mkdir(path, 0700) == 0;
	if (ok && snprintf(path, sizeof path, "%s/maildirfolder", tmp) < (int)sizeof path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		ok = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	struct uidlist u = UIDLIST_ZERO;
	if (ok)
		ok = uidlist_create(root, tmp, &u);
	uidlist_free(&u);
	if (ok && (!sync_dir_at(AT_FDCWD, tmp) || rename(tmp, dir) < 0))
		ok = 0;
	int e = errno;
	if (!ok) {
		remove_tree(tmp, 1);
		if (e == ENOTEMPTY)
			e = EEXIST;
		return mbox_fail(why, whysize, e, "unable to create folder %s", trimmed);
	}
	if (!sync_dir_at(AT_FDCWD, root))
		return mbox_fail(why, whysize, errno, "unable to sync %s", root);
	return 1;
}

int mbox_delete(const char *root, const char *name, char *why, size_t whysize)
{
	char dir[PATH_MAX], tmp[PATH_MAX];

	if (is_inbox(name))
		return mbox_fail(why, whysize, EPERM, "INBOX cannot be deleted");
	if (!mbox_folder_dir(root, name, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return mbox_fail(why, whysize, ENOENT, "no folder %s", name);
	/* Out of sight in one rename, then removed at leisure: a crash leaves it in tmp/. */
	if (!maildir_make(root) || !scratch(root, "delete", tmp, sizeof tmp) || rename(dir, tmp) < 0)
		return mbox_fail(why, whysize, errno, "unable to delete %s", name);
	sync_dir_at(AT_FDCWD, root);
	unsigned long long bytes = 0, count = 0;
	folder_usage(tmp, &bytes, &count);
	if (count)
		mbox_quota_sub(root, bytes, count);
	remove_tree(tmp, 1);
	return 1;
}

/* The folder directory names (without the dot) that are from or its children. */
static int family(const char *root, const char *from, struct names *out)
{
	size_t n = strlen(from);
	DIR *d = opendir(root);

	if (!d)
		return 0;
	struct dirent *de;
	int ok = 1;
	while (ok && (de = readdir(d))) {
		const char *f = de->d_name;
		if (f[0] == '.' && !strncmp(f + 1, from, n) && (f[1 + n] == 0 || f[1 + n] == '.'))
			ok = names_add(out, f + 1, strlen(f + 1));
	}
	closedir(d);
	return ok;
}

/* RENAME INBOX: a new folder to, and every message of INBOX moved into it under its own
   name (RFC 3501 section 6.3.5). Its keywords file goes along so that the letters keep their
   meaning; the new folder numbers the messages afresh, as a new folder does. */
static int rename_inbox(const char *root, const char *to, char *why, size_t whysize)
{
	char dir[PATH_MAX - 64], from[PATH_MAX], dest[PATH_MAX];

	if (!mbox_create(root, to, why, whysize))
		return 0;
	if (!mbox_folder_dir(root, to, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	char *text;
	size_t len;
	snprintf(from, sizeof from, "%s/" MBOX_KEYWORDS, root);
	if (mbox_slurp(from, &text, &len, 0)) {
		if (snprintf(dest, sizeof dest, "%s/" MBOX_KEYWORDS, dir) < (int)sizeof dest) {
			int fd = dotlock_take(dest);
			if (fd >= 0)
				dotlock_replace(fd, dest, text, len);
		}
		free(text);
	}
	static const char *const sub[] = { "new", "cur" };
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof from, "%s/%s", root, sub[i]);
		DIR *d = opendir(from);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char a[PATH_MAX], b[PATH_MAX];
			if (snprintf(a, sizeof a, "%s/%s", from, de->d_name) >= (int)sizeof a ||
			    snprintf(b, sizeof b, "%s/%s/%s", dir, sub[i], de->d_name) >= (int)sizeof b)
				continue;
			if (rename(a, b) < 0 && errno != ENOENT) {
				int e = errno;
				closedir(d);
				return mbox_fail(why, whysize, e, "unable to move %s", a);
			}
		}
		closedir(d);
		snprintf(dest, sizeof dest, "%s/%s", dir, sub[i]);
		if (!sync_dir_at(AT_FDCWD, dest) || !sync_dir_at(AT_FDCWD, from))
			return mbox_fail(why, whysize, errno, "unable to sync %s", dest);
	}
	return 1;
}

int mbox_rename(const char *root, const char *from, const char *to, char *why,
		size_t whysize)
{
	char a[PATH_MAX], b[PATH_MAX], nfrom[NAME_MAX_LEN + 8], nto[NAME_MAX_LEN + 8];

	if (!is_inbox(from) && !mbox_name_valid(from))
		return mbox_fail(why, whysize, EINVAL, "not a valid folder name: %s", from);
	if (!mbox_name_valid(to))
		return mbox_fail(why, whysize, is_inbox(to) ? EEXIST : EINVAL,
				 "not a valid new name: %s", to);
	normalise(from, nfrom, sizeof nfrom);
	normalise(to, nto, sizeof nto);
	if (!mbox_folder_dir(root, nto, b, sizeof b))
		return mbox_fail(why, whysize, errno, "not a valid new name: %s", to);
	struct stat st;
	if (stat(b, &st) == 0)
		return mbox_fail(why, whysize, EEXIST, "folder %s exists", to);
	if (is_inbox(nfrom))
		return rename_inbox(root, nto, why, whysize);
	size_t fl = strlen(nfrom);
	if (!strncmp(nto, nfrom, fl) && (nto[fl] == '.' || nto[fl] == 0))
		return mbox_fail(why, whysize, EINVAL, "a folder cannot move into itself");
	struct names fam = { 0 };
	if (!family(root, nfrom, &fam)) {
		names_free(&fam);
		return mbox_fail(why, whysize, errno, "unable to read %s", root);
	}
	if (!fam.n) {
		names_free(&fam);
		return mbox_fail(why, whysize, ENOENT, "no folder %s", from);
	}
	/* Every new name free before anything moves, so that a clash moves nothing. */
	for (size_t i = 0; i < fam.n; i++) {
		if (snprintf(b, sizeof b, "%s/.%s%s", root, nto, fam.v[i] + fl) >= (int)sizeof b ||
		    strlen(nto) + strlen(fam.v[i] + fl) > NAME_MAX_LEN) {
			names_free(&fam);
			return mbox_fail(why, whysize, ENAMETOOLONG, "new name too long");
		}
		if (lstat(b, &st) == 0) {
			names_free(&fam);
			return mbox_fail(why, whysize, EEXIST, "folder %s%s exists", nto,
					 fam.v[i] + fl);
		}
	}
	int ok = 1;
	int e = 0;
	for (size_t i = 0; ok && i < fam.n; i++) {
		snprintf(a, sizeof a, "%s/.%s", root, fam.v[i]);
		snprintf(b, sizeof b, "%s/.%s%s", root, nto, fam.v[i] + fl);
		if (rename(a, b) < 0 && errno != ENOENT) {
			ok = 0;
			e = errno;
		}
	}
	names_free(&fam);
	if (!ok)
		return mbox_fail(why, whysize, e, "unable to rename %s", from);
	if (!sync_dir_at(AT_FDCWD, root))
		return mbox_fail(why, whysize, errno, "unable to sync %s", root);
	return 1;
}

/* ---- special use ---- */

static int note_special(void *ctx, const char *name, unsigned attrs)
{
	(void)name;
	if (!(attrs & MBOX_NONEXISTENT))
		*(unsigned *)ctx |= attrs & SPECIAL_ATTRS;
	return 1;
}

int mbox_ensure_special(const char *root, char *why, size_t whysize)
{
	unsigned have = 0;

	if (!mbox_list(root, note_special, &have, why, whysize))
		return 0;
	/* Only a Maildir with no special folder at all gets ours: one where the user deleted
	   Archive, or that came with "Sent Messages", is left as it is. */
	if (have)
		return 1;
	for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
		const char *n = specials[s].names[0];
		if (!mbox_create(root, n, why, whysize) && errno != EEXIST)
			return 0;
		if (!mbox_subscribe(root, n, 1, why, whysize))
			return 0;
	}
	return 1;
}
