/*
 * Reliable, ordered streams of entries to each peer; the contract and the
 * wire format are in mstream.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "core/log.h"
#include "maelstrom/maelstrom.h"
#include "maelstrom/mstream.h"

#define MSTREAM_DEFAULT_BATCH	1000

/* Both directions of the link with one peer. */
struct mstream_peer {
	const char	*id;		/* borrowed from the runtime */

	/* Outgoing: q[i] has seq base + i; q[0 .. head) are acknowledged
	 * and already released, so q[head] has seq acked + 1. */
	json_t		**q;
	size_t		 head, len, cap;
	uint64_t	 base;
	uint64_t	 sent;		/* highest seq sent */
	uint64_t	 acked;		/* highest seq acknowledged */
	uint64_t	 progress_ms;	/* last send from idle or ack advance */

	/* Incoming. */
	uint64_t	 recv;		/* highest seq delivered */
	int		 owe_ack;
};

struct mstream {
	struct mael		*m;
	struct mstream_config	 cfg;
	struct mstream_peer	*peers;
	size_t			 npeers;
	struct event		*tick;
};

static struct mstream_peer *
mstream_peer_find(const struct mstream *s, const char *id)
{
	size_t	i;

	for (i = 0; i < s->npeers; i++) {
		if (strcmp(s->peers[i].id, id) == 0)
			return &s->peers[i];
	}
	return NULL;
}

static uint64_t
mstream_end(const struct mstream_peer *p)
{
	return p->base + p->len - 1;	/* highest seq queued */
}

/* Make room for one more entry; -1 if memory ran out. */
static int
mstream_reserve(struct mstream_peer *p)
{
	json_t	**n;
	size_t	  cap;

	if (p->len < p->cap)
		return 0;
	/* Reuse the acknowledged prefix before growing. */
	if (p->head > 0 && p->head * 2 >= p->len) {
		memmove(p->q, p->q + p->head,
		    (p->len - p->head) * sizeof *p->q);
		p->len -= p->head;
		p->base += p->head;
		p->head = 0;
		return 0;
	}
	cap = p->cap == 0 ? 64 : p->cap * 2;
	if ((n = reallocarray(p->q, cap, sizeof *n)) == NULL)
		return -1;
	p->q = n;
	p->cap = cap;
	return 0;
}

int
mstream_push(struct mstream *s, const char *peer, json_t *entry)
{
	struct mstream_peer	*p;
	size_t			 i;

	if (entry == NULL)
		return -1;
	/* Reserve everywhere first, so a failure leaves no peer with an
	 * entry the others lack. */
	for (i = 0; i < s->npeers; i++) {
		p = &s->peers[i];
		if (peer != NULL && strcmp(p->id, peer) != 0)
			continue;
		if (mstream_reserve(p) == -1) {
			log_warnx("%s: out of memory queueing an entry",
			    s->cfg.type);
			json_decref(entry);
			return -1;
		}
	}
	for (i = 0; i < s->npeers; i++) {
		p = &s->peers[i];
		if (peer != NULL && strcmp(p->id, peer) != 0)
			continue;
		p->q[p->len++] = json_incref(entry);
	}
	json_decref(entry);
	return 0;
}

/* Release what the peer has acknowledged up to ack. */
static void
mstream_ack(struct mstream_peer *p, uint64_t ack, uint64_t now)
{
	if (ack <= p->acked || ack > mstream_end(p))
		return;
	for (; p->head < ack - p->base + 1; p->head++) {
		json_decref(p->q[p->head]);
		p->q[p->head] = NULL;
	}
	p->acked = ack;
	if (p->sent < ack)
		p->sent = ack;
	p->progress_ms = now;
	if (p->head == p->len) {
		/* Empty: start again at the front. */
		p->base += p->len;
		p->head = p->len = 0;
	}
}

/* Send p what it has not been sent, with our ack of its stream; an ack
 * owed with nothing to carry it goes alone. */
static void
mstream_flush_peer(struct mstream *s, struct mstream_peer *p, uint64_t now)
{
	json_t		*entries, *body;
	uint64_t	 seq, last;
	size_t		 max = s->cfg.max_batch;

	while (p->sent < mstream_end(p) || p->owe_ack) {
		last = mstream_end(p);
		if (last - p->sent > max)
			last = p->sent + max;
		if ((entries = json_array()) == NULL)
			return;
		for (seq = p->sent + 1; seq <= last; seq++) {
			if (json_array_append(entries,
			    p->q[seq - p->base]) == -1) {
				json_decref(entries);
				return;
			}
		}
		body = json_pack("{s:s, s:I, s:o, s:I}", "type", s->cfg.type,
		    "seq", (json_int_t)(p->sent + 1), "entries", entries,
		    "ack", (json_int_t)p->recv);
		/* A failed send is a lost message: the retry covers it. */
		mael_send(s->m, p->id, body);
		if (p->sent == p->acked && last > p->sent)
			p->progress_ms = now;	/* the retry clock starts */
		p->sent = last;
		p->owe_ack = 0;
	}
}

static void
mstream_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mstream		*s = arg;
	struct mstream_peer	*p;
	uint64_t		 now = mael_now_ms();
	size_t			 i;

	for (i = 0; i < s->npeers; i++) {
		p = &s->peers[i];
		if (p->acked < p->sent &&
		    now - p->progress_ms >= (uint64_t)s->cfg.retry_ms) {
			log_debug("%s: no ack from %s for %llu ms, resending "
			    "from %llu", s->cfg.type, p->id,
			    (unsigned long long)(now - p->progress_ms),
			    (unsigned long long)p->acked + 1);
			p->sent = p->acked;
			p->progress_ms = now;
		}
		mstream_flush_peer(s, p, now);
	}
}

void
mstream_flush(struct mstream *s, const char *peer)
{
	struct mstream_peer	*p;

	if ((p = mstream_peer_find(s, peer)) != NULL)
		mstream_flush_peer(s, p, mael_now_ms());
}

void
mstream_recv(struct mstream *s, struct mael_msg *msg)
{
	struct mstream_peer	*p;
	json_t			*entries, *e;
	json_int_t		 seq, ack;
	uint64_t		 at;
	size_t			 i;

	if ((p = mstream_peer_find(s, msg->src)) == NULL) {
		log_warnx("%s from %s, not a peer", s->cfg.type, msg->src);
		return;
	}
	entries = json_object_get(msg->body, "entries");
	seq = json_integer_value(json_object_get(msg->body, "seq"));
	ack = json_integer_value(json_object_get(msg->body, "ack"));
	if (!json_is_array(entries) || seq < 1 || ack < 0) {
		log_warnx("malformed %s from %s", s->cfg.type, msg->src);
		return;
	}
	mstream_ack(p, (uint64_t)ack, mael_now_ms());
	if (json_array_size(entries) == 0)
		return;
	/* Even a duplicate is acknowledged: the sender lacks our ack. */
	p->owe_ack = 1;
	if ((uint64_t)seq > p->recv + 1)
		return;		/* a gap: the sender will go back */
	json_array_foreach(entries, i, e) {
		at = (uint64_t)seq + i;
		if (at <= p->recv)
			continue;
		if (s->cfg.deliver(s->m, p->id, e, s->cfg.arg) == -1)
			break;
		p->recv = at;
	}
}

size_t
mstream_unacked(const struct mstream *s, const char *peer)
{
	size_t	i, n = 0;

	for (i = 0; i < s->npeers; i++) {
		if (peer == NULL || strcmp(s->peers[i].id, peer) == 0)
			n += s->peers[i].len - s->peers[i].head;
	}
	return n;
}

struct mstream *
mstream_new(struct mael *m, const struct mstream_config *cfg)
{
	struct mstream		*s;
	const char *const	*ids;
	const char		*self = mael_node_id(m);
	struct timeval		 tv;
	size_t			 n, i, j;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->m = m;
	s->cfg = *cfg;
	if (s->cfg.max_batch == 0)
		s->cfg.max_batch = MSTREAM_DEFAULT_BATCH;
	ids = mael_node_ids(m, &n);
	if (n > 1 && (s->peers = calloc(n - 1, sizeof *s->peers)) == NULL)
		goto fail;
	for (i = j = 0; i < n; i++) {
		if (strcmp(ids[i], self) == 0)
			continue;
		s->peers[j].id = ids[i];
		s->peers[j].base = 1;
		j++;
	}
	s->npeers = j;
	if ((s->tick = event_new(mael_base(m), -1, EV_PERSIST,
	    mstream_on_tick, s)) == NULL)
		goto fail;
	tv.tv_sec = cfg->interval_ms / 1000;
	tv.tv_usec = (cfg->interval_ms % 1000) * 1000;
	if (event_add(s->tick, &tv) == -1)
		goto fail;
	return s;

fail:
	mstream_free(s);
	return NULL;
}

void
mstream_free(struct mstream *s)
{
	size_t	i, k;

	if (s == NULL)
		return;
	if (s->tick != NULL)
		event_free(s->tick);
	for (i = 0; i < s->npeers; i++) {
		for (k = s->peers[i].head; k < s->peers[i].len; k++)
			json_decref(s->peers[i].q[k]);
		free(s->peers[i].q);
	}
	free(s->peers);
	free(s);
}
