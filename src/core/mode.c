/*
 * The table of modes.  Adding a mode is adding its file to modes/ and one
 * line here; --help, --mode and flag parsing all follow from this table.
 */
#include "config.h"

#include <string.h>

#include "core/dsd.h"

extern const struct mode mode_echo;
extern const struct mode mode_unique_ids;
extern const struct mode mode_broadcast;
extern const struct mode mode_counter;
extern const struct mode mode_kafka;
extern const struct mode mode_txn;
extern const struct mode mode_kvdb;
extern const struct mode mode_kvdb_replicated;

const struct mode *const modes[] = {
	&mode_echo,
	&mode_unique_ids,
	&mode_broadcast,
	&mode_counter,
	&mode_kafka,
	&mode_txn,
	&mode_kvdb,
	&mode_kvdb_replicated,
	NULL
};

const struct mode *
mode_find(const char *name)
{
	const struct mode *const	*m;

	for (m = modes; *m != NULL; m++) {
		if (strcmp((*m)->name, name) == 0)
			return *m;
	}
	return NULL;
}
