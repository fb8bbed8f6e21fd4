/* postroom: ISC license, see LICENSE. */
#ifndef IMAP_CMD_H
#define IMAP_CMD_H

#include <stddef.h>

#include "buf.h"
#include "sa.h"

/*
 * Reading IMAP commands (RFC 3501 section 2.2, with LITERAL+ from RFC 7888 and BINARY's literal8
 * from RFC 3516): a command is a line, or lines joined by literals, read whole into one bounded
 * buffer and cut into tokens. Nothing a peer sends makes this allocate more than the limits
 * below: a line longer than line_max, a literal longer than its limit, more tokens or deeper
 * parentheses than allowed end the command with a reason, and the rest of it is thrown away as
 * it arrives. A literal over its limit that the client sends without waiting (LITERAL+) is
 * read and thrown away in APPEND (up to discard_max), whose limit the client cannot always know
 * (RFC 7889); in any other command it ends the connection, as Dovecot does.
 */

enum imap_tok_type {
	IMAP_ATOM,	/* includes NIL and atoms with a [section]<partial> (FETCH's BODY[...]) */
	IMAP_QUOTED,
	IMAP_LITERAL,
	IMAP_LITERAL8,	/* ~{n}: may hold NULs (RFC 3516) */
	IMAP_LPAREN,
	IMAP_RPAREN,
};

struct imap_tok {
	enum imap_tok_type type;
	size_t off;	/* into the command's bytes (imap_cmd.data); quoted strings unescaped */
	size_t len;
};

struct imap_limits {
	size_t line_max;	/* one line, without literals */
	size_t literal_max;	/* one literal, in any command but APPEND */
	size_t append_max;	/* one APPEND message (APPENDLIMIT) */
	size_t append_total;	/* every message of one APPEND (MULTIAPPEND) */
	unsigned long long discard_max;	/* a non-synchronizing APPEND literal over its limit
					   but not over this is read and thrown away; a longer
					   one closes the connection */
	size_t tokens_max;
	size_t depth_max;	/* nested parentheses */
};

struct imap_cmd {
	struct sa data;	/* the command's bytes; tokens point into it */
	struct imap_tok *tok;
	size_t ntok;
	size_t captok;
};
/* Token 0 is the tag, token 1 the command's name. */

enum imap_read_result {
	IMAP_READ_OK,
	IMAP_READ_EOF,		/* the client is gone, or a read failed (errno) */
	IMAP_READ_BAD,		/* a command we answer BAD to (why says why); go on reading */
	IMAP_READ_TOOBIG,	/* an APPEND's literal (or a synchronizing one) over its limit:
				   NO [TOOBIG], go on */
	IMAP_READ_TOOBIG_CLOSE,	/* a non-synchronizing literal over its limit that is not
				   thrown away: BAD [TOOBIG] (RFC 7888 section 4), BYE, close */
	IMAP_READ_FATAL,	/* the stream cannot be followed any more: BYE and close */
};

/*
 * Reads one command from in. For a synchronizing literal it writes the continuation request
 * ("+ OK\r\n") to out and flushes it. The tag, when one could be read, is left in cmd even when
 * the result is BAD or TOOBIG, so that the reply can carry it (cmd->ntok > 0).
 */
enum imap_read_result imap_cmd_read(struct imap_cmd *cmd, struct buf *in, struct buf *out,
				    const struct imap_limits *lim, char *why, size_t whysize);

/* Token i's bytes (not NUL-terminated, unless copied with imap_tok_cstr). */
#define IMAP_TOK(cmd, i) ((cmd)->data.s + (cmd)->tok[i].off)
/* 1 when token i is an atom equal to word, without case. */
int imap_tok_is(const struct imap_cmd *cmd, size_t i, const char *word);
/* 1 when token i is a string or atom (an IMAP astring) with no NUL byte, copied, NUL-terminated,
   into out (size bytes); 0 when it is not, or would not fit. */
int imap_tok_cstr(const struct imap_cmd *cmd, size_t i, char *out, size_t size);
/* The index just past the list that opens at token i (a LPAREN), or i + 1 for any other token. */
size_t imap_tok_skip(const struct imap_cmd *cmd, size_t i);

#endif
