/* Quota stats and enforcement; the rules are in quota.h. */
#include "tree/quota.h"
#include "net/log.h"
#include "net/proto.h"
#include "tree/tree.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A quota root in tree.quotas. */
struct quota_ent {
	struct strmap_ent ent;
	char path[];
};

/* ---------------------------------------------------------------- StatsTrack text */

/* Java long arithmetic: wraps instead of overflowing (a client may write any stats text). */
static int64_t jadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

int64_t quota_get(const struct quota_track *q, const char *key)
{
	for (int i = 0; i < q->n; i++)
		if (strcmp(q->kv[i].key, key) == 0)
			return q->kv[i].val;
	return -1;
}

void quota_set(struct quota_track *q, const char *key, int64_t val)
{
	ZK_ASSERT(strlen(key) <= QUOTA_KEY_MAX);
	for (int i = 0; i < q->n; i++) {
		if (strcmp(q->kv[i].key, key) == 0) {
			q->kv[i].val = val;
			return;
		}
	}
	if (q->n == QUOTA_MAX_KEYS)
		return; /* bounded: a further key is dropped */
	snprintf(q->kv[q->n].key, sizeof q->kv[q->n].key, "%s", key);
	q->kv[q->n++].val = val;
}

/* Long.parseLong of d[0..len): false if it is not a decimal long. */
static bool parse_long(const uint8_t *d, size_t len, int64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof buf)
		return false;
	memcpy(buf, d, len);
	buf[len] = 0;
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end || buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n')
		return false;
	*out = v;
	return true;
}

/* One "key=value[=...]" pair, as Java's split("=") reads it. */
static void parse_pair(struct quota_track *q, const uint8_t *p, size_t len)
{
	const uint8_t *eq = memchr(p, '=', len);
	if (!eq || (size_t)(eq - p) > QUOTA_KEY_MAX)
		return;
	size_t klen = (size_t)(eq - p);
	const uint8_t *v = eq + 1;
	size_t vlen = len - klen - 1;
	const uint8_t *v_end = memchr(v, '=', vlen);
	if (v_end)
		vlen = (size_t)(v_end - v);
	else if (vlen == 0)
		return; /* "key=": Java finds no value field */
	int64_t val = -1;
	if (vlen > 0 && !parse_long(v, vlen, &val))
		return;
	char key[QUOTA_KEY_MAX + 1];
	memcpy(key, p, klen);
	key[klen] = 0;
	if (memchr(key, 0, klen))
		return;
	quota_set(q, key, val);
}

void quota_parse(struct quota_track *q, const uint8_t *d, int32_t len)
{
	q->n = 0;
	size_t i = 0, n = len > 0 ? (size_t)len : 0;
	while (i < n) {
		size_t j = i;
		while (j < n && d[j] != ',' && d[j] != ';')
			j++;
		if (j > i)
			parse_pair(q, d + i, j - i);
		i = j + 1;
	}
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t quota_format(const struct quota_track *q, char *buf, size_t cap)
{
	int len = snprintf(buf, cap, "count=%" PRId64 ",bytes=%" PRId64, quota_get(q, "count"),
			   quota_get(q, "bytes"));
	size_t at = (size_t)len;
	const char *keys[QUOTA_MAX_KEYS];
	int nk = 0;
	for (int i = 0; i < q->n; i++)
		if (strcmp(q->kv[i].key, "count") != 0 && strcmp(q->kv[i].key, "bytes") != 0)
			keys[nk++] = q->kv[i].key;
	qsort(keys, (size_t)nk, sizeof keys[0], key_cmp);
	for (int i = 0; i < nk; i++) {
		/* The extra "=" lets ZooKeeper 3.4's parser ignore the keys it does not know. */
		len = snprintf(at < cap ? buf + at : NULL, at < cap ? cap - at : 0, "%s;%s=%" PRId64,
			       i == 0 ? "=" : "", keys[i], quota_get(q, keys[i]));
		at += (size_t)len;
	}
	return at;
}

/* ---------------------------------------------------------------- quota roots */

static bool is_zookeeper(const char *p, size_t len)
{
	return len == 10 && memcmp(p, "/zookeeper", 10) == 0;
}

/* The deepest quota root at or above path (getMaxPrefixWithQuota), or NULL. */
static const struct quota_ent *max_prefix(const struct tree *t, const char *path, size_t len)
{
	if (t->quotas.count == 0)
		return NULL;
	while (len > 0) {
		const struct quota_ent *q = (const struct quota_ent *)strmap_get(&t->quotas, path, len);
		if (q)
			return is_zookeeper(path, len) ? NULL : q;
		const char *slash = memrchr(path, '/', len);
		len = slash ? (size_t)(slash - path) : 0;
	}
	return NULL;
}

/* If path is QUOTA_ROOT<P>/<name>, return P's span (P non-empty). */
static bool quota_child(const char *path, size_t len, const char *name, const char **p, size_t *plen)
{
	size_t rl = strlen(QUOTA_ROOT), nl = strlen(name);
	if (len < rl + 2 + nl + 1 || memcmp(path, QUOTA_ROOT "/", rl + 1) != 0)
		return false;
	if (memcmp(path + len - nl - 1, "/", 1) != 0 || memcmp(path + len - nl, name, nl) != 0)
		return false;
	*p = path + rl;
	*plen = len - rl - nl - 1;
	return true;
}

static int quota_add(struct tree *t, const char *p, size_t len)
{
	if (strmap_get(&t->quotas, p, len))
		return 0;
	struct quota_ent *q = malloc(sizeof *q + len + 1);
	if (!q)
		return -ENOMEM;
	memcpy(q->path, p, len);
	q->path[len] = 0;
	q->ent = (struct strmap_ent){ q->path, (uint32_t)len, tree_hash(p, len) };
	if (strmap_put(&t->quotas, &q->ent) < 0) {
		free(q);
		return -ENOMEM;
	}
	return 0;
}

static void quota_del(struct tree *t, const char *p, size_t len)
{
	free(strmap_del(&t->quotas, p, len));
}

void tree_quota_free(struct tree *t)
{
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(&t->quotas, &i, &e);)
		free(e);
	strmap_free(&t->quotas);
}

/* The stats (or limits) node of quota root p, or NULL. */
static struct tree_node *quota_node(const struct tree *t, const char *p, size_t len, const char *name)
{
	size_t rl = strlen(QUOTA_ROOT), nl = strlen(name), total = rl + len + 1 + nl;
	char *buf = malloc(total);
	if (!buf)
		return NULL;
	memcpy(buf, QUOTA_ROOT, rl);
	memcpy(buf + rl, p, len);
	buf[rl + len] = '/';
	memcpy(buf + rl + len + 1, name, nl);
	struct tree_node *n = tree_lookup(t, buf, total);
	free(buf);
	return n;
}

static int write_stats(struct tree *t, struct tree_node *stats, const struct quota_track *q)
{
	char buf[QUOTA_MAX_KEYS * (QUOTA_KEY_MAX + 24) + 64];
	size_t len = quota_format(q, buf, sizeof buf);
	ZK_ASSERT(len < sizeof buf);
	return tree_replace_data(t, stats, (const uint8_t *)buf, (int32_t)len);
}

/* updateQuotaStat: add to the stats of the quota root above path, if any. */
static int add_stats(struct tree *t, const char *path, size_t len, int64_t bytes, int32_t count)
{
	const struct quota_ent *q = max_prefix(t, path, len);
	struct tree_node *stats = q ? quota_node(t, q->path, q->ent.len, QUOTA_STATS) : NULL;
	if (!stats)
		return 0; /* ZooKeeper logs "Missing node for stat" and goes on */
	struct quota_track s;
	quota_parse(&s, stats->data, stats->data_len);
	quota_set(&s, "count", jadd(quota_get(&s, "count"), count));
	quota_set(&s, "bytes", jadd(quota_get(&s, "bytes"), bytes));
	return write_stats(t, stats, &s);
}

/* A pre-order walk of a subtree without recursion, so a deep path cannot exhaust the stack;
 * its stack holds one frame per level. */
struct walk {
	struct frame {
		const struct tree_node *n;
		size_t i;
	} *st;
	size_t depth, cap;
	int err;
};

static bool walk_push(struct walk *w, const struct tree_node *n)
{
	if (w->depth == w->cap) {
		size_t ncap = w->cap ? 2 * w->cap : 16;
		struct frame *ns = realloc(w->st, ncap * sizeof *ns);
		if (!ns) {
			w->err = -ENOMEM;
			return false;
		}
		w->st = ns;
		w->cap = ncap;
	}
	w->st[w->depth++] = (struct frame){ n, 0 };
	return true;
}

/* The next node below the walk's root, or NULL at the end (or on w->err). */
static const struct tree_node *walk_next(struct walk *w)
{
	while (w->depth > 0) {
		struct frame *f = &w->st[w->depth - 1];
		struct strmap_ent *e;
		if (!strmap_next(tree_kids(f->n), &f->i, &e)) {
			w->depth--;
			continue;
		}
		return walk_push(w, (const struct tree_node *)e) ? (const struct tree_node *)e : NULL;
	}
	return NULL;
}

/* getCounts: nodes and data bytes of the subtree at n, n included. */
static int count_subtree(const struct tree_node *n, int64_t *count, int64_t *bytes)
{
	struct walk w = { 0 };
	*count = 1;
	*bytes = n->data_len > 0 ? n->data_len : 0;
	walk_push(&w, n);
	for (const struct tree_node *c; (c = walk_next(&w)) != NULL;) {
		(*count)++;
		*bytes += c->data_len > 0 ? c->data_len : 0;
	}
	free(w.st);
	return w.err;
}

/* updateQuotaForPath: recount quota root p into a fresh "count=,bytes=" stats text. */
static int recount(struct tree *t, const char *p, size_t len)
{
	struct tree_node *stats = quota_node(t, p, len, QUOTA_STATS);
	if (!stats)
		return 0;
	int64_t count = 0, bytes = 0;
	const struct tree_node *n = tree_lookup(t, p, len);
	if (n && count_subtree(n, &count, &bytes) < 0)
		return -ENOMEM;
	struct quota_track s = { 0 };
	quota_set(&s, "bytes", bytes);
	quota_set(&s, "count", count);
	return write_stats(t, stats, &s);
}

/* ---------------------------------------------------------------- apply hooks */

int tree_quota_created(struct tree *t, const char *path, size_t len, int32_t dlen)
{
	const char *p;
	size_t plen;
	int rc = 0;
	if (quota_child(path, len, QUOTA_LIMITS, &p, &plen))
		rc = quota_add(t, p, plen);
	else if (quota_child(path, len, QUOTA_STATS, &p, &plen))
		rc = recount(t, p, plen);
	if (rc == 0)
		rc = add_stats(t, path, len, dlen > 0 ? dlen : 0, 1);
	return rc;
}

int tree_quota_deleted(struct tree *t, const char *path, size_t len, int32_t dlen)
{
	const char *p;
	size_t plen;
	if (quota_child(path, len, QUOTA_LIMITS, &p, &plen))
		quota_del(t, p, plen);
	return add_stats(t, path, len, -(int64_t)(dlen > 0 ? dlen : 0), -1);
}

int tree_quota_changed(struct tree *t, const char *path, size_t len, int64_t bytes_diff)
{
	return add_stats(t, path, len, bytes_diff, 0);
}

/* setupQuota, after a snapshot is loaded: every limits node under QUOTA_ROOT that has no
 * children makes its path a quota root, recounted. */
int tree_quota_setup(struct tree *t)
{
	tree_quota_free(t);
	strmap_init(&t->quotas);
	const struct tree_node *qroot = tree_lookup(t, QUOTA_ROOT, strlen(QUOTA_ROOT));
	if (!qroot)
		return 0;
	/* Collect first: recounting rewrites stats nodes' data, not the walk's tables. */
	struct walk w = { 0 };
	const struct tree_node **lims = NULL;
	size_t n = 0, cap = 0;
	walk_push(&w, qroot);
	for (const struct tree_node *c; (c = walk_next(&w)) != NULL;) {
		if (tree_kids(c)->count > 0 || c->ent.len != strlen(QUOTA_LIMITS) ||
		    memcmp(c->name, QUOTA_LIMITS, c->ent.len) != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			const struct tree_node **nl = realloc(lims, ncap * sizeof *nl);
			if (!nl) {
				w.err = -ENOMEM;
				break;
			}
			lims = nl;
			cap = ncap;
		}
		lims[n++] = c;
	}
	free(w.st);
	int rc = w.err;
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t plen = tree_node_path_len(lims[i]);
		char *path = malloc(plen + 1);
		if (!path) {
			rc = -ENOMEM;
			break;
		}
		tree_node_path(lims[i], path, plen + 1);
		const char *p;
		size_t qlen;
		if (quota_child(path, plen, QUOTA_LIMITS, &p, &qlen) && (rc = recount(t, p, qlen)) == 0)
			rc = quota_add(t, p, qlen);
		free(path);
	}
	free(lims);
	return rc;
}

/* ---------------------------------------------------------------- enforcement */

/* A hard limit in `lim` the applied stats plus the change would pass. */
static bool passes_hard_limit(const struct quota_track *lim, const struct quota_track *cur,
			      int64_t bytes_diff, int32_t count_diff)
{
	int64_t hard = quota_get(lim, "countHardLimit");
	if (count_diff != 0 && hard > -1 && jadd(quota_get(cur, "count"), count_diff) > hard)
		return true;
	hard = quota_get(lim, "byteHardLimit");
	return bytes_diff != 0 && hard > -1 && jadd(quota_get(cur, "bytes"), bytes_diff) > hard;
}

int tree_quota_check(const struct tree *t, const char *path, size_t len, int64_t bytes_diff,
		     int32_t count_diff)
{
	const struct quota_ent *q = max_prefix(t, path, len);
	if (!q)
		return 0;
	const struct tree_node *limits = quota_node(t, q->path, q->ent.len, QUOTA_LIMITS);
	const struct tree_node *stats = quota_node(t, q->path, q->ent.len, QUOTA_STATS);
	if (!limits || !stats)
		return 0; /* ZooKeeper logs the missing node and allows the write */
	struct quota_track lim, cur;
	quota_parse(&lim, limits->data, limits->data_len);
	quota_parse(&cur, stats->data, stats->data_len);
	return passes_hard_limit(&lim, &cur, bytes_diff, count_diff) ? ZQUOTAEXCEEDED : 0;
}
