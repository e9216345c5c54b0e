/* dump-log: a txn log in human-readable form, one txn a line, like ZooKeeper's
 * zkTxnLogToolkit. A bad record ends the dump with its offset and reason. */
#include "wal/wal.h"
#include "net/proto.h"
#include "tree/txn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *type_name(int32_t t)
{
	switch (t) {
	case ZOP_CREATE: return "create";
	case ZOP_CREATE2: return "create2";
	case ZOP_DELETE: return "delete";
	case ZOP_SETDATA: return "setData";
	case ZOP_SETACL: return "setACL";
	case ZOP_MULTI: return "multi";
	case ZOP_CREATESESSION: return "createSession";
	case ZOP_CLOSESESSION: return "closeSession";
	case ZOP_ERROR: return "error";
	case ZOP_CREATECONTAINER: return "createContainer";
	case ZOP_DELETECONTAINER: return "deleteContainer";
	case ZOP_CREATETTL: return "createTTL";
	case ZOP_CHECK: return "check";
	default: return "unknown";
	}
}

/* Print data as text when it is printable, else as a byte count. */
static void print_data(FILE *f, const uint8_t *d, int32_t len)
{
	if (!d) {
		fputs(" data=null", f);
		return;
	}
	for (int32_t i = 0; i < len; i++) {
		if (d[i] < 0x20 || d[i] > 0x7e) {
			fprintf(f, " data=<%d bytes>", len);
			return;
		}
	}
	fprintf(f, " data='%.*s'", len > 200 ? 200 : len, (const char *)d);
}

/* A string field, non-printable bytes as '?'. */
static void print_str(FILE *f, const uint8_t *s, int32_t len)
{
	for (int32_t i = 0; i < len && i < 200; i++)
		fputc(s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?', f);
}

/* acl=[perms:scheme:id,...] for a vector<ACL> txn_decode already validated. */
static void print_acl(FILE *f, const uint8_t *acl, size_t len)
{
	struct jute_in in;
	jin_init(&in, acl, len);
	int32_t n = jin_vec(&in, TXN_MAX_ACL);
	fputs(" acl=[", f);
	for (int32_t i = 0; i < n && jin_ok(&in); i++) {
		int32_t perms = jin_i32(&in), sl, il;
		const uint8_t *scheme = jin_buf(&in, &sl);
		const uint8_t *id = jin_buf(&in, &il);
		fprintf(f, "%s%d:", i ? "," : "", perms);
		print_str(f, scheme, sl);
		fputc(':', f);
		print_str(f, id, il);
	}
	fputc(']', f);
}

static void print_body(FILE *f, const struct txn *t);

static void print_txn(FILE *f, const uint8_t *e, size_t len)
{
	struct txn x;
	int rc = txn_decode(e, len, &x);
	time_t secs = (time_t)(x.hdr.time_ms / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&secs, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "%s.%03dZ session 0x%" PRIx64 " cxid 0x%x zxid 0x%" PRIx64 " %s", when,
		(int)(x.hdr.time_ms % 1000), (uint64_t)x.hdr.client_id, (unsigned)x.hdr.cxid,
		(uint64_t)x.hdr.zxid, type_name(x.hdr.type));
	if (rc < 0) {
		fprintf(f, " (type %d, body not decoded: %s)\n", x.hdr.type,
			rc == -EPROTONOSUPPORT ? "not supported" : "malformed");
		return;
	}
	print_body(f, &x);
	fputc('\n', f);
}

/* A multi: its ops in order, each "| type fields" (txn_decode checked every one). */
static void print_multi(FILE *f, const struct txn *x)
{
	struct jute_in it;
	int32_t type, len;
	const uint8_t *body;
	struct txn sub;
	fprintf(f, " ops=%d", x->nsubs);
	jin_init(&it, x->subs, x->subs_len);
	while (txn_next_sub(&it, &type, &body, &len)) {
		fprintf(f, " | %s", type_name(type));
		if (txn_decode_sub(&x->hdr, type, body, (size_t)len, &sub) == 0)
			print_body(f, &sub);
	}
}

static void print_body(FILE *f, const struct txn *t)
{
	const struct txn x = *t;
	switch (x.hdr.type) {
	case ZOP_CREATE:
	case ZOP_CREATE2:
		fprintf(f, " '%.*s'", x.path_len, x.path);
		print_data(f, x.data, x.data_len);
		fprintf(f, " ephemeral=%d parentCVersion=%d", x.ephemeral, x.parent_cversion);
		break;
	case ZOP_CREATECONTAINER:
	case ZOP_CREATETTL:
		fprintf(f, " '%.*s'", x.path_len, x.path);
		print_data(f, x.data, x.data_len);
		fprintf(f, " parentCVersion=%d", x.parent_cversion);
		if (x.hdr.type == ZOP_CREATETTL)
			fprintf(f, " ttl=%" PRId64, x.ttl);
		break;
	case ZOP_DELETE:
	case ZOP_DELETECONTAINER:
		fprintf(f, " '%.*s'", x.path_len, x.path);
		break;
	case ZOP_SETDATA:
		fprintf(f, " '%.*s'", x.path_len, x.path);
		print_data(f, x.data, x.data_len);
		fprintf(f, " version=%d", x.version);
		break;
	case ZOP_SETACL:
		fprintf(f, " '%.*s'", x.path_len, x.path);
		print_acl(f, x.acl, x.acl_len);
		fprintf(f, " aversion=%d", x.version);
		break;
	case ZOP_CREATESESSION:
		fprintf(f, " timeout=%d", x.timeout_ms);
		break;
	case ZOP_CLOSESESSION: {
		struct jute_in it;
		const char *p;
		int32_t n;
		jin_init(&it, x.paths, x.paths_len);
		while (txn_next_path(&it, &p, &n))
			fprintf(f, " '%.*s'", n, p);
		break;
	}
	case ZOP_ERROR:
		fprintf(f, " err=%d", x.err);
		break;
	case ZOP_CHECK:
		fprintf(f, " '%.*s' version=%d", x.path_len, x.path, x.version);
		break;
	case ZOP_MULTI:
		print_multi(f, &x);
		break;
	default:
		break;
	}
}

int wal_dump(const struct zk_fileops *ops, const char *path, FILE *out, char *err, size_t errlen)
{
	struct wal_reader r;
	int rc = wal_reader_open(&r, ops, path);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, r.err);
		wal_reader_close(&r);
		return rc;
	}
	fprintf(out, "ZooKeeper Transactional Log File %s, txnlog format version %d\n", path, WAL_VERSION);
	const uint8_t *e;
	size_t len;
	int64_t zxid;
	uint64_t n = 0;
	while ((rc = wal_reader_next(&r, &e, &len, &zxid)) == 1) {
		print_txn(out, e, len);
		n++;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, r.err);
	else
		fprintf(out, "EOF reached after %" PRIu64 " txns.\n", n);
	wal_reader_close(&r);
	return rc;
}
