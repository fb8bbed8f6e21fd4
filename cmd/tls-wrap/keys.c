/* postroom: ISC license, see LICENSE. */
/*
 * Certificates and keys. Every pair is read at start, while tls-wrap may still be root, and
 * checked against its key; the pair for a session is picked by the name the client sends (SNI),
 * else the default. TLS 1.2 and 1.3 only, forward-secret AEAD ciphers for 1.2 (1.3's are all
 * good), no compression, no renegotiation, and no session tickets: each connection is its own
 * process, so a ticket could never be taken back anyway.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "die.h"
#include "tls-wrap.h"

extern char **environ;

struct named_pair {
	SSL_CTX *ctx;
	char *name;	/* from CERTFILE:name; 0: the names the certificate itself lists */
	X509 *cert;
};

#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

/* OpenSSL's reason for a file it could not read is vague: say whether the file is there. */
static void check_readable(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die_sys_code(EXIT_TEMP, "unable to read %s %s", what, path);
	close(fd);
}

/* An encrypted key would make OpenSSL ask for its passphrase on the terminal: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return 0;
}

/* Sets ctx up with certfile and keyfile: 1, or 0 with the reason in why. */
static int set_up(SSL_CTX *ctx, const char *certfile, const char *keyfile, char *why,
		  size_t whysize)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A client hanging up without close_notify after QUIT or LOGOUT is the norm, and the
	   protocols above say themselves where they end: that is no error worth a log line. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
				 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* A session's record buffers (about 34 KB) are given back while it is idle: most sessions
	   of IMAP are idle most of their time. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS))
		return snprintf(why, whysize, "unable to set the cipher list: %s", tls_reason()), 0;
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1)
		return snprintf(why, whysize, "unable to load certificate %s: %s", certfile,
				tls_reason()), 0;
	if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1)
		return snprintf(why, whysize, "unable to load key %s: %s", keyfile, tls_reason()), 0;
	if (SSL_CTX_check_private_key(ctx) != 1)
		return snprintf(why, whysize, "key %s does not match certificate %s", keyfile,
				certfile), 0;
	return 1;
}

static SSL_CTX *context(const char *certfile, const char *keyfile)
{
	char why[1024];
	check_readable("certificate", certfile);
	check_readable("key", keyfile);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		die(EXIT_TEMP, "unable to make a TLS context: %s", tls_reason());
	if (!set_up(ctx, certfile, keyfile, why, sizeof why)) {
		SSL_CTX_free(ctx);	/* given back before the exit, as everything is */
		die(EXIT_TEMP, "%s", why);
	}
	return ctx;
}

static void add(struct keys *k, SSL_CTX *ctx, const char *name)
{
	struct named_pair *n = realloc(k->named, (k->n + 1) * sizeof *n);

	if (!n || (name && !(name = strdup(name))))
		die(EXIT_TEMP, "out of memory");
	k->named = n;
	n[k->n].ctx = ctx;
	n[k->n].name = (char *)name;
	n[k->n].cert = SSL_CTX_get0_certificate(ctx);
	k->n++;
}

/* CERTFILE:name=... with KEYFILE:name=..., as s6-networking's tools take them. */
static void load_environment_pairs(struct keys *k)
{
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "CERTFILE:", 9))
			continue;
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e + 9)
			continue;
		char name[300], var[320];
		size_t n = (size_t)(eq - *e - 9);
		if (n >= sizeof name)
			die(EXIT_PERM, "SNI name too long in %.40s...", *e);
		memcpy(name, *e + 9, n);
		name[n] = 0;
		snprintf(var, sizeof var, "KEYFILE:%s", name);
		const char *keyfile = getenv(var);
		if (!keyfile || !*keyfile)
			die(EXIT_PERM, "CERTFILE:%s is set but %s is not", name, var);
		add(k, context(eq + 1, keyfile), name);
	}
}

/* DIR/<anything>/fullchain.pem and privkey.pem, certbot's layout: each pair serves the names
   its certificate lists. Entries without both files are not pairs and are passed over. */
static void load_directory(struct keys *k, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		die_sys_code(EXIT_TEMP, "unable to open the SNI directory %s", dir);
	while ((e = readdir(d))) {
		char cert[4096], key[4096];
		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(cert, sizeof cert, "%s/%s/fullchain.pem", dir, e->d_name) >=
			    sizeof cert ||
		    (size_t)snprintf(key, sizeof key, "%s/%s/privkey.pem", dir, e->d_name) >= sizeof key)
			die(EXIT_PERM, "path too long in %s", dir);
		if (access(cert, F_OK) || access(key, F_OK))
			continue;
		add(k, context(cert, key), 0);
	}
	closedir(d);
}

static int matches(const struct named_pair *p, const char *name)
{
	if (p->name)
		return !strcasecmp(p->name, name);
	return X509_check_host(p->cert, name, 0, 0, 0) == 1;
}

static int choose_by_name(SSL *ssl, int *alert, void *arg)
{
	const struct keys *k = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (!name)
		return SSL_TLSEXT_ERR_OK;
	/* Names from the environment first: they are the administrator's explicit choice. */
	for (int by_certificate = 0; by_certificate < 2; by_certificate++)
		for (size_t i = 0; i < k->n; i++)
			if ((k->named[i].name == 0) == by_certificate && matches(&k->named[i], name)) {
				SSL_set_SSL_CTX(ssl, k->named[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
	return SSL_TLSEXT_ERR_OK;	/* an unknown name gets the default pair */
}

void keys_load(struct keys *k, const char *certfile, const char *keyfile, const char *snidir)
{
	k->fallback = context(certfile, keyfile);
	load_environment_pairs(k);
	if (snidir)
		load_directory(k, snidir);
	SSL_CTX_set_tlsext_servername_callback(k->fallback, choose_by_name);
	SSL_CTX_set_tlsext_servername_arg(k->fallback, k);
}
