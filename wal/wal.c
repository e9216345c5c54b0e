/* The transaction log; the format and the recovery rules are in wal.h. */
#include "wal/wal.h"
#include "net/jute.h"
#include "net/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAL_BATCH_MAX (64u << 20)
#define TXN_HDR_LEN 32 /* clientId 8, cxid 4, zxid 8, time 8, type 4 */

uint32_t wal_adler32(uint32_t adler, const uint8_t *p, size_t len)
{
	uint32_t a = adler & 0xffff, b = adler >> 16;
	while (len > 0) {
		size_t n = len < 5552 ? len : 5552; /* largest run without overflow */
		len -= n;
		while (n--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return b << 16 | a;
}

void wal_file_name(char *buf, size_t len, const char *dir, const char *prefix, int64_t zxid)
{
	snprintf(buf, len, "%s/%s.%llx", dir, prefix, (unsigned long long)zxid);
}

int wal_init(struct wal *w, const struct zk_fileops *ops, const char *dir, off_t prealloc,
	     bool force_sync, int64_t last_zxid)
{
	memset(w, 0, sizeof *w);
	if (strlen(dir) >= sizeof w->dir)
		return -ENAMETOOLONG;
	strcpy(w->dir, dir);
	w->ops = ops;
	w->prealloc = prealloc > 4096 ? prealloc : 4096;
	w->force_sync = force_sync;
	w->fd = -1;
	w->dir_fd = -1;
	zbuf_init(&w->batch, WAL_BATCH_MAX);
	zbuf_init(&w->inflight, WAL_BATCH_MAX);
	w->durable_zxid = w->batch_last_zxid = last_zxid;
	return 0;
}

void wal_free(struct wal *w)
{
	if (w->async) {
		while (wal_busy(w) && uring_wait(&w->ring) == 0 && wal_complete(w) == 0)
			;
		uring_free(&w->ring);
	}
	if (w->fd >= 0)
		w->ops->close(w->fd);
	if (w->dir_fd >= 0)
		w->ops->close(w->dir_fd);
	w->fd = w->dir_fd = -1;
	zbuf_free(&w->batch);
	zbuf_free(&w->inflight);
}

int wal_enable_async(struct wal *w)
{
	int rc = uring_init(&w->ring, 8);
	if (rc < 0)
		return rc;
	w->async = true;
	return w->ring.event_fd;
}

int wal_append(struct wal *w, int64_t zxid, const uint8_t *entry, size_t len)
{
	if (w->failed)
		return w->failed;
	ZK_ASSERT(zxid > w->batch_last_zxid);
	ZK_ASSERT(len >= TXN_HDR_LEN && len <= WAL_MAX_ENTRY);
	ZK_ASSERT((int64_t)be64_get(entry + 12) == zxid); /* the entry is this txn */
	uint8_t *p = zbuf_reserve(&w->batch, 8 + 4 + len + 1);
	if (!p)
		return -ENOBUFS;
	if (zbuf_len(&w->batch) == 0)
		w->batch_first_zxid = zxid; /* a new file is named by the first txn it holds */
	be64_put(p, wal_adler32(1, entry, len));
	be32_put(p + 8, (uint32_t)len);
	memcpy(p + 12, entry, len);
	p[12 + len] = 'B';
	w->batch.tail += 13 + len;
	w->batch_last_zxid = zxid;
	w->records++;
	w->txns_since_roll++;
	return 0;
}

static int64_t now_us(void);

static int open_file(struct wal *w)
{
	int64_t t0 = now_us();
	char path[1200];
	wal_file_name(path, sizeof path, w->dir, "log", w->file_zxid);
	/* A file of this name can only hold txns that never became durable (recovery replayed
	 * everything durable, and this zxid comes after all of it): start it over. */
	int fd = w->ops->open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	uint8_t hdr[WAL_HEADER_LEN];
	be32_put(hdr, WAL_MAGIC);
	be32_put(hdr + 4, WAL_VERSION);
	be64_put(hdr + 8, 0); /* dbid */
	/* No fsync here: the header is file data, made durable by the first batch's fdatasync,
	 * and the directory entry is synced right after it (need_dir_sync), before any txn of
	 * this file counts as durable. */
	int rc = zk_pwrite_all(w->ops, fd, hdr, sizeof hdr, 0);
	if (rc == 0) {
		int e = w->ops->fallocate(fd, 0, w->prealloc);
		rc = e ? -e : 0;
	}
	if (rc < 0) {
		w->ops->close(fd);
		return rc;
	}
	w->fd = fd;
	w->need_dir_sync = true;
	w->end = WAL_HEADER_LEN;
	w->alloc = w->prealloc;
	w->files++;
	LOG_INFO("new txn log %s (%lld us)", path, (long long)(now_us() - t0));
	return 0;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void roll_now(struct wal *w);

/* Open the file if needed and make room for n more bytes. */
static int prepare(struct wal *w, size_t n)
{
	ZK_ASSERT(!wal_busy(w));
	if (w->roll_pending)
		roll_now(w);
	if (w->fd < 0) {
		w->file_zxid = w->batch_first_zxid;
		int rc = open_file(w);
		if (rc < 0)
			return rc;
	}
	/* Keep at least 4 KiB of preallocated zeros past the data, growing in whole steps;
	 * running out of space shows up here, before anything is acknowledged. */
	if (w->end + (off_t)n + 4096 > w->alloc) {
		off_t want = ((w->end + (off_t)n + 4096) / w->prealloc + 1) * w->prealloc;
		int e = w->ops->fallocate(w->fd, w->alloc, want - w->alloc);
		if (e)
			return -e;
		w->alloc = want;
	}
	return 0;
}

static void note_sync_time(struct wal *w, int64_t us)
{
	w->last_sync_us = us;
	if (us > w->max_sync_us)
		w->max_sync_us = us;
	if (us > 1000000)
		LOG_WARN("fsync of the txn log took %lld ms", (long long)(us / 1000));
}

static int write_batch(struct wal *w)
{
	size_t n = zbuf_len(&w->batch);
	int rc = prepare(w, n);
	if (rc < 0)
		return rc;
	rc = zk_pwrite_all(w->ops, w->fd, zbuf_head(&w->batch), n, w->end);
	if (rc < 0)
		return rc;
	w->end += (off_t)n;
	if (w->force_sync) {
		int64_t t0 = now_us();
		if (w->ops->fdatasync(w->fd) < 0)
			return -errno;
		note_sync_time(w, now_us() - t0);
	}
	if (w->need_dir_sync) {
		rc = zk_fsync_dir(w->ops, w->dir);
		if (rc < 0)
			return rc;
		w->need_dir_sync = false;
	}
	return 0;
}

int wal_complete(struct wal *w)
{
	uint64_t tag;
	int32_t res;
	while (w->async && wal_busy(w) && uring_reap(&w->ring, &tag, &res) == 1) {
		ZK_ASSERT(tag / 4 == w->tag);
		bool is_write = (tag & 3) == 0;
		if (res < 0 && !w->inflight_err)
			w->inflight_err = res;
		else if (is_write && res >= 0 && (size_t)res != zbuf_len(&w->inflight) && !w->inflight_err)
			w->inflight_err = -EIO; /* a short write: the linked sync was cancelled */
		if (--w->inflight_cqes > 0)
			continue;
		if (w->dir_fd >= 0) {
			w->ops->close(w->dir_fd);
			w->dir_fd = -1;
		}
		if (w->inflight_err) {
			w->failed = w->inflight_err;
			return w->failed;
		}
		note_sync_time(w, now_us() - w->inflight_start_us);
		w->durable_zxid = w->inflight_last_zxid;
		w->syncs++;
		zbuf_reset(&w->inflight);
		zbuf_shrink(&w->inflight, 4u << 20);
	}
	return w->failed;
}

int wal_flush(struct wal *w)
{
	if (w->failed)
		return w->failed;
	if (zbuf_len(&w->batch) == 0 || wal_busy(w))
		return 0;
	if (!w->async || !w->force_sync)
		return wal_sync(w);
	size_t n = zbuf_len(&w->batch);
	int rc = prepare(w, n);
	if (rc == 0) {
		struct zbuf t = w->inflight; /* swap: the batch goes to the kernel, a fresh one fills */
		w->inflight = w->batch;
		w->batch = t;
		w->inflight_last_zxid = w->batch_last_zxid;
		w->inflight_err = 0;
		w->inflight_start_us = now_us();
		int dir_fd = -1;
		if (w->need_dir_sync) {
			dir_fd = w->ops->open(w->dir, O_RDONLY | O_DIRECTORY, 0);
			rc = dir_fd < 0 ? -errno : 0;
		}
		if (rc == 0)
			rc = uring_write_sync(&w->ring, w->fd, zbuf_head(&w->inflight), n, w->end, dir_fd, ++w->tag);
		w->dir_fd = dir_fd; /* closed when the sync completes */
	}
	if (rc < 0) {
		w->failed = rc;
		return rc;
	}
	w->end += (off_t)n;
	w->inflight_cqes = rc;
	w->need_dir_sync = false;
	return 0;
}

int wal_sync(struct wal *w)
{
	if (w->failed)
		return w->failed;
	while (wal_busy(w)) {
		int rc = uring_wait(&w->ring);
		if (rc == 0)
			rc = wal_complete(w);
		if (rc < 0)
			return w->failed = rc;
	}
	if (zbuf_len(&w->batch) == 0)
		return 0;
	int rc = write_batch(w);
	if (rc < 0) {
		/* Never retry: after a failed write or fsync the file's contents are unknown. */
		w->failed = rc;
		return rc;
	}
	zbuf_reset(&w->batch);
	zbuf_shrink(&w->batch, 4u << 20);
	w->durable_zxid = w->batch_last_zxid;
	w->syncs++;
	return 0;
}

/* Close the current file now, or once the batch in flight is done with it; the batch
 * written next starts log.<its first zxid>. */
static void roll_now(struct wal *w)
{
	/* The preallocated zeros past the last record were room for this file's next batch;
	 * give them back (its end of file then ends it, as a 0 length does). Without this a
	 * small snapCount leaves preAllocSize of real blocks per rolled file. Failing here
	 * costs only space. */
	if (w->fd >= 0 && w->alloc > w->end && w->ops->ftruncate(w->fd, w->end) < 0)
		LOG_WARN("cannot trim the preallocated tail of log.%llx: %s",
			 (unsigned long long)w->file_zxid, strerror(errno));
	if (w->fd >= 0)
		w->ops->close(w->fd);
	w->fd = -1;
	w->roll_pending = false;
}

int wal_roll(struct wal *w)
{
	w->txns_since_roll = 0;
	if (wal_busy(w))
		w->roll_pending = true;
	else
		roll_now(w);
	return 0;
}

/* ------------------------------------------------------------------ reading */

static int bad(struct wal_reader *r, off_t off, const char *why)
{
	r->bad_off = off;
	snprintf(r->err, sizeof r->err, "%s at offset %lld", why, (long long)off);
	return -EBADMSG;
}

int wal_reader_open(struct wal_reader *r, const struct zk_fileops *ops, const char *path)
{
	memset(r, 0, sizeof *r);
	r->ops = ops;
	r->path = path;
	r->fd = ops->open(path, O_RDONLY, 0);
	if (r->fd < 0) {
		snprintf(r->err, sizeof r->err, "cannot open: %s", strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(r->fd, &st) < 0) {
		snprintf(r->err, sizeof r->err, "cannot stat: %s", strerror(errno));
		return -errno;
	}
	r->size = st.st_size;
	uint8_t hdr[WAL_HEADER_LEN];
	if (r->size < WAL_HEADER_LEN || ops->pread(r->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
		return bad(r, 0, "file header cut short");
	if (be32_get(hdr) != WAL_MAGIC)
		return bad(r, 0, "not a txn log (bad magic)");
	if (be32_get(hdr + 4) != WAL_VERSION)
		return bad(r, 4, "unsupported txn log version");
	r->off = WAL_HEADER_LEN;
	return 0;
}

void wal_reader_close(struct wal_reader *r)
{
	if (r->fd >= 0)
		r->ops->close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int wal_reader_next(struct wal_reader *r, const uint8_t **entry, size_t *len, int64_t *zxid)
{
	uint8_t h[12];
	off_t left = r->size - r->off;
	if (left <= 0)
		return 0;
	size_t hn = left < 12 ? (size_t)left : 12;
	if (r->ops->pread(r->fd, h, hn, r->off) != (ssize_t)hn)
		return bad(r, r->off, "read error");
	if (hn < 12)
		return all_zero(h, hn) ? 0 : bad(r, r->off, "record header cut short");
	uint32_t n = be32_get(h + 8);
	if (n == 0)
		return 0; /* preallocated zeros: the end of the log */
	if (n < TXN_HDR_LEN || n > WAL_MAX_ENTRY)
		return bad(r, r->off, "record length out of range");
	if ((off_t)n + 13 > left)
		return bad(r, r->off, "record cut short by the end of the file");
	if (r->cap < (size_t)n + 1) {
		uint8_t *nb = realloc(r->buf, (size_t)n + 1);
		if (!nb)
			return -ENOMEM;
		r->buf = nb;
		r->cap = (size_t)n + 1;
	}
	if (r->ops->pread(r->fd, r->buf, (size_t)n + 1, r->off + 12) != (ssize_t)n + 1)
		return bad(r, r->off, "read error");
	if (r->buf[n] != 'B')
		return bad(r, r->off, "record without its end-of-record byte (partial)");
	if (be64_get(h) != wal_adler32(1, r->buf, n))
		return bad(r, r->off, "checksum mismatch");
	int64_t z = (int64_t)be64_get(r->buf + 12);
	if (z <= r->last_zxid)
		return bad(r, r->off, "zxid does not increase");
	r->last_zxid = z;
	r->off += 13 + (off_t)n;
	*entry = r->buf;
	*len = n;
	*zxid = z;
	return 1;
}

bool wal_reader_valid_after(struct wal_reader *r)
{
	if (r->size <= r->bad_off + 13)
		return false;
	uint8_t *m = mmap(NULL, (size_t)r->size, PROT_READ, MAP_PRIVATE, r->fd, 0);
	if (m == MAP_FAILED)
		return true; /* cannot tell: assume the worst, refuse to truncate */
	bool found = false;
	for (off_t p = r->bad_off + 1; p + 13 + TXN_HDR_LEN <= r->size && !found; p++) {
		uint32_t n = be32_get(m + p + 8);
		if (n < TXN_HDR_LEN || n > WAL_MAX_ENTRY || p + 13 + (off_t)n > r->size)
			continue;
		if (m[p + 12 + n] != 'B')
			continue;
		found = be64_get(m + p) == wal_adler32(1, m + p + 12, n);
	}
	munmap(m, (size_t)r->size);
	return found;
}

/* ------------------------------------------------------------------ listing */

static int cmp_file(const void *a, const void *b)
{
	int64_t x = ((const struct wal_file *)a)->zxid, y = ((const struct wal_file *)b)->zxid;
	return x < y ? -1 : x > y;
}

int wal_list(const char *dir, const char *prefix, struct wal_file **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	size_t plen = strlen(prefix), cap = 0;
	struct wal_file *v = NULL;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		const char *name = e->d_name;
		if (strncmp(name, prefix, plen) != 0 || name[plen] != '.' || strlen(name) >= sizeof v->name)
			continue;
		const char *hex = name + plen + 1;
		char *end;
		errno = 0;
		unsigned long long z = strtoull(hex, &end, 16);
		if (!*hex || *end || errno)
			continue; /* not ours: snapshot.<zxid>.gz and the like are ignored */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct wal_file *nv = realloc(v, cap * sizeof *v);
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[*n].zxid = (int64_t)z;
		strcpy(v[*n].name, name);
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof *v, cmp_file);
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ truncation */

/* Cut the log file at path right after its last record <= zxid: the file then ends there
 * (no preallocated zeros follow), which a reader takes as the end like a length of 0.
 * A torn tail is cut off with the rest; a bad record followed by valid ones is corruption. */
static int cut_file(const struct zk_fileops *ops, const char *path, int64_t zxid, char *err,
		    size_t errlen)
{
	struct wal_reader r;
	int rc = wal_reader_open(&r, ops, path);
	if (rc == -EBADMSG && r.size < WAL_HEADER_LEN) {
		wal_reader_close(&r); /* its header never reached the disk: it holds nothing */
		return ops->unlink(path) < 0 ? -errno : 0;
	}
	off_t cut = r.off;
	const uint8_t *e;
	size_t len;
	int64_t z;
	int next = 0;
	while (rc == 0 && (next = wal_reader_next(&r, &e, &len, &z)) == 1 && z <= zxid)
		cut = r.off; /* stops at the end, or at the first record past zxid */
	bool torn = next == -EBADMSG && r.bad_off > 0 && !wal_reader_valid_after(&r);
	if (rc == 0 && next < 0 && !torn)
		rc = next; /* a torn tail goes too: cut is where it starts */
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, r.err[0] ? r.err : strerror(-rc));
	wal_reader_close(&r);
	if (rc < 0)
		return rc;
	ZK_ASSERT(cut >= WAL_HEADER_LEN);
	int fd = ops->open(path, O_WRONLY, 0);
	if (fd < 0)
		rc = -errno;
	else if (ops->ftruncate(fd, cut) < 0 || ops->fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		ops->close(fd);
	if (rc < 0)
		snprintf(err, errlen, "cannot cut %s at offset %lld: %s", path, (long long)cut, strerror(-rc));
	return rc;
}

/* Delete the files whose first txn is past zxid (newest first, so a crash midway leaves a
 * log that is still a prefix of what it was), make that durable, then cut the newest one
 * left. Older files hold only txns before its first, so nothing else can be past zxid. */
static int truncate_files(struct wal *w, int64_t zxid, char *err, size_t errlen)
{
	struct wal_file *files;
	size_t n, i = 0;
	int rc = wal_list(w->dir, "log", &files, &n);
	if (rc < 0) {
		snprintf(err, errlen, "cannot list %s: %s", w->dir, strerror(-rc));
		return rc;
	}
	char path[1200];
	for (i = n; rc == 0 && i > 0 && files[i - 1].zxid > zxid; i--) {
		snprintf(path, sizeof path, "%s/%s", w->dir, files[i - 1].name);
		LOG_INFO("truncating the log to 0x%llx: removing %s", (unsigned long long)zxid, path);
		if (w->ops->unlink(path) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
		}
	}
	if (rc == 0 && i < n && (rc = zk_fsync_dir(w->ops, w->dir)) < 0)
		snprintf(err, errlen, "cannot sync directory %s: %s", w->dir, strerror(-rc));
	if (rc == 0 && i > 0) {
		snprintf(path, sizeof path, "%s/%s", w->dir, files[i - 1].name);
		rc = cut_file(w->ops, path, zxid, err, errlen);
	}
	free(files);
	return rc;
}

int wal_truncate(struct wal *w, int64_t zxid, char *err, size_t errlen)
{
	ZK_ASSERT(zxid >= 0);
	err[0] = 0;
	int rc = wal_sync(w); /* nothing in flight or batched may land after the cut */
	if (rc < 0) {
		snprintf(err, errlen, "the txn log has failed: %s", strerror(-rc));
		return rc;
	}
	roll_now(w); /* the next batch starts log.<its first zxid>: that name is free now */
	rc = truncate_files(w, zxid, err, errlen);
	if (rc < 0) {
		w->failed = rc; /* what is on disk is unknown: refuse to go on, as after a failed sync */
		return rc;
	}
	if (w->batch_last_zxid > zxid)
		w->batch_last_zxid = zxid;
	if (w->durable_zxid > zxid)
		w->durable_zxid = zxid;
	w->txns_since_roll = 0;
	ZK_ASSERT(!wal_busy(w) && !wal_has_batch(w) && w->fd < 0);
	return 0;
}

int wal_snap_installed(struct wal *w, int64_t zxid, char *err, size_t errlen)
{
	int rc = wal_truncate(w, zxid, err, errlen);
	if (rc == 0)
		w->batch_last_zxid = w->durable_zxid = zxid; /* the snapshot holds all up to zxid */
	return rc;
}
