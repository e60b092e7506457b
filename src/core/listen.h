/*
 * A TCP listener on the caller's event_base, for every server of dsd
 * (gRPC's, the metrics page's): one way to write an address, one set of
 * socket options, one log line when it fails.
 */
#ifndef DSD_LISTEN_H
#define DSD_LISTEN_H

#include <event2/listener.h>

struct event_base;

/*
 * Bind and listen on addr, "ADDR:PORT" or "[ADDR6]:PORT" (port 0: any
 * free one), with SO_REUSEADDR and close-on-exec, and call cb with each
 * connection (NULL: disabled until a callback is set, as
 * evhttp_bind_listener() does).  Sets *port to the port bound.  Returns
 * NULL after logging why, the line starting with what ("h2", "metrics").
 */
struct evconnlistener *listen_tcp(struct event_base *, const char *addr,
		    const char *what, evconnlistener_cb cb, void *arg,
		    int *port);

#endif
