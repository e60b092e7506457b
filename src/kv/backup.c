/* Online backup through a forked child and a pipe; see backup.h. */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/grpc.h"
#include "kv/admin.pb-c.h"
#include "kv/backup.h"
#include "kv/snap.h"

/* Snapshot bytes per message. */
#define BACKUP_CHUNK		(64 * 1024)
/* Bytes queued for the client at most; past it the pipe is not read. */
#define BACKUP_QUEUED		(256 * 1024)
/* The pipe's size asked for: the child writes ahead by that much. */
#define BACKUP_PIPE		(1024 * 1024)
/* How often to look again whether the records sent are durable. */
#define BACKUP_DURABLE_MS	5

struct backup {
	struct event_base	*base;
	struct backup_source	 src;
	struct grpc_method	 methods[2];
	size_t			 chunk;		/* bytes per message */
	uint8_t			*childbuf;	/* SNAP_BUFLEN, the child's */
	uint8_t			*in;		/* chunk bytes from the pipe */
	uint8_t			*msg;		/* a packed SnapshotChunk */
	struct event		*ev_chld;
	struct event		*ev_durable;

	/* The backup running: from the call until its child is reaped and
	 * the call answered. */
	int			 busy;
	struct grpc_call	*call;		/* NULL once answered or dead */
	pid_t			 pid;		/* -1 once reaped */
	int			 status;	/* its wait status then */
	int			 rfd;		/* -1 once at its end */
	struct event		*ev_read;
	int			 paused;	/* ev_read off: queue full */
	uint64_t		 seq;
	uint64_t		 sent;		/* bytes handed to the call */
	struct snap_check	 check;
	struct timespec		 started;
};

static void	backup_pump(struct backup *);

static int64_t
backup_ms_since(const struct timespec *t0)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Stop reading the pipe. */
static void
backup_close_pipe(struct backup *b)
{
	if (b->ev_read != NULL) {
		event_free(b->ev_read);
		b->ev_read = NULL;
	}
	if (b->rfd != -1) {
		close(b->rfd);
		b->rfd = -1;
	}
}

/* The run is over once its child is reaped and its call let go. */
static void
backup_maybe_done(struct backup *b)
{
	if (b->pid != -1 || b->call != NULL)
		return;
	backup_close_pipe(b);
	evtimer_del(b->ev_durable);
	b->busy = 0;
}

/* End the call with an error: the client must not take what it got for
 * a backup.  The child, if it still runs, is stopped. */
static void
backup_fail(struct backup *b, enum grpc_status status, const char *msg)
{
	if (b->call != NULL) {
		log_warnx("backup: failed after %" PRIu64 " bytes: %s",
		    b->sent, msg);
		grpc_call_error(b->call, status, msg);
		b->call = NULL;
	}
	backup_close_pipe(b);
	if (b->pid != -1)
		(void)kill(b->pid, SIGKILL);
	backup_maybe_done(b);
}

/* Both ends in (pipe at its end, child reaped): judge the run. */
static void
backup_finish(struct backup *b)
{
	struct snap_info	info;
	char			err[256], msg[320];

	if (b->call == NULL || b->rfd != -1 || b->pid != -1) {
		backup_maybe_done(b);
		return;
	}
	if (!WIFEXITED(b->status) || WEXITSTATUS(b->status) != 0) {
		if (WIFSIGNALED(b->status))
			snprintf(msg, sizeof msg, "the snapshot child was "
			    "killed by signal %d", WTERMSIG(b->status));
		else
			snprintf(msg, sizeof msg, "the snapshot child failed "
			    "(exit %d)", WIFEXITED(b->status) ?
			    WEXITSTATUS(b->status) : -1);
		backup_fail(b, GRPC_INTERNAL, msg);
		return;
	}
	if (snap_check_end(&b->check, &info, err, sizeof err) == -1) {
		snprintf(msg, sizeof msg, "the snapshot is incomplete: %s",
		    err);
		backup_fail(b, GRPC_INTERNAL, msg);
		return;
	}
	/* What the state holds may still be on its way to the disk (kvdb
	 * replies once its log is): the OK waits for it, so that a backup
	 * never holds a write a crash could take back. */
	if (b->src.durable != NULL && !b->src.durable(b->src.arg, b->seq)) {
		struct timeval	tv = { 0, BACKUP_DURABLE_MS * 1000 };

		evtimer_add(b->ev_durable, &tv);
		return;
	}
	log_info("backup: sent %" PRIu64 " keys up to record %" PRIu64
	    ", %" PRIu64 " bytes, in %" PRId64 " ms", info.count, info.seq,
	    info.size, backup_ms_since(&b->started));
	grpc_call_end(b->call);
	b->call = NULL;
	backup_maybe_done(b);
}

static void
backup_durable_cb(evutil_socket_t fd, short what, void *arg)
{
	backup_finish(arg);
}

/* Read the pipe into messages while the client's queue has room. */
static void
backup_pump(struct backup *b)
{
	Dsd__Kvdb__V1__SnapshotChunk	 m =
	    DSD__KVDB__V1__SNAPSHOT_CHUNK__INIT;
	char				 err[256], msg[320];
	ssize_t				 n;
	size_t				 len;

	while (b->call != NULL && b->rfd != -1) {
		if (grpc_call_queued(b->call) >= BACKUP_QUEUED) {
			/* The writable callback turns it on again. */
			if (!b->paused) {
				event_del(b->ev_read);
				b->paused = 1;
			}
			return;
		}
		n = read(b->rfd, b->in, b->chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n == -1) {
			snprintf(msg, sizeof msg, "reading the snapshot "
			    "child's pipe: %s", strerror(errno));
			backup_fail(b, GRPC_INTERNAL, msg);
			return;
		}
		if (n == 0) {
			backup_close_pipe(b);
			backup_finish(b);
			return;
		}
		if (snap_check_update(&b->check, b->in, (size_t)n, err,
		    sizeof err) == -1) {
			snprintf(msg, sizeof msg, "the snapshot child wrote "
			    "no snapshot: %s", err);
			backup_fail(b, GRPC_INTERNAL, msg);
			return;
		}
		m.data.data = b->in;
		m.data.len = (size_t)n;
		len = dsd__kvdb__v1__snapshot_chunk__pack(&m, b->msg);
		if (grpc_call_send(b->call, b->msg, len) == -1) {
			/* Answered already (a reset): only let go of it. */
			log_warnx("backup: the call failed after %" PRIu64
			    " bytes", b->sent);
			grpc_call_error(b->call, GRPC_INTERNAL, NULL);
			b->call = NULL;
			backup_fail(b, GRPC_INTERNAL, NULL);
			return;
		}
		b->sent += (size_t)n;
	}
	if (b->paused && b->rfd != -1) {
		event_add(b->ev_read, NULL);
		b->paused = 0;
	}
}

static void
backup_read_cb(evutil_socket_t fd, short what, void *arg)
{
	backup_pump(arg);
}

static void
backup_writable(struct grpc_call *call, void *arg)
{
	backup_pump(arg);
}

/* The client went away, or its deadline passed. */
static void
backup_cancelled(struct grpc_call *call, void *arg)
{
	struct backup	*b = arg;

	log_info("backup: the client went away after %" PRIu64 " bytes; "
	    "stopping the snapshot child", b->sent);
	grpc_call_error(call, GRPC_CANCELLED, NULL);	/* lets go of it */
	b->call = NULL;
	backup_fail(b, GRPC_CANCELLED, NULL);
}

static void
backup_chld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct backup	*b = arg;

	if (b->pid == -1 || !snap_reap(b->pid, &b->status))
		return;
	b->pid = -1;
	backup_finish(b);
}

static void
backup_snapshot(struct grpc_call *call, const uint8_t *req, size_t len,
    void *arg)
{
	struct backup			*b = arg;
	Dsd__Kvdb__V1__SnapshotRequest	*m;
	const struct store		*st;
	char				 msg[128];
	int				 fds[2];

	if ((m = dsd__kvdb__v1__snapshot_request__unpack(NULL, len,
	    req)) == NULL) {
		grpc_call_error(call, GRPC_INVALID_ARGUMENT,
		    "malformed SnapshotRequest");
		return;
	}
	dsd__kvdb__v1__snapshot_request__free_unpacked(m, NULL);
	if (b->busy) {
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED, "a snapshot "
		    "is being sent already; one at a time");
		return;
	}
	if (pipe2(fds, O_CLOEXEC) == -1) {
		snprintf(msg, sizeof msg, "pipe: %s", strerror(errno));
		grpc_call_error(call, GRPC_UNAVAILABLE, msg);
		return;
	}
	/* Larger than the default 64 KiB, if allowed, so that the child
	 * runs ahead of the reads; the size is only a hint. */
	(void)fcntl(fds[1], F_SETPIPE_SZ, BACKUP_PIPE);
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1 ||
	    (b->ev_read = event_new(b->base, fds[0], EV_READ | EV_PERSIST,
	    backup_read_cb, b)) == NULL) {
		close(fds[0]);
		close(fds[1]);
		grpc_call_error(call, GRPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		return;
	}
	st = b->src.state(b->src.arg, &b->seq);
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	b->pid = snap_fork_stream(fds[1], st, b->seq, b->childbuf);
	close(fds[1]);
	b->rfd = fds[0];
	if (b->pid == -1) {
		snprintf(msg, sizeof msg, "fork: %s", strerror(errno));
		log_warnx("backup: %s", msg);
		backup_close_pipe(b);
		grpc_call_error(call, GRPC_UNAVAILABLE, msg);
		return;
	}
	b->busy = 1;
	b->call = call;
	b->sent = 0;
	b->paused = 0;
	snap_check_init(&b->check);
	grpc_call_on_cancel(call, backup_cancelled, b);
	grpc_call_on_writable(call, backup_writable, b);
	event_add(b->ev_read, NULL);
	log_info("backup: child %ld sending the state up to record %" PRIu64,
	    (long)b->pid, b->seq);
}

struct backup *
backup_new(struct event_base *base, struct grpc_server *srv,
    const struct backup_source *src, size_t max_message)
{
	struct backup	*b;

	b = xcalloc(1, sizeof *b);
	b->base = base;
	b->src = *src;
	b->pid = -1;
	b->rfd = -1;
	/* A message's field tag and length take a few bytes more. */
	b->chunk = max_message < BACKUP_CHUNK + 16 ? max_message - 16 :
	    BACKUP_CHUNK;
	b->childbuf = xmalloc(SNAP_BUFLEN);
	b->in = xmalloc(b->chunk);
	b->msg = xmalloc(b->chunk + 16);
	b->ev_chld = evsignal_new(base, SIGCHLD, backup_chld_cb, b);
	b->ev_durable = evtimer_new(base, backup_durable_cb, b);
	if (b->ev_chld == NULL || b->ev_durable == NULL ||
	    event_add(b->ev_chld, NULL) == -1)
		fatalx("backup: cannot set up events");
	b->methods[0] = (struct grpc_method){
	    "/dsd.kvdb.v1.Maintenance/Snapshot", backup_snapshot, b };
	b->methods[1] = (struct grpc_method){ NULL, NULL, NULL };
	if (grpc_server_register(srv, b->methods) == -1)
		fatalx("cannot register the maintenance service");
	return b;
}

void
backup_free(struct backup *b)
{
	if (b == NULL)
		return;
	if (b->pid != -1)
		snap_kill(b->pid);
	if (b->call != NULL)
		grpc_call_error(b->call, GRPC_UNAVAILABLE, "server stopped");
	backup_close_pipe(b);
	event_free(b->ev_chld);
	event_free(b->ev_durable);
	free(b->childbuf);
	free(b->in);
	free(b->msg);
	free(b);
}
