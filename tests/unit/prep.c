/* Proves prep turns client writes into the txns ZooKeeper's PrepRequestProcessor makes:
 * the right fields, the right error code in an ErrorTxn when a check fails, sequential
 * names from the parent's cversion, and a view that includes writes prepped but not yet
 * applied (outstanding changes) until prep_applied forgets them. Multis: each op sees the
 * ops before it, a failed op leaves no change record of the multi behind, and the MultiTxn
 * holds ZooKeeper's sub-txns and errors. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "tree/multi.h"
#include "zab/prep.h"
#include "tests/unit/support/support.h"

#define NOUT 128

static struct tree T;
static struct prep P;
static struct zbuf outs[NOUT];
static struct txn txns[NOUT];
static int nout;
static int64_t next_zxid;
static struct zbuf body;
static const uint8_t *auth_ids; /* the requests' vector<Id>; NULL: none */
static size_t auth_ids_len;

static int64_t time_of(int64_t zxid) { return 1700000000000LL + (zxid & 0xffff); }

static void setup(void)
{
	cr_assert_eq(tree_init(&T, NULL, NULL), 0);
	prep_init(&P, &T);
	nout = 0;
	next_zxid = 0x300000001LL;
	zbuf_init(&body, 1 << 16);
	auth_ids = NULL;
	auth_ids_len = 0;
}

static void teardown(void)
{
	prep_free(&P);
	tree_free(&T);
	for (int i = 0; i < nout; i++)
		zbuf_free(&outs[i]);
	zbuf_free(&body);
}

enum acl_kind { ACL_OPEN, ACL_EMPTY, ACL_NULL, ACL_AUTH, ACL_DIGEST };

static void acl_out(struct jute_out *o, enum acl_kind k)
{
	switch (k) {
	case ACL_OPEN:
		jout_raw(o, tree_acl_open, tree_acl_open_len);
		break;
	case ACL_EMPTY:
		jout_i32(o, 0);
		break;
	case ACL_NULL:
		jout_i32(o, -1);
		break;
	case ACL_AUTH:
		jout_i32(o, 1);
		jout_i32(o, ZPERM_ALL);
		jout_str(o, "auth");
		jout_str(o, "");
		break;
	case ACL_DIGEST:
		jout_i32(o, 1);
		jout_i32(o, ZPERM_ALL);
		jout_str(o, "digest");
		jout_str(o, "user:c2VjcmV0");
		break;
	}
}

static void body_create(const char *path, const char *data, int32_t flags, enum acl_kind acl)
{
	struct jute_out o;
	t_jout_begin(&o, &body);
	jout_str(&o, path);
	jout_str(&o, data);
	acl_out(&o, acl);
	jout_i32(&o, flags);
	t_jout_done(&o);
}

static void body_delete(const char *path, int32_t version)
{
	struct jute_out o;
	t_jout_begin(&o, &body);
	jout_str(&o, path);
	jout_i32(&o, version);
	t_jout_done(&o);
}

static void body_setdata(const char *path, const char *data, int32_t version)
{
	struct jute_out o;
	t_jout_begin(&o, &body);
	t_txn_setdata(&o, path, data, t_len(data), version);
	t_jout_done(&o);
}

/* Prep the request in `body`, decode the txn and check its header. */
static struct txn *run(int32_t type, int64_t session)
{
	cr_assert_lt(nout, NOUT);
	int i = nout++;
	zbuf_init(&outs[i], 1 << 20);
	struct jute_out o;
	jout_init(&o, &outs[i]);
	int64_t zxid = next_zxid++;
	struct prep_req r = { .session = session, .cxid = 100 + i, .type = type,
			      .body = zbuf_head(&body), .body_len = zbuf_len(&body), .zxid = zxid,
			      .time_ms = time_of(zxid), .session_timeout_ms = 12345,
			      .auth = auth_ids, .auth_len = auth_ids_len };
	cr_assert_eq(prep_write(&P, &r, &o), 0);
	cr_assert_eq(txn_decode(zbuf_head(&outs[i]), zbuf_len(&outs[i]), &txns[i]), 0,
		     "prep wrote a txn that does not decode");
	struct txn *x = &txns[i];
	cr_assert_eq(x->hdr.client_id, session);
	cr_assert_eq(x->hdr.cxid, 100 + i);
	cr_assert_eq(x->hdr.zxid, zxid);
	cr_assert_eq(x->hdr.time_ms, time_of(zxid));
	return x;
}

static struct txn *create(const char *path, const char *data, int32_t flags, int64_t session)
{
	body_create(path, data, flags, ACL_OPEN);
	return run(ZOP_CREATE, session);
}

static struct txn *delete(const char *path, int32_t version)
{
	body_delete(path, version);
	return run(ZOP_DELETE, 1);
}

static struct txn *setdata(const char *path, const char *data, int32_t version)
{
	body_setdata(path, data, version);
	return run(ZOP_SETDATA, 1);
}

static struct txn *close_session(int64_t session)
{
	zbuf_reset(&body);
	return run(ZOP_CLOSESESSION, session);
}

static int apply(const struct txn *x)
{
	struct tree_result res;
	cr_assert_eq(tree_apply(&T, x, &res), 0);
	prep_applied(&P, x->hdr.zxid);
	return res.err;
}

static void expect_ok(const struct txn *x, int32_t type)
{
	cr_assert_eq(x->hdr.type, type, "type %d, want %d (err %d)", x->hdr.type, type,
		     x->hdr.type == ZOP_ERROR ? x->err : 0);
}

static void expect_err(const struct txn *x, int32_t err)
{
	cr_assert_eq(x->hdr.type, ZOP_ERROR, "want error %d, got type %d", err, x->hdr.type);
	cr_assert_eq(x->err, err, "error %d, want %d", x->err, err);
}

static bool path_is(const struct txn *x, const char *path)
{
	return x->path && (size_t)x->path_len == strlen(path) && memcmp(x->path, path, strlen(path)) == 0;
}

static bool lists(const struct txn *x, const char *path)
{
	struct jute_in it;
	const char *p;
	int32_t len;
	jin_init(&it, x->paths, x->paths_len);
	while (txn_next_path(&it, &p, &len))
		if ((size_t)len == strlen(path) && memcmp(p, path, (size_t)len) == 0)
			return true;
	return false;
}

/* ---- the txns ---- */

Test(prep, create_txn_fields, .init = setup, .fini = teardown, .timeout = 10)
{
	/* The creator authenticated as that digest user, so it may create under /a. */
	static const uint8_t ids[] = { 0, 0, 0, 1, 0, 0, 0, 6, 'd', 'i', 'g', 'e', 's', 't',
				       0, 0, 0, 13, 'u', 's', 'e', 'r', ':', 'c', '2', 'V', 'j', 'c',
				       'm', 'V', '0' };
	auth_ids = ids;
	auth_ids_len = sizeof ids;
	body_create("/a", "hello", 0, ACL_DIGEST);
	struct txn *x = run(ZOP_CREATE, 0x77);
	expect_ok(x, ZOP_CREATE);
	cr_assert(path_is(x, "/a"));
	cr_assert_eq(x->data_len, 5);
	cr_assert_arr_eq(x->data, "hello", 5);
	/* The ACL goes into the txn as the client sent it. */
	struct zbuf acl;
	struct jute_out o;
	zbuf_init(&acl, 256);
	jout_init(&o, &acl);
	acl_out(&o, ACL_DIGEST);
	cr_assert_eq(x->acl_len, zbuf_len(&acl));
	cr_assert_arr_eq(x->acl, zbuf_head(&acl), zbuf_len(&acl));
	zbuf_free(&acl);
	cr_assert_eq(x->ephemeral, false);
	cr_assert_eq(x->parent_cversion, 1, "root's stored cversion 0, plus one");
	cr_assert_eq(apply(x), ZOK);
	cr_assert_not_null(tree_lookup(&T, "/a", 2));

	struct txn *e = create("/a/e", NULL, ZCF_EPHEMERAL, 0x77);
	expect_ok(e, ZOP_CREATE);
	cr_assert_eq(e->ephemeral, true);
	cr_assert_null(e->data);
	cr_assert_eq(e->data_len, -1);
	cr_assert_eq(e->parent_cversion, 1);
	cr_assert_eq(apply(e), ZOK);
	cr_assert_eq(tree_lookup(&T, "/a/e", 4)->stat.ephemeral_owner, 0x77);

	body_create("/c2", "", 0, ACL_OPEN);
	struct txn *c2 = run(ZOP_CREATE2, 1);
	expect_ok(c2, ZOP_CREATE2);
	cr_assert_eq(c2->parent_cversion, 2);
	cr_assert_eq(c2->data_len, 0);
}

Test(prep, delete_and_setdata_txn_fields, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(apply(create("/a", "x", 0, 1)), ZOK);
	struct txn *s = setdata("/a", "new", -1);
	expect_ok(s, ZOP_SETDATA);
	cr_assert(path_is(s, "/a"));
	cr_assert_eq(s->data_len, 3);
	cr_assert_arr_eq(s->data, "new", 3);
	cr_assert_eq(s->version, 1, "the new version, not the expected one");
	cr_assert_eq(apply(s), ZOK);
	struct txn *s2 = setdata("/a", NULL, 1);
	expect_ok(s2, ZOP_SETDATA);
	cr_assert_eq(s2->version, 2);
	cr_assert_null(s2->data);
	cr_assert_eq(apply(s2), ZOK);

	struct txn *d = delete("/a", 2);
	expect_ok(d, ZOP_DELETE);
	cr_assert(path_is(d, "/a"));
	cr_assert_eq(apply(d), ZOK);
	cr_assert_null(tree_lookup(&T, "/a", 2));
}

Test(prep, create_and_close_session_txns, .init = setup, .fini = teardown, .timeout = 10)
{
	zbuf_reset(&body);
	struct txn *cs = run(ZOP_CREATESESSION, 0x55);
	expect_ok(cs, ZOP_CREATESESSION);
	cr_assert_eq(cs->timeout_ms, 12345);

	cr_assert_eq(apply(create("/p", NULL, 0, 0x55)), ZOK);
	cr_assert_eq(apply(create("/p/e1", NULL, ZCF_EPHEMERAL, 0x55)), ZOK);
	cr_assert_eq(apply(create("/e2", NULL, ZCF_EPHEMERAL, 0x55)), ZOK);
	cr_assert_eq(apply(create("/o", NULL, ZCF_EPHEMERAL, 0x66)), ZOK);
	struct txn *c = close_session(0x55);
	expect_ok(c, ZOP_CLOSESESSION);
	cr_assert_eq(c->npaths, 2);
	cr_assert(lists(c, "/p/e1") && lists(c, "/e2"));
	cr_assert(!lists(c, "/o"));
	cr_assert_eq(apply(c), ZOK);
	cr_assert_null(tree_lookup(&T, "/e2", 3));
	cr_assert_not_null(tree_lookup(&T, "/o", 2));

	struct txn *empty = close_session(0x99);
	expect_ok(empty, ZOP_CLOSESESSION);
	cr_assert_eq(empty->npaths, 0);
}

/* ---- failed checks ---- */

Test(prep, failed_checks_become_error_txns, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(apply(create("/a", "x", 0, 1)), ZOK);
	cr_assert_eq(apply(create("/a/b", "x", 0, 1)), ZOK);
	cr_assert_eq(apply(create("/eph", "x", ZCF_EPHEMERAL, 9)), ZOK);

	expect_err(create("/zookeeper", NULL, 0, 1), ZNODEEXISTS);
	expect_err(create("/a", NULL, 0, 1), ZNODEEXISTS);
	expect_err(create("/", NULL, 0, 1), ZNODEEXISTS);
	expect_err(create("/no/x", NULL, 0, 1), ZNONODE);
	expect_err(create("/eph/child", NULL, 0, 1), ZNOCHILDRENFOREPHEMERALS);
	expect_err(create("/eph/child", NULL, ZCF_SEQUENTIAL, 9), ZNOCHILDRENFOREPHEMERALS);
	expect_err(setdata("/a", "y", 5), ZBADVERSION);
	expect_err(delete("/a/b", 3), ZBADVERSION);
	expect_err(delete("/a", -1), ZNOTEMPTY);
	expect_err(delete("/a", 0), ZNOTEMPTY);
	expect_err(delete("/missing", -1), ZNONODE);
	expect_err(delete("/no/x", -1), ZNONODE);
	expect_err(setdata("/missing", "y", -1), ZNONODE);
	expect_err(create("a", NULL, 0, 1), ZBADARGUMENTS);
	expect_err(create("", NULL, 0, 1), ZBADARGUMENTS);
	expect_err(create("/a/.", NULL, 0, 1), ZBADARGUMENTS);
	expect_err(create("/a/b/", NULL, 0, 1), ZBADARGUMENTS);
	expect_err(delete("a", -1), ZBADARGUMENTS);
	expect_err(delete("/zookeeper", -1), ZBADARGUMENTS);
	expect_err(delete("/zookeeper/quota", -1), ZBADARGUMENTS);
	expect_err(delete("/", -1), ZBADARGUMENTS);
	expect_err(setdata("a", "y", -1), ZBADARGUMENTS);
	expect_err(create("/bad", NULL, 7, 1), ZBADARGUMENTS);
	expect_err(create("/bad", NULL, -1, 1), ZBADARGUMENTS);
	expect_err(create("/ctr", NULL, ZCF_TTL, 1), ZUNIMPLEMENTED); /* no extendedTypesEnabled */

	body_create("/acl", NULL, 0, ACL_EMPTY);
	expect_err(run(ZOP_CREATE, 1), ZINVALIDACL);
	body_create("/acl", NULL, 0, ACL_NULL);
	expect_err(run(ZOP_CREATE, 1), ZINVALIDACL);
	body_create("/acl", NULL, 0, ACL_AUTH);
	expect_err(run(ZOP_CREATE, 1), ZINVALIDACL);

	/* A body cut short. */
	body_create("/trunc", "x", 0, ACL_OPEN);
	body.tail -= 2;
	expect_err(run(ZOP_CREATE, 1), ZMARSHALLINGERROR);
	zbuf_reset(&body);
	expect_err(run(ZOP_DELETE, 1), ZMARSHALLINGERROR);
	zbuf_reset(&body);
	expect_err(run(ZOP_SETACL, 1), ZMARSHALLINGERROR);
	/* Not a write prep knows. */
	zbuf_reset(&body);
	expect_err(run(ZOP_GETACL, 1), ZUNIMPLEMENTED);

	/* Every failed check left the view alone. */
	cr_assert_eq(P.count, 0, "failed checks must not leave change records");
	struct txn *ok = create("/new", NULL, 0, 1);
	expect_ok(ok, ZOP_CREATE);
	cr_assert_eq(ok->parent_cversion, 3);
}

Test(prep, error_txns_apply_as_their_error, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *x = create("/zookeeper", NULL, 0, 1);
	expect_err(x, ZNODEEXISTS);
	cr_assert_eq(apply(x), ZNODEEXISTS);
	cr_assert_eq(T.last_zxid, x->hdr.zxid, "an error txn still takes its zxid");
}

/* ---- sequential ---- */

Test(prep, sequential_suffix_is_parent_stored_cversion, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *r = create("/s", NULL, ZCF_SEQUENTIAL, 1);
	expect_ok(r, ZOP_CREATE);
	cr_assert(path_is(r, "/s0000000000"), "%.*s", r->path_len, r->path);
	cr_assert_eq(apply(r), ZOK);

	cr_assert_eq(apply(create("/q", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(create("/q/a", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(create("/q/b", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(create("/q/c", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(delete("/q/b", -1)), ZOK);
	/* Stored cversion counts creates: 3, though the client sees 2*3-2 = 4. */
	struct txn *s = create("/q/n-", "d", ZCF_SEQUENTIAL | ZCF_EPHEMERAL, 5);
	expect_ok(s, ZOP_CREATE);
	cr_assert(path_is(s, "/q/n-0000000003"), "%.*s", s->path_len, s->path);
	cr_assert_eq(s->ephemeral, true);
	cr_assert_eq(s->parent_cversion, 4);
	/* The next one, before the first is applied, sees it. */
	struct txn *s2 = create("/q/n-", "d", ZCF_SEQUENTIAL, 5);
	cr_assert(path_is(s2, "/q/n-0000000004"), "%.*s", s2->path_len, s2->path);
	cr_assert_eq(s2->parent_cversion, 5);
	cr_assert_eq(apply(s), ZOK);
	cr_assert_eq(apply(s2), ZOK);
	cr_assert_not_null(tree_lookup(&T, "/q/n-0000000004", 15));
	/* A sequential create under "/q/" names nodes "/q/0000000005". */
	struct txn *s3 = create("/q/", NULL, ZCF_SEQUENTIAL, 5);
	cr_assert(path_is(s3, "/q/0000000005"), "%.*s", s3->path_len, s3->path);
}

/* ---- outstanding changes ---- */

Test(prep, outstanding_creates_see_each_other, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *a = create("/o", "1", 0, 1);
	expect_ok(a, ZOP_CREATE);
	expect_err(create("/o", "2", 0, 1), ZNODEEXISTS);
	struct txn *c = create("/o/c", NULL, 0, 1);
	expect_ok(c, ZOP_CREATE);
	cr_assert_eq(c->parent_cversion, 1);
	struct txn *c2 = create("/o/d", NULL, 0, 1);
	cr_assert_eq(c2->parent_cversion, 2);
	struct txn *b = create("/b", NULL, 0, 1);
	cr_assert_eq(b->parent_cversion, 2, "the root's view counts the pending /o");
	expect_err(delete("/o", -1), ZNOTEMPTY);
	struct txn *e = create("/eph", NULL, ZCF_EPHEMERAL, 3);
	expect_err(create("/eph/x", NULL, 0, 3), ZNOCHILDRENFOREPHEMERALS);
	struct txn *s = setdata("/o/c", "v", 0);
	expect_ok(s, ZOP_SETDATA);
	cr_assert_eq(s->version, 1);
	expect_err(setdata("/o/c", "v", 0), ZBADVERSION);
	struct txn *s2 = setdata("/o/c", "w", 1);
	cr_assert_eq(s2->version, 2);

	/* Apply everything in order: the tree agrees with what prep saw. */
	struct txn *all[] = { a, c, c2, b, e, s, s2 };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		cr_assert_eq(apply(all[i]), ZOK, "txn %zu", i);
	cr_assert_eq(P.count, 0, "every record dropped once applied");
	cr_assert_eq(P.latest.count, 0);
	cr_assert_null(P.head);
	struct zk_stat st;
	tree_stat(tree_lookup(&T, "/o/c", 4), &st);
	cr_assert_eq(st.p.version, 2);
	cr_assert_eq(tree_lookup(&T, "/o", 2)->stat.cversion, 2);
}

Test(prep, outstanding_delete_after_create, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *a = create("/d", NULL, 0, 1);
	struct txn *d = delete("/d", 0);
	expect_ok(d, ZOP_DELETE);
	expect_err(delete("/d", -1), ZNONODE);
	expect_err(setdata("/d", "x", -1), ZNONODE);
	struct txn *again = create("/d", NULL, 0, 1);
	expect_ok(again, ZOP_CREATE);
	cr_assert_eq(again->parent_cversion, 2);
	cr_assert_eq(apply(a), ZOK);
	cr_assert_eq(apply(d), ZOK);
	cr_assert_eq(apply(again), ZOK);
	cr_assert_not_null(tree_lookup(&T, "/d", 2));
	/* The parent's view after a pending delete of its only child: deletable. */
	cr_assert_eq(apply(create("/p", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(create("/p/c", NULL, 0, 1)), ZOK);
	struct txn *dc = delete("/p/c", -1);
	struct txn *dp = delete("/p", -1);
	expect_ok(dp, ZOP_DELETE);
	cr_assert_eq(apply(dc), ZOK);
	cr_assert_eq(apply(dp), ZOK);
}

Test(prep, applied_drops_only_records_up_to_zxid, .init = setup, .fini = teardown, .timeout = 10)
{
	struct txn *a = create("/a", NULL, 0, 1);
	struct txn *b = create("/b", NULL, 0, 1);
	struct txn *c = create("/c", NULL, 0, 1);
	cr_assert_eq(P.count, 6, "a create records the parent and the node");
	cr_assert_eq(apply(a), ZOK); /* prep_applied(a's zxid) */
	cr_assert_eq(P.count, 4);
	cr_assert_eq(P.latest.count, 3, "root (newest: /c's), /b, /c");
	expect_err(create("/a", NULL, 0, 1), ZNODEEXISTS); /* from the tree now */
	expect_err(create("/b", NULL, 0, 1), ZNODEEXISTS); /* still from the record */
	cr_assert_eq(apply(b), ZOK);
	cr_assert_eq(apply(c), ZOK);
	cr_assert_eq(P.count, 0);
	cr_assert_eq(P.latest.count, 0);
	/* prep_applied without apply: the records are forgotten, so the view falls back on the
	 * tree. This is why the caller must apply before it calls prep_applied. */
	struct txn *x = create("/x", NULL, 0, 1);
	prep_applied(&P, x->hdr.zxid);
	expect_ok(create("/x", NULL, 0, 1), ZOP_CREATE);
}

Test(prep, out_of_buffer_preps_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Regression (fixed): zab/prep.c prep_create/prep_delete/prep_setdata add their change records even
	 * when the txn did not fit `out`; prep_write then returns -ENOBUFS ("nothing was
	 * prepped") but the view keeps the phantom change, so a retry of the same create is
	 * answered NodeExists and the parent's cversion is off by one. */
	struct zbuf small;
	zbuf_init(&small, 40); /* the 32-byte header fits, the body does not */
	struct jute_out o;
	jout_init(&o, &small);
	body_create("/r", "data", 0, ACL_OPEN);
	int64_t zxid = next_zxid++;
	struct prep_req r = { .session = 1, .cxid = 1, .type = ZOP_CREATE, .body = zbuf_head(&body),
			      .body_len = zbuf_len(&body), .zxid = zxid, .time_ms = 1 };
	cr_assert_eq(prep_write(&P, &r, &o), -ENOBUFS);
	cr_assert_eq(zbuf_len(&small), 0, "nothing written");
	zbuf_free(&small);
	cr_assert_eq(P.count, 0, "nothing prepped");
	struct txn *retry = create("/r", "data", 0, 1);
	expect_ok(retry, ZOP_CREATE);
	cr_assert_eq(retry->parent_cversion, 1);
}

/* ---- closeSession and the outstanding view ---- */

Test(prep, close_session_lists_pending_ephemerals, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(apply(create("/t1", NULL, ZCF_EPHEMERAL, 0xA)), ZOK);
	cr_assert_eq(apply(create("/t2", NULL, ZCF_EPHEMERAL, 0xA)), ZOK);
	struct txn *p1 = create("/p1", NULL, ZCF_EPHEMERAL, 0xA);   /* pending */
	struct txn *o1 = create("/o1", NULL, ZCF_EPHEMERAL, 0xB);   /* another session */
	struct txn *d2 = delete("/t2", -1);                          /* pending delete */
	struct txn *c = close_session(0xA);
	expect_ok(c, ZOP_CLOSESESSION);
	cr_assert(lists(c, "/t1"));
	cr_assert(lists(c, "/p1"), "a pending create of the session is listed");
	cr_assert(!lists(c, "/t2"), "a pending delete is not");
	cr_assert(!lists(c, "/o1"));
	cr_assert_eq(c->npaths, 2);
	/* After the close, the view has those nodes gone. */
	struct txn *again = create("/p1", NULL, 0, 0xB);
	expect_ok(again, ZOP_CREATE);
	struct txn *all[] = { p1, o1, d2, c, again };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		cr_assert_eq(apply(all[i]), ZOK, "txn %zu", i);
	cr_assert_not_null(tree_lookup(&T, "/p1", 3));
	cr_assert_eq(tree_lookup(&T, "/p1", 3)->stat.ephemeral_owner, 0);
	cr_assert_null(tree_lookup(&T, "/t1", 3));
	cr_assert_not_null(tree_lookup(&T, "/o1", 3));
}

Test(prep, close_session_frees_parent_in_view, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(apply(create("/p", NULL, 0, 1)), ZOK);
	cr_assert_eq(apply(create("/p/e", NULL, ZCF_EPHEMERAL, 0xA)), ZOK);
	struct txn *c = close_session(0xA);
	struct txn *dp = delete("/p", -1);
	expect_ok(dp, ZOP_DELETE);
	cr_assert_eq(apply(c), ZOK);
	cr_assert_eq(apply(dp), ZOK);
	cr_assert_null(tree_lookup(&T, "/p", 2));
}

Test(prep, close_session_lists_pending_ephemeral_after_setdata, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Regression (fixed): zab/prep.c prep_close_session lists a pending ephemeral only from a record whose
	 * czxid == zxid (the create's own record). When a setData on the node was prepped after
	 * the create, the newest record is the setData's and the node is left out of the txn
	 * (ZooKeeper adds every outstanding record owned by the session). The view then keeps
	 * the node alive after the close: a create of the same path is refused NodeExists. */
	struct txn *e = create("/e", NULL, ZCF_EPHEMERAL, 0xA);
	struct txn *s = setdata("/e", "v", -1);
	struct txn *c = close_session(0xA);
	expect_ok(c, ZOP_CLOSESESSION);
	struct txn *again = create("/e", NULL, 0, 0xB);
	cr_assert(lists(c, "/e"), "the session's pending ephemeral must be listed");
	cr_assert_eq(c->npaths, 1);
	expect_ok(again, ZOP_CREATE);
	(void)e;
	(void)s;
}

Test(prep, close_session_skips_path_recreated_by_other_session, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Regression (fixed): zab/prep.c prep_close_session lists every tree ephemeral of the session whose
	 * newest record "exists", without checking who owns that record. If the session's node
	 * was deleted and re-created by another session (both pending), the closeSession txn
	 * lists the path and applying it deletes the other session's node. */
	cr_assert_eq(apply(create("/lock", NULL, ZCF_EPHEMERAL, 0xA)), ZOK);
	struct txn *d = delete("/lock", -1);
	struct txn *b = create("/lock", NULL, ZCF_EPHEMERAL, 0xB);
	expect_ok(b, ZOP_CREATE);
	struct txn *c = close_session(0xA);
	expect_ok(c, ZOP_CLOSESESSION);
	cr_assert(!lists(c, "/lock"), "/lock now belongs to session B");
	cr_assert_eq(c->npaths, 0);
	cr_assert_eq(apply(d), ZOK);
	cr_assert_eq(apply(b), ZOK);
	cr_assert_eq(apply(c), ZOK);
	struct tree_node *n = tree_lookup(&T, "/lock", 5);
	cr_assert_not_null(n, "closing session A deleted session B's ephemeral");
	cr_assert_eq(n->stat.ephemeral_owner, 0xB);
}

Test(prep, is_write, .timeout = 10)
{
	static const int32_t w[] = { ZOP_CREATE, ZOP_CREATE2, ZOP_DELETE, ZOP_SETDATA, ZOP_SETACL,
				     ZOP_CREATESESSION, ZOP_CLOSESESSION, ZOP_MULTI };
	static const int32_t r[] = { ZOP_GETDATA, ZOP_EXISTS, ZOP_GETCHILDREN, ZOP_PING, ZOP_SYNC,
				     ZOP_MULTIREAD, ZOP_CHECK };
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		cr_assert(prep_is_write(w[i]), "op %d", w[i]);
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
		cr_assert(!prep_is_write(r[i]), "op %d", r[i]);
}

/* Regression (fuzz_request, tests/fuzz/regressions/request-type0-with-err.bin): opcode 0 was
 * mistaken for "the caller decided the error" and prepped to nothing. Any non-write opcode is
 * an ErrorTxn{Unimplemented}; a caller-decided error is an ErrorTxn{err} whatever the type. */
Test(prep, non_write_opcodes_and_caller_errors_are_error_txns, .init = setup, .fini = teardown, .timeout = 10)
{
	zbuf_reset(&body);
	struct txn *x = run(0, 0x55);
	expect_err(x, ZUNIMPLEMENTED);
	body_create("/x", "d", 0, ACL_OPEN);
	cr_assert_lt(nout, NOUT);
	int i = nout++;
	zbuf_init(&outs[i], 1 << 20);
	struct jute_out o;
	jout_init(&o, &outs[i]);
	struct prep_req r = { .session = 0x55, .cxid = 7, .type = ZOP_CREATE, .body = zbuf_head(&body),
			      .body_len = zbuf_len(&body), .zxid = next_zxid++, .time_ms = 1,
			      .err = ZSESSIONEXPIRED };
	cr_assert_eq(prep_write(&P, &r, &o), 0);
	cr_assert_eq(txn_decode(zbuf_head(&outs[i]), zbuf_len(&outs[i]), &txns[i]), 0);
	expect_err(&txns[i], ZSESSIONEXPIRED);
	cr_assert_eq(P.count, 0, "a refused create records no change");
}

/* ---- multi ---- */

/* A MultiOperationRecord in `body`: mbegin, then ops, then mend. */
static struct jute_out mb;

static void mbegin(void) { t_jout_begin(&mb, &body); }
static void mhdr(int32_t type) { jout_i32(&mb, type); jout_bool(&mb, false); jout_i32(&mb, -1); }
static void mend(void) { jout_i32(&mb, -1); jout_bool(&mb, true); jout_i32(&mb, -1); t_jout_done(&mb); }

static void m_create(const char *path, const char *data, int32_t flags)
{
	mhdr(ZOP_CREATE);
	jout_str(&mb, path);
	jout_str(&mb, data);
	acl_out(&mb, ACL_OPEN);
	jout_i32(&mb, flags);
}

static void m_path_int(int32_t type, const char *path, int32_t v) /* delete, check */
{
	mhdr(type);
	jout_str(&mb, path);
	jout_i32(&mb, v);
}

static void m_setdata(const char *path, const char *data, int32_t version)
{
	mhdr(ZOP_SETDATA);
	t_txn_setdata(&mb, path, data, t_len(data), version);
}

/* The i-th op of a multi txn, decoded. */
static struct txn sub_of(const struct txn *x, int i)
{
	struct jute_in it;
	int32_t type, len;
	const uint8_t *b;
	jin_init(&it, x->subs, x->subs_len);
	for (int k = 0; k <= i; k++)
		cr_assert(txn_next_sub(&it, &type, &b, &len), "op %d missing", i);
	struct txn sub;
	cr_assert_eq(txn_decode_sub(&x->hdr, type, b, (size_t)len, &sub), 0);
	return sub;
}

static void expect_sub_err(const struct txn *x, int i, int32_t err)
{
	struct txn s = sub_of(x, i);
	cr_assert_eq(s.hdr.type, ZOP_ERROR, "op %d: type %d, want an error", i, s.hdr.type);
	cr_assert_eq(s.err, err, "op %d: error %d, want %d", i, s.err, err);
}

Test(prep, multi_ops_see_the_ops_before_them, .init = setup, .fini = teardown, .timeout = 10)
{
	mbegin();
	m_create("/m", "d", 0);
	m_create("/m/s-", NULL, ZCF_SEQUENTIAL);
	m_create("/m/s-", NULL, ZCF_SEQUENTIAL);
	m_setdata("/m", "e", 0);
	m_path_int(ZOP_CHECK, "/m", 1);
	m_path_int(ZOP_DELETE, "/m/s-0000000000", 0);
	mhdr(ZOP_CREATE2); /* answered and logged as a create */
	jout_str(&mb, "/m/c2");
	jout_str(&mb, NULL);
	acl_out(&mb, ACL_OPEN);
	jout_i32(&mb, 0);
	mend();
	struct txn *x = run(ZOP_MULTI, 0x42);
	expect_ok(x, ZOP_MULTI);
	cr_assert_eq(x->nsubs, 7);
	int32_t types[] = { ZOP_CREATE, ZOP_CREATE, ZOP_CREATE, ZOP_SETDATA, ZOP_CHECK, ZOP_DELETE, ZOP_CREATE };
	for (int i = 0; i < 7; i++)
		cr_assert_eq(sub_of(x, i).hdr.type, types[i], "op %d", i);
	struct txn s1 = sub_of(x, 1), s2 = sub_of(x, 2), s3 = sub_of(x, 3), s4 = sub_of(x, 4);
	cr_assert(path_is(&s1, "/m/s-0000000000"));
	cr_assert(path_is(&s2, "/m/s-0000000001"), "the second sees the first's cversion");
	cr_assert_eq(s2.parent_cversion, 2);
	cr_assert_eq(s3.version, 1);
	cr_assert_eq(s4.version, 2, "CheckVersionTxn carries version + 1");
	cr_assert_eq(sub_of(x, 6).parent_cversion, 3);
	/* Every record carries the multi's zxid; later writes see the multi's effects. */
	for (struct change *c = P.head; c; c = c->next)
		cr_assert_eq(c->zxid, x->hdr.zxid);
	expect_err(create("/m/s-0000000001", NULL, 0, 1), ZNODEEXISTS);
	expect_ok(delete("/m/s-0000000001", 0), ZOP_DELETE);
	/* Applied, the tree agrees with what prep saw. */
	cr_assert_eq(apply(x), ZOK);
	cr_assert_null(tree_lookup(&T, "/m/s-0000000000", 15));
	cr_assert_not_null(tree_lookup(&T, "/m/c2", 5));
	cr_assert_eq(tree_lookup(&T, "/m", 2)->stat.version, 1);
}

Test(prep, failed_multi_rolls_back_its_records, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Pending before the multi: /x (created, then set) and a child of the root. */
	struct txn *a = create("/x", "a", 0, 1);
	struct txn *b = setdata("/x", "b", 0);
	size_t count = P.count, paths = P.latest.count;
	struct change *tail = P.tail;
	mbegin();
	m_setdata("/x", "c", 1);
	m_create("/x/s-", NULL, ZCF_SEQUENTIAL);
	m_setdata("/x", "d", 2);
	m_create("/y", NULL, 0);
	m_path_int(ZOP_CHECK, "/x", 1); /* /x is at version 3 in the multi's view */
	m_create("/z", NULL, 0);
	m_path_int(ZOP_DELETE, "/nonexistent", -1);
	mend();
	struct txn *x = run(ZOP_MULTI, 0x42);
	expect_ok(x, ZOP_MULTI);
	cr_assert_eq(x->nsubs, 7);
	/* The ops before the failing one stay as prepped; it and the rest are errors. */
	cr_assert_eq(sub_of(x, 0).hdr.type, ZOP_SETDATA);
	cr_assert_eq(sub_of(x, 3).hdr.type, ZOP_CREATE);
	expect_sub_err(x, 4, ZBADVERSION);
	expect_sub_err(x, 5, ZRUNTIMEINCONSISTENCY);
	expect_sub_err(x, 6, ZRUNTIMEINCONSISTENCY);
	/* Nothing of the multi is left in the outstanding view. */
	cr_assert_eq(P.count, count);
	cr_assert_eq(P.latest.count, paths);
	cr_assert_eq(P.tail, tail);
	cr_assert_null(P.tail->next);
	for (struct change *c = P.head; c; c = c->next)
		cr_assert_neq(c->zxid, x->hdr.zxid);
	expect_err(setdata("/x", "e", 2), ZBADVERSION); /* /x is at version 1 again */
	struct txn *s = create("/x/s-", NULL, ZCF_SEQUENTIAL, 1);
	cr_assert(path_is(s, "/x/s-0000000000"), "the parent's cversion is back too");
	expect_err(delete("/y", -1), ZNONODE);
	/* Applying it changes nothing. */
	cr_assert_eq(apply(a), ZOK);
	cr_assert_eq(apply(b), ZOK);
	cr_assert_eq(apply(x), ZBADVERSION);
	cr_assert_null(tree_lookup(&T, "/y", 2));
	cr_assert_eq(tree_lookup(&T, "/x", 2)->stat.version, 1);
	cr_assert_eq(apply(s), ZOK);
	cr_assert_eq(P.count, 0);
	cr_assert_eq(P.latest.count, 0);
}

Test(prep, failed_first_op_and_empty_multi, .init = setup, .fini = teardown, .timeout = 10)
{
	mbegin();
	m_create("/a/b", NULL, 0);
	m_create("/a", NULL, 0);
	mend();
	struct txn *x = run(ZOP_MULTI, 1);
	expect_ok(x, ZOP_MULTI);
	expect_sub_err(x, 0, ZNONODE);
	expect_sub_err(x, 1, ZRUNTIMEINCONSISTENCY);
	cr_assert_eq(P.count, 0);
	mbegin();
	mend();
	x = run(ZOP_MULTI, 1);
	expect_ok(x, ZOP_MULTI);
	cr_assert_eq(x->nsubs, 0, "an empty multi is a txn too");
	cr_assert_eq(apply(x), ZOK);
}

Test(prep, malformed_multi_is_one_marshalling_error, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Cut short (no end marker). */
	mbegin();
	m_create("/a", NULL, 0);
	t_jout_done(&mb);
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	/* An op type a multi cannot hold (exists). */
	mbegin();
	mhdr(ZOP_EXISTS);
	jout_str(&mb, "/a");
	jout_bool(&mb, false);
	mend();
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	/* Reads mixed with writes, and reads only. */
	mbegin();
	m_create("/a", NULL, 0);
	mhdr(ZOP_GETDATA);
	jout_str(&mb, "/a");
	jout_bool(&mb, false);
	mend();
	cr_assert_eq(multi_shape(zbuf_head(&body), zbuf_len(&body)), MULTI_SHAPE_MALFORMED);
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	mbegin();
	mhdr(ZOP_GETCHILDREN);
	jout_str(&mb, "/");
	jout_bool(&mb, true);
	mend();
	cr_assert_eq(multi_shape(zbuf_head(&body), zbuf_len(&body)), MULTI_SHAPE_READS);
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	/* TTL flags on a plain create, once reached: nothing of the ops before it stays. */
	mbegin();
	m_create("/a", NULL, 0);
	m_create("/t", NULL, ZCF_TTL);
	mend();
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	cr_assert_eq(P.count, 0);
	/* ... but not when an op before it failed. */
	mbegin();
	m_path_int(ZOP_DELETE, "/nonexistent", -1);
	m_create("/t", NULL, ZCF_TTL);
	mend();
	struct txn *x = run(ZOP_MULTI, 1);
	expect_sub_err(x, 0, ZNONODE);
	expect_sub_err(x, 1, ZRUNTIMEINCONSISTENCY);
	/* A null path: ZooKeeper answers without a txn; the caller asks first. */
	mbegin();
	m_path_int(ZOP_DELETE, NULL, -1);
	mend();
	cr_assert(!prep_multi_logged(zbuf_head(&body), zbuf_len(&body)));
	expect_err(run(ZOP_MULTI, 1), ZMARSHALLINGERROR);
	mbegin();
	m_path_int(ZOP_DELETE, "/a", -1);
	mend();
	cr_assert(prep_multi_logged(zbuf_head(&body), zbuf_len(&body)));
	cr_assert_eq(P.count, 0);
}

Test(prep, multi_of_a_closing_session_fails_at_its_first_op, .init = setup, .fini = teardown, .timeout = 10)
{
	mbegin();
	m_create("/a", NULL, 0);
	m_create("/b", NULL, 0);
	mend();
	cr_assert_lt(nout, NOUT);
	int i = nout++;
	zbuf_init(&outs[i], 1 << 20);
	struct jute_out o;
	jout_init(&o, &outs[i]);
	struct prep_req r = { .session = 0x55, .cxid = 7, .type = ZOP_MULTI, .body = zbuf_head(&body),
			      .body_len = zbuf_len(&body), .zxid = next_zxid++, .time_ms = 1,
			      .err = ZSESSIONEXPIRED };
	cr_assert_eq(prep_write(&P, &r, &o), 0);
	cr_assert_eq(txn_decode(zbuf_head(&outs[i]), zbuf_len(&outs[i]), &txns[i]), 0);
	expect_ok(&txns[i], ZOP_MULTI);
	expect_sub_err(&txns[i], 0, ZSESSIONEXPIRED);
	expect_sub_err(&txns[i], 1, ZRUNTIMEINCONSISTENCY);
	cr_assert_eq(P.count, 0);
}

Test(prep, multi_out_of_buffer_preps_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	mbegin();
	for (int k = 0; k < 20; k++) {
		char p[16];
		snprintf(p, sizeof p, "/n%d", k);
		m_create(p, "0123456789", 0);
	}
	mend();
	struct zbuf small;
	zbuf_init(&small, 300); /* a few ops fit, not all */
	struct jute_out o;
	jout_init(&o, &small);
	struct prep_req r = { .session = 1, .cxid = 1, .type = ZOP_MULTI, .body = zbuf_head(&body),
			      .body_len = zbuf_len(&body), .zxid = next_zxid++, .time_ms = 1 };
	cr_assert_eq(prep_write(&P, &r, &o), -ENOBUFS);
	cr_assert_eq(zbuf_len(&small), 0, "nothing written");
	cr_assert_eq(P.count, 0, "nothing prepped");
	cr_assert_eq(P.latest.count, 0);
	zbuf_free(&small);
	expect_ok(create("/n0", NULL, 0, 1), ZOP_CREATE);
}
