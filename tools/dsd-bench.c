/*
 * dsd-bench: a load generator for dsd's kvdb mode, in the manner of
 * redis-benchmark: C connections with S calls in flight on each, a mix of
 * operations, a key range, a value size, a duration or a request count;
 * a progress line every second, then throughput, latency percentiles and
 * the count of every status.  --target etcd sends the same load to etcd's
 * v3 KV API (Put, and Range linearizable or serializable), so one
 * generator measures both.
 *
 * Against a cluster, -a lists its nodes and the connections are spread
 * over them round robin.  A call that fails (UNAVAILABLE or UNKNOWN while
 * a node dies or a leader is elected) is counted as an error by status and
 * replaced; a connection that fails is opened again at the next address,
 * after a pause that grows with its failures, so a run goes on through
 * the loss of a node.
 *
 * With --json, standard output carries JSON lines instead of the report:
 * one object per second of the run, then the summary (dsd-bench(1),
 * JSON OUTPUT), for scripts and bench/plot.
 *
 * Writes need fresh keys (a Set of a present key changes nothing), so
 * every set takes the next key never used before, after the prefilled
 * ones; reads, testAndSets and deletes pick keys at random in the range.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "etcd-kv.pb-c.h"
#include "net/grpc_client.h"
#include "cliout.h"
#include "kvcall.h"
#include "kvtool.h"

#define BENCH_USAGE	2
#define BENCH_NOCONN	3

enum bench_op { OP_SET, OP_GET, OP_TAS, OP_DEL, NOPS };
static const char	*bench_op_names[NOPS] = { "set", "get", "tas", "del" };

enum bench_target { TARGET_KVDB, TARGET_ETCD };

/* Reconnection: the pause doubles from the first to the last; a
 * connection that failed to connect this many rounds of the address list
 * in a row is given up. */
#define BENCH_RECONNECT_MS	100
#define BENCH_RECONNECT_MAX_MS	1000
#define BENCH_GIVE_UP_ROUNDS	3

/* Statuses counted per operation: kvdb's four, or etcd's two. */
#define NSTATUS		4
static const char	*bench_kvdb_status[NSTATUS] = {
	"SUCCESS", "ERROR", "ERROR_NE", "ERROR_WV"
};
static const char	*bench_etcd_status[NSTATUS] = {
	"OK", "NOT_FOUND", "?", "?"
};
#define NGRPC		17	/* gRPC codes 0-16 */

/*
 * A log-linear latency histogram in nanoseconds, as HdrHistogram's: 32
 * sub-buckets per power of two, so a percentile is within 1/32 (3%) of
 * the true value, with exact counts below 64 ns.
 */
#define HIST_SUB_BITS	5
#define HIST_SUB	(1 << HIST_SUB_BITS)
#define HIST_BUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t	count;
	uint64_t	max;
	double		sum;
	uint64_t	b[HIST_BUCKETS];
};

static size_t
hist_index(uint64_t v)
{
	int	e;

	if (v < 2 * HIST_SUB)
		return (size_t)v;
	e = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return (size_t)(e + 1) * HIST_SUB + (size_t)((v >> e) - HIST_SUB);
}

/* The highest value bucket i holds. */
static uint64_t
hist_high(size_t i)
{
	uint64_t	m;
	int		e;

	if (i < 2 * HIST_SUB)
		return i;
	e = (int)(i / HIST_SUB) - 1;
	m = i % HIST_SUB + HIST_SUB;
	return ((m + 1) << e) - 1;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v > h->max)
		h->max = v;
}

/* The q-quantile (0 < q <= 1), never above the maximum seen. */
static uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	want, seen = 0;
	size_t		i;

	if (h->count == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->count);
	if (want == 0)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_high(i) < h->max ? hist_high(i) : h->max;
	}
	return h->max;
}

struct bench;

enum bench_cstate {
	CS_CONNECTING,		/* conn made, not up yet */
	CS_UP,
	CS_WAITING,		/* no conn; the timer makes the next */
	CS_GONE			/* given up */
};

struct bench_conn {
	struct bench		*b;
	struct grpcc_conn	*conn;
	size_t			 addr;		/* index in b->addrs */
	enum bench_cstate	 state;
	int			 failures;	/* connects failed in a row */
	int			 inflight;
	struct event		*retry_ev;
};

struct bench_call {
	struct bench_conn	*bc;
	enum bench_op		 op;
	uint64_t		 key;		/* index in the range */
	uint64_t		 t0;
	struct bench_call	*next;		/* on the free list */
};

enum bench_phase { PH_CONNECT, PH_PREFILL, PH_RUN, PH_DONE };

struct bench {
	struct event_base	*base;
	struct kvt_tls		 tlsopt;
	struct ssl_ctx_st	*tls;		/* NULL: clear text */
	const char		*addr;		/* as given to -a */
	char			**addrs;
	size_t			 naddrs;
	enum bench_target	 target;
	int			 serializable;	/* etcd Range */
	int			 nconns, streams;
	unsigned		 mix[NOPS];
	unsigned		 mixtotal;
	uint64_t		 keys, prefill;
	size_t			 value_size;
	double			 duration;
	uint64_t		 requests;	/* 0: by duration */
	int			 timeout_ms;
	int			 quiet;
	int			 json;		/* JSON lines on stdout */
	mpz_t			 basekey, tmp;
	uint8_t			*keybuf;
	size_t			 keybufsize;
	uint8_t			*value;
	int64_t			*versions;	/* tas: version known */
	struct bench_conn	*conns;
	struct bench_call	*free_calls;
	uint64_t		 rng;

	enum bench_phase	 phase;
	int			 stopping;
	int			 inflight;
	uint64_t		 prefill_next, prefill_done, prefill_failed;
	uint64_t		 next_set;
	uint64_t		 issued, completed, ok;
	uint64_t		 start, last, prefill_start;
	uint64_t		 tick_done, tick_ok;
	int			 seconds;
	int			 conns_lost, reconnects;

	struct hist		 total, interval, per_op[NOPS];
	uint64_t		 status[NOPS][NSTATUS];
	uint64_t		 other_status[NOPS];
	uint64_t		 grpc_errors[NOPS][NGRPC];
	uint64_t		 unknown_errors;
	uint64_t		 tick_errors[NGRPC];	/* this second's */

	struct event		*tick_ev, *stop_ev, *drain_ev, *sigint_ev;
};

static void	bench_fill(struct bench_conn *);
static void	bench_fill_all(struct bench *);
static void	bench_connect(struct bench_conn *);

static uint64_t
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, and good enough to spread keys and operations. */
static uint64_t
bench_rand(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dULL;
}

/* The key of index i, in b->keybuf; its length, or 0 if out of memory. */
static size_t
bench_key(struct bench *b, uint64_t i)
{
	size_t	 n;
	uint8_t	*p;

	mpz_set_ui(b->tmp, (unsigned long)i);
	mpz_add(b->tmp, b->tmp, b->basekey);
	n = kvt_key_bytes(b->tmp, NULL, 0);
	if (n > b->keybufsize) {
		if ((p = realloc(b->keybuf, n)) == NULL)
			return 0;
		b->keybuf = p;
		b->keybufsize = n;
	}
	return kvt_key_bytes(b->tmp, b->keybuf, b->keybufsize);
}

static enum bench_op
bench_pick(struct bench *b)
{
	unsigned	r = (unsigned)(bench_rand(b) % b->mixtotal);
	int		i;

	for (i = 0; i < NOPS - 1; i++) {
		if (r < b->mix[i])
			return (enum bench_op)i;
		r -= b->mix[i];
	}
	return (enum bench_op)(NOPS - 1);
}

/* Pack the request of an operation on key index k; malloc'ed. */
static uint8_t *
bench_pack(struct bench *b, enum bench_op op, uint64_t k, const char **path,
    size_t *len)
{
	Etcdserverpb__PutRequest	 put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__RangeRequest	 range =
	    ETCDSERVERPB__RANGE_REQUEST__INIT;
	struct store_op			 sop;
	ProtobufCMessage		*m;
	size_t				 keylen;
	uint8_t				*buf;

	if ((keylen = bench_key(b, k)) == 0)
		return NULL;
	if (b->target == TARGET_ETCD) {
		if (op == OP_SET) {
			put.key.data = b->keybuf;
			put.key.len = keylen;
			put.value.data = b->value;
			put.value.len = b->value_size;
			m = &put.base;
			*path = "/etcdserverpb.KV/Put";
		} else {
			range.key.data = b->keybuf;
			range.key.len = keylen;
			/*
			 * Unset, etcd reads linearizably: the member
			 * confirms with a quorum (ReadIndex) that it has
			 * the leader's latest commit.  Set, it answers from
			 * its own state.
			 */
			range.serializable = b->serializable;
			m = &range.base;
			*path = "/etcdserverpb.KV/Range";
		}
		*len = protobuf_c_message_get_packed_size(m);
		if ((buf = malloc(*len + 1)) != NULL)
			protobuf_c_message_pack(m, buf);
		return buf;
	}
	memset(&sop, 0, sizeof sop);
	sop.key = b->keybuf;
	sop.keylen = keylen;
	switch (op) {
	case OP_SET:
		sop.type = STORE_OP_SET;
		break;
	case OP_GET:
		sop.type = STORE_OP_GET;
		break;
	case OP_TAS:
		sop.type = STORE_OP_TESTANDSET;
		sop.version = b->versions != NULL ? b->versions[k] : 1;
		break;
	case OP_DEL:
		sop.type = STORE_OP_DEL;
		break;
	default:
		return NULL;
	}
	if (op == OP_SET || op == OP_TAS) {
		sop.timestamp = kvt_now_ms();
		sop.data = b->value;
		sop.datalen = b->value_size;
	}
	*path = kvt_op_path(sop.type);
	return kvt_op_pack(&sop, len);
}

/*
 * Read a reply's status: an index into the status names, or -1 if the
 * reply does not decode.  Keeps the versions testAndSet needs.
 */
static int
bench_status(struct bench *b, enum bench_op op, uint64_t k,
    const uint8_t *p, size_t len)
{
	Etcdserverpb__RangeResponse	*rr;
	struct kvt_reply		 r;
	int				 st;

	if (b->target == TARGET_ETCD) {
		if (op == OP_SET)
			return 0;
		if ((rr = etcdserverpb__range_response__unpack(NULL, len,
		    p)) == NULL)
			return -1;
		st = rr->n_kvs > 0 ? 0 : 1;
		etcdserverpb__range_response__free_unpacked(rr, NULL);
		return st;
	}
	if (kvt_reply_decode(p, len, &r) == -1)
		return -1;
	st = r.status;
	if (op == OP_TAS && b->versions != NULL) {
		if (st == STORE_SUCCESS)
			b->versions[k]++;
		else if (st == STORE_ERROR_WV && r.has_value)
			b->versions[k] = r.version;
	}
	kvt_reply_free(&r);
	return st >= 0 && st < NSTATUS ? st : NSTATUS;
}

static int
bench_may_issue(const struct bench *b)
{
	if (b->phase == PH_PREFILL)
		return b->prefill_next < b->prefill;
	if (b->phase == PH_RUN)
		return !b->stopping &&
		    (b->requests == 0 || b->issued < b->requests);
	return 0;
}

static void
bench_finish_run(struct bench *b)
{
	b->phase = PH_DONE;
	event_base_loopbreak(b->base);
}

static void	bench_start_run(struct bench *);

static void
bench_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct bench_call	*c = arg;
	struct bench_conn	*bc = c->bc;
	struct bench		*b = bc->b;
	uint64_t		 now = bench_now(), lat = now - c->t0;
	int			 st = -1;

	if (status == 0)
		st = bench_status(b, c->op, c->key, reply, len);
	bc->inflight--;
	b->inflight--;
	if (b->phase == PH_PREFILL) {
		b->prefill_done++;
		if (status != 0 || st != 0)
			b->prefill_failed++;
	} else if (b->phase == PH_RUN) {
		b->completed++;
		b->last = now;
		if (status != 0) {
			if (status > 0 && status < NGRPC) {
				b->grpc_errors[c->op][status]++;
				b->tick_errors[status]++;
			} else
				b->unknown_errors++;
		} else if (st == -1)
			b->unknown_errors++;
		else {
			b->ok++;
			hist_add(&b->total, lat);
			hist_add(&b->interval, lat);
			hist_add(&b->per_op[c->op], lat);
			if (st < NSTATUS)
				b->status[c->op][st]++;
			else
				b->other_status[c->op]++;
		}
	}
	c->next = b->free_calls;
	b->free_calls = c;

	if (b->phase == PH_PREFILL && b->prefill_done == b->prefill) {
		bench_start_run(b);
		return;
	}
	bench_fill(bc);
	/* The last call: start more elsewhere, or end (stopped, or every
	 * connection lost). */
	if (b->inflight == 0)
		bench_fill_all(b);
}

/* Start one call on bc; 0, or -1 if it could not start. */
static int
bench_issue(struct bench_conn *bc)
{
	struct bench		*b = bc->b;
	struct bench_call	*c;
	enum bench_op		 op;
	const char		*path;
	uint8_t			*req;
	uint64_t		 k;
	size_t			 len;
	int			 rv;

	if (b->phase == PH_PREFILL) {
		op = OP_SET;
		k = b->prefill_next;
	} else {
		op = bench_pick(b);
		if (op == OP_SET)
			k = b->prefill + b->next_set;
		else
			k = bench_rand(b) % b->keys;
	}
	if ((c = b->free_calls) != NULL)
		b->free_calls = c->next;
	else if ((c = malloc(sizeof *c)) == NULL)
		return -1;
	if ((req = bench_pack(b, op, k, &path, &len)) == NULL) {
		c->next = b->free_calls;
		b->free_calls = c;
		return -1;
	}
	c->bc = bc;
	c->op = op;
	c->key = k;
	c->t0 = bench_now();
	rv = grpcc_call(bc->conn, path, req, len, b->timeout_ms, bench_done,
	    c);
	free(req);
	if (rv == -1) {
		c->next = b->free_calls;
		b->free_calls = c;
		return -1;
	}
	if (b->phase == PH_PREFILL)
		b->prefill_next++;
	else {
		b->issued++;
		if (op == OP_SET)
			b->next_set++;
	}
	bc->inflight++;
	b->inflight++;
	return 0;
}

/* Keep S calls in flight on a connection. */
static void
bench_fill(struct bench_conn *bc)
{
	while (bc->state == CS_UP && bc->inflight < bc->b->streams &&
	    bench_may_issue(bc->b))
		if (bench_issue(bc) == -1)
			break;
}

/*
 * Whether a connection may carry calls again: one on its way or waiting
 * to reconnect, or one still marked up whose failure (or GOAWAY) has not
 * been reported yet, which grpc_client does after the calls it cut.
 */
static int
bench_alive(const struct bench *b)
{
	const struct bench_conn	*bc;
	int			 i;

	for (i = 0; i < b->nconns; i++) {
		bc = &b->conns[i];
		if (bc->state == CS_CONNECTING || bc->state == CS_WAITING ||
		    (bc->state == CS_UP && !grpcc_is_up(bc->conn)))
			return 1;
	}
	return 0;
}

static void
bench_fill_all(struct bench *b)
{
	int	i;

	for (i = 0; i < b->nconns; i++)
		bench_fill(&b->conns[i]);
	/* Nothing could start, and no connection will come back. */
	if (b->inflight == 0 && b->phase != PH_CONNECT && !bench_alive(b))
		bench_finish_run(b);
}

/* The duration is over, or ^C: start nothing more, report. */
static void
bench_on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;

	if (b->phase != PH_RUN) {
		/* Before the run: nothing worth reporting. */
		b->phase = PH_DONE;
		event_base_loopbreak(b->base);
		return;
	}
	b->stopping = 1;
	if (b->inflight == 0)
		bench_finish_run(b);
}

static void
bench_start_run(struct bench *b)
{
	struct timeval	tv;
	double		secs;

	if (b->prefill > 0) {
		secs = (double)(bench_now() - b->prefill_start) / 1e9;
		fprintf(stderr, "prefill: %llu keys in %.2f s (%.0f/s)",
		    (unsigned long long)b->prefill, secs,
		    secs > 0 ? (double)b->prefill / secs : 0.0);
		if (b->prefill_failed > 0)
			fprintf(stderr, "; %llu sets failed (present already, "
			    "or errors)", (unsigned long long)b->prefill_failed);
		fprintf(stderr, "\n");
	}
	b->phase = PH_RUN;
	b->start = b->last = bench_now();
	if (b->requests == 0) {
		tv.tv_sec = (time_t)b->duration;
		tv.tv_usec = (suseconds_t)((b->duration - (double)tv.tv_sec) *
		    1e6);
		evtimer_add(b->stop_ev, &tv);
	}
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	event_add(b->tick_ev, &tv);
	bench_fill_all(b);
}

/* " (UNAVAILABLE 3, UNKNOWN 1)": the gRPC errors by status, if any. */
static void
bench_print_errors(FILE *f, const uint64_t *errs)
{
	int	j, any = 0;

	for (j = 1; j < NGRPC; j++)
		if (errs[j] > 0) {
			fprintf(f, "%s%s %llu", any ? ", " : " (",
			    kvt_grpc_code_name(j),
			    (unsigned long long)errs[j]);
			any = 1;
		}
	if (any)
		fprintf(f, ")");
}

/* A latency in milliseconds for JSON, to the microsecond. */
static json_t *
bench_json_ms(uint64_t ns)
{
	return json_real(round((double)ns / 1e3) / 1e3);
}

/* The latencies of a histogram, in ms: p50, p99, p99.9, max, mean. */
static json_t *
bench_json_lat(const struct hist *h)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o}",
	    "p50_ms", bench_json_ms(hist_quantile(h, 0.5)),
	    "p99_ms", bench_json_ms(hist_quantile(h, 0.99)),
	    "p999_ms", bench_json_ms(hist_quantile(h, 0.999)),
	    "max_ms", bench_json_ms(h->max),
	    "mean_ms", bench_json_ms(h->count > 0 ?
	    (uint64_t)(h->sum / (double)h->count) : 0));
}

/* {"UNAVAILABLE": 3, ...}: the gRPC errors by status; NULL if memory
 * ran out. */
static json_t *
bench_json_errors(const uint64_t *errs)
{
	json_t	*o;
	int	 j;

	if ((o = json_object()) == NULL)
		return NULL;
	for (j = 1; j < NGRPC; j++)
		if (errs[j] > 0 && json_object_set_new(o,
		    kvt_grpc_code_name(j), json_integer((json_int_t)errs[j])) ==
		    -1) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* Print a JSON line, taking o; a line that cannot be made is said. */
static void
bench_json_print(json_t *o)
{
	if (cliout_print(o) == -1)
		fprintf(stderr, "dsd-bench: cannot write a JSON line: out of "
		    "memory, or standard output failed\n");
}

/* One second of the run as a JSON line (the interval histogram). */
static void
bench_json_tick(struct bench *b, uint64_t errs)
{
	json_t	*o;

	o = json_pack("{s:s, s:i, s:I, s:I}", "type", "interval", "t",
	    b->seconds, "ops", (json_int_t)(b->ok - b->tick_ok), "errors",
	    (json_int_t)errs);
	if (json_object_update_new(o, bench_json_lat(&b->interval)) == -1 ||
	    json_object_set_new(o, "inflight", json_integer(b->inflight)) ==
	    -1 || json_object_set_new(o, "errors_by_status",
	    bench_json_errors(b->tick_errors)) == -1) {
		json_decref(o);
		o = NULL;
	}
	bench_json_print(o);
}

static void
bench_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;
	uint64_t	 errs;

	b->seconds++;
	errs = (b->completed - b->ok) - b->tick_done;
	if (b->json)
		bench_json_tick(b, errs);
	if (!b->quiet) {
		fprintf(stderr, "[%3ds] %llu calls/s, p50 %.3f ms, p99 %.3f "
		    "ms, max %.3f ms, in flight %d, errors %llu",
		    b->seconds, (unsigned long long)(b->ok - b->tick_ok),
		    (double)hist_quantile(&b->interval, 0.5) / 1e6,
		    (double)hist_quantile(&b->interval, 0.99) / 1e6,
		    (double)b->interval.max / 1e6, b->inflight,
		    (unsigned long long)errs);
		bench_print_errors(stderr, b->tick_errors);
		fprintf(stderr, "\n");
	}
	b->tick_done += errs;
	b->tick_ok = b->ok;
	memset(&b->interval, 0, sizeof b->interval);
	memset(b->tick_errors, 0, sizeof b->tick_errors);
}

/* The load may begin once every connection is up. */
static void
bench_maybe_start(struct bench *b)
{
	int	i;

	for (i = 0; i < b->nconns; i++)
		if (b->conns[i].state != CS_UP)
			return;
	b->prefill_start = bench_now();
	if (b->prefill > 0) {
		b->phase = PH_PREFILL;
		bench_fill_all(b);
	} else
		bench_start_run(b);
}

static void
bench_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct bench_conn	*bc = arg;

	if (bc->b->phase == PH_DONE || bc->state != CS_WAITING)
		return;
	bc->b->reconnects++;
	bench_connect(bc);
}

/*
 * A connection failed or could not be made: open it again at the next
 * address.  Before the load starts, at once, and a connection that no
 * address accepts ends the run; during it, after a pause that doubles
 * with the failures in a row, until BENCH_GIVE_UP_ROUNDS rounds of the
 * list have failed.
 */
static void
bench_conn_failed(struct bench_conn *bc, const char *why)
{
	struct bench	*b = bc->b;
	struct timeval	 tv;
	int		 ms, shift;
	const char	*from = b->addrs[bc->addr];

	if (bc->state == CS_UP) {
		b->conns_lost++;
		bc->failures = 0;
		fprintf(stderr, "dsd-bench: connection %d to %s lost: %s\n",
		    (int)(bc - b->conns), from, why);
	}
	bc->failures++;
	bc->state = CS_WAITING;
	if (bc->conn != NULL) {
		/* From inside its own callback the free is deferred. */
		grpcc_close(bc->conn);
		bc->conn = NULL;
	}
	bc->addr = (bc->addr + 1) % b->naddrs;
	if (b->phase == PH_DONE)
		return;
	if (b->phase == PH_CONNECT) {
		if ((size_t)bc->failures >= b->naddrs) {
			fprintf(stderr, "dsd-bench: cannot connect to %s: %s\n",
			    from, why);
			bc->state = CS_GONE;
			b->phase = PH_DONE;
			event_base_loopbreak(b->base);
			return;
		}
		bench_connect(bc);
		return;
	}
	if ((size_t)bc->failures >= BENCH_GIVE_UP_ROUNDS * b->naddrs) {
		fprintf(stderr, "dsd-bench: connection %d: no address "
		    "accepted it %d times in a row (last %s: %s); giving up "
		    "on it\n", (int)(bc - b->conns), bc->failures, from, why);
		bc->state = CS_GONE;
		bench_fill_all(b);
		return;
	}
	shift = bc->failures - 1 < 4 ? bc->failures - 1 : 4;
	ms = BENCH_RECONNECT_MS << shift;
	if (ms > BENCH_RECONNECT_MAX_MS)
		ms = BENCH_RECONNECT_MAX_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(bc->retry_ev, &tv);
}

static void
bench_on_state(struct grpcc_conn *conn, int up, const char *why, void *arg)
{
	struct bench_conn	*bc = arg;
	struct bench		*b = bc->b;

	if (up) {
		bc->state = CS_UP;
		bc->failures = 0;
		if (b->phase == PH_CONNECT)
			bench_maybe_start(b);
		else
			bench_fill(bc);
		return;
	}
	bench_conn_failed(bc, why != NULL ? why : "unknown");
}

/* Open bc's connection to its current address. */
static void
bench_connect(struct bench_conn *bc)
{
	struct bench		*b = bc->b;
	struct grpcc_config	 cfg;
	const char		*err;

	memset(&cfg, 0, sizeof cfg);
	cfg.addr = b->addrs[bc->addr];
	cfg.connect_timeout_ms = 5000;
	cfg.tls = b->tls;
	cfg.server_name = b->tlsopt.server_name;
	cfg.on_state = bench_on_state;
	cfg.arg = bc;
	bc->state = CS_CONNECTING;
	if ((bc->conn = grpcc_connect(b->base, &cfg, &err)) == NULL)
		bench_conn_failed(bc, err);
}

static void
bench_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct bench	*b = arg;

	fprintf(stderr, "dsd-bench: %d calls still without an answer; "
	    "giving up on them\n", b->inflight);
	b->phase = PH_DONE;
	event_base_loopbreak(b->base);
}

static void
bench_print_lat(const char *label, const struct hist *h)
{
	printf("%-11s p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f "
	    "ms\n", label, (double)hist_quantile(h, 0.5) / 1e6,
	    (double)hist_quantile(h, 0.99) / 1e6,
	    (double)hist_quantile(h, 0.999) / 1e6, (double)h->max / 1e6,
	    h->count > 0 ? h->sum / (double)h->count / 1e6 : 0.0);
}

/*
 * The calls without an answer, or with one that does not decode: their
 * total, and in bystatus those of each gRPC status over all operations.
 */
static uint64_t
bench_errors(const struct bench *b, uint64_t *bystatus)
{
	uint64_t	errors = b->unknown_errors;
	int		i, j;

	for (j = 0; j < NGRPC; j++) {
		bystatus[j] = 0;
		for (i = 0; i < NOPS; i++)
			bystatus[j] += b->grpc_errors[i][j];
		errors += bystatus[j];
	}
	return errors;
}

/* An operation's part of the JSON summary: count, latency, statuses,
 * errors.  NULL if memory ran out. */
static json_t *
bench_json_op(const struct bench *b, int i)
{
	const char	**names = b->target == TARGET_ETCD ?
			    bench_etcd_status : bench_kvdb_status;
	json_t		 *st;
	int		  j;

	if ((st = json_object()) == NULL)
		return NULL;
	for (j = 0; j < NSTATUS; j++)
		if (b->status[i][j] > 0 && json_object_set_new(st, names[j],
		    json_integer((json_int_t)b->status[i][j])) == -1) {
			json_decref(st);
			return NULL;
		}
	if (b->other_status[i] > 0 && json_object_set_new(st, "other",
	    json_integer((json_int_t)b->other_status[i])) == -1) {
		json_decref(st);
		return NULL;
	}
	return json_pack("{s:I, s:o, s:o, s:o}", "answered",
	    (json_int_t)b->per_op[i].count, "latency",
	    bench_json_lat(&b->per_op[i]), "statuses", st, "errors",
	    bench_json_errors(b->grpc_errors[i]));
}

/* The report as the last JSON line: parameters, figures, errors. */
static void
bench_report_json(struct bench *b)
{
	double		 secs = (double)(b->last - b->start) / 1e9;
	uint64_t	 errors, bystatus[NGRPC];
	json_t		*o, *mix, *ops;
	int		 i;

	errors = bench_errors(b, bystatus);
	mix = json_object();
	ops = json_object();
	for (i = 0; i < NOPS && mix != NULL && ops != NULL; i++) {
		if (b->mix[i] > 0 && json_object_set_new(mix,
		    bench_op_names[i], json_integer(b->mix[i])) == -1) {
			json_decref(mix);
			mix = NULL;
		}
		if (b->mix[i] > 0 && json_object_set_new(ops,
		    bench_op_names[i], bench_json_op(b, i)) == -1) {
			json_decref(ops);
			ops = NULL;
		}
	}
	o = json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:o, s:I, s:I, s:I, "
	    "s:o*, s:o*, s:i, s:s*}, s:I, s:o, s:o, s:o, s:o, s:{s:I, s:o, "
	    "s:I}, s:{s:i, s:i}}",
	    "type", "summary",
	    "target", b->target == TARGET_ETCD ? "etcd" : "kvdb",
	    "addr", b->addr,
	    "params",
	    "connections", b->nconns,
	    "streams", b->streams,
	    "mix", mix,
	    "keys", (json_int_t)b->keys,
	    "prefill", (json_int_t)b->prefill,
	    "value_size", (json_int_t)b->value_size,
	    "duration_s", b->requests == 0 ? json_real(b->duration) : NULL,
	    "requests", b->requests > 0 ?
	    json_integer((json_int_t)b->requests) : NULL,
	    "timeout_ms", b->timeout_ms,
	    "etcd_read", b->target != TARGET_ETCD ? NULL : b->serializable ?
	    "serializable" : "linearizable",
	    "answered", (json_int_t)b->ok,
	    "secs", json_real(round(secs * 1e3) / 1e3),
	    "throughput", json_real(round(secs > 0 ? (double)b->ok / secs *
	    10 : 0) / 10),
	    "latency", bench_json_lat(&b->total),
	    "ops", ops,
	    "errors",
	    "total", (json_int_t)errors,
	    "by_status", bench_json_errors(bystatus),
	    "undecodable", (json_int_t)b->unknown_errors,
	    "connections",
	    "lost", b->conns_lost,
	    "reopened", b->reconnects);
	bench_json_print(o);
}

static void
bench_report(struct bench *b)
{
	const char	**names = b->target == TARGET_ETCD ?
			    bench_etcd_status : bench_kvdb_status;
	double		  secs = (double)(b->last - b->start) / 1e9;
	uint64_t	  errors, bystatus[NGRPC];
	char		  label[32];
	int		  i, j, any;

	if (b->json) {
		bench_report_json(b);
		return;
	}
	errors = bench_errors(b, bystatus);
	if (b->target == TARGET_ETCD)
		printf("target:      etcd at %s, %s Range\n", b->addr,
		    b->serializable ? "serializable" : "linearizable");
	else
		printf("target:      kvdb at %s\n", b->addr);
	printf("load:        %d connections x %d streams, value %zu bytes, "
	    "keys %llu, prefill %llu\n", b->nconns, b->streams, b->value_size,
	    (unsigned long long)b->keys, (unsigned long long)b->prefill);
	printf("mix:        ");
	for (i = 0; i < NOPS; i++)
		if (b->mix[i] > 0)
			printf(" %s=%u", bench_op_names[i], b->mix[i]);
	printf("\n");
	printf("requests:    %llu answered in %.2f s, %llu errors\n",
	    (unsigned long long)b->ok, secs, (unsigned long long)errors);
	printf("throughput:  %.0f calls/s\n", secs > 0 ?
	    (double)b->ok / secs : 0.0);
	bench_print_lat("latency:", &b->total);
	for (i = 0; i < NOPS; i++) {
		if (b->per_op[i].count == 0)
			continue;
		snprintf(label, sizeof label, "  %s", bench_op_names[i]);
		bench_print_lat(label, &b->per_op[i]);
	}
	printf("statuses:   ");
	for (i = 0, any = 0; i < NOPS; i++) {
		for (j = 0; j < NSTATUS; j++)
			if (b->status[i][j] > 0) {
				printf("%s %s %s %llu", any ? "," : "",
				    bench_op_names[i], names[j],
				    (unsigned long long)b->status[i][j]);
				any = 1;
			}
		if (b->other_status[i] > 0) {
			printf("%s %s other %llu", any ? "," : "",
			    bench_op_names[i],
			    (unsigned long long)b->other_status[i]);
			any = 1;
		}
	}
	printf("%s\n", any ? "" : " none");
	printf("errors:     ");
	for (i = 0, any = 0; i < NOPS; i++)
		for (j = 0; j < NGRPC; j++)
			if (b->grpc_errors[i][j] > 0) {
				printf("%s %s %s %llu", any ? "," : "",
				    bench_op_names[i], kvt_grpc_code_name(j),
				    (unsigned long long)b->grpc_errors[i][j]);
				any = 1;
			}
	if (b->unknown_errors > 0) {
		printf("%s undecodable replies %llu", any ? "," : "",
		    (unsigned long long)b->unknown_errors);
		any = 1;
	}
	printf("%s\n", any ? "" : " none");
	if (errors > 0) {
		printf("by status:  ");
		bench_print_errors(stdout, bystatus);
		printf("\n");
	}
	if (b->conns_lost > 0 || b->reconnects > 0)
		printf("connections: %d lost, %d reopened\n", b->conns_lost,
		    b->reconnects);
	/* One line for scripts. */
	printf("summary: target=%s ok=%llu secs=%.3f rps=%.0f p50_ms=%.3f "
	    "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%llu unknown=%llu "
	    "deadline=%llu unavailable=%llu conns_lost=%d\n",
	    b->target == TARGET_ETCD ? "etcd" : "kvdb",
	    (unsigned long long)b->ok, secs,
	    secs > 0 ? (double)b->ok / secs : 0.0,
	    (double)hist_quantile(&b->total, 0.5) / 1e6,
	    (double)hist_quantile(&b->total, 0.99) / 1e6,
	    (double)hist_quantile(&b->total, 0.999) / 1e6,
	    (double)b->total.max / 1e6, (unsigned long long)errors,
	    (unsigned long long)bystatus[KVT_GRPC_UNKNOWN],
	    (unsigned long long)bystatus[KVT_GRPC_DEADLINE],
	    (unsigned long long)bystatus[KVT_GRPC_UNAVAILABLE],
	    b->conns_lost);
	fflush(stdout);
}

/* "set=50,get=50"; 0 or -1. */
static int
bench_parse_mix(struct bench *b, const char *s)
{
	char		*copy, *item, *save = NULL, *eq;
	int64_t		 w;
	int		 i, rv = -1;

	memset(b->mix, 0, sizeof b->mix);
	if ((copy = strdup(s)) == NULL)
		return -1;
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(item, '=')) == NULL)
			goto out;
		*eq = '\0';
		if (strcmp(item, "put") == 0)
			item = "set";
		else if (strcmp(item, "range") == 0)
			item = "get";
		for (i = 0; i < NOPS; i++)
			if (strcmp(item, bench_op_names[i]) == 0)
				break;
		if (i == NOPS || kvt_parse_i64(eq + 1, &w) == -1 || w < 0 ||
		    w > 1000000)
			goto out;
		b->mix[i] = (unsigned)w;
	}
	b->mixtotal = 0;
	for (i = 0; i < NOPS; i++)
		b->mixtotal += b->mix[i];
	if (b->mixtotal > 0)
		rv = 0;
out:
	free(copy);
	return rv;
}

#define BENCH_USAGE_LINE	"usage: dsd-bench [-q] [--json] " \
	"[-a addr:port[,addr:port...]] [-c connections]\n" \
	"           [-s streams] [-d seconds | -n requests] [-t timeout-ms] " \
	"[--mix op=weight,...]\n" \
	"           [--keys N] [--prefill N] [--value-size bytes] " \
	"[--base KEY] [--target kvdb|etcd]\n" \
	"           [--etcd-read linearizable|serializable]\n" \
	"           " KVT_TLS_USAGE "\n"

static void __attribute__((noreturn))
bench_usage(void)
{
	fprintf(stderr, BENCH_USAGE_LINE);
	exit(BENCH_USAGE);
}

static void __attribute__((noreturn))
bench_help(void)
{
	printf(BENCH_USAGE_LINE "options:\n"
	    "  -a ADDR[,ADDR...]      the server, or the nodes of a cluster, "
	    "round robin\n"
	    "                         (default " KVT_DEFAULT_ADDR ", etcd "
	    "127.0.0.1:2379)\n"
	    "  -c, --connections=N    connections (default 4)\n"
	    "  -s, --streams=N        calls in flight per connection "
	    "(default 16)\n"
	    "  -d, --duration=SECONDS how long to run (default 10)\n"
	    "  -n, --requests=N       how many calls to start, instead of "
	    "-d\n"
	    "  -t, --timeout=MS       deadline of each call (default 0: "
	    "none)\n"
	    "  -q, --quiet            no progress lines on standard error\n"
	    "  --json                 JSON lines on standard output: one per "
	    "second, then\n"
	    "                         the summary (dsd-bench(1), JSON "
	    "OUTPUT)\n"
	    "  --mix=OP=WEIGHT,...    operations set, get, tas, del and their "
	    "weights\n"
	    "                         (default set=50,get=50)\n"
	    "  --keys=N               key range of get, tas, del (default "
	    "100000)\n"
	    "  --prefill=N            set the first N keys before the run\n"
	    "  --value-size=BYTES     data of each set and tas (default 100)\n"
	    "  --base=KEY             the key of index 0 (default 0)\n"
	    "  --target=kvdb|etcd     the API to speak (default kvdb)\n"
	    "  --etcd-read=linearizable|serializable\n"
	    "                         how etcd serves a get (default "
	    "serializable)\n"
	    KVT_TLS_HELP
	    "  -h, --help             print this help and exit\n"
	    "exit status: 0 every call answered, 1 a call failed or a "
	    "connection was lost,\n"
	    "2 usage error, 3 cannot connect\n");
	exit(0);
}

static int64_t
bench_num(const char *opt, const char *s, int64_t min, int64_t max)
{
	int64_t	v;

	if (kvt_parse_i64(s, &v) == -1 || v < min || v > max) {
		fprintf(stderr, "dsd-bench: %s takes a number from %lld to "
		    "%lld\n", opt, (long long)min, (long long)max);
		exit(BENCH_USAGE);
	}
	return v;
}

int
main(int argc, char **argv)
{
	enum { O_MIX = 256, O_KEYS, O_PREFILL, O_VALUE, O_TARGET, O_BASE,
	    O_ETCD_READ, O_JSON, O_TLS };
	static const struct option	 longopts[] = {
		{ "mix", required_argument, NULL, O_MIX },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "prefill", required_argument, NULL, O_PREFILL },
		{ "value-size", required_argument, NULL, O_VALUE },
		{ "target", required_argument, NULL, O_TARGET },
		{ "base", required_argument, NULL, O_BASE },
		{ "etcd-read", required_argument, NULL, O_ETCD_READ },
		{ "json", no_argument, NULL, O_JSON },
		{ "connections", required_argument, NULL, 'c' },
		{ "streams", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		KVT_TLS_LONGOPTS(O_TLS),
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct bench			 b;
	struct timeval			 tv;
	const char			*mix = NULL, *err;
	char				*end;
	int				 ch, i, keys_given = 0, rv = 0;
	int				 d_given = 0, n_given = 0;
	uint64_t			 k;

	memset(&b, 0, sizeof b);
	mpz_init(b.basekey);
	mpz_init(b.tmp);
	b.nconns = 4;
	b.streams = 16;
	b.keys = 100000;
	b.value_size = 100;
	b.duration = 10;
	/* The default of the figures compared so far (README: kvdb Get
	 * against serializable Range). */
	b.serializable = 1;
	while ((ch = getopt_long(argc, argv, "a:c:d:hn:qs:t:", longopts,
	    NULL)) != -1) {
		if (kvt_tls_option(&b.tlsopt, O_TLS, ch, optarg))
			continue;
		switch (ch) {
		case 'a':
			b.addr = optarg;
			break;
		case 'c':
			b.nconns = (int)bench_num("-c", optarg, 1, 10000);
			break;
		case 's':
			b.streams = (int)bench_num("-s", optarg, 1, 100000);
			break;
		case 'd':
			errno = 0;
			b.duration = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    !(b.duration > 0 && b.duration < 1e6)) {
				fprintf(stderr, "dsd-bench: -d takes seconds, "
				    "more than 0\n");
				return BENCH_USAGE;
			}
			d_given = 1;
			break;
		case 'n':
			b.requests = (uint64_t)bench_num("-n", optarg, 1,
			    INT64_MAX);
			n_given = 1;
			break;
		case 't':
			b.timeout_ms = (int)bench_num("-t", optarg, 0,
			    INT_MAX);
			break;
		case 'q':
			b.quiet = 1;
			break;
		case 'h':
			bench_help();
		case O_JSON:
			b.json = 1;
			break;
		case O_MIX:
			mix = optarg;
			break;
		case O_KEYS:
			b.keys = (uint64_t)bench_num("--keys", optarg, 1,
			    INT64_MAX);
			keys_given = 1;
			break;
		case O_PREFILL:
			b.prefill = (uint64_t)bench_num("--prefill", optarg,
			    0, INT64_MAX);
			break;
		case O_VALUE:
			b.value_size = (size_t)bench_num("--value-size",
			    optarg, 0, 64 << 20);
			break;
		case O_TARGET:
			if (strcmp(optarg, "kvdb") == 0)
				b.target = TARGET_KVDB;
			else if (strcmp(optarg, "etcd") == 0)
				b.target = TARGET_ETCD;
			else {
				fprintf(stderr, "dsd-bench: --target is kvdb "
				    "or etcd\n");
				return BENCH_USAGE;
			}
			break;
		case O_ETCD_READ:
			if (strcmp(optarg, "linearizable") == 0)
				b.serializable = 0;
			else if (strcmp(optarg, "serializable") == 0)
				b.serializable = 1;
			else {
				fprintf(stderr, "dsd-bench: --etcd-read is "
				    "linearizable or serializable\n");
				return BENCH_USAGE;
			}
			break;
		case O_BASE:
			if (kvt_key_parse_mpz(optarg, b.basekey, &err) == -1) {
				fprintf(stderr, "dsd-bench: --base: %s\n", err);
				return BENCH_USAGE;
			}
			break;
		default:
			bench_usage();
		}
	}
	if (optind != argc || (d_given && n_given))
		bench_usage();
	if (b.addr == NULL)
		b.addr = b.target == TARGET_ETCD ? "127.0.0.1:2379" :
		    KVT_DEFAULT_ADDR;
	if (b.tlsopt.on && (b.tls = kvt_tls_ctx(&b.tlsopt,
	    "dsd-bench")) == NULL)
		return BENCH_USAGE;
	if ((b.addrs = kvc_addrs_parse(b.addr, &b.naddrs, &err)) == NULL) {
		fprintf(stderr, "dsd-bench: -a takes host:port or "
		    "[ipv6]:port, or several separated by commas: %s\n", err);
		return BENCH_USAGE;
	}
	if (bench_parse_mix(&b, mix != NULL ? mix : "set=50,get=50") == -1) {
		fprintf(stderr, "dsd-bench: --mix is op=weight,... with ops "
		    "set, get, tas, del and a weight above 0\n");
		return BENCH_USAGE;
	}
	if (b.target == TARGET_ETCD && (b.mix[OP_TAS] || b.mix[OP_DEL])) {
		fprintf(stderr, "dsd-bench: --target etcd has set (Put) and "
		    "get (Range) only\n");
		return BENCH_USAGE;
	}
	if (!keys_given && b.prefill > 0)
		b.keys = b.prefill;
	if ((b.value = malloc(b.value_size + 1)) == NULL) {
		fprintf(stderr, "dsd-bench: out of memory\n");
		return 1;
	}
	b.rng = (uint64_t)bench_now() ^ ((uint64_t)getpid() << 32) ^
	    0x9e3779b97f4a7c15ULL;
	for (k = 0; k < b.value_size; k++)
		b.value[k] = (uint8_t)('a' + bench_rand(&b) % 26);
	/* testAndSet tries the version it last saw: 1 after a prefill. */
	if (b.mix[OP_TAS] > 0 && b.target == TARGET_KVDB &&
	    b.keys <= 100000000) {
		if ((b.versions = malloc(b.keys * sizeof *b.versions)) ==
		    NULL) {
			fprintf(stderr, "dsd-bench: out of memory\n");
			return 1;
		}
		for (k = 0; k < b.keys; k++)
			b.versions[k] = 1;
	}

	signal(SIGPIPE, SIG_IGN);
	if ((b.base = event_base_new()) == NULL ||
	    (b.conns = calloc((size_t)b.nconns, sizeof *b.conns)) == NULL ||
	    (b.tick_ev = event_new(b.base, -1, EV_PERSIST, bench_on_tick,
	    &b)) == NULL ||
	    (b.stop_ev = evtimer_new(b.base, bench_on_stop, &b)) == NULL ||
	    (b.drain_ev = evtimer_new(b.base, bench_on_drain, &b)) == NULL ||
	    (b.sigint_ev = evsignal_new(b.base, SIGINT, bench_on_stop,
	    &b)) == NULL || event_add(b.sigint_ev, NULL) == -1) {
		fprintf(stderr, "dsd-bench: out of memory\n");
		return 1;
	}
	/* Connection i starts at address i, round robin. */
	for (i = 0; i < b.nconns; i++) {
		b.conns[i].b = &b;
		b.conns[i].addr = (size_t)i % b.naddrs;
		if ((b.conns[i].retry_ev = evtimer_new(b.base, bench_on_retry,
		    &b.conns[i])) == NULL) {
			fprintf(stderr, "dsd-bench: out of memory\n");
			return 1;
		}
	}
	for (i = 0; i < b.nconns && b.phase == PH_CONNECT; i++)
		bench_connect(&b.conns[i]);
	if (b.phase == PH_CONNECT)
		event_base_dispatch(b.base);
	if (b.phase == PH_RUN || b.inflight > 0) {
		/* Stopped with calls out: give them a moment. */
		tv.tv_sec = 10;
		tv.tv_usec = 0;
		evtimer_add(b.drain_ev, &tv);
		b.stopping = 1;
		if (b.inflight > 0)
			event_base_dispatch(b.base);
	}
	if (b.start == 0) {
		rv = BENCH_NOCONN;
		goto out;
	}
	event_del(b.tick_ev);
	bench_report(&b);
	if (b.conns_lost > 0 || b.completed != b.ok)
		rv = 1;
out:
	for (i = 0; i < b.nconns; i++) {
		grpcc_close(b.conns[i].conn);
		if (b.conns[i].retry_ev != NULL)
			event_free(b.conns[i].retry_ev);
	}
	while (b.free_calls != NULL) {
		struct bench_call	*c = b.free_calls;

		b.free_calls = c->next;
		free(c);
	}
	event_free(b.tick_ev);
	event_free(b.stop_ev);
	event_free(b.drain_ev);
	event_free(b.sigint_ev);
	event_base_free(b.base);
	free(b.conns);
	free(b.value);
	free(b.versions);
	free(b.keybuf);
	kvc_addrs_free(b.addrs);
	SSL_CTX_free(b.tls);
	mpz_clear(b.basekey);
	mpz_clear(b.tmp);
	return rv;
}
