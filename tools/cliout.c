/* dsd-cli's replies as text or JSON lines, and its exit statuses; see
 * cliout.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cliout.h"
#include "kvtool.h"

static int	 cliout_json_on;
/* The fields every object of the current command starts with. */
static json_t	*cliout_ctx;
/* Set when a context field could not be made: the emit must fail rather
 * than print an object without it. */
static int	 cliout_ctx_broken;

void
cliout_init(int json)
{
	cliout_json_on = json;
}

int
cliout_json(void)
{
	return cliout_json_on;
}

void
cliout_begin(const char *op)
{
	json_decref(cliout_ctx);
	cliout_ctx = NULL;
	cliout_ctx_broken = 0;
	if (!cliout_json_on)
		return;
	if ((cliout_ctx = json_object()) == NULL)
		cliout_ctx_broken = 1;
	else if (op != NULL)
		cliout_context("op", json_string(op));
}

void
cliout_context(const char *name, json_t *value)
{
	if (!cliout_json_on) {
		json_decref(value);
		return;
	}
	/* json_object_set_new() takes value even when it fails. */
	if (cliout_ctx == NULL || value == NULL ||
	    json_object_set_new(cliout_ctx, name, value) == -1)
		cliout_ctx_broken = 1;
}

json_t *
cliout_object(const char *status)
{
	json_t	*o;

	if (cliout_ctx_broken)
		return NULL;
	if ((o = cliout_ctx != NULL ? json_copy(cliout_ctx) :
	    json_object()) == NULL)
		return NULL;
	if (status != NULL &&
	    json_object_set_new(o, "status", json_string(status)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* One object, one line; stdout is flushed so a reader at the other end
 * of a pipe gets the reply as soon as it is made. */
int
cliout_print(json_t *obj)
{
	int	rv = -1;

	if (obj == NULL)
		return -1;
	/* Newlines in strings are escaped, so the object is one line. */
	if (json_dumpf(obj, stdout, JSON_COMPACT | JSON_REAL_PRECISION(12)) ==
	    0 && putchar('\n') != EOF && fflush(stdout) == 0)
		rv = 0;
	json_decref(obj);
	return rv;
}

int
cliout_emit(json_t *obj, int rv)
{
	if (!cliout_json_on) {
		json_decref(obj);
		return rv;
	}
	if (cliout_print(obj) == -1) {
		cliout_note("cannot write the reply: out of memory, or "
		    "standard output failed");
		return CLI_TRANSPORT;
	}
	return rv;
}

void
cliout_note(const char *fmt, ...)
{
	va_list	ap;

	fflush(stdout);
	fprintf(stderr, "dsd-cli: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The failure object of a message in ap. */
static int
cliout_vfail(int rv, const char *status, const char *prefix,
    const char *fmt, va_list ap)
{
	json_t	*o;
	char	*msg;

	if (!cliout_json_on) {
		fflush(stdout);
		fputs(prefix, stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		return rv;
	}
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	if ((o = cliout_object(status)) != NULL && (msg == NULL ||
	    json_object_set_new(o, "message", json_string(msg)) == -1)) {
		json_decref(o);
		o = NULL;
	}
	free(msg);
	/* A failure is reported whatever happens: its exit status stays. */
	cliout_emit(o, rv);
	return rv;
}

int
cliout_fail(int rv, const char *status, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	rv = cliout_vfail(rv, status, "dsd-cli: ", fmt, ap);
	va_end(ap);
	return rv;
}

int
cliout_usage(const char *fmt, ...)
{
	va_list	ap;
	int	rv;

	va_start(ap, fmt);
	rv = cliout_vfail(CLI_USAGE, "USAGE", "", fmt, ap);
	va_end(ap);
	return rv;
}

int
cliout_kvdb_exit(int status)
{
	switch (status) {
	case STORE_SUCCESS:
		return CLI_OK;
	case STORE_ERROR_NE:
		return CLI_ERROR_NE;
	case STORE_ERROR_WV:
		return CLI_ERROR_WV;
	}
	return CLI_ERROR;
}
