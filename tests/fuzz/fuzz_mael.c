/*
 * libFuzzer target: what a Maelstrom node reads on stdin.  The bytes go
 * through the line framer in pieces (the first byte seeds the piece
 * sizes, as a pipe may deliver them), every line through the envelope
 * parser.  The framer must give back exactly the lines in the input
 * (short enough ones, in order): the same lines as a plain split on '\n'.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maelstrom/maelstrom.h"

#define MAX_LINE	256

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mael_lines	*l;
	struct mael_msg		*m;
	const char		*err;
	const uint8_t		*p, *nl, *want, *end;
	char			*line;
	size_t			 len, off, piece, wantlen;
	unsigned int		 seed;

	if (size < 1)
		return 0;
	seed = data[0];
	p = data + 1;
	end = data + size;
	if ((l = mael_lines_new(MAX_LINE)) == NULL)
		abort();
	want = p;
	for (off = 0; p + off < end; off += piece) {
		seed = seed * 1103515245 + 12345;
		piece = 1 + (seed >> 16) % 64;
		if (piece > (size_t)(end - p) - off)
			piece = (size_t)(end - p) - off;
		if (mael_lines_feed(l, p + off, piece) == -1)
			abort();
		while ((line = mael_lines_next(l, &len, 0)) != NULL) {
			/* The next line of the input that is not too long. */
			for (;;) {
				if ((nl = memchr(want, '\n', end - want)) == NULL)
					abort();
				wantlen = nl - want;
				want = nl + 1;
				if (wantlen <= MAX_LINE)
					break;
			}
			if (len != wantlen || memcmp(line, want - wantlen - 1,
			    len) != 0)
				abort();
			if ((m = mael_msg_parse(line, len, &err)) != NULL)
				mael_msg_release(m);
			else if (err == NULL)
				abort();
			free(line);
		}
	}
	mael_lines_free(l);
	return 0;
}
