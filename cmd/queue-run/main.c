/* postroom: ISC license, see LICENSE. */
/*
 * queue-run: delivers what is in the queue. It runs forever under s6, woken by queue-inject
 * through the trigger FIFO, or with -1 makes one pass and exits, for an administrator who wants
 * to see what happens to the mail that is waiting. Each message is delivered by a worker
 * process, so that a slow Maildir, a slow peer or a crash touches one message, and up to -c at
 * once, so that the disk's flushes and the network's waits overlap.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "die.h"
#include "fmt.h"
#include "queue-run.h"
#include "smtp_options.h"

const char *PROG = "queue-run";

#define USAGE "[-1] [-c concurrency] [-p per-destination] [-d program]"
#define CONCURRENCY_DEFAULT 100	/* Postfix's default_process_limit: a slow domain holds
				   at most DOMAIN_LIMIT_DEFAULT of them */
#define CONCURRENCY_MAX 1000
#define DOMAIN_LIMIT_DEFAULT 20		/* Postfix's default_destination_concurrency_limit */

/* "300", "5m", "4h", "5d": seconds; 0 when it is none of these. */
static int scan_duration(const char *s, unsigned *out)
{
	size_t n = strlen(s);
	unsigned long long v, unit = 1;

	if (n && strchr("smhd", s[n - 1])) {
		unit = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
		n--;
	}
	if (!n || !scan_ullong(s, n, &v) || v > 10 * 365 * 86400ULL / unit)
		return 0;
	*out = (unsigned)(v * unit);
	return 1;
}

static void duration_env(const char *name, unsigned *out)
{
	const char *v = getenv(name);

	if (v && *v && !scan_duration(v, out))
		die(EXIT_PERM, "%s must be a number of seconds, or of minutes, hours or days "
		    "(5m, 4h, 5d): %s", name, v);
}

/* Remote delivery's settings, as smtp-send reads them. */
static void remote_config(struct config *c)
{
	static char host[256], user[SMTP_CRED_MAX], password[SMTP_CRED_MAX];
	char why[512];
	const char *tls = getenv("SMTP_TLS"), *timeouts = getenv("SMTP_SEND_TIMEOUTS");
	const char *auth = getenv("SMARTHOST_AUTH");

	c->smtp = (struct smtpc_config){ .t = SMTPC_TIMEOUTS_DEFAULT, .tls = SMTPC_TLS_MAY };
	c->dns = (struct dns_config){ AF_UNSPEC, 0 };
	const char *defer = getenv("DEFER_REMOTE");
	c->defer_remote = defer && *defer && strcmp(defer, "0");
	c->remotedelivery = getenv("REMOTEDELIVERY");
	if (c->remotedelivery && !*c->remotedelivery)
		c->remotedelivery = 0;
	if (timeouts && !smtp_timeouts_parse(&c->smtp.t, timeouts, why, sizeof why))
		die(EXIT_PERM, "SMTP_SEND_TIMEOUTS: %s", why);
	c->smarthost = getenv("SMARTHOST");
	if (c->smarthost && !*c->smarthost)
		c->smarthost = 0;
	if (c->smarthost && !smtp_relay_parse(c->smarthost, c->relayhost, sizeof c->relayhost,
					      &c->relayport, why, sizeof why))
		die(EXIT_PERM, "SMARTHOST: %s", why);
	if (auth && *auth) {
		if (!c->smarthost)
			die(EXIT_PERM, "SMARTHOST_AUTH without SMARTHOST: credentials go to a "
			    "smarthost only");
		/* Before any delivery: a file others can read is a leaked password. */
		if (!smtp_credentials_read(auth, user, password, why, sizeof why))
			die(EXIT_TEMP, "SMARTHOST_AUTH: %s", why);
		c->smtp.user = user;
		c->smtp.password = password;
		c->smtp.tls = SMTPC_TLS_VERIFY;
	}
	if (tls && *tls) {
		static const char *levels[] = { "none", "may", "encrypt", "verify" };
		size_t i = 0;
		while (i < 4 && strcmp(tls, levels[i]))
			i++;
		if (i == 4)
			die(EXIT_PERM, "SMTP_TLS must be none, may, encrypt or verify: %s", tls);
		c->smtp.tls = (enum smtpc_tls)i;
	}
	c->smtp.cafile = getenv("SMTP_CAFILE");
	c->smtp.helo = getenv("SMTP_HOSTNAME");
	if (!c->smtp.helo || !*c->smtp.helo) {
		if (gethostname(host, sizeof host - 1) < 0)
			die_sys_code(EXIT_TEMP, "unable to get the host name");
		c->smtp.helo = host;
	}
}

int main(int argc, char **argv)
{
	static struct config c = {
		.concurrency = CONCURRENCY_DEFAULT,
		.domain_limit = DOMAIN_LIMIT_DEFAULT,
		.retry_min = 300,		/* 5 minutes, then doubling... */
		.retry_max = 3600,		/* ...to an hour at most */
		.lifetime = 5 * 86400,		/* Postfix's maximal_queue_lifetime */
		.delay_warning = 4 * 3600,	/* OpenSMTPD's */
		.cache_time = 2,		/* Postfix's smtp_connection_cache_time_limit */
		.return_max = 10 * 1024 * 1024,
	};
	unsigned long long n;
	int opt;

	c.localdelivery = getenv("LOCALDELIVERY");
	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "1c:d:p:")) != -1) {
		switch (opt) {
		case '1':
			c.once = 1;
			break;
		case 'c':
			if (!scan_ullong_str(optarg, &n) || n < 1 || n > CONCURRENCY_MAX)
				die_usage(USAGE);
			c.concurrency = (unsigned)n;
			break;
		case 'd':
			c.localdelivery = optarg;
			break;
		case 'p':
			if (!scan_ullong_str(optarg, &n) || n < 1 || n > CONCURRENCY_MAX)
				die_usage(USAGE);
			c.domain_limit = (unsigned)n;
			break;
		default:
			die_usage(USAGE);
		}
	}
	if (optind != argc)
		die_usage(USAGE);
	if (c.localdelivery && !*c.localdelivery)
		c.localdelivery = 0;
	c.queuedir = env_need("QUEUEDIR");
	c.userdb = env_need("USERDB");
	c.mailroot = env_need("MAILROOT");
	resolve_config_env(&c.resolve);
	const char *overquota = getenv("OVERQUOTA");
	if (overquota && *overquota && strcmp(overquota, "defer")) {
		if (strcmp(overquota, "bounce"))
			die(EXIT_PERM, "OVERQUOTA must be defer or bounce");
		c.overquota_permanent = 1;
	}
	duration_env("RETRY_MIN", &c.retry_min);
	duration_env("RETRY_MAX", &c.retry_max);
	duration_env("QUEUE_LIFETIME", &c.lifetime);
	duration_env("DELAY_WARNING", &c.delay_warning);
	duration_env("CONNECTION_CACHE_TIME", &c.cache_time);
	if (!c.retry_min)
		c.retry_min = 1;
	if (c.retry_max < c.retry_min)
		c.retry_max = c.retry_min;
	remote_config(&c);
	return schedule_run(&c);
}
