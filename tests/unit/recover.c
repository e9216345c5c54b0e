/* Proves recover() rebuilds exactly the tree and sessions the txns made — over a fuzzy
 * snapshot that already holds later txns, from real snapshot and log files — that it cuts a
 * torn tail off the newest log, stops on corruption or missing logs naming file and offset,
 * and falls back to an older snapshot when the newest one does not validate. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/jute.h"
#include "net/proto.h"
#include "snap/recover.h"
#include "snap/snap.h"
#include "tree/tree.h"
#include "tree/txn.h"
#include "wal/wal.h"
#include "tests/unit/support/support.h"

/* ---- directories and files ---- */

static char base[64], snap_dir[96], log_dir[96];

static void flip(const char *path, off_t off) { t_flip(path, off, 0x21); }

/* ---- the txns: built by hand, applied to the truth tree A as they are made ---- */

#define MAXT 96

struct rec {
	uint8_t *bytes;
	size_t len;
	int32_t type;
	int64_t client;
	int32_t timeout_ms;
};

static struct rec T[MAXT + 1]; /* T[z] is the txn of zxid z */
static int NT;
static struct tree A, B;
static struct zbuf scratch;
static const uint8_t *acl_digest;
static size_t acl_digest_len;
static struct zbuf acl_buf;

static void apply_txn(struct tree *t, int z)
{
	struct txn x;
	cr_assert_eq(txn_decode(T[z].bytes, T[z].len, &x), 0, "txn %d", z);
	struct tree_result res;
	cr_assert_eq(tree_apply(t, &x, &res), 0, "txn %d", z);
}

static void apply_range(struct tree *t, int from, int to)
{
	for (int z = from; z <= to; z++)
		apply_txn(t, z);
}

static struct jute_out begin(int64_t client, int32_t type)
{
	cr_assert_lt(NT, MAXT);
	struct jute_out o;
	int64_t z = NT + 1;
	struct txn_hdr h = { client, (int32_t)z, z, 1700000000000LL + z * 1000, type };
	t_txn_begin(&o, &scratch, &h);
	return o;
}

/* Keep the txn and apply it to the truth; `want` is the result a client would see. */
static void commit(struct jute_out *o, int want)
{
	cr_assert_eq(o->err, 0);
	struct rec *r = &T[++NT];
	r->len = zbuf_len(&scratch);
	r->bytes = malloc(r->len);
	cr_assert_not_null(r->bytes);
	memcpy(r->bytes, zbuf_head(&scratch), r->len);
	struct txn x;
	cr_assert_eq(txn_decode(r->bytes, r->len, &x), 0);
	r->type = x.hdr.type;
	r->client = x.hdr.client_id;
	r->timeout_ms = x.timeout_ms;
	struct tree_result res;
	cr_assert_eq(tree_apply(&A, &x, &res), 0);
	cr_assert_eq(res.err, want, "txn %d: %d", NT, res.err);
}

static void g_session(int64_t id, int32_t timeout_ms)
{
	struct jute_out o = begin(id, ZOP_CREATESESSION);
	jout_i32(&o, timeout_ms);
	commit(&o, ZOK);
}

static void g_create(int64_t owner, const char *path, const void *data, int32_t dlen, bool digest, bool eph)
{
	int32_t cversion = t_parent(&A, path)->stat.cversion;
	struct jute_out o = begin(owner, ZOP_CREATE2);
	if (digest)
		t_txn_create(&o, path, data, dlen, acl_digest, acl_digest_len, eph, cversion + 1);
	else
		t_txn_create(&o, path, data, dlen, tree_acl_open, tree_acl_open_len, eph, cversion + 1);
	commit(&o, ZOK);
}

/* A sequential create; the name made goes to out. */
static void g_seq(int64_t owner, const char *prefix, bool eph, char *out, size_t cap)
{
	t_seq_name(&A, prefix, out, cap);
	g_create(owner, out, "seq", 3, false, eph);
}

static void g_set(const char *path, const void *data, int32_t dlen)
{
	struct tree_node *n = tree_lookup(&A, path, strlen(path));
	cr_assert_not_null(n, "%s", path);
	struct jute_out o = begin(0x77, ZOP_SETDATA);
	t_txn_setdata(&o, path, data, dlen, n->stat.version + 1);
	commit(&o, ZOK);
}

static void g_delete(const char *path)
{
	struct jute_out o = begin(0x77, ZOP_DELETE);
	jout_str(&o, path);
	commit(&o, ZOK);
}

static void g_error(int32_t err)
{
	struct jute_out o = begin(0x77, ZOP_ERROR);
	jout_i32(&o, err);
	commit(&o, err);
}

/* closeSession with the session's ephemerals listed, as the leader records them; or with
 * the empty body of old logs. */
static void g_close(int64_t id, bool list_paths)
{
	struct jute_out o = begin(id, ZOP_CLOSESESSION);
	if (list_paths) {
		const struct tree_eph_list *l = tree_ephemerals(&A, id);
		jout_i32(&o, l ? (int32_t)l->count : 0);
		for (const struct tree_node *n = l ? l->head : NULL; n; n = n->eph_next) {
			char path[512];
			cr_assert_gt(tree_node_path(n, path, sizeof path), 0);
			jout_str(&o, path);
		}
	}
	commit(&o, ZOK);
}

#define S1 0x1000000000000101LL
#define S2 0x1000000000000102LL
#define S3 0x1000000000000103LL
#define S4 0x1000000000000104LL
#define S5 0x1000000000000105LL

/* Every kind of txn, with the tricky orders: sequential creates and deletes under one
 * parent, create/delete/create of one path, ephemerals dropped by closeSession (listed and
 * unlisted), nested creates deleted leaf first, setData to null and back. */
static void scenario(void)
{
	static const char nul_data[] = { 'c', 0, 'f', 'g', 0, 0 };
	char q0[64], q1[64], q2[64], q3[64], q4[64], q5[64], q6[64];
	g_session(S1, 30000);                          /* 1 */
	g_session(S2, 20000);
	g_create(0x55, "/app", "v0", 2, false, false);
	g_create(0x55, "/app/cfg", nul_data, sizeof nul_data, true, false);
	g_create(0x55, "/q", "", 0, false, false);     /* 5 */
	g_seq(0x55, "/q/job-", false, q0, sizeof q0);
	g_seq(S1, "/q/job-", true, q1, sizeof q1);
	g_seq(S2, "/q/job-", true, q2, sizeof q2);
	g_set("/app", "v1", 2);
	g_create(S1, "/eph1", "e", 1, false, true);    /* 10 */
	g_create(0x55, "/r", "r1", 2, false, false);
	g_session(S3, 10000);
	g_delete(q0);
	g_seq(S3, "/q/job-", true, q3, sizeof q3);
	g_set("/app/cfg", NULL, -1);                   /* 15 */
	g_delete("/r");
	g_create(S2, "/r", "r2", 2, true, true);       /* same path, another incarnation */
	g_create(0x55, "/tmp", "t", 1, false, false);
	g_create(0x55, "/tmp/a", NULL, -1, false, false);
	g_create(0x55, "/tmp/a/b", "b", 1, true, false); /* 20 */
	g_set("/tmp/a/b", "bb", 2);
	g_error(ZNODEEXISTS);
	g_close(S1, true);
	g_seq(0x55, "/q/job-", false, q4, sizeof q4);
	g_delete("/tmp/a/b");                          /* 25 */
	g_delete("/tmp/a");
	g_set("/app", "v2", 2);
	g_session(S4, 5000);
	g_create(S4, "/s4", "", 0, false, true);
	g_delete("/r");                                /* 30 */
	g_create(0x55, "/r", "r3", 2, false, false);   /* and a third */
	g_set("/r", "r3b", 3);
	g_close(S2, false);
	g_seq(S3, "/q/job-", true, q5, sizeof q5);
	g_delete("/tmp");                              /* 35 */
	g_create(0x55, "/tmp", "t2", 2, true, false);
	g_set("/app/cfg", "x", 1);
	g_seq(0x55, "/q/job-", false, q6, sizeof q6);
	g_delete(q4);
	g_close(S4, true);                             /* 40 */
	g_session(S5, 7000);
	g_create(S5, "/last", "end", 3, false, true);
	g_set("/last", "end2", 4);
	g_set("/q", NULL, -1);
	g_set("/q", "back", 4);                        /* 45 */
	cr_assert_eq(NT, 45);
	cr_assert_null(tree_lookup(&A, q1, strlen(q1)), "closeSession dropped S1's ephemerals");
	cr_assert_null(tree_lookup(&A, q2, strlen(q2)), "and S2's, from the tree's own list");
	cr_assert_not_null(tree_lookup(&A, q5, strlen(q5)));
	cr_assert_eq(A.eph_count, 3, "S3's two and S5's /last");
}

static void setup(void)
{
	static const struct t_acl_ent digest[] = { { 31, "digest", "bob:BfMrd0oNc4qeFXtlvRRdH2AHh6E=" },
						    { 1, "world", "anyone" } };
	t_tmpdir(base, sizeof base, "recover");
	snprintf(snap_dir, sizeof snap_dir, "%s/snap", base);
	snprintf(log_dir, sizeof log_dir, "%s/log", base);
	cr_assert_eq(mkdir(snap_dir, 0755), 0);
	cr_assert_eq(mkdir(log_dir, 0755), 0);
	zbuf_init(&scratch, 1 << 20);
	t_acl_build(&acl_buf, digest, 2);
	acl_digest = zbuf_head(&acl_buf);
	acl_digest_len = zbuf_len(&acl_buf);
	cr_assert_eq(tree_init(&A, NULL, NULL), 0);
	cr_assert_eq(tree_init(&B, NULL, NULL), 0);
	scenario();
}

static void teardown(void)
{
	tree_free(&A);
	tree_free(&B);
	for (int z = 1; z <= NT; z++)
		free(T[z].bytes);
	zbuf_free(&scratch);
	zbuf_free(&acl_buf);
	t_rm_tree(snap_dir);
	t_rm_tree(log_dir);
	rmdir(base);
}

/* ---- sessions: what the txns say, and what recovery reported ---- */

#define MAXS 16
struct sess_set {
	int64_t id[MAXS];
	int32_t timeout_ms[MAXS];
	int n;
};

static void sess_put(struct sess_set *s, int64_t id, int32_t timeout_ms)
{
	for (int i = 0; i < s->n; i++)
		if (s->id[i] == id) {
			s->timeout_ms[i] = timeout_ms;
			return;
		}
	cr_assert_lt(s->n, MAXS);
	s->id[s->n] = id;
	s->timeout_ms[s->n++] = timeout_ms;
}

static void sess_del(struct sess_set *s, int64_t id)
{
	for (int i = 0; i < s->n; i++)
		if (s->id[i] == id) {
			s->id[i] = s->id[--s->n];
			s->timeout_ms[i] = s->timeout_ms[s->n];
			return;
		}
}

static struct sess_set sessions_at(int upto)
{
	struct sess_set s = { .n = 0 };
	for (int z = 1; z <= upto; z++) {
		if (T[z].type == ZOP_CREATESESSION)
			sess_put(&s, T[z].client, T[z].timeout_ms);
		else if (T[z].type == ZOP_CLOSESESSION)
			sess_del(&s, T[z].client);
	}
	return s;
}

static struct sess_set got;
static int n_added, n_removed;

static int cb_add(void *ctx, int64_t id, int32_t timeout_ms)
{
	cr_assert_eq(ctx, &got);
	n_added++;
	sess_put(&got, id, timeout_ms);
	return 0;
}

static void cb_remove(void *ctx, int64_t id)
{
	cr_assert_eq(ctx, &got);
	n_removed++;
	sess_del(&got, id);
}

static const struct recover_cb cb = { cb_add, cb_remove, &got };

static void assert_same_sessions(const struct sess_set *want, const struct sess_set *have)
{
	cr_assert_eq(have->n, want->n, "%d sessions, want %d", have->n, want->n);
	for (int i = 0; i < want->n; i++) {
		bool found = false;
		for (int k = 0; k < have->n; k++)
			if (have->id[k] == want->id[i]) {
				found = true;
				cr_assert_eq(have->timeout_ms[k], want->timeout_ms[i]);
			}
		cr_assert(found, "session 0x%llx missing", (unsigned long long)want->id[i]);
	}
}

/* Every node's path, stored stat, data and ACL, plus the counters and last zxid, sorted. */
static char *dump(const struct tree *t) { return t_tree_dump(t, T_DUMP_LAST_ZXID); }

static void assert_same_tree(const struct tree *want, const struct tree *have, const char *what)
{
	t_assert_same_tree(want, have, T_DUMP_LAST_ZXID, what);
}

/* ---- writing the files ---- */

/* Txns from..to into log files, a new file every `per` txns (at from, from+per, ...). */
static void write_logs(int from, int to, int per)
{
	struct wal w;
	cr_assert_eq(wal_init(&w, &zk_fileops_posix, log_dir, 4096, true, from - 1), 0);
	for (int z = from; z <= to; z++) {
		cr_assert_eq(wal_append(&w, z, T[z].bytes, T[z].len), 0);
		if ((z - from + 1) % per == 0 || z == to) {
			cr_assert_eq(wal_sync(&w), 0);
			if (z != to) /* the newest file stays open, preallocated, as a live server's */
				cr_assert_eq(wal_roll(&w), 0);
		}
	}
	cr_assert_eq(w.durable_zxid, to);
	wal_free(&w);
}

static void log_path(char *buf, size_t cap, int first) { wal_file_name(buf, cap, log_dir, "log", first); }

static void write_snapshot(struct tree *t, int name_zxid, int sessions_upto)
{
	struct sess_set s = sessions_at(sessions_upto);
	struct snap_session v[MAXS];
	for (int i = 0; i < s.n; i++)
		v[i] = (struct snap_session){ s.id[i], s.timeout_ms[i] };
	char err[512] = "";
	cr_assert_eq(snap_write(&zk_fileops_posix, snap_dir, name_zxid, t, v, (size_t)s.n, err, sizeof err), 0,
		     "%s", err);
}

/* The tree after txns 1..upto, written as snapshot.<name_zxid>. */
static void snapshot_of(int upto, int name_zxid)
{
	struct tree t;
	cr_assert_eq(tree_init(&t, NULL, NULL), 0);
	apply_range(&t, 1, upto);
	write_snapshot(&t, name_zxid, upto);
	tree_free(&t);
}

static void snap_path(char *buf, size_t cap, int zxid) { wal_file_name(buf, cap, snap_dir, "snapshot", zxid); }

static char err[2048];
static struct recover_result res;

/* Under -fsanitize=undefined every test here with an empty snapshot or log directory aborts
 * inside wal_list (the BUG shown by wal's list_of_a_directory_without_matches_is_empty). */
static int run_recover(void)
{
	tree_free(&B);
	cr_assert_eq(tree_init(&B, NULL, NULL), 0);
	got.n = 0;
	n_added = n_removed = 0;
	err[0] = 0;
	return recover(&zk_fileops_posix, snap_dir, log_dir, &B, &cb, &res, err, sizeof err);
}

/* Where each record of a log file starts, read back with the reader. */
static int record_starts(const char *path, off_t *offs, int cap)
{
	struct wal_reader r;
	cr_assert_eq(wal_reader_open(&r, &zk_fileops_posix, path), 0, "%s", r.err);
	int n = 0;
	const uint8_t *e;
	size_t len;
	int64_t zxid;
	for (;;) {
		off_t at = r.off;
		int rc = wal_reader_next(&r, &e, &len, &zxid);
		cr_assert_geq(rc, 0, "%s", r.err);
		if (rc == 0)
			break;
		cr_assert_lt(n, cap);
		offs[n++] = at;
	}
	wal_reader_close(&r);
	return n;
}

static void expect_err_names(const char *path, off_t off)
{
	cr_assert_not_null(strstr(err, path), "the file is named: %s", err);
	if (off >= 0) {
		char o[48];
		snprintf(o, sizeof o, "offset %lld", (long long)off);
		cr_assert_not_null(strstr(err, o), "\"%s\" is named: %s", o, err);
	}
}

/* ---- whole replays ---- */

Test(recover, logs_alone_rebuild_the_tree, .init = setup, .fini = teardown, .timeout = 10)
{
	write_logs(1, NT, 10);
	cr_assert_eq(run_recover(), 0, "%s", err);
	assert_same_tree(&A, &B, "no snapshot");
	cr_assert_eq(res.snap_zxid, 0);
	cr_assert_eq(res.last_zxid, NT);
	cr_assert_eq(res.txns, (uint64_t)NT);
	cr_assert_eq(res.truncated, 0);
	struct sess_set want = sessions_at(NT);
	assert_same_sessions(&want, &got);
}

Test(recover, empty_directories_give_the_empty_tree, .init = setup, .fini = teardown, .timeout = 10)
{
	struct tree fresh;
	cr_assert_eq(tree_init(&fresh, NULL, NULL), 0);
	cr_assert_eq(run_recover(), 0, "%s", err);
	assert_same_tree(&fresh, &B, "nothing on disk");
	cr_assert_eq(res.last_zxid, 0);
	cr_assert_eq(got.n, 0);
	tree_free(&fresh);
}

Test(recover, snapshot_alone_is_the_tree, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(NT, NT);
	cr_assert_eq(run_recover(), 0, "%s", err);
	assert_same_tree(&A, &B, "snapshot of everything");
	cr_assert_eq(res.snap_zxid, NT);
	cr_assert_eq(res.last_zxid, NT);
	cr_assert_eq(res.txns, 0);
}

/* A snapshot named for zxid j that already holds txns up to m >= j: replaying j+1.. over it
 * must land exactly where the txns did. Every (j, m) in a spread, logs rolled every 7. */
Test(recover, replay_over_a_snapshot_holding_later_txns, .init = setup, .fini = teardown, .timeout = 15)
{
	write_logs(1, NT, 7);
	struct sess_set want = sessions_at(NT);
	static const int js[] = { 0, 1, 4, 9, 12, 16, 22, 27, 30, 33, 39, 44 };
	static const int ks[] = { 0, 1, 3, 8, 100 };
	for (size_t a = 0; a < sizeof js / sizeof js[0]; a++)
		for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
			int j = js[a], m = j + ks[b] > NT ? NT : j + ks[b];
			t_rm_files(snap_dir);
			snapshot_of(m, j);
			char what[64];
			snprintf(what, sizeof what, "snapshot.%x holding txns to %d", j, m);
			cr_assert_eq(run_recover(), 0, "%s: %s", what, err);
			assert_same_tree(&A, &B, what);
			cr_assert_eq(res.snap_zxid, j, "%s", what);
			cr_assert_eq(res.last_zxid, NT, "%s", what);
			cr_assert_eq(res.txns, (uint64_t)(NT - j), "%s", what);
			assert_same_sessions(&want, &got);
		}
}

/* A truly fuzzy snapshot, as ZooKeeper takes one while writes go on: the nodes are walked
 * in pre-order from the state after txn j, and txns j+1.. are applied to the live tree as the
 * walk goes, so each node is copied in whatever state it has when reached (a parent's child
 * list is taken when the parent is copied; a child deleted before it is reached is skipped). */

static int fz_next, fz_every, fz_count;

static void copy_node(struct tree *f, const struct tree_node *n)
{
	char path[512];
	long len = tree_node_path(n, path, sizeof path);
	cr_assert_gt(len, 0);
	static const uint8_t none[1];
	const uint8_t *data = n->data_len == 0 ? none : n->data; /* empty, not null */
	cr_assert_eq(tree_load_node(f, path, (size_t)len, data, n->data_len, n->acl->bytes, n->acl->ent.len,
				    &n->stat), 0, "%s", path);
}

static void fuzzy_visit(struct tree *f, struct tree *live, const char *path)
{
	struct tree_node *n = tree_lookup(live, path, strlen(path));
	if (!n)
		return;
	copy_node(f, n);
	size_t k = tree_kids(n)->count, i = 0;
	char (*names)[64] = calloc(k ? k : 1, sizeof *names);
	cr_assert_not_null(names);
	struct strmap_ent *e;
	for (size_t slot = 0; strmap_next(tree_kids(n), &slot, &e); i++) {
		cr_assert_lt(e->len, sizeof names[0]);
		memcpy(names[i], e->key, e->len);
	}
	if (fz_count++ % fz_every == 0 && fz_next <= NT)
		apply_txn(live, fz_next++);
	for (i = 0; i < k; i++) {
		char child[512];
		snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", names[i]);
		fuzzy_visit(f, live, child);
	}
	free(names);
}

Test(recover, replay_over_a_fuzzy_snapshot, .init = setup, .fini = teardown, .timeout = 15)
{
	write_logs(1, NT, 9);
	struct sess_set want = sessions_at(NT);
	static const int js[] = { 0, 2, 6, 10, 15, 20, 25, 30, 35, 40 };
	static const int everies[] = { 1, 2, 5 };
	int differ = 0, cases = 0;
	for (size_t a = 0; a < sizeof js / sizeof js[0]; a++)
		for (size_t b = 0; b < sizeof everies / sizeof everies[0]; b++) {
			int j = js[a];
			struct tree live, f;
			cr_assert_eq(tree_init(&live, NULL, NULL), 0);
			cr_assert_eq(tree_init(&f, NULL, NULL), 0);
			apply_range(&live, 1, j);
			fz_next = j + 1;
			fz_every = everies[b];
			fz_count = 0;
			fuzzy_visit(&f, &live, "/");
			int m = fz_next - 1;
			cr_assert_gt(m, j, "the walk saw later txns");
			t_rm_files(snap_dir);
			write_snapshot(&f, j, j);
			tree_free(&live);
			tree_free(&f);
			char what[80];
			snprintf(what, sizeof what, "fuzzy snapshot.%x with txns to %d mixed in (every %d)", j, m,
				 everies[b]);
			cr_assert_eq(run_recover(), 0, "%s: %s", what, err);
			assert_same_tree(&A, &B, what);
			cr_assert_eq(res.snap_zxid, j);
			cr_assert_eq(res.last_zxid, NT);
			assert_same_sessions(&want, &got);
			/* Control: named for the last txn it saw, replay would skip txns it holds only
			 * partly, and (for most walks) end elsewhere. So the snapshot really is fuzzy. */
			char from[256], to[256];
			snap_path(from, sizeof from, j);
			snap_path(to, sizeof to, m);
			cr_assert_eq(rename(from, to), 0);
			cr_assert_eq(run_recover(), 0, "%s: %s", what, err);
			char *da = dump(&A), *db = dump(&B);
			differ += strcmp(da, db) != 0;
			free(da);
			free(db);
			cases++;
		}
	cr_assert_gt(differ, cases / 2, "only %d of %d walks held later txns in part",
		     differ, cases);
}

/* ---- torn tails ---- */

static void expect_prefix_applied(int upto, const char *what)
{
	struct tree want;
	cr_assert_eq(tree_init(&want, NULL, NULL), 0);
	apply_range(&want, 1, upto);
	assert_same_tree(&want, &B, what);
	tree_free(&want);
	cr_assert_eq(res.last_zxid, upto, "%s", what);
	struct sess_set s = sessions_at(upto);
	assert_same_sessions(&s, &got);
}

Test(recover, torn_tail_is_cut_and_every_whole_txn_kept, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(12, 12);
	write_logs(1, NT, 10); /* the last file is log.29 (41 in hex): txns 41..45 */
	char path[256];
	log_path(path, sizeof path, 41);
	off_t offs[16];
	cr_assert_eq(record_starts(path, offs, 16), 5);
	cr_assert_eq(truncate(path, offs[4] + 25), 0);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.truncated, 1);
	cr_assert_eq(t_file_size(path), offs[4], "cut back to the start of the torn record");
	expect_prefix_applied(NT - 1, "torn tail");
	cr_assert_eq(res.txns, (uint64_t)(NT - 1 - 12));
	/* Recovering again finds a clean log. */
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.truncated, 0);
	expect_prefix_applied(NT - 1, "second recovery");
}

Test(recover, torn_tail_with_zeroed_end_in_a_preallocated_file, .init = setup, .fini = teardown,
     .timeout = 10)
{
	write_logs(1, NT, 20); /* log.1, log.21, log.41 */
	char path[256];
	log_path(path, sizeof path, 41);
	off_t offs[16];
	cr_assert_eq(record_starts(path, offs, 16), 5);
	cr_assert_gt(t_file_size(path), offs[4] + 200, "preallocated");
	/* The last record's last bytes never reached the disk. */
	off_t end = offs[4] + 13 + (off_t)T[NT].len;
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	static const uint8_t zeros[6];
	cr_assert_eq(pwrite(fd, zeros, sizeof zeros, end - (off_t)sizeof zeros), (ssize_t)sizeof zeros);
	close(fd);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.truncated, 1);
	cr_assert_eq(t_file_size(path), offs[4]);
	expect_prefix_applied(NT - 1, "zeroed tail");
}

Test(recover, torn_first_record_of_the_newest_log, .init = setup, .fini = teardown, .timeout = 10)
{
	write_logs(1, NT, 20);
	char path[256];
	log_path(path, sizeof path, 41);
	cr_assert_eq(truncate(path, WAL_HEADER_LEN + 30), 0);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.truncated, 1);
	cr_assert_eq(t_file_size(path), WAL_HEADER_LEN);
	expect_prefix_applied(40, "only the newest log's first record torn");
}

Test(recover, newest_log_with_a_torn_header_is_removed, .init = setup, .fini = teardown, .timeout = 10)
{
	write_logs(1, NT, 20);
	char path[256];
	log_path(path, sizeof path, 41);
	cr_assert_eq(truncate(path, 9), 0);
	cr_assert_eq(run_recover(), 0, "%s", err);
	expect_prefix_applied(40, "header torn");
	cr_assert_neq(access(path, F_OK), 0, "the empty log is gone");
}

/* ---- corruption ---- */

Test(recover, flipped_byte_followed_by_valid_txns_stops_recovery, .init = setup, .fini = teardown,
     .timeout = 10)
{
	write_logs(1, NT, 20);
	char path[256];
	log_path(path, sizeof path, 41);
	off_t offs[16];
	cr_assert_eq(record_starts(path, offs, 16), 5);
	off_t size = t_file_size(path);
	flip(path, offs[2] + 12 + 33); /* inside txn 43's body */
	cr_assert_eq(run_recover(), -EBADMSG);
	expect_err_names(path, offs[2]);
	cr_assert_eq(t_file_size(path), size, "a corrupt log is never truncated");
	cr_assert_eq(res.truncated, 0);
}

Test(recover, bad_record_in_an_older_log_stops_recovery, .init = setup, .fini = teardown, .timeout = 10)
{
	write_logs(1, NT, 20);
	char path[256];
	log_path(path, sizeof path, 21);
	off_t offs[32];
	cr_assert_eq(record_starts(path, offs, 32), 20);
	/* Its last record torn: a torn tail anywhere but the newest log is corruption. */
	cr_assert_eq(truncate(path, offs[19] + 20), 0);
	cr_assert_eq(run_recover(), -EBADMSG);
	expect_err_names(path, offs[19]);
	cr_assert_eq(t_file_size(path), offs[19] + 20, "not truncated");
}

Test(recover, flipped_byte_in_an_older_log_stops_recovery, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(10, 10);
	write_logs(1, NT, 20);
	char path[256];
	log_path(path, sizeof path, 1);
	off_t offs[32];
	cr_assert_eq(record_starts(path, offs, 32), 20);
	flip(path, offs[15] + 12 + 20); /* txn 16, after the snapshot */
	cr_assert_eq(run_recover(), -EBADMSG);
	expect_err_names(path, offs[15]);
}

/* ---- snapshots that do not validate ---- */

Test(recover, falls_back_to_an_older_snapshot, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(10, 10);
	snapshot_of(30, 30);
	write_logs(1, NT, 8);
	char path[256];
	snap_path(path, sizeof path, 30);
	flip(path, t_file_size(path) / 2);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.snap_zxid, 10);
	cr_assert_eq(res.txns, (uint64_t)(NT - 10));
	assert_same_tree(&A, &B, "fallback to snapshot.a");
	struct sess_set want = sessions_at(NT);
	assert_same_sessions(&want, &got);
}

Test(recover, sessions_of_a_snapshot_that_fails_are_not_reported, .init = setup, .fini = teardown,
     .timeout = 10)
{
	snapshot_of(0, 0);
	/* The newest snapshot lists a session no txn ever made; it is corrupt at its seal. */
	struct tree t;
	cr_assert_eq(tree_init(&t, NULL, NULL), 0);
	apply_range(&t, 1, 20);
	struct snap_session ghost = { 0x6666, 1234 };
	char e[512];
	cr_assert_eq(snap_write(&zk_fileops_posix, snap_dir, 20, &t, &ghost, 1, e, sizeof e), 0, "%s", e);
	tree_free(&t);
	char path[256];
	snap_path(path, sizeof path, 20);
	flip(path, t_file_size(path) - 6);
	write_logs(1, NT, 50);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(res.snap_zxid, 0);
	assert_same_tree(&A, &B, "fallback to snapshot.0");
	struct sess_set want = sessions_at(NT);
	assert_same_sessions(&want, &got);
}

Test(recover, no_valid_snapshot_is_an_error, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(20, 20);
	write_logs(1, NT, 50); /* the logs alone could rebuild it: still refused */
	char path[256];
	snap_path(path, sizeof path, 20);
	flip(path, 30);
	cr_assert_eq(run_recover(), -EBADMSG);
	cr_assert_not_null(strstr(err, path), "the snapshot is named: %s", err);
	cr_assert_not_null(strstr(err, "offset"), "%s", err);
}

/* ---- missing logs ---- */

Test(recover, logs_missing_after_the_snapshot_are_an_error, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(20, 20);
	write_logs(30, NT, 50); /* 21..29 are nowhere */
	cr_assert_eq(run_recover(), -EBADMSG);
	char name[256];
	log_path(name, sizeof name, 30);
	cr_assert_not_null(strstr(err, name), "the first log is named: %s", err);
	cr_assert_not_null(strstr(err, "missing"), "%s", err);
}

Test(recover, logs_missing_from_the_start_are_an_error, .init = setup, .fini = teardown, .timeout = 10)
{
	write_logs(5, NT, 50);
	cr_assert_eq(run_recover(), -EBADMSG);
	cr_assert_not_null(strstr(err, "log.5"), "%s", err);
	cr_assert_not_null(strstr(err, "missing"), "%s", err);
}

/* Regression (fixed): snap/recover.c recover() picks the last log whose name is <= snap_zxid + 1 as the one
 * holding the txn after the snapshot, and never checks that it does. With log.1 (txns 1..10)
 * and log.1e (30..) but the log holding 21..29 gone, a snapshot at 20 replays log.1 (all
 * skipped) then log.1e, and recovery succeeds without txns 21..29. */
Test(recover, logs_missing_after_an_older_log_are_an_error, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(20, 20);
	write_logs(1, 10, 50);
	write_logs(30, NT, 50);
	int rc = run_recover();
	cr_assert_eq(rc, -EBADMSG, "recovered without txns 21..29 (rc %d): %s", rc, err);
	cr_assert_not_null(strstr(err, "missing"), "%s", err);
}

/* ---- sessions ---- */

Test(recover, sessions_come_from_the_snapshot_and_the_log, .init = setup, .fini = teardown, .timeout = 10)
{
	/* Snapshot after 20: S1, S2 and S3 open. The log then closes S1 (23) and S2 (33),
	 * opens S4 (28) and closes it (40), and opens S5 (41). */
	snapshot_of(20, 20);
	write_logs(1, NT, 50);
	cr_assert_eq(run_recover(), 0, "%s", err);
	struct sess_set want = { .n = 0 };
	sess_put(&want, S3, 10000);
	sess_put(&want, S5, 7000);
	assert_same_sessions(&want, &got);
	cr_assert_eq(n_added, 3 + 2, "S1, S2, S3 from the snapshot; S4, S5 from the log");
	cr_assert_eq(n_removed, 3, "S1, S2, S4 closed in the log");
	cr_assert_null(tree_ephemerals(&B, S1));
	cr_assert_null(tree_ephemerals(&B, S2));
	cr_assert_null(tree_ephemerals(&B, S4));
	cr_assert_eq(tree_ephemerals(&B, S3)->count, 2);
	cr_assert_eq(tree_ephemerals(&B, S5)->count, 1);
}

Test(recover, sessions_closed_before_the_snapshot_are_not_replayed, .init = setup, .fini = teardown,
     .timeout = 10)
{
	snapshot_of(42, 42);
	write_logs(1, NT, 50);
	cr_assert_eq(run_recover(), 0, "%s", err);
	cr_assert_eq(n_added, 2, "S3 and S5, from the snapshot only");
	cr_assert_eq(n_removed, 0);
	struct sess_set want = sessions_at(NT);
	assert_same_sessions(&want, &got);
	assert_same_tree(&A, &B, "snapshot at 42");
}

/* ---- the ensemble: TRUNC, recover_upto, the replay hook, a SNAP over stale logs ---- */

static struct wal W;

static void wal_open_at(int64_t last)
{
	cr_assert_eq(wal_init(&W, &zk_fileops_posix, log_dir, 4096, true, last), 0);
}

static void wal_append_txns(int from, int to)
{
	for (int z = from; z <= to; z++)
		cr_assert_eq(wal_append(&W, z, T[z].bytes, T[z].len), 0, "txn %d", z);
	cr_assert_eq(wal_sync(&W), 0);
}

/* TRUNC at each kind of point (logs rolled every 10: files at 1, 11, 21, 31, 41): the tree
 * recovered is exactly txns 1..Z; then the history goes on from Z + 1 and recovery finds
 * it all. Snapshots past Z are removed; one at or before Z stays and is used. */
Test(recover, trunc_then_append_then_recover, .init = setup, .fini = teardown, .timeout = 30)
{
	static const int zs[] = { 0, 5, 10, 11, 27, 44, 45, 60 };
	for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
		int z = zs[i], keep = z < NT ? z : NT;
		t_rm_files(snap_dir);
		t_rm_files(log_dir);
		snapshot_of(3, 3);
		snapshot_of(40, 40);
		write_logs(1, NT, 10);
		char what[64], e[512] = "";
		snprintf(what, sizeof what, "TRUNC to %d", z);
		cr_assert_eq(snap_remove_after(&zk_fileops_posix, snap_dir, z), z < 40 ? (z < 3 ? 2 : 1) : 0,
			     "%s", what);
		wal_open_at(NT);
		cr_assert_eq(wal_truncate(&W, z, e, sizeof e), 0, "%s: %s", what, e);
		cr_assert_eq(W.durable_zxid, keep, "%s", what);
		cr_assert_eq(run_recover(), 0, "%s: %s", what, err);
		expect_prefix_applied(keep, what);
		cr_assert_eq(res.snap_zxid, z >= 40 ? 40 : z >= 3 ? 3 : 0, "%s", what);
		cr_assert_eq(res.truncated, 0, "%s: a clean cut, no torn tail", what);
		wal_append_txns(keep + 1, NT);
		wal_free(&W);
		cr_assert_eq(run_recover(), 0, "%s, appended again: %s", what, err);
		assert_same_tree(&A, &B, what);
		cr_assert_eq(res.last_zxid, NT);
	}
}

/* recover_upto is the tree after TRUNC even before the files are cut: no snapshot past it
 * loads, no txn past it applies. */
Test(recover, recover_upto_stops_at_the_zxid, .init = setup, .fini = teardown, .timeout = 10)
{
	snapshot_of(10, 10);
	snapshot_of(40, 40);
	write_logs(1, NT, 8);
	static const int ups[] = { 0, 9, 10, 25, 39, 40, 45 };
	for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "up to %d", ups[i]);
		tree_free(&B);
		cr_assert_eq(tree_init(&B, NULL, NULL), 0);
		got.n = 0;
		cr_assert_eq(recover_upto(&zk_fileops_posix, snap_dir, log_dir, ups[i], &B, &cb, &res, err,
					  sizeof err), 0, "%s: %s", what, err);
		expect_prefix_applied(ups[i], what);
		cr_assert_eq(res.snap_zxid, ups[i] >= 40 ? 40 : ups[i] >= 10 ? 10 : 0, "%s", what);
	}
	cr_assert_eq(t_count_files(snap_dir), 2, "recover_upto deletes nothing");
}

struct seen_txns {
	int n;
	int64_t zxid[MAXT + 1];
	bool same_bytes;
	int64_t cancel_at; /* the hook fails there */
};

static int on_txn(void *ctx, int64_t zxid, const uint8_t *entry, size_t len)
{
	struct seen_txns *s = ctx;
	cr_assert_lt(s->n, MAXT);
	s->zxid[s->n++] = zxid;
	s->same_bytes &= zxid >= 1 && zxid <= NT && len == T[zxid].len && memcmp(entry, T[zxid].bytes, len) == 0;
	return zxid == s->cancel_at ? -ECANCELED : 0;
}

Test(recover, replay_hook_sees_every_txn_after_the_snapshot, .init = setup, .fini = teardown,
     .timeout = 10)
{
	snapshot_of(20, 20);
	write_logs(1, NT, 7);
	struct seen_txns s = { .same_bytes = true };
	struct recover_opts o = { .on_txn = on_txn, .txn_ctx = &s };
	cr_assert_eq(recover_with(&zk_fileops_posix, snap_dir, log_dir, &B, &cb, &o, &res, err, sizeof err), 0,
		     "%s", err);
	assert_same_tree(&A, &B, "with the hook");
	cr_assert_eq(s.n, NT - 20);
	for (int i = 0; i < s.n; i++)
		cr_assert_eq(s.zxid[i], 21 + i);
	cr_assert(s.same_bytes, "the entries are the logged txns");
	/* With a limit, the hook stops there too. */
	struct seen_txns s2 = { .same_bytes = true };
	struct recover_opts o2 = { .limited = true, .upto = 30, .on_txn = on_txn, .txn_ctx = &s2 };
	tree_free(&B);
	cr_assert_eq(tree_init(&B, NULL, NULL), 0);
	cr_assert_eq(recover_with(&zk_fileops_posix, snap_dir, log_dir, &B, &cb, &o2, &res, err, sizeof err), 0,
		     "%s", err);
	cr_assert_eq(s2.n, 10);
	cr_assert_eq(s2.zxid[9], 30);
	/* Its error stops recovery. */
	struct seen_txns s3 = { .same_bytes = true, .cancel_at = 25 };
	struct recover_opts o3 = { .on_txn = on_txn, .txn_ctx = &s3 };
	tree_free(&B);
	cr_assert_eq(tree_init(&B, NULL, NULL), 0);
	cr_assert_eq(recover_with(&zk_fileops_posix, snap_dir, log_dir, &B, &cb, &o3, &res, err, sizeof err),
		     -ECANCELED);
	cr_assert_eq(s3.n, 5);
}

/* A txn of T[z], renumbered: the same change made under another zxid (a new epoch). */
static struct rec renumbered(int z, int64_t zxid)
{
	struct rec r = T[z];
	r.bytes = malloc(r.len);
	cr_assert_not_null(r.bytes);
	memcpy(r.bytes, T[z].bytes, r.len);
	be64_put(r.bytes + 12, (uint64_t)zxid);
	return r;
}

/* A txn no leader ever committed: the learner's own divergent history. */
static struct rec divergent(int64_t zxid)
{
	struct zbuf b;
	zbuf_init(&b, 4096);
	struct jute_out o;
	struct txn_hdr h = { 0x99, 1, zxid, 1800000000000LL, ZOP_CREATE };
	t_txn_begin(&o, &b, &h);
	char path[32];
	snprintf(path, sizeof path, "/divergent-%lld", (long long)zxid);
	t_txn_create(&o, path, "d", 1, tree_acl_open, tree_acl_open_len, false, 0);
	struct rec r = { .len = zbuf_len(&b) };
	r.bytes = malloc(r.len);
	memcpy(r.bytes, zbuf_head(&b), r.len);
	zbuf_free(&b);
	return r;
}

#define EPOCH1(c) ((1LL << 32) | (c))

/* The learner's stale log: T[1..20], then divergent txns 21..div_to, in files of 10. */
static void stale_learner_log(int div_to)
{
	wal_open_at(0);
	for (int z = 1; z <= div_to; z++) {
		struct rec d = z <= 20 ? T[z] : divergent(z);
		cr_assert_eq(wal_append(&W, z, d.bytes, d.len), 0);
		if (z > 20)
			free(d.bytes);
		if (z % 10 == 0 || z == div_to) {
			cr_assert_eq(wal_sync(&W), 0);
			cr_assert_eq(wal_roll(&W), 0);
		}
	}
	wal_free(&W);
}

/* After the SNAP at 30 the leader's txns 31..45 come in epoch 1 (counters 1..15). */
static void log_epoch1_txns(void)
{
	for (int z = 31; z <= NT; z++) {
		struct rec r = renumbered(z, EPOCH1(z - 30));
		cr_assert_eq(wal_append(&W, EPOCH1(z - 30), r.bytes, r.len), 0);
		free(r.bytes);
	}
	cr_assert_eq(wal_sync(&W), 0);
}

/* What the leader's tree is after the SNAP at 30 and txns 31..45 in epoch 1. */
static void expected_after_snap(struct tree *want)
{
	cr_assert_eq(tree_init(want, NULL, NULL), 0);
	apply_range(want, 1, 30);
	for (int z = 31; z <= NT; z++) {
		struct rec r = renumbered(z, EPOCH1(z - 30));
		struct txn x;
		cr_assert_eq(txn_decode(r.bytes, r.len, &x), 0);
		struct tree_result tr;
		cr_assert_eq(tree_apply(want, &x, &tr), 0);
		free(r.bytes);
	}
}

/* A learner whose log went past the SNAP point with txns of its own (21..38, never
 * committed) installs the SNAP at 30 and logs epoch 1 from (1 << 32) | 1. Recovery gives
 * the leader's tree: wal_snap_installed cut 31..38 off, and 21..30 are below the snapshot.
 * Control: left in place, 31..38 would "follow" 30 and be replayed into the tree. */
Test(recover, snap_install_over_a_divergent_log_then_a_new_epoch, .init = setup, .fini = teardown,
     .timeout = 10)
{
	struct tree want;
	expected_after_snap(&want);
	for (int cut = 0; cut <= 1; cut++) {
		t_rm_files(snap_dir);
		t_rm_files(log_dir);
		stale_learner_log(38);
		snapshot_of(30, 30);
		wal_open_at(38);
		char e[512] = "";
		if (cut)
			cr_assert_eq(wal_snap_installed(&W, 30, e, sizeof e), 0, "%s", e);
		else
			W.batch_last_zxid = W.durable_zxid = 30; /* what a careless install would do */
		log_epoch1_txns();
		wal_free(&W);
		cr_assert_eq(run_recover(), 0, "%s", err);
		cr_assert_eq(res.last_zxid, EPOCH1(NT - 30));
		char *dw = dump(&want), *db = dump(&B);
		if (cut)
			assert_same_tree(&want, &B, "SNAP at 30 over a divergent log");
		else
			cr_assert_str_neq(dw, db, "control: the stale txns were replayed");
		free(dw);
		free(db);
	}
	tree_free(&want);
}

/* The other shapes: the stale log ends before the SNAP point; there is no old log at all;
 * and the next txn is 31 in the same epoch. */
Test(recover, snap_install_with_short_or_no_old_logs, .init = setup, .fini = teardown, .timeout = 10)
{
	struct tree want;
	expected_after_snap(&want);
	for (int shape = 0; shape < 3; shape++) {
		t_rm_files(snap_dir);
		t_rm_files(log_dir);
		if (shape == 0)
			stale_learner_log(24);
		snapshot_of(30, 30);
		wal_open_at(shape == 0 ? 24 : 0);
		char e[512] = "";
		cr_assert_eq(wal_snap_installed(&W, 30, e, sizeof e), 0, "%s", e);
		if (shape < 2)
			log_epoch1_txns();
		else
			wal_append_txns(31, NT);
		wal_free(&W);
		cr_assert_eq(run_recover(), 0, "shape %d: %s", shape, err);
		assert_same_tree(shape < 2 ? &want : &A, &B, shape == 0 ? "short stale log" :
				 shape == 1 ? "no old log, epoch 1 next" : "no old log, 31 next");
		cr_assert_eq(res.snap_zxid, 30);
		cr_assert_eq(res.txns, (uint64_t)(NT - 30));
	}
	tree_free(&want);
}

/* The gap rule still holds across epochs: a log opening epoch 1 after a snapshot whose own
 * epoch is not done is fine only as epoch 1's first txn; a later counter is a gap. */
Test(recover, a_later_epoch_log_not_at_its_first_txn_is_a_gap, .init = setup, .fini = teardown,
     .timeout = 10)
{
	snapshot_of(30, 30);
	wal_open_at(EPOCH1(1));
	for (int z = 32; z <= NT; z++) {
		struct rec r = renumbered(z, EPOCH1(z - 30));
		cr_assert_eq(wal_append(&W, EPOCH1(z - 30), r.bytes, r.len), 0);
		free(r.bytes);
	}
	cr_assert_eq(wal_sync(&W), 0);
	wal_free(&W);
	cr_assert_eq(run_recover(), -EBADMSG);
	cr_assert_not_null(strstr(err, "missing"), "%s", err);
}

/* snap_remove_after's promise: a TRUNC below the only snapshot, with the older logs purged,
 * leaves a database that cannot be rebuilt - and recovery says so, naming the missing logs,
 * rather than starting from the snapshot that holds the txns the TRUNC removed. */
Test(recover, trunc_below_the_only_snapshot_without_older_logs_refuses, .init = setup,
     .fini = teardown, .timeout = 10)
{
	snapshot_of(40, 40);
	write_logs(31, NT, 10); /* autopurge kept only what snapshot.28 needs */
	char e[512] = "";
	cr_assert_eq(snap_remove_after(&zk_fileops_posix, snap_dir, 35), 1);
	wal_open_at(NT);
	cr_assert_eq(wal_truncate(&W, 35, e, sizeof e), 0, "%s", e);
	wal_free(&W);
	cr_assert_eq(run_recover(), -EBADMSG);
	cr_assert_not_null(strstr(err, "missing"), "%s", err);
	cr_assert_not_null(strstr(err, "log.1f"), "the first log is named: %s", err);
}
