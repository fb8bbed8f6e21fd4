/* postroom: ISC license, see LICENSE. */
/*
 * APPEND: messages the client hands us, stored in a folder. One command may carry several
 * (MULTIAPPEND, RFC 3502), each with its own flags and date, stored all or none; a message may
 * come as a literal8 (BINARY, RFC 3516) or, once UTF8=ACCEPT is enabled, as UTF8 (~{n})
 * (RFC 6855).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap-serve.h"
#include "log.h"

/* RFC 3501 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", the day perhaps with a leading space. */
static int parse_date_time(const char *t, time_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int day, year, hh, mm, ss, zone;
	char mon[4], sign;

	if (sscanf(t, "%2d-%3c-%4d %2d:%2d:%2d %c%4d", &day, mon, &year, &hh, &mm, &ss, &sign,
		   &zone) != 8 || strlen(t) < 26 || (sign != '+' && sign != '-'))
		return 0;
	mon[3] = 0;
	const char *m = strstr(months, mon);
	if (!m || (m - months) % 3 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 ||
	    year < 1900)
		return 0;
	struct tm tm = { .tm_mday = day, .tm_mon = (int)(m - months) / 3, .tm_year = year - 1900,
			 .tm_hour = hh, .tm_min = mm, .tm_sec = ss };
	time_t utc = timegm(&tm);
	int offset = (zone / 100) * 3600 + (zone % 100) * 60;
	*out = sign == '+' ? utc - offset : utc + offset;
	return 1;
}

/* Token i's flag list into flags and keyword names; *end past it. 0 when it is not valid. */
static int parse_flag_list(struct session *s, size_t i, unsigned *flags, const char **kw,
			   size_t *nkw, char *space, size_t spacesize, size_t *end)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	static const char *const names[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					     "\\Draft" };
	size_t used = 0;

	*flags = 0;
	*nkw = 0;
	for (i++; i < cmd->ntok && cmd->tok[i].type == IMAP_ATOM; i++) {
		char word[256];
		if (!imap_tok_cstr(cmd, i, word, sizeof word))
			return 0;
		if (word[0] == '\\') {
			size_t k = 0;
			while (k < 5 && strcasecmp(word, names[k]))
				k++;
			if (k == 5) {
				if (!strcasecmp(word, "\\Recent"))
					continue;
				return 0;
			}
			*flags |= 1u << k;
			continue;
		}
		size_t n = strlen(word);
		if (*nkw == MBOX_KEYWORDS_MAX || used + n + 1 > spacesize)
			return 0;
		memcpy(space + used, word, n + 1);
		kw[(*nkw)++] = space + used;
		used += n + 1;
	}
	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_RPAREN)
		return 0;
	*end = i + 1;
	return 1;
}

/* One message of the command, as parsed: its flags, keywords, date and bytes. */
struct appended {
	unsigned flags;
	const char *kw[MBOX_KEYWORDS_MAX];
	size_t nkw;
	time_t when;
	size_t tok;		/* its literal's token */
};

/* The message data at token *i: a literal, a literal8, or (UTF8=ACCEPT) UTF8 (literal8).
   Its literal's token into *lit, *i past it; 0 when there is none. */
static int message_data(struct session *s, size_t *i, size_t *lit)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t k = *i;

	if (k < cmd->ntok && (cmd->tok[k].type == IMAP_LITERAL ||
			      cmd->tok[k].type == IMAP_LITERAL8)) {
		*lit = k;
		*i = k + 1;
		return 1;
	}
	if (!s->enabled_utf8 || !imap_tok_is(cmd, k, "UTF8") || k + 3 >= cmd->ntok ||
	    cmd->tok[k + 1].type != IMAP_LPAREN || cmd->tok[k + 2].type != IMAP_LITERAL8 ||
	    cmd->tok[k + 3].type != IMAP_RPAREN)
		return 0;
	*lit = k + 2;
	*i = k + 4;
	return 1;
}

/* The messages from token 3 on into msg[0..*n): 0 when the syntax is wrong. */
static int parse_messages(struct session *s, struct appended *msg, size_t max, size_t *n,
			  char *kwspace, size_t kwsize)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	size_t i = 3, used = 0;
	char date[64];

	*n = 0;
	while (i < cmd->ntok) {
		if (*n == max)
			return 1;	/* the caller tells "too many" from the count */
		struct appended *m = &msg[*n];
		*m = (struct appended){ 0 };
		if (cmd->tok[i].type == IMAP_LPAREN) {
			if (!parse_flag_list(s, i, &m->flags, m->kw, &m->nkw, kwspace + used,
					     kwsize - used, &i))
				return 0;
			for (size_t k = 0; k < m->nkw; k++)
				used += strlen(m->kw[k]) + 1;
		}
		if (i < cmd->ntok && cmd->tok[i].type == IMAP_QUOTED) {
			if (!imap_tok_cstr(cmd, i, date, sizeof date) ||
			    !parse_date_time(date, &m->when))
				return 0;
			i++;
		}
		if (!message_data(s, &i, &m->tok))
			return 0;
		(*n)++;
	}
	return *n > 0;
}

/* "[APPENDUID v uids]": one UID, or the range they make (UIDs of one APPEND are consecutive). */
static void out_appenduid(struct session *s, uint32_t uidvalidity, const uint32_t *uids,
			  size_t n)
{
	if (n == 1 || uids[n - 1] - uids[0] != n - 1)
		out(&s->c, "[APPENDUID %u %u", uidvalidity, uids[0]);
	else
		out(&s->c, "[APPENDUID %u %u:%u", uidvalidity, uids[0], uids[n - 1]);
	for (size_t k = 1; uids[n - 1] - uids[0] != n - 1 && k < n; k++)
		out(&s->c, ",%u", uids[k]);
	out(&s->c, "]");
}

/* The parsed messages and what mbox_append_batch takes, for one command: on the heap, so
   that a session at rest holds none of it. */
struct append_work {
	struct appended msg[APPEND_MESSAGES_MAX + 1];
	struct mbox_new batch[APPEND_MESSAGES_MAX];
	uint32_t uids[APPEND_MESSAGES_MAX];
	char kwspace[65536];	/* keywords are in the command's line, at most 64 KiB in all */
};

static void append_messages(struct session *s, struct append_work *w);

void cmd_append(struct session *s)
{
	struct append_work *w = malloc(sizeof *w);
	if (!w) {
		out(&s->c, "%s NO [SERVERBUG] Out of memory\r\n", conn_tag(&s->c));
		return;
	}
	append_messages(s, w);
	free(w);
}

static void append_messages(struct session *s, struct append_work *w)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	const char *tag = conn_tag(&s->c);
	char name[FOLDER_NAME_MAX], why[256];
	struct appended *msg = w->msg;
	struct mbox_new *batch = w->batch;
	uint32_t *uids = w->uids;
	size_t n;

	if (!arg_folder(s, 2, name, sizeof name) ||
	    !parse_messages(s, msg, APPEND_MESSAGES_MAX + 1, &n, w->kwspace, sizeof w->kwspace)) {
		bad(&s->c, s->cf, "APPEND needs a folder, then messages, each perhaps with flags "
			"and a date");
		return;
	}
	if (n > APPEND_MESSAGES_MAX) {
		out(&s->c, "%s NO [LIMIT] At most %d messages in one APPEND\r\n", tag,
		    APPEND_MESSAGES_MAX);
		return;
	}
	unsigned long long bytes = 0;
	for (size_t k = 0; k < n; k++) {
		const struct imap_tok *t = &cmd->tok[msg[k].tok];
		if (t->len == 0) {
			out(&s->c, "%s NO Empty message\r\n", tag);
			return;
		}
		/* RFC 6855 section 4: 8-bit headers only from a client that enabled UTF8=ACCEPT. */
		if (!s->enabled_utf8 && header_has_8bit(IMAP_TOK(cmd, msg[k].tok), t->len)) {
			out(&s->c, "%s NO Message header has 8-bit characters: ENABLE UTF8=ACCEPT "
				"first\r\n", tag);
			return;
		}
		batch[k] = (struct mbox_new){ IMAP_TOK(cmd, msg[k].tok), t->len, msg[k].flags,
					      msg[k].kw, msg[k].nkw, msg[k].when };
		bytes += t->len;
	}
	/* Over the Maildir++ quota, as a delivery would be refused (RFC 9208's OVERQUOTA). */
	if (over_quota(s->root, bytes, n)) {
		out(&s->c, "%s NO [OVERQUOTA] The mailbox is over its quota\r\n", tag);
		return;
	}
	uint32_t uidvalidity;
	if (!mbox_append_batch(s->root, name, batch, n, &uidvalidity, uids, why, sizeof why)) {
		if (errno == ENOENT)
			out(&s->c, "%s NO [TRYCREATE] No such folder\r\n", tag);
		else
			answer_mbox_error(s, why);
		return;
	}
	if (s->selected && !strcmp(s->box.name, name))
		announce_changes(s, 1);
	out(&s->c, "%s OK ", tag);
	if (uidvalidity)	/* 0: stored, UIDs to come with the next sync (mbox_append) */
		out_appenduid(s, uidvalidity, uids, n);
	out(&s->c, " Append completed\r\n");
}
