/* Proves the Fast Leader Election machine (zab/fle.c) elects one leader in a small
 * deterministic in-test network of 3, 5 and 3+2 machines with seeded delays, reordering,
 * drops, partitions and restarts: everyone decides and agrees; with timely messages the
 * winner is the maximum (peer epoch, zxid, sid); a late server joins the established
 * leader; a minority never decides; observers follow and are never elected. Every failure
 * prints SEED=n; FLE_SEED=n in the environment replays just that seed. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/support/support.h"
#include "zab/fle.h"

#define NMAX 7
#define QMAX 8192
#define INIT_LIMIT_MS 2000 /* a decided server not part of a working quorum by then re-elects */

struct msg {
	uint64_t at, seq;
	int from, to;
	struct peer_note note;
};

struct sim {
	uint64_t seed, rng, now, seq;
	int n;
	struct fle m[NMAX];
	struct fle_member members[NMAX];
	bool up[NMAX];
	int64_t zxid[NMAX], epoch[NMAX];
	bool timer_on[NMAX];
	uint64_t timer_at[NMAX], timer_gen[NMAX];
	uint64_t decided_at[NMAX];
	int decisions[NMAX];
	bool ever_decided[NMAX];
	bool cut[NMAX][NMAX];
	/* QuorumCnxManager keeps the latest message for a peer it cannot reach (SEND_CAPACITY
	 * 1) and sends it once the connection forms: modelled as delivery when `to` starts. */
	bool has_pending[NMAX][NMAX];
	struct peer_note pending[NMAX][NMAX];
	struct msg q[QMAX];
	int nq;
	int drop_pct, delay_max_ms;
	uint64_t next_tick;
	bool zab_lite; /* re-elect when the decided leader has no working quorum */
	int restarts_by_check;
};

static uint64_t rnd(struct sim *s) { return t_xorshift(&s->rng); }

static struct sim *sim_new(uint64_t seed, int nvoters, int nobservers)
{
	struct sim *s = calloc(1, sizeof *s);
	cr_assert_not_null(s);
	s->seed = seed;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->n = nvoters + nobservers;
	cr_assert_leq(s->n, NMAX);
	for (int i = 0; i < s->n; i++)
		s->members[i] = (struct fle_member){ .sid = i + 1, .voter = i < nvoters };
	for (int i = 0; i < s->n; i++) {
		cr_assert_eq(fle_init(&s->m[i], i + 1, s->members, s->n), 0);
		/* Few distinct epochs and zxids, so ties on both occur and the sid decides. */
		s->epoch[i] = (int64_t)(rnd(s) % 3);
		s->zxid[i] = s->epoch[i] << 32 | (int64_t)(rnd(s) % 4);
	}
	s->delay_max_ms = 50;
	s->zab_lite = true;
	s->next_tick = 1000;
	return s;
}

static void enqueue(struct sim *s, int from, int to, const struct peer_note *note)
{
	if (!s->up[to]) {
		s->has_pending[from][to] = true;
		s->pending[from][to] = *note;
		return;
	}
	if (s->cut[from][to] || (s->drop_pct && (int)(rnd(s) % 100) < s->drop_pct))
		return;
	cr_assert_lt(s->nq, QMAX, "SEED=%llu: message queue full", (unsigned long long)s->seed);
	struct msg *m = &s->q[s->nq++];
	m->at = s->now + 1 + rnd(s) % (uint64_t)s->delay_max_ms;
	m->seq = s->seq++;
	m->from = from;
	m->to = to;
	m->note = *note;
}

static void apply(struct sim *s, int i, const struct fle_actions *acts)
{
	for (int k = 0; k < acts->n; k++) {
		const struct fle_action *a = &acts->a[k];
		switch (a->type) {
		case FLE_ACT_SEND:
			cr_assert(a->note.state >= PEER_LOOKING && a->note.state <= PEER_OBSERVING);
			if (a->to_voters) {
				for (int j = 0; j < s->n; j++)
					if (j != i && s->members[j].voter)
						enqueue(s, i, j, &a->note);
			} else {
				cr_assert(a->to >= 1 && a->to <= s->n && a->to != i + 1);
				enqueue(s, i, (int)a->to - 1, &a->note);
			}
			break;
		case FLE_ACT_ARM_TIMER:
			cr_assert(a->timer_ms >= FLE_FINALIZE_WAIT_MS && a->timer_ms <= FLE_NOTIFY_MAX_MS);
			s->timer_on[i] = true;
			s->timer_at[i] = s->now + (uint64_t)a->timer_ms;
			s->timer_gen[i] = a->timer_gen;
			break;
		case FLE_ACT_CANCEL_TIMER:
			s->timer_on[i] = false;
			break;
		case FLE_ACT_DECIDED:
			cr_assert_eq(a->state, s->m[i].state);
			cr_assert(a->vote.leader >= 1 && a->vote.leader <= s->n);
			cr_assert(s->members[a->vote.leader - 1].voter,
				  "SEED=%llu: %d elected a non-voter", (unsigned long long)s->seed, i + 1);
			cr_assert_eq(a->state == PEER_LEADING, a->vote.leader == i + 1);
			cr_assert_eq(a->state == PEER_OBSERVING, !s->members[i].voter);
			s->decided_at[i] = s->now;
			s->decisions[i]++;
			s->ever_decided[i] = true;
			break;
		}
	}
}

static void step(struct sim *s, int i, const struct fle_event *ev)
{
	if (getenv("FLE_TRACE"))
		fprintf(stderr, "t=%llu  %d <- type %d from %lld state %d leader %lld zxid %llx ee %lld pe %lld | lc %lld prop %lld fin %d st %d\n",
			(unsigned long long)s->now, i + 1, ev->type, (long long)ev->from, ev->note.state,
			(long long)ev->note.leader, (unsigned long long)ev->note.zxid,
			(long long)ev->note.election_epoch, (long long)ev->note.peer_epoch,
			(long long)s->m[i].logical_clock, (long long)s->m[i].proposal.leader,
			s->m[i].finalizing, s->m[i].state);
	struct fle_actions acts = { 0 };
	fle_step(&s->m[i], ev, &acts);
	apply(s, i, &acts);
}

static void start(struct sim *s, int i)
{
	if (!s->up[i]) {
		s->up[i] = true;
		for (int j = 0; j < s->n; j++)
			if (s->has_pending[j][i]) {
				s->has_pending[j][i] = false;
				enqueue(s, j, i, &s->pending[j][i]);
			}
	}
	struct fle_event ev = { .type = FLE_EV_START, .last_zxid = s->zxid[i],
				.current_epoch = s->epoch[i] };
	step(s, i, &ev);
}

static void crash(struct sim *s, int i)
{
	s->up[i] = false;
	s->timer_on[i] = false;
	for (int j = 0; j < s->n; j++)
		s->has_pending[i][j] = false; /* its own queues died with it */
	for (int k = 0; k < s->nq;) /* its connections are gone, and what was on them */
		if (s->q[k].from == i || s->q[k].to == i)
			s->q[k] = s->q[--s->nq];
		else
			k++;
	cr_assert_eq(fle_init(&s->m[i], i + 1, s->members, s->n), 0);
}

/* What ZAB would do after the election: a learner whose leader is not leading, or a leader
 * without a quorum of followers, goes back to LOOKING after initLimit. */
static void zab_lite_check(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		const struct fle *f = &s->m[i];
		if (!s->up[i] || f->state == PEER_LOOKING || s->now < s->decided_at[i] + INIT_LIMIT_MS)
			continue;
		bool ok;
		int l = (int)f->current.leader - 1;
		if (f->state == PEER_LEADING) {
			int count = 0, voters = 0;
			for (int j = 0; j < s->n; j++) {
				voters += s->members[j].voter;
				count += s->members[j].voter && s->up[j] && !s->cut[i][j] &&
					 (j == i || (s->m[j].state == PEER_FOLLOWING &&
						     s->m[j].current.leader == i + 1));
			}
			ok = count > voters / 2;
		} else {
			ok = s->up[l] && !s->cut[i][l] && s->m[l].state == PEER_LEADING;
		}
		if (!ok) {
			s->restarts_by_check++;
			start(s, i);
		}
	}
}

/* Run until `until` ms of simulated time. */
static void run(struct sim *s, uint64_t until)
{
	while (s->now < until) {
		uint64_t t = s->zab_lite ? s->next_tick : UINT64_MAX;
		int kind = 0, who = -1;
		for (int i = 0; i < s->n; i++)
			if (s->up[i] && s->timer_on[i] && s->timer_at[i] < t)
				t = s->timer_at[i], kind = 1, who = i;
		for (int k = 0; k < s->nq; k++)
			if (s->q[k].at < t || (s->q[k].at == t && kind == 2 && s->q[k].seq < s->q[who].seq))
				t = s->q[k].at, kind = 2, who = k;
		if (t > until) {
			s->now = until;
			return;
		}
		s->now = t;
		if (kind == 0) {
			s->next_tick += 1000;
			zab_lite_check(s);
		} else if (kind == 1) {
			s->timer_on[who] = false;
			struct fle_event ev = { .type = FLE_EV_TIMER, .timer_gen = s->timer_gen[who] };
			step(s, who, &ev);
		} else {
			struct msg m = s->q[who];
			s->q[who] = s->q[--s->nq];
			if (!s->up[m.to])
				continue;
			struct fle_event ev = { .type = FLE_EV_NOTE, .from = m.from + 1, .note = m.note };
			step(s, m.to, &ev);
		}
	}
}

/* Everyone up has decided, followers and observers follow one leader that leads. Returns
 * the leader's index or -1. */
static int converged(const struct sim *s)
{
	int leader = -1;
	for (int i = 0; i < s->n; i++)
		if (s->up[i] && s->m[i].state == PEER_LEADING) {
			if (leader >= 0)
				return -1;
			leader = i;
		}
	if (leader < 0)
		return -1;
	for (int i = 0; i < s->n; i++)
		if (s->up[i] && (s->m[i].state == PEER_LOOKING || s->m[i].current.leader != leader + 1))
			return -1;
	return leader;
}

static bool vote_above(const struct sim *s, int a, int b)
{
	if (s->epoch[a] != s->epoch[b])
		return s->epoch[a] > s->epoch[b];
	if (s->zxid[a] != s->zxid[b])
		return s->zxid[a] > s->zxid[b];
	return a > b;
}

static int best_voter(const struct sim *s, const bool *among)
{
	int best = -1;
	for (int i = 0; i < s->n; i++)
		if (s->members[i].voter && among[i] && (best < 0 || vote_above(s, i, best)))
			best = i;
	return best;
}

#define FOR_SEEDS(seed, count) T_FOR_SEEDS(seed, count, "FLE_SEED")

/* ---- no faults but delays and reordering: the maximum wins, everyone decides once ---- */

static void timely_election(int nvoters, uint64_t seeds)
{
	uint64_t sum_ms = 0, max_ms = 0, runs = 0;
	FOR_SEEDS(seed, seeds) {
		struct sim *s = sim_new(seed, nvoters, 0);
		uint64_t start_at[NMAX];
		for (int i = 0; i < s->n; i++)
			start_at[i] = rnd(s) % 100;
		for (uint64_t t = 0; t < 100; t++) {
			run(s, t);
			for (int i = 0; i < s->n; i++)
				if (start_at[i] == t)
					start(s, i);
		}
		run(s, 10000);
		bool all[NMAX];
		for (int i = 0; i < NMAX; i++)
			all[i] = true;
		int leader = converged(s);
		cr_assert_geq(leader, 0, "SEED=%llu: no agreement", (unsigned long long)seed);
		cr_assert_eq(leader, best_voter(s, all), "SEED=%llu: leader %d, best %d",
			     (unsigned long long)seed, leader + 1, best_voter(s, all) + 1);
		for (int i = 0; i < s->n; i++)
			cr_assert_eq(s->decisions[i], 1, "SEED=%llu: %d decided %d times",
				     (unsigned long long)seed, i + 1, s->decisions[i]);
		cr_assert_eq(s->restarts_by_check, 0);
		/* The decided round's vote carries the leader's own zxid and epoch. */
		cr_assert_eq(s->m[0].current.zxid, s->zxid[leader]);
		cr_assert_eq(s->m[0].current.peer_epoch, s->epoch[leader]);
		uint64_t last_start = 0, last_decided = 0;
		for (int i = 0; i < s->n; i++) {
			last_start = start_at[i] > last_start ? start_at[i] : last_start;
			last_decided = s->decided_at[i] > last_decided ? s->decided_at[i] : last_decided;
		}
		sum_ms += last_decided - last_start;
		max_ms = last_decided - last_start > max_ms ? last_decided - last_start : max_ms;
		runs++;
		free(s);
	}
	if (getenv("FLE_STATS")) /* simulated ms from the last start to the last decision */
		fprintf(stderr, "%d servers: %llu runs, mean %llu ms, max %llu ms\n", nvoters,
			(unsigned long long)runs, (unsigned long long)(sum_ms / runs),
			(unsigned long long)max_ms);
}

Test(fle, three_servers_elect_the_maximum, .timeout = 60)
{
	timely_election(3, 300);
}

Test(fle, five_servers_elect_the_maximum, .timeout = 60)
{
	timely_election(5, 300);
}

/* ---- drops, long delays, restarts: still one leader, backed by a quorum's votes ---- */

static void faulty_election(int nvoters, int nobservers, uint64_t seeds)
{
	FOR_SEEDS(seed, seeds) {
		struct sim *s = sim_new(seed, nvoters, nobservers);
		s->drop_pct = 20;
		s->delay_max_ms = 1 + (int)(rnd(s) % 1500);
		for (int i = 0; i < s->n; i++)
			start(s, i);
		/* 20 s of crashes and restarts, one server at a time. */
		for (int round = 0; round < 5; round++) {
			run(s, s->now + rnd(s) % 4000);
			int v = (int)(rnd(s) % (uint64_t)s->n);
			crash(s, v);
			run(s, s->now + 1 + rnd(s) % 3000);
			start(s, v);
		}
		s->drop_pct = 0; /* then the network heals; convergence must follow */
		s->delay_max_ms = 50;
		uint64_t deadline = s->now + 600000;
		int leader = -1;
		while (s->now < deadline && (leader = converged(s)) < 0)
			run(s, s->now + 1000);
		cr_assert_geq(leader, 0, "SEED=%llu: no agreement after the network healed",
			      (unsigned long long)seed);
		cr_assert(s->members[leader].voter);
		/* The leader's (epoch, zxid, sid) is at least that of a quorum of voters. */
		int below = 0, voters = 0;
		for (int i = 0; i < s->n; i++) {
			voters += s->members[i].voter;
			below += s->members[i].voter && (i == leader || vote_above(s, leader, i));
		}
		cr_assert_gt(below, voters / 2, "SEED=%llu", (unsigned long long)seed);
		/* Stable: nothing changes in another minute. */
		run(s, s->now + 60000);
		cr_assert_eq(converged(s), leader, "SEED=%llu: not stable", (unsigned long long)seed);
		free(s);
	}
}

Test(fle, three_servers_with_drops_delays_and_restarts, .timeout = 120)
{
	faulty_election(3, 0, 100);
}

Test(fle, five_servers_with_drops_delays_and_restarts, .timeout = 120)
{
	faulty_election(5, 0, 100);
}

Test(fle, voters_and_observers_with_faults, .timeout = 120)
{
	faulty_election(3, 2, 100);
}

/* ---- joining an established ensemble ---- */

Test(fle, late_server_joins_the_established_leader, .timeout = 60)
{
	FOR_SEEDS(seed, 200) {
		struct sim *s = sim_new(seed, 5, 0);
		int late = (int)(rnd(s) % 5);
		/* The latecomer has the best vote of all: an established leader still wins. */
		s->epoch[late] = 9;
		s->zxid[late] = 9LL << 32 | 99;
		for (int i = 0; i < s->n; i++)
			if (i != late)
				start(s, i);
		run(s, 5000);
		int leader = converged(s);
		cr_assert_geq(leader, 0, "SEED=%llu", (unsigned long long)seed);
		uint64_t before[NMAX];
		for (int i = 0; i < s->n; i++)
			before[i] = (uint64_t)s->decisions[i];
		start(s, late);
		run(s, s->now + 5000);
		cr_assert_eq(converged(s), leader, "SEED=%llu: leader changed", (unsigned long long)seed);
		cr_assert_eq(s->m[late].state, PEER_FOLLOWING);
		cr_assert_eq(s->m[late].current.leader, leader + 1);
		for (int i = 0; i < s->n; i++)
			if (i != late)
				cr_assert_eq((uint64_t)s->decisions[i], before[i],
					     "SEED=%llu: %d re-elected", (unsigned long long)seed, i + 1);
		free(s);
	}
}

Test(fle, restarted_leader_rejoins_as_follower_of_the_new_one, .timeout = 60)
{
	FOR_SEEDS(seed, 100) {
		struct sim *s = sim_new(seed, 3, 0);
		for (int i = 0; i < s->n; i++)
			start(s, i);
		run(s, 5000);
		int leader = converged(s);
		cr_assert_geq(leader, 0, "SEED=%llu", (unsigned long long)seed);
		crash(s, leader);
		run(s, s->now + 10000); /* followers notice (initLimit) and elect anew */
		int second = converged(s);
		cr_assert_geq(second, 0, "SEED=%llu: no new leader", (unsigned long long)seed);
		cr_assert_neq(second, leader);
		start(s, leader);
		run(s, s->now + 5000);
		cr_assert_eq(converged(s), second, "SEED=%llu", (unsigned long long)seed);
		cr_assert_eq(s->m[leader].state, PEER_FOLLOWING);
		free(s);
	}
}

/* ---- a minority alone ---- */

Test(fle, a_minority_never_decides, .timeout = 60)
{
	FOR_SEEDS(seed, 100) {
		struct sim *s = sim_new(seed, 5, 0);
		s->drop_pct = (int)(rnd(s) % 30);
		bool minority[NMAX] = { false };
		/* Two servers, one of them with the best vote, cut off from the other three. */
		int a = (int)(rnd(s) % 5), b = (a + 1 + (int)(rnd(s) % 4)) % 5;
		minority[a] = minority[b] = true;
		s->epoch[a] = 7;
		for (int i = 0; i < s->n; i++)
			for (int j = 0; j < s->n; j++)
				s->cut[i][j] = minority[i] != minority[j];
		for (int i = 0; i < s->n; i++)
			start(s, i);
		run(s, 120000);
		cr_assert_not(s->ever_decided[a] || s->ever_decided[b],
			      "SEED=%llu: minority decided", (unsigned long long)seed);
		cr_assert_eq(s->m[a].state, PEER_LOOKING);
		bool majority[NMAX];
		for (int i = 0; i < NMAX; i++)
			majority[i] = i < s->n && !minority[i];
		int leader = -1;
		for (int i = 0; i < s->n; i++)
			if (s->m[i].state == PEER_LEADING)
				leader = i;
		cr_assert_geq(leader, 0, "SEED=%llu: majority has no leader", (unsigned long long)seed);
		cr_assert(majority[leader]);
		for (int i = 0; i < s->n; i++)
			if (majority[i])
				cr_assert_eq(s->m[i].current.leader, leader + 1, "SEED=%llu",
					     (unsigned long long)seed);
		if (s->drop_pct == 0)
			cr_assert_eq(leader, best_voter(s, majority));
		free(s);
	}
}

/* ---- observers ---- */

Test(fle, observers_follow_and_never_vote, .timeout = 60)
{
	FOR_SEEDS(seed, 200) {
		struct sim *s = sim_new(seed, 3, 2);
		/* Observers with the "best" logs must not matter. */
		s->epoch[3] = s->epoch[4] = 50;
		bool late_observer = rnd(s) % 2;
		for (int i = 0; i < s->n; i++)
			if (!(late_observer && i == 4))
				start(s, i);
		run(s, 5000);
		if (late_observer)
			start(s, 4);
		run(s, s->now + 5000);
		bool voters[NMAX] = { true, true, true };
		int leader = converged(s);
		cr_assert_geq(leader, 0, "SEED=%llu", (unsigned long long)seed);
		cr_assert_eq(leader, best_voter(s, voters), "SEED=%llu", (unsigned long long)seed);
		cr_assert_eq(s->m[3].state, PEER_OBSERVING);
		cr_assert_eq(s->m[4].state, PEER_OBSERVING);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(s->decisions[i], 1, "SEED=%llu", (unsigned long long)seed);
		free(s);
	}
}

/* ---- single steps, exact messages ---- */

static struct fle_member three[3] = { { 1, true }, { 2, true }, { 3, true } };

Test(fle, start_broadcasts_our_vote_and_arms_the_resend, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 2, three, 3), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = 0x100000005LL,
					   .current_epoch = 1 }, &out);
	cr_assert_eq(out.n, 2);
	cr_assert_eq(out.a[0].type, FLE_ACT_SEND);
	cr_assert(out.a[0].to_voters);
	cr_assert_eq(out.a[0].note.state, PEER_LOOKING);
	cr_assert_eq(out.a[0].note.leader, 2);
	cr_assert_eq(out.a[0].note.zxid, 0x100000005LL);
	cr_assert_eq(out.a[0].note.election_epoch, 1);
	cr_assert_eq(out.a[0].note.peer_epoch, 1);
	cr_assert_eq(out.a[1].type, FLE_ACT_ARM_TIMER);
	cr_assert_eq(out.a[1].timer_ms, 200);
	/* Silence: resend with backoff 200 -> 400 -> ... -> 60 s. */
	int want[] = { 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000 };
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		uint64_t gen = out.a[out.n - 1].timer_gen;
		out.n = 0;
		fle_step(&f, &(struct fle_event){ .type = FLE_EV_TIMER, .timer_gen = gen }, &out);
		cr_assert_eq(out.n, 2);
		cr_assert_eq(out.a[0].type, FLE_ACT_SEND);
		cr_assert_eq(out.a[1].timer_ms, want[k]);
	}
	/* A stale timer does nothing. */
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_TIMER, .timer_gen = 1 }, &out);
	cr_assert_eq(out.n, 0);
}

Test(fle, quorum_then_finalize_wait_then_decide, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 3, three, 3), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = 5 }, &out);
	/* Server 1 votes for us in round 1: with our own vote that is 2 of 3. */
	out.n = 0;
	struct peer_note n = { .state = PEER_LOOKING, .leader = 3, .zxid = 5, .election_epoch = 1 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 1, .note = n }, &out);
	cr_assert_eq(out.n, 1);
	cr_assert_eq(out.a[0].type, FLE_ACT_ARM_TIMER);
	cr_assert_eq(out.a[0].timer_ms, FLE_FINALIZE_WAIT_MS);
	cr_assert(f.finalizing);
	/* A vote that is not better restarts the wait. */
	out.n = 0;
	struct peer_note worse = { .state = PEER_LOOKING, .leader = 2, .zxid = 5, .election_epoch = 1 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = worse }, &out);
	cr_assert_eq(out.n, 1);
	cr_assert_eq(out.a[0].timer_ms, FLE_FINALIZE_WAIT_MS);
	uint64_t gen = out.a[0].timer_gen;
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_TIMER, .timer_gen = gen }, &out);
	cr_assert_eq(out.n, 2);
	cr_assert_eq(out.a[0].type, FLE_ACT_CANCEL_TIMER);
	cr_assert_eq(out.a[1].type, FLE_ACT_DECIDED);
	cr_assert_eq(out.a[1].state, PEER_LEADING);
	cr_assert_eq(out.a[1].vote.leader, 3);
	cr_assert_eq(f.state, PEER_LEADING);
	/* Decided: a LOOKING peer gets our decided vote and state back. */
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = worse }, &out);
	cr_assert_eq(out.n, 1);
	cr_assert_eq(out.a[0].to, 2);
	cr_assert_eq(out.a[0].note.state, PEER_LEADING);
	cr_assert_eq(out.a[0].note.leader, 3);
	cr_assert_eq(out.a[0].note.election_epoch, 1);
}

Test(fle, better_vote_during_finalize_wins, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 1, three, 3), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = 9 }, &out);
	out.n = 0;
	struct peer_note n2 = { .state = PEER_LOOKING, .leader = 1, .zxid = 9, .election_epoch = 1 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = n2 }, &out);
	cr_assert(f.finalizing);
	/* Server 3 has a newer epoch: better, so we switch and tell everyone. */
	out.n = 0;
	struct peer_note n3 = { .state = PEER_LOOKING, .leader = 3, .zxid = 1, .election_epoch = 1,
				.peer_epoch = 1 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 3, .note = n3 }, &out);
	cr_assert_eq(out.a[0].type, FLE_ACT_SEND);
	cr_assert_eq(out.a[0].note.leader, 3);
	cr_assert_eq(f.proposal.leader, 3);
	/* ... and with 3's own vote and ours, that is a quorum again. */
	cr_assert_eq(out.a[out.n - 1].timer_ms, FLE_FINALIZE_WAIT_MS);
	cr_assert(f.finalizing);
}

Test(fle, lagging_looking_peer_gets_our_round, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 1, three, 3), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START }, &out);
	/* A round-5 notification pulls our clock to 5. */
	out.n = 0;
	struct peer_note n = { .state = PEER_LOOKING, .leader = 3, .election_epoch = 5 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 3, .note = n }, &out);
	cr_assert_eq(f.logical_clock, 5);
	cr_assert_eq(f.proposal.leader, 3);
	/* Server 2 still in round 2 gets our vote back at round 5 and is not counted. */
	out.n = 0;
	struct peer_note old = { .state = PEER_LOOKING, .leader = 2, .election_epoch = 2 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = old }, &out);
	cr_assert_eq(out.a[0].type, FLE_ACT_SEND);
	cr_assert_eq(out.a[0].to, 2);
	cr_assert_eq(out.a[0].note.election_epoch, 5);
	cr_assert_eq(out.a[0].note.leader, 3);
	cr_assert_not(f.has_recv[1]);
}

Test(fle, votes_for_non_members_and_from_non_voters, .timeout = 10)
{
	struct fle_member m[4] = { { 1, true }, { 2, true }, { 3, true }, { 9, false } };
	struct fle f;
	cr_assert_eq(fle_init(&f, 1, m, 4), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START }, &out);
	/* A vote for an observer or a stranger is never adopted. */
	out.n = 0;
	struct peer_note n = { .state = PEER_LOOKING, .leader = 9, .zxid = 100, .election_epoch = 1,
			       .peer_epoch = 100 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = n }, &out);
	cr_assert_eq(f.proposal.leader, 1);
	/* The observer itself is answered at once with our current vote. */
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 9, .note = n }, &out);
	cr_assert_eq(out.n, 1);
	cr_assert_eq(out.a[0].to, 9);
	cr_assert_not(f.has_recv[3]);
	/* So is a sid we do not know; a notification claiming our own sid is dropped. */
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 77, .note = n }, &out);
	cr_assert_eq(out.n, 1);
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 1, .note = n }, &out);
	cr_assert_eq(out.n, 0);
}

Test(fle, init_refuses_bad_member_lists, .timeout = 10)
{
	struct fle *f = malloc(sizeof *f);
	cr_assert_not_null(f);
	struct fle_member dup[2] = { { 1, true }, { 1, true } };
	struct fle_member obs[2] = { { 1, false }, { 2, false } };
	cr_assert_eq(fle_init(f, 1, dup, 2), -EINVAL);
	cr_assert_eq(fle_init(f, 4, three, 3), -EINVAL);
	cr_assert_eq(fle_init(f, 1, obs, 2), -EINVAL);
	cr_assert_eq(fle_init(f, 1, three, 0), -EINVAL);
	cr_assert_eq(fle_init(f, 1, three, FLE_SERVERS_MAX + 1), -EINVAL);
	free(f);
}

Test(fle, full_action_buffer_is_a_bug, .signal = SIGABRT, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 1, three, 3), 0);
	struct fle_actions out = { .n = FLE_ACTIONS_MAX };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START }, &out);
}

/* checkLeader: followers alone cannot make us join; the leader must say it leads. */
Test(fle, joining_needs_the_leader_to_say_it_leads, .timeout = 10)
{
	struct fle_member five[5] = { { 1, true }, { 2, true }, { 3, true }, { 4, true }, { 5, true } };
	struct fle f;
	cr_assert_eq(fle_init(&f, 5, five, 5), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = 99, .current_epoch = 9 },
		 &out);
	struct peer_note fol = { .state = PEER_FOLLOWING, .leader = 2, .zxid = 7, .election_epoch = 3,
				 .peer_epoch = 1, .version = 2 };
	for (int64_t sid = 1; sid <= 4; sid++) {
		if (sid == 2)
			continue;
		out.n = 0;
		fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = sid, .note = fol }, &out);
		cr_assert_eq(f.state, PEER_LOOKING, "joined before the leader spoke");
	}
	/* Three followers of 2 are a quorum of five, but 2 has not said LEADING. */
	out.n = 0;
	struct peer_note lead = fol;
	lead.state = PEER_LEADING;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = lead }, &out);
	cr_assert_eq(f.state, PEER_FOLLOWING);
	cr_assert_eq(f.current.leader, 2);
	cr_assert_eq(f.logical_clock, 3, "takes the established round");
	cr_assert_eq(out.a[out.n - 1].type, FLE_ACT_DECIDED);
}

/* Our own round's FOLLOWING/LEADING votes count together with the LOOKING ones. */
Test(fle, leader_notification_of_our_round_decides_at_once, .timeout = 10)
{
	struct fle f;
	cr_assert_eq(fle_init(&f, 1, three, 3), 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START }, &out);
	struct peer_note lead = { .state = PEER_LEADING, .leader = 3, .zxid = 4, .election_epoch = 1,
				  .peer_epoch = 1, .version = 2 };
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 3, .note = lead }, &out);
	cr_assert_eq(f.state, PEER_LOOKING, "one vote is no quorum");
	struct peer_note fol = lead;
	fol.state = PEER_FOLLOWING;
	out.n = 0;
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = 2, .note = fol }, &out);
	cr_assert_eq(f.state, PEER_FOLLOWING);
	cr_assert_eq(f.logical_clock, 1);
}
