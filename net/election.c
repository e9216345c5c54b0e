/* The election driver; see election.h for the connection rules and bounds.
 *
 * Everything happens in the loop's callbacks: a socket event reads or writes at once and
 * steps the FLE machine; a closed connection becomes EC_DEAD (its handle is marked closed, so
 * stale events of this pass are skipped) and its slot is only reused after the `house` timer
 * reaped it, which runs after the dispatch of the pass. */
#include "net/election.h"
#include "net/jute.h"
#include "net/log.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_MAX (4 + PEER_FRAME_MAX + 20 + PEER_INITIAL_ADDR_MAX)
#define OUT_MAX (4 + PEER_FRAME_MAX + 20 + PEER_INITIAL_ADDR_MAX)

static struct election *of_timer(struct net_timer *t, size_t off)
{
	return (struct election *)(void *)((char *)t - off);
}

static int conn_index(const struct election *e, const struct election_conn *ec)
{
	ptrdiff_t i = ec - e->conns;
	ZK_ASSERT(i >= 0 && i < ELECTION_CONNS_MAX);
	return (int)i;
}

static int peer_index(const struct election *e, int64_t sid)
{
	for (int i = 0; i < e->npeers; i++)
		if (e->peers[i].sid == sid)
			return i;
	return -1;
}

/* Warnings about bad peers: a burst per 10 s, then a count of what was not logged. */
static void peer_warn(struct election *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void peer_warn(struct election *e, const char *fmt, ...)
{
	int64_t now = net_now_ms(e->loop);
	e->bad_conns++;
	if (now - e->log_window_ms >= 10000) {
		if (e->log_count > ELECTION_LOG_BURST)
			LOG_WARN("election: %d more bad peer connections not logged",
				 e->log_count - ELECTION_LOG_BURST);
		e->log_window_ms = now;
		e->log_count = 0;
	}
	if (e->log_count++ >= ELECTION_LOG_BURST)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	LOG_WARN("election: %s", msg);
}

/* ---- the house timer: deadlines, dials, reaping ---- */

static void dial(struct election *e, struct election_peer *p);
static void service(struct election *e, struct election_conn *ec);

static void schedule(struct election *e, int64_t at)
{
	struct net_timer *t = &e->house;
	if (t->idx == SIZE_MAX || at < t->at_ms)
		net_timer_arm(e->loop, t, at);
}

static void close_conn(struct election *e, struct election_conn *ec, const char *why)
{
	ZK_ASSERT(ec->state != EC_FREE && ec->state != EC_DEAD);
	if (ec->peer >= 0) {
		struct election_peer *p = &e->peers[ec->peer];
		int i = conn_index(e, ec);
		LOG_DEBUG("election: connection %s sid %" PRId64 " closed: %s", ec->c.peer_str, p->sid, why);
		if (p->up == i)
			p->up = -1;
		if (p->dialing == i)
			p->dialing = -1;
		if (p->has_pending) /* still something to say: dial again after the backoff */
			schedule(e, p->next_dial_ms);
	}
	net_loop_del(e->loop, &ec->c.h);
	ec->state = EC_DEAD;
	schedule(e, net_now_ms(e->loop)); /* reap after this pass's dispatch */
}

static void backoff(struct election *e, struct election_peer *p)
{
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : ELECTION_BACKOFF_MIN_MS;
	if (p->backoff_ms > ELECTION_BACKOFF_MAX_MS)
		p->backoff_ms = ELECTION_BACKOFF_MAX_MS;
	p->next_dial_ms = net_now_ms(e->loop) + p->backoff_ms;
}

static void alive(struct election *e, struct election_peer *p)
{
	p->backoff_ms = 0;
	p->next_dial_ms = net_now_ms(e->loop);
}

static void on_house(struct net_loop *l, struct net_timer *t)
{
	struct election *e = of_timer(t, offsetof(struct election, house));
	int64_t now = net_now_ms(l), next = INT64_MAX;
	for (int i = 0; i < ELECTION_CONNS_MAX; i++) {
		struct election_conn *ec = &e->conns[i];
		if (ec->state == EC_DEAD) {
			conn_free_buffers(&ec->c);
			ec->state = EC_FREE;
		} else if ((ec->state == EC_CONNECTING || ec->state == EC_KICKING ||
			    ec->state == EC_HANDSHAKE) && ec->deadline_ms <= now) {
			if (ec->state == EC_HANDSHAKE)
				peer_warn(e, "%s sent no initial message within %d ms; closed",
					  ec->c.peer_str, e->cnx_timeout_ms);
			close_conn(e, ec, "timed out");
			next = now; /* reap it on the next round */
		} else if (ec->state == EC_CONNECTING || ec->state == EC_KICKING ||
			   ec->state == EC_HANDSHAKE) {
			next = ec->deadline_ms < next ? ec->deadline_ms : next;
		}
		/* A connection that was still readable when service() yielded. */
		if ((ec->state == EC_UP || ec->state == EC_HANDSHAKE) && ec->c.readable && !ec->c.eof)
			service(e, ec);
	}
	for (int i = 0; i < e->npeers; i++) {
		struct election_peer *p = &e->peers[i];
		if (i == e->me || !p->has_pending || p->up >= 0 || p->dialing >= 0)
			continue;
		if (p->next_dial_ms <= now)
			dial(e, p);
		if (p->up < 0 && p->dialing < 0)
			next = p->next_dial_ms < next ? p->next_dial_ms : next;
	}
	if (next != INT64_MAX)
		schedule(e, next > now ? next : now + 1);
}

/* ---- sending ---- */

static int write_out(struct election *e, struct election_conn *ec)
{
	int rc = conn_flush(&ec->c);
	if (rc < 0) {
		if (ec->peer >= 0)
			backoff(e, &e->peers[ec->peer]);
		close_conn(e, ec, strerror(-rc));
	}
	return rc;
}

/* Hand the pending notification to the socket once the previous one has left. */
static void pump(struct election *e, struct election_peer *p)
{
	if (!p->has_pending || p->up < 0)
		return;
	struct election_conn *ec = &e->conns[p->up];
	ZK_ASSERT(ec->state == EC_UP && ec->peer == p - e->peers);
	if (zbuf_len(&ec->c.out) > 0)
		return; /* a frame is still in the socket's way: the pending one waits (and may be replaced) */
	struct peer_note n = p->pending;
	n.config = (const uint8_t *)e->config_text;
	n.config_len = e->config_len;
	struct jute_out o;
	jout_init(&o, &ec->c.out);
	int rc = peer_note_encode(&o, &n);
	ZK_ASSERT(rc == 0); /* an empty buffer holds a whole frame */
	p->has_pending = false;
	p->notes_out++;
	write_out(e, ec);
}

static void send_note(struct election *e, struct election_peer *p, const struct peer_note *n)
{
	ZK_ASSERT(p != &e->peers[e->me]);
	p->pending = *n; /* replaces an older pending one: only the newest vote matters */
	p->has_pending = true;
	if (p->up >= 0)
		pump(e, p);
	else if (p->dialing < 0)
		schedule(e, p->next_dial_ms);
}

/* ---- FLE ---- */

static void run_actions(struct election *e, const struct fle_actions *acts)
{
	bool decided = false;
	struct fle_action dec = { 0 };
	for (int i = 0; i < acts->n; i++) {
		const struct fle_action *a = &acts->a[i];
		switch (a->type) {
		case FLE_ACT_SEND:
			if (!a->to_voters) {
				int k = peer_index(e, a->to);
				if (k >= 0 && k != e->me)
					send_note(e, &e->peers[k], &a->note);
				break;
			}
			for (int k = 0; k < e->npeers; k++)
				if (k != e->me && e->peers[k].voter)
					send_note(e, &e->peers[k], &a->note);
			break;
		case FLE_ACT_ARM_TIMER:
			e->fle_timer_gen = a->timer_gen;
			net_timer_arm(e->loop, &e->fle_timer, net_now_ms(e->loop) + a->timer_ms);
			break;
		case FLE_ACT_CANCEL_TIMER:
			net_timer_cancel(e->loop, &e->fle_timer);
			break;
		case FLE_ACT_DECIDED:
			decided = true;
			dec = *a;
			break;
		}
	}
	if (decided) { /* last: the callback may start the next election */
		e->decisions++;
		e->decided_fn(e->ctx, dec.state, &dec.vote);
	}
}

static void step(struct election *e, const struct fle_event *ev)
{
	struct fle_actions acts = { 0 };
	fle_step(&e->fle, ev, &acts);
	run_actions(e, &acts);
}

static void on_fle_timer(struct net_loop *l, struct net_timer *t)
{
	struct election *e = of_timer(t, offsetof(struct election, fle_timer));
	(void)l;
	step(e, &(struct fle_event){ .type = FLE_EV_TIMER, .timer_gen = e->fle_timer_gen });
}

/* ---- connections ---- */

static void on_conn_event(struct net_loop *l, struct net_handle *h, uint32_t events);

static struct election_conn *alloc_conn(struct election *e, int fd, const char *what)
{
	for (int i = 0; i < ELECTION_CONNS_MAX; i++) {
		struct election_conn *ec = &e->conns[i];
		if (ec->state != EC_FREE)
			continue;
		conn_init(&ec->c, fd, ++e->conn_ids, IN_MAX, OUT_MAX, OUT_MAX);
		ec->c.h.on_event = on_conn_event;
		ec->e = e;
		ec->peer = -1;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (net_loop_add(e->loop, &ec->c.h) < 0) {
			conn_free_buffers(&ec->c);
			close(fd);
			return NULL;
		}
		return ec;
	}
	peer_warn(e, "no free connection slot for %s; closed", what);
	close(fd);
	return NULL;
}

static void dial(struct election *e, struct election_peer *p)
{
	ZK_ASSERT(p->up < 0 && p->dialing < 0 && p != &e->peers[e->me]);
	p->dials++;
	backoff(e, p); /* the next try, unless this one works (alive() resets it) */
	char why[256];
	if (p->addr_len == 0 && /* a name that did not resolve at start: the one blocking call */
	    net_resolve(p->host, p->port, &p->addr, &p->addr_len, why, sizeof why) < 0) {
		p->addr_len = 0;
		LOG_DEBUG("election: sid %" PRId64 ": %s", p->sid, why);
		return;
	}
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		LOG_WARN("election: socket: %s", strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&p->addr, p->addr_len) < 0 && errno != EINPROGRESS) {
		LOG_DEBUG("election: connect to sid %" PRId64 ": %s", p->sid, strerror(errno));
		close(fd);
		return;
	}
	char what[64];
	snprintf(what, sizeof what, "a dial to sid %" PRId64, p->sid);
	struct election_conn *ec = alloc_conn(e, fd, what);
	if (!ec)
		return;
	ec->state = EC_CONNECTING;
	ec->peer = (int)(p - e->peers);
	ec->deadline_ms = net_now_ms(e->loop) + e->cnx_timeout_ms;
	ec->c.peer = p->addr;
	net_addr_str(&p->addr, ec->c.peer_str, sizeof ec->c.peer_str);
	p->dialing = conn_index(e, ec);
	schedule(e, ec->deadline_ms);
}

/* The one connection of the pair: replaces an older one (Apache finishes the old worker). */
static void make_up(struct election *e, struct election_conn *ec, struct election_peer *p)
{
	int i = conn_index(e, ec);
	if (p->up >= 0 && p->up != i)
		close_conn(e, &e->conns[p->up], "replaced by a newer connection");
	if (p->dialing == i)
		p->dialing = -1;
	ec->state = EC_UP;
	ec->peer = (int)(p - e->peers);
	p->up = i;
	alive(e, p);
	LOG_INFO("election: connected to sid %" PRId64 " (%s)", p->sid, ec->c.peer_str);
	pump(e, p);
}

/* Our dial completed: send the initial message; keep it, or close it once sent (kick). */
static void on_connected(struct election *e, struct election_conn *ec)
{
	struct election_peer *p = &e->peers[ec->peer];
	struct jute_out o;
	jout_init(&o, &ec->c.out);
	int rc = peer_initial_encode(&o, PEER_PROTOCOL_V2, e->my_sid, e->my_addr);
	ZK_ASSERT(rc == 0);
	if (peer_conn_rule(e->my_sid, p->sid, true) == PEER_CONN_KEEP) {
		/* The initial message goes out ahead of any notification: pump waits for it. */
		if (write_out(e, ec) == 0)
			make_up(e, ec, p);
		return;
	}
	ec->state = EC_KICKING;
	if (write_out(e, ec) == 0 && zbuf_len(&ec->c.out) == 0)
		close_conn(e, ec, "kicked a higher sid; it dials back");
}

static void on_connecting(struct election *e, struct election_conn *ec)
{
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(ec->c.h.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == EINPROGRESS || soerr == EALREADY)
		return;
	if (soerr) {
		LOG_DEBUG("election: connect to %s: %s", ec->c.peer_str, strerror(soerr));
		close_conn(e, ec, strerror(soerr));
		return;
	}
	if (!ec->c.writable)
		return; /* readable before writable: wait for the connect to finish */
	on_connected(e, ec);
}

/* An accepted connection's initial message (QuorumCnxManager.handleConnection). */
static int on_initial(struct election *e, struct election_conn *ec)
{
	struct peer_initial m;
	size_t used = 0;
	int rc = peer_initial_decode(zbuf_head(&ec->c.in), zbuf_len(&ec->c.in), &m, &used);
	if (rc == -EAGAIN)
		return ec->c.eof ? (close_conn(e, ec, "closed before its initial message"), -EPIPE) : rc;
	if (rc < 0) {
		peer_warn(e, "%s sent a bad initial message; closed", ec->c.peer_str);
		close_conn(e, ec, "bad initial message");
		return rc;
	}
	int k = peer_index(e, m.sid);
	if (k < 0 || k == e->me) {
		peer_warn(e, "%s says it is sid %" PRId64 ", %s; closed", ec->c.peer_str, m.sid,
			  k < 0 ? "which is not a server.N line" : "which is ours");
		close_conn(e, ec, "unknown sid");
		return -EPERM;
	}
	struct election_peer *p = &e->peers[k];
	zbuf_consume(&ec->c.in, used);
	ec->peer = k;
	alive(e, p);
	if (peer_conn_rule(e->my_sid, m.sid, false) == PEER_CONN_CLOSE_AND_DIAL) {
		/* A kick: it has no connection to us, so any we hold is dead on its side. */
		close_conn(e, ec, "accepted from a lower sid; dialling back");
		if (p->up >= 0)
			close_conn(e, &e->conns[p->up], "the peer dialled us: its end is gone");
		if (p->dialing < 0)
			dial(e, p);
		return -EPIPE;
	}
	make_up(e, ec, p);
	return 0;
}

static void on_frame(struct election *e, struct election_conn *ec, const uint8_t *p, int32_t n)
{
	struct election_peer *peer = &e->peers[ec->peer];
	struct fle_event ev = { .type = FLE_EV_NOTE, .from = peer->sid };
	if (peer_note_decode(p, (size_t)n, &ev.note) < 0) {
		LOG_DEBUG("election: sid %" PRId64 " sent a notification we cannot read (%d bytes); "
			  "ignored", peer->sid, n);
		return;
	}
	peer->notes_in++;
	alive(e, peer);
	step(e, &ev);
}

/* Frames of an EC_UP connection; stops when the connection closed under us. */
static void read_frames(struct election *e, struct election_conn *ec)
{
	while (ec->state == EC_UP && zbuf_len(&ec->c.in) > 0) {
		const uint8_t *payload;
		int32_t plen;
		size_t used;
		int rc = peer_frame_decode(zbuf_head(&ec->c.in), zbuf_len(&ec->c.in), &payload, &plen, &used);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			peer_warn(e, "sid %" PRId64 " (%s) sent a frame length outside 1..%d; closed",
				  e->peers[ec->peer].sid, ec->c.peer_str, PEER_FRAME_MAX);
			close_conn(e, ec, "bad frame");
			return;
		}
		/* The payload stays valid while we step: consume only after (nothing appends to in). */
		on_frame(e, ec, payload, plen);
		if (ec->state != EC_UP)
			return;
		zbuf_consume(&ec->c.in, used);
	}
}

static void service(struct election *e, struct election_conn *ec)
{
	for (int guard = 0; guard < 64; guard++) {
		ssize_t n = conn_read(&ec->c);
		if (ec->state == EC_HANDSHAKE && on_initial(e, ec) < 0)
			return;
		if (ec->state == EC_KICKING) /* it should not talk to us: drop what it says */
			zbuf_reset(&ec->c.in);
		read_frames(e, ec);
		if (ec->state == EC_DEAD)
			return;
		if (ec->c.eof) {
			close_conn(e, ec, "end of stream");
			return;
		}
		if (n <= 0 || !ec->c.readable)
			return;
	}
	schedule(e, net_now_ms(e->loop) + 1); /* a busy peer yields; the next pass reads on */
}

static void on_conn_event(struct net_loop *l, struct net_handle *h, uint32_t events)
{
	struct election_conn *ec = (struct election_conn *)(void *)h;
	struct election *e = ec->e;
	(void)l;
	if (events & NET_READABLE)
		ec->c.readable = true;
	if (events & NET_WRITABLE)
		ec->c.writable = true;
	if (ec->state == EC_CONNECTING) {
		on_connecting(e, ec);
		if (ec->state != EC_UP && ec->state != EC_KICKING)
			return;
	}
	if ((ec->state == EC_UP || ec->state == EC_KICKING) && zbuf_len(&ec->c.out) > 0 &&
	    write_out(e, ec) < 0)
		return;
	if (ec->state == EC_KICKING && zbuf_len(&ec->c.out) == 0) {
		close_conn(e, ec, "kicked a higher sid; it dials back");
		return;
	}
	if (ec->state == EC_UP)
		pump(e, &e->peers[ec->peer]);
	if (ec->state == EC_UP || ec->state == EC_HANDSHAKE || ec->state == EC_KICKING)
		service(e, ec);
}

static int handshakes(const struct election *e)
{
	int n = 0;
	for (int i = 0; i < ELECTION_CONNS_MAX; i++)
		n += e->conns[i].state == EC_HANDSHAKE;
	return n;
}

static void on_accept(struct net_loop *l, struct net_handle *h, uint32_t events)
{
	struct election *e = (struct election *)(void *)((char *)h - offsetof(struct election, listener));
	(void)events;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(h->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				LOG_WARN("election: accept: %s", strerror(errno));
			return; /* EMFILE and friends: the next connection attempt retries */
		}
		char a[64];
		net_addr_str(&ss, a, sizeof a);
		if (handshakes(e) >= ELECTION_HANDSHAKES_MAX) {
			peer_warn(e, "%d connections are already waiting for their initial message; "
				  "%s closed", ELECTION_HANDSHAKES_MAX, a);
			close(fd);
			continue;
		}
		struct election_conn *ec = alloc_conn(e, fd, a);
		if (!ec)
			continue;
		ec->state = EC_HANDSHAKE;
		ec->c.peer = ss;
		memcpy(ec->c.peer_str, a, sizeof a);
		ec->deadline_ms = net_now_ms(l) + e->cnx_timeout_ms;
		schedule(e, ec->deadline_ms);
	}
}

/* ---- setup ---- */

static int append(char *out, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int append(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOBUFS;
	*len += (size_t)n;
	return 0;
}

/* QuorumServer.delimitedHostString: an IPv6 host in brackets. */
static const char *delim(const char *host, char *buf, size_t cap)
{
	if (!strchr(host, ':'))
		return host;
	snprintf(buf, cap, "[%s]", host);
	return buf;
}

int election_config_text(const struct zk_config *cfg, char *out, size_t cap, int32_t *len)
{
	/* Apache's QuorumMaj iterates a HashMap of sids: in sid order for sids below its table
	 * size, which our 1..255 with at most 32 servers meets only for small sids; we always
	 * write sid order (Apache only reads the version from it). */
	const struct zk_server *order[ZK_SERVERS_MAX];
	int n = cfg->nservers;
	for (int i = 0; i < n; i++) {
		int j = i;
		while (j > 0 && order[j - 1]->sid > cfg->servers[i].sid) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = &cfg->servers[i];
	}
	size_t l = 0;
	for (int i = 0; i < n; i++) {
		const struct zk_server *s = order[i];
		char h[300], ch[300];
		if (append(out, cap, &l, "server.%" PRId64 "=%s:%d:%d:%s", s->sid, delim(s->host, h, sizeof h),
			   s->quorum_port, s->election_port, s->observer ? "observer" : "participant") < 0 ||
		    (s->client_port &&
		     append(out, cap, &l, ";%s:%d", delim(s->client_host[0] ? s->client_host : "0.0.0.0", ch,
							sizeof ch), s->client_port) < 0) ||
		    append(out, cap, &l, "\n") < 0)
			return -ENOBUFS;
	}
	if (append(out, cap, &l, "version=0") < 0)
		return -ENOBUFS;
	*len = (int32_t)l;
	return 0;
}

static int init_peers(struct election *e, const struct zk_config *cfg, char *err, size_t errlen)
{
	struct fle_member members[ZK_SERVERS_MAX];
	e->me = -1;
	for (int i = 0; i < cfg->nservers; i++) {
		const struct zk_server *s = &cfg->servers[i];
		struct election_peer *p = &e->peers[e->npeers++];
		p->sid = s->sid;
		p->voter = !s->observer;
		p->up = p->dialing = -1;
		snprintf(p->host, sizeof p->host, "%s", s->host);
		p->port = s->election_port;
		members[i] = (struct fle_member){ .sid = s->sid, .voter = p->voter };
		if (s->sid == e->my_sid) {
			e->me = i;
			continue;
		}
		char why[256];
		if (net_resolve(s->host, s->election_port, &p->addr, &p->addr_len, why, sizeof why) < 0) {
			LOG_WARN("election: server.%" PRId64 ": %s; it can still dial us", s->sid, why);
			p->addr_len = 0;
		}
	}
	if (e->me < 0 || fle_init(&e->fle, e->my_sid, members, cfg->nservers) < 0) {
		snprintf(err, errlen, "my id %" PRId64 " is not a server.N line (or no participant)",
			 e->my_sid);
		return -EINVAL;
	}
	return 0;
}

int election_init(struct election *e, struct net_loop *loop, const struct zk_config *cfg,
		  election_decided_fn fn, void *ctx, char *err, size_t errlen)
{
	ZK_ASSERT(fn != NULL && cfg->nservers <= ZK_SERVERS_MAX);
	memset(e, 0, sizeof *e);
	e->loop = loop;
	e->my_sid = cfg->myid;
	e->decided_fn = fn;
	e->ctx = ctx;
	e->cnx_timeout_ms = cfg->cnx_timeout_ms > 0 ? cfg->cnx_timeout_ms : 5000;
	e->listener.fd = -1;
	e->log_window_ms = INT64_MIN / 2;
	net_timer_init(&e->fle_timer, on_fle_timer);
	net_timer_init(&e->house, on_house);
	int rc = init_peers(e, cfg, err, errlen);
	if (rc < 0)
		return rc;
	const struct zk_server *me = &cfg->servers[e->me];
	char h[260];
	snprintf(e->my_addr, sizeof e->my_addr, "%s:%d", delim(me->host, h, sizeof h), me->election_port);
	if (election_config_text(cfg, e->config_text, sizeof e->config_text, &e->config_len) < 0) {
		snprintf(err, errlen, "the server list is too long to send");
		return -ENOBUFS;
	}
	char why[256];
	int fd = net_listen(cfg->quorum_listen_all ? "" : me->host, me->election_port, 64, why, sizeof why);
	if (fd < 0) {
		snprintf(err, errlen, "%s", why);
		return fd;
	}
	e->listener.fd = fd;
	e->listener.on_event = on_accept;
	if ((rc = net_loop_add(loop, &e->listener)) < 0) {
		close(fd);
		e->listener.fd = -1;
		snprintf(err, errlen, "epoll: %s", strerror(-rc));
		return rc;
	}
	LOG_INFO("election: sid %" PRId64 " listening on %s (%d servers)", e->my_sid, e->my_addr,
		 e->npeers);
	return 0;
}

void election_start(struct election *e, int64_t last_zxid, int64_t current_epoch)
{
	e->started = true;
	step(e, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = last_zxid,
				     .current_epoch = current_epoch });
}

int32_t election_state(const struct election *e)
{
	return e->fle.state;
}

const struct fle_vote *election_vote(const struct election *e)
{
	return e->fle.state == PEER_LOOKING ? &e->fle.proposal : &e->fle.current;
}

void election_free(struct election *e)
{
	if (!e->loop)
		return;
	for (int i = 0; i < ELECTION_CONNS_MAX; i++) {
		struct election_conn *ec = &e->conns[i];
		if (ec->state != EC_FREE && ec->state != EC_DEAD)
			net_loop_del(e->loop, &ec->c.h);
		if (ec->state != EC_FREE)
			conn_free_buffers(&ec->c);
		ec->state = EC_FREE;
	}
	if (e->listener.fd >= 0)
		net_loop_del(e->loop, &e->listener);
	net_timer_cancel(e->loop, &e->fle_timer);
	net_timer_cancel(e->loop, &e->house);
	e->loop = NULL;
}
