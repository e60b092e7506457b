/*
 * kvdb-replicated: the kvdb API (src/kv/kvdb.proto, through the front
 * every key-value mode shares, src/kv/kvfront.h) on a Raft cluster
 * (src/kv/raft_glue.h, Debian's libraft), plus the admin service of
 * src/kv/admin.proto.  What is this mode's own is how an operation
 * becomes durable: through the replicated log, applied on every replica
 * by the same state machine (src/kv/rsm.h), and only then answered.
 *
 * Any node answers.  The leader gathers the writes of a loop pass into
 * one log entry (a batch), and answers each when the entry is applied.
 * A linearizable read waits for an entry appended after it arrived (the
 * pass's batch, or one barrier shared by every read of the pass) and is
 * then served from the leader's state: the leader was still the leader
 * when that entry committed, so no newer write can exist.  A follower
 * passes a request on to the leader over one long-lived gRPC connection
 * (src/net/grpc_client.h), marked so that the leader does not pass it on
 * again, and relays the answer.  With no leader known (an election), a
 * request waits, up to --leader-wait and the call's own deadline.
 *
 * Outcomes are honest: UNAVAILABLE only when a write certainly was not
 * applied (no leader in time, this node or the one asked is not the
 * leader, the request could not be sent); UNKNOWN when it may have been
 * (leadership lost after the entry was appended, a forward cut after it
 * was sent, a forward that timed out).  A client that sends dsd-client-id
 * and dsd-seq can retry UNKNOWN and UNAVAILABLE with the same numbers and
 * get the first outcome, never a second application (src/kv/rsm.h).
 * Reads, having no effect, are retried here instead of failing UNKNOWN.
 *
 * An online backup (dsd.kvdb.v1.Maintenance/Snapshot, src/kv/backup.h)
 * is of the state this node has applied, follower or leader, as etcdctl's
 * snapshot is of the member asked: the same forked child as kvdb's,
 * over the state machine's store.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/random.h>
#include <sys/time.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sdnotify.h"
#include "core/u64map.h"
#include "core/xmalloc.h"
#include "net/grpc.h"
#include "net/grpc_client.h"
#include "kv/backup.h"
#include "kv/kvfront.h"
#include "kv/raft_glue.h"
#include "kv/rsm.h"
#include "kv/store.h"
#include "kv/admin.pb-c.h"
#include "kv/replica.pb-c.h"

/* A batch entry holds at most this much, unless one operation is larger. */
#define KVR_BATCH_MAX	(1U << 20)
/* Backoff between tries to reach a leader that refused or was away. */
#define KVR_RETRY_MIN_MS	10
#define KVR_RETRY_MAX_MS	200

/* How long a membership change passed on to the leader may take when its
 * client set no deadline. */
#define KVR_CHANGE_MS	60000

#define KVR_PATH_ADD	"/dsd.kvdb.v1.Admin/MemberAdd"
#define KVR_PATH_REMOVE	"/dsd.kvdb.v1.Admin/MemberRemove"
#define KVR_PATH_FORWARD "/dsd.kvdb.v1.Replica/Forward"

struct kvr;

/* A request on its way: a KV call, or a membership change. */
struct kvr_op {
	struct kvr		*kv;
	int			 type;
#define KVR_KV		0
#define KVR_ADD		1
#define KVR_REMOVE	2
	struct kvfront_req	*req;		/* KVR_KV */
	struct grpc_call	*call;		/* NULL: from a Forward batch */
	uint8_t			*body;		/* admin: the request */
	size_t			 len;
	uint64_t		 member;	/* admin: its id */
	char			*address;	/* KVR_ADD: RAFT/CLIENT */
	int			 write;		/* may change state */
	int			 forwarded;	/* from another replica */

	int			 state;
#define KVR_NEW		0
#define KVR_WAITING	1	/* for a leader */
#define KVR_BATCHED	2	/* in a batch, a barrier or a change */
#define KVR_FORWARDED	3	/* to the leader */
	struct timeval		 give_up;	/* while waiting */
	struct timeval		 retry_at;
	int			 backoff_ms;
	TAILQ_ENTRY(kvr_op)	 link;
};
TAILQ_HEAD(kvr_ops, kvr_op);

/* An entry in flight: a batch of writes, or a barrier (nops 0), and the
 * reads waiting for it. */
struct kvr_entry {
	struct kvr		*kv;
	uint64_t		 number;	/* the batch's; 0: barrier */
	struct kvr_op		**ops;		/* by index in the batch */
	uint32_t		 nops;
	struct kvr_ops		 reads;
};

/* Another member's gRPC service, and the requests of this pass to pass
 * on to it in one Forward call. */
struct kvr_peer {
	uint64_t		 id;
	char			*addr;		/* client address */
	struct grpcc_conn	*conn;
	struct kvr_op		**pend;
	uint32_t		 npend, cappend;
	size_t			 pend_bytes;
	LIST_ENTRY(kvr_peer)	 link;
};

/* A Forward call on its way (the follower's side). */
struct kvr_fwd {
	struct kvr		*kv;
	struct kvr_op		**ops;
	uint32_t		 n;
};

/* A Forward call being served (the leader's side): a slot per request. */
struct kvr_fwdin;
struct kvr_slot {
	struct kvr_fwdin	*fb;
	enum grpc_status	 status;
	char			*msg;
	uint8_t			*reply;
	size_t			 len;
};
struct kvr_fwdin {
	struct grpc_call	*call;
	uint32_t		 n;
	uint32_t		 left;		/* slots not yet answered */
	struct kvr_slot		*slots;
};

struct kvr {
	struct dsd		*d;
	struct kvfront		*front;
	struct backup		*backup;
	struct rsm		*rsm;
	struct raft_glue	*glue;
	uint64_t		 id;
	char			*address;	/* RAFT/CLIENT */
	char			*raft_addr, *client_addr;
	int			 serializable;
	int			 leader_wait_ms;
	int			 forward_ms;
	int			 user_timeout_ms;
	int			 max_message;
	uint64_t		 incarnation;
	uint64_t		 next_batch;

	/* The leader's pass: writes and reads gathered until its end. */
	struct rsm_batch	 batch;
	struct kvr_op		**pass_ops;
	uint32_t		 pass_nops, pass_cap;
	struct kvr_ops		 pass_reads;
	struct event		*ev_flush;
	struct u64map		*entries;	/* batch number -> kvr_entry */

	struct kvr_ops		 waiting;
	struct event		*ev_retry;
	uint64_t		 seen_leader;	/* for noticing a change */
	int			 serving;

	/* A follower's view of how far the leader has committed: health
	 * says SERVING only once this node has applied that much. */
	struct event		*ev_probe;
	uint64_t		 leader_commit;
	int			 leader_commit_known;
	int			 probing;

	LIST_HEAD(, kvr_peer)	 peers;
	int			 stopping;
};

static const struct flag kvr_flags[] = {
	{ "node-id", FLAG_INT, "ID", NULL, 1, LLONG_MAX,
	  "this node's id, a positive integer (required)" },
	{ "cluster", FLAG_STRING, "ID=RAFTADDR/CLIENTADDR,...", NULL, 0, 0,
	  "every initial member, the same on every node; bootstraps the "
	  "first start, ignored on a restart" },
	{ "join", FLAG_STRING, "RAFTADDR/CLIENTADDR", NULL, 0, 0,
	  "start empty with these addresses and wait to be added by "
	  "dsd-cli member add (instead of --cluster)" },
	{ "raft-listen", FLAG_STRING, "ADDR:PORT", NULL, 0, 0,
	  "address the Raft transport binds (IPv4; default the Raft address "
	  "of its own member entry), e.g. 0.0.0.0:7401" },
	{ "read", FLAG_STRING, "KIND", "linearizable", 0, 0,
	  "linearizable (through the leader) or serializable (local state "
	  "of any node, possibly stale)" },
	{ "election-timeout", FLAG_INT, "MS", "500", 50, 60000,
	  "a follower that hears no leader for this long (times 1 to 2, at "
	  "random) starts an election" },
	{ "heartbeat-timeout", FLAG_INT, "MS", "100", 10, 60000,
	  "how often an idle leader tells the followers it is there" },
	{ "snapshot-threshold", FLAG_INT, "ENTRIES", "1024", 16, 1 << 30,
	  "log entries applied between snapshots" },
	{ "snapshot-trailing", FLAG_INT, "ENTRIES", "128", 0, 1 << 30,
	  "log entries kept after a snapshot, for followers a little behind" },
	{ "leader-wait", FLAG_INT, "MS", "5000", 0, 600000,
	  "how long a request waits for a leader (UNAVAILABLE after)" },
	{ "forward-timeout", FLAG_INT, "MS", "5000", 100, 600000,
	  "how long a request passed on to the leader may take" },
	{ "tls-ca", FLAG_STRING, "FILE", NULL, 0, 0,
	  "with --tls-cert: the CA (PEM) other members' client-port "
	  "certificates are checked against when requests are passed to the "
	  "leader (default --tls-client-ca, else the system's store)" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static void	kvr_dispatch(struct kvr *, struct kvr_op *);
static void	kvr_wait(struct kvr *, struct kvr_op *, int retry_now);
static void	kvr_requeue(struct kvr *, struct kvr_op **, uint32_t,
		    struct kvr_ops *);
static void	kvr_request(void *, struct kvfront_req *);

/* Ops: ends. */

static void
kvr_op_free(struct kvr_op *op)
{
	free(op->body);
	free(op->address);
	free(op);
}

static void
kvr_op_fail(struct kvr_op *op, enum grpc_status status, const char *msg)
{
	if (op->type == KVR_KV)
		kvfront_fail(op->req, status, msg);
	else
		grpc_call_error(op->call, status, msg);
	kvr_op_free(op);
}

static void
kvr_op_relay(struct kvr_op *op, const uint8_t *reply, size_t len)
{
	if (op->type == KVR_KV)
		kvfront_relay(op->req, reply, len);
	else
		grpc_call_reply(op->call, reply, len);
	kvr_op_free(op);
}

static void
kvr_op_reply(struct kvr_op *op, const struct store_result *res)
{
	kvfront_reply(op->req, res);
	kvr_op_free(op);
}

/* Serve a read from this node's state. */
static void
kvr_read_local(struct kvr *kv, struct kvr_op *op)
{
	struct store_result	res;

	if (store_apply(rsm_store(kv->rsm), &op->req->op, &res) == -1) {
		kvr_op_fail(op, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	kvr_op_reply(op, &res);
	store_result_release(&res);
}

/* The call died (client gone, deadline): an op that is only waiting is
 * dropped now; one in a batch or a forward ends when that does. */
static void
kvr_on_cancel(struct grpc_call *call, void *arg)
{
	struct kvr_op	*op = arg;

	if (op->state != KVR_WAITING)
		return;
	TAILQ_REMOVE(&op->kv->waiting, op, link);
	kvr_op_fail(op, GRPC_CANCELLED, NULL);	/* dropped: the call is dead */
}

static struct kvr_op *
kvr_op_new(struct kvr *kv, int type, struct grpc_call *call)
{
	struct kvr_op	*op;

	if ((op = calloc(1, sizeof *op)) == NULL)
		return NULL;
	op->kv = kv;
	op->type = type;
	op->call = call;
	op->backoff_ms = KVR_RETRY_MIN_MS;
	if (call != NULL)
		grpc_call_on_cancel(call, kvr_on_cancel, op);
	return op;
}

/* Peers: one connection to each member we pass requests to. */

static void
kvr_peer_state(struct grpcc_conn *conn, int up, const char *why, void *arg)
{
	struct kvr_peer	*p = arg;

	if (up)
		return;
	log_info("kvdb-replicated: connection to member %" PRIu64 " (%s) "
	    "lost: %s", p->id, p->addr, why);
	grpcc_close(conn);
	p->conn = NULL;
}

/*
 * The peer of member id at client address addr, connected (or
 * connecting), or NULL if memory ran out or the address cannot be used.
 */
static struct kvr_peer *
kvr_peer(struct kvr *kv, uint64_t id, const char *addr)
{
	struct kvr_peer		*p;
	struct grpcc_config	 cfg;
	const char		*err;
	char			*a;

	LIST_FOREACH(p, &kv->peers, link) {
		if (p->id == id)
			break;
	}
	if (p != NULL && strcmp(p->addr, addr) != 0) {
		/* The member came back with another address: what was
		 * gathered for it goes there too. */
		if ((a = strdup(addr)) == NULL)
			return NULL;
		grpcc_close(p->conn);
		p->conn = NULL;
		free(p->addr);
		p->addr = a;
	}
	if (p == NULL) {
		if ((p = calloc(1, sizeof *p)) == NULL ||
		    (p->addr = strdup(addr)) == NULL) {
			free(p);
			return NULL;
		}
		p->id = id;
		LIST_INSERT_HEAD(&kv->peers, p, link);
	}
	if (p->conn != NULL)
		return p;
	memset(&cfg, 0, sizeof cfg);
	cfg.addr = p->addr;
	cfg.max_reply = (size_t)kv->max_message;
	cfg.connect_timeout_ms = kv->forward_ms;
	/* As the Raft connections (raft_glue.c): a leader gone silent is
	 * noticed in seconds, also after a partition heals. */
	cfg.user_timeout_ms = kv->user_timeout_ms;
	cfg.on_state = kvr_peer_state;
	cfg.arg = p;
	cfg.tls = kvfront_client_tls(kv->front, NULL);	/* NULL: clear */
	if ((p->conn = grpcc_connect(kv->d->base, &cfg, &err)) == NULL) {
		log_warnx("kvdb-replicated: member %" PRIu64 " at %s: %s", id,
		    addr, err);
		return NULL;
	}
	return p;
}

static void
kvr_peers_free(struct kvr *kv)
{
	struct kvr_peer	*p;

	while ((p = LIST_FIRST(&kv->peers)) != NULL) {
		LIST_REMOVE(p, link);
		grpcc_close(p->conn);
		kvr_requeue(kv, p->pend, p->npend, NULL);
		free(p->pend);
		free(p->addr);
		free(p);
	}
}

/* Forwarding to the leader. */

static void
kvr_forward_done(void *arg, int status, const char *msg,
    const uint8_t *reply, size_t len)
{
	struct kvr_op	*op = arg;
	struct kvr	*kv = op->kv;

	if (status == GRPC_OK) {
		kvr_op_relay(op, reply, len);
		return;
	}
	if (kv->stopping) {
		kvr_op_fail(op, op->write ? GRPC_UNKNOWN : GRPC_UNAVAILABLE,
		    "the server is stopping");
		return;
	}
	switch (status) {
	case GRPC_UNAVAILABLE:
		/* Not sent, or the node asked was not the leader: certainly
		 * not applied.  Find the leader again. */
		kvr_wait(kv, op, 0);
		return;
	case GRPC_UNKNOWN:
	case GRPC_DEADLINE_EXCEEDED:
		if (!op->write) {
			kvr_wait(kv, op, 0);
			return;
		}
		kvr_op_fail(op, GRPC_UNKNOWN, status == GRPC_UNKNOWN ? msg :
		    "the leader did not answer in time: the write may or may "
		    "not be applied; retry with the same dsd-seq to find out");
		return;
	default:
		/* The leader's own answer. */
		kvr_op_fail(op, (enum grpc_status)status, msg);
	}
}

/* The answer to a Forward call: each request's own result. */
static void
kvr_fwd_done(void *arg, int status, const char *msg, const uint8_t *reply,
    size_t len)
{
	struct kvr_fwd			*f = arg;
	Dsd__Kvdb__V1__ForwardReply	*r = NULL;
	Dsd__Kvdb__V1__ForwardedResult	*res;
	uint32_t			 i;

	if (status == GRPC_OK &&
	    ((r = dsd__kvdb__v1__forward_reply__unpack(NULL, len,
	    reply)) == NULL || r->n_results != f->n)) {
		/* The leader acted on them, or some: we cannot say which. */
		status = GRPC_UNKNOWN;
		msg = "a malformed answer from the leader";
	}
	for (i = 0; i < f->n; i++) {
		if (status != GRPC_OK) {
			kvr_forward_done(f->ops[i], status, msg, NULL, 0);
			continue;
		}
		res = r->results[i];
		kvr_forward_done(f->ops[i], (int)res->status,
		    res->message != NULL && *res->message != '\0' ?
		    res->message : NULL, res->reply.data, res->reply.len);
	}
	if (r != NULL)
		dsd__kvdb__v1__forward_reply__free_unpacked(r, NULL);
	free(f->ops);
	free(f);
}

/* Send the requests gathered for a peer in one Forward call. */
static void
kvr_forward_send(struct kvr *kv, struct kvr_peer *p)
{
	Dsd__Kvdb__V1__ForwardRequest	 fr = DSD__KVDB__V1__FORWARD_REQUEST__INIT;
	Dsd__Kvdb__V1__ForwardedCall	*calls = NULL, **cp = NULL;
	struct kvr_fwd			*f = NULL;
	struct kvr_op			*op;
	uint8_t				*buf = NULL;
	size_t				 len;
	uint32_t			 i, n = p->npend;

	if (n == 0)
		return;
	if ((f = calloc(1, sizeof *f)) == NULL ||
	    (calls = calloc(n, sizeof *calls)) == NULL ||
	    (cp = calloc(n, sizeof *cp)) == NULL)
		goto fail;
	f->kv = kv;
	f->ops = p->pend;
	f->n = n;
	p->pend = NULL;
	p->npend = p->cappend = 0;
	p->pend_bytes = 0;
	for (i = 0; i < n; i++) {
		op = f->ops[i];
		dsd__kvdb__v1__forwarded_call__init(&calls[i]);
		calls[i].op = op->req->op.type;
		calls[i].client_id = op->req->client_id;
		calls[i].seq = op->req->seq;
		calls[i].request.data = kvfront_req_pack(op->req,
		    &calls[i].request.len);
		if (calls[i].request.data == NULL)
			goto fail_ops;
		cp[i] = &calls[i];
	}
	fr.n_calls = n;
	fr.calls = cp;
	len = dsd__kvdb__v1__forward_request__get_packed_size(&fr);
	if ((buf = malloc(len + 1)) == NULL)
		goto fail_ops;
	dsd__kvdb__v1__forward_request__pack(&fr, buf);
	if (p->conn == NULL || grpcc_call(p->conn, KVR_PATH_FORWARD, buf, len,
	    kv->forward_ms, kvr_fwd_done, f) == -1) {
		/* Not sent: find the leader again. */
		kvr_requeue(kv, f->ops, n, NULL);
		free(f->ops);
		free(f);
	}
	goto out;

fail_ops:
	kvr_requeue(kv, f->ops, n, NULL);
	free(f->ops);
	free(f);
	goto out;
fail:
	free(f);
	kvr_requeue(kv, p->pend, p->npend, NULL);
	free(p->pend);
	p->pend = NULL;
	p->npend = p->cappend = 0;
	p->pend_bytes = 0;
out:
	if (calls != NULL) {
		for (i = 0; i < n; i++)
			free(calls[i].request.data);
	}
	free(calls);
	free(cp);
	free(buf);
}

/* Send every peer's gathered requests: the end of a pass. */
static void
kvr_forward_flush(struct kvr *kv)
{
	struct kvr_peer	*p;

	LIST_FOREACH(p, &kv->peers, link)
		kvr_forward_send(kv, p);
}

/* A membership change passed on alone, in its own call. */
static void
kvr_forward_admin(struct kvr *kv, struct kvr_op *op, struct grpcc_conn *conn)
{
	struct grpcc_md	 md[1] = { { KVFRONT_MD_FORWARDED, "1" } };
	int64_t		 left;
	int		 timeout = KVR_CHANGE_MS;

	/* A change may take long (a new node catching up): the client's
	 * deadline, not --forward-timeout, says how long to wait. */
	if ((left = grpc_call_time_left_us(op->call)) >= 0)
		timeout = left / 1000 > 0 ? (int)(left / 1000) : 1;
	op->state = KVR_FORWARDED;
	if (grpcc_call_md(conn, op->type == KVR_ADD ? KVR_PATH_ADD :
	    KVR_PATH_REMOVE, op->body, op->len, timeout, md, 1,
	    kvr_forward_done, op) == -1) {
		op->state = KVR_NEW;
		kvr_wait(kv, op, 0);
	}
}

static void
kvr_forward(struct kvr *kv, struct kvr_op *op, uint64_t leader,
    const char *addr)
{
	struct kvr_peer		*p;
	struct kvr_op		**a;
	uint32_t		 cap;

	if ((p = kvr_peer(kv, leader, addr)) == NULL) {
		kvr_wait(kv, op, 0);
		return;
	}
	if (op->type != KVR_KV) {
		kvr_forward_admin(kv, op, p->conn);
		return;
	}
	if (p->npend == p->cappend) {
		cap = p->cappend == 0 ? 64 : p->cappend * 2;
		if ((a = reallocarray(p->pend, cap, sizeof *a)) == NULL) {
			kvr_op_fail(op, GRPC_RESOURCE_EXHAUSTED,
			    "out of memory");
			return;
		}
		p->pend = a;
		p->cappend = cap;
	}
	p->pend[p->npend++] = op;
	op->state = KVR_FORWARDED;
	/* A Forward call must stay well under the leader's message limit. */
	p->pend_bytes += rsm_batch_cost(&op->req->op) + 16;
	if (p->pend_bytes >= (size_t)kv->max_message / 2)
		kvr_forward_send(kv, p);
	else
		event_active(kv->ev_flush, EV_TIMEOUT, 0);
}

/* Waiting for a leader. */

static void
kvr_arm_retry(struct kvr *kv)
{
	struct timeval	tv = { 0, KVR_RETRY_MIN_MS * 1000 };

	if (!TAILQ_EMPTY(&kv->waiting) && !evtimer_pending(kv->ev_retry, NULL))
		evtimer_add(kv->ev_retry, &tv);
}

/*
 * Park an op until a leader is known or its backoff has passed (retry_now:
 * at the next leader change only).  The wait is bounded by --leader-wait
 * from the first time it waits, and by the call's deadline (grpc answers
 * that one itself and cancels the op).
 */
static void
kvr_wait(struct kvr *kv, struct kvr_op *op, int retry_now)
{
	struct timeval	now, tv;

	event_base_gettimeofday_cached(kv->d->base, &now);
	if (op->give_up.tv_sec == 0) {
		tv.tv_sec = kv->leader_wait_ms / 1000;
		tv.tv_usec = (kv->leader_wait_ms % 1000) * 1000;
		timeradd(&now, &tv, &op->give_up);
	}
	if (timercmp(&now, &op->give_up, >=) || kv->stopping) {
		kvr_op_fail(op, GRPC_UNAVAILABLE, kv->stopping ?
		    "the server is stopping" : "no leader could be reached "
		    "in time: not applied");
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = retry_now ? 0 : op->backoff_ms * 1000;
	timeradd(&now, &tv, &op->retry_at);
	if (!retry_now && op->backoff_ms < KVR_RETRY_MAX_MS)
		op->backoff_ms *= 2;
	op->state = KVR_WAITING;
	TAILQ_INSERT_TAIL(&kv->waiting, op, link);
	kvr_arm_retry(kv);
}

/* Dispatch what waits: all of it (a leader appeared), or what is due. */
static void
kvr_redispatch(struct kvr *kv, int all)
{
	struct kvr_ops	 due;
	struct kvr_op	*op, *next;
	struct timeval	 now;

	event_base_gettimeofday_cached(kv->d->base, &now);
	TAILQ_INIT(&due);
	for (op = TAILQ_FIRST(&kv->waiting); op != NULL; op = next) {
		next = TAILQ_NEXT(op, link);
		if (all || timercmp(&op->retry_at, &now, <=) ||
		    timercmp(&op->give_up, &now, <=)) {
			TAILQ_REMOVE(&kv->waiting, op, link);
			TAILQ_INSERT_TAIL(&due, op, link);
		}
	}
	while ((op = TAILQ_FIRST(&due)) != NULL) {
		TAILQ_REMOVE(&due, op, link);
		op->state = KVR_NEW;
		kvr_dispatch(kv, op);
	}
	kvr_arm_retry(kv);
}

static void
kvr_on_retry(evutil_socket_t fd, short what, void *arg)
{
	kvr_redispatch(arg, 0);
}

/* The leader's batches. */

static void
kvr_entry_free(struct kvr_entry *e)
{
	free(e->ops);
	free(e);
}

/* An entry was applied (status 0) or failed: end what waited for it. */
static void
kvr_entry_done(void *arg, int status)
{
	struct kvr_entry	*e = arg;
	struct kvr		*kv = e->kv;
	struct kvr_op		*op;
	uint32_t		 i;

	if (e->number != 0)
		u64map_del(kv->entries, e->number);
	for (i = 0; i < e->nops; i++) {
		if ((op = e->ops[i]) == NULL)
			continue;	/* answered when applied */
		if (status == RAFT_GLUE_OK)
			kvr_op_fail(op, GRPC_INTERNAL, "the write was applied "
			    "but its outcome was not seen");
		else
			kvr_op_fail(op, GRPC_UNKNOWN, "leadership was lost "
			    "after the write was logged: it may or may not be "
			    "applied; retry with the same dsd-seq to find out");
	}
	while ((op = TAILQ_FIRST(&e->reads)) != NULL) {
		TAILQ_REMOVE(&e->reads, op, link);
		if (status == RAFT_GLUE_OK)
			kvr_read_local(kv, op);
		else {
			op->state = KVR_NEW;
			kvr_wait(kv, op, 1);
		}
	}
	kvr_entry_free(e);
}

/* rsm: an operation of an entry was applied, on this node. */
static void
kvr_outcome(void *arg, const struct rsm_origin *o, uint32_t i,
    const struct rsm_outcome *out)
{
	struct kvr		*kv = arg;
	struct kvr_entry	*e;
	struct kvr_op		*op;
	char			 msg[128];

	if (o->node != kv->id || o->incarnation != kv->incarnation ||
	    (e = u64map_get(kv->entries, o->batch)) == NULL ||
	    i >= e->nops || (op = e->ops[i]) == NULL)
		return;
	e->ops[i] = NULL;
	if (out->kind == RSM_STALE) {
		snprintf(msg, sizeof msg, "dsd-seq %" PRIu64 " is older than "
		    "the last one of client %" PRIu64, op->req->seq,
		    op->req->client_id);
		kvr_op_fail(op, GRPC_FAILED_PRECONDITION, msg);
		return;
	}
	kvr_op_reply(op, &out->res);
}

/* Requeue the ops of a pass that could not be appended: certainly not
 * applied. */
static void
kvr_requeue(struct kvr *kv, struct kvr_op **ops, uint32_t n,
    struct kvr_ops *reads)
{
	struct kvr_op	*op;
	uint32_t	 i;

	for (i = 0; i < n; i++) {
		ops[i]->state = KVR_NEW;
		kvr_wait(kv, ops[i], 0);
	}
	while (reads != NULL && (op = TAILQ_FIRST(reads)) != NULL) {
		TAILQ_REMOVE(reads, op, link);
		op->state = KVR_NEW;
		kvr_wait(kv, op, 0);
	}
}

/* End the pass's batch: append it (with the pass's reads) or, with no
 * writes, a barrier for the reads. */
static void
kvr_flush(struct kvr *kv)
{
	struct kvr_entry	*e;
	uint8_t			*buf;
	size_t			 len;

	if (kv->pass_nops == 0 && TAILQ_EMPTY(&kv->pass_reads))
		return;
	if ((e = calloc(1, sizeof *e)) == NULL)
		goto fail;
	e->kv = kv;
	TAILQ_INIT(&e->reads);
	TAILQ_CONCAT(&e->reads, &kv->pass_reads, link);
	if (kv->pass_nops == 0) {
		if (raft_glue_barrier(kv->glue, kvr_entry_done, e) == -1) {
			TAILQ_CONCAT(&kv->pass_reads, &e->reads, link);
			kvr_entry_free(e);
			goto fail;
		}
		return;
	}
	e->ops = kv->pass_ops;
	e->nops = kv->pass_nops;
	e->number = kv->next_batch - 1;
	kv->pass_ops = NULL;
	kv->pass_nops = kv->pass_cap = 0;
	if ((buf = rsm_batch_end(&kv->batch, &len)) == NULL ||
	    u64map_put(kv->entries, e->number, e) == -1) {
		free(buf);
		kvr_requeue(kv, e->ops, e->nops, &e->reads);
		kvr_entry_free(e);
		return;
	}
	if (raft_glue_apply(kv->glue, buf, len, kvr_entry_done, e) == -1) {
		u64map_del(kv->entries, e->number);
		kvr_requeue(kv, e->ops, e->nops, &e->reads);
		kvr_entry_free(e);
	}
	free(buf);
	return;
fail:
	kvr_requeue(kv, kv->pass_ops, kv->pass_nops, &kv->pass_reads);
	free(kv->pass_ops);
	kv->pass_ops = NULL;
	kv->pass_nops = kv->pass_cap = 0;
	free(rsm_batch_end(&kv->batch, &len));
}

static void
kvr_on_flush(evutil_socket_t fd, short what, void *arg)
{
	kvr_flush(arg);
	kvr_forward_flush(arg);
}

/* Add a write to the pass's batch. */
static void
kvr_batch_write(struct kvr *kv, struct kvr_op *op)
{
	struct rsm_origin	 o;
	struct kvr_op		**a;
	uint32_t		 cap;

	if (kv->pass_nops > 0 && kv->batch.len +
	    rsm_batch_cost(&op->req->op) > KVR_BATCH_MAX)
		kvr_flush(kv);
	if (kv->pass_nops == 0) {
		o.node = kv->id;
		o.incarnation = kv->incarnation;
		o.batch = kv->next_batch++;
		o.time_ms = (int64_t)time(NULL) * 1000;
		if (rsm_batch_begin(&kv->batch, &o) == -1)
			goto oom;
	}
	if (kv->pass_nops == kv->pass_cap) {
		cap = kv->pass_cap == 0 ? 64 : kv->pass_cap * 2;
		if ((a = reallocarray(kv->pass_ops, cap, sizeof *a)) == NULL)
			goto oom;
		kv->pass_ops = a;
		kv->pass_cap = cap;
	}
	if (rsm_batch_add(&kv->batch, op->req->client_id, op->req->seq,
	    &op->req->op) == -1)
		goto oom;
	kv->pass_ops[kv->pass_nops++] = op;
	op->state = KVR_BATCHED;
	event_active(kv->ev_flush, EV_TIMEOUT, 0);
	return;
oom:
	kvr_op_fail(op, GRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* Membership changes, on the leader. */

static void
kvr_change_done(void *arg, int status, const char *msg);

static void
kvr_change(struct kvr *kv, struct kvr_op *op)
{
	const char	*msg = NULL;
	int		 rv;

	op->state = KVR_BATCHED;
	if (op->type == KVR_ADD)
		rv = raft_glue_add(kv->glue, op->member, op->address,
		    kvr_change_done, op, &msg);
	else
		rv = raft_glue_remove(kv->glue, op->member, kvr_change_done,
		    op, &msg);
	if (rv == -1) {
		/* Nothing changed: a refusal with its reason. */
		kvr_op_fail(op, GRPC_FAILED_PRECONDITION, msg);
		return;
	}
	log_notice("kvdb-replicated: %s member %" PRIu64 "%s%s",
	    op->type == KVR_ADD ? "adding" : "removing", op->member,
	    op->type == KVR_ADD ? " at " : "",
	    op->type == KVR_ADD ? op->address : "");
}

/* Dispatch. */

static void
kvr_dispatch(struct kvr *kv, struct kvr_op *op)
{
	struct raft_glue_status	 st;
	char			*ra, *ca;

	if (kv->stopping) {
		kvr_op_fail(op, op->state == KVR_NEW ? GRPC_UNAVAILABLE :
		    GRPC_UNKNOWN, "the server is stopping");
		return;
	}
	raft_glue_status(kv->glue, &st);
	if (st.leader) {
		if (op->type != KVR_KV)
			kvr_change(kv, op);
		else if (op->write)
			kvr_batch_write(kv, op);
		else {
			op->state = KVR_BATCHED;
			TAILQ_INSERT_TAIL(&kv->pass_reads, op, link);
			event_active(kv->ev_flush, EV_TIMEOUT, 0);
		}
		return;
	}
	/* One hop only: the node that passed this on will find the
	 * leader again. */
	if (op->forwarded) {
		kvr_op_fail(op, GRPC_UNAVAILABLE, "not the leader");
		return;
	}
	if (st.leader_id == 0 || st.leader_address == NULL ||
	    raft_glue_split(st.leader_address, &ra, &ca) == -1) {
		kvr_wait(kv, op, 1);
		return;
	}
	if (ca == NULL) {
		kvr_op_fail(op, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	kvr_forward(kv, op, st.leader_id, ca);
	free(ra);
	free(ca);
}

/* The front: a KV request. */
static void
kvr_request(void *arg, struct kvfront_req *req)
{
	struct kvr	*kv = arg;
	struct kvr_op	*op;

	if (kv->serializable && req->op.type == STORE_OP_GET) {
		struct store_result	res;

		if (store_apply(rsm_store(kv->rsm), &req->op, &res) == -1) {
			kvfront_fail(req, GRPC_RESOURCE_EXHAUSTED,
			    "out of memory");
			return;
		}
		kvfront_reply(req, &res);
		store_result_release(&res);
		return;
	}
	if ((op = kvr_op_new(kv, KVR_KV, req->call)) == NULL) {
		kvfront_fail(req, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	op->req = req;
	op->write = store_op_mutates(req->op.type);
	op->forwarded = req->forwarded;
	kvr_dispatch(kv, op);
}

/* Health: SERVING while this node knows a leader and has applied what
 * the leader has committed (its own commit index for the leader, the
 * leader's as last asked for a follower). */
static void
kvr_health(struct kvr *kv)
{
	struct raft_glue_status	 st;
	int			 serving;

	raft_glue_status(kv->glue, &st);
	if (st.leader)
		serving = st.applied_index >= st.commit_index;
	else
		serving = st.leader_id != 0 && kv->leader_commit_known &&
		    st.applied_index >= kv->leader_commit;
	if (serving != kv->serving && !kv->stopping) {
		kv->serving = serving;
		grpc_server_set_serving(kvfront_server(kv->front), serving);
		log_info("kvdb-replicated: %s (leader %" PRIu64 ", term %"
		    PRIu64 ")", serving ? "serving" : "not serving",
		    st.leader_id, st.term);
	}
}

static void
kvr_probe_done(void *arg, int status, const char *msg, const uint8_t *reply,
    size_t len)
{
	struct kvr			*kv = arg;
	Dsd__Kvdb__V1__StatusReply	*r;

	kv->probing = 0;
	if (status != GRPC_OK || kv->stopping ||
	    (r = dsd__kvdb__v1__status_reply__unpack(NULL, len, reply)) ==
	    NULL)
		return;
	/* Only the leader's word on its own commit counts. */
	if (strcmp(r->state, "leader") == 0 && r->id == kv->seen_leader) {
		kv->leader_commit = r->commit_index;
		kv->leader_commit_known = 1;
	}
	dsd__kvdb__v1__status_reply__free_unpacked(r, NULL);
	kvr_health(kv);
}

/* Ask the leader how far it has committed, every few heartbeats. */
static void
kvr_on_probe(evutil_socket_t fd, short what, void *arg)
{
	struct kvr		*kv = arg;
	struct raft_glue_status	 st;
	struct kvr_peer		*p;
	char			*ra, *ca;

	raft_glue_status(kv->glue, &st);
	if (kv->probing || st.leader || st.leader_id == 0 ||
	    st.leader_address == NULL ||
	    raft_glue_split(st.leader_address, &ra, &ca) == -1 || ca == NULL)
		return;
	if ((p = kvr_peer(kv, st.leader_id, ca)) != NULL &&
	    grpcc_call(p->conn, "/dsd.kvdb.v1.Admin/Status", "", 0,
	    kv->forward_ms, kvr_probe_done, kv) == 0)
		kv->probing = 1;
	free(ra);
	free(ca);
}

/* Raft moved: leadership, commit, applied. */
static void
kvr_changed(void *arg)
{
	struct kvr		*kv = arg;
	struct raft_glue_status	 st;

	raft_glue_status(kv->glue, &st);
	if (st.leader_id != kv->seen_leader) {
		/* What the last leader had committed says nothing now. */
		kv->leader_commit_known = 0;
	}
	kvr_health(kv);
	if (st.leader_id != kv->seen_leader) {
		if (st.leader)
			log_notice("kvdb-replicated: this node leads, term %"
			    PRIu64, st.term);
		kv->seen_leader = st.leader_id;
		if (st.leader_id != 0 && !TAILQ_EMPTY(&kv->waiting))
			kvr_redispatch(kv, 1);
		if (st.leader_id != 0 && !st.leader)
			kvr_on_probe(-1, 0, kv);
	}
}

/* The Replica service: Forward, on the leader. */

static void
kvr_fwdin_free(struct kvr_fwdin *fb)
{
	uint32_t	i;

	for (i = 0; i < fb->n; i++) {
		free(fb->slots[i].msg);
		free(fb->slots[i].reply);
	}
	free(fb->slots);
	free(fb);
}

/* Every request of the call is answered: answer the call. */
static void
kvr_fwdin_reply(struct kvr_fwdin *fb)
{
	Dsd__Kvdb__V1__ForwardReply	  r = DSD__KVDB__V1__FORWARD_REPLY__INIT;
	Dsd__Kvdb__V1__ForwardedResult	 *res, **rp;
	uint8_t				 *buf = NULL;
	size_t				  len;
	uint32_t			  i;

	res = calloc(fb->n + 1, sizeof *res);
	rp = calloc(fb->n + 1, sizeof *rp);
	if (res == NULL || rp == NULL)
		goto oom;
	for (i = 0; i < fb->n; i++) {
		dsd__kvdb__v1__forwarded_result__init(&res[i]);
		res[i].status = fb->slots[i].status;
		if (fb->slots[i].msg != NULL)
			res[i].message = fb->slots[i].msg;
		res[i].reply.data = fb->slots[i].reply;
		res[i].reply.len = fb->slots[i].len;
		rp[i] = &res[i];
	}
	r.n_results = fb->n;
	r.results = rp;
	len = dsd__kvdb__v1__forward_reply__get_packed_size(&r);
	if ((buf = malloc(len + 1)) == NULL)
		goto oom;
	dsd__kvdb__v1__forward_reply__pack(&r, buf);
	grpc_call_reply(fb->call, buf, len);
	goto out;
oom:
	/* The requests were carried out: the outcome is not a failure. */
	grpc_call_error(fb->call, GRPC_UNKNOWN, "out of memory answering");
out:
	free(buf);
	free(res);
	free(rp);
	kvr_fwdin_free(fb);
}

static void
kvr_slot_done(void *arg, enum grpc_status status, const char *msg,
    const uint8_t *reply, size_t len)
{
	struct kvr_slot		*sl = arg;
	struct kvr_fwdin	*fb = sl->fb;

	sl->status = status;
	if (msg != NULL)
		sl->msg = strdup(msg);	/* without it, no message: fine */
	if (status == GRPC_OK && (sl->reply = malloc(len + 1)) == NULL) {
		sl->status = GRPC_UNKNOWN;
		sl->msg = strdup("out of memory answering");
	} else if (status == GRPC_OK) {
		memcpy(sl->reply, reply, len);
		sl->len = len;
	}
	if (--fb->left == 0)
		kvr_fwdin_reply(fb);
}

static void
kvr_replica_forward(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	struct kvr			*kv = arg;
	Dsd__Kvdb__V1__ForwardRequest	*m;
	Dsd__Kvdb__V1__ForwardedCall	*c;
	struct kvr_fwdin		*fb;
	struct kvfront_req		*r;
	uint32_t			 i;

	if ((m = dsd__kvdb__v1__forward_request__unpack(NULL, len,
	    req)) == NULL) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "malformed ForwardRequest");
		return;
	}
	if ((fb = calloc(1, sizeof *fb)) == NULL ||
	    (fb->slots = calloc(m->n_calls + 1, sizeof *fb->slots)) == NULL) {
		free(fb);
		dsd__kvdb__v1__forward_request__free_unpacked(m, NULL);
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	fb->call = call;
	fb->n = (uint32_t)m->n_calls;
	/* One more than the slots, so that requests answered at once do
	 * not answer the call before the last one is even started. */
	fb->left = fb->n + 1;
	for (i = 0; i < fb->n; i++) {
		c = m->calls[i];
		fb->slots[i].fb = fb;
		r = kvfront_req_new(kv->front, c->op, c->request.data,
		    c->request.len, c->client_id, c->seq, kvr_slot_done,
		    &fb->slots[i]);
		if (r != NULL)
			kvr_request(kv, r);
	}
	dsd__kvdb__v1__forward_request__free_unpacked(m, NULL);
	if (--fb->left == 0)
		kvr_fwdin_reply(fb);
}

/* The admin service. */

/* Reply with the membership, as MemberList does. */
static void
kvr_reply_members(struct kvr *kv, struct grpc_call *call)
{
	Dsd__Kvdb__V1__MemberListReply	  r = DSD__KVDB__V1__MEMBER_LIST_REPLY__INIT;
	Dsd__Kvdb__V1__Member		 *ms = NULL, **mp = NULL;
	struct raft_glue_member		 *m;
	struct raft_glue_status		  st;
	uint8_t				 *buf = NULL;
	size_t				  n = 0, i, len;

	if ((m = raft_glue_members(kv->glue, &n)) == NULL ||
	    (ms = calloc(n + 1, sizeof *ms)) == NULL ||
	    (mp = calloc(n + 1, sizeof *mp)) == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		dsd__kvdb__v1__member__init(&ms[i]);
		ms[i].id = m[i].id;
		/* The two parts in place: cut at the slash, which every
		 * member's address has (raft_glue_split() checked it). */
		ms[i].raft_address = m[i].address;
		ms[i].client_address = strchr(m[i].address, '/');
		if (ms[i].client_address != NULL)
			*ms[i].client_address++ = '\0';
		else
			ms[i].client_address = m[i].address + strlen(
			    m[i].address);
		ms[i].role = m[i].role == RAFT_GLUE_VOTER ?
		    DSD__KVDB__V1__MEMBER__ROLE__VOTER :
		    m[i].role == RAFT_GLUE_STANDBY ?
		    DSD__KVDB__V1__MEMBER__ROLE__STANDBY :
		    DSD__KVDB__V1__MEMBER__ROLE__SPARE;
		mp[i] = &ms[i];
	}
	raft_glue_status(kv->glue, &st);
	r.n_members = n;
	r.members = mp;
	r.leader_id = st.leader_id;
	len = dsd__kvdb__v1__member_list_reply__get_packed_size(&r);
	if ((buf = malloc(len + 1)) == NULL)
		goto oom;
	dsd__kvdb__v1__member_list_reply__pack(&r, buf);
	grpc_call_reply(call, buf, len);
	goto out;
oom:
	grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
out:
	free(buf);
	free(mp);
	free(ms);
	if (m != NULL)
		raft_glue_members_free(m, n);
}

static void
kvr_change_done(void *arg, int status, const char *msg)
{
	struct kvr_op	*op = arg;
	struct kvr	*kv = op->kv;
	char		 why[256];

	if (status == RAFT_GLUE_OK) {
		log_notice("kvdb-replicated: member %" PRIu64 " %s",
		    op->member, op->type == KVR_ADD ? "added as a voter" :
		    "removed");
		kvr_reply_members(kv, op->call);
		kvr_op_free(op);
		return;
	}
	snprintf(why, sizeof why, "membership change of %" PRIu64 " failed: "
	    "%s%s", op->member, msg != NULL ? msg : "?",
	    status == RAFT_GLUE_UNKNOWN ? "; it may be partly done: see "
	    "member list" : "");
	log_warnx("kvdb-replicated: %s", why);
	kvr_op_fail(op, status == RAFT_GLUE_NOTLEADER ? GRPC_UNAVAILABLE :
	    status == RAFT_GLUE_FAILED ? GRPC_FAILED_PRECONDITION :
	    GRPC_UNKNOWN, why);
}

static void
kvr_member_list(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	Dsd__Kvdb__V1__MemberListRequest	*m;

	if ((m = dsd__kvdb__v1__member_list_request__unpack(NULL, len,
	    req)) == NULL) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "malformed MemberListRequest");
		return;
	}
	dsd__kvdb__v1__member_list_request__free_unpacked(m, NULL);
	kvr_reply_members(arg, call);
}

/* MemberAdd and MemberRemove: a change, carried out by the leader. */
static void
kvr_member_change(struct kvr *kv, struct grpc_call *call, int type,
    const uint8_t *req, size_t len)
{
	Dsd__Kvdb__V1__MemberAddRequest		*a = NULL;
	Dsd__Kvdb__V1__MemberRemoveRequest	*r = NULL;
	struct kvr_op				*op;
	char					*ra, *ca;

	if (type == KVR_ADD)
		a = dsd__kvdb__v1__member_add_request__unpack(NULL, len, req);
	else
		r = dsd__kvdb__v1__member_remove_request__unpack(NULL, len,
		    req);
	if (a == NULL && r == NULL) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT, "malformed "
		    "request");
		return;
	}
	if ((op = kvr_op_new(kv, type, call)) == NULL ||
	    (op->body = malloc(len + 1)) == NULL)
		goto oom;
	memcpy(op->body, req, len);
	op->len = len;
	op->write = 1;
	op->forwarded = grpc_call_metadata(call, 2) != NULL;
	op->member = a != NULL ? a->id : r->id;
	if (op->member == 0) {
		kvr_op_fail(op, GRPC_INVALID_ARGUMENT, "member id 0");
		goto out;
	}
	if (a != NULL) {
		if (asprintf(&op->address, "%s/%s", a->raft_address,
		    a->client_address) == -1) {
			op->address = NULL;
			goto oom;
		}
		if (raft_glue_split(op->address, &ra, &ca) == -1) {
			kvr_op_fail(op, GRPC_INVALID_ARGUMENT, "addresses must "
			    "be IPV4:PORT (Raft: this libraft takes no names) "
			    "and HOST:PORT (client)");
			goto out;
		}
		free(ra);
		free(ca);
	}
	kvr_dispatch(kv, op);
	goto out;
oom:
	if (op != NULL)
		kvr_op_fail(op, GRPC_RESOURCE_EXHAUSTED, "out of memory");
	else
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
out:
	if (a != NULL)
		dsd__kvdb__v1__member_add_request__free_unpacked(a, NULL);
	if (r != NULL)
		dsd__kvdb__v1__member_remove_request__free_unpacked(r, NULL);
}

static void
kvr_member_add(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	kvr_member_change(arg, call, KVR_ADD, req, len);
}

static void
kvr_member_remove(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	kvr_member_change(arg, call, KVR_REMOVE, req, len);
}

static void
kvr_status(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	struct kvr			*kv = arg;
	Dsd__Kvdb__V1__StatusRequest	*m;
	Dsd__Kvdb__V1__StatusReply	 r = DSD__KVDB__V1__STATUS_REPLY__INIT;
	struct raft_glue_status		 st;
	uint8_t				*buf;
	size_t				 n;

	if ((m = dsd__kvdb__v1__status_request__unpack(NULL, len,
	    req)) == NULL) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "malformed StatusRequest");
		return;
	}
	raft_glue_status(kv->glue, &st);
	r.id = kv->id;
	r.state = (char *)st.state;
	r.leader_id = st.leader_id;
	r.term = st.term;
	r.commit_index = st.commit_index;
	r.applied_index = st.applied_index;
	r.last_index = st.last_index;
	r.keys = store_count(rsm_store(kv->rsm));
	r.sessions = rsm_sessions(kv->rsm);
	if (m->digest) {
		r.has_digest = 1;
		r.digest = rsm_digest(kv->rsm);
	}
	r.raft_address = kv->raft_addr;
	r.client_address = kv->client_addr;
	dsd__kvdb__v1__status_request__free_unpacked(m, NULL);
	n = dsd__kvdb__v1__status_reply__get_packed_size(&r);
	if ((buf = malloc(n + 1)) == NULL) {
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	dsd__kvdb__v1__status_reply__pack(&r, buf);
	grpc_call_reply(call, buf, n);
	free(buf);
}

/* Backups: what this node has applied.  Applied entries are committed,
 * durable on a majority, so the source has no durability to wait for. */
static const struct store *
kvr_backup_state(void *arg, uint64_t *seq)
{
	struct kvr		*kv = arg;
	struct raft_glue_status	 st;

	raft_glue_status(kv->glue, &st);
	*seq = st.applied_index;
	return rsm_store(kv->rsm);
}

/* Start-up. */

/*
 * Parse --cluster: "ID=RAFTADDR/CLIENTADDR,...".  Returns the members
 * (free with raft_glue_members_free()) and sets *mine to this node's
 * entry; or NULL with err naming what is wrong.
 */
static struct raft_glue_member *
kvr_parse_cluster(const char *s, uint64_t self, size_t *np,
    const struct raft_glue_member **mine, char *err, size_t errlen)
{
	struct raft_glue_member	*m = NULL;
	char			*copy, *item, *save = NULL, *eq, *end;
	char			*ra = NULL, *ca = NULL, *rb, *cb;
	size_t			 n = 0, i;
	unsigned long long	 id;

	copy = xstrdup(s);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(item, '=')) == NULL) {
			snprintf(err, errlen, "--cluster: '%s' is not "
			    "ID=RAFTADDR/CLIENTADDR", item);
			goto fail;
		}
		*eq = '\0';
		errno = 0;
		id = strtoull(item, &end, 10);
		if (*item == '\0' || *end != '\0' || errno != 0 || id == 0 ||
		    id > LLONG_MAX) {
			snprintf(err, errlen, "--cluster: '%s' is not a "
			    "positive node id", item);
			goto fail;
		}
		if (raft_glue_split(eq + 1, &ra, &ca) == -1 || ra == NULL) {
			snprintf(err, errlen, "--cluster: member %llu: '%s' is "
			    "not RAFTADDR/CLIENTADDR, with RAFTADDR an IPv4 "
			    "address and port (this libraft takes no names)",
			    id, eq + 1);
			goto fail;
		}
		for (i = 0; i < n; i++) {
			if (m[i].id == id) {
				snprintf(err, errlen, "--cluster: node id %llu "
				    "is listed twice", id);
				goto fail;
			}
			/* Parsed once already: it splits. */
			if (raft_glue_split(m[i].address, &rb, &cb) == -1)
				fatalx("out of memory");
			if (strcmp(ra, rb) == 0 || strcmp(ca, cb) == 0) {
				snprintf(err, errlen, "--cluster: members %llu "
				    "and %" PRIu64 " share an address", id,
				    m[i].id);
				free(rb);
				free(cb);
				goto fail;
			}
			free(rb);
			free(cb);
		}
		free(ra);
		free(ca);
		ra = ca = NULL;
		m = xreallocarray(m, n + 1, sizeof *m);
		m[n].id = id;
		m[n].address = xstrdup(eq + 1);
		m[n].role = RAFT_GLUE_VOTER;
		n++;
	}
	free(copy);
	copy = NULL;
	if (n == 0) {
		snprintf(err, errlen, "--cluster lists no member");
		goto fail;
	}
	*mine = NULL;
	for (i = 0; i < n; i++) {
		if (m[i].id == self)
			*mine = &m[i];
	}
	if (*mine == NULL) {
		snprintf(err, errlen, "--cluster does not list this node "
		    "(--node-id=%" PRIu64 ")", self);
		goto fail;
	}
	*np = n;
	return m;

fail:
	free(ra);
	free(ca);
	free(copy);
	raft_glue_members_free(m, n);
	return NULL;
}

/* Metrics: the state machine's store and where Raft stands. */
static void
kvr_metrics(struct metrics_out *out, void *arg)
{
	struct kvr		*kv = arg;
	struct raft_glue_status	 st;

	kvfront_metrics_store(out, rsm_store(kv->rsm));
	raft_glue_status(kv->glue, &st);
	metrics_one(out, "dsd_raft_term", "gauge", "Current Raft term.",
	    st.term);
	metrics_one(out, "dsd_raft_commit_index", "gauge",
	    "Index of the last Raft entry known committed.", st.commit_index);
	metrics_one(out, "dsd_raft_applied_index", "gauge",
	    "Index of the last Raft entry applied to the store.",
	    st.applied_index);
	metrics_one(out, "dsd_raft_last_index", "gauge",
	    "Index of the last entry in this node's Raft log.", st.last_index);
	metrics_one(out, "dsd_raft_is_leader", "gauge",
	    "1 if this node is the Raft leader, else 0.", st.leader ? 1 : 0);
}

static int
kvr_init(struct dsd *d, void **statep)
{
	static struct grpc_method	 admin[6];
	struct backup_source		 bs;
	struct kvr			*kv;
	struct raft_glue_config		 rc;
	struct raft_glue_member		*members = NULL;
	const struct raft_glue_member	*mine;
	const char			*read, *listen;
	char				*dir, err[512];
	struct timeval			 probe;
	size_t				 nmembers = 0;

	kv = xcalloc(1, sizeof *kv);
	kv->d = d;
	TAILQ_INIT(&kv->waiting);
	TAILQ_INIT(&kv->pass_reads);
	LIST_INIT(&kv->peers);
	if (!flags_given(d, "node-id"))
		fatalx("--node-id is required");
	kv->id = (uint64_t)flags_int(d, "node-id");
	read = flags_str(d, "read");
	if (strcmp(read, "serializable") == 0)
		kv->serializable = 1;
	else if (strcmp(read, "linearizable") != 0)
		fatalx("--read must be linearizable or serializable, not %s",
		    read);
	kv->leader_wait_ms = (int)flags_int(d, "leader-wait");
	kv->forward_ms = (int)flags_int(d, "forward-timeout");
	kv->user_timeout_ms = (int)flags_int(d, "election-timeout") * 2 > 2000 ?
	    (int)flags_int(d, "election-timeout") * 2 : 2000;
	kv->max_message = (int)flags_int(d, "max-message");
	if (flags_int(d, "heartbeat-timeout") >= flags_int(d,
	    "election-timeout"))
		fatalx("--heartbeat-timeout must be shorter than "
		    "--election-timeout");
	if (flags_given(d, "join") == flags_given(d, "cluster"))
		fatalx("give --cluster (the initial members) or --join (this "
		    "node's addresses, to be added later), one of them");
	if (flags_given(d, "cluster")) {
		members = kvr_parse_cluster(flags_str(d, "cluster"), kv->id,
		    &nmembers, &mine, err, sizeof err);
		if (members == NULL)
			fatalx("%s", err);
		kv->address = xstrdup(mine->address);
	} else
		kv->address = xstrdup(flags_str(d, "join"));
	if (raft_glue_split(kv->address, &kv->raft_addr,
	    &kv->client_addr) == -1 || kv->raft_addr == NULL)
		fatalx("%s: not RAFTADDR/CLIENTADDR", kv->address);
	/* Tells this run's batches from an earlier run's in the log. */
	if (getrandom(&kv->incarnation, sizeof kv->incarnation, 0) !=
	    sizeof kv->incarnation)
		fatal("getrandom");
	kv->next_batch = 1;

	kv->front = kvfront_new(d, kvr_request, kv);
	if ((kv->rsm = rsm_new()) == NULL || (kv->entries = u64map_new()) ==
	    NULL)
		fatalx("out of memory");
	kv->ev_flush = event_new(d->base, -1, 0, kvr_on_flush, kv);
	kv->ev_retry = evtimer_new(d->base, kvr_on_retry, kv);
	kv->ev_probe = event_new(d->base, -1, EV_PERSIST, kvr_on_probe, kv);
	if (kv->ev_flush == NULL || kv->ev_retry == NULL ||
	    kv->ev_probe == NULL)
		fatalx("out of memory");
	probe.tv_sec = 0;
	probe.tv_usec = 5 * flags_int(d, "heartbeat-timeout") * 1000;
	while (probe.tv_usec >= 1000000) {
		probe.tv_sec++;
		probe.tv_usec -= 1000000;
	}
	event_add(kv->ev_probe, &probe);

	xasprintf(&dir, "%s/raft", kvfront_datadir(kv->front));
	memset(&rc, 0, sizeof rc);
	rc.base = d->base;
	rc.dir = dir;
	rc.id = kv->id;
	rc.address = kv->address;
	rc.bind = flags_given(d, "raft-listen") ? flags_str(d, "raft-listen") :
	    NULL;
	rc.members = members;
	rc.nmembers = nmembers;
	rc.election_ms = (unsigned)flags_int(d, "election-timeout");
	rc.heartbeat_ms = (unsigned)flags_int(d, "heartbeat-timeout");
	rc.snapshot_threshold = (unsigned)flags_int(d, "snapshot-threshold");
	rc.snapshot_trailing = (unsigned)flags_int(d, "snapshot-trailing");
	rc.rsm = kv->rsm;
	rc.outcome = kvr_outcome;
	rc.changed = kvr_changed;
	rc.arg = kv;
	if ((kv->glue = raft_glue_new(&rc, err, sizeof err)) == NULL)
		fatalx("raft: %s", err);
	raft_glue_members_free(members, nmembers);
	free(dir);

	listen = flags_given(d, "listen") ? flags_str(d, "listen") :
	    kv->client_addr;
	kvfront_metrics(kv->front, kvr_metrics, kv);
	kvfront_listen(kv->front, listen);
	/* Requests passed on to the leader go over TLS when the client
	 * ports speak it, this member's certificate as the client's.
	 * Made now so that a bad file stops start-up. */
	if (flags_str(d, "tls-ca") != NULL && !kvfront_tls(kv->front))
		fatalx("--tls-ca needs --tls-cert and --tls-key");
	if (kvfront_tls(kv->front))
		(void)kvfront_client_tls(kv->front, flags_str(d, "tls-ca"));
	admin[0] = (struct grpc_method){ "/dsd.kvdb.v1.Admin/MemberList",
	    kvr_member_list, kv };
	admin[1] = (struct grpc_method){ KVR_PATH_ADD, kvr_member_add, kv };
	admin[2] = (struct grpc_method){ KVR_PATH_REMOVE, kvr_member_remove,
	    kv };
	admin[3] = (struct grpc_method){ "/dsd.kvdb.v1.Admin/Status",
	    kvr_status, kv };
	admin[4] = (struct grpc_method){ KVR_PATH_FORWARD,
	    kvr_replica_forward, kv };
	admin[5] = (struct grpc_method){ NULL, NULL, NULL };
	if (kvfront_register(kv->front, admin) == -1)
		fatalx("cannot register the admin service");
	bs.state = kvr_backup_state;
	bs.durable = NULL;
	bs.arg = kv;
	kv->backup = backup_new(d->base, kvfront_server(kv->front), &bs,
	    (size_t)kv->max_message);
	/* Not serving until a leader is known and caught up with. */
	grpc_server_set_serving(kvfront_server(kv->front), 0);

	log_notice("kvdb-replicated: node %" PRIu64 ", raft on %s, clients "
	    "on %s, data in %s, libraft %s%s", kv->id, flags_given(d,
	    "raft-listen") ? flags_str(d, "raft-listen") : kv->raft_addr, listen,
	    kvfront_datadir(kv->front), raft_glue_version(),
	    flags_given(d, "join") ? "; waiting to be added" : "");
	if (kv->serializable)
		log_warnx("kvdb-replicated: --read=serializable: Get answers "
		    "from this node's state, which may be stale");
	sdnotify("READY=1");
	*statep = kv;
	return 0;
}

static void
kvr_drained(void *arg)
{
	struct kvr	*kv = arg;

	event_base_loopbreak(kv->d->base);
}

/* SIGTERM: stop taking calls, let those in flight finish, close Raft. */
static void
kvr_stop(void *state)
{
	struct kvr	*kv = state;
	struct kvr_op	*op;

	sdnotify("STOPPING=1");
	log_notice("kvdb-replicated: stopping");
	kvfront_shutdown(kv->front, kvfront_grace_ms(kv->front), kvr_drained,
	    kv);
	event_base_dispatch(kv->d->base);
	kv->stopping = 1;
	event_del(kv->ev_probe);
	while ((op = TAILQ_FIRST(&kv->waiting)) != NULL) {
		TAILQ_REMOVE(&kv->waiting, op, link);
		kvr_op_fail(op, GRPC_UNAVAILABLE, "the server is stopping");
	}
	/* In flight through Raft: their callbacks answer UNKNOWN. */
	raft_glue_free(kv->glue);
	kv->glue = NULL;
	/* A pass that never ended: nothing of it was appended. */
	kvr_requeue(kv, kv->pass_ops, kv->pass_nops, &kv->pass_reads);
	kv->pass_nops = 0;
}

static void
kvr_free(void *state)
{
	struct kvr	*kv = state;

	kvr_peers_free(kv);
	kvfront_free(kv->front);
	backup_free(kv->backup);
	if (kv->glue != NULL)
		raft_glue_free(kv->glue);
	u64map_free(kv->entries);
	rsm_free(kv->rsm);
	free(kv->batch.buf);
	free(kv->pass_ops);
	event_free(kv->ev_flush);
	event_free(kv->ev_retry);
	event_free(kv->ev_probe);
	free(kv->address);
	free(kv->raft_addr);
	free(kv->client_addr);
	free(kv);
}

const struct mode mode_kvdb_replicated = {
	.name = "kvdb-replicated",
	.summary = "the kvdb API on a Raft cluster: any node answers, "
	    "linearizable",
	.flags = kvr_flags,
	.groups = kvfront_flag_groups,
	.init = kvr_init,
	.stop = kvr_stop,
	.free = kvr_free,
};
