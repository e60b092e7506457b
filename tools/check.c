/*
 * dsd-cli check: every API to every result code, a stress run over many
 * keys with many calls in flight, and a contention test on one key; see
 * check.h and dsd-cli(1).
 *
 * Key layout from BASE: +1 to +9 for the API battery, +15 for the
 * contention key, +16 onwards for the stress run.  Each run first deletes
 * whatever an earlier, interrupted run left in its range.
 *
 * Calls go through kvcall.h, retried with their session when the
 * transport leaves their outcome open.  Every call that may be in flight
 * at the same time has a lane (client id) of its own, because the server
 * remembers one (seq, reply) per client id: a stress call hands its lane
 * to the call that takes its place, and each contention participant has
 * one.  A retry returns the first reply, so it is checked and counted
 * like any reply: it is never counted twice, and a wrong answer is still
 * wrong.
 *
 * With -o json the TAP lines become JSON lines (cliout.h): one object per
 * test with its "result", then one with the counts and a "status"; the
 * comments go to standard error as notes.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "cliout.h"
#include "kvcall.h"
#include "kvtool.h"

#define CHK_NCONN	2	/* calls alternate between connections */
#define CHK_STRESS_OFF	16	/* first stress key, from BASE */
#define CHK_CONTEND_OFF	15
#define CHK_MAX_PARTS	16	/* contention participants */
#define CHK_ATTEMPTS	64	/* testAndSet calls per participant */
#define CHK_SHOW	5	/* mismatches shown per test */

struct chk {
	struct event_base	*base;
	const char		*addr;		/* as given to -a */
	struct kvc_pool		*pool;
	struct kvc_lane		*lanes;		/* one per call in flight */
	size_t			 nlanes;
	/* A call got no answer within the retry time: the rest is moot. */
	int			 lost;
	int			 lost_status;	/* gRPC status of the loss */
	char			*lost_msg;
	int			 answered;	/* some call got a reply */
	mpz_t			 basekey;
	char			*basestr;
	long			 nkeys;
	int			 concurrency;
	int			 shared;
	mpz_t			 sharedkey;
	int64_t			 t0;
	int			 passed, failed;
	long			 next_conn;
	long			 successes;	/* contention; -1: not run */
};

/* One test's mismatches: a count and the first few, described. */
struct chk_bad {
	long	 n;
	char	*show[CHK_SHOW];
};

/* A key's wire form. */
struct chk_key {
	uint8_t	*p;
	size_t	 len;
};

static void
chk_bad_add(struct chk_bad *b, const char *fmt, ...)
{
	va_list	ap;

	if (b->n < CHK_SHOW) {
		va_start(ap, fmt);
		if (vasprintf(&b->show[b->n], fmt, ap) == -1)
			b->show[b->n] = NULL;
		va_end(ap);
	}
	b->n++;
}

static void
chk_bad_clear(struct chk_bad *b)
{
	long	i;

	for (i = 0; i < b->n && i < CHK_SHOW; i++)
		free(b->show[i]);
	memset(b, 0, sizeof *b);
}

/*
 * A test's JSON line: its name, "ok", "not ok" or "skipped", and why not
 * with the first mismatches.  A line that cannot be written is said on
 * standard error; the counts stay right.
 */
static void
chk_json(const char *name, const char *result, const char *why,
    const struct chk_bad *b)
{
	json_t	*o, *details = NULL;
	long	 i;

	if (b != NULL && b->n > 0) {
		details = json_array();
		for (i = 0; i < b->n && i < CHK_SHOW && details != NULL; i++)
			if (json_array_append_new(details,
			    json_string(b->show[i] != NULL ? b->show[i] :
			    "(out of memory describing it)")) == -1) {
				json_decref(details);
				details = NULL;
			}
	}
	o = cliout_object(NULL);
	if (json_object_update_new(o, json_pack("{s:s, s:s, s:s*, s:o*, "
	    "s:o*}", "test", name, "result", result, "why", why,
	    "mismatches", b != NULL && b->n > 0 ? json_integer(b->n) : NULL,
	    "details", details)) == -1) {
		json_decref(o);
		o = NULL;
	}
	if (cliout_print(o) == -1)
		cliout_note("check: %s: %s (cannot write its JSON line)", name,
		    result);
}

/* Print a comment: a TAP comment, or a note beside the JSON lines. */
static void
chk_comment(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
chk_comment(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (cliout_json())
		cliout_note("check: %s", s != NULL ? s : "(out of memory)");
	else {
		printf("# %s\n", s != NULL ? s : "(out of memory)");
		fflush(stdout);
	}
	free(s);
}

static void
chk_ok(struct chk *chk, const char *name)
{
	chk->passed++;
	if (cliout_json()) {
		chk_json(name, "ok", NULL, NULL);
		return;
	}
	printf("ok - %s\n", name);
	fflush(stdout);
}

/* A failed test, with its mismatches listed under it. */
static void
chk_not_ok(struct chk *chk, const char *name, const char *why,
    struct chk_bad *b)
{
	long	i;

	chk->failed++;
	if (cliout_json()) {
		chk_json(name, "not ok", why, b);
		return;
	}
	printf("not ok - %s: %s\n", name, why);
	if (b != NULL) {
		for (i = 0; i < b->n && i < CHK_SHOW; i++)
			printf("#   %s\n", b->show[i] != NULL ? b->show[i] :
			    "(out of memory describing it)");
		if (b->n > CHK_SHOW)
			printf("#   ... and %ld more\n", b->n - CHK_SHOW);
	}
	fflush(stdout);
}

static void
chk_skip(struct chk *chk, const char *name)
{
	chk->failed++;
	if (cliout_json()) {
		chk_json(name, "skipped", "the connection was lost", NULL);
		return;
	}
	printf("not ok - %s # skipped: the connection was lost\n", name);
	fflush(stdout);
}

/* The key BASE+off (or the shared key for off < 0). */
static int
chk_key(struct chk *chk, long off, struct chk_key *k)
{
	mpz_t	v;
	size_t	n;

	mpz_init(v);
	if (off < 0)
		mpz_set(v, chk->sharedkey);
	else
		mpz_add_ui(v, chk->basekey, (unsigned long)off);
	n = kvt_key_bytes(v, NULL, 0);
	if ((k->p = malloc(n)) == NULL) {
		mpz_clear(v);
		return -1;
	}
	k->len = kvt_key_bytes(v, k->p, n);
	mpz_clear(v);
	return 0;
}

/* The stress data of key index i at generation g; malloc'ed. */
static char *
chk_data(struct chk *chk, long i, int g)
{
	char	*s;

	if (asprintf(&s, "check base=%s key=+%ld gen=%d", chk->basestr, i,
	    g) == -1)
		return NULL;
	return s;
}

/* Why the run lost the server; the first such message is kept. */
static const char *
chk_lost_msg(struct chk *chk)
{
	return chk->lost_msg != NULL ? chk->lost_msg : "out of memory";
}

/*
 * A call failed with a transport status after its retries: the server
 * (every address given) could not be reached within the retry time.
 */
static void
chk_lose(struct chk *chk, const struct kvc_result *r)
{
	const char	*msg = r->message != NULL ? r->message : "";
	char		 tail[80] = "";
	int		 rv;

	if (chk->lost)
		return;
	chk->lost = 1;
	chk->lost_status = r->status;
	if (r->attempts > 1)
		snprintf(tail, sizeof tail, " (%d attempts in %lld ms)",
		    r->attempts, (long long)r->elapsed_ms);
	if (r->never_up)
		rv = asprintf(&chk->lost_msg, "cannot connect to %s: %s%s",
		    r->addr, msg, tail);
	else if (r->conn_failed)
		rv = asprintf(&chk->lost_msg, "connection lost to %s: %s%s",
		    r->addr, msg, tail);
	else
		rv = asprintf(&chk->lost_msg, "%s answered %s%s%s%s", r->addr,
		    kvt_grpc_code_name(r->status), msg[0] != '\0' ? ": " : "",
		    msg, tail);
	if (rv == -1)
		chk->lost_msg = NULL;
}

/* Notes of the pool (a connection lost, a move): comments. */
static void
chk_note(void *arg, const char *msg)
{
	chk_comment("%s", msg);
}

/* One call's outcome, copied out of the pool's callback. */
struct chk_call {
	struct chk	*chk;
	int		 done;
	int		 status;
	char		*message;
	struct kvt_reply reply;
	int		 decoded;
	struct kvc_lane	*lane;		/* lent to the next call when done */
	void		*arg;		/* the async runner's */
	long		 i;
	void		(*next)(struct chk_call *);
};

static void
chk_call_done(void *arg, const struct kvc_result *r)
{
	struct chk_call	*c = arg;

	c->done = 1;
	c->status = r->status;
	if (r->message != NULL)
		c->message = strdup(r->message);
	if (r->status == KVT_GRPC_OK) {
		c->chk->answered = 1;
		if (kvt_reply_decode(r->reply, r->len, &c->reply) == 0)
			c->decoded = 1;
		else {
			c->status = -1;
			free(c->message);
			c->message = strdup("the reply is not a kvdb Reply");
		}
	} else if (kvc_retryable(KVC_RETRY_TRANSPORT, r->status))
		chk_lose(c->chk, r);
	if (c->next != NULL)
		c->next(c);
}

/* Free what the call holds; its lane is kept for the next one. */
static void
chk_call_clear(struct chk_call *c)
{
	struct kvc_lane	*lane = c->lane;

	if (c->decoded)
		kvt_reply_free(&c->reply);
	free(c->message);
	memset(c, 0, sizeof *c);
	c->lane = lane;
}

/* Describe a call that got no kvdb reply; malloc'ed. */
static char *
chk_noreply(const struct chk_call *c)
{
	char	*s;

	if (asprintf(&s, "no reply: %s%s%s", c->status == -1 ? "bad reply" :
	    kvt_grpc_code_name(c->status), c->message != NULL ? ": " : "",
	    c->message != NULL ? c->message : "") == -1)
		return NULL;
	return s;
}

/*
 * Start an operation on the call's lane, on the next connection slot;
 * -1 if memory ran out.  Calls alternate between the slots, so both
 * connections carry load.
 */
static int
chk_start(struct chk *chk, const struct store_op *op, struct chk_call *c)
{
	uint8_t	*req;
	size_t	 len;
	int	 rv;

	c->chk = chk;
	if ((req = kvt_op_pack(op, &len)) == NULL)
		return -1;
	rv = kvc_call(chk->pool, (int)(chk->next_conn++ % CHK_NCONN), c->lane,
	    kvt_op_path(op->type), req, len, KVC_RETRY_TRANSPORT,
	    chk_call_done, c);
	free(req);
	return rv;
}

/* Describe a value, or its absence; malloc'ed. */
static char *
chk_describe(int status, int has, int64_t version, int64_t ts,
    const uint8_t *data, size_t len)
{
	const char	*name = kvt_status_name(status);
	char		*d = NULL, *s;
	int		 rv;

	if (!has)
		rv = asprintf(&s, "%s, no value", name != NULL ? name : "?");
	else {
		d = kvt_data_format(data, len);
		rv = asprintf(&s, "%s, version %lld, timestamp %lld, data %s",
		    name != NULL ? name : "?", (long long)version,
		    (long long)ts, d != NULL ? d : "?");
	}
	free(d);
	return rv == -1 ? NULL : s;
}

/* What a reply should be. */
struct chk_expect {
	int		 status;
	int		 has;
	int64_t		 version;
	int64_t		 timestamp;
	const uint8_t	*data;
	size_t		 len;
};

/* Whether the reply is as expected; if not, *why says how (malloc'ed). */
static int
chk_match(const struct chk_call *c, const struct chk_expect *e, char **why)
{
	const struct kvt_reply	*r = &c->reply;
	char			*want, *got;

	*why = NULL;
	if (!c->decoded) {
		*why = chk_noreply(c);
		return 0;
	}
	if (r->status == e->status && r->has_value == e->has &&
	    (!e->has || (r->version == e->version &&
	    r->timestamp == e->timestamp && r->datalen == e->len &&
	    (e->len == 0 || memcmp(r->data, e->data, e->len) == 0))))
		return 1;
	want = chk_describe(e->status, e->has, e->version, e->timestamp,
	    e->data, e->len);
	got = chk_describe(r->status, r->has_value, r->version, r->timestamp,
	    r->data, r->datalen);
	if (asprintf(why, "expected %s; got %s", want != NULL ? want : "?",
	    got != NULL ? got : "?") == -1)
		*why = NULL;
	free(want);
	free(got);
	return 0;
}

/* Run one operation to its end, alone in flight: on the first lane. */
static void
chk_sync(struct chk *chk, const struct store_op *op, struct chk_call *c)
{
	memset(c, 0, sizeof *c);
	c->lane = &chk->lanes[0];
	if (chk_start(chk, op, c) == -1) {
		c->done = 1;
		c->status = KVT_GRPC_UNAVAILABLE;
		c->message = strdup("could not start the call");
		return;
	}
	while (!c->done)
		if (event_base_loop(chk->base, EVLOOP_ONCE) == -1)
			break;
}

/* One step of the API battery: an operation and the reply it must get. */
static void
chk_step(struct chk *chk, const char *name, const struct store_op *op,
    const struct chk_expect *e)
{
	struct chk_call	 c;
	char		*why;

	if (chk->lost) {
		chk_skip(chk, name);
		return;
	}
	chk_sync(chk, op, &c);
	if (chk_match(&c, e, &why))
		chk_ok(chk, name);
	else if (chk->lost)
		chk_not_ok(chk, name, chk_lost_msg(chk), NULL);
	else
		chk_not_ok(chk, name, why != NULL ? why : "mismatch", NULL);
	free(why);
	chk_call_clear(&c);
}

#define OP(t, k)	{ .type = (t), .key = (k).p, .keylen = (k).len }
#define DATA(s)		(const uint8_t *)(s), sizeof(s) - 1

/* Every API to every result code, with versions and data checked. */
static void
chk_api(struct chk *chk)
{
	struct chk_key		 k, k2, pad;
	struct store_op		 op;
	struct chk_expect	 e;
	uint8_t			*big = NULL, bin[] = { 0, 1, 0xff, 0, 0x80 };
	size_t			 i, biglen = 200000;
	int64_t			 t = chk->t0;

	if (chk_key(chk, 1, &k) == -1 || chk_key(chk, 2, &k2) == -1 ||
	    (big = malloc(biglen)) == NULL) {
		chk_not_ok(chk, "API battery", "out of memory", NULL);
		free(big);
		return;
	}
	for (i = 0; i < biglen; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);

	op = (struct store_op)OP(STORE_OP_GET, k);
	e = (struct chk_expect){ .status = STORE_ERROR };
	chk_step(chk, "get of an absent key: ERROR, no value", &op, &e);
	op.type = STORE_OP_DEL;
	chk_step(chk, "del of an absent key: ERROR, no value", &op, &e);
	op = (struct store_op)OP(STORE_OP_DELVERSION, k);
	op.version = 1;
	e.status = STORE_ERROR_NE;
	chk_step(chk, "delv of an absent key: ERROR_NE, no value", &op, &e);
	op = (struct store_op)OP(STORE_OP_TESTANDSET, k);
	op.version = 1;
	op.timestamp = t;
	op.data = (const uint8_t *)"nope";
	op.datalen = 4;
	chk_step(chk, "tas of an absent key: ERROR_NE, no value", &op, &e);

	op = (struct store_op)OP(STORE_OP_SET, k);
	op.timestamp = t + 1;
	op.data = (const uint8_t *)"alpha";
	op.datalen = 5;
	e = (struct chk_expect){ .status = STORE_SUCCESS };
	chk_step(chk, "set of an absent key: SUCCESS, no value", &op, &e);
	op.timestamp = t + 2;
	op.data = (const uint8_t *)"beta";
	op.datalen = 4;
	e = (struct chk_expect){ STORE_ERROR, 1, 1, t + 1, DATA("alpha") };
	chk_step(chk, "set of a present key: ERROR with the current value, "
	    "unchanged", &op, &e);
	op = (struct store_op)OP(STORE_OP_GET, k);
	e.status = STORE_SUCCESS;
	chk_step(chk, "get of a present key: SUCCESS, version 1", &op, &e);

	op = (struct store_op)OP(STORE_OP_TESTANDSET, k);
	op.version = 2;
	op.timestamp = t + 3;
	op.data = (const uint8_t *)"wrong";
	op.datalen = 5;
	e = (struct chk_expect){ STORE_ERROR_WV, 1, 1, t + 1, DATA("alpha") };
	chk_step(chk, "tas with a wrong version: ERROR_WV with the current "
	    "value", &op, &e);
	op.version = 1;
	op.data = (const uint8_t *)"gamma";
	e.status = STORE_SUCCESS;
	chk_step(chk, "tas with the right version: SUCCESS with the previous "
	    "value", &op, &e);
	op = (struct store_op)OP(STORE_OP_GET, k);
	e = (struct chk_expect){ STORE_SUCCESS, 1, 2, t + 3, DATA("gamma") };
	chk_step(chk, "get after tas: version 2, new timestamp and data",
	    &op, &e);

	op = (struct store_op)OP(STORE_OP_DELVERSION, k);
	op.version = 1;
	e.status = STORE_ERROR_WV;
	chk_step(chk, "delv with a wrong version: ERROR_WV with the current "
	    "value", &op, &e);
	op.version = 2;
	e.status = STORE_SUCCESS;
	chk_step(chk, "delv with the right version: SUCCESS with the removed "
	    "value", &op, &e);
	op = (struct store_op)OP(STORE_OP_GET, k);
	e = (struct chk_expect){ .status = STORE_ERROR };
	chk_step(chk, "get after delv: ERROR, no value", &op, &e);
	op = (struct store_op)OP(STORE_OP_DELVERSION, k);
	op.version = 2;
	e.status = STORE_ERROR_NE;
	chk_step(chk, "delv again: ERROR_NE", &op, &e);

	op = (struct store_op)OP(STORE_OP_SET, k);
	op.timestamp = t + 4;
	op.data = bin;
	op.datalen = sizeof bin;
	e = (struct chk_expect){ .status = STORE_SUCCESS };
	chk_step(chk, "set after a delete: SUCCESS", &op, &e);
	op = (struct store_op)OP(STORE_OP_DEL, k);
	e = (struct chk_expect){ STORE_SUCCESS, 1, 1, t + 4, bin, sizeof bin };
	chk_step(chk, "del of a present key: SUCCESS with the removed value, "
	    "version 1 again, binary data intact", &op, &e);
	e = (struct chk_expect){ .status = STORE_ERROR };
	chk_step(chk, "del again: ERROR, no value", &op, &e);

	/* The same number in a longer form is the same key. */
	if ((pad.p = malloc(k2.len + 3)) == NULL) {
		chk_not_ok(chk, "padded key", "out of memory", NULL);
		goto out;
	}
	memset(pad.p, k2.len > 0 && (k2.p[0] & 0x80) ? 0xff : 0x00, 3);
	memcpy(pad.p + 3, k2.p, k2.len);
	pad.len = k2.len + 3;
	op = (struct store_op)OP(STORE_OP_SET, pad);
	op.timestamp = t + 5;
	op.data = (const uint8_t *)"";
	op.datalen = 0;
	e = (struct chk_expect){ .status = STORE_SUCCESS };
	chk_step(chk, "set with a sign-padded key: SUCCESS", &op, &e);
	op = (struct store_op)OP(STORE_OP_GET, k2);
	e = (struct chk_expect){ STORE_SUCCESS, 1, 1, t + 5, NULL, 0 };
	chk_step(chk, "get with the minimal form of that key finds it, "
	    "with empty data", &op, &e);
	op = (struct store_op)OP(STORE_OP_TESTANDSET, k2);
	op.version = 1;
	op.timestamp = t + 6;
	op.data = big;
	op.datalen = biglen;
	chk_step(chk, "tas with 200000 bytes of data: SUCCESS", &op, &e);
	op = (struct store_op)OP(STORE_OP_DELVERSION, pad);
	op.version = 2;
	e = (struct chk_expect){ STORE_SUCCESS, 1, 2, t + 6, big, biglen };
	chk_step(chk, "delv with the padded key: SUCCESS with the 200000 "
	    "bytes intact", &op, &e);
	free(pad.p);
out:
	free(big);
	free(k.p);
	free(k2.p);
}

/*
 * The stress run: one kind of call over a range of keys, C in flight
 * across the connections, each reply checked as it arrives.
 */
enum chk_kind {
	CHK_CLEAN,	/* del, any answer */
	CHK_INSERT,	/* set gen 1: SUCCESS */
	CHK_UPDATE,	/* tas v1 to gen 2: SUCCESS with gen 1 */
	CHK_READ,	/* get: gen 2, version 2 */
	CHK_DELETE,	/* delv v2: SUCCESS with gen 2 */
	CHK_GONE,	/* get: ERROR */
};

struct chk_phase {
	struct chk	*chk;
	enum chk_kind	 kind;
	long		 first;		/* key offset of index 0 */
	long		 n, next, completed;
	long		 answered, noanswer, removed;
	struct chk_bad	 bad;
	int		 stalled;	/* could not start a call */
};

static void	chk_phase_next(struct chk_call *);

static int64_t
chk_ts(struct chk *chk, long i, int gen)
{
	return chk->t0 + (int64_t)gen * 10000000 + i;
}

/* Start index phase->next on a free lane; 0, or -1 if it could not. */
static int
chk_phase_issue(struct chk_phase *ph, struct kvc_lane *lane)
{
	struct chk	*chk = ph->chk;
	struct chk_call	*c;
	struct chk_key	 k;
	struct store_op	 op;
	char		*data = NULL;
	long		 i = ph->next;
	int		 rv;

	if (chk_key(chk, ph->first + i, &k) == -1)
		return -1;
	memset(&op, 0, sizeof op);
	op.key = k.p;
	op.keylen = k.len;
	switch (ph->kind) {
	case CHK_CLEAN:
		op.type = STORE_OP_DEL;
		break;
	case CHK_INSERT:
		op.type = STORE_OP_SET;
		op.timestamp = chk_ts(chk, i, 1);
		data = chk_data(chk, i, 1);
		break;
	case CHK_UPDATE:
		op.type = STORE_OP_TESTANDSET;
		op.version = 1;
		op.timestamp = chk_ts(chk, i, 2);
		data = chk_data(chk, i, 2);
		break;
	case CHK_READ:
	case CHK_GONE:
		op.type = STORE_OP_GET;
		break;
	case CHK_DELETE:
		op.type = STORE_OP_DELVERSION;
		op.version = 2;
		break;
	}
	if ((op.type == STORE_OP_SET || op.type == STORE_OP_TESTANDSET) &&
	    data == NULL) {
		free(k.p);
		return -1;
	}
	op.data = (const uint8_t *)data;
	op.datalen = data != NULL ? strlen(data) : 0;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		free(k.p);
		free(data);
		return -1;
	}
	c->arg = ph;
	c->i = i;
	c->next = chk_phase_next;
	c->lane = lane;
	rv = chk_start(chk, &op, c);
	free(k.p);
	free(data);
	if (rv == -1) {
		free(c);
		return -1;
	}
	ph->next++;
	return 0;
}

/* Check one reply of a phase. */
static void
chk_phase_verify(struct chk_phase *ph, struct chk_call *c)
{
	struct chk		*chk = ph->chk;
	struct chk_expect	 e;
	char			*data = NULL, *why;
	int			 gen = 0;

	memset(&e, 0, sizeof e);
	switch (ph->kind) {
	case CHK_CLEAN:
		if (c->decoded) {
			ph->answered++;
			if (c->reply.status == STORE_SUCCESS)
				ph->removed++;
			return;
		}
		ph->noanswer++;
		if ((why = chk_noreply(c)) != NULL) {
			chk_bad_add(&ph->bad, "key +%ld: %s",
			    ph->first + c->i, why);
			free(why);
		} else
			chk_bad_add(&ph->bad, "key +%ld: no reply",
			    ph->first + c->i);
		return;
	case CHK_INSERT:
		e.status = STORE_SUCCESS;
		break;
	case CHK_UPDATE:
		gen = 1;
		e.status = STORE_SUCCESS;
		break;
	case CHK_READ:
	case CHK_DELETE:
		gen = 2;
		e.status = STORE_SUCCESS;
		break;
	case CHK_GONE:
		e.status = STORE_ERROR;
		break;
	}
	if (c->decoded)
		ph->answered++;
	else
		ph->noanswer++;
	if (gen != 0) {
		if ((data = chk_data(chk, c->i, gen)) == NULL) {
			chk_bad_add(&ph->bad, "out of memory");
			return;
		}
		e.has = 1;
		e.version = gen;
		e.timestamp = chk_ts(chk, c->i, gen);
		e.data = (const uint8_t *)data;
		e.len = strlen(data);
	}
	if (!chk_match(c, &e, &why))
		chk_bad_add(&ph->bad, "key +%ld: %s", ph->first + c->i,
		    why != NULL ? why : "mismatch");
	free(why);
	free(data);
}

static void
chk_phase_next(struct chk_call *c)
{
	struct chk_phase	*ph = c->arg;
	struct kvc_lane		*lane = c->lane;

	chk_phase_verify(ph, c);
	chk_call_clear(c);
	free(c);
	ph->completed++;
	/*
	 * Keep C in flight, the next call taking over this one's lane (free
	 * now: the pool released it before calling back); after a loss, let
	 * the rest drain.
	 */
	while (ph->next < ph->n && !ph->chk->lost && !ph->stalled) {
		if (chk_phase_issue(ph, lane) == 0)
			break;
		ph->stalled = 1;
	}
}

/* Run a phase to its end; 0 if every reply was right. */
static int
chk_phase_run(struct chk *chk, enum chk_kind kind, long first, long n,
    const char *name)
{
	struct chk_phase	 ph;
	char			*why = NULL;
	long			 i;
	int			 rv = -1;

	if (chk->lost) {
		chk_skip(chk, name);
		return -1;
	}
	memset(&ph, 0, sizeof ph);
	ph.chk = chk;
	ph.kind = kind;
	ph.first = first;
	ph.n = n;
	for (i = 0; i < chk->concurrency && ph.next < n; i++) {
		if (chk_phase_issue(&ph, &chk->lanes[i]) == -1) {
			ph.stalled = 1;
			break;
		}
	}
	/* Every started call completes, answered or failed. */
	while (ph.completed < ph.next)
		if (event_base_loop(chk->base, EVLOOP_ONCE) == -1)
			break;

	if (chk->lost) {
		if (asprintf(&why, "%s; %ld of %ld calls were answered, %ld "
		    "got no answer within the retry time (their outcome is "
		    "unknown), %ld were never sent",
		    chk_lost_msg(chk), ph.answered, n, ph.noanswer,
		    n - ph.next) == -1)
			why = NULL;
		chk_not_ok(chk, name, why != NULL ? why : "connection lost",
		    &ph.bad);
	} else if (ph.stalled || ph.next < n)
		chk_not_ok(chk, name, "could not start every call", &ph.bad);
	else if (ph.bad.n > 0) {
		if (asprintf(&why, "%ld of %ld replies were wrong", ph.bad.n,
		    n) == -1)
			why = NULL;
		chk_not_ok(chk, name, why != NULL ? why : "wrong replies",
		    &ph.bad);
	} else {
		if (kind == CHK_CLEAN && ph.removed > 0)
			chk_comment("removed %ld keys left by an earlier run",
			    ph.removed);
		chk_ok(chk, name);
		rv = 0;
	}
	free(why);
	chk_bad_clear(&ph.bad);
	return rv;
}

/*
 * Contention: participants do testAndSet increments on one key, whose
 * data is always its version in decimal.  A success returns the previous
 * value, which must be the version tried; a wrong version returns a newer
 * value.  At the end the version is 1 plus the successes of everyone.
 */
struct chk_contend;

struct chk_part {
	struct chk_contend	*ct;
	int64_t			 guess;
	int			 left;
	struct chk_call		 call;		/* its lane: the part's own */
};

struct chk_contend {
	struct chk		*chk;
	struct chk_key		 key;
	struct chk_part		 parts[CHK_MAX_PARTS];
	int			 nparts, running;
	long			 successes, wrong_version, noanswer;
	struct chk_bad		 bad;
};

static void	chk_part_done(struct chk_call *);

/* The decimal form of a version, in buf (room for any int64). */
static size_t
chk_vdata(int64_t v, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%lld", (long long)v);
}

static int
chk_part_issue(struct chk_part *p)
{
	struct chk_contend	*ct = p->ct;
	struct store_op		 op;
	char			 buf[32];

	memset(&op, 0, sizeof op);
	op.type = STORE_OP_TESTANDSET;
	op.key = ct->key.p;
	op.keylen = ct->key.len;
	op.version = p->guess;
	op.timestamp = kvt_now_ms();
	op.datalen = chk_vdata(p->guess + 1, buf, sizeof buf);
	op.data = (const uint8_t *)buf;
	chk_call_clear(&p->call);
	p->call.arg = p;
	p->call.next = chk_part_done;
	return chk_start(ct->chk, &op, &p->call);
}

/* Whether a value keeps the invariant: data is the version. */
static int
chk_invariant(const struct kvt_reply *r)
{
	char	buf[32];
	size_t	n;

	n = chk_vdata(r->version, buf, sizeof buf);
	return r->has_value && r->datalen == n &&
	    memcmp(r->data, buf, n) == 0;
}

static void
chk_part_done(struct chk_call *c)
{
	struct chk_part		*p = c->arg;
	struct chk_contend	*ct = p->ct;
	const struct kvt_reply	*r = &c->reply;
	char			*why;

	if (!c->decoded) {
		ct->noanswer++;
		if ((why = chk_noreply(c)) != NULL)
			chk_bad_add(&ct->bad, "tas v%lld: %s",
			    (long long)p->guess, why);
		free(why);
	} else if (r->status == STORE_SUCCESS) {
		if (!r->has_value || r->version != p->guess ||
		    !chk_invariant(r))
			chk_bad_add(&ct->bad, "tas v%lld succeeded but "
			    "returned version %lld", (long long)p->guess,
			    (long long)r->version);
		ct->successes++;
		p->guess++;
	} else if (r->status == STORE_ERROR_WV) {
		ct->wrong_version++;
		if (!r->has_value || r->version <= p->guess ||
		    !chk_invariant(r))
			chk_bad_add(&ct->bad, "tas v%lld: ERROR_WV with "
			    "version %lld, not a newer one with matching "
			    "data", (long long)p->guess,
			    (long long)r->version);
		else
			p->guess = r->version;
	} else
		chk_bad_add(&ct->bad, "tas v%lld: %s", (long long)p->guess,
		    kvt_status_name(r->status) != NULL ?
		    kvt_status_name(r->status) : "unknown status");
	chk_call_clear(c);
	if (--p->left > 0 && !ct->chk->lost && chk_part_issue(p) == 0)
		return;
	ct->running--;
}

static void
chk_contend(struct chk *chk)
{
	struct chk_contend	 ct;
	struct chk_call		 c;
	struct store_op		 op;
	int64_t			 start = 1;
	char			*why = NULL, buf[32];
	const char		*name = "contention: testAndSet increments "
				    "on one key from many calls at once";
	int			 i;

	memset(&ct, 0, sizeof ct);
	ct.chk = chk;
	if (chk->lost) {
		chk_skip(chk, name);
		return;
	}
	if (chk_key(chk, chk->shared ? -1 : CHK_CONTEND_OFF, &ct.key) == -1) {
		chk_not_ok(chk, name, "out of memory", NULL);
		return;
	}

	/* Create it; with --shared another run may have been first. */
	memset(&op, 0, sizeof op);
	op.type = STORE_OP_SET;
	op.key = ct.key.p;
	op.keylen = ct.key.len;
	op.timestamp = kvt_now_ms();
	op.data = (const uint8_t *)"1";
	op.datalen = 1;
	chk_sync(chk, &op, &c);
	if (!c.decoded || (c.reply.status != STORE_SUCCESS &&
	    !(chk->shared && c.reply.status == STORE_ERROR &&
	    chk_invariant(&c.reply)))) {
		why = c.decoded ? chk_describe(c.reply.status,
		    c.reply.has_value, c.reply.version, c.reply.timestamp,
		    c.reply.data, c.reply.datalen) : chk_noreply(&c);
		chk_not_ok(chk, name, chk->lost ? chk_lost_msg(chk) :
		    why != NULL ? why : "set failed", NULL);
		chk_call_clear(&c);
		goto out;
	}
	if (c.reply.status == STORE_ERROR)
		start = c.reply.version;
	chk_call_clear(&c);

	ct.nparts = chk->concurrency < CHK_MAX_PARTS ? chk->concurrency :
	    CHK_MAX_PARTS;
	if (ct.nparts < 2)
		ct.nparts = 2;
	for (i = 0; i < ct.nparts; i++) {
		ct.parts[i].ct = &ct;
		ct.parts[i].guess = start;
		ct.parts[i].left = CHK_ATTEMPTS;
		ct.parts[i].call.lane = &chk->lanes[i];
		if (chk_part_issue(&ct.parts[i]) == 0)
			ct.running++;
		else
			chk_bad_add(&ct.bad, "could not start participant %d",
			    i);
	}
	while (ct.running > 0)
		if (event_base_loop(chk->base, EVLOOP_ONCE) == -1)
			break;
	chk_comment("contention: %d participants, %ld successes, %ld wrong "
	    "versions, %ld without an answer", ct.nparts, ct.successes,
	    ct.wrong_version, ct.noanswer);
	/* For a wrapper that adds up the runs sharing a key. */
	chk->successes = ct.successes;
	if (!cliout_json())
		printf("contention successes: %ld\n", ct.successes);
	if (chk->lost) {
		chk_not_ok(chk, name, chk_lost_msg(chk), &ct.bad);
		goto out;
	}

	memset(&op, 0, sizeof op);
	op.type = STORE_OP_GET;
	op.key = ct.key.p;
	op.keylen = ct.key.len;
	chk_sync(chk, &op, &c);
	if (!c.decoded || c.reply.status != STORE_SUCCESS ||
	    !chk_invariant(&c.reply))
		chk_bad_add(&ct.bad, "final get: not SUCCESS with data equal "
		    "to the version");
	else if (!chk->shared && c.reply.version != 1 + ct.successes)
		chk_bad_add(&ct.bad, "final version %lld, but 1 + %ld "
		    "successes is %ld", (long long)c.reply.version,
		    ct.successes, 1 + ct.successes);
	else if (chk->shared && c.reply.version < start + ct.successes)
		chk_bad_add(&ct.bad, "final version %lld is below the start "
		    "%lld + %ld successes of this run",
		    (long long)c.reply.version, (long long)start,
		    ct.successes);
	if (ct.bad.n == 0 && !chk->shared) {
		/* Leave the range clean for the next run. */
		chk_vdata(c.reply.version, buf, sizeof buf);
		op.type = STORE_OP_DELVERSION;
		op.version = c.reply.version;
		chk_call_clear(&c);
		chk_sync(chk, &op, &c);
		if (!c.decoded || c.reply.status != STORE_SUCCESS)
			chk_bad_add(&ct.bad, "delv of the contention key at "
			    "version %s failed", buf);
	}
	chk_call_clear(&c);
	if (ct.bad.n > 0)
		chk_not_ok(chk, name, chk->lost ? chk_lost_msg(chk) :
		    "invariant broken", &ct.bad);
	else
		chk_ok(chk, name);
out:
	free(why);
	chk_bad_clear(&ct.bad);
	free(ct.key.p);
}

static int
chk_usage(void)
{
	return cliout_usage("usage: dsd-cli [-a addr:port[,addr:port...]] "
	    "[-t timeout-ms] [--retry-time=ms]\n"
	    "           check [--keys N] [--base KEY] [--concurrency C] "
	    "[--shared KEY]");
}

/* What the retries absorbed, when they had something to absorb. */
static void
chk_print_retries(struct chk *chk)
{
	const struct kvc_stats	*st = kvc_pool_stats(chk->pool);

	if (st->retried_calls == 0 && st->moves == 0)
		return;
	printf("# retries: %llu of %llu calls retried (UNKNOWN %llu, "
	    "DEADLINE_EXCEEDED %llu, UNAVAILABLE %llu attempts), %llu "
	    "connection changes, %llu calls out of retry time\n",
	    (unsigned long long)st->retried_calls,
	    (unsigned long long)st->calls,
	    (unsigned long long)st->retries[KVT_GRPC_UNKNOWN],
	    (unsigned long long)st->retries[KVT_GRPC_DEADLINE],
	    (unsigned long long)st->retries[KVT_GRPC_UNAVAILABLE],
	    (unsigned long long)st->moves,
	    (unsigned long long)st->given_up);
}

/* The last JSON line of a run: its counts, parameters and retries. */
static int
chk_summary_json(struct chk *chk, int rv)
{
	const struct kvc_stats	*st = kvc_pool_stats(chk->pool);
	const char		*status;
	char			*shared = NULL;
	json_t			*o;

	if (chk->lost)
		status = kvt_grpc_code_name(chk->lost_status);
	else
		status = rv == CLI_OK ? "PASS" : "FAIL";
	if (chk->shared && (shared = malloc(mpz_sizeinbase(chk->sharedkey,
	    10) + 2)) != NULL)
		mpz_get_str(shared, 10, chk->sharedkey);
	o = cliout_object(status);
	if ((chk->shared && shared == NULL) || json_object_update_new(o,
	    json_pack("{s:i, s:i, s:s, s:I, s:i, s:s*, s:o*, s:{s:I, s:I, "
	    "s:{s:I, s:I, s:I}, s:I, s:I}, s:s*}", "passed", chk->passed,
	    "failed", chk->failed, "base", chk->basestr, "keys",
	    (json_int_t)chk->nkeys, "concurrency", chk->concurrency,
	    "shared", shared, "contention_successes", chk->successes >= 0 ?
	    json_integer(chk->successes) : NULL, "retries", "calls",
	    (json_int_t)st->calls, "retried_calls",
	    (json_int_t)st->retried_calls, "attempts_retried",
	    "UNKNOWN", (json_int_t)st->retries[KVT_GRPC_UNKNOWN],
	    "DEADLINE_EXCEEDED", (json_int_t)st->retries[KVT_GRPC_DEADLINE],
	    "UNAVAILABLE", (json_int_t)st->retries[KVT_GRPC_UNAVAILABLE],
	    "connection_changes", (json_int_t)st->moves,
	    "out_of_retry_time", (json_int_t)st->given_up, "message",
	    chk->lost ? chk_lost_msg(chk) : NULL)) == -1) {
		json_decref(o);
		o = NULL;
	}
	free(shared);
	return cliout_emit(o, rv);
}

/*
 * The end of a run: the retries, the counts, and why it stopped if the
 * server was lost; the exit status.
 */
static int
chk_finish(struct chk *chk)
{
	int	rv;

	if (chk->lost)
		rv = CLI_TRANSPORT;
	else
		rv = chk->failed > 0 ? CLI_ERROR : CLI_OK;
	if (cliout_json())
		return chk_summary_json(chk, rv);
	chk_print_retries(chk);
	printf("%d passed, %d failed\n", chk->passed, chk->failed);
	if (chk->lost)
		cliout_note("check: %s", chk_lost_msg(chk));
	return rv;
}

/* "--name VALUE" or "--name=VALUE"; the value, or NULL if not this. */
static const char *
chk_opt(const char *name, int argc, char **argv, int *i)
{
	size_t	n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int
chk_long(const char *s, long min, long max, long *out)
{
	int64_t	v;

	if (kvt_parse_i64(s, &v) == -1 || v < min || v > max)
		return -1;
	*out = (long)v;
	return 0;
}

int
check_run(struct event_base *base, const struct kvc_config *kcfg,
    const char *addr, int argc, char **argv)
{
	struct chk		 chk;
	struct kvc_config	 cfg;
	const char		*v, *err;
	long			 conc = 100;
	int			 i, rv, base_given = 0;

	memset(&chk, 0, sizeof chk);
	chk.base = base;
	chk.addr = addr;
	chk.nkeys = 1000;
	chk.successes = -1;
	mpz_init(chk.basekey);
	mpz_init(chk.sharedkey);
	rv = CLI_USAGE;
	for (i = 1; i < argc; i++) {
		if ((v = chk_opt("--keys", argc, argv, &i)) != NULL) {
			if (chk_long(v, 1, 100000000, &chk.nkeys) == -1) {
				cliout_fail(rv, "USAGE", "check: --keys is 1 "
				    "to 100000000");
				goto out;
			}
		} else if ((v = chk_opt("--concurrency", argc, argv,
		    &i)) != NULL) {
			if (chk_long(v, 1, 100000, &conc) == -1) {
				cliout_fail(rv, "USAGE", "check: "
				    "--concurrency is 1 to 100000");
				goto out;
			}
		} else if ((v = chk_opt("--base", argc, argv, &i)) != NULL) {
			if (kvt_key_parse_mpz(v, chk.basekey, &err) == -1) {
				cliout_fail(rv, "USAGE", "check: --base: %s",
				    err);
				goto out;
			}
			base_given = 1;
		} else if ((v = chk_opt("--shared", argc, argv, &i)) != NULL) {
			if (kvt_key_parse_mpz(v, chk.sharedkey, &err) == -1) {
				cliout_fail(rv, "USAGE", "check: --shared: %s",
				    err);
				goto out;
			}
			chk.shared = 1;
		} else {
			chk_usage();
			goto out;
		}
	}
	chk.concurrency = (int)conc;
	if (!base_given) {
		/* Disjoint for concurrent runs: they differ in pid. */
		mpz_set_ui(chk.basekey, (unsigned long)getpid());
		mpz_mul_2exp(chk.basekey, chk.basekey, 32);
		mpz_add_ui(chk.basekey, chk.basekey,
		    ((unsigned long)time(NULL) & 0xffff) << 16);
	}
	/* A run that cannot start has failed, as check.h says: exit 1. */
	rv = CLI_ERROR;
	if ((chk.basestr = mpz_get_str(NULL, 10, chk.basekey)) == NULL) {
		cliout_fail(rv, "INTERNAL", "check: out of memory");
		goto out;
	}
	/* A lane per call in flight: the stress run's, or a participant's. */
	chk.nlanes = (size_t)(chk.concurrency > CHK_MAX_PARTS ?
	    chk.concurrency : CHK_MAX_PARTS);
	if ((chk.lanes = calloc(chk.nlanes, sizeof *chk.lanes)) == NULL ||
	    kvc_lanes_init(chk.lanes, chk.nlanes) == -1) {
		cliout_fail(rv, "INTERNAL", "check: cannot make sessions: %s",
		    strerror(errno));
		goto out;
	}
	cfg = *kcfg;
	cfg.nslots = CHK_NCONN;
	cfg.note = chk_note;
	cfg.arg = &chk;
	if ((chk.pool = kvc_pool_new(base, &cfg, &err)) == NULL) {
		cliout_fail(rv, "INTERNAL", "check: %s", err);
		goto out;
	}
	chk.t0 = kvt_now_ms();
	chk_comment("check of %s: keys %s+1 to %s+%ld, %d calls in flight",
	    addr, chk.basestr, chk.basestr, chk.nkeys + CHK_STRESS_OFF - 1,
	    chk.concurrency);

	chk_phase_run(&chk, CHK_CLEAN, 0, chk.nkeys + CHK_STRESS_OFF,
	    "clean the key range");
	if (chk.lost && !chk.answered) {
		/* Nothing to learn from the rest. */
		rv = chk_finish(&chk);
		goto out;
	}
	chk_api(&chk);
	chk_phase_run(&chk, CHK_INSERT, CHK_STRESS_OFF, chk.nkeys,
	    "stress: set every key: SUCCESS");
	chk_phase_run(&chk, CHK_UPDATE, CHK_STRESS_OFF, chk.nkeys,
	    "stress: tas every key at version 1: SUCCESS with the set value");
	chk_phase_run(&chk, CHK_READ, CHK_STRESS_OFF, chk.nkeys,
	    "stress: get every key: version 2 and the tas data");
	chk_phase_run(&chk, CHK_DELETE, CHK_STRESS_OFF, chk.nkeys,
	    "stress: delv every key at version 2: SUCCESS with its value");
	chk_phase_run(&chk, CHK_GONE, CHK_STRESS_OFF, chk.nkeys,
	    "stress: get every key: ERROR, gone");
	chk_contend(&chk);
	rv = chk_finish(&chk);
out:
	kvc_pool_free(chk.pool);
	free(chk.lanes);
	free(chk.lost_msg);
	free(chk.basestr);
	mpz_clear(chk.basekey);
	mpz_clear(chk.sharedkey);
	fflush(stdout);
	return rv;
}
