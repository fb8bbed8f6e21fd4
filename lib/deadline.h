/* postroom: ISC license, see LICENSE. */
#ifndef DEADLINE_H
#define DEADLINE_H

/*
 * Deadlines on CLOCK_MONOTONIC, in milliseconds, for I/O on non-blocking descriptors: a step
 * (an SMTP reply, a TLS handshake) gets one deadline for the whole of it, however slowly the
 * peer trickles its bytes in.
 */

long long deadline_now_ms(void);
/* Now plus seconds. */
long long deadline_in(unsigned seconds);
/* Waits until fd is ready for events (POLLIN, POLLOUT): 1, or 0 with errno (ETIMEDOUT once
   deadline has passed). */
int deadline_wait_fd(int fd, short events, long long deadline);

#endif
