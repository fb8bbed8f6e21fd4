/* postroom: ISC license, see LICENSE. */
/*
 * IMAP4rev2 (RFC 9051) beside IMAP4rev1. Both are advertised, so replies stay RFC 3501's until
 * the client sends ENABLE IMAP4rev2 (RFC 9051 section 7.2.2 and appendix A); from then on the
 * session follows rev2, s->rev2 telling each command. The changes of appendix E, one by one,
 * and what imap-serve does about each once rev2 is on ("both": the same with or without it):
 *
 *  1 63-bit sizes                  both: sizes are unsigned long long already
 *  2 NAMESPACE, UNSELECT, UIDPLUS, both: they were extensions we offer (and keep advertising,
 *    ESEARCH, SEARCHRES, ENABLE,   as appendices B and C ask for BINARY's APPEND and
 *    IDLE, SASL-IR, LIST-EXTENDED, LIST-EXTENDED's many patterns)
 *    LIST-STATUS, MOVE, LITERAL-,
 *    RFC 5530 codes, FETCH BINARY,
 *    SPECIAL-USE attributes
 *  3 STATUS SIZE and DELETED       DELETED (the \Deleted messages) is a STATUS item, in LIST
 *                                  RETURN (STATUS ...) too; SIZE was there
 *  4 SEARCH answers ESEARCH        SEARCH without RETURN answers as RETURN (ALL) would: one
 *                                  "* ESEARCH (TAG ...) [UID] [ALL set]", never "* SEARCH"
 *  5 substring matches             both: every string key matches substrings already
 *  6 RFC 2231 continuations        both: lib/mime decodes them already
 *  7 COPYUID for MOVE              both: sent in an untagged OK before the EXPUNGEs
 *  8 no COPY/MOVE creating folders both: NO [TRYCREATE]
 *  9 [CLOSED] on SELECT/EXAMINE    both: sent since CONDSTORE
 * 10 SELECT/EXAMINE send LIST      "* LIST (attributes) "." name" of the folder, as LIST gives
 * 11 no [UNSEEN n] on SELECT       not sent
 * 12 no \Recent, RECENT           no "* n RECENT" (SELECT, NOOP, IDLE, any command), no \Recent
 *                                  in FLAGS; STATUS RECENT and the search keys RECENT, NEW and
 *                                  OLD are not in rev2's grammar: BAD
 * 13 no new PERMANENTFLAGS         both: sent only when a new keyword comes (as Dovecot does)
 * 14 tagged-ext-simple number64    nothing to do: no command of ours takes one
 * 15 $MDNSent $Forwarded $Junk     both: any keyword can be stored (up to the folder's limit)
 *    $NotJunk $Phishing
 * 16 UTF-8 folder names, headers   not here: folder names stay modified UTF-7 on the wire, as
 *                                  before; UTF-8 names are UTF8=ACCEPT's (RFC 6855) work
 * 17 CHECK removed                 still answered (as NOOP is): IMAP4rev1 has it
 * 18 RFC822, RFC822.HEADER and     not in rev2's fetch-att: BAD (RFC822.SIZE stays)
 *    RFC822.TEXT removed
 * 19 LSUB removed                  still answered, as a server of both may (a rev2 client does
 *                                  not send it)
 * 20 IDLE may tell of other        nothing more is told: it MAY, no more
 *    folders
 * 21 unsolicited FETCH with UID    both for changes of others (out_flags); with rev2 also the
 *                                  FLAGS a FETCH adds when it sets \Seen
 * 22 unknown codes ignored         client side
 * 23 empty resp-text               nothing to do: our texts are never empty
 * 24 UTF-8 in human-readable text  nothing to do: our texts are ASCII
 * 25 TLS recommendations           tls-server's (postroom's TLS), not imap-serve's
 * 26 ALERT and PREAUTH warnings    both: no ALERT; PREAUTH only for "imap-serve -A"
 * 27 SCRAM-SHA-256                 not offered: checkpassword(8) gets the password, so only
 *                                  LOGIN and AUTHENTICATE PLAIN
 * 28 any command resets the timer  both: every command has its own deadline
 * 29 IANA, no "X" convention       nothing to do
 * 30 closing connections          both
 *
 * Also: LIST "" "" is the separator and root only in LIST's basic form (section 6.3.9); in
 * the extended form an empty pattern matches nothing. A parent that is no folder ("A" of
 * "A.B") is "\NonExistent \HasChildren" (section 6.3.9.6) where RFC 3501 had "\Noselect".
 * The only name we make another is INBOX in another case ("inbox"): SELECT and EXAMINE tell
 * it with OLDNAME (section 6.3.2); CREATE, DELETE and RENAME, whose LIST is optional, send
 * none (sections 6.3.4 to 6.3.6). UNAUTHENTICATE
 * and [UIDREQUIRED] are not rev2's.
 */
#include <string.h>

#include "imap-serve.h"
#include "log.h"

struct find {
	const char *name;
	unsigned attrs;
	int found;
};

static int find_folder(void *ctx, const char *name, unsigned attrs)
{
	struct find *f = ctx;
	if (strcmp(name, f->name))
		return 1;
	f->attrs = attrs;
	f->found = 1;
	return 0;
}

void rev2_select_list(struct session *s)
{
	struct find f = { s->box.name, 0, 0 };
	char why[256];

	if (!mbox_list(s->root, find_folder, &f, why, sizeof why) && !f.found)
		log_line("%s: unable to list %s: %s", s->user, s->box.name, why);
	/* Only what a plain LIST would say: the selected folder exists, whatever a
	   subscription says of it. */
	f.attrs &= ~(MBOX_NONEXISTENT | MBOX_NOSELECT | MBOX_SUBSCRIBED);
	out(&s->c, "* LIST ");
	out_list_attrs(s, f.attrs, 0, 1);
	out(&s->c, " \".\" ");
	out_string(&s->c, s->box.name, strlen(s->box.name));
	/* The name as the client wrote it, when we made it another ("inbox" is INBOX): OLDNAME
	   tells it which (RFC 9051 6.3.2, and its section 8's "select inbox"). */
	char given[FOLDER_NAME_MAX];
	if (imap_tok_cstr(&s->c.cmd, 2, given, sizeof given) && strcmp(given, s->box.name)) {
		out(&s->c, " (\"OLDNAME\" (");
		out_string(&s->c, given, strlen(given));
		out(&s->c, "))");
	}
	out(&s->c, "\r\n");
}
