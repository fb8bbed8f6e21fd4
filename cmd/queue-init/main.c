/* postroom: ISC license, see LICENSE. */
/*
 * queue-init DIR: makes an empty queue, or checks that one is there. Run it again at will: what
 * exists is left as it is, so a setup script can call it on every start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "die.h"

const char *PROG = "queue-init";

static void make(const char *dir, const char *name, int fifo)
{
	char path[4096];

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		die(EXIT_PERM, "path too long: %s", dir);
	if ((fifo ? mkfifo(path, 0622) : mkdir(path, 0750)) == 0) {
		/* Any user that queues mail may pull the trigger, whatever the umask says. */
		if (fifo && chmod(path, 0622) < 0)
			die_sys_code(EXIT_TEMP, "unable to chmod %s", path);
		return;
	}
	if (errno != EEXIST)
		die_sys_code(EXIT_TEMP, "unable to create %s", path);
	struct stat st;
	if (stat(path, &st) < 0)
		die_sys_code(EXIT_TEMP, "unable to stat %s", path);
	if (fifo ? !S_ISFIFO(st.st_mode) : !S_ISDIR(st.st_mode))
		die(EXIT_TEMP, "%s exists and is not a %s", path, fifo ? "FIFO" : "directory");
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		die_usage("DIR");
	const char *dir = argv[1];
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		die_sys_code(EXIT_TEMP, "unable to create %s", dir);
	make(dir, "tmp", 0);
	make(dir, "msg", 0);
	make(dir, "bounce", 0);
	make(dir, "hold", 0);
	make(dir, "trigger", 1);
	/* fsync so that the queue survives a crash right after setup. */
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || fsync(fd) < 0)
		die_sys_code(EXIT_TEMP, "unable to sync %s", dir);
	return 0;
}
