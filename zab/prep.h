/* Prep: turns a client write request into a transaction, as ZooKeeper's PrepRequestProcessor.
 *
 * A write is checked against the newest view of the tree: the applied tree plus the changes
 * of txns that were prepped but are not applied yet ("outstanding changes", one record per
 * path, newest wins). That lets many writes be in the pipeline at once (group commit now,
 * quorum replication later) while each sees the effect of the ones before it.
 *
 * Every write gets a zxid, including one that fails a check: it becomes an ErrorTxn carrying
 * the error code, like ZooKeeper, so the client sees the same reply zxids. Pure: no I/O. */
#ifndef ZK_ZAB_PREP_H
#define ZK_ZAB_PREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"
#include "tree/map.h"
#include "tree/tree.h"

struct change {
	struct strmap_ent ent; /* key = path */
	int64_t zxid;
	int exists;
	struct tree_stat stat;
	int32_t num_children;
	const uint8_t *acl;  /* the node's ACL in the newest view (serialized vector<ACL>): in
			      * this record's own allocation, or the tree's interned copy */
	size_t acl_len;
	int32_t data_len; /* for setData's quota check */
	struct change *next; /* FIFO in zxid order */
	struct change *shadowed; /* the newest record of this path before this one, or NULL;
				  * valid only during the prep call that added this record
				  * (a failed multi rolls back to it) */
	char path[];
};

struct prep {
	struct tree *tree;
	struct strmap latest; /* path -> newest change */
	struct change *head, *tail;
	size_t count;
	int fail; /* -ENOMEM once an allocation failed in this call */
	bool extended_types; /* zookeeper.extendedTypesEnabled: TTL nodes may be created */
	int64_t reap_never_used_ms; /* znode.container.maxNeverUsedIntervalMs, for the
				     * reaper's re-check in deleteContainer */
	bool skip_acl; /* skipACL=yes: no permission is checked */
	bool enforce_quota;         /* zookeeper.enforceQuota: QuotaExceeded past a hard limit */
};

struct prep_req {
	int64_t session;
	int32_t cxid;
	int32_t type;
	const uint8_t *body;
	size_t body_len;
	int64_t zxid;
	int64_t time_ms;
	int32_t session_timeout_ms; /* createSession */
	int32_t err;                /* nonzero: the caller already knows the answer (e.g. the
				     * session is closing): the txn is ErrorTxn{err} */
	bool internal;              /* the server's own request (the container reaper's
				     * deleteContainer, body = the raw path bytes); a client's
				     * deleteContainer is refused */
	bool sub;                   /* an op of a multi: write its txn body only (no header) */
	const uint8_t *auth;        /* the connection's ids, a serialized vector<Id> (tree/auth.h);
				     * NULL: none (internal requests such as session expiry) */
	size_t auth_len;
};

void prep_init(struct prep *p, struct tree *t);
void prep_free(struct prep *p);
/* Write the txn for `r` to `out`. Returns 0, or -ENOMEM / -ENOBUFS (then nothing was
 * prepped). The txn's type is ZOP_ERROR when a check failed. */
int prep_write(struct prep *p, const struct prep_req *r, struct jute_out *out);
/* The tree has applied every txn up to `zxid`: forget their change records. */
void prep_applied(struct prep *p, int64_t zxid);
/* Is this opcode a write that goes through prep? */
int prep_is_write(int32_t type);
/* Does this multi request body get a txn? Not when an op has a null path: ZooKeeper then
 * answers MarshallingError without a txn or zxid (prep_write would log an ErrorTxn). */
bool prep_multi_logged(const uint8_t *body, size_t len);

#endif
