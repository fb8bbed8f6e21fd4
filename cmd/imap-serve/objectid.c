/* postroom: ISC license, see LICENSE. */
/*
 * OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID.
 *
 * The ids are Dovecot's GUIDs of the same Maildir (lib/mailbox_guid.c), so that they survive
 * restarts, RENAME (the uidlist moves with the folder), COPY and MOVE (the copy's uidlist line
 * keeps the GUID), and a move of the mailbox to or from Dovecot. A folder's GUID is 32 hex
 * digits, an objectid as it is. A message's GUID is usually its file's base name, which has
 * dots and so is not an objectid (1*255 ALPHA / DIGIT / "_" / "-"): the EMAILID is then "M"
 * and 32 hex digits of a 128-bit FNV-1a hash of it. A GUID that is already an objectid (the 32
 * hex digits that dsync writes) is the EMAILID as it is.
 *
 * THREADID must never change for a message, so it is made from the message's own header, not
 * from the folder's threads (which change as messages of a thread come and go): "T" and the
 * hash of the thread's root as the message names it, the first msg-id of its References
 * (which RFC 5322 lists from the root), else its In-Reply-To's, else its own Message-ID; NIL
 * without any. Messages that name their root agree on it; a reply that names only its parent
 * (In-Reply-To without References) gets the parent's thread when the parent is the root, its
 * own small thread otherwise.
 */
#include <stdint.h>
#include <string.h>

#include "imap-serve.h"
#include "log.h"
#include "sort.h"

int objectid_valid(const char *s, size_t n)
{
	if (!n || n > OBJECTID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* prefix and the 128-bit FNV-1a of s in hex: stable, and unique enough among one user's
   messages. */
static int hashed_id(char prefix, const char *s, size_t n, struct sa *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned __int128 prime = ((unsigned __int128)1 << 88) + 0x13b;
	unsigned __int128 h = ((unsigned __int128)0x6c62272e07bb0142ull << 64) | 0x62b821756295c58dull;
	char text[33];

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * prime;
	for (int i = 31; i >= 0; i--, h >>= 4)
		text[i] = hex[(unsigned)(h & 15)];
	text[32] = 0;
	return sa_catc(out, prefix) && sa_cats(out, text);
}

int emailid_get(struct session *s, size_t idx, struct sa *out)
{
	struct sa guid = SA_ZERO;
	int ok = mbox_message_guid(&s->box, idx, &guid);

	if (ok)
		ok = objectid_valid(guid.s, guid.len) ? sa_catb(out, guid.s, guid.len) :
							hashed_id('M', guid.s, guid.len, out);
	sa_free(&guid);
	return ok;
}

int out_emailid(struct session *s, size_t idx)
{
	struct sa id = SA_ZERO;
	int ok = emailid_get(s, idx, &id);

	if (ok) {
		out(&s->c, "EMAILID (");
		out_bytes(&s->c, id.s, id.len);
		out(&s->c, ")");
	}
	sa_free(&id);
	return ok;
}

int threadid_get(struct session *s, size_t idx, struct sa *out)
{
	struct sort_keys k;

	sort_keys_get(s, idx, &k);
	const char *root = k.refs[0] ? k.refs : k.msgid;
	size_t n = strcspn(root, " ");
	int ok = !n || hashed_id('T', root, n, out);
	sort_keys_free(&k);
	return ok;
}

int out_threadid(struct session *s, size_t idx)
{
	struct sa id = SA_ZERO;
	int ok = threadid_get(s, idx, &id);

	if (ok && id.len) {
		out(&s->c, "THREADID (");
		out_bytes(&s->c, id.s, id.len);
		out(&s->c, ")");
	} else if (ok) {
		out(&s->c, "THREADID NIL");
	}
	sa_free(&id);
	return ok;
}

int mailboxid_get(struct session *s, const char *name, char id[33])
{
	char why[256];

	if (mbox_guid(s->root, name, id, why, sizeof why))
		return 1;
	log_line("%s: no MAILBOXID for %s: %s", s->user, name, why);
	return 0;
}

void out_mailboxid_selected(struct session *s)
{
	char id[33];

	if (mailboxid_get(s, s->box.name, id))
		out(&s->c, "* OK [MAILBOXID (%s)] Ok\r\n", id);
}
