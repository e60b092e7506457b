/* The replicated state machine: store and sessions; see rsm.h. */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "core/log.h"
#include "core/u64map.h"
#include "kv/rsm.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

#define RSM_MAGIC	0x52445344U	/* "DSDR" little-endian */
#define RSM_VERSION	1
#define RSM_HDRLEN	48
#define RSM_OPHDR	20		/* client, seq, length */

#define RSM_SNAP_MAGIC	"DSD-RSNP"
#define RSM_SNAP_VERSION 1
#define RSM_SNAP_HDRLEN	40
#define RSM_SESSHDR	32

struct rsm_session {
	uint64_t			 client;
	uint64_t			 seq;
	int64_t				 used_ms;
	enum store_status		 status;
	struct store_entry		*value;		/* referenced, or NULL */
	TAILQ_ENTRY(rsm_session)	 lru;
};
TAILQ_HEAD(rsm_lru, rsm_session);

struct rsm {
	struct store		*store;
	struct u64map		*smap;		/* client id -> session */
	struct rsm_lru		 lru;		/* least recently used first */
	int64_t			 now_ms;	/* the latest entry's clock */
	struct rsm_frozen	*frozen;
	/* A store rsm_restore() replaced while frozen: still pinned, freed
	 * at rsm_thaw(). */
	struct store		*retired;
	/* The array the next freeze copies the table's entries into, its
	 * pages touched by the last encoder, off the loop. */
	struct store_entry	**spare;
	size_t			  sparecap;
};

/* A session as frozen: its value referenced for the frozen state. */
struct rsm_fsess {
	uint64_t		 client;
	uint64_t		 seq;
	int64_t			 used_ms;
	enum store_status	 status;
	struct store_entry	*value;
};

struct rsm_frozen {
	struct store		*store;		/* pinned */
	struct store_entry	**ents;
	size_t			  nents;
	struct store_entry	**next;		/* the next freeze's array */
	size_t			  nextcap;
	struct rsm_fsess	 *sess;
	size_t			  nsess;
	int64_t			  now_ms;
};

struct rsm *
rsm_new(void)
{
	struct rsm	*m;

	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	TAILQ_INIT(&m->lru);
	if ((m->store = store_new()) == NULL ||
	    (m->smap = u64map_new()) == NULL) {
		store_free(m->store);
		free(m);
		return NULL;
	}
	return m;
}

static void
rsm_session_free(struct rsm_session *s)
{
	if (s->value != NULL)
		store_entry_unref(s->value, __func__);
	free(s);
}

/* Forget every session of a table. */
static void
rsm_sessions_clear(struct u64map *smap, struct rsm_lru *lru)
{
	struct rsm_session	*s;

	while ((s = TAILQ_FIRST(lru)) != NULL) {
		TAILQ_REMOVE(lru, s, lru);
		u64map_del(smap, s->client);
		rsm_session_free(s);
	}
}

void
rsm_free(struct rsm *m)
{
	if (m == NULL)
		return;
	if (m->frozen != NULL)
		rsm_thaw(m, m->frozen);
	free(m->spare);
	rsm_sessions_clear(m->smap, &m->lru);
	u64map_free(m->smap);
	store_free(m->store);
	free(m);
}

struct store *
rsm_store(struct rsm *m)
{
	return m->store;
}

size_t
rsm_sessions(const struct rsm *m)
{
	return u64map_count(m->smap);
}

/* A session's share of the digest. */
static uint64_t
rsm_session_hash(uint64_t client, uint64_t seq, int64_t used_ms,
    enum store_status status, const struct store_entry *v)
{
	uint64_t	w[4];
	const uint8_t	*d;
	size_t		 len;

	w[0] = client;
	w[1] = seq;
	w[2] = (uint64_t)used_ms;
	w[3] = (uint64_t)status;
	if (v == NULL)
		return store_hash64(0, w, sizeof w);
	w[3] |= (uint64_t)1 << 32;
	d = store_entry_data(v, &len);
	return store_hash64(store_hash64(store_hash64(0, w, sizeof w), d,
	    len), (uint64_t[2]){ (uint64_t)store_entry_version(v),
	    (uint64_t)store_entry_timestamp(v) }, 16);
}

uint64_t
rsm_digest(const struct rsm *m)
{
	const struct rsm_session	*s;
	uint64_t			 sum = store_digest(m->store);

	TAILQ_FOREACH(s, &m->lru, lru)
		sum += rsm_session_hash(s->client, s->seq, s->used_ms,
		    s->status, s->value);
	return sum + (uint64_t)m->now_ms;
}

/* Batches. */

size_t
rsm_batch_cost(const struct store_op *op)
{
	return RSM_OPHDR + store_op_encode(op, NULL, 0);
}

/* Room for need more bytes. */
static int
rsm_batch_grow(struct rsm_batch *b, size_t need)
{
	uint8_t	*p;
	size_t	 cap;

	if (b->len + need <= b->cap)
		return 0;
	cap = b->cap < 4096 ? 4096 : b->cap;
	while (cap < b->len + need)
		cap *= 2;
	if ((p = realloc(b->buf, cap)) == NULL)
		return -1;
	b->buf = p;
	b->cap = cap;
	return 0;
}

int
rsm_batch_begin(struct rsm_batch *b, const struct rsm_origin *o)
{
	b->len = 0;
	b->nops = 0;
	if (rsm_batch_grow(b, RSM_HDRLEN) == -1)
		return -1;
	memset(b->buf, 0, RSM_HDRLEN);
	le_put32(b->buf, RSM_MAGIC);
	b->buf[4] = RSM_VERSION;
	le_put64(b->buf + 16, o->node);
	le_put64(b->buf + 24, o->incarnation);
	le_put64(b->buf + 32, o->batch);
	le_put64(b->buf + 40, (uint64_t)o->time_ms);
	b->len = RSM_HDRLEN;
	return 0;
}

int
rsm_batch_add(struct rsm_batch *b, uint64_t client, uint64_t seq,
    const struct store_op *op)
{
	size_t	oplen;

	if ((oplen = store_op_encode(op, NULL, 0)) == 0 ||
	    oplen > UINT32_MAX || rsm_batch_grow(b, RSM_OPHDR + oplen) == -1)
		return -1;
	le_put64(b->buf + b->len, client);
	le_put64(b->buf + b->len + 8, seq);
	le_put32(b->buf + b->len + 16, (uint32_t)oplen);
	store_op_encode(op, b->buf + b->len + RSM_OPHDR, oplen);
	b->len += RSM_OPHDR + oplen;
	b->nops++;
	le_put32(b->buf + 8, b->nops);
	return 0;
}

uint8_t *
rsm_batch_end(struct rsm_batch *b, size_t *len)
{
	uint8_t	*buf;
	size_t	 pad = (8 - b->len % 8) % 8;

	if (rsm_batch_grow(b, pad) == -1)
		return NULL;
	memset(b->buf + b->len, 0, pad);
	*len = b->len + pad;
	buf = b->buf;
	b->buf = NULL;
	b->len = b->cap = 0;
	b->nops = 0;
	return buf;
}

/* Applying. */

/* Forget sessions unused for the expiry time, as of now. */
static void
rsm_expire(struct rsm *m)
{
	struct rsm_session	*s;

	while ((s = TAILQ_FIRST(&m->lru)) != NULL &&
	    s->used_ms <= m->now_ms - RSM_SESSION_EXPIRY_MS) {
		TAILQ_REMOVE(&m->lru, s, lru);
		u64map_del(m->smap, s->client);
		rsm_session_free(s);
	}
}

/*
 * Apply one operation under its session, if any.  Returns 0, or -1 if
 * memory ran out (the store and the sessions are then as before).
 */
static int
rsm_apply_op(struct rsm *m, uint64_t client, uint64_t seq,
    const struct store_op *op, struct rsm_outcome *out)
{
	struct rsm_session	*s = NULL, *old;

	memset(out, 0, sizeof *out);
	if (client != 0 && (s = u64map_get(m->smap, client)) != NULL) {
		if (seq == s->seq) {
			out->kind = RSM_DUPLICATE;
			out->res.status = s->status;
			out->res.value = s->value;
			if (s->value != NULL)
				store_entry_ref(s->value, "rsm_duplicate");
			s->used_ms = m->now_ms;
			TAILQ_REMOVE(&m->lru, s, lru);
			TAILQ_INSERT_TAIL(&m->lru, s, lru);
			return 0;
		}
		if (seq < s->seq) {
			out->kind = RSM_STALE;
			out->res.status = STORE_ERROR;
			return 0;
		}
	}
	/* Allocate the session before the store changes, so that running
	 * out of memory changes nothing. */
	if (client != 0 && s == NULL) {
		if ((s = calloc(1, sizeof *s)) == NULL)
			return -1;
		s->client = client;
		if (u64map_put(m->smap, client, s) == -1) {
			free(s);
			return -1;
		}
		if (store_apply(m->store, op, &out->res) == -1) {
			u64map_del(m->smap, client);
			free(s);
			return -1;
		}
		TAILQ_INSERT_TAIL(&m->lru, s, lru);
		if (u64map_count(m->smap) > RSM_MAX_SESSIONS) {
			old = TAILQ_FIRST(&m->lru);
			TAILQ_REMOVE(&m->lru, old, lru);
			u64map_del(m->smap, old->client);
			rsm_session_free(old);
		}
	} else if (store_apply(m->store, op, &out->res) == -1)
		return -1;
	out->kind = RSM_APPLIED;
	if (s == NULL)
		return 0;
	if (s->value != NULL)
		store_entry_unref(s->value, __func__);
	s->seq = seq;
	s->used_ms = m->now_ms;
	s->status = out->res.status;
	s->value = out->res.value;
	if (s->value != NULL)
		store_entry_ref(s->value, "rsm_session");
	TAILQ_REMOVE(&m->lru, s, lru);
	TAILQ_INSERT_TAIL(&m->lru, s, lru);
	return 0;
}

/* Check an entry's framing from end to end before applying any of it,
 * so that a malformed one is skipped whole on every replica alike. */
static int
rsm_entry_check(const uint8_t *e, size_t len, uint32_t *nops)
{
	struct store_op	op;
	size_t		off = RSM_HDRLEN, oplen, i;
	uint32_t	n;

	if (len < RSM_HDRLEN || len % 8 != 0 || le_get32(e) != RSM_MAGIC ||
	    e[4] != RSM_VERSION)
		return -1;
	n = le_get32(e + 8);
	for (i = 0; i < n; i++) {
		if (len - off < RSM_OPHDR)
			return -1;
		oplen = le_get32(e + off + 16);
		if (oplen > len - off - RSM_OPHDR ||
		    store_op_decode(e + off + RSM_OPHDR, oplen, &op) == -1)
			return -1;
		off += RSM_OPHDR + oplen;
	}
	if (len - off >= 8)
		return -1;
	for (; off < len; off++) {
		if (e[off] != 0)
			return -1;
	}
	*nops = n;
	return 0;
}

int
rsm_apply(struct rsm *m, const uint8_t *e, size_t len, rsm_outcome_fn fn,
    void *arg)
{
	struct rsm_origin	 o;
	struct rsm_outcome	 out;
	struct store_op		 op;
	uint32_t		 n, i;
	size_t			 off = RSM_HDRLEN, oplen;
	uint64_t		 client, seq;

	if (rsm_entry_check(e, len, &n) == -1) {
		log_warnx("rsm: skipping a malformed entry of %zu bytes", len);
		return 0;
	}
	o.node = le_get64(e + 16);
	o.incarnation = le_get64(e + 24);
	o.batch = le_get64(e + 32);
	o.time_ms = (int64_t)le_get64(e + 40);
	/* A new leader's clock may be behind the last one's: log time
	 * never goes back. */
	if (o.time_ms > m->now_ms)
		m->now_ms = o.time_ms;
	rsm_expire(m);
	for (i = 0; i < n; i++) {
		client = le_get64(e + off);
		seq = le_get64(e + off + 8);
		oplen = le_get32(e + off + 16);
		(void)store_op_decode(e + off + RSM_OPHDR, oplen, &op);
		off += RSM_OPHDR + oplen;
		/* Operations before this one are applied: there is no going
		 * back, only stopping. */
		if (rsm_apply_op(m, client, seq, &op, &out) == -1)
			return -1;
		if (fn != NULL)
			fn(arg, &o, i, &out);
		store_result_release(&out.res);
	}
	return 0;
}

/* Snapshots. */

struct rsm_frozen *
rsm_freeze(struct rsm *m)
{
	struct rsm_frozen	*f;
	struct rsm_session	*s;
	size_t			 i = 0;

	if (m->frozen != NULL || (f = calloc(1, sizeof *f)) == NULL)
		return NULL;
	f->sess = reallocarray(NULL, u64map_count(m->smap) + 1,
	    sizeof *f->sess);
	if (f->sess == NULL || (f->ents = store_pin(m->store, m->spare,
	    m->sparecap, &f->nents)) == NULL) {
		free(f->sess);
		free(f);
		return NULL;
	}
	if (f->ents == m->spare) {
		m->spare = NULL;
		m->sparecap = 0;
	}
	f->store = m->store;
	f->now_ms = m->now_ms;
	TAILQ_FOREACH(s, &m->lru, lru) {
		f->sess[i].client = s->client;
		f->sess[i].seq = s->seq;
		f->sess[i].used_ms = s->used_ms;
		f->sess[i].status = s->status;
		f->sess[i].value = s->value;
		if (s->value != NULL)
			store_entry_ref(s->value, "rsm_freeze");
		i++;
	}
	f->nsess = i;
	m->frozen = f;
	return f;
}

/* Bytes of an entry as a snapshot holds it. */
static size_t
rsm_entry_size(const struct store_entry *e)
{
	size_t	k, d;

	(void)store_entry_key(e, &k);
	(void)store_entry_data(e, &d);
	return SNAP_ENTHDR + k + d;
}

/* Write an entry as a snapshot holds it; returns the end. */
static uint8_t *
rsm_put_entry(uint8_t *p, const struct store_entry *e)
{
	const uint8_t	*k, *d;
	size_t		 klen, dlen;

	k = store_entry_key(e, &klen);
	d = store_entry_data(e, &dlen);
	snap_entry_header(p, e);
	p += SNAP_ENTHDR;
	if (klen != 0)
		memcpy(p, k, klen);
	p += klen;
	if (dlen != 0)
		memcpy(p, d, dlen);
	return p + dlen;
}

/* Room for n entries and half as many again. */
static size_t
rsm_spare_cap(size_t n)
{
	return n + n / 2 + 1024;
}

/*
 * An array for a freeze to fill, its pages touched here, off the loop: on
 * the virtual machines we run on, first touches were most of the cost of
 * a freeze (25 of 27 ms for 1M keys).  NULL if memory ran out, which is
 * harmless: the freeze then allocates.
 */
void *
rsm_spare_make(size_t cap)
{
	struct store_entry	**a;

	if ((a = reallocarray(NULL, cap, sizeof *a)) != NULL)
		memset(a, 0, cap * sizeof *a);
	return a;
}

size_t
rsm_spare_wanted(const struct rsm *m)
{
	size_t	n = store_count(m->store);

	return m->sparecap > n + 1 || m->frozen != NULL ? 0 :
	    rsm_spare_cap(n);
}

void
rsm_spare_adopt(struct rsm *m, void *spare, size_t cap)
{
	if (spare == NULL)
		return;
	if (cap <= m->sparecap) {
		free(spare);
		return;
	}
	free(m->spare);
	m->spare = spare;
	m->sparecap = cap;
}

static void
rsm_prepare_next(struct rsm_frozen *f)
{
	f->nextcap = rsm_spare_cap(f->nents);
	if ((f->next = rsm_spare_make(f->nextcap)) == NULL)
		f->nextcap = 0;
}

uint8_t *
rsm_frozen_encode(struct rsm_frozen *f, size_t *lenp)
{
	uint8_t	*buf, *p;
	size_t	 len = RSM_SNAP_HDRLEN, i;

	for (i = 0; i < f->nents; i++)
		len += rsm_entry_size(f->ents[i]);
	for (i = 0; i < f->nsess; i++) {
		len += RSM_SESSHDR;
		if (f->sess[i].value != NULL)
			len += rsm_entry_size(f->sess[i].value);
	}
	if ((buf = malloc(len)) == NULL)
		return NULL;
	memcpy(buf, RSM_SNAP_MAGIC, 8);
	le_put32(buf + 8, RSM_SNAP_VERSION);
	le_put64(buf + 16, f->nents);
	le_put64(buf + 24, f->nsess);
	le_put64(buf + 32, (uint64_t)f->now_ms);
	p = buf + RSM_SNAP_HDRLEN;
	for (i = 0; i < f->nents; i++)
		p = rsm_put_entry(p, f->ents[i]);
	for (i = 0; i < f->nsess; i++) {
		memset(p, 0, RSM_SESSHDR);
		le_put64(p, f->sess[i].client);
		le_put64(p + 8, f->sess[i].seq);
		le_put64(p + 16, (uint64_t)f->sess[i].used_ms);
		p[24] = (uint8_t)f->sess[i].status;
		p[25] = f->sess[i].value != NULL;
		p += RSM_SESSHDR;
		if (f->sess[i].value != NULL)
			p = rsm_put_entry(p, f->sess[i].value);
	}
	le_put32(buf + 12, wal_crc32c(0, buf + 16, len - 16));
	*lenp = len;
	rsm_prepare_next(f);
	return buf;
}

void
rsm_thaw(struct rsm *m, struct rsm_frozen *f)
{
	size_t	i;

	for (i = 0; i < f->nsess; i++) {
		if (f->sess[i].value != NULL)
			store_entry_unref(f->sess[i].value, __func__);
	}
	store_unpin(f->store);
	free(f->ents);
	rsm_spare_adopt(m, f->next, f->nextcap);
	if (m->retired == f->store) {
		store_free(m->retired);
		m->retired = NULL;
	}
	free(f->sess);
	free(f);
	m->frozen = NULL;
}

/* Read one session of a snapshot at buf + *off into a new table. */
static int
rsm_restore_session(struct u64map *smap, struct rsm_lru *lru,
    const uint8_t *buf, size_t len, size_t *off, char *err, size_t errlen)
{
	struct rsm_session	*s;
	struct snap_entry	 e;
	size_t			 used, at = *off;

	if (len - at < RSM_SESSHDR) {
		snprintf(err, errlen, "offset %zu: a session runs past the "
		    "end", at);
		return -1;
	}
	if ((s = calloc(1, sizeof *s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->client = le_get64(buf + at);
	s->seq = le_get64(buf + at + 8);
	s->used_ms = (int64_t)le_get64(buf + at + 16);
	s->status = buf[at + 24];
	*off += RSM_SESSHDR;
	if (buf[at + 25]) {
		if (snap_entry_parse(buf + *off, len - *off, &e, &used) == -1 ||
		    (s->value = store_entry_make(e.key, e.keylen, e.version,
		    e.timestamp, e.data, e.datalen)) == NULL) {
			snprintf(err, errlen, "offset %zu: a session's value "
			    "is short or bad", *off);
			free(s);
			return -1;
		}
		*off += used;
	}
	if (s->client == 0 || s->status > STORE_ERROR_WV ||
	    u64map_get(smap, s->client) != NULL ||
	    u64map_put(smap, s->client, s) == -1) {
		snprintf(err, errlen, "offset %zu: a bad or duplicate session",
		    at);
		rsm_session_free(s);
		return -1;
	}
	TAILQ_INSERT_TAIL(lru, s, lru);
	return 0;
}

int
rsm_restore(struct rsm *m, const uint8_t *buf, size_t len, char *err,
    size_t errlen)
{
	struct store	*st = NULL;
	struct u64map	*smap = NULL;
	struct rsm_lru	 lru;
	uint64_t	 nents, nsess, i;
	size_t		 off, used;
	char		 msg[200];

	TAILQ_INIT(&lru);
	if (len < RSM_SNAP_HDRLEN || memcmp(buf, RSM_SNAP_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a kvdb-replicated snapshot");
		return -1;
	}
	if (le_get32(buf + 8) != RSM_SNAP_VERSION) {
		snprintf(err, errlen, "snapshot format version %" PRIu32
		    ", this dsd reads %d", le_get32(buf + 8), RSM_SNAP_VERSION);
		return -1;
	}
	if (wal_crc32c(0, buf + 16, len - 16) != le_get32(buf + 12)) {
		snprintf(err, errlen, "snapshot checksum mismatch");
		return -1;
	}
	nents = le_get64(buf + 16);
	nsess = le_get64(buf + 24);
	if ((st = store_new()) == NULL || (smap = u64map_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	off = RSM_SNAP_HDRLEN;
	if (snap_entries_load(st, buf + off, len - off, nents, &used, msg,
	    sizeof msg) == -1) {
		snprintf(err, errlen, "keys: %s", msg);
		goto fail;
	}
	off += used;
	for (i = 0; i < nsess; i++) {
		if (rsm_restore_session(smap, &lru, buf, len, &off, err,
		    errlen) == -1)
			goto fail;
	}
	if (off != len) {
		snprintf(err, errlen, "offset %zu: data after the sessions",
		    off);
		goto fail;
	}

	rsm_sessions_clear(m->smap, &m->lru);
	u64map_free(m->smap);
	if (m->frozen != NULL && m->frozen->store == m->store)
		m->retired = m->store;	/* a reader is still on it */
	else
		store_free(m->store);
	m->store = st;
	m->smap = smap;
	TAILQ_CONCAT(&m->lru, &lru, lru);
	m->now_ms = (int64_t)le_get64(buf + 32);
	/* This pause is long anyway: make the next freeze's array now. */
	rsm_spare_adopt(m, rsm_spare_make(rsm_spare_cap(nents)),
	    rsm_spare_cap(nents));
	return 0;

fail:
	if (smap != NULL) {
		rsm_sessions_clear(smap, &lru);
		u64map_free(smap);
	}
	store_free(st);
	return -1;
}
