/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "die.h"
#include "log.h"
#include "temp.h"

void die_usage(const char *usage)
{
	log_line("usage: %s %s", PROG, usage);
	exit(EXIT_PERM);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline("fatal: ", fmt, ap);
	va_end(ap);
	exit(code);
}

static _Noreturn void die_errno(int code, int e, const char *fmt, va_list ap)
{
	char what[LOG_LINE_MAX / 2];

	vsnprintf(what, sizeof what, fmt, ap);
	log_line("fatal: %s: %s", what, strerror(e));
	exit(code);
}

void die_sys(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	die_errno(temp_exit(e), e, fmt, ap);
}

void die_sys_code(int code, const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	die_errno(code, e, fmt, ap);
}

const char *env_need(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		die(EXIT_TEMP, "%s is not set", name);
	return v;
}
