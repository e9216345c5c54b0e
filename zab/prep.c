/* Prep; see prep.h. Check order and errors follow ZooKeeper 3.8's PrepRequestProcessor. */
#include "zab/prep.h"
#include "net/log.h"
#include "net/proto.h"
#include "tree/acl.h"
#include "tree/multi.h"
#include "tree/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prep_init(struct prep *p, struct tree *t)
{
	memset(p, 0, sizeof *p);
	p->tree = t;
	strmap_init(&p->latest);
}

void prep_free(struct prep *p)
{
	while (p->head) {
		struct change *c = p->head;
		p->head = c->next;
		free(c);
	}
	strmap_free(&p->latest);
	memset(p, 0, sizeof *p);
}

int prep_is_write(int32_t type)
{
	switch (type) {
	case ZOP_CREATE: case ZOP_CREATE2: case ZOP_DELETE: case ZOP_SETDATA: case ZOP_SETACL:
	case ZOP_CREATESESSION: case ZOP_CLOSESESSION: case ZOP_MULTI:
	case ZOP_CREATECONTAINER: case ZOP_CREATETTL: case ZOP_DELETECONTAINER:
		return 1;
	default:
		return 0;
	}
}

/* The newest view of a path: 1 and *out filled when it exists, 0 when it does not. */
static int record_for(const struct prep *p, const char *path, size_t len, struct change *out)
{
	if (len == 1 && path[0] == '/')
		len = 0; /* the root is kept under "" */
	struct change *c = (struct change *)strmap_get(&p->latest, path, len);
	if (c) {
		if (!c->exists)
			return 0;
		out->stat = c->stat;
		out->num_children = c->num_children;
		out->acl = c->acl;
		out->acl_len = c->acl_len;
		out->data_len = c->data_len;
		return 1;
	}
	/* ZooKeeper keeps the root under "" as well as "/". */
	struct tree_node *n = len == 0 ? p->tree->root : tree_lookup(p->tree, path, len);
	if (!n)
		return 0;
	out->stat = n->stat;
	out->num_children = (int32_t)tree_kids(n)->count;
	out->acl = n->acl->bytes;
	out->acl_len = n->acl->ent.len;
	out->data_len = n->data_len > 0 ? n->data_len : 0;
	return 1;
}

static int add_change(struct prep *p, const char *path, size_t len, int64_t zxid, int exists,
		      const struct change *view)
{
	if (len == 1 && path[0] == '/')
		len = 0;
	size_t acl_len = view && exists ? view->acl_len : 0;
	struct change *c = malloc(sizeof *c + len + 1 + acl_len);
	if (!c)
		return -ENOMEM;
	memcpy(c->path, path, len);
	c->path[len] = 0;
	/* The view's ACL may live in a record about to be shadowed: keep a copy of our own. */
	c->acl = acl_len ? memcpy(c->path + len + 1, view->acl, acl_len) : NULL;
	c->acl_len = acl_len;
	c->ent = (struct strmap_ent){ c->path, (uint32_t)len, tree_hash(path, len) };
	c->zxid = zxid;
	c->exists = exists;
	c->stat = view ? view->stat : (struct tree_stat){ 0 };
	c->num_children = view ? view->num_children : 0;
	c->data_len = view ? view->data_len : 0;
	c->next = NULL;
	c->shadowed = (struct change *)strmap_replace(&p->latest, &c->ent);
	if (!c->shadowed && strmap_put(&p->latest, &c->ent) < 0) {
		free(c);
		return -ENOMEM;
	}
	if (p->tail) p->tail->next = c; else p->head = c;
	p->tail = c;
	p->count++;
	return 0;
}

void prep_applied(struct prep *p, int64_t zxid)
{
	while (p->head && p->head->zxid <= zxid) {
		struct change *c = p->head;
		p->head = c->next;
		if (!p->head)
			p->tail = NULL;
		if ((struct change *)strmap_get_h(&p->latest, c->path, c->ent.len, c->ent.hash) == c)
			strmap_del(&p->latest, c->path, c->ent.len);
		free(c);
		p->count--;
	}
}

static void hdr_out(struct jute_out *out, const struct prep_req *r, int32_t type)
{
	if (r->sub)
		return; /* a multi's op: the multi's header holds for it */
	struct txn_hdr h = { r->session, r->cxid, r->zxid, r->time_ms, type };
	txn_hdr_encode(out, &h);
}

/* The parent path as ZooKeeper's getParentPathAndValidate finds it: up to the last '/'. */
static int parent_of(const char *path, size_t len, size_t *plen)
{
	const char *slash = len ? memrchr(path, '/', len) : NULL;
	if (!slash || memchr(path, 0, len))
		return ZBADARGUMENTS;
	*plen = (size_t)(slash - path);
	return 0;
}

/* The system nodes cannot be deleted (ZooKeeper answers BadArguments). */
static bool is_system_path(const char *p, size_t len)
{
	static const char *const sys[] = { "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config" };
	for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
		if (strlen(sys[i]) == len && memcmp(sys[i], p, len) == 0)
			return true;
	return false;
}

/* ZooKeeperServer.checkACL against the newest view of a node: ZNOAUTH or 0. */
static int need_perm(const struct prep *p, const struct prep_req *r, const struct change *view,
		     int32_t perm)
{
	struct acl_who who = { r->auth, r->auth_len, p->skip_acl };
	return acl_allows(view->acl, view->acl_len, perm, &who) ? 0 : ZNOAUTH;
}

/* fixupACL (validation only when out is NULL): ZOK, ZINVALIDACL or ZMARSHALLINGERROR. */
static int fixup_acl(const struct prep_req *r, const uint8_t *acl, size_t len, struct jute_out *out)
{
	return acl_fixup(acl, len, r->auth, r->auth_len, out);
}

struct create_req {
	int32_t type; /* create, create2, createContainer or createTTL */
	const char *path;
	int32_t path_len;
	const uint8_t *data;
	int32_t data_len;
	const uint8_t *acl;
	size_t acl_len;
	int32_t nacl;
	int32_t flags;
	int64_t ttl; /* -1 unless createTTL */
};

/* CreateMode.fromFlag, then validateCreateRequest: a TTL mode needs extendedTypesEnabled
 * and a ttl in 1..2^40-1; any other mode must come without one. The opcode, not the flags,
 * decides a node's kind: create with flag CONTAINER makes a persistent node, createContainer
 * with flag EPHEMERAL a container, as in ZooKeeper 3.8. */
static int check_mode(const struct prep *p, const struct create_req *c)
{
	if (c->flags < 0 || c->flags > ZCF_SEQ_TTL)
		return ZBADARGUMENTS;
	bool ttl_mode = c->flags == ZCF_TTL || c->flags == ZCF_SEQ_TTL;
	if (ttl_mode && !p->extended_types)
		return ZUNIMPLEMENTED;
	if (ttl_mode ? c->ttl <= 0 || c->ttl > TXN_TTL_MAX : c->ttl >= 0)
		return ZBADARGUMENTS;
	/* createTTL in a non-TTL mode with a negative ttl passes ZooKeeper 3.8's checks and
	 * then kills it while applying the CreateTTLTxn; refusing it here is the sane answer. */
	if (c->type == ZOP_CREATETTL && !ttl_mode)
		return ZBADARGUMENTS;
	return 0;
}

/* The ephemeralOwner a create gives its node. */
static int64_t create_owner(const struct prep_req *r, const struct create_req *c)
{
	if (c->type == ZOP_CREATECONTAINER)
		return TREE_OWNER_CONTAINER;
	if (c->type == ZOP_CREATETTL)
		return tree_ttl_owner(c->ttl);
	return c->flags == ZCF_EPHEMERAL || c->flags == (ZCF_EPHEMERAL | ZCF_SEQUENTIAL) ? r->session : 0;
}

static int check_create(struct prep *p, const struct prep_req *r, const struct create_req *c,
			char **full, size_t *full_len, struct change *parent, size_t *plen)
{
	int rc = check_mode(p, c);
	if (rc)
		return rc;
	rc = parent_of(c->path, (size_t)c->path_len, plen);
	if (rc)
		return rc;
	if (c->nacl <= 0)
		return ZINVALIDACL;
	if ((rc = fixup_acl(r, c->acl, c->acl_len, NULL)) != ZOK)
		return rc;
	if (!record_for(p, c->path, *plen, parent))
		return ZNONODE;
	if ((rc = need_perm(p, r, parent, ZPERM_CREATE)) != 0)
		return rc; /* before NodeExists: no probing for names without CREATE */
	size_t len = (size_t)c->path_len;
	char *buf = malloc(len + 12);
	if (!buf) {
		p->fail = -ENOMEM;
		return ZSYSTEMERROR;
	}
	memcpy(buf, c->path, len);
	if (c->flags == ZCF_SEQUENTIAL || c->flags == (ZCF_SEQUENTIAL | ZCF_EPHEMERAL) || c->flags == ZCF_SEQ_TTL)
		len += (size_t)snprintf(buf + len, 12, "%010d", parent->stat.cversion);
	*full = buf;
	*full_len = len;
	if (path_invalid(buf, len))
		return ZBADARGUMENTS;
	struct change existing;
	if (record_for(p, buf, len, &existing))
		return ZNODEEXISTS;
	int64_t owner = parent->stat.ephemeral_owner;
	if (owner != 0 && owner != INT64_MIN && (uint64_t)owner >> 56 != 0xff)
		return ZNOCHILDRENFOREPHEMERALS;
	if (p->enforce_quota)
		return tree_quota_check(p->tree, buf, len, c->data_len > 0 ? c->data_len : 0, 1);
	return 0;
}

/* The txn body for the create's opcode (CreateTxn, CreateContainerTxn or CreateTTLTxn), with
 * the fixed-up ACL; *acl_at and *acl_len locate that ACL in the output. */
static void create_txn_out(struct jute_out *out, const struct prep_req *r, const struct create_req *c,
			   const char *full, size_t full_len, int64_t owner, int32_t new_cversion,
			   size_t *acl_at, size_t *acl_len)
{
	hdr_out(out, r, c->type);
	jout_buf(out, full, (int32_t)full_len);
	jout_buf(out, c->data, c->data_len);
	*acl_at = zbuf_len(out->b);
	int rc = fixup_acl(r, c->acl, c->acl_len, out);
	ZK_ASSERT(rc == ZOK); /* check_create validated the same input */
	*acl_len = zbuf_len(out->b) - *acl_at;
	if (c->type == ZOP_CREATE || c->type == ZOP_CREATE2)
		jout_bool(out, owner != 0);
	jout_i32(out, new_cversion);
	if (c->type == ZOP_CREATETTL)
		jout_i64(out, c->ttl);
}

static int prep_create(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	struct create_req c = { .type = r->type, .ttl = -1 };
	c.path = (const char *)jin_buf(in, &c.path_len);
	c.data = jin_buf(in, &c.data_len);
	c.acl = acl_request_span(in, &c.acl_len, &c.nacl);
	c.flags = jin_i32(in);
	if (c.type == ZOP_CREATETTL)
		c.ttl = jin_i64(in);
	if (!jin_ok(in) || !c.path)
		return ZMARSHALLINGERROR;
	char *full = NULL;
	size_t full_len = 0, plen = 0;
	struct change parent;
	int rc = check_create(p, r, &c, &full, &full_len, &parent, &plen);
	if (rc) {
		free(full);
		return rc;
	}
	int64_t owner = create_owner(r, &c);
	int32_t new_cversion = parent.stat.cversion + 1;
	size_t acl_at, acl_len;
	create_txn_out(out, r, &c, full, full_len, owner, new_cversion, &acl_at, &acl_len);
	if (out->err) {
		free(full);
		return 0; /* nothing fit: nothing is prepped */
	}
	parent.stat.cversion = new_cversion;
	parent.stat.pzxid = r->zxid;
	parent.num_children++;
	struct change node = { .stat = { .czxid = r->zxid, .mzxid = r->zxid, .pzxid = r->zxid,
					 .ctime = r->time_ms, .mtime = r->time_ms,
					 .ephemeral_owner = owner },
			       .acl = zbuf_head(out->b) + acl_at, .acl_len = acl_len,
			       .data_len = c.data_len > 0 ? c.data_len : 0 };
	if (add_change(p, c.path, plen, r->zxid, 1, &parent) < 0 ||
	    add_change(p, full, full_len, r->zxid, 1, &node) < 0)
		p->fail = -ENOMEM;
	free(full);
	return 0;
}

static int check_version(int32_t current, int32_t expected)
{
	return expected != -1 && expected != current ? ZBADVERSION : 0;
}

static int prep_delete(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	int32_t len;
	const char *path = (const char *)jin_buf(in, &len);
	int32_t version = jin_i32(in);
	if (!jin_ok(in) || !path)
		return ZMARSHALLINGERROR;
	size_t plen;
	int rc = parent_of(path, (size_t)len, &plen);
	if (rc)
		return rc;
	if (is_system_path(path, (size_t)len))
		return ZBADARGUMENTS;
	struct change parent, node;
	if (!record_for(p, path, plen, &parent))
		return ZNONODE;
	if ((rc = need_perm(p, r, &parent, ZPERM_DELETE)) != 0)
		return rc;
	if (!record_for(p, path, (size_t)len, &node))
		return ZNONODE;
	if ((rc = check_version(node.stat.version, version)) != 0)
		return rc;
	if (node.num_children > 0)
		return ZNOTEMPTY;
	hdr_out(out, r, ZOP_DELETE);
	jout_buf(out, path, len);
	if (out->err)
		return 0;
	parent.num_children--;
	parent.stat.pzxid = r->zxid;
	if (add_change(p, path, plen, r->zxid, 1, &parent) < 0 ||
	    add_change(p, path, (size_t)len, r->zxid, 0, NULL) < 0)
		p->fail = -ENOMEM;
	return 0;
}

/* The reaper's deleteContainer (ZooKeeper's, plus two re-checks): the node must still be a
 * container or TTL node due for deletion in the newest view; the reaper chose it from the
 * applied tree, and writes in flight may have given it a child, new data or a new owner. */
static int prep_delete_container(struct prep *p, const struct prep_req *r, struct jute_out *out)
{
	const char *path = (const char *)r->body;
	size_t len = r->body_len, plen;
	if (len > INT32_MAX || !path)
		return ZBADARGUMENTS;
	int rc = parent_of(path, len, &plen);
	if (rc)
		return rc;
	if (is_system_path(path, len))
		return ZBADARGUMENTS;
	struct change parent, node;
	if (!record_for(p, path, len, &node) || !record_for(p, path, plen, &parent))
		return ZNONODE;
	if (node.num_children > 0)
		return ZNOTEMPTY;
	if (!tree_owner_is_reapable(node.stat.ephemeral_owner) ||
	    !tree_reap_due(&node.stat, 0, r->time_ms, p->reap_never_used_ms, p->extended_types))
		return ZBADVERSION; /* ZooKeeper's answer for a node that is not a container */
	hdr_out(out, r, ZOP_DELETECONTAINER);
	jout_buf(out, path, (int32_t)len);
	if (out->err)
		return 0;
	parent.num_children--;
	parent.stat.pzxid = r->zxid;
	if (add_change(p, path, plen, r->zxid, 1, &parent) < 0 ||
	    add_change(p, path, len, r->zxid, 0, NULL) < 0)
		p->fail = -ENOMEM;
	return 0;
}

/* The newest view of an existing node named by a client (setData, check). */
static int node_view(struct prep *p, const char *path, int32_t len, struct change *node)
{
	if (path_invalid(path, (size_t)len))
		return ZBADARGUMENTS;
	return record_for(p, path, (size_t)len, node) ? 0 : ZNONODE;
}

static int prep_setdata(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	int32_t len, dlen;
	const char *path = (const char *)jin_buf(in, &len);
	const uint8_t *data = jin_buf(in, &dlen);
	int32_t version = jin_i32(in);
	if (!jin_ok(in) || !path)
		return ZMARSHALLINGERROR;
	struct change node;
	int rc = node_view(p, path, len, &node);
	if (rc || (rc = need_perm(p, r, &node, ZPERM_WRITE)) != 0)
		return rc;
	/* ZooKeeper checks the quota before the version. */
	int32_t new_len = dlen > 0 ? dlen : 0;
	if (p->enforce_quota)
		rc = tree_quota_check(p->tree, path, (size_t)len, (int64_t)new_len - node.data_len, 0);
	if (rc || (rc = check_version(node.stat.version, version)) != 0)
		return rc;
	int32_t new_version = node.stat.version + 1;
	hdr_out(out, r, ZOP_SETDATA);
	jout_buf(out, path, len);
	jout_buf(out, data, dlen);
	jout_i32(out, new_version);
	if (out->err)
		return 0;
	node.stat.version = new_version;
	node.stat.mzxid = r->zxid;
	node.stat.mtime = r->time_ms;
	node.data_len = new_len;
	if (add_change(p, path, (size_t)len, r->zxid, 1, &node) < 0)
		p->fail = -ENOMEM;
	return 0;
}

/* setACL: fixupACL, NoNode, ADMIN, then the aversion; the txn carries the fixed ACL and the
 * new aversion (PrepRequestProcessor's order). */
static int prep_setacl(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	int32_t len, nacl;
	size_t acl_len;
	const char *path = (const char *)jin_buf(in, &len);
	const uint8_t *acl = acl_request_span(in, &acl_len, &nacl);
	int32_t version = jin_i32(in);
	if (!jin_ok(in) || !path)
		return ZMARSHALLINGERROR;
	if (path_invalid(path, (size_t)len))
		return ZBADARGUMENTS;
	if (nacl <= 0)
		return ZINVALIDACL;
	int rc = fixup_acl(r, acl, acl_len, NULL);
	if (rc != ZOK)
		return rc;
	struct change node;
	if (!record_for(p, path, (size_t)len, &node))
		return ZNONODE;
	rc = need_perm(p, r, &node, ZPERM_ADMIN);
	if (rc || (rc = check_version(node.stat.aversion, version)) != 0)
		return rc;
	int32_t new_aversion = node.stat.aversion + 1;
	hdr_out(out, r, ZOP_SETACL);
	jout_buf(out, path, len);
	size_t acl_at = zbuf_len(out->b);
	rc = fixup_acl(r, acl, acl_len, out);
	ZK_ASSERT(rc == ZOK);
	jout_i32(out, new_aversion);
	if (out->err)
		return 0;
	node.stat.aversion = new_aversion;
	node.acl = zbuf_head(out->b) + acl_at;
	node.acl_len = zbuf_len(out->b) - 4 - acl_at;
	if (add_change(p, path, (size_t)len, r->zxid, 1, &node) < 0)
		p->fail = -ENOMEM;
	return 0;
}

/* Paths of the session's ephemerals in the newest view: the tree's whose newest record
 * (if any) still shows them owned by the session, plus every newest record of a path the
 * session owns that the tree does not hold as its ephemeral yet. */
static bool owned_in_tree(const struct prep *p, const char *path, size_t len, int64_t session)
{
	struct tree_node *n = tree_lookup(p->tree, path, len);
	return n && n->stat.ephemeral_owner == session;
}

static int prep_close_session(struct prep *p, const struct prep_req *r, struct jute_out *out)
{
	hdr_out(out, r, ZOP_CLOSESESSION);
	size_t count_at = zbuf_len(out->b);
	jout_i32(out, 0);
	int32_t n = 0;
	const struct tree_eph_list *l = tree_ephemerals(p->tree, r->session);
	for (struct tree_node *e = l ? l->head : NULL; e; e = e->eph_next) {
		size_t len = tree_node_path_len(e);
		char *buf = malloc(len + 1);
		if (!buf) {
			p->fail = -ENOMEM;
			return 0;
		}
		tree_node_path(e, buf, len + 1);
		struct change *c = (struct change *)strmap_get(&p->latest, buf, len);
		if (!c || (c->exists && c->stat.ephemeral_owner == r->session)) {
			jout_buf(out, buf, (int32_t)len);
			n++;
		}
		free(buf);
	}
	for (struct change *c = p->head; c; c = c->next) {
		if (!c->exists || c->stat.ephemeral_owner != r->session)
			continue;
		if ((struct change *)strmap_get_h(&p->latest, c->path, c->ent.len, c->ent.hash) != c)
			continue; /* changed again since: the newest record decides */
		if (owned_in_tree(p, c->path, c->ent.len, r->session))
			continue; /* listed from the tree */
		jout_buf(out, c->path, (int32_t)c->ent.len);
		n++;
	}
	if (out->err)
		return 0;
	be32_put(zbuf_head(out->b) + count_at, (uint32_t)n);
	/* Each listed node is gone in the newest view. */
	struct jute_in it;
	jin_init(&it, zbuf_head(out->b) + count_at + 4, zbuf_len(out->b) - count_at - 4);
	const char *path;
	int32_t len;
	while (txn_next_path(&it, &path, &len)) {
		size_t plen;
		struct change parent;
		if (parent_of(path, (size_t)len, &plen) == 0 && record_for(p, path, plen, &parent)) {
			parent.num_children--;
			parent.stat.pzxid = r->zxid;
			if (add_change(p, path, plen, r->zxid, 1, &parent) < 0)
				p->fail = -ENOMEM;
		}
		if (add_change(p, path, (size_t)len, r->zxid, 0, NULL) < 0)
			p->fail = -ENOMEM;
	}
	return 0;
}

/* check (multi only): the node exists in the newest view with the expected version. The
 * txn carries the version + 1, as ZooKeeper's checkAndIncVersion returns it; it changes
 * nothing, so no change record. ZooKeeper 3.8.0 checks READ permission on the node
 * between the lookup and the version check. */
static int prep_check(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	int32_t len;
	const char *path = (const char *)jin_buf(in, &len);
	int32_t version = jin_i32(in);
	if (!jin_ok(in) || !path)
		return ZMARSHALLINGERROR;
	struct change node;
	int rc = node_view(p, path, len, &node);
	if (rc || (rc = need_perm(p, r, &node, ZPERM_READ)) != 0)
		return rc; /* ZooKeeper checks READ for a check op */
	if ((rc = check_version(node.stat.version, version)) != 0)
		return rc;
	hdr_out(out, r, ZOP_CHECK);
	jout_buf(out, path, len);
	jout_i32(out, (int32_t)((uint32_t)node.stat.version + 1u));
	return 0;
}

static int prep_multi(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out);

/* One write: its checks, then its txn (a multi's op: the body only) and change records.
 * Returns 0, or the ZooKeeper error of the first failed check (then nothing was recorded). */
static int prep_op(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	switch (r->type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
	case ZOP_CREATECONTAINER:
	case ZOP_CREATETTL:
		return prep_create(p, r, in, out);
	case ZOP_DELETECONTAINER:
		/* Only the reaper's own request is served; a client's is refused as ZooKeeper 3.8
		 * refuses it (BadArguments, logged as an ErrorTxn). */
		return r->internal ? prep_delete_container(p, r, out) : ZBADARGUMENTS;
	case ZOP_DELETE:
		return prep_delete(p, r, in, out);
	case ZOP_SETDATA:
		return prep_setdata(p, r, in, out);
	case ZOP_SETACL:
		return prep_setacl(p, r, in, out);
	case ZOP_CHECK:
		return r->sub ? prep_check(p, r, in, out) : ZUNIMPLEMENTED;
	case ZOP_MULTI:
		return r->sub ? ZUNIMPLEMENTED : prep_multi(p, r, in, out);
	case ZOP_CREATESESSION:
		hdr_out(out, r, ZOP_CREATESESSION);
		jout_i32(out, r->session_timeout_ms);
		return 0;
	case ZOP_CLOSESESSION:
		return prep_close_session(p, r, out);
	default:
		return ZUNIMPLEMENTED;
	}
}

/* ------------------------------------------------------------------ multi
 * The request is parsed by tree/multi.c. As ZooKeeper 3.8's PrepRequestProcessor:
 *  - a malformed record, or a multi of read ops, is an ErrorTxn(MarshallingError), as is
 *    a create op with TTL flags in a CreateRequest (MULTI_BAD_TTL) once it is reached;
 *  - each op is checked against the view that includes the ops before it (they all carry
 *    the multi's zxid); the first that fails turns into ErrorTxn(err), the ones after it
 *    into ErrorTxn(RUNTIMEINCONSISTENCY) without being checked, and the change records of
 *    the ops before it are rolled back (rollbackPendingChanges). Those ops stay in the
 *    MultiTxn with their own types: the tree turns them into ErrorTxn(OK) when applying. */
bool prep_multi_logged(const uint8_t *body, size_t len)
{
	return multi_shape(body, len) != MULTI_SHAPE_NULL_PATH;
}

/* Undo the change records added after `mark` (the tail before the multi), newest first, so
 * each path's newest record is again the one from before the multi. Cannot fail. */
static void rollback(struct prep *p, struct change *mark)
{
	struct change *c = mark ? mark->next : p->head, *rev = NULL;
	while (c) {
		struct change *next = c->next;
		c->next = rev;
		rev = c;
		c = next;
	}
	if (mark) mark->next = NULL; else p->head = NULL;
	p->tail = mark;
	while (rev) {
		c = rev;
		rev = c->next;
		if (c->shadowed) {
			struct strmap_ent *was = strmap_replace(&p->latest, &c->shadowed->ent);
			ZK_ASSERT(was == &c->ent);
		} else {
			struct strmap_ent *was = strmap_del(&p->latest, c->path, c->ent.len);
			ZK_ASSERT(was == &c->ent);
		}
		free(c);
		p->count--;
	}
}

static void sub_error(struct jute_out *out, int32_t err)
{
	jout_i32(out, ZOP_ERROR);
	jout_i32(out, 4);
	jout_i32(out, err);
}

/* One op into the MultiTxn as Txn{type, buffer body}; 0 or its error (nothing written). */
static int multi_op_out(struct prep *p, const struct prep_req *r, const struct multi_op *op,
			struct jute_out *out)
{
	struct prep_req sr = *r;
	sr.type = op->type;
	sr.body = op->rec;
	sr.body_len = op->rec_len;
	sr.sub = true;
	size_t at = zbuf_len(out->b);
	jout_i32(out, op->type);
	jout_i32(out, 0);
	struct jute_in in;
	jin_init(&in, op->rec, op->rec_len);
	int err = prep_op(p, &sr, &in, out);
	if (err) {
		zbuf_truncate(out->b, at);
		return err;
	}
	if (!out->err)
		be32_put(zbuf_head(out->b) + at + 4, (uint32_t)(zbuf_len(out->b) - at - 8));
	return 0;
}

static int prep_multi(struct prep *p, const struct prep_req *r, struct jute_in *in, struct jute_out *out)
{
	enum multi_shape shape = multi_shape(in->p + in->off, jin_left(in));
	if (shape != MULTI_SHAPE_WRITES && shape != MULTI_SHAPE_EMPTY)
		return ZMARSHALLINGERROR;
	struct change *mark = p->tail;
	hdr_out(out, r, ZOP_MULTI);
	size_t count_at = zbuf_len(out->b);
	jout_i32(out, 0);
	int32_t n = 0, failed = r->err;
	struct multi_op op;
	while (multi_next(in, &op) == 1 && !p->fail && !out->err) {
		n++;
		if (failed) {
			sub_error(out, n == 1 && r->err ? r->err : ZRUNTIMEINCONSISTENCY);
			continue;
		}
		if (op.type == MULTI_BAD_TTL) {
			rollback(p, mark);
			return ZMARSHALLINGERROR;
		}
		int err = multi_op_out(p, r, &op, out);
		if (err) {
			rollback(p, mark);
			sub_error(out, err);
			failed = err;
		}
	}
	if (p->fail || out->err) {
		rollback(p, mark); /* prep_write drops the txn */
		return 0;
	}
	be32_put(zbuf_head(out->b) + count_at, (uint32_t)n);
	return 0;
}

int prep_write(struct prep *p, const struct prep_req *r, struct jute_out *out)
{
	struct jute_in in;
	jin_init(&in, r->body, r->body_len);
	size_t mark = zbuf_len(out->b);
	p->fail = 0;
	int rc;
	if (r->err && r->type != ZOP_MULTI)
		rc = r->err; /* decided by the caller: only the ErrorTxn below is written */
	else
		rc = prep_op(p, r, &in, out);
	/* rc is a ZooKeeper error code here, never an errno: system failures are in p->fail. */
	if (p->fail || out->err) {
		if (zbuf_len(out->b) >= mark)
			zbuf_truncate(out->b, mark);
		return p->fail ? p->fail : out->err;
	}
	if (rc != ZOK) {
		/* A failed check: the txn becomes ErrorTxn{err}. */
		zbuf_truncate(out->b, mark);
		hdr_out(out, r, ZOP_ERROR);
		jout_i32(out, rc);
	}
	return out->err;
}
