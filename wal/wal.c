/* The log stage; see wal.h for the record layout and the batch rule. */
#include "wal/wal.h"
#include "net/jute.h"
#include "net/log.h"

#include <errno.h>
#include <string.h>

#define WAL_BATCH_MAX (64u << 20)

uint32_t wal_adler32(uint32_t adler, const uint8_t *p, size_t len)
{
	uint32_t a = adler & 0xffff, b = adler >> 16;
	while (len > 0) {
		size_t n = len < 5552 ? len : 5552; /* largest run without overflow */
		len -= n;
		while (n--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return b << 16 | a;
}

int wal_init(struct wal *w, size_t max_bytes, int64_t last_zxid)
{
	memset(w, 0, sizeof *w);
	zbuf_init(&w->batch, WAL_BATCH_MAX);
	zbuf_init(&w->log, max_bytes);
	w->durable_zxid = w->batch_last_zxid = last_zxid;
	return 0;
}

void wal_free(struct wal *w)
{
	zbuf_free(&w->batch);
	zbuf_free(&w->log);
}

int wal_append(struct wal *w, int64_t zxid, const uint8_t *entry, size_t len)
{
	ZK_ASSERT(zxid > w->batch_last_zxid);
	ZK_ASSERT(len > 0 && len <= INT32_MAX);
	uint8_t *p = zbuf_reserve(&w->batch, 8 + 4 + len + 1);
	if (!p)
		return -ENOBUFS;
	be64_put(p, wal_adler32(1, entry, len));
	be32_put(p + 8, (uint32_t)len);
	memcpy(p + 12, entry, len);
	p[12 + len] = 'B';
	w->batch.tail += 13 + len;
	w->batch_last_zxid = zxid;
	w->records++;
	return 0;
}

/* Drop the oldest whole records until `need` more bytes fit. */
static void log_make_room(struct wal *w, size_t need)
{
	while (zbuf_len(&w->log) > 0 && zbuf_len(&w->log) + need > w->log.max) {
		size_t rec = 13 + be32_get(zbuf_head(&w->log) + 8);
		ZK_ASSERT(rec <= zbuf_len(&w->log));
		zbuf_consume(&w->log, rec);
		w->dropped_bytes += rec;
	}
}

int wal_sync(struct wal *w)
{
	size_t n = zbuf_len(&w->batch);
	if (n == 0)
		return 0;
	if (n <= w->log.max) {
		log_make_room(w, n);
		if (zbuf_append(&w->log, zbuf_head(&w->batch), n) < 0)
			return -ENOMEM;
	} else {
		w->dropped_bytes += n;
	}
	zbuf_reset(&w->batch);
	w->durable_zxid = w->batch_last_zxid;
	w->syncs++;
	return 0;
}
