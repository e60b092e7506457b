/*
 * Unit tests of the replicated state machine (src/kv/rsm.c): batches,
 * sessions (exactly-once retries, staleness, expiry, the bound), pinned
 * snapshots encoded on another thread while entries go on being applied,
 * restore, digests, and malformed input.
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/rsm.h"
#include "kv/store.h"

/* What the outcome callback saw: the first 64 outcomes of an entry. */
struct seen {
	struct rsm_origin	origin;
	uint32_t		n;
	int			kind[64];
	enum store_status	status[64];
	int64_t			version[64];	/* -1: no value */
	char			data[64][32];
};

static void
record(void *arg, const struct rsm_origin *o, uint32_t i,
    const struct rsm_outcome *out)
{
	struct seen	*s = arg;
	const uint8_t	*d;
	size_t		 len;

	assert_int_equal(i, s->n);
	s->origin = *o;
	if (i >= 64) {
		/* Counted, not kept. */
		s->n++;
		return;
	}
	s->kind[i] = out->kind;
	s->status[i] = out->res.status;
	s->version[i] = -1;
	s->data[i][0] = '\0';
	if (out->res.value != NULL) {
		s->version[i] = store_entry_version(out->res.value);
		d = store_entry_data(out->res.value, &len);
		assert_true(len < sizeof s->data[i]);
		memcpy(s->data[i], d, len);
		s->data[i][len] = '\0';
	}
	s->n++;
}

/* A batch under construction, by test helpers. */
struct batch {
	struct rsm_batch	b;
	struct rsm_origin	o;
};

static void
begin(struct batch *b, int64_t time_ms)
{
	memset(b, 0, sizeof *b);
	b->o.node = 1;
	b->o.incarnation = 42;
	b->o.batch = 7;
	b->o.time_ms = time_ms;
	assert_int_equal(rsm_batch_begin(&b->b, &b->o), 0);
}

static void
add(struct batch *b, uint64_t client, uint64_t seq, enum store_op_type type,
    uint8_t key, int64_t version, const char *data)
{
	struct store_op	op;

	memset(&op, 0, sizeof op);
	op.type = type;
	op.key = &key;
	op.keylen = 1;
	op.version = version;
	op.timestamp = 1000 + key;
	if (data != NULL) {
		op.data = (const uint8_t *)data;
		op.datalen = strlen(data);
	}
	assert_int_equal(rsm_batch_add(&b->b, client, seq, &op), 0);
}

/* End the batch and apply it, recording outcomes. */
static void
apply(struct rsm *m, struct batch *b, struct seen *s)
{
	uint8_t	*e;
	size_t	 len;

	e = rsm_batch_end(&b->b, &len);
	assert_non_null(e);
	assert_int_equal(len % 8, 0);
	memset(s, 0, sizeof *s);
	assert_int_equal(rsm_apply(m, e, len, record, s), 0);
	free(e);
}

/* One operation in a batch of its own. */
static void
one(struct rsm *m, int64_t t, uint64_t client, uint64_t seq,
    enum store_op_type type, uint8_t key, int64_t version, const char *data,
    struct seen *s)
{
	struct batch	b;

	begin(&b, t);
	add(&b, client, seq, type, key, version, data);
	apply(m, &b, s);
}

/* A batch applies its operations in order and reports each with the
 * batch's origin. */
static void
test_batch(void **unused)
{
	struct rsm	*m = rsm_new();
	struct batch	 b;
	struct seen	 s;

	begin(&b, 100);
	add(&b, 0, 0, STORE_OP_SET, 1, 0, "a");
	add(&b, 0, 0, STORE_OP_SET, 1, 0, "b");
	add(&b, 0, 0, STORE_OP_TESTANDSET, 1, 1, "c");
	add(&b, 0, 0, STORE_OP_GET, 1, 0, NULL);
	add(&b, 0, 0, STORE_OP_DELVERSION, 1, 1, NULL);
	add(&b, 0, 0, STORE_OP_DEL, 2, 0, NULL);
	apply(m, &b, &s);
	assert_int_equal(s.n, 6);
	assert_int_equal(s.origin.node, 1);
	assert_int_equal(s.origin.incarnation, 42);
	assert_int_equal(s.origin.batch, 7);
	assert_int_equal(s.origin.time_ms, 100);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	assert_int_equal(s.status[1], STORE_ERROR);
	assert_string_equal(s.data[1], "a");
	assert_int_equal(s.status[2], STORE_SUCCESS);
	assert_int_equal(s.status[3], STORE_SUCCESS);
	assert_int_equal(s.version[3], 2);
	assert_string_equal(s.data[3], "c");
	assert_int_equal(s.status[4], STORE_ERROR_WV);
	assert_int_equal(s.status[5], STORE_ERROR);
	assert_int_equal(store_count(rsm_store(m)), 1);
	rsm_free(m);
}

/* A retry (same client, same sequence) gets the first result and changes
 * nothing, even after the key moved on; an older sequence is stale; a
 * newer one is applied. */
static void
test_sessions(void **unused)
{
	struct rsm	*m = rsm_new();
	struct seen	 s;

	one(m, 10, 0, 0, STORE_OP_SET, 5, 0, "v1", &s);
	one(m, 11, 77, 1, STORE_OP_TESTANDSET, 5, 1, "v2", &s);
	assert_int_equal(s.kind[0], RSM_APPLIED);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	assert_string_equal(s.data[0], "v1");
	/* Someone else moves the key on. */
	one(m, 12, 0, 0, STORE_OP_TESTANDSET, 5, 2, "v3", &s);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	/* The retry: the first answer, not ERROR_WV, and no new version. */
	one(m, 13, 77, 1, STORE_OP_TESTANDSET, 5, 1, "v2", &s);
	assert_int_equal(s.kind[0], RSM_DUPLICATE);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	assert_string_equal(s.data[0], "v1");
	one(m, 14, 0, 0, STORE_OP_GET, 5, 0, NULL, &s);
	assert_int_equal(s.version[0], 3);
	assert_string_equal(s.data[0], "v3");
	/* The next sequence number is applied. */
	one(m, 15, 77, 2, STORE_OP_TESTANDSET, 5, 3, "v4", &s);
	assert_int_equal(s.kind[0], RSM_APPLIED);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	/* An older one is stale and does nothing. */
	one(m, 16, 77, 1, STORE_OP_DEL, 5, 0, NULL, &s);
	assert_int_equal(s.kind[0], RSM_STALE);
	assert_int_equal(store_count(rsm_store(m)), 1);
	/* A remembered failure is answered as a failure. */
	one(m, 17, 78, 1, STORE_OP_DELVERSION, 5, 99, NULL, &s);
	assert_int_equal(s.status[0], STORE_ERROR_WV);
	one(m, 18, 78, 1, STORE_OP_DELVERSION, 5, 99, NULL, &s);
	assert_int_equal(s.kind[0], RSM_DUPLICATE);
	assert_int_equal(s.status[0], STORE_ERROR_WV);
	assert_int_equal(s.version[0], 4);
	assert_int_equal(rsm_sessions(m), 2);
	rsm_free(m);
}

/* A session unused for the expiry time of log time is forgotten, and log
 * time does not go back when a leader's clock does. */
static void
test_expiry(void **unused)
{
	struct rsm	*m = rsm_new();
	struct seen	 s;
	int64_t		 t0 = 1000000;

	one(m, t0, 1, 1, STORE_OP_SET, 1, 0, "a", &s);
	one(m, t0 + 1000, 2, 1, STORE_OP_SET, 2, 0, "b", &s);
	/* A clock far behind: log time stays at t0 + 1000. */
	one(m, 5, 3, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_int_equal(rsm_sessions(m), 3);
	one(m, t0 + RSM_SESSION_EXPIRY_MS, 0, 0, STORE_OP_GET, 9, 0, NULL, &s);
	assert_int_equal(rsm_sessions(m), 2);
	/* Client 1 is forgotten: its retry is applied again (ERROR now). */
	one(m, t0 + RSM_SESSION_EXPIRY_MS, 1, 1, STORE_OP_SET, 1, 0, "a", &s);
	assert_int_equal(s.kind[0], RSM_APPLIED);
	assert_int_equal(s.status[0], STORE_ERROR);
	one(m, t0 + 1000 + RSM_SESSION_EXPIRY_MS, 0, 0, STORE_OP_GET, 9, 0,
	    NULL, &s);
	assert_int_equal(rsm_sessions(m), 1);
	rsm_free(m);
}

/* Past the bound the least recently used session goes. */
static void
test_bound(void **unused)
{
	struct rsm	*m = rsm_new();
	struct batch	 b;
	struct seen	 s;
	uint64_t	 c;

	begin(&b, 1);
	for (c = 1; c <= RSM_MAX_SESSIONS; c++) {
		add(&b, c, 1, STORE_OP_GET, 1, 0, NULL);
		if (c % 50 == 0 || c == RSM_MAX_SESSIONS) {
			apply(m, &b, &s);
			begin(&b, 1);
		}
	}
	free(b.b.buf);
	assert_int_equal(rsm_sessions(m), RSM_MAX_SESSIONS);
	/* Client 1 is used again, so client 2 is now the oldest. */
	one(m, 2, 1, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_int_equal(s.kind[0], RSM_DUPLICATE);
	one(m, 3, RSM_MAX_SESSIONS + 1, 1, STORE_OP_SET, 1, 0, "x", &s);
	assert_int_equal(rsm_sessions(m), RSM_MAX_SESSIONS);
	one(m, 4, 1, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_int_equal(s.kind[0], RSM_DUPLICATE);
	one(m, 5, 2, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_int_equal(s.kind[0], RSM_APPLIED);
	rsm_free(m);
}

/* A malformed entry is skipped whole: nothing of it is applied. */
static void
test_malformed(void **unused)
{
	struct rsm	*m = rsm_new();
	struct batch	 b;
	struct seen	 s;
	uint8_t		*e;
	size_t		 len;

	begin(&b, 1);
	add(&b, 0, 0, STORE_OP_SET, 1, 0, "a");
	add(&b, 0, 0, STORE_OP_SET, 2, 0, "b");
	e = rsm_batch_end(&b.b, &len);
	memset(&s, 0, sizeof s);
	/* Not a multiple of 8, truncated, a lying count, bad padding. */
	assert_int_equal(rsm_apply(m, e, len - 8, record, &s), 0);
	e[8]++;
	assert_int_equal(rsm_apply(m, e, len, record, &s), 0);
	e[8]--;
	e[len - 1] = 1;
	assert_int_equal(rsm_apply(m, e, len, record, &s), 0);
	e[len - 1] = 0;
	assert_int_equal(rsm_apply(m, e, len - 1, record, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(store_count(rsm_store(m)), 0);
	/* And the good one is applied. */
	assert_int_equal(rsm_apply(m, e, len, record, &s), 0);
	assert_int_equal(s.n, 2);
	free(e);
	rsm_free(m);
}

/* Two machines fed the same entries have the same digest; a different
 * value, or a different session, makes it differ. */
static void
test_digest(void **unused)
{
	struct rsm	*a = rsm_new(), *b = rsm_new();
	struct seen	 s;

	one(a, 1, 0, 0, STORE_OP_SET, 1, 0, "x", &s);
	one(b, 1, 0, 0, STORE_OP_SET, 1, 0, "x", &s);
	assert_true(rsm_digest(a) == rsm_digest(b));
	one(a, 2, 5, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_true(rsm_digest(a) != rsm_digest(b));
	one(b, 2, 5, 1, STORE_OP_GET, 1, 0, NULL, &s);
	assert_true(rsm_digest(a) == rsm_digest(b));
	one(a, 3, 0, 0, STORE_OP_TESTANDSET, 1, 1, "y", &s);
	one(b, 3, 0, 0, STORE_OP_TESTANDSET, 1, 1, "z", &s);
	assert_true(rsm_digest(a) != rsm_digest(b));
	rsm_free(a);
	rsm_free(b);
}

/* The encoder thread of a frozen state, as libraft's snapshot_async. */
struct encoder {
	struct rsm_frozen	*f;
	uint8_t			*buf;
	size_t			 len;
};

static void *
encode_thread(void *arg)
{
	struct encoder	*x = arg;

	x->buf = rsm_frozen_encode(x->f, &x->len);
	return NULL;
}

/* A snapshot is the state at the freeze, whatever is applied while it is
 * encoded on another thread; restored, it gives the same digest. */
static void
test_snapshot(void **unused)
{
	struct rsm	*m = rsm_new(), *r = rsm_new();
	struct batch	 b;
	struct seen	 s;
	struct encoder	 x;
	pthread_t	 th;
	uint64_t	 before;
	char		 err[256];
	int		 i;

	begin(&b, 50);
	for (i = 0; i < 200; i++)
		add(&b, 0, 0, STORE_OP_SET, (uint8_t)i, 0, "value");
	apply(m, &b, &s);
	one(m, 60, 9, 3, STORE_OP_DEL, 7, 0, NULL, &s);
	before = rsm_digest(m);
	x.f = rsm_freeze(m);
	assert_non_null(x.f);
	assert_null(rsm_freeze(m));
	assert_int_equal(pthread_create(&th, NULL, encode_thread, &x), 0);
	/* Change everything the frozen state holds while it is read. */
	for (i = 0; i < 200; i++) {
		one(m, 70, 0, 0, i % 2 ? STORE_OP_DEL : STORE_OP_TESTANDSET,
		    (uint8_t)i, 1, "changed", &s);
	}
	one(m, 80, 9, 4, STORE_OP_SET, 7, 0, "again", &s);
	assert_int_equal(pthread_join(th, NULL), 0);
	rsm_thaw(m, x.f);
	assert_non_null(x.buf);
	assert_true(rsm_digest(m) != before);

	assert_int_equal(rsm_restore(r, x.buf, x.len, err, sizeof err), 0);
	assert_true(rsm_digest(r) == before);
	assert_int_equal(store_count(rsm_store(r)), 199);
	assert_int_equal(rsm_sessions(r), 1);
	/* The session came along: its retry is a duplicate there too. */
	one(r, 90, 9, 3, STORE_OP_DEL, 7, 0, NULL, &s);
	assert_int_equal(s.kind[0], RSM_DUPLICATE);
	assert_int_equal(s.status[0], STORE_SUCCESS);
	assert_string_equal(s.data[0], "value");

	/* Damage is refused and leaves the state as it was. */
	before = rsm_digest(r);
	x.buf[x.len / 2] ^= 0x40;
	assert_int_equal(rsm_restore(r, x.buf, x.len, err, sizeof err), -1);
	assert_non_null(strstr(err, "checksum"));
	x.buf[x.len / 2] ^= 0x40;
	assert_int_equal(rsm_restore(r, x.buf, x.len - 1, err, sizeof err),
	    -1);
	assert_int_equal(rsm_restore(r, x.buf, 10, err, sizeof err), -1);
	assert_true(rsm_digest(r) == before);
	free(x.buf);
	rsm_free(m);
	rsm_free(r);
}

/* A restore while a snapshot is being encoded leaves the encoder's store
 * alone until it is thawed. */
static void
test_restore_while_frozen(void **unused)
{
	struct rsm		*m = rsm_new(), *src = rsm_new();
	struct rsm_frozen	*f, *g;
	struct seen		 s;
	uint8_t			*snap, *enc;
	size_t			 slen, elen;
	char			 err[256];

	one(src, 1, 0, 0, STORE_OP_SET, 1, 0, "src", &s);
	g = rsm_freeze(src);
	snap = rsm_frozen_encode(g, &slen);
	rsm_thaw(src, g);
	one(m, 1, 0, 0, STORE_OP_SET, 2, 0, "old", &s);
	f = rsm_freeze(m);
	assert_int_equal(rsm_restore(m, snap, slen, err, sizeof err), 0);
	one(m, 2, 0, 0, STORE_OP_DEL, 1, 0, NULL, &s);
	enc = rsm_frozen_encode(f, &elen);
	rsm_thaw(m, f);
	assert_non_null(enc);
	/* What was frozen is the old state: restore it to see. */
	assert_int_equal(rsm_restore(src, enc, elen, err, sizeof err), 0);
	one(src, 3, 0, 0, STORE_OP_GET, 2, 0, NULL, &s);
	assert_string_equal(s.data[0], "old");
	assert_int_equal(store_count(rsm_store(m)), 0);
	free(snap);
	free(enc);
	rsm_free(m);
	rsm_free(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_restore_while_frozen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
