/* postroom: ISC license, see LICENSE. */
#ifndef MEMORY_H
#define MEMORY_H

#include <stddef.h>

/*
 * For a process about to wait a long time (an IMAP session in IDLE, a login waiting for its
 * checkpassword program): gives back to the system the heap's free pages and the pages of the
 * stack below the caller's frame. Nothing changes for the program: a page given back reads as
 * zeros when it is touched again, and none of these holds anything live.
 */
void memory_give_back(void);

/* Gives back the whole pages within the n bytes at p, whose contents no longer matter (an
   empty buffer): touched again, they read as zeros, or as they were at the program's start. */
void memory_discard(void *p, size_t n);

#endif
