/* postroom: ISC license, see LICENSE. */
/*
 * queue-remove id...: takes messages out of the queue for good, from msg/ or hold/, as postsuper
 * -d is Postfix's. It waits for an attempt in progress (queue-run holds the file's lock while it
 * delivers) and checks that the message is still there once it has the lock, so that when it
 * says "removed" no delivery of the message can start any more, and none was cut short.
 */
#include "queue_admin.h"

const char *PROG = "queue-remove";

int main(int argc, char **argv)
{
	return queue_admin_main(argc, argv, QUEUE_OP_REMOVE, "removed", "removed");
}
