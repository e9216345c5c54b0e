"""Sessions and sync across an ensemble: a session moves between servers with its ephemeral
nodes and (through setWatches) its watches; a learner's clients are kept alive by its PING
answers and expired by the leader alone; sync is a quorum round, so a paused and resumed
leader never answers a read after sync with data older than a write the new leader
acknowledged (Apache 3.8.0 does: ZOOKEEPER-1675, so that test is zkd's alone)."""

import socket
import time

import pytest

import ensemble as E
import zkwire as W
from harness import target


@pytest.fixture
def ens(tmp_path):
    with E.prepared(tmp_path) as e:
        yield e


def port(e, sid):
    return e.ports[sid][0]


def raw(e, sid, **kw):
    return W.RawClient(port(e, sid), **kw)


def reconnect(e, sid, session, passwd, seen):
    try:
        return raw(e, sid, timeout_ms=6000, session_id=session, passwd=passwd, last_zxid=seen)
    except (EOFError, OSError):
        return None


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def synced_exists(e, sid, path):
    c = raw(e, sid)
    try:
        zxid, err, _ = c.call(W.OP_SYNC, W.p_str(path))
        assert err == 0
        return c.exists(path)[0] == 0
    finally:
        c.close()


def test_session_moves_between_servers_with_ephemerals_and_watches(ens):
    leader = ens.wait_leader()
    f1, f2 = ens.followers(leader)[:2]
    a = raw(ens, f1, timeout_ms=6000)
    assert a.create("/eph", b"mine", flags=W.EPHEMERAL)[0] == 0
    assert a.create("/w", b"v1")[0] == 0
    err, _, _ = a.get_data("/w", watch=True)
    assert err == 0
    sid, pw, seen = a.session_id, a.passwd, a.last_zxid
    a.close()  # the connection is gone, the session is not
    # f2 refuses a client that has seen more than it has applied (as Apache does): a real
    # client would try the next server; we try f2 again until it has caught up.
    b = wait_for(lambda: reconnect(ens, f2, sid, pw, seen), 10, "f2 to take the session")
    assert b.session_id == sid, "the session must survive the move to another server"
    assert b.set_watches(seen, data=["/w"]) == 0
    other = raw(ens, leader)
    assert other.set_data("/w", b"v2")[0] == 0
    ev = b.wait_event(10)
    assert ev is not None and ev[0] == W.EVENT_DATA_CHANGED and ev[2] == "/w", ev
    for s in ens.sids:
        assert synced_exists(ens, s, "/eph"), "ephemeral of a live session lost on %d" % s
    assert b.close_session() == 0
    b.close()
    for s in ens.sids:
        wait_for(lambda: not synced_exists(ens, s, "/eph"), 10, "/eph gone on %d" % s)
    other.close()


def test_leader_expires_a_learners_silent_session(ens):
    leader = ens.wait_leader()
    f = ens.followers(leader)[0]
    a = raw(ens, f, timeout_ms=2000)
    assert a.create("/gone-soon", b"", flags=W.EPHEMERAL)[0] == 0
    a.close()  # no closeSession, no more pings: the leader must expire it
    t0 = time.monotonic()
    for s in ens.sids:
        wait_for(lambda: not synced_exists(ens, s, "/gone-soon"), 15,
                 "the expired session's ephemeral to go on %d" % s)
    assert time.monotonic() - t0 >= 1.0, "expired before its timeout"


def test_learner_pings_keep_its_sessions_alive(ens):
    leader = ens.wait_leader()
    f = ens.followers(leader)[0]
    a = raw(ens, f, timeout_ms=2000)
    assert a.create("/kept", b"", flags=W.EPHEMERAL)[0] == 0
    end = time.monotonic() + 6.0  # three session timeouts, pinging each 0.5 s
    while time.monotonic() < end:
        a.ping()
        time.sleep(0.5)
    assert synced_exists(ens, leader, "/kept")
    assert a.exists("/kept")[0] == 0
    a.close()


def test_read_after_sync_on_a_follower_sees_the_leaders_write(ens):
    leader = ens.wait_leader()
    f = ens.followers(leader)[0]
    w = raw(ens, leader)
    r = raw(ens, f)
    for i in range(30):
        assert w.create("/s%d" % i, b"x")[0] == 0
        zxid, err, _ = r.call(W.OP_SYNC, W.p_str("/s%d" % i))
        assert err == 0
        assert r.exists("/s%d" % i)[0] == 0, "read after sync missed a committed write"
    w.close()
    r.close()


@pytest.mark.xfail(target() == "apache", reason="Apache 3.8's sync is not a quorum operation "
                   "(ZOOKEEPER-1675): a resumed leader answers it with stale data (3 of 3 runs "
                   "here)")
def test_paused_leader_never_answers_sync_with_stale_data(ens):
    old = ens.wait_leader()
    c = raw(ens, old, timeout_ms=30000)
    assert c.create("/k", b"old")[0] == 0
    ens.stop(old)
    others = [s for s in ens.voters if s != old]
    new = ens.wait_leader(among=others)
    n = raw(ens, new)
    assert n.set_data("/k", b"new")[0] == 0
    n.close()
    # sync + getData reach the paused leader's socket before it runs again.
    c.send(W.OP_SYNC, W.p_str("/k"))
    c.send(W.OP_GET_DATA, W.p_str("/k") + b"\x00")
    ens.cont(old)
    c.sock.settimeout(5.0)
    try:
        while True:
            msg = c.read_one()
            if msg[0] == "reply" and msg[1] == c.xid:
                _, _, _, err, rd = msg
                if err == 0:
                    assert rd.buf() == b"new", "stale read after sync from a resumed leader"
                break
    except (socket.timeout, ConnectionError, EOFError, OSError):
        pass  # no answer, or the connection closed: the client fails over, never stale
    c.close()
