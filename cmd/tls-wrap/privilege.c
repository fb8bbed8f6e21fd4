/* postroom: ISC license, see LICENSE. */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "die.h"
#include "tls-wrap.h"

static int number(const char *s, unsigned long *out)
{
	char *end;

	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end;
}

void drop_privileges(const char *user, const char *group)
{
	unsigned long n;
	uid_t uid = 0;
	gid_t gid = 0;
	int have_gid = 0;

	if (group) {
		struct group *g;
		if (number(group, &n))
			gid = (gid_t)n;
		else if ((g = getgrnam(group)))
			gid = g->gr_gid;
		else
			die(EXIT_PERM, "no such group: %s", group);
		have_gid = 1;
	}
	if (user) {
		struct passwd *pw;
		if (number(user, &n))
			uid = (uid_t)n;
		else if ((pw = getpwnam(user))) {
			uid = pw->pw_uid;
			if (!have_gid)
				gid = pw->pw_gid, have_gid = 1;
		} else
			die(EXIT_PERM, "no such user: %s", user);
		if (!have_gid)
			die(EXIT_PERM, "a numeric user needs a group too (-g or TLS_GID)");
	} else if (group) {
		die(EXIT_PERM, "a group needs a user too (-u or TLS_UID)");
	}
	if (!have_gid)
		return;
	if (geteuid() == 0 && setgroups(1, &gid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set supplementary groups");
	if (setgid(gid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set group %lu", (unsigned long)gid);
	if (user && setuid(uid) < 0)
		die_sys_code(EXIT_TEMP, "unable to set user %lu", (unsigned long)uid);
	if (user && uid != 0 && setuid(0) == 0)
		die(EXIT_TEMP, "privileges could not be dropped");
}
