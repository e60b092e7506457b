/*
 * counter: Gossip Glomers challenge 4, a grow-only counter on seq-kv
 * (../shared/docs/maelstrom.md, sections 3 and 5.4); negative deltas work
 * the same way, so it also serves the pn-counter workload.
 *
 * Each node owns the seq-kv key named by its node id, holding the sum of
 * the deltas its clients gave it.  Only that node writes the key, so a
 * plain write of the new total is enough, and the node knows the key's
 * value without reading it.  An add is acknowledged only once a write
 * that includes it has succeeded, so every acknowledged add is in seq-kv.
 * One write is in flight at a time; adds that arrive meanwhile go out
 * together in the next one.  A write that times out is retried with the
 * current total: writes from one node reach seq-kv in the order sent
 * (section 4), so the last one sent is the one that stays.  An add whose
 * write has not succeeded within --add-timeout is answered with error 13
 * (indefinite): its delta stays in the total and is written by a later
 * write, so "maybe" is the truth.
 *
 * A read must see every add acknowledged before it began, but seq-kv may
 * serve this node a stale version.  A write moves this node's view to the
 * newest version (section 3), so a read first writes a fresh value to the
 * node's private fence key, then reads the other nodes' keys and adds its
 * own total.  Any add acknowledged before the read arrived was written
 * before the fence, so the read sees it.  Services are never partitioned
 * away, only slow, so partitions between nodes change nothing here.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "maelstrom/maelstrom.h"
#include "core/xmalloc.h"

#define CTR_SERVICE	"seq-kv"
/* How often pending adds are checked against --add-timeout. */
#define CTR_TICK_MS	50
/* Pause before retrying a write that seq-kv refused (not a timeout). */
#define CTR_RETRY_MS	100

/* An add waiting for the write that includes it. */
struct ctr_add {
	struct mael_msg	*req;
	uint64_t	 seq;
};

struct ctr_state {
	int		 kv_ms, add_ms;

	struct mael	*m;
	json_t		*key;		/* our node id */
	json_t		*fence_key;

	json_int_t	 total;		/* every delta accepted */
	uint64_t	 total_seq;	/* seq of the last delta accepted */
	json_int_t	 stored;	/* last total known to be in seq-kv */
	uint64_t	 stored_seq;
	int		 unsure;	/* a write since then timed out */

	int		 writing;	/* one write in flight */
	json_int_t	 writing_total;
	uint64_t	 writing_seq;
	int		 retry_wait;	/* the retry timer is pending */

	struct ctr_add	*adds;		/* FIFO: adds[head .. len) */
	size_t		 head, len, cap;

	json_int_t	 fence;		/* last fence value written */

	struct event	*tick_ev;
	struct event	*retry_ev;
};

/* A read in progress. */
struct ctr_read {
	struct ctr_state *s;
	struct mael_msg	*req;
	size_t		 pending;	/* key reads outstanding */
	json_int_t	 sum;
	int		 failed;
};

static const struct flag ctr_flags[] = {
	{ "kv-timeout", FLAG_INT, "MS", "1000", 10, 4000,
	  "give up on one seq-kv request after this long" },
	{ "add-timeout", FLAG_INT, "MS", "4000", 10, 4400,
	  "answer an add not yet written by then with error 13" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static void	ctr_write(struct ctr_state *);

/* Acknowledge every waiting add that seq-kv now holds. */
static void
ctr_ack(struct ctr_state *s)
{
	struct ctr_add	*a;

	while (s->head < s->len && s->adds[s->head].seq <= s->stored_seq) {
		a = &s->adds[s->head++];
		mael_reply(s->m, a->req, json_pack("{s:s}", "type", "add_ok"));
		mael_msg_release(a->req);
	}
	if (s->head == s->len)
		s->head = s->len = 0;
}

static void
ctr_on_write(struct mael *m, struct mael_msg *reply, void *arg)
{
	struct ctr_state	*s = arg;
	struct timeval		 tv = { 0, CTR_RETRY_MS * 1000 };
	int			 code = -1;

	s->writing = 0;
	if (reply != NULL && (code = mael_msg_error_code(reply)) == -1) {
		s->stored = s->writing_total;
		s->stored_seq = s->writing_seq;
		s->unsure = 0;
		ctr_ack(s);
		ctr_write(s);
		return;
	}
	s->unsure = 1;
	if (reply == NULL) {
		log_info("counter: write of %lld timed out, retrying",
		    (long long)s->writing_total);
		ctr_write(s);
		return;
	}
	log_warnx("counter: write of %lld refused (%s), retrying",
	    (long long)s->writing_total, mael_code_name(code));
	s->retry_wait = 1;
	evtimer_add(s->retry_ev, &tv);
}

/* Write the total if seq-kv may lack something; one write at a time. */
static void
ctr_write(struct ctr_state *s)
{
	json_t	*v;
	int	 rv;

	if (s->writing || s->retry_wait || s->total_seq == s->stored_seq)
		return;
	if (s->total == s->stored && !s->unsure) {
		/* Deltas of 0, or ones that cancel: seq-kv already holds
		 * this total. */
		s->stored_seq = s->total_seq;
		ctr_ack(s);
		return;
	}
	if ((v = json_integer(s->total)) == NULL)
		rv = -1;
	else
		rv = mael_kv_write(s->m, CTR_SERVICE, s->key, v, s->kv_ms,
		    ctr_on_write, s);
	json_decref(v);
	if (rv == -1) {
		struct timeval	tv = { 0, CTR_RETRY_MS * 1000 };

		log_warnx("counter: cannot send a write; retrying");
		s->retry_wait = 1;
		evtimer_add(s->retry_ev, &tv);
		return;
	}
	s->writing = 1;
	s->writing_total = s->total;
	s->writing_seq = s->total_seq;
}

static void
ctr_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct ctr_state	*s = arg;

	s->retry_wait = 0;
	ctr_write(s);
}

/* Answer adds that have waited too long; their deltas stay. */
static void
ctr_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctr_state	*s = arg;
	struct ctr_add		*a;
	uint64_t		 now = mael_now_ms();

	while (s->head < s->len &&
	    now - s->adds[s->head].req->recv_ms >= (uint64_t)s->add_ms) {
		a = &s->adds[s->head++];
		mael_reply_error(s->m, a->req, MAEL_CRASH,
		    "not yet written to %s; it may still be", CTR_SERVICE);
		mael_msg_release(a->req);
	}
	if (s->head == s->len)
		s->head = s->len = 0;
}

static void
ctr_add(struct mael *m, struct mael_msg *msg, void *state)
{
	struct ctr_state	*s = state;
	struct ctr_add		*n;
	json_t			*d = json_object_get(msg->body, "delta");
	size_t			 cap;

	if (!json_is_integer(d)) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "add needs an integer delta");
		return;
	}
	if (s->len == s->cap) {
		if (s->head > 0) {
			memmove(s->adds, s->adds + s->head,
			    (s->len - s->head) * sizeof *s->adds);
			s->len -= s->head;
			s->head = 0;
		} else {
			cap = s->cap == 0 ? 64 : s->cap * 2;
			if ((n = reallocarray(s->adds, cap,
			    sizeof *n)) == NULL) {
				/* Not counted: definitely not done. */
				mael_reply_error(m, msg,
				    MAEL_TEMPORARILY_UNAVAILABLE,
				    "out of memory");
				return;
			}
			s->adds = n;
			s->cap = cap;
		}
	}
	s->total += json_integer_value(d);
	s->total_seq++;
	s->adds[s->len].req = mael_msg_hold(msg);
	s->adds[s->len].seq = s->total_seq;
	s->len++;
	ctr_write(s);
}

static void
ctr_read_done(struct ctr_read *r)
{
	struct ctr_state	*s = r->s;

	if (r->failed)
		mael_reply_error(s->m, r->req, MAEL_TEMPORARILY_UNAVAILABLE,
		    "could not read %s", CTR_SERVICE);
	else
		mael_reply(s->m, r->req, json_pack("{s:s, s:I}", "type",
		    "read_ok", "value", r->sum + s->stored));
	mael_msg_release(r->req);
	free(r);
}

static void
ctr_on_key(struct mael *m, struct mael_msg *reply, void *arg)
{
	struct ctr_read	*r = arg;
	json_t		*v;

	if (reply == NULL)
		r->failed = 1;
	else if (mael_msg_error_code(reply) == MAEL_KEY_DOES_NOT_EXIST)
		;		/* that node has counted nothing yet */
	else if (json_is_integer(v = json_object_get(reply->body, "value")))
		r->sum += json_integer_value(v);
	else
		r->failed = 1;
	if (--r->pending == 0)
		ctr_read_done(r);
}

static void
ctr_on_fence(struct mael *m, struct mael_msg *reply, void *arg)
{
	struct ctr_read		*r = arg;
	struct ctr_state	*s = r->s;
	const char *const	*ids;
	const char		*self = mael_node_id(m);
	json_t			*key;
	size_t			 i, n;

	if (reply == NULL || mael_msg_error_code(reply) != -1) {
		r->failed = 1;
		ctr_read_done(r);
		return;
	}
	/* Count ourselves as pending until every read is sent, so a read
	 * that fails to send cannot finish r early. */
	r->pending = 1;
	ids = mael_node_ids(m, &n);
	for (i = 0; i < n; i++) {
		if (strcmp(ids[i], self) == 0)
			continue;
		if ((key = json_string(ids[i])) == NULL ||
		    mael_kv_read(m, CTR_SERVICE, key, s->kv_ms, ctr_on_key,
		    r) == -1)
			r->failed = 1;
		else
			r->pending++;
		json_decref(key);
	}
	if (--r->pending == 0)
		ctr_read_done(r);
}

static void
ctr_read(struct mael *m, struct mael_msg *msg, void *state)
{
	struct ctr_state	*s = state;
	struct ctr_read		*r;
	json_t			*v;
	size_t			 n;

	mael_node_ids(m, &n);
	if ((r = calloc(1, sizeof *r)) == NULL) {
		mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE,
		    "out of memory");
		return;
	}
	r->s = s;
	r->req = mael_msg_hold(msg);
	if (n == 1) {
		ctr_read_done(r);	/* nobody else counts */
		return;
	}
	/* A new value each time: a write that changes nothing might not
	 * count as a write to seq-kv. */
	if ((v = json_integer(++s->fence)) == NULL ||
	    mael_kv_write(m, CTR_SERVICE, s->fence_key, v, s->kv_ms,
	    ctr_on_fence, r) == -1) {
		r->failed = 1;
		ctr_read_done(r);
	}
	json_decref(v);
}

static int
ctr_init(struct dsd *d, void **statep)
{
	struct ctr_state	*s;

	s = xcalloc(1, sizeof *s);
	s->kv_ms = (int)flags_int(d, "kv-timeout");
	s->add_ms = (int)flags_int(d, "add-timeout");
	*statep = s;
	return 0;
}

static int
ctr_joined(struct mael *m, void *state)
{
	struct ctr_state	*s = state;
	struct timeval		 tv = { 0, CTR_TICK_MS * 1000 };

	s->m = m;
	if ((s->key = json_string(mael_node_id(m))) == NULL ||
	    (s->fence_key = json_sprintf("fence-%s", mael_node_id(m))) == NULL)
		return -1;
	s->tick_ev = event_new(mael_base(m), -1, EV_PERSIST, ctr_on_tick, s);
	s->retry_ev = evtimer_new(mael_base(m), ctr_on_retry, s);
	if (s->tick_ev == NULL || s->retry_ev == NULL ||
	    event_add(s->tick_ev, &tv) == -1)
		return -1;
	return 0;
}

static void
ctr_free(void *state)
{
	struct ctr_state	*s = state;
	size_t			 i;

	for (i = s->head; i < s->len; i++)
		mael_msg_release(s->adds[i].req);
	free(s->adds);
	if (s->tick_ev != NULL)
		event_free(s->tick_ev);
	if (s->retry_ev != NULL)
		event_free(s->retry_ev);
	json_decref(s->key);
	json_decref(s->fence_key);
	free(s);
}

static const struct mael_handler ctr_handlers[] = {
	{ "add",	ctr_add },
	{ "read",	ctr_read },
	{ NULL,		NULL }
};

const struct mode mode_counter = {
	.name = "counter",
	.summary = "Maelstrom g-counter and pn-counter on seq-kv "
	    "(challenge 4)",
	.kind = MODE_MAELSTROM,
	.groups = mael_flag_groups,
	.flags = ctr_flags,
	.init = ctr_init,
	.handlers = ctr_handlers,
	.joined = ctr_joined,
	.free = ctr_free,
};
