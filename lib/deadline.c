/* postroom: ISC license, see LICENSE. */
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "deadline.h"

long long deadline_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long deadline_in(unsigned seconds)
{
	return deadline_now_ms() + (long long)seconds * 1000;
}

int deadline_wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - deadline_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return 0;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}
