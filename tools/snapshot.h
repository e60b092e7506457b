/*
 * dsd-cli snapshot: online backup and offline restore (dsd-cli(1),
 * SNAPSHOTS).  save streams a running server's state (the
 * dsd.kvdb.v1.Maintenance service) into a file; verify checks a file;
 * restore makes a data directory of one, with no server.  The file is a
 * kvdb snapshot file (src/kv/snap.h), read and checked by the server's
 * own code.
 */
#ifndef DSD_SNAPSHOT_H
#define DSD_SNAPSHOT_H

struct event_base;
struct kvc_config;

/*
 * argv[0] is "snapshot", then "save FILE", "verify FILE" or "restore FILE
 * DIR".  save asks the addresses of kcfg in turn until one answers, each
 * with kcfg's timeout to connect; the stream itself has no deadline.
 * Reports through cliout.h: what was done as "name: value" lines, or one
 * JSON object with -o json; why not on stderr, or as the object's
 * status and message.  Returns the exit status: 0, 1 (ERROR) if a file
 * is not a sound snapshot or cannot be read or written, 2 for a usage
 * error, 3 if the server could not be reached or the call failed.
 */
int	snapshot_run(struct event_base *, const struct kvc_config *kcfg,
	    int argc, char **argv);

#endif
