/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the SMTP DATA decoder (lib/smtp_data.c). The input is what a client sends
 * after the 354. It is decoded in one call, then again in pieces of every size from 1 to 16
 * bytes and of 4096 (as reads from the network cut it): each decode reads and writes only its
 * own buffers (ASan sees any byte past them), and every cut gives the same result, the same
 * bytes out, the same input used and the same verdict on line length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

struct run {
	enum data_result r;
	size_t used, outlen;
	int toolong;
};

static struct run decode(const uint8_t *data, size_t size, size_t piece, char *out)
{
	struct data_decoder d = DATA_DECODER(1000);
	struct run run = { DATA_MORE, 0, 0, 0 };

	/* Each piece is copied to the end of a buffer of the piece's size, and decoded into the
	   end of another: a read or write past the piece runs into ASan's redzone. */
	char *in = malloc(piece), *o = malloc(piece);
	if (!in || !o)
		abort();
	while (run.used < size) {
		size_t n = size - run.used < piece ? size - run.used : piece, used, outlen;
		char *i = in + piece - n, *oi = o + piece - n;
		memcpy(i, data + run.used, n);
		run.r = data_decode(&d, i, n, &used, oi, &outlen);
		if (used > n || outlen > used)
			abort();
		memcpy(out + run.outlen, oi, outlen);
		run.used += used;
		run.outlen += outlen;
		if (run.r != DATA_MORE)
			break;
		if (used != n)
			abort();	/* MORE means all input used */
	}
	free(in);
	free(o);
	run.toolong = d.toolong;
	return run;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *whole = malloc(size ? size : 1), *cut = malloc(size ? size : 1);
	if (!whole || !cut)
		abort();
	struct run a = decode(data, size, size ? size : 1, whole);
	static const size_t pieces[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 4096 };
	for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
		struct run b = decode(data, size, pieces[i], cut);
		if (a.r != b.r || a.used != b.used || a.outlen != b.outlen || a.toolong != b.toolong ||
		    memcmp(whole, cut, a.outlen))
			abort();
	}
	free(whole);
	free(cut);
	return 0;
}
