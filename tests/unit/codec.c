/* Proves the jute codec and zbuf are exact and bounded: values round-trip in big-endian
 * layout, every short or malformed input is a sticky error that never reads past the frame,
 * writes past a buffer's bound fail whole, and random bytes never crash the decoders. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "net/zbuf.h"
#include "tree/tree.h"
#include "tree/txn.h"

/* ---- helpers ---- */

/* A copy of `len` bytes in a block of exactly that size, so ASan catches any over-read. */
static uint8_t *exact_copy(const void *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	cr_assert_not_null(c);
	if (len)
		memcpy(c, p, len);
	return c;
}

static uint64_t rng_state;
static uint64_t rng_next(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

/* ---- round trips ---- */

Test(jute, int_bool_round_trip, .timeout = 10)
{
	static const int32_t i32s[] = { 0, 1, -1, 0x7f, 0x80, 0x12345678, INT32_MAX, INT32_MIN };
	static const int64_t i64s[] = { 0, 1, -1, 0x0123456789abcdefLL, INT64_MAX, INT64_MIN };
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 16);
	jout_init(&o, &b);
	for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++)
		jout_i32(&o, i32s[i]);
	for (size_t i = 0; i < sizeof i64s / sizeof i64s[0]; i++)
		jout_i64(&o, i64s[i]);
	jout_bool(&o, true);
	jout_bool(&o, false);
	cr_assert_eq(o.err, 0);
	cr_assert_eq(zbuf_len(&b), 8 * 4 + 6 * 8 + 2);

	struct jute_in in;
	jin_init(&in, zbuf_head(&b), zbuf_len(&b));
	for (size_t i = 0; i < sizeof i32s / sizeof i32s[0]; i++)
		cr_assert_eq(jin_i32(&in), i32s[i], "i32 #%zu", i);
	for (size_t i = 0; i < sizeof i64s / sizeof i64s[0]; i++)
		cr_assert_eq(jin_i64(&in), i64s[i], "i64 #%zu", i);
	cr_assert_eq(jin_bool(&in), true);
	cr_assert_eq(jin_bool(&in), false);
	cr_assert(jin_done(&in));
	zbuf_free(&b);
}

Test(jute, bool_reads_any_nonzero_as_true, .timeout = 10)
{
	static const uint8_t bytes[] = { 0, 1, 2, 0xff };
	struct jute_in in;
	jin_init(&in, bytes, sizeof bytes);
	cr_assert_eq(jin_bool(&in), false);
	cr_assert_eq(jin_bool(&in), true);
	cr_assert_eq(jin_bool(&in), true);
	cr_assert_eq(jin_bool(&in), true);
	cr_assert(jin_done(&in));
}

Test(jute, buffer_string_null_round_trip, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 16);
	jout_init(&o, &b);
	jout_buf(&o, "hello", 5);
	jout_buf(&o, NULL, -1);
	jout_buf(&o, "", 0);
	jout_str(&o, "zk");
	jout_str(&o, NULL);
	jout_str(&o, "");
	cr_assert_eq(o.err, 0);

	struct jute_in in;
	int32_t len;
	const uint8_t *p;
	jin_init(&in, zbuf_head(&b), zbuf_len(&b));
	p = jin_buf(&in, &len);
	cr_assert_eq(len, 5);
	cr_assert_eq(p, zbuf_head(&b) + 4, "the reader must point into the frame, not copy");
	cr_assert_arr_eq(p, "hello", 5);
	p = jin_buf(&in, &len);
	cr_assert_null(p);
	cr_assert_eq(len, -1);
	p = jin_buf(&in, &len);
	cr_assert_not_null(p, "an empty buffer is not null");
	cr_assert_eq(len, 0);
	p = jin_buf(&in, &len);
	cr_assert_eq(len, 2);
	cr_assert_arr_eq(p, "zk", 2);
	p = jin_buf(&in, &len);
	cr_assert_null(p);
	cr_assert_eq(len, -1);
	p = jin_buf(&in, &len);
	cr_assert_not_null(p);
	cr_assert_eq(len, 0);
	cr_assert(jin_done(&in));
	zbuf_free(&b);
}

Test(jute, vector_count_round_trip_and_bounds, .timeout = 10)
{
	uint8_t raw[4];
	struct jute_in in;

	static const int32_t ok[][2] = { { 0, 0 }, { 3, 3 }, { 3, 100 }, { -1, 0 }, { -1, 5 } };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		be32_put(raw, (uint32_t)ok[i][0]);
		jin_init(&in, raw, 4);
		cr_assert_eq(jin_vec(&in, ok[i][1]), ok[i][0], "count %d max %d", ok[i][0], ok[i][1]);
		cr_assert(jin_done(&in));
	}
	static const int32_t bad[][2] = { { 4, 3 }, { 1, 0 }, { -2, 10 }, { INT32_MIN, 10 },
					  { INT32_MAX, INT32_MAX - 1 } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		be32_put(raw, (uint32_t)bad[i][0]);
		jin_init(&in, raw, 4);
		cr_assert_eq(jin_vec(&in, bad[i][1]), -1, "count %d max %d", bad[i][0], bad[i][1]);
		cr_assert_eq(in.err, -EBADMSG, "count %d max %d must be an error", bad[i][0], bad[i][1]);
	}
	/* Short header. */
	jin_init(&in, raw, 3);
	cr_assert_eq(jin_vec(&in, 10), -1);
	cr_assert_eq(in.err, -EBADMSG);
}

/* ---- byte layout ---- */

Test(jute, big_endian_layout, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 10);
	jout_init(&o, &b);
	jout_i32(&o, 0x01020304);
	jout_i32(&o, -2);
	jout_i64(&o, 0x0102030405060708LL);
	jout_i64(&o, -1);
	jout_bool(&o, true);
	jout_bool(&o, false);
	jout_buf(&o, "ab", 2);
	jout_buf(&o, NULL, -1);
	jout_str(&o, "xyz");
	jout_str(&o, NULL);
	jout_str(&o, "");
	static const uint8_t want[] = {
		0x01, 0x02, 0x03, 0x04,
		0xff, 0xff, 0xff, 0xfe,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x01,
		0x00,
		0x00, 0x00, 0x00, 0x02, 'a', 'b',
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x00, 0x03, 'x', 'y', 'z',
		0xff, 0xff, 0xff, 0xff,
		0x00, 0x00, 0x00, 0x00,
	};
	cr_assert_eq(o.err, 0);
	cr_assert_eq(zbuf_len(&b), sizeof want);
	cr_assert_arr_eq(zbuf_head(&b), want, sizeof want);
	zbuf_free(&b);
}

Test(jute, frame_length_is_patched, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 10);
	jout_init(&o, &b);
	jout_raw(&o, "pre", 3);
	size_t mark = jout_frame_begin(&o);
	cr_assert_eq(mark, 3);
	jout_i32(&o, 7);
	jout_bool(&o, true);
	cr_assert_eq(jout_frame_end(&o, mark), 0);
	static const uint8_t want[] = { 'p', 'r', 'e', 0, 0, 0, 5, 0, 0, 0, 7, 1 };
	cr_assert_eq(zbuf_len(&b), sizeof want);
	cr_assert_arr_eq(zbuf_head(&b), want, sizeof want);
	zbuf_free(&b);
}

/* ---- truncated and malformed input ---- */

/* A record with every kind of field: i32, i64, bool, buffer, string, null, vector of i32. */
struct rec {
	int32_t a;
	int64_t b;
	bool c;
	const uint8_t *d;
	int32_t d_len;
	const uint8_t *e;
	int32_t e_len;
	const uint8_t *f;
	int32_t f_len;
	int32_t n;
	int32_t v[3];
};

static const size_t rec_ends[] = { 4, 12, 13, 13 + 4 + 6, 23 + 4 + 3, 30 + 4, 34 + 4, 38 + 4,
				   42 + 4, 46 + 4 };

static void rec_write(struct jute_out *o)
{
	jout_i32(o, -123456);
	jout_i64(o, 0x1122334455667788LL);
	jout_bool(o, true);
	jout_buf(o, "buffer", 6);
	jout_str(o, "str");
	jout_buf(o, NULL, -1);
	jout_i32(o, 3);
	jout_i32(o, 10);
	jout_i32(o, 20);
	jout_i32(o, 30);
}

static void rec_read(struct jute_in *in, struct rec *r)
{
	memset(r, 0, sizeof *r);
	r->a = jin_i32(in);
	r->b = jin_i64(in);
	r->c = jin_bool(in);
	r->d = jin_buf(in, &r->d_len);
	r->e = jin_buf(in, &r->e_len);
	r->f = jin_buf(in, &r->f_len);
	r->n = jin_vec(in, 3);
	for (int i = 0; i < 3; i++)
		r->v[i] = jin_i32(in);
}

Test(jute, truncation_at_every_cut_is_sticky_and_zero, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 10);
	jout_init(&o, &b);
	rec_write(&o);
	size_t full = zbuf_len(&b);
	cr_assert_eq(full, rec_ends[9]);

	struct jute_in in;
	struct rec r;
	jin_init(&in, zbuf_head(&b), full);
	rec_read(&in, &r);
	cr_assert(jin_done(&in));

	for (size_t cut = 0; cut < full; cut++) {
		uint8_t *p = exact_copy(zbuf_head(&b), cut);
		jin_init(&in, p, cut);
		rec_read(&in, &r);
		cr_assert_eq(in.err, -EBADMSG, "cut %zu", cut);
		cr_assert_leq(in.off, cut, "cut %zu: read past the end", cut);
		/* Fields wholly before the cut decode; every field after the first bad one is zero. */
		cr_assert_eq(r.a, cut >= rec_ends[0] ? -123456 : 0, "cut %zu", cut);
		cr_assert_eq(r.b, cut >= rec_ends[1] ? 0x1122334455667788LL : 0, "cut %zu", cut);
		cr_assert_eq(r.c, cut >= rec_ends[2], "cut %zu", cut);
		if (cut >= rec_ends[3]) {
			cr_assert_eq(r.d_len, 6);
			cr_assert_eq(r.d, p + 17);
		} else {
			cr_assert_null(r.d, "cut %zu", cut);
			cr_assert_eq(r.d_len, -1, "cut %zu", cut);
		}
		if (cut >= rec_ends[4]) {
			cr_assert_eq(r.e_len, 3);
			cr_assert_arr_eq(r.e, "str", 3);
		} else {
			cr_assert_null(r.e, "cut %zu", cut);
			cr_assert_eq(r.e_len, -1, "cut %zu", cut);
		}
		cr_assert_null(r.f);
		cr_assert_eq(r.f_len, -1);
		cr_assert_eq(r.n, cut >= rec_ends[6] ? 3 : -1, "cut %zu", cut);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(r.v[i], cut >= rec_ends[7 + i] ? 10 * (i + 1) : 0, "cut %zu v%d", cut, i);
		/* Sticky: even a read that would fit now returns zero. */
		in.off = 0;
		cr_assert_eq(jin_i32(&in), 0, "cut %zu: error must be sticky", cut);
		cr_assert_eq(jin_i64(&in), 0);
		cr_assert_eq(jin_bool(&in), false);
		cr_assert(!jin_done(&in));
		free(p);
	}
	zbuf_free(&b);
}

Test(jute, negative_buffer_lengths_other_than_minus_one_are_errors, .timeout = 10)
{
	static const int32_t lens[] = { -2, -3, -100, INT32_MIN };
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		uint8_t raw[12] = { 0 };
		be32_put(raw, (uint32_t)lens[i]);
		be32_put(raw + 4, 42);
		struct jute_in in;
		int32_t len = 99;
		jin_init(&in, raw, sizeof raw);
		cr_assert_null(jin_buf(&in, &len));
		cr_assert_eq(len, -1);
		cr_assert_eq(in.err, -EBADMSG, "length %d", lens[i]);
		cr_assert_eq(jin_i32(&in), 0, "sticky after length %d", lens[i]);
	}
}

Test(jute, buffer_length_past_end_is_error, .timeout = 10)
{
	static const uint8_t raw_const[] = { 0, 0, 0, 5, 'a', 'b', 'c', 'd' };
	uint8_t *raw = exact_copy(raw_const, sizeof raw_const);
	struct jute_in in;
	int32_t len = 99;
	jin_init(&in, raw, sizeof raw_const);
	cr_assert_null(jin_buf(&in, &len));
	cr_assert_eq(len, -1);
	cr_assert_eq(in.err, -EBADMSG);
	cr_assert_leq(in.off, sizeof raw_const);

	/* INT32_MAX must not overflow any bound computation. */
	be32_put(raw, INT32_MAX);
	jin_init(&in, raw, sizeof raw_const);
	cr_assert_null(jin_buf(&in, &len));
	cr_assert_eq(in.err, -EBADMSG);

	/* Exactly at the end is fine. */
	be32_put(raw, 4);
	jin_init(&in, raw, sizeof raw_const);
	const uint8_t *p = jin_buf(&in, &len);
	cr_assert_eq(len, 4);
	cr_assert_arr_eq(p, "abcd", 4);
	cr_assert(jin_done(&in));
	free(raw);
}

/* ---- writer bounds ---- */

Test(jute, writer_past_max_fails_and_frame_rolls_back, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 20);
	jout_init(&o, &b);
	jout_raw(&o, "abc", 3);
	cr_assert_eq(o.err, 0);
	size_t mark = jout_frame_begin(&o);
	jout_i64(&o, 1);
	jout_i64(&o, 2); /* 3 + 4 + 8 + 8 = 23 > 20 */
	cr_assert_eq(o.err, -ENOBUFS);
	jout_i32(&o, 3); /* would fit on its own, but the error is sticky */
	cr_assert_eq(o.err, -ENOBUFS);
	cr_assert_eq(jout_frame_end(&o, mark), -ENOBUFS);
	cr_assert_eq(zbuf_len(&b), 3, "the failed frame must be rolled back whole");
	cr_assert_arr_eq(zbuf_head(&b), "abc", 3);
	zbuf_free(&b);
}

Test(jute, writer_fails_when_bytes_of_one_value_do_not_fit, .timeout = 10)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 6);
	jout_init(&o, &b);
	jout_buf(&o, "abc", 3); /* 4 + 3 = 7 > 6: the length may land but the frame is bad */
	cr_assert_eq(o.err, -ENOBUFS);
	zbuf_free(&b);

	zbuf_init(&b, 8);
	jout_init(&o, &b);
	jout_i64(&o, 5);
	cr_assert_eq(o.err, 0);
	cr_assert_eq(zbuf_len(&b), 8);
	jout_bool(&o, true);
	cr_assert_eq(o.err, -ENOBUFS);
	cr_assert_eq(zbuf_len(&b), 8, "a failed append leaves the buffer unchanged");
	zbuf_free(&b);
}

Test(jute, negative_buffer_length_write_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 64);
	jout_init(&o, &b);
	jout_buf(&o, "x", -2);
}

/* ---- zbuf ---- */

Test(zbuf, grow_keeps_contents_and_stays_within_max, .timeout = 10)
{
	struct zbuf b;
	zbuf_init(&b, 10000);
	uint8_t chunk[97];
	for (size_t i = 0; i < 100; i++) {
		for (size_t j = 0; j < sizeof chunk; j++)
			chunk[j] = (uint8_t)(i * 31 + j);
		cr_assert_eq(zbuf_append(&b, chunk, sizeof chunk), 0, "chunk %zu", i);
		cr_assert_leq(b.cap, b.max);
		cr_assert_geq(b.cap, zbuf_len(&b));
	}
	cr_assert_eq(zbuf_len(&b), 9700);
	for (size_t i = 0; i < 100; i++)
		for (size_t j = 0; j < sizeof chunk; j++)
			cr_assert_eq(zbuf_head(&b)[i * 97 + j], (uint8_t)(i * 31 + j));
	/* 300 more bytes would pass max: refused, unchanged. */
	uint8_t big[301] = { 0 };
	size_t cap = b.cap;
	cr_assert_eq(zbuf_append(&b, big, 301), -ENOBUFS);
	cr_assert_eq(zbuf_len(&b), 9700);
	cr_assert_eq(b.cap, cap);
	/* Exactly to max is fine. */
	cr_assert_eq(zbuf_append(&b, big, 300), 0);
	cr_assert_eq(zbuf_len(&b), 10000);
	cr_assert_eq(zbuf_append(&b, big, 1), -ENOBUFS);
	cr_assert_null(zbuf_reserve(&b, 1));
	zbuf_free(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.cap, 0);
}

Test(zbuf, reserve_over_max_is_null_without_allocating, .timeout = 10)
{
	struct zbuf b;
	zbuf_init(&b, 100);
	cr_assert_null(zbuf_reserve(&b, 101));
	cr_assert_null(zbuf_reserve(&b, SIZE_MAX));
	cr_assert_null(b.data);
	cr_assert_not_null(zbuf_reserve(&b, 100));
	cr_assert_leq(b.cap, 100);
	zbuf_free(&b);
}

Test(zbuf, append_of_zero_bytes_succeeds, .timeout = 10)
{
	/* Regression (fixed): net/zbuf.c zbuf_reserve returns b->data + b->tail, which is NULL for a buffer
	 * that has never allocated; zbuf_append then reports -ENOBUFS for a 0-byte append
	 * (and jout_raw(out, p, 0) sets a sticky -ENOBUFS) although nothing passes max. */
	struct zbuf b;
	zbuf_init(&b, 100);
	cr_assert_eq(zbuf_append(&b, "", 0), 0, "appending nothing to a fresh buffer must not fail");
	struct jute_out o;
	jout_init(&o, &b);
	jout_raw(&o, "", 0);
	cr_assert_eq(o.err, 0);
	zbuf_free(&b);
}

Test(zbuf, consume_then_compact_before_growing, .timeout = 10)
{
	struct zbuf b;
	zbuf_init(&b, 256);
	uint8_t src[256];
	for (int i = 0; i < 256; i++)
		src[i] = (uint8_t)i;
	cr_assert_eq(zbuf_append(&b, src, 200), 0);
	cr_assert_eq(b.cap, 256);
	zbuf_consume(&b, 150);
	cr_assert_eq(zbuf_len(&b), 50);
	cr_assert_eq(zbuf_head(&b)[0], 150);
	/* 100 more does not fit after the tail (56 left) but fits after compaction. */
	cr_assert_eq(zbuf_append(&b, src, 100), 0);
	cr_assert_eq(b.head, 0, "compacted to the front");
	cr_assert_eq(b.cap, 256, "compaction, not growth");
	cr_assert_eq(zbuf_len(&b), 150);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(zbuf_head(&b)[i], (uint8_t)(150 + i));
	for (int i = 0; i < 100; i++)
		cr_assert_eq(zbuf_head(&b)[50 + i], (uint8_t)i);
	/* Consuming everything resets the offsets. */
	zbuf_consume(&b, 150);
	cr_assert_eq(zbuf_len(&b), 0);
	cr_assert_eq(b.head, 0);
	cr_assert_eq(b.tail, 0);
	zbuf_free(&b);
}

Test(zbuf, truncate_and_reset, .timeout = 10)
{
	struct zbuf b;
	zbuf_init(&b, 64);
	cr_assert_eq(zbuf_append(&b, "0123456789", 10), 0);
	zbuf_consume(&b, 2);
	zbuf_truncate(&b, 5);
	cr_assert_eq(zbuf_len(&b), 5);
	cr_assert_arr_eq(zbuf_head(&b), "23456", 5);
	cr_assert_eq(zbuf_append(&b, "x", 1), 0);
	cr_assert_arr_eq(zbuf_head(&b), "23456x", 6);
	zbuf_truncate(&b, 6); /* same length: no change */
	cr_assert_eq(zbuf_len(&b), 6);
	zbuf_reset(&b);
	cr_assert_eq(zbuf_len(&b), 0);
	cr_assert_not_null(b.data, "reset keeps the memory");
	zbuf_free(&b);
}

Test(zbuf, truncate_past_length_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct zbuf b;
	zbuf_init(&b, 64);
	zbuf_append(&b, "abc", 3);
	zbuf_truncate(&b, 4);
}

Test(zbuf, consume_past_length_asserts, .timeout = 10, .signal = SIGABRT)
{
	struct zbuf b;
	zbuf_init(&b, 64);
	zbuf_append(&b, "abc", 3);
	zbuf_consume(&b, 4);
}

Test(zbuf, shrink_only_drained_large_buffers, .timeout = 10)
{
	struct zbuf b;
	zbuf_init(&b, 1 << 20);
	uint8_t *big = calloc(1, 100000);
	cr_assert_eq(zbuf_append(&b, big, 100000), 0);
	size_t cap = b.cap;
	zbuf_shrink(&b, 4096); /* not drained */
	cr_assert_eq(b.cap, cap);
	cr_assert_eq(zbuf_len(&b), 100000);
	zbuf_consume(&b, 100000);
	zbuf_shrink(&b, cap); /* cap <= keep */
	cr_assert_eq(b.cap, cap);
	zbuf_shrink(&b, 4096);
	cr_assert_eq(b.cap, 0);
	cr_assert_null(b.data);
	/* Usable again afterwards. */
	cr_assert_eq(zbuf_append(&b, "ok", 2), 0);
	cr_assert_arr_eq(zbuf_head(&b), "ok", 2);
	free(big);
	zbuf_free(&b);
}

/* ---- txn_decode ---- */

static void hdr(struct jute_out *o, int32_t type)
{
	struct txn_hdr h = { 0x1234, 7, 0x100000005LL, 1700000000000LL, type };
	txn_hdr_encode(o, &h);
}

/* One valid txn of each type, as it would come from prep. */
static size_t valid_txn(int which, struct zbuf *b)
{
	struct jute_out o;
	zbuf_reset(b);
	jout_init(&o, b);
	switch (which) {
	case 0:
		hdr(&o, ZOP_CREATE);
		jout_str(&o, "/a/b");
		jout_buf(&o, "data", 4);
		jout_raw(&o, tree_acl_open, tree_acl_open_len);
		jout_bool(&o, true);
		jout_i32(&o, 3);
		break;
	case 1:
		hdr(&o, ZOP_DELETE);
		jout_str(&o, "/a");
		break;
	case 2:
		hdr(&o, ZOP_SETDATA);
		jout_str(&o, "/a");
		jout_buf(&o, NULL, -1);
		jout_i32(&o, 9);
		break;
	case 3:
		hdr(&o, ZOP_CREATESESSION);
		jout_i32(&o, 30000);
		break;
	case 4:
		hdr(&o, ZOP_CLOSESESSION);
		jout_i32(&o, 2);
		jout_str(&o, "/e1");
		jout_str(&o, "/x/e2");
		break;
	case 5:
		hdr(&o, ZOP_ERROR);
		jout_i32(&o, ZNODEEXISTS);
		break;
	default:
		hdr(&o, ZOP_CREATE2);
		jout_str(&o, "/c");
		jout_buf(&o, "", 0);
		jout_raw(&o, tree_acl_open, tree_acl_open_len);
		jout_bool(&o, false);
		jout_i32(&o, 1);
		break;
	}
	cr_assert_eq(o.err, 0);
	return zbuf_len(b);
}

Test(txn, decode_each_type, .timeout = 10)
{
	struct zbuf b;
	struct txn x;
	zbuf_init(&b, 4096);

	valid_txn(0, &b);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.hdr.client_id, 0x1234);
	cr_assert_eq(x.hdr.cxid, 7);
	cr_assert_eq(x.hdr.zxid, 0x100000005LL);
	cr_assert_eq(x.hdr.time_ms, 1700000000000LL);
	cr_assert_eq(x.hdr.type, ZOP_CREATE);
	cr_assert_eq(x.path_len, 4);
	cr_assert_arr_eq(x.path, "/a/b", 4);
	cr_assert_eq(x.data_len, 4);
	cr_assert_arr_eq(x.data, "data", 4);
	cr_assert_eq(x.acl_len, tree_acl_open_len);
	cr_assert_arr_eq(x.acl, tree_acl_open, tree_acl_open_len);
	cr_assert_eq(x.ephemeral, true);
	cr_assert_eq(x.parent_cversion, 3);

	valid_txn(2, &b);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.hdr.type, ZOP_SETDATA);
	cr_assert_null(x.data);
	cr_assert_eq(x.data_len, -1);
	cr_assert_eq(x.version, 9);

	valid_txn(3, &b);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.timeout_ms, 30000);

	valid_txn(4, &b);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.npaths, 2);
	struct jute_in it;
	const char *p;
	int32_t len;
	jin_init(&it, x.paths, x.paths_len);
	cr_assert(txn_next_path(&it, &p, &len));
	cr_assert_eq(len, 3);
	cr_assert_arr_eq(p, "/e1", 3);
	cr_assert(txn_next_path(&it, &p, &len));
	cr_assert_eq(len, 5);
	cr_assert_arr_eq(p, "/x/e2", 5);
	cr_assert(!txn_next_path(&it, &p, &len));

	valid_txn(5, &b);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.hdr.type, ZOP_ERROR);
	cr_assert_eq(x.err, ZNODEEXISTS);
	zbuf_free(&b);
}

Test(txn, decode_digest_trailer_unknown_type_and_garbage, .timeout = 10)
{
	struct zbuf b;
	struct txn x;
	struct jute_out o;
	zbuf_init(&b, 4096);

	/* A TxnDigest{int; long} after the body is accepted (3.6+ logs). */
	valid_txn(1, &b);
	jout_init(&o, &b);
	jout_i32(&o, 2);
	jout_i64(&o, 0xdeadbeef);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_arr_eq(x.path, "/a", 2);
	/* Any other trailing bytes are not. */
	jout_raw(&o, "z", 1);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), -EBADMSG);
	valid_txn(1, &b);
	jout_raw(&o, "z", 1);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), -EBADMSG);

	/* An empty closeSession body (old logs) is accepted. */
	zbuf_reset(&b);
	hdr(&o, ZOP_CLOSESESSION);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), 0);
	cr_assert_eq(x.npaths, 0);
	cr_assert_eq(x.paths_len, 0);

	/* A null path in a delete is malformed. */
	zbuf_reset(&b);
	hdr(&o, ZOP_DELETE);
	jout_str(&o, NULL);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), -EBADMSG);

	zbuf_reset(&b);
	hdr(&o, 77);
	cr_assert_eq(txn_decode(zbuf_head(&b), zbuf_len(&b), &x), -EPROTONOSUPPORT);
	zbuf_free(&b);
}

Test(txn, every_truncation_of_every_type_is_rejected, .timeout = 10)
{
	struct zbuf b;
	struct txn x;
	zbuf_init(&b, 4096);
	for (int which = 0; which < 7; which++) {
		size_t full = valid_txn(which, &b);
		cr_assert_eq(txn_decode(zbuf_head(&b), full, &x), 0, "txn %d", which);
		for (size_t cut = 0; cut < full; cut++) {
			/* closeSession with an empty body is legal: cut right after the header. */
			if (which == 4 && cut == 32)
				continue;
			uint8_t *p = exact_copy(zbuf_head(&b), cut);
			int rc = txn_decode(p, cut, &x);
			cr_assert_neq(rc, 0, "txn %d cut at %zu decoded", which, cut);
			free(p);
		}
	}
	zbuf_free(&b);
}

/* ---- hostile input ---- */

static void check_span(const uint8_t *base, size_t len, const void *p, size_t n)
{
	if (!p)
		return;
	const uint8_t *q = p;
	cr_assert(q >= base && q + n <= base + len, "span outside the frame");
}

static void check_txn(const uint8_t *p, size_t len, const struct txn *x)
{
	if (x->path)
		check_span(p, len, x->path, (size_t)x->path_len);
	if (x->data)
		check_span(p, len, x->data, (size_t)x->data_len);
	if (x->acl)
		check_span(p, len, x->acl, x->acl_len);
	if (x->paths_len) {
		check_span(p, len, x->paths, x->paths_len);
		struct jute_in it;
		const char *path;
		int32_t plen;
		jin_init(&it, x->paths, x->paths_len);
		while (txn_next_path(&it, &path, &plen))
			check_span(p, len, path, (size_t)plen);
	}
}

Test(hostile, random_bytes_into_txn_decode, .timeout = 10)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	static const int32_t types[] = { ZOP_CREATE, ZOP_CREATE2, ZOP_DELETE, ZOP_SETDATA,
					 ZOP_CREATESESSION, ZOP_CLOSESESSION, ZOP_ERROR };
	int decoded = 0;
	for (int iter = 0; iter < 30000; iter++) {
		size_t len = (size_t)(rng_next() % 96);
		uint8_t *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)rng_next();
		/* Most of the time make the header's type valid so the bodies get exercised. */
		if (len >= 32 && rng_next() % 4)
			be32_put(p + 28, (uint32_t)types[rng_next() % 7]);
		/* Small lengths in place of random ones reach deeper. */
		for (size_t off = 32; off + 4 <= len; off += 4 + rng_next() % 8)
			if (rng_next() % 2)
				be32_put(p + off, (uint32_t)((int32_t)(rng_next() % 12) - 2));
		struct txn x;
		if (txn_decode(p, len, &x) == 0) {
			decoded++;
			check_txn(p, len, &x);
		}
		free(p);
	}
	cr_assert_gt(decoded, 0, "the generator must reach valid txns too");
}

Test(hostile, mutated_valid_txns_into_txn_decode, .timeout = 10)
{
	rng_state = 12345;
	struct zbuf b;
	zbuf_init(&b, 4096);
	for (int iter = 0; iter < 30000; iter++) {
		size_t full = valid_txn((int)(rng_next() % 7), &b);
		size_t len = full;
		switch (rng_next() % 3) {
		case 0: len = (size_t)(rng_next() % (full + 1)); break;
		case 1: len = full + rng_next() % 16; break;
		default: break;
		}
		uint8_t *p = calloc(1, len ? len : 1);
		memcpy(p, zbuf_head(&b), len < full ? len : full);
		int flips = 1 + (int)(rng_next() % 4);
		for (int f = 0; f < flips && len; f++)
			p[rng_next() % len] ^= (uint8_t)(1u << (rng_next() % 8));
		struct txn x;
		if (txn_decode(p, len, &x) == 0)
			check_txn(p, len, &x);
		free(p);
	}
	zbuf_free(&b);
}

Test(hostile, random_jin_sequences, .timeout = 10)
{
	rng_state = 0xfeedface;
	for (int iter = 0; iter < 30000; iter++) {
		size_t len = (size_t)(rng_next() % 48);
		uint8_t *p = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)(rng_next() % 3 ? rng_next() % 6 : rng_next());
		struct jute_in in;
		jin_init(&in, p, len);
		bool failed = false;
		for (int op = 0; op < 12; op++) {
			int32_t l;
			const uint8_t *q;
			int64_t v = 0;
			switch (rng_next() % 5) {
			case 0: v = jin_i32(&in); break;
			case 1: v = jin_i64(&in); break;
			case 2: v = jin_bool(&in); break;
			case 3:
				q = jin_buf(&in, &l);
				if (q) {
					check_span(p, len, q, (size_t)l);
					v = 0;
				} else {
					cr_assert_eq(l, -1);
				}
				break;
			default: v = jin_vec(&in, 16); if (!jin_ok(&in)) cr_assert_eq(v, -1); v = 0; break;
			}
			cr_assert_leq(in.off, len);
			if (failed)
				cr_assert_eq(v, 0, "a read after an error returned data");
			failed = !jin_ok(&in);
		}
		free(p);
	}
}
