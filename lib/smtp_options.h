/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_OPTIONS_H
#define SMTP_OPTIONS_H

#include <stddef.h>

#include "smtp_client.h"

/*
 * The settings of a remote delivery that come as text (smtp-send's options and environment;
 * queue-run's, for its in-process deliveries), read one way for both. Each returns 1, or 0
 * with one line in why.
 */

#define SMTP_CRED_MAX 512	/* a user name or a password */

/* "connect=30,greeting=300,...,quit=5,attempt=1800" (names as in struct smtpc_timeouts), each
   1 to 86400 s. */
int smtp_timeouts_parse(struct smtpc_timeouts *t, const char *list, char *why, size_t whylen);

/* "HOST", "HOST:PORT", "[IPV6]:PORT" or a bare IPv6 address; port 25 unless given. */
int smtp_relay_parse(const char *spec, char *host, size_t hostlen, unsigned *port, char *why,
		     size_t whylen);

/*
 * A credentials file: the user name on the first line, the password on the second. Refused
 * when the group or others may read or write it, as ssh refuses a private key.
 */
int smtp_credentials_read(const char *file, char *user, char *password, char *why,
			  size_t whylen);

/* The result line, without the LF:
   RECIPIENT delivered|deferred|failed CODE ENHANCED "TEXT" host=NAME[ADDRESS] tls=...
   RECIPIENT and TEXT escaped as log_escape does (controls, '"' and '\\' as \xNN). Returns 1,
   or 0 with errno set (EMSGSIZE: out is smaller than smtp_result_line_size says; ENOMEM). */
int smtp_result_line(const struct smtpc_rcpt *r, char *out, size_t outsize);
size_t smtp_result_line_size(const struct smtpc_rcpt *r);

#endif
