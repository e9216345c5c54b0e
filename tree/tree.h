/* The in-memory znode tree: a hash-trie keyed by path component. Every node holds a hash
 * table of its children by name, so a lookup walks one table per component and a child
 * listing reads one node's table; nothing scans the tree.
 *
 * Applying a txn is deterministic (its result depends only on the tree and the txn) and
 * idempotent (applying a txn the tree already reflects changes nothing), because replay
 * over a fuzzy snapshot re-applies txns the snapshot may already hold:
 *  - create of an existing node only raises the parent's cversion/pzxid to the txn's;
 *  - delete of a missing node only raises the parent's pzxid;
 *  - setData carries the node's new version, not an increment.
 * Applying also keeps the quota stats nodes current (tree/quota.h). */
#ifndef ZK_TREE_TREE_H
#define ZK_TREE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree/map.h"
#include "tree/txn.h"
#include "tree/watch.h"

/* StatPersisted: what a znode stores. dataLength and numChildren are derived. */
struct tree_stat {
	int64_t czxid, mzxid, ctime, mtime;
	int32_t version, cversion, aversion;
	int64_t ephemeral_owner;
	int64_t pzxid;
};

/* The client-visible Stat (cversion translated, see tree_stat). */
struct zk_stat {
	struct tree_stat p;
	int32_t data_length, num_children;
};

/* An interned, reference-counted ACL list in its serialized form (count included). */
struct tree_acl {
	struct strmap_ent ent; /* key = bytes */
	uint32_t refs;
	int64_t snap_index;    /* scratch for the snapshot writer */
	uint8_t bytes[];
};

struct tree_node {
	struct strmap_ent ent; /* key = name, in the parent's children table */
	struct tree_node *parent;
	struct strmap *kids; /* NULL for a leaf (most znodes): see tree_kids */
	uint8_t *data;    /* inside this allocation (after name) or a malloc of its own */
	int32_t data_len; /* -1: null data */
	uint32_t inline_cap; /* bytes reserved after name for data */
	struct tree_stat stat;
	struct tree_acl *acl;
	/* The owner session's ephemeral list or, for a container or TTL node, the tree's list
	 * of those (tree.reapable): a node is never both. */
	struct tree_node *eph_next, *eph_prev;
	char name[];
};

extern const struct strmap tree_no_kids;
/* A node's children table, or an empty one for a leaf. */
static inline const struct strmap *tree_kids(const struct tree_node *n)
{
	return n->kids ? n->kids : &tree_no_kids;
}

struct tree {
	struct tree_node *root;
	struct u64map ephemerals; /* owner session -> struct tree_eph_list */
	struct strmap acls;
	struct watches watches;
	uint64_t node_count;
	uint64_t data_bytes; /* sum of data lengths and path lengths, like approximate_data_size */
	uint64_t eph_count;
	int64_t last_zxid;   /* highest zxid applied */
	/* Every container and TTL node, so the reaper's check visits those and not the tree. */
	struct tree_node *reapable;
	uint64_t reapable_count;
	struct strmap quotas; /* quota roots (tree/quota.h): paths with a zookeeper_limits node */
};

/* ephemeralOwner of a container (ZooKeeper's EphemeralType.CONTAINER_EPHEMERAL_OWNER). */
#define TREE_OWNER_CONTAINER INT64_MIN
/* A TTL node's ephemeralOwner: 0xFF in the top byte, type 0 in the next two, the ttl in the
 * low 40 bits (EphemeralType.TTL). */
#define TREE_OWNER_TTL_BITS ((uint64_t)0xff << 56)
static inline bool tree_owner_is_ttl(int64_t owner)
{
	return ((uint64_t)owner >> 40) == (TREE_OWNER_TTL_BITS >> 40);
}
static inline int64_t tree_owner_ttl(int64_t owner) { return (int64_t)((uint64_t)owner & TXN_TTL_MAX); }
static inline int64_t tree_ttl_owner(int64_t ttl) { return (int64_t)(TREE_OWNER_TTL_BITS | (uint64_t)ttl); }
/* Nodes the reaper considers: containers and TTL nodes. */
static inline bool tree_owner_is_reapable(int64_t owner)
{
	return owner == TREE_OWNER_CONTAINER || tree_owner_is_ttl(owner);
}

/* The reaper's choice (ZooKeeper's ContainerManager.getCandidates), at wall time now_ms:
 * empty containers that once had a child; with never_used_ms > 0 also empty containers never
 * used whose mtime is older than that; with ttl_enabled (extendedTypesEnabled), empty TTL
 * nodes unmodified for longer than their ttl. Fills out[] with up to max nodes (valid until
 * the next apply) and returns how many. Visits only tree.reapable. */
size_t tree_reap_candidates(const struct tree *t, int64_t now_ms, int64_t never_used_ms,
			    bool ttl_enabled, const struct tree_node **out, size_t max);
/* Quotas (tree/quota.h). Setup recounts every quota after a snapshot is loaded; check
 * returns ZQUOTAEXCEEDED when a write would pass a hard limit, else 0; the hooks keep the
 * stats nodes current while txns are applied (0 or -ENOMEM). */
int tree_quota_setup(struct tree *t);
int tree_quota_check(const struct tree *t, const char *path, size_t len, int64_t bytes_diff,
		     int32_t count_diff);
int tree_quota_created(struct tree *t, const char *path, size_t len, int32_t dlen);
int tree_quota_deleted(struct tree *t, const char *path, size_t len, int32_t dlen);
int tree_quota_changed(struct tree *t, const char *path, size_t len, int64_t bytes_diff);
void tree_quota_free(struct tree *t);
/* Replace a node's data in place, nothing else (the server's own rewrite of a stats node). */
int tree_replace_data(struct tree *t, struct tree_node *n, const uint8_t *data, int32_t len);

/* Is n (still) a candidate? The same rule, for one node's stat and child count. */
bool tree_reap_due(const struct tree_stat *st, int32_t num_children, int64_t now_ms,
		   int64_t never_used_ms, bool ttl_enabled);

struct tree_eph_list {
	struct tree_node *head;
	uint32_t count;
};

/* Result of tree_apply: the error (0 or a zk_err) and, for writes, the node's Stat. */
struct tree_result {
	int err;
	struct zk_stat stat;
};

int tree_init(struct tree *t, watch_fire_fn fire, void *fire_ctx);
void tree_free(struct tree *t);
struct tree_node *tree_lookup(const struct tree *t, const char *path, size_t len);
void tree_stat(const struct tree_node *n, struct zk_stat *out);
/* Apply one txn (decoded from its bytes). Returns 0, or -ENOMEM/-EINVAL when the txn
 * could not be applied at all; `res->err` is the per-request result a client sees. */
int tree_apply(struct tree *t, const struct txn *txn, struct tree_result *res);
/* A multi's ops are applied in order, each as its own txn with the multi's header (their
 * watches fire op by op); `each` (may be NULL) then sees every op and its result. When any
 * sub-txn is an ErrorTxn the multi failed in prep: nothing is applied and every op is an
 * error: ErrorTxn(OK) before the failing one, RUNTIMEINCONSISTENCY after it, as ZooKeeper's
 * DataTree does. `res->err` of a multi is its first nonzero op error. */
typedef void (*tree_sub_fn)(void *ctx, const struct txn *sub, const struct tree_result *res);
int tree_apply_each(struct tree *t, const struct txn *txn, struct tree_result *res,
		    tree_sub_fn each, void *ctx);
size_t tree_node_path_len(const struct tree_node *n);
/* Insert, or overwrite in place, a node read from a snapshot; its parent must exist.
 * 0, -ENOENT (no parent: the snapshot is not in pre-order), -EINVAL (bad path), -ENOMEM. */
int tree_load_node(struct tree *t, const char *path, size_t len, const uint8_t *data, int32_t dlen,
		   const uint8_t *acl, size_t acl_len, const struct tree_stat *st);
/* Write the node's full path into buf (NUL-terminated); returns its length or -ENAMETOOLONG. */
long tree_node_path(const struct tree_node *n, char *buf, size_t cap);
const struct tree_eph_list *tree_ephemerals(const struct tree *t, int64_t owner);
/* The ACL world:anyone with all permissions, serialized; used for system nodes. */
extern const uint8_t tree_acl_open[];
extern const size_t tree_acl_open_len;

#endif
