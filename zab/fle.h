/* Fast Leader Election (Apache ZooKeeper 3.8's FastLeaderElection) as a pure state machine:
 * events in (start an election, a notification arrived from sid, the timer fired), actions
 * out (send a notification to sid or to every voter, arm or cancel the one timer, decided).
 * No sockets, clocks, files or malloc inside; every table is bounded by FLE_SERVERS_MAX.
 *
 * The rules, as Apache runs them:
 * - A vote is (leader sid, zxid, election epoch, peer epoch). A vote beats another when its
 *   (peer epoch, zxid, sid) is larger and its leader is a voter (weight > 0).
 * - The logical clock counts this server's elections; a LOOKING notification from a later
 *   election resets our round (clock, received votes, proposal = the better of theirs and
 *   ours); one from an earlier election is answered with our vote and otherwise ignored.
 * - A LOOKING server decides once the votes of its round that equal its proposal form a
 *   quorum of voters and then finalizeWait (200 ms) passes with no better notification (a
 *   notification that is not better restarts the wait and is dropped, as Apache's poll does).
 * - FOLLOWING/LEADING notifications: of our round, they count with our round's votes; of
 *   any round, they count among the out-of-election votes. Either set deciding needs a
 *   quorum agreeing on (leader, peer epoch) and the leader itself saying LEADING
 *   (checkLeader) - this is how a late or restarted server joins an established ensemble.
 * - Resend: with no notification for the interval, our vote goes out again and the
 *   interval doubles from 200 ms up to 60 s (the driver dials peers it has no connection to).
 * - Observers never vote (their initial vote is Long.MIN_VALUE everywhere, they are never a
 *   valid leader) and decide OBSERVING; a voter answers any non-voter at once.
 * - Decided servers keep answering LOOKING peers with the vote they decided.
 * Not modelled: dynamic reconfiguration (the config text in notifications is carried by the
 * driver and never read here; Apache restarts the election when it carries a newer config),
 * and the leader's reportLookingSid bookkeeping. */
#ifndef ZK_ZAB_FLE_H
#define ZK_ZAB_FLE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/peerwire.h"

#define FLE_SERVERS_MAX 255
#define FLE_FINALIZE_WAIT_MS 200
#define FLE_NOTIFY_MIN_MS 200
#define FLE_NOTIFY_MAX_MS 60000
#define FLE_ACTIONS_MAX 8

struct fle_vote {
	int64_t leader, zxid, election_epoch, peer_epoch;
	int32_t state;   /* enum peer_state of the server that cast it */
	int32_t version; /* notification version, for Apache's mixed-version equality */
};

/* Which sets of voters are a quorum. Majority only for now; a hierarchical verifier
 * (groups and weights) would be another kind with its own tables here. */
enum fle_qv_kind { FLE_QV_MAJORITY };
struct fle_qv {
	enum fle_qv_kind kind;
	int nvoters;
};

struct fle_member {
	int64_t sid;
	bool voter; /* participant; false for an observer */
};

enum fle_ev_type { FLE_EV_START, FLE_EV_NOTE, FLE_EV_TIMER };
struct fle_event {
	enum fle_ev_type type;
	/* START: what this server has; peer epoch = currentEpoch. */
	int64_t last_zxid, current_epoch;
	/* NOTE: sender (from the connection's initial message) and the decoded notification. */
	int64_t from;
	struct peer_note note;
	/* TIMER: the generation it was armed with; stale ones are ignored. */
	uint64_t timer_gen;
};

enum fle_act_type { FLE_ACT_SEND, FLE_ACT_ARM_TIMER, FLE_ACT_CANCEL_TIMER, FLE_ACT_DECIDED };
struct fle_action {
	enum fle_act_type type;
	/* SEND: to one sid, or to every voter but us; the driver appends its config text. */
	bool to_voters;
	int64_t to;
	struct peer_note note;
	/* ARM_TIMER: replaces any armed timer. */
	int timer_ms;
	uint64_t timer_gen;
	/* DECIDED: our new state (LEADING, FOLLOWING or OBSERVING) and the vote. */
	int32_t state;
	struct fle_vote vote;
};

struct fle_actions {
	int n;
	struct fle_action a[FLE_ACTIONS_MAX];
};

struct fle {
	int64_t my_sid;
	int me;                    /* index into members */
	int nmembers;
	struct fle_member members[FLE_SERVERS_MAX];
	struct fle_qv qv;
	int32_t state;             /* enum peer_state */
	int64_t logical_clock;
	int64_t last_zxid, current_epoch;
	struct fle_vote proposal;  /* proposedLeader/Zxid/Epoch (election epoch unused) */
	struct fle_vote current;   /* the last decided vote (Apache's currentVote) */
	struct fle_vote recv[FLE_SERVERS_MAX];  /* this round's votes by member index */
	struct fle_vote outof[FLE_SERVERS_MAX]; /* FOLLOWING/LEADING votes of any round */
	bool has_recv[FLE_SERVERS_MAX], has_outof[FLE_SERVERS_MAX];
	int notify_ms;
	bool finalizing;
	uint64_t timer_gen;
	uint64_t elections;        /* decisions so far, for mntr/tests */
};

/* 0, or -EINVAL when members are empty, too many, repeated, or do not include my_sid, or
 * there is no voter. The state is LOOKING with no election running until FLE_EV_START. */
int fle_init(struct fle *f, int64_t my_sid, const struct fle_member *members, int n);
/* Feed one event; actions are appended to *out (which the caller empties). */
void fle_step(struct fle *f, const struct fle_event *ev, struct fle_actions *out);
/* Does `a` beat `b` as a leader candidate (totalOrderPredicate)? */
bool fle_vote_better(const struct fle *f, int64_t leader, int64_t zxid, int64_t peer_epoch,
		     const struct fle_vote *than);
bool fle_is_voter(const struct fle *f, int64_t sid);

#endif
