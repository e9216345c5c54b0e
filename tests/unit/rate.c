/* Proves the reaper's rate limit (zab/rate.h): at most per_minute events a minute, spaced
 * evenly once the one-second burst is spent, the next token's time exact, and no overflow or
 * gain from a clock that stalls, jumps far ahead or is passed a stale time. */
#include <criterion/criterion.h>

#include "zab/rate.h"

Test(rate, sixty_a_minute_is_one_a_second, .timeout = 10)
{
	struct rate_limit r;
	rate_init(&r, 60, 1000);
	cr_assert_not(rate_take(&r, 1000), "starts empty");
	cr_assert_eq(rate_next_ms(&r, 1000), 2000);
	cr_assert_not(rate_take(&r, 1999));
	cr_assert(rate_take(&r, 2000));
	cr_assert_not(rate_take(&r, 2000));
	cr_assert_eq(rate_next_ms(&r, 2500), 3000);
	/* A long pause fills only one second's worth: one event, then one a second again. */
	cr_assert(rate_take(&r, 100000));
	cr_assert_not(rate_take(&r, 100000));
	cr_assert(rate_take(&r, 101000));
}

Test(rate, bursts_of_one_second_then_even_spacing, .timeout = 10)
{
	struct rate_limit r;
	rate_init(&r, 6000, 0); /* 100 a second, 1 every 10 ms */
	int n = 0;
	while (rate_take(&r, 1000))
		n++;
	cr_assert_eq(n, 100, "a second's worth at once");
	cr_assert_eq(rate_next_ms(&r, 1000), 1010);
	n = 0;
	for (int64_t t = 1000; t <= 61000; t++)
		n += rate_take(&r, t);
	cr_assert_eq(n, 6000, "per minute, once the burst is spent: %d", n);
}

Test(rate, huge_and_stale_times, .timeout = 10)
{
	struct rate_limit r;
	rate_init(&r, 1000000000, 0);
	cr_assert(rate_take(&r, INT64_MAX / 2));
	cr_assert(rate_take(&r, 5), "a stale time adds nothing but takes what is there");
	rate_init(&r, 1, 0);
	cr_assert_eq(rate_next_ms(&r, 0), 60000);
	cr_assert(rate_take(&r, 60000));
}
