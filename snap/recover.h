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
 * Sessions come from the snapshot and from replayed createSession/closeSession txns.
 *
 * The ensemble (ZAB) adds two cases:
 *  - TRUNC to zxid Z: the log is cut after Z (wal_truncate), snapshots past Z are removed
 *    (snap_remove_after), and the tree is rebuilt with recover_upto(Z): only snapshots <= Z
 *    are loaded and no txn past Z is applied. zkd's own snapshots are exact (forked at one
 *    txn), so one named <= Z holds nothing past Z; a fuzzy one written by Apache ZooKeeper
 *    could, and would need an older snapshot.
 *  - A learner that took a SNAP at Z writes it as snapshot.<Z> and restarts its log after it
 *    (wal_snap_installed): its old log files may remain, holding txns <= Z of another history.
 *    The snapshot makes them irrelevant: txns <= the snapshot's zxid are skipped, and the
 *    first txn after it is Z + 1 or, when a new epoch began right after the SNAP,
 *    (epoch + 1) << 32 | 1, in a log named for it. */
#ifndef ZK_SNAP_RECOVER_H
#define ZK_SNAP_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree/tree.h"
#include "wal/fileops.h"

struct recover_cb {
	int (*session_add)(void *ctx, int64_t id, int32_t timeout_ms);
	void (*session_remove)(void *ctx, int64_t id);
	void *ctx;
};

/* What the ensemble adds (recover_with); zero-initialized it is plain recover(). */
struct recover_opts {
	/* With `limited`, recover only up to `upto` (after a TRUNC to it): snapshots past it are
	 * not loaded, txns past it are not applied (nor read). */
	bool limited;
	int64_t upto;
	/* Optional: every txn replayed from the logs after the snapshot, in zxid order, once
	 * applied - the entry as logged (TxnHeader + body [+ digest]), valid during the call
	 * only; a leader keeps the recent ones to sync learners by DIFF. Its error stops
	 * recovery and is returned. */
	int (*on_txn)(void *txn_ctx, int64_t zxid, const uint8_t *entry, size_t len);
	void *txn_ctx;
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

/* recover() with the options above (opts may be NULL). */
int recover_with(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir,
		 struct tree *t, const struct recover_cb *cb, const struct recover_opts *opts,
		 struct recover_result *res, char *err, size_t errlen);
/* recover() ending at `upto` (>= 0), the state after a TRUNC to it. */
int recover_upto(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir,
		 int64_t upto, struct tree *t, const struct recover_cb *cb,
		 struct recover_result *res, char *err, size_t errlen);

#endif
