/* postroom: ISC license, see LICENSE. */
#ifndef SMTP_DELIVER_H
#define SMTP_DELIVER_H

#include <stddef.h>

#include "dns.h"
#include "smtp_client.h"

/*
 * One delivery attempt of one message to recipients of one domain: the addresses in order
 * (mx_lookup's, or a smarthost's), each tried with an smtp_client session until every
 * recipient has a final answer (RFC 5321 section 5.1). Connection failures, a 4xx or 5xx
 * greeting, a dropped connection: the next address. An opportunistic STARTTLS whose handshake
 * fails: the same address once more in cleartext. What is still undecided after the last one
 * is deferred with the text of every address tried.
 *
 * Bounds, as Postfix's: at most SMTP_ADDRESS_LIMIT addresses tried (smtp_mx_address_limit), at
 * most SMTP_SESSION_LIMIT sessions that got a 220 greeting (smtp_mx_session_limit; a cleartext
 * retry counts with its address), and the whole attempt within c->t.attempt seconds (each
 * step's timeout is cut to what is left of it): a domain of many slow hosts cannot hold a
 * delivery for hours.
 */
#define SMTP_ADDRESS_LIMIT 5
#define SMTP_SESSION_LIMIT 2

struct smtp_route {
	const struct mx_address *a;	/* the addresses to try, in order */
	size_t n;
	unsigned port;
	int mx;			/* the addresses are MX hosts: check for loops (this machine's own
				   addresses and name); a smarthost is taken as given */
	const char *domain;	/* the recipients' domain, for the loop message */
	const char *tlsname;	/* the name a certificate must have; 0: each MX host's (the
				   address for a literal) */
	/* Called once, when every recipient has its status and before the last session's QUIT,
	   so that results are out even when the peer is slow to say goodbye; 0: none. */
	void (*decided)(void *arg, const struct smtpc_rcpt *r, size_t n);
	void *decided_arg;
	/* Out, when not 0: *reached is set when some host took a transaction (greeted us and
	   got to MAIL), so that a caller can tell a destination that is down from recipients
	   that were refused; with keep, a session that ended well is moved into *keep instead
	   of being closed (*kept set), for the caller to send the next message over. */
	int *reached;
	struct smtpc *keep;
	int *kept;
};

/* Sets every recipient's status (never SMTPC_PENDING afterwards). The smarthost's credentials
   (c->user) are never used on an MX route. */
void smtp_deliver(const struct smtpc_config *c, const struct smtp_route *route,
		  const char *sender, const struct smtpc_msg *m, struct smtpc_rcpt *r, size_t n);

/* Every pending recipient decided by why (status SMTPC_DEFERRED or SMTPC_FAILED), at where
   ("-" when no host was reached). */
void smtp_decide_all(struct smtpc_rcpt *r, size_t n, const struct smtpc_reply *why,
		     const char *where, enum smtpc_status status);

/*
 * The route to a domain's MX hosts (mx_lookup into *mx, which the caller frees with
 * mx_list_free): 1, or 0 when there is none, with every recipient of r decided: a null MX
 * (556 5.1.10) or a name that does not exist (550 5.1.2) for good, a DNS failure (451 4.4.3)
 * for later.
 */
int smtp_route_mx(const struct dns_config *dc, const char *domain, struct mx_list *mx,
		  struct smtpc_rcpt *r, size_t n);

/* A smarthost's addresses: a numeric one as it is, a name through the resolver (at most max).
   Returns how many, or 0 with why set. */
size_t smtp_relay_addresses(const char *host, int family, struct mx_address *a, size_t max,
			    int *permanent, char *why, size_t whylen);

/* 1 when the address (AF_INET/AF_INET6, network order) is one of this machine's interfaces'. */
int smtp_own_address(int family, const void *addr);

#endif
