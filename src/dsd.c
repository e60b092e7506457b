/*
 * dsd: one event-driven binary, many modes.  main() parses flags, finds
 * the mode in the table, runs one libevent loop and stops cleanly on
 * SIGTERM, SIGINT or (for Maelstrom nodes) the end of stdin.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"
#include "maelstrom/maelstrom.h"

static void
dsd_event_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

static void
dsd_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct dsd	*d = arg;

	log_info("caught signal %d, stopping", (int)sig);
	event_base_loopexit(d->base, NULL);
}

static void
dsd_mael_done(struct mael *m, void *arg, int status)
{
	struct dsd	*d = arg;

	d->exit_status = status;
	event_base_loopexit(d->base, NULL);
}

int
main(int argc, char **argv)
{
	struct dsd		 d = { 0 };
	struct mael_config	 mc = { 0 };
	struct mael		*m = NULL;
	struct event		*sigterm, *sigint;
	void			*state = NULL;

	switch (flags_parse(&d, argc, argv)) {
	case 0:
		break;
	case 1:
		return 0;
	default:
		return 2;
	}
	log_init("dsd", d.verbose);
	/* A dead peer shows as EPIPE on write, handled where it happens. */
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(dsd_event_log);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");

	if (d.mode->init != NULL && d.mode->init(&d, &state) == -1)
		fatalx("mode %s failed to start", d.mode->name);
	if (d.mode->kind & MODE_MAELSTROM) {
		mc.infd = 0;
		mc.outfd = 1;
		mc.max_line = (size_t)flags_int(&d, "max-line");
		mc.reply_deadline_ms = (int)flags_int(&d, "reply-deadline");
		mc.handlers = d.mode->handlers;
		mc.state = state;
		mc.joined = d.mode->joined;
		mc.done = dsd_mael_done;
		mc.done_arg = &d;
		m = mael_new(d.base, &mc);
	}

	sigterm = evsignal_new(d.base, SIGTERM, dsd_on_signal, &d);
	sigint = evsignal_new(d.base, SIGINT, dsd_on_signal, &d);
	if (sigterm == NULL || sigint == NULL ||
	    evsignal_add(sigterm, NULL) == -1 || evsignal_add(sigint, NULL) == -1)
		fatalx("cannot install signal handlers");
	log_info("mode %s running", d.mode->name);

	if (event_base_dispatch(d.base) == -1)
		fatalx("event loop failed");

	if (d.mode->stop != NULL)
		d.mode->stop(state);
	if (m != NULL) {
		mael_flush(m);
		mael_free(m);
	}
	if (d.mode->free != NULL)
		d.mode->free(state);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(d.base);
	flags_free(&d);
	log_info("stopped");
	return d.exit_status;
}
