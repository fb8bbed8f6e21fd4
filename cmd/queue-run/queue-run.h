/* postroom: ISC license, see LICENSE. */
#ifndef QUEUE_RUN_H
#define QUEUE_RUN_H

#include <sys/types.h>
#include <time.h>

#include "dns.h"
#include "queue.h"
#include "resolve.h"
#include "smtp_client.h"

#define DEST_MAX 300	/* a destination's name: a domain, or "[smarthost]" */

/* What main read from argv and the environment; frozen before anything runs. */
struct config {
	const char *queuedir;
	const char *userdb;
	const char *mailroot;
	const char *localdelivery;	/* external delivery program, or 0 for in-process */
	struct resolve_config resolve;	/* RECIPIENT_DELIMITER, POSTMASTER */
	int overquota_permanent;
	unsigned concurrency;		/* -c: deliveries at once, all destinations */
	unsigned domain_limit;		/* -p: deliveries at once to one destination */
	int once;

	/* Retries (seconds): the wait after an attempt grows with the message's age from
	   retry_min to retry_max; past lifetime what is pending fails; past delay_warning (0:
	   never) the sender is told once that the message is late. */
	unsigned retry_min, retry_max, lifetime, delay_warning;

	/* Remote delivery. */
	const char *remotedelivery;	/* external program (smtp-send), or 0 for in-process */
	int defer_remote;		/* DEFER_REMOTE: remote targets wait, untried (no DNS) */
	const char *smarthost;		/* SMARTHOST as given, or 0: each domain's MX hosts */
	char relayhost[256];
	unsigned relayport;
	struct smtpc_config smtp;	/* our name, TLS, a smarthost's credentials, timeouts */
	struct dns_config dns;
	unsigned cache_time;		/* seconds a session is kept open for the next message */
	unsigned long long return_max;	/* a notice returns the whole message up to this size */
};

/* What became of one message; the worker's answer. */
enum outcome {
	OUTCOME_FINISHED = 0,	/* removed from msg/ */
	OUTCOME_PENDING = 1,	/* some targets wait for a later attempt */
	OUTCOME_SKIPPED = 2,	/* locked by another worker, or already gone */
	OUTCOME_WAITING = 3,	/* some targets wait for their destination's turn (busy): the
				   scheduler hands it out again when a slot is free */
	OUTCOME_TROUBLE = 111,	/* could not work on it; postponed */
};

/* One attempt: the message, what its recipients resolve to, and the clock. */
struct attempt {
	const struct config *c;
	int dirfd;
	struct queue_msg m;
	struct targets targets;
	size_t *origin;		/* targets[i] came from recipient origin[i] */
	unsigned char *state;	/* per target: what this attempt did (TS_*) */
	struct timespec now;
	time_t not_before;	/* a destination that is down: no retry before this */
	int waiting;		/* a destination was busy */
	const char *text;	/* the message, mapped (for remote deliveries), or 0 */
	size_t mapped;
	char sender[600];	/* escaped for the log */
};

/* A target's state after this attempt, for the notices. */
enum {
	TS_NONE,		/* untouched, or done in an earlier attempt */
	TS_DELIVERED,		/* to a local mailbox */
	TS_RELAYED,		/* a peer without DSN took it */
	TS_PASSED,		/* a peer with DSN took it, and the duty to notify */
	TS_FAILED,
	TS_PENDING,
};

/* deliver.c: one attempt at every target of msg/ID not yet done. Runs in a worker process. */
enum outcome deliver_message(const struct config *c, int dirfd, const char *id);
void log_result(struct attempt *a, size_t target, const char *result, const char *reason);
/* Feeds the message to a program's stdin (in) while reading what it writes on out into text;
   1 when the whole message was read from the queue file. deliver.c. */
int feed_program(struct attempt *a, int in, int out, char *text, size_t size, time_t deadline);
/* The reason of addr's latest record of one of types, this attempt's or the file's, or "";
   valid until the next record is added. */
const char *latest_reason(const struct attempt *a, const char *types, const char *addr);
/* The record types that say a target of this kind is done ("DX" for a mailbox). */
const char *record_types(enum target_kind kind);
/* The user database, opened again when a new one has been renamed into place; 0 with errno. */
struct userdb *userdb_current(const char *path);

/* remote.c: the remote targets of one attempt, one destination at a time. */
void remote_attempt(struct attempt *a, size_t *pending, int *failed);
/* The kept session, when it has been idle for cache_time: closed. Returns the ms until then,
   or -1 when none is kept. */
int remote_cache_tick(const struct config *c);
void remote_cache_close(void);

/* notify.c: the notices this attempt calls for, queued; N and W records added. 1, or 0 with
   errno (the attempt cannot end: try again later). */
int notify_send(struct attempt *a);

/* schedule.c: the main loop (or one pass with c->once). Returns the exit code. */
int schedule_run(const struct config *c);

/* worker.c: a worker's life, ids from cmd, events to results. */
_Noreturn void worker_main(const struct config *c, int dirfd, unsigned slot, int cmd, int results);

/* worker.c: asking the scheduler for a destination and telling it how it went. */
enum grant {
	GRANT_GO,	/* deliver now */
	GRANT_BUSY,	/* at its limit, or being probed: the scheduler hands the message out
			   again when a slot is free */
	GRANT_DOWN,	/* it failed lately: not before *until */
};
enum grant sched_ask(const char *dest, time_t *until);
/* reached: a host took a transaction (the destination is up); kept: the session stays open,
   and the slot with it, until sched_release. */
void sched_done(const char *dest, int reached, int kept);
void sched_release(const char *dest);

#endif
