/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_RECV_H
#define SMTP_RECV_H

#include <stddef.h>

#include "buf.h"
#include "sa.h"
#include "userdb.h"

/* What main read from the environment; frozen before the session starts. */
struct config {
	const char *hostname;
	const char *queuedir;
	const char *userdb;
	const char *qmailqueue;		/* external queue program, or 0: in-process */
	const char *delimiters;
	const char *remoteip;
	const char *localip;
	int relayclient;
	unsigned long databytes;	/* message size limit (SIZE) */
	unsigned long maxrcpt;
	unsigned long maxerrors;
	unsigned long maxcommands;
	unsigned long line_max;		/* command line, CRLF included */
	unsigned long text_max;		/* text line in DATA, CRLF included */
	unsigned long timeout;		/* seconds for each read */
	unsigned long data_timeout;	/* seconds for all of DATA */
};

struct session {
	const struct config *c;
	struct buf in;
	struct buf out;
	char inspace[8192];
	char outspace[4096];
	int hello;		/* 0 none yet, 1 HELO, 2 EHLO */
	char helo[256];		/* the client's name, made safe for a header */
	int in_mail;		/* MAIL given */
	int utf8;		/* MAIL ... SMTPUTF8 */
	struct sa sender;
	struct sa rcpts;	/* accepted recipients, each NUL-terminated */
	size_t nrcpt;
	unsigned long errors;
	unsigned long commands;
	unsigned long messages;
	struct userdb db;
	int db_open;
};

/* session.c: the command loop; returns the exit code. */
int session_run(struct session *s);
/* Writes one reply line (CRLF added); buffered until the client waits for it. */
void reply(struct session *s, const char *line);
/* Forgets the mail transaction (RSET, EHLO, and after DATA). */
void session_reset(struct session *s);
/* Ends the session after a last reply, with a log line. */
_Noreturn void session_end(struct session *s, const char *line, int code);

/* data.c: DATA, from 354 to the final reply. */
void smtp_data(struct session *s);

#endif
