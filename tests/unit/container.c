/* Proves the container and TTL create modes and the reaper's rules, the pure parts: prep's
 * mode/ttl checks and error codes (as ZooKeeper 3.8 answers), the CreateContainerTxn and
 * CreateTTLTxn it writes, the ephemeralOwner apply gives (and clients do not see), the
 * tree's list of such nodes through create, delete, snapshot load and replay, the candidate
 * rule at a given wall time, and the re-checks of the reaper's own deleteContainer. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "zab/prep.h"
#include "tests/unit/support/support.h"

#define NOUT 64
#define T0 1700000000000LL

static struct tree T;
static struct prep P;
static struct zbuf outs[NOUT];
static struct txn txns[NOUT];
static int nout;
static int64_t next_zxid, now_ms;
static struct zbuf body;

static void setup(void)
{
	cr_assert_eq(tree_init(&T, NULL, NULL), 0);
	prep_init(&P, &T);
	P.extended_types = true;
	nout = 0;
	next_zxid = 0x100000001LL;
	now_ms = T0;
	zbuf_init(&body, 1 << 16);
}

static void teardown(void)
{
	prep_free(&P);
	tree_free(&T);
	for (int i = 0; i < nout; i++)
		zbuf_free(&outs[i]);
	zbuf_free(&body);
}

static void body_create(const char *path, int32_t flags, int64_t ttl, bool with_ttl)
{
	struct jute_out o;
	t_jout_begin(&o, &body);
	jout_str(&o, path);
	jout_str(&o, "d");
	jout_raw(&o, tree_acl_open, tree_acl_open_len);
	jout_i32(&o, flags);
	if (with_ttl)
		jout_i64(&o, ttl);
	t_jout_done(&o);
}

static struct txn *run_req(int32_t type, bool internal)
{
	cr_assert_lt(nout, NOUT);
	int i = nout++;
	zbuf_init(&outs[i], 1 << 20);
	struct jute_out o;
	jout_init(&o, &outs[i]);
	struct prep_req r = { .session = internal ? 0 : 0x42, .cxid = i, .type = type,
			      .body = zbuf_head(&body), .body_len = zbuf_len(&body),
			      .zxid = next_zxid++, .time_ms = now_ms, .internal = internal };
	cr_assert_eq(prep_write(&P, &r, &o), 0);
	cr_assert_eq(txn_decode(zbuf_head(&outs[i]), zbuf_len(&outs[i]), &txns[i]), 0);
	return &txns[i];
}

static struct txn *create(int32_t op, const char *path, int32_t flags, int64_t ttl)
{
	body_create(path, flags, ttl, op == ZOP_CREATETTL);
	return run_req(op, false);
}

static struct txn *reap(const char *path, bool internal)
{
	zbuf_reset(&body);
	cr_assert_eq(zbuf_append(&body, path, strlen(path)), 0);
	return run_req(ZOP_DELETECONTAINER, internal);
}

static int apply(const struct txn *x)
{
	struct tree_result res;
	cr_assert_eq(tree_apply(&T, x, &res), 0);
	prep_applied(&P, x->hdr.zxid);
	return res.err;
}

static int32_t err_of(const struct txn *x) { return x->hdr.type == ZOP_ERROR ? x->err : 0; }

static void must(const struct txn *x, int32_t type)
{
	cr_assert_eq(x->hdr.type, type, "type %d, want %d (err %d)", x->hdr.type, type, err_of(x));
	cr_assert_eq(apply(x), ZOK);
}

static struct tree_node *look(const char *path) { return tree_lookup(&T, path, strlen(path)); }

Test(container, create_txns_and_owners, .init = setup, .fini = teardown, .timeout = 10)
{
	must(create(ZOP_CREATE, "/a", 0, -1), ZOP_CREATE);
	struct txn *x = create(ZOP_CREATECONTAINER, "/a/c", ZCF_CONTAINER, -1);
	cr_assert_eq(x->hdr.type, ZOP_CREATECONTAINER);
	cr_assert_eq(x->parent_cversion, 1);
	cr_assert_eq(apply(x), ZOK);
	x = create(ZOP_CREATETTL, "/a/t-", ZCF_SEQ_TTL, 5000);
	cr_assert_eq(x->hdr.type, ZOP_CREATETTL);
	cr_assert_eq(x->ttl, 5000);
	cr_assert_eq(x->path_len, (int32_t)strlen("/a/t-0000000001"));
	cr_assert_eq(apply(x), ZOK);
	struct tree_node *c = look("/a/c"), *t = look("/a/t-0000000001");
	cr_assert(c && t);
	cr_assert_eq(c->stat.ephemeral_owner, INT64_MIN);
	cr_assert_eq((uint64_t)t->stat.ephemeral_owner, 0xff00000000000000ull | 5000);
	struct zk_stat st;
	tree_stat(t, &st);
	cr_assert_eq(st.p.ephemeral_owner, 0, "clients see 0 for a TTL node");
	tree_stat(c, &st);
	cr_assert_eq(st.p.ephemeral_owner, 0, "and for a container");
	cr_assert_eq(T.reapable_count, 2);
	cr_assert_eq(T.eph_count, 0, "neither is a session's ephemeral");
	/* The opcode decides the kind: create + CONTAINER is persistent, createContainer +
	 * EPHEMERAL is a container. */
	must(create(ZOP_CREATE, "/a/p", ZCF_CONTAINER, -1), ZOP_CREATE);
	cr_assert_eq(look("/a/p")->stat.ephemeral_owner, 0);
	must(create(ZOP_CREATECONTAINER, "/a/e", ZCF_EPHEMERAL, -1), ZOP_CREATECONTAINER);
	cr_assert_eq(look("/a/e")->stat.ephemeral_owner, INT64_MIN);
	/* An ephemeral child is allowed under both. */
	must(create(ZOP_CREATE, "/a/c/e", ZCF_EPHEMERAL, -1), ZOP_CREATE);
	must(create(ZOP_CREATE, "/a/t-0000000001/e", ZCF_EPHEMERAL, -1), ZOP_CREATE);
}

Test(container, mode_errors, .init = setup, .fini = teardown, .timeout = 10)
{
	static const struct { int32_t op, flags; int64_t ttl; bool ext; int32_t err; } cases[] = {
		{ ZOP_CREATE, ZCF_TTL, -1, true, ZBADARGUMENTS },
		{ ZOP_CREATE, ZCF_TTL, -1, false, ZUNIMPLEMENTED },
		{ ZOP_CREATE2, 7, -1, true, ZBADARGUMENTS },
		{ ZOP_CREATECONTAINER, -1, -1, true, ZBADARGUMENTS },
		{ ZOP_CREATECONTAINER, ZCF_SEQ_TTL, -1, false, ZUNIMPLEMENTED },
		{ ZOP_CREATETTL, ZCF_TTL, 0, true, ZBADARGUMENTS },
		{ ZOP_CREATETTL, ZCF_TTL, TXN_TTL_MAX + 1, true, ZBADARGUMENTS },
		{ ZOP_CREATETTL, ZCF_TTL, 1000, false, ZUNIMPLEMENTED },
		{ ZOP_CREATETTL, ZCF_TTL, 0, false, ZUNIMPLEMENTED },
		{ ZOP_CREATETTL, 0, 1000, true, ZBADARGUMENTS },
		{ ZOP_CREATETTL, 0, -1, true, ZBADARGUMENTS }, /* ZooKeeper 3.8 dies on this one */
		{ ZOP_CREATETTL, ZCF_CONTAINER, -1, false, ZBADARGUMENTS },
		{ ZOP_CREATETTL, 9, 1000, true, ZBADARGUMENTS },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		P.extended_types = cases[i].ext;
		struct txn *x = create(cases[i].op, "/n", cases[i].flags, cases[i].ttl);
		cr_assert_eq(x->hdr.type, ZOP_ERROR, "case %zu", i);
		cr_assert_eq(x->err, cases[i].err, "case %zu: err %d", i, x->err);
		cr_assert_eq(apply(x), cases[i].err);
	}
	P.extended_types = true;
	must(create(ZOP_CREATETTL, "/n", ZCF_TTL, TXN_TTL_MAX), ZOP_CREATETTL);
	cr_assert_eq(tree_owner_ttl(look("/n")->stat.ephemeral_owner), TXN_TTL_MAX);
	cr_assert_eq(T.node_count, 5, "only /n was created");
}

Test(container, ttl_txn_out_of_range_does_not_decode, .init = setup, .fini = teardown, .timeout = 10)
{
	int64_t bad[] = { 0, -1, TXN_TTL_MAX + 1 };
	for (size_t i = 0; i < 3; i++) {
		struct zbuf b;
		zbuf_init(&b, 1 << 16);
		struct jute_out o;
		struct txn_hdr h = { 1, 1, 5, 6, ZOP_CREATETTL };
		t_txn_begin(&o, &b, &h);
		jout_str(&o, "/x");
		jout_str(&o, "");
		jout_raw(&o, tree_acl_open, tree_acl_open_len);
		jout_i32(&o, 1);
		jout_i64(&o, bad[i]);
		struct txn x;
		cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), -EBADMSG, "ttl %lld", (long long)bad[i]);
		zbuf_free(&b);
	}
}

Test(container, candidates_at_a_given_time, .init = setup, .fini = teardown, .timeout = 10)
{
	must(create(ZOP_CREATECONTAINER, "/never", ZCF_CONTAINER, -1), ZOP_CREATECONTAINER);
	must(create(ZOP_CREATECONTAINER, "/used", ZCF_CONTAINER, -1), ZOP_CREATECONTAINER);
	must(create(ZOP_CREATE, "/used/k", 0, -1), ZOP_CREATE);
	must(create(ZOP_CREATETTL, "/ttl", ZCF_TTL, 1000), ZOP_CREATETTL);
	must(create(ZOP_CREATETTL, "/ttlkids", ZCF_TTL, 1000), ZOP_CREATETTL);
	must(create(ZOP_CREATE, "/ttlkids/k", 0, -1), ZOP_CREATE);
	must(create(ZOP_CREATE, "/plain", 0, -1), ZOP_CREATE);
	const struct tree_node *out[8];
	cr_assert_eq(tree_reap_candidates(&T, T0 + 1000, 0, true, out, 8), 0, "none due yet");
	cr_assert_eq(tree_reap_candidates(&T, T0 + 1001, 0, true, out, 8), 1);
	cr_assert_eq(out[0], look("/ttl"));
	cr_assert_eq(tree_reap_candidates(&T, T0 + 1001, 0, false, out, 8), 0, "TTL needs the flag");
	cr_assert_eq(tree_reap_candidates(&T, T0 + 1001, 500, true, out, 8), 2, "never used, old");
	struct txn *refused = reap("/used/k", false); /* a client's: refused */
	cr_assert_eq(apply(refused), ZBADARGUMENTS);
	struct jute_out o;
	t_jout_begin(&o, &body);
	jout_str(&o, "/used/k");
	jout_i32(&o, -1);
	t_jout_done(&o);
	must(run_req(ZOP_DELETE, false), ZOP_DELETE);
	cr_assert_eq(tree_reap_candidates(&T, T0, 0, true, out, 8), 1, "a container emptied");
	cr_assert_eq(out[0], look("/used"));
	cr_assert_eq(tree_reap_candidates(&T, T0 + 5000, 0, true, out, 1), 1, "at most max");
	struct tree_stat odd = { .mtime = INT64_MIN, .ephemeral_owner = tree_ttl_owner(TXN_TTL_MAX) };
	cr_assert(tree_reap_due(&odd, 0, INT64_MAX, 0, true), "no overflow at the extremes");
	odd.mtime = INT64_MAX;
	cr_assert_not(tree_reap_due(&odd, 0, T0, 0, true), "modified in the future: not idle");
	cr_assert_eq(T.reapable_count, 4);
}

Test(container, reaper_delete_rechecks, .init = setup, .fini = teardown, .timeout = 10)
{
	must(create(ZOP_CREATECONTAINER, "/c", ZCF_CONTAINER, -1), ZOP_CREATECONTAINER);
	must(create(ZOP_CREATE, "/c/k", 0, -1), ZOP_CREATE);
	must(create(ZOP_CREATE, "/p", 0, -1), ZOP_CREATE);
	cr_assert_eq(err_of(reap("/c", false)), ZBADARGUMENTS, "only the server's own");
	cr_assert_eq(err_of(reap("/c", true)), ZNOTEMPTY);
	cr_assert_eq(err_of(reap("/p", true)), ZBADVERSION, "not a container");
	cr_assert_eq(err_of(reap("/nope", true)), ZNONODE);
	cr_assert_eq(err_of(reap("c", true)), ZBADARGUMENTS);
	cr_assert_eq(err_of(reap("/zookeeper", true)), ZBADARGUMENTS);
	for (int i = 0; i < nout; i++)
		apply(&txns[i]); /* error txns apply as their error; the rest were applied */
	/* Delete the child (prepped, not applied): the view sees the container empty. */
	struct jute_out o;
	t_jout_begin(&o, &body);
	jout_str(&o, "/c/k");
	jout_i32(&o, -1);
	t_jout_done(&o);
	struct txn *del = run_req(ZOP_DELETE, false);
	struct txn *x = reap("/c", true);
	cr_assert_eq(x->hdr.type, ZOP_DELETECONTAINER, "err %d", err_of(x));
	cr_assert_eq(x->hdr.client_id, 0);
	/* A child created meanwhile (in the view) makes the next one NotEmpty. */
	cr_assert_eq(apply(del), ZOK);
	cr_assert_eq(apply(x), ZOK);
	cr_assert_null(look("/c"));
	cr_assert_eq(T.reapable_count, 0);
	cr_assert_eq(apply(x), ZNONODE, "replayed: nothing to delete");
	/* A TTL node refreshed by a setData in flight is not due any more. */
	must(create(ZOP_CREATETTL, "/t", ZCF_TTL, 100), ZOP_CREATETTL);
	now_ms = T0 + 150;
	t_jout_begin(&o, &body);
	t_txn_setdata(&o, "/t", "x", 1, -1);
	t_jout_done(&o);
	struct txn *set = run_req(ZOP_SETDATA, false);
	cr_assert_eq(err_of(reap("/t", true)), ZBADVERSION);
	cr_assert_eq(apply(set), ZOK);
	now_ms = T0 + 251;
	must(reap("/t", true), ZOP_DELETECONTAINER);
}

Test(container, list_survives_load_and_replay, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *c = create(ZOP_CREATECONTAINER, "/c", ZCF_CONTAINER, -1);
	cr_assert_eq(apply(c), ZOK);
	cr_assert_eq(apply(c), ZNODEEXISTS, "replay of the create");
	cr_assert_eq(T.reapable_count, 1);
	/* A snapshot overwrites a node in place: the list follows its owner. */
	struct tree_stat st = look("/c")->stat;
	st.ephemeral_owner = 0;
	cr_assert_eq(tree_load_node(&T, "/c", 2, NULL, -1, tree_acl_open, tree_acl_open_len, &st), 0);
	cr_assert_eq(T.reapable_count, 0);
	st.ephemeral_owner = tree_ttl_owner(77);
	cr_assert_eq(tree_load_node(&T, "/c", 2, NULL, -1, tree_acl_open, tree_acl_open_len, &st), 0);
	cr_assert_eq(tree_load_node(&T, "/d", 2, NULL, -1, tree_acl_open, tree_acl_open_len, &st), 0);
	cr_assert_eq(T.reapable_count, 2);
	const struct tree_node *out[4];
	cr_assert_eq(tree_reap_candidates(&T, st.mtime + 78, 0, true, out, 4), 2);
	struct txn_hdr h = { 0, 0, next_zxid++, T0, ZOP_DELETECONTAINER };
	struct zbuf b;
	zbuf_init(&b, 1 << 16);
	struct jute_out o;
	t_txn_begin(&o, &b, &h);
	jout_str(&o, "/c");
	struct tree_result res;
	cr_assert_eq(t_apply(&T, &b, &res), ZOK);
	cr_assert_eq(T.reapable_count, 1);
	zbuf_free(&b);
}
