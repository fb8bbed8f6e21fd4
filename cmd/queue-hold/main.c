/* postroom: ISC license, see LICENSE. */
/*
 * queue-hold id...: puts messages on hold, as postsuper -h is Postfix's: moved from msg/ to
 * hold/, where queue-run never looks, until queue-release. A rename keeps the file as it is, with
 * its records, so a held message loses nothing. It waits for an attempt in progress, as
 * queue-remove does, so that once it has said "held" no delivery of the message can start.
 */
#include "queue_admin.h"

const char *PROG = "queue-hold";

int main(int argc, char **argv)
{
	return queue_admin_main(argc, argv, QUEUE_OP_HOLD, "held", "already on hold");
}
