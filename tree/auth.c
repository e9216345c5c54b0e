/* A connection's authentication ids; see auth.h. */
#include "tree/auth.h"
#include "net/log.h"
#include "tree/sha1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* String.hashCode over the UTF-16 units of UTF-8 bytes. A byte that starts no valid
 * sequence counts as one U+FFFD, roughly as Java's decoder replaces it. */
static uint32_t java_string_hash(const uint8_t *s, size_t len)
{
	uint32_t h = 0;
	size_t i = 0;
	while (i < len) {
		uint32_t c = s[i], cp, need;
		if (c < 0x80) {
			h = 31 * h + c;
			i++;
			continue;
		}
		if (c >= 0xc2 && c < 0xe0) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c < 0xf0) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c < 0xf5) {
			need = 3;
			cp = c & 0x07;
		} else {
			need = 0;
			cp = 0;
		}
		size_t j = 1;
		for (; need && j <= need && i + j < len && (s[i + j] & 0xc0) == 0x80; j++)
			cp = cp << 6 | (s[i + j] & 0x3f);
		if (!need || j <= need) {
			h = 31 * h + 0xfffd;
			i++;
			continue;
		}
		i += j;
		if (cp >= 0x10000) {
			h = 31 * h + (0xd800 + ((cp - 0x10000) >> 10));
			h = 31 * h + (0xdc00 + (cp & 0x3ff));
		} else {
			h = 31 * h + cp;
		}
	}
	return h;
}

uint32_t auth_java_hash(const uint8_t *scheme, size_t sl, const uint8_t *id, size_t il)
{
	uint32_t r = 17;
	r = 37 * r + java_string_hash(scheme, sl);
	return 37 * r + java_string_hash(id, il);
}

struct ent {
	const uint8_t *scheme, *id;
	int32_t sl, il;
	uint32_t hash; /* ConcurrentHashMap.spread(hashCode) */
};

static uint32_t spread(uint32_t h) { return (h ^ (h >> 16)) & 0x7fffffff; }

static void ent_fill(struct ent *e)
{
	e->hash = spread(auth_java_hash(e->scheme, (size_t)e->sl, e->id, (size_t)e->il));
}

int auth_ids_init(struct auth_ids *a)
{
	a->bytes = calloc(1, 4);
	a->len = 4;
	a->count = 0;
	return a->bytes ? 0 : -ENOMEM;
}

void auth_ids_free(struct auth_ids *a)
{
	free(a->bytes);
	memset(a, 0, sizeof *a);
}

/* The table size ConcurrentHashMap has with `count` entries: 16, doubled each time the
 * count reaches three quarters of it. */
static uint32_t table_size(uint32_t count)
{
	uint32_t n = 16;
	while (count >= n - n / 4)
		n *= 2;
	return n;
}

/* ConcurrentHashMap.transfer for one bin `b` (entries in v[], in bin order) of a table of
 * size n: the tail run whose (hash & n) bit agrees moves as is; every node before it is
 * pushed onto the front of its new list, reversing their order. */
static void split_bin(const struct ent *v, uint32_t cnt, uint32_t n, struct ent *lo, uint32_t *nlo,
		      struct ent *hi, uint32_t *nhi)
{
	*nlo = *nhi = 0;
	if (cnt == 0)
		return;
	uint32_t last = cnt - 1;
	while (last > 0 && (v[last - 1].hash & n) == (v[cnt - 1].hash & n))
		last--;
	struct ent tmp[AUTH_MAX_IDS + 1];
	uint32_t nt = 0;
	for (uint32_t i = last; i > 0; i--)
		tmp[nt++] = v[i - 1]; /* reversed prefix */
	for (uint32_t pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < nt; i++)
			if (!(tmp[i].hash & n) == !pass) {
				if (pass) hi[(*nhi)++] = tmp[i]; else lo[(*nlo)++] = tmp[i];
			}
		if ((v[cnt - 1].hash & n) ? pass : !pass)
			for (uint32_t i = last; i < cnt; i++) {
				if (pass) hi[(*nhi)++] = v[i]; else lo[(*nlo)++] = v[i];
			}
	}
}

/* Double the table: the iteration order of the new table from that of the old one. The
 * low halves keep their bins (0..n-1), the high halves land in n..2n-1, after all of them. */
static void resize(struct ent *v, uint32_t cnt, uint32_t n)
{
	struct ent lo[AUTH_MAX_IDS + 1], hi[AUTH_MAX_IDS + 1];
	uint32_t nlo = 0, nhi = 0;
	for (uint32_t i = 0, j; i < cnt; i = j) {
		uint32_t b = v[i].hash & (n - 1), a, c;
		for (j = i; j < cnt && (v[j].hash & (n - 1)) == b; j++)
			;
		split_bin(v + i, j - i, n, lo + nlo, &a, hi + nhi, &c);
		nlo += a;
		nhi += c;
	}
	ZK_ASSERT(nlo + nhi == cnt);
	memcpy(v, lo, nlo * sizeof *v);
	memcpy(v + nlo, hi, nhi * sizeof *v);
}

static int serialize(struct auth_ids *a, const struct ent *v, uint32_t cnt)
{
	size_t len = 4;
	for (uint32_t i = 0; i < cnt; i++)
		len += 8 + (size_t)v[i].sl + (size_t)v[i].il;
	if (len > AUTH_MAX_BYTES)
		return -E2BIG;
	uint8_t *b = malloc(len), *p = b;
	if (!b)
		return -ENOMEM;
	be32_put(p, cnt);
	p += 4;
	for (uint32_t i = 0; i < cnt; i++) {
		be32_put(p, (uint32_t)v[i].sl);
		memcpy(p + 4, v[i].scheme, (size_t)v[i].sl);
		p += 4 + v[i].sl;
		be32_put(p, (uint32_t)v[i].il);
		memcpy(p + 4, v[i].id, (size_t)v[i].il);
		p += 4 + v[i].il;
	}
	ZK_ASSERT((size_t)(p - b) == len);
	free(a->bytes);
	a->bytes = b;
	a->len = len;
	a->count = cnt;
	return 0;
}

int auth_ids_add(struct auth_ids *a, const char *scheme, size_t sl, const char *id, size_t il)
{
	ZK_ASSERT(a->bytes && a->count <= AUTH_MAX_IDS);
	if (sl + il > AUTH_MAX_BYTES)
		return -E2BIG;
	struct ent v[AUTH_MAX_IDS + 1];
	struct jute_in in;
	jin_init(&in, a->bytes, a->len);
	uint32_t cnt = (uint32_t)jin_vec(&in, AUTH_MAX_IDS);
	ZK_ASSERT(cnt == a->count);
	struct ent e = { (const uint8_t *)scheme, (const uint8_t *)id, (int32_t)sl, (int32_t)il, 0 };
	ent_fill(&e);
	for (uint32_t i = 0; i < cnt; i++) {
		v[i].scheme = jin_buf(&in, &v[i].sl);
		v[i].id = jin_buf(&in, &v[i].il);
		ZK_ASSERT(jin_ok(&in));
		ent_fill(&v[i]);
		if (v[i].sl == e.sl && v[i].il == e.il && memcmp(v[i].scheme, scheme, sl) == 0 &&
		    memcmp(v[i].id, id, il) == 0)
			return 0; /* a set: already there */
	}
	if (cnt == AUTH_MAX_IDS)
		return -E2BIG;
	uint32_t n = table_size(cnt), bin = e.hash & (n - 1), at = 0;
	while (at < cnt && (v[at].hash & (n - 1)) <= bin)
		at++; /* appended at the end of its bin */
	memmove(v + at + 1, v + at, (cnt - at) * sizeof *v);
	v[at] = e;
	cnt++;
	if (cnt >= n - n / 4)
		resize(v, cnt, n);
	return serialize(a, v, cnt);
}

int auth_ip_id(const struct sockaddr_storage *peer, char out[AUTH_IP_MAX])
{
	if (peer->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, out, AUTH_IP_MAX);
		return (int)strlen(out);
	}
	if (peer->ss_family != AF_INET6)
		return -1;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		inet_ntop(AF_INET, &a->s6_addr[12], out, AUTH_IP_MAX);
		return (int)strlen(out);
	}
	int n = 0;
	for (int i = 0; i < 8; i++)
		n += snprintf(out + n, (size_t)(AUTH_IP_MAX - n), "%s%x", i ? ":" : "",
			      (unsigned)a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1]);
	return n;
}

long auth_digest_id(const uint8_t *cred, size_t len, char *out, size_t cap)
{
	const uint8_t *colon = memchr(cred, ':', len);
	size_t ulen = colon ? (size_t)(colon - cred) : len;
	if (ulen + 1 + BASE64_LEN(SHA1_LEN) > cap)
		return -1;
	uint8_t h[SHA1_LEN];
	sha1(cred, len, h);
	memcpy(out, cred, ulen);
	out[ulen] = ':';
	return (long)(ulen + 1 + base64_encode(h, SHA1_LEN, out + ulen + 1));
}

void auth_whoami(struct jute_out *out, const uint8_t *ids, size_t len)
{
	struct jute_in in;
	jin_init(&in, ids, len);
	int32_t n = ids ? jin_vec(&in, AUTH_MAX_IDS) : 0;
	jout_i32(out, n > 0 ? n : 0);
	for (int32_t i = 0; i < n && jin_ok(&in); i++) {
		int32_t sl, il;
		const uint8_t *scheme = jin_buf(&in, &sl);
		const uint8_t *id = jin_buf(&in, &il);
		jout_buf(out, scheme, sl);
		if (sl == 6 && memcmp(scheme, "digest", 6) == 0) {
			const uint8_t *colon = il > 0 ? memchr(id, ':', (size_t)il) : NULL;
			jout_buf(out, id, colon ? (int32_t)(colon - id) : il);
		} else if (sl == 2 && memcmp(scheme, "ip", 2) == 0) {
			jout_buf(out, id, il);
		} else {
			jout_buf(out, "", 0);
		}
	}
}
