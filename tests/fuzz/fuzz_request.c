/* fuzz_request: hostile client requests through prep (writes), ops_read (reads),
 * ops_multi_read, ops_set_watches, and ops_ext (addWatch, check/removeWatches, setWatches2,
 * getEphemerals, getAllChildrenNumber: sel & 15 of 12..15 with their opcode), against a
 * small tree. Proves: no out-of-bounds access; every write prep accepts becomes a txn that
 * txn_decode accepts and tree_apply applies (0), and a txn prep did not turn into an
 * ErrorTxn applies with result ZOK — prep's checks and apply agree, for a multi too (all its
 * ops succeed unless one is an ErrorTxn).
 *
 * Input: records, each  [sel u8][body_len u16 BE][xid i32][type i32][body]
 *   sel & 15: opcode from `ops` below (12..15: the type field as sent, so unknown ones too,
 *             and multi (14) / multiRead (22))
 *   sel & 16: session 2 instead of 1 (session 1 is ip:127.0.0.1 only; session 2 has
 *   also done addauth digest, so ACL checks and the "auth" scheme have both outcomes);
 *   sel & 32: leave the txn outstanding (applied later,
 *   so prep must see it as an outstanding change);  sel & 64: watcher 2 instead of 1. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/jute.h"
#include "net/proto.h"
#include "net/zbuf.h"
#include "tree/multi.h"
#include "tree/ops.h"
#include "tree/ops_ext.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "zab/prep.h"

static const int32_t ops[12] = {
	ZOP_CREATE, ZOP_DELETE, ZOP_EXISTS, ZOP_GETDATA, ZOP_SETDATA, ZOP_GETCHILDREN,
	ZOP_SYNC, ZOP_GETCHILDREN2, ZOP_CREATE2, ZOP_SETWATCHES, ZOP_CLOSESESSION,
	ZOP_CREATESESSION,
};

#define MAX_PENDING 8

struct pending {
	uint8_t *bytes;
	size_t len;
	int64_t zxid;
};

struct state {
	struct tree tree;
	struct prep prep;
	struct zbuf buf;
	struct pending q[MAX_PENDING];
	size_t nq;
	int64_t zxid;
	uint64_t fired, path_sum;
};

static void on_fire(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	struct state *s = ctx;
	s->fired++;
	s->path_sum = fuzz_mix(s->path_sum, path, len); /* touch every byte: ASan checks it */
	(void)watcher;
	(void)event;
}

/* Did prep fail this multi (an ErrorTxn among its ops)? */
static bool multi_failed(const struct txn *x)
{
	struct jute_in it;
	int32_t type, len;
	const uint8_t *b;
	if (x->hdr.type != ZOP_MULTI)
		return false;
	jin_init(&it, x->subs, x->subs_len);
	while (txn_next_sub(&it, &type, &b, &len))
		if (type == ZOP_ERROR)
			return true;
	return false;
}

static void apply_oldest(struct state *s)
{
	FUZZ_CHECK(s->nq > 0);
	struct pending p = s->q[0];
	memmove(s->q, s->q + 1, (s->nq - 1) * sizeof *s->q);
	s->nq--;
	struct txn x;
	FUZZ_CHECK(txn_decode(p.bytes, p.len, &x) == 0);
	FUZZ_CHECK(x.hdr.zxid == p.zxid);
	struct tree_result res;
	int rc = tree_apply(&s->tree, &x, &res);
	FUZZ_CHECK(rc == 0);
	if (x.hdr.type != ZOP_ERROR)
		FUZZ_CHECK((res.err == ZOK) == !multi_failed(&x));
	FUZZ_CHECK(s->tree.last_zxid >= p.zxid);
	prep_applied(&s->prep, p.zxid);
	free(p.bytes);
}

/* The two sessions' ids (vector<Id>): ip only, and ip plus a digest id. */
static const uint8_t ids_ip[] = { 0, 0, 0, 1, 0, 0, 0, 2, 'i', 'p', 0, 0, 0, 9,
				  '1', '2', '7', '.', '0', '.', '0', '.', '1' };
static const uint8_t ids_digest[] = { 0, 0, 0, 2, 0, 0, 0, 2, 'i', 'p', 0, 0, 0, 9,
				      '1', '2', '7', '.', '0', '.', '0', '.', '1',
				      0, 0, 0, 6, 'd', 'i', 'g', 'e', 's', 't', 0, 0, 0, 3, 'u', ':', 'h' };

static struct acl_who who_of(int64_t session)
{
	if (session == 2)
		return (struct acl_who){ ids_digest, sizeof ids_digest, false };
	return (struct acl_who){ ids_ip, sizeof ids_ip, false };
}

static void write_req(struct state *s, int64_t session, int32_t xid, int32_t type,
		      const uint8_t *body, size_t len, int defer)
{
	struct acl_who who = who_of(session);
	struct prep_req r = { .session = session, .cxid = xid, .type = type, .body = body,
			      .body_len = len, .zxid = ++s->zxid, .time_ms = 1700000000000 + s->zxid,
			      .session_timeout_ms = 30000, .auth = who.ids, .auth_len = who.len };
	struct jute_out out;
	zbuf_reset(&s->buf);
	jout_init(&out, &s->buf);
	int rc = prep_write(&s->prep, &r, &out);
	FUZZ_CHECK(rc == 0); /* no allocation fails here and the buffer is far larger */
	FUZZ_CHECK(zbuf_len(&s->buf) >= 32);
	struct txn x;
	FUZZ_CHECK(txn_decode(zbuf_head(&s->buf), zbuf_len(&s->buf), &x) == 0);
	FUZZ_CHECK(x.hdr.zxid == r.zxid && x.hdr.client_id == session && x.hdr.cxid == xid);
	FUZZ_CHECK(x.hdr.type == ZOP_ERROR || x.hdr.type == type);
	if (s->nq == MAX_PENDING)
		apply_oldest(s);
	struct pending *p = &s->q[s->nq++];
	p->len = zbuf_len(&s->buf);
	p->bytes = malloc(p->len);
	FUZZ_CHECK(p->bytes);
	memcpy(p->bytes, zbuf_head(&s->buf), p->len);
	p->zxid = r.zxid;
	if (!defer)
		while (s->nq)
			apply_oldest(s);
}

static void read_req(struct state *s, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
		     int64_t session)
{
	struct acl_who who = who_of(session);
	struct jute_out out;
	zbuf_reset(&s->buf);
	jout_init(&out, &s->buf);
	int err;
	if (type == ZOP_SETWATCHES) {
		err = ops_set_watches(&s->tree, body, len, watcher);
	} else if (ops_ext_is(type)) {
		err = ops_ext(&s->tree, type, body, len, watcher, session, &who, &out);
		FUZZ_CHECK(err == ZOK || zbuf_len(&s->buf) == 0);
	} else if (type == ZOP_MULTIREAD || type == ZOP_MULTI) {
		/* multi here: one that gets no txn (a null path); prep_write is not asked. */
		err = type == ZOP_MULTI ? ZMARSHALLINGERROR
					: ops_multi_read(&s->tree, body, len, watcher, &who, &out);
		FUZZ_CHECK(err == ZOK || err == ZMARSHALLINGERROR);
		if (err == ZOK)
			FUZZ_CHECK(zbuf_len(&s->buf) >= 9);
	} else {
		err = ops_read(&s->tree, type, body, len, watcher, &who, &out);
		FUZZ_CHECK(err == ZOK || zbuf_len(&s->buf) == 0); /* nothing written on error */
	}
	FUZZ_CHECK(err <= 0);
	FUZZ_CHECK(out.err == 0);
}

/* A create request body, as a client sends it. */
static size_t create_body(uint8_t *b, size_t cap, const char *path, const char *data, int32_t flags)
{
	struct zbuf z;
	zbuf_init(&z, cap);
	struct jute_out o;
	jout_init(&o, &z);
	jout_str(&o, path);
	jout_buf(&o, data, (int32_t)strlen(data));
	jout_i32(&o, 1);
	jout_i32(&o, ZPERM_ALL);
	jout_str(&o, "world");
	jout_str(&o, "anyone");
	jout_i32(&o, flags);
	FUZZ_CHECK(o.err == 0);
	size_t n = zbuf_len(&z);
	memcpy(b, zbuf_head(&z), n);
	zbuf_free(&z);
	return n;
}

static void setup(struct state *s)
{
	memset(s, 0, sizeof *s);
	FUZZ_CHECK(tree_init(&s->tree, on_fire, s) == 0);
	prep_init(&s->prep, &s->tree);
	s->prep.extended_types = true; /* so createTTL gets past its first check */
	s->prep.enforce_quota = true;   /* and writes under a quota meet its check */
	zbuf_init(&s->buf, 4u << 20);
	s->zxid = 0x100000000ll;
	static const struct { const char *path, *data; int32_t flags; int64_t session; } nodes[] = {
		{ "/a", "hello", 0, 1 }, { "/a/b", "", 0, 1 }, { "/a/c", "x", ZCF_SEQUENTIAL, 2 },
		{ "/e", "eph", ZCF_EPHEMERAL, 1 }, { "/f", "eph2", ZCF_EPHEMERAL, 2 },
	};
	uint8_t body[256];
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		size_t n = create_body(body, sizeof body, nodes[i].path, nodes[i].data, nodes[i].flags);
		write_req(s, nodes[i].session, (int32_t)i, ZOP_CREATE, body, n, 0);
	}
	FUZZ_CHECK(tree_lookup(&s->tree, "/a/b", 4) != NULL);
	FUZZ_CHECK(watches_add(&s->tree.watches, WATCH_DATA, "/a", 2, 1) == 0);
	FUZZ_CHECK(watches_add(&s->tree.watches, WATCH_CHILD, "/a", 2, 2) == 0);
}

static void teardown(struct state *s)
{
	while (s->nq)
		apply_oldest(s);
	FUZZ_CHECK(s->prep.count == 0);
	prep_free(&s->prep);
	tree_free(&s->tree);
	zbuf_free(&s->buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state s;
	zk_log_level = ZK_LOG_ERROR;
	setup(&s);
	size_t off = 0;
	for (int nreq = 0; off + 11 <= size && nreq < 64; nreq++) {
		uint8_t sel = data[off];
		size_t blen = (size_t)data[off + 1] << 8 | data[off + 2];
		int32_t xid = (int32_t)be32_get(data + off + 3);
		int32_t type = (int32_t)be32_get(data + off + 7);
		off += 11;
		if (blen > size - off)
			blen = size - off;
		/* The body is copied to its own allocation so ASan sees its exact end. */
		uint8_t *body = malloc(blen ? blen : 1);
		FUZZ_CHECK(body);
		memcpy(body, data + off, blen);
		off += blen;
		if ((sel & 15) < 12)
			type = ops[sel & 15];
		int64_t session = sel & 16 ? 2 : 1;
		uint64_t watcher = sel & 64 ? 2 : 1;
		bool unlogged = type == ZOP_MULTI && !prep_multi_logged(body, blen);
		if (ops_is_read(type) || type == ZOP_SETWATCHES || ops_ext_is(type) ||
		    type == ZOP_MULTIREAD || unlogged)
			read_req(&s, type, body, blen, watcher, session);
		else
			write_req(&s, session, xid, type, body, blen, sel & 32);
		free(body);
	}
	teardown(&s);
	return 0;
}
