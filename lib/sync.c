/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "sync.h"

int sync_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r == 0;
}

int sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash)
		return sync_dir_at(AT_FDCWD, ".");
	if (slash == path)
		return sync_dir_at(AT_FDCWD, "/");
	if ((size_t)(slash - path) >= sizeof dir) {
		errno = ENAMETOOLONG;
		return 0;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	return sync_dir_at(AT_FDCWD, dir);
}
