/* Quotas as ZooKeeper 3.8 keeps them (DataTree, StatsTrack, ZooKeeperServer.checkQuota).
 *
 * A quota on path P is two znodes a client creates (zkCli's setquota does):
 *   /zookeeper/quota<P>/zookeeper_limits  "count=N,bytes=B" and/or, after "=",
 *                                         ";countHardLimit=N;byteHardLimit=B"
 *   /zookeeper/quota<P>/zookeeper_stats   rewritten by the server: "count=C,bytes=B"
 * Creating the limits node makes P a quota root; creating the stats node recounts P's subtree
 * (P itself included: the number of nodes and the sum of their data lengths) into it. From
 * then on every create, delete and setData of a node under P (under the deepest quota root
 * above it, P itself included) adds to the stats node's count and bytes while it is applied;
 * the stats node's data changes in place (no new mzxid or version, no watch fires), and keys
 * it holds beyond count and bytes are kept. A quota root of "/zookeeper" counts nothing.
 * Loading a snapshot recounts every quota (setupQuota); replayed txns then add as above.
 *
 * Enforcement (zookeeper.enforceQuota): prep refuses a create or a setData with QuotaExceeded
 * when the applied stats plus the change would pass a *hard* limit (countHardLimit,
 * byteHardLimit); count and bytes are soft limits ZooKeeper only logs.
 *
 * The quota roots are a set of paths in the tree (tree.quotas); finding a node's root looks
 * up each of its path's prefixes (one hash lookup a component), and only when a quota exists.
 */
#ifndef ZK_TREE_QUOTA_H
#define ZK_TREE_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#define QUOTA_ROOT "/zookeeper/quota"
#define QUOTA_LIMITS "zookeeper_limits"
#define QUOTA_STATS "zookeeper_stats"
/* Keys a stats or limits text keeps (count and bytes included); further keys are dropped. */
#define QUOTA_MAX_KEYS 8
#define QUOTA_KEY_MAX 31

/* StatsTrack: key=value pairs separated by ',' or ';'; a missing key reads as -1. */
struct quota_track {
	int n;
	struct {
		char key[QUOTA_KEY_MAX + 1];
		int64_t val;
	} kv[QUOTA_MAX_KEYS];
};

/* Parse; a pair ZooKeeper could not parse (no '=', not a number, a key too long) is skipped
 * (ZooKeeper throws on it). An empty value reads as -1, as in ZooKeeper. */
void quota_parse(struct quota_track *q, const uint8_t *d, int32_t len);
int64_t quota_get(const struct quota_track *q, const char *key);
void quota_set(struct quota_track *q, const char *key, int64_t val);
/* "count=C,bytes=B", then for other keys "=" and ";key=val" in key order. Returns the length
 * (as snprintf: may be >= cap, then the text is cut). */
size_t quota_format(const struct quota_track *q, char *buf, size_t cap);

#endif
