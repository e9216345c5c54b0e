"""Regressions found by a review of the ensemble driver (server.c, section "ensemble"):
a learner's client's writes reach the leader's log in the order the client sent them, all
answered, also when the leader's REQUESTs wait in its backlog; a session whose closeSession
was never committed still expires under the next leader; a leader that reloaded its tree
after a TRUNC syncs a new learner without a gap; more concurrent syncs than a server has
slots are all answered. Each failed before its fix."""

import shutil
import threading
import time

import pytest

import ensemble as E
import zkwire as W


@pytest.fixture
def ens(tmp_path):
    with E.prepared(tmp_path, extra_cfg={"globalOutstandingLimit": 1}) as e:
        yield e


def _versioned_writer(port, path, n, out):
    """Pipeline setData(path, version=i) for i in 0..n-1, one every half millisecond: if any
    two reach the log out of order, one fails with BadVersion; if one is never answered, the
    read below times out."""
    c = W.RawClient(port, io_timeout=15)
    try:
        xids = list(range(1, n + 1))

        def sender():
            for i, xid in enumerate(xids):
                c.sock.sendall(W.frame(W.p_int(xid) + W.p_int(W.OP_SET_DATA) + W.p_str(path)
                                       + W.p_buf(b"v%d" % i) + W.p_int(i)))
                time.sleep(0.0005)
        threading.Thread(target=sender, daemon=True).start()
        got, errs = [], []
        while len(got) < n:
            m = c.read_one()
            if m[0] == "reply":
                got.append(m[1])
                errs.append(m[3])
        out[path] = (got == xids, errs.count(0), None)
    except Exception as e:  # noqa: BLE001 - reported by the test
        out[path] = (False, 0, repr(e))
    finally:
        c.close()


@pytest.mark.timeout(180)
def test_learner_client_writes_stay_in_order_through_the_backlog(ens):
    leader = ens.wait_leader()
    follower = [s for s in ens.sids if s != leader][0]
    setup = W.RawClient(ens.ports[leader][0])
    paths = ["/order%d" % i for i in range(6)]
    for p in paths:
        assert setup.create(p)[0] == 0
    setup.close()
    n, out, threads = 300, {}, []
    for i, p in enumerate(paths):
        port = ens.ports[follower if i % 2 == 0 else leader][0]
        t = threading.Thread(target=_versioned_writer, args=(port, p, n, out))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    bad = {p: v for p, v in out.items() if v != (True, n, None)}
    assert not bad, "writes reordered or unanswered (in_order, ok_count, error): %r" % bad


@pytest.fixture
def ens3(tmp_path):
    with E.prepared(tmp_path) as e:
        yield e


@pytest.mark.timeout(180)
def test_session_whose_close_was_lost_still_expires_under_the_next_leader(ens3):
    """A learner marks a session closing when it forwards closeSession; if that REQUEST dies
    with the old leader and this learner leads next, the session must still expire (Apache:
    it times out) and take its ephemeral node with it."""
    ens = ens3
    leader = ens.wait_leader()
    fols = sorted(s for s in ens.sids if s != leader)
    f = fols[-1]  # equal zxids: the higher sid wins the election between the two followers
    c = W.RawClient(ens.ports[f][0], timeout_ms=4000)
    assert c.create("/eph", flags=W.EPHEMERAL)[0] == 0
    ens.stop(leader)
    c.send(W.OP_CLOSE_SESSION)  # forwarded to a paused leader that never processes it
    time.sleep(0.3)
    c.close()
    ens.kill(leader)
    new = ens.wait_leader(timeout=30, among=fols)
    deadline = time.monotonic() + 20
    while True:
        r = W.RawClient(ens.ports[new][0])
        try:
            _, err, _ = r.call(W.OP_EXISTS, W.p_str("/eph") + W.p_bool(False))
        finally:
            r.close()
        if err == W.ERR_NO_NODE:
            break
        assert time.monotonic() < deadline, \
            "leader %d never expired the session: /eph outlives its 4 s session" % new
        time.sleep(1)


@pytest.fixture
def ens_snap(tmp_path):
    with E.prepared(tmp_path, extra_cfg={"snapCount": 100}, start=False) as e:
        yield e


def _children(port, path):
    r = W.RawClient(port)
    try:
        _, err, rd = r.call(W.OP_GET_CHILDREN, W.p_str(path) + W.p_bool(False))
        return err, (rd.vec_str() if err == 0 else None)
    finally:
        r.close()


@pytest.mark.timeout(240)
def test_leader_after_trunc_reload_does_not_diff_with_a_gap(ens_snap):
    """reload_upto (a TRUNC below our tree) leaves hist_base at 0 although the ring starts
    after the snapshot recovery loaded; leading later, the server DIFFs a fresh learner from
    0 with only the ring's txns - that learner serves a tree without /d."""
    ens = ens_snap
    ens.start_all()
    first = ens.wait_leader()
    others = [s for s in ens.sids if s != first]
    c = W.RawClient(ens.ports[first][0], io_timeout=20)
    assert c.create("/d")[0] == 0
    for i in range(150):  # past snapCount: a snapshot at a zxid > 0 on every server
        assert c.create("/d/n%03d" % i)[0] == 0
    # An uncommitted tail only the leader logs (test_ensemble's stale-leader recipe).
    for f in others:
        ens.stop(f)
    for i in range(3):
        c.send(W.OP_CREATE, W.p_str("/tail%d" % i) + W.p_buf(b"") + W.p_acl(W.OPEN_ACL_UNSAFE)
               + W.p_int(0))
    time.sleep(0.3)
    ens.kill(first)
    c.close()
    for f in others:
        ens.kill(f)
        ens.start(f)
    second = ens.wait_leader(timeout=30, among=others)
    ens.start(first)  # TRUNC below its recovered tree: reload_upto
    ens.wait_serving(ens.sids, 30)
    ens.kill(second)
    third = ens.wait_leader(timeout=30, among=[s for s in ens.sids if s != second])
    shutil.rmtree(ens.data_dir(second))  # a replaced disk
    ens.start(second)
    ens.wait_serving(ens.sids, 40)
    time.sleep(1)
    got = {s: _children(ens.ports[s][0], "/d") for s in ens.sids}
    assert all(err == 0 and len(kids) == 150 for err, kids in got.values()), \
        "leader %d; /d per server (err, children): %r" % (
            third, {s: (err, None if kids is None else len(kids)) for s, (err, kids) in got.items()})


@pytest.mark.timeout(120)
def test_more_than_32_concurrent_syncs_are_all_answered(ens3):
    """sync_submit returns 0 (wait) when its 32 slots are taken, and nothing wakes the
    waiting client when a slot frees: a client that sends nothing else is never answered."""
    ens = ens3
    leader = ens.wait_leader()
    for sid in (leader, [s for s in ens.sids if s != leader][0]):
        clients = [W.RawClient(ens.ports[sid][0], io_timeout=6) for _ in range(48)]
        try:
            for c in clients:
                c.send(W.OP_SYNC, W.p_str("/"))
            unanswered = 0
            for c in clients:
                try:
                    c.read_one()
                except (OSError, EOFError):
                    unanswered += 1
            assert unanswered == 0, "server %d: %d of 48 syncs never answered" % (sid, unanswered)
        finally:
            for c in clients:
                c.close()
