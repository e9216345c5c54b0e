/* Session tracker; see session.h. */
#include "zab/session.h"
#include "net/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int sessions_init(struct sessions *s, int64_t tick_ms, int32_t max_timeout_ms, int64_t now_ms)
{
	ZK_ASSERT(tick_ms > 0 && max_timeout_ms > 0);
	memset(s, 0, sizeof *s);
	u64map_init(&s->by_id);
	s->tick_ms = tick_ms;
	s->nslots = (uint32_t)(max_timeout_ms / tick_ms) + 3;
	s->ring = calloc(s->nslots, sizeof *s->ring);
	if (!s->ring)
		return -ENOMEM;
	s->next_expire_ms = (now_ms / tick_ms + 1) * tick_ms;
	s->next_id = 1;
	return 0;
}

void sessions_free(struct sessions *s)
{
	uint64_t k;
	void *v;
	for (size_t i = 0; u64map_next(&s->by_id, &i, &k, &v);)
		free(v);
	u64map_free(&s->by_id);
	free(s->ring);
	memset(s, 0, sizeof *s);
}

void sessions_seed_ids(struct sessions *s, int64_t wall_ms, int64_t server_id)
{
	uint64_t v = ((uint64_t)wall_ms << 24) >> 8;
	v |= (uint64_t)server_id << 56;
	if ((int64_t)v == INT64_MIN) /* reserved for containers */
		v++;
	s->next_id = (int64_t)v;
}

int64_t sessions_new_id(struct sessions *s)
{
	int64_t id = s->next_id++;
	while (id == 0 || id == INT64_MIN || sessions_get(s, id))
		id = s->next_id++;
	return id;
}

static uint32_t slot_of(const struct sessions *s, int64_t t) { return (uint32_t)((uint64_t)(t / s->tick_ms) % s->nslots); }

static void bucket_unlink(struct sessions *s, struct session *se)
{
	if (!se->expire_ms)
		return;
	if (se->bprev) se->bprev->bnext = se->bnext;
	else s->ring[slot_of(s, se->expire_ms)] = se->bnext;
	if (se->bnext) se->bnext->bprev = se->bprev;
	se->bnext = se->bprev = NULL;
	se->expire_ms = 0;
}

void sessions_touch(struct sessions *s, struct session *se, int64_t now_ms)
{
	if (se->closing)
		return;
	int64_t timeout = se->timeout_ms;
	int64_t limit = (int64_t)(s->nslots - 2) * s->tick_ms;
	if (timeout > limit)
		timeout = limit;
	int64_t t = ((now_ms + timeout) / s->tick_ms + 1) * s->tick_ms;
	if (t < s->next_expire_ms)
		t = s->next_expire_ms;
	if (t == se->expire_ms)
		return;
	bucket_unlink(s, se);
	se->expire_ms = t;
	uint32_t slot = slot_of(s, t);
	se->bnext = s->ring[slot];
	if (se->bnext)
		se->bnext->bprev = se;
	s->ring[slot] = se;
}

struct session *sessions_add(struct sessions *s, int64_t id, int32_t timeout_ms, int64_t now_ms)
{
	struct session *se = sessions_get(s, id);
	if (!se) {
		se = calloc(1, sizeof *se);
		if (!se || u64map_put(&s->by_id, (uint64_t)id, se) < 0) {
			free(se);
			return NULL;
		}
		se->id = id;
	}
	se->timeout_ms = timeout_ms;
	sessions_touch(s, se, now_ms);
	return se;
}

struct session *sessions_get(const struct sessions *s, int64_t id)
{
	return u64map_get(&s->by_id, (uint64_t)id);
}

void sessions_set_closing(struct sessions *s, struct session *se)
{
	bucket_unlink(s, se);
	se->closing = true;
}

void sessions_remove(struct sessions *s, int64_t id)
{
	struct session *se = u64map_del(&s->by_id, (uint64_t)id);
	if (!se)
		return;
	bucket_unlink(s, se);
	free(se);
}

struct session *sessions_next_expired(struct sessions *s, int64_t now_ms)
{
	while (s->next_expire_ms <= now_ms) {
		uint32_t slot = slot_of(s, s->next_expire_ms);
		for (struct session *se = s->ring[slot]; se; se = se->bnext) {
			if (se->expire_ms <= s->next_expire_ms) {
				sessions_set_closing(s, se);
				return se;
			}
		}
		s->next_expire_ms += s->tick_ms;
	}
	return NULL;
}

int64_t sessions_next_deadline(const struct sessions *s) { return s->next_expire_ms; }

static size_t bucket_size(const struct sessions *s, uint32_t slot, int64_t t)
{
	size_t n = 0;
	for (const struct session *se = s->ring[slot]; se; se = se->bnext)
		n += se->expire_ms == t;
	return n;
}

size_t sessions_nbuckets(const struct sessions *s)
{
	size_t n = 0;
	for (uint32_t i = 0; i < s->nslots; i++) {
		int64_t t = s->next_expire_ms + (int64_t)i * s->tick_ms;
		n += bucket_size(s, slot_of(s, t), t) > 0;
	}
	return n;
}

void sessions_walk(const struct sessions *s, session_walk_fn fn, void *ctx)
{
	for (uint32_t i = 0; i < s->nslots; i++) {
		int64_t t = s->next_expire_ms + (int64_t)i * s->tick_ms;
		uint32_t slot = slot_of(s, t);
		size_t n = bucket_size(s, slot, t);
		if (!n)
			continue;
		fn(ctx, t, n, NULL);
		for (const struct session *se = s->ring[slot]; se; se = se->bnext)
			if (se->expire_ms == t)
				fn(ctx, t, 0, se);
	}
}

void session_passwd(int64_t id, uint8_t out[ZK_PASSWD_LEN])
{
	const uint64_t mult = 0x5DEECE66Dull, mask = (1ull << 48) - 1;
	uint64_t seed = ((uint64_t)id ^ 0xB3415C00ull ^ mult) & mask;
	for (int i = 0; i < ZK_PASSWD_LEN;) {
		seed = (seed * mult + 0xB) & mask;
		uint32_t rnd = (uint32_t)(seed >> 16);
		for (int n = 0; n < 4 && i < ZK_PASSWD_LEN; n++) {
			out[i++] = (uint8_t)rnd;
			rnd >>= 8;
		}
	}
}
