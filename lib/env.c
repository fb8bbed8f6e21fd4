/* postroom: ISC license, see LICENSE. */
#include <stdlib.h>

#include "die.h"
#include "env.h"
#include "fmt.h"

int env_ulong(const char *name, unsigned long def, unsigned long min, unsigned long max,
	      unsigned long *out)
{
	const char *v = getenv(name);
	unsigned long long n;

	if (!v || !*v) {
		*out = def;
		return 1;
	}
	if (!scan_ullong_str(v, &n) || n < min || n > max)
		return 0;
	*out = (unsigned long)n;
	return 1;
}

unsigned long env_number(const char *name, unsigned long def, unsigned long min,
			 unsigned long max)
{
	unsigned long v;

	if (!env_ulong(name, def, min, max, &v))
		die(EXIT_PERM, "%s must be a number from %lu to %lu", name, min, max);
	return v;
}
