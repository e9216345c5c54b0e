"""Proves ACLs and authentication behave as in Apache ZooKeeper 3.8 over real sockets: addauth
digest (kazoo and raw AuthPackets), AuthFailed and the closed connection for schemes the server
lacks, whoAmI, the permission each op needs (each permission granted alone), ip ACLs with CIDR,
setACL with aversion, the `auth` scheme expanded byte for byte as Apache expands it, invalid ACLs,
a super digest, the newest-view check of a setACL still in the pipeline, and ACLs surviving a
restart (snapshot and log replay). Every test also passes with ZK_TARGET=apache."""

import base64
import contextlib
import hashlib
import socket

import pytest
from kazoo.exceptions import AuthFailedError, BadVersionError, InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, make_acl, make_digest_acl

import harness
import zkwire as w


def digest(cred):
    user = cred.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(cred.encode()).digest()).decode()


SERVER_EXTRA_CFG = {"DigestAuthenticationProvider.superDigest": digest("super:secret")}
OPEN = [(31, "world", "anyone")]
READ, WRITE, CREATE, DELETE, ADMIN = 1, 2, 4, 8, 16


@pytest.fixture
def raw(server):
    clients = []

    def make():
        c = w.RawClient(server.port)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def test_digest_node_readable_only_after_addauth(zk, kazoo_factory, base):
    zk.add_auth("digest", "alice:pw")
    zk.create(base, b"secret", acl=[make_digest_acl("alice", "pw", all=True)])
    other = kazoo_factory()
    with pytest.raises(NoAuthError):
        other.get(base)
    with pytest.raises(NoAuthError):
        other.set(base, b"x")
    assert other.exists(base) is not None, "exists needs no permission"
    other.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        other.get(base)
    other.add_auth("digest", "alice:pw")
    assert other.get(base)[0] == b"secret"
    acls, stat = other.get_acls(base)
    assert acls == [ACL(31, Id("digest", digest("alice:pw")))]


def test_kazoo_auth_scheme_acl(zk, kazoo_factory, base):
    with pytest.raises(InvalidACLError):
        zk.create(base, acl=[make_acl("auth", "", all=True)])
    zk.add_auth("digest", "bob:pw")
    zk.create(base, b"v", acl=[make_acl("auth", "", read=True, admin=True)])
    assert zk.get_acls(base)[0] == [ACL(READ | ADMIN, Id("digest", digest("bob:pw")))]
    other = kazoo_factory()
    with pytest.raises(NoAuthError):
        other.get_acls(base)


def test_whoami_and_addauth_replies(raw):
    c = raw()
    assert c.who_am_i() == (0, [("ip", "127.0.0.1")])
    assert c.add_auth("ip", "anything") == (w.XID_AUTH, 0, 0), "ip: OK, adds nothing new"
    assert c.who_am_i() == (0, [("ip", "127.0.0.1")])
    assert c.add_auth("digest", "alice:pw") == (w.XID_AUTH, 0, 0)
    assert c.add_auth("digest", "alice:pw") == (w.XID_AUTH, 0, 0)
    assert c.add_auth("digest", "bob:pw", xid=5) == (5, 0, 0), "the reply keeps the request's xid"
    assert c.add_auth("digest", "carol") == (w.XID_AUTH, 0, 0), "no ':' is fine"
    # Apache's set order (a ConcurrentHashMap), not the order of the addauths.
    assert c.who_am_i() == (0, [("digest", "bob"), ("digest", "carol"), ("ip", "127.0.0.1"),
                                ("digest", "alice")])


@pytest.mark.parametrize("scheme", ["foo", "sasl", "x509", "world", "super", "auth"])
def test_addauth_unknown_scheme_fails_and_closes(raw, server, scheme):
    c = raw()
    assert c.add_auth(scheme, "x") == (w.XID_AUTH, 0, w.ERR_AUTH_FAILED)
    assert w.wait_closed(c.sock, 5), "the server keeps a connection whose auth failed"
    # ZooKeeper counts only failed TLS certificates in this gauge.
    assert harness.mntr(server)["zk_auth_failed_count"] == "0"


def test_kazoo_add_auth_failure_raises(kazoo_factory):
    c = kazoo_factory()
    with pytest.raises(AuthFailedError):
        c.add_auth("nosuchscheme", "x")


def make_node(c, path, perms, children=()):
    """path with an open ACL and its children, then the ACL set to world:anyone:perms."""
    assert c.create(path)[0] == 0
    for ch in children:
        assert c.create(path + "/" + ch)[0] == 0
    assert c.set_acl(path, [(perms, "world", "anyone")])[0] == 0


PERM_OPS = {
    READ: ["getData", "getChildren", "getChildren2", "getACL", "getAllChildrenNumber"],
    WRITE: ["setData"],
    CREATE: ["create"],
    DELETE: ["delete"],
    ADMIN: ["setACL", "getACL"],
}


def run_op(c, op, path):
    if op == "getData":
        return c.get_data(path)[0]
    if op == "getChildren":
        return c.get_children(path)[0]
    if op == "getChildren2":
        return c.call(w.OP_GET_CHILDREN2, w.p_str(path) + w.p_bool(False))[1]
    if op == "getACL":
        return c.get_acl(path)[0]
    if op == "setData":
        return c.set_data(path, b"v")[0]
    if op == "create":
        return c.create(path + "/new")[0]
    if op == "delete":
        return c.delete(path + "/old")
    if op == "setACL":
        return c.set_acl(path, [(ADMIN, "world", "anyone")])[0]
    if op == "exists":
        return c.exists(path)[0]
    if op == "sync":
        return c.call(w.OP_SYNC, w.p_str(path))[1]
    if op == "getAllChildrenNumber":
        return c.get_all_children_number(path)[0]
    if op == "getEphemerals":
        return c.get_ephemerals(path)[0]
    if op == "addWatch":
        return c.add_watch(path, 0)[0]
    raise ValueError(op)


@pytest.mark.parametrize("perm", [READ, WRITE, CREATE, DELETE, ADMIN, 0])
def test_each_permission_alone(raw, base, perm):
    c = raw()
    ops = ["getData", "getChildren", "getChildren2", "getACL", "setData", "create", "delete",
           "setACL", "exists", "sync", "getAllChildrenNumber", "getEphemerals", "addWatch"]
    assert c.create(base)[0] == 0
    got = {}
    for op in ops:
        path = "%s/%s" % (base, op)
        make_node(c, path, perm, children=["old"])
        got[op] = run_op(c, op, path)
    free = ("exists", "sync", "getEphemerals", "addWatch")  # ZooKeeper 3.8.0 checks nothing
    want = {op: (0 if op in free or op in PERM_OPS.get(perm, []) else w.ERR_NO_AUTH) for op in ops}
    assert got == want


def test_check_order_against_other_errors(raw, base):
    c = raw()
    assert c.create(base)[0] == 0
    assert c.create(base + "/x")[0] == 0
    assert c.set_acl(base, [(READ, "world", "anyone")])[0] == 0
    assert c.create(base + "/x")[0] == w.ERR_NO_AUTH, "NoAuth before NodeExists"
    assert c.delete(base + "/missing") == w.ERR_NO_AUTH, "NoAuth before NoNode"
    assert c.create(base + "-none/x")[0] == w.ERR_NO_NODE
    assert c.create(base + "-none/x", acl=[(31, "world", "x")])[0] == w.ERR_INVALID_ACL
    assert c.set_acl(base, OPEN)[0] == w.ERR_NO_AUTH, "ADMIN is gone too"
    assert c.get_data(base + "/nope")[0] == w.ERR_NO_NODE, "NoNode before NoAuth on reads"
    assert c.create(base + "2")[0] == 0
    assert c.create(base + "2/r", acl=[(READ, "world", "anyone")])[0] == 0
    r = base + "2/r"
    assert c.set_data(r, b"x", 5)[0] == w.ERR_NO_AUTH, "NoAuth before BadVersion"
    assert c.set_acl(r, OPEN, 5)[0] == w.ERR_NO_AUTH
    assert c.set_acl(r, [(31, "world", "x")], 5)[0] == w.ERR_INVALID_ACL, "InvalidACL first"
    assert c.set_acl(base + "2/nono", OPEN)[0] == w.ERR_NO_NODE


def test_ip_acls_with_cidr(raw, base):
    c = raw()
    assert c.create(base, acl=[(31, "ip", "127.0.0.0/8")])[0] == 0
    assert c.get_data(base)[0] == 0
    assert c.create(base + "/c", acl=[(31, "ip", "10.0.0.0/8")])[0] == 0
    assert c.get_data(base + "/c")[0] == w.ERR_NO_AUTH
    assert c.create(base + "/d", acl=[(31, "ip", "127.0.0.1"), (1, "ip", "10.1.2.3/32")])[0] == 0
    assert c.set_data(base + "/d", b"v")[0] == 0


def test_setacl_aversion(zk, base):
    zk.create(base, b"d")
    stat = zk.set_acls(base, [make_acl("world", "anyone", read=True, write=True, admin=True)])
    assert stat.aversion == 1 and stat.version == 0
    assert stat.mzxid == stat.czxid, "setACL does not touch mzxid"
    with pytest.raises(BadVersionError):
        zk.set_acls(base, [make_acl("world", "anyone", all=True)], version=0)
    stat = zk.set_acls(base, [make_acl("world", "anyone", all=True)], version=1)
    assert stat.aversion == 2
    acls, st = zk.get_acls(base)
    assert acls == [ACL(31, Id("world", "anyone"))] and st.aversion == 2
    with pytest.raises(InvalidACLError):
        zk.set_acls(base, [])


def test_auth_scheme_fixup(raw, base):
    c = raw()
    assert c.create(base, acl=[(31, "auth", "")])[0] == w.ERR_INVALID_ACL, "no digest identity"
    for cred in ("alice:pw", "bob:pw", "carol"):
        assert c.add_auth("digest", cred)[2] == 0
    acl = [(31, "auth", ""), (31, "auth", ""), (31, "digest", digest("alice:pw"))]
    assert c.create(base, acl=acl)[0] == 0
    # Duplicates go first, then auth expands in the set's order; the explicit copy stays.
    assert c.get_acl(base)[1] == [(31, "digest", digest("bob:pw")), (31, "digest", digest("carol")),
                                  (31, "digest", digest("alice:pw")),
                                  (31, "digest", digest("alice:pw"))]
    assert c.set_acl(base, [(7, "auth", "ignored")])[0] == 0
    hidden = [(7, "digest", "bob:x"), (7, "digest", "carol:x"), (7, "digest", "alice:x")]
    assert c.get_acl(base)[1] == hidden, "no ADMIN: hashes hidden, even from their owners"
    other = raw()
    assert other.get_acl(base)[0] == w.ERR_NO_AUTH, "READ only for the digest users"
    assert other.add_auth("digest", "carol")[2] == 0
    assert other.get_acl(base)[:2] == (0, hidden)


@pytest.mark.parametrize("acl", [
    [(31, "world", "foo")], [(31, "ip", "127.0.0.1/33")], [(31, "ip", "::1")], [(31, "ip", "1.2.3")],
    [(31, "ip", "1.2.3.4/")], [(31, "ip", "1.2.3.256")], [(31, "ip", "1.2.3.4.")],
    [(31, "digest", "user:")], [(31, "digest", "a:b:c")], [(31, "digest", "nohash")],
    [(31, "super", "")], [(31, "sasl", "x")], [(31, "x509", "CN=a")], [],
])
def test_invalid_acls(raw, base, acl):
    assert raw().create(base, acl=acl)[0] == w.ERR_INVALID_ACL


@pytest.mark.parametrize("acl,want,want_after_addauth", [
    ([(31, "world", None)], w.ERR_MARSHALLING, w.ERR_MARSHALLING),
    ([(31, "ip", None)], w.ERR_MARSHALLING, w.ERR_MARSHALLING),
    ([(31, "auth", None)], w.ERR_INVALID_ACL, 0),
    ([(31, "foo", None)], w.ERR_INVALID_ACL, w.ERR_INVALID_ACL),
    ([(31, None, "anyone")], w.ERR_INVALID_ACL, w.ERR_INVALID_ACL),
    ([(31, "world", "anyone"), (31, "world", None)], w.ERR_MARSHALLING, w.ERR_MARSHALLING),
    ([(31, "auth", None), (31, "auth", None)], w.ERR_MARSHALLING, w.ERR_MARSHALLING),
    ([(31, "auth", None), (31, "auth", "")], w.ERR_INVALID_ACL, 0),
])
def test_null_acl_fields(raw, base, acl, want, want_after_addauth):
    """Null schemes/ids (kazoo's make_acl("auth", "") sends a null id): Apache's answers,
    its NullPointerExceptions included (MarshallingError)."""
    c = raw()
    assert c.create(base, acl=acl)[0] == want
    assert c.add_auth("digest", "a:b")[2] == 0
    assert c.create(base, acl=acl)[0] == want_after_addauth
    if want_after_addauth == 0:
        assert c.set_acl(base, acl)[0] == 0
        assert c.get_acl(base)[1] == [(31, "digest", digest("a:b"))] * len(acl)
        _, err, res, _ = w.multi(c, [w.mop_create(base + "/m", acl=acl)])
        assert (err, res) == (0, [(w.OP_CREATE, 0, base + "/m")]), "the same inside a multi"


def test_odd_but_valid_acls_kept_as_sent(raw, base):
    c = raw()
    su = raw()  # super reads every ACL, hashes included
    assert su.add_auth("digest", "super:secret")[2] == 0
    for i, acl in enumerate([[(0, "world", "anyone")], [(31, "ip", "01.2.3.4")],
                             [(31, "ip", "+1.2.3.4/+8")], [(31, "digest", ":h")],
                             [(31, "digest", "a:b:")], [(1, "world", "anyone"), (3, "world", "anyone")],
                             [(31, "world", "anyone"), (31, "world", "anyone")]]):
        path = "%s-%d" % (base, i)
        assert c.create(path, acl=acl)[0] == 0, acl
        want = acl if len(acl) < 2 or acl[0] != acl[1] else acl[:1]
        assert su.get_acl(path)[:2] == (0, want)


def test_super_digest_passes_every_check(raw, zk, base):
    zk.add_auth("digest", "alice:pw")
    zk.create(base, b"d", acl=[make_digest_acl("alice", "pw", all=True)])
    zk.create(base + "/none", acl=[make_acl("world", "anyone")])  # no permission at all
    s = raw()
    assert s.get_data(base)[0] == w.ERR_NO_AUTH
    assert s.add_auth("digest", "super:secret") == (w.XID_AUTH, 0, 0)
    assert s.who_am_i() == (0, [("super", ""), ("digest", "super"), ("ip", "127.0.0.1")])
    assert s.get_data(base)[0] == 0
    assert s.get_acl(base)[1] == [(31, "digest", digest("alice:pw"))], "super sees the hash"
    assert s.create(base + "/none/x")[0] == 0
    assert s.set_acl(base + "/none", OPEN)[0] == 0
    # auth:: takes the digest ids only: super has no provider.
    assert s.create(base + "/mine", acl=[(31, "auth", "")])[0] == 0
    assert s.get_acl(base + "/mine")[1] == [(31, "digest", digest("super:secret"))]


def test_pipelined_setacl_decides_the_next_request(raw, base):
    """prep checks against the newest view: a setACL not applied yet already counts."""
    c = raw()
    assert c.create(base)[0] == 0
    x1 = c.send(w.OP_SET_ACL, w.p_str(base) + w.p_acl([(READ, "world", "anyone")]) + w.p_int(-1))
    x2 = c.send(w.OP_CREATE, w.p_str(base + "/c") + w.p_buf(b"") + w.p_acl(OPEN) + w.p_int(0))
    x3 = c.send(w.OP_GET_DATA, w.p_str(base) + w.p_bool(False))
    replies = {}
    while len(replies) < 3:
        msg = c.read_one()
        if msg[0] == "reply":
            replies[msg[1]] = msg[3]
    assert replies == {x1: 0, x2: w.ERR_NO_AUTH, x3: 0}


def test_pipelined_addauth_applies_to_requests_after_it(raw, base):
    """An AuthPacket counts for every request sent after it, even with writes still in flight,
    and not for one sent before it (ZooKeeper copies the ids into each request)."""
    owner = raw()
    assert owner.add_auth("digest", "alice:pw")[2] == 0
    assert owner.create(base, b"d", acl=[(31, "digest", digest("alice:pw"))])[0] == 0
    c = raw()
    assert c.create(base + "-open")[0] == 0
    body_get = w.p_str(base) + w.p_bool(False)
    x1 = c.send(w.OP_SET_DATA, w.p_str(base + "-open") + w.p_buf(b"v") + w.p_int(-1))
    x2 = c.send(w.OP_GET_DATA, body_get)
    c.send(w.OP_AUTH, w.p_int(0) + w.p_str("digest") + w.p_buf(b"alice:pw"), xid=w.XID_AUTH)
    x3 = c.send(w.OP_GET_DATA, body_get)
    x4 = c.send(w.OP_SET_DATA, w.p_str(base) + w.p_buf(b"w") + w.p_int(-1))
    x5 = c.send(w.OP_WHO_AM_I)
    replies = {}
    while len(replies) < 6:
        msg = c.read_one()
        if msg[0] == "reply":
            replies[msg[1]] = msg[3]
    assert replies == {x1: 0, x2: w.ERR_NO_AUTH, w.XID_AUTH: 0, x3: 0, x4: 0, x5: 0}


def test_acls_survive_restart(tmp_path):
    """ACLs set before a snapshot and after it (log replay) come back after a restart."""
    srv = harness.Server(tmp_path, extra_cfg={"snapCount": "10"})
    srv.start()
    try:
        c = w.RawClient(srv.port)
        assert c.add_auth("digest", "alice:pw")[2] == 0
        assert c.create("/early", acl=[(31, "auth", "")])[0] == 0
        assert c.set_acl("/early", [(READ | ADMIN, "auth", "")])[0] == 0
        for i in range(30):  # past snapCount: a snapshot holds /early
            assert c.create("/filler%d" % i)[0] == 0
        assert c.create("/late", acl=[(READ, "ip", "10.0.0.0/8"), (31, "digest", digest("bob:pw"))])[0] == 0
        assert c.add_auth("digest", "bob:pw")[2] == 0
        assert c.set_acl("/late", [(31, "digest", digest("bob:pw"))], 0)[0] == 0
        want = {p: c.get_acl(p) for p in ("/early",)}
        c.close()
        srv.stop()
        srv.start()
        c = w.RawClient(srv.port)
        assert c.get_acl("/early")[0] == w.ERR_NO_AUTH
        assert c.get_acl("/late")[0] == w.ERR_NO_AUTH, "the ip entry went with the setACL"
        assert c.add_auth("digest", "alice:pw")[2] == 0
        assert c.get_acl("/early") == want["/early"]
        assert c.get_acl("/early")[2]["aversion"] == 1
        assert c.set_data("/early", b"x")[0] == w.ERR_NO_AUTH, "READ|ADMIN only"
        assert c.add_auth("digest", "bob:pw")[2] == 0
        err, acl, stat = c.get_acl("/late")
        assert (err, acl, stat["aversion"]) == (0, [(31, "digest", digest("bob:pw"))], 1)
        c.close()
    finally:
        srv.stop()


@pytest.mark.skipif(harness.target() == "apache", reason="zkd's own bound; Apache has none")
def test_addauth_past_the_bound_fails(raw):
    c = raw()
    for i in range(63):  # with the ip id: 64, the bound
        assert c.add_auth("digest", "u%d:p" % i)[2] == 0
    assert c.add_auth("digest", "u0:p")[2] == 0, "one it has"
    assert c.add_auth("digest", "one:more") == (w.XID_AUTH, 0, w.ERR_AUTH_FAILED)
    assert w.wait_closed(c.sock, 5)


def test_malformed_auth_packet_closes(server):
    s = socket.create_connection((harness.HOST, server.port), timeout=5)
    try:
        s.sendall(w.frame(w.connect_request()))
        w.recv_frame(s)
        s.sendall(w.frame(w.p_int(-4) + w.p_int(w.OP_AUTH) + w.p_int(0) + w.p_int(50)))
        assert w.wait_closed(s, 5)
    finally:
        s.close()


@pytest.mark.skipif(harness.target() == "apache", reason="zkd's own tool")
def test_dump_log_prints_setacl(server, raw, base):
    import os
    import subprocess
    c = raw()
    assert c.create(base)[0] == 0
    assert c.set_acl(base, [(1, "world", "anyone"), (31, "ip", "127.0.0.1")])[0] == 0
    logs = sorted(p for p in (server.workdir / "data" / "version-2").iterdir()
                  if p.name.startswith("log."))
    zkd = os.environ.get("ZKD_BIN", str(harness.REPO / "zkd"))
    out = subprocess.run([zkd, "dump-log"] + [str(p) for p in logs], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "setACL '%s' acl=[1:world:anyone,31:ip:127.0.0.1] aversion=1" % base in out.stdout


@contextlib.contextmanager
def running(srv):
    """A raw client of srv, started for the block and stopped after it."""
    srv.start()
    try:
        c = w.RawClient(srv.port)
        yield c
        c.close()
    finally:
        srv.stop()


@pytest.mark.timeout(150)
@pytest.mark.skipif(harness.target() == "apache", reason="runs both servers itself")
def test_setacl_txns_shared_with_apache(tmp_path):
    """zkd's SetACLTxn replays on Apache ZooKeeper and Apache's (with its TxnDigest) on zkd."""
    import persist
    why = persist.have_apache()
    if why:
        pytest.skip(why)
    port = harness.free_port()
    servers = {}
    for kind in ("zkd", "apache"):
        servers[kind] = persist.DataServer(tmp_path, kind=kind, extra_cfg={"snapCount": 1000})
        servers[kind].pinned_port = port
    alice = [(31, "digest", digest("alice:pw"))]
    with running(servers["zkd"]) as c:
        assert c.create("/x")[0] == 0
        assert c.set_acl("/x", alice, 0)[0] == 0
    with running(servers["apache"]) as c:
        assert c.add_auth("digest", "alice:pw")[2] == 0
        err, acl, stat = c.get_acl("/x")
        assert (err, acl, stat["aversion"]) == (0, alice, 1), "Apache replayed zkd's setACL"
        assert c.set_acl("/x", [(READ, "world", "anyone")], 1)[0] == 0
    with running(servers["zkd"]) as c:
        err, acl, stat = c.get_acl("/x")
        assert (err, acl, stat["aversion"]) == (0, [(READ, "world", "anyone")], 2)
        assert c.set_data("/x", b"v")[0] == w.ERR_NO_AUTH


def test_multi_ops_check_acls(raw, base):
    """A multi's ops are checked as on their own (check needs READ); the first NoAuth fails
    the multi; multiRead gives a NoAuth op its own error result."""
    c = raw()
    assert c.create(base)[0] == 0
    assert c.create(base + "/ro", acl=[(READ, "world", "anyone")])[0] == 0
    assert c.create(base + "/wo", acl=[(WRITE, "world", "anyone")])[0] == 0
    e = (w.OP_ERROR, w.ERR_NO_AUTH, w.ERR_NO_AUTH)
    _, err, res, _ = w.multi(c, [w.mop_check(base + "/ro", 0), w.mop_create(base + "/ro/x")])
    assert (err, res) == (0, [(w.OP_ERROR, 0, 0), e]), "create needs CREATE; the check is undone"
    _, err, res, _ = w.multi(c, [w.mop_check(base + "/wo", 0)])
    assert (err, res) == (0, [e]), "check needs READ"
    _, err, res, _ = w.multi(c, [w.mop_set_data(base + "/wo", b"v"), w.mop_check(base + "/ro", 0)])
    assert err == 0 and [(r[0], r[1]) for r in res] == [(w.OP_SET_DATA, 0), (w.OP_CHECK, 0)]
    _, err, res, _ = w.multi(c, [w.mop_read(base + "/wo"), w.mop_read(base + "/ro"),
                                 w.mop_read(base + "/wo", op=w.OP_GET_CHILDREN)], op=w.OP_MULTI_READ)
    assert err == 0 and [res[0], res[1][:2], res[2]] == [e, (w.OP_GET_DATA, 0), e]
