/* The session handshake records, which carry no RequestHeader:
 *   ConnectRequest  { int protocolVersion; long lastZxidSeen; int timeOut; long sessionId;
 *                     buffer passwd; [boolean readOnly] }
 *   ConnectResponse { int protocolVersion; int timeOut; long sessionId; buffer passwd;
 *                     [boolean readOnly] }
 * readOnly is optional on the wire: a client that omits it gets a response without it. */
#ifndef ZK_NET_HANDSHAKE_H
#define ZK_NET_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/jute.h"

struct connect_req {
	int32_t protocol_version;
	int64_t last_zxid;
	int32_t timeout_ms;
	int64_t session_id;
	const uint8_t *passwd; /* points into the frame; NULL when null */
	int32_t passwd_len;
	bool has_read_only, read_only;
};

/* 0, or -EBADMSG when the frame is not a ConnectRequest. */
int connect_req_decode(const uint8_t *p, size_t len, struct connect_req *r);
/* Append a framed ConnectResponse. Returns the writer's error (0 or -ENOBUFS). */
int connect_resp_encode(struct jute_out *out, int32_t timeout_ms, int64_t session_id,
			const uint8_t passwd[16], bool with_read_only);

#endif
