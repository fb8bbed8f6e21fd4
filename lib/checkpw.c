/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "checkpw.h"
#include "die.h"

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
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && wrote)
		return CHECKPW_ACCEPTED;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		return CHECKPW_REFUSED;
	snprintf(why, whysize, "%s %s %d", name, WIFEXITED(status) ? "exited" : "was killed by signal",
		 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
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
