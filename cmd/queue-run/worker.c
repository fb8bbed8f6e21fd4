/* postroom: ISC license, see LICENSE. */
/*
 * A worker: message ids in on its own pipe, one per line; events out on the pipe it shares
 * with the other workers (schedule.c has the protocol). Between messages it keeps the remote
 * session of the last one open for a while (remote.c), and closes it when it has idled.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "getln.h"
#include "queue-run.h"

static struct {
	unsigned slot;
	int gone;		/* the scheduler is: finish the message in hand, then exit */
	int out;		/* the shared pipe to the scheduler */
	struct buf in;		/* its own pipe from the scheduler */
	char space[512];
} chan;

static void tell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tell(const char *fmt, ...)
{
	char line[DEST_MAX + 64];
	va_list ap;

	int n = snprintf(line, sizeof line, "%u ", chan.slot);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* Without a scheduler the attempt still ends as it should, its records written. */
	if (!chan.gone && !fd_write_all(chan.out, line, (size_t)n))
		chan.gone = 1;
}

enum grant sched_ask(const char *dest, time_t *until)
{
	char line[64];
	size_t len;

	tell("ask %s", dest);
	if (chan.gone || getln(&chan.in, line, sizeof line, &len, '\n') != GETLN_OK) {
		chan.gone = 1;
		return GRANT_BUSY;	/* the scheduler is gone: the message waits for the next */
	}
	line[len - 1] = 0;
	if (!strcmp(line, "go"))
		return GRANT_GO;
	long long t;
	if (sscanf(line, "down %lld", &t) == 1) {
		*until = (time_t)t;
		return GRANT_DOWN;
	}
	return GRANT_BUSY;
}

void sched_done(const char *dest, int reached, int kept)
{
	tell("done %d %d %s", reached, kept, dest);
}

void sched_release(const char *dest)
{
	tell("release %s", dest);
}

/* Ids in, events out, until end of file; a kept session is closed when it has idled. */
_Noreturn void worker_main(const struct config *c, int dirfd, unsigned slot, int cmd,
				  int results)
{
	char id[QUEUE_ID_MAX + 2];
	size_t len;

	chan.slot = slot;
	chan.out = results;
	buf_init(&chan.in, cmd, chan.space, sizeof chan.space);
	for (;;) {
		int wait = remote_cache_tick(c);
		if (wait >= 0 && buf_unread(&chan.in) == 0) {
			struct pollfd p = { .fd = cmd, .events = POLLIN };
			if (poll(&p, 1, wait) == 0)
				continue;	/* the tick closes it */
		}
		if (chan.gone || getln(&chan.in, id, sizeof id, &len, '\n') != GETLN_OK) {
			chan.gone = 1;
			remote_cache_close();
			_exit(0);
		}
		id[len - 1] = 0;
		tell("end %d", (int)deliver_message(c, dirfd, id));
	}
}

