/* postroom: ISC license, see LICENSE. */
#include <string.h>
#include <strings.h>

#include "mime-internal.h"

/*
 * What SORT and THREAD (RFC 5256) read of a message's header: the sent date with its time and
 * zone, and the msg-ids of Message-ID, References and In-Reply-To.
 */

static const struct mime_hdr *first_field(const struct mime_msg *m, const char *name)
{
	const struct mime_part *p = &m->parts[0];
	for (size_t i = 0; i < p->nhdr; i++)
		if (mime_hdr_is(m, &m->hdrs[p->hdr0 + i], name))
			return &m->hdrs[p->hdr0 + i];
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static long long days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The words of a Date: value, comments skipped: letters and digits runs, and the signs and
   colons that matter. */
struct dlex {
	const char *p, *end;
};

static int dlex_word(struct dlex *x, const char **w, size_t *n)
{
	while (x->p < x->end) {
		char c = *x->p;
		if (c == '(') {
			int level = 0;
			for (; x->p < x->end; x->p++) {
				if (*x->p == '(')
					level++;
				else if (*x->p == ')' && --level == 0) {
					x->p++;
					break;
				}
			}
			continue;
		}
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '+' || c == '-' || c == ':') {
			*w = x->p;
			if (c == '+' || c == '-' || c == ':') {
				x->p++;
			} else {
				while (x->p < x->end &&
				       ((*x->p >= '0' && *x->p <= '9') || (*x->p >= 'a' && *x->p <= 'z') ||
					(*x->p >= 'A' && *x->p <= 'Z')))
					x->p++;
			}
			*n = (size_t)(x->p - *w);
			return 1;
		}
		x->p++;
	}
	return 0;
}

static int all_digits(const char *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i] < '0' || w[i] > '9')
			return 0;
	return n > 0;
}

static int number(const char *w, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n && i < 9; i++)
		v = v * 10 + (w[i] - '0');
	return v;
}

/* Minutes east of UTC of a zone word (RFC 5322 section 4.3's names); 0 for the unknown. */
static int zone_minutes(const char *w, size_t n)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = { { "UT", 0 }, { "GMT", 0 }, { "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
		      { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 } };
	for (size_t i = 0; i < sizeof zones / sizeof *zones; i++)
		if (strlen(zones[i].name) == n && !strncasecmp(w, zones[i].name, n))
			return zones[i].hours * 60;
	return 0;
}

int mime_sent_time(const struct mime_msg *m, time_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const struct mime_hdr *date = first_field(m, "Date");
	struct sa v = SA_ZERO;
	const char *w;
	size_t n;
	int day, mon = 0, year, hh, mm, ss = 0, zone = 0;

	if (!date || !mime_hdr_value(m, date, &v))
		goto fail;
	struct dlex x = { v.s, v.s + v.len };
	if (!dlex_word(&x, &w, &n))
		goto fail;
	if (!all_digits(w, n) && !dlex_word(&x, &w, &n))	/* the day's name */
		goto fail;
	if (!all_digits(w, n) || n > 2 || (day = number(w, n)) < 1 || day > 31)
		goto fail;
	if (!dlex_word(&x, &w, &n) || n != 3)
		goto fail;
	for (int i = 0; i < 12 && !mon; i++)
		if (!strncasecmp(w, months + 3 * i, 3))
			mon = i + 1;
	if (!mon || !dlex_word(&x, &w, &n) || !all_digits(w, n) || n > 4)
		goto fail;
	year = number(w, n);
	if (n <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	if (!dlex_word(&x, &w, &n) || !all_digits(w, n) || n > 2 || (hh = number(w, n)) > 23)
		goto fail;
	if (!dlex_word(&x, &w, &n) || *w != ':' || !dlex_word(&x, &w, &n) || !all_digits(w, n) ||
	    n > 2 || (mm = number(w, n)) > 59)
		goto fail;
	int more = dlex_word(&x, &w, &n);
	if (more && *w == ':') {
		if (!dlex_word(&x, &w, &n) || !all_digits(w, n) || n > 2 || (ss = number(w, n)) > 60)
			goto fail;
		more = dlex_word(&x, &w, &n);
	}
	if (more && (*w == '+' || *w == '-')) {
		int sign = *w == '-' ? -1 : 1;
		if (!dlex_word(&x, &w, &n) || !all_digits(w, n) || n != 4)
			goto fail;
		zone = sign * (number(w, 2) * 60 + number(w + 2, 2));
	} else if (more) {
		zone = zone_minutes(w, n);
	}
	sa_free(&v);
	*t = (time_t)(days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss -
		      zone * 60);
	return 1;
fail:
	sa_free(&v);
	return 0;
}

/* The next msg-id of s ("<" id ">", blanks and line breaks inside dropped) appended to out;
   0 when there is none. An id must have an '@' and no '<' inside. */
static int next_msgid(const char **s, const char *end, struct sa *out, int *nomem)
{
	for (;;) {
		const char *open = memchr(*s, '<', (size_t)(end - *s));
		if (!open)
			return 0;
		const char *close = memchr(open, '>', (size_t)(end - open));
		if (!close)
			return 0;
		/* The id opens at the last '<' before its '>': found from the '>' back, so that a
		   field of many '<' costs one pass, not one per '<'. */
		const char *lt = close;
		while (lt > open && lt[-1] != '<')
			lt--;
		open = lt - 1;
		*s = close + 1;
		if (!memchr(open, '@', (size_t)(close - open)))
			continue;
		size_t before = out->len;
		for (const char *p = open + 1; p < close; p++)
			if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && !sa_catc(out, *p)) {
				*nomem = 1;
				return 0;
			}
		if (out->len > before)
			return 1;
	}
}

int mime_msgids(const struct mime_msg *m, const char *field, int first, size_t max,
		struct sa *out)
{
	const struct mime_hdr *h = first_field(m, field);
	struct sa v = SA_ZERO, ids = SA_ZERO;
	size_t count = 0;
	int nomem = 0;

	if (!h)
		return 1;
	if (!mime_hdr_value(m, h, &v))
		return 0;
	const char *s = v.s, *end = v.s + v.len;
	for (;;) {
		size_t mark = ids.len;
		if (ids.len && !sa_catc(&ids, ' ')) {
			nomem = 1;
			break;
		}
		if (!next_msgid(&s, end, &ids, &nomem)) {
			sa_truncate(&ids, mark);
			break;
		}
		count++;
		if (first)
			break;
	}
	/* only the last max: the nearest ancestors */
	const char *keep = ids.s;
	size_t len = ids.len;
	while (!nomem && count > max && len) {
		const char *sp = memchr(keep, ' ', len);
		if (!sp)
			break;
		len -= (size_t)(sp + 1 - keep);
		keep = sp + 1;
		count--;
	}
	int ok = !nomem && (len == 0 || sa_catb(out, keep, len));
	sa_free(&v);
	sa_free(&ids);
	return ok;
}
