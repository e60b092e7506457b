/*
 * libFuzzer target: the bytes a replica takes from the Raft log and from
 * a leader's snapshot (kv/rsm.c).  The first byte picks which.
 *
 * Entries: apply them, split where the input says, on two fresh machines
 * and require equal digests (apply must be deterministic, and must skip
 * what it cannot parse without changing anything).
 * Snapshots: with the CRC made right (else nothing gets past it), a
 * restore must refuse or succeed; a restored state must encode again to
 * a snapshot that restores to the same digest.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/le.h"
#include "kv/rsm.h"
#include "kv/wal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
apply_all(struct rsm *m, const uint8_t *p, size_t len)
{
	size_t	n;

	/* Entries separated by a 0xff 0xfe pair: several entries, so
	 * sessions and expiry see more than one. */
	while (len > 0) {
		for (n = 0; n + 1 < len; n++)
			if (p[n] == 0xff && p[n + 1] == 0xfe)
				break;
		if (n + 1 >= len)
			n = len;
		if (rsm_apply(m, p, n, NULL, NULL) == -1)
			abort();	/* out of memory: not a finding */
		if (n + 2 > len)
			break;
		p += n + 2;
		len -= n + 2;
	}
}

static void
snapshot(const uint8_t *p, size_t len)
{
	struct rsm		*m, *m2;
	struct rsm_frozen	*f;
	uint8_t			*buf, *enc;
	size_t			 elen;
	char			 err[256];
	uint64_t		 d;

	if (len < 16)
		return;
	if ((buf = malloc(len)) == NULL)
		return;
	memcpy(buf, p, len);
	le_put32(buf + 12, wal_crc32c(0, buf + 16, len - 16));
	if ((m = rsm_new()) == NULL)
		abort();
	if (rsm_restore(m, buf, len, err, sizeof err) == 0) {
		d = rsm_digest(m);
		if ((f = rsm_freeze(m)) == NULL ||
		    (enc = rsm_frozen_encode(f, &elen)) == NULL)
			abort();
		rsm_thaw(m, f);
		if ((m2 = rsm_new()) == NULL)
			abort();
		if (rsm_restore(m2, enc, elen, err, sizeof err) != 0) {
			fprintf(stderr, "re-encoded snapshot refused: %s\n",
			    err);
			abort();
		}
		if (rsm_digest(m2) != d)
			abort();
		rsm_free(m2);
		free(enc);
	}
	rsm_free(m);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsm	*a, *b;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		snapshot(data + 1, size - 1);
		return 0;
	}
	if ((a = rsm_new()) == NULL || (b = rsm_new()) == NULL)
		abort();
	apply_all(a, data + 1, size - 1);
	apply_all(b, data + 1, size - 1);
	if (rsm_digest(a) != rsm_digest(b) ||
	    rsm_sessions(a) != rsm_sessions(b))
		abort();
	rsm_free(a);
	rsm_free(b);
	return 0;
}
