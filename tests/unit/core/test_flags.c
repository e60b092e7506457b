/* Unit tests of flag parsing against the real mode table. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/dsd.h"
#include "core/flags.h"

static int
parse(struct dsd *d, const char *a1, const char *a2, const char *a3)
{
	char	*argv[5];
	int	 argc = 0;

	memset(d, 0, sizeof *d);
	argv[argc++] = (char *)"dsd";
	if (a1 != NULL)
		argv[argc++] = (char *)a1;
	if (a2 != NULL)
		argv[argc++] = (char *)a2;
	if (a3 != NULL)
		argv[argc++] = (char *)a3;
	argv[argc] = NULL;
	return flags_parse(d, argc, argv);
}

static void
test_mode_required(void **unused)
{
	struct dsd	d;

	/* No mode, an unknown mode, or a stray argument is a usage error. */
	assert_int_equal(parse(&d, NULL, NULL, NULL), 2);
	assert_int_equal(parse(&d, "--mode=nope", NULL, NULL), 2);
	assert_int_equal(parse(&d, "--mode=unique-ids", "extra", NULL), 2);
	assert_int_equal(parse(&d, "--no-such-flag", NULL, NULL), 2);
}

static void
test_mode_and_defaults(void **unused)
{
	struct dsd	d;

	/* A Maelstrom mode gets the runtime's flags with their defaults. */
	assert_int_equal(parse(&d, "--mode=maelstrom-echo", "-vv", NULL), 0);
	assert_string_equal(d.mode->name, "maelstrom-echo");
	assert_int_equal(d.verbose, 2);
	assert_int_equal(flags_int(&d, "reply-deadline"), 4500);
	assert_false(flags_given(&d, "reply-deadline"));
	flags_free(&d);

	assert_int_equal(parse(&d, "-m", "unique-ids",
	    "--reply-deadline=100"), 0);
	assert_int_equal(flags_int(&d, "reply-deadline"), 100);
	assert_true(flags_given(&d, "reply-deadline"));
	flags_free(&d);
}

static void
test_bad_values(void **unused)
{
	struct dsd	d;

	/* Non-numbers and out-of-range numbers are refused. */
	assert_int_equal(parse(&d, "--mode=unique-ids",
	    "--reply-deadline=soon", NULL), 2);
	flags_free(&d);
	assert_int_equal(parse(&d, "--mode=unique-ids",
	    "--reply-deadline=0", NULL), 2);
	flags_free(&d);
	assert_int_equal(parse(&d, "--mode=unique-ids", "--max-line=12",
	    NULL), 2);
	flags_free(&d);
}

static char *
write_conf(const char *text)
{
	static char	 path[] = "/tmp/dsd-test-conf.XXXXXX";
	char		*p = strdup(path);
	int		 fd = mkstemp(p);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static void
test_config_file(void **unused)
{
	struct dsd	 d;
	char		*p, *arg;

	/* A config file sets the mode and flags; the command line wins. */
	p = write_conf("# a comment\n\n  mode = unique-ids\n"
	    "reply-deadline=250   \n");
	assert_true(asprintf(&arg, "--config=%s", p) > 0);
	assert_int_equal(parse(&d, arg, NULL, NULL), 0);
	assert_string_equal(d.mode->name, "unique-ids");
	assert_int_equal(flags_int(&d, "reply-deadline"), 250);
	flags_free(&d);
	assert_int_equal(parse(&d, arg, "--reply-deadline=300", NULL), 0);
	assert_int_equal(flags_int(&d, "reply-deadline"), 300);
	flags_free(&d);
	assert_int_equal(parse(&d, arg, "--mode=maelstrom-echo", NULL), 0);
	assert_string_equal(d.mode->name, "maelstrom-echo");
	flags_free(&d);
	unlink(p);
	free(p);
	free(arg);

	/* Unknown names, bad values, lines without '=' and missing files
	 * are usage errors. */
	p = write_conf("mode = unique-ids\nno-such = 1\n");
	assert_true(asprintf(&arg, "--config=%s", p) > 0);
	assert_int_equal(parse(&d, arg, NULL, NULL), 2);
	flags_free(&d);
	unlink(p);
	free(p);
	free(arg);
	p = write_conf("mode = unique-ids\nreply-deadline = soon\n");
	assert_true(asprintf(&arg, "--config=%s", p) > 0);
	assert_int_equal(parse(&d, arg, NULL, NULL), 2);
	flags_free(&d);
	unlink(p);
	free(p);
	free(arg);
	p = write_conf("mode unique-ids\n");
	assert_true(asprintf(&arg, "--config=%s", p) > 0);
	assert_int_equal(parse(&d, arg, NULL, NULL), 2);
	flags_free(&d);
	unlink(p);
	free(p);
	free(arg);
	assert_int_equal(parse(&d, "--config=/nonexistent/dsd.conf", NULL,
	    NULL), 2);
	flags_free(&d);
}

static void
test_help_lists_every_mode(void **unused)
{
	const struct mode *const	*m;
	char				*buf = NULL;
	size_t				 len = 0;
	FILE				*fp;

	/* --help is generated from the mode table: every mode is in it. */
	fp = open_memstream(&buf, &len);
	flags_usage(fp);
	fclose(fp);
	for (m = modes; *m != NULL; m++)
		assert_non_null(strstr(buf, (*m)->name));
	assert_non_null(strstr(buf, "--reply-deadline"));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_required),
		cmocka_unit_test(test_mode_and_defaults),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_help_lists_every_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
