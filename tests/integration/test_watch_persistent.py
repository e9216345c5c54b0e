"""Proves persistent and recursive watches (addWatch), removeWatches, checkWatches,
setWatches2, getEphemerals and getAllChildrenNumber answer as Apache ZooKeeper 3.8.0 does,
byte for byte where it matters (error codes, reply bodies, the order of events).

kazoo 2.8 has none of these requests, so the raw wire client (zkwire) drives them; every test
passes against ZK_TARGET=apache too. Event order is checked without sleeping: a watch event
triggered by a write precedes the reply of any later request on the watcher's connection, so
a round trip (`drain`) collects exactly the events triggered so far.
"""

import time

import pytest

import zkwire
from harness import mntr, wait_for
from zkwire import (ADD_WATCH_PERSISTENT as PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE as RECURSIVE,
                    ERR_MARSHALLING, ERR_NO_NODE, ERR_NO_WATCHER, EVENT_CHILDREN_CHANGED as CHILDREN,
                    EVENT_CREATED as CREATED, EVENT_DATA_CHANGED as CHANGED, EVENT_DELETED as DELETED,
                    WATCHER_ANY, WATCHER_CHILDREN, WATCHER_DATA)


@pytest.fixture
def raw(server):
    """make() -> a connected zkwire.RawClient; all closed at teardown."""
    clients = []

    def make(**kw):
        c = zkwire.RawClient(server.port, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def drain(c):
    """Every event that reached c before the reply of one more round trip, then forgets them."""
    assert c.exists("/")[0] == 0
    evs = [(t, p) for t, _, p in c.events]
    c.events.clear()
    return evs


def watch_count(server):
    return int(mntr(server)["zk_watch_count"])


def test_add_watch_reply_is_an_error_response(raw, base):
    c = raw()
    err, body = c.add_watch(base, PERSISTENT)
    assert (err, body) == (0, b"\0\0\0\0"), "ErrorResponse{err=0}; the path need not exist"
    assert c.add_watch(base, RECURSIVE) == (0, b"\0\0\0\0")
    assert c.add_watch(base, 2)[0] == ERR_MARSHALLING
    assert c.add_watch(base, -1)[0] == ERR_MARSHALLING
    assert c.call(zkwire.OP_ADD_WATCH, zkwire.p_str(base))[1] == ERR_MARSHALLING, "no mode"
    assert c.ping() == 0, "the connection stays"


def test_persistent_watch_survives_every_change(raw, base):
    c = raw()
    assert c.add_watch(base, PERSISTENT)[0] == 0
    c.create(base)
    assert drain(c) == [(CREATED, base)]
    for i in range(3):
        c.set_data(base, b"%d" % i)
    assert drain(c) == [(CHANGED, base)] * 3
    c.create(base + "/k")
    c.set_data(base + "/k", b"x")                 # not recursive: nothing for the child's data
    c.create(base + "/k/g")                       # nor for a grandchild
    c.delete(base + "/k/g")
    c.delete(base + "/k")
    assert drain(c) == [(CHILDREN, base), (CHILDREN, base)]
    c.delete(base)
    assert drain(c) == [(DELETED, base)], "one NodeDeleted, though it is in both tables"
    c.create(base)
    assert drain(c) == [(CREATED, base)], "the watch outlives the node"
    c.delete(base)
    drain(c)


def test_recursive_watch_sees_the_subtree_in_order(raw, base):
    watcher, writer = raw(), raw()
    assert watcher.add_watch(base, RECURSIVE)[0] == 0
    writer.create(base)
    writer.create(base + "/a")
    writer.create(base + "/a/b")
    writer.set_data(base + "/a/b", b"1")
    writer.set_data(base + "/a", b"2")
    writer.create(base + "/c")
    writer.delete(base + "/a/b")
    writer.delete(base + "/a")
    writer.set_data(base, b"3")
    writer.create(base + "x")                     # a sibling sharing the prefix
    writer.delete(base + "x")
    assert drain(watcher) == [
        (CREATED, base), (CREATED, base + "/a"), (CREATED, base + "/a/b"),
        (CHANGED, base + "/a/b"), (CHANGED, base + "/a"), (CREATED, base + "/c"),
        (DELETED, base + "/a/b"), (DELETED, base + "/a"), (CHANGED, base),
    ], "no NodeChildrenChanged for a recursive watch"
    writer.delete(base + "/c")
    writer.delete(base)
    assert drain(watcher) == [(DELETED, base + "/c"), (DELETED, base)]


def test_one_event_per_change_when_watches_overlap(raw, base):
    c = raw()
    c.create(base)
    assert c.add_watch(base, RECURSIVE)[0] == 0
    assert c.exists(base + "/n", watch=True)[0] == ERR_NO_NODE
    assert c.add_watch(base + "/n", PERSISTENT)[0] == 0
    assert c.get_children(base, watch=True)[0] == 0
    c.create(base + "/n")
    assert drain(c) == [(CREATED, base + "/n"), (CHILDREN, base)], \
        "recursive + persistent on the path: one NodeCreated; the parent's child watch fires"
    c.delete(base + "/n")
    c.delete(base)
    drain(c)


def test_last_watch_mode_wins_as_in_3_8_0(raw, base):
    """3.8.0 keeps one mode per (table, path, connection): getData(watch) after addWatch turns
    the data side into a one-shot watch (ZOOKEEPER-4466 changed this in 3.9)."""
    c = raw()
    c.create(base)
    assert c.add_watch(base, PERSISTENT)[0] == 0
    assert c.get_data(base, watch=True)[0] == 0
    c.set_data(base, b"1")
    c.set_data(base, b"2")
    c.create(base + "/k")
    c.delete(base + "/k")
    assert drain(c) == [(CHANGED, base), (CHILDREN, base), (CHILDREN, base)]
    assert c.add_watch(base, RECURSIVE)[0] == 0   # both tables become recursive
    c.create(base + "/k")
    c.create(base + "/k/g")
    assert drain(c) == [(CREATED, base + "/k"), (CREATED, base + "/k/g")]
    assert c.add_watch(base, PERSISTENT)[0] == 0  # and persistent again
    c.delete(base + "/k/g")
    c.delete(base + "/k")
    assert drain(c) == [(CHILDREN, base)]
    c.delete(base)
    drain(c)


def test_remove_watches_stops_events_and_sends_none(raw, base):
    c = raw()
    c.create(base)
    assert c.add_watch(base, PERSISTENT)[0] == 0
    assert c.remove_watches(base, WATCHER_CHILDREN) == 0
    assert drain(c) == [], "the server sends no ChildWatchRemoved: the client library makes it"
    c.create(base + "/k")
    c.set_data(base, b"1")
    assert drain(c) == [(CHANGED, base)], "the data half stays"
    assert c.remove_watches(base, WATCHER_CHILDREN) == ERR_NO_WATCHER
    assert c.remove_watches(base, WATCHER_ANY) == 0
    assert c.remove_watches(base, WATCHER_ANY) == ERR_NO_WATCHER
    assert c.remove_watches(base, WATCHER_DATA) == ERR_NO_WATCHER
    c.set_data(base, b"2")
    c.delete(base + "/k")
    assert drain(c) == []
    # A recursive watch whose data half is removed still reports deletions (its child-table
    # half suppresses nothing any more), but no creations.
    assert c.add_watch(base, RECURSIVE)[0] == 0
    assert c.remove_watches(base, WATCHER_DATA) == 0
    c.create(base + "/k")
    c.delete(base + "/k")
    assert drain(c) == [(DELETED, base + "/k")]
    assert c.remove_watches(base, WATCHER_ANY) == 0
    c.delete(base)
    assert drain(c) == []


def test_check_watches_codes(raw, base):
    c, other = raw(), raw()
    assert c.check_watches(base, WATCHER_ANY) == ERR_NO_WATCHER
    assert c.add_watch(base, PERSISTENT)[0] == 0
    for t in (WATCHER_CHILDREN, WATCHER_DATA, WATCHER_ANY):
        assert c.check_watches(base, t) == 0
    for t in (0, 4, 5, 6, -1):   # 3.8.0 knows no Persistent/PersistentRecursive WatcherType
        assert c.check_watches(base, t) == ERR_MARSHALLING
        assert c.remove_watches(base, t) == ERR_MARSHALLING
    # 3.8.0's containsWatcher answers whether *anyone* watches the path.
    assert other.check_watches(base, WATCHER_DATA) == 0
    assert other.remove_watches(base, WATCHER_DATA) == ERR_NO_WATCHER
    assert c.check_watches("", WATCHER_ANY) == ERR_NO_WATCHER
    assert c.check_watches("abc", WATCHER_DATA) == ERR_MARSHALLING
    assert c.check_watches(base + "/child", WATCHER_DATA) == ERR_NO_WATCHER
    assert c.remove_watches(base, WATCHER_ANY) == 0
    assert c.check_watches(base, WATCHER_ANY) == ERR_NO_WATCHER
    assert c.ping() == 0


def test_set_watches2_after_reconnect(server, raw, base):
    c = raw()
    c.create(base)
    c.create(base + "/a")
    assert c.add_watch(base, PERSISTENT)[0] == 0
    sid, pw, seen = c.session_id, c.passwd, c.last_zxid
    c.close()
    other = raw()
    other.set_data(base + "/a", b"changed")      # missed while disconnected
    other.create(base + "/new")
    d = raw(session_id=sid, passwd=pw, last_zxid=seen)
    assert d.session_id == sid, "the session is kept"
    err = d.set_watches2(seen, data=[base + "/a", base + "/gone"], exist=[base + "/new"],
                         child=[base], persistent=[base], recursive=[base + "/a"])
    assert err == 0
    assert d.log == [("event", CHANGED, base + "/a"), ("event", DELETED, base + "/gone"),
                     ("event", CREATED, base + "/new"), ("event", CHILDREN, base),
                     ("reply", zkwire.XID_SET_WATCHES, 0)], \
        "missed changes first, in list order; no event for persistent re-registration"
    d.events.clear()
    other.create(base + "/a/b")
    other.set_data(base, b"x")
    other.delete(base + "/new")
    assert drain(d) == [(CREATED, base + "/a/b"), (CHANGED, base), (CHILDREN, base)]
    # A short record registers nothing and fires nothing.
    short = zkwire.p_long(0) + b"".join(zkwire.p_vec_str([base + "/zz"]) for _ in range(4))
    assert d.call(zkwire.OP_SET_WATCHES2, short, xid=zkwire.XID_SET_WATCHES)[1] == ERR_MARSHALLING
    assert d.set_watches2(0, persistent=[base], xid=77) == 0, "any xid works"
    assert drain(d) == []
    # A null path: ZooKeeper's node lookup throws for the data/exist/child lists, while a
    # persistent one is kept as a null key (as addWatch keeps it).
    empty = zkwire.p_vec_str([])
    null_first = zkwire.p_long(0) + zkwire.p_int(1) + zkwire.p_str(None) + empty * 4
    null_persistent = zkwire.p_long(0) + empty * 3 + zkwire.p_int(1) + zkwire.p_str(None) + empty
    assert d.call(zkwire.OP_SET_WATCHES2, null_first, xid=zkwire.XID_SET_WATCHES)[1] == ERR_MARSHALLING
    assert d.call(zkwire.OP_SET_WATCHES2, null_persistent, xid=zkwire.XID_SET_WATCHES)[1] == 0
    assert "\tnull\n" in server.four_letter("wchc").split("0x%x\n" % sid, 1)[1]
    for p in (base + "/a/b", base + "/a", base):
        other.delete(p)


def test_get_ephemerals_by_prefix(raw, base):
    c, other = raw(), raw()
    c.create(base)
    for p in ("/e1", "/e10", "/e2", "/f"):
        assert c.create(base + p, flags=zkwire.EPHEMERAL)[0] == 0
    assert other.create(base + "/e3", flags=zkwire.EPHEMERAL)[0] == 0
    mine = sorted(base + p for p in ("/e1", "/e10", "/e2", "/f"))
    for prefix in ("/", "", " ", " / "):
        err, got = c.get_ephemerals(prefix)
        assert err == 0 and sorted(x for x in got if x.startswith(base)) == mine, prefix
    assert c.call(zkwire.OP_GET_EPHEMERALS, zkwire.p_str(None))[1] == 0
    assert sorted(c.get_ephemerals(base + "/e")[1]) == mine[:3]
    assert sorted(c.get_ephemerals(base + "/e1")[1]) == [base + "/e1", base + "/e10"], \
        "a string prefix, not a path prefix"
    assert c.get_ephemerals(base + "/e1/") == (0, [])
    assert c.get_ephemerals(base[1:]) == (0, [])
    assert other.get_ephemerals(base) == (0, [base + "/e3"])
    assert raw().get_ephemerals("/") == (0, [])


def test_get_all_children_number(raw, base):
    c = raw()
    c.create(base)
    for p in ("/a", "/a/b", "/a/b/c", "/a/d", "/e"):
        c.create(base + p)
    assert c.get_all_children_number(base) == (0, 5)
    assert c.get_all_children_number(base + "/a") == (0, 3)
    assert c.get_all_children_number(base + "/e") == (0, 0)
    assert c.get_all_children_number("/zookeeper") == (0, 2)
    err, total = c.get_all_children_number("/")
    assert err == 0 and total >= 8
    assert c.get_all_children_number("") == (0, total + 1), "ZooKeeper's root is also keyed \"\""
    assert c.get_all_children_number(base + "/nope")[0] == ERR_NO_NODE
    assert c.get_all_children_number(base + "/")[0] == ERR_NO_NODE
    assert c.call(zkwire.OP_GET_ALL_CHILDREN_NUMBER, zkwire.p_str(None))[1] == ERR_MARSHALLING


def test_four_letter_words_count_persistent_watches(server, raw, base):
    c = raw()
    before = watch_count(server)
    assert c.add_watch(base, PERSISTENT)[0] == 0
    assert c.add_watch(base + "/r", RECURSIVE)[0] == 0
    assert watch_count(server) == before + 4, "each addWatch is in both tables"
    sid = "0x%x" % c.session_id
    wchc = server.four_letter("wchc")
    assert sid in wchc
    block = wchc.split(sid, 1)[1].split("\n0x", 1)[0]
    assert sorted(line.strip() for line in block.strip().splitlines()) == sorted([base, base + "/r"])
    wchp = server.four_letter("wchp")
    assert base + "/r\n\t" + sid in wchp
    assert "sid=%s,lop=ADDW" % sid in server.four_letter("cons")
    c.close()
    wait_for(lambda: watch_count(server) == before, 10, what="watches dropped with the connection")


def test_a_fired_watcher_stays_in_wchs(server, raw, base):
    """3.8.0 keeps a connection in its watch2Paths after its last watch fired."""
    c = raw()
    base_wchs = server.four_letter("wchs")
    assert c.exists(base, watch=True)[0] == ERR_NO_NODE
    c.create(base)
    assert drain(c) == [(CREATED, base)]
    wchs = server.four_letter("wchs")
    n_conn = int(wchs.split()[0])
    assert n_conn == int(base_wchs.split()[0]) + 1
    assert ("0x%x\n" % c.session_id) in server.four_letter("wchc")
    c.delete(base)
