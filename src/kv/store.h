/*
 * The kvdb state machine: a map from integer keys to versioned values, and
 * the five operations of the KV service (issue 3, src/kv/kvdb.proto).
 *
 * The same code serves the single-node mode, which applies operations as
 * requests arrive on its libevent loop, and the replicated mode, which
 * applies them from libraft's FSM apply.  So store_apply() is
 * deterministic (its outcome depends only on the store and the operation;
 * timestamps come from the client) and has no semantic failure: absent
 * keys, wrong versions and so on are result codes.  The only failure is
 * running out of memory, which leaves the store unchanged; a replicated
 * node must treat it as fatal, since its replicas did not fail.
 *
 * Threads: a store belongs to one thread (the loop); nothing here locks.
 * The snapshot child reads it after fork(), which needs no lock either.
 *
 * Keys are arbitrary-precision integers in the form of Java's
 * BigInteger.toByteArray(): big-endian two's complement.  They compare as
 * numbers, so 00 05 and 05 are one key, as are FF FF 80 and FF 80 (-128);
 * empty bytes and 00 are zero.  The store keeps the canonical form: no
 * redundant sign byte at the front, and zero as no bytes at all.
 */
#ifndef DSD_STORE_H
#define DSD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <gmp.h>

/* Hard limits of the store and its encoding; a transport's configurable
 * limits (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) must lie below them. */
#define STORE_KEY_MAX	(1U << 20)	/* canonical key bytes */
#define STORE_DATA_MAX	(1U << 30)	/* value data bytes */

/* The same numbers as the proto's Status enum. */
enum store_status {
	STORE_SUCCESS = 0,
	STORE_ERROR = 1,
	STORE_ERROR_NE = 2,
	STORE_ERROR_WV = 3,
};

/* Numbered for the encoding: never renumber. */
enum store_op_type {
	STORE_OP_SET = 1,
	STORE_OP_GET = 2,
	STORE_OP_DEL = 3,
	STORE_OP_DELVERSION = 4,
	STORE_OP_TESTANDSET = 5,
};

/*
 * An operation.  It only points at its key and data (into a request, or
 * into an encoded record); the store copies what it keeps.  The key may be
 * in any form, store_apply() canonicalises it.  Fields an operation does
 * not use are ignored (and not encoded).
 */
struct store_op {
	enum store_op_type	 type;
	const uint8_t		*key;
	size_t			 keylen;
	int64_t			 timestamp;	/* SET, TESTANDSET */
	int64_t			 version;	/* DELVERSION, TESTANDSET */
	const uint8_t		*data;		/* SET, TESTANDSET */
	size_t			 datalen;
};

/* A stored value, immutable once created, and reference counted. */
struct store_entry;

/*
 * The outcome of an operation: a status and a value or NULL (the proto's
 * "unset").  The result holds a reference to its value, so the value stays
 * valid after later operations replace or delete it, for as long as the
 * transport needs it to write the reply; store_result_release() drops it.
 */
struct store_result {
	enum store_status	 status;
	struct store_entry	*value;
};

struct store;

/* A new empty store, or NULL if memory ran out.  The hash is keyed with
 * random bits so that clients cannot choose keys that collide. */
struct store	*store_new(void);
/* Free the store.  Entries still referenced by results live on until
 * those are released. */
void		 store_free(struct store *);

/*
 * Apply an operation and fill in *res (its value, if any, referenced).
 * Returns 0, or -1 if memory ran out, in which case the store is
 * unchanged and *res holds no value.
 *
 * SET, DEL, DELVERSION and TESTANDSET change the store exactly when the
 * status is STORE_SUCCESS; GET never does.  A durable mode appends to its
 * log exactly the operations that changed the store, before returning to
 * the loop, so that the log replays to the same state and a snapshot
 * taken between two loop callbacks matches a log position (wal.h shows
 * how to reserve the record first, so that memory is never ahead of the
 * log).
 *
 * A key or data over STORE_KEY_MAX or STORE_DATA_MAX (the key counted
 * canonical) gets STORE_ERROR and changes nothing; the transport should
 * have refused it before, with its own, lower, limits.
 *
 * TESTANDSET on a value whose version is INT64_MAX would overflow the new
 * version: it gets STORE_ERROR with the current value and changes nothing.
 */
int		 store_apply(struct store *, const struct store_op *,
		    struct store_result *res);
/* Drop the reference the result holds, if any; safe to call twice. */
void		 store_result_release(struct store_result *);
/* Whether the operation changes the store when it succeeds. */
int		 store_op_mutates(enum store_op_type);

/* A new entry outside any store, holding one reference (a remembered
 * reply); NULL with errno EINVAL if the key is not canonical or either is
 * over the limits, ENOMEM if memory ran out. */
struct store_entry *store_entry_make(const uint8_t *key, size_t keylen,
		    int64_t version, int64_t timestamp, const uint8_t *data,
		    size_t datalen);
/* Take and drop a reference to an entry; the tag names the caller, for
 * debugging, as tmux's window_add_ref() does. */
void		 store_entry_ref(struct store_entry *, const char *tag);
void		 store_entry_unref(struct store_entry *, const char *tag);
int64_t		 store_entry_version(const struct store_entry *);
int64_t		 store_entry_timestamp(const struct store_entry *);
const uint8_t	*store_entry_data(const struct store_entry *, size_t *len);
/* The canonical key. */
const uint8_t	*store_entry_key(const struct store_entry *, size_t *len);

size_t		 store_count(const struct store *);
/* The data bytes of every value held (keys and overhead not counted). */
uint64_t	 store_data_bytes(const struct store *);

/*
 * Walk every entry, for snapshots: start with *cursor = 0, stop at NULL.
 * The order is the table's, not the keys'.  The store must not change
 * during the walk (the snapshot child has its own copy of it).
 */
struct store_entry *store_next(const struct store *, size_t *cursor);

/*
 * Pinning, for a snapshot encoded on another thread while the loop goes
 * on applying operations (the replicated mode's, kv/rsm.h).
 * store_pin() fills an array with every entry of the table at this
 * instant (*n of them) and pins the store: until store_unpin(), an entry
 * that leaves the table (deleted, replaced) is not released but kept, so
 * that the array stays valid for a reader on any thread.  Such a reader
 * may only read an entry's key, data, version and timestamp, never take
 * or drop references: the loop still does that to the same entries.
 * The array is buf if its cap entries are enough, else a new malloc'ed
 * one; either way the caller frees it after store_unpin().  (A buffer
 * whose pages were touched before, off the loop, saves the loop the page
 * faults, which are most of the cost.)  Returns NULL if memory ran out
 * (then nothing is pinned), or if the store is already pinned (one
 * snapshot at a time).  store_unpin() releases what was kept.
 */
struct store_entry **store_pin(struct store *, struct store_entry **buf,
		    size_t cap, size_t *n);
void		 store_unpin(struct store *);

/*
 * A digest of the contents, the same for two stores with the same keys
 * and values whatever their history or hash keys: the sum of a fixed-key
 * hash of each entry (key, version, timestamp, data).  O(keys), on the
 * loop: for comparing replicas in tests, not for every request.
 */
uint64_t	 store_digest(const struct store *);
/* A fixed-key 64-bit hash of len bytes continuing from h (0 to start):
 * the digest's, for other state that digests itself alike. */
uint64_t	 store_hash64(uint64_t h, const void *, size_t len);

/*
 * Insert an entry as it was saved, when loading a snapshot.  Returns 0,
 * or -1 with errno EINVAL if the key is not canonical, exceeds the limits
 * or is already present (a corrupt snapshot), ENOMEM if memory ran out.
 */
int		 store_restore(struct store *, const uint8_t *key,
		    size_t keylen, int64_t version, int64_t timestamp,
		    const uint8_t *data, size_t datalen);

/*
 * Keys.  store_key_canon() finds the canonical form inside the given
 * bytes without copying: it returns its length and sets *off to where it
 * starts.  store_key_to_mpz() reads any form; store_key_from_mpz() writes
 * the minimal two's complement form (Java's: zero is one 00 byte), and
 * returns its length, writing it only if it fits in buflen, as snprintf
 * does.
 */
size_t		 store_key_canon(const uint8_t *key, size_t len, size_t *off);
void		 store_key_to_mpz(mpz_t out, const uint8_t *key, size_t len);
size_t		 store_key_from_mpz(const mpz_t, uint8_t *buf, size_t buflen);

/*
 * The binary form of an operation: the payload of a log record, and later
 * of a Raft entry (which must add its own padding to 8 bytes, see
 * raft-notes.md).  Little-endian:
 *
 *	u8 type, u32 keylen, key,
 *	SET:		i64 timestamp, u32 datalen, data
 *	DELVERSION:	i64 version
 *	TESTANDSET:	i64 timestamp, i64 version, u32 datalen, data
 *
 * The key is encoded canonical.  store_op_encode() returns the length, and
 * writes only if it fits in buflen; it returns 0 for an unknown type or a
 * key or data over the limits.  store_op_decode() points the op into
 * buf; it returns -1 for an unknown type, a length past the end, a length
 * over the limits, or bytes left over.
 */
size_t		 store_op_encode(const struct store_op *, uint8_t *buf,
		    size_t buflen);
int		 store_op_decode(const uint8_t *buf, size_t len,
		    struct store_op *);

#endif
