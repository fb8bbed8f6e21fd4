/* postroom: ISC license, see LICENSE. */
#ifndef TEMP_H
#define TEMP_H

/*
 * The one place that decides whether a failed system call is worth retrying. Mail waits and
 * retries on almost anything an administrator can fix (permissions, a full disk, a missing
 * directory); only errors that no retry can change are permanent.
 */

/* 1 if errno value e is a temporary condition, 0 if permanent. */
int temp_errno(int e);
/* 111 for a temporary errno value, 100 for a permanent one. */
int temp_exit(int e);

#endif
