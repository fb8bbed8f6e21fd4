/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "checkpw.h"
#include "die.h"
#include "log.h"
#include "pool.h"

extern char **environ;

static enum checkpw_verdict verdict_of(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return CHECKPW_ACCEPTED;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return CHECKPW_REFUSED;
	return CHECKPW_TROUBLE;
}

/* What a checkpassword program that was not clear did, for the log. */
static void trouble(int status, const char *name, char *why, size_t whysize)
{
	snprintf(why, whysize, "%s %s %d", name, WIFEXITED(status) ? "exited" : "was killed by signal",
		 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

enum checkpw_verdict checkpw_run(const char *cred, size_t len, const char *name,
				 void (*exec_child)(void *ctx), void *ctx, char *why,
				 size_t whysize)
{
	int p[2];

	if (pipe(p) < 0) {
		snprintf(why, whysize, "unable to make a pipe: %s", strerror(errno));
		return CHECKPW_TROUBLE;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(why, whysize, "unable to fork: %s", strerror(errno));
		close(p[0]), close(p[1]);
		return CHECKPW_TROUBLE;
	}
	if (pid == 0) {
		if (p[0] != 3) {
			if (dup2(p[0], 3) < 0)
				_exit(EXIT_TEMP);
			close(p[0]);
		}
		if (p[1] != 3)
			close(p[1]);
		signal(SIGPIPE, SIG_DFL);
		exec_child(ctx);
		_exit(EXIT_TEMP);	/* it should not have come back */
	}
	close(p[0]);
	int wrote = fd_write_all(p[1], cred, len);
	close(p[1]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, whysize, "unable to wait: %s", strerror(errno));
			return CHECKPW_TROUBLE;
		}
	enum checkpw_verdict v = verdict_of(status);
	if (v == CHECKPW_REFUSED || (v == CHECKPW_ACCEPTED && wrote))
		return v;
	trouble(status, name, why, whysize);
	return CHECKPW_TROUBLE;
}

int checkpw_pending_export(const char *var, const char *data, size_t len)
{
	unsetenv(var);
	if (!len)
		return 1;
	char *enc = malloc(BASE64_LEN(len) + 1);
	if (!enc)
		return 0;
	base64_encode(data, len, enc);
	int ok = setenv(var, enc, 1) == 0;
	free(enc);
	return ok;
}

int checkpw_pending_import(const char *var, struct buf *in)
{
	const char *enc = getenv(var);
	size_t n;

	if (!enc || !*enc)
		return 1;
	if (!base64_decode(enc, strlen(enc), in->x, in->cap, &n)) {
		errno = EINVAL;
		return 0;
	}
	in->pos = 0;
	in->len = n;
	unsetenv(var);
	return 1;
}

/* Becomes the checkpassword program, with the credentials on fd 3 (a pipe they fit in);
   returns only when they could not be put there. */
static void exec_with_credentials(const char *cred, size_t len, void (*exec_child)(void *ctx),
				  void *ctx)
{
	int p[2];

	if (len > PIPE_BUF) {
		errno = EMSGSIZE;
		return;
	}
	if (pipe(p) < 0)
		return;
	int ok = fd_write_all(p[1], cred, len);
	close(p[1]);
	if (!ok || (p[0] != 3 && (dup2(p[0], 3) < 0 || close(p[0]) < 0))) {
		int e = errno;
		close(p[0]);
		errno = e;
		return;
	}
	signal(SIGPIPE, SIG_DFL);
	exec_child(ctx);
}

void checkpw_exec_noted(struct checkpw_note *n, const struct buf *in, const char *cred,
			size_t len, void (*exec_child)(void *ctx), void *ctx)
{
	n->tlslen = 0;
	for (char **e = environ; n->st.started_tls && *e; e++) {
		size_t k = strlen(*e) + 1;
		if (!strncmp(*e, "SSL_", 4) && k <= sizeof n->tls - n->tlslen) {
			memcpy(n->tls + n->tlslen, *e, k);
			n->tlslen += k;
		}
	}
	n->unread = buf_unread(in);
	if (n->unread > sizeof n->input)
		die(EXIT_TEMP, "more input than a note holds");
	memcpy(n->input, buf_peek(in), n->unread);
	int ok = pool_note(n, offsetof(struct checkpw_note, input) + n->unread);
	int e = errno;
	explicit_bzero(n, offsetof(struct checkpw_note, input) + n->unread);
	/* A datagram is whole or not sent: without one the caller waits for the program. */
	if (!ok) {
		if (e != ENOTSUP)
			log_line("trouble: unable to leave a note for tls-server's pool: %s",
				 strerror(e));
		return;
	}
	exec_with_credentials(cred, len, exec_child, ctx);
	die_sys("unable to hand the credentials to the checkpassword program");
}

struct checkpw_note *checkpw_resumed(struct ucspitls *t, struct buf *in,
				     struct checkpw_state *st, enum checkpw_verdict *v)
{
	static char tls[sizeof ((struct checkpw_note *)0)->tls];	/* the environment keeps it */
	size_t len;
	int status;
	struct checkpw_note *n = pool_resumed(&len, &status);

	if (!n)
		return 0;
	if (len < offsetof(struct checkpw_note, input) || n->unread > sizeof n->input ||
	    len != offsetof(struct checkpw_note, input) + n->unread || n->unread > in->cap ||
	    n->tlslen > sizeof n->tls)
		die(EXIT_TEMP, "the note of the session's last process is cut short");
	memcpy(tls, n->tls, n->tlslen);
	if (n->st.started_tls && !ucspitls_resume(t, tls, n->tlslen))
		die_sys("unable to take the TLS session back");
	memcpy(in->x, n->input, n->unread);
	in->pos = 0;
	in->len = n->unread;
	n->tag[sizeof n->tag - 1] = 0;
	*st = n->st;
	*v = verdict_of(status);
	if (*v == CHECKPW_TROUBLE) {
		char why[256];
		trouble(status, "the checkpassword program", why, sizeof why);
		log_line("trouble: %s", why);
	}
	return n;
}
