/* Recovery; the rules are in recover.h. */
#include "snap/recover.h"
#include "net/log.h"
#include "net/proto.h"
#include "snap/snap.h"
#include "tree/txn.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Sessions read from a snapshot are held (struct snap_sessions) until it proves valid. */

static int load_newest_snapshot(const struct zk_fileops *ops, const char *dir, int64_t upto,
				struct tree *t, const struct recover_cb *cb, struct recover_result *res,
				char *err, size_t errlen)
{
	struct wal_file *snaps;
	size_t n;
	int rc = wal_list(dir, "snapshot", &snaps, &n);
	if (rc < 0) {
		snprintf(err, errlen, "cannot list %s: %s", dir, strerror(-rc));
		return rc;
	}
	char first_err[512] = "";
	while (n > 0 && snaps[n - 1].zxid > upto) {
		LOG_INFO("recovering up to 0x%llx: %s/%s is past it, not loaded",
			 (unsigned long long)upto, dir, snaps[n - 1].name);
		n--;
	}
	for (size_t i = n; i-- > 0;) {
		char path[1200], why[512];
		snprintf(path, sizeof path, "%s/%s", dir, snaps[i].name);
		struct snap_sessions sb = { 0 };
		rc = snap_load(ops, path, t, snap_sessions_add, &sb, why, sizeof why);
		if (rc == 0) {
			for (size_t k = 0; k < sb.n && rc == 0; k++)
				rc = cb->session_add(cb->ctx, sb.v[k].id, sb.v[k].timeout_ms);
			free(sb.v);
			res->snap_zxid = snaps[i].zxid;
			res->had_snapshot = 1;
			free(snaps);
			if (first_err[0])
				LOG_WARN("%s; fell back to the older %s", first_err, path);
			LOG_INFO("loaded snapshot %s", path);
			return rc;
		}
		free(sb.v);
		if (!first_err[0])
			snprintf(first_err, sizeof first_err, "%s", why);
		LOG_WARN("snapshot does not validate: %s", why);
		/* Start the next attempt from a clean tree. */
		watch_fire_fn fire = t->watches.fire;
		void *ctx = t->watches.ctx;
		tree_free(t);
		if (tree_init(t, fire, ctx) < 0) {
			free(snaps);
			return -ENOMEM;
		}
	}
	free(snaps);
	if (n > 0) {
		snprintf(err, errlen, "no snapshot validates and there is none older to fall back on: %s",
			 first_err);
		return -EBADMSG;
	}
	res->snap_zxid = 0;
	return 0;
}

static int apply_entry(struct tree *t, const struct recover_cb *cb, const struct recover_opts *opts,
		       const uint8_t *entry, size_t len, const char *path, off_t off, char *err,
		       size_t errlen)
{
	struct txn x;
	int rc = txn_decode(entry, len, &x);
	if (rc < 0) {
		snprintf(err, errlen, "%s: txn at offset %lld cannot be decoded (type %d)%s", path,
			 (long long)off, x.hdr.type, rc == -EPROTONOSUPPORT ? ": type not supported yet" : "");
		return -EBADMSG;
	}
	struct tree_result res;
	rc = tree_apply(t, &x, &res);
	if (rc < 0) {
		snprintf(err, errlen, "%s: txn at offset %lld cannot be applied: %s", path, (long long)off,
			 strerror(-rc));
		return rc;
	}
	if (x.hdr.type == ZOP_CREATESESSION)
		rc = cb->session_add(cb->ctx, x.hdr.client_id, x.timeout_ms);
	if (x.hdr.type == ZOP_CLOSESESSION)
		cb->session_remove(cb->ctx, x.hdr.client_id);
	if (rc == 0 && opts->on_txn)
		rc = opts->on_txn(opts->txn_ctx, x.hdr.zxid, entry, len);
	return rc;
}

/* Cut a torn tail off the newest log. */
static int truncate_tail(const struct zk_fileops *ops, const char *path, off_t off, const char *why)
{
	LOG_WARN("%s: %s; truncating the torn tail back to the last whole txn (offset %lld)", path, why,
		 (long long)off);
	int fd = ops->open(path, O_WRONLY, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (ops->ftruncate(fd, off) < 0 || ops->fsync(fd) < 0)
		rc = -errno;
	ops->close(fd);
	return rc;
}

/* Every txn is logged, failed ones and session events included, so zxids run on without a
 * gap: the next is the one after, or the first of a later epoch. */
static bool follows(int64_t prev, int64_t next)
{
	return next == prev + 1 || (next >> 32 > prev >> 32 && (uint32_t)next == 1);
}

static int replay_file(const struct zk_fileops *ops, const char *path, bool last, int64_t upto,
		       struct tree *t, const struct recover_cb *cb, const struct recover_opts *opts,
		       struct recover_result *res, char *err, size_t errlen)
{
	struct wal_reader r;
	int rc = wal_reader_open(&r, ops, path);
	if (rc == -EBADMSG && last && r.size < WAL_HEADER_LEN) {
		/* Created but its header never made it to disk: it holds nothing. */
		wal_reader_close(&r);
		LOG_WARN("%s: header cut short (%lld bytes); removing the empty log", path, (long long)r.size);
		return ops->unlink(path) < 0 ? -errno : 0;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, r.err);
		wal_reader_close(&r);
		return rc;
	}
	const uint8_t *entry;
	size_t len;
	int64_t zxid;
	while ((rc = wal_reader_next(&r, &entry, &len, &zxid)) == 1) {
		if (zxid <= res->snap_zxid)
			continue;
		if (zxid > upto) {
			rc = 0; /* what follows is not wanted: not even read */
			break;
		}
		if (!follows(res->last_zxid, zxid)) {
			snprintf(err, errlen, "%s: txn 0x%llx at offset %lld does not follow 0x%llx: the txns "
				 "between are missing", path, (unsigned long long)zxid,
				 (long long)(r.off - 13 - (off_t)len), (unsigned long long)res->last_zxid);
			rc = -EBADMSG;
			break;
		}
		rc = apply_entry(t, cb, opts, entry, len, path, r.off - 13 - (off_t)len, err, errlen);
		if (rc < 0)
			break;
		res->last_zxid = zxid;
		res->txns++;
	}
	if (rc == -EBADMSG && r.bad_off > 0 && !err[0]) {
		if (last && !wal_reader_valid_after(&r)) {
			rc = truncate_tail(ops, path, r.bad_off, r.err);
			res->truncated = 1;
		} else {
			snprintf(err, errlen, "%s: %s%s", path, r.err,
				 last ? " (valid txns follow it: this is corruption, not a torn tail)" : "");
		}
	}
	wal_reader_close(&r);
	return rc;
}

/* The log holding the txn after the snapshot: the last one named at or before it, or else
 * one that opens a later epoch right after it (a learner that took a SNAP at the end of an
 * epoch logs the next from (epoch + 1) << 32 | 1). */
static int first_log(const struct wal_file *logs, size_t n, int64_t snap_zxid, size_t *first)
{
	*first = 0;
	for (size_t i = 0; i < n; i++)
		if (logs[i].zxid <= snap_zxid + 1)
			*first = i;
	if (n == 0 || logs[*first].zxid <= snap_zxid + 1 || follows(snap_zxid, logs[*first].zxid))
		return 0;
	return -EBADMSG;
}

int recover_with(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir,
		 struct tree *t, const struct recover_cb *cb, const struct recover_opts *opts,
		 struct recover_result *res, char *err, size_t errlen)
{
	static const struct recover_opts none;
	opts = opts ? opts : &none;
	int64_t upto = opts->limited ? opts->upto : INT64_MAX;
	ZK_ASSERT(upto >= 0);
	memset(res, 0, sizeof *res);
	err[0] = 0;
	int rc = load_newest_snapshot(ops, snap_dir, upto, t, cb, res, err, errlen);
	if (rc < 0)
		return rc;
	res->last_zxid = res->snap_zxid;
	struct wal_file *logs;
	size_t n, first;
	rc = wal_list(log_dir, "log", &logs, &n);
	if (rc < 0) {
		snprintf(err, errlen, "cannot list %s: %s", log_dir, strerror(-rc));
		return rc;
	}
	if (first_log(logs, n, res->snap_zxid, &first) < 0) {
		snprintf(err, errlen, "%s/%s starts at zxid 0x%llx but the %s ends at 0x%llx: the logs "
			 "between are missing", log_dir, logs[first].name, (unsigned long long)logs[first].zxid,
			 res->snap_zxid ? "snapshot" : "empty database", (unsigned long long)res->snap_zxid);
		free(logs);
		return -EBADMSG;
	}
	for (size_t i = first; i < n && rc == 0 && logs[i].zxid <= upto; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", log_dir, logs[i].name);
		rc = replay_file(ops, path, i + 1 == n, upto, t, cb, opts, res, err, errlen);
	}
	free(logs);
	ZK_ASSERT(rc < 0 || res->last_zxid <= upto);
	return rc;
}

int recover(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir, struct tree *t,
	    const struct recover_cb *cb, struct recover_result *res, char *err, size_t errlen)
{
	return recover_with(ops, snap_dir, log_dir, t, cb, NULL, res, err, errlen);
}

int recover_upto(const struct zk_fileops *ops, const char *snap_dir, const char *log_dir,
		 int64_t upto, struct tree *t, const struct recover_cb *cb,
		 struct recover_result *res, char *err, size_t errlen)
{
	struct recover_opts o = { .limited = true, .upto = upto };
	return recover_with(ops, snap_dir, log_dir, t, cb, &o, res, err, errlen);
}
