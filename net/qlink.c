/* Quorum-port links; see qlink.h. */
#include "net/qlink.h"
#include "net/jute.h"
#include "net/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void qlinks_init(struct qlinks *s, struct net_loop *loop, qlink_close_fn on_close, void *ctx)
{
	ZK_ASSERT(loop != NULL && on_close != NULL);
	*s = (struct qlinks){ .loop = loop, .on_close = on_close, .ctx = ctx };
}

static void on_link_event(struct net_loop *l, struct net_handle *h, uint32_t ev)
{
	(void)l;
	struct qlink *k = (struct qlink *)h;
	if (ev & NET_READABLE)
		k->c.readable = true;
	if (ev & NET_WRITABLE)
		k->c.writable = true;
	k->set->work = true;
}

static struct qlink *qlink_new(struct qlinks *s, int fd, const struct sockaddr_storage *ss, uint64_t id)
{
	struct qlink *k = calloc(1, sizeof *k);
	if (!k) {
		close(fd);
		return NULL;
	}
	conn_init(&k->c, fd, id, QLINK_IN_MAX, QLINK_OUT_MAX, QLINK_OUT_MAX);
	k->c.h.on_event = on_link_event;
	k->set = s;
	if (ss) {
		k->c.peer = *ss;
		net_addr_str(ss, k->c.peer_str, sizeof k->c.peer_str);
	}
	k->sid = -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (net_loop_add(s->loop, &k->c.h) < 0) {
		conn_free_buffers(&k->c);
		close(fd);
		free(k);
		return NULL;
	}
	k->next = s->head;
	s->head = k;
	return k;
}

struct qlink *qlink_accepted(struct qlinks *s, int fd, const struct sockaddr_storage *ss, uint64_t id)
{
	struct qlink *k = qlink_new(s, fd, ss, id);
	if (k) {
		k->c.readable = true;
		s->work = true;
	}
	return k;
}

struct qlink *qlink_dial(struct qlinks *s, const char *host, int port, int64_t sid, uint64_t id)
{
	/* net_resolve, as the election driver: numeric addresses without the resolver, which a
	 * static build leaves out. */
	struct sockaddr_storage ss;
	socklen_t len;
	char why[300];
	if (net_resolve(host, port, &ss, &len, why, sizeof why) < 0) {
		LOG_WARN("cannot resolve leader %lld's address: %s", (long long)sid, why);
		return NULL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	struct qlink *k = qlink_new(s, fd, &ss, id);
	if (!k)
		return NULL;
	k->sid = sid;
	k->connecting = true;
	return k;
}

int qlink_connect_done(struct qlink *k)
{
	ZK_ASSERT(k->connecting && !k->dead);
	int err = 0;
	socklen_t el = sizeof err;
	if (getsockopt(k->c.h.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return errno ? -errno : -EIO;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err)
		return -err;
	k->connecting = false;
	k->c.readable = true;
	return 1;
}

struct qlink *qlink_of(const struct qlinks *s, int64_t sid)
{
	for (struct qlink *k = s->head; k; k = k->next)
		if (!k->dead && k->sid == sid)
			return k;
	return NULL;
}

void qlink_send(struct qlink *k, int32_t type, int64_t zxid, const void *data, int32_t dlen,
		const uint8_t *ids, size_t ids_len)
{
	if (!k || k->dead)
		return;
	struct jute_out o;
	jout_init(&o, &k->c.out);
	jout_i32(&o, type);
	jout_i64(&o, zxid);
	jout_buf(&o, data, dlen);
	if (ids)
		jout_raw(&o, ids, ids_len);
	else
		jout_i32(&o, -1);
	if (o.err) {
		qlink_close(k, "output limit reached");
		return;
	}
	k->set->work = true;
}

void qlink_send_int(struct qlink *k, int32_t type, int64_t zxid, int32_t v)
{
	uint8_t b[4];
	be32_put(b, (uint32_t)v);
	qlink_send(k, type, zxid, b, 4, NULL, 0);
}

void qlink_close(struct qlink *k, const char *why)
{
	if (k->dead)
		return;
	LOG_INFO("closing quorum link %s (sid %lld): %s", k->c.peer_str, (long long)k->sid, why);
	k->dead = true;
	net_loop_del(k->set->loop, &k->c.h);
	k->set->on_close(k->set->ctx, k);
}

void qlink_close_all(struct qlinks *s, const char *why)
{
	for (struct qlink *k = s->head; k; k = k->next)
		qlink_close(k, why);
}

void qlink_flush_all(struct qlinks *s)
{
	for (struct qlink *k = s->head; k; k = k->next) {
		if (k->dead || k->connecting || zbuf_len(&k->c.out) == 0)
			continue;
		int rc = conn_flush(&k->c);
		if (rc < 0)
			qlink_close(k, strerror(-rc));
	}
}

void qlink_reap(struct qlinks *s)
{
	for (struct qlink **pp = &s->head; *pp;) {
		struct qlink *k = *pp;
		if (!k->dead) {
			pp = &k->next;
			continue;
		}
		*pp = k->next;
		conn_free_buffers(&k->c);
		free(k);
	}
}
