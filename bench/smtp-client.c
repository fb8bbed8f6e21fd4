/* postroom: ISC license, see LICENSE.
 * bench/smtp-client: the bench's own SMTP client, for what Postfix's smtp-source cannot do.
 *
 *   smtp-client -p PORT [-s SESSIONS] [-m MESSAGES] [-l BYTES] [-t] [-a USER:PASSWORD]
 *               [-f SENDER] [-d]
 *       SESSIONS threads send MESSAGES messages of BYTES bytes of body to alice@example.test,
 *       one message per connection (as mail from the internet arrives): greeting, EHLO,
 *       with -t STARTTLS and EHLO again, with -a AUTH PLAIN, MAIL (from SENDER, by default
 *       bench@example.org), RCPT, DATA, QUIT. With -d a
 *       session sends all its messages over one connection instead. Prints
 *       "messages=N failed=F seconds=S".
 *   smtp-client -p PORT -H N [-t]
 *       opens N sessions, takes each to the point where it has said EHLO (with -t: after
 *       STARTTLS, the handshake and a second EHLO), prints "ready", and holds them all until
 *       standard input ends: idle sessions, for measuring what an idle session costs the server.
 *
 * Commands are written one at a time, each waiting for its reply (no PIPELINING), as
 * smtp-source does. The client trusts any certificate: the bench measures the server. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len, off;
};

static int port, sessions = 1, messages = 1, size = 4096, use_tls, reuse, hold;
static const char *sender = "bench@example.org";
static const char *auth;	/* base64 of \0user\0password, made once */
static char *body;
static size_t body_len;
static SSL_CTX *ctx;
static atomic_int next_message, failed;

static void die(const char *what)
{
	fprintf(stderr, "smtp-client: fatal: %s: %s\n", what, strerror(errno));
	exit(111);
}

static int conn_write(struct conn *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, s, (int)n) : write(c->fd, s, n);
		if (w <= 0) {
			if (!c->ssl && w < 0 && errno == EINTR)
				continue;
			return 0;
		}
		s += w, n -= (size_t)w;
	}
	return 1;
}

/* One byte of the server's reply, or -1 at end of file, error or timeout. */
static int conn_getc(struct conn *c)
{
	if (c->off == c->len) {
		ssize_t r;
		do
			r = c->ssl ? SSL_read(c->ssl, c->buf, sizeof c->buf) :
				     read(c->fd, c->buf, sizeof c->buf);
		while (!c->ssl && r < 0 && errno == EINTR);
		if (r <= 0)
			return -1;
		c->len = (size_t)r, c->off = 0;
	}
	return (unsigned char)c->buf[c->off++];
}

/* Reads a whole reply (every line up to the one with a space after the code) and returns its
   code, or 0 if the connection failed. */
static int reply(struct conn *c)
{
	char line[1024];

	for (;;) {
		size_t n = 0;
		int ch;
		while ((ch = conn_getc(c)) >= 0 && ch != '\n')
			if (n < sizeof line - 1)
				line[n++] = (char)ch;
		if (ch < 0 || n < 3)
			return 0;
		line[n] = 0;
		if (n == 3 || line[3] == ' ' || line[3] == '\r')
			return atoi(line);
	}
}

static int command(struct conn *c, const char *cmd, int want)
{
	return conn_write(c, cmd, strlen(cmd)) && reply(c) / 100 == want / 100;
}

static int dial(struct conn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 60 };

	memset(c, 0, sizeof *c);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(c->fd);
		c->fd = -1;
		return 0;
	}
	return 1;
}

/* Greeting, EHLO and, with -t, STARTTLS and the second EHLO. */
static int open_session(struct conn *c)
{
	if (!dial(c))
		return 0;
	if (reply(c) != 220 || !command(c, "EHLO client.example.org\r\n", 250))
		return 0;
	if (use_tls) {
		if (!command(c, "STARTTLS\r\n", 220))
			return 0;
		c->len = c->off = 0;
		c->ssl = SSL_new(ctx);
		if (!c->ssl)
			return 0;
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_tlsext_host_name(c->ssl, "mx.example.test");
		if (SSL_connect(c->ssl) != 1)
			return 0;
		if (!command(c, "EHLO client.example.org\r\n", 250))
			return 0;
	}
	if (auth) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "AUTH PLAIN %s\r\n", auth);
		if (!command(c, cmd, 235))
			return 0;
	}
	return 1;
}

static void close_session(struct conn *c, int quit)
{
	if (quit)
		command(c, "QUIT\r\n", 221);
	if (c->ssl) {
		if (quit)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = 0;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_message(struct conn *c)
{
	char mail[300];

	snprintf(mail, sizeof mail, "MAIL FROM:<%s>\r\n", sender);
	return command(c, mail, 250) &&
	       command(c, "RCPT TO:<alice@example.test>\r\n", 250) &&
	       command(c, "DATA\r\n", 354) && conn_write(c, body, body_len) &&
	       reply(c) / 100 == 2;
}

static void *session(void *arg)
{
	struct conn c;
	int open = 0;

	(void)arg;
	while (atomic_fetch_add(&next_message, 1) < messages) {
		if (!open && !(open = open_session(&c))) {
			atomic_fetch_add(&failed, 1);
			close_session(&c, 0);
			continue;
		}
		if (!send_message(&c)) {
			atomic_fetch_add(&failed, 1);
			close_session(&c, 0);
			open = 0;
			continue;
		}
		if (!reuse) {
			close_session(&c, 1);
			open = 0;
		}
	}
	if (open)
		close_session(&c, 1);
	return 0;
}

/* The message: a few headers and BYTES bytes of body in lines of 76 characters, dot-terminated. */
static void make_body(void)
{
	static const char head[] = "From: <bench@example.org>\r\nTo: <alice@example.test>\r\n"
				   "Subject: bench\r\nMessage-ID: <bench@example.org>\r\n\r\n";
	size_t cap = sizeof head + (size_t)size + (size_t)size / 76 * 2 + 16, n = 0;

	body = malloc(cap);
	if (!body)
		die("malloc");
	memcpy(body, head, sizeof head - 1);
	body_len = sizeof head - 1;
	for (int i = 0; i < size; i++) {
		body[body_len++] = (char)('a' + i % 26);
		if (++n == 76 || i == size - 1) {
			body[body_len++] = '\r', body[body_len++] = '\n';
			n = 0;
		}
	}
	memcpy(body + body_len, ".\r\n", 3);
	body_len += 3;
}

static const char *base64_plain(const char *userpass)
{
	const char *colon = strchr(userpass, ':');
	unsigned char raw[512];
	static char out[700];
	size_t u, p;

	if (!colon)
		return 0;
	u = (size_t)(colon - userpass), p = strlen(colon + 1);
	if (u + p + 2 > sizeof raw)
		return 0;
	raw[0] = 0;
	memcpy(raw + 1, userpass, u);
	raw[u + 1] = 0;
	memcpy(raw + u + 2, colon + 1, p);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)(u + p + 2));
	return out;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "p:s:m:l:ta:f:dH:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 's': sessions = atoi(optarg); break;
		case 'm': messages = atoi(optarg); break;
		case 'l': size = atoi(optarg); break;
		case 't': use_tls = 1; break;
		case 'a':
			if (!(auth = base64_plain(optarg)))
				return fprintf(stderr, "smtp-client: -a USER:PASSWORD\n"), 100;
			break;
		case 'f': sender = optarg; break;
		case 'd': reuse = 1; break;
		case 'H': hold = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: smtp-client -p port [-s sessions] [-m messages] "
					"[-l bytes] [-t] [-a user:password] [-f sender] [-d] | -p port -H n [-t]\n");
			return 100;
		}
	}
	if (port <= 0 || sessions <= 0 || messages < 0 || size < 0 || hold < 0)
		return fprintf(stderr, "smtp-client: bad arguments\n"), 100;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

	if (hold) {
		struct conn *c = calloc((size_t)hold, sizeof *c);
		char b;
		if (!c)
			die("calloc");
		for (int i = 0; i < hold; i++)
			if (!open_session(&c[i]))
				return fprintf(stderr, "smtp-client: session %d failed\n", i + 1), 111;
		printf("ready\n");
		fflush(stdout);
		while (read(0, &b, 1) > 0)
			;
		for (int i = 0; i < hold; i++)
			close_session(&c[i], 1);
		return 0;
	}

	make_body();
	pthread_t *t = calloc((size_t)sessions, sizeof *t);
	if (!t)
		die("calloc");
	double t0 = now();
	for (int i = 0; i < sessions; i++)
		if (pthread_create(&t[i], 0, session, 0) != 0)
			die("pthread_create");
	for (int i = 0; i < sessions; i++)
		pthread_join(t[i], 0);
	printf("messages=%d failed=%d seconds=%.6f\n", messages - atomic_load(&failed),
	       atomic_load(&failed), now() - t0);
	return atomic_load(&failed) ? 111 : 0;
}
