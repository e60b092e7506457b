/*
 * kvdb: a durable, versioned key-value database served over gRPC
 * (src/kv/kvdb.proto, service dsd.kvdb.v1.KV).
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
 * If the log fails (a write or fsync error), nobody knows what is on disk:
 * pending writes are answered UNKNOWN, every later request UNAVAILABLE,
 * and the server stops with status 1 for its supervisor to restart it,
 * which recovers from the files.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "net/grpc.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"
#include "core/xmalloc.h"
#include "kv/kvdb.pb-c.h"

#define KV_DEFAULT_PORT	"7379"

/* A reply waiting for the log to reach seq. */
struct kv_pending {
	uint64_t		 seq;
	struct grpc_call	*call;
	uint8_t			*reply;
	size_t			 len;
	struct kv_pending	*next;
};

struct kvdb {
	struct dsd		*d;
	const char		*dir;
	int			 lockfd;
	int			 max_key;
	int			 grace_ms;

	struct store		*store;
	struct wal		*wal;
	struct snap		*snap;
	struct grpc_server	*srv;

	struct kv_pending	*head, *tail;	/* in seq order */
	int			 failed;	/* the log failed */
};

static const struct flag kv_flags[] = {
	{ "listen", FLAG_STRING, "ADDR:PORT", "127.0.0.1:" KV_DEFAULT_PORT,
	  0, 0, "address to serve gRPC on ([ADDR6]:PORT for IPv6)" },
	{ "data-dir", FLAG_STRING, "DIR", "/var/lib/dsd", 0, 0,
	  "directory of the log and snapshots (created if missing)" },
	{ "fsync", FLAG_STRING, "POLICY", "always", 0, 0,
	  "always (group commit), everysec or no" },
	{ "snapshot-interval", FLAG_INT, "S", "300", 0, 86400,
	  "seconds between snapshots when something changed; 0: never" },
	{ "max-key-bytes", FLAG_INT, "BYTES", "4096", 1, 1 << 20,
	  "longest key, counted without redundant sign bytes" },
	{ "max-message", FLAG_INT, "BYTES", "4194304", 1024, 1 << 30,
	  "largest request or reply message" },
	{ "max-streams", FLAG_INT, "N", "256", 1, 65536,
	  "concurrent calls per connection" },
	{ "max-connections", FLAG_INT, "N", "1024", 1, 1000000,
	  "connections served at once" },
	{ "max-request-memory", FLAG_INT, "BYTES", "536870912", 1 << 20,
	  1LL << 40, "request bytes being received, all connections" },
	{ "max-reply-memory", FLAG_INT, "BYTES", "536870912", 1 << 20,
	  1LL << 40, "reply bytes clients have not read, all connections" },
	{ "shutdown-grace", FLAG_INT, "MS", "5000", 0, 600000,
	  "how long calls in flight may finish after SIGTERM" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

/* Replies. */

/* Encode (status, value) as a Reply; NULL if memory ran out. */
static uint8_t *
kv_encode_reply(const struct store_result *res, size_t *len)
{
	Dsd__Kvdb__V1__Reply	 r = DSD__KVDB__V1__REPLY__INIT;
	Dsd__Kvdb__V1__Value	 v = DSD__KVDB__V1__VALUE__INIT;
	uint8_t			*buf;
	size_t			 dlen;

	r.status = (Dsd__Kvdb__V1__Status)res->status;
	if (res->value != NULL) {
		v.version = store_entry_version(res->value);
		v.timestamp = store_entry_timestamp(res->value);
		v.data.data = (uint8_t *)store_entry_data(res->value, &dlen);
		v.data.len = dlen;
		r.value = &v;
	}
	*len = dsd__kvdb__v1__reply__get_packed_size(&r);
	if ((buf = malloc(*len + 1)) == NULL)
		return NULL;
	dsd__kvdb__v1__reply__pack(&r, buf);
	return buf;
}

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
		grpc_call_reply(p->call, p->reply, p->len); /* dropped if dead */
		free(p->reply);
		free(p);
	}
	if (kv->head == NULL)
		kv->tail = NULL;
}

/* Requests. */

/* The fields of any request, decoded; unpacked must be freed. */
struct kv_req {
	ProtobufCMessage	*unpacked;
	struct store_op		 op;
	const char		*what;
};

static int
kv_decode(struct kv_req *r, enum store_op_type type, const uint8_t *buf,
    size_t len)
{
	memset(r, 0, sizeof *r);
	r->op.type = type;
	switch (type) {
	case STORE_OP_SET: {
		Dsd__Kvdb__V1__SetRequest *m;

		r->what = "SetRequest";
		m = dsd__kvdb__v1__set_request__unpack(NULL, len, buf);
		if (m == NULL)
			return -1;
		r->unpacked = &m->base;
		r->op.key = m->key.data;
		r->op.keylen = m->key.len;
		r->op.timestamp = m->timestamp;
		r->op.data = m->data.data;
		r->op.datalen = m->data.len;
		break;
	}
	case STORE_OP_GET: {
		Dsd__Kvdb__V1__GetRequest *m;

		r->what = "GetRequest";
		m = dsd__kvdb__v1__get_request__unpack(NULL, len, buf);
		if (m == NULL)
			return -1;
		r->unpacked = &m->base;
		r->op.key = m->key.data;
		r->op.keylen = m->key.len;
		break;
	}
	case STORE_OP_DEL: {
		Dsd__Kvdb__V1__DelRequest *m;

		r->what = "DelRequest";
		m = dsd__kvdb__v1__del_request__unpack(NULL, len, buf);
		if (m == NULL)
			return -1;
		r->unpacked = &m->base;
		r->op.key = m->key.data;
		r->op.keylen = m->key.len;
		break;
	}
	case STORE_OP_DELVERSION: {
		Dsd__Kvdb__V1__DelVersionRequest *m;

		r->what = "DelVersionRequest";
		m = dsd__kvdb__v1__del_version_request__unpack(NULL, len, buf);
		if (m == NULL)
			return -1;
		r->unpacked = &m->base;
		r->op.key = m->key.data;
		r->op.keylen = m->key.len;
		r->op.version = m->version;
		break;
	}
	case STORE_OP_TESTANDSET: {
		Dsd__Kvdb__V1__TestAndSetRequest *m;

		r->what = "TestAndSetRequest";
		m = dsd__kvdb__v1__test_and_set_request__unpack(NULL, len, buf);
		if (m == NULL)
			return -1;
		r->unpacked = &m->base;
		r->op.key = m->key.data;
		r->op.keylen = m->key.len;
		r->op.timestamp = m->timestamp;
		r->op.data = m->data.data;
		r->op.datalen = m->data.len;
		r->op.version = m->version;
		break;
	}
	}
	return 0;
}

static void
kv_handle(struct kvdb *kv, struct grpc_call *call, enum store_op_type type,
    const uint8_t *buf, size_t len)
{
	struct kv_req		 r;
	struct store_result	 res = { 0 };
	struct kv_pending	*p;
	uint8_t			*wp = NULL, *reply;
	size_t			 off, klen, enclen = 0, rlen;
	uint64_t		 seq;
	char			 msg[128];

	if (kv->failed) {
		grpc_call_error(call, GRPC_UNAVAILABLE,
		    "the server is stopping after a log failure");
		return;
	}
	if (kv_decode(&r, type, buf, len) == -1) {
		snprintf(msg, sizeof msg, "malformed %s", r.what);
		grpc_call_error(call, GRPC_INVALID_ARGUMENT, msg);
		return;
	}
	klen = store_key_canon(r.op.key, r.op.keylen, &off);
	if (klen > (size_t)kv->max_key) {
		snprintf(msg, sizeof msg, "key of %zu bytes is over the limit "
		    "of %d", klen, kv->max_key);
		grpc_call_error(call, GRPC_INVALID_ARGUMENT, msg);
		goto out;
	}

	if (store_op_mutates(type)) {
		/* Reserve log space first, so that memory never holds a
		 * change the log could not take. */
		if ((enclen = store_op_encode(&r.op, NULL, 0)) == 0) {
			grpc_call_error(call, GRPC_INVALID_ARGUMENT,
			    "key or data over the store's limits");
			goto out;
		}
		if ((wp = wal_reserve(kv->wal, enclen)) == NULL) {
			grpc_call_error(call, GRPC_UNAVAILABLE,
			    "cannot append to the log");
			goto out;
		}
	}
	if (store_apply(kv->store, &r.op, &res) == -1) {
		if (wp != NULL)
			wal_cancel(kv->wal);
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (wp != NULL && res.status == STORE_SUCCESS) {
		store_op_encode(&r.op, wp, enclen);
		seq = wal_commit(kv->wal);
	} else {
		if (wp != NULL)
			wal_cancel(kv->wal);
		seq = wal_last_seq(kv->wal);
	}

	reply = kv_encode_reply(&res, &rlen);
	store_result_release(&res);
	if (reply == NULL) {
		/* The change, if any, is applied and logged: the outcome is
		 * not a definite failure. */
		grpc_call_error(call, GRPC_UNKNOWN, "out of memory encoding "
		    "the reply");
		goto out;
	}
	if (seq <= wal_durable_seq(kv->wal)) {
		grpc_call_reply(call, reply, rlen);
		free(reply);
		goto out;
	}
	if ((p = calloc(1, sizeof *p)) == NULL) {
		free(reply);
		grpc_call_error(call, GRPC_UNKNOWN, "out of memory");
		goto out;
	}
	p->seq = seq;
	p->call = call;
	p->reply = reply;
	p->len = rlen;
	if (kv->tail != NULL)
		kv->tail->next = p;
	else
		kv->head = p;
	kv->tail = p;
out:
	protobuf_c_message_free_unpacked(r.unpacked, NULL);
}

#define KV_METHOD(name, type)						\
static void								\
kv_##name(struct grpc_call *call, const uint8_t *req, size_t len,	\
    void *arg)								\
{									\
	kv_handle(arg, call, type, req, len);				\
}
KV_METHOD(set, STORE_OP_SET)
KV_METHOD(get, STORE_OP_GET)
KV_METHOD(del, STORE_OP_DEL)
KV_METHOD(delversion, STORE_OP_DELVERSION)
KV_METHOD(testandset, STORE_OP_TESTANDSET)
#undef KV_METHOD

/* Start-up. */

/* mkdir -p, owner only. */
static int
kv_mkdirs(const char *dir)
{
	char	*p, *s = xstrdup(dir);

	for (p = s + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(s, 0700) == -1 && errno != EEXIST) {
			free(s);
			return -1;
		}
		*p = '/';
	}
	free(s);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* A server-wide budget must hold one message and its prefix, or calls
 * that large could never be served. */
static void
kv_check_memory_flag(struct dsd *d, const char *name)
{
	if (flags_int(d, name) < flags_int(d, "max-message") + 5)
		fatalx("--%s (%lld) must hold one message of --max-message "
		    "(%lld) and its 5-byte prefix", name, flags_int(d, name),
		    flags_int(d, "max-message"));
}

static int
kv_init(struct dsd *d, void **statep)
{
	static struct grpc_method	 methods[6];
	struct kvdb			*kv;
	struct wal_config		 wc;
	struct snap_config		 sc;
	struct snap_info		 info;
	struct grpc_config		 gc;
	const char			*fs;
	char				 err[512], *lock;
	size_t				 held;

	kv = xcalloc(1, sizeof *kv);
	kv->d = d;
	kv->dir = flags_str(d, "data-dir");
	kv->max_key = (int)flags_int(d, "max-key-bytes");
	kv->grace_ms = (int)flags_int(d, "shutdown-grace");

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
	kv_check_memory_flag(d, "max-request-memory");
	kv_check_memory_flag(d, "max-reply-memory");

	if (kv_mkdirs(kv->dir) == -1)
		fatal("cannot create data directory %s", kv->dir);
	/* Two servers on one directory would interleave their logs. */
	xasprintf(&lock, "%s/LOCK", kv->dir);
	if ((kv->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("%s", lock);
	if (flock(kv->lockfd, LOCK_EX | LOCK_NB) == -1)
		fatal("%s is in use by another dsd", kv->dir);
	free(lock);

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
	if ((kv->snap = snap_new(&sc, &info)) == NULL)
		fatalx("cannot set up snapshots");

	grpc_config_defaults(&gc);
	gc.h2.listen = flags_str(d, "listen");
	gc.h2.max_streams = (uint32_t)flags_int(d, "max-streams");
	gc.h2.max_conns = (int)flags_int(d, "max-connections");
	gc.max_recv_message = (size_t)flags_int(d, "max-message");
	gc.max_send_message = (size_t)flags_int(d, "max-message");
	if (gc.h2.max_body < gc.max_recv_message + 5)
		gc.h2.max_body = gc.max_recv_message + 5;
	/* Replies a peer's flow control holds back, per connection: room for
	 * four of the largest (64 MiB unless --max-message is 16 MiB or
	 * more), where without a budget --max-streams of them could pile up,
	 * 1 GiB with the defaults. */
	held = gc.max_send_message > SIZE_MAX / 4 - 5 ? SIZE_MAX :
	    4 * (gc.max_send_message + 5);
	if (gc.h2.max_held < held)
		gc.h2.max_held = held;
	gc.h2.max_held_total = (size_t)flags_int(d, "max-reply-memory");
	if (gc.h2.max_held > gc.h2.max_held_total)
		gc.h2.max_held = gc.h2.max_held_total;
	/* Request messages still arriving: the same per connection (h2's
	 * default is 64 MiB too), so that one client cannot take all of
	 * --max-request-memory from the rest, but never more than that. */
	if (gc.h2.max_pending < held)
		gc.h2.max_pending = held;
	gc.h2.max_pending_total = (size_t)flags_int(d, "max-request-memory");
	if (gc.h2.max_pending > gc.h2.max_pending_total)
		gc.h2.max_pending = gc.h2.max_pending_total;
	if ((kv->srv = grpc_server_new(d->base, &gc)) == NULL)
		fatalx("cannot serve on %s", gc.h2.listen);
	methods[0] = (struct grpc_method){ "/dsd.kvdb.v1.KV/Set", kv_set, kv };
	methods[1] = (struct grpc_method){ "/dsd.kvdb.v1.KV/Get", kv_get, kv };
	methods[2] = (struct grpc_method){ "/dsd.kvdb.v1.KV/Del", kv_del, kv };
	methods[3] = (struct grpc_method){ "/dsd.kvdb.v1.KV/DelVersion",
	    kv_delversion, kv };
	methods[4] = (struct grpc_method){ "/dsd.kvdb.v1.KV/TestAndSet",
	    kv_testandset, kv };
	methods[5] = (struct grpc_method){ NULL, NULL, NULL };
	if (grpc_server_register(kv->srv, methods) == -1)
		fatalx("cannot register the KV methods");

	log_notice("kvdb: serving on %s, data in %s, fsync %s",
	    gc.h2.listen, kv->dir, fs);
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
	grpc_server_shutdown(kv->srv, kv->grace_ms, kv_drained, kv);
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

	grpc_server_free(kv->srv);
	snap_free(kv->snap);
	wal_close(kv->wal);
	while ((p = kv->head) != NULL) {
		kv->head = p->next;
		grpc_call_error(p->call, GRPC_UNAVAILABLE, "server stopped");
		free(p->reply);
		free(p);
	}
	store_free(kv->store);
	close(kv->lockfd);
	free(kv);
}

const struct mode mode_kvdb = {
	.name = "kvdb",
	.summary = "durable versioned key-value database over gRPC",
	.flags = kv_flags,
	.init = kv_init,
	.stop = kv_stop,
	.free = kv_free,
};
