/* A gRPC client on nghttp2 and libevent; see grpc_client.h. */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/grpc_client.h"
#include "net/tls.h"
#include "net/tcp.h"
#include "core/hex.h"
#include "core/log.h"

#define GRPCC_CANCELLED		1
#define GRPCC_UNKNOWN		2
#define GRPCC_DEADLINE		4
#define GRPCC_PERMISSION	7
#define GRPCC_RESOURCE		8
#define GRPCC_UNIMPLEMENTED	12
#define GRPCC_INTERNAL		13
#define GRPCC_UNAVAILABLE	14
#define GRPCC_UNAUTHENTICATED	16

/*
 * A call lives from grpcc_call() until nghttp2 is done with its stream
 * (the stream-close callback), or until the connection is freed: nghttp2
 * keeps pointers to it (stream user data, the request body's data source)
 * as long as the stream or its queued HEADERS exist, which can outlast the
 * call's completion (a deadline, an oversized reply).  "Finished" means
 * done has been called; it is called once.
 */
struct grpcc_call {
	struct grpcc_conn	*conn;
	int32_t			 id;
	uint8_t			*req;		/* prefix + message */
	size_t			 reqlen, reqoff;
	struct evbuffer		*resp;
	int			 status;	/* -1 until grpc-status */
	char			*message;
	int			 http_status;
	int			 finished;
	int			 sent;		/* END_STREAM handed out */
	struct event		*timer;
	grpcc_msg_fn		 msg;		/* a streamed reply's messages */
	grpcc_done_fn		 done;
	void			*arg;
	TAILQ_ENTRY(grpcc_call)	 entry;
};

struct grpcc_conn {
	struct event_base	*base;
	struct grpcc_config	 cfg;
	struct bufferevent	*bev;
	nghttp2_session		*session;
	struct event		*pump_ev;	/* deferred nghttp2 send */
	struct addrinfo		*ai, *ai_next;	/* addresses left to try */
	int			 connected;	/* TCP up, preface queued */
	int			 draining;	/* GOAWAY received */
	int			 dead;		/* failed: no more I/O */
	int			 closing;	/* grpcc_close() was called */
	int			 depth;		/* inside our own callbacks */
	char			*authority;
	SSL_CTX			*tls;		/* a reference, or NULL */
	char			*server_name;	/* checked in its certificate */
	char			 why[256];	/* why it died */
	TAILQ_HEAD(, grpcc_call) calls;		/* every call still allocated */
	size_t			 npending;	/* of which not finished */
};

static void	grpcc_schedule_pump(struct grpcc_conn *);
static int	grpcc_try_connect(struct grpcc_conn *, const char **);

int
grpcc_split_addr(const char *addr, char **host, char **port)
{
	const char	*colon, *end;

	*host = *port = NULL;
	if (addr[0] == '[') {
		if ((end = strchr(addr, ']')) == NULL || end[1] != ':')
			return -1;
		*host = strndup(addr + 1, (size_t)(end - addr - 1));
		colon = end + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL || colon == addr)
			return -1;
		*host = strndup(addr, (size_t)(colon - addr));
	}
	if (colon[1] == '\0' || (*port = strdup(colon + 1)) == NULL ||
	    *host == NULL) {
		free(*host);
		free(*port);
		*host = *port = NULL;
		return -1;
	}
	return 0;
}

/*
 * Entry and exit of every callback libevent makes into this module: a
 * grpcc_close() from inside an owner's callback (done, on_state) only marks
 * the connection, and the outermost exit frees it, because nghttp2 and the
 * bufferevent are still on the stack.
 */
static void	grpcc_free(struct grpcc_conn *);

static void
grpcc_enter(struct grpcc_conn *conn)
{
	conn->depth++;
}

static void
grpcc_leave(struct grpcc_conn *conn)
{
	if (--conn->depth == 0 && conn->closing)
		grpcc_free(conn);
}

/* Free a call that nghttp2 no longer refers to. */
static void
grpcc_call_free(struct grpcc_call *c)
{
	TAILQ_REMOVE(&c->conn->calls, c, entry);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->resp != NULL)
		evbuffer_free(c->resp);
	free(c->req);
	free(c->message);
	free(c);
}

/* Complete a call: hand its reply or error to done, once. */
static void
grpcc_call_finish(struct grpcc_call *c, int status, const char *msg)
{
	struct grpcc_conn	*conn = c->conn;
	unsigned char		*p = NULL;
	size_t			 len = 0, have;
	uint32_t		 mlen;

	if (c->finished)
		return;
	c->finished = 1;
	conn->npending--;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}

	if (status == 0 && c->msg != NULL) {
		/* The messages went to c->msg as they came: nothing may be
		 * left of one, or the stream ended inside it. */
		if (evbuffer_get_length(c->resp) != 0) {
			status = GRPCC_INTERNAL;
			msg = "the stream ended inside a message";
		}
	} else if (status == 0) {
		/* One length-prefixed, uncompressed message. */
		have = evbuffer_get_length(c->resp);
		p = have >= 5 ? evbuffer_pullup(c->resp, -1) : NULL;
		if (p == NULL) {
			status = GRPCC_INTERNAL;
			msg = "reply without a message";
		} else {
			mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
			    (uint32_t)p[3] << 8 | p[4];
			if (p[0] != 0) {
				status = GRPCC_INTERNAL;
				msg = "compressed reply";
			} else if (have != 5 + (size_t)mlen) {
				status = GRPCC_INTERNAL;
				msg = "reply length does not match its prefix";
			} else {
				p += 5;
				len = mlen;
			}
		}
	}
	if (status != 0) {
		p = NULL;
		len = 0;
	}
	c->done(c->arg, status, msg, p, len);
	/* The reply was lent to done only; drop it now. */
	evbuffer_free(c->resp);
	c->resp = NULL;
}

/* Fail every pending call and mark the connection dead. */
static void
grpcc_fail(struct grpcc_conn *conn, const char *why)
{
	struct grpcc_call	*c, *next;
	char			 sent_why[320];

	if (conn->dead)
		return;
	conn->dead = 1;
	snprintf(conn->why, sizeof conn->why, "%s", why);
	/* Whatever else arrives would only be read and dropped. */
	if (conn->bev != NULL)
		bufferevent_disable(conn->bev, EV_READ);
	grpcc_enter(conn);
	snprintf(sent_why, sizeof sent_why, "%s, after the request was "
	    "sent: its outcome is unknown", conn->why);
	/* done may start calls (refused now) or close: walk carefully. */
	for (c = TAILQ_FIRST(&conn->calls); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->sent)
			grpcc_call_finish(c, GRPCC_UNKNOWN, sent_why);
		else
			grpcc_call_finish(c, GRPCC_UNAVAILABLE, conn->why);
	}
	if (conn->cfg.on_state != NULL && !conn->closing)
		conn->cfg.on_state(conn, 0, conn->why, conn->cfg.arg);
	grpcc_leave(conn);
}

/* Whether the server's end is closed, as far as the socket says now: its
 * FIN (or a reset) is next in line. */
static int
grpcc_peer_closed(struct grpcc_conn *conn)
{
	char	c;
	ssize_t	n;

	n = recv(bufferevent_getfd(conn->bev), &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n == -1 && (errno == ECONNRESET || errno == EPIPE));
}

/*
 * Move what nghttp2 wants to send into the socket's buffer.  Never called
 * from inside an nghttp2 callback: nghttp2 does not allow sending while it
 * is receiving, so calls started from a done function are sent by the
 * pump event instead.
 */
static void
grpcc_pump(struct grpcc_conn *conn)
{
	const uint8_t	*data;
	ssize_t		 n;

	if (conn->dead || !conn->connected)
		return;
	/* A server that has closed its end (it died, it was killed) would
	 * only answer these bytes with a reset, and the calls they carry
	 * would count as sent, their outcome unknown, though the server
	 * never saw them.  Look for its FIN first. */
	if (nghttp2_session_want_write(conn->session) &&
	    grpcc_peer_closed(conn)) {
		grpcc_fail(conn, "connection closed by the server");
		return;
	}
	while ((n = nghttp2_session_mem_send(conn->session, &data)) > 0) {
		if (bufferevent_write(conn->bev, data, (size_t)n) == -1) {
			grpcc_fail(conn, "out of memory");
			return;
		}
	}
	if (n < 0) {
		grpcc_fail(conn, nghttp2_strerror((int)n));
		return;
	}
	if (!nghttp2_session_want_read(conn->session) &&
	    !nghttp2_session_want_write(conn->session))
		grpcc_fail(conn, conn->draining ?
		    "the server closed the connection (GOAWAY)" :
		    "connection closed by the server");
}

static void
grpcc_on_pump(evutil_socket_t fd, short what, void *arg)
{
	struct grpcc_conn	*conn = arg;

	grpcc_enter(conn);
	grpcc_pump(conn);
	grpcc_leave(conn);
}

/* Send at the next loop pass: batches the calls started in this one. */
static void
grpcc_schedule_pump(struct grpcc_conn *conn)
{
	if (!conn->dead && conn->connected)
		event_active(conn->pump_ev, EV_WRITE, 0);
}

static ssize_t
grpcc_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct grpcc_call	*c = src->ptr;
	size_t			 n = c->reqlen - c->reqoff;

	if (n > len)
		n = len;
	memcpy(buf, c->req + c->reqoff, n);
	c->reqoff += n;
	if (c->reqoff == c->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int
grpcc_on_header(nghttp2_session *s, const nghttp2_frame *f,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *user)
{
	struct grpcc_call	*c;
	char			*end;
	size_t			 i, o;
	int			 hi, lo;

	c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (c == NULL || c->finished)
		return 0;
	/* nghttp2 NUL-terminates names and values. */
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		c->http_status = atoi((const char *)value);
	else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		c->status = (int)strtol((const char *)value, &end, 10);
		if (end == (const char *)value || *end != '\0' ||
		    c->status < 0)
			c->status = GRPCC_INTERNAL;
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
		/* Percent-decoded; a malformed escape is kept as is. */
		free(c->message);
		if ((c->message = malloc(valuelen + 1)) == NULL)
			return 0;
		for (i = o = 0; i < valuelen; i++) {
			if (value[i] == '%' && i + 2 < valuelen &&
			    (hi = hex_digit(value[i + 1])) != -1 &&
			    (lo = hex_digit(value[i + 2])) != -1) {
				c->message[o++] = (char)(hi << 4 | lo);
				i += 2;
			} else
				c->message[o++] = (char)value[i];
		}
		c->message[o] = '\0';
	}
	return 0;
}

/* Stop a call's stream and complete it with status. */
static void
grpcc_call_cancel(struct grpcc_call *c, int status, const char *why)
{
	nghttp2_submit_rst_stream(c->conn->session, NGHTTP2_FLAG_NONE, c->id,
	    NGHTTP2_CANCEL);
	grpcc_call_finish(c, status, why);
}

/* Hand the whole messages of a streamed reply to c->msg, keeping the
 * start of the next. */
static void
grpcc_stream_messages(struct grpcc_call *c)
{
	unsigned char	*p;
	size_t		 have;
	uint32_t	 mlen;

	while (!c->finished && (have = evbuffer_get_length(c->resp)) >= 5) {
		p = evbuffer_pullup(c->resp, 5);
		mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 8 | p[4];
		if (p[0] != 0) {
			grpcc_call_cancel(c, GRPCC_INTERNAL,
			    "compressed reply");
			return;
		}
		if (mlen > c->conn->cfg.max_reply) {
			grpcc_call_cancel(c, GRPCC_RESOURCE,
			    "reply message too large");
			return;
		}
		if (have < 5 + (size_t)mlen)
			return;
		if ((p = evbuffer_pullup(c->resp, 5 + (ssize_t)mlen)) ==
		    NULL) {
			grpcc_call_cancel(c, GRPCC_RESOURCE, "out of memory");
			return;
		}
		if (c->msg(c->arg, p + 5, mlen) == -1) {
			grpcc_call_cancel(c, GRPCC_CANCELLED,
			    "cancelled by the client");
			return;
		}
		evbuffer_drain(c->resp, 5 + (size_t)mlen);
	}
}

static int
grpcc_on_data(nghttp2_session *s, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *user)
{
	struct grpcc_conn	*conn = user;
	struct grpcc_call	*c;

	c = nghttp2_session_get_stream_user_data(s, id);
	if (c == NULL || c->finished)
		return 0;
	/* A stream's messages leave the buffer as they complete, so only
	 * one (checked against max_reply by its prefix) and a frame's worth
	 * after it are ever held. */
	if ((c->msg == NULL && evbuffer_get_length(c->resp) + len >
	    conn->cfg.max_reply + 5) ||
	    evbuffer_add(c->resp, data, len) == -1) {
		grpcc_call_cancel(c, GRPCC_RESOURCE, "reply too large");
		return 0;
	}
	if (c->msg != NULL)
		grpcc_stream_messages(c);
	return 0;
}

/* A response without grpc-status: gRPC's HTTP-to-status mapping. */
static int
grpcc_http_status(int http)
{
	switch (http) {
	case 200:
	case 400:
		return GRPCC_INTERNAL;
	case 401:
		return GRPCC_UNAUTHENTICATED;
	case 403:
		return GRPCC_PERMISSION;
	case 404:
		return GRPCC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPCC_UNAVAILABLE;
	default:
		return GRPCC_UNKNOWN;
	}
}

/*
 * The end of a stream, also for a request whose HEADERS were never sent
 * (cancelled, or refused after GOAWAY): nghttp2 opens the stream when it
 * prepares the HEADERS and closes it on failure, so every submitted call
 * comes through here unless the session is deleted first.
 */
static int
grpcc_on_close(nghttp2_session *s, int32_t id, uint32_t error, void *user)
{
	struct grpcc_call	*c;
	char			 why[80];

	if ((c = nghttp2_session_get_stream_user_data(s, id)) == NULL)
		return 0;
	if (c->finished)
		;
	else if (c->status >= 0)
		grpcc_call_finish(c, c->status, c->message);
	else if (error != 0) {
		snprintf(why, sizeof why, "stream reset: %s",
		    nghttp2_http2_strerror(error));
		grpcc_call_finish(c, error == NGHTTP2_REFUSED_STREAM ?
		    GRPCC_UNAVAILABLE : GRPCC_INTERNAL, why);
	} else {
		snprintf(why, sizeof why, "no grpc-status (HTTP %d)",
		    c->http_status);
		grpcc_call_finish(c, grpcc_http_status(c->http_status), why);
	}
	nghttp2_session_set_stream_user_data(s, id, NULL);
	grpcc_call_free(c);
	return 0;
}

static int
grpcc_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct grpcc_conn	*conn = user;

	/* Streams above last_stream_id get REFUSED_STREAM from nghttp2. */
	if (f->hd.type == NGHTTP2_GOAWAY)
		conn->draining = 1;
	return 0;
}

/* The request's last frame is out: from now on the server may act on it. */
static int
grpcc_on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct grpcc_call	*c;

	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id)) !=
	    NULL)
		c->sent = 1;
	return 0;
}

static void
grpcc_on_read(struct bufferevent *bev, void *arg)
{
	struct grpcc_conn	*conn = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	unsigned char		*p;
	size_t			 len;
	ssize_t			 n;

	grpcc_enter(conn);
	/* Chunk by chunk: pulling up all of it would copy. */
	while (!conn->dead && (len = evbuffer_get_contiguous_space(in)) > 0) {
		p = evbuffer_pullup(in, (ssize_t)len);
		n = nghttp2_session_mem_recv(conn->session, p, len);
		if (n < 0) {
			grpcc_fail(conn, nghttp2_strerror((int)n));
			break;
		}
		evbuffer_drain(in, (size_t)n);
	}
	grpcc_pump(conn);
	grpcc_leave(conn);
}

/* The OpenSSL error to report of those the bufferevent queued, or 0. */
static unsigned long
grpcc_tls_error(struct bufferevent *bev)
{
	unsigned long	e, best = 0;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		best = tls_pick_error(best, e);
	return best;
}

static void
grpcc_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct grpcc_conn	*conn = arg;
	nghttp2_settings_entry	 iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24 },
	};
	const char		*err;
	char			*tls, buf[256];
	unsigned long		 e;
	int			 fd, one = 1, saved;

	grpcc_enter(conn);
	if ((what & BEV_EVENT_CONNECTED) && conn->tls != NULL &&
	    !tls_alpn_h2(bufferevent_openssl_get_ssl(bev))) {
		grpcc_fail(conn, "TLS: the server did not agree to ALPN h2");
		goto out;
	}
	if (what & BEV_EVENT_CONNECTED) {
		if (conn->ai != NULL)
			freeaddrinfo(conn->ai);
		conn->ai = conn->ai_next = NULL;
		fd = bufferevent_getfd(bev);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (conn->cfg.user_timeout_ms > 0)
			(void)tcp_user_timeout(fd, conn->cfg.user_timeout_ms);
		bufferevent_set_timeouts(bev, NULL, NULL);
		if (nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE,
		    iv, sizeof iv / sizeof iv[0]) != 0 ||
		    nghttp2_session_set_local_window_size(conn->session,
		    NGHTTP2_FLAG_NONE, 0, 1 << 26) != 0) {
			grpcc_fail(conn, "out of memory");
			goto out;
		}
		conn->connected = 1;
		grpcc_pump(conn);
		if (!conn->dead && conn->cfg.on_state != NULL)
			conn->cfg.on_state(conn, 1, NULL, conn->cfg.arg);
		goto out;
	}

	if (what & BEV_EVENT_TIMEOUT)
		err = conn->connected ? "timed out" : "connect timed out";
	else if (conn->tls != NULL && (e = grpcc_tls_error(bev)) != 0) {
		/* Also after "connected": with TLS 1.3 the server checks
		 * our certificate after the client's side of the handshake
		 * is done, and says no with an alert. */
		tls = tls_failure(bufferevent_openssl_get_ssl(bev), e);
		snprintf(buf, sizeof buf, "TLS with %s failed: %s",
		    conn->server_name, tls != NULL ? tls : "out of memory");
		free(tls);
		/* Not retried on another address: a certificate that does
		 * not verify is no better there. */
		grpcc_fail(conn, buf);
		goto out;
	} else if (what & BEV_EVENT_EOF)
		err = "connection closed by the server";
	else {
		saved = EVUTIL_SOCKET_ERROR();
		err = strerror(saved != 0 ? saved : ECONNRESET);
	}
	/* A refused address is not the last word while others remain. */
	if (!conn->connected && !conn->closing && conn->ai_next != NULL &&
	    grpcc_try_connect(conn, &err) == 0)
		goto out;
	grpcc_fail(conn, err);
out:
	grpcc_leave(conn);
}

/* Connect to conn->ai_next, replacing the bufferevent; 0 or -1. */
static int
grpcc_try_connect(struct grpcc_conn *conn, const char **err)
{
	struct addrinfo	*ai;
	struct timeval	 tv;
	SSL		*ssl;

	while ((ai = conn->ai_next) != NULL) {
		conn->ai_next = ai->ai_next;
		if (conn->bev != NULL)
			bufferevent_free(conn->bev);
		conn->bev = NULL;
		if (conn->tls != NULL) {
			if ((ssl = tls_client_ssl(conn->tls,
			    conn->server_name)) == NULL) {
				*err = "out of memory";
				return -1;
			}
			conn->bev = bufferevent_openssl_socket_new(conn->base,
			    -1, ssl, BUFFEREVENT_SSL_CONNECTING,
			    BEV_OPT_CLOSE_ON_FREE);
			if (conn->bev == NULL)
				SSL_free(ssl);
			else
				bufferevent_openssl_set_allow_dirty_shutdown(
				    conn->bev, 1);
		} else
			conn->bev = bufferevent_socket_new(conn->base, -1,
			    BEV_OPT_CLOSE_ON_FREE);
		if (conn->bev == NULL) {
			*err = "out of memory";
			return -1;
		}
		bufferevent_setcb(conn->bev, grpcc_on_read, NULL,
		    grpcc_on_event, conn);
		bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
		if (conn->cfg.connect_timeout_ms > 0) {
			tv.tv_sec = conn->cfg.connect_timeout_ms / 1000;
			tv.tv_usec = (conn->cfg.connect_timeout_ms % 1000) *
			    1000;
			bufferevent_set_timeouts(conn->bev, &tv, &tv);
		}
		/* A refusal found at once is reported through the event
		 * callback, like one found later. */
		if (bufferevent_socket_connect(conn->bev, ai->ai_addr,
		    (int)ai->ai_addrlen) == 0)
			return 0;
		*err = strerror(errno);
	}
	return -1;
}

struct grpcc_conn *
grpcc_connect(struct event_base *base, const struct grpcc_config *cfg,
    const char **err)
{
	struct grpcc_conn		*conn;
	nghttp2_session_callbacks	*cb;
	nghttp2_option			*opt;
	struct addrinfo			 hints, *ai = NULL;
	char				*host, *port;
	int				 rv;

	*err = NULL;
	if (grpcc_split_addr(cfg->addr, &host, &port) == -1) {
		*err = "address must be HOST:PORT or [V6]:PORT";
		return NULL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port, &hints, &ai);
	free(port);
	if (rv != 0) {
		free(host);
		*err = gai_strerror(rv);
		return NULL;
	}
	if ((conn = calloc(1, sizeof *conn)) == NULL) {
		free(host);
		freeaddrinfo(ai);
		*err = "out of memory";
		return NULL;
	}
	if (cfg->tls != NULL) {
		SSL_CTX_up_ref(cfg->tls);
		conn->tls = cfg->tls;
		conn->server_name = cfg->server_name != NULL ?
		    strdup(cfg->server_name) : strdup(host);
	}
	free(host);
	TAILQ_INIT(&conn->calls);
	conn->base = base;
	conn->cfg = *cfg;
	conn->cfg.addr = NULL;		/* the caller's; not kept */
	conn->cfg.tls = NULL;		/* conn->tls holds it */
	conn->cfg.server_name = NULL;
	conn->ai = conn->ai_next = ai;
	if (conn->cfg.max_reply == 0)
		conn->cfg.max_reply = 4 << 20;
	*err = "out of memory";
	if ((conn->authority = strdup(cfg->addr)) == NULL ||
	    (conn->tls != NULL && conn->server_name == NULL))
		goto fail;
	if ((conn->pump_ev = event_new(base, -1, 0, grpcc_on_pump,
	    conn)) == NULL)
		goto fail;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_header_callback(cb, grpcc_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    grpcc_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    grpcc_on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    grpcc_on_frame);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
	    grpcc_on_frame_send);
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		goto fail;
	}
	/*
	 * Until the server's SETTINGS arrive nghttp2 would assume 100
	 * concurrent streams, and a server allowing fewer refuses the rest
	 * (REFUSED_STREAM).  Assume one: the SETTINGS come within a round
	 * trip, and the queued calls go out then.
	 */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
	rv = nghttp2_session_client_new2(&conn->session, cb, conn, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (rv != 0)
		goto fail;
	if (grpcc_try_connect(conn, err) == -1)
		goto fail;
	*err = NULL;
	return conn;
fail:
	if (conn->ai != NULL)
		freeaddrinfo(conn->ai);
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	if (conn->session != NULL)
		nghttp2_session_del(conn->session);
	if (conn->pump_ev != NULL)
		event_free(conn->pump_ev);
	free(conn->authority);
	SSL_CTX_free(conn->tls);
	free(conn->server_name);
	free(conn);
	return NULL;
}

static void
grpcc_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct grpcc_call	*c = arg;
	struct grpcc_conn	*conn = c->conn;

	grpcc_enter(conn);
	/*
	 * Also cancels HEADERS still queued (beyond the server's stream
	 * limit); the stream-close callback frees the call afterwards.
	 */
	if (!conn->dead)
		nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE,
		    c->id, NGHTTP2_CANCEL);
	grpcc_call_finish(c, GRPCC_DEADLINE, "deadline exceeded (client)");
	grpcc_schedule_pump(conn);
	grpcc_leave(conn);
}

static int	grpcc_start(struct grpcc_conn *, const char *, const void *,
		    size_t, int, const struct grpcc_md *, size_t, grpcc_msg_fn,
		    grpcc_done_fn, void *);

int
grpcc_call(struct grpcc_conn *conn, const char *path, const void *req,
    size_t len, int timeout_ms, grpcc_done_fn done, void *arg)
{
	return grpcc_start(conn, path, req, len, timeout_ms, NULL, 0, NULL,
	    done, arg);
}

int
grpcc_call_md(struct grpcc_conn *conn, const char *path, const void *req,
    size_t len, int timeout_ms, const struct grpcc_md *md, size_t nmd,
    grpcc_done_fn done, void *arg)
{
	return grpcc_start(conn, path, req, len, timeout_ms, md, nmd, NULL,
	    done, arg);
}

int
grpcc_call_stream(struct grpcc_conn *conn, const char *path, const void *req,
    size_t len, int timeout_ms, grpcc_msg_fn msg, grpcc_done_fn done,
    void *arg)
{
	return grpcc_start(conn, path, req, len, timeout_ms, NULL, 0, msg,
	    done, arg);
}

static int
grpcc_start(struct grpcc_conn *conn, const char *path, const void *req,
    size_t len, int timeout_ms, const struct grpcc_md *md, size_t nmd,
    grpcc_msg_fn msg, grpcc_done_fn done, void *arg)
{
	struct grpcc_call	*c;
	nghttp2_data_provider	 dp;
	struct timeval		 tv;
	char			 tmo[32];
	nghttp2_nv		 nv[7 + GRPCC_MAX_MD];
	size_t			 nnv = 0, i;

#define NV(n, v) do {							\
	nv[nnv].name = (uint8_t *)(n);					\
	nv[nnv].namelen = strlen(n);					\
	nv[nnv].value = (uint8_t *)(v);					\
	nv[nnv].valuelen = strlen(v);					\
	nv[nnv].flags = NGHTTP2_NV_FLAG_NONE;				\
	nnv++;								\
} while (0)

	if (conn->dead || conn->draining || conn->closing ||
	    len > UINT32_MAX - 5 || nmd > GRPCC_MAX_MD)
		return -1;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	if ((c->req = malloc(len + 5)) == NULL ||
	    (c->resp = evbuffer_new()) == NULL)
		goto fail;
	c->req[0] = 0;
	c->req[1] = (uint8_t)(len >> 24);
	c->req[2] = (uint8_t)(len >> 16);
	c->req[3] = (uint8_t)(len >> 8);
	c->req[4] = (uint8_t)len;
	if (len > 0)
		memcpy(c->req + 5, req, len);
	c->reqlen = len + 5;
	c->conn = conn;
	c->status = -1;
	c->msg = msg;
	c->done = done;
	c->arg = arg;

	NV(":method", "POST");
	NV(":scheme", conn->tls != NULL ? "https" : "http");
	NV(":path", path);
	NV(":authority", conn->authority);
	NV("content-type", "application/grpc");
	NV("te", "trailers");
	if (timeout_ms > 0) {
		/* At most 8 digits (PROTOCOL-HTTP2): seconds past that. */
		if (timeout_ms <= 99999999)
			snprintf(tmo, sizeof tmo, "%dm", timeout_ms);
		else
			snprintf(tmo, sizeof tmo, "%dS", timeout_ms / 1000);
		NV("grpc-timeout", tmo);
		if ((c->timer = evtimer_new(conn->base, grpcc_on_deadline,
		    c)) == NULL)
			goto fail;
	}
	/* nghttp2 copies names and values when the request is submitted. */
	for (i = 0; i < nmd; i++)
		NV(md[i].name, md[i].value);
#undef NV
	dp.source.ptr = c;
	dp.read_callback = grpcc_read_body;
	c->id = nghttp2_submit_request(conn->session, NULL, nv, nnv, &dp, c);
	if (c->id < 0)
		goto fail;
	TAILQ_INSERT_TAIL(&conn->calls, c, entry);
	conn->npending++;
	if (c->timer != NULL) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		if (evtimer_add(c->timer, &tv) == -1) {
			/* Submitted: it must end through nghttp2 now. */
			nghttp2_submit_rst_stream(conn->session,
			    NGHTTP2_FLAG_NONE, c->id, NGHTTP2_CANCEL);
			event_free(c->timer);
			c->timer = NULL;
			c->finished = 1;
			conn->npending--;
			grpcc_schedule_pump(conn);
			return -1;
		}
	}
	grpcc_schedule_pump(conn);
	return 0;
fail:
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->resp != NULL)
		evbuffer_free(c->resp);
	free(c->req);
	free(c);
	return -1;
}

size_t
grpcc_pending(const struct grpcc_conn *conn)
{
	return conn->npending;
}

int
grpcc_is_up(const struct grpcc_conn *conn)
{
	return conn->connected && !conn->dead && !conn->draining &&
	    !conn->closing;
}

static void
grpcc_free(struct grpcc_conn *conn)
{
	struct grpcc_call	*c;

	/* After the session: it must not call back into freed calls. */
	if (conn->bev != NULL)
		bufferevent_free(conn->bev);
	nghttp2_session_del(conn->session);
	while ((c = TAILQ_FIRST(&conn->calls)) != NULL)
		grpcc_call_free(c);
	event_free(conn->pump_ev);
	if (conn->ai != NULL)
		freeaddrinfo(conn->ai);
	free(conn->authority);
	SSL_CTX_free(conn->tls);
	free(conn->server_name);
	free(conn);
}

void
grpcc_close(struct grpcc_conn *conn)
{
	if (conn == NULL || conn->closing)
		return;
	grpcc_enter(conn);
	conn->closing = 1;
	grpcc_fail(conn, "connection closed");
	grpcc_leave(conn);
}
