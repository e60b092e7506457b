/* Unit tests of the metrics module: histograms, the text format, and the
 * HTTP server answering on a loopback port of its own. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
#include <event2/buffer.h>
#include <event2/event.h>

#include "core/metrics.h"

/* The page rendered so far, NUL-terminated; the caller frees it. */
static char *
take(struct metrics_out *out)
{
	size_t	 len = evbuffer_get_length(out->buf);
	char	*s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_remove(out->buf, s, len);
	s[len] = '\0';
	return s;
}

static void
test_observe(void **unused)
{
	struct metrics_hist	h;
	size_t			n = metrics_latency.n;

	/* A bound belongs to its own bucket (le is "at most"); past the
	 * last bound is +Inf; the sum is exact. */
	metrics_hist_init(&h, &metrics_latency);
	metrics_observe(&h, 0);
	metrics_observe(&h, metrics_latency.le[0]);
	metrics_observe(&h, metrics_latency.le[0] + 1);
	metrics_observe(&h, metrics_latency.le[n - 1]);
	metrics_observe(&h, metrics_latency.le[n - 1] + 1);
	assert_int_equal(h.n[0], 2);
	assert_int_equal(h.n[1], 1);
	assert_int_equal(h.n[n - 1], 1);
	assert_int_equal(h.n[n], 1);
	assert_int_equal(h.sum_ns, 2 * metrics_latency.le[0] + 1 +
	    2 * metrics_latency.le[n - 1] + 1);
}

static void
test_render(void **unused)
{
	struct metrics_out	 out = { evbuffer_new(), 0 };
	struct metrics_hist	 h;
	char			*s;

	/* Family lines, escaped label values and HELP, exact seconds, and
	 * a histogram's cumulative buckets ending with +Inf = _count. */
	metrics_family(&out, "x_total", "counter", "a \\ b\nc");
	metrics_int(&out, "x_total", 7, "k", "a\"b\\c\nd", "j", "e", NULL);
	metrics_int(&out, "x_total", 0, NULL);
	metrics_seconds(&out, "y_seconds", 1500000000, NULL);
	metrics_seconds(&out, "y_seconds", 1, NULL);
	metrics_seconds(&out, "y_seconds", 0, NULL);
	metrics_one(&out, "w", "gauge", "One.", 3);
	s = take(&out);
	assert_string_equal(s,
	    "# HELP x_total a \\\\ b\\nc\n"
	    "# TYPE x_total counter\n"
	    "x_total{k=\"a\\\"b\\\\c\\nd\",j=\"e\"} 7\n"
	    "x_total 0\n"
	    "y_seconds 1.5\n"
	    "y_seconds 0.000000001\n"
	    "y_seconds 0\n"
	    "# HELP w One.\n# TYPE w gauge\nw 3\n");
	free(s);

	metrics_hist_init(&h, &metrics_slow);
	metrics_observe(&h, 20000000);		/* 20 ms */
	metrics_observe(&h, 20000000);
	metrics_observe(&h, (uint64_t)3600 * 1000000000);
	metrics_hist(&out, "z_seconds", &h, "m", "set", NULL);
	s = take(&out);
	assert_non_null(strstr(s, "z_seconds_bucket{m=\"set\",le=\"0.01\"} 0\n"
	    "z_seconds_bucket{m=\"set\",le=\"0.05\"} 2\n"));
	assert_non_null(strstr(s,
	    "z_seconds_bucket{m=\"set\",le=\"1800\"} 2\n"
	    "z_seconds_bucket{m=\"set\",le=\"+Inf\"} 3\n"
	    "z_seconds_sum{m=\"set\"} 3600.04\n"
	    "z_seconds_count{m=\"set\"} 3\n"));
	free(s);
	metrics_hist(&out, "z_seconds", &h, NULL);
	s = take(&out);
	assert_non_null(strstr(s, "z_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(s, "z_seconds_count 3\n"));
	free(s);
	assert_int_equal(out.failed, 0);
	evbuffer_free(out.buf);
}

static void
test_process(void **unused)
{
	struct metrics_out	 out = { evbuffer_new(), 0 };
	char			*s;

	/* /proc/self gives every process metric, the start in the past. */
	assert_true(metrics_start_time_ns() > (uint64_t)1600000000 *
	    1000000000);
	metrics_process(&out, metrics_start_time_ns());
	s = take(&out);
	assert_non_null(strstr(s, "\nprocess_cpu_seconds_total "));
	assert_non_null(strstr(s, "\nprocess_resident_memory_bytes "));
	assert_null(strstr(s, "\nprocess_resident_memory_bytes 0\n"));
	assert_non_null(strstr(s, "\nprocess_open_fds "));
	assert_non_null(strstr(s, "\nprocess_max_fds "));
	assert_non_null(strstr(s, "\nprocess_start_time_seconds 1"));
	free(s);
	evbuffer_free(out.buf);
}

static void
collect(struct metrics_out *out, void *arg)
{
	metrics_family(out, "t_total", "counter", "Test.");
	metrics_int(out, "t_total", *(int *)arg, NULL);
}

/* Send req to the server on port, run the loop until it closes the
 * connection, and return what it answered (malloc'd). */
static char *
ask(struct event_base *base, int port, const char *req)
{
	struct sockaddr_in	 sin;
	struct evbuffer		*b = evbuffer_new();
	char			*s;
	int			 fd, n;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = evbuffer_read(b, fd, 4096);
		if (n == 0)
			break;
		if (n == -1 && errno != EAGAIN)
			break;
		if (n == -1)
			usleep(1000);
	}
	close(fd);
	evbuffer_add(b, "", 1);
	s = strdup((char *)evbuffer_pullup(b, -1));
	evbuffer_free(b);
	return s;
}

/* A loopback port nothing listens on now (the address parser takes no
 * port 0). */
static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
test_server(void **unused)
{
	struct event_base	*base = event_base_new();
	struct metrics_server	*ms;
	int			 v = 41;
	char			*s, addr[32];

	/* GET /metrics: the page and its content type; other paths 404,
	 * other methods 405 with Allow: GET, a malformed request 400; the
	 * collector runs at each scrape. */
	snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
	ms = metrics_server_new(base, addr, collect, &v);
	assert_non_null(ms);
	assert_true(metrics_server_port(ms) > 0);
	s = ask(base, metrics_server_port(ms),
	    "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(s, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(s, "Content-Type: text/plain; version=0.0.4; "
	    "charset=utf-8\r\n"));
	assert_non_null(strstr(s, "\r\n\r\n# HELP t_total Test.\n"
	    "# TYPE t_total counter\nt_total 41\n"));
	assert_non_null(strstr(s, "\nprocess_open_fds "));
	free(s);
	v++;
	s = ask(base, metrics_server_port(ms),
	    "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(s, "\nt_total 42\n"));
	free(s);
	s = ask(base, metrics_server_port(ms),
	    "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(s, "HTTP/1.1 404 "));
	free(s);
	s = ask(base, metrics_server_port(ms),
	    "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	    "Content-Length: 0\r\n\r\n");
	assert_non_null(strstr(s, "HTTP/1.1 405 "));
	assert_non_null(strstr(s, "\r\nAllow: GET\r\n"));
	free(s);
	s = ask(base, metrics_server_port(ms), "\x01\x02 nonsense\r\n\r\n");
	assert_non_null(strstr(s, "HTTP/1.1 400 "));
	free(s);

	/* An address that does not parse, or is taken, fails start-up. */
	assert_null(metrics_server_new(base, "nonsense", collect, &v));
	snprintf(addr, sizeof addr, "127.0.0.1:%d", metrics_server_port(ms));
	assert_null(metrics_server_new(base, addr, collect, &v));
	metrics_server_free(ms);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_observe),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_server),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
