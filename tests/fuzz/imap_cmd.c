/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the IMAP command reader (lib/imap_cmd.c). The input is the client's side
 * of a session, read from a memfd through a buf as imap-serve reads its stdin; the continuation
 * requests go to /dev/null. Commands are read until the end of input or a result that closes
 * the connection, under small limits (so that the fuzzer reaches them; the first byte chooses
 * among three sets, imap-serve's before login among them), and each command's tokens are
 * checked to lie within its bytes and looked at as imap-serve does (imap_tok_is, imap_tok_cstr,
 * imap_tok_skip).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "imap_cmd.h"
#include "sa.h"

static int memfd = -1, devnull = -1;

static const struct imap_limits limits[] = {
	/* line_max, literal_max, append_max, append_total, discard_max, tokens_max, depth_max */
	{ 256, 64, 128, 200, 512, 32, 4 },
	{ 8192, 8192, 8192, 8192, 0, 20000, 64 },	/* imap-serve's before login */
	{ 65536, 65536, 1 << 20, 1 << 20, 1 << 21, 20000, 64 },	/* after, with a small APPENDLIMIT */
};

static void look(const struct imap_cmd *cmd)
{
	char s[256];

	for (size_t i = 0; i < cmd->ntok; i++) {
		const struct imap_tok *t = &cmd->tok[i];
		if (t->off > cmd->data.len || t->len > cmd->data.len - t->off)
			abort();
		imap_tok_is(cmd, i, "APPEND");
		if (imap_tok_cstr(cmd, i, s, sizeof s) && strlen(s) >= sizeof s)
			abort();
		size_t j = imap_tok_skip(cmd, i);
		if (j <= i || j > cmd->ntok + 1)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("imap_cmd", MFD_CLOEXEC);
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (memfd < 0 || devnull < 0)
			abort();
	}
	const struct imap_limits *lim = &limits[size ? data[0] % 3 : 0];
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size ||
	    lseek(memfd, size ? 1 : 0, SEEK_SET) < 0)
		abort();

	char inspace[4096], outspace[1024], why[256];
	struct buf in, out;
	buf_init(&in, memfd, inspace, sizeof inspace);
	buf_init(&out, devnull, outspace, sizeof outspace);
	in.flush_first = &out;
	struct imap_cmd cmd;
	memset(&cmd, 0, sizeof cmd);
	for (int n = 0; n < 10000; n++) {
		why[0] = 0;
		enum imap_read_result r = imap_cmd_read(&cmd, &in, &out, lim, why, sizeof why);
		if (!memchr(why, 0, sizeof why))
			abort();
		if (r == IMAP_READ_OK)
			look(&cmd);
		else if (r == IMAP_READ_BAD || r == IMAP_READ_TOOBIG) {
			if (cmd.ntok)
				look(&cmd);	/* the tag, and what was read before the trouble */
		} else
			break;
		/* Bounded memory, whatever the peer sends: each token a line or a literal. */
		if (cmd.data.len > (lim->tokens_max + 1) * (lim->line_max + 2 + lim->literal_max) +
					   lim->append_total)
			abort();
	}
	sa_free(&cmd.data);
	free(cmd.tok);
	return 0;
}
