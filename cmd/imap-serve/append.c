/* postroom: ISC license, see LICENSE. */
/*
 * APPEND: messages the client hands us, stored in a folder.
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

void cmd_append(struct session *s)
{
	const struct imap_cmd *cmd = &s->c.cmd;
	char name[FOLDER_NAME_MAX], why[256], date[64], kwspace[2048];
	const char *kw[MBOX_KEYWORDS_MAX];
	size_t nkw = 0, i = 3;
	unsigned flags = 0;
	time_t when = 0;

	if (!arg_folder(s, 2, name, sizeof name))
		goto syntax;
	if (i < cmd->ntok && cmd->tok[i].type == IMAP_LPAREN &&
	    !parse_flag_list(s, i, &flags, kw, &nkw, kwspace, sizeof kwspace, &i))
		goto syntax;
	if (i < cmd->ntok && cmd->tok[i].type == IMAP_QUOTED) {
		if (!imap_tok_cstr(cmd, i, date, sizeof date) || !parse_date_time(date, &when))
			goto syntax;
		i++;
	}
	if (i + 1 != cmd->ntok || cmd->tok[i].type != IMAP_LITERAL)
		goto syntax;
	if (cmd->tok[i].len == 0) {
		out(&s->c, "%s NO Empty message\r\n", conn_tag(&s->c));
		return;
	}
	/* Over the Maildir++ quota, as a delivery would be refused (RFC 9208's OVERQUOTA). */
	if (over_quota(s->root, cmd->tok[i].len, 1)) {
		out(&s->c, "%s NO [OVERQUOTA] The mailbox is over its quota\r\n", conn_tag(&s->c));
		return;
	}
	uint32_t uidvalidity, uid;
	if (!mbox_append(s->root, name, IMAP_TOK(cmd, i), cmd->tok[i].len, flags, kw, nkw, when,
			 &uidvalidity, &uid, why, sizeof why)) {
		if (errno == ENOENT)
			out(&s->c, "%s NO [TRYCREATE] No such folder\r\n", conn_tag(&s->c));
		else
			answer_mbox_error(s, why);
		return;
	}
	if (s->selected && !strcmp(s->box.name, name))
		announce_changes(s, 1);
	out(&s->c, "%s OK [APPENDUID %u %u] Append completed\r\n", conn_tag(&s->c), uidvalidity,
	    uid);
	return;
syntax:
	bad(&s->c, s->cf, "APPEND needs a folder, perhaps flags and a date, and a message");
}

