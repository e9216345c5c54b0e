/* Proves the history ring (zab/history.h): txns come back by zxid and by range in order,
 * the count and byte bounds evict the oldest and move base, a giant txn empties the ring,
 * re-applied txns are ignored, the floor answers ACKEPOCH, a TRUNC drops only the tail, and
 * recovery sets base where DIFFs may start. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "zab/history.h"

/* txn bytes that name their zxid, len bytes long */
static void txn_of(uint8_t *b, size_t len, int64_t zxid)
{
	memset(b, (int)(zxid & 0xff), len);
}

static void push(struct hist *h, int64_t zxid, size_t len)
{
	uint8_t b[4096];
	cr_assert(len <= sizeof b);
	txn_of(b, len, zxid);
	hist_push(h, zxid, b, len);
}

static bool holds(const struct hist *h, int64_t zxid, size_t len)
{
	const uint8_t *p;
	size_t n;
	if (!hist_lookup(h, zxid, &p, &n))
		return false;
	cr_assert_eq(n, len, "zxid %lld: %zu bytes, not %zu", (long long)zxid, n, len);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(p[i], (uint8_t)(zxid & 0xff), "zxid %lld byte %zu", (long long)zxid, i);
	return true;
}

Test(history, push_and_lookup, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 8, 1 << 16), 0);
	cr_assert_eq(h.base, -1);
	for (int64_t z = 1; z <= 5; z++)
		push(&h, z, (size_t)(10 * z));
	for (int64_t z = 1; z <= 5; z++)
		cr_assert(holds(&h, z, (size_t)(10 * z)), "zxid %lld", (long long)z);
	cr_assert_not(holds(&h, 0, 0));
	cr_assert_not(holds(&h, 6, 0));
	hist_free(&h);
}

Test(history, reapplied_txns_are_ignored, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 8, 1 << 16), 0);
	push(&h, 10, 5);
	push(&h, 20, 7);
	push(&h, 20, 99); /* replay over a fuzzy snapshot */
	push(&h, 15, 99);
	cr_assert_eq(h.n, 2);
	cr_assert(holds(&h, 20, 7));
	cr_assert_not(holds(&h, 15, 99));
	hist_free(&h);
}

Test(history, count_bound_evicts_oldest_and_moves_base, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 4, 1 << 16), 0);
	for (int64_t z = 1; z <= 10; z++)
		push(&h, z, 3);
	cr_assert_eq(h.n, 4);
	cr_assert_eq(h.base, 6, "base is the last evicted: %lld", (long long)h.base);
	for (int64_t z = 1; z <= 6; z++)
		cr_assert_not(holds(&h, z, 3), "zxid %lld evicted", (long long)z);
	for (int64_t z = 7; z <= 10; z++)
		cr_assert(holds(&h, z, 3), "zxid %lld kept (the ring wrapped)", (long long)z);
	hist_free(&h);
}

Test(history, byte_bound_evicts_oldest, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 100, 1000), 0);
	for (int64_t z = 1; z <= 4; z++)
		push(&h, z, 300); /* 1200 bytes: the first goes */
	cr_assert_eq(h.n, 3);
	cr_assert_eq(h.base, 1);
	cr_assert_leq(zbuf_len(&h.bytes), 1000);
	push(&h, 5, 500); /* 900 + 500: two more go */
	cr_assert_eq(h.n, 2);
	cr_assert_eq(h.base, 3);
	cr_assert(holds(&h, 4, 300));
	cr_assert(holds(&h, 5, 500));
	cr_assert_leq(zbuf_len(&h.bytes), 1000);
	hist_free(&h);
}

Test(history, giant_txn_empties_the_ring, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 100, 1000), 0);
	push(&h, 1, 100);
	push(&h, 2, 100);
	push(&h, 3, 500); /* exactly half: kept */
	cr_assert(holds(&h, 3, 500));
	push(&h, 4, 501); /* more than half: DIFFs start after it */
	cr_assert_eq(h.n, 0);
	cr_assert_eq(h.base, 4);
	cr_assert_not(holds(&h, 4, 501));
	push(&h, 5, 10);
	cr_assert(holds(&h, 5, 10));
	hist_free(&h);
}

struct seen { int64_t z[64]; size_t n; };

static void collect(int64_t zxid, const uint8_t *p, size_t len, void *ctx)
{
	struct seen *s = ctx;
	cr_assert(len > 0 && p[0] == (uint8_t)(zxid & 0xff));
	cr_assert_lt(s->n, 64);
	s->z[s->n++] = zxid;
}

Test(history, each_walks_the_range_in_order, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 5, 1 << 16), 0);
	for (int64_t z = 1; z <= 8; z++) /* wraps: holds 4..8 */
		push(&h, z * 10, 4);
	struct seen s = { .n = 0 };
	hist_each(&h, 50, 70, collect, &s); /* (50, 70] */
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.z[0], 60);
	cr_assert_eq(s.z[1], 70);
	s.n = 0;
	hist_each(&h, 0, 1000, collect, &s);
	cr_assert_eq(s.n, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(s.z[i], (int64_t)(40 + 10 * i));
	s.n = 0;
	hist_each(&h, 80, 1000, collect, &s);
	cr_assert_eq(s.n, 0);
	hist_free(&h);
}

Test(history, floor_for_ackepoch, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 3, 1 << 16), 0);
	hist_reset(&h, 100);
	push(&h, 110, 4);
	push(&h, 120, 4);
	push(&h, 130, 4);
	int64_t f = 0;
	cr_assert_eq(hist_floor(&h, 99, &f), -ENOENT, "older than the ring");
	cr_assert_eq(hist_floor(&h, 100, &f), 0);
	cr_assert_eq(f, 100);
	cr_assert_eq(hist_floor(&h, 125, &f), 0);
	cr_assert_eq(f, 120);
	cr_assert_eq(hist_floor(&h, 1000, &f), 0);
	cr_assert_eq(f, 130);
	push(&h, 140, 4); /* evicts 110: base 110 */
	cr_assert_eq(hist_floor(&h, 105, &f), -ENOENT);
	cr_assert_eq(hist_floor(&h, 115, &f), 0);
	cr_assert_eq(f, 110);
	hist_free(&h);
}

Test(history, truncate_drops_the_tail_only, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 4, 1 << 16), 0);
	for (int64_t z = 1; z <= 6; z++) /* wraps: holds 3..6 */
		push(&h, z, (size_t)z);
	hist_truncate_after(&h, 4);
	cr_assert_eq(h.n, 2);
	cr_assert_eq(h.base, 2, "a TRUNC leaves base");
	cr_assert(holds(&h, 3, 3));
	cr_assert(holds(&h, 4, 4));
	cr_assert_not(holds(&h, 5, 5));
	cr_assert_eq(zbuf_len(&h.bytes), 7, "the bytes of 5 and 6 are gone");
	push(&h, 5, 50); /* a different txn 5 after the TRUNC */
	cr_assert(holds(&h, 5, 50));
	hist_truncate_after(&h, 0);
	cr_assert_eq(h.n, 0);
	cr_assert_eq(zbuf_len(&h.bytes), 0);
	hist_free(&h);
}

Test(history, recovered_sets_base, .timeout = 10)
{
	struct hist h;
	cr_assert_eq(hist_init(&h, 4, 1 << 16), 0);
	hist_recovered(&h, 77, 50);
	cr_assert_eq(h.base, 77, "no txns replayed: DIFFs start at our last zxid");
	hist_reset(&h, -1);
	push(&h, 51, 4);
	push(&h, 52, 4);
	hist_recovered(&h, 52, 50);
	cr_assert_eq(h.base, 50, "replayed txns follow the snapshot");
	cr_assert_eq(h.n, 2);
	hist_reset(&h, -1);
	for (int64_t z = 51; z <= 60; z++) /* overflowed: base moved past the snapshot */
		push(&h, z, 4);
	hist_recovered(&h, 60, 50);
	cr_assert_eq(h.base, 56);
	hist_free(&h);
}

Test(history, zeroed_ring_ignores_pushes, .timeout = 10)
{
	struct hist h = { .base = -1 };
	push(&h, 1, 10);
	cr_assert_eq(h.n, 0);
	cr_assert_not(holds(&h, 1, 10));
	int64_t f = 0;
	cr_assert_eq(hist_floor(&h, 5, &f), 0);
	cr_assert_eq(f, -1);
	hist_free(&h);
}
