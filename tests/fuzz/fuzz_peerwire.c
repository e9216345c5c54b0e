/* fuzz_peerwire: the peer wire decoders (net/peerwire.c) on hostile bytes, and the election
 * machine fed with whatever notification decodes. Byte 0 picks the decoder, the rest is its
 * input. Proves: no out-of-bounds access; results are 0, -EAGAIN (stream decoders only) or
 * -EBADMSG; deterministic; pointers stay inside the input; an accepted record encodes
 * again to exactly the bytes it was read from (notification: the 44-byte form for a version
 * 2 input; initial message and QuorumPacket: always); fle_step takes any decoded
 * notification from any sid without tripping an assertion. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/peerwire.h"
#include "zab/fle.h"

static bool inside(const uint8_t *q, int64_t n, const uint8_t *p, size_t size)
{
	return !q || (n >= 0 && q >= p && q + n <= p + size);
}

/* Encode with `fn`'s writer into a scratch buffer and compare with the input's prefix. */
static void same_bytes(struct zbuf *z, const uint8_t *p, size_t used)
{
	FUZZ_CHECK(zbuf_len(z) == used);
	FUZZ_CHECK(memcmp(zbuf_head(z), p, used) == 0);
}

static void check_initial(const uint8_t *p, size_t size, struct jute_out *o, struct zbuf *z)
{
	struct peer_initial a, b;
	size_t used = 0, used2 = 0;
	int rc = peer_initial_decode(p, size, &a, &used);
	FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
	FUZZ_CHECK(peer_initial_decode(p, size, &b, &used2) == rc);
	if (rc != 0)
		return;
	FUZZ_CHECK(used <= size && used == used2 && inside(a.addr, a.addr_len, p, size));
	if (!a.addr) {
		FUZZ_CHECK(used == 8 && a.sid >= 0);
		return;
	}
	FUZZ_CHECK(a.naddr >= 1 && a.addr_len >= 1 && a.addr_len <= PEER_INITIAL_ADDR_MAX);
	if (memchr(a.addr, 0, (size_t)a.addr_len))
		return; /* the encoder takes a C string */
	char addr[PEER_INITIAL_ADDR_MAX + 1];
	memcpy(addr, a.addr, (size_t)a.addr_len);
	addr[a.addr_len] = 0;
	FUZZ_CHECK(peer_initial_encode(o, a.protocol_version, a.sid, addr) == 0);
	same_bytes(z, p, used);
}

static void feed_fle(const struct peer_note *n, uint8_t sel)
{
	static struct fle f;
	static const struct fle_member m[4] = { { 1, true }, { 2, true }, { 3, true }, { 4, false } };
	FUZZ_CHECK(fle_init(&f, 1 + (sel & 3) % 3, m, 4) == 0);
	struct fle_actions out = { 0 };
	fle_step(&f, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = 5 }, &out);
	for (int64_t from = 1; from <= 5; from++) {
		out.n = 0;
		fle_step(&f, &(struct fle_event){ .type = FLE_EV_NOTE, .from = from, .note = *n }, &out);
		FUZZ_CHECK(out.n >= 0 && out.n <= FLE_ACTIONS_MAX);
		FUZZ_CHECK(f.state != PEER_LEADING || f.current.leader == f.my_sid);
	}
}

static void check_note(const uint8_t *p, size_t size, struct jute_out *o, struct zbuf *z)
{
	struct peer_note a, b;
	int rc = peer_note_decode(p, size, &a);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	FUZZ_CHECK(peer_note_decode(p, size, &b) == rc);
	if (rc != 0)
		return;
	FUZZ_CHECK(a.form == 28 || a.form == 40 || a.form == 44);
	FUZZ_CHECK(inside(a.config, a.config_len, p, size));
	FUZZ_CHECK(a.state >= PEER_LOOKING && a.state <= PEER_OBSERVING);
	feed_fle(&a, p[0]);
	if (a.version != PEER_NOTE_VERSION)
		return;
	FUZZ_CHECK(peer_note_encode(o, &a) == 0);
	FUZZ_CHECK(zbuf_len(z) >= 4);
	FUZZ_CHECK(zbuf_len(z) - 4 <= size);
	FUZZ_CHECK(memcmp(zbuf_head(z) + 4, p, zbuf_len(z) - 4) == 0);
}

static void check_packet(const uint8_t *p, size_t size, struct jute_out *o, struct zbuf *z)
{
	struct quorum_packet a, b;
	size_t used = 0, used2 = 0;
	int rc = quorum_packet_decode(p, size, 1 << 16, &a, &used);
	FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
	FUZZ_CHECK(quorum_packet_decode(p, size, 1 << 16, &b, &used2) == rc);
	if (rc != 0)
		return;
	FUZZ_CHECK(used <= size && used == used2 && inside(a.data, a.data_len, p, size));
	FUZZ_CHECK(inside(a.auth, (int64_t)a.auth_len, p, size));
	static struct zk_id ids[QP_AUTH_MAX];
	size_t off = 0;
	int32_t n = 0;
	while (quorum_packet_id(&a, &off, &ids[n])) {
		FUZZ_CHECK(inside(ids[n].scheme, ids[n].scheme_len, p, size));
		FUZZ_CHECK(inside(ids[n].id, ids[n].id_len, p, size));
		n++;
		FUZZ_CHECK(n <= a.nauth);
	}
	FUZZ_CHECK(n == (a.nauth < 0 ? 0 : a.nauth));
	FUZZ_CHECK(quorum_packet_encode(o, a.type, a.zxid, a.data, a.data_len, ids, a.nauth) == 0);
	same_bytes(z, p, used);
	struct learner_info li;
	int32_t v;
	if (learner_info_decode(a.data, a.data_len, &li) == 0)
		FUZZ_CHECK(li.fields >= 1 && li.fields <= 3);
	if (quorum_int_payload_decode(a.data, a.data_len, &v) == 0)
		FUZZ_CHECK(a.data_len >= 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* Copy into an exact-size allocation so ASan sees the input's end. */
	size_t n = size - 1;
	uint8_t *p = malloc(n ? n : 1);
	FUZZ_CHECK(p);
	memcpy(p, data + 1, n);
	struct zbuf z;
	zbuf_init(&z, 1 << 20);
	struct jute_out o;
	jout_init(&o, &z);
	switch (data[0] % 4) {
	case 0:
		check_initial(p, n, &o, &z);
		break;
	case 1:
		check_note(p, n, &o, &z);
		break;
	case 2:
		check_packet(p, n, &o, &z);
		break;
	default: {
		const uint8_t *pl;
		int32_t plen;
		size_t used;
		int rc = peer_frame_decode(p, n, &pl, &plen, &used);
		FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
		if (rc == 0) {
			FUZZ_CHECK(plen > 0 && plen <= PEER_FRAME_MAX && used == 4 + (size_t)plen);
			FUZZ_CHECK(inside(pl, plen, p, n));
			check_note(pl, (size_t)plen, &o, &z);
		}
		break;
	}
	}
	zbuf_free(&z);
	free(p);
	return 0;
}
