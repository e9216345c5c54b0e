/* Watch tables; see watch.h. Registrations are on two intrusive lists: the path's and the
 * watcher's, so both "fire a path" and "drop a watcher" are linear in what they touch.
 * A path keeps its recursive registrations on a list of their own, and the paths that have
 * any are also in a small index of their own (rec[kind]) that the ancestor walk probes. */
#include "tree/watch.h"
#include "net/log.h"
#include "net/proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct watch_reg;

struct watch_path {
	struct strmap_ent ent;
	struct watch_reg *head[2]; /* [0] STANDARD and PERSISTENT, [1] RECURSIVE */
	uint32_t n;                /* registrations on both lists */
	int kind;
	char path[];
};

struct watch_owner {
	uint64_t id;
	uint64_t fired_gen;
	uint32_t n;        /* registrations, both kinds */
	bool seen[2];      /* ever registered in kind's table (ZooKeeper's watch2Paths entry) */
	struct watch_reg *head;
};

/* An entry of the recursive index: a path with recursive registrations, keyed by the
 * chained hash (below) so the ancestor walk can probe it. */
struct watch_rec {
	struct strmap_ent ent; /* key = wp->path */
	struct watch_path *wp;
};

struct watch_reg {
	struct watch_path *wp;
	struct watch_owner *owner;
	struct watch_reg *pnext, *pprev; /* on one of wp's lists */
	struct watch_reg *onext, *oprev; /* on owner's list */
	int mode;
};

/* ---- the recursive index's hash ----
 * A key's hash chains the hashes of its '/'-separated segments, so while hashing a changed
 * path once, left to right, the hash of each ancestor ("/a", "/a/b") falls out at each '/'
 * and the ancestor walk costs one probe a level, not a rehash of every prefix (a 1 MB path
 * 500,000 levels deep would otherwise cost 10^11 bytes of hashing). Segments go through
 * tree_hash, which is seeded per process. The path tables themselves keep tree_hash: with
 * no recursive watch anywhere a trigger costs what it did before recursive watches. */
#define CHAIN_START 0x243f6a8885a308d3ull

static uint64_t chain_add(uint64_t h, const char *seg, size_t n)
{
	h ^= tree_hash(seg, n);
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 32;
	return h + 0x9e3779b97f4a7c15ull;
}

static uint32_t chain_end(uint64_t h) { return (uint32_t)(h ^ (h >> 29)); }

static uint32_t chain_hash(const char *p, size_t len)
{
	uint64_t h = CHAIN_START;
	size_t s = 0;
	for (const char *q; (q = memchr(p + s, '/', len - s)) != NULL; s = (size_t)(q - p) + 1)
		h = chain_add(h, p + s, (size_t)(q - p) - s);
	return chain_end(chain_add(h, p + s, len - s));
}

static struct watch_path *path_get(const struct watches *w, int kind, const char *path, size_t len)
{
	return (struct watch_path *)strmap_get(&w->paths[kind], path, len);
}

/* wp gets its first recursive registration: index it. 0 or -ENOMEM. */
static int rec_add(struct watches *w, struct watch_path *wp)
{
	struct watch_rec *e = malloc(sizeof *e);
	if (!e)
		return -ENOMEM;
	e->ent = (struct strmap_ent){ wp->path, wp->ent.len, chain_hash(wp->path, wp->ent.len) };
	e->wp = wp;
	if (strmap_put(&w->rec[wp->kind], &e->ent) < 0) {
		free(e);
		return -ENOMEM;
	}
	return 0;
}

/* wp lost its last recursive registration. */
static void rec_drop(struct watches *w, struct watch_path *wp)
{
	struct strmap_ent *e = strmap_del_h(&w->rec[wp->kind], wp->path, wp->ent.len,
					    chain_hash(wp->path, wp->ent.len));
	ZK_ASSERT(e && ((struct watch_rec *)e)->wp == wp);
	free(e);
}

void watches_init(struct watches *w, watch_fire_fn fire, void *ctx)
{
	memset(w, 0, sizeof *w);
	for (int k = 0; k < 2; k++) {
		strmap_init(&w->paths[k]);
		strmap_init(&w->rec[k]);
	}
	u64map_init(&w->owners);
	w->fire = fire;
	w->ctx = ctx;
}

static void plist_push(struct watch_reg *r)
{
	struct watch_reg **head = &r->wp->head[r->mode == WATCH_RECURSIVE];
	r->pprev = NULL;
	r->pnext = *head;
	if (*head) (*head)->pprev = r;
	*head = r;
}

static void plist_pop(struct watches *w, struct watch_reg *r)
{
	if (r->pprev) r->pprev->pnext = r->pnext; else r->wp->head[r->mode == WATCH_RECURSIVE] = r->pnext;
	if (r->pnext) r->pnext->pprev = r->pprev;
	if (r->mode == WATCH_RECURSIVE && !r->wp->head[1])
		rec_drop(w, r->wp);
}

/* Unlink and free one registration; the path goes with its last one. The owner stays. */
static void unlink_reg(struct watches *w, struct watch_reg *r)
{
	plist_pop(w, r);
	if (r->oprev) r->oprev->onext = r->onext; else r->owner->head = r->onext;
	if (r->onext) r->onext->oprev = r->oprev;
	struct watch_path *wp = r->wp;
	ZK_ASSERT(wp->n > 0 && r->owner->n > 0 && w->count[wp->kind] > 0);
	w->count[wp->kind]--;
	w->nrec[wp->kind] -= r->mode == WATCH_RECURSIVE;
	r->owner->n--;
	wp->n--;
	free(r);
	if (wp->n == 0) {
		ZK_ASSERT(!wp->head[0] && !wp->head[1]);
		strmap_del_h(&w->paths[wp->kind], wp->ent.key, wp->ent.len, wp->ent.hash);
		free(wp);
	}
}

void watches_drop_watcher(struct watches *w, uint64_t watcher)
{
	struct watch_owner *o = u64map_get(&w->owners, watcher);
	if (!o)
		return;
	while (o->head)
		unlink_reg(w, o->head);
	u64map_del(&w->owners, watcher);
	free(o);
}

void watches_free(struct watches *w)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&w->owners, &i, &id, &v);) {
		i = 0; /* the table changes under us: restart */
		watches_drop_watcher(w, id);
	}
	for (int k = 0; k < 2; k++) {
		ZK_ASSERT(w->paths[k].count == 0 && w->rec[k].count == 0);
		strmap_free(&w->paths[k]);
		strmap_free(&w->rec[k]);
	}
	u64map_free(&w->owners);
}

/* The registration of (wp, o), walking the shorter of the path's and the owner's lists. */
static struct watch_reg *reg_find(const struct watch_path *wp, const struct watch_owner *o)
{
	if (!wp || !o)
		return NULL;
	if (o->n < wp->n) {
		for (struct watch_reg *r = o->head; r; r = r->onext)
			if (r->wp == wp)
				return r;
		return NULL;
	}
	for (int l = 0; l < 2; l++)
		for (struct watch_reg *r = wp->head[l]; r; r = r->pnext)
			if (r->owner == o)
				return r;
	return NULL;
}

/* The caller indexed wp already if mode is RECURSIVE. */
static void set_mode(struct watches *w, struct watch_reg *r, int mode)
{
	int kind = r->wp->kind;
	plist_pop(w, r);
	w->nrec[kind] -= r->mode == WATCH_RECURSIVE;
	r->mode = mode;
	w->nrec[kind] += r->mode == WATCH_RECURSIVE;
	plist_push(r);
}

static struct watch_owner *owner_get(struct watches *w, uint64_t watcher)
{
	struct watch_owner *o = u64map_get(&w->owners, watcher);
	if (o)
		return o;
	o = calloc(1, sizeof *o);
	if (!o || u64map_put(&w->owners, watcher, o) < 0) {
		free(o);
		return NULL;
	}
	o->id = watcher;
	return o;
}

static struct watch_path *path_new(struct watches *w, int kind, const char *path, size_t len, uint32_t h)
{
	struct watch_path *wp = malloc(sizeof *wp + len + 1);
	if (!wp)
		return NULL;
	memcpy(wp->path, path, len);
	wp->path[len] = 0;
	wp->ent = (struct strmap_ent){ wp->path, (uint32_t)len, h };
	wp->head[0] = wp->head[1] = NULL;
	wp->n = 0;
	wp->kind = kind;
	if (strmap_put(&w->paths[kind], &wp->ent) < 0) {
		free(wp);
		return NULL;
	}
	return wp;
}

int watches_add_mode(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher,
		     int mode)
{
	ZK_ASSERT(kind == WATCH_DATA || kind == WATCH_CHILD);
	ZK_ASSERT(mode == WATCH_STANDARD || mode == WATCH_PERSISTENT || mode == WATCH_RECURSIVE);
	ZK_ASSERT(len < UINT32_MAX);
	uint32_t h = tree_hash(path, len);
	struct watch_path *wp = (struct watch_path *)strmap_get_h(&w->paths[kind], path, len, h);
	struct watch_owner *o = owner_get(w, watcher);
	if (!o)
		return -ENOMEM; /* an owner made here stays: watchers are only dropped with the connection */
	struct watch_reg *r = reg_find(wp, o);
	bool index = mode == WATCH_RECURSIVE && !(wp && wp->head[1]);
	if (r) {
		if (r->mode != mode && index && rec_add(w, wp) < 0)
			return -ENOMEM;
		if (r->mode != mode)
			set_mode(w, r, mode);
		return 0;
	}
	r = calloc(1, sizeof *r);
	if (!r || (!wp && (wp = path_new(w, kind, path, len, h)) == NULL)) {
		free(r);
		return -ENOMEM;
	}
	if (index && rec_add(w, wp) < 0) {
		free(r);
		if (wp->n == 0) {
			strmap_del_h(&w->paths[kind], wp->ent.key, wp->ent.len, wp->ent.hash);
			free(wp);
		}
		return -ENOMEM;
	}
	r->wp = wp;
	r->owner = o;
	r->mode = mode;
	plist_push(r);
	r->onext = o->head;
	if (o->head) o->head->oprev = r;
	o->head = r;
	o->n++;
	o->seen[kind] = true;
	wp->n++;
	w->count[kind]++;
	w->nrec[kind] += mode == WATCH_RECURSIVE;
	return 0;
}

int watches_add(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher)
{
	return watches_add_mode(w, kind, path, len, watcher, WATCH_STANDARD);
}

bool watches_remove(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher)
{
	ZK_ASSERT(kind == WATCH_DATA || kind == WATCH_CHILD);
	struct watch_reg *r = reg_find(path_get(w, kind, path, len), u64map_get(&w->owners, watcher));
	if (r)
		unlink_reg(w, r);
	return r != NULL;
}

int watches_mode(const struct watches *w, int kind, const char *path, size_t len, uint64_t watcher)
{
	ZK_ASSERT(kind == WATCH_DATA || kind == WATCH_CHILD);
	struct watch_reg *r = reg_find(path_get(w, kind, path, len), u64map_get(&w->owners, watcher));
	return r ? r->mode : -1;
}

int watches_contains(const struct watches *w, int kind, const char *path, size_t len)
{
	ZK_ASSERT(kind == WATCH_DATA || kind == WATCH_CHILD);
	if (len == 0)
		return 0; /* the parent walk yields nothing for "" */
	bool rooted = path[0] == '/';
	if (!rooted && !memchr(path, '/', len))
		return -EINVAL; /* PathParentIterator.next: substring(0, -1) */
	if (path_get(w, kind, path, len))
		return 1;
	return !rooted && w->nrec[kind] ? -EINVAL : 0; /* walked up to a segment with no '/' */
}

/* Deliver ev to r's watcher unless it already got one in this generation. */
static void deliver(struct watches *w, struct watch_reg *r, uint64_t gen, int event, const char *path,
		    size_t len)
{
	struct watch_owner *o = r->owner;
	if (o->fired_gen == gen)
		return;
	o->fired_gen = gen;
	w->fire(w->ctx, o->id, event, path, len);
}

/* Fire the recursive registrations on ancestor key[0..klen) (hash h), if it has any, for
 * a change of path. */
static void trigger_rec(struct watches *w, int kind, const char *key, size_t klen, uint32_t h, int event,
			const char *path, size_t len, uint64_t gen)
{
	struct watch_rec *e = (struct watch_rec *)strmap_get_h(&w->rec[kind], key, klen, h);
	for (struct watch_reg *r = e ? e->wp->head[1] : NULL; r; r = r->pnext)
		deliver(w, r, gen, event, path, len);
}

/* The recursive registrations on every proper ancestor of path, hashed in one pass. */
static void trigger_ancestors(struct watches *w, int kind, const char *path, size_t len, int event,
			      uint64_t gen)
{
	if (len < 2 || path[0] != '/')
		return; /* "/" has no ancestor; other strings never change in the tree */
	uint64_t h = chain_add(CHAIN_START, path, 0);
	trigger_rec(w, kind, "/", 1, chain_end(chain_add(h, path, 0)), event, path, len, gen);
	size_t s = 1;
	for (const char *q; (q = memchr(path + s, '/', len - s)) != NULL; s = (size_t)(q - path) + 1) {
		h = chain_add(h, path + s, (size_t)(q - path) - s);
		trigger_rec(w, kind, path, (size_t)(q - path), chain_end(h), event, path, len, gen);
	}
}

uint64_t watches_trigger(struct watches *w, int kind, const char *path, size_t len, int event,
			 uint64_t suppress_gen)
{
	uint64_t gen = suppress_gen ? suppress_gen : ++w->gen;
	bool children = event == ZEV_CHILDREN_CHANGED; /* never for recursive registrations */
	if (w->nrec[kind] && !children)
		trigger_ancestors(w, kind, path, len, event, gen);
	struct watch_path *wp = path_get(w, kind, path, len);
	if (!wp)
		return gen;
	for (struct watch_reg *r = children ? NULL : wp->head[1]; r; r = r->pnext)
		deliver(w, r, gen, event, path, len);
	/* Last: removing the last one-shot registration may free wp. A suppressed watcher's
	 * one-shot registration goes too, as in ZooKeeper. */
	for (struct watch_reg *r = wp->head[0], *next; r; r = next) {
		next = r->pnext;
		deliver(w, r, gen, event, path, len);
		if (r->mode == WATCH_STANDARD)
			unlink_reg(w, r);
	}
	return gen;
}

uint64_t watches_total(const struct watches *w) { return w->count[0] + w->count[1]; }
size_t watches_npaths(const struct watches *w, int kind) { return w->paths[kind].count; }
size_t watches_nwatchers(const struct watches *w, int kind)
{
	size_t n = 0;
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&w->owners, &i, &id, &v);)
		n += ((struct watch_owner *)v)->seen[kind];
	return n;
}

void watches_walk_by_path(const struct watches *w, int kind, watch_walk_fn fn, void *ctx)
{
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(&w->paths[kind], &i, &e);) {
		struct watch_path *wp = (struct watch_path *)e;
		bool first = true;
		for (int l = 0; l < 2; l++)
			for (struct watch_reg *r = wp->head[l]; r; r = r->pnext, first = false)
				fn(ctx, r->owner->id, wp->path, wp->ent.len, first);
	}
}

void watches_walk_by_watcher(const struct watches *w, int kind, watch_walk_fn fn, void *ctx)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&w->owners, &i, &id, &v);) {
		struct watch_owner *o = v;
		if (!o->seen[kind])
			continue;
		bool first = true;
		for (struct watch_reg *r = o->head; r; r = r->onext) {
			if (r->wp->kind != kind)
				continue;
			fn(ctx, id, r->wp->path, r->wp->ent.len, first);
			first = false;
		}
		if (first)
			fn(ctx, id, NULL, 0, true);
	}
}
