/*
 * dsd-cli check: the test batteries of the kvdb API against any running
 * server (dsd-cli(1), CHECK).  They use the keys BASE to BASE+KEYS+15
 * only, so runs with disjoint ranges can share a server; with --shared
 * KEY their contention tests also meet on one key, and a wrapper checks
 * that its final version is 1 plus the sum of the "contention successes"
 * the runs print.
 */
#ifndef DSD_CHECK_H
#define DSD_CHECK_H

struct event_base;

struct kvc_config;

/*
 * Run the batteries; argv[0] is "check", then its flags.  kcfg gives the
 * addresses, the per-call timeout and the retry time (its slots and note
 * are the batteries' own); addr is the -a text, for messages.  Prints one
 * "ok -" or "not ok -" line per test and "N passed, M failed" at the end,
 * or with -o json the same as JSON lines (cliout.h).  Returns the exit
 * status: 0 if every test passed, 1 if one failed (or the run could not
 * start), 2 for a usage error, 3 if a call got no answer within the retry
 * time (the server could not be reached, or the connection was lost and
 * not won back).
 */
int	check_run(struct event_base *, const struct kvc_config *kcfg,
	    const char *addr, int argc, char **argv);

#endif
