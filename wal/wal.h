/* The log stage. Every txn passes through here between prep and commit: appended as a
 * ZooKeeper txn-log record (Adler32 of the entry, entry length, entry, 'B'), then made
 * durable for a whole batch at once (group commit) before any of the batch is committed.
 *
 * For now the sink is memory: a sync only moves the batch into the in-memory log, bounded
 * to `max_bytes` by dropping whole oldest records. The durability issue swaps the sink for
 * files in ZooKeeper's format without changing this interface. */
#ifndef ZK_WAL_WAL_H
#define ZK_WAL_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "net/zbuf.h"

struct wal {
	struct zbuf batch;       /* appended, not yet durable */
	int64_t batch_last_zxid;
	struct zbuf log;         /* the durable records (in memory for now) */
	int64_t durable_zxid;
	uint64_t records, syncs;  /* counters for mntr */
	uint64_t dropped_bytes;
};

int wal_init(struct wal *w, size_t max_bytes, int64_t last_zxid);
void wal_free(struct wal *w);
/* Append one txn (its serialized entry). -ENOBUFS when the batch is full: sync first. */
int wal_append(struct wal *w, int64_t zxid, const uint8_t *entry, size_t len);
/* Make everything appended durable. Returns 0 or -errno; on error nothing new is durable. */
int wal_sync(struct wal *w);
static inline int wal_has_batch(const struct wal *w) { return zbuf_len(&w->batch) > 0; }
uint32_t wal_adler32(uint32_t adler, const uint8_t *p, size_t len);

#endif
