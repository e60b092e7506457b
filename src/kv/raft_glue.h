/*
 * The glue between dsd and Debian's libraft (0.15, canonical/raft; the
 * same public API as cowsql/raft): a Raft node with libraft's libuv disk
 * and TCP I/O, its libuv loop embedded in our one libevent loop, and the
 * replicated state machine (kv/rsm.h) as its FSM.  Read
 * ../shared/docs/raft-notes.md: the pitfalls of that version shape what
 * is here.
 *
 * The loop.  libuv's loop is never run on its own: its backend fd is
 * watched by a libevent event, a libevent timer follows
 * uv_backend_timeout(), and each of them runs uv_run(UV_RUN_NOWAIT).
 * Anything that calls into libraft from libevent code kicks the uv side so
 * that work libraft queued runs in the same pass.  libuv's worker threads
 * do libraft's segment and snapshot I/O and our snapshot encoding.
 *
 * Addresses.  A member's address, as libraft stores it in its
 * configuration, is "RAFTADDR/CLIENTADDR": the IPv4 address and port its
 * Raft listens on, then the HOST:PORT of its gRPC service.  So the
 * client address of every member, the leader's above all, travels with
 * the membership itself (bootstrap, member add, snapshots).  A thin
 * transport in front of libraft's TCP transport connects and binds to
 * the part before the slash.
 *
 * Entries.  Command entries are rsm batches; applying one calls the
 * config's outcome function for each operation, on every node (the
 * leader uses it to answer the requests a batch carried).  Snapshots use
 * FSM version 3: rsm_freeze() on the loop, rsm_frozen_encode() on a
 * libuv worker, rsm_thaw() in snapshot_finalize, so a snapshot of
 * millions of keys costs the loop only the pointer copy.
 *
 * Errors.  raft_glue_apply() and _barrier() report through their
 * callback: 0 once applied; RAFT_GLUE_NOTLEADER when the entry certainly
 * was not applied (this node was not the leader); RAFT_GLUE_UNKNOWN when
 * it may yet be (leadership was lost after the entry was appended, or the
 * node is stopping).  A node that runs out of memory applying an entry
 * stops: it cannot skip what the other replicas applied.
 */
#ifndef DSD_KV_RAFT_GLUE_H
#define DSD_KV_RAFT_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "kv/rsm.h"

struct event_base;
struct raft_glue;

enum {
	RAFT_GLUE_OK = 0,
	RAFT_GLUE_NOTLEADER,	/* certainly not applied */
	RAFT_GLUE_UNKNOWN,	/* may have been or be applied */
	RAFT_GLUE_FAILED,	/* a change that failed and was undone */
};

/* Roles, as libraft's (RAFT_VOTER...) in the public API. */
enum raft_glue_role {
	RAFT_GLUE_VOTER,
	RAFT_GLUE_STANDBY,
	RAFT_GLUE_SPARE,
};

struct raft_glue_member {
	uint64_t		 id;
	char			*address;	/* "RAFTADDR/CLIENTADDR" */
	enum raft_glue_role	 role;
};

struct raft_glue_config {
	struct event_base	*base;
	const char		*dir;		/* libraft's files; created */
	uint64_t		 id;
	const char		*address;	/* this node's "RAFT/CLIENT" */
	const char		*bind;		/* IPv4:PORT, or NULL: RAFT */
	/* The initial voters, for the first start; on a restart the data
	 * directory's configuration wins.  NULL with join: wait to be added
	 * by a member. */
	const struct raft_glue_member *members;
	size_t			 nmembers;
	unsigned		 election_ms;
	unsigned		 heartbeat_ms;
	unsigned		 snapshot_threshold;	/* entries */
	unsigned		 snapshot_trailing;	/* kept after one */
	struct rsm		*rsm;
	rsm_outcome_fn		 outcome;	/* per applied operation */
	/* After each pass of the uv loop: leadership, commit and applied
	 * indexes may have moved.  May call raft_glue_* functions. */
	void			(*changed)(void *arg);
	void			*arg;
};

/* Split "RAFTADDR/CLIENTADDR"; the parts are malloc'ed (both NULL if
 * memory ran out).  -1 if there is no slash, if RAFTADDR is not an IPv4
 * address and a port from 1 to 65535 (what libraft 0.15 takes), or if
 * CLIENTADDR is not HOST:PORT or [V6]:PORT. */
int		 raft_glue_split(const char *, char **raft, char **client);

/* Start-up: open (and on the first start bootstrap) the node and start
 * it.  NULL with err set on failure. */
struct raft_glue *raft_glue_new(const struct raft_glue_config *, char *err,
		    size_t errlen);
/* Stop: close libraft (entries in flight fail RAFT_GLUE_UNKNOWN), run
 * the loop until it has, and free.  Blocks: for shutdown. */
void		 raft_glue_free(struct raft_glue *);

/*
 * Append an entry (len a multiple of 8, copied) and call cb once it is
 * applied or has failed, as above.  Returns 0, or -1 if it could not even
 * be appended (not the leader, out of memory): cb is then not called and
 * nothing was applied.
 */
typedef void	(*raft_glue_cb)(void *arg, int status);
int		 raft_glue_apply(struct raft_glue *, const uint8_t *entry,
		    size_t len, raft_glue_cb, void *arg);
/* A barrier: cb once every entry before it is applied, and this node was
 * the leader when it committed: what a linearizable read waits for. */
int		 raft_glue_barrier(struct raft_glue *, raft_glue_cb, void *arg);

struct raft_glue_status {
	const char	*state;		/* leader, follower, candidate... */
	int		 leader;	/* this node leads */
	uint64_t	 leader_id;	/* 0: none known */
	const char	*leader_address; /* "RAFT/CLIENT", or NULL */
	uint64_t	 term;
	uint64_t	 commit_index;
	uint64_t	 applied_index;
	uint64_t	 last_index;
};
/* Valid until the next raft_glue call or loop pass. */
void		 raft_glue_status(struct raft_glue *, struct raft_glue_status *);

/* The current membership, a malloc'ed copy (*n members, each address
 * malloc'ed), or NULL if memory ran out; raft_glue_members_free() frees
 * it. */
struct raft_glue_member *raft_glue_members(struct raft_glue *, size_t *n);
void		 raft_glue_members_free(struct raft_glue_member *, size_t);
/* The address of member id, borrowed until the next loop pass, or NULL. */
const char	*raft_glue_address(struct raft_glue *, uint64_t id);

/*
 * Membership changes, on the leader: add a node as a non-voter, let it
 * catch up, then make it a voter; or remove one.  cb(arg, status, msg)
 * once done (status 0), or failed, msg saying why: RAFT_GLUE_NOTLEADER
 * with nothing changed; RAFT_GLUE_FAILED when a node added could not be
 * made a voter (it did not catch up: libraft gives up on a node that does
 * not answer for a catch-up round) and was removed again; RAFT_GLUE_UNKNOWN
 * when what is left is not known (leadership was lost, or the undoing
 * failed: msg says so).  Returns -1 with msg if the change cannot start
 * (not the leader, another change under way, a bad id or address); cb is
 * then not called.
 */
typedef void	(*raft_glue_change_cb)(void *arg, int status, const char *msg);
int		 raft_glue_add(struct raft_glue *, uint64_t id,
		    const char *address, raft_glue_change_cb, void *arg,
		    const char **msg);
int		 raft_glue_remove(struct raft_glue *, uint64_t id,
		    raft_glue_change_cb, void *arg, const char **msg);

/* The libraft version this was built with, for the start-up log. */
const char	*raft_glue_version(void);

#endif
