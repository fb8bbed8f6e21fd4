/* postroom: ISC license, see LICENSE. */
/*
 * queue-release id...: takes messages off hold, as postsuper -H is Postfix's: moved from hold/
 * back to msg/, due at once, and queue-run woken through the trigger as queue-inject wakes it.
 * Under the file's lock, as the other tools work, so that it never races queue-remove.
 */
#include "queue_admin.h"

const char *PROG = "queue-release";

int main(int argc, char **argv)
{
	return queue_admin_main(argc, argv, QUEUE_OP_RELEASE, "released", "not on hold");
}
