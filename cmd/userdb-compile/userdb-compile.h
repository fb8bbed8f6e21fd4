/* postroom: ISC license, see LICENSE. */
#ifndef USERDB_COMPILE_H
#define USERDB_COMPILE_H

#include "sql.h"

/* sync.c: recompiles out from MySQL whenever the stamp changes, every interval seconds, for
 * ever (until SIGTERM). */
_Noreturn void sync_forever(const char *optfile, const struct sql_queries *q, const char *out,
			    unsigned interval);

#endif
