/*
 * The Maelstrom node runtime; the contract is in maelstrom.h and the
 * protocol in ../shared/docs/maelstrom.md.
 */
#include "config.h"

#include <sys/stat.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/flags.h"
#include "core/log.h"
#include "maelstrom/maelstrom.h"
#include "core/u64map.h"
#include "core/xmalloc.h"

/* Maelstrom stops reading a node that writes to a client it has closed,
 * which it does 5 s after the request; 4.5 s leaves room for the pipe. */
#define MAEL_DEFAULT_DEADLINE	"4500"
/* Big enough for any message of the workloads (broadcast and kafka reach
 * megabytes), small enough that a runaway line cannot exhaust memory. */
#define MAEL_DEFAULT_MAX_LINE	"67108864"
/* Messages held before init; Maelstrom sends init first, so this is
 * only a bound against a misbehaving peer. */
#define MAEL_MAX_HELD		100000
#define MAEL_READ_CHUNK		65536

const struct flag mael_flags[] = {
	{ "reply-deadline", FLAG_INT, "MS", MAEL_DEFAULT_DEADLINE, 1, 600000,
	  "drop a reply to a client this long after its request" },
	{ "max-line", FLAG_INT, "BYTES", MAEL_DEFAULT_MAX_LINE, 1024,
	  (long long)1 << 40, "drop input lines longer than this" },
	{ NULL, 0, NULL, NULL, 0, 0, NULL }
};

static const struct flag_group mael_flag_group = { "Maelstrom node",
    mael_flags };
const struct flag_group *const mael_flag_groups[] = { &mael_flag_group,
    NULL };

static const char *const mael_services[] = {
	"lin-kv", "seq-kv", "lww-kv", "lin-tso", NULL
};

struct mael_lines {
	struct evbuffer	*buf;
	size_t		 scanned;	/* leading bytes known to hold no LF */
	size_t		 max_line;
	int		 discarding;	/* inside an over-long line */
	size_t		 dropped;
};

struct mael_rpc {
	struct mael	*m;
	uint64_t	 id;
	struct event	*timer;
	mael_rpc_fn	 fn;
	void		*arg;
};

struct mael {
	struct event_base	*base;
	struct mael_config	 cfg;

	struct mael_lines	*lines;
	struct event		*rev;
	int			 in_pollable;
	int			 in_flags;	/* to restore at exit */
	int			 eof;

	struct evbuffer		*out;
	struct event		*wev;
	int			 out_pollable;
	int			 out_flags;
	int			 out_dead;

	char			*node_id;
	char			**node_ids;
	size_t			 nnodes;
	int			 node_index;

	struct mael_msg		**held;
	size_t			 nheld;

	json_int_t		 next_msg_id;
	struct u64map		*rpcs;
	json_t			*peers;		/* clients that wrote to us */
};

uint64_t
mael_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
mael_is_client(const char *id)
{
	if (id[0] != 'c' || id[1] == '\0')
		return 0;
	for (id++; *id != '\0'; id++) {
		if (*id < '0' || *id > '9')
			return 0;
	}
	return 1;
}

/* Line framing. */

struct mael_lines *
mael_lines_new(size_t max_line)
{
	struct mael_lines	*l;

	l = xcalloc(1, sizeof *l);
	if ((l->buf = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	l->max_line = max_line;
	return l;
}

void
mael_lines_free(struct mael_lines *l)
{
	if (l == NULL)
		return;
	evbuffer_free(l->buf);
	free(l);
}

int
mael_lines_feed(struct mael_lines *l, const void *p, size_t len)
{
	return evbuffer_add(l->buf, p, len);
}

int
mael_lines_read(struct mael_lines *l, int fd)
{
	return evbuffer_read(l->buf, fd, MAEL_READ_CHUNK);
}

size_t
mael_lines_dropped(const struct mael_lines *l)
{
	return l->dropped;
}

char *
mael_lines_next(struct mael_lines *l, size_t *len, int at_eof)
{
	struct evbuffer_ptr	 p;
	size_t			 total, pos;
	char			*line;

	for (;;) {
		total = evbuffer_get_length(l->buf);
		p.pos = -1;
		/* Search only the bytes not searched before, so a line that
		 * arrives in many pieces costs linear time, not quadratic. */
		if (l->scanned < total) {
			evbuffer_ptr_set(l->buf, &p, l->scanned,
			    EVBUFFER_PTR_SET);
			p = evbuffer_search(l->buf, "\n", 1, &p);
		}
		if (p.pos < 0) {
			l->scanned = total;
			if (l->discarding || total > l->max_line) {
				if (!l->discarding) {
					l->dropped++;
					log_warnx("dropping an input line "
					    "longer than %zu bytes", l->max_line);
				}
				l->discarding = !at_eof;
				evbuffer_drain(l->buf, total);
				l->scanned = 0;
				return NULL;
			}
			if (!at_eof || total == 0)
				return NULL;
			pos = total;	/* the unterminated last line */
		} else
			pos = (size_t)p.pos;

		if (l->discarding || pos > l->max_line) {
			if (!l->discarding) {
				l->dropped++;
				log_warnx("dropping an input line longer "
				    "than %zu bytes", l->max_line);
			}
			l->discarding = 0;
			evbuffer_drain(l->buf, pos + 1);
			l->scanned = 0;
			continue;
		}
		if ((line = malloc(pos + 1)) == NULL) {
			log_warn("dropping an input line of %zu bytes", pos);
			evbuffer_drain(l->buf, pos + 1);
			l->scanned = 0;
			l->dropped++;
			continue;
		}
		evbuffer_remove(l->buf, line, pos);
		evbuffer_drain(l->buf, 1);
		line[pos] = '\0';
		l->scanned = 0;
		*len = pos;
		return line;
	}
}

/* Messages. */

struct mael_msg *
mael_msg_parse(const char *line, size_t len, const char **err)
{
	struct mael_msg	*msg;
	json_t		*env, *v;
	json_error_t	 je;

	if ((env = json_loadb(line, len, 0, &je)) == NULL) {
		*err = "not valid JSON";
		return NULL;
	}
	if (!json_is_object(env)) {
		*err = "not a JSON object";
		goto fail;
	}
	if ((msg = calloc(1, sizeof *msg)) == NULL) {
		*err = "out of memory";
		goto fail;
	}
	msg->env = env;
	msg->refs = 1;
	msg->msg_id = msg->in_reply_to = -1;
	msg->recv_ms = mael_now_ms();
	msg->src = json_string_value(json_object_get(env, "src"));
	msg->dest = json_string_value(json_object_get(env, "dest"));
	msg->body = json_object_get(env, "body");
	if (msg->src == NULL || msg->dest == NULL) {
		*err = "src or dest missing or not a string";
		goto fail_msg;
	}
	if (!json_is_object(msg->body)) {
		*err = "body missing or not an object";
		goto fail_msg;
	}
	if ((msg->type = json_string_value(json_object_get(msg->body,
	    "type"))) == NULL) {
		*err = "body.type missing or not a string";
		goto fail_msg;
	}
	if ((v = json_object_get(msg->body, "msg_id")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			*err = "msg_id is not a non-negative integer";
			goto fail_msg;
		}
		msg->msg_id = json_integer_value(v);
	}
	if ((v = json_object_get(msg->body, "in_reply_to")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			*err = "in_reply_to is not a non-negative integer";
			goto fail_msg;
		}
		msg->in_reply_to = json_integer_value(v);
	}
	return msg;

fail_msg:
	free(msg);
fail:
	json_decref(env);
	return NULL;
}

struct mael_msg *
mael_msg_hold(struct mael_msg *msg)
{
	msg->refs++;
	return msg;
}

void
mael_msg_release(struct mael_msg *msg)
{
	if (msg == NULL || --msg->refs > 0)
		return;
	json_decref(msg->env);
	free(msg);
}

int
mael_msg_error_code(const struct mael_msg *msg)
{
	json_t	*code;

	if (strcmp(msg->type, "error") != 0)
		return -1;
	code = json_object_get(msg->body, "code");
	if (!json_is_integer(code))
		return MAEL_CRASH;	/* an error of unknown kind */
	return (int)json_integer_value(code);
}

/* Error codes. */

static const struct {
	int		 code;
	const char	*name;
	int		 definite;
} mael_codes[] = {
	{ MAEL_TIMEOUT,			"timeout",		0 },
	{ MAEL_NODE_NOT_FOUND,		"node-not-found",	1 },
	{ MAEL_NOT_SUPPORTED,		"not-supported",	1 },
	{ MAEL_TEMPORARILY_UNAVAILABLE,	"temporarily-unavailable", 1 },
	{ MAEL_MALFORMED_REQUEST,	"malformed-request",	1 },
	{ MAEL_CRASH,			"crash",		0 },
	{ MAEL_ABORT,			"abort",		1 },
	{ MAEL_KEY_DOES_NOT_EXIST,	"key-does-not-exist",	1 },
	{ MAEL_KEY_ALREADY_EXISTS,	"key-already-exists",	1 },
	{ MAEL_PRECONDITION_FAILED,	"precondition-failed",	1 },
	{ MAEL_TXN_CONFLICT,		"txn-conflict",		1 },
};

int
mael_code_is_definite(int code)
{
	size_t	i;

	/* Codes of 1000 and up, and unknown ones, are indefinite. */
	for (i = 0; i < sizeof mael_codes / sizeof mael_codes[0]; i++) {
		if (mael_codes[i].code == code)
			return mael_codes[i].definite;
	}
	return 0;
}

const char *
mael_code_name(int code)
{
	size_t	i;

	for (i = 0; i < sizeof mael_codes / sizeof mael_codes[0]; i++) {
		if (mael_codes[i].code == code)
			return mael_codes[i].name;
	}
	return code >= 1000 ? "custom" : "unknown";
}

json_t *
mael_error_body(int code, const char *text)
{
	return json_pack("{s:s, s:i, s:s}", "type", "error", "code", code,
	    "text", text != NULL ? text : mael_code_name(code));
}

/* Output. */

static void
mael_set_nonblock(int fd, int *saved)
{
	int	fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		fatal("fcntl(%d)", fd);
	*saved = fl;
	if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("fcntl(%d, O_NONBLOCK)", fd);
}

/*
 * Whether the loop can watch fd.  epoll refuses regular files and some
 * character devices (/dev/null), which dsd must still accept as stdin or
 * stdout for scripted use; ask the kernel rather than guess from the type.
 */
static int
mael_fd_pollable(int fd)
{
	struct stat	sb;
#ifdef __linux__
	struct epoll_event ev = { .events = EPOLLIN };
	int		 ep, rv;
#endif

	if (fstat(fd, &sb) == -1)
		fatal("fstat(%d)", fd);
	if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))
		return 0;
#ifdef __linux__
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");
	rv = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	close(ep);
	return rv == 0;
#else
	return 1;
#endif
}

static void
mael_stop(struct mael *m, int status)
{
	if (m->rev != NULL)
		event_del(m->rev);
	if (m->cfg.done != NULL)
		m->cfg.done(m, m->cfg.done_arg, status);
}

static void
mael_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct mael	*m = arg;
	int		 n;

	while (evbuffer_get_length(m->out) > 0) {
		n = evbuffer_write(m->out, m->cfg.outfd);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR) &&
		    m->out_pollable) {
			event_add(m->wev, NULL);
			return;
		}
		if (n == -1 && errno == EINTR)
			continue;
		/* Nobody reads our output: Maelstrom is gone. */
		log_warn("writing to stdout");
		evbuffer_drain(m->out, evbuffer_get_length(m->out));
		if (!m->out_dead) {
			m->out_dead = 1;
			mael_stop(m, 1);
		}
		return;
	}
}

/* Queue one envelope; it goes out at the end of this loop pass, so every
 * message of a pass shares one write. */
static int
mael_emit(struct mael *m, const char *src, const char *dest, json_t *body)
{
	json_t	*env;
	char	*s;
	int	 rv = -1;

	env = json_pack("{s:s, s:s, s:o}", "src", src, "dest", dest,
	    "body", body);
	if (env == NULL) {
		log_warnx("cannot build a message to %s", dest);
		return -1;
	}
	if ((s = json_dumps(env, JSON_COMPACT)) == NULL) {
		log_warnx("cannot serialise a message to %s", dest);
		goto out;
	}
	if (m->out_dead) {
		rv = 0;
		goto out;
	}
	if (evbuffer_add(m->out, s, strlen(s)) == -1 ||
	    evbuffer_add(m->out, "\n", 1) == -1) {
		log_warnx("out of memory queueing a message to %s", dest);
		goto out;
	}
	log_debug("send %s", s);
	if (m->out_pollable)
		event_add(m->wev, NULL);
	else
		event_active(m->wev, EV_WRITE, 0);
	rv = 0;
out:
	free(s);
	json_decref(env);
	return rv;
}

void
mael_flush(struct mael *m)
{
	int	fl;

	if (m->out_pollable) {
		fl = fcntl(m->cfg.outfd, F_GETFL);
		if (fl != -1)
			fcntl(m->cfg.outfd, F_SETFL, fl & ~O_NONBLOCK);
	}
	mael_on_write(m->cfg.outfd, EV_WRITE, m);
	if (m->out_pollable)
		fcntl(m->cfg.outfd, F_SETFL, m->out_flags);
}

static int
mael_dest_known(struct mael *m, const char *dest)
{
	size_t	i;

	for (i = 0; i < m->nnodes; i++) {
		if (strcmp(m->node_ids[i], dest) == 0)
			return 1;
	}
	for (i = 0; mael_services[i] != NULL; i++) {
		if (strcmp(mael_services[i], dest) == 0)
			return 1;
	}
	return json_object_get(m->peers, dest) != NULL;
}

int
mael_send(struct mael *m, const char *dest, json_t *body)
{
	if (body == NULL)
		return -1;
	if (m->node_id == NULL || !mael_dest_known(m, dest)) {
		log_warnx("not sending %s to unknown destination %s",
		    json_string_value(json_object_get(body, "type")), dest);
		json_decref(body);
		return -1;
	}
	if (json_object_get(body, "msg_id") == NULL &&
	    json_object_set_new(body, "msg_id",
	    json_integer(++m->next_msg_id)) == -1) {
		json_decref(body);
		return -1;
	}
	return mael_emit(m, m->node_id, dest, body);
}

int
mael_reply(struct mael *m, const struct mael_msg *req, json_t *body)
{
	uint64_t	age;

	if (body == NULL)
		return -1;
	if (req->msg_id < 0) {
		log_debug("%s from %s has no msg_id: nothing to reply to",
		    req->type, req->src);
		json_decref(body);
		return -1;
	}
	age = mael_now_ms() - req->recv_ms;
	if (mael_is_client(req->src) &&
	    age > (uint64_t)m->cfg.reply_deadline_ms) {
		log_warnx("dropping reply to %s's %s: %llu ms after the "
		    "request, past the %d ms deadline", req->src, req->type,
		    (unsigned long long)age, m->cfg.reply_deadline_ms);
		json_decref(body);
		return -1;
	}
	if (json_object_set_new(body, "in_reply_to",
	    json_integer(req->msg_id)) == -1) {
		json_decref(body);
		return -1;
	}
	/* Before init there is no node id; answer as the id we were sent
	 * to, which is what Maelstrom expects to hear from. */
	if (m->node_id == NULL)
		return mael_emit(m, req->dest, req->src, body);
	return mael_send(m, req->src, body);
}

int
mael_reply_error(struct mael *m, const struct mael_msg *req, int code,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*text = NULL;
	int	 rv;

	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&text, fmt, ap) == -1)
			text = NULL;
		va_end(ap);
	}
	rv = mael_reply(m, req, mael_error_body(code, text));
	free(text);
	return rv;
}

/* RPCs. */

static void
mael_rpc_free(struct mael_rpc *r)
{
	event_free(r->timer);
	free(r);
}

static void
mael_on_rpc_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mael_rpc	*r = arg;
	struct mael	*m = r->m;

	u64map_del(m->rpcs, r->id);
	log_debug("rpc %llu timed out", (unsigned long long)r->id);
	r->fn(m, NULL, r->arg);
	mael_rpc_free(r);
}

int
mael_rpc(struct mael *m, const char *dest, json_t *body, int timeout_ms,
    mael_rpc_fn fn, void *arg)
{
	struct mael_rpc	*r;
	struct timeval	 tv;
	json_int_t	 id;

	if (body == NULL)
		return -1;
	if ((r = calloc(1, sizeof *r)) == NULL) {
		json_decref(body);
		return -1;
	}
	if ((r->timer = evtimer_new(m->base, mael_on_rpc_timeout, r)) == NULL) {
		free(r);
		json_decref(body);
		return -1;
	}
	id = ++m->next_msg_id;
	r->m = m;
	r->id = (uint64_t)id;
	r->fn = fn;
	r->arg = arg;
	if (json_object_set_new(body, "msg_id", json_integer(id)) == -1 ||
	    u64map_put(m->rpcs, r->id, r) == -1) {
		json_decref(body);
		mael_rpc_free(r);
		return -1;
	}
	if (mael_send(m, dest, body) == -1) {
		u64map_del(m->rpcs, r->id);
		mael_rpc_free(r);
		return -1;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	return 0;
}

int
mael_kv_read(struct mael *m, const char *service, json_t *key,
    int timeout_ms, mael_rpc_fn fn, void *arg)
{
	return mael_rpc(m, service, json_pack("{s:s, s:O}", "type", "read",
	    "key", key), timeout_ms, fn, arg);
}

int
mael_kv_write(struct mael *m, const char *service, json_t *key,
    json_t *value, int timeout_ms, mael_rpc_fn fn, void *arg)
{
	return mael_rpc(m, service, json_pack("{s:s, s:O, s:O}", "type",
	    "write", "key", key, "value", value), timeout_ms, fn, arg);
}

int
mael_kv_cas(struct mael *m, const char *service, json_t *key, json_t *from,
    json_t *to, int create_if_not_exists, int timeout_ms, mael_rpc_fn fn,
    void *arg)
{
	json_t	*body;

	body = json_pack("{s:s, s:O, s:O, s:O}", "type", "cas", "key", key,
	    "from", from, "to", to);
	if (body != NULL && create_if_not_exists &&
	    json_object_set_new(body, "create_if_not_exists",
	    json_true()) == -1) {
		json_decref(body);
		body = NULL;
	}
	return mael_rpc(m, service, body, timeout_ms, fn, arg);
}

/* Input. */

static void
mael_dispatch(struct mael *m, struct mael_msg *msg)
{
	const struct mael_handler	*h;
	struct mael_rpc			*r;

	if (msg->in_reply_to >= 0 &&
	    (r = u64map_del(m->rpcs, (uint64_t)msg->in_reply_to)) != NULL) {
		evtimer_del(r->timer);
		r->fn(m, msg, r->arg);
		mael_rpc_free(r);
		return;
	}
	if (strcmp(msg->type, "init") == 0) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "already initialised as %s", m->node_id);
		return;
	}
	for (h = m->cfg.handlers; h != NULL && h->type != NULL; h++) {
		if (strcmp(h->type, msg->type) == 0) {
			h->fn(m, msg, m->cfg.state);
			return;
		}
	}
	if (msg->in_reply_to >= 0)
		log_debug("dropping %s from %s: reply to nothing pending "
		    "(timed out?)", msg->type, msg->src);
	else if (msg->msg_id >= 0)
		mael_reply_error(m, msg, MAEL_NOT_SUPPORTED,
		    "message type %s is not supported", msg->type);
	else
		log_info("dropping %s from %s: unknown type", msg->type,
		    msg->src);
}

/* Handle init: learn who we are, then serve what was held. */
static void
mael_init(struct mael *m, struct mael_msg *msg)
{
	json_t		*ids, *v;
	const char	*id;
	size_t		 i, j, n;

	id = json_string_value(json_object_get(msg->body, "node_id"));
	ids = json_object_get(msg->body, "node_ids");
	if (id == NULL || !json_is_array(ids) || json_array_size(ids) == 0) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "init needs node_id and a non-empty node_ids");
		return;
	}
	n = json_array_size(ids);
	for (i = 0; i < n; i++) {
		if (json_string_value(json_array_get(ids, i)) == NULL) {
			mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
			    "node_ids must be strings");
			return;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(json_string_value(json_array_get(ids, i)),
			    json_string_value(json_array_get(ids, j))) == 0) {
				mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
				    "node_ids lists %s twice",
				    json_string_value(json_array_get(ids, j)));
				return;
			}
		}
	}
	m->node_index = -1;
	for (i = 0; i < n; i++) {
		if (strcmp(json_string_value(json_array_get(ids, i)), id) == 0)
			m->node_index = (int)i;
	}
	if (m->node_index == -1) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "node_id %s is not in node_ids", id);
		return;
	}
	m->node_ids = xcalloc(n, sizeof *m->node_ids);
	json_array_foreach(ids, i, v)
		m->node_ids[i] = xstrdup(json_string_value(v));
	m->nnodes = n;
	m->node_id = xstrdup(id);
	log_set_tag(id);
	log_info("initialised as %s, one of %zu nodes", id, n);

	if (m->cfg.joined != NULL && m->cfg.joined(m, m->cfg.state) == -1) {
		log_warnx("the mode failed to start");
		mael_reply_error(m, msg, MAEL_CRASH, "node failed to start");
		mael_stop(m, 1);
		return;
	}
	mael_reply(m, msg, json_pack("{s:s}", "type", "init_ok"));

	for (i = 0; i < m->nheld; i++) {
		mael_dispatch(m, m->held[i]);
		mael_msg_release(m->held[i]);
	}
	free(m->held);
	m->held = NULL;
	m->nheld = 0;
}

static void
mael_handle_line(struct mael *m, const char *line, size_t len)
{
	struct mael_msg	*msg;
	const char	*err;

	if (len == 0 || strspn(line, " \t\r") == len)
		return;
	if ((msg = mael_msg_parse(line, len, &err)) == NULL) {
		log_warnx("dropping input line: %s: %.120s%s", err, line,
		    len > 120 ? "..." : "");
		return;
	}
	log_debug("recv %.*s", (int)(len > 2000 ? 2000 : len), line);
	if (mael_is_client(msg->src) &&
	    json_object_get(m->peers, msg->src) == NULL)
		json_object_set_new(m->peers, msg->src, json_true());

	if (m->node_id != NULL)
		mael_dispatch(m, msg);
	else if (strcmp(msg->type, "init") == 0)
		mael_init(m, msg);
	else if (m->nheld >= MAEL_MAX_HELD)
		log_warnx("dropping %s from %s: too many messages before init",
		    msg->type, msg->src);
	else {
		m->held = xreallocarray(m->held, m->nheld + 1,
		    sizeof *m->held);
		m->held[m->nheld++] = mael_msg_hold(msg);
	}
	mael_msg_release(msg);
}

static void
mael_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct mael	*m = arg;
	char		*line;
	size_t		 len;
	int		 n;

	n = mael_lines_read(m->lines, m->cfg.infd);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_warn("reading stdin");
		m->eof = 1;
	} else if (n == 0)
		m->eof = 1;

	while ((line = mael_lines_next(m->lines, &len, m->eof)) != NULL) {
		mael_handle_line(m, line, len);
		free(line);
	}
	if (m->eof) {
		log_info("end of input");
		mael_stop(m, 0);
	} else if (!m->in_pollable)
		event_active(m->rev, EV_READ, 0);
}

struct mael *
mael_new(struct event_base *base, const struct mael_config *cfg)
{
	struct mael	*m;

	m = xcalloc(1, sizeof *m);
	m->base = base;
	m->cfg = *cfg;
	m->node_index = -1;
	m->lines = mael_lines_new(cfg->max_line);
	if ((m->out = evbuffer_new()) == NULL ||
	    (m->rpcs = u64map_new()) == NULL ||
	    (m->peers = json_object()) == NULL)
		fatalx("mael_new: out of memory");

	/* A regular file or /dev/null cannot be polled; read such input
	 * in chunks from an event that keeps reactivating itself. */
	m->in_pollable = mael_fd_pollable(cfg->infd);
	if (m->in_pollable) {
		mael_set_nonblock(cfg->infd, &m->in_flags);
		m->rev = event_new(base, cfg->infd, EV_READ | EV_PERSIST,
		    mael_on_read, m);
	} else
		m->rev = event_new(base, -1, 0, mael_on_read, m);
	m->out_pollable = mael_fd_pollable(cfg->outfd);
	if (m->out_pollable) {
		mael_set_nonblock(cfg->outfd, &m->out_flags);
		m->wev = event_new(base, cfg->outfd, EV_WRITE, mael_on_write,
		    m);
	} else
		m->wev = event_new(base, -1, 0, mael_on_write, m);
	if (m->rev == NULL || m->wev == NULL)
		fatalx("mael_new: event_new");
	if (m->in_pollable) {
		if (event_add(m->rev, NULL) == -1)
			fatalx("cannot watch fd %d for input", cfg->infd);
	} else
		event_active(m->rev, EV_READ, 0);
	return m;
}

static void
mael_free_rpc(uint64_t id, void *val, void *arg)
{
	mael_rpc_free(val);
}

void
mael_free(struct mael *m)
{
	size_t	i;

	if (m == NULL)
		return;
	u64map_foreach(m->rpcs, mael_free_rpc, NULL);
	u64map_free(m->rpcs);
	for (i = 0; i < m->nheld; i++)
		mael_msg_release(m->held[i]);
	free(m->held);
	for (i = 0; i < m->nnodes; i++)
		free(m->node_ids[i]);
	free(m->node_ids);
	free(m->node_id);
	json_decref(m->peers);
	event_free(m->rev);
	event_free(m->wev);
	evbuffer_free(m->out);
	mael_lines_free(m->lines);
	if (m->in_pollable)
		fcntl(m->cfg.infd, F_SETFL, m->in_flags);
	if (m->out_pollable)
		fcntl(m->cfg.outfd, F_SETFL, m->out_flags);
	free(m);
}

struct event_base *
mael_base(struct mael *m)
{
	return m->base;
}

const char *
mael_node_id(struct mael *m)
{
	return m->node_id;
}

const char *const *
mael_node_ids(struct mael *m, size_t *n)
{
	*n = m->nnodes;
	return (const char *const *)m->node_ids;
}

int
mael_node_index(struct mael *m)
{
	return m->node_index;
}
