/* postroom: ISC license, see LICENSE. */
/* Placeholder until written. */
#include "dsn.h"
