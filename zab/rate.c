/* Token bucket; see rate.h. */
#include "zab/rate.h"
#include "net/log.h"

void rate_init(struct rate_limit *r, int per_minute, int64_t now_ms)
{
	ZK_ASSERT(per_minute >= 1);
	r->per_minute = per_minute;
	r->cap = (int64_t)1000 * (per_minute / 60 > 1 ? per_minute / 60 : 1);
	r->tokens = 0;
	r->last_ms = now_ms;
}

static void refill(struct rate_limit *r, int64_t now_ms)
{
	if (now_ms <= r->last_ms)
		return; /* the monotonic clock does not go back; a stale now adds nothing */
	/* per_minute/60 thousandths of a token a millisecond; a second fills the bucket, so a
	 * minute's bound on the elapsed time changes nothing and keeps the product small. */
	int64_t elapsed = now_ms - r->last_ms > 60000 ? 60000 : now_ms - r->last_ms;
	int64_t add = elapsed * r->per_minute / 60;
	r->tokens = r->tokens + add > r->cap ? r->cap : r->tokens + add;
	r->last_ms = now_ms;
	ZK_ASSERT(r->tokens >= 0 && r->tokens <= r->cap);
}

bool rate_take(struct rate_limit *r, int64_t now_ms)
{
	refill(r, now_ms);
	if (r->tokens < 1000)
		return false;
	r->tokens -= 1000;
	return true;
}

int64_t rate_next_ms(struct rate_limit *r, int64_t now_ms)
{
	refill(r, now_ms);
	if (r->tokens >= 1000)
		return now_ms;
	int64_t need = 1000 - r->tokens;
	return now_ms + (need * 60 + r->per_minute - 1) / r->per_minute; /* rounded up */
}
