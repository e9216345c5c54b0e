"""Proves sessions behave as in Apache ZooKeeper: timeouts clamp to [2,20]*tickTime, a silent session expires and loses its ephemerals, a session survives its connection and can be resumed with id+password, and a wrong password is answered as an expired session."""

import time

from kazoo.protocol.states import KazooState

import zkwire
from harness import wait_for

SERVER_TICK_TIME = 200          # min session timeout 400 ms, max 4000 ms
FAST_RETRY = {"max_tries": -1, "delay": 0.05, "max_delay": 0.3}


def test_negotiated_timeout_clamps(server):
    for asked, granted in ((1, 400), (100, 400), (399, 400), (1000, 1000), (4000, 4000),
                           (4001, 4000), (60000, 4000)):
        raw = zkwire.RawClient(server.port, timeout_ms=asked)
        try:
            assert raw.conn["timeout_ms"] == granted, "asked %d" % asked
            assert raw.session_id != 0
            assert len(raw.passwd) == 16
        finally:
            raw.close_session()


def test_connect_response_has_read_only_flag_for_new_clients(server):
    raw = zkwire.RawClient(server.port)
    try:
        assert raw.conn["protocol_version"] == 0
        assert raw.conn["read_only"] is False
    finally:
        raw.close_session()


def test_silent_session_expires_and_loses_ephemerals(kazoo_factory, proxy, base):
    a = kazoo_factory(hosts=proxy.hosts, timeout=1.0, connection_retry=FAST_RETRY)
    b = kazoo_factory()
    b.create(base)
    a.create(base + "/eph", b"x", ephemeral=True)
    sid = a.client_id[0]
    states = []
    a.add_listener(lambda s: states.append(s))

    proxy.accepting = False
    proxy.drop()                       # a can neither ping nor reconnect; its session is open
    t0 = time.monotonic()
    assert b.exists(base + "/eph") is not None   # closing a connection does not end a session
    wait_for(lambda: b.exists(base + "/eph") is None, 10, what="ephemeral removal")
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.5, "session ended %.2fs after the drop, before its 1s timeout" % elapsed
    assert b.get_children(base) == []
    assert b.exists(base).numChildren == 0

    proxy.accepting = True             # now a reconnects with the dead session: it is told expired
    wait_for(lambda: KazooState.LOST in states, 10, what="kazoo LOST state")
    wait_for(lambda: a.connected and a.client_id and a.client_id[0] != sid, 15,
             what="kazoo new session")
    assert b.exists(base + "/eph") is None


def test_raw_session_expires_and_resume_is_refused(kazoo_factory, server, base):
    b = kazoo_factory()
    b.create(base)
    raw = zkwire.RawClient(server.port, timeout_ms=800)
    assert raw.conn["timeout_ms"] == 800
    err, _ = raw.create(base + "/eph", flags=zkwire.EPHEMERAL)
    assert err == 0
    assert b.exists(base + "/eph").ephemeralOwner == raw.session_id
    raw.close()                                  # no closeSession: only the socket goes
    assert b.exists(base + "/eph") is not None
    wait_for(lambda: b.exists(base + "/eph") is None, 10, what="ephemeral removal")

    again = zkwire.RawClient(server.port, timeout_ms=800, session_id=raw.session_id,
                             passwd=raw.passwd, last_zxid=raw.last_zxid)
    try:
        assert again.conn["timeout_ms"] == 0    # the "session expired" answer
        assert again.session_id == 0
        assert zkwire.wait_closed(again.sock, 5), "server kept the expired connection open"
    finally:
        again.close()


def test_resume_with_id_and_password_keeps_session(kazoo_factory, proxy, base):
    a = kazoo_factory(hosts=proxy.hosts, timeout=2.0, connection_retry=FAST_RETRY)
    b = kazoo_factory()
    b.create(base)
    a.create(base + "/eph", ephemeral=True)
    sid, passwd = a.client_id

    proxy.accepting = False
    proxy.drop()
    c = kazoo_factory(client_id=(sid, passwd), timeout=2.0)
    assert c.client_id[0] == sid
    assert c.exists(base + "/eph").ephemeralOwner == sid
    c.create(base + "/eph2", ephemeral=True)
    time.sleep(3.0)                   # longer than the 2 s timeout: c's pings keep it alive
    assert set(b.get_children(base)) == {"eph", "eph2"}
    assert b.exists(base + "/eph2").ephemeralOwner == sid

    c.stop()                          # closeSession ends the session for good
    assert b.get_children(base) == []


def test_resume_closes_the_older_connection(kazoo_factory, server, base):
    b = kazoo_factory()
    b.create(base)
    first = zkwire.RawClient(server.port, timeout_ms=4000)
    assert first.create(base + "/eph", flags=zkwire.EPHEMERAL)[0] == 0
    second = zkwire.RawClient(server.port, timeout_ms=4000, session_id=first.session_id,
                              passwd=first.passwd, last_zxid=first.last_zxid)
    try:
        assert second.session_id == first.session_id
        assert second.conn["timeout_ms"] == 4000
        assert zkwire.wait_closed(first.sock, 5), "old connection of the session left open"
        err, data, stat = second.get_data(base + "/eph")
        assert err == 0 and stat["ephemeralOwner"] == first.session_id
    finally:
        first.close()
        second.close_session()
    assert b.exists(base + "/eph") is None


def test_wrong_password_is_treated_as_expired(kazoo_factory, server, base):
    a = kazoo_factory()
    a.create(base, ephemeral=True)
    sid, passwd = a.client_id
    bad = bytes(x ^ 0xFF for x in passwd)

    raw = zkwire.RawClient(server.port, session_id=sid, passwd=bad)
    try:
        assert raw.conn["timeout_ms"] == 0
        assert raw.session_id == 0
        assert zkwire.wait_closed(raw.sock, 5), "server kept a wrong-password connection open"
    finally:
        raw.close()

    c = kazoo_factory(client_id=(sid, bad))    # kazoo drops the id and makes a new session
    assert c.client_id[0] != sid
    assert c.exists(base).ephemeralOwner == sid

    # The owner keeps its session.  (Apache ZooKeeper closes the owner's current connection
    # before it checks the password, so the owner may have had to reconnect meanwhile.)
    wait_for(lambda: a.connected, 10, what="owner connected")
    assert a.client_id[0] == sid
    a.set(base, b"still mine")
    assert c.get(base)[0] == b"still mine"


def test_unknown_session_id_is_treated_as_expired(server):
    raw = zkwire.RawClient(server.port, session_id=0x7EADBEEF00000001, passwd=b"\x00" * 16)
    try:
        assert raw.conn["timeout_ms"] == 0
        assert raw.session_id == 0
        assert zkwire.wait_closed(raw.sock, 5)
    finally:
        raw.close()
