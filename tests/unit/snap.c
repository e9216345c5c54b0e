/* Proves a snapshot written by snap_write is ZooKeeper's FileSnap format and loads back into
 * an identical tree (every node's path, data, null-ness, stored stat and ACL; sessions;
 * counters), that any flipped byte, truncation or out-of-order node is refused naming the file
 * and offset, and that a failed write leaves neither the snapshot nor its temporary file. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/jute.h"
#include "net/proto.h"
#include "snap/snap.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "wal/wal.h"
#include "tests/unit/support/support.h"

static char dir[64];

/* ---- ACLs and txns built by hand ---- */

static struct zbuf acl_buf[4];
static const struct t_acl_ent acl_digest[] = { { 31, "digest", "bob:BfMrd0oNc4qeFXtlvRRdH2AHh6E=" } };
static const struct t_acl_ent acl_two[] = { { 1, "world", "anyone" }, { 31, "ip", "10.0.0.0/8" } };
static const struct t_acl_ent acl_auth[] = { { 3, "auth", "" }, { 16, "sasl", "svc@REALM" },
					     { 8, "x509", "CN=a" } };
static const struct t_acl_ent acl_none[1];

#define ACL_OPEN (-1)
#define ACL_DIGEST 0
#define ACL_TWO 1
#define ACL_AUTH 2
#define ACL_EMPTY 3 /* a vector with no entry: nobody may do anything */

static void acl_of(int which, const uint8_t **p, size_t *len)
{
	if (which == ACL_OPEN) {
		*p = tree_acl_open;
		*len = tree_acl_open_len;
		return;
	}
	*p = zbuf_head(&acl_buf[which]);
	*len = zbuf_len(&acl_buf[which]);
}

static struct tree A, B;
static struct zbuf scratch;
static int64_t Z; /* the last zxid used */

static void begin(struct jute_out *o, int64_t client, int32_t type)
{
	int64_t zxid = ++Z;
	struct txn_hdr h = { client, (int32_t)zxid, zxid, 1700000000000LL + zxid * 1000, type };
	t_txn_begin(o, &scratch, &h);
}

static void apply_scratch(struct tree *t, int want)
{
	struct tree_result res;
	int rc = t_apply(t, &scratch, &res);
	cr_assert_eq(rc, want, "txn 0x%llx: %d", (unsigned long long)Z, rc);
}

/* Create with the parent's next cversion, as the leader would. */
static void create(struct tree *t, int64_t owner, const char *path, const void *data, int32_t dlen,
		   int acl, bool eph)
{
	int32_t cversion = t_parent(t, path)->stat.cversion;
	const uint8_t *ab;
	size_t al;
	acl_of(acl, &ab, &al);
	struct jute_out o;
	begin(&o, owner, ZOP_CREATE);
	t_txn_create(&o, path, data, dlen, ab, al, eph, cversion + 1);
	t_jout_done(&o);
	apply_scratch(t, ZOK);
}

static void set_data(struct tree *t, const char *path, const void *data, int32_t dlen)
{
	struct tree_node *n = tree_lookup(t, path, strlen(path));
	cr_assert_not_null(n, "%s", path);
	struct jute_out o;
	begin(&o, 0x77, ZOP_SETDATA);
	t_txn_setdata(&o, path, data, dlen, n->stat.version + 1);
	t_jout_done(&o);
	apply_scratch(t, ZOK);
}

static void delete(struct tree *t, const char *path)
{
	struct jute_out o;
	begin(&o, 0x77, ZOP_DELETE);
	jout_str(&o, path);
	t_jout_done(&o);
	apply_scratch(t, ZOK);
}

/* Sequential: the name carries the parent's cversion, as ZooKeeper makes it. */
static void create_seq(struct tree *t, int64_t owner, const char *prefix, const char *data, bool eph)
{
	char path[256];
	t_seq_name(t, prefix, path, sizeof path);
	create(t, owner, path, data, (int32_t)strlen(data), ACL_OPEN, eph);
}

static const struct snap_session sessions[] = {
	{ 0x1000001, 5000 }, { 0x1000002, 6000 }, { 0x1000003, 30000 }, { 0x7fffffffffff0004LL, 4000 },
};
#define NSESSIONS (sizeof sessions / sizeof sessions[0])

static uint8_t *big;
#define BIG_LEN (300 << 10) /* more than the writer's 256 KiB flush step */

/* A tree with every kind of node the format carries. */
static void build(struct tree *t)
{
	static const char nul_data[] = { 'a', 0, 'b', 0, 0, 'c' };
	create(t, 0x55, "/app", "hello", 5, ACL_OPEN, false);
	create(t, 0x55, "/app/cfg", nul_data, sizeof nul_data, ACL_DIGEST, false);
	create(t, 0x55, "/app/null", NULL, -1, ACL_TWO, false);
	create(t, 0x55, "/app/empty", "", 0, ACL_AUTH, false);
	create(t, 0x55, "/app/locked", "x", 1, ACL_EMPTY, false);
	create(t, 0x55, "/app/cfg/deep", "d", 1, ACL_DIGEST, false);
	create(t, 0x55, "/app/cfg/deep/er", big, BIG_LEN, ACL_OPEN, false);
	create(t, 0x55, "/locks", NULL, -1, ACL_OPEN, false);
	for (int i = 0; i < 6; i++)
		create_seq(t, sessions[i % 3].id, "/locks/lock-", "me", true);
	create_seq(t, 0, "/locks/plain-", "p", false);
	set_data(t, "/app", "hello, again", 12);
	set_data(t, "/app/null", NULL, -1); /* still null, version 1 */
	set_data(t, "/app/empty", nul_data, 2);
	delete(t, "/locks/lock-0000000001");
	delete(t, "/locks/lock-0000000004");
	create(t, sessions[2].id, "/eph", "e", 1, ACL_AUTH, true);
	create(t, 0x55, "/many", "", 0, ACL_OPEN, false);
	char path[64];
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof path, "/many/c%d", i);
		create(t, 0x55, path, path, (int32_t)strlen(path), i % 2 ? ACL_OPEN : ACL_TWO, false);
	}
	for (int i = 0; i < 200; i += 3) {
		snprintf(path, sizeof path, "/many/c%d", i);
		delete(t, path);
	}
	/* Create, delete, create again: the second one's stat is what counts. */
	create(t, 0x55, "/again", "1", 1, ACL_OPEN, false);
	delete(t, "/again");
	create(t, 0x56, "/again", "2", 1, ACL_DIGEST, false);
}

static void setup(void)
{
	t_tmpdir(dir, sizeof dir, "snap");
	t_acl_build(&acl_buf[ACL_DIGEST], acl_digest, 1);
	t_acl_build(&acl_buf[ACL_TWO], acl_two, 2);
	t_acl_build(&acl_buf[ACL_AUTH], acl_auth, 3);
	t_acl_build(&acl_buf[ACL_EMPTY], acl_none, 0);
	zbuf_init(&scratch, 1 << 22);
	big = malloc(BIG_LEN);
	cr_assert_not_null(big);
	for (size_t i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i * 31 + (i >> 9));
	Z = 0x100000000LL;
	cr_assert_eq(tree_init(&A, NULL, NULL), 0);
	cr_assert_eq(tree_init(&B, NULL, NULL), 0);
}

static void teardown(void)
{
	tree_free(&A);
	tree_free(&B);
	zbuf_free(&scratch);
	for (int i = 0; i < 4; i++)
		zbuf_free(&acl_buf[i]);
	free(big);
	t_rm_tree(dir);
}

/* Every node's path, stored stat, data and ACL, plus the counters; not the last zxid, which
 * a loaded snapshot does not carry. */
static void assert_same_tree(const struct tree *a, const struct tree *b) { t_assert_same_tree(a, b, 0, "snapshot"); }

/* ---- sessions seen by the loader ---- */

static struct snap_session got[16];
static size_t ngot;

static int on_session(void *ctx, int64_t id, int32_t timeout_ms)
{
	cr_assert_eq(ctx, &ngot);
	cr_assert_lt(ngot, 16);
	got[ngot++] = (struct snap_session){ id, timeout_ms };
	return 0;
}

static void write_snap(int64_t zxid, char *path, size_t cap)
{
	char err[512] = "";
	cr_assert_eq(snap_write(&zk_fileops_posix, dir, zxid, &A, sessions, NSESSIONS, err, sizeof err), 0,
		     "%s", err);
	wal_file_name(path, cap, dir, "snapshot", zxid);
}

/* ---- round trip ---- */

Test(snap, round_trip_keeps_every_node_session_and_counter, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	cr_assert_gt(A.eph_count, 3);
	cr_assert_geq(A.acls.count, 5);
	char path[256], err[512] = "";
	write_snap(Z, path, sizeof path);
	cr_assert_eq(t_count_files(dir), 1, "only snapshot.<zxid>: no temporary file is left");
	char want[64];
	snprintf(want, sizeof want, "snapshot.%llx", (unsigned long long)Z);
	cr_assert_not_null(strstr(path, want));
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, on_session, &ngot, err, sizeof err), 0, "%s", err);
	assert_same_tree(&A, &B);
	cr_assert_eq(ngot, NSESSIONS);
	for (size_t i = 0; i < NSESSIONS; i++) {
		cr_assert_eq(got[i].id, sessions[i].id);
		cr_assert_eq(got[i].timeout_ms, sessions[i].timeout_ms);
	}
	/* Spot checks the dump cannot miss silently: null vs empty, NULs, ACL bytes. */
	struct tree_node *n = tree_lookup(&B, "/app/null", 9);
	cr_assert_not_null(n);
	cr_assert_eq(n->data_len, -1);
	cr_assert_eq(n->stat.version, 1);
	n = tree_lookup(&B, "/app/cfg", 8);
	cr_assert_eq(n->data_len, 6);
	cr_assert_arr_eq(n->data, "a\0b\0\0c", 6);
	cr_assert_eq(n->acl->ent.len, zbuf_len(&acl_buf[ACL_DIGEST]));
	cr_assert_arr_eq(n->acl->bytes, zbuf_head(&acl_buf[ACL_DIGEST]), n->acl->ent.len);
	n = tree_lookup(&B, "/app/cfg/deep/er", 16);
	cr_assert_eq(n->data_len, BIG_LEN);
	cr_assert_arr_eq(n->data, big, BIG_LEN);
	n = tree_lookup(&B, "/locks/lock-0000000005", 22);
	cr_assert_not_null(n);
	cr_assert_eq(n->stat.ephemeral_owner, sessions[2].id);
	cr_assert_eq(tree_ephemerals(&B, sessions[2].id)->count, 3, "lock-2, lock-5 and /eph");
	cr_assert_null(tree_lookup(&B, "/locks/lock-0000000004", 22));
}

Test(snap, round_trip_of_a_fresh_tree_and_no_sessions, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256], err[512] = "";
	cr_assert_eq(snap_write(&zk_fileops_posix, dir, 0, &A, NULL, 0, err, sizeof err), 0, "%s", err);
	wal_file_name(path, sizeof path, dir, "snapshot", 0);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, on_session, &ngot, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ngot, 0);
	assert_same_tree(&A, &B);
}

/* ---- the bytes ---- */

struct layout {
	size_t sessions, acls, first_node, data_off[4], end_marker, checksum;
	size_t nodes;
};

/* An independent reader of the format: checks it and records where things are. */
static struct layout parse_layout(const uint8_t *p, size_t size, const struct tree *t)
{
	struct layout L = { 0 };
	struct jute_in in;
	jin_init(&in, p, size);
	cr_assert_arr_eq(p, "ZKSN", 4);
	cr_assert_eq((uint32_t)jin_i32(&in), SNAP_MAGIC);
	cr_assert_eq(jin_i32(&in), 2, "version");
	cr_assert_eq(jin_i64(&in), -1, "dbid");
	int32_t ns = jin_i32(&in);
	L.sessions = in.off;
	cr_assert_eq(ns, (int32_t)NSESSIONS);
	for (int32_t i = 0; i < ns; i++) {
		cr_assert_eq(jin_i64(&in), sessions[i].id);
		cr_assert_eq(jin_i32(&in), sessions[i].timeout_ms);
	}
	int32_t na = jin_i32(&in);
	L.acls = in.off;
	cr_assert_eq((size_t)na, t->acls.count, "the cache holds each distinct ACL once");
	int64_t idx[64];
	cr_assert_leq(na, 64);
	for (int32_t i = 0; i < na; i++) {
		idx[i] = jin_i64(&in);
		size_t len;
		int32_t cnt;
		const uint8_t *acl = txn_acl_span(&in, &len, &cnt);
		cr_assert_not_null(acl);
		cr_assert_not_null(strmap_get(&t->acls, (const char *)acl, len), "ACL %d is the tree's", i);
		for (int32_t k = 0; k < i; k++)
			cr_assert_neq(idx[k], idx[i], "ACL indexes are distinct");
	}
	L.first_node = in.off;
	char seen[512][64];
	size_t nseen = 0, ndata = 0;
	for (;;) {
		int32_t plen, dlen;
		const uint8_t *path = jin_buf(&in, &plen);
		cr_assert(jin_ok(&in));
		if (plen == 1 && path[0] == '/')
			break;
		if (nseen == 0)
			cr_assert_eq(plen, 0, "the root comes first, as \"\"");
		else
			cr_assert_gt(plen, 1, "only the root is \"\"");
		cr_assert_lt((size_t)plen, sizeof seen[0]);
		size_t dstart = in.off;
		const uint8_t *data = jin_buf(&in, &dlen);
		(void)data;
		if (dlen >= 5 && ndata < 4)
			L.data_off[ndata++] = dstart + 4 + (size_t)dlen / 2;
		int64_t ai = jin_i64(&in);
		bool known = false;
		for (int32_t k = 0; k < na; k++)
			known |= idx[k] == ai;
		cr_assert(known, "node's ACL index %lld is in the cache", (long long)ai);
		for (int f = 0; f < 9; f++)
			f < 4 || f >= 7 ? (void)jin_i64(&in) : (void)jin_i32(&in);
		cr_assert(jin_ok(&in));
		/* Pre-order: the parent came before. */
		if (nseen > 0) {
			const char *slash = memrchr(path, '/', (size_t)plen);
			size_t parent_len = (size_t)(slash - (const char *)path);
			bool found = parent_len == 0;
			for (size_t k = 0; k < nseen && !found; k++)
				found = strlen(seen[k]) == parent_len && memcmp(seen[k], path, parent_len) == 0;
			cr_assert(found, "parent of %.*s comes before it", plen, path);
		}
		cr_assert_lt(nseen, 512);
		memcpy(seen[nseen], path, (size_t)plen);
		seen[nseen++][plen] = 0;
	}
	L.nodes = nseen;
	L.end_marker = in.off - 5;
	L.checksum = in.off;
	cr_assert_eq((uint64_t)jin_i64(&in), wal_adler32(1, p, L.checksum), "Adler32 of all before it");
	int32_t len;
	const uint8_t *slash = jin_buf(&in, &len);
	cr_assert(jin_done(&in), "the file ends with the seal");
	cr_assert_eq(len, 1);
	cr_assert_eq(slash[0], '/');
	/* ZooKeeper's SnapStream.isValidSnapshot: the last 5 bytes are int 1 and '/'. */
	cr_assert_arr_eq(p + size - 5, "\0\0\0\1/", 5);
	return L;
}

Test(snap, file_is_zookeepers_format, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	char path[256];
	write_snap(Z, path, sizeof path);
	size_t size;
	uint8_t *p = t_slurp(path, &size);
	struct layout L = parse_layout(p, size, &A);
	cr_assert_eq(L.nodes, A.node_count);
	cr_assert_eq(be32_get(p + L.first_node), 0, "root path \"\"");
	free(p);
}

/* ---- corruption ---- */

static void expect_refused(const char *path, const char *what)
{
	char err[512] = "";
	struct tree t;
	cr_assert_eq(tree_init(&t, NULL, NULL), 0);
	int rc = snap_load(&zk_fileops_posix, path, &t, NULL, NULL, err, sizeof err);
	tree_free(&t);
	cr_assert_eq(rc, -EBADMSG, "%s: rc %d (%s)", what, rc, err);
	cr_assert_eq(t_leaks_now(), 0, "%s: the failed load leaked", what);
	cr_assert_not_null(strstr(err, path), "%s: the file is named: %s", what, err);
	cr_assert_not_null(strstr(err, "offset"), "%s: an offset is named: %s", what, err);
}

Test(snap, any_flipped_byte_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	char path[256];
	write_snap(Z, path, sizeof path);
	size_t size;
	uint8_t *orig = t_slurp(path, &size);
	struct layout L = parse_layout(orig, size, &A);
	const struct { size_t off; const char *what; } at[] = {
		{ 0, "magic" },
		{ 7, "version" },
		{ 12, "dbid" },
		{ L.sessions + 3, "a session id" },
		{ L.sessions + 8 + 3, "a session timeout" },
		{ L.acls + 8 + 4 + 4 + 4 + 1, "an ACL's scheme" },
		{ L.acls + 5, "an ACL index" },
		{ L.first_node + 4 + 4 + 7, "the root's ACL index" },
		{ L.first_node + 4 + 4 + 8 + 20, "the root's stat" },
		{ L.data_off[0], "a node's data" },
		{ L.data_off[1], "another node's data" },
		{ L.end_marker + 4, "the end of the node list" },
		{ L.checksum, "the checksum" },
		{ L.checksum + 7, "the checksum's last byte" },
		{ size - 1, "the seal" },
	};
	cr_assert_gt(L.data_off[1], 0);
	uint8_t *p = malloc(size);
	cr_assert_not_null(p);
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		memcpy(p, orig, size);
		p[at[i].off] ^= 0x10;
		t_spit(path, p, size);
		expect_refused(path, at[i].what);
	}
	/* Unflipped, it still loads: the failures above were the flips. */
	t_spit(path, orig, size);
	char err[512];
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, NULL, NULL, err, sizeof err), 0, "%s", err);
	free(p);
	free(orig);
}

Test(snap, truncated_file_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	char path[256];
	write_snap(Z, path, sizeof path);
	size_t size;
	uint8_t *orig = t_slurp(path, &size);
	struct layout L = parse_layout(orig, size, &A);
	const size_t cut[] = { 0, 3, 9, 16, 20, L.acls + 10, L.first_node + 2, L.data_off[0], size / 2,
			       L.end_marker, L.checksum, L.checksum + 4, size - 5, size - 1 };
	for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
		t_spit(path, orig, cut[i]);
		char what[32];
		snprintf(what, sizeof what, "cut at %zu of %zu", cut[i], size);
		struct tree t;
		char err[512] = "";
		cr_assert_eq(tree_init(&t, NULL, NULL), 0);
		int rc = snap_load(&zk_fileops_posix, path, &t, NULL, NULL, err, sizeof err);
		tree_free(&t);
		cr_assert_eq(rc, -EBADMSG, "%s: rc %d (%s)", what, rc, err);
		cr_assert_not_null(strstr(err, path), "%s: %s", what, err);
	}
	free(orig);
}

Test(snap, missing_file_is_an_error, .init = setup, .fini = teardown, .timeout = 10)
{
	char path[256], err[512] = "";
	wal_file_name(path, sizeof path, dir, "snapshot", 5);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, NULL, NULL, err, sizeof err), -ENOENT);
	cr_assert_not_null(strstr(err, path), "%s", err);
}

/* ---- hand-made snapshots ---- */

struct node_spec {
	const char *path;
	const char *data;
	int64_t acl_index;
	int64_t czxid;
};

/* Write a snapshot with the given ACL cache (open ACL at index 1, a duplicate list allowed)
 * and nodes in the given order, sealed with a correct checksum, plus optional trailing bytes. */
static void craft(const char *path, const int64_t *acl_idx, size_t nacl, const struct node_spec *nodes,
		  size_t n, const uint8_t *trail, size_t ntrail)
{
	struct zbuf b;
	struct jute_out o;
	zbuf_init(&b, 1 << 20);
	jout_init(&o, &b);
	jout_i32(&o, SNAP_MAGIC);
	jout_i32(&o, 2);
	jout_i64(&o, -1);
	jout_i32(&o, 1);
	jout_i64(&o, 0x42);
	jout_i32(&o, 9000);
	jout_i32(&o, (int32_t)nacl);
	for (size_t i = 0; i < nacl; i++) {
		jout_i64(&o, acl_idx[i]);
		if (i == 0)
			jout_raw(&o, tree_acl_open, tree_acl_open_len);
		else
			jout_raw(&o, zbuf_head(&acl_buf[ACL_DIGEST]), zbuf_len(&acl_buf[ACL_DIGEST]));
	}
	for (size_t i = 0; i < n; i++) {
		jout_str(&o, nodes[i].path);
		jout_str(&o, nodes[i].data);
		jout_i64(&o, nodes[i].acl_index);
		struct tree_stat st = { .czxid = nodes[i].czxid, .mzxid = nodes[i].czxid, .pzxid = nodes[i].czxid };
		jout_i64(&o, st.czxid);
		jout_i64(&o, st.mzxid);
		jout_i64(&o, st.ctime);
		jout_i64(&o, st.mtime);
		jout_i32(&o, st.version);
		jout_i32(&o, st.cversion);
		jout_i32(&o, st.aversion);
		jout_i64(&o, st.ephemeral_owner);
		jout_i64(&o, st.pzxid);
	}
	jout_str(&o, "/");
	jout_i64(&o, (int64_t)wal_adler32(1, zbuf_head(&b), zbuf_len(&b)));
	jout_str(&o, "/");
	jout_raw(&o, trail, ntrail);
	cr_assert_eq(o.err, 0);
	t_spit(path, zbuf_head(&b), zbuf_len(&b));
	zbuf_free(&b);
}

Test(snap, hand_made_snapshot_in_pre_order_loads, .init = setup, .fini = teardown, .timeout = 10)
{
	static const int64_t idx[] = { 1, 2 };
	static const struct node_spec nodes[] = {
		{ "", "", 1, 0 }, { "/zookeeper", "", 1, 0 }, { "/a", "A", -1, 5 }, { "/a/b", NULL, 2, 6 },
	};
	/* ZooKeeper 3.6+ appends a digest and a second seal; the loader ignores them. */
	uint8_t trail[12 + 8 + 5] = { 0 };
	be32_put(trail + 20, 1);
	trail[24] = '/';
	char path[256], err[512] = "";
	wal_file_name(path, sizeof path, dir, "snapshot", 6);
	craft(path, idx, 2, nodes, 4, trail, sizeof trail);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, on_session, &ngot, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ngot, 1);
	cr_assert_eq(got[0].id, 0x42);
	struct tree_node *a = tree_lookup(&B, "/a", 2), *ab = tree_lookup(&B, "/a/b", 4);
	cr_assert_not_null(a);
	cr_assert_not_null(ab);
	cr_assert_eq(a->data_len, 1);
	cr_assert_eq(ab->data_len, -1);
	cr_assert_eq(ab->stat.czxid, 6);
	cr_assert_arr_eq(a->acl->bytes, tree_acl_open, tree_acl_open_len, "index -1 is the open ACL");
	cr_assert_arr_eq(ab->acl->bytes, zbuf_head(&acl_buf[ACL_DIGEST]), zbuf_len(&acl_buf[ACL_DIGEST]));
	cr_assert_not_null(tree_lookup(&B, "/zookeeper/config", 17), "nodes the snapshot lacks stay");
}

Test(snap, node_whose_parent_comes_later_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	static const int64_t idx[] = { 1 };
	static const struct node_spec nodes[] = {
		{ "", "", 1, 0 }, { "/a/b", "B", 1, 6 }, { "/a", "A", 1, 5 },
	};
	char path[256];
	wal_file_name(path, sizeof path, dir, "snapshot", 6);
	craft(path, idx, 1, nodes, 3, NULL, 0);
	expect_refused(path, "child before parent");
}

Test(snap, node_with_an_unknown_acl_index_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	static const int64_t idx[] = { 1 };
	static const struct node_spec nodes[] = { { "", "", 1, 0 }, { "/a", "A", 7, 5 } };
	char path[256];
	wal_file_name(path, sizeof path, dir, "snapshot", 6);
	craft(path, idx, 1, nodes, 2, NULL, 0);
	expect_refused(path, "unknown ACL index");
}

/* Regression (fixed): snap/snap.c read_acls() stores each cache entry with u64map_put, which replaces an
 * entry of the same index without freeing the acl_span malloc'd for it: every duplicate index
 * in a snapshot leaks 16 bytes. Fails only under ASan (the leak check at the end). */
Test(snap, duplicate_acl_index_keeps_the_later_list, .init = setup, .fini = teardown, .timeout = 10)
{
	/* ZooKeeper's ReferenceCountedACLCache.deserialize puts each entry in a map: a repeated
	 * index replaces the earlier list. */
	static const int64_t idx[] = { 1, 1 };
	static const struct node_spec nodes[] = { { "", "", 1, 0 }, { "/a", "A", 1, 5 } };
	char path[256], err[512] = "";
	wal_file_name(path, sizeof path, dir, "snapshot", 6);
	craft(path, idx, 2, nodes, 2, NULL, 0);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, NULL, NULL, err, sizeof err), 0, "%s", err);
	struct tree_node *a = tree_lookup(&B, "/a", 2);
	cr_assert_not_null(a);
	cr_assert_arr_eq(a->acl->bytes, zbuf_head(&acl_buf[ACL_DIGEST]), zbuf_len(&acl_buf[ACL_DIGEST]));
	cr_assert_eq(t_leaks_now(), 0, "the replaced ACL list leaked");
}

/* Regression (fuzz_snapshot, tests/fuzz/regressions/snapshot-acl-dup-bad-double-free.bin):
 * an index repeated by a malformed second entry freed the first entry while the map still
 * held it, so cleanup freed it twice. Now the load fails cleanly (ASan aborts on a double
 * free). */
Test(snap, repeated_acl_index_with_a_bad_entry_fails_cleanly, .timeout = 10)
{
	char dir2[] = "/tmp/zkd-snap-dup-XXXXXX";
	cr_assert_not_null(mkdtemp(dir2));
	char path[256], err[512] = "";
	snprintf(path, sizeof path, "%s/snapshot.1", dir2);
	static const uint8_t bytes[] = {
		0x5A, 0x4B, 0x53, 0x4E, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 0,                       /* no sessions */
		0, 0, 0, 2,                       /* two ACL cache entries */
		0, 0, 0, 0, 0, 0, 0, 1,           /* index 1: world:anyone ALL */
		0, 0, 0, 1, 0, 0, 0, 31, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd', 0, 0, 0, 6,
		'a', 'n', 'y', 'o', 'n', 'e',
		0, 0, 0, 0, 0, 0, 0, 1,           /* index 1 again: a vector cut short */
		0, 0, 0, 9, 0, 0, 0, 31,
	};
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(bytes, 1, sizeof bytes, f), sizeof bytes);
	fclose(f);
	struct tree t;
	cr_assert_eq(tree_init(&t, NULL, NULL), 0);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &t, NULL, NULL, err, sizeof err), -EBADMSG);
	cr_assert(strstr(err, path) && strstr(err, "offset"), "%s", err);
	tree_free(&t);
	unlink(path);
	rmdir(dir2);
}

/* ---- failed writes ---- */

static int fail_rename_errno, fail_fsync_at, fail_pwrite_at, n_fsync, n_pwrite, n_rename;

static int t_rename(const char *from, const char *to)
{
	n_rename++;
	if (fail_rename_errno) {
		errno = fail_rename_errno;
		return -1;
	}
	return rename(from, to);
}

static int t_fsync(int fd)
{
	if (++n_fsync == fail_fsync_at) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static ssize_t t_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (++n_pwrite >= fail_pwrite_at && fail_pwrite_at) {
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

static struct zk_fileops failing_ops(void)
{
	struct zk_fileops o = zk_fileops_posix;
	o.rename = t_rename;
	o.fsync = t_fsync;
	o.pwrite = t_pwrite;
	return o;
}

static void expect_write_fails(int want)
{
	build(&A);
	struct zk_fileops o = failing_ops();
	char err[512] = "";
	int rc = snap_write(&o, dir, Z, &A, sessions, NSESSIONS, err, sizeof err);
	cr_assert_eq(rc, want, "rc %d: %s", rc, err);
	cr_assert_neq(err[0], 0, "the error is described");
	cr_assert_not_null(strstr(err, "snapshot"), "%s", err);
	cr_assert_eq(t_count_files(dir), 0, "neither snapshot.<zxid> nor a temporary file is left");
}

Test(snap, failed_rename_leaves_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	fail_rename_errno = EIO;
	expect_write_fails(-EIO);
	cr_assert_eq(n_rename, 1);
}

Test(snap, enospc_on_the_first_write_leaves_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	fail_pwrite_at = 1;
	expect_write_fails(-ENOSPC);
	cr_assert_eq(n_rename, 0, "a failed snapshot is never renamed into place");
}

Test(snap, enospc_midway_leaves_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	fail_pwrite_at = 2; /* the big node makes the writer flush more than once */
	expect_write_fails(-ENOSPC);
	cr_assert_eq(n_rename, 0);
}

Test(snap, failed_fsync_leaves_nothing, .init = setup, .fini = teardown, .timeout = 10)
{
	fail_fsync_at = 1;
	expect_write_fails(-EIO);
	cr_assert_eq(n_rename, 0, "an unsynced snapshot is never renamed into place");
}

Test(snap, failed_write_keeps_an_older_snapshot, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	char path[256], err[512] = "";
	write_snap(5, path, sizeof path);
	struct zk_fileops o = failing_ops();
	fail_pwrite_at = 1;
	cr_assert_eq(snap_write(&o, dir, Z, &A, sessions, NSESSIONS, err, sizeof err), -ENOSPC);
	cr_assert_eq(t_count_files(dir), 1);
	cr_assert_eq(snap_load(&zk_fileops_posix, path, &B, NULL, NULL, err, sizeof err), 0, "%s", err);
}

/* ---- the SNAP stream (LearnerHandler's serializeSnapshot + "BenWasHere") ---- */

/* A tree with every ACL kind, sessions' ephemerals, nulls and deletes, but small, so every
 * cut point of its stream can be tried. */
static void build_small(struct tree *t)
{
	create(t, 0x55, "/app", "hello", 5, ACL_OPEN, false);
	create(t, 0x55, "/app/cfg", "c\0fg", 4, ACL_DIGEST, false);
	create(t, 0x55, "/app/null", NULL, -1, ACL_TWO, false);
	create(t, 0x55, "/app/empty", "", 0, ACL_AUTH, false);
	create(t, 0x55, "/app/locked", "x", 1, ACL_EMPTY, false);
	create(t, sessions[1].id, "/app/eph", "e", 1, ACL_OPEN, true);
	create(t, 0x55, "/q", "", 0, ACL_OPEN, false);
	create_seq(t, sessions[0].id, "/q/n-", "a", true);
	create_seq(t, 0, "/q/n-", "b", false);
	delete(t, "/q/n-0000000000");
	set_data(t, "/app", "again", 5);
}

static void stream_of(struct tree *t, struct zbuf *out)
{
	zbuf_init(out, 64u << 20);
	cr_assert_eq(snap_stream_write(out, t, sessions, NSESSIONS), 0);
}

static void assert_sessions_all_got(void)
{
	cr_assert_eq(ngot, NSESSIONS);
	for (size_t i = 0; i < NSESSIONS; i++)
		cr_assert(got[i].id == sessions[i].id && got[i].timeout_ms == sessions[i].timeout_ms, "%zu", i);
}

/* Apache's learner reads what its leader's serializeSnapshot wrote, which is the snapshot
 * file's body: the stream must be the file's bytes between header and seal, then the
 * signature. */
Test(snap, stream_is_the_file_body_then_the_signature, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	char path[256];
	write_snap(Z, path, sizeof path);
	size_t size;
	uint8_t *file = t_slurp(path, &size);
	struct zbuf s;
	stream_of(&A, &s);
	size_t body = size - 16 - 13; /* header; seal = long adler32 + ustring "/" */
	cr_assert_eq(zbuf_len(&s), body + 4 + 10);
	cr_assert_arr_eq(zbuf_head(&s), file + 16, body);
	cr_assert_arr_eq(zbuf_head(&s) + body, "\0\0\0\x0a" "BenWasHere", 14);
	free(file);
	zbuf_free(&s);
}

Test(snap, stream_round_trip_keeps_every_node_and_session, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	struct zbuf s;
	stream_of(&A, &s);
	size_t len = zbuf_len(&s);
	/* The next QuorumPacket (NEWLEADER) follows in the same buffer: not the stream's. */
	cr_assert_eq(zbuf_append(&s, "\0\0\0\x0a\0\0\0\x0a", 8), 0);
	size_t used = 0;
	char err[256] = "";
	cr_assert_eq(snap_stream_read(zbuf_head(&s), zbuf_len(&s), &B, on_session, &ngot, &used, err,
				      sizeof err), 0, "%s", err);
	cr_assert_eq(used, len);
	assert_same_tree(&A, &B);
	assert_sessions_all_got();
	struct snap_scan sc = { 0 };
	size_t end = 0;
	cr_assert_eq(snap_stream_scan(&sc, zbuf_head(&s), zbuf_len(&s), &end), 0);
	cr_assert_eq(end, len, "the scanner finds the same end");
	zbuf_free(&s);
}

Test(snap, stream_of_a_fresh_tree_without_sessions, .init = setup, .fini = teardown, .timeout = 10)
{
	struct zbuf s;
	zbuf_init(&s, 1024);
	cr_assert_eq(snap_stream_write(&s, &A, NULL, 0), 0);
	size_t used;
	char err[256];
	cr_assert_eq(snap_stream_read(zbuf_head(&s), zbuf_len(&s), &B, on_session, &ngot, &used, err,
				      sizeof err), 0, "%s", err);
	cr_assert_eq(used, zbuf_len(&s));
	cr_assert_eq(ngot, 0);
	assert_same_tree(&A, &B);
	zbuf_free(&s);
}

/* Bytes arrive in pieces: every prefix short of the signature's last byte is -EAGAIN, hands
 * no session over and leaks nothing; the scanner, fed the same growing prefix, agrees. */
Test(snap, stream_cut_anywhere_is_eagain, .init = setup, .fini = teardown, .timeout = 60)
{
	build_small(&A);
	struct zbuf s;
	stream_of(&A, &s);
	const uint8_t *p = zbuf_head(&s);
	size_t len = zbuf_len(&s);
	struct snap_scan grow = { 0 };
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *part = t_exact_copy(p, cut); /* ASan sees any read past the cut */
		struct tree t;
		cr_assert_eq(tree_init(&t, NULL, NULL), 0);
		size_t used = 12345, end = 0;
		char err[256] = "";
		int rc = snap_stream_read(part, cut, &t, on_session, &ngot, &used, err, sizeof err);
		cr_assert_eq(rc, -EAGAIN, "cut at %zu: %d (%s)", cut, rc, err);
		cr_assert_eq(used, 12345, "cut at %zu", cut);
		cr_assert_eq(ngot, 0, "cut at %zu: no session before the stream is whole", cut);
		cr_assert_eq(snap_stream_scan(&grow, part, cut, &end), -EAGAIN, "scan, cut at %zu", cut);
		struct snap_scan fresh = { 0 };
		cr_assert_eq(snap_stream_scan(&fresh, part, cut, &end), -EAGAIN, "fresh scan, cut at %zu", cut);
		tree_free(&t);
		free(part);
	}
	cr_assert_eq(t_leaks_now(), 0);
	size_t end = 0, used = 0;
	cr_assert_eq(snap_stream_scan(&grow, p, len, &end), 0);
	cr_assert_eq(end, len);
	char err[256];
	cr_assert_eq(snap_stream_read(p, len, &B, on_session, &ngot, &used, err, sizeof err), 0, "%s", err);
	cr_assert_eq(used, len);
	assert_same_tree(&A, &B);
	assert_sessions_all_got();
	zbuf_free(&s);
}

static int stream_rc(const uint8_t *p, size_t len, char *err, size_t cap)
{
	struct tree t;
	cr_assert_eq(tree_init(&t, NULL, NULL), 0);
	size_t used;
	int rc = snap_stream_read(p, len, &t, NULL, NULL, &used, err, cap);
	tree_free(&t);
	return rc;
}

Test(snap, stream_with_a_wrong_signature_or_bad_counts_is_refused, .init = setup, .fini = teardown,
     .timeout = 10)
{
	build_small(&A);
	struct zbuf s;
	stream_of(&A, &s);
	uint8_t *p = zbuf_head(&s);
	size_t len = zbuf_len(&s), end;
	char err[256];
	struct { size_t off; uint8_t mask; const char *what; } bad[] = {
		{ len - 1, 0x01, "the signature's last letter" },
		{ len - 11, 0x01, "the signature's length" },
		{ 0, 0x80, "a negative session count" },
		{ 4 + 12 * NSESSIONS, 0x80, "a negative ACL count" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p[bad[i].off] ^= bad[i].mask;
		err[0] = 0;
		cr_assert_eq(stream_rc(p, len, err, sizeof err), -EBADMSG, "%s", bad[i].what);
		cr_assert_not_null(strstr(err, "offset"), "%s: %s", bad[i].what, err);
		struct snap_scan sc = { 0 };
		cr_assert_eq(snap_stream_scan(&sc, p, len, &end), -EBADMSG, "scan: %s", bad[i].what);
		p[bad[i].off] ^= bad[i].mask;
	}
	/* A snapshot file is no stream: its magic reads as 1.5 billion sessions, so the reader
	 * waits for bytes the caller's bound will never let in. */
	char path[256];
	write_snap(Z, path, sizeof path);
	size_t size;
	uint8_t *file = t_slurp(path, &size);
	cr_assert_eq(stream_rc(file, size, err, sizeof err), -EAGAIN);
	free(file);
	cr_assert_eq(stream_rc(p, len, err, sizeof err), 0, "%s", err);
	zbuf_free(&s);
}

/* Node records the loader refuses in a file are refused in a stream too. */
/* A hand-made stream: no session, no ACL, nodes of these paths (open ACL, data "d"). */
static void node_stream(struct zbuf *b, const char *const *paths, int n)
{
	struct jute_out o;
	zbuf_init(b, 4096);
	t_jout_begin(&o, b);
	jout_i32(&o, 0);
	jout_i32(&o, 0);
	for (int i = 0; i < n; i++) {
		jout_str(&o, paths[i]);
		jout_buf(&o, "d", 1);
		jout_i64(&o, -1);
		for (int f = 0; f < 9; f++)
			f < 4 || f >= 7 ? jout_i64(&o, 1) : jout_i32(&o, 0);
	}
	jout_str(&o, "/");
	jout_str(&o, "BenWasHere");
	t_jout_done(&o);
}

Test(snap, stream_node_before_its_parent_is_refused, .init = setup, .fini = teardown, .timeout = 10)
{
	struct zbuf b;
	node_stream(&b, (const char *const[]){ "", "/a/b", "/a" }, 3);
	char err[256] = "";
	cr_assert_eq(stream_rc(zbuf_head(&b), zbuf_len(&b), err, sizeof err), -EBADMSG);
	cr_assert_not_null(strstr(err, "parent"), "%s", err);
	size_t end;
	struct snap_scan sc = { 0 };
	cr_assert_eq(snap_stream_scan(&sc, zbuf_head(&b), zbuf_len(&b), &end), 0,
		     "the scanner checks structure only");
	cr_assert_eq(end, zbuf_len(&b));
	zbuf_free(&b);
}

Test(snap, stream_past_the_buffer_bound_leaves_it_unchanged, .init = setup, .fini = teardown,
     .timeout = 10)
{
	build(&A);
	struct zbuf s;
	zbuf_init(&s, 64 << 10); /* less than the 300 KiB node */
	cr_assert_eq(zbuf_append(&s, "SNAP", 4), 0);
	cr_assert_eq(snap_stream_write(&s, &A, sessions, NSESSIONS), -ENOBUFS);
	cr_assert_eq(zbuf_len(&s), 4);
	cr_assert_arr_eq(zbuf_head(&s), "SNAP", 4);
	zbuf_free(&s);
}

/* ---- the stream in pieces: a sink on the leader's side, a spool on the learner's ---- */

struct pieces {
	struct zbuf all;
	size_t n, max;
	int fail_at; /* the sink fails on this call (1-based), when set */
};

static int to_pieces(void *ctx, const uint8_t *p, size_t n)
{
	struct pieces *s = ctx;
	if (++s->n == (size_t)s->fail_at)
		return -EPIPE;
	s->max = n > s->max ? n : s->max;
	cr_assert_eq(zbuf_append(&s->all, p, n), 0);
	return 0;
}

Test(snap, stream_emitted_in_pieces_is_the_same_bytes, .init = setup, .fini = teardown, .timeout = 10)
{
	build(&A);
	create(&A, 0x55, "/more", big, BIG_LEN, ACL_OPEN, false);
	struct zbuf s;
	stream_of(&A, &s);
	struct pieces p = { .n = 0 };
	zbuf_init(&p.all, 64u << 20);
	cr_assert_eq(snap_stream_emit(&A, sessions, NSESSIONS, to_pieces, &p), 0);
	cr_assert_eq(zbuf_len(&p.all), zbuf_len(&s));
	cr_assert_arr_eq(zbuf_head(&p.all), zbuf_head(&s), zbuf_len(&s));
	cr_assert_geq(p.n, 3, "%zu pieces", p.n);
	cr_assert_lt(p.max, (256u << 10) + BIG_LEN + 4096, "a piece is 256 KiB or one node more");
	struct pieces f = { .fail_at = 2 };
	zbuf_init(&f.all, 64u << 20);
	cr_assert_eq(snap_stream_emit(&A, sessions, NSESSIONS, to_pieces, &f), -EPIPE);
	cr_assert_eq(f.n, 2, "nothing is sent after the sink failed");
	zbuf_free(&f.all);
	zbuf_free(&p.all);
	zbuf_free(&s);
}

/* Bytes arrive in pieces of `step` into a receive buffer that keeps only what the spool has
 * not consumed; the next packet follows the stream. Returns the spool's last result. */
static int spool_stream(const uint8_t *p, size_t len, size_t step, int64_t zxid, size_t *rest)
{
	struct snap_spool sp;
	char err[512] = "";
	cr_assert_eq(snap_spool_open(&sp, &zk_fileops_posix, dir, zxid, err, sizeof err), 0, "%s", err);
	size_t start = 0, have = 0, used = 0, biggest = 0;
	int rc = -EAGAIN;
	while (rc == -EAGAIN && have < len) {
		have = have + step < len ? have + step : len;
		biggest = have - start > biggest ? have - start : biggest;
		rc = snap_spool_feed(&sp, p + start, have - start, &used);
		cr_assert(rc == 0 || rc == -EAGAIN || rc == -EBADMSG, "%d", rc);
		cr_assert_leq(used, have - start);
		start += rc == -EBADMSG ? 0 : used;
	}
	*rest = len - start;
	if (rc == 0) {
		rc = snap_spool_finish(&sp, &B, on_session, &ngot, err, sizeof err);
		cr_assert(rc == 0 || strstr(err, "offset"), "%s", err);
	} else {
		snap_spool_abort(&sp);
	}
	cr_assert_lt(biggest, BIG_LEN + 2 * step + 4096, "the buffer held about one node at most");
	return rc;
}

Test(snap, spooled_stream_is_the_snapshot_file, .init = setup, .fini = teardown, .timeout = 30)
{
	build(&A);
	struct zbuf s;
	stream_of(&A, &s);
	size_t len = zbuf_len(&s);
	cr_assert_eq(zbuf_append(&s, "NEWLEADER", 9), 0); /* the next packet, in the same reads */
	static const size_t steps[] = { 1000, 4096, 65536, 1 << 20 };
	char want[256], got_path[256];
	write_snap(Z + 1, want, sizeof want);
	size_t wsize;
	uint8_t *wbytes = t_slurp(want, &wsize);
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		tree_free(&B);
		cr_assert_eq(tree_init(&B, NULL, NULL), 0);
		ngot = 0;
		size_t rest = 0;
		cr_assert_eq(spool_stream(zbuf_head(&s), zbuf_len(&s), steps[i], Z, &rest), 0, "step %zu", steps[i]);
		cr_assert_eq(rest, zbuf_len(&s) - len, "step %zu: the next packet is left", steps[i]);
		assert_same_tree(&A, &B);
		assert_sessions_all_got();
		wal_file_name(got_path, sizeof got_path, dir, "snapshot", Z);
		size_t gsize;
		uint8_t *gbytes = t_slurp(got_path, &gsize);
		cr_assert_eq(gsize, wsize);
		cr_assert_arr_eq(gbytes, wbytes, wsize, "what snap_write writes, byte for byte");
		free(gbytes);
	}
	cr_assert_eq(t_count_files(dir), 2, "no spool file is left");
	free(wbytes);
	zbuf_free(&s);
}

Test(snap, spool_of_a_bad_stream_leaves_no_file, .init = setup, .fini = teardown, .timeout = 10)
{
	/* A node before its parent: the structure scans, the load refuses it. */
	struct zbuf b;
	node_stream(&b, (const char *const[]){ "", "/a/b" }, 2);
	size_t rest;
	cr_assert_eq(spool_stream(zbuf_head(&b), zbuf_len(&b), 7, 5, &rest), -EBADMSG);
	cr_assert_eq(t_count_files(dir), 0);
	/* A wrong signature: refused while scanning. */
	uint8_t *p = zbuf_head(&b);
	p[zbuf_len(&b) - 1] ^= 1;
	cr_assert_eq(spool_stream(p, zbuf_len(&b), 3, 5, &rest), -EBADMSG);
	cr_assert_eq(t_count_files(dir), 0);
	zbuf_free(&b);
}
