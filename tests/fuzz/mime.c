/* postroom: ISC license, see LICENSE. */
/*
 * libFuzzer harness: the MIME parser and everything imap-serve makes of a parsed message
 * (lib/mime.c, mime_imap.c, mime_text.c, mime_binary.c, mime_thread.c, imap_subject.c). The input
 * is a message file as a Maildir holds it. It is parsed, and then: RFC822.SIZE, ENVELOPE, BODY
 * and BODYSTRUCTURE; BODY[section] and BINARY[section] for a fixed set of part numbers and every
 * kind of section (HEADER.FIELDS with a few names); SEARCH's header and body text, the sent
 * date, the first address of From and To; SORT's and THREAD's sent time and msg-ids; the base
 * subject (RFC 5256) of the decoded Subject and of the input's first line; and a substring
 * search of the body text for a piece of the input. The BODY[section] parser of FETCH is static
 * in cmd/imap-serve/messages.c: the sections here are built, not parsed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap_subject.h"
#include "mime.h"
#include "sa.h"

static void nomem(int ok)
{
	if (!ok)
		abort();	/* the fuzzer's inputs are small: out of memory is a bug */
}

static void sections(const struct mime_msg *m)
{
	static const unsigned paths[][4] = {
		{ 0 }, { 1, 1 }, { 1, 2 }, { 1, 3 }, { 2, 1, 1 }, { 2, 1, 2 }, { 2, 2, 1 },
		{ 3, 1, 1, 1 }, { 3, 2, 1, 2 }, { 3, 1, 2, 1 }, { 2, 3, 2 }, { 1, 0 },
	};
	static const char *const fields[] = { "subject", "content-type", "from", "x-nothing" };

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		for (int kind = MIME_SECTION_ALL; kind <= MIME_SECTION_MIME; kind++) {
			struct mime_section sec;
			memset(&sec, 0, sizeof sec);
			sec.nparts = paths[i][0];
			for (size_t k = 0; k < sec.nparts; k++)
				sec.part[k] = paths[i][k + 1];
			sec.kind = (enum mime_section_kind)kind;
			sec.fields = fields;
			sec.nfields = kind == MIME_SECTION_HEADER_FIELDS ? 4 : 2;

			struct sa out = SA_ZERO;
			nomem(mime_section_get(m, &sec, &out));
			sa_free(&out);
			if (kind == MIME_SECTION_ALL) {
				int decoded = 0;
				enum mime_binary_result r = mime_section_binary(m, &sec, &out, &decoded);
				if (r == MIME_BINARY_NOMEM)
					abort();
				sa_free(&out);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: ASan sees any read past the end. */
	char *msg = malloc(size ? size : 1);
	if (!msg)
		abort();
	memcpy(msg, data, size);

	struct mime_msg *m = mime_parse(msg, size);
	nomem(m != 0);
	if (mime_vsize(m) < size)
		abort();	/* CRLF line ends never make a message shorter */

	struct sa out = SA_ZERO, a = SA_ZERO, b = SA_ZERO, c = SA_ZERO;
	nomem(mime_envelope(m, &out));
	sa_free(&out);
	nomem(mime_bodystructure(m, 0, &out));
	sa_free(&out);
	nomem(mime_bodystructure(m, 1, &out));
	sa_free(&out);
	sections(m);

	nomem(mime_header_text(m, 0, &out));
	sa_free(&out);
	nomem(mime_body_text(m, &out));
	/* A needle from the input: its bytes 8 to 16. */
	if (size > 8)
		mime_text_contains(out.s ? out.s : "", out.len, msg + 8, size - 8 < 8 ? size - 8 : 8);
	sa_free(&out);

	int y, mo, d;
	if (mime_sent_date(m, &y, &mo, &d) && (mo < 1 || mo > 12 || d < 1 || d > 31))
		abort();
	time_t t;
	mime_sent_time(m, &t);
	nomem(mime_first_address(m, "from", &a, &b, &c));
	sa_free(&a), sa_free(&b), sa_free(&c);
	nomem(mime_first_address(m, "to", &a, &b, &c));
	sa_free(&a), sa_free(&b), sa_free(&c);
	nomem(mime_msgids(m, "message-id", 1, 1, &out));
	sa_free(&out);
	nomem(mime_msgids(m, "references", 0, 20, &out));
	sa_free(&out);
	nomem(mime_msgids(m, "in-reply-to", 1, 1, &out));
	sa_free(&out);

	int reply;
	nomem(mime_header_text(m, "subject", &a));
	nomem(imap_base_subject(a.s ? a.s : "", a.len, &out, &reply));
	sa_free(&a);
	sa_free(&out);

	/* The first line, decoded as a header value, and its base subject. */
	const char *nl = memchr(msg, '\n', size);
	size_t n = nl ? (size_t)(nl - msg) : size;
	nomem(mime_decode_words(msg, n, &a));
	nomem(imap_base_subject(a.s ? a.s : "", a.len, &out, &reply));
	sa_free(&out);
	nomem(imap_base_subject(msg, n, &out, &reply));
	sa_free(&out);
	sa_free(&a);

	mime_free(m);
	free(msg);
	return 0;
}
