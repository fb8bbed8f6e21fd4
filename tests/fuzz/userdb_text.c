/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the userdb(5) text reader (lib/userdb_text.c) and, behind it, the checks
 * of lib/userdb_build.c. The input is a users file, read from a memfd by userdb_text_compile
 * into a build in a private directory (on /dev/shm when there is one: the finish fsyncs). When
 * it compiles, the database is finished and opened, and the second word of each of the first
 * 64 lines (the name a line defines), and a few fixed names, are resolved (lib/resolve.c) and
 * looked up (lib/userdb.c): fuzzed alias graphs, loops and catch-alls included.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "die.h"
#include "resolve.h"
#include "userdb.h"
#include "userdb_build.h"

const char *PROG = "fuzz-userdb_text";	/* lib/ names it in messages */

static int memfd = -1;
static char dir[4096], path[4200];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof dir, "%s/postroom-fuzz-userdb.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof path, "%s/users.cdb", dir);
	if ((memfd = memfd_create("userdb_text", MFD_CLOEXEC)) < 0)
		abort();
	atexit(cleanup);
}

static void look_up(struct userdb *u, const char *name, size_t n)
{
	static const struct resolve_config rc[] = { { "+", 0 }, { "-+", "alice@example.test" } };
	struct userdb_mailbox mb;
	const char *targets;
	size_t len;

	for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) {
		struct targets t = TARGETS_ZERO;
		if (!resolve(u, name, n, &rc[i], &t))
			abort();	/* a database we just wrote cannot fail to read */
		for (size_t k = 0; k < t.n; k++)
			if (!t.t[k].addr || (t.t[k].kind == TARGET_MAILBOX && !t.t[k].maildir) ||
			    (t.t[k].kind == TARGET_FAILED && !t.t[k].reason))
				abort();
		targets_free(&t);
	}
	if (userdb_mailbox(u, name, n, &mb) == 1 &&
	    !userdb_maildir_safe(mb.maildir, mb.maildir_len))
		abort();	/* the build refuses an unsafe maildir */
	userdb_alias(u, name, n, &targets, &len);
	const char *at = memchr(name, '@', n);
	if (at)
		userdb_domain(u, at + 1, n - (size_t)(at + 1 - name));
	userdb_domain(u, name, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0)
		setup();
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();

	struct userdb_build b = USERDB_BUILD_ZERO;
	struct userdb_text_error err;
	if (!userdb_build_start(&b, path))
		abort();
	int r = userdb_text_compile(memfd, &b, &err);
	if (r < 0 && !memchr(err.what, 0, sizeof err.what))
		abort();
	if (r != 1) {
		userdb_build_abort(&b);
		return 0;
	}
	if (!userdb_build_finish(&b))
		abort();

	struct userdb u = USERDB_ZERO;
	if (!userdb_open(&u, path))
		abort();
	char first[300];
	userdb_first_domain(&u, first, sizeof first);
	const char *stamp;
	size_t stamplen;
	userdb_stamp(&u, &stamp, &stamplen);
	static const char *const fixed[] = { "postmaster@example.test", "postmaster", "a@b",
					     "@example.test", "" };
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		look_up(&u, fixed[i], strlen(fixed[i]));

	/* The second word of each line. */
	const char *p = (const char *)data, *end = p + size;
	for (int line = 0; line < 64 && p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *w = p;
		while (w < e && *w != ' ' && *w != '\t')
			w++;
		while (w < e && (*w == ' ' || *w == '\t'))
			w++;
		const char *we = w;
		while (we < e && *we != ' ' && *we != '\t' && *we != '\r')
			we++;
		if (we > w)
			look_up(&u, w, (size_t)(we - w));
		p = nl ? nl + 1 : end;
	}
	userdb_close(&u);
	return 0;
}
