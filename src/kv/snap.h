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
 *	u64 entries, u64 body length, u32 CRC-32C of the body, i64 when
 *	the state was taken (ms since the epoch; zero in the files of dsd
 *	before it was kept, which read the same), 4 bytes zero
 *
 * then per entry: u32 keylen, u32 datalen, i64 version, i64 timestamp,
 * key (canonical), data.  Loading checks all of it and refuses a file
 * that does not add up, naming what is wrong.
 *
 * The same file is a backup: a server streams one of its state (the
 * dsd.kvdb.v1.Maintenance service, kv/backup.h) written by a forked child
 * into a pipe (snap_fork_stream()), a client checks it as it arrives
 * (snap_check_*) or on disk (snap_file_load()), and snap_restore() makes
 * a data directory of it.  A backup covers segment 0 (no log of this
 * directory's) up to its server's last record, or its Raft applied index
 * for kvdb-replicated: a kvdb started on the restored directory numbers
 * its records on from there.
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
	int64_t		taken_ms;	/* ms since the epoch; 0: not kept */
};

#define SNAP_HDRLEN	64

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
/* The same for the snapshot file at path (a backup): every check of the
 * format, the keys loaded into an empty store. */
int		 snap_file_load(const char *path, struct store *,
		    struct snap_info *, char *err, size_t errlen);

/*
 * A header on its own (SNAP_HDRLEN bytes): magic, version and checksum
 * checked, the rest read.  0, or -1 with err saying what is wrong.
 */
struct snap_header {
	struct snap_info info;		/* size: header and body */
	uint64_t	 bodylen;
	uint32_t	 bodycrc;
};
int		 snap_header_parse(const uint8_t *, struct snap_header *,
		    char *err, size_t errlen);
/*
 * A snapshot file checked as its bytes go by, without keeping them: the
 * header, then the body's length and checksum.  snap_check_update() takes
 * the next bytes, and fails (-1, err) at a bad header or at bytes past the
 * length the header announces; snap_check_end() says whether all of it
 * came and adds up, and fills *info (if not NULL).  The entries are not
 * parsed: snap_file_load() does that.
 */
struct snap_check {
	uint8_t			h[SNAP_HDRLEN];
	size_t			hgot;
	struct snap_header	header;	/* once hgot == SNAP_HDRLEN */
	uint64_t		got;	/* body bytes */
	uint32_t		crc;
};
void		 snap_check_init(struct snap_check *);
int		 snap_check_update(struct snap_check *, const uint8_t *,
		    size_t, char *err, size_t errlen);
int		 snap_check_end(const struct snap_check *,
		    struct snap_info *, char *err, size_t errlen);

/*
 * Make dir a data directory holding the snapshot file at path, which is
 * checked first as snap_file_load() does (needing as much memory as the
 * server will).  dir is made (mode 0700) if missing; one that exists must
 * be empty.  The bytes checked are written to dir/snapshot.tmp, fsynced,
 * renamed to dir/snapshot, and dir fsynced, and the directory holding dir
 * too if dir was made.  0 with *info, or -1 with err, having left dir as
 * it was (removed again if it was made).
 */
int		 snap_restore(const char *path, const char *dir,
		    struct snap_info *, char *err, size_t errlen);
/*
 * Make a written file durable under its name: fsync fd, close it (in any
 * case), rename tmpname to name in dirfd, fsync dirfd.  0, or -1 with
 * errno and *step naming what failed.  Snapshots use it, and so does
 * dsd-cli's snapshot save.
 */
int		 snap_commit(int dirfd, int fd, const char *tmpname,
		    const char *name, const char **step);

/*
 * Stream the store's snapshot, as of now, to fd (a pipe): a child is
 * forked that writes it, header first (two passes over its copy of the
 * store), closes every other descriptor it inherited, and exits 0, or 1
 * if writing failed (a reader gone: EPIPE).  buf (SNAP_BUFLEN bytes,
 * see snap.c) is used by the child only.  The header says segment 0 and
 * record seq.  Returns the child's pid, or -1 (errno) if fork() failed;
 * the caller closes its copy of fd and reaps the child (snap_reap()).
 */
pid_t		 snap_fork_stream(int fd, const struct store *,
		    uint64_t seq, uint8_t *buf);
#define SNAP_BUFLEN	(1U << 20)
/* Reap pid if it has ended, without waiting: 1 with its wait status, 0 if
 * it runs on.  Only that child: other modules may have theirs. */
int		 snap_reap(pid_t pid, int *status);
/* Kill pid and wait for it (on the way out). */
void		 snap_kill(pid_t pid);
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
