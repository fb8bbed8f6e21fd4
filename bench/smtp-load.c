/* postroom: ISC license, see LICENSE. */
/*
 * smtp-load: the benchmark's load generator. S sessions (one process each) share N messages of
 * Z bytes, each session on one connection, pipelining MAIL/RCPT/DATA as PIPELINING allows.
 * Prints one line: "sent=N failed=F seconds=T cpu_ms=C" (C: this program's own CPU time, so
 * the caller can subtract it from the machine's).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1", *rcpt = "alice@example.test";
static int port, sessions = 1, size = 4096;
static long messages = 100;

static int dial(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	inet_pton(AF_INET, host, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	struct timeval limit = { .tv_sec = 60 };	/* a lost connection fails, never hangs */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("smtp-load: connect");
		exit(111);
	}
	return fd;
}

/* Reads n replies (multi-line ones whole); returns 1 if the last code starts with want. */
static int replies(int fd, int n, char want)
{
	static char buf[8192];
	static size_t len;
	char code = 0;

	while (n > 0) {
		char *nl;
		while (!(nl = memchr(buf, '\n', len))) {
			ssize_t r = read(fd, buf + len, sizeof buf - len);
			if (r <= 0)
				return 0;
			len += (size_t)r;
		}
		if (nl - buf >= 4 && buf[3] != '-') {
			code = buf[0];
			n--;
		}
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len);
	}
	return code == want;
}

static void put(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0) {
			perror("smtp-load: write");
			exit(111);
		}
		s += w;
		n -= (size_t)w;
	}
}

static long session(int id)
{
	int fd = dial();
	long failed = 0;
	char *msg = malloc((size_t)size + 1024), head[512];

	if (!replies(fd, 1, '2'))
		exit(111);
	put(fd, "EHLO load.test\r\n", 16);
	if (!replies(fd, 1, '2'))
		exit(111);
	for (long i = id; i < messages; i += sessions) {
		int h = snprintf(head, sizeof head,
				 "MAIL FROM:<load@load.test>\r\nRCPT TO:<%s>\r\nDATA\r\n", rcpt);
		put(fd, head, (size_t)h);
		if (!replies(fd, 2, '2') || !replies(fd, 1, '3')) {
			failed++;
			put(fd, "RSET\r\n", 6);
			replies(fd, 1, '2');
			continue;
		}
		int m = snprintf(msg, 1024, "From: load@load.test\r\nTo: <%s>\r\nSubject: load %ld\r\n"
				 "Message-Id: <load-%ld@load.test>\r\n\r\n", rcpt, i, i);
		while (m < size - 3) {
			int line = size - 3 - m < 78 ? size - 3 - m : 78;
			memset(msg + m, 'x', (size_t)line);
			m += line;
			if (line >= 2) {
				msg[m - 2] = '\r';
				msg[m - 1] = '\n';
			}
		}
		if (m < 2 || msg[m - 1] != '\n')
			m += sprintf(msg + m, "\r\n");
		m += sprintf(msg + m, ".\r\n");
		put(fd, msg, (size_t)m);
		if (!replies(fd, 1, '2'))
			failed++;
	}
	put(fd, "QUIT\r\n", 6);
	replies(fd, 1, '2');
	close(fd);
	return failed;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "h:p:n:s:z:t:")) != -1) {
		switch (opt) {
		case 'h': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'n': messages = atol(optarg); break;
		case 's': sessions = atoi(optarg); break;
		case 'z': size = atoi(optarg); break;
		case 't': rcpt = optarg; break;
		default:
			fprintf(stderr, "smtp-load: usage: smtp-load -p port [-h host] [-n messages] "
				"[-s sessions] [-z size] [-t rcpt]\n");
			return 100;
		}
	}
	if (!port || sessions < 1 || messages < 1 || size < 200) {
		fprintf(stderr, "smtp-load: usage: smtp-load -p port [-n N] [-s S] [-z size]\n");
		return 100;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < sessions; i++)
		if (fork() == 0)
			_exit(session(i) ? 1 : 0);
	int status, bad = 0;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		     (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	printf("sent=%ld failed_sessions=%d seconds=%.3f cpu_ms=%.1f\n", messages, bad,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, cpu);
	return bad ? 111 : 0;
}
