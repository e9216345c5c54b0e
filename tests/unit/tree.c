/* Proves the znode tree applies hand-built ZooKeeper txns with ZooKeeper 3.8's Stat
 * semantics, idempotently under replay of any suffix, with exact bookkeeping, and fires
 * each watch once with ZooKeeper's events. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "tree/ops.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "tests/unit/support/support.h"

/* ---- txn builders ---- */

static int64_t time_of(int64_t zxid) { return 1600000000000LL + (zxid & 0xffffff) * 10; }

static void begin(struct jute_out *o, struct zbuf *b, int64_t client, int64_t zxid, int32_t type)
{
	struct txn_hdr h = { client, (int32_t)(zxid & 0xffff), zxid, time_of(zxid), type };
	t_txn_begin(o, b, &h);
}

static void tx_create(struct zbuf *b, int64_t client, int64_t zxid, const char *path,
		      const char *data, bool eph, int32_t pcv)
{
	struct jute_out o;
	begin(&o, b, client, zxid, ZOP_CREATE);
	t_txn_create(&o, path, data, t_len(data), tree_acl_open, tree_acl_open_len, eph, pcv);
	t_jout_done(&o);
}

static void tx_delete(struct zbuf *b, int64_t zxid, const char *path)
{
	struct jute_out o;
	begin(&o, b, 0x77, zxid, ZOP_DELETE);
	jout_str(&o, path);
	t_jout_done(&o);
}

static void tx_setdata(struct zbuf *b, int64_t zxid, const char *path, const char *data, int32_t version)
{
	struct jute_out o;
	begin(&o, b, 0x77, zxid, ZOP_SETDATA);
	t_txn_setdata(&o, path, data, t_len(data), version);
	t_jout_done(&o);
}

/* npaths < 0: the empty body of old logs. */
static void tx_close(struct zbuf *b, int64_t client, int64_t zxid, const char *const *paths, int npaths)
{
	struct jute_out o;
	begin(&o, b, client, zxid, ZOP_CLOSESESSION);
	t_txn_close(&o, paths, npaths);
	t_jout_done(&o);
}

/* An error txn (err) or a createSession (timeout): a header and one int. */
static void tx_int(struct zbuf *b, int64_t client, int64_t zxid, int32_t type, int32_t v)
{
	struct jute_out o;
	begin(&o, b, client, zxid, type);
	jout_i32(&o, v);
	t_jout_done(&o);
}

/* A MultiTxn: multi_begin, then per op sub_begin, its body written to &mo, sub_end. */
static struct jute_out mo;
static size_t mcount_at;
static int32_t mcount;

static void multi_begin(struct zbuf *b, int64_t client, int64_t zxid)
{
	begin(&mo, b, client, zxid, ZOP_MULTI);
	mcount_at = zbuf_len(b);
	jout_i32(&mo, 0);
	mcount = 0;
}

static size_t sub_begin(int32_t type)
{
	jout_i32(&mo, type);
	size_t at = zbuf_len(mo.b);
	jout_i32(&mo, 0);
	return at;
}

static void sub_end(size_t at)
{
	be32_put(zbuf_head(mo.b) + at, (uint32_t)(zbuf_len(mo.b) - at - 4));
	mcount++;
}

static void multi_end(void)
{
	be32_put(zbuf_head(mo.b) + mcount_at, (uint32_t)mcount);
	t_jout_done(&mo);
}

static void sub_create(const char *path, const char *data, bool eph, int32_t pcv)
{
	size_t at = sub_begin(ZOP_CREATE);
	t_txn_create(&mo, path, data, t_len(data), tree_acl_open, tree_acl_open_len, eph, pcv);
	sub_end(at);
}

static void sub_path(int32_t type, const char *path) /* delete */
{
	size_t at = sub_begin(type);
	jout_str(&mo, path);
	sub_end(at);
}

static void sub_setdata(const char *path, const char *data, int32_t version)
{
	size_t at = sub_begin(ZOP_SETDATA);
	t_txn_setdata(&mo, path, data, t_len(data), version);
	sub_end(at);
}

static void sub_int(int32_t type, const char *path, int32_t v) /* check (path), error */
{
	size_t at = sub_begin(type);
	if (path)
		jout_str(&mo, path);
	jout_i32(&mo, v);
	sub_end(at);
}

/* Scratch buffer: build a txn in it and apply at once. */
static struct zbuf scratch;
static struct tree_result last_res;

static int do_create(struct tree *t, int64_t client, int64_t zxid, const char *path,
		     const char *data, bool eph, int32_t pcv)
{
	tx_create(&scratch, client, zxid, path, data, eph, pcv);
	return t_apply(t, &scratch, &last_res);
}

static int do_delete(struct tree *t, int64_t zxid, const char *path)
{
	tx_delete(&scratch, zxid, path);
	return t_apply(t, &scratch, &last_res);
}

static int do_setdata(struct tree *t, int64_t zxid, const char *path, const char *data, int32_t version)
{
	tx_setdata(&scratch, zxid, path, data, version);
	return t_apply(t, &scratch, &last_res);
}

static int do_close(struct tree *t, int64_t client, int64_t zxid, const char *const *paths, int npaths)
{
	tx_close(&scratch, client, zxid, paths, npaths);
	return t_apply(t, &scratch, &last_res);
}

/* ---- watch events ---- */

static struct t_events ev;

static int count_ev(uint64_t watcher, int type, const char *path)
{
	return t_events_count(&ev, watcher, type, path);
}

static struct tree T;

static void setup(void)
{
	ev.n = 0;
	zbuf_init(&scratch, 1 << 20);
	cr_assert_eq(tree_init(&T, t_on_fire, &ev), 0);
}

static void teardown(void)
{
	tree_free(&T);
	zbuf_free(&scratch);
}

static struct tree_node *look(const struct tree *t, const char *path)
{
	return tree_lookup(t, path, strlen(path));
}

static struct zk_stat stat_of(const struct tree *t, const char *path)
{
	struct tree_node *n = look(t, path);
	cr_assert_not_null(n, "%s missing", path);
	struct zk_stat st;
	tree_stat(n, &st);
	return st;
}

/* Every node's path, Stat, data and ACL, plus the counters and last zxid, sorted. */
static char *dump(const struct tree *t) { return t_tree_dump(t, T_DUMP_LAST_ZXID); }

/* ---- tree_init ---- */

Test(tree, init_system_nodes_as_zookeeper_reports, .init = setup, .fini = teardown, .timeout = 10)
{
	static const struct { const char *path; int cversion, nchildren; } want[] = {
		{ "/", -1, 1 }, { "/zookeeper", -2, 2 }, { "/zookeeper/quota", 0, 0 },
		{ "/zookeeper/config", 0, 0 },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		struct zk_stat st = stat_of(&T, want[i].path);
		cr_assert_eq(st.p.czxid, 0, "%s", want[i].path);
		cr_assert_eq(st.p.mzxid, 0, "%s", want[i].path);
		cr_assert_eq(st.p.ctime, 0, "%s", want[i].path);
		cr_assert_eq(st.p.mtime, 0, "%s", want[i].path);
		cr_assert_eq(st.p.version, 0, "%s", want[i].path);
		cr_assert_eq(st.p.cversion, want[i].cversion, "%s cversion", want[i].path);
		/* Apache sets the config node's ACL with setACL(version -1): aversion -1. */
		cr_assert_eq(st.p.aversion, strcmp(want[i].path, "/zookeeper/config") ? 0 : -1, "%s", want[i].path);
		cr_assert_eq(st.p.ephemeral_owner, 0, "%s", want[i].path);
		cr_assert_eq(st.p.pzxid, 0, "%s", want[i].path);
		cr_assert_eq(st.data_length, 0, "%s", want[i].path);
		cr_assert_eq(st.num_children, want[i].nchildren, "%s numChildren", want[i].path);
	}
	cr_assert_eq(T.node_count, 4);
	cr_assert_eq(T.data_bytes, strlen("/zookeeper") + strlen("/zookeeper/quota") + strlen("/zookeeper/config"));
	cr_assert_eq(T.last_zxid, 0);
	/* /zookeeper/config is read-only for the world; the rest is open. */
	cr_assert_arr_eq(look(&T, "/zookeeper")->acl->bytes, tree_acl_open, tree_acl_open_len);
	cr_assert_eq(look(&T, "/zookeeper/config")->acl->bytes[7], 1, "config perms must be READ");
}

/* ---- create ---- */

Test(tree, create_sets_stat_and_parent, .init = setup, .fini = teardown, .timeout = 10)
{
	int64_t z = 0x100000001LL;
	cr_assert_eq(do_create(&T, 0x55, z, "/a", "hello", false, 1), ZOK);
	struct zk_stat st = stat_of(&T, "/a");
	cr_assert_eq(st.p.czxid, z);
	cr_assert_eq(st.p.mzxid, z);
	cr_assert_eq(st.p.pzxid, z);
	cr_assert_eq(st.p.ctime, time_of(z));
	cr_assert_eq(st.p.mtime, time_of(z));
	cr_assert_eq(st.p.version, 0);
	cr_assert_eq(st.p.cversion, 0);
	cr_assert_eq(st.p.ephemeral_owner, 0);
	cr_assert_eq(st.data_length, 5);
	cr_assert_eq(st.num_children, 0);
	cr_assert_eq(memcmp(&last_res.stat, &st, sizeof st), 0, "the result carries the node's Stat");
	struct tree_node *n = look(&T, "/a");
	cr_assert_arr_eq(n->data, "hello", 5);

	struct zk_stat root = stat_of(&T, "/");
	cr_assert_eq(look(&T, "/")->stat.cversion, 1, "stored cversion = txn parentCVersion");
	cr_assert_eq(root.p.cversion, 2 * 1 - 2);
	cr_assert_eq(root.p.pzxid, z);
	cr_assert_eq(root.num_children, 2);
	cr_assert_eq(T.last_zxid, z);

	/* Ephemeral: the owner is the txn's session; parentCVersion is taken as given. */
	cr_assert_eq(do_create(&T, 0x55, z + 1, "/a/e", NULL, true, 7), ZOK);
	st = stat_of(&T, "/a/e");
	cr_assert_eq(st.p.ephemeral_owner, 0x55);
	cr_assert_eq(st.data_length, 0);
	cr_assert_eq(look(&T, "/a/e")->data_len, -1, "null data stays null");
	cr_assert_eq(look(&T, "/a")->stat.cversion, 7);
	cr_assert_eq(stat_of(&T, "/a").p.cversion, 2 * 7 - 1);
	cr_assert_eq(stat_of(&T, "/a").p.pzxid, z + 1);
	cr_assert_eq(stat_of(&T, "/a").p.mzxid, z, "a child does not change the parent's mzxid");
	const struct tree_eph_list *el = tree_ephemerals(&T, 0x55);
	cr_assert_not_null(el);
	cr_assert_eq(el->count, 1);
	cr_assert_eq(el->head, look(&T, "/a/e"));
	cr_assert_eq(T.eph_count, 1);
}

Test(tree, create_missing_parent_is_nonode, .init = setup, .fini = teardown, .timeout = 10)
{
	char *before = dump(&T);
	cr_assert_eq(do_create(&T, 1, 0x100000001LL, "/no/x", "d", false, 1), ZNONODE);
	T.last_zxid = 0; /* the error still counts as applied; compare the rest */
	char *after = dump(&T);
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
}

Test(tree, create_of_existing_node_only_raises_parent_counters, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/a", "x", false, 1), ZOK);
	cr_assert_eq(do_create(&T, 1, 11, "/a/b", "x", false, 1), ZOK);
	cr_assert_eq(do_create(&T, 1, 12, "/a/c", "x", false, 2), ZOK);
	/* A replay of an older create: nothing moves backwards. */
	cr_assert_eq(do_create(&T, 1, 11, "/a/b", "other", false, 1), ZNODEEXISTS);
	cr_assert_eq(look(&T, "/a")->stat.cversion, 2);
	cr_assert_eq(look(&T, "/a")->stat.pzxid, 12);
	cr_assert_arr_eq(look(&T, "/a/b")->data, "x", 1, "the node itself is untouched");
	cr_assert_eq(look(&T, "/a/b")->stat.czxid, 11);
	/* A create the snapshot missed the parent side of: the counters go forward. */
	cr_assert_eq(do_create(&T, 1, 20, "/a/b", "x", false, 5), ZNODEEXISTS);
	cr_assert_eq(look(&T, "/a")->stat.cversion, 5);
	cr_assert_eq(look(&T, "/a")->stat.pzxid, 20);
	cr_assert_eq(T.node_count, 7);
}

/* ---- delete ---- */

Test(tree, delete_raises_parent_pzxid_and_counts, .init = setup, .fini = teardown, .timeout = 10)
{
	uint64_t bytes0 = T.data_bytes;
	cr_assert_eq(do_create(&T, 1, 10, "/a", "abc", false, 1), ZOK);
	cr_assert_eq(do_create(&T, 1, 11, "/a/b", "12345", false, 1), ZOK);
	cr_assert_eq(T.node_count, 6);
	cr_assert_eq(T.data_bytes, bytes0 + 2 + 3 + 4 + 5);
	cr_assert_eq(do_delete(&T, 15, "/a/b"), ZOK);
	cr_assert_null(look(&T, "/a/b"));
	struct zk_stat st = stat_of(&T, "/a");
	cr_assert_eq(st.p.pzxid, 15);
	cr_assert_eq(st.num_children, 0);
	cr_assert_eq(st.p.cversion, 2, "one create and one delete");
	cr_assert_eq(st.p.mzxid, 10);
	cr_assert_eq(T.node_count, 5);
	cr_assert_eq(T.data_bytes, bytes0 + 2 + 3);
	cr_assert_eq(T.last_zxid, 15);

	/* Deleting a missing node is NoNode but still raises the parent's pzxid, never lowers it. */
	cr_assert_eq(do_delete(&T, 16, "/a/b"), ZNONODE);
	cr_assert_eq(look(&T, "/a")->stat.pzxid, 16);
	cr_assert_eq(do_delete(&T, 12, "/a/b"), ZNONODE);
	cr_assert_eq(look(&T, "/a")->stat.pzxid, 16);
	cr_assert_eq(do_delete(&T, 17, "/nope/x"), ZNONODE);
	cr_assert_eq(do_delete(&T, 18, "/a"), ZOK);
	cr_assert_eq(T.node_count, 4);
	cr_assert_eq(T.data_bytes, bytes0);
	cr_assert_eq(stat_of(&T, "/").p.pzxid, 18);
}

Test(tree, delete_of_ephemeral_unlinks_it_from_its_session, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 0x42, 10, "/e1", NULL, true, 1), ZOK);
	cr_assert_eq(do_create(&T, 0x42, 11, "/e2", NULL, true, 2), ZOK);
	cr_assert_eq(tree_ephemerals(&T, 0x42)->count, 2);
	cr_assert_eq(do_delete(&T, 12, "/e1"), ZOK);
	cr_assert_eq(tree_ephemerals(&T, 0x42)->count, 1);
	cr_assert_eq(tree_ephemerals(&T, 0x42)->head, look(&T, "/e2"));
	cr_assert_eq(do_delete(&T, 13, "/e2"), ZOK);
	cr_assert_null(tree_ephemerals(&T, 0x42));
	cr_assert_eq(T.eph_count, 0);
}

/* ---- setData ---- */

Test(tree, setdata_takes_version_from_txn, .init = setup, .fini = teardown, .timeout = 10)
{
	uint64_t bytes0 = T.data_bytes;
	cr_assert_eq(do_create(&T, 1, 10, "/a", "abc", false, 1), ZOK);
	cr_assert_eq(do_setdata(&T, 20, "/a", "defgh", 7), ZOK);
	struct zk_stat st = stat_of(&T, "/a");
	cr_assert_eq(st.p.version, 7, "the txn carries the new version");
	cr_assert_eq(st.p.mzxid, 20);
	cr_assert_eq(st.p.mtime, time_of(20));
	cr_assert_eq(st.p.czxid, 10);
	cr_assert_eq(st.p.ctime, time_of(10));
	cr_assert_eq(st.p.pzxid, 10);
	cr_assert_eq(st.data_length, 5);
	cr_assert_arr_eq(look(&T, "/a")->data, "defgh", 5);
	cr_assert_eq(memcmp(&last_res.stat, &st, sizeof st), 0);
	cr_assert_eq(T.data_bytes, bytes0 + 2 + 5);
	/* Applying it again changes nothing. */
	cr_assert_eq(do_setdata(&T, 20, "/a", "defgh", 7), ZOK);
	cr_assert_eq(stat_of(&T, "/a").p.version, 7);
	cr_assert_eq(T.data_bytes, bytes0 + 2 + 5);
	/* Null and empty data. */
	cr_assert_eq(do_setdata(&T, 21, "/a", NULL, 8), ZOK);
	cr_assert_eq(look(&T, "/a")->data_len, -1);
	cr_assert_eq(stat_of(&T, "/a").data_length, 0);
	cr_assert_eq(T.data_bytes, bytes0 + 2);
	cr_assert_eq(do_setdata(&T, 22, "/a", "", 9), ZOK);
	cr_assert_eq(look(&T, "/a")->data_len, 0);
	cr_assert_eq(do_setdata(&T, 23, "/missing", "x", 1), ZNONODE);
}

/* ---- error, createSession, unknown ---- */

Test(tree, error_txn_returns_its_err, .init = setup, .fini = teardown, .timeout = 10)
{
	char *before = dump(&T);
	struct tree_result res;
	tx_int(&scratch, 0x77, 0x100000009LL, ZOP_ERROR, ZBADVERSION);
	cr_assert_eq(t_apply(&T, &scratch, &res), ZBADVERSION);
	tx_int(&scratch, 0x99, 0x10000000aLL, ZOP_CREATESESSION, 30000);
	cr_assert_eq(t_apply(&T, &scratch, &res), ZOK);
	cr_assert_eq(T.last_zxid, 0x10000000aLL);
	T.last_zxid = 0;
	char *after = dump(&T);
	cr_assert_str_eq(after, before, "error and createSession txns leave the data alone");
	free(before);
	free(after);

	struct txn x = { .hdr = { .type = 77, .zxid = 0x10000000bLL } };
	cr_assert_eq(tree_apply(&T, &x, &res), -EINVAL);
}

/* ---- closeSession ---- */

Test(tree, close_session_removes_listed_and_remaining_ephemerals, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 0, 10, "/p", NULL, false, 1), ZOK);
	cr_assert_eq(do_create(&T, 0xA, 11, "/p/a1", NULL, true, 1), ZOK);
	cr_assert_eq(do_create(&T, 0xA, 12, "/p/a2", NULL, true, 2), ZOK);
	cr_assert_eq(do_create(&T, 0xA, 13, "/a3", "z", true, 2), ZOK);
	cr_assert_eq(do_create(&T, 0xB, 14, "/p/b1", NULL, true, 3), ZOK);
	cr_assert_eq(tree_ephemerals(&T, 0xA)->count, 3);
	uint64_t nodes = T.node_count;

	static const char *const listed[] = { "/p/a1" };
	cr_assert_eq(do_close(&T, 0xA, 20, listed, 1), ZOK);
	cr_assert_null(look(&T, "/p/a1"));
	cr_assert_null(look(&T, "/p/a2"), "an unlisted ephemeral of the session goes too");
	cr_assert_null(look(&T, "/a3"));
	cr_assert_not_null(look(&T, "/p/b1"), "another session's ephemeral stays");
	cr_assert_not_null(look(&T, "/p"));
	cr_assert_null(tree_ephemerals(&T, 0xA));
	cr_assert_eq(tree_ephemerals(&T, 0xB)->count, 1);
	cr_assert_eq(T.eph_count, 1);
	cr_assert_eq(T.node_count, nodes - 3);
	cr_assert_eq(stat_of(&T, "/p").p.pzxid, 20);
	cr_assert_eq(stat_of(&T, "/").p.pzxid, 20);
	cr_assert_eq(T.last_zxid, 20);

	/* The old empty body: the tree's own list decides. */
	cr_assert_eq(do_close(&T, 0xB, 21, NULL, -1), ZOK);
	cr_assert_null(look(&T, "/p/b1"));
	cr_assert_null(tree_ephemerals(&T, 0xB));
	cr_assert_eq(T.eph_count, 0);
	/* Closing a session with nothing is harmless. */
	cr_assert_eq(do_close(&T, 0xC, 22, NULL, 0), ZOK);
}

Test(tree, close_session_of_deep_ephemeral_keeps_bookkeeping, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Regression (fixed): tree/tree.c apply_close_session: an ephemeral whose path does not fit its 4096-byte
	 * buffer is removed with unlink_subtree(t, node, 0), so the path's length is never taken
	 * off data_bytes and the parent's pzxid is not raised (and no watch fires). Such a
	 * node is only reached with a closeSession txn that does not list it (old logs). */
	char path[6000];
	size_t len = 0;
	int64_t z = 10;
	while (len < 4200) {
		path[len++] = '/';
		memset(path + len, 'd', 199);
		len += 199;
		path[len] = 0;
		cr_assert_eq(do_create(&T, 0, z++, path, NULL, false, 1), ZOK);
	}
	char parent[6000];
	memcpy(parent, path, len + 1);
	memcpy(path + len, "/eph", 5);
	uint64_t bytes = T.data_bytes, nodes = T.node_count;
	cr_assert_eq(do_create(&T, 0xD, z++, path, "x", true, 1), ZOK);
	cr_assert_eq(T.data_bytes, bytes + strlen(path) + 1);
	cr_assert_eq(do_close(&T, 0xD, 100, NULL, -1), ZOK);
	cr_assert_null(tree_lookup(&T, path, strlen(path)));
	cr_assert_eq(T.node_count, nodes);
	cr_assert_eq(T.data_bytes, bytes, "data_bytes drifted by the deleted node's path length");
	struct tree_node *p = tree_lookup(&T, parent, strlen(parent));
	cr_assert_not_null(p);
	cr_assert_eq(p->stat.pzxid, 100, "the parent's pzxid must reflect the delete");
}

/* ---- idempotence ---- */

#define S1 0x1000001LL
#define S2 0x1000002LL
#define S3 0x1000003LL
#define Z(n) (0x500000000LL + (n))

static int build_history(struct zbuf *txns)
{
	static const char *const close1[] = { "/a/c" };
	int n = 0;
	for (int i = 0; i < 28; i++)
		zbuf_init(&txns[i], 4096);
	tx_create(&txns[n++], S1, Z(1), "/a", "A", false, 1);
	tx_create(&txns[n++], S1, Z(2), "/a/b", "B", false, 1);
	tx_create(&txns[n++], S1, Z(3), "/a/c", "", true, 2);
	tx_setdata(&txns[n++], Z(4), "/a/b", "BB", 1);
	tx_create(&txns[n++], S2, Z(5), "/x", "X", false, 2);
	tx_delete(&txns[n++], Z(6), "/a/b");
	tx_setdata(&txns[n++], Z(7), "/a", "AA", 1);
	tx_create(&txns[n++], S2, Z(8), "/a/b", "B3", false, 3);
	tx_setdata(&txns[n++], Z(9), "/a/b", "B4", 1);
	tx_delete(&txns[n++], Z(10), "/x");
	tx_create(&txns[n++], S2, Z(11), "/x", NULL, true, 3);
	tx_int(&txns[n++], 0x77, Z(12), ZOP_ERROR, ZNODEEXISTS);
	tx_int(&txns[n++], S3, Z(13), ZOP_CREATESESSION, 30000);
	tx_close(&txns[n++], S1, Z(14), close1, 1);
	tx_create(&txns[n++], S2, Z(15), "/a/d", "D", true, 4);
	tx_create(&txns[n++], S3, Z(16), "/a/b/s0000000000", "q", false, 1);
	tx_close(&txns[n++], S2, Z(17), NULL, -1);
	tx_create(&txns[n++], S3, Z(18), "/x", "X5", false, 4);
	tx_setdata(&txns[n++], Z(19), "/a/b", "B5", 2);
	tx_delete(&txns[n++], Z(20), "/a/b/s0000000000");
	tx_create(&txns[n++], S3, Z(21), "/a/b/s0000000001", "r", true, 2);
	tx_setdata(&txns[n++], Z(22), "/", "root", 1);
	/* Multis: ops applied in order, one that creates and deletes the same node, a failed one. */
	multi_begin(&txns[n++], S3, Z(23));
	sub_create("/m", "M", false, 5);
	sub_create("/m/t", "T", false, 1);
	sub_setdata("/m", "M2", 1);
	sub_int(ZOP_CHECK, "/x", 1);
	sub_path(ZOP_DELETE, "/m/t");
	sub_create("/m/u", NULL, true, 2);
	multi_end();
	multi_begin(&txns[n++], S3, Z(24));
	sub_create("/m/v", "V", false, 3);
	sub_path(ZOP_DELETE, "/a/b/s0000000001");
	sub_int(ZOP_ERROR, NULL, ZBADVERSION);
	sub_int(ZOP_ERROR, NULL, ZRUNTIMEINCONSISTENCY);
	multi_end();
	tx_setdata(&txns[n++], Z(25), "/m", "M3", 2);
	return n;
}

static void apply_range(struct tree *t, struct zbuf *txns, int from, int to)
{
	struct tree_result res;
	for (int i = from; i < to; i++)
		t_apply(t, &txns[i], &res);
}

Test(tree, replay_of_any_suffix_is_idempotent, .timeout = 10)
{
	struct zbuf txns[28];
	int n = build_history(txns);
	struct tree t;
	cr_assert_eq(tree_init(&t, t_on_fire, &ev), 0);
	apply_range(&t, txns, 0, n);
	char *want = dump(&t);
	/* Sanity: the history did what it says. */
	cr_assert_not_null(look(&t, "/a/b/s0000000001"));
	cr_assert_null(look(&t, "/a/c"));
	cr_assert_null(look(&t, "/a/d"));
	cr_assert_arr_eq(look(&t, "/x")->data, "X5", 2);
	cr_assert_eq(look(&t, "/x")->stat.ephemeral_owner, 0);
	cr_assert_null(look(&t, "/m/t"), "the multi created and deleted it");
	cr_assert_not_null(look(&t, "/m/u"));
	cr_assert_null(look(&t, "/m/v"), "the failed multi changed nothing");
	cr_assert_not_null(look(&t, "/a/b/s0000000001"));
	cr_assert_eq(look(&t, "/m")->stat.cversion, 2);
	apply_range(&t, txns, 0, n);
	char *twice = dump(&t);
	cr_assert_str_eq(twice, want, "applying the whole history twice");
	free(twice);
	tree_free(&t);

	/* A snapshot taken after txn m, replayed from any k <= m (fuzzy snapshot). */
	for (int m = 0; m <= n; m++) {
		for (int k = 0; k <= m; k++) {
			cr_assert_eq(tree_init(&t, t_on_fire, &ev), 0);
			apply_range(&t, txns, 0, m);
			apply_range(&t, txns, k, n);
			char *got = dump(&t);
			cr_assert_str_eq(got, want, "snapshot at %d, replay from %d", m, k);
			free(got);
			tree_free(&t);
		}
	}
	free(want);
	for (int i = 0; i < 28; i++)
		zbuf_free(&txns[i]);
}

/* ---- lookup and scale ---- */

Test(tree, lookup_by_path, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/a", NULL, false, 1), ZOK);
	cr_assert_eq(do_create(&T, 1, 11, "/a/b", NULL, false, 1), ZOK);
	cr_assert_eq(do_create(&T, 1, 12, "/ab", NULL, false, 2), ZOK);
	cr_assert_eq(look(&T, "/"), T.root);
	cr_assert_eq(tree_lookup(&T, "", 0), T.root, "ZooKeeper keeps the root under \"\" too");
	cr_assert_not_null(look(&T, "/a/b"));
	cr_assert_str_eq(look(&T, "/a/b")->name, "b");
	cr_assert_eq(look(&T, "/a/b")->parent, look(&T, "/a"));
	cr_assert_neq(look(&T, "/ab"), look(&T, "/a"));
	cr_assert_null(look(&T, "/a/b/"));
	cr_assert_null(look(&T, "/a//b"));
	cr_assert_null(look(&T, "a/b"));
	cr_assert_null(look(&T, "/a/c"));
	cr_assert_null(look(&T, "/a/b/c"));
	cr_assert_null(look(&T, "/b"));
	cr_assert_null(tree_lookup(&T, "/a/b", 3), "the length is explicit: \"/a/\"");
	cr_assert_eq(tree_lookup(&T, "/a/bxyz", 4), look(&T, "/a/b"));

	char buf[64];
	cr_assert_eq(tree_node_path(look(&T, "/a/b"), buf, sizeof buf), 4);
	cr_assert_str_eq(buf, "/a/b");
	cr_assert_eq(tree_node_path(T.root, buf, sizeof buf), 1);
	cr_assert_str_eq(buf, "/");
	cr_assert_eq(tree_node_path(look(&T, "/a/b"), buf, 4), -ENAMETOOLONG);
	cr_assert_eq(tree_node_path(look(&T, "/a/b"), buf, 5), 4);
}

Test(tree, ten_thousand_children_found_and_listed, .init = setup, .fini = teardown, .timeout = 10)
{
	enum { N = 10000 };
	cr_assert_eq(do_create(&T, 1, 1, "/big", NULL, false, 1), ZOK);
	char path[64];
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/big/c%05d", i);
		cr_assert_eq(do_create(&T, 1, 2 + i, path, "v", false, i + 1), ZOK);
	}
	cr_assert_eq(T.node_count, 5 + N);
	struct zk_stat st = stat_of(&T, "/big");
	cr_assert_eq(st.num_children, N);
	cr_assert_eq(st.p.cversion, N, "10000 creates, no deletes");
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/big/c%05d", i);
		struct tree_node *n = look(&T, path);
		cr_assert_not_null(n, "%s missing", path);
		cr_assert_eq(n->stat.czxid, 2 + i);
	}
	/* List through getChildren, the client's view. */
	struct zbuf req, resp;
	struct jute_out o;
	zbuf_init(&req, 256);
	zbuf_init(&resp, 1 << 20);
	jout_init(&o, &req);
	jout_str(&o, "/big");
	jout_bool(&o, false);
	jout_init(&o, &resp);
	struct acl_who anyone = { 0 };
	cr_assert_eq(ops_read(&T, ZOP_GETCHILDREN, zbuf_head(&req), zbuf_len(&req), 1, &anyone, &o), ZOK);
	struct jute_in in;
	jin_init(&in, zbuf_head(&resp), zbuf_len(&resp));
	cr_assert_eq(jin_vec(&in, INT32_MAX), N);
	static bool seen[N];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < N; i++) {
		int32_t len;
		const uint8_t *p = jin_buf(&in, &len);
		cr_assert_eq(len, 6);
		cr_assert_eq(p[0], 'c');
		int k = 0;
		for (int d = 1; d < 6; d++) {
			cr_assert(p[d] >= '0' && p[d] <= '9');
			k = k * 10 + (p[d] - '0');
		}
		cr_assert(k >= 0 && k < N);
		cr_assert(!seen[k], "c%05d listed twice", k);
		seen[k] = true;
	}
	cr_assert(jin_done(&in));
	/* Delete half and look again. */
	for (int i = 0; i < N; i += 2) {
		snprintf(path, sizeof path, "/big/c%05d", i);
		cr_assert_eq(do_delete(&T, 20000 + i, path), ZOK);
	}
	cr_assert_eq(stat_of(&T, "/big").num_children, N / 2);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/big/c%05d", i);
		cr_assert_eq(look(&T, path) != NULL, i % 2 == 1, "%s", path);
	}
	zbuf_free(&req);
	zbuf_free(&resp);
}

Test(tree, acls_are_interned_and_released, .init = setup, .fini = teardown, .timeout = 10)
{
	size_t acls0 = T.acls.count;
	cr_assert_eq(acls0, 2, "open and read-only");
	/* A digest ACL, shared by two nodes. */
	struct zbuf b;
	zbuf_init(&b, 1024);
	for (int i = 0; i < 2; i++) {
		struct jute_out o;
		begin(&o, &b, 1, 10 + i, ZOP_CREATE);
		jout_str(&o, i ? "/d2" : "/d1");
		jout_str(&o, "x");
		jout_i32(&o, 1);
		jout_i32(&o, ZPERM_ALL);
		jout_str(&o, "digest");
		jout_str(&o, "u:abc");
		jout_bool(&o, false);
		jout_i32(&o, i + 1);
		struct tree_result res;
		cr_assert_eq(t_apply(&T, &b, &res), ZOK);
	}
	cr_assert_eq(T.acls.count, acls0 + 1);
	cr_assert_eq(look(&T, "/d1")->acl, look(&T, "/d2")->acl);
	cr_assert_eq(look(&T, "/d1")->acl->refs, 2);
	cr_assert_eq(do_delete(&T, 20, "/d1"), ZOK);
	cr_assert_eq(T.acls.count, acls0 + 1);
	cr_assert_eq(do_delete(&T, 21, "/d2"), ZOK);
	cr_assert_eq(T.acls.count, acls0, "the last user releases the ACL");
	zbuf_free(&b);
}

/* ---- watches through apply ---- */

Test(tree, create_fires_created_and_parent_children_changed, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 1), 0);   /* exists("/w", true) */
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/", 1, 2), 0);   /* getChildren("/") */
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/w", 2, 3), 0);  /* not fired by create */
	cr_assert_eq(do_create(&T, 1, 10, "/w", NULL, false, 1), ZOK);
	cr_assert_eq(ev.n, 2);
	cr_assert_eq(count_ev(1, ZEV_CREATED, "/w"), 1);
	cr_assert_eq(count_ev(2, ZEV_CHILDREN_CHANGED, "/"), 1);
	/* Data event before the parent's child event, as ZooKeeper. */
	cr_assert_eq(ev.v[0].type, ZEV_CREATED);
	cr_assert_eq(watches_total(&T.watches), 1, "fired watches are gone; /w's child watch stays");

	/* Nested: the parent path is "/w", not "/". */
	cr_assert_eq(do_create(&T, 1, 11, "/w/x", NULL, false, 1), ZOK);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(count_ev(3, ZEV_CHILDREN_CHANGED, "/w"), 1);
	/* One-shot: nothing fires a second time. */
	cr_assert_eq(do_create(&T, 1, 12, "/w/y", NULL, false, 2), ZOK);
	cr_assert_eq(do_delete(&T, 13, "/w/y"), ZOK);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(watches_total(&T.watches), 0);
}

Test(tree, delete_fires_deleted_once_per_watcher, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/w", "x", false, 1), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 7), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/w", 2, 7), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/w", 2, 8), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 9), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/", 1, 7), 0);
	cr_assert_eq(do_delete(&T, 11, "/w"), ZOK);
	cr_assert_eq(count_ev(7, ZEV_DELETED, "/w"), 1, "data + child watch: one NodeDeleted");
	cr_assert_eq(count_ev(8, ZEV_DELETED, "/w"), 1);
	cr_assert_eq(count_ev(9, ZEV_DELETED, "/w"), 1);
	cr_assert_eq(count_ev(7, ZEV_CHILDREN_CHANGED, "/"), 1, "the parent's watch is a different path");
	cr_assert_eq(ev.n, 4);
	cr_assert_eq(watches_total(&T.watches), 0);

	/* A later delete in another pass is not suppressed by the earlier generation. */
	cr_assert_eq(do_create(&T, 1, 12, "/v", "x", false, 2), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/v", 2, 7), 0);
	cr_assert_eq(do_delete(&T, 13, "/v"), ZOK);
	cr_assert_eq(count_ev(7, ZEV_DELETED, "/v"), 1);
}

Test(tree, setdata_fires_data_changed_once, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/w", "x", false, 1), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 5), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/w", 2, 6), 0);
	cr_assert_eq(do_setdata(&T, 11, "/w", "y", 1), ZOK);
	cr_assert_eq(ev.n, 1);
	cr_assert_eq(count_ev(5, ZEV_DATA_CHANGED, "/w"), 1);
	cr_assert_eq(do_setdata(&T, 12, "/w", "z", 2), ZOK);
	cr_assert_eq(ev.n, 1, "one-shot");
}

Test(tree, close_session_fires_deleted_for_its_ephemerals, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 0xA, 10, "/e", NULL, true, 1), ZOK);
	cr_assert_eq(do_create(&T, 0xA, 11, "/f", NULL, true, 2), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/e", 2, 1), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/f", 2, 1), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/", 1, 2), 0);
	static const char *const listed[] = { "/e" };
	cr_assert_eq(do_close(&T, 0xA, 20, listed, 1), ZOK);
	cr_assert_eq(count_ev(1, ZEV_DELETED, "/e"), 1);
	cr_assert_eq(count_ev(1, ZEV_DELETED, "/f"), 1, "an unlisted ephemeral fires too");
	cr_assert_eq(count_ev(2, ZEV_CHILDREN_CHANGED, "/"), 1);
	cr_assert_eq(ev.n, 3);
}

/* Regression (fuzz_txn, tests/fuzz/regressions/txn-cversion-overflow.bin): a create txn with
 * parentCVersion near INT32_MAX made tree_stat overflow a signed int. ZooKeeper computes the
 * reported cversion in Java int arithmetic, which wraps; so does zkd now. */
Test(tree, reported_cversion_wraps_like_java, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 0x55, 0x100000001LL, "/w", "x", false, INT32_MAX), ZOK);
	struct zk_stat st = stat_of(&T, "/");
	cr_assert_eq(st.p.cversion, (int32_t)((uint32_t)INT32_MAX * 2u - 2u));
}

/* Regression (fuzz_snapshot, tests/fuzz/regressions/snapshot-double-slash.bin): a snapshot
 * node path that is not canonical ("//x") is refused instead of creating "/x" with wrong
 * size accounting. */
Test(tree, load_node_refuses_a_non_canonical_path, .init = setup, .fini = teardown, .timeout = 10)
{
	struct tree_stat st = { 0 };
	uint64_t bytes = T.data_bytes, nodes = T.node_count;
	cr_assert_eq(tree_load_node(&T, "//x", 3, NULL, -1, tree_acl_open, tree_acl_open_len, &st), -EINVAL);
	cr_assert_eq(tree_load_node(&T, "/x/", 3, NULL, -1, tree_acl_open, tree_acl_open_len, &st), -EINVAL);
	cr_assert_eq(T.data_bytes, bytes);
	cr_assert_eq(T.node_count, nodes);
	cr_assert_eq(tree_load_node(&T, "/x", 2, NULL, -1, tree_acl_open, tree_acl_open_len, &st), 0);
	cr_assert_not_null(look(&T, "/x"));
}

/* ---- multi ---- */

struct sub_seen {
	int32_t type[8], err[8];
	struct zk_stat stat[8];
	int n;
};

static void on_sub(void *ctx, const struct txn *sub, const struct tree_result *res)
{
	struct sub_seen *s = ctx;
	cr_assert_lt(s->n, 8);
	s->type[s->n] = sub->hdr.type;
	s->err[s->n] = res->err;
	s->stat[s->n] = res->stat;
	s->n++;
}

static int apply_multi(struct sub_seen *seen, struct tree_result *res)
{
	struct txn x;
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), 0);
	memset(seen, 0, sizeof *seen);
	cr_assert_eq(tree_apply_each(&T, &x, res, on_sub, seen), 0);
	return res->err;
}

Test(tree, multi_applies_ops_in_order_and_fires_per_op, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/w", "x", false, 1), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 1), 0);  /* getData("/w", true) */
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/", 1, 2), 0);  /* getChildren("/") */
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/n", 2, 3), 0);  /* exists("/n", true) */
	multi_begin(&scratch, 0x9, 11);
	sub_setdata("/w", "y", 1);
	sub_create("/n", NULL, false, 2);
	sub_int(ZOP_CHECK, "/w", 2);
	sub_path(ZOP_DELETE, "/n");
	sub_create("/w/x", "X", true, 1);
	multi_end();
	struct sub_seen seen;
	struct tree_result res;
	cr_assert_eq(apply_multi(&seen, &res), ZOK);
	int32_t want[] = { ZOP_SETDATA, ZOP_CREATE, ZOP_CHECK, ZOP_DELETE, ZOP_CREATE };
	cr_assert_eq(seen.n, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(seen.type[i], want[i], "op %d", i);
		cr_assert_eq(seen.err[i], ZOK, "op %d", i);
	}
	cr_assert_eq(seen.stat[0].p.version, 1);
	cr_assert_eq(seen.stat[0].p.mzxid, 11);
	cr_assert_eq(seen.stat[1].p.czxid, 11, "the create's Stat as it was after that op");
	cr_assert_eq(seen.stat[4].p.ephemeral_owner, 0x9, "ops carry the multi's session");
	cr_assert_null(look(&T, "/n"));
	cr_assert_not_null(look(&T, "/w/x"));
	cr_assert_eq(T.last_zxid, 11);
	/* One event per watch, in the order of the ops that fired them. */
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(ev.v[0].type, ZEV_DATA_CHANGED);
	cr_assert_eq(ev.v[1].type, ZEV_CREATED);
	cr_assert_eq(ev.v[2].type, ZEV_CHILDREN_CHANGED);
	cr_assert_eq(count_ev(2, ZEV_CHILDREN_CHANGED, "/"), 1);
	cr_assert_eq(count_ev(3, ZEV_CREATED, "/n"), 1);
}

Test(tree, failed_multi_changes_nothing_and_fires_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(do_create(&T, 1, 10, "/w", "x", false, 1), ZOK);
	cr_assert_eq(watches_add(&T.watches, WATCH_DATA, "/w", 2, 1), 0);
	cr_assert_eq(watches_add(&T.watches, WATCH_CHILD, "/", 1, 2), 0);
	char *before = t_tree_dump(&T, 0);
	/* As prep logs it: the ops before the failing one keep their own types. */
	multi_begin(&scratch, 0x9, 11);
	sub_create("/a", NULL, false, 2);
	sub_setdata("/w", "y", 1);
	sub_int(ZOP_ERROR, NULL, ZBADVERSION);
	sub_int(ZOP_ERROR, NULL, ZRUNTIMEINCONSISTENCY);
	multi_end();
	struct sub_seen seen;
	struct tree_result res;
	cr_assert_eq(apply_multi(&seen, &res), ZBADVERSION, "the multi's error is its first op error");
	int32_t want_err[] = { ZOK, ZOK, ZBADVERSION, ZRUNTIMEINCONSISTENCY };
	cr_assert_eq(seen.n, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(seen.type[i], ZOP_ERROR, "op %d", i);
		cr_assert_eq(seen.err[i], want_err[i], "op %d", i);
	}
	char *after = t_tree_dump(&T, 0);
	cr_assert_str_eq(after, before);
	cr_assert_eq(ev.n, 0);
	cr_assert_eq(T.last_zxid, 11, "a failed multi still takes its zxid");
	free(before);
	free(after);
}

Test(tree, multi_txn_decode_checks_every_op, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn x;
	multi_begin(&scratch, 1, 5);
	multi_end();
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), 0, "an empty multi");
	cr_assert_eq(x.nsubs, 0);

	/* Not a sub-txn type (a multi inside a multi, a createSession). */
	int32_t bad_types[] = { ZOP_MULTI, ZOP_CREATESESSION, ZOP_CLOSESESSION, 99 };
	for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
		multi_begin(&scratch, 1, 5);
		sub_int(bad_types[i], NULL, 0);
		multi_end();
		cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG, "type %d", bad_types[i]);
	}
	/* A sub-txn body with bytes left over, or cut short. */
	multi_begin(&scratch, 1, 5);
	sub_int(ZOP_ERROR, NULL, 0);
	jout_i32(&mo, 7);
	be32_put(zbuf_head(&scratch) + zbuf_len(&scratch) - 12, 8);
	multi_end();
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG);
	multi_begin(&scratch, 1, 5);
	sub_int(ZOP_CHECK, "/a", 0);
	multi_end();
	zbuf_truncate(&scratch, zbuf_len(&scratch) - 1);
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG);
	/* A null sub-txn body, a null or negative op list. */
	multi_begin(&scratch, 1, 5);
	jout_i32(&mo, ZOP_ERROR);
	jout_i32(&mo, -1);
	mcount = 1;
	multi_end();
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG);
	multi_begin(&scratch, 1, 5);
	mcount = -1;
	multi_end();
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG);
	/* More ops announced than present. */
	multi_begin(&scratch, 1, 5);
	sub_int(ZOP_ERROR, NULL, 0);
	mcount = 2;
	multi_end();
	cr_assert_eq(txn_decode(zbuf_head(&scratch), zbuf_len(&scratch), &x), -EBADMSG);
}

/* Regression (fuzz_txn, tests/fuzz/regressions/txn-multi-lower-parent-cversion.bin): a multi
 * creating two children with the second's parentCVersion lower than the first's set the
 * parent's cversion back, so applying it twice ended elsewhere than applying it once.
 * ZooKeeper 3.8's DataTree.createNode only ever raises it (with pzxid); so does zkd now. */
Test(tree, create_never_lowers_the_parent_cversion, .init = setup, .fini = teardown, .timeout = 10)
{
	multi_begin(&scratch, 0x9, 20);
	sub_create("/a", NULL, false, 259);
	sub_create("/b", NULL, false, 4);
	multi_end();
	struct sub_seen seen;
	struct tree_result res;
	cr_assert_eq(apply_multi(&seen, &res), ZOK);
	cr_assert_eq(T.root->stat.cversion, 259);
	char *once = t_tree_dump(&T, T_DUMP_LAST_ZXID);
	apply_multi(&seen, &res);
	char *twice = t_tree_dump(&T, T_DUMP_LAST_ZXID);
	cr_assert_str_eq(twice, once);
	free(once);
	free(twice);
	/* A plain create with a lower parentCVersion leaves cversion and pzxid alone. */
	cr_assert_eq(do_create(&T, 1, 21, "/c", NULL, false, 7), ZOK);
	cr_assert_eq(T.root->stat.cversion, 259);
	cr_assert_eq(T.root->stat.pzxid, 20);
}
