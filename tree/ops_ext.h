/* The requests ZooKeeper 3.6 added beside the classic reads, all answered from the tree
 * without a txn (PrepRequestProcessor only checks the session for them): addWatch,
 * checkWatches, removeWatches, setWatches2, getEphemerals and getAllChildrenNumber.
 * Same contract as ops_read: on ZOK the response body is in `out`, otherwise nothing is
 * written there and the return value is the error for the reply header. */
#ifndef ZK_TREE_OPS_EXT_H
#define ZK_TREE_OPS_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"
#include "tree/acl.h"
#include "tree/tree.h"

/* Is this opcode served by ops_ext? */
bool ops_ext_is(int32_t type);
/* `watcher` names the connection, `session` its session (getEphemerals lists its own), `who`
 * its authentication (getAllChildrenNumber needs READ on the node, as in ZooKeeper 3.8; the
 * others check nothing there).
 * setWatches2 fires events through the tree's watch callback: the caller must let them
 * go out before it starts the reply frame, as for setWatches. */
int ops_ext(struct tree *t, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
	    int64_t session, const struct acl_who *who, struct jute_out *out);
/* setWatches (v2 = false) and setWatches2 (v2 = true): the whole record is decoded before
 * anything is registered or fired, as ZooKeeper deserializes it first. */
int ops_set_watches_v(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher, bool v2);

#endif
