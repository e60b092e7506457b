/*
 * kvdb: a durable, versioned key-value database served over gRPC
 * (src/kv/kvdb.proto, service dsd.kvdb.v1.KV).  The service itself is the
 * front shared with kvdb-replicated (src/kv/kvfront.h); what is kvdb's
 * own is how an operation becomes durable: its write-ahead log.
 *
 * A request is decoded, applied to the store at once on the loop (so every
 * operation is atomic with respect to every other, whatever the number of
 * connections), and a change is appended to the write-ahead log in the
 * same callback.  The reply waits until the log reports the record durable
 * (group commit: one fdatasync covers every write of a loop pass, on the
 * log's flusher thread, while the loop goes on serving).  A read waits
 * for the last record that existed when it was served, so no reply ever
 * shows a write that a crash could take back.  Snapshots are forked
 * children writing the copy-on-write image (src/kv/snap.h); start-up loads
 * the snapshot and replays the log.
 *
 * Online backups (dsd.kvdb.v1.Maintenance/Snapshot) stream the store as
 * of the call from a forked child too (src/kv/backup.h).
 *
 * If the log fails (a write or fsync error), nobody knows what is on disk:
 * pending writes are answered UNKNOWN, every later request UNAVAILABLE,
 * and the server stops with status 1 for its supervisor to restart it,
 * which recovers from the files.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sdnotify.h"
#include "core/xmalloc.h"
#include "kv/backup.h"
#include "kv/kvfront.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

/* A reply waiting for the log to reach seq. */
struct kv_pending {
	uint64_t		 seq;
	struct grpc_call	*call;
	enum store_op_type	 type;		/* for the metrics */
	enum store_status	 status;
	uint8_t			*reply;
	size_t			 len;
	struct kv_pending	*next;
};

struct kvdb {
	struct dsd		*d;
	const char		*dir;

	struct store		*store;
	struct wal		*wal;
	struct snap		*snap;
	struct kvfront		*front;
	struct backup		*backup;

	struct kv_pending	*head, *tail;	/* in seq order */
	int			 failed;	/* the log failed */
};

static const struct flag kv_flags[] = {
	{ "fsync", FLAG_STRING, "POLICY", "always", 0, 0,
	  "always (group commit), everysec or no" },
	{ "snapshot-interval", FLAG_INT, "S", "300", 0, 86400,
	  "seconds between snapshots when something changed; 0: never" },
	{ "snapshot-log-size", FLAG_INT, "MIB", "64", 0, 1048576,
	  "also take a snapshot once the log since the last one holds this "
	  "many MiB, or as much as that snapshot, whichever is more; 0: "
	  "never" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

/* Replies. */

static void
kv_on_durable(void *arg, uint64_t seq, int error)
{
	struct kvdb		*kv = arg;
	struct kv_pending	*p;

	if (error != 0) {
		errno = error;
		log_warn("kvdb: the write-ahead log failed; stopping");
		kv->failed = 1;
		while ((p = kv->head) != NULL) {
			kv->head = p->next;
			grpc_call_error(p->call, GRPC_UNKNOWN, "the server's log "
			    "failed: the outcome of this call is unknown");
			free(p->reply);
			free(p);
		}
		kv->tail = NULL;
		kv->d->exit_status = 1;
		event_base_loopexit(kv->d->base, NULL);
		return;
	}
	while ((p = kv->head) != NULL && p->seq <= seq) {
		kv->head = p->next;
		/* Dropped if dead. */
		(void)kvfront_call_reply(kv->front, p->call, p->type, p->status,
		    p->reply, p->len);
		free(p->reply);
		free(p);
	}
	if (kv->head == NULL)
		kv->tail = NULL;
}

/* Requests: apply now, log the change, reply once it is durable. */

static void
kv_request(void *arg, struct kvfront_req *req)
{
	struct kvdb		*kv = arg;
	struct store_result	 res = { 0 };
	struct kv_pending	*p;
	enum store_status	 status;
	uint8_t			*wp = NULL, *reply;
	size_t			 enclen = 0, rlen;
	uint64_t		 seq;

	if (kv->failed) {
		kvfront_fail(req, GRPC_UNAVAILABLE,
		    "the server is stopping after a log failure");
		return;
	}
	if (store_op_mutates(req->op.type)) {
		/* Reserve log space first, so that memory never holds a
		 * change the log could not take. */
		enclen = store_op_encode(&req->op, NULL, 0);
		if ((wp = wal_reserve(kv->wal, enclen)) == NULL) {
			kvfront_fail(req, GRPC_UNAVAILABLE,
			    "cannot append to the log");
			return;
		}
	}
	if (store_apply(kv->store, &req->op, &res) == -1) {
		if (wp != NULL)
			wal_cancel(kv->wal);
		kvfront_fail(req, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (wp != NULL && res.status == STORE_SUCCESS) {
		store_op_encode(&req->op, wp, enclen);
		seq = wal_commit(kv->wal);
		snap_poke(kv->snap);
	} else {
		if (wp != NULL)
			wal_cancel(kv->wal);
		seq = wal_last_seq(kv->wal);
	}

	if (seq <= wal_durable_seq(kv->wal)) {
		kvfront_reply(req, &res);
		store_result_release(&res);
		return;
	}
	reply = kvfront_encode(&res, &rlen);
	store_result_release(&res);
	status = res.status;
	if (reply == NULL) {
		/* The change, if any, is applied and logged: the outcome is
		 * not a definite failure. */
		kvfront_fail(req, GRPC_UNKNOWN, "out of memory encoding "
		    "the reply");
		return;
	}
	if ((p = calloc(1, sizeof *p)) == NULL) {
		free(reply);
		kvfront_fail(req, GRPC_UNKNOWN, "out of memory");
		return;
	}
	p->seq = seq;
	p->call = req->call;
	p->type = req->op.type;
	p->status = status;
	p->reply = reply;
	p->len = rlen;
	if (kv->tail != NULL)
		kv->tail->next = p;
	else
		kv->head = p;
	kv->tail = p;
	kvfront_req_done(req);
}

/* Backups: the store as applied, whose last records may still be on their
 * way to the log. */

static const struct store *
kv_backup_state(void *arg, uint64_t *seq)
{
	struct kvdb	*kv = arg;

	*seq = wal_last_seq(kv->wal);
	return kv->store;
}

static int
kv_backup_durable(void *arg, uint64_t seq)
{
	struct kvdb	*kv = arg;

	return wal_durable_seq(kv->wal) >= seq;
}

/* Metrics: the store, the log and the snapshots. */

static void
kv_metrics(struct metrics_out *out, void *arg)
{
	struct kvdb		*kv = arg;
	struct wal_stats	 ws;
	struct snap_stats	 ss;

	kvfront_metrics_store(out, kv->store);
	wal_get_stats(kv->wal, &ws);
	metrics_one(out, "dsd_wal_bytes_written_total", "counter",
	    "Bytes written to the write-ahead log.", ws.bytes);
	metrics_one(out, "dsd_wal_fsyncs_total", "counter",
	    "fdatasync and fsync calls of the write-ahead log: of records, "
	    "and of new segments and the directory.", ws.fsyncs);
	metrics_family(out, "dsd_wal_fsync_duration_seconds", "histogram",
	    "Time each fdatasync of log records took (what an "
	    "acknowledged write waits for with --fsync=always).");
	metrics_hist(out, "dsd_wal_fsync_duration_seconds", &ws.sync, NULL);

	snap_get_stats(kv->snap, &ss);
	metrics_family(out, "dsd_snapshots_total", "counter",
	    "Snapshots ended, by result.");
	metrics_int(out, "dsd_snapshots_total", ss.ok, "result", "success",
	    NULL);
	metrics_int(out, "dsd_snapshots_total", ss.failed, "result",
	    "failure", NULL);
	metrics_family(out, "dsd_snapshot_duration_seconds", "histogram",
	    "Time a successful snapshot took, from just before fork() to "
	    "the child's exit seen (the final one at shutdown: its write).");
	metrics_hist(out, "dsd_snapshot_duration_seconds", &ss.duration,
	    NULL);
	metrics_one(out, "dsd_snapshot_size_bytes", "gauge",
	    "Size of the last snapshot file; 0 if there is none.", ss.size);
	metrics_family(out, "dsd_snapshot_last_success_timestamp_seconds",
	    "gauge", "When the last snapshot was written (its file's "
	    "mtime), in seconds since the epoch; 0 if there is none.");
	metrics_seconds(out, "dsd_snapshot_last_success_timestamp_seconds",
	    ss.written_ns, NULL);
}

/* Start-up. */

static int
kv_init(struct dsd *d, void **statep)
{
	struct kvdb			*kv;
	struct wal_config		 wc;
	struct snap_config		 sc;
	struct snap_info		 info;
	struct backup_source		 bs;
	const char			*fs;
	char				 err[512];

	kv = xcalloc(1, sizeof *kv);
	kv->d = d;

	memset(&wc, 0, sizeof wc);
	fs = flags_str(d, "fsync");
	if (strcmp(fs, "always") == 0)
		wc.fsync = WAL_FSYNC_ALWAYS;
	else if (strcmp(fs, "everysec") == 0)
		wc.fsync = WAL_FSYNC_EVERYSEC;
	else if (strcmp(fs, "no") == 0)
		wc.fsync = WAL_FSYNC_NO;
	else
		fatalx("--fsync must be always, everysec or no, not %s", fs);
	kv->front = kvfront_new(d, kv_request, kv);
	kv->dir = kvfront_datadir(kv->front);

	if ((kv->store = store_new()) == NULL)
		fatalx("out of memory");
	wc.dir = kv->dir;
	wc.base = d->base;
	wc.durable = kv_on_durable;
	wc.arg = kv;
	if ((kv->wal = snap_recover(kv->store, &wc, &info, err,
	    sizeof err)) == NULL)
		fatalx("recovering %s: %s", kv->dir, err);
	log_notice("kvdb: %zu keys recovered from %s (snapshot %s, log up to "
	    "record %llu)", store_count(kv->store), kv->dir,
	    info.present ? "loaded" : "absent",
	    (unsigned long long)wal_last_seq(kv->wal));

	memset(&sc, 0, sizeof sc);
	sc.dir = kv->dir;
	sc.base = d->base;
	sc.store = kv->store;
	sc.wal = kv->wal;
	sc.interval = (unsigned int)flags_int(d, "snapshot-interval");
	sc.log_limit = (uint64_t)flags_int(d, "snapshot-log-size") << 20;
	if ((kv->snap = snap_new(&sc, &info)) == NULL)
		fatalx("cannot set up snapshots");
	kvfront_metrics(kv->front, kv_metrics, kv);
	kvfront_listen(kv->front, flags_str(d, "listen"));
	bs.state = kv_backup_state;
	bs.durable = kv_backup_durable;
	bs.arg = kv;
	kv->backup = backup_new(d->base, kvfront_server(kv->front), &bs,
	    (size_t)flags_int(d, "max-message"));

	log_notice("kvdb: serving on %s, data in %s, fsync %s",
	    flags_str(d, "listen"), kv->dir, fs);
	sdnotify("READY=1");
	*statep = kv;
	return 0;
}

static void
kv_drained(void *arg)
{
	struct kvdb	*kv = arg;

	event_base_loopbreak(kv->d->base);
}

/* SIGTERM: stop taking calls, let those in flight finish, flush. */
static void
kv_stop(void *state)
{
	struct kvdb		*kv = state;
	struct wal_stats	 ws;

	sdnotify("STOPPING=1");
	log_notice("kvdb: stopping");
	/* The loop has stopped; run it again for the grace period so that
	 * calls in flight get their fsync and their reply. */
	kvfront_shutdown(kv->front, kvfront_grace_ms(kv->front), kv_drained,
	    kv);
	event_base_dispatch(kv->d->base);
	if (!kv->failed) {
		wal_sync(kv->wal);
		if (snap_shutdown(kv->snap, 1) == -1)
			log_warnx("kvdb: final snapshot failed; the log "
			    "still holds everything");
	}
	wal_get_stats(kv->wal, &ws);
	log_info("wal: %" PRIu64 " records, %" PRIu64 " writes, %" PRIu64
	    " fsyncs, %" PRIu64 " batches written by the loop itself",
	    ws.records, ws.writes, ws.fsyncs, ws.inline_batches);
}

static void
kv_free(void *state)
{
	struct kvdb		*kv = state;
	struct kv_pending	*p;

	kvfront_free(kv->front);
	backup_free(kv->backup);
	snap_free(kv->snap);
	wal_close(kv->wal);
	while ((p = kv->head) != NULL) {
		kv->head = p->next;
		grpc_call_error(p->call, GRPC_UNAVAILABLE, "server stopped");
		free(p->reply);
		free(p);
	}
	store_free(kv->store);
	free(kv);
}

const struct mode mode_kvdb = {
	.name = "kvdb",
	.summary = "durable versioned key-value database over gRPC",
	.flags = kv_flags,
	.groups = kvfront_flag_groups,
	.init = kv_init,
	.stop = kv_stop,
	.free = kv_free,
};
