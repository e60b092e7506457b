/*
 * The write-ahead log of the single-node kvdb mode: append-only segment
 * files "wal-<16 hex digits>.log" in the data directory, each a 32-byte
 * header then records
 *
 *	u32 length, u32 CRC-32C of (length, payload), payload
 *
 * (little-endian; in version 2, the length's top bit flags the first
 * record written after a sync, and the CRC covers the length without it),
 * then, in the segment being written, zeros: space
 * reserved with fallocate (prealloc bytes ahead of the last record), so
 * that a sync need not also commit a new file size.  The log ends at the
 * first zero length where only zeros follow; a segment is cut to its
 * records when the next one starts.  Records are numbered from 1 across segments (the
 * sequence); a segment's header holds its number and its first sequence,
 * so a gap or a missing file is seen at start-up.
 *
 * Group commit.  wal_append() only copies the record into a batch in
 * memory and returns its sequence.  At the end of the loop pass (an event
 * made active by the first append of the pass, so it runs after the
 * callbacks already ready) the batch goes to the flusher thread, which
 * writes all the batches it finds queued with one writev() and, with the
 * "always" policy, one fdatasync().  Then it wakes the loop through an
 * eventfd, and the loop calls the durable callback with the highest
 * sequence now durable.  While the flusher waits for the disk, the loop
 * goes on reading, applying and appending: those records form the next
 * batch.  A small batch (a few records) found with the flusher idle and
 * syncs quick is instead written and synced by the loop itself, in that
 * pass: the two thread wake-ups cost more than the sync when one client
 * waits for one write (see wal_adaptive() in wal.c).  The server acknowledges a write only when its sequence has been
 * reported; a read should wait for the sequence that was last when it was
 * served (wal_last_seq()), so that no reply shows a write that a crash
 * could still take back.
 *
 * What "durable" means by policy: "always", on disk (fdatasync done);
 * "everysec" and "no", handed to the kernel (write() done: it survives the
 * death of the process, not of the machine), with "everysec" adding an
 * fdatasync at most a second later and "no" leaving it to the kernel.
 *
 * Sync groups.  The first record written after an fdatasync of the
 * segment completed carries the sync flag, whatever made the sync: with
 * "always", each batch written after a sync (several batches written
 * together form one group); with "everysec", the first after each
 * periodic sync; with "no", only the syncs the log makes anyway: at open
 * (recovery syncs what it found), when a segment is created, at
 * wal_sync() and wal_close().  Recovery uses the flags to cut a hole torn
 * in the last group instead of refusing to start (see wal_open()).
 *
 * Threads and ownership.  Every wal_* function is called on the loop
 * thread, which owns the batch being filled and everything the loop uses
 * (events, the callback, the counters wal_last_seq() reads).  Whoever
 * set busy under the mutex (the flusher, or the loop writing a small
 * batch itself) owns the open segment's fd and offset; the directory
 * operations of rotation and purge are the flusher's alone.  The flusher
 * never calls libevent, never logs and never sees the store.  Between
 * them, under one mutex: the queue of full batches, the free batches, the
 * durable sequence, a sticky error, busy, and the purge and stop
 * requests.  With inline = 1 there is no thread:
 * the loop writes and syncs the batch itself at the end of the pass (kept
 * for comparison, see bench/store-bench.c).
 *
 * Errors.  A failed write or fsync is sticky, as it must be (after a
 * failed fsync nobody knows what is on disk): the durable callback gets
 * the errno, nothing after it is ever reported durable, and wal_append()
 * fails from then on.  The mode should stop taking writes and exit; a
 * restart recovers from the files.
 */
#ifndef DSD_WAL_H
#define DSD_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

struct event_base;

enum wal_fsync {
	WAL_FSYNC_ALWAYS = 0,	/* the default */
	WAL_FSYNC_EVERYSEC,
	WAL_FSYNC_NO,
};

/* Called on the loop when the durable sequence advances (error 0), or
 * once with an errno when the log has failed. */
typedef void	(*wal_durable_cb)(void *arg, uint64_t durable_seq, int error);

/*
 * Called for each record at start-up, in order.  rec points into a
 * mapping that is gone after the call: copy what must be kept.  Returns 0,
 * or -1 to stop start-up (the record is bad although its CRC matched).
 */
typedef int	(*wal_replay_cb)(void *arg, uint64_t seq, const uint8_t *rec,
		    size_t len);

struct wal_config {
	const char		*dir;		/* must exist */
	enum wal_fsync		 fsync;
	int			 inline_sync;	/* 1: no flusher thread */
	size_t			 prealloc;	/* reserved ahead; 0: 64 MiB */
	struct event_base	*base;
	wal_durable_cb		 durable;	/* may be NULL */
	void			*arg;
};

/* A record's payload is at most this long: the length word's top bit is
 * the sync flag (wal.c). */
#define WAL_RECORD_MAX	((1U << 31) - 1)

struct wal_stats {
	uint64_t	records;	/* appended since open */
	uint64_t	bytes;		/* written since open */
	uint64_t	writes;		/* writev() calls */
	uint64_t	fsyncs;		/* fdatasync() and fsync() calls: of
					   records, and of a new segment and
					   the directory */
	uint64_t	inline_batches;	/* written by the loop itself */
	struct metrics_hist sync;	/* each fdatasync of records, by how
					   long it took */
};

/*
 * Open the log and recover it (start-up only).  Segments numbered up to
 * after_segno are covered by a snapshot that ends at sequence after_seq:
 * they are deleted; the others are checked and their records passed to
 * replay in order, the first expected to be after_seq + 1 (1 if there is
 * no snapshot: after_segno = after_seq = 0).  A torn last record (short,
 * or failing its CRC with nothing valid after it, at the end of the last
 * segment) is dropped and truncated away with a warning in the log, and
 * so is a bad record in the last sync group of a version-2 last segment
 * (no record with the sync flag after it), with the records after it,
 * none of which a sync had made durable; any other damage fails with a
 * message in err naming the file and offset.
 * Zeros after the last record are reserved space, not damage.  Then
 * appends go after the last record of the last segment, or to a new one.
 * Returns NULL on failure, with err filled in.  replay may be NULL, to
 * check the log without reading it (or for a new directory).
 */
struct wal	*wal_open(const struct wal_config *, uint64_t after_segno,
		    uint64_t after_seq, wal_replay_cb replay, void *arg,
		    char *err, size_t errlen);
/* Make everything appended durable (fdatasync whatever the policy), report
 * it, stop the flusher and free.  Blocks: for shutdown. */
void		 wal_close(struct wal *);

/*
 * Append a record, copying it; returns its sequence, or 0 if the log has
 * failed or memory ran out.  wal_reserve() and wal_commit() do the same
 * without the copy: encode straight into the returned space (len bytes),
 * then commit, or cancel, before any other wal_* call.  Once reserve has
 * succeeded, commit cannot fail, which gives the mode a way to never hold
 * in memory a change the log lacks:
 *
 *	p = wal_reserve(w, store_op_encode(&op, NULL, 0));
 *	if (p == NULL)			refuse: nothing has changed
 *	store_apply(st, &op, &res);
 *	if (it failed, or res.status != STORE_SUCCESS, or op is a GET)
 *		wal_cancel(w);
 *	else {
 *		store_op_encode(&op, p, len);
 *		seq = wal_commit(w);	reply once seq is reported durable
 *	}
 */
uint64_t	 wal_append(struct wal *, const void *, size_t);
uint8_t		*wal_reserve(struct wal *, size_t len);
uint64_t	 wal_commit(struct wal *);
void		 wal_cancel(struct wal *);

/* The last sequence appended, and the last reported durable. */
uint64_t	 wal_last_seq(const struct wal *);
uint64_t	 wal_durable_seq(const struct wal *);
/* Bytes of records appended since open, those found at open included.
 * The difference between two readings is the log written in between. */
uint64_t	 wal_appended(const struct wal *);
/* Bytes appended but not yet durable: a mode can stop reading requests
 * while this is large, so that a slow disk does not grow memory. */
size_t		 wal_pending(const struct wal *);
/* Error of the failed log, or 0. */
int		 wal_error(const struct wal *);
void		 wal_get_stats(struct wal *, struct wal_stats *);

/*
 * Block until everything appended is durable, with an fdatasync whatever
 * the policy, and report it to the durable callback.  For shutdown and
 * tests; returns 0 or -1 if the log has failed.
 */
int		 wal_sync(struct wal *);

/*
 * End the current segment: records appended from now on go to the next.
 * Sets *segno to the segment just ended and *seq to the last record in it
 * or before it.  Call it right before fork()ing a snapshot, in the same
 * loop callback: the snapshot then holds exactly records 1..*seq.  The
 * files change later, on the flusher.  Returns 0, or -1 if the log has
 * failed or memory ran out (then nothing changed: take no snapshot).
 */
int		 wal_rotate(struct wal *, uint64_t *segno, uint64_t *seq);
/* Delete the segments numbered up to segno, once a snapshot covers them
 * (done by the flusher, never to the segment still open). */
void		 wal_purge(struct wal *, uint64_t segno);

/* The CRC-32C (Castagnoli) of len bytes, continuing from crc (0 to start);
 * snapshots use it too. */
uint32_t	 wal_crc32c(uint32_t crc, const void *, size_t len);
/*
 * Test-only.  The environment variable DSD_TEST_SKIP_FSYNC, a
 * comma-separated list, names syncs to leave out, so that tests/crash can
 * show that its checker catches a missing one: "wal-data" (the log's
 * fdatasync that makes a write durable before it is acknowledged),
 * "snap-dir" (the directory fsync after a snapshot's rename).  Read once,
 * by wal_open() at start-up, which warns that durability is broken.
 * Returns whether the sync named what is to be skipped.
 */
int		 wal_test_skip(const char *what);

/* write() all of buf, retrying short writes and EINTR; 0 or -1 (errno).
 * Snapshots use it too. */
int		 wal_writeall(int fd, const void *buf, size_t len);

#endif
