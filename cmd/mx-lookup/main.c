/* postroom: ISC license, see LICENSE. */
/*
 * mx-lookup [-4|-6] [-s ADDRESS] DOMAIN: the addresses smtp-send would try for mail to DOMAIN,
 * in its order, one "PREFERENCE HOST ADDRESS" line each. The same mx_lookup smtp-send calls
 * in-process, so what an administrator sees here is what delivery does; -s asks one name server
 * (like dig @ADDRESS) to tell a resolver's view from the zone's.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "dns.h"
#include "log.h"

const char *PROG = "mx-lookup";

#define USAGE "[-4|-6] [-s ADDRESS] DOMAIN"

static const char *skip_reason(enum mx_skip_reason r)
{
	switch (r) {
	case MX_SKIP_LITERAL: return "literal";
	case MX_SKIP_MALFORMED: return "malformed";
	case MX_SKIP_NULL: return "null";
	case MX_SKIP_NOADDRESS: return "noaddress";
	case MX_SKIP_TEMP: return "temporary";
	}
	return "?";
}

int main(int argc, char **argv)
{
	struct dns_config c = { AF_UNSPEC, 0 };
	struct mx_list l = MX_LIST_ZERO;
	struct mx_skips skipped = MX_SKIPS_ZERO;
	unsigned char a[sizeof(struct in6_addr)];
	char why[512], text[INET6_ADDRSTRLEN], esc[4 * DNS_NAME_MAX + 4];
	int opt;

	opterr = 0;
	while ((opt = getopt(argc, argv, "46s:")) != -1) {
		switch (opt) {
		case '4': c.family = AF_INET; break;
		case '6': c.family = AF_INET6; break;
		case 's':
			if (inet_pton(AF_INET, optarg, a) != 1 && inet_pton(AF_INET6, optarg, a) != 1)
				die(EXIT_PERM, "-s %s: not a numeric IPv4 or IPv6 address", optarg);
			c.server = optarg;
			break;
		default: die_usage(USAGE);
		}
	}
	if (argc - optind != 1)
		die_usage(USAGE);

	const char *domain = argv[optind];
	enum dns_status st = mx_lookup_skips(&c, domain, &l, &skipped, why, sizeof why);
	/* On failure why names every host passed over, in the one line of the failure. */
	for (size_t i = 0; st == DNS_OK && i < skipped.n; i++) {
		const struct mx_skip *k = &skipped.s[i];
		log_escape(esc, sizeof esc, k->host, strlen(k->host));
		log_line("%s: MX %u %s ignored (%s): %s", domain, k->preference, esc,
			 skip_reason(k->reason), k->why);
	}
	if (st != DNS_OK)
		die(st == DNS_PERM ? EXIT_PERM : EXIT_TEMP, "%s", why);
	for (size_t i = 0; i < l.n; i++) {
		inet_ntop(l.a[i].family, &l.a[i].addr, text, sizeof text);
		printf("%u %s %s\n", l.a[i].preference, l.a[i].host, text);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		die_sys_code(EXIT_TEMP, "unable to write to stdout");
	mx_list_free(&l);
	mx_skips_free(&skipped);
	return 0;
}
