/* Unit tests of the broadcast mode's overlay, batching, acks and retries,
 * driven through the runtime over pipes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "../maelstrom/mael_fixture.h"

extern const struct mode mode_broadcast;

struct bfx {
	struct dsd	 d;
	void		*state;
	struct mfx	*x;
};

/* Batches after 50 ms, lone acks after 100 ms, retries after 300 ms. */
static int
bfx_setup(void **state)
{
	struct bfx	*b = calloc(1, sizeof *b);
	char		*argv[] = { "dsd", "--mode=broadcast",
			    "--batch-interval=50", "--ack-delay=100",
			    "--retry-interval=300", NULL };

	assert_non_null(b);
	assert_int_equal(flags_parse(&b->d, 5, argv), 0);
	assert_int_equal(mode_broadcast.init(&b->d, &b->state), 0);
	b->x = mfx_new(mode_broadcast.handlers, b->state,
	    mode_broadcast.joined, 4500);
	*state = b;
	return 0;
}

static int
bfx_teardown(void **state)
{
	struct bfx	*b = *state;

	mode_broadcast.free(b->state);
	mfx_free(b->x);
	flags_free(&b->d);
	free(b);
	return 0;
}

static void
bfx_init(struct bfx *b, const char *self, const char *ids)
{
	char	*s;
	json_t	*j;

	assert_true(asprintf(&s, "{\"src\":\"c0\",\"dest\":\"%s\",\"body\":"
	    "{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"%s\","
	    "\"node_ids\":%s}}\n", self, self, ids) > 0);
	mfx_write(b->x, s);
	free(s);
	mfx_pump(b->x, 5);
	j = mfx_next(b->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "init_ok");
	json_decref(j);
}

static void
bfx_send(struct bfx *b, const char *src, const char *dest, const char *body)
{
	char	*s;

	assert_true(asprintf(&s, "{\"src\":\"%s\",\"dest\":\"%s\","
	    "\"body\":%s}\n", src, dest, body) > 0);
	mfx_write(b->x, s);
	free(s);
}

/* The values array of a gossip body, as a compact string. */
static char *
values_of(json_t *j)
{
	return json_dumps(json_object_get(json_object_get(j, "body"),
	    "values"), JSON_COMPACT);
}

static void
test_leaf_forwards_at_once(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;
	char		*v;

	/* A leaf acknowledges a client's value and forwards it to the hub,
	 * the least of the sorted ids, in the same loop pass; a value it
	 * already has is acknowledged but not forwarded again. */
	bfx_init(b, "n2", "[\"n2\",\"n10\",\"n1\"]");
	bfx_send(b, "c1", "n2", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":7}");
	bfx_send(b, "c1", "n2", "{\"type\":\"broadcast\",\"msg_id\":3,"
	    "\"message\":7}");
	mfx_pump(b->x, 5);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "body", "type"), "broadcast_ok");
	json_decref(j);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "body", "type"), "gossip");
	assert_string_equal(mfx_str(j, "dest", NULL), "n1");
	assert_int_equal(mfx_int(j, "body", "seq"), 1);
	assert_int_equal(mfx_int(j, "body", "ack"), 0);
	v = values_of(j);
	assert_string_equal(v, "[7]");
	free(v);
	json_decref(j);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "body", "type"), "broadcast_ok");
	json_decref(j);
	assert_null(mfx_next(b->x));
}

static void
test_hub_batches(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;
	char		*v;

	/* The hub holds values for the batch interval, then sends each
	 * node one batch of what it lacks: not the sender's own values back
	 * to it; the sender gets a lone ack after the ack delay. */
	bfx_init(b, "n0", "[\"n0\",\"n1\",\"n2\"]");
	bfx_send(b, "n1", "n0", "{\"type\":\"gossip\",\"seq\":1,"
	    "\"values\":[5,6],\"ack\":0}");
	bfx_send(b, "c1", "n0", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":8}");
	mfx_pump(b->x, 20);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "body", "type"), "broadcast_ok");
	json_decref(j);
	assert_null(mfx_next(b->x));		/* nothing before the batch */

	mfx_pump(b->x, 60);
	j = mfx_next(b->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "dest", NULL), "n1");
	v = values_of(j);
	assert_string_equal(v, "[8]");
	free(v);
	assert_int_equal(mfx_int(j, "body", "ack"), 2);
	json_decref(j);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "dest", NULL), "n2");
	v = values_of(j);
	assert_string_equal(v, "[5,6,8]");
	free(v);
	json_decref(j);
	assert_null(mfx_next(b->x));

	/* A read returns everything the node holds. */
	bfx_send(b, "c1", "n0", "{\"type\":\"read\",\"msg_id\":3}");
	mfx_pump(b->x, 5);
	j = mfx_next_type(b->x, "read_ok");
	v = json_dumps(json_object_get(json_object_get(j, "body"),
	    "messages"), JSON_COMPACT);
	assert_string_equal(v, "[5,6,8]");
	free(v);
	json_decref(j);
}

static void
test_lone_ack_and_no_resend_after_ack(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;

	/* A leaf that got a batch and has nothing to send acks alone after
	 * the ack delay; a leaf whose forward was acked does not resend. */
	bfx_init(b, "n1", "[\"n0\",\"n1\",\"n2\"]");
	bfx_send(b, "c1", "n1", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":1}");
	bfx_send(b, "n0", "n1", "{\"type\":\"gossip\",\"seq\":1,"
	    "\"values\":[2,3],\"ack\":1}");
	mfx_pump(b->x, 50);
	j = mfx_next_type(b->x, "gossip");	/* the forward */
	assert_non_null(j);
	json_decref(j);
	assert_null(mfx_next(b->x));
	mfx_pump(b->x, 120);
	j = mfx_next(b->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "gossip");
	assert_int_equal(mfx_int(j, "body", "ack"), 2);
	assert_int_equal(json_array_size(json_object_get(
	    json_object_get(j, "body"), "values")), 0);
	json_decref(j);
	mfx_pump(b->x, 400);			/* past the retry interval */
	assert_null(mfx_next(b->x));
}

static void
test_retry_and_direct_when_hub_silent(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;
	char		*v;
	int		 direct = 0, resend = 0;

	/* A leaf whose hub does not ack resends from the last ack after the
	 * retry interval, and meanwhile sends its values to every other
	 * node directly, once. */
	bfx_init(b, "n1", "[\"n0\",\"n1\",\"n2\",\"n3\"]");
	bfx_send(b, "c1", "n1", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":4}");
	mfx_pump(b->x, 5);
	json_decref(mfx_next_type(b->x, "gossip"));
	mfx_pump(b->x, 400);
	while ((j = mfx_next(b->x)) != NULL) {
		if (strcmp(mfx_str(j, "body", "type"), "direct") == 0) {
			v = values_of(j);
			assert_string_equal(v, "[4]");
			free(v);
			assert_string_not_equal(mfx_str(j, "dest", NULL), "n0");
			direct++;
		} else if (strcmp(mfx_str(j, "body", "type"), "gossip") == 0) {
			assert_string_equal(mfx_str(j, "dest", NULL), "n0");
			assert_int_equal(mfx_int(j, "body", "seq"), 1);
			resend++;
		}
		json_decref(j);
	}
	assert_int_equal(direct, 2);
	assert_int_equal(resend, 1);
}

static void
test_gap_holds_ack(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;

	/* Values after a gap are kept, but the ack stays below the gap so
	 * that the sender resends what was lost. */
	bfx_init(b, "n1", "[\"n0\",\"n1\"]");
	bfx_send(b, "n0", "n1", "{\"type\":\"gossip\",\"seq\":3,"
	    "\"values\":[30],\"ack\":0}");
	bfx_send(b, "c1", "n1", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":9}");
	mfx_pump(b->x, 5);
	j = mfx_next_type(b->x, "gossip");
	assert_int_equal(mfx_int(j, "body", "ack"), 0);
	json_decref(j);
	bfx_send(b, "c1", "n1", "{\"type\":\"read\",\"msg_id\":3}");
	mfx_pump(b->x, 5);
	j = mfx_next_type(b->x, "read_ok");
	assert_int_equal(json_array_size(json_object_get(
	    json_object_get(j, "body"), "messages")), 2);
	json_decref(j);
}

static void
test_fixed_clock(void **state)
{
	struct bfx	*b = *state;
	char		*argv[] = { "dsd", "--mode=broadcast",
			    "--batch-interval=50", "--batch-clock=fixed", NULL };
	json_t		*j;

	/* With --batch-clock=fixed the hub sends on its own clock, started
	 * at init: a value that arrives 30 ms into an interval leaves about
	 * 20 ms later, not a whole interval later. */
	mode_broadcast.free(b->state);
	mfx_free(b->x);
	flags_free(&b->d);
	memset(&b->d, 0, sizeof b->d);
	assert_int_equal(flags_parse(&b->d, 4, argv), 0);
	assert_int_equal(mode_broadcast.init(&b->d, &b->state), 0);
	b->x = mfx_new(mode_broadcast.handlers, b->state,
	    mode_broadcast.joined, 4500);
	bfx_init(b, "n0", "[\"n0\",\"n1\"]");
	mfx_pump(b->x, 30);
	bfx_send(b, "c1", "n0", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":3}");
	mfx_pump(b->x, 35);
	j = mfx_next_type(b->x, "gossip");
	assert_non_null(j);
	json_decref(j);
}

static void
test_bad_broadcast(void **state)
{
	struct bfx	*b = *state;
	json_t		*j;

	/* A broadcast without an integer message is malformed (12). */
	bfx_init(b, "n0", "[\"n0\"]");
	bfx_send(b, "c1", "n0", "{\"type\":\"broadcast\",\"msg_id\":2,"
	    "\"message\":\"x\"}");
	mfx_pump(b->x, 5);
	j = mfx_next(b->x);
	assert_string_equal(mfx_str(j, "body", "type"), "error");
	assert_int_equal(mfx_int(j, "body", "code"), 12);
	json_decref(j);
}

int
main(void)
{
#define T(f)	cmocka_unit_test_setup_teardown(f, bfx_setup, bfx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_leaf_forwards_at_once),
		T(test_hub_batches),
		T(test_lone_ack_and_no_resend_after_ack),
		T(test_retry_and_direct_when_hub_silent),
		T(test_gap_holds_ack),
		T(test_fixed_clock),
		T(test_bad_broadcast),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
