/*
 * Reliable, ordered streams of JSON entries from a Maelstrom node to each
 * of its peers, for modes that replicate their state in the background
 * (kafka, txn).
 *
 * Partitions drop node-to-node messages (../shared/docs/maelstrom.md,
 * section 4), so each direction of each node pair is a stream of entries
 * numbered from 1.  Entries pushed between two ticks of the timer go out
 * together, one message per peer per tick, and every message carries the
 * cumulative acknowledgement of the opposite stream, so acks ride on
 * traffic that flows anyway; a side that owes an ack and has nothing to
 * send sends the ack alone at its next tick.  Entries not acknowledged
 * within the retry interval are sent again from the first unacknowledged
 * one (go-back-N).  The receiver hands each entry to the mode exactly once
 * and in push order, and ignores a message that starts past what it has
 * (the sender goes back after its retry interval).  A partition therefore
 * delays entries but never loses or reorders them.
 *
 * Wire format, one message type per stream (cfg.type):
 *   {"type":T, "seq":S, "entries":[e(S), e(S+1), ...], "ack":A}
 * where A is the highest entry of the opposite stream delivered so far.
 *
 * Contract:
 * - mstream_new() needs the node ids, so call it from the mode's joined
 *   hook; the mode's handler table routes cfg.type to mstream_recv().
 * - deliver() borrows the entry.  It returns 0 once the entry is applied,
 *   or -1 if it cannot be applied now (out of memory): delivery stops
 *   there and the entry comes again with the sender's next retry, so an
 *   entry is never skipped.
 */
#ifndef DSD_MSTREAM_H
#define DSD_MSTREAM_H

#include <stddef.h>

#include <jansson.h>

struct mael;
struct mael_msg;
struct mstream;

struct mstream_config {
	const char	*type;		/* message type on the wire */
	int		 interval_ms;	/* batch timer */
	int		 retry_ms;	/* resend what is unacked this long */
	size_t		 max_batch;	/* entries per message; 0: 1000 */
	int		(*deliver)(struct mael *, const char *from,
			    json_t *entry, void *arg);
	void		*arg;
};

/* Start the streams to every other node and their timer; NULL on
 * failure.  The config's strings must outlive the streams. */
struct mstream	*mstream_new(struct mael *, const struct mstream_config *);
void		 mstream_free(struct mstream *);

/*
 * Queue entry for peer, or for every peer if peer is NULL; takes
 * ownership of entry.  All or nothing: returns -1 if memory ran out, and
 * then no peer gets the entry.
 */
int		 mstream_push(struct mstream *, const char *peer,
		    json_t *entry);

/*
 * Send peer what is queued for it now rather than at the next tick, with
 * our ack; for entries that should not wait, such as a request whose
 * answer a client is waiting for.  Whatever else is queued rides along.
 */
void		 mstream_flush(struct mstream *, const char *peer);

/* Handle a message of the stream's type (the mode's handler calls it). */
void		 mstream_recv(struct mstream *, struct mael_msg *);

/* Entries queued for peer and not yet acknowledged (peer NULL: all). */
size_t		 mstream_unacked(const struct mstream *, const char *peer);

#endif
