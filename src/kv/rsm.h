/*
 * The replicated state machine of kvdb-replicated: the store (kv/store.h,
 * the very module kvdb uses) and the table of client sessions that makes
 * retries exactly-once, driven by the entries of the Raft log.  Nothing
 * here knows Raft: kv/raft_glue.c hands the entries in, the mode builds
 * them.  Every function runs on the loop, but for
 * rsm_frozen_encode(), which may run on any thread.
 *
 * An entry is a batch of operations that arrived at the leader in one
 * loop pass, so that one log entry (one fsync on each replica) carries
 * many client requests.  Little-endian:
 *
 *	u32 magic "DSDR", u16 version (1), u16 0, u32 operations, u32 0,
 *	u64 origin node, u64 origin incarnation, u64 batch number,
 *	i64 the leader's clock (ms since the epoch),
 *	per operation: u64 client id, u64 sequence, u32 length, the
 *	    operation as store_op_encode() writes it,
 *	zeros up to a multiple of 8 bytes (libraft 0.15 needs it, see
 *	../shared/docs/raft-notes.md).
 *
 * The origin (node, a random number drawn at each start, and a counter)
 * lets the leader that built a batch find the requests waiting for it
 * when the batch is applied, and never mistake a batch of an earlier run
 * of itself for one of this run.
 *
 * Sessions.  An operation may carry a client id (nonzero) and a sequence
 * number (from 1), the dsd-client-id and dsd-seq metadata.  Per client id
 * the machine remembers the last sequence number applied and its result:
 * the same number again is a retry and gets that first result without
 * being applied again; a lower one gets RSM_STALE and changes nothing; a
 * higher one is applied and remembered.  So one client id may have one
 * write in flight at a time; a client with many in flight uses one id per
 * lane.  The table is bounded and expires, deterministically (the same on
 * every replica, in snapshots too): a session unused for
 * RSM_SESSION_EXPIRY_MS of log time (the leaders' clocks as written in the
 * entries, never going back) is forgotten, and past RSM_MAX_SESSIONS the
 * least recently used is.  A retry after its session was forgotten is
 * applied again, as any write without a session is.  These are constants,
 * not flags: replicas that disagreed on them would diverge.
 *
 * Apply never fails on content: every outcome is a result.  A malformed
 * entry (which no dsd writes) is skipped, on every replica alike, with a
 * warning; running out of memory while applying returns -1, and the
 * replica must stop, since it cannot skip what the others applied.
 */
#ifndef DSD_KV_RSM_H
#define DSD_KV_RSM_H

#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"

#define RSM_SESSION_EXPIRY_MS	(3600 * 1000)
#define RSM_MAX_SESSIONS	100000

struct rsm;

/* Who built a batch, and when. */
struct rsm_origin {
	uint64_t	node;
	uint64_t	incarnation;
	uint64_t	batch;
	int64_t		time_ms;
};

/* The outcome of one operation of an entry. */
struct rsm_outcome {
	int			kind;
#define RSM_APPLIED	0	/* res is the operation's result */
#define RSM_DUPLICATE	1	/* a retry: res is the first result */
#define RSM_STALE	2	/* an older sequence number: nothing done */
	struct store_result	res;	/* value borrowed for the callback */
};

/* Called for each operation of an applied entry, in order. */
typedef void	(*rsm_outcome_fn)(void *arg, const struct rsm_origin *,
		    uint32_t index, const struct rsm_outcome *);

struct rsm	*rsm_new(void);
void		 rsm_free(struct rsm *);
/* The store as of the last entry applied.  rsm_restore() replaces it:
 * look it up again rather than keep it. */
struct store	*rsm_store(struct rsm *);
size_t		 rsm_sessions(const struct rsm *);
/* The digest of the store and the sessions (see store_digest()). */
uint64_t	 rsm_digest(const struct rsm *);

/*
 * Building a batch.  rsm_batch_begin() starts it (buf may be reused from
 * the last batch), rsm_batch_add() appends an operation (0, or -1 if
 * memory ran out: the batch is as before), rsm_batch_end() pads it and
 * returns its bytes, leaving the batch empty; the buffer is then the
 * caller's (malloc'ed) to hand to libraft.
 */
struct rsm_batch {
	uint8_t		*buf;
	size_t		 len, cap;
	uint32_t	 nops;
};
int		 rsm_batch_begin(struct rsm_batch *, const struct rsm_origin *);
int		 rsm_batch_add(struct rsm_batch *, uint64_t client,
		    uint64_t seq, const struct store_op *);
uint8_t		*rsm_batch_end(struct rsm_batch *, size_t *len);
/* Bytes an operation adds to a batch. */
size_t		 rsm_batch_cost(const struct store_op *);

/* Apply an entry: see above.  0, or -1 if memory ran out. */
int		 rsm_apply(struct rsm *, const uint8_t *entry, size_t len,
		    rsm_outcome_fn, void *arg);

/*
 * Snapshots, taken without stalling the loop: rsm_freeze() (on the loop,
 * O(keys) pointer copies) pins the state as of now; rsm_frozen_encode()
 * (any thread; O(bytes)) writes it out as one malloc'ed buffer while the
 * loop applies more entries, and makes ready the array the next freeze
 * copies into; rsm_thaw() (on the loop) lets go.  One
 * frozen state at a time: rsm_freeze() returns NULL if one exists or
 * memory ran out.
 *
 * The snapshot, little-endian: "DSD-RSNP", u32 version (1), u32 CRC-32C
 * of the rest of the buffer, u64 keys, u64 sessions, i64 log time, then
 * the keys as snapshot entries (kv/snap.h), then per session u64 client
 * id, u64 sequence, i64 last use, u8 status, u8 has value, 6 bytes zero,
 * and the value as a snapshot entry if it has one.
 */
struct rsm_frozen;
struct rsm_frozen *rsm_freeze(struct rsm *);
/*
 * The array a freeze copies into is made ready off the loop, so that the
 * loop does not take its page faults: after each snapshot by the encoder,
 * and whenever rsm_spare_wanted() says the store has outgrown it (it
 * returns the capacity to make, or 0).  rsm_spare_make() runs on any
 * thread; rsm_spare_adopt() on the loop takes it (or frees it).
 */
size_t		 rsm_spare_wanted(const struct rsm *);
void		*rsm_spare_make(size_t cap);
void		 rsm_spare_adopt(struct rsm *, void *spare, size_t cap);
uint8_t		*rsm_frozen_encode(struct rsm_frozen *, size_t *len);
void		 rsm_thaw(struct rsm *, struct rsm_frozen *);
/* Replace the state with a snapshot's: 0, or -1 with err set and the
 * state unchanged. */
int		 rsm_restore(struct rsm *, const uint8_t *buf, size_t len,
		    char *err, size_t errlen);

#endif
