/* Unit tests of the kvdb state machine: every operation and result code,
 * key forms, value lifetimes, the binary encoding, and a random model. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gmp.h>

#include "kv/store.h"

/* Helpers: operations on byte-string keys and text data. */

static struct store_op
op_make(enum store_op_type type, const void *key, size_t keylen)
{
	struct store_op	op;

	memset(&op, 0, sizeof op);
	op.type = type;
	op.key = key;
	op.keylen = keylen;
	return op;
}

static struct store_result
run(struct store *s, const struct store_op *op)
{
	struct store_result	res;

	assert_int_equal(store_apply(s, op, &res), 0);
	return res;
}

static struct store_result
do_set(struct store *s, const void *key, size_t keylen, int64_t ts,
    const char *data)
{
	struct store_op	op = op_make(STORE_OP_SET, key, keylen);

	op.timestamp = ts;
	op.data = (const uint8_t *)data;
	op.datalen = strlen(data);
	return run(s, &op);
}

static struct store_result
do_tas(struct store *s, const void *key, size_t keylen, int64_t ts,
    const char *data, int64_t version)
{
	struct store_op	op = op_make(STORE_OP_TESTANDSET, key, keylen);

	op.timestamp = ts;
	op.data = (const uint8_t *)data;
	op.datalen = strlen(data);
	op.version = version;
	return run(s, &op);
}

static struct store_result
do_simple(struct store *s, enum store_op_type type, const void *key,
    size_t keylen, int64_t version)
{
	struct store_op	op = op_make(type, key, keylen);

	op.version = version;
	return run(s, &op);
}

/* Check a result's status and value, then release it. */
static void
check(struct store_result res, enum store_status status, int64_t version,
    int64_t ts, const char *data)
{
	const uint8_t	*p;
	size_t		 len;

	assert_int_equal(res.status, status);
	if (data == NULL) {
		assert_null(res.value);
		return;
	}
	assert_non_null(res.value);
	assert_int_equal(store_entry_version(res.value), version);
	assert_int_equal(store_entry_timestamp(res.value), ts);
	p = store_entry_data(res.value, &len);
	assert_int_equal(len, strlen(data));
	assert_memory_equal(p, data, len);
	store_result_release(&res);
	assert_null(res.value);
}

static const uint8_t K1[] = { 0x01, 0x02, 0x03 };

/* Operations and result codes. */

static void
test_set_and_get(void **unused)
{
	struct store	*s = store_new();

	/* set on an absent key inserts version 1 and returns no value; set
	 * on a present key returns the current value and changes nothing. */
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_ERROR, 0, 0,
	    NULL);
	check(do_set(s, K1, sizeof K1, 100, "one"), STORE_SUCCESS, 0, 0, NULL);
	check(do_set(s, K1, sizeof K1, 200, "two"), STORE_ERROR, 1, 100,
	    "one");
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_SUCCESS, 1,
	    100, "one");
	assert_int_equal(store_count(s), 1);
	store_free(s);
}

static void
test_del(void **unused)
{
	struct store	*s = store_new();

	/* del returns the removed value, then ERROR with no value. */
	check(do_simple(s, STORE_OP_DEL, K1, sizeof K1, 0), STORE_ERROR, 0, 0,
	    NULL);
	check(do_set(s, K1, sizeof K1, 5, "x"), STORE_SUCCESS, 0, 0, NULL);
	check(do_simple(s, STORE_OP_DEL, K1, sizeof K1, 0), STORE_SUCCESS, 1,
	    5, "x");
	check(do_simple(s, STORE_OP_DEL, K1, sizeof K1, 0), STORE_ERROR, 0, 0,
	    NULL);
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_ERROR, 0, 0,
	    NULL);
	assert_int_equal(store_count(s), 0);
	store_free(s);
}

static void
test_delversion(void **unused)
{
	struct store	*s = store_new();

	/* delVersion: ERROR_NE when absent, ERROR_WV with the current value
	 * on another version (nothing removed), SUCCESS with the removed
	 * value on the right one. */
	check(do_simple(s, STORE_OP_DELVERSION, K1, sizeof K1, 1),
	    STORE_ERROR_NE, 0, 0, NULL);
	check(do_set(s, K1, sizeof K1, 7, "v"), STORE_SUCCESS, 0, 0, NULL);
	check(do_simple(s, STORE_OP_DELVERSION, K1, sizeof K1, 2),
	    STORE_ERROR_WV, 1, 7, "v");
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_SUCCESS, 1,
	    7, "v");
	check(do_simple(s, STORE_OP_DELVERSION, K1, sizeof K1, 1),
	    STORE_SUCCESS, 1, 7, "v");
	check(do_simple(s, STORE_OP_DELVERSION, K1, sizeof K1, 1),
	    STORE_ERROR_NE, 0, 0, NULL);
	store_free(s);
}

static void
test_testandset(void **unused)
{
	struct store	*s = store_new();

	/* testAndSet: ERROR_NE when absent, ERROR_WV with the current value
	 * on another version, SUCCESS with the previous value and the
	 * version raised by one on the right one. */
	check(do_tas(s, K1, sizeof K1, 1, "a", 1), STORE_ERROR_NE, 0, 0, NULL);
	check(do_set(s, K1, sizeof K1, 10, "a"), STORE_SUCCESS, 0, 0, NULL);
	check(do_tas(s, K1, sizeof K1, 20, "b", 1), STORE_SUCCESS, 1, 10, "a");
	check(do_tas(s, K1, sizeof K1, 30, "c", 1), STORE_ERROR_WV, 2, 20,
	    "b");
	check(do_tas(s, K1, sizeof K1, 40, "", 2), STORE_SUCCESS, 2, 20, "b");
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_SUCCESS, 3,
	    40, "");
	assert_int_equal(store_count(s), 1);
	store_free(s);
}

static void
test_testandset_version_overflow(void **unused)
{
	struct store	*s = store_new();

	/* At version INT64_MAX testAndSet cannot raise the version: ERROR
	 * with the current value, deterministically, nothing changed. */
	assert_int_equal(store_restore(s, K1, sizeof K1, INT64_MAX, 1,
	    (const uint8_t *)"m", 1), 0);
	check(do_tas(s, K1, sizeof K1, 2, "n", INT64_MAX), STORE_ERROR,
	    INT64_MAX, 1, "m");
	check(do_simple(s, STORE_OP_GET, K1, sizeof K1, 0), STORE_SUCCESS,
	    INT64_MAX, 1, "m");
	store_free(s);
}

static void
test_oversized_key_refused(void **unused)
{
	struct store	*s = store_new();
	uint8_t		*big = calloc(1, STORE_KEY_MAX + 2);

	/* A key over the limit gets ERROR and is not stored; leading zero
	 * bytes do not count against it. */
	big[2] = 0x01;
	check(do_set(s, big, STORE_KEY_MAX + 2, 1, "x"), STORE_SUCCESS, 0, 0,
	    NULL);
	memset(big, 0x11, STORE_KEY_MAX + 1);
	check(do_set(s, big, STORE_KEY_MAX + 1, 1, "x"), STORE_ERROR, 0, 0,
	    NULL);
	assert_int_equal(store_count(s), 1);
	free(big);
	store_free(s);
}

static void
test_results_survive_changes(void **unused)
{
	struct store		*s = store_new();
	struct store_result	 got, del, tas_prev;
	const uint8_t		*p;
	size_t			 len;

	/* Values held by results stay readable after the key is replaced,
	 * deleted, and the store itself freed. */
	check(do_set(s, K1, sizeof K1, 1, "first"), STORE_SUCCESS, 0, 0, NULL);
	got = do_simple(s, STORE_OP_GET, K1, sizeof K1, 0);
	tas_prev = do_tas(s, K1, sizeof K1, 2, "second", 1);
	del = do_simple(s, STORE_OP_DEL, K1, sizeof K1, 0);
	check(do_set(s, K1, sizeof K1, 3, "third"), STORE_SUCCESS, 0, 0, NULL);
	store_free(s);

	p = store_entry_data(got.value, &len);
	assert_memory_equal(p, "first", len);
	assert_ptr_equal(got.value, tas_prev.value);
	p = store_entry_data(del.value, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(p, "second", len);
	assert_int_equal(store_entry_version(del.value), 2);
	store_result_release(&got);
	store_result_release(&got);	/* twice is harmless */
	store_result_release(&tas_prev);
	store_result_release(&del);
}

/* Keys. */

struct canon_case {
	uint8_t		in[6];
	size_t		inlen;
	size_t		off;
	size_t		len;
};

static void
test_key_canon(void **unused)
{
	static const struct canon_case cases[] = {
		{ { 0 }, 0, 0, 0 },			/* empty: zero */
		{ { 0x00 }, 1, 1, 0 },			/* 00: zero */
		{ { 0x00, 0x00, 0x00 }, 3, 3, 0 },	/* 00 00 00: zero */
		{ { 0x05 }, 1, 0, 1 },
		{ { 0x00, 0x05 }, 2, 1, 1 },		/* 5 */
		{ { 0x00, 0x00, 0x05 }, 3, 2, 1 },
		{ { 0x00, 0x80 }, 2, 0, 2 },		/* 128 needs its 00 */
		{ { 0x00, 0x00, 0x80 }, 3, 1, 2 },
		{ { 0xff }, 1, 0, 1 },			/* -1 */
		{ { 0xff, 0xff }, 2, 1, 1 },		/* -1 */
		{ { 0x80 }, 1, 0, 1 },			/* -128 */
		{ { 0xff, 0x80 }, 2, 1, 1 },		/* -128 */
		{ { 0xff, 0xff, 0x80 }, 3, 2, 1 },	/* -128 */
		{ { 0xff, 0x7f }, 2, 0, 2 },		/* -129 needs its FF */
		{ { 0xff, 0xff, 0x7f }, 3, 1, 2 },
		{ { 0x7f, 0xff }, 2, 0, 2 },
		{ { 0x00, 0xff, 0xff }, 3, 0, 3 },	/* 65535 */
	};
	size_t	i, off, len;

	/* Redundant sign bytes go, the ones that carry the sign stay. */
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		len = store_key_canon(cases[i].in, cases[i].inlen, &off);
		assert_int_equal(off, cases[i].off);
		assert_int_equal(len, cases[i].len);
	}
}

static void
test_key_forms_are_one_key(void **unused)
{
	struct store	*s = store_new();
	static const uint8_t five[] = { 0x05 }, five2[] = { 0x00, 0x05 };
	static const uint8_t m128[] = { 0xff, 0xff, 0x80 }, m128b[] = { 0x80 };
	static const uint8_t zero[] = { 0x00 }, zero3[] = { 0, 0, 0 };

	/* 00 05 and 05 are one key, FF FF 80 and 80 too, and empty, 00
	 * and 00 00 00 are all zero; stored keys are canonical. */
	check(do_set(s, five2, sizeof five2, 1, "five"), STORE_SUCCESS, 0, 0,
	    NULL);
	check(do_simple(s, STORE_OP_GET, five, sizeof five, 0), STORE_SUCCESS,
	    1, 1, "five");
	check(do_set(s, m128, sizeof m128, 2, "m128"), STORE_SUCCESS, 0, 0,
	    NULL);
	check(do_set(s, m128b, sizeof m128b, 3, "again"), STORE_ERROR, 1, 2,
	    "m128");
	check(do_set(s, NULL, 0, 4, "zero"), STORE_SUCCESS, 0, 0, NULL);
	check(do_simple(s, STORE_OP_GET, zero, sizeof zero, 0), STORE_SUCCESS,
	    1, 4, "zero");
	check(do_simple(s, STORE_OP_DEL, zero3, sizeof zero3, 0),
	    STORE_SUCCESS, 1, 4, "zero");
	assert_int_equal(store_count(s), 2);
	store_free(s);
}

/* mpz conversion both ways, against the expected bytes. */
static void
check_mpz(const char *dec, const uint8_t *want, size_t wantlen)
{
	mpz_t	v, back;
	uint8_t	buf[16], pad[18];
	size_t	n;

	mpz_init_set_str(v, dec, 10);
	mpz_init(back);
	n = store_key_from_mpz(v, NULL, 0);
	assert_int_equal(n, wantlen);
	assert_int_equal(store_key_from_mpz(v, buf, sizeof buf), wantlen);
	assert_memory_equal(buf, want, wantlen);
	store_key_to_mpz(back, buf, n);
	assert_int_equal(mpz_cmp(v, back), 0);

	/* The same number with redundant sign bytes in front. */
	memset(pad, mpz_sgn(v) < 0 ? 0xff : 0x00, 2);
	memcpy(pad + 2, want, wantlen);
	store_key_to_mpz(back, pad, wantlen + 2);
	assert_int_equal(mpz_cmp(v, back), 0);
	mpz_clear(v);
	mpz_clear(back);
}

static void
test_key_mpz(void **unused)
{
	static const uint8_t two64[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t mtwo64[] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 0 };
	mpz_t	zero;

	/* Java's toByteArray() form for the edge values, both ways. */
	check_mpz("0", (const uint8_t *)"\x00", 1);
	check_mpz("1", (const uint8_t *)"\x01", 1);
	check_mpz("-1", (const uint8_t *)"\xff", 1);
	check_mpz("127", (const uint8_t *)"\x7f", 1);
	check_mpz("-127", (const uint8_t *)"\x81", 1);
	check_mpz("128", (const uint8_t *)"\x00\x80", 2);
	check_mpz("-128", (const uint8_t *)"\x80", 1);
	check_mpz("255", (const uint8_t *)"\x00\xff", 2);
	check_mpz("-255", (const uint8_t *)"\xff\x01", 2);
	check_mpz("256", (const uint8_t *)"\x01\x00", 2);
	check_mpz("-256", (const uint8_t *)"\xff\x00", 2);
	check_mpz("18446744073709551616", two64, sizeof two64);
	check_mpz("-18446744073709551616", mtwo64, sizeof mtwo64);

	/* Empty bytes read as zero. */
	mpz_init_set_ui(zero, 7);
	store_key_to_mpz(zero, NULL, 0);
	assert_int_equal(mpz_sgn(zero), 0);
	mpz_clear(zero);
}

static void
test_key_mpz_4096_bits(void **unused)
{
	mpz_t		 v, back;
	uint8_t		*buf;
	size_t		 n, off;
	int		 sign;

	/* 2^4095 + 12345 and its negation round-trip through 513 bytes,
	 * and the bytes are already canonical. */
	mpz_init(v);
	mpz_init(back);
	for (sign = 1; sign >= -1; sign -= 2) {
		mpz_set_ui(v, 0);
		mpz_setbit(v, 4095);
		mpz_add_ui(v, v, 12345);
		if (sign < 0)
			mpz_neg(v, v);
		n = store_key_from_mpz(v, NULL, 0);
		assert_int_equal(n, 513);
		buf = malloc(n);
		assert_int_equal(store_key_from_mpz(v, buf, n), n);
		assert_int_equal(store_key_canon(buf, n, &off), n);
		assert_int_equal(off, 0);
		store_key_to_mpz(back, buf, n);
		assert_int_equal(mpz_cmp(v, back), 0);
		free(buf);
	}
	/* -2^4095 exactly fits 512 bytes: 80 00 ... */
	mpz_set_ui(v, 0);
	mpz_setbit(v, 4095);
	mpz_neg(v, v);
	assert_int_equal(store_key_from_mpz(v, NULL, 0), 512);
	mpz_clear(v);
	mpz_clear(back);
}

/* The binary encoding. */

static void
check_roundtrip(const struct store_op *op)
{
	struct store_op	 got;
	uint8_t		*buf;
	size_t		 n, i, off, keylen;

	n = store_op_encode(op, NULL, 0);
	assert_true(n > 0);
	buf = malloc(n + 1);
	assert_int_equal(store_op_encode(op, buf, n), n);
	assert_int_equal(store_op_decode(buf, n, &got), 0);
	assert_int_equal(got.type, op->type);
	keylen = store_key_canon(op->key, op->keylen, &off);
	assert_int_equal(got.keylen, keylen);
	if (keylen != 0)
		assert_memory_equal(got.key, op->key + off, keylen);
	if (op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) {
		assert_int_equal(got.timestamp, op->timestamp);
		assert_int_equal(got.datalen, op->datalen);
		if (op->datalen != 0)
			assert_memory_equal(got.data, op->data, op->datalen);
	}
	if (op->type == STORE_OP_DELVERSION || op->type == STORE_OP_TESTANDSET)
		assert_int_equal(got.version, op->version);

	/* Every truncation fails, and so does one byte too many. */
	for (i = 0; i < n; i++)
		assert_int_equal(store_op_decode(buf, i, &got), -1);
	buf[n] = 0;
	assert_int_equal(store_op_decode(buf, n + 1, &got), -1);
	free(buf);
}

static void
test_encode_roundtrip(void **unused)
{
	static const uint8_t key[] = { 0x00, 0x00, 0x9a, 0xbc };
	struct store_op	op;
	enum store_op_type t;

	/* Each type survives encode+decode, with extreme numbers, the key
	 * canonical, and every truncation is refused. */
	for (t = STORE_OP_SET; t <= STORE_OP_TESTANDSET; t++) {
		op = op_make(t, key, sizeof key);
		op.timestamp = INT64_MIN;
		op.version = -2;
		op.data = (const uint8_t *)"payload";
		op.datalen = 7;
		check_roundtrip(&op);
		op = op_make(t, NULL, 0);
		op.timestamp = INT64_MAX;
		op.version = INT64_MAX;
		check_roundtrip(&op);
	}
}

static void
test_decode_rejects(void **unused)
{
	struct store_op	op;
	uint8_t		buf[64];

	/* Unknown types, lengths past the end or over the limits, and
	 * trailing bytes are refused. */
	memset(buf, 0, sizeof buf);
	buf[0] = 0;
	assert_int_equal(store_op_decode(buf, 5, &op), -1);
	buf[0] = 6;
	assert_int_equal(store_op_decode(buf, 5, &op), -1);
	buf[0] = STORE_OP_GET;
	assert_int_equal(store_op_decode(buf, 5, &op), 0);
	assert_int_equal(store_op_decode(buf, 6, &op), -1);
	buf[1] = 0xff; buf[2] = 0xff; buf[3] = 0xff; buf[4] = 0xff;
	assert_int_equal(store_op_decode(buf, sizeof buf, &op), -1);
	buf[1] = 2; buf[2] = 0; buf[3] = 0; buf[4] = 0;
	assert_int_equal(store_op_decode(buf, 6, &op), -1);
	assert_int_equal(store_op_decode(buf, 7, &op), 0);

	/* A SET claiming more data than there is. */
	memset(buf, 0, sizeof buf);
	buf[0] = STORE_OP_SET;
	buf[13] = 10;		/* datalen at 1 + 4 + 0 + 8 */
	assert_int_equal(store_op_decode(buf, 17 + 9, &op), -1);
	assert_int_equal(store_op_decode(buf, 17 + 10, &op), 0);
	assert_int_equal(op.datalen, 10);
	buf[16] = 0x80;		/* 2 GiB */
	assert_int_equal(store_op_decode(buf, sizeof buf, &op), -1);
}

/* The map itself. */

static void
test_random_against_model(void **unused)
{
	enum { N = 3000, OPS = 200000 };
	static struct { int present; int64_t version, ts; } model[N];
	struct store		*s = store_new();
	struct store_entry	*e;
	struct store_result	 res;
	uint8_t			 key[3];
	char			 data[32];
	size_t			 i, count = 0, cursor = 0, seen = 0, len;
	uint64_t		 bytes = 0;
	unsigned int		 k;
	int64_t			 ver;

	/* A random mix of every operation over colliding keys keeps the
	 * store equal to a model, through growth and shrinking, and its
	 * count of data bytes equal to what its values hold. */
	srandom(7);
	for (i = 0; i < OPS; i++) {
		k = (unsigned int)(random() % (i < OPS / 2 ? N : N / 10));
		key[0] = 0x40;
		key[1] = (uint8_t)(k >> 8);
		key[2] = (uint8_t)k;
		snprintf(data, sizeof data, "d%zu", i);
		ver = model[k].present ? model[k].version : 1;
		if (random() % 4 == 0)
			ver++;
		switch (random() % 5) {
		case 0:
			res = do_set(s, key, 3, (int64_t)i, data);
			assert_int_equal(res.status, model[k].present ?
			    STORE_ERROR : STORE_SUCCESS);
			if (!model[k].present) {
				model[k].present = 1;
				model[k].version = 1;
				model[k].ts = (int64_t)i;
				count++;
			}
			break;
		case 1:
			res = do_simple(s, STORE_OP_GET, key, 3, 0);
			assert_int_equal(res.status, model[k].present ?
			    STORE_SUCCESS : STORE_ERROR);
			break;
		case 2:
			res = do_simple(s, STORE_OP_DEL, key, 3, 0);
			assert_int_equal(res.status, model[k].present ?
			    STORE_SUCCESS : STORE_ERROR);
			if (model[k].present)
				count--;
			model[k].present = 0;
			break;
		case 3:
			res = do_simple(s, STORE_OP_DELVERSION, key, 3, ver);
			if (!model[k].present)
				assert_int_equal(res.status, STORE_ERROR_NE);
			else if (model[k].version != ver)
				assert_int_equal(res.status, STORE_ERROR_WV);
			else {
				assert_int_equal(res.status, STORE_SUCCESS);
				model[k].present = 0;
				count--;
			}
			break;
		default:
			res = do_tas(s, key, 3, (int64_t)i, data, ver);
			if (!model[k].present)
				assert_int_equal(res.status, STORE_ERROR_NE);
			else if (model[k].version != ver)
				assert_int_equal(res.status, STORE_ERROR_WV);
			else {
				assert_int_equal(res.status, STORE_SUCCESS);
				model[k].version++;
				model[k].ts = (int64_t)i;
			}
			break;
		}
		store_result_release(&res);
	}
	assert_int_equal(store_count(s), count);
	while ((e = store_next(s, &cursor)) != NULL) {
		const uint8_t *kb = store_entry_key(e, &len);

		assert_int_equal(len, 3);
		k = (unsigned int)kb[1] << 8 | kb[2];
		assert_true(model[k].present);
		assert_int_equal(store_entry_version(e), model[k].version);
		assert_int_equal(store_entry_timestamp(e), model[k].ts);
		(void)store_entry_data(e, &len);
		bytes += len;
		seen++;
	}
	assert_int_equal(seen, count);
	assert_true(bytes > 0);
	assert_int_equal(store_data_bytes(s), bytes);
	store_free(s);
}

static void
test_restore_rejects(void **unused)
{
	struct store	*s = store_new();
	static const uint8_t padded[] = { 0x00, 0x05 };

	/* Restoring refuses a non-canonical key and a duplicate. */
	assert_int_equal(store_restore(s, padded, 2, 1, 1, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_restore(s, padded + 1, 1, 1, 1, NULL, 0), 0);
	assert_int_equal(store_restore(s, padded + 1, 1, 2, 2, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(store_count(s), 1);
	store_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_and_get),
		cmocka_unit_test(test_del),
		cmocka_unit_test(test_delversion),
		cmocka_unit_test(test_testandset),
		cmocka_unit_test(test_testandset_version_overflow),
		cmocka_unit_test(test_oversized_key_refused),
		cmocka_unit_test(test_results_survive_changes),
		cmocka_unit_test(test_key_canon),
		cmocka_unit_test(test_key_forms_are_one_key),
		cmocka_unit_test(test_key_mpz),
		cmocka_unit_test(test_key_mpz_4096_bits),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_restore_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
