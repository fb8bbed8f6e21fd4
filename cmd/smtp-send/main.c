/* postroom: ISC license, see LICENSE. */
/*
 * smtp-send: one delivery attempt of one message (stdin, LF line ends) from SENDER to
 * RECIPIENTs of one domain, through its MX hosts or a smarthost (-r), with one result line per
 * recipient on stdout. It decides nothing about retries or bounces: queue-run reads the lines.
 * The SMTP client is lib/smtp_client.c, the host walk lib/smtp_deliver.c, so that queue-run can
 * do the same in-process; this file only turns argv and the environment into their settings.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "die.h"
#include "dns.h"
#include "dsn_param.h"
#include "fmt.h"
#include "log.h"
#include "sa.h"
#include "smtp_deliver.h"
#include "smtp_options.h"

const char *PROG = "smtp-send";

#define USAGE "[-46] [-t none|may|encrypt|verify] [-C CAFILE] [-r HOST[:PORT]] [-a FILE] " \
	      "[-h NAME] [-s SERVER] [-T NAME=SECONDS,...] [-N NOTIFY] [-O ORCPT] [-R FULL|HDRS] " \
	      "[-V ENVID] SENDER RECIPIENT..."
#define RELAY_MAX 16	/* addresses of a smarthost name */

static void log_event(void *arg, const char *line)
{
	char esc[LOG_LINE_MAX];

	(void)arg;
	log_line("%s", log_escape(esc, sizeof esc, line, strlen(line)));
}

/* s upper-cased into out (size bytes, s checked to fit). */
static const char *upper(char *out, size_t size, const char *s)
{
	size_t i = 0;

	for (; s[i] && i < size - 1; i++)
		out[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
	out[i] = 0;
	return out;
}

/* The domain of a recipient, or 0 when it has none (it fails alone: 553 5.1.3). */
static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at && at[1] ? at + 1 : 0;
}

/* smtp_deliver's route->decided: the result lines, out before the last QUIT. */
static void print_results(void *arg, const struct smtpc_rcpt *r, size_t n)
{
	int *deferred = arg;

	for (size_t i = 0; i < n; i++) {
		size_t size = smtp_result_line_size(&r[i]);
		char *line = malloc(size);
		if (!line || !smtp_result_line(&r[i], line, size))
			die_sys_code(EXIT_TEMP, "unable to make the result line of %zu", i + 1);
		printf("%s\n", line);
		free(line);
		*deferred |= r[i].status != SMTPC_DELIVERED && r[i].status != SMTPC_FAILED;
	}
	if (fflush(stdout) == EOF || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write the results");
}

int main(int argc, char **argv)
{
	static struct smtpc_config c = { .t = SMTPC_TIMEOUTS_DEFAULT, .tls = SMTPC_TLS_MAY };
	static char host[256], relayhost[256], user[SMTP_CRED_MAX], password[SMTP_CRED_MAX];
	static char why[512];
	static struct mx_address relay[RELAY_MAX];
	struct dns_config dc = { AF_UNSPEC, 0 };
	struct mx_list mx = MX_LIST_ZERO;
	int deferred = 0;
	struct smtp_route route = { .port = 25, .mx = 1, .decided = print_results,
				    .decided_arg = &deferred };
	const char *relayspec = 0, *credfile = 0, *tls = 0, *timeouts = getenv("SMTP_SEND_TIMEOUTS");
	const char *notify = 0, *orcpt = 0, *ret = 0, *envid = 0;	/* DSN (RFC 3461) */
	struct sa msg = SA_ZERO;
	int opt;

	opterr = 0;	/* one line: the usage */
	/* The environment first, options over it. */
	if (timeouts && !smtp_timeouts_parse(&c.t, timeouts, why, sizeof why))
		die(EXIT_PERM, "SMTP_SEND_TIMEOUTS: %s", why);
	while ((opt = getopt(argc, argv, "46a:C:h:N:O:r:R:s:t:T:V:")) != -1) {
		switch (opt) {
		case '4': dc.family = AF_INET; break;
		case '6': dc.family = AF_INET6; break;
		case 'a': credfile = optarg; break;
		case 'C': c.cafile = optarg; break;
		case 'h': c.helo = optarg; break;
		case 'N': notify = optarg; break;
		case 'O': orcpt = optarg; break;
		case 'R': ret = optarg; break;
		case 'V': envid = optarg; break;
		case 'r': relayspec = optarg; break;
		case 's': dc.server = optarg; break;
		case 't': tls = optarg; break;
		case 'T':
			if (!smtp_timeouts_parse(&c.t, optarg, why, sizeof why))
				die(EXIT_PERM, "%s", why);
			break;
		default: die_usage(USAGE);
		}
	}
	argv += optind;
	argc -= optind;
	/* Credentials are a smarthost's: never offered to whatever MX a recipient names. */
	if (argc < 2 || (credfile && !relayspec))
		die_usage(USAGE);
	const char *sender = strcmp(argv[0], "<>") ? argv[0] : "";
	size_t n = (size_t)argc - 1;
	for (size_t i = 1; i <= n; i++) {
		const char *d = domain_of(argv[i]);
		if (!d)
			continue;
		if (!route.domain)
			route.domain = d;
		else if (!relayspec && strcasecmp(d, route.domain))
			die(EXIT_PERM, "the recipients are not all of one domain (%s, %s)",
			    route.domain, d);
	}
	if (tls) {
		static const char *levels[] = { "none", "may", "encrypt", "verify" };
		size_t i = 0;
		while (i < 4 && strcmp(tls, levels[i]))
			i++;
		if (i == 4)
			die_usage(USAGE);
		c.tls = (enum smtpc_tls)i;
	}
	/* Everything the arguments can get wrong, before the message is read. The DSN parameters
	   as smtp-recv takes them (dsn_param.h), so that a peer gets nothing it could refuse. */
	if (notify && !dsn_notify_ok(notify, strlen(notify)))
		die(EXIT_PERM, "bad -N: NEVER, or a list of SUCCESS, FAILURE, DELAY");
	if (orcpt && !dsn_orcpt_ok(orcpt, strlen(orcpt)))
		die(EXIT_PERM, "bad -O: addr-type;xtext of at most %d characters", DSN_ORCPT_MAX);
	if (ret && !dsn_ret_ok(ret, strlen(ret)))
		die(EXIT_PERM, "bad -R: FULL or HDRS");
	if (envid && !dsn_envid_ok(envid, strlen(envid)))
		die(EXIT_PERM, "bad -V: xtext of at most %d characters", DSN_ENVID_MAX);
	/* Stored and sent upper-cased, as smtp-recv stores them. */
	static char upper_notify[DSN_NOTIFY_MAX + 1], upper_ret[5];
	if (notify)
		notify = upper(upper_notify, sizeof upper_notify, notify);
	if (ret)
		ret = upper(upper_ret, sizeof upper_ret, ret);
	if (relayspec &&
	    !smtp_relay_parse(relayspec, relayhost, sizeof relayhost, &route.port, why, sizeof why))
		die(EXIT_PERM, "%s", why);
	if (credfile) {
		/* Before any connection: a file others can read is a leaked password. */
		if (!smtp_credentials_read(credfile, user, password, why, sizeof why))
			die(EXIT_TEMP, "%s", why);
		c.user = user;
		c.password = password;
		if (!tls)
			c.tls = SMTPC_TLS_VERIFY;
	}
	if (!c.helo || !*c.helo)
		c.helo = getenv("SMTP_HOSTNAME");
	if (!c.helo || !*c.helo) {
		if (gethostname(host, sizeof host - 1) < 0)
			die_sys_code(EXIT_TEMP, "unable to get the host name");
		c.helo = host;
	}
	c.log = log_event;

	char chunk[65536];
	for (;;) {
		ssize_t r = read(0, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_sys_code(EXIT_TEMP, "unable to read the message");
		if (r == 0)
			break;
		if (!sa_catb(&msg, chunk, (size_t)r))
			die_sys_code(EXIT_TEMP, "unable to read the message");
	}
	struct smtpc_msg m;
	smtpc_msg_init(&m, msg.s ? msg.s : "", msg.len);
	m.ret = ret;
	m.envid = envid;

	struct smtpc_rcpt *r = calloc(n, sizeof *r);
	if (!r)
		die_sys_code(EXIT_TEMP, "out of memory");
	for (size_t i = 0; i < n; i++) {
		r[i].addr = argv[i + 1];
		r[i].notify = notify;
		r[i].orcpt = orcpt;
		if (!domain_of(r[i].addr)) {
			struct smtpc_reply w;
			smtpc_reply_set(&w, 553, "5.1.3", "recipient address has no domain");
			smtp_decide_all(&r[i], 1, &w, "-", SMTPC_FAILED);
		}
	}

	/* smtp_client.h: OpenSSL's writes can raise it; a broken connection is an error. */
	signal(SIGPIPE, SIG_IGN);
	if (!route.domain) {
		/* Every recipient failed already: nothing to connect for. */
	} else if (relayspec) {
		int permanent;
		c.implicit_tls = route.port == 465;
		route.a = relay;
		route.n = smtp_relay_addresses(relayhost, dc.family, relay, RELAY_MAX, &permanent,
					       why, sizeof why);
		route.mx = 0;
		route.tlsname = relay[0].host;
		if (!route.n) {
			/* A smarthost without an address is the administrator's to fix: the mail
			   waits for it. */
			struct smtpc_reply w;
			smtpc_reply_set(&w, 451, "4.4.3", "%s", why);
			smtp_decide_all(r, n, &w, "-", SMTPC_DEFERRED);
		}
	} else {
		/* Recipients without a route are decided by smtp_route_mx; route.n is then 0. */
		smtp_route_mx(&dc, route.domain, &mx, r, n);
		route.a = mx.a;
		route.n = mx.n;
	}
	/* The result lines come from print_results, once every recipient has one. */
	smtp_deliver(&c, &route, sender, &m, r, n);
	explicit_bzero(password, sizeof password);
	mx_list_free(&mx);
	free(r);
	sa_free(&msg);
	return deferred ? EXIT_TEMP : 0;
}
