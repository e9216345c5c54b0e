/* The peer wire records of Apache ZooKeeper 3.8's ensemble protocol, pure encode/decode
 * with bounds. They live in net/ beside the client handshake because they are framing and
 * jute layout; zab/ sees decoded structs only, so the election and ZAB machines (and a
 * simulator driving them) never touch bytes.
 *
 * Election connection (QuorumCnxManager), one per pair of servers:
 *   initial message  long protocolVersion   -65536 (V1) or -65535 (V2, multi-address);
 *                                           a value >= 0 is the pre-3.5 form: just the sid
 *                    long sid
 *                    int  len               1..2048
 *                    byte addr[len]         "host:port", V2 "host1:port1|host2:port2"
 *   then frames      int  len               1..512 KiB (PACKETMAXSIZE), then the payload
 * Notification payload (FastLeaderElection.buildMsg), 44 bytes + config:
 *   int state; long leader; long zxid; long electionEpoch; long peerEpoch;
 *   int version (0x2); int configLen; byte config[configLen]
 * Older senders: 28 bytes (no peerEpoch: it is the zxid's epoch) and 40 bytes (no version).
 * The config is QuorumMaj.toString(), which Apache parses and, if its version is newer than
 * its own, acts on (reconfig): one line per server (in sid order, as its HashMap of members
 * iterates small sids), then the version in hex,
 *   "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n...version=0"
 * (observers say "observer"; no newline after the version). test_fle_interop.py checks our
 * text against Apache's byte for byte.
 *
 * Learner stream (Learner, LearnerHandler): QuorumPacket records back to back, no frame:
 *   int type; long zxid; buffer data; vector<Id{ustring scheme; ustring id}> authinfo
 * Payloads inside `data`: LearnerInfo {long sid; int protocolVersion; long configVersion}
 * (FOLLOWERINFO/OBSERVERINFO; 8 and 12 byte prefixes from older learners are accepted),
 * LEADERINFO {int protocolVersion}, ACKEPOCH {int currentEpoch or -1}.
 *
 * Decoders never copy: pointers point into the caller's bytes. Stream decoders return
 * -EAGAIN when the bytes end before the record does (read more and call again), -EBADMSG
 * when the record can never be valid (close the connection), 0 and the bytes used. */
#ifndef ZK_NET_PEERWIRE_H
#define ZK_NET_PEERWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

#define PEER_PROTOCOL_V1 (-65536LL)
#define PEER_PROTOCOL_V2 (-65535LL)
#define PEER_INITIAL_ADDR_MAX 2048      /* QuorumCnxManager.maxBuffer */
#define PEER_FRAME_MAX (512 * 1024)     /* QuorumCnxManager.PACKETMAXSIZE */
#define PEER_NOTE_VERSION 2             /* Notification.CURRENTVERSION */
#define PEER_NOTE_LEN 44                /* the current form without its config */
#define PEER_LEARNER_PROTOCOL 0x10000   /* LearnerInfo / LEADERINFO protocolVersion */

/* QuorumPeer.ServerState ordinals, as they travel in notifications. */
enum peer_state { PEER_LOOKING = 0, PEER_FOLLOWING = 1, PEER_LEADING = 2, PEER_OBSERVING = 3 };

/* Leader.java's QuorumPacket types. */
enum quorum_packet_type {
	QP_REQUEST = 1, QP_PROPOSAL = 2, QP_ACK = 3, QP_COMMIT = 4, QP_PING = 5,
	QP_REVALIDATE = 6, QP_SYNC = 7, QP_INFORM = 8, QP_COMMITANDACTIVATE = 9,
	QP_NEWLEADER = 10, QP_FOLLOWERINFO = 11, QP_UPTODATE = 12, QP_DIFF = 13, QP_TRUNC = 14,
	QP_SNAP = 15, QP_OBSERVERINFO = 16, QP_LEADERINFO = 17, QP_ACKEPOCH = 18,
	QP_INFORMANDACTIVATE = 19
};

struct peer_initial {
	int64_t protocol_version; /* V1, V2, or the sid itself in the pre-3.5 form */
	int64_t sid;
	const uint8_t *addr;      /* NULL in the pre-3.5 form */
	int32_t addr_len;
	int naddr;                /* '|'-separated host:port entries, each checked */
};

/* Stream decode of the first bytes of an election connection. */
int peer_initial_decode(const uint8_t *p, size_t len, struct peer_initial *m, size_t *used);
/* Append an initial message (no frame). addr must be 1..2048 bytes. 0, -EINVAL, -ENOBUFS. */
int peer_initial_encode(struct jute_out *o, int64_t version, int64_t sid, const char *addr);

/* One connection per pair of servers survives: the one the higher sid opened. What to do
 * with a connection once its peer's sid is known (QuorumCnxManager.startConnection for one we
 * dialled, handleConnection for one we accepted). */
enum peer_conn_verdict {
	PEER_CONN_KEEP,
	PEER_CONN_CLOSE,          /* ours to a higher sid: it dials us; or a peer claiming our sid */
	PEER_CONN_CLOSE_AND_DIAL, /* accepted from a lower sid: close it and dial back */
};
enum peer_conn_verdict peer_conn_rule(int64_t my_sid, int64_t peer_sid, bool i_dialled);

/* One election frame: *payload points at plen bytes. */
int peer_frame_decode(const uint8_t *p, size_t len, const uint8_t **payload, int32_t *plen,
		      size_t *used);

struct peer_note {
	int32_t state;            /* enum peer_state */
	int64_t leader, zxid, election_epoch, peer_epoch;
	int32_t version;          /* 0 for the 28- and 40-byte forms */
	const uint8_t *config;    /* version > 1: the sender's QuorumVerifier text */
	int32_t config_len;
	int32_t form;             /* 28, 40 or 44: which layout was read */
};

/* Decode one notification payload (a whole frame). -EBADMSG means "ignore this message",
 * as Apache ignores short ones and unknown states; the connection stays. Bytes after the
 * record are ignored, as ByteBuffer reads leave them. */
int peer_note_decode(const uint8_t *p, size_t len, struct peer_note *n);
/* Append a framed 44-byte + config notification (version forced to 2). */
int peer_note_encode(struct jute_out *o, const struct peer_note *n);

struct zk_id {
	const uint8_t *scheme, *id;
	int32_t scheme_len, id_len;
};

struct quorum_packet {
	int32_t type;
	int64_t zxid;
	const uint8_t *data;      /* NULL when null */
	int32_t data_len;         /* -1 when null */
	int32_t nauth;            /* -1 when the vector is null */
	const uint8_t *auth;      /* the Ids, already validated; walk with quorum_packet_id */
	size_t auth_len;
};

/* Stream decode; data longer than data_max (jute.maxbuffer) is -EBADMSG, as is an authinfo
 * count above QP_AUTH_MAX. */
#define QP_AUTH_MAX 4096
int quorum_packet_decode(const uint8_t *p, size_t len, int32_t data_max, struct quorum_packet *q,
			 size_t *used);
/* The Id at *off (start at 0); false after the last one. */
bool quorum_packet_id(const struct quorum_packet *q, size_t *off, struct zk_id *id);
/* Append a QuorumPacket; data_len -1 writes null data, nauth -1 a null vector. */
int quorum_packet_encode(struct jute_out *o, int32_t type, int64_t zxid, const void *data,
			 int32_t data_len, const struct zk_id *auth, int32_t nauth);

struct learner_info {
	int64_t sid;
	int32_t protocol_version; /* 0x1 when the learner did not send one (Apache's default) */
	int64_t config_version;   /* -1 when not sent */
	int fields;               /* 1, 2 or 3 fields present */
};
int learner_info_decode(const uint8_t *data, int32_t len, struct learner_info *li);
int learner_info_encode(struct jute_out *o, const struct learner_info *li); /* 20 bytes */

/* LEADERINFO carries the leader's protocol version, ACKEPOCH the learner's current epoch:
 * both are a 4-byte int (more bytes are ignored, as ByteBuffer.getInt leaves them). */
int quorum_int_payload_decode(const uint8_t *data, int32_t len, int32_t *v);
int quorum_int_payload_encode(struct jute_out *o, int32_t v);

#endif
