/* Proves the peer wire codecs match Apache ZooKeeper 3.8's byte layouts (expected bytes are
 * written out by hand from the jute/ByteBuffer layouts), round-trip, accept the older
 * notification forms, tell "need more bytes" from "never valid", and never read past the
 * input (every decoder runs on exact-size copies, and on every prefix and random bytes). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/peerwire.h"
#include "tests/unit/support/support.h"

#define exact_copy t_exact_copy

struct out {
	struct zbuf z;
	struct jute_out o;
};
static void out_init(struct out *w)
{
	zbuf_init(&w->z, 1 << 20);
	jout_init(&w->o, &w->z);
}

static void expect_bytes(struct out *w, const uint8_t *want, size_t n)
{
	cr_assert_eq(w->o.err, 0);
	cr_assert_eq(zbuf_len(&w->z), n, "length %zu, want %zu", zbuf_len(&w->z), n);
	cr_assert_eq(memcmp(zbuf_head(&w->z), want, n), 0);
}

/* ---- initial message ---- */

static const uint8_t initial_v2[] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01, /* -65535 */
	0, 0, 0, 0, 0, 0, 0, 3,                         /* sid 3 */
	0, 0, 0, 14,                                    /* len */
	'1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '3', '8', '8', '8',
};

Test(peerwire, initial_message_layout_and_round_trip, .timeout = 10)
{
	struct out w;
	out_init(&w);
	cr_assert_eq(peer_initial_encode(&w.o, PEER_PROTOCOL_V2, 3, "127.0.0.1:3888"), 0);
	expect_bytes(&w, initial_v2, sizeof initial_v2);
	uint8_t *p = exact_copy(initial_v2, sizeof initial_v2);
	struct peer_initial m;
	size_t used = 0;
	cr_assert_eq(peer_initial_decode(p, sizeof initial_v2, &m, &used), 0);
	cr_assert_eq(used, sizeof initial_v2);
	cr_assert_eq(m.protocol_version, PEER_PROTOCOL_V2);
	cr_assert_eq(m.sid, 3);
	cr_assert_eq(m.naddr, 1);
	cr_assert_eq(m.addr_len, 14);
	cr_assert_eq(memcmp(m.addr, "127.0.0.1:3888", 14), 0);
	/* Every strict prefix needs more bytes. */
	for (size_t n = 0; n < sizeof initial_v2; n++) {
		uint8_t *q = exact_copy(initial_v2, n);
		cr_assert_eq(peer_initial_decode(q, n, &m, &used), -EAGAIN, "prefix %zu", n);
		free(q);
	}
	free(p);
	zbuf_free(&w.z);
}

Test(peerwire, initial_message_forms_and_refusals, .timeout = 10)
{
	struct peer_initial m;
	size_t used;
	/* Pre-3.5: the first long is the sid, nothing follows. */
	uint8_t old[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	cr_assert_eq(peer_initial_decode(old, 8, &m, &used), 0);
	cr_assert_eq(m.sid, 7);
	cr_assert_eq(used, 8);
	cr_assert_null(m.addr);

	uint8_t b[64];
	memcpy(b, initial_v2, sizeof initial_v2);
	b[7] = 0x02; /* -65534: unknown version */
	cr_assert_eq(peer_initial_decode(b, sizeof initial_v2, &m, &used), -EBADMSG);
	memcpy(b, initial_v2, sizeof initial_v2);
	b[7] = 0x00; /* V1 is fine too */
	cr_assert_eq(peer_initial_decode(b, sizeof initial_v2, &m, &used), 0);
	/* Length 0, negative, above 2048. */
	static const uint8_t lens[][4] = { { 0, 0, 0, 0 }, { 0xff, 0xff, 0xff, 0xff }, { 0, 0, 8, 1 } };
	for (size_t i = 0; i < 3; i++) {
		memcpy(b, initial_v2, sizeof initial_v2);
		memcpy(b + 16, lens[i], 4);
		cr_assert_eq(peer_initial_decode(b, 20, &m, &used), -EBADMSG, "len case %zu", i);
	}
	/* Bad addresses: no port, port too big, letters, empty host, empty entry. */
	static const char *bad[] = { "host", "h:65536", "h:80x", ":80", "h:1||h:2", "[::1]80",
				     "a:b:1", "h:" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct out w;
		out_init(&w);
		cr_assert_eq(peer_initial_encode(&w.o, PEER_PROTOCOL_V2, 1, bad[i]), 0);
		uint8_t *p = exact_copy(zbuf_head(&w.z), zbuf_len(&w.z));
		cr_assert_eq(peer_initial_decode(p, zbuf_len(&w.z), &m, &used), -EBADMSG, "%s", bad[i]);
		free(p);
		zbuf_free(&w.z);
	}
	static const char *good[] = { "[::1]:3888", "a:1|b:2|[fe80::1]:65535", "zk-1.example:0" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct out w;
		out_init(&w);
		cr_assert_eq(peer_initial_encode(&w.o, PEER_PROTOCOL_V2, 1, good[i]), 0);
		cr_assert_eq(peer_initial_decode(zbuf_head(&w.z), zbuf_len(&w.z), &m, &used), 0, "%s", good[i]);
		zbuf_free(&w.z);
	}
	struct out w;
	out_init(&w);
	cr_assert_eq(peer_initial_encode(&w.o, 5, 1, "a:1"), -EINVAL);
	cr_assert_eq(peer_initial_encode(&w.o, PEER_PROTOCOL_V1, 1, ""), -EINVAL);
	zbuf_free(&w.z);
}

Test(peerwire, the_higher_sid_keeps_its_connection, .timeout = 10)
{
	/* We are 2. A connection we dialled survives only to a lower sid... */
	cr_assert_eq(peer_conn_rule(2, 1, true), PEER_CONN_KEEP);
	cr_assert_eq(peer_conn_rule(2, 3, true), PEER_CONN_CLOSE);
	/* ...one we accepted only from a higher sid; a lower one is dialled back. */
	cr_assert_eq(peer_conn_rule(2, 3, false), PEER_CONN_KEEP);
	cr_assert_eq(peer_conn_rule(2, 1, false), PEER_CONN_CLOSE_AND_DIAL);
	cr_assert_eq(peer_conn_rule(2, 2, false), PEER_CONN_CLOSE);
	/* Both ends agree on which connection lives: it is the higher sid's dial. */
	for (int64_t a = 1; a <= 4; a++)
		for (int64_t b = 1; b <= 4; b++) {
			if (a == b)
				continue;
			bool a_dial = peer_conn_rule(a, b, true) == PEER_CONN_KEEP;
			bool b_accept = peer_conn_rule(b, a, false) == PEER_CONN_KEEP;
			cr_assert_eq(a_dial, b_accept);
			cr_assert_eq(a_dial, a > b);
		}
}

Test(peerwire, election_frames, .timeout = 10)
{
	uint8_t b[12] = { 0, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0 };
	const uint8_t *pl;
	int32_t plen;
	size_t used;
	cr_assert_eq(peer_frame_decode(b, 8, &pl, &plen, &used), 0);
	cr_assert_eq(plen, 4);
	cr_assert_eq(pl, b + 4);
	cr_assert_eq(used, 8);
	cr_assert_eq(peer_frame_decode(b, 7, &pl, &plen, &used), -EAGAIN);
	cr_assert_eq(peer_frame_decode(b, 3, &pl, &plen, &used), -EAGAIN);
	cr_assert_eq(peer_frame_decode(b + 8, 4, &pl, &plen, &used), -EBADMSG); /* length 0 */
	uint8_t big[4] = { 0, 0x08, 0, 0x01 }; /* 512 KiB + 1 */
	cr_assert_eq(peer_frame_decode(big, 4, &pl, &plen, &used), -EBADMSG);
	uint8_t max[4] = { 0, 0x08, 0, 0x00 };
	cr_assert_eq(peer_frame_decode(max, 4, &pl, &plen, &used), -EAGAIN);
}

/* ---- notifications ---- */

Test(peerwire, notification_layout, .timeout = 10)
{
	static const uint8_t cfg[] = "v=1";
	static const uint8_t want[] = {
		0, 0, 0, 47,                                     /* frame: 44 + 3 */
		0, 0, 0, 2,                                      /* LEADING */
		0, 0, 0, 0, 0, 0, 0, 5,                          /* leader */
		0, 0, 0, 1, 0, 0, 0, 0x2a,                       /* zxid 0x10000002a */
		0, 0, 0, 0, 0, 0, 0, 9,                          /* election epoch */
		0, 0, 0, 0, 0, 0, 0, 1,                          /* peer epoch */
		0, 0, 0, 2,                                      /* version */
		0, 0, 0, 3, 'v', '=', '1',                       /* config */
	};
	struct peer_note n = { .state = PEER_LEADING, .leader = 5, .zxid = 0x10000002aLL,
			       .election_epoch = 9, .peer_epoch = 1, .config = cfg, .config_len = 3 };
	struct out w;
	out_init(&w);
	cr_assert_eq(peer_note_encode(&w.o, &n), 0);
	expect_bytes(&w, want, sizeof want);
	uint8_t *p = exact_copy(want + 4, sizeof want - 4);
	struct peer_note d;
	cr_assert_eq(peer_note_decode(p, sizeof want - 4, &d), 0);
	cr_assert_eq(d.state, PEER_LEADING);
	cr_assert_eq(d.leader, 5);
	cr_assert_eq(d.zxid, 0x10000002aLL);
	cr_assert_eq(d.election_epoch, 9);
	cr_assert_eq(d.peer_epoch, 1);
	cr_assert_eq(d.version, 2);
	cr_assert_eq(d.form, 44);
	cr_assert_eq(d.config_len, 3);
	cr_assert_eq(memcmp(d.config, "v=1", 3), 0);
	free(p);
	zbuf_free(&w.z);
}

Test(peerwire, notification_old_forms, .timeout = 10)
{
	uint8_t b[48] = {
		0, 0, 0, 1,                    /* FOLLOWING */
		0, 0, 0, 0, 0, 0, 0, 2,        /* leader */
		0, 0, 0, 3, 0, 0, 0, 7,        /* zxid: epoch 3 */
		0, 0, 0, 0, 0, 0, 0, 4,        /* election epoch */
		0, 0, 0, 0, 0, 0, 0, 6,        /* peer epoch */
		0, 0, 0, 1,                    /* version 1: no config follows */
		0, 0, 0, 0,                    /* config length (read when version > 1) */
		0, 0, 0, 0,
	};
	struct peer_note d;
	uint8_t *p = exact_copy(b, 28);
	cr_assert_eq(peer_note_decode(p, 28, &d), 0);
	cr_assert_eq(d.form, 28);
	cr_assert_eq(d.peer_epoch, 3, "28-byte form: the zxid's epoch");
	cr_assert_eq(d.version, 0);
	free(p);
	p = exact_copy(b, 40);
	cr_assert_eq(peer_note_decode(p, 40, &d), 0);
	cr_assert_eq(d.form, 40);
	cr_assert_eq(d.peer_epoch, 6);
	cr_assert_eq(d.version, 0);
	free(p);
	p = exact_copy(b, 44);
	cr_assert_eq(peer_note_decode(p, 44, &d), 0);
	cr_assert_eq(d.version, 1);
	cr_assert_null(d.config);
	free(p);
	/* Lengths Apache cannot read either (ByteBuffer underflow), short ones, bad states. */
	static const size_t bad_lens[] = { 0, 27, 29, 35, 36, 39 };
	for (size_t i = 0; i < sizeof bad_lens / sizeof bad_lens[0]; i++) {
		p = exact_copy(b, bad_lens[i]);
		cr_assert_eq(peer_note_decode(p, bad_lens[i], &d), -EBADMSG, "len %zu", bad_lens[i]);
		free(p);
	}
	/* 41..43 bytes: Apache reads the version and, as it is 1, no config - accepted. */
	cr_assert_eq(peer_note_decode(b, 41, &d), 0);
	b[39] = 2; /* ...but a version 2 would need the config length: underflow */
	cr_assert_eq(peer_note_decode(b, 43, &d), -EBADMSG);
	b[39] = 1;
	b[3] = 4;
	cr_assert_eq(peer_note_decode(b, 44, &d), -EBADMSG);
	b[3] = 2;
	b[39] = 2; /* version 2: the config length follows at 40..43 */
	cr_assert_eq(peer_note_decode(b, 44, &d), 0); /* empty config */
	cr_assert_eq(d.config_len, 0);
	b[43] = 5; /* config length past the frame */
	cr_assert_eq(peer_note_decode(b, 48, &d), -EBADMSG);
	b[43] = 4;
	cr_assert_eq(peer_note_decode(b, 48, &d), 0);
	cr_assert_eq(d.config, b + 44);
	memset(b + 40, 0xff, 4); /* -1 */
	cr_assert_eq(peer_note_decode(b, 48, &d), -EBADMSG);
}

/* ---- learner stream ---- */

Test(peerwire, quorum_packet_layout, .timeout = 10)
{
	static const uint8_t data[] = { 0xaa, 0xbb };
	struct zk_id ids[2] = {
		{ .scheme = (const uint8_t *)"digest", .scheme_len = 6, .id = (const uint8_t *)"u:x", .id_len = 3 },
		{ .scheme = (const uint8_t *)"ip", .scheme_len = 2, .id = NULL, .id_len = -1 },
	};
	static const uint8_t want[] = {
		0, 0, 0, 1,                                   /* REQUEST */
		0, 0, 0, 2, 0, 0, 0, 3,                       /* zxid */
		0, 0, 0, 2, 0xaa, 0xbb,                       /* data */
		0, 0, 0, 2,                                   /* authinfo count */
		0, 0, 0, 6, 'd', 'i', 'g', 'e', 's', 't', 0, 0, 0, 3, 'u', ':', 'x',
		0, 0, 0, 2, 'i', 'p', 0xff, 0xff, 0xff, 0xff,
	};
	struct out w;
	out_init(&w);
	cr_assert_eq(quorum_packet_encode(&w.o, QP_REQUEST, 0x200000003LL, data, 2, ids, 2), 0);
	expect_bytes(&w, want, sizeof want);
	uint8_t *p = exact_copy(want, sizeof want);
	struct quorum_packet q;
	size_t used;
	cr_assert_eq(quorum_packet_decode(p, sizeof want, 1024, &q, &used), 0);
	cr_assert_eq(used, sizeof want);
	cr_assert_eq(q.type, QP_REQUEST);
	cr_assert_eq(q.zxid, 0x200000003LL);
	cr_assert_eq(q.data_len, 2);
	cr_assert_eq(q.nauth, 2);
	size_t off = 0;
	struct zk_id id;
	cr_assert(quorum_packet_id(&q, &off, &id));
	cr_assert_eq(id.scheme_len, 6);
	cr_assert_eq(memcmp(id.id, "u:x", 3), 0);
	cr_assert(quorum_packet_id(&q, &off, &id));
	cr_assert_eq(id.id_len, -1);
	cr_assert_not(quorum_packet_id(&q, &off, &id));
	for (size_t n = 0; n < sizeof want; n++) {
		uint8_t *r = exact_copy(want, n);
		cr_assert_eq(quorum_packet_decode(r, n, 1024, &q, &used), -EAGAIN, "prefix %zu", n);
		free(r);
	}
	/* data above the limit, negative lengths, huge auth counts */
	cr_assert_eq(quorum_packet_decode(p, sizeof want, 1, &q, &used), -EBADMSG);
	p[12] = 0xff;
	cr_assert_eq(quorum_packet_decode(p, sizeof want, 1024, &q, &used), -EBADMSG);
	free(p);
	zbuf_free(&w.z);

	/* A PING as a learner sends it: null data, null authinfo. */
	static const uint8_t ping[] = { 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9,
					0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	out_init(&w);
	cr_assert_eq(quorum_packet_encode(&w.o, QP_PING, 9, NULL, -1, NULL, -1), 0);
	expect_bytes(&w, ping, sizeof ping);
	cr_assert_eq(quorum_packet_decode(ping, sizeof ping, 0, &q, &used), 0);
	cr_assert_null(q.data);
	cr_assert_eq(q.nauth, -1);
	uint8_t many[20];
	memcpy(many, ping, 16);
	memcpy(many + 16, (uint8_t[]){ 0, 0, 0x10, 0x01 }, 4); /* 4097 Ids */
	cr_assert_eq(quorum_packet_decode(many, 20, 0, &q, &used), -EBADMSG);
	zbuf_free(&w.z);
}

Test(peerwire, learner_info_leader_info_ack_epoch, .timeout = 10)
{
	static const uint8_t want[] = { 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0,
					0, 0, 0, 1, 0, 0, 0, 0 };
	struct learner_info li = { .sid = 4, .protocol_version = PEER_LEARNER_PROTOCOL,
				   .config_version = 0x100000000LL };
	struct out w;
	out_init(&w);
	cr_assert_eq(learner_info_encode(&w.o, &li), 0);
	expect_bytes(&w, want, sizeof want);
	struct learner_info d;
	cr_assert_eq(learner_info_decode(want, 20, &d), 0);
	cr_assert_eq(d.sid, 4);
	cr_assert_eq(d.protocol_version, 0x10000);
	cr_assert_eq(d.config_version, 0x100000000LL);
	cr_assert_eq(d.fields, 3);
	cr_assert_eq(learner_info_decode(want, 12, &d), 0);
	cr_assert_eq(d.fields, 2);
	cr_assert_eq(d.config_version, -1);
	cr_assert_eq(learner_info_decode(want, 8, &d), 0);
	cr_assert_eq(d.fields, 1);
	cr_assert_eq(d.protocol_version, 1);
	cr_assert_eq(learner_info_decode(want, 7, &d), -EBADMSG);
	cr_assert_eq(learner_info_decode(NULL, -1, &d), -EBADMSG);
	zbuf_free(&w.z);

	/* LEADERINFO {0x10000}, ACKEPOCH {-1} inside whole QuorumPackets. */
	out_init(&w);
	uint8_t pl[4] = { 0, 1, 0, 0 };
	cr_assert_eq(quorum_packet_encode(&w.o, QP_LEADERINFO, 0x500000000LL, pl, 4, NULL, -1), 0);
	static const uint8_t li_want[] = { 0, 0, 0, 17, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 4,
					   0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff };
	expect_bytes(&w, li_want, sizeof li_want);
	zbuf_free(&w.z);
	out_init(&w);
	cr_assert_eq(quorum_int_payload_encode(&w.o, -1), 0);
	expect_bytes(&w, (const uint8_t[]){ 0xff, 0xff, 0xff, 0xff }, 4);
	int32_t v;
	cr_assert_eq(quorum_int_payload_decode(zbuf_head(&w.z), 4, &v), 0);
	cr_assert_eq(v, -1);
	cr_assert_eq(quorum_int_payload_decode(zbuf_head(&w.z), 3, &v), -EBADMSG);
	cr_assert_eq(quorum_int_payload_decode(NULL, -1, &v), -EBADMSG);
	zbuf_free(&w.z);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { return t_xorshift(&rng); }

Test(peerwire, random_bytes_never_crash, .timeout = 30)
{
	for (int round = 0; round < 20000; round++) {
		size_t n = rnd() % 80;
		uint8_t tmp[80];
		for (size_t i = 0; i < n; i++)
			tmp[i] = (uint8_t)(rnd() % 4 == 0 ? 0xff : rnd() % 3 == 0 ? 0 : rnd());
		uint8_t *p = exact_copy(tmp, n);
		struct peer_initial m;
		struct peer_note d;
		struct quorum_packet q;
		struct learner_info li;
		const uint8_t *pl;
		int32_t plen, v;
		size_t used;
		int rc = peer_initial_decode(p, n, &m, &used);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
		rc = peer_frame_decode(p, n, &pl, &plen, &used);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
		rc = peer_note_decode(p, n, &d);
		cr_assert(rc == 0 || rc == -EBADMSG);
		rc = quorum_packet_decode(p, n, 64, &q, &used);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
		if (rc == 0) {
			cr_assert_leq(used, n);
			size_t off = 0;
			struct zk_id id;
			while (quorum_packet_id(&q, &off, &id))
				;
		}
		learner_info_decode(p, (int32_t)n, &li);
		quorum_int_payload_decode(p, (int32_t)n, &v);
		free(p);
	}
}
