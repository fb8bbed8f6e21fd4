/* postroom: ISC license, see LICENSE. */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tcprules.h"

/* The first of the keys tcpserver would try that is in the file: 1 (found), 0, or -1. */
static int find(struct cdb *c, const char *ip)
{
	size_t n = strlen(ip);
	int r = cdb_find(c, ip, (unsigned)n);

	for (; r == 0 && n > 0; n--)
		if (ip[n - 1] == '.' || ip[n - 1] == ':')
			r = cdb_find(c, ip, (unsigned)n);
	if (r == 0)
		r = cdb_find(c, "", 0);
	return r;
}

static enum tcprules_verdict apply(const char *rec, size_t n, char *env, size_t max, size_t *len)
{
	for (size_t i = 0; i < n;) {
		const char *ins = rec + i;
		size_t k = strnlen(ins, n - i);
		if (ins[0] == 'D')
			return TCPRULES_DENY;
		if (ins[0] == '+' && k > 1 && memchr(ins, '=', k)) {
			if (*len + k > max) {
				errno = ENOSPC;
				return TCPRULES_ERROR;
			}
			memcpy(env + *len, ins + 1, k - 1);
			*len += k - 1;
			env[(*len)++] = 0;
		}
		i += k + 1;
	}
	return TCPRULES_ALLOW;
}

enum tcprules_verdict tcprules_check(const char *path, const char *ip, char *env, size_t max,
				     size_t *len)
{
	struct cdb c;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || cdb_init(&c, fd) < 0) {
		if (fd >= 0)
			close(fd);
		return TCPRULES_ERROR;
	}
	enum tcprules_verdict v = TCPRULES_ALLOW;
	int r = find(&c, ip);
	if (r < 0)
		v = TCPRULES_ERROR;
	else if (r > 0) {
		unsigned n = cdb_datalen(&c);
		const char *rec = cdb_get(&c, n, cdb_datapos(&c));
		v = rec ? apply(rec, n, env, max, len) : TCPRULES_ERROR;
	}
	int saved = errno;
	cdb_free(&c);
	close(fd);
	errno = saved;
	return v;
}
