/*
 * Flag parsing from the declarative tables.  getopt_long is given the
 * union of every table so that a flag of another mode gets a precise
 * error ("does not apply to mode X") rather than "unrecognized option".
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "core/xmalloc.h"

/* At most this many tables per mode: its shared groups and its own. */
#define FLAGS_MAX_GROUPS	8

/* The tables of flags a mode accepts: the groups it shares with other
 * modes, then its own. */
static size_t
flags_tables(const struct mode *m, const struct flag **t)
{
	const struct flag_group *const	*g;
	size_t				 n = 0;

	for (g = m->groups; g != NULL && *g != NULL; g++) {
		if (n == FLAGS_MAX_GROUPS - 1)
			fatalx("mode %s shares too many flag groups", m->name);
		t[n++] = (*g)->flags;
	}
	if (m->flags != NULL)
		t[n++] = m->flags;
	return n;
}

static const struct flag *
flags_lookup(const struct mode *m, const char *name)
{
	const struct flag	*t[FLAGS_MAX_GROUPS], *f;
	size_t			 i, n;

	n = flags_tables(m, t);
	for (i = 0; i < n; i++) {
		for (f = t[i]; f->name != NULL; f++) {
			if (strcmp(f->name, name) == 0)
				return f;
		}
	}
	return NULL;
}

/* Convert one value; on error print why and return -1. */
static int
flags_convert(struct flag_value *v, const char *str)
{
	const struct flag	*f = v->flag;
	char			*end;
	long long		 n;

	v->str = str;
	if (f->type != FLAG_INT)
		return 0;
	errno = 0;
	n = strtoll(str, &end, 10);
	if (str[0] == '\0' || *end != '\0' || errno == ERANGE) {
		fprintf(stderr, "dsd: --%s: '%s' is not an integer\n", f->name,
		    str);
		return -1;
	}
	if (n < f->min || n > f->max) {
		fprintf(stderr, "dsd: --%s: %lld is out of range %lld to %lld\n",
		    f->name, n, f->min, f->max);
		return -1;
	}
	v->num = n;
	return 0;
}

static void
flags_print_table(FILE *fp, const struct flag *f)
{
	char	*lhs;

	for (; f->name != NULL; f++) {
		xasprintf(&lhs, "--%s=%s", f->name, f->arg);
		fprintf(fp, "  %-26s %s", lhs, f->help);
		if (f->def != NULL)
			fprintf(fp, " (default %s)", f->def);
		fputc('\n', fp);
		free(lhs);
	}
}

/* Whether a mode before *m in the table takes group g too. */
static int
flags_group_seen(const struct mode *const *m, const struct flag_group *g)
{
	const struct mode *const	*p;
	const struct flag_group *const	*pg;

	for (p = modes; p != m; p++) {
		for (pg = (*p)->groups; pg != NULL && *pg != NULL; pg++) {
			if (*pg == g)
				return 1;
		}
	}
	return 0;
}

void
flags_usage(FILE *fp)
{
	const struct mode *const	*m;
	const struct flag_group *const	*g;

	fprintf(fp,
	    "usage: dsd --mode=NAME [-v] [flags]\n"
	    "       dsd --help | --version\n"
	    "\n"
	    "modes:\n");
	for (m = modes; *m != NULL; m++)
		fprintf(fp, "  %-26s %s\n", (*m)->name, (*m)->summary);
	fprintf(fp,
	    "\n"
	    "flags of every mode:\n"
	    "  %-26s %s\n  %-26s %s\n  %-26s %s\n  %-26s %s\n  %-26s %s\n",
	    "-m, --mode=NAME", "the mode to run (required)",
	    "-c, --config=FILE", "read settings (name = value lines) from FILE",
	    "-v, --verbose", "log more to stderr; repeat for debug",
	    "-h, --help", "print this help and exit",
	    "-V, --version", "print the version and exit");
	/* Each shared group once, where the first mode taking it is. */
	for (m = modes; *m != NULL; m++) {
		for (g = (*m)->groups; g != NULL && *g != NULL; g++) {
			if (flags_group_seen(m, *g))
				continue;
			fprintf(fp, "\nflags of every %s mode:\n", (*g)->title);
			flags_print_table(fp, (*g)->flags);
		}
	}
	for (m = modes; *m != NULL; m++) {
		if ((*m)->flags == NULL || (*m)->flags[0].name == NULL)
			continue;
		fprintf(fp, "\nflags of mode %s:\n", (*m)->name);
		flags_print_table(fp, (*m)->flags);
	}
	fprintf(fp, "\nSee dsd(8).\n");
}

/* Append the flags of table t to the getopt array, skipping duplicates. */
static void
flags_add_longopts(struct option **lo, size_t *n, size_t *cap,
    const struct flag *t)
{
	size_t	i;

	for (; t != NULL && t->name != NULL; t++) {
		for (i = 0; i < *n; i++) {
			if (strcmp((*lo)[i].name, t->name) == 0)
				break;
		}
		if (i < *n)
			continue;
		if (*n + 1 >= *cap) {
			*cap *= 2;
			*lo = xreallocarray(*lo, *cap, sizeof **lo);
		}
		(*lo)[*n].name = t->name;
		(*lo)[*n].has_arg = required_argument;
		(*lo)[*n].flag = NULL;
		(*lo)[*n].val = 256 + (int)*n;
		(*n)++;
	}
}

struct conf_entry {
	const char	*name;
	const char	*val;
	size_t		 line;
};

/*
 * Read "name = value" lines (blank lines and # comments ignored) from
 * path into entries pointing into *bufp, which the caller frees.  Returns
 * the number of entries, or -1 after printing why.
 */
static ssize_t
flags_read_config(const char *path, char **bufp, struct conf_entry **ep)
{
	FILE			*fp;
	struct conf_entry	*e = NULL;
	char			*buf = NULL, *line, *next, *eq, *end;
	size_t			 size = 0, n = 0, lineno = 0;
	ssize_t			 rv = -1;

	*bufp = NULL;
	*ep = NULL;
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "dsd: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* Slurp the file: it is small, and entries point into it.  A NUL
	 * ends it, as it would end the line parsing below anyway. */
	if (getdelim(&buf, &size, '\0', fp) == -1) {
		if (ferror(fp)) {
			fprintf(stderr, "dsd: %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
		free(buf);		/* an empty file */
		buf = xstrdup("");
	}
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line += strspn(line, " \t\r");
		if (*line == '\0' || *line == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			fprintf(stderr, "dsd: %s:%zu: expected name = value\n",
			    path, lineno);
			goto out;
		}
		for (end = eq; end > line && strchr(" \t", end[-1]); end--)
			;
		*end = '\0';
		eq++;
		eq += strspn(eq, " \t");
		for (end = eq + strlen(eq); end > eq &&
		    strchr(" \t\r", end[-1]); end--)
			;
		*end = '\0';
		e = xreallocarray(e, n + 1, sizeof *e);
		e[n].name = line;
		e[n].val = eq;
		e[n].line = lineno;
		n++;
	}
	rv = (ssize_t)n;
out:
	fclose(fp);
	if (rv == -1) {
		free(buf);
		free(e);
		return -1;
	}
	*bufp = buf;
	*ep = e;
	return rv;
}

/* Set one flag of d from text; returns -1 after printing why. */
static int
flags_set(struct dsd *d, const char *name, const char *val)
{
	size_t	j;

	for (j = 0; j < d->nvalues; j++) {
		if (strcmp(d->values[j].flag->name, name) != 0)
			continue;
		if (flags_convert(&d->values[j], val) == -1)
			return -1;
		d->values[j].given = 1;
		return 0;
	}
	return -1;
}

int
flags_parse(struct dsd *d, int argc, char **argv)
{
	static const struct option	 fixed[] = {
		{ "mode",	required_argument,	NULL, 'm' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "config",	required_argument,	NULL, 'c' },
	};
	const struct mode *const	*mp;
	const struct mode		*m;
	struct option			*lo;
	const struct flag		*t[FLAGS_MAX_GROUPS], *f;
	const struct flag_group *const	*sg;
	struct {
		const char	*name;
		const char	*val;
	}				*given;
	size_t				 nlo, cap, ngiven = 0, i, j, ng;
	const char			*modename = NULL, *config = NULL;
	struct conf_entry		*conf = NULL;
	ssize_t				 nconf = 0;
	int				 ch, help = 0, version = 0, rv = 2;

	cap = 16;
	lo = xcalloc(cap, sizeof *lo);
	memcpy(lo, fixed, sizeof fixed);
	nlo = sizeof fixed / sizeof fixed[0];
	for (mp = modes; *mp != NULL; mp++) {
		for (sg = (*mp)->groups; sg != NULL && *sg != NULL; sg++)
			flags_add_longopts(&lo, &nlo, &cap, (*sg)->flags);
		flags_add_longopts(&lo, &nlo, &cap, (*mp)->flags);
	}
	memset(&lo[nlo], 0, sizeof lo[nlo]);
	given = xcalloc((size_t)argc + 1, sizeof *given);

	/* 0, not 1: glibc then starts afresh, forgetting a cluster of short
	 * options left half read by an earlier call (the unit tests and the
	 * flags fuzzer call this more than once). */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+c:hm:vV", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			help = 1;
			break;
		case 'm':
			modename = optarg;
			break;
		case 'v':
			d->verbose++;
			break;
		case 'V':
			version = 1;
			break;
		default:
			if (ch < 256) {
				fprintf(stderr, "dsd: see dsd --help\n");
				goto out;
			}
			given[ngiven].name = lo[ch - 256].name;
			given[ngiven++].val = optarg;
			break;
		}
	}
	if (help) {
		flags_usage(stdout);
		rv = 1;
		goto out;
	}
	if (version) {
		printf("dsd %s\n", PACKAGE_VERSION);
		rv = 1;
		goto out;
	}
	if (optind < argc) {
		fprintf(stderr, "dsd: unexpected argument '%s'; see dsd --help\n",
		    argv[optind]);
		goto out;
	}
	if (config != NULL) {
		if ((nconf = flags_read_config(config, &d->config_text,
		    &conf)) == -1)
			goto out;
		/* The command line's mode wins over the file's. */
		for (i = 0; i < (size_t)nconf; i++) {
			if (strcmp(conf[i].name, "mode") == 0 &&
			    modename == NULL)
				modename = conf[i].val;
		}
	}
	if (modename == NULL) {
		fprintf(stderr, "dsd: no mode given: use --mode=NAME; "
		    "see dsd --help\n");
		goto out;
	}
	if ((m = mode_find(modename)) == NULL) {
		fprintf(stderr, "dsd: unknown mode '%s'; modes are:", modename);
		for (mp = modes; *mp != NULL; mp++)
			fprintf(stderr, " %s", (*mp)->name);
		fputc('\n', stderr);
		goto out;
	}
	d->mode = m;

	ng = flags_tables(m, t);
	for (i = 0; i < ng; i++) {
		for (f = t[i]; f->name != NULL; f++)
			d->nvalues++;
	}
	d->values = d->nvalues == 0 ? NULL :
	    xcalloc(d->nvalues, sizeof *d->values);
	j = 0;
	for (i = 0; i < ng; i++) {
		for (f = t[i]; f->name != NULL; f++) {
			d->values[j].flag = f;
			if (f->def != NULL && flags_convert(&d->values[j],
			    f->def) == -1)
				fatalx("default of --%s is invalid", f->name);
			j++;
		}
	}
	/* The file first, so that the command line overrides it. */
	for (i = 0; i < (size_t)nconf; i++) {
		if (strcmp(conf[i].name, "mode") == 0)
			continue;
		if (flags_lookup(m, conf[i].name) == NULL) {
			fprintf(stderr, "dsd: %s:%zu: %s is not a setting of "
			    "mode %s\n", config, conf[i].line, conf[i].name,
			    m->name);
			goto out;
		}
		if (flags_set(d, conf[i].name, conf[i].val) == -1) {
			fprintf(stderr, "dsd: %s:%zu: bad value for %s\n",
			    config, conf[i].line, conf[i].name);
			goto out;
		}
	}
	for (i = 0; i < ngiven; i++) {
		if (flags_lookup(m, given[i].name) == NULL) {
			fprintf(stderr, "dsd: --%s does not apply to mode %s; "
			    "see dsd --help\n", given[i].name, m->name);
			goto out;
		}
		if (flags_set(d, given[i].name, given[i].val) == -1)
			goto out;
	}
	rv = 0;
out:
	free(conf);
	free(given);
	free(lo);
	return rv;
}

void
flags_free(struct dsd *d)
{
	free(d->values);
	free(d->config_text);
	d->config_text = NULL;
	d->values = NULL;
	d->nvalues = 0;
}

static const struct flag_value *
flags_value(const struct dsd *d, const char *name)
{
	size_t	i;

	for (i = 0; i < d->nvalues; i++) {
		if (strcmp(d->values[i].flag->name, name) == 0)
			return &d->values[i];
	}
	fatalx("flag --%s is not declared for mode %s", name, d->mode->name);
}

long long
flags_int(const struct dsd *d, const char *name)
{
	const struct flag_value	*v = flags_value(d, name);

	if (v->flag->type != FLAG_INT)
		fatalx("flag --%s is not an integer", name);
	return v->num;
}

const char *
flags_str(const struct dsd *d, const char *name)
{
	return flags_value(d, name)->str;
}

int
flags_given(const struct dsd *d, const char *name)
{
	return flags_value(d, name)->given;
}
