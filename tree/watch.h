/* Watches, as ZooKeeper 3.8.0's WatchManager: two tables (data/exist, and child), each from
 * path to the watchers on it, and from each watcher to its registrations so a closed
 * connection drops all of its watches in one pass. A watcher is an opaque u64 (net's
 * connection id); firing calls back with (watcher, event, path).
 *
 * A registration has a mode. STANDARD fires once and is removed; PERSISTENT fires on its
 * path and stays; RECURSIVE fires on its path and on every descendant, for every event but
 * NodeChildrenChanged, and stays. One (table, path, watcher) holds one registration, so
 * adding again replaces the mode: the last add wins, as in 3.8.0 (a getData watch on a
 * path with a persistent watch turns the data side back into a one-shot watch; 3.9's
 * ZOOKEEPER-4466 keeps both). addWatch registers in both tables, whatever the mode.
 *
 * One trigger delivers at most one event per watcher, however many of its registrations
 * match (the path's own and recursive ones above it). Ancestors are only looked at while
 * the table holds a recursive registration; then the walk is one probe per ancestor into an
 * index of the paths that have one, every prefix's hash taken in the same pass over the
 * path (see chain_hash in watch.c). Without recursive watches a trigger is one lookup.
 *
 * A watcher stays known to a table once it registered there, until it is dropped, even
 * after its watches fired or were removed: ZooKeeper's wchs/wchc count and list it so.
 *
 * Memory: a registration is one 64-byte block (56 bytes + malloc header) on two lists; a
 * watched path adds one block of 48 bytes + its length, a path with recursive watches one
 * more of 32; a watcher adds one 48-byte block (each plus a hash table slot).
 * Watches are bounded only by the connections that hold them, as in ZooKeeper.
 * Callbacks must not add or remove watches. */
#ifndef ZK_TREE_WATCH_H
#define ZK_TREE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree/map.h"

enum watch_kind { WATCH_DATA = 0, WATCH_CHILD = 1 };
enum watch_mode { WATCH_STANDARD = 0, WATCH_PERSISTENT = 1, WATCH_RECURSIVE = 2 };

typedef void (*watch_fire_fn)(void *ctx, uint64_t watcher, int event, const char *path, size_t len);

struct watches {
	struct strmap paths[2];   /* path -> struct watch_path */
	struct strmap rec[2];     /* paths with recursive registrations, by chained hash (watch.c) */
	struct u64map owners;     /* watcher -> struct watch_owner */
	uint64_t count[2];        /* registrations per kind */
	uint64_t nrec[2];         /* RECURSIVE registrations per kind: 0 skips the ancestor walk */
	uint64_t gen;             /* stamps watchers fired in one trigger, to suppress repeats */
	watch_fire_fn fire;
	void *ctx;
	/* While tree.c fires a change: the ACL of the znode it is about (NULL otherwise, as for
	 * setWatches' catch-up events and the watch-removed events). ZooKeeper's
	 * NIOServerCnxn.process(event, acl) drops an event for a connection without READ on it;
	 * the fire callback reads these to do the same. */
	const uint8_t *event_acl;
	size_t event_acl_len;
};

void watches_init(struct watches *w, watch_fire_fn fire, void *ctx);
void watches_free(struct watches *w);
/* A STANDARD (one-shot) watch. 0, or -ENOMEM. */
int watches_add(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher);
/* Register, or change the mode of, (kind, path, watcher). 0, or -ENOMEM. */
int watches_add_mode(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher,
		     int mode);
/* removeWatches: drop (kind, path, watcher) whatever its mode; false if there was none. */
bool watches_remove(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher);
/* checkWatches as 3.8.0 answers it (WatchManager.containsWatcher): 1 when the path has any
 * watcher's registration of kind — not necessarily this watcher's; 0 when not, or for "";
 * -EINVAL where ZooKeeper's parent walk throws (a path not starting with '/' that has no
 * '/' at all, or that has one but no registration while the table has recursive ones). */
int watches_contains(const struct watches *w, int kind, const char *path, size_t len);
/* The mode of (kind, path, watcher), or -1 when it is not registered. */
int watches_mode(const struct watches *w, int kind, const char *path, size_t len, uint64_t watcher);
void watches_drop_watcher(struct watches *w, uint64_t watcher);
/* Fire kind's watches for a change of path. With `suppress_gen`, skip watchers already fired
 * in that generation (ZooKeeper's one NodeDeleted per watcher). Returns the generation used. */
uint64_t watches_trigger(struct watches *w, int kind, const char *path, size_t len, int event,
			 uint64_t suppress_gen);
uint64_t watches_total(const struct watches *w);
size_t watches_npaths(const struct watches *w, int kind);
/* Watchers known to kind's table (see above: also those whose watches are all gone). */
size_t watches_nwatchers(const struct watches *w, int kind);

/* Walks for the 4lw reports (wchc, wchp): each (watcher, path) pair of `kind`, grouped by
 * path or by watcher; `first` is true for the first pair of each group. The by-watcher walk
 * also reports a known watcher with no registration left, once, with path NULL. */
typedef void (*watch_walk_fn)(void *ctx, uint64_t watcher, const char *path, size_t len, bool first);
void watches_walk_by_path(const struct watches *w, int kind, watch_walk_fn fn, void *ctx);
void watches_walk_by_watcher(const struct watches *w, int kind, watch_walk_fn fn, void *ctx);

#endif
