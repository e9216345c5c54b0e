/* The unit tests' shared helpers: see support.h. */
#include "tests/unit/support/support.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
int t_leaks_now(void) { return __lsan_do_recoverable_leak_check(); }
#else
int t_leaks_now(void) { return 0; }
#endif

/* ---- jute, ACLs and txns ---- */

int32_t t_len(const char *s) { return s ? (int32_t)strlen(s) : -1; }

void t_jout_begin(struct jute_out *o, struct zbuf *b)
{
	zbuf_reset(b);
	jout_init(o, b);
}

void t_jout_done(const struct jute_out *o) { cr_assert_eq(o->err, 0); }

void t_acl_build(struct zbuf *b, const struct t_acl_ent *v, int n)
{
	struct jute_out o;
	zbuf_init(b, 1 << 16);
	jout_init(&o, b);
	jout_i32(&o, n);
	for (int i = 0; i < n; i++) {
		jout_i32(&o, v[i].perms);
		jout_str(&o, v[i].scheme);
		jout_str(&o, v[i].id);
	}
	t_jout_done(&o);
}

void t_txn_begin(struct jute_out *o, struct zbuf *b, const struct txn_hdr *h)
{
	t_jout_begin(o, b);
	txn_hdr_encode(o, h);
}

void t_txn_create(struct jute_out *o, const char *path, const void *data, int32_t dlen, const uint8_t *acl,
		  size_t acl_len, bool eph, int32_t parent_cversion)
{
	jout_str(o, path);
	jout_buf(o, data, dlen);
	jout_raw(o, acl, acl_len);
	jout_bool(o, eph);
	jout_i32(o, parent_cversion);
}

void t_txn_setdata(struct jute_out *o, const char *path, const void *data, int32_t dlen, int32_t version)
{
	jout_str(o, path);
	jout_buf(o, data, dlen);
	jout_i32(o, version);
}

void t_txn_close(struct jute_out *o, const char *const *paths, int npaths)
{
	if (npaths < 0)
		return;
	jout_i32(o, npaths);
	for (int i = 0; i < npaths; i++)
		jout_str(o, paths[i]);
}

int t_apply(struct tree *t, const struct zbuf *b, struct tree_result *res)
{
	struct txn x;
	cr_assert_eq(txn_decode(zbuf_head(b), zbuf_len(b), &x), 0, "test built a bad txn");
	int rc = tree_apply(t, &x, res);
	cr_assert_eq(rc, 0, "tree_apply failed: %d", rc);
	return res->err;
}

struct tree_node *t_parent(const struct tree *t, const char *path)
{
	size_t plen = (size_t)(strrchr(path, '/') - path);
	struct tree_node *parent = tree_lookup(t, path, plen ? plen : 1);
	cr_assert_not_null(parent, "parent of %s", path);
	return parent;
}

void t_seq_name(const struct tree *t, const char *prefix, char *out, size_t cap)
{
	struct zk_stat st;
	tree_stat(t_parent(t, prefix), &st);
	snprintf(out, cap, "%s%010d", prefix, st.p.cversion);
}

/* ---- dump ---- */

struct lines {
	char **v;
	size_t n, cap;
};

static void add_line(struct lines *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		cr_assert_not_null(l->v);
	}
	l->v[l->n++] = s;
}

static void dump_node(const struct tree_node *n, struct lines *l)
{
	char path[8192];
	cr_assert_geq(tree_node_path(n, path, sizeof path), 0);
	const struct tree_stat *st = &n->stat;
	size_t cap = 512 + 2 * (size_t)(n->data_len > 0 ? n->data_len : 0) + 2 * n->acl->ent.len + strlen(path);
	char *s = malloc(cap);
	cr_assert_not_null(s);
	int k = snprintf(s, cap, "%s cz=%llx mz=%llx ct=%lld mt=%lld v=%d cv=%d av=%d eo=%llx pz=%llx nc=%zu d=",
			 path, (unsigned long long)st->czxid, (unsigned long long)st->mzxid, (long long)st->ctime,
			 (long long)st->mtime, st->version, st->cversion, st->aversion,
			 (unsigned long long)st->ephemeral_owner, (unsigned long long)st->pzxid, tree_kids(n)->count);
	size_t off = (size_t)k;
	if (n->data_len < 0)
		off += (size_t)snprintf(s + off, cap - off, "null");
	for (int32_t i = 0; i < n->data_len; i++)
		off += (size_t)snprintf(s + off, cap - off, "%02x", n->data[i]);
	off += (size_t)snprintf(s + off, cap - off, " acl=");
	for (uint32_t i = 0; i < n->acl->ent.len; i++)
		off += (size_t)snprintf(s + off, cap - off, "%02x", n->acl->bytes[i]);
	cr_assert_lt(off, cap);
	add_line(l, s);
	struct strmap_ent *e;
	for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
		dump_node((const struct tree_node *)e, l);
}

/* Each session's ephemeral list, as paths; the list agrees with its nodes and its count. */
static void dump_ephemerals(const struct tree *t, struct lines *l)
{
	uint64_t owner;
	void *v;
	for (size_t i = 0; u64map_next(&t->ephemerals, &i, &owner, &v);) {
		const struct tree_eph_list *el = v;
		uint32_t count = 0;
		for (const struct tree_node *n = el->head; n; n = n->eph_next, count++) {
			char path[8192], *s;
			cr_assert_geq(tree_node_path(n, path, sizeof path), 0);
			cr_assert_eq(n->stat.ephemeral_owner, (int64_t)owner);
			cr_assert_geq(asprintf(&s, "@eph %llx %s", (unsigned long long)owner, path), 0);
			add_line(l, s);
		}
		cr_assert_eq(count, el->count);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join_lines(struct lines *l)
{
	qsort(l->v, l->n, sizeof *l->v, cmp_str);
	size_t total = 1;
	for (size_t i = 0; i < l->n; i++)
		total += strlen(l->v[i]) + 1;
	char *out = malloc(total);
	cr_assert_not_null(out);
	size_t off = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->v[i]);
		memcpy(out + off, l->v[i], n);
		out[off + n] = '\n';
		off += n + 1;
		free(l->v[i]);
	}
	out[off] = 0;
	free(l->v);
	return out;
}

char *t_tree_dump(const struct tree *t, unsigned flags)
{
	struct lines l = { 0 };
	dump_node(t->root, &l);
	char *s, last[32] = "";
	if (flags & T_DUMP_LAST_ZXID)
		snprintf(last, sizeof last, " last=%llx", (unsigned long long)t->last_zxid);
	cr_assert_geq(asprintf(&s, "#nodes=%llu bytes=%llu eph=%llu acls=%zu%s", (unsigned long long)t->node_count,
			       (unsigned long long)t->data_bytes, (unsigned long long)t->eph_count, t->acls.count,
			       last), 0);
	add_line(&l, s);
	dump_ephemerals(t, &l);
	return join_lines(&l);
}

void t_assert_same_tree(const struct tree *want, const struct tree *have, unsigned flags, const char *what)
{
	char *dw = t_tree_dump(want, flags), *dh = t_tree_dump(have, flags);
	if (strcmp(dw, dh) != 0) {
		/* Name the first line that differs; whole dumps are too long to read. */
		size_t i = 0, line = 0;
		while (dw[i] && dw[i] == dh[i])
			if (dw[i++] == '\n')
				line = i;
		cr_assert_fail("%s: trees differ at\n  want %.300s\n  got  %.300s", what, dw + line, dh + line);
	}
	cr_assert_eq(want->node_count, have->node_count);
	cr_assert_eq(want->eph_count, have->eph_count);
	free(dw);
	free(dh);
}

/* ---- directories and files ---- */

void t_tmpdir(char *dir, size_t cap, const char *name)
{
	int n = snprintf(dir, cap, "/tmp/zkd-%s-XXXXXX", name);
	cr_assert(n > 0 && (size_t)n < cap);
	cr_assert_not_null(mkdtemp(dir), "%s: %s", dir, strerror(errno));
}

void t_rm_files(const char *d)
{
	DIR *dp = opendir(d);
	if (!dp)
		return;
	for (struct dirent *e; (e = readdir(dp)) != NULL;) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", d, e->d_name);
		unlink(p);
	}
	closedir(dp);
}

void t_rm_tree(const char *d)
{
	t_rm_files(d);
	rmdir(d);
}

int t_count_files(const char *d)
{
	DIR *dp = opendir(d);
	cr_assert_not_null(dp);
	int n = 0;
	for (struct dirent *e; (e = readdir(dp)) != NULL;)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dp);
	return n;
}

off_t t_file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_size;
}

uint8_t *t_slurp(const char *path, size_t *size)
{
	*size = (size_t)t_file_size(path);
	uint8_t *p = malloc(*size + 1);
	cr_assert_not_null(p);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, p, *size, 0), (ssize_t)*size);
	close(fd);
	return p;
}

void t_spit(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
}

void t_poke(const char *path, off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

uint8_t t_peek(const char *path, off_t off)
{
	uint8_t b;
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	close(fd);
	return b;
}

void t_flip(const char *path, off_t off, uint8_t mask)
{
	uint8_t b = t_peek(path, off) ^ mask;
	t_poke(path, off, &b, 1);
}

/* ---- fired watches ---- */

void t_on_fire(void *ctx, uint64_t watcher, int event, const char *path, size_t len)
{
	struct t_events *e = ctx;
	cr_assert_not_null(e);
	cr_assert_lt(e->n, T_EVENTS_MAX);
	cr_assert_lt(len, sizeof e->v[0].path);
	struct t_event *v = &e->v[e->n++];
	v->watcher = watcher;
	v->type = event;
	memcpy(v->path, path, len);
	v->path[len] = 0;
}

int t_events_count(const struct t_events *e, uint64_t watcher, int type, const char *path)
{
	int n = 0;
	for (int i = 0; i < e->n; i++)
		if (e->v[i].watcher == watcher && (type < 0 || e->v[i].type == type) &&
		    (!path || strcmp(e->v[i].path, path) == 0))
			n++;
	return n;
}

void t_auth_add(struct auth_ids *a, const char *scheme, const char *id)
{
	cr_assert_eq(auth_ids_add(a, scheme, strlen(scheme), id, strlen(id)), 0, "%s:%s", scheme, id);
}

void t_auth_add_digest(struct auth_ids *a, const char *cred)
{
	char id[128];
	long n = auth_digest_id((const uint8_t *)cred, strlen(cred), id, sizeof id);
	cr_assert_gt(n, 0);
	cr_assert_eq(auth_ids_add(a, "digest", 6, id, (size_t)n), 0);
}

uint8_t *t_exact_copy(const void *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	cr_assert_not_null(c);
	if (len)
		memcpy(c, p, len);
	return c;
}

uint64_t t_xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

bool t_next_seed(uint64_t *seed, uint64_t count, const char *env)
{
	const char *e = getenv(env);
	if (e) {
		uint64_t only = strtoull(e, NULL, 10);
		bool first = *seed != only;
		*seed = only;
		return first;
	}
	return ++*seed <= count;
}
