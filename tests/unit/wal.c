/* Proves the log stage writes ZooKeeper txn-log records byte for byte (Adler32, length,
 * entry, 'B'), makes a batch durable only on wal_sync, and bounds its in-memory log by
 * dropping whole oldest records. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "wal/wal.h"

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

Test(wal, record_layout, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, 1 << 20, 0x100000000LL), 0);
	cr_assert_eq(wal_append(&w, 0x100000001LL, (const uint8_t *)"Wikipedia", 9), 0);
	static const uint8_t want[] = {
		0, 0, 0, 0, 0x11, 0xE6, 0x03, 0x98, /* long txnEntryCRC */
		0, 0, 0, 9,                         /* int length */
		'W', 'i', 'k', 'i', 'p', 'e', 'd', 'i', 'a',
		'B',                                /* EOR */
	};
	cr_assert_eq(zbuf_len(&w.batch), sizeof want);
	cr_assert_arr_eq(zbuf_head(&w.batch), want, sizeof want);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(zbuf_len(&w.log), sizeof want);
	cr_assert_arr_eq(zbuf_head(&w.log), want, sizeof want, "sync moves the bytes unchanged");
	wal_free(&w);
}

Test(wal, sync_moves_durable_zxid, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, 1 << 20, 0x100000000LL), 0);
	cr_assert_eq(w.durable_zxid, 0x100000000LL);
	cr_assert(!wal_has_batch(&w));
	cr_assert_eq(wal_sync(&w), 0, "an empty sync is fine");
	cr_assert_eq(w.syncs, 0);
	for (int i = 1; i <= 5; i++) {
		uint8_t entry[40];
		memset(entry, i, sizeof entry);
		cr_assert_eq(wal_append(&w, 0x100000000LL + i, entry, (size_t)(10 + i)), 0);
		cr_assert_eq(w.durable_zxid, 0x100000000LL, "nothing is durable before sync");
		cr_assert(wal_has_batch(&w));
	}
	cr_assert_eq(w.records, 5);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 0x100000005LL);
	cr_assert(!wal_has_batch(&w));
	cr_assert_eq(w.syncs, 1, "one sync for the whole batch");
	/* Five whole records, in order. */
	const uint8_t *p = zbuf_head(&w.log);
	size_t off = 0;
	for (int i = 1; i <= 5; i++) {
		uint32_t len = be32_get(p + off + 8);
		cr_assert_eq(len, (uint32_t)(10 + i));
		cr_assert_eq(be64_get(p + off), wal_adler32(1, p + off + 12, len));
		cr_assert_eq(p[off + 12], i);
		cr_assert_eq(p[off + 12 + len], 'B');
		off += 13 + len;
	}
	cr_assert_eq(off, zbuf_len(&w.log));
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.syncs, 1);
	cr_assert_eq(w.durable_zxid, 0x100000005LL);
	wal_free(&w);
}

/* Walk the log: every record whole and valid; returns the count and the tags (first entry
 * byte) in order. */
static int walk_log(const struct wal *w, int *tags, int max)
{
	const uint8_t *p = zbuf_head(&w->log);
	size_t off = 0, len = zbuf_len(&w->log);
	int n = 0;
	while (off < len) {
		cr_assert_leq(off + 12, len, "a partial record header");
		uint32_t el = be32_get(p + off + 8);
		cr_assert_leq(off + 13 + el, len, "a partial record");
		cr_assert_eq(be64_get(p + off), wal_adler32(1, p + off + 12, el));
		cr_assert_eq(p[off + 12 + el], 'B');
		cr_assert_lt(n, max);
		tags[n++] = p[off + 12];
		off += 13 + el;
	}
	return n;
}

Test(wal, log_bound_drops_whole_oldest_records, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, 100, 0), 0); /* records of 13 + 20 = 33 bytes: three fit */
	uint8_t entry[20];
	int tags[16];
	for (int i = 1; i <= 3; i++) {
		memset(entry, i, sizeof entry);
		cr_assert_eq(wal_append(&w, i, entry, sizeof entry), 0);
		cr_assert_eq(wal_sync(&w), 0);
	}
	cr_assert_eq(zbuf_len(&w.log), 99);
	cr_assert_eq(w.dropped_bytes, 0);
	memset(entry, 4, sizeof entry);
	cr_assert_eq(wal_append(&w, 4, entry, sizeof entry), 0);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 4);
	int n = walk_log(&w, tags, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(tags[0], 2, "the oldest record went");
	cr_assert_eq(tags[2], 4);
	cr_assert_eq(w.dropped_bytes, 33);
	/* A batch of two drops two. */
	for (int i = 5; i <= 6; i++) {
		memset(entry, i, sizeof entry);
		cr_assert_eq(wal_append(&w, i, entry, sizeof entry), 0);
	}
	cr_assert_eq(wal_sync(&w), 0);
	n = walk_log(&w, tags, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(tags[0], 4);
	cr_assert_eq(tags[1], 5);
	cr_assert_eq(tags[2], 6);
	/* Mixed sizes: a big record needs several small ones gone. */
	uint8_t big[40]; /* 53 bytes: two of the 33-byte records must go */
	memset(big, 7, sizeof big);
	cr_assert_eq(wal_append(&w, 7, big, sizeof big), 0);
	cr_assert_eq(wal_sync(&w), 0);
	n = walk_log(&w, tags, 16);
	cr_assert_eq(n, 2);
	cr_assert_eq(tags[0], 6);
	cr_assert_eq(tags[1], 7);
	cr_assert_leq(zbuf_len(&w.log), 100);
	wal_free(&w);
}

Test(wal, batch_larger_than_log_is_still_durable, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, 50, 0), 0);
	uint8_t entry[20] = { 1 };
	cr_assert_eq(wal_append(&w, 1, entry, sizeof entry), 0);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(wal_append(&w, 2, entry, sizeof entry), 0);
	cr_assert_eq(wal_append(&w, 3, entry, sizeof entry), 0);
	cr_assert_eq(wal_sync(&w), 0);
	cr_assert_eq(w.durable_zxid, 3);
	int tags[4];
	cr_assert_leq(zbuf_len(&w.log), 50);
	cr_assert_eq(walk_log(&w, tags, 4), (int)(zbuf_len(&w.log) / 33));
	wal_free(&w);
}

Test(wal, huge_entry_is_enobufs, .timeout = 10)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, 1 << 20, 0), 0);
	size_t n = 64u << 20;
	uint8_t *big = calloc(1, n); /* untouched pages: cheap */
	cr_assert_not_null(big);
	cr_assert_eq(wal_append(&w, 1, big, n), -ENOBUFS);
	cr_assert(!wal_has_batch(&w));
	cr_assert_eq(w.records, 0);
	cr_assert_eq(wal_append(&w, 1, big, 100), 0, "the zxid was not used up");
	free(big);
	wal_free(&w);
}

Test(wal, append_non_increasing_zxid_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct wal w;
	wal_init(&w, 1 << 20, 10);
	wal_append(&w, 10, (const uint8_t *)"x", 1);
}

Test(wal, append_empty_entry_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct wal w;
	wal_init(&w, 1 << 20, 10);
	wal_append(&w, 11, (const uint8_t *)"x", 0);
}
