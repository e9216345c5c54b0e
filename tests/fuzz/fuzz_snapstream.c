/* fuzz_snapstream: a hostile SNAP stream (what a leader writes after the QuorumPacket SNAP)
 * through snap_stream_scan and snap_stream_read. Proves: no out-of-bounds access or leak; the
 * results are 0, -EAGAIN or -EBADMSG (with a message); the scanner fed the bytes in pieces
 * agrees with one fed them at once; scan and read agree (read 0 => scan 0 at the same end,
 * read -EAGAIN => scan -EAGAIN, scan -EBADMSG => read -EBADMSG); and a stream that reads,
 * written again with snap_stream_write (and snap_stream_emit: the same bytes) and read once
 * more, gives the same tree and sessions.
 * Input byte 0: bit 0 set = the signature "BenWasHere" is appended to the rest (so the
 * fuzzer reaches the end without spelling it); bits 1..7 = the piece size for the scanner. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/jute.h"
#include "snap/snap.h"
#include "tree/tree.h"

static uint8_t *build(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t sl = data[0] & 1 ? 4 + strlen(SNAP_SIGNATURE) : 0;
	size_t n = size - 1 + sl;
	uint8_t *f = malloc(n ? n : 1); /* exactly n: ASan sees a read past the end */
	FUZZ_CHECK(f);
	memcpy(f, data + 1, size - 1);
	if (sl) {
		be32_put(f + size - 1, (uint32_t)strlen(SNAP_SIGNATURE));
		memcpy(f + size - 1 + 4, SNAP_SIGNATURE, strlen(SNAP_SIGNATURE));
	}
	*out_len = n;
	return f;
}

/* The scanner fed [0, k), [0, 2k), ... must end where the one-shot scan does. */
static int scan_in_pieces(const uint8_t *p, size_t n, size_t step, size_t *end)
{
	struct snap_scan sc = { 0 };
	int rc = -EAGAIN;
	for (size_t have = step < n ? step : n;; have = have + step < n ? have + step : n) {
		rc = snap_stream_scan(&sc, p, have, end);
		FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
		FUZZ_CHECK(sc.off <= have);
		if (rc != -EAGAIN || have == n)
			return rc;
	}
}

static int to_zbuf(void *ctx, const uint8_t *p, size_t n)
{
	return zbuf_append(ctx, p, n);
}

static void round_trip(struct tree *t, const struct snap_sessions *s1)
{
	uint64_t d1 = fuzz_node_digest(t->root);
	struct zbuf out;
	zbuf_init(&out, 64u << 20);
	FUZZ_CHECK(snap_stream_write(&out, t, s1->v, s1->n) == 0);
	struct zbuf emitted;
	zbuf_init(&emitted, 64u << 20);
	FUZZ_CHECK(snap_stream_emit(t, s1->v, s1->n, to_zbuf, &emitted) == 0);
	FUZZ_CHECK(zbuf_len(&emitted) == zbuf_len(&out));
	FUZZ_CHECK(memcmp(zbuf_head(&emitted), zbuf_head(&out), zbuf_len(&out)) == 0);
	zbuf_free(&emitted);
	struct tree t2;
	struct snap_sessions s2 = { 0 };
	size_t used = 0;
	char err[256] = "";
	FUZZ_CHECK(tree_init(&t2, NULL, NULL) == 0);
	FUZZ_CHECK(snap_stream_read(zbuf_head(&out), zbuf_len(&out), &t2, snap_sessions_add, &s2, &used, err,
				    sizeof err) == 0);
	FUZZ_CHECK(used == zbuf_len(&out));
	FUZZ_CHECK(fuzz_node_digest(t2.root) == d1);
	FUZZ_CHECK(t2.node_count == t->node_count && t2.eph_count == t->eph_count);
	FUZZ_CHECK(t2.data_bytes == t->data_bytes);
	FUZZ_CHECK(s2.n == s1->n);
	for (size_t i = 0; i < s1->n; i++)
		FUZZ_CHECK(s1->v[i].id == s2.v[i].id && s1->v[i].timeout_ms == s2.v[i].timeout_ms);
	tree_free(&t2);
	free(s2.v);
	zbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zk_log_level = ZK_LOG_ERROR;
	if (size < 1)
		return 0;
	size_t n, end_once = 0, end_pieces = 0, used = 0;
	uint8_t *p = build(data, size, &n);
	struct snap_scan sc = { 0 };
	int scan = snap_stream_scan(&sc, p, n, &end_once);
	FUZZ_CHECK(scan == 0 || scan == -EAGAIN || scan == -EBADMSG);
	int pieces = scan_in_pieces(p, n, (size_t)(data[0] >> 1) + 1, &end_pieces);
	FUZZ_CHECK(pieces == scan);
	FUZZ_CHECK(scan != 0 || (end_pieces == end_once && end_once <= n));

	struct tree t;
	struct snap_sessions s1 = { 0 };
	char err[256] = "";
	FUZZ_CHECK(tree_init(&t, NULL, NULL) == 0);
	int rc = snap_stream_read(p, n, &t, snap_sessions_add, &s1, &used, err, sizeof err);
	FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
	FUZZ_CHECK(rc == 0 || (err[0] != 0 && s1.n == 0));
	FUZZ_CHECK(rc != 0 || (scan == 0 && used == end_once));
	FUZZ_CHECK(rc != -EAGAIN || scan == -EAGAIN);
	FUZZ_CHECK(scan != -EBADMSG || rc == -EBADMSG);
	if (rc == 0)
		round_trip(&t, &s1);
	tree_free(&t);
	free(s1.v);
	free(p);
	return 0;
}
