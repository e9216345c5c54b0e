/* Proves the txn log's Adler32 is ZooKeeper's, that records written by wal_append/wal_sync
 * read back whole from preallocated log.<zxid> files in ZooKeeper's format, that the reader
 * tells the end, torn tails and corruption apart, and that failed writes and fsyncs (injected
 * through the file-ops table) are sticky and never counted as durable. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "wal/wal.h"
#include "tests/unit/support/support.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The definition, one byte at a time (RFC 1950 section 8.2). */
static uint32_t adler_ref(const uint8_t *p, size_t len)
{
	uint32_t a = 1, b = 0;
	for (size_t i = 0; i < len; i++) {
		a = (a + p[i]) % 65521;
		b = (b + a) % 65521;
	}
	return b << 16 | a;
}

Test(wal, adler32_reference_values, .timeout = 10)
{
	cr_assert_eq(wal_adler32(1, (const uint8_t *)"Wikipedia", 9), 0x11E60398);
	cr_assert_eq(wal_adler32(1, (const uint8_t *)"", 0), 1);
	cr_assert_eq(wal_adler32(1, (const uint8_t *)"a", 1), 0x00620062);
	cr_assert_eq(wal_adler32(1, (const uint8_t *)"abc", 3), 0x024d0127);
	/* Long runs of 0xff cross the 5552-byte reduction boundary many times. */
	size_t n = 100003;
	uint8_t *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = i % 3 ? 0xff : (uint8_t)(i * 7);
	cr_assert_eq(wal_adler32(1, buf, n), adler_ref(buf, n));
	/* Chained over pieces equals one pass. */
	uint32_t a = wal_adler32(1, buf, 5551);
	a = wal_adler32(a, buf + 5551, 3);
	a = wal_adler32(a, buf + 5554, n - 5554);
	cr_assert_eq(a, adler_ref(buf, n));
	free(buf);
}

static void entry_for(uint8_t *e, size_t len, int64_t zxid)
{
	memset(e, (int)(zxid & 0x7f), len);
	be64_put(e, 0x1234);       /* clientId */
	be32_put(e + 8, 1);        /* cxid */
	be64_put(e + 12, (uint64_t)zxid);
}

Test(wal, records_read_back_from_the_file, .timeout = 10)
{
	char dir[] = "/tmp/zkd-wal-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct wal w;
	cr_assert_eq(wal_init(&w, &zk_fileops_posix, dir, 65536, true, 0), 0);
	uint8_t e[64];
	for (int64_t z = 1; z <= 5; z++) {
		entry_for(e, 32 + (size_t)z, z);
		cr_assert_eq(wal_append(&w, z, e, 32 + (size_t)z), 0);
		cr_assert_eq(w.durable_zxid, 0, "nothing is durable before sync");
	}
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 5);
	cr_assert_eq(w.syncs, 1, "one sync for the whole batch");
	wal_free(&w);
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	const uint8_t *ent;
	size_t len;
	int64_t zxid;
	for (int64_t z = 1; z <= 5; z++) {
		cr_assert_eq(wal_reader_next(&r, &ent, &len, &zxid), 1, "%s", r.err);
		cr_assert_eq(zxid, z);
		cr_assert_eq(len, 32 + (size_t)z);
		entry_for(e, len, z);
		cr_assert_arr_eq(ent, e, len);
	}
	cr_assert_eq(wal_reader_next(&r, &ent, &len, &zxid), 0, "preallocated zeros end the log");
	wal_reader_close(&r);
	unlink(path);
	rmdir(dir);
}

/* ---- helpers: a temp dir, whole-file access, counting and failing file ops ---- */

static char dir[64];

static int n_fdatasync, n_pwrite, n_falloc;
static int fdatasync_errno;  /* fail every fdatasync with this, when set */
static int falloc_fail_from; /* fail the n-th and later fallocate calls with ENOSPC (1-based) */
static size_t pwrite_max;    /* write at most this many bytes per call, when set */
static struct zk_fileops ops;

static int t_fdatasync(int fd)
{
	n_fdatasync++;
	if (fdatasync_errno) {
		errno = fdatasync_errno;
		return -1;
	}
	return fdatasync(fd);
}

static int t_fallocate(int fd, off_t off, off_t len)
{
	n_falloc++;
	if (falloc_fail_from && n_falloc >= falloc_fail_from)
		return ENOSPC;
	return zk_fileops_posix.fallocate(fd, off, len);
}

static ssize_t t_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	n_pwrite++;
	return pwrite(fd, buf, pwrite_max && n > pwrite_max ? pwrite_max : n, off);
}

static void setup(void)
{
	t_tmpdir(dir, sizeof dir, "wal");
	ops = zk_fileops_posix;
	ops.fdatasync = t_fdatasync;
	ops.fallocate = t_fallocate;
	ops.pwrite = t_pwrite;
}

static void teardown(void) { t_rm_tree(dir); }

static size_t len_of(int64_t z) { return 40 + (size_t)(z * 7 % 23); }

/* Where the record of zxid z starts in a file whose first txn is `first`. */
static off_t rec_start(int64_t first, int64_t z)
{
	off_t off = WAL_HEADER_LEN;
	for (int64_t i = first; i < z; i++)
		off += 13 + (off_t)len_of(i);
	return off;
}

static void append_range(struct wal *w, int64_t from, int64_t to)
{
	uint8_t e[128];
	for (int64_t z = from; z <= to; z++) {
		entry_for(e, len_of(z), z);
		cr_assert_eq(wal_append(w, z, e, len_of(z)), 0);
	}
}

/* log.1 holding txns 1..n, synced, with a 64 KiB preallocation. */
static void write_log(int64_t n, char *path, size_t cap)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, n);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, n);
	wal_free(&w);
	wal_file_name(path, cap, dir, "log", 1);
}

static uint8_t *slurp(const char *path, off_t *size)
{
	size_t n;
	uint8_t *p = t_slurp(path, &n);
	*size = (off_t)n;
	return p;
}

static void flip(const char *path, off_t off) { t_flip(path, off, 0x5a); }

/* Read txns from..to in order, each whole. */
static void expect_records(struct wal_reader *r, int64_t from, int64_t to)
{
	const uint8_t *ent;
	size_t len;
	int64_t zxid;
	uint8_t e[128];
	for (int64_t z = from; z <= to; z++) {
		cr_assert_eq(wal_reader_next(r, &ent, &len, &zxid), 1, "zxid %lld: %s", (long long)z, r->err);
		cr_assert_eq(zxid, z);
		cr_assert_eq(len, len_of(z));
		entry_for(e, len, z);
		cr_assert_arr_eq(ent, e, len);
	}
}

static int next_rc(struct wal_reader *r)
{
	const uint8_t *ent;
	size_t len;
	int64_t zxid;
	return wal_reader_next(r, &ent, &len, &zxid);
}

/* Open path, read txns 1..good whole, then find the record at `at` bad; r stays open. */
static void read_to_bad(struct wal_reader *r, const char *path, int64_t good, off_t at, const char *what)
{
	cr_assert_eq(wal_reader_open(r, &zk_fileops_posix, path), 0, "%s", r->err);
	expect_records(r, 1, good);
	cr_assert_eq(next_rc(r), -EBADMSG, "%s", what);
	cr_assert_eq(r->bad_off, at);
}

/* ---- writing: files, names, header, preallocation ---- */

Test(wal, roll_makes_the_next_append_start_log_of_its_zxid, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, 3);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(wal_roll(&w), 0);
	cr_assert_eq(w.txns_since_roll, 0);
	append_range(&w, 4, 6);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 6);
	cr_assert_eq(w.files, 2);
	wal_free(&w);

	struct wal_file *v;
	size_t n;
	cr_assert_eq(wal_list(dir, "log", &v, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(v[0].zxid, 1);
	cr_assert_str_eq(v[0].name, "log.1");
	cr_assert_eq(v[1].zxid, 4);
	cr_assert_str_eq(v[1].name, "log.4");
	free(v);

	char path[256];
	struct wal_reader r;
	wal_file_name(path, sizeof path, dir, "log", 1);
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 3);
	cr_assert_eq(next_rc(&r), 0, "log.1 ends at the roll");
	wal_reader_close(&r);
	wal_file_name(path, sizeof path, dir, "log", 4);
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	/* The reader's zxid check starts afresh per file: 4 is the first here. */
	const uint8_t *ent;
	size_t len;
	int64_t zxid;
	uint8_t e[128];
	for (int64_t z = 4; z <= 6; z++) {
		cr_assert_eq(wal_reader_next(&r, &ent, &len, &zxid), 1, "%s", r.err);
		cr_assert_eq(zxid, z);
		entry_for(e, len_of(z), z);
		cr_assert_arr_eq(ent, e, len_of(z));
	}
	cr_assert_eq(next_rc(&r), 0);
	wal_reader_close(&r);
}

Test(wal, header_is_zookeepers_and_the_file_is_preallocated_with_zeros, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 16384, true, 0), 0);
	append_range(&w, 1, 4);
	cr_assert_eq(wal_sync(&w), 0);
	off_t end = rec_start(1, 5);
	cr_assert_eq(w.end, end);
	wal_free(&w);

	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	off_t size;
	uint8_t *p = slurp(path, &size);
	cr_assert_arr_eq(p, "ZKLG", 4);
	cr_assert_eq(be32_get(p + 4), 2, "version");
	cr_assert_eq(be64_get(p + 8), 0, "dbid");
	cr_assert_eq(size, 16384, "one preallocation step, got %lld", (long long)size);
	/* Each record: checksum of the entry, length, entry, 'B'. */
	off_t off = WAL_HEADER_LEN;
	for (int64_t z = 1; z <= 4; z++) {
		uint32_t n = be32_get(p + off + 8);
		cr_assert_eq(n, len_of(z));
		cr_assert_eq(be64_get(p + off), wal_adler32(1, p + off + 12, n));
		cr_assert_eq((int64_t)be64_get(p + off + 12 + 12), z, "the entry's TxnHeader zxid");
		cr_assert_eq(p[off + 12 + n], 'B');
		off += 13 + (off_t)n;
	}
	for (off_t i = end; i < size; i++)
		cr_assert_eq(p[i], 0, "byte %lld past the records is not zero", (long long)i);
	free(p);
}

Test(wal, preallocation_grows_in_whole_steps_ahead_of_the_data, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 4096, true, 0), 0);
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	int64_t z = 1;
	for (int round = 0; round < 6; round++) {
		append_range(&w, z, z + 29);
		z += 30;
		cr_assert_eq(wal_sync(&w), 0);
		off_t size = t_file_size(path);
		cr_assert_eq(size % 4096, 0, "size %lld is not whole steps", (long long)size);
		cr_assert_eq(size, w.alloc);
		cr_assert_geq(size, w.end + 4096, "at least 4 KiB of zeros stay ahead of the data");
	}
	cr_assert_gt(n_falloc, 2, "the file grew");
	off_t end = w.end;
	wal_free(&w);
	off_t size;
	uint8_t *p = slurp(path, &size);
	for (off_t i = end; i < size; i++)
		cr_assert_eq(p[i], 0, "byte %lld past the records is not zero", (long long)i);
	free(p);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, z - 1);
	cr_assert_eq(next_rc(&r), 0);
	wal_reader_close(&r);
}

/* ---- reading: end, torn tails, corruption ---- */

Test(wal, flipped_entry_byte_is_a_checksum_error_at_the_record_start, .init = setup, .fini = teardown,
     .timeout = 10)
{
	char path[256];
	write_log(6, path, sizeof path);
	off_t at = rec_start(1, 3);
	flip(path, at + 12 + 30); /* inside txn 3's entry, past its TxnHeader */
	struct wal_reader r;
	read_to_bad(&r, path, 2, at, "");
	cr_assert_not_null(strstr(r.err, "checksum"), "%s", r.err);
	char off[32];
	snprintf(off, sizeof off, "%lld", (long long)at);
	cr_assert_not_null(strstr(r.err, off), "the offset is named: %s", r.err);
	cr_assert(wal_reader_valid_after(&r), "txns 4..6 are intact after it");
	wal_reader_close(&r);
}

Test(wal, flipped_checksum_field_is_found_too, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(4, path, sizeof path);
	off_t at = rec_start(1, 2);
	flip(path, at + 7);
	struct wal_reader r;
	read_to_bad(&r, path, 1, at, "");
	cr_assert(wal_reader_valid_after(&r));
	wal_reader_close(&r);
}

Test(wal, last_record_cut_mid_entry_is_a_torn_tail, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 5);
	cr_assert_eq(truncate(path, at + 20), 0);
	struct wal_reader r;
	read_to_bad(&r, path, 4, at, "");
	cr_assert(!wal_reader_valid_after(&r), "nothing valid follows a torn tail");
	wal_reader_close(&r);
}

Test(wal, last_record_cut_inside_its_header_is_a_torn_tail, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 5);
	cr_assert_eq(truncate(path, at + 5), 0);
	struct wal_reader r;
	read_to_bad(&r, path, 4, at, "5 bytes of a checksum are not the end of the log");
	cr_assert(!wal_reader_valid_after(&r));
	wal_reader_close(&r);
}

Test(wal, cut_exactly_at_a_record_boundary_is_a_clean_end, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	cr_assert_eq(truncate(path, rec_start(1, 4)), 0);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 3);
	cr_assert_eq(next_rc(&r), 0);
	wal_reader_close(&r);
}

Test(wal, last_record_with_zeroed_end_is_a_torn_tail, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 5), end = rec_start(1, 6);
	static const uint8_t zeros[9];
	t_poke(path, end - 9, zeros, sizeof zeros); /* the last 8 entry bytes and the 'B' */
	struct wal_reader r;
	read_to_bad(&r, path, 4, at, "");
	cr_assert(!wal_reader_valid_after(&r), "only preallocated zeros follow");
	wal_reader_close(&r);
}

Test(wal, last_record_without_its_B_is_a_torn_tail, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 5), end = rec_start(1, 6);
	cr_assert_eq(t_peek(path, end - 1), 'B');
	static const uint8_t zero[1];
	t_poke(path, end - 1, zero, 1);
	struct wal_reader r;
	read_to_bad(&r, path, 4, at, "");
	cr_assert_not_null(strstr(r.err, "end-of-record"), "%s", r.err);
	cr_assert(!wal_reader_valid_after(&r));
	wal_reader_close(&r);
}

Test(wal, middle_record_without_its_B_is_followed_by_valid_ones, .init = setup, .fini = teardown,
     .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 2), end = rec_start(1, 3);
	t_poke(path, end - 1, "X", 1);
	struct wal_reader r;
	read_to_bad(&r, path, 1, at, "");
	cr_assert(wal_reader_valid_after(&r));
	wal_reader_close(&r);
}

Test(wal, zero_length_record_is_the_end_of_the_log, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	static const uint8_t zero4[4];
	t_poke(path, rec_start(1, 3) + 8, zero4, 4);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 2);
	cr_assert_eq(next_rc(&r), 0, "length 0 ends the file whatever follows: %s", r.err);
	cr_assert_eq(next_rc(&r), 0, "and stays ended");
	wal_reader_close(&r);
}

Test(wal, header_only_file_is_an_empty_log, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	uint8_t hdr[WAL_HEADER_LEN];
	be32_put(hdr, WAL_MAGIC);
	be32_put(hdr + 4, WAL_VERSION);
	be64_put(hdr + 8, 0);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
	close(fd);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	cr_assert_eq(next_rc(&r), 0);
	wal_reader_close(&r);
}

Test(wal, bad_header_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(2, path, sizeof path);
	struct wal_reader r;
	flip(path, 1);
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), -EBADMSG);
	cr_assert_not_null(strstr(r.err, "magic"), "%s", r.err);
	wal_reader_close(&r);
	flip(path, 1);
	flip(path, 7);
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), -EBADMSG);
	cr_assert_not_null(strstr(r.err, "version"), "%s", r.err);
	wal_reader_close(&r);
	cr_assert_eq(truncate(path, 10), 0);
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), -EBADMSG);
	wal_reader_close(&r);
}

static void expect_bad_length(const char *path, off_t at, uint32_t n, const char *why)
{
	uint8_t b[4];
	be32_put(b, n);
	t_poke(path, at + 8, b, 4);
	char what[32];
	snprintf(what, sizeof what, "length %u", n);
	struct wal_reader r;
	read_to_bad(&r, path, 2, at, what);
	cr_assert_not_null(strstr(r.err, why), "length %u: %s", n, r.err);
	cr_assert(wal_reader_valid_after(&r), "txns 4..5 follow");
	wal_reader_close(&r);
}

Test(wal, record_length_out_of_range_is_bad, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 3);
	expect_bad_length(path, at, 1, "out of range");
	expect_bad_length(path, at, 31, "out of range"); /* shorter than a TxnHeader */
	expect_bad_length(path, at, WAL_MAX_ENTRY + 1, "out of range");
	expect_bad_length(path, at, 0xffffffffu, "out of range"); /* -1 as a Java int */
	expect_bad_length(path, at, 1u << 20, "cut short"); /* in range, past the end of the file */
}

/* Rewrite txn `z`'s TxnHeader zxid to `to` with a valid checksum. */
static void rezxid(const char *path, off_t at, size_t len, int64_t to)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t e[128];
	cr_assert_eq(pread(fd, e, len, at + 12), (ssize_t)len);
	be64_put(e + 12, (uint64_t)to);
	uint8_t ck[8];
	be64_put(ck, wal_adler32(1, e, len));
	cr_assert_eq(pwrite(fd, ck, 8, at), 8);
	cr_assert_eq(pwrite(fd, e, len, at + 12), (ssize_t)len);
	close(fd);
}

Test(wal, zxid_not_above_the_one_before_is_bad, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256];
	write_log(5, path, sizeof path);
	off_t at = rec_start(1, 3);
	static const int64_t tos[] = { 2, 1, -5 };
	for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
		rezxid(path, at, len_of(3), tos[i]);
		char what[48];
		snprintf(what, sizeof what, "zxid %lld after 2", (long long)tos[i]);
		struct wal_reader r;
		read_to_bad(&r, path, 2, at, what);
		cr_assert_not_null(strstr(r.err, "zxid"), "%s", r.err);
		wal_reader_close(&r);
	}
	/* A jump up is fine (a new epoch). */
	rezxid(path, at, len_of(3), 0x100000001LL);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 2);
	const uint8_t *ent;
	size_t len;
	int64_t zxid;
	cr_assert_eq(wal_reader_next(&r, &ent, &len, &zxid), 1, "%s", r.err);
	cr_assert_eq(zxid, 0x100000001LL);
	cr_assert_eq(next_rc(&r), -EBADMSG, "txn 4 now comes after epoch 1's first");
	wal_reader_close(&r);
}

/* ---- failures injected through the file-ops table ---- */

Test(wal, failed_fdatasync_is_sticky_and_nothing_becomes_durable, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, 3);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 3);
	int syncs = n_fdatasync;
	fdatasync_errno = EIO;
	append_range(&w, 4, 5);
	cr_assert_eq(wal_sync(&w), -EIO);
	cr_assert_eq(w.durable_zxid, 3, "a failed fdatasync makes nothing durable");
	cr_assert_eq(n_fdatasync, syncs + 1);
	fdatasync_errno = 0; /* the disk "recovers": the log must not */
	uint8_t e[128];
	entry_for(e, len_of(6), 6);
	cr_assert_eq(wal_append(&w, 6, e, len_of(6)), -EIO);
	cr_assert_eq(wal_sync(&w), -EIO);
	cr_assert_eq(wal_sync(&w), -EIO);
	cr_assert_eq(w.durable_zxid, 3);
	cr_assert_eq(n_fdatasync, syncs + 1, "an fsync is never retried");
	cr_assert_eq(w.failed, -EIO);
	wal_free(&w);
}

static ssize_t eio_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	(void)fd;
	(void)buf;
	(void)n;
	(void)off;
	errno = EIO;
	return -1;
}

Test(wal, failed_pwrite_makes_nothing_durable_and_sticks, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, 2);
	cr_assert_eq(wal_sync(&w), 0);
	int syncs = n_fdatasync;
	ops.pwrite = eio_pwrite;
	append_range(&w, 3, 4);
	cr_assert_eq(wal_sync(&w), -EIO);
	cr_assert_eq(w.durable_zxid, 2);
	cr_assert_eq(n_fdatasync, syncs, "no fdatasync after a failed write");
	ops.pwrite = t_pwrite;
	cr_assert_eq(wal_sync(&w), -EIO);
	uint8_t e[128];
	entry_for(e, len_of(5), 5);
	cr_assert_eq(wal_append(&w, 5, e, len_of(5)), -EIO);
	wal_free(&w);
}

Test(wal, enospc_preallocating_the_first_file_fails_the_sync, .init = setup, .fini = teardown,
     .timeout = 10)
{
	falloc_fail_from = 1;
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, 3);
	cr_assert_eq(wal_sync(&w), -ENOSPC);
	cr_assert_eq(w.durable_zxid, 0);
	cr_assert_eq(n_fdatasync, 0);
	cr_assert_eq(n_falloc, 1);
	falloc_fail_from = 0;
	cr_assert_eq(wal_sync(&w), -ENOSPC, "sticky");
	uint8_t e[128];
	entry_for(e, len_of(4), 4);
	cr_assert_eq(wal_append(&w, 4, e, len_of(4)), -ENOSPC);
	cr_assert_eq(w.durable_zxid, 0);
	wal_free(&w);
	/* Whatever file was left holds no txn. */
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	struct wal_reader r;
	if (wal_reader_open(&r, &zk_fileops_posix, path) == 0)
		cr_assert_eq(next_rc(&r), 0, "no record reached the file");
	wal_reader_close(&r);
}

Test(wal, enospc_growing_the_file_fails_the_sync, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 4096, true, 0), 0);
	append_range(&w, 1, 3);
	cr_assert_eq(wal_sync(&w), 0);
	int syncs = n_fdatasync, fallocs = n_falloc;
	off_t alloc = w.alloc;
	falloc_fail_from = fallocs + 1;
	append_range(&w, 4, 80); /* ~4 KiB: past the preallocated zeros */
	cr_assert_eq(wal_sync(&w), -ENOSPC);
	cr_assert_eq(n_falloc, fallocs + 1, "the growth was tried once");
	cr_assert_eq(w.alloc, alloc);
	cr_assert_eq(w.durable_zxid, 3);
	cr_assert_eq(n_fdatasync, syncs);
	falloc_fail_from = 0;
	cr_assert_eq(wal_sync(&w), -ENOSPC, "sticky");
	wal_free(&w);
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 3);
	cr_assert_eq(next_rc(&r), 0, "the failed batch never reached the file");
	wal_reader_close(&r);
}

Test(wal, short_pwrites_are_retried_to_completion, .init = setup, .fini = teardown, .timeout = 10)
{
	pwrite_max = 7;
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 0), 0);
	append_range(&w, 1, 10);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 10);
	off_t want = rec_start(1, 11);
	cr_assert_geq(n_pwrite, (int)(want / 7), "pwrite was called %d times", n_pwrite);
	wal_free(&w);
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", 1);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	expect_records(&r, 1, 10);
	cr_assert_eq(next_rc(&r), 0);
	wal_reader_close(&r);
}

Test(wal, force_sync_off_makes_no_fdatasync, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, false, 0), 0);
	for (int64_t z = 1; z <= 20; z += 4) {
		append_range(&w, z, z + 3);
		cr_assert_eq(wal_sync(&w), 0);
		cr_assert_eq(w.durable_zxid, z + 3);
	}
	cr_assert_eq(w.syncs, 5);
	cr_assert_eq(n_fdatasync, 0);
	wal_free(&w);
	/* And with it on, one per sync. */
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 20), 0);
	wal_roll(&w);
	append_range(&w, 21, 24);
	cr_assert_eq(wal_sync(&w), 0);
	append_range(&w, 25, 28);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(wal_sync(&w), 0, "an empty sync");
	cr_assert_eq(n_fdatasync, 2);
	wal_free(&w);
}

/* ---- listing ---- */

static void touch(const char *name)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
}

Test(wal, list_sorts_by_zxid_and_ignores_other_names, .init = setup, .fini = teardown, .timeout = 10)
{
	static const char *const names[] = { "log.100000001", "log.a", "log.2", "log.ff", "log.",
					     "log.1.gz", "log.zz", "logx.3", "snapshot.5", ".snapshot.5.tmp" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		touch(names[i]);
	struct wal_file *v;
	size_t n;
	cr_assert_eq(wal_list(dir, "log", &v, &n), 0);
	static const int64_t want[] = { 2, 0xa, 0xff, 0x100000001LL };
	cr_assert_eq(n, 4, "%zu logs listed", n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(v[i].zxid, want[i], "entry %zu", i);
	cr_assert_str_eq(v[3].name, "log.100000001");
	free(v);
	cr_assert_eq(wal_list(dir, "snapshot", &v, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].zxid, 5);
	free(v);
}

/* Regression (fixed): wal/wal.c wal_list() ends with qsort(v, *n, ...) also when nothing matched, passing
 * qsort a NULL base (undefined behaviour; UBSan aborts with "null pointer passed as argument
 * 1"). Every recovery from an empty or log-less data directory goes through it. Fails only
 * under -fsanitize=undefined. */
Test(wal, list_of_a_directory_without_matches_is_empty, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal_file *v = (struct wal_file *)1;
	size_t n = 7;
	cr_assert_eq(wal_list(dir, "log", &v, &n), 0);
	cr_assert_eq(n, 0);
	free(v);
	touch("snapshot.1");
	cr_assert_eq(wal_list(dir, "log", &v, &n), 0);
	cr_assert_eq(n, 0);
	free(v);
	char missing[128];
	snprintf(missing, sizeof missing, "%s/nonexistent", dir);
	cr_assert_eq(wal_list(missing, "log", &v, &n), 0, "a missing directory lists as empty");
	cr_assert_eq(n, 0);
	cr_assert_null(v);
}

/* ---- truncation (ZAB TRUNC) ---- */

/* log.1 holding 1..10 and log.b holding 11..20, synced; w stays open. */
static void two_files(struct wal *w)
{
	cr_assert_eq(wal_init(w, &ops, dir, 65536, true, 0), 0);
	append_range(w, 1, 10);
	cr_assert_eq(wal_sync(w), 0);
	cr_assert_eq(wal_roll(w), 0);
	append_range(w, 11, 20);
	cr_assert_eq(wal_sync(w), 0);
}

/* The file log.<first> holds exactly first..last, then ends (or zeros follow when zeros). */
static void expect_file(int64_t first, int64_t last, bool zeros)
{
	char path[256];
	wal_file_name(path, sizeof path, dir, "log", first);
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s: %s", path, r.err);
	expect_records(&r, first, last);
	cr_assert_eq(next_rc(&r), 0, "%s ends after 0x%llx", path, (unsigned long long)last);
	wal_reader_close(&r);
	off_t end = rec_start(first, last + 1);
	if (zeros)
		cr_assert_gt(t_file_size(path), end, "%s is preallocated", path);
	else
		cr_assert_eq(t_file_size(path), end, "%s ends right after its last record", path);
}

static void expect_names(const int64_t *want, size_t n)
{
	struct wal_file *v;
	size_t got;
	cr_assert_eq(wal_list(dir, "log", &v, &got), 0);
	cr_assert_eq(got, n, "%zu log files, want %zu", got, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(v[i].zxid, want[i], "file %zu", i);
	free(v);
}

static void truncate_ok(struct wal *w, int64_t zxid)
{
	char err[512] = "";
	cr_assert_eq(wal_truncate(w, zxid, err, sizeof err), 0, "%s", err);
	cr_assert_eq(w->fd, -1, "the cut file is closed");
}

Test(wal, truncate_in_the_middle_of_a_file, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	truncate_ok(&w, 5);
	cr_assert_eq(w.durable_zxid, 5);
	expect_names((int64_t[]){ 1 }, 1);
	expect_file(1, 5, false);
	/* The history goes on from 6 in a new file; the cut one is never appended to. */
	append_range(&w, 6, 8);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 8);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 6 }, 2);
	expect_file(1, 5, false);
	expect_file(6, 8, true);
}

Test(wal, truncate_at_a_file_boundary, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	truncate_ok(&w, 10);
	expect_names((int64_t[]){ 1 }, 1);
	expect_file(1, 10, false);
	truncate_ok(&w, 10); /* again: nothing changes */
	expect_file(1, 10, false);
	append_range(&w, 11, 12);
	cr_assert_eq(wal_sync(&w), 0);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 11 }, 2);
	expect_file(11, 12, true);
}

Test(wal, truncate_past_the_end_keeps_every_txn, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	truncate_ok(&w, 100);
	cr_assert_eq(w.durable_zxid, 20);
	expect_names((int64_t[]){ 1, 11 }, 2);
	expect_file(1, 10, false); /* rolled: trimmed at the roll, not by the TRUNC */
	expect_file(11, 20, false);
	append_range(&w, 21, 21);
	cr_assert_eq(wal_sync(&w), 0);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 11, 21 }, 3);
}

Test(wal, truncate_to_zero_removes_every_file, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	truncate_ok(&w, 0);
	cr_assert_eq(w.durable_zxid, 0);
	expect_names(NULL, 0);
	append_range(&w, 1, 3); /* another history from the start */
	cr_assert_eq(wal_sync(&w), 0);
	wal_free(&w);
	expect_names((int64_t[]){ 1 }, 1);
	expect_file(1, 3, true);
}

Test(wal, truncate_writes_the_batch_first_and_cuts_inside_it, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	two_files(&w);
	append_range(&w, 21, 25); /* batched, not written */
	cr_assert(wal_has_batch(&w));
	truncate_ok(&w, 23);
	cr_assert(!wal_has_batch(&w));
	cr_assert_eq(w.durable_zxid, 23);
	cr_assert_eq(w.batch_last_zxid, 23, "the next append is 24");
	append_range(&w, 24, 24);
	cr_assert_eq(wal_sync(&w), 0);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 11, 24 }, 3);
	expect_file(11, 23, false);
}

/* With io_uring a batch may be in the kernel when TRUNC comes: it lands first. */
Test(wal, truncate_waits_for_the_batch_in_flight, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &zk_fileops_posix, dir, 65536, true, 0), 0);
	if (wal_enable_async(&w) < 0) {
		wal_free(&w);
		cr_skip_test("no io_uring here");
	}
	append_range(&w, 1, 10);
	cr_assert_eq(wal_flush(&w), 0);
	append_range(&w, 11, 14); /* the next batch fills meanwhile */
	truncate_ok(&w, 12);
	cr_assert(!wal_busy(&w));
	cr_assert_eq(w.durable_zxid, 12);
	append_range(&w, 13, 13);
	cr_assert_eq(wal_flush(&w), 0);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 13);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 13 }, 2);
	expect_file(1, 12, false);
}

Test(wal, truncate_cuts_a_torn_tail_but_refuses_corruption, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	two_files(&w);
	wal_free(&w);
	char path[256], err[512];
	wal_file_name(path, sizeof path, dir, "log", 11);
	cr_assert_eq(truncate(path, rec_start(11, 18) + 20), 0); /* 18 torn */
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, 17), 0);
	truncate_ok(&w, 19);
	expect_file(11, 17, false);
	/* A bad record with valid ones after it, before the cut point: stop, and stay stopped. */
	flip(path, rec_start(11, 13) + 20);
	cr_assert_eq(wal_truncate(&w, 16, err, sizeof err), -EBADMSG);
	cr_assert_not_null(strstr(err, path), "%s", err);
	cr_assert_eq(t_file_size(path), rec_start(11, 18), "nothing cut");
	uint8_t e[128];
	entry_for(e, len_of(18), 18);
	cr_assert_eq(wal_append(&w, 18, e, len_of(18)), -EBADMSG, "sticky");
	wal_free(&w);
}

static int unlink_fails(const char *path)
{
	(void)path;
	errno = EIO;
	return -1;
}

Test(wal, failed_unlink_while_truncating_is_sticky, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	ops.unlink = unlink_fails;
	char err[512] = "";
	cr_assert_eq(wal_truncate(&w, 5, err, sizeof err), -EIO);
	cr_assert_not_null(strstr(err, "log.b"), "%s", err);
	cr_assert_eq(w.failed, -EIO);
	cr_assert_eq(w.durable_zxid, 20, "nothing claimed");
	wal_free(&w);
}

/* A learner that took a SNAP at 0x30 has a log of another, shorter history: it restarts
 * right after the snapshot, and the next txn may open a new epoch. */
Test(wal, snap_installed_restarts_the_log_after_the_snapshot, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct wal w;
	two_files(&w);
	char err[512] = "";
	cr_assert_eq(wal_snap_installed(&w, 0x30, err, sizeof err), 0, "%s", err);
	cr_assert_eq(w.durable_zxid, 0x30);
	cr_assert_eq(w.batch_last_zxid, 0x30);
	int64_t z = (1LL << 32) | 1;
	uint8_t e[128];
	entry_for(e, 64, z);
	cr_assert_eq(wal_append(&w, z, e, 64), 0);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, z);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 11, z }, 3);
	/* Below the snapshot it was: 15 cuts the stale history too. */
	cr_assert_eq(wal_init(&w, &ops, dir, 65536, true, z), 0);
	cr_assert_eq(wal_snap_installed(&w, 15, err, sizeof err), 0, "%s", err);
	wal_free(&w);
	expect_names((int64_t[]){ 1, 11 }, 2);
	expect_file(11, 15, false);
}

/* A rolled file gives its preallocated tail back (a small snapCount rolls often; each file
 * would otherwise keep preAllocSize of real blocks); the open one keeps its room. */
Test(wal, a_rolled_file_ends_at_its_last_record, .init = setup, .fini = teardown, .timeout = 10)
{
	struct wal w;
	two_files(&w);
	expect_file(1, 10, false);
	expect_file(11, 20, true);
	wal_free(&w);
}
