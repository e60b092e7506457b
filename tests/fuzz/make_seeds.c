/*
 * Writes the seed corpora of tests/fuzz/ with dsd's own encoders, so that
 * the fuzzers start from inputs that reach deep.  Run by hand, from the
 * top of the tree, when an encoding changes:
 *	cc -Isrc -I. tests/fuzz/make_seeds.c src/kv/store.c src/kv/rsm.c
 *	    src/kv/snap.c src/kv/wal.c src/core/log.c src/core/xmalloc.c
 *	    src/core/u64map.c $(pkg-config --libs gmp libevent) -lpthread
 *	    -o /tmp/make_seeds && /tmp/make_seeds
 */
#include "config.h"

#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/rsm.h"
#include "kv/store.h"

static void
put(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char	 path[512];
	FILE	*f;

	snprintf(path, sizeof path, "tests/fuzz/corpus/%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(p, 1, len, f) != len || fclose(f) != 0)
		err(1, "%s", path);
}

static const uint8_t	k1[] = { 0x05 }, k2[] = { 0x00, 0x05 },
			k3[] = { 0xff, 0x7f, 0x00, 0x01, 0x02, 0x03, 0x04,
			    0x05, 0x06, 0x07, 0x08 }, d1[] = "hello";

static const struct store_op ops[] = {
	{ STORE_OP_SET, k1, sizeof k1, 1000, 0, d1, 5 },
	{ STORE_OP_GET, k1, sizeof k1, 0, 0, NULL, 0 },
	{ STORE_OP_TESTANDSET, k1, sizeof k1, 2000, 1, d1, 3 },
	{ STORE_OP_SET, k3, sizeof k3, -1, 0, NULL, 0 },
	{ STORE_OP_DELVERSION, k1, sizeof k1, 0, 2, NULL, 0 },
	{ STORE_OP_DEL, k3, sizeof k3, 0, 0, NULL, 0 },
	{ STORE_OP_SET, k2, sizeof k2, 3, 0, d1, 1 },
	{ STORE_OP_TESTANDSET, NULL, 0, 4, INT64_MAX, d1, 2 },
};

int
main(void)
{
	struct rsm_batch	 b = { 0 };
	struct rsm_origin	 o = { 1, 42, 0, 1700000000000LL };
	struct rsm		*m;
	struct rsm_frozen	*f;
	uint8_t			 buf[256], *e, *all = NULL, *snap;
	size_t			 i, n, len, alen = 0;
	char			 name[32];

	for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if ((n = store_op_encode(&ops[i], buf, sizeof buf)) == 0)
			errx(1, "op %zu", i);
		snprintf(name, sizeof name, "op%zu", i);
		put("store_op", name, buf, n);
	}

	/* Entries: byte 0 even, then entries separated by ff fe. */
	if ((m = rsm_new()) == NULL)
		errx(1, "rsm_new");
	for (i = 0; i < 4; i++) {
		o.batch = i;
		o.time_ms += (int64_t)i * 1000;
		if (rsm_batch_begin(&b, &o) == -1)
			errx(1, "batch");
		for (n = 0; n < sizeof ops / sizeof ops[0]; n++)
			if (rsm_batch_add(&b, n % 3, i + n / 3 + 1,
			    &ops[(n + i) % (sizeof ops / sizeof ops[0])]) == -1)
				errx(1, "batch add");
		e = rsm_batch_end(&b, &len);
		if (rsm_apply(m, e, len, NULL, NULL) == -1)
			errx(1, "apply");
		if ((all = realloc(all, alen + len + 3)) == NULL)
			err(1, NULL);
		if (alen == 0)
			all[alen++] = 0;
		else {
			all[alen++] = 0xff;
			all[alen++] = 0xfe;
		}
		memcpy(all + alen, e, len);
		alen += len;
		snprintf(name, sizeof name, "entries%zu", i);
		put("rsm", name, all, alen);
		free(e);
	}
	/* A snapshot of that state: byte 0 odd. */
	if ((f = rsm_freeze(m)) == NULL ||
	    (snap = rsm_frozen_encode(f, &len)) == NULL)
		errx(1, "snapshot");
	rsm_thaw(m, f);
	if ((all = realloc(all, len + 1)) == NULL)
		err(1, NULL);
	all[0] = 1;
	memcpy(all + 1, snap, len);
	put("rsm", "snapshot", all, len + 1);
	free(snap);
	free(all);
	free(b.buf);
	rsm_free(m);
	return 0;
}
