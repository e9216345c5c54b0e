/* Proves the hash tables stay exact through incremental growth: every key inserted is found,
 * deleted ones are gone, iteration visits each live entry once, while the old and new tables
 * coexist (strmap) and across growth and backward-shift deletes (u64map). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree/map.h"

struct item {
	struct strmap_ent ent;
	char key[24];
	int alive;
};

static struct item *items;

static void put(struct strmap *m, int i)
{
	struct item *it = &items[i];
	snprintf(it->key, sizeof it->key, "k%07d", i);
	size_t len = strlen(it->key);
	it->ent = (struct strmap_ent){ it->key, (uint32_t)len, tree_hash(it->key, len) };
	cr_assert_eq(strmap_put(m, &it->ent), 0);
	it->alive = 1;
}

static void check_all(const struct strmap *m, int n)
{
	size_t live = 0;
	for (int i = 0; i < n; i++) {
		struct strmap_ent *e = strmap_get(m, items[i].key, strlen(items[i].key));
		if (items[i].alive) {
			cr_assert_eq(e, &items[i].ent, "key %d lost", i);
			live++;
		} else {
			cr_assert_null(e, "deleted key %d found", i);
		}
	}
	cr_assert_eq(m->count, live);
	size_t seen = 0, slot = 0;
	struct strmap_ent *e;
	char *mark = calloc((size_t)n, 1);
	while (strmap_next(m, &slot, &e)) {
		int idx = (int)((struct item *)e - items);
		cr_assert(idx >= 0 && idx < n && items[idx].alive);
		cr_assert_eq(mark[idx], 0, "entry %d visited twice", idx);
		mark[idx] = 1;
		seen++;
	}
	cr_assert_eq(seen, live);
	free(mark);
}

Test(strmap, grows_incrementally_and_stays_exact, .timeout = 30)
{
	int n = 200000;
	items = calloc((size_t)n, sizeof *items);
	struct strmap m;
	strmap_init(&m);
	bool saw_two_tables = false;
	for (int i = 0; i < n; i++) {
		put(&m, i);
		if (m.old) {
			saw_two_tables = true;
			/* Delete some while both tables live: old-table tombstones and new-table shifts. */
			if (i % 3 == 0) {
				int d = (i * 7919) % (i + 1);
				if (items[d].alive) {
					cr_assert_eq(strmap_del(&m, items[d].key, strlen(items[d].key)), &items[d].ent);
					items[d].alive = 0;
				}
			}
			if (i % 5000 == 0)
				check_all(&m, i + 1);
		}
	}
	cr_assert(saw_two_tables, "growth past 1024 slots must be incremental");
	check_all(&m, n);
	for (int i = 0; i < n; i += 2)
		if (items[i].alive) {
			strmap_del(&m, items[i].key, strlen(items[i].key));
			items[i].alive = 0;
		}
	check_all(&m, n);
	strmap_free(&m);
	free(items);
}

Test(u64map, put_get_delete_iterate, .timeout = 30)
{
	struct u64map m;
	u64map_init(&m);
	int n = 50000;
	for (int i = 1; i <= n; i++)
		cr_assert_eq(u64map_put(&m, (uint64_t)i * 0x9e3779b97f4a7c15ull, (void *)(uintptr_t)i), 0);
	for (int i = 1; i <= n; i += 3)
		cr_assert_eq((uintptr_t)u64map_del(&m, (uint64_t)i * 0x9e3779b97f4a7c15ull), (uintptr_t)i);
	size_t live = 0;
	for (int i = 1; i <= n; i++) {
		void *v = u64map_get(&m, (uint64_t)i * 0x9e3779b97f4a7c15ull);
		if ((i - 1) % 3 == 0)
			cr_assert_null(v);
		else {
			cr_assert_eq((uintptr_t)v, (uintptr_t)i);
			live++;
		}
	}
	cr_assert_eq(m.count, live);
	size_t it = 0, seen = 0;
	uint64_t k;
	void *v;
	while (u64map_next(&m, &it, &k, &v))
		seen++;
	cr_assert_eq(seen, live);
	u64map_free(&m);
}
