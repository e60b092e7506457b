/* uint64_t → pointer hash map; see u64map.h. */
#include "config.h"

#include <stdlib.h>

#include "core/u64map.h"

struct u64map_slot {
	uint64_t	 key;
	void		*val;		/* NULL marks an empty slot */
};

struct u64map {
	struct u64map_slot	*slots;
	size_t			 cap;	/* a power of two */
	size_t			 count;
};

/* Mix the bits so that sequential ids spread over the table. */
static size_t
u64map_hash(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

struct u64map *
u64map_new(void)
{
	struct u64map	*m;

	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->cap = 16;
	if ((m->slots = calloc(m->cap, sizeof *m->slots)) == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
u64map_free(struct u64map *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static int
u64map_grow(struct u64map *m)
{
	struct u64map_slot	*old = m->slots, *s;
	size_t			 oldcap = m->cap, i, j;

	if ((s = calloc(oldcap * 2, sizeof *s)) == NULL)
		return -1;
	m->slots = s;
	m->cap = oldcap * 2;
	for (i = 0; i < oldcap; i++) {
		if (old[i].val == NULL)
			continue;
		j = u64map_hash(old[i].key, m->cap);
		while (s[j].val != NULL)
			j = (j + 1) & (m->cap - 1);
		s[j] = old[i];
	}
	free(old);
	return 0;
}

int
u64map_put(struct u64map *m, uint64_t key, void *val)
{
	size_t	i;

	if (val == NULL)
		return -1;
	if ((m->count + 1) * 4 > m->cap * 3 && u64map_grow(m) == -1)
		return -1;
	i = u64map_hash(key, m->cap);
	while (m->slots[i].val != NULL) {
		if (m->slots[i].key == key) {
			m->slots[i].val = val;
			return 0;
		}
		i = (i + 1) & (m->cap - 1);
	}
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->count++;
	return 0;
}

void *
u64map_get(const struct u64map *m, uint64_t key)
{
	size_t	i;

	i = u64map_hash(key, m->cap);
	while (m->slots[i].val != NULL) {
		if (m->slots[i].key == key)
			return m->slots[i].val;
		i = (i + 1) & (m->cap - 1);
	}
	return NULL;
}

void *
u64map_del(struct u64map *m, uint64_t key)
{
	size_t	 i, j, home, mask = m->cap - 1;
	void	*val;

	i = u64map_hash(key, m->cap);
	while (m->slots[i].val != NULL && m->slots[i].key != key)
		i = (i + 1) & mask;
	if (m->slots[i].val == NULL)
		return NULL;
	val = m->slots[i].val;
	m->slots[i].val = NULL;
	m->count--;

	/* Shift later members of the probe run back into the hole. */
	j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (m->slots[j].val == NULL)
			break;
		home = u64map_hash(m->slots[j].key, m->cap);
		/* Move j to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			m->slots[i] = m->slots[j];
			m->slots[j].val = NULL;
			i = j;
		}
	}
	return val;
}

size_t
u64map_count(const struct u64map *m)
{
	return m->count;
}

void
u64map_foreach(const struct u64map *m, void (*fn)(uint64_t, void *, void *),
    void *arg)
{
	size_t	i;

	for (i = 0; i < m->cap; i++) {
		if (m->slots[i].val != NULL)
			fn(m->slots[i].key, m->slots[i].val, arg);
	}
}
