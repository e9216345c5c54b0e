/* Proves the quota rules of tree/quota.h, the pure parts: StatsTrack text parsed and written
 * as ZooKeeper 3.8 does (count and bytes first, other keys after "=" in key order, a missing
 * key -1, unparsable pairs skipped), stats nodes recounted when created and kept current by
 * creates, deletes and setData under the deepest quota root, limits nodes making and unmaking
 * roots, hard limits refusing and soft ones not, and the recount after a snapshot load. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "net/proto.h"
#include "tree/quota.h"
#include "tree/tree.h"
#include "zab/prep.h"
#include "tests/unit/support/support.h"

static struct tree T;
static int64_t zxid;

static void setup(void)
{
	cr_assert_eq(tree_init(&T, NULL, NULL), 0);
	zxid = 0x100000001LL;
}

static void teardown(void) { tree_free(&T); }

static void fmt_is(const char *in, const char *want)
{
	struct quota_track q;
	char buf[256];
	quota_parse(&q, (const uint8_t *)in, (int32_t)strlen(in));
	size_t n = quota_format(&q, buf, sizeof buf);
	cr_assert_eq(n, strlen(want), "'%s' -> '%s'", in, buf);
	cr_assert_str_eq(buf, want, "from '%s'", in);
}

Test(quota, stats_text_round_trips)
{
	fmt_is("count=3,bytes=7", "count=3,bytes=7");
	fmt_is("bytes=7", "count=-1,bytes=7");
	fmt_is("", "count=-1,bytes=-1");
	fmt_is("count=-1,bytes=-1=;countHardLimit=2;byteHardLimit=10",
	       "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2");
	fmt_is("count=1;;bytes=2,,foo=3", "count=1,bytes=2=;foo=3");
	fmt_is("count==5,bytes=x,junk,=4,bytes=9", "count=-1,bytes=9=;=4");
	fmt_is("count=9999999999999999999999,bytes=1=2", "count=-1,bytes=1");
	struct quota_track q;
	const char *many = "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10";
	quota_parse(&q, (const uint8_t *)many, (int32_t)strlen(many));
	cr_assert_eq(q.n, QUOTA_MAX_KEYS, "bounded");
	quota_parse(&q, NULL, -1);
	cr_assert_eq(q.n, 0);
}

/* Build the txn of `type` on path and apply it; returns its result. */
static int apply_op(int32_t type, const char *path, const char *data)
{
	struct zbuf b;
	zbuf_init(&b, 1 << 16);
	struct jute_out o;
	struct txn_hdr h = { 1, 1, zxid++, 1000, type };
	t_txn_begin(&o, &b, &h);
	if (type == ZOP_CREATE)
		t_txn_create(&o, path, data, t_len(data), tree_acl_open, tree_acl_open_len, false, -1);
	else if (type == ZOP_SETDATA)
		t_txn_setdata(&o, path, data, t_len(data), 1);
	else
		jout_str(&o, path);
	struct tree_result res;
	int err = t_apply(&T, &b, &res);
	zbuf_free(&b);
	return err;
}

static int create(const char *path, const char *data) { return apply_op(ZOP_CREATE, path, data); }
static int delete(const char *path) { return apply_op(ZOP_DELETE, path, NULL); }
static int setdata(const char *path, const char *data) { return apply_op(ZOP_SETDATA, path, data); }

static void stats_are(const char *qpath, const char *want)
{
	char p[256];
	snprintf(p, sizeof p, "/zookeeper/quota%s/zookeeper_stats", qpath);
	struct tree_node *n = tree_lookup(&T, p, strlen(p));
	cr_assert_not_null(n, "%s", p);
	cr_assert_eq(n->data_len, (int32_t)strlen(want), "%s: '%.*s', want '%s'", qpath,
		     n->data_len, (const char *)n->data, want);
	cr_assert_arr_eq(n->data, want, strlen(want));
}

static void set_quota(const char *qpath, const char *limits)
{
	char p[256];
	snprintf(p, sizeof p, "/zookeeper/quota%s", qpath);
	cr_assert_eq(create(p, NULL), ZOK);
	snprintf(p, sizeof p, "/zookeeper/quota%s/zookeeper_limits", qpath);
	cr_assert_eq(create(p, limits), ZOK);
	snprintf(p, sizeof p, "/zookeeper/quota%s/zookeeper_stats", qpath);
	cr_assert_eq(create(p, "count=0,bytes=0"), ZOK);
}

Test(quota, stats_follow_the_deepest_root, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(create("/a", "1"), ZOK);
	cr_assert_eq(create("/a/b", "22"), ZOK);
	cr_assert_eq(create("/ab", "not under /a"), ZOK);
	uint64_t bytes_before = T.data_bytes;
	set_quota("/a", "count=-1,bytes=-1");
	stats_are("/a", "count=2,bytes=3");
	cr_assert_eq(T.data_bytes, bytes_before + strlen("/zookeeper/quota/a") +
		     strlen("/zookeeper/quota/a/zookeeper_limits") + strlen("count=-1,bytes=-1") +
		     strlen("/zookeeper/quota/a/zookeeper_stats") + strlen("count=2,bytes=3"),
		     "approximate data size follows the rewrite");
	cr_assert_eq(create("/a/b/c", "333"), ZOK);
	cr_assert_eq(setdata("/a", "4444"), ZOK);
	stats_are("/a", "count=3,bytes=9");
	cr_assert_eq(create("/zookeeper/quota/a/b", NULL), ZOK);
	cr_assert_eq(create("/zookeeper/quota/a/b/zookeeper_limits", ""), ZOK);
	cr_assert_eq(create("/zookeeper/quota/a/b/zookeeper_stats", "x"), ZOK);
	stats_are("/a/b", "count=2,bytes=5");
	cr_assert_eq(delete("/a/b/c"), ZOK);
	stats_are("/a/b", "count=1,bytes=2");
	stats_are("/a", "count=3,bytes=9");
	cr_assert_eq(delete("/zookeeper/quota/a/b/zookeeper_limits"), ZOK);
	cr_assert_eq(delete("/a/b"), ZOK);
	stats_are("/a", "count=2,bytes=7");
	stats_are("/a/b", "count=1,bytes=2");
	cr_assert_eq(T.quotas.count, 1);
}

Test(quota, hard_limits_refuse, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(create("/h", ""), ZOK);
	cr_assert_eq(tree_quota_check(&T, "/h/x", 4, 100, 1), 0, "no quota yet");
	set_quota("/h", "count=1,bytes=1=;countHardLimit=2;byteHardLimit=10");
	cr_assert_eq(create("/h/x", "123"), ZOK);
	cr_assert_eq(tree_quota_check(&T, "/h/y", 4, 0, 1), ZQUOTAEXCEEDED);
	cr_assert_eq(tree_quota_check(&T, "/h/x", 4, 7, 0), 0, "exactly at the limit");
	cr_assert_eq(tree_quota_check(&T, "/h/x", 4, 8, 0), ZQUOTAEXCEEDED);
	cr_assert_eq(tree_quota_check(&T, "/hx", 3, 100, 1), 0, "not under /h");
	cr_assert_eq(tree_quota_check(&T, "/h/x", 4, -1, 0), 0);
	/* Soft limits only: never refused. */
	cr_assert_eq(setdata("/zookeeper/quota/h/zookeeper_limits", "count=1,bytes=1"), ZOK);
	cr_assert_eq(tree_quota_check(&T, "/h/y", 4, 100, 1), 0);
	/* A missing stats node: allowed, as ZooKeeper allows it. */
	cr_assert_eq(setdata("/zookeeper/quota/h/zookeeper_limits", "countHardLimit=0"), ZOK);
	cr_assert_eq(delete("/zookeeper/quota/h/zookeeper_stats"), ZOK);
	cr_assert_eq(tree_quota_check(&T, "/h/y", 4, 0, 1), 0);
}

Test(quota, odd_quota_nodes_are_ignored, .init = setup, .fini = teardown, .timeout = 10)
{
	/* ZooKeeper 3.8 dies on an empty namespace; here it is no quota at all. */
	cr_assert_eq(create("/zookeeper/quota/zookeeper_limits", "count=1"), ZOK);
	cr_assert_eq(create("/zookeeper/quota/zookeeper_stats", "count=1"), ZOK);
	cr_assert_eq(create("/zookeeper/quotax", NULL), ZOK);
	cr_assert_eq(create("/zookeeper/quotax/zookeeper_limits", "count=1"), ZOK);
	cr_assert_eq(T.quotas.count, 0);
	/* A quota on /zookeeper counts nothing. */
	set_quota("/zookeeper", "count=-1,bytes=-1");
	cr_assert_eq(create("/zookeeper/n", "x"), ZOK);
	cr_assert_eq(tree_quota_check(&T, "/zookeeper/n", 12, 1, 1), 0);
}

Test(quota, snapshot_load_recounts, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(create("/s", "ab"), ZOK);
	set_quota("/s", "count=-1,bytes=-1");
	cr_assert_eq(setdata("/zookeeper/quota/s/zookeeper_stats", "count=50,bytes=50=;k=1"), ZOK);
	cr_assert_eq(create("/s/t", "c"), ZOK);
	stats_are("/s", "count=51,bytes=51=;k=1");
	/* Java's long wraps; so does the count here (no overflow, which UBSan would catch). */
	cr_assert_eq(setdata("/zookeeper/quota/s/zookeeper_stats", "count=9223372036854775807"), ZOK);
	cr_assert_eq(create("/s/w", ""), ZOK);
	stats_are("/s", "count=-9223372036854775808,bytes=-1");
	cr_assert_eq(delete("/s/w"), ZOK);
	/* As if loaded from a snapshot: the roots are rebuilt and recounted. */
	tree_quota_free(&T);
	strmap_init(&T.quotas);
	cr_assert_eq(tree_quota_setup(&T), 0);
	stats_are("/s", "count=2,bytes=3");
	cr_assert_eq(T.quotas.count, 1);
	cr_assert_eq(create("/s/u", "d"), ZOK);
	stats_are("/s", "count=3,bytes=4");
}

/* prep refuses past a hard limit (enforceQuota), the quota before the version, and measures a
 * setData against the newest view's data (a setData still in flight counts). */
static int32_t prep_err(struct prep *p, int32_t type, const char *path, const char *data,
			int32_t version, struct zbuf *out)
{
	struct zbuf body;
	zbuf_init(&body, 1 << 16);
	struct jute_out o;
	t_jout_begin(&o, &body);
	if (type == ZOP_CREATE) {
		jout_str(&o, path);
		jout_str(&o, data);
		jout_raw(&o, tree_acl_open, tree_acl_open_len);
		jout_i32(&o, 0);
	} else {
		t_txn_setdata(&o, path, data, t_len(data), version);
	}
	struct prep_req r = { .session = 5, .type = type, .body = zbuf_head(&body),
			      .body_len = zbuf_len(&body), .zxid = zxid++, .time_ms = 1 };
	jout_init(&o, out);
	zbuf_reset(out);
	cr_assert_eq(prep_write(p, &r, &o), 0);
	zbuf_free(&body);
	struct txn x;
	cr_assert_eq(txn_decode(zbuf_head(out), zbuf_len(out), &x), 0);
	return x.hdr.type == ZOP_ERROR ? x.err : 0;
}

Test(quota, prep_enforces_hard_limits, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(create("/h", ""), ZOK);
	cr_assert_eq(create("/h/x", "12345"), ZOK);
	set_quota("/h", "count=-1,bytes=-1=;countHardLimit=2;byteHardLimit=8");
	struct prep p;
	struct zbuf out;
	zbuf_init(&out, 1 << 16);
	prep_init(&p, &T);
	cr_assert_eq(prep_err(&p, ZOP_CREATE, "/h/y", "", -1, &out), 0, "enforceQuota is off");
	p.enforce_quota = true;
	cr_assert_eq(prep_err(&p, ZOP_CREATE, "/h/z", "", -1, &out), ZQUOTAEXCEEDED);
	cr_assert_eq(prep_err(&p, ZOP_SETDATA, "/h/x", "123456789", 7, &out), ZQUOTAEXCEEDED);
	cr_assert_eq(prep_err(&p, ZOP_SETDATA, "/h/x", "1", 7, &out), ZBADVERSION);
	/* As in ZooKeeper, the change is measured from the newest view of the node (here a
	 * setData to 1 byte not applied yet) and added to the applied stats (5 bytes). */
	cr_assert_eq(prep_err(&p, ZOP_SETDATA, "/h/x", "1", -1, &out), 0);
	cr_assert_eq(prep_err(&p, ZOP_SETDATA, "/h/x", "12345", -1, &out), ZQUOTAEXCEEDED);
	cr_assert_eq(prep_err(&p, ZOP_SETDATA, "/h/x", "1234", -1, &out), 0);
	prep_free(&p);
	zbuf_free(&out);
}
