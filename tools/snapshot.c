/* dsd-cli snapshot save, verify and restore; see snapshot.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "kv/admin.pb-c.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"
#include "net/grpc_client.h"
#include "kvcall.h"
#include "kvtool.h"
#include "snapshot.h"

#define SNAP_PROG	"dsd-cli"
#define SNAPSHOT_PATH	"/dsd.kvdb.v1.Maintenance/Snapshot"
/* The largest chunk the server sends is 64 KiB; room to spare. */
#define SNAPSHOT_MAX_MSG	(4 << 20)

/* Exit statuses; dsd-cli(1), EXIT STATUS. */
#define SNAP_OK		0
#define SNAP_FILE	1
#define SNAP_USAGE	2
#define SNAP_CALL	3

/* One save: the call's progress and the file it fills. */
struct save {
	struct event_base	*base;
	struct grpcc_conn	*conn;
	int			 up, down;	/* the connection's state */
	char			 why[256];	/* why it went down */
	int			 done;
	int			 status;
	char			*message;
	int			 fd;		/* the temporary file */
	const char		*tmpname;
	struct snap_check	 check;
	uint64_t		 bytes;
	char			 failed[512];	/* a local failure, or "" */
	int			 interrupted;
};

/* What was done (what: name), then what the snapshot file holds, as
 * "name: value" lines. */
static void
snap_print(const char *what, const char *name, const struct snap_info *info)
{
	char	when[40];

	printf("%s: %s\n", what, name);
	printf("keys: %" PRIu64 "\n", info->count);
	printf("bytes: %" PRIu64 "\n", info->size);
	printf("record: %" PRIu64 "\n", info->seq);
	if (info->taken_ms != 0) {
		kvt_format_time(info->taken_ms, when, sizeof when);
		printf("taken: %s\n", when);
	} else
		printf("taken: unknown\n");
}

/* A chunk: checked as it passes, then written. */
static int
save_msg(void *arg, const uint8_t *msg, size_t len)
{
	struct save			*s = arg;
	Dsd__Kvdb__V1__SnapshotChunk	*m;
	char				 err[256];
	int				 rv = 0;

	if ((m = dsd__kvdb__v1__snapshot_chunk__unpack(NULL, len,
	    msg)) == NULL) {
		snprintf(s->failed, sizeof s->failed, "the server sent a "
		    "message that is not a SnapshotChunk");
		return -1;
	}
	if (snap_check_update(&s->check, m->data.data, m->data.len, err,
	    sizeof err) == -1) {
		snprintf(s->failed, sizeof s->failed, "what the server sent "
		    "is not a sound snapshot: %s", err);
		rv = -1;
	} else if (wal_writeall(s->fd, m->data.data, m->data.len) == -1) {
		snprintf(s->failed, sizeof s->failed, "%s: write: %s",
		    s->tmpname, strerror(errno));
		rv = -1;
	} else
		s->bytes += m->data.len;
	dsd__kvdb__v1__snapshot_chunk__free_unpacked(m, NULL);
	return rv;
}

static void
save_done(void *arg, int status, const char *message, const uint8_t *reply,
    size_t len)
{
	struct save	*s = arg;

	s->done = 1;
	s->status = status;
	if (message != NULL)
		s->message = strdup(message);
}

static void
save_state(struct grpcc_conn *conn, int up, const char *why, void *arg)
{
	struct save	*s = arg;

	if (up)
		s->up = 1;
	else {
		s->down = 1;
		snprintf(s->why, sizeof s->why, "%s", why != NULL ? why : "");
	}
}

/* ^C or a TERM: stop the call, so that the file is removed on the way
 * out. */
static void
save_signal(evutil_socket_t sig, short what, void *arg)
{
	struct save	*s = arg;

	s->interrupted = 1;
	if (s->conn != NULL)
		grpcc_close(s->conn);
	s->conn = NULL;
}

/*
 * One attempt at addr.  Returns SNAP_OK, or SNAP_CALL after saying why,
 * with *next set if nothing was received and another address may be
 * tried.
 */
static int
save_from(struct save *s, const char *addr, const struct kvc_config *kcfg,
    int *next)
{
	struct grpcc_config	 cfg;
	const char		*err;
	uint8_t			 req[1];

	*next = 0;
	memset(&cfg, 0, sizeof cfg);
	cfg.addr = addr;
	cfg.max_reply = SNAPSHOT_MAX_MSG;
	cfg.connect_timeout_ms = kcfg->timeout_ms;
	/* A server gone silent fails the save rather than hanging it. */
	cfg.user_timeout_ms = kcfg->timeout_ms;
	cfg.on_state = save_state;
	cfg.arg = s;
	cfg.tls = kcfg->tls;
	cfg.server_name = kcfg->server_name;
	s->up = s->down = s->done = 0;
	if ((s->conn = grpcc_connect(s->base, &cfg, &err)) == NULL) {
		kvt_err(SNAP_PROG, "cannot connect to %s: %s", addr, err);
		*next = 1;
		return SNAP_CALL;
	}
	/* An empty SnapshotRequest packs to no bytes. */
	if (grpcc_call_stream(s->conn, SNAPSHOT_PATH, req, 0, 0, save_msg,
	    save_done, s) == -1) {
		kvt_err(SNAP_PROG, "cannot start a call: out of memory");
		return SNAP_CALL;
	}
	while (!s->done)
		if (event_base_loop(s->base, EVLOOP_ONCE) == -1)
			break;
	grpcc_close(s->conn);
	s->conn = NULL;
	if (s->done && s->status == 0 && s->failed[0] == '\0')
		return SNAP_OK;
	if (s->interrupted)
		kvt_err(SNAP_PROG, "interrupted");
	else if (s->failed[0] != '\0')
		kvt_err(SNAP_PROG, "%s", s->failed);
	else if (!s->up) {
		kvt_err(SNAP_PROG, "cannot connect to %s: %s", addr,
		    s->message != NULL ? s->message : s->why);
		*next = s->bytes == 0;
	} else
		kvt_err(SNAP_PROG, "%s: %s: %s%s%s", addr, SNAPSHOT_PATH,
		    kvt_grpc_code_name(s->status), s->message != NULL ? ": " :
		    "", s->message != NULL ? s->message : "");
	free(s->message);
	s->message = NULL;
	return SNAP_CALL;
}

/* Save into a temporary file beside path, made durable under path only
 * once the whole snapshot has come and checked. */
static int
snapshot_save(struct event_base *base, const struct kvc_config *kcfg,
    const char *path)
{
	struct save		 s;
	struct snap_info	 info;
	struct event		*sigint = NULL, *sigterm = NULL;
	struct timespec		 t0, t1;
	const char		*step;
	char			*dcopy, *bcopy, *dir, *tmp = NULL, err[256];
	size_t			 i;
	int			 dirfd, rv = SNAP_CALL, next = 1;

	memset(&s, 0, sizeof s);
	s.base = base;
	s.fd = -1;
	dcopy = strdup(path);
	bcopy = strdup(path);
	if (dcopy == NULL || bcopy == NULL) {
		kvt_err(SNAP_PROG, "out of memory");
		free(dcopy);
		free(bcopy);
		return SNAP_FILE;
	}
	dir = dirname(dcopy);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		kvt_err(SNAP_PROG, "%s: %s", dir, strerror(errno));
		free(dcopy);
		free(bcopy);
		return SNAP_FILE;
	}
	/* Hidden, and unique: two saves to one name do not meet. */
	if (asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, basename(bcopy)) == -1) {
		tmp = NULL;
		kvt_err(SNAP_PROG, "out of memory");
		rv = SNAP_FILE;
		goto out;
	}
	if ((s.fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		kvt_err(SNAP_PROG, "%s: %s", tmp, strerror(errno));
		rv = SNAP_FILE;
		goto out;
	}
	s.tmpname = tmp;
	sigint = evsignal_new(base, SIGINT, save_signal, &s);
	sigterm = evsignal_new(base, SIGTERM, save_signal, &s);
	if (sigint == NULL || sigterm == NULL ||
	    evsignal_add(sigint, NULL) == -1 ||
	    evsignal_add(sigterm, NULL) == -1) {
		kvt_err(SNAP_PROG, "cannot catch signals");
		rv = SNAP_CALL;
		goto out_events;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < kcfg->naddrs && next && !s.interrupted; i++) {
		snap_check_init(&s.check);
		rv = save_from(&s, kcfg->addrs[i], kcfg, &next);
		if (rv == SNAP_OK)
			break;
	}
	if (rv != SNAP_OK)
		goto out_events;
	if (snap_check_end(&s.check, &info, err, sizeof err) == -1) {
		kvt_err(SNAP_PROG, "the server ended the stream OK, but %s",
		    err);
		rv = SNAP_CALL;
		goto out_events;
	}
	rv = snap_commit(dirfd, s.fd, tmp + strlen(dir) + 1, basename(bcopy),
	    &step);
	s.fd = -1;
	if (rv == -1) {
		kvt_err(SNAP_PROG, "%s: %s: %s", path, step, strerror(errno));
		rv = SNAP_FILE;
		goto out_events;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	snap_print("saved", path, &info);
	printf("seconds: %.3f\n", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	fflush(stdout);
	rv = SNAP_OK;

out_events:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
out:
	if (s.fd != -1)
		close(s.fd);
	if (rv != SNAP_OK && s.tmpname != NULL)
		(void)unlink(s.tmpname);
	close(dirfd);
	free(tmp);
	free(dcopy);
	free(bcopy);
	return rv;
}

static int
snapshot_verify(const char *path)
{
	struct store		*st;
	struct snap_info	 info;
	char			 err[512];
	int			 rv;

	if ((st = store_new()) == NULL) {
		kvt_err(SNAP_PROG, "out of memory");
		return SNAP_FILE;
	}
	rv = snap_file_load(path, st, &info, err, sizeof err);
	store_free(st);
	if (rv == -1) {
		kvt_err(SNAP_PROG, "%s", err);
		return SNAP_FILE;
	}
	snap_print("verified", path, &info);
	fflush(stdout);
	return SNAP_OK;
}

static int
snapshot_restore(const char *path, const char *dir)
{
	struct snap_info	info;
	char			err[512];

	if (snap_restore(path, dir, &info, err, sizeof err) == -1) {
		kvt_err(SNAP_PROG, "%s", err);
		return SNAP_FILE;
	}
	snap_print("restored", dir, &info);
	fflush(stdout);
	return SNAP_OK;
}

int
snapshot_run(struct event_base *base, const struct kvc_config *kcfg,
    int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "save") == 0)
		return snapshot_save(base, kcfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return snapshot_verify(argv[2]);
	if (argc == 4 && strcmp(argv[1], "restore") == 0)
		return snapshot_restore(argv[2], argv[3]);
	fflush(stdout);
	fprintf(stderr, "usage: snapshot save FILE\n"
	    "       snapshot verify FILE\n"
	    "       snapshot restore FILE DIR\n");
	return SNAP_USAGE;
}
