/* Handshake records; see handshake.h. */
#include "net/handshake.h"

#include <errno.h>
#include <string.h>

int connect_req_decode(const uint8_t *p, size_t len, struct connect_req *r)
{
	struct jute_in in;
	memset(r, 0, sizeof *r);
	jin_init(&in, p, len);
	r->protocol_version = jin_i32(&in);
	r->last_zxid = jin_i64(&in);
	r->timeout_ms = jin_i32(&in);
	r->session_id = jin_i64(&in);
	r->passwd = jin_buf(&in, &r->passwd_len);
	if (!jin_ok(&in))
		return -EBADMSG;
	r->has_read_only = jin_left(&in) >= 1;
	if (r->has_read_only)
		r->read_only = jin_bool(&in);
	return 0;
}

int connect_resp_encode(struct jute_out *out, int32_t timeout_ms, int64_t session_id,
			const uint8_t passwd[16], bool with_read_only)
{
	size_t mark = jout_frame_begin(out);
	jout_i32(out, 0);
	jout_i32(out, timeout_ms);
	jout_i64(out, session_id);
	jout_buf(out, passwd, 16);
	if (with_read_only)
		jout_bool(out, false);
	return jout_frame_end(out, mark);
}
