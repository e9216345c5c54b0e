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
#include "tree/auth.h"
#include "tree/ops.h"
#include "tree/ops_ext.h"
#include "tree/path.h"
#include "tree/tree.h"
#include "snap/recover.h"
#include "snap/snap.h"
#include "wal/wal.h"
#include "zab/config.h"
#include "zab/prep.h"
#include "zab/rate.h"
#include "zab/session.h"
#include "zab/zab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
	struct prep_req r = { .session = session, .cxid = xid, .type = type, .body = body,
			      .body_len = len, .zxid = zab_next_zxid(&S.zab),
			      .time_ms = net_wall_ms(), .session_timeout_ms = timeout_ms, .err = err,
			      .internal = S.internal_write,
			      .auth = cl ? cl->auth.bytes : NULL, .auth_len = cl ? cl->auth.len : 0 };
	struct jute_out out;
	size_t start = zbuf_len(&S.arena);
	jout_init(&out, &S.arena);
	int rc = prep_write(&S.prep, &r, &out);
	if (rc == 0)
		rc = wal_append(&S.wal, r.zxid, zbuf_head(&S.arena) + start, zbuf_len(&S.arena) - start);
	if (rc < 0) {
		/* Nothing was logged for this zxid: give it back so zxids stay dense. */
		zbuf_truncate(&S.arena, start);
		S.zab.counter--;
		S.zab.proposed_zxid = r.zxid - 1;
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

static void commit_one(const struct pending *p)
{
	const uint8_t *bytes = zbuf_head(&S.arena) + (p->txn_pos - S.arena_pos);
	struct txn x;
	int rc = txn_decode(bytes, p->txn_len, &x);
	ZK_ASSERT(rc == 0); /* we encoded it ourselves */
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
	struct client *cl = p->conn_id ? client_by_id(p->conn_id) : NULL;
	if (cl) {
		ZK_ASSERT(cl->inflight > 0);
		cl->inflight--;
	}
	note_latency(cl, p->start_ms, p->req_type, p->xid, p->zxid);
	if (x.hdr.type == ZOP_CREATESESSION) {
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
	int64_t committed = zab_log_durable(&S.zab, S.wal.durable_zxid);
	while (S.pq_count > 0 && (S.pq[S.pq_head].read || S.pq[S.pq_head].zxid <= committed)) {
		struct pending p = S.pq[S.pq_head];
		if (p.read)
			run_deferred_read(&p);
		else
			commit_one(&p);
		S.pq_head = (S.pq_head + 1) % S.pq_cap;
		S.pq_count--;
		zbuf_consume(&S.arena, p.txn_len);
		S.arena_pos += p.txn_len;
	}
	if (S.pq_count == 0)
		zbuf_shrink(&S.arena, 1 << 20);
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

static void reap_snapshot_child(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != S.snap_pid)
			continue;
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
	zbuf_printf(b, "Mode: standalone\n");
	zbuf_printf(b, "Node count: %llu\n", (unsigned long long)S.tree.node_count + 1);
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
	zbuf_printf(b, "zk_server_state\tstandalone\n");
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
	zbuf_printf(b, "zk_last_proposal_size\t-1\n");
	zbuf_printf(b, "zk_fsync_count\t%llu\n", (unsigned long long)S.wal.syncs);
	zbuf_printf(b, "zk_txn_count\t%llu\n", (unsigned long long)S.wal.records);
	zbuf_printf(b, "zk_last_fsync_us\t%lld\n", (long long)S.wal.last_sync_us);
	zbuf_printf(b, "zk_max_fsync_us\t%lld\n", (long long)S.wal.max_sync_us);
	zbuf_printf(b, "zk_snap_count\t%llu\n", (unsigned long long)S.snapshots_taken);
	zbuf_printf(b, "zk_max_snapshot_fork_us\t%lld\n", (long long)S.max_snap_fork_us);
	zbuf_printf(b, "zk_log_write_failed\t%d\n", S.write_failed ? 1 : 0);
	zbuf_printf(b, "zk_max_loop_pass_us\t%lld\n", (long long)S.loop.max_pass_us);
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
	zbuf_printf(b, "serverId=0\n");
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
	if (next <= net_now_ms(l))
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
	     (S.ready || (wal_has_batch(&S.wal) && !wal_busy(&S.wal)) || S.wal_signalled); round++) {
		S.wal_signalled = false;
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
	}
	flush_dirty();
	reap_dead();
	/* After the replies are out: the fork's pause then delays no answer already made. */
	maybe_snapshot();
	return S.ready != NULL || S.dirty != NULL;
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
	struct recover_cb cb = { restore_session, forget_session, NULL };
	struct recover_result res;
	char err[2048];
	int64_t t0 = net_clock_ms();
	int rc = recover(S.ops, S.snap_dir, S.log_dir, &S.tree, &cb, &res, err, sizeof err);
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
	if (!res.had_snapshot)
		return snapshot_now(); /* ZooKeeper will not load logs without a snapshot before them */
	/* Otherwise the logs cover everything: compact them in the background once serving. */
	S.snapshot_soon = res.snap_zxid != S.tree.last_zxid;
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
	if ((rc = load_database()) < 0)
		return rc;
	prep_init(&S.prep, &S.tree);
	S.prep.extended_types = S.cfg.extended_types;
	S.prep.enforce_quota = S.cfg.enforce_quota;
	S.prep.reap_never_used_ms = S.cfg.container_max_never_used_ms;
	S.prep.skip_acl = S.cfg.skip_acl;
	zab_init(&S.zab, S.tree.last_zxid);
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
	sessions_seed_ids(&S.sessions, net_wall_ms(), 1); /* standalone ZooKeeper uses id 1 */
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
	LOG_WARN("zkd %s serving on %s:%d (standalone, tickTime %d ms, dataDir %s)", ZKD_VERSION,
		 S.cfg.client_addr[0] ? S.cfg.client_addr : "*", S.cfg.client_port, S.cfg.tick_ms,
		 S.cfg.data_dir);
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
