/* postroom: ISC license, see LICENSE. */
/* Placeholder until written. */
#include "die.h"

const char *PROG = "queue-list";

int main(void)
{
	die(EXIT_TEMP, "not written yet");
}
