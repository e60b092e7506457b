/*
 * unique-ids: Gossip Glomers challenge 2, totally available.
 *
 * An id is "<node>-<boot>-<n>": the node id makes ids of different nodes
 * differ, n counts up within one process, and boot is 64 random bits drawn
 * at start-up so that a restarted node (whose counter starts again at 0)
 * does not repeat the ids of an earlier run.  Two runs of one node collide
 * only if they draw the same 64 bits.  No message to any peer is needed,
 * so a partition changes nothing.
 */
#include "config.h"

#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/dsd.h"
#include "core/log.h"
#include "maelstrom/maelstrom.h"
#include "core/xmalloc.h"

struct uid_state {
	uint64_t	boot;
	uint64_t	next;
};

static int
uid_init(struct dsd *d, void **statep)
{
	struct uid_state	*s;
	ssize_t			 n;

	s = xcalloc(1, sizeof *s);
	do
		n = getrandom(&s->boot, sizeof s->boot, 0);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof s->boot) {
		log_warn("getrandom");
		free(s);
		return -1;
	}
	*statep = s;
	return 0;
}

static void
uid_generate(struct mael *m, struct mael_msg *msg, void *state)
{
	struct uid_state	*s = state;

	mael_reply(m, msg, json_pack("{s:s, s:o}", "type", "generate_ok",
	    "id", json_sprintf("%s-%016" PRIx64 "-%" PRIu64, mael_node_id(m),
	    s->boot, s->next++)));
}

static void
uid_free(void *state)
{
	free(state);
}

static const struct mael_handler uid_handlers[] = {
	{ "generate",	uid_generate },
	{ NULL,		NULL }
};

const struct mode mode_unique_ids = {
	.name = "unique-ids",
	.summary = "Maelstrom unique id generator, totally available "
	    "(challenge 2)",
	.kind = MODE_MAELSTROM,
	.groups = mael_flag_groups,
	.init = uid_init,
	.handlers = uid_handlers,
	.free = uid_free,
};
