/* Watch tables; see watch.h. Registrations are on two intrusive lists: the path's and the
 * watcher's, so both "fire a path" and "drop a watcher" are linear in what they remove. */
#include "tree/watch.h"
#include "net/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct watch_reg;

struct watch_path {
	struct strmap_ent ent;
	struct watch_reg *head;
	int kind;
	char path[];
};

struct watch_owner {
	uint64_t id;
	uint64_t fired_gen;
	uint32_t n[2]; /* registrations per kind */
	struct watch_reg *head;
};

struct watch_reg {
	struct watch_path *wp;
	struct watch_owner *owner;
	struct watch_reg *pnext, *pprev; /* on wp's list */
	struct watch_reg *onext, *oprev; /* on owner's list */
};

void watches_init(struct watches *w, watch_fire_fn fire, void *ctx)
{
	memset(w, 0, sizeof *w);
	strmap_init(&w->paths[0]);
	strmap_init(&w->paths[1]);
	u64map_init(&w->owners);
	w->fire = fire;
	w->ctx = ctx;
}

static void unlink_reg(struct watches *w, struct watch_reg *r)
{
	if (r->pprev) r->pprev->pnext = r->pnext; else r->wp->head = r->pnext;
	if (r->pnext) r->pnext->pprev = r->pprev;
	if (r->oprev) r->oprev->onext = r->onext; else r->owner->head = r->onext;
	if (r->onext) r->onext->oprev = r->oprev;
	struct watch_path *wp = r->wp;
	struct watch_owner *o = r->owner;
	w->count[wp->kind]--;
	o->n[wp->kind]--;
	free(r);
	if (!wp->head) {
		strmap_del(&w->paths[wp->kind], wp->ent.key, wp->ent.len);
		free(wp);
	}
	if (!o->head) {
		u64map_del(&w->owners, o->id);
		free(o);
	}
}

void watches_free(struct watches *w)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&w->owners, &i, &id, &v);) {
		i = 0; /* the table changes under us: restart */
		watches_drop_watcher(w, id);
	}
	strmap_free(&w->paths[0]);
	strmap_free(&w->paths[1]);
	u64map_free(&w->owners);
}

int watches_add(struct watches *w, int kind, const char *path, size_t len, uint64_t watcher)
{
	ZK_ASSERT(kind == WATCH_DATA || kind == WATCH_CHILD);
	uint32_t h = tree_hash(path, len);
	struct watch_path *wp = (struct watch_path *)strmap_get_h(&w->paths[kind], path, len, h);
	struct watch_owner *o = u64map_get(&w->owners, watcher);
	if (wp && o)
		for (struct watch_reg *r = wp->head; r; r = r->pnext)
			if (r->owner == o)
				return 0;
	struct watch_reg *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	if (!wp) {
		wp = malloc(sizeof *wp + len + 1);
		if (!wp) {
			free(r);
			return -ENOMEM;
		}
		memcpy(wp->path, path, len);
		wp->path[len] = 0;
		wp->ent = (struct strmap_ent){ wp->path, (uint32_t)len, h };
		wp->head = NULL;
		wp->kind = kind;
		if (strmap_put(&w->paths[kind], &wp->ent) < 0) {
			free(wp);
			free(r);
			return -ENOMEM;
		}
	}
	if (!o) {
		o = calloc(1, sizeof *o);
		if (!o || u64map_put(&w->owners, watcher, o) < 0) {
			free(o);
			free(r);
			if (!wp->head) {
				strmap_del(&w->paths[kind], path, len);
				free(wp);
			}
			return -ENOMEM;
		}
		o->id = watcher;
	}
	r->wp = wp;
	r->owner = o;
	r->pnext = wp->head;
	if (wp->head) wp->head->pprev = r;
	wp->head = r;
	r->onext = o->head;
	if (o->head) o->head->oprev = r;
	o->head = r;
	w->count[kind]++;
	o->n[kind]++;
	return 0;
}

void watches_drop_watcher(struct watches *w, uint64_t watcher)
{
	struct watch_owner *o = u64map_get(&w->owners, watcher);
	while (o && o->head) {
		bool last = o->head->onext == NULL;
		unlink_reg(w, o->head); /* frees o with the last registration */
		if (last)
			break;
	}
}

uint64_t watches_trigger(struct watches *w, int kind, const char *path, size_t len, int event,
			 uint64_t suppress_gen)
{
	uint64_t gen = suppress_gen ? suppress_gen : ++w->gen;
	struct watch_path *wp = (struct watch_path *)strmap_get(&w->paths[kind], path, len);
	while (wp) {
		struct watch_reg *r = wp->head;
		bool last = r->pnext == NULL;
		uint64_t id = r->owner->id;
		bool skip = suppress_gen && r->owner->fired_gen == suppress_gen;
		r->owner->fired_gen = gen;
		unlink_reg(w, r);
		if (!skip)
			w->fire(w->ctx, id, event, path, len);
		if (last)
			break;
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
		n += ((struct watch_owner *)v)->n[kind] > 0;
	return n;
}

void watches_walk_by_path(const struct watches *w, int kind, watch_walk_fn fn, void *ctx)
{
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(&w->paths[kind], &i, &e);) {
		struct watch_path *wp = (struct watch_path *)e;
		for (struct watch_reg *r = wp->head; r; r = r->pnext)
			fn(ctx, r->owner->id, wp->path, wp->ent.len, r == wp->head);
	}
}

void watches_walk_by_watcher(const struct watches *w, int kind, watch_walk_fn fn, void *ctx)
{
	uint64_t id;
	void *v;
	for (size_t i = 0; u64map_next(&w->owners, &i, &id, &v);) {
		struct watch_owner *o = v;
		bool first = true;
		for (struct watch_reg *r = o->head; r; r = r->onext) {
			if (r->wp->kind != kind)
				continue;
			fn(ctx, id, r->wp->path, r->wp->ent.len, first);
			first = false;
		}
	}
}
