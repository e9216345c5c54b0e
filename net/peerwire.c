/* Peer wire records; see peerwire.h for the layouts and the error rules. */
#include "net/peerwire.h"
#include "net/log.h"

#include <errno.h>
#include <string.h>

/* A stream cursor: running out of bytes is -EAGAIN (the record may still arrive), a value
 * that can never be valid is -EBADMSG. The first error sticks. */
struct cur {
	const uint8_t *p;
	size_t len, off;
	int err;
};

static const uint8_t *cur_take(struct cur *c, size_t n)
{
	if (c->err)
		return NULL;
	if (c->len - c->off < n) {
		c->err = -EAGAIN;
		return NULL;
	}
	const uint8_t *q = c->p + c->off;
	c->off += n;
	return q;
}

static int32_t cur_i32(struct cur *c)
{
	const uint8_t *q = cur_take(c, 4);
	return q ? (int32_t)be32_get(q) : 0;
}

static int64_t cur_i64(struct cur *c)
{
	const uint8_t *q = cur_take(c, 8);
	return q ? (int64_t)be64_get(q) : 0;
}

static void cur_bad(struct cur *c)
{
	if (!c->err)
		c->err = -EBADMSG;
}

/* A jute buffer/ustring of at most max bytes; -1 is null. */
static const uint8_t *cur_buf(struct cur *c, int32_t max, int32_t *len)
{
	int32_t n = cur_i32(c);
	*len = -1;
	if (c->err || n == -1)
		return NULL;
	if (n < -1 || n > max) {
		cur_bad(c);
		return NULL;
	}
	const uint8_t *q = cur_take(c, (size_t)n);
	if (q)
		*len = n;
	return q;
}

/* ---- election connection: the initial message ---- */

/* "host:port" as ConfigUtils.getHostAndPort splits it: an IPv6 host is bracketed; the port
 * is 1-5 decimal digits up to 65535 (Integer.parseInt, then InetSocketAddress's range). */
static bool addr_valid(const uint8_t *a, size_t n)
{
	size_t colon;
	if (n > 0 && a[0] == '[') {
		const uint8_t *close = memchr(a, ']', n);
		if (!close || close == a + 1)
			return false;
		colon = (size_t)(close - a) + 1;
		if (colon >= n || a[colon] != ':')
			return false;
	} else {
		const uint8_t *c = memchr(a, ':', n);
		if (!c || c == a || memchr(c + 1, ':', n - (size_t)(c - a) - 1))
			return false;
		colon = (size_t)(c - a);
	}
	size_t digits = n - colon - 1;
	if (digits == 0 || digits > 5)
		return false;
	uint32_t port = 0;
	for (size_t i = colon + 1; i < n; i++) {
		if (a[i] < '0' || a[i] > '9')
			return false;
		port = port * 10 + (uint32_t)(a[i] - '0');
	}
	return port <= 65535;
}

static int addr_list_count(const uint8_t *a, size_t n)
{
	int count = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && a[i] != '|')
			continue;
		if (!addr_valid(a + start, i - start))
			return -EBADMSG;
		count++;
		start = i + 1;
	}
	return count;
}

int peer_initial_decode(const uint8_t *p, size_t len, struct peer_initial *m, size_t *used)
{
	struct cur c = { .p = p, .len = len };
	memset(m, 0, sizeof *m);
	m->protocol_version = cur_i64(&c);
	if (c.err)
		return c.err;
	if (m->protocol_version >= 0) { /* pre-3.5: the first long is the sid */
		m->sid = m->protocol_version;
		*used = c.off;
		return 0;
	}
	if (m->protocol_version != PEER_PROTOCOL_V1 && m->protocol_version != PEER_PROTOCOL_V2)
		return -EBADMSG;
	m->sid = cur_i64(&c);
	int32_t n = cur_i32(&c);
	if (!c.err && (n <= 0 || n > PEER_INITIAL_ADDR_MAX))
		return -EBADMSG;
	m->addr = cur_take(&c, (size_t)n);
	if (c.err)
		return c.err;
	m->addr_len = n;
	m->naddr = addr_list_count(m->addr, (size_t)n);
	if (m->naddr < 0)
		return -EBADMSG;
	ZK_ASSERT(c.off == 20 + (size_t)n);
	*used = c.off;
	return 0;
}

int peer_initial_encode(struct jute_out *o, int64_t version, int64_t sid, const char *addr)
{
	size_t n = strlen(addr);
	if ((version != PEER_PROTOCOL_V1 && version != PEER_PROTOCOL_V2) || n == 0 ||
	    n > PEER_INITIAL_ADDR_MAX)
		return -EINVAL;
	jout_i64(o, version);
	jout_i64(o, sid);
	jout_i32(o, (int32_t)n);
	jout_raw(o, addr, n);
	return o->err;
}

enum peer_conn_verdict peer_conn_rule(int64_t my_sid, int64_t peer_sid, bool i_dialled)
{
	if (i_dialled) /* Apache keeps its own dial to an equal sid; that is a config error */
		return peer_sid > my_sid ? PEER_CONN_CLOSE : PEER_CONN_KEEP;
	if (peer_sid == my_sid)
		return PEER_CONN_CLOSE;
	return peer_sid < my_sid ? PEER_CONN_CLOSE_AND_DIAL : PEER_CONN_KEEP;
}

int peer_frame_decode(const uint8_t *p, size_t len, const uint8_t **payload, int32_t *plen,
		      size_t *used)
{
	struct cur c = { .p = p, .len = len };
	int32_t n = cur_i32(&c);
	if (!c.err && (n <= 0 || n > PEER_FRAME_MAX))
		return -EBADMSG; /* RecvWorker: "invalid packet", the connection closes */
	*payload = cur_take(&c, (size_t)n);
	if (c.err)
		return c.err;
	*plen = n;
	*used = c.off;
	return 0;
}

/* ---- notifications ---- */

int peer_note_decode(const uint8_t *p, size_t len, struct peer_note *n)
{
	struct cur c = { .p = p, .len = len };
	memset(n, 0, sizeof *n);
	if (len < 28)
		return -EBADMSG;
	n->state = cur_i32(&c);
	n->leader = cur_i64(&c);
	n->zxid = cur_i64(&c);
	n->election_epoch = cur_i64(&c);
	if (len == 28) { /* before ZOOKEEPER-107: the peer epoch is the zxid's */
		n->peer_epoch = (int64_t)((uint64_t)n->zxid >> 32);
		n->form = 28;
	} else {
		n->peer_epoch = cur_i64(&c);
		n->form = 40;
		if (len != 40) {
			n->version = cur_i32(&c);
			n->form = 44;
		}
	}
	if (n->version > 1) {
		n->config = cur_buf(&c, PEER_FRAME_MAX, &n->config_len);
		if (!c.err && !n->config)
			c.err = -EBADMSG; /* a null config (-1) is no config Apache could read */
	}
	if (c.err)
		return -EBADMSG; /* a frame is whole: running short is never "read more" */
	if (n->state < PEER_LOOKING || n->state > PEER_OBSERVING)
		return -EBADMSG;
	ZK_ASSERT(c.off <= len);
	return 0;
}

int peer_note_encode(struct jute_out *o, const struct peer_note *n)
{
	ZK_ASSERT(n->state >= PEER_LOOKING && n->state <= PEER_OBSERVING);
	ZK_ASSERT(n->config_len >= 0 && (n->config || n->config_len == 0));
	if (n->config_len > PEER_FRAME_MAX - PEER_NOTE_LEN)
		return -EINVAL;
	size_t mark = jout_frame_begin(o);
	jout_i32(o, n->state);
	jout_i64(o, n->leader);
	jout_i64(o, n->zxid);
	jout_i64(o, n->election_epoch);
	jout_i64(o, n->peer_epoch);
	jout_i32(o, PEER_NOTE_VERSION);
	jout_i32(o, n->config_len);
	if (n->config_len > 0)
		jout_raw(o, n->config, (size_t)n->config_len);
	return jout_frame_end(o, mark);
}

/* ---- learner stream ---- */

int quorum_packet_decode(const uint8_t *p, size_t len, int32_t data_max, struct quorum_packet *q,
			 size_t *used)
{
	struct cur c = { .p = p, .len = len };
	ZK_ASSERT(data_max >= 0);
	memset(q, 0, sizeof *q);
	q->type = cur_i32(&c);
	q->zxid = cur_i64(&c);
	q->data = cur_buf(&c, data_max, &q->data_len);
	q->nauth = cur_i32(&c);
	if (!c.err && (q->nauth < -1 || q->nauth > QP_AUTH_MAX))
		return -EBADMSG;
	size_t auth_start = c.off;
	for (int32_t i = 0; i < q->nauth && !c.err; i++) {
		int32_t sl, il;
		/* An Id's strings are bounded by the frame limit, not by maxbuffer: both are
		 * client-supplied auth strings that the leader already accepted. */
		cur_buf(&c, PEER_FRAME_MAX, &sl);
		cur_buf(&c, PEER_FRAME_MAX, &il);
	}
	if (c.err)
		return c.err;
	q->auth = q->nauth > 0 ? p + auth_start : NULL;
	q->auth_len = c.off - auth_start;
	*used = c.off;
	return 0;
}

bool quorum_packet_id(const struct quorum_packet *q, size_t *off, struct zk_id *id)
{
	if (q->nauth <= 0 || *off >= q->auth_len)
		return false;
	/* The decoder validated the vector, so a failure here is a bug (or a stale packet). */
	struct cur c = { .p = q->auth, .len = q->auth_len, .off = *off };
	id->scheme = cur_buf(&c, PEER_FRAME_MAX, &id->scheme_len);
	id->id = cur_buf(&c, PEER_FRAME_MAX, &id->id_len);
	ZK_ASSERT(c.err == 0);
	*off = c.off;
	return true;
}

int quorum_packet_encode(struct jute_out *o, int32_t type, int64_t zxid, const void *data,
			 int32_t data_len, const struct zk_id *auth, int32_t nauth)
{
	ZK_ASSERT(data_len >= -1 && (data || data_len <= 0));
	ZK_ASSERT(nauth >= -1 && nauth <= QP_AUTH_MAX && (auth || nauth <= 0));
	jout_i32(o, type);
	jout_i64(o, zxid);
	jout_buf(o, data, data_len);
	jout_i32(o, nauth);
	for (int32_t i = 0; i < nauth; i++) {
		jout_buf(o, auth[i].scheme, auth[i].scheme ? auth[i].scheme_len : -1);
		jout_buf(o, auth[i].id, auth[i].id ? auth[i].id_len : -1);
	}
	return o->err;
}

int learner_info_decode(const uint8_t *data, int32_t len, struct learner_info *li)
{
	memset(li, 0, sizeof *li);
	li->protocol_version = 0x1;
	li->config_version = -1;
	/* Apache gives a learner without LearnerInfo a made-up negative sid; we refuse it,
	 * as every 3.x learner sends at least its sid. */
	if (!data || len < 8)
		return -EBADMSG;
	li->sid = (int64_t)be64_get(data);
	li->fields = 1;
	if (len >= 12) {
		li->protocol_version = (int32_t)be32_get(data + 8);
		li->fields = 2;
	}
	if (len >= 20) {
		li->config_version = (int64_t)be64_get(data + 12);
		li->fields = 3;
	}
	return 0;
}

int learner_info_encode(struct jute_out *o, const struct learner_info *li)
{
	jout_i64(o, li->sid);
	jout_i32(o, li->protocol_version);
	jout_i64(o, li->config_version);
	return o->err;
}

int quorum_int_payload_decode(const uint8_t *data, int32_t len, int32_t *v)
{
	if (!data || len < 4)
		return -EBADMSG;
	*v = (int32_t)be32_get(data);
	return 0;
}

int quorum_int_payload_encode(struct jute_out *o, int32_t v)
{
	jout_i32(o, v);
	return o->err;
}
