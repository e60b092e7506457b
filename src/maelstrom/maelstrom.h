/*
 * The Maelstrom node runtime: everything a node mode needs so that the mode
 * is only its handlers and timers.
 *
 * Protocol (../shared/docs/maelstrom.md, sections 1 and 2): one JSON object
 * per line on stdin and stdout, {"src","dest","body"}; body.type names the
 * message, body.msg_id numbers a request, body.in_reply_to answers one.
 *
 * What the runtime guarantees:
 * - Lines of any length are reassembled from partial reads; a line longer
 *   than --max-line is dropped with a log line, as is a line that is not a
 *   JSON envelope.  Nothing but protocol JSON is written to stdout.
 * - Messages that arrive before init are held and handled after it.
 * - mael_reply() never answers a client later than --reply-deadline after
 *   the request arrived (Maelstrom stops reading a node that replies to a
 *   client it has closed), and mael_send() refuses a destination that is
 *   neither a node, a service, nor someone who has written to us.
 * - RPC replies are matched by in_reply_to to the callback of the request;
 *   a request unanswered within its timeout gets the callback with NULL.
 */
#ifndef DSD_MAELSTROM_H
#define DSD_MAELSTROM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/flags.h"

struct event_base;
struct mael;

/* Error codes of the protocol (section 2). */
enum mael_code {
	MAEL_TIMEOUT = 0,
	MAEL_NODE_NOT_FOUND = 1,
	MAEL_NOT_SUPPORTED = 10,
	MAEL_TEMPORARILY_UNAVAILABLE = 11,
	MAEL_MALFORMED_REQUEST = 12,
	MAEL_CRASH = 13,
	MAEL_ABORT = 14,
	MAEL_KEY_DOES_NOT_EXIST = 20,
	MAEL_KEY_ALREADY_EXISTS = 21,
	MAEL_PRECONDITION_FAILED = 22,
	MAEL_TXN_CONFLICT = 30,
};

/*
 * A received message.  Handlers borrow it for the duration of the call;
 * to answer later, take a reference with mael_msg_hold() and drop it with
 * mael_msg_release().
 */
struct mael_msg {
	json_t		*env;		/* the whole envelope */
	json_t		*body;		/* borrowed from env */
	const char	*src;
	const char	*dest;
	const char	*type;
	json_int_t	 msg_id;	/* -1 when absent */
	json_int_t	 in_reply_to;	/* -1 when absent */
	uint64_t	 recv_ms;	/* mael_now_ms() when it was read */
	int		 refs;
};

typedef void	(*mael_handler_fn)(struct mael *, struct mael_msg *,
		    void *state);
typedef void	(*mael_rpc_fn)(struct mael *, struct mael_msg *reply,
		    void *arg);

struct mael_handler {
	const char	*type;		/* NULL ends the table */
	mael_handler_fn	 fn;
};

struct mael_config {
	int			 infd;		/* 0 in production */
	int			 outfd;		/* 1 in production */
	size_t			 max_line;
	int			 reply_deadline_ms;
	const struct mael_handler *handlers;
	void			*state;		/* passed to handlers */
	int			(*joined)(struct mael *, void *state);
	/* End of input or a dead stdout: the node should stop.  status is
	 * the exit status to use (0 on a clean end of input). */
	void			(*done)(struct mael *, void *arg, int status);
	void			*done_arg;
};

/* Flags of every Maelstrom mode (--reply-deadline, --max-line), as the
 * groups field of their struct mode. */
extern const struct flag mael_flags[];
extern const struct flag_group *const mael_flag_groups[];

struct mael	*mael_new(struct event_base *, const struct mael_config *);
/* Write out what is buffered, blocking if need be; for a clean exit. */
void		 mael_flush(struct mael *);
void		 mael_free(struct mael *);

struct event_base *mael_base(struct mael *);
/* This node's id, or NULL before init. */
const char	*mael_node_id(struct mael *);
/* Every node id, in init's order (the same on every node). */
const char *const *mael_node_ids(struct mael *, size_t *n);
/* This node's index in mael_node_ids(), or -1 before init. */
int		 mael_node_index(struct mael *);
uint64_t	 mael_now_ms(void);

/* Whether id names a Maelstrom client (c1, c23, ...) rather than a node
 * or a service. */
int		 mael_is_client(const char *id);

/*
 * Send body to dest as a message of its own; takes ownership of body.
 * Returns -1 (and logs) if dest is not known or the body cannot be
 * serialised.
 */
int		 mael_send(struct mael *, const char *dest, json_t *body);

/*
 * Reply to req; takes ownership of body and sets in_reply_to.  A reply to
 * a client past the deadline is dropped and -1 returned.
 */
int		 mael_reply(struct mael *, const struct mael_msg *req,
		    json_t *body);
/* Reply with an error body {"type":"error","code":..,"text":..}. */
int		 mael_reply_error(struct mael *, const struct mael_msg *req,
		    int code, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
/* Build the error body mael_reply_error() sends. */
json_t		*mael_error_body(int code, const char *text);
/* Whether code is definite: the operation certainly did not happen. */
int		 mael_code_is_definite(int code);
const char	*mael_code_name(int code);

/*
 * Send body as a request with a fresh msg_id (takes ownership) and call fn
 * with the reply, or with NULL after timeout_ms.  fn is called exactly
 * once unless mael_free() comes first.  Returns -1 if it could not be
 * sent, in which case fn is not called.
 */
int		 mael_rpc(struct mael *, const char *dest, json_t *body,
		    int timeout_ms, mael_rpc_fn fn, void *arg);
/* The error code of a reply, or -1 if it is not an error. */
int		 mael_msg_error_code(const struct mael_msg *);

/* Helpers for the key-value services (section 3).  Keys and values are
 * borrowed (the runtime takes its own references). */
int		 mael_kv_read(struct mael *, const char *service, json_t *key,
		    int timeout_ms, mael_rpc_fn, void *arg);
int		 mael_kv_write(struct mael *, const char *service, json_t *key,
		    json_t *value, int timeout_ms, mael_rpc_fn, void *arg);
int		 mael_kv_cas(struct mael *, const char *service, json_t *key,
		    json_t *from, json_t *to, int create_if_not_exists,
		    int timeout_ms, mael_rpc_fn, void *arg);

struct mael_msg	*mael_msg_hold(struct mael_msg *);
void		 mael_msg_release(struct mael_msg *);

/*
 * The line framer, exposed for tests: feeds bytes in, yields complete
 * lines without their newline.  Lines over max_line are dropped whole.
 */
struct mael_lines;
struct mael_lines *mael_lines_new(size_t max_line);
void		 mael_lines_free(struct mael_lines *);
int		 mael_lines_feed(struct mael_lines *, const void *, size_t);
/* Read from fd into the framer: >0 bytes read, 0 at EOF, -1 on error
 * (errno set; EAGAIN when nothing is ready). */
int		 mael_lines_read(struct mael_lines *, int fd);
/* Next complete line (caller frees), or NULL.  With at_eof, a final
 * unterminated line is returned too. */
char		*mael_lines_next(struct mael_lines *, size_t *len, int at_eof);
/* How many over-long lines were dropped so far. */
size_t		 mael_lines_dropped(const struct mael_lines *);

/* Parse one line into a message; NULL (and *err set) if it is not a
 * valid envelope. */
struct mael_msg	*mael_msg_parse(const char *line, size_t len,
		    const char **err);

#endif
