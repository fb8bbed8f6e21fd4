/* postroom: ISC license, see LICENSE. */
#ifndef TCPRULES_H
#define TCPRULES_H

#include <stddef.h>

/*
 * tcpserver's rules (ucspi-tcp's tcprules(1) compiles them to a CDB): for a client address, the
 * first key found among the address itself, its prefixes that end in a dot (or a colon for
 * IPv6), longest first, and the empty key. The record is a list of "\0"-terminated
 * instructions: "D" refuses the client, "+NAME=value" sets a variable in the session's
 * environment. No record at all allows the client with nothing set.
 */

enum tcprules_verdict { TCPRULES_ALLOW, TCPRULES_DENY, TCPRULES_ERROR };

/* Looks up ip in the CDB at path (opened anew for each call, so that a rebuilt file counts at
   once) and appends the "NAME=value\0" pairs it sets to env (len bytes used, at most max).
   TCPRULES_ERROR, with errno set, when the file cannot be read or the pairs do not fit. */
enum tcprules_verdict tcprules_check(const char *path, const char *ip, char *env, size_t max,
				     size_t *len);

#endif
