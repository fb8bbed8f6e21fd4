/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "dsn.h"
#include "sa.h"
#include "utf8.h"

#define OCTETS_MAX 998		/* a line, without its end (RFC 5322 2.1.1) */
#define FOLD_AT 78		/* where header fields are folded when they can be */
#define WRAP_AT 72		/* the text part's lines */
#define CHUNK 16384		/* the original is read this much at a time */
#define BOUNDARY_MAX 70		/* RFC 2046 5.1.1 */
#define BOUNDARY_TRIES 16
#define QID_IN_BOUNDARY 28	/* bytes of the queue id in the boundary */
#define DATE_MAX 40		/* "Wed, 31 Dec 2025 23:59:59 +0000" and more */

enum action { FAILED, DELAYED, DELIVERED, RELAYED, EXPANDED, NACTIONS };
static const char *const action_names[NACTIONS] = {
	"failed", "delayed", "delivered", "relayed", "expanded",
};

/* What of the original goes in the third part, and why. */
enum ret { RET_FULL, RET_HEADERS, RET_NONE };
enum why { WHY_ASKED, WHY_TOOBIG, WHY_LINES };

/* The RFC 5322 date of t, in UTC, or 0. */
static int date_fmt(char *out, size_t size, time_t t)
{
	static const char *const wday[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11) {
		errno = EOVERFLOW;
		return 0;
	}
	int r = snprintf(out, size, "%s, %d %s %d %02d:%02d:%02d +0000", wday[tm.tm_wday],
			 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
	if (r < 0 || (size_t)r >= size) {
		errno = EOVERFLOW;
		return 0;
	}
	return 1;
}

/* Appends s (n bytes) with its xtext (RFC 3461 4) decoded; a '+' not followed by two hex
   digits stays as it is. */
static int xtext_decode(struct sa *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '+' && i + 2 < n && (hi = scan_hexdigit(s[i + 1])) >= 0 &&
		    (lo = scan_hexdigit(s[i + 2])) >= 0) {
			if (!sa_catc(o, (char)(hi << 4 | lo)))
				return 0;
			i += 2;
		} else if (!sa_catc(o, s[i]))
			return 0;
	}
	return 1;
}

/*
 * Appends s (n bytes) as printable ASCII: white space and line ends become a space, other
 * controls and bytes above 127 '?'; white space at either end is dropped.
 */
static int clean(struct sa *o, const char *s, size_t n)
{
	while (n && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	if (!sa_ready(o, n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		else if (c < 0x20 || c > 0x7e)
			c = '?';
		o->s[o->len++] = (char)c;
	}
	o->s[o->len] = 0;
	return 1;
}

static int ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x7e || (unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

/*
 * Appends an address field's value, type ";" address. An address in UTF-8 that is not ASCII
 * (of type rfc822 or utf-8) is given in RFC 6533's utf-8-addr-xtext: "utf-8;" then every
 * character but the printable ASCII other than '+', '=' and '\' as \x{HEX}.
 */
static int addr_value(struct sa *o, const char *type, const char *a, size_t n)
{
	const unsigned char *u = (const unsigned char *)a;
	int utf8 = !ascii(a, n) && (!strcasecmp(type, "rfc822") || !strcasecmp(type, "utf-8"));

	for (size_t i = 0; utf8 && i < n;) {
		size_t l = utf8_len(u + i, n - i);
		if (!l || u[i] < 0x20 || u[i] == 0x7f)
			utf8 = 0;
		i += l ? l : 1;
	}
	if (!utf8)
		return clean(o, type, strlen(type)) && sa_catc(o, ';') && clean(o, a, n);
	if (!sa_cats(o, "utf-8;"))
		return 0;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(u + i, n - i);
		unsigned cp = l == 1 ? u[i] : l == 2 ? u[i] & 0x1fu : l == 3 ? u[i] & 0x0fu : u[i] & 0x07u;
		for (size_t k = 1; k < l; k++)
			cp = cp << 6 | (u[i + k] & 0x3fu);
		if (cp > 0x20 && cp < 0x7f && cp != '+' && cp != '=' && cp != '\\') {
			if (!sa_catc(o, (char)cp))
				return 0;
		} else if (!sa_catf(o, "\\x{%X}", cp))
			return 0;
		i += l;
	}
	return 1;
}

/*
 * Appends the header field name: v (printable ASCII, from clean), folded before a space
 * where a line would pass FOLD_AT, and cut with a fold wherever a word would pass OCTETS_MAX.
 */
static int field(struct sa *o, const char *name, const char *v, size_t n)
{
	size_t col = strlen(name) + 2, i = 0;

	if (!sa_cats(o, name) || !sa_cats(o, ": "))
		return 0;
	while (i < n) {
		size_t j = i, k;
		while (j < n && v[j] == ' ')
			j++;
		for (k = j; k < n && v[k] != ' '; k++)
			;
		size_t w = k - i;
		if (j > i && k > j && col + w > FOLD_AT) {
			if (!sa_catc(o, '\n'))
				return 0;
			col = 0;
		}
		while (w) {
			if (col >= OCTETS_MAX) {
				if (!sa_cats(o, "\n "))
					return 0;
				col = 1;
			}
			size_t take = OCTETS_MAX - col < w ? OCTETS_MAX - col : w;
			if (!sa_catb(o, v + i, take))
				return 0;
			col += take;
			i += take;
			w -= take;
		}
	}
	return sa_catc(o, '\n');
}

/* field with the value given as a C string to be cleaned. */
static int field_s(struct sa *o, struct sa *tmp, const char *name, const char *prefix,
		   const char *s)
{
	tmp->len = 0;
	return sa_cats(tmp, prefix) && clean(tmp, s, strlen(s)) && field(o, name, tmp->s, tmp->len);
}

static int field_date(struct sa *o, const char *name, time_t t)
{
	char date[DATE_MAX];

	return date_fmt(date, sizeof date, t) && field(o, name, date, strlen(date));
}

/*
 * Appends s (printable ASCII, from clean) as text lines of at most WRAP_AT, indented by
 * indent; a word too long for a line is cut at OCTETS_MAX.
 */
static int wrap(struct sa *o, size_t indent, const char *s, size_t n)
{
	size_t col = 0, i = 0;

	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		size_t j = i;
		while (j < n && s[j] != ' ')
			j++;
		if (j == i)
			break;
		size_t w = j - i;
		if (col > indent && col + 1 + w > WRAP_AT) {
			if (!sa_catc(o, '\n'))
				return 0;
			col = 0;
		}
		if (col == 0) {
			for (; col < indent; col++)
				if (!sa_catc(o, ' '))
					return 0;
		} else {
			if (!sa_catc(o, ' '))
				return 0;
			col++;
		}
		while (w > OCTETS_MAX - col) {
			size_t take = OCTETS_MAX - col;
			if (!sa_catb(o, s + i, take) || !sa_catc(o, '\n'))
				return 0;
			i += take;
			w -= take;
			for (col = 0; col < indent; col++)
				if (!sa_catc(o, ' '))
					return 0;
		}
		if (!sa_catb(o, s + i, w))
			return 0;
		col += w;
		i = j;
	}
	return !col || sa_catc(o, '\n');
}

/* wrap of s (n bytes), cleaned, after a prefix of our own. */
static int wrap_b(struct sa *o, struct sa *tmp, size_t indent, const char *prefix, const char *s,
		  size_t n)
{
	tmp->len = 0;
	return sa_cats(tmp, prefix) && clean(tmp, s, n) && wrap(o, indent, tmp->s, tmp->len);
}

static int wrap_s(struct sa *o, struct sa *tmp, size_t indent, const char *prefix, const char *s)
{
	return wrap_b(o, tmp, indent, prefix, s, strlen(s));
}

static enum action action_of(const char *s)
{
	enum action a = 0;

	while (a < NACTIONS && strcmp(s, action_names[a]))
		a++;
	return a;
}

/* The status if it is one (RFC 3463: class "." subject "." detail), else the action's X.0.0. */
static const char *status_of(const char *s, enum action a)
{
	const char *p = s;

	if (p && (*p == '2' || *p == '4' || *p == '5') && p[1] == '.') {
		int parts = 0;
		for (p += 2; parts < 2; parts++) {
			size_t k = 0;
			while (k < 4 && p[k] >= '0' && p[k] <= '9')
				k++;
			if (k < 1 || k > 3 || p[k] != (parts ? 0 : '.'))
				break;
			p += k + !parts;
		}
		if (parts == 2)
			return s;
	}
	return a == FAILED ? "5.0.0" : a == DELAYED ? "4.0.0" : "2.0.0";
}

/* The ORCPT's address type ("rfc822"; "unknown" without one) into type, its decoded address
   into addr. */
static int orcpt_split(const char *orcpt, struct sa *type, struct sa *addr)
{
	const char *semi = strchr(orcpt, ';');

	type->len = addr->len = 0;
	if (!semi)
		return sa_cats(type, "unknown") && xtext_decode(addr, orcpt, strlen(orcpt)) &&
		       sa_terminate(addr);
	const char *t = orcpt, *e = semi;
	while (t < e && (*t == ' ' || *t == '\t'))
		t++;
	while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (!sa_catb(type, t, (size_t)(e - t)))
		return 0;
	if (!type->len && !sa_cats(type, "unknown"))
		return 0;
	for (semi++; *semi == ' ' || *semi == '\t'; semi++)
		;
	return xtext_decode(addr, semi, strlen(semi)) && sa_terminate(addr);
}

/* The message/delivery-status part's content (RFC 3464 2.1). */
static int status_part(struct sa *o, const struct dsn *d)
{
	struct sa tmp = SA_ZERO, type = SA_ZERO, addr = SA_ZERO;
	int ok = 0;

	if (d->envid && *d->envid) {
		if (!xtext_decode(&addr, d->envid, strlen(d->envid)) ||
		    !clean(&tmp, addr.s, addr.len) ||
		    !field(o, "Original-Envelope-Id", tmp.s, tmp.len))
			goto out;
	}
	if (!field_s(o, &tmp, "Reporting-MTA", "dns; ", d->reporting_mta))
		goto out;
	if (d->arrival && !field_date(o, "Arrival-Date", d->arrival))
		goto out;
	if (!field_s(o, &tmp, "X-Postroom-Queue-ID", "", d->queue_id))
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		const struct dsn_rcpt *r = &d->r[i];
		enum action a = action_of(r->action);
		if (!sa_catc(o, '\n'))
			goto out;
		if (r->orcpt) {
			tmp.len = 0;
			if (!orcpt_split(r->orcpt, &type, &addr) ||
			    !addr_value(&tmp, type.s, addr.s, addr.len) ||
			    !field(o, "Original-Recipient", tmp.s, tmp.len))
				goto out;
		}
		tmp.len = 0;
		if (!addr_value(&tmp, "rfc822", r->final, strlen(r->final)) ||
		    !field(o, "Final-Recipient", tmp.s, tmp.len) ||
		    !field_s(o, &tmp, "Action", "", action_names[a]) ||
		    !field_s(o, &tmp, "Status", "", status_of(r->status, a)))
			goto out;
		if (r->remote_mta && *r->remote_mta &&
		    !field_s(o, &tmp, "Remote-MTA", "dns; ", r->remote_mta))
			goto out;
		if (r->diagnostic && *r->diagnostic &&
		    !field_s(o, &tmp, "Diagnostic-Code",
			     r->diagnostic_type == DSN_DIAG_SMTP ? "smtp; " : "X-Postroom; ",
			     r->diagnostic))
			goto out;
		if (r->last_attempt && !field_date(o, "Last-Attempt-Date", r->last_attempt))
			goto out;
		if (a == DELAYED && r->will_retry_until &&
		    !field_date(o, "Will-Retry-Until", r->will_retry_until))
			goto out;
		if (!r->orcpt && r->original && *r->original) {
			tmp.len = 0;
			if (!addr_value(&tmp, "rfc822", r->original, strlen(r->original)) ||
			    !field(o, "X-Postroom-Envelope-Recipient", tmp.s, tmp.len))
				goto out;
		}
	}
	ok = 1;
out:
	sa_free(&tmp);
	sa_free(&type);
	sa_free(&addr);
	return ok;
}

/* What the text part says of each group of recipients, in the order they are listed. */
static const enum action text_order[NACTIONS] = { FAILED, DELAYED, DELIVERED, RELAYED, EXPANDED };
static const char *const text_intro[NACTIONS] = {
	[FAILED] = "Your message could not be delivered to the recipients below. This is final: "
		   "the mail system has given up on them and will not try again.",
	[DELAYED] = "Your message has not reached the recipients below yet. The mail system keeps "
		    "trying; you do not need to send it again.",
	[DELIVERED] = "Your message was delivered to the recipients below.",
	[RELAYED] = "Your message was passed on for the recipients below to a mail system that "
		    "does not report on deliveries: you will hear no more about them, whether "
		    "they get it or not.",
	[EXPANDED] = "Your message was delivered to the addresses below, which forward it to "
		     "further recipients.",
};

static const char delayed_until[] =
	"Your message has not reached the recipients below yet. The mail system keeps trying "
	"until the time shown for each of them; you do not need to send it again.";

/* One recipient in the text part. */
static int text_rcpt(struct sa *o, struct sa *tmp, const struct dsn_rcpt *r, enum action a)
{
	struct sa type = SA_ZERO, addr = SA_ZERO;
	char date[DATE_MAX];
	int ok = 0;

	if (!sa_catc(o, '\n') || !wrap_s(o, tmp, 2, "", r->final))
		goto out;
	if (r->orcpt) {
		if (!orcpt_split(r->orcpt, &type, &addr))
			goto out;
		if ((addr.len != strlen(r->final) || memcmp(addr.s, r->final, addr.len)) &&
		    !wrap_b(o, tmp, 4, "which you addressed as ", addr.s, addr.len))
			goto out;
	} else if (r->original && *r->original && strcmp(r->original, r->final) &&
		   !wrap_s(o, tmp, 4, "which you addressed as ", r->original))
		goto out;
	if (r->diagnostic && *r->diagnostic &&
	    !wrap_s(o, tmp, 4,
		    r->diagnostic_type == DSN_DIAG_SMTP ? (r->remote_mta && *r->remote_mta ?
							    "The receiving server said: " :
							    "The server said: ") :
		    a == FAILED || a == DELAYED ? "Reason: " : "Note: ",
		    r->diagnostic))
		goto out;
	if (r->remote_mta && *r->remote_mta && !wrap_s(o, tmp, 4, "Server: ", r->remote_mta))
		goto out;
	if (r->last_attempt) {
		if (!date_fmt(date, sizeof date, r->last_attempt) ||
		    !wrap_s(o, tmp, 4, "Last attempt: ", date))
			goto out;
	}
	if (a == DELAYED && r->will_retry_until) {
		if (!date_fmt(date, sizeof date, r->will_retry_until) ||
		    !wrap_s(o, tmp, 4, "Still trying until: ", date))
			goto out;
	}
	ok = 1;
out:
	sa_free(&type);
	sa_free(&addr);
	return ok;
}

/* The text/plain part's content. */
static int text_part(struct sa *o, const struct dsn *d, enum ret ret, enum why why)
{
	struct sa tmp = SA_ZERO;
	char date[DATE_MAX];
	int ok = 0;

	if (!sa_cats(&tmp, "This is an automatic report from the mail system at ") ||
	    !clean(&tmp, d->reporting_mta, strlen(d->reporting_mta)) ||
	    !sa_cats(&tmp, " about a message you sent, which it knows by the queue id ") ||
	    !clean(&tmp, d->queue_id, strlen(d->queue_id)))
		goto out;
	if (d->arrival && (!date_fmt(date, sizeof date, d->arrival) ||
			   !sa_cats(&tmp, " and which arrived on ") || !sa_cats(&tmp, date)))
		goto out;
	if (!sa_catc(&tmp, '.') || !wrap(o, 0, tmp.s, tmp.len))
		goto out;
	for (size_t g = 0; g < NACTIONS; g++) {
		enum action a = text_order[g];
		size_t count = 0, until = 0;
		for (size_t i = 0; i < d->n; i++)
			if (action_of(d->r[i].action) == a) {
				count++;
				until += d->r[i].will_retry_until != 0;
			}
		if (!count)
			continue;
		if (!sa_catc(o, '\n') ||
		    !wrap_s(o, &tmp, 0, "", a == DELAYED && until == count ? delayed_until :
									   text_intro[a]))
			goto out;
		for (size_t i = 0; i < d->n; i++)
			if (action_of(d->r[i].action) == a && !text_rcpt(o, &tmp, &d->r[i], a))
				goto out;
	}
	if (!sa_catc(o, '\n'))
		goto out;
	if (!wrap_s(o, &tmp, 0, "",
		    ret == RET_FULL ? "Your message is attached below." :
		    ret == RET_NONE ? "Your message is not attached." :
		    why == WHY_ASKED ? "As you asked, only the header of your message is attached "
				       "below." :
		    why == WHY_TOOBIG ? "Your message was too large to send back whole: only its "
					"header is attached below." :
				       "Only the header of your message is attached below."))
		goto out;
	if (!sa_catc(o, '\n'))
		goto out;
	tmp.len = 0;
	if (!sa_cats(&tmp, "If you ask the postmaster of ") ||
	    !clean(&tmp, d->reporting_mta, strlen(d->reporting_mta)) ||
	    !sa_cats(&tmp, " about it, please give the queue id ") ||
	    !clean(&tmp, d->queue_id, strlen(d->queue_id)) || !sa_cats(&tmp, ".") ||
	    !wrap(o, 0, tmp.s, tmp.len))
		goto out;
	ok = 1;
out:
	sa_free(&tmp);
	return ok;
}

/* Whether n (nn bytes, at least 1) occurs in h (hn bytes); memmem is a GNU extension. */
static int find(const char *h, size_t hn, const char *n, size_t nn)
{
	for (const char *p = h, *end = h + hn; (size_t)(end - p) >= nn; p++) {
		p = memchr(p, n[0], (size_t)(end - p) - nn + 1);
		if (!p)
			return 0;
		if (!memcmp(p, n, nn))
			return 1;
	}
	return 0;
}

/* Reads up to n bytes of the original at pos, retrying on EINTR; 0 (EPROTO) at its end. */
static ssize_t read_at(int fd, off_t off, unsigned long long pos, char *buf, size_t n)
{
	for (;;) {
		ssize_t r = pread(fd, buf, n, off + (off_t)pos);
		if (r > 0)
			return r;
		if (r == 0) {
			errno = EPROTO;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/*
 * The returned header's length: whole lines up to the empty line that ends the header, or the
 * end of the message (its last line may lack its LF), at most max bytes, and none from the
 * first line that could not be returned (over OCTETS_MAX, or a NUL) on.
 */
static int header_len(int fd, off_t off, unsigned long long len, unsigned long long max,
		      unsigned long long *hlen)
{
	char buf[CHUNK];
	unsigned long long limit = len < max ? len : max, pos = 0, start = 0;

	*hlen = 0;
	while (pos < limit) {
		size_t want = limit - pos < CHUNK ? (size_t)(limit - pos) : CHUNK;
		ssize_t r = read_at(fd, off, pos, buf, want);
		if (r < 0)
			return 0;
		for (size_t i = 0; i < (size_t)r; i++, pos++) {
			if (buf[i] == '\n') {
				if (pos == start)
					return 1;
				*hlen = start = pos + 1;
			} else if (!buf[i] || pos - start >= OCTETS_MAX)
				return 1;
		}
	}
	if (limit == len && start < len)
		*hlen = len;
	return 1;
}

/* What scan found in the bytes of the original it read. */
struct scan {
	int eightbit;	/* a byte above 127 */
	int bad;	/* a line over OCTETS_MAX, or a NUL */
	int hit;	/* the boundary */
	char last;	/* the last byte */
};

static int scan(int fd, off_t off, unsigned long long n, const char *b, size_t blen,
		struct scan *sc)
{
	char buf[BOUNDARY_MAX + CHUNK];
	unsigned long long pos = 0;
	size_t carry = 0, line = 0;

	memset(sc, 0, sizeof *sc);
	while (pos < n) {
		size_t want = n - pos < CHUNK ? (size_t)(n - pos) : CHUNK;
		ssize_t r = read_at(fd, off, pos, buf + carry, want);
		if (r < 0)
			return 0;
		const unsigned char *p = (const unsigned char *)buf + carry;
		for (size_t i = 0; i < (size_t)r; i++) {
			if (p[i] == '\n') {
				line = 0;
				continue;
			}
			if (p[i] > 127)
				sc->eightbit = 1;
			if (!p[i] || ++line > OCTETS_MAX)
				sc->bad = 1;
		}
		size_t have = carry + (size_t)r;
		if (find(buf, have, b, blen))
			sc->hit = 1;
		sc->last = buf[have - 1];
		carry = blen - 1 < have ? blen - 1 : have;
		memmove(buf, buf + have - carry, carry);
		pos += (size_t)r;
	}
	return 1;
}

/* The boundary for this try: "=_", part of the queue id, the time, the nanoseconds, the try. */
static int boundary_make(char *b, size_t size, const struct dsn *d, long nsec, int try)
{
	char qid[QID_IN_BOUNDARY + 1];
	size_t k = 0;

	for (const char *q = d->queue_id; *q && k < QID_IN_BOUNDARY; q++)
		if ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') ||
		    (*q >= 'A' && *q <= 'Z') || *q == '-' || *q == '.')
			qid[k++] = *q;
	qid[k] = 0;
	int r = snprintf(b, size, "=_%s.%lld.%09ld.%d", qid, (long long)d->now, nsec, try);
	if (r < 0 || (size_t)r >= size) {
		errno = EOVERFLOW;
		return 0;
	}
	return 1;
}

/* Keeps the characters of s fit for a Message-ID's dot-atom-text (RFC 5322 3.2.3). */
static int atext(struct sa *o, const char *s)
{
	for (; *s; s++)
		if ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    strchr("!#$%&'*+-/=?^_`{|}~.", *s))
			if (!sa_catc(o, *s))
				return 0;
	return 1;
}

/* The notice's header, up to and with the empty line. */
static int header(struct sa *o, const struct dsn *d, const char *boundary, int eightbit,
		  long nsec)
{
	struct sa tmp = SA_ZERO;
	enum action worst = NACTIONS;
	int ok = 0;

	for (size_t i = 0; i < d->n; i++) {
		enum action a = action_of(d->r[i].action);
		if (a < worst)
			worst = a;
	}
	if (!field_date(o, "Date", d->now) || !sa_cats(&tmp, "Mail Delivery System <") ||
	    !clean(&tmp, d->postmaster, strlen(d->postmaster)) || !sa_catc(&tmp, '>') ||
	    !field(o, "From", tmp.s, tmp.len))
		goto out;
	tmp.len = 0;
	if (!sa_cats(&tmp, "<") || !clean(&tmp, d->to, strlen(d->to)) || !sa_cats(&tmp, ">") ||
	    !field(o, "To", tmp.s, tmp.len))
		goto out;
	if (!field_s(o, &tmp, "Subject", "",
		     worst == FAILED ? "Undelivered Mail Returned to Sender" :
		     worst == DELAYED ? "Delayed Mail (still being retried)" :
					"Successful Mail Delivery Report"))
		goto out;
	tmp.len = 0;
	if (!sa_catc(&tmp, '<') || !atext(&tmp, d->queue_id) ||
	    !sa_catf(&tmp, ".dsn.%lld.%09ld.%ld@", (long long)d->now, nsec, (long)getpid()))
		goto out;
	size_t at = tmp.len;
	if (!atext(&tmp, d->reporting_mta) || (tmp.len == at && !sa_cats(&tmp, "invalid")) ||
	    !sa_catc(&tmp, '>') || !field(o, "Message-ID", tmp.s, tmp.len))
		goto out;
	tmp.len = 0;
	if (!field_s(o, &tmp, "Auto-Submitted", "", "auto-replied") ||
	    !field_s(o, &tmp, "MIME-Version", "", "1.0"))
		goto out;
	tmp.len = 0;
	if (!sa_catf(&tmp, "multipart/report; report-type=delivery-status; boundary=\"%s\"",
		     boundary) ||
	    !field(o, "Content-Type", tmp.s, tmp.len))
		goto out;
	if (eightbit && !field_s(o, &tmp, "Content-Transfer-Encoding", "", "8bit"))
		goto out;
	if (!sa_cats(o, "\nThis is a delivery status notification in MIME format.\n"))
		goto out;
	ok = 1;
out:
	sa_free(&tmp);
	return ok;
}

static int put_sa(const struct sa *s, int (*put)(void *, const char *, size_t), void *arg)
{
	return !s->len || put(arg, s->s, s->len);
}

/* Streams n bytes of the original through put, with a final LF if it lacks one. */
static int put_original(int fd, off_t off, unsigned long long n, int lf,
			int (*put)(void *, const char *, size_t), void *arg)
{
	char buf[CHUNK];

	for (unsigned long long pos = 0; pos < n;) {
		size_t want = n - pos < CHUNK ? (size_t)(n - pos) : CHUNK;
		ssize_t r = read_at(fd, off, pos, buf, want);
		if (r < 0 || !put(arg, buf, (size_t)r))
			return 0;
		pos += (size_t)r;
	}
	return !lf || put(arg, "\n", 1);
}

int dsn_write(const struct dsn *d, int fd, off_t off, unsigned long long len,
	      int (*put)(void *arg, const char *s, size_t n), void *arg)
{
	struct sa text = SA_ZERO, status = SA_ZERO, out = SA_ZERO;
	struct scan sc = { 0, 0, 0, 0 };
	char boundary[BOUNDARY_MAX + 1];
	struct timespec ts;
	enum ret ret = RET_FULL;
	enum why why = WHY_ASKED;
	unsigned long long rlen = len;
	int ok = 0, try = 0;

	if (!d || !d->reporting_mta || !d->queue_id || !d->to || !*d->to || !d->postmaster ||
	    !d->r || !d->n) {
		errno = EINVAL;
		return 0;
	}
	for (size_t i = 0; i < d->n; i++)
		if (!d->r[i].final || !d->r[i].action || action_of(d->r[i].action) == NACTIONS) {
			errno = EINVAL;
			return 0;
		}
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;

	/* What is returned: a line that cannot be (a NUL, over OCTETS_MAX) takes the header. */
	if (d->headers_only || len > d->return_max) {
		ret = RET_HEADERS;
		why = d->headers_only ? WHY_ASKED : WHY_TOOBIG;
	}
	for (;;) {
		if (ret == RET_HEADERS) {
			if (!header_len(fd, off, len, d->return_max, &rlen))
				goto out;
		}
		if (!boundary_make(boundary, sizeof boundary, d, ts.tv_nsec, try))
			goto out;
		if (!rlen) {
			ret = RET_NONE;
			break;
		}
		if (!scan(fd, off, rlen, boundary, strlen(boundary), &sc))
			goto out;
		if (ret != RET_FULL || !sc.bad)
			break;
		ret = RET_HEADERS;
		why = WHY_LINES;
	}
	if (!text_part(&text, d, ret, why) || !status_part(&status, d))
		goto out;
	/* A boundary that occurs in no part (a peer's words may name it too). */
	while ((rlen && sc.hit) || find(text.s, text.len, boundary, strlen(boundary)) ||
	       find(status.s, status.len, boundary, strlen(boundary))) {
		if (++try == BOUNDARY_TRIES) {
			errno = EEXIST;
			goto out;
		}
		if (!boundary_make(boundary, sizeof boundary, d, ts.tv_nsec, try) ||
		    (rlen && !scan(fd, off, rlen, boundary, strlen(boundary), &sc)))
			goto out;
	}

	if (!header(&out, d, boundary, rlen && sc.eightbit, ts.tv_nsec) ||
	    !sa_catf(&out, "\n--%s\nContent-Type: text/plain; charset=us-ascii\n\n", boundary) ||
	    !sa_catb(&out, text.s, text.len) ||
	    !sa_catf(&out, "\n--%s\nContent-Type: message/delivery-status\n\n", boundary) ||
	    !sa_catb(&out, status.s, status.len) || !sa_catf(&out, "\n--%s", boundary))
		goto out;
	if (rlen) {
		if (!sa_cats(&out, ret == RET_FULL ? "\nContent-Type: message/rfc822\n" :
						     "\nContent-Type: text/rfc822-headers\n") ||
		    (sc.eightbit && !sa_cats(&out, "Content-Transfer-Encoding: 8bit\n")) ||
		    !sa_catc(&out, '\n') || !put_sa(&out, put, arg) ||
		    !put_original(fd, off, rlen, sc.last != '\n', put, arg))
			goto out;
		out.len = 0;
		if (!sa_catf(&out, "\n--%s", boundary))
			goto out;
	}
	if (!sa_cats(&out, "--\n") || !put_sa(&out, put, arg))
		goto out;
	ok = 1;
out:
	sa_free(&text);
	sa_free(&status);
	sa_free(&out);
	return ok;
}
