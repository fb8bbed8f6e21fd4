/* postroom: ISC license, see LICENSE. */
#ifndef DIE_H
#define DIE_H

/*
 * Fatal exits for cmd/ mains: one line on stderr, "PROG: fatal: ...", then exit.
 * Library code never calls these; it returns and lets the program decide.
 */

extern const char *PROG;

#define EXIT_PERM 100
#define EXIT_TEMP 111

/* "PROG: usage: PROG <usage>", exit 100. */
_Noreturn void die_usage(const char *usage);
/* "PROG: fatal: <message>", exit code. */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PROG: fatal: <message>: <strerror(errno)>", exit 111 or 100 as errno says (temp.h). */
_Noreturn void die_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with the exit code given. */
_Noreturn void die_sys_code(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value of environment variable name; dies (111: a missing setting) when unset or empty. */
const char *env_need(const char *name);

#endif
