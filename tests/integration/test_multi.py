"""Proves multi (opcode 14) is all-or-nothing with ZooKeeper 3.8's reply layout (per-op results, errors as ErrorResult(0 / err / RUNTIMEINCONSISTENCY), reply header err 0 and the multi's own zxid even when it failed), that its ops see each other (sequential names, ephemerals, create-then-delete), that a failed multi changes nothing and fires no watch, that malformed multis get MarshallingError as Apache answers them, that multiRead (22) answers each op on its own without a zxid, and that multis in the log survive a restart -- through kazoo and byte for byte through zkwire."""

import time

import pytest
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError, RolledBackError,
                              RuntimeInconsistency)

import harness
import zkwire
from zkwire import (ERR_BAD_VERSION, ERR_MARSHALLING, ERR_NO_CHILDREN_FOR_EPHEMERALS, ERR_NO_NODE,
                    ERR_NODE_EXISTS, ERR_OK, ERR_RUNTIME_INCONSISTENCY, MULTI_END, OP_CHECK,
                    OP_CREATE, OP_CREATE2, OP_DELETE, OP_ERROR, OP_GET_CHILDREN, OP_GET_DATA,
                    OP_MULTI, OP_MULTI_READ, OP_SET_DATA, mop_check, mop_create, mop_delete,
                    mop_read, mop_set_data, multi, multi_header)


def last_zxid(raw, base):
    """The zxid of a fresh write: the next zxid a txn takes is one more."""
    zxid, err, _ = raw.call(zkwire.OP_SET_DATA, zkwire.p_str(base) + zkwire.p_buf(b"z") + zkwire.p_int(-1))
    assert err == ERR_OK
    return zxid


def drain_events(raw, quiet=0.3):
    """Everything that arrives within `quiet` seconds: the events a write fired come before its
    reply, so after a reply only stray events can still be on the way."""
    got = []
    while True:
        ev = raw.wait_event(timeout=quiet)
        if ev is None:
            return got
        got.append(ev)


# ---- kazoo ----

def test_kazoo_transaction_commits_every_op(zk, base):
    zk.create(base, b"b")
    t = zk.transaction()
    t.create(base + "/a", b"1")
    t.set_data(base + "/a", b"2", version=0)
    t.check(base + "/a", 1)
    t.create(base + "/b")
    t.delete(base + "/b", version=0)
    res = t.commit()
    assert res[0] == base + "/a"
    assert res[1].version == 1 and res[1].dataLength == 1
    assert res[2:] == [True, base + "/b", True]
    assert zk.get(base + "/a")[0] == b"2"
    assert zk.exists(base + "/b") is None
    st = zk.exists(base)
    assert st.numChildren == 1 and st.cversion == 3, "two creates and a delete"
    # All ops of a multi share one zxid.
    assert res[1].mzxid == res[1].czxid == st.pzxid


def test_kazoo_failed_check_rolls_back_an_earlier_create(zk, base):
    zk.create(base)
    zk.create(base + "/v", b"x")
    t = zk.transaction()
    t.create(base + "/new", b"n")
    t.set_data(base + "/v", b"y")
    t.check(base + "/v", 5)
    t.delete(base + "/v")
    res = t.commit()
    assert [type(r) for r in res] == [RolledBackError, RolledBackError, BadVersionError,
                                      RuntimeInconsistency]
    assert zk.exists(base + "/new") is None
    data, st = zk.get(base + "/v")
    assert (data, st.version) == (b"x", 0)
    assert zk.exists(base).cversion == 1
    # A failing create reports NodeExists / NoNode the same way.
    t = zk.transaction()
    t.create(base + "/v")
    res = t.commit()
    assert [type(r) for r in res] == [NodeExistsError]
    t = zk.transaction()
    t.delete(base + "/v")
    t.create(base + "/nope/x")
    res = t.commit()
    assert [type(r) for r in res] == [RolledBackError, NoNodeError]
    assert zk.exists(base + "/v") is not None


def test_kazoo_sequential_and_ephemeral_nodes_in_multi(zk, kazoo_factory, base):
    zk.create(base)
    owner = kazoo_factory()
    t = owner.transaction()
    t.create(base + "/s-", b"", sequence=True)
    t.create(base + "/s-", b"", sequence=True, ephemeral=True)
    t.create(base + "/e", b"", ephemeral=True)
    res = t.commit()
    assert res == [base + "/s-0000000000", base + "/s-0000000001", base + "/e"]
    sid = owner.client_id[0]
    assert zk.exists(base + "/s-0000000001").ephemeralOwner == sid
    assert zk.exists(base + "/e").ephemeralOwner == sid
    assert zk.exists(base + "/s-0000000000").ephemeralOwner == 0
    # A failed multi does not use up sequence numbers.
    t = zk.transaction()
    t.create(base + "/s-", b"", sequence=True)
    t.check(base + "/e", 9)
    assert [type(r) for r in t.commit()] == [RolledBackError, BadVersionError]
    t = zk.transaction()
    t.create(base + "/s-", b"", sequence=True)
    assert t.commit() == [base + "/s-0000000003"]
    # An ephemeral created in a multi goes with its session.
    owner.stop()
    owner.close()
    harness.wait_for(lambda: zk.exists(base + "/e") is None, 15, what="ephemeral removed")
    assert zk.exists(base + "/s-0000000001") is None
    assert sorted(zk.get_children(base)) == ["s-0000000000", "s-0000000003"]


def test_kazoo_create_then_delete_same_node_in_one_multi(zk, base):
    zk.create(base)
    t = zk.transaction()
    t.create(base + "/tmp", b"t")
    t.create(base + "/tmp/child")
    t.delete(base + "/tmp/child")
    t.delete(base + "/tmp")
    t.create(base + "/tmp", b"again")
    assert t.commit() == [base + "/tmp", base + "/tmp/child", True, True, base + "/tmp"]
    data, st = zk.get(base + "/tmp")
    assert data == b"again" and st.cversion == 0, "a new node"
    assert zk.exists(base).cversion == 3


# ---- bytes (zkwire) ----

def test_reply_layout_and_zxids_of_a_successful_multi(raw, base):
    assert raw.create(base)[0] == ERR_OK
    z0 = last_zxid(raw, base)
    zxid, err, res, _ = multi(raw, [
        mop_create(base + "/a", b"x"),
        mop_create(base + "/b", op=OP_CREATE2),  # answered as a create: Op.create has no create2
        mop_set_data(base + "/a", b"yy", 0),
        mop_check(base + "/a", 1),
        mop_delete(base + "/b"),
    ])
    assert (zxid, err) == (z0 + 1, ERR_OK)
    assert [(op, e) for op, e, _ in res] == [(OP_CREATE, 0), (OP_CREATE, 0), (OP_SET_DATA, 0),
                                             (OP_CHECK, 0), (OP_DELETE, 0)]
    assert res[0][2] == base + "/a" and res[1][2] == base + "/b"
    st = res[2][2]
    assert (st["czxid"], st["mzxid"], st["version"], st["dataLength"]) == (zxid, zxid, 1, 2)
    # A create op's type comes from its flags: container flags answer as create2 (with a
    # Stat, ephemeralOwner hidden), a createContainer header with plain flags as create.
    zxid, err, res, _ = multi(raw, [mop_create(base + "/k", flags=4),
                                    mop_create(base + "/k2", op=19)])
    assert (zxid, err) == (z0 + 2, ERR_OK)
    assert res[0][:2] == (OP_CREATE2, 0) and res[0][2][0] == base + "/k"
    assert res[0][2][1]["czxid"] == zxid and res[0][2][1]["ephemeralOwner"] == 0
    assert res[1] == (OP_CREATE, 0, base + "/k2")
    z0 += 1
    # The other op results carry a body only where ZooKeeper's do.
    zxid, err, res, body = multi(raw, [mop_check(base + "/a", -1)])
    assert (zxid, err, res) == (z0 + 2, ERR_OK, [(OP_CHECK, 0, None)])
    assert body == multi_header(OP_CHECK, False, 0) + MULTI_END


def test_failed_multi_answers_ok_with_error_results_and_takes_a_zxid(raw, base):
    assert raw.create(base)[0] == ERR_OK
    z0 = last_zxid(raw, base)
    zxid, err, res, body = multi(raw, [
        mop_create(base + "/c"),
        mop_check(base, 7),
        mop_create(base + "/d"),
    ])
    assert (zxid, err) == (z0 + 1, ERR_OK), "the header says OK: the errors are per op"
    assert res == [(OP_ERROR, ERR_OK, ERR_OK), (OP_ERROR, ERR_BAD_VERSION, ERR_BAD_VERSION),
                   (OP_ERROR, ERR_RUNTIME_INCONSISTENCY, ERR_RUNTIME_INCONSISTENCY)]
    assert body == (multi_header(OP_ERROR, False, 0) + zkwire.p_int(0)
                    + multi_header(OP_ERROR, False, -103) + zkwire.p_int(-103)
                    + multi_header(OP_ERROR, False, -2) + zkwire.p_int(-2) + MULTI_END)
    assert raw.exists(base + "/c")[0] == ERR_NO_NODE
    # First op failing; an ephemeral parent in the same multi; a bad path.
    zxid, err, res, _ = multi(raw, [mop_delete(base + "/nope"), mop_create(base + "/e")])
    assert (zxid, err) == (z0 + 2, ERR_OK)
    assert [e for _, e, _ in res] == [ERR_NO_NODE, ERR_RUNTIME_INCONSISTENCY]
    zxid, err, res, _ = multi(raw, [mop_create(base + "/eph", flags=zkwire.EPHEMERAL),
                                    mop_create(base + "/eph/x")])
    assert (zxid, err) == (z0 + 3, ERR_OK)
    assert [e for _, e, _ in res] == [ERR_OK, ERR_NO_CHILDREN_FOR_EPHEMERALS]
    zxid, err, res, _ = multi(raw, [mop_create(base + "/f"), mop_create(base + "/f")])
    assert [e for _, e, _ in res] == [ERR_OK, ERR_NODE_EXISTS]
    zxid, err, res, _ = multi(raw, [mop_check("no-slash", -1)])
    assert [e for _, e, _ in res] == [zkwire.ERR_BAD_ARGUMENTS]
    # An empty multi is a txn too.
    zxid, err, res, body = multi(raw, [])
    assert (zxid, err, res, body) == (z0 + 6, ERR_OK, [], MULTI_END)
    assert last_zxid(raw, base) == z0 + 7


def test_malformed_multis_get_marshalling_error(raw, base):
    assert raw.create(base)[0] == ERR_OK
    z0 = last_zxid(raw, base)
    create = mop_create(base + "/m")
    cases = [
        ([create], b""),                                            # no end marker
        ([mop_read(base)], MULTI_END),                              # reads only
        ([create, mop_read(base)], MULTI_END),                      # reads mixed with writes
        ([multi_header(zkwire.OP_EXISTS) + zkwire.p_str(base) + zkwire.p_bool(False)], MULTI_END),
        ([create, mop_create(base + "/t", flags=5)], MULTI_END),    # TTL flags in a CreateRequest
    ]
    for i, (ops, end) in enumerate(cases):
        zxid, err, res, body = multi(raw, ops, end=end)
        assert (zxid, err, body) == (z0 + 1 + i, ERR_MARSHALLING, b""), "case %d" % i
    assert raw.exists(base + "/m")[0] == ERR_NO_NODE
    # A null path: answered from the pipeline without a txn, after an empty MultiResponse.
    zxid, err, res, body = multi(raw, [multi_header(OP_DELETE) + zkwire.p_int(-1) + zkwire.p_int(-1)])
    assert (zxid, err, body) == (z0 + len(cases), ERR_MARSHALLING, MULTI_END)
    # The header's type and err are not read, nor anything after the end marker.
    zxid, err, res, _ = multi(raw, [multi_header(OP_CREATE, False, 77) + create[9:]],
                              end=multi_header(OP_CREATE, True, 0) + b"junk")
    assert (err, res) == (ERR_OK, [(OP_CREATE, 0, base + "/m")])
    # The connection is still good.
    assert raw.exists(base + "/m")[0] == ERR_OK


def test_watches_fire_per_op_and_not_for_a_failed_multi(server, raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create(base + "/a", b"1")[0] == ERR_OK
    w = zkwire.RawClient(server.port)
    try:
        assert w.get_data(base + "/a", watch=True)[0] == ERR_OK
        assert w.get_children(base, watch=True)[0] == ERR_OK
        assert w.exists(base + "/n", watch=True)[0] == ERR_NO_NODE
        _, err, res, _ = multi(raw, [mop_set_data(base + "/a", b"2"), mop_create(base + "/n"),
                                     mop_check(base, 99)])
        assert err == ERR_OK and res[-1][1] == ERR_BAD_VERSION
        assert drain_events(w) == [], "a failed multi fires nothing"
        _, err, res, _ = multi(raw, [mop_set_data(base + "/a", b"2"), mop_create(base + "/n"),
                                     mop_delete(base + "/n")])
        assert [e for _, e, _ in res] == [0, 0, 0]
        st = zkwire.STATE_SYNC_CONNECTED
        assert drain_events(w) == [(zkwire.EVENT_DATA_CHANGED, st, base + "/a"),
                                   (zkwire.EVENT_CREATED, st, base + "/n"),
                                   (zkwire.EVENT_CHILDREN_CHANGED, st, base)]
    finally:
        w.close()


def test_multi_read_answers_each_op_without_a_zxid(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create(base + "/a", b"data")[0] == ERR_OK
    z0 = last_zxid(raw, base)
    zxid, err, res, _ = multi(raw, [mop_read(base + "/a"), mop_read(base + "/nope"),
                                    mop_read(base, OP_GET_CHILDREN),
                                    mop_read(base + "/nope", OP_GET_CHILDREN)], op=OP_MULTI_READ)
    assert (zxid, err) == (z0, ERR_OK)
    assert res[0][:2] == (OP_GET_DATA, 0) and res[0][2][0] == b"data"
    assert res[0][2][1]["version"] == 0
    assert res[1] == (OP_ERROR, ERR_NO_NODE, ERR_NO_NODE)
    assert res[2] == (OP_GET_CHILDREN, 0, ["a"])
    assert res[3] == (OP_ERROR, ERR_NO_NODE, ERR_NO_NODE)
    zxid, err, res, body = multi(raw, [], op=OP_MULTI_READ)
    assert (zxid, err, body) == (z0, ERR_OK, MULTI_END)
    # Marshalling errors: a type multiRead does not take (no body), a write op (an empty
    # response), a null path (the results before it).
    zxid, err, _, body = multi(raw, [mop_read(base, zkwire.OP_GET_CHILDREN2)], op=OP_MULTI_READ)
    assert (zxid, err, body) == (z0, ERR_MARSHALLING, b"")
    zxid, err, _, body = multi(raw, [mop_create(base + "/w")], op=OP_MULTI_READ)
    assert (zxid, err, body) == (z0, ERR_MARSHALLING, MULTI_END)
    zxid, err, res, _ = multi(raw, [mop_read(base, OP_GET_CHILDREN),
                                    multi_header(OP_GET_DATA) + zkwire.p_int(-1) + zkwire.p_bool(False)],
                              op=OP_MULTI_READ)
    assert (zxid, err, res) == (z0, ERR_MARSHALLING, [(OP_GET_CHILDREN, 0, ["a"])])
    assert last_zxid(raw, base) == z0 + 1, "no read took a zxid"


def test_multi_read_ignores_watch_flags(server, raw, base):
    assert raw.create(base)[0] == ERR_OK
    w = zkwire.RawClient(server.port)
    try:
        _, err, res, _ = multi(w, [mop_read(base, watch=True), mop_read(base, OP_GET_CHILDREN, True)],
                               op=OP_MULTI_READ)
        assert err == ERR_OK and [e for _, e, _ in res] == [0, 0]
        assert raw.create(base + "/c")[0] == ERR_OK
        assert raw.set_data(base, b"x")[0] == ERR_OK
        assert drain_events(w) == []
    finally:
        w.close()


def test_multi_read_behind_the_sessions_own_multi_sees_it(raw, base):
    assert raw.create(base)[0] == ERR_OK
    # Pipelined: the multiRead is sent before the multi's reply arrives.
    ops = [mop_create(base + "/p%d" % i, b"%d" % i) for i in range(50)]
    x1 = raw.send(OP_MULTI, b"".join(ops) + MULTI_END)
    x2 = raw.send(OP_MULTI_READ, mop_read(base, OP_GET_CHILDREN) + mop_read(base + "/p49") + MULTI_END)
    replies = []
    while len(replies) < 2:
        m = raw.read_one()
        if m[0] == "reply":
            replies.append(m)
    assert [m[1] for m in replies] == [x1, x2]
    res = zkwire.parse_multi_response(replies[1][4])
    assert len(res[0][2]) == 50
    assert res[1][2][0] == b"49"


def test_multi_of_many_ops_within_the_frame_bound(raw, base):
    assert raw.create(base)[0] == ERR_OK
    n = 5000  # about 600 KB: under jute.maxbuffer
    ops = [mop_create(base + "/n%05d" % i) for i in range(n)]
    zxid, err, res, _ = multi(raw, ops)
    assert err == ERR_OK and len(res) == n and res[-1][2] == base + "/n%05d" % (n - 1)
    assert raw.exists(base)[1]["numChildren"] == n
    ops = [mop_delete(base + "/n%05d" % i) for i in range(n)] + [mop_check(base, 99)]
    zxid, err, res, _ = multi(raw, ops)
    assert err == ERR_OK and res[-1][1] == ERR_BAD_VERSION and res[0][1] == ERR_OK
    assert raw.exists(base)[1]["numChildren"] == n


def test_multis_in_the_log_survive_a_restart(tmp_path):
    srv = harness.Server(tmp_path)
    srv.start()
    try:
        c = zkwire.RawClient(srv.port)
        assert c.create("/r")[0] == ERR_OK
        _, err, res, _ = multi(c, [mop_create("/r/a", b"A"), mop_create("/r/s-", flags=2),
                                   mop_set_data("/r", b"R"), mop_create("/r/gone"),
                                   mop_delete("/r/gone")])
        assert [e for _, e, _ in res] == [0] * 5
        _, err, res, _ = multi(c, [mop_create("/r/b"), mop_check("/r", 9)])
        assert res[1][1] == ERR_BAD_VERSION
        want = {p: c.exists(p)[1] for p in ("/r", "/r/a", "/r/s-0000000001")}
        c.close()
        srv.stop()
        srv.start()
        c = zkwire.RawClient(srv.port)
        for p, st in want.items():
            assert c.exists(p) == (ERR_OK, st), p
        assert c.exists("/r/b")[0] == ERR_NO_NODE
        assert c.exists("/r/gone")[0] == ERR_NO_NODE
        assert sorted(c.get_children("/r")[1]) == ["a", "s-0000000001"]
        c.close()
    finally:
        srv.stop()


def _multi_workload(c, base):
    """Multis that leave a known tree: ops that see each other, a failed one, an empty one."""
    assert c.create(base)[0] == ERR_OK
    _, err, res, _ = multi(c, [mop_create(base + "/a", b"A"), mop_create(base + "/s-", flags=2),
                               mop_create(base + "/s-", flags=2), mop_set_data(base + "/a", b"A2"),
                               mop_check(base + "/a", 1), mop_create(base + "/t"),
                               mop_delete(base + "/t")])
    assert [e for _, e, _ in res] == [0] * 7
    _, err, res, _ = multi(c, [mop_delete(base + "/a"), mop_create(base + "/b"), mop_check(base, 5)])
    assert [e for _, e, _ in res] == [0, 0, ERR_BAD_VERSION]
    _, err, res, _ = multi(c, [])
    assert (err, res) == (ERR_OK, [])


def _tree_of(c, base):
    out = {}
    for p in [base] + [base + "/" + k for k in sorted(c.get_children(base)[1])]:
        err, data, st = c.get_data(p)
        assert err == ERR_OK, p
        out[p] = (data, st)
    return out


def test_multi_logs_pass_between_zkd_and_apache(tmp_path):
    """Apache ZooKeeper reads the MultiTxns zkd logged and zkd reads Apache's (with their
    TxnDigest), replaying them to the same tree; dump-log prints Apache's multis."""
    import subprocess

    import persist
    if harness.target() != "zkd" or persist.have_apache():
        pytest.skip("needs zkd and Apache ZooKeeper")
    cfg = {"snapCount": 100000}
    servers = {k: persist.DataServer(tmp_path, kind=k, extra_cfg=cfg) for k in ("zkd", "apache")}
    port = harness.free_port()
    for s in servers.values():
        s.pinned_port = port
    try:
        trees = {}
        for first, base in (("apache", "/from-apache"), ("zkd", "/from-zkd")):
            srv = servers[first].start()
            c = zkwire.RawClient(srv.port)
            _multi_workload(c, base)
            trees[base] = _tree_of(c, base)
            c.close()
            srv.stop()
            other = servers["zkd" if first == "apache" else "apache"].start()
            c = zkwire.RawClient(other.port)
            for b, want in trees.items():
                assert _tree_of(c, b) == want, "%s after %s" % (other.kind, first)
            c.close()
            other.stop()
        logs = sorted(servers["zkd"].version_dir.glob("log.*"))
        out = subprocess.run([str(harness.REPO / "zkd"), "dump-log", str(logs[0])],
                             capture_output=True, timeout=30, text=True)
        assert out.returncode == 0, out.stderr
        assert " multi ops=7 | create '/from-apache/a'" in out.stdout
        assert "| error err=-103" in out.stdout
    finally:
        for s in servers.values():
            s.stop()


def test_multi_over_the_frame_bound_closes_the_connection(server, raw, base):
    """Ops per multi are bounded by jute.maxbuffer (1 MiB - 1): a bigger frame is not read."""
    assert raw.create(base)[0] == ERR_OK
    op = mop_create(base + "/n", b"x" * 1000)
    ops = [op] * (1100000 // len(op))
    try:
        raw.send(OP_MULTI, b"".join(ops) + MULTI_END)
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed while the frame was still being sent
    else:
        assert zkwire.wait_closed(raw.sock, 10), "the server kept the connection"
    c = zkwire.RawClient(server.port)
    try:
        assert c.exists(base)[1]["numChildren"] == 0
    finally:
        c.close()


def test_multi_read_reply_bound(server, raw, base):
    """zkd's limit: a multiRead reply may grow to 64 MiB like one big read; past that the
    connection is closed (Apache ZooKeeper would build the whole reply in its heap)."""
    if harness.target() != "zkd":
        pytest.skip("zkd's own output bound")
    big = b"d" * 1000000
    assert raw.create(base, big)[0] == ERR_OK
    # 15 MB: past the usual output bound (8 MiB), under 64 MiB (and zkwire's 16 MiB frames).
    zxid, err, res, _ = multi(raw, [mop_read(base)] * 15, op=OP_MULTI_READ)
    assert err == ERR_OK and len(res) == 15 and res[-1][2][0] == big
    raw.send(OP_MULTI_READ, mop_read(base) * 80 + MULTI_END)
    assert zkwire.wait_closed(raw.sock, 20), "a reply past 64 MiB was not refused"
