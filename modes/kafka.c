/*
 * kafka: Gossip Glomers challenges 5a to 5c, a replicated log per key
 * (../shared/docs/maelstrom.md, section 5.5).
 *
 * Every key has one owner: the node at FNV-1a(key) modulo the node count
 * in the sorted node ids, which every node computes alike without talking.
 * The owner alone assigns offsets, so they are dense per key, counting
 * from 0, and no offset ever holds two messages.  A send that lands on
 * another node is forwarded to the owner: queued on this node's stream to
 * the owner (below) and flushed at once, with whatever else was queued.
 * The owner appends and queues the answer, the offset, on its stream back,
 * right behind the log entry; the answer leaves with the next message the
 * owner sends that node (its own forwarded sends, or the batch at the
 * next --replicate-interval), and the node then answers its client.  If
 * no answer comes within --forward-timeout the client gets error 0,
 * indefinite: the owner may have appended, or may still append once the
 * stream gets through.
 *
 * The owner replicates each key's log to every other node through an
 * mstream (mstream.h): entries in append order, batched every
 * --replicate-interval, acknowledged and resent, so a replica's log of a
 * key is always a prefix of the owner's.  Polls are answered from the
 * local log, which is why a poll never skips an offset: it returns the
 * contiguous run from the requested offset to the end of what this node
 * has, and a lagging replica returns fewer messages, never a gap.  The
 * workload has no recency requirement; by the final polls the streams
 * have caught up.
 *
 * Committed offsets are a maximum per key: a commit is applied locally
 * (so a node's committed offsets never go backwards), answered at once,
 * and sent to every other node on the same streams, where it merges by
 * maximum.  Listing committed offsets is local too.
 *
 * Cost: a forwarded send costs one message; answers, replication and
 * acks ride on it or on at most one message per node pair and direction
 * per --replicate-interval, whatever the load.  With half the operations
 * sends and half of those forwarded (two nodes), that is about 0.25
 * messages per operation.  The price is latency: a forwarded send's answer
 * waits for the next message back, at most one interval.  Answering with
 * a message of its own, as a plain RPC would, costs one more message per
 * forwarded send, 0.5 per operation in all.
 *
 * Partitions: a key whose owner is cut off from a node cannot take sends
 * through that node until the heal: they time out with error 0, and since
 * the stream keeps them, the owner appends them after the heal (which
 * error 0 allows).  Polls and committed offsets there keep serving what
 * was replicated before the cut, and the streams catch up after the heal.
 * Nothing acknowledged is lost.
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
#include "maelstrom/mstream.h"
#include "core/u64map.h"
#include "core/xmalloc.h"

struct kf_key {
	struct kf_key	*next;		/* same hash */
	char		*name;
	json_int_t	*msgs;		/* msgs[i] is at offset i */
	size_t		 len, cap;
	json_int_t	 committed;	/* -1: none */
};

struct kf_state {
	int		 interval_ms, retry_ms, forward_ms;

	struct mael	*m;
	const char	*self;
	const char	**sorted;	/* node ids, sorted */
	size_t		 nnodes;
	struct mstream	*ms;
	struct u64map	*keys;		/* FNV-1a of the name → kf_key chain */
	struct u64map	*fwds;		/* id → kf_fwd */
	uint64_t	 next_fwd;
};

/* A send forwarded to its key's owner, waiting for the answer. */
struct kf_fwd {
	struct kf_state	*s;
	uint64_t	 id;
	struct mael_msg	*req;
	struct event	*timer;		/* --forward-timeout */
};

static const struct flag kf_flags[] = {
	{ "replicate-interval", FLAG_INT, "MS", "50", 1, 60000,
	  "how often logs and commits are sent to the other nodes" },
	{ "retry-interval", FLAG_INT, "MS", "500", 10, 600000,
	  "resend replication not acknowledged within this time" },
	{ "forward-timeout", FLAG_INT, "MS", "2000", 1, 4000,
	  "give up on a send forwarded to the key's owner (error 0)" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static uint64_t
kf_hash(const char *name)
{
	uint64_t	h = 14695981039346656037ULL;

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct kf_key *
kf_find(struct kf_state *s, const char *name)
{
	struct kf_key	*k;

	for (k = u64map_get(s->keys, kf_hash(name)); k != NULL; k = k->next) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

/* The key, created if new; NULL if memory ran out. */
static struct kf_key *
kf_get(struct kf_state *s, const char *name)
{
	struct kf_key	*k;
	uint64_t	 h = kf_hash(name);

	if ((k = kf_find(s, name)) != NULL)
		return k;
	if ((k = calloc(1, sizeof *k)) == NULL ||
	    (k->name = strdup(name)) == NULL)
		goto fail;
	k->committed = -1;
	k->next = u64map_get(s->keys, h);
	if (u64map_put(s->keys, h, k) == -1)
		goto fail;
	return k;

fail:
	if (k != NULL)
		free(k->name);
	free(k);
	log_warnx("kafka: out of memory adding key %s", name);
	return NULL;
}

static const char *
kf_owner(struct kf_state *s, const char *name)
{
	return s->sorted[kf_hash(name) % s->nnodes];
}

/* Append msg at offset len; -1 if memory ran out. */
static int
kf_append(struct kf_key *k, json_int_t msg)
{
	json_int_t	*n;
	size_t		 cap;

	if (k->len == k->cap) {
		cap = k->cap == 0 ? 16 : k->cap * 2;
		if ((n = reallocarray(k->msgs, cap, sizeof *n)) == NULL) {
			log_warnx("kafka: out of memory appending to %s",
			    k->name);
			return -1;
		}
		k->msgs = n;
		k->cap = cap;
	}
	k->msgs[k->len++] = msg;
	return 0;
}

/*
 * The owner's append: assign the next offset and queue the entry for
 * every replica; for a forwarded send (from not NULL), queue the answer
 * to the sender behind it.  Returns the offset, or -1 if nothing was
 * appended.
 */
static json_int_t
kf_own_append(struct kf_state *s, const char *name, json_int_t msg,
    const char *from, json_int_t fwd)
{
	struct kf_key	*k;
	json_int_t	 off;

	if ((k = kf_get(s, name)) == NULL || kf_append(k, msg) == -1)
		return -1;
	off = (json_int_t)k->len - 1;
	/* The entry must reach every replica, or their logs would stop
	 * at a gap for good: if it cannot be queued, take it back. */
	if (mstream_push(s->ms, NULL, json_pack("[s, s, I, I]", "s", name,
	    off, msg)) == -1) {
		k->len--;
		return -1;
	}
	/* Appended: from here on, a lost answer is only a timeout. */
	if (from != NULL)
		mstream_push(s->ms, from, json_pack("[s, I, I]", "a", fwd, off));
	return off;
}

/* Parse a send-like body: key string, integer msg. */
static int
kf_parse_send(const struct mael_msg *msg, const char **name, json_int_t *v)
{
	json_t	*m = json_object_get(msg->body, "msg");

	*name = json_string_value(json_object_get(msg->body, "key"));
	if (*name == NULL || !json_is_integer(m))
		return -1;
	*v = json_integer_value(m);
	return 0;
}

/* Answer a forwarded send's client and forget it; reply is taken. */
static void
kf_fwd_done(struct kf_state *s, struct kf_fwd *f, json_t *reply)
{
	u64map_del(s->fwds, f->id);
	evtimer_del(f->timer);
	mael_reply(s->m, f->req, reply);
	mael_msg_release(f->req);
	event_free(f->timer);
	free(f);
}

static void
kf_on_fwd_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct kf_fwd	*f = arg;

	kf_fwd_done(f->s, f, mael_error_body(MAEL_TIMEOUT, "the owner did "
	    "not answer in time; the send may have happened"));
}

static void
kf_send(struct mael *m, struct mael_msg *msg, void *state)
{
	struct kf_state	*s = state;
	struct kf_fwd	*f;
	struct timeval	 tv;
	const char	*name, *owner;
	json_int_t	 v, off;

	if (kf_parse_send(msg, &name, &v) == -1) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "send needs a string key and an integer msg");
		return;
	}
	owner = kf_owner(s, name);
	if (strcmp(owner, s->self) == 0) {
		if ((off = kf_own_append(s, name, v, NULL, 0)) == -1)
			mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE,
			    "out of memory");
		else
			mael_reply(m, msg, json_pack("{s:s, s:I}", "type",
			    "send_ok", "offset", off));
		return;
	}

	/* Nothing is queued until everything that can fail has succeeded,
	 * so each failure here is definite. */
	if ((f = calloc(1, sizeof *f)) == NULL)
		goto oom;
	f->s = s;
	f->id = ++s->next_fwd;
	if ((f->timer = evtimer_new(mael_base(m), kf_on_fwd_timeout,
	    f)) == NULL)
		goto oom_free;
	if (u64map_put(s->fwds, f->id, f) == -1)
		goto oom_timer;
	if (mstream_push(s->ms, owner, json_pack("[s, I, s, I]", "f",
	    (json_int_t)f->id, name, v)) == -1) {
		u64map_del(s->fwds, f->id);
		goto oom_timer;
	}
	f->req = mael_msg_hold(msg);
	tv.tv_sec = s->forward_ms / 1000;
	tv.tv_usec = (s->forward_ms % 1000) * 1000;
	evtimer_add(f->timer, &tv);
	/* A client waits on it: send now, with whatever else is queued. */
	mstream_flush(s->ms, owner);
	return;

oom_timer:
	event_free(f->timer);
oom_free:
	free(f);
oom:
	mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE, "out of memory");
}

/*
 * The owner's side of a forwarded send, ["f", id, key, msg]: append, and
 * queue the answer to the sender right behind the log entry.  A failure is
 * answered too, with a definite code: nothing was appended.
 */
static void
kf_deliver_send(struct kf_state *s, const char *from, json_t *e)
{
	const char	*name = json_string_value(json_array_get(e, 2));
	json_int_t	 id = json_integer_value(json_array_get(e, 1));
	json_int_t	 v = json_integer_value(json_array_get(e, 3));

	if (strcmp(kf_owner(s, name), s->self) != 0) {
		/* The nodes disagree on owners: a bug, but refusing keeps
		 * offsets single-valued. */
		log_warnx("kafka: %s forwarded key %s, owned by %s", from,
		    name, kf_owner(s, name));
		mstream_push(s->ms, from, json_pack("[s, I, i]", "e", id,
		    MAEL_TEMPORARILY_UNAVAILABLE));
		return;
	}
	if (kf_own_append(s, name, v, from, id) == -1)
		mstream_push(s->ms, from, json_pack("[s, I, i]", "e", id,
		    MAEL_TEMPORARILY_UNAVAILABLE));
}

static void
kf_poll(struct mael *m, struct mael_msg *msg, void *state)
{
	struct kf_state	*s = state;
	struct kf_key	*k;
	json_t		*offsets, *v, *out, *pairs;
	const char	*name;
	json_int_t	 from;
	size_t		 i;

	offsets = json_object_get(msg->body, "offsets");
	if (!json_is_object(offsets)) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "poll needs an offsets object");
		return;
	}
	if ((out = json_object()) == NULL)
		goto oom;
	json_object_foreach(offsets, name, v) {
		if (!json_is_integer(v)) {
			json_decref(out);
			mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
			    "offset of %s is not an integer", name);
			return;
		}
		from = json_integer_value(v);
		if (from < 0)
			from = 0;
		if ((k = kf_find(s, name)) == NULL || (size_t)from >= k->len)
			continue;
		if ((pairs = json_array()) == NULL ||
		    json_object_set_new(out, name, pairs) == -1) {
			json_decref(out);
			goto oom;
		}
		for (i = (size_t)from; i < k->len; i++) {
			if (json_array_append_new(pairs, json_pack("[I, I]",
			    (json_int_t)i, k->msgs[i])) == -1) {
				json_decref(out);
				goto oom;
			}
		}
	}
	mael_reply(m, msg, json_pack("{s:s, s:o}", "type", "poll_ok",
	    "msgs", out));
	return;
oom:
	mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE, "out of memory");
}

/* Raise a key's committed offset; returns 1 if it moved. */
static int
kf_commit(struct kf_key *k, json_int_t off)
{
	if (off <= k->committed)
		return 0;
	k->committed = off;
	return 1;
}

static void
kf_commit_offsets(struct mael *m, struct mael_msg *msg, void *state)
{
	struct kf_state	*s = state;
	struct kf_key	*k;
	json_t		*offsets, *v;
	const char	*name;
	json_int_t	 off, old;

	offsets = json_object_get(msg->body, "offsets");
	if (!json_is_object(offsets)) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "commit_offsets needs an offsets object");
		return;
	}
	json_object_foreach(offsets, name, v) {
		if (!json_is_integer(v)) {
			mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
			    "offset of %s is not an integer", name);
			return;
		}
	}
	json_object_foreach(offsets, name, v) {
		off = json_integer_value(v);
		/* On failure, the keys already committed stay (each is a
		 * maximum, replicated like any other): indefinite. */
		if ((k = kf_get(s, name)) == NULL) {
			mael_reply_error(m, msg, MAEL_CRASH, "out of memory");
			return;
		}
		old = k->committed;
		if (kf_commit(k, off) &&
		    mstream_push(s->ms, NULL, json_pack("[s, s, I]", "c", name,
		    off)) == -1) {
			/* The peers would never learn it: take it back. */
			k->committed = old;
			mael_reply_error(m, msg, MAEL_CRASH, "out of memory");
			return;
		}
	}
	mael_reply(m, msg, json_pack("{s:s}", "type", "commit_offsets_ok"));
}

static void
kf_list_committed(struct mael *m, struct mael_msg *msg, void *state)
{
	struct kf_state	*s = state;
	struct kf_key	*k;
	json_t		*keys, *name, *out;
	size_t		 i;

	keys = json_object_get(msg->body, "keys");
	if (!json_is_array(keys)) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "list_committed_offsets needs a keys array");
		return;
	}
	if ((out = json_object()) == NULL) {
		mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE,
		    "out of memory");
		return;
	}
	json_array_foreach(keys, i, name) {
		if (!json_is_string(name) ||
		    (k = kf_find(s, json_string_value(name))) == NULL ||
		    k->committed < 0)
			continue;
		if (json_object_set_new(out, k->name,
		    json_integer(k->committed)) == -1) {
			json_decref(out);
			mael_reply_error(m, msg, MAEL_TEMPORARILY_UNAVAILABLE,
			    "out of memory");
			return;
		}
	}
	mael_reply(m, msg, json_pack("{s:s, s:o}", "type",
	    "list_committed_offsets_ok", "offsets", out));
}

/* An owner's answer to a send we forwarded: ["a", id, offset] or
 * ["e", id, code]. */
static void
kf_deliver_answer(struct kf_state *s, const char *kind, json_t *e)
{
	struct kf_fwd	*f;
	json_int_t	 id, v;

	id = json_integer_value(json_array_get(e, 1));
	v = json_integer_value(json_array_get(e, 2));
	if ((f = u64map_get(s->fwds, (uint64_t)id)) == NULL)
		return;		/* answered already, by the timeout */
	if (kind[0] == 'a')
		kf_fwd_done(s, f, json_pack("{s:s, s:I}", "type", "send_ok",
		    "offset", v));
	else
		kf_fwd_done(s, f, mael_error_body((int)v, "the owner refused"));
}

/*
 * Apply one entry from a peer's stream: ["s", key, offset, msg] appends to
 * a replica, ["c", key, offset] merges a commit, ["f", id, key, msg] is a
 * send forwarded to us as the owner, and "a"/"e" answer one we forwarded.
 */
static int
kf_deliver(struct mael *m, const char *from, json_t *e, void *arg)
{
	struct kf_state	*s = arg;
	struct kf_key	*k;
	const char	*kind, *name;
	json_int_t	 off, v;

	kind = json_string_value(json_array_get(e, 0));
	if (kind != NULL && strcmp(kind, "f") == 0 &&
	    json_is_integer(json_array_get(e, 1)) &&
	    json_is_string(json_array_get(e, 2)) &&
	    json_is_integer(json_array_get(e, 3))) {
		kf_deliver_send(s, from, e);
		return 0;
	}
	if (kind != NULL && (strcmp(kind, "a") == 0 ||
	    strcmp(kind, "e") == 0) && json_is_integer(json_array_get(e, 1)) &&
	    json_is_integer(json_array_get(e, 2))) {
		kf_deliver_answer(s, kind, e);
		return 0;
	}
	name = json_string_value(json_array_get(e, 1));
	off = json_integer_value(json_array_get(e, 2));
	if (kind == NULL || name == NULL ||
	    !json_is_integer(json_array_get(e, 2))) {
		log_warnx("kafka: malformed entry from %s", from);
		return 0;	/* skipping it is all we can do */
	}
	if ((k = kf_get(s, name)) == NULL)
		return -1;
	if (strcmp(kind, "c") == 0) {
		kf_commit(k, off);
		return 0;
	}
	v = json_integer_value(json_array_get(e, 3));
	if (strcmp(kind, "s") != 0 || !json_is_integer(json_array_get(e, 3)))
		log_warnx("kafka: malformed entry from %s", from);
	else if (off == (json_int_t)k->len)
		return kf_append(k, v);
	else if (off > (json_int_t)k->len || k->msgs[off] != v)
		/* The stream is in order and the owner's offsets dense, so
		 * this is a bug; never store past a gap. */
		log_warnx("kafka: %s sent %s offset %lld, we hold %zu",
		    from, name, (long long)off, k->len);
	return 0;
}

static void
kf_repl(struct mael *m, struct mael_msg *msg, void *state)
{
	struct kf_state	*s = state;

	mstream_recv(s->ms, msg);
}

static int
kf_init(struct dsd *d, void **statep)
{
	struct kf_state	*s;

	s = xcalloc(1, sizeof *s);
	s->interval_ms = (int)flags_int(d, "replicate-interval");
	s->retry_ms = (int)flags_int(d, "retry-interval");
	s->forward_ms = (int)flags_int(d, "forward-timeout");
	if ((s->keys = u64map_new()) == NULL ||
	    (s->fwds = u64map_new()) == NULL)
		fatalx("kafka: out of memory");
	*statep = s;
	return 0;
}

static int
kf_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
kf_joined(struct mael *m, void *state)
{
	struct kf_state		*s = state;
	struct mstream_config	 cfg = { 0 };
	const char *const	*ids;
	size_t			 i;

	s->m = m;
	s->self = mael_node_id(m);
	ids = mael_node_ids(m, &s->nnodes);
	s->sorted = xcalloc(s->nnodes, sizeof *s->sorted);
	for (i = 0; i < s->nnodes; i++)
		s->sorted[i] = ids[i];
	qsort(s->sorted, s->nnodes, sizeof *s->sorted, kf_cmp_str);

	cfg.type = "kafka_repl";
	cfg.interval_ms = s->interval_ms;
	cfg.retry_ms = s->retry_ms;
	cfg.deliver = kf_deliver;
	cfg.arg = s;
	if ((s->ms = mstream_new(m, &cfg)) == NULL)
		return -1;
	log_info("kafka: %zu nodes, replicating every %d ms", s->nnodes,
	    s->interval_ms);
	return 0;
}

static void
kf_free_key(uint64_t h, void *val, void *arg)
{
	struct kf_key	*k, *next;

	for (k = val; k != NULL; k = next) {
		next = k->next;
		free(k->msgs);
		free(k->name);
		free(k);
	}
}

static void
kf_free_fwd(uint64_t id, void *val, void *arg)
{
	struct kf_fwd	*f = val;

	event_free(f->timer);
	mael_msg_release(f->req);
	free(f);
}

static void
kf_free(void *state)
{
	struct kf_state	*s = state;

	mstream_free(s->ms);
	u64map_foreach(s->fwds, kf_free_fwd, NULL);
	u64map_free(s->fwds);
	u64map_foreach(s->keys, kf_free_key, NULL);
	u64map_free(s->keys);
	free(s->sorted);
	free(s);
}

static const struct mael_handler kf_handlers[] = {
	{ "send",			kf_send },
	{ "poll",			kf_poll },
	{ "commit_offsets",		kf_commit_offsets },
	{ "list_committed_offsets",	kf_list_committed },
	{ "kafka_repl",			kf_repl },
	{ NULL,				NULL }
};

const struct mode mode_kafka = {
	.name = "kafka",
	.summary = "Maelstrom kafka-style log: owner per key, batched "
	    "replication (challenges 5a-5c)",
	.kind = MODE_MAELSTROM,
	.groups = mael_flag_groups,
	.flags = kf_flags,
	.init = kf_init,
	.handlers = kf_handlers,
	.joined = kf_joined,
	.free = kf_free,
};
