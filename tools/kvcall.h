/*
 * Calls that survive a failing node, for dsd-cli and its check batteries:
 * exactly-once sessions, several server addresses, and retries of the
 * calls whose outcome the transport left open (dsd-cli(1), RETRIES).
 *
 * Sessions.  A lane is one client id (random, nonzero) and its sequence
 * numbers.  Every call on a lane carries the gRPC metadata dsd-client-id
 * and dsd-seq (decimal u64), the seq one above the lane's previous call;
 * a retry sends the same pair.  A kvdb-replicated server remembers the
 * last seq and its reply per client id and answers a repeated seq with
 * the first reply, which is what makes a retried write exactly-once.
 * Because the server keeps one (seq, reply) per id, a lane must carry one
 * call at a time: calls that may be in flight together need lanes of
 * their own.  Single-node kvdb ignores the metadata.
 *
 * Addresses.  A pool holds the list of addresses and one or more slots,
 * each a connection to one of them, opened at the first call (all slots
 * start at the first address).  When a call of a slot fails with UNKNOWN,
 * UNAVAILABLE or DEADLINE_EXCEEDED, or the slot's connection fails, the
 * slot moves to the next address, round robin, and the failed call is
 * retried there; calls still in flight on the old connection finish on it
 * before it is closed.  With one address, a connection that is still up
 * is kept.
 *
 * Retries.  Only the gRPC statuses that say nothing about the request
 * itself are retried: UNKNOWN (2: cut after it was sent), DEADLINE_EXCEEDED
 * (4) and UNAVAILABLE (14: not sent, or the server could not take it),
 * or UNAVAILABLE alone for a call that must not be repeated blindly
 * (KVC_RETRY_UNSENT).  Any answer the server gives, a kvdb status or
 * another gRPC status, is final.  The delay between attempts doubles from
 * KVC_BACKOFF_MIN_MS to KVC_BACKOFF_MAX_MS, with jitter; no attempt starts
 * more than retry_ms after the first.
 *
 * Lifetimes: done is called exactly once per started call, always from
 * the event loop, never from inside kvc_call(); the reply is lent for the
 * duration of done.  done may start calls; it must not free the pool.
 */
#ifndef DSD_KVCALL_H
#define DSD_KVCALL_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct kvc_pool;

#define KVC_BACKOFF_MIN_MS	20
#define KVC_BACKOFF_MAX_MS	500
#define KVC_DEFAULT_RETRY_MS	10000

/* One client id and its last seq; see above. */
struct kvc_lane {
	uint64_t	id;
	uint64_t	seq;		/* of the last call started; 0: none */
	int		busy;		/* a call is out on it */
};

/* Give n lanes fresh random ids; 0, or -1 with errno (getrandom). */
int		 kvc_lanes_init(struct kvc_lane *, size_t n);

/*
 * Split "ADDR[,ADDR...]" into a NULL-terminated malloc'ed array of
 * malloc'ed strings, each checked as HOST:PORT or [V6]:PORT; NULL with
 * *err set (static) if one does not parse or memory ran out.
 */
char		**kvc_addrs_parse(const char *, size_t *n, const char **err);
void		 kvc_addrs_free(char **);

struct kvc_config {
	char *const	*addrs;		/* copied */
	size_t		 naddrs;
	int		 nslots;	/* connections used side by side */
	int		 timeout_ms;	/* to connect, and per attempt */
	int		 retry_ms;	/* retrying time; 0: no retries */
	/* A slot's connection was lost or the slot moved on, said in a
	 * sentence for a person; NULL to stay silent. */
	void		(*note)(void *arg, const char *msg);
	void		*arg;
	struct ssl_ctx_st *tls;		/* NULL: clear text; lent */
	const char	*server_name;	/* NULL: the host of each address */
};

/* Which failures are retried. */
enum kvc_policy {
	KVC_RETRY_TRANSPORT,	/* UNKNOWN, DEADLINE_EXCEEDED, UNAVAILABLE */
	KVC_RETRY_UNSENT	/* UNAVAILABLE only: certainly not applied */
};

/* A call's outcome, lent to done. */
struct kvc_result {
	int		 status;	/* gRPC status; 0 with reply */
	const char	*message;	/* may be NULL */
	const uint8_t	*reply;		/* without the 5-byte prefix */
	size_t		 len;
	int		 attempts;
	int64_t		 elapsed_ms;	/* from the first attempt */
	const char	*addr;		/* where the last attempt went */
	int		 conn_failed;	/* its connection failed under it */
	int		 never_up;	/* ...and had never been up */
	uint64_t	 client_id;	/* 0 without a lane */
	uint64_t	 seq;
};

typedef void	(*kvc_done_fn)(void *arg, const struct kvc_result *);

/* Counters of a pool's life, for a summary. */
struct kvc_stats {
	uint64_t	calls;
	uint64_t	retried_calls;	/* calls with more than one attempt */
	uint64_t	retries[17];	/* by the gRPC status retried */
	uint64_t	moves;		/* a slot changed connection */
	uint64_t	given_up;	/* retryable, out of time */
};

/* NULL with *err (static) if memory ran out. */
struct kvc_pool	*kvc_pool_new(struct event_base *, const struct kvc_config *,
		    const char **err);
/* Close every connection; calls still out are dropped unanswered. */
void		 kvc_pool_free(struct kvc_pool *);

/*
 * Start a call of path on slot (0 to nslots-1, modulo) with the request
 * bytes (copied).  With a lane, it takes the lane's next seq and sends
 * the session metadata; the lane must not be busy.  Returns 0, or -1 if
 * memory ran out (done is then not called).
 */
int		 kvc_call(struct kvc_pool *, int slot, struct kvc_lane *,
		    const char *path, const void *req, size_t len,
		    enum kvc_policy, kvc_done_fn, void *arg);
/* Calls started and not yet done. */
size_t		 kvc_pending(const struct kvc_pool *);
const struct kvc_stats *kvc_pool_stats(const struct kvc_pool *);
/* Whether the status is one the transport gives, retried by policy. */
int		 kvc_retryable(enum kvc_policy, int status);

#endif
