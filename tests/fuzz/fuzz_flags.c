/*
 * libFuzzer target: what an administrator types, in core/flags.c (the
 * command line, and the --config file of "name = value" lines) and in
 * kvdb-replicated's --cluster list.  Bad input must end in a message, not
 * a crash: a refused command line must have printed why, fatalx() (how
 * start-up refuses a --cluster list) must carry a message, and a command
 * line taken must hold every number within its flag's bounds.  Neither
 * may call fatal(): that is for what input cannot cause (memory).
 *
 * First byte even: the rest up to a NUL is the config file, then the
 * command line's words, NUL-separated.  Odd: the rest is a --cluster
 * value, for node id 1 + the second byte % 4.
 *
 * fatal() and fatalx() are wrapped (-Wl,--wrap, see run.sh) to come back
 * here and fail, with the input, instead of exiting.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <unistd.h>

/* The parser is static: compile the mode's file into this one. */
#include "../../modes/kvdb-replicated.c"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
void	__wrap_fatal(const char *, ...);
void	__wrap_fatalx(const char *, ...);

#define MAXWORDS	24

static jmp_buf	 back;
static char	 conf[64];
static int	 errfd;		/* flags_parse's complaints, to be measured */
static int	 nullfd;	/* --help's text */
static int	 origerr, origout;	/* put back after each parse */

static void
wrapped(const char *fmt, va_list ap)
{
	char	msg[512];

	(void)vsnprintf(msg, sizeof msg, fmt, ap);
	fprintf(stderr, "fatal: %s\n", msg);
	longjmp(back, 1);
}

void
__wrap_fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	wrapped(fmt, ap);
	va_end(ap);
}

void
__wrap_fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	wrapped(fmt, ap);
	va_end(ap);
}

static void
cleanup(void)
{
	(void)unlink(conf);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	tmp[] = "/tmp/dsd-fuzz-err-XXXXXX";
	int	fd;

	(void)argc;
	(void)argv;
	log_init("dsd-fuzz", -1);
	snprintf(conf, sizeof conf, "/tmp/dsd-fuzz-conf-XXXXXX");
	if ((fd = mkstemp(conf)) == -1)
		abort();
	close(fd);
	atexit(cleanup);
	if ((errfd = mkstemp(tmp)) == -1 ||
	    (nullfd = open("/dev/null", O_WRONLY)) == -1 ||
	    (origerr = dup(STDERR_FILENO)) == -1 ||
	    (origout = dup(STDOUT_FILENO)) == -1)
		abort();
	(void)unlink(tmp);
	return 0;
}

static void
cluster(const uint8_t *data, size_t size)
{
	struct raft_glue_member		*m;
	const struct raft_glue_member	*mine;
	char				*s, err[512];
	size_t				 n;
	uint64_t			 self;

	if (size < 1)
		return;
	self = 1 + data[0] % 4;
	if ((s = strndup((const char *)data + 1, size - 1)) == NULL)
		abort();
	if (setjmp(back) != 0)
		abort();
	err[0] = '\0';
	if ((m = kvr_parse_cluster(s, self, &n, &mine, err,
	    sizeof err)) == NULL) {
		if (err[0] == '\0')
			abort();	/* refused, not saying why */
	} else {
		if (mine == NULL || mine->id != self || n == 0)
			abort();
		raft_glue_members_free(m, n);
	}
	free(s);
}

static void
cmdline(const uint8_t *data, size_t size)
{
	struct dsd	 d;
	char		*buf, *av[MAXWORDS + 3], confarg[96];
	size_t		 i, n, ac = 0;
	int		 fd, rv;
	off_t		 said;

	n = strnlen((const char *)data, size);
	if ((fd = open(conf, O_WRONLY | O_TRUNC)) == -1)
		abort();
	if (n > 0 && write(fd, data, n) != (ssize_t)n)
		abort();
	close(fd);
	/* The words, each NUL-terminated in a copy. */
	if ((buf = malloc(size + 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	av[ac++] = "dsd";
	snprintf(confarg, sizeof confarg, "--config=%s", conf);
	av[ac++] = confarg;
	for (i = n + 1; i < size && ac < MAXWORDS + 2; i += strlen(buf + i) + 1)
		av[ac++] = buf + i;
	av[ac] = NULL;

	memset(&d, 0, sizeof d);
	if (ftruncate(errfd, 0) == -1 || lseek(errfd, 0, SEEK_SET) == -1)
		abort();
	fflush(stderr);
	fflush(stdout);
	dup2(errfd, STDERR_FILENO);
	dup2(nullfd, STDOUT_FILENO);
	rv = setjmp(back) == 0 ? flags_parse(&d, (int)ac, av) : -1;
	fflush(stderr);
	fflush(stdout);
	said = lseek(errfd, 0, SEEK_CUR);
	dup2(origerr, STDERR_FILENO);
	dup2(origout, STDOUT_FILENO);
	if (rv == 2 && said <= 0) {
		fprintf(stderr, "a command line was refused in silence\n");
		abort();
	}
	if (rv == -1) {
		fprintf(stderr, "flags_parse called fatal\n");
		abort();
	}
	if (rv == 0) {
		if (d.mode == NULL)
			abort();
		for (i = 0; i < d.nvalues; i++) {
			const struct flag_value	*v = &d.values[i];

			if (v->flag->type == FLAG_INT && v->str != NULL &&
			    (v->num < v->flag->min || v->num > v->flag->max)) {
				fprintf(stderr, "--%s=%lld out of [%lld, "
				    "%lld]\n", v->flag->name, v->num,
				    v->flag->min, v->flag->max);
				abort();
			}
		}
	}
	flags_free(&d);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		cluster(data + 1, size - 1);
	else
		cmdline(data + 1, size - 1);
	return 0;
}
