/* postroom: ISC license, see LICENSE. */
#include <string.h>

#include "addr.h"
#include "utf8.h"

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext, plus every byte >= 0x80 when UTF-8 is allowed (RFC 6531 atext). */
static int is_atext(unsigned char c, int flags)
{
	if (c >= 0x80)
		return flags & ADDR_UTF8;
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* 1 if every byte >= 0x80 in s[0..n) is part of well-formed UTF-8. */
static int utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(u + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

static enum addr_result check_local(const char *s, size_t n, int flags)
{
	if (n == 0)
		return ADDR_SYNTAX;
	if (n > ADDR_LOCAL_MAX)
		return ADDR_TOOLONG;
	if (s[0] == '"') {
		/* Quoted-string: qtextSMTP or quoted-pairSMTP between the quotes. */
		if (n < 2 || s[n - 1] != '"')
			return ADDR_SYNTAX;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (++i >= n - 1)
					return ADDR_SYNTAX;
				c = (unsigned char)s[i];
				if (c < 32 || c > 126)
					return ADDR_SYNTAX;
			} else if (c == '"' || c < 32 || c == 127 || (c >= 0x80 && !(flags & ADDR_UTF8))) {
				return ADDR_SYNTAX;
			}
		}
	} else {
		/* Dot-string: atoms separated by single dots. */
		if (s[0] == '.' || s[n - 1] == '.')
			return ADDR_SYNTAX;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '.') {
				if (s[i + 1] == '.')
					return ADDR_SYNTAX;
			} else if (!is_atext(c, flags)) {
				return ADDR_SYNTAX;
			}
		}
	}
	return (flags & ADDR_UTF8) && !utf8_valid(s, n) ? ADDR_SYNTAX : ADDR_OK;
}

static int check_literal(const char *s, size_t n)
{
	/* "[" (IPv4 | "IPv6:" IPv6 | tag ":" content) "]": checked for shape, not for meaning. */
	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
			return 0;
	}
	return 1;
}

enum addr_result addr_check_domain(const char *s, size_t n, int flags)
{
	if (n == 0)
		return ADDR_SYNTAX;
	if (n > ADDR_DOMAIN_MAX)
		return ADDR_TOOLONG;
	if (s[0] == '[')
		return check_literal(s, n) ? ADDR_OK : ADDR_SYNTAX;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return ADDR_SYNTAX;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return ADDR_SYNTAX;
		if (!is_alnum(c) && c != '-' && !(c >= 0x80 && (flags & ADDR_UTF8)))
			return ADDR_SYNTAX;
		if (++label > 63)
			return ADDR_SYNTAX;
	}
	if (label == 0 || s[n - 1] == '-')
		return ADDR_SYNTAX;
	return (flags & ADDR_UTF8) && !utf8_valid(s, n) ? ADDR_SYNTAX : ADDR_OK;
}

size_t addr_at(const char *s, size_t n)
{
	for (size_t i = n; i > 0; i--)
		if (s[i - 1] == '@')
			return i - 1;
	return n;
}

enum addr_result addr_check_mailbox(const char *s, size_t n, int flags)
{
	size_t at = addr_at(s, n);

	if (at == n)
		return ADDR_SYNTAX;
	enum addr_result r = check_local(s, at, flags);
	if (r != ADDR_OK)
		return r;
	return addr_check_domain(s + at + 1, n - at - 1, flags);
}

enum addr_result addr_parse_path(const char *s, size_t n, size_t *start, size_t *len, int flags)
{
	if (n > ADDR_PATH_MAX)
		return ADDR_TOOLONG;
	if (n < 2 || s[0] != '<' || s[n - 1] != '>')
		return ADDR_SYNTAX;
	size_t i = 1, end = n - 1;
	if (i < end && s[i] == '@') {
		/* A-d-l: "@domain" ("," "@domain")* ":" */
		while (i < end && s[i] == '@') {
			size_t j = i + 1;
			while (j < end && s[j] != ',' && s[j] != ':')
				j++;
			if (j == end || addr_check_domain(s + i + 1, j - i - 1, flags) != ADDR_OK)
				return ADDR_SYNTAX;
			i = j + 1;
			if (s[j] == ':')
				break;
		}
		if (s[i - 1] != ':')
			return ADDR_SYNTAX;
	}
	*start = i;
	*len = end - i;
	if (*len == 0)
		return i == 1 ? ADDR_OK : ADDR_SYNTAX;
	return addr_check_mailbox(s + i, end - i, flags);
}

void addr_lower(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}
