/* ZAB after the election (Apache ZooKeeper 3.8's Leader, LearnerHandler, Learner, Follower,
 * Observer) as two pure state machines, in the style of zab/fle.c: events in (a packet from
 * sid, our log is durable up to zxid Z, an epoch file is durable, a client write or sync, a
 * tick, a learner's connection closed), actions out (send a packet to sid, persist an epoch,
 * append zxid Z, truncate the log, install a snapshot, apply up to Z, answer a sync, step
 * down). No sockets, clocks, files, txn bytes or malloc inside: the driver keeps the txns
 * by zxid and turns a range action ("COMMIT (from, to] to sid") into one packet per zxid.
 * The name is Apache's package: org.apache.zookeeper.server.quorum.
 *
 * Discovery (quorum_*_start): the learner sends FOLLOWERINFO/OBSERVERINFO with its
 * acceptedEpoch; once a quorum of voters (the leader included) has, the leader picks one past
 * every acceptedEpoch it heard, persists it, sends LEADERINFO. A learner persists a newer
 * epoch as acceptedEpoch before its ACKEPOCH (its currentEpoch and last zxid); an older one
 * makes it leave. While the epoch is acked, a learner ahead of the leader in (currentEpoch,
 * zxid) makes the leader step down, as Apache's does.
 * Synchronization: once a quorum acked the epoch, the leader persists currentEpoch and syncs
 * each learner from its last zxid: DIFF when our log holds it, TRUNC to our last zxid when it
 * is past our log, TRUNC to the zxid where the logs part and then the rest (Apache's
 * TRUNC+DIFF) when it holds txns we do not, SNAP of our tree when it is older than log_min.
 * Committed txns travel as PROPOSAL+COMMIT, the uncommitted tail as PROPOSAL (observers get
 * it by INFORM later); then NEWLEADER. The learner ACKs NEWLEADER only once everything synced
 * is durable and, after that, currentEpoch is persisted (ZOOKEEPER-4643/4646/4785: 3.8.0
 * lost acknowledged writes by recording the epoch first). When a quorum of voters (the
 * leader once its currentEpoch is on disk) acked NEWLEADER, the leader commits its history,
 * sends UPTODATE and serves; later learners get UPTODATE right after their NEWLEADER ACK.
 * Epoch files: PERSIST is completed by the driver (write, fsync) and answered with
 * PERSISTED before anything else is stepped.
 * Liveness, in ticks (QUORUM_EV_TICK, every tickTime, to both machines): the leader PINGs
 * every forwarding learner each tick; a learner that has heard nothing from its leader for
 * syncLimit ticks (initLimit before UPTODATE) leaves it. The leader steps down when, in
 * broadcast, the voters it heard from within syncLimit ticks (itself included) are no
 * quorum, or when a discovery/synchronization stage (a quorum of FOLLOWERINFOs, of
 * ACKEPOCHs, of NEWLEADER ACKs) takes more than initLimit ticks - Apache's "not sufficient
 * followers synced" and its waitFor* timeouts. Stepping down is QUORUM_ACT_LOOKING to our
 * own sid; after it (or a learner's LOOKING) the machine ignores every event.
 * Not here: reconfig.
 *
 * The rules of broadcast:
 * - The leader assigns zxid = epoch << 32 | counter, appends it to its own log and sends
 *   PROPOSAL to every follower (observers get nothing yet).
 * - A follower appends each PROPOSAL in zxid order and, once the driver reports its log
 *   durable up to Z, sends ACK for (acked, Z]. Acks are cumulative at the leader: a learner
 *   logs in zxid order, so "durable up to Z" covers every earlier zxid of the epoch.
 * - The leader commits strictly in zxid order: the commit point is the largest zxid that a
 *   quorum of voters (the leader's own durable log counted as its vote) has durable. It
 *   then sends COMMIT (old, new] to followers and INFORM (old, new] to observers, and
 *   applies (old, new] itself.
 * - A learner applies in zxid order up to what the leader committed (COMMIT) or informed
 *   (INFORM, which an observer appends first), never past what it has appended.
 * - Window: at most QUORUM_WINDOW_MAX proposals outstanding (proposed, not committed); a
 *   write past it is refused with -EBUSY and nothing changes - the driver stops reading
 *   client writes until a commit makes room.
 * - sync is a quorum operation (unlike Apache's, ZOOKEEPER-1675): the leader answers a sync
 *   only once (a) a quorum of voters has echoed a PING round the leader started after the
 *   sync arrived - so a leader that has been replaced, or paused while a new one took over,
 *   cannot answer - and (b) everything proposed before the sync arrived is committed. The
 *   answer carries the leader's commit point; the learner answers its client once it has
 *   applied up to it. Syncs are answered in arrival order; at most QUORUM_SYNCS_MAX wait
 *   (-EBUSY past it).
 * - A packet that breaks the protocol (a PROPOSAL out of order or of another epoch, a
 *   COMMIT of a zxid never proposed to us, an ACK above what was proposed) is answered by
 *   QUORUM_ACT_LOOKING: the learner drops the leader and re-elects (Apache exits or closes
 *   the handler); the leader drops that learner's connection.
 * PING rounds: Apache's PING carries the leader's last zxid, and its learner answers with a
 * PING that echoes that zxid (plus its session table); ours carries a round number in that
 * field, which both a zkd and an Apache learner echo back unchanged. */
#ifndef ZK_ZAB_QUORUM_H
#define ZK_ZAB_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

#include "net/peerwire.h"

#define QUORUM_SERVERS_MAX 32
#define QUORUM_INIT_LIMIT 10    /* ticks, zoo.cfg initLimit's usual value */
#define QUORUM_SYNC_LIMIT 5     /* ticks, syncLimit */
#define QUORUM_WINDOW_MAX 1000  /* outstanding proposals, like a follower's pending queue */
#define QUORUM_SYNCS_MAX 32     /* per server: its clients' syncs waiting for an answer */
/* The leader holds every learner's syncs; a learner that sends more than its own bound is
 * dropped, so the leader's queue never overflows. */
#define QUORUM_LEADER_SYNCS_MAX (QUORUM_SERVERS_MAX * QUORUM_SYNCS_MAX)
/* One step: per learner a send or two, the sync answers, a few local actions. */
#define QUORUM_ACTIONS_MAX (3 * QUORUM_SERVERS_MAX + QUORUM_SYNCS_MAX + 8)

struct quorum_member {
	int64_t sid;
	bool voter; /* participant; false for an observer */
};

enum quorum_ev_type {
	QUORUM_EV_PACKET,     /* a QuorumPacket from `from` (type, zxid) */
	QUORUM_EV_DURABLE,    /* our log (and an installed snapshot) is durable up to zxid */
	QUORUM_EV_WRITE,      /* leader: a prepared client write wants a zxid */
	QUORUM_EV_SYNC,       /* a client sync, with the driver's cookie */
	QUORUM_EV_TICK,       /* tickTime passed (the leader starts a new PING round) */
	QUORUM_EV_PERSISTED,  /* the epoch file `which` asked for is durable */
	QUORUM_EV_DISCONNECT, /* leader: learner `from`'s connection is gone */
};
enum quorum_epoch_file { QUORUM_ACCEPTED_EPOCH, QUORUM_CURRENT_EPOCH };
struct quorum_event {
	enum quorum_ev_type type;
	int64_t from;      /* PACKET, DISCONNECT: sender sid */
	int32_t ptype;     /* PACKET: enum quorum_packet_type */
	int64_t zxid;      /* PACKET, DURABLE */
	int64_t epoch;     /* PACKET ACKEPOCH: the learner's currentEpoch, or -1 */
	/* PACKET ACKEPOCH at the leader: the largest zxid in our log <= the learner's last
	 * zxid (ev->zxid), or -1 when that is older than the oldest txn we can send (log_min):
	 * the driver looks it up in its log. */
	int64_t floor;
	int32_t which;     /* PERSISTED: enum quorum_epoch_file */
	uint64_t cookie;   /* SYNC: handed back in the answer */
};

enum quorum_act_type {
	QUORUM_ACT_SEND,       /* packet (ptype, zxid) to `to`, or a range of them */
	QUORUM_ACT_APPEND,     /* append txn zxid to our log (the driver has its bytes) */
	QUORUM_ACT_APPLY,      /* apply (from, zxid] to the tree, in order; replies to clients */
	QUORUM_ACT_SYNC_DONE,  /* answer the client sync `cookie` */
	QUORUM_ACT_LOOKING,    /* learner: drop the leader and elect; leader: drop learner `to`,
				* or step down itself when `to` is its own sid */
	QUORUM_ACT_PERSIST,    /* write epoch file `which` = epoch, fsync, then step PERSISTED;
				* nothing else may be stepped in between */
	QUORUM_ACT_TRUNCATE,   /* cut our log after zxid (before the next step); a tree holding
				* txns past it is reloaded up to it */
	QUORUM_ACT_SNAP,       /* learner: the snapshot that follows SNAP replaces tree and log,
				* at zxid; durable once the driver says DURABLE >= zxid */
};
struct quorum_action {
	enum quorum_act_type type;
	int64_t to;
	int32_t ptype;
	int64_t from, zxid; /* SEND ranges (COMMIT, INFORM, ACK) and APPLY: (from, zxid] */
	int32_t count;      /* SEND SYNC: that many answers, one packet each */
	bool range;         /* SEND: one packet per zxid of our log in (from, zxid] */
	bool with_commit;   /* SEND PROPOSAL range: each PROPOSAL followed by its COMMIT */
	int64_t epoch;      /* SEND ACKEPOCH: its int; PERSIST: the value */
	int32_t which;      /* PERSIST: enum quorum_epoch_file */
	uint64_t cookie;
};
struct quorum_actions {
	int n;
	struct quorum_action a[QUORUM_ACTIONS_MAX];
};

struct quorum_sync {  /* learner: a client sync forwarded to the leader */
	uint64_t cookie;
	int64_t answer;    /* the leader's commit point, once it answered */
	bool answered;
};

struct quorum_leader_sync {
	uint64_t cookie;   /* local ones */
	uint64_t round;    /* the PING round that must reach a quorum */
	int64_t proposed;  /* everything up to here must be committed first */
	int32_t member;    /* whose client (index into members) */
};

enum quorum_phase { QUORUM_DISCOVERY, QUORUM_SYNCHRONIZATION, QUORUM_BROADCAST };
/* Where each learner is, at the leader. SYNCING and later are "forwarding": they get every
 * new PROPOSAL/COMMIT/INFORM/PING after their sync stream. */
enum quorum_lstate { QL_NONE, QL_INFO, QL_EPOCH_ACKED, QL_SYNCING, QL_NEWLEADER_ACKED, QL_UPTODATE };

struct quorum_leader {
	int64_t my_sid, epoch;               /* epoch: the new one, once decided */
	enum quorum_phase phase;
	bool epoch_decided, accepted_persisted, epoch_acked, current_persisted;
	int64_t accepted_epoch, current_epoch; /* ours, as on disk */
	int64_t history_end;                 /* our last zxid when we took over */
	int64_t log_min;                     /* oldest zxid a DIFF may start after */
	uint8_t lstate[QUORUM_SERVERS_MAX];  /* enum quorum_lstate */
	int64_t info_epoch[QUORUM_SERVERS_MAX];
	int64_t sync_end[QUORUM_SERVERS_MAX]; /* the sync stream ended here */
	int64_t ack_last[QUORUM_SERVERS_MAX], ack_floor[QUORUM_SERVERS_MAX]; /* from ACKEPOCH */
	int nmembers, me, nvoters;
	struct quorum_member members[QUORUM_SERVERS_MAX];
	int64_t acked[QUORUM_SERVERS_MAX];   /* durable-up-to per member (ours: our log) */
	uint64_t echoed[QUORUM_SERVERS_MAX]; /* highest PING round echoed per member */
	uint32_t counter;
	int64_t proposed, committed;
	uint64_t round;                      /* last PING round started */
	/* A ring in arrival order; round and proposed never decrease along it, so the
	 * answerable ones are a prefix, and per member a prefix of its own. */
	struct quorum_leader_sync syncs[QUORUM_LEADER_SYNCS_MAX];
	int sync_head, nsyncs;
	int32_t pending[QUORUM_SERVERS_MAX]; /* syncs waiting per member */
	uint64_t tick, stage_tick;           /* now; when the current stage began */
	uint64_t heard[QUORUM_SERVERS_MAX];  /* tick of the last packet from each learner */
	int init_limit, sync_limit;
	bool lost;                           /* stepped down; every later event is ignored */
};

struct quorum_learner {
	int64_t my_sid, leader_sid, epoch;   /* epoch: the leader's, from LEADERINFO */
	bool observer;
	enum quorum_phase phase;
	int64_t accepted_epoch, current_epoch;
	bool persisting;                     /* a PERSIST is out; only PERSISTED may come */
	bool sync_started;                   /* DIFF, TRUNC or SNAP came */
	bool newleader_pending, newleader_acked;
	int64_t newleader_zxid;
	int64_t appended, durable, acked, committed, applied;
	struct quorum_sync syncs[QUORUM_SYNCS_MAX];
	int nsyncs;
	bool lost;                           /* said LOOKING; every later event is ignored */
	uint64_t tick, heard;                /* now; the last packet from the leader */
	int init_limit, sync_limit;
};

/* A leader in broadcast of `epoch` (> 0) whose log ends at last_zxid, committed and durable
 * everywhere (what a completed synchronization leaves). 0 or -EINVAL (bad members, my_sid
 * not a voter, last_zxid of a later epoch). */
int quorum_leader_init(struct quorum_leader *l, int64_t my_sid, int64_t epoch, int64_t last_zxid,
		       const struct quorum_member *members, int n);
/* 0, or -EBUSY (window or sync queue full: nothing changed), -EINVAL (unknown event). */
int quorum_leader_step(struct quorum_leader *l, const struct quorum_event *ev,
		       struct quorum_actions *out);
int quorum_learner_init(struct quorum_learner *f, int64_t my_sid, int64_t leader_sid,
			int64_t epoch, int64_t last_zxid, bool observer);

/* Discovery and synchronization first (what follows an election). The leader: our epoch
 * files, our log's last zxid (durable: what recovery found), the last zxid we know is
 * committed (our tree holds it; the rest of our log is committed by the NEWLEADER quorum),
 * and log_min, the oldest zxid after which our log holds every txn (a learner older than
 * that gets a SNAP). The learner: the same files and log, and what its tree holds. Both may
 * emit actions at once (a lone voter decides; a learner sends FOLLOWERINFO/OBSERVERINFO).
 * The log may hold txns of an epoch past currentEpoch (never past acceptedEpoch): a learner
 * that crashed after logging its sync stream but before persisting currentEpoch. Apache
 * refuses to start then ("The current epoch ... is older than the last zxid"); we start,
 * since those txns are the new leader's history and were never acked by us as synced. */
int quorum_leader_start(struct quorum_leader *l, int64_t my_sid,
			const struct quorum_member *members, int n, int64_t accepted_epoch,
			int64_t current_epoch, int64_t last_zxid, int64_t committed_zxid,
			int64_t log_min, struct quorum_actions *out);
int quorum_learner_start(struct quorum_learner *f, int64_t my_sid, int64_t leader_sid,
			 int64_t accepted_epoch, int64_t current_epoch, int64_t last_zxid,
			 int64_t applied_zxid, bool observer, struct quorum_actions *out);
/* initLimit and syncLimit in ticks (QUORUM_INIT_LIMIT, QUORUM_SYNC_LIMIT until set);
 * -EINVAL unless 1 <= sync_limit and 1 <= init_limit. */
int quorum_leader_limits(struct quorum_leader *l, int init_limit, int sync_limit);
int quorum_learner_limits(struct quorum_learner *f, int init_limit, int sync_limit);
int quorum_learner_step(struct quorum_learner *f, const struct quorum_event *ev,
			struct quorum_actions *out);

#endif
