/* Proves ZAB's leader and learner machines (zab/quorum.c) in a deterministic in-test
 * cluster of 1, 3 and 5 voters (+ observers): FIFO links with seeded delays and partitions,
 * per-node logs whose durability lags at random, epoch files, learners that crash (keeping
 * only their durable log and epoch files) and resync. Checked after every step: no two nodes
 * apply different txns at one zxid; each node applies a gapless, growing prefix of committed
 * txns; a commit is backed by a quorum of voters whose logs really are durable; a follower
 * ACKs only what is durable; ACKEPOCH follows a durable acceptedEpoch; NEWLEADER is ACKed
 * only after the synced log and then currentEpoch are durable; TRUNC never cuts an applied
 * txn; a sync answer covers everything the leader had proposed when the sync was submitted.
 * At the end (healed, quiet) every node's log holds every acknowledged write. Scenarios:
 * fresh ensembles, lagging follower (DIFF), far behind (SNAP), ex-leader with uncommitted
 * proposals (TRUNC), a leader cut off from its quorum (commits nothing, answers no sync, and
 * with real ticks steps down after syncLimit; its cut-off followers leave it), discovery
 * without a quorum (initLimit), and leaders that crash four times in a row: the next one
 * (FLE's choice among the survivors) keeps every txn anyone applied, and the old leader's
 * unlogged-elsewhere proposals are truncated. Every failure prints SEED=n; QUORUM_SEED=n
 * replays it. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/support/support.h"
#include "zab/quorum.h"

#define NMAX 7
#define LOGMAX 4096
#define LINKQ 4096 /* per link */
#define COOKIES 4096
#define AMAP 16384 /* zxid -> txn applied there, open addressing */
#define EPOCH 3
#define BASE_ZXID ((int64_t)2 << 32 | 5) /* what synchronization left everyone with */
#define Z(c) ((int64_t)EPOCH << 32 | (int64_t)(c))

struct entry {
	int64_t zxid;
	uint64_t val;
};

struct msg {
	uint64_t at, seq;
	int from, to;
	int32_t ptype;
	int64_t zxid, epoch;
	uint64_t val; /* PROPOSAL/INFORM: the txn */
};

struct node {
	struct quorum_leader l;
	struct quorum_learner f;
	struct entry log[LOGMAX];
	int nlog, ndurable;
	int64_t applied;
	int64_t accepted_file, current_file; /* the epoch files */
	bool snap_pending;                   /* an installed snapshot not yet durable */
	int64_t snap_zxid;
	bool down;
};

struct sim {
	uint64_t seed, rng, now, seq, next_val, incoming_val;
	int n, nvoters;
	struct quorum_member members[NMAX];
	struct node node[NMAX];
	bool cut[NMAX][NMAX];
	uint64_t link_at[NMAX][NMAX];
	struct link {  /* TCP: FIFO per link, so only each head can be next */
		struct msg q[LINKQ];
		int head, n;
	} link[NMAX][NMAX];
	int nq;
	struct { int64_t zxid; uint64_t val; } amap[AMAP]; /* the txn every node applied there */
	int64_t log_min;               /* the leader's oldest DIFF-able zxid */
	int32_t sync_kind[NMAX];       /* the last DIFF/TRUNC/SNAP each learner got */
	int ld;                        /* the leader's index */
	bool allow_looking;
	int init_limit, sync_limit;    /* ticks; huge unless a test is about liveness */
	int64_t acked_max;             /* highest zxid applied anywhere: acknowledged to a client */
	int64_t sync_need[COOKIES];    /* per cookie: zxid the answer must cover; -1 answered,
					* -2 refused */
	int sync_node[COOKIES];
	uint64_t next_cookie, answered, busy;
	int delay_max;
};

static uint64_t rnd(struct sim *s) { return t_xorshift(&s->rng); }

static uint64_t *amap_slot(struct sim *s, int64_t zxid)
{
	for (uint64_t h = (uint64_t)zxid * 0x9e3779b97f4a7c15ull >> 50;; h = (h + 1) % AMAP) {
		if (s->amap[h].zxid == zxid)
			return &s->amap[h].val;
		if (s->amap[h].zxid == 0) {
			s->amap[h].zxid = zxid;
			return &s->amap[h].val;
		}
	}
}
#define SEEDF "SEED=%llu: "
#define SEEDA (unsigned long long)s->seed

static struct sim *sim_new(uint64_t seed, int nvoters, int nobservers)
{
	struct sim *s = calloc(1, sizeof *s);
	cr_assert_not_null(s);
	s->seed = seed;
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->n = nvoters + nobservers;
	s->nvoters = nvoters;
	s->next_val = 1000;
	s->acked_max = BASE_ZXID;
	s->delay_max = 1 + (int)(rnd(s) % 40);
	s->init_limit = s->sync_limit = 1 << 20;
	for (int i = 0; i < s->n; i++)
		s->members[i] = (struct quorum_member){ .sid = i + 1, .voter = i < nvoters };
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->node[i];
		nd->applied = BASE_ZXID;
		if (i == 0) {
			cr_assert_eq(quorum_leader_init(&nd->l, 1, EPOCH, BASE_ZXID, s->members, s->n), 0);
			cr_assert_eq(quorum_leader_limits(&nd->l, s->init_limit, s->sync_limit), 0);
		} else {
			cr_assert_eq(quorum_learner_init(&nd->f, i + 1, 1, EPOCH, BASE_ZXID, i >= nvoters), 0);
			cr_assert_eq(quorum_learner_limits(&nd->f, s->init_limit, s->sync_limit), 0);
		}
	}
	return s;
}

static int64_t durable_zxid(const struct node *nd)
{
	return nd->ndurable ? nd->log[nd->ndurable - 1].zxid : 0;
}

static const struct entry *log_find(const struct node *nd, int64_t zxid)
{
	int lo = 0, hi = nd->nlog;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (nd->log[mid].zxid < zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nd->nlog && nd->log[lo].zxid == zxid ? &nd->log[lo] : NULL;
}

static void enqueue(struct sim *s, int from, int to, int32_t ptype, int64_t zxid, uint64_t val)
{
	struct link *lk = &s->link[from][to];
	cr_assert_lt(lk->n, LINKQ, SEEDF "link queue full", SEEDA);
	uint64_t at = s->now + 1 + rnd(s) % (uint64_t)s->delay_max;
	if (at < s->link_at[from][to])
		at = s->link_at[from][to];
	s->link_at[from][to] = at;
	lk->q[(lk->head + lk->n++) % LINKQ] = (struct msg){ .at = at, .seq = s->seq++, .from = from,
							     .to = to, .ptype = ptype, .zxid = zxid,
							     .val = val };
	s->nq++;
}

static void step(struct sim *s, int i, const struct quorum_event *ev);

/* Index of the first entry of nd's log above zxid. */
static int log_after(const struct node *nd, int64_t zxid)
{
	int lo = 0, hi = nd->nlog;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (nd->log[mid].zxid <= zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A range send becomes one packet per zxid, as the driver would write them. */
static void do_send(struct sim *s, int i, const struct quorum_action *a)
{
	int to = (int)a->to - 1;
	cr_assert(to >= 0 && to < s->n && to != i, SEEDF "send to %lld", SEEDA, (long long)a->to);
	if (a->range && a->ptype != QP_PROPOSAL) {
		cr_assert(a->ptype == QP_COMMIT || a->ptype == QP_INFORM || a->ptype == QP_ACK);
		cr_assert_lt(a->from, a->zxid, SEEDF "empty range", SEEDA);
		cr_assert(a->ptype == QP_ACK || (a->ptype == QP_INFORM) == !s->members[to].voter,
			  SEEDF, SEEDA);
		cr_assert(a->ptype != QP_ACK || i != s->ld, SEEDF, SEEDA);
		const struct node *nd = &s->node[a->ptype == QP_ACK ? i : s->ld];
		int k = log_after(nd, a->from);
		cr_assert(k < nd->nlog && nd->log[k].zxid <= a->zxid, SEEDF "range not logged: ld %d nlog %d last %llx node %d type %d (%llx, %llx] to %d", SEEDA, s->ld + 1, nd->nlog, (unsigned long long)(nd->nlog ? nd->log[nd->nlog-1].zxid : 0), i + 1, a->ptype, (unsigned long long)a->from, (unsigned long long)a->zxid, to + 1);
		for (; k < nd->nlog && nd->log[k].zxid <= a->zxid; k++)
			enqueue(s, i, to, a->ptype, nd->log[k].zxid, nd->log[k].val);
		return;
	}
	if (a->range) { /* a sync stream */
		cr_assert_eq(i, s->ld);
		const struct node *nd = &s->node[i];
		for (int k = log_after(nd, a->from); k < nd->nlog && nd->log[k].zxid <= a->zxid; k++) {
			enqueue(s, i, to, QP_PROPOSAL, nd->log[k].zxid, nd->log[k].val);
			if (a->with_commit)
				enqueue(s, i, to, QP_COMMIT, nd->log[k].zxid, 0);
		}
		return;
	}
	if (a->ptype == QP_ACK) { /* of NEWLEADER: the single ACKs */
		const struct node *nd = &s->node[i];
		cr_assert_eq(nd->ndurable, nd->nlog, SEEDF "node %d acks NEWLEADER before its log is durable",
			     SEEDA, i + 1);
		cr_assert(!nd->snap_pending, SEEDF "NEWLEADER acked before the snapshot is durable", SEEDA);
		cr_assert_eq(nd->current_file, a->zxid >> 32,
			     SEEDF "node %d acks NEWLEADER before currentEpoch is on disk", SEEDA, i + 1);
	}
	if (a->ptype == QP_UPTODATE) /* the leader serves only under a durable currentEpoch */
		cr_assert_eq(s->node[s->ld].current_file, s->node[s->ld].l.epoch, SEEDF "UPTODATE before the "
			     "leader's currentEpoch is on disk", SEEDA);
	if (a->ptype == QP_ACKEPOCH) {
		cr_assert_eq(s->node[i].accepted_file, s->node[i].f.epoch,
			     SEEDF "ACKEPOCH before acceptedEpoch is on disk", SEEDA);
		struct link *lk = &s->link[i][to];
		enqueue(s, i, to, a->ptype, a->zxid, 0);
		lk->q[(lk->head + lk->n - 1) % LINKQ].epoch = a->epoch;
		return;
	}
	if (a->ptype == QP_SYNC) {
		cr_assert(a->count >= 1 && a->count <= QUORUM_SYNCS_MAX, SEEDF, SEEDA);
		for (int k = 0; k < a->count; k++)
			enqueue(s, i, to, QP_SYNC, a->zxid, 0);
		return;
	}
	uint64_t val = 0;
	if (a->ptype == QP_PROPOSAL) {
		cr_assert(s->members[to].voter, SEEDF "PROPOSAL to an observer", SEEDA);
		val = log_find(&s->node[i], a->zxid)->val;
	}
	enqueue(s, i, to, a->ptype, a->zxid, val);
}

static void do_apply(struct sim *s, int i, const struct quorum_action *a)
{
	struct node *nd = &s->node[i];
	cr_assert_eq(a->from, nd->applied, SEEDF "node %d applies from %llx, has %llx", SEEDA, i + 1,
		     (unsigned long long)a->from, (unsigned long long)nd->applied);
	cr_assert_gt(a->zxid, a->from, SEEDF "applied prefix shrinks", SEEDA);
	cr_assert_not_null(log_find(nd, a->zxid), SEEDF "node %d applies %llx it has not logged",
			   SEEDA, i + 1, (unsigned long long)a->zxid);
	for (int k = log_after(nd, a->from); k < nd->nlog && nd->log[k].zxid <= a->zxid; k++) {
		const struct entry *e = &nd->log[k];
		int64_t z = e->zxid;
		cr_assert_leq(z, s->node[s->ld].l.committed, SEEDF "node %d applies uncommitted %llx",
			      SEEDA, i + 1, (unsigned long long)z);
		uint64_t *v = amap_slot(s, z);
		cr_assert(*v == 0 || *v == e->val, SEEDF "two txns applied at %llx", SEEDA,
			  (unsigned long long)z);
		*v = e->val;
	}
	if (i == s->ld) { /* a commit: a quorum of voters' logs really are durable up to it */
		int count = 0;
		for (int j = 0; j < s->nvoters; j++)
			count += durable_zxid(&s->node[j]) >= a->zxid;
		cr_assert_gt(count, s->nvoters / 2, SEEDF "commit of %llx without a durable quorum",
			     SEEDA, (unsigned long long)a->zxid);
	}
	nd->applied = a->zxid;
	if (a->zxid > s->acked_max)
		s->acked_max = a->zxid;
}

/* The snapshot the leader streams after SNAP: its tree at zxid, which stands for the txns
 * up to there; durable once written. */
static void do_snap(struct sim *s, int i, int64_t zxid)
{
	struct node *nd = &s->node[i];
	const struct node *ld = &s->node[s->ld];
	nd->nlog = 0;
	for (int k = 0; k < ld->nlog && ld->log[k].zxid <= zxid; k++) {
		uint64_t *v = amap_slot(s, ld->log[k].zxid);
		cr_assert(*v == 0 || *v == ld->log[k].val, SEEDF, SEEDA);
		*v = ld->log[k].val;
		nd->log[nd->nlog++] = ld->log[k];
	}
	nd->ndurable = 0;
	nd->applied = zxid;
	nd->snap_pending = true;
	nd->snap_zxid = zxid;
}

static void act(struct sim *s, int i, const struct quorum_actions *acts)
{
	struct node *nd = &s->node[i];
	for (int k = 0; k < acts->n; k++) {
		const struct quorum_action *a = &acts->a[k];
		switch (a->type) {
		case QUORUM_ACT_SEND:
			if (a->ptype == QP_ACK && a->range)
				cr_assert_leq(a->zxid, durable_zxid(nd), SEEDF "ACK before durable", SEEDA);
			do_send(s, i, a);
			break;
		case QUORUM_ACT_APPEND: {
			cr_assert_lt(nd->nlog, LOGMAX);
			int64_t last = nd->nlog ? nd->log[nd->nlog - 1].zxid : 0;
			cr_assert_gt(a->zxid, last, SEEDF "append out of order", SEEDA);
			/* The leader's driver made the txn; a learner's came in the packet. */
			uint64_t val = i == s->ld ? s->next_val++ : s->incoming_val;
			nd->log[nd->nlog++] = (struct entry){ .zxid = a->zxid, .val = val };
			break;
		}
		case QUORUM_ACT_APPLY:
			do_apply(s, i, a);
			break;
		case QUORUM_ACT_SYNC_DONE: {
			uint64_t c = a->cookie;
			cr_assert(c < s->next_cookie && s->sync_need[c] >= 0 && s->sync_node[c] == i,
				  SEEDF "bad or repeated sync answer", SEEDA);
			cr_assert_geq(nd->applied, s->sync_need[c],
				      SEEDF "sync at node %d answered before %llx applied", SEEDA, i + 1,
				      (unsigned long long)s->sync_need[c]);
			s->sync_need[c] = -1;
			s->answered++;
			break;
		}
		case QUORUM_ACT_LOOKING:
			cr_assert(s->allow_looking, SEEDF "node %d says LOOKING in a fault-free run", SEEDA, i + 1);
			if (i == s->ld && a->to != i + 1) {
				/* The leader drops a learner's connection: the learner re-elects. */
				cr_assert(a->to >= 1 && a->to <= s->n);
				s->node[a->to - 1].down = true;
				break;
			}
			nd->down = true;
			break;
		case QUORUM_ACT_PERSIST:
			if (a->which == QUORUM_ACCEPTED_EPOCH)
				nd->accepted_file = a->epoch;
			else
				nd->current_file = a->epoch;
			break;
		case QUORUM_ACT_TRUNCATE:
			cr_assert_leq(nd->applied, a->zxid, SEEDF "TRUNC under an applied txn", SEEDA);
			nd->nlog = log_after(nd, a->zxid);
			if (nd->ndurable > nd->nlog)
				nd->ndurable = nd->nlog;
			break;
		case QUORUM_ACT_SNAP:
			do_snap(s, i, a->zxid);
			break;
		}
		if (a->type == QUORUM_ACT_PERSIST) { /* done before anything else */
			struct quorum_event ev = { .type = QUORUM_EV_PERSISTED, .which = a->which };
			step(s, i, &ev);
		}
	}
}

static void step(struct sim *s, int i, const struct quorum_event *ev)
{
	struct quorum_actions acts = { 0 };
	if (s->node[i].down)
		return;
	int rc = i == s->ld ? quorum_leader_step(&s->node[s->ld].l, ev, &acts)
			: quorum_learner_step(&s->node[i].f, ev, &acts);
	if (rc == -EBUSY || rc == -EAGAIN) {
		cr_assert_eq(acts.n, 0);
		s->busy++;
		return;
	}
	cr_assert_eq(rc, 0, SEEDF "step: %d", SEEDA, rc);
	act(s, i, &acts);
}

static bool deliver_until(struct sim *s, uint64_t limit);
static bool deliver_one(struct sim *s) { return deliver_until(s, UINT64_MAX); }

/* The next message due by `limit`, if any. */
static bool deliver_until(struct sim *s, uint64_t limit)
{
	const struct msg *best = NULL;
	struct link *bl = NULL;
	for (int i = 0; i < s->n; i++)
		for (int j = 0; j < s->n; j++) {
			struct link *lk = &s->link[i][j];
			if (lk->n == 0 || s->cut[i][j])
				continue;
			const struct msg *h = &lk->q[lk->head];
			if (!best || h->at < best->at || (h->at == best->at && h->seq < best->seq)) {
				best = h;
				bl = lk;
			}
		}
	if (!best || best->at > limit)
		return false;
	struct msg m = *best;
	bl->head = (bl->head + 1) % LINKQ;
	bl->n--;
	s->nq--;
	if (m.at > s->now)
		s->now = m.at;
	s->incoming_val = m.val; /* a PROPOSAL's or INFORM's txn rides in the packet */
	if ((m.ptype == QP_DIFF || m.ptype == QP_TRUNC || m.ptype == QP_SNAP) && !s->node[m.to].down)
		s->sync_kind[m.to] = m.ptype;
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = m.from + 1, .ptype = m.ptype,
				   .zxid = m.zxid, .epoch = m.epoch };
	if (m.ptype == QP_ACKEPOCH) { /* the leader's driver looks the learner's zxid up */
		const struct node *ld = &s->node[s->ld];
		int k = log_after(ld, m.zxid);
		ev.floor = k > 0 ? ld->log[k - 1].zxid : 0;
		if (ev.floor < s->log_min)
			ev.floor = -1;
	}
	step(s, m.to, &ev);
	return true;
}

static void make_durable(struct sim *s, int i, bool all)
{
	struct node *nd = &s->node[i];
	if (nd->ndurable == nd->nlog && nd->snap_pending) {
		nd->snap_pending = false;
		struct quorum_event ev = { .type = QUORUM_EV_DURABLE, .zxid = nd->snap_zxid };
		step(s, i, &ev);
		return;
	}
	if (nd->ndurable == nd->nlog)
		return;
	int upto = all ? nd->nlog : nd->ndurable + 1 + (int)(rnd(s) % (uint64_t)(nd->nlog - nd->ndurable));
	nd->ndurable = upto;
	if (upto == nd->nlog)
		nd->snap_pending = false;
	struct quorum_event ev = { .type = QUORUM_EV_DURABLE, .zxid = nd->log[upto - 1].zxid };
	step(s, i, &ev);
}

static void client_sync(struct sim *s, int i)
{
	cr_assert_lt(s->next_cookie, COOKIES);
	uint64_t c = s->next_cookie++;
	/* As Apache: what the leader had proposed when the sync came is applied before the
	 * answer - more than the writes acknowledged by then, which it includes. */
	s->sync_need[c] = s->node[s->ld].l.proposed;
	s->sync_node[c] = i;
	struct quorum_event ev = { .type = QUORUM_EV_SYNC, .cookie = c };
	uint64_t busy = s->busy;
	step(s, i, &ev);
	if (s->busy != busy)
		s->sync_need[c] = -2; /* refused: the client is told to retry */
}

static void client_write(struct sim *s)
{
	struct quorum_event ev = { .type = QUORUM_EV_WRITE };
	step(s, s->ld, &ev);
}

static void tick(struct sim *s)
{
	struct quorum_event ev = { .type = QUORUM_EV_TICK };
	step(s, s->ld, &ev);
}

/* One random thing happens. */
static void sim_step(struct sim *s)
{
	unsigned r = (unsigned)(rnd(s) % 100);
	if (r < 50) {
		if (!deliver_one(s))
			s->now++;
	} else if (r < 65) {
		if (s->node[s->ld].nlog < LOGMAX - QUORUM_WINDOW_MAX)
			client_write(s);
	} else if (r < 85) {
		make_durable(s, (int)(rnd(s) % (uint64_t)s->n), false);
	} else if (r < 95) {
		if (s->next_cookie < COOKIES - 16)
			client_sync(s, (int)(rnd(s) % (uint64_t)s->n));
	} else {
		tick(s);
	}
}

/* Heal, flush every log and deliver everything; then every acknowledged write is in every
 * log, everyone applied what the leader committed, and every sync was answered. */
static void quiesce(struct sim *s)
{
	memset(s->cut, 0, sizeof s->cut);
	for (int round = 0; round < 10000; round++) {
		bool any = false;
		for (int i = 0; i < s->n; i++)
			if (s->node[i].ndurable < s->node[i].nlog || s->node[i].snap_pending) {
				make_durable(s, i, true);
				any = true;
			}
		while (deliver_one(s))
			any = true;
		/* Pings go on each tick: a round some voter missed (it was resyncing) is
		 * overtaken by a later one. */
		bool waiting = false;
		for (uint64_t c = 0; c < s->next_cookie; c++)
			waiting |= s->sync_need[c] >= 0;
		if (waiting && s->node[s->ld].l.phase == QUORUM_BROADCAST && round < 100) {
			tick(s);
			any = true;
		}
		if (!any)
			break;
	}
	cr_assert_eq(s->nq, 0);
	int64_t committed = s->node[s->ld].l.committed;
	cr_assert_eq(committed, s->acked_max, SEEDF, SEEDA);
	cr_assert_eq(committed, s->node[s->ld].l.proposed, SEEDF "proposals left uncommitted", SEEDA);
	for (int i = 0; i < s->n; i++) {
		cr_assert_eq(s->node[i].applied, committed, SEEDF "node %d applied %llx of %llx", SEEDA,
			     i + 1, (unsigned long long)s->node[i].applied, (unsigned long long)committed);
		const struct node *ld = &s->node[s->ld];
		for (int k = 0; k < ld->nlog && ld->log[k].zxid <= committed; k++) {
			int64_t z = ld->log[k].zxid;
			const struct entry *e = log_find(&s->node[i], z);
			cr_assert(e && e->val == *amap_slot(s, z),
				  SEEDF "node %d lacks acknowledged %llx", SEEDA, i + 1, (unsigned long long)z);
		}
	}
	/* ZAB's promise across leaders: every txn anyone applied is in the leader's log. */
	for (int h = 0; h < AMAP; h++)
		if (s->amap[h].zxid != 0) {
			const struct entry *e = log_find(&s->node[s->ld], s->amap[h].zxid);
			cr_assert(e && e->val == s->amap[h].val, SEEDF "applied %llx lost by leader %d",
				  SEEDA, (unsigned long long)s->amap[h].zxid, s->ld + 1);
		}
	for (uint64_t c = 0; c < s->next_cookie; c++)
		cr_assert_lt(s->sync_need[c], 0, SEEDF "sync %llu never answered", SEEDA,
			     (unsigned long long)c);
}

#define FOR_SEEDS(seed, count) T_FOR_SEEDS(seed, count, "QUORUM_SEED")

/* ---- steady broadcast with lagging disks and delayed, reordered traffic ---- */

static void steady(int nvoters, int nobservers, uint64_t seeds, int steps)
{
	FOR_SEEDS(seed, seeds) {
		struct sim *s = sim_new(seed, nvoters, nobservers);
		for (int k = 0; k < steps; k++)
			sim_step(s);
		quiesce(s);
		cr_assert_gt(s->node[s->ld].l.committed, Z(0), SEEDF "nothing committed", SEEDA);
		free(s);
	}
}

Test(quorum, one_voter_commits_on_its_own_log, .timeout = 30) { steady(1, 0, 20, 2000); }
Test(quorum, three_voters_broadcast, .timeout = 60) { steady(3, 0, 40, 3000); }
Test(quorum, five_voters_broadcast, .timeout = 60) { steady(5, 0, 30, 3000); }
Test(quorum, voters_and_observers_broadcast, .timeout = 60) { steady(3, 2, 30, 3000); }

/* ---- partitions: a minority side commits nothing and answers no sync ---- */

static void cut_node(struct sim *s, int i, bool on)
{
	for (int j = 0; j < s->n; j++)
		if (j != i)
			s->cut[i][j] = s->cut[j][i] = on;
}

static void partitions(int nvoters, int nobservers, uint64_t seeds)
{
	FOR_SEEDS(seed, seeds) {
		struct sim *s = sim_new(seed, nvoters, nobservers);
		for (int phase = 0; phase < 6; phase++) {
			/* Cut a random set of learners off the leader for a while. */
			int ncut = 0;
			for (int i = 1; i < s->n; i++)
				if (rnd(s) % 2) {
					s->cut[0][i] = s->cut[i][0] = true;
					ncut += i < nvoters;
				}
			/* Acks that arrived before the cut may still complete a quorum with the
			 * leader's own disk; nothing proposed after it may commit. */
			int64_t proposed = s->node[s->ld].l.proposed;
			uint64_t first_cookie = s->next_cookie;
			for (int k = 0; k < 800; k++)
				sim_step(s);
			if (nvoters - ncut <= nvoters / 2) { /* the leader's side is no quorum */
				cr_assert_leq(s->node[s->ld].l.committed, proposed,
					      SEEDF "committed without a quorum", SEEDA);
				for (uint64_t c = first_cookie; c < s->next_cookie; c++)
					cr_assert_neq(s->sync_need[c], -1,
						      SEEDF "sync answered without a quorum", SEEDA);
			}
			memset(s->cut, 0, sizeof s->cut);
			for (int k = 0; k < 800; k++)
				sim_step(s);
		}
		quiesce(s);
		free(s);
	}
}

Test(quorum, three_voters_partitioned_and_healed, .timeout = 60) { partitions(3, 0, 30); }
Test(quorum, five_voters_and_observers_partitioned, .timeout = 60) { partitions(5, 2, 30); }

/* A leader alone (followers unreachable: paused, or following a new leader) must neither
 * commit nor answer a sync, even its own client's; both complete once it hears a quorum. */
Test(quorum, isolated_leader_commits_nothing_and_answers_no_sync, .timeout = 30)
{
	struct sim *s = sim_new(7, 3, 1);
	cut_node(s, 0, true);
	for (int k = 0; k < 20; k++)
		client_write(s);
	make_durable(s, 0, true);
	client_sync(s, 0);
	tick(s);
	for (int k = 0; k < 200; k++)
		sim_step(s);
	cr_assert_eq(s->node[s->ld].l.committed, BASE_ZXID);
	cr_assert_eq(s->answered, 0);
	for (int i = 0; i < s->n; i++)
		cr_assert_eq(s->node[i].applied, BASE_ZXID);
	quiesce(s);
	cr_assert_geq(s->answered, 1);
	free(s);
}

/* With nothing outstanding, a leader that cannot reach a quorum still answers no sync: a
 * paused leader another quorum has replaced would answer with stale data (ZOOKEEPER-1675). */
Test(quorum, leader_without_quorum_answers_no_sync_even_when_idle, .timeout = 30)
{
	struct sim *s = sim_new(11, 5, 0);
	for (int k = 0; k < 5; k++)
		client_write(s);
	quiesce(s);
	uint64_t answered = s->answered;
	/* The leader hears only node 2: two of five is no quorum. */
	for (int j = 2; j < s->n; j++)
		s->cut[0][j] = s->cut[j][0] = true;
	client_sync(s, 0);
	client_sync(s, 1);
	for (int k = 0; k < 10; k++) {
		tick(s);
		while (deliver_one(s))
			;
	}
	cr_assert_eq(s->answered, answered);
	quiesce(s);
	cr_assert_eq(s->answered, answered + 2);
	free(s);
}

/* A follower's sync is answered only after the leader's round-trip, then after its own
 * apply: a stale follower never answers with less than what was acknowledged. */
Test(quorum, follower_sync_waits_for_commits_before_it, .timeout = 30)
{
	struct sim *s = sim_new(3, 3, 0);
	s->cut[0][2] = s->cut[2][0] = true; /* node 3 lags */
	for (int k = 0; k < 10; k++)
		client_write(s);
	make_durable(s, 0, true);
	while (deliver_one(s))
		;
	make_durable(s, 1, true);
	while (deliver_one(s))
		;
	cr_assert_eq(s->node[s->ld].l.committed, Z(10));
	cr_assert_eq(s->node[2].applied, BASE_ZXID);
	client_sync(s, 2); /* needs Z(10) */
	quiesce(s);
	cr_assert_eq(s->answered, 1);
	free(s);
}

/* ---- bounds ---- */

Test(quorum, window_full_refuses_writes_until_a_commit, .timeout = 30)
{
	struct sim *s = sim_new(1, 3, 0);
	cut_node(s, 0, true);
	for (int k = 0; k < QUORUM_WINDOW_MAX; k++)
		client_write(s);
	cr_assert_eq(s->busy, 0);
	cr_assert_eq(s->node[s->ld].l.proposed, Z(QUORUM_WINDOW_MAX));
	client_write(s);
	cr_assert_eq(s->busy, 1);
	cr_assert_eq(s->node[s->ld].l.proposed, Z(QUORUM_WINDOW_MAX)); /* nothing changed */
	quiesce(s);
	client_write(s);
	cr_assert_eq(s->busy, 1);
	cr_assert_eq(s->node[s->ld].l.proposed, Z(QUORUM_WINDOW_MAX + 1));
	quiesce(s);
	free(s);
}

Test(quorum, sync_queue_bound, .timeout = 30)
{
	struct sim *s = sim_new(1, 3, 0);
	cut_node(s, 0, true);
	for (int k = 0; k < QUORUM_SYNCS_MAX; k++)
		client_sync(s, 1);
	cr_assert_eq(s->busy, 0);
	client_sync(s, 1);
	cr_assert_eq(s->busy, 1);
	for (int k = 0; k < QUORUM_SYNCS_MAX; k++)
		client_sync(s, 0);
	client_sync(s, 0);
	cr_assert_eq(s->busy, 2);
	quiesce(s);
	cr_assert_eq(s->answered, 2 * QUORUM_SYNCS_MAX);
	free(s);
}

/* ---- protocol violations: the peer is dropped, nothing crashes ---- */

static struct quorum_actions one(struct quorum_learner *f, int32_t ptype, int64_t zxid)
{
	struct quorum_actions a = { 0 };
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = 1, .ptype = ptype, .zxid = zxid };
	cr_assert_eq(quorum_learner_step(f, &ev, &a), 0);
	return a;
}

Test(quorum, learner_leaves_a_leader_that_breaks_order)
{
	struct quorum_learner f;
	struct quorum_actions a;
	cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, BASE_ZXID, false), 0);
	a = one(&f, QP_PROPOSAL, Z(1));
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_APPEND && a.a[0].zxid == Z(1));
	a = one(&f, QP_PROPOSAL, Z(3)); /* a gap */
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING && a.a[0].to == 1);
	a = one(&f, QP_PROPOSAL, Z(2)); /* lost: everything after is ignored */
	cr_assert_eq(a.n, 0);

	const int64_t bad[][2] = { { QP_PROPOSAL, (int64_t)(EPOCH + 1) << 32 | 1 },
				   { QP_COMMIT, Z(1) }, /* never proposed */
				   { QP_INFORM, Z(1) }, /* a follower gets no INFORM */
				   { QP_SYNC, BASE_ZXID } /* no sync asked */ };
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, BASE_ZXID, false), 0);
		a = one(&f, (int32_t)bad[k][0], bad[k][1]);
		cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING, "case %zu", k);
	}
	cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, BASE_ZXID, true), 0);
	a = one(&f, QP_PROPOSAL, Z(1)); /* an observer gets no PROPOSAL */
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING);
	/* A packet from someone else is ignored. */
	cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, BASE_ZXID, false), 0);
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = 3, .ptype = QP_PROPOSAL, .zxid = Z(1) };
	a.n = 0;
	cr_assert_eq(quorum_learner_step(&f, &ev, &a), 0);
	cr_assert_eq(a.n, 0);
}

Test(quorum, leader_drops_a_learner_that_lies)
{
	struct quorum_member m[] = { { 1, true }, { 2, true }, { 3, true }, { 4, false } };
	struct quorum_leader l;
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, BASE_ZXID, m, 4), 0);
	const int64_t bad[][3] = { { 2, QP_ACK, Z(1) },   /* never proposed */
				   { 4, QP_ACK, BASE_ZXID }, /* observers do not vote */
				   { 3, QP_PING, 5 } };      /* round never started */
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		struct quorum_actions a = { 0 };
		struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = bad[k][0],
					   .ptype = (int32_t)bad[k][1], .zxid = bad[k][2] };
		cr_assert_eq(quorum_leader_step(&l, &ev, &a), 0);
		cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING && a.a[0].to == bad[k][0],
			  "case %zu", k);
	}
	cr_assert_eq(l.committed, BASE_ZXID);
}

Test(quorum, init_rejects_bad_configurations)
{
	struct quorum_member m[] = { { 1, true }, { 2, true }, { 3, false } };
	struct quorum_member dup[] = { { 1, true }, { 1, true } };
	struct quorum_leader l;
	struct quorum_learner f;
	cr_assert_eq(quorum_leader_init(&l, 3, EPOCH, 0, m, 3), -EINVAL); /* observer leads */
	cr_assert_eq(quorum_leader_init(&l, 9, EPOCH, 0, m, 3), -EINVAL);
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, 0, dup, 2), -EINVAL);
	cr_assert_eq(quorum_leader_init(&l, 1, 0, 0, m, 3), -EINVAL);
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, Z(0) + ((int64_t)1 << 32), m, 3), -EINVAL);
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, 0, m, 0), -EINVAL);
	cr_assert_eq(quorum_learner_init(&f, 1, 1, EPOCH, 0, false), -EINVAL);
	cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, -1, false), -EINVAL);
	/* A new epoch restarts the counter; the same epoch continues it. */
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, Z(41), m, 3), 0);
	struct quorum_actions a = { 0 };
	struct quorum_event w = { .type = QUORUM_EV_WRITE };
	cr_assert_eq(quorum_leader_step(&l, &w, &a), 0);
	cr_assert_eq(a.a[0].zxid, Z(42));
}

Test(quorum, durable_past_the_log_is_a_driver_bug, .signal = SIGABRT)
{
	struct quorum_learner f;
	cr_assert_eq(quorum_learner_init(&f, 2, 1, EPOCH, BASE_ZXID, false), 0);
	struct quorum_actions a = { 0 };
	struct quorum_event ev = { .type = QUORUM_EV_DURABLE, .zxid = Z(1) };
	quorum_learner_step(&f, &ev, &a);
}

/* ---- discovery and synchronization, then broadcast ---- */

#define ZE(e, c) ((int64_t)(e) << 32 | (int64_t)(c))

static uint64_t hist_val(int64_t zxid) { return (uint64_t)zxid * 7 + 3; }
#define TAIL_BIT (1ull << 63) /* marks a txn only one node logged */

/* Node i before the election: epoch files, and a log of the shared history's txns
 * ZE(e, 1..n) for each (e, n) pair, then `ntail` txns of its own after them in epoch
 * tail_epoch (never committed: values nobody else has). */
static void give(struct sim *s, int i, int64_t accepted, int64_t current, const int (*hist)[2],
		 int nhist, int64_t tail_epoch, int ntail, int tail_from)
{
	struct node *nd = &s->node[i];
	nd->accepted_file = accepted;
	nd->current_file = current;
	nd->nlog = 0;
	for (int h = 0; h < nhist; h++)
		for (int c = 1; c <= hist[h][1]; c++) {
			int64_t z = ZE(hist[h][0], c);
			nd->log[nd->nlog++] = (struct entry){ .zxid = z, .val = hist_val(z) };
		}
	for (int c = 0; c < ntail; c++)
		nd->log[nd->nlog++] = (struct entry){ .zxid = ZE(tail_epoch, tail_from + c),
						      .val = TAIL_BIT | (uint64_t)(i * 1000 + c) };
	nd->ndurable = nd->nlog;
}

static struct sim *sim_blank(uint64_t seed, int nvoters, int nobservers)
{
	struct sim *s = sim_new(seed, nvoters, nobservers);
	for (int i = 0; i < s->n; i++)
		memset(&s->node[i], 0, sizeof s->node[i]);
	s->acked_max = 0;
	return s;
}

static int64_t last_of(const struct node *nd) { return nd->nlog ? nd->log[nd->nlog - 1].zxid : 0; }

/* Start everyone after an election that chose node 0; `committed`: what the old ensemble
 * committed (every tree holds its prefix of it). */
static void boot_node(struct sim *s, int i, int64_t committed)
{
	struct node *nd = &s->node[i];
	nd->applied = 0;
	for (int k = 0; k < nd->nlog && nd->log[k].zxid <= committed && !(nd->log[k].val & TAIL_BIT); k++) {
		*amap_slot(s, nd->log[k].zxid) = nd->log[k].val;
		nd->applied = nd->log[k].zxid;
	}
	nd->down = false;
	struct quorum_actions acts = { 0 };
	if (i == s->ld) {
		cr_assert_eq(quorum_leader_start(&nd->l, i + 1, s->members, s->n, nd->accepted_file,
						 nd->current_file, last_of(nd), nd->applied, s->log_min,
						 &acts), 0);
		cr_assert_eq(quorum_leader_limits(&nd->l, s->init_limit, s->sync_limit), 0);
	} else {
		cr_assert_eq(quorum_learner_start(&nd->f, i + 1, s->ld + 1, nd->accepted_file, nd->current_file,
						  last_of(nd), nd->applied, i >= s->nvoters, &acts), 0);
		cr_assert_eq(quorum_learner_limits(&nd->f, s->init_limit, s->sync_limit), 0);
	}
	act(s, i, &acts);
}

static void boot(struct sim *s, int64_t committed)
{
	for (int i = 0; i < s->n; i++)
		boot_node(s, i, committed);
}

/* Deliver and flush at random until the leader serves. */
static void until_established(struct sim *s)
{
	for (int k = 0; k < 100000 && s->node[s->ld].l.phase != QUORUM_BROADCAST; k++) {
		if (rnd(s) % 3 == 0)
			make_durable(s, (int)(rnd(s) % (uint64_t)s->n), false);
		else if (!deliver_one(s))
			make_durable(s, (int)(rnd(s) % (uint64_t)s->n), true);
	}
	cr_assert_eq(s->node[s->ld].l.phase, QUORUM_BROADCAST, SEEDF "never established", SEEDA);
}

/* A learner crashes (its links and undurable log die with it) and comes back through
 * discovery and sync; the leader sees the disconnect. */
static void restart_learner(struct sim *s, int i)
{
	struct node *nd = &s->node[i];
	for (int j = 0; j < s->n; j++) /* one learner away at a time, or the leader loses its quorum */
		if (j != s->ld && s->node[s->ld].l.lstate[j] == QL_NONE)
			return;
	for (int j = 0; j < s->n; j++) {
		s->nq -= s->link[i][j].n + s->link[j][i].n;
		s->link[i][j].n = s->link[j][i].n = 0;
	}
	if (nd->snap_pending)
		nd->ndurable = 0; /* the snapshot never reached the disk: an empty dataDir */
	nd->snap_pending = false;
	nd->nlog = nd->ndurable;
	for (uint64_t c = 0; c < s->next_cookie; c++)
		if (s->sync_node[c] == i && s->sync_need[c] >= 0)
			s->sync_need[c] = -2; /* its clients lost their connection, and their syncs */
	struct quorum_event ev = { .type = QUORUM_EV_DISCONNECT, .from = i + 1 };
	step(s, s->ld, &ev);
	int64_t keep = nd->applied < last_of(nd) ? nd->applied : last_of(nd);
	boot_node(s, i, keep);
}

static void settle_and_serve(struct sim *s, int steps, bool restarts)
{
	until_established(s);
	for (int k = 0; k < steps; k++) {
		if (restarts && rnd(s) % 500 == 0)
			restart_learner(s, 1 + (int)(rnd(s) % (uint64_t)(s->n - 1)));
		else
			sim_step(s);
	}
	quiesce(s);
	for (int i = 0; i < s->n; i++)
		cr_assert(i == s->ld || s->node[i].f.phase == QUORUM_BROADCAST,
			  SEEDF "node %d not serving", SEEDA, i + 1);
}

Test(quorum, fresh_ensembles_elect_sync_and_serve, .timeout = 60)
{
	for (int shape = 0; shape < 4; shape++) {
		int nv = shape == 0 ? 3 : shape == 1 ? 5 : shape == 2 ? 3 : 1;
		int no = shape >= 2 ? 2 : 0;
		FOR_SEEDS(seed, 15) {
			struct sim *s = sim_blank(seed, nv, no);
			boot(s, 0);
			settle_and_serve(s, 2000, false);
			cr_assert_eq(s->node[s->ld].l.epoch, 1);
			for (int i = 1; i < s->n; i++)
				cr_assert_eq(s->sync_kind[i], QP_DIFF);
			for (int i = 0; i < s->n; i++)
				cr_assert(s->node[i].current_file == 1 && s->node[i].accepted_file == 1);
			free(s);
		}
	}
}

/* Learners crash and rejoin during broadcast: each comes back through DIFF (or TRUNC,
 * SNAP) and the invariants hold across. */
Test(quorum, learners_restart_and_resync_during_broadcast, .timeout = 60)
{
	FOR_SEEDS(seed, 30) {
		struct sim *s = sim_blank(seed, seed % 2 ? 3 : 5, seed % 3 ? 0 : 1);
		boot(s, 0);
		settle_and_serve(s, 4000, true);
		free(s);
	}
}

static const int hist2[][2] = { { 1, 50 } };

Test(quorum, lagging_follower_gets_diff, .timeout = 30)
{
	FOR_SEEDS(seed, 20) {
		struct sim *s = sim_blank(seed, 3, 1);
		const int lag[][2] = { { 1, 30 } };
		give(s, 0, 1, 1, hist2, 1, 0, 0, 0);
		give(s, 1, 1, 1, lag, 1, 0, 0, 0);
		give(s, 2, 1, 1, hist2, 1, 0, 0, 0);
		give(s, 3, 1, 1, lag, 1, 0, 0, 0);
		boot(s, ZE(1, 25));
		settle_and_serve(s, 1000, false);
		cr_assert_eq(s->node[s->ld].l.epoch, 2);
		for (int i = 1; i < s->n; i++)
			cr_assert_eq(s->sync_kind[i], QP_DIFF, SEEDF "node %d", SEEDA, i + 1);
		free(s);
	}
}

Test(quorum, far_behind_gets_snap, .timeout = 30)
{
	FOR_SEEDS(seed, 20) {
		struct sim *s = sim_blank(seed, 3, 1);
		const int far[][2] = { { 1, 10 } };
		s->log_min = ZE(1, 20); /* the leader's log was purged below this */
		give(s, 0, 1, 1, hist2, 1, 0, 0, 0);
		give(s, 1, 1, 1, far, 1, 0, 0, 0);
		give(s, 2, 1, 1, hist2, 1, 0, 0, 0);
		give(s, 3, 0, 0, NULL, 0, 0, 0, 0); /* an observer with an empty dataDir */
		boot(s, ZE(1, 45));
		settle_and_serve(s, 1000, false);
		cr_assert_eq(s->sync_kind[1], QP_SNAP, SEEDF, SEEDA);
		cr_assert_eq(s->sync_kind[2], QP_DIFF, SEEDF, SEEDA);
		cr_assert_eq(s->sync_kind[3], QP_SNAP, SEEDF, SEEDA);
		free(s);
	}
}

/* Node 3 led epoch 1 and logged proposals no one else has; epoch 2 went on without it.
 * It is truncated back to the history and then diffed, its own txns gone. */
Test(quorum, ex_leader_with_uncommitted_proposals_gets_trunc, .timeout = 30)
{
	FOR_SEEDS(seed, 20) {
		struct sim *s = sim_blank(seed, 3, 0);
		const int h[][2] = { { 1, 30 }, { 2, 10 } };
		const int old[][2] = { { 1, 30 } };
		give(s, 0, 2, 2, h, 2, 0, 0, 0);
		give(s, 1, 2, 2, h, 2, 0, 0, 0);
		give(s, 2, 1, 1, old, 1, 1, 10, 31); /* ZE(1, 31..40), uncommitted */
		boot(s, ZE(2, 5));
		settle_and_serve(s, 1000, false);
		cr_assert_eq(s->sync_kind[2], QP_TRUNC, SEEDF, SEEDA);
		for (int k = 0; k < s->node[2].nlog; k++)
			cr_assert(!(s->node[2].log[k].val & TAIL_BIT), SEEDF "an uncommitted txn survived",
				  SEEDA);
		free(s);
	}
}

/* A learner whose log runs past the leader's (more txns of epoch 1, while the leader and
 * a quorum went on to epoch 2 and logged nothing in it) is cut back. */
Test(quorum, follower_past_the_leader_gets_trunc, .timeout = 30)
{
	FOR_SEEDS(seed, 20) {
		struct sim *s = sim_blank(seed, 3, 0);
		give(s, 0, 2, 2, hist2, 1, 0, 0, 0);
		give(s, 1, 2, 2, hist2, 1, 0, 0, 0);
		give(s, 2, 1, 1, hist2, 1, 1, 5, 51);
		boot(s, ZE(1, 50));
		settle_and_serve(s, 1000, false);
		cr_assert_eq(s->sync_kind[2], QP_TRUNC, SEEDF, SEEDA);
		free(s);
	}
}

/* A learner ahead of the leader in (currentEpoch, zxid), while the epoch is being acked,
 * makes it step down. */
Test(quorum, leader_behind_a_learner_steps_down)
{
	struct sim *s = sim_blank(1, 3, 0);
	s->allow_looking = true;
	const int more[][2] = { { 1, 60 } };
	give(s, 0, 1, 1, hist2, 1, 0, 0, 0);
	give(s, 1, 1, 1, more, 1, 0, 0, 0);
	give(s, 2, 1, 1, hist2, 1, 0, 0, 0);
	s->cut[0][2] = s->cut[2][0] = true; /* the leader needs node 2's ack */
	boot(s, ZE(1, 40));
	for (int k = 0; k < 1000 && deliver_one(s); k++)
		;
	cr_assert(s->node[s->ld].down);
	cr_assert_eq(s->node[s->ld].l.phase, QUORUM_DISCOVERY);
	free(s);
}

Test(quorum, discovery_persists_epochs_in_order)
{
	/* A learner: LEADERINFO of a new epoch asks to persist acceptedEpoch and sends nothing
	 * until that is durable; NEWLEADER waits for the synced log, then currentEpoch. */
	struct quorum_learner f;
	struct quorum_actions a = { 0 };
	cr_assert_eq(quorum_learner_start(&f, 2, 1, 1, 1, ZE(1, 3), ZE(1, 3), false, &a), 0);
	cr_assert(a.n == 1 && a.a[0].ptype == QP_FOLLOWERINFO && a.a[0].zxid == ZE(1, 0));
	a = one(&f, QP_LEADERINFO, ZE(2, 0));
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_PERSIST && a.a[0].which == QUORUM_ACCEPTED_EPOCH &&
		  a.a[0].epoch == 2);
	struct quorum_event ev = { .type = QUORUM_EV_PERSISTED, .which = QUORUM_ACCEPTED_EPOCH };
	a.n = 0;
	cr_assert_eq(quorum_learner_step(&f, &ev, &a), 0);
	cr_assert(a.n == 1 && a.a[0].ptype == QP_ACKEPOCH && a.a[0].zxid == ZE(1, 3) && a.a[0].epoch == 1);
	a = one(&f, QP_DIFF, ZE(1, 5));
	cr_assert_eq(a.n, 0);
	a = one(&f, QP_PROPOSAL, ZE(1, 4));
	a = one(&f, QP_PROPOSAL, ZE(1, 5));
	a = one(&f, QP_NEWLEADER, ZE(2, 0));
	cr_assert_eq(a.n, 0); /* ZE(1, 4..5) are not durable yet */
	struct quorum_event d = { .type = QUORUM_EV_DURABLE, .zxid = ZE(1, 4) };
	a.n = 0;
	cr_assert_eq(quorum_learner_step(&f, &d, &a), 0);
	cr_assert_eq(a.n, 0);
	d.zxid = ZE(1, 5);
	cr_assert_eq(quorum_learner_step(&f, &d, &a), 0);
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_PERSIST && a.a[0].which == QUORUM_CURRENT_EPOCH);
	ev.which = QUORUM_CURRENT_EPOCH;
	a.n = 0;
	cr_assert_eq(quorum_learner_step(&f, &ev, &a), 0);
	cr_assert(a.n == 1 && a.a[0].ptype == QP_ACK && a.a[0].zxid == ZE(2, 0));
	/* A stale leader's LEADERINFO (older than accepted) is refused. */
	a.n = 0;
	cr_assert_eq(quorum_learner_start(&f, 2, 1, 3, 2, 0, 0, false, &a), 0);
	a = one(&f, QP_LEADERINFO, ZE(2, 0));
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING);
}

Test(quorum, a_packet_while_persisting_is_a_driver_bug, .signal = SIGABRT)
{
	struct quorum_learner f;
	struct quorum_actions a = { 0 };
	cr_assert_eq(quorum_learner_start(&f, 2, 1, 1, 1, 0, 0, false, &a), 0);
	a = one(&f, QP_LEADERINFO, ZE(2, 0));
	one(&f, QP_DIFF, 0);
}

Test(quorum, leader_decides_the_epoch_on_a_quorum_of_infos)
{
	struct quorum_member m[] = { { 1, true }, { 2, true }, { 3, true }, { 4, false } };
	struct quorum_leader l;
	struct quorum_actions a = { 0 };
	cr_assert_eq(quorum_leader_start(&l, 1, m, 4, 3, 3, ZE(3, 7), ZE(3, 7), 0, &a), 0);
	cr_assert_eq(a.n, 0); /* alone it is no quorum */
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = 4, .ptype = QP_OBSERVERINFO,
				   .zxid = ZE(9, 0) };
	cr_assert_eq(quorum_leader_step(&l, &ev, &a), 0);
	cr_assert_eq(a.n, 0); /* an observer's epoch counts, its presence does not */
	ev.from = 2;
	ev.ptype = QP_FOLLOWERINFO;
	ev.zxid = ZE(4, 0);
	cr_assert_eq(quorum_leader_step(&l, &ev, &a), 0);
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_PERSIST && a.a[0].epoch == 10);
	/* Writes and syncs wait for the NEWLEADER quorum. */
	struct quorum_event w = { .type = QUORUM_EV_WRITE };
	cr_assert_eq(quorum_leader_step(&l, &w, &a), -EAGAIN);
	w.type = QUORUM_EV_SYNC;
	cr_assert_eq(quorum_leader_step(&l, &w, &a), -EAGAIN);
	/* A second FOLLOWERINFO from the same learner is dropped. */
	a.n = 0;
	cr_assert_eq(quorum_leader_step(&l, &ev, &a), 0);
	cr_assert(a.n == 1 && a.a[0].type == QUORUM_ACT_LOOKING && a.a[0].to == 2);
}

/* ---- liveness: ticks, initLimit, syncLimit ---- */

#define TICK_MS 100 /* message delays are under half a tick */

/* Real time: each tick every live node ticks, then what is due within it is delivered,
 * with writes and disk flushes in between; the disks are flushed by the tick's end. */
static void live_run(struct sim *s, int ticks, bool writes)
{
	for (int t = 0; t < ticks; t++) {
		uint64_t end = s->now + TICK_MS;
		int budget = writes && s->node[s->ld].nlog < LOGMAX - QUORUM_WINDOW_MAX - 10 ? 3 : 0;
		for (int i = 0; i < s->n; i++)
			if (!s->node[i].down) {
				struct quorum_event ev = { .type = QUORUM_EV_TICK };
				step(s, i, &ev);
			}
		for (;;) {
			if (budget > 0 && rnd(s) % 4 == 0) {
				client_write(s);
				budget--;
			}
			if (rnd(s) % 3 == 0)
				make_durable(s, (int)(rnd(s) % (uint64_t)s->n), false);
			if (!deliver_until(s, end))
				break;
		}
		for (int i = 0; i < s->n; i++)
			make_durable(s, i, true);
		s->now = end;
	}
}

static struct sim *live_sim(uint64_t seed, int nvoters, int nobservers)
{
	struct sim *s = sim_blank(seed, nvoters, nobservers);
	s->init_limit = 10;
	s->sync_limit = 5;
	s->allow_looking = true;
	s->delay_max = 40;
	return s;
}

Test(quorum, healthy_ensemble_never_times_out, .timeout = 30)
{
	FOR_SEEDS(seed, 10) {
		struct sim *s = live_sim(seed, 3, 1);
		boot(s, 0);
		live_run(s, 200, true);
		for (int i = 0; i < s->n; i++)
			cr_assert(!s->node[i].down, SEEDF "node %d timed out", SEEDA, i + 1);
		cr_assert_eq(s->node[s->ld].l.phase, QUORUM_BROADCAST);
		cr_assert_gt(s->node[s->ld].l.committed, ZE(1, 0));
		free(s);
	}
}

/* The leader is cut off from its followers: within syncLimit ticks (+1) it steps down,
 * having committed nothing proposed after the cut; the followers leave it too. */
Test(quorum, leader_losing_its_quorum_steps_down_and_commits_nothing_alone, .timeout = 30)
{
	FOR_SEEDS(seed, 10) {
		struct sim *s = live_sim(seed, 5, 0);
		boot(s, 0);
		live_run(s, 50, true);
		cr_assert(!s->node[s->ld].down, SEEDF, SEEDA);
		for (int j = 1; j < s->n; j++)
			s->cut[0][j] = s->cut[j][0] = true;
		int64_t proposed = s->node[s->ld].l.proposed;
		live_run(s, s->sync_limit, true);
		cr_assert(!s->node[s->ld].down, SEEDF "stepped down early", SEEDA);
		live_run(s, 2, true);
		cr_assert(s->node[s->ld].down, SEEDF "leader without a quorum still leads", SEEDA);
		cr_assert_leq(s->node[s->ld].l.committed, proposed, SEEDF, SEEDA);
		for (int i = 1; i < s->n; i++)
			cr_assert(s->node[i].down, SEEDF "node %d still follows", SEEDA, i + 1);
		free(s);
	}
}

/* A minority of the followers cut off: they leave, the leader keeps its quorum. */
Test(quorum, cut_off_followers_leave_and_the_leader_stays, .timeout = 30)
{
	struct sim *s = live_sim(5, 5, 0);
	boot(s, 0);
	live_run(s, 30, true);
	for (int j = 0; j < s->n; j++)
		if (j != 3 && j != 4)
			s->cut[3][j] = s->cut[j][3] = s->cut[4][j] = s->cut[j][4] = true;
	live_run(s, 20, true);
	cr_assert(!s->node[s->ld].down && !s->node[1].down && !s->node[2].down);
	cr_assert(s->node[3].down && s->node[4].down);
	int64_t before = s->node[s->ld].l.committed;
	live_run(s, 10, true);
	cr_assert_gt(s->node[s->ld].l.committed, before);
	free(s);
}

/* No quorum ever joins: the leader gives up after initLimit ticks, a learner that never
 * hears LEADERINFO after initLimit too. */
Test(quorum, discovery_without_a_quorum_times_out, .timeout = 30)
{
	struct sim *s = live_sim(3, 3, 0);
	s->cut[0][1] = s->cut[1][0] = s->cut[0][2] = s->cut[2][0] = true;
	boot(s, 0);
	live_run(s, s->init_limit, false);
	cr_assert(!s->node[s->ld].down && !s->node[1].down);
	live_run(s, 2, false);
	cr_assert(s->node[s->ld].down && s->node[1].down && s->node[2].down);
	free(s);
}

/* ---- the leader crashes: a new one is elected and the ensemble goes on ---- */

/* The leader crashes (keeping only its durable log and epoch files); the others flush
 * and drop their connections; FLE's choice - the voter with the largest (currentEpoch,
 * last zxid) among those up - leads the next epoch; the old leader rejoins once it leads,
 * and its proposals nobody else logged are truncated away. */
static void reelect(struct sim *s)
{
	struct node *old = &s->node[s->ld];
	old->nlog = old->ndurable;
	old->snap_pending = false;
	for (int i = 0; i < s->n; i++) {
		for (int j = 0; j < s->n; j++) {
			s->nq -= s->link[i][j].n;
			s->link[i][j].n = 0;
		}
		struct node *nd = &s->node[i];
		if (nd->snap_pending && nd->ndurable < nd->nlog) /* a half-written snapshot */
			nd->nlog = nd->ndurable = 0;
		nd->snap_pending = false;
		nd->ndurable = nd->nlog; /* the survivors flush as they go LOOKING */
		if (nd->applied > last_of(nd))
			nd->applied = last_of(nd);
	}
	for (uint64_t c = 0; c < s->next_cookie; c++)
		if (s->sync_need[c] >= 0)
			s->sync_need[c] = -2; /* the connections went down with the leader */
	int best = -1;
	for (int i = 0; i < s->nvoters; i++) {
		if (i == s->ld)
			continue;
		const struct node *nd = &s->node[i];
		if (best < 0 || nd->current_file > s->node[best].current_file ||
		    (nd->current_file == s->node[best].current_file && last_of(nd) >= last_of(&s->node[best])))
			best = i;
	}
	int gone = s->ld;
	s->ld = best;
	old->down = true; /* still down while the others elect and sync */
	for (int i = 0; i < s->n; i++)
		if (i != gone)
			boot_node(s, i, s->node[i].applied);
	until_established(s);
	boot_node(s, gone, old->applied); /* it comes back as a learner */
}

Test(quorum, leaders_crash_and_the_next_keeps_every_commit, .timeout = 60)
{
	FOR_SEEDS(seed, 30) {
		struct sim *s = sim_blank(seed, seed % 2 ? 3 : 5, seed % 3 ? 0 : 1);
		boot(s, 0);
		for (int round = 0; round < 4; round++) {
			until_established(s);
			for (int k = 0; k < 1500; k++)
				sim_step(s);
			reelect(s);
		}
		settle_and_serve(s, 1000, false);
		cr_assert_geq(s->node[s->ld].l.epoch, 5, SEEDF, SEEDA);
		free(s);
	}
}

/* A learner silent past syncLimit is dropped on its own (LearnerHandler's socket timeout),
 * while the leader, still heard by a quorum, stays: what it queues for a stalled learner
 * cannot pile up. */
Test(quorum, leader_drops_one_silent_learner_and_stays)
{
	struct quorum_member m[] = { { 1, true }, { 2, true }, { 3, true } };
	struct quorum_leader l;
	cr_assert_eq(quorum_leader_init(&l, 1, EPOCH, BASE_ZXID, m, 3), 0);
	bool dropped = false;
	for (int t = 0; t < QUORUM_SYNC_LIMIT + 2; t++) {
		struct quorum_actions a = { 0 };
		struct quorum_event tick = { .type = QUORUM_EV_TICK };
		cr_assert_eq(quorum_leader_step(&l, &tick, &a), 0);
		for (int k = 0; k < a.n; k++) {
			cr_assert(!(a.a[k].type == QUORUM_ACT_LOOKING && a.a[k].to == 1), "stepped down");
			cr_assert(!(a.a[k].type == QUORUM_ACT_LOOKING && a.a[k].to == 2), "dropped a live one");
			dropped |= a.a[k].type == QUORUM_ACT_LOOKING && a.a[k].to == 3;
		}
		struct quorum_event echo = { .type = QUORUM_EV_PACKET, .from = 2, .ptype = QP_PING,
					     .zxid = (int64_t)l.round };
		a.n = 0;
		cr_assert_eq(quorum_leader_step(&l, &echo, &a), 0);
	}
	cr_assert(dropped, "the silent learner was never dropped");
	cr_assert(!l.lost);
}
