/* Proves the watch tables keep one registration per (kind, path, watcher), fire each
 * watcher once and forget it, drop a watcher's watches in one call, and count and walk
 * exactly what is registered; and that persistent and recursive watches fire as ZooKeeper
 * 3.8.0's WatchManager fires them (each case below was checked on the running server). */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proto.h"
#include "tree/watch.h"
#include "tests/unit/support/support.h"

static struct t_events ev;

static void on_fire(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	cr_assert_eq(ctx, (void *)&ev, "the context is passed through");
	t_on_fire(ctx, watcher, event, path, len);
}

static int count(uint64_t watcher, const char *path) { return t_events_count(&ev, watcher, -1, path); }

static struct watches W;

static void setup(void)
{
	ev.n = 0;
	watches_init(&W, on_fire, &ev);
}

static void teardown(void) { watches_free(&W); }

static int add(int kind, const char *path, uint64_t watcher)
{
	return watches_add(&W, kind, path, strlen(path), watcher);
}

static uint64_t trigger(int kind, const char *path, int event, uint64_t gen)
{
	return watches_trigger(&W, kind, path, strlen(path), event, gen);
}

Test(watch, add_dedups_same_kind_path_watcher, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add(WATCH_DATA, "/a", 1), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 1), 0);
	cr_assert_eq(watches_total(&W), 1);
	cr_assert_eq(add(WATCH_CHILD, "/a", 1), 0, "another kind is another watch");
	cr_assert_eq(add(WATCH_DATA, "/a", 2), 0);
	cr_assert_eq(add(WATCH_DATA, "/b", 1), 0);
	cr_assert_eq(add(WATCH_DATA, "/b", 1), 0);
	cr_assert_eq(watches_total(&W), 4);
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 2);
	cr_assert_eq(watches_npaths(&W, WATCH_CHILD), 1);
	trigger(WATCH_DATA, "/a", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(count(1, "/a"), 1, "a deduplicated watch fires once");
	cr_assert_eq(count(2, "/a"), 1);
	cr_assert_eq(ev.n, 2);
}

Test(watch, paths_are_length_delimited, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(watches_add(&W, WATCH_DATA, "/ab", 2, 1), 0); /* "/a" */
	cr_assert_eq(add(WATCH_DATA, "/ab", 2), 0);
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 2);
	trigger(WATCH_DATA, "/a", ZEV_DELETED, 0);
	cr_assert_eq(ev.n, 1);
	cr_assert_eq(count(1, "/a"), 1);
	cr_assert_eq(count(2, "/ab"), 0);
}

Test(watch, trigger_fires_each_once_and_removes, .init = setup, .fini = teardown, .timeout = 10)
{
	for (uint64_t w = 1; w <= 1000; w++)
		cr_assert_eq(add(WATCH_CHILD, "/many", w), 0);
	cr_assert_eq(add(WATCH_DATA, "/many", 5), 0);
	cr_assert_eq(add(WATCH_CHILD, "/other", 5), 0);
	cr_assert_eq(watches_total(&W), 1002);
	uint64_t g1 = trigger(WATCH_CHILD, "/many", ZEV_CHILDREN_CHANGED, 0);
	cr_assert_neq(g1, 0);
	cr_assert_eq(ev.n, 1000);
	static int seen[1001];
	memset(seen, 0, sizeof seen);
	for (int i = 0; i < ev.n; i++) {
		cr_assert_eq(ev.v[i].type, ZEV_CHILDREN_CHANGED);
		cr_assert_str_eq(ev.v[i].path, "/many");
		cr_assert(ev.v[i].watcher >= 1 && ev.v[i].watcher <= 1000);
		cr_assert_eq(seen[ev.v[i].watcher]++, 0, "watcher %llu fired twice",
			     (unsigned long long)ev.v[i].watcher);
	}
	cr_assert_eq(watches_total(&W), 2, "the other kind and path stay");
	cr_assert_eq(watches_npaths(&W, WATCH_CHILD), 1);
	/* Fired watches are gone: a second trigger finds nothing. */
	uint64_t g2 = trigger(WATCH_CHILD, "/many", ZEV_CHILDREN_CHANGED, 0);
	cr_assert_eq(ev.n, 1000);
	cr_assert_neq(g2, g1, "each trigger gets a new generation");
	/* Unknown path: nothing. */
	trigger(WATCH_DATA, "/nothing", ZEV_CREATED, 0);
	cr_assert_eq(ev.n, 1000);
	/* Watchers whose only watch fired stay known to the table, as ZooKeeper's watch2Paths
	 * keeps them (wchs: "1000 connections watching 1 paths"), until they are dropped. */
	cr_assert_eq(watches_nwatchers(&W, WATCH_CHILD), 1000);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 1);
	for (uint64_t w = 1; w <= 1000; w++)
		if (w != 5)
			watches_drop_watcher(&W, w);
	cr_assert_eq(watches_nwatchers(&W, WATCH_CHILD), 1);
	cr_assert_eq(watches_total(&W), 2);
}

Test(watch, suppress_gen_fires_one_event_per_watcher, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add(WATCH_DATA, "/n", 1), 0);
	cr_assert_eq(add(WATCH_CHILD, "/n", 1), 0);
	cr_assert_eq(add(WATCH_CHILD, "/n", 2), 0);
	cr_assert_eq(add(WATCH_DATA, "/n", 3), 0);
	uint64_t gen = trigger(WATCH_DATA, "/n", ZEV_DELETED, 0);
	cr_assert_eq(trigger(WATCH_CHILD, "/n", ZEV_DELETED, gen), gen);
	cr_assert_eq(count(1, "/n"), 1);
	cr_assert_eq(count(2, "/n"), 1);
	cr_assert_eq(count(3, "/n"), 1);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(watches_total(&W), 0, "the suppressed watch is removed too");

	/* Without the generation, both kinds fire. */
	cr_assert_eq(add(WATCH_DATA, "/m", 1), 0);
	cr_assert_eq(add(WATCH_CHILD, "/m", 1), 0);
	trigger(WATCH_DATA, "/m", ZEV_DELETED, 0);
	trigger(WATCH_CHILD, "/m", ZEV_DELETED, 0);
	cr_assert_eq(count(1, "/m"), 2);
}

Test(watch, drop_watcher_removes_all_of_its_watches, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[32];
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof path, "/p%d", i);
		cr_assert_eq(add(WATCH_DATA, path, 1), 0);
		cr_assert_eq(add(WATCH_CHILD, path, 1), 0);
		if (i % 2)
			cr_assert_eq(add(WATCH_DATA, path, 2), 0);
	}
	cr_assert_eq(watches_total(&W), 125);
	watches_drop_watcher(&W, 1);
	cr_assert_eq(watches_total(&W), 25);
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 25, "paths only watcher 1 had are gone");
	cr_assert_eq(watches_npaths(&W, WATCH_CHILD), 0);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 1);
	cr_assert_eq(watches_nwatchers(&W, WATCH_CHILD), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof path, "/p%d", i);
		trigger(WATCH_DATA, path, ZEV_DATA_CHANGED, 0);
		trigger(WATCH_CHILD, path, ZEV_CHILDREN_CHANGED, 0);
	}
	cr_assert_eq(ev.n, 25);
	for (int i = 0; i < ev.n; i++)
		cr_assert_eq(ev.v[i].watcher, 2);
	watches_drop_watcher(&W, 1); /* unknown now: no-op */
	watches_drop_watcher(&W, 99);
	cr_assert_eq(watches_total(&W), 0);
	/* A dropped watcher can register again. */
	cr_assert_eq(add(WATCH_DATA, "/p0", 1), 0);
	cr_assert_eq(watches_total(&W), 1);
}

Test(watch, counts_per_kind, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(watches_total(&W), 0);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 1), 0);
	cr_assert_eq(add(WATCH_DATA, "/b", 1), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 2), 0);
	cr_assert_eq(add(WATCH_CHILD, "/a", 3), 0);
	cr_assert_eq(add(WATCH_CHILD, "/c", 3), 0);
	cr_assert_eq(add(WATCH_CHILD, "/d", 1), 0);
	cr_assert_eq(watches_total(&W), 6);
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 2);
	cr_assert_eq(watches_npaths(&W, WATCH_CHILD), 3);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 2);  /* 1, 2 */
	cr_assert_eq(watches_nwatchers(&W, WATCH_CHILD), 2); /* 3, 1 */
	trigger(WATCH_CHILD, "/d", ZEV_DELETED, 0);
	cr_assert_eq(watches_nwatchers(&W, WATCH_CHILD), 2, "watcher 1 has no child watch left, but stays known");
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 2);
	cr_assert_eq(watches_total(&W), 5);
}

struct walk_rec {
	uint64_t watcher;
	char path[16];
	bool first;
};
struct walk {
	struct walk_rec r[64];
	int n;
};

static void on_walk(void *ctx, uint64_t watcher, const char *path, size_t len, bool first)
{
	struct walk *w = ctx;
	cr_assert_lt(w->n, 64);
	cr_assert_lt(len, sizeof w->r[0].path);
	w->r[w->n].watcher = watcher;
	if (path) /* NULL: a known watcher with no registration left */
		memcpy(w->r[w->n].path, path, len);
	w->r[w->n].path[len] = 0;
	w->r[w->n].first = first;
	w->n++;
}

static bool walk_has(const struct walk *w, uint64_t watcher, const char *path)
{
	for (int i = 0; i < w->n; i++)
		if (w->r[i].watcher == watcher && strcmp(w->r[i].path, path) == 0)
			return true;
	return false;
}

static void add_walk_fixture(void)
{
	cr_assert_eq(add(WATCH_DATA, "/a", 1), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 2), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 3), 0);
	cr_assert_eq(add(WATCH_DATA, "/b", 2), 0);
	cr_assert_eq(add(WATCH_CHILD, "/c", 1), 0);
	cr_assert_eq(add(WATCH_CHILD, "/a", 4), 0); /* watcher 4: child watches only */
}

Test(watch, walk_by_path_groups_each_path, .init = setup, .fini = teardown, .timeout = 10)
{
	add_walk_fixture();
	struct walk w = { .n = 0 };
	watches_walk_by_path(&W, WATCH_DATA, on_walk, &w);
	cr_assert_eq(w.n, 4);
	cr_assert(walk_has(&w, 1, "/a") && walk_has(&w, 2, "/a") && walk_has(&w, 3, "/a"));
	cr_assert(walk_has(&w, 2, "/b"));
	cr_assert(!walk_has(&w, 4, "/a"), "a child watch is not in the data walk");
	/* Grouped: each path's pairs are contiguous and the group starts with first=true. */
	int groups = 0;
	for (int i = 0; i < w.n; i++) {
		bool starts = i == 0 || strcmp(w.r[i].path, w.r[i - 1].path) != 0;
		cr_assert_eq(w.r[i].first, starts, "pair %d (%s)", i, w.r[i].path);
		groups += starts;
	}
	cr_assert_eq(groups, 2);

	struct walk c = { .n = 0 };
	watches_walk_by_path(&W, WATCH_CHILD, on_walk, &c);
	cr_assert_eq(c.n, 2);
	cr_assert(walk_has(&c, 1, "/c") && walk_has(&c, 4, "/a"));
	cr_assert(c.r[0].first && c.r[1].first);
}

Test(watch, walk_by_watcher_groups_each_watcher, .init = setup, .fini = teardown, .timeout = 10)
{
	add_walk_fixture();
	struct walk w = { .n = 0 };
	watches_walk_by_watcher(&W, WATCH_DATA, on_walk, &w);
	cr_assert_eq(w.n, 4);
	cr_assert(walk_has(&w, 2, "/a") && walk_has(&w, 2, "/b"));
	for (int i = 0; i < w.n; i++)
		cr_assert_neq(w.r[i].watcher, 4, "watcher 4 has no data watch");
	int groups = 0;
	for (int i = 0; i < w.n; i++) {
		bool starts = i == 0 || w.r[i].watcher != w.r[i - 1].watcher;
		cr_assert_eq(w.r[i].first, starts, "pair %d (watcher %llu)", i,
			     (unsigned long long)w.r[i].watcher);
		groups += starts;
	}
	cr_assert_eq(groups, 3);

	/* Watcher 1 has a data watch then a child watch: the child walk's first flag is set on
	 * its first child pair even though its list starts with a data one. */
	struct walk c = { .n = 0 };
	watches_walk_by_watcher(&W, WATCH_CHILD, on_walk, &c);
	cr_assert_eq(c.n, 2);
	cr_assert(c.r[0].first && c.r[1].first);
	cr_assert(walk_has(&c, 1, "/c") && walk_has(&c, 4, "/a"));
}

Test(watch, free_releases_everything, .timeout = 10)
{
	/* Under ASan (leak checking) this proves watches_free drops every registration. */
	struct watches w;
	ev.n = 0;
	watches_init(&w, on_fire, &ev);
	char path[32];
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof path, "/x%d", i % 17);
		cr_assert_eq(watches_add(&w, i % 2, path, strlen(path), (uint64_t)(i % 13)), 0);
	}
	cr_assert_gt(watches_total(&w), 0);
	watches_free(&w);
	cr_assert_eq(ev.n, 0, "freeing does not fire");
}

Test(watch, bad_kind_asserts, .init = setup, .timeout = 10, .signal = SIGABRT)
{
	watches_add(&W, 2, "/a", 2, 1);
}

/* ---- persistent and recursive watches (ZooKeeper 3.8.0's WatchManager) ---- */

static int add_mode(int kind, const char *path, uint64_t watcher, int mode)
{
	return watches_add_mode(&W, kind, path, strlen(path), watcher, mode);
}

static int mode_of(int kind, const char *path, uint64_t watcher)
{
	return watches_mode(&W, kind, path, strlen(path), watcher);
}

static int contains(int kind, const char *path) { return watches_contains(&W, kind, path, strlen(path)); }

Test(watch, persistent_fires_every_time_and_stays, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 1, WATCH_PERSISTENT), 0);
	cr_assert_eq(add_mode(WATCH_CHILD, "/a", 1, WATCH_PERSISTENT), 0);
	for (int i = 0; i < 3; i++)
		trigger(WATCH_DATA, "/a", ZEV_DATA_CHANGED, 0);
	trigger(WATCH_CHILD, "/a", ZEV_CHILDREN_CHANGED, 0);
	uint64_t gen = trigger(WATCH_DATA, "/a", ZEV_DELETED, 0);
	trigger(WATCH_CHILD, "/a", ZEV_DELETED, gen);
	trigger(WATCH_DATA, "/a", ZEV_CREATED, 0);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_DATA_CHANGED, "/a"), 3);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CHILDREN_CHANGED, "/a"), 1);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_DELETED, "/a"), 1, "one NodeDeleted for both tables");
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/a"), 1, "it outlives the node's deletion");
	cr_assert_eq(watches_total(&W), 2);
	/* Not for a child's change: a persistent watch is not recursive. */
	trigger(WATCH_DATA, "/a/b", ZEV_DATA_CHANGED, 0);
	trigger(WATCH_DATA, "/ab", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(ev.n, 6);
}

Test(watch, recursive_fires_for_the_subtree_but_not_children_changed, .init = setup, .fini = teardown,
     .timeout = 10)
{
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_CHILD, "/a", 1, WATCH_RECURSIVE), 0);
	trigger(WATCH_DATA, "/a/b/c", ZEV_CREATED, 0);
	trigger(WATCH_DATA, "/a/b", ZEV_DATA_CHANGED, 0);
	trigger(WATCH_DATA, "/a", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/a/b/c"), 1, "the event names the changed path");
	trigger(WATCH_CHILD, "/a", ZEV_CHILDREN_CHANGED, 0);
	trigger(WATCH_CHILD, "/a/b", ZEV_CHILDREN_CHANGED, 0);
	cr_assert_eq(ev.n, 3, "no NodeChildrenChanged for a recursive watch");
	trigger(WATCH_DATA, "/ab", ZEV_CREATED, 0);
	trigger(WATCH_DATA, "/", ZEV_DATA_CHANGED, 0);
	trigger(WATCH_DATA, "/b/a", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(ev.n, 3, "a sibling with the same prefix, the root and another subtree: none");
	cr_assert_eq(watches_total(&W), 2);
}

Test(watch, recursive_on_root_and_odd_ancestors, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add_mode(WATCH_DATA, "/", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a/", 2, WATCH_RECURSIVE), 0); /* stored as sent */
	trigger(WATCH_DATA, "/x", ZEV_CREATED, 0);
	trigger(WATCH_DATA, "/a/b", ZEV_CREATED, 0);
	cr_assert_eq(t_events_count(&ev, 1, -1, NULL), 2, "the root's recursive watch sees everything");
	cr_assert_eq(t_events_count(&ev, 2, -1, NULL), 0, "\"/a/\" is no ancestor of \"/a/b\"");
	trigger(WATCH_DATA, "/a//b", ZEV_CREATED, 0); /* ZooKeeper's parent walk: "/a/", "/a", "/" */
	cr_assert_eq(t_events_count(&ev, 2, ZEV_CREATED, "/a//b"), 1);
}

Test(watch, one_event_per_watcher_per_trigger, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add(WATCH_DATA, "/a/b", 1), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 2, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a/b", 3, WATCH_PERSISTENT), 0);
	trigger(WATCH_DATA, "/a/b", ZEV_CREATED, 0);
	cr_assert_eq(count(1, "/a/b"), 1, "three matching registrations, one event");
	cr_assert_eq(count(2, "/a/b"), 1);
	cr_assert_eq(count(3, "/a/b"), 1);
	cr_assert_eq(ev.n, 3);
	cr_assert_eq(mode_of(WATCH_DATA, "/a/b", 1), -1, "the one-shot part is used up");
	cr_assert_eq(mode_of(WATCH_DATA, "/a", 1), WATCH_RECURSIVE);
	trigger(WATCH_DATA, "/a/b", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(ev.n, 6);
}

Test(watch, the_last_add_sets_the_mode, .init = setup, .fini = teardown, .timeout = 10)
{
	/* 3.8.0: getData(watch) on a persistently watched path makes the data side one-shot. */
	cr_assert_eq(add_mode(WATCH_DATA, "/p", 1, WATCH_PERSISTENT), 0);
	cr_assert_eq(add(WATCH_DATA, "/p", 1), 0);
	cr_assert_eq(mode_of(WATCH_DATA, "/p", 1), WATCH_STANDARD);
	trigger(WATCH_DATA, "/p", ZEV_DATA_CHANGED, 0);
	trigger(WATCH_DATA, "/p", ZEV_DATA_CHANGED, 0);
	cr_assert_eq(ev.n, 1);
	cr_assert_eq(watches_total(&W), 0);
	/* One-shot then persistent: persistent. Persistent then recursive and back. */
	cr_assert_eq(add(WATCH_DATA, "/q", 1), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/q", 1, WATCH_PERSISTENT), 0);
	cr_assert_eq(mode_of(WATCH_DATA, "/q", 1), WATCH_PERSISTENT);
	cr_assert_eq(add_mode(WATCH_DATA, "/q", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(W.nrec[WATCH_DATA], 1);
	cr_assert_eq(W.rec[WATCH_DATA].count, 1, "/q joins the recursive index");
	trigger(WATCH_DATA, "/q/x", ZEV_CREATED, 0);
	cr_assert_eq(count(1, "/q/x"), 1);
	cr_assert_eq(add_mode(WATCH_DATA, "/q", 1, WATCH_PERSISTENT), 0);
	cr_assert_eq(W.nrec[WATCH_DATA], 0);
	cr_assert_eq(W.rec[WATCH_DATA].count, 0, "and leaves it");
	trigger(WATCH_DATA, "/q/x", ZEV_CREATED, 0);
	cr_assert_eq(count(1, "/q/x"), 1, "persistent again: no longer recursive");
	cr_assert_eq(watches_total(&W), 1, "one registration throughout");
}

Test(watch, suppression_across_tables_with_recursive, .init = setup, .fini = teardown, .timeout = 10)
{
	/* addWatch puts a recursive watch in both tables; a delete fires the data table, then
	 * the child table suppressing who already got NodeDeleted. */
	cr_assert_eq(add_mode(WATCH_DATA, "/r", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_CHILD, "/r", 1, WATCH_RECURSIVE), 0);
	uint64_t gen = trigger(WATCH_DATA, "/r/x", ZEV_DELETED, 0);
	trigger(WATCH_CHILD, "/r/x", ZEV_DELETED, gen);
	cr_assert_eq(count(1, "/r/x"), 1);
	/* removeWatches(Data) leaves the child-table half, which then delivers NodeDeleted
	 * itself (as the reference server does) but never NodeCreated. */
	cr_assert(watches_remove(&W, WATCH_DATA, "/r", 2, 1));
	trigger(WATCH_DATA, "/r/y", ZEV_CREATED, 0);
	gen = trigger(WATCH_DATA, "/r/y", ZEV_DELETED, 0);
	trigger(WATCH_CHILD, "/r/y", ZEV_DELETED, gen);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_CREATED, "/r/y"), 0);
	cr_assert_eq(t_events_count(&ev, 1, ZEV_DELETED, "/r/y"), 1);
}

Test(watch, remove_one_registration, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_not(watches_remove(&W, WATCH_DATA, "/a", 2, 1), "nothing registered");
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 2, WATCH_PERSISTENT), 0);
	cr_assert_not(watches_remove(&W, WATCH_CHILD, "/a", 2, 1), "another table");
	cr_assert_not(watches_remove(&W, WATCH_DATA, "/a", 2, 3), "another watcher");
	cr_assert_eq(W.rec[WATCH_DATA].count, 1);
	cr_assert(watches_remove(&W, WATCH_DATA, "/a", 2, 1));
	cr_assert_eq(W.nrec[WATCH_DATA], 0);
	cr_assert_eq(W.rec[WATCH_DATA].count, 0, "the persistent watch keeps the path, not its index entry");
	cr_assert_not(watches_remove(&W, WATCH_DATA, "/a", 2, 1), "already gone");
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 1);
	cr_assert(watches_remove(&W, WATCH_DATA, "/a", 2, 2));
	cr_assert_eq(watches_npaths(&W, WATCH_DATA), 0, "the path goes with its last watch");
	trigger(WATCH_DATA, "/a/b", ZEV_CREATED, 0);
	trigger(WATCH_DATA, "/a", ZEV_CREATED, 0);
	cr_assert_eq(ev.n, 0);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 2, "removed, still known (wchs counts them)");
	struct walk wk = { .n = 0 };
	watches_walk_by_watcher(&W, WATCH_DATA, on_walk, &wk);
	cr_assert_eq(wk.n, 2, "wchc lists each known watcher once, with no path");
	cr_assert(wk.r[0].first && wk.r[0].path[0] == 0 && wk.r[1].first);
}

Test(watch, drop_watcher_takes_its_persistent_watches, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_CHILD, "/a", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/b", 1, WATCH_PERSISTENT), 0);
	cr_assert_eq(add_mode(WATCH_DATA, "/a", 2, WATCH_RECURSIVE), 0);
	watches_drop_watcher(&W, 1);
	cr_assert_eq(W.nrec[WATCH_DATA], 1);
	cr_assert_eq(W.nrec[WATCH_CHILD], 0);
	cr_assert_eq(W.rec[WATCH_DATA].count, 1, "watcher 2 keeps /a indexed");
	cr_assert_eq(W.rec[WATCH_CHILD].count, 0);
	cr_assert_eq(watches_total(&W), 1);
	trigger(WATCH_DATA, "/a/x", ZEV_CREATED, 0);
	trigger(WATCH_DATA, "/b", ZEV_CREATED, 0);
	cr_assert_eq(ev.n, 1);
	cr_assert_eq(ev.v[0].watcher, 2);
	cr_assert_eq(watches_nwatchers(&W, WATCH_DATA), 1);
}

Test(watch, contains_as_zookeeper_3_8_0_answers, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(contains(WATCH_DATA, "/a"), 0);
	cr_assert_eq(add(WATCH_DATA, "/a", 1), 0);
	cr_assert_eq(contains(WATCH_DATA, "/a"), 1, "any watcher's watch counts");
	cr_assert_eq(contains(WATCH_CHILD, "/a"), 0);
	cr_assert_eq(contains(WATCH_DATA, ""), 0);
	cr_assert_eq(contains(WATCH_DATA, "abc"), -EINVAL, "no '/': the parent walk throws");
	cr_assert_eq(contains(WATCH_DATA, "a/b"), 0, "no recursive watch: the walk stops at the path");
	cr_assert_eq(add(WATCH_DATA, "a/b", 1), 0);
	cr_assert_eq(contains(WATCH_DATA, "a/b"), 1);
	cr_assert_eq(add_mode(WATCH_DATA, "/r", 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(contains(WATCH_DATA, "a/c"), -EINVAL, "with one, it walks up to \"a\" and throws");
	cr_assert_eq(contains(WATCH_DATA, "a/b"), 1);
	cr_assert_eq(contains(WATCH_DATA, "/r/x"), 0, "an ancestor's recursive watch does not count");
	cr_assert_eq(contains(WATCH_CHILD, "a/c"), 0, "per table");
}

static uint64_t deep_fired[4];

static void on_fire_deep(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	cr_assert_lt(watcher, 4);
	cr_assert_eq(len, *(size_t *)ctx, "the event names the changed path");
	deep_fired[watcher]++;
}

Test(watch, ancestor_walk_is_linear_in_the_path, .timeout = 10)
{
	/* 200,000 levels, a 400 KB path: hashing each prefix anew would take ~4*10^10 bytes. */
	enum { LEVELS = 200000 };
	size_t len = 2 * LEVELS;
	struct watches w;
	watches_init(&w, on_fire_deep, &len);
	char *p = malloc(len + 1);
	cr_assert_not_null(p);
	for (int i = 0; i < LEVELS; i++)
		memcpy(p + 2 * i, "/a", 2);
	p[len] = 0;
	cr_assert_eq(watches_add_mode(&w, WATCH_DATA, p, len / 2, 1, WATCH_RECURSIVE), 0);
	cr_assert_eq(watches_add_mode(&w, WATCH_DATA, p, len - 2, 2, WATCH_RECURSIVE), 0);
	cr_assert_eq(watches_add_mode(&w, WATCH_DATA, "/", 1, 3, WATCH_RECURSIVE), 0);
	for (int i = 0; i < 20; i++)
		watches_trigger(&w, WATCH_DATA, p, len, ZEV_DATA_CHANGED, 0);
	cr_assert_eq(deep_fired[0], 0);
	cr_assert_eq(deep_fired[1], 20);
	cr_assert_eq(deep_fired[2], 20);
	cr_assert_eq(deep_fired[3], 20);
	watches_free(&w);
	free(p);
}
