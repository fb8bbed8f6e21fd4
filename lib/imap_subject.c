/* postroom: ISC license, see LICENSE. */
#include <string.h>
#include <strings.h>

#include "imap_subject.h"

/* The RFC's WSP: the text is normalised to single spaces first, so a space is all there is. */
static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Length of a subj-blob ("[" *BLOBCHAR "]" *WSP) at s, or 0. */
static size_t blob_len(const char *s, size_t n)
{
	size_t i = 1;
	if (n == 0 || s[0] != '[')
		return 0;
	while (i < n && s[i] != '[' && s[i] != ']')
		i++;
	if (i == n || s[i] != ']')
		return 0;
	for (i++; i < n && is_wsp(s[i]); i++)
		;
	return i;
}

/* Length of the run of subj-blobs at s (0 when none). */
static size_t blobs_len(const char *s, size_t n)
{
	size_t i = 0, b;
	while ((b = blob_len(s + i, n - i)))
		i += b;
	return i;
}

/* Length of a subj-leader's first form (*subj-blob subj-refwd) at s, or 0. */
static size_t refwd_leader_len(const char *s, size_t n)
{
	size_t i = blobs_len(s, n);
	if (n - i >= 2 && !strncasecmp(s + i, "re", 2)) {
		i += 2;
	} else if (n - i >= 2 && !strncasecmp(s + i, "fw", 2)) {
		i += 2;
		if (i < n && (s[i] == 'd' || s[i] == 'D'))
			i++;
	} else {
		return 0;
	}
	while (i < n && is_wsp(s[i]))
		i++;
	i += blob_len(s + i, n - i);
	return i < n && s[i] == ':' ? i + 1 : 0;
}

/* Steps (3) to (5): leaders, then a blob that does not leave the subject empty, again and
   again. The text is t[*start .. *end). Linear in the text, whatever a sender puts in it: a
   run of blobs found not to end in a leader is not looked at again from each of its blobs,
   and where the text ends is found once. */
static void strip_leaders(const char *t, size_t *start, size_t end, int *reply)
{
	size_t last = end;	/* just past the last character that is not a blank */
	while (last > *start && is_wsp(t[last - 1]))
		last--;
	size_t no_leader_before = 0;
	for (;;) {
		size_t at = *start, l;
		if (at < end && is_wsp(t[at])) {
			*start = at + 1;
			continue;
		}
		if (at >= no_leader_before) {
			if ((l = refwd_leader_len(t + at, end - at))) {
				*start = at + l;
				*reply = 1;
				continue;
			}
			no_leader_before = at + blobs_len(t + at, end - at);
		}
		l = blob_len(t + at, end - at);
		if (l && at + l < last) {
			*start = at + l;
			continue;
		}
		return;
	}
}

int imap_base_subject(const char *s, size_t n, struct sa *out, int *reply)
{
	struct sa t = SA_ZERO;
	int ok = sa_catb(&t, "", 0);

	*reply = 0;
	/* (1): blanks and line breaks become single spaces */
	for (size_t i = 0; i < n && ok; i++) {
		char c = s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && t.len && t.s[t.len - 1] == ' ')
			continue;
		ok = sa_catc(&t, c);
	}
	size_t start = 0, end = t.len;
	for (; ok;) {
		/* (2): trailers, "(fwd)" and blanks */
		for (;;) {
			if (end > start && is_wsp(t.s[end - 1])) {
				end--;
			} else if (end - start >= 5 && !strncasecmp(t.s + end - 5, "(fwd)", 5)) {
				end -= 5;
				*reply = 1;
			} else {
				break;
			}
		}
		strip_leaders(t.s, &start, end, reply);
		/* (6): "[fwd: ...]" wraps the subject; take it off and go back to (2) */
		if (end - start >= 6 && !strncasecmp(t.s + start, "[fwd:", 5) &&
		    t.s[end - 1] == ']') {
			start += 5;
			end--;
			*reply = 1;
			continue;
		}
		break;
	}
	if (ok)
		ok = sa_catb(out, t.s + start, end - start) && sa_terminate(out);
	sa_free(&t);
	return ok;
}
