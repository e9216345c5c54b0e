/* Proves the txn log's Adler32 is ZooKeeper's (java.util.zip.Adler32) and that records
 * written by wal_append/wal_sync read back whole, in order, from log.<zxid>. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "wal/wal.h"

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
