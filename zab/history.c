/* The history ring of committed txns; see history.h. */
#include "zab/history.h"
#include "net/log.h"

#include <errno.h>
#include <stdlib.h>

int hist_init(struct hist *h, size_t count, size_t max_bytes)
{
	ZK_ASSERT(count > 0 && max_bytes > 0 && max_bytes <= UINT32_MAX);
	*h = (struct hist){ .cap = count, .max_bytes = max_bytes, .base = -1 };
	h->ent = calloc(count, sizeof *h->ent);
	if (!h->ent)
		return -ENOMEM;
	/* 1 MiB of slack over the ring's own bound: the zbuf's limit is never what stops a push */
	zbuf_init(&h->bytes, max_bytes + (1u << 20));
	return 0;
}

void hist_free(struct hist *h)
{
	free(h->ent);
	zbuf_free(&h->bytes);
	*h = (struct hist){ .base = -1 };
}

void hist_reset(struct hist *h, int64_t base)
{
	h->head = h->n = 0;
	zbuf_reset(&h->bytes);
	h->pos = 0;
	h->base = base;
}

static struct hist_ent *hist_at(const struct hist *h, size_t i)
{
	ZK_ASSERT(i < h->cap);
	return &h->ent[(h->head + i) % h->cap];
}

static const uint8_t *hist_bytes_of(const struct hist *h, const struct hist_ent *e)
{
	ZK_ASSERT(e->pos >= h->pos && e->pos - h->pos + e->len <= zbuf_len(&h->bytes));
	return zbuf_head(&h->bytes) + (e->pos - h->pos);
}

static void hist_drop_oldest(struct hist *h)
{
	ZK_ASSERT(h->n > 0);
	struct hist_ent *e = hist_at(h, 0);
	h->base = e->zxid;
	zbuf_consume(&h->bytes, e->len);
	h->pos += e->len;
	h->head = (h->head + 1) % h->cap;
	h->n--;
}

void hist_push(struct hist *h, int64_t zxid, const uint8_t *p, size_t len)
{
	if (!h->ent)
		return;
	if (h->n > 0 && zxid <= hist_at(h, h->n - 1)->zxid)
		return; /* a re-applied txn (replay over a fuzzy snapshot) */
	if (len > h->max_bytes / 2) {
		hist_reset(h, zxid); /* a giant txn: DIFFs start after it */
		return;
	}
	while (h->n > 0 && (h->n == h->cap || zbuf_len(&h->bytes) + len > h->max_bytes))
		hist_drop_oldest(h);
	uint64_t pos = h->pos + zbuf_len(&h->bytes);
	if (zbuf_append(&h->bytes, p, len) < 0) {
		hist_reset(h, zxid);
		return;
	}
	ZK_ASSERT(h->n < h->cap);
	*hist_at(h, h->n++) = (struct hist_ent){ zxid, pos, (uint32_t)len };
}

bool hist_lookup(const struct hist *h, int64_t zxid, const uint8_t **p, size_t *len)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) { /* zxids rise from head to tail */
		size_t mid = (lo + hi) / 2;
		if (hist_at(h, mid)->zxid < zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == h->n || hist_at(h, lo)->zxid != zxid)
		return false;
	const struct hist_ent *e = hist_at(h, lo);
	*p = hist_bytes_of(h, e);
	*len = e->len;
	return true;
}

void hist_each(const struct hist *h, int64_t from, int64_t to, hist_fn fn, void *ctx)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct hist_ent *e = hist_at(h, i);
		if (e->zxid > from && e->zxid <= to)
			fn(e->zxid, hist_bytes_of(h, e), e->len, ctx);
	}
}

int hist_floor(const struct hist *h, int64_t z, int64_t *floor)
{
	if (z < h->base)
		return -ENOENT;
	int64_t f = h->base;
	for (size_t i = 0; i < h->n && hist_at(h, i)->zxid <= z; i++)
		f = hist_at(h, i)->zxid;
	*floor = f;
	return 0;
}

void hist_truncate_after(struct hist *h, int64_t zxid)
{
	while (h->n > 0 && hist_at(h, h->n - 1)->zxid > zxid) {
		const struct hist_ent *e = hist_at(h, --h->n);
		zbuf_truncate(&h->bytes, (size_t)(e->pos - h->pos));
	}
}

void hist_recovered(struct hist *h, int64_t last_zxid, int64_t snap_zxid)
{
	if (h->n == 0)
		hist_reset(h, last_zxid);
	else if (h->base < 0)
		h->base = snap_zxid;
}
