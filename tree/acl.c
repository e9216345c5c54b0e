/* ACL checks and fixup; see acl.h. The parsing rules copy Java's behaviour (String.split,
 * Integer.parseInt) because they decide which ACLs are valid, which clients see. */
#include "tree/acl.h"
#include "net/log.h"
#include "net/proto.h"
#include "tree/txn.h"

#include <string.h>

static bool eq(const uint8_t *p, int32_t len, const char *s)
{
	return len >= 0 && (size_t)len == strlen(s) && memcmp(p, s, (size_t)len) == 0;
}

/* Integer.parseInt: an optional sign, then at least one decimal digit, within int32. */
static bool java_parse_int(const char *s, size_t len, long *out)
{
	size_t i = 0;
	bool neg = false;
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	long v = 0;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > 2147483648L)
			return false;
	}
	if (!neg && v > 2147483647L)
		return false;
	*out = neg ? -v : v;
	return true;
}

/* v4addr2Bytes: split("\\.", -1) must give 4 parts, each parseInt in 0..255. */
static bool ip4_parse(const char *s, size_t len, uint8_t b[4])
{
	size_t start = 0;
	int part = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		long v;
		if (part == 4 || !java_parse_int(s + start, i - start, &v) || v < 0 || v > 255)
			return false;
		b[part++] = (uint8_t)v;
		start = i + 1;
	}
	return part == 4;
}

/* An ip ACL expression: address and prefix bits (split("/", 2), bits in 0..32). */
static bool ip_expr_parse(const char *s, size_t len, uint8_t addr[4], long *bits)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	if (!ip4_parse(s, alen, addr))
		return false;
	*bits = 32;
	if (slash && (!java_parse_int(slash + 1, len - alen - 1, bits) || *bits < 0 || *bits > 32))
		return false;
	return true;
}

bool acl_ip_valid(const char *id, size_t len)
{
	uint8_t a[4];
	long bits;
	return ip_expr_parse(id, len, a, &bits);
}

bool acl_ip_matches(const char *expr, size_t elen, const char *client, size_t clen)
{
	uint8_t want[4], have[4];
	long bits;
	if (!ip_expr_parse(expr, elen, want, &bits) || !ip4_parse(client, clen, have))
		return false;
	for (long i = 0; i < bits; i++) {
		uint8_t m = (uint8_t)(0x80 >> (i % 8));
		if ((want[i / 8] & m) != (have[i / 8] & m))
			return false;
	}
	return true;
}

bool acl_digest_valid(const char *id, size_t len)
{
	/* String.split(":") drops trailing empty parts: "a:b:" has 2 parts, "a:" has 1. */
	while (len > 0 && id[len - 1] == ':')
		len--;
	const char *colon = len ? memchr(id, ':', len) : NULL;
	return colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - id));
}

struct id_ref {
	const uint8_t *scheme, *id;
	int32_t sl, il;
};

/* Next Id of a serialized vector<Id> (after its count); false at the end or on bad bytes. */
static bool next_id(struct jute_in *in, int32_t *left, struct id_ref *r)
{
	if (*left <= 0 || !jin_ok(in))
		return false;
	(*left)--;
	r->scheme = jin_buf(in, &r->sl);
	r->id = jin_buf(in, &r->il);
	return jin_ok(in) && r->scheme && r->id;
}

static bool who_matches(const struct acl_who *who, const struct id_ref *e)
{
	bool ip = eq(e->scheme, e->sl, "ip"), digest = eq(e->scheme, e->sl, "digest");
	if (!ip && !digest)
		return false; /* no provider for the scheme: nobody matches */
	struct jute_in in;
	jin_init(&in, who->ids, who->len);
	int32_t n = who->ids ? jin_vec(&in, INT32_MAX) : 0;
	struct id_ref a;
	while (next_id(&in, &n, &a)) {
		if (a.sl != e->sl || memcmp(a.scheme, e->scheme, (size_t)a.sl) != 0)
			continue;
		if (digest && a.il == e->il && memcmp(a.id, e->id, (size_t)a.il) == 0)
			return true;
		if (ip && acl_ip_matches((const char *)e->id, (size_t)e->il, (const char *)a.id, (size_t)a.il))
			return true;
	}
	return false;
}

static bool who_is_super(const struct acl_who *who)
{
	struct jute_in in;
	jin_init(&in, who->ids, who->len);
	int32_t n = who->ids ? jin_vec(&in, INT32_MAX) : 0;
	struct id_ref a;
	while (next_id(&in, &n, &a))
		if (eq(a.scheme, a.sl, "super"))
			return true;
	return false;
}

bool acl_allows(const uint8_t *acl, size_t len, int32_t perm, const struct acl_who *who)
{
	if (who->skip)
		return true;
	struct jute_in in;
	jin_init(&in, acl, len);
	int32_t n = jin_vec(&in, TXN_MAX_ACL);
	if (n <= 0 || who_is_super(who))
		return true;
	for (int32_t i = 0; i < n && jin_ok(&in); i++) {
		int32_t perms = jin_i32(&in);
		struct id_ref e;
		int32_t one = 1;
		if (!next_id(&in, &one, &e) || !(perms & perm))
			continue;
		if (eq(e.scheme, e.sl, "world") && eq(e.id, e.il, "anyone"))
			return true;
		if (who_matches(who, &e))
			return true;
	}
	return false;
}

/* The entries of one ACL already seen, for dropping duplicates in O(n): open addressing
 * over (offset, length) spans of whole serialized entries. */
#define SEEN_SLOTS (2 * TXN_MAX_ACL)
struct seen {
	const uint8_t *base;
	uint32_t slots; /* a power of two, at least twice the entries */
	uint32_t off[SEEN_SLOTS], len[SEEN_SLOTS]; /* len 0: empty slot */
};

static bool seen_add(struct seen *s, size_t off, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ s->base[off + i]) * 16777619u;
	for (uint32_t i = h & (s->slots - 1);; i = (i + 1) & (s->slots - 1)) {
		if (s->len[i] == 0) {
			s->off[i] = (uint32_t)off;
			s->len[i] = (uint32_t)len;
			return true;
		}
		if (s->len[i] == len && memcmp(s->base + s->off[i], s->base + off, len) == 0)
			return false;
	}
}

/* The "auth" entry: one entry per digest id of the connection (the only scheme whose
 * provider counts as authenticated). Returns how many, 0 meaning InvalidACL. */
static int32_t expand_auth(int32_t perms, const uint8_t *ids, size_t ids_len, struct jute_out *out)
{
	struct jute_in in;
	jin_init(&in, ids, ids_len);
	int32_t n = ids ? jin_vec(&in, INT32_MAX) : 0, added = 0;
	struct id_ref a;
	while (next_id(&in, &n, &a)) {
		if (!eq(a.scheme, a.sl, "digest"))
			continue;
		if (out) {
			jout_i32(out, perms);
			jout_buf(out, a.scheme, a.sl);
			jout_buf(out, a.id, a.il);
		}
		added++;
	}
	return added;
}

/* One entry of a request's vector<ACL>, where (unlike in a txn) scheme and id may be null. */
struct acl_ent {
	int32_t perms;
	const uint8_t *scheme, *id; /* NULL: a null string */
	int32_t sl, il;
};

static size_t ent_at(const uint8_t *acl, size_t len, size_t off, struct acl_ent *e)
{
	struct jute_in in;
	jin_init(&in, acl, len);
	in.off = off;
	e->perms = jin_i32(&in);
	e->scheme = jin_buf(&in, &e->sl);
	e->id = jin_buf(&in, &e->il);
	ZK_ASSERT(jin_ok(&in)); /* acl_request_span checked the bytes */
	return in.off;
}

static bool same(const uint8_t *a, int32_t al, const uint8_t *b, int32_t bl)
{
	return a && b && al == bl && memcmp(a, b, (size_t)al) == 0;
}

/* ArrayList.contains for an entry with a null scheme or id: ACL.equals dereferences the new
 * entry's fields, so Java throws (MarshallingError) at the first kept entry with the same
 * perms (and, for a null id, the same scheme); such an entry never equals one. */
static int null_entry_kept(const uint8_t *acl, size_t len, const uint32_t *kept, uint32_t nkept,
			   const struct acl_ent *e)
{
	for (uint32_t j = 0; j < nkept; j++) {
		struct acl_ent k;
		ent_at(acl, len, kept[j], &k);
		if (k.perms != e->perms)
			continue;
		if (!e->scheme || same(e->scheme, e->sl, k.scheme, k.sl))
			return ZMARSHALLINGERROR;
	}
	return ZOK;
}

/* removeDuplicates: the offsets of the entries kept, in order. */
static int dedup(const uint8_t *acl, size_t len, struct jute_in *in, int32_t n, uint32_t *kept,
		 uint32_t *nkept)
{
	struct seen seen; /* only the slots an ACL of n entries needs are cleared */
	seen.base = acl;
	for (seen.slots = 2; seen.slots < 2 * (uint32_t)n; seen.slots *= 2)
		;
	ZK_ASSERT(seen.slots <= SEEN_SLOTS);
	memset(seen.len, 0, seen.slots * sizeof seen.len[0]);
	*nkept = 0;
	for (int32_t i = 0; i < n; i++) {
		size_t start = in->off;
		struct acl_ent e;
		in->off = ent_at(acl, len, start, &e);
		if (!e.scheme || !e.id) {
			int rc = null_entry_kept(acl, len, kept, *nkept, &e);
			if (rc != ZOK)
				return rc;
		} else if (!seen_add(&seen, start, in->off - start)) {
			continue; /* an equal entry came before */
		}
		kept[(*nkept)++] = (uint32_t)start;
	}
	return ZOK;
}

/* fixupACL's verdict on one kept entry that is not "auth": ZOK (keep it as is),
 * ZINVALIDACL, or ZMARSHALLINGERROR where Java dereferences a null id. */
static int entry_check(const struct acl_ent *e)
{
	if (!e->scheme)
		return ZINVALIDACL;
	bool world = eq(e->scheme, e->sl, "world"), ip = eq(e->scheme, e->sl, "ip");
	bool digest = eq(e->scheme, e->sl, "digest");
	if (!world && !ip && !digest)
		return ZINVALIDACL; /* no provider for the scheme */
	if (!e->id)
		return ZMARSHALLINGERROR;
	if (world)
		return eq(e->id, e->il, "anyone") ? ZOK : ZINVALIDACL;
	if (ip)
		return acl_ip_valid((const char *)e->id, (size_t)e->il) ? ZOK : ZINVALIDACL;
	return acl_digest_valid((const char *)e->id, (size_t)e->il) ? ZOK : ZINVALIDACL;
}

const uint8_t *acl_request_span(struct jute_in *in, size_t *len, int32_t *count)
{
	size_t start = in->off;
	int32_t n = jin_vec(in, TXN_MAX_ACL), l;
	for (int32_t i = 0; i < n && jin_ok(in); i++) {
		jin_i32(in);
		jin_buf(in, &l);
		jin_buf(in, &l);
	}
	*count = n;
	*len = in->off - start;
	return jin_ok(in) ? in->p + start : NULL;
}

int acl_fixup(const uint8_t *acl, size_t len, const uint8_t *ids, size_t ids_len, struct jute_out *out)
{
	struct jute_in in;
	jin_init(&in, acl, len);
	int32_t n = jin_vec(&in, TXN_MAX_ACL);
	if (n <= 0 || !jin_ok(&in))
		return ZINVALIDACL;
	uint32_t kept[TXN_MAX_ACL], nkept;
	int rc = dedup(acl, len, &in, n, kept, &nkept);
	if (rc != ZOK)
		return rc;
	size_t count_at = out ? zbuf_len(out->b) : 0;
	if (out)
		jout_i32(out, 0);
	int32_t total = 0;
	for (uint32_t i = 0; i < nkept; i++) {
		struct acl_ent e;
		size_t end = ent_at(acl, len, kept[i], &e);
		if (e.scheme && eq(e.scheme, e.sl, "auth")) {
			int32_t k = expand_auth(e.perms, ids, ids_len, out);
			if (k == 0)
				return ZINVALIDACL;
			total += k;
		} else if ((rc = entry_check(&e)) != ZOK) {
			return rc;
		} else {
			if (out)
				jout_raw(out, acl + kept[i], end - kept[i]);
			total++;
		}
		if (total > ACL_MAX_ENTRIES)
			return ZINVALIDACL;
	}
	if (out && !out->err)
		be32_put(zbuf_head(out->b) + count_at, (uint32_t)total);
	return ZOK;
}
