/* postroom: ISC license, see LICENSE. */
/*
 * The notices (RFC 3464 delivery status notifications) that an attempt calls for, queued from
 * <> like any message: to the sender, for recipients that failed, that are late (once), or,
 * when the sender asked with NOTIFY=SUCCESS, that were delivered or relayed to a peer without
 * DSN. A notice that itself fails goes to the postmaster once, with NOTIFY=NEVER, so that its
 * own failure is dropped with a log line: a notice never loops.
 *
 * A notice is queued before its N or W records are written, in the same flush as the
 * attempt's other records: a crash in between sends it again, it never loses it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "log.h"
#include "queue-run.h"
#include "queue.h"
#include "userdb.h"

#define REASON_MAX 1024

/* Why each target is in the notice, parsed from its record's reason. */
struct detail {
	char where[300];	/* the peer's name */
	char status[16];
	char diagnostic[REASON_MAX];
	int smtp;		/* the diagnostic is a peer's SMTP reply */
};

/* d.d.d at s, copied into out: 1, or 0 when s does not start with one. */
static int enhanced_at(const char *s, char *out, size_t size)
{
	size_t n = strspn(s, "0123456789.");
	if (n < 5 || n >= size || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' ||
	    (s[n] && s[n] != ' '))
		return 0;
	memcpy(out, s, n);
	out[n] = 0;
	return 1;
}

/*
 * A record's reason: "NAME[ADDRESS] CODE D.D.D text" for a remote peer's answer ("-" for no
 * peer), "D.D.D text" or plain text for our own. fallback: the status without one.
 */
static void parse_reason(const char *reason, const char *fallback, struct detail *d)
{
	memset(d, 0, sizeof *d);
	const char *sp = strchr(reason, ' ');
	if (sp && sp[1] >= '2' && sp[1] <= '5' && strspn(sp + 1, "0123456789") == 3 && sp[4] == ' ') {
		size_t n = (size_t)(sp - reason);
		const char *bracket = memchr(reason, '[', n);
		if (bracket)
			n = (size_t)(bracket - reason);
		if (strncmp(reason, "-", n) && n < sizeof d->where) {
			memcpy(d->where, reason, n);
			d->where[n] = 0;
		}
		if (!enhanced_at(sp + 5, d->status, sizeof d->status))
			snprintf(d->status, sizeof d->status, "%c.0.0", sp[1]);
		snprintf(d->diagnostic, sizeof d->diagnostic, "%s", sp + 1);
		d->smtp = d->where[0] != 0;
		return;
	}
	if (!enhanced_at(reason, d->status, sizeof d->status))
		snprintf(d->status, sizeof d->status, "%s", fallback);
	snprintf(d->diagnostic, sizeof d->diagnostic, "%s", reason);
}

/* The postmaster: POSTMASTER, or postmaster@ the first domain of the user database. */
static int postmaster(const struct config *c, char *out, size_t size)
{
	if (c->resolve.postmaster && *c->resolve.postmaster) {
		snprintf(out, size, "%s", c->resolve.postmaster);
		return 1;
	}
	struct userdb *db = userdb_current(c->userdb);
	memcpy(out, "postmaster@", 12);
	return db && userdb_first_domain(db, out + 11, size - 11) > 0;
}

static int put_message(void *arg, const char *s, size_t n)
{
	return queue_new_message(arg, s, n);
}

/* Queues one notice to `to` (from <>); its id in id. */
static int queue_notice(struct attempt *a, const struct dsn *d, const char *to, int never,
			char *id)
{
	static struct queue_new q;

	if (!queue_new_open(&q, a->c->queuedir))
		return 0;
	if (!dsn_write(d, a->m.fd, QUEUE_HEADER_LEN, a->m.msglen, put_message, &q) ||
	    !queue_new_envelope(&q, "F", 2) || !queue_new_envelope(&q, "T", 1) ||
	    !queue_new_envelope(&q, to, strlen(to) + 1) ||
	    (never && !queue_new_envelope(&q, "NNEVER", 7)) || !queue_new_envelope(&q, "", 1)) {
		queue_new_abort(&q);
		return 0;
	}
	/* The id before commit: commit may pick another on a clash, and sets q.id. */
	if (!queue_new_commit(&q))
		return 0;
	strcpy(id, q.id);
	return 1;
}

int notify_send(struct attempt *a)
{
	const struct config *c = a->c;
	size_t nt = a->targets.n, n = 0;
	struct dsn_rcpt *r = calloc(nt + 1, sizeof *r);
	struct detail *det = calloc(nt + 1, sizeof *det);
	size_t *which = calloc(nt + 1, sizeof *which);
	char *rec = calloc(nt + 1, 1);
	int bounce = !*a->m.sender, ok = 0;
	double age = queue_age(a->m.id, &a->now);
	char to[QUEUE_ADDR_MAX + 1], pm[QUEUE_ADDR_MAX + 1], id[QUEUE_ID_MAX] = "";

	if (!r || !det || !which || !rec)
		goto done;
	for (size_t i = 0; i < nt; i++) {
		const struct target *t = &a->targets.t[i];
		unsigned notify = a->m.notify[a->origin[i]];
		const char *action = 0, *types = 0, *fallback = "5.0.0";
		char kind = QUEUE_REC_NOTIFIED;

		if (queue_msg_record(&a->m, "N", t->addr))
			continue;
		char final = queue_msg_record(&a->m, record_types(t->kind), t->addr);
		if (final && strchr("XRPJ", final)) {
			action = "failed";
			types = "XRPJ";
			if (bounce && (notify & QUEUE_NOTIFY_NEVER))
				log_line("%s to=<%s> no notice: this was the notice to the "
					 "postmaster; dropped", a->m.id, t->addr);
			if (!(notify & QUEUE_NOTIFY_FAILURE))
				continue;
		} else if (bounce) {
			continue;	/* a notice of a notice: failures only */
		} else if (a->state[i] == TS_PASSED) {
			/* The peer reports success now: nothing from us, now or at a later attempt. */
			if (notify & QUEUE_NOTIFY_SUCCESS)
				queue_msg_add_record(&a->m, QUEUE_REC_NOTIFIED, t->addr, "-");
			continue;
		} else if (a->state[i] == TS_DELIVERED || a->state[i] == TS_RELAYED ||
			   (a->state[i] == TS_NONE && final)) {
			/* A success of an earlier attempt without its N record: that attempt could not
			   queue the notice (or was cut short), so this one does. */
			if (!(notify & QUEUE_NOTIFY_SUCCESS))
				continue;
			action = a->state[i] == TS_DELIVERED || final == QUEUE_REC_DELIVERED
					 ? "delivered" : "relayed";
			types = "DS";
			fallback = "2.0.0";
		} else if (a->state[i] == TS_PENDING && c->delay_warning && age >= c->delay_warning &&
			   (notify & QUEUE_NOTIFY_DELAY) &&
			   !queue_msg_record(&a->m, "W", t->addr)) {
			action = "delayed";
			types = "L";
			fallback = "4.0.0";
			kind = QUEUE_REC_WARNED;
		} else {
			continue;
		}
		parse_reason(latest_reason(a, types, t->addr), fallback, &det[n]);
		if (!strcmp(action, "delivered") || !strcmp(action, "relayed")) {
			snprintf(det[n].status, sizeof det[n].status, "2.0.0");
			if (!strcmp(action, "delivered"))
				det[n].diagnostic[0] = 0;
		}
		const char *orig = a->m.rcpt[a->origin[i]];
		r[n] = (struct dsn_rcpt){
			.final = t->addr,
			.orcpt = a->m.orcpt[a->origin[i]],
			.original = strcasecmp(orig, t->addr) ? orig : 0,
			.action = action,
			.status = det[n].status,
			.remote_mta = det[n].where[0] ? det[n].where : 0,
			.diagnostic = det[n].diagnostic[0] ? det[n].diagnostic : 0,
			.diagnostic_type = det[n].smtp ? DSN_DIAG_SMTP : DSN_DIAG_LOCAL,
			.last_attempt = a->now.tv_sec,
			.will_retry_until = kind == QUEUE_REC_WARNED
						    ? a->now.tv_sec - (time_t)age + (time_t)c->lifetime : 0,
		};
		which[n] = i;
		rec[n] = kind;
		n++;
	}
	if (!n) {
		ok = 1;
		goto done;
	}
	if (!postmaster(c, pm, sizeof pm)) {
		errno = errno ? errno : ENOENT;
		goto done;
	}
	snprintf(to, sizeof to, "%s", bounce ? pm : a->m.sender);
	struct dsn d = {
		.reporting_mta = c->smtp.helo,
		.queue_id = a->m.id,
		.arrival = a->now.tv_sec - (time_t)age,
		.now = a->now.tv_sec,
		.envid = a->m.envid,
		.to = to,
		.postmaster = pm,
		.headers_only = a->m.ret_hdrs,
		.return_max = c->return_max,
		.r = r,
		.n = n,
	};
	if (!queue_notice(a, &d, to, bounce, id))
		goto done;
	for (size_t k = 0; k < n; k++)
		queue_msg_add_record(&a->m, rec[k], a->targets.t[which[k]].addr, id);
	char esc[QUEUE_ADDR_MAX * 4 + 1];
	log_line("%s notice id=%s to=<%s> recipients=%zu action=%s", a->m.id, id,
		 log_escape(esc, sizeof esc, to, strlen(to)), n, r[0].action);
	ok = 1;
done:;
	int e = errno;
	free(r);
	free(det);
	free(which);
	free(rec);
	errno = e;
	return ok;
}
