/*
 * Metrics for Prometheus: histograms with fixed buckets that the modules
 * keep beside their counters, the text exposition format (version 0.0.4,
 * Prometheus's "Exposition formats" document) to render them in, the
 * process_* metrics every Prometheus client exports, and a small HTTP
 * server (libevent's evhttp, on the caller's loop) that serves
 * GET /metrics.
 *
 * The modules know nothing of Prometheus: they count in plain integers
 * and histograms, and whoever serves the page (kv/kvfront.c) names and
 * renders them.  Nothing here allocates or locks on the hot path: an
 * observation is a short scan of the bounds and two additions.  A
 * histogram belongs to one thread, like the counters beside it; a module
 * with a thread of its own publishes a copy under its own lock (wal.c).
 */
#ifndef DSD_METRICS_H
#define DSD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

/* Bucket upper bounds in nanoseconds, ascending, fixed at compile time. */
#define METRICS_MAX_BUCKETS	20
struct metrics_bounds {
	const uint64_t	*le;
	size_t		 n;		/* at most METRICS_MAX_BUCKETS */
};
/* 25 us to 10 s: requests, fsyncs. */
extern const struct metrics_bounds metrics_latency;
/* 10 ms to 30 min: snapshots. */
extern const struct metrics_bounds metrics_slow;

struct metrics_hist {
	const struct metrics_bounds *bounds;
	/* Observations by bucket, not cumulative; n[bounds->n] is the
	 * bucket past the last bound (+Inf). */
	uint64_t	 n[METRICS_MAX_BUCKETS + 1];
	uint64_t	 sum_ns;
};

void		 metrics_hist_init(struct metrics_hist *,
		    const struct metrics_bounds *);
/* Count one observation of ns nanoseconds. */
void		 metrics_observe(struct metrics_hist *, uint64_t ns);
/* CLOCK_MONOTONIC in nanoseconds, for durations. */
uint64_t	 metrics_now_ns(void);

/*
 * Rendering.  A page is written family by family: metrics_family() (the
 * # HELP and # TYPE lines), then that family's samples, each with its
 * labels as NULL-terminated name, value pairs (values are escaped; names
 * must already be valid).  A failed append (memory) is remembered in
 * failed and the rest is skipped, so a caller checks once at the end.
 */
struct metrics_out {
	struct evbuffer	*buf;
	int		 failed;
};

/* type: "counter", "gauge" or "histogram". */
void		 metrics_family(struct metrics_out *, const char *name,
		    const char *type, const char *help);
void		 metrics_int(struct metrics_out *, const char *name,
		    uint64_t, ...) __attribute__((sentinel));
/* A family of one sample without labels: the families above in one call. */
void		 metrics_one(struct metrics_out *, const char *name,
		    const char *type, const char *help, uint64_t);
/* A value in seconds, given in nanoseconds, written exactly. */
void		 metrics_seconds(struct metrics_out *, const char *name,
		    uint64_t ns, ...) __attribute__((sentinel));
/* name_bucket (cumulative, le in seconds, ending with +Inf), name_sum
 * and name_count. */
void		 metrics_hist(struct metrics_out *, const char *name,
		    const struct metrics_hist *, ...) __attribute__((sentinel));
/*
 * The process metrics of Prometheus's client libraries, from /proc/self:
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds (start_ns, from metrics_start_time_ns()).
 * A file that cannot be read leaves its metrics out.
 */
void		 metrics_process(struct metrics_out *, uint64_t start_ns);
/* When this process started, in nanoseconds since the epoch; 0 if
 * /proc/self/stat cannot be read. */
uint64_t	 metrics_start_time_ns(void);

/*
 * The HTTP server: GET /metrics answers 200 with the page (collect's
 * families, then the process metrics) as
 * "text/plain; version=0.0.4; charset=utf-8", or 500 if memory ran out;
 * any other path 404, another method on /metrics 405.  Connections idle
 * for 10 s are closed; request headers are bounded.  There is no limit on
 * connections (libevent 2.1's evhttp has none): keep it on loopback or
 * behind a firewall.
 */
typedef void	(*metrics_collect_fn)(struct metrics_out *, void *arg);
struct metrics_server;

/* Start-up: bind and listen on addr as listen_tcp(); NULL after logging
 * why. */
struct metrics_server *metrics_server_new(struct event_base *,
		    const char *addr, metrics_collect_fn, void *arg);
int		 metrics_server_port(const struct metrics_server *);
void		 metrics_server_free(struct metrics_server *);

#endif
