/* postroom: ISC license, see LICENSE. */
#ifndef SYNC_H
#define SYNC_H

/*
 * Making directory entries durable. On Linux a link, rename or unlink survives a crash only once
 * the directory holding it is fsynced; every commit point in postroom ends with one of these.
 * Return 1, or 0 with errno set.
 */

/* fsync of the directory name, relative to dirfd (AT_FDCWD for the working directory). */
int sync_dir_at(int dirfd, const char *name);
/* fsync of the directory that holds path ("." for a bare name). */
int sync_parent(const char *path);

#endif
