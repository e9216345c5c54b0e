/* The event loop: one edge-triggered epoll set and a min-heap of timers, on one thread.
 *
 * A handle is registered once for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET; its callback gets the
 * event bits, and the owner keeps its own "readable"/"writable" flags that only EAGAIN
 * clears. A handle whose owner closes it mid-pass is marked `closed` and must stay in memory
 * until the pass ends (the owner frees it in the before-sleep hook), so stale events of the
 * same batch are skipped instead of touching freed memory.
 *
 * The clock is read once per pass: net_now_ms is the monotonic time of the current pass.
 * Ties between timers break by arming order. */
#ifndef ZK_NET_LOOP_H
#define ZK_NET_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Event bits handed to a handle: readable covers hang-up and error (a read will tell). */
enum { NET_READABLE = 1, NET_WRITABLE = 2 };

struct net_loop;
struct net_handle;
struct net_timer;

typedef void (*net_event_fn)(struct net_loop *l, struct net_handle *h, uint32_t events);
typedef void (*net_timer_fn)(struct net_loop *l, struct net_timer *t);

struct net_handle {
	int fd;
	bool closed;
	net_event_fn on_event;
};

struct net_timer {
	int64_t at_ms;
	uint64_t seq;
	size_t idx; /* position in the heap; SIZE_MAX when not armed */
	net_timer_fn fire;
};

struct net_loop {
	int epfd;
	struct net_timer **heap;
	size_t nheap, capheap;
	uint64_t seq;
	int64_t now_ms;
	int64_t max_pass_us;  /* longest pass from wake-up to sleep: how long the loop was deaf */
	bool stop;
	/* Called after each dispatch pass; returns true when it left work for the next pass
	 * (then the loop polls without sleeping). */
	bool (*before_sleep)(struct net_loop *l, void *ctx);
	void *ctx;
};

int net_loop_init(struct net_loop *l);
void net_loop_free(struct net_loop *l);
int net_loop_add(struct net_loop *l, struct net_handle *h);
void net_loop_del(struct net_loop *l, struct net_handle *h); /* deregisters and closes fd */
void net_timer_init(struct net_timer *t, net_timer_fn fire);
void net_timer_arm(struct net_loop *l, struct net_timer *t, int64_t at_ms);
void net_timer_cancel(struct net_loop *l, struct net_timer *t);
/* Run until net_loop_stop. Returns 0, or -errno if epoll fails. */
int net_loop_run(struct net_loop *l);
static inline void net_loop_stop(struct net_loop *l) { l->stop = true; }
static inline int64_t net_now_ms(const struct net_loop *l) { return l->now_ms; }
int64_t net_clock_ms(void);      /* monotonic */
int64_t net_wall_ms(void);       /* realtime, for txn timestamps */

#endif
