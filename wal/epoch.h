/* The epoch files: <dataDir>/acceptedEpoch and <dataDir>/currentEpoch, as Apache ZooKeeper
 * 3.8 keeps them (QuorumPeer.readLongFromFile / writeLongToFile).
 *
 * Format: the epoch in decimal ASCII, nothing else (a trailing newline, CR or spaces are
 * accepted on reading; we write none). Values lie in [0, 2^32 - 1): the epoch is a zxid's
 * high 32 bits.
 *
 * Writing is atomic and durable before the caller acts on the value: the value goes to
 * <name>.tmp, which is fsynced, renamed over <name>, and the directory is fsynced. A crash
 * leaves the old value or the new one, never a torn file. All I/O goes through the file-ops
 * table, so tests can fail any step. */
#ifndef ZK_WAL_EPOCH_H
#define ZK_WAL_EPOCH_H

#include <stdint.h>

#include "wal/fileops.h"

/* Read dir/name into *out. 0; -ENOENT (or another -errno from open) when it cannot be
 * opened; -EBADMSG when it is empty, not a decimal number or out of range;
 * -ENAMETOOLONG for a path past 4 KiB. *out is untouched on error. */
int wal_epoch_read(const struct zk_fileops *ops, const char *dir, const char *name, int64_t *out);
/* Write v to dir/name atomically (see above). 0 or -errno; on error the old file stands
 * (a failed directory fsync leaves the rename done but maybe not durable). */
int wal_epoch_write(const struct zk_fileops *ops, const char *dir, const char *name, int64_t v);

#endif
