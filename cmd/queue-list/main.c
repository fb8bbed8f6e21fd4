/* postroom: ISC license, see LICENSE. */
/*
 * queue-list [-t] [-d domain] [id...]: what is in the queue, one line per message and recipient,
 * as mailq shows it for Postfix: aligned for people, or with -t tab-separated fields that a
 * script can split (queue-list(8)). It only reads, without taking any lock for longer than an
 * instant, so it can run as often as wanted beside queue-run; each file is shown as it was when
 * it was read. A file that is not a queue file is shown as such: it is what an administrator
 * needs to see, not a reason to stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "die.h"
#include "log.h"
#include "queue_admin.h"

const char *PROG = "queue-list";

#define USAGE "[-t] [-d domain] [id ...]"

/* The fields of a line, in the order of both forms. */
enum { F_ID, F_AGE, F_SIZE, F_SENDER, F_RCPT, F_STATE, F_NEXT, F_REASON, NFIELDS };

struct config {
	int tabs;		/* -t */
	const char *domain;	/* -d */
	char **ids;
	int nids;
	const char *queuedir;
};

/* What has been listed: the counts, and the lines of the aligned form, kept until the widths
   are known. */
struct listing {
	const struct config *c;
	time_t now;
	char *(*rows)[NFIELDS];
	size_t nrows, cap;
	size_t messages, recipients, invalid;
	int status;
};

static void fail_status(struct listing *l, int code)
{
	if (code > l->status)
		l->status = code;
}

static _Noreturn void die_nomem(void)
{
	die_sys_code(EXIT_TEMP, "unable to allocate");
}

static char *copy(const char *s)
{
	char *d = strdup(s);
	if (!d)
		die_nomem();
	return d;
}

/* s made safe for a terminal and a tab-separated line: no control byte, tab or line end. */
static char *escape(const char *s)
{
	size_t n = strlen(s), size = 4 * n + 4;	/* room for every byte as \xNN: never cut */
	char *out = malloc(size);
	if (!out)
		die_nomem();
	return log_escape(out, size, s, n);
}

/* "45s", "12m", "5h", "3d": hours up to two days, as a queue's life is counted. */
static void duration(char *out, size_t size, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, size, "%llds", s);
	else if (s < 3600)
		snprintf(out, size, "%lldm", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, size, "%lldh", s / 3600);
	else
		snprintf(out, size, "%lldd", s / 86400);
}

/* The time of the next attempt, for people: "now", "in 5m", or "-" for a held message. */
static void next_attempt(char *out, size_t size, const struct queue_admin_entry *e, time_t now)
{
	if (!strcmp(e->dir, "hold"))
		snprintf(out, size, "-");
	else if (e->next <= now)
		snprintf(out, size, "now");
	else {
		snprintf(out, size, "in ");
		duration(out + 3, size - 3, (long long)(e->next - now));
	}
}

static void row(struct listing *l, const struct queue_admin_entry *e, const char *rcpt,
		enum queue_admin_state state, const char *reason)
{
	char text[40];
	time_t queued = queue_admin_queued(e->m.id);
	int tabs = l->c->tabs;
	char *f[NFIELDS];

	f[F_ID] = escape(e->m.id);
	if (!queued)
		snprintf(text, sizeof text, "-");
	else if (tabs)
		snprintf(text, sizeof text, "%lld", (long long)queued);
	else
		duration(text, sizeof text, (long long)(l->now - queued));
	f[F_AGE] = copy(text);
	snprintf(text, sizeof text, "%llu", e->m.msglen);
	f[F_SIZE] = copy(e->valid ? text : "-");
	if (!e->valid)
		f[F_SENDER] = copy("-");
	else if (!*e->m.sender && !tabs)
		f[F_SENDER] = copy("<>");
	else
		f[F_SENDER] = escape(e->m.sender);
	f[F_RCPT] = rcpt ? escape(rcpt) : copy("-");
	f[F_STATE] = copy(queue_admin_state_name(state));
	if (!tabs)
		next_attempt(text, sizeof text, e, l->now);
	else if (!strcmp(e->dir, "hold"))
		snprintf(text, sizeof text, "-");
	else
		snprintf(text, sizeof text, "%lld", (long long)e->next);
	f[F_NEXT] = copy(text);
	f[F_REASON] = reason && *reason ? escape(reason) : copy("-");

	if (tabs) {
		for (int i = 0; i < NFIELDS; i++) {
			fputs(f[i], stdout);
			putchar(i + 1 < NFIELDS ? '\t' : '\n');
			free(f[i]);
		}
		return;
	}
	if (l->nrows == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->rows, cap * sizeof *l->rows);
		if (!p)
			die_nomem();
		l->rows = p;
		l->cap = cap;
	}
	memcpy(l->rows[l->nrows++], f, sizeof f);
}

/* The lines of one queue file: its recipients, those in the -d domain only. */
static void show(struct listing *l, const struct queue_admin_entry *e)
{
	const char *reason;

	if (!e->valid) {
		if (l->c->domain)
			return;
		row(l, e, 0, QUEUE_STATE_INVALID, "not a queue file");
		l->invalid++;
		return;
	}
	size_t shown = 0;
	for (size_t i = 0; i < e->m.nrcpt; i++) {
		if (l->c->domain && !queue_admin_in_domain(e->m.rcpt[i], l->c->domain))
			continue;
		enum queue_admin_state s = queue_admin_rcpt_state(e, i, &reason);
		row(l, e, e->m.rcpt[i], s, reason);
		shown++;
	}
	if (shown) {
		l->messages++;
		l->recipients += shown;
	}
}

/* Shows dir/id; 1 if it was there. */
static int show_file(struct listing *l, int dirfd, const char *dir, const char *id)
{
	struct queue_admin_entry e;

	if (!queue_admin_peek(&e, dirfd, dir, id)) {
		int err = errno;
		queue_admin_entry_free(&e);
		if (err == ENOENT)
			return 0;	/* finished since the directory was read */
		char esc[4 * QUEUE_ID_MAX + 4];
		log_line("unable to read %s/%s: %s", dir, log_escape(esc, sizeof esc, id, strlen(id)),
			 strerror(err));
		fail_status(l, EXIT_TEMP);
		return 1;
	}
	show(l, &e);
	queue_admin_entry_free(&e);
	return 1;
}

static void show_ids(struct listing *l, int dirfd)
{
	char esc[4 * QUEUE_ID_MAX + 4];

	for (int i = 0; i < l->c->nids; i++) {
		const char *id = l->c->ids[i];
		log_escape(esc, sizeof esc, id, strlen(id));
		if (!queue_admin_id_ok(id)) {
			log_line("%s: not a valid queue id", esc);
			fail_status(l, EXIT_PERM);
			continue;
		}
		int found = show_file(l, dirfd, "msg", id);
		found |= show_file(l, dirfd, "hold", id);
		if (!found) {
			log_line("%s: not in the queue", esc);
			fail_status(l, EXIT_PERM);
		}
	}
}

/* Every file of msg/ and hold/, in the order of their ids: of their queueing times. */
static void show_all(struct listing *l, int dirfd)
{
	struct queue_admin_ids msg = QUEUE_ADMIN_IDS_ZERO, hold = QUEUE_ADMIN_IDS_ZERO;

	if (!queue_admin_list(&msg, dirfd, "msg"))
		die_sys_code(EXIT_TEMP, "unable to read %s/msg", l->c->queuedir);
	if (!queue_admin_list(&hold, dirfd, "hold"))
		die_sys_code(EXIT_TEMP, "unable to read %s/hold", l->c->queuedir);
	size_t i = 0, j = 0;
	while (i < msg.n || j < hold.n) {
		if (j == hold.n || (i < msg.n && strcmp(msg.id[i], hold.id[j]) <= 0))
			show_file(l, dirfd, "msg", msg.id[i++]);
		else
			show_file(l, dirfd, "hold", hold.id[j++]);
	}
	queue_admin_ids_free(&msg);
	queue_admin_ids_free(&hold);
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/* The aligned form: a heading, the lines, then a count. */
static void print_rows(struct listing *l)
{
	static const char *const heading[NFIELDS] = { "QUEUE ID", "AGE", "SIZE", "SENDER",
						      "RECIPIENT", "STATE", "NEXT", "LAST ERROR" };
	int width[NFIELDS];

	if (l->nrows == 0 && !l->c->domain && !l->c->nids) {
		printf("queue is empty\n");
		return;
	}
	if (l->nrows) {
		for (int f = 0; f < NFIELDS; f++)
			width[f] = (int)strlen(heading[f]);
		for (size_t r = 0; r < l->nrows; r++)
			for (int f = 0; f < NFIELDS; f++)
				if ((int)strlen(l->rows[r][f]) > width[f])
					width[f] = (int)strlen(l->rows[r][f]);
		for (size_t r = 0; r <= l->nrows; r++) {
			const char *const *row = r == 0 ? heading : (const char *const *)l->rows[r - 1];
			for (int f = 0; f + 1 < NFIELDS; f++) {
				/* Numbers to the right, as ls -l has them. */
				int right = f == F_AGE || f == F_SIZE;
				printf("%*s  ", right ? width[f] : -width[f], row[f]);
			}
			printf("%s\n", row[NFIELDS - 1]);
		}
	}
	printf("%zu message%s, %zu recipient%s", l->messages, plural(l->messages), l->recipients,
	       plural(l->recipients));
	if (l->invalid)
		printf(", %zu invalid file%s", l->invalid, plural(l->invalid));
	printf("\n");
}

int main(int argc, char **argv)
{
	static struct config c;
	static struct listing l = { .c = &c };
	int opt;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "td:")) != -1) {
		switch (opt) {
		case 't':
			c.tabs = 1;
			break;
		case 'd':
			/* A domain, not an address: "-d @example.org" would quietly match nothing. */
			if (!*optarg || strchr(optarg, '@'))
				die_usage(USAGE);
			c.domain = optarg;
			break;
		default:
			die_usage(USAGE);
		}
	}
	c.ids = argv + optind;
	c.nids = argc - optind;
	c.queuedir = env_need("QUEUEDIR");

	int dirfd = open(c.queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", c.queuedir);
	l.now = time(0);
	if (c.nids)
		show_ids(&l, dirfd);
	else
		show_all(&l, dirfd);
	if (!c.tabs)
		print_rows(&l);
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	return l.status;
}
