/* The history ring: the bytes of the last committed txns, by zxid, so a leader can send a
 * learner a DIFF (and answer ACKEPOCH's floor) without reading its log files back.
 *
 * Pure memory, no I/O. The server pushes every txn it applies (and, at recovery, every txn
 * replayed from the logs after the snapshot); txns come in zxid order, and a zxid not above
 * the newest one held is a re-applied txn (replay over a fuzzy snapshot) and is ignored.
 *
 * Bounds: at most `count` txns (commitLogCount) and `max_bytes` bytes of them
 * (HIST_MAX_BYTES in the server). A push past either bound evicts the oldest txns first;
 * each eviction moves `base` up to the evicted zxid. A single txn larger than max_bytes / 2
 * is not kept: the ring empties and `base` becomes that txn (DIFFs start after it), as it
 * does if memory runs out.
 *
 * `base` is the txn just before the ring's first: a learner whose last zxid is at or after
 * base can be sent a DIFF from the ring; an older one needs a SNAP. -1 means unknown (before
 * recovery has said where the ring starts, see hist_recovered).
 *
 * A zeroed struct hist (standalone mode) holds nothing and ignores pushes. */
#ifndef ZK_ZAB_HISTORY_H
#define ZK_ZAB_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/zbuf.h"

struct hist_ent {
	int64_t zxid;
	uint64_t pos; /* absolute position of its bytes (hist.pos is the bytes' head) */
	uint32_t len;
};

struct hist {
	struct hist_ent *ent; /* ring of cap entries, the oldest at head */
	size_t cap, head, n;
	size_t max_bytes;
	struct zbuf bytes;    /* the txns' bytes, oldest first */
	uint64_t pos;         /* absolute position of the first byte in `bytes` */
	int64_t base;         /* the txn before the ring's first; DIFFs start at or after it */
};

typedef void (*hist_fn)(int64_t zxid, const uint8_t *p, size_t len, void *ctx);

/* An empty ring of `count` (> 0) txns and `max_bytes` bytes, base -1. 0 or -ENOMEM. */
int hist_init(struct hist *h, size_t count, size_t max_bytes);
void hist_free(struct hist *h);
/* Forget every txn; DIFFs start after `base`. */
void hist_reset(struct hist *h, int64_t base);
/* Keep a committed txn's bytes (copied), evicting the oldest past the bounds. */
void hist_push(struct hist *h, int64_t zxid, const uint8_t *p, size_t len);
/* The bytes of zxid, borrowed until the next push/reset/truncate. */
bool hist_lookup(const struct hist *h, int64_t zxid, const uint8_t **p, size_t *len);
/* fn for every txn held in (from, to], in zxid order. */
void hist_each(const struct hist *h, int64_t from, int64_t to, hist_fn fn, void *ctx);
/* The largest zxid <= z the ring knows (a held txn, or base). -ENOENT when z < base (the
 * ring cannot tell: older than what it holds), else 0. */
int hist_floor(const struct hist *h, int64_t z, int64_t *floor);
/* Drop the txns past zxid (a TRUNC); base stays. */
void hist_truncate_after(struct hist *h, int64_t zxid);
/* Recovery replayed the logs into the ring: it holds the txns after the snapshot at
 * snap_zxid (unless it overflowed, which moved base). With none held, DIFFs may start at our
 * last zxid; else, with base still unknown, at the snapshot. */
void hist_recovered(struct hist *h, int64_t last_zxid, int64_t snap_zxid);

#endif
