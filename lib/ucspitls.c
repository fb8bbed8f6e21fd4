/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ucspitls.h"

static int fd_from(const char *name)
{
	const char *v = getenv(name);
	char *end;

	if (!v || !*v)
		return -1;
	long fd = strtol(v, &end, 10);
	if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0)
		return -1;
	return (int)fd;
}

int ucspitls_available(struct ucspitls *t)
{
	const char *mode = getenv("UCSPITLS");

	t->ctl = fd_from("SSLCTLFD");
	t->rfd = fd_from("SSLREADFD");
	t->wfd = fd_from("SSLWRITEFD");
	/* A checkpassword or queue program has no business with the TLS layer, whether we use it
	   or not. */
	if (t->ctl >= 0)
		fcntl(t->ctl, F_SETFD, FD_CLOEXEC);
	if (t->rfd >= 0)
		fcntl(t->rfd, F_SETFD, FD_CLOEXEC);
	if (t->wfd >= 0)
		fcntl(t->wfd, F_SETFD, FD_CLOEXEC);
	/* Unset or "-": the server above us does not want STARTTLS offered (tls-wrap(8)). */
	return t->ctl >= 0 && t->rfd >= 0 && t->wfd >= 0 && mode && strcmp(mode, "-");
}

int ucspitls_required(void)
{
	const char *mode = getenv("UCSPITLS");

	return mode && !strcmp(mode, "!");
}

/* The SSL_ pairs of x (NAME=value\0..., len bytes) into the environment, which keeps x. */
static int put_details(char *x, size_t len)
{
	int any = 0;
	for (size_t i = 0; i < len && x[i];) {
		char *pair = x + i;
		size_t n = strnlen(pair, len - i);
		if (i + n == len)
			break;	/* cut short: not a whole pair */
		/* Only the TLS layer's own names: the reply must not reach into other settings. */
		if (strchr(pair, '=') && !strncmp(pair, "SSL_", 4) && putenv(pair) == 0)
			any = 1;
		i += n + 1;
	}
	return any;
}

/* Reads the "NAME=value\0...\0" reply into the environment; 1 if it held anything. The pairs
   stay in x, which the environment points into (putenv): setenv would keep a copy of each, for
   good, in a process that serves one session after another (tls-server), and the client chooses
   some of them (the SNI name). A session's environment is made anew before the next one's
   details overwrite x (pool_install). */
static int read_details(int fd)
{
	static char x[4096];
	size_t len = 0;

	while (len < sizeof x) {
		ssize_t r = read(fd, x + len, sizeof x - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len >= 2 && x[len - 1] == 0 && x[len - 2] == 0)
			break;
		if (len == 1 && x[0] == 0)
			break;
	}
	return put_details(x, len);
}

int ucspitls_start(struct ucspitls *t)
{
	if (write(t->ctl, "Y", 1) != 1)
		return 0;
	int ok = read_details(t->ctl);
	close(t->ctl);
	if (!ok || dup2(t->rfd, 0) < 0 || dup2(t->wfd, 1) < 0)
		return 0;
	close(t->rfd);
	close(t->wfd);
	return 1;
}

int ucspitls_resume(struct ucspitls *t, char *details, size_t len)
{
	put_details(details, len);
	close(t->ctl);
	if (dup2(t->rfd, 0) < 0 || dup2(t->wfd, 1) < 0)
		return 0;
	close(t->rfd);
	close(t->wfd);
	return 1;
}
