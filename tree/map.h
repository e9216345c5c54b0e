/* Two open-addressing hash tables (linear probing, backward-shift delete, power-of-two
 * capacity, grown at 70% load). Both are bounded only by memory; their users bound them.
 *  - u64map: u64 key -> void* value (sessions, ephemeral owners, watchers).
 *  - strmap: entries are caller structs that begin with `struct strmap_ent` (key points
 *    into the caller's own storage), used for znode children, watches, change records.
 * strmap grows incrementally (see map.c), so no single insert rehashes a huge table.
 * The hash is seeded once per process (tree_hash_seed) so crafted names cannot force
 * every child of a node into one probe chain. */
#ifndef ZK_TREE_MAP_H
#define ZK_TREE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern uint64_t tree_hash_seed;
uint32_t tree_hash(const void *p, size_t len);

struct u64map_slot { uint64_t key; void *val; };
struct u64map {
	struct u64map_slot *slots; /* val == NULL marks an empty slot */
	size_t cap, count;
};
void u64map_init(struct u64map *m);
void u64map_free(struct u64map *m);
void *u64map_get(const struct u64map *m, uint64_t key);
int u64map_put(struct u64map *m, uint64_t key, void *val); /* val != NULL; replaces */
void *u64map_del(struct u64map *m, uint64_t key);
/* Iterate: for (size_t i = 0; u64map_next(m, &i, &k, &v);) */
bool u64map_next(const struct u64map *m, size_t *i, uint64_t *key, void **val);

struct strmap_ent {
	const char *key;
	uint32_t len;
	uint32_t hash;
};
struct strmap {
	struct strmap_ent **slots;
	size_t cap, count;       /* count covers both tables */
	struct strmap_ent **old; /* the table being moved out of during a grow, or NULL */
	size_t old_cap, moved;   /* slots of `old` below `moved` are already moved */
};
void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
struct strmap_ent *strmap_get(const struct strmap *m, const char *key, size_t len);
struct strmap_ent *strmap_get_h(const struct strmap *m, const char *key, size_t len, uint32_t hash);
int strmap_put(struct strmap *m, struct strmap_ent *e); /* e->hash must be set; key must be new */
struct strmap_ent *strmap_del(struct strmap *m, const char *key, size_t len);
/* For a table whose keys are hashed another way than tree_hash (the watch tables). */
struct strmap_ent *strmap_del_h(struct strmap *m, const char *key, size_t len, uint32_t hash);
/* Put `e` in the slot of the entry with the same key (e->hash set); returns that entry, or
 * NULL (nothing changed) when there is none. Never allocates, so it cannot fail. */
struct strmap_ent *strmap_replace(struct strmap *m, struct strmap_ent *e);
bool strmap_next(const struct strmap *m, size_t *i, struct strmap_ent **e);

#endif
