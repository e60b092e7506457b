/*
 * Types shared by the core and the modes.  Each module that has tests of
 * its own has its own header; this one holds only what everything needs.
 */
#ifndef DSD_DSD_H
#define DSD_DSD_H

#include <stddef.h>

struct event_base;
struct flag;
struct flag_group;
struct flag_value;
struct mael;
struct mael_handler;

/* The running process: one per dsd, whatever the mode. */
struct dsd {
	struct event_base	*base;
	const struct mode	*mode;
	int			 verbose;

	struct flag_value	*values;	/* flags of this mode, parsed */
	size_t			 nvalues;
	char			*config_text;	/* --config file; values point in */

	int			 exit_status;
};

/*
 * A mode: one per file in modes/, listed in src/core/mode.c.  The same table
 * drives dispatch, flag parsing and --help, so nothing is listed twice.
 */
struct mode {
	const char		*name;		/* as given to --mode */
	const char		*summary;	/* one line for --help */
	int			 kind;
#define MODE_MAELSTROM	0x1			/* a node: JSON lines on stdin/stdout */
	const struct flag	*flags;		/* NULL-name terminated, or NULL */
	/* Tables of flags shared with other modes (the runtime's), NULL-
	 * terminated, or NULL. */
	const struct flag_group *const *groups;

	/* Start-up, before the loop runs: check flags, allocate state. */
	int			(*init)(struct dsd *, void **state);

	/* Maelstrom modes: handlers by message type, and the hook called
	 * once init has told the node who it is (start timers there). */
	const struct mael_handler *handlers;
	int			(*joined)(struct mael *, void *state);

	/* SIGTERM or end of input: flush what must be flushed. */
	void			(*stop)(void *state);
	void			(*free)(void *state);
};

extern const struct mode *const modes[];

const struct mode	*mode_find(const char *);

#endif
