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

/* One packet per zxid of the sender's log in (from, to]: COMMIT, INFORM, ACK, PROPOSAL. */
static void put_range(struct quorum_actions *out, int64_t to, int32_t ptype, int64_t from,
		      int64_t zxid)
{
	ZK_ASSERT(from < zxid);
	put_send(out, to, ptype, from, zxid);
	out->a[out->n - 1].range = true;
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
	l->proposed = l->committed = l->history_end = last_zxid;
	l->counter = ZXID_EPOCH(last_zxid) == epoch ? ZXID_COUNTER(last_zxid) : 0;
	l->phase = QUORUM_BROADCAST;
	l->init_limit = QUORUM_INIT_LIMIT;
	l->sync_limit = QUORUM_SYNC_LIMIT;
	l->epoch_decided = l->accepted_persisted = l->epoch_acked = l->current_persisted = true;
	l->accepted_epoch = l->current_epoch = epoch;
	for (int i = 0; i < n; i++)
		l->lstate[i] = QL_UPTODATE;
	return 0;
}

/* Learner i gets what we broadcast: its sync stream went out before. */
static bool forwarding(const struct quorum_leader *l, int i)
{
	return i != l->me && l->lstate[i] >= QL_SYNCING;
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
		if (s->member < 0) { /* its learner disconnected */
			l->sync_head = (l->sync_head + 1) % QUORUM_LEADER_SYNCS_MAX;
			l->nsyncs--;
			continue;
		}
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
	if (l->phase != QUORUM_BROADCAST)
		return; /* the NEWLEADER quorum commits the history first (leader_establish) */
	int64_t c = quorum_value(l, l->acked);
	if (c > l->proposed)
		c = l->proposed;
	if (c > l->committed) {
		int64_t old = l->committed;
		ZK_ASSERT(ZXID_EPOCH(c) == l->epoch || c == l->history_end);
		l->committed = c;
		for (int i = 0; i < l->nmembers; i++)
			if (forwarding(l, i))
				put_range(out, l->members[i].sid, l->members[i].voter ? QP_COMMIT : QP_INFORM,
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
		if (forwarding(l, i))
			put_send(out, l->members[i].sid, QP_PING, 0, (int64_t)l->round);
}

static int leader_write(struct quorum_leader *l, struct quorum_actions *out)
{
	/* Apache forces a new election when the counter would roll over; so do we, by
	 * refusing: the driver re-elects (the liveness layer owns that). */
	if (l->phase != QUORUM_BROADCAST)
		return -EAGAIN; /* not serving until a quorum acked NEWLEADER */
	if (outstanding(l) >= QUORUM_WINDOW_MAX || l->counter == UINT32_MAX)
		return -EBUSY;
	l->counter++;
	l->proposed = (int64_t)((uint64_t)l->epoch << 32 | l->counter);
	push(out, QUORUM_ACT_APPEND)->zxid = l->proposed;
	for (int i = 0; i < l->nmembers; i++)
		if (forwarding(l, i) && l->members[i].voter)
			put_send(out, l->members[i].sid, QP_PROPOSAL, 0, l->proposed);
	return 0;
}

/* A sync from member i's client: a learner may have QUORUM_SYNCS_MAX waiting, as may we. */
static int leader_sync(struct quorum_leader *l, int i, uint64_t cookie, struct quorum_actions *out)
{
	if (l->phase != QUORUM_BROADCAST)
		return -EAGAIN;
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

/* ---- leader: discovery and synchronization ---- */

static void persist(struct quorum_actions *out, int32_t which, int64_t epoch)
{
	struct quorum_action *a = push(out, QUORUM_ACT_PERSIST);
	a->which = which;
	a->epoch = epoch;
}

/* Do the voters in state >= `at` (we count as there) form a quorum? */
static bool voters_at(const struct quorum_leader *l, enum quorum_lstate at)
{
	int count = 0;
	for (int i = 0; i < l->nmembers; i++)
		count += l->members[i].voter && (i == l->me || l->lstate[i] >= at);
	return count > l->nvoters / 2;
}

/* getEpochToPropose: once a quorum of voters told us their acceptedEpoch, the new epoch is
 * one past every acceptedEpoch we heard (observers' too) and ours; persisted first. */
static void leader_try_decide(struct quorum_leader *l, struct quorum_actions *out)
{
	if (l->epoch_decided || !voters_at(l, QL_INFO))
		return;
	int64_t max = l->accepted_epoch;
	for (int i = 0; i < l->nmembers; i++)
		if (i != l->me && l->lstate[i] >= QL_INFO && l->info_epoch[i] > max)
			max = l->info_epoch[i];
	ZK_ASSERT(max >= 0 && max < UINT32_MAX);
	l->epoch = max + 1;
	l->epoch_decided = true;
	l->stage_tick = l->tick;
	persist(out, QUORUM_ACCEPTED_EPOCH, l->epoch);
}

/* syncFollower: what learner i, whose log ends at `last`, needs from our log. `floor` is the
 * largest zxid of our log <= last (-1: below log_min). Committed txns go with their COMMIT;
 * the uncommitted tail as bare PROPOSALs, whose COMMIT (or INFORM) follows like any other. */
static void leader_sync_learner(struct quorum_leader *l, int i, int64_t last, int64_t floor,
				struct quorum_actions *out)
{
	int64_t sid = l->members[i].sid;
	bool voter = l->members[i].voter;
	int64_t from;
	if (last == l->proposed) {
		put_send(out, sid, QP_DIFF, 0, l->proposed);
		from = last;
	} else if (last > l->proposed) {
		put_send(out, sid, QP_TRUNC, 0, l->proposed);
		from = l->proposed;
	} else if (floor >= l->log_min && floor >= 0) {
		ZK_ASSERT(floor <= last);
		put_send(out, sid, floor == last ? QP_DIFF : QP_TRUNC, 0,
			 floor == last ? l->proposed : floor);
		from = floor;
	} else {
		put_send(out, sid, QP_SNAP, 0, l->committed);
		from = l->committed;
	}
	int64_t end = voter ? l->proposed : l->committed; /* observers only get INFORMs */
	if (from < l->committed) {
		struct quorum_action *a = push(out, QUORUM_ACT_SEND);
		*a = (struct quorum_action){ .type = QUORUM_ACT_SEND, .to = sid, .ptype = QP_PROPOSAL,
					     .from = from, .zxid = l->committed, .range = true,
					     .with_commit = true };
		from = l->committed;
	}
	if (from < end)
		put_range(out, sid, QP_PROPOSAL, from, end);
	put_send(out, sid, QP_NEWLEADER, 0, (int64_t)((uint64_t)l->epoch << 32));
	l->sync_end[i] = end;
	l->lstate[i] = QL_SYNCING;
}

/* Phase 2 ends: a quorum of voters (us included, once our currentEpoch is on disk) has the
 * history durable under the new epoch. Commit it, tell them UPTODATE, start serving. */
static void leader_try_establish(struct quorum_leader *l, struct quorum_actions *out)
{
	if (l->phase != QUORUM_SYNCHRONIZATION || !l->current_persisted ||
	    !voters_at(l, QL_NEWLEADER_ACKED))
		return;
	l->phase = QUORUM_BROADCAST;
	for (int i = 0; i < l->nmembers; i++) /* the syncLimit clock starts now for everyone */
		l->heard[i] = l->tick;
	LOG_INFO("quorum: sid %lld leads epoch %lld from zxid 0x%llx", (long long)l->my_sid,
		 (long long)l->epoch, (unsigned long long)l->history_end);
	leader_try_commit(l, out);
	ZK_ASSERT(l->committed == l->history_end);
	for (int i = 0; i < l->nmembers; i++)
		if (i != l->me && l->lstate[i] == QL_NEWLEADER_ACKED) {
			put_send(out, l->members[i].sid, QP_UPTODATE, 0, 0);
			l->lstate[i] = QL_UPTODATE;
		}
}

/* waitForEpochAck: a quorum of voters acked the epoch; our currentEpoch follows (on disk
 * before we count our own NEWLEADER ack), and every learner that acked is synced. */
static void leader_try_epoch_acked(struct quorum_leader *l, struct quorum_actions *out)
{
	if (l->epoch_acked || !l->accepted_persisted || !voters_at(l, QL_EPOCH_ACKED))
		return;
	l->epoch_acked = true;
	l->stage_tick = l->tick;
	l->phase = QUORUM_SYNCHRONIZATION;
	persist(out, QUORUM_CURRENT_EPOCH, l->epoch);
	for (int i = 0; i < l->nmembers; i++)
		if (i != l->me && l->lstate[i] == QL_EPOCH_ACKED)
			leader_sync_learner(l, i, l->ack_last[i], l->ack_floor[i], out);
}

static void leader_persisted(struct quorum_leader *l, int32_t which, struct quorum_actions *out)
{
	if (which == QUORUM_ACCEPTED_EPOCH) {
		ZK_ASSERT(l->epoch_decided && !l->accepted_persisted);
		l->accepted_persisted = true;
		l->accepted_epoch = l->epoch;
		for (int i = 0; i < l->nmembers; i++)
			if (i != l->me && l->lstate[i] == QL_INFO)
				put_send(out, l->members[i].sid, QP_LEADERINFO, 0,
					 (int64_t)((uint64_t)l->epoch << 32));
		leader_try_epoch_acked(l, out); /* a lone voter is its own quorum */
		return;
	}
	ZK_ASSERT(which == QUORUM_CURRENT_EPOCH && l->epoch_acked && !l->current_persisted);
	l->current_persisted = true;
	l->current_epoch = l->epoch;
	leader_try_establish(l, out);
}

static void leader_info(struct quorum_leader *l, int i, const struct quorum_event *ev,
			struct quorum_actions *out)
{
	bool voter = l->members[i].voter;
	if (l->lstate[i] != QL_NONE || ev->zxid < 0 || (ev->ptype == QP_OBSERVERINFO) == voter) {
		drop_learner(out, ev->from, "unexpected or mistyped FOLLOWERINFO/OBSERVERINFO");
		return;
	}
	l->lstate[i] = QL_INFO;
	l->info_epoch[i] = ZXID_EPOCH(ev->zxid);
	if (l->accepted_persisted)
		put_send(out, ev->from, QP_LEADERINFO, 0, (int64_t)((uint64_t)l->epoch << 32));
	else
		leader_try_decide(l, out);
}

static void leader_ackepoch(struct quorum_leader *l, int i, const struct quorum_event *ev,
			    struct quorum_actions *out)
{
	if (l->lstate[i] != QL_INFO || !l->accepted_persisted || ev->zxid < 0) {
		drop_learner(out, ev->from, "ACKEPOCH out of turn");
		return;
	}
	/* waitForEpochAck: while the epoch is being acked, a learner with a later
	 * (currentEpoch, zxid) than ours must not follow us - the leader gives up ("Follower is
	 * ahead of the leader"). Later ones are not checked (Apache neither): the quorum that
	 * acked had nothing past us, so what such a learner has past us was never committed. */
	if (!l->epoch_acked && (ev->epoch > l->current_epoch ||
				(ev->epoch == l->current_epoch && ev->zxid > l->history_end))) {
		LOG_WARN("quorum: learner %lld is ahead of us; stepping down", (long long)ev->from);
		push(out, QUORUM_ACT_LOOKING)->to = l->my_sid;
		return;
	}
	l->lstate[i] = QL_EPOCH_ACKED;
	l->ack_last[i] = ev->zxid;
	l->ack_floor[i] = ev->floor;
	if (l->epoch_acked)
		leader_sync_learner(l, i, ev->zxid, ev->floor, out);
	else
		leader_try_epoch_acked(l, out);
}

/* An ACK: of NEWLEADER from a syncing learner (its log is the synced one, durable, under
 * our epoch), else cumulative "durable up to zxid" from a voter. */
static void leader_ack(struct quorum_leader *l, int i, const struct quorum_event *ev,
		       struct quorum_actions *out)
{
	bool voter = l->members[i].voter;
	if (l->lstate[i] == QL_SYNCING) {
		if (ev->zxid != (int64_t)((uint64_t)l->epoch << 32)) {
			drop_learner(out, ev->from, "ACK before NEWLEADER's");
			return;
		}
		if (voter && l->sync_end[i] > l->acked[i])
			l->acked[i] = l->sync_end[i];
		l->lstate[i] = QL_NEWLEADER_ACKED;
		if (l->phase == QUORUM_BROADCAST) {
			put_send(out, ev->from, QP_UPTODATE, 0, 0);
			l->lstate[i] = QL_UPTODATE;
			leader_try_commit(l, out);
		} else {
			leader_try_establish(l, out);
		}
		return;
	}
	if (!voter || l->lstate[i] < QL_NEWLEADER_ACKED || ev->zxid > l->proposed) {
		drop_learner(out, ev->from, "ACK of a zxid never proposed to it");
		return;
	}
	if (ev->zxid > l->acked[i])
		l->acked[i] = ev->zxid;
	leader_try_commit(l, out);
}

static void leader_packet(struct quorum_leader *l, const struct quorum_event *ev,
			  struct quorum_actions *out)
{
	int i = leader_index(l, ev->from);
	if (i < 0 || i == l->me) {
		LOG_WARN("quorum: packet from unknown sid %lld ignored", (long long)ev->from);
		return;
	}
	l->heard[i] = l->tick;
	switch (ev->ptype) {
	case QP_FOLLOWERINFO:
	case QP_OBSERVERINFO:
		leader_info(l, i, ev, out);
		return;
	case QP_ACKEPOCH:
		leader_ackepoch(l, i, ev, out);
		return;
	case QP_ACK:
		leader_ack(l, i, ev, out);
		return;
	case QP_PING:
		if (!forwarding(l, i) || ev->zxid < 0 || (uint64_t)ev->zxid > l->round) {
			drop_learner(out, ev->from, "PING echo of a round never started");
			return;
		}
		if ((uint64_t)ev->zxid > l->echoed[i])
			l->echoed[i] = (uint64_t)ev->zxid;
		leader_answer_syncs(l, out);
		return;
	case QP_SYNC:
		if (l->lstate[i] != QL_UPTODATE || leader_sync(l, i, 0, out) < 0)
			drop_learner(out, ev->from, "sync before UPTODATE, or more than it may have");
		return;
	default:
		LOG_WARN("quorum: packet type %d from %lld ignored", ev->ptype, (long long)ev->from);
	}
}

/* Learner i is gone: it comes back through discovery and a sync; its clients' syncs went
 * with its connection (a new one must not get their answers). */
static void leader_forget(struct quorum_leader *l, int i)
{
	l->lstate[i] = QL_NONE;
	for (int k = 0; k < l->nsyncs; k++) {
		struct quorum_leader_sync *s = &l->syncs[(l->sync_head + k) % QUORUM_LEADER_SYNCS_MAX];
		if (s->member == i)
			s->member = -1;
	}
	l->pending[i] = 0;
}

int quorum_leader_start(struct quorum_leader *l, int64_t my_sid,
			const struct quorum_member *members, int n, int64_t accepted_epoch,
			int64_t current_epoch, int64_t last_zxid, int64_t committed_zxid,
			int64_t log_min, struct quorum_actions *out)
{
	if (accepted_epoch < current_epoch || current_epoch < 0 || accepted_epoch >= UINT32_MAX ||
	    committed_zxid > last_zxid || committed_zxid < 0 || log_min > last_zxid ||
	    ZXID_EPOCH(last_zxid) > accepted_epoch)
		return -EINVAL;
	int rc = quorum_leader_init(l, my_sid, accepted_epoch + 1, last_zxid, members, n);
	if (rc < 0)
		return rc;
	l->phase = QUORUM_DISCOVERY;
	l->epoch = 0;
	l->epoch_decided = l->accepted_persisted = l->epoch_acked = l->current_persisted = false;
	l->accepted_epoch = accepted_epoch;
	l->current_epoch = current_epoch;
	l->committed = committed_zxid;
	l->log_min = log_min;
	l->counter = 0; /* the new epoch's counter starts over */
	for (int i = 0; i < n; i++) {
		l->lstate[i] = QL_NONE;
		l->acked[i] = i == l->me ? last_zxid : -1; /* nobody else's log counts yet */
	}
	leader_try_decide(l, out);
	return 0;
}

int quorum_leader_limits(struct quorum_leader *l, int init_limit, int sync_limit)
{
	if (init_limit < 1 || sync_limit < 1)
		return -EINVAL;
	l->init_limit = init_limit;
	l->sync_limit = sync_limit;
	return 0;
}

static void leader_step_down(struct quorum_leader *l, struct quorum_actions *out, const char *why)
{
	LOG_WARN("quorum: sid %lld stops leading epoch %lld: %s", (long long)l->my_sid,
		 (long long)l->epoch, why);
	l->lost = true;
	push(out, QUORUM_ACT_LOOKING)->to = l->my_sid;
}

/* Apache's lead() loop: a quorum of voters must have been heard within syncLimit ticks
 * (learners answer every PING); a discovery or sync stage may last initLimit ticks. */
static void leader_tick(struct quorum_leader *l, struct quorum_actions *out)
{
	l->tick++;
	if (l->phase != QUORUM_BROADCAST) {
		if (l->tick - l->stage_tick > (uint64_t)l->init_limit)
			leader_step_down(l, out, "no quorum within initLimit");
		return;
	}
	/* LearnerHandler.synced(): connected and heard from by its deadline - syncLimit once
	 * it acked NEWLEADER, initLimit + syncLimit while it is still being synced. */
	int count = 0;
	for (int i = 0; i < l->nmembers; i++) {
		uint64_t limit = (uint64_t)l->sync_limit +
				 (l->lstate[i] >= QL_NEWLEADER_ACKED ? 0 : (uint64_t)l->init_limit);
		bool alive = i == l->me || (l->lstate[i] >= QL_INFO && l->tick - l->heard[i] <= limit);
		if (!alive && i != l->me && l->lstate[i] >= QL_INFO) {
			/* LearnerHandler's socket timeout: a silent learner is dropped on its own,
			 * before what we queue for it piles up; it comes back through a sync. */
			drop_learner(out, l->members[i].sid, "nothing heard within the limit");
			leader_forget(l, i);
		}
		count += l->members[i].voter && alive;
	}
	if (count <= l->nvoters / 2) {
		leader_step_down(l, out, "not sufficient followers synced");
		return;
	}
	leader_ping(l, out);
	leader_answer_syncs(l, out);
}

int quorum_leader_step(struct quorum_leader *l, const struct quorum_event *ev,
		       struct quorum_actions *out)
{
	if (l->lost)
		return ev->type == QUORUM_EV_WRITE || ev->type == QUORUM_EV_SYNC ? -EAGAIN : 0;
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
		leader_tick(l, out);
		break;
	case QUORUM_EV_PERSISTED:
		leader_persisted(l, ev->which, out);
		break;
	case QUORUM_EV_DISCONNECT: {
		int i = leader_index(l, ev->from);
		if (i >= 0 && i != l->me)
			leader_forget(l, i);
		break;
	}
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
	f->epoch = f->accepted_epoch = f->current_epoch = epoch;
	f->observer = observer;
	f->phase = QUORUM_BROADCAST;
	f->init_limit = QUORUM_INIT_LIMIT;
	f->sync_limit = QUORUM_SYNC_LIMIT;
	f->sync_started = f->newleader_acked = true;
	f->appended = f->durable = f->acked = f->committed = f->applied = last_zxid;
	return 0;
}

int quorum_learner_start(struct quorum_learner *f, int64_t my_sid, int64_t leader_sid,
			 int64_t accepted_epoch, int64_t current_epoch, int64_t last_zxid,
			 int64_t applied_zxid, bool observer, struct quorum_actions *out)
{
	if (accepted_epoch < current_epoch || current_epoch < 0 || accepted_epoch >= UINT32_MAX ||
	    applied_zxid > last_zxid || applied_zxid < 0 || ZXID_EPOCH(last_zxid) > accepted_epoch)
		return -EINVAL;
	int rc = quorum_learner_init(f, my_sid, leader_sid, accepted_epoch + 1, last_zxid, observer);
	if (rc < 0)
		return rc;
	f->epoch = 0; /* LEADERINFO tells */
	f->accepted_epoch = accepted_epoch;
	f->current_epoch = current_epoch;
	f->phase = QUORUM_DISCOVERY;
	f->sync_started = f->newleader_acked = false;
	f->committed = f->applied = applied_zxid;
	put_send(out, leader_sid, observer ? QP_OBSERVERINFO : QP_FOLLOWERINFO, 0,
		 (int64_t)((uint64_t)accepted_epoch << 32));
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

/* The next txn of the leader's history: increasing, never past its epoch, and gapless within
 * the epoch (a new epoch's counter starts at 1). */
static bool learner_append(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	int64_t e = ZXID_EPOCH(zxid);
	if (zxid <= f->appended || e > f->epoch ||
	    (e == f->epoch && zxid != next_zxid(f->appended, f->epoch)))
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

static void learner_ackepoch(struct quorum_learner *f, int64_t epoch, struct quorum_actions *out)
{
	struct quorum_action *a = push(out, QUORUM_ACT_SEND);
	a->to = f->leader_sid;
	a->ptype = QP_ACKEPOCH;
	a->zxid = f->appended;
	a->epoch = epoch;
	f->phase = QUORUM_SYNCHRONIZATION;
}

/* Learner.registerWithLeader: a new epoch is on disk before we ack it; the epoch we already
 * accepted is acked with -1; an older one means this is a stale leader. */
static void learner_leaderinfo(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	int64_t e = ZXID_EPOCH(zxid);
	if (f->phase != QUORUM_DISCOVERY || e < f->accepted_epoch || e >= UINT32_MAX || e <= 0) {
		learner_lost(f, out, "LEADERINFO out of turn or of an old epoch");
		return;
	}
	f->epoch = e;
	if (e == f->accepted_epoch) {
		learner_ackepoch(f, -1, out);
		return;
	}
	f->persisting = true;
	persist(out, QUORUM_ACCEPTED_EPOCH, e);
}

/* The fix for ZOOKEEPER-4643/4646/4785: NEWLEADER is acked only once every synced txn is
 * durable and, after that, currentEpoch is on disk - never the epoch first. */
static void learner_try_ack_newleader(struct quorum_learner *f, struct quorum_actions *out)
{
	if (!f->newleader_pending || f->persisting || f->durable < f->appended || f->durable < 0)
		return;
	f->persisting = true;
	persist(out, QUORUM_CURRENT_EPOCH, f->epoch);
}

static void learner_persisted(struct quorum_learner *f, int32_t which, struct quorum_actions *out)
{
	ZK_ASSERT(f->persisting);
	f->persisting = false;
	if (which == QUORUM_ACCEPTED_EPOCH) {
		ZK_ASSERT(f->phase == QUORUM_DISCOVERY);
		f->accepted_epoch = f->epoch;
		learner_ackepoch(f, f->current_epoch, out);
		return;
	}
	ZK_ASSERT(which == QUORUM_CURRENT_EPOCH && f->newleader_pending);
	ZK_ASSERT(f->durable >= f->appended);
	f->current_epoch = f->epoch;
	f->newleader_pending = false;
	f->newleader_acked = true;
	put_send(out, f->leader_sid, QP_ACK, 0, f->newleader_zxid);
	if (!f->observer && f->durable > f->newleader_zxid) /* proposals since the stream */
		put_range(out, f->leader_sid, QP_ACK, f->newleader_zxid, f->durable);
	f->acked = f->durable;
}

/* DIFF, TRUNC or SNAP: how our log meets the leader's. */
static void learner_sync_start(struct quorum_learner *f, const struct quorum_event *ev,
			       struct quorum_actions *out)
{
	if (f->phase != QUORUM_SYNCHRONIZATION || f->sync_started ||
	    (ev->ptype == QP_TRUNC && (ev->zxid > f->appended || ev->zxid < 0)) ||
	    (ev->ptype == QP_SNAP && (ev->zxid < 0 || ZXID_EPOCH(ev->zxid) > f->epoch))) {
		learner_lost(f, out, "DIFF/TRUNC/SNAP out of turn");
		return;
	}
	f->sync_started = true;
	if (ev->ptype == QP_TRUNC) {
		push(out, QUORUM_ACT_TRUNCATE)->zxid = ev->zxid;
		f->appended = ev->zxid;
		f->durable = f->durable < ev->zxid ? f->durable : ev->zxid;
		f->acked = f->acked < ev->zxid ? f->acked : ev->zxid;
		f->committed = f->committed < ev->zxid ? f->committed : ev->zxid;
		f->applied = f->applied < ev->zxid ? f->applied : ev->zxid;
	} else if (ev->ptype == QP_SNAP) {
		push(out, QUORUM_ACT_SNAP)->zxid = ev->zxid;
		f->appended = f->committed = f->applied = ev->zxid;
		f->durable = f->acked = -1; /* until the driver has it on disk */
	}
}

static void learner_newleader(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	if (f->phase != QUORUM_SYNCHRONIZATION || !f->sync_started || f->newleader_pending ||
	    f->newleader_acked || zxid != (int64_t)((uint64_t)f->epoch << 32)) {
		learner_lost(f, out, "NEWLEADER out of turn");
		return;
	}
	f->newleader_pending = true;
	f->newleader_zxid = zxid;
	learner_try_ack_newleader(f, out);
}

static void learner_commit(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	/* In sync a COMMIT may name what our tree already holds; in broadcast, COMMITs come in
	 * zxid order for zxids proposed to us (FIFO link). */
	bool syncing = f->phase == QUORUM_SYNCHRONIZATION;
	if (syncing && f->sync_started && zxid <= f->committed)
		return;
	if ((!syncing && f->observer) || !f->sync_started || zxid <= f->committed ||
	    zxid > f->appended) {
		learner_lost(f, out, "COMMIT of a zxid not pending here");
		return;
	}
	f->committed = zxid;
	learner_apply(f, out);
}

static void learner_packet(struct quorum_learner *f, const struct quorum_event *ev,
			   struct quorum_actions *out)
{
	if (ev->from != f->leader_sid) {
		LOG_WARN("quorum: packet from %lld, not our leader, ignored", (long long)ev->from);
		return;
	}
	f->heard = f->tick;
	if (f->phase == QUORUM_DISCOVERY && ev->ptype != QP_LEADERINFO) {
		learner_lost(f, out, "packet before LEADERINFO");
		return;
	}
	bool syncing = f->phase == QUORUM_SYNCHRONIZATION;
	switch (ev->ptype) {
	case QP_LEADERINFO:
		learner_leaderinfo(f, ev->zxid, out);
		return;
	case QP_DIFF:
	case QP_TRUNC:
	case QP_SNAP:
		learner_sync_start(f, ev, out);
		return;
	case QP_NEWLEADER:
		learner_newleader(f, ev->zxid, out);
		return;
	case QP_UPTODATE:
		if (!syncing || !f->newleader_acked) {
			learner_lost(f, out, "UPTODATE before our NEWLEADER ACK");
			return;
		}
		f->phase = QUORUM_BROADCAST;
		return;
	case QP_PROPOSAL:
		if ((f->observer && !syncing) || !f->sync_started || !learner_append(f, ev->zxid, out))
			learner_lost(f, out, "PROPOSAL out of order or of another epoch");
		return;
	case QP_INFORM:
		/* What our own log already had when we synced (the leader's DIFF proved it the
		 * leader's) is only committed, or nothing when our tree holds it already (it held
		 * more than the new leader knew committed); anything else is appended first. */
		if (f->observer && f->sync_started && ev->zxid <= f->appended) {
			if (ev->zxid > f->committed) { /* else our tree already holds it */
				f->committed = ev->zxid;
				learner_apply(f, out);
			}
			return;
		}
		if (!f->observer || !f->sync_started || !learner_append(f, ev->zxid, out)) {
			learner_lost(f, out, "INFORM out of order or of another epoch");
			return;
		}
		f->committed = ev->zxid;
		learner_apply(f, out);
		return;
	case QP_COMMIT:
		learner_commit(f, ev->zxid, out);
		return;
	case QP_PING:
		put_send(out, f->leader_sid, QP_PING, 0, ev->zxid);
		return;
	case QP_SYNC:
		if (syncing) {
			learner_lost(f, out, "sync answer before UPTODATE");
			return;
		}
		learner_sync_answer(f, ev->zxid, out);
		return;
	default:
		LOG_WARN("quorum: packet type %d from leader ignored", ev->ptype);
	}
}

static void learner_durable(struct quorum_learner *f, int64_t zxid, struct quorum_actions *out)
{
	ZK_ASSERT(zxid >= f->durable && zxid <= f->appended);
	f->durable = zxid;
	if (!f->newleader_acked) {
		learner_try_ack_newleader(f, out);
		return; /* nothing is acked before NEWLEADER is */
	}
	if (!f->observer && f->durable > f->acked) {
		put_range(out, f->leader_sid, QP_ACK, f->acked, f->durable);
		f->acked = f->durable;
	}
}

int quorum_learner_limits(struct quorum_learner *f, int init_limit, int sync_limit)
{
	if (init_limit < 1 || sync_limit < 1)
		return -EINVAL;
	f->init_limit = init_limit;
	f->sync_limit = sync_limit;
	return 0;
}

int quorum_learner_step(struct quorum_learner *f, const struct quorum_event *ev,
			struct quorum_actions *out)
{
	if (f->lost)
		return ev->type == QUORUM_EV_SYNC ? -EAGAIN : 0;
	/* A PERSIST is completed before anything else happens to us. */
	ZK_ASSERT(!f->persisting || ev->type == QUORUM_EV_PERSISTED);
	ZK_ASSERT(f->applied <= f->appended && f->acked <= f->durable);
	switch (ev->type) {
	case QUORUM_EV_PACKET:
		learner_packet(f, ev, out);
		break;
	case QUORUM_EV_DURABLE:
		learner_durable(f, ev->zxid, out);
		break;
	case QUORUM_EV_PERSISTED:
		learner_persisted(f, ev->which, out);
		break;
	case QUORUM_EV_TICK: {
		/* Learner's socket timeout: initLimit ticks until UPTODATE, syncLimit after. */
		uint64_t limit = (uint64_t)(f->phase == QUORUM_BROADCAST ? f->sync_limit : f->init_limit);
		if (++f->tick - f->heard > limit)
			learner_lost(f, out, "nothing from the leader within the limit");
		break;
	}
	case QUORUM_EV_SYNC:
		if (f->phase != QUORUM_BROADCAST)
			return -EAGAIN;
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
