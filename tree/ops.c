/* Reads and write replies, as ZooKeeper's FinalRequestProcessor builds them. */
#include "tree/ops.h"
#include "tree/acl.h"
#include "tree/ops_ext.h"
#include "tree/multi.h"
#include "net/log.h"
#include "net/proto.h"

#include <errno.h>
#include <string.h>

void ops_stat_out(struct jute_out *out, const struct zk_stat *st)
{
	jout_i64(out, st->p.czxid);
	jout_i64(out, st->p.mzxid);
	jout_i64(out, st->p.ctime);
	jout_i64(out, st->p.mtime);
	jout_i32(out, st->p.version);
	jout_i32(out, st->p.cversion);
	jout_i32(out, st->p.aversion);
	jout_i64(out, st->p.ephemeral_owner);
	jout_i32(out, st->data_length);
	jout_i32(out, st->num_children);
	jout_i64(out, st->p.pzxid);
}

int ops_is_read(int32_t type)
{
	switch (type) {
	case ZOP_EXISTS: case ZOP_GETDATA: case ZOP_GETCHILDREN: case ZOP_GETCHILDREN2:
	case ZOP_SYNC: case ZOP_GETACL:
		return 1;
	default:
		return 0;
	}
}

static int watch_err(int rc) { return rc < 0 ? ZSYSTEMERROR : ZOK; }

/* The ACL list for getACL. A client without ADMIN on the node sees digest ids with the
 * hash hidden ("user:x"), as ZooKeeper shows them. */
static void acl_out(struct jute_out *out, const uint8_t *acl, size_t len, bool admin)
{
	if (admin) {
		jout_raw(out, acl, len);
		return;
	}
	struct jute_in in;
	jin_init(&in, acl, len);
	int32_t n = jin_vec(&in, TXN_MAX_ACL);
	jout_i32(out, n);
	for (int32_t i = 0; i < n && jin_ok(&in); i++) {
		int32_t perms = jin_i32(&in), sl, il;
		const uint8_t *scheme = jin_buf(&in, &sl);
		const uint8_t *id = jin_buf(&in, &il);
		jout_i32(out, perms);
		jout_buf(out, scheme, sl);
		const uint8_t *colon = il > 0 ? memchr(id, ':', (size_t)il) : NULL;
		if (sl == 6 && memcmp(scheme, "digest", 6) == 0 && colon) {
			int32_t keep = (int32_t)(colon - id) + 1;
			jout_i32(out, keep + 1);
			jout_raw(out, id, (size_t)keep);
			jout_raw(out, "x", 1);
		} else {
			jout_buf(out, id, il);
		}
	}
}

/* FinalRequestProcessor's checkACL for a read: after NoNode, before any watch is set. */
static int read_check(const struct tree_node *n, int32_t perm, const struct acl_who *who)
{
	if (!n)
		return ZNONODE;
	return acl_allows(n->acl->bytes, n->acl->ent.len, perm, who) ? ZOK : ZNOAUTH;
}

/* A read; `may_watch` false ignores the request's watch flag (multiRead's ops). */
static int read_req(struct tree *t, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
		    const struct acl_who *who, struct jute_out *out, bool may_watch)
{
	struct jute_in in;
	jin_init(&in, body, len);
	int32_t plen;
	const char *path = (const char *)jin_buf(&in, &plen);
	bool watch = type == ZOP_SYNC || type == ZOP_GETACL ? false : jin_bool(&in) && may_watch;
	if (!jin_ok(&in) || !path)
		return ZMARSHALLINGERROR;
	if (type == ZOP_EXISTS && memchr(path, 0, (size_t)plen))
		return ZBADARGUMENTS; /* ZooKeeper checks this for exists only */
	struct tree_node *n = tree_lookup(t, path, (size_t)plen);
	struct zk_stat st;
	int rc;
	switch (type) {
	case ZOP_SYNC:
		jout_buf(out, path, plen);
		return ZOK;
	case ZOP_EXISTS:
		/* The watch is set whether or not the node exists: an exist watch. */
		if (watch && watches_add(&t->watches, WATCH_DATA, path, (size_t)plen, watcher) < 0)
			return ZSYSTEMERROR;
		if (!n)
			return ZNONODE;
		tree_stat(n, &st);
		ops_stat_out(out, &st);
		return ZOK;
	case ZOP_GETACL: /* GetACLResponse{vector<ACL> acl; Stat stat} */
		if ((rc = read_check(n, ZPERM_READ | ZPERM_ADMIN, who)) != ZOK)
			return rc;
		tree_stat(n, &st);
		acl_out(out, n->acl->bytes, n->acl->ent.len, acl_allows(n->acl->bytes, n->acl->ent.len, ZPERM_ADMIN, who));
		ops_stat_out(out, &st);
		return ZOK;
	case ZOP_GETDATA:
		if ((rc = read_check(n, ZPERM_READ, who)) != ZOK)
			return rc;
		tree_stat(n, &st);
		jout_buf(out, n->data, n->data_len);
		ops_stat_out(out, &st);
		return watch ? watch_err(watches_add(&t->watches, WATCH_DATA, path, (size_t)plen, watcher)) : ZOK;
	case ZOP_GETCHILDREN:
	case ZOP_GETCHILDREN2: {
		if ((rc = read_check(n, ZPERM_READ, who)) != ZOK)
			return rc;
		jout_i32(out, (int32_t)tree_kids(n)->count);
		struct strmap_ent *e;
		for (size_t i = 0; strmap_next(tree_kids(n), &i, &e);)
			jout_buf(out, e->key, (int32_t)e->len);
		if (type == ZOP_GETCHILDREN2) {
			tree_stat(n, &st);
			ops_stat_out(out, &st);
		}
		return watch ? watch_err(watches_add(&t->watches, WATCH_CHILD, path, (size_t)plen, watcher)) : ZOK;
	}
	default:
		return ZUNIMPLEMENTED;
	}
}

int ops_read(struct tree *t, int32_t type, const uint8_t *body, size_t len, uint64_t watcher,
	     const struct acl_who *who, struct jute_out *out)
{
	return read_req(t, type, body, len, watcher, who, out, true);
}

static void multi_header(struct jute_out *out, int32_t type, int32_t err)
{
	jout_i32(out, type);
	jout_bool(out, false);
	jout_i32(out, err);
}

/* ErrorResult: the header carries the error, and so does the ErrorResponse after it. */
static void multi_error(struct jute_out *out, int32_t err)
{
	multi_header(out, ZOP_ERROR, err);
	jout_i32(out, err);
}

void ops_multi_end(struct jute_out *out)
{
	jout_i32(out, -1);
	jout_bool(out, true);
	jout_i32(out, -1);
}

int ops_multi_read(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher,
		   const struct acl_who *who, struct jute_out *out)
{
	if (multi_shape(body, len) == MULTI_SHAPE_MALFORMED)
		return ZMARSHALLINGERROR; /* the record did not parse: no body */
	struct jute_in in;
	struct multi_op op;
	int err = ZOK;
	jin_init(&in, body, len);
	while (err == ZOK && multi_next(&in, &op) == 1) {
		if (op.kind != MULTI_READ || !op.path) {
			err = ZMARSHALLINGERROR; /* the results so far still go out */
			break;
		}
		size_t at = zbuf_len(out->b);
		multi_header(out, op.type, ZOK);
		int rc = read_req(t, op.type, op.rec, op.rec_len, watcher, who, out, false);
		if (rc != ZOK && !out->err) {
			zbuf_truncate(out->b, at);
			multi_error(out, rc);
		}
	}
	ops_multi_end(out);
	return err;
}

void ops_multi_result(struct jute_out *out, const struct txn *sub, const struct tree_result *res)
{
	if (sub->hdr.type == ZOP_ERROR || res->err != ZOK) {
		multi_error(out, res->err);
		return;
	}
	switch (sub->hdr.type) {
	case ZOP_CREATE:
		multi_header(out, ZOP_CREATE, ZOK);
		jout_buf(out, sub->path, sub->path_len);
		break;
	case ZOP_CREATE2: case ZOP_CREATECONTAINER: case ZOP_CREATETTL:
		multi_header(out, ZOP_CREATE2, ZOK); /* CreateResult with a Stat */
		jout_buf(out, sub->path, sub->path_len);
		ops_stat_out(out, &res->stat);
		break;
	case ZOP_DELETE: case ZOP_DELETECONTAINER:
		multi_header(out, ZOP_DELETE, ZOK);
		break;
	case ZOP_SETDATA:
		multi_header(out, ZOP_SETDATA, ZOK);
		ops_stat_out(out, &res->stat);
		break;
	default: /* check */
		multi_header(out, sub->hdr.type, ZOK);
		break;
	}
}

int ops_set_watches(struct tree *t, const uint8_t *body, size_t len, uint64_t watcher)
{
	return ops_set_watches_v(t, body, len, watcher, false);
}

void ops_write_reply(int32_t req_type, const struct txn *x, const struct tree_result *res,
		     struct jute_out *out)
{
	if (res->err != ZOK)
		return;
	switch (req_type) {
	case ZOP_CREATE:
		jout_buf(out, x->path, x->path_len);
		break;
	case ZOP_CREATE2:
	case ZOP_CREATECONTAINER: /* both answer with a Create2Response, as ZooKeeper */
	case ZOP_CREATETTL:
		jout_buf(out, x->path, x->path_len);
		ops_stat_out(out, &res->stat);
		break;
	case ZOP_SETDATA:
	case ZOP_SETACL:
		ops_stat_out(out, &res->stat);
		break;
	default:
		break;
	}
}
