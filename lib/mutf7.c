/* postroom: ISC license, see LICENSE. */
#include <errno.h>

#include "mutf7.h"
#include "utf8.h"

static const char base64_digits[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == ',' ? 63 : -1;
}

static int printable(unsigned long c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* A bounded output: what does not fit is counted, not written, and reported at the end. */
struct out {
	char *s;
	size_t len, size;
	int full;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->s[o->len++] = c;
	else
		o->full = 1;
}

static int finish(struct out *o)
{
	if (o->full || !o->size) {
		if (o->size)
			o->s[0] = 0;
		errno = ENAMETOOLONG;
		return 0;
	}
	o->s[o->len] = 0;
	return 1;
}

/* The code point of the well-formed UTF-8 sequence s[0..len) (utf8_len's). */
static unsigned long code_point(const unsigned char *s, size_t len)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	unsigned long cp = s[0] & lead_mask[len];
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

static void put_utf8(struct out *o, unsigned long cp)
{
	if (cp < 0x80) {
		put(o, (char)cp);
	} else if (cp < 0x800) {
		put(o, (char)(0xc0 | cp >> 6));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put(o, (char)(0xe0 | cp >> 12));
		put(o, (char)(0x80 | (cp >> 6 & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	} else {
		put(o, (char)(0xf0 | cp >> 18));
		put(o, (char)(0x80 | (cp >> 12 & 0x3f)));
		put(o, (char)(0x80 | (cp >> 6 & 0x3f)));
		put(o, (char)(0x80 | (cp & 0x3f)));
	}
}

/* BASE64 of a run, 6 bits at a time as 16-bit units arrive; the last digit zero-padded. */
struct run {
	unsigned long bits;
	int nbits;
};

static void run_unit(struct out *o, struct run *r, unsigned unit)
{
	r->bits = r->bits << 16 | unit;
	r->nbits += 16;
	while (r->nbits >= 6) {
		r->nbits -= 6;
		put(o, base64_digits[(r->bits >> r->nbits) & 0x3f]);
	}
	r->bits &= (1ul << r->nbits) - 1;
}

int mutf7_from_utf8(const char *in, size_t n, char *out, size_t size)
{
	const unsigned char *u = (const unsigned char *)in;
	struct out o = { out, 0, size, 0 };
	size_t i = 0;

	while (i < n) {
		if (printable(u[i])) {
			put(&o, (char)u[i]);
			if (u[i++] == '&')
				put(&o, '-');
			continue;
		}
		/* Everything up to the next printable character in one run: the shortest form,
		   as Dovecot writes it. */
		struct run r = { 0, 0 };
		put(&o, '&');
		while (i < n && !printable(u[i])) {
			size_t len = utf8_len(u + i, n - i);
			if (!len || !u[i])
				return errno = EILSEQ, 0;
			unsigned long cp = code_point(u + i, len);
			i += len;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				run_unit(&o, &r, (unsigned)(0xd800 | cp >> 10));
				run_unit(&o, &r, (unsigned)(0xdc00 | (cp & 0x3ff)));
			} else {
				run_unit(&o, &r, (unsigned)cp);
			}
		}
		if (r.nbits)
			put(&o, base64_digits[(r.bits << (6 - r.nbits)) & 0x3f]);
		put(&o, '-');
	}
	return finish(&o);
}

/* Decodes the run of modified BASE64 at *p (just past its '&') up to its '-', *p moved past
   the '-'. 0 when it is not valid. */
static int decode_run(struct out *o, const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned long bits = 0;
	int nbits = 0;
	unsigned high = 0;

	for (; *s != '-'; s++) {
		int v = base64_value(*s);
		if (v < 0)
			return 0;	/* the NUL of a run that never ends, too */
		bits = bits << 6 | (unsigned)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unsigned unit = (unsigned)(bits >> nbits) & 0xffff;
		bits &= (1ul << nbits) - 1;
		if (high) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return 0;
			put_utf8(o, 0x10000 + ((unsigned long)(high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if ((unit >= 0xdc00 && unit <= 0xdfff) || printable(unit) || !unit) {
			return 0;	/* a NUL would cut the name short */
		} else {
			put_utf8(o, unit);
		}
	}
	/* What is left is the padding of the last digit: fewer than 6 bits, all zero. */
	if (high || nbits >= 6 || bits)
		return 0;
	*p = s + 1;
	return 1;
}

int mutf7_to_utf8(const char *in, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)in;
	struct out o = { out, 0, size, 0 };

	while (*p) {
		if (!printable(*p))
			return errno = EILSEQ, 0;
		if (*p != '&') {
			put(&o, (char)*p++);
		} else if (p[1] == '-') {
			put(&o, '&');
			p += 2;
		} else {
			p++;
			if (!decode_run(&o, &p))
				return errno = EILSEQ, 0;
		}
	}
	return finish(&o);
}

int mutf7_name_chars_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t len = utf8_len(u + i, n - i);
		if (!len)
			return 0;
		unsigned long cp = code_point(u + i, len);
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
			return 0;
		i += len;
	}
	return 1;
}
