/*
 * A gRPC server for the transport's tests (tests/grpc/test_grpc.py) and
 * for h2load: the grpc/h2 modules with five test methods.
 *
 *   /dsd.test.v1.Test/Echo  replies the request bytes
 *   /dsd.test.v1.Test/Slow  request: decimal milliseconds as text; replies
 *                           "slept N" after that long, from a timer, and
 *                           replies even if the call died meanwhile, so
 *                           that the late-reply-to-a-dead-call path runs
 *   /dsd.test.v1.Test/Fail  request: "CODE message"; answers that status
 *                           and message (CODE 0: an empty reply)
 *   /dsd.test.v1.Test/Big   request: a decimal byte count; replies that
 *                           many bytes at once, so that a tiny request
 *                           gets a large reply (the held-bytes budget)
 *   /dsd.test.v1.Test/Count request: "N SIZE [CODE]"; a streamed reply of
 *                           N messages of SIZE bytes (message i starts
 *                           with "i."), sent as the client takes them,
 *                           at most COUNT_QUEUE bytes queued at a time,
 *                           then status CODE (default 0, OK)
 *
 * usage: grpc-test-server [-v] [-a addr] [-b max-held] [-B max-held-total]
 *            [-g grace-ms] [-H header-bytes] [-i idle-ms] [-m max-message]
 *            [-p max-pending] [-P max-pending-total] [-s max-streams] port
 * Prints "listening on ADDR:PORT" on stderr once bound (port 0 picks one);
 * SIGTERM or SIGINT stops it gracefully and it exits 0.
 */
#include "config.h"

#include <sys/queue.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/grpc.h"
#include "core/log.h"
#include "core/xmalloc.h"

struct slow {
	struct grpc_call	*call;
	struct event		*timer;
	long			 ms;
	TAILQ_ENTRY(slow)	 entry;
};

static struct event_base	*base;
static struct grpc_server	*srv;
static TAILQ_HEAD(, slow)	 slows = TAILQ_HEAD_INITIALIZER(slows);
static int			 grace_ms = 5000;

static void
echo(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	grpc_call_reply(call, req, len);
}

/* A Count call being streamed. */
struct count {
	long			 i, n, size, code;
	char			*msg;
};

/* What Count keeps queued for the client at most: the server's memory
 * for a stream of any length. */
#define COUNT_QUEUE	(64 * 1024)

static void
slow_fire(evutil_socket_t fd, short what, void *arg)
{
	struct slow	*s = arg;
	char		 out[32];
	int		 n;

	n = snprintf(out, sizeof out, "slept %ld", s->ms);
	/* Dropped, and -1, if the client left or the deadline passed. */
	if (grpc_call_reply(s->call, out, (size_t)n) == -1)
		log_debug("slow: reply after %ld ms dropped", s->ms);
	TAILQ_REMOVE(&slows, s, entry);
	event_free(s->timer);
	free(s);
}

static void
slow_cancelled(struct grpc_call *call, void *arg)
{
	struct slow	*s = arg;

	/* Keep the timer: its late reply must be dropped harmlessly. */
	log_debug("slow: call of %ld ms cancelled", s->ms);
}

/* Parse a whole decimal number in [min, max], or return -1. */
static long
parse_num(const char *p, size_t len, long min, long max)
{
	long	v = 0;
	size_t	i;

	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v < min || v > max ? -1 : v;
}

static void
slow(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	struct slow	*s;
	struct timeval	 tv;
	long		 ms;

	if ((ms = parse_num((const char *)req, len, 0, 600000)) == -1) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "want milliseconds as decimal text");
		return;
	}
	if ((s = calloc(1, sizeof *s)) == NULL ||
	    (s->timer = evtimer_new(base, slow_fire, s)) == NULL) {
		free(s);
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->call = call;
	s->ms = ms;
	grpc_call_on_cancel(call, slow_cancelled, s);
	TAILQ_INSERT_TAIL(&slows, s, entry);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static void
fail(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	const char	*p = (const char *)req, *sp;
	char		*msg;
	long		 code;

	sp = memchr(p, ' ', len);
	code = parse_num(p, sp != NULL ? (size_t)(sp - p) : len, 0, 16);
	if (code == -1) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "want \"CODE message\"");
		return;
	}
	if (code == 0) {
		grpc_call_reply(call, "", 0);
		return;
	}
	if (sp == NULL)
		msg = NULL;
	else if ((msg = strndup(sp + 1, len - (size_t)(sp + 1 - p))) == NULL) {
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	grpc_call_error(call, (enum grpc_status)code, msg);
	free(msg);
}

static void
big(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	uint8_t	*out;
	long	 n;

	/* Over max-message, grpc_call_reply() answers RESOURCE_EXHAUSTED. */
	if ((n = parse_num((const char *)req, len, 0, 1 << 30)) == -1) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "want a byte count as decimal text");
		return;
	}
	if ((out = malloc(n > 0 ? (size_t)n : 1)) == NULL) {
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	memset(out, 'b', (size_t)n);
	grpc_call_reply(call, out, (size_t)n);
	free(out);
}

static void
count_free(struct count *c)
{
	free(c->msg);
	free(c);
}

static void
count_cancelled(struct grpc_call *call, void *arg)
{
	struct count	*c = arg;

	log_notice("count: cancelled after %ld of %ld messages", c->i, c->n);
	grpc_call_error(call, GRPC_CANCELLED, NULL);	/* releases it */
	count_free(c);
}

/* Send what the queue has room for; end the call after the last. */
static void
count_pump(struct grpc_call *call, void *arg)
{
	struct count	*c = arg;
	int		 n;

	while (c->i < c->n && grpc_call_queued(call) < COUNT_QUEUE) {
		memset(c->msg, '.', (size_t)c->size);
		n = snprintf(c->msg, (size_t)c->size + 1, "%ld.", c->i);
		if (n < c->size)
			c->msg[n] = '.';	/* snprintf's NUL */
		if (grpc_call_send(call, c->msg, (size_t)c->size) == -1) {
			log_info("count: send failed at message %ld", c->i);
			grpc_call_error(call, GRPC_INTERNAL, NULL);
			count_free(c);
			return;
		}
		c->i++;
	}
	if (c->i < c->n)
		return;
	if (c->code == 0)
		grpc_call_end(call);
	else
		grpc_call_error(call, (enum grpc_status)c->code, "count ended");
	count_free(c);
}

static void
count(struct grpc_call *call, const uint8_t *req, size_t len, void *arg)
{
	struct count	*c;
	char		 text[64];

	if (len >= sizeof text) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "request too long");
		return;
	}
	memcpy(text, req, len);
	text[len] = '\0';
	if ((c = calloc(1, sizeof *c)) == NULL) {
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (sscanf(text, "%ld %ld %ld", &c->n, &c->size, &c->code) < 2 ||
	    c->n < 0 || c->size < 1 || c->size > (1 << 24) || c->code < 0 ||
	    c->code > 16) {
		free(c);
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "want \"N SIZE [CODE]\"");
		return;
	}
	/* One spare byte for snprintf's NUL. */
	if ((c->msg = malloc((size_t)c->size + 1)) == NULL) {
		free(c);
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	grpc_call_on_cancel(call, count_cancelled, c);
	grpc_call_on_writable(call, count_pump, c);
	count_pump(call, c);
}

static const struct grpc_method test_methods[] = {
	{ "/dsd.test.v1.Test/Echo", echo, NULL },
	{ "/dsd.test.v1.Test/Slow", slow, NULL },
	{ "/dsd.test.v1.Test/Fail", fail, NULL },
	{ "/dsd.test.v1.Test/Big", big, NULL },
	{ "/dsd.test.v1.Test/Count", count, NULL },
	{ NULL, NULL, NULL }
};

static void
stopped(void *arg)
{
	event_base_loopexit(base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	log_info("caught signal %d, stopping", (int)sig);
	grpc_server_shutdown(srv, grace_ms, stopped, NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: grpc-test-server [-v] [-a addr] [-b max-held] "
	    "[-B max-held-total] [-g grace-ms] [-H header-bytes] "
	    "[-i idle-ms] [-m max-message] [-p max-pending] "
	    "[-P max-pending-total] [-s max-streams] port\n");
	exit(2);
}

static long
num_arg(const char *s, long min, long max)
{
	long	v;

	if ((v = parse_num(s, strlen(s), min, max)) == -1)
		usage();
	return v;
}

int
main(int argc, char **argv)
{
	struct grpc_config	 cfg;
	struct event		*sigterm, *sigint;
	struct slow		*s;
	const char		*addr = "127.0.0.1";
	char			*listen;
	int			 ch, verbose = 0;
	long			 port;

	grpc_config_defaults(&cfg);
	while ((ch = getopt(argc, argv, "a:b:B:g:H:i:m:p:P:s:v")) != -1) {
		switch (ch) {
		case 'a':
			addr = optarg;
			break;
		case 'b':
			cfg.h2.max_held = (size_t)num_arg(optarg, 1, 1 << 30);
			break;
		case 'B':
			cfg.h2.max_held_total = (size_t)num_arg(optarg, 1,
			    1 << 30);
			break;
		case 'p':
			cfg.h2.max_pending = (size_t)num_arg(optarg, 1,
			    1 << 30);
			break;
		case 'P':
			cfg.h2.max_pending_total = (size_t)num_arg(optarg, 1,
			    1 << 30);
			break;
		case 'g':
			grace_ms = (int)num_arg(optarg, 0, 600000);
			break;
		case 'H':
			cfg.h2.max_header_list =
			    (uint32_t)num_arg(optarg, 1024, 1 << 24);
			break;
		case 'i':
			cfg.h2.idle_timeout_ms = (int)num_arg(optarg, 0,
			    3600000);
			break;
		case 'm':
			cfg.max_recv_message = cfg.max_send_message =
			    (size_t)num_arg(optarg, 0, 1 << 30);
			break;
		case 's':
			cfg.h2.max_streams = (uint32_t)num_arg(optarg, 1,
			    100000);
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	port = num_arg(argv[optind], 0, 65535);
	if (cfg.h2.max_pending > cfg.h2.max_pending_total)
		cfg.h2.max_pending = cfg.h2.max_pending_total;
	if (cfg.h2.max_held > cfg.h2.max_held_total)
		cfg.h2.max_held = cfg.h2.max_held_total;

	log_init("grpc-test-server", verbose);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	xasprintf(&listen, strchr(addr, ':') != NULL ? "[%s]:%ld" : "%s:%ld",
	    addr, port);
	cfg.h2.listen = listen;
	if ((srv = grpc_server_new(base, &cfg)) == NULL)
		fatalx("cannot start the server on %s", listen);
	if (grpc_server_register(srv, test_methods) == -1)
		fatalx("cannot register the test methods");
	sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	if (sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) == -1 || evsignal_add(sigint, NULL) == -1)
		fatalx("cannot install signal handlers");
	fprintf(stderr, strchr(addr, ':') != NULL ? "listening on [%s]:%d\n" :
	    "listening on %s:%d\n", addr, grpc_server_port(srv));
	fflush(stderr);

	if (event_base_dispatch(base) == -1)
		fatalx("event loop failed");

	/* Whatever Slow still waits on dies with the server; answering a
	 * dead call only frees it. */
	grpc_server_free(srv);
	while ((s = TAILQ_FIRST(&slows)) != NULL) {
		TAILQ_REMOVE(&slows, s, entry);
		grpc_call_error(s->call, GRPC_UNAVAILABLE, "server stopped");
		event_free(s->timer);
		free(s);
	}
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	free(listen);
	log_info("stopped");
	return 0;
}
