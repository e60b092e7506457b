/*
 * The front of the key-value modes: the dsd.kvdb.v1.KV service of
 * src/kv/kvdb.proto on a gRPC server (net/grpc.h), with the health
 * service, the transport limits and budgets from the flags both modes
 * share, and the data directory's lock.
 *
 * kvdb and kvdb-replicated differ only in what they do with a request
 * once it is decoded and checked, that is in how an operation becomes
 * durable: kvdb applies it at once and waits for its own log (kv/wal.h),
 * kvdb-replicated orders it through the Raft log (kv/raft_glue.h) or
 * passes it on to the leader.  Everything a client can see of a request
 * before that (a malformed message, a key over --max-key-bytes, the
 * budgets, deadlines) is decided here, once for both.
 *
 * A request reaches the mode as a struct kvfront_req: the operation
 * (pointing into the decoded message), the call to answer, and the
 * client's session metadata.  The mode owns it from then on, answers it
 * during the callback or later, and ends it exactly once, with
 * kvfront_reply(), kvfront_fail(), kvfront_relay() or kvfront_req_done()
 * (which answers nothing: the mode took the call to answer it itself,
 * with kvfront_call_reply()).
 *
 * With --metrics-listen the front also serves the Prometheus page: the
 * requests answered by method and status, the transport's counters and
 * refusals, each method's duration, and whatever the mode adds
 * (kvfront_metrics()).  A request is counted by the node that took the
 * client's call, when its answer goes out: a replica's answer relayed
 * from the leader counts on the replica, not again on the leader.
 */
#ifndef DSD_KV_KVFRONT_H
#define DSD_KV_KVFRONT_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"
#include "net/grpc.h"
#include "kv/store.h"

struct dsd;
struct kvfront;
struct ssl_ctx_st;

/* The flags of every key-value mode (--listen, --data-dir, the limits). */
extern const struct flag_group *const kvfront_flag_groups[];

/* gRPC metadata a client may send: a client id (decimal, nonzero) and a
 * sequence number (decimal, from 1) for exactly-once retries, and the
 * mark a replica puts on a request it passes to the leader. */
#define KVFRONT_MD_CLIENT	"dsd-client-id"
#define KVFRONT_MD_SEQ		"dsd-seq"
#define KVFRONT_MD_FORWARDED	"dsd-forwarded"

/* How a request that came from elsewhere than a gRPC call ends: a status,
 * and the Reply message (status 0) or a message (NULL if none). */
typedef void	(*kvfront_done_fn)(void *arg, enum grpc_status,
		    const char *msg, const uint8_t *reply, size_t len);

struct kvfront_req {
	struct kvfront		*front;
	struct grpc_call	*call;		/* the mode's to answer, or NULL */
	kvfront_done_fn		 done;		/* without a call */
	void			*done_arg;
	struct store_op		 op;		/* points into msg */
	uint64_t		 client_id;	/* 0: no session */
	uint64_t		 seq;
	int			 forwarded;	/* from another replica */

	void			*msg;		/* the front's: ProtobufCMessage */
};

/* What the mode does with a request: see above.  Called on the loop. */
typedef void	(*kvfront_request_fn)(void *arg, struct kvfront_req *);

/*
 * Start-up, in two steps with the mode's recovery between them, so that
 * a server accepts connections only once it can serve them.
 * kvfront_new() checks the shared flags and creates and locks the data
 * directory (mkdir -p, owner only; a second dsd on it is refused); the
 * mode's own flags are its to check before, so that a bad setting stops
 * start-up before the directory is touched.  kvfront_listen() binds and
 * registers the KV methods.  Both fatal() on failure, with the reason.
 */
struct kvfront	*kvfront_new(struct dsd *, kvfront_request_fn, void *arg);
void		 kvfront_listen(struct kvfront *, const char *listen);
/*
 * A request that came from elsewhere than a gRPC call (a replica passed
 * it on in a batch): the operation type and the KV request message, with
 * its session.  It is decoded and checked as a call's is, and its ends
 * (kvfront_reply(), _fail(), _relay()) call done instead of answering a
 * call.  Returns it, or NULL after calling done with the reason (a
 * malformed message, a key over the limit, no memory).
 */
struct kvfront_req *kvfront_req_new(struct kvfront *, unsigned type,
		    const uint8_t *buf, size_t len, uint64_t client_id,
		    uint64_t seq, kvfront_done_fn, void *arg);
/*
 * TLS.  With --tls-cert the port speaks only TLS; SIGHUP rereads the files
 * (kvfront_listen() catches it).  kvfront_client_tls() is the context for
 * calls to other members of a cluster, the member's own certificate
 * presented as its client certificate and the peer verified against ca
 * (NULL: --tls-client-ca, else the system's store); made on the first
 * call, rebuilt on SIGHUP, NULL if the port is in clear text.  It is
 * lent: take a reference (or make the SSL at once) to keep it.
 */
int		 kvfront_tls(const struct kvfront *);
struct ssl_ctx_st *kvfront_client_tls(struct kvfront *, const char *ca);
/*
 * The mode's own metrics, rendered after the front's on each scrape (the
 * store's size, its log, Raft); set before kvfront_listen().
 * kvfront_metrics_store() renders dsd_keys and dsd_value_bytes.
 */
void		 kvfront_metrics(struct kvfront *, metrics_collect_fn, void *arg);
void		 kvfront_metrics_store(struct metrics_out *,
		    const struct store *);
/* Add more methods on the same port (the admin service). */
int		 kvfront_register(struct kvfront *, const struct grpc_method *);
struct grpc_server *kvfront_server(struct kvfront *);
const char	*kvfront_datadir(const struct kvfront *);
int		 kvfront_max_key(const struct kvfront *);
/* Graceful stop and free, as grpc_server_shutdown() and _free(); free
 * also drops the data directory's lock. */
void		 kvfront_shutdown(struct kvfront *, int grace_ms,
		    void (*done)(void *), void *arg);
int		 kvfront_grace_ms(const struct kvfront *);
void		 kvfront_free(struct kvfront *);

/* The method's path, and its request message packed again (malloc'ed;
 * NULL if memory ran out): what a replica sends on to the leader. */
const char	*kvfront_req_path(const struct kvfront_req *);
uint8_t		*kvfront_req_pack(const struct kvfront_req *, size_t *len);

/* The Reply message of a result, malloc'ed; NULL if memory ran out. */
uint8_t		*kvfront_encode(const struct store_result *, size_t *len);

/* Ends: answer with a result, an error, or reply bytes made elsewhere
 * (the leader's answer to a forwarded call); or answer nothing. */
void		 kvfront_reply(struct kvfront_req *, const struct store_result *);
void		 kvfront_fail(struct kvfront_req *, enum grpc_status,
		    const char *msg);
void		 kvfront_relay(struct kvfront_req *, const uint8_t *reply,
		    size_t len);
void		 kvfront_req_done(struct kvfront_req *);
/* Answer a call the mode took, as grpc_call_reply(), with the Reply of
 * an operation of this type, counted by its status (an enum
 * store_status; -1: not counted) if it went out. */
int		 kvfront_call_reply(struct kvfront *, struct grpc_call *,
		    enum store_op_type, int status, const uint8_t *reply,
		    size_t len);

#endif
