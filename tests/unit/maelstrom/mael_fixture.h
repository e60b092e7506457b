/*
 * A Maelstrom runtime over pipes for unit tests: the test writes request
 * lines, runs the loop for a while, and reads back the node's output one
 * JSON envelope at a time.
 */
#ifndef DSD_TEST_MAEL_FIXTURE_H
#define DSD_TEST_MAEL_FIXTURE_H

#include <stddef.h>

#include <jansson.h>

#include "maelstrom/maelstrom.h"

struct mfx {
	struct event_base	*base;
	struct mael		*m;
	int			 to_node;	/* we write requests here */
	int			 from_node;	/* we read its output here */
	char			*out;		/* output not yet taken */
	size_t			 outlen;
	int			 done, status;	/* the node stopped, and how */
};

/* Start a runtime with these handlers; state goes to them and joined. */
struct mfx	*mfx_new(const struct mael_handler *, void *state,
		    int (*joined)(struct mael *, void *), int deadline_ms);
void		 mfx_free(struct mfx *);
/* Write s (one or more complete lines) to the node. */
void		 mfx_write(struct mfx *, const char *s);
/* Close the node's input. */
void		 mfx_close_input(struct mfx *);
/* Run the loop for about ms milliseconds, collecting output. */
void		 mfx_pump(struct mfx *, int ms);
/* The next output envelope (caller decrefs), or NULL. */
json_t		*mfx_next(struct mfx *);
/* The next envelope whose body.type is type, skipping others; NULL if
 * none is there. */
json_t		*mfx_next_type(struct mfx *, const char *type);
/* A field of the envelope (path2 NULL) or of its body. */
json_int_t	 mfx_int(json_t *, const char *path1, const char *path2);
const char	*mfx_str(json_t *, const char *path1, const char *path2);

#endif
