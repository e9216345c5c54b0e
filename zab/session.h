/* Session tracker with expiry by tick buckets, as ZooKeeper's SessionTrackerImpl/ExpiryQueue:
 * a session touched at time T with timeout t expires at the first multiple of tickTime after
 * T + t, and all sessions of one bucket expire together when the clock passes it.
 * Pure: the caller passes the time in; nothing here reads a clock or touches a socket.
 * Bounded: buckets are a ring of max_timeout/tick + 3 slots; sessions are bounded by the
 * number of connections that can create them (see server.c). */
#ifndef ZK_ZAB_SESSION_H
#define ZK_ZAB_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "net/proto.h"
#include "tree/map.h"

struct session {
	int64_t id;
	int32_t timeout_ms;
	int64_t expire_ms;            /* bucket time; 0 when not in a bucket */
	struct session *bnext, *bprev;
	bool closing;                 /* closeSession is in the pipeline */
	uint64_t conn_id;             /* the connection that owns it now, 0 if none */
};

struct sessions {
	struct u64map by_id;
	struct session **ring;
	uint32_t nslots;
	int64_t tick_ms;
	int64_t next_expire_ms; /* the next bucket to expire */
	int64_t next_id;
};

int sessions_init(struct sessions *s, int64_t tick_ms, int32_t max_timeout_ms, int64_t now_ms);
void sessions_free(struct sessions *s);
/* ZooKeeper's first id: (wall ms << 24) >>> 8 | sid << 56. */
void sessions_seed_ids(struct sessions *s, int64_t wall_ms, int64_t server_id);
int64_t sessions_new_id(struct sessions *s);
/* Adds (or, for an id it has, re-times) a session. NULL on out of memory. */
struct session *sessions_add(struct sessions *s, int64_t id, int32_t timeout_ms, int64_t now_ms);
struct session *sessions_get(const struct sessions *s, int64_t id);
void sessions_touch(struct sessions *s, struct session *se, int64_t now_ms);
void sessions_set_closing(struct sessions *s, struct session *se);
void sessions_remove(struct sessions *s, int64_t id);
/* The next session whose bucket time has passed (set closing), or NULL. */
struct session *sessions_next_expired(struct sessions *s, int64_t now_ms);
int64_t sessions_next_deadline(const struct sessions *s);
/* For the dump report: each non-empty bucket in expiry order, announced by a call with its
 * size and no session, then one call per session in it. */
typedef void (*session_walk_fn)(void *ctx, int64_t expire_ms, size_t count, const struct session *se);
void sessions_walk(const struct sessions *s, session_walk_fn fn, void *ctx);
size_t sessions_nbuckets(const struct sessions *s);
/* The 16-byte password of a session id: java.util.Random(id ^ 0xB3415C00).nextBytes(16),
 * as ZooKeeper makes it, so a session can move between zkd and Apache ZooKeeper. */
void session_passwd(int64_t id, uint8_t out[ZK_PASSWD_LEN]);

#endif
