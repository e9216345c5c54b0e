/* addWatch, checkWatches, removeWatches, setWatches[2], getEphemerals, getAllChildrenNumber,
 * as ZooKeeper 3.8.0's FinalRequestProcessor and DataTree answer them (checked against the
 * running server; see tests/integration/test_watch_persistent.py). */
#include "tree/ops_ext.h"
#include "net/log.h"
#include "net/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool ops_ext_is(int32_t type)
{
	switch (type) {
	case ZOP_ADDWATCH: case ZOP_CHECKWATCHES: case ZOP_REMOVEWATCHES: case ZOP_SETWATCHES2:
	case ZOP_GETEPHEMERALS: case ZOP_GETALLCHILDRENNUMBER:
		return true;
	default:
		return false;
	}
}

/* ---- setWatches, setWatches2 ---- */

/* A null path, which 3.8.0 keeps as a null key (wchc prints it "null"), is kept as "null". */
static const char *null_path(const char *path, int32_t *plen)
{
	if (path)
		return path;
	*plen = 4;
	return "null";
}

/* The event a client that last saw zxid rel missed on list `kind` (0 data, 1 exist,
 * 2 child) at node n (NULL: absent), or 0 when the watch is to be registered. */
static int missed_event(int kind, const struct tree_node *n, int64_t rel)
{
	switch (kind) {
	case 0: return !n ? ZEV_DELETED : n->stat.mzxid > rel ? ZEV_DATA_CHANGED : 0;
	case 1: return n ? ZEV_CREATED : 0;
	default: return !n ? ZEV_DELETED : n->stat.pzxid > rel ? ZEV_CHILDREN_CHANGED : 0;
	}
}

/* Re-register one path of list `kind` (0 data, 1 exist, 2 child, 3 persistent, 4
 * recursive), or fire at once what the client missed (DataTree.setWatches). A persistent
 * watch has nothing to catch up on: it is registered, in both tables, without an event. */
static int rewatch(struct tree *t, int kind, const char *path, int32_t plen, int64_t rel, uint64_t watcher)
{
	struct watches *w = &t->watches;
	size_t len = (size_t)plen;
	if (kind >= 3) {
		int mode = kind == 3 ? WATCH_PERSISTENT : WATCH_RECURSIVE;
		int rc = watches_add_mode(w, WATCH_CHILD, path, len, watcher, mode);
		return rc < 0 ? rc : watches_add_mode(w, WATCH_DATA, path, len, watcher, mode);
	}
	int ev = missed_event(kind, tree_lookup(t, path, len), rel);
	if (ev) {
		w->fire(w->ctx, watcher, ev, path, len);
		return 0;
	}
	return watches_add(w, kind == 2 ? WATCH_CHILD : WATCH_DATA, path, len, watcher);
}

/* One pass over the record: validate only (t == NULL), or apply. */
static int set_watches_pass(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher, int lists)
{
	struct jute_in in;
	jin_init(&in, body, len);
	int64_t rel = jin_i64(&in);
	for (int kind = 0; kind < lists && jin_ok(&in); kind++) {
		int32_t n = jin_vec(&in, INT32_MAX);
		for (int32_t i = 0; i < n && jin_ok(&in); i++) {
			int32_t plen;
			const char *path = (const char *)jin_buf(&in, &plen);
			if (!path && kind < 3)
				return ZMARSHALLINGERROR; /* a null path: ZooKeeper's node lookup throws */
			path = null_path(path, &plen); /* kept as a null key, as by addWatch */
			if (t && rewatch(t, kind, path, plen, rel, watcher) < 0)
				return ZSYSTEMERROR;
		}
	}
	return jin_ok(&in) ? ZOK : ZMARSHALLINGERROR;
}

int ops_set_watches_v(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher, bool v2)
{
	int lists = v2 ? 5 : 3;
	int err = set_watches_pass(NULL, body, len, watcher, lists);
	return err != ZOK ? err : set_watches_pass(t, body, len, watcher, lists);
}

/* ---- addWatch, checkWatches, removeWatches ---- */

/* AddWatchRequest{path, mode}. The path need not exist or even be valid (ZooKeeper stores
 * the string); the reply body is an ErrorResponse{int err = 0}. */
static int add_watch(struct tree *t, const char *path, int32_t plen, int32_t mode, uint64_t watcher,
		     struct jute_out *out)
{
	if (mode != ZWM_PERSISTENT && mode != ZWM_PERSISTENT_RECURSIVE)
		return ZMARSHALLINGERROR; /* WatcherMode.fromZooDef throws */
	int m = mode == ZWM_PERSISTENT ? WATCH_PERSISTENT : WATCH_RECURSIVE;
	if (watches_add_mode(&t->watches, WATCH_DATA, path, (size_t)plen, watcher, m) < 0 ||
	    watches_add_mode(&t->watches, WATCH_CHILD, path, (size_t)plen, watcher, m) < 0)
		return ZSYSTEMERROR;
	jout_i32(out, 0);
	return ZOK;
}

/* 3.8.0 knows WatcherType Children, Data and Any only: Persistent (4) and
 * PersistentRecursive (5), added in 3.9, fail its WatcherType.fromInt like any other value. */
static bool watcher_type_ok(int32_t type) { return type == ZWT_CHILDREN || type == ZWT_DATA || type == ZWT_ANY; }

static int check_watches(struct tree *t, const char *path, int32_t plen, int32_t type)
{
	if (!watcher_type_ok(type) || !path)
		return ZMARSHALLINGERROR;
	int c = type != ZWT_DATA ? watches_contains(&t->watches, WATCH_CHILD, path, (size_t)plen) : 0;
	int d = type != ZWT_CHILDREN ? watches_contains(&t->watches, WATCH_DATA, path, (size_t)plen) : 0;
	if (c < 0 || d < 0)
		return ZMARSHALLINGERROR;
	return c || d ? ZOK : ZNOWATCHER;
}

/* No event goes out: the client library makes its own DataWatchRemoved/ChildWatchRemoved. */
static int remove_watches(struct tree *t, const char *path, int32_t plen, int32_t type, uint64_t watcher)
{
	if (!watcher_type_ok(type))
		return ZMARSHALLINGERROR;
	if (!path) {
		/* 3.8.0 drops a null-path watch from the first table that has one, then throws
		 * (WatcherModeManager compares the null path): MarshallingError. */
		path = null_path(path, &plen);
		bool c = type != ZWT_DATA && watches_remove(&t->watches, WATCH_CHILD, path, 4, watcher);
		bool d = !c && type != ZWT_CHILDREN && watches_remove(&t->watches, WATCH_DATA, path, 4, watcher);
		return c || d ? ZMARSHALLINGERROR : ZNOWATCHER;
	}
	bool c = type != ZWT_DATA && watches_remove(&t->watches, WATCH_CHILD, path, (size_t)plen, watcher);
	bool d = type != ZWT_CHILDREN && watches_remove(&t->watches, WATCH_DATA, path, (size_t)plen, watcher);
	return c || d ? ZOK : ZNOWATCHER;
}

/* ---- getEphemerals ---- */

/* Java's String.trim(): what is left once chars <= ' ' are cut from both ends. */
static size_t trimmed_len(const char *s, int32_t len, const char **start)
{
	size_t a = 0, b = len > 0 ? (size_t)len : 0;
	while (a < b && (unsigned char)s[a] <= ' ')
		a++;
	while (b > a && (unsigned char)s[b - 1] <= ' ')
		b--;
	*start = s + a;
	return b - a;
}

/* startsWith on Java strings: a byte prefix that ends inside a UTF-8 sequence is not one. */
static bool has_prefix(const char *p, size_t len, const char *pre, size_t plen)
{
	if (plen > len || memcmp(p, pre, plen) != 0)
		return false;
	return plen == len || ((unsigned char)p[plen] & 0xc0) != 0x80;
}

/* GetEphemeralsResponse{vector<ustring>}: the session's ephemerals whose path starts with
 * the prefix; a null, blank or "/" prefix (after trimming) lists all. ZooKeeper's order is
 * a HashSet's; ours is the session's list, newest first. */
static int get_ephemerals(struct tree *t, int64_t session, const char *pre, int32_t prelen,
			  struct jute_out *out)
{
	const char *tp;
	size_t tlen = pre ? trimmed_len(pre, prelen, &tp) : 0;
	bool all = tlen == 0 || (tlen == 1 && tp[0] == '/');
	const struct tree_eph_list *l = tree_ephemerals(t, session);
	size_t mark = zbuf_len(out->b);
	jout_i32(out, 0); /* the count, patched below */
	int32_t n = 0;
	char *buf = NULL;
	size_t cap = 0;
	for (const struct tree_node *e = l ? l->head : NULL; e && out->err == 0; e = e->eph_next) {
		size_t len = tree_node_path_len(e);
		if (len + 1 > cap) {
			free(buf);
			cap = 2 * (len + 1);
			if ((buf = malloc(cap)) == NULL)
				return ZSYSTEMERROR;
		}
		tree_node_path(e, buf, cap);
		if (all || has_prefix(buf, len, pre, (size_t)prelen)) {
			jout_buf(out, buf, (int32_t)len);
			n++;
		}
	}
	free(buf);
	if (out->err == 0)
		be32_put(zbuf_head(out->b) + mark, (uint32_t)n);
	return ZOK;
}

/* ---- getAllChildrenNumber ---- */

/* Descendants of n, by an explicit stack of the inner nodes still to visit (leaves, most
 * znodes, are counted from their parent's table and never pushed): no recursion, so any
 * depth is safe, and O(subtree). -ENOMEM if the stack cannot grow. */
static long long count_descendants(const struct tree_node *n)
{
	size_t cap = 64, top = 0;
	const struct tree_node **stack = malloc(cap * sizeof *stack);
	if (!stack)
		return -ENOMEM;
	long long count = 0;
	stack[top++] = n;
	while (top > 0) {
		const struct strmap *kids = tree_kids(stack[--top]);
		count += (long long)kids->count;
		struct strmap_ent *e;
		for (size_t i = 0; strmap_next(kids, &i, &e);) {
			const struct tree_node *k = (const struct tree_node *)e;
			if (tree_kids(k)->count == 0)
				continue;
			if (top == cap) {
				const struct tree_node **s = realloc(stack, 2 * cap * sizeof *stack);
				if (!s) {
					free(stack);
					return -ENOMEM;
				}
				stack = s;
				cap *= 2;
			}
			stack[top++] = k;
		}
	}
	free(stack);
	return count;
}

/* GetAllChildrenNumberResponse{int}. ZooKeeper counts the keys of its node table that
 * start with path + "/"; its table holds the root under "" and "/", so "/" answers every
 * node but the root, and "" one more. */
static int get_all_children_number(struct tree *t, const char *path, int32_t plen,
				   const struct acl_who *who, struct jute_out *out)
{
	if (!path)
		return ZMARSHALLINGERROR;
	const struct tree_node *n = tree_lookup(t, path, (size_t)plen);
	if (!n)
		return ZNONODE;
	if (!acl_allows(n->acl->bytes, n->acl->ent.len, ZPERM_READ, who))
		return ZNOAUTH; /* after NoNode, as ZooKeeper checks it */
	long long count;
	if (n == t->root)
		count = (long long)t->node_count - (plen == 1 ? 1 : 0);
	else if ((count = count_descendants(n)) < 0)
		return ZSYSTEMERROR;
	jout_i32(out, count > INT32_MAX ? INT32_MAX : (int32_t)count);
	return ZOK;
}

int ops_ext(struct tree *t, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
	    int64_t session, const struct acl_who *who, struct jute_out *out)
{
	if (type == ZOP_SETWATCHES2)
		return ops_set_watches_v(t, body, len, watcher, true);
	struct jute_in in;
	jin_init(&in, body, len);
	int32_t plen;
	const char *path = (const char *)jin_buf(&in, &plen);
	bool has_int = type == ZOP_ADDWATCH || type == ZOP_CHECKWATCHES || type == ZOP_REMOVEWATCHES;
	int32_t arg = has_int ? jin_i32(&in) : 0;
	if (!jin_ok(&in))
		return ZMARSHALLINGERROR;
	switch (type) {
	case ZOP_ADDWATCH:
		path = null_path(path, &plen);
		return add_watch(t, path, plen, arg, watcher, out);
	case ZOP_CHECKWATCHES:
		return check_watches(t, path, plen, arg);
	case ZOP_REMOVEWATCHES:
		return remove_watches(t, path, plen, arg, watcher);
	case ZOP_GETEPHEMERALS:
		return get_ephemerals(t, session, path, plen, out);
	case ZOP_GETALLCHILDRENNUMBER:
		return get_all_children_number(t, path, plen, who, out);
	default:
		return ZUNIMPLEMENTED;
	}
}
