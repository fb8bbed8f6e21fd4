/* postroom: ISC license, see LICENSE. */
#ifndef ADDR_H
#define ADDR_H

#include <stddef.h>

/*
 * RFC 5321 addresses (section 4.1.2), with RFC 6531's UTF-8 when asked for.
 * A mailbox is "local@domain" with no angle brackets: the local part a dot-string or a
 * quoted string, the domain a host name or an address literal such as [192.0.2.1].
 */

#define ADDR_LOCAL_MAX 64	/* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256	/* RFC 5321 4.5.3.1.3, angle brackets included */

enum addr_result {
	ADDR_OK,
	ADDR_SYNTAX,
	ADDR_TOOLONG,
};

/* Flags for the parsers. */
#define ADDR_UTF8 1	/* accept UTF-8 in local part and domain (SMTPUTF8) */

/* Checks that s[0..n) is a mailbox. */
enum addr_result addr_check_mailbox(const char *s, size_t n, int flags);
/* Checks that s[0..n) is a domain: host name (letters, digits, hyphens, dots) or address literal. */
enum addr_result addr_check_domain(const char *s, size_t n, int flags);

/*
 * Parses an SMTP reverse-path or forward-path "<...>" at s[0..n) (MAIL FROM / RCPT TO argument,
 * without parameters). A source route "<@a,@b:user@host>" is accepted and dropped (RFC 5321
 * appendix C). On ADDR_OK, the mailbox is at s[*start..*start+*len), empty for "<>".
 */
enum addr_result addr_parse_path(const char *s, size_t n, size_t *start, size_t *len, int flags);

/* Offset of the '@' that separates local part from domain (the last one), or n if none. */
size_t addr_at(const char *s, size_t n);
/* Lower-cases ASCII letters in place; UTF-8 bytes are left alone. */
void addr_lower(char *s, size_t n);

#endif
