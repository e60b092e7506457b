/* dsd-cli snapshot save, verify and restore; see snapshot.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cliout.h"
#include "kv/admin.pb-c.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"
#include "net/grpc_client.h"
#include "kvcall.h"
#include "kvtool.h"
#include "snapshot.h"

#define SNAPSHOT_PATH	"/dsd.kvdb.v1.Maintenance/Snapshot"
/* The largest chunk the server sends is 64 KiB; room to spare. */
#define SNAPSHOT_MAX_MSG	(4 << 20)

/* Exit statuses (dsd-cli(1), EXIT STATUS): a file that is not a sound
 * snapshot, or cannot be read or written, is an ERROR; a call that
 * failed has no reply. */
#define SNAP_OK		CLI_OK
#define SNAP_FILE	CLI_ERROR
#define SNAP_CALL	CLI_TRANSPORT

/* One save: the call's progress, the file it fills, and why it failed. */
struct save {
	struct event_base	*base;
	struct grpcc_conn	*conn;
	int			 up;		/* the connection was made */
	char			 why[256];	/* why it went down */
	int			 done;
	int			 status;
	char			*message;
	int			 fd;		/* the temporary file */
	const char		*tmpname;
	struct snap_check	 check;
	uint64_t		 bytes;
	int			 interrupted;
	/* A failure: the exit status, its name (dsd-cli(1), JSON OUTPUT)
	 * and what to say; rv 0 while there is none. */
	int			 rv;
	const char		*status_name;
	char			 failed[512];
};

/* Keep the first failure of an attempt. */
static void
save_failed(struct save *s, int rv, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
save_failed(struct save *s, int rv, const char *status, const char *fmt, ...)
{
	va_list	ap;

	if (s->rv != 0)
		return;
	s->rv = rv;
	s->status_name = status;
	va_start(ap, fmt);
	vsnprintf(s->failed, sizeof s->failed, fmt, ap);
	va_end(ap);
}

/*
 * The command's outcome: what was done (what: name), what the snapshot
 * file holds, and for a save how long it took (seconds >= 0), as
 * "name: value" lines or one JSON object.  Returns the exit status.
 */
static int
snap_report(const char *what, const char *name, const struct snap_info *info,
    double seconds)
{
	json_t	*o;
	char	 when[40] = "unknown";

	if (info->taken_ms != 0)
		kvt_format_time(info->taken_ms, when, sizeof when);
	if (cliout_json()) {
		o = cliout_object("OK");
		if (o != NULL && json_object_update_new(o, json_pack("{s:s, "
		    "s:I, s:I, s:I, s:I, s:s}", what, name, "keys",
		    (json_int_t)info->count, "bytes", (json_int_t)info->size,
		    "record", (json_int_t)info->seq, "taken_ms",
		    (json_int_t)info->taken_ms, "taken", when)) == -1) {
			json_decref(o);
			o = NULL;
		}
		if (o != NULL && seconds >= 0 && json_object_set_new(o,
		    "seconds", json_real(seconds)) == -1) {
			json_decref(o);
			o = NULL;
		}
		return cliout_emit(o, SNAP_OK);
	}
	printf("%s: %s\n", what, name);
	printf("keys: %" PRIu64 "\n", info->count);
	printf("bytes: %" PRIu64 "\n", info->size);
	printf("record: %" PRIu64 "\n", info->seq);
	printf("taken: %s\n", when);
	if (seconds >= 0)
		printf("seconds: %.3f\n", seconds);
	fflush(stdout);
	return SNAP_OK;
}

/* A chunk: checked as it passes, then written. */
static int
save_msg(void *arg, const uint8_t *msg, size_t len)
{
	struct save			*s = arg;
	Dsd__Kvdb__V1__SnapshotChunk	*m;
	char				 err[256];

	if ((m = dsd__kvdb__v1__snapshot_chunk__unpack(NULL, len,
	    msg)) == NULL) {
		save_failed(s, SNAP_CALL, "INTERNAL", "the server sent a "
		    "message that is not a SnapshotChunk");
		return -1;
	}
	if (snap_check_update(&s->check, m->data.data, m->data.len, err,
	    sizeof err) == -1)
		save_failed(s, SNAP_CALL, "INTERNAL", "what the server sent is "
		    "not a sound snapshot: %s", err);
	else if (wal_writeall(s->fd, m->data.data, m->data.len) == -1)
		save_failed(s, SNAP_FILE, "ERROR", "%s: write: %s",
		    s->tmpname, strerror(errno));
	else
		s->bytes += m->data.len;
	dsd__kvdb__v1__snapshot_chunk__free_unpacked(m, NULL);
	return s->rv != 0 ? -1 : 0;
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
	else
		snprintf(s->why, sizeof s->why, "%s", why != NULL ? why : "");
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
 * One attempt at addr: 0, or -1 with the failure in s, and *next set if
 * nothing was received and another address may be tried.
 */
static int
save_from(struct save *s, const char *addr, const struct kvc_config *kcfg,
    int *next)
{
	struct grpcc_config	 cfg;
	const char		*err, *msg;
	uint8_t			 req[1];

	*next = 0;
	s->rv = 0;
	s->up = s->done = 0;
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
	if ((s->conn = grpcc_connect(s->base, &cfg, &err)) == NULL) {
		save_failed(s, SNAP_CALL, "UNAVAILABLE", "cannot connect to "
		    "%s: %s", addr, err);
		*next = 1;
		return -1;
	}
	/* An empty SnapshotRequest packs to no bytes. */
	if (grpcc_call_stream(s->conn, SNAPSHOT_PATH, req, 0, 0, save_msg,
	    save_done, s) == -1) {
		grpcc_close(s->conn);
		s->conn = NULL;
		save_failed(s, SNAP_CALL, "INTERNAL", "cannot start a call: "
		    "out of memory");
		return -1;
	}
	while (!s->done)
		if (event_base_loop(s->base, EVLOOP_ONCE) == -1)
			break;
	grpcc_close(s->conn);
	s->conn = NULL;
	msg = s->message != NULL ? s->message : "";
	if (s->interrupted)
		save_failed(s, SNAP_CALL, "CANCELLED", "interrupted");
	else if (!s->done)
		save_failed(s, SNAP_CALL, "INTERNAL", "the event loop failed");
	else if (s->status != 0 && !s->up) {
		save_failed(s, SNAP_CALL, kvt_grpc_code_name(s->status),
		    "cannot connect to %s: %s", addr, msg[0] != '\0' ? msg :
		    s->why);
		*next = s->bytes == 0;
	} else if (s->status != 0)
		save_failed(s, SNAP_CALL, kvt_grpc_code_name(s->status),
		    "%s: %s: %s%s%s", addr, SNAPSHOT_PATH,
		    kvt_grpc_code_name(s->status), msg[0] != '\0' ? ": " : "",
		    msg);
	free(s->message);
	s->message = NULL;
	return s->rv != 0 ? -1 : 0;
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
	int			 dirfd = -1, next = 1, committed;

	memset(&s, 0, sizeof s);
	s.base = base;
	s.fd = -1;
	dcopy = strdup(path);
	bcopy = strdup(path);
	if (dcopy == NULL || bcopy == NULL) {
		save_failed(&s, SNAP_FILE, "INTERNAL", "out of memory");
		goto out;
	}
	dir = dirname(dcopy);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		save_failed(&s, SNAP_FILE, "ERROR", "%s: %s", dir,
		    strerror(errno));
		goto out;
	}
	/* Hidden, and unique: two saves to one name do not meet. */
	if (asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, basename(bcopy)) == -1) {
		tmp = NULL;
		save_failed(&s, SNAP_FILE, "INTERNAL", "out of memory");
		goto out;
	}
	if ((s.fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		save_failed(&s, SNAP_FILE, "ERROR", "%s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	s.tmpname = tmp;
	sigint = evsignal_new(base, SIGINT, save_signal, &s);
	sigterm = evsignal_new(base, SIGTERM, save_signal, &s);
	if (sigint == NULL || sigterm == NULL ||
	    evsignal_add(sigint, NULL) == -1 ||
	    evsignal_add(sigterm, NULL) == -1) {
		save_failed(&s, SNAP_CALL, "INTERNAL", "cannot catch signals");
		goto out;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < kcfg->naddrs; i++) {
		snap_check_init(&s.check);
		if (save_from(&s, kcfg->addrs[i], kcfg, &next) == 0)
			break;
		if (!next || s.interrupted || i + 1 == kcfg->naddrs)
			goto out;
		cliout_note("%s; trying %s", s.failed, kcfg->addrs[i + 1]);
	}
	if (snap_check_end(&s.check, &info, err, sizeof err) == -1) {
		save_failed(&s, SNAP_CALL, "INTERNAL", "the server ended the "
		    "stream OK, but %s", err);
		goto out;
	}
	committed = snap_commit(dirfd, s.fd, tmp + strlen(dir) + 1,
	    basename(bcopy), &step);
	s.fd = -1;
	if (committed == -1) {
		save_failed(&s, SNAP_FILE, "ERROR", "%s: %s: %s", path, step,
		    strerror(errno));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

out:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (s.fd != -1)
		close(s.fd);
	if (s.rv != 0 && s.tmpname != NULL)
		(void)unlink(s.tmpname);
	if (dirfd != -1)
		close(dirfd);
	free(tmp);
	free(dcopy);
	free(bcopy);
	if (s.rv != 0)
		return cliout_fail(s.rv, s.status_name, "%s", s.failed);
	return snap_report("saved", path, &info,
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static int
snapshot_verify(const char *path)
{
	struct store		*st;
	struct snap_info	 info;
	char			 err[512];
	int			 rv;

	if ((st = store_new()) == NULL)
		return cliout_fail(SNAP_FILE, "INTERNAL", "out of memory");
	rv = snap_file_load(path, st, &info, err, sizeof err);
	store_free(st);
	if (rv == -1)
		return cliout_fail(SNAP_FILE, "ERROR", "%s", err);
	return snap_report("verified", path, &info, -1);
}

static int
snapshot_restore(const char *path, const char *dir)
{
	struct snap_info	info;
	char			err[512];

	if (snap_restore(path, dir, &info, err, sizeof err) == -1)
		return cliout_fail(SNAP_FILE, "ERROR", "%s", err);
	return snap_report("restored", dir, &info, -1);
}

int
snapshot_run(struct event_base *base, const struct kvc_config *kcfg,
    int argc, char **argv)
{
	cliout_context("action", json_string(argv[1]));
	if (argc == 3 && strcmp(argv[1], "save") == 0)
		return snapshot_save(base, kcfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return snapshot_verify(argv[2]);
	if (argc == 4 && strcmp(argv[1], "restore") == 0)
		return snapshot_restore(argv[2], argv[3]);
	return cliout_usage("usage: snapshot save FILE\n"
	    "       snapshot verify FILE\n"
	    "       snapshot restore FILE DIR");
}
