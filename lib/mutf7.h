/* postroom: ISC license, see LICENSE. */
#ifndef MUTF7_H
#define MUTF7_H

#include <stddef.h>

/*
 * Folder names between UTF-8 and IMAP's modified UTF-7 (RFC 3501 section 5.1.3), the form
 * they have on the wire for clients that did not enable UTF8=ACCEPT (RFC 6855) and on disk
 * (Dovecot's Maildir++ layout). Printable US-ASCII stands for itself, '&' as "&-"; any other
 * character goes, as UTF-16, in a run of modified BASE64 ('+' and ',') between '&' and '-'.
 *
 * Both are actions: 1, or 0 with errno EILSEQ when the input is not well-formed (UTF-8 that is
 * not RFC 3629's or holds a NUL; modified UTF-7 with a byte outside printable US-ASCII, a
 * run that is not whole UTF-16, a lone surrogate, or a printable character in BASE64), or
 * ENAMETOOLONG when the result and its NUL do not fit in size bytes. out is NUL-terminated.
 */
int mutf7_from_utf8(const char *in, size_t n, char *out, size_t size);
int mutf7_to_utf8(const char *in, char *out, size_t size);

/*
 * 1 when the UTF-8 s[0..n) is well-formed and holds none of the characters RFC 6855 section 3
 * keeps out of mailbox names: the controls U+0000-U+001F and U+0080-U+009F, DEL (U+007F),
 * and the line and paragraph separators (U+2028, U+2029).
 */
int mutf7_name_chars_ok(const char *s, size_t n);

#endif
