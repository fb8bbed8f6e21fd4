/* postroom: ISC license, see LICENSE. */
/*
 * DATA: from the 354 to the final reply. The message streams from the socket through the
 * decoder into the queue; nothing of it is held in memory beyond one read. A message that breaks
 * a limit is read to its end (so the session stays in step) and then refused, never half-queued.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "die.h"
#include "inject.h"
#include "log.h"
#include "smtp_data.h"
#include "smtp-recv.h"

/*
 * The client's address for Received's TCP-info, as an RFC 5321 section 4.1.3 address literal:
 * "[192.0.2.7]", "[IPv6:2001:db8::1]". An IPv4-mapped IPv6 address (::ffff:192.0.2.7, what a
 * dual-stack socket shows for an IPv4 client) is the IPv4 client it is. TCPREMOTEIP that is
 * no address at all (unset: "unknown") gives "", and the header leaves the TCP-info out.
 */
static void address_literal(const char *ip, char *out, size_t size)
{
	struct in_addr a4;
	struct in6_addr a6;
	char text[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, ip, &a4) == 1) {
		/* as it is */
	} else if (inet_pton(AF_INET6, ip, &a6) != 1) {
		*out = 0;
		return;
	} else if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, a6.s6_addr + 12, sizeof a4);
	} else {
		inet_ntop(AF_INET6, &a6, text, sizeof text);
		snprintf(out, size, " ([IPv6:%s])", text);
		return;
	}
	inet_ntop(AF_INET, &a4, text, sizeof text);
	snprintf(out, size, " ([%s])", text);
}

static void received(struct session *s, struct inject *j)
{
	char date[64], line[2304];	/* room for the longest helo, TLS details, host name, recipient */
	time_t now = time(0);
	struct tm tm;

	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", localtime_r(&now, &tm));
	/* RFC 3848 and RFC 6531: S for TLS, A for AUTH. */
	char with[16];
	int extended = s->hello == 2;	/* the suffixes exist for ESMTP only */
	snprintf(with, sizeof with, "%s%s%s", extended ? (s->utf8 ? "UTF8SMTP" : "ESMTP") : "SMTP",
		 extended && s->tls_protocol ? "S" : "", extended && s->authuser[0] ? "A" : "");
	char tls[256] = "";
	if (s->tls_protocol && strlen(s->tls_protocol) + strlen(s->tls_cipher) < 100)
		snprintf(tls, sizeof tls, "\n\t(using %s with cipher %s)", s->tls_protocol,
			 s->tls_cipher);
	char client[INET6_ADDRSTRLEN + 16];
	address_literal(s->c->remoteip, client, sizeof client);
	/* "for" only with one recipient: a list of them would tell each who else got it. */
	char forwho[320] = "";
	size_t pos = 0;
	const char *rcpt = inject_item_next(s->env.s, s->env.len, &pos, 'T');
	if (s->nrcpt == 1 && rcpt && strlen(rcpt) < 300)
		snprintf(forwho, sizeof forwho, "\n\tfor <%s>", rcpt);
	int n = snprintf(line, sizeof line,
			 "Received: from %s%s%s\n\tby %s (postroom) with %s id %s%s;\n\t%s\n",
			 s->helo, client, tls, s->c->hostname, with, j->id, forwho, date);
	if (n > 0 && (size_t)n < sizeof line)
		inject_put(j, line, (size_t)n);
}

static void log_message(struct session *s, struct inject *j, unsigned long long size)
{
	char from[600], to[1200];
	size_t o = 0;

	log_escape(from, sizeof from, s->sender.s, s->sender.len);
	size_t pos = 0;
	const char *r;
	for (size_t i = 0; o < sizeof to - 4 && (r = inject_item_next(s->env.s, s->env.len, &pos, 'T'));
	     i++) {
		char esc[600];
		log_escape(esc, sizeof esc, r, strlen(r));
		o += (size_t)snprintf(to + o, sizeof to - o, "%s<%s>", i ? "," : "", esc);
	}
	log_line("%ld %s accepted from=<%s> to=%s nrcpt=%zu size=%llu client=%s%s%s%s%s",
		 (long)getpid(), j->id, from, to, s->nrcpt, size, s->c->remoteip,
		 s->tls_protocol ? " tls=" : "", s->tls_protocol ? s->tls_protocol : "",
		 s->authuser[0] ? " user=" : "", s->authuser);
}

void smtp_data(struct session *s)
{
	static struct inject j;
	char decoded[sizeof s->inspace];
	struct data_decoder d = DATA_DECODER(s->c->text_max);
	unsigned long long size = 0;
	int toobig = 0;

	if (!inject_start(&j, s->c->queuedir, s->c->qmailqueue)) {
		log_line("%ld trouble: unable to start queueing: %s", (long)getpid(), strerror(errno));
		reply(s, "451 4.3.0 temporary queue failure");
		return;
	}
	/* Dropped by session_close if the session ends before the message does. */
	s->message = &j;
	reply(s, "354 go ahead, end with <CRLF>.<CRLF>");
	received(s, &j);

	/* However slowly the data comes, DATA ends by a deadline: SMTP_DATA_TIMEOUT, plus a second
	   for every SMTP_DATA_RATE bytes received, so that a big message on a slow (but not
	   absurdly slow) link gets the time it needs, while no client holds its slot longer than
	   SMTP_DATA_TIMEOUT + DATABYTES / SMTP_DATA_RATE seconds (each read also has SMTP_TIMEOUT). */
	long long start = deadline_now_ms();
	unsigned long long wire = 0;
	for (;;) {
		if (buf_unread(&s->in) == 0) {
			unsigned long long counted = wire < s->c->databytes ? wire : s->c->databytes;
			s->in.deadline_ms = start + (long long)s->c->data_timeout * 1000 +
					    (long long)(counted * 1000 / s->c->data_rate);
			ssize_t r = buf_fill(&s->in);
			s->in.deadline_ms = 0;
			if (r <= 0) {
				/* Mid-message end of input: nothing is queued, nobody to tell. */
				int timedout = r < 0 && errno == ETIMEDOUT;
				s->message = 0;
				inject_abort(&j);
				session_end(s, timedout ? "421 4.4.2 timeout in DATA, closing connection" : 0,
					    0);
			}
		}
		size_t used, n;
		enum data_result r = data_decode(&d, buf_peek(&s->in), buf_unread(&s->in), &used,
						 decoded, &n);
		buf_skip(&s->in, used);
		wire += used;
		if (!toobig && size + n > s->c->databytes)
			toobig = 1;
		size += n;
		if (!toobig && !d.toolong)
			inject_put(&j, decoded, n);
		if (r == DATA_BARE) {
			/* Where this message ends can no longer be known for sure: stop here. */
			s->message = 0;
			inject_abort(&j);
			session_end(s, "521 5.5.2 bare CR or LF in the message data, closing connection",
				    0);
		}
		if (r == DATA_END)
			break;
	}

	if (toobig || d.toolong) {
		s->message = 0;
		inject_abort(&j);
		char line[200];
		if (toobig)
			snprintf(line, sizeof line, "552 5.3.4 message exceeds the maximum size of %lu bytes",
				 s->c->databytes);
		else
			snprintf(line, sizeof line, "554 5.6.0 message has a line longer than %lu octets",
				 s->c->text_max);
		reply(s, line);
	} else {
		struct inject_result res;
		char line[400];
		s->message = 0;
		inject_finish(&j, s->sender.s, s->env.s, s->env.len, &res);
		if (res.ok) {
			s->messages++;
			log_message(s, &j, size);
			snprintf(line, sizeof line, "250 2.0.0 ok: queued as %s", j.id);
		} else {
			char esc[400];
			log_line("%ld refused client=%s reason=\"%s\"", (long)getpid(), s->c->remoteip,
				 log_escape(esc, sizeof esc, res.text, strlen(res.text)));
			/* A filter's own text may lack an enhanced code: add one. */
			int coded = res.text[0] >= '2' && res.text[0] <= '5' && res.text[1] == '.';
			snprintf(line, sizeof line, "%s %s%s", res.temporary ? "451" : "554",
				 coded ? "" : res.temporary ? "4.3.0 " : "5.3.0 ", res.text);
		}
		reply(s, line);
	}
	session_reset(s);
}
