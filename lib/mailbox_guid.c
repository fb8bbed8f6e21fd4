/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "mailbox-internal.h"

/*
 * The GUIDs Dovecot keeps for a Maildir, which OBJECTID (RFC 8474) shows: a folder's is the
 * "G" field of its dovecot-uidlist header (Dovecot's mailbox GUID), made when the folder is
 * made, and moving with the directory on RENAME; a message's is the "G" field of its uidlist
 * line when there is one (Dovecot's COPY writes it, since the copy's file has a new name),
 * else the file's base name, which is what doveadm fetch guid shows.
 */

int mbox_guid(const char *root, const char *name, char guid[33], char *why, size_t whysize)
{
	char dir[PATH_MAX];
	struct uidlist u = UIDLIST_ZERO;

	if (!mbox_folder_dir(root, name, dir, sizeof dir))
		return mbox_fail(why, whysize, errno, "not a valid folder name");
	if (!mbox_folder_exists(dir))
		return mbox_fail(why, whysize, ENOENT, "no folder %s", name);
	int ok = uidlist_read(dir, &u);
	/* None yet (an old list, or none at all): one is written, under the lock, as the first
	   numbering of the folder would write it. */
	if (ok && !u.guid[0])
		ok = uidlist_assign(root, dir, &u, 0, 0, 0, 0);
	if (ok)
		memcpy(guid, u.guid, 33);
	int e = errno;
	uidlist_free(&u);
	if (!ok)
		return mbox_fail(why, whysize, e, "unable to read the uidlist of %s", name);
	if (!guid[0])
		return mbox_fail(why, whysize, EIO, "no GUID in the uidlist of %s", name);
	return 1;
}

/* The "G" field among a uidlist line's fields ("W123 Gxyz"): 1 with it in out. */
static int ext_guid(const char *ext, struct sa *out)
{
	for (const char *f = ext; *f; ) {
		size_t n = strcspn(f, " ");
		if (f[0] == 'G' && n > 1)
			return sa_catb(out, f + 1, n - 1) ? 1 : -1;
		f += n;
		while (*f == ' ')
			f++;
	}
	return 0;
}

int mbox_message_guid(struct mbox *m, size_t idx, struct sa *out)
{
	if (idx >= m->count)
		return 0;
	const char *base = m->msg[idx].file + 4;	/* past "cur/" or "new/" */
	size_t blen = mbox_base_len(base), k;
	struct uidlist *u = mbox_view_uidlist(m);
	/* After mbox_rest the list is read again, as the next scan would read it. */
	if (u && !u->n && u->size == -1)
		uidlist_read(m->dir, u);
	if (u && mbox_map_get(&u->map, base, blen, &k)) {
		int r = ext_guid(u->rec[k].ext, out);
		if (r)
			return r > 0;
	}
	return sa_catb(out, base, blen);
}
