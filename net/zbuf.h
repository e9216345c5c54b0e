/* A bounded byte queue: bytes are appended at the tail and consumed from the head.
 * It grows on demand up to `max` bytes and never beyond; an append that would pass the
 * bound fails with -ENOBUFS and leaves the buffer unchanged. The owner frees it. */
#ifndef ZK_ZBUF_H
#define ZK_ZBUF_H

#include <stddef.h>
#include <stdint.h>

struct zbuf {
	uint8_t *data;
	size_t head, tail; /* live bytes are data[head..tail) */
	size_t cap, max;
};

void zbuf_init(struct zbuf *b, size_t max);
void zbuf_free(struct zbuf *b);
static inline size_t zbuf_len(const struct zbuf *b) { return b->tail - b->head; }
static inline uint8_t *zbuf_head(const struct zbuf *b) { return b->data + b->head; }
/* Make room for `n` more bytes at the tail; returns a pointer to them or NULL past max. */
uint8_t *zbuf_reserve(struct zbuf *b, size_t n);
int zbuf_append(struct zbuf *b, const void *p, size_t n);
void zbuf_consume(struct zbuf *b, size_t n);
/* Drop bytes after `len` live bytes (rolls back a partly written record). */
void zbuf_truncate(struct zbuf *b, size_t len);
void zbuf_reset(struct zbuf *b);
/* Give back memory when a large buffer has drained. */
void zbuf_shrink(struct zbuf *b, size_t keep);

#endif
