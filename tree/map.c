/* Hash tables; see map.h. */
#include "tree/map.h"
#include "net/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t tree_hash_seed = 0x9e3779b97f4a7c15ull;

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

uint32_t tree_hash(const void *p, size_t len)
{
	const uint8_t *s = p;
	uint64_t h = tree_hash_seed ^ (len * 0x9e3779b97f4a7c15ull);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = mix64(h ^ w) + 0x632be59bd9b4e019ull;
		s += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, len);
	h = mix64(h ^ w ^ ((uint64_t)len << 56));
	return (uint32_t)(h ^ (h >> 32));
}

/* ---- u64map ---- */

void u64map_init(struct u64map *m) { memset(m, 0, sizeof *m); }
void u64map_free(struct u64map *m) { free(m->slots); memset(m, 0, sizeof *m); }

static size_t u64_idx(uint64_t key, size_t cap) { return (size_t)mix64(key ^ tree_hash_seed) & (cap - 1); }

void *u64map_get(const struct u64map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = u64_idx(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].val)
			return NULL;
		if (m->slots[i].key == key)
			return m->slots[i].val;
	}
}

static int u64map_grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	struct u64map_slot *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].val)
			continue;
		size_t j = u64_idx(m->slots[i].key, ncap);
		while (ns[j].val)
			j = (j + 1) & (ncap - 1);
		ns[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int u64map_put(struct u64map *m, uint64_t key, void *val)
{
	ZK_ASSERT(val != NULL);
	if ((m->count + 1) * 10 > m->cap * 7 && u64map_grow(m) < 0)
		return -ENOMEM;
	size_t i = u64_idx(key, m->cap);
	while (m->slots[i].val && m->slots[i].key != key)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].val)
		m->count++;
	m->slots[i].key = key;
	m->slots[i].val = val;
	return 0;
}

void *u64map_del(struct u64map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	size_t i = u64_idx(key, m->cap);
	while (m->slots[i].val && m->slots[i].key != key)
		i = (i + 1) & (m->cap - 1);
	void *val = m->slots[i].val;
	if (!val)
		return NULL;
	/* Backward-shift: pull later members of the probe chain into the hole. */
	size_t hole = i;
	for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].val; j = (j + 1) & (m->cap - 1)) {
		size_t home = u64_idx(m->slots[j].key, m->cap);
		if (((j - home) & (m->cap - 1)) >= ((j - hole) & (m->cap - 1))) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole].val = NULL;
	m->slots[hole].key = 0;
	m->count--;
	return val;
}

bool u64map_next(const struct u64map *m, size_t *i, uint64_t *key, void **val)
{
	for (; *i < m->cap; (*i)++) {
		if (m->slots[*i].val) {
			*key = m->slots[*i].key;
			*val = m->slots[*i].val;
			(*i)++;
			return true;
		}
	}
	return false;
}

/* ---- strmap ----
 * Growing a table rehashes incrementally, so a node with a million children never stalls
 * the loop: the old table stays beside the new one, every put or delete moves the next
 * STRMAP_STEP slots across, and lookups try the new table, then the old. In the old table
 * a moved or deleted entry leaves a tombstone (so probe chains stay whole); nothing is
 * ever inserted there. */

#define STRMAP_STEP 64
static struct strmap_ent tomb_ent;
#define TOMB (&tomb_ent)

void strmap_init(struct strmap *m) { memset(m, 0, sizeof *m); }

void strmap_free(struct strmap *m)
{
	free(m->slots);
	free(m->old);
	memset(m, 0, sizeof *m);
}

static struct strmap_ent *find_in(struct strmap_ent **slots, size_t cap, const char *key, size_t len,
				  uint32_t hash, size_t *at)
{
	if (!cap)
		return NULL;
	for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct strmap_ent *e = slots[i];
		if (!e)
			return NULL;
		if (e != TOMB && e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0) {
			*at = i;
			return e;
		}
	}
}

struct strmap_ent *strmap_get_h(const struct strmap *m, const char *key, size_t len, uint32_t hash)
{
	size_t at;
	struct strmap_ent *e = find_in(m->slots, m->cap, key, len, hash, &at);
	if (!e && m->old)
		e = find_in(m->old, m->old_cap, key, len, hash, &at);
	return e;
}

struct strmap_ent *strmap_get(const struct strmap *m, const char *key, size_t len)
{
	return strmap_get_h(m, key, len, tree_hash(key, len));
}

static void place(struct strmap_ent **slots, size_t cap, struct strmap_ent *e)
{
	size_t j = e->hash & (cap - 1);
	while (slots[j])
		j = (j + 1) & (cap - 1);
	slots[j] = e;
}

static void migrate(struct strmap *m, size_t steps)
{
	while (m->old && steps--) {
		struct strmap_ent *e = m->old[m->moved];
		if (e && e != TOMB) {
			place(m->slots, m->cap, e);
			m->old[m->moved] = TOMB; /* an empty slot stays empty: probes must still stop */
		}
		if (++m->moved == m->old_cap) {
			free(m->old);
			m->old = NULL;
			m->old_cap = m->moved = 0;
		}
	}
}

static int strmap_grow(struct strmap *m)
{
	if (m->old)
		migrate(m, SIZE_MAX); /* finish the last one first (only under extreme churn) */
	size_t ncap = m->cap ? m->cap * 2 : 8;
	struct strmap_ent **ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	if (m->cap <= 1024) { /* small: move everything now */
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i])
				place(ns, ncap, m->slots[i]);
		free(m->slots);
	} else {
		m->old = m->slots;
		m->old_cap = m->cap;
		m->moved = 0;
	}
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int strmap_put(struct strmap *m, struct strmap_ent *e)
{
	migrate(m, STRMAP_STEP);
	if ((m->count + 1) * 10 > m->cap * 7 && strmap_grow(m) < 0)
		return -ENOMEM;
	size_t i = e->hash & (m->cap - 1);
	while (m->slots[i]) {
		ZK_ASSERT(!(m->slots[i]->len == e->len && memcmp(m->slots[i]->key, e->key, e->len) == 0));
		i = (i + 1) & (m->cap - 1);
	}
	m->slots[i] = e;
	m->count++;
	return 0;
}

struct strmap_ent *strmap_del(struct strmap *m, const char *key, size_t len)
{
	return strmap_del_h(m, key, len, tree_hash(key, len));
}

struct strmap_ent *strmap_del_h(struct strmap *m, const char *key, size_t len, uint32_t hash)
{
	migrate(m, STRMAP_STEP);
	size_t i;
	struct strmap_ent *found = find_in(m->slots, m->cap, key, len, hash, &i);
	if (!found && m->old && (found = find_in(m->old, m->old_cap, key, len, hash, &i)) != NULL) {
		m->old[i] = TOMB;
		m->count--;
		return found;
	}
	if (!found)
		return NULL;
	/* Backward-shift: pull later members of the probe chain into the hole. */
	size_t hole = i;
	for (size_t j = (i + 1) & (m->cap - 1); m->slots[j]; j = (j + 1) & (m->cap - 1)) {
		size_t home = m->slots[j]->hash & (m->cap - 1);
		if (((j - home) & (m->cap - 1)) >= ((j - hole) & (m->cap - 1))) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole] = NULL;
	m->count--;
	return found;
}

struct strmap_ent *strmap_replace(struct strmap *m, struct strmap_ent *e)
{
	size_t i;
	struct strmap_ent *found = find_in(m->slots, m->cap, e->key, e->len, e->hash, &i);
	struct strmap_ent **slots = m->slots;
	if (!found && m->old) {
		found = find_in(m->old, m->old_cap, e->key, e->len, e->hash, &i);
		slots = m->old;
	}
	if (found)
		slots[i] = e;
	return found;
}

bool strmap_next(const struct strmap *m, size_t *i, struct strmap_ent **e)
{
	for (; *i < m->cap + m->old_cap; (*i)++) {
		struct strmap_ent *x = *i < m->cap ? m->slots[*i] : m->old[*i - m->cap];
		if (x && x != TOMB) {
			*e = x;
			(*i)++;
			return true;
		}
	}
	return false;
}
