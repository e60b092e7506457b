/*
 * gRPC over h2, unary and server streaming; the contract is in grpc.h,
 * the wire rules in gRPC's PROTOCOL-HTTP2 document and
 * ../shared/docs/grpc-notes.md.
 *
 * Compression is answered UNIMPLEMENTED (with grpc-accept-encoding:
 * identity, as the spec asks) rather than supported with zlib: clients
 * compress only when told to, the kvdb's messages are small keys and
 * values where gzip costs more CPU than it saves on a LAN, and inflating
 * attacker-chosen input is one more bomb to bound.  Adding gzip later is
 * local to grpc_call_data() and grpc_call_headers_done().
 *
 * A call is shared by two owners, each of which lets go independently:
 * the h2 stream (until stream_close) and the handler (from the handler's
 * start until its grpc_call_reply(), grpc_call_error() or
 * grpc_call_end()).  It is freed when both have let go, by whichever goes
 * second.
 */
#include "config.h"

#include <sys/time.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "net/grpc.h"
#include "net/h2.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define GRPC_PREFIX	5		/* compressed flag, 4-byte length */
/* Deadlines further out than this are not armed: libevent's timers are
 * not meant for centuries, and such a call has no deadline in effect. */
#define GRPC_MAX_TIMER_US	((int64_t)100 * 24 * 3600 * 1000000)

/* A registered method and what is counted of it. */
struct grpc_entry {
	const struct grpc_method	*method;	/* borrowed */
	struct grpc_method_stats	 stats;
	char				*name;
};

struct grpc_server {
	struct event_base	*base;
	struct h2_server	*h2;
	struct grpc_config	 cfg;
	struct grpc_entry	**methods;
	size_t			 nmethods;
	struct grpc_method_stats unknown;	/* calls to no method */
	uint64_t		 refused[GRPC_NREFUSED];
	struct evbuffer		*scratch;	/* reply body being built */
	int			 serving;
};

struct grpc_call {
	struct grpc_server	*srv;		/* NULL once the stream is gone */
	struct h2_stream	*stream;	/* NULL once the stream is gone */
	const struct grpc_method *method;
	/* The method's counters (unknown's until the path is known), while
	 * the server is there. */
	struct grpc_method_stats *stats;
	uint64_t		 start_ns;	/* handed to the handler */
	int			 flags;
#define GRPC_C_HANDLER		0x01	/* the handler holds the call */
#define GRPC_C_ANSWERED		0x02	/* a response was submitted */
#define GRPC_C_POST		0x04	/* :method POST */
#define GRPC_C_CTYPE		0x08	/* content-type application/grpc */
#define GRPC_C_ENCODING		0x10	/* an encoding we cannot read */
#define GRPC_C_BAD_TIMEOUT	0x20	/* grpc-timeout malformed */
#define GRPC_C_STREAMING	0x40	/* headers sent, messages follow */
	int64_t			 timeout_us;	/* -1: none */
	struct event		*deadline;
	struct timeval		 expires;	/* of the deadline, if any */
	char			*meta[GRPC_MAX_METADATA]; /* kept values */
	char			*bad_path;	/* for the UNIMPLEMENTED message */

	/* The one request message, as it arrives. */
	uint8_t			 prefix[GRPC_PREFIX];
	size_t			 nprefix;
	uint8_t			*msg;
	size_t			 msgcap;	/* allocated, grows to msglen */
	size_t			 msglen;
	size_t			 msggot;

	grpc_cancel_fn		 cancel;
	void			*cancel_arg;
	grpc_writable_fn	 writable;
	void			*writable_arg;
};

static void	grpc_health_check(struct grpc_call *, const uint8_t *, size_t,
		    void *);

static const struct grpc_method grpc_health_methods[] = {
	{ "/grpc.health.v1.Health/Check", grpc_health_check, NULL },
	{ NULL, NULL, NULL }
};

static const char *const grpc_status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
};

const char *
grpc_status_name(int status)
{
	if (status < 0 || (size_t)status >= sizeof grpc_status_names /
	    sizeof grpc_status_names[0])
		return "?";
	return grpc_status_names[status];
}

void
grpc_config_defaults(struct grpc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	h2_config_defaults(&cfg->h2);
	cfg->max_recv_message = 4 << 20;
	cfg->max_send_message = 4 << 20;
}

int64_t
grpc_timeout_parse(const char *s, size_t len)
{
	int64_t	v = 0;
	size_t	i;

	/* TimeoutValue is at most 8 digits, then one unit (PROTOCOL-HTTP2);
	 * 8 digits of hours is 3.6e17 us, so nothing below overflows. */
	if (len < 2 || len > 9)
		return -1;
	for (i = 0; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[len - 1]) {
	case 'H':
		return v * 3600 * 1000000;
	case 'M':
		return v * 60 * 1000000;
	case 'S':
		return v * 1000000;
	case 'm':
		return v * 1000;
	case 'u':
		return v;
	case 'n':
		return (v + 999) / 1000;	/* never round a deadline down */
	default:
		return -1;
	}
}

char *
grpc_message_encode(const char *msg)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p;
	char			*out, *q;
	size_t			 n = 0;

	for (p = (const unsigned char *)msg; *p != '\0'; p++)
		n += (*p < 0x20 || *p > 0x7e || *p == '%') ? 3 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)msg, q = out; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '%') {
			*q++ = '%';
			*q++ = hex[*p >> 4];
			*q++ = hex[*p & 0xf];
		} else
			*q++ = (char)*p;
	}
	*q = '\0';
	return out;
}

/* Answers. */

static void
grpc_call_free_meta(struct grpc_call *call)
{
	size_t	i;

	for (i = 0; i < GRPC_MAX_METADATA; i++) {
		free(call->meta[i]);
		call->meta[i] = NULL;
	}
}

static void
grpc_call_free(struct grpc_call *call)
{
	if (call->deadline != NULL)
		event_free(call->deadline);
	grpc_call_free_meta(call);
	free(call->bad_path);
	free(call->msg);
	free(call);
}

/* The handler lets go of the call. */
static void
grpc_call_release(struct grpc_call *call)
{
	call->flags &= ~GRPC_C_HANDLER;
	if (call->stream == NULL)
		grpc_call_free(call);
}

/* The call died before its handler answered: tell the handler, once.
 * The handler may release the call from fn, so call must not be used
 * after this. */
static void
grpc_call_cancelled(struct grpc_call *call)
{
	grpc_cancel_fn	fn = call->cancel;

	call->cancel = NULL;
	if (fn != NULL)
		fn(call, call->cancel_arg);
}

/* A response was submitted with this status: count it. */
static void
grpc_call_answered(struct grpc_call *call, enum grpc_status status)
{
	struct grpc_method_stats	*st = call->stats;

	call->flags |= GRPC_C_ANSWERED;
	if (call->deadline != NULL)
		evtimer_del(call->deadline);
	if ((unsigned)status < GRPC_NSTATUS)
		st->answers[status]++;
	if (call->start_ns != 0)
		metrics_observe(&st->duration,
		    metrics_now_ns() - call->start_ns);
}

/*
 * A trailers-only response: one HEADERS frame with the status.  http is
 * the :status ("200" unless the request was not gRPC at all).  Returns
 * 0, or -1 if it could not be submitted (the stream is then reset, so
 * the client sees the call fail all the same).
 */
static int
grpc_send_status(struct grpc_call *call, const char *http,
    enum grpc_status status, const char *msg, int accept_encoding)
{
	struct h2_header	 h[5];
	char			 code[16], *enc = NULL;
	size_t			 n = 0;
	int			 rv;

	snprintf(code, sizeof code, "%d", (int)status);
	h[n].name = ":status";
	h[n].value = http;
	h[n++].valuelen = 0;
	h[n].name = "content-type";
	h[n].value = "application/grpc";
	h[n++].valuelen = 0;
	h[n].name = "grpc-status";
	h[n].value = code;
	h[n++].valuelen = 0;
	if (msg != NULL && *msg != '\0' &&
	    (enc = grpc_message_encode(msg)) != NULL) {
		h[n].name = "grpc-message";
		h[n].value = enc;
		h[n++].valuelen = 0;
	}
	if (accept_encoding) {
		h[n].name = "grpc-accept-encoding";
		h[n].value = "identity";
		h[n++].valuelen = 0;
	}
	log_debug("grpc: stream %d: %s%s%s", h2_stream_id(call->stream),
	    grpc_status_name(status), msg != NULL ? ": " : "",
	    msg != NULL ? msg : "");
	/* After streamed messages the status goes in trailers; :status and
	 * content-type went with the headers. */
	if (call->flags & GRPC_C_STREAMING)
		rv = h2_stream_end(call->stream, h + 2, n - 2);
	else
		rv = h2_stream_respond(call->stream, h, n, NULL, NULL, 0);
	free(enc);
	grpc_call_answered(call, status);
	if (rv == -1)
		h2_stream_reset(call->stream, 2 /* INTERNAL_ERROR */);
	return rv;
}

static const struct h2_header grpc_reply_headers[] = {
	{ ":status", "200", 0 },
	{ "content-type", "application/grpc", 0 },
};

/*
 * A message with its prefix into the server's scratch buffer.  Returns 0,
 * or -1 after answering RESOURCE_EXHAUSTED if memory ran out.
 */
static int
grpc_frame_message(struct grpc_call *call, const void *data, size_t len)
{
	struct evbuffer		*b = call->srv->scratch;
	uint8_t			 prefix[GRPC_PREFIX];

	prefix[0] = 0;
	prefix[1] = (uint8_t)(len >> 24);
	prefix[2] = (uint8_t)(len >> 16);
	prefix[3] = (uint8_t)(len >> 8);
	prefix[4] = (uint8_t)len;
	evbuffer_drain(b, evbuffer_get_length(b));
	if (evbuffer_add(b, prefix, sizeof prefix) == -1 ||
	    (len > 0 && evbuffer_add(b, data, len) == -1)) {
		evbuffer_drain(b, evbuffer_get_length(b));
		(void)grpc_send_status(call, "200", GRPC_RESOURCE_EXHAUSTED,
		    "out of memory for the reply", 0);
		return -1;
	}
	return 0;
}

/* Headers, one message, trailers grpc-status 0. */
static int
grpc_send_message(struct grpc_call *call, const void *data, size_t len)
{
	static const struct h2_header trailers[] = {
		{ "grpc-status", "0", 0 },
	};
	struct evbuffer		*b = call->srv->scratch;
	int			 rv;

	if (grpc_frame_message(call, data, len) == -1)
		return -1;
	rv = h2_stream_respond(call->stream, grpc_reply_headers, 2, b,
	    trailers, 1);
	evbuffer_drain(b, evbuffer_get_length(b));
	grpc_call_answered(call, GRPC_OK);
	if (rv == -1)
		h2_stream_reset(call->stream, 2 /* INTERNAL_ERROR */);
	return rv;
}

/* Whether a reply message of len bytes may be sent; if not, the call is
 * answered RESOURCE_EXHAUSTED. */
static int
grpc_reply_fits(struct grpc_call *call, size_t len)
{
	char	msg[96];

	if (len <= call->srv->cfg.max_send_message && len <= UINT32_MAX)
		return 1;
	snprintf(msg, sizeof msg, "reply of %zu bytes is over the limit of "
	    "%zu", len, call->srv->cfg.max_send_message);
	(void)grpc_send_status(call, "200", GRPC_RESOURCE_EXHAUSTED, msg, 0);
	return 0;
}

int
grpc_call_reply(struct grpc_call *call, const void *data, size_t len)
{
	int	rv = -1;

	if (grpc_call_alive(call) && grpc_reply_fits(call, len)) {
		if (call->flags & GRPC_C_STREAMING) {
			if ((rv = grpc_call_send(call, data, len)) == 0)
				rv = grpc_send_status(call, "200", GRPC_OK,
				    NULL, 0);
		} else
			rv = grpc_send_message(call, data, len);
	}
	grpc_call_release(call);
	return rv;
}

int
grpc_call_send(struct grpc_call *call, const void *data, size_t len)
{
	struct evbuffer	*b;
	int		 rv;

	if (!grpc_call_alive(call) || !grpc_reply_fits(call, len))
		return -1;
	b = call->srv->scratch;
	if (grpc_frame_message(call, data, len) == -1)
		return -1;
	if (!(call->flags & GRPC_C_STREAMING)) {
		if (h2_stream_start(call->stream, grpc_reply_headers,
		    2) == -1) {
			evbuffer_drain(b, evbuffer_get_length(b));
			grpc_call_answered(call, GRPC_INTERNAL);
			h2_stream_reset(call->stream, 2 /* INTERNAL_ERROR */);
			return -1;
		}
		call->flags |= GRPC_C_STREAMING;
	}
	rv = h2_stream_write(call->stream, b);
	evbuffer_drain(b, evbuffer_get_length(b));
	if (rv == -1) {
		/* The client must not take what it got for the whole. */
		grpc_call_answered(call, GRPC_INTERNAL);
		h2_stream_reset(call->stream, 2 /* INTERNAL_ERROR */);
	}
	return rv;
}

int
grpc_call_end(struct grpc_call *call)
{
	return grpc_call_error(call, GRPC_OK, NULL);
}

size_t
grpc_call_queued(const struct grpc_call *call)
{
	return call->stream != NULL ? h2_stream_queued(call->stream) : 0;
}

void
grpc_call_on_writable(struct grpc_call *call, grpc_writable_fn fn, void *arg)
{
	call->writable = fn;
	call->writable_arg = arg;
}

int
grpc_call_error(struct grpc_call *call, enum grpc_status status,
    const char *msg)
{
	int	rv = -1;

	if (grpc_call_alive(call))
		rv = grpc_send_status(call, "200", status, msg, 0);
	grpc_call_release(call);
	return rv;
}

void
grpc_call_on_cancel(struct grpc_call *call, grpc_cancel_fn fn, void *arg)
{
	call->cancel = fn;
	call->cancel_arg = arg;
}

int
grpc_call_alive(const struct grpc_call *call)
{
	return call->stream != NULL && !(call->flags & GRPC_C_ANSWERED);
}

const char *
grpc_call_path(const struct grpc_call *call)
{
	return call->method != NULL ? call->method->path : "";
}

const char *
grpc_call_metadata(const struct grpc_call *call, size_t i)
{
	return i < GRPC_MAX_METADATA ? call->meta[i] : NULL;
}

int64_t
grpc_call_time_left_us(const struct grpc_call *call)
{
	struct timeval	now, left;

	if (call->deadline == NULL || !grpc_call_alive(call))
		return -1;
	event_base_gettimeofday_cached(h2_stream_base(call->stream), &now);
	if (!timercmp(&call->expires, &now, >))
		return 0;
	timersub(&call->expires, &now, &left);
	return (int64_t)left.tv_sec * 1000000 + left.tv_usec;
}

/* h2 callbacks. */

static void *
grpc_stream_open(struct h2_stream *stream, void *arg)
{
	struct grpc_call	*call;

	if ((call = calloc(1, sizeof *call)) == NULL) {
		log_warn("grpc: call");
		return NULL;	/* refused; the client may retry */
	}
	call->srv = arg;
	call->stream = stream;
	call->stats = &call->srv->unknown;
	call->timeout_us = -1;
	return call;
}

static struct grpc_entry *
grpc_method_find(const struct grpc_server *srv, const char *path, size_t len)
{
	const char	*p;
	size_t		 i;

	/* A handful of methods: a scan is as fast as a hash here. */
	for (i = 0; i < srv->nmethods; i++) {
		p = srv->methods[i]->method->path;
		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return srv->methods[i];
	}
	return NULL;
}

static int
grpc_ctype_ok(const char *v, size_t len)
{
	static const char	ct[] = "application/grpc";
	size_t			n = sizeof ct - 1;

	/* "application/grpc", "application/grpc+proto", or with
	 * parameters; the spec lets any suffix name the message format. */
	if (len < n || strncasecmp(v, ct, n) != 0)
		return 0;
	return len == n || v[n] == '+' || v[n] == ';';
}

/* Keep the value of a header the server was configured to keep; the last
 * one wins if it repeats. */
static int
grpc_stream_keep_metadata(struct grpc_call *call, const char *name,
    const char *value, size_t valuelen)
{
	const char *const	*m = call->srv->cfg.metadata;
	size_t			 i;
	char			*v;

	for (i = 0; i < GRPC_MAX_METADATA && m[i] != NULL; i++) {
		if (strcmp(m[i], name) != 0)
			continue;
		if ((v = strndup(value, valuelen)) == NULL)
			return -1;
		free(call->meta[i]);
		call->meta[i] = v;
		break;
	}
	return 0;
}

static int
grpc_stream_header(struct h2_stream *stream, void *user, const char *name,
    size_t namelen, const char *value, size_t valuelen)
{
	struct grpc_call	*call = user;
	struct grpc_entry	*e;

	if (strcmp(name, ":method") == 0) {
		if (strcmp(value, "POST") == 0)
			call->flags |= GRPC_C_POST;
	} else if (strcmp(name, ":path") == 0) {
		if ((e = grpc_method_find(call->srv, value,
		    valuelen)) != NULL) {
			call->method = e->method;
			call->stats = &e->stats;
		} else if (call->bad_path == NULL &&
		    (call->bad_path = strdup(value)) == NULL)
			return -1;
	} else if (strcmp(name, "content-type") == 0) {
		if (grpc_ctype_ok(value, valuelen))
			call->flags |= GRPC_C_CTYPE;
	} else if (strcmp(name, "grpc-encoding") == 0) {
		if (strcmp(value, "identity") != 0)
			call->flags |= GRPC_C_ENCODING;
	} else if (strcmp(name, "grpc-timeout") == 0) {
		call->timeout_us = grpc_timeout_parse(value, valuelen);
		if (call->timeout_us == -1)
			call->flags |= GRPC_C_BAD_TIMEOUT;
	} else if (name[0] != ':' && call->srv->cfg.metadata != NULL)
		return grpc_stream_keep_metadata(call, name, value, valuelen);
	return 0;
}

static void
grpc_deadlinecb(evutil_socket_t fd, short what, void *arg)
{
	struct grpc_call	*call = arg;
	int			 held = call->flags & GRPC_C_HANDLER;

	if (!grpc_call_alive(call))
		return;
	call->srv->refused[GRPC_REFUSED_DEADLINE]++;
	(void)grpc_send_status(call, "200", GRPC_DEADLINE_EXCEEDED,
	    "deadline exceeded", 0);
	/* The stream still holds the call, so it survives the handler
	 * releasing it from its cancel function. */
	if (held)
		grpc_call_cancelled(call);
}

/* Reject what can be judged from the headers alone, before any body. */
static int
grpc_stream_headers_done(struct h2_stream *stream, void *user)
{
	struct grpc_call	*call = user;
	struct timeval		 tv;
	char			 msg[160];

	if (!(call->flags & GRPC_C_POST)) {
		(void)grpc_send_status(call, "405", GRPC_INTERNAL,
		    "gRPC requires POST", 0);
		return 0;
	}
	if (!(call->flags & GRPC_C_CTYPE)) {
		(void)grpc_send_status(call, "415", GRPC_INTERNAL,
		    "content-type is not application/grpc", 0);
		return 0;
	}
	if (call->method == NULL) {
		snprintf(msg, sizeof msg, "unknown method %.128s",
		    call->bad_path != NULL ? call->bad_path : "");
		(void)grpc_send_status(call, "200", GRPC_UNIMPLEMENTED, msg,
		    0);
		return 0;
	}
	if (call->flags & GRPC_C_ENCODING) {
		(void)grpc_send_status(call, "200", GRPC_UNIMPLEMENTED,
		    "compression is not supported", 1);
		return 0;
	}
	if (call->flags & GRPC_C_BAD_TIMEOUT) {
		(void)grpc_send_status(call, "200", GRPC_INTERNAL,
		    "malformed grpc-timeout", 0);
		return 0;
	}
	if (call->timeout_us >= 0 && call->timeout_us < GRPC_MAX_TIMER_US) {
		call->deadline = evtimer_new(h2_stream_base(stream),
		    grpc_deadlinecb, call);
		if (call->deadline == NULL) {
			(void)grpc_send_status(call, "200",
			    GRPC_RESOURCE_EXHAUSTED, "out of memory", 0);
			return 0;
		}
		tv.tv_sec = call->timeout_us / 1000000;
		tv.tv_usec = call->timeout_us % 1000000;
		evtimer_add(call->deadline, &tv);
		event_base_gettimeofday_cached(h2_stream_base(stream),
		    &call->expires);
		timeradd(&call->expires, &tv, &call->expires);
	}
	return 0;
}

/*
 * Room for need bytes of the message.  It grows as bytes arrive, doubling,
 * rather than to the length the prefix announces: five bytes must not
 * commit megabytes, and h2's budget on request bytes (max_pending) counts
 * what arrived, which this keeps within twice what is allocated.
 */
static int
grpc_msg_grow(struct grpc_call *call, size_t need)
{
	uint8_t	*p;
	size_t	 cap;

	if (need <= call->msgcap)
		return 0;
	cap = call->msgcap < 4096 ? 4096 : call->msgcap;
	while (cap < need)
		cap *= 2;
	if (cap > call->msglen)
		cap = call->msglen;
	if ((p = realloc(call->msg, cap)) == NULL)
		return -1;
	call->msg = p;
	call->msgcap = cap;
	return 0;
}

static int
grpc_stream_data(struct h2_stream *stream, void *user, const uint8_t *data,
    size_t len)
{
	struct grpc_call	*call = user;
	size_t			 n;
	uint32_t		 mlen;
	char			 msg[128];

	if (!grpc_call_alive(call))
		return 0;
	while (len > 0) {
		if (call->nprefix == GRPC_PREFIX &&
		    call->msggot == call->msglen) {
			(void)grpc_send_status(call, "200", GRPC_INTERNAL,
			    "more than one request message for a unary method",
			    0);
			return 0;
		}
		if (call->nprefix < GRPC_PREFIX) {
			n = GRPC_PREFIX - call->nprefix;
			if (n > len)
				n = len;
			memcpy(call->prefix + call->nprefix, data, n);
			call->nprefix += n;
			data += n;
			len -= n;
			if (call->nprefix < GRPC_PREFIX)
				return 0;
			mlen = (uint32_t)call->prefix[1] << 24 |
			    (uint32_t)call->prefix[2] << 16 |
			    (uint32_t)call->prefix[3] << 8 | call->prefix[4];
			if (call->prefix[0] & 0x1) {
				(void)grpc_send_status(call, "200",
				    GRPC_UNIMPLEMENTED,
				    "compressed messages are not supported", 1);
				return 0;
			}
			if (call->prefix[0] != 0) {
				(void)grpc_send_status(call, "200",
				    GRPC_INTERNAL, "bad message flags", 0);
				return 0;
			}
			/* Judged on the prefix alone: an oversized message is
			 * never buffered. */
			if (mlen > call->srv->cfg.max_recv_message) {
				call->srv->refused[GRPC_REFUSED_MESSAGE]++;
				snprintf(msg, sizeof msg, "received message "
				    "larger than max (%u vs. %zu)", mlen,
				    call->srv->cfg.max_recv_message);
				(void)grpc_send_status(call, "200",
				    GRPC_RESOURCE_EXHAUSTED, msg, 0);
				return 0;
			}
			call->msglen = mlen;
			continue;
		}
		n = call->msglen - call->msggot;
		if (n > len)
			n = len;
		if (grpc_msg_grow(call, call->msggot + n) == -1) {
			(void)grpc_send_status(call, "200",
			    GRPC_RESOURCE_EXHAUSTED,
			    "out of memory for the request", 0);
			return 0;
		}
		memcpy(call->msg + call->msggot, data, n);
		call->msggot += n;
		data += n;
		len -= n;
	}
	return 0;
}

static int
grpc_stream_request_done(struct h2_stream *stream, void *user)
{
	struct grpc_call	*call = user;

	if (!grpc_call_alive(call))
		return 0;
	if (call->nprefix == 0) {
		(void)grpc_send_status(call, "200", GRPC_INTERNAL,
		    "no request message", 0);
		return 0;
	}
	if (call->nprefix < GRPC_PREFIX || call->msggot < call->msglen) {
		(void)grpc_send_status(call, "200", GRPC_INTERNAL,
		    "truncated request message", 0);
		return 0;
	}
	/* The handler may answer right here or later; either way the stream
	 * holds the call until stream_close, so it is valid on return. */
	call->flags |= GRPC_C_HANDLER;
	if (call->srv->cfg.time_calls)
		call->start_ns = metrics_now_ns();
	call->method->fn(call, call->msg != NULL ? call->msg :
	    (const uint8_t *)"", call->msglen, call->method->arg);
	free(call->msg);
	call->msg = NULL;
	call->msgcap = 0;
	return 0;
}

static void
grpc_stream_over_budget(struct h2_stream *stream, void *user)
{
	struct grpc_call	*call = user;

	if (!grpc_call_alive(call))
		return;
	/* The bytes so far go now; the rest will not come. */
	free(call->msg);
	call->msg = NULL;
	call->msgcap = 0;
	(void)grpc_send_status(call, "200", GRPC_RESOURCE_EXHAUSTED,
	    "the server is receiving too many request bytes at once; "
	    "try again", 0);
}

static void
grpc_stream_close(struct h2_stream *stream, void *user, uint32_t error_code)
{
	struct grpc_call	*call = user;
	int			 answered = call->flags & GRPC_C_ANSWERED;

	call->stream = NULL;
	call->srv = NULL;
	call->stats = NULL;
	/* Drop everything tied to the loop or the connection now: the
	 * handler may release the call after the server is gone. */
	if (call->deadline != NULL) {
		event_free(call->deadline);
		call->deadline = NULL;
	}
	free(call->msg);
	call->msg = NULL;
	grpc_call_free_meta(call);
	if (!(call->flags & GRPC_C_HANDLER)) {
		grpc_call_free(call);
		return;
	}
	if (error_code != 0)
		log_debug("grpc: a call to %s died before its answer "
		    "(h2 error %u)", grpc_call_path(call), error_code);
	if (!answered)
		grpc_call_cancelled(call);
}

static void
grpc_stream_writable(struct h2_stream *stream, void *user)
{
	struct grpc_call	*call = user;

	if (grpc_call_alive(call) && call->writable != NULL)
		call->writable(call, call->writable_arg);
}

static const struct h2_callbacks grpc_h2_callbacks = {
	grpc_stream_open,
	grpc_stream_header,
	grpc_stream_headers_done,
	grpc_stream_data,
	grpc_stream_over_budget,
	grpc_stream_request_done,
	grpc_stream_close,
	grpc_stream_writable,
};

/* The health service (grpc/doc/health-checking.md), on the wire by hand:
 * HealthCheckRequest { string service = 1; } and
 * HealthCheckResponse { ServingStatus status = 1; } with SERVING = 1,
 * NOT_SERVING = 2. */

/* Read a protobuf varint; returns bytes used, or 0 if malformed. */
static size_t
grpc_pb_varint(const uint8_t *p, size_t len, uint64_t *v)
{
	size_t	i;

	*v = 0;
	for (i = 0; i < len && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80))
			return i + 1;
	}
	return 0;
}

static int
grpc_health_service_known(const struct grpc_server *srv, const uint8_t *name,
    size_t len)
{
	const char	*path;
	size_t		 i;

	/* memcmp with the length checked first: the name is bytes from the
	 * wire and may hold a NUL, where strncmp would stop and agree. */
	for (i = 0; i < srv->nmethods; i++) {
		path = srv->methods[i]->method->path;
		if (strlen(path) > len + 1 && path[len + 1] == '/' &&
		    memcmp(path + 1, name, len) == 0)
			return 1;
	}
	return 0;
}

static void
grpc_health_check(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	const uint8_t	*service = NULL;
	uint64_t	 key, v;
	size_t		 n, slen = 0;
	uint8_t		 reply[2] = { 0x08, 0x01 };

	while (len > 0) {
		if ((n = grpc_pb_varint(req, len, &key)) == 0)
			goto bad;
		req += n;
		len -= n;
		switch (key & 7) {
		case 0:
			if ((n = grpc_pb_varint(req, len, &v)) == 0)
				goto bad;
			break;
		case 1:
			n = 8;
			break;
		case 2:
			if ((n = grpc_pb_varint(req, len, &v)) == 0 ||
			    v > len - n)
				goto bad;
			if (key >> 3 == 1) {
				service = req + n;
				slen = (size_t)v;
			}
			n += (size_t)v;
			break;
		case 5:
			n = 4;
			break;
		default:
			goto bad;
		}
		if (n > len)
			goto bad;
		req += n;
		len -= n;
	}
	if (slen > 0 && !grpc_health_service_known(call->srv, service, slen)) {
		grpc_call_error(call, GRPC_NOT_FOUND, "unknown service");
		return;
	}
	if (!call->srv->serving)
		reply[1] = 0x02;
	grpc_call_reply(call, reply, sizeof reply);
	return;

bad:
	grpc_call_error(call, GRPC_INVALID_ARGUMENT,
	    "malformed HealthCheckRequest");
}

/* The server. */

struct grpc_server *
grpc_server_new(struct event_base *base, const struct grpc_config *cfg)
{
	struct grpc_server	*srv;

	srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->cfg = *cfg;
	srv->serving = 1;
	srv->cfg.h2.cb = &grpc_h2_callbacks;
	srv->cfg.h2.arg = srv;
	srv->unknown.name = "unknown";
	metrics_hist_init(&srv->unknown.duration, &metrics_latency);
	/* The h2 body limit is a backstop: gRPC must get to judge an
	 * oversized message itself, from its prefix. */
	if (srv->cfg.h2.max_body < srv->cfg.max_recv_message + 2 * GRPC_PREFIX)
		srv->cfg.h2.max_body = srv->cfg.max_recv_message +
		    2 * GRPC_PREFIX;
	if ((srv->scratch = evbuffer_new()) == NULL)
		fatalx("grpc: evbuffer_new");
	if ((srv->h2 = h2_server_new(base, &srv->cfg.h2)) == NULL) {
		evbuffer_free(srv->scratch);
		free(srv);
		return NULL;
	}
	if (grpc_server_register(srv, grpc_health_methods) == -1)
		fatalx("grpc: cannot register the health service");
	return srv;
}

static int
grpc_path_ok(const char *path)
{
	const char	*slash;

	/* "/" service "/" method, both non-empty, no further slash. */
	if (path[0] != '/' || (slash = strchr(path + 1, '/')) == NULL)
		return 0;
	return slash > path + 1 && slash[1] != '\0' &&
	    strchr(slash + 1, '/') == NULL;
}

char *
grpc_method_name(const char *path)
{
	const char	*m = strrchr(path, '/');
	char		*out, *q;
	size_t		 i;

	m = m != NULL ? m + 1 : path;
	if ((out = malloc(2 * strlen(m) + 1)) == NULL)
		return NULL;
	for (i = 0, q = out; m[i] != '\0'; i++) {
		/* A word starts at a capital after a small letter or digit:
		 * TestAndSet, test_and_set. */
		if (i > 0 && isupper((unsigned char)m[i]) &&
		    (islower((unsigned char)m[i - 1]) ||
		    isdigit((unsigned char)m[i - 1])))
			*q++ = '_';
		*q++ = isalnum((unsigned char)m[i]) ?
		    (char)tolower((unsigned char)m[i]) : '_';
	}
	*q = '\0';
	return out;
}

/* Whether a method's stats are already named name. */
static int
grpc_name_taken(const struct grpc_server *srv, const char *name)
{
	size_t	i;

	if (strcmp(srv->unknown.name, name) == 0)
		return 1;
	for (i = 0; i < srv->nmethods; i++)
		if (strcmp(srv->methods[i]->stats.name, name) == 0)
			return 1;
	return 0;
}

int
grpc_server_register(struct grpc_server *srv, const struct grpc_method *table)
{
	const struct grpc_method	*m;
	struct grpc_entry		*e;

	for (m = table; m->path != NULL; m++) {
		if (!grpc_path_ok(m->path) || m->fn == NULL) {
			log_warnx("grpc: bad method path \"%s\"", m->path);
			return -1;
		}
		if (grpc_method_find(srv, m->path, strlen(m->path)) != NULL) {
			log_warnx("grpc: method %s registered twice", m->path);
			return -1;
		}
		e = xcalloc(1, sizeof *e);
		e->method = m;
		if ((e->name = grpc_method_name(m->path)) == NULL)
			fatalx("grpc: out of memory");
		if (grpc_name_taken(srv, e->name)) {
			free(e->name);
			e->name = xstrdup(m->path + 1);
		}
		e->stats.name = e->name;
		metrics_hist_init(&e->stats.duration, &metrics_latency);
		srv->methods = xreallocarray(srv->methods, srv->nmethods + 1,
		    sizeof *srv->methods);
		srv->methods[srv->nmethods++] = e;
	}
	return 0;
}

const struct grpc_method_stats *
grpc_server_method_stats(const struct grpc_server *srv, size_t i)
{
	if (i < srv->nmethods)
		return &srv->methods[i]->stats;
	if (i == srv->nmethods)
		return &srv->unknown;
	return NULL;
}

void
grpc_server_stats(const struct grpc_server *srv, struct grpc_stats *st)
{
	memcpy(st->refused, srv->refused, sizeof st->refused);
	h2_server_stats(srv->h2, &st->h2);
}

void
grpc_server_set_tls(struct grpc_server *srv, struct ssl_ctx_st *ctx)
{
	h2_server_set_tls(srv->h2, ctx);
}

int
grpc_server_port(const struct grpc_server *srv)
{
	return h2_server_port(srv->h2);
}

void
grpc_server_set_serving(struct grpc_server *srv, int serving)
{
	srv->serving = serving != 0;
}

void
grpc_server_shutdown(struct grpc_server *srv, int grace_ms,
    void (*done)(void *), void *arg)
{
	srv->serving = 0;
	h2_server_shutdown(srv->h2, grace_ms, done, arg);
}

void
grpc_server_free(struct grpc_server *srv)
{
	size_t	i;

	if (srv == NULL)
		return;
	/* Every stream closes here: calls without a handler are freed,
	 * calls with one die and are left to their handler. */
	h2_server_free(srv->h2);
	evbuffer_free(srv->scratch);
	for (i = 0; i < srv->nmethods; i++) {
		free(srv->methods[i]->name);
		free(srv->methods[i]);
	}
	free(srv->methods);
	free(srv);
}
