/* The front of the key-value modes; see kvfront.h. */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "kv/kvfront.h"
#include "kv/kvdb.pb-c.h"
#include "net/tls.h"

#define KVFRONT_DEFAULT_PORT	"7379"
#define KVFRONT_NOPS		(STORE_OP_TESTANDSET + 1)
#define KVFRONT_NSTATUS		(STORE_ERROR_WV + 1)

struct kvfront {
	struct dsd		*d;
	struct grpc_server	*srv;
	char			*dir;
	int			 lockfd;
	int			 max_key;
	int			 grace_ms;
	kvfront_request_fn	 fn;
	void			*arg;
	struct grpc_method	 methods[6];

	/* Metrics: the page, the mode's part of it, and what only the front
	 * counts (the transport counts the rest). */
	struct metrics_server	*metrics;
	metrics_collect_fn	 mode_metrics;
	void			*mode_metrics_arg;
	char			*op_names[KVFRONT_NOPS];	/* labels */
	uint64_t		 answered[KVFRONT_NOPS][KVFRONT_NSTATUS];
	uint64_t		 refused_key;

	/* TLS: the files, read again on SIGHUP. */
	const char		*tls_cert, *tls_key, *tls_client_ca;
	char			*tls_peer_ca;	/* the client context's CA */
	SSL_CTX			*tls_client;	/* to other members, or NULL */
	struct event		*sighup;
};

static const struct flag kvfront_flags[] = {
	{ "listen", FLAG_STRING, "ADDR:PORT", "127.0.0.1:" KVFRONT_DEFAULT_PORT,
	  0, 0, "address to serve gRPC on ([ADDR6]:PORT for IPv6; "
	  "kvdb-replicated: the client address of its own member entry "
	  "unless given)" },
	{ "data-dir", FLAG_STRING, "DIR", "/var/lib/dsd", 0, 0,
	  "directory of the data (created if missing)" },
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
	{ "handshake-timeout", FLAG_INT, "MS", "5000", 100, 600000,
	  "time a new connection has to finish its TLS handshake and send "
	  "the HTTP/2 preface, or it is closed" },
	{ "tls-cert", FLAG_STRING, "FILE", NULL, 0, 0,
	  "serve gRPC over TLS (1.2 and 1.3, ALPN h2) with this PEM "
	  "certificate chain; reread on SIGHUP" },
	{ "tls-key", FLAG_STRING, "FILE", NULL, 0, 0,
	  "the PEM private key of --tls-cert; reread on SIGHUP" },
	{ "tls-client-ca", FLAG_STRING, "FILE", NULL, 0, 0,
	  "require client certificates signed by a CA in this PEM file "
	  "(mutual TLS); reread on SIGHUP" },
	{ "metrics-listen", FLAG_STRING, "ADDR:PORT", NULL, 0, 0,
	  "serve Prometheus metrics at http://ADDR:PORT/metrics (plain "
	  "HTTP; off unless given)" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static const struct flag_group kvfront_flag_group = { "key-value",
    kvfront_flags };
const struct flag_group *const kvfront_flag_groups[] = {
	&kvfront_flag_group, NULL
};

/* The metadata the server keeps, in grpc_call_metadata() order. */
static const char *const kvfront_metadata[] = {
	KVFRONT_MD_CLIENT, KVFRONT_MD_SEQ, KVFRONT_MD_FORWARDED, NULL
};

/* The five methods, by operation type. */
static const struct {
	const char				*path;
	const char				*what;
	const ProtobufCMessageDescriptor	*desc;
} kvfront_ops[] = {
	[STORE_OP_SET] = { "/dsd.kvdb.v1.KV/Set", "SetRequest",
	    &dsd__kvdb__v1__set_request__descriptor },
	[STORE_OP_GET] = { "/dsd.kvdb.v1.KV/Get", "GetRequest",
	    &dsd__kvdb__v1__get_request__descriptor },
	[STORE_OP_DEL] = { "/dsd.kvdb.v1.KV/Del", "DelRequest",
	    &dsd__kvdb__v1__del_request__descriptor },
	[STORE_OP_DELVERSION] = { "/dsd.kvdb.v1.KV/DelVersion",
	    "DelVersionRequest",
	    &dsd__kvdb__v1__del_version_request__descriptor },
	[STORE_OP_TESTANDSET] = { "/dsd.kvdb.v1.KV/TestAndSet",
	    "TestAndSetRequest",
	    &dsd__kvdb__v1__test_and_set_request__descriptor },
};

/* Replies. */

uint8_t *
kvfront_encode(const struct store_result *res, size_t *len)
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

void
kvfront_req_done(struct kvfront_req *req)
{
	protobuf_c_message_free_unpacked(req->msg, NULL);
	free(req);
}

int
kvfront_call_reply(struct kvfront *f, struct grpc_call *call,
    enum store_op_type type, int status, const uint8_t *reply, size_t len)
{
	if (grpc_call_reply(call, reply, len) == -1)
		return -1;	/* dropped: the client never saw it */
	if (status >= 0 && status < KVFRONT_NSTATUS &&
	    type < KVFRONT_NOPS)
		f->answered[type][status]++;
	return 0;
}

/* The status of a Reply message, or -1 if it does not decode. */
static int
kvfront_reply_status(const uint8_t *reply, size_t len)
{
	Dsd__Kvdb__V1__Reply	*r;
	int			 status;

	if ((r = dsd__kvdb__v1__reply__unpack(NULL, len, reply)) == NULL)
		return -1;
	status = (int)r->status;
	dsd__kvdb__v1__reply__free_unpacked(r, NULL);
	return status;
}

/* Answer with Reply bytes of a status (-1: unknown), and end. */
static void
kvfront_send(struct kvfront_req *req, int status, const uint8_t *reply,
    size_t len)
{
	if (req->call != NULL)	/* dropped if dead */
		(void)kvfront_call_reply(req->front, req->call,
		    req->op.type, status, reply, len);
	else
		req->done(req->done_arg, GRPC_OK, NULL, reply, len);
	kvfront_req_done(req);
}

void
kvfront_reply(struct kvfront_req *req, const struct store_result *res)
{
	uint8_t	*reply;
	size_t	 len;

	if ((reply = kvfront_encode(res, &len)) == NULL) {
		/* What the operation did is done: not a definite failure. */
		kvfront_fail(req, GRPC_UNKNOWN, "out of memory encoding the "
		    "reply");
		return;
	}
	kvfront_send(req, (int)res->status, reply, len);
	free(reply);
}

void
kvfront_fail(struct kvfront_req *req, enum grpc_status status,
    const char *msg)
{
	if (req->call != NULL)
		grpc_call_error(req->call, status, msg);
	else
		req->done(req->done_arg, status, msg, NULL, 0);
	kvfront_req_done(req);
}

void
kvfront_relay(struct kvfront_req *req, const uint8_t *reply, size_t len)
{
	int	status = -1;

	/* The leader's answer says its status only inside: decoding it
	 * costs a copy, paid only when someone counts. */
	if (req->call != NULL && req->front->metrics != NULL)
		status = kvfront_reply_status(reply, len);
	kvfront_send(req, status, reply, len);
}

const char *
kvfront_req_path(const struct kvfront_req *req)
{
	return kvfront_ops[req->op.type].path;
}

uint8_t *
kvfront_req_pack(const struct kvfront_req *req, size_t *len)
{
	uint8_t	*buf;

	*len = protobuf_c_message_get_packed_size(req->msg);
	if ((buf = malloc(*len + 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(req->msg, buf);
	return buf;
}

/* Requests. */

/* The field name of a message, or NULL if it has none such. */
static void *
kvfront_field(void *msg, const char *name)
{
	const ProtobufCMessageDescriptor	*d;
	const ProtobufCFieldDescriptor		*f;

	d = ((ProtobufCMessage *)msg)->descriptor;
	if ((f = protobuf_c_message_descriptor_get_field_by_name(d,
	    name)) == NULL)
		return NULL;
	return (char *)msg + f->offset;
}

/*
 * The five requests differ only in which of key, timestamp, data and
 * version they carry, under the same names: read them through the
 * descriptors.
 */
static int
kvfront_decode(struct kvfront_req *req, enum store_op_type type,
    const uint8_t *buf, size_t len)
{
	ProtobufCBinaryData	*b;
	int64_t			*i;

	req->op.type = type;
	req->msg = protobuf_c_message_unpack(kvfront_ops[type].desc, NULL,
	    len, buf);
	if (req->msg == NULL)
		return -1;
	if ((b = kvfront_field(req->msg, "key")) != NULL) {
		req->op.key = b->data;
		req->op.keylen = b->len;
	}
	if ((b = kvfront_field(req->msg, "data")) != NULL) {
		req->op.data = b->data;
		req->op.datalen = b->len;
	}
	if ((i = kvfront_field(req->msg, "timestamp")) != NULL)
		req->op.timestamp = *i;
	if ((i = kvfront_field(req->msg, "version")) != NULL)
		req->op.version = *i;
	return 0;
}

/* A decimal u64 of metadata; 0 (no session) if absent or malformed. */
static uint64_t
kvfront_md_u64(const char *s)
{
	uint64_t	v = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

/* Decode and check a request; NULL after failing it, as kvfront_fail(). */
static struct kvfront_req *
kvfront_decode_req(struct kvfront *f, struct grpc_call *call,
    kvfront_done_fn done, void *arg, enum store_op_type type,
    const uint8_t *buf, size_t len)
{
	struct kvfront_req	*req;
	size_t			 off, klen;
	char			 msg[128];

	if ((req = calloc(1, sizeof *req)) == NULL) {
		if (call != NULL)
			grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED,
			    "out of memory");
		else
			done(arg, GRPC_RESOURCE_EXHAUSTED, "out of memory",
			    NULL, 0);
		return NULL;
	}
	req->front = f;
	req->call = call;
	req->done = done;
	req->done_arg = arg;
	if (kvfront_decode(req, type, buf, len) == -1) {
		snprintf(msg, sizeof msg, "malformed %s",
		    kvfront_ops[type].what);
		kvfront_fail(req, GRPC_INVALID_ARGUMENT, msg);
		return NULL;
	}
	klen = store_key_canon(req->op.key, req->op.keylen, &off);
	if (klen > (size_t)f->max_key) {
		if (call != NULL)	/* a replica's was counted there */
			f->refused_key++;
		snprintf(msg, sizeof msg, "key of %zu bytes is over the limit "
		    "of %d", klen, f->max_key);
		kvfront_fail(req, GRPC_INVALID_ARGUMENT, msg);
		return NULL;
	}
	if (store_op_mutates(type) && store_op_encode(&req->op, NULL, 0) ==
	    0) {
		kvfront_fail(req, GRPC_INVALID_ARGUMENT,
		    "key or data over the store's limits");
		return NULL;
	}
	return req;
}

/* Check a session's numbers; -1 after failing the request. */
static int
kvfront_session(struct kvfront_req *req, uint64_t client, uint64_t seq)
{
	req->client_id = client;
	req->seq = seq;
	if (client != 0 && seq == 0) {
		kvfront_fail(req, GRPC_INVALID_ARGUMENT, KVFRONT_MD_CLIENT
		    " needs a " KVFRONT_MD_SEQ " from 1");
		return -1;
	}
	return 0;
}

struct kvfront_req *
kvfront_req_new(struct kvfront *f, unsigned type, const uint8_t *buf,
    size_t len, uint64_t client, uint64_t seq, kvfront_done_fn done,
    void *arg)
{
	struct kvfront_req	*req;

	if (type < STORE_OP_SET || type > STORE_OP_TESTANDSET) {
		done(arg, GRPC_INVALID_ARGUMENT, "unknown operation", NULL, 0);
		return NULL;
	}
	if ((req = kvfront_decode_req(f, NULL, done, arg, type, buf,
	    len)) == NULL || kvfront_session(req, client, seq) == -1)
		return NULL;
	req->forwarded = 1;
	return req;
}

static void
kvfront_handle(struct kvfront *f, struct grpc_call *call,
    enum store_op_type type, const uint8_t *buf, size_t len)
{
	struct kvfront_req	*req;

	if ((req = kvfront_decode_req(f, call, NULL, NULL, type, buf,
	    len)) == NULL)
		return;
	if (kvfront_session(req,
	    kvfront_md_u64(grpc_call_metadata(call, 0)),
	    kvfront_md_u64(grpc_call_metadata(call, 1))) == -1)
		return;
	req->forwarded = grpc_call_metadata(call, 2) != NULL;
	f->fn(f->arg, req);
}

#define KVFRONT_METHOD(name, type)					\
static void								\
kvfront_##name(struct grpc_call *call, const uint8_t *req, size_t len,	\
    void *arg)								\
{									\
	kvfront_handle(arg, call, type, req, len);			\
}
KVFRONT_METHOD(set, STORE_OP_SET)
KVFRONT_METHOD(get, STORE_OP_GET)
KVFRONT_METHOD(del, STORE_OP_DEL)
KVFRONT_METHOD(delversion, STORE_OP_DELVERSION)
KVFRONT_METHOD(testandset, STORE_OP_TESTANDSET)
#undef KVFRONT_METHOD

/* Metrics. */

static const char *const kvfront_status_names[KVFRONT_NSTATUS] = {
	[STORE_SUCCESS] = "SUCCESS",
	[STORE_ERROR] = "ERROR",
	[STORE_ERROR_NE] = "ERROR_NE",
	[STORE_ERROR_WV] = "ERROR_WV",
};

/* The refusals the transport counts, as the page names them: after the
 * flag that sets the limit where there is one. */
static const char *const kvfront_h2_refusals[H2_NREFUSED] = {
	[H2_REFUSED_CONN] = "max_connections",
	[H2_REFUSED_EVICTED] = "max_connections_evicted",
	[H2_REFUSED_HANDSHAKE] = "handshake_timeout",
	[H2_REFUSED_TLS] = "tls_handshake",
	[H2_REFUSED_STREAM] = "max_streams",
	[H2_REFUSED_HEADERS] = "max_header_list",
	[H2_REFUSED_BODY] = "max_body",
	[H2_REFUSED_BUDGET] = "budget",
};
static const char *const kvfront_grpc_refusals[GRPC_NREFUSED] = {
	[GRPC_REFUSED_DEADLINE] = "deadline",
	[GRPC_REFUSED_MESSAGE] = "max_message",
};

void
kvfront_metrics(struct kvfront *f, metrics_collect_fn fn, void *arg)
{
	f->mode_metrics = fn;
	f->mode_metrics_arg = arg;
}

void
kvfront_metrics_store(struct metrics_out *out, const struct store *st)
{
	metrics_one(out, "dsd_keys", "gauge", "Keys held.", store_count(st));
	metrics_one(out, "dsd_value_bytes", "gauge", "Bytes of value data "
	    "held (keys and overhead not counted).", store_data_bytes(st));
}

/* The calls: by outcome, by error, by duration. */
static void
kvfront_collect_calls(struct metrics_out *out, struct kvfront *f)
{
	const struct grpc_method_stats	*ms;
	size_t				 i, j;
	int				 t, st;

	metrics_family(out, "dsd_requests_total", "counter",
	    "Key-value calls answered, by method and the status in the "
	    "Reply; calls answered with a gRPC error are in "
	    "dsd_grpc_errors_total instead.");
	for (t = STORE_OP_SET; t < KVFRONT_NOPS; t++)
		for (st = 0; st < KVFRONT_NSTATUS; st++)
			metrics_int(out, "dsd_requests_total",
			    f->answered[t][st], "method", f->op_names[t],
			    "status", kvfront_status_names[st], NULL);

	metrics_family(out, "dsd_grpc_errors_total", "counter",
	    "Calls answered with a grpc-status other than OK, by method "
	    "(unknown: a path no method has) and code.");
	for (i = 0; (ms = grpc_server_method_stats(f->srv, i)) != NULL; i++)
		for (j = GRPC_OK + 1; j < GRPC_NSTATUS; j++)
			if (ms->answers[j] != 0)
				metrics_int(out, "dsd_grpc_errors_total",
				    ms->answers[j], "method", ms->name, "code",
				    grpc_status_name((int)j), NULL);

	metrics_family(out, "dsd_request_duration_seconds", "histogram",
	    "Time from a call's request being complete and handed to its "
	    "method until its answer was queued for HTTP/2: the wait for "
	    "the log or for Raft is in it, reading and writing the socket "
	    "are not.");
	/* The last stats are of calls to no method, which none timed. */
	for (i = 0; grpc_server_method_stats(f->srv, i + 1) != NULL; i++) {
		ms = grpc_server_method_stats(f->srv, i);
		metrics_hist(out, "dsd_request_duration_seconds",
		    &ms->duration, "method", ms->name, NULL);
	}
}

static void
kvfront_collect(struct metrics_out *out, void *arg)
{
	struct kvfront		*f = arg;
	struct grpc_stats	 gs;
	int			 i;

	kvfront_collect_calls(out, f);
	grpc_server_stats(f->srv, &gs);
	metrics_one(out, "dsd_connections", "gauge",
	    "Client connections open.", gs.h2.conns);
	metrics_one(out, "dsd_streams", "gauge",
	    "HTTP/2 streams (calls) open.", gs.h2.streams);
	metrics_one(out, "dsd_connections_accepted_total", "counter",
	    "Client connections accepted, those then refused included.",
	    gs.h2.accepted);
	metrics_family(out, "dsd_requests_refused_total", "counter",
	    "Connections, streams and calls refused or cut short, by the "
	    "limit or failure that refused them.");
	for (i = 0; i < H2_NREFUSED; i++)
		metrics_int(out, "dsd_requests_refused_total", gs.h2.refused[i],
		    "reason", kvfront_h2_refusals[i], NULL);
	for (i = 0; i < GRPC_NREFUSED; i++)
		metrics_int(out, "dsd_requests_refused_total", gs.refused[i],
		    "reason", kvfront_grpc_refusals[i], NULL);
	metrics_int(out, "dsd_requests_refused_total", f->refused_key,
	    "reason", "max_key_bytes", NULL);
	if (f->mode_metrics != NULL)
		f->mode_metrics(out, f->mode_metrics_arg);
}

/* Start-up. */

/* mkdir -p, owner only. */
static int
kvfront_mkdirs(const char *dir)
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
kvfront_check_memory_flag(struct dsd *d, const char *name)
{
	if (flags_int(d, name) < flags_int(d, "max-message") + 5)
		fatalx("--%s (%lld) must hold one message of --max-message "
		    "(%lld) and its 5-byte prefix", name, flags_int(d, name),
		    flags_int(d, "max-message"));
}

/* The TLS flags, checked together: a key without a certificate, or a
 * client CA without either, is a mistake to stop at. */
static void
kvfront_tls_flags(struct kvfront *f, struct dsd *d)
{
	f->tls_cert = flags_str(d, "tls-cert");
	f->tls_key = flags_str(d, "tls-key");
	f->tls_client_ca = flags_str(d, "tls-client-ca");
	if ((f->tls_cert == NULL) != (f->tls_key == NULL))
		fatalx("--tls-cert and --tls-key go together");
	if (f->tls_client_ca != NULL && f->tls_cert == NULL)
		fatalx("--tls-client-ca needs --tls-cert and --tls-key");
}

/* "subject ..., serial ..." of a context's certificate, for the log;
 * malloc'd, NULL if memory ran out. */
static char *
kvfront_cert_name(SSL_CTX *ctx)
{
	X509		*x = SSL_CTX_get0_certificate(ctx);
	BIGNUM		*bn = NULL;
	char		*subj = NULL, *serial = NULL, *s = NULL;

	if (x == NULL)
		return NULL;
	if ((subj = X509_NAME_oneline(X509_get_subject_name(x), NULL,
	    0)) == NULL ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x),
	    NULL)) == NULL || (serial = BN_bn2hex(bn)) == NULL)
		goto out;
	if (asprintf(&s, "subject %s, serial %s", subj, serial) == -1)
		s = NULL;
out:
	OPENSSL_free(subj);
	OPENSSL_free(serial);
	BN_free(bn);
	return s;
}

/* Build a server context from the files; NULL after logging why. */
static SSL_CTX *
kvfront_tls_load(struct kvfront *f)
{
	SSL_CTX	*ctx;
	char	*err, *name;

	if ((ctx = tls_server_ctx(f->tls_cert, f->tls_key, f->tls_client_ca,
	    &err)) == NULL) {
		log_warnx("%s: tls: %s", f->d->mode->name,
		    err != NULL ? err : "out of memory");
		free(err);
		return NULL;
	}
	name = kvfront_cert_name(ctx);
	log_notice("%s: tls: certificate %s (%s)%s%s", f->d->mode->name,
	    f->tls_cert, name != NULL ? name : "?",
	    f->tls_client_ca != NULL ? ", client certificates required, "
	    "CA " : "", f->tls_client_ca != NULL ? f->tls_client_ca : "");
	free(name);
	return ctx;
}

/*
 * SIGHUP: read the certificate, key and CA files again.  New connections
 * get the new context, those open keep theirs; if the files are bad the
 * old context stays and the error is logged.  The context to other
 * members, if one was made, is rebuilt the same way.
 */
static void
kvfront_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct kvfront	*f = arg;
	SSL_CTX		*ctx;
	char		*err;

	if (f->tls_cert == NULL) {
		log_notice("%s: SIGHUP: nothing to reload (no --tls-cert)",
		    f->d->mode->name);
		return;
	}
	log_notice("%s: SIGHUP: reloading TLS certificates",
	    f->d->mode->name);
	if ((ctx = kvfront_tls_load(f)) == NULL) {
		log_warnx("%s: tls: reload failed; still serving with the "
		    "certificate loaded before", f->d->mode->name);
		return;
	}
	grpc_server_set_tls(f->srv, ctx);
	SSL_CTX_free(ctx);	/* the server holds its own reference */
	if (f->tls_client == NULL)
		return;
	if ((ctx = tls_client_ctx(f->tls_peer_ca, f->tls_cert, f->tls_key,
	    &err)) == NULL) {
		log_warnx("%s: tls: reload of the client side failed, keeping "
		    "the old: %s", f->d->mode->name,
		    err != NULL ? err : "out of memory");
		free(err);
		return;
	}
	SSL_CTX_free(f->tls_client);
	f->tls_client = ctx;
}

struct ssl_ctx_st *
kvfront_client_tls(struct kvfront *f, const char *ca)
{
	char	*err;

	if (f->tls_cert == NULL)
		return NULL;
	if (f->tls_client != NULL)
		return f->tls_client;
	if (ca == NULL)
		ca = f->tls_client_ca;
	f->tls_peer_ca = ca != NULL ? xstrdup(ca) : NULL;
	if ((f->tls_client = tls_client_ctx(ca, f->tls_cert, f->tls_key,
	    &err)) == NULL)
		fatalx("%s: tls: %s", f->d->mode->name,
		    err != NULL ? err : "out of memory");
	return f->tls_client;
}

int
kvfront_tls(const struct kvfront *f)
{
	return f->tls_cert != NULL;
}

struct kvfront *
kvfront_new(struct dsd *d, kvfront_request_fn fn, void *arg)
{
	struct kvfront		*f;
	char			*lock;

	kvfront_check_memory_flag(d, "max-request-memory");
	kvfront_check_memory_flag(d, "max-reply-memory");

	f = xcalloc(1, sizeof *f);
	f->d = d;
	f->fn = fn;
	f->arg = arg;
	f->dir = xstrdup(flags_str(d, "data-dir"));
	f->max_key = (int)flags_int(d, "max-key-bytes");
	f->grace_ms = (int)flags_int(d, "shutdown-grace");
	kvfront_tls_flags(f, d);

	if (kvfront_mkdirs(f->dir) == -1)
		fatal("cannot create data directory %s", f->dir);
	/* Two servers on one directory would interleave their logs. */
	xasprintf(&lock, "%s/LOCK", f->dir);
	if ((f->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("%s", lock);
	if (flock(f->lockfd, LOCK_EX | LOCK_NB) == -1)
		fatal("%s is in use by another dsd", f->dir);
	free(lock);
	return f;
}

void
kvfront_listen(struct kvfront *f, const char *listen)
{
	struct dsd		*d = f->d;
	struct grpc_config	 gc;
	const char		*maddr = flags_str(d, "metrics-listen");
	size_t			 held;
	int			 t;

	grpc_config_defaults(&gc);
	gc.time_calls = maddr != NULL;
	gc.h2.listen = listen;
	gc.h2.max_streams = (uint32_t)flags_int(d, "max-streams");
	gc.h2.max_conns = (int)flags_int(d, "max-connections");
	gc.h2.handshake_timeout_ms = (int)flags_int(d, "handshake-timeout");
	if (f->tls_cert != NULL &&
	    (gc.h2.tls = kvfront_tls_load(f)) == NULL)
		fatalx("cannot serve TLS on %s", listen);
	gc.max_recv_message = (size_t)flags_int(d, "max-message");
	gc.max_send_message = (size_t)flags_int(d, "max-message");
	gc.metadata = kvfront_metadata;
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
	if ((f->srv = grpc_server_new(d->base, &gc)) == NULL)
		fatalx("cannot serve on %s", listen);
	SSL_CTX_free(gc.h2.tls);	/* the server holds its own reference */
	/* Always caught: a hangup must not end a database. */
	if ((f->sighup = evsignal_new(d->base, SIGHUP, kvfront_on_sighup,
	    f)) == NULL || evsignal_add(f->sighup, NULL) == -1)
		fatalx("cannot catch SIGHUP");

	f->methods[0] = (struct grpc_method){ kvfront_ops[STORE_OP_SET].path,
	    kvfront_set, f };
	f->methods[1] = (struct grpc_method){ kvfront_ops[STORE_OP_GET].path,
	    kvfront_get, f };
	f->methods[2] = (struct grpc_method){ kvfront_ops[STORE_OP_DEL].path,
	    kvfront_del, f };
	f->methods[3] = (struct grpc_method){
	    kvfront_ops[STORE_OP_DELVERSION].path, kvfront_delversion, f };
	f->methods[4] = (struct grpc_method){
	    kvfront_ops[STORE_OP_TESTANDSET].path, kvfront_testandset, f };
	f->methods[5] = (struct grpc_method){ NULL, NULL, NULL };
	if (grpc_server_register(f->srv, f->methods) == -1)
		fatalx("cannot register the KV methods");

	if (maddr == NULL)
		return;
	for (t = STORE_OP_SET; t < KVFRONT_NOPS; t++)
		if ((f->op_names[t] =
		    grpc_method_name(kvfront_ops[t].path)) == NULL)
			fatalx("out of memory");
	if ((f->metrics = metrics_server_new(d->base, maddr, kvfront_collect,
	    f)) == NULL)
		fatalx("cannot serve metrics on %s", maddr);
	log_notice("%s: metrics on http://%s/metrics", d->mode->name, maddr);
}

int
kvfront_register(struct kvfront *f, const struct grpc_method *table)
{
	return grpc_server_register(f->srv, table);
}

struct grpc_server *
kvfront_server(struct kvfront *f)
{
	return f->srv;
}

const char *
kvfront_datadir(const struct kvfront *f)
{
	return f->dir;
}

int
kvfront_max_key(const struct kvfront *f)
{
	return f->max_key;
}

int
kvfront_grace_ms(const struct kvfront *f)
{
	return f->grace_ms;
}

void
kvfront_shutdown(struct kvfront *f, int grace_ms, void (*done)(void *),
    void *arg)
{
	if (f->srv == NULL) {
		done(arg);
		return;
	}
	grpc_server_shutdown(f->srv, grace_ms, done, arg);
}

void
kvfront_free(struct kvfront *f)
{
	int	t;

	if (f == NULL)
		return;
	metrics_server_free(f->metrics);
	for (t = 0; t < KVFRONT_NOPS; t++)
		free(f->op_names[t]);
	if (f->srv != NULL)
		grpc_server_free(f->srv);
	if (f->sighup != NULL)
		event_free(f->sighup);
	SSL_CTX_free(f->tls_client);
	free(f->tls_peer_ca);
	close(f->lockfd);
	free(f->dir);
	free(f);
}
