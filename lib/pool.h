/* postroom: ISC license, see LICENSE. */
#ifndef POOL_H
#define POOL_H

#include <stddef.h>

/*
 * Sessions handed to a server that stays up between them (tls-server(8) to smtp-recv, and to
 * every server built on the same chain): the server is exec'd once, with POOLFD naming its end
 * of a SOCK_SEQPACKET socket, and each session arrives on it as one message: the session's
 * descriptors (SCM_RIGHTS) and its environment, "NAME=value\0" pairs. When the session is over
 * the server closes every descriptor it was given and answers with one byte, its exit code for
 * that session; then it waits for the next. End of file on POOLFD means there is no next.
 * Actions return 1, or 0 with errno set; pool_receive returns 0 at end of file (errno 0).
 */

/* At most this many descriptors per session: the client's input and output (the same socket
   twice, or the TLS layer's two pipes), then, for UCSPI-TLS, SSLCTLFD, SSLREADFD, SSLWRITEFD. */
#define POOL_FDS_MAX 5
/* A session's environment: the TCP variables and what tcprules adds. */
#define POOL_ENV_MAX 8192

struct pool_session {
	int fd[POOL_FDS_MAX];
	size_t nfd;
	char env[POOL_ENV_MAX];	/* NAME=value\0 pairs, len bytes */
	size_t len;
};
#define POOL_SESSION_ZERO { { -1, -1, -1, -1, -1 }, 0, { 0 }, 0 }

/* A new socket pair for one server: 1, or 0 with errno set. */
int pool_pair(int sv[2]);
/* Sends the session s on fd; the descriptors stay open on our side. */
int pool_send(int fd, const struct pool_session *s);
/* Receives one session on fd into s, its descriptors close-on-exec; 0 with errno 0 at EOF.
   A message with too many descriptors or an environment not made of whole pairs is EPROTO. */
int pool_receive(int fd, struct pool_session *s);
/* The session's exit code, one byte each way. pool_wait returns the code, or -1 (errno 0 at
   end of file: the server is gone). */
int pool_done(int fd, int code);
int pool_wait(int fd);

/*
 * A server that serves sessions at once (imap-serve, pop3-serve: a child for each) may be told
 * so with POOLSESSIONS=N: up to N sessions in flight on POOLFD, each ended, in whatever order,
 * by five bytes, the session's number (how many sessions came before it on POOLFD, 32 bits in
 * the host's order) and its code. Without it, one session at a time and one byte.
 */
#define POOL_SESSIONS_MAX 10000
int pool_done_numbered(int fd, unsigned number, int code);
/* The code, the session's number in *number; -1 as pool_wait (EPROTO: not five bytes). */
int pool_wait_numbered(int fd, unsigned *number);
/* POOLSESSIONS (then unset): 1 when unset, 0 when it is not a number from 1 to the most. */
unsigned pool_sessions_at_once(void);

/* POOLFD from the environment: the descriptor (made close-on-exec, and POOLFD unset, so that
   no program we run gets either), -1 when unset, -2 when it names no open descriptor. */
int pool_fd_from_env(void);

/* A server that takes one session after another keeps its own environment (the run script's)
   and gives each session that, plus the session's own pairs, nothing from the one before. */
int pool_env_save(void);
/*
 * Makes session s this process's own: fd[0] and fd[1] on 0 and 1; with five descriptors, the
 * UCSPI-TLS ones named by SSLCTLFD, SSLREADFD and SSLWRITEFD (and kept across exec); the saved
 * environment, if any, restored; then the session's pairs set. The other descriptors are
 * closed. The pairs stay valid until the next call.
 */
int pool_install(struct pool_session *s);
/* After a session: /dev/null on 0 and 1, and every descriptor above 2 but keep closed. */
int pool_release(int keep);

/*
 * The sessions of a server that forks a child for each (imap-serve, pop3-serve before login):
 * without POOLFD, serve(ctx) serves the one on descriptors 0 and 1; under tls-server, it runs
 * in a child forked for each session, installed, so that a session starts without an exec and
 * ends with all its state (a client that took over its process reaches no other session); the
 * session's code is the child's exit code. serve must exit. Exits 0 at the end of POOLFD.
 * With POOLSESSIONS, the children of several sessions run at once.
 */
_Noreturn void pool_serve_sessions(void (*serve)(const void *ctx), const void *ctx);

/*
 * A session's child may leave its parent a note before it execs a program that may fail (a
 * checkpassword program, which on success goes on as the session). If the process then ends
 * other than with exit 0 and the note is there, the parent starts the session again in a new
 * child, which finds the note and how the process before it ended (pool_resumed). So the
 * session needs no process of its own to wait for the program: the parent, which waits for
 * the session anyway, takes it back when the program refuses. The program that goes on as the
 * session says so (pool_session_started), and the note is void from then on: a session that
 * ends badly after its login is over, not taken back.
 */
#define POOL_NOTE_MAX 32768
/* 1, or 0 with errno set: ENOTSUP when there is no parent to keep it (no POOLFD). The note's
   descriptor then stays open across exec, named by POOLNOTEFD, for pool_session_started. */
int pool_note(const void *note, size_t len);
/* The note the session's previous child left, its length and that child's wait status; 0
   when this is the session's first child. The caller wipes it when done with it. */
void *pool_resumed(size_t *len, int *status);
/* In a child that will not leave a note, and runs code less trusted than its parent (a
   parser dropped to IMAP_LOGIN_USER): no channel to the parent. */
void pool_note_close(void);
/* In the program that goes on as the session after a note (imap-serve -A): the login is
   over, whatever the session's end; POOLNOTEFD closed and unset. Nothing without it. */
void pool_session_started(void);

#endif
