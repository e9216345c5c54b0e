/* A token bucket: at most `per_minute` events a minute, in bursts of at most one second's
 * worth (at least one). The container reaper spaces its deletes with it, as ZooKeeper's
 * ContainerManager sleeps 60000/maxPerMinute ms between them. Pure: time is passed in. */
#ifndef ZK_ZAB_RATE_H
#define ZK_ZAB_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct rate_limit {
	int64_t per_minute;
	int64_t tokens;  /* in 1/1000 events */
	int64_t cap;
	int64_t last_ms;
};

/* Starts empty: the first event may go after 60000/per_minute ms (per_minute >= 1). */
void rate_init(struct rate_limit *r, int per_minute, int64_t now_ms);
/* Take one event's token if there is one (refilling up to now_ms first). */
bool rate_take(struct rate_limit *r, int64_t now_ms);
/* The earliest time a token is there (now_ms if one is). */
int64_t rate_next_ms(struct rate_limit *r, int64_t now_ms);

#endif
