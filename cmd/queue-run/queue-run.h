/* postroom: ISC license, see LICENSE. */
#ifndef QUEUE_RUN_H
#define QUEUE_RUN_H

#include <sys/types.h>

#include "resolve.h"

/* What main read from argv and the environment; frozen before anything runs. */
struct config {
	const char *queuedir;
	const char *userdb;
	const char *mailroot;
	const char *localdelivery;	/* external delivery program, or 0 for in-process */
	struct resolve_config resolve;	/* RECIPIENT_DELIMITER, POSTMASTER */
	int overquota_permanent;
	unsigned concurrency;
	int once;
};

/* What became of one message; the worker's exit status. */
enum outcome {
	OUTCOME_FINISHED = 0,	/* removed from msg/ (delivered, or moved to bounce/) */
	OUTCOME_PENDING = 1,	/* some targets wait for a later attempt */
	OUTCOME_SKIPPED = 2,	/* locked by another worker, or already gone */
	OUTCOME_TROUBLE = 111,	/* could not work on it; postponed */
};

/* deliver.c: one attempt at every target of msg/ID not yet done. Runs in a worker process. */
enum outcome deliver_message(const struct config *c, int dirfd, const char *id);

/* schedule.c: the main loop (or one pass with c->once). Returns the exit code. */
int schedule_run(const struct config *c);

#endif
