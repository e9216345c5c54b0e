/* Bounds-checked jute (ZooKeeper's serialization) reader and writer.
 *
 * Encoding (BinaryOutputArchive): big-endian int32/int64, boolean as one byte, buffer and
 * ustring as an int32 length then the bytes (-1 = null), vector as an int32 count (-1 = null)
 * then the elements. No tags, no padding.
 *
 * Errors are sticky: after the first short read or bad length every later call returns a
 * zero value and `err` stays set, so a decoder checks once at the end. The reader never
 * copies: buffers and strings point into the caller's frame, which must outlive them. */
#ifndef ZK_JUTE_H
#define ZK_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/zbuf.h"

struct jute_in {
	const uint8_t *p;
	size_t len, off;
	int err; /* 0 or -EBADMSG */
	bool eof; /* the first error was a read past the end: the input was cut short, not bad */
};

void jin_init(struct jute_in *in, const void *p, size_t len);
int32_t jin_i32(struct jute_in *in);
int64_t jin_i64(struct jute_in *in);
bool jin_bool(struct jute_in *in);
/* Buffer or ustring: *len is -1 for null. The bytes stay in the frame. */
const uint8_t *jin_buf(struct jute_in *in, int32_t *len);
/* Vector header: a count in [-1, max] (-1 = null); anything else is an error. */
int32_t jin_vec(struct jute_in *in, int32_t max);
static inline size_t jin_left(const struct jute_in *in) { return in->len - in->off; }
static inline bool jin_ok(const struct jute_in *in) { return in->err == 0; }
static inline bool jin_done(const struct jute_in *in) { return in->err == 0 && in->off == in->len; }

struct jute_out {
	struct zbuf *b;
	int err; /* 0 or -ENOBUFS once the buffer's bound was hit */
};

void jout_init(struct jute_out *out, struct zbuf *b);
void jout_i32_slow(struct jute_out *out, int32_t v);
void jout_i64_slow(struct jute_out *out, int64_t v);
void jout_bool(struct jute_out *out, bool v);
void jout_buf(struct jute_out *out, const void *p, int32_t len); /* len -1 writes null */
void jout_str(struct jute_out *out, const char *s);               /* NULL writes null */
void jout_raw(struct jute_out *out, const void *p, size_t len);

static inline void be32_put(uint8_t *p, uint32_t v);
static inline void be64_put(uint8_t *p, uint64_t v);

/* The hot path (replies are mostly ints): write in place when the buffer has room. */
static inline void jout_i32(struct jute_out *out, int32_t v)
{
	struct zbuf *b = out->b;
	if (out->err == 0 && b->cap - b->tail >= 4) {
		be32_put(b->data + b->tail, (uint32_t)v);
		b->tail += 4;
		return;
	}
	jout_i32_slow(out, v);
}

static inline void jout_i64(struct jute_out *out, int64_t v)
{
	struct zbuf *b = out->b;
	if (out->err == 0 && b->cap - b->tail >= 8) {
		be64_put(b->data + b->tail, (uint64_t)v);
		b->tail += 8;
		return;
	}
	jout_i64_slow(out, v);
}

/* Frames: an int32 length, then the payload. jout_frame_begin reserves the length and
 * returns a mark; jout_frame_end patches it (or rolls back the whole frame on error). */
size_t jout_frame_begin(struct jute_out *out);
int jout_frame_end(struct jute_out *out, size_t mark);

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

#endif
