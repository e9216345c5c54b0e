/* cclient: proves a server works with the Apache ZooKeeper C client (libzookeeper_mt), the
 * client most C and C++ programs link.
 *
 *   cclient basic HOST:PORT BASE     CRUD, versions, errors, Stat fields, sequential and
 *                                    ephemeral nodes, children and watches under BASE;
 *                                    exits 0 if every check passed, 1 on the first mismatch.
 *   cclient agent HOST:PORT SPEC...  sets one watch per SPEC ("d:/p" data, "e:/p" exists,
 *                                    "c:/p" children), prints "WATCHING", then one line per
 *                                    event ("EVENT <type> <path>", "SESSION <state>") until
 *                                    stdin closes.  test_cclient.py drives it through a proxy
 *                                    to see the client's SetWatches re-arm watches on reconnect.
 *
 * Event and state numbers are Watcher.Event.EventType / KeeperState values.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The synchronous API is declared only for the multi-threaded library we link. */
#define THREADED 1
#include <zookeeper/zookeeper.h>

#define CONNECT_TIMEOUT_S 15
#define EVENT_TIMEOUT_S 10
#define QUIET_MS 500
#define SESSION_TIMEOUT_MS 10000
#define MAX_EVENTS 64
#define PATH_MAX_LEN 512

struct event {
	int type;
	char path[PATH_MAX_LEN];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int connected_count;
static struct event events[MAX_EVENTS];
static int n_events;
static int agent_mode;

static void fail(int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cclient: FAIL line %d: ", line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__LINE__, __VA_ARGS__); } while (0)
#define CHECK_RC(rc, want, what) \
	CHECK((rc) == (want), "%s: got %d (%s), want %d (%s)", (what), (rc), zerror(rc), \
	      (want), zerror(want))

static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&mu);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&mu);
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)path;
	(void)ctx;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&mu);
	if (state == ZOO_CONNECTED_STATE)
		connected_count++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (agent_mode)
		say("SESSION %d\n", state);
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)ctx;
	if (type == ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&mu);
	if (n_events < MAX_EVENTS) {
		events[n_events].type = type;
		snprintf(events[n_events].path, sizeof(events[n_events].path), "%s", path);
		n_events++;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (agent_mode)
		say("EVENT %d %s\n", type, path);
}

static struct timespec deadline_after_ms(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Wait until at least `count` node events were recorded; returns how many there are. */
static int wait_events(int count, long timeout_ms)
{
	struct timespec until = deadline_after_ms(timeout_ms);
	int n;

	pthread_mutex_lock(&mu);
	while (n_events < count) {
		if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
			break;
	}
	n = n_events;
	pthread_mutex_unlock(&mu);
	return n;
}

static void expect_event(int idx, int type, const char *path)
{
	int n = wait_events(idx + 1, EVENT_TIMEOUT_S * 1000L);

	CHECK(n > idx, "event #%d (type %d on %s) never arrived", idx, type, path);
	pthread_mutex_lock(&mu);
	CHECK(events[idx].type == type && strcmp(events[idx].path, path) == 0,
	      "event #%d: got type %d on %s, want type %d on %s", idx, events[idx].type,
	      events[idx].path, type, path);
	pthread_mutex_unlock(&mu);
}

static zhandle_t *connect_to(const char *hosts)
{
	struct timespec until = deadline_after_ms(CONNECT_TIMEOUT_S * 1000L);
	int before;
	zhandle_t *zh;

	pthread_mutex_lock(&mu);
	before = connected_count;
	pthread_mutex_unlock(&mu);
	zh = zookeeper_init(hosts, session_watcher, SESSION_TIMEOUT_MS, NULL, NULL, 0);
	CHECK(zh != NULL, "zookeeper_init(%s) failed: %s", hosts, strerror(errno));
	pthread_mutex_lock(&mu);
	while (connected_count == before) {
		if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
			break;
	}
	CHECK(connected_count > before, "no connection to %s within %ds", hosts, CONNECT_TIMEOUT_S);
	pthread_mutex_unlock(&mu);
	return zh;
}

static void join(char *out, size_t n, const char *a, const char *b)
{
	int len = snprintf(out, n, "%s%s", a, b);

	CHECK(len > 0 && (size_t)len < n, "path too long: %s%s", a, b);
}

static void check_stat_equal(const struct Stat *a, const struct Stat *b, const char *what)
{
	CHECK(a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
	      a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
	      a->aversion == b->aversion && a->ephemeralOwner == b->ephemeralOwner &&
	      a->dataLength == b->dataLength && a->numChildren == b->numChildren &&
	      a->pzxid == b->pzxid, "%s: stats differ", what);
}

static int has_child(const struct String_vector *v, const char *name)
{
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->data[i], name) == 0)
			return 1;
	return 0;
}

static void check_data(zhandle_t *zh, const char *path, const char *want, struct Stat *st)
{
	char buf[256];
	int len = sizeof(buf);
	int rc = zoo_get(zh, path, 0, buf, &len, st);

	CHECK_RC(rc, ZOK, path);
	CHECK(len == (int)strlen(want) && memcmp(buf, want, (size_t)len) == 0,
	      "%s: data %.*s, want %s", path, len, buf, want);
}

/* Create, read, version checks and error codes on one persistent node. */
static void basic_crud(zhandle_t *zh, const char *base)
{
	char path[PATH_MAX_LEN], out[PATH_MAX_LEN];
	struct Stat st_create, st_get, st;
	int rc;

	rc = zoo_create(zh, base, "root", 4, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, out, sizeof(out));
	CHECK_RC(rc, ZOK, "create base");
	CHECK(strcmp(out, base) == 0, "create returned %s", out);
	rc = zoo_create(zh, base, "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	CHECK_RC(rc, ZNODEEXISTS, "create existing");

	join(path, sizeof(path), base, "/p");
	rc = zoo_create2(zh, path, "pdata", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, out,
			 sizeof(out), &st_create);
	CHECK_RC(rc, ZOK, "create2");
	CHECK(st_create.czxid == st_create.mzxid && st_create.czxid == st_create.pzxid,
	      "create2 zxids differ");
	CHECK(st_create.version == 0 && st_create.dataLength == 5 && st_create.numChildren == 0 &&
	      st_create.ephemeralOwner == 0, "create2 stat fields");
	check_data(zh, path, "pdata", &st_get);
	check_stat_equal(&st_create, &st_get, "create2 vs get");

	rc = zoo_set(zh, path, "v1", 2, 0);
	CHECK_RC(rc, ZOK, "set version 0");
	rc = zoo_set(zh, path, "v2", 2, 0);
	CHECK_RC(rc, ZBADVERSION, "set stale version");
	rc = zoo_set2(zh, path, "v2", 2, 1, &st);
	CHECK_RC(rc, ZOK, "set2 version 1");
	CHECK(st.version == 2 && st.czxid == st_create.czxid && st.mzxid > st_create.mzxid &&
	      st.dataLength == 2, "set2 stat");
	check_data(zh, path, "v2", &st_get);

	rc = zoo_delete(zh, path, 5);
	CHECK_RC(rc, ZBADVERSION, "delete wrong version");
	rc = zoo_delete(zh, path, 2);
	CHECK_RC(rc, ZOK, "delete");
	rc = zoo_exists(zh, path, 0, &st);
	CHECK_RC(rc, ZNONODE, "exists after delete");
	rc = zoo_delete(zh, path, -1);
	CHECK_RC(rc, ZNONODE, "delete again");
	join(path, sizeof(path), base, "/missing/child");
	rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	CHECK_RC(rc, ZNONODE, "create without parent");
}

/* Ephemeral and sequential nodes; the suffix counts creates under the parent. */
static void ephemeral_and_sequential(zhandle_t *zh, const char *base)
{
	char path[PATH_MAX_LEN], out[PATH_MAX_LEN], want[PATH_MAX_LEN];
	struct String_vector kids;
	struct Stat st;
	int rc;

	join(path, sizeof(path), base, "/eph");
	rc = zoo_create(zh, path, "e", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
	CHECK_RC(rc, ZOK, "create ephemeral");
	rc = zoo_exists(zh, path, 0, &st);
	CHECK_RC(rc, ZOK, "exists ephemeral");
	CHECK(st.ephemeralOwner == zoo_client_id(zh)->client_id,
	      "ephemeralOwner %lld, session %lld", (long long)st.ephemeralOwner,
	      (long long)zoo_client_id(zh)->client_id);
	join(path, sizeof(path), base, "/eph/c");
	rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	CHECK_RC(rc, ZNOCHILDRENFOREPHEMERALS, "child of ephemeral");

	/* creates so far under base: p, eph (p's delete does not count) */
	join(path, sizeof(path), base, "/s-");
	for (int i = 2; i <= 3; i++) {
		rc = zoo_create(zh, path, "s", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
				out, sizeof(out));
		CHECK_RC(rc, ZOK, "create sequential");
		snprintf(want, sizeof(want), "%s/s-%010d", base, i);
		CHECK(strcmp(out, want) == 0, "sequential name %s, want %s", out, want);
	}
	join(path, sizeof(path), base, "/e-");
	rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, out,
			sizeof(out));
	CHECK_RC(rc, ZOK, "create ephemeral sequential");
	snprintf(want, sizeof(want), "%s/e-%010d", base, 4);
	CHECK(strcmp(out, want) == 0, "ephemeral sequential name %s, want %s", out, want);

	rc = zoo_get_children2(zh, base, 0, &kids, &st);
	CHECK_RC(rc, ZOK, "get_children2");
	CHECK(kids.count == 4 && has_child(&kids, "eph") && has_child(&kids, "s-0000000002") &&
	      has_child(&kids, "s-0000000003") && has_child(&kids, "e-0000000004"),
	      "children of base (%d)", kids.count);
	deallocate_String_vector(&kids);
	CHECK(st.numChildren == 4, "numChildren %d", st.numChildren);
	CHECK(st.cversion == 6, "cversion %d, want 5 creates + 1 delete", st.cversion);
	rc = zoo_delete(zh, base, -1);
	CHECK_RC(rc, ZNOTEMPTY, "delete non-empty");
}

/* One-shot data, child, exists and delete watches, triggered from a second session. */
static void watches(zhandle_t *zh, zhandle_t *other, const char *base)
{
	char seq[PATH_MAX_LEN], fresh[PATH_MAX_LEN], later[PATH_MAX_LEN];
	char buf[64];
	int len = sizeof(buf);
	struct String_vector kids;
	struct Stat st;
	int rc;

	join(seq, sizeof(seq), base, "/s-0000000002");
	join(fresh, sizeof(fresh), base, "/fresh");
	join(later, sizeof(later), base, "/later");

	rc = zoo_wget(zh, seq, node_watcher, NULL, buf, &len, &st);
	CHECK_RC(rc, ZOK, "wget");
	CHECK_RC(zoo_set(other, seq, "changed", 7, -1), ZOK, "set from other session");
	expect_event(0, ZOO_CHANGED_EVENT, seq);
	CHECK_RC(zoo_set(other, seq, "again", 5, -1), ZOK, "second set");
	CHECK(wait_events(2, QUIET_MS) == 1, "data watch fired twice");

	rc = zoo_wget_children(zh, base, node_watcher, NULL, &kids);
	CHECK_RC(rc, ZOK, "wget_children");
	deallocate_String_vector(&kids);
	CHECK_RC(zoo_create(other, fresh, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0),
		 ZOK, "create fresh");
	expect_event(1, ZOO_CHILD_EVENT, base);

	rc = zoo_wexists(zh, later, node_watcher, NULL, &st);
	CHECK_RC(rc, ZNONODE, "wexists");
	CHECK_RC(zoo_create(other, later, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0),
		 ZOK, "create later");
	expect_event(2, ZOO_CREATED_EVENT, later);

	len = sizeof(buf);
	rc = zoo_wget(zh, fresh, node_watcher, NULL, buf, &len, &st);
	CHECK_RC(rc, ZOK, "wget fresh");
	CHECK_RC(zoo_delete(other, fresh, -1), ZOK, "delete fresh");
	expect_event(3, ZOO_DELETED_EVENT, fresh);
	CHECK(wait_events(5, QUIET_MS) == 4, "unexpected extra events");
}

static void cleanup(zhandle_t *zh, const char *base)
{
	struct String_vector kids;
	char path[PATH_MAX_LEN];

	CHECK_RC(zoo_get_children(zh, base, 0, &kids), ZOK, "cleanup list");
	for (int i = 0; i < kids.count; i++) {
		int len = snprintf(path, sizeof(path), "%s/%s", base, kids.data[i]);

		CHECK(len > 0 && (size_t)len < sizeof(path), "path too long");
		CHECK_RC(zoo_delete(zh, path, -1), ZOK, path);
	}
	deallocate_String_vector(&kids);
	CHECK_RC(zoo_delete(zh, base, -1), ZOK, "cleanup base");
}

static int run_basic(const char *hosts, const char *base)
{
	char path[PATH_MAX_LEN];
	struct String_vector kids;
	zhandle_t *zh = connect_to(hosts);
	zhandle_t *other = connect_to(hosts);
	struct Stat st;

	CHECK(zoo_client_id(zh)->client_id != zoo_client_id(other)->client_id, "same session id");
	CHECK(zoo_recv_timeout(zh) == SESSION_TIMEOUT_MS, "negotiated timeout %d",
	      zoo_recv_timeout(zh));
	basic_crud(zh, base);
	ephemeral_and_sequential(zh, base);
	watches(zh, other, base);

	CHECK_RC(zookeeper_close(zh), ZOK, "close");
	join(path, sizeof(path), base, "/eph");
	CHECK_RC(zoo_exists(other, path, 0, &st), ZNONODE, "ephemeral after close");
	CHECK_RC(zoo_get_children(other, base, 0, &kids), ZOK, "children after close");
	CHECK(kids.count == 3 && !has_child(&kids, "eph") && !has_child(&kids, "e-0000000004"),
	      "ephemerals left: %d children", kids.count);
	deallocate_String_vector(&kids);
	cleanup(other, base);
	CHECK_RC(zookeeper_close(other), ZOK, "close other");
	puts("OK");
	return 0;
}

static int run_agent(const char *hosts, int nspecs, char **specs)
{
	zhandle_t *zh;
	char line[64];

	agent_mode = 1;
	zh = connect_to(hosts);
	for (int i = 0; i < nspecs; i++) {
		const char *path = specs[i] + 2;
		char buf[64];
		int len = sizeof(buf);
		struct String_vector kids;
		struct Stat st;
		int rc;

		CHECK(strlen(specs[i]) > 2 && specs[i][1] == ':', "bad spec %s", specs[i]);
		if (specs[i][0] == 'd') {
			rc = zoo_wget(zh, path, node_watcher, NULL, buf, &len, &st);
			CHECK_RC(rc, ZOK, path);
		} else if (specs[i][0] == 'e') {
			rc = zoo_wexists(zh, path, node_watcher, NULL, &st);
			CHECK(rc == ZOK || rc == ZNONODE, "wexists %s: %s", path, zerror(rc));
		} else if (specs[i][0] == 'c') {
			rc = zoo_wget_children(zh, path, node_watcher, NULL, &kids);
			CHECK_RC(rc, ZOK, path);
			deallocate_String_vector(&kids);
		} else {
			fail(__LINE__, "bad spec %s", specs[i]);
		}
	}
	say("WATCHING 0x%llx\n", (unsigned long long)zoo_client_id(zh)->client_id);
	while (fgets(line, sizeof(line), stdin) != NULL && strncmp(line, "quit", 4) != 0)
		;
	say("SESSION_ID 0x%llx\n", (unsigned long long)zoo_client_id(zh)->client_id);
	zookeeper_close(zh);
	return 0;
}

int main(int argc, char **argv)
{
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	if (argc == 4 && strcmp(argv[1], "basic") == 0)
		return run_basic(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "agent") == 0)
		return run_agent(argv[2], argc - 3, argv + 3);
	fprintf(stderr, "usage: %s basic HOST:PORT BASE | agent HOST:PORT SPEC...\n", argv[0]);
	return 2;
}
