/* Unit tests of the write-ahead log: append and replay, group commit and
 * its durability reports, rotation and purge, torn tails and corruption. */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/le.h"
#include "core/log.h"
#include "kv/wal.h"

/* A temporary data directory, a loop, and what the callbacks saw. */
struct fixture {
	char			 dir[64];
	struct event_base	*base;
	struct wal		*wal;
	uint64_t		 durable;	/* last reported */
	int			 ncalls;	/* durable callbacks */
	int			 error;
	int			 inline_sync;
	enum wal_fsync		 policy;
	size_t			 prealloc;

	/* Replayed records. */
	uint64_t		 nreplayed;
	uint64_t		 lastseq;
	uint8_t			*seen;		/* copies, end to end */
	size_t			 seenlen;
};

static void
durable_cb(void *arg, uint64_t seq, int error)
{
	struct fixture	*f = arg;

	/* Reports only move forward. */
	assert_true(seq >= f->durable);
	f->durable = seq;
	f->ncalls++;
	if (error != 0)
		f->error = error;
}

static int
replay_cb(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct fixture	*f = arg;

	assert_int_equal(seq, f->lastseq + 1);
	f->lastseq = seq;
	f->nreplayed++;
	f->seen = realloc(f->seen, f->seenlen + len);
	memcpy(f->seen + f->seenlen, rec, len);
	f->seenlen += len;
	return 0;
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/dsd-test-wal-XXXXXX");
	/* Small, so that appends outgrow the reservation again and again. */
	f->prealloc = 8192;
	assert_non_null(mkdtemp(f->dir));
	f->base = event_base_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	DIR		*d;
	struct dirent	*de;
	char		 path[512];

	wal_close(f->wal);
	event_base_free(f->base);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", f->dir,
			    de->d_name);
			if (unlink(path) == -1 && errno == EISDIR)
				rmdir(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f->seen);
	free(f);
	return 0;
}

/* Open (and replay) with the fixture's settings; NULL is a failure. */
static struct wal *
reopen(struct fixture *f, uint64_t after_segno, uint64_t after_seq,
    char *err, size_t errlen)
{
	struct wal_config	cfg;

	wal_close(f->wal);
	f->wal = NULL;
	memset(&cfg, 0, sizeof cfg);
	cfg.dir = f->dir;
	cfg.fsync = f->policy;
	cfg.inline_sync = f->inline_sync;
	cfg.prealloc = f->prealloc;
	cfg.base = f->base;
	cfg.durable = durable_cb;
	cfg.arg = f;
	f->nreplayed = 0;
	f->lastseq = after_seq;
	f->seenlen = 0;
	f->durable = 0;
	f->wal = wal_open(&cfg, after_segno, after_seq, replay_cb, f, err,
	    errlen);
	if (f->wal != NULL)
		f->durable = wal_durable_seq(f->wal);
	return f->wal;
}

static void
must_open(struct fixture *f, uint64_t after_segno, uint64_t after_seq)
{
	char	err[512] = "";

	if (reopen(f, after_segno, after_seq, err, sizeof err) == NULL)
		fail_msg("wal_open: %s", err);
}

/* Run the loop until the log reports seq durable (or 5 s pass). */
static void
wait_durable(struct fixture *f, uint64_t seq)
{
	int	i;

	for (i = 0; i < 5000 && f->durable < seq && f->error == 0; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
	assert_true(f->durable >= seq);
}

/* Record i: "rec-<i>" padded with its own byte to a length that varies. */
static size_t
make_rec(uint8_t *buf, uint64_t i)
{
	size_t	len = 8 + (size_t)(i * 37 % 300);

	memset(buf, (int)(i & 0xff), len);
	snprintf((char *)buf, 8, "r%06" PRIu64, i % 1000000);
	return len;
}

static void
append_n(struct fixture *f, uint64_t from, uint64_t n)
{
	uint8_t		buf[512];
	uint64_t	i;
	size_t		len;

	for (i = from; i < from + n; i++) {
		len = make_rec(buf, i);
		assert_int_equal(wal_append(f->wal, buf, len), i);
	}
}

/* Check that the replay saw records from..to, in order. */
static void
check_seen(struct fixture *f, uint64_t from, uint64_t to)
{
	uint8_t		buf[512];
	uint64_t	i;
	size_t		len, off = 0;

	assert_int_equal(f->nreplayed, to - from + 1);
	for (i = from; i <= to; i++) {
		len = make_rec(buf, i);
		assert_true(off + len <= f->seenlen);
		assert_memory_equal(f->seen + off, buf, len);
		off += len;
	}
	assert_int_equal(off, f->seenlen);
}

static void
seg_path(struct fixture *f, uint64_t segno, char *buf, size_t len)
{
	snprintf(buf, len, "%s/wal-%016" PRIx64 ".log", f->dir, segno);
}

static off_t
file_size(const char *path)
{
	struct stat	sb;

	if (stat(path, &sb) == -1)
		return -1;
	return sb.st_size;
}

/* Where a segment's records end: the first zero length, as recovery sees
 * it, or the file's end.  The top bit of a length is the sync flag (in a
 * version-1 segment no length has it). */
static off_t
data_end(const char *path)
{
	uint8_t	 h[4];
	off_t	 off = 32, size = file_size(path);
	uint32_t len;
	int	 fd = open(path, O_RDONLY);

	assert_true(fd != -1);
	while (off + 8 <= size && pread(fd, h, 4, off) == 4) {
		len = le_get32(h) & 0x7fffffffU;
		if (len == 0)
			break;
		off += 8 + len;
	}
	close(fd);
	return off < size ? off : size;
}

/* Where record i (from 1) starts in segment 1 of a log of make_rec()
 * records written from the start. */
static off_t
rec_off(uint64_t i)
{
	uint8_t		buf[512];
	uint64_t	j;
	off_t		off = 32;

	for (j = 1; j < i; j++)
		off += 8 + (off_t)make_rec(buf, j);
	return off;
}

/* Zero the 512-byte sector holding off, as a power cut that kept later
 * sectors of a write but not this one leaves it (reserved space reads as
 * zeros); returns the sector's start. */
static off_t
zero_sector(const char *path, off_t off)
{
	uint8_t	zeros[512];
	int	fd = open(path, O_WRONLY);

	assert_true(fd != -1);
	memset(zeros, 0, sizeof zeros);
	off -= off % 512;
	assert_int_equal(pwrite(fd, zeros, sizeof zeros, off), 512);
	close(fd);
	return off;
}

/* Send stderr to a file until capture_end(), which returns its text. */
static int	capture_fd = -1, capture_saved = -1;

static void
capture_begin(void)
{
	char	path[] = "/tmp/dsd-test-wal-log-XXXXXX";

	capture_fd = mkstemp(path);
	assert_true(capture_fd != -1);
	unlink(path);
	fflush(stderr);
	capture_saved = dup(2);
	dup2(capture_fd, 2);
}

static char *
capture_end(void)
{
	char	*out;
	off_t	 n;

	fflush(stderr);
	dup2(capture_saved, 2);
	close(capture_saved);
	n = lseek(capture_fd, 0, SEEK_END);
	out = calloc(1, (size_t)n + 1);
	assert_int_equal(pread(capture_fd, out, (size_t)n, 0), n);
	close(capture_fd);
	return out;
}

/* Reopen, which must succeed, with stderr captured; returns what was
 * logged. */
static char *
must_open_logged(struct fixture *f)
{
	struct wal	*w;
	char		 err[512] = "", *out;

	capture_begin();
	w = reopen(f, 0, 0, err, sizeof err);
	out = capture_end();
	if (w == NULL)
		fail_msg("wal_open: %s", err);
	return out;
}

/* The tests. */

static void
test_crc32c_vector(void **unused)
{
	/* The standard check value of CRC-32C, whole and in pieces. */
	assert_int_equal(wal_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(wal_crc32c(wal_crc32c(0, "1234", 4), "56789", 5),
	    0xe3069283);
	assert_int_equal(wal_crc32c(0, "", 0), 0);
}

static void
check_append_replay(void **state, int inline_sync)
{
	struct fixture	*f = *state;

	/* Records appended in several passes come back in order, once,
	 * after a close and a reopen. */
	f->inline_sync = inline_sync;
	must_open(f, 0, 0);
	assert_int_equal(f->nreplayed, 0);
	assert_int_equal(wal_last_seq(f->wal), 0);
	append_n(f, 1, 500);
	wait_durable(f, 500);
	append_n(f, 501, 700);
	wait_durable(f, 1200);
	append_n(f, 1201, 3);		/* left for wal_close() */
	must_open(f, 0, 0);
	check_seen(f, 1, 1203);
	assert_int_equal(wal_last_seq(f->wal), 1203);
	append_n(f, 1204, 10);
	must_open(f, 0, 0);
	check_seen(f, 1, 1213);
}

static void
test_append_replay(void **state)
{
	check_append_replay(state, 0);
}

static void
test_append_replay_inline(void **state)
{
	check_append_replay(state, 1);
}

/* A pass of the loop that appends many records at once. */
struct burst {
	struct fixture	*f;
	uint64_t	 from, n;
};

static void
burst_cb(evutil_socket_t fd, short what, void *arg)
{
	struct burst	*b = arg;

	append_n(b->f, b->from, b->n);
}

/* Observations in a histogram. */
static uint64_t
hist_count(const struct metrics_hist *h)
{
	uint64_t	n = 0;
	size_t		i;

	for (i = 0; i <= h->bounds->n; i++)
		n += h->n[i];
	return n;
}

static void
check_group_commit(void **state, int inline_sync)
{
	struct fixture		*f = *state;
	struct wal_stats	 before, after;
	struct burst		 b;
	char			 path[512];
	int			 calls;

	/* 1000 records appended in one loop callback are covered by one
	 * write and one fdatasync (timed in the stats' histogram), and
	 * reported durable in one call, with the whole batch already in the
	 * file when it is reported. */
	f->inline_sync = inline_sync;
	must_open(f, 0, 0);
	wal_get_stats(f->wal, &before);
	calls = f->ncalls;
	b.f = f;
	b.from = 1;
	b.n = 1000;
	assert_int_equal(event_base_once(f->base, -1, EV_TIMEOUT, burst_cb, &b,
	    NULL), 0);
	assert_int_equal(f->durable, 0);
	wait_durable(f, 1000);
	wal_get_stats(f->wal, &after);
	assert_int_equal(after.records - before.records, 1000);
	assert_int_equal(after.fsyncs - before.fsyncs, 1);
	assert_int_equal(hist_count(&after.sync) - hist_count(&before.sync), 1);
	assert_true(after.sync.sum_ns > before.sync.sum_ns);
	assert_int_equal(after.writes - before.writes, 1);
	assert_int_equal(f->ncalls - calls, 1);
	assert_int_equal(f->durable, 1000);
	assert_int_equal(wal_pending(f->wal), 0);
	seg_path(f, 1, path, sizeof path);
	/* The one write went past the reservation, which was renewed. */
	assert_int_equal(data_end(path), 32 + after.bytes - before.bytes);
	assert_int_equal(file_size(path), data_end(path) + (off_t)f->prealloc);
}

static void
test_group_commit(void **state)
{
	check_group_commit(state, 0);
}

static void
test_group_commit_inline(void **state)
{
	check_group_commit(state, 1);
}

static void
test_reserve_commit_cancel(void **state)
{
	struct fixture	*f = *state;
	uint8_t		 buf[512], *p;
	size_t		 len;

	/* A cancelled reservation takes no sequence and writes nothing; a
	 * committed one is the record encoded in place. */
	must_open(f, 0, 0);
	len = make_rec(buf, 1);
	assert_non_null(p = wal_reserve(f->wal, 100));
	memset(p, 0xee, 100);
	wal_cancel(f->wal);
	assert_int_equal(wal_last_seq(f->wal), 0);
	assert_non_null(p = wal_reserve(f->wal, len));
	memcpy(p, buf, len);
	assert_int_equal(wal_commit(f->wal), 1);
	assert_int_equal(wal_commit(f->wal), 0);	/* nothing reserved */
	append_n(f, 2, 2);
	wait_durable(f, 3);
	must_open(f, 0, 0);
	check_seen(f, 1, 3);
	assert_null(wal_reserve(f->wal, 0));
}

static void
test_not_durable_before_loop(void **state)
{
	struct fixture	*f = *state;

	/* Appending reports nothing by itself: the sequence becomes durable
	 * only once the loop has run and the flusher has synced. */
	must_open(f, 0, 0);
	append_n(f, 1, 3);
	assert_int_equal(wal_last_seq(f->wal), 3);
	assert_int_equal(wal_durable_seq(f->wal), 0);
	assert_true(wal_pending(f->wal) > 0);
	assert_int_equal(f->ncalls, 0);
	wait_durable(f, 3);
	assert_int_equal(wal_durable_seq(f->wal), 3);
}

static void
test_small_batch_on_loop(void **state)
{
	struct fixture		*f = *state;
	struct wal_stats	 before, after;

	/* With the flusher idle, a pass's lone record is written and synced
	 * by the loop itself, within that pass: durable without a thread
	 * wake-up.  A big batch still goes to the flusher. */
	must_open(f, 0, 0);
	wal_get_stats(f->wal, &before);
	append_n(f, 1, 1);
	assert_int_equal(f->durable, 0);
	assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(f->durable, 1);
	wal_get_stats(f->wal, &after);
	assert_int_equal(after.inline_batches - before.inline_batches, 1);
	assert_int_equal(after.fsyncs - before.fsyncs, 1);
	assert_int_equal(hist_count(&after.sync) - hist_count(&before.sync), 1);
	assert_int_equal(wal_pending(f->wal), 0);

	append_n(f, 2, 500);
	wait_durable(f, 501);
	wal_get_stats(f->wal, &before);
	assert_int_equal(before.inline_batches, after.inline_batches);
	must_open(f, 0, 0);
	check_seen(f, 1, 501);
}

static void
check_policy(void **state, enum wal_fsync policy, int inline_sync)
{
	struct fixture		*f = *state;
	struct wal_stats	 before, after;
	int			 i;

	/* everysec and no report records once written, without an
	 * fdatasync per batch; wal_sync() still syncs whatever the policy. */
	f->policy = policy;
	f->inline_sync = inline_sync;
	must_open(f, 0, 0);
	wal_get_stats(f->wal, &before);
	for (i = 0; i < 20; i++) {
		append_n(f, (uint64_t)i * 10 + 1, 10);
		wait_durable(f, (uint64_t)i * 10 + 10);
	}
	wal_get_stats(f->wal, &after);
	assert_true(after.writes - before.writes >= 20);
	assert_true(after.fsyncs - before.fsyncs <= 2);
	assert_int_equal(after.inline_batches, before.inline_batches);
	assert_int_equal(wal_sync(f->wal), 0);
	wal_get_stats(f->wal, &after);
	assert_true(after.fsyncs - before.fsyncs >= 1);
	must_open(f, 0, 0);
	check_seen(f, 1, 200);
}

static void
test_policy_everysec(void **state)
{
	check_policy(state, WAL_FSYNC_EVERYSEC, 0);
}

static void
test_policy_no(void **state)
{
	check_policy(state, WAL_FSYNC_NO, 0);
}

static void
test_policy_everysec_inline(void **state)
{
	check_policy(state, WAL_FSYNC_EVERYSEC, 1);
}

static void
test_rotate_and_purge(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	uint64_t	 segno, seq;

	/* Rotation ends a segment where it is called, whatever is still
	 * queued; purge deletes the covered segments once they are closed;
	 * a reopen after them replays only the later records. */
	must_open(f, 0, 0);
	append_n(f, 1, 50);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	assert_int_equal(segno, 1);
	assert_int_equal(seq, 50);
	append_n(f, 51, 25);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	assert_int_equal(segno, 2);
	assert_int_equal(seq, 75);
	append_n(f, 76, 5);
	wait_durable(f, 80);
	assert_int_equal(wal_sync(f->wal), 0);
	seg_path(f, 1, path, sizeof path);
	assert_true(file_size(path) > 32);
	seg_path(f, 3, path, sizeof path);
	assert_true(file_size(path) > 32);

	/* All three replay from the start. */
	must_open(f, 0, 0);
	check_seen(f, 1, 80);

	/* Purge up to 2 and reopen as a snapshot covering 75 would. */
	wal_purge(f->wal, 2);
	assert_int_equal(wal_sync(f->wal), 0);
	seg_path(f, 1, path, sizeof path);
	assert_int_equal(file_size(path), -1);
	seg_path(f, 2, path, sizeof path);
	assert_int_equal(file_size(path), -1);
	must_open(f, 2, 75);
	assert_int_equal(f->nreplayed, 5);
	assert_int_equal(wal_last_seq(f->wal), 80);
	append_n(f, 81, 1);
	must_open(f, 2, 75);
	assert_int_equal(f->nreplayed, 6);
}

static void
test_purge_waits_for_rotation(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	uint64_t	 segno, seq;

	/* A purge asked before the flusher has rotated still removes the
	 * old segment, and never the open one. */
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	wal_purge(f->wal, segno);
	wal_purge(f->wal, 99);
	append_n(f, 11, 10);
	assert_int_equal(wal_sync(f->wal), 0);
	seg_path(f, 1, path, sizeof path);
	assert_int_equal(file_size(path), -1);
	seg_path(f, 2, path, sizeof path);
	assert_true(file_size(path) > 32);
	must_open(f, 1, 10);
	check_seen(f, 11, 20);
}

static void
test_purge_failure_not_fatal(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], *out;
	uint64_t	 segno, seq;

	/* A covered segment that cannot be removed (here a directory in
	 * its place) is reported, and the log goes on working. */
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	assert_int_equal(wal_sync(f->wal), 0);
	seg_path(f, 1, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	capture_begin();
	wal_purge(f->wal, 1);
	append_n(f, 11, 5);
	wait_durable(f, 15);
	assert_int_equal(wal_sync(f->wal), 0);
	out = capture_end();
	assert_non_null(strstr(out, "removing segments a snapshot covers"));
	free(out);
	assert_int_equal(wal_error(f->wal), 0);
	append_n(f, 16, 5);
	wait_durable(f, 20);
	assert_int_equal(rmdir(path), 0);
	must_open(f, 1, 10);
	check_seen(f, 11, 20);
}

static void
test_snapshot_boundary_leftovers(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	uint64_t	 segno, seq;

	/* Segments a snapshot covers but that were never purged (a crash
	 * between the two) are removed at open, not replayed. */
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	append_n(f, 11, 10);
	must_open(f, 1, 10);
	check_seen(f, 11, 20);
	seg_path(f, 1, path, sizeof path);
	assert_int_equal(file_size(path), -1);
}

/* Reopen a log and append records from..from + n - 1, a sync group of
 * their own (the first written after the open's sync); then close. */
static void
add_group(struct fixture *f, uint64_t from, uint64_t n)
{
	must_open(f, 0, 0);
	append_n(f, from, n);
	wal_close(f->wal);
	f->wal = NULL;
}

/* Write a log of n records and close it; the segment's path in path. */
static void
make_log(struct fixture *f, uint64_t n, char *path, size_t len)
{
	must_open(f, 0, 0);
	append_n(f, 1, n);
	wal_close(f->wal);
	f->wal = NULL;
	seg_path(f, 1, path, len);
}

/* Write len bytes right after the last record, over the reserved zeros,
 * as a write cut short by a crash leaves them. */
static void
append_bytes(const char *path, const void *buf, size_t len)
{
	off_t	end = data_end(path);
	int	fd = open(path, O_WRONLY);

	assert_true(fd != -1);
	assert_int_equal(pwrite(fd, buf, len, end), (ssize_t)len);
	close(fd);
}

static void
flip_byte(const char *path, off_t off)
{
	uint8_t	c;
	int	fd = open(path, O_RDWR);

	assert_true(fd != -1);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x55;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void
check_torn(struct fixture *f, const char *path, off_t good)
{
	char		*out;

	out = must_open_logged(f);
	assert_non_null(strstr(out, "torn"));
	assert_non_null(strstr(out, path));
	free(out);
	check_seen(f, 1, 100);
	assert_int_equal(file_size(path), good);

	/* Appending continues where the good records end. */
	append_n(f, 101, 5);
	must_open(f, 0, 0);
	check_seen(f, 1, 105);
}

static void
test_torn_tail_short(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	uint8_t		 partial[20];
	off_t		 good;

	/* A record cut short at the end of the last segment is dropped,
	 * truncated away and reported; the ones before it replay. */
	make_log(f, 100, path, sizeof path);
	good = data_end(path);
	memset(partial, 0xab, sizeof partial);
	partial[0] = 200;	/* length 200, but 12 bytes follow */
	partial[1] = partial[2] = partial[3] = 0;
	append_bytes(path, partial, sizeof partial);
	check_torn(f, path, good);
}

static void
test_torn_tail_half_header(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	off_t		 good;

	/* Three bytes of a record header at the end are a torn record. */
	make_log(f, 100, path, sizeof path);
	good = data_end(path);
	append_bytes(path, "\x05\x00\x00", 3);
	check_torn(f, path, good);
}

static void
test_torn_tail_bad_crc(void **state)
{
	struct fixture	*f = *state;
	char		 path[512];
	uint8_t		 buf[512];
	size_t		 len;
	off_t		 good;

	/* A whole last record whose CRC fails is torn too. */
	make_log(f, 100, path, sizeof path);
	good = data_end(path);
	len = make_rec(buf + 8, 7);
	buf[0] = (uint8_t)len;
	buf[1] = (uint8_t)(len >> 8);
	buf[2] = buf[3] = 0;
	memset(buf + 4, 0x5a, 4);
	append_bytes(path, buf, len + 8);
	check_torn(f, path, good);
}

static void
test_zero_tail_is_the_end(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], *out;
	off_t		 end, size;
	uint8_t		 zeros[4096];

	/* Zeros after the last record, reserved space or a file extended
	 * and never written, are where the log ends: nothing is reported
	 * torn, nothing is cut, and appends go right after the records. */
	make_log(f, 100, path, sizeof path);
	end = data_end(path);
	/* Zeros written (read back) and zeros never written (skipped). */
	memset(zeros, 0, sizeof zeros);
	append_bytes(path, zeros, sizeof zeros);
	assert_int_equal(truncate(path, end + 3 * 65536), 0);
	size = file_size(path);
	out = must_open_logged(f);
	assert_null(strstr(out, "torn"));
	free(out);
	check_seen(f, 1, 100);
	assert_int_equal(file_size(path), size);
	append_n(f, 101, 5);
	must_open(f, 0, 0);
	check_seen(f, 1, 105);
	assert_true(data_end(path) > end);
}

static void
test_reserved_space(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], path2[512];
	uint64_t	 segno, seq;
	struct stat	 sb;

	/* A new segment has prealloc bytes allocated past its header;
	 * appends that outgrow them get more; the segment a rotation ends is
	 * cut to its records; a reopen finds every record either way. */
	must_open(f, 0, 0);
	seg_path(f, 1, path, sizeof path);
	assert_int_equal(file_size(path), 32 + (off_t)f->prealloc);
	append_n(f, 1, 500);	/* far past one reservation */
	wait_durable(f, 500);
	assert_true(data_end(path) > 32 + (off_t)f->prealloc);
	assert_true(file_size(path) >= data_end(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_true((off_t)sb.st_blocks * 512 >= file_size(path) - 4096);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	append_n(f, 501, 10);
	wait_durable(f, 510);
	assert_int_equal(file_size(path), data_end(path));
	seg_path(f, 2, path2, sizeof path2);
	assert_int_equal(file_size(path2), 32 + (off_t)f->prealloc);
	assert_true(data_end(path2) > 32);
	must_open(f, 0, 0);
	check_seen(f, 1, 510);
}

static void
test_mid_log_corruption_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], want[600], err[512] = "";

	/* A bad record followed by good ones, one of them written after a
	 * sync (a later sync group), stops start-up, with the file and
	 * offset in the message, and leaves the file as it was. */
	make_log(f, 100, path, sizeof path);
	add_group(f, 101, 10);
	flip_byte(path, 32 + 8 + 3);	/* payload of record 1 */
	assert_null(reopen(f, 0, 0, err, sizeof err));
	snprintf(want, sizeof want, "%s: offset 32: corrupt record followed by "
	    "a valid one", path);
	assert_non_null(strstr(err, want));
	assert_true(file_size(path) > 1000);
}

static void
test_corrupt_length_mid_log_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], err[512] = "";

	/* A length field damaged mid-log is refused too, not taken for the
	 * end of the log. */
	make_log(f, 100, path, sizeof path);
	add_group(f, 101, 10);
	flip_byte(path, 32 + 3);	/* record 1's length: huge */
	assert_null(reopen(f, 0, 0, err, sizeof err));
	assert_non_null(strstr(err, "offset 32"));
}

static void
test_corruption_in_earlier_segment_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], err[512] = "";
	uint64_t	 segno, seq;
	off_t		 size;

	/* Damage at the very end of a segment that is not the last is
	 * corruption, not a torn tail: rotation synced it whole. */
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	append_n(f, 11, 10);
	wal_close(f->wal);
	f->wal = NULL;
	seg_path(f, 1, path, sizeof path);
	size = file_size(path);
	flip_byte(path, size - 1);
	assert_null(reopen(f, 0, 0, err, sizeof err));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "not the last"));
}

static void
test_missing_segment_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], err[512] = "";
	uint64_t	 segno, seq;

	/* A segment missing from the middle, or records missing at the
	 * start with no snapshot to cover them, stop start-up. */
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	append_n(f, 11, 10);
	assert_int_equal(wal_rotate(f->wal, &segno, &seq), 0);
	append_n(f, 21, 10);
	wal_close(f->wal);
	f->wal = NULL;
	seg_path(f, 2, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_null(reopen(f, 0, 0, err, sizeof err));
	assert_non_null(strstr(err, "missing"));

	seg_path(f, 1, path, sizeof path);
	assert_int_equal(unlink(path), 0);
	assert_null(reopen(f, 0, 0, err, sizeof err));
	assert_non_null(strstr(err, "missing"));
	/* With a snapshot that covers 1..20, segment 3 is fine. */
	must_open(f, 2, 20);
	assert_int_equal(f->nreplayed, 10);
}

static void
test_torn_new_segment(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], *out;
	int		 fd;

	/* A last segment cut short while being created (header torn) is
	 * recreated, and the records before it kept. */
	make_log(f, 20, path, sizeof path);
	seg_path(f, 2, path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(write(fd, "DSD-W", 5), 5);
	close(fd);
	/* Segment 1 was not rotated cleanly here, but it is whole. */
	out = must_open_logged(f);
	assert_non_null(strstr(out, "torn while being created"));
	free(out);
	check_seen(f, 1, 20);
	append_n(f, 21, 5);
	must_open(f, 0, 0);
	check_seen(f, 1, 25);
	assert_int_equal(file_size(path) > 32, 1);
}

static void
test_new_segment_header_lost(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], *out;
	int		 fd;

	/* A last segment whose reserved size reached the disk but whose
	 * header did not (zeros throughout) is recreated too, as a power
	 * cut during rotation can leave it. */
	make_log(f, 20, path, sizeof path);
	seg_path(f, 2, path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	out = must_open_logged(f);
	assert_non_null(strstr(out, "torn while being created"));
	free(out);
	check_seen(f, 1, 20);
}

static void
test_new_segment_bad_header_with_data_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], err[512] = "";
	int		 fd;

	/* The same with a byte after the header is damage, not a segment
	 * torn while being created: refused. */
	make_log(f, 20, path, sizeof path);
	seg_path(f, 2, path, sizeof path);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	assert_int_equal(pwrite(fd, "x", 1, 4096), 1);
	close(fd);
	assert_null(reopen(f, 0, 0, err, sizeof err));
	assert_non_null(strstr(err, "bad segment header"));
}

/* Whether record i of segment 1 has the sync flag. */
static int
rec_flagged(struct fixture *f, uint64_t i)
{
	char	path[512];
	uint8_t	h[4];
	int	fd;

	seg_path(f, 1, path, sizeof path);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(pread(fd, h, 4, rec_off(i)), 4);
	close(fd);
	return (le_get32(h) & 0x80000000U) != 0;
}

static void
check_sync_flags(void **state, enum wal_fsync policy, int inline_sync)
{
	struct fixture	*f = *state;
	uint64_t	 i;

	/* The first record written after each completed sync has the flag,
	 * and no other: after open (recovery syncs), after a sync the policy
	 * makes or wal_sync(); with "no", a write without a sync between
	 * continues the group. */
	f->policy = policy;
	f->inline_sync = inline_sync;
	must_open(f, 0, 0);
	append_n(f, 1, 10);
	wait_durable(f, 10);
	append_n(f, 11, 10);
	wait_durable(f, 20);
	assert_int_equal(wal_sync(f->wal), 0);
	append_n(f, 21, 10);
	wal_close(f->wal);
	f->wal = NULL;
	for (i = 1; i <= 30; i++) {
		if (i == 1 || i == 21 ||
		    (i == 11 && policy == WAL_FSYNC_ALWAYS))
			assert_true(rec_flagged(f, i));
		else
			assert_false(rec_flagged(f, i));
	}
	must_open(f, 0, 0);
	check_seen(f, 1, 30);
}

static void
test_sync_flags_always(void **state)
{
	check_sync_flags(state, WAL_FSYNC_ALWAYS, 0);
}

static void
test_sync_flags_no(void **state)
{
	check_sync_flags(state, WAL_FSYNC_NO, 0);
}

static void
test_sync_flags_no_inline(void **state)
{
	check_sync_flags(state, WAL_FSYNC_NO, 1);
}

/* Write records 1..50 and sync them, then 51..100 in one batch; close. */
static void
make_two_groups(struct fixture *f, char *path, size_t len)
{
	must_open(f, 0, 0);
	append_n(f, 1, 50);
	assert_int_equal(wal_sync(f->wal), 0);
	append_n(f, 51, 50);
	wal_close(f->wal);
	f->wal = NULL;
	seg_path(f, 1, path, len);
}

static void
check_hole_in_last_group_cut(void **state, enum wal_fsync policy,
    int inline_sync)
{
	struct fixture	*f = *state;
	char		 path[512], *out;
	off_t		 hole;
	uint64_t	 k;

	/* A power cut during the write of the last sync group can keep a
	 * later sector of it without an earlier one.  Nothing in that group
	 * was acknowledged as on disk (no record after the hole was written
	 * after a sync), so recovery cuts the log at the hole, as a torn
	 * tail, with a warning, and keeps every record synced before it. */
	f->policy = policy;
	f->inline_sync = inline_sync;
	make_two_groups(f, path, sizeof path);
	hole = zero_sector(path, rec_off(60));
	assert_true(hole > rec_off(51));
	for (k = 51; rec_off(k + 1) <= hole; k++)
		;
	/* Record k is the first damaged, and records after it intact. */
	assert_true(rec_off(k + 1) < hole + 512 && rec_off(100) > hole + 512);
	out = must_open_logged(f);
	assert_non_null(strstr(out, "torn record"));
	assert_non_null(strstr(out, "intact-looking records"));
	assert_non_null(strstr(out, path));
	free(out);
	check_seen(f, 1, k - 1);
	assert_int_equal(file_size(path), rec_off(k));

	/* Appending continues at the cut. */
	append_n(f, k, 5);
	must_open(f, 0, 0);
	check_seen(f, 1, k + 4);
}

static void
test_hole_in_last_group_cut(void **state)
{
	check_hole_in_last_group_cut(state, WAL_FSYNC_ALWAYS, 0);
}

static void
test_hole_in_last_group_cut_no_inline(void **state)
{
	check_hole_in_last_group_cut(state, WAL_FSYNC_NO, 1);
}

static void
test_hole_in_synced_group_refused(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], want[700], err[512] = "";
	off_t		 size;

	/* The same hole with a later sync group after it (records written
	 * after a sync that had made the hole's group durable) is damage to
	 * acknowledged data: refused, the file left as it was. */
	make_two_groups(f, path, sizeof path);
	add_group(f, 101, 10);
	flip_byte(path, rec_off(60) + 8 + 2);	/* payload of record 60 */
	size = file_size(path);
	assert_null(reopen(f, 0, 0, err, sizeof err));
	snprintf(want, sizeof want, "%s: offset %lld: corrupt record followed "
	    "by a valid one at offset %lld written after a sync", path,
	    (long long)rec_off(60), (long long)rec_off(101));
	assert_non_null(strstr(err, want));
	assert_int_equal(file_size(path), size);
}

/* Write a version-1 segment 1 (from before the sync flag) of records
 * 1..n by hand, as the old writer did. */
static void
make_v1_log(struct fixture *f, uint64_t n, char *path, size_t len)
{
	uint8_t		 h[32], rec[8 + 512];
	uint64_t	 i;
	size_t		 rlen;
	int		 fd;

	seg_path(f, 1, path, len);
	memset(h, 0, sizeof h);
	memcpy(h, "DSD-WAL\n", 8);
	le_put32(h + 8, 1);
	le_put64(h + 16, 1);
	le_put64(h + 24, 1);
	le_put32(h + 12, wal_crc32c(0, h, sizeof h));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd != -1);
	assert_int_equal(write(fd, h, sizeof h), (ssize_t)sizeof h);
	for (i = 1; i <= n; i++) {
		rlen = make_rec(rec + 8, i);
		le_put32(rec, (uint32_t)rlen);
		le_put32(rec + 4, wal_crc32c(wal_crc32c(0, rec, 4), rec + 8,
		    rlen));
		assert_int_equal(write(fd, rec, 8 + rlen), (ssize_t)(8 + rlen));
	}
	close(fd);
}

static void
test_v1_segment(void **state)
{
	struct fixture	*f = *state;
	char		 path[512], want[600], err[512] = "";
	uint8_t		 h[12];
	int		 fd;

	/* A version-1 segment still loads, and appends to it continue
	 * without sync flags (its reader takes the whole word for the
	 * length), the header left at version 1. */
	make_v1_log(f, 100, path, sizeof path);
	must_open(f, 0, 0);
	check_seen(f, 1, 100);
	append_n(f, 101, 10);
	assert_int_equal(wal_sync(f->wal), 0);
	append_n(f, 111, 10);
	must_open(f, 0, 0);
	check_seen(f, 1, 120);
	wal_close(f->wal);
	f->wal = NULL;
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
	assert_int_equal(le_get32(h + 8), 1);

	/* A hole in it followed by a valid record is refused, as before:
	 * version 1 cannot tell the last sync group from synced data. */
	zero_sector(path, rec_off(115));
	assert_null(reopen(f, 0, 0, err, sizeof err));
	snprintf(want, sizeof want, "%s: offset ", path);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "corrupt record followed by a valid one"));
	assert_null(strstr(err, "after a sync"));
}

static int
refuse_third(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	return seq == 3 ? -1 : 0;
}

static void
test_replay_refusal_stops_open(void **state)
{
	struct fixture		*f = *state;
	struct wal_config	 cfg;
	char			 path[512], err[512] = "";

	/* A record the state machine refuses, intact as it is, stops
	 * start-up with the file, offset and record named. */
	make_log(f, 5, path, sizeof path);
	memset(&cfg, 0, sizeof cfg);
	cfg.dir = f->dir;
	cfg.base = f->base;
	f->wal = wal_open(&cfg, 0, 0, refuse_third, NULL, err, sizeof err);
	assert_null(f->wal);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err,
	    "record 3 is intact but cannot be applied"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vector),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_append_replay),
		T(test_append_replay_inline),
		T(test_group_commit),
		T(test_group_commit_inline),
		T(test_reserve_commit_cancel),
		T(test_not_durable_before_loop),
		T(test_small_batch_on_loop),
		T(test_policy_everysec),
		T(test_policy_no),
		T(test_policy_everysec_inline),
		T(test_rotate_and_purge),
		T(test_purge_waits_for_rotation),
		T(test_purge_failure_not_fatal),
		T(test_snapshot_boundary_leftovers),
		T(test_torn_tail_short),
		T(test_torn_tail_half_header),
		T(test_new_segment_header_lost),
		T(test_new_segment_bad_header_with_data_refused),
		T(test_torn_tail_bad_crc),
		T(test_zero_tail_is_the_end),
		T(test_reserved_space),
		T(test_mid_log_corruption_refused),
		T(test_corrupt_length_mid_log_refused),
		T(test_corruption_in_earlier_segment_refused),
		T(test_missing_segment_refused),
		T(test_torn_new_segment),
		T(test_sync_flags_always),
		T(test_sync_flags_no),
		T(test_sync_flags_no_inline),
		T(test_hole_in_last_group_cut),
		T(test_hole_in_last_group_cut_no_inline),
		T(test_hole_in_synced_group_refused),
		T(test_v1_segment),
		T(test_replay_refusal_stops_open),
#undef T
	};

	log_init("test_wal", LOG_LVL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
