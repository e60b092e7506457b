/*
 * A hash map from uint64_t keys to pointers: open addressing with linear
 * probing and backward-shift deletion, so there are no tombstones and
 * lookups stay short however many keys come and go (RPC ids do).
 */
#ifndef DSD_U64MAP_H
#define DSD_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map;

struct u64map	*u64map_new(void);
void		 u64map_free(struct u64map *);
/* Insert or replace; returns 0, or -1 if memory ran out. */
int		 u64map_put(struct u64map *, uint64_t key, void *val);
void		*u64map_get(const struct u64map *, uint64_t key);
/* Remove and return the value, or NULL if absent. */
void		*u64map_del(struct u64map *, uint64_t key);
size_t		 u64map_count(const struct u64map *);
/* Call fn on every entry; fn must not change the map. */
void		 u64map_foreach(const struct u64map *,
		    void (*fn)(uint64_t, void *, void *), void *arg);

#endif
