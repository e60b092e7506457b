/*
 * broadcast: Gossip Glomers challenges 3a to 3e.
 *
 * The overlay is a hub: the first of the sorted node ids.  A leaf that
 * gets a value from a client acknowledges it at once and forwards it to the
 * hub straight away; the hub sends every leaf one batch of what that leaf
 * lacks at most --batch-interval milliseconds after the first of those
 * values reached it.  The topology Maelstrom suggests is acknowledged and
 * ignored.
 *
 * Why a hub: every value has to reach every node, and each delivery to a
 * node costs one message however many values it carries, so the cheapest
 * scheme concentrates values where one message per node per interval can
 * carry all of them.  Leaves rarely hold two values at once (clients spread
 * over the nodes), so batching at the leaves would cost latency and save
 * nearly nothing.  See the broadcast section of README.md for the figures.
 *
 * Reliability: partitions drop messages, so each direction of each
 * hub-leaf link is a stream of values numbered from 1.  A message carries
 * the values from the first one not yet sent, and the cumulative
 * acknowledgement of the opposite stream, so acks ride on traffic that
 * flows anyway; a side that owes an ack for --ack-delay ms and has nothing
 * to send sends the ack alone.  Values not acknowledged within
 * --retry-interval are sent again (go-back-N; adding a value twice is
 * harmless).  While the hub does not acknowledge a leaf, the leaf also
 * sends its own values directly to every other node, so values keep
 * spreading among the nodes that can still talk; after the heal the
 * retries complete every node.
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
#include "core/u64map.h"
#include "core/xmalloc.h"

/* One direction of a link's value stream, as the sender sees it. */
struct bc_out {
	json_int_t	*vals;		/* vals[i] has seq base + i */
	size_t		 len, cap;
	uint64_t	 base;		/* seq of vals[0]; seqs start at 1 */
	uint64_t	 sent;		/* highest seq sent */
	uint64_t	 acked;		/* highest seq acknowledged */
	uint64_t	 progress_ms;	/* last send from idle, or ack advance */
	uint64_t	 flooded;	/* highest seq sent directly to all */
};

struct bc_peer {
	const char	*id;
	struct bc_out	 out;
	uint64_t	 recv;		/* highest contiguous seq received */
	uint64_t	 owed_ms;	/* when an ack became owed, or 0 */
};

struct bc_state {
	int		 batch_ms, retry_ms, ack_delay_ms;
	int		 fixed_clock;

	struct mael	*m;
	int		 is_hub;
	struct bc_peer	*peers;		/* every other node */
	size_t		 npeers;
	struct bc_peer	*hub;		/* NULL on the hub itself */

	struct u64map	*seen;		/* value → non-NULL */
	json_t		*all;		/* every value, in arrival order */

	struct event	*batch_ev;	/* hub: send batches */
	struct event	*maint_ev;	/* every node: retries and acks */
};

static const struct flag bc_flags[] = {
	{ "batch-interval", FLAG_INT, "MS", "290", 1, 60000,
	  "how often the hub sends each node a batch" },
	{ "retry-interval", FLAG_INT, "MS", "3000", 10, 600000,
	  "resend values not acknowledged within this time" },
	{ "batch-clock", FLAG_STRING, "KIND", "first-value", 0, 0,
	  "first-value: a batch leaves the interval after the first value "
	  "waiting; fixed: on a fixed clock" },
	{ "ack-delay", FLAG_INT, "MS", "1500", 1, 600000,
	  "longest wait for traffic to carry an ack before sending it alone" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static void	bc_schedule_batch(struct bc_state *);

static int
bc_init(struct dsd *d, void **statep)
{
	struct bc_state	*s;

	s = xcalloc(1, sizeof *s);
	s->batch_ms = (int)flags_int(d, "batch-interval");
	s->retry_ms = (int)flags_int(d, "retry-interval");
	s->ack_delay_ms = (int)flags_int(d, "ack-delay");
	if (strcmp(flags_str(d, "batch-clock"), "fixed") == 0)
		s->fixed_clock = 1;
	else if (strcmp(flags_str(d, "batch-clock"), "first-value") != 0) {
		log_warnx("--batch-clock must be first-value or fixed");
		free(s);
		return -1;
	}
	if ((s->seen = u64map_new()) == NULL || (s->all = json_array()) == NULL)
		fatalx("broadcast: out of memory");
	*statep = s;
	return 0;
}

static struct bc_peer *
bc_peer_find(struct bc_state *s, const char *id)
{
	size_t	i;

	for (i = 0; i < s->npeers; i++) {
		if (strcmp(s->peers[i].id, id) == 0)
			return &s->peers[i];
	}
	return NULL;
}

/* Append v to a stream; returns -1 if memory ran out. */
static int
bc_out_push(struct bc_out *o, json_int_t v)
{
	json_int_t	*n;
	size_t		 cap;

	if (o->len == o->cap) {
		cap = o->cap == 0 ? 64 : o->cap * 2;
		if ((n = reallocarray(o->vals, cap, sizeof *n)) == NULL)
			return -1;
		o->vals = n;
		o->cap = cap;
	}
	o->vals[o->len++] = v;
	return 0;
}

/* Forget values the receiver has acknowledged. */
static void
bc_out_ack(struct bc_out *o, uint64_t ack, uint64_t now)
{
	size_t	drop;

	if (ack <= o->acked || ack > o->base + o->len - 1)
		return;
	drop = (size_t)(ack - o->base + 1);
	memmove(o->vals, o->vals + drop, (o->len - drop) * sizeof *o->vals);
	o->len -= drop;
	o->base = ack + 1;
	o->acked = ack;
	if (o->sent < ack)
		o->sent = ack;
	o->progress_ms = now;
}

static uint64_t
bc_out_end(const struct bc_out *o)
{
	return o->base + o->len - 1;	/* highest seq queued */
}

/*
 * Send p what it has not been sent, with our ack of its stream.  With
 * force, send even when there is nothing new (an ack alone).
 */
static void
bc_flush(struct bc_state *s, struct bc_peer *p, int force)
{
	struct bc_out	*o = &p->out;
	json_t		*vals, *body;
	uint64_t	 seq, now = mael_now_ms();

	if (o->sent >= bc_out_end(o) && !force)
		return;
	if ((vals = json_array()) == NULL)
		return;
	for (seq = o->sent + 1; seq <= bc_out_end(o); seq++) {
		if (json_array_append_new(vals,
		    json_integer(o->vals[seq - o->base])) == -1) {
			json_decref(vals);
			return;
		}
	}
	body = json_pack("{s:s, s:I, s:o, s:I}", "type", "gossip",
	    "seq", (json_int_t)(o->sent + 1), "values", vals,
	    "ack", (json_int_t)p->recv);
	if (mael_send(s->m, p->id, body) == -1)
		return;
	if (o->sent == o->acked)
		o->progress_ms = now;	/* the retry clock starts now */
	o->sent = bc_out_end(o);
	p->owed_ms = 0;
}

/*
 * Record v.  Returns 1 if it was new.  A new value is queued for the
 * nodes that need it from us: the hub sends everything to everyone but
 * the sender; a leaf sends only what its clients gave it, to the hub.
 */
static int
bc_add(struct bc_state *s, json_int_t v, const struct bc_peer *from,
    int from_client)
{
	size_t	i;

	if (u64map_get(s->seen, (uint64_t)v) != NULL)
		return 0;
	if (u64map_put(s->seen, (uint64_t)v, s) == -1 ||
	    json_array_append_new(s->all, json_integer(v)) == -1) {
		u64map_del(s->seen, (uint64_t)v);
		log_warnx("broadcast: out of memory storing %lld",
		    (long long)v);
		return -1;
	}

	if (s->is_hub) {
		for (i = 0; i < s->npeers; i++) {
			if (&s->peers[i] != from &&
			    bc_out_push(&s->peers[i].out, v) == -1)
				log_warnx("broadcast: out of memory queueing");
		}
		bc_schedule_batch(s);
	} else if (from_client && s->hub != NULL) {
		if (bc_out_push(&s->hub->out, v) == -1)
			log_warnx("broadcast: out of memory queueing");
	}
	return 1;
}

static void
bc_broadcast(struct mael *m, struct mael_msg *msg, void *state)
{
	struct bc_state	*s = state;
	json_t		*v = json_object_get(msg->body, "message");

	if (!json_is_integer(v)) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "broadcast needs an integer message");
		return;
	}
	if (bc_add(s, json_integer_value(v), NULL, 1) == -1) {
		/* Not stored, so definitely not done. */
		mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE,
		    "out of memory");
		return;
	}
	mael_reply(m, msg, json_pack("{s:s}", "type", "broadcast_ok"));
	/* A leaf forwards at once: see the comment at the top. */
	if (s->hub != NULL)
		bc_flush(s, s->hub, 0);
}

static void
bc_read(struct mael *m, struct mael_msg *msg, void *state)
{
	struct bc_state	*s = state;

	mael_reply(m, msg, json_pack("{s:s, s:O}", "type", "read_ok",
	    "messages", s->all));
}

static void
bc_topology(struct mael *m, struct mael_msg *msg, void *state)
{
	mael_reply(m, msg, json_pack("{s:s}", "type", "topology_ok"));
}

/* Values of a gossip or direct message, added one by one. */
static int
bc_add_values(struct bc_state *s, json_t *vals, const struct bc_peer *from)
{
	json_t	*v;
	size_t	 i;

	if (!json_is_array(vals))
		return -1;
	json_array_foreach(vals, i, v) {
		if (!json_is_integer(v))
			return -1;
		bc_add(s, json_integer_value(v), from, 0);
	}
	return 0;
}

static void
bc_gossip(struct mael *m, struct mael_msg *msg, void *state)
{
	struct bc_state	*s = state;
	struct bc_peer	*p;
	json_t		*vals = json_object_get(msg->body, "values");
	json_int_t	 seq, ack;
	size_t		 n;

	if ((p = bc_peer_find(s, msg->src)) == NULL) {
		log_warnx("gossip from %s, not a peer", msg->src);
		return;
	}
	seq = json_integer_value(json_object_get(msg->body, "seq"));
	ack = json_integer_value(json_object_get(msg->body, "ack"));
	if (seq < 1 || ack < 0 || bc_add_values(s, vals, p) == -1) {
		log_warnx("malformed gossip from %s", msg->src);
		return;
	}
	bc_out_ack(&p->out, (uint64_t)ack, mael_now_ms());
	n = json_array_size(vals);
	if (n == 0)
		return;
	/* A later start means an earlier message was lost: the sender
	 * goes back to our ack after its retry interval. */
	if ((uint64_t)seq <= p->recv + 1 && (uint64_t)seq + n - 1 > p->recv)
		p->recv = (uint64_t)seq + n - 1;
	if (p->owed_ms == 0)
		p->owed_ms = mael_now_ms();
}

static void
bc_direct(struct mael *m, struct mael_msg *msg, void *state)
{
	struct bc_state	*s = state;

	if (bc_add_values(s, json_object_get(msg->body, "values"),
	    bc_peer_find(s, msg->src)) == -1)
		log_warnx("malformed direct values from %s", msg->src);
}

/* Hub: the batch is due; send every node what it lacks. */
static void
bc_on_batch(evutil_socket_t fd, short what, void *arg)
{
	struct bc_state	*s = arg;
	size_t		 i;

	for (i = 0; i < s->npeers; i++)
		bc_flush(s, &s->peers[i], 0);
}

/*
 * Hub: a value is waiting to be sent.  The batch leaves --batch-interval
 * after the first value that waits for it, rather than on a fixed clock:
 * no value waits longer than the interval either way, but a clock also
 * ticks while nothing waits, so batches would be a little more frequent
 * for the same worst case.  Idle, the hub sends nothing.
 */
static void
bc_schedule_batch(struct bc_state *s)
{
	struct timeval	tv;

	if (s->batch_ev == NULL || s->fixed_clock ||
	    evtimer_pending(s->batch_ev, NULL))
		return;
	tv.tv_sec = s->batch_ms / 1000;
	tv.tv_usec = (s->batch_ms % 1000) * 1000;
	evtimer_add(s->batch_ev, &tv);
}

/* The hub is not acknowledging: send our unflooded values to all. */
static void
bc_flood(struct bc_state *s)
{
	struct bc_out	*o = &s->hub->out;
	json_t		*vals;
	uint64_t	 seq;
	size_t		 i;

	if ((vals = json_array()) == NULL)
		return;
	for (seq = o->flooded > o->acked ? o->flooded + 1 : o->acked + 1;
	    seq <= bc_out_end(o); seq++)
		json_array_append_new(vals, json_integer(o->vals[seq - o->base]));
	if (json_array_size(vals) > 0) {
		log_info("hub %s silent: sending %zu values to every node",
		    s->hub->id, json_array_size(vals));
		for (i = 0; i < s->npeers; i++) {
			if (&s->peers[i] == s->hub)
				continue;
			mael_send(s->m, s->peers[i].id, json_pack("{s:s, s:O}",
			    "type", "direct", "values", vals));
		}
		o->flooded = bc_out_end(o);
	}
	json_decref(vals);
}

static void
bc_on_maint(evutil_socket_t fd, short what, void *arg)
{
	struct bc_state	*s = arg;
	struct bc_peer	*p;
	uint64_t	 now = mael_now_ms();
	size_t		 i;

	for (i = 0; i < s->npeers; i++) {
		p = &s->peers[i];
		if (p->out.acked < p->out.sent &&
		    now - p->out.progress_ms >= (uint64_t)s->retry_ms) {
			log_debug("no ack from %s for %llu ms: resending "
			    "from %llu", p->id, (unsigned long long)(now -
			    p->out.progress_ms),
			    (unsigned long long)p->out.acked + 1);
			if (p == s->hub)
				bc_flood(s);
			p->out.sent = p->out.acked;
			bc_flush(s, p, 0);
			p->out.progress_ms = now;
		} else if (p->owed_ms != 0 &&
		    now - p->owed_ms >= (uint64_t)s->ack_delay_ms)
			bc_flush(s, p, 1);
	}
}

static int
bc_joined(struct mael *m, void *state)
{
	struct bc_state		*s = state;
	const char *const	*ids;
	const char		*hub;
	struct timeval		 tv;
	size_t			 n, i, j;
	int			 tick;

	s->m = m;
	ids = mael_node_ids(m, &n);
	hub = ids[0];
	for (i = 1; i < n; i++) {
		if (strcmp(ids[i], hub) < 0)
			hub = ids[i];
	}
	s->is_hub = strcmp(hub, mael_node_id(m)) == 0;
	s->npeers = n - 1;
	s->peers = s->npeers == 0 ? NULL : xcalloc(s->npeers, sizeof *s->peers);
	for (i = j = 0; i < n; i++) {
		if (strcmp(ids[i], mael_node_id(m)) == 0)
			continue;
		s->peers[j].id = ids[i];
		s->peers[j].out.base = 1;
		if (strcmp(ids[i], hub) == 0)
			s->hub = &s->peers[j];
		j++;
	}
	log_info("broadcast: %s, hub %s, batch every %d ms",
	    s->is_hub ? "hub" : "leaf", hub, s->batch_ms);

	if (s->is_hub) {
		s->batch_ev = event_new(mael_base(m), -1,
		    s->fixed_clock ? EV_PERSIST : 0, bc_on_batch, s);
		if (s->batch_ev == NULL)
			return -1;
		if (s->fixed_clock) {
			tv.tv_sec = s->batch_ms / 1000;
			tv.tv_usec = (s->batch_ms % 1000) * 1000;
			event_add(s->batch_ev, &tv);
		}
	}
	/* Retries and lone acks need a resolution well below their own
	 * delays, not faster. */
	tick = s->ack_delay_ms < s->retry_ms ? s->ack_delay_ms : s->retry_ms;
	tick = tick / 4 > 10 ? tick / 4 : 10;
	s->maint_ev = event_new(mael_base(m), -1, EV_PERSIST, bc_on_maint, s);
	tv.tv_sec = tick / 1000;
	tv.tv_usec = (tick % 1000) * 1000;
	if (s->maint_ev == NULL || event_add(s->maint_ev, &tv) == -1)
		return -1;
	return 0;
}

static void
bc_free(void *state)
{
	struct bc_state	*s = state;
	size_t		 i;

	if (s->batch_ev != NULL)
		event_free(s->batch_ev);
	if (s->maint_ev != NULL)
		event_free(s->maint_ev);
	for (i = 0; i < s->npeers; i++)
		free(s->peers[i].out.vals);
	free(s->peers);
	u64map_free(s->seen);
	json_decref(s->all);
	free(s);
}

static const struct mael_handler bc_handlers[] = {
	{ "broadcast",	bc_broadcast },
	{ "read",	bc_read },
	{ "topology",	bc_topology },
	{ "gossip",	bc_gossip },
	{ "direct",	bc_direct },
	{ NULL,		NULL }
};

const struct mode mode_broadcast = {
	.name = "broadcast",
	.summary = "Maelstrom broadcast node: hub overlay with batching "
	    "(challenges 3a-3e)",
	.kind = MODE_MAELSTROM,
	.groups = mael_flag_groups,
	.flags = bc_flags,
	.init = bc_init,
	.handlers = bc_handlers,
	.joined = bc_joined,
	.free = bc_free,
};
