/* Proves the 3.6 requests without a txn (tree/ops_ext.c) answer as the reference server
 * did in tests/integration/test_watch_persistent.py: addWatch's body and modes, checkWatches
 * and removeWatches codes, setWatches2 decoding everything before acting, getEphemerals'
 * prefix rules and getAllChildrenNumber's counts, and watches set through them firing on
 * applied txns. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "tree/ops_ext.h"
#include "tree/tree.h"
#include "tests/unit/support/support.h"

static struct tree T;
static struct t_events ev;
static struct zbuf scratch, reply;
static int64_t zxid = 0x100000000LL;

static void setup(void)
{
	ev.n = 0;
	cr_assert_eq(tree_init(&T, t_on_fire, &ev), 0);
	zbuf_init(&scratch, 1 << 20);
	zbuf_init(&reply, 1 << 20);
}

static void teardown(void)
{
	tree_free(&T);
	zbuf_free(&scratch);
	zbuf_free(&reply);
}

static void create(const char *path, int64_t owner)
{
	struct jute_out o;
	struct txn_hdr h = { owner ? owner : 0x77, 1, ++zxid, 1600000000000LL, ZOP_CREATE };
	t_txn_begin(&o, &scratch, &h);
	t_txn_create(&o, path, "", 0, tree_acl_open, tree_acl_open_len, owner != 0, -1);
	t_jout_done(&o);
	struct tree_result res;
	cr_assert_eq(t_apply(&T, &scratch, &res), ZOK, "create %s", path);
}

static void set_data(const char *path)
{
	struct jute_out o;
	struct txn_hdr h = { 0x77, 1, ++zxid, 1600000000000LL, ZOP_SETDATA };
	t_txn_begin(&o, &scratch, &h);
	t_txn_setdata(&o, path, "x", 1, 1);
	t_jout_done(&o);
	struct tree_result res;
	cr_assert_eq(t_apply(&T, &scratch, &res), ZOK);
}

/* Run one request whose body is `path` (NULL: a null string), then `arg` unless it is
 * NO_ARG; the reply body is left in `reply`. */
#define NO_ARG INT32_MIN
static int req(int32_t type, const char *path, int32_t arg, uint64_t watcher, int64_t session)
{
	struct jute_out o;
	t_jout_begin(&o, &scratch);
	jout_buf(&o, path, t_len(path));
	if (arg != NO_ARG)
		jout_i32(&o, arg);
	t_jout_done(&o);
	struct jute_out out;
	t_jout_begin(&out, &reply);
	struct acl_who anyone = { 0 }; /* no ids: world:anyone ACLs only (ACLs are tests/unit/acl.c's) */
	int err = ops_ext(&T, type, zbuf_head(&scratch), zbuf_len(&scratch), watcher, session, &anyone, &out);
	cr_assert_eq(out.err, 0);
	if (err != ZOK)
		cr_assert_eq(zbuf_len(&reply), 0, "nothing written on error");
	return err;
}

static int32_t reply_int(void)
{
	cr_assert_eq(zbuf_len(&reply), 4);
	return (int32_t)be32_get(zbuf_head(&reply));
}

Test(ops_ext, add_watch_replies_error_response_zero, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert(ops_ext_is(ZOP_ADDWATCH) && ops_ext_is(ZOP_GETALLCHILDRENNUMBER));
	cr_assert_not(ops_ext_is(ZOP_GETDATA) || ops_ext_is(ZOP_SETWATCHES));
	cr_assert_eq(req(ZOP_ADDWATCH, "/nowhere", ZWM_PERSISTENT, 1, 1), ZOK, "the path need not exist");
	cr_assert_eq(reply_int(), 0);
	cr_assert_eq(watches_total(&T.watches), 2, "one registration in each table");
	cr_assert_eq(req(ZOP_ADDWATCH, "/r", ZWM_PERSISTENT_RECURSIVE, 1, 1), ZOK);
	cr_assert_eq(watches_total(&T.watches), 4, "recursive too: both tables, as 3.8.0");
	cr_assert_eq(req(ZOP_ADDWATCH, "/x", 2, 1, 1), ZMARSHALLINGERROR);
	cr_assert_eq(req(ZOP_ADDWATCH, "/x", -1, 1, 1), ZMARSHALLINGERROR);
	cr_assert_eq(req(ZOP_ADDWATCH, "/x", NO_ARG, 1, 1), ZMARSHALLINGERROR, "no mode");
	cr_assert_eq(watches_total(&T.watches), 4);
	cr_assert_eq(req(ZOP_ADDWATCH, NULL, ZWM_PERSISTENT, 1, 1), ZOK, "3.8.0 keeps a null path");
	cr_assert_eq(watches_mode(&T.watches, WATCH_DATA, "null", 4, 1), WATCH_PERSISTENT);
}

Test(ops_ext, watches_from_add_watch_fire_on_applied_txns, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(req(ZOP_ADDWATCH, "/p", ZWM_PERSISTENT, 1, 1), ZOK);
	cr_assert_eq(req(ZOP_ADDWATCH, "/p", ZWM_PERSISTENT_RECURSIVE, 2, 2), ZOK);
	create("/p", 0);
	create("/p/c", 0);
	create("/p/c/d", 0);
	set_data("/p/c/d");
	set_data("/p");
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/p"), 1);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CHILDREN_CHANGED, "/p"), 1);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_DATA_CHANGED, "/p"), 1);
	cr_assert_eq(t_events_count(&ev, 1, -1, NULL), 3, "nothing below its own children list");
	cr_assert_eq(t_events_count(&ev, 2, ZEV_CREATED, NULL), 3);
	cr_assert_eq(t_events_count(&ev, 2, ZEV_DATA_CHANGED, "/p/c/d"), 1);
	cr_assert_eq(t_events_count(&ev, 2, ZEV_CHILDREN_CHANGED, NULL), 0);
	cr_assert_eq(t_events_count(&ev, 2, -1, NULL), 5);
}

Test(ops_ext, check_and_remove_watches, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(req(ZOP_CHECKWATCHES, "/a", ZWT_ANY, 1, 1), ZNOWATCHER);
	cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", ZWT_ANY, 1, 1), ZNOWATCHER);
	cr_assert_eq(req(ZOP_ADDWATCH, "/a", ZWM_PERSISTENT, 1, 1), ZOK);
	for (int32_t type = -1; type <= 6; type++) {
		bool known = type >= ZWT_CHILDREN && type <= ZWT_ANY;
		cr_assert_eq(req(ZOP_CHECKWATCHES, "/a", type, 1, 1), known ? ZOK : ZMARSHALLINGERROR,
			     "type %d (3.8.0 has no Persistent/PersistentRecursive WatcherType)", type);
		if (!known)
			cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", type, 1, 1), ZMARSHALLINGERROR);
	}
	cr_assert_eq(req(ZOP_CHECKWATCHES, "/a", ZWT_DATA, 2, 2), ZOK, "3.8.0: anyone's watch counts");
	cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", ZWT_DATA, 2, 2), ZNOWATCHER, "but removal is per watcher");
	cr_assert_eq(req(ZOP_CHECKWATCHES, "abc", ZWT_DATA, 1, 1), ZMARSHALLINGERROR);
	cr_assert_eq(req(ZOP_CHECKWATCHES, NULL, ZWT_DATA, 1, 1), ZMARSHALLINGERROR);
	cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", ZWT_CHILDREN, 1, 1), ZOK);
	cr_assert_eq(req(ZOP_CHECKWATCHES, "/a", ZWT_CHILDREN, 1, 1), ZNOWATCHER);
	cr_assert_eq(req(ZOP_CHECKWATCHES, "/a", ZWT_ANY, 1, 1), ZOK);
	cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", ZWT_ANY, 1, 1), ZOK);
	cr_assert_eq(req(ZOP_REMOVEWATCHES, "/a", ZWT_ANY, 1, 1), ZNOWATCHER);
	cr_assert_eq(watches_total(&T.watches), 0);
	create("/a", 0);
	cr_assert_eq(ev.n, 0, "no watch left, and removal itself sends nothing");
	/* A null path: NoWatcher, or MarshallingError once a null-path watch exists. */
	cr_assert_eq(req(ZOP_REMOVEWATCHES, NULL, ZWT_ANY, 1, 1), ZNOWATCHER);
	cr_assert_eq(req(ZOP_ADDWATCH, NULL, ZWM_PERSISTENT, 1, 1), ZOK);
	cr_assert_eq(req(ZOP_REMOVEWATCHES, NULL, ZWT_ANY, 1, 1), ZMARSHALLINGERROR);
}

static int set_watches2(const char *const *lists[5], int64_t rel, bool truncate, uint64_t watcher)
{
	struct jute_out o;
	t_jout_begin(&o, &scratch);
	jout_i64(&o, rel);
	for (int l = 0; l < 5; l++) {
		int n = 0;
		while (lists[l] && lists[l][n])
			n++;
		jout_i32(&o, n);
		for (int i = 0; i < n; i++)
			jout_str(&o, lists[l][i]);
	}
	t_jout_done(&o);
	size_t len = zbuf_len(&scratch) - (truncate ? 1 : 0);
	struct jute_out out;
	t_jout_begin(&out, &reply);
	struct acl_who anyone = { 0 };
	int err = ops_ext(&T, ZOP_SETWATCHES2, zbuf_head(&scratch), len, watcher, 1, &anyone, &out);
	cr_assert_eq(zbuf_len(&reply), 0, "setWatches2 has no reply body");
	return err;
}

Test(ops_ext, set_watches2_registers_persistent_without_events, .init = setup, .fini = teardown,
     .timeout = 10)
{
	create("/s", 0);
	create("/s/a", 0);
	int64_t rel = zxid;
	set_data("/s/a");
	const char *data[] = { "/s/a", "/gone", NULL }, *exist[] = { "/s", "/none", NULL };
	const char *child[] = { "/s", NULL }, *pers[] = { "/s", NULL }, *rec[] = { "/s/a", "/later", NULL };
	const char *const *lists[5] = { data, exist, child, pers, rec };
	cr_assert_eq(set_watches2(lists, rel, true, 1), ZMARSHALLINGERROR);
	cr_assert_eq(ev.n, 0, "a short record fires nothing...");
	cr_assert_eq(watches_total(&T.watches), 0, "...and registers nothing");
	cr_assert_eq(set_watches2(lists, rel, false, 1), ZOK);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(ev.v[0].type, ZEV_DATA_CHANGED); /* /s/a changed after rel */
	cr_assert_eq(ev.v[1].type, ZEV_DELETED);      /* /gone */
	cr_assert_eq(ev.v[2].type, ZEV_CREATED);      /* /s exists */
	/* exist /none; child /s, then persistent /s in both tables (the child-table one takes
	 * over the child watch: one registration per table, path and watcher); recursive /s/a
	 * and /later in both tables. */
	cr_assert_eq(watches_total(&T.watches), 7);
	cr_assert_eq(watches_mode(&T.watches, WATCH_CHILD, "/s", 2, 1), WATCH_PERSISTENT);
	create("/later", 0);
	create("/s/a/x", 0);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/later"), 1);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/s/a/x"), 1);
}

static bool listed(const char *path)
{
	struct jute_in in;
	jin_init(&in, zbuf_head(&reply), zbuf_len(&reply));
	int32_t n = jin_vec(&in, 1000);
	for (int32_t i = 0; i < n; i++) {
		int32_t len;
		const char *p = (const char *)jin_buf(&in, &len);
		if (p && (size_t)len == strlen(path) && memcmp(p, path, (size_t)len) == 0)
			return true;
	}
	cr_assert(jin_done(&in));
	return false;
}

static int32_t listed_count(void) { return (int32_t)be32_get(zbuf_head(&reply)); }

Test(ops_ext, get_ephemerals_by_prefix, .init = setup, .fini = teardown, .timeout = 10)
{
	create("/e1", 5);
	create("/e10", 5);
	create("/e2", 5);
	create("/d", 0);
	create("/d/e", 5);
	create("/e3", 6);
	const char *all[] = { "/", "", " ", " / ", NULL };
	for (int i = 0; all[i]; i++) {
		cr_assert_eq(req(ZOP_GETEPHEMERALS, all[i], NO_ARG, 1, 5), ZOK);
		cr_assert_eq(listed_count(), 4, "prefix '%s' lists all", all[i]);
	}
	cr_assert_eq(req(ZOP_GETEPHEMERALS, NULL, NO_ARG, 1, 5), ZOK);
	cr_assert_eq(listed_count(), 4);
	cr_assert_eq(req(ZOP_GETEPHEMERALS, "/e", NO_ARG, 1, 5), ZOK);
	cr_assert_eq(listed_count(), 3);
	cr_assert(listed("/e1") && listed("/e10") && listed("/e2") && !listed("/e3"), "only its own");
	cr_assert_eq(req(ZOP_GETEPHEMERALS, "/e1", NO_ARG, 1, 5), ZOK);
	cr_assert_eq(listed_count(), 2, "a string prefix, not a path prefix");
	cr_assert_eq(req(ZOP_GETEPHEMERALS, "/d/", NO_ARG, 1, 5), ZOK);
	cr_assert(listed_count() == 1 && listed("/d/e"));
	cr_assert_eq(req(ZOP_GETEPHEMERALS, "e", NO_ARG, 1, 5), ZOK);
	cr_assert_eq(listed_count(), 0);
	cr_assert_eq(req(ZOP_GETEPHEMERALS, "/", NO_ARG, 1, 7), ZOK);
	cr_assert_eq(listed_count(), 0, "a session without ephemerals");
}

Test(ops_ext, get_all_children_number_counts_descendants, .init = setup, .fini = teardown, .timeout = 30)
{
	create("/a", 0);
	create("/a/b", 0);
	create("/a/b/c", 0);
	create("/a/d", 0);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/a", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 3);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/a/d", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 0);
	/* The root: every other node (/zookeeper, its quota and config too); "" one more. */
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 7);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 8);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/zookeeper", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 2);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/nope", NO_ARG, 1, 1), ZNONODE);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/a/", NO_ARG, 1, 1), ZNONODE);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "a", NO_ARG, 1, 1), ZNONODE);
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, NULL, NO_ARG, 1, 1), ZMARSHALLINGERROR);
	/* Deep and wide: a 1,000-level chain with 10 leaves at each level. */
	static char path[8192];
	strcpy(path, "/deep");
	create(path, 0);
	for (int i = 0; i < 1000; i++) {
		size_t n = strlen(path);
		for (int k = 0; k < 10; k++) {
			snprintf(path + n, sizeof path - n, "/l%d", k);
			create(path, 0);
		}
		snprintf(path + n, sizeof path - n, "/n");
		create(path, 0);
	}
	cr_assert_eq(req(ZOP_GETALLCHILDRENNUMBER, "/deep", NO_ARG, 1, 1), ZOK);
	cr_assert_eq(reply_int(), 1000 * 11);
}
