/* Proves the digest scheme and a connection's auth info match ZooKeeper 3.8: SHA-1 and base64
 * against FIPS 180 / RFC 4648 vectors and the digest ids Apache ZooKeeper computed; the set of
 * ids iterates in the order Apache's whoAmI showed (ConcurrentHashMap order, across a resize);
 * the set's bounds; ip ids spelled as Java spells addresses. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "tree/auth.h"
#include "tree/sha1.h"
#include "tests/unit/support/support.h"

/* ---- SHA-1, base64, digest ids ---- */

static void hex(const uint8_t *h, char out[41])
{
	for (int i = 0; i < SHA1_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void expect_sha1(const void *data, size_t len, const char *want)
{
	uint8_t h[SHA1_LEN];
	char got[41];
	sha1(data, len, h);
	hex(h, got);
	cr_assert_str_eq(got, want, "sha1 of %zu bytes", len);
}

Test(auth, sha1_fips180_vectors, .timeout = 10)
{
	expect_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	expect_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	expect_sha1(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	/* Lengths around the padding boundary (55: one block, 56: two). */
	static const struct { size_t n; const char *h; } a[] = {
		{ 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a" },
		{ 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699" },
		{ 63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5" },
		{ 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d" },
		{ 65, "11655326c708d70319be2610e8a57d9a5b959d3b" },
		{ 119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56" },
		{ 120, "f34c1488385346a55709ba056ddd08280dd4c6d6" },
		{ 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f" },
	};
	char *buf = malloc(1000000);
	memset(buf, 'a', 1000000);
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		expect_sha1(buf, a[i].n, a[i].h);
	free(buf);
}

Test(auth, base64_rfc4648_vectors, .timeout = 10)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (size_t i = 0; i < 7; i++) {
		char out[16];
		size_t n = base64_encode((const uint8_t *)in[i], strlen(in[i]), out);
		cr_assert_eq(n, strlen(want[i]));
		cr_assert_arr_eq(out, want[i], n, "base64(%s)", in[i]);
	}
	uint8_t all[3] = { 0xfb, 0xff, 0xbf };
	char out[4];
	base64_encode(all, 3, out);
	cr_assert_arr_eq(out, "+/+/", 4, "the two non-alphanumeric symbols");
}

static void expect_digest(const char *cred, const char *want)
{
	char id[128];
	long n = auth_digest_id((const uint8_t *)cred, strlen(cred), id, sizeof id);
	cr_assert_eq(n, (long)strlen(want), "digest of %s: length %ld", cred, n);
	cr_assert_arr_eq(id, want, (size_t)n, "digest of %s: %.*s", cred, (int)n, id);
}

Test(auth, digest_ids_as_apache_computes_them, .timeout = 10)
{
	/* Read back from Apache ZooKeeper 3.8 with getACL after create with auth::. */
	expect_digest("alice:pw", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=");
	expect_digest("bob:pw", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=");
	expect_digest("carol", "carol:KLkrVu5kuS67cthl8XLvAMcI34M="); /* no ':': all of it is the user */
	expect_digest("super:secret", "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
	char small[10];
	cr_assert_eq(auth_digest_id((const uint8_t *)"alice:pw", 8, small, sizeof small), -1);
}

/* ---- the auth-info set ---- */

/* whoAmI of the set as "scheme/user,scheme/user,...". */
static void whoami_str(const struct auth_ids *a, char *out, size_t cap)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 16);
	jout_init(&o, &b);
	auth_whoami(&o, a->bytes, a->len);
	struct jute_in in;
	jin_init(&in, zbuf_head(&b), zbuf_len(&b));
	int32_t n = jin_vec(&in, 1000);
	size_t off = 0;
	out[0] = 0;
	for (int32_t i = 0; i < n; i++) {
		int32_t sl, ul;
		const uint8_t *s = jin_buf(&in, &sl), *u = jin_buf(&in, &ul);
		off += (size_t)snprintf(out + off, cap - off, "%s%.*s/%.*s", i ? "," : "", sl,
					(const char *)s, ul, (const char *)u);
	}
	cr_assert(jin_done(&in));
	zbuf_free(&b);
}

Test(auth, auth_set_iterates_like_apache, .timeout = 10)
{
	struct auth_ids a;
	char got[4096];
	cr_assert_eq(auth_ids_init(&a), 0);
	t_auth_add(&a, "ip", "127.0.0.1");
	whoami_str(&a, got, sizeof got);
	cr_assert_str_eq(got, "ip/127.0.0.1");
	t_auth_add(&a, "ip", "127.0.0.1"); /* a set: no second copy */
	t_auth_add_digest(&a, "alice:pw");
	t_auth_add_digest(&a, "alice:pw");
	t_auth_add_digest(&a, "bob:pw");
	t_auth_add_digest(&a, "carol");
	cr_assert_eq(a.count, 4);
	whoami_str(&a, got, sizeof got);
	cr_assert_str_eq(got, "digest/bob,digest/carol,ip/127.0.0.1,digest/alice", "Apache's whoAmI order");
	auth_ids_free(&a);
}

/* 21 and 22 ids: past the first resize (12), where ConcurrentHashMap reverses part of a
 * bin. Both orders were read from Apache's whoAmI; they differ in where g1 and z fall. */
Test(auth, auth_set_order_across_a_resize, .timeout = 10)
{
	static const char *const users[] = { "x", "y", "z", "dave", "eve", "frank", "g1", "g2", "g3",
		"g4", "g5", "g6", "g7", "g8", "g9", "g10", "g11", "g12", "g13" };
	for (int with_super = 0; with_super < 2; with_super++) {
		struct auth_ids a;
		cr_assert_eq(auth_ids_init(&a), 0);
		t_auth_add(&a, "ip", "127.0.0.1");
		if (with_super)
			t_auth_add(&a, "super", "");
		t_auth_add_digest(&a, "super:secret");
		for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
			char cred[32];
			snprintf(cred, sizeof cred, "%s:p", users[i]);
			t_auth_add_digest(&a, cred);
		}
		char got[4096];
		whoami_str(&a, got, sizeof got);
		const char *want = with_super ?
			"digest/g10,digest/g7,digest/g12,digest/g5,digest/g9,digest/g4,digest/g8,digest/x,"
			"ip/127.0.0.1,digest/eve,digest/g6,digest/y,digest/g11,digest/frank,super/,"
			"digest/super,digest/z,digest/g1,digest/g3,digest/g13,digest/dave,digest/g2" :
			"digest/g10,digest/g7,digest/g12,digest/g5,digest/g9,digest/g4,digest/g8,digest/x,"
			"ip/127.0.0.1,digest/eve,digest/g6,digest/y,digest/g11,digest/frank,"
			"digest/super,digest/g1,digest/z,digest/g3,digest/g13,digest/dave,digest/g2";
		cr_assert_str_eq(got, want, "super=%d", with_super);
		auth_ids_free(&a);
	}
}

Test(auth, auth_set_is_bounded, .timeout = 10)
{
	struct auth_ids a;
	cr_assert_eq(auth_ids_init(&a), 0);
	for (int i = 0; i < AUTH_MAX_IDS; i++) {
		char id[16];
		snprintf(id, sizeof id, "u%d:h", i);
		t_auth_add(&a, "digest", id);
	}
	cr_assert_eq(a.count, AUTH_MAX_IDS);
	cr_assert_eq(auth_ids_add(&a, "digest", 6, "one:more", 8), -E2BIG);
	cr_assert_eq(auth_ids_add(&a, "digest", 6, "u5:h", 4), 0, "one it has: still fine");
	cr_assert_eq(a.count, AUTH_MAX_IDS);
	auth_ids_free(&a);
	cr_assert_eq(auth_ids_init(&a), 0);
	static char big[AUTH_MAX_BYTES];
	memset(big, 'x', sizeof big);
	big[AUTH_MAX_BYTES / 2] = 'y'; /* so the second half-size id below is a different one */
	cr_assert_eq(auth_ids_add(&a, "digest", 6, big, sizeof big), -E2BIG);
	cr_assert_eq(auth_ids_add(&a, "digest", 6, big, AUTH_MAX_BYTES / 2), 0);
	cr_assert_eq(auth_ids_add(&a, "digest", 6, big + 1, AUTH_MAX_BYTES / 2), -E2BIG, "bytes bound");
	auth_ids_free(&a);
}

Test(auth, ip_ids_as_java_prints_them, .timeout = 10)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	v4->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &v4->sin_addr);
	char out[AUTH_IP_MAX];
	cr_assert_eq(auth_ip_id(&ss, out), 9);
	cr_assert_str_eq(out, "127.0.0.1");
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	v6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6->sin6_addr);
	auth_ip_id(&ss, out);
	cr_assert_str_eq(out, "10.1.2.3", "a v4-mapped address is an Inet4Address in Java");
	inet_pton(AF_INET6, "::1", &v6->sin6_addr);
	auth_ip_id(&ss, out);
	cr_assert_str_eq(out, "0:0:0:0:0:0:0:1");
	inet_pton(AF_INET6, "fe80::abcd:1", &v6->sin6_addr);
	auth_ip_id(&ss, out);
	cr_assert_str_eq(out, "fe80:0:0:0:0:0:abcd:1");
}
