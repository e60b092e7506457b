/*
 * A gRPC client on libevent and nghttp2, for unary calls and calls with a
 * streamed reply, for dsd's own tools (the dsd-cli prompt and its
 * snapshot save, the dsd-bench load generator, and a replica passing
 * requests to its leader): h2c with prior knowledge, or HTTP/2 over TLS
 * with ALPN h2 (net/tls.h); many calls in flight on one connection, a
 * deadline per call.  A TLS handshake that fails (an untrusted or
 * misnamed server certificate, a refused client certificate) fails the
 * connection with OpenSSL's reason and is not retried on the host's
 * other addresses.
 *
 * Lifetimes: a call's done function is called exactly once, from the loop
 * or from grpcc_close(), with the reply borrowed for the duration of the
 * call.  A connection that fails (refused, reset, protocol error, closed
 * by the server) completes its pending calls and reports through
 * on_state; the owner then frees it with grpcc_close().  The status of a
 * call the failure cut says what the server may have done with it:
 * UNAVAILABLE if its request had not been sent whole (the server cannot
 * have acted on it), UNKNOWN if it had (it may have been carried out, and
 * a retry of a write may apply it twice unless the server deduplicates).
 * A call past its deadline gets DEADLINE_EXCEEDED, which says as little.  After a
 * GOAWAY the calls the server accepted still complete, new ones are
 * refused (grpcc_is_up() turns 0), and the connection reports down once
 * the last stream ends.  nghttp2 holds calls beyond the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS until streams free up, so callers may
 * issue as many as they like.
 *
 * Re-entrancy: done and on_state may start calls and may call
 * grpcc_close() on their own connection (the free is deferred until the
 * callback returns).  Calls are sent at the next loop pass, so calls
 * started together go out in one write.
 */
#ifndef DSD_GRPC_CLIENT_H
#define DSD_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct grpcc_conn;
struct ssl_ctx_st;

/* status is a gRPC status code (0 is OK); message may be NULL; reply is
 * the response message without its 5-byte prefix. */
typedef void	(*grpcc_done_fn)(void *arg, int status, const char *message,
		    const uint8_t *reply, size_t len);

struct grpcc_config {
	const char	*addr;		/* "HOST:PORT" or "[V6]:PORT" */
	size_t		 max_reply;	/* larger replies fail the call */
	int		 connect_timeout_ms;
	/* > 0: a server gone silent fails the connection after about this
	 * long (TCP_USER_TIMEOUT for unacknowledged data, keepalive probes
	 * when idle) rather than after TCP's retransmission backoff. */
	int		 user_timeout_ms;
	/* The connection is usable (up = 1) or gone (up = 0, with why). */
	void		(*on_state)(struct grpcc_conn *, int up,
			    const char *why, void *arg);
	void		*arg;
	/* TLS: a client context (tls_client_ctx()), of which the
	 * connection takes a reference; NULL for clear text.  server_name
	 * is what the server's certificate must name, and the SNI (NULL:
	 * the host of addr). */
	struct ssl_ctx_st *tls;
	const char	*server_name;
};

/* Start connecting, to each address HOST resolves to in turn until one
 * accepts; NULL (and *err set to a static string) if the address cannot
 * be resolved.  The config is copied; addr is not kept. */
struct grpcc_conn *grpcc_connect(struct event_base *,
		    const struct grpcc_config *, const char **err);
/*
 * Start a call of path ("/pkg.Service/Method") with the request bytes
 * (copied).  timeout_ms > 0 sends grpc-timeout and fails the call with
 * DEADLINE_EXCEEDED locally if no answer came in time.  Returns 0, or -1
 * if the connection is gone or draining after GOAWAY, or memory ran out
 * (done is then not called).
 */
int		 grpcc_call(struct grpcc_conn *, const char *path,
		    const void *req, size_t len, int timeout_ms,
		    grpcc_done_fn done, void *arg);
/* A metadata entry sent with a call: a lower-case name (not ':' or
 * grpc-) and a value of printable ASCII. */
struct grpcc_md {
	const char	*name;
	const char	*value;
};
#define GRPCC_MAX_MD	8

/* grpcc_call() with metadata (copied; at most GRPCC_MAX_MD, else -1). */
int		 grpcc_call_md(struct grpcc_conn *, const char *path,
		    const void *req, size_t len, int timeout_ms,
		    const struct grpcc_md *md, size_t nmd, grpcc_done_fn done,
		    void *arg);
/*
 * A call whose reply is a stream of messages (gRPC server streaming):
 * msg is called for each, in order, with the message (without its
 * prefix) lent for the duration of the call; it returns 0, or -1 to stop
 * the call (the server sees it cancelled, and done gets CANCELLED).  Then
 * done is called once, as for grpcc_call(), with no reply: status 0 only
 * if the server ended the stream with OK after a whole message.  No
 * message may be larger than max_reply.  Returns as grpcc_call().
 */
typedef int	(*grpcc_msg_fn)(void *arg, const uint8_t *msg, size_t len);
int		 grpcc_call_stream(struct grpcc_conn *, const char *path,
		    const void *req, size_t len, int timeout_ms,
		    grpcc_msg_fn msg, grpcc_done_fn done, void *arg);
/* Calls started and not yet done. */
size_t		 grpcc_pending(const struct grpcc_conn *);
/* Connected, and new calls are accepted. */
int		 grpcc_is_up(const struct grpcc_conn *);
/* Close at once: pending calls complete with UNAVAILABLE first. */
void		 grpcc_close(struct grpcc_conn *);

/* Split "HOST:PORT" or "[V6]:PORT" (port required); 0 or -1. */
int		 grpcc_split_addr(const char *, char **host, char **port);

#endif
