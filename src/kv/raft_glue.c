/* libraft inside the libevent loop; see raft_glue.h. */
#include "config.h"

#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/tcp.h"
#include "kv/raft_glue.h"
#include "kv/rsm.h"

struct raft_glue {
	struct raft_glue_config	 cfg;
	char			*dir;
	char			*address;

	uv_loop_t		 loop;
	struct event		*ev_fd;		/* uv's backend fd */
	struct event		*ev_timer;	/* uv's next timer */
	struct event		*ev_kick;	/* run uv in this pass */
	int			 in_run;

	struct raft_uv_transport tcp;		/* libraft's */
	struct raft_uv_transport tr;		/* ours, in front of it */
	raft_uv_accept_cb	 accept_cb;
	unsigned int		 user_timeout_ms;	/* glue_tcp_options() */
	raft_uv_transport_close_cb tr_close_cb;
	struct raft_io		 io;
	/* raft_uv's own close, and the callback it is given (see
	 * glue_io_close()). */
	void			(*io_close)(struct raft_io *, raft_io_close_cb);
	raft_io_close_cb	 io_close_cb;
	int			 io_closed;
	struct raft_fsm		 fsm;
	struct raft		 raft;
	int			 started;
	int			 closed;

	struct rsm_frozen	*frozen;	/* a snapshot being taken */
	uint64_t		 frozen_at;	/* when, in uv's ms */
	int			 failed;	/* out of memory applying */

	/* The next freeze's array, being made on a libuv worker. */
	uv_work_t		 spare_work;
	void			*spare;
	size_t			 spare_cap;
	int			 spare_busy;
};

/* A request in flight through libraft. */
struct glue_req {
	union {
		struct raft_apply	apply;
		struct raft_barrier	barrier;
		struct raft_change	change;
	} u;
	struct raft_glue	*g;
	raft_glue_cb		 cb;
	raft_glue_change_cb	 change_cb;
	void			*arg;
	/* A member add: its steps, and why it is being undone. */
	uint64_t		 id;
	int			 step;
#define GLUE_ADD_UNDO	100
	char			 why[200];
};

/*
 * libraft 0.15 can read a request it has freed when it is closed while a
 * log truncation is in flight: the close cancels the truncation's barrier,
 * which frees the request, and the truncation's completion, still queued on
 * a libuv worker, then reads it and frees it again (found stopping a
 * follower just after a new leader made it truncate; fixed upstream in
 * 0.17.1, not in Debian 12).  While the glue closes, libraft's heap holds
 * every block it frees until the loop is quiet, and frees each one once.
 * libraft frees on libuv's workers too, hence the lock.
 */
static struct {
	pthread_mutex_t	  lock;
	int		  holding;
	void		**held;
	size_t		  n, cap;
} glue_heap = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *
glue_heap_malloc(void *data, size_t size)
{
	(void)data;
	return malloc(size);
}

static void *
glue_heap_calloc(void *data, size_t n, size_t size)
{
	(void)data;
	return calloc(n, size);
}

static void *
glue_heap_realloc(void *data, void *p, size_t size)
{
	(void)data;
	return realloc(p, size);
}

static void *
glue_heap_aligned_alloc(void *data, size_t alignment, size_t size)
{
	(void)data;
	return aligned_alloc(alignment, size);
}

static void
glue_heap_free(void *data, void *p)
{
	void	**v;
	size_t	  cap;

	(void)data;
	pthread_mutex_lock(&glue_heap.lock);
	if (!glue_heap.holding) {
		pthread_mutex_unlock(&glue_heap.lock);
		free(p);
		return;
	}
	if (glue_heap.n == glue_heap.cap) {
		cap = glue_heap.cap == 0 ? 256 : glue_heap.cap * 2;
		/* Out of memory at exit: a leak, never a use after free. */
		if ((v = reallocarray(glue_heap.held, cap, sizeof *v)) == NULL)
			goto out;
		glue_heap.held = v;
		glue_heap.cap = cap;
	}
	glue_heap.held[glue_heap.n++] = p;
out:
	pthread_mutex_unlock(&glue_heap.lock);
}

static void
glue_heap_hold(void)
{
	pthread_mutex_lock(&glue_heap.lock);
	glue_heap.holding = 1;
	pthread_mutex_unlock(&glue_heap.lock);
}

static void
glue_heap_aligned_free(void *data, size_t alignment, void *p)
{
	(void)alignment;
	glue_heap_free(data, p);
}

static struct raft_heap glue_heap_fns = {
	NULL, glue_heap_malloc, glue_heap_free, glue_heap_calloc,
	glue_heap_realloc, glue_heap_aligned_alloc, glue_heap_aligned_free
};

static int
glue_heap_cmp(const void *a, const void *b)
{
	uintptr_t	x = (uintptr_t)*(void *const *)a;
	uintptr_t	y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

static void
glue_heap_release(void)
{
	size_t	i;

	/* The loop is closed: no worker is left to free anything. */
	pthread_mutex_lock(&glue_heap.lock);
	glue_heap.holding = 0;
	pthread_mutex_unlock(&glue_heap.lock);
	qsort(glue_heap.held, glue_heap.n, sizeof *glue_heap.held,
	    glue_heap_cmp);
	for (i = 0; i < glue_heap.n; i++) {
		if (i > 0 && glue_heap.held[i] == glue_heap.held[i - 1]) {
			log_debug("raft: libraft freed a block twice while "
			    "closing");
			continue;
		}
		free(glue_heap.held[i]);
	}
	free(glue_heap.held);
	glue_heap.held = NULL;
	glue_heap.n = glue_heap.cap = 0;
}

static void	glue_run(struct raft_glue *);
static void	glue_spare_check(struct raft_glue *);
static void	glue_change_cb(struct raft_change *, int);
static void	glue_io_close(struct raft_io *, raft_io_close_cb);

const char *
raft_glue_version(void)
{
	return RAFT_PKG_VERSION;
}

/* "A.B.C.D:PORT" with a port from 1 to 65535, all of len bytes. */
static int
glue_ipv4_port(const char *s, size_t len)
{
	struct in_addr	 in;
	const char	*colon;
	char		 host[INET_ADDRSTRLEN];
	unsigned long	 port;
	char		*end;

	if ((colon = memchr(s, ':', len)) == NULL ||
	    (size_t)(colon - s) >= sizeof host || colon + 1 == s + len)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host, &in) != 1)
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (end != s + len || errno != 0 || port == 0 || port > 65535 ||
	    colon[1] < '0' || colon[1] > '9')
		return -1;
	return 0;
}

int
raft_glue_split(const char *s, char **raft, char **client)
{
	const char	*slash, *colon;

	*raft = *client = NULL;
	/* The Raft part as libraft 0.15 can use it; the client part
	 * HOST:PORT or [V6]:PORT. */
	if ((slash = strchr(s, '/')) == NULL ||
	    glue_ipv4_port(s, (size_t)(slash - s)) == -1 ||
	    (colon = strrchr(slash + 1, ':')) == NULL || colon == slash + 1 ||
	    colon[1] == '\0')
		return -1;
	*raft = strndup(s, (size_t)(slash - s));
	*client = strdup(slash + 1);
	if (*raft == NULL || *client == NULL) {
		free(*raft);
		free(*client);
		*raft = *client = NULL;
	}
	return 0;
}

/* The loop: libuv inside libevent. */

static void
glue_on_uv(evutil_socket_t fd, short what, void *arg)
{
	glue_run(arg);
}

/* Run what libuv has ready, without waiting, then follow its timer. */
static void
glue_run(struct raft_glue *g)
{
	struct timeval	tv;
	int		timeout;

	if (g->in_run)
		return;
	g->in_run = 1;
	uv_run(&g->loop, UV_RUN_NOWAIT);
	g->in_run = 0;
	if (g->failed)
		fatalx("raft: out of memory applying an entry: this replica "
		    "cannot go on without it");
	glue_spare_check(g);
	timeout = uv_backend_timeout(&g->loop);
	if (timeout >= 0) {
		tv.tv_sec = timeout / 1000;
		tv.tv_usec = (timeout % 1000) * 1000;
		evtimer_add(g->ev_timer, &tv);
	} else
		evtimer_del(g->ev_timer);
	if (g->started && !g->closed && g->cfg.changed != NULL)
		g->cfg.changed(g->cfg.arg);
}

/* The next freeze's array, made on a libuv worker (see rsm.h). */
static void
glue_spare_make(uv_work_t *w)
{
	struct raft_glue	*g = w->data;

	g->spare = rsm_spare_make(g->spare_cap);
}

static void
glue_spare_made(uv_work_t *w, int status)
{
	struct raft_glue	*g = w->data;

	g->spare_busy = 0;
	if (status == 0 && !g->closed)
		rsm_spare_adopt(g->cfg.rsm, g->spare, g->spare_cap);
	else
		free(g->spare);
	g->spare = NULL;
}

/* The store outgrew the array the next freeze copies into: make one. */
static void
glue_spare_check(struct raft_glue *g)
{
	size_t	cap;

	if (g->spare_busy || g->closed ||
	    (cap = rsm_spare_wanted(g->cfg.rsm)) == 0)
		return;
	g->spare_cap = cap;
	g->spare_work.data = g;
	if (uv_queue_work(&g->loop, &g->spare_work, glue_spare_make,
	    glue_spare_made) == 0)
		g->spare_busy = 1;
}

/* Work was queued with libraft from libevent code: run it this pass. */
static void
glue_kick(struct raft_glue *g)
{
	event_active(g->ev_kick, EV_TIMEOUT, 0);
}

/* The transport: libraft's TCP, reached through the part of each
 * address before the slash. */

/*
 * A connect passed to libraft's transport on our behalf.  It has a time
 * limit, which libraft's has not: a connect started during a partition
 * waits on SYN retransmissions, whose backoff doubles up to a minute and
 * more, so that after the heal a node could stay cut off that long.  Past
 * the limit raft_uv is told the connect failed, and tries a new one (a
 * fresh SYN) after its retry delay; the old attempt is left to end on its
 * own, and a connection it makes after all is closed.
 */
struct glue_connect {
	struct raft_uv_connect	 req;		/* the one libraft's sees */
	struct raft_uv_connect	*outer;		/* raft_uv's */
	raft_uv_connect_cb	 cb;
	struct raft_glue	*g;
	uv_timer_t		 timer;
	int			 answered;	/* cb was called */
};

/* See net/tcp.h: a silent peer fails its connection, and libraft
 * connects again. */
static void
glue_tcp_options(struct raft_glue *g, struct uv_stream_s *stream)
{
	uv_os_fd_t	fd;

	if (stream != NULL && uv_fileno((uv_handle_t *)stream, &fd) == 0 &&
	    tcp_user_timeout(fd, (int)g->user_timeout_ms) == -1)
		log_debug("raft: setsockopt: %s", strerror(errno));
}

static void
glue_connect_free(uv_handle_t *timer)
{
	free(timer->data);
}

static void
glue_stream_free(uv_handle_t *stream)
{
	raft_free(stream);	/* libraft's transport allocated it */
}

static void
glue_connect_expired(uv_timer_t *timer)
{
	struct glue_connect	*c = timer->data;

	if (c->answered)
		return;
	c->answered = 1;
	c->cb(c->outer, NULL, RAFT_NOCONNECTION);
}

static void
glue_tr_connected(struct raft_uv_connect *req, struct uv_stream_s *stream,
    int status)
{
	struct glue_connect	*c = req->data;

	uv_timer_stop(&c->timer);
	if (!c->answered) {
		c->answered = 1;
		if (status == 0)
			glue_tcp_options(c->g, stream);
		c->cb(c->outer, stream, status);
	} else if (status == 0 && stream != NULL)
		uv_close((uv_handle_t *)stream, glue_stream_free);
	uv_close((uv_handle_t *)&c->timer, glue_connect_free);
}

static int
glue_tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct raft_glue	*g = t->impl;

	/* The whole address, so that peers' handshakes carry the same
	 * string as the configuration. */
	return g->tcp.init(&g->tcp, id, address);
}

static void
glue_tr_accept(struct raft_uv_transport *tcp, raft_id id,
    const char *address, struct uv_stream_s *stream)
{
	struct raft_glue	*g = tcp->data;

	glue_tcp_options(g, stream);
	g->accept_cb(&g->tr, id, address, stream);
}

static int
glue_tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct raft_glue	*g = t->impl;

	g->accept_cb = cb;
	return g->tcp.listen(&g->tcp, glue_tr_accept);
}

static int
glue_tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
    raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct raft_glue	*g = t->impl;
	struct glue_connect	*c;
	const char		*slash = strchr(address, '/');
	char			 buf[256];
	size_t			 n;
	int			 rv;

	n = slash != NULL ? (size_t)(slash - address) : strlen(address);
	if (n >= sizeof buf)
		return RAFT_NOCONNECTION;
	memcpy(buf, address, n);
	buf[n] = '\0';
	if ((c = calloc(1, sizeof *c)) == NULL)
		return RAFT_NOMEM;
	c->req.data = c;
	c->outer = req;
	c->cb = cb;
	c->g = g;
	if (uv_timer_init(&g->loop, &c->timer) != 0) {
		free(c);
		return RAFT_NOMEM;
	}
	c->timer.data = c;
	/* The TCP transport parses the address before it returns. */
	if ((rv = g->tcp.connect(&g->tcp, &c->req, id, buf,
	    glue_tr_connected)) != 0) {
		uv_close((uv_handle_t *)&c->timer, glue_connect_free);
		return rv;
	}
	uv_timer_start(&c->timer, glue_connect_expired, g->user_timeout_ms,
	    0);
	return rv;
}

static void
glue_tr_closed(struct raft_uv_transport *tcp)
{
	struct raft_glue	*g = tcp->data;

	if (g->tr_close_cb != NULL)
		g->tr_close_cb(&g->tr);
}

static void
glue_tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct raft_glue	*g = t->impl;

	g->tr_close_cb = cb;
	g->tcp.close(&g->tcp, glue_tr_closed);
}

/* The FSM. */

static int
glue_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
    void **result)
{
	struct raft_glue	*g = fsm->data;

	*result = NULL;
	/* Never fail: libraft would retry the entry forever.  Out of
	 * memory stops the process once libraft has returned. */
	if (rsm_apply(g->cfg.rsm, buf->base, buf->len, g->cfg.outcome,
	    g->cfg.arg) == -1)
		g->failed = 1;
	return 0;
}

/* On the loop: freeze the state; the bytes are made by glue_fsm_encode. */
static int
glue_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
    unsigned *n)
{
	struct raft_glue	*g = fsm->data;
	struct timespec		 t0, t1, c0, c1;

	*bufs = NULL;
	*n = 0;
	if (g->frozen != NULL)
		return RAFT_BUSY;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	if ((g->frozen = rsm_freeze(g->cfg.rsm)) == NULL)
		return RAFT_NOMEM;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	g->frozen_at = uv_now(&g->loop);
	/* The loop's pause for a snapshot, the figure to watch, and the CPU
	 * it took (the difference is other processes on the same cores). */
	log_info("raft: snapshot at entry %llu: %zu keys frozen in %.2f ms "
	    "(%.2f ms of CPU)", (unsigned long long)raft_last_applied(
	    &g->raft), store_count(rsm_store(g->cfg.rsm)),
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
	    (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
	    (double)(c1.tv_nsec - c0.tv_nsec) / 1e6);
	return 0;
}

/* On a libuv worker thread: nothing here may touch the loop's state. */
static int
glue_fsm_encode(struct raft_fsm *fsm, struct raft_buffer *bufs[],
    unsigned *n)
{
	struct raft_glue	*g = fsm->data;
	struct raft_buffer	*b;
	size_t			 len;

	if ((b = raft_malloc(sizeof *b)) == NULL)
		return RAFT_NOMEM;
	if ((b->base = rsm_frozen_encode(g->frozen, &len)) == NULL) {
		raft_free(b);
		return RAFT_NOMEM;
	}
	b->len = len;
	*bufs = b;
	*n = 1;
	return 0;
}

/* On the loop, once libraft is done with the snapshot (or failed). */
static int
glue_fsm_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
    unsigned *n)
{
	struct raft_glue	*g = fsm->data;
	unsigned		 i;

	if (*bufs != NULL) {
		log_info("raft: snapshot of %zu bytes written, %llu ms after "
		    "the freeze", (*bufs)[0].len, (unsigned long long)(
		    uv_now(&g->loop) - g->frozen_at));
		for (i = 0; i < *n; i++)
			free((*bufs)[i].base);	/* rsm_frozen_encode's */
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n = 0;
	if (g->frozen != NULL) {
		rsm_thaw(g->cfg.rsm, g->frozen);
		g->frozen = NULL;
	}
	return 0;
}

static int
glue_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct raft_glue	*g = fsm->data;
	char			 err[256];
	int			 rv;

	rv = rsm_restore(g->cfg.rsm, buf->base, buf->len, err, sizeof err);
	if (rv == -1)
		log_warnx("raft: cannot restore a snapshot of %zu bytes: %s",
		    buf->len, err);
	else
		log_info("raft: restored a snapshot of %zu bytes, %zu keys",
		    buf->len, store_count(rsm_store(g->cfg.rsm)));
	/* Ours now, as libraft's contract says. */
	raft_free(buf->base);
	return rv == -1 ? RAFT_CORRUPT : 0;
}

/* Requests. */

/* A request of ours through libraft, or NULL if memory ran out. */
static struct glue_req *
glue_req_new(struct raft_glue *g, raft_glue_cb cb, raft_glue_change_cb ccb,
    void *arg, uint64_t id)
{
	struct glue_req	*r;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	r->g = g;
	r->cb = cb;
	r->change_cb = ccb;
	r->arg = arg;
	r->id = id;
	return r;
}

static void
glue_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct glue_req	*r = req->data;

	r->cb(r->arg, status == 0 ? RAFT_GLUE_OK : RAFT_GLUE_UNKNOWN);
	free(r);
}

int
raft_glue_apply(struct raft_glue *g, const uint8_t *entry, size_t len,
    raft_glue_cb cb, void *arg)
{
	struct glue_req		*r;
	struct raft_buffer	 buf;
	int			 rv;

	if (g->closed || (r = glue_req_new(g, cb, NULL, arg, 0)) == NULL)
		return -1;
	/* libraft frees entries with raft_free(): give it its own. */
	if ((buf.base = raft_malloc(len)) == NULL) {
		free(r);
		return -1;
	}
	memcpy(buf.base, entry, len);
	buf.len = len;
	r->u.apply.data = r;
	if ((rv = raft_apply(&g->raft, &r->u.apply, &buf, 1,
	    glue_apply_cb)) != 0) {
		if (rv != RAFT_NOTLEADER)
			log_debug("raft: apply: %s", raft_strerror(rv));
		raft_free(buf.base);
		free(r);
		return -1;
	}
	glue_kick(g);
	return 0;
}

static void
glue_barrier_cb(struct raft_barrier *req, int status)
{
	struct glue_req	*r = req->data;

	r->cb(r->arg, status == 0 ? RAFT_GLUE_OK : RAFT_GLUE_UNKNOWN);
	free(r);
}

int
raft_glue_barrier(struct raft_glue *g, raft_glue_cb cb, void *arg)
{
	struct glue_req	*r;

	if (g->closed || (r = glue_req_new(g, cb, NULL, arg, 0)) == NULL)
		return -1;
	r->u.barrier.data = r;
	if (raft_barrier(&g->raft, &r->u.barrier, glue_barrier_cb) != 0) {
		free(r);
		return -1;
	}
	glue_kick(g);
	return 0;
}

/* Status and membership. */

void
raft_glue_status(struct raft_glue *g, struct raft_glue_status *st)
{
	raft_id		 id = 0;
	const char	*addr = NULL;

	memset(st, 0, sizeof *st);
	switch (raft_state(&g->raft)) {
	case RAFT_LEADER:
		st->state = "leader";
		st->leader = 1;
		break;
	case RAFT_FOLLOWER:
		st->state = "follower";
		break;
	case RAFT_CANDIDATE:
		st->state = "candidate";
		break;
	default:
		st->state = "unavailable";
		break;
	}
	raft_leader(&g->raft, &id, &addr);
	st->leader_id = id;
	/* The configuration's copy: the one with the client address. */
	st->leader_address = id != 0 ? raft_glue_address(g, id) : NULL;
	st->term = g->raft.current_term;
	st->commit_index = g->raft.commit_index;
	st->applied_index = raft_last_applied(&g->raft);
	st->last_index = raft_last_index(&g->raft);
}

static enum raft_glue_role
glue_role(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return RAFT_GLUE_VOTER;
	case RAFT_STANDBY:
		return RAFT_GLUE_STANDBY;
	default:
		return RAFT_GLUE_SPARE;
	}
}

struct raft_glue_member *
raft_glue_members(struct raft_glue *g, size_t *n)
{
	const struct raft_configuration	*c = &g->raft.configuration;
	struct raft_glue_member		*m;
	unsigned			 i;

	if ((m = calloc(c->n + 1, sizeof *m)) == NULL)
		return NULL;
	for (i = 0; i < c->n; i++) {
		m[i].id = c->servers[i].id;
		m[i].role = glue_role(c->servers[i].role);
		if ((m[i].address = strdup(c->servers[i].address)) == NULL) {
			raft_glue_members_free(m, i);
			return NULL;
		}
	}
	*n = c->n;
	return m;
}

void
raft_glue_members_free(struct raft_glue_member *m, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(m[i].address);
	free(m);
}

const char *
raft_glue_address(struct raft_glue *g, uint64_t id)
{
	const struct raft_configuration	*c = &g->raft.configuration;
	unsigned			 i;

	for (i = 0; i < c->n; i++) {
		if (c->servers[i].id == id)
			return c->servers[i].address;
	}
	return NULL;
}

/* End a change request with a status and a message. */
static void
glue_change_end(struct glue_req *r, int status, const char *msg)
{
	r->change_cb(r->arg, status, msg);
	free(r);
}

/* A member add that cannot go on: take the node out again, so that a
 * node that never answers is not left in the configuration (and the next
 * change is not refused for it). */
static void
glue_add_undo(struct glue_req *r, const char *why)
{
	struct raft_glue	*g = r->g;
	int			 rv;

	snprintf(r->why, sizeof r->why, "member %" PRIu64 " could not be "
	    "made a voter (%s)", r->id, why);
	log_warnx("raft: %s; removing it again", r->why);
	r->step = GLUE_ADD_UNDO;
	if ((rv = raft_remove(&g->raft, &r->u.change, r->id,
	    glue_change_cb)) != 0) {
		snprintf(r->why + strlen(r->why), sizeof r->why -
		    strlen(r->why), ", and removing it failed (%s): remove "
		    "it with member remove", raft_strerror(rv));
		glue_change_end(r, RAFT_GLUE_UNKNOWN, r->why);
		return;
	}
	glue_kick(g);
}

/* The steps of a member add: spare, stand-by (replicated to), voter
 * (libraft first runs catch-up rounds), or its undoing. */
static void
glue_change_cb(struct raft_change *req, int status)
{
	struct glue_req		*r = req->data;
	struct raft_glue	*g = r->g;
	int			 rv;

	if (r->step == GLUE_ADD_UNDO) {
		if (status == 0) {
			snprintf(r->why + strlen(r->why), sizeof r->why -
			    strlen(r->why), "; it was removed again");
			glue_change_end(r, RAFT_GLUE_FAILED, r->why);
		}
		else {
			snprintf(r->why + strlen(r->why), sizeof r->why -
			    strlen(r->why), ", and removing it failed (%s)",
			    raft_strerror(status));
			glue_change_end(r, RAFT_GLUE_UNKNOWN, r->why);
		}
		return;
	}
	if (status != 0) {
		if (status == RAFT_NOTLEADER)
			glue_change_end(r, RAFT_GLUE_NOTLEADER,
			    raft_strerror(status));
		else if (r->step > 0 && raft_state(&g->raft) == RAFT_LEADER)
			glue_add_undo(r, raft_strerror(status));
		else
			glue_change_end(r, RAFT_GLUE_UNKNOWN,
			    raft_strerror(status));
		return;
	}
	switch (r->step++) {
	case 0:
		rv = raft_assign(&g->raft, &r->u.change, r->id, RAFT_STANDBY,
		    glue_change_cb);
		break;
	case 1:
		log_info("raft: member %" PRIu64 " is a non-voter now; "
		    "catching it up", r->id);
		rv = raft_assign(&g->raft, &r->u.change, r->id, RAFT_VOTER,
		    glue_change_cb);
		break;
	default:
		glue_change_end(r, RAFT_GLUE_OK, NULL);
		return;
	}
	if (rv != 0) {
		/* The node is in the configuration: undo rather than leave
		 * it half added. */
		if (raft_state(&g->raft) == RAFT_LEADER)
			glue_add_undo(r, raft_strerror(rv));
		else
			glue_change_end(r, RAFT_GLUE_UNKNOWN,
			    raft_errmsg(&g->raft));
		return;
	}
	glue_kick(g);
}

/* libraft's message for the last failure, or the code's if it set none. */
static const char *
glue_errmsg(struct raft_glue *g, int rv)
{
	const char	*m = raft_errmsg(&g->raft);

	return m != NULL && *m != '\0' ? m : raft_strerror(rv);
}

int
raft_glue_add(struct raft_glue *g, uint64_t id, const char *address,
    raft_glue_change_cb cb, void *arg, const char **msg)
{
	struct glue_req	*r;
	char		*ra, *ca;
	int		 rv;

	if (raft_glue_split(address, &ra, &ca) == -1) {
		*msg = "the address must be RAFTADDR/CLIENTADDR";
		return -1;
	}
	if (ra == NULL) {
		*msg = "out of memory";
		return -1;
	}
	free(ra);
	free(ca);
	if ((r = glue_req_new(g, NULL, cb, arg, id)) == NULL) {
		*msg = "out of memory";
		return -1;
	}
	r->u.change.data = r;
	if ((rv = raft_add(&g->raft, &r->u.change, id, address,
	    glue_change_cb)) != 0) {
		*msg = glue_errmsg(g, rv);
		free(r);
		return -1;
	}
	glue_kick(g);
	return 0;
}

static void
glue_remove_cb(struct raft_change *req, int status)
{
	struct glue_req	*r = req->data;

	r->change_cb(r->arg, status == 0 ? RAFT_GLUE_OK : status ==
	    RAFT_NOTLEADER ? RAFT_GLUE_NOTLEADER : RAFT_GLUE_UNKNOWN,
	    status == 0 ? NULL : raft_strerror(status));
	free(r);
}

int
raft_glue_remove(struct raft_glue *g, uint64_t id, raft_glue_change_cb cb,
    void *arg, const char **msg)
{
	struct glue_req	*r;
	int		 rv;

	if ((r = glue_req_new(g, NULL, cb, arg, id)) == NULL) {
		*msg = "out of memory";
		return -1;
	}
	r->u.change.data = r;
	if ((rv = raft_remove(&g->raft, &r->u.change, id,
	    glue_remove_cb)) != 0) {
		*msg = glue_errmsg(g, rv);
		free(r);
		return -1;
	}
	glue_kick(g);
	return 0;
}

/* Start and stop. */

static int
glue_role_raft(enum raft_glue_role role)
{
	switch (role) {
	case RAFT_GLUE_STANDBY:
		return RAFT_STANDBY;
	case RAFT_GLUE_SPARE:
		return RAFT_SPARE;
	default:
		return RAFT_VOTER;
	}
}

/* Bootstrap on the first start; a restart keeps what the directory has. */
static int
glue_bootstrap(struct raft_glue *g, const struct raft_glue_config *cfg,
    char *err, size_t errlen)
{
	struct raft_configuration	conf;
	size_t				i;
	int				rv;

	raft_configuration_init(&conf);
	for (i = 0; i < cfg->nmembers; i++) {
		rv = raft_configuration_add(&conf, cfg->members[i].id,
		    cfg->members[i].address,
		    glue_role_raft(cfg->members[i].role));
		if (rv != 0) {
			snprintf(err, errlen, "member %" PRIu64 ": %s",
			    cfg->members[i].id, raft_strerror(rv));
			raft_configuration_close(&conf);
			return -1;
		}
	}
	rv = raft_bootstrap(&g->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == RAFT_CANTBOOTSTRAP) {
		log_info("raft: %s holds a node's state: recovering it, not "
		    "the initial members", g->dir);
		return 0;
	}
	if (rv != 0) {
		snprintf(err, errlen, "bootstrap: %s", raft_errmsg(&g->raft));
		return -1;
	}
	log_notice("raft: bootstrapped a cluster of %zu members",
	    cfg->nmembers);
	return 0;
}

/*
 * Bind the Raft address once, before libraft does: libraft 0.15 reports
 * an address in use only as "I/O error", and after the bootstrap has
 * already been written.
 */
static int
glue_bind_check(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_in	 sin;
	const char		*colon = strrchr(addr, ':');
	char			 host[INET_ADDRSTRLEN];
	int			 fd, on = 1, rv = 0;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return 0;	/* libraft will say */
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return 0;
	sin.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	/* As libuv binds it. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		snprintf(err, errlen, "cannot listen for Raft on %s: %s", addr,
		    strerror(errno));
		rv = -1;
	}
	close(fd);
	return rv;
}

struct raft_glue *
raft_glue_new(const struct raft_glue_config *cfg, char *err, size_t errlen)
{
	struct raft_glue	*g;
	char			*ra = NULL, *ca = NULL;
	int			 rv;

	g = xcalloc(1, sizeof *g);
	g->cfg = *cfg;
	g->dir = xstrdup(cfg->dir);
	g->address = xstrdup(cfg->address);
	g->cfg.dir = g->dir;
	g->cfg.address = g->address;
	g->cfg.members = NULL;		/* borrowed for start-up only */
	g->cfg.bind = NULL;

	if (raft_glue_split(cfg->address, &ra, &ca) == -1 || ra == NULL) {
		snprintf(err, errlen, "%s: not RAFTADDR/CLIENTADDR",
		    cfg->address);
		goto fail;
	}
	if (glue_bind_check(cfg->bind != NULL ? cfg->bind : ra, err,
	    errlen) == -1)
		goto fail;
	if (mkdir(g->dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", g->dir, strerror(errno));
		goto fail;
	}
	raft_heap_set(&glue_heap_fns);
	if ((rv = uv_loop_init(&g->loop)) != 0) {
		snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rv));
		goto fail;
	}
	g->ev_fd = event_new(cfg->base, uv_backend_fd(&g->loop),
	    EV_READ | EV_PERSIST, glue_on_uv, g);
	g->ev_timer = evtimer_new(cfg->base, glue_on_uv, g);
	g->ev_kick = event_new(cfg->base, -1, 0, glue_on_uv, g);
	if (g->ev_fd == NULL || g->ev_timer == NULL || g->ev_kick == NULL ||
	    event_add(g->ev_fd, NULL) == -1) {
		snprintf(err, errlen, "cannot watch libuv's loop");
		goto fail;
	}

	if ((rv = raft_uv_tcp_init(&g->tcp, &g->loop)) != 0) {
		snprintf(err, errlen, "raft_uv_tcp_init: %s",
		    raft_strerror(rv));
		goto fail;
	}
	g->tcp.data = g;
	if ((rv = raft_uv_tcp_set_bind_address(&g->tcp, cfg->bind != NULL ?
	    cfg->bind : ra)) != 0) {
		snprintf(err, errlen, "%s: not an IPv4 address and port (this "
		    "libraft takes no names)", cfg->bind != NULL ? cfg->bind :
		    ra);
		goto fail;
	}
	/* We implement this transport: raft_uv owns its data field. */
	g->tr.impl = g;
#ifdef HAVE_STRUCT_RAFT_UV_TRANSPORT_VERSION
	g->tr.version = 1;
#endif
	g->tr.init = glue_tr_init;
	g->tr.listen = glue_tr_listen;
	g->tr.connect = glue_tr_connect;
	g->tr.close = glue_tr_close;
	if ((rv = raft_uv_init(&g->io, &g->loop, g->dir, &g->tr)) != 0) {
		snprintf(err, errlen, "raft_uv_init: %s", g->io.errmsg);
		goto fail;
	}
	/*
	 * libraft 0.15 and 0.16 implement async_work in raft_uv but mark it
	 * version 1, so raft_init() refuses an FSM with snapshot_async, the
	 * only way to snapshot without stalling the loop (0.17.1 says 2).
	 * The method is there and works: say what it is.
	 */
	if (g->io.version < 2 && g->io.async_work != NULL)
		g->io.version = 2;
	g->io_close = g->io.close;
	g->io.close = glue_io_close;
	/* Snapshots are written by libuv's threads; lz4 would only cost CPU
	 * on a machine whose cores the nodes share. */
	raft_uv_set_snapshot_compression(&g->io, false);

	g->fsm.version = 3;
	g->fsm.data = g;
	g->fsm.apply = glue_fsm_apply;
	g->fsm.snapshot = glue_fsm_snapshot;
	g->fsm.restore = glue_fsm_restore;
	g->fsm.snapshot_finalize = glue_fsm_finalize;
	g->fsm.snapshot_async = glue_fsm_encode;
	if ((rv = raft_init(&g->raft, &g->io, &g->fsm, cfg->id,
	    g->address)) != 0) {
		snprintf(err, errlen, "raft_init: %s", raft_errmsg(&g->raft));
		goto fail;
	}
	g->raft.data = g;
	raft_set_election_timeout(&g->raft, cfg->election_ms);
	g->user_timeout_ms = cfg->election_ms * 2 > 2000 ?
	    cfg->election_ms * 2 : 2000;
	raft_set_heartbeat_timeout(&g->raft, cfg->heartbeat_ms);
	raft_set_snapshot_threshold(&g->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&g->raft, cfg->snapshot_trailing);
	/* A node back from a partition must not depose a working leader. */
	raft_set_pre_vote(&g->raft, true);
	if (cfg->members != NULL && glue_bootstrap(g, cfg, err, errlen) == -1)
		goto fail;
	if ((rv = raft_start(&g->raft)) != 0) {
		/* A Raft port in use ends here, with the message in the
		 * I/O's errmsg, not raft's. */
		snprintf(err, errlen, "raft_start: %s%s%s", raft_strerror(rv),
		    *g->io.errmsg != '\0' ? ": " : "", g->io.errmsg);
		goto fail;
	}
	g->started = 1;
	free(ra);
	free(ca);
	glue_kick(g);
	return g;

fail:
	/* Start-up only: the caller stops the process. */
	free(ra);
	free(ca);
	return NULL;
}

/*
 * libraft 0.15's raft_uv can report its close twice: a segment's writer
 * is taken off the queue that uvMaybeFireCloseCb() checks before its own
 * close completes, and that completion checks again, finds everything
 * closed and calls the close callback a second time; raft's callback then
 * frees its address twice (seen on a one-node cluster stopped after a
 * write).  A truncation that completes after the close (see glue_heap) does
 * the same.  Between raft and its I/O, through the public raft_io methods,
 * let only the first report through.
 */
static void
glue_io_closed(struct raft_io *io)
{
	struct raft		*r = io->data;
	struct raft_glue	*g = r->data;

	if (g->io_closed) {
		log_debug("raft: libraft's I/O reported its close again");
		return;
	}
	g->io_closed = 1;
	g->io_close_cb(io);
}

static void
glue_io_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct raft		*r = io->data;
	struct raft_glue	*g = r->data;

	g->io_close_cb = cb;
	g->io_close(io, glue_io_closed);
}

static void
glue_closed(struct raft *r)
{
	struct raft_glue	*g = r->data;

	g->closed = 2;
}

void
raft_glue_free(struct raft_glue *g)
{
	if (g == NULL)
		return;
	g->closed = 1;
	glue_heap_hold();
	raft_close(&g->raft, glue_closed);
	/* libuv's handles close over several passes; the libevent events
	 * still drive them. */
	while (g->closed != 2)
		event_base_loop(g->cfg.base, EVLOOP_ONCE);
	/* Callbacks still due may reach raft_uv's state (see
	 * glue_io_closed()): let them all run before it is freed. */
	uv_run(&g->loop, UV_RUN_DEFAULT);
	raft_uv_close(&g->io);
	raft_uv_tcp_close(&g->tcp);
	uv_run(&g->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&g->loop) != 0)
		log_warnx("raft: libuv's loop still had handles at exit");
	glue_heap_release();
	event_free(g->ev_fd);
	event_free(g->ev_timer);
	event_free(g->ev_kick);
	free(g->dir);
	free(g->address);
	free(g);
}
