/* postroom: ISC license, see LICENSE. */
#include <string.h>
#include <strings.h>

#include "dsn_param.h"

/* Is s[0..n) the word w, in any case? */
static int word_is(const char *s, size_t n, const char *w)
{
	return n == strlen(w) && !strncasecmp(s, w, n);
}

int dsn_ret_ok(const char *s, size_t n)
{
	return word_is(s, n, "FULL") || word_is(s, n, "HDRS");
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * xtext (RFC 3461 section 4): xchar ("!" to "~" but "+" and "=") or "+" and two upper-case hex
 * digits, standing for printable ASCII (RFC 3461 4.2 and 4.4, "graphic and white space"): "!"
 * to "~", or a space ("+20").
 */
static int xtext_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '+') {
			if (n - i < 3 || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0)
				return 0;
			c = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
			i += 2;
			if (c == ' ')
				continue;
		} else if (c == '=') {
			return 0;
		}
		if (c < '!' || c > '~')
			return 0;
	}
	return 1;
}

int dsn_envid_ok(const char *s, size_t n)
{
	return n >= 1 && n <= DSN_ENVID_MAX && xtext_ok(s, n);
}

int dsn_notify_ok(const char *s, size_t n)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned seen = 0;

	if (word_is(s, n, "NEVER"))
		return 1;
	for (size_t i = 0; i <= n;) {
		size_t w = 0;
		while (i + w < n && s[i + w] != ',')
			w++;
		size_t k = 0;
		while (k < 3 && !word_is(s + i, w, words[k]))
			k++;
		if (k == 3 || (seen & (1u << k)))
			return 0;	/* unknown, empty, NEVER among others, or twice */
		seen |= 1u << k;
		i += w + 1;
	}
	return 1;
}

int dsn_orcpt_ok(const char *s, size_t n)
{
	/* atext (RFC 5322 3.2.3) but "=", which no ESMTP value may hold (RFC 5321 4.1.2) */
	static const char atext[] = "!#$%&'*+-/?^_`{|}~";
	size_t t = 0;

	if (n > DSN_ORCPT_MAX)
		return 0;
	while (t < n && s[t] != ';') {
		unsigned char c = (unsigned char)s[t];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(atext, c))))
			return 0;
		t++;
	}
	return t > 0 && t + 1 < n && xtext_ok(s + t + 1, n - t - 1);
}
