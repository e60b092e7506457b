/*
 * Command-line flags, declared in tables: the global ones here, the
 * Maelstrom runtime's in maelstrom.c, each mode's in its own file.  The
 * same tables fill struct dsd and print --help, and man/dsd.8 documents
 * every entry.
 */
#ifndef DSD_FLAGS_H
#define DSD_FLAGS_H

#include <stdio.h>

struct dsd;

enum flag_type {
	FLAG_INT,
	FLAG_STRING,
};

struct flag {
	const char	*name;		/* long option without "--"; NULL ends */
	enum flag_type	 type;
	const char	*arg;		/* placeholder in --help, e.g. "MS" */
	const char	*def;		/* default as typed, or NULL for none */
	long long	 min, max;	/* bounds of FLAG_INT */
	const char	*help;
};

/*
 * A table of flags that several modes share (the Maelstrom runtime's, the
 * gRPC key-value service's), owned by the module that reads them; a mode
 * lists the groups it takes in its groups field.
 */
struct flag_group {
	const char		*title;		/* "--help: flags of every T mode" */
	const struct flag	*flags;
};

struct flag_value {
	const struct flag	*flag;
	const char		*str;	/* as given, or the default */
	long long		 num;	/* FLAG_INT only */
	int			 given;
};

/*
 * Parse argv into d: the mode, -v and the mode's flags.  Returns 0 to run,
 * 1 when --help or --version was handled, or 2 after printing a usage
 * error (the process exit status for bad usage).
 */
int		 flags_parse(struct dsd *d, int argc, char **argv);
void		 flags_usage(FILE *);
void		 flags_free(struct dsd *);

/* Look up a flag of the running mode; an unknown name is a bug (fatal). */
long long	 flags_int(const struct dsd *, const char *name);
const char	*flags_str(const struct dsd *, const char *name);
int		 flags_given(const struct dsd *, const char *name);

#endif
