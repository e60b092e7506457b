/*
 * A gRPC server on top of h2 (h2.h), for unary and server-streaming
 * methods: the wire rules of gRPC's PROTOCOL-HTTP2 document, a method
 * table, asynchronous handlers, and the standard health service.  It
 * knows nothing of what the messages mean: handlers get request bytes and
 * answer with reply bytes (protobuf-c or anything else).
 *
 * What a request must look like, and what it gets otherwise:
 * - :method POST, else HTTP 405; content-type application/grpc or
 *   application/grpc+proto (or application/grpc;...), else HTTP 415; both
 *   with grpc-status INTERNAL, as PROTOCOL-HTTP2 asks.
 * - :path /package.Service/Method registered with grpc_server_register(),
 *   else UNIMPLEMENTED.
 * - grpc-encoding absent or "identity", and the compressed flag clear,
 *   else UNIMPLEMENTED with grpc-accept-encoding: identity.  (Compression is
 *   not supported: see grpc.c for why.)
 * - grpc-timeout, if present, "<1-8 digits><H|M|S|m|u|n>", else INTERNAL;
 *   the call is answered DEADLINE_EXCEEDED when it runs out, whatever the
 *   handler is doing.
 * - exactly one length-prefixed message: larger than max_recv_message
 *   gets RESOURCE_EXHAUSTED as soon as its 5-byte prefix arrives (the body
 *   is never buffered); none, two, or a truncated one gets INTERNAL.
 * Answers carry :status 200, content-type application/grpc, one message
 * and trailers grpc-status 0; errors are trailers-only (one HEADERS frame
 * with grpc-status and the percent-encoded grpc-message).  A streamed
 * answer (grpc_call_send()) carries any number of messages, then the
 * status, OK or not, in trailers.
 *
 * Call lifetime (struct grpc_call):
 * - The handler is called once the request is complete and owns the call
 *   from then on, until it calls grpc_call_reply(), grpc_call_error() or
 *   grpc_call_end() exactly once -- now, from a callback much later
 *   (after an fsync or a Raft commit), or from its cancel function.  That call releases the
 *   handle; the pointer must not be used after it.
 * - The client may go away first (RST_STREAM, a closed connection, server
 *   shutdown) or the deadline may pass.  The call is then dead: the
 *   cancel function, if set, is called once, and a later reply is dropped
 *   (grpc_call_reply returns -1), never written anywhere.  A dead call holds
 *   only its own memory, nothing of the connection or the server, so the
 *   handler may release it even after grpc_server_free().
 * - A handler that never answers leaks its call; the server cannot know.
 */
#ifndef DSD_GRPC_H
#define DSD_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "net/h2.h"

struct event_base;
struct grpc_call;
struct grpc_server;

/* Status codes (grpc/doc/statuscodes.md). */
enum grpc_status {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};
#define GRPC_NSTATUS	17

/*
 * A method handler.  req (len bytes, the message without its prefix) is
 * borrowed for the duration of the call only; copy what must outlive it.
 * A malformed request is the handler's to judge: answer
 * GRPC_INVALID_ARGUMENT.
 */
typedef void	(*grpc_handler_fn)(struct grpc_call *, const uint8_t *req,
		    size_t len, void *arg);
/* Called at most once, when a call dies before its handler answered. */
typedef void	(*grpc_cancel_fn)(struct grpc_call *, void *arg);
/* A streamed answer has sent every message given so far. */
typedef void	(*grpc_writable_fn)(struct grpc_call *, void *arg);

struct grpc_method {
	const char	*path;		/* "/package.Service/Method"; NULL ends */
	grpc_handler_fn	 fn;
	void		*arg;
};

/* At most this many request metadata names are kept per call. */
#define GRPC_MAX_METADATA	4

struct grpc_config {
	struct h2_config h2;		/* listen address and transport limits;
					   cb and arg are grpc's own */
	size_t		 max_recv_message;
	size_t		 max_send_message;
	/* Request metadata (header names, lower case, not ':' or grpc-)
	 * whose values handlers read with grpc_call_metadata(): NULL-
	 * terminated, at most GRPC_MAX_METADATA, or NULL for none.  Other
	 * metadata is not kept. */
	const char *const *metadata;
	/* Measure how long each call takes (grpc_method_stats): two reads
	 * of the clock per call, so only when someone looks. */
	int		 time_calls;
};

/* h2 defaults plus 4 MiB messages each way (gRPC's usual receive limit). */
void		 grpc_config_defaults(struct grpc_config *);

/* Bind and listen (start-up); NULL and a log line on failure.  The
 * server serves grpc.health.v1.Health/Check from the start. */
struct grpc_server *grpc_server_new(struct event_base *,
		    const struct grpc_config *);
/*
 * Add a NULL-path-terminated method table; the table is borrowed and must
 * outlive the server.  Returns -1 (and logs) if a path is malformed or
 * already registered.
 */
int		 grpc_server_register(struct grpc_server *,
		    const struct grpc_method *);
int		 grpc_server_port(const struct grpc_server *);
/* Reload: new connections use this TLS context, as h2_server_set_tls(). */
void		 grpc_server_set_tls(struct grpc_server *, struct ssl_ctx_st *);
/* What the health service answers: SERVING (1, the start) or NOT_SERVING
 * (0), for a server that is up but cannot serve (a replica without a
 * leader). */
void		 grpc_server_set_serving(struct grpc_server *, int serving);
/*
 * Graceful stop: health turns NOT_SERVING, GOAWAY goes to every
 * connection, calls in flight may still answer for grace_ms; then every
 * connection is closed (the calls left die) and done(arg) runs from the
 * loop.
 */
void		 grpc_server_shutdown(struct grpc_server *, int grace_ms,
		    void (*done)(void *), void *arg);
/* Close everything now and free the server; pending calls die. */
void		 grpc_server_free(struct grpc_server *);

/*
 * Answer with one message (copied) and grpc-status OK.  Releases the call.
 * Returns 0 if it was sent, -1 if it was dropped: the call was dead,
 * already answered (deadline), the reply was larger than
 * max_send_message (the client then gets RESOURCE_EXHAUSTED), or memory
 * ran out (the client gets RESOURCE_EXHAUSTED if it can).
 */
int		 grpc_call_reply(struct grpc_call *, const void *, size_t);
/* Answer with an error status and a message (UTF-8, may be NULL),
 * trailers-only.  Releases the call.  Returns as grpc_call_reply(). */
int		 grpc_call_error(struct grpc_call *, enum grpc_status,
		    const char *msg);
/*
 * Server streaming.  grpc_call_send() sends one message (copied; the
 * response headers go before the first) and keeps the call: any number
 * may follow, and grpc_call_end() (status OK) or grpc_call_error() (any
 * other, after the messages) ends it and releases it, as does
 * grpc_call_reply() (one last message, then OK).  HTTP/2 flow control
 * paces the messages: grpc_call_queued() says how many bytes wait for
 * the client, and the writable function, if set, is called each time
 * they have all been sent while the call is still open, to send more.
 * A handler that sends a large answer piece by piece, keeping the queue
 * small, holds little memory and lets a slow client set the pace.
 * grpc_call_send() returns 0, or -1 if the call is dead, the message is
 * over max_send_message, or memory ran out: the call is then answered
 * (RESOURCE_EXHAUSTED, or a reset), and the handler must still end it to
 * release it.
 */
int		 grpc_call_send(struct grpc_call *, const void *, size_t);
int		 grpc_call_end(struct grpc_call *);
size_t		 grpc_call_queued(const struct grpc_call *);
void		 grpc_call_on_writable(struct grpc_call *, grpc_writable_fn,
		    void *arg);
/* Set (or clear, with NULL) the function called if the call dies before
 * the handler answers. */
void		 grpc_call_on_cancel(struct grpc_call *, grpc_cancel_fn,
		    void *arg);
/* Whether an answer would still reach the client. */
int		 grpc_call_alive(const struct grpc_call *);
/* The method's path, valid while the call is. */
const char	*grpc_call_path(const struct grpc_call *);
/* The value of the i-th name of the config's metadata list as the client
 * sent it (NUL-terminated; the last one if repeated), or NULL if absent.
 * Valid until the call is answered. */
const char	*grpc_call_metadata(const struct grpc_call *, size_t i);
/* Microseconds left before the call's grpc-timeout runs out (0 if it has),
 * or -1 if it has none or is dead: for a handler that passes the call on
 * (a forward to another server) with what is left of its deadline. */
int64_t		 grpc_call_time_left_us(const struct grpc_call *);

/*
 * Counters, for metrics.  Each registered method has its stats, in the
 * order registered (the health service first), and calls to no
 * registered method share the last, named "unknown".  name is the
 * method's name in lower_snake_case (grpc_method_name()), or its path
 * less the first slash if another method has that name already.
 * duration counts the calls answered after their handler had the request
 * (with time_calls): from the moment the request was complete and handed
 * to the handler until the answer went to HTTP/2, so a handler's wait
 * for a log or a Raft commit is in it, and reading the request and
 * writing the answer to the socket are not.
 */
struct grpc_method_stats {
	const char		*name;
	uint64_t		 answers[GRPC_NSTATUS];	/* by grpc-status */
	struct metrics_hist	 duration;
};
/* The i-th stats, from 0; NULL past the last. */
const struct grpc_method_stats *grpc_server_method_stats(
		    const struct grpc_server *, size_t i);
/* Calls refused or cut short for a limit of the config, by kind, and
 * the transport's counters. */
enum grpc_refusal {
	GRPC_REFUSED_DEADLINE,	/* grpc-timeout ran out: DEADLINE_EXCEEDED */
	GRPC_REFUSED_MESSAGE,	/* request over max_recv_message */
	GRPC_NREFUSED
};
struct grpc_stats {
	uint64_t	 refused[GRPC_NREFUSED];
	struct h2_stats	 h2;
};
void		 grpc_server_stats(const struct grpc_server *,
		    struct grpc_stats *);

/* Helpers, exposed for tests and for tools. */
const char	*grpc_status_name(int);
/* Parse a grpc-timeout value ("<1-8 digits><H|M|S|m|u|n>") into
 * microseconds, nanoseconds rounded up; -1 if malformed. */
int64_t		 grpc_timeout_parse(const char *, size_t);
/* Percent-encode a grpc-message (bytes outside 0x20-0x7e, and '%', as
 * %XX).  Returns a malloc'd string, or NULL if memory ran out. */
char		*grpc_message_encode(const char *);
/* The method of a path in lower_snake_case ("/a.B/TestAndSet":
 * "test_and_set"), malloc'd; NULL if memory ran out. */
char		*grpc_method_name(const char *path);

#endif
