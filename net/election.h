/* The election driver: Fast Leader Election (zab/fle.c) over real non-blocking sockets in the
 * one epoll loop, like Apache ZooKeeper 3.8's QuorumCnxManager and FLE's messenger threads -
 * without the threads.
 *
 * Connections (QuorumCnxManager's rules):
 * - We listen on our election port (our host, or every address with quorumListenOnAllIPs).
 * - To send to a server we have no connection to, we dial it (non-blocking connect, cnxTimeout)
 *   and write the V2 initial message (protocol version, our sid, "host:port" of our election
 *   address). One connection per pair survives: the one the higher sid dialled
 *   (peer_conn_rule). Dialling a higher sid only "kicks" it: we close after the initial message
 *   and it dials back. A connection accepted from a lower sid is closed and dialled back.
 * - A newer connection for a sid replaces the older one (Apache finishes the old SendWorker;
 *   the old one may be half-open after the peer restarted). A second kick from a lower sid
 *   while we hold a connection to it means that connection is dead on its side: we replace it.
 * - A bad initial message, an unknown sid, our own sid, a frame length outside 1..512 KiB, or
 *   an accepted connection that sends no initial message within cnxTimeout is closed with a
 *   (rate-limited) log line. A notification that does not decode is ignored, as Apache does.
 * - Peers that are down are dialled again while we have something for them, with a backoff
 *   from 100 ms doubling to 2 s; any sign of life (a connection from it, a frame) resets it.
 *
 * Bounds: ELECTION_CONNS_MAX connection slots (at most ELECTION_HANDSHAKES_MAX of them
 * accepted and not yet identified; more are closed at once). Output per peer is one frame in
 * the socket's buffer plus ONE pending notification: a newer notification replaces a pending
 * one (Apache's send queue has capacity 1 and drops the oldest). Only the newest vote matters
 * to FLE, so dropping older ones loses nothing and a stalled (SIGSTOPped) peer costs at most
 * one frame. Input per connection: one max frame plus an initial message.
 *
 * Memory: struct election is self-contained (embed it; no malloc per message). A connection's
 * buffers are allocated when it is set up and freed when it is reaped.
 *
 * Use (server.c):
 *   election_init(&e, &loop, &cfg, on_decided, ctx, err, sizeof err)   after config_set_myid,
 *       in quorum mode; binds and listens; notifications are read but ignored until ...
 *   election_start(&e, last_logged_zxid, current_epoch)                 go LOOKING
 *   on_decided(ctx, PEER_LEADING|PEER_FOLLOWING|PEER_OBSERVING, &vote)   called once per election
 *       from inside the loop; it may call election_start (never election_free).
 *   After deciding, the driver keeps answering LOOKING peers with the decided vote until the
 *   next election_start (ZAB lost its leader, or the leader stepped down).
 *   election_free(&e) on shutdown. */
#ifndef ZK_NET_ELECTION_H
#define ZK_NET_ELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/conn.h"
#include "net/loop.h"
#include "zab/config.h"
#include "zab/fle.h"

#define ELECTION_CONNS_MAX (2 * ZK_SERVERS_MAX + 16)
#define ELECTION_HANDSHAKES_MAX 16
#define ELECTION_BACKOFF_MIN_MS 100
#define ELECTION_BACKOFF_MAX_MS 2000
#define ELECTION_CONFIG_TEXT_MAX 20480 /* 32 server lines of < 600 bytes */
#define ELECTION_LOG_BURST 10          /* warnings about bad peers per 10 s */

typedef void (*election_decided_fn)(void *ctx, int32_t state, const struct fle_vote *vote);

enum election_conn_state {
	EC_FREE,       /* slot unused */
	EC_CONNECTING, /* we dialled; connect in progress */
	EC_KICKING,    /* dialled a higher sid: the initial message goes out, then we close */
	EC_HANDSHAKE,  /* accepted; waiting for the initial message */
	EC_UP,         /* the one connection of a pair: frames both ways */
	EC_DEAD,       /* closed this pass; buffers freed when reaped (after the dispatch) */
};

struct election;

struct election_conn {
	struct conn c;        /* first: the loop hands us &c.h */
	struct election *e;
	enum election_conn_state state;
	int peer;             /* index into peers, -1 until known */
	int64_t deadline_ms;  /* CONNECTING, KICKING, HANDSHAKE */
};

struct election_peer {
	int64_t sid;
	bool voter;
	char host[256];
	int port;             /* its election port */
	struct sockaddr_storage addr;
	socklen_t addr_len;   /* 0: not resolved yet (resolved again at each dial) */
	int up;               /* conns index of the EC_UP connection, or -1 */
	int dialing;          /* conns index of an EC_CONNECTING/EC_KICKING one, or -1 */
	bool has_pending;
	struct peer_note pending; /* the newest notification not yet handed to the socket */
	int64_t next_dial_ms;
	int backoff_ms;
	uint64_t notes_in, notes_out, dials;
};

struct election {
	struct net_loop *loop;
	int64_t my_sid;
	int me;                             /* index of my_sid in peers */
	int npeers;
	struct election_peer peers[ZK_SERVERS_MAX];
	struct election_conn conns[ELECTION_CONNS_MAX];
	struct net_handle listener;
	struct net_timer fle_timer;         /* FLE's one timer */
	uint64_t fle_timer_gen;
	struct net_timer house;             /* dials, deadlines, reaping */
	int cnx_timeout_ms;
	char my_addr[320];                  /* "host:port" of our election address */
	char config_text[ELECTION_CONFIG_TEXT_MAX]; /* QuorumMaj.toString(), sent in notifications */
	int32_t config_len;
	election_decided_fn decided_fn;
	void *ctx;
	bool started;
	int64_t log_window_ms;
	int log_count;
	uint64_t conn_ids, bad_conns, decisions;
	struct fle fle;
};

/* Binds and listens on our election address. 0, or -errno with a message in err (no
 * "election:" prefix: the caller adds its own): our sid is not a server.N line, the port
 * cannot be bound... A peer host that does not resolve is only a warning. */
int election_init(struct election *e, struct net_loop *loop, const struct zk_config *cfg,
		  election_decided_fn fn, void *ctx, char *err, size_t errlen);
/* Start an election (LOOKING) with what this server has logged and its currentEpoch. */
void election_start(struct election *e, int64_t last_zxid, int64_t current_epoch);
/* LOOKING, or the state decided last. */
int32_t election_state(const struct election *e);
/* While LOOKING, our current proposal; afterwards the decided vote. */
const struct fle_vote *election_vote(const struct election *e);
/* Closes every socket and frees every buffer; e may then be initialised again. */
void election_free(struct election *e);
/* QuorumMaj.toString() for cfg (what notifications carry): 0, or -ENOBUFS past cap. */
int election_config_text(const struct zk_config *cfg, char *out, size_t cap, int32_t *len);

#endif
