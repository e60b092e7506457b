/*
 * An HTTP/2 server on libevent and nghttp2: h2c with prior knowledge
 * (RFC 9113 section 3.3), which is how gRPC clients connect in clear
 * text, or HTTP/2 over TLS with ALPN "h2" (section 3.2; net/tls.h) when
 * the config has a TLS context.
 * It knows nothing of gRPC: it hands request headers and body bytes up
 * through callbacks and sends back complete responses, or streamed ones
 * whose body is written piece by piece as the peer takes it.
 *
 * One nghttp2_session per connection, one bufferevent per connection, all
 * on the caller's event_base; nothing blocks and there are no threads.
 *
 * Limits, each from struct h2_config:
 * - max_streams is sent as SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses
 *   streams beyond it.
 * - max_header_list is sent as SETTINGS_MAX_HEADER_LIST_SIZE and enforced
 *   on what arrives (name + value + 32 per field, RFC 9113 6.5.2): a stream
 *   over it is reset.  nghttp2 also ends a connection that sends more than
 *   a few CONTINUATION frames for one header block.
 * - max_body bounds the request body of one stream still being read (a
 *   413 and a reset past it).  Data that arrives after the response was
 *   submitted is discarded, not counted.
 * - max_pending bounds the request body bytes one connection has handed
 *   up for requests not yet complete (or complete but waiting, below),
 *   max_pending_total those of every connection together.  Flow control
 *   does not: h2 gives the window back as bytes arrive, so that one large
 *   message does not stall the other streams, and each of max_streams
 *   streams may send up to max_body.  The stream whose bytes would go
 *   past either budget is answered over_budget (or 503) and its bytes no
 *   longer counted; the others go on.  A request's bytes stop counting
 *   once it is handed up whole, answered or reset.
 * - max_output bounds what one connection may have queued for the socket:
 *   past it the connection stops reading (a peer that does not read gets no
 *   more work done for it) until the output drains to half.
 * - max_held bounds the response body bytes one connection holds submitted
 *   but not yet framed: mostly those HTTP/2 flow control keeps back until
 *   the peer sends WINDOW_UPDATE.  Reading must go on, since the
 *   WINDOW_UPDATE that would drain them has to be read; instead, while the
 *   connection holds max_held or more, a request that completes is not
 *   handed up (request_done) but waits, unanswered and unrefused, until
 *   the held bytes drain below max_held; then the waiting ones go up in
 *   stream order.  Clients see a slower answer rather than an error.  It
 *   is judged on what is held already, so one reply larger than max_held
 *   still goes through, one at a time; replies answered later
 *   (asynchronously) to requests handed up under the budget still add to
 *   it, up to max_streams of them.  max_held_total is the same for the
 *   whole server, judged differently: past it, a request waits if its
 *   connection holds any reply bytes at all, while one on a connection
 *   holding none goes on, so clients that read their replies are served
 *   whatever the others do.
 * - handshake_timeout_ms: the TLS handshake (if any), the client preface
 *   and first SETTINGS must all be done in time, or the connection is
 *   closed (a line at warning level, rate-limited).  idle_timeout_ms: a connection with no open stream for
 *   that long gets GOAWAY and is closed; so does one from which nothing
 *   arrives for that long while a request on it is unfinished (a dead
 *   peer would hold its streams and their max_pending bytes for good).
 * - max_conns: a connection past it is admitted by closing the oldest
 *   one still in its handshake (or already closing), so that sockets
 *   that connect and never speak cannot lock out clients that do; only
 *   if every connection is serving is the new one accepted and closed at
 *   once.  Both are logged at warning level, rate-limited: a burst of
 *   lines, then one line a second with the count.
 *
 * Over TLS every byte goes through the OpenSSL bufferevent; clear text
 * skips the bufferevent when it is empty and writes straight to the
 * socket.  A failed TLS handshake (plain text on the port, no or an
 * untrusted client certificate, no ALPN h2, an old protocol) closes that
 * connection with one line "tls ADDR:PORT: handshake failed: why".
 *
 * A connection closes by sending its last frames, then FIN, then reading
 * (and discarding) until the peer's FIN, for 2 s at most: closing on
 * unread input would send RST, which can destroy a GOAWAY in flight.
 *
 * A broken preface or a protocol error closes that connection only (with
 * GOAWAY when the peer spoke HTTP/2 at all); other connections and the
 * process go on.
 *
 * Lifetimes:
 * - struct h2_stream belongs to h2.  It is valid from the stream_open
 *   callback until stream_close returns, and stream_close is called exactly
 *   once for every stream stream_open accepted, whatever ends it: both
 *   sides done, a reset, the connection dropping, or h2_server_free().
 *   (nghttp2_session_del() calls no stream-close callback, so h2 keeps its
 *   own list of open streams per connection and walks it.)  After
 *   stream_close the pointer must not be used: the upper layer detaches
 *   whatever it hung on it there.
 * - h2_stream_respond(), the streaming calls and h2_stream_reset() may be
 *   called from inside any callback, or later from the loop.  They only
 *   queue frames; the connection writes them on the next loop pass, so no
 *   callback ever sees a connection freed under it.
 */
#ifndef DSD_H2_H
#define DSD_H2_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ssl_ctx_st;
struct h2_server;
struct h2_stream;

/* A header field to send; names are lower case, values any bytes. */
struct h2_header {
	const char	*name;
	const char	*value;
	size_t		 valuelen;	/* 0 means strlen(value) */
};

/*
 * The upper layer's hooks.  user is the stream's pointer as returned by
 * stream_open.  A callback returning -1 resets that stream (INTERNAL_ERROR)
 * and nothing more; stream_close still follows.
 */
struct h2_callbacks {
	/* A new request stream; return its state, or NULL to refuse it
	 * (RST_STREAM REFUSED_STREAM, and no stream_close). */
	void	*(*stream_open)(struct h2_stream *, void *arg);
	/* One request header field, pseudo-header fields included.  name and
	 * value are NUL-terminated; nghttp2 has validated them. */
	int	 (*header)(struct h2_stream *, void *user, const char *name,
		    size_t namelen, const char *value, size_t valuelen);
	/* The request header block is complete. */
	int	 (*headers_done)(struct h2_stream *, void *user);
	/* Request body bytes, in order; not called once a response has
	 * been submitted. */
	int	 (*data)(struct h2_stream *, void *user, const uint8_t *,
		    size_t);
	/* The request's body would go past max_pending or
	 * max_pending_total: answer it now (the body will not come), or a
	 * 503 goes.  May be NULL. */
	void	 (*over_budget)(struct h2_stream *, void *user);
	/* The client finished its request (END_STREAM). */
	int	 (*request_done)(struct h2_stream *, void *user);
	/* The stream is gone; the last call for it.  error_code is the
	 * HTTP/2 code it ended with, 0 for a normal end. */
	void	 (*stream_close)(struct h2_stream *, void *user,
		    uint32_t error_code);
	/* A streamed response (h2_stream_start()) has sent all it was
	 * given and is still open: write more, or end it.  May be NULL. */
	void	 (*writable)(struct h2_stream *, void *user);
};

struct h2_config {
	const char	*listen;	/* "ADDR:PORT", "[ADDR6]:PORT" */
	uint32_t	 max_streams;
	uint32_t	 max_header_list;
	size_t		 max_body;
	size_t		 max_output;
	size_t		 max_held;	/* response bytes held per connection */
	size_t		 max_held_total; /* the same, every connection */
	size_t		 max_pending;	/* request bytes received, per conn */
	size_t		 max_pending_total; /* the same, every connection */
	int		 max_conns;
	int		 handshake_timeout_ms;
	int		 idle_timeout_ms;
	uint32_t	 window;	/* stream receive window (SETTINGS) */
	struct ssl_ctx_st *tls;		/* NULL: clear text; else a server
					   context (tls_server_ctx()), which
					   the server takes a reference to */
	const struct h2_callbacks *cb;
	void		*arg;		/* passed to stream_open */
};

/* Fill in the defaults: loopback, 100 streams, 16 KiB of headers, 64 MiB
 * of body, 1 MiB of output, 64 MiB of held response bodies per connection
 * and 512 MiB in all, 64 MiB of request bodies per connection and 512 MiB
 * in all, 10000 connections, 10 s handshake, 300 s idle, 1 MiB window.
 * listen and cb are left for the caller. */
void		 h2_config_defaults(struct h2_config *);

/*
 * Bind and listen (start-up): returns NULL and logs why if the address
 * does not parse or cannot be bound.  The config is copied; cb and arg
 * must outlive the server.
 */
struct h2_server *h2_server_new(struct event_base *, const struct h2_config *);
/*
 * New connections use ctx (a reference is taken) from now on; those made
 * already keep theirs, so a certificate reload drops nobody.  Only for a
 * server started with TLS.
 */
void		 h2_server_set_tls(struct h2_server *, struct ssl_ctx_st *);
/* Whether the server speaks TLS. */
int		 h2_server_tls(const struct h2_server *);
/* The bound port (useful with port 0). */
int		 h2_server_port(const struct h2_server *);

/* What the server refused or cut short because of a limit above, and
 * failed TLS handshakes, by kind. */
enum h2_refusal {
	H2_REFUSED_CONN,	/* max_conns, every connection serving */
	H2_REFUSED_EVICTED,	/* max_conns, one in its handshake closed */
	H2_REFUSED_HANDSHAKE,	/* handshake_timeout_ms ran out */
	H2_REFUSED_TLS,		/* a TLS handshake failed */
	H2_REFUSED_STREAM,	/* RST_STREAM REFUSED_STREAM sent: a stream
				   past max_streams that the client had not
				   acknowledged yet (past it, nghttp2 ends
				   the connection), or no memory */
	H2_REFUSED_HEADERS,	/* a header list over max_header_list */
	H2_REFUSED_BODY,	/* a body over max_body (413) */
	H2_REFUSED_BUDGET,	/* max_pending or max_pending_total */
	H2_NREFUSED
};
/* Counters since the server started, and what is open now. */
struct h2_stats {
	uint64_t	 accepted;	/* connections accept()ed */
	size_t		 conns;
	size_t		 streams;
	uint64_t	 refused[H2_NREFUSED];
};
void		 h2_server_stats(const struct h2_server *, struct h2_stats *);

/*
 * Graceful shutdown: stop accepting, send GOAWAY (last stream id = the last
 * one seen) on every connection, let open streams finish, close each
 * connection once it has none.  After grace_ms whatever is left is closed
 * (its streams get stream_close).  done(arg) is called from the loop once
 * no connection is left; it may call h2_server_free().
 */
void		 h2_server_shutdown(struct h2_server *, int grace_ms,
		    void (*done)(void *), void *arg);
/* Close every connection at once (stream_close for each open stream),
 * then free the server.  Safe to call from done, not from any other h2
 * callback. */
void		 h2_server_free(struct h2_server *);

struct event_base *h2_stream_base(const struct h2_stream *);
int32_t		 h2_stream_id(const struct h2_stream *);
/* Whether a response was already submitted on this stream. */
int		 h2_stream_responded(const struct h2_stream *);

/*
 * Submit the whole response: headers (":status" first), then, if body is
 * not NULL, its contents as DATA (the evbuffer is emptied: its chains are
 * moved, not copied, and the caller still frees it), then trailers if
 * ntrailers > 0.  With neither body nor trailers the headers end the
 * stream.  Header names and values are copied.  If the client is still
 * sending when the response ends, the stream is reset with NO_ERROR
 * (RFC 9113 8.1) so that it stops.
 * Returns 0, or -1 if a response was already submitted, the connection is
 * closing, or memory ran out (the caller may then h2_stream_reset()).
 */
int		 h2_stream_respond(struct h2_stream *,
		    const struct h2_header *hdrs, size_t nhdrs,
		    struct evbuffer *body,
		    const struct h2_header *trailers, size_t ntrailers);
/*
 * A streamed response, for a body made as the peer takes it (gRPC server
 * streaming): h2_stream_start() submits the headers and opens the body;
 * h2_stream_write() adds bytes to it (the evbuffer is emptied, as
 * above); h2_stream_end() closes it, with trailers if ntrailers > 0, sent
 * once the bytes before them are.  HTTP/2 flow control paces the body:
 * what the peer's window holds back stays queued (h2_stream_queued()
 * says how much, and it counts against max_held), and each time the
 * queue drains the writable callback asks for more.  A writer that keeps
 * its queue small (refilling from writable) holds little memory however
 * large the body.  Each returns 0, or -1 if the stream is gone, reset or
 * not streaming (or, for start, as h2_stream_respond()), or memory ran
 * out: the caller may then h2_stream_reset().
 */
int		 h2_stream_start(struct h2_stream *,
		    const struct h2_header *hdrs, size_t nhdrs);
int		 h2_stream_write(struct h2_stream *, struct evbuffer *body);
int		 h2_stream_end(struct h2_stream *,
		    const struct h2_header *trailers, size_t ntrailers);
/* Body bytes submitted and not yet framed (0 without a body). */
size_t		 h2_stream_queued(const struct h2_stream *);
/* Reset the stream with an HTTP/2 error code (RST_STREAM). */
void		 h2_stream_reset(struct h2_stream *, uint32_t error_code);

#endif
