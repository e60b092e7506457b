/*
 * HTTP/2 server on libevent bufferevents and nghttp2, in clear text or
 * over TLS (libevent's OpenSSL bufferevent); the contract is in h2.h.
 *
 * Each connection moves through four states:
 *   HANDSHAKE  accepted; waiting for the TLS handshake if any, then the
 *              client preface and SETTINGS
 *   OPEN       serving streams
 *   DRAINING   GOAWAY sent for shutdown; open streams may finish
 *   CLOSING    nothing more is read; output is flushed, then freed
 * Every top-level event of a connection (read, write, socket event, timer,
 * deferred flush) ends in h2_conn_io(), which frees it once it is done,
 * so no nghttp2 callback and no upper-layer callback ever runs on a freed
 * one.  The other frees are at the top of a callback too, where neither
 * can be on the stack: a TLS handshake that failed or timed out (no
 * HTTP/2 yet), and a connection evicted from the accept callback.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/h2.h"
#include "net/tls.h"
#include "core/listen.h"
#include "core/log.h"

/* How long a closing connection may take to flush its last frames to a
 * peer that does not read them, and then to see the peer's end. */
#define H2_LINGER_MS		2000
/* Pause before accepting again after accept() failed (EMFILE): retrying
 * at once would spin the loop. */
#define H2_ACCEPT_RETRY_MS	500
/* Upper bound on the stream's header fields sent inline; more spill to
 * the heap. */
#define H2_NV_INLINE		16
/* The window of the rate-limited log lines (h2_may_log). */
#define H2_LOG_WINDOW_MS	1000

/*
 * What a flood of clients can make happen many times a second, each
 * logged as a line of its own up to a burst per window, then counted and
 * summed up in one line per window: a log must tell that it happens
 * without becoming the attack's amplifier.
 */
enum h2_logged {
	H2_LOG_REFUSED,		/* at max_conns, nobody to evict */
	H2_LOG_EVICTED,		/* at max_conns, a handshake evicted */
	H2_LOG_TIMEDOUT,	/* no handshake within the timeout */
	H2_LOG_TLSFAIL,		/* a TLS handshake failed */
	H2_NLOGGED
};
static const int h2_log_burst[H2_NLOGGED] = { 1, 1, 1, 10 };

enum h2_conn_state {
	H2_HANDSHAKE,
	H2_OPEN,
	H2_DRAINING,
	H2_CLOSING,
};

struct h2_conn;

struct h2_stream {
	struct h2_conn		*conn;
	int32_t			 id;
	void			*user;
	size_t			 header_bytes;
	size_t			 body_bytes;
	size_t			 pending;	/* body bytes counted, max_pending */
	int			 flags;
#define H2_S_RESPONDED		0x1	/* response submitted */
#define H2_S_REMOTE_DONE	0x2	/* END_STREAM received */
#define H2_S_RESET		0x4	/* RST_STREAM submitted */
#define H2_S_GONE		0x8	/* in stream_close: no more frames */
#define H2_S_WAITING		0x10	/* complete, not handed up: max_held */
#define H2_S_STREAMING		0x20	/* body open: more may be written */
#define H2_S_DEFERRED		0x40	/* nghttp2 waits for more body */
#define H2_S_HUNGRY		0x80	/* body drained: owed a writable call */
	struct evbuffer		*body;	/* response body not yet framed */
	nghttp2_nv		*trailers;	/* one allocation, strings too */
	size_t			 ntrailers;
	TAILQ_ENTRY(h2_stream)	 entry;
};

struct h2_conn {
	struct h2_server	*srv;
	struct bufferevent	*bev;
	SSL			*ssl;	/* over TLS; the bufferevent's */
	int			 tls_up; /* the TLS handshake is done */
	struct timeval		 accepted;
	struct evbuffer		*obuf;	/* framed, not yet handed on */
	nghttp2_session		*session;
	struct event		*timer;	/* handshake, idle, stall, linger */
	struct timeval		 last_read;
	struct event		*flush;	/* deferred write, see h2_conn_kick */
	enum h2_conn_state	 state;
	int			 read_paused;
	int			 lingering;	/* see h2_conn_linger */
	size_t			 held;	/* bytes of every s->body, see max_held */
	size_t			 nwaiting;	/* streams with H2_S_WAITING */
	size_t			 nhungry;	/* streams with H2_S_HUNGRY */
	size_t			 pending;	/* every s->pending */
	size_t			 nrefused;	/* streams over max_pending */
	size_t			 nstreams;
	TAILQ_HEAD(, h2_stream)	 streams;
	TAILQ_ENTRY(h2_conn)	 entry;
	char			 peer[64];
};

struct h2_server {
	struct event_base	*base;
	struct h2_config	 cfg;
	struct evconnlistener	*listener;
	struct event		*accept_retry;
	nghttp2_session_callbacks *callbacks;
	nghttp2_option		*option;
	TAILQ_HEAD(, h2_conn)	 conns;
	size_t			 nconns;
	size_t			 nstreams;	/* every c->nstreams */
	uint64_t		 accepted;
	uint64_t		 refused[H2_NREFUSED];
	int			 port;
	size_t			 pending;	/* every c->pending */
	size_t			 held;		/* every c->held */
	size_t			 nwaiting;	/* every c->nwaiting */
	SSL_CTX			*tls;		/* for new connections */

	struct event		*log_tick;	/* see h2_may_log */
	int			 log_lines[H2_NLOGGED];
	size_t			 log_dropped[H2_NLOGGED];

	int			 shutting_down;
	struct event		*grace;
	struct event		*done_ev;
	void			(*done)(void *);
	void			*done_arg;
};

static void	h2_conn_io(struct h2_conn *);
static void	h2_conn_closing(struct h2_conn *);
static void	h2_conn_free(struct h2_conn *);
static void	h2_gracecb(evutil_socket_t, short, void *);
static void	h2_donecb(evutil_socket_t, short, void *);

void
h2_config_defaults(struct h2_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->listen = "127.0.0.1:0";
	cfg->max_streams = 100;
	cfg->max_header_list = 16384;
	cfg->max_body = 64 << 20;
	cfg->max_output = 1 << 20;
	cfg->max_held = 64 << 20;
	cfg->max_held_total = 512 << 20;
	cfg->max_pending = 64 << 20;
	cfg->max_pending_total = 512 << 20;
	cfg->max_conns = 10000;
	cfg->handshake_timeout_ms = 10000;
	cfg->idle_timeout_ms = 300000;
	cfg->window = 1 << 20;
}

static void
h2_timer_set(struct event *ev, int ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/*
 * Whether a line about ev may be logged now: up to its burst in each
 * window of H2_LOG_WINDOW_MS, the rest are counted and h2_log_tickcb sums
 * them up at the window's end.  A window that needed a sum is followed by
 * one in which every line is counted, so that a steady flood gives one
 * line a second of each kind.
 */
static int
h2_may_log(struct h2_server *srv, enum h2_logged ev)
{
	if (!evtimer_pending(srv->log_tick, NULL)) {
		memset(srv->log_lines, 0, sizeof srv->log_lines);
		h2_timer_set(srv->log_tick, H2_LOG_WINDOW_MS);
	}
	if (srv->log_lines[ev] < h2_log_burst[ev]) {
		srv->log_lines[ev]++;
		return 1;
	}
	srv->log_dropped[ev]++;
	return 0;
}

static void
h2_log_tickcb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_server	*srv = arg;
	size_t			*n = srv->log_dropped;
	int			 i, any = 0;

	if (n[H2_LOG_REFUSED] > 0)
		log_warnx("h2: refused %zu more connections in the last %d ms: "
		    "at the limit of %d (--max-connections) with none left in "
		    "its handshake to close", n[H2_LOG_REFUSED],
		    H2_LOG_WINDOW_MS, srv->cfg.max_conns);
	if (n[H2_LOG_EVICTED] > 0)
		log_warnx("h2: closed %zu more connections that had not "
		    "completed their handshake in the last %d ms, to admit new "
		    "ones past the limit of %d (--max-connections)",
		    n[H2_LOG_EVICTED], H2_LOG_WINDOW_MS, srv->cfg.max_conns);
	if (n[H2_LOG_TIMEDOUT] > 0)
		log_warnx("h2: closed %zu more connections in the last %d ms "
		    "that did not complete their handshake within %d ms "
		    "(--handshake-timeout)", n[H2_LOG_TIMEDOUT],
		    H2_LOG_WINDOW_MS, srv->cfg.handshake_timeout_ms);
	if (n[H2_LOG_TLSFAIL] > 0)
		log_warnx("tls: %zu more failed handshakes in the last %d ms, "
		    "not logged one by one", n[H2_LOG_TLSFAIL],
		    H2_LOG_WINDOW_MS);
	for (i = 0; i < H2_NLOGGED; i++) {
		if (n[i] > 0)
			any = 1;
		n[i] = 0;
	}
	if (any) {
		for (i = 0; i < H2_NLOGGED; i++)
			srv->log_lines[i] = h2_log_burst[i];
		h2_timer_set(srv->log_tick, H2_LOG_WINDOW_MS);
	}
}

/* Stream bookkeeping. */

static struct h2_stream *
h2_stream_get(struct h2_conn *c, int32_t id)
{
	return nghttp2_session_get_stream_user_data(c->session, id);
}

/*
 * Whether a request on c that completes now must wait (H2_S_WAITING) for
 * held reply bytes to drain: its connection holds its budget, or the
 * server holds its own and this connection some of it.  A connection
 * holding nothing always goes on, so a client that reads its replies is
 * served however many others do not, and each of those holds at most
 * one batch of replies past the server's budget.
 */
static int
h2_must_wait(const struct h2_conn *c)
{
	return c->held >= c->srv->cfg.max_held ||
	    (c->held > 0 && c->srv->held >= c->srv->cfg.max_held_total);
}

static void	h2_conn_kick(struct h2_conn *);

/* Reply bytes framed or given up.  Crossing back under the server's
 * budget may let requests waiting on other connections go on. */
static void
h2_held_sub(struct h2_conn *c, size_t n)
{
	struct h2_server	*srv = c->srv;
	struct h2_conn		*o;
	int			 was_over = srv->held >= srv->cfg.max_held_total;

	c->held -= n;
	srv->held -= n;
	if (!was_over || srv->held >= srv->cfg.max_held_total ||
	    srv->nwaiting == 0)
		return;
	TAILQ_FOREACH(o, &srv->conns, entry) {
		if (o != c && o->nwaiting > 0 && o->state != H2_CLOSING)
			h2_conn_kick(o);
	}
}

static void
h2_wait_set(struct h2_stream *s, int on)
{
	struct h2_conn	*c = s->conn;

	if (on == !!(s->flags & H2_S_WAITING))
		return;
	if (on) {
		s->flags |= H2_S_WAITING;
		c->nwaiting++;
		c->srv->nwaiting++;
	} else {
		s->flags &= ~H2_S_WAITING;
		c->nwaiting--;
		c->srv->nwaiting--;
	}
}

/* The request body the upper layer holds for s is no longer counted:
 * handed up whole, answered, reset or gone. */
static void
h2_stream_unpend(struct h2_stream *s)
{
	s->conn->pending -= s->pending;
	s->conn->srv->pending -= s->pending;
	s->pending = 0;
}

/* The stream is gone: tell the upper layer, forget it.  The one place a
 * stream is freed. */
static void
h2_stream_gone(struct h2_stream *s, uint32_t error_code)
{
	struct h2_conn		*c = s->conn;
	struct h2_server	*srv = c->srv;

	TAILQ_REMOVE(&c->streams, s, entry);
	c->nstreams--;
	srv->nstreams--;
	if (c->state != H2_CLOSING)
		nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
	/* An answer submitted from stream_close would leave nghttp2 a data
	 * source pointing at this stream after it is freed: refuse it. */
	s->flags |= H2_S_GONE;
	h2_wait_set(s, 0);
	if (s->flags & H2_S_HUNGRY)
		c->nhungry--;
	h2_stream_unpend(s);
	srv->cfg.cb->stream_close(s, s->user, error_code);
	if (s->body != NULL) {
		/* A reset or a dropped connection: what flow control still
		 * held back is given up. */
		h2_held_sub(c, evbuffer_get_length(s->body));
		evbuffer_free(s->body);
	}
	free(s->trailers);
	free(s);

	/* No stream left: the idle clock starts. */
	if (c->nstreams == 0 && c->state == H2_OPEN &&
	    srv->cfg.idle_timeout_ms > 0)
		h2_timer_set(c->timer, srv->cfg.idle_timeout_ms);
}

/* nghttp2 callbacks.  Each returns 0, or a nghttp2 error code: TEMPORAL
 * resets only the stream, CALLBACK_FAILURE ends the connection. */

static int
h2_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if ((s = calloc(1, sizeof *s)) == NULL) {
		log_warn("h2 %s: stream", c->peer);
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	s->conn = c;
	s->id = frame->hd.stream_id;
	if ((s->user = srv->cfg.cb->stream_open(s, srv->cfg.arg)) == NULL) {
		free(s);
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	if (nghttp2_session_set_stream_user_data(session, s->id, s) != 0) {
		/* Cannot happen for a stream nghttp2 just announced; undo
		 * through the normal path so the upper layer sees a close. */
		TAILQ_INSERT_TAIL(&c->streams, s, entry);
		c->nstreams++;
		srv->nstreams++;
		h2_stream_gone(s, NGHTTP2_INTERNAL_ERROR);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	TAILQ_INSERT_TAIL(&c->streams, s, entry);
	c->nstreams++;
	srv->nstreams++;
	/* The idle clock stops; the stall clock (h2_conn_timercb) starts. */
	if (c->state == H2_OPEN && c->nstreams == 1 &&
	    srv->cfg.idle_timeout_ms > 0)
		h2_timer_set(c->timer, srv->cfg.idle_timeout_ms);
	return 0;
}

static int
h2_on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_stream	*s;

	if ((s = h2_stream_get(c, frame->hd.stream_id)) == NULL ||
	    (s->flags & H2_S_RESET))
		return 0;
	/* Count as SETTINGS_MAX_HEADER_LIST_SIZE does (RFC 9113 6.5.2). */
	s->header_bytes += namelen + valuelen + 32;
	if (s->header_bytes > c->srv->cfg.max_header_list) {
		log_debug("h2 %s: stream %d: header list over %u bytes",
		    c->peer, s->id, c->srv->cfg.max_header_list);
		c->srv->refused[H2_REFUSED_HEADERS]++;
		h2_stream_reset(s, NGHTTP2_ENHANCE_YOUR_CALM);
		return 0;
	}
	/* Request trailers are counted, not passed on: gRPC has none. */
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (c->srv->cfg.cb->header(s, s->user, (const char *)name, namelen,
	    (const char *)value, valuelen) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int
h2_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;
	static const struct h2_header too_large[] = {
		{ ":status", "413", 0 },
	};
	static const struct h2_header busy[] = {
		{ ":status", "503", 0 },
	};
	void			(*say)(const char *, ...);

	if ((s = h2_stream_get(c, stream_id)) == NULL ||
	    (s->flags & (H2_S_RESPONDED | H2_S_RESET)))
		return 0;
	s->body_bytes += len;
	if (s->body_bytes > srv->cfg.max_body) {
		log_debug("h2 %s: stream %d: body over %zu bytes", c->peer,
		    s->id, srv->cfg.max_body);
		srv->refused[H2_REFUSED_BODY]++;
		if (h2_stream_respond(s, too_large, 1, NULL, NULL, 0) == -1)
			h2_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	/* Flow control does not bound what request bodies take: the window
	 * is given back as the bytes arrive, so that a large message on one
	 * stream cannot stall the others, and each stream may hold up to
	 * max_body.  These budgets do.  The stream whose bytes would go past
	 * one is refused; the others go on.  One line per connection at info,
	 * since a client that does this does it many times. */
	if (c->pending + len > srv->cfg.max_pending ||
	    srv->pending + len > srv->cfg.max_pending_total) {
		srv->refused[H2_REFUSED_BUDGET]++;
		say = c->nrefused++ == 0 ? log_info : log_debug;
		say("h2 %s: stream %d refused: request bodies being "
		    "received would take %zu bytes on this connection (budget "
		    "%zu), %zu on the server (budget %zu)", c->peer, s->id,
		    c->pending + len, srv->cfg.max_pending, srv->pending + len,
		    srv->cfg.max_pending_total);
		h2_stream_unpend(s);
		if (srv->cfg.cb->over_budget != NULL)
			srv->cfg.cb->over_budget(s, s->user);
		if (!(s->flags & (H2_S_RESPONDED | H2_S_RESET)) &&
		    h2_stream_respond(s, busy, 1, NULL, NULL, 0) == -1)
			h2_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	s->pending += len;
	c->pending += len;
	srv->pending += len;
	if (srv->cfg.cb->data(s, s->user, data, len) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static int
h2_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;

	switch (frame->hd.type) {
	case NGHTTP2_SETTINGS:
		/* nghttp2 has checked the preface; the first frame after it
		 * must be SETTINGS, so the handshake is done. */
		if (c->state == H2_HANDSHAKE) {
			c->state = H2_OPEN;
			evtimer_del(c->timer);
			if (c->nstreams == 0 && srv->cfg.idle_timeout_ms > 0)
				h2_timer_set(c->timer,
				    srv->cfg.idle_timeout_ms);
		}
		return 0;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		break;
	default:
		return 0;
	}
	if ((s = h2_stream_get(c, frame->hd.stream_id)) == NULL ||
	    (s->flags & H2_S_RESET))
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    srv->cfg.cb->headers_done(s, s->user) == -1)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		s->flags |= H2_S_REMOTE_DONE;
		if (s->flags & (H2_S_RESPONDED | H2_S_RESET))
			return 0;
		/* Replies that the peer's flow control holds back are over
		 * budget: this request waits, unanswered and not refused,
		 * until WINDOW_UPDATEs (still read) or resets let them go
		 * (h2_conn_resume). */
		if (h2_must_wait(c)) {
			log_debug("h2 %s: stream %d waits: %zu response bytes "
			    "held here (budget %zu), %zu in all (budget %zu)",
			    c->peer, s->id, c->held, srv->cfg.max_held,
			    srv->held, srv->cfg.max_held_total);
			h2_wait_set(s, 1);
			return 0;
		}
		h2_stream_unpend(s);
		if (srv->cfg.cb->request_done(s, s->user) == -1)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 0;
}

static int
h2_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_stream	*s;

	/* Ours (no memory for a stream) or nghttp2's own, for a stream
	 * past a SETTINGS_MAX_CONCURRENT_STREAMS not yet acknowledged. */
	if (frame->hd.type == NGHTTP2_RST_STREAM &&
	    frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		c->srv->refused[H2_REFUSED_STREAM]++;
	if ((frame->hd.type != NGHTTP2_HEADERS &&
	    frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if ((s = h2_stream_get(c, frame->hd.stream_id)) == NULL)
		return 0;
	/* Our response is complete but the client is still sending (an
	 * early error, say): tell it to stop (RFC 9113 8.1).  Without this
	 * the stream would stay open until the client finished. */
	if (!(s->flags & (H2_S_REMOTE_DONE | H2_S_RESET)))
		h2_stream_reset(s, NGHTTP2_NO_ERROR);
	return 0;
}

static int
h2_on_stream_close(nghttp2_session *session, int32_t stream_id,
    uint32_t error_code, void *arg)
{
	struct h2_conn		*c = arg;
	struct h2_stream	*s;

	if ((s = h2_stream_get(c, stream_id)) != NULL)
		h2_stream_gone(s, error_code);
	return 0;
}

static int
h2_on_error(nghttp2_session *session, int lib_error_code, const char *msg,
    size_t len, void *arg)
{
	struct h2_conn	*c = arg;

	log_debug("h2 %s: %.*s", c->peer, (int)len, msg);
	return 0;
}

static ssize_t
h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
    void *arg)
{
	struct h2_stream	*s = source->ptr;
	int			 n;

	n = evbuffer_remove(s->body, buf, length);
	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	h2_held_sub(s->conn, (size_t)n);
	if (evbuffer_get_length(s->body) != 0)
		return n;
	if (s->flags & H2_S_STREAMING) {
		/* Drained, and the upper layer has more to come: ask it for
		 * more (h2_conn_feed, outside nghttp2), and pause this data
		 * source until h2_stream_write() or h2_stream_end(). */
		if (!(s->flags & H2_S_HUNGRY)) {
			s->flags |= H2_S_HUNGRY;
			s->conn->nhungry++;
			h2_conn_kick(s->conn);
		}
		if (n > 0)
			return n;
		s->flags |= H2_S_DEFERRED;
		return NGHTTP2_ERR_DEFERRED;
	}
	*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	if (s->ntrailers > 0) {
		/* gRPC's status travels in trailers: end the DATA without
		 * END_STREAM and let the trailer HEADERS carry it. */
		*data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(session, stream_id, s->trailers,
		    s->ntrailers) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return n;
}

/* Upper-layer API. */

struct event_base *
h2_stream_base(const struct h2_stream *s)
{
	return s->conn->srv->base;
}

int32_t
h2_stream_id(const struct h2_stream *s)
{
	return s->id;
}

int
h2_stream_responded(const struct h2_stream *s)
{
	return (s->flags & H2_S_RESPONDED) != 0;
}

/* Write on the next loop pass rather than now: the caller may be inside
 * nghttp2_session_mem_recv() (where sending is not allowed) or inside
 * another connection's callbacks (where freeing this one on a write error
 * would pull it from under a caller higher up). */
static void
h2_conn_kick(struct h2_conn *c)
{
	if (c->state != H2_CLOSING)
		event_active(c->flush, EV_WRITE, 0);
}

static void
h2_nv_set(nghttp2_nv *nv, const struct h2_header *h)
{
	nv->name = (uint8_t *)(uintptr_t)h->name;
	nv->namelen = strlen(h->name);
	nv->value = (uint8_t *)(uintptr_t)h->value;
	nv->valuelen = h->valuelen != 0 ? h->valuelen : strlen(h->value);
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Copy trailers into one allocation that lives as long as the stream,
 * since nghttp2_submit_trailer() happens later, from h2_read_body(). */
static nghttp2_nv *
h2_nv_copy(const struct h2_header *hs, size_t n)
{
	nghttp2_nv	*nv;
	size_t		 i, size = n * sizeof *nv;
	uint8_t		*p;

	for (i = 0; i < n; i++) {
		size += strlen(hs[i].name) + 1;
		size += (hs[i].valuelen != 0 ? hs[i].valuelen :
		    strlen(hs[i].value)) + 1;
	}
	if ((nv = malloc(size)) == NULL)
		return NULL;
	p = (uint8_t *)(nv + n);
	for (i = 0; i < n; i++) {
		h2_nv_set(&nv[i], &hs[i]);
		memcpy(p, nv[i].name, nv[i].namelen + 1);
		nv[i].name = p;
		p += nv[i].namelen + 1;
		memcpy(p, nv[i].value, nv[i].valuelen);
		p[nv[i].valuelen] = '\0';
		nv[i].value = p;
		p += nv[i].valuelen + 1;
	}
	return nv;
}

/*
 * Submit the response headers and, with a body, trailers or streaming,
 * the data source that frames them: the one path of h2_stream_respond()
 * and h2_stream_start().
 */
static int
h2_stream_submit(struct h2_stream *s, const struct h2_header *hdrs,
    size_t nhdrs, struct evbuffer *body, const struct h2_header *trailers,
    size_t ntrailers, int streaming)
{
	struct h2_conn		*c = s->conn;
	nghttp2_nv		 inline_nv[H2_NV_INLINE], *nv = inline_nv;
	nghttp2_data_provider	 prd, *prdp = NULL;
	size_t			 i;
	int			 rv;

	if ((s->flags & (H2_S_RESPONDED | H2_S_RESET | H2_S_GONE)) ||
	    c->state == H2_CLOSING)
		return -1;
	if (nhdrs > H2_NV_INLINE &&
	    (nv = calloc(nhdrs, sizeof *nv)) == NULL)
		return -1;
	for (i = 0; i < nhdrs; i++)
		h2_nv_set(&nv[i], &hdrs[i]);

	if (body != NULL || ntrailers > 0 || streaming) {
		if ((s->body = evbuffer_new()) == NULL)
			goto fail;
		if (body != NULL && evbuffer_add_buffer(s->body, body) == -1)
			goto fail;
		if (ntrailers > 0 &&
		    (s->trailers = h2_nv_copy(trailers, ntrailers)) == NULL)
			goto fail;
		s->ntrailers = ntrailers;
		prd.source.ptr = s;
		prd.read_callback = h2_read_body;
		prdp = &prd;
	}
	rv = nghttp2_submit_response(c->session, s->id, nv, nhdrs, prdp);
	if (rv != 0) {
		log_debug("h2 %s: stream %d: %s", c->peer, s->id,
		    nghttp2_strerror(rv));
		goto fail;
	}
	if (nv != inline_nv)
		free(nv);
	s->flags |= H2_S_RESPONDED;
	if (streaming)
		s->flags |= H2_S_STREAMING;
	h2_stream_unpend(s);
	/* Counted only once nghttp2 has the data provider: from here
	 * h2_read_body() or h2_stream_gone() takes it off again. */
	if (s->body != NULL) {
		c->held += evbuffer_get_length(s->body);
		c->srv->held += evbuffer_get_length(s->body);
	}
	h2_conn_kick(c);
	return 0;

fail:
	if (nv != inline_nv)
		free(nv);
	if (s->body != NULL) {
		evbuffer_free(s->body);
		s->body = NULL;
	}
	free(s->trailers);
	s->trailers = NULL;
	s->ntrailers = 0;
	return -1;
}

int
h2_stream_respond(struct h2_stream *s, const struct h2_header *hdrs,
    size_t nhdrs, struct evbuffer *body, const struct h2_header *trailers,
    size_t ntrailers)
{
	return h2_stream_submit(s, hdrs, nhdrs, body, trailers, ntrailers, 0);
}

int
h2_stream_start(struct h2_stream *s, const struct h2_header *hdrs,
    size_t nhdrs)
{
	return h2_stream_submit(s, hdrs, nhdrs, NULL, NULL, 0, 1);
}

/* Whether a streamed body may still be added to. */
static int
h2_stream_open_body(const struct h2_stream *s)
{
	return (s->flags & H2_S_STREAMING) &&
	    !(s->flags & (H2_S_RESET | H2_S_GONE)) &&
	    s->conn->state != H2_CLOSING;
}

/* The data source paused for want of body: let nghttp2 read it again. */
static void
h2_stream_wake(struct h2_stream *s)
{
	if (s->flags & H2_S_DEFERRED) {
		s->flags &= ~H2_S_DEFERRED;
		(void)nghttp2_session_resume_data(s->conn->session, s->id);
	}
	h2_conn_kick(s->conn);
}

int
h2_stream_write(struct h2_stream *s, struct evbuffer *body)
{
	struct h2_conn	*c = s->conn;
	size_t		 len = evbuffer_get_length(body);

	if (!h2_stream_open_body(s) ||
	    evbuffer_add_buffer(s->body, body) == -1)
		return -1;
	c->held += len;
	c->srv->held += len;
	h2_stream_wake(s);
	return 0;
}

int
h2_stream_end(struct h2_stream *s, const struct h2_header *trailers,
    size_t ntrailers)
{
	if (!h2_stream_open_body(s))
		return -1;
	if (ntrailers > 0 &&
	    (s->trailers = h2_nv_copy(trailers, ntrailers)) == NULL)
		return -1;
	s->ntrailers = ntrailers;
	/* h2_read_body() ends the DATA once the body has drained. */
	s->flags &= ~H2_S_STREAMING;
	h2_stream_wake(s);
	return 0;
}

size_t
h2_stream_queued(const struct h2_stream *s)
{
	return s->body != NULL ? evbuffer_get_length(s->body) : 0;
}

void
h2_stream_reset(struct h2_stream *s, uint32_t error_code)
{
	struct h2_conn	*c = s->conn;

	if ((s->flags & (H2_S_RESET | H2_S_GONE)) || c->state == H2_CLOSING)
		return;
	s->flags |= H2_S_RESET;
	h2_stream_unpend(s);
	nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id,
	    error_code);
	h2_conn_kick(c);
}

/* Connection I/O. */

/*
 * Frame what nghttp2 has queued, up to the output bound, and write it.
 * When nothing is waiting in the bufferevent, the frames go straight to
 * the socket with one writev: handing them to the bufferevent would arm
 * EV_WRITE, wait a loop pass and disarm it again, three more system calls
 * per request and most of a small call's latency.  Whatever the socket
 * does not take goes to the bufferevent, which writes it when it can.
 * Over TLS the bytes must be encrypted, so they always go through the
 * (OpenSSL) bufferevent.  Returns -1 if the session or the socket failed.
 */
static int
h2_conn_send(struct h2_conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	const uint8_t	*data;
	ssize_t		 n;
	int		 w, capped = 1;

	while (evbuffer_get_length(out) + evbuffer_get_length(c->obuf) <
	    c->srv->cfg.max_output) {
		n = nghttp2_session_mem_send(c->session, &data);
		if (n < 0) {
			log_debug("h2 %s: send: %s", c->peer,
			    nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0) {
			capped = 0;
			break;
		}
		if (evbuffer_add(c->obuf, data, (size_t)n) == -1) {
			log_warn("h2 %s: output", c->peer);
			return -1;
		}
	}
	if (evbuffer_get_length(c->obuf) == 0)
		return 0;
	if (c->ssl == NULL && evbuffer_get_length(out) == 0) {
		w = evbuffer_write(c->obuf, bufferevent_getfd(c->bev));
		if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			log_debug("h2 %s: write: %s", c->peer,
			    strerror(errno));
			evbuffer_drain(c->obuf, evbuffer_get_length(c->obuf));
			return -1;
		}
	}
	if (evbuffer_get_length(c->obuf) > 0 &&
	    evbuffer_add_buffer(out, c->obuf) == -1) {
		log_warn("h2 %s: output", c->peer);
		return -1;
	}
	/* Stopped at the bound with more to frame, and the socket took it
	 * all: no write callback will come, and a peer that has opened its
	 * windows and now only waits would wait for ever.  Go on next pass. */
	if (capped && evbuffer_get_length(out) == 0)
		h2_conn_kick(c);
	/* Sending drained held bytes: requests that waited for that may go
	 * on, on the next pass. */
	if (c->nwaiting > 0 && !h2_must_wait(c))
		h2_conn_kick(c);
	return 0;
}

/* Feed what was read to nghttp2, a chunk at a time so that a peer that
 * does not read its answers stops being read: past max_output the rest
 * stays in the input buffer until the write side drains.  Returns -1 if
 * the connection must close. */
static int
h2_conn_recv(struct h2_conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	while (evbuffer_get_length(in) > 0) {
		if (evbuffer_get_length(out) >= c->srv->cfg.max_output) {
			if (!c->read_paused) {
				c->read_paused = 1;
				bufferevent_disable(c->bev, EV_READ);
			}
			return 0;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = nghttp2_session_mem_recv(c->session, v.iov_base,
		    v.iov_len);
		if (n < 0) {
			if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
				log_debug("h2 %s: not an HTTP/2 preface",
				    c->peer);
			else {
				log_debug("h2 %s: recv: %s", c->peer,
				    nghttp2_strerror((int)n));
				/* Say why before hanging up, where the
				 * session can still frame anything. */
				nghttp2_session_terminate_session(c->session,
				    NGHTTP2_PROTOCOL_ERROR);
				(void)h2_conn_send(c);
			}
			return -1;
		}
		evbuffer_drain(in, (size_t)n);
		if (h2_conn_send(c) == -1)
			return -1;
	}
	return 0;
}

/* Stop reading, flush what is queued, linger, then free (h2_conn_io). */
static void
h2_conn_closing(struct h2_conn *c)
{
	if (c->state == H2_CLOSING)
		return;
	c->state = H2_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	/* Wake up when the output is empty, not merely below half. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	h2_timer_set(c->timer, H2_LINGER_MS);
}

/*
 * Our last frames (a GOAWAY, often) are written: send FIN and read until
 * the peer's FIN before closing.  Closing a socket with unread input makes
 * the kernel send RST, and a peer that gets RST may throw away what it
 * had received but not yet read, GOAWAY and its reason included.  The
 * peer gets H2_LINGER_MS to finish; what it sends is discarded
 * (h2_conn_readcb).  Returns -1 if the connection should be freed now.
 */
static int
h2_conn_linger(struct h2_conn *c)
{
	evutil_socket_t	fd = bufferevent_getfd(c->bev);

	if (fd == -1)
		return -1;
	/* Over TLS the end of our side is a close_notify alert, then FIN;
	 * a handshake never finished has nothing to end. */
	if (c->ssl != NULL) {
		if (!c->tls_up)
			return -1;
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	if (shutdown(fd, SHUT_WR) == -1)
		return -1;
	c->lingering = 1;
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	if (bufferevent_enable(c->bev, EV_READ) == -1)
		return -1;
	h2_timer_set(c->timer, H2_LINGER_MS);
	return 0;
}

/*
 * Hand up the requests that waited for held reply bytes to drain, oldest
 * stream first, while the connection is under its budget again.  Outside
 * nghttp2's callbacks, so the upper layer may answer at once.
 */
static void
h2_conn_resume(struct h2_conn *c)
{
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;

	/* No stream is freed here: a reset is only submitted. */
	TAILQ_FOREACH(s, &c->streams, entry) {
		if (c->nwaiting == 0 || h2_must_wait(c))
			break;
		if (!(s->flags & H2_S_WAITING))
			continue;
		h2_wait_set(s, 0);
		/* Answered meanwhile (a deadline), or reset. */
		if (s->flags & (H2_S_RESPONDED | H2_S_RESET))
			continue;
		h2_stream_unpend(s);
		if (srv->cfg.cb->request_done(s, s->user) == -1)
			h2_stream_reset(s, NGHTTP2_INTERNAL_ERROR);
	}
}

/*
 * Tell the upper layer which streamed bodies have drained, so that it
 * writes more: outside nghttp2's callbacks, where h2_read_body() found
 * them empty.  What it writes goes out on the next pass (h2_stream_wake).
 */
static void
h2_conn_feed(struct h2_conn *c)
{
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;

	/* No stream is freed here: writing and ending only queue. */
	TAILQ_FOREACH(s, &c->streams, entry) {
		if (c->nhungry == 0)
			break;
		if (!(s->flags & H2_S_HUNGRY))
			continue;
		s->flags &= ~H2_S_HUNGRY;
		c->nhungry--;
		if (h2_stream_open_body(s) && srv->cfg.cb->writable != NULL)
			srv->cfg.cb->writable(s, s->user);
	}
}

/* The end of every top-level event: write, decide whether to close, and
 * free the connection if it is done.  c must not be used after. */
static void
h2_conn_io(struct h2_conn *c)
{
	if (c->state != H2_CLOSING) {
		if (c->nwaiting > 0)
			h2_conn_resume(c);
		if (c->nhungry > 0)
			h2_conn_feed(c);
		if (h2_conn_send(c) == -1)
			h2_conn_closing(c);
		else if (!nghttp2_session_want_read(c->session) &&
		    !nghttp2_session_want_write(c->session))
			h2_conn_closing(c);	/* GOAWAY sent, or received */
		else if (c->state == H2_DRAINING && c->nstreams == 0 &&
		    !nghttp2_session_want_write(c->session))
			h2_conn_closing(c);
	}
	if (c->state == H2_CLOSING && !c->lingering &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    h2_conn_linger(c) == -1)
		h2_conn_free(c);
}

static void
h2_conn_readcb(struct bufferevent *bev, void *arg)
{
	struct h2_conn	*c = arg;

	if (c->state == H2_CLOSING) {
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	event_base_gettimeofday_cached(c->srv->base, &c->last_read);
	if (h2_conn_recv(c) == -1)
		h2_conn_closing(c);
	h2_conn_io(c);
}

static void
h2_conn_writecb(struct bufferevent *bev, void *arg)
{
	struct h2_conn	*c = arg;

	/* Below the low mark: what waited for room may go on. */
	if (c->state != H2_CLOSING && c->read_paused) {
		c->read_paused = 0;
		bufferevent_enable(bev, EV_READ);
		if (h2_conn_send(c) == -1 || h2_conn_recv(c) == -1)
			h2_conn_closing(c);
	}
	h2_conn_io(c);
}

/* A TLS handshake failed (an error or the peer's end before it was
 * done): one line, from OpenSSL's first reason. */
static void
h2_conn_tls_failed(struct h2_conn *c, short what)
{
	unsigned long	 e, best = 0;
	char		*why;
	int		 saved = EVUTIL_SOCKET_ERROR();

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		best = tls_pick_error(best, e);
	ERR_clear_error();
	/* A peer that connects and leaves without a word (a TCP health
	 * check, a port scan) is no failure worth a warning. */
	if ((best == 0 && !(what & BEV_EVENT_ERROR)) ||
	    (ERR_GET_LIB(best) == ERR_LIB_SSL &&
	    ERR_GET_REASON(best) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		log_info("tls %s: closed by the peer during the handshake",
		    c->peer);
		return;
	}
	c->srv->refused[H2_REFUSED_TLS]++;
	if (!h2_may_log(c->srv, H2_LOG_TLSFAIL))
		return;
	if (best == 0 && (what & BEV_EVENT_ERROR) && saved != 0)
		log_warnx("tls %s: handshake failed: %s", c->peer,
		    evutil_socket_error_to_string(saved));
	else {
		why = tls_failure(c->ssl, best);
		log_warnx("tls %s: handshake failed: %s", c->peer,
		    why != NULL ? why : "(out of memory describing it)");
		free(why);
	}
}

/*
 * Before closing a connection whose TLS handshake failed, read what the
 * peer sent already (a TLS 1.3 client sends its request before the
 * server has judged its certificate): closing a socket with unread input
 * sends RST, and the peer could lose the alert that says why.  What has
 * arrived only, never waiting, and a bounded amount.
 */
static void
h2_conn_discard(struct h2_conn *c)
{
	char		buf[4096];
	evutil_socket_t	fd = bufferevent_getfd(c->bev);
	int		i;

	for (i = 0; fd != -1 && i < 16; i++)
		if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
			break;
}

static void
h2_conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct h2_conn	*c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done; a client that offered no
		 * ALPN at all got this far (one offering others without
		 * h2 was refused in the handshake). */
		c->tls_up = 1;
		if (!tls_alpn_h2(c->ssl)) {
			c->srv->refused[H2_REFUSED_TLS]++;
			if (h2_may_log(c->srv, H2_LOG_TLSFAIL))
				log_warnx("tls %s: handshake failed: the client "
				    "does not offer ALPN h2 (gRPC needs "
				    "HTTP/2)", c->peer);
			h2_conn_free(c);
			return;
		}
		log_debug("tls %s: %s, %s", c->peer, SSL_get_version(c->ssl),
		    SSL_get_cipher_name(c->ssl));
		h2_conn_io(c);
		return;
	}
	if (c->ssl != NULL && !c->tls_up &&
	    (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
		if (c->state != H2_CLOSING)
			h2_conn_tls_failed(c, what);
		h2_conn_discard(c);
		h2_conn_free(c);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("h2 %s: %s", c->peer,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else if (what & BEV_EVENT_EOF)
		log_debug("h2 %s: closed by peer", c->peer);
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		h2_conn_free(c);
}

/*
 * With streams open the timer watches for a peer that went quiet in the
 * middle of a request: nothing read for idle_timeout_ms while a request is
 * unfinished.  A dead peer (no FIN, no RST) would otherwise keep its
 * streams, its bytes under max_pending and its connection slot for good.
 * Requests that are complete and wait for our answer are ours to finish,
 * however long that takes.
 */
static void
h2_conn_stalled(struct h2_conn *c)
{
	struct h2_stream	*s;
	struct timeval		 now, quiet;
	long long		 ms, limit = c->srv->cfg.idle_timeout_ms;

	event_base_gettimeofday_cached(c->srv->base, &now);
	timersub(&now, &c->last_read, &quiet);
	ms = (long long)quiet.tv_sec * 1000 + quiet.tv_usec / 1000;
	if (ms < limit) {
		h2_timer_set(c->timer, (int)(limit - ms));
		return;
	}
	TAILQ_FOREACH(s, &c->streams, entry) {
		if (!(s->flags & (H2_S_REMOTE_DONE | H2_S_RESET)))
			break;
	}
	if (s == NULL) {
		h2_timer_set(c->timer, (int)limit);
		return;
	}
	log_info("h2 %s: nothing received for %lld ms with the request on "
	    "stream %d unfinished; closing", c->peer, ms, s->id);
	nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
}

static void
h2_conn_timercb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_conn	*c = arg;

	switch (c->state) {
	case H2_HANDSHAKE:
		c->srv->refused[H2_REFUSED_HANDSHAKE]++;
		if (h2_may_log(c->srv, H2_LOG_TIMEDOUT))
			log_warnx("h2 %s: %s not complete after %d ms "
			    "(--handshake-timeout); closing", c->peer,
			    c->ssl != NULL && !c->tls_up ? "TLS handshake" :
			    "HTTP/2 preface", c->srv->cfg.handshake_timeout_ms);
		if (c->ssl != NULL && !c->tls_up) {
			/* Nothing can be said to it in the clear. */
			h2_conn_free(c);
			return;
		}
		nghttp2_session_terminate_session(c->session,
		    NGHTTP2_SETTINGS_TIMEOUT);
		(void)h2_conn_send(c);
		h2_conn_closing(c);
		break;
	case H2_OPEN:
		if (c->nstreams > 0) {
			h2_conn_stalled(c);
			break;
		}
		log_debug("h2 %s: idle, closing", c->peer);
		nghttp2_session_terminate_session(c->session,
		    NGHTTP2_NO_ERROR);
		break;
	case H2_DRAINING:
		break;
	case H2_CLOSING:
		/* The peer did not take our last frames in time, or did
		 * not end its side in time after them. */
		h2_conn_free(c);
		return;
	}
	h2_conn_io(c);
}

static void
h2_conn_flushcb(evutil_socket_t fd, short what, void *arg)
{
	h2_conn_io(arg);
}

static void
h2_server_check_done(struct h2_server *srv)
{
	if (srv->shutting_down && srv->nconns == 0 && srv->done != NULL)
		event_active(srv->done_ev, EV_TIMEOUT, 0);
}

/* Free the connection now: every stream still open gets its
 * stream_close, which nghttp2_session_del() would not give it. */
static void
h2_conn_free(struct h2_conn *c)
{
	struct h2_server	*srv = c->srv;
	struct h2_stream	*s;

	/* From here responses to its streams are refused (h2_stream_respond
	 * checks), so stream_close handlers may answer anything they like. */
	c->state = H2_CLOSING;
	while ((s = TAILQ_FIRST(&c->streams)) != NULL)
		h2_stream_gone(s, NGHTTP2_CANCEL);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	nghttp2_session_del(c->session);
	bufferevent_free(c->bev);
	evbuffer_free(c->obuf);
	event_free(c->timer);
	event_free(c->flush);
	log_debug("h2 %s: closed", c->peer);
	free(c);
	h2_server_check_done(srv);
}

static void
h2_peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char	addr[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		evutil_inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
		snprintf(buf, len, "%s:%u", addr, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, addr,
		    sizeof addr);
		snprintf(buf, len, "[%s]:%u", addr, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "?");
}

/* Start a session on an accepted socket.  Returns -1 (the caller closes
 * fd) if anything could not be allocated. */
static int
h2_conn_new(struct h2_server *srv, evutil_socket_t fd,
    const struct sockaddr *sa)
{
	struct h2_conn		*c;
	nghttp2_settings_entry	 iv[3];
	int32_t			 conn_window;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	c->srv = srv;
	c->state = H2_HANDSHAKE;
	TAILQ_INIT(&c->streams);
	h2_peer_name(sa, c->peer, sizeof c->peer);
	if ((c->timer = evtimer_new(srv->base, h2_conn_timercb, c)) == NULL)
		goto fail;
	if ((c->obuf = evbuffer_new()) == NULL)
		goto fail;
	if ((c->flush = event_new(srv->base, -1, 0, h2_conn_flushcb,
	    c)) == NULL)
		goto fail;
	if (nghttp2_session_server_new2(&c->session, srv->callbacks, c,
	    srv->option) != 0)
		goto fail;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = srv->cfg.max_streams;
	iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
	iv[1].value = srv->cfg.max_header_list;
	iv[2].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[2].value = srv->cfg.window;
	if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 3) != 0)
		goto fail;
	/* The connection window covers several streams' windows, so one
	 * large upload does not stall the others. */
	conn_window = srv->cfg.window > (uint32_t)NGHTTP2_MAX_WINDOW_SIZE / 4 ?
	    NGHTTP2_MAX_WINDOW_SIZE : (int32_t)(srv->cfg.window * 4);
	if (conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
	    nghttp2_session_set_local_window_size(c->session,
	    NGHTTP2_FLAG_NONE, 0, conn_window) != 0)
		goto fail;
	if (srv->tls != NULL) {
		/* The handshake runs inside the bufferevent; our SETTINGS
		 * wait in its output until it is done. */
		if ((c->ssl = SSL_new(srv->tls)) == NULL)
			goto fail;
		if ((c->bev = bufferevent_openssl_socket_new(srv->base, fd,
		    c->ssl, BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			SSL_free(c->ssl);
			goto fail;
		}
		/* A peer's FIN without close_notify is an end, not an
		 * error: gRPC clients often close so. */
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else if ((c->bev = bufferevent_socket_new(srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	bufferevent_setcb(c->bev, h2_conn_readcb, h2_conn_writecb,
	    h2_conn_eventcb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, srv->cfg.max_output / 2, 0);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1) {
		bufferevent_free(c->bev);	/* closes fd */
		c->bev = NULL;
		fd = -1;
		goto fail;
	}
	if (srv->cfg.handshake_timeout_ms > 0)
		h2_timer_set(c->timer, srv->cfg.handshake_timeout_ms);
	event_base_gettimeofday_cached(srv->base, &c->last_read);
	c->accepted = c->last_read;
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	log_debug("h2 %s: connected", c->peer);
	h2_conn_io(c);		/* our SETTINGS go first */
	return 0;

fail:
	log_warnx("h2 %s: cannot set up a connection", c->peer);
	if (c->session != NULL)
		nghttp2_session_del(c->session);
	if (c->flush != NULL)
		event_free(c->flush);
	if (c->obuf != NULL)
		evbuffer_free(c->obuf);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
	if (fd == -1)
		return 0;	/* already closed */
	return -1;
}

/* The listener. */

/*
 * At max_conns: make room for a new connection by closing the oldest one
 * that has not completed its handshake (TLS, preface, SETTINGS), else the
 * oldest one closing anyway.  Idle sockets that never speak (slowloris)
 * then cannot keep a client that does speak out: they are the first to
 * go, and each lives at most handshake_timeout_ms.  Returns -1 if every
 * connection is serving: the new one is refused.
 */
static int
h2_admit(struct h2_server *srv, const struct sockaddr *sa)
{
	struct h2_conn	*c, *victim = NULL;
	struct timeval	 now, age;
	char		 peer[64];

	TAILQ_FOREACH(c, &srv->conns, entry) {
		if (c->state == H2_HANDSHAKE) {
			victim = c;
			break;
		}
		if (c->state == H2_CLOSING && victim == NULL)
			victim = c;
	}
	h2_peer_name(sa, peer, sizeof peer);
	if (victim == NULL) {
		srv->refused[H2_REFUSED_CONN]++;
		if (h2_may_log(srv, H2_LOG_REFUSED))
			log_warnx("h2: refusing %s: at the limit of %d "
			    "connections (--max-connections), all of them "
			    "serving", peer, srv->cfg.max_conns);
		return -1;
	}
	srv->refused[H2_REFUSED_EVICTED]++;
	if (h2_may_log(srv, H2_LOG_EVICTED)) {
		event_base_gettimeofday_cached(srv->base, &now);
		timersub(&now, &victim->accepted, &age);
		log_warnx("h2: at the limit of %d connections "
		    "(--max-connections): closing %s, connected %lld ms ago "
		    "and %s, to admit %s", srv->cfg.max_conns, victim->peer,
		    (long long)age.tv_sec * 1000 + age.tv_usec / 1000,
		    victim->state == H2_HANDSHAKE ? "still in its handshake" :
		    "closing", peer);
	}
	h2_conn_free(victim);
	return 0;
}

static void
h2_acceptcb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct h2_server	*srv = arg;
	int			 one = 1;

	srv->accepted++;
	if (srv->shutting_down) {
		evutil_closesocket(fd);
		return;
	}
	if (srv->nconns >= (size_t)srv->cfg.max_conns &&
	    h2_admit(srv, sa) == -1) {
		evutil_closesocket(fd);
		return;
	}
	/* Small frames of many streams: Nagle would only add latency. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (h2_conn_new(srv, fd, sa) == -1)
		evutil_closesocket(fd);
}

static void
h2_accept_errorcb(struct evconnlistener *l, void *arg)
{
	struct h2_server	*srv = arg;
	struct timeval		 tv = { 0, H2_ACCEPT_RETRY_MS * 1000 };

	log_warn("h2: accept");
	evconnlistener_disable(l);
	evtimer_add(srv->accept_retry, &tv);
}

static void
h2_accept_retrycb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_server	*srv = arg;

	if (!srv->shutting_down)
		evconnlistener_enable(srv->listener);
}

struct h2_server *
h2_server_new(struct event_base *base, const struct h2_config *cfg)
{
	struct h2_server	*srv;
	nghttp2_session_callbacks *cbs;

	if ((srv = calloc(1, sizeof *srv)) == NULL) {
		log_warn("h2: server");
		return NULL;
	}
	srv->base = base;
	srv->cfg = *cfg;
	TAILQ_INIT(&srv->conns);
	if (cfg->cb == NULL || cfg->max_streams == 0 ||
	    cfg->max_header_list < 1024 || cfg->max_output < 16384 ||
	    cfg->max_held == 0 || cfg->max_held_total < cfg->max_held ||
	    cfg->max_pending == 0 ||
	    cfg->max_pending_total < cfg->max_pending ||
	    cfg->max_conns < 1 || cfg->window < 65535 ||
	    cfg->window > (uint32_t)NGHTTP2_MAX_WINDOW_SIZE) {
		log_warnx("h2: configuration out of range");
		goto fail;
	}

	if ((srv->listener = listen_tcp(base, cfg->listen, "h2", h2_acceptcb,
	    srv, &srv->port)) == NULL)
		goto fail;
	evconnlistener_set_error_cb(srv->listener, h2_accept_errorcb);

	/* Everything shutdown needs is allocated now, so that stopping
	 * cannot fail for want of memory. */
	if ((srv->accept_retry = evtimer_new(base, h2_accept_retrycb,
	    srv)) == NULL ||
	    (srv->grace = evtimer_new(base, h2_gracecb, srv)) == NULL ||
	    (srv->done_ev = event_new(base, -1, 0, h2_donecb, srv)) == NULL ||
	    (srv->log_tick = evtimer_new(base, h2_log_tickcb, srv)) == NULL)
		goto fail;
	if (cfg->tls != NULL)
		h2_server_set_tls(srv, cfg->tls);
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		goto fail;
	srv->callbacks = cbs;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
	    h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	    h2_on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
	    h2_on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    h2_on_stream_close);
	nghttp2_session_callbacks_set_error_callback2(cbs, h2_on_error);
	if (nghttp2_option_new(&srv->option) != 0)
		goto fail;
	/* Closed streams are kept only for the (deprecated) priority tree;
	 * gRPC clients do not use it, and they would cost memory. */
	nghttp2_option_set_no_closed_streams(srv->option, 1);
	return srv;

fail:
	h2_server_free(srv);
	return NULL;
}

void
h2_server_set_tls(struct h2_server *srv, SSL_CTX *ctx)
{
	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(srv->tls);
	srv->tls = ctx;
}

int
h2_server_tls(const struct h2_server *srv)
{
	return srv->tls != NULL;
}

int
h2_server_port(const struct h2_server *srv)
{
	return srv->port;
}

void
h2_server_stats(const struct h2_server *srv, struct h2_stats *st)
{
	st->accepted = srv->accepted;
	st->conns = srv->nconns;
	st->streams = srv->nstreams;
	memcpy(st->refused, srv->refused, sizeof st->refused);
}

static void
h2_gracecb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_server	*srv = arg;
	struct h2_conn		*c;

	if (srv->nconns > 0)
		log_info("h2: closing %zu connections still busy after the "
		    "grace period", srv->nconns);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		h2_conn_free(c);
}

static void
h2_donecb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_server	*srv = arg;

	evtimer_del(srv->grace);
	if (srv->done != NULL)
		srv->done(srv->done_arg);
}

void
h2_server_shutdown(struct h2_server *srv, int grace_ms,
    void (*done)(void *), void *arg)
{
	struct h2_conn	*c, *next;

	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	srv->done = done;
	srv->done_arg = arg;
	if (srv->listener != NULL)
		evconnlistener_disable(srv->listener);
	h2_timer_set(srv->grace, grace_ms);

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		switch (c->state) {
		case H2_HANDSHAKE:
			h2_conn_closing(c);
			break;
		case H2_OPEN:
			/* Streams up to the last one seen will be served;
			 * the client retries later ones elsewhere. */
			nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
			    nghttp2_session_get_last_proc_stream_id(c->session),
			    NGHTTP2_NO_ERROR, NULL, 0);
			c->state = H2_DRAINING;
			evtimer_del(c->timer);
			break;
		default:
			break;
		}
		/* Write from the loop, not here: freeing connections
		 * while walking the list would break the walk. */
		event_active(c->flush, EV_WRITE, 0);
	}
	h2_server_check_done(srv);
}

void
h2_server_free(struct h2_server *srv)
{
	struct h2_conn	*c;

	if (srv == NULL)
		return;
	srv->done = NULL;	/* no done callback from here */
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		h2_conn_free(c);
	if (srv->listener != NULL)
		evconnlistener_free(srv->listener);
	if (srv->accept_retry != NULL)
		event_free(srv->accept_retry);
	if (srv->grace != NULL)
		event_free(srv->grace);
	if (srv->done_ev != NULL)
		event_free(srv->done_ev);
	if (srv->log_tick != NULL)
		event_free(srv->log_tick);
	SSL_CTX_free(srv->tls);
	if (srv->callbacks != NULL)
		nghttp2_session_callbacks_del(srv->callbacks);
	if (srv->option != NULL)
		nghttp2_option_del(srv->option);
	free(srv);
}
