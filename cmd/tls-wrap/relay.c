/* postroom: ISC license, see LICENSE. */
/*
 * The TLS session: the handshake under a deadline, then the relay between the client and the
 * program. Every descriptor is non-blocking; each round tries every transfer that has room and
 * only then waits in poll(2) for what the stalled ones asked for, so that neither direction can
 * hold up the other and OpenSSL's wish to write while reading (and the reverse) is honoured.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "memory.h"
#include "tls-wrap.h"

const char *tls_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : 0;

	ERR_clear_error();
	return r ? r : "unknown error";
}

static void nonblocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* What an SSL call that did not finish waits for (its SSL_get_error), as poll events on the
   client's fds; 0 when it failed for good or the client closed. */
static short ssl_wants(int error)
{
	switch (error) {
	case SSL_ERROR_WANT_READ:
		return POLLIN;
	case SSL_ERROR_WANT_WRITE:
		return POLLOUT;
	default:
		return 0;
	}
}

static void set_failure(struct session *s, int e, int ret, const char *when)
{
	if (e == SSL_ERROR_SYSCALL && !ERR_peek_last_error())
		snprintf(s->failure, sizeof s->failure, "%s: %s", when,
			 errno && ret < 0 ? strerror(errno) : "connection closed");
	else if (e == SSL_ERROR_ZERO_RETURN)
		snprintf(s->failure, sizeof s->failure, "%s: connection closed", when);
	else
		snprintf(s->failure, sizeof s->failure, "%s: %s", when, tls_reason());
}

/* The program decides when to send (smtp-recv flushes its replies only before it waits for the
   client), so each record goes at once, never held back by Nagle's algorithm behind an earlier
   one not yet acknowledged. Not a socket (a pipe): nothing to do. */
static void no_delay(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/* TLS 1.3 ends with the client's Finished, which nothing of ours answers at once; a client that
   keeps Nagle's algorithm on (most do) then holds its first command back until our delayed ACK
   of the Finished, 40 ms on Linux. Sending that ACK now saves every session the wait. */
static void ack_now(int fd)
{
	int on = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

int tls_handshake(struct session *s, unsigned long timeout)
{
	long long deadline = now_ms() + (long long)timeout * 1000;

	nonblocking(s->net_in);
	nonblocking(s->net_out);
	no_delay(s->net_out);
	for (;;) {
		errno = 0;
		int r = SSL_accept(s->ssl);
		if (r == 1) {
			ack_now(s->net_in);
			return 1;
		}
		int e = SSL_get_error(s->ssl, r);
		short want = ssl_wants(e);
		if (!want) {
			set_failure(s, e, r, "handshake failed");
			return 0;
		}
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = want == POLLIN ? s->net_in : s->net_out, .events = want };
		if (left <= 0 || poll(&p, 1, (int)(left > 0 ? left : 0)) == 0) {
			snprintf(s->failure, sizeof s->failure, "handshake timed out after %lus",
				 timeout);
			return 0;
		}
	}
}

size_t tls_details(struct session *s, char out[][300], size_t max)
{
	const char *sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
	size_t n = 0;

	if (n < max)
		snprintf(out[n++], 300, "SSL_PROTOCOL=%s", SSL_get_version(s->ssl));
	if (n < max)
		snprintf(out[n++], 300, "SSL_CIPHER=%s", SSL_get_cipher_name(s->ssl));
	if (sni && n < max)
		snprintf(out[n++], 300, "SSL_TLS_SNI_SERVERNAME=%s", sni);
	return n;
}

/* One direction's bytes in flight, in whole pages of their own (given back at rest). */
#define PENDING_SIZE 16384
struct pending {
	char *x;
	size_t off, len;
};

/* How long a session may be quiet before it rests. */
#define QUIET_MS 2000

/*
 * Most sessions (IMAP above all) are quiet most of their lives: a quiet one gives back the
 * pages that its last burst of traffic left touched, in the buffers and in the heap (the
 * handshake's), which a worker of tls-server would otherwise keep through all its sessions.
 */
static void rest(struct pending *down, struct pending *up)
{
	if (!down->len)
		memory_discard(down->x, PENDING_SIZE);
	if (!up->len)
		memory_discard(up->x, PENDING_SIZE);
	/* OpenSSL's state of this thread (its random generators, built for the handshake, and
	   its error queue): a few KiB for each of a tls-server worker's threads (-S), built
	   again by the next call that needs it, if any. */
	OPENSSL_thread_stop();
	memory_give_back();
}

void tls_relay(struct session *s, int to_prog, int from_prog, unsigned long idle)
{
	struct pending down = { 0 }, up = { 0 };	/* client -> program, program -> client */
	int client_done = 0, prog_done = 0, rested = 0;
	long long last = now_ms();

	/* Each session its own (tls-server's workers may relay several at once, one thread
	   each), mapped, so that rest can give back its pages. */
	char *space = mmap(0, 2 * PENDING_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	if (space == MAP_FAILED) {
		snprintf(s->failure, sizeof s->failure, "unable to relay: %s", strerror(errno));
		close(to_prog);
		close(from_prog);
		return;
	}
	down.x = space;
	up.x = space + PENDING_SIZE;

	nonblocking(to_prog);
	nonblocking(from_prog);
	while (!(prog_done && up.len == 0)) {
		short net_events = 0, to_events = 0, from_events = 0;
		int moved = 0;

		if (!client_done && down.len == 0) {
			errno = 0;
			int r = SSL_read(s->ssl, down.x, PENDING_SIZE);
			if (r > 0) {
				down.off = 0;
				down.len = (size_t)r;
				s->bytes_in += (unsigned long long)r;
				moved = 1;
			} else {
				int e = SSL_get_error(s->ssl, r);
				short want = ssl_wants(e);
				net_events |= want;
				if (!want) {
					/* close_notify (or an end without one, which the context takes for
					   the same), or a broken connection: no more input either way. */
					if (e != SSL_ERROR_ZERO_RETURN)
						set_failure(s, e, r, "read failed");
					client_done = moved = 1;
				}
			}
		}
		if (down.len && to_prog >= 0) {
			ssize_t w = write(to_prog, down.x + down.off, down.len);
			if (w > 0) {
				down.off += (size_t)w;
				down.len -= (size_t)w;
				moved = 1;
			} else if (errno == EAGAIN) {
				to_events = POLLOUT;
			} else {
				/* The program stopped reading; what the client sends has nowhere to go. */
				close(to_prog);
				to_prog = -1;
				moved = 1;
			}
		}
		if (to_prog < 0)
			down.len = 0;
		if (client_done && down.len == 0 && to_prog >= 0) {
			close(to_prog);	/* the program sees the client's end of input */
			to_prog = -1;
		}

		if (!prog_done && up.len == 0) {
			ssize_t r = read(from_prog, up.x, PENDING_SIZE);
			if (r > 0) {
				up.off = 0;
				up.len = (size_t)r;
				moved = 1;
			} else if (r < 0 && errno == EAGAIN) {
				from_events = POLLIN;
			} else {
				prog_done = moved = 1;
			}
		}
		if (up.len) {
			errno = 0;
			int w = SSL_write(s->ssl, up.x + up.off, (int)up.len);
			if (w > 0) {
				up.off += (size_t)w;
				up.len -= (size_t)w;
				s->bytes_out += (unsigned long long)w;
				moved = 1;
			} else {
				int e = SSL_get_error(s->ssl, w);
				short want = ssl_wants(e);
				if (!want) {
					if (!s->failure[0])
						set_failure(s, e, w, "write failed");
					break;
				}
				net_events |= want;
			}
		}

		if (moved) {
			last = now_ms();
			rested = 0;
			continue;
		}
		struct pollfd p[4];
		nfds_t n = 0;
		if (net_events & POLLIN)
			p[n++] = (struct pollfd){ .fd = s->net_in, .events = POLLIN };
		if (net_events & POLLOUT)
			p[n++] = (struct pollfd){ .fd = s->net_out, .events = POLLOUT };
		if (to_events)
			p[n++] = (struct pollfd){ .fd = to_prog, .events = to_events };
		if (from_events)
			p[n++] = (struct pollfd){ .fd = from_prog, .events = from_events };
		long long left = last + (long long)idle * 1000 - now_ms();
		int wait = left > 0 ? (int)left : 0;
		if (!rested && wait > QUIET_MS)
			wait = QUIET_MS;
		int r = left > 0 ? poll(p, n, wait) : 0;
		if (r == 0 && !rested && left > QUIET_MS) {
			rest(&down, &up);
			rested = 1;
			continue;
		}
		if (r == 0) {
			snprintf(s->failure, sizeof s->failure, "no traffic for %lus", idle);
			break;
		}
	}
	if (to_prog >= 0)
		close(to_prog);
	close(from_prog);
	munmap(space, 2 * PENDING_SIZE);
	if (!s->failure[0] && SSL_shutdown(s->ssl) < 0)
		ERR_clear_error();	/* a close_notify the client never reads is no failure */
}
