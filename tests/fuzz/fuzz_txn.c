/* fuzz_txn: txn_decode on hostile bytes (what a corrupt log or, later, a peer hands us).
 * Proves: no out-of-bounds access; decoding is deterministic and every pointer it returns
 * lies inside the input; the header re-encodes to the input's first 32 bytes; an accepted
 * txn applied to a small tree returns 0 or -EINVAL, and applying it a second time changes
 * nothing (tree/tree.h: replay over a fuzzy snapshot relies on it) — checked by node
 * count, data bytes, last zxid, the stats of the txn's path and its parent, and a digest
 * of the whole tree. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/jute.h"
#include "net/proto.h"
#include "net/zbuf.h"
#include "tree/tree.h"
#include "tree/txn.h"

static uint64_t fired;

static void on_fire(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	(void)ctx;
	(void)watcher;
	(void)event;
	fired = fuzz_mix(fired, path, len);
}

static int load(struct tree *t, const char *path, int64_t zxid, int64_t owner, const char *data)
{
	struct tree_stat st = { .czxid = zxid, .mzxid = zxid, .pzxid = zxid, .ctime = 1, .mtime = 1,
				.ephemeral_owner = owner };
	return tree_load_node(t, path, strlen(path), (const uint8_t *)data, (int32_t)strlen(data),
			      tree_acl_open, tree_acl_open_len, &st);
}

static bool in_input(const void *q, size_t n, const uint8_t *p, size_t size)
{
	const uint8_t *b = q;
	return b >= p && b <= p + size && n <= (size_t)(p + size - b);
}

struct snapshot {
	uint64_t node_count, data_bytes, digest;
	int64_t last_zxid;
	bool has_node, has_parent;
	struct zk_stat node, parent;
};

static bool stat_eq(const struct zk_stat *a, const struct zk_stat *b)
{
	return a->p.czxid == b->p.czxid && a->p.mzxid == b->p.mzxid && a->p.ctime == b->p.ctime &&
	       a->p.mtime == b->p.mtime && a->p.version == b->p.version &&
	       a->p.cversion == b->p.cversion && a->p.aversion == b->p.aversion &&
	       a->p.ephemeral_owner == b->p.ephemeral_owner && a->p.pzxid == b->p.pzxid &&
	       a->data_length == b->data_length && a->num_children == b->num_children;
}

/* The stat a client would see. tree_stat used to overflow for a cversion a hostile txn can
 * set (regressions/txn-cversion-overflow.bin); it wraps like Java's int now. */
static void node_stat(const struct tree_node *n, struct zk_stat *st)
{
	tree_stat(n, st);
}

static void take(const struct tree *t, const struct txn *x, struct snapshot *s)
{
	memset(s, 0, sizeof *s);
	s->node_count = t->node_count;
	s->data_bytes = t->data_bytes;
	s->last_zxid = t->last_zxid;
	s->digest = fuzz_tree_digest(t);
	if (!x->path || x->path_len <= 0)
		return;
	struct tree_node *n = tree_lookup(t, x->path, (size_t)x->path_len);
	if ((s->has_node = n != NULL))
		node_stat(n, &s->node);
	size_t plen = (size_t)x->path_len;
	while (plen > 0 && x->path[plen - 1] != '/')
		plen--;
	if (plen > 1)
		plen--; /* "/a/b" -> "/a"; "/a" -> "/" */
	n = plen ? tree_lookup(t, x->path, plen) : NULL;
	if ((s->has_parent = n != NULL))
		node_stat(n, &s->parent);
}

/* A create with parentCVersion -1 (the pre-3.x layout: "the parent's + 1") is the one
 * relative change a txn can make. Alone it is idempotent (a replayed create finds its node);
 * in a multi that also deletes the node it is not, in ZooKeeper either; ZooKeeper's prep
 * never logs it, so the replay check skips such a multi. */
static bool relative_create_in_multi(const struct txn *x)
{
	struct jute_in it;
	int32_t type, len;
	const uint8_t *b;
	struct txn sub;
	if (x->hdr.type != ZOP_MULTI)
		return false;
	jin_init(&it, x->subs, x->subs_len);
	while (txn_next_sub(&it, &type, &b, &len))
		if (txn_decode_sub(&x->hdr, type, b, (size_t)len, &sub) == 0 &&
		    (type == ZOP_CREATE || type == ZOP_CREATE2) && sub.parent_cversion == -1)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zk_log_level = ZK_LOG_ERROR;
	uint8_t *p = malloc(size ? size : 1);
	FUZZ_CHECK(p);
	memcpy(p, data, size);
	struct txn x, y;
	int rc = txn_decode(p, size, &x);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT); /* unknown type */
	FUZZ_CHECK(txn_decode(p, size, &y) == rc);
	if (rc != 0) {
		free(p);
		return 0;
	}
	FUZZ_CHECK(size >= 32);
	FUZZ_CHECK(!x.path || (x.path_len >= 0 && in_input(x.path, (size_t)x.path_len, p, size)));
	FUZZ_CHECK(!x.data || (x.data_len >= 0 && in_input(x.data, (size_t)x.data_len, p, size)));
	FUZZ_CHECK(!x.acl || in_input(x.acl, x.acl_len, p, size));
	FUZZ_CHECK(!x.paths || in_input(x.paths, x.paths_len, p, size));
	struct zbuf z;
	zbuf_init(&z, 64);
	struct jute_out o;
	jout_init(&o, &z);
	txn_hdr_encode(&o, &x.hdr);
	FUZZ_CHECK(o.err == 0 && zbuf_len(&z) == 32 && memcmp(zbuf_head(&z), p, 32) == 0);
	zbuf_free(&z);
	if (x.hdr.type == ZOP_MULTI) {
		FUZZ_CHECK(in_input(x.subs, x.subs_len, p, size));
		struct jute_in it;
		int32_t type, len, n = 0;
		const uint8_t *b;
		struct txn sub;
		jin_init(&it, x.subs, x.subs_len);
		while (txn_next_sub(&it, &type, &b, &len)) {
			FUZZ_CHECK(in_input(b, (size_t)len, p, size));
			FUZZ_CHECK(txn_decode_sub(&x.hdr, type, b, (size_t)len, &sub) == 0);
			FUZZ_CHECK(!sub.path || in_input(sub.path, (size_t)sub.path_len, p, size));
			FUZZ_CHECK(!sub.data || in_input(sub.data, (size_t)sub.data_len, p, size));
			n++;
		}
		FUZZ_CHECK(jin_ok(&it) && n == x.nsubs);
	}
	if (x.hdr.type == ZOP_CLOSESESSION) {
		struct jute_in it;
		const char *path;
		int32_t len;
		jin_init(&it, x.paths, x.paths_len);
		while (txn_next_path(&it, &path, &len))
			FUZZ_CHECK(in_input(path, (size_t)len, p, size));
	}

	struct tree t;
	FUZZ_CHECK(tree_init(&t, on_fire, NULL) == 0);
	FUZZ_CHECK(load(&t, "/a", 5, 0, "hello") == 0);
	FUZZ_CHECK(load(&t, "/a/b", 6, 0, "") == 0);
	FUZZ_CHECK(load(&t, "/e", 7, 1, "eph") == 0);
	FUZZ_CHECK(load(&t, "/e2", 8, 2, "") == 0);
	t.last_zxid = 8;
	FUZZ_CHECK(watches_add(&t.watches, WATCH_DATA, "/a", 2, 1) == 0);
	FUZZ_CHECK(watches_add(&t.watches, WATCH_CHILD, "/a", 2, 1) == 0);
	FUZZ_CHECK(watches_add(&t.watches, WATCH_DATA, "/e", 2, 2) == 0);

	struct tree_result r1, r2;
	rc = tree_apply(&t, &x, &r1);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0 && !relative_create_in_multi(&x)) {
		struct snapshot a, b;
		take(&t, &x, &a);
		FUZZ_CHECK(tree_apply(&t, &x, &r2) == 0);
		take(&t, &x, &b);
		FUZZ_CHECK(a.node_count == b.node_count);
		FUZZ_CHECK(a.data_bytes == b.data_bytes);
		FUZZ_CHECK(a.last_zxid == b.last_zxid);
		FUZZ_CHECK(a.has_node == b.has_node && a.has_parent == b.has_parent);
		FUZZ_CHECK(stat_eq(&a.node, &b.node));
		FUZZ_CHECK(stat_eq(&a.parent, &b.parent));
		FUZZ_CHECK(a.digest == b.digest);
	}
	tree_free(&t);
	free(p);
	return 0;
}
