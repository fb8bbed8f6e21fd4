/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "getln.h"
#include "imap_cmd.h"

/* Where a command stands between its lines. */
struct reading {
	size_t depth;		/* open parentheses */
	size_t line_bytes;	/* every line's bytes so far */
	size_t literal_bytes;	/* every literal's bytes so far */
	int toobig;		/* an APPEND's literal was over its limit: the rest is skipped */
};

static int add_tok(struct imap_cmd *cmd, const struct imap_limits *lim, enum imap_tok_type type,
		   size_t off, size_t len)
{
	if (cmd->ntok == lim->tokens_max) {
		errno = E2BIG;
		return 0;
	}
	if (cmd->ntok == cmd->captok) {
		size_t cap = cmd->captok ? cmd->captok * 2 : 32;
		if (cap > lim->tokens_max)
			cap = lim->tokens_max;
		struct imap_tok *t = realloc(cmd->tok, cap * sizeof *t);
		if (!t)
			return 0;
		cmd->tok = t;
		cmd->captok = cap;
	}
	cmd->tok[cmd->ntok++] = (struct imap_tok){ type, off, len };
	return 1;
}

static int atom_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '"' && c != '{';
}

/* What a line announces at its end: a literal of size bytes (-1: none), which the client sends
   only after our "+" when sync is set; binary for a literal8 (~{n}). */
struct announced {
	long long size;
	int sync;
	int binary;
};

/* Cuts data[start..end) (a line without its CRLF) into tokens, and says what literal the line
   announces at its end. */
static enum imap_read_result cut_line(struct imap_cmd *cmd, const struct imap_limits *lim,
				      struct reading *r, size_t start, size_t end,
				      struct announced *lit, char *why, size_t whysize)
{
	char *s = cmd->data.s;
	size_t p = start;

	lit->size = -1;
	while (p < end) {
		unsigned char c = (unsigned char)s[p];
		if (c == ' ') {
			p++;
		} else if (c == '(') {
			if (++r->depth > lim->depth_max) {
				snprintf(why, whysize, "Too many nested parentheses");
				return IMAP_READ_BAD;
			}
			if (!add_tok(cmd, lim, IMAP_LPAREN, p++, 1))
				goto toks;
		} else if (c == ')') {
			if (r->depth == 0) {
				snprintf(why, whysize, "Unexpected ')'");
				return IMAP_READ_BAD;
			}
			r->depth--;
			if (!add_tok(cmd, lim, IMAP_RPAREN, p++, 1))
				goto toks;
		} else if (c == '"') {
			/* Unescaped in place: the string only gets shorter. */
			size_t from = ++p, to = p;
			for (;;) {
				if (p == end) {
					snprintf(why, whysize, "Missing '\"'");
					return IMAP_READ_BAD;
				}
				c = (unsigned char)s[p++];
				if (c == '"')
					break;
				if (c == '\\') {
					if (p == end || (s[p] != '"' && s[p] != '\\')) {
						snprintf(why, whysize, "Bad escape in a string");
						return IMAP_READ_BAD;
					}
					c = (unsigned char)s[p++];
				}
				s[to++] = (char)c;
			}
			if (!add_tok(cmd, lim, IMAP_QUOTED, from, to - from))
				goto toks;
		} else if (c == '{' || (c == '~' && p + 1 < end && s[p + 1] == '{')) {
			lit->binary = c == '~';
			size_t digits = p + 1 + (size_t)lit->binary, q = digits;
			unsigned long long n = 0;
			while (q < end && s[q] >= '0' && s[q] <= '9' && n < 1ULL << 40)
				n = n * 10 + (unsigned)(s[q++] - '0');
			lit->sync = 1;
			if (q < end && s[q] == '+') {
				lit->sync = 0;
				q++;
			}
			if (q == digits || q + 1 != end || s[q] != '}') {
				snprintf(why, whysize, "Bad literal");
				return IMAP_READ_BAD;
			}
			lit->size = (long long)n;
			return IMAP_READ_OK;
		} else if (c < ' ' || c == 0x7f) {
			snprintf(why, whysize, "Control character in the command");
			return IMAP_READ_BAD;
		} else {
			/* An atom; a '[' in it runs to its ']', spaces and parentheses included, for
			   FETCH's BODY[HEADER.FIELDS (From To)]<0.100>. */
			size_t from = p;
			while (p < end) {
				c = (unsigned char)s[p];
				if (c == '[') {
					char *close = memchr(s + p, ']', end - p);
					if (!close) {
						snprintf(why, whysize, "Missing ']'");
						return IMAP_READ_BAD;
					}
					p = (size_t)(close - s) + 1;
				} else if (atom_char(c) || c >= 0x80) {
					p++;
				} else {
					break;
				}
			}
			if (!add_tok(cmd, lim, IMAP_ATOM, from, p - from))
				goto toks;
		}
	}
	return IMAP_READ_OK;
toks:
	if (errno == E2BIG) {
		snprintf(why, whysize, "Too many arguments");
		return IMAP_READ_BAD;
	}
	snprintf(why, whysize, "Out of memory");
	return IMAP_READ_FATAL;
}

/* Reads n bytes of a literal into the command. 1, or 0 at end of input or on a read error. */
static int read_literal(struct imap_cmd *cmd, struct buf *in, size_t n)
{
	if (!sa_ready(&cmd->data, n))
		return 0;
	while (n) {
		if (!buf_unread(in)) {
			ssize_t r = buf_fill(in);
			if (r <= 0)
				return 0;
		}
		size_t take = buf_unread(in) < n ? buf_unread(in) : n;
		memcpy(cmd->data.s + cmd->data.len, buf_peek(in), take);
		buf_skip(in, take);
		cmd->data.len += take;
		n -= take;
	}
	cmd->data.s[cmd->data.len] = 0;
	return 1;
}

/* Throws away the next n bytes of input. 1, or 0 at end of input or on a read error. */
static int skip_input(struct buf *in, unsigned long long n)
{
	while (n) {
		if (!buf_unread(in)) {
			ssize_t r = buf_fill(in);
			if (r <= 0)
				return 0;
		}
		size_t take = buf_unread(in) < n ? buf_unread(in) : (size_t)n;
		buf_skip(in, take);
		n -= take;
	}
	return 1;
}

/* Throws away input up to the end of the current line. 1, or 0 when the input ended. */
static int drain_line(struct buf *in)
{
	char junk[512];
	size_t n;
	for (;;) {
		enum getln_result g = getln(in, junk, sizeof junk, &n, '\n');
		if (g == GETLN_OK)
			return 1;
		if (g != GETLN_TOOLONG)
			return 0;
	}
}

enum imap_read_result imap_cmd_read(struct imap_cmd *cmd, struct buf *in, struct buf *out,
				    const struct imap_limits *lim, char *why, size_t whysize)
{
	struct reading r = { 0, 0, 0, 0 };

	sa_truncate(&cmd->data, 0);
	cmd->ntok = 0;
	for (;;) {
		size_t room = lim->line_max - r.line_bytes;
		if (!sa_ready(&cmd->data, room + 1)) {
			snprintf(why, whysize, "Out of memory");
			return IMAP_READ_FATAL;
		}
		size_t start = cmd->data.len, n;
		enum getln_result g = getln(in, cmd->data.s + start, room + 1, &n, '\n');
		if (g == GETLN_EOF || g == GETLN_ERR)
			return IMAP_READ_EOF;
		if (g == GETLN_TOOLONG) {
			/* What followed might have been a literal's bytes: nothing after can be
			   trusted to be a command. */
			snprintf(why, whysize, "Command line too long");
			return IMAP_READ_FATAL;
		}
		cmd->data.len += n;
		cmd->data.s[cmd->data.len] = 0;
		r.line_bytes += n;
		size_t end = cmd->data.len - 1;
		if (end > start && cmd->data.s[end - 1] == '\r')
			end--;
		struct announced lit = { -1, 1, 0 };
		enum imap_read_result res = cut_line(cmd, lim, &r, start, end, &lit, why, whysize);
		if (res != IMAP_READ_OK) {
			/* A literal announced later on this line would be read as commands. */
			if (res == IMAP_READ_BAD && memchr(cmd->data.s + start, '{', end - start) &&
			    end > start && cmd->data.s[end - 1] == '}')
				return IMAP_READ_FATAL;
			return res;
		}
		if (lit.size < 0) {
			if (r.toobig)
				return IMAP_READ_TOOBIG;
			if (r.depth) {
				snprintf(why, whysize, "Missing ')'");
				return IMAP_READ_BAD;
			}
			return IMAP_READ_OK;
		}
		unsigned long long literal = (unsigned long long)lit.size;
		if (r.toobig) {
			/* Past a refused literal of an APPEND: a client that waits for us is told
			   now; one that does not is followed to the command's end. */
			if (lit.sync)
				return IMAP_READ_TOOBIG;
			if (literal > lim->discard_max)
				return IMAP_READ_TOOBIG_CLOSE;
			if (!skip_input(in, literal))
				return IMAP_READ_EOF;
			continue;
		}
		int append = cmd->ntok > 1 && imap_tok_is(cmd, 1, "APPEND");
		size_t one = append ? lim->append_max : lim->literal_max;
		size_t left = (append ? lim->append_total : lim->literal_max) - r.literal_bytes;
		if (literal > one || literal > left) {
			snprintf(why, whysize, "Literal too big (at most %zu bytes)",
				 one < left ? one : left);
			if (lit.sync)
				return IMAP_READ_TOOBIG;
			if (!append || literal > lim->discard_max)
				return IMAP_READ_TOOBIG_CLOSE;
			r.toobig = 1;
			if (!skip_input(in, literal))
				return IMAP_READ_EOF;
			continue;
		}
		if (lit.sync) {
			if (!buf_puts(out, "+ OK\r\n") || !buf_flush(out))
				return IMAP_READ_EOF;
		}
		size_t off = cmd->data.len;
		if (!read_literal(cmd, in, (size_t)literal))
			return IMAP_READ_EOF;
		r.literal_bytes += (size_t)literal;
		if (!add_tok(cmd, lim, lit.binary ? IMAP_LITERAL8 : IMAP_LITERAL, off,
			     (size_t)literal)) {
			snprintf(why, whysize, errno == E2BIG ? "Too many arguments" : "Out of memory");
			if (errno == E2BIG)
				return drain_line(in) ? IMAP_READ_BAD : IMAP_READ_EOF;
			return IMAP_READ_FATAL;
		}
	}
}

int imap_tok_is(const struct imap_cmd *cmd, size_t i, const char *word)
{
	size_t n = strlen(word);
	return i < cmd->ntok && cmd->tok[i].type == IMAP_ATOM && cmd->tok[i].len == n &&
	       !strncasecmp(IMAP_TOK(cmd, i), word, n);
}

int imap_tok_cstr(const struct imap_cmd *cmd, size_t i, char *out, size_t size)
{
	if (i >= cmd->ntok)
		return 0;
	const struct imap_tok *t = &cmd->tok[i];
	if (t->type == IMAP_LPAREN || t->type == IMAP_RPAREN || t->len >= size ||
	    memchr(cmd->data.s + t->off, 0, t->len))
		return 0;
	memcpy(out, cmd->data.s + t->off, t->len);
	out[t->len] = 0;
	return 1;
}

size_t imap_tok_skip(const struct imap_cmd *cmd, size_t i)
{
	if (i >= cmd->ntok || cmd->tok[i].type != IMAP_LPAREN)
		return i + 1;
	size_t depth = 0;
	for (; i < cmd->ntok; i++) {
		if (cmd->tok[i].type == IMAP_LPAREN)
			depth++;
		else if (cmd->tok[i].type == IMAP_RPAREN && --depth == 0)
			return i + 1;
	}
	return i;
}
