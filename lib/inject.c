/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmt.h"
#include "inject.h"

#define EXIT_EXEC 120	/* the child could not run the program */

int inject_start(struct inject *j, const char *queuedir, const char *program)
{
	j->write_errno = 0;
	j->external = program && *program;
	if (!j->external) {
		if (!queue_new_open(&j->q, queuedir))
			return 0;
		memcpy(j->id, j->q.id, sizeof j->id);
		return 1;
	}
	int msg[2], env[2], err[2];
	if (pipe(msg) < 0)
		return 0;
	if (pipe(env) < 0) {
		close(msg[0]), close(msg[1]);
		return 0;
	}
	if (pipe(err) < 0) {
		close(msg[0]), close(msg[1]), close(env[0]), close(env[1]);
		return 0;
	}
	j->pid = fork();
	if (j->pid < 0) {
		int e = errno;
		close(msg[0]), close(msg[1]), close(env[0]), close(env[1]);
		close(err[0]), close(err[1]);
		errno = e;
		return 0;
	}
	if (j->pid == 0) {
		/* The pipes may sit anywhere from 3 up, 6 included: lift the three ends above 6
		   before any dup2, so that none of them is overwritten on its way to 0, 1 or 6. */
		int in = fcntl(msg[0], F_DUPFD, 7), out = fcntl(env[0], F_DUPFD, 7);
		int err6 = fcntl(err[1], F_DUPFD, 7);
		if (in < 0 || out < 0 || err6 < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(err6, 6) < 0)
			_exit(EXIT_EXEC);
		for (int fd = 3; fd < 6; fd++)
			close(fd);
		int extra[] = { msg[0], msg[1], env[0], env[1], err[0], err[1], in, out, err6 };
		for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
			if (extra[i] > 6)
				close(extra[i]);
		signal(SIGPIPE, SIG_DFL);
		execl(program, program, (char *)0);
		_exit(EXIT_EXEC);
	}
	close(msg[0]);
	close(env[0]);
	close(err[1]);
	j->msgfd = msg[1];
	j->envfd = env[1];
	j->errfd = err[0];
	buf_init(&j->out, j->msgfd, j->space, sizeof j->space);
	queue_make_id(j->id);
	return 1;
}

void inject_put(struct inject *j, const char *s, size_t n)
{
	if (j->write_errno)
		return;
	int ok = j->external ? buf_put(&j->out, s, n) : queue_new_message(&j->q, s, n);
	if (!ok)
		j->write_errno = errno ? errno : EIO;
}

static void say(struct inject_result *r, int ok, int temporary, const char *text)
{
	r->ok = ok;
	r->temporary = temporary;
	str_copy(r->text, sizeof r->text, text);
}

/* What qmail-queue's exit codes mean, in the words of an SMTP reply. */
static void explain(struct inject_result *r, int code)
{
	switch (code) {
	case 11:
		say(r, 0, 0, "5.1.3 envelope address too long for the queue");
		break;
	case 31:
		say(r, 0, 0, "5.3.0 mail server permanently rejected the message");
		break;
	case 51:
		say(r, 0, 1, "4.3.0 out of memory in the queue");
		break;
	case 53:
		say(r, 0, 1, "4.3.0 write error in the queue: disk full?");
		break;
	case 71:
		say(r, 0, 1, "4.3.0 mail server temporarily rejected the message");
		break;
	case 91:
		say(r, 0, 0, "5.3.0 envelope format error");
		break;
	case EXIT_EXEC:
		say(r, 0, 1, "4.3.0 unable to run the queue program");
		break;
	default:
		if (code >= 11 && code <= 40)
			say(r, 0, 0, "5.3.0 the queue refused the message");
		else
			say(r, 0, 1, "4.3.0 temporary queue failure");
	}
}

static int put_envelope(struct buf *b, const char *sender, const char *items, size_t len)
{
	return buf_put(b, "F", 1) && buf_put(b, sender, strlen(sender) + 1) &&
	       buf_put(b, items, len) && buf_put(b, "", 1) && buf_flush(b);
}

static void finish_inprocess(struct inject *j, const char *sender, const char *items,
			     size_t len, struct inject_result *r)
{
	int ok = !j->write_errno && queue_new_envelope(&j->q, "F", 1) &&
		 queue_new_envelope(&j->q, sender, strlen(sender) + 1) &&
		 queue_new_envelope(&j->q, items, len) && queue_new_envelope(&j->q, "", 1);
	if (ok)
		ok = queue_new_commit(&j->q);
	else
		queue_new_abort(&j->q);
	if (ok) {
		memcpy(j->id, j->q.id, sizeof j->id);
		say(r, 1, 0, "");
		return;
	}
	char text[200];
	snprintf(text, sizeof text, "4.3.0 unable to queue the message: %s",
		 strerror(j->write_errno ? j->write_errno : errno));
	say(r, 0, 1, text);
}

void inject_finish(struct inject *j, const char *sender, const char *items, size_t items_len,
		   struct inject_result *r)
{
	if (!j->external) {
		finish_inprocess(j, sender, items, items_len, r);
		return;
	}
	/* A program that stopped reading early (a filter saying no) is not an error yet: its exit
	   code tells. */
	if (!j->write_errno && !buf_flush(&j->out))
		j->write_errno = errno;
	close(j->msgfd);
	char space[4096];
	struct buf env;
	buf_init(&env, j->envfd, space, sizeof space);
	if (!put_envelope(&env, sender, items, items_len) && !j->write_errno)
		j->write_errno = errno;
	close(j->envfd);

	char text[sizeof r->text];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof text - 1 &&
	       ((n = read(j->errfd, text + len, sizeof text - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(j->errfd);
	text[len] = 0;
	text[strcspn(text, "\r\n")] = 0;

	int status;
	while (waitpid(j->pid, &status, 0) < 0)
		if (errno != EINTR) {
			say(r, 0, 1, "4.3.0 lost track of the queue program");
			return;
		}
	if (!WIFEXITED(status)) {
		say(r, 0, 1, "4.3.0 the queue program crashed");
		return;
	}
	int code = WEXITSTATUS(status);
	if (code == 0 && j->write_errno)
		/* It says yes to something it cannot have read whole: take no chances. */
		say(r, 0, 1, "4.3.0 unable to hand the whole message to the queue program");
	else if (code == 0)
		say(r, 1, 0, "");
	else if (code == 82 && (text[0] == 'D' || text[0] == 'Z') && text[1])
		say(r, 0, text[0] == 'Z', text + 1);
	else
		explain(r, code);
}

void inject_abort(struct inject *j)
{
	if (!j->external) {
		queue_new_abort(&j->q);
		return;
	}
	/* Without an envelope queue-inject queues nothing; make sure the program is gone. */
	close(j->msgfd);
	close(j->envfd);
	close(j->errfd);
	kill(j->pid, SIGTERM);
	while (waitpid(j->pid, 0, 0) < 0 && errno == EINTR)
		;
}

/* --- envelope items -------------------------------------------------------------------------- */

int inject_item(struct sa *items, char type, const char *s, size_t n)
{
	int upper = type == 'H' || type == 'N';

	if (!sa_ready(items, n + 2) || !sa_catc(items, type))
		return 0;
	for (size_t i = 0; i < n; i++)
		items->s[items->len++] = upper && s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i];
	return sa_cat0(items);
}

const char *inject_item_next(const char *items, size_t len, size_t *pos, char type)
{
	while (*pos < len) {
		const char *item = items + *pos;
		const char *nul = memchr(item, 0, len - *pos);
		size_t n = nul ? (size_t)(nul - item) : len - *pos;
		*pos += n + 1;
		if (nul && item[0] == type)
			return item + 1;
	}
	return 0;
}
