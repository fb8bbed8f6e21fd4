/* postroom: ISC license, see LICENSE. */
#ifndef ENV_H
#define ENV_H

/*
 * Numbers from the environment, validated: a variable that is set must hold a decimal number in
 * [min, max]. Returns 1 (the value, or def when unset or empty, in *out), or 0 for a bad value.
 */
int env_ulong(const char *name, unsigned long def, unsigned long min, unsigned long max,
	      unsigned long *out);

/* The same for a setting a program cannot run without getting right: a bad value ends the
   program (exit 100) with a line that says what is allowed. */
unsigned long env_number(const char *name, unsigned long def, unsigned long min,
			 unsigned long max);

#endif
