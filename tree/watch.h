/* One-shot watches, as ZooKeeper's WatchManager: a table per kind (data/exist and child)
 * from path to the watchers on it, and from each watcher to its registrations so a closed
 * connection drops all of its watches in one pass. A watcher is an opaque u64 (net's
 * connection id); firing calls back with (watcher, event, path) and removes the watch.
 * Callbacks must not add or remove watches. */
#ifndef ZK_TREE_WATCH_H
#define ZK_TREE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree/map.h"

enum watch_kind { WATCH_DATA = 0, WATCH_CHILD = 1 };

typedef void (*watch_fire_fn)(void *ctx, uint64_t watcher, int event, const char *path, size_t len);

struct watches {
	struct strmap paths[2];   /* path -> struct watch_path */
	struct u64map owners;     /* watcher -> struct watch_owner */
	uint64_t count[2];        /* registrations per kind */
	uint64_t gen;             /* stamps watchers fired in one trigger, to suppress repeats */
	watch_fire_fn fire;
	void *ctx;
};

void watches_init(struct watches *w, watch_fire_fn fire, void *ctx);
void watches_free(struct watches *w);
/* 0, or -ENOMEM. Registering the same (kind, path, watcher) twice keeps one watch. */
int watches_add(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher);
void watches_drop_watcher(struct watches *w, uint64_t watcher);
/* Fire kind's watches on path. With `suppress_gen`, skip watchers already fired in that
 * generation (ZooKeeper's one NodeDeleted per watcher). Returns the generation used. */
uint64_t watches_trigger(struct watches *w, int kind, const char *path, size_t len, int event,
			 uint64_t suppress_gen);
uint64_t watches_total(const struct watches *w);
size_t watches_npaths(const struct watches *w, int kind);
/* Watchers holding at least one watch of `kind`. */
size_t watches_nwatchers(const struct watches *w, int kind);

/* Walks for the 4lw reports (wchc, wchp): each (watcher, path) pair of `kind`, grouped by
 * path or by watcher; `first` is true for the first pair of each group. */
typedef void (*watch_walk_fn)(void *ctx, uint64_t watcher, const char *path, size_t len, bool first);
void watches_walk_by_path(const struct watches *w, int kind, watch_walk_fn fn, void *ctx);
void watches_walk_by_watcher(const struct watches *w, int kind, watch_walk_fn fn, void *ctx);

#endif
