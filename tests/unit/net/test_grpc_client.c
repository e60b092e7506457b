/*
 * Unit tests of the gRPC client (src/net/grpc_client.c), against the
 * project's own gRPC server (src/net/grpc.c) on the same event loop: replies
 * and errors, calls beyond the server's stream limit, deadlines on sent
 * and on queued calls, refusal, GOAWAY, closing from a done callback;
 * streamed replies, their end, their error and a client that stops one.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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

#include "net/grpc.h"
#include "net/grpc_client.h"
#include "core/log.h"

#define ECHO	"/dsd.test.v1.Test/Echo"
#define SLOW	"/dsd.test.v1.Test/Slow"
#define FAIL	"/dsd.test.v1.Test/Fail"
#define META	"/dsd.test.v1.Test/Meta"
#define STREAM	"/dsd.test.v1.Test/Stream"

/* The metadata the test server keeps, in grpc_call_metadata() order. */
static const char *const kept_metadata[] = { "x-first", "x-second", NULL };

/* A Slow call: answered from a timer, even after it died. */
struct slow {
	struct grpc_call	*call;
	struct event		*timer;
	struct slow		*next;
	struct fixture		*f;
};

struct fixture {
	struct event_base	*base;
	struct grpc_server	*srv;
	char			 addr[64];
	struct slow		*slows;
	struct grpcc_conn	*conn;
	int			 ups, downs;
	char			 why[128];
	int			 stopped;
};

/* One call's outcome. */
struct result {
	int		 done;
	int		 status;
	char		 msg[128];
	uint8_t		*reply;
	size_t		 len;
	struct fixture	*f;
	int		 close_conn;	/* grpcc_close() from done */
};

static void
slow_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slow	*s = arg;

	/* Dropped (-1) if the call died: must be harmless. */
	grpc_call_reply(s->call, "slept", 5);
	s->call = NULL;
}

static void
srv_echo(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	grpc_call_reply(call, req, len);
}

static void
srv_slow(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	struct fixture	*f = arg;
	struct slow	*s = calloc(1, sizeof *s);
	struct timeval	 tv = { 0, 0 };
	char		 buf[16];

	assert_non_null(s);
	assert_true(len < sizeof buf);
	memcpy(buf, req, len);
	buf[len] = '\0';
	tv.tv_usec = atoi(buf) * 1000;
	s->call = call;
	s->f = f;
	s->timer = evtimer_new(f->base, slow_fire, s);
	evtimer_add(s->timer, &tv);
	s->next = f->slows;
	f->slows = s;
}

static void
srv_fail(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	char	buf[64];

	assert_true(len < sizeof buf);
	memcpy(buf, req, len);
	buf[len] = '\0';
	grpc_call_error(call, (enum grpc_status)atoi(buf), strchr(buf, ' ') +
	    1);
}

/* Answers "<x-first>|<x-second>|<ms left>", "-" for what is absent. */
static void
srv_meta(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	const char	*a = grpc_call_metadata(call, 0);
	const char	*b = grpc_call_metadata(call, 1);
	char		 buf[256];
	int64_t		 left = grpc_call_time_left_us(call);

	assert_null(grpc_call_metadata(call, 2));
	snprintf(buf, sizeof buf, "%s|%s|%lld", a != NULL ? a : "-",
	    b != NULL ? b : "-", left < 0 ? -1LL : (long long)(left / 1000));
	grpc_call_reply(call, buf, strlen(buf));
}

/* Request "N SIZE CODE": N messages of SIZE bytes ('0' + i % 10 each),
 * then status CODE, all at once; with CODE 0 the last message goes with
 * grpc_call_reply(), which ends a stream as it ends a unary call. */
static void
srv_stream(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	char	buf[64], *msg;
	int	i, n, size, code;

	assert_true(len < sizeof buf);
	memcpy(buf, req, len);
	buf[len] = '\0';
	assert_int_equal(sscanf(buf, "%d %d %d", &n, &size, &code), 3);
	msg = malloc((size_t)size);
	assert_non_null(msg);
	for (i = 0; i < n; i++) {
		memset(msg, '0' + i % 10, (size_t)size);
		if (code == 0 && i == n - 1) {
			grpc_call_reply(call, msg, (size_t)size);
			free(msg);
			return;
		}
		if (grpc_call_send(call, msg, (size_t)size) == -1)
			break;
	}
	free(msg);
	if (code == 0)
		grpc_call_end(call);
	else
		grpc_call_error(call, (enum grpc_status)code, "stream failed");
}

static struct grpc_method methods[] = {
	{ ECHO, srv_echo, NULL },
	{ STREAM, srv_stream, NULL },
	{ META, srv_meta, NULL },
	{ SLOW, srv_slow, NULL },
	{ FAIL, srv_fail, NULL },
	{ NULL, NULL, NULL }
};

/* A loopback TCP port nothing listens on right now. */
static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof sin;
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int
setup_streams(void **state, uint32_t max_streams)
{
	struct fixture		*f = calloc(1, sizeof *f);
	struct grpc_config	 cfg;
	int			 i;

	assert_non_null(f);
	f->base = event_base_new();
	grpc_config_defaults(&cfg);
	/* h2 cannot listen on port 0 (libevent's address parser refuses
	 * it), so take a port that was free a moment ago. */
	snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", free_port());
	cfg.h2.listen = f->addr;
	cfg.h2.max_streams = max_streams;
	cfg.metadata = kept_metadata;
	f->srv = grpc_server_new(f->base, &cfg);
	assert_non_null(f->srv);
	for (i = 0; methods[i].path != NULL; i++)
		methods[i].arg = f;
	assert_int_equal(grpc_server_register(f->srv, methods), 0);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_streams(state, 100);
}

static int
setup_one_stream(void **state)
{
	return setup_streams(state, 1);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	struct slow	*s;

	grpcc_close(f->conn);
	if (f->srv != NULL)
		grpc_server_free(f->srv);
	while ((s = f->slows) != NULL) {
		f->slows = s->next;
		if (s->call != NULL)
			grpc_call_reply(s->call, "late", 4);
		event_free(s->timer);
		free(s);
	}
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
on_state(struct grpcc_conn *conn, int up, const char *why, void *arg)
{
	struct fixture	*f = arg;

	if (up)
		f->ups++;
	else {
		f->downs++;
		snprintf(f->why, sizeof f->why, "%s", why);
	}
}

static void
connect_to(struct fixture *f, const char *addr, size_t max_reply)
{
	struct grpcc_config	 cfg;
	const char		*err;

	memset(&cfg, 0, sizeof cfg);
	cfg.addr = addr;
	cfg.max_reply = max_reply;
	cfg.connect_timeout_ms = 2000;
	cfg.on_state = on_state;
	cfg.arg = f;
	f->conn = grpcc_connect(f->base, &cfg, &err);
	assert_non_null(f->conn);
}

static void
done(void *arg, int status, const char *msg, const uint8_t *reply,
    size_t len)
{
	struct result	*r = arg;

	/* Exactly once per call. */
	assert_int_equal(r->done, 0);
	r->done = 1;
	r->status = status;
	snprintf(r->msg, sizeof r->msg, "%s", msg != NULL ? msg : "");
	if (status == 0) {
		r->reply = malloc(len + 1);
		assert_non_null(r->reply);
		if (len > 0)	/* a streamed call's reply is NULL */
			memcpy(r->reply, reply, len);
		r->len = len;
	} else
		assert_null(reply);
	if (r->close_conn) {
		grpcc_close(r->f->conn);
		r->f->conn = NULL;
	}
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	fail_msg("the loop waited 5 s for a condition");
}

/* Run the loop until *flag is set. */
static void
run_until(struct fixture *f, const int *flag)
{
	struct event	*t = evtimer_new(f->base, on_timeout, NULL);
	struct timeval	 tv = { 5, 0 };

	evtimer_add(t, &tv);
	while (!*flag)
		assert_int_not_equal(event_base_loop(f->base, EVLOOP_ONCE), -1);
	event_free(t);
}

static void
call(struct fixture *f, const char *path, const char *req, int timeout_ms,
    struct result *r)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	assert_int_equal(grpcc_call(f->conn, path, req, strlen(req),
	    timeout_ms, done, r), 0);
}

/* Metadata reaches the handler for the names the server keeps, the last
 * value of a repeated one; others are dropped; the handler sees how much
 * of the call's deadline is left, and -1 without one. */
static void
test_metadata(void **state)
{
	struct fixture		*f = *state;
	struct result		 r, none, over;
	const struct grpcc_md	 md[] = {
		{ "x-other", "dropped" },
		{ "x-second", "2" },
		{ "x-first", "one" },
		{ "x-second", "two" },
	};
	struct grpcc_md		 many[GRPCC_MAX_MD + 1];
	size_t			 i;
	long			 left;
	char			*bar;

	connect_to(f, f->addr, 0);
	memset(&r, 0, sizeof r);
	assert_int_equal(grpcc_call_md(f->conn, META, "", 0, 5000, md, 4,
	    done, &r), 0);
	call(f, META, "", 0, &none);
	for (i = 0; i < GRPCC_MAX_MD + 1; i++)
		many[i] = md[0];
	assert_int_equal(grpcc_call_md(f->conn, META, "", 0, 0, many,
	    GRPCC_MAX_MD + 1, done, &over), -1);
	run_until(f, &r.done);
	run_until(f, &none.done);
	assert_int_equal(r.status, 0);
	assert_true(r.len > 8);
	assert_memory_equal(r.reply, "one|two|", 8);
	bar = (char *)r.reply + 8;
	left = strtol(bar, NULL, 10);
	assert_true(left > 4000 && left <= 5000);
	assert_int_equal(none.status, 0);
	assert_int_equal(none.len, 6);
	assert_memory_equal(none.reply, "-|-|-1", 6);
	free(r.reply);
	free(none.reply);
}

/* A reply comes back whole, an empty one too. */
static void
test_echo(void **state)
{
	struct fixture	*f = *state;
	struct result	 r, e;

	connect_to(f, f->addr, 0);
	call(f, ECHO, "hello", 1000, &r);
	call(f, ECHO, "", 1000, &e);
	run_until(f, &e.done);
	run_until(f, &r.done);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.len, 5);
	assert_memory_equal(r.reply, "hello", 5);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.len, 0);
	assert_int_equal(f->ups, 1);
	assert_int_equal(grpcc_pending(f->conn), 0);
	free(r.reply);
	free(e.reply);
}

/* An error status arrives with its message percent-decoded. */
static void
test_error_status(void **state)
{
	struct fixture	*f = *state;
	struct result	 r, u;

	connect_to(f, f->addr, 0);
	call(f, FAIL, "9 bad % th\xc3\xa9ng", 1000, &r);
	call(f, "/dsd.test.v1.Test/Nope", "", 1000, &u);
	run_until(f, &r.done);
	run_until(f, &u.done);
	assert_int_equal(r.status, 9);
	assert_string_equal(r.msg, "bad % th\xc3\xa9ng");
	assert_int_equal(u.status, 12);
}

/* Far more calls than the server's stream limit all complete. */
static void
test_beyond_stream_limit(void **state)
{
	struct fixture	*f = *state;
	struct result	*r = calloc(300, sizeof *r);
	char		 req[32];
	int		 i;

	assert_non_null(r);
	connect_to(f, f->addr, 0);
	for (i = 0; i < 300; i++) {
		snprintf(req, sizeof req, "call %d", i);
		call(f, ECHO, req, 5000, &r[i]);
	}
	assert_int_equal(grpcc_pending(f->conn), 300);
	for (i = 0; i < 300; i++) {
		run_until(f, &r[i].done);
		snprintf(req, sizeof req, "call %d", i);
		assert_int_equal(r[i].status, 0);
		assert_int_equal(r[i].len, strlen(req));
		assert_memory_equal(r[i].reply, req, r[i].len);
		free(r[i].reply);
	}
	free(r);
}

static void
on_flag(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct fixture *f, int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	int		 flag = 0;
	struct event	*t = evtimer_new(f->base, on_flag, &flag);

	evtimer_add(t, &tv);
	run_until(f, &flag);
	event_free(t);
}

/* A deadline fails the call; the late reply is dropped; the connection
 * goes on. */
static void
test_deadline(void **state)
{
	struct fixture	*f = *state;
	struct result	 r, e;

	connect_to(f, f->addr, 0);
	call(f, SLOW, "300", 30, &r);
	run_until(f, &r.done);
	assert_int_equal(r.status, 4);
	/* The server's timer fires into the dead call meanwhile. */
	run_for(f, 400);
	call(f, SLOW, "50", 0, &e);
	run_until(f, &e.done);
	assert_int_equal(e.status, 0);
	assert_memory_equal(e.reply, "slept", 5);
	free(e.reply);
}

/* Calls queued behind the server's limit of one stream time out, their
 * HEADERS cancelled before they were sent; the stream that was open
 * completes, and the connection serves on. */
static void
test_deadline_queued(void **state)
{
	struct fixture	*f = *state;
	struct result	 first, s, q[5], after;
	int		 i;

	connect_to(f, f->addr, 0);
	/* The server's SETTINGS (one stream) must be known first. */
	call(f, ECHO, "x", 1000, &first);
	run_until(f, &first.done);
	free(first.reply);
	call(f, SLOW, "200", 0, &s);
	for (i = 0; i < 5; i++)
		call(f, ECHO, "queued", 30, &q[i]);
	for (i = 0; i < 5; i++) {
		run_until(f, &q[i].done);
		assert_int_equal(q[i].status, 4);
	}
	assert_int_equal(s.done, 0);
	run_until(f, &s.done);
	assert_int_equal(s.status, 0);
	free(s.reply);
	call(f, ECHO, "after", 1000, &after);
	run_until(f, &after.done);
	assert_int_equal(after.status, 0);
	free(after.reply);
}

/* A port with no listener: the call fails UNAVAILABLE with the reason,
 * and the owner hears of it once. */
static void
test_refused(void **state)
{
	struct fixture	*f = *state;
	struct result	 r;
	char		 addr[64];

	snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
	connect_to(f, addr, 0);
	call(f, ECHO, "x", 1000, &r);
	run_until(f, &r.done);
	assert_int_equal(r.status, 14);
	assert_string_equal(r.msg, "Connection refused");
	assert_int_equal(f->ups, 0);
	assert_int_equal(f->downs, 1);
	assert_string_equal(f->why, "Connection refused");
	assert_int_equal(grpcc_call(f->conn, ECHO, "x", 1, 0, done, &r), -1);
}

/* Closing the connection from a done callback fails the other calls
 * once each, and frees nothing under nghttp2's feet.  They had been sent,
 * and the server was still working on them: UNKNOWN, not UNAVAILABLE. */
static void
test_close_in_done(void **state)
{
	struct fixture	*f = *state;
	struct result	 r[10];
	int		 i, ok = 0, unknown = 0;

	connect_to(f, f->addr, 0);
	call(f, ECHO, "first", 1000, &r[0]);
	r[0].close_conn = 1;
	for (i = 1; i < 10; i++)
		call(f, SLOW, "100", 1000, &r[i]);
	run_until(f, &r[0].done);
	for (i = 0; i < 10; i++) {
		assert_int_equal(r[i].done, 1);
		if (r[i].status == 0)
			ok++;
		else if (r[i].status == 2) {
			unknown++;
			assert_non_null(strstr(r[i].msg, "outcome is unknown"));
		}
		free(r[i].reply);
	}
	assert_int_equal(ok, 1);
	assert_int_equal(unknown, 9);
	assert_null(f->conn);
	/* on_state is not called for a close the owner asked for. */
	assert_int_equal(f->downs, 0);
}

/* Closing before the connection is even up fails the queued call. */
static void
test_close_before_connect(void **state)
{
	struct fixture	*f = *state;
	struct result	 r;

	connect_to(f, f->addr, 0);
	call(f, ECHO, "x", 1000, &r);
	grpcc_close(f->conn);
	f->conn = NULL;
	assert_int_equal(r.done, 1);
	assert_int_equal(r.status, 14);
}

static void
stopped(void *arg)
{
	struct fixture	*f = arg;

	f->stopped = 1;
}

static int
is_down(struct fixture *f)
{
	return !grpcc_is_up(f->conn);
}

/* GOAWAY: the call in flight completes, new calls are refused at once,
 * and the connection reports down when its last stream ends. */
static void
test_goaway(void **state)
{
	struct fixture	*f = *state;
	struct result	 first, s, x;
	int		 down = 0;

	connect_to(f, f->addr, 0);
	call(f, ECHO, "x", 1000, &first);
	run_until(f, &first.done);
	free(first.reply);
	call(f, SLOW, "300", 0, &s);
	/* Let the request reach the server before it stops. */
	while (f->slows == NULL)
		event_base_loop(f->base, EVLOOP_ONCE);
	grpc_server_shutdown(f->srv, 2000, stopped, f);
	while (!(down = is_down(f)))
		event_base_loop(f->base, EVLOOP_ONCE);
	memset(&x, 0, sizeof x);
	assert_int_equal(grpcc_call(f->conn, ECHO, "x", 1, 0, done, &x), -1);
	run_until(f, &s.done);
	assert_int_equal(s.status, 0);
	assert_memory_equal(s.reply, "slept", 5);
	free(s.reply);
	while (f->downs == 0)
		event_base_loop(f->base, EVLOOP_ONCE);
	run_until(f, &f->stopped);
	grpc_server_free(f->srv);
	f->srv = NULL;
}

/* A reply over max_reply fails that call only. */
static void
test_reply_too_large(void **state)
{
	struct fixture	*f = *state;
	struct result	 big, small;
	char		*req = malloc(5001);

	assert_non_null(req);
	memset(req, 'a', 5000);
	req[5000] = '\0';
	connect_to(f, f->addr, 1000);
	call(f, ECHO, req, 1000, &big);
	run_until(f, &big.done);
	assert_int_equal(big.status, 8);
	call(f, ECHO, "small", 1000, &small);
	run_until(f, &small.done);
	assert_int_equal(small.status, 0);
	free(small.reply);
	free(req);
}

/* What a streamed call received. */
struct streamed {
	struct result	 r;
	int		 n;		/* messages */
	int		 bad;		/* one out of order or of the wrong size */
	int		 size;
	int		 stop_at;	/* msg returns -1 at this one; 0: never */
};

static int
on_msg(void *arg, const uint8_t *msg, size_t len)
{
	struct streamed	*st = arg;
	size_t		 i;

	if (len != (size_t)st->size)
		st->bad++;
	for (i = 0; i < len; i++)
		if (msg[i] != '0' + st->n % 10) {
			st->bad++;
			break;
		}
	if (++st->n == st->stop_at)
		return -1;
	return 0;
}

static void
stream_call(struct fixture *f, const char *req, int size, int stop_at,
    struct streamed *st)
{
	memset(st, 0, sizeof *st);
	st->r.f = f;
	st->size = size;
	st->stop_at = stop_at;
	assert_int_equal(grpcc_call_stream(f->conn, STREAM, req, strlen(req),
	    5000, on_msg, done, st), 0);
}

/* A streamed reply: every message in order, then OK with no reply; none
 * at all is a stream too; an error status after messages is the call's. */
static void
test_stream(void **state)
{
	struct fixture	*f = *state;
	struct streamed	 many, none, failed;

	connect_to(f, f->addr, 0);
	stream_call(f, "2000 1000 0", 1000, 0, &many);
	stream_call(f, "0 1 0", 1, 0, &none);
	stream_call(f, "3 10 9", 10, 0, &failed);
	run_until(f, &many.r.done);
	run_until(f, &none.r.done);
	run_until(f, &failed.r.done);
	assert_int_equal(many.r.status, 0);
	assert_int_equal(many.n, 2000);
	assert_int_equal(many.bad, 0);
	assert_int_equal(many.r.len, 0);
	assert_int_equal(none.r.status, 0);
	assert_int_equal(none.n, 0);
	assert_int_equal(failed.r.status, 9);
	assert_string_equal(failed.r.msg, "stream failed");
	assert_int_equal(failed.n, 3);
	assert_int_equal(failed.bad, 0);
	free(many.r.reply);
	free(none.r.reply);
}

/* A message function that says stop ends the call CANCELLED at once,
 * and the connection goes on; a message over max_reply fails its call. */
static void
test_stream_stop(void **state)
{
	struct fixture	*f = *state;
	struct streamed	 st, big;
	struct result	 e;

	connect_to(f, f->addr, 1000);
	stream_call(f, "100 10 0", 10, 2, &st);
	run_until(f, &st.r.done);
	assert_int_equal(st.r.status, 1);
	assert_int_equal(st.n, 2);
	stream_call(f, "2 2000 0", 2000, 0, &big);
	run_until(f, &big.r.done);
	assert_int_equal(big.r.status, 8);
	assert_int_equal(big.n, 0);
	call(f, ECHO, "still", 1000, &e);
	run_until(f, &e.done);
	assert_int_equal(e.status, 0);
	free(e.reply);
}

/* Addresses split into host and port, IPv6 in brackets. */
static void
test_split_addr(void **state)
{
	char	*h, *p;

	assert_int_equal(grpcc_split_addr("127.0.0.1:7379", &h, &p), 0);
	assert_string_equal(h, "127.0.0.1");
	assert_string_equal(p, "7379");
	free(h);
	free(p);
	assert_int_equal(grpcc_split_addr("[::1]:80", &h, &p), 0);
	assert_string_equal(h, "::1");
	assert_string_equal(p, "80");
	free(h);
	free(p);
	assert_int_equal(grpcc_split_addr("localhost", &h, &p), -1);
	assert_int_equal(grpcc_split_addr("host:", &h, &p), -1);
	assert_int_equal(grpcc_split_addr(":80", &h, &p), -1);
	assert_int_equal(grpcc_split_addr("[::1]80", &h, &p), -1);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_error_status, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_beyond_stream_limit,
		    setup_one_stream, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_deadline_queued,
		    setup_one_stream, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_done, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_before_connect,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_goaway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_too_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_stop, setup,
		    teardown),
		cmocka_unit_test(test_split_addr),
	};

	log_init("test_grpc_client", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
