/* postroom: ISC license, see LICENSE. */
/*
 * COMPRESS=DEFLATE (RFC 4978): after login, the client may have the rest of the connection
 * compressed both ways, from right after the CRLF of our OK. lib/deflate_io does the work
 * below the buffers; the commands above them see the same bytes as before.
 * TLS, when there is any, is tls-wrap's or tls-server's, in front of this process and started
 * before login, so it always comes before compression, as the RFC wants; STARTTLS is a
 * command of the pre-login process only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "deflate_io.h"
#include "imap-serve.h"
#include "log.h"

void cmd_compress(struct session *s)
{
	struct conn *c = &s->c;
	const char *tag = conn_tag(c);

	/* compress = "COMPRESS" SP algorithm, an atom; BAD for what is not DEFLATE (RFC 4978
	   section 3; Dovecot says NO to an algorithm it does not know). */
	if (c->cmd.ntok != 3) {
		bad(c, s->cf, "COMPRESS takes one algorithm");
		return;
	}
	/* Once active, any algorithm is NO [COMPRESSIONACTIVE], as Dovecot answers. */
	if (c->compress) {
		out(c, "%s NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n", tag);
		return;
	}
	if (!imap_tok_is(&c->cmd, 2, "DEFLATE")) {
		bad(c, s->cf, "Unknown compression algorithm");
		return;
	}
	struct deflate_io *d = deflate_io_new(&c->in);
	if (!d) {
		log_line("%s: unable to start compression: %s", s->user, strerror(errno));
		out(c, "%s NO [UNAVAILABLE] Compression is not available now\r\n", tag);
		return;
	}
	out(c, "%s OK DEFLATE active\r\n", tag);
	out_flush(c);
	deflate_io_start(d, &c->in, &c->out);
	c->compress = d;
	log_line("%s: compression started: DEFLATE", s->user);
}

const char *compress_counts(const struct conn *c)
{
	static char text[128];
	struct deflate_io_counts n;

	if (!c->compress)
		return "";
	deflate_io_counts(c->compress, &n);
	snprintf(text, sizeof text, " deflate_in=%llu/%llu deflate_out=%llu/%llu",
		 n.in_compressed, n.in_plain, n.out_compressed, n.out_plain);
	return text;
}
