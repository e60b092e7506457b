/* Unit tests of snapshots: write and load, a forked snapshot taken while
 * writes go on, corrupt files refused, recovery from snapshot plus log;
 * backups: a snapshot streamed by a child into a pipe and checked as it
 * arrives, a reader that goes away, restore into a new directory. */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/log.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

#define NKEYS	100000

/* The expected state, one slot per key number. */
struct model {
	uint8_t		present[NKEYS];
	int64_t		version[NKEYS];
	int64_t		ts[NKEYS];
	size_t		count;
};

struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct store		*store;
	struct wal		*wal;
	struct snap		*snap;
	struct model		 model;
	int			 done;		/* snapshot callbacks */
	int			 ok;
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/dsd-test-snap-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	f->store = store_new();
	*state = f;
	return 0;
}

static void
rm_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[512];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (unlink(path) == -1 && errno == EISDIR)
			rmdir(path);
	}
	closedir(d);
	rmdir(dir);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	snap_free(f->snap);
	wal_close(f->wal);
	store_free(f->store);
	event_base_free(f->base);
	rm_dir(f->dir);
	free(f);
	return 0;
}

/* Key k: four canonical bytes.  Data: derived from key and timestamp. */
static void
mkkey(uint8_t *key, size_t k)
{
	key[0] = 0x10;
	key[1] = (uint8_t)(k >> 16);
	key[2] = (uint8_t)(k >> 8);
	key[3] = (uint8_t)k;
}

static size_t
mkdata(char *buf, size_t len, size_t k, int64_t ts)
{
	return (size_t)snprintf(buf, len, "value-%zu-%" PRId64, k, ts);
}

/*
 * Apply an operation as the kvdb mode does: to the store, then to the log
 * if it changed the store, and update the model by the API's rules.
 */
static void
kv(struct fixture *f, enum store_op_type type, size_t k, int64_t ts)
{
	struct store_op		op;
	struct store_result	res;
	struct model		*m = &f->model;
	uint8_t			key[4], *p;
	char			data[64];
	size_t			n;

	mkkey(key, k);
	memset(&op, 0, sizeof op);
	op.type = type;
	op.key = key;
	op.keylen = sizeof key;
	op.timestamp = ts;
	op.version = m->version[k];
	op.data = (const uint8_t *)data;
	op.datalen = mkdata(data, sizeof data, k, ts);
	/* Space in the log first, so that the store never holds a change
	 * the log could not take (wal.h). */
	n = store_op_encode(&op, NULL, 0);
	p = NULL;
	if (f->wal != NULL)
		assert_non_null(p = wal_reserve(f->wal, n));
	assert_int_equal(store_apply(f->store, &op, &res), 0);

	switch (type) {
	case STORE_OP_SET:
		assert_int_equal(res.status, m->present[k] ? STORE_ERROR :
		    STORE_SUCCESS);
		if (!m->present[k]) {
			m->present[k] = 1;
			m->version[k] = 1;
			m->ts[k] = ts;
			m->count++;
		}
		break;
	case STORE_OP_TESTANDSET:
		assert_int_equal(res.status, m->present[k] ? STORE_SUCCESS :
		    STORE_ERROR_NE);
		if (m->present[k]) {
			m->version[k]++;
			m->ts[k] = ts;
		}
		break;
	case STORE_OP_DEL:
		assert_int_equal(res.status, m->present[k] ? STORE_SUCCESS :
		    STORE_ERROR);
		if (m->present[k]) {
			m->present[k] = 0;
			m->version[k] = 0;
			m->count--;
		}
		break;
	default:
		fail();
	}
	if (p != NULL && res.status == STORE_SUCCESS) {
		assert_int_equal(store_op_encode(&op, p, n), n);
		assert_true(wal_commit(f->wal) > 0);
	} else if (p != NULL)
		wal_cancel(f->wal);
	store_result_release(&res);
}

/* A store equals a model: the same keys, versions, timestamps and data. */
static void
check_model(struct store *st, const struct model *m)
{
	struct store_op		op;
	struct store_result	res;
	uint8_t			key[4];
	char			data[64];
	const uint8_t		*p;
	size_t			k, n, len;

	assert_int_equal(store_count(st), m->count);
	memset(&op, 0, sizeof op);
	op.type = STORE_OP_GET;
	op.key = key;
	op.keylen = sizeof key;
	for (k = 0; k < NKEYS; k++) {
		if (!m->present[k])
			continue;
		mkkey(key, k);
		assert_int_equal(store_apply(st, &op, &res), 0);
		assert_int_equal(res.status, STORE_SUCCESS);
		assert_int_equal(store_entry_version(res.value), m->version[k]);
		assert_int_equal(store_entry_timestamp(res.value), m->ts[k]);
		n = mkdata(data, sizeof data, k, m->ts[k]);
		p = store_entry_data(res.value, &len);
		assert_int_equal(len, n);
		assert_memory_equal(p, data, n);
		store_result_release(&res);
	}
}

static void
open_wal(struct fixture *f, struct snap_info *info)
{
	struct wal_config	cfg;
	char			err[512] = "";

	memset(&cfg, 0, sizeof cfg);
	cfg.dir = f->dir;
	cfg.base = f->base;
	f->wal = snap_recover(f->store, &cfg, info, err, sizeof err);
	if (f->wal == NULL)
		fail_msg("snap_recover: %s", err);
}

static void
done_cb(void *arg, int ok, const struct snap_info *info)
{
	struct fixture	*f = arg;

	f->done++;
	f->ok = ok;
}

static void
open_snap_limit(struct fixture *f, const struct snap_info *info,
    unsigned int interval, uint64_t log_limit)
{
	struct snap_config	cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.dir = f->dir;
	cfg.base = f->base;
	cfg.store = f->store;
	cfg.wal = f->wal;
	cfg.interval = interval;
	cfg.log_limit = log_limit;
	cfg.done = done_cb;
	cfg.arg = f;
	assert_non_null(f->snap = snap_new(&cfg, info));
}

static void
open_snap(struct fixture *f, const struct snap_info *info,
    unsigned int interval)
{
	open_snap_limit(f, info, interval, 0);
}

/* Close everything and start again from the files, as after a crash
 * (closing the log only syncs what was appended, as the flusher would
 * have). */
static struct snap_info
restart(struct fixture *f)
{
	struct snap_info	info;

	snap_free(f->snap);
	f->snap = NULL;
	wal_close(f->wal);
	f->wal = NULL;
	store_free(f->store);
	f->store = store_new();
	open_wal(f, &info);
	return info;
}

static void
wait_done(struct fixture *f, int n)
{
	int	i;

	for (i = 0; i < 10000 && f->done < n; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_int_equal(f->done, n);
}

static int
file_exists(struct fixture *f, const char *name)
{
	char		path[512];
	struct stat	sb;

	snprintf(path, sizeof path, "%s/%s", f->dir, name);
	return stat(path, &sb) == 0;
}

static void	flip(int fd, off_t off);

/* The tests. */

static void
test_write_load_100k(void **state)
{
	struct fixture		*f = *state;
	struct store		*back = store_new();
	struct snap_info	 info;
	char			 err[512] = "";
	size_t			 k;

	/* 100k keys, some updated and some deleted, written in this process
	 * and loaded back: every key, version, timestamp and byte. */
	for (k = 0; k < NKEYS; k++)
		kv(f, STORE_OP_SET, k, (int64_t)k);
	for (k = 0; k < NKEYS; k += 3)
		kv(f, STORE_OP_TESTANDSET, k, -(int64_t)k);
	for (k = 0; k < NKEYS; k += 7)
		kv(f, STORE_OP_DEL, k, 0);
	if (snap_write(f->dir, f->store, 4, 1234, err, sizeof err) == -1)
		fail_msg("snap_write: %s", err);
	assert_false(file_exists(f, "snapshot.tmp"));
	if (snap_load(f->dir, back, &info, err, sizeof err) == -1)
		fail_msg("snap_load: %s", err);
	assert_int_equal(info.present, 1);
	assert_int_equal(info.segno, 4);
	assert_int_equal(info.seq, 1234);
	assert_int_equal(info.count, f->model.count);
	check_model(back, &f->model);
	store_free(back);
}

/* The time the state was taken is in the header. */
static void
test_taken_time(void **state)
{
	struct fixture		*f = *state;
	struct store		*back = store_new();
	struct snap_info	 info;
	char			 err[512] = "";
	int64_t			 before = (int64_t)time(NULL) * 1000;

	kv(f, STORE_OP_SET, 1, 1);
	assert_int_equal(snap_write(f->dir, f->store, 1, 1, err, sizeof err),
	    0);
	assert_int_equal(snap_load(f->dir, back, &info, err, sizeof err), 0);
	assert_true(info.taken_ms >= before &&
	    info.taken_ms <= (int64_t)time(NULL) * 1000 + 1000);
	store_free(back);
}

/* Read a streaming child's pipe to its end: the bytes, malloc'ed. */
static uint8_t *
read_all(int fd, size_t *len)
{
	uint8_t	*buf = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap == 0 ? 1 << 16 : cap * 2;
			assert_non_null(buf = realloc(buf, cap));
		}
		n = read(fd, buf + *len, cap - *len);
		assert_true(n >= 0);
		if (n == 0)
			return buf;
		*len += (size_t)n;
	}
}

static int
wait_child(pid_t pid)
{
	int	status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* Forked, streamed into a pipe: the bytes check as they come, make a
 * file that loads into the very state of the fork's moment (the parent's
 * writes after it are not in it), and the child exits 0. */
static void
test_stream(void **state)
{
	struct fixture		*f = *state;
	struct store		*back = store_new();
	struct model		*at_fork = malloc(sizeof *at_fork);
	struct snap_check	 sc;
	struct snap_info	 info;
	uint8_t			*bytes, *buf = malloc(SNAP_BUFLEN);
	char			 err[512] = "", path[512];
	size_t			 k, len;
	pid_t			 pid;
	int			 fds[2], fd;

	assert_non_null(at_fork);
	assert_non_null(buf);
	for (k = 0; k < NKEYS; k++)
		kv(f, STORE_OP_SET, k, (int64_t)k);
	for (k = 0; k < NKEYS; k += 5)
		kv(f, STORE_OP_DEL, k, 0);
	*at_fork = f->model;
	assert_int_equal(pipe(fds), 0);
	pid = snap_fork_stream(fds[1], f->store, 777, buf);
	assert_true(pid > 0);
	close(fds[1]);
	for (k = 1; k < NKEYS; k += 5)
		kv(f, STORE_OP_TESTANDSET, k, 5);
	bytes = read_all(fds[0], &len);
	close(fds[0]);
	assert_int_equal(wait_child(pid), 0);

	snap_check_init(&sc);
	/* In uneven pieces, as a network delivers them. */
	for (k = 0; k < len; k += 1000 + k % 37)
		assert_int_equal(snap_check_update(&sc, bytes + k,
		    len - k < 1000 + k % 37 ? len - k : 1000 + k % 37, err,
		    sizeof err), 0);
	if (snap_check_end(&sc, &info, err, sizeof err) == -1)
		fail_msg("snap_check_end: %s", err);
	assert_int_equal(info.count, at_fork->count);
	assert_int_equal(info.seq, 777);
	assert_int_equal(info.segno, 0);
	assert_int_equal(info.size, len);

	snprintf(path, sizeof path, "%s/backup", f->dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) != -1);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
	if (snap_file_load(path, back, &info, err, sizeof err) == -1)
		fail_msg("snap_file_load: %s", err);
	check_model(back, at_fork);

	/* Damage as it arrives: a flipped bit, a byte short, one more. */
	bytes[len / 2] ^= 0x04;
	snap_check_init(&sc);
	assert_int_equal(snap_check_update(&sc, bytes, len, err, sizeof err),
	    0);
	assert_int_equal(snap_check_end(&sc, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "checksum mismatch"));
	bytes[len / 2] ^= 0x04;
	snap_check_init(&sc);
	assert_int_equal(snap_check_update(&sc, bytes, len - 1, err,
	    sizeof err), 0);
	assert_int_equal(snap_check_end(&sc, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "the header says"));
	snap_check_init(&sc);
	assert_int_equal(snap_check_update(&sc, bytes, len, err, sizeof err),
	    0);
	assert_int_equal(snap_check_update(&sc, bytes, 1, err, sizeof err),
	    -1);
	free(bytes);
	free(buf);
	free(at_fork);
	store_free(back);
}

/* A reader that goes away: the child fails (EPIPE) and exits 1, and is
 * not left behind. */
static void
test_stream_reader_gone(void **state)
{
	struct fixture	*f = *state;
	uint8_t		*buf = malloc(SNAP_BUFLEN), head[100];
	size_t		 k;
	ssize_t		 n;
	pid_t		 pid;
	int		 fds[2], status;

	assert_non_null(buf);
	for (k = 0; k < NKEYS; k++)
		kv(f, STORE_OP_SET, k, (int64_t)k);
	assert_int_equal(pipe(fds), 0);
	pid = snap_fork_stream(fds[1], f->store, 1, buf);
	assert_true(pid > 0);
	close(fds[1]);
	for (k = 0; k < sizeof head; k += (size_t)n)
		assert_true((n = read(fds[0], head + k, sizeof head - k)) > 0);
	close(fds[0]);
	status = wait_child(pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	free(buf);
}

/* Restore: a new directory (made, or empty) gets the snapshot, which a
 * recovery then loads; a directory with anything in it is refused, and a
 * damaged file too, leaving no directory behind. */
static void
test_restore(void **state)
{
	struct fixture		*f = *state;
	struct store		*back = store_new();
	struct snap_info	 info, rinfo;
	struct stat		 sb;
	char			 err[512] = "", file[512], dir[512];
	char			 path[600];
	size_t			 k;
	int			 fd;

	for (k = 0; k < 1000; k++)
		kv(f, STORE_OP_SET, k, (int64_t)k);
	assert_int_equal(snap_write(f->dir, f->store, 3, 1000, err,
	    sizeof err), 0);
	snprintf(file, sizeof file, "%s/snapshot", f->dir);
	snprintf(dir, sizeof dir, "%s/restored", f->dir);
	if (snap_restore(file, dir, &rinfo, err, sizeof err) == -1)
		fail_msg("snap_restore: %s", err);
	assert_int_equal(rinfo.count, 1000);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	if (snap_load(dir, back, &info, err, sizeof err) == -1)
		fail_msg("snap_load: %s", err);
	assert_int_equal(info.present, 1);
	assert_int_equal(info.seq, 1000);
	check_model(back, &f->model);
	store_free(back);

	/* Not empty now: refused, and what is there stays. */
	assert_int_equal(snap_restore(file, dir, &rinfo, err, sizeof err), -1);
	assert_non_null(strstr(err, "not empty"));
	snprintf(path, sizeof path, "%s/snapshot", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(unlink(path), 0);
	/* Empty: fine. */
	assert_int_equal(snap_restore(file, dir, &rinfo, err, sizeof err), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);

	/* A damaged file: refused, no directory made. */
	assert_true((fd = open(file, O_RDWR)) != -1);
	flip(fd, SNAP_HDRLEN + 10);
	close(fd);
	assert_int_equal(snap_restore(file, dir, &rinfo, err, sizeof err), -1);
	assert_non_null(strstr(err, "checksum mismatch"));
	assert_int_equal(stat(dir, &sb), -1);
}

static void
test_no_snapshot(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	char			 err[512] = "";

	/* An empty directory loads as "no snapshot", and a leftover
	 * snapshot.tmp is cleared away. */
	snprintf(err, sizeof err, "%s/snapshot.tmp", f->dir);
	close(open(err, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(snap_load(f->dir, f->store, &info, err,
	    sizeof err), 0);
	assert_int_equal(info.present, 0);
	assert_false(file_exists(f, "snapshot.tmp"));
}

static void
test_snapshot_while_writing(void **state)
{
	struct fixture		*f = *state;
	struct model		*at_fork = malloc(sizeof *at_fork);
	struct store		*back;
	struct snap_info	 info;
	char			 err[512] = "";
	size_t			 k;
	pid_t			 pid;
	int			 status;

	/* A snapshot taken while writes go on holds exactly the state at
	 * the fork: the child is stopped while the parent changes a tenth
	 * of the keys, adds new ones and deletes others. */
	open_wal(f, &info);
	open_snap(f, &info, 0);
	for (k = 0; k < NKEYS - 10000; k++)
		kv(f, STORE_OP_SET, k, 1);
	assert_int_equal(snap_start(f->snap, 0), 1);
	memcpy(at_fork, &f->model, sizeof *at_fork);
	pid = snap_child(f->snap);
	assert_true(pid > 0);
	kill(pid, SIGSTOP);
	/* It stopped before it could finish: the writes below really run
	 * while the snapshot is being written. */
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(snap_start(f->snap, 1), -1);	/* one at a time */
	assert_int_equal(errno, EBUSY);
	for (k = 0; k < NKEYS; k += 10)
		kv(f, STORE_OP_TESTANDSET, k, 2);
	for (k = NKEYS - 10000; k < NKEYS; k++)
		kv(f, STORE_OP_SET, k, 3);
	for (k = 5; k < NKEYS; k += 10)
		kv(f, STORE_OP_DEL, k, 0);
	kill(pid, SIGCONT);
	wait_done(f, 1);
	assert_true(f->ok);
	assert_int_equal(snap_last(f->snap)->seq, NKEYS - 10000);

	/* The file is the state at the fork, not a record more. */
	back = store_new();
	if (snap_load(f->dir, back, &info, err, sizeof err) == -1)
		fail_msg("snap_load: %s", err);
	assert_int_equal(info.seq, NKEYS - 10000);
	check_model(back, at_fork);
	store_free(back);
	free(at_fork);

	/* The segment it covers goes; the log from then on stays, and
	 * recovery is the snapshot plus that log. */
	assert_int_equal(wal_sync(f->wal), 0);
	assert_false(file_exists(f, "wal-0000000000000001.log"));
	assert_true(file_exists(f, "wal-0000000000000002.log"));
	info = restart(f);
	assert_int_equal(info.seq, NKEYS - 10000);
	check_model(f->store, &f->model);
}

static void
test_nothing_changed_no_snapshot(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;

	/* With nothing appended since the last snapshot (or ever), a
	 * snapshot is not taken unless forced. */
	open_wal(f, &info);
	open_snap(f, &info, 0);
	assert_int_equal(snap_start(f->snap, 0), 0);
	kv(f, STORE_OP_SET, 1, 1);
	assert_int_equal(snap_start(f->snap, 0), 1);
	wait_done(f, 1);
	assert_int_equal(snap_start(f->snap, 0), 0);
	assert_int_equal(snap_start(f->snap, 1), 1);
	wait_done(f, 2);
	assert_true(f->ok);
}

static void
test_stats(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	struct snap_stats	 st;
	uint64_t		 n = 0;
	size_t			 i;

	/* A snapshot that completes is counted, timed and sized, and one
	 * not taken (nothing changed) is not counted.  (A failed one is
	 * counted in test_failed_snapshot_keeps_log.) */
	open_wal(f, &info);
	open_snap(f, &info, 0);
	kv(f, STORE_OP_SET, 1, 1);
	assert_int_equal(snap_start(f->snap, 0), 1);
	wait_done(f, 1);
	assert_int_equal(snap_start(f->snap, 0), 0);
	snap_get_stats(f->snap, &st);
	for (i = 0; i <= st.duration.bounds->n; i++)
		n += st.duration.n[i];
	assert_int_equal(st.ok, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(n, 1);
	assert_int_equal(st.size, snap_last(f->snap)->size);
	assert_true(st.size > 0);
	assert_true(st.written_ns > (uint64_t)1600000000 * 1000000000);
}

static void
test_periodic(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	struct timeval		 tv = { 1, 500000 };

	/* The timer takes a snapshot after writes, and none while nothing
	 * changes. */
	open_wal(f, &info);
	open_snap(f, &info, 1);
	kv(f, STORE_OP_SET, 1, 1);
	kv(f, STORE_OP_SET, 2, 1);
	wait_done(f, 1);
	assert_int_equal(snap_last(f->snap)->seq, 2);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(f->done, 1);
	kv(f, STORE_OP_DEL, 1, 1);
	wait_done(f, 2);
	assert_int_equal(snap_last(f->snap)->seq, 3);
	assert_int_equal(snap_last(f->snap)->count, 1);
}

/* Write with snap_poke() after each, as kvdb does, until a snapshot
 * starts; the bytes of log it took. */
static uint64_t
write_until_snapshot(struct fixture *f, size_t *k, size_t max)
{
	uint64_t	start = wal_appended(f->wal);

	for (; *k < max; (*k)++) {
		kv(f, STORE_OP_SET, *k, 1);
		snap_poke(f->snap);
		if (snap_child(f->snap) != -1)
			return wal_appended(f->wal) - start;
	}
	fail_msg("no snapshot after %zu writes", max);
	return 0;
}

static void
test_log_size(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	uint64_t		 logged, size;
	size_t			 k = 0;
	struct stat		 sb;
	char			 path[512];

	/* With no timer, the log's size alone starts snapshots: at the
	 * limit while the snapshot is smaller than it... */
	open_wal(f, &info);
	open_snap_limit(f, &info, 0, 4096);
	logged = write_until_snapshot(f, &k, 1000);
	assert_true(logged >= 4096 && logged < 4096 + 64);
	wait_done(f, 1);
	assert_true(f->ok);
	size = snap_last(f->snap)->size;
	assert_true(size > 0 && size < 4096);
	logged = write_until_snapshot(f, &k, 2000);
	assert_true(logged >= 4096 && logged < 4096 + 64);
	wait_done(f, 2);

	/* ...and at the snapshot's size once it is larger. */
	for (; k < 3000; k++)
		kv(f, STORE_OP_SET, k, 1);
	assert_int_equal(snap_start(f->snap, 0), 1);
	wait_done(f, 3);
	size = snap_last(f->snap)->size;
	assert_true(size > 4096 * 4);
	logged = write_until_snapshot(f, &k, 10000);
	assert_true(logged >= size && logged < size + 64);
	wait_done(f, 4);
	assert_true(f->ok);

	/* Recovery counts the log after the snapshot as written: the next
	 * snapshot comes when that log plus new writes reach the limit. */
	kv(f, STORE_OP_TESTANDSET, 1, 2);
	assert_int_equal(wal_sync(f->wal), 0);
	info = restart(f);
	assert_true(info.present);
	snprintf(path, sizeof path, "%s/snapshot", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(info.size, (uint64_t)sb.st_size);
	if (wal_appended(f->wal) == 0 || wal_appended(f->wal) >= 64)
		fail_msg("%" PRIu64 " bytes of log after the snapshot "
		    "(records %" PRIu64 " to %" PRIu64 ")",
		    wal_appended(f->wal), info.seq, wal_last_seq(f->wal));
	check_model(f->store, &f->model);
}

static void
test_failed_snapshot_keeps_log(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	struct snap_stats	 st;
	char			 path[512];

	/* A child that cannot write reports failure, counted as one; the
	 * log it would have covered stays, and recovery still has
	 * everything. */
	open_wal(f, &info);
	open_snap(f, &info, 0);
	kv(f, STORE_OP_SET, 1, 1);
	snprintf(path, sizeof path, "%s/snapshot.tmp", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(snap_start(f->snap, 0), 1);
	wait_done(f, 1);
	assert_false(f->ok);
	assert_int_equal(snap_last(f->snap)->present, 0);
	snap_get_stats(f->snap, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.ok, 0);
	assert_int_equal(st.size, 0);
	rmdir(path);
	kv(f, STORE_OP_SET, 2, 1);
	assert_int_equal(wal_sync(f->wal), 0);
	assert_true(file_exists(f, "wal-0000000000000001.log"));
	info = restart(f);
	assert_int_equal(info.present, 0);
	check_model(f->store, &f->model);
}

static void
test_shutdown_snapshot(void **state)
{
	struct fixture		*f = *state;
	struct snap_info	 info;
	size_t			 k;

	/* At a clean shutdown a running child is waited for, then a last
	 * snapshot is written; start-up then replays no log at all. */
	open_wal(f, &info);
	open_snap(f, &info, 0);
	for (k = 0; k < 1000; k++)
		kv(f, STORE_OP_SET, k, 5);
	assert_int_equal(snap_start(f->snap, 0), 1);
	for (k = 0; k < 1000; k += 2)
		kv(f, STORE_OP_TESTANDSET, k, 6);
	assert_int_equal(snap_shutdown(f->snap, 1), 0);
	assert_int_equal(f->done, 1);
	assert_int_equal(snap_last(f->snap)->seq, 1500);
	info = restart(f);
	assert_int_equal(info.seq, 1500);
	assert_int_equal(wal_last_seq(f->wal), 1500);
	assert_false(file_exists(f, "wal-0000000000000001.log"));
	assert_false(file_exists(f, "wal-0000000000000002.log"));
	check_model(f->store, &f->model);
}

/* Damage a good snapshot of a few keys with fn, and expect want. */
static void
check_refused(struct fixture *f, void (*fn)(int fd, off_t size),
    const char *want)
{
	struct store		*back = store_new();
	struct snap_info	 info;
	struct stat		 sb;
	char			 err[512] = "", path[512];
	size_t			 k;
	int			 fd;

	for (k = 0; k < 50; k++)
		kv(f, STORE_OP_SET, k, 9);
	assert_int_equal(snap_write(f->dir, f->store, 1, 50, err, sizeof err),
	    0);
	snprintf(path, sizeof path, "%s/snapshot", f->dir);
	fd = open(path, O_RDWR);
	assert_int_equal(fstat(fd, &sb), 0);
	fn(fd, sb.st_size);
	close(fd);
	assert_int_equal(snap_load(f->dir, back, &info, err, sizeof err), -1);
	if (strstr(err, want) == NULL || strstr(err, path) == NULL)
		fail_msg("unexpected error: %s", err);
	store_free(back);
}

static void
flip(int fd, off_t off)
{
	uint8_t	c;

	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
}

static void
damage_body(int fd, off_t size)
{
	flip(fd, size / 2);
}

static void
damage_header(int fd, off_t size)
{
	flip(fd, 33);		/* the entry count */
}

static void
damage_magic(int fd, off_t size)
{
	flip(fd, 0);
}

static void
damage_truncate(int fd, off_t size)
{
	assert_int_equal(ftruncate(fd, size - 1), 0);
}

static void
damage_short(int fd, off_t size)
{
	assert_int_equal(ftruncate(fd, 10), 0);
}

static void
test_corrupt_body_refused(void **state)
{
	/* A flipped bit among the entries fails the checksum. */
	check_refused(*state, damage_body, "checksum mismatch in the entries");
}

static void
test_corrupt_header_refused(void **state)
{
	/* A flipped bit in the header fails the header's checksum. */
	check_refused(*state, damage_header, "header checksum mismatch");
}

static void
test_bad_magic_refused(void **state)
{
	/* A file that is not a snapshot says so. */
	check_refused(*state, damage_magic, "bad magic");
}

static void
test_truncated_refused(void **state)
{
	/* A file shorter than its header says is refused, and one shorter
	 * than a header too. */
	check_refused(*state, damage_truncate, "the header says");
}

static void
test_short_refused(void **state)
{
	check_refused(*state, damage_short, "shorter than the header");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_write_load_100k),
		T(test_taken_time),
		T(test_stream),
		T(test_stream_reader_gone),
		T(test_restore),
		T(test_no_snapshot),
		T(test_snapshot_while_writing),
		T(test_stats),
		T(test_nothing_changed_no_snapshot),
		T(test_periodic),
		T(test_log_size),
		T(test_failed_snapshot_keeps_log),
		T(test_shutdown_snapshot),
		T(test_corrupt_body_refused),
		T(test_corrupt_header_refused),
		T(test_bad_magic_refused),
		T(test_truncated_refused),
		T(test_short_refused),
#undef T
	};

	log_init("test_snap", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
