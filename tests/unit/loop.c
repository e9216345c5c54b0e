/* Proves the event loop fires timers in deadline order with ties broken by arming order,
 * forgets cancelled ones, delivers real socket readiness, skips handles closed earlier in
 * the same pass, and obeys its before-sleep hook (stop, or poll again without sleeping). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"

static struct net_loop L;

static void setup(void) { cr_assert_eq(net_loop_init(&L), 0); }
static void teardown(void) { net_loop_free(&L); }

/* ---- timers ---- */

#define NT 2000
static struct net_timer timers[NT];
static int order[NT];
static int nfired;

static void on_timer(struct net_loop *l, struct net_timer *t)
{
	(void)l;
	cr_assert_lt(nfired, NT);
	cr_assert_eq(t->idx, SIZE_MAX, "a firing timer is already disarmed");
	order[nfired++] = (int)(t - timers);
}

static bool stop_after_one_pass(struct net_loop *l, void *ctx)
{
	int *passes = ctx;
	(*passes)++;
	net_loop_stop(l);
	return false;
}

Test(loop, timers_fire_in_deadline_order_ties_by_arming, .init = setup, .fini = teardown, .timeout = 10)
{
	nfired = 0;
	int64_t base = net_now_ms(&L) - 1000; /* all due at once */
	static const int64_t at[] = { 5, 1, 5, 3, 1, 5 };
	for (int i = 0; i < 6; i++) {
		net_timer_init(&timers[i], on_timer);
		net_timer_arm(&L, &timers[i], base + at[i]);
	}
	net_timer_init(&timers[6], on_timer);
	net_timer_arm(&L, &timers[6], net_now_ms(&L) + 3600 * 1000); /* not due */
	net_timer_cancel(&L, &timers[3]);
	net_timer_cancel(&L, &timers[3]); /* twice is harmless */
	cr_assert_eq(timers[3].idx, SIZE_MAX);
	net_timer_arm(&L, &timers[0], base + 5); /* re-arming moves it behind 2 and 5 */
	int passes = 0;
	L.before_sleep = stop_after_one_pass;
	L.ctx = &passes;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_eq(passes, 1);
	static const int want[] = { 1, 4, 2, 5, 0 };
	cr_assert_eq(nfired, 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(order[i], want[i], "position %d: timer %d, want %d", i, order[i], want[i]);
	cr_assert_neq(timers[6].idx, SIZE_MAX, "the future timer is still armed");
	cr_assert_eq(L.nheap, 1);
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

Test(loop, timer_heap_under_random_arm_cancel_rearm, .init = setup, .fini = teardown, .timeout = 10)
{
	nfired = 0;
	int64_t base = net_now_ms(&L) - 100000;
	static bool armed[NT];
	static int64_t when[NT];
	static uint64_t seq[NT];
	for (int i = 0; i < NT; i++) {
		net_timer_init(&timers[i], on_timer);
		armed[i] = false;
	}
	for (int step = 0; step < 3 * NT; step++) {
		int i = (int)(rnd() % NT);
		if (rnd() % 4 == 0) {
			net_timer_cancel(&L, &timers[i]);
			armed[i] = false;
		} else {
			when[i] = base + (int64_t)(rnd() % 64); /* many ties */
			net_timer_arm(&L, &timers[i], when[i]);
			seq[i] = timers[i].seq;
			armed[i] = true;
		}
	}
	int narmed = 0;
	for (int i = 0; i < NT; i++)
		narmed += armed[i];
	cr_assert_eq(L.nheap, (size_t)narmed);
	int passes = 0;
	L.before_sleep = stop_after_one_pass;
	L.ctx = &passes;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_eq(nfired, narmed);
	static bool seen[NT];
	memset(seen, 0, sizeof seen);
	for (int k = 0; k < nfired; k++) {
		int i = order[k];
		cr_assert(armed[i], "cancelled timer %d fired", i);
		cr_assert(!seen[i], "timer %d fired twice", i);
		seen[i] = true;
		if (k > 0) {
			int p = order[k - 1];
			cr_assert(when[p] < when[i] || (when[p] == when[i] && seq[p] < seq[i]),
				  "timer %d (at %lld) fired after %d (at %lld)", i, (long long)when[i], p,
				  (long long)when[p]);
		}
	}
	cr_assert_eq(L.nheap, 0);
}

static void stop_on_timer(struct net_loop *l, struct net_timer *t)
{
	(void)t;
	net_loop_stop(l);
}

Test(loop, future_timer_wakes_the_loop, .init = setup, .fini = teardown, .timeout = 10)
{
	int64_t start = net_clock_ms();
	struct net_timer t;
	net_timer_init(&t, stop_on_timer);
	net_timer_arm(&L, &t, start + 30);
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_geq(net_now_ms(&L), start + 30, "fired early");
	cr_assert_geq(net_clock_ms(), start + 30);
	cr_assert_eq(t.idx, SIZE_MAX);
}

static int periodic_left;
static void periodic(struct net_loop *l, struct net_timer *t)
{
	if (--periodic_left == 0) {
		net_loop_stop(l);
		return;
	}
	net_timer_arm(l, t, net_now_ms(l) + 2);
}

Test(loop, timer_may_rearm_itself, .init = setup, .fini = teardown, .timeout = 10)
{
	struct net_timer t;
	net_timer_init(&t, periodic);
	periodic_left = 5;
	net_timer_arm(&L, &t, net_now_ms(&L));
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_eq(periodic_left, 0);
}

/* ---- hook ---- */

static bool busy_then_stop(struct net_loop *l, void *ctx)
{
	int *passes = ctx;
	if (++*passes == 5)
		net_loop_stop(l);
	return true;
}

Test(loop, hook_that_leaves_work_polls_again_without_sleeping, .init = setup, .fini = teardown, .timeout = 10)
{
	/* One timer due now ends the first poll; after it there are no descriptors and no
	 * timers, so if "busy" were ignored the loop would sleep forever. */
	nfired = 0;
	net_timer_init(&timers[0], on_timer);
	net_timer_arm(&L, &timers[0], net_now_ms(&L));
	int passes = 0;
	L.before_sleep = busy_then_stop;
	L.ctx = &passes;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_eq(passes, 5);
	cr_assert_eq(nfired, 1);
}

/* ---- descriptors ---- */

struct sock {
	struct net_handle h;
	int peer;
	uint32_t bits_seen;
	int events;
	int bytes;
};

static void on_sock(struct net_loop *l, struct net_handle *h, uint32_t bits)
{
	(void)l;
	struct sock *s = (struct sock *)h;
	s->events++;
	s->bits_seen |= bits;
	if (bits & NET_READABLE) {
		char buf[64];
		ssize_t n;
		while ((n = read(h->fd, buf, sizeof buf)) > 0)
			s->bytes += (int)n;
	}
}

static void sock_open(struct sock *s)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	memset(s, 0, sizeof *s);
	s->h.fd = sv[0];
	s->h.on_event = on_sock;
	s->peer = sv[1];
	cr_assert_eq(net_loop_add(&L, &s->h), 0);
}

static struct sock A, B;

static void write_to_a(struct net_loop *l, struct net_timer *t)
{
	(void)l;
	(void)t;
	cr_assert_eq(write(A.peer, "ping", 4), 4);
}

static bool stop_when_a_read(struct net_loop *l, void *ctx)
{
	int *passes = ctx;
	(*passes)++;
	if (A.bytes > 0)
		net_loop_stop(l);
	return false;
}

Test(loop, socketpair_delivers_readable_and_hook_stops, .init = setup, .fini = teardown, .timeout = 10)
{
	sock_open(&A);
	struct net_timer t;
	net_timer_init(&t, write_to_a);
	net_timer_arm(&L, &t, net_now_ms(&L) + 20); /* data arrives while the loop sleeps */
	int passes = 0;
	L.before_sleep = stop_when_a_read;
	L.ctx = &passes;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert(A.bits_seen & NET_READABLE);
	cr_assert(A.bits_seen & NET_WRITABLE, "a fresh socket is writable");
	cr_assert_eq(A.bytes, 4);
	cr_assert_geq(passes, 2, "the loop slept before the data came");
	/* The peer hangs up: readable again (a read tells). */
	close(A.peer);
	A.bits_seen = 0;
	passes = 0;
	L.stop = false;
	L.before_sleep = stop_after_one_pass;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert(A.bits_seen & NET_READABLE, "hang-up is reported as readable");
	net_loop_del(&L, &A.h);
	cr_assert(A.h.closed);
	cr_assert_eq(A.h.fd, -1);
	net_loop_del(&L, &A.h); /* twice is harmless */
}

static void close_the_other(struct net_loop *l, struct net_handle *h, uint32_t bits)
{
	on_sock(l, h, bits);
	struct sock *other = h == &A.h ? &B : &A;
	net_loop_del(l, &other->h);
}

Test(loop, handle_closed_in_a_pass_gets_no_stale_event, .init = setup, .fini = teardown, .timeout = 10)
{
	sock_open(&A);
	sock_open(&B);
	A.h.on_event = close_the_other;
	B.h.on_event = close_the_other;
	cr_assert_eq(write(A.peer, "a", 1), 1);
	cr_assert_eq(write(B.peer, "b", 1), 1);
	int passes = 0;
	L.before_sleep = stop_after_one_pass;
	L.ctx = &passes;
	cr_assert_eq(net_loop_run(&L), 0);
	cr_assert_eq(A.events + B.events, 1, "both were ready; the second was closed by the first");
	close(A.peer);
	close(B.peer);
	net_loop_del(&L, A.h.closed ? &B.h : &A.h);
}

Test(loop, add_bad_fd_fails, .init = setup, .fini = teardown, .timeout = 10)
{
	struct net_handle h = { .fd = 12345, .on_event = on_sock };
	cr_assert_eq(net_loop_add(&L, &h), -EBADF);
}
