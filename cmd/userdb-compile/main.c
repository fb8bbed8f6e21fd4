/* postroom: ISC license, see LICENSE. */
/*
 * userdb-compile -f USERS.TXT OUT.cdb: compiles the user database into the CDB that every
 * hot-path lookup reads. The new CDB replaces the old one in one rename, and only when the whole
 * input was good: a mistake on line 40 leaves the running system on the last good database.
 */
#include <fcntl.h>
#include <unistd.h>

#include "die.h"
#include "userdb.h"

const char *PROG = "userdb-compile";

#define USAGE "-f USERS.TXT OUT.cdb"

int main(int argc, char **argv)
{
	const char *text = 0;
	int opt;

	opterr = 0;	/* our usage line is the one message */
	while ((opt = getopt(argc, argv, "f:")) != -1) {
		if (opt != 'f')
			die_usage(USAGE);
		text = optarg;
	}
	if (!text || argc - optind != 1)
		die_usage(USAGE);
	const char *out = argv[optind];

	int fd = open(text, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die_sys_code(EXIT_TEMP, "unable to open %s", text);
	struct userdb_make m = USERDB_MAKE_ZERO;
	if (!userdb_make_start(&m, out))
		die_sys_code(EXIT_TEMP, "unable to create a temporary file next to %s", out);
	struct userdb_text_error err;
	int r = userdb_text_compile(fd, &m, &err);
	if (r < 0) {
		userdb_make_abort(&m);
		die(EXIT_PERM, "%s line %lu: %s", text, err.line, err.what);
	}
	if (r == 0) {
		userdb_make_abort(&m);
		die_sys_code(EXIT_TEMP, "unable to compile %s", text);
	}
	if (!userdb_make_finish(&m))
		die_sys_code(EXIT_TEMP, "unable to write %s", out);
	return 0;
}
