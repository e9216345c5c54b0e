/* The znode hash-trie and txn application; the rules are in tree.h. */
#include "tree/tree.h"
#include "net/log.h"
#include "net/proto.h"
#include "tree/path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* vector<ACL> with one entry: perms=31, scheme "world", id "anyone". */
const struct strmap tree_no_kids;

const uint8_t tree_acl_open[] = {
	0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd',
	0, 0, 0, 6, 'a', 'n', 'y', 'o', 'n', 'e',
};
const size_t tree_acl_open_len = sizeof tree_acl_open;
static const uint8_t acl_read_only[] = {
	0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd',
	0, 0, 0, 6, 'a', 'n', 'y', 'o', 'n', 'e',
};

static struct tree_acl *acl_intern(struct tree *t, const uint8_t *bytes, size_t len)
{
	uint32_t h = tree_hash(bytes, len);
	struct tree_acl *a = (struct tree_acl *)strmap_get_h(&t->acls, (const char *)bytes, len, h);
	if (a) {
		a->refs++;
		return a;
	}
	a = malloc(sizeof *a + len);
	if (!a)
		return NULL;
	memcpy(a->bytes, bytes, len);
	a->ent = (struct strmap_ent){ (const char *)a->bytes, (uint32_t)len, h };
	a->refs = 1;
	if (strmap_put(&t->acls, &a->ent) < 0) {
		free(a);
		return NULL;
	}
	return a;
}

static void acl_release(struct tree *t, struct tree_acl *a)
{
	ZK_ASSERT(a->refs > 0);
	if (--a->refs)
		return;
	strmap_del(&t->acls, a->ent.key, a->ent.len);
	free(a);
}

/* Fire kind watches on path for event ev of a change of the znode whose ACL is `acl` (the
 * node itself, or its parent for NodeChildrenChanged, as DataTree passes them): only
 * connections allowed to READ it receive the event (struct watches.event_acl). */
static uint64_t trigger_acl(struct tree *t, const struct tree_acl *acl, int kind, const char *path,
			    size_t len, int ev, uint64_t gen)
{
	ZK_ASSERT(acl && !t->watches.event_acl);
	t->watches.event_acl = acl->bytes;
	t->watches.event_acl_len = acl->ent.len;
	uint64_t g = watches_trigger(&t->watches, kind, path, len, ev, gen);
	t->watches.event_acl = NULL;
	t->watches.event_acl_len = 0;
	return g;
}

/* A node's data lives in the node's own allocation, after its name, when it fits the room
 * reserved at creation (inline_cap); a larger setData later moves it out. One allocation a
 * znode instead of two saves ~30 bytes each (a million znodes: ~30 MB). */
static uint8_t *node_inline(struct tree_node *n) { return (uint8_t *)n->name + n->ent.len + 1; }

static struct tree_node *node_new(struct tree *t, const char *name, size_t len,
				  const uint8_t *acl, size_t acl_len, size_t data_room)
{
	if (data_room > UINT32_MAX / 2)
		data_room = 0;
	struct tree_node *n = calloc(1, sizeof *n + len + 1 + data_room);
	if (!n)
		return NULL;
	memcpy(n->name, name, len);
	n->inline_cap = (uint32_t)data_room;
	n->ent = (struct strmap_ent){ n->name, (uint32_t)len, tree_hash(name, len) };
	n->acl = acl_intern(t, acl, acl_len);
	if (!n->acl) {
		free(n);
		return NULL;
	}
	return n;
}

static void node_free(struct tree *t, struct tree_node *n)
{
	if (n->kids) {
		strmap_free(n->kids);
		free(n->kids);
	}
	acl_release(t, n->acl);
	if (n->data != node_inline(n))
		free(n->data);
	free(n);
}

static int set_data(struct tree_node *n, const uint8_t *data, int32_t len)
{
	uint8_t *copy = NULL;
	if (len > 0 && (uint32_t)len <= n->inline_cap) {
		copy = node_inline(n);
		memmove(copy, data, (size_t)len);
	} else if (len > 0) {
		copy = malloc((size_t)len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, data, (size_t)len);
	}
	if (n->data != node_inline(n))
		free(n->data);
	n->data = copy;
	n->data_len = data ? len : -1;
	return 0;
}

int tree_replace_data(struct tree *t, struct tree_node *n, const uint8_t *data, int32_t len)
{
	int32_t old = n->data_len > 0 ? n->data_len : 0;
	if (set_data(n, data, len) < 0)
		return -ENOMEM;
	t->data_bytes += (uint64_t)(len > 0 ? len : 0) - (uint64_t)old;
	return 0;
}

static int add_child(struct tree *t, struct tree_node *parent, const char *name, size_t len,
		     const uint8_t *acl, size_t acl_len, size_t data_room, struct tree_node **out)
{
	struct tree_node *n = node_new(t, name, len, acl, acl_len, data_room);
	if (n && !parent->kids && (parent->kids = calloc(1, sizeof *parent->kids)) == NULL) {
		node_free(t, n);
		return -ENOMEM;
	}
	if (!n || strmap_put(parent->kids, &n->ent) < 0) {
		if (n)
			node_free(t, n);
		return -ENOMEM;
	}
	n->parent = parent;
	n->data_len = 0;
	t->node_count++;
	*out = n;
	return 0;
}

int tree_init(struct tree *t, watch_fire_fn fire, void *fire_ctx)
{
	memset(t, 0, sizeof *t);
	u64map_init(&t->ephemerals);
	strmap_init(&t->acls);
	strmap_init(&t->quotas);
	watches_init(&t->watches, fire, fire_ctx);
	t->root = node_new(t, "", 0, tree_acl_open, tree_acl_open_len, 0);
	if (!t->root)
		return -ENOMEM;
	t->node_count = 1;
	struct tree_node *zk, *n;
	if (add_child(t, t->root, "zookeeper", 9, tree_acl_open, tree_acl_open_len, 0, &zk) < 0 ||
	    add_child(t, zk, "quota", 5, tree_acl_open, tree_acl_open_len, 0, &n) < 0 ||
	    add_child(t, zk, "config", 6, acl_read_only, sizeof acl_read_only, 0, &n) < 0)
		return -ENOMEM;
	n->stat.aversion = -1; /* ZooKeeper sets its ACL with setACL(..., version -1) */
	t->data_bytes = strlen("/zookeeper") + strlen("/zookeeper/quota") + strlen("/zookeeper/config");
	return 0;
}

static void free_subtree(struct tree *t, struct tree_node *n)
{
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
		free_subtree(t, (struct tree_node *)e);
	node_free(t, n);
}

void tree_free(struct tree *t)
{
	if (t->root)
		free_subtree(t, t->root);
	uint64_t k;
	void *v;
	for (size_t i = 0; u64map_next(&t->ephemerals, &i, &k, &v);)
		free(v);
	u64map_free(&t->ephemerals);
	tree_quota_free(t);
	watches_free(&t->watches);
	ZK_ASSERT(t->acls.count == 0);
	strmap_free(&t->acls);
	memset(t, 0, sizeof *t);
}

struct tree_node *tree_lookup(const struct tree *t, const char *path, size_t len)
{
	if (len == 0)
		return t->root; /* ZooKeeper keeps the root under "" as well as "/" */
	if (path[0] != '/' || (len > 1 && path[len - 1] == '/'))
		return NULL;
	struct tree_node *n = t->root;
	size_t i = 1;
	while (n && i < len) {
		const char *slash = memchr(path + i, '/', len - i);
		size_t clen = slash ? (size_t)(slash - (path + i)) : len - i;
		if (clen == 0)
			return NULL;
		n = (struct tree_node *)strmap_get(tree_kids(n), path + i, clen);
		i += clen + 1;
	}
	return n;
}

void tree_stat(const struct tree_node *n, struct zk_stat *out)
{
	/* The stored cversion counts creates; clients see creates + deletes, which is
	 * 2 * creates - children (ZooKeeper's DataNode.copyStat). */
	out->p = n->stat;
	out->num_children = (int32_t)tree_kids(n)->count;
	/* Java int arithmetic: wraps instead of overflowing (a hostile txn can set any value). */
	out->p.cversion = (int32_t)((uint32_t)n->stat.cversion * 2u - (uint32_t)out->num_children);
	out->data_length = n->data_len > 0 ? n->data_len : 0;
	/* Clients see 0 for a container or TTL node (DataNode.getClientEphemeralOwner). */
	if (tree_owner_is_reapable(n->stat.ephemeral_owner))
		out->p.ephemeral_owner = 0;
}

size_t tree_node_path_len(const struct tree_node *n)
{
	size_t len = 0;
	for (const struct tree_node *m = n; m->parent; m = m->parent)
		len += 1 + m->ent.len;
	return len ? len : 1;
}

long tree_node_path(const struct tree_node *n, char *buf, size_t cap)
{
	if (!n->parent) {
		if (cap < 2)
			return -ENAMETOOLONG;
		buf[0] = '/';
		buf[1] = 0;
		return 1;
	}
	size_t len = 0;
	for (const struct tree_node *m = n; m->parent; m = m->parent)
		len += 1 + m->ent.len;
	if (len + 1 > cap)
		return -ENAMETOOLONG;
	buf[len] = 0;
	size_t end = len;
	for (const struct tree_node *m = n; m->parent; m = m->parent) {
		end -= m->ent.len;
		memcpy(buf + end, m->name, m->ent.len);
		buf[--end] = '/';
	}
	return (long)len;
}

const struct tree_eph_list *tree_ephemerals(const struct tree *t, int64_t owner)
{
	return u64map_get(&t->ephemerals, (uint64_t)owner);
}

static int eph_link(struct tree *t, struct tree_node *n)
{
	uint64_t owner = (uint64_t)n->stat.ephemeral_owner;
	struct tree_eph_list *l = u64map_get(&t->ephemerals, owner);
	if (!l) {
		l = calloc(1, sizeof *l);
		if (!l || u64map_put(&t->ephemerals, owner, l) < 0) {
			free(l);
			return -ENOMEM;
		}
	}
	n->eph_next = l->head;
	if (l->head)
		l->head->eph_prev = n;
	l->head = n;
	l->count++;
	t->eph_count++;
	return 0;
}

static void eph_unlink(struct tree *t, struct tree_node *n)
{
	uint64_t owner = (uint64_t)n->stat.ephemeral_owner;
	struct tree_eph_list *l = u64map_get(&t->ephemerals, owner);
	ZK_ASSERT(l && l->count > 0);
	if (n->eph_prev) n->eph_prev->eph_next = n->eph_next; else l->head = n->eph_next;
	if (n->eph_next) n->eph_next->eph_prev = n->eph_prev;
	n->eph_next = n->eph_prev = NULL;
	t->eph_count--;
	if (--l->count == 0) {
		u64map_del(&t->ephemerals, owner);
		free(l);
	}
}

/* Only nodes whose ephemeralOwner is a session (not 0, a container or a TTL) are listed. */
static bool is_session_owner(int64_t owner) { return owner != 0 && (uint64_t)owner >> 56 != 0xff && owner != INT64_MIN; }

/* Containers and TTL nodes are on t->reapable, through the ephemeral links they do not use. */
static void reap_link(struct tree *t, struct tree_node *n)
{
	ZK_ASSERT(tree_owner_is_reapable(n->stat.ephemeral_owner) && !n->eph_prev && !n->eph_next);
	n->eph_next = t->reapable;
	if (t->reapable)
		t->reapable->eph_prev = n;
	t->reapable = n;
	t->reapable_count++;
}

static void reap_unlink(struct tree *t, struct tree_node *n)
{
	ZK_ASSERT(t->reapable_count > 0);
	if (n->eph_prev) n->eph_prev->eph_next = n->eph_next; else t->reapable = n->eph_next;
	if (n->eph_next) n->eph_next->eph_prev = n->eph_prev;
	n->eph_next = n->eph_prev = NULL;
	t->reapable_count--;
}

/* Put n on the list its owner calls for (after its stat is set). */
static int owner_link(struct tree *t, struct tree_node *n)
{
	if (tree_owner_is_reapable(n->stat.ephemeral_owner))
		reap_link(t, n);
	else if (is_session_owner(n->stat.ephemeral_owner))
		return eph_link(t, n);
	return 0;
}

static void owner_unlink(struct tree *t, struct tree_node *n)
{
	if (tree_owner_is_reapable(n->stat.ephemeral_owner))
		reap_unlink(t, n);
	else if (is_session_owner(n->stat.ephemeral_owner))
		eph_unlink(t, n);
}

int tree_load_node(struct tree *t, const char *path, size_t len, const uint8_t *data, int32_t dlen,
		   const uint8_t *acl, size_t acl_len, const struct tree_stat *st)
{
	struct tree_node *n;
	if (len == 0 || (len == 1 && path[0] == '/')) {
		n = t->root;
	} else {
		if (path_invalid(path, len))
			return -EINVAL; /* e.g. "//x": not a node a snapshot can hold */
		long plen = path_parent_len(path, len);
		struct tree_node *parent = plen < 0 ? NULL : tree_lookup(t, path, (size_t)plen);
		if (plen < 0)
			return -EINVAL;
		if (!parent)
			return -ENOENT;
		size_t nlen;
		const char *name = path_basename(path, len, &nlen);
		if (nlen == 0)
			return -EINVAL;
		n = (struct tree_node *)strmap_get(tree_kids(parent), name, nlen);
		if (!n) {
			if (add_child(t, parent, name, nlen, acl, acl_len, dlen > 0 ? (size_t)dlen : 0, &n) < 0)
				return -ENOMEM;
			t->data_bytes += len;
		}
	}
	owner_unlink(t, n);
	struct tree_acl *a = acl_intern(t, acl, acl_len);
	if (!a)
		return -ENOMEM;
	acl_release(t, n->acl);
	n->acl = a;
	int32_t old = n->data_len > 0 ? n->data_len : 0;
	if (set_data(n, data, dlen) < 0)
		return -ENOMEM;
	t->data_bytes += (uint64_t)(dlen > 0 ? dlen : 0) - (uint64_t)old;
	n->stat = *st;
	if (owner_link(t, n) < 0)
		return -ENOMEM;
	if (st->mzxid > t->last_zxid)
		t->last_zxid = st->mzxid;
	if (st->pzxid > t->last_zxid)
		t->last_zxid = st->pzxid;
	return 0;
}

/* The new node's ephemeralOwner: the txn type decides (a CreateTxn's ephemeral flag, or a
 * container, or a TTL node). */
static int64_t create_owner(const struct txn *x)
{
	if (x->hdr.type == ZOP_CREATECONTAINER)
		return TREE_OWNER_CONTAINER;
	if (x->hdr.type == ZOP_CREATETTL)
		return tree_ttl_owner(x->ttl);
	return x->ephemeral ? x->hdr.client_id : 0;
}

static int apply_create(struct tree *t, const struct txn *x, struct tree_result *res)
{
	long plen = path_parent_len(x->path, (size_t)x->path_len);
	struct tree_node *parent = plen < 0 ? NULL : tree_lookup(t, x->path, (size_t)plen);
	if (!parent) {
		res->err = ZNONODE;
		return 0;
	}
	size_t nlen;
	const char *name = path_basename(x->path, (size_t)x->path_len, &nlen);
	int64_t zxid = x->hdr.zxid;
	if (strmap_get(tree_kids(parent), name, nlen)) {
		/* Replayed over a fuzzy snapshot: the parent may still need this txn's counters. */
		if (x->parent_cversion > parent->stat.cversion) {
			parent->stat.cversion = x->parent_cversion;
			parent->stat.pzxid = zxid;
		}
		res->err = ZNODEEXISTS;
		return 0;
	}
	struct tree_node *n;
	if (add_child(t, parent, name, nlen, x->acl, x->acl_len, x->data_len > 0 ? (size_t)x->data_len : 0, &n) < 0 ||
	    set_data(n, x->data, x->data_len) < 0)
		return -ENOMEM;
	n->stat = (struct tree_stat){ .czxid = zxid, .mzxid = zxid, .ctime = x->hdr.time_ms,
				      .mtime = x->hdr.time_ms, .pzxid = zxid,
				      .ephemeral_owner = create_owner(x) };
	if (owner_link(t, n) < 0)
		return -ENOMEM;
	/* Only ever raised, as ZooKeeper 3.8's DataTree.createNode: a replayed create of a node
	 * deleted later in the fuzzy range must not take the counters back (nor may a multi's
	 * later create). */
	/* Java int arithmetic: the increment wraps (a hostile txn can bring any cversion). */
	int32_t cversion = x->parent_cversion == -1 ? (int32_t)((uint32_t)parent->stat.cversion + 1u)
						    : x->parent_cversion;
	if (cversion > parent->stat.cversion) {
		parent->stat.cversion = cversion;
		parent->stat.pzxid = zxid;
	}
	t->data_bytes += (uint64_t)x->path_len + (uint64_t)(x->data_len > 0 ? x->data_len : 0);
	tree_stat(n, &res->stat);
	if (tree_quota_created(t, x->path, (size_t)x->path_len, x->data_len) < 0)
		return -ENOMEM;
	trigger_acl(t, n->acl, WATCH_DATA, x->path, (size_t)x->path_len, ZEV_CREATED, 0);
	trigger_acl(t, parent->acl, WATCH_CHILD, x->path, (size_t)plen, ZEV_CHILDREN_CHANGED, 0);
	return 0;
}

static void unlink_subtree(struct tree *t, struct tree_node *n, size_t path_len)
{
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
		unlink_subtree(t, (struct tree_node *)e, path_len + 1 + e->len);
	owner_unlink(t, n);
	t->node_count--;
	t->data_bytes -= path_len + (uint64_t)(n->data_len > 0 ? n->data_len : 0);
	node_free(t, n);
}

static int delete_path(struct tree *t, const char *path, size_t len, int64_t zxid)
{
	long plen = path_parent_len(path, len);
	struct tree_node *parent = plen < 0 ? NULL : tree_lookup(t, path, (size_t)plen);
	if (!parent)
		return ZNONODE;
	size_t nlen;
	const char *name = path_basename(path, len, &nlen);
	struct tree_node *n = parent->kids ? (struct tree_node *)strmap_del(parent->kids, name, nlen) : NULL;
	if (parent->kids && parent->kids->count == 0) { /* a leaf again: give the table back */
		strmap_free(parent->kids);
		free(parent->kids);
		parent->kids = NULL;
	}
	if (zxid > parent->stat.pzxid)
		parent->stat.pzxid = zxid;
	if (!n)
		return ZNONODE;
	/* Children can only be here in a replay out of order; drop them with their parent. */
	int32_t dlen = n->data_len;
	struct tree_acl *acl = n->acl;
	acl->refs++; /* the NodeDeleted events carry it after the node is gone */
	unlink_subtree(t, n, len);
	if (tree_quota_deleted(t, path, len, dlen) < 0)
		LOG_WARN("out of memory updating the quota stats above %.*s", (int)len, path);
	uint64_t gen = trigger_acl(t, acl, WATCH_DATA, path, len, ZEV_DELETED, 0);
	trigger_acl(t, acl, WATCH_CHILD, path, len, ZEV_DELETED, gen);
	acl_release(t, acl);
	trigger_acl(t, parent->acl, WATCH_CHILD, path, (size_t)plen, ZEV_CHILDREN_CHANGED, 0);
	return 0;
}

static int apply_setdata(struct tree *t, const struct txn *x, struct tree_result *res)
{
	struct tree_node *n = tree_lookup(t, x->path, (size_t)x->path_len);
	if (!n) {
		res->err = ZNONODE;
		return 0;
	}
	int32_t old = n->data_len > 0 ? n->data_len : 0;
	if (set_data(n, x->data, x->data_len) < 0)
		return -ENOMEM;
	int32_t now = x->data_len > 0 ? x->data_len : 0;
	t->data_bytes += (uint64_t)now - (uint64_t)old;
	n->stat.version = x->version;
	n->stat.mzxid = x->hdr.zxid;
	n->stat.mtime = x->hdr.time_ms;
	tree_stat(n, &res->stat);
	if (tree_quota_changed(t, x->path, (size_t)x->path_len, (int64_t)now - old) < 0)
		return -ENOMEM;
	trigger_acl(t, n->acl, WATCH_DATA, x->path, (size_t)x->path_len, ZEV_DATA_CHANGED, 0);
	return 0;
}

/* setACL carries the new ACL and aversion, not a change: re-applying it changes nothing. */
static int apply_setacl(struct tree *t, const struct txn *x, struct tree_result *res)
{
	struct tree_node *n = tree_lookup(t, x->path, (size_t)x->path_len);
	if (!n) {
		res->err = ZNONODE;
		return 0;
	}
	struct tree_acl *a = acl_intern(t, x->acl, x->acl_len);
	if (!a)
		return -ENOMEM;
	acl_release(t, n->acl);
	n->acl = a;
	n->stat.aversion = x->version;
	tree_stat(n, &res->stat);
	return 0;
}

static int apply_close_session(struct tree *t, const struct txn *x)
{
	struct jute_in it;
	jin_init(&it, x->paths, x->paths_len);
	const char *p;
	int32_t len;
	while (txn_next_path(&it, &p, &len))
		delete_path(t, p, (size_t)len, x->hdr.zxid);
	/* Whatever the session still owns (a txn with no path list) goes too. */
	const struct tree_eph_list *l;
	while ((l = tree_ephemerals(t, x->hdr.client_id)) != NULL) {
		size_t plen = tree_node_path_len(l->head);
		char *buf = malloc(plen + 1);
		if (!buf)
			return -ENOMEM;
		tree_node_path(l->head, buf, plen + 1);
		delete_path(t, buf, plen, x->hdr.zxid);
		free(buf);
	}
	return 0;
}

static int apply_multi(struct tree *t, const struct txn *x, struct tree_result *res,
		       tree_sub_fn each, void *ctx);

/* One txn, or one op of a multi; the caller keeps last_zxid. */
static int apply_txn(struct tree *t, const struct txn *x, struct tree_result *res,
		     tree_sub_fn each, void *ctx)
{
	memset(res, 0, sizeof *res);
	int rc = 0;
	switch (x->hdr.type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATECONTAINER:
	case ZOP_CREATETTL:
		rc = apply_create(t, x, res);
		break;
	case ZOP_DELETE:
	case ZOP_DELETECONTAINER:
		res->err = delete_path(t, x->path, (size_t)x->path_len, x->hdr.zxid);
		break;
	case ZOP_SETDATA:
		rc = apply_setdata(t, x, res);
		break;
	case ZOP_SETACL:
		rc = apply_setacl(t, x, res);
		break;
	case ZOP_CLOSESESSION:
		rc = apply_close_session(t, x);
		break;
	case ZOP_CREATESESSION:
		break;
	case ZOP_ERROR:
		res->err = x->err;
		break;
	case ZOP_CHECK: /* prep checked the version; nothing to change */
		break;
	case ZOP_MULTI:
		rc = apply_multi(t, x, res, each, ctx);
		break;
	default:
		return -EINVAL;
	}
	return rc;
}

static bool multi_failed(const struct txn *x)
{
	struct jute_in it;
	int32_t type, len;
	const uint8_t *body;
	jin_init(&it, x->subs, x->subs_len);
	while (txn_next_sub(&it, &type, &body, &len))
		if (type == ZOP_ERROR)
			return true;
	return false;
}

static int apply_multi(struct tree *t, const struct txn *x, struct tree_result *res,
		       tree_sub_fn each, void *ctx)
{
	bool failed = multi_failed(x), post_failed = false;
	struct jute_in it;
	int32_t type, len, n = 0;
	const uint8_t *body;
	jin_init(&it, x->subs, x->subs_len);
	while (txn_next_sub(&it, &type, &body, &len)) {
		struct txn sub;
		struct tree_result r;
		if (txn_decode_sub(&x->hdr, type, body, (size_t)len, &sub) < 0)
			return -EINVAL; /* txn_decode checked every op: not from it */
		if (type == ZOP_ERROR) {
			post_failed = true;
		} else if (failed) {
			sub.hdr.type = ZOP_ERROR;
			sub.err = post_failed ? ZRUNTIMEINCONSISTENCY : ZOK;
		}
		int rc = apply_txn(t, &sub, &r, NULL, NULL);
		if (rc < 0)
			return rc;
		if (r.err != ZOK && res->err == ZOK)
			res->err = r.err;
		if (each)
			each(ctx, &sub, &r);
		n++;
	}
	ZK_ASSERT(jin_ok(&it) && n == x->nsubs);
	return 0;
}

int tree_apply_each(struct tree *t, const struct txn *x, struct tree_result *res,
		    tree_sub_fn each, void *ctx)
{
	int rc = apply_txn(t, x, res, each, ctx);
	if (rc == 0 && x->hdr.zxid > t->last_zxid)
		t->last_zxid = x->hdr.zxid;
	return rc;
}

/* now - mtime > limit (limit >= 0), without overflow whatever mtime a snapshot holds; a
 * node modified "in the future" is not idle. */
static bool idle_longer(int64_t now_ms, int64_t mtime, int64_t limit)
{
	return mtime < now_ms && (uint64_t)now_ms - (uint64_t)mtime > (uint64_t)limit;
}

bool tree_reap_due(const struct tree_stat *st, int32_t num_children, int64_t now_ms,
		   int64_t never_used_ms, bool ttl_enabled)
{
	if (num_children > 0)
		return false;
	if (st->ephemeral_owner == TREE_OWNER_CONTAINER)
		return st->cversion > 0 || (never_used_ms > 0 && idle_longer(now_ms, st->mtime, never_used_ms));
	if (!ttl_enabled || !tree_owner_is_ttl(st->ephemeral_owner))
		return false;
	return idle_longer(now_ms, st->mtime, tree_owner_ttl(st->ephemeral_owner));
}

size_t tree_reap_candidates(const struct tree *t, int64_t now_ms, int64_t never_used_ms,
			    bool ttl_enabled, const struct tree_node **out, size_t max)
{
	size_t n = 0;
	for (const struct tree_node *c = t->reapable; c && n < max; c = c->eph_next) {
		ZK_ASSERT(tree_owner_is_reapable(c->stat.ephemeral_owner));
		if (tree_reap_due(&c->stat, (int32_t)tree_kids(c)->count, now_ms, never_used_ms, ttl_enabled))
			out[n++] = c;
	}
	return n;
}

int tree_apply(struct tree *t, const struct txn *x, struct tree_result *res)
{
	return tree_apply_each(t, x, res, NULL, NULL);
}
