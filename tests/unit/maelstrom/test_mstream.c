/* Unit tests of the replication streams (mstream.h): batching, in-order
 * exactly-once delivery, acks, resends and flushes, driven through the
 * runtime over pipes as node n0 of n0, n1, n2. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "maelstrom/maelstrom.h"
#include "mael_fixture.h"
#include "maelstrom/mstream.h"

/* Ticks every 200 ms, resends after 600 ms: far enough apart that the
 * tests can tell a batch, a resend and a flush apart. */
#define TICK_MS		200
#define RETRY_MS	600

struct sfx {
	struct mfx	*x;
	struct mstream	*ms;
	json_t		*got;		/* delivered entries, [from, entry] */
	int		 refuse;	/* refuse this many deliveries */
};

static int
sfx_deliver(struct mael *m, const char *from, json_t *e, void *arg)
{
	struct sfx	*fx = arg;

	if (fx->refuse > 0) {
		fx->refuse--;
		return -1;
	}
	json_array_append_new(fx->got, json_pack("[s, O]", from, e));
	return 0;
}

/* {"type":"push","entry":E} queues E for every peer, or for "peer". */
static void
h_push(struct mael *m, struct mael_msg *msg, void *state)
{
	struct sfx	*fx = state;
	const char	*peer;

	peer = json_string_value(json_object_get(msg->body, "peer"));
	assert_int_equal(mstream_push(fx->ms, peer,
	    json_incref(json_object_get(msg->body, "entry"))), 0);
	if (json_is_true(json_object_get(msg->body, "flush")))
		mstream_flush(fx->ms, peer);
}

static void
h_st(struct mael *m, struct mael_msg *msg, void *state)
{
	struct sfx	*fx = state;

	mstream_recv(fx->ms, msg);
}

static const struct mael_handler sfx_handlers[] = {
	{ "push",	h_push },
	{ "st",		h_st },
	{ NULL,		NULL }
};

static int
sfx_joined(struct mael *m, void *state)
{
	struct sfx		*fx = state;
	struct mstream_config	 cfg = { 0 };

	cfg.type = "st";
	cfg.interval_ms = TICK_MS;
	cfg.retry_ms = RETRY_MS;
	cfg.deliver = sfx_deliver;
	cfg.arg = fx;
	fx->ms = mstream_new(m, &cfg);
	return fx->ms == NULL ? -1 : 0;
}

static int
sfx_setup(void **state)
{
	struct sfx	*fx = calloc(1, sizeof *fx);
	json_t		*j;

	assert_non_null(fx);
	fx->got = json_array();
	fx->x = mfx_new(sfx_handlers, fx, sfx_joined, 4500);
	mfx_write(fx->x, "{\"src\":\"c0\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"n0\","
	    "\"node_ids\":[\"n0\",\"n1\",\"n2\"]}}\n");
	mfx_pump(fx->x, 5);
	j = mfx_next_type(fx->x, "init_ok");
	assert_non_null(j);
	json_decref(j);
	*state = fx;
	return 0;
}

static int
sfx_teardown(void **state)
{
	struct sfx	*fx = *state;

	mstream_free(fx->ms);
	mfx_free(fx->x);
	json_decref(fx->got);
	free(fx);
	return 0;
}

/* The next stream message to dest, skipping others; NULL if none. */
static json_t *
sfx_next_to(struct sfx *fx, const char *dest)
{
	json_t	*j;

	while ((j = mfx_next_type(fx->x, "st")) != NULL) {
		if (strcmp(mfx_str(j, "dest", NULL), dest) == 0)
			return j;
		json_decref(j);
	}
	return NULL;
}

static void
sfx_from(struct sfx *fx, const char *src, const char *body)
{
	char	*s;

	assert_true(asprintf(&s, "{\"src\":\"%s\",\"dest\":\"n0\","
	    "\"body\":%s}\n", src, body) > 0);
	mfx_write(fx->x, s);
	free(s);
}

static int
sfx_body_is(json_t *j, const char *want)
{
	json_t	*w = json_loads(want, 0, NULL);
	json_t	*b = json_deep_copy(json_object_get(j, "body"));
	int	 eq;

	json_object_del(b, "msg_id");
	eq = json_equal(w, b);
	json_decref(w);
	json_decref(b);
	return eq;
}

static void
test_batch_to_every_peer(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;
	int		 n = 0;

	/* Entries pushed between ticks go out together at the next tick,
	 * to each peer, numbered from 1, with nothing before the tick. */
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"push\",\"entry\":\"a\"}}\n"
	    "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"push\",\"entry\":[\"b\",2]}}\n");
	mfx_pump(fx->x, 20);
	assert_null(mfx_next_type(fx->x, "st"));
	mfx_pump(fx->x, TICK_MS + 50);
	while ((j = mfx_next_type(fx->x, "st")) != NULL) {
		assert_true(sfx_body_is(j, "{\"type\":\"st\",\"seq\":1,"
		    "\"entries\":[\"a\",[\"b\",2]],\"ack\":0}"));
		n++;
		json_decref(j);
	}
	assert_int_equal(n, 2);
}

static void
test_one_message_per_peer(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;
	int		 n1 = 0, n2 = 0;

	/* Each peer gets exactly one message for the batch, and nothing
	 * more until the retry interval. */
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"push\",\"entry\":1}}\n");
	mfx_pump(fx->x, TICK_MS + 50 + TICK_MS);
	while ((j = mfx_next_type(fx->x, "st")) != NULL) {
		if (strcmp(mfx_str(j, "dest", NULL), "n1") == 0)
			n1++;
		else
			n2++;
		assert_int_equal(mfx_int(j, "body", "seq"), 1);
		json_decref(j);
	}
	assert_int_equal(n1, 1);
	assert_int_equal(n2, 1);
}

static void
test_in_order_exactly_once(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;

	/* A message past a gap is ignored, a duplicate is delivered once,
	 * and the ack owed goes alone at the next tick. */
	sfx_from(fx, "n1", "{\"type\":\"st\",\"seq\":2,\"entries\":[\"b\"],"
	    "\"ack\":0}");
	mfx_pump(fx->x, 10);
	assert_int_equal(json_array_size(fx->got), 0);
	sfx_from(fx, "n1", "{\"type\":\"st\",\"seq\":1,\"entries\":[\"a\"],"
	    "\"ack\":0}");
	sfx_from(fx, "n1", "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[\"a\",\"b\"],\"ack\":0}");
	mfx_pump(fx->x, 10);
	j = json_loads("[[\"n1\",\"a\"],[\"n1\",\"b\"]]", 0, NULL);
	assert_true(json_equal(fx->got, j));
	json_decref(j);
	mfx_pump(fx->x, TICK_MS + 50);
	j = sfx_next_to(fx, "n1");
	assert_non_null(j);
	assert_true(sfx_body_is(j, "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[],\"ack\":2}"));
	json_decref(j);
}

static void
test_resend_until_acked(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;

	/* Unacknowledged entries go again after the retry interval; a peer
	 * that acknowledged them gets nothing more. */
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"push\",\"entry\":\"x\"}}\n");
	mfx_pump(fx->x, TICK_MS + 50);
	while ((j = mfx_next(fx->x)) != NULL)
		json_decref(j);
	sfx_from(fx, "n1", "{\"type\":\"st\",\"seq\":1,\"entries\":[],"
	    "\"ack\":1}");
	mfx_pump(fx->x, RETRY_MS + TICK_MS + 50);
	j = mfx_next_type(fx->x, "st");
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "dest", NULL), "n2");
	assert_true(sfx_body_is(j, "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[\"x\"],\"ack\":0}"));
	json_decref(j);
	assert_null(sfx_next_to(fx, "n1"));
	assert_int_equal(mstream_unacked(fx->ms, "n1"), 0);
	assert_int_equal(mstream_unacked(fx->ms, "n2"), 1);
}

static void
test_refused_delivery_comes_again(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;

	/* An entry the mode cannot take now stops delivery there and is
	 * not acknowledged; the sender's resend delivers it. */
	fx->refuse = 1;
	sfx_from(fx, "n2", "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[\"p\",\"q\"],\"ack\":0}");
	mfx_pump(fx->x, TICK_MS + 50);
	assert_int_equal(json_array_size(fx->got), 0);
	j = sfx_next_to(fx, "n2");
	assert_non_null(j);
	assert_int_equal(mfx_int(j, "body", "ack"), 0);
	json_decref(j);
	sfx_from(fx, "n2", "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[\"p\",\"q\"],\"ack\":0}");
	mfx_pump(fx->x, 10);
	j = json_loads("[[\"n2\",\"p\"],[\"n2\",\"q\"]]", 0, NULL);
	assert_true(json_equal(fx->got, j));
	json_decref(j);
}

static void
test_flush_sends_now(void **state)
{
	struct sfx	*fx = *state;
	json_t		*j;

	/* A flush sends that peer's queue at once, with the ack, without
	 * waiting for the tick; the other peer waits for it. */
	sfx_from(fx, "n1", "{\"type\":\"st\",\"seq\":1,\"entries\":[\"a\"],"
	    "\"ack\":0}");
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"push\",\"entry\":\"now\",\"peer\":\"n1\","
	    "\"flush\":true}}\n");
	mfx_pump(fx->x, 20);
	j = mfx_next_type(fx->x, "st");
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "dest", NULL), "n1");
	assert_true(sfx_body_is(j, "{\"type\":\"st\",\"seq\":1,"
	    "\"entries\":[\"now\"],\"ack\":1}"));
	json_decref(j);
	assert_int_equal(mstream_unacked(fx->ms, "n2"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_to_every_peer,
		    sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_one_message_per_peer,
		    sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_in_order_exactly_once,
		    sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(test_resend_until_acked,
		    sfx_setup, sfx_teardown),
		cmocka_unit_test_setup_teardown(
		    test_refused_delivery_comes_again, sfx_setup,
		    sfx_teardown),
		cmocka_unit_test_setup_teardown(test_flush_sends_now,
		    sfx_setup, sfx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
