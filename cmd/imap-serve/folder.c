/* postroom: ISC license, see LICENSE. */
/*
 * Commands on folders: SELECT and EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST (with
 * LIST-EXTENDED, LIST-STATUS and SPECIAL-USE) and LSUB, STATUS, NAMESPACE and the quota
 * (APPEND: append.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap-serve.h"
#include "log.h"
#include "maildir.h"

int arg_folder(struct session *s, size_t i, char *out, size_t size)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	if (i >= cmd->ntok || cmd->tok[i].type == IMAP_LPAREN || cmd->tok[i].type == IMAP_RPAREN ||
	    !imap_tok_cstr(cmd, i, out, size) || !folder_from_wire(s, out, size))
		return 0;
	if (!strcasecmp(out, "INBOX"))
		memcpy(out, "INBOX", 6);
	return 1;
}

void cmd_select(struct session *s, int readonly)
{
	char name[FOLDER_NAME_MAX], why[256];
	const char *tag = conn_tag(&s->c);

	struct select_params p = { 0 };	/* freed below even when the name is not valid */
	if (s->c.cmd.ntok < 3 || !arg_folder(s, 2, name, sizeof name) ||
	    !select_params_parse(s, 3, &p)) {
		select_params_free(&p);
		if (p.uidrequired)
			bad(&s->c, s->cf, "[UIDREQUIRED] Message numbers are not used with UIDONLY");
		else
			bad(&s->c, s->cf, "%s needs a folder name", readonly ? "EXAMINE" : "SELECT");
		return;
	}
	if (p.qresync && !s->qresync) {
		select_params_free(&p);
		bad(&s->c, s->cf, "QRESYNC is not enabled");
		return;
	}
	if (!mbox_open(&s->box, s->root, name, readonly, why, sizeof why)) {
		select_params_free(&p);
		answer_mbox_error(s, why);
		return;
	}
	s->selected = 1;
	if (p.condstore || s->condstore) {
		s->condstore = 1;	/* HIGHESTMODSEQ goes with the other replies below */
		if (!mbox_modseq_enable(&s->box, why, sizeof why))
			log_line("%s: unable to keep modseqs of %s: %s", s->user, name, why);
	}
	s->keywords_announced = 0;
	for (unsigned i = 0; i < MBOX_KEYWORDS_MAX; i++)
		if (s->box.keyword[i])
			s->keywords_announced |= 1u << i;
	out(&s->c, "* FLAGS ");
	out_folder_flags(s, 0);
	out(&s->c, "\r\n* OK [PERMANENTFLAGS ");
	if (s->box.readonly)
		out(&s->c, "()");
	else
		out_folder_flags(s, 1);
	out(&s->c, "] Flags permitted\r\n");
	size_t recent = 0, unseen = 0;
	for (size_t i = 0; i < s->box.count; i++) {
		if (s->box.msg[i].flags & MBOX_RECENT)
			recent++;
		if (!unseen && !(s->box.msg[i].flags & MBOX_SEEN))
			unseen = i + 1;
	}
	out(&s->c, "* %zu EXISTS\r\n", s->box.count);
	s->announced = s->box.count;
	s->recent_announced = recent;
	/* IMAP4rev2 has neither RECENT nor [UNSEEN n], and wants the folder's LIST instead. */
	if (s->rev2)
		rev2_select_list(s);
	else
		out(&s->c, "* %zu RECENT\r\n", recent);
	if (unseen && !s->rev2 && !s->uidonly)	/* a message number: none with UIDONLY */
		out(&s->c, "* OK [UNSEEN %zu] First unseen\r\n", unseen);
	out(&s->c, "* OK [UIDVALIDITY %u] UIDs valid\r\n* OK [UIDNEXT %u] Predicted next UID\r\n",
	    s->box.uidvalidity, s->box.uidnext);
	out_mailboxid_selected(s);
	if (s->condstore) {
		if (s->box.modseq)
			out_highestmodseq(s);
		else
			out(&s->c, "* OK [NOMODSEQ] No modseqs for this folder\r\n");
	}
	if (p.qresync && s->box.modseq)
		qresync_select(s, &p);
	select_params_free(&p);
	out(&s->c, "%s OK [%s] %s completed\r\n", tag, s->box.readonly ? "READ-ONLY" : "READ-WRITE",
	    readonly ? "Examine" : "Select");
}

void cmd_create(struct session *s)
{
	char name[FOLDER_NAME_MAX], why[256];

	if (s->c.cmd.ntok != 3 || !arg_folder(s, 2, name, sizeof name)) {
		bad(&s->c, s->cf, "CREATE needs a folder name");
		return;
	}
	/* A trailing separator only says the client means to make children (RFC 3501 6.3.3). */
	size_t n = strlen(name);
	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = 0;
	if (!strcmp(name, "INBOX")) {
		out(&s->c, "%s NO [ALREADYEXISTS] INBOX always exists\r\n", conn_tag(&s->c));
		return;
	}
	if (!mbox_name_valid(name) || !folder_name_chars_ok(name)) {
		out(&s->c, "%s NO [CANNOT] Not a valid folder name\r\n", conn_tag(&s->c));
		return;
	}
	if (!mbox_create(s->root, name, why, sizeof why)) {
		answer_mbox_error(s, why);
		return;
	}
	/* RFC 8474 section 4.1: the new folder's MAILBOXID with the OK */
	char id[33];
	if (mailboxid_get(s, name, id))
		out(&s->c, "%s OK [MAILBOXID (%s)] Create completed\r\n", conn_tag(&s->c), id);
	else
		out(&s->c, "%s OK Create completed\r\n", conn_tag(&s->c));
}

void cmd_delete(struct session *s)
{
	char name[FOLDER_NAME_MAX], why[256];

	if (s->c.cmd.ntok != 3 || !arg_folder(s, 2, name, sizeof name)) {
		bad(&s->c, s->cf, "DELETE needs a folder name");
		return;
	}
	if (!strcmp(name, "INBOX")) {
		out(&s->c, "%s NO [CANNOT] INBOX cannot be deleted\r\n", conn_tag(&s->c));
		return;
	}
	if (s->selected && !strcmp(s->box.name, name)) {
		/* Dovecot closes the folder first; its session is then in the authenticated state. */
		s->files_read += s->box.reads;
		mbox_close(&s->box);
		s->selected = 0;
		s->announced = s->recent_announced = 0;
	}
	if (!mbox_delete(s->root, name, why, sizeof why)) {
		answer_mbox_error(s, why);
		return;
	}
	out(&s->c, "%s OK Delete completed\r\n", conn_tag(&s->c));
}

void cmd_rename(struct session *s)
{
	char from[FOLDER_NAME_MAX], to[FOLDER_NAME_MAX], why[256];

	if (s->c.cmd.ntok != 4 || !arg_folder(s, 2, from, sizeof from) ||
	    !arg_folder(s, 3, to, sizeof to)) {
		bad(&s->c, s->cf, "RENAME needs two folder names");
		return;
	}
	if (!strcmp(to, "INBOX") || !mbox_name_valid(to) || !folder_name_chars_ok(to)) {
		out(&s->c, "%s NO [CANNOT] Not a valid folder name\r\n", conn_tag(&s->c));
		return;
	}
	if (!mbox_rename(s->root, from, to, why, sizeof why)) {
		answer_mbox_error(s, why);
		return;
	}
	out(&s->c, "%s OK Rename completed\r\n", conn_tag(&s->c));
}

void cmd_subscribe(struct session *s, int on)
{
	char name[FOLDER_NAME_MAX], why[256];

	if (s->c.cmd.ntok != 3 || !arg_folder(s, 2, name, sizeof name)) {
		bad(&s->c, s->cf, "%s needs a folder name", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	if (!mbox_subscribe(s->root, name, on, why, sizeof why)) {
		answer_mbox_error(s, why);
		return;
	}
	out(&s->c, "%s OK %s completed\r\n", conn_tag(&s->c), on ? "Subscribe" : "Unsubscribe");
}

/* LIST's folders, gathered before any is answered. */
struct folder {
	char *name;
	unsigned attrs;
};
struct folders {
	struct folder *f;
	size_t n, cap;
};

static int gather(void *ctx, const char *name, unsigned attrs)
{
	struct folders *fs = ctx;
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 32;
		struct folder *f = realloc(fs->f, cap * sizeof *f);
		if (!f)
			return 0;
		fs->f = f;
		fs->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return 0;
	fs->f[fs->n++] = (struct folder){ copy, attrs };
	return 1;
}

static int by_name(const void *a, const void *b)
{
	const struct folder *x = a, *y = b;
	int xi = !strcmp(x->name, "INBOX"), yi = !strcmp(y->name, "INBOX");
	if (xi != yi)
		return yi - xi;
	return strcmp(x->name, y->name);
}

/*
 * RFC 3501 section 6.3.8: '*' matches anything, '%' anything but the separator. One row of
 * "the pattern so far matches the name's first j bytes" per pattern byte, so that a pattern
 * of many wildcards costs its length times the name's, never a search of every split.
 */
static int matches(const char *pat, const char *name)
{
	size_t n = strlen(name);
	unsigned char row[FOLDER_NAME_MAX + 1], next[FOLDER_NAME_MAX + 1];

	if (n > FOLDER_NAME_MAX)
		return 0;
	memset(row, 0, n + 1);
	row[0] = 1;
	for (; *pat; pat++) {
		if (*pat == '*') {
			next[0] = row[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = next[j - 1] | row[j];
		} else if (*pat == '%') {
			next[0] = row[0];
			for (size_t j = 1; j <= n; j++)
				next[j] = row[j] | (next[j - 1] & (name[j - 1] != '.'));
		} else {
			next[0] = 0;
			for (size_t j = 1; j <= n; j++)
				next[j] = row[j - 1] & (name[j - 1] == *pat);
		}
		memcpy(row, next, n + 1);
	}
	return row[n];
}

/* The pattern with the reference before it; "INBOX" at its start matched in any case. */
static int pattern_matches(const char *ref, const char *pat, const char *name)
{
	char full[2 * FOLDER_NAME_MAX + 2];
	snprintf(full, sizeof full, "%s%s", ref, pat);
	if (!strncasecmp(full, "INBOX", 5) && (full[5] == 0 || full[5] == '.') &&
	    !strncmp(name, "INBOX", 5))
		memcpy(full, "INBOX", 5);
	return matches(full, name);
}

void out_list_attrs(struct session *s, unsigned a, int with_subscribed, int with_special)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ MBOX_NOSELECT, "\\Noselect" }, { MBOX_NONEXISTENT, "\\NonExistent" },
		{ MBOX_HASCHILDREN, "\\HasChildren" }, { MBOX_HASNOCHILDREN, "\\HasNoChildren" },
		{ MBOX_NOINFERIORS, "\\NoInferiors" }, { MBOX_SUBSCRIBED, "\\Subscribed" },
		{ MBOX_SENT, "\\Sent" }, { MBOX_DRAFTS, "\\Drafts" }, { MBOX_TRASH, "\\Trash" },
		{ MBOX_JUNK, "\\Junk" }, { MBOX_ARCHIVE, "\\Archive" },
	};
	int first = 1;
	out(&s->c, "(");
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (!(a & names[i].bit))
			continue;
		if (names[i].bit == MBOX_SUBSCRIBED && !with_subscribed)
			continue;
		if (names[i].bit >= MBOX_SENT && !with_special)
			continue;
		out(&s->c, first ? "%s" : " %s", names[i].name);
		first = 0;
	}
	out(&s->c, ")");
}

#define STATUS_MESSAGES 1
#define STATUS_RECENT 2
#define STATUS_UIDNEXT 4
#define STATUS_UIDVALIDITY 8
#define STATUS_UNSEEN 16
#define STATUS_SIZE 32
#define STATUS_HIGHESTMODSEQ 64
#define STATUS_DELETED 128	/* IMAP4rev2's */
#define STATUS_MAILBOXID 256

/* STATUS items from the list at token i; *end past it. 0 when the list is not valid. */
static int status_items(struct session *s, size_t i, unsigned *items, size_t *end)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = { { "MESSAGES", STATUS_MESSAGES }, { "RECENT", STATUS_RECENT },
		      { "UIDNEXT", STATUS_UIDNEXT }, { "UIDVALIDITY", STATUS_UIDVALIDITY },
		      { "UNSEEN", STATUS_UNSEEN }, { "SIZE", STATUS_SIZE },
		      { "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ }, { "DELETED", STATUS_DELETED },
		      { "MAILBOXID", STATUS_MAILBOXID } };

	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_LPAREN)
		return 0;
	*items = 0;
	for (i++; i < cmd->ntok && cmd->tok[i].type == IMAP_ATOM; i++) {
		size_t k = 0;
		while (k < sizeof names / sizeof *names && !imap_tok_is(cmd, i, names[k].name))
			k++;
		if (k == sizeof names / sizeof *names)
			return 0;
		/* DELETED is rev2's item, RECENT rev1's only. */
		if (names[k].bit == (s->rev2 ? STATUS_RECENT : STATUS_DELETED))
			return 0;
		*items |= names[k].bit;
	}
	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_RPAREN || !*items)
		return 0;
	*end = i + 1;
	return 1;
}

/* "* STATUS name (...)"; 0 (with why) when the folder cannot be read. */
static int out_status(struct session *s, const char *name, unsigned items, char *why,
		      size_t whysize)
{
	struct mbox_status st;
	uint64_t highestmodseq = 0;
	if (!mbox_status(s->root, name, &st, why, whysize))
		return 0;
	if (items & STATUS_HIGHESTMODSEQ) {
		/* Asking for it turns CONDSTORE on (RFC 7162 section 3.1). */
		condstore_on(s);
		if (s->selected && !strcmp(s->box.name, name))
			highestmodseq = s->box.highestmodseq;
		else if (!mbox_status_modseq(s->root, name, &highestmodseq, why, whysize))
			return 0;
	}
	char id[33];
	if ((items & STATUS_MAILBOXID) && !mbox_guid(s->root, name, id, why, whysize))
		return 0;
	out(&s->c, "* STATUS ");
	out_folder_name(s, name);
	const char *sep = " (";
	if (items & STATUS_MESSAGES)
		out(&s->c, "%sMESSAGES %u", sep, st.messages), sep = " ";
	if (items & STATUS_RECENT)
		out(&s->c, "%sRECENT %u", sep, st.recent), sep = " ";
	if (items & STATUS_UIDNEXT)
		out(&s->c, "%sUIDNEXT %u", sep, st.uidnext), sep = " ";
	if (items & STATUS_UIDVALIDITY)
		out(&s->c, "%sUIDVALIDITY %u", sep, st.uidvalidity), sep = " ";
	if (items & STATUS_UNSEEN)
		out(&s->c, "%sUNSEEN %u", sep, st.unseen), sep = " ";
	if (items & STATUS_DELETED)
		out(&s->c, "%sDELETED %u", sep, st.deleted), sep = " ";
	if (items & STATUS_SIZE)
		out(&s->c, "%sSIZE %llu", sep, st.size), sep = " ";
	if (items & STATUS_HIGHESTMODSEQ)
		out(&s->c, "%sHIGHESTMODSEQ %" PRIu64, sep, highestmodseq), sep = " ";
	if (items & STATUS_MAILBOXID)
		out(&s->c, "%sMAILBOXID (%s)", sep, id);
	out(&s->c, ")\r\n");
	return 1;
}

void cmd_status(struct session *s)
{
	char name[FOLDER_NAME_MAX], why[256];
	unsigned items;
	size_t end;

	if (!arg_folder(s, 2, name, sizeof name) || !status_items(s, 3, &items, &end) ||
	    end != s->c.cmd.ntok) {
		bad(&s->c, s->cf, "STATUS needs a folder name and a list of items");
		return;
	}
	if (!out_status(s, name, items, why, sizeof why)) {
		answer_mbox_error(s, why);
		return;
	}
	out(&s->c, "%s OK Status completed\r\n", conn_tag(&s->c));
}

/* What a LIST command asks for (RFC 5258, 6154, 5819). */
struct list_request {
	int lsub, extended;
	int subscribed_only, recursive, special_only;
	int return_subscribed, return_special, return_children;
	unsigned status_items;
	char ref[FOLDER_NAME_MAX];
	char *pat[32];
	size_t npat;
};

static int parse_list(struct session *s, struct list_request *r, char *patspace, size_t patsize)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t i = 2;

	if (!r->lsub && i < cmd->ntok && cmd->tok[i].type == IMAP_LPAREN) {
		r->extended = 1;
		for (i++; i < cmd->ntok && cmd->tok[i].type == IMAP_ATOM; i++) {
			if (imap_tok_is(cmd, i, "SUBSCRIBED"))
				r->subscribed_only = 1;
			else if (imap_tok_is(cmd, i, "RECURSIVEMATCH"))
				r->recursive = 1;
			else if (imap_tok_is(cmd, i, "SPECIAL-USE"))
				r->special_only = r->return_special = 1;
			else if (!imap_tok_is(cmd, i, "REMOTE"))
				return 0;
		}
		if (i >= cmd->ntok || cmd->tok[i].type != IMAP_RPAREN)
			return 0;
		/* RECURSIVEMATCH alone means nothing (RFC 5258 section 3.1). */
		if (r->recursive && !r->subscribed_only)
			return 0;
		i++;
	}
	if (!imap_tok_cstr(cmd, i, r->ref, sizeof r->ref))
		return 0;
	i++;
	size_t used = 0;
	size_t first = i, last = i + 1;
	if (i < cmd->ntok && cmd->tok[i].type == IMAP_LPAREN && !r->lsub) {
		r->extended = 1;
		first = i + 1;
		last = imap_tok_skip(cmd, i) - 1;
	}
	for (size_t k = first; k < last; k++) {
		if (r->npat == sizeof r->pat / sizeof *r->pat || k >= cmd->ntok ||
		    !imap_tok_cstr(cmd, k, patspace + used, patsize - used))
			return 0;
		r->pat[r->npat++] = patspace + used;
		used += strlen(patspace + used) + 1;
	}
	if (!r->npat)
		return 0;
	i = last + (first != i);
	if (i < cmd->ntok && !r->lsub) {
		if (!imap_tok_is(cmd, i, "RETURN") || i + 1 >= cmd->ntok ||
		    cmd->tok[i + 1].type != IMAP_LPAREN)
			return 0;
		size_t end = imap_tok_skip(cmd, i + 1);
		r->extended = 1;
		for (i += 2; i < end - 1; i++) {
			if (imap_tok_is(cmd, i, "SUBSCRIBED")) {
				r->return_subscribed = 1;
			} else if (imap_tok_is(cmd, i, "CHILDREN")) {
				r->return_children = 1;
			} else if (imap_tok_is(cmd, i, "SPECIAL-USE")) {
				r->return_special = 1;
			} else if (imap_tok_is(cmd, i, "STATUS")) {
				size_t after;
				if (!status_items(s, i + 1, &r->status_items, &after))
					return 0;
				i = after - 1;
			} else {
				return 0;
			}
		}
		i = end;
	}
	return i == cmd->ntok;
}

static int any_pattern(const struct list_request *r, const char *name)
{
	for (size_t k = 0; k < r->npat; k++)
		if (pattern_matches(r->ref, r->pat[k], name))
			return 1;
	return 0;
}

void cmd_list(struct session *s, int lsub)
{
	char patspace[8192];	/* on the stack: a session that rests gives its pages back */
	struct list_request r = { 0 };
	struct folders fs = { 0 };
	char why[256];
	const char *tag = conn_tag(&s->c);

	r.lsub = lsub;
	if (!parse_list(s, &r, patspace, sizeof patspace)) {
		bad(&s->c, s->cf, "%s arguments not valid", lsub ? "LSUB" : "LIST");
		return;
	}
	/* LIST "" "": the hierarchy separator and the root. IMAP4rev2 says so of the basic form
	   only: in the extended one an empty pattern matches nothing (RFC 9051 6.3.9). */
	if (r.npat == 1 && !r.pat[0][0] && !lsub && !(s->rev2 && r.extended)) {
		out(&s->c, "* LIST (\\Noselect) \".\" \"\"\r\n%s OK List completed\r\n", tag);
		return;
	}
	if (!mbox_list(s->root, gather, &fs, why, sizeof why)) {
		answer_mbox_error(s, why);
		goto done;
	}
	qsort(fs.f, fs.n, sizeof *fs.f, by_name);
	int subscribed_view = lsub || r.subscribed_only;
	for (size_t i = 0; i < fs.n; i++) {
		const struct folder *f = &fs.f[i];
		unsigned a = f->attrs;
		int childinfo = 0;
		/* Patterns match names as the client sees them: UTF-8 after UTF8=ACCEPT. */
		char wirespace[2 * FOLDER_NAME_MAX];
		const char *wire = folder_to_wire(s, f->name, wirespace, sizeof wirespace);
		if (!any_pattern(&r, wire))
			continue;
		if (r.special_only && !(a & (MBOX_SENT | MBOX_DRAFTS | MBOX_TRASH | MBOX_JUNK |
					     MBOX_ARCHIVE)))
			continue;
		if (subscribed_view && !(a & MBOX_SUBSCRIBED)) {
			/* RECURSIVEMATCH: a folder whose children are subscribed is listed. */
			if (!r.recursive)
				continue;
			size_t len = strlen(f->name);
			for (size_t k = 0; k < fs.n && !childinfo; k++)
				childinfo = (fs.f[k].attrs & MBOX_SUBSCRIBED) &&
					    !strncmp(fs.f[k].name, f->name, len) &&
					    fs.f[k].name[len] == '.';
			if (!childinfo)
				continue;
		}
		if (!subscribed_view && (a & MBOX_NONEXISTENT)) {
			/* A subscription without its folder shows only there; a parent that is
			   no folder ("A" of "A.B") shows as one that cannot be selected, as
			   RFC 3501 and Dovecot have it. */
			if (!(a & MBOX_HASCHILDREN))
				continue;
			/* IMAP4rev2 says "\NonExistent \HasChildren" (RFC 9051 6.3.9.6), and only one
			   of the two, \NonExistent implying \Noselect. */
			a = s->rev2 ? a & ~MBOX_NOSELECT : (a & ~MBOX_NONEXISTENT) | MBOX_NOSELECT;
		}
		out(&s->c, "* %s ", lsub ? "LSUB" : "LIST");
		if (lsub)
			out_list_attrs(s, a & (MBOX_NOSELECT | MBOX_NONEXISTENT), 0, 0);
		else
			out_list_attrs(s, a, subscribed_view || r.return_subscribed, 1);
		out(&s->c, " \".\" ");
		out_wire_name(s, wire);
		if (childinfo)
			out(&s->c, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		out(&s->c, "\r\n");
		if (r.status_items && !(a & (MBOX_NOSELECT | MBOX_NONEXISTENT)) &&
		    !out_status(s, f->name, r.status_items, why, sizeof why))
			log_line("%s: no STATUS for %s: %s", s->user, f->name, why);
	}
	out(&s->c, "%s OK %s completed\r\n", tag, lsub ? "Lsub" : "List");
done:
	for (size_t i = 0; i < fs.n; i++)
		free(fs.f[i].name);
	free(fs.f);
}

/* The limits maildirsize states on its first line ("<bytes>S,<count>C"), as the delivery that
   wrote it was told them, and the usage: 1, or 0 when there is no quota. */
static int quota_of(const char *root, struct maildir_quota *q)
{
	char path[4096], line[128];
	unsigned long long bytes = 0;

	snprintf(path, sizeof path, "%s/maildirsize", root);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int got = fgets(line, sizeof line, f) != 0;
	fclose(f);
	if (!got)
		return 0;
	for (char *p = line; *p && *p != '\n';) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			break;
		if (*end == 'S')
			bytes = v;
		p = end + (*end != 0);
		if (*p == ',')
			p++;
	}
	if (!maildir_quota_read(root, bytes, q))
		return 0;
	return q->bytes_limit || q->count_limit;
}

int over_quota(const char *root, unsigned long long bytes, unsigned long long count)
{
	struct maildir_quota q;
	return quota_of(root, &q) && ((q.bytes_limit && q.bytes + bytes > q.bytes_limit) ||
				      (q.count_limit && q.count + count > q.count_limit));
}

void cmd_namespace(struct session *s)
{
	out(&s->c, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n%s OK Namespace completed\r\n",
	    conn_tag(&s->c));
}

/* QUOTA (RFC 9208) from the Maildir++ quota: one root, "User quota", over the whole Maildir. */
void cmd_getquota(struct session *s, int by_folder)
{
	char name[FOLDER_NAME_MAX];
	struct maildir_quota q;
	const char *tag = conn_tag(&s->c);

	if (s->c.cmd.ntok != 3 || !arg_folder(s, 2, name, sizeof name)) {
		bad(&s->c, s->cf, "%s needs one argument", by_folder ? "GETQUOTAROOT" : "GETQUOTA");
		return;
	}
	int limited = quota_of(s->root, &q);
	if (by_folder) {
		out(&s->c, "* QUOTAROOT ");
		out_folder_name(s, name);
		out(&s->c, limited ? " \"User quota\"\r\n" : "\r\n");
	} else if (!limited || strcmp(name, "User quota")) {
		out(&s->c, "%s NO [NONEXISTENT] No such quota root\r\n", tag);
		return;
	}
	if (limited) {
		out(&s->c, "* QUOTA \"User quota\" (");
		const char *sep = "";
		if (q.bytes_limit)
			out(&s->c, "STORAGE %llu %llu", (q.bytes + 1023) / 1024,
			    q.bytes_limit / 1024), sep = " ";
		if (q.count_limit)
			out(&s->c, "%sMESSAGE %llu %llu", sep, q.count, q.count_limit);
		out(&s->c, ")\r\n");
	}
	out(&s->c, "%s OK %s completed\r\n", tag, by_folder ? "Getquotaroot" : "Getquota");
}
