/* Snapshot writer, loader and dumper; the format is in snap.h. */
#include "snap/snap.h"
#include "net/jute.h"
#include "net/log.h"
#include "tree/map.h"
#include "wal/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLUSH_AT (256u << 10)

/* ------------------------------------------------------------------ writing */

/* Where the snapshot goes: through a sink every FLUSH_AT bytes (a file, checksummed as it
 * goes, or the caller's sink), or, with no sink, into the caller's bounded buffer (the SNAP
 * stream in memory, never flushed). */
struct snap_out {
	snap_sink_fn sink;
	void *sink_ctx;
	struct zbuf *buf;
	struct jute_out j;
	int err;
};

static int out_err(const struct snap_out *o)
{
	return o->err ? o->err : o->j.err;
}

static void out_flush(struct snap_out *o)
{
	ZK_ASSERT(o->sink != NULL);
	if (out_err(o)) {
		o->err = out_err(o);
		return;
	}
	int rc = zbuf_len(o->buf) ? o->sink(o->sink_ctx, zbuf_head(o->buf), zbuf_len(o->buf)) : 0;
	if (rc < 0)
		o->err = rc;
	zbuf_reset(o->buf);
}

/* The file sink: written at the next offset, the Adler32 of everything so far kept for the
 * seal. */
struct file_sink {
	const struct zk_fileops *ops;
	int fd;
	off_t off;
	uint32_t adler;
};

static int file_sink(void *ctx, const uint8_t *p, size_t n)
{
	struct file_sink *f = ctx;
	f->adler = wal_adler32(f->adler, p, n);
	int rc = zk_pwrite_all(f->ops, f->fd, p, n, f->off);
	f->off += (off_t)n;
	return rc;
}

static void stat_out(struct jute_out *j, const struct tree_stat *s)
{
	jout_i64(j, s->czxid);
	jout_i64(j, s->mzxid);
	jout_i64(j, s->ctime);
	jout_i64(j, s->mtime);
	jout_i32(j, s->version);
	jout_i32(j, s->cversion);
	jout_i32(j, s->aversion);
	jout_i64(j, s->ephemeral_owner);
	jout_i64(j, s->pzxid);
}

/* Pre-order DFS without recursion (paths can be very deep): a stack of (node, next slot). */
struct frame {
	const struct tree_node *n;
	size_t slot;
	size_t path_len;
};

static void write_node(struct snap_out *o, const char *path, size_t len, const struct tree_node *n)
{
	jout_buf(&o->j, path, (int32_t)len);
	jout_buf(&o->j, n->data, n->data_len);
	jout_i64(&o->j, n->acl->snap_index);
	stat_out(&o->j, &n->stat);
	if (o->sink && zbuf_len(o->buf) >= FLUSH_AT)
		out_flush(o);
}

static int write_nodes(struct snap_out *o, const struct tree *t)
{
	size_t cap = 64, depth = 0, pcap = 4096;
	struct frame *st = malloc(cap * sizeof *st);
	char *path = malloc(pcap);
	if (!st || !path) {
		free(st);
		free(path);
		return -ENOMEM;
	}
	write_node(o, "", 0, t->root); /* ZooKeeper writes the root as "" */
	st[depth++] = (struct frame){ t->root, 0, 0 };
	while (depth > 0 && !out_err(o)) {
		struct frame *f = &st[depth - 1];
		struct strmap_ent *e = NULL;
		if (!strmap_next(tree_kids(f->n), &f->slot, &e)) {
			depth--;
			continue;
		}
		const struct tree_node *c = (const struct tree_node *)e;
		size_t len = f->path_len + 1 + e->len;
		if (len + 1 > pcap || depth == cap) {
			pcap = len + 1 > pcap ? 2 * (len + 1) : pcap;
			cap = depth == cap ? 2 * cap : cap;
			char *np = realloc(path, pcap);
			struct frame *ns = realloc(st, cap * sizeof *st);
			if (np) path = np;
			if (ns) st = ns;
			if (!np || !ns) {
				o->err = -ENOMEM;
				break;
			}
			f = &st[depth - 1];
		}
		path[f->path_len] = '/';
		memcpy(path + f->path_len + 1, e->key, e->len);
		write_node(o, path, len, c);
		st[depth++] = (struct frame){ c, 0, len };
	}
	free(st);
	free(path);
	return out_err(o);
}

static void write_acls(struct snap_out *o, struct tree *t)
{
	jout_i32(&o->j, (int32_t)t->acls.count);
	struct strmap_ent *e;
	int64_t idx = 0;
	for (size_t i = 0; strmap_next(&t->acls, &i, &e);) {
		struct tree_acl *a = (struct tree_acl *)e;
		a->snap_index = ++idx;
		jout_i64(&o->j, a->snap_index);
		jout_raw(&o->j, a->bytes, a->ent.len); /* already a serialized vector<ACL> */
	}
}

/* What ZooKeeper's SerializeUtils.serializeSnapshot writes, in a file and on the wire alike:
 * the sessions, the ACL cache, the nodes and the "/" that ends them. */
static int write_body(struct snap_out *o, struct tree *t, const struct snap_session *sessions,
		      size_t nsessions)
{
	ZK_ASSERT(nsessions <= INT32_MAX);
	jout_i32(&o->j, (int32_t)nsessions);
	for (size_t i = 0; i < nsessions; i++) {
		jout_i64(&o->j, sessions[i].id);
		jout_i32(&o->j, sessions[i].timeout_ms);
	}
	write_acls(o, t);
	int rc = write_nodes(o, t);
	if (rc == 0)
		jout_str(&o->j, "/");
	return out_err(o);
}

int snap_write(const struct zk_fileops *ops, const char *dir, int64_t zxid, struct tree *t,
	       const struct snap_session *sessions, size_t nsessions, char *err, size_t errlen)
{
	char tmp[1200], final[1200];
	snprintf(tmp, sizeof tmp, "%s/.snapshot.%llx.tmp", dir, (unsigned long long)zxid);
	wal_file_name(final, sizeof final, dir, "snapshot", zxid);
	struct zbuf buf;
	struct file_sink fs = { .ops = ops, .adler = 1 };
	struct snap_out o = { .sink = file_sink, .sink_ctx = &fs, .buf = &buf };
	fs.fd = ops->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fs.fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -errno;
	}
	zbuf_init(&buf, SIZE_MAX / 2);
	jout_init(&o.j, &buf);
	jout_i32(&o.j, SNAP_MAGIC);
	jout_i32(&o.j, 2);
	jout_i64(&o.j, -1);
	int rc = write_body(&o, t, sessions, nsessions);
	if (rc == 0) {
		out_flush(&o); /* brings the checksum up to here */
		jout_i64(&o.j, (int64_t)fs.adler);
		jout_str(&o.j, "/");
		out_flush(&o);
		rc = o.err;
	}
	if (rc == 0 && ops->fsync(fs.fd) < 0)
		rc = -errno;
	ops->close(fs.fd);
	zbuf_free(&buf);
	if (rc == 0 && ops->rename(tmp, final) < 0)
		rc = -errno;
	if (rc == 0)
		rc = zk_fsync_dir(ops, dir);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write snapshot %s: %s", final, strerror(-rc));
		ops->unlink(tmp);
	}
	return rc;
}

int snap_stream_write(struct zbuf *out, struct tree *t, const struct snap_session *sessions, size_t n)
{
	size_t start = zbuf_len(out);
	struct snap_out o = { .buf = out };
	jout_init(&o.j, out);
	int rc = write_body(&o, t, sessions, n);
	if (rc == 0) {
		jout_str(&o.j, SNAP_SIGNATURE);
		rc = out_err(&o);
	}
	if (rc < 0)
		zbuf_truncate(out, start); /* all or nothing */
	ZK_ASSERT(rc < 0 || zbuf_len(out) > start);
	return rc;
}

int snap_stream_emit(struct tree *t, const struct snap_session *sessions, size_t n,
		     snap_sink_fn sink, void *ctx)
{
	struct zbuf buf;
	struct snap_out o = { .sink = sink, .sink_ctx = ctx, .buf = &buf };
	zbuf_init(&buf, SIZE_MAX / 2);
	jout_init(&o.j, &buf);
	int rc = write_body(&o, t, sessions, n);
	if (rc == 0) {
		jout_str(&o.j, SNAP_SIGNATURE);
		out_flush(&o);
		rc = o.err;
	}
	zbuf_free(&buf);
	return rc;
}

/* ------------------------------------------------------------------ reading */

int snap_sessions_add(void *ctx, int64_t id, int32_t timeout_ms)
{
	struct snap_sessions *l = ctx;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 64;
		struct snap_session *nv = realloc(l->v, ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct snap_session){ id, timeout_ms };
	return 0;
}

struct snap_in {
	uint8_t *map; /* mapped read-only */
	size_t size;
	struct jute_in j;
	char *err;
	size_t errlen;
	const char *path;
};

static int fail(struct snap_in *s, size_t off, const char *why)
{
	snprintf(s->err, s->errlen, "%s: %s at offset %zu", s->path, why, off);
	return -EBADMSG;
}

static int map_file(const struct zk_fileops *ops, const char *path, struct snap_in *s)
{
	int fd = ops->open(path, O_RDONLY, 0);
	if (fd < 0) {
		snprintf(s->err, s->errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < 10) {
		ops->close(fd);
		return fail(s, 0, "file too short to be a snapshot");
	}
	s->size = (size_t)st.st_size;
	void *m = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
	ops->close(fd);
	if (m == MAP_FAILED) {
		snprintf(s->err, s->errlen, "cannot map %s: %s", path, strerror(errno));
		return -errno;
	}
	s->map = m;
	jin_init(&s->j, s->map, s->size);
	return 0;
}

static int read_header(struct snap_in *s)
{
	if ((uint32_t)jin_i32(&s->j) != SNAP_MAGIC)
		return fail(s, 0, "not a snapshot (bad magic)");
	if (jin_i32(&s->j) != 2)
		return fail(s, 4, "unsupported snapshot version");
	jin_i64(&s->j); /* dbid */
	return 0;
}

static void stat_in(struct jute_in *j, struct tree_stat *st)
{
	st->czxid = jin_i64(j);
	st->mzxid = jin_i64(j);
	st->ctime = jin_i64(j);
	st->mtime = jin_i64(j);
	st->version = jin_i32(j);
	st->cversion = jin_i32(j);
	st->aversion = jin_i32(j);
	st->ephemeral_owner = jin_i64(j);
	st->pzxid = jin_i64(j);
}

struct acl_span {
	const uint8_t *p;
	size_t len;
};

static int read_acls(struct snap_in *s, struct u64map *acls)
{
	int32_t n = jin_i32(&s->j);
	if (n < 0)
		return fail(s, s->j.off, "negative ACL cache size");
	for (int32_t i = 0; i < n; i++) {
		int64_t idx = jin_i64(&s->j);
		struct acl_span *a = malloc(sizeof *a);
		int32_t cnt;
		if (!a)
			return -ENOMEM;
		a->p = txn_acl_span(&s->j, &a->len, &cnt);
		if (!a->p || cnt < 0) {
			free(a);
			return fail(s, s->j.off, "bad ACL cache entry");
		}
		struct acl_span *old = u64map_get(acls, (uint64_t)idx);
		if (u64map_put(acls, (uint64_t)idx, a) < 0) {
			free(a);
			return -ENOMEM;
		}
		free(old); /* a repeated index: the later list wins */
	}
	return jin_ok(&s->j) ? 0 : fail(s, s->j.off, "ACL cache cut short");
}

/* The seal: the Adler32 of everything before it, then the string "/". */
static int read_seal(struct snap_in *s)
{
	size_t at = s->j.off;
	uint32_t want = wal_adler32(1, s->map, at);
	int64_t got = jin_i64(&s->j);
	int32_t len;
	const uint8_t *slash = jin_buf(&s->j, &len);
	if (!jin_ok(&s->j))
		return fail(s, at, "snapshot ends before its checksum");
	if ((uint64_t)got != want)
		return fail(s, at, "checksum mismatch");
	if (len != 1 || slash[0] != '/')
		return fail(s, at, "bad seal after the checksum");
	return 0;
}

typedef int (*node_fn)(void *ctx, const char *path, size_t len, const uint8_t *data, int32_t dlen,
		       const struct acl_span *acl, int64_t acl_idx, const struct tree_stat *st);

static int read_nodes(struct snap_in *s, struct u64map *acls, node_fn fn, void *ctx)
{
	for (;;) {
		size_t at = s->j.off;
		int32_t plen, dlen;
		const char *path = (const char *)jin_buf(&s->j, &plen);
		if (!jin_ok(&s->j) || !path)
			return fail(s, at, "node list cut short");
		if (plen == 1 && path[0] == '/')
			return 0;
		const uint8_t *data = jin_buf(&s->j, &dlen);
		int64_t idx = jin_i64(&s->j);
		struct tree_stat st;
		stat_in(&s->j, &st);
		if (!jin_ok(&s->j))
			return fail(s, at, "node record cut short");
		static const uint8_t open_acl_marker = 0;
		struct acl_span open = { &open_acl_marker, 0 };
		struct acl_span *a = idx == -1 ? &open : u64map_get(acls, (uint64_t)idx);
		if (!a)
			return fail(s, at, "node refers to an ACL the cache does not have");
		int rc = fn(ctx, path, (size_t)plen, data, dlen, a, idx, &st);
		if (rc == -ENOENT)
			return fail(s, at, "node whose parent is not in the snapshot before it");
		if (rc < 0)
			return rc == -EINVAL ? fail(s, at, "invalid node path") : rc;
	}
}

static void free_acls(struct u64map *acls)
{
	uint64_t k;
	void *v;
	for (size_t i = 0; u64map_next(acls, &i, &k, &v);)
		free(v);
	u64map_free(acls);
}

/* The body both forms share (write_body): sessions, the ACL cache, the nodes up to "/". */
static int parse_body(struct snap_in *s, struct u64map *acls, snap_session_fn on_session,
		      node_fn on_node, void *ctx)
{
	size_t at = s->j.off;
	int32_t n = jin_i32(&s->j);
	if (!jin_ok(&s->j))
		return fail(s, at, "session list cut short");
	if (n < 0)
		return fail(s, at, "negative session count");
	int rc = 0;
	for (int32_t i = 0; rc == 0 && i < n; i++) {
		int64_t id = jin_i64(&s->j);
		int32_t to = jin_i32(&s->j);
		if (!jin_ok(&s->j))
			rc = fail(s, s->j.off, "session list cut short");
		else if (on_session)
			rc = on_session(ctx, id, to);
	}
	if (rc == 0)
		rc = read_acls(s, acls);
	if (rc == 0)
		rc = read_nodes(s, acls, on_node, ctx);
	return rc;
}

/* Parse a whole snapshot file, handing sessions and nodes to the callbacks. */
static int parse(const struct zk_fileops *ops, const char *path, snap_session_fn on_session,
		 node_fn on_node, void *ctx, char *err, size_t errlen)
{
	struct snap_in s = { .err = err, .errlen = errlen, .path = path };
	int rc = map_file(ops, path, &s);
	if (rc < 0)
		return rc;
	struct u64map acls;
	u64map_init(&acls);
	rc = read_header(&s);
	if (rc == 0)
		rc = parse_body(&s, &acls, on_session, on_node, ctx);
	if (rc == 0)
		rc = read_seal(&s);
	free_acls(&acls);
	munmap(s.map, s.size);
	return rc;
}

static int load_node(void *ctx, const char *path, size_t len, const uint8_t *data, int32_t dlen,
		     const struct acl_span *acl, int64_t acl_idx, const struct tree_stat *st)
{
	(void)acl_idx;
	const uint8_t *ab = acl->len ? acl->p : tree_acl_open;
	size_t al = acl->len ? acl->len : tree_acl_open_len;
	return tree_load_node(ctx, path, len, data, dlen, ab, al, st);
}

struct load_ctx {
	struct tree *t;
	snap_session_fn on_session;
	void *ctx;
};

static int load_session(void *ctx, int64_t id, int32_t timeout)
{
	struct load_ctx *c = ctx;
	return c->on_session ? c->on_session(c->ctx, id, timeout) : 0;
}

static int load_node_ctx(void *ctx, const char *path, size_t len, const uint8_t *data, int32_t dlen,
			 const struct acl_span *acl, int64_t acl_idx, const struct tree_stat *st)
{
	return load_node(((struct load_ctx *)ctx)->t, path, len, data, dlen, acl, acl_idx, st);
}

int snap_load(const struct zk_fileops *ops, const char *path, struct tree *t,
	      snap_session_fn on_session, void *ctx, char *err, size_t errlen)
{
	struct load_ctx c = { t, on_session, ctx };
	int rc = parse(ops, path, load_session, load_node_ctx, &c, err, errlen);
	/* As ZooKeeper's DataTree.deserialize ends: rebuild the quota roots and recount them. */
	if (rc == 0 && (rc = tree_quota_setup(t)) < 0)
		snprintf(err, errlen, "%s: out of memory recounting quotas", path);
	return rc;
}

/* ------------------------------------------------------------------ spooling */

static void spool_tmp(const struct snap_spool *sp, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/.snapshot.%llx.spool", sp->dir, (unsigned long long)sp->zxid);
}

static int spool_put(struct snap_spool *sp, const uint8_t *p, size_t n)
{
	struct file_sink fs = { sp->ops, sp->fd, sp->off, sp->adler };
	int rc = n ? file_sink(&fs, p, n) : 0;
	sp->off = fs.off;
	sp->adler = fs.adler;
	return rc;
}

int snap_spool_open(struct snap_spool *sp, const struct zk_fileops *ops, const char *dir,
		    int64_t zxid, char *err, size_t errlen)
{
	memset(sp, 0, sizeof *sp);
	if (strlen(dir) >= sizeof sp->dir)
		return -ENAMETOOLONG;
	strcpy(sp->dir, dir);
	sp->ops = ops;
	sp->zxid = zxid;
	sp->adler = 1;
	char tmp[1200];
	spool_tmp(sp, tmp, sizeof tmp);
	sp->fd = ops->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (sp->fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -errno;
	}
	uint8_t hdr[16];
	be32_put(hdr, SNAP_MAGIC);
	be32_put(hdr + 4, 2);
	be64_put(hdr + 8, UINT64_MAX); /* dbid -1 */
	int rc = spool_put(sp, hdr, sizeof hdr);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		snap_spool_abort(sp);
	}
	return rc;
}

int snap_spool_feed(struct snap_spool *sp, const uint8_t *p, size_t len, size_t *used)
{
	ZK_ASSERT(sp->fd >= 0 && !sp->done);
	sp->scan.off = 0; /* the caller dropped what was consumed */
	size_t end = 0, sig = 4 + strlen(SNAP_SIGNATURE);
	int rc = snap_stream_scan(&sp->scan, p, len, &end);
	if (rc == -EBADMSG)
		return rc;
	size_t body = rc == 0 ? end - sig : sp->scan.off; /* the signature is no part of a file */
	int wrc = spool_put(sp, p, body);
	if (wrc < 0)
		return wrc;
	*used = rc == 0 ? end : body;
	sp->done = rc == 0;
	return rc;
}

int snap_spool_finish(struct snap_spool *sp, struct tree *t, snap_session_fn on_session, void *ctx,
		      char *err, size_t errlen)
{
	ZK_ASSERT(sp->fd >= 0 && sp->done);
	char tmp[1200], final[1200];
	spool_tmp(sp, tmp, sizeof tmp);
	wal_file_name(final, sizeof final, sp->dir, "snapshot", sp->zxid);
	uint8_t seal[13];
	be64_put(seal, sp->adler);
	be32_put(seal + 8, 1);
	seal[12] = '/';
	int rc = spool_put(sp, seal, sizeof seal);
	if (rc == 0 && sp->ops->fsync(sp->fd) < 0)
		rc = -errno;
	sp->ops->close(sp->fd);
	sp->fd = -1;
	if (rc < 0)
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
	if (rc == 0)
		rc = snap_load(sp->ops, tmp, t, on_session, ctx, err, errlen);
	if (rc == 0 && sp->ops->rename(tmp, final) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
	}
	if (rc == 0 && (rc = zk_fsync_dir(sp->ops, sp->dir)) < 0)
		snprintf(err, errlen, "cannot sync %s: %s", sp->dir, strerror(-rc));
	if (rc < 0)
		sp->ops->unlink(tmp);
	return rc;
}

void snap_spool_abort(struct snap_spool *sp)
{
	if (sp->fd < 0)
		return;
	char tmp[1200];
	spool_tmp(sp, tmp, sizeof tmp);
	sp->ops->close(sp->fd);
	sp->ops->unlink(tmp);
	sp->fd = -1;
}

/* ------------------------------------------------------------------ TRUNC */

/* Why deleting is safe: a TRUNC to zxid comes from a leader whose history ends there while
 * ours goes on. Every txn we hold past zxid was never committed (a committed txn is in the
 * history of every later leader), so a snapshot reflecting any of them is of a state the
 * ensemble never had, and recovery must not start from it. The state up to zxid is rebuilt
 * from an older snapshot and the log (which keeps every txn after the oldest snapshot
 * retained), or, if that log is gone, startup refuses naming the missing files: never a
 * wrong tree. A snapshot still being written (a forked child) must be waited for first, or
 * it would be renamed into place after this. */
int snap_remove_after(const struct zk_fileops *ops, const char *dir, int64_t zxid)
{
	struct wal_file *snaps;
	size_t n;
	int rc = wal_list(dir, "snapshot", &snaps, &n);
	if (rc < 0)
		return rc;
	int removed = 0;
	for (size_t i = n; rc == 0 && i > 0 && snaps[i - 1].zxid > zxid; i--, removed++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, snaps[i - 1].name);
		LOG_WARN("TRUNC to 0x%llx: removing %s, which holds txns past it", (unsigned long long)zxid,
			 path);
		if (ops->unlink(path) < 0)
			rc = -errno;
	}
	free(snaps);
	if (rc == 0 && removed > 0)
		rc = zk_fsync_dir(ops, dir);
	return rc < 0 ? rc : removed;
}

/* ------------------------------------------------------------------ dump */

static int dump_session(void *ctx, int64_t id, int32_t timeout)
{
	fprintf(ctx, "session 0x%" PRIx64 " timeout %d ms\n", (uint64_t)id, timeout);
	return 0;
}

static int dump_node(void *ctx, const char *path, size_t len, const uint8_t *data, int32_t dlen,
		     const struct acl_span *acl, int64_t acl_idx, const struct tree_stat *st)
{
	(void)data;
	(void)acl;
	FILE *f = ctx;
	if (!len)
		fputc('/', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c < 0x20 || c == 0x7f || c == '\\')
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('\n', f);
	fprintf(f, "  cZxid = 0x%" PRIx64 "  ctime = %" PRId64 "\n", (uint64_t)st->czxid, st->ctime);
	fprintf(f, "  mZxid = 0x%" PRIx64 "  mtime = %" PRId64 "\n", (uint64_t)st->mzxid, st->mtime);
	fprintf(f, "  pZxid = 0x%" PRIx64 "\n", (uint64_t)st->pzxid);
	fprintf(f, "  cversion = %d  dataVersion = %d  aclVersion = %d  acl = %" PRId64 "\n",
		st->cversion, st->version, st->aversion, acl_idx);
	fprintf(f, "  ephemeralOwner = 0x%" PRIx64 "  dataLength = %d\n", (uint64_t)st->ephemeral_owner,
		dlen > 0 ? dlen : 0);
	return 0;
}

int snap_dump(const struct zk_fileops *ops, const char *path, FILE *out, char *err, size_t errlen)
{
	return parse(ops, path, dump_session, dump_node, out, err, errlen);
}

/* ------------------------------------------------------------------ the SNAP stream */

static int read_signature(struct snap_in *s)
{
	size_t at = s->j.off, want = strlen(SNAP_SIGNATURE);
	/* A length that cannot be the signature's is wrong now, not after more bytes. */
	if (jin_left(&s->j) >= 4 && be32_get(s->j.p + at) != want)
		return fail(s, at, "missing signature (\"" SNAP_SIGNATURE "\")");
	int32_t len;
	const uint8_t *sig = jin_buf(&s->j, &len);
	if (!jin_ok(&s->j))
		return fail(s, at, "stream ends before its signature");
	if ((size_t)len != want || memcmp(sig, SNAP_SIGNATURE, want) != 0)
		return fail(s, at, "missing signature (\"" SNAP_SIGNATURE "\")");
	return 0;
}

/* Sessions wait in sl until the whole stream has parsed, so a stream read again after
 * -EAGAIN never hands a session over twice. */
static int stream_parse(struct snap_in *s, struct tree *t, struct snap_sessions *sl)
{
	struct load_ctx c = { t, snap_sessions_add, sl };
	struct u64map acls;
	u64map_init(&acls);
	int rc = parse_body(s, &acls, load_session, load_node_ctx, &c);
	if (rc == 0)
		rc = read_signature(s);
	free_acls(&acls);
	if (rc == -EBADMSG && s->j.eof) {
		snprintf(s->err, s->errlen, "%s: cut short at byte %zu", s->path, s->j.len);
		return -EAGAIN;
	}
	if (rc == 0 && tree_quota_setup(t) < 0) {
		snprintf(s->err, s->errlen, "%s: out of memory recounting quotas", s->path);
		return -ENOMEM;
	}
	return rc;
}

int snap_stream_read(const uint8_t *p, size_t len, struct tree *t, snap_session_fn on_session,
		     void *ctx, size_t *used, char *err, size_t errlen)
{
	ZK_ASSERT(t->last_zxid == 0); /* a fresh tree: nothing applied yet */
	struct snap_in s = { .err = err, .errlen = errlen, .path = "snapshot stream" };
	jin_init(&s.j, p, len);
	struct snap_sessions sl = { 0 };
	err[0] = 0;
	int rc = stream_parse(&s, t, &sl);
	for (size_t i = 0; rc == 0 && on_session && i < sl.n; i++)
		rc = on_session(ctx, sl.v[i].id, sl.v[i].timeout_ms);
	free(sl.v);
	if (rc == 0) {
		ZK_ASSERT(s.j.off <= len);
		*used = s.j.off;
	}
	return rc;
}

/* One item of the stream at p[0..len): its length, 0 when it is not all there yet, or
 * -EBADMSG. `last` is set for the node list's end marker. */
static long scan_item(int phase, const uint8_t *p, size_t len, bool *last)
{
	struct jute_in j;
	jin_init(&j, p, len);
	int32_t n = 0;
	struct tree_stat st;
	size_t acl_len;
	switch (phase) {
	case SCAN_SESSIONS:
		jin_i64(&j);
		jin_i32(&j);
		break;
	case SCAN_ACLS:
		jin_i64(&j);
		txn_acl_span(&j, &acl_len, &n);
		break;
	case SCAN_NODES: {
		const uint8_t *path = jin_buf(&j, &n);
		*last = jin_ok(&j) && n == 1 && path[0] == '/';
		if (*last || (jin_ok(&j) && n < 0))
			return jin_ok(&j) ? (long)j.off : -EBADMSG; /* a null path is no node */
		jin_buf(&j, &n);
		jin_i64(&j);
		stat_in(&j, &st);
		break;
	}
	default: /* the counts */
		n = jin_i32(&j);
		if (jin_ok(&j) && n < 0)
			return -EBADMSG;
		break;
	}
	if (!jin_ok(&j))
		return j.eof ? 0 : -EBADMSG;
	return (long)j.off;
}

int snap_stream_scan(struct snap_scan *sc, const uint8_t *p, size_t len, size_t *end)
{
	ZK_ASSERT(sc->off <= len);
	while (sc->phase != SCAN_DONE) {
		if (sc->phase == SCAN_SIGNATURE) {
			size_t want = strlen(SNAP_SIGNATURE);
			if (len - sc->off >= 4 && be32_get(p + sc->off) != want)
				return -EBADMSG;
			if (len - sc->off < 4 + want)
				return -EAGAIN;
			if (memcmp(p + sc->off + 4, SNAP_SIGNATURE, want) != 0)
				return -EBADMSG;
			sc->off += 4 + want;
			sc->phase = SCAN_DONE;
			break;
		}
		bool last = false;
		bool counted = sc->phase == SCAN_SESSIONS || sc->phase == SCAN_ACLS;
		if (counted && sc->left == 0) {
			sc->phase++; /* SESSIONS -> ACL_COUNT, ACLS -> NODES */
			continue;
		}
		long n = scan_item(sc->phase, p + sc->off, len - sc->off, &last);
		if (n <= 0)
			return n < 0 ? -EBADMSG : -EAGAIN;
		sc->off += (size_t)n;
		if (sc->phase == SCAN_SESSION_COUNT || sc->phase == SCAN_ACL_COUNT) {
			sc->left = (int32_t)be32_get(p + sc->off - 4);
			sc->phase++;
		} else if (counted) {
			sc->left--;
		} else if (last) {
			sc->phase = SCAN_SIGNATURE;
		}
	}
	*end = sc->off;
	return 0;
}
