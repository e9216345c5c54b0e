/* Jute reader and writer; see jute.h for the encoding and the error rules. */
#include "net/jute.h"
#include "net/log.h"

#include <errno.h>
#include <string.h>

void jin_init(struct jute_in *in, const void *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->off = 0;
	in->err = 0;
	in->eof = false;
}

static const uint8_t *take(struct jute_in *in, size_t n)
{
	if (in->err || jin_left(in) < n) {
		in->eof = in->eof || !in->err;
		in->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = in->p + in->off;
	in->off += n;
	return p;
}

int32_t jin_i32(struct jute_in *in)
{
	const uint8_t *p = take(in, 4);
	return p ? (int32_t)be32_get(p) : 0;
}

int64_t jin_i64(struct jute_in *in)
{
	const uint8_t *p = take(in, 8);
	return p ? (int64_t)be64_get(p) : 0;
}

bool jin_bool(struct jute_in *in)
{
	const uint8_t *p = take(in, 1);
	return p ? p[0] != 0 : false;
}

const uint8_t *jin_buf(struct jute_in *in, int32_t *len)
{
	int32_t n = jin_i32(in);
	*len = -1;
	if (in->err)
		return NULL;
	if (n == -1)
		return NULL;
	if (n < 0) {
		in->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = take(in, (size_t)n);
	if (!p)
		return NULL;
	*len = n;
	return p;
}

int32_t jin_vec(struct jute_in *in, int32_t max)
{
	int32_t n = jin_i32(in);
	if (in->err)
		return -1;
	if (n < -1 || n > max) {
		in->err = -EBADMSG;
		return -1;
	}
	return n;
}

void jout_init(struct jute_out *out, struct zbuf *b)
{
	out->b = b;
	out->err = 0;
}

void jout_raw(struct jute_out *out, const void *p, size_t len)
{
	if (out->err)
		return;
	if (zbuf_append(out->b, p, len) < 0)
		out->err = -ENOBUFS;
}

void jout_i32_slow(struct jute_out *out, int32_t v)
{
	uint8_t b[4];
	be32_put(b, (uint32_t)v);
	jout_raw(out, b, 4);
}

void jout_i64_slow(struct jute_out *out, int64_t v)
{
	uint8_t b[8];
	be64_put(b, (uint64_t)v);
	jout_raw(out, b, 8);
}

void jout_bool(struct jute_out *out, bool v)
{
	uint8_t b = v ? 1 : 0;
	jout_raw(out, &b, 1);
}

void jout_buf(struct jute_out *out, const void *p, int32_t len)
{
	ZK_ASSERT(len >= -1);
	jout_i32(out, len);
	if (len > 0)
		jout_raw(out, p, (size_t)len);
}

void jout_str(struct jute_out *out, const char *s)
{
	if (!s) {
		jout_i32(out, -1);
		return;
	}
	size_t n = strlen(s);
	ZK_ASSERT(n <= INT32_MAX);
	jout_buf(out, s, (int32_t)n);
}

size_t jout_frame_begin(struct jute_out *out)
{
	size_t mark = zbuf_len(out->b);
	jout_i32(out, 0);
	return mark;
}

int jout_frame_end(struct jute_out *out, size_t mark)
{
	if (out->err) {
		if (zbuf_len(out->b) >= mark)
			zbuf_truncate(out->b, mark);
		return out->err;
	}
	size_t n = zbuf_len(out->b) - mark - 4;
	ZK_ASSERT(n <= INT32_MAX);
	be32_put(zbuf_head(out->b) + mark, (uint32_t)n);
	return 0;
}
