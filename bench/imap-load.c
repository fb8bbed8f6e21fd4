/* postroom: ISC license, see LICENSE.
 * bench/imap-load: the bench's IMAP load generator (built by bench/imap-load with cc).
 *
 *   imap-load -p PORT -U USERS -M MODE [-c CLIENTS] [-t SECONDS] [-s] [-i IDLE-MS]
 *             [-w WORD | -T] [-f FROM] [-g CPU.STAT] [-q]
 *
 *   USERS is a file of "user password" lines; client k logs in as line k mod (lines).
 *   Every connection is TLS: implicit (imaps) by default, STARTTLS with -s. TLS 1.2 or later,
 *   no session resumption (a full handshake per connection), any certificate trusted: the
 *   bench measures the server.
 *
 *   MODE logins:   CLIENTS processes, each in a loop for SECONDS: connect, handshake, greeting,
 *                  LOGIN, LOGOUT, close. One login per connection.
 *   MODE commands: CLIENTS processes, each with one long session: LOGIN once, then for SECONDS
 *                  the mix below, over and over; LOGOUT at the end (neither LOGIN nor LOGOUT is
 *                  counted). The mix (12 commands; a, b, c random sequence numbers, the same
 *                  sequence of them for the same client on every server):
 *                    SELECT INBOX
 *                    FETCH 1:* (FLAGS UID RFC822.SIZE)  (this and the FETCHes and first
 *                                                        STORE only when INBOX has mail)
 *                    FETCH a,b,c (UID BODYSTRUCTURE)
 *                    FETCH a,b,c (BODY.PEEK[])
 *                    UID SEARCH UNSEEN
 *                    UID SEARCH TEXT "WORD"          (not with -T)
 *                    UID SEARCH FROM "FROM"
 *                    STORE a +FLAGS (\Seen)    (-FLAGS every other round: the state stays put)
 *                    APPEND INBOX (\Seen) {about 1.5 KB}   (a synchronizing literal)
 *                    STORE * +FLAGS (\Deleted)             (the last message: the one appended)
 *                    EXPUNGE
 *                    IDLE, IDLE-MS milliseconds (default 10), DONE
 *   MODE idle:     CLIENTS sessions: LOGIN, SELECT INBOX, IDLE; once every one of them has its
 *                  "+" it prints "ready" and holds them until standard input ends, then DONE and
 *                  LOGOUT. For measuring the memory of an idle session.
 *
 *   The measured window starts once every client is ready (connected and logged in, for
 *   commands) and ends once every client has finished its last command after SECONDS. With
 *   -g, the usage_usec of that cgroup cpu.stat file over the window is printed as well.
 *   Output (standard output), one "key=value ..." line for the whole run, then one "cmd=NAME
 *   ..." line per command kind: count, mean and max latency in ms, failures. Failures (a NO or
 *   BAD where OK was due, a lost connection) are counted; a commands session that fails
 *   reconnects. The first failure's text goes to standard error. -q: no per-command lines.
 *   Exit: 0, or 111 if it could not run at all. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { C_LOGIN, C_SELECT, C_FETCHFLAGS, C_FETCHBS, C_FETCHBODY, C_SEARCHUNSEEN, C_SEARCHTEXT,
       C_SEARCHFROM, C_STORESEEN, C_APPEND, C_STOREDEL, C_EXPUNGE, C_IDLE, C_LOGOUT, C_N };
static const char *const cmd_name[C_N] = {
	"LOGIN", "SELECT", "FETCH-FLAGS", "FETCH-BODYSTRUCTURE", "FETCH-BODY", "SEARCH-UNSEEN",
	"SEARCH-TEXT", "SEARCH-FROM", "STORE-SEEN", "APPEND", "STORE-DELETED", "EXPUNGE", "IDLE",
	"LOGOUT"
};

/* One per client, in memory shared with the parent. */
struct stats {
	long n[C_N], failed[C_N];
	double ms[C_N], max[C_N];
	long counted;		/* commands in the window (commands mode), logins (logins mode) */
	long connections, failures;
	double done;		/* when the client finished its window (monotonic seconds) */
	char err[240];
};

struct conn {
	int fd;
	SSL *ssl;
	char buf[16384];
	size_t len, off;
	char line[65536];
	size_t linelen;
	long exists;
	unsigned tag;
};

static int port = 0, clients = 1, starttls, idle_ms = 10, quiet;
static double seconds = 10;
static const char *mode, *usersfile, *word = "meeting", *from = "alice", *cpustat;
static char **user, **pass;
static int nusers;
static SSL_CTX *ctx;
static struct stats *st;
static volatile double *start_at;

static void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("imap-load: fatal: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(111);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long cg_usage(void)
{
	if (!cpustat)
		return 0;
	FILE *f = fopen(cpustat, "r");
	char k[64];
	long long v, r = -1;
	if (!f)
		fatal("unable to open %s: %s", cpustat, strerror(errno));
	while (fscanf(f, "%63s %lld", k, &v) == 2)
		if (!strcmp(k, "usage_usec"))
			r = v;
	fclose(f);
	return r;
}

/* xorshift64*, one state per client: the same choices on every server. */
static uint64_t rng;
static long rnd(long n)
{
	rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
	return n > 0 ? (long)((rng * 2685821657736338717ULL >> 33) % (uint64_t)n) : 0;
}

static void note(struct stats *s, const char *fmt, ...)
{
	va_list ap;
	s->failures++;
	if (s->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
}

static int c_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : write(c->fd, p, n);
		if (w <= 0) {
			if (!c->ssl && w < 0 && errno == EINTR)
				continue;
			return 0;
		}
		p += w, n -= (size_t)w;
	}
	return 1;
}

static int c_fill(struct conn *c)
{
	ssize_t r;
	do
		r = c->ssl ? SSL_read(c->ssl, c->buf, sizeof c->buf) : read(c->fd, c->buf, sizeof c->buf);
	while (!c->ssl && r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	c->len = (size_t)r, c->off = 0;
	return 1;
}

/* One line into c->line (without CRLF; truncated past its size, the rest consumed). */
static int c_getline(struct conn *c)
{
	c->linelen = 0;
	for (;;) {
		if (c->off == c->len && !c_fill(c))
			return 0;
		char *b = c->buf + c->off, *lf = memchr(b, '\n', c->len - c->off);
		size_t n = lf ? (size_t)(lf - b) : c->len - c->off, k = n;
		if (k > sizeof c->line - 1 - c->linelen)
			k = sizeof c->line - 1 - c->linelen;
		memcpy(c->line + c->linelen, b, k);
		c->linelen += k;
		c->off += n + (lf != NULL);
		if (lf)
			break;
	}
	if (c->linelen && c->line[c->linelen - 1] == '\r')
		c->linelen--;
	c->line[c->linelen] = 0;
	return 1;
}

static int c_skip(struct conn *c, unsigned long n)
{
	while (n > 0) {
		if (c->off == c->len && !c_fill(c))
			return 0;
		size_t k = c->len - c->off < n ? c->len - c->off : n;
		c->off += k, n -= k;
	}
	return 1;
}

/* If the line ends in a literal {N}, its size, else -1. */
static long literal_at_end(const struct conn *c)
{
	size_t n = c->linelen;
	if (n < 3 || c->line[n - 1] != '}')
		return -1;
	size_t i = n - 2;
	if (c->line[i] == '+')
		i--;
	size_t d = i;
	while (i > 0 && c->line[i] >= '0' && c->line[i] <= '9')
		i--;
	if (c->line[i] != '{' || i == d)
		return -1;
	return strtol(c->line + i + 1, NULL, 10);
}

enum { RS_OK, RS_NO, RS_BAD, RS_CONT, RS_EOF };

/* Reads responses until the tagged one for c->tag (or a continuation "+"), following
 * literals and keeping c->exists up to date from EXISTS and EXPUNGE. */
static int c_response(struct conn *c)
{
	char tag[16];
	int tl = snprintf(tag, sizeof tag, "a%u ", c->tag);
	for (;;) {
		if (!c_getline(c))
			return RS_EOF;
		int untagged = c->line[0] == '*' && c->line[1] == ' ';
		if (untagged) {
			char *e;
			long v = strtol(c->line + 2, &e, 10);
			if (e != c->line + 2) {
				if (!strncmp(e, " EXISTS", 7))
					c->exists = v;
				else if (!strncmp(e, " EXPUNGE", 8) && c->exists > 0)
					c->exists--;
			} else if (!strncmp(c->line + 2, "BYE", 3) && c->tag == 0)
				return RS_NO;	/* a greeting that refuses */
		} else if (c->line[0] == '+') {
			return RS_CONT;
		} else if (!strncmp(c->line, tag, (size_t)tl)) {
			const char *r = c->line + tl;
			return !strncmp(r, "OK", 2) ? RS_OK : !strncmp(r, "NO", 2) ? RS_NO : RS_BAD;
		}
		long lit;
		while ((lit = literal_at_end(c)) >= 0) {
			if (!c_skip(c, (unsigned long)lit) || !c_getline(c))
				return RS_EOF;
		}
		if (untagged && c->tag == 0 && !strncmp(c->line + 2, "OK", 2))
			return RS_OK;	/* the greeting */
	}
}

static void c_close(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int c_tls(struct conn *c, struct stats *s)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_connect(c->ssl) != 1) {
		unsigned long e = ERR_get_error();
		note(s, "TLS handshake failed: %s", e ? ERR_reason_error_string(e) : "no detail");
		ERR_clear_error();
		return 0;
	}
	c->len = c->off = 0;
	return 1;
}

/* Connects, greeting, TLS (before the greeting for imaps, after STARTTLS otherwise). */
static int c_open(struct conn *c, struct stats *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 30, 0 };
	int one = 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c->len = c->off = 0, c->exists = 0, c->tag = 0;
	if (c->fd < 0)
		return note(s, "socket: %s", strerror(errno)), 0;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		note(s, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
		c_close(c);
		return 0;
	}
	s->connections++;
	if (!starttls && !c_tls(c, s))
		return c_close(c), 0;
	if (c_response(c) != RS_OK) {
		note(s, "no greeting: %s", c->line);
		return c_close(c), 0;
	}
	if (starttls) {
		c->tag = 1;
		if (!c_write(c, "a1 STARTTLS\r\n", 13) || c_response(c) != RS_OK) {
			note(s, "STARTTLS refused: %s", c->line);
			return c_close(c), 0;
		}
		if (!c_tls(c, s))
			return c_close(c), 0;
	}
	return 1;
}

/* Sends one command (printf-style, CRLF added), waits for its tagged reply; counts it under
 * kind k. Returns the RS_ code. */
static int c_cmd(struct conn *c, struct stats *s, int k, const char *fmt, ...)
{
	char b[1024];
	int n = snprintf(b, sizeof b, "a%u ", ++c->tag);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(b + n, sizeof b - (size_t)n - 2, fmt, ap);
	va_end(ap);
	b[n++] = '\r', b[n++] = '\n';
	double t0 = now();
	int r = c_write(c, b, (size_t)n) ? c_response(c) : RS_EOF;
	if (k == C_IDLE && r == RS_CONT) {
		/* The server may send untagged updates meanwhile: they wait in the socket. */
		struct timespec ts = { idle_ms / 1000, (long)(idle_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		r = c_write(c, "DONE\r\n", 6) ? c_response(c) : RS_EOF;
	}
	double dt = (now() - t0) * 1000;
	s->n[k]++, s->ms[k] += dt;
	if (dt > s->max[k])
		s->max[k] = dt;
	if (r != RS_OK) {
		s->failed[k]++;
		note(s, "%s: %s", cmd_name[k], r == RS_EOF ? "connection lost" : c->line);
	}
	return r;
}

static int c_append(struct conn *c, struct stats *s, int client, long round)
{
	char body[2048], cmd[128];
	int bl = snprintf(body, sizeof body,
		"Return-Path: <bench%d@example.org>\r\n"
		"From: Bench Client %d <bench%d@example.org>\r\n"
		"To: <%s>\r\n"
		"Subject: imap-load append %d.%ld\r\n"
		"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
		"Message-ID: <load.%d.%ld.%d@example.org>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n", client, client, client, user[client % nusers], client, round, client, round,
		(int)getpid());
	while (bl < 1500)
		bl += snprintf(body + bl, sizeof body - (size_t)bl,
			       "A line of the draft that the client saves, number %04d.\r\n", bl);
	int cl = snprintf(cmd, sizeof cmd, "a%u APPEND INBOX (\\Seen) {%d}\r\n", ++c->tag, bl);
	double t0 = now();
	int r = c_write(c, cmd, (size_t)cl) ? c_response(c) : RS_EOF;
	if (r == RS_CONT)
		r = c_write(c, body, (size_t)bl) && c_write(c, "\r\n", 2) ? c_response(c) : RS_EOF;
	double dt = (now() - t0) * 1000;
	s->n[C_APPEND]++, s->ms[C_APPEND] += dt;
	if (dt > s->max[C_APPEND])
		s->max[C_APPEND] = dt;
	if (r != RS_OK) {
		s->failed[C_APPEND]++;
		note(s, "APPEND: %s", r == RS_EOF ? "connection lost" : c->line);
	}
	return r;
}

static int c_login(struct conn *c, struct stats *s, int client)
{
	int r = c_cmd(c, s, C_LOGIN, "LOGIN \"%s\" \"%s\"", user[client % nusers],
		      pass[client % nusers]);
	return r == RS_OK;
}

/* One round of the mix; returns the commands that completed (failed or not), or -1 once the
 * connection is gone or a command failed (the session is then started afresh). */
static int mix(struct conn *c, struct stats *s, int client, long round)
{
	int n = 0;
#define DO(expr) do { int r_ = (expr); n++; if (r_ != RS_OK) return -1; } while (0)
	DO(c_cmd(c, s, C_SELECT, "SELECT INBOX"));
	long e = c->exists;
	if (e > 0) {
		DO(c_cmd(c, s, C_FETCHFLAGS, "FETCH 1:* (FLAGS UID RFC822.SIZE)"));
		long a = rnd(e) + 1, b = rnd(e) + 1, d = rnd(e) + 1;
		DO(c_cmd(c, s, C_FETCHBS, "FETCH %ld,%ld,%ld (UID BODYSTRUCTURE)", a, b, d));
		DO(c_cmd(c, s, C_FETCHBODY, "FETCH %ld,%ld,%ld (BODY.PEEK[])", a, b, d));
	}
	DO(c_cmd(c, s, C_SEARCHUNSEEN, "UID SEARCH UNSEEN"));
	if (word)
		DO(c_cmd(c, s, C_SEARCHTEXT, "UID SEARCH TEXT \"%s\"", word));
	DO(c_cmd(c, s, C_SEARCHFROM, "UID SEARCH FROM \"%s\"", from));
	if (e > 0)
		DO(c_cmd(c, s, C_STORESEEN, "STORE %ld %cFLAGS (\\Seen)", rnd(e) + 1,
			 round % 2 ? '-' : '+'));
	DO(c_append(c, s, client, round));
	DO(c_cmd(c, s, C_STOREDEL, "STORE * +FLAGS (\\Deleted)"));
	DO(c_cmd(c, s, C_EXPUNGE, "EXPUNGE"));
	DO(c_cmd(c, s, C_IDLE, "IDLE"));
#undef DO
	return n;
}

static void wait_fd(int fd)
{
	char b;
	while (read(fd, &b, 1) < 0 && errno == EINTR)
		;
}

static void signal_fd(int fd)
{
	while (write(fd, "x", 1) < 0 && errno == EINTR)
		;
}

/* The child's life: ready -> (go) -> window -> done -> (release) -> logout. */
static void child(int k, int ready_w, int go_r, int done_w, int rel_r)
{
	struct stats *s = &st[k];
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		fatal("out of memory");
	c->fd = -1;
	rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(k + 1);
	if (!strcmp(mode, "logins")) {
		signal_fd(ready_w);
		wait_fd(go_r);
		double end = *start_at + seconds;
		while (now() < end) {
			if (!c_open(c, s)) {
				usleep(100000);
				continue;
			}
			if (c_login(c, s, k)) {
				c_cmd(c, s, C_LOGOUT, "LOGOUT");
				s->counted++;
			}
			c_close(c);
		}
		s->done = now();
		signal_fd(done_w);
		_exit(0);
	}
	if (!strcmp(mode, "idle")) {
		int ok = c_open(c, s) && c_login(c, s, k) &&
			 c_cmd(c, s, C_SELECT, "SELECT INBOX") == RS_OK;
		if (ok) {
			c->tag++;
			char b[32];
			int n = snprintf(b, sizeof b, "a%u IDLE\r\n", c->tag);
			ok = c_write(c, b, (size_t)n) && c_response(c) == RS_CONT;
			if (!ok)
				note(s, "IDLE: %s", c->line);
		}
		signal_fd(ready_w);
		wait_fd(go_r);
		if (ok && c_write(c, "DONE\r\n", 6) && c_response(c) == RS_OK)
			c_cmd(c, s, C_LOGOUT, "LOGOUT");
		c_close(c);
		_exit(0);
	}
	/* commands */
	int up = c_open(c, s) && c_login(c, s, k);
	if (!up)
		c_close(c);
	signal_fd(ready_w);
	wait_fd(go_r);
	double end = *start_at + seconds;
	long round = 0;
	while (now() < end) {
		if (!up) {
			usleep(100000);
			up = c_open(c, s) && c_login(c, s, k);
			if (!up) {
				c_close(c);
				continue;
			}
		}
		int n = mix(c, s, k, round++);
		if (n < 0) {
			c_close(c);
			up = 0;
			continue;
		}
		s->counted += n;
	}
	s->done = now();
	signal_fd(done_w);
	wait_fd(rel_r);
	if (up)
		c_cmd(c, s, C_LOGOUT, "LOGOUT");
	c_close(c);
	_exit(0);
}

static void read_users(void)
{
	FILE *f = fopen(usersfile, "r");
	char u[256], p[256];
	if (!f)
		fatal("unable to open %s: %s", usersfile, strerror(errno));
	while (fscanf(f, "%255s %255s", u, p) == 2) {
		user = realloc(user, sizeof *user * (size_t)(nusers + 1));
		pass = realloc(pass, sizeof *pass * (size_t)(nusers + 1));
		if (!user || !pass || !(user[nusers] = strdup(u)) || !(pass[nusers] = strdup(p)))
			fatal("out of memory");
		nusers++;
	}
	fclose(f);
	if (!nusers)
		fatal("no users in %s", usersfile);
}

/* Reads n bytes from fd, giving up at the deadline; returns how many came. */
static int gather(int fd, int n, double deadline)
{
	int got = 0;
	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		int ms = (int)((deadline - now()) * 1000);
		if (ms <= 0 || poll(&p, 1, ms) <= 0)
			break;
		char b[256];
		ssize_t r = read(fd, b, sizeof b < (size_t)(n - got) ? sizeof b : (size_t)(n - got));
		if (r <= 0)
			break;
		got += (int)r;
	}
	return got;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "p:U:M:c:t:si:w:Tf:g:q")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'U': usersfile = optarg; break;
		case 'M': mode = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 's': starttls = 1; break;
		case 'i': idle_ms = atoi(optarg); break;
		case 'w': word = optarg; break;
		case 'T': word = NULL; break;
		case 'f': from = optarg; break;
		case 'g': cpustat = optarg; break;
		case 'q': quiet = 1; break;
		default: goto usage;
		}
	}
	if (port <= 0 || !usersfile || !mode || clients < 1 || seconds <= 0 || idle_ms < 0 ||
	    (strcmp(mode, "logins") && strcmp(mode, "commands") && strcmp(mode, "idle"))) {
usage:
		fprintf(stderr, "usage: imap-load -p PORT -U USERS -M logins|commands|idle [-c CLIENTS]"
			" [-t SECONDS] [-s] [-i IDLE-MS] [-w WORD | -T] [-f FROM] [-g CPU.STAT] [-q]\n");
		return 100;
	}
	read_users();
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		fatal("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

	size_t shared = sizeof(double) * 2 + sizeof *st * (size_t)clients;
	void *m = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	start_at = m;
	st = (struct stats *)((char *)m + sizeof(double) * 2);
	int ready[2], go[2], done[2], rel[2];
	if (pipe(ready) < 0 || pipe(go) < 0 || pipe(done) < 0 || pipe(rel) < 0)
		fatal("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t *pids = calloc((size_t)clients, sizeof *pids);
	for (int k = 0; k < clients; k++) {
		pid_t p = fork();
		if (p < 0)
			fatal("fork: %s", strerror(errno));
		if (p == 0) {
			close(ready[0]), close(go[1]), close(done[0]), close(rel[1]);
			child(k, ready[1], go[0], done[1], rel[0]);
		}
		pids[k] = p;
	}
	close(ready[1]), close(go[0]), close(done[1]), close(rel[0]);
	int got = gather(ready[0], clients, now() + 120);
	if (got < clients)
		fprintf(stderr, "imap-load: only %d of %d clients were ready after 120 s\n", got,
			clients);
	if (!strcmp(mode, "idle")) {
		long up = 0;
		for (int k = 0; k < clients; k++)
			up += st[k].failures == 0;
		printf("ready sessions=%ld failed=%ld\n", up, clients - up);
		fflush(stdout);
		char b[256];
		while (read(0, b, sizeof b) > 0)
			;
		close(go[1]);
		for (int k = 0; k < clients; k++)
			waitpid(pids[k], NULL, 0);
		for (int k = 0; k < clients; k++)
			if (st[k].err[0]) {
				fprintf(stderr, "imap-load: client %d: %s\n", k, st[k].err);
				break;
			}
		return 0;
	}
	long long u0 = cg_usage();
	*start_at = now();
	close(go[1]);
	gather(done[0], clients, *start_at + seconds + 120);
	double end = now();
	long long u1 = cg_usage();
	close(rel[1]);
	for (int k = 0; k < clients; k++)
		waitpid(pids[k], NULL, 0);

	long counted = 0, failures = 0, conns = 0;
	double last = *start_at;
	for (int k = 0; k < clients; k++) {
		counted += st[k].counted, failures += st[k].failures, conns += st[k].connections;
		if (st[k].done > last)
			last = st[k].done;
	}
	if (last > end)
		last = end;
	double t = last - *start_at;
	printf("mode=%s clients=%d seconds=%.2f %s=%ld per_s=%.1f failures=%ld connections=%ld",
	       mode, clients, t, !strcmp(mode, "logins") ? "logins" : "commands", counted,
	       counted / t, failures, conns);
	if (cpustat)
		printf(" server_cpu_ms=%.1f cpu_ms_each=%.3f", (u1 - u0) / 1000.0,
		       counted ? (u1 - u0) / 1000.0 / counted : 0.0);
	printf("\n");
	for (int i = 0; i < C_N && !quiet; i++) {
		long n = 0, f = 0;
		double ms = 0, mx = 0;
		for (int k = 0; k < clients; k++) {
			n += st[k].n[i], f += st[k].failed[i], ms += st[k].ms[i];
			if (st[k].max[i] > mx)
				mx = st[k].max[i];
		}
		if (n)
			printf("cmd=%s n=%ld mean_ms=%.2f max_ms=%.1f failed=%ld\n", cmd_name[i], n,
			       ms / n, mx, f);
	}
	for (int k = 0; k < clients; k++)
		if (st[k].err[0]) {
			fprintf(stderr, "imap-load: client %d (%ld failures): %s\n", k, st[k].failures,
				st[k].err);
			break;
		}
	return 0;
}
