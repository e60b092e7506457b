/*
 * Figures for the kvdb storage engine (issue 3), printed, not checked:
 * memory per key, snapshot and recovery times, durable appends per second,
 * and for kvdb-replicated's state machine (issue 10): its memory per key
 * and how long a snapshot pauses the loop.
 * Built by "make bench/store-bench"; no test runs it.
 *
 *	bench/store-bench [-d dir] [-n keys] [-t seconds]
 *
 * The data goes to a new directory under dir (default /var/tmp, which is
 * on disk where /tmp may be tmpfs, whose fsync costs nothing) and is
 * removed at the end.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "kv/rsm.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

#define KEYLEN	8
#define DATALEN	16

/* This thread's CPU time: a pause that the scheduler did not stretch. */
static double
cpu(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in bytes, from /proc/self/statm. */
static long
rss(void)
{
	FILE	*f;
	long	 size, res = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

/* Key i as 8 canonical bytes (first byte 0x40..0x7f), spread out. */
static void
mkkey(uint8_t *key, uint64_t i)
{
	uint64_t	v = 0x4000000000000000ULL |
	    ((i * 0x9e3779b97f4a7c15ULL) & 0x3fffffffffffffffULL);
	int		b;

	for (b = 0; b < KEYLEN; b++)
		key[b] = (uint8_t)(v >> (56 - 8 * b));
}

static void
mkop(struct store_op *op, enum store_op_type type, uint8_t *key,
    uint8_t *data, uint64_t i, int64_t version)
{
	mkkey(key, i);
	memset(data, 'a' + (int)(i % 26), DATALEN);
	memset(op, 0, sizeof *op);
	op->type = type;
	op->key = key;
	op->keylen = KEYLEN;
	op->timestamp = (int64_t)i;
	op->version = version;
	op->data = data;
	op->datalen = DATALEN;
}

/* Apply, and log what changed the store, as the kvdb mode does
 * (reserve, apply, commit or cancel: see wal.h). */
static void
apply(struct store *st, struct wal *w, const struct store_op *op)
{
	struct store_result	 res;
	uint8_t			*p = NULL;
	size_t			 n;

	n = store_op_encode(op, NULL, 0);
	if (w != NULL && (p = wal_reserve(w, n)) == NULL)
		fatalx("wal_reserve");
	if (store_apply(st, op, &res) == -1)
		fatalx("out of memory");
	if (p != NULL && res.status == STORE_SUCCESS &&
	    store_op_mutates(op->type)) {
		store_op_encode(op, p, n);
		wal_commit(w);
	} else if (p != NULL)
		wal_cancel(w);
	store_result_release(&res);
}

static void
rmtree(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[1024];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static char *
newdir(const char *parent, const char *what)
{
	char	*dir;

	if (asprintf(&dir, "%s/dsd-bench-%s-XXXXXX", parent, what) == -1)
		fatal("asprintf");
	if (mkdtemp(dir) == NULL)
		fatal("mkdtemp %s", dir);
	return dir;
}

/* Memory, snapshot, recovery. */

struct snapwait {
	int	done;
	int	ok;
};

static void
snap_done(void *arg, int ok, const struct snap_info *info)
{
	struct snapwait	*sw = arg;

	sw->done = 1;
	sw->ok = ok;
}

static void
bench_store(const char *parent, uint64_t nkeys)
{
	struct event_base	*base = event_base_new();
	struct store		*st;
	struct wal		*w;
	struct snap		*s;
	struct snap_info	 info;
	struct wal_config	 wc;
	struct snap_config	 sc;
	struct snapwait		 sw = { 0, 0 };
	struct store_op		 op;
	struct mallinfo2	 mi0, mi1;
	struct stat		 sb;
	uint8_t			 key[KEYLEN], data[DATALEN];
	char			 err[512], path[1024], *dir;
	long			 rss0, rss1;
	double			 t0, t1, tfork;
	uint64_t		 i, nlog = 100000;

	dir = newdir(parent, "store");
	malloc_trim(0);
	rss0 = rss();
	mi0 = mallinfo2();
	if ((st = store_new()) == NULL)
		fatalx("store_new");
	t0 = now();
	for (i = 0; i < nkeys; i++) {
		mkop(&op, STORE_OP_SET, key, data, i, 0);
		apply(st, NULL, &op);
	}
	t1 = now();
	rss1 = rss();
	mi1 = mallinfo2();
	printf("insert: %" PRIu64 " keys of %d bytes with %d-byte values in "
	    "%.2f s (%.0f/s)\n", nkeys, KEYLEN, DATALEN, t1 - t0,
	    (double)nkeys / (t1 - t0));
	printf("memory: RSS %.1f MiB before, %.1f MiB after: %.1f bytes per "
	    "key, %.1f bytes of overhead beyond key and data\n",
	    rss0 / 1048576.0, rss1 / 1048576.0,
	    (double)(rss1 - rss0) / (double)nkeys,
	    (double)(rss1 - rss0) / (double)nkeys - KEYLEN - DATALEN);
	printf("memory: malloc heap %.1f bytes per key (%.1f overhead)\n",
	    (double)(mi1.uordblks + mi1.hblkhd - mi0.uordblks - mi0.hblkhd) /
	    (double)nkeys,
	    (double)(mi1.uordblks + mi1.hblkhd - mi0.uordblks - mi0.hblkhd) /
	    (double)nkeys - KEYLEN - DATALEN);

	/* A forked snapshot of everything. */
	memset(&wc, 0, sizeof wc);
	wc.dir = dir;
	wc.base = base;
	if ((w = wal_open(&wc, 0, 0, NULL, NULL, err, sizeof err)) == NULL)
		fatalx("%s", err);
	memset(&sc, 0, sizeof sc);
	sc.dir = dir;
	sc.base = base;
	sc.store = st;
	sc.wal = w;
	sc.done = snap_done;
	sc.arg = &sw;
	if ((s = snap_new(&sc, NULL)) == NULL)
		fatalx("snap_new");
	t0 = now();
	if (snap_start(s, 1) != 1)
		fatalx("snap_start");
	tfork = now() - t0;
	while (!sw.done)
		event_base_loop(base, EVLOOP_ONCE);
	t1 = now();
	if (!sw.ok)
		fatalx("snapshot failed");
	snprintf(path, sizeof path, "%s/snapshot", dir);
	if (stat(path, &sb) == -1)
		fatal("%s", path);
	printf("snapshot: %" PRIu64 " keys, %.1f MiB, %.3f s in the child "
	    "(the loop was blocked %.2f ms by fork)\n", nkeys,
	    (double)sb.st_size / 1048576.0, t1 - t0, tfork * 1e3);

	/* A log after it: half updates, half new keys, durable. */
	for (i = 0; i < nlog; i++) {
		if (i % 2 == 0)
			mkop(&op, STORE_OP_TESTANDSET, key, data, i, 1);
		else
			mkop(&op, STORE_OP_SET, key, data, nkeys + i, 0);
		apply(st, w, &op);
	}
	if (wal_sync(w) == -1)
		fatalx("wal_sync");
	snap_free(s);
	wal_close(w);
	i = store_count(st);
	store_free(st);

	/* Start-up: snapshot plus log. */
	malloc_trim(0);
	if ((st = store_new()) == NULL)
		fatalx("store_new");
	t0 = now();
	if ((w = snap_recover(st, &wc, &info, err, sizeof err)) == NULL)
		fatalx("%s", err);
	t1 = now();
	if (store_count(st) != i)
		fatalx("recovered %zu keys, expected %" PRIu64,
		    store_count(st), i);
	printf("recovery: snapshot of %" PRIu64 " keys + %" PRIu64 " log "
	    "records in %.3f s\n", info.count, wal_last_seq(w) - info.seq,
	    t1 - t0);
	wal_close(w);
	store_free(st);
	event_base_free(base);
	rmtree(dir);
	free(dir);
}

/* Durable appends. */

struct durable {
	uint64_t	seq;
	struct store	*st;
};

static void
durable_cb(void *arg, uint64_t seq, int error)
{
	struct durable	*d = arg;

	if (error != 0)
		fatalx("wal: %s", strerror(error));
	d->seq = seq;
}

/*
 * A reading client on a socketpair: every 100 us its thread sends one
 * byte, the loop answers it with a get, and the thread times the answer.
 * It shows how long reads wait while writes are being made durable.
 */
struct reader {
	int		 fd[2];
	struct event	*ev;
	struct store	*st;
	pthread_t	 thread;
	volatile int	 stop;
	double		*lat;
	size_t		 nlat, cap;
};

static void
reader_serve(evutil_socket_t fd, short what, void *arg)
{
	struct reader		*r = arg;
	struct store_op		 op;
	struct store_result	 res;
	uint8_t			 key[KEYLEN], data[DATALEN], buf[64];
	ssize_t			 n, i;

	if ((n = read(fd, buf, sizeof buf)) <= 0)
		return;
	for (i = 0; i < n; i++) {
		mkop(&op, STORE_OP_GET, key, data, (uint64_t)buf[i], 0);
		if (store_apply(r->st, &op, &res) == 0)
			store_result_release(&res);
	}
	if (write(fd, buf, (size_t)n) != n)
		fatal("reader");
}

static void *
reader_main(void *arg)
{
	struct reader		*r = arg;
	struct timespec		 gap = { 0, 100000 };
	uint8_t			 c = 0;
	double			 t;

	while (!r->stop) {
		t = now();
		if (write(r->fd[1], &c, 1) != 1 || read(r->fd[1], &c, 1) != 1)
			break;
		if (r->nlat < r->cap)
			r->lat[r->nlat++] = now() - t;
		c++;
		nanosleep(&gap, NULL);
	}
	return NULL;
}

static int
cmpdouble(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Appends per second, batch records per loop pass, each batch waited for
 * until durable, with the reader's get latency alongside. */
static void
bench_durable(const char *parent, int inline_sync, int batch, double secs)
{
	struct event_base	*base = event_base_new();
	struct wal		*w;
	struct wal_config	 wc;
	struct wal_stats	 st0, st1;
	struct durable		 d;
	struct reader		 r;
	struct store_op		 op;
	uint8_t			 key[KEYLEN], data[DATALEN], rec[64];
	char			 err[512], *dir;
	uint64_t		 n = 0, seq = 0;
	double			 t0, t1;
	size_t			 len;
	int			 i;

	dir = newdir(parent, "wal");
	memset(&d, 0, sizeof d);
	d.st = store_new();
	for (i = 0; i < 256; i++) {
		mkop(&op, STORE_OP_SET, key, data, (uint64_t)i, 0);
		apply(d.st, NULL, &op);
	}
	memset(&wc, 0, sizeof wc);
	wc.dir = dir;
	wc.fsync = WAL_FSYNC_ALWAYS;
	wc.inline_sync = inline_sync;
	wc.base = base;
	wc.durable = durable_cb;
	wc.arg = &d;
	if ((w = wal_open(&wc, 0, 0, NULL, NULL, err, sizeof err)) == NULL)
		fatalx("%s", err);

	memset(&r, 0, sizeof r);
	r.st = d.st;
	r.cap = (size_t)(secs * 20000) + 1000;
	if ((r.lat = calloc(r.cap, sizeof *r.lat)) == NULL)
		fatal("calloc");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, r.fd) == -1)
		fatal("socketpair");
	r.ev = event_new(base, r.fd[0], EV_READ | EV_PERSIST, reader_serve,
	    &r);
	event_add(r.ev, NULL);
	if (pthread_create(&r.thread, NULL, reader_main, &r) != 0)
		fatalx("pthread_create");

	mkop(&op, STORE_OP_SET, key, data, 1, 0);
	len = store_op_encode(&op, rec, sizeof rec);
	wal_get_stats(w, &st0);
	t0 = now();
	do {
		for (i = 0; i < batch; i++)
			seq = wal_append(w, rec, len);
		n += (uint64_t)batch;
		while (d.seq < seq)
			event_base_loop(base, EVLOOP_ONCE);
	} while ((t1 = now()) - t0 < secs);
	wal_get_stats(w, &st1);

	/* Let the reader finish its last round trip. */
	r.stop = 1;
	while (pthread_tryjoin_np(r.thread, NULL) != 0)
		event_base_loop(base, EVLOOP_NONBLOCK);
	qsort(r.lat, r.nlat, sizeof *r.lat, cmpdouble);

	printf("durable appends (always, %s, batches of %d): %.0f appends/s, "
	    "%.0f fsyncs/s, %.0f us per batch\n", inline_sync ?
	    "fsync on the loop" : "flusher thread", batch,
	    (double)n / (t1 - t0), (double)(st1.fsyncs - st0.fsyncs) /
	    (t1 - t0), (t1 - t0) * 1e6 / ((double)n / batch));
	if (r.nlat != 0)
		printf("    gets alongside: %zu, latency p50 %.0f us, p99 %.0f "
		    "us, max %.0f us\n", r.nlat, r.lat[r.nlat / 2] * 1e6,
		    r.lat[r.nlat * 99 / 100] * 1e6, r.lat[r.nlat - 1] * 1e6);
	event_free(r.ev);
	close(r.fd[0]);
	close(r.fd[1]);
	free(r.lat);
	wal_close(w);
	store_free(d.st);
	event_base_free(base);
	rmtree(dir);
	free(dir);
}

/*
 * Many clients: n closed-loop clients whose requests each cost cost_us of
 * loop CPU (standing for HTTP/2 and protobuf work) before the append; a
 * client sends its next request once the last is durable.  With the
 * flusher thread the loop works on the next batch while the disk syncs
 * this one; with the fsync on the loop the two take turns.
 */
struct fleet;
struct client {
	struct fleet	*fl;
	int		 id;
	struct event	*ev;
};

struct fleet {
	struct wal	*w;
	struct client	*c;
	int		 n;
	double		 cost;
	uint64_t	*ring_seq;	/* pending acks, in order */
	int		*ring_id;
	size_t		 head, len;
	uint64_t	 acked;
	uint8_t		 rec[64];
	size_t		 reclen;
};

static void
fleet_request(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;
	struct fleet	*fl = c->fl;
	double		 until = now() + fl->cost;
	size_t		 slot;

	while (now() < until)
		;
	slot = (fl->head + fl->len) % (size_t)fl->n;
	fl->ring_seq[slot] = wal_append(fl->w, fl->rec, fl->reclen);
	fl->ring_id[slot] = c->id;
	fl->len++;
}

static void
fleet_durable(void *arg, uint64_t seq, int error)
{
	struct fleet	*fl = arg;
	struct timeval	 rtt = { 0, 0 };

	if (error != 0)
		fatalx("wal: %s", strerror(error));
	/* The next request comes back after a network round trip of up to
	 * 200 us, through a later poll of the loop, as from a socket. */
	while (fl->len != 0 && fl->ring_seq[fl->head] <= seq) {
		rtt.tv_usec = random() % 200;
		evtimer_add(fl->c[fl->ring_id[fl->head]].ev, &rtt);
		fl->head = (fl->head + 1) % (size_t)fl->n;
		fl->len--;
		fl->acked++;
	}
}

static void
bench_fleet(const char *parent, int inline_sync, int n, double cost_us,
    double secs)
{
	struct event_config	*ec = event_config_new();
	struct event_base	*base;
	struct wal_config	 wc;
	struct wal_stats	 st0, st1;
	struct fleet		 fl;
	struct timeval		 zero = { 0, 0 };
	struct store_op		 op;
	uint8_t			 key[KEYLEN], data[DATALEN];
	char			 err[512], *dir;
	double			 t0, t1;
	int			 i;

	/* Microsecond timers (timerfd) for the round trips. */
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	if ((base = event_base_new_with_config(ec)) == NULL)
		fatalx("event_base_new_with_config");
	event_config_free(ec);
	dir = newdir(parent, "fleet");
	memset(&fl, 0, sizeof fl);
	fl.n = n;
	fl.cost = cost_us / 1e6;
	fl.c = calloc((size_t)n, sizeof *fl.c);
	fl.ring_seq = calloc((size_t)n, sizeof *fl.ring_seq);
	fl.ring_id = calloc((size_t)n, sizeof *fl.ring_id);
	if (fl.c == NULL || fl.ring_seq == NULL || fl.ring_id == NULL)
		fatal("calloc");
	mkop(&op, STORE_OP_SET, key, data, 1, 0);
	fl.reclen = store_op_encode(&op, fl.rec, sizeof fl.rec);
	memset(&wc, 0, sizeof wc);
	wc.dir = dir;
	wc.inline_sync = inline_sync;
	wc.base = base;
	wc.durable = fleet_durable;
	wc.arg = &fl;
	if ((fl.w = wal_open(&wc, 0, 0, NULL, NULL, err, sizeof err)) == NULL)
		fatalx("%s", err);
	for (i = 0; i < n; i++) {
		fl.c[i].fl = &fl;
		fl.c[i].id = i;
		fl.c[i].ev = evtimer_new(base, fleet_request, &fl.c[i]);
		if (fl.c[i].ev == NULL)
			fatalx("event_new");
		evtimer_add(fl.c[i].ev, &zero);
	}
	wal_get_stats(fl.w, &st0);
	t0 = now();
	while ((t1 = now()) - t0 < secs)
		event_base_loop(base, EVLOOP_ONCE);
	wal_get_stats(fl.w, &st1);
	printf("%d clients, %.0f us of loop work per request, 0-200 us round "
	    "trips (always, %s): %.0f acknowledged writes/s, %.0f fsyncs/s\n",
	    n, cost_us,
	    inline_sync ? "fsync on the loop" : "flusher thread",
	    (double)fl.acked / (t1 - t0), (double)(st1.fsyncs - st0.fsyncs) /
	    (t1 - t0));
	/* Closing reports the last acks, which touch the clients' events:
	 * those go after it. */
	wal_close(fl.w);
	for (i = 0; i < n; i++)
		event_free(fl.c[i].ev);
	free(fl.c);
	free(fl.ring_seq);
	free(fl.ring_id);
	event_base_free(base);
	rmtree(dir);
	free(dir);
}

/* The disk's own rate: write 41 bytes and fdatasync, in a loop. */
static void
bench_raw_fsync(const char *parent, double secs)
{
	char		*dir, path[1024];
	uint8_t		 buf[41];
	uint64_t	 n = 0;
	double		 t0, t1;
	int		 fd;

	dir = newdir(parent, "raw");
	snprintf(path, sizeof path, "%s/f", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		fatal("%s", path);
	memset(buf, 'x', sizeof buf);
	t0 = now();
	do {
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
		    fdatasync(fd) == -1)
			fatal("%s", path);
		n++;
	} while ((t1 = now()) - t0 < secs);
	close(fd);
	printf("disk: write + fdatasync of 41 bytes in a loop: %.0f/s\n",
	    (double)n / (t1 - t0));
	rmtree(dir);
	free(dir);
}

/*
 * kvdb-replicated's state machine: the same keys applied as Raft entries
 * (batches of 500), the memory that costs, and a snapshot: the freeze is
 * what the event loop pauses for, the encoding runs on a libuv worker
 * while the loop goes on (here it applies another 100k operations
 * meanwhile), the thaw is on the loop again.
 */
static void
bench_rsm(uint64_t nkeys)
{
	struct rsm		*m;
	struct rsm_batch	 b;
	struct rsm_origin	 o;
	struct rsm_frozen	*f = NULL;
	struct store_op		 op;
	uint8_t			 key[KEYLEN], data[DATALEN], *e, *snap;
	size_t			 len, slen, want;
	long			 rss0, rss1;
	double			 t0, c0, cf = 0, tf = 0, te, tt, tr;
	uint64_t		 i;
	char			 err[256];

	memset(&b, 0, sizeof b);
	memset(&o, 0, sizeof o);
	malloc_trim(0);
	rss0 = rss();
	if ((m = rsm_new()) == NULL)
		fatalx("rsm_new");
	for (i = 0; i < nkeys + 100000; i++) {
		if (i % 500 == 0) {
			o.batch++;
			if (rsm_batch_begin(&b, &o) == -1)
				fatalx("rsm_batch_begin");
		}
		if (i == nkeys) {
			/* All loaded: measure, freeze, then go on. */
			rss1 = rss();
			printf("rsm: %" PRIu64 " keys (%d-byte keys, %d-byte "
			    "values) applied as entries: %.1f MiB RSS, %.1f "
			    "bytes per key\n", nkeys, KEYLEN, DATALEN,
			    (double)(rss1 - rss0) / (1 << 20),
			    (double)(rss1 - rss0) / (double)nkeys);
			t0 = now();
			c0 = cpu();
			if ((f = rsm_freeze(m)) == NULL)
				fatalx("rsm_freeze");
			tf = now() - t0;
			cf = cpu() - c0;
		}
		mkop(&op, i < nkeys ? STORE_OP_SET : STORE_OP_TESTANDSET, key,
		    data, i < nkeys ? i : i - nkeys, 1);
		if (rsm_batch_add(&b, 0, 0, &op) == -1)
			fatalx("rsm_batch_add");
		if (i % 500 == 499 || i + 1 == nkeys + 100000) {
			if ((e = rsm_batch_end(&b, &len)) == NULL ||
			    rsm_apply(m, e, len, NULL, NULL) == -1)
				fatalx("rsm_apply");
			free(e);
			/* As the Raft glue does on a libuv worker. */
			if ((want = rsm_spare_wanted(m)) != 0)
				rsm_spare_adopt(m, rsm_spare_make(want), want);
		}
	}
	t0 = now();
	if ((snap = rsm_frozen_encode(f, &slen)) == NULL)
		fatalx("rsm_frozen_encode");
	te = now() - t0;
	t0 = now();
	rsm_thaw(m, f);
	tt = now() - t0;
	printf("rsm: first snapshot of %" PRIu64 " keys: loop paused %.2f ms "
	    "to freeze (%.2f ms of CPU) and %.2f ms to thaw; %.1f MiB encoded "
	    "off the loop in %.0f ms (100k operations applied while frozen)\n",
	    nkeys, tf * 1e3, cf * 1e3, tt * 1e3, (double)slen / (1 << 20),
	    te * 1e3);
	/* The next ones find the array the encoder made ready. */
	for (i = 0; i < 3; i++) {
		t0 = now();
		c0 = cpu();
		if ((f = rsm_freeze(m)) == NULL)
			fatalx("rsm_freeze");
		tf = now() - t0;
		c0 = cpu() - c0;
		free(rsm_frozen_encode(f, &len));
		t0 = now();
		rsm_thaw(m, f);
		tt = now() - t0;
		printf("rsm: next snapshot: loop paused %.2f ms to freeze (%.2f "
		    "ms of CPU) and %.2f ms to thaw\n", tf * 1e3, c0 * 1e3,
		    tt * 1e3);
	}
	rsm_free(m);
	if ((m = rsm_new()) == NULL)
		fatalx("rsm_new");
	t0 = now();
	if (rsm_restore(m, snap, slen, err, sizeof err) == -1)
		fatalx("rsm_restore: %s", err);
	tr = now() - t0;
	printf("rsm: restoring that snapshot (a node installing it): %.0f ms\n",
	    tr * 1e3);
	rsm_free(m);
	free(snap);
}

int
main(int argc, char **argv)
{
	const char	*parent = "/var/tmp";
	struct statfs	 sf;
	uint64_t	 nkeys = 1000000;
	double		 secs = 2;
	int		 ch;

	log_init("store-bench", LOG_LVL_WARN);
	while ((ch = getopt(argc, argv, "d:n:t:")) != -1) {
		switch (ch) {
		case 'd':
			parent = optarg;
			break;
		case 'n':
			nkeys = strtoull(optarg, NULL, 10);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr, "usage: %s [-d dir] [-n keys] "
			    "[-t seconds]\n", argv[0]);
			return 1;
		}
	}
	if (statfs(parent, &sf) == 0 && sf.f_type == 0x01021994)
		printf("warning: %s is tmpfs: fsync figures mean nothing\n",
		    parent);
	setvbuf(stdout, NULL, _IOLBF, 0);

	bench_store(parent, nkeys);
	bench_rsm(nkeys);
	bench_raw_fsync(parent, secs);
	bench_durable(parent, 0, 1, secs);
	bench_durable(parent, 1, 1, secs);
	bench_durable(parent, 0, 100, secs);
	bench_durable(parent, 1, 100, secs);
	bench_fleet(parent, 0, 100, 5, secs);
	bench_fleet(parent, 1, 100, 5, secs);
	bench_fleet(parent, 0, 1000, 5, secs);
	bench_fleet(parent, 1, 1000, 5, secs);
	return 0;
}
