/* postroom: ISC license, see LICENSE. */
/*
 * The remote targets of one attempt: grouped by destination (the recipient's domain, or the
 * smarthost when there is one), each group delivered in one SMTP transaction through
 * lib/smtp_deliver.c once the scheduler grants the destination a slot. A session that ended
 * well is kept open for cache_time seconds, so that the next message for the same destination,
 * which the scheduler hands to this worker first, costs no new TCP or TLS handshake (as
 * Postfix's connection cache).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "queue-run.h"
#include "smtp_deliver.h"

#define RELAY_MAX 16		/* addresses of a smarthost's name */
#define CACHE_USES_MAX 100	/* messages over one kept session... */
#define CACHE_AGE_MAX 300	/* ...and seconds, as Postfix's smtp_connection_reuse_time_limit */
#define RESULT_MAX 1024

static struct {
	int open;
	char dest[DEST_MAX];
	struct smtpc s;
	time_t opened, last;
	unsigned uses;
} cache;

void remote_cache_close(void)
{
	if (!cache.open)
		return;
	smtpc_close(&cache.s);
	cache.open = 0;
	sched_release(cache.dest);
}

int remote_cache_tick(const struct config *c)
{
	if (!cache.open)
		return -1;
	time_t now = time(0), until = cache.last + (time_t)c->cache_time;
	if (now >= until || now - cache.opened >= CACHE_AGE_MAX) {
		remote_cache_close();
		return -1;
	}
	return (int)(until - now) * 1000;
}

/* smtpc_config's log: one line, escaped, naming the message. */
static void log_event(void *arg, const char *line)
{
	const struct attempt *a = arg;
	char esc[LOG_LINE_MAX];

	log_line("%s %s", a->m.id, log_escape(esc, sizeof esc, line, strlen(line)));
}

/* The destination of a remote address: the smarthost's, or the lower-cased domain. */
static const char *dest_of(const struct config *c, const char *addr, char *out)
{
	if (c->smarthost) {
		snprintf(out, DEST_MAX, "[%s]", c->smarthost);
		return out;
	}
	const char *at = strrchr(addr, '@');
	const char *d = at ? at + 1 : "";
	size_t i = 0;
	for (; d[i] && i < DEST_MAX - 1; i++)
		out[i] = (char)tolower((unsigned char)d[i]);
	out[i] = 0;
	return out;
}

static const char *notify_string(unsigned bits, char *out, size_t size)
{
	if (bits == QUEUE_NOTIFY_DEFAULT)
		return 0;	/* none was given: none is passed on */
	if (bits & QUEUE_NOTIFY_NEVER)
		return "NEVER";
	snprintf(out, size, "%s%s%s", bits & QUEUE_NOTIFY_SUCCESS ? "SUCCESS," : "",
		 bits & QUEUE_NOTIFY_FAILURE ? "FAILURE," : "", bits & QUEUE_NOTIFY_DELAY ? "DELAY," : "");
	out[strlen(out) - 1] = 0;
	return out;
}

/* The message, mapped once per attempt; 0 on failure. */
static int map_message(struct attempt *a)
{
	if (a->text)
		return 1;
	size_t len = QUEUE_HEADER_LEN + (size_t)a->m.msglen;
	void *p = mmap(0, len, PROT_READ, MAP_SHARED, a->m.fd, 0);
	if (p == MAP_FAILED)
		return 0;
	a->text = p;
	a->mapped = len;
	return 1;
}

/* One destination's recipients, through the kept session or a new route. */
static void send_group(struct attempt *a, const char *dest, const char *domain,
		       struct smtpc_rcpt *r, size_t n, int *reached)
{
	const struct config *c = a->c;
	struct smtpc_config sc = c->smtp;
	struct smtpc_msg msg;
	int kept = 0;

	sc.log = log_event;
	sc.log_arg = a;
	smtpc_msg_init(&msg, a->text + QUEUE_HEADER_LEN, (size_t)a->m.msglen);
	msg.envid = a->m.envid;
	msg.ret = a->m.ret_hdrs ? "HDRS" : 0;

	if (cache.open && !strcmp(cache.dest, dest)) {
		/* The session's config must outlive this attempt's: it points at sc only for now. */
		cache.s.c = &sc;
		int ok = smtpc_send(&cache.s, a->m.sender, &msg, r, n);
		if (ok) {
			*reached = 1;
			cache.uses++;
			cache.last = time(0);
			cache.s.c = &c->smtp;
			if (cache.uses >= CACHE_USES_MAX)
				remote_cache_close();
			return;
		}
		/* It broke (the peer timed us out): the rest go the usual way. */
		log_event(a, "kept session broke; opening a new one");
		smtpc_close(&cache.s);
		cache.open = 0;
	}

	struct mx_list mx = MX_LIST_ZERO;
	static struct mx_address relay[RELAY_MAX];
	struct smtp_route route = { .port = 25, .mx = 1, .domain = domain, .reached = reached,
				    .keep = &cache.s, .kept = &kept };
	if (c->smarthost) {
		char why[512];
		int permanent;
		route.n = smtp_relay_addresses(c->relayhost, c->dns.family, relay, RELAY_MAX,
					       &permanent, why, sizeof why);
		if (!route.n) {
			struct smtpc_reply w;
			smtpc_reply_set(&w, 451, "4.4.3", "%s", why);
			smtp_decide_all(r, n, &w, "-", SMTPC_DEFERRED);
			return;
		}
		route.a = relay;
		route.port = c->relayport;
		route.mx = 0;
		route.tlsname = relay[0].host;
		sc.implicit_tls = route.port == 465;
	} else {
		if (!smtp_route_mx(&c->dns, domain, &mx, r, n)) {
			mx_list_free(&mx);
			return;
		}
		route.a = mx.a;
		route.n = mx.n;
	}
	smtp_deliver(&sc, &route, a->m.sender, &msg, r, n);
	mx_list_free(&mx);
	if (kept) {
		cache.open = 1;
		cache.s.c = &c->smtp;
		str_copy(cache.dest, sizeof cache.dest, dest);
		cache.opened = cache.last = time(0);
		cache.uses = 1;
	}
}

/* An argument for the external program: the value of `opt`, or nothing. */
static void arg_pair(const char **argv, size_t *n, const char *opt, const char *value)
{
	if (!value)
		return;
	argv[(*n)++] = opt;
	argv[(*n)++] = value;
}

/*
 * One result line of smtp-send(8):
 *     RECIPIENT delivered|deferred|failed CODE ENHANCED "TEXT" host=WHERE tls=DESC
 * into r. The lines come in argument order, each naming its recipient as log_escape writes
 * it (which may hold a space): a line that does not name r->addr is not its result. 0 when the
 * line is not r's.
 */
static int parse_result(char *line, struct smtpc_rcpt *r)
{
	char esc[QUEUE_ADDR_MAX * 4 + 8], *q, *end;
	log_escape(esc, sizeof esc, r->addr, strlen(r->addr));
	size_t n = strlen(esc);
	if (strncmp(line, esc, n) || line[n] != ' ')
		return 0;
	char *status = line + n + 1, *sp = strchr(status, ' ');
	if (!sp)
		return 0;
	*sp = 0;
	if (!strcmp(status, "delivered"))
		r->status = SMTPC_DELIVERED;
	else if (!strcmp(status, "failed"))
		r->status = SMTPC_FAILED;
	else if (!strcmp(status, "deferred"))
		r->status = SMTPC_DEFERRED;
	else
		return 0;
	long code = strtol(sp + 1, &end, 10);
	if (end == sp + 1 || *end != ' ' || code < 200 || code > 599)
		return 0;
	r->reply.code = (int)code;
	q = strchr(end + 1, ' ');
	if (!q || (size_t)(q - end - 1) >= sizeof r->reply.enhanced)
		return 0;
	memcpy(r->reply.enhanced, end + 1, (size_t)(q - end - 1));
	r->reply.enhanced[q - end - 1] = 0;
	if (q[1] != '"' || !(end = strstr(q + 2, "\" host=")))
		return 0;
	*end = 0;
	str_copy(r->reply.text, sizeof r->reply.text, q + 2);
	char *host = end + 7, *tls = strstr(host, " tls=");
	if (!tls)
		return 0;
	*tls = 0;
	str_copy(r->where, sizeof r->where, host);
	str_copy(r->tls, sizeof r->tls, tls + 5);
	return 1;
}

/*
 * The group through REMOTEDELIVERY (smtp-send), one run per destination: the same routes and
 * results as in-process, without a kept session. RET and ENVID go as -R and -V; NOTIFY (-N)
 * and ORCPT (-O) apply to every recipient of a run, so they go only when the group agrees on
 * them (one recipient, or the same value for all).
 */
static void run_external(struct attempt *a, struct smtpc_rcpt *r, size_t n, int *reached)
{
	const struct config *c = a->c;
	static const char *levels[] = { "none", "may", "encrypt", "verify" };
	const char **argv = calloc(n + 24, sizeof *argv);
	size_t size = n * (SMTPC_TEXT_MAX + SMTPC_WHERE_MAX + 4 * 1024) + 1;
	char *text = malloc(size), why[256];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	struct smtpc_reply w;

	if (!argv || !text || pipe(in) < 0 || pipe(out) < 0) {
		smtpc_reply_set(&w, 451, "4.3.0", "unable to run %s: %s", c->remotedelivery,
				strerror(errno));
		goto fail;
	}
	size_t k = 0;
	argv[k++] = c->remotedelivery;
	argv[k++] = "-t";
	argv[k++] = levels[c->smtp.tls];
	arg_pair(argv, &k, "-r", c->smarthost);
	arg_pair(argv, &k, "-a", getenv("SMARTHOST_AUTH"));
	arg_pair(argv, &k, "-C", c->smtp.cafile);
	arg_pair(argv, &k, "-h", c->smtp.helo);
	arg_pair(argv, &k, "-R", a->m.ret_hdrs ? "HDRS" : 0);
	arg_pair(argv, &k, "-V", a->m.envid);
	int same_notify = 1, same_orcpt = 1;
	for (size_t i = 1; i < n; i++) {
		same_notify &= (r[i].notify == 0) == (r[0].notify == 0) &&
			       (!r[0].notify || !strcmp(r[i].notify, r[0].notify));
		same_orcpt = 0;
	}
	arg_pair(argv, &k, "-N", same_notify ? r[0].notify : 0);
	arg_pair(argv, &k, "-O", same_orcpt ? r[0].orcpt : 0);
	argv[k++] = "--";	/* a sender or recipient may begin with '-' */
	argv[k++] = *a->m.sender ? a->m.sender : "<>";
	for (size_t i = 0; i < n; i++)
		argv[k++] = r[i].addr;
	argv[k] = 0;

	pid_t pid = fork();
	if (pid < 0) {
		smtpc_reply_set(&w, 451, "4.3.0", "unable to fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		signal(SIGPIPE, SIG_DFL);
		execv(c->remotedelivery, (char **)argv);
		fprintf(stderr, "queue-run: %s trouble: unable to run %s: %s\n", a->m.id,
			c->remotedelivery, strerror(errno));
		_exit(111);
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	time_t deadline = time(0) + (time_t)c->smtp.t.attempt + 60;
	int whole = feed_program(a, in[1], out[0], text, size, deadline);
	in[1] = out[0] = -1;	/* closed by feed_program */
	int status;
	pid_t got;
	while ((got = waitpid(pid, &status, WNOHANG)) == 0 && time(0) < deadline)
		usleep(10000);
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	char *line = text, *nl;
	for (size_t i = 0; i < n && (nl = strchr(line, '\n')); i++, line = nl + 1) {
		*nl = 0;
		if (!parse_result(line, &r[i]))
			r[i].status = SMTPC_PENDING;
	}
	snprintf(why, sizeof why, "%s gave no result (exit status %d)", c->remotedelivery,
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	smtpc_reply_set(&w, 451, "4.3.0", "%s", whole ? why : "unable to read the queue file");
	if (!whole)
		for (size_t i = 0; i < n; i++)
			if (r[i].status == SMTPC_DELIVERED)
				r[i].status = SMTPC_PENDING;	/* never a shortened message */
	smtp_decide_all(r, n, &w, "-", SMTPC_DEFERRED);
	/* A network or routing failure (4.4.x) for all: the destination is down. */
	for (size_t i = 0; i < n; i++)
		*reached |= r[i].status != SMTPC_DEFERRED || strncmp(r[i].reply.enhanced, "4.4.", 4);
	free(argv);
	free(text);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	smtp_decide_all(r, n, &w, "-", SMTPC_DEFERRED);
	*reached = 1;	/* our trouble, not the destination's */
	free(argv);
	free(text);
}

/* "NAME[ADDRESS] 250 2.0.0 text": a record's reason and a log line's. */
static void result_text(const struct smtpc_rcpt *r, char *out, size_t size)
{
	snprintf(out, size, "%s %d %s %s", r->where, r->reply.code, r->reply.enhanced,
		 r->reply.text);
}

/* Writes down and logs one destination's results. */
static void record(struct attempt *a, const size_t *idx, const struct smtpc_rcpt *r, size_t n,
		   size_t *pending, int *failed)
{
	char why[RESULT_MAX], line[RESULT_MAX + 160];

	for (size_t k = 0; k < n; k++) {
		size_t i = idx[k];
		const char *addr = a->targets.t[i].addr;
		result_text(&r[k], why, sizeof why);
		snprintf(line, sizeof line, "%s tls=%s", why, r[k].tls);
		switch (r[k].status) {
		case SMTPC_DELIVERED:
			a->state[i] = r[k].dsn_passed ? TS_PASSED : TS_RELAYED;
			queue_msg_add_record(&a->m, QUEUE_REC_SENT, addr, why);
			log_result(a, i, "sent", line);
			break;
		case SMTPC_FAILED:
			*failed = 1;
			a->state[i] = TS_FAILED;
			queue_msg_add_record(&a->m, QUEUE_REC_REJECTED, addr, why);
			log_result(a, i, "failed", line);
			break;
		default:
			++*pending;
			a->state[i] = TS_PENDING;
			queue_msg_add_record(&a->m, QUEUE_REC_LAST, addr, why);
			log_result(a, i, "deferred", line);
			break;
		}
	}
}

void remote_attempt(struct attempt *a, size_t *pending, int *failed)
{
	size_t nt = a->targets.n;
	size_t *idx = calloc(nt + 1, sizeof *idx);
	struct smtpc_rcpt *r = calloc(nt + 1, sizeof *r);
	char (*notify)[32] = calloc(nt + 1, sizeof *notify);
	unsigned char *done = calloc(nt + 1, 1);
	char dest[DEST_MAX], other[DEST_MAX];

	if (!idx || !r || !notify || !done)
		goto out_of_memory;
	/* The remote targets still to do, one destination at a time. */
	for (size_t i = 0; i < nt; i++) {
		const struct target *t = &a->targets.t[i];
		if (t->kind != TARGET_REMOTE || done[i])
			continue;
		char rec = queue_msg_record(&a->m, "SJ", t->addr);
		if (rec) {
			*failed |= rec == QUEUE_REC_REJECTED;
			continue;
		}
		dest_of(a->c, t->addr, dest);
		const char *at = strrchr(t->addr, '@');
		const char *domain = at ? at + 1 : "";
		size_t n = 0;
		for (size_t j = i; j < nt; j++) {
			const struct target *u = &a->targets.t[j];
			if (u->kind != TARGET_REMOTE || done[j] ||
			    strcmp(dest_of(a->c, u->addr, other), dest) ||
			    queue_msg_record(&a->m, "SJ", u->addr))
				continue;
			done[j] = 1;
			size_t o = a->origin[j];
			idx[n] = j;
			r[n] = (struct smtpc_rcpt){
				.addr = u->addr,
				.notify = notify_string(a->m.notify[o], notify[n], sizeof notify[n]),
				.orcpt = a->m.orcpt[o],
			};
			n++;
		}

		if (a->c->defer_remote) {
			/* As Postfix's defer_transports: nothing is tried, not even the DNS. */
			static const char why[] = "- 451 4.3.2 remote delivery is deferred "
						  "(DEFER_REMOTE is set; SMARTHOST names a relay)";
			*pending += n;
			for (size_t k = 0; k < n; k++) {
				const char *addr = a->targets.t[idx[k]].addr;
				const struct queue_record *last = queue_msg_latest(&a->m, "L", addr);
				a->state[idx[k]] = TS_PENDING;
				/* Once, for queue-list: not a record per attempt. */
				if (!last || strcmp(last->reason, why))
					queue_msg_add_record(&a->m, QUEUE_REC_LAST, addr, why);
				log_result(a, idx[k], "deferred", why);
			}
			continue;
		}
		/* Another destination's session is of no use from here on. */
		if (cache.open && strcmp(cache.dest, dest))
			remote_cache_close();
		time_t until = 0;
		switch (sched_ask(dest, &until)) {
		case GRANT_BUSY:
			a->waiting = 1;
			for (size_t k = 0; k < n; k++)
				a->state[idx[k]] = TS_PENDING;
			continue;
		case GRANT_DOWN:
			if (until > a->not_before)
				a->not_before = until;
			*pending += n;
			for (size_t k = 0; k < n; k++) {
				char why[DEST_MAX + 100];
				a->state[idx[k]] = TS_PENDING;
				snprintf(why, sizeof why, "delivery to %s suspended: no host took the last "
					 "try; the next in %lld s", dest,
					 (long long)(until - a->now.tv_sec));
				log_result(a, idx[k], "deferred", why);
			}
			continue;
		case GRANT_GO:
			break;
		}
		int reached = 0;
		if (a->c->remotedelivery) {
			run_external(a, r, n, &reached);
		} else if (!map_message(a)) {
			struct smtpc_reply w;
			smtpc_reply_set(&w, 451, "4.3.0", "unable to map the queue file: %s",
					strerror(errno));
			smtp_decide_all(r, n, &w, "-", SMTPC_DEFERRED);
		} else {
			send_group(a, dest, domain, r, n, &reached);
		}
		/* Down when nobody took a transaction and something waits: the peer or the DNS
		   failed. Recipients refused for good by the DNS say nothing about it. */
		int deferred = 0;
		for (size_t k = 0; k < n; k++)
			deferred |= r[k].status == SMTPC_DEFERRED;
		record(a, idx, r, n, pending, failed);
		sched_done(dest, reached || !deferred, cache.open && !strcmp(cache.dest, dest));
	}
	free(idx);
	free(r);
	free(notify);
	free(done);
	return;
out_of_memory:
	free(idx);
	free(r);
	free(notify);
	free(done);
	for (size_t i = 0; i < nt; i++)
		if (a->targets.t[i].kind == TARGET_REMOTE &&
		    !queue_msg_record(&a->m, "SJ", a->targets.t[i].addr)) {
			++*pending;
			a->state[i] = TS_PENDING;
		}
	log_line("%s trouble: out of memory for the remote targets", a->m.id);
}
