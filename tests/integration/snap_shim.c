/* ctypes shim for test_snap_interop.py: zkd's SNAP stream scanner and reader (snap/snap.c)
 * over the bytes a real Apache ZooKeeper leader sent, and a text dump of what they read, for
 * the test to compare with the leader's own tree as a client sees it. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "snap/snap.h"
#include "tree/tree.h"

int shim_scan(const uint8_t *p, size_t len, int reset, size_t *end);
int shim_read(const uint8_t *p, size_t len, size_t *used, char *out, size_t cap);
int shim_spool(const uint8_t *p, size_t len, size_t step, const char *dir, char *out, size_t cap);

static struct snap_scan scan;

int shim_scan(const uint8_t *p, size_t len, int reset, size_t *end)
{
	if (reset)
		memset(&scan, 0, sizeof scan);
	return snap_stream_scan(&scan, p, len, end);
}

struct out {
	char *p;
	size_t cap, len;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->err = -ENOBUFS;
	else
		o->len += (size_t)n;
}

static int dump_session(void *ctx, int64_t id, int32_t timeout_ms)
{
	put(ctx, "session %" PRIx64 " %d\n", (uint64_t)id, timeout_ms);
	return 0;
}

/* One line a node: path, data in hex ("-" for null), the stored stat, the child count. */
static void dump_node(struct out *o, const struct tree_node *n)
{
	char path[4096];
	long len = tree_node_path(n, path, sizeof path);
	put(o, "node %s ", len > 0 ? path : "/");
	if (n->data_len < 0)
		put(o, "-");
	for (int32_t i = 0; i < n->data_len; i++)
		put(o, "%02x", n->data[i]);
	const struct tree_stat *s = &n->stat;
	put(o, " %" PRIx64 " %" PRIx64 " %" PRIx64 " %d %d %d %" PRIx64 " %zu\n", (uint64_t)s->czxid,
	    (uint64_t)s->mzxid, (uint64_t)s->pzxid, s->version, s->cversion, s->aversion,
	    (uint64_t)s->ephemeral_owner, tree_kids(n)->count);
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
		dump_node(o, (const struct tree_node *)e);
}

static int dump_tree(struct tree *t, int rc, const char *err, struct out *o)
{
	if (rc == 0)
		dump_node(o, t->root);
	else
		put(o, "error %s\n", err);
	tree_free(t);
	return rc ? rc : o->err;
}

/* The same stream through snap_spool_* in pieces of `step`, as a learner short of memory
 * takes it: snapshot.1 in dir, then loaded. */
int shim_spool(const uint8_t *p, size_t len, size_t step, const char *dir, char *out, size_t cap)
{
	struct tree t;
	struct out o = { out, cap, 0, 0 };
	char err[512] = "";
	struct snap_spool sp;
	if (tree_init(&t, NULL, NULL) < 0)
		return -ENOMEM;
	int rc = snap_spool_open(&sp, &zk_fileops_posix, dir, 1, err, sizeof err);
	size_t start = 0, have = 0, used;
	while (rc == 0 && have < len) {
		have = have + step < len ? have + step : len;
		rc = snap_spool_feed(&sp, p + start, have - start, &used);
		if (rc == 0 || rc == -EAGAIN)
			start += used;
		rc = rc == -EAGAIN ? 0 : rc;
	}
	if (rc == 0 && sp.done)
		rc = snap_spool_finish(&sp, &t, dump_session, &o, err, sizeof err);
	else
		snap_spool_abort(&sp);
	return dump_tree(&t, rc ? rc : start == len ? 0 : -EBADMSG, err, &o);
}

int shim_read(const uint8_t *p, size_t len, size_t *used, char *out, size_t cap)
{
	struct tree t;
	struct out o = { out, cap, 0, 0 };
	char err[512] = "";
	if (tree_init(&t, NULL, NULL) < 0)
		return -ENOMEM;
	int rc = snap_stream_read(p, len, &t, dump_session, &o, used, err, sizeof err);
	return dump_tree(&t, rc, err, &o);
}
