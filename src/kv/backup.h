/*
 * Online backup: the dsd.kvdb.v1.Maintenance service of src/kv/admin.proto,
 * served by kvdb and kvdb-replicated alike, each lending its state.
 *
 * Snapshot forks a child that writes the state as of the call, in the
 * snapshot file's format, into a pipe (snap_fork_stream(), kv/snap.h);
 * the server reads the pipe as the client takes the chunks, no more than
 * BACKUP_QUEUED bytes ahead of it (HTTP/2 flow control sets the pace, and
 * a full pipe stops the child), so memory stays small whatever the size
 * of the data and the loop never waits on the child.  The server checks
 * the bytes as they go by (snap_check_*) and ends the call OK only when
 * the child exited 0, every byte the header announces was sent and the
 * checksum matched, and the records the state holds are durable: never a
 * truncated OK.  A child that fails or is killed ends the call INTERNAL;
 * a client that goes away (or whose deadline passes) gets its child
 * killed and reaped.  Nothing is written to the data directory.
 *
 * One backup at a time: a call while one runs (until its child is
 * reaped) gets RESOURCE_EXHAUSTED.  The cost is the fork's: page tables
 * copied at once, then the pages the server changes while the child
 * lives, which is as long as the client takes to read.
 *
 * Threads: the loop's only.
 */
#ifndef DSD_KV_BACKUP_H
#define DSD_KV_BACKUP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct grpc_server;
struct store;

/* What a mode lends to be backed up. */
struct backup_source {
	/* The state as of now, and the last record (or Raft index) it
	 * holds; called on the loop right before the fork. */
	const struct store *(*state)(void *arg, uint64_t *seq);
	/* Whether the records up to seq are durable: the call ends OK only
	 * once they are.  NULL: they are (applied Raft entries). */
	int		 (*durable)(void *arg, uint64_t seq);
	void		*arg;
};

/*
 * Register the service on srv (start-up; fatal() if that fails).  Each
 * message carries at most max_message bytes (--max-message).  The source
 * is copied; its arg must outlive the backup.
 */
struct backup	*backup_new(struct event_base *, struct grpc_server *srv,
		    const struct backup_source *, size_t max_message);
/* After the server is freed (its method table is the backup's): a child
 * still running is killed and reaped. */
void		 backup_free(struct backup *);

#endif
