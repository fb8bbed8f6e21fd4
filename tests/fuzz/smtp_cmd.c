/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: what smtp-recv parses of a command line with lib/. The input is the
 * client's side of a session: it is read with getln from a buf on a memfd, as smtp-recv reads
 * its stdin, in lines of at most 1024 bytes. In each line, MAIL FROM's and RCPT TO's path goes
 * to addr_parse_path and each parameter's value to the DSN checks of lib/dsn_param.c and into
 * the envelope items (inject_item, read back with inject_item_next); an AUTH PLAIN response is
 * base64-decoded and split (lib/sasl.c); the line is escaped for the log. lib/smtp_options.c's
 * readers (timeouts and relay host, which smtp-send and queue-run take as text) get each line
 * too. The verb dispatch and the split of "FROM:<path> params" are static in
 * cmd/smtp-recv/session.c, out of reach: the split here is a plain one, not smtp-recv's.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "base64.h"
#include "buf.h"
#include "die.h"
#include "dsn_param.h"
#include "getln.h"
#include "inject.h"
#include "log.h"
#include "sa.h"
#include "sasl.h"
#include "smtp_options.h"

#define LINE_MAX_FUZZ 1024

const char *PROG = "fuzz-smtp_cmd";	/* lib/log.c names it */

static int memfd = -1;

static void param(struct sa *items, const char *p, size_t n)
{
	const char *eq = memchr(p, '=', n);
	size_t k = eq ? (size_t)(eq - p) : n;
	const char *v = eq ? eq + 1 : p + n;
	size_t vn = eq ? n - k - 1 : 0;
	char type = 0;

	if (k == 3 && !strncasecmp(p, "RET", 3) && dsn_ret_ok(v, vn))
		type = 'H';
	else if (k == 5 && !strncasecmp(p, "ENVID", 5) && dsn_envid_ok(v, vn))
		type = 'E';
	else if (k == 6 && !strncasecmp(p, "NOTIFY", 6) && dsn_notify_ok(v, vn))
		type = 'N';
	else if (k == 5 && !strncasecmp(p, "ORCPT", 5) && dsn_orcpt_ok(v, vn))
		type = 'O';
	/* Every check sees every value, whatever its keyword. */
	dsn_ret_ok(v, vn);
	dsn_envid_ok(v, vn);
	dsn_notify_ok(v, vn);
	dsn_orcpt_ok(v, vn);
	if (type && inject_item(items, type, v, vn)) {
		size_t pos = 0;
		const char *got = 0, *x;
		while ((x = inject_item_next(items->s, items->len, &pos, type)))
			got = x;
		if (!got || strlen(got) != vn)
			abort();	/* the last item of its type is the one just added */
	}
}

static void path_and_params(struct sa *items, const char *arg, size_t n, int utf8)
{
	while (n && *arg == ' ')
		arg++, n--;
	const char *gt = memchr(arg, '>', n);
	size_t len = gt ? (size_t)(gt - arg) + 1 : n;
	size_t start, alen;
	if (addr_parse_path(arg, len, &start, &alen, utf8) == ADDR_OK) {
		if (start + alen > len)
			abort();
		if (alen && inject_item(items, 'T', arg + start, alen)) {
			size_t pos = 0;
			if (!inject_item_next(items->s, items->len, &pos, 'T'))
				abort();
		}
	}
	arg += len, n -= len;
	while (n) {
		while (n && *arg == ' ')
			arg++, n--;
		const char *sp = memchr(arg, ' ', n);
		size_t pn = sp ? (size_t)(sp - arg) : n;
		if (pn)
			param(items, arg, pn);
		arg += pn, n -= pn;
	}
}

static void auth(const char *arg, size_t n)
{
	char out[9216];	/* smtp-recv's AUTH_LINE_MAX of base64, decoded */
	size_t outlen;
	struct sasl_plain p;

	if (!base64_decode(arg, n, out, sizeof out, &outlen))
		return;
	if (outlen > sizeof out)
		abort();
	if (sasl_plain_split(out, outlen, &p) == SASL_PLAIN_OK &&
	    (p.user < out || p.user + p.ulen > out + outlen || p.pass < out ||
	     p.pass + p.plen > out + outlen))
		abort();
}

static void line(char *s, size_t n)
{
	struct sa items = SA_ZERO;
	char esc[600];

	log_escape(esc, sizeof esc, s, n);
	if (n >= 10 && !strncasecmp(s, "MAIL FROM:", 10))
		path_and_params(&items, s + 10, n - 10, (int)(n & 1) * ADDR_UTF8);
	else if (n >= 8 && !strncasecmp(s, "RCPT TO:", 8))
		path_and_params(&items, s + 8, n - 8, (int)(n & 1) * ADDR_UTF8);
	else if (n >= 11 && !strncasecmp(s, "AUTH PLAIN ", 11))
		auth(s + 11, n - 11);
	else
		auth(s, n);	/* a response line after a 334 */
	sa_free(&items);

	/* smtp_options takes NUL-terminated text. */
	if (memchr(s, 0, n))
		return;
	s[n] = 0;
	struct smtpc_timeouts t;
	char why[256], host[256];
	unsigned port;
	memset(&t, 0, sizeof t);
	smtp_timeouts_parse(&t, s, why, sizeof why);
	if (smtp_relay_parse(s, host, sizeof host, &port, why, sizeof why) &&
	    !memchr(host, 0, sizeof host))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char space[4096], l[LINE_MAX_FUZZ + 1];
	struct buf in;
	size_t len;

	if (memfd < 0 && (memfd = memfd_create("smtp_cmd", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	buf_init(&in, memfd, space, sizeof space);
	for (;;) {
		enum getln_result r = getln(&in, l, LINE_MAX_FUZZ, &len, '\n');
		if (r == GETLN_TOOLONG)
			continue;
		if (r != GETLN_OK && r != GETLN_EOF)
			abort();
		if (len > LINE_MAX_FUZZ)
			abort();
		size_t n = len;
		if (r == GETLN_OK) {
			if (!n || l[n - 1] != '\n')
				abort();
			n--;
			if (n && l[n - 1] == '\r')
				n--;
		}
		line(l, n);
		if (r == GETLN_EOF)
			break;
	}
	return 0;
}
