/* postroom: ISC license, see LICENSE.
 * bench/tls-steps CERTFILE KEYFILE: what each step of tls-wrap's start costs in a fresh
 * process, in CPU microseconds (CLOCK_PROCESS_CPUTIME_ID / CLOCK_THREAD_CPUTIME_ID, which the
 * kernel keeps exactly, unlike the tick-sampled utime/stime):
 *   before_main  everything from the fork that made this process to main(): the fork's child
 *                side, execve, the dynamic loader (libssl, libcrypto, libc: loading and
 *                relocations) and the libraries' constructors
 *   init         OPENSSL_init_ssl with the configuration file, as SSL_CTX_new does on first use
 *   ctx          SSL_CTX_new(TLS_server_method()) and the options tls-wrap sets
 *   cert         SSL_CTX_use_certificate_chain_file
 *   key          SSL_CTX_use_PrivateKey_file and SSL_CTX_check_private_key
 *   ssl          SSL_new
 *   handshake    the server's side of one full handshake (SSL_accept) with a client in a
 *                child process over a socket pair: the server's CPU only
 * One line "before_main=... init=... ..." per run; bench/connection-cost runs it many times,
 * each a new process, and takes medians. The steps are keys.c's context(); the library set is
 * tls-wrap's (-lssl -lcrypto). */
#define _DEFAULT_SOURCE
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double cpu_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void fail(const char *what)
{
	fprintf(stderr, "tls-steps: fatal: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(111);
}

int main(int argc, char **argv)
{
	double t0 = cpu_us(CLOCK_PROCESS_CPUTIME_ID), t;
	int sv[2];

	if (argc != 3)
		return fprintf(stderr, "usage: tls-steps certfile keyfile\n"), 100;
	printf("before_main=%.0f", t0);
	if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, 0))
		fail("init");
	t = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
	printf(" init=%.0f", t - t0), t0 = t;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		fail("SSL_CTX_new");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	t = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
	printf(" ctx=%.0f", t - t0), t0 = t;
	if (SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1)
		fail("certificate");
	t = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
	printf(" cert=%.0f", t - t0), t0 = t;
	if (SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		fail("key");
	t = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
	printf(" key=%.0f", t - t0), t0 = t;
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		fail("SSL_new");
	t = cpu_us(CLOCK_PROCESS_CPUTIME_ID);
	printf(" ssl=%.0f", t - t0);
	fflush(stdout);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		fail("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
		SSL *c = cctx ? SSL_new(cctx) : 0;
		char b;
		close(sv[0]);
		if (!c)
			_exit(111);
		SSL_set_fd(c, sv[1]);
		SSL_set_tlsext_host_name(c, "mx.example.test");
		if (SSL_connect(c) != 1)
			_exit(111);
		SSL_read(c, &b, 1);	/* the server's byte: TLS 1.3's handshake is over for both */
		_exit(0);
	}
	close(sv[1]);
	SSL_set_fd(ssl, sv[0]);
	double h0 = cpu_us(CLOCK_THREAD_CPUTIME_ID);
	if (SSL_accept(ssl) != 1)
		fail("handshake");
	SSL_write(ssl, "x", 1);
	printf(" handshake=%.0f\n", cpu_us(CLOCK_THREAD_CPUTIME_ID) - h0);
	waitpid(pid, 0, 0);
	return 0;
}
