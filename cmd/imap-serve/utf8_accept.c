/* postroom: ISC license, see LICENSE. */
/*
 * UTF8=ACCEPT (RFC 6855). Once a session has enabled it, folder names are UTF-8 on the wire
 * both ways, and quoted strings may hold UTF-8; on disk they stay modified UTF-7, so that
 * Dovecot, and sessions that did not enable it, read the same Maildir. Message headers go out
 * as they are in either kind of session (8-bit text in literals, never quoted), as Dovecot
 * 2.3 sends them; an APPEND of a message with 8-bit headers needs the session to have enabled
 * it (section 4).
 */
#include <errno.h>
#include <string.h>

#include "imap-serve.h"
#include "mutf7.h"
#include "utf8.h"

/* Folder names in UTF-8 on the wire: after ENABLE UTF8=ACCEPT, or IMAP4rev2's, whose names
   are UTF-8 too (RFC 9051 section 5.1). */
static int utf8_wire(const struct session *s)
{
	return s->enabled_utf8 || s->rev2;
}

/* Room for a folder name in UTF-8: a modified UTF-7 name of FOLDER_NAME_MAX bytes decodes to
   at most 9 bytes per 8 BASE64 digits. */
#define WIRE_NAME_MAX (2 * FOLDER_NAME_MAX)

int utf8_command_ok(struct session *s)
{
	const struct imap_cmd *cmd = &s->c.cmd;

	if (!utf8_wire(s))
		return 1;
	for (size_t i = 0; i < cmd->ntok; i++) {
		const struct imap_tok *t = &cmd->tok[i];
		if (t->type != IMAP_QUOTED && t->type != IMAP_ATOM)
			continue;
		const unsigned char *u = (const unsigned char *)IMAP_TOK(cmd, i);
		for (size_t k = 0; k < t->len;) {
			size_t len = utf8_len(u + k, t->len - k);
			if (!len) {
				/* Section 3: "MUST reject, with a BAD response". */
				bad(&s->c, s->cf, "Not valid UTF-8 in a string");
				return 0;
			}
			k += len;
		}
	}
	return 1;
}

int folder_from_wire(struct session *s, char *name, size_t size)
{
	char utf8[FOLDER_NAME_MAX];

	if (!utf8_wire(s))
		return 1;
	size_t n = strlen(name);
	if (n >= sizeof utf8)
		return errno = ENAMETOOLONG, 0;
	memcpy(utf8, name, n + 1);
	return mutf7_from_utf8(utf8, n, name, size);
}

const char *folder_to_wire(struct session *s, const char *name, char *buf, size_t size)
{
	/* A name that is not modified UTF-7 (only a client's own argument can be one) goes
	   back as the client gave it. */
	if (!utf8_wire(s) || !mutf7_to_utf8(name, buf, size))
		return name;
	return buf;
}

void out_wire_name(struct session *s, const char *wire)
{
	size_t n = strlen(wire);
	int quotable = utf8_wire(s) && n < 1024 && !strpbrk(wire, "\r\n");

	if (!quotable) {
		out_string(&s->c, wire, n);
		return;
	}
	/* Section 3: UTF-8 in quoted strings, once the client said it takes them. */
	out_bytes(&s->c, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (wire[i] == '"' || wire[i] == '\\')
			out_bytes(&s->c, "\\", 1);
		out_bytes(&s->c, wire + i, 1);
	}
	out_bytes(&s->c, "\"", 1);
}

void out_folder_name(struct session *s, const char *name)
{
	char buf[WIRE_NAME_MAX];
	out_wire_name(s, folder_to_wire(s, name, buf, sizeof buf));
}

int folder_name_chars_ok(const char *name)
{
	char buf[WIRE_NAME_MAX];
	return mutf7_to_utf8(name, buf, sizeof buf) && mutf7_name_chars_ok(buf, strlen(buf));
}

int header_has_8bit(const char *m, size_t n)
{
	int line_start = 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m[i];
		/* The empty line that ends the header, CRLF or a bare LF. */
		if (line_start && (c == '\n' || (c == '\r' && i + 1 < n && m[i + 1] == '\n')))
			return 0;
		if (c >= 0x80)
			return 1;
		line_start = c == '\n';
	}
	return 0;
}
