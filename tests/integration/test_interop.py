"""Proves zkd and Apache ZooKeeper 3.8 share one dataDir: what either one wrote (several log files and snapshots, persistent, sequential and ephemeral nodes, nested paths, binary data, ACLs, sets and deletes) is served by the other with the same data, Stat fields and ACLs, and data that passed zkd -> Apache -> zkd -> Apache is still intact."""

import pytest

kazoo_client = pytest.importorskip("kazoo.client")

from kazoo.security import ACL, Id, Permissions, make_acl, make_digest_acl  # noqa: E402

import harness  # noqa: E402
import persist  # noqa: E402
import zkwire  # noqa: E402
from persist import (OPEN_ACL, DataServer, acl_tuples, diff_dumps,  # noqa: E402
                     dump_acls, dump_tree, file_zxid, have_apache)

_why = have_apache()
if _why:
    pytest.skip(_why, allow_module_level=True)

CFG = {"snapCount": 50, "preAllocSize": 64}
OWNER_TIMEOUT_MS = 40000          # the most tickTime 2000 allows: survives a JVM start
RO = [ACL(Permissions.READ, Id("world", "anyone"))]
DIGEST = [make_digest_acl("alice", "secret", all=True), ACL(Permissions.READ, Id("world", "anyone"))]
IP = [make_acl("ip", "127.0.0.1", read=True, write=True)]

pytestmark = pytest.mark.timeout(150)


def pair(tmp_path):
    """A zkd and an Apache ZooKeeper on one dataDir and one port (only one runs at a time)."""
    zkd = DataServer(tmp_path, kind="zkd", extra_cfg=CFG)
    apache = DataServer(tmp_path, kind="apache", extra_cfg=CFG)
    zkd.pinned_port = apache.pinned_port = harness.free_port()
    return zkd, apache


def serve(srv):
    globals()["_zk_server"] = srv
    return srv.start()


client = persist.kazoo_client
close = persist.close


def dump(srv, acls=False, auth=True):
    """The tree, and with acls=True every node's ACL. ZooKeeper shows a digest ACL's hash only
    to a client holding ADMIN on the node (others see "alice:x"), hence the auth."""
    zk = client(srv, auth_data=[("digest", "alice:secret")]) if acls and auth else client(srv)
    try:
        tree = dump_tree(zk)
        return (tree, dump_acls(zk, tree)) if acls else tree
    finally:
        close(zk)


def big_value(n):
    return bytes((i * 131 + (i >> 8)) & 0xFF for i in range(n))


def wait_all(results):
    for r in results:
        r.get(timeout=30)


def write_workload(zk, owner, base):
    """Deterministic writes under base (ephemerals through owner); returns {path: ACL} for nodes
    whose ACL is not world:anyone ALL."""
    acls = {}
    zk.create(base, b"base " + base.encode())
    zk.create(base + "/a/b/c/d/e", b"deep", makepath=True)
    zk.create(base + "/bin", bytes(range(256)) * 4)
    zk.create(base + "/empty", b"")
    zk.create(base + "/big", big_value(300000))
    for name, acl in (("ro", RO), ("digest", DIGEST), ("ip", IP)):
        zk.create(base + "/" + name, name.encode(), acl=acl)
        acls[base + "/" + name] = acl_tuples(acl)
    zk.create(base + "/seq")
    for i in range(12):
        zk.create(base + "/seq/item-", b"%d" % i, sequence=True)
    assert owner.create(base + "/eph", b"owned", flags=zkwire.EPHEMERAL)[0] == 0
    assert owner.create(base + "/seq/eph-", b"e", flags=zkwire.EPHEMERAL_SEQUENTIAL)[0] == 0
    zk.create(base + "/counter", b"0")
    for i in range(1, 21):
        zk.set(base + "/counter", b"%d" % i)
    zk.set(base + "/counter", b"final", version=20)
    zk.create(base + "/tmp")
    for i in range(10):
        zk.create(base + "/tmp/x%d" % i, b"x")
    for i in range(0, 10, 2):
        zk.delete(base + "/tmp/x%d" % i)
    zk.create(base + "/gone/child", makepath=True)
    zk.delete(base + "/gone/child")
    zk.delete(base + "/gone")
    zk.create(base + "/bulk")
    wait_all([zk.create_async(base + "/bulk/n%03d" % i, b"v%d" % i) for i in range(200)])
    wait_all([zk.set_async(base + "/bulk/n%03d" % i, b"w%d" % i) for i in range(0, 200, 3)])
    wait_all([zk.delete_async(base + "/bulk/n%03d" % i) for i in range(0, 200, 5)])
    return acls


def write_more(zk, owner, base):
    """Changes to nodes the other server wrote: data, a sequential child (its number comes from
    the parent's cversion), deletes, an ephemeral, a deeper path."""
    zk.set(base + "/counter", b"again", version=21)
    zk.create(base + "/seq/item-", b"more", sequence=True)
    zk.delete(base + "/tmp/x1")
    zk.delete(base + "/eph")
    assert owner.create(base + "/eph2", b"owned again", flags=zkwire.EPHEMERAL)[0] == 0
    zk.create(base + "/a/b/c/d/e/f", b"deeper")
    wait_all([zk.set_async(base + "/bulk/n%03d" % i, b"z%d" % i) for i in range(1, 200, 5)])


def expect_same(before, after, name_before, name_after):
    diff = diff_dumps(before, after, name_before, name_after)
    assert not diff, "%s serves different data than %s wrote:\n%s" % (
        name_after, name_before, "\n".join(diff))


def expect_acls(got, expected, who):
    bad = ["%s: %s, expected %s" % (p, got[p], expected.get(p, OPEN_ACL))
           for p in sorted(got) if got[p] != expected.get(p, OPEN_ACL)]
    assert not bad, "%s serves wrong ACLs:\n%s" % (who, "\n".join(bad[:15]))


def new_owner(srv):
    """The session that owns the ephemerals: a raw client, so that the test, not a client
    library's retry timing, decides when it reconnects to the next server."""
    return zkwire.RawClient(srv.port, timeout_ms=OWNER_TIMEOUT_MS)


def owner_back(owner, srv, path):
    """Resume the owner's session (id + password) on srv; its ephemeral must be there."""
    owner.close()
    again = zkwire.RawClient(srv.port, timeout_ms=OWNER_TIMEOUT_MS, session_id=owner.session_id,
                             passwd=owner.passwd, last_zxid=owner.last_zxid)
    assert again.session_id == owner.session_id and again.conn["timeout_ms"] > 0, \
        "%s refused to resume session %#x: %r" % (srv.kind, owner.session_id, again.conn)
    err, st = again.exists(path)
    assert err == 0 and st["ephemeralOwner"] == owner.session_id, (err, st)
    return again


def several_files(srv):
    snaps, logs = srv.snapshots(), srv.logs()
    assert len(snaps) >= 3 and len(logs) >= 3, "want several files: %s %s" % (snaps, logs)
    return snaps, logs


def test_apache_serves_what_zkd_wrote(tmp_path):
    zkd, apache = pair(tmp_path)
    serve(zkd)
    owner = new_owner(zkd)
    try:
        sid = owner.session_id
        zk = client(zkd)
        try:
            acls = write_workload(zk, owner, "/from-zkd")
        finally:
            close(zk)
        before = dump(zkd)
        assert before["/from-zkd/eph"][1][7] == sid
        zkd.stop()
        several_files(zkd)
        serve(apache)
        after, got_acls = dump(apache, acls=True)
        expect_same(before, after, "zkd", "Apache ZooKeeper")
        expect_acls(got_acls, acls, "Apache ZooKeeper (on zkd's files)")
        owner = owner_back(owner, apache, "/from-zkd/eph")
    finally:
        owner.close()
        apache.stop()
        zkd.stop()


def test_zkd_serves_what_apache_wrote_then_apache_serves_zkds_additions(tmp_path):
    zkd, apache = pair(tmp_path)
    serve(apache)
    owner = new_owner(apache)
    try:
        sid = owner.session_id
        zk = client(apache)
        try:
            acls = write_workload(zk, owner, "/from-apache")
        finally:
            close(zk)
        before, apache_acls = dump(apache, acls=True)
        expect_acls(apache_acls, acls, "Apache ZooKeeper (its own writes)")
        apache.stop()
        several_files(apache)
        apache_last = max(file_zxid(p) for p in apache.logs())

        serve(zkd)
        after = dump(zkd)
        expect_same(before, after, "Apache ZooKeeper", "zkd")
        owner = owner_back(owner, zkd, "/from-apache/eph")

        # zkd writes on top of Apache's data, through several snapshots of its own.
        zk = client(zkd)
        try:
            write_more(zk, owner, "/from-apache")
            acls.update(write_workload(zk, owner, "/from-zkd-on-apache"))
        finally:
            close(zk)
        before2 = dump(zkd)
        zkd.stop()
        snaps = zkd.snapshots()
        assert sum(file_zxid(p) > apache_last for p in snaps) >= 2, \
            "zkd took too few snapshots of its own: %s" % snaps

        serve(apache)
        after2, got_acls = dump(apache, acls=True)
        expect_same(before2, after2, "zkd (on Apache's files)", "Apache ZooKeeper")
        # Apache's ACLs went through zkd's snapshots and came back intact.
        expect_acls(got_acls, acls, "Apache ZooKeeper (after zkd)")
        owner = owner_back(owner, apache, "/from-zkd-on-apache/eph")
        assert owner.exists("/from-apache/eph2")[1]["ephemeralOwner"] == sid
    finally:
        owner.close()
        apache.stop()
        zkd.stop()


def test_zkd_answers_get_acls_as_apache_does(tmp_path):
    zkd, apache = pair(tmp_path)
    serve(apache)
    try:
        zk = client(apache)
        try:
            zk.create("/acl")
            for name, acl in (("ro", RO), ("digest", DIGEST), ("ip", IP)):
                zk.create("/acl/" + name, name.encode(), acl=acl)
        finally:
            close(zk)
        tree, expected = dump(apache, acls=True, auth=False)
    finally:
        apache.stop()
    serve(zkd)
    try:
        zk = client(zkd)
        try:
            got = {}
            for p in sorted(tree):
                try:
                    got[p] = acl_tuples(zk.get_acls(p)[0])
                except Exception as e:
                    raise AssertionError("zkd getACL(%s) failed: %s (%s)"
                                         % (p, type(e).__name__, e)) from None
        finally:
            close(zk)
        assert got == expected
    finally:
        zkd.stop()
