/* Recovery at start: the newest snapshot that validates, then every logged txn after it.
 *
 *  1. Snapshots are tried newest first; one that does not validate is skipped with a WARN
 *     if an older one loads. If snapshots exist and none loads, startup stops with the
 *     newest one's error (file and offset). With no snapshot at all the tree starts empty
 *     and the logs must then begin at the first txn.
 *  2. The logs are replayed in zxid order from the one holding the txn after the snapshot.
 *     Txns the snapshot already reflects are skipped by zxid; a fuzzy snapshot may reflect
 *     some later ones too, which re-apply harmlessly (tree_apply is idempotent).
 *     Every txn is logged, so zxids must run on without a gap (within an epoch; a new
 *     epoch starts at counter 1): a missing txn, e.g. a log file lost or cut short in the
 *     middle of the history, stops startup.
 *  3. A bad record in the newest log with no valid record after it is a torn tail: the file
 *     is truncated back to the last whole txn, with a WARN. A bad record anywhere else, or
 *     a gap between the snapshot and the first log, stops startup naming file and offset.
 * Sessions come from the snapshot and from replayed createSession/closeSession txns. */
#ifndef ZK_SNAP_RECOVER_H
#define ZK_SNAP_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "tree/tree.h"
#include "wal/fileops.h"

struct recover_cb {
	int (*session_add)(void *ctx, int64_t id, int32_t timeout_ms);
	void (*session_remove)(void *ctx, int64_t id);
	void *ctx;
};

struct recover_result {
	int64_t snap_zxid;   /* zxid of the snapshot loaded, 0 if none */
	int64_t last_zxid;   /* last txn applied */
	uint64_t txns;       /* txns replayed from the logs */
	int truncated;       /* a torn tail was cut off */
	int had_snapshot;    /* a snapshot file was loaded */
};

/* `t` must be initialized and empty. 0, or -errno / -EBADMSG with `err` set. */
int recover(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir, struct tree *t,
	    const struct recover_cb *cb, struct recover_result *res, char *err, size_t errlen);

#endif
