/*
 * Point-in-time snapshots of the store, in the data directory next to the
 * log: "snapshot", replaced whole through "snapshot.tmp".
 *
 * A snapshot is a state that existed in memory at one instant.  The loop
 * ends the current log segment (wal_rotate()) and fork()s in the same
 * callback; the child writes its copy-on-write image of the store to
 * snapshot.tmp, fsyncs it, renames it over snapshot, fsyncs the directory
 * and _exit()s, while the parent goes on serving.  The parent learns the
 * outcome from SIGCHLD (a libevent signal event, which reaps only its own
 * child) and then deletes the segments the snapshot covers.  This is how
 * Redis writes its RDB; the cost is the page-table copy in fork() and the
 * pages the parent changes while the child runs.
 *
 * File format, little-endian: a 64-byte header
 *
 *	"DSD-SNAP", u32 version (1), u32 CRC-32C of the header (this field
 *	zero), u64 last log segment covered, u64 last record covered,
 *	u64 entries, u64 body length, u32 CRC-32C of the body, 12 bytes zero
 *
 * then per entry: u32 keylen, u32 datalen, i64 version, i64 timestamp,
 * key (canonical), data.  Loading checks all of it and refuses a file
 * that does not add up, naming what is wrong.
 *
 * Threads: all of it runs on the loop thread (and in the child).
 *
 * A mode uses the three modules in this order:
 *	start-up	store_new(), snap_recover() (gives the wal),
 *			snap_new()
 *	serving		wal_reserve(), store_apply(), wal_commit() or
 *			wal_cancel(); reply when the sequence is durable
 *	shutdown	snap_shutdown(), snap_free(), wal_close(),
 *			store_free()
 */
#ifndef DSD_SNAP_H
#define DSD_SNAP_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

struct event_base;
struct store;
struct store_entry;
struct wal;
struct wal_config;

/* What a snapshot covers: log segments up to segno, records up to seq. */
struct snap_info {
	int		present;	/* 0: there is no snapshot */
	uint64_t	segno;
	uint64_t	seq;
	uint64_t	count;		/* entries */
	uint64_t	size;		/* bytes of the file */
};

/* Called on the loop when a background snapshot has ended. */
typedef void	(*snap_done_cb)(void *arg, int ok, const struct snap_info *);

struct snap_config {
	const char		*dir;
	struct event_base	*base;
	struct store		*store;		/* borrowed */
	struct wal		*wal;		/* borrowed */
	unsigned int		 interval;	/* seconds; 0: no timer */
	uint64_t		 log_limit;	/* bytes; 0: no limit */
	snap_done_cb		 done;		/* may be NULL */
	void			*arg;
};

/*
 * Start-up.  snap_recover() loads the snapshot, if any, into an empty
 * store and opens the log with the records after it replayed into the
 * store: the state at the last durable write.  It returns the open log
 * (for cfg's policy and callback) and fills *info, or returns NULL with a
 * message in err, which start-up reports before it stops.
 */
struct wal	*snap_recover(struct store *, const struct wal_config *,
		    struct snap_info *, char *err, size_t errlen);
/*
 * Entries in the form snapshots hold them (files here, and the replicated
 * mode's Raft snapshots): a SNAP_ENTHDR-byte header (u32 keylen, u32
 * datalen, i64 version, i64 timestamp, little-endian) then the canonical
 * key and the data.  snap_entry_header() writes an entry's header;
 * snap_entry_parse() reads the entry at buf, pointing into it, and sets
 * *used to its length, or returns -1 if it runs past len;
 * snap_entries_load() inserts count entries from buf into a store and
 * sets *used to the bytes they took, or returns -1 with err naming the
 * entry and its offset in buf (a short entry, a bad or duplicate key, or
 * no memory).
 */
#define SNAP_ENTHDR	24
struct snap_entry {
	const uint8_t	*key, *data;
	size_t		 keylen, datalen;
	int64_t		 version, timestamp;
};
void		 snap_entry_header(uint8_t *h, const struct store_entry *);
int		 snap_entry_parse(const uint8_t *buf, size_t len,
		    struct snap_entry *, size_t *used);
int		 snap_entries_load(struct store *, const uint8_t *buf,
		    size_t len, uint64_t count, size_t *used, char *err,
		    size_t errlen);
/* Load dir's snapshot into an empty store: 0 (info->present says whether
 * there was one) or -1 with err set.  On failure the store holds part of
 * the file: free it.  A leftover snapshot.tmp is removed. */
int		 snap_load(const char *dir, struct store *, struct snap_info *,
		    char *err, size_t errlen);
/* Write a snapshot of the store, in this process, now: tmp, fsync,
 * rename, fsync of the directory.  0, or -1 with err set. */
int		 snap_write(const char *dir, const struct store *,
		    uint64_t segno, uint64_t seq, char *err, size_t errlen);

/*
 * Background snapshots.  snap_new() takes what start-up loaded (for the
 * "nothing changed" test) and, with an interval, arms a timer that takes
 * a snapshot when records were appended since the last one and none is
 * running.  NULL if memory or events ran out.
 */
struct snap	*snap_new(const struct snap_config *,
		    const struct snap_info *loaded);
/*
 * Call after appending to the log.  With a log_limit, starts a snapshot
 * when the log written since the last one has reached log_limit or the
 * last snapshot's size, whichever is more: a recovery then reads at most
 * about twice what the data takes (or log_limit more), however long the
 * server ran.  A snapshot that ends pokes too, so that whenever none is
 * running the log is under the limit.  After a snapshot failed, waits
 * 10 s before trying again.
 */
void		 snap_poke(struct snap *);
/*
 * Take a snapshot in a child now.  Returns 1 if the child was started, 0
 * if nothing changed since the last snapshot (unless force), -1 if one is
 * already running (errno EBUSY), or the log or fork() failed.
 */
int		 snap_start(struct snap *, int force);
/* The running child, or -1. */
pid_t		 snap_child(const struct snap *);
/* The last completed snapshot. */
const struct snap_info *snap_last(const struct snap *);
/*
 * Counts for metrics.  A snapshot that could not start (the log, fork())
 * counts as failed, as does a child that did not exit 0 and a final one
 * that could not be written.  duration times the successful ones: for a
 * child from just before fork() to the loop seeing its exit, for the
 * final one its write.
 */
struct snap_stats {
	uint64_t		ok, failed;
	struct metrics_hist	duration;
	uint64_t		size;		/* bytes of the last one */
	uint64_t		written_ns;	/* when the last one was
						   written (its file's mtime),
						   since the epoch; 0: none */
};
void		 snap_get_stats(const struct snap *, struct snap_stats *);
/*
 * Clean shutdown, before wal_close(): wait for a running child, then, if
 * save and anything changed, write a snapshot in this process (the loop is
 * stopping, so blocking is what we want) and ask the log to purge what it
 * covers.  Returns 0 or -1 if the snapshot failed.
 */
int		 snap_shutdown(struct snap *, int save);
/* Free; a child still running is killed (its snapshot.tmp is removed at
 * the next start).  Call snap_shutdown() first to keep its work. */
void		 snap_free(struct snap *);

#endif
