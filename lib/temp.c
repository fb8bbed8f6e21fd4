/* postroom: ISC license, see LICENSE. */
#include <errno.h>

#include "temp.h"

int temp_errno(int e)
{
	switch (e) {
	case EINVAL:
	case ENAMETOOLONG:
	case ELOOP:
	case E2BIG:
	case EMSGSIZE:
	case EILSEQ:
		return 0;
	default:
		return 1;
	}
}

int temp_exit(int e)
{
	return temp_errno(e) ? 111 : 100;
}
