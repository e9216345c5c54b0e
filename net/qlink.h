/* Connections on the quorum port: ZAB's links between a leader and its learners.
 *
 * A link is a buffered non-blocking connection (net/conn.h) to one peer: a learner's link to
 * its leader (dialled, qlink_dial), or the leader's link to a learner (accepted,
 * qlink_accepted; its sid stays -1 until the owner learns it from the first packet). This
 * file knows how links are made, how a QuorumPacket is framed onto one, and how links are
 * closed, flushed and freed; it knows nothing of what a packet means. The owner (server.c)
 * reads and decodes packets itself (conn_read on k->c, quorum_packet_decode), decides whom to
 * accept, and is told of every close through the on_close callback, where it does what ZAB
 * needs (a DISCONNECT for the leader's machine, a lost leader for a learner).
 *
 * Lifecycle: a link joins the list and the loop when made. qlink_close marks it dead, takes
 * it out of the loop and calls on_close once; its memory stays valid until qlink_reap, which
 * the owner calls after the dispatch pass (never inside a callback), so a pointer held
 * during the pass still sees `dead`.
 *
 * Bounds: input QLINK_IN_MAX and output QLINK_OUT_MAX per link; an append past the output
 * bound closes the link ("output limit reached"). How many links may exist is the owner's
 * to bound (it closes accepted sockets it does not want).
 *
 * `work` is set whenever a link may have something to do (an event came, output was
 * appended); the owner clears it when it services the links. */
#ifndef ZK_NET_QLINK_H
#define ZK_NET_QLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/conn.h"
#include "net/loop.h"

#define QLINK_IN_MAX (512u << 20)   /* a SNAP stream must fit */
#define QLINK_OUT_MAX (768u << 20)  /* a SNAP or a long DIFF to one learner */

struct qlinks;

struct qlink {
	struct conn c;       /* first: the loop hands back &c.h */
	struct qlinks *set;
	int64_t sid;         /* the peer; -1 until an accepted one sent FOLLOWERINFO/OBSERVERINFO */
	bool dead, connecting;
	struct qlink *next;
};

/* k was just closed (k->dead is set, k->sid still names the peer). */
typedef void (*qlink_close_fn)(void *ctx, struct qlink *k);

struct qlinks {
	struct qlink *head;  /* every link, the newest first; dead ones until qlink_reap */
	struct net_loop *loop;
	qlink_close_fn on_close;
	void *ctx;
	bool work;
};

void qlinks_init(struct qlinks *s, struct net_loop *loop, qlink_close_fn on_close, void *ctx);
/* A link for an accepted socket (fd is the link's now, or closed on failure), marked
 * readable. NULL when out of memory or the loop refused it. */
struct qlink *qlink_accepted(struct qlinks *s, int fd, const struct sockaddr_storage *ss, uint64_t id);
/* Dial host:port without blocking: a link marked `connecting`, or NULL (logged when the
 * host does not resolve). Call qlink_connect_done when it turns writable or readable. */
struct qlink *qlink_dial(struct qlinks *s, const char *host, int port, int64_t sid, uint64_t id);
/* After an event on a connecting link: 1 it is up (readable from now on), 0 still in
 * progress, -errno the connect failed (the link is left as it was: the owner closes it). */
int qlink_connect_done(struct qlink *k);
/* The live link to sid, or NULL. */
struct qlink *qlink_of(const struct qlinks *s, int64_t sid);
/* Append one QuorumPacket: type, zxid, data (dlen -1: null), and the authinfo vector given
 * serialized with its count (`ids`), or a null vector when ids is NULL. Nothing on a dead
 * or NULL link; past the output bound the link is closed. */
void qlink_send(struct qlink *k, int32_t type, int64_t zxid, const void *data, int32_t dlen,
		const uint8_t *ids, size_t ids_len);
/* A packet whose data is one int (LEADERINFO's protocol version, ACKEPOCH's epoch). */
void qlink_send_int(struct qlink *k, int32_t type, int64_t zxid, int32_t v);
void qlink_close(struct qlink *k, const char *why);
void qlink_close_all(struct qlinks *s, const char *why);
/* Write what every live, connected link holds; a link whose socket failed is closed. */
void qlink_flush_all(struct qlinks *s);
/* Free the dead links. */
void qlink_reap(struct qlinks *s);

#endif
