/* TCP listeners; see listen.h. */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "core/listen.h"
#include "core/log.h"

struct evconnlistener *
listen_tcp(struct event_base *base, const char *addr, const char *what,
    evconnlistener_cb cb, void *arg, int *port)
{
	struct evconnlistener	*l;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 len = sizeof ss;

	*port = 0;
	memset(&ss, 0, sizeof ss);
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss,
	    &len) == -1) {
		log_warnx("%s: cannot parse listen address \"%s\" (want "
		    "ADDR:PORT or [ADDR6]:PORT)", what, addr);
		return NULL;
	}
	l = evconnlistener_new_bind(base, cb, arg, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, -1,
	    (struct sockaddr *)&ss, len);
	if (l == NULL) {
		log_warn("%s: cannot listen on %s", what, addr);
		return NULL;
	}
	sslen = sizeof ss;
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss,
	    &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return l;
}
