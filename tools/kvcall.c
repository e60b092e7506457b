/* Sessions, addresses and retries for the tools' calls; see kvcall.h. */
#include "config.h"

#include <sys/queue.h>
#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/grpc_client.h"
#include "kv/kvfront.h"
#include "kvcall.h"

#define KVC_UNKNOWN	2
#define KVC_DEADLINE	4
#define KVC_UNAVAILABLE	14

struct kvc_slot;

/* One connection of a slot, current or retired (draining its calls). */
struct kvc_conn {
	struct kvc_pool		*pool;
	struct kvc_slot		*slot;
	struct grpcc_conn	*conn;
	size_t			 addr;		/* index in the pool's list */
	int			 up;		/* it has been connected */
	int			 down;		/* it failed */
	int			 retired;	/* the slot moved on */
	LIST_ENTRY(kvc_conn)	 entry;
};

struct kvc_slot {
	struct kvc_conn	*cur;		/* NULL: connect at the next call */
	size_t		 addr;		/* of cur, or of the next connection */
};

struct kvc_call {
	struct kvc_pool		*pool;
	struct kvc_slot		*slot;
	struct kvc_lane		*lane;
	uint64_t		 seq;
	enum kvc_policy		 policy;
	char			*path;
	uint8_t			*req;
	size_t			 len;
	kvc_done_fn		 done;
	void			*arg;
	struct event		*timer;
	int			 final;		/* the timer reports, not retries */
	int64_t			 start;
	int			 attempts;
	struct kvc_conn		*kc;		/* of the attempt in flight */
	size_t			 addr;		/* of the last attempt */
	/* The last failure, reported if no attempt succeeds. */
	int			 status;
	char			*message;
	int			 conn_failed, never_up;
	LIST_ENTRY(kvc_call)	 entry;
};

struct kvc_pool {
	struct event_base	*base;
	char			**addrs;
	size_t			 naddrs;
	struct kvc_config	 cfg;
	struct kvc_slot		*slots;
	LIST_HEAD(, kvc_conn)	 conns;
	LIST_HEAD(, kvc_call)	 calls;
	size_t			 ncalls;
	uint64_t		 rng;
	int			 closing;
	struct kvc_stats	 stats;
};

static void	kvc_attempt(struct kvc_call *);

static int64_t
kvc_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fill buf from getrandom(), which may return less than asked. */
static int
kvc_random(void *buf, size_t len)
{
	uint8_t	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		if ((n = getrandom(p, len, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
kvc_lanes_init(struct kvc_lane *lanes, size_t n)
{
	uint64_t	*ids;
	size_t		 i;

	if (n == 0)
		return 0;
	if ((ids = calloc(n, sizeof *ids)) == NULL)
		return -1;
	if (kvc_random(ids, n * sizeof *ids) == -1) {
		free(ids);
		return -1;
	}
	for (i = 0; i < n; i++) {
		/* 0 means "no session" to the server: draw again. */
		while (ids[i] == 0)
			if (kvc_random(&ids[i], sizeof ids[i]) == -1) {
				free(ids);
				return -1;
			}
		lanes[i].id = ids[i];
		lanes[i].seq = 0;
		lanes[i].busy = 0;
	}
	free(ids);
	return 0;
}

void
kvc_addrs_free(char **addrs)
{
	size_t	i;

	if (addrs == NULL)
		return;
	for (i = 0; addrs[i] != NULL; i++)
		free(addrs[i]);
	free(addrs);
}

char **
kvc_addrs_parse(const char *s, size_t *n, const char **err)
{
	char		**out = NULL, *host, *port;
	const char	 *p, *comma;
	size_t		  count = 1, i = 0;

	for (p = s; *p != '\0'; p++)
		if (*p == ',')
			count++;
	if ((out = calloc(count + 1, sizeof *out)) == NULL) {
		*err = "out of memory";
		return NULL;
	}
	for (p = s; i < count; i++, p = comma + 1) {
		if ((comma = strchr(p, ',')) == NULL)
			comma = p + strlen(p);
		if ((out[i] = strndup(p, (size_t)(comma - p))) == NULL) {
			*err = "out of memory";
			goto fail;
		}
		if (out[i][0] == '\0') {
			*err = "an empty address in the list";
			goto fail;
		}
		if (grpcc_split_addr(out[i], &host, &port) == -1) {
			*err = "an address is HOST:PORT or [IPV6]:PORT";
			goto fail;
		}
		free(host);
		free(port);
	}
	*n = count;
	return out;
fail:
	kvc_addrs_free(out);
	return NULL;
}

int
kvc_retryable(enum kvc_policy policy, int status)
{
	if (policy == KVC_RETRY_UNSENT)
		return status == KVC_UNAVAILABLE;
	return status == KVC_UNKNOWN || status == KVC_DEADLINE ||
	    status == KVC_UNAVAILABLE;
}

/* xorshift64*, for the jitter only. */
static uint64_t
kvc_rand(struct kvc_pool *pool)
{
	pool->rng ^= pool->rng >> 12;
	pool->rng ^= pool->rng << 25;
	pool->rng ^= pool->rng >> 27;
	return pool->rng * 0x2545f4914f6cdd1dULL;
}

static void
kvc_note(struct kvc_pool *pool, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
kvc_note(struct kvc_pool *pool, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	if (pool->cfg.note == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	pool->cfg.note(pool->cfg.arg, msg);
}

/* Close a connection no call refers to any more, and forget it. */
static void
kvc_conn_release(struct kvc_conn *kc)
{
	struct kvc_slot	*slot = kc->slot;

	if (slot->cur == kc)
		slot->cur = NULL;
	LIST_REMOVE(kc, entry);
	/* From inside its own callback the free is deferred (grpc_client.h). */
	grpcc_close(kc->conn);
	free(kc);
}

/*
 * A failed or retired connection goes once its last call is done: the
 * calls still on it may yet be answered, and closing it would cut them.
 */
static void
kvc_conn_maybe_release(struct kvc_conn *kc)
{
	if ((kc->retired || kc->down) && grpcc_pending(kc->conn) == 0)
		kvc_conn_release(kc);
}

/*
 * The slot's connection failed, or a call on it got a status that says
 * the node could not serve it: later calls and retries go to the next
 * address.  A call from a connection the slot already left changes
 * nothing, so a burst of failures moves the slot once.  With a single
 * address, a connection that is still up stays: a new one would reach
 * the same server.
 */
static void
kvc_slot_move(struct kvc_conn *kc, int status, const char *why)
{
	struct kvc_pool	*pool = kc->pool;
	struct kvc_slot	*slot = kc->slot;
	const char	*from = pool->addrs[kc->addr], *to;
	int		 failed = kc->down || !grpcc_is_up(kc->conn);

	if (slot->cur != kc)
		return;
	if (pool->naddrs == 1 && !failed)
		return;
	kc->retired = 1;
	slot->cur = NULL;
	slot->addr = (kc->addr + 1) % pool->naddrs;
	to = pool->addrs[slot->addr];
	pool->stats.moves++;
	why = why != NULL ? why : "unknown error";
	if (failed && kc->up)
		kvc_note(pool, "connection to %s was lost: %s; %s%s", from,
		    why, pool->naddrs == 1 ? "reconnecting" : "trying ",
		    pool->naddrs == 1 ? "" : to);
	else if (failed && pool->naddrs > 1)
		kvc_note(pool, "cannot connect to %s: %s; trying %s", from,
		    why, to);
	else if (!failed)
		kvc_note(pool, "%s answered %s%s%s; trying %s", from,
		    status == KVC_UNKNOWN ? "UNKNOWN" : status ==
		    KVC_DEADLINE ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
		    why[0] != '\0' ? ": " : "", why, to);
}

static void
kvc_on_state(struct grpcc_conn *conn, int up, const char *why, void *arg)
{
	struct kvc_conn	*kc = arg;

	if (up) {
		kc->up = 1;
		return;
	}
	/* Its calls have been completed already, so none is pending. */
	kc->down = 1;
	kvc_slot_move(kc, 0, why);
	kvc_conn_maybe_release(kc);
}

/* The slot's connection, opened if it has none; NULL with *err. */
static struct kvc_conn *
kvc_slot_conn(struct kvc_pool *pool, struct kvc_slot *slot,
    const char **err)
{
	struct grpcc_config	 cfg;
	struct kvc_conn		*kc;
	size_t			 tries;

	if (slot->cur != NULL)
		return slot->cur;
	/* An address that does not resolve is skipped for the next. */
	for (tries = 0; tries < pool->naddrs; tries++) {
		if ((kc = calloc(1, sizeof *kc)) == NULL) {
			*err = "out of memory";
			return NULL;
		}
		kc->pool = pool;
		kc->slot = slot;
		kc->addr = slot->addr;
		memset(&cfg, 0, sizeof cfg);
		cfg.addr = pool->addrs[slot->addr];
		cfg.connect_timeout_ms = pool->cfg.timeout_ms;
		cfg.tls = pool->cfg.tls;
		cfg.server_name = pool->cfg.server_name;
		cfg.on_state = kvc_on_state;
		cfg.arg = kc;
		if ((kc->conn = grpcc_connect(pool->base, &cfg, err)) != NULL) {
			LIST_INSERT_HEAD(&pool->conns, kc, entry);
			slot->cur = kc;
			return kc;
		}
		free(kc);
		slot->addr = (slot->addr + 1) % pool->naddrs;
	}
	return NULL;
}

static void
kvc_call_free(struct kvc_call *call)
{
	LIST_REMOVE(call, entry);
	call->pool->ncalls--;
	if (call->lane != NULL)
		call->lane->busy = 0;
	if (call->timer != NULL)
		event_free(call->timer);
	free(call->path);
	free(call->req);
	free(call->message);
	free(call);
}

/* Report the outcome and free the call. */
static void
kvc_finish(struct kvc_call *call, int status, const char *message,
    const uint8_t *reply, size_t len)
{
	struct kvc_pool		*pool = call->pool;
	struct kvc_result	 r;

	memset(&r, 0, sizeof r);
	r.status = status;
	r.message = message;
	r.reply = reply;
	r.len = len;
	r.attempts = call->attempts;
	r.elapsed_ms = kvc_now_ms() - call->start;
	r.addr = pool->addrs[call->addr];
	if (status != 0) {
		r.conn_failed = call->conn_failed;
		r.never_up = call->never_up;
	}
	if (call->lane != NULL) {
		r.client_id = call->lane->id;
		r.seq = call->seq;
		/* Free before done, which may start the lane's next call. */
		call->lane->busy = 0;
		call->lane = NULL;
	}
	call->done(call->arg, &r);
	kvc_call_free(call);
}

static void
kvc_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct kvc_call	*call = arg;

	if (call->final)
		kvc_finish(call, call->status, call->message, NULL, 0);
	else
		kvc_attempt(call);
}

/* Arm the call's timer; -1 if memory ran out. */
static int
kvc_arm(struct kvc_call *call, int ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(call->timer, &tv);
}

/* Keep a failed attempt's story, for the report if it is the last. */
static void
kvc_failed(struct kvc_call *call, int status, const char *message,
    size_t addr, int conn_failed, int never_up)
{
	call->status = status;
	free(call->message);
	call->message = message != NULL ? strdup(message) : NULL;
	call->addr = addr;
	call->conn_failed = conn_failed;
	call->never_up = never_up;
}

/*
 * After a failed attempt: retry after the backoff if that starts within
 * the retry time, else report the failure.  Always through the timer, so
 * that done is never called from inside kvc_call().
 */
static void
kvc_retry_or_finish(struct kvc_call *call)
{
	struct kvc_pool	*pool = call->pool;
	int64_t		 elapsed = kvc_now_ms() - call->start;
	int		 base, delay, shift;

	shift = call->attempts - 1 < 10 ? call->attempts - 1 : 10;
	base = KVC_BACKOFF_MIN_MS << shift;
	if (base > KVC_BACKOFF_MAX_MS)
		base = KVC_BACKOFF_MAX_MS;
	/* 75% to 125% of it, so that lanes failed together spread out. */
	delay = base * 3 / 4 + (int)(kvc_rand(pool) % (uint64_t)(base / 2 + 1));
	if (kvc_retryable(call->policy, call->status) &&
	    pool->cfg.retry_ms > 0 && elapsed + delay <= pool->cfg.retry_ms) {
		if (call->attempts == 1)
			pool->stats.retried_calls++;
		if (call->status >= 0 && call->status < 17)
			pool->stats.retries[call->status]++;
		if (kvc_arm(call, delay) == 0)
			return;
	} else if (kvc_retryable(call->policy, call->status) &&
	    pool->cfg.retry_ms > 0)
		pool->stats.given_up++;
	call->final = 1;
	if (kvc_arm(call, 0) == -1) {
		/* libevent failed to add a made timer; report now. */
		kvc_finish(call, call->status, call->message, NULL, 0);
	}
}

static void
kvc_on_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct kvc_call	*call = arg;
	struct kvc_pool	*pool = call->pool;
	struct kvc_conn	*kc = call->kc;
	int		 conn_failed;

	call->kc = NULL;
	if (pool->closing) {
		/* kvc_pool_free() is closing the connections. */
		kvc_call_free(call);
		return;
	}
	conn_failed = (status == KVC_UNKNOWN || status == KVC_UNAVAILABLE) &&
	    (kc->down || !grpcc_is_up(kc->conn));
	if (status != 0)
		kvc_failed(call, status, message, kc->addr, conn_failed,
		    conn_failed && !kc->up);
	if (status == KVC_UNKNOWN || status == KVC_DEADLINE ||
	    status == KVC_UNAVAILABLE)
		kvc_slot_move(kc, status, message);
	/*
	 * Done with kc before done runs: done may start calls, which may
	 * release it.  The reply stays valid until this callback returns.
	 */
	kvc_conn_maybe_release(kc);
	if (status == 0 || !kvc_retryable(call->policy, status))
		kvc_finish(call, status, message, reply, len);
	else
		kvc_retry_or_finish(call);
}

/* Send the call on its slot's connection; failures go to the retry. */
static void
kvc_attempt(struct kvc_call *call)
{
	struct kvc_pool		*pool = call->pool;
	struct kvc_conn		*kc;
	struct grpcc_md		 md[2];
	char			 id[24], seq[24];
	const char		*err = NULL;
	size_t			 nmd = 0;
	int			 tries;

	call->attempts++;
	if (call->lane != NULL) {
		snprintf(id, sizeof id, "%" PRIu64, call->lane->id);
		snprintf(seq, sizeof seq, "%" PRIu64, call->seq);
		md[0].name = KVFRONT_MD_CLIENT;
		md[0].value = id;
		md[1].name = KVFRONT_MD_SEQ;
		md[1].value = seq;
		nmd = 2;
	}
	/* A connection found gone or draining is replaced once, at once. */
	for (tries = 0; tries < 2; tries++) {
		if ((kc = kvc_slot_conn(pool, call->slot, &err)) == NULL) {
			kvc_failed(call, KVC_UNAVAILABLE, err,
			    call->slot->addr, 1, 1);
			kvc_retry_or_finish(call);
			return;
		}
		call->kc = kc;
		call->addr = kc->addr;
		if (grpcc_call_md(kc->conn, call->path, call->req, call->len,
		    pool->cfg.timeout_ms, md, nmd, kvc_on_done, call) == 0)
			return;
		call->kc = NULL;
		kvc_slot_move(kc, KVC_UNAVAILABLE, "cannot start a call on "
		    "the connection");
		if (kc->retired)
			kvc_conn_maybe_release(kc);
		else
			break;
	}
	kvc_failed(call, KVC_UNAVAILABLE, "cannot start the call",
	    call->slot->addr, 0, 0);
	kvc_retry_or_finish(call);
}

int
kvc_call(struct kvc_pool *pool, int slot, struct kvc_lane *lane,
    const char *path, const void *req, size_t len, enum kvc_policy policy,
    kvc_done_fn done, void *arg)
{
	struct kvc_call	*call;

	if (lane != NULL && lane->busy) {
		errno = EBUSY;
		return -1;
	}
	if ((call = calloc(1, sizeof *call)) == NULL)
		return -1;
	/*
	 * The timer is made now, so that a failure later never lacks the
	 * memory to be retried or reported from the loop.  One spare byte:
	 * a request may be empty.
	 */
	if ((call->path = strdup(path)) == NULL ||
	    (call->req = malloc(len + 1)) == NULL ||
	    (call->timer = evtimer_new(pool->base, kvc_on_timer,
	    call)) == NULL) {
		free(call->path);
		free(call->req);
		free(call);
		return -1;
	}
	if (len > 0)
		memcpy(call->req, req, len);
	call->len = len;
	call->pool = pool;
	call->slot = &pool->slots[(size_t)slot % (size_t)pool->cfg.nslots];
	call->policy = policy;
	call->done = done;
	call->arg = arg;
	call->start = kvc_now_ms();
	if (lane != NULL) {
		call->lane = lane;
		call->seq = ++lane->seq;
		lane->busy = 1;
	}
	LIST_INSERT_HEAD(&pool->calls, call, entry);
	pool->ncalls++;
	pool->stats.calls++;
	kvc_attempt(call);
	return 0;
}

size_t
kvc_pending(const struct kvc_pool *pool)
{
	return pool->ncalls;
}

const struct kvc_stats *
kvc_pool_stats(const struct kvc_pool *pool)
{
	return &pool->stats;
}

struct kvc_pool *
kvc_pool_new(struct event_base *base, const struct kvc_config *cfg,
    const char **err)
{
	struct kvc_pool	*pool;
	size_t		 i;

	*err = "out of memory";
	if (cfg->naddrs == 0 || cfg->nslots < 1) {
		*err = "no address";
		return NULL;
	}
	if ((pool = calloc(1, sizeof *pool)) == NULL)
		return NULL;
	pool->base = base;
	pool->cfg = *cfg;
	pool->naddrs = cfg->naddrs;
	LIST_INIT(&pool->conns);
	LIST_INIT(&pool->calls);
	if ((pool->addrs = calloc(cfg->naddrs + 1, sizeof *pool->addrs)) ==
	    NULL ||
	    (pool->slots = calloc((size_t)cfg->nslots,
	    sizeof *pool->slots)) == NULL)
		goto fail;
	for (i = 0; i < cfg->naddrs; i++)
		if ((pool->addrs[i] = strdup(cfg->addrs[i])) == NULL)
			goto fail;
	pool->cfg.addrs = pool->addrs;
	if (kvc_random(&pool->rng, sizeof pool->rng) == -1 || pool->rng == 0)
		pool->rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32 ^
		    0x9e3779b97f4a7c15ULL;
	*err = NULL;
	return pool;
fail:
	kvc_addrs_free(pool->addrs);
	free(pool->slots);
	free(pool);
	return NULL;
}

void
kvc_pool_free(struct kvc_pool *pool)
{
	struct kvc_conn	*kc;
	struct kvc_call	*call;

	if (pool == NULL)
		return;
	pool->closing = 1;
	/* Closing completes the calls on each; kvc_on_done drops them. */
	while ((kc = LIST_FIRST(&pool->conns)) != NULL) {
		LIST_REMOVE(kc, entry);
		grpcc_close(kc->conn);
		free(kc);
	}
	while ((call = LIST_FIRST(&pool->calls)) != NULL)
		kvc_call_free(call);
	kvc_addrs_free(pool->addrs);
	free(pool->slots);
	free(pool);
}
