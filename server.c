/* zkd: wires net (sockets, loop), zab (sessions, prep, commit rule), wal (log stage) and
 * tree (znodes, watches) into a ZooKeeper server, and speaks the client protocol.
 *
 * One loop pass: epoll events only mark connections readable/writable; the before-sleep
 * hook then reads whole frames, serves reads and preps writes into the log batch, syncs the
 * batch once, commits and applies what is durable (watch events first, then replies), and
 * flushes output. No write is answered before its txn has passed the log stage. */
#include "net/conn.h"
#include "net/fourlw.h"
#include "net/handshake.h"
#include "net/jute.h"
#include "net/log.h"
#include "net/loop.h"
#include "net/proto.h"
#include "net/qlink.h"
#include "tree/auth.h"
#include "tree/ops.h"
#include "tree/ops_ext.h"
#include "tree/path.h"
#include "tree/tree.h"
#include "snap/recover.h"
#include "snap/snap.h"
#include "wal/epoch.h"
#include "wal/wal.h"
#include "net/election.h"
#include "net/peerwire.h"
#include "zab/config.h"
#include "zab/fle.h"
#include "zab/history.h"
#include "zab/prep.h"
#include "zab/quorum.h"
#include "zab/rate.h"
#include "zab/session.h"
#include "zab/zab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ZKD_VERSION "3.8.0-zkd-0.1"
#define OUT_HIGH (256u << 10)   /* stop taking requests from a client past this much output */
#define REPLY_MAX (64u << 20)   /* the largest single reply (a huge getChildren) */
#define INNER_ROUNDS 8          /* read/commit rounds per pass before polling again */

enum client_state { CL_NEW, CL_CONNECTING, CL_READY };
#define FWD_MAX 16 /* writes a learner's client may have at the leader at once */

struct client {
	struct conn c; /* first: the loop hands back &c.h */
	enum client_state state;
	int64_t session_id;
	int32_t timeout_ms;
	bool has_ro_byte;   /* the ConnectRequest carried readOnly: answer with it */
	bool dead;
	bool in_ready, in_dirty;
	uint32_t inflight;  /* writes in the pipeline, not yet answered */
	struct client *ready_next, *dirty_next, *dead_next;
	uint64_t ip_key;
	struct auth_ids auth; /* ip:<address>, then what addauth added (tree/auth.h) */
	/* stats for cons/stat */
	uint64_t packets_in, packets_out;
	int64_t lat_min, lat_max, lat_sum, lat_cnt;
	int64_t accepted_ms; /* monotonic */
	int64_t established_ms, last_response_ms, last_latency;
	int64_t last_zxid;
	int32_t last_cxid, last_op;
	/* ensemble learner: writes forwarded to the leader, answered in order when their txn
	 * is applied here */
	int32_t fwd_xid[FWD_MAX], fwd_type[FWD_MAX];
	int64_t fwd_start[FWD_MAX];
	uint8_t fwd_head, fwd_n;
	bool touched;      /* a request since the last PING answer (the leader expires sessions) */
	bool sync_wait;    /* a sync is out: nothing else of this client runs before its answer */
};

struct pending {
	int64_t zxid;     /* 0 for a deferred read */
	bool read;        /* a read waiting for its session's earlier writes */
	uint64_t conn_id; /* 0: no client waits (session expiry) */
	int32_t xid, req_type;
	int64_t start_ms;
	uint64_t txn_pos; /* absolute position in the txn arena */
	uint32_t txn_len;
	uint32_t auth_len; /* a deferred read: its frame is followed by the connection's ids as
			    * they were when it arrived (ZooKeeper's Request copies authInfo) */
};

enum role { ROLE_STANDALONE, ROLE_LOOKING, ROLE_LEADING, ROLE_FOLLOWING, ROLE_OBSERVING };

struct ens_sync {       /* a client's sync waiting for the quorum machine */
	uint64_t cookie, conn_id;
	uint8_t *req;        /* the request frame (xid, type, body); NULL: free slot */
	size_t len;
	int64_t start_ms;
};

struct ens {
	bool on;                   /* quorum mode */
	enum role role;
	struct election el;
	struct quorum_leader L;
	struct quorum_learner F;
	int64_t accepted_epoch, current_epoch;
	int64_t leader_sid;
	struct net_handle qlisten;
	struct net_timer tick;
	uint64_t tick_count;       /* ticks since the role began */
	struct qlinks links;       /* all quorum-port links (net/qlink.h) */
	struct qlink *link;        /* a learner's link to its leader */
	bool lost_leader;
	/* A learner reading its leader's SNAP: the stream goes to disk as it arrives. It is the
	 * leader link's (a SNAP comes only on it), so closing that link aborts the spool. */
	bool snap_mode;
	int64_t snap_zxid;
	struct snap_spool spool;
	bool sync_waiters;         /* some client waits for a free sync slot */
	struct hist hist;          /* committed txns for DIFF (zab/history.h) */
	struct zbuf backlog;       /* leader: learners' REQUESTs waiting for room */
	struct ens_sync syncs[QUORUM_SYNCS_MAX];
	uint64_t next_cookie;
	size_t pending_syncs;
	struct snap_session *snap_sessions;
	size_t snap_sessions_n, snap_sessions_cap;
	/* figures for srvr/mntr and the tests */
	uint64_t elections, packets_in, snaps_sent, snaps_received, truncs;
	int64_t last_election_ms, looking_since_ms, role_since_ms, last_proposal_size;
	int64_t last_tick_ms;
	int64_t max_proposal_size, min_proposal_size; /* -1 until one was sent */
};

/* Candidates taken from one check of the containers and TTL nodes; more wait for the next. */
#define REAP_BATCH 256

struct server {
	struct zk_config cfg;
	struct net_loop loop;
	struct net_handle listener, sig;
	struct net_timer tick;
	bool accept_paused;
	struct tree tree;
	struct prep prep;
	struct zab zab;
	struct wal wal;
	struct sessions sessions;
	struct u64map clients;  /* conn id -> client */
	struct u64map ip_count; /* ip key -> count (as a pointer-sized integer) */
	uint64_t next_conn_id;
	size_t out_max;         /* per-connection output bound: max(4 x jute.maxbuffer, 8 MiB) */
	struct client *ready, *ready_tail, *dirty, *dead;
	bool pipeline_blocked;  /* some client waits for room in the pipeline */
	struct pending *pq;
	size_t pq_cap, pq_max;  /* allocated slots; the bound (2 x globalOutstandingLimit + 64) */
	size_t pq_head, pq_count;
	struct zbuf arena;      /* txn bytes of pending entries, in zxid order */
	uint64_t arena_pos;     /* absolute position of the arena's head */
	struct zbuf scratch;    /* a multi's response body, built while its ops are applied */
	bool write_failed;      /* the log stage failed: no more writes are acknowledged */
	const struct zk_fileops *ops;
	char snap_dir[ZK_CFG_PATH_MAX + 16], log_dir[ZK_CFG_PATH_MAX + 16];
	pid_t snap_pid;         /* the child writing a snapshot, 0 if none */
	int64_t snap_zxid;      /* what it writes */
	uint64_t snap_threshold; /* txns in a log before it rolls and a snapshot is taken */
	uint64_t rng;           /* xorshift state; its seed is logged */
	uint64_t snapshots_taken;
	int64_t last_snap_ms, max_snap_fork_us;
	struct net_timer purge_timer, housekeeping;
	struct net_handle wal_events; /* io_uring completions of log writes */
	bool wal_signalled;
	bool snapshot_soon;     /* take a snapshot at the first chance (after recovery replayed txns) */
	/* stats */
	uint64_t packets_in, packets_out;
	int64_t lat_min, lat_max, lat_sum, lat_cnt;
	int64_t start_ms;
	/* the container/TTL reaper (ZooKeeper's ContainerManager), see on_reap */
	struct net_timer reap_timer;
	char *reap_q[REAP_BATCH]; /* candidate paths of the current check, not yet submitted */
	size_t reap_n, reap_i;
	int64_t reap_next_check_ms;
	struct rate_limit reap_rate; /* maxPerMinute */
	bool internal_write;      /* submit_write is sending the server's own request */
	const uint8_t *remote_ids; /* submit_write is sending a learner's REQUEST: its ids */
	size_t remote_ids_len;
	int64_t commit_to;        /* pending txns up to here are committed */
	struct ens ens;
	uint64_t reaped;          /* deleteContainer txns submitted */
};

static struct server S;

/* ------------------------------------------------------------------ clients */

static uint64_t ip_key_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		return (uint64_t)a->sin_addr.s_addr | 1ull << 40;
	}
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
	return tree_hash(&a->sin6_addr, sizeof a->sin6_addr) | 2ull << 40;
}

static void mark_ready(struct client *cl)
{
	if (cl->in_ready || cl->dead)
		return;
	cl->in_ready = true;
	cl->ready_next = NULL;
	if (S.ready_tail) S.ready_tail->ready_next = cl; else S.ready = cl;
	S.ready_tail = cl;
}

static void mark_dirty(struct client *cl)
{
	if (cl->in_dirty || cl->dead)
		return;
	cl->in_dirty = true;
	cl->dirty_next = S.dirty;
	S.dirty = cl;
}

/* Close now (socket gone, no more events); memory and watches go at the end of the pass. */
static void client_close(struct client *cl, const char *why)
{
	if (cl->dead)
		return;
	LOG_INFO("closing connection %s (session 0x%llx): %s", cl->c.peer_str,
		 (unsigned long long)cl->session_id, why);
	cl->dead = true;
	net_loop_del(&S.loop, &cl->c.h);
	cl->dead_next = S.dead;
	S.dead = cl;
}

static void client_reap(struct client *cl)
{
	watches_drop_watcher(&S.tree.watches, cl->c.id);
	struct session *se = cl->session_id ? sessions_get(&S.sessions, cl->session_id) : NULL;
	if (se && se->conn_id == cl->c.id)
		se->conn_id = 0;
	u64map_del(&S.clients, cl->c.id);
	uintptr_t n = (uintptr_t)u64map_get(&S.ip_count, cl->ip_key);
	if (n <= 1)
		u64map_del(&S.ip_count, cl->ip_key);
	else
		u64map_put(&S.ip_count, cl->ip_key, (void *)(n - 1));
	auth_ids_free(&cl->auth);
	conn_free_buffers(&cl->c);
	free(cl);
}

static struct client *client_by_id(uint64_t id)
{
	struct client *cl = u64map_get(&S.clients, id);
	return cl && !cl->dead ? cl : NULL;
}

/* Start a reply frame in the client's output; NULL if the client is gone. */
static struct client *reply_begin(struct client *cl, struct jute_out *out, size_t *mark,
				  int32_t xid, int64_t zxid, int32_t err)
{
	if (!cl || cl->dead)
		return NULL;
	jout_init(out, &cl->c.out);
	*mark = jout_frame_begin(out);
	jout_i32(out, xid);
	jout_i64(out, zxid);
	jout_i32(out, err);
	return cl;
}

static void reply_end(struct client *cl, struct jute_out *out, size_t mark)
{
	if (jout_frame_end(out, mark) < 0) {
		LOG_WARN("dropping %s (session 0x%llx): its output passed %zu bytes (it is not reading)",
			 cl->c.peer_str, (unsigned long long)cl->session_id, cl->c.out.max);
		client_close(cl, "output buffer limit reached");
		return;
	}
	cl->packets_out++;
	S.packets_out++;
	mark_dirty(cl);
}

static void note_latency(struct client *cl, int64_t start_ms, int32_t op, int32_t cxid, int64_t zxid)
{
	int64_t now = net_now_ms(&S.loop), lat = now - start_ms;
	if (lat < 0)
		lat = 0;
	S.lat_min = S.lat_cnt && S.lat_min < lat ? S.lat_min : lat;
	S.lat_max = S.lat_max > lat ? S.lat_max : lat;
	S.lat_sum += lat;
	S.lat_cnt++;
	if (!cl)
		return;
	cl->lat_min = cl->lat_cnt && cl->lat_min < lat ? cl->lat_min : lat;
	cl->lat_max = cl->lat_max > lat ? cl->lat_max : lat;
	cl->lat_sum += lat;
	cl->lat_cnt++;
	cl->last_latency = lat;
	cl->last_response_ms = now;
	cl->last_op = op;
	cl->last_cxid = cxid;
	cl->last_zxid = zxid;
}

/* Watch events: called from inside tree_apply/ops; must not close anything synchronously
 * that touches the watch tables, and client_close only defers that work. */
static void fire_event(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	(void)ctx;
	struct client *cl = client_by_id(watcher);
	const struct watches *w = &S.tree.watches;
	if (cl && w->event_acl) {
		/* NIOServerCnxn.process: an event about a znode this connection may not READ is
		 * dropped (the one-shot watch is gone all the same). */
		struct acl_who who = { cl->auth.bytes, cl->auth.len, S.cfg.skip_acl };
		if (!acl_allows(w->event_acl, w->event_acl_len, ZPERM_READ, &who))
			return;
	}
	struct jute_out out;
	size_t mark;
	if (!reply_begin(cl, &out, &mark, XID_NOTIFICATION, -1, 0))
		return;
	jout_i32(&out, event);
	jout_i32(&out, ZSTATE_SYNC_CONNECTED);
	jout_buf(&out, path, (int32_t)len);
	reply_end(cl, &out, mark);
}

/* ------------------------------------------------------------------ pipeline */

/* The ensemble's half of the pipeline (the "ensemble" section below). */
static bool ens_learner(void);
static bool ens_serving(void);
static bool leader_window_full(void);
static void ens_write_proposed(int64_t zxid);
static void apply_upto(int64_t zxid);
static void ens_durable(void);
static void learner_match(const struct txn *x, struct pending *p);

/* The pending queue starts small and doubles up to pq_max, so an idle server holds none. */
static int pq_reserve(void)
{
	if (S.pq_count < S.pq_cap)
		return 0;
	size_t ncap = S.pq_cap * 2;
	struct pending *n = malloc(ncap * sizeof *n);
	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < S.pq_count; i++)
		n[i] = S.pq[(S.pq_head + i) % S.pq_cap];
	free(S.pq);
	S.pq = n;
	S.pq_cap = ncap;
	S.pq_head = 0;
	return 0;
}

static struct pending *pq_push(void)
{
	if (pq_reserve() < 0)
		return NULL;
	return &S.pq[(S.pq_head + S.pq_count++) % S.pq_cap];
}

static bool pipeline_has_room(bool internal)
{
	if (S.ens.on && (S.ens.role != ROLE_LEADING || leader_window_full()))
		return false; /* learners forward their writes; the leader's window is full */
	size_t limit = (size_t)S.cfg.global_outstanding_limit;
	return internal ? S.pq_count < S.pq_max : S.pq_count < limit;
}

/* Prep a write and hand its txn to the log stage. Returns 0 or -errno. */
static int submit_write(struct client *cl, int64_t session, int32_t xid, int32_t type,
			const uint8_t *body, size_t len, int32_t timeout_ms, int32_t err)
{
	ZK_ASSERT(S.pq_count < S.pq_max);
	if (S.write_failed)
		return -EIO;
	if (pq_reserve() < 0)
		return -ENOMEM;
	bool ens = S.ens.on;
	if (ens && (S.ens.role != ROLE_LEADING || !ens_serving()))
		return -ENOTCONN;
	int64_t zxid = ens ? (int64_t)((uint64_t)S.ens.L.epoch << 32 | (S.ens.L.counter + 1u))
			   : zab_next_zxid(&S.zab);
	struct prep_req r = { .session = session, .cxid = xid, .type = type, .body = body,
			      .body_len = len, .zxid = zxid,
			      .time_ms = net_wall_ms(), .session_timeout_ms = timeout_ms, .err = err,
			      .internal = S.internal_write,
			      .auth = cl ? cl->auth.bytes : S.remote_ids,
			      .auth_len = cl ? cl->auth.len : S.remote_ids_len };
	struct jute_out out;
	size_t start = zbuf_len(&S.arena);
	jout_init(&out, &S.arena);
	int rc = prep_write(&S.prep, &r, &out);
	if (rc == 0 && !ens)
		rc = wal_append(&S.wal, r.zxid, zbuf_head(&S.arena) + start, zbuf_len(&S.arena) - start);
	if (rc < 0) {
		/* Nothing was logged for this zxid: give it back so zxids stay dense. */
		zbuf_truncate(&S.arena, start);
		if (!ens) {
			S.zab.counter--;
			S.zab.proposed_zxid = r.zxid - 1;
		}
		return rc;
	}
	struct pending *p = pq_push();
	ZK_ASSERT(p != NULL); /* room was made before prep ran */
	*p = (struct pending){ .zxid = r.zxid, .conn_id = cl ? cl->c.id : 0, .xid = xid,
			       .req_type = type, .start_ms = net_now_ms(&S.loop),
			       .txn_pos = S.arena_pos + start,
			       .txn_len = (uint32_t)(zbuf_len(&S.arena) - start) };
	if (cl)
		cl->inflight++;
	if (ens)
		ens_write_proposed(r.zxid); /* the leader machine: append, PROPOSAL to followers */
	return 0;
}

static void send_connect_response(struct client *cl, int32_t timeout, int64_t session,
				  const uint8_t *passwd)
{
	struct jute_out out;
	jout_init(&out, &cl->c.out);
	if (connect_resp_encode(&out, timeout, session, passwd, cl->has_ro_byte) < 0) {
		client_close(cl, "output buffer limit reached");
		return;
	}
	cl->packets_out++;
	S.packets_out++;
	mark_dirty(cl);
}

static void collect_multi_result(void *ctx, const struct txn *sub, const struct tree_result *res)
{
	ops_multi_result(ctx, sub, res);
}

/* A multi's reply: the header (err 0 even when an op failed, as ZooKeeper answers: the
 * errors are in the per-op results) and the body collected while it was applied, which
 * is after the watch events its ops fired. A response is at most about 3.4 times its
 * request (a 23-byte setData op answers with a 77-byte Stat), so it fits the output bound
 * (4 x jute.maxbuffer) unless the client stopped reading. */
static void reply_multi(struct client *cl, const struct pending *p, struct jute_out *body)
{
	struct jute_out out;
	size_t mark;
	ops_multi_end(body);
	if (body->err && cl && !cl->dead) {
		LOG_ERROR("multi 0x%llx: its response passed %zu bytes", (unsigned long long)p->zxid,
			  (size_t)REPLY_MAX);
		client_close(cl, "multi response too large");
		return;
	}
	if (!reply_begin(cl, &out, &mark, p->xid, p->zxid, 0))
		return;
	jout_raw(&out, zbuf_head(body->b), zbuf_len(body->b));
	reply_end(cl, &out, mark);
}

static void commit_one(const struct pending *pin)
{
	struct pending pl = *pin, *p = &pl;
	const uint8_t *bytes = zbuf_head(&S.arena) + (p->txn_pos - S.arena_pos);
	struct txn x;
	int rc = txn_decode(bytes, p->txn_len, &x);
	ZK_ASSERT(rc == 0); /* we encoded it ourselves, or checked the leader's */
	if (ens_learner() && p->conn_id == 0)
		learner_match(&x, p); /* one of our clients forwarded it? */
	struct tree_result res;
	struct jute_out multi_out;
	zbuf_reset(&S.scratch);
	jout_init(&multi_out, &S.scratch);
	rc = tree_apply_each(&S.tree, &x, &res, collect_multi_result, &multi_out);
	if (rc < 0) {
		LOG_ERROR("cannot apply txn 0x%llx: %s; stopping", (unsigned long long)p->zxid, strerror(-rc));
		exit(70);
	}
	prep_applied(&S.prep, p->zxid);
	hist_push(&S.ens.hist, p->zxid, bytes, p->txn_len);
	struct client *cl = p->conn_id ? client_by_id(p->conn_id) : NULL;
	if (cl) {
		ZK_ASSERT(cl->inflight > 0);
		cl->inflight--;
	}
	note_latency(cl, p->start_ms, p->req_type, p->xid, p->zxid);
	if (x.hdr.type == ZOP_CREATESESSION) {
		/* Every server tracks every session (a client may reconnect anywhere); only the
		 * leader expires them. */
		struct session *se = sessions_get(&S.sessions, x.hdr.client_id);
		if (!se)
			se = sessions_add(&S.sessions, x.hdr.client_id, x.timeout_ms, net_now_ms(&S.loop));
		if (se && cl && cl->state == CL_CONNECTING)
			se->conn_id = cl->c.id;
		if (cl && cl->state == CL_CONNECTING) {
			uint8_t pw[ZK_PASSWD_LEN];
			session_passwd(x.hdr.client_id, pw);
			cl->state = CL_READY;
			send_connect_response(cl, cl->timeout_ms, x.hdr.client_id, pw);
			mark_ready(cl);
		}
		return;
	}
	if (x.hdr.type == ZOP_CLOSESESSION) {
		struct session *se = sessions_get(&S.sessions, x.hdr.client_id);
		struct client *owner = se && se->conn_id ? client_by_id(se->conn_id) : NULL;
		sessions_remove(&S.sessions, x.hdr.client_id);
		struct jute_out out;
		size_t mark;
		if (reply_begin(cl, &out, &mark, p->xid, p->zxid, 0)) {
			reply_end(cl, &out, mark);
			cl->c.close_after_flush = true;
		}
		if (owner && owner != cl)
			client_close(owner, "session expired");
		return;
	}
	struct jute_out out;
	size_t mark;
	if (x.hdr.type == ZOP_MULTI) {
		reply_multi(cl, p, &multi_out);
	} else if (reply_begin(cl, &out, &mark, p->xid, p->zxid, res.err)) {
		ops_write_reply(p->req_type, &x, &res, &out);
		reply_end(cl, &out, mark);
	}
	zbuf_shrink(&S.scratch, 1 << 16);
	if (cl && !cl->dead && cl->inflight == 0)
		mark_ready(cl);
}

/* The log could not make a batch durable. Its txns are neither applied nor answered: the
 * clients waiting on them lose their connection (the outcome is unknown to them, which is
 * what ConnectionLoss means), and every later write is refused until a restart. */
static void log_failed(int rc)
{
	if (S.ens.on) {
		/* A member that cannot log can neither ack nor lead; staying up would win
		 * elections (its zxid is high) and stall the ensemble. Leave, as Apache's
		 * SyncRequestProcessor does: the others go on, nothing acked is lost. */
		LOG_ERROR("txn log write/sync failed in %s: %s; this ensemble member stops (nothing "
			  "unlogged was acknowledged)", S.log_dir, strerror(-rc));
		exit(70);
	}
	LOG_ERROR("txn log write/sync failed in %s: %s; the %zu txns of this batch are NOT durable "
		  "and were not acknowledged; refusing all writes until restart", S.log_dir,
		  strerror(-rc), S.pq_count);
	S.write_failed = true;
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
		struct client *cl = v;
		if (cl->inflight > 0 || cl->state == CL_CONNECTING)
			client_close(cl, "its write could not be made durable");
	}
}

static void maybe_snapshot(void);
static void serve_read(struct client *cl, int32_t xid, int32_t type, const uint8_t *body, size_t blen,
		       const uint8_t *ids, size_t ids_len, int64_t start);

/* A read that waited in the pipeline: every write its session sent before it is applied. */
static void run_deferred_read(const struct pending *p)
{
	struct client *cl = client_by_id(p->conn_id);
	if (!cl)
		return;
	ZK_ASSERT(cl->inflight > 0);
	cl->inflight--;
	const uint8_t *req = zbuf_head(&S.arena) + (p->txn_pos - S.arena_pos);
	size_t len = p->txn_len - p->auth_len;
	serve_read(cl, (int32_t)be32_get(req), (int32_t)be32_get(req + 4), req + 8, len - 8, req + len,
		   p->auth_len, p->start_ms);
	if (cl->inflight == 0)
		mark_ready(cl);
}

/* The log stage: sync the batch once, then commit and apply everything it made durable. */
static void sync_and_commit(void)
{
	if (S.write_failed)
		return;
	int rc = wal_complete(&S.wal);
	if (rc == 0 && wal_has_batch(&S.wal))
		rc = wal_flush(&S.wal);
	if (rc < 0) {
		log_failed(rc);
		return;
	}
	if (S.ens.on) {
		ens_durable(); /* the quorum machine decides what commits (APPLY) */
		apply_upto(S.commit_to);
	} else {
		apply_upto(zab_log_durable(&S.zab, S.wal.durable_zxid));
	}
	if (S.pipeline_blocked && pipeline_has_room(false) && wal_batch_fits(&S.wal, S.wal.batch.max / 2)) {
		S.pipeline_blocked = false;
		uint64_t id;
		void *v;
		for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);)
			mark_ready(v);
	}
}

/* ------------------------------------------------------------------ snapshots */

static uint64_t rng_next(void)
{
	uint64_t x = S.rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return S.rng = x;
}

/* ZooKeeper rolls the log after a random count in [snapCount/2 + 1, snapCount], so that
 * servers of an ensemble do not all snapshot at once. */
static void pick_snap_threshold(void)
{
	uint64_t half = (uint64_t)S.cfg.snap_count / 2;
	S.snap_threshold = half + 1 + (half ? rng_next() % half : 0);
}

static struct snap_session *session_list(size_t *n)
{
	*n = S.sessions.by_id.count;
	struct snap_session *v = calloc(*n ? *n : 1, sizeof *v);
	if (!v)
		return NULL;
	size_t k = 0;
	uint64_t id;
	void *p;
	for (size_t i = 0; u64map_next(&S.sessions.by_id, &i, &id, &p);)
		v[k++] = (struct snap_session){ (int64_t)id, ((struct session *)p)->timeout_ms };
	return v;
}

/* Write a snapshot in this process (at startup, before serving). */
static int snapshot_now(void)
{
	size_t n;
	struct snap_session *v = session_list(&n);
	if (!v)
		return -ENOMEM;
	char err[1400];
	int rc = snap_write(S.ops, S.snap_dir, S.tree.last_zxid, &S.tree, v, n, err, sizeof err);
	free(v);
	if (rc < 0)
		LOG_ERROR("%s", err);
	return rc;
}

/* The child: a copy-on-write image of the tree at fork time, written while the parent serves.
 * It closes every inherited socket first so a client the parent closes is really closed. */
static _Noreturn void snapshot_child(int64_t zxid)
{
	if (close_range(3, ~0u, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	/* Yield the CPU to the serving parent: the snapshot is background work. */
	if (nice(10) < 0)
		LOG_DEBUG("snapshot child: nice failed");
	size_t n;
	struct snap_session *v = session_list(&n);
	char err[1400];
	int rc = v ? snap_write(S.ops, S.snap_dir, zxid, &S.tree, v, n, err, sizeof err) : -ENOMEM;
	if (rc < 0)
		LOG_ERROR("%s", v ? err : "snapshot: out of memory");
	_exit(rc < 0 ? 1 : 0);
}

static void maybe_snapshot(void)
{
	if (S.snap_pid || (S.wal.txns_since_roll < S.snap_threshold && !S.snapshot_soon))
		return;
	S.snapshot_soon = false;
	wal_roll(&S.wal); /* the next txn starts a new log file */
	pick_snap_threshold();
	int64_t t0 = net_clock_ms();
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pid_t pid = fork();
	if (pid == 0)
		snapshot_child(S.tree.last_zxid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	int64_t us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
	if (us > S.max_snap_fork_us)
		S.max_snap_fork_us = us;
	if (pid < 0) {
		LOG_ERROR("cannot fork to take a snapshot: %s; will retry after the next roll", strerror(errno));
		return;
	}
	S.snap_pid = pid;
	S.snap_zxid = S.tree.last_zxid;
	S.last_snap_ms = t0;
	LOG_INFO("taking snapshot 0x%llx in process %d (fork took %lld us)",
		 (unsigned long long)S.snap_zxid, (int)pid, (long long)us);
}

/* Keep the newest autopurge.snapRetainCount snapshots and the logs they need. */
static void purge_old_files(void)
{
	struct wal_file *snaps, *logs;
	size_t ns, nl;
	if (wal_list(S.snap_dir, "snapshot", &snaps, &ns) < 0)
		return;
	size_t keep = (size_t)S.cfg.autopurge_snap_retain;
	if (ns <= keep || wal_list(S.log_dir, "log", &logs, &nl) < 0) {
		free(snaps);
		return;
	}
	int64_t oldest_kept = snaps[ns - keep].zxid;
	char path[1200];
	for (size_t i = 0; i + keep < ns; i++) {
		snprintf(path, sizeof path, "%s/%s", S.snap_dir, snaps[i].name);
		if (S.ops->unlink(path) == 0)
			LOG_INFO("purged %s", path);
	}
	/* A log is needed if it may hold a txn after the oldest kept snapshot: keep the last
	 * log starting at or before it, and everything after. */
	for (size_t i = 0; i + 1 < nl && logs[i + 1].zxid <= oldest_kept + 1; i++) {
		snprintf(path, sizeof path, "%s/%s", S.log_dir, logs[i].name);
		if (S.ops->unlink(path) == 0)
			LOG_INFO("purged %s", path);
	}
	free(snaps);
	free(logs);
}

static void on_purge(struct net_loop *l, struct net_timer *t)
{
	purge_old_files();
	net_timer_arm(l, t, net_now_ms(l) + (int64_t)S.cfg.autopurge_interval_h * 3600 * 1000);
}

static void reap_snapshot_child_status(int status)
{
	S.snap_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		S.snapshots_taken++;
		LOG_INFO("snapshot 0x%llx written in %lld ms", (unsigned long long)S.snap_zxid,
			 (long long)(net_clock_ms() - S.last_snap_ms));
		if (S.cfg.autopurge_interval_h > 0)
			purge_old_files(); /* keep snapRetainCount between the timer's runs too */
	} else {
		LOG_ERROR("snapshot 0x%llx failed (child status %d); the logs still hold every txn",
			  (unsigned long long)S.snap_zxid, status);
	}
}

static void reap_snapshot_child(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != S.snap_pid)
			continue;
		reap_snapshot_child_status(status);
	}
}

/* ------------------------------------------------------------------ ensemble
 *
 * Quorum mode (more than one server.N line). net/election.c runs Fast Leader Election over
 * the election port; its decision starts zab/quorum.c's leader or learner machine, which
 * this section drives: QuorumPackets on the quorum port in and out (one `struct qlink` per
 * peer connection, net/qlink.c, in the same loop as the clients), the machine's actions mapped onto the
 * pipeline (APPEND -> the log stage, APPLY -> commit_one, PERSIST -> the epoch files,
 * TRUNCATE/SNAP -> wal/snap), and the log's durable point fed back as DURABLE.
 *
 * Txn bytes by zxid: the uncommitted ones are the pending queue's (arena), the committed
 * ones the history ring's (the last commitLogCount / HIST_MAX_BYTES applied, filled from the
 * logs at recovery too): a learner whose last zxid is older than the ring gets a SNAP.
 *
 * Clients of a learner: writes (and createSession/closeSession) go to the leader as REQUEST
 * packets; the learner answers them when it applies the committed txn carrying the same
 * (session, cxid). A client's reads and syncs wait while it has writes forwarded, so it
 * sees its own writes in order. A server that is not serving (LOOKING, or still syncing)
 * closes its clients so they fail over. */

#define HIST_MAX_BYTES (64u << 20)
#define BACKLOG_MAX (64u << 20)    /* leader: learners' REQUESTs waiting for pipeline room */
#define ENS_SYNCS_MAX QUORUM_SYNCS_MAX

static const char *role_name(void)
{
	switch (S.ens.role) {
	case ROLE_LEADING: return "leader";
	case ROLE_FOLLOWING: return "follower";
	case ROLE_OBSERVING: return "observer";
	case ROLE_LOOKING: return "looking";
	default: return "standalone";
	}
}

static bool ens_serving(void)
{
	if (!S.ens.on)
		return true;
	if (S.ens.role == ROLE_LEADING)
		return S.ens.L.phase == QUORUM_BROADCAST && !S.ens.L.lost;
	if (S.ens.role == ROLE_FOLLOWING || S.ens.role == ROLE_OBSERVING)
		return S.ens.F.phase == QUORUM_BROADCAST && !S.ens.F.lost && S.ens.link && !S.ens.link->dead;
	return false;
}

static bool ens_learner(void)
{
	return S.ens.on && (S.ens.role == ROLE_FOLLOWING || S.ens.role == ROLE_OBSERVING);
}

/* The txn bytes of zxid from the history ring or the pending queue. */
static bool txn_lookup(int64_t zxid, const uint8_t **p, size_t *len)
{
	if (hist_lookup(&S.ens.hist, zxid, p, len))
		return true;
	for (size_t i = 0; i < S.pq_count; i++) {
		const struct pending *q = &S.pq[(S.pq_head + i) % S.pq_cap];
		if (q->read || q->zxid != zxid)
			continue;
		*p = zbuf_head(&S.arena) + (q->txn_pos - S.arena_pos);
		*len = q->txn_len;
		return true;
	}
	return false;
}

/* Every txn we hold in (from, to], in zxid order. */
static void txn_each(int64_t from, int64_t to, hist_fn fn, void *ctx)
{
	hist_each(&S.ens.hist, from, to, fn, ctx);
	for (size_t i = 0; i < S.pq_count; i++) {
		const struct pending *q = &S.pq[(S.pq_head + i) % S.pq_cap];
		if (!q->read && q->zxid > from && q->zxid <= to)
			fn(q->zxid, zbuf_head(&S.arena) + (q->txn_pos - S.arena_pos), q->txn_len, ctx);
	}
}

/* The last zxid in our log: appended (maybe not yet durable), applied or not. */
static int64_t last_logged(void)
{
	int64_t z = S.tree.last_zxid;
	for (size_t i = 0; i < S.pq_count; i++) {
		const struct pending *q = &S.pq[(S.pq_head + i) % S.pq_cap];
		if (!q->read && q->zxid > z)
			z = q->zxid;
	}
	return z;
}

/* ACKEPOCH's floor: the largest zxid of our log <= z, or -1 when z is older than the ring. */
static int64_t log_floor(int64_t z)
{
	int64_t f;
	if (hist_floor(&S.ens.hist, z, &f) < 0)
		return -1;
	for (size_t i = 0; i < S.pq_count; i++) {
		const struct pending *q = &S.pq[(S.pq_head + i) % S.pq_cap];
		if (!q->read && q->zxid <= z && q->zxid > f)
			f = q->zxid;
	}
	return f;
}

/* ---- quorum links ---- */

static void sync_done(uint64_t cookie);
static void prep_reset(void);
static void ens_run(struct quorum_actions *acts);
static void ens_step(const struct quorum_event *ev);
static void ens_go_looking(const char *why);

/* A link closed (net/qlink.c calls this once per link): what it means to ZAB. */
static void link_closed(void *ctx, struct qlink *k)
{
	(void)ctx;
	if (k == S.ens.link && S.ens.snap_mode) { /* a SNAP cut short: its partial file goes */
		snap_spool_abort(&S.ens.spool);
		S.ens.snap_mode = false;
	}
	if (k == S.ens.link) {
		S.ens.link = NULL;
		if (ens_learner() && S.ens.F.my_sid != 0 && S.ens.F.phase == QUORUM_DISCOVERY &&
		    S.ens.F.epoch == 0) {
			/* Closed before the leader said LEADERINFO: it may not lead yet (its own
			 * election still running). Dial again within initLimit, as Apache's
			 * connectToLeader retries. */
			S.ens.F = (struct quorum_learner){ .lost = false };
		} else if (ens_learner() && !S.ens.F.lost) {
			S.ens.lost_leader = true; /* handled after the current step */
		}
	} else if (S.ens.role == ROLE_LEADING && k->sid >= 0) {
		struct quorum_event ev = { .type = QUORUM_EV_DISCONNECT, .from = k->sid };
		ens_step(&ev);
	}
}

/* ---- clients while the role changes ---- */

static void close_clients(const char *why)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
		struct client *cl = v;
		if (cl->state != CL_NEW)
			client_close(cl, why);
	}
	for (int i = 0; i < ENS_SYNCS_MAX; i++) {
		free(S.ens.syncs[i].req);
		S.ens.syncs[i] = (struct ens_sync){ 0 };
	}
}

/* ---- actions ---- */

struct send_ctx { struct qlink *k; int32_t ptype; bool with_commit; };

static void send_one(int64_t zxid, const uint8_t *p, size_t len, void *ctx)
{
	struct send_ctx *s = ctx;
	bool data = s->ptype == QP_PROPOSAL || s->ptype == QP_INFORM;
	qlink_send(s->k, s->ptype, zxid, data ? p : NULL, data ? (int32_t)len : -1, NULL, 0);
	if (s->with_commit)
		qlink_send(s->k, QP_COMMIT, zxid, NULL, -1, NULL, 0);
}

/* The learner's PING answer carries the sessions its clients touched since the last one
 * (Learner.ping: long id, int timeout each), so the leader, which expires sessions, keeps
 * them alive. */
static void send_ping_answer(struct qlink *k, int64_t zxid)
{
	struct zbuf *b = &S.scratch;
	zbuf_reset(b);
	struct jute_out o;
	jout_init(&o, b);
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
		struct client *cl = v;
		if (cl->dead || cl->state != CL_READY || !cl->touched)
			continue;
		cl->touched = false;
		jout_i64(&o, cl->session_id);
		jout_i32(&o, cl->timeout_ms);
	}
	qlink_send(k, QP_PING, zxid, zbuf_head(b), (int32_t)zbuf_len(b), NULL, 0);
	zbuf_reset(b);
}

static void send_snapshot(struct qlink *k, int64_t zxid)
{
	ZK_ASSERT(S.tree.last_zxid == zxid);
	qlink_send(k, QP_SNAP, zxid, NULL, -1, NULL, 0);
	size_t n;
	struct snap_session *v = session_list(&n);
	int rc = v ? snap_stream_write(&k->c.out, &S.tree, v, n) : -ENOMEM;
	free(v);
	if (rc < 0)
		qlink_close(k, "cannot stream a snapshot to it");
	S.ens.snaps_sent++;
}

static void act_send(const struct quorum_action *a)
{
	struct qlink *k = ens_learner() ? S.ens.link : qlink_of(&S.ens.links, a->to);
	if (!k)
		return;
	if (a->range) {
		struct send_ctx s = { k, a->ptype, a->with_commit };
		txn_each(a->from, a->zxid, send_one, &s);
		return;
	}
	switch (a->ptype) {
	case QP_PROPOSAL: case QP_INFORM: {
		const uint8_t *p;
		size_t len;
		bool have = txn_lookup(a->zxid, &p, &len);
		ZK_ASSERT(have);
		qlink_send(k, a->ptype, a->zxid, p, (int32_t)len, NULL, 0);
		S.ens.last_proposal_size = (int64_t)len;
		if ((int64_t)len > S.ens.max_proposal_size)
			S.ens.max_proposal_size = (int64_t)len;
		if (S.ens.min_proposal_size < 0 || (int64_t)len < S.ens.min_proposal_size)
			S.ens.min_proposal_size = (int64_t)len;
		return;
	}
	case QP_SNAP:
		send_snapshot(k, a->zxid);
		return;
	case QP_LEADERINFO:
		qlink_send_int(k, a->ptype, a->zxid, PEER_LEARNER_PROTOCOL);
		return;
	case QP_ACKEPOCH:
		qlink_send_int(k, a->ptype, a->zxid, (int32_t)a->epoch);
		return;
	case QP_FOLLOWERINFO: case QP_OBSERVERINFO: {
		struct zbuf b;
		zbuf_init(&b, 64);
		struct jute_out o;
		jout_init(&o, &b);
		struct learner_info li = { .sid = S.cfg.myid, .protocol_version = PEER_LEARNER_PROTOCOL,
					   .config_version = 0, .fields = 3 };
		learner_info_encode(&o, &li);
		qlink_send(k, a->ptype, a->zxid, zbuf_head(&b), (int32_t)zbuf_len(&b), NULL, 0);
		zbuf_free(&b);
		return;
	}
	case QP_PING:
		if (ens_learner())
			send_ping_answer(k, a->zxid);
		else
			qlink_send(k, QP_PING, a->zxid, NULL, -1, NULL, 0);
		return;
	case QP_SYNC:
		for (int i = 0; i < (a->count > 0 ? a->count : 1); i++)
			qlink_send(k, QP_SYNC, a->zxid, NULL, -1, NULL, 0);
		return;
	default:
		qlink_send(k, a->ptype, a->zxid, NULL, -1, NULL, 0);
	}
}

static void append_txn(int64_t zxid)
{
	const uint8_t *p;
	size_t len;
	bool have = txn_lookup(zxid, &p, &len);
	ZK_ASSERT(have);
	int rc = wal_append(&S.wal, zxid, p, len);
	if (rc == -ENOBUFS) { /* the batch is full: make it durable now, then go on */
		rc = wal_sync(&S.wal);
		if (rc == 0)
			rc = wal_append(&S.wal, zxid, p, len);
	}
	if (rc < 0)
		log_failed(rc);
}

static void apply_upto(int64_t zxid);

static void ens_persisted(int32_t which, int64_t epoch)
{
	const char *name = which == QUORUM_ACCEPTED_EPOCH ? "acceptedEpoch" : "currentEpoch";
	int rc = wal_epoch_write(S.ops, S.cfg.data_dir, name, epoch);
	if (rc < 0) {
		LOG_ERROR("cannot write %s/%s: %s; stopping", S.cfg.data_dir, name, strerror(-rc));
		exit(70); /* Apache exits too: the epoch protocol cannot go on without it */
	}
	if (which == QUORUM_ACCEPTED_EPOCH)
		S.ens.accepted_epoch = epoch;
	else
		S.ens.current_epoch = epoch;
	struct quorum_event ev = { .type = QUORUM_EV_PERSISTED, .which = which };
	ens_step(&ev);
}

/* Forget the pending txns above zxid (uncommitted proposals a TRUNC or a SNAP removes). */
static void pq_drop_above(int64_t zxid)
{
	while (S.pq_count > 0) {
		struct pending *q = &S.pq[(S.pq_head + S.pq_count - 1) % S.pq_cap];
		if (!q->read && q->zxid <= zxid)
			break;
		zbuf_truncate(&S.arena, q->txn_pos - S.arena_pos);
		S.pq_count--;
	}
}

static int restore_session(void *ctx, int64_t id, int32_t timeout_ms);
static void forget_session(void *ctx, int64_t id);
static int hist_from_log(void *ctx, int64_t zxid, const uint8_t *p, size_t len)
{
	(void)ctx;
	hist_push(&S.ens.hist, zxid, p, len);
	return 0;
}

static void sessions_clear(void)
{
	uint64_t id;
	void *v;
	int64_t ids[256];
	for (;;) {
		size_t n = 0;
		for (size_t i = 0; n < 256 && u64map_next(&S.sessions.by_id, &i, &id, &v);)
			ids[n++] = (int64_t)id;
		if (n == 0)
			return;
		for (size_t i = 0; i < n; i++)
			sessions_remove(&S.sessions, ids[i]);
	}
}

/* Reload the tree from disk up to zxid (a TRUNC cut txns our tree already applied). */
static void reload_upto(int64_t zxid)
{
	LOG_WARN("reloading the database up to 0x%llx (the leader truncated our log)",
		 (unsigned long long)zxid);
	prep_free(&S.prep);
	tree_free(&S.tree);
	sessions_clear();
	if (tree_init(&S.tree, fire_event, NULL) < 0) {
		LOG_ERROR("out of memory reloading the database; stopping");
		exit(70);
	}
	hist_reset(&S.ens.hist, -1);
	struct recover_cb cb = { .session_add = restore_session, .session_remove = forget_session };
	struct recover_opts opts = { .limited = true, .upto = zxid, .on_txn = hist_from_log };
	struct recover_result res;
	char err[2048];
	int rc = recover_with(S.ops, S.snap_dir, S.log_dir, &S.tree, &cb, &opts, &res, err, sizeof err);
	if (rc < 0) {
		LOG_ERROR("cannot reload the database: %s; stopping", err);
		exit(70);
	}
	hist_recovered(&S.ens.hist, S.tree.last_zxid, res.snap_zxid);
	prep_reset();
}

/* A forked snapshot child may still rename a snapshot into place: wait for it before the
 * history changes under it (a TRUNC or a SNAP removes snapshots past its point). */
static void snapshot_child_wait(void)
{
	while (S.snap_pid) {
		int status;
		pid_t pid = waitpid(S.snap_pid, &status, 0);
		if (pid == S.snap_pid)
			reap_snapshot_child_status(status);
		else if (errno != EINTR)
			S.snap_pid = 0; /* not ours to wait for any more */
	}
}

static void act_truncate(int64_t zxid)
{
	char err[512] = "";
	S.ens.truncs++;
	pq_drop_above(zxid);
	snapshot_child_wait();
	int rc = wal_truncate(&S.wal, zxid, err, sizeof err);
	if (rc == 0) {
		rc = snap_remove_after(S.ops, S.snap_dir, zxid);
		if (rc < 0)
			snprintf(err, sizeof err, "removing snapshots past it: %s", strerror(-rc));
	}
	if (rc < 0) {
		LOG_ERROR("cannot truncate the log to 0x%llx: %s; stopping", (unsigned long long)zxid,
			  err[0] ? err : strerror(-rc));
		exit(70);
	}
	if (S.tree.last_zxid > zxid)
		reload_upto(zxid);
	if (S.commit_to > zxid)
		S.commit_to = zxid;
	hist_truncate_after(&S.ens.hist, zxid);
}

static void ens_run(struct quorum_actions *acts)
{
	for (int i = 0; i < acts->n; i++) {
		const struct quorum_action *a = &acts->a[i];
		switch (a->type) {
		case QUORUM_ACT_SEND:
			act_send(a);
			break;
		case QUORUM_ACT_APPEND:
			append_txn(a->zxid);
			break;
		case QUORUM_ACT_APPLY:
			apply_upto(a->zxid);
			break;
		case QUORUM_ACT_SYNC_DONE:
			sync_done(a->cookie);
			break;
		case QUORUM_ACT_LOOKING:
			if (S.ens.role == ROLE_LEADING && a->to != S.cfg.myid) {
				struct qlink *k = qlink_of(&S.ens.links, a->to);
				if (k)
					qlink_close(k, "dropped by the leader");
				break;
			}
			ens_go_looking("the quorum machine left its epoch");
			return;
		case QUORUM_ACT_PERSIST:
			ens_persisted(a->which, a->epoch);
			break;
		case QUORUM_ACT_TRUNCATE:
			act_truncate(a->zxid);
			break;
		case QUORUM_ACT_SNAP:
			if (S.ens.link) {
				struct qlink *k = S.ens.link;
				char err[512];
				snapshot_child_wait();
				if (snap_spool_open(&S.ens.spool, S.ops, S.snap_dir, a->zxid, err, sizeof err) < 0) {
					LOG_ERROR("cannot take the leader's snapshot: %s", err);
					qlink_close(k, "cannot spool its snapshot");
					break;
				}
				S.ens.snap_mode = true;
				S.ens.snap_zxid = a->zxid;
			}
			break;
		}
	}
}

static void ens_step(const struct quorum_event *ev)
{
	struct quorum_actions acts = { 0 };
	int rc;
	if (S.ens.role == ROLE_LEADING)
		rc = quorum_leader_step(&S.ens.L, ev, &acts);
	else if (ens_learner())
		rc = quorum_learner_step(&S.ens.F, ev, &acts);
	else
		return;
	(void)rc;
	ens_run(&acts);
}

/* ---- applying ---- */

static void pq_pop_head(void)
{
	struct pending *q = &S.pq[S.pq_head];
	zbuf_consume(&S.arena, q->txn_len);
	S.arena_pos += q->txn_len;
	S.pq_head = (S.pq_head + 1) % S.pq_cap;
	S.pq_count--;
}

/* Commit and apply every pending entry up to `to` (deferred reads in between run in order). */
static void apply_upto(int64_t to)
{
	if (to > S.commit_to)
		S.commit_to = to;
	while (S.pq_count > 0 && (S.pq[S.pq_head].read || S.pq[S.pq_head].zxid <= S.commit_to)) {
		struct pending p = S.pq[S.pq_head];
		if (p.read)
			run_deferred_read(&p);
		else
			commit_one(&p);
		pq_pop_head();
	}
	if (S.pq_count == 0)
		zbuf_shrink(&S.arena, 1 << 20);
	if (S.ens.on && zbuf_len(&S.ens.backlog) > 0)
		S.ens.links.work = true; /* room may have come for learners' waiting REQUESTs */
}

/* ---- syncs ---- */

static int sync_submit(struct client *cl, int32_t xid, const uint8_t *p, size_t len)
{
	int slot = -1;
	for (int i = 0; i < ENS_SYNCS_MAX && slot < 0; i++)
		if (!S.ens.syncs[i].req)
			slot = i;
	if (slot < 0) {
		S.ens.sync_waiters = true; /* woken when one finishes */
		return 0;
	}
	uint64_t cookie = ++S.ens.next_cookie;
	struct quorum_event ev = { .type = QUORUM_EV_SYNC, .cookie = cookie };
	struct quorum_actions acts = { 0 };
	int rc = S.ens.role == ROLE_LEADING ? quorum_leader_step(&S.ens.L, &ev, &acts)
					     : quorum_learner_step(&S.ens.F, &ev, &acts);
	if (rc == -EBUSY) {
		S.ens.sync_waiters = true;
		return 0;
	}
	if (rc < 0)
		return -ENOTCONN;
	uint8_t *copy = malloc(len);
	ZK_ASSERT(copy != NULL || len == 0);
	memcpy(copy, p, len);
	S.ens.syncs[slot] = (struct ens_sync){ .cookie = cookie, .conn_id = cl->c.id, .req = copy,
					       .len = len, .start_ms = net_now_ms(&S.loop) };
	(void)xid;
	cl->sync_wait = true;
	S.ens.pending_syncs++;
	ens_run(&acts);
	return 1;
}

static void sync_done(uint64_t cookie)
{
	for (int i = 0; i < ENS_SYNCS_MAX; i++) {
		struct ens_sync *s = &S.ens.syncs[i];
		if (!s->req || s->cookie != cookie)
			continue;
		struct client *cl = client_by_id(s->conn_id);
		if (cl) {
			cl->sync_wait = false;
			const uint8_t *r = s->req;
			serve_read(cl, (int32_t)be32_get(r), ZOP_SYNC, r + 8, s->len - 8, cl->auth.bytes,
				   cl->auth.len, s->start_ms);
			mark_ready(cl);
		}
		free(s->req);
		*s = (struct ens_sync){ 0 };
		S.ens.pending_syncs--;
		if (S.ens.sync_waiters) { /* a slot is free: clients that waited for one retry */
			S.ens.sync_waiters = false;
			uint64_t id;
			void *v;
			for (size_t j = 0; u64map_next(&S.clients, &j, &id, &v);)
				mark_ready(v);
		}
		return;
	}
}

/* ---- packets ---- */

/* A learner's REQUEST at the leader: sessionId, cxid, type, then the request body; the
 * client's ids in authinfo. Submitted like a local write, answered by the learner. */
static int leader_request(const struct quorum_packet *q)
{
	if (q->data_len < 16)
		return -EBADMSG;
	int64_t session = (int64_t)be64_get(q->data);
	int32_t cxid = (int32_t)be32_get(q->data + 8), type = (int32_t)be32_get(q->data + 12);
	const uint8_t *body = q->data + 16;
	size_t blen = (size_t)q->data_len - 16;
	if (!prep_is_write(type) || !ens_serving())
		return -EBADMSG;
	if (!pipeline_has_room(false) || !wal_batch_fits(&S.wal, type == ZOP_MULTI ? 2 * blen : blen) ||
	    leader_window_full())
		return -EAGAIN;
	static const uint8_t empty[4] = { 0 };
	S.remote_ids = empty;
	S.remote_ids_len = 4;
	if (q->nauth > 0) {
		S.remote_ids = q->auth - 4; /* the vector, count included */
		S.remote_ids_len = q->auth_len + 4;
	}
	int32_t timeout = 0, err = 0;
	if (type == ZOP_CREATESESSION) {
		if (blen < 4)
			return -EBADMSG;
		timeout = (int32_t)be32_get(body);
		body = NULL;
		blen = 0;
	} else {
		struct session *se = sessions_get(&S.sessions, session);
		err = !se || se->closing ? ZSESSIONEXPIRED : 0;
		if (type == ZOP_CLOSESESSION && se && !se->closing)
			sessions_set_closing(&S.sessions, se);
		if (se)
			sessions_touch(&S.sessions, se, net_now_ms(&S.loop));
	}
	int rc = submit_write(NULL, session, cxid, type, body, blen, timeout, err);
	if (rc == -EBADMSG) /* the client's malformed body: its answer is an error txn */
		rc = submit_write(NULL, session, cxid, type, body, blen, timeout, ZMARSHALLINGERROR);
	S.remote_ids = NULL;
	S.remote_ids_len = 0;
	return rc;
}

/* Sessions a learner's clients touched (its PING answer). */
static void leader_touch(const struct quorum_packet *q)
{
	int64_t now = net_now_ms(&S.loop);
	for (int32_t off = 0; q->data && off + 12 <= q->data_len; off += 12) {
		struct session *se = sessions_get(&S.sessions, (int64_t)be64_get(q->data + off));
		if (se && !se->closing)
			sessions_touch(&S.sessions, se, now);
	}
}

/* The first packet of an accepted link: who is it? */
static bool leader_bind(struct qlink *k, const struct quorum_packet *q)
{
	struct learner_info li;
	if ((q->type != QP_FOLLOWERINFO && q->type != QP_OBSERVERINFO) ||
	    learner_info_decode(q->data, q->data_len, &li) < 0) {
		qlink_close(k, "first packet is not FOLLOWERINFO/OBSERVERINFO");
		return false;
	}
	bool known = false;
	for (int i = 0; i < S.cfg.nservers; i++)
		known |= S.cfg.servers[i].sid == li.sid;
	if (!known || li.sid == S.cfg.myid) {
		qlink_close(k, "learner sid not in our configuration");
		return false;
	}
	struct qlink *old = qlink_of(&S.ens.links, li.sid);
	if (old)
		qlink_close(old, "the learner reconnected");
	k->sid = li.sid;
	return true;
}

static void leader_packet(struct qlink *k, const struct quorum_packet *q)
{
	if (k->sid < 0 && !leader_bind(k, q))
		return;
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = k->sid, .ptype = q->type,
				   .zxid = q->zxid };
	switch (q->type) {
	case QP_REQUEST: {
		/* Behind waiting REQUESTs a new one waits too: one learner's client's writes
		 * must get their zxids in the order it sent them. */
		int rc = zbuf_len(&S.ens.backlog) > 0 ? -EAGAIN : leader_request(q);
		if (rc == -EAGAIN) {
			/* No room now: keep it (bounded) and go on reading this link's ACKs. */
			if (zbuf_len(&S.ens.backlog) + (size_t)q->data_len + 64 > BACKLOG_MAX) {
				qlink_close(k, "too many requests waiting");
				return;
			}
			struct jute_out o;
			jout_init(&o, &S.ens.backlog);
			jout_i64(&o, k->sid);
			jout_buf(&o, q->data, q->data_len);
			jout_i32(&o, q->nauth > 0 ? (int32_t)(q->auth_len + 4) : 4);
			if (q->nauth > 0)
				jout_raw(&o, q->auth - 4, q->auth_len + 4);
			else
				jout_i32(&o, 0);
			return;
		}
		if (rc < 0)
			qlink_close(k, "bad REQUEST");
		return;
	}
	case QP_PING:
		leader_touch(q);
		break;
	case QP_ACKEPOCH: {
		int32_t e;
		if (quorum_int_payload_decode(q->data, q->data_len, &e) < 0) {
			qlink_close(k, "bad ACKEPOCH");
			return;
		}
		ev.epoch = e;
		ev.floor = log_floor(q->zxid);
		break;
	}
	case QP_REVALIDATE:
		return; /* our learners check sessions locally; nothing to answer */
	default:
		break;
	}
	ens_step(&ev);
}

/* Leader: REQUESTs that waited for room, in arrival order. */
static void backlog_drain(void)
{
	while (zbuf_len(&S.ens.backlog) > 0 && S.ens.role == ROLE_LEADING) {
		const uint8_t *p = zbuf_head(&S.ens.backlog);
		int32_t dlen = (int32_t)be32_get(p + 8);
		int32_t alen = (int32_t)be32_get(p + 12 + dlen);
		const uint8_t *ids = p + 16 + dlen;
		struct quorum_packet q = { .type = QP_REQUEST, .data = p + 12, .data_len = dlen,
					   .nauth = (int32_t)be32_get(ids), .auth = ids + 4,
					   .auth_len = (size_t)alen - 4 };
		int64_t from = (int64_t)be64_get(p);
		int rc = leader_request(&q);
		if (rc == -EAGAIN)
			return;
		zbuf_consume(&S.ens.backlog, 16 + (size_t)dlen + (size_t)alen);
		if (rc < 0) { /* its client would wait forever: make its learner resync */
			struct qlink *k = qlink_of(&S.ens.links, from);
			if (k)
				qlink_close(k, "a REQUEST it sent failed");
		}
	}
	if (S.ens.role != ROLE_LEADING)
		zbuf_reset(&S.ens.backlog);
}

/* A learner's PROPOSAL or INFORM: its txn joins the pending queue before the machine says
 * APPEND; if the machine refuses it, it leaves again. */
static void learner_txn_packet(struct qlink *k, const struct quorum_packet *q)
{
	struct txn x;
	if (q->data_len <= 0 || txn_decode(q->data, (size_t)q->data_len, &x) < 0 || x.hdr.zxid != q->zxid ||
	    pq_reserve() < 0) {
		qlink_close(k, "undecodable PROPOSAL/INFORM");
		return;
	}
	size_t start = zbuf_len(&S.arena);
	if (zbuf_append(&S.arena, q->data, (size_t)q->data_len) < 0) {
		qlink_close(k, "out of memory for a proposal");
		return;
	}
	struct pending *p = pq_push();
	*p = (struct pending){ .zxid = q->zxid, .txn_pos = S.arena_pos + start,
			       .txn_len = (uint32_t)q->data_len, .start_ms = net_now_ms(&S.loop) };
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = k->sid, .ptype = q->type,
				   .zxid = q->zxid };
	struct quorum_actions acts = { 0 };
	quorum_learner_step(&S.ens.F, &ev, &acts);
	bool appended = false;
	for (int i = 0; i < acts.n; i++)
		appended |= acts.a[i].type == QUORUM_ACT_APPEND && acts.a[i].zxid == q->zxid;
	if (!appended) { /* refused, or we had it already (an observer's INFORM): take back
			  * only the entry just pushed, never an earlier logged copy */
		ZK_ASSERT(S.pq_count > 0 && S.pq[(S.pq_head + S.pq_count - 1) % S.pq_cap].zxid == q->zxid);
		S.pq_count--;
		zbuf_truncate(&S.arena, start);
	}
	ens_run(&acts);
}

static void learner_packet(struct qlink *k, const struct quorum_packet *q)
{
	if (q->type == QP_PROPOSAL || q->type == QP_INFORM) {
		learner_txn_packet(k, q);
		return;
	}
	struct quorum_event ev = { .type = QUORUM_EV_PACKET, .from = k->sid, .ptype = q->type,
				   .zxid = q->zxid };
	ens_step(&ev);
}

/* After SNAP: the leader's database follows on the stream. Install it: a new tree, the
 * snapshot on disk (fsynced) before the machine hears it is durable, the log continuing
 * after it. A parse is tried when the socket has been drained or the buffer doubled since
 * the last try (each try starts over). */
static int collect_snap_session(void *ctx, int64_t id, int32_t timeout_ms)
{
	(void)ctx;
	if (S.ens.snap_sessions_n == S.ens.snap_sessions_cap) {
		size_t ncap = S.ens.snap_sessions_cap ? S.ens.snap_sessions_cap * 2 : 64;
		struct snap_session *n = realloc(S.ens.snap_sessions, ncap * sizeof *n);
		if (!n)
			return -ENOMEM;
		S.ens.snap_sessions = n;
		S.ens.snap_sessions_cap = ncap;
	}
	S.ens.snap_sessions[S.ens.snap_sessions_n++] = (struct snap_session){ id, timeout_ms };
	return 0;
}

static int learner_snapshot(struct qlink *k)
{
	/* Spooled into snapshot.<zxid> as it arrives: the buffer holds one node at most. */
	size_t used = 0;
	int rc = snap_spool_feed(&S.ens.spool, zbuf_head(&k->c.in), zbuf_len(&k->c.in), &used);
	zbuf_consume(&k->c.in, used);
	if (rc == -EAGAIN)
		return 0;
	if (rc < 0) {
		LOG_ERROR("bad snapshot stream from the leader: %s", strerror(-rc));
		snap_spool_abort(&S.ens.spool);
		S.ens.snap_mode = false;
		return rc;
	}
	int64_t zxid = S.ens.snap_zxid;
	S.ens.snap_mode = false;
	/* Our log past zxid is another history: cut it before the snapshot is in place, so a
	 * crash in between leaves an older, consistent state rather than stale txns that a
	 * restart would replay over the new snapshot. */
	snapshot_child_wait();
	char err[512] = "";
	rc = wal_sync(&S.wal);
	if (rc == 0)
		rc = wal_snap_installed(&S.wal, zxid, err, sizeof err);
	struct tree t;
	if (rc == 0 && tree_init(&t, fire_event, NULL) < 0)
		rc = -ENOMEM;
	S.ens.snap_sessions_n = 0;
	if (rc == 0) {
		rc = snap_spool_finish(&S.ens.spool, &t, collect_snap_session, NULL, err, sizeof err);
		if (rc < 0)
			tree_free(&t);
	} else {
		snap_spool_abort(&S.ens.spool);
	}
	if (rc == 0 && snap_remove_after(S.ops, S.snap_dir, zxid) < 0)
		rc = -EIO; /* our own snapshots past it are of another history */
	if (rc < 0) {
		LOG_ERROR("cannot install the leader's snapshot 0x%llx: %s; stopping",
			  (unsigned long long)zxid, err[0] ? err : strerror(-rc));
		exit(70);
	}
	pq_drop_above(-1);
	prep_free(&S.prep);
	tree_free(&S.tree);
	S.tree = t;
	S.tree.last_zxid = zxid;
	sessions_clear();
	for (size_t i = 0; i < S.ens.snap_sessions_n; i++)
		sessions_add(&S.sessions, S.ens.snap_sessions[i].id, S.ens.snap_sessions[i].timeout_ms,
			     net_now_ms(&S.loop));
	prep_reset();
	hist_reset(&S.ens.hist, zxid);
	S.commit_to = zxid;
	S.ens.snaps_received++;
	LOG_INFO("installed the leader's snapshot 0x%llx (%llu znodes)", (unsigned long long)zxid,
		 (unsigned long long)S.tree.node_count);
	struct quorum_event ev = { .type = QUORUM_EV_DURABLE, .zxid = zxid };
	ens_step(&ev);
	return 1;
}

/* Read and handle whole packets from one link. */
static void link_service(struct qlink *k)
{
	if (k->connecting)
		return;
	if (k->c.readable)
		conn_read(&k->c);
	int budget = 4096; /* packets per round, so one busy learner cannot starve the rest */
	while (!k->dead && budget-- > 0) {
		if (k == S.ens.link && S.ens.snap_mode) {
			int rc = learner_snapshot(k);
			if (rc < 0)
				qlink_close(k, "bad snapshot stream");
			if (rc <= 0)
				break;
			continue;
		}
		struct quorum_packet q;
		size_t used;
		/* A txn may be larger than its request (a multi of sequential creates: about 1.4
		 * times), as may a REQUEST with its header: twice jute.maxbuffer. */
		int rc = quorum_packet_decode(zbuf_head(&k->c.in), zbuf_len(&k->c.in),
					      2 * S.cfg.jute_maxbuffer + 4096, &q, &used);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			qlink_close(k, "malformed quorum packet");
			break;
		}
		S.ens.packets_in++;
		if (S.ens.role == ROLE_LEADING)
			leader_packet(k, &q);
		else if (ens_learner() && k == S.ens.link)
			learner_packet(k, &q);
		else {
			qlink_close(k, "not leading");
			break;
		}
		if (!k->dead)
			zbuf_consume(&k->c.in, used);
		if (S.ens.lost_leader)
			break;
	}
	if (budget <= 0 || (k->c.readable && zbuf_len(&k->c.in) < k->c.in.max))
		S.ens.links.work = true; /* more to read or handle next round */
	if (!k->dead && k->c.eof)
		qlink_close(k, "peer closed the connection");
}

/* ---- connecting: the leader accepts on its quorum port, a learner dials its leader ---- */

static void on_quorum_listener(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)l; (void)ev;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(h->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* Learners may dial us before our own election has decided: while LOOKING their
		 * connections wait (unread) for the decision, a bounded few. */
		int waiting = 0;
		for (struct qlink *o = S.ens.links.head; o; o = o->next)
			waiting += !o->dead && o != S.ens.link;
		if ((S.ens.role != ROLE_LEADING && S.ens.role != ROLE_LOOKING) ||
		    waiting >= 2 * ZK_SERVERS_MAX) {
			close(fd); /* Apache's learners retry until a leader listens */
			continue;
		}
		qlink_accepted(&S.ens.links, fd, &ss, ++S.next_conn_id);
	}
}

static const struct zk_server *server_of(int64_t sid)
{
	for (int i = 0; i < S.cfg.nservers; i++)
		if (S.cfg.servers[i].sid == sid)
			return &S.cfg.servers[i];
	return NULL;
}

static void learner_dial(void)
{
	const struct zk_server *sv = server_of(S.ens.leader_sid);
	ZK_ASSERT(sv != NULL);
	struct qlink *k = qlink_dial(&S.ens.links, sv->host, sv->quorum_port, S.ens.leader_sid,
				     ++S.next_conn_id);
	if (k)
		S.ens.link = k;
}

/* The dialled connection is up: discovery begins. */
static void learner_connected(struct qlink *k)
{
	int up = qlink_connect_done(k);
	if (up < 0) {
		S.ens.link = NULL;
		k->sid = -1; /* nothing to tell the machine */
		qlink_close(k, strerror(-up));
	}
	if (up <= 0)
		return;
	struct quorum_actions acts = { 0 };
	bool observer = S.ens.role == ROLE_OBSERVING;
	int rc = quorum_learner_start(&S.ens.F, S.cfg.myid, S.ens.leader_sid, S.ens.accepted_epoch,
				      S.ens.current_epoch, last_logged(), S.tree.last_zxid, observer,
				      &acts);
	ZK_ASSERT(rc == 0);
	quorum_learner_limits(&S.ens.F, S.cfg.init_limit, S.cfg.sync_limit);
	LOG_INFO("connected to leader %lld as %s", (long long)S.ens.leader_sid, role_name());
	ens_run(&acts);
}

static void links_service(void)
{
	S.ens.links.work = false;
	for (struct qlink *k = S.ens.links.head; k; k = k->next) {
		if (k->dead)
			continue;
		if (k->connecting) {
			if (k->c.writable || k->c.readable)
				learner_connected(k);
			continue;
		}
		if (S.ens.role == ROLE_LOOKING)
			continue; /* an early learner: it is served if we decide to lead */
		link_service(k);
	}
	if (S.ens.lost_leader) {
		S.ens.lost_leader = false;
		ens_go_looking("lost the connection to the leader");
	}
	if (S.ens.role == ROLE_LEADING)
		backlog_drain();
}

/* ---- roles ---- */

static void members_of_config(struct quorum_member *m, int *n)
{
	*n = 0;
	for (int i = 0; i < S.cfg.nservers; i++)
		m[(*n)++] = (struct quorum_member){ S.cfg.servers[i].sid, !S.cfg.servers[i].observer };
}

/* Everything a role left behind: links, clients (they fail over), waiting syncs. Txns
 * stay: appended ones are in our log and are part of what the next election compares. */
static void ens_leave_role(const char *why)
{
	qlink_close_all(&S.ens.links, why);
	close_clients(why);
	zbuf_reset(&S.ens.backlog);
	S.ens.link = NULL;
	S.ens.lost_leader = false;
	for (size_t i = 0; i < S.pq_count; i++) {
		struct pending *q = &S.pq[(S.pq_head + i) % S.pq_cap];
		q->conn_id = 0; /* their clients are gone */
	}
}

static void ens_go_looking(const char *why)
{
	if (S.ens.role == ROLE_LOOKING)
		return;
	S.pipeline_blocked = false;
	LOG_WARN("leaving %s mode (%s): electing a leader", role_name(), why);
	ens_leave_role(why);
	S.ens.role = ROLE_LOOKING;
	S.ens.looking_since_ms = net_now_ms(&S.loop);
	election_start(&S.ens.el, last_logged(), S.ens.current_epoch);
}

static void leader_begin(void)
{
	struct quorum_member m[QUORUM_SERVERS_MAX];
	int n;
	members_of_config(m, &n);
	struct quorum_actions acts = { 0 };
	int64_t last = last_logged();
	int64_t log_min = S.ens.hist.base < last ? S.ens.hist.base : last;
	int rc = quorum_leader_start(&S.ens.L, S.cfg.myid, m, n, S.ens.accepted_epoch,
				     S.ens.current_epoch, last, S.tree.last_zxid, log_min, &acts);
	ZK_ASSERT(rc == 0);
	quorum_leader_limits(&S.ens.L, S.cfg.init_limit, S.cfg.sync_limit);
	/* Sessions get a fresh timeout under a new leader (Apache's leader re-tracks them). */
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.sessions.by_id, &i, &id, &v);) {
		/* A closeSession that was never committed left `closing` set, which takes a
		 * session out of expiry: it must expire (or close) under us all the same. Ours
		 * still pending are proposed again as our history commits; their apply removes
		 * the session. */
		((struct session *)v)->closing = false;
		sessions_touch(&S.sessions, v, net_now_ms(&S.loop));
	}
	ens_run(&acts);
}

static void on_decided(void *ctx, int32_t state, const struct fle_vote *vote)
{
	(void)ctx;
	int64_t took = net_now_ms(&S.loop) - S.ens.looking_since_ms;
	S.ens.elections++;
	S.ens.last_election_ms = took;
	LOG_WARN("election decided in %lld ms: %s, leader %lld (zxid 0x%llx, epoch %lld)",
		 (long long)took, state == PEER_LEADING ? "LEADING" : state == PEER_FOLLOWING ?
		 "FOLLOWING" : "OBSERVING", (long long)vote->leader, (unsigned long long)vote->zxid,
		 (long long)vote->peer_epoch);
	S.ens.leader_sid = vote->leader;
	S.ens.role_since_ms = net_now_ms(&S.loop);
	S.ens.tick_count = 0;
	if (state == PEER_LEADING) {
		S.ens.role = ROLE_LEADING;
		S.ens.links.work = true; /* learners that dialled us while we were LOOKING */
		leader_begin();
		return;
	}
	S.ens.role = state == PEER_OBSERVING ? ROLE_OBSERVING : ROLE_FOLLOWING;
	S.ens.F = (struct quorum_learner){ .lost = false };
	qlink_close_all(&S.ens.links, "we follow another leader"); /* learners that dialled us early */
	learner_dial();
}

/* Every tickTime: the machines' liveness clock; a learner without a link redials, and
 * gives up after initLimit ticks. */
static void on_ens_tick(struct net_loop *l, struct net_timer *t)
{
	int64_t now = net_now_ms(l);
	net_timer_arm(l, t, now + S.cfg.tick_ms);
	/* Ticks that passed while we were not running (SIGSTOP, a long pass) count: a leader
	 * that was paused must see at once that it has not heard its quorum for that long. */
	int64_t n = S.ens.last_tick_ms ? (now - S.ens.last_tick_ms) / S.cfg.tick_ms : 1;
	if (n < 1)
		n = 1;
	if (n > 1000)
		n = 1000;
	S.ens.last_tick_ms = now;
	for (int64_t i = 1; i < n && (S.ens.role == ROLE_LEADING || ens_learner()); i++) {
		struct quorum_event ev = { .type = QUORUM_EV_TICK };
		S.ens.tick_count++;
		ens_step(&ev);
	}
	S.ens.tick_count++;
	if (ens_learner() && (!S.ens.link || S.ens.link->connecting) && S.ens.F.my_sid == 0) {
		if (S.ens.tick_count > (uint64_t)S.cfg.init_limit) {
			ens_go_looking("cannot connect to the leader");
			return;
		}
		if (!S.ens.link)
			learner_dial();
		return;
	}
	struct quorum_event ev = { .type = QUORUM_EV_TICK };
	ens_step(&ev);
	S.ens.links.work = true;
}

/* The log stage reports what is durable; the machine counts our own vote from it. */
static void ens_durable(void)
{
	int64_t z = S.wal.durable_zxid;
	if (S.ens.role == ROLE_LEADING) {
		if (S.ens.L.lost || z > S.ens.L.proposed || z <= S.ens.L.acked[S.ens.L.me])
			return;
	} else if (ens_learner()) {
		const struct quorum_learner *f = &S.ens.F;
		if (f->my_sid == 0 || f->lost || z > f->appended || z <= f->durable)
			return;
	} else {
		return;
	}
	struct quorum_event ev = { .type = QUORUM_EV_DURABLE, .zxid = z };
	ens_step(&ev);
}

/* ---- the client side of the ensemble ---- */

static bool leader_window_full(void)
{
	const struct quorum_leader *l = &S.ens.L;
	if (l->counter == UINT32_MAX)
		return true;
	if ((l->proposed >> 32) != l->epoch)
		return false;
	uint32_t base = (l->committed >> 32) == l->epoch ? (uint32_t)l->committed : 0;
	return (uint32_t)l->proposed - base >= QUORUM_WINDOW_MAX;
}

/* submit_write queued txn zxid: the leader machine appends it and proposes it. */
static void ens_write_proposed(int64_t zxid)
{
	struct quorum_event ev = { .type = QUORUM_EV_WRITE };
	struct quorum_actions acts = { 0 };
	int rc = quorum_leader_step(&S.ens.L, &ev, &acts);
	ZK_ASSERT(rc == 0 && acts.n > 0 && acts.a[0].type == QUORUM_ACT_APPEND && acts.a[0].zxid == zxid);
	ens_run(&acts);
}

/* A committed txn at a learner: is it the answer to one of our clients' forwarded writes? */
static void learner_match(const struct txn *x, struct pending *p)
{
	if (x->hdr.type == ZOP_CREATESESSION) {
		uint64_t id;
		void *v;
		for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
			struct client *cl = v;
			if (!cl->dead && cl->state == CL_CONNECTING && cl->session_id == x->hdr.client_id) {
				p->conn_id = cl->c.id;
				return;
			}
		}
		return;
	}
	struct session *se = sessions_get(&S.sessions, x->hdr.client_id);
	struct client *cl = se && se->conn_id ? client_by_id(se->conn_id) : NULL;
	if (!cl || cl->fwd_n == 0)
		return;
	if (cl->fwd_xid[cl->fwd_head] != x->hdr.cxid) {
		/* A write of this client committed out of the order it sent them: never answer
		 * in the wrong order; it reconnects and learns the outcome by reading. */
		for (int i = 1; i < cl->fwd_n; i++)
			if (cl->fwd_xid[(cl->fwd_head + i) % FWD_MAX] == x->hdr.cxid) {
				client_close(cl, "its writes were committed out of order");
				return;
			}
		return;
	}
	p->conn_id = cl->c.id;
	p->xid = cl->fwd_xid[cl->fwd_head];
	p->req_type = cl->fwd_type[cl->fwd_head];
	p->start_ms = cl->fwd_start[cl->fwd_head];
	cl->fwd_head = (uint8_t)((cl->fwd_head + 1) % FWD_MAX);
	cl->fwd_n--;
}

/* A learner's client write (or createSession/closeSession) goes to the leader as REQUEST:
 * sessionId, cxid, type, the request body; the client's ids as authinfo (Learner.request). */
static int learner_forward(struct client *cl, int64_t session, int32_t xid, int32_t type,
			   const uint8_t *body, size_t len)
{
	struct qlink *k = S.ens.link;
	if (!k || k->dead || !ens_serving())
		return -ENOTCONN;
	struct jute_out o;
	jout_init(&o, &k->c.out);
	jout_i32(&o, QP_REQUEST);
	jout_i64(&o, -1);
	jout_i32(&o, (int32_t)(16 + len));
	jout_i64(&o, session);
	jout_i32(&o, xid);
	jout_i32(&o, type);
	jout_raw(&o, body, len);
	jout_raw(&o, cl->auth.bytes, cl->auth.len);
	if (o.err) {
		qlink_close(k, "output limit reached");
		return -ENOTCONN;
	}
	S.ens.links.work = true;
	cl->inflight++;
	if (type != ZOP_CREATESESSION) {
		int tail = (cl->fwd_head + cl->fwd_n) % FWD_MAX;
		cl->fwd_xid[tail] = xid;
		cl->fwd_type[tail] = type;
		cl->fwd_start[tail] = net_now_ms(&S.loop);
		cl->fwd_n++;
	}
	return 1;
}

/* handle_request's ensemble part for a learner. 1 handled, 0 wait, -errno drop. */
static int learner_request(struct client *cl, int32_t xid, int32_t type, bool write,
			   const uint8_t *p, size_t len)
{
	if (write) {
		if (cl->fwd_n == FWD_MAX || cl->sync_wait)
			return 0;
		struct session *se = sessions_get(&S.sessions, cl->session_id);
		if (type == ZOP_CLOSESESSION && se && !se->closing)
			sessions_set_closing(&S.sessions, se);
		return learner_forward(cl, cl->session_id, xid, type, p + 8, len - 8);
	}
	if (cl->inflight > 0 || cl->sync_wait)
		return 0; /* a read after a write sees it: wait for the write's answer */
	if (type == ZOP_SYNC)
		return sync_submit(cl, xid, p, len);
	serve_read(cl, xid, type, p + 8, len - 8, cl->auth.bytes, cl->auth.len, net_now_ms(&S.loop));
	return 1;
}

/* A new session at a learner: the leader creates it (CreateSession txn); we answer the
 * client when that txn is applied here. */
static int learner_connect(struct client *cl)
{
	int64_t sid = sessions_new_id(&S.sessions);
	cl->session_id = sid;
	cl->state = CL_CONNECTING;
	uint8_t to[4];
	be32_put(to, (uint32_t)cl->timeout_ms);
	int rc = learner_forward(cl, sid, 0, ZOP_CREATESESSION, to, 4);
	return rc < 0 ? rc : 0;
}

static void prep_reset(void)
{
	prep_init(&S.prep, &S.tree);
	S.prep.extended_types = S.cfg.extended_types;
	S.prep.enforce_quota = S.cfg.enforce_quota;
	S.prep.reap_never_used_ms = S.cfg.container_max_never_used_ms;
	S.prep.skip_acl = S.cfg.skip_acl;
}

/* ------------------------------------------------------------------ 4lw */

static void fourlw_stat_common(struct zbuf *b, bool with_clients);

static const char *op_abbrev(int32_t op)
{
	switch (op) {
	case ZOP_CREATE: case ZOP_CREATE2: return "CREA";
	case ZOP_CREATECONTAINER: case ZOP_CREATETTL: return "CREA";
	case ZOP_DELETE: case ZOP_DELETECONTAINER: return "DELE";
	case ZOP_EXISTS: return "EXIS";
	case ZOP_GETDATA: return "GETD";
	case ZOP_SETDATA: return "SETD";
	case ZOP_GETACL: return "GETA";
	case ZOP_SETACL: return "SETA";
	case ZOP_WHOAMI: return "HOMI";
	case ZOP_GETCHILDREN: case ZOP_GETCHILDREN2: return "GETC";
	case ZOP_SYNC: return "SYNC";
	case ZOP_PING: return "PING";
	case ZOP_SETWATCHES: return "SETW";
	case ZOP_SETWATCHES2: return "STW2";
	case ZOP_ADDWATCH: return "ADDW";
	case ZOP_CHECKWATCHES: return "CHKW";
	case ZOP_REMOVEWATCHES: return "REMW";
	case ZOP_GETEPHEMERALS: return "GETE";
	case ZOP_GETALLCHILDRENNUMBER: return "GETACN";
	case ZOP_CREATESESSION: return "SESS";
	case ZOP_CLOSESESSION: return "CLOS";
	case ZOP_MULTI: return "MULT";
	case ZOP_MULTIREAD: return "MLTR";
	default: return "NA";
	}
}

static void cons_line(struct zbuf *b, struct client *cl)
{
	zbuf_printf(b, " /%s[%d](queued=%u,recved=%llu,sent=%llu", cl->c.peer_str,
		    cl->state == CL_READY ? 1 : 0, cl->inflight,
		    (unsigned long long)cl->packets_in, (unsigned long long)cl->packets_out);
	if (cl->session_id) {
		zbuf_printf(b, ",sid=0x%llx,lop=%s,est=%lld,to=%d", (unsigned long long)cl->session_id,
			    op_abbrev(cl->last_op), (long long)cl->established_ms, cl->timeout_ms);
		if (cl->lat_cnt)
			zbuf_printf(b, ",lcxid=0x%x,lzxid=0x%llx,lresp=%lld,llat=%lld,minlat=%lld,avglat=%lld,maxlat=%lld",
				    cl->last_cxid, (unsigned long long)cl->last_zxid,
				    (long long)cl->last_response_ms, (long long)cl->last_latency,
				    (long long)cl->lat_min, (long long)(cl->lat_sum / cl->lat_cnt),
				    (long long)cl->lat_max);
	}
	zbuf_printf(b, ")\n");
}

static void each_client(void (*fn)(struct zbuf *, struct client *), struct zbuf *b)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);)
		if (!((struct client *)v)->dead)
			fn(b, v);
}

static size_t live_clients(void)
{
	size_t n = 0;
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);)
		n += !((struct client *)v)->dead;
	return n;
}

static void fourlw_stat_common(struct zbuf *b, bool with_clients)
{
	if (!ens_serving()) {
		zbuf_printf(b, "This ZooKeeper instance is not currently serving requests\n");
		return;
	}
	zbuf_printf(b, "Zookeeper version: %s, built on %s %s\n", ZKD_VERSION, __DATE__, __TIME__);
	if (with_clients) {
		zbuf_printf(b, "Clients:\n");
		each_client(cons_line, b);
		zbuf_printf(b, "\n");
	}
	zbuf_printf(b, "Latency min/avg/max: %lld/%.4f/%lld\n", (long long)S.lat_min,
		    S.lat_cnt ? (double)S.lat_sum / (double)S.lat_cnt : 0.0, (long long)S.lat_max);
	zbuf_printf(b, "Received: %llu\n", (unsigned long long)S.packets_in);
	zbuf_printf(b, "Sent: %llu\n", (unsigned long long)S.packets_out);
	zbuf_printf(b, "Connections: %zu\n", live_clients());
	zbuf_printf(b, "Outstanding: %zu\n", S.pq_count);
	zbuf_printf(b, "Zxid: 0x%llx\n", (unsigned long long)S.tree.last_zxid);
	zbuf_printf(b, "Mode: %s\n", role_name());
	zbuf_printf(b, "Node count: %llu\n", (unsigned long long)S.tree.node_count + 1);
}

/* Apache's leader adds these to mntr (Leader metrics); zkd adds its election figures. */
/* QuorumPeer.getDetailedPeerState: "<peer state> - <zab state>", lower case. */
static const char *peer_state_name(void)
{
	static char buf[40];
	static const char *const peer[] = { [ROLE_STANDALONE] = "standalone", [ROLE_LOOKING] = "looking",
					    [ROLE_LEADING] = "leading", [ROLE_FOLLOWING] = "following",
					    [ROLE_OBSERVING] = "observing" };
	static const char *const zab[] = { [QUORUM_DISCOVERY] = "discovery",
					   [QUORUM_SYNCHRONIZATION] = "synchronization",
					   [QUORUM_BROADCAST] = "broadcast" };
	enum quorum_phase ph = S.ens.role == ROLE_LEADING ? S.ens.L.phase : S.ens.F.phase;
	snprintf(buf, sizeof buf, "%s - %s", peer[S.ens.role],
		 S.ens.role == ROLE_LOOKING ? "election" : zab[ph]);
	return buf;
}

static void fourlw_mntr_ensemble(struct zbuf *b)
{
	if (S.ens.role == ROLE_LEADING) {
		const struct quorum_leader *l = &S.ens.L;
		int learners = 0, followers = 0, observers = 0;
		for (int i = 0; i < l->nmembers; i++) {
			if (i == l->me || l->lstate[i] == QL_NONE)
				continue;
			learners++;
			if (l->lstate[i] >= QL_NEWLEADER_ACKED)
				*(l->members[i].voter ? &followers : &observers) += 1;
		}
		zbuf_printf(b, "zk_learners\t%d\n", learners);
		zbuf_printf(b, "zk_synced_followers\t%d\n", followers);
		zbuf_printf(b, "zk_synced_non_voting_followers\t0\n");
		zbuf_printf(b, "zk_synced_observers\t%d\n", observers);
		zbuf_printf(b, "zk_pending_syncs\t%d\n", l->nsyncs);
		zbuf_printf(b, "zk_followers\t%d\n", learners - observers);
		zbuf_printf(b, "zk_quorum_size\t%d\n", l->nvoters);
		zbuf_printf(b, "zk_leader_uptime\t%lld\n",
			    (long long)(net_now_ms(&S.loop) - S.ens.role_since_ms));
		zbuf_printf(b, "zk_max_proposal_size\t%lld\n", (long long)S.ens.max_proposal_size);
		zbuf_printf(b, "zk_min_proposal_size\t%lld\n", (long long)S.ens.min_proposal_size);
	}
	zbuf_printf(b, "zkd_elections\t%llu\n", (unsigned long long)S.ens.elections);
	zbuf_printf(b, "zkd_last_election_ms\t%lld\n", (long long)S.ens.last_election_ms);
	zbuf_printf(b, "zkd_snaps_sent\t%llu\n", (unsigned long long)S.ens.snaps_sent);
	zbuf_printf(b, "zkd_snaps_received\t%llu\n", (unsigned long long)S.ens.snaps_received);
	zbuf_printf(b, "zkd_truncations\t%llu\n", (unsigned long long)S.ens.truncs);
	zbuf_printf(b, "zkd_quorum_packets_received\t%llu\n", (unsigned long long)S.ens.packets_in);
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void fourlw_mntr(struct zbuf *b)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	double avg = S.lat_cnt ? (double)S.lat_sum / (double)S.lat_cnt : 0.0;
	zbuf_printf(b, "zk_version\t%s, built on %s %s\n", ZKD_VERSION, __DATE__, __TIME__);
	zbuf_printf(b, "zk_server_state\t%s\n", role_name());
	if (S.ens.on) /* QuorumPeer.getDetailedPeerState: "<peer state> - <zab state>" */
		zbuf_printf(b, "zk_peer_state\t%s\n", peer_state_name());
	zbuf_printf(b, "zk_avg_latency\t%.4f\n", avg);
	zbuf_printf(b, "zk_max_latency\t%lld\n", (long long)S.lat_max);
	zbuf_printf(b, "zk_min_latency\t%lld\n", (long long)S.lat_min);
	zbuf_printf(b, "zk_packets_received\t%llu\n", (unsigned long long)S.packets_in);
	zbuf_printf(b, "zk_packets_sent\t%llu\n", (unsigned long long)S.packets_out);
	zbuf_printf(b, "zk_num_alive_connections\t%zu\n", live_clients());
	zbuf_printf(b, "zk_outstanding_requests\t%zu\n", S.pq_count);
	zbuf_printf(b, "zk_znode_count\t%llu\n", (unsigned long long)S.tree.node_count + 1);
	zbuf_printf(b, "zk_watch_count\t%llu\n", (unsigned long long)watches_total(&S.tree.watches));
	zbuf_printf(b, "zk_ephemerals_count\t%llu\n", (unsigned long long)S.tree.eph_count);
	zbuf_printf(b, "zk_approximate_data_size\t%llu\n", (unsigned long long)S.tree.data_bytes + 1 +
		    (unsigned long long)(S.tree.root->data_len > 0 ? S.tree.root->data_len : 0));
	zbuf_printf(b, "zk_open_file_descriptor_count\t%ld\n", count_fds());
	zbuf_printf(b, "zk_max_file_descriptor_count\t%llu\n", (unsigned long long)rl.rlim_cur);
	zbuf_printf(b, "zk_global_sessions\t%zu\n", S.sessions.by_id.count);
	/* ZooKeeper 3.8 counts only failed TLS client certificates here (Netty); a failed
	 * addauth is not counted, so without TLS the gauge stays 0, as on Apache. */
	zbuf_printf(b, "zk_auth_failed_count\t0\n");
	zbuf_printf(b, "zk_local_sessions\t0\n");
	zbuf_printf(b, "zk_uptime\t%lld\n", (long long)(net_now_ms(&S.loop) - S.start_ms));
	zbuf_printf(b, "zk_last_proposal_size\t%lld\n", (long long)(S.ens.role == ROLE_LEADING ?
		    S.ens.last_proposal_size : -1));
	zbuf_printf(b, "zk_fsync_count\t%llu\n", (unsigned long long)S.wal.syncs);
	zbuf_printf(b, "zk_txn_count\t%llu\n", (unsigned long long)S.wal.records);
	zbuf_printf(b, "zk_last_fsync_us\t%lld\n", (long long)S.wal.last_sync_us);
	zbuf_printf(b, "zk_max_fsync_us\t%lld\n", (long long)S.wal.max_sync_us);
	zbuf_printf(b, "zk_snap_count\t%llu\n", (unsigned long long)S.snapshots_taken);
	zbuf_printf(b, "zk_max_snapshot_fork_us\t%lld\n", (long long)S.max_snap_fork_us);
	zbuf_printf(b, "zk_log_write_failed\t%d\n", S.write_failed ? 1 : 0);
	zbuf_printf(b, "zk_max_loop_pass_us\t%lld\n", (long long)S.loop.max_pass_us);
	if (S.ens.on)
		fourlw_mntr_ensemble(b);
}

static long long dir_size(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	long long n = 0;
	char path[ZK_CFG_PATH_MAX + 300];
	struct stat st;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			n += st.st_size;
	}
	closedir(d);
	return n;
}

static void fourlw_conf(struct zbuf *b)
{
	zbuf_printf(b, "clientPort=%d\n", S.cfg.client_port);
	if (S.cfg.client_addr[0])
		zbuf_printf(b, "clientPortAddress=%s\n", S.cfg.client_addr);
	zbuf_printf(b, "secureClientPort=-1\n");
	zbuf_printf(b, "dataDir=%s\n", S.snap_dir);
	zbuf_printf(b, "dataDirSize=%lld\n", dir_size(S.snap_dir));
	zbuf_printf(b, "dataLogDir=%s\n", S.log_dir);
	zbuf_printf(b, "dataLogSize=%lld\n", dir_size(S.log_dir));
	zbuf_printf(b, "tickTime=%d\n", S.cfg.tick_ms);
	zbuf_printf(b, "maxClientCnxns=%d\n", S.cfg.max_client_cnxns);
	zbuf_printf(b, "minSessionTimeout=%d\n", S.cfg.min_session_timeout_ms);
	zbuf_printf(b, "maxSessionTimeout=%d\n", S.cfg.max_session_timeout_ms);
	zbuf_printf(b, "clientPortListenBacklog=%d\n", S.cfg.listen_backlog);
	zbuf_printf(b, "serverId=%lld\n", (long long)(S.ens.on ? S.cfg.myid : 0));
	if (!S.ens.on)
		return;
	zbuf_printf(b, "initLimit=%d\nsyncLimit=%d\nelectionAlg=3\n", S.cfg.init_limit, S.cfg.sync_limit);
	const struct zk_server *me = server_of(S.cfg.myid);
	zbuf_printf(b, "electionPort=%d\nquorumPort=%d\npeerType=%d\nmembership: \n",
		    me->election_port, me->quorum_port, me->observer ? 1 : 0);
	for (int i = 0; i < S.cfg.nservers; i++) {
		const struct zk_server *sv = &S.cfg.servers[i];
		zbuf_printf(b, "server.%lld=%s:%d:%d:%s;%s:%d\n", (long long)sv->sid, sv->host,
			    sv->quorum_port, sv->election_port, sv->observer ? "observer" : "participant",
			    sv->client_host[0] ? sv->client_host : "0.0.0.0",
			    sv->client_port ? sv->client_port : S.cfg.client_port);
	}
	zbuf_printf(b, "version=0\n");
}

static void fourlw_envi(struct zbuf *b)
{
	char host[256] = "unknown", cwd[PATH_MAX] = "?";
	gethostname(host, sizeof host);
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "?");
	zbuf_printf(b, "Environment:\n");
	zbuf_printf(b, "zookeeper.version=%s, built on %s %s\n", ZKD_VERSION, __DATE__, __TIME__);
	zbuf_printf(b, "host.name=%s\n", host);
	zbuf_printf(b, "os.name=Linux\n");
	zbuf_printf(b, "user.dir=%s\n", cwd);
	zbuf_printf(b, "process.id=%d\n", (int)getpid());
}

static void dump_bucket(void *ctx, int64_t expire_ms, size_t count, const struct session *se)
{
	struct zbuf *b = ctx;
	if (count) {
		time_t t = (time_t)((net_wall_ms() + expire_ms - net_now_ms(&S.loop)) / 1000);
		struct tm tm;
		char when[64];
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%a %b %d %H:%M:%S UTC %Y", &tm);
		zbuf_printf(b, "%zu expire at %s:\n", count, when);
	}
	if (se)
		zbuf_printf(b, "\t0x%llx\n", (unsigned long long)se->id);
}

static void dump_sessions(struct zbuf *b)
{
	zbuf_printf(b, "SessionTracker dump:\n");
	zbuf_printf(b, "Session Sets (%zu)/(%zu):\n", sessions_nbuckets(&S.sessions), S.sessions.by_id.count);
	sessions_walk(&S.sessions, dump_bucket, b);
	uint64_t id;
	void *v;
	zbuf_printf(b, "ephemeral nodes dump:\n");
	zbuf_printf(b, "Sessions with Ephemerals (%zu):\n", S.tree.ephemerals.count);
	char path[4096];
	for (size_t i = 0; u64map_next(&S.tree.ephemerals, &i, &id, &v);) {
		zbuf_printf(b, "0x%llx:\n", (unsigned long long)id);
		for (struct tree_node *n = ((struct tree_eph_list *)v)->head; n; n = n->eph_next)
			if (tree_node_path(n, path, sizeof path) >= 0)
				zbuf_printf(b, "\t%s\n", path);
	}
}

static unsigned long long watcher_sid(uint64_t watcher)
{
	struct client *cl = u64map_get(&S.clients, watcher);
	return (unsigned long long)(cl ? cl->session_id : 0);
}

static void wchc_line(void *ctx, uint64_t watcher, const char *path, size_t len, bool first)
{
	if (first)
		zbuf_printf(ctx, "0x%llx\n", watcher_sid(watcher));
	if (path) /* NULL: a watcher whose watches all fired or were removed, listed as ZooKeeper does */
		zbuf_printf(ctx, "\t%.*s\n", (int)len, path);
}

static void wchp_line(void *ctx, uint64_t watcher, const char *path, size_t len, bool first)
{
	if (first)
		zbuf_printf(ctx, "%.*s\n", (int)len, path);
	zbuf_printf(ctx, "\t0x%llx\n", watcher_sid(watcher));
}

static void fourlw_answer(struct client *cl, int w)
{
	struct zbuf *b = &cl->c.out;
	switch (w) {
	case FLW_RUOK: zbuf_printf(b, "imok"); break;
	case FLW_SRVR: fourlw_stat_common(b, false); break;
	case FLW_STAT: fourlw_stat_common(b, true); break;
	case FLW_MNTR: fourlw_mntr(b); break;
	case FLW_CONF: fourlw_conf(b); break;
	case FLW_ENVI: fourlw_envi(b); break;
	case FLW_CONS: each_client(cons_line, b); zbuf_printf(b, "\n"); break;
	case FLW_DUMP: dump_sessions(b); break;
	/* As in ZooKeeper, the watch reports cover data and exist watches only. */
	case FLW_WCHS:
		zbuf_printf(b, "%zu connections watching %zu paths\nTotal watches:%llu\n",
			    watches_nwatchers(&S.tree.watches, WATCH_DATA),
			    watches_npaths(&S.tree.watches, WATCH_DATA),
			    (unsigned long long)S.tree.watches.count[WATCH_DATA]);
		break;
	case FLW_WCHC:
		watches_walk_by_watcher(&S.tree.watches, WATCH_DATA, wchc_line, b);
		zbuf_printf(b, "\n");
		break;
	case FLW_WCHP:
		watches_walk_by_path(&S.tree.watches, WATCH_DATA, wchp_line, b);
		zbuf_printf(b, "\n");
		break;
	case FLW_DIRS:
		zbuf_printf(b, "datadir_size: %lld\nlogdir_size: %lld\n", dir_size(S.snap_dir),
			    dir_size(S.log_dir));
		break;
	case FLW_ISRO: zbuf_printf(b, "rw"); break;
	case FLW_SRST:
		S.packets_in = S.packets_out = 0;
		S.lat_min = S.lat_max = S.lat_sum = S.lat_cnt = 0;
		zbuf_printf(b, "Server stats reset.\n");
		break;
	case FLW_CRST: {
		uint64_t id;
		void *v;
		for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
			struct client *o = v;
			o->packets_in = o->packets_out = 0;
			o->lat_min = o->lat_max = o->lat_sum = o->lat_cnt = 0;
		}
		zbuf_printf(b, "Connection stats reset.\n");
		break;
	}
	case FLW_GTMK: zbuf_printf(b, "0\n"); break;
	default: zbuf_printf(b, "%s is not supported by zkd\n", fourlw_names[w]); break;
	}
}

/* ------------------------------------------------------------------ requests */

static int32_t negotiate_timeout(int32_t requested)
{
	if (requested < S.cfg.min_session_timeout_ms)
		return S.cfg.min_session_timeout_ms;
	if (requested > S.cfg.max_session_timeout_ms)
		return S.cfg.max_session_timeout_ms;
	return requested;
}

/* Refuse a session the way ZooKeeper does: timeout 0, id 0, a zero password, then close. */
static void refuse_session(struct client *cl)
{
	static const uint8_t zero[ZK_PASSWD_LEN];
	send_connect_response(cl, 0, 0, zero);
	cl->c.close_after_flush = true;
}

static int handle_connect(struct client *cl, const uint8_t *p, size_t len)
{
	struct connect_req req;
	if (connect_req_decode(p, len, &req) < 0)
		return -EBADMSG;
	int64_t last_zxid = req.last_zxid, sid = req.session_id;
	int32_t timeout = req.timeout_ms, pwlen = req.passwd_len;
	const uint8_t *pw = req.passwd;
	cl->has_ro_byte = req.has_read_only;
	if (last_zxid > S.tree.last_zxid) {
		LOG_WARN("refusing session request from %s: it has seen zxid 0x%llx, ours is 0x%llx",
			 cl->c.peer_str, (unsigned long long)last_zxid, (unsigned long long)S.tree.last_zxid);
		return -ESTALE;
	}
	cl->timeout_ms = negotiate_timeout(timeout);
	cl->established_ms = net_wall_ms();
	if (!ens_serving())
		return -ENOTCONN; /* Apache: "ZooKeeperServer not running"; the client fails over */
	if (sid == 0 && ens_learner())
		return learner_connect(cl);
	if (sid == 0) {
		if (!pipeline_has_room(false))
			return -EAGAIN;
		sid = sessions_new_id(&S.sessions);
		struct session *se = sessions_add(&S.sessions, sid, cl->timeout_ms, net_now_ms(&S.loop));
		if (!se)
			return -ENOMEM;
		se->conn_id = cl->c.id;
		cl->session_id = sid;
		cl->state = CL_CONNECTING;
		int rc = submit_write(cl, sid, 0, ZOP_CREATESESSION, NULL, 0, cl->timeout_ms, 0);
		if (rc < 0)
			sessions_remove(&S.sessions, sid);
		return rc;
	}
	struct session *se = sessions_get(&S.sessions, sid);
	uint8_t want[ZK_PASSWD_LEN];
	session_passwd(sid, want);
	if (!se || se->closing || pwlen != ZK_PASSWD_LEN || memcmp(pw, want, ZK_PASSWD_LEN) != 0) {
		LOG_INFO("refusing reconnect of session 0x%llx from %s: %s", (unsigned long long)sid,
			 cl->c.peer_str, !se || se->closing ? "no such session" : "wrong password");
		refuse_session(cl);
		return 0;
	}
	struct client *old = se->conn_id ? client_by_id(se->conn_id) : NULL;
	if (old && old != cl)
		client_close(old, "session moved to a new connection");
	se->conn_id = cl->c.id;
	se->timeout_ms = cl->timeout_ms;
	sessions_touch(&S.sessions, se, net_now_ms(&S.loop));
	cl->session_id = sid;
	cl->state = CL_READY;
	send_connect_response(cl, cl->timeout_ms, sid, want);
	return 0;
}

/* Opcodes Apache ZooKeeper 3.8 knows. An opcode outside this set is answered with
 * Unimplemented (zxid -1) and the connection closed, as ZooKeeper does; one inside it that
 * zkd does not serve yet gets Unimplemented and the connection stays open. */
static bool zk_knows_op(int32_t t)
{
	return (t >= ZOP_CREATE && t <= ZOP_MULTIREAD && t != 10) || (t >= ZOP_AUTH && t <= ZOP_WHOAMI) ||
	       t == ZOP_CREATESESSION || t == ZOP_CLOSESESSION;
}

static void reply_simple(struct client *cl, int32_t xid, int32_t err)
{
	struct jute_out out;
	size_t mark;
	if (reply_begin(cl, &out, &mark, xid, S.tree.last_zxid, err))
		reply_end(cl, &out, mark);
}

/* A read (ops_read) or a 3.6 request without a txn (ops_ext), its body written to out. */
static int serve_op(struct client *cl, int32_t type, const uint8_t *body, size_t blen,
		    const struct acl_who *who, struct jute_out *out)
{
	if (ops_ext_is(type))
		return ops_ext(&S.tree, type, body, blen, cl->c.id, cl->session_id, who, out);
	return ops_read(&S.tree, type, body, blen, cl->c.id, who, out);
}

/* addauth (AuthPacket{int type; ustring scheme; buffer auth}), as ZooKeeper's
 * processPacket: the reply carries the request's xid and zxid 0. `digest` adds the
 * credential's digest id (and `super:` first when it equals superDigest); `ip` adds the
 * address the connection already has. Any other scheme (sasl, x509, world, auth, super,
 * unknown), or an id past our per-connection bound, is AuthFailed and the connection is
 * closed after that reply. ZooKeeper does not count these in zk_auth_failed_count. */
static void handle_auth(struct client *cl, int32_t xid, const uint8_t *body, size_t blen)
{
	struct jute_in in;
	jin_init(&in, body, blen);
	jin_i32(&in); /* type: unused, as in ZooKeeper */
	int32_t sl, al;
	const uint8_t *scheme = jin_buf(&in, &sl);
	const uint8_t *cred = jin_buf(&in, &al);
	if (!jin_ok(&in)) {
		client_close(cl, "malformed auth packet");
		return;
	}
	int rc = -ENOENT;
	if (sl == 6 && memcmp(scheme, "digest", 6) == 0 && !cred) {
		rc = -EINVAL; /* a null credential: ZooKeeper's provider throws, which fails it */
	} else if (sl == 6 && memcmp(scheme, "digest", 6) == 0) {
		char id[AUTH_MAX_BYTES];
		long n = auth_digest_id(cred, (size_t)al, id, sizeof id);
		rc = n < 0 ? -E2BIG : 0;
		if (rc == 0 && S.cfg.super_digest[0] && strlen(S.cfg.super_digest) == (size_t)n &&
		    memcmp(S.cfg.super_digest, id, (size_t)n) == 0)
			rc = auth_ids_add(&cl->auth, "super", 5, "", 0);
		if (rc == 0)
			rc = auth_ids_add(&cl->auth, "digest", 6, id, (size_t)n);
	} else if (sl == 2 && memcmp(scheme, "ip", 2) == 0) {
		rc = 0; /* the connection's ip id, which it has from the start */
	}
	LOG_INFO("auth for scheme '%.*s' from %s (session 0x%llx): %s", sl > 0 && sl < 64 ? sl : 0,
		 (const char *)scheme, cl->c.peer_str, (unsigned long long)cl->session_id,
		 rc == 0 ? "ok" : rc == -ENOENT ? "no such scheme" : strerror(-rc));
	struct jute_out out;
	size_t mark;
	if (reply_begin(cl, &out, &mark, xid, 0, rc == 0 ? ZOK : ZAUTHFAILED))
		reply_end(cl, &out, mark);
	if (rc != 0)
		cl->c.close_after_flush = true;
}

/* multiRead, or a multi that gets no txn (an op with a null path): ZooKeeper's
 * FinalRequestProcessor then fails on it, answering MarshallingError after the empty
 * response it had begun. Both are answered like reads, from the tree. */
static int multi_read_body(struct client *cl, int32_t type, const uint8_t *body, size_t blen,
			   const struct acl_who *who, struct jute_out *out)
{
	if (type == ZOP_MULTIREAD)
		return ops_multi_read(&S.tree, body, blen, cl->c.id, who, out);
	ops_multi_end(out);
	return ZMARSHALLINGERROR;
}

static void serve_multi_read(struct client *cl, int32_t xid, int32_t type, const uint8_t *body,
			     size_t blen, const struct acl_who *who, int64_t start)
{
	struct jute_out out;
	size_t mark;
	if (!reply_begin(cl, &out, &mark, xid, S.tree.last_zxid, 0))
		return;
	int err = multi_read_body(cl, type, body, blen, who, &out);
	if (out.err && mark <= OUT_HIGH && cl->c.out.max < REPLY_MAX) {
		/* As for one big read (serve_read): a client that reads gets it. */
		zbuf_truncate(&cl->c.out, mark);
		cl->c.out.max = REPLY_MAX;
		reply_begin(cl, &out, &mark, xid, S.tree.last_zxid, 0);
		err = multi_read_body(cl, type, body, blen, who, &out);
	}
	if (out.err) {
		reply_end(cl, &out, mark); /* rolls the frame back and drops the client */
		return;
	}
	be32_put(zbuf_head(&cl->c.out) + mark + 16, (uint32_t)err);
	reply_end(cl, &out, mark);
	note_latency(cl, start, type, xid, S.tree.last_zxid);
}

/* Answer a read (or ping, setWatches, whoAmI, unknown op) of a connected client from the
 * tree, for the client's ids `ids` (a vector<Id>). */
static void serve_read(struct client *cl, int32_t xid, int32_t type, const uint8_t *body, size_t blen,
		       const uint8_t *ids, size_t ids_len, int64_t start)
{
	if (!zk_knows_op(type)) {
		struct jute_out out;
		size_t mark;
		if (reply_begin(cl, &out, &mark, xid, -1, ZUNIMPLEMENTED))
			reply_end(cl, &out, mark);
		cl->c.close_after_flush = true;
		LOG_INFO("unknown opcode %d from %s", type, cl->c.peer_str);
		return;
	}
	if (type == ZOP_PING)
		xid = XID_PING; /* ZooKeeper answers every ping with xid -2 */
	struct acl_who who = { ids, ids_len, S.cfg.skip_acl };
	if (type == ZOP_MULTI || type == ZOP_MULTIREAD) {
		serve_multi_read(cl, xid, type, body, blen, &who, start);
		return;
	}
	if (type == ZOP_SETWATCHES || type == ZOP_SETWATCHES2) {
		/* Events it produces must precede its reply: they go out first. */
		int err = ops_set_watches_v(&S.tree, body, blen, cl->c.id, type == ZOP_SETWATCHES2);
		if (!cl->dead) {
			reply_simple(cl, xid, err);
			note_latency(cl, start, type, xid, S.tree.last_zxid);
		}
		return;
	}
	struct jute_out out;
	size_t mark;
	if (!reply_begin(cl, &out, &mark, xid, S.tree.last_zxid, 0))
		return;
	int err = ZOK;
	bool served = ops_is_read(type) || ops_ext_is(type);
	if (served)
		err = serve_op(cl, type, body, blen, &who, &out);
	else if (type == ZOP_WHOAMI)
		auth_whoami(&out, ids, ids_len);
	else if (type != ZOP_PING)
		err = ZUNIMPLEMENTED; /* an opcode ZooKeeper has and zkd does not serve yet */
	if (out.err && served && mark <= OUT_HIGH && cl->c.out.max < REPLY_MAX) {
		/* One reply bigger than the output bound (getChildren of a million children): a
		 * client that reads gets it; the bound is for output piling up, not for one reply. */
		zbuf_truncate(&cl->c.out, mark);
		cl->c.out.max = REPLY_MAX;
		reply_begin(cl, &out, &mark, xid, S.tree.last_zxid, 0);
		err = serve_op(cl, type, body, blen, &who, &out);
	}
	if (err != ZOK) {
		/* Header only: rewrite the error field and drop any partial body. */
		zbuf_truncate(&cl->c.out, mark + 16);
		be32_put(zbuf_head(&cl->c.out) + mark + 16, (uint32_t)err);
		cl->c.out.tail += 4;
	}
	reply_end(cl, &out, mark);
	note_latency(cl, start, type, xid, S.tree.last_zxid);
}

/* A read behind this session's writes joins the pipeline and runs when they have been
 * applied, in order; the connection keeps being read meanwhile. */
static int defer_read(struct client *cl, const uint8_t *p, size_t len)
{
	size_t start = zbuf_len(&S.arena);
	if (zbuf_append(&S.arena, p, len) < 0 || zbuf_append(&S.arena, cl->auth.bytes, cl->auth.len) < 0) {
		zbuf_truncate(&S.arena, start);
		return -ENOMEM;
	}
	struct pending *q = pq_push();
	if (!q) {
		zbuf_truncate(&S.arena, start);
		return -ENOMEM;
	}
	*q = (struct pending){ .zxid = 0, .conn_id = cl->c.id, .read = true,
			       .start_ms = net_now_ms(&S.loop), .txn_pos = S.arena_pos + start,
			       .txn_len = (uint32_t)(len + cl->auth.len), .auth_len = (uint32_t)cl->auth.len };
	cl->inflight++;
	return 1;
}

/* One request of a connected client. Returns 1 if handled, 0 if it must wait (the frame
 * stays in the buffer), -errno to drop the connection. */
static int handle_request(struct client *cl, const uint8_t *p, size_t len)
{
	struct jute_in in;
	jin_init(&in, p, len);
	int32_t xid = jin_i32(&in), type = jin_i32(&in);
	if (!jin_ok(&in))
		return -EBADMSG;
	bool write = prep_is_write(type) && type != ZOP_CREATESESSION;
	if (type == ZOP_MULTI && !prep_multi_logged(p + 8, len - 8))
		write = false; /* answered without a txn (serve_multi_read) */
	if (S.ens.on && cl->sync_wait)
		return 0; /* its sync's answer comes first */
	if (ens_learner() && type != ZOP_AUTH) {
		int rc = learner_request(cl, xid, type, write, p, len);
		if (rc > 0) {
			struct session *se = sessions_get(&S.sessions, cl->session_id);
			if (se)
				sessions_touch(&S.sessions, se, net_now_ms(&S.loop));
			cl->touched = true;
			cl->packets_in++;
			S.packets_in++;
		}
		return rc;
	}
	/* Back-pressure: a full pipeline, or a log batch without room while the previous one is
	 * being synced, leaves the frame in the buffer; the client is resumed when room frees.
	 * A MultiTxn is at most about 1.4 times its request (sequential suffixes). */
	if (((write || cl->inflight > 0) && !pipeline_has_room(false)) ||
	    (write && !wal_batch_fits(&S.wal, type == ZOP_MULTI ? 2 * len : len))) {
		S.pipeline_blocked = true;
		return 0;
	}
	struct session *se = sessions_get(&S.sessions, cl->session_id);
	if (se)
		sessions_touch(&S.sessions, se, net_now_ms(&S.loop));
	cl->packets_in++;
	S.packets_in++;
	if (write) {
		/* A write of a session already closing (it sent closeSession, or it expired) gets
		 * SessionExpired, as ZooKeeper's checkSession answers: an ephemeral created after
		 * the close would otherwise outlive its session. */
		int32_t err = !se || se->closing ? ZSESSIONEXPIRED : 0;
		if (type == ZOP_CLOSESESSION && se && !se->closing)
			sessions_set_closing(&S.sessions, se);
		int rc = submit_write(cl, cl->session_id, xid, type, p + 8, len - 8, 0, err);
		if (rc == -EIO) {
			reply_simple(cl, xid, ZSYSTEMERROR);
			return 1;
		}
		return rc < 0 ? rc : 1;
	}
	if (type == ZOP_AUTH) {
		/* At once, as ZooKeeper's processPacket: requests after it carry the new id. */
		handle_auth(cl, xid, p + 8, len - 8);
		return 1;
	}
	if (S.ens.on && type == ZOP_SYNC)
		return cl->inflight > 0 ? 0 : sync_submit(cl, xid, p, len); /* a quorum round */
	if (cl->inflight > 0)
		return defer_read(cl, p, len);
	serve_read(cl, xid, type, p + 8, len - 8, cl->auth.bytes, cl->auth.len, net_now_ms(&S.loop));
	return 1;
}

static int handle_fourlw(struct client *cl, int w)
{
	if (!(S.cfg.fourlw_mask & (1u << w)) && w != FLW_SRVR)
		zbuf_printf(&cl->c.out, "%s is not executed because it is not in the whitelist.\n",
			    fourlw_names[w]);
	else
		fourlw_answer(cl, w);
	cl->c.close_after_flush = true;
	mark_dirty(cl);
	return 0;
}

/* Consume whole frames from the client's input while it may proceed. */
static void process_input(struct client *cl)
{
	size_t max_frame = (size_t)S.cfg.jute_maxbuffer;
	while (!cl->dead && !cl->c.close_after_flush) {
		if (conn_throttled(&cl->c))
			return; /* resumed when its output drains */
		struct zbuf *in = &cl->c.in;
		if (zbuf_len(in) < 4)
			return;
		const uint8_t *p = zbuf_head(in);
		if (cl->state == CL_NEW) {
			int w = fourlw_lookup(p);
			if (w >= 0) {
				handle_fourlw(cl, w);
				return;
			}
		}
		int32_t flen = (int32_t)be32_get(p);
		if (flen < 0 || (size_t)flen > max_frame) {
			client_close(cl, "frame length out of range");
			return;
		}
		if (zbuf_len(in) < 4 + (size_t)flen)
			return;
		int rc;
		if (cl->state == CL_NEW) {
			rc = handle_connect(cl, p + 4, (size_t)flen);
			if (rc == -EAGAIN) {
				S.pipeline_blocked = true;
				return;
			}
			rc = rc < 0 ? rc : 1;
		} else if (cl->state == CL_CONNECTING) {
			return; /* nothing is served until the session exists */
		} else {
			rc = flen < 8 ? -EBADMSG : handle_request(cl, p + 4, (size_t)flen);
		}
		if (rc < 0) {
			client_close(cl, rc == -EBADMSG ? "malformed request" : strerror(-rc));
			return;
		}
		if (rc == 0)
			return;
		zbuf_consume(in, 4 + (size_t)flen);
	}
}

static void service_client(struct client *cl)
{
	if (cl->dead)
		return;
	conn_read(&cl->c);
	process_input(cl);
	if (cl->dead)
		return;
	if (cl->c.eof && !cl->c.close_after_flush) {
		client_close(cl, "client closed the connection");
		return;
	}
	/* Bytes still in the socket while the buffer has room: come back next round. */
	if (cl->c.readable && zbuf_len(&cl->c.in) < cl->c.in.max && cl->state != CL_CONNECTING &&
	    !conn_throttled(&cl->c) && !S.pipeline_blocked && cl->inflight == 0)
		mark_ready(cl);
}

/* ------------------------------------------------------------------ loop hooks */

static void on_client_event(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)l;
	struct client *cl = (struct client *)h;
	if (ev & NET_READABLE) {
		cl->c.readable = true;
		mark_ready(cl);
	}
	if (ev & NET_WRITABLE) {
		cl->c.writable = true;
		mark_dirty(cl);
	}
}

static void accept_clients(void)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(S.listener.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				LOG_WARN("accept: %s; pausing accepts for 100 ms", strerror(errno));
				S.accept_paused = true;
				net_timer_arm(&S.loop, &S.tick, net_now_ms(&S.loop) + 100);
			}
			return;
		}
		uint64_t key = ip_key_of(&ss);
		uintptr_t n = (uintptr_t)u64map_get(&S.ip_count, key);
		if ((S.cfg.max_client_cnxns > 0 && n >= (uintptr_t)S.cfg.max_client_cnxns) ||
		    (S.cfg.max_cnxns > 0 && live_clients() >= (size_t)S.cfg.max_cnxns)) {
			char a[64];
			net_addr_str(&ss, a, sizeof a);
			LOG_WARN("too many connections from %s - max is %d", a, S.cfg.max_client_cnxns);
			close(fd);
			continue;
		}
		struct client *cl = calloc(1, sizeof *cl);
		if (!cl || u64map_put(&S.ip_count, key, (void *)(n + 1)) < 0) {
			free(cl);
			close(fd);
			continue;
		}
		size_t frame = 4 + (size_t)S.cfg.jute_maxbuffer;
		conn_init(&cl->c, fd, ++S.next_conn_id, frame + 65536, S.out_max, OUT_HIGH);
		cl->c.h.on_event = on_client_event;
		cl->c.peer = ss;
		cl->ip_key = key;
		char ip[AUTH_IP_MAX];
		int iplen = auth_ip_id(&ss, ip);
		if (auth_ids_init(&cl->auth) < 0 ||
		    (iplen > 0 && auth_ids_add(&cl->auth, "ip", 2, ip, (size_t)iplen) < 0)) {
			auth_ids_free(&cl->auth);
			u64map_put(&S.ip_count, key, (void *)n);
			if (!n)
				u64map_del(&S.ip_count, key);
			free(cl);
			close(fd);
			continue;
		}
		cl->accepted_ms = net_now_ms(&S.loop);
		net_addr_str(&ss, cl->c.peer_str, sizeof cl->c.peer_str);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (u64map_put(&S.clients, cl->c.id, cl) < 0 || net_loop_add(&S.loop, &cl->c.h) < 0) {
			u64map_del(&S.clients, cl->c.id);
			u64map_put(&S.ip_count, key, (void *)n);
			if (!n)
				u64map_del(&S.ip_count, key);
			auth_ids_free(&cl->auth);
			conn_free_buffers(&cl->c);
			free(cl);
			close(fd);
			continue;
		}
		LOG_DEBUG("accepted %s", cl->c.peer_str);
	}
}

static void on_listener(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)l; (void)h; (void)ev;
	if (!S.accept_paused)
		accept_clients();
}

static void on_wal_event(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)l; (void)ev;
	uint64_t n;
	while (read(h->fd, &n, sizeof n) == (ssize_t)sizeof n)
		;
	S.wal_signalled = true; /* before_sleep reaps and commits */
}

static void on_signal(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)ev;
	struct signalfd_siginfo si;
	while (read(h->fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGCHLD) {
			reap_snapshot_child();
			continue;
		}
		LOG_WARN("signal %u: shutting down", si.ssi_signo);
		net_loop_stop(l);
	}
}

static void expire_sessions(void)
{
	if (S.ens.on && (S.ens.role != ROLE_LEADING || !ens_serving()))
		return; /* the leader expires sessions, for the whole ensemble */
	int64_t now = net_now_ms(&S.loop);
	while (pipeline_has_room(true)) {
		struct session *se = sessions_next_expired(&S.sessions, now);
		if (!se)
			break;
		LOG_INFO("expiring session 0x%llx, timeout of %d ms exceeded",
			 (unsigned long long)se->id, se->timeout_ms);
		if (submit_write(NULL, se->id, 0, ZOP_CLOSESESSION, NULL, 0, 0, 0) < 0) {
			/* Put it back in a bucket to try again on the next tick. */
			se->closing = false;
			sessions_touch(&S.sessions, se, now);
			break;
		}
	}
}

static void on_tick(struct net_loop *l, struct net_timer *t)
{
	if (S.accept_paused) {
		S.accept_paused = false;
		accept_clients();
	}
	expire_sessions();
	int64_t next = sessions_next_deadline(&S.sessions);
	if (S.ens.on && (S.ens.role != ROLE_LEADING || !ens_serving()))
		next = net_now_ms(l) + S.cfg.tick_ms; /* only a leader consumes expiry buckets:
						       * do not spin on the ones it left */
	else if (next <= net_now_ms(l))
		next = net_now_ms(l) + 10;
	if (S.accept_paused && next > net_now_ms(l) + 100)
		next = net_now_ms(l) + 100;
	net_timer_arm(l, t, next);
}

/* ------------------------------------------------------------------ container reaper */

/* Like ZooKeeper's ContainerManager: every znode.container.checkIntervalMs take the
 * candidates (tree_reap_candidates, which walks only the containers and TTL nodes) and delete
 * each through the write pipeline as a deleteContainer, which prep re-checks; deletes are
 * spaced to at most maxPerMinute a minute (a token bucket holding one second's worth). A
 * check's candidates are kept (at most REAP_BATCH paths) until submitted, so a slow drain
 * does not rescan. */
static void reap_take_candidates(void)
{
	const struct tree_node *c[REAP_BATCH];
	size_t n = tree_reap_candidates(&S.tree, net_wall_ms(), S.cfg.container_max_never_used_ms,
					S.cfg.extended_types, c, REAP_BATCH);
	S.reap_n = S.reap_i = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = tree_node_path_len(c[i]);
		char *p = malloc(len + 1);
		if (!p)
			break; /* the rest are found again next time */
		tree_node_path(c[i], p, len + 1);
		S.reap_q[S.reap_n++] = p;
	}
}

/* Submit queued deletes while tokens and the pipeline allow; false if some must wait. */
static bool reap_drain(void)
{
	while (S.reap_i < S.reap_n) {
		char *p = S.reap_q[S.reap_i];
		size_t len = strlen(p);
		if (!pipeline_has_room(true) || !wal_batch_fits(&S.wal, len + 64) ||
		    rate_next_ms(&S.reap_rate, net_now_ms(&S.loop)) > net_now_ms(&S.loop))
			return false;
		S.internal_write = true;
		int rc = submit_write(NULL, 0, 0, ZOP_DELETECONTAINER, (const uint8_t *)p, len, 0, 0);
		S.internal_write = false;
		if (rc < 0)
			return false;
		bool took = rate_take(&S.reap_rate, net_now_ms(&S.loop));
		ZK_ASSERT(took); /* rate_next_ms said a token is there */
		S.reaped++;
		free(p);
		S.reap_i++;
	}
	return true;
}

static void reap_free(void)
{
	while (S.reap_i < S.reap_n)
		free(S.reap_q[S.reap_i++]);
}

static void on_reap(struct net_loop *l, struct net_timer *t)
{
	int64_t now = net_now_ms(l);
	if (S.ens.on && (S.ens.role != ROLE_LEADING || !ens_serving())) {
		reap_free(); /* the leader reaps for the ensemble */
		S.reap_n = S.reap_i = 0;
		net_timer_arm(l, t, now + S.cfg.container_check_ms);
		return;
	}
	if (S.reap_i == S.reap_n && now >= S.reap_next_check_ms && !S.write_failed) {
		reap_take_candidates();
		S.reap_next_check_ms = now + S.cfg.container_check_ms;
	}
	if (S.write_failed)
		reap_free();
	if (!reap_drain()) {
		/* The next token, or pipeline room, which comes back within a pass or two. */
		int64_t next = rate_next_ms(&S.reap_rate, now);
		net_timer_arm(l, t, next > now ? next : now + 10);
		return;
	}
	net_timer_arm(l, t, S.reap_next_check_ms);
}

/* Once a second: drop connections that never completed a handshake (slow-loris), as
 * ZooKeeper does after nio.sessionlessCnxnTimeout. */
static void on_housekeeping(struct net_loop *l, struct net_timer *t)
{
	int64_t now = net_now_ms(l);
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);) {
		struct client *cl = v;
		if (cl->state == CL_NEW && !cl->dead && now - cl->accepted_ms > S.cfg.sessionless_timeout_ms)
			client_close(cl, "no ConnectRequest in time");
	}
	net_timer_arm(l, t, now + 1000);
}

/* Free the connections closed during this pass, after taking them off the work lists. */
static void reap_dead(void)
{
	if (!S.dead)
		return;
	struct client *keep = NULL, *tail = NULL;
	for (struct client *cl = S.ready, *next; cl; cl = next) {
		next = cl->ready_next;
		cl->ready_next = NULL;
		if (cl->dead) {
			cl->in_ready = false;
			continue;
		}
		if (tail) tail->ready_next = cl; else keep = cl;
		tail = cl;
	}
	S.ready = keep;
	S.ready_tail = tail;
	struct client **pp = &S.dirty;
	while (*pp) {
		if ((*pp)->dead) {
			(*pp)->in_dirty = false;
			*pp = (*pp)->dirty_next;
		} else {
			pp = &(*pp)->dirty_next;
		}
	}
	while (S.dead) {
		struct client *cl = S.dead;
		S.dead = cl->dead_next;
		ZK_ASSERT(!cl->in_ready && !cl->in_dirty);
		client_reap(cl);
	}
}

/* Write out every connection with output. Called before each log sync as well, so read
 * replies of this round are on the wire before the loop blocks in fdatasync. */
static void flush_dirty(void)
{
	while (S.dirty) {
		struct client *cl = S.dirty;
		S.dirty = cl->dirty_next;
		cl->in_dirty = false;
		if (cl->dead)
			continue;
		bool was_throttled = conn_throttled(&cl->c);
		int rc = conn_flush(&cl->c);
		if (rc < 0) {
			client_close(cl, strerror(-rc));
			continue;
		}
		if (zbuf_len(&cl->c.out) == 0)
			cl->c.out.max = S.out_max; /* after one oversized reply went out */
		if (zbuf_len(&cl->c.out) == 0 && cl->c.close_after_flush) {
			client_close(cl, "done");
			continue;
		}
		if (was_throttled && !conn_throttled(&cl->c))
			mark_ready(cl);
		if (zbuf_len(&cl->c.out) > 0 && cl->c.writable)
			mark_dirty(cl);
	}
}

static bool before_sleep(struct net_loop *l, void *ctx)
{
	(void)l; (void)ctx;
	for (int round = 0; round < INNER_ROUNDS &&
	     (S.ready || (wal_has_batch(&S.wal) && !wal_busy(&S.wal)) || S.wal_signalled ||
	      S.ens.links.work); round++) {
		S.wal_signalled = false;
		if (S.ens.on)
			links_service();
		struct client *list = S.ready;
		S.ready = S.ready_tail = NULL;
		while (list) {
			struct client *cl = list;
			list = cl->ready_next;
			cl->in_ready = false;
			service_client(cl);
		}
		if (wal_has_batch(&S.wal) && !S.wal.async)
			flush_dirty(); /* a blocking sync follows: answer the reads first */
		sync_and_commit();
		if (S.ens.on)
			qlink_flush_all(&S.ens.links);
	}
	flush_dirty();
	if (S.ens.on) {
		qlink_flush_all(&S.ens.links);
		qlink_reap(&S.ens.links);
	}
	reap_dead();
	/* After the replies are out: the fork's pause then delays no answer already made. */
	maybe_snapshot();
	return S.ready != NULL || S.dirty != NULL || S.ens.links.work;
}

/* ------------------------------------------------------------------ startup */

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			if (cap >= (16u << 20)) {
				free(buf);
				fclose(f);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			} else {
				buf = nb;
			}
		}
	}
	int err = ferror(f);
	fclose(f);
	if (!buf || err) {
		free(buf);
		return buf ? -EIO : -ENOMEM;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[ZK_CFG_PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int load_config(int argc, char **argv)
{
	config_defaults(&S.cfg);
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			zk_log_level = zk_log_level < ZK_LOG_DEBUG ? zk_log_level + 1 : ZK_LOG_DEBUG;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: zkd [-v] [zoo.cfg]\n"
			       "       zkd dump-log FILE...    print txn log files\n"
			       "       zkd dump-snap FILE...   print snapshot files\n"
			       "  With no config file: standalone on clientPort 2181, dataDir ./data, tickTime 2000.\n"
			       "  -v raises the log level (WARN -> INFO -> DEBUG); ZKD_LOG=debug does too.\n");
			exit(0);
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "zkd: unknown option %s (try --help)\n", argv[i]);
			return -EINVAL;
		} else if (path) {
			fprintf(stderr, "zkd: only one config file may be given\n");
			return -EINVAL;
		} else {
			path = argv[i];
		}
	}
	char err[1024];
	if (path) {
		char *text = NULL;
		size_t len = 0;
		int rc = read_file(path, &text, &len);
		if (rc < 0) {
			fprintf(stderr, "zkd: cannot read %s: %s\n", path, strerror(-rc));
			return rc;
		}
		S.cfg.source = path;
		rc = config_parse(&S.cfg, text, len, err, sizeof err);
		free(text);
		if (rc < 0) {
			fprintf(stderr, "zkd: %s\n", err);
			return rc;
		}
	}
	if (config_finish(&S.cfg, err, sizeof err) < 0) {
		fprintf(stderr, "zkd: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

static int setup_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit is an EFBIG from write, handled like ENOSPC */
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	S.sig.fd = fd;
	S.sig.on_event = on_signal;
	return net_loop_add(&S.loop, &S.sig);
}

static uint64_t random_seed(void)
{
	uint64_t seed = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
			seed = 0;
		close(fd);
	}
	return seed ^ (uint64_t)net_wall_ms() ^ (uint64_t)getpid() << 32;
}

static int restore_session(void *ctx, int64_t id, int32_t timeout_ms)
{
	(void)ctx;
	return sessions_add(&S.sessions, id, timeout_ms, net_now_ms(&S.loop)) ? 0 : -ENOMEM;
}

static void forget_session(void *ctx, int64_t id)
{
	(void)ctx;
	sessions_remove(&S.sessions, id);
}

/* Recover the tree and sessions from dataDir, then snapshot the result (as ZooKeeper does
 * at start), so the data directory always holds a snapshot for the logs that follow it. */
static int load_database(void)
{
	struct recover_cb cb = { .session_add = restore_session, .session_remove = forget_session };
	struct recover_opts opts = { .on_txn = S.ens.on ? hist_from_log : NULL };
	struct recover_result res;
	char err[2048];
	int64_t t0 = net_clock_ms();
	int rc = recover_with(S.ops, S.snap_dir, S.log_dir, &S.tree, &cb, &opts, &res, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "zkd: cannot recover the database: %s\n", err);
		LOG_ERROR("cannot recover the database: %s", err);
		return rc;
	}
	if (res.last_zxid > S.tree.last_zxid)
		S.tree.last_zxid = res.last_zxid;
	LOG_INFO("recovered to zxid 0x%llx in %lld ms: snapshot 0x%llx + %llu txns from the logs, "
		 "%zu sessions", (unsigned long long)S.tree.last_zxid, (long long)(net_clock_ms() - t0),
		 (unsigned long long)res.snap_zxid, (unsigned long long)res.txns, S.sessions.by_id.count);
	if (S.ens.on) {
		hist_recovered(&S.ens.hist, S.tree.last_zxid, res.snap_zxid);
		/* Our log's tail may hold proposals the ensemble never committed: no snapshot of
		 * this tree until a leader has synced us (a TRUNC would have to undo it). */
		return !res.had_snapshot && S.tree.last_zxid == 0 ? snapshot_now() : 0;
	}
	if (!res.had_snapshot)
		return snapshot_now(); /* ZooKeeper will not load logs without a snapshot before them */
	/* Otherwise the logs cover everything: compact them in the background once serving. */
	S.snapshot_soon = res.snap_zxid != S.tree.last_zxid;
	return 0;
}

/* Quorum mode: myid, the epoch files, the ring, the quorum port, the election. */
static int ens_prepare(void)
{
	char path[ZK_CFG_PATH_MAX + 16], err[512];
	snprintf(path, sizeof path, "%s/myid", S.cfg.data_dir);
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, &text, &len);
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "zkd: cannot read %s: %s\n", path, strerror(-rc));
		return rc;
	}
	rc = config_set_myid(&S.cfg, text, len, err, sizeof err); /* NULL text: no myid file */
	free(text);
	if (rc < 0) {
		fprintf(stderr, "zkd: %s\n", err);
		return rc;
	}
	S.ens.on = true;
	S.ens.role = ROLE_LOOKING;
	qlinks_init(&S.ens.links, &S.loop, link_closed, NULL);
	if (hist_init(&S.ens.hist, (size_t)S.cfg.commit_log_count, HIST_MAX_BYTES) < 0)
		return -ENOMEM;
	zbuf_init(&S.ens.backlog, BACKLOG_MAX + (1u << 20));
	S.ens.max_proposal_size = S.ens.min_proposal_size = -1;
	return 0;
}

static int ens_epochs(void)
{
	int64_t last_epoch = last_logged() >> 32;
	int rc = wal_epoch_read(S.ops, S.cfg.data_dir, "currentEpoch", &S.ens.current_epoch);
	if (rc == -ENOENT) {
		S.ens.current_epoch = last_epoch; /* Apache's first start: the log's epoch */
		rc = wal_epoch_write(S.ops, S.cfg.data_dir, "currentEpoch", S.ens.current_epoch);
	}
	if (rc == 0) {
		rc = wal_epoch_read(S.ops, S.cfg.data_dir, "acceptedEpoch", &S.ens.accepted_epoch);
		if (rc == -ENOENT) {
			S.ens.accepted_epoch = S.ens.current_epoch;
			rc = wal_epoch_write(S.ops, S.cfg.data_dir, "acceptedEpoch", S.ens.accepted_epoch);
		}
	}
	if (rc < 0) {
		fprintf(stderr, "zkd: cannot read or write the epoch files in %s: %s\n", S.cfg.data_dir,
			strerror(-rc));
		return rc;
	}
	if (S.ens.accepted_epoch < S.ens.current_epoch || last_epoch > S.ens.accepted_epoch) {
		fprintf(stderr, "zkd: %s: acceptedEpoch %lld, currentEpoch %lld and the log's last zxid "
			"0x%llx disagree\n", S.cfg.data_dir, (long long)S.ens.accepted_epoch,
			(long long)S.ens.current_epoch, (unsigned long long)last_logged());
		return -EINVAL;
	}
	return 0;
}

static void ens_shutdown(void)
{
	qlink_close_all(&S.ens.links, "server shutting down");
	qlink_reap(&S.ens.links);
	close_clients("server shutting down");
	election_free(&S.ens.el);
	net_loop_del(&S.loop, &S.ens.qlisten);
	hist_free(&S.ens.hist);
	zbuf_free(&S.ens.backlog);
	free(S.ens.snap_sessions);
}

static int ens_start(void)
{
	int rc = ens_epochs();
	if (rc < 0)
		return rc;
	const struct zk_server *me = server_of(S.cfg.myid);
	char err[512];
	int fd = net_listen(S.cfg.quorum_listen_all ? NULL : me->host, me->quorum_port, 64, err, sizeof err);
	if (fd < 0) {
		fprintf(stderr, "zkd: quorum port: %s\n", err);
		return fd;
	}
	S.ens.qlisten.fd = fd;
	S.ens.qlisten.on_event = on_quorum_listener;
	if ((rc = net_loop_add(&S.loop, &S.ens.qlisten)) < 0)
		return rc;
	rc = election_init(&S.ens.el, &S.loop, &S.cfg, on_decided, NULL, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "zkd: election: %s\n", err);
		return rc;
	}
	net_timer_init(&S.ens.tick, on_ens_tick);
	net_timer_arm(&S.loop, &S.ens.tick, net_now_ms(&S.loop) + S.cfg.tick_ms);
	S.ens.looking_since_ms = net_now_ms(&S.loop);
	election_start(&S.ens.el, last_logged(), S.ens.current_epoch);
	return 0;
}

static int start(void)
{
	const char *lvl = getenv("ZKD_LOG");
	if (lvl && zk_log_parse_level(lvl) >= 0)
		zk_log_level = zk_log_parse_level(lvl);
	tree_hash_seed = random_seed();
	S.rng = random_seed() | 1;
	LOG_INFO("random seed 0x%llx", (unsigned long long)S.rng);
	S.ops = &zk_fileops_posix;
	snprintf(S.snap_dir, sizeof S.snap_dir, "%s/version-2", S.cfg.data_dir);
	snprintf(S.log_dir, sizeof S.log_dir, "%s/version-2", S.cfg.data_log_dir);
	int rc = mkdir_p(S.snap_dir);
	if (rc == 0)
		rc = mkdir_p(S.log_dir);
	if (rc < 0) {
		fprintf(stderr, "zkd: cannot create %s or %s: %s\n", S.snap_dir, S.log_dir, strerror(-rc));
		return rc;
	}
	if ((rc = net_loop_init(&S.loop)) < 0 || (rc = tree_init(&S.tree, fire_event, NULL)) < 0)
		return rc;
	S.start_ms = net_now_ms(&S.loop);
	rc = sessions_init(&S.sessions, S.cfg.tick_ms, S.cfg.max_session_timeout_ms, S.start_ms);
	if (rc < 0)
		return rc;
	if (config_quorum_mode(&S.cfg) && (rc = ens_prepare()) < 0)
		return rc;
	if ((rc = load_database()) < 0)
		return rc;
	prep_reset();
	zab_init(&S.zab, S.tree.last_zxid);
	S.commit_to = S.tree.last_zxid;
	wal_init(&S.wal, S.ops, S.log_dir, (off_t)S.cfg.pre_alloc_kb * 1024, S.cfg.force_sync, S.tree.last_zxid);
	pick_snap_threshold();
	int efd = S.cfg.force_sync ? wal_enable_async(&S.wal) : -EINVAL;
	if (efd >= 0) {
		S.wal_events.fd = efd;
		S.wal_events.on_event = on_wal_event;
		if ((rc = net_loop_add(&S.loop, &S.wal_events)) < 0)
			return rc;
	} else if (S.cfg.force_sync) {
		LOG_WARN("io_uring unavailable (%s): log syncs will block the event loop", strerror(-efd));
	}
	/* Standalone ZooKeeper uses id 1; an ensemble's servers their myid, so ids never clash. */
	sessions_seed_ids(&S.sessions, net_wall_ms(), S.ens.on ? S.cfg.myid : 1);
	u64map_init(&S.clients);
	u64map_init(&S.ip_count);
	size_t frame = 4 + (size_t)S.cfg.jute_maxbuffer;
	S.out_max = frame * 4 > (8u << 20) ? frame * 4 : (8u << 20);
	S.pq_max = (size_t)S.cfg.global_outstanding_limit * 2 + 64;
	S.pq_cap = 16;
	S.pq = calloc(S.pq_cap, sizeof *S.pq);
	zbuf_init(&S.arena, SIZE_MAX / 2);
	zbuf_init(&S.scratch, REPLY_MAX);
	if (!S.pq)
		return -ENOMEM;
	char err[512];
	int backlog = S.cfg.listen_backlog > 0 ? S.cfg.listen_backlog : 511;
	int fd = net_listen(S.cfg.client_addr, S.cfg.client_port, backlog, err, sizeof err);
	if (fd < 0) {
		fprintf(stderr, "zkd: %s\n", err);
		return fd;
	}
	S.listener.fd = fd;
	S.listener.on_event = on_listener;
	if ((rc = net_loop_add(&S.loop, &S.listener)) < 0 || (rc = setup_signals()) < 0)
		return rc;
	net_timer_init(&S.tick, on_tick);
	net_timer_arm(&S.loop, &S.tick, sessions_next_deadline(&S.sessions));
	net_timer_init(&S.housekeeping, on_housekeeping);
	net_timer_arm(&S.loop, &S.housekeeping, net_now_ms(&S.loop) + 1000);
	net_timer_init(&S.reap_timer, on_reap);
	rate_init(&S.reap_rate, S.cfg.container_max_per_minute, net_now_ms(&S.loop));
	S.reap_next_check_ms = net_now_ms(&S.loop) + S.cfg.container_check_ms;
	net_timer_arm(&S.loop, &S.reap_timer, S.reap_next_check_ms);
	net_timer_init(&S.purge_timer, on_purge);
	if (S.cfg.autopurge_interval_h > 0)
		net_timer_arm(&S.loop, &S.purge_timer, net_now_ms(&S.loop));
	S.loop.before_sleep = before_sleep;
	if (S.ens.on && (rc = ens_start()) < 0)
		return rc;
	LOG_WARN("zkd %s serving on %s:%d (%s, tickTime %d ms, dataDir %s)", ZKD_VERSION,
		 S.cfg.client_addr[0] ? S.cfg.client_addr : "*", S.cfg.client_port,
		 S.ens.on ? "ensemble" : "standalone", S.cfg.tick_ms, S.cfg.data_dir);
	return 0;
}

static void shutdown_server(void)
{
	sync_and_commit();
	if (wal_sync(&S.wal) == 0)
		sync_and_commit(); /* answer what the last sync made durable */
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&S.clients, &i, &id, &v);)
		client_close(v, "server shutting down");
	reap_dead();
	if (S.ens.on)
		ens_shutdown();
	net_loop_del(&S.loop, &S.listener);
	net_loop_del(&S.loop, &S.sig);
	u64map_free(&S.clients);
	u64map_free(&S.ip_count);
	sessions_free(&S.sessions);
	reap_free();
	prep_free(&S.prep);
	tree_free(&S.tree);
	wal_free(&S.wal);
	zbuf_free(&S.arena);
	zbuf_free(&S.scratch);
	free(S.pq);
	net_loop_free(&S.loop);
}

/* `zkd dump-log FILE...` / `zkd dump-snap FILE...`: print, exit 0 or 1 on a bad file. */
static int dump_tool(int argc, char **argv)
{
	bool log = strcmp(argv[1], "dump-log") == 0;
	if (argc < 3) {
		fprintf(stderr, "usage: zkd %s FILE...\n", argv[1]);
		return 2;
	}
	int status = 0;
	for (int i = 2; i < argc; i++) {
		char err[1400] = "";
		int rc = log ? wal_dump(&zk_fileops_posix, argv[i], stdout, err, sizeof err)
			     : snap_dump(&zk_fileops_posix, argv[i], stdout, err, sizeof err);
		if (rc < 0) {
			fflush(stdout);
			fprintf(stderr, "zkd: %s\n", err[0] ? err : strerror(-rc));
			status = 1;
		}
	}
	return status;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "dump-log") || !strcmp(argv[1], "dump-snap")))
		return dump_tool(argc, argv);
	if (load_config(argc, argv) < 0)
		return 2;
	if (start() < 0)
		return 1;
	int rc = net_loop_run(&S.loop);
	if (rc < 0)
		LOG_ERROR("event loop failed: %s", strerror(-rc));
	shutdown_server();
	return rc < 0 ? 1 : 0;
}
