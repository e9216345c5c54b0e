/* Fast Leader Election as a pure state machine; see fle.h for the rules. */
#include "zab/fle.h"
#include "net/log.h"

#include <errno.h>
#include <string.h>

static int member_index(const struct fle *f, int64_t sid)
{
	for (int i = 0; i < f->nmembers; i++)
		if (f->members[i].sid == sid)
			return i;
	return -1;
}

bool fle_is_voter(const struct fle *f, int64_t sid)
{
	int i = member_index(f, sid);
	return i >= 0 && f->members[i].voter;
}

int fle_init(struct fle *f, int64_t my_sid, const struct fle_member *members, int n)
{
	if (n < 1 || n > FLE_SERVERS_MAX)
		return -EINVAL;
	memset(f, 0, sizeof *f);
	f->my_sid = my_sid;
	for (int i = 0; i < n; i++) {
		if (member_index(f, members[i].sid) >= 0)
			return -EINVAL;
		f->members[f->nmembers++] = members[i];
		f->qv.nvoters += members[i].voter;
	}
	f->me = member_index(f, my_sid);
	if (f->me < 0 || f->qv.nvoters == 0)
		return -EINVAL;
	f->qv.kind = FLE_QV_MAJORITY;
	f->state = PEER_LOOKING;
	f->notify_ms = FLE_NOTIFY_MIN_MS;
	return 0;
}

static bool i_vote(const struct fle *f) { return f->members[f->me].voter; }

/* QuorumMaj.containsQuorum: more than half of the voters (non-voters never count). */
static bool qv_has_quorum(const struct fle *f, const bool *ack)
{
	ZK_ASSERT(f->qv.kind == FLE_QV_MAJORITY);
	int count = 0;
	for (int i = 0; i < f->nmembers; i++)
		count += ack[i] && f->members[i].voter;
	return count > f->qv.nvoters / 2;
}

bool fle_vote_better(const struct fle *f, int64_t leader, int64_t zxid, int64_t peer_epoch,
		     const struct fle_vote *than)
{
	if (!fle_is_voter(f, leader))
		return false; /* weight 0 */
	if (peer_epoch != than->peer_epoch)
		return peer_epoch > than->peer_epoch;
	if (zxid != than->zxid)
		return zxid > than->zxid;
	return leader > than->leader;
}

/* Vote.equals: a LOOKING side compares all four numbers; two established votes compare
 * (leader, peer epoch), or the leader alone across the pre-3.4.6 version boundary. */
static bool vote_equal(const struct fle_vote *a, const struct fle_vote *b)
{
	if (a->state == PEER_LOOKING || b->state == PEER_LOOKING)
		return a->leader == b->leader && a->zxid == b->zxid &&
		       a->election_epoch == b->election_epoch && a->peer_epoch == b->peer_epoch;
	if ((a->version > 0) != (b->version > 0))
		return a->leader == b->leader;
	return a->leader == b->leader && a->peer_epoch == b->peer_epoch;
}

/* getVoteTracker(...).hasAllQuorums(): the voters whose vote equals `v`. */
static bool votes_agree(const struct fle *f, const struct fle_vote *votes, const bool *has,
			const struct fle_vote *v)
{
	bool ack[FLE_SERVERS_MAX];
	for (int i = 0; i < f->nmembers; i++)
		ack[i] = has[i] && vote_equal(&votes[i], v);
	return qv_has_quorum(f, ack);
}

/* checkLeader: the leader must have told us it leads - unless it is us, in this round. */
static bool check_leader(const struct fle *f, const struct fle_vote *votes, const bool *has,
			 int64_t leader, int64_t election_epoch)
{
	if (leader != f->my_sid) {
		int i = member_index(f, leader);
		return i >= 0 && has[i] && votes[i].state == PEER_LEADING;
	}
	return f->logical_clock == election_epoch;
}

static struct fle_action *push(struct fle_actions *out, enum fle_act_type type)
{
	ZK_ASSERT(out->n >= 0 && out->n < FLE_ACTIONS_MAX);
	struct fle_action *a = &out->a[out->n++];
	memset(a, 0, sizeof *a);
	a->type = type;
	return a;
}

static void send_vote(struct fle_actions *out, bool to_voters, int64_t to, int32_t state,
		      const struct fle_vote *v, int64_t election_epoch)
{
	struct fle_action *a = push(out, FLE_ACT_SEND);
	a->to_voters = to_voters;
	a->to = to;
	a->note.state = state;
	a->note.leader = v->leader;
	a->note.zxid = v->zxid;
	a->note.election_epoch = election_epoch;
	a->note.peer_epoch = v->peer_epoch;
	a->note.version = PEER_NOTE_VERSION;
	a->note.form = PEER_NOTE_LEN;
}

static void arm(struct fle *f, struct fle_actions *out, int ms)
{
	ZK_ASSERT(ms > 0 && ms <= FLE_NOTIFY_MAX_MS);
	struct fle_action *a = push(out, FLE_ACT_ARM_TIMER);
	a->timer_ms = ms;
	a->timer_gen = ++f->timer_gen;
}

/* The vote this server starts a round with (getInitId / LastLoggedZxid / PeerEpoch). */
static struct fle_vote init_vote(const struct fle *f)
{
	struct fle_vote v = { .leader = INT64_MIN, .zxid = INT64_MIN, .peer_epoch = INT64_MIN,
			      .state = PEER_LOOKING };
	if (i_vote(f)) {
		v.leader = f->my_sid;
		v.zxid = f->last_zxid;
		v.peer_epoch = f->current_epoch;
	}
	return v;
}

/* sendNotifications: our proposal to every voter. Apache's copy to ourselves goes through
 * the receive queue and lands in this round's votes; we record it directly. */
static void broadcast(struct fle *f, struct fle_actions *out)
{
	send_vote(out, true, 0, PEER_LOOKING, &f->proposal, f->logical_clock);
	if (i_vote(f)) {
		f->recv[f->me] = f->proposal;
		f->recv[f->me].election_epoch = f->logical_clock;
		f->recv[f->me].state = PEER_LOOKING;
		f->recv[f->me].version = 0;
		f->has_recv[f->me] = true;
	}
}

static void clear_round(struct fle *f)
{
	memset(f->has_recv, 0, sizeof f->has_recv);
}

static void decide(struct fle *f, struct fle_actions *out, const struct fle_vote *end)
{
	ZK_ASSERT(f->state == PEER_LOOKING);
	ZK_ASSERT(fle_is_voter(f, end->leader));
	f->state = end->leader == f->my_sid ? PEER_LEADING
		   : i_vote(f)              ? PEER_FOLLOWING
					    : PEER_OBSERVING;
	ZK_ASSERT(f->state != PEER_LEADING || i_vote(f));
	f->current = *end;
	f->current.state = f->state;
	f->finalizing = false;
	f->elections++;
	clear_round(f);
	memset(f->has_outof, 0, sizeof f->has_outof);
	push(out, FLE_ACT_CANCEL_TIMER);
	struct fle_action *a = push(out, FLE_ACT_DECIDED);
	a->state = f->state;
	a->vote = f->current;
	LOG_INFO("fle: sid %lld decided %s, leader %lld (zxid 0x%llx, epoch %lld, round %lld)",
		 (long long)f->my_sid,
		 f->state == PEER_LEADING ? "LEADING" : f->state == PEER_FOLLOWING ? "FOLLOWING" : "OBSERVING",
		 (long long)end->leader, (unsigned long long)end->zxid, (long long)end->peer_epoch,
		 (long long)end->election_epoch);
}

static void start(struct fle *f, const struct fle_event *ev, struct fle_actions *out)
{
	if (f->elections == 0 && f->logical_clock == 0) /* QuorumPeer.startLeaderElection */
		f->current = (struct fle_vote){ .leader = f->my_sid, .zxid = ev->last_zxid,
						.peer_epoch = ev->current_epoch,
						.state = PEER_LOOKING };
	f->state = PEER_LOOKING;
	f->last_zxid = ev->last_zxid;
	f->current_epoch = ev->current_epoch;
	f->logical_clock++;
	f->proposal = init_vote(f);
	f->finalizing = false;
	f->notify_ms = FLE_NOTIFY_MIN_MS;
	clear_round(f);
	memset(f->has_outof, 0, sizeof f->has_outof);
	broadcast(f, out);
	arm(f, out, f->notify_ms);
}

/* The LOOKING case of lookForLeader. Returns true when the round reached a quorum. */
static bool on_looking(struct fle *f, int from, const struct peer_note *n, struct fle_actions *out)
{
	if (init_vote(f).zxid == -1 || n->zxid == -1)
		return false;
	if (n->election_epoch > f->logical_clock) {
		f->logical_clock = n->election_epoch;
		clear_round(f);
		struct fle_vote mine = init_vote(f);
		if (fle_vote_better(f, n->leader, n->zxid, n->peer_epoch, &mine))
			mine = (struct fle_vote){ .leader = n->leader, .zxid = n->zxid,
						  .peer_epoch = n->peer_epoch, .state = PEER_LOOKING };
		f->proposal = mine;
		broadcast(f, out);
	} else if (n->election_epoch < f->logical_clock) {
		return false;
	} else if (fle_vote_better(f, n->leader, n->zxid, n->peer_epoch, &f->proposal)) {
		f->proposal = (struct fle_vote){ .leader = n->leader, .zxid = n->zxid,
						 .peer_epoch = n->peer_epoch, .state = PEER_LOOKING };
		broadcast(f, out);
	}
	f->recv[from] = (struct fle_vote){ .leader = n->leader, .zxid = n->zxid,
					   .election_epoch = n->election_epoch,
					   .peer_epoch = n->peer_epoch, .state = PEER_LOOKING };
	f->has_recv[from] = true;
	struct fle_vote mine = f->proposal;
	mine.election_epoch = f->logical_clock;
	mine.state = PEER_LOOKING;
	return votes_agree(f, f->recv, f->has_recv, &mine);
}

/* The FOLLOWING/LEADING case: join a leader a quorum follows. Returns true if decided. */
static bool on_established(struct fle *f, int from, const struct peer_note *n,
			   struct fle_actions *out)
{
	struct fle_vote v = { .leader = n->leader, .zxid = n->zxid,
			      .election_epoch = n->election_epoch, .peer_epoch = n->peer_epoch,
			      .state = n->state, .version = n->version };
	if (n->election_epoch == f->logical_clock) {
		f->recv[from] = v;
		f->recv[from].version = 0; /* Apache stores this round's copy without a version */
		f->has_recv[from] = true;
		if (votes_agree(f, f->recv, f->has_recv, &v) &&
		    check_leader(f, f->recv, f->has_recv, n->leader, n->election_epoch)) {
			decide(f, out, &v);
			return true;
		}
	}
	f->outof[from] = v;
	f->has_outof[from] = true;
	if (votes_agree(f, f->outof, f->has_outof, &v) &&
	    check_leader(f, f->outof, f->has_outof, n->leader, n->election_epoch)) {
		f->logical_clock = n->election_epoch;
		decide(f, out, &v);
		return true;
	}
	return false;
}

/* lookForLeader's handling of one queued notification from a voter. */
static void look(struct fle *f, int from, const struct peer_note *n, struct fle_actions *out)
{
	if (f->finalizing) {
		if (!fle_vote_better(f, n->leader, n->zxid, n->peer_epoch, &f->proposal)) {
			arm(f, out, FLE_FINALIZE_WAIT_MS); /* dropped; the wait starts over */
			return;
		}
		f->finalizing = false; /* a better vote: back to the main loop with it */
	}
	if (!fle_is_voter(f, n->leader)) {
		arm(f, out, f->notify_ms); /* a vote for a non-member: logged and dropped */
		return;
	}
	bool quorum = false;
	switch (n->state) {
	case PEER_LOOKING:
		quorum = on_looking(f, from, n, out);
		break;
	case PEER_FOLLOWING:
	case PEER_LEADING:
		if (on_established(f, from, n, out))
			return;
		break;
	default: /* OBSERVING: observers' notifications carry no vote */
		break;
	}
	if (quorum) {
		f->finalizing = true;
		arm(f, out, FLE_FINALIZE_WAIT_MS);
	} else {
		arm(f, out, f->notify_ms); /* Apache's poll restarts after every notification */
	}
}

/* Messenger.WorkerReceiver: answers that do not depend on the election loop. */
static void on_note(struct fle *f, const struct fle_event *ev, struct fle_actions *out)
{
	const struct peer_note *n = &ev->note;
	ZK_ASSERT(n->state >= PEER_LOOKING && n->state <= PEER_OBSERVING);
	int from = member_index(f, ev->from);
	if (ev->from == f->my_sid)
		return; /* the driver refuses a peer claiming our sid; never count it */
	if (from < 0 || !f->members[from].voter) {
		/* A non-voter gets our current vote at once and is never counted. */
		send_vote(out, false, ev->from, f->state, &f->current, f->logical_clock);
		return;
	}
	if (f->state != PEER_LOOKING) {
		if (n->state == PEER_LOOKING)
			send_vote(out, false, ev->from, f->state, &f->current,
				  f->current.election_epoch);
		return;
	}
	if (n->state == PEER_LOOKING && n->election_epoch < f->logical_clock)
		send_vote(out, false, ev->from, PEER_LOOKING, &f->proposal, f->logical_clock);
	look(f, from, n, out);
}

static void on_timer(struct fle *f, const struct fle_event *ev, struct fle_actions *out)
{
	if (f->state != PEER_LOOKING || ev->timer_gen != f->timer_gen)
		return; /* stale: decided, or re-armed since */
	if (f->finalizing) {
		struct fle_vote end = f->proposal;
		end.election_epoch = f->logical_clock;
		decide(f, out, &end);
		return;
	}
	broadcast(f, out);
	f->notify_ms = f->notify_ms * 2 < FLE_NOTIFY_MAX_MS ? f->notify_ms * 2 : FLE_NOTIFY_MAX_MS;
	arm(f, out, f->notify_ms);
}

void fle_step(struct fle *f, const struct fle_event *ev, struct fle_actions *out)
{
	ZK_ASSERT(f->me >= 0 && f->me < f->nmembers && f->members[f->me].sid == f->my_sid);
	ZK_ASSERT(out->n >= 0 && out->n <= FLE_ACTIONS_MAX - 4);
	switch (ev->type) {
	case FLE_EV_START:
		start(f, ev, out);
		break;
	case FLE_EV_NOTE:
		if (f->logical_clock == 0)
			return; /* not started: Apache's receiver thread is not running yet */
		on_note(f, ev, out);
		break;
	case FLE_EV_TIMER:
		on_timer(f, ev, out);
		break;
	}
	ZK_ASSERT(f->state != PEER_LEADING || f->current.leader == f->my_sid);
}
