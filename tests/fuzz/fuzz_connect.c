/* fuzz_connect: connect_req_decode on hostile bytes. Proves: no out-of-bounds access, and
 * an accepted request, encoded again field by field with jute, decodes to the same fields
 * and to the same bytes as the prefix of the input it came from (nothing is skipped). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/handshake.h"
#include "net/jute.h"
#include "net/zbuf.h"

static void encode(struct jute_out *o, const struct connect_req *r)
{
	jout_i32(o, r->protocol_version);
	jout_i64(o, r->last_zxid);
	jout_i32(o, r->timeout_ms);
	jout_i64(o, r->session_id);
	jout_buf(o, r->passwd, r->passwd ? r->passwd_len : -1);
	if (r->has_read_only)
		jout_bool(o, r->read_only);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Copy into an exact-size allocation so ASan sees the frame's end. */
	uint8_t *p = malloc(size ? size : 1);
	FUZZ_CHECK(p);
	memcpy(p, data, size);
	struct connect_req a, b;
	int rc = connect_req_decode(p, size, &a);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	FUZZ_CHECK(connect_req_decode(p, size, &b) == rc); /* deterministic */
	if (rc == 0) {
		FUZZ_CHECK(a.passwd_len >= -1);
		FUZZ_CHECK(a.passwd ? a.passwd_len >= 0 : a.passwd_len == -1 || a.passwd_len == 0);
		if (a.passwd)
			FUZZ_CHECK(a.passwd >= p && a.passwd + a.passwd_len <= p + size);
		FUZZ_CHECK(!a.read_only || a.has_read_only);
		struct zbuf z;
		zbuf_init(&z, size + 64);
		struct jute_out o;
		jout_init(&o, &z);
		encode(&o, &a);
		FUZZ_CHECK(o.err == 0);
		size_t n = zbuf_len(&z);
		uint8_t *q = malloc(n);
		FUZZ_CHECK(q);
		memcpy(q, zbuf_head(&z), n);
		FUZZ_CHECK(connect_req_decode(q, n, &b) == 0);
		FUZZ_CHECK(a.protocol_version == b.protocol_version && a.last_zxid == b.last_zxid &&
			   a.timeout_ms == b.timeout_ms && a.session_id == b.session_id &&
			   a.has_read_only == b.has_read_only && a.read_only == b.read_only);
		FUZZ_CHECK(a.passwd_len == b.passwd_len && !a.passwd == !b.passwd);
		if (a.passwd && a.passwd_len > 0)
			FUZZ_CHECK(memcmp(a.passwd, b.passwd, (size_t)a.passwd_len) == 0);
		/* Re-encoding reproduces the input up to the readOnly byte, whose value jute
		 * normalises to 0/1. */
		FUZZ_CHECK(n <= size);
		FUZZ_CHECK(memcmp(p, q, n - (a.has_read_only ? 1 : 0)) == 0);
		free(q);
		zbuf_free(&z);
	}
	free(p);
	return 0;
}
