/*
 * The kvdb state machine; see store.h.
 *
 * Memory: each entry is one allocation, a 32-byte header followed by the
 * canonical key and the data, so a key costs its header, malloc's own
 * word and rounding, and one table slot.  The table is open addressing
 * with linear probing over an array of entry pointers, beside an array of
 * one-byte tags (0 for an empty slot, else seven bits of the hash) that
 * lets most probes skip a slot without touching its entry.  Deletion
 * shifts later members of a probe run back, so there are no tombstones.
 * An empty slot's pointer is NULL (store_pin() counts on it).
 */
#include "config.h"

#include <sys/random.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/le.h"
#include "kv/store.h"

struct store_entry {
	uint32_t	refcnt;
	uint32_t	hash;
	uint32_t	keylen;
	uint32_t	datalen;
	int64_t		version;
	int64_t		timestamp;
	uint8_t		bytes[];	/* key, then data */
};

struct store {
	struct store_entry	**ents;
	uint8_t			 *tags;
	size_t			  cap;		/* a power of two */
	size_t			  count;
	uint64_t		  data_bytes;	/* of every entry */
	uint64_t		  k0, k1;	/* hash key */

	/* While pinned (store_pin()), entries leaving the table. */
	int			  pinned;
	struct store_entry	**kept;
	size_t			  nkept, keptcap;
};

#define STORE_MINCAP	16

/*
 * SipHash-1-3 (Aumasson and Bernstein), keyed per store: keys come from
 * clients, and an unkeyed hash would let them fill one probe run.
 */
#define ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

static uint64_t
store_siphash(uint64_t k0, uint64_t k1, const uint8_t *p, size_t len)
{
	uint64_t	v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t	v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t	v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t	v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t	m, b = (uint64_t)len << 56;
	size_t		i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = le_get64(p + i);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	switch (left) {
	case 7: b |= (uint64_t)p[i + 6] << 48;	/* FALLTHROUGH */
	case 6: b |= (uint64_t)p[i + 5] << 40;	/* FALLTHROUGH */
	case 5: b |= (uint64_t)p[i + 4] << 32;	/* FALLTHROUGH */
	case 4: b |= (uint64_t)p[i + 3] << 24;	/* FALLTHROUGH */
	case 3: b |= (uint64_t)p[i + 2] << 16;	/* FALLTHROUGH */
	case 2: b |= (uint64_t)p[i + 1] << 8;	/* FALLTHROUGH */
	case 1: b |= (uint64_t)p[i];		/* FALLTHROUGH */
	default: break;
	}
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint32_t
store_hash(const struct store *s, const uint8_t *p, size_t len)
{
	uint64_t	m = store_siphash(s->k0, s->k1, p, len);

	return (uint32_t)(m ^ (m >> 32));
}

/* The slot index comes from the low bits, the tag from the top seven. */
static uint8_t
store_tag(uint32_t h)
{
	return (uint8_t)(0x80 | (h >> 25));
}

struct store *
store_new(void)
{
	struct store	*s;
	uint64_t	 seed[2];

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->cap = STORE_MINCAP;
	s->ents = calloc(s->cap, sizeof *s->ents);
	s->tags = calloc(s->cap, 1);
	if (s->ents == NULL || s->tags == NULL) {
		free(s->ents);
		free(s->tags);
		free(s);
		return NULL;
	}
	/* Without getrandom() the key is still unpredictable enough for a
	 * hash table: only its layout, never a result, depends on it. */
	if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != sizeof seed) {
		seed[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		seed[1] = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)s;
	}
	s->k0 = seed[0];
	s->k1 = seed[1];
	return s;
}

void
store_free(struct store *s)
{
	size_t	i;

	if (s == NULL)
		return;
	for (i = 0; i < s->cap; i++) {
		if (s->tags[i] != 0)
			store_entry_unref(s->ents[i], __func__);
	}
	for (i = 0; i < s->nkept; i++)
		store_entry_unref(s->kept[i], __func__);
	free(s->kept);
	free(s->ents);
	free(s->tags);
	free(s);
}

size_t
store_count(const struct store *s)
{
	return s->count;
}

uint64_t
store_data_bytes(const struct store *s)
{
	return s->data_bytes;
}

void
store_entry_ref(struct store_entry *e, const char *tag)
{
	e->refcnt++;
}

void
store_entry_unref(struct store_entry *e, const char *tag)
{
	if (--e->refcnt == 0)
		free(e);
}

int64_t
store_entry_version(const struct store_entry *e)
{
	return e->version;
}

int64_t
store_entry_timestamp(const struct store_entry *e)
{
	return e->timestamp;
}

const uint8_t *
store_entry_data(const struct store_entry *e, size_t *len)
{
	*len = e->datalen;
	return e->bytes + e->keylen;
}

const uint8_t *
store_entry_key(const struct store_entry *e, size_t *len)
{
	*len = e->keylen;
	return e->bytes;
}

void
store_result_release(struct store_result *res)
{
	if (res->value != NULL) {
		store_entry_unref(res->value, __func__);
		res->value = NULL;
	}
}

int
store_op_mutates(enum store_op_type type)
{
	return type == STORE_OP_SET || type == STORE_OP_DEL ||
	    type == STORE_OP_DELVERSION || type == STORE_OP_TESTANDSET;
}

/* A new entry holding one reference, for the table. */
static struct store_entry *
store_entry_new(const uint8_t *key, size_t keylen, uint32_t hash,
    int64_t version, int64_t timestamp, const uint8_t *data, size_t datalen)
{
	struct store_entry	*e;

	if ((e = malloc(sizeof *e + keylen + datalen)) == NULL)
		return NULL;
	e->refcnt = 1;
	e->hash = hash;
	e->keylen = (uint32_t)keylen;
	e->datalen = (uint32_t)datalen;
	e->version = version;
	e->timestamp = timestamp;
	if (keylen != 0)
		memcpy(e->bytes, key, keylen);
	if (datalen != 0)
		memcpy(e->bytes + keylen, data, datalen);
	return e;
}

struct store_entry *
store_entry_make(const uint8_t *key, size_t keylen, int64_t version,
    int64_t timestamp, const uint8_t *data, size_t datalen)
{
	struct store_entry	*e;
	size_t			 off;

	if (keylen > STORE_KEY_MAX || datalen > STORE_DATA_MAX ||
	    store_key_canon(key, keylen, &off) != keylen) {
		errno = EINVAL;
		return NULL;
	}
	/* Its hash is never used: it is in no table. */
	if ((e = store_entry_new(key, keylen, 0, version, timestamp, data,
	    datalen)) == NULL)
		errno = ENOMEM;
	return e;
}

/*
 * Find a key: returns its entry and sets *slot to its slot, or returns
 * NULL and sets *slot to the empty slot that ends its probe run.
 */
static struct store_entry *
store_find(const struct store *s, const uint8_t *key, size_t keylen,
    uint32_t h, size_t *slot)
{
	size_t			 i, mask = s->cap - 1;
	uint8_t			 tag = store_tag(h);
	struct store_entry	*e;

	for (i = h & mask; s->tags[i] != 0; i = (i + 1) & mask) {
		if (s->tags[i] != tag)
			continue;
		e = s->ents[i];
		if (e->hash == h && e->keylen == keylen &&
		    (keylen == 0 || memcmp(e->bytes, key, keylen) == 0)) {
			*slot = i;
			return e;
		}
	}
	*slot = i;
	return NULL;
}

/* Move every entry into a table of newcap slots; -1 if memory ran out,
 * leaving the table as it was. */
static int
store_resize(struct store *s, size_t newcap)
{
	struct store_entry	**ents;
	uint8_t			 *tags;
	size_t			  i, j, mask = newcap - 1;

	ents = calloc(newcap, sizeof *ents);
	tags = calloc(newcap, 1);
	if (ents == NULL || tags == NULL) {
		free(ents);
		free(tags);
		return -1;
	}
	for (i = 0; i < s->cap; i++) {
		if (s->tags[i] == 0)
			continue;
		for (j = s->ents[i]->hash & mask; tags[j] != 0;
		    j = (j + 1) & mask)
			;
		ents[j] = s->ents[i];
		tags[j] = s->tags[i];
	}
	free(s->ents);
	free(s->tags);
	s->ents = ents;
	s->tags = tags;
	s->cap = newcap;
	return 0;
}

/* Make room for one more entry, keeping the load under 3/4. */
static int
store_reserve(struct store *s)
{
	if ((s->count + 1) * 4 <= s->cap * 3)
		return 0;
	if (s->cap > SIZE_MAX / 2 / sizeof *s->ents)
		return -1;
	return store_resize(s, s->cap * 2);
}

/* Put a new entry in the empty slot that ends its probe run. */
static void
store_insert(struct store *s, struct store_entry *e)
{
	size_t	i, mask = s->cap - 1;

	for (i = e->hash & mask; s->tags[i] != 0; i = (i + 1) & mask)
		;
	s->ents[i] = e;
	s->tags[i] = store_tag(e->hash);
	s->count++;
	s->data_bytes += e->datalen;
}

/* Empty slot i, shifting later members of its run back into the hole;
 * the table's reference to the entry passes to the caller. */
static void
store_remove(struct store *s, size_t i)
{
	size_t	j, home, mask = s->cap - 1;

	s->data_bytes -= s->ents[i]->datalen;
	s->tags[i] = 0;
	s->ents[i] = NULL;
	s->count--;
	for (j = (i + 1) & mask; s->tags[j] != 0; j = (j + 1) & mask) {
		home = s->ents[j]->hash & mask;
		/* j may move to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && home <= i && home > j)) {
			s->ents[i] = s->ents[j];
			s->tags[i] = s->tags[j];
			s->ents[j] = NULL;
			s->tags[j] = 0;
			i = j;
		}
	}

	/* Give memory back after mass deletion; failing to is harmless. */
	if (s->cap > STORE_MINCAP && s->count * 8 < s->cap)
		(void)store_resize(s, s->cap / 2);
}

/* Make room to keep one entry leaving a pinned table; -1 if memory ran
 * out.  Done before the table changes, so that a failure changes
 * nothing. */
static int
store_keep_reserve(struct store *s)
{
	struct store_entry	**k;
	size_t			  cap;

	if (!s->pinned || s->nkept < s->keptcap)
		return 0;
	cap = s->keptcap == 0 ? 1024 : s->keptcap * 2;
	if ((k = reallocarray(s->kept, cap, sizeof *k)) == NULL)
		return -1;
	s->kept = k;
	s->keptcap = cap;
	return 0;
}

/* An entry leaves the table: if pinned, a reader may still be on it. */
static void
store_keep(struct store *s, struct store_entry *e)
{
	if (!s->pinned)
		return;
	store_entry_ref(e, "store_keep");
	s->kept[s->nkept++] = e;
}

/* Hand the caller a reference to e with the given status. */
static void
store_answer(struct store_result *res, enum store_status status,
    struct store_entry *e)
{
	res->status = status;
	res->value = e;
	if (e != NULL)
		store_entry_ref(e, "store_apply");
}

int
store_apply(struct store *s, const struct store_op *op,
    struct store_result *res)
{
	struct store_entry	*e, *ne;
	const uint8_t		*key = NULL;
	size_t			 off, keylen, slot;
	uint32_t		 h;

	res->status = STORE_ERROR;
	res->value = NULL;

	keylen = store_key_canon(op->key, op->keylen, &off);
	if (keylen != 0)
		key = op->key + off;
	if (keylen > STORE_KEY_MAX)
		return 0;
	if ((op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) &&
	    op->datalen > STORE_DATA_MAX)
		return 0;
	h = store_hash(s, key, keylen);
	e = store_find(s, key, keylen, h, &slot);

	switch (op->type) {
	case STORE_OP_SET:
		if (e != NULL) {
			store_answer(res, STORE_ERROR, e);
			break;
		}
		if (store_reserve(s) == -1)
			return -1;
		ne = store_entry_new(key, keylen, h, 1, op->timestamp,
		    op->data, op->datalen);
		if (ne == NULL)
			return -1;
		store_insert(s, ne);
		res->status = STORE_SUCCESS;
		break;
	case STORE_OP_GET:
		if (e != NULL)
			store_answer(res, STORE_SUCCESS, e);
		break;
	case STORE_OP_DEL:
		if (e != NULL) {
			if (store_keep_reserve(s) == -1)
				return -1;
			store_keep(s, e);
			store_remove(s, slot);
			res->status = STORE_SUCCESS;
			res->value = e;		/* the table's reference */
		}
		break;
	case STORE_OP_DELVERSION:
		if (e == NULL)
			res->status = STORE_ERROR_NE;
		else if (e->version != op->version)
			store_answer(res, STORE_ERROR_WV, e);
		else {
			if (store_keep_reserve(s) == -1)
				return -1;
			store_keep(s, e);
			store_remove(s, slot);
			res->status = STORE_SUCCESS;
			res->value = e;
		}
		break;
	case STORE_OP_TESTANDSET:
		if (e == NULL)
			res->status = STORE_ERROR_NE;
		else if (e->version != op->version)
			store_answer(res, STORE_ERROR_WV, e);
		else if (e->version == INT64_MAX)
			store_answer(res, STORE_ERROR, e);
		else {
			if (store_keep_reserve(s) == -1)
				return -1;
			ne = store_entry_new(key, keylen, h, e->version + 1,
			    op->timestamp, op->data, op->datalen);
			if (ne == NULL)
				return -1;
			store_keep(s, e);
			/* Same key, same hash: the new entry takes the slot. */
			s->ents[slot] = ne;
			s->data_bytes += ne->datalen;
			s->data_bytes -= e->datalen;
			res->status = STORE_SUCCESS;
			res->value = e;
		}
		break;
	}
	return 0;
}

struct store_entry *
store_next(const struct store *s, size_t *cursor)
{
	size_t	i;

	for (i = *cursor; i < s->cap; i++) {
		if (s->tags[i] != 0) {
			*cursor = i + 1;
			return s->ents[i];
		}
	}
	*cursor = s->cap;
	return NULL;
}

struct store_entry **
store_pin(struct store *s, struct store_entry **buf, size_t cap, size_t *n)
{
	struct store_entry	**a = buf;
	size_t			  i, j = 0;

	if (s->pinned)
		return NULL;
	/* One slot more than the entries: the last store below may land
	 * past them. */
	if (a == NULL || cap < s->count + 1) {
		if ((a = reallocarray(NULL, s->count + 1, sizeof *a)) == NULL)
			return NULL;
	}
	/* Without a branch: empty slots hold NULL, and with the table half
	 * full a branch on each slot is mispredicted half the time. */
	for (i = 0; i < s->cap; i++) {
		a[j] = s->ents[i];
		j += s->ents[i] != NULL;
	}
	*n = j;
	s->pinned = 1;
	return a;
}

void
store_unpin(struct store *s)
{
	size_t	i;

	for (i = 0; i < s->nkept; i++)
		store_entry_unref(s->kept[i], __func__);
	free(s->kept);
	s->kept = NULL;
	s->nkept = s->keptcap = 0;
	s->pinned = 0;
}

uint64_t
store_hash64(uint64_t h, const void *p, size_t len)
{
	/* Fixed keys: the digest must not depend on a store's random key;
	 * chaining through k0 covers several fields in order. */
	return store_siphash(h, 0x6473642d64696765ULL, p, len);
}

uint64_t
store_digest(const struct store *s)
{
	const struct store_entry	*e;
	uint64_t			 sum = 0, h, v[2];
	size_t				 i;

	for (i = 0; i < s->cap; i++) {
		if (s->tags[i] == 0)
			continue;
		e = s->ents[i];
		v[0] = (uint64_t)e->version;
		v[1] = (uint64_t)e->timestamp;
		h = store_hash64(0, &e->keylen, sizeof e->keylen);
		h = store_hash64(h, e->bytes, e->keylen);
		h = store_hash64(h, v, sizeof v);
		h = store_hash64(h, e->bytes + e->keylen, e->datalen);
		sum += h;
	}
	return sum;
}

int
store_restore(struct store *s, const uint8_t *key, size_t keylen,
    int64_t version, int64_t timestamp, const uint8_t *data, size_t datalen)
{
	struct store_entry	*e;
	size_t			 off, slot;
	uint32_t		 h;

	if (keylen > STORE_KEY_MAX || datalen > STORE_DATA_MAX ||
	    store_key_canon(key, keylen, &off) != keylen) {
		errno = EINVAL;
		return -1;
	}
	h = store_hash(s, key, keylen);
	if (store_find(s, key, keylen, h, &slot) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (store_reserve(s) == -1) {
		errno = ENOMEM;
		return -1;
	}
	e = store_entry_new(key, keylen, h, version, timestamp, data,
	    datalen);
	if (e == NULL) {
		errno = ENOMEM;
		return -1;
	}
	store_insert(s, e);
	return 0;
}

/* Keys. */

size_t
store_key_canon(const uint8_t *key, size_t len, size_t *off)
{
	size_t	i = 0;

	/*
	 * A leading 00 is redundant when the next byte has its sign bit
	 * clear (or there is none: 00 alone is zero, which is no bytes);
	 * a leading FF when the next byte has it set.
	 */
	while (i < len) {
		if (key[i] == 0x00 &&
		    (i + 1 == len || (key[i + 1] & 0x80) == 0))
			i++;
		else if (key[i] == 0xff && i + 1 < len && (key[i + 1] & 0x80))
			i++;
		else
			break;
	}
	*off = i;
	return len - i;
}

void
store_key_to_mpz(mpz_t out, const uint8_t *key, size_t len)
{
	mpz_t	m;

	if (len == 0) {
		mpz_set_ui(out, 0);
		return;
	}
	mpz_import(out, len, 1, 1, 1, 0, key);
	if (key[0] & 0x80) {
		/* Negative: the bytes read unsigned are value + 2^(8 len). */
		mpz_init(m);
		mpz_setbit(m, 8 * len);
		mpz_sub(out, out, m);
		mpz_clear(m);
	}
}

size_t
store_key_from_mpz(const mpz_t v, uint8_t *buf, size_t buflen)
{
	mpz_t	m;
	size_t	bits, n, i;
	int	neg = mpz_sgn(v) < 0;

	/*
	 * For v < 0 write ~(-v - 1), which is v in two's complement: m is
	 * then non-negative in both cases, and n bytes hold m with a clear
	 * sign bit exactly when n > bits(m) / 8.
	 */
	mpz_init(m);
	if (neg) {
		mpz_neg(m, v);
		mpz_sub_ui(m, m, 1);
	} else
		mpz_set(m, v);
	bits = mpz_sgn(m) == 0 ? 0 : mpz_sizeinbase(m, 2);
	n = bits / 8 + 1;
	if (n <= buflen) {
		memset(buf, 0, n);
		if (bits != 0)
			mpz_export(buf + n - (bits + 7) / 8, NULL, 1, 1, 1, 0,
			    m);
		if (neg) {
			for (i = 0; i < n; i++)
				buf[i] ^= 0xff;
		}
	}
	mpz_clear(m);
	return n;
}

/* The binary form of operations. */

size_t
store_op_encode(const struct store_op *op, uint8_t *buf, size_t buflen)
{
	const uint8_t	*key = op->key;
	size_t		 off, keylen, need;
	uint8_t		*p;

	keylen = store_key_canon(op->key, op->keylen, &off);
	if (keylen > STORE_KEY_MAX)
		return 0;
	need = 1 + 4 + keylen;
	switch (op->type) {
	case STORE_OP_SET:
		if (op->datalen > STORE_DATA_MAX)
			return 0;
		need += 8 + 4 + op->datalen;
		break;
	case STORE_OP_GET:
	case STORE_OP_DEL:
		break;
	case STORE_OP_DELVERSION:
		need += 8;
		break;
	case STORE_OP_TESTANDSET:
		if (op->datalen > STORE_DATA_MAX)
			return 0;
		need += 8 + 8 + 4 + op->datalen;
		break;
	default:
		return 0;
	}
	if (need > buflen)
		return need;

	p = buf;
	*p++ = (uint8_t)op->type;
	le_put32(p, (uint32_t)keylen);
	p += 4;
	if (keylen != 0) {
		memcpy(p, key + off, keylen);
		p += keylen;
	}
	if (op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) {
		le_put64(p, (uint64_t)op->timestamp);
		p += 8;
	}
	if (op->type == STORE_OP_DELVERSION ||
	    op->type == STORE_OP_TESTANDSET) {
		le_put64(p, (uint64_t)op->version);
		p += 8;
	}
	if (op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) {
		le_put32(p, (uint32_t)op->datalen);
		p += 4;
		if (op->datalen != 0)
			memcpy(p, op->data, op->datalen);
	}
	return need;
}

int
store_op_decode(const uint8_t *buf, size_t len, struct store_op *op)
{
	size_t	pos = 0, n;

	memset(op, 0, sizeof *op);
	if (len < 5)
		return -1;
	op->type = buf[0];
	switch (op->type) {
	case STORE_OP_SET:
	case STORE_OP_GET:
	case STORE_OP_DEL:
	case STORE_OP_DELVERSION:
	case STORE_OP_TESTANDSET:
		break;
	default:
		return -1;
	}
	n = le_get32(buf + 1);
	pos = 5;
	if (n > STORE_KEY_MAX || n > len - pos)
		return -1;
	op->key = buf + pos;
	op->keylen = n;
	pos += n;

	if (op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) {
		if (len - pos < 8)
			return -1;
		op->timestamp = (int64_t)le_get64(buf + pos);
		pos += 8;
	}
	if (op->type == STORE_OP_DELVERSION ||
	    op->type == STORE_OP_TESTANDSET) {
		if (len - pos < 8)
			return -1;
		op->version = (int64_t)le_get64(buf + pos);
		pos += 8;
	}
	if (op->type == STORE_OP_SET || op->type == STORE_OP_TESTANDSET) {
		if (len - pos < 4)
			return -1;
		n = le_get32(buf + pos);
		pos += 4;
		if (n > STORE_DATA_MAX || n > len - pos)
			return -1;
		op->data = buf + pos;
		op->datalen = n;
		pos += n;
	}
	return pos == len ? 0 : -1;
}
