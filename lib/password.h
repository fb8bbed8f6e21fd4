/* postroom: ISC license, see LICENSE. */
#ifndef PASSWORD_H
#define PASSWORD_H

#include <stddef.h>

/*
 * Password hashes as Dovecot and PostfixAdmin store them: "{SCHEME}hash" with SHA512-CRYPT,
 * SHA256-CRYPT, BLF-CRYPT, MD5-CRYPT or CRYPT, bare crypt(3) strings ($6$, $5$, $2y$, $y$, $1$),
 * checked through libcrypt; {PLAIN} (and Dovecot's {CLEAR}, {CLEARTEXT}) only when allowed.
 */

enum password_result {
	PASSWORD_OK,
	PASSWORD_WRONG,
	PASSWORD_UNUSABLE,	/* a scheme we do not check (or plain text not allowed), a locked hash */
};

enum password_result password_check(const char *hash, size_t hlen, const char *password,
				    int allow_plain);

/* Costs about what checking a common hash costs, so that an unknown user takes as long to
 * refuse as a wrong password. */
void password_check_nobody(const char *password);

enum password_scheme {
	PASSWORD_SHA512_CRYPT,	/* {SHA512-CRYPT}$6$... */
	PASSWORD_YESCRYPT,	/* $y$... */
};
#define PASSWORD_HASH_MAX 256

/* A new hash of password with a random salt, into out (PASSWORD_HASH_MAX bytes). 1, or 0 with
 * errno set. */
int password_hash(const char *password, enum password_scheme scheme, char *out);

/* 1 if a[0..alen) equals b[0..blen); the time taken depends on the lengths only. */
int equal_const_time(const char *a, size_t alen, const char *b, size_t blen);

#endif
