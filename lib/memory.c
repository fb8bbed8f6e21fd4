/* postroom: ISC license, see LICENSE. */
#define _GNU_SOURCE	/* gettid, pthread_getattr_np */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory.h"

/* The lowest address of the main thread's stack as the kernel has mapped it so far (it grows
   down as it is touched), or 0. Read without stdio, whose buffers would come from the heap
   about to be trimmed. */
static uintptr_t stack_low(void)
{
	char text[4096];
	size_t have = 0;
	uintptr_t low = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t r = read(fd, text + have, sizeof text - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		text[have] = 0;
		char *line = text, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			unsigned long lo, hi;
			if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
				low = lo;
				goto done;
			}
			line = nl + 1;
		}
		/* A line not yet whole moves to the front for the next read. */
		have = strlen(line);
		memmove(text, line, have);
		if (have == sizeof text - 1)
			break;	/* no line is this long: not the maps file we know */
	}
done:
	close(fd);
	return low;
}

/* Another thread's stack: the mapping pthread_create made for it, whole. */
static uintptr_t thread_stack_low(void)
{
	pthread_attr_t a;
	void *low;
	size_t size;

	if (pthread_getattr_np(pthread_self(), &a))
		return 0;
	int e = pthread_attr_getstack(&a, &low, &size);
	pthread_attr_destroy(&a);
	return e ? 0 : (uintptr_t)low;
}

/* What may lie just under this function's frame while it runs: the call to madvise, its
   return address. Far more than they take, and less than a page. */
#define STACK_MARGIN 1024

/*
 * A deep command (a FETCH with its buffers, a SEARCH decoding a message) leaves the stack's
 * pages touched long after it returned, and a session that then idles for hours would keep
 * them. Below the frame of this function nothing is live: the pages there can go, all but
 * the STACK_MARGIN bytes under it, where madvise's call runs. A page given back that is
 * touched again (by the calls to come, a signal handler) comes back as zeros, which is all
 * a stack below its top frame may hold.
 */
static __attribute__((noinline)) void stack_give_back(void)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t low = getpid() == gettid() ? stack_low() : thread_stack_low();
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);

	if (page <= 0 || !low || frame < STACK_MARGIN)
		return;
	uintptr_t top = (frame - STACK_MARGIN) & ~((uintptr_t)page - 1);
	if (top > low)
		madvise((void *)low, top - low, MADV_DONTNEED);
}

void memory_give_back(void)
{
	/* The heap first: malloc_trim's own calls run deeper than stack_give_back's. */
	malloc_trim(0);
	stack_give_back();
}

void memory_discard(void *p, size_t n)
{
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		return;
	uintptr_t mask = (uintptr_t)page - 1;
	uintptr_t lo = ((uintptr_t)p + mask) & ~mask, hi = ((uintptr_t)p + n) & ~mask;
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
