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
 * a txn the tree already reflects changes nothing (tree/tree.h).
 *
 * The SNAP stream. After the QuorumPacket SNAP (zxid Z) a ZooKeeper 3.8 leader writes its
 * database straight into the learner's socket (LearnerHandler: ZKDatabase.serializeSnapshot,
 * then writeString("BenWasHere", "signature")), and its learner reads it back the same way
 * (Learner.syncWithLeader). That is exactly the file's body without header and seal:
 *     int count; count x { long sessionId; int timeout }
 *     int count; count x { long aclIndex; vector<ACL> acls }
 *     the nodes as above, ending with the path "/"
 *     ustring "BenWasHere"
 * No length, checksum or digest: 3.8 sends no digest here (DataTree.serializeZxidDigest is
 * only called for files), and the learner takes Z from the SNAP packet, not the stream.
 * Nothing frames the stream, so the reader learns its end only by parsing it:
 * snap_stream_scan finds the end incrementally as bytes arrive (linear in all), then
 * snap_stream_read builds the tree once. */
#ifndef ZK_SNAP_SNAP_H
#define ZK_SNAP_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "net/zbuf.h"
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

/* A growable list of sessions, zero-initialized; the owner frees v. snap_sessions_add is a
 * snap_session_fn appending to it (ctx: the list); -ENOMEM. */
struct snap_sessions {
	struct snap_session *v;
	size_t n, cap;
};
int snap_sessions_add(void *ctx, int64_t id, int32_t timeout_ms);

/* Load a snapshot file into an initialized, empty tree. Sessions go to the callback.
 * 0, or -EBADMSG (err names the offset), -errno. */
int snap_load(const struct zk_fileops *ops, const char *path, struct tree *t,
	      snap_session_fn on_session, void *ctx, char *err, size_t errlen);

/* The SNAP stream (above). Appends the stream form of the tree and sessions to out, all or
 * nothing: 0, or -ENOBUFS past out's bound (out unchanged), -ENOMEM. Renumbers the ACL
 * cache like snap_write. */
int snap_stream_write(struct zbuf *out, struct tree *t, const struct snap_session *sessions,
		      size_t n);

/* The same bytes handed to sink in pieces (each about 256 KiB, or one node when a node is
 * larger), so a large tree needs no buffer of its size: e.g. a forked
 * child writing to the learner's socket. 0, the sink's error, or -ENOMEM. */
typedef int (*snap_sink_fn)(void *ctx, const uint8_t *p, size_t n);
int snap_stream_emit(struct tree *t, const struct snap_session *sessions, size_t n,
		     snap_sink_fn sink, void *ctx);

/* Parse one stream snapshot from p[0..len) into an initialized, empty tree. 0 with *used
 * (its length, signature included: the next QuorumPacket starts there), the sessions then
 * handed to on_session (only on success, so never twice); -EAGAIN when the bytes end before
 * the signature (read more, free and re-init the tree, call again - better: wait for
 * snap_stream_scan to say the stream is whole); -EBADMSG with err naming the offset;
 * -ENOMEM; or the callback's error. Each item is bounded by len: the caller's buffer bounds
 * the whole stream (a stream that fills it is too large: drop the leader). The tree's
 * last_zxid is the caller's business (the SNAP packet's zxid). */
int snap_stream_read(const uint8_t *p, size_t len, struct tree *t, snap_session_fn on_session,
		     void *ctx, size_t *used, char *err, size_t errlen);

enum snap_scan_phase {
	SCAN_SESSION_COUNT, SCAN_SESSIONS, SCAN_ACL_COUNT, SCAN_ACLS, SCAN_NODES, SCAN_SIGNATURE,
	SCAN_DONE
};
struct snap_scan {     /* zero it before the first byte of a stream */
	size_t off;          /* the items before this offset are whole */
	int phase;           /* enum snap_scan_phase */
	int64_t left;        /* sessions or ACL entries still to come */
};
/* Where does the stream starting at p[0] end? Call after each read with the bytes so far
 * (the same ones again, and more); it resumes at sc->off, so the work is linear in the
 * stream. 0 with *end (what snap_stream_read will report as used), -EAGAIN (need more),
 * -EBADMSG (lengths or counts no stream can have, or a wrong signature). Structure only:
 * snap_stream_read still validates paths, parents and ACL references. */
int snap_stream_scan(struct snap_scan *sc, const uint8_t *p, size_t len, size_t *end);

#define SNAP_SIGNATURE "BenWasHere"

/* A learner that should not hold a whole SNAP stream in memory spools it into a snapshot
 * file as it arrives: the file's header first, the body as its items complete (checksummed
 * on the way), the seal at the end - the file snap_write would have written for that tree.
 * snap_spool_feed takes the bytes received so far that it has not consumed yet: 0 when the
 * stream is whole (*used: up to the end of its signature; what follows is the next packet),
 * -EAGAIN (*used: bytes consumed and written, which the caller drops; the rest is an item
 * not complete yet, so the caller's buffer must hold one node, jute.maxbuffer and its path),
 * -EBADMSG, or -errno (a failed write). snap_spool_finish seals and fsyncs the file, loads
 * it into t (an initialized, empty tree; sessions to on_session) and only then renames it
 * to snapshot.<zxid> and fsyncs the directory: a stream that does not load leaves no file.
 * snap_spool_abort drops an unfinished one. */
struct snap_spool {
	const struct zk_fileops *ops;
	char dir[1024];
	int64_t zxid;
	int fd;
	off_t off;
	uint32_t adler;
	bool done;           /* the signature was seen */
	struct snap_scan scan;
};
int snap_spool_open(struct snap_spool *sp, const struct zk_fileops *ops, const char *dir,
		    int64_t zxid, char *err, size_t errlen);
int snap_spool_feed(struct snap_spool *sp, const uint8_t *p, size_t len, size_t *used);
int snap_spool_finish(struct snap_spool *sp, struct tree *t, snap_session_fn on_session, void *ctx,
		      char *err, size_t errlen);
void snap_spool_abort(struct snap_spool *sp);

/* ZAB TRUNC to zxid: delete every snapshot.<z> of dir with z > zxid (why that is safe: in
 * snap.c), newest first, then fsync dir. How many went, or -errno. */
int snap_remove_after(const struct zk_fileops *ops, const char *dir, int64_t zxid);

/* Print a snapshot in human-readable form (the dump-snap tool). 0 or an error. */
int snap_dump(const struct zk_fileops *ops, const char *path, FILE *out, char *err, size_t errlen);

#endif
