/* Metrics for Prometheus; see metrics.h. */
#include "config.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "core/listen.h"
#include "core/log.h"
#include "core/metrics.h"

#define METRICS_CTYPE	"text/plain; version=0.0.4; charset=utf-8"
/* Longest a scrape connection may sit idle, and its request headers. */
#define METRICS_TIMEOUT_S	10
#define METRICS_MAX_HEADERS	8192

#define US	((uint64_t)1000)
#define MS	(1000 * US)
#define SEC	(1000 * MS)

static const uint64_t metrics_latency_le[] = {
	25 * US, 50 * US, 100 * US, 250 * US, 500 * US,
	1 * MS, 2500 * US, 5 * MS, 10 * MS, 25 * MS, 50 * MS, 100 * MS,
	250 * MS, 500 * MS, 1 * SEC, 2500 * MS, 5 * SEC, 10 * SEC,
};
const struct metrics_bounds metrics_latency = { metrics_latency_le,
    sizeof metrics_latency_le / sizeof metrics_latency_le[0] };

static const uint64_t metrics_slow_le[] = {
	10 * MS, 50 * MS, 100 * MS, 500 * MS, 1 * SEC, 5 * SEC, 10 * SEC,
	30 * SEC, 60 * SEC, 120 * SEC, 300 * SEC, 600 * SEC, 1800 * SEC,
};
const struct metrics_bounds metrics_slow = { metrics_slow_le,
    sizeof metrics_slow_le / sizeof metrics_slow_le[0] };

struct metrics_server {
	struct evhttp		*http;
	metrics_collect_fn	 collect;
	void			*arg;
	uint64_t		 start_ns;
	int			 port;
};

/* Histograms. */

void
metrics_hist_init(struct metrics_hist *h, const struct metrics_bounds *b)
{
	memset(h, 0, sizeof *h);
	h->bounds = b;
}

void
metrics_observe(struct metrics_hist *h, uint64_t ns)
{
	const uint64_t	*le = h->bounds->le;
	size_t		 i, n = h->bounds->n;

	/* Most observations are small, so the scan from the first bound
	 * ends within a few compares. */
	for (i = 0; i < n && ns > le[i]; i++)
		;
	h->n[i]++;
	h->sum_ns += ns;
}

uint64_t
metrics_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* Rendering. */

static void
metrics_add(struct metrics_out *out, const char *s, size_t len)
{
	if (!out->failed && evbuffer_add(out->buf, s, len) == -1)
		out->failed = 1;
}

static void
metrics_str(struct metrics_out *out, const char *s)
{
	metrics_add(out, s, strlen(s));
}

/* s with backslash and newline escaped, and double quote too if quote
 * (label values; HELP text escapes only the first two). */
static void
metrics_escaped(struct metrics_out *out, const char *s, int quote)
{
	const char	*p;

	for (p = s; *p != '\0'; p++) {
		if (*p == '\\')
			metrics_add(out, "\\\\", 2);
		else if (*p == '\n')
			metrics_add(out, "\\n", 2);
		else if (*p == '"' && quote)
			metrics_add(out, "\\\"", 2);
		else
			metrics_add(out, p, 1);
	}
}

/* ns as seconds, exactly: "0.00005", "2.5", "0". */
static void
metrics_fmt_seconds(char *buf, size_t len, uint64_t ns)
{
	char	*p;

	snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / SEC, ns % SEC);
	p = buf + strlen(buf) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
}

void
metrics_family(struct metrics_out *out, const char *name, const char *type,
    const char *help)
{
	metrics_str(out, "# HELP ");
	metrics_str(out, name);
	metrics_str(out, " ");
	metrics_escaped(out, help, 0);
	metrics_str(out, "\n# TYPE ");
	metrics_str(out, name);
	metrics_str(out, " ");
	metrics_str(out, type);
	metrics_str(out, "\n");
}

/* One sample line: name, suffix, {the pairs of ap and le="..." if le is
 * not NULL}, value. */
static void
metrics_line(struct metrics_out *out, const char *name, const char *suffix,
    va_list ap, const char *le, const char *value)
{
	va_list		 aq;
	const char	*k, *v;
	int		 n = 0;

	metrics_str(out, name);
	metrics_str(out, suffix);
	va_copy(aq, ap);
	while ((k = va_arg(aq, const char *)) != NULL) {
		v = va_arg(aq, const char *);
		metrics_str(out, n++ == 0 ? "{" : ",");
		metrics_str(out, k);
		metrics_str(out, "=\"");
		metrics_escaped(out, v, 1);
		metrics_str(out, "\"");
	}
	va_end(aq);
	if (le != NULL) {
		metrics_str(out, n++ == 0 ? "{le=\"" : ",le=\"");
		metrics_str(out, le);
		metrics_str(out, "\"");
	}
	if (n > 0)
		metrics_str(out, "}");
	metrics_str(out, " ");
	metrics_str(out, value);
	metrics_str(out, "\n");
}

void
metrics_int(struct metrics_out *out, const char *name, uint64_t v, ...)
{
	va_list	ap;
	char	buf[32];

	snprintf(buf, sizeof buf, "%" PRIu64, v);
	va_start(ap, v);
	metrics_line(out, name, "", ap, NULL, buf);
	va_end(ap);
}

void
metrics_one(struct metrics_out *out, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_family(out, name, type, help);
	metrics_int(out, name, v, NULL);
}

void
metrics_seconds(struct metrics_out *out, const char *name, uint64_t ns, ...)
{
	va_list	ap;
	char	buf[32];

	metrics_fmt_seconds(buf, sizeof buf, ns);
	va_start(ap, ns);
	metrics_line(out, name, "", ap, NULL, buf);
	va_end(ap);
}

void
metrics_hist(struct metrics_out *out, const char *name,
    const struct metrics_hist *h, ...)
{
	va_list		ap;
	char		le[32], val[32];
	uint64_t	cum = 0;
	size_t		i;

	va_start(ap, h);
	for (i = 0; i <= h->bounds->n; i++) {
		cum += h->n[i];
		if (i < h->bounds->n)
			metrics_fmt_seconds(le, sizeof le, h->bounds->le[i]);
		snprintf(val, sizeof val, "%" PRIu64, cum);
		metrics_line(out, name, "_bucket", ap,
		    i < h->bounds->n ? le : "+Inf", val);
	}
	metrics_fmt_seconds(val, sizeof val, h->sum_ns);
	metrics_line(out, name, "_sum", ap, NULL, val);
	snprintf(val, sizeof val, "%" PRIu64, cum);
	metrics_line(out, name, "_count", ap, NULL, val);
	va_end(ap);
}

/* The process. */

/* What metrics_process() takes from /proc/self/stat (proc(5)), in clock
 * ticks and pages as the file has them. */
struct metrics_stat {
	uint64_t	utime, stime;		/* fields 14, 15 */
	uint64_t	starttime;		/* 22: since boot */
	uint64_t	vsize;			/* 23: bytes */
	uint64_t	rss;			/* 24: pages */
};

/* Read /proc/self/stat; -1 if it cannot be read or parsed. */
static int
metrics_proc_stat(struct metrics_stat *st)
{
	struct evbuffer	*b;
	const char	*p;
	char		*end;
	uint64_t	 v;
	int		 fd, field, rv = -1;

	if ((b = evbuffer_new()) == NULL)
		return -1;
	if ((fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	while ((rv = evbuffer_read(b, fd, -1)) > 0)
		;
	close(fd);
	if (rv == -1 || evbuffer_add(b, "", 1) == -1 ||
	    (p = (const char *)evbuffer_pullup(b, -1)) == NULL) {
		rv = -1;
		goto out;
	}
	/* The command name (field 2) is in parentheses and may hold
	 * anything, spaces and parentheses too: fields resume after the
	 * last ')'. */
	rv = -1;
	if ((p = strrchr(p, ')')) == NULL)
		goto out;
	p++;
	for (field = 3; field <= 24; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			goto out;
		errno = 0;
		v = strtoull(p, &end, 10);
		switch (field) {
		case 14:
		case 15:
		case 22:
		case 23:
		case 24:
			if (end == p || errno != 0)
				goto out;
			break;
		}
		if (field == 14)
			st->utime = v;
		else if (field == 15)
			st->stime = v;
		else if (field == 22)
			st->starttime = v;
		else if (field == 23)
			st->vsize = v;
		else if (field == 24)
			st->rss = v;
		while (*p != ' ' && *p != '\0')
			p++;
	}
	rv = 0;
out:
	evbuffer_free(b);
	return rv;
}

static uint64_t
metrics_ticks_ns(uint64_t ticks)
{
	long	hz = sysconf(_SC_CLK_TCK);

	return hz > 0 ? ticks * (SEC / (uint64_t)hz) : 0;
}

uint64_t
metrics_start_time_ns(void)
{
	struct metrics_stat	st;
	struct timespec		now, up;
	uint64_t		boot;

	if (metrics_proc_stat(&st) == -1)
		return 0;
	/* The boot time as the wall clock has it now: /proc/stat's btime
	 * would do, but ProcSubset=pid (the systemd sandbox) hides it. */
	clock_gettime(CLOCK_REALTIME, &now);
	clock_gettime(CLOCK_BOOTTIME, &up);
	boot = ((uint64_t)now.tv_sec * SEC + (uint64_t)now.tv_nsec) -
	    ((uint64_t)up.tv_sec * SEC + (uint64_t)up.tv_nsec);
	return boot + metrics_ticks_ns(st.starttime);
}

/* Open descriptors, less the one reading the directory; -1 if it cannot
 * be read. */
static long
metrics_open_fds(void)
{
	DIR		*dir;
	struct dirent	*de;
	long		 n = 0;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n > 0 ? n - 1 : 0;
}

void
metrics_process(struct metrics_out *out, uint64_t start_ns)
{
	struct metrics_stat	st;
	struct rlimit		rl;
	long			fds, page = sysconf(_SC_PAGESIZE);

	if (metrics_proc_stat(&st) == 0) {
		metrics_family(out, "process_cpu_seconds_total", "counter",
		    "User and system CPU time spent in seconds.");
		metrics_seconds(out, "process_cpu_seconds_total",
		    metrics_ticks_ns(st.utime + st.stime), NULL);
		metrics_one(out, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.",
		    st.rss * (uint64_t)(page > 0 ? page : 4096));
		metrics_one(out, "process_virtual_memory_bytes", "gauge",
		    "Virtual memory size in bytes.", st.vsize);
	}
	if ((fds = metrics_open_fds()) != -1)
		metrics_one(out, "process_open_fds", "gauge",
		    "Number of open file descriptors.", (uint64_t)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		metrics_one(out, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.",
		    (uint64_t)rl.rlim_cur);
	if (start_ns != 0) {
		metrics_family(out, "process_start_time_seconds", "gauge",
		    "Start time of the process since unix epoch in seconds.");
		metrics_seconds(out, "process_start_time_seconds", start_ns,
		    NULL);
	}
}

/* The HTTP server. */

/*
 * An error page of one line.  evhttp_send_error() would drop the headers
 * set before it (a 405's Allow); a reply that cannot be built at all
 * leaves the rest to it.
 */
static void
metrics_http_error(struct evhttp_request *req, int code, const char *reason)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*b;

	if ((b = evbuffer_new()) == NULL ||
	    evbuffer_add_printf(b, "%d %s\n", code, reason) == -1 ||
	    evhttp_add_header(h, "Content-Type",
	    "text/plain; charset=utf-8") == -1)
		evhttp_send_error(req, code, reason);
	else
		evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
metrics_http_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_server	*ms = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	const char		*path = NULL;
	struct metrics_out	 out;

	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		metrics_http_error(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		/* Without the header the answer is still a 405. */
		(void)evhttp_add_header(h, "Allow", "GET");
		metrics_http_error(req, HTTP_BADMETHOD, "Method Not Allowed");
		return;
	}
	out.failed = 0;
	if ((out.buf = evbuffer_new()) == NULL) {
		metrics_http_error(req, HTTP_INTERNAL, "Internal Server Error");
		return;
	}
	ms->collect(&out, ms->arg);
	metrics_process(&out, ms->start_ns);
	if (out.failed ||
	    evhttp_add_header(h, "Content-Type", METRICS_CTYPE) == -1) {
		log_warnx("metrics: out of memory rendering the page");
		metrics_http_error(req, HTTP_INTERNAL, "Internal Server Error");
	} else
		evhttp_send_reply(req, HTTP_OK, "OK", out.buf);
	evbuffer_free(out.buf);
}

struct metrics_server *
metrics_server_new(struct event_base *base, const char *addr,
    metrics_collect_fn collect, void *arg)
{
	struct metrics_server	*ms;
	struct evconnlistener	*l;

	if ((ms = calloc(1, sizeof *ms)) == NULL) {
		log_warn("metrics");
		return NULL;
	}
	ms->collect = collect;
	ms->arg = arg;
	ms->start_ns = metrics_start_time_ns();
	if ((ms->http = evhttp_new(base)) == NULL) {
		log_warnx("metrics: evhttp_new failed");
		goto fail;
	}
	/* Every method reaches the callback, which answers 405 itself:
	 * evhttp's own refusal would not say which method is allowed. */
	evhttp_set_allowed_methods(ms->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(ms->http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(ms->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(ms->http, METRICS_MAX_HEADERS);
	evhttp_set_gencb(ms->http, metrics_http_cb, ms);
	if ((l = listen_tcp(base, addr, "metrics", NULL, NULL,
	    &ms->port)) == NULL)
		goto fail;
	if (evhttp_bind_listener(ms->http, l) == NULL) {
		log_warnx("metrics: cannot serve on %s", addr);
		evconnlistener_free(l);
		goto fail;
	}
	return ms;

fail:
	metrics_server_free(ms);
	return NULL;
}

int
metrics_server_port(const struct metrics_server *ms)
{
	return ms->port;
}

void
metrics_server_free(struct metrics_server *ms)
{
	if (ms == NULL)
		return;
	if (ms->http != NULL)
		evhttp_free(ms->http);	/* and the listener */
	free(ms);
}
