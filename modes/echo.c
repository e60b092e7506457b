/*
 * maelstrom-echo: Gossip Glomers challenge 1.  Answers
 * {"type":"echo","echo":X} with {"type":"echo_ok","echo":X}.
 */
#include "config.h"

#include <jansson.h>

#include "core/dsd.h"
#include "maelstrom/maelstrom.h"

static void
echo_recv(struct mael *m, struct mael_msg *msg, void *state)
{
	json_t	*echo;

	if ((echo = json_object_get(msg->body, "echo")) == NULL) {
		mael_reply_error(m, msg, MAEL_MALFORMED_REQUEST,
		    "echo needs an echo field");
		return;
	}
	mael_reply(m, msg, json_pack("{s:s, s:O}", "type", "echo_ok",
	    "echo", echo));
}

static const struct mael_handler echo_handlers[] = {
	{ "echo",	echo_recv },
	{ NULL,		NULL }
};

const struct mode mode_echo = {
	.name = "maelstrom-echo",
	.summary = "Maelstrom echo node (Gossip Glomers challenge 1)",
	.kind = MODE_MAELSTROM,
	.groups = mael_flag_groups,
	.handlers = echo_handlers,
};
