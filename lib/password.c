/* postroom: ISC license, see LICENSE. */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "password.h"

/* crypt_rn's work area is 32 KiB: static, since these programs check one password per run. */
static struct crypt_data work;

int equal_const_time(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

static enum password_result check_crypt(const char *hash, size_t hlen, const char *password)
{
	char setting[CRYPT_OUTPUT_SIZE];

	/* Locked ("!", "*") and empty hashes match nothing. */
	if (hlen == 0 || hlen >= sizeof setting || hash[0] == '!' || hash[0] == '*')
		return PASSWORD_UNUSABLE;
	memcpy(setting, hash, hlen);
	setting[hlen] = 0;
	const char *out = crypt_rn(password, setting, &work, sizeof work);
	if (!out)
		return PASSWORD_UNUSABLE;
	return equal_const_time(out, strlen(out), hash, hlen) ? PASSWORD_OK : PASSWORD_WRONG;
}

static int scheme_is(const char *name, size_t n, const char *scheme)
{
	return strlen(scheme) == n && !strncasecmp(name, scheme, n);
}

enum password_result password_check(const char *hash, size_t hlen, const char *password,
				    int allow_plain)
{
	static const char *const crypt_schemes[] = {
		"SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT", "CRYPT", "DES-CRYPT",
	};

	if (hlen == 0 || memchr(hash, 0, hlen))
		return PASSWORD_UNUSABLE;
	if (hash[0] != '{')
		return hash[0] == '$' ? check_crypt(hash, hlen, password) : PASSWORD_UNUSABLE;
	const char *close = memchr(hash, '}', hlen);
	if (!close)
		return PASSWORD_UNUSABLE;
	const char *name = hash + 1;
	size_t nlen = (size_t)(close - name);
	const char *rest = close + 1;
	size_t rlen = hlen - (size_t)(rest - hash);
	for (size_t i = 0; i < sizeof crypt_schemes / sizeof crypt_schemes[0]; i++)
		if (scheme_is(name, nlen, crypt_schemes[i]))
			return check_crypt(rest, rlen, password);
	if (scheme_is(name, nlen, "PLAIN") || scheme_is(name, nlen, "CLEAR") ||
	    scheme_is(name, nlen, "CLEARTEXT")) {
		if (!allow_plain)
			return PASSWORD_UNUSABLE;
		return equal_const_time(rest, rlen, password, strlen(password)) ? PASSWORD_OK :
										   PASSWORD_WRONG;
	}
	return PASSWORD_UNUSABLE;
}

void password_check_nobody(const char *password)
{
	/* A SHA-512 setting with the default 5000 rounds, the most common hash in the wild. */
	(void)crypt_rn(password, "$6$postroomnobody$", &work, sizeof work);
}

int password_hash(const char *password, enum password_scheme scheme, char *out)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *prefix = scheme == PASSWORD_YESCRYPT ? "$y$" : "$6$";
	const char *label = scheme == PASSWORD_YESCRYPT ? "" : "{SHA512-CRYPT}";

	if (!crypt_gensalt_rn(prefix, 0, 0, 0, setting, sizeof setting))
		return 0;
	const char *h = crypt_rn(password, setting, &work, sizeof work);
	if (!h || h[0] == '*')
		return 0;
	if ((size_t)snprintf(out, PASSWORD_HASH_MAX, "%s%s", label, h) >= PASSWORD_HASH_MAX) {
		errno = ENAMETOOLONG;
		return 0;
	}
	return 1;
}
