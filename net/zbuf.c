/* Bounded byte queue; see zbuf.h. */
#include "net/zbuf.h"
#include "net/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void zbuf_init(struct zbuf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

void zbuf_free(struct zbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->head = b->tail = b->cap = 0;
}

uint8_t *zbuf_reserve(struct zbuf *b, size_t n)
{
	ZK_ASSERT(b->head <= b->tail && b->tail <= b->cap);
	size_t live = b->tail - b->head;
	if (n > b->max || live > b->max - n)
		return NULL;
	if (b->cap - b->tail >= n)
		return b->data + b->tail;
	if (b->head > 0) { /* compact before growing */
		memmove(b->data, b->data + b->head, live);
		b->head = 0;
		b->tail = live;
		if (b->cap - b->tail >= n)
			return b->data + b->tail;
	}
	size_t want = b->cap ? b->cap : 256;
	while (want < live + n)
		want *= 2;
	if (want > b->max)
		want = b->max;
	uint8_t *p = realloc(b->data, want);
	if (!p)
		return NULL;
	b->data = p;
	b->cap = want;
	return b->data + b->tail;
}

int zbuf_append(struct zbuf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	uint8_t *dst = zbuf_reserve(b, n);
	if (!dst)
		return -ENOBUFS;
	if (n)
		memcpy(dst, p, n);
	b->tail += n;
	return 0;
}

void zbuf_consume(struct zbuf *b, size_t n)
{
	ZK_ASSERT(n <= zbuf_len(b));
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}

void zbuf_truncate(struct zbuf *b, size_t len)
{
	ZK_ASSERT(len <= zbuf_len(b));
	b->tail = b->head + len;
}

void zbuf_reset(struct zbuf *b) { b->head = b->tail = 0; }

void zbuf_shrink(struct zbuf *b, size_t keep)
{
	if (b->cap <= keep || zbuf_len(b) > 0)
		return;
	free(b->data);
	b->data = NULL;
	b->cap = b->head = b->tail = 0;
}
