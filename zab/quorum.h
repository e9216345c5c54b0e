/* ZAB's broadcast phase (Apache ZooKeeper 3.8's Leader, LearnerHandler, Follower, Observer
 * after synchronization) as two pure state machines, in the style of zab/fle.c: events in
 * (a packet from sid, our log is durable up to zxid Z, a client write or sync, a tick),
 * actions out (send a packet to sid, append zxid Z to the log, apply up to Z, answer a
 * sync). No sockets, clocks, files, txn bytes or malloc inside: the driver keeps the txns by
 * zxid and turns a range action ("COMMIT (from, to] to sid") into one packet per zxid.
 * The name is Apache's package: org.apache.zookeeper.server.quorum.
 *
 * Scope: the machines start in broadcast, built from what discovery and synchronization
 * established (the epoch, the last zxid, which everyone shares and which is committed).
 * Discovery, DIFF/TRUNC/SNAP and the liveness timeouts are the next layer; nothing here is
 * wired into the server yet.
 *
 * The rules:
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
	QUORUM_EV_PACKET,  /* a QuorumPacket from `from` (type, zxid) */
	QUORUM_EV_DURABLE, /* our log is durable up to zxid */
	QUORUM_EV_WRITE,   /* leader: a prepared client write wants a zxid */
	QUORUM_EV_SYNC,    /* a client sync, with the driver's cookie */
	QUORUM_EV_TICK,    /* leader: tickTime passed (a new PING round) */
};
struct quorum_event {
	enum quorum_ev_type type;
	int64_t from;      /* PACKET: sender sid */
	int32_t ptype;     /* PACKET: enum quorum_packet_type */
	int64_t zxid;      /* PACKET, DURABLE */
	uint64_t cookie;   /* SYNC: handed back in the answer */
};

enum quorum_act_type {
	QUORUM_ACT_SEND,       /* packet (ptype, zxid) to `to`; a range: one per zxid in (from, zxid] */
	QUORUM_ACT_APPEND,     /* append txn zxid to our log (the driver has its bytes) */
	QUORUM_ACT_APPLY,      /* apply (from, zxid] to the tree, in order; replies to clients */
	QUORUM_ACT_SYNC_DONE,  /* answer the client sync `cookie` */
	QUORUM_ACT_LOOKING,    /* learner: drop the leader and elect; leader: drop learner `to` */
};
struct quorum_action {
	enum quorum_act_type type;
	int64_t to;
	int32_t ptype;
	int64_t from, zxid; /* SEND ranges (COMMIT, INFORM, ACK) and APPLY: (from, zxid] */
	int32_t count;      /* SEND SYNC: that many answers, one packet each */
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

struct quorum_leader {
	int64_t my_sid, epoch;
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
};

struct quorum_learner {
	int64_t my_sid, leader_sid, epoch;
	bool observer;
	int64_t appended, durable, acked, committed, applied;
	struct quorum_sync syncs[QUORUM_SYNCS_MAX];
	int nsyncs;
	bool lost;                           /* said LOOKING; every later event is ignored */
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
int quorum_learner_step(struct quorum_learner *f, const struct quorum_event *ev,
			struct quorum_actions *out);

#endif
