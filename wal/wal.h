/* The transaction log, in Apache ZooKeeper 3.8's on-disk format.
 *
 * Files live in <dataLogDir>/version-2/ and are named log.<zxid of their first txn, hex>.
 * A file is
 *     FileHeader { int magic = "ZKLG" (0x5A4B4C47); int version = 2; long dbid = 0 }
 * then records, back to back:
 *     long  checksum     Adler32 of the entry bytes only
 *     int   length       of the entry (> 0)
 *     byte  entry[length]  TxnHeader + txn body (+ optional TxnDigest), see tree/txn.h
 *     byte  0x42 ('B')   end of record
 * and then zeros: files are preallocated in preAllocSize steps, and a record whose length
 * reads as 0 marks the end of the log.
 *
 * Writing (group commit): wal_append encodes records into a batch in memory; wal_flush
 * writes the batch and makes it durable with one fdatasync, after which every zxid up to
 * durable_zxid is on disk. With io_uring (wal_enable_async) the write and the sync run in
 * the kernel while the loop goes on serving: one batch is in flight while the next one
 * fills, and wal_complete, called when the ring's eventfd fires, moves durable_zxid.
 * Without it (or through a test's fileops table) wal_flush blocks. A failed write or sync
 * is sticky: the log refuses everything after it, because the file's state is unknown.
 *
 * Recovery rules (wal_reader, used at start and by dump-log):
 *  - a record with length 0 is the end of that file;
 *  - a bad record (checksum mismatch, missing 'B', length out of range, cut short by the
 *    end of the file, or a zxid not above the one before) in the LAST file is a torn tail
 *    when no valid record can be found after it: the file is truncated there, with a WARN;
 *  - any other bad record is corruption: startup stops, naming the file and the offset.
 *
 * Truncation (ZAB's TRUNC, wal_truncate): the log is made to hold no txn past a zxid. Files
 * whose first txn is past it are deleted (newest first, then the directory is fsynced), and
 * the newest file left is cut right after its last txn <= zxid with ftruncate + fsync, so it
 * ends there without preallocated zeros: its end of file ends the log as a length of 0 does.
 * The writer never appends to a cut file: the next batch starts log.<its first zxid>. A
 * torn tail in the cut file goes with the rest; a bad record with valid ones after it is
 * corruption and stops the truncation (as it stops recovery). */
#ifndef ZK_WAL_WAL_H
#define ZK_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "net/zbuf.h"
#include "wal/fileops.h"
#include "wal/uring.h"

#define WAL_MAGIC 0x5A4B4C47 /* "ZKLG" */
#define WAL_VERSION 2
#define WAL_HEADER_LEN 16
#define WAL_MAX_ENTRY (64u << 20) /* larger lengths are corruption */

struct wal {
	const struct zk_fileops *ops;
	char dir[1024];
	bool force_sync;
	off_t prealloc;          /* bytes */
	int fd;                  /* current file, -1 before the first append after a roll */
	off_t end, alloc;        /* write position, preallocated size */
	int64_t file_zxid;       /* first zxid of the current file */
	struct zbuf batch;       /* encoded records not yet written */
	int64_t batch_first_zxid, batch_last_zxid;
	bool roll_pending;       /* close the file when the batch in flight is done */
	bool async;              /* io_uring in use */
	struct uring ring;
	struct zbuf inflight;    /* the batch being written and synced by the kernel */
	int64_t inflight_last_zxid, inflight_start_us;
	int inflight_cqes;       /* completions still expected: 0 when idle */
	bool need_dir_sync;      /* a new file's directory entry is not durable yet */
	int dir_fd;              /* open for an in-flight directory sync, else -1 */
	int32_t inflight_err;
	uint64_t tag;
	int64_t durable_zxid;
	int failed;              /* 0, or the -errno that stopped the log */
	/* counters for mntr and the closing note */
	uint64_t records, syncs, files;
	uint64_t txns_since_roll;
	int64_t last_sync_us, max_sync_us;
};

int wal_init(struct wal *w, const struct zk_fileops *ops, const char *dir, off_t prealloc,
	     bool force_sync, int64_t last_zxid);
void wal_free(struct wal *w);
/* Append one txn entry. -ENOBUFS when the batch is full (sync first); the sticky error
 * once the log has failed. */
int wal_append(struct wal *w, int64_t zxid, const uint8_t *entry, size_t len);
/* Use io_uring for write+sync. Returns the eventfd to watch, or -errno (stay blocking). */
int wal_enable_async(struct wal *w);
/* Start making the batch durable (async), or do it now (blocking). 0 or -errno (sticky). */
int wal_flush(struct wal *w);
/* Take the ring's completions; durable_zxid moves when a batch's sync is done. */
int wal_complete(struct wal *w);
static inline bool wal_busy(const struct wal *w) { return w->inflight_cqes > 0; }
/* Can the batch take a txn of about `len` bytes more? (Its bound: 64 MiB.) */
static inline bool wal_batch_fits(const struct wal *w, size_t len)
{
	return zbuf_len(&w->batch) + len + 4096 <= w->batch.max;
}
/* Make everything appended durable before returning (waits for one in flight). */
int wal_sync(struct wal *w);
/* Start a new file: the next batch written goes to log.<its first zxid> (the file in use is
 * closed now, or when the batch in flight is done with it). */
int wal_roll(struct wal *w);
static inline bool wal_has_batch(const struct wal *w) { return zbuf_len(&w->batch) > 0; }
/* ZAB TRUNC: make the log hold no txn past zxid (the rules are above). Waits for the batch
 * in flight and writes the one batched first (so call it before appending anything past
 * zxid); then durable_zxid and the last appended are min(themselves, zxid). 0, or -errno /
 * -EBADMSG with err set; any failure is sticky like a failed sync (the log's state on disk is
 * unknown). Zero is allowed: every file goes. */
int wal_truncate(struct wal *w, int64_t zxid, char *err, size_t errlen);
/* After a SNAP at zxid was written as snapshot.<zxid> and is durable: truncate to zxid (old
 * txns past it are another history) and restart the writer there, durable_zxid = zxid, so
 * the next append may be zxid + 1 or the first of a later epoch. As wal_truncate. */
int wal_snap_installed(struct wal *w, int64_t zxid, char *err, size_t errlen);
uint32_t wal_adler32(uint32_t adler, const uint8_t *p, size_t len);
/* Make "<dir>/log.<hex>" / "<dir>/snapshot.<hex>" names. */
void wal_file_name(char *buf, size_t len, const char *dir, const char *prefix, int64_t zxid);

/* ---- reading ---- */

struct wal_reader {
	const struct zk_fileops *ops;
	int fd;
	const char *path;
	off_t off, size;
	int64_t last_zxid;
	uint8_t *buf;
	size_t cap;
	char err[256];   /* why the last call failed */
	off_t bad_off;   /* where a bad record starts */
};

/* 0, or -errno / -EBADMSG (bad header) with r->err set. */
int wal_reader_open(struct wal_reader *r, const struct zk_fileops *ops, const char *path);
void wal_reader_close(struct wal_reader *r);
/* Next record: 1 with the entry and its length (valid until the next call) and its zxid; 0 at the end
 * of the file; -EBADMSG for a bad record (r->bad_off, r->err). */
int wal_reader_next(struct wal_reader *r, const uint8_t **entry, size_t *len, int64_t *zxid);
/* After a bad record: is there a valid record anywhere after r->bad_off? */
bool wal_reader_valid_after(struct wal_reader *r);

/* Print a log file in human-readable form (the dump-log tool). 0 or an error in err. */
int wal_dump(const struct zk_fileops *ops, const char *path, FILE *out, char *err, size_t errlen);

/* The log and snapshot files of a directory, sorted by zxid ascending. */
struct wal_file { int64_t zxid; char name[64]; };
int wal_list(const char *dir, const char *prefix, struct wal_file **out, size_t *n);

#endif
