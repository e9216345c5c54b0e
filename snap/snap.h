/* Snapshots, in Apache ZooKeeper 3.8's format (FileSnap, SerializeUtils, DataTree).
 *
 * <dataDir>/version-2/snapshot.<zxid hex>, where zxid is the last txn applied when the
 * snapshot began. Layout (jute, big-endian):
 *     FileHeader { int magic = "ZKSN" (0x5A4B534E); int version = 2; long dbid = -1 }
 *     int count; count x { long sessionId; int timeout }
 *     int count; count x { long aclIndex; vector<ACL> acls }      the ACL cache
 *     nodes in DFS pre-order: { ustring path; buffer data; long aclIndex;
 *        StatPersisted { long czxid, mzxid, ctime, mtime; int version, cversion, aversion;
 *                        long ephemeralOwner, pzxid } }
 *        the root's path is "" (not "/"); the list ends with the path "/"
 *     long adler32 of every byte before it; ustring "/"                the seal
 * ZooKeeper 3.6+ may append { long zxid; int digestVersion; long digest } and a second
 * seal, and 3.9 a lastProcessedZxid and a third; the loader checks the first seal and
 * ignores what follows. zkd writes no digest (ZooKeeper accepts its absence).
 *
 * A snapshot is valid when it parses to the end of the node list, every node's parent came
 * before it, and the seal's checksum matches. It is written to a temporary name, fsynced,
 * renamed into place, and the directory fsynced. Loading a ZooKeeper snapshot taken while
 * writes went on ("fuzzy") is fine: the log is replayed over it from its zxid, and applying
 * a txn the tree already reflects changes nothing (tree/tree.h). */
#ifndef ZK_SNAP_SNAP_H
#define ZK_SNAP_SNAP_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "tree/tree.h"
#include "wal/fileops.h"

#define SNAP_MAGIC 0x5A4B534E /* "ZKSN" */

struct snap_session {
	int64_t id;
	int32_t timeout_ms;
};

/* Write the tree and sessions to dir/snapshot.<zxid>. 0 or -errno (err describes it). */
int snap_write(const struct zk_fileops *ops, const char *dir, int64_t zxid, struct tree *t,
	       const struct snap_session *sessions, size_t nsessions, char *err, size_t errlen);

typedef int (*snap_session_fn)(void *ctx, int64_t id, int32_t timeout_ms);

/* Load a snapshot file into an initialized, empty tree. Sessions go to the callback.
 * 0, or -EBADMSG (err names the offset), -errno. */
int snap_load(const struct zk_fileops *ops, const char *path, struct tree *t,
	      snap_session_fn on_session, void *ctx, char *err, size_t errlen);

/* Print a snapshot in human-readable form (the dump-snap tool). 0 or an error. */
int snap_dump(const struct zk_fileops *ops, const char *path, FILE *out, char *err, size_t errlen);

#endif
