/* The pipe fixture of the Maelstrom unit tests; see mael_fixture.h. */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "mael_fixture.h"

static void
mfx_done(struct mael *m, void *arg, int status)
{
	struct mfx	*fx = arg;

	fx->done = 1;
	fx->status = status;
}

struct mfx *
mfx_new(const struct mael_handler *handlers, void *state,
    int (*joined)(struct mael *, void *), int deadline_ms)
{
	struct mfx		*fx;
	struct mael_config	 cfg = { 0 };
	int			 a[2], b[2];

	fx = calloc(1, sizeof *fx);
	assert_non_null(fx);
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	fx->base = event_base_new();
	fx->to_node = a[1];
	fx->from_node = b[0];
	fcntl(b[0], F_SETFL, O_NONBLOCK);
	cfg.infd = a[0];
	cfg.outfd = b[1];
	cfg.max_line = 1 << 20;
	cfg.reply_deadline_ms = deadline_ms;
	cfg.handlers = handlers;
	cfg.state = state;
	cfg.joined = joined;
	cfg.done = mfx_done;
	cfg.done_arg = fx;
	fx->m = mael_new(fx->base, &cfg);
	return fx;
}

void
mfx_free(struct mfx *fx)
{
	mael_free(fx->m);
	event_base_free(fx->base);
	if (fx->to_node != -1)
		close(fx->to_node);
	close(fx->from_node);
	free(fx->out);
	free(fx);
}

void
mfx_write(struct mfx *fx, const char *s)
{
	size_t	len = strlen(s);

	assert_int_equal(write(fx->to_node, s, len), (ssize_t)len);
}

void
mfx_close_input(struct mfx *fx)
{
	close(fx->to_node);
	fx->to_node = -1;
}

void
mfx_pump(struct mfx *fx, int ms)
{
	uint64_t	end = mael_now_ms() + (uint64_t)ms;
	char		buf[4096];
	ssize_t		n;

	do {
		event_base_loop(fx->base, EVLOOP_NONBLOCK);
		while ((n = read(fx->from_node, buf, sizeof buf)) > 0) {
			fx->out = realloc(fx->out, fx->outlen + (size_t)n + 1);
			assert_non_null(fx->out);
			memcpy(fx->out + fx->outlen, buf, (size_t)n);
			fx->outlen += (size_t)n;
			fx->out[fx->outlen] = '\0';
		}
		usleep(1000);
	} while (mael_now_ms() < end);
}

json_t *
mfx_next(struct mfx *fx)
{
	char	*nl;
	json_t	*j;
	size_t	 len;

	if (fx->out == NULL || (nl = memchr(fx->out, '\n', fx->outlen)) == NULL)
		return NULL;
	len = (size_t)(nl - fx->out);
	j = json_loadb(fx->out, len, 0, NULL);
	assert_non_null(j);	/* every output line is JSON */
	memmove(fx->out, nl + 1, fx->outlen - len - 1);
	fx->outlen -= len + 1;
	fx->out[fx->outlen] = '\0';
	return j;
}

json_t *
mfx_next_type(struct mfx *fx, const char *type)
{
	json_t	*j;

	while ((j = mfx_next(fx)) != NULL) {
		if (strcmp(mfx_str(j, "body", "type"), type) == 0)
			return j;
		json_decref(j);
	}
	return NULL;
}

json_int_t
mfx_int(json_t *j, const char *path1, const char *path2)
{
	json_t	*v = json_object_get(j, path1);

	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_integer_value(v);
}

const char *
mfx_str(json_t *j, const char *path1, const char *path2)
{
	json_t	*v = json_object_get(j, path1);

	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_string_value(v);
}
