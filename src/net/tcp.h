/*
 * A TCP connection to a peer that goes silent (a partition, a paused
 * process) should fail in seconds, not after TCP's retransmission
 * backoff, which grows to minutes while a partition lasts: after it
 * heals, a connection still waiting on its backoff kept a node cut off
 * for tens of seconds (the cluster lab measured it).  tcp_user_timeout()
 * makes data unacknowledged for about ms, or an idle connection whose
 * keepalive probes go unanswered for as long, fail the connection.
 * Returns 0, or -1 with errno; failing to set it is not fatal to anyone.
 */
#ifndef DSD_NET_TCP_H
#define DSD_NET_TCP_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static inline int
tcp_user_timeout(int fd, int ms)
{
	unsigned int	ut = (unsigned int)ms;
	int		on = 1, idle = 1, intvl = 1;
	int		cnt = ms / 1000 > 1 ? ms / 1000 : 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut,
	    sizeof ut) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
	    sizeof idle) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
	    sizeof intvl) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) == -1)
		return -1;
	return 0;
}

#endif
