/* Proves the session tracker expires a session in the first tick bucket after its deadline
 * (never before, exactly once), that touch/close/remove move or stop that, and that ids and
 * passwords are made exactly as Apache ZooKeeper makes them. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "zab/session.h"

static struct sessions S;

static void fini(void) { sessions_free(&S); }

/* ZooKeeper's ExpiryQueue.roundToNextInterval(T + t). */
static int64_t bucket(int64_t now, int64_t timeout, int64_t tick)
{
	return ((now + timeout) / tick + 1) * tick;
}

Test(session, expires_at_first_tick_after_deadline, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	struct session *se = sessions_add(&S, 1, 5000, 1000);
	cr_assert_not_null(se);
	cr_assert_eq(se->expire_ms, 8000, "1000 + 5000 = 6000 -> bucket 8000");
	cr_assert_null(sessions_next_expired(&S, 7999));
	cr_assert_eq(sessions_next_expired(&S, 8000), se);
	cr_assert(se->closing);
	cr_assert_null(sessions_next_expired(&S, 8000), "once only");
	cr_assert_null(sessions_next_expired(&S, 1000000));
	cr_assert_eq(sessions_get(&S, 1), se, "expiry does not remove: closeSession will");
}

Test(session, deadline_on_a_tick_goes_to_the_next_one, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	struct session *se = sessions_add(&S, 1, 3000, 1000); /* 4000 exactly */
	cr_assert_eq(se->expire_ms, 6000);
	cr_assert_null(sessions_next_expired(&S, 5999));
	cr_assert_eq(sessions_next_expired(&S, 6000), se);
}

Test(session, bucket_rule_over_many_times_and_timeouts, .timeout = 10)
{
	static const int64_t ticks[] = { 1, 7, 100, 2000 };
	for (size_t ti = 0; ti < sizeof ticks / sizeof ticks[0]; ti++) {
		int64_t tick = ticks[ti];
		for (int64_t now = 0; now < 5 * tick + 3; now += tick / 3 + 1) {
			for (int64_t timeout = 2 * tick; timeout <= 20 * tick; timeout += tick / 2 + 1) {
				struct sessions s;
				cr_assert_eq(sessions_init(&s, tick, (int32_t)(20 * tick), now), 0);
				struct session *se = sessions_add(&s, 42, (int32_t)timeout, now);
				int64_t want = bucket(now, timeout, tick);
				cr_assert_eq(se->expire_ms, want, "tick %lld now %lld timeout %lld",
					     (long long)tick, (long long)now, (long long)timeout);
				cr_assert_null(sessions_next_expired(&s, want - 1),
					       "early: tick %lld now %lld timeout %lld", (long long)tick,
					       (long long)now, (long long)timeout);
				cr_assert_eq(sessions_next_expired(&s, want), se);
				cr_assert_null(sessions_next_expired(&s, want + 100 * tick));
				sessions_free(&s);
			}
		}
	}
}

Test(session, touch_moves_the_deadline, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	struct session *se = sessions_add(&S, 1, 4000, 0);
	cr_assert_eq(se->expire_ms, 6000);
	sessions_touch(&S, se, 3000);
	cr_assert_eq(se->expire_ms, 8000);
	cr_assert_null(sessions_next_expired(&S, 7999), "the old bucket must be empty");
	cr_assert_eq(sessions_next_expired(&S, 8000), se);
	/* sessions_add of a known id re-times it. */
	struct session *b = sessions_add(&S, 2, 4000, 8000);
	cr_assert_eq(b->expire_ms, 14000);
	cr_assert_eq(sessions_add(&S, 2, 10000, 9000), b);
	cr_assert_eq(b->timeout_ms, 10000);
	cr_assert_eq(b->expire_ms, 20000);
	cr_assert_null(sessions_next_expired(&S, 19999));
	cr_assert_eq(sessions_next_expired(&S, 20000), b);
}

Test(session, closing_sessions_never_expire, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 1000, 10000, 0), 0);
	struct session *a = sessions_add(&S, 1, 2000, 0);
	struct session *b = sessions_add(&S, 2, 2000, 0);
	sessions_set_closing(&S, a);
	cr_assert(a->closing);
	cr_assert_eq(a->expire_ms, 0);
	sessions_touch(&S, a, 500); /* a ping racing the close */
	cr_assert_eq(a->expire_ms, 0, "touch does not revive a closing session");
	cr_assert_eq(sessions_next_expired(&S, 100000), b);
	cr_assert_null(sessions_next_expired(&S, 100000));
	cr_assert_not_null(sessions_get(&S, 1));
}

Test(session, remove_forgets_and_unbuckets, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 1000, 10000, 0), 0);
	sessions_add(&S, 1, 2000, 0);
	struct session *b = sessions_add(&S, 2, 2000, 0);
	sessions_add(&S, 3, 2000, 0);
	sessions_remove(&S, 1);
	sessions_remove(&S, 3);
	sessions_remove(&S, 77); /* unknown: no-op */
	cr_assert_null(sessions_get(&S, 1));
	cr_assert_null(sessions_get(&S, 3));
	cr_assert_eq(sessions_next_expired(&S, 3000), b);
	cr_assert_null(sessions_next_expired(&S, 3000));
	sessions_remove(&S, 2); /* a closing one */
	cr_assert_null(sessions_get(&S, 2));
}

Test(session, many_sessions_in_one_bucket_all_expire_once, .fini = fini, .timeout = 10)
{
	enum { N = 5000 };
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	for (int64_t id = 1; id <= N; id++)
		cr_assert_not_null(sessions_add(&S, id, 10000, 100 + id % 50));
	cr_assert_null(sessions_next_expired(&S, 11999));
	static bool seen[N + 1];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < N; i++) {
		struct session *se = sessions_next_expired(&S, 12000);
		cr_assert_not_null(se, "only %d of %d expired", i, N);
		cr_assert(se->id >= 1 && se->id <= N);
		cr_assert(!seen[se->id], "session %lld twice", (long long)se->id);
		seen[se->id] = true;
	}
	cr_assert_null(sessions_next_expired(&S, 12000));
	cr_assert_null(sessions_next_expired(&S, 1000000));
}

Test(session, ring_slots_that_alias_do_not_expire_early, .fini = fini, .timeout = 10)
{
	/* tick 1000, max 3000: a ring of 6 slots. With the clock far ahead of the last
	 * expiry pass, two sessions land in the same slot 6 ticks apart. */
	cr_assert_eq(sessions_init(&S, 1000, 3000, 0), 0);
	cr_assert_eq(S.nslots, 6);
	struct session *a = sessions_add(&S, 1, 1000, 0);    /* bucket 2000, slot 2 */
	struct session *b = sessions_add(&S, 2, 2000, 5000); /* bucket 8000, slot 2 */
	cr_assert_eq(a->expire_ms, 2000);
	cr_assert_eq(b->expire_ms, 8000);
	cr_assert_eq(sessions_next_expired(&S, 2000), a);
	cr_assert_null(sessions_next_expired(&S, 2000));
	cr_assert_null(sessions_next_expired(&S, 7999));
	cr_assert_eq(sessions_next_expired(&S, 8000), b);
}

Test(session, timeout_past_the_ring_is_capped_but_still_expires, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	struct session *se = sessions_add(&S, 1, 1000000, 0);
	cr_assert_geq(se->expire_ms, 40000);
	cr_assert_leq(se->expire_ms, 40000 + 3 * 2000);
	cr_assert_null(sessions_next_expired(&S, 39999));
	cr_assert_eq(sessions_next_expired(&S, se->expire_ms), se);
}

Test(session, next_deadline_follows_expiry, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 3000), 0);
	cr_assert_eq(sessions_next_deadline(&S), 4000);
	cr_assert_null(sessions_next_expired(&S, 9000));
	cr_assert_eq(sessions_next_deadline(&S), 10000);
	/* A session touched before the next pass is never put in a bucket already passed. */
	struct session *se = sessions_add(&S, 5, 1, 0);
	cr_assert_eq(se->expire_ms, 10000);
}

/* ---- ids ---- */

Test(session, seed_ids_layout_matches_zookeeper, .fini = fini, .timeout = 10)
{
	/* Expected values printed by Java 17 running ZooKeeper's SessionTrackerImpl.
	 * initializeNextSessionId: n = (wall << 24) >>> 8; n |= sid << 56; if n == MIN: n++. */
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	sessions_seed_ids(&S, 0x0000017F3C2A1234LL, 1);
	cr_assert_eq(sessions_new_id(&S), (int64_t)0x017f3c2a12340000ULL);
	cr_assert_eq(sessions_new_id(&S), (int64_t)0x017f3c2a12340001ULL);
	sessions_seed_ids(&S, 0x0000017F3C2A1234LL, 255);
	cr_assert_eq(sessions_new_id(&S), (int64_t)0xff7f3c2a12340000ULL);
	sessions_seed_ids(&S, (int64_t)0xABCDEF0123456789ULL, 3);
	cr_assert_eq(sessions_new_id(&S), (int64_t)0x0301234567890000ULL);
	sessions_seed_ids(&S, 0, 128);
	cr_assert_eq(sessions_new_id(&S), (int64_t)0x8000000000000001ULL,
		     "Long.MIN_VALUE is the container owner and is skipped");
}

Test(session, new_id_skips_zero_and_ids_in_use, .fini = fini, .timeout = 10)
{
	cr_assert_eq(sessions_init(&S, 2000, 40000, 0), 0);
	sessions_seed_ids(&S, 0, 0);
	sessions_add(&S, 1, 4000, 0);
	sessions_add(&S, 2, 4000, 0);
	cr_assert_eq(sessions_new_id(&S), 3, "0 is no session; 1 and 2 are taken");
	cr_assert_eq(sessions_new_id(&S), 4);
}

/* ---- passwords ---- */

/* java.util.Random(seed).nextBytes, re-implemented from the JDK's documented algorithm. */
static void java_random_bytes(int64_t seed, uint8_t *out, int n)
{
	const uint64_t mult = 0x5DEECE66DULL, mask = (1ULL << 48) - 1;
	uint64_t s = ((uint64_t)seed ^ mult) & mask;
	for (int i = 0; i < n;) {
		s = (s * mult + 0xB) & mask;
		int32_t rnd = (int32_t)(uint32_t)(s >> 16);
		for (int k = 0; k < 4 && i < n; k++) {
			out[i++] = (uint8_t)rnd;
			rnd = (int32_t)((uint32_t)rnd >> 8);
		}
	}
}

Test(session, passwd_matches_java_random, .timeout = 10)
{
	/* Printed by Java 17: new java.util.Random(id ^ 0xB3415C00L).nextBytes(b16). */
	static const struct { int64_t id; uint8_t pw[16]; } java[] = {
		{ 0, { 0xf2, 0x2a, 0xcd, 0x4a, 0x97, 0xe6, 0x9d, 0x6d, 0x20, 0xa4, 0x9b, 0xb6, 0x38,
		       0xea, 0xdb, 0x38 } },
		{ 0x0100017f3c2a0000LL, { 0xc4, 0x0a, 0x40, 0x07, 0x01, 0xdf, 0x35, 0x51, 0x42,
					  0xa5, 0x37, 0x15, 0xb2, 0xf1, 0xa4, 0x31 } },
		{ -1, { 0x20, 0xf6, 0x2c, 0xb5, 0x64, 0x8d, 0xc2, 0xd7, 0x71, 0x47, 0x1c, 0x8a, 0x24,
			0x86, 0xa9, 0xee } },
		{ 0x72d1c3b4a5968700LL, { 0xe5, 0xa0, 0x99, 0x35, 0xc0, 0xb1, 0x05, 0x40, 0x7a, 0x20,
					  0x0a, 0xd0, 0x3b, 0xf5, 0x1f, 0xc6 } },
	};
	for (size_t i = 0; i < sizeof java / sizeof java[0]; i++) {
		uint8_t pw[ZK_PASSWD_LEN];
		session_passwd(java[i].id, pw);
		cr_assert_arr_eq(pw, java[i].pw, 16, "id %llx", (unsigned long long)java[i].id);
		uint8_t ref[16];
		java_random_bytes(java[i].id ^ 0xB3415C00LL, ref, 16);
		cr_assert_arr_eq(ref, java[i].pw, 16, "the test's own LCG, id %llx",
				 (unsigned long long)java[i].id);
	}
	/* And across many ids against the re-implementation. */
	for (int64_t id = 1; id < 2000; id += 7) {
		uint8_t pw[ZK_PASSWD_LEN], ref[16];
		session_passwd(id * 0x10000000123LL, pw);
		java_random_bytes(id * 0x10000000123LL ^ 0xB3415C00LL, ref, 16);
		cr_assert_arr_eq(pw, ref, 16);
	}
}

Test(session, bad_init_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct sessions s;
	sessions_init(&s, 0, 40000, 0);
}
