/* epoll + timer heap; see loop.h. */
#include "net/loop.h"
#include "net/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define NET_MAX_EVENTS 256

int64_t net_clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t net_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_loop_init(struct net_loop *l)
{
	memset(l, 0, sizeof *l);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->now_ms = net_clock_ms();
	return 0;
}

void net_loop_free(struct net_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->heap);
	memset(l, 0, sizeof *l);
	l->epfd = -1;
}

int net_loop_add(struct net_loop *l, struct net_handle *h)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = h };
	h->closed = false;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
		return -errno;
	return 0;
}

void net_loop_del(struct net_loop *l, struct net_handle *h)
{
	if (h->closed)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	close(h->fd);
	h->fd = -1;
	h->closed = true;
}

/* ---- timer heap, ordered by (at_ms, seq) ---- */

static bool timer_before(const struct net_timer *a, const struct net_timer *b)
{
	return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_set(struct net_loop *l, size_t i, struct net_timer *t)
{
	l->heap[i] = t;
	t->idx = i;
}

static void sift_up(struct net_loop *l, size_t i)
{
	struct net_timer *t = l->heap[i];
	while (i > 0 && timer_before(t, l->heap[(i - 1) / 2])) {
		heap_set(l, i, l->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(l, i, t);
}

static void sift_down(struct net_loop *l, size_t i)
{
	struct net_timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void net_timer_init(struct net_timer *t, net_timer_fn fire)
{
	memset(t, 0, sizeof *t);
	t->idx = SIZE_MAX;
	t->fire = fire;
}

void net_timer_cancel(struct net_loop *l, struct net_timer *t)
{
	if (t->idx == SIZE_MAX)
		return;
	size_t i = t->idx;
	ZK_ASSERT(i < l->nheap && l->heap[i] == t);
	t->idx = SIZE_MAX;
	struct net_timer *last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_set(l, i, last);
	sift_up(l, i);
	sift_down(l, last->idx);
}

void net_timer_arm(struct net_loop *l, struct net_timer *t, int64_t at_ms)
{
	net_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		size_t ncap = l->capheap ? l->capheap * 2 : 16;
		struct net_timer **nh = realloc(l->heap, ncap * sizeof *nh);
		ZK_ASSERT(nh != NULL); /* a handful of timers: failing here is not recoverable */
		l->heap = nh;
		l->capheap = ncap;
	}
	t->at_ms = at_ms;
	t->seq = ++l->seq;
	heap_set(l, l->nheap++, t);
	sift_up(l, t->idx);
}

static void run_timers(struct net_loop *l)
{
	while (l->nheap > 0 && l->heap[0]->at_ms <= l->now_ms) {
		struct net_timer *t = l->heap[0];
		net_timer_cancel(l, t);
		t->fire(l, t);
	}
}

int net_loop_run(struct net_loop *l)
{
	struct epoll_event evs[NET_MAX_EVENTS];
	bool busy = false;
	while (!l->stop) {
		int timeout = -1;
		if (busy) {
			timeout = 0;
		} else if (l->nheap > 0) {
			int64_t d = l->heap[0]->at_ms - net_clock_ms();
			timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		int n = epoll_wait(l->epfd, evs, NET_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		l->now_ms = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
		for (int i = 0; i < n; i++) {
			struct net_handle *h = evs[i].data.ptr;
			uint32_t e = evs[i].events, bits = 0;
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				bits |= NET_READABLE;
			if (e & EPOLLOUT)
				bits |= NET_WRITABLE;
			if (!h->closed)
				h->on_event(l, h, bits);
		}
		run_timers(l);
		busy = l->before_sleep ? l->before_sleep(l, l->ctx) : false;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
		if (us > l->max_pass_us)
			l->max_pass_us = us;
	}
	return 0;
}
