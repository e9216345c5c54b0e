/* Proves the ACL model matches ZooKeeper 3.8: checkACL's matrix (world, ip CIDR, digest,
 * super, skipACL, empty ACL); fixupACL's validity rules and "auth" expansion as Apache answered them; prep's check order (NoAuth before NodeExists,
 * BadVersion) against the newest view (a setACL still in the pipeline counts); setACL's txn
 * applied idempotently; and the READ / READ|ADMIN checks of reads. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/jute.h"
#include "net/proto.h"
#include "tree/acl.h"
#include "tree/auth.h"
#include "tree/ops.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "zab/prep.h"
#include "tests/unit/support/support.h"

/* ---- checkACL ---- */

static struct zbuf acl_of(const struct t_acl_ent *v, int n)
{
	struct zbuf b;
	t_acl_build(&b, v, n);
	return b;
}

static bool allows(const struct zbuf *acl, int32_t perm, const struct auth_ids *ids, bool skip)
{
	struct acl_who who = { ids ? ids->bytes : NULL, ids ? ids->len : 0, skip };
	return acl_allows(zbuf_head(acl), zbuf_len(acl), perm, &who);
}

Test(acl, check_matrix, .timeout = 10)
{
	struct auth_ids local, remote, alice, super;
	cr_assert_eq(auth_ids_init(&local), 0);
	cr_assert_eq(auth_ids_init(&remote), 0);
	cr_assert_eq(auth_ids_init(&alice), 0);
	cr_assert_eq(auth_ids_init(&super), 0);
	t_auth_add(&local, "ip", "127.0.0.1");
	t_auth_add(&remote, "ip", "10.9.8.7");
	t_auth_add(&alice, "ip", "192.168.1.1");
	t_auth_add_digest(&alice, "alice:pw");
	t_auth_add(&super, "ip", "192.168.1.1");
	t_auth_add(&super, "super", "");

	struct t_acl_ent world_read[] = { { ZPERM_READ, "world", "anyone" } };
	struct zbuf w = acl_of(world_read, 1);
	cr_assert(allows(&w, ZPERM_READ, &remote, false));
	cr_assert(!allows(&w, ZPERM_WRITE, &remote, false));
	cr_assert(allows(&w, ZPERM_READ | ZPERM_ADMIN, &remote, false), "any of the bits");
	cr_assert(allows(&w, ZPERM_WRITE, &super, false), "super passes everything");
	cr_assert(allows(&w, ZPERM_WRITE, &remote, true), "skipACL");

	struct t_acl_ent cidr[] = { { ZPERM_ALL, "ip", "127.0.0.0/8" }, { ZPERM_READ, "ip", "10.0.0.0/8" } };
	struct zbuf c = acl_of(cidr, 2);
	cr_assert(allows(&c, ZPERM_DELETE, &local, false));
	cr_assert(allows(&c, ZPERM_READ, &remote, false));
	cr_assert(!allows(&c, ZPERM_WRITE, &remote, false));
	cr_assert(!allows(&c, ZPERM_READ, &alice, false));

	struct t_acl_ent dig[] = { { ZPERM_ALL, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" },
				   { ZPERM_ALL, "world", "other" }, { ZPERM_ALL, "super", "" },
				   { ZPERM_ALL, "auth", "" } };
	struct zbuf d = acl_of(dig, 4);
	cr_assert(allows(&d, ZPERM_ADMIN, &alice, false));
	cr_assert(!allows(&d, ZPERM_READ, &local, false), "schemes without a provider match no one");
	cr_assert(allows(&d, ZPERM_READ, &super, false));
	cr_assert(!allows(&d, ZPERM_READ, NULL, false), "no ids at all");

	struct zbuf empty;
	struct jute_out eo;
	zbuf_init(&empty, 16);
	jout_init(&eo, &empty);
	jout_i32(&eo, 0);
	cr_assert(allows(&empty, ZPERM_ALL, &remote, false), "an empty ACL allows everything");

	zbuf_free(&w);
	zbuf_free(&c);
	zbuf_free(&d);
	zbuf_free(&empty);
	auth_ids_free(&local);
	auth_ids_free(&remote);
	auth_ids_free(&alice);
	auth_ids_free(&super);
}

Test(acl, ip_and_digest_validity_as_apache, .timeout = 10)
{
	/* Each answered by Apache ZooKeeper 3.8.0 (create: 0 or InvalidACL). */
	static const char *const ip_ok[] = { "10.0.0.0/8", "01.2.3.4", "+1.2.3.4", "1.2.3.4/+8",
					     "-0.1.2.3", "1.2.3.4/-0", "127.0.0.1", "0.0.0.0/0" };
	static const char *const ip_bad[] = { "127.0.0.1/33", "::1", "1.2.3", "1.2.3.4/", "1.2.3.256",
					      "0:0:0:0:0:0:0:1", "1.2.3.4.", "1..2.3", " 1.2.3.4",
					      "1.2.3.4/8/8", "", "1.2.3.4/-1" };
	for (size_t i = 0; i < sizeof ip_ok / sizeof ip_ok[0]; i++)
		cr_assert(acl_ip_valid(ip_ok[i], strlen(ip_ok[i])), "%s", ip_ok[i]);
	for (size_t i = 0; i < sizeof ip_bad / sizeof ip_bad[0]; i++)
		cr_assert(!acl_ip_valid(ip_bad[i], strlen(ip_bad[i])), "%s", ip_bad[i]);
	static const char *const d_ok[] = { ":h", "a:b:", "user:hash" };
	static const char *const d_bad[] = { "user:", "a:b:c", "nohash", "a::", ":", "::b", "" };
	for (size_t i = 0; i < sizeof d_ok / sizeof d_ok[0]; i++)
		cr_assert(acl_digest_valid(d_ok[i], strlen(d_ok[i])), "%s", d_ok[i]);
	for (size_t i = 0; i < sizeof d_bad / sizeof d_bad[0]; i++)
		cr_assert(!acl_digest_valid(d_bad[i], strlen(d_bad[i])), "%s", d_bad[i]);
	cr_assert(acl_ip_matches("127.0.0.0/8", 11, "127.200.1.1", 11));
	cr_assert(!acl_ip_matches("127.0.0.0/8", 11, "128.0.0.1", 9));
	cr_assert(acl_ip_matches("0.0.0.0/0", 9, "8.8.8.8", 7));
	cr_assert(!acl_ip_matches("127.0.0.1", 9, "0:0:0:0:0:0:0:1", 15), "IPv6 clients never match");
}

/* fixupACL of v with ids; returns the error and, on success, the fixed ACL in *out. */
static int fixup(const struct t_acl_ent *v, int n, const struct auth_ids *ids, struct zbuf *out)
{
	struct zbuf in = acl_of(v, n);
	struct jute_out o;
	zbuf_init(out, 1 << 16);
	jout_init(&o, out);
	int rc = acl_fixup(zbuf_head(&in), zbuf_len(&in), ids ? ids->bytes : NULL, ids ? ids->len : 0, &o);
	cr_assert_eq(acl_fixup(zbuf_head(&in), zbuf_len(&in), ids ? ids->bytes : NULL,
			       ids ? ids->len : 0, NULL), rc, "validation alone agrees");
	zbuf_free(&in);
	return rc;
}

static void expect_acl(const struct zbuf *got, const struct t_acl_ent *v, int n)
{
	struct zbuf want = acl_of(v, n);
	cr_assert_eq(zbuf_len(got), zbuf_len(&want));
	cr_assert_arr_eq(zbuf_head(got), zbuf_head(&want), zbuf_len(&want));
	zbuf_free(&want);
}

Test(acl, fixup_as_apache, .timeout = 10)
{
	struct auth_ids ip, three;
	cr_assert_eq(auth_ids_init(&ip), 0);
	cr_assert_eq(auth_ids_init(&three), 0);
	t_auth_add(&ip, "ip", "127.0.0.1");
	t_auth_add(&three, "ip", "127.0.0.1");
	t_auth_add(&three, "super", "");
	t_auth_add_digest(&three, "alice:pw");
	t_auth_add_digest(&three, "bob:pw");
	t_auth_add_digest(&three, "carol");
	struct zbuf out;

	struct t_acl_ent auth[] = { { ZPERM_ALL, "auth", "" } };
	cr_assert_eq(fixup(auth, 1, &ip, &out), ZINVALIDACL, "auth with no digest id");
	zbuf_free(&out);
	cr_assert_eq(fixup(auth, 1, &three, &out), ZOK);
	struct t_acl_ent expanded[] = { { ZPERM_ALL, "digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=" },
					{ ZPERM_ALL, "digest", "carol:KLkrVu5kuS67cthl8XLvAMcI34M=" },
					{ ZPERM_ALL, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" } };
	expect_acl(&out, expanded, 3); /* the set's order; super is not a provider: skipped */
	zbuf_free(&out);

	/* Duplicates go before expansion: an explicit copy of an expanded id stays. */
	struct t_acl_ent mixed[] = { { ZPERM_ALL, "auth", "" }, { ZPERM_ALL, "auth", "" },
				     { ZPERM_ALL, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" } };
	cr_assert_eq(fixup(mixed, 3, &three, &out), ZOK);
	struct t_acl_ent mixed_want[] = { expanded[0], expanded[1], expanded[2], expanded[2] };
	expect_acl(&out, mixed_want, 4);
	zbuf_free(&out);

	struct t_acl_ent dup[] = { { 31, "world", "anyone" }, { 31, "world", "anyone" },
				   { 1, "world", "anyone" }, { 0, "ip", "10.0.0.0/8" } };
	cr_assert_eq(fixup(dup, 4, &ip, &out), ZOK);
	expect_acl(&out, (struct t_acl_ent[]){ dup[0], dup[2], dup[3] }, 3);
	zbuf_free(&out);

	static const struct t_acl_ent bad[] = { { 31, "world", "foo" }, { 31, "super", "" },
		{ 31, "sasl", "x" }, { 31, "x509", "CN=a" }, { 31, "ip", "::1" }, { 31, "digest", "user:" } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(fixup(&bad[i], 1, &three, &out), ZINVALIDACL, "%s:%s", bad[i].scheme, bad[i].id);
		zbuf_free(&out);
	}
	cr_assert_eq(fixup(bad, 0, &three, &out), ZINVALIDACL, "an empty list");
	zbuf_free(&out);
	auth_ids_free(&ip);
	auth_ids_free(&three);
}

/* Null schemes and ids (kazoo sends make_acl("auth", "") with a null id): each answer is
 * Apache's, where a NullPointerException becomes MarshallingError. */
Test(acl, fixup_null_fields_as_apache, .timeout = 10)
{
	struct auth_ids none, alice;
	cr_assert_eq(auth_ids_init(&none), 0);
	cr_assert_eq(auth_ids_init(&alice), 0);
	t_auth_add(&none, "ip", "127.0.0.1");
	t_auth_add_digest(&alice, "alice:pw");
	static const struct { struct t_acl_ent v[2]; int n; int want_none, want_alice; } cases[] = {
		{ { { 31, "world", NULL } }, 1, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "ip", NULL } }, 1, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "digest", NULL } }, 1, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "auth", NULL } }, 1, ZINVALIDACL, ZOK },
		{ { { 31, "foo", NULL } }, 1, ZINVALIDACL, ZINVALIDACL },
		{ { { 31, NULL, "anyone" } }, 1, ZINVALIDACL, ZINVALIDACL },
		{ { { 31, "world", "anyone" }, { 31, "world", NULL } }, 2, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "world", NULL }, { 31, "world", "anyone" } }, 2, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "auth", NULL }, { 31, "auth", NULL } }, 2, ZMARSHALLINGERROR, ZMARSHALLINGERROR },
		{ { { 31, "auth", NULL }, { 31, "auth", "" } }, 2, ZINVALIDACL, ZOK },
		{ { { 1, "auth", NULL }, { 2, "world", NULL } }, 2, ZINVALIDACL, ZMARSHALLINGERROR },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct zbuf out;
		cr_assert_eq(fixup(cases[i].v, cases[i].n, &none, &out), cases[i].want_none, "case %zu", i);
		zbuf_free(&out);
		cr_assert_eq(fixup(cases[i].v, cases[i].n, &alice, &out), cases[i].want_alice, "case %zu", i);
		zbuf_free(&out);
	}
	struct zbuf out;
	cr_assert_eq(fixup(cases[9].v, 2, &alice, &out), ZOK);
	struct t_acl_ent two[] = { { 31, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" },
				   { 31, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" } };
	expect_acl(&out, two, 2); /* "" and null differ: both kept, both expanded */
	zbuf_free(&out);
	auth_ids_free(&none);
	auth_ids_free(&alice);
}

/* The expansion of "auth" is bounded (ours, not ZooKeeper's): 20 auth entries of different
 * perms times 60 digest ids pass ACL_MAX_ENTRIES, which keeps every ACL decodable. */
Test(acl, fixup_expansion_is_bounded, .timeout = 10)
{
	struct auth_ids many;
	cr_assert_eq(auth_ids_init(&many), 0);
	for (int i = 0; i < 60; i++) {
		char id[16];
		snprintf(id, sizeof id, "u%d:h", i);
		t_auth_add(&many, "digest", id);
	}
	struct t_acl_ent v[20];
	for (int i = 0; i < 20; i++)
		v[i] = (struct t_acl_ent){ i, "auth", "" };
	struct zbuf out;
	cr_assert_eq(fixup(v, 17, &many, &out), ZOK, "17 x 60 = 1020 entries fit");
	struct jute_in in;
	jin_init(&in, zbuf_head(&out), zbuf_len(&out));
	cr_assert_eq(jin_vec(&in, ACL_MAX_ENTRIES), 1020);
	zbuf_free(&out);
	cr_assert_eq(fixup(v, 20, &many, &out), ZINVALIDACL, "1200 entries do not");
	zbuf_free(&out);
	auth_ids_free(&many);
}

/* ---- prep and reads ---- */

static struct tree T;
static struct prep P;
static struct zbuf outs[32];
static int nout;
static int64_t zxid;

static void setup(void)
{
	cr_assert_eq(tree_init(&T, NULL, NULL), 0);
	prep_init(&P, &T);
	nout = 0;
	zxid = 0x100000001LL;
}

static void teardown(void)
{
	prep_free(&P);
	tree_free(&T);
	for (int i = 0; i < nout; i++)
		zbuf_free(&outs[i]);
}

/* Prep a request body for `ids`; returns the decoded txn (ErrorTxn: x->err). */
static struct txn prep(int32_t type, const struct zbuf *body, const struct auth_ids *ids)
{
	cr_assert_lt(nout, 32);
	struct zbuf *o = &outs[nout++];
	zbuf_init(o, 1 << 20);
	struct jute_out out;
	jout_init(&out, o);
	struct prep_req r = { .session = 1, .cxid = nout, .type = type, .body = zbuf_head(body),
			      .body_len = zbuf_len(body), .zxid = zxid++, .time_ms = 1,
			      .auth = ids ? ids->bytes : NULL, .auth_len = ids ? ids->len : 0 };
	cr_assert_eq(prep_write(&P, &r, &out), 0);
	struct txn x;
	cr_assert_eq(txn_decode(zbuf_head(o), zbuf_len(o), &x), 0);
	return x;
}

static int result(const struct txn *x, int32_t type)
{
	if (x->hdr.type == ZOP_ERROR)
		return x->err;
	cr_assert_eq(x->hdr.type, type);
	return ZOK;
}

static int create(const char *path, const struct t_acl_ent *acl, int nacl, const struct auth_ids *ids, bool apply)
{
	struct zbuf body, a = acl_of(acl, nacl);
	struct jute_out o;
	zbuf_init(&body, 4096);
	jout_init(&o, &body);
	jout_str(&o, path);
	jout_buf(&o, "", 0);
	jout_raw(&o, zbuf_head(&a), zbuf_len(&a));
	jout_i32(&o, 0);
	struct txn x = prep(ZOP_CREATE, &body, ids);
	zbuf_free(&body);
	zbuf_free(&a);
	struct tree_result res;
	if (apply) {
		cr_assert_eq(tree_apply(&T, &x, &res), 0);
		prep_applied(&P, x.hdr.zxid);
	}
	return result(&x, ZOP_CREATE);
}

static struct txn setacl(const char *path, const struct t_acl_ent *acl, int nacl, int32_t version,
			 const struct auth_ids *ids)
{
	struct zbuf body, a = acl_of(acl, nacl);
	struct jute_out o;
	zbuf_init(&body, 4096);
	jout_init(&o, &body);
	jout_str(&o, path);
	jout_raw(&o, zbuf_head(&a), zbuf_len(&a));
	jout_i32(&o, version);
	struct txn x = prep(ZOP_SETACL, &body, ids);
	zbuf_free(&body);
	zbuf_free(&a);
	return x;
}

static int simple(int32_t type, const char *path, int32_t version, const struct auth_ids *ids)
{
	struct zbuf body;
	struct jute_out o;
	zbuf_init(&body, 4096);
	jout_init(&o, &body);
	jout_str(&o, path);
	if (type == ZOP_SETDATA)
		jout_buf(&o, "d", 1);
	jout_i32(&o, version);
	struct txn x = prep(type, &body, ids);
	zbuf_free(&body);
	return result(&x, type);
}

static const struct t_acl_ent OPEN[] = { { ZPERM_ALL, "world", "anyone" } };

Test(acl, prep_checks_in_apache_order, .init = setup, .fini = teardown, .timeout = 10)
{
	struct auth_ids ip;
	cr_assert_eq(auth_ids_init(&ip), 0);
	t_auth_add(&ip, "ip", "127.0.0.1");
	struct t_acl_ent read_only[] = { { ZPERM_READ, "world", "anyone" } };
	cr_assert_eq(create("/q", read_only, 1, &ip, true), ZOK);
	cr_assert_eq(create("/w", OPEN, 1, &ip, true), ZOK);
	cr_assert_eq(create("/w/x", read_only, 1, &ip, true), ZOK);
	struct txn ok = setacl("/w", read_only, 1, -1, &ip);
	cr_assert_eq(result(&ok, ZOP_SETACL), ZOK);
	struct tree_result res;
	cr_assert_eq(tree_apply(&T, &ok, &res), 0);
	prep_applied(&P, ok.hdr.zxid);

	/* Apache answered each of these; the check comes before the later error. */
	cr_assert_eq(create("/w/x", OPEN, 1, &ip, false), ZNOAUTH, "NoAuth before NodeExists");
	cr_assert_eq(create("/nope/x", OPEN, 1, &ip, false), ZNONODE);
	cr_assert_eq(create("/nope/x", (struct t_acl_ent[]){ { 31, "world", "x" } }, 1, &ip, false),
		     ZINVALIDACL, "InvalidACL before NoNode");
	cr_assert_eq(simple(ZOP_DELETE, "/w/missing", -1, &ip), ZNOAUTH, "NoAuth before NoNode");
	cr_assert_eq(simple(ZOP_DELETE, "/w/x", -1, &ip), ZNOAUTH);
	cr_assert_eq(simple(ZOP_SETDATA, "/q", 5, &ip), ZNOAUTH, "NoAuth before BadVersion");
	struct txn x = setacl("/q", OPEN, 1, 5, &ip);
	cr_assert_eq(result(&x, ZOP_SETACL), ZNOAUTH, "NoAuth before BadVersion");
	x = setacl("/q", (struct t_acl_ent[]){ { 31, "world", "x" } }, 1, 5, &ip);
	cr_assert_eq(result(&x, ZOP_SETACL), ZINVALIDACL);
	x = setacl("/nono", (struct t_acl_ent[]){ { 31, "world", "x" } }, 1, 5, &ip);
	cr_assert_eq(result(&x, ZOP_SETACL), ZINVALIDACL, "InvalidACL before NoNode");
	x = setacl("/nono", OPEN, 1, 5, &ip);
	cr_assert_eq(result(&x, ZOP_SETACL), ZNONODE);
	cr_assert_eq(P.count, 0, "no failed check leaves a change record");
	auth_ids_free(&ip);
}

Test(acl, setacl_versions_and_idempotent_apply, .init = setup, .fini = teardown, .timeout = 10)
{
	cr_assert_eq(create("/s", OPEN, 1, NULL, true), ZOK);
	struct t_acl_ent admin[] = { { ZPERM_ADMIN, "world", "anyone" } };
	struct txn x = setacl("/s", admin, 1, 0, NULL);
	cr_assert_eq(result(&x, ZOP_SETACL), ZOK);
	cr_assert_eq(x.version, 1, "the txn carries the new aversion");
	struct txn bad = setacl("/s", admin, 1, 0, NULL);
	cr_assert_eq(result(&bad, ZOP_SETACL), ZBADVERSION, "the pipeline's aversion is 1 already");
	struct tree_result res;
	cr_assert_eq(tree_apply(&T, &x, &res), 0);
	cr_assert_eq(res.err, ZOK);
	cr_assert_eq(res.stat.p.aversion, 1);
	cr_assert_eq(tree_apply(&T, &x, &res), 0, "replayed over a fuzzy snapshot");
	struct tree_node *n = tree_lookup(&T, "/s", 2);
	cr_assert_eq(n->stat.aversion, 1);
	cr_assert_eq(n->acl->ent.len, x.acl_len);
	cr_assert_arr_eq(n->acl->bytes, x.acl, x.acl_len);
	cr_assert_eq(n->acl->refs, 1, "the replay did not leak a reference");
	prep_applied(&P, x.hdr.zxid);
	struct txn y = setacl("/s", OPEN, 1, -1, NULL);
	cr_assert_eq(y.version, 2);
	cr_assert_eq(tree_apply(&T, &y, &res), 0);
	cr_assert_eq(T.acls.count, 2, "open and read-only (/zookeeper/config): admin-only is gone");
	struct txn gone = setacl("/nope", OPEN, 1, -1, NULL);
	cr_assert_eq(result(&gone, ZOP_SETACL), ZNONODE);
}

/* A setACL still in the pipeline decides the next request's check (the newest view). */
Test(acl, prep_checks_the_newest_view, .init = setup, .fini = teardown, .timeout = 10)
{
	struct auth_ids alice, ip;
	cr_assert_eq(auth_ids_init(&alice), 0);
	cr_assert_eq(auth_ids_init(&ip), 0);
	t_auth_add(&ip, "ip", "127.0.0.1");
	t_auth_add(&alice, "ip", "127.0.0.1");
	t_auth_add_digest(&alice, "alice:pw");
	cr_assert_eq(create("/p", OPEN, 1, &ip, true), ZOK);
	struct t_acl_ent mine[] = { { ZPERM_ALL, "auth", "" } };
	struct txn x = setacl("/p", mine, 1, -1, &alice);
	cr_assert_eq(result(&x, ZOP_SETACL), ZOK);
	/* Not applied yet: prep must already refuse the other client. */
	cr_assert_eq(create("/p/c", OPEN, 1, &ip, false), ZNOAUTH);
	cr_assert_eq(simple(ZOP_SETDATA, "/p", -1, &ip), ZNOAUTH);
	cr_assert_eq(create("/p/c", mine, 1, &alice, false), ZOK);
	/* A node created in the pipeline carries its (expanded) ACL for the next check. */
	cr_assert_eq(simple(ZOP_SETDATA, "/p/c", -1, &ip), ZNOAUTH);
	cr_assert_eq(simple(ZOP_SETDATA, "/p/c", -1, &alice), ZOK);
	P.skip_acl = true;
	cr_assert_eq(simple(ZOP_SETDATA, "/p/c", -1, &ip), ZOK, "skipACL");
	auth_ids_free(&alice);
	auth_ids_free(&ip);
}

static int read_op(int32_t type, const char *path, const struct auth_ids *ids, struct zbuf *resp)
{
	struct zbuf req;
	struct jute_out o;
	zbuf_init(&req, 256);
	jout_init(&o, &req);
	jout_str(&o, path);
	if (type != ZOP_GETACL && type != ZOP_SYNC)
		jout_bool(&o, false);
	zbuf_init(resp, 1 << 16);
	jout_init(&o, resp);
	struct acl_who who = { ids ? ids->bytes : NULL, ids ? ids->len : 0, false };
	int rc = ops_read(&T, type, zbuf_head(&req), zbuf_len(&req), 1, &who, &o);
	zbuf_free(&req);
	return rc;
}

Test(acl, reads_check_read_and_getacl_hides_hashes, .init = setup, .fini = teardown, .timeout = 10)
{
	struct auth_ids ip, alice;
	cr_assert_eq(auth_ids_init(&ip), 0);
	cr_assert_eq(auth_ids_init(&alice), 0);
	t_auth_add(&ip, "ip", "127.0.0.1");
	t_auth_add_digest(&alice, "alice:pw");
	struct t_acl_ent w[] = { { ZPERM_WRITE, "world", "anyone" } };
	struct t_acl_ent r[] = { { ZPERM_READ, "world", "anyone" },
				 { ZPERM_ALL, "digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=" } };
	cr_assert_eq(create("/w", w, 1, NULL, true), ZOK);
	cr_assert_eq(create("/r", r, 2, NULL, true), ZOK);
	struct zbuf resp;
	static const int32_t need_read[] = { ZOP_GETDATA, ZOP_GETCHILDREN, ZOP_GETCHILDREN2, ZOP_GETACL };
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(read_op(need_read[i], "/w", &ip, &resp), ZNOAUTH, "op %d", need_read[i]);
		cr_assert_eq(zbuf_len(&resp), 0);
		zbuf_free(&resp);
		cr_assert_eq(read_op(need_read[i], "/missing", &ip, &resp), ZNONODE, "NoNode first");
		zbuf_free(&resp);
	}
	cr_assert_eq(read_op(ZOP_EXISTS, "/w", &ip, &resp), ZOK, "exists checks nothing");
	zbuf_free(&resp);
	cr_assert_eq(read_op(ZOP_SYNC, "/w", &ip, &resp), ZOK);
	zbuf_free(&resp);
	/* READ without ADMIN: the hash is hidden; alice (ADMIN) sees it. */
	cr_assert_eq(read_op(ZOP_GETACL, "/r", &ip, &resp), ZOK);
	struct jute_in in;
	jin_init(&in, zbuf_head(&resp), zbuf_len(&resp));
	cr_assert_eq(jin_vec(&in, 10), 2);
	int32_t il, skip;
	jin_i32(&in); /* world:anyone, then the digest entry */
	jin_buf(&in, &skip);
	jin_buf(&in, &skip);
	jin_i32(&in);
	jin_buf(&in, &skip);
	const uint8_t *id = jin_buf(&in, &il);
	cr_assert_eq(il, 7);
	cr_assert_arr_eq(id, "alice:x", 7);
	zbuf_free(&resp);
	cr_assert_eq(read_op(ZOP_GETACL, "/r", &alice, &resp), ZOK);
	cr_assert(memmem(zbuf_head(&resp), zbuf_len(&resp), "alice:V55/", 10) != NULL);
	zbuf_free(&resp);
	auth_ids_free(&ip);
	auth_ids_free(&alice);
}
