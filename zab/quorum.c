/* ZAB's broadcast phase as two pure state machines; see quorum.h for the rules. */
#include "zab/quorum.h"
#include "net/log.h"

#include <errno.h>
#include <string.h>

#define ZXID_EPOCH(z) ((int64_t)((uint64_t)(z) >> 32))
#define ZXID_COUNTER(z) ((uint32_t)((uint64_t)(z) & 0xffffffffu))

static struct quorum_action *push(struct quorum_actions *out, enum quorum_act_type type)
{
	ZK_ASSERT(out->n >= 0 && out->n < QUORUM_ACTIONS_MAX);
	struct quorum_action *a = &out->a[out->n++];
	memset(a, 0, sizeof *a);
	a->type = type;
	return a;
}

static void put_send(struct quorum_actions *out, int64_t to, int32_t ptype, int64_t from, int64_t zxid)
{
	struct quorum_action *a = push(out, QUORUM_ACT_SEND);
	a->to = to;
	a->ptype = ptype;
	a->from = from;
	a->zxid = zxid;
}

static void apply_range(struct quorum_actions *out, int64_t from, int64_t to)
{
	ZK_ASSERT(from < to);
	struct quorum_action *a = push(out, QUORUM_ACT_APPLY);
	a->from = from;
	a->zxid = to;
}

/* The zxid that follows `z` in epoch `epoch`: counters restart at 1 in a new epoch. */
static int64_t next_zxid(int64_t z, int64_t epoch)
{
	return ZXID_EPOCH(z) == epoch ? z + 1 : (int64_t)((uint64_t)epoch << 32 | 1u);
}

/* ---- leader ---- */

static int leader_index(const struct quorum_leader *l, int64_t sid)
{
	for (int i = 0; i < l->nmembers; i++)
		if (l->members[i].sid == sid)
			return i;
	return -1;
}

int quorum_leader_init(struct quorum_leader *l, int64_t my_sid, int64_t epoch, int64_t last_zxid,
		       const struct quorum_member *members, int n)
{
	if (n < 1 || n > QUORUM_SERVERS_MAX || epoch <= 0 || epoch > UINT32_MAX || last_zxid < 0 ||
	    ZXID_EPOCH(last_zxid) > epoch)
		return -EINVAL;
	memset(l, 0, sizeof *l);
	l->my_sid = my_sid;
	l->epoch = epoch;
	for (int i = 0; i < n; i++) {
		if (leader_index(l, members[i].sid) >= 0)
			return -EINVAL;
		l->members[l->nmembers++] = members[i];
		l->nvoters += members[i].voter;
		l->acked[i] = last_zxid; /* synchronization left everyone at last_zxid */
	}
	l->me = leader_index(l, my_sid);
	if (l->me < 0 || !l->members[l->me].voter)
		return -EINVAL;
	l->proposed = l->committed = last_zxid;
	l->counter = ZXID_EPOCH(last_zxid) == epoch ? ZXID_COUNTER(last_zxid) : 0;
	return 0;
}

/* The largest value a quorum of voters has reached: the (nvoters/2+1)-th largest. */
static int64_t quorum_value(const struct quorum_leader *l, const int64_t *v)
{
	int64_t s[QUORUM_SERVERS_MAX];
	int n = 0;
	for (int i = 0; i < l->nmembers; i++) {
		if (!l->members[i].voter)
			continue;
		int j = n++;
		for (; j > 0 && s[j - 1] < v[i]; j--) /* insertion, descending */
			s[j] = s[j - 1];
		s[j] = v[i];
	}
	ZK_ASSERT(n == l->nvoters && n > 0);
	return s[n / 2];
}

/* Proposals sent and not yet committed. */
static uint32_t outstanding(const struct quorum_leader *l)
{
	if (ZXID_EPOCH(l->proposed) != l->epoch)
		return 0;
	uint32_t base = ZXID_EPOCH(l->committed) == l->epoch ? ZXID_COUNTER(l->committed) : 0;
	ZK_ASSERT(ZXID_COUNTER(l->proposed) >= base);
	return ZXID_COUNTER(l->proposed) - base;
}

static void leader_answer_syncs(struct quorum_leader *l, struct quorum_actions *out)
{
	int64_t echoed[QUORUM_SERVERS_MAX] = { 0 };
	for (int i = 0; i < l->nmembers; i++)
		echoed[i] = (int64_t)l->echoed[i];
	uint64_t confirmed = (uint64_t)quorum_value(l, echoed);
	int32_t answers[QUORUM_SERVERS_MAX] = { 0 };
	while (l->nsyncs > 0) {
		const struct quorum_leader_sync *s = &l->syncs[l->sync_head];
		if (s->round > confirmed || s->proposed > l->committed)
			break; /* the rest arrived later: rounds and proposals only grow */
		ZK_ASSERT(l->pending[s->member] > 0);
		l->pending[s->member]--;
		if (s->member == l->me)
			push(out, QUORUM_ACT_SYNC_DONE)->cookie = s->cookie;
		else
			answers[s->member]++;
		l->sync_head = (l->sync_head + 1) % QUORUM_LEADER_SYNCS_MAX;
		l->nsyncs--;
	}
	for (int i = 0; i < l->nmembers; i++) /* each learner's answers keep its own order */
		if (answers[i] > 0) {
			struct quorum_action *a = push(out, QUORUM_ACT_SEND);
			a->to = l->members[i].sid;
			a->ptype = QP_SYNC;
			a->zxid = l->committed;
			a->count = answers[i];
		}
}

static void leader_try_commit(struct quorum_leader *l, struct quorum_actions *out)
{
	int64_t c = quorum_value(l, l->acked);
	if (c > l->proposed)
		c = l->proposed;
	if (c > l->committed) {
		int64_t old = l->committed;
		ZK_ASSERT(ZXID_EPOCH(c) == l->epoch);
		l->committed = c;
		for (int i = 0; i < l->nmembers; i++)
			if (i != l->me)
				put_send(out, l->members[i].sid, l->members[i].voter ? QP_COMMIT : QP_INFORM,
				     old, c);
		apply_range(out, old, c);
	}
	leader_answer_syncs(l, out);
}

/* A new PING round: voters echo it, and a quorum of echoes proves we still lead. */
static void leader_ping(struct quorum_leader *l, struct quorum_actions *out)
{
	l->round++;
	l->echoed[l->me] = l->round;
	for (int i = 0; i < l->nmembers; i++)
		if (i != l->me)
			put_send(out, l->members[i].sid, QP_PING, 0, (int64_t)l->round);
}

static int leader_write(struct quorum_leader *l, struct quorum_actions *out)
{
	/* Apache forces a new election when the counter would roll over; so do we, by
	 * refusing: the driver re-elects (the liveness layer owns that). */
	if (outstanding(l) >= QUORUM_WINDOW_MAX || l->counter == UINT32_MAX)
		return -EBUSY;
	l->counter++;
	l->proposed = (int64_t)((uint64_t)l->epoch << 32 | l->counter);
	push(out, QUORUM_ACT_APPEND)->zxid = l->proposed;
	for (int i = 0; i < l->nmembers; i++)
		if (i != l->me && l->members[i].voter)
			put_send(out, l->members[i].sid, QP_PROPOSAL, 0, l->proposed);
	return 0;
}

/* A sync from member i's client: a learner may have QUORUM_SYNCS_MAX waiting, as may we. */
static int leader_sync(struct quorum_leader *l, int i, uint64_t cookie, struct quorum_actions *out)
{
	if (l->pending[i] == QUORUM_SYNCS_MAX)
		return -EBUSY;
	ZK_ASSERT(l->nsyncs < QUORUM_LEADER_SYNCS_MAX);
	leader_ping(l, out);
	int tail = (l->sync_head + l->nsyncs) % QUORUM_LEADER_SYNCS_MAX;
	l->syncs[tail] = (struct quorum_leader_sync){ .cookie = cookie, .round = l->round,
						      .proposed = l->proposed, .member = i };
	l->nsyncs++;
	l->pending[i]++;
	leader_answer_syncs(l, out); /* a lone voter is its own quorum */
	return 0;
}

static void drop_learner(struct quorum_actions *out, int64_t sid, const char *why)
{
	LOG_WARN("quorum: dropping learner %lld: %s", (long long)sid, why);
	push(out, QUORUM_ACT_LOOKING)->to = sid;
}

static void leader_packet(struct quorum_leader *l, const struct quorum_event *ev,
			  struct quorum_actions *out)
{
	int i = leader_index(l, ev->from);
	if (i < 0 || i == l->me) {
		LOG_WARN("quorum: packet from unknown sid %lld ignored", (long long)ev->from);
		return;
	}
	switch (ev->ptype) {
	case QP_ACK:
		if (!l->members[i].voter || ev->zxid > l->proposed) {
			drop_learner(out, ev->from, "ACK of a zxid never proposed to it");
			return;
		}
		if (ev->zxid > l->acked[i])
			l->acked[i] = ev->zxid;
		leader_try_commit(l, out);
		return;
	case QP_PING:
		if (ev->zxid < 0 || (uint64_t)ev->zxid > l->round) {
			drop_learner(out, ev->from, "PING echo of a round never started");
			return;
		}
		if ((uint64_t)ev->zxid > l->echoed[i])
			l->echoed[i] = (uint64_t)ev->zxid;
		leader_answer_syncs(l, out);
		return;
	case QP_SYNC:
		if (leader_sync(l, i, 0, out) < 0)
			drop_learner(out, ev->from, "more syncs waiting than a learner may have");
		return;
	default:
		LOG_WARN("quorum: packet type %d from %lld ignored", ev->ptype, (long long)ev->from);
	}
}

int quorum_leader_step(struct quorum_leader *l, const struct quorum_event *ev,
		       struct quorum_actions *out)
{
	ZK_ASSERT(l->committed <= l->proposed && l->acked[l->me] <= l->proposed);
	switch (ev->type) {
	case QUORUM_EV_PACKET:
		leader_packet(l, ev, out);
		break;
	case QUORUM_EV_DURABLE:
		ZK_ASSERT(ev->zxid <= l->proposed); /* the driver only logs what we appended */
		if (ev->zxid > l->acked[l->me])
			l->acked[l->me] = ev->zxid;
		leader_try_commit(l, out);
		break;
	case QUORUM_EV_WRITE:
		return leader_write(l, out);
	case QUORUM_EV_SYNC:
		return leader_sync(l, l->me, ev->cookie, out);
	case QUORUM_EV_TICK:
		leader_ping(l, out);
		leader_answer_syncs(l, out);
		break;
	default:
		return -EINVAL;
	}
	ZK_ASSERT(l->committed <= l->proposed && l->nsyncs <= QUORUM_LEADER_SYNCS_MAX);
	return 0;
}

/* ---- learner ---- */

int quorum_learner_init(struct quorum_learner *f, int64_t my_sid, int64_t leader_sid,
			int64_t epoch, int64_t last_zxid, bool observer)
{
	if (my_sid == leader_sid || epoch <= 0 || epoch > UINT32_MAX || last_zxid < 0 ||
	    ZXID_EPOCH(last_zxid) > epoch)
		return -EINVAL;
	memset(f, 0, sizeof *f);
	f->my_sid = my_sid;
	f->leader_sid = leader_sid;
	f->epoch = epoch;
	f->observer = observer;
	f->appended = f->durable = f->acked = f->committed = f->applied = last_zxid;
	return 0;
}

static void learner_lost(struct quorum_learner *f, struct quorum_actions *out, const char *why)
{
	LOG_WARN("quorum: sid %lld leaves leader %lld: %s", (long long)f->my_sid,
		 (long long)f->leader_sid, why);
	f->lost = true;
	push(out, QUORUM_ACT_LOOKING)->to = f->leader_sid;
}

static void learner_answer_syncs(struct quorum_learner *f, struct quorum_actions *out)
{
	int k = 0;
	for (; k < f->nsyncs && f->syncs[k].answered && f->syncs[k].answer <= f->applied; k++)
		push(out, QUORUM_ACT_SYNC_DONE)->cookie = f->syncs[k].cookie;
	if (k > 0) {
		memmove(f->syncs, f->syncs + k, (size_t)(f->nsyncs - k) * sizeof f->syncs[0]);
		f->nsyncs -= k;
	}
}

static void learner_apply(struct quorum_learner *f, struct quorum_actions *out)
{
	int64_t to = f->committed < f->appended ? f->committed : f->appended;
	if (to > f->applied) {
		apply_range(out, f->applied, to);
		f->applied = to;
	}
	learner_answer_syncs(f, out);
}

/* PROPOSAL (follower) or INFORM (observer): the next zxid of our epoch, appended. */
static bool learner_append(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	if (ZXID_EPOCH(zxid) != f->epoch || zxid != next_zxid(f->appended, f->epoch))
		return false;
	push(out, QUORUM_ACT_APPEND)->zxid = zxid;
	f->appended = zxid;
	return true;
}

static void learner_sync_answer(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	int k = 0;
	while (k < f->nsyncs && f->syncs[k].answered)
		k++;
	if (k == f->nsyncs || zxid > f->committed) {
		learner_lost(f, out, "sync answer we did not ask for, or ahead of commits");
		return;
	}
	f->syncs[k].answered = true;
	f->syncs[k].answer = zxid;
	learner_answer_syncs(f, out);
}

static void learner_packet(struct quorum_learner *f, const struct quorum_event *ev,
			   struct quorum_actions *out)
{
	if (ev->from != f->leader_sid) {
		LOG_WARN("quorum: packet from %lld, not our leader, ignored", (long long)ev->from);
		return;
	}
	switch (ev->ptype) {
	case QP_PROPOSAL:
		if (f->observer || !learner_append(f, ev->zxid, out))
			learner_lost(f, out, "PROPOSAL out of order or of another epoch");
		return;
	case QP_INFORM:
		if (!f->observer || !learner_append(f, ev->zxid, out)) {
			learner_lost(f, out, "INFORM out of order or of another epoch");
			return;
		}
		f->committed = ev->zxid;
		learner_apply(f, out);
		return;
	case QP_COMMIT:
		/* COMMITs come in zxid order for zxids proposed to us (FIFO link). */
		if (f->observer || ev->zxid <= f->committed || ev->zxid > f->appended) {
			learner_lost(f, out, "COMMIT of a zxid not pending here");
			return;
		}
		f->committed = ev->zxid;
		learner_apply(f, out);
		return;
	case QP_PING:
		put_send(out, f->leader_sid, QP_PING, 0, ev->zxid);
		return;
	case QP_SYNC:
		learner_sync_answer(f, ev->zxid, out);
		return;
	default:
		LOG_WARN("quorum: packet type %d from leader ignored", ev->ptype);
	}
}

int quorum_learner_step(struct quorum_learner *f, const struct quorum_event *ev,
			struct quorum_actions *out)
{
	if (f->lost)
		return 0;
	ZK_ASSERT(f->applied <= f->committed || f->applied <= f->appended);
	switch (ev->type) {
	case QUORUM_EV_PACKET:
		learner_packet(f, ev, out);
		break;
	case QUORUM_EV_DURABLE:
		ZK_ASSERT(ev->zxid >= f->durable && ev->zxid <= f->appended);
		f->durable = ev->zxid;
		if (!f->observer && f->durable > f->acked) {
			put_send(out, f->leader_sid, QP_ACK, f->acked, f->durable);
			f->acked = f->durable;
		}
		break;
	case QUORUM_EV_SYNC:
		if (f->nsyncs == QUORUM_SYNCS_MAX)
			return -EBUSY;
		f->syncs[f->nsyncs++] = (struct quorum_sync){ .cookie = ev->cookie };
		put_send(out, f->leader_sid, QP_SYNC, 0, 0);
		out->a[out->n - 1].count = 1;
		break;
	default:
		return -EINVAL;
	}
	ZK_ASSERT(f->applied <= f->appended && f->acked <= f->durable);
	return 0;
}
