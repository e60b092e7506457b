/*
 * libFuzzer target: store_op_decode(), the parser of every WAL record and
 * of every operation inside a Raft entry.  What it accepts must encode
 * to bytes that decode and encode to themselves (the key is written
 * canonical, so a redundant sign byte may go once, but only once), and
 * apply to a store without harm.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv/store.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_op		 op, op2;
	struct store		*s;
	struct store_result	 r;
	uint8_t			*buf, *buf2;
	size_t			 n, n2;

	if (store_op_decode(data, size, &op) == -1)
		return 0;
	if ((s = store_new()) == NULL)
		abort();
	if (store_apply(s, &op, &r) == -1)
		abort();
	store_result_release(&r);
	store_free(s);

	buf = malloc(size + 1);
	buf2 = malloc(size + 1);
	if (buf == NULL || buf2 == NULL)
		abort();
	/* 0: a key or data over the limits, which decode refuses too. */
	if ((n = store_op_encode(&op, buf, size + 1)) == 0 || n > size)
		abort();
	if (store_op_decode(buf, n, &op2) == -1)
		abort();
	n2 = store_op_encode(&op2, buf2, size + 1);
	if (n2 != n || memcmp(buf, buf2, n) != 0)
		abort();
	free(buf);
	free(buf2);
	return 0;
}
