/* Unit tests of the Maelstrom runtime: framing, envelopes, init, dispatch,
 * RPC matching and timeouts, the reply deadline, error bodies. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "mael_fixture.h"
#include "maelstrom/maelstrom.h"

/* Framing. */

static void
test_lines_split_reads(void **unused)
{
	struct mael_lines	*l = mael_lines_new(1 << 20);
	char			*s;
	size_t			 len;

	/* A line split across reads comes out whole, once. */
	mael_lines_feed(l, "{\"a\":", 5);
	assert_null(mael_lines_next(l, &len, 0));
	mael_lines_feed(l, "1}\n{\"b\"", 7);
	s = mael_lines_next(l, &len, 0);
	assert_non_null(s);
	assert_string_equal(s, "{\"a\":1}");
	assert_int_equal(len, 7);
	free(s);
	assert_null(mael_lines_next(l, &len, 0));
	mael_lines_feed(l, ":2}\n\n", 5);
	s = mael_lines_next(l, &len, 0);
	assert_string_equal(s, "{\"b\":2}");
	free(s);
	s = mael_lines_next(l, &len, 0);
	assert_string_equal(s, "");	/* an empty line is still a line */
	free(s);
	assert_null(mael_lines_next(l, &len, 0));
	mael_lines_free(l);
}

static void
test_lines_long_line_in_pieces(void **unused)
{
	struct mael_lines	*l = mael_lines_new(64 << 20);
	size_t			 total = 8 << 20, i, len;
	char			*chunk, *s;

	/* An 8 MiB line fed 1000 bytes at a time arrives intact. */
	chunk = malloc(1000);
	memset(chunk, 'x', 1000);
	for (i = 0; i < total; i += 1000) {
		mael_lines_feed(l, chunk, 1000);
		assert_null(mael_lines_next(l, &len, 0));
	}
	mael_lines_feed(l, "\n", 1);
	s = mael_lines_next(l, &len, 0);
	assert_non_null(s);
	assert_int_equal(len, i);
	assert_int_equal(strspn(s, "x"), i);
	free(s);
	free(chunk);
	mael_lines_free(l);
}

static void
test_lines_overlong_dropped(void **unused)
{
	struct mael_lines	*l = mael_lines_new(1024);
	char			 big[3000], *s;
	size_t			 len;

	/* A line over the limit is dropped whole, even when it arrives
	 * before its newline, and the next line is intact. */
	memset(big, 'y', sizeof big);
	mael_lines_feed(l, big, sizeof big);
	assert_null(mael_lines_next(l, &len, 0));
	mael_lines_feed(l, big, sizeof big);
	assert_null(mael_lines_next(l, &len, 0));
	mael_lines_feed(l, "yyy\nok\n", 7);
	s = mael_lines_next(l, &len, 0);
	assert_non_null(s);
	assert_string_equal(s, "ok");
	free(s);
	assert_int_equal(mael_lines_dropped(l), 1);

	/* A complete over-long line in one feed is dropped too. */
	mael_lines_feed(l, big, 2000);
	mael_lines_feed(l, "\nnext\n", 6);
	s = mael_lines_next(l, &len, 0);
	assert_string_equal(s, "next");
	free(s);
	assert_int_equal(mael_lines_dropped(l), 2);
	mael_lines_free(l);
}

static void
test_lines_eof(void **unused)
{
	struct mael_lines	*l = mael_lines_new(1024);
	char			*s;
	size_t			 len;

	/* At EOF an unterminated last line is still delivered. */
	mael_lines_feed(l, "a\ntail", 6);
	s = mael_lines_next(l, &len, 1);
	assert_string_equal(s, "a");
	free(s);
	s = mael_lines_next(l, &len, 1);
	assert_string_equal(s, "tail");
	free(s);
	assert_null(mael_lines_next(l, &len, 1));
	mael_lines_free(l);
}

/* Envelopes. */

static void
test_parse_envelope(void **unused)
{
	static const char	 good[] = "{\"src\":\"c1\",\"dest\":\"n0\","
	    "\"id\":7,\"body\":{\"type\":\"echo\",\"msg_id\":3,\"echo\":\"x\"}}";
	struct mael_msg		*m;
	const char		*err = NULL;

	/* A good envelope yields its fields; extra keys are ignored. */
	m = mael_msg_parse(good, strlen(good), &err);
	assert_non_null(m);
	assert_string_equal(m->src, "c1");
	assert_string_equal(m->dest, "n0");
	assert_string_equal(m->type, "echo");
	assert_int_equal(m->msg_id, 3);
	assert_int_equal(m->in_reply_to, -1);
	mael_msg_release(m);
}

static void
test_parse_rejects(void **unused)
{
	static const char *const bad[] = {
		"not json",
		"[1,2]",
		"{\"dest\":\"n0\",\"body\":{\"type\":\"x\"}}",
		"{\"src\":1,\"dest\":\"n0\",\"body\":{\"type\":\"x\"}}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":[]}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{}}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"x\","
		    "\"msg_id\":\"7\"}}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"x\","
		    "\"msg_id\":-1}}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"x\","
		    "\"in_reply_to\":1.5}}",
		"{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"x\"}",
	};
	const char	*err;
	size_t		 i;

	/* Each malformed envelope is refused with a reason. */
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		assert_null(mael_msg_parse(bad[i], strlen(bad[i]), &err));
		assert_non_null(err);
	}
}

static void
test_error_codes(void **unused)
{
	json_t	*b;

	/* Error bodies carry the code and a default text; definiteness
	 * follows section 2 of the reference. */
	b = mael_error_body(MAEL_TEMPORARILY_UNAVAILABLE, NULL);
	assert_string_equal(json_string_value(json_object_get(b, "type")),
	    "error");
	assert_int_equal(json_integer_value(json_object_get(b, "code")), 11);
	assert_string_equal(json_string_value(json_object_get(b, "text")),
	    "temporarily-unavailable");
	json_decref(b);
	assert_true(mael_code_is_definite(MAEL_TEMPORARILY_UNAVAILABLE));
	assert_true(mael_code_is_definite(MAEL_TXN_CONFLICT));
	assert_true(mael_code_is_definite(MAEL_KEY_DOES_NOT_EXIST));
	assert_false(mael_code_is_definite(MAEL_TIMEOUT));
	assert_false(mael_code_is_definite(MAEL_CRASH));
	assert_false(mael_code_is_definite(1000));
	assert_false(mael_code_is_definite(999));
	assert_true(mael_is_client("c12"));
	assert_false(mael_is_client("c"));
	assert_false(mael_is_client("n1"));
	assert_false(mael_is_client("lin-kv"));
}

/* The runtime over pipes (tests/unit/mael_fixture.c). */

struct fixture {
	struct mfx		*x;
	int			 rpc_calls;
	json_t			*rpc_reply;	/* body of the reply, or null */
	struct mael_msg		*held;
	int			 joined;
};

static void
fx_rpc_cb(struct mael *m, struct mael_msg *reply, void *arg)
{
	struct fixture	*fx = arg;

	fx->rpc_calls++;
	json_decref(fx->rpc_reply);
	fx->rpc_reply = reply != NULL ? json_incref(reply->body) : json_null();
}

static void
h_ping(struct mael *m, struct mael_msg *msg, void *state)
{
	mael_reply(m, msg, json_pack("{s:s}", "type", "pong"));
}

/* Starts an RPC to n1 with the timeout given in the request. */
static void
h_call(struct mael *m, struct mael_msg *msg, void *state)
{
	struct fixture	*fx = state;
	json_int_t	 t;

	t = json_integer_value(json_object_get(msg->body, "timeout"));
	assert_int_equal(mael_rpc(m, "n1", json_pack("{s:s}", "type", "q"),
	    (int)t, fx_rpc_cb, fx), 0);
}

/* Keeps the request to answer it later. */
static void
h_hold(struct mael *m, struct mael_msg *msg, void *state)
{
	struct fixture	*fx = state;

	fx->held = mael_msg_hold(msg);
}

static int
fx_joined(struct mael *m, void *state)
{
	struct fixture	*fx = state;

	fx->joined++;
	return 0;
}

static const struct mael_handler fx_handlers[] = {
	{ "ping",	h_ping },
	{ "call",	h_call },
	{ "hold",	h_hold },
	{ NULL,		NULL }
};

static int
fx_setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	fx->x = mfx_new(fx_handlers, fx, fx_joined, 200);
	*state = fx;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture	*fx = *state;

	mael_msg_release(fx->held);
	mfx_free(fx->x);
	json_decref(fx->rpc_reply);
	free(fx);
	return 0;
}

static const char init_msg[] = "{\"src\":\"c0\",\"dest\":\"n0\",\"body\":"
    "{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"n0\","
    "\"node_ids\":[\"n0\",\"n1\",\"n2\"]}}\n";

static void
test_init_and_held(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j;

	/* A request before init is held, then answered after init_ok. */
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"ping\",\"msg_id\":5}}\n");
	mfx_pump(fx->x, 20);
	assert_null(mfx_next(fx->x));
	mfx_write(fx->x, init_msg);
	mfx_pump(fx->x, 20);
	assert_int_equal(fx->joined, 1);
	assert_string_equal(mael_node_id(fx->x->m), "n0");
	assert_int_equal(mael_node_index(fx->x->m), 0);

	j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "init_ok");
	assert_int_equal(mfx_int(j, "body", "in_reply_to"), 1);
	assert_string_equal(mfx_str(j, "src", NULL), "n0");
	assert_string_equal(mfx_str(j, "dest", NULL), "c0");
	json_decref(j);

	j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "pong");
	assert_int_equal(mfx_int(j, "body", "in_reply_to"), 5);
	assert_string_equal(mfx_str(j, "dest", NULL), "c1");
	json_decref(j);
	assert_null(mfx_next(fx->x));
}

static void
test_bad_init_refused(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j;

	/* An init whose node_id is not among node_ids is refused as
	 * malformed, and the node stays uninitialised. */
	mfx_write(fx->x, "{\"src\":\"c0\",\"dest\":\"n5\",\"body\":{\"type\":\"init\","
	    "\"msg_id\":1,\"node_id\":\"n5\",\"node_ids\":[\"n0\"]}}\n");
	mfx_pump(fx->x, 20);
	j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "error");
	assert_int_equal(mfx_int(j, "body", "code"), MAEL_MALFORMED_REQUEST);
	json_decref(j);
	assert_null(mael_node_id(fx->x->m));
	assert_int_equal(fx->joined, 0);
}

static void
test_bad_lines_skipped(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j;

	/* Garbage lines are skipped and the node keeps serving; an unknown
	 * request type gets not-supported. */
	mfx_write(fx->x, init_msg);
	mfx_write(fx->x, "garbage\n{\"src\":\"c1\"}\n\n[]\n");
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"frobnicate\",\"msg_id\":9}}\n");
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"ping\",\"msg_id\":10}}\n");
	mfx_pump(fx->x, 30);
	json_decref(mfx_next(fx->x));	/* init_ok */
	j = mfx_next(fx->x);
	assert_string_equal(mfx_str(j, "body", "type"), "error");
	assert_int_equal(mfx_int(j, "body", "code"), MAEL_NOT_SUPPORTED);
	assert_int_equal(mfx_int(j, "body", "in_reply_to"), 9);
	json_decref(j);
	j = mfx_next(fx->x);
	assert_string_equal(mfx_str(j, "body", "type"), "pong");
	json_decref(j);
	assert_false(fx->x->done);
}

static void
test_rpc_reply_matched(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j;
	char		*reply;
	json_int_t	 id;

	/* An RPC carries a fresh msg_id and its reply reaches the callback,
	 * once, even if a duplicate reply arrives. */
	mfx_write(fx->x, init_msg);
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"call\",\"msg_id\":2,\"timeout\":5000}}\n");
	mfx_pump(fx->x, 20);
	json_decref(mfx_next(fx->x));	/* init_ok */
	j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "dest", NULL), "n1");
	assert_string_equal(mfx_str(j, "body", "type"), "q");
	id = mfx_int(j, "body", "msg_id");
	assert_true(id > 0);
	json_decref(j);

	assert_true(asprintf(&reply, "{\"src\":\"n1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"q_ok\",\"in_reply_to\":%lld,\"v\":42}}\n",
	    (long long)id) > 0);
	mfx_write(fx->x, reply);
	mfx_write(fx->x, reply);
	free(reply);
	mfx_pump(fx->x, 20);
	assert_int_equal(fx->rpc_calls, 1);
	assert_int_equal(json_integer_value(json_object_get(fx->rpc_reply,
	    "v")), 42);
	/* The duplicate is not answered with an error either. */
	assert_null(mfx_next(fx->x));
}

static void
test_rpc_timeout(void **state)
{
	struct fixture	*fx = *state;

	/* An unanswered RPC calls back with NULL after its timeout. */
	mfx_write(fx->x, init_msg);
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"call\",\"msg_id\":2,\"timeout\":30}}\n");
	mfx_pump(fx->x, 10);
	assert_int_equal(fx->rpc_calls, 0);
	mfx_pump(fx->x, 80);
	assert_int_equal(fx->rpc_calls, 1);
	assert_true(json_is_null(fx->rpc_reply));
}

static void
test_reply_deadline(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j;

	/* A reply to a client past the deadline (200 ms here) is dropped,
	 * while a late reply to a peer node still goes out. */
	mfx_write(fx->x, init_msg);
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"hold\",\"msg_id\":2}}\n");
	mfx_pump(fx->x, 20);
	json_decref(mfx_next(fx->x));	/* init_ok */
	assert_non_null(fx->held);
	mfx_pump(fx->x, 250);
	assert_int_equal(mael_reply(fx->x->m, fx->held,
	    json_pack("{s:s}", "type", "late")), -1);
	mfx_pump(fx->x, 10);
	assert_null(mfx_next(fx->x));
	mael_msg_release(fx->held);

	mfx_write(fx->x, "{\"src\":\"n2\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"hold\",\"msg_id\":3}}\n");
	mfx_pump(fx->x, 250);
	assert_int_equal(mael_reply(fx->x->m, fx->held,
	    json_pack("{s:s}", "type", "late")), 0);
	mfx_pump(fx->x, 10);
	j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "dest", NULL), "n2");
	json_decref(j);
}

static void
test_unknown_dest_refused(void **state)
{
	struct fixture	*fx = *state;

	/* Sending to an id that is neither a node, a service nor a client
	 * that wrote to us is refused; services and nodes are accepted. */
	mfx_write(fx->x, init_msg);
	mfx_pump(fx->x, 20);
	json_decref(mfx_next(fx->x));
	assert_int_equal(mael_send(fx->x->m, "c99",
	    json_pack("{s:s}", "type", "x")), -1);
	assert_int_equal(mael_send(fx->x->m, "n7",
	    json_pack("{s:s}", "type", "x")), -1);
	assert_int_equal(mael_send(fx->x->m, "seq-kv",
	    json_pack("{s:s}", "type", "x")), 0);
	assert_int_equal(mael_send(fx->x->m, "n2",
	    json_pack("{s:s}", "type", "x")), 0);
	mfx_pump(fx->x, 10);
	json_decref(mfx_next(fx->x));
	json_decref(mfx_next(fx->x));
	assert_null(mfx_next(fx->x));
}

static void
test_kv_helpers(void **state)
{
	struct fixture	*fx = *state;
	json_t		*j, *k = json_string("k"), *a = json_integer(1),
			*b = json_integer(2);

	/* The KV helpers build the bodies of section 3. */
	mfx_write(fx->x, init_msg);
	mfx_pump(fx->x, 20);
	json_decref(mfx_next(fx->x));
	assert_int_equal(mael_kv_cas(fx->x->m, "seq-kv", k, a, b, 1, 1000,
	    fx_rpc_cb, fx), 0);
	assert_int_equal(mael_kv_read(fx->x->m, "lin-kv", k, 1000, fx_rpc_cb,
	    fx), 0);
	mfx_pump(fx->x, 10);
	j = mfx_next(fx->x);
	assert_string_equal(mfx_str(j, "dest", NULL), "seq-kv");
	assert_string_equal(mfx_str(j, "body", "type"), "cas");
	assert_int_equal(mfx_int(j, "body", "from"), 1);
	assert_int_equal(mfx_int(j, "body", "to"), 2);
	assert_true(json_is_true(json_object_get(json_object_get(j, "body"),
	    "create_if_not_exists")));
	json_decref(j);
	j = mfx_next(fx->x);
	assert_string_equal(mfx_str(j, "body", "type"), "read");
	assert_string_equal(mfx_str(j, "body", "key"), "k");
	json_decref(j);
	json_decref(k);
	json_decref(a);
	json_decref(b);
}

static void
test_eof_stops(void **state)
{
	struct fixture	*fx = *state;

	/* End of input stops the node with status 0, after handling a last
	 * line that has no newline. */
	mfx_write(fx->x, init_msg);
	mfx_write(fx->x, "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":"
	    "{\"type\":\"ping\",\"msg_id\":4}}");
	mfx_close_input(fx->x);
	mfx_pump(fx->x, 30);
	assert_true(fx->x->done);
	assert_int_equal(fx->x->status, 0);
	json_decref(mfx_next(fx->x));
	json_t *j = mfx_next(fx->x);
	assert_non_null(j);
	assert_string_equal(mfx_str(j, "body", "type"), "pong");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_split_reads),
		cmocka_unit_test(test_lines_long_line_in_pieces),
		cmocka_unit_test(test_lines_overlong_dropped),
		cmocka_unit_test(test_lines_eof),
		cmocka_unit_test(test_parse_envelope),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test_setup_teardown(test_init_and_held,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_init_refused,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_lines_skipped,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rpc_reply_matched,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rpc_timeout,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reply_deadline,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_dest_refused,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_kv_helpers,
		    fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_eof_stops,
		    fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
