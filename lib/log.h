/* postroom: ISC license, see LICENSE. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>

/*
 * One line per event on stderr, "PROG: <text>", written with a single write(2) so that lines
 * from parallel processes sharing a log pipe never interleave (lines are cut at LOG_LINE_MAX,
 * below PIPE_BUF). No timestamps: s6-log adds them.
 */

#define LOG_LINE_MAX 2048

void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, with prefix put between "PROG: " and the text (die.c uses "fatal: "). */
void log_vline(const char *prefix, const char *fmt, va_list ap);

/*
 * Copies s (n bytes) into out (size outsize) for a log line: printable ASCII and well-formed
 * UTF-8 stay; controls (C0, DEL, C1), malformed bytes, '"' and '\\' become \xNN.
 * Always NUL-terminates; cuts with "..." when out is too small. Returns out.
 */
char *log_escape(char *out, size_t outsize, const char *s, size_t n);

#endif
