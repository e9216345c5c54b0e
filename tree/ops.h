/* Client operations against the tree: the read requests (served straight from the tree,
 * registering watches) and the response bodies of committed writes. Encodes and decodes
 * with jute but owns no connection: the caller frames the reply. */
#ifndef ZK_TREE_OPS_H
#define ZK_TREE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"
#include "tree/acl.h"
#include "tree/tree.h"

/* Is this opcode served by ops_read? */
int ops_is_read(int32_t type);
/* Run a read request. On ZOK the response body is written to `out`; otherwise nothing is
 * and the return value is the error for the reply header. `watcher` names the connection
 * for any watch the request sets; `who` is its authentication (READ is checked for
 * getData/getChildren[2], READ|ADMIN for getACL, nothing for exists and sync). */
int ops_read(struct tree *t, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
	     const struct acl_who *who, struct jute_out *out);
/* setWatches: re-register a reconnected client's watches. Events for changes it missed
 * since relativeZxid go out through the tree's watch callback, before the reply. */
int ops_set_watches(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher);
/* The response body of a committed write. */
void ops_write_reply(int32_t req_type, const struct txn *x, const struct tree_result *res,
		     struct jute_out *out);
void ops_stat_out(struct jute_out *out, const struct zk_stat *st);
/* MultiResponse: per op a MultiHeader{type; done=false; err} and its result, then the end
 * marker. ops_multi_result writes the entry of one applied op of a multi (tree_apply_each
 * hands them over): create: path; create2/container/TTL (as create2): path and Stat;
 * setData: Stat; delete, check: nothing; a failed or rolled-back op: type -1 and
 * ErrorResponse{int err}. */
void ops_multi_result(struct jute_out *out, const struct txn *sub, const struct tree_result *res);
void ops_multi_end(struct jute_out *out);
/* multiRead: each getData/getChildren op answered on its own (watch flags ignored, as
 * ZooKeeper's Op.getData drops them); a failing op gives its ErrorResult and the rest
 * still run. Returns the reply header's error: MarshallingError with nothing written when
 * the record does not parse, or after the results so far and the end marker when an op is
 * a write or has a null path (ZooKeeper fails there); else ZOK with the whole response.
 * Each op checks READ for `who` as on its own (NoAuth is that op's ErrorResult). */
int ops_multi_read(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher,
		   const struct acl_who *who, struct jute_out *out);

#endif
