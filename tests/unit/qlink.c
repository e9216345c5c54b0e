/* Proves the quorum-port links (net/qlink.h) over real sockets: a packet appended with
 * qlink_send reaches the peer framed as a QuorumPacket (data, null data, an authinfo
 * vector), a close tells the owner exactly once and hides the link from qlink_of until it
 * is reaped, and a non-blocking dial reports success against a listener and failure
 * against a closed port. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/jute.h"
#include "net/peerwire.h"
#include "net/qlink.h"

static struct net_loop L;
static struct qlinks Q;
static int closes;
static struct qlink *last_closed;

static void on_close(void *ctx, struct qlink *k)
{
	cr_assert_eq(ctx, &Q);
	cr_assert(k->dead, "closed links are dead when the owner hears of it");
	closes++;
	last_closed = k;
}

static void setup(void)
{
	cr_assert_eq(net_loop_init(&L), 0);
	qlinks_init(&Q, &L, on_close, &Q);
	closes = 0;
	last_closed = NULL;
}

static void teardown(void)
{
	qlink_close_all(&Q, "test over");
	qlink_reap(&Q);
	net_loop_free(&L);
}

TestSuite(qlink, .init = setup, .fini = teardown, .timeout = 10);

/* A link on one end of a socketpair; the other end is returned in *peer. */
static struct qlink *pair_link(int *peer, uint64_t id)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	struct qlink *k = qlink_accepted(&Q, sv[0], NULL, id);
	cr_assert_not_null(k);
	cr_assert(k->c.readable && Q.work, "an accepted link is read at once");
	cr_assert_eq(k->sid, -1);
	k->c.writable = true; /* as the loop's first EPOLLOUT edge makes it */
	*peer = sv[1];
	return k;
}

static size_t read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			return n;
		n += (size_t)r;
	}
}

Test(qlink, packets_reach_the_peer_framed)
{
	int peer;
	struct qlink *k = pair_link(&peer, 7);
	Q.work = false;
	qlink_send(k, QP_PROPOSAL, 0x100000001LL, "abc", 3, NULL, 0);
	cr_assert(Q.work, "output appended: the owner has work");
	qlink_send(k, QP_COMMIT, 0x100000001LL, NULL, -1, NULL, 0);
	qlink_send_int(k, QP_ACKEPOCH, 5, 42);
	/* authinfo as a serialized vector<Id>: one Id ("ip", "1.2.3.4") */
	uint8_t ids[64];
	struct zbuf b;
	zbuf_init(&b, sizeof ids);
	struct jute_out o;
	jout_init(&o, &b);
	jout_i32(&o, 1);
	jout_buf(&o, "ip", 2);
	jout_buf(&o, "1.2.3.4", 7);
	cr_assert_eq(o.err, 0);
	size_t ids_len = zbuf_len(&b);
	memcpy(ids, zbuf_head(&b), ids_len);
	zbuf_free(&b);
	qlink_send(k, QP_REQUEST, -1, "xy", 2, ids, ids_len);
	qlink_flush_all(&Q);
	cr_assert_eq(zbuf_len(&k->c.out), 0);

	uint8_t buf[512];
	size_t n = read_all(peer, buf, sizeof buf), off = 0, used;
	struct quorum_packet q;
	cr_assert_eq(quorum_packet_decode(buf, n, 1 << 20, &q, &used), 0);
	cr_assert_eq(q.type, QP_PROPOSAL);
	cr_assert_eq(q.zxid, 0x100000001LL);
	cr_assert_eq(q.data_len, 3);
	cr_assert_eq(memcmp(q.data, "abc", 3), 0);
	cr_assert_eq(q.nauth, -1, "no ids: a null vector");
	off += used;
	cr_assert_eq(quorum_packet_decode(buf + off, n - off, 1 << 20, &q, &used), 0);
	cr_assert_eq(q.type, QP_COMMIT);
	cr_assert_eq(q.data_len, -1);
	off += used;
	cr_assert_eq(quorum_packet_decode(buf + off, n - off, 1 << 20, &q, &used), 0);
	cr_assert_eq(q.type, QP_ACKEPOCH);
	int32_t e;
	cr_assert_eq(quorum_int_payload_decode(q.data, q.data_len, &e), 0);
	cr_assert_eq(e, 42);
	off += used;
	cr_assert_eq(quorum_packet_decode(buf + off, n - off, 1 << 20, &q, &used), 0);
	cr_assert_eq(q.type, QP_REQUEST);
	cr_assert_eq(q.nauth, 1);
	size_t at = 0;
	struct zk_id id;
	cr_assert(quorum_packet_id(&q, &at, &id));
	cr_assert_eq(id.id_len, 7);
	cr_assert_eq(memcmp(id.id, "1.2.3.4", 7), 0);
	off += used;
	cr_assert_eq(off, n, "nothing else was sent");
	close(peer);
}

Test(qlink, close_tells_the_owner_once)
{
	int p1, p2;
	struct qlink *a = pair_link(&p1, 1), *b = pair_link(&p2, 2);
	a->sid = 11;
	b->sid = 12;
	cr_assert_eq(qlink_of(&Q, 11), a);
	cr_assert_eq(qlink_of(&Q, 12), b);
	qlink_close(a, "test");
	cr_assert_eq(closes, 1);
	cr_assert_eq(last_closed, a);
	cr_assert_eq(a->sid, 11, "the owner still sees whom it was");
	qlink_close(a, "again");
	cr_assert_eq(closes, 1, "a second close is nothing");
	cr_assert_null(qlink_of(&Q, 11));
	qlink_send(a, QP_PING, 1, NULL, -1, NULL, 0);
	cr_assert_eq(zbuf_len(&a->c.out), 0, "nothing goes to a dead link");
	qlink_send(NULL, QP_PING, 1, NULL, -1, NULL, 0);
	qlink_reap(&Q);
	cr_assert_eq(Q.head, b, "the dead link is freed, the live one stays");
	cr_assert_null(b->next);
	qlink_close_all(&Q, "all");
	cr_assert_eq(closes, 2);
	qlink_reap(&Q);
	cr_assert_null(Q.head);
	close(p1);
	close(p2);
}

Test(qlink, a_failed_flush_closes_the_link)
{
	int peer;
	struct qlink *k = pair_link(&peer, 3);
	close(peer);
	qlink_send(k, QP_PING, 1, NULL, -1, NULL, 0);
	qlink_flush_all(&Q);
	cr_assert(k->dead);
	cr_assert_eq(closes, 1);
}

static int wait_connected(struct qlink *k)
{
	for (int i = 0; i < 100; i++) {
		struct pollfd p = { .fd = k->c.h.fd, .events = POLLOUT };
		poll(&p, 1, 50);
		int rc = qlink_connect_done(k);
		if (rc != 0)
			return rc;
	}
	return 0;
}

Test(qlink, dial_up_and_refused)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	socklen_t sl = sizeof sa;
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	int port = ntohs(sa.sin_port);

	struct qlink *k = qlink_dial(&Q, "127.0.0.1", port, 3, 9);
	cr_assert_not_null(k);
	cr_assert(k->connecting);
	cr_assert_eq(k->sid, 3);
	cr_assert_eq(wait_connected(k), 1);
	cr_assert_not(k->connecting);
	cr_assert(k->c.readable);

	close(lfd); /* nothing listens on the port now */
	struct qlink *r = qlink_dial(&Q, "127.0.0.1", port, 4, 10);
	if (r) { /* loopback may refuse at connect() already: then there is no link at all */
		int rc = wait_connected(r);
		cr_assert_eq(rc, -ECONNREFUSED, "%d", rc);
		cr_assert(r->connecting && !r->dead, "the owner closes it");
		qlink_close(r, "refused");
	}
}
