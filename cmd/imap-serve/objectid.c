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
 * THREADID is NIL, as RFC 8474 section 5.2 allows for a server that keeps no threads: an id
 * must stay the same for every message of a thread for ever, and one made from the headers of
 * the messages a folder holds now changes when an older message of the thread arrives or
 * goes, or splits a thread whose replies name their parents differently. SEARCH THREADID
 * matches no message.
 */
#include <stdint.h>
#include <string.h>

#include "imap-serve.h"
#include "log.h"

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

/* "M" and the 128-bit FNV-1a of s in hex: stable, and unique enough among one user's
   messages (the names hashed are the server's own, never a client's). */
static int hashed_id(const char *s, size_t n, struct sa *out)
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
	return sa_catc(out, 'M') && sa_cats(out, text);
}

int emailid_get(struct session *s, size_t idx, struct sa *out)
{
	struct sa guid = SA_ZERO;
	int ok = mbox_message_guid(&s->box, idx, &guid);

	if (ok)
		ok = objectid_valid(guid.s, guid.len) ? sa_catb(out, guid.s, guid.len) :
							hashed_id(guid.s, guid.len, out);
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

void out_threadid(struct session *s)
{
	out(&s->c, "THREADID NIL");
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
