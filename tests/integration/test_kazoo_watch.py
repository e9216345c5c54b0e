"""Proves watches behave as in Apache ZooKeeper: one-shot data/exists/child watches, the event-before-data ordering guarantee, and watches surviving a reconnect (SetWatches)."""

import threading
import time

from kazoo.handlers.threading import AsyncResult, SequentialThreadingHandler
from kazoo.protocol.states import EventType, KazooState

import zkwire
from harness import wait_for

QUIET_S = 0.5  # how long "no further event" is watched for


class Recorder:
    """A watcher that records every event it is called with."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, n=1, timeout=10.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.events) >= n, timeout)
        assert ok, "expected %d watch events, got %r" % (n, self.events)
        return self.events[n - 1]

    def types(self):
        with self.cond:
            return [(e.type, e.path) for e in self.events]


def settle(client, path):
    """A read round-trip plus a pause, so any notification already sent has been dispatched."""
    client.exists(path)
    time.sleep(QUIET_S)


def test_data_watch_fires_once(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    b.create(base, b"0")
    w = Recorder()
    assert a.get(base, watch=w)[0] == b"0"
    b.set(base, b"1")
    ev = w.wait(1)
    assert (ev.type, ev.path) == (EventType.CHANGED, base)
    b.set(base, b"2")
    b.create(base + "/child")      # a child create is not a data change of base
    settle(a, base)
    assert w.types() == [(EventType.CHANGED, base)]


def test_watch_is_per_path(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    b.create(base)
    b.create(base + "/x")
    b.create(base + "/y")
    w = Recorder()
    a.get(base + "/x", watch=w)
    b.set(base + "/y", b"other")
    b.set(base, b"parent")
    settle(a, base)
    assert w.types() == []
    b.set(base + "/x", b"mine")
    assert w.wait(1).path == base + "/x"


def test_exists_watch_fires_created(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    w = Recorder()
    assert a.exists(base, watch=w) is None
    b.create(base, b"x")
    ev = w.wait(1)
    assert (ev.type, ev.path) == (EventType.CREATED, base)
    b.set(base, b"y")
    settle(a, base)
    assert len(w.types()) == 1


def test_exists_watch_on_existing_node_fires_changed_and_deleted(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    b.create(base)
    w = Recorder()
    assert a.exists(base, watch=w) is not None
    b.set(base, b"v")
    assert w.wait(1).type == EventType.CHANGED
    w2 = Recorder()
    a.exists(base, watch=w2)
    b.delete(base)
    ev = w2.wait(1)
    assert (ev.type, ev.path) == (EventType.DELETED, base)


def test_delete_fires_deleted_on_data_and_child_watches(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    b.create(base)
    b.create(base + "/n")
    dw, cw, pw = Recorder(), Recorder(), Recorder()
    a.get(base + "/n", watch=dw)
    a.get_children(base + "/n", watch=cw)
    a.get_children(base, watch=pw)
    b.delete(base + "/n")
    assert (dw.wait(1).type, dw.events[0].path) == (EventType.DELETED, base + "/n")
    assert (cw.wait(1).type, cw.events[0].path) == (EventType.DELETED, base + "/n")
    assert (pw.wait(1).type, pw.events[0].path) == (EventType.CHILD, base)
    settle(a, base)
    assert len(dw.events) == len(cw.events) == len(pw.events) == 1


def test_child_watch_fires_child(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    b.create(base)
    b.create(base + "/c0")
    w = Recorder()
    assert a.get_children(base, watch=w) == ["c0"]
    b.set(base + "/c0", b"data")   # a child's data change is not a children change
    b.set(base, b"data")           # nor is the parent's own data change
    settle(a, base)
    assert w.types() == []
    b.create(base + "/c1")
    ev = w.wait(1)
    assert (ev.type, ev.path) == (EventType.CHILD, base)
    b.create(base + "/c2")
    settle(a, base)
    assert len(w.types()) == 1
    w2 = Recorder()
    a.get_children(base, watch=w2)
    b.delete(base + "/c1")
    assert w2.wait(1).type == EventType.CHILD


def test_each_client_gets_its_own_event(kazoo_factory, base):
    clients = [kazoo_factory() for _ in range(3)]
    writer = kazoo_factory()
    writer.create(base)
    recs = []
    for c in clients:
        r = Recorder()
        c.get(base, watch=r)
        recs.append(r)
    writer.set(base, b"all")
    for r in recs:
        assert r.wait(1).type == EventType.CHANGED


class _LoggedResult(AsyncResult):
    def set(self, value=None):
        self._handler.order_log.append(("reply", value))
        super().set(value)


class RecordingHandler(SequentialThreadingHandler):
    """Logs, in the connection thread's order, each watch dispatch and each reply.

    kazoo runs watchers and completions on two different threads, so their run order says
    nothing; the order in which the connection thread hands them off is the wire order."""

    def __init__(self):
        super().__init__()
        self.order_log = []

    def async_result(self):
        return _LoggedResult(self)

    def dispatch_callback(self, callback):
        if callback.type == "watch":
            ev = callback.args[0]
            self.order_log.append(("watch", (ev.type, ev.path)))
        return super().dispatch_callback(callback)


def test_event_precedes_new_data_kazoo(kazoo_factory, base):
    handler = RecordingHandler()
    a = kazoo_factory(handler=handler)
    b = kazoo_factory()
    b.create(base, b"old")
    w = Recorder()
    a.get(base, watch=w)

    writer = threading.Timer(0.2, lambda: b.set(base, b"new"))
    writer.start()
    seen_new = False
    deadline = time.monotonic() + 10
    try:
        while not seen_new and time.monotonic() < deadline:
            batch = [a.get_async(base) for _ in range(20)]
            seen_new = any(r.get(timeout=10)[0] == b"new" for r in batch)
    finally:
        writer.join()
    assert seen_new, "never read the new value"
    log = list(handler.order_log)
    first_new = next(i for i, (k, v) in enumerate(log)
                     if k == "reply" and isinstance(v, tuple) and v[0] == b"new")
    watch_at = [i for i, (k, v) in enumerate(log) if k == "watch"]
    assert watch_at, "watch never dispatched"
    assert watch_at[0] < first_new, "reply with new data arrived before the watch event"
    assert log[watch_at[0]][1] == (EventType.CHANGED, base)
    assert w.wait(1).type == EventType.CHANGED


def test_event_precedes_new_data_on_the_wire(server, kazoo_factory, base):
    b = kazoo_factory()
    b.create(base, b"old")
    raw = zkwire.RawClient(server.port)
    try:
        err, data, _ = raw.get_data(base, watch=True)
        assert (err, data) == (0, b"old")
        body = zkwire.p_str(base) + zkwire.p_bool(False)
        writer = threading.Timer(0.2, lambda: b.set(base, b"new"))
        writer.start()
        first_new_xid = None
        deadline = time.monotonic() + 10
        try:
            while first_new_xid is None and time.monotonic() < deadline:
                xids = [raw.send(zkwire.OP_GET_DATA, body) for _ in range(20)]
                got = 0
                while got < len(xids):
                    msg = raw.read_one()
                    if msg[0] == "reply":
                        got += 1
                        _, xid, _, err, r = msg
                        assert err == 0
                        if r.buf() == b"new" and first_new_xid is None:
                            first_new_xid = xid
        finally:
            writer.join()
        assert first_new_xid is not None
        log = raw.log
        i_new = log.index(("reply", first_new_xid, 0))
        events = [i for i, e in enumerate(log) if e[0] == "event"]
        assert events and events[0] < i_new
        assert log[events[0]] == ("event", zkwire.EVENT_DATA_CHANGED, base)
        assert len(events) == 1     # one-shot: the later reads set no watch
    finally:
        raw.close_session()


def test_kazoo_recipe_watches_survive_reconnect(kazoo_factory, proxy, base):
    """kazoo 2.8 sends no SetWatches; on a drop it fires NONE events and its DataWatch /
    ChildrenWatch recipes re-read with a fresh watch on the SAME session."""
    a = kazoo_factory(hosts=proxy.hosts, connection_retry={"max_tries": -1, "delay": 0.05,
                                                           "max_delay": 0.5})
    b = kazoo_factory()
    b.create(base, b"v0")
    sid = a.client_id[0]
    a.create(base + "/eph", ephemeral=True)
    data_seen = []
    kids_seen = []
    a.DataWatch(base, lambda data, stat: data_seen.append(data))
    a.ChildrenWatch(base, lambda kids: kids_seen.append(sorted(kids)))
    wait_for(lambda: data_seen == [b"v0"] and kids_seen == [["eph"]], 10, what="initial calls")
    raw_watch = Recorder()
    a.get(base, watch=raw_watch)

    states = []
    a.add_listener(lambda s: states.append(s))
    proxy.drop()
    ev = raw_watch.wait(1)
    assert ev.type == EventType.NONE           # kazoo's client-side "connection lost" event
    wait_for(lambda: KazooState.CONNECTED in states and a.connected, 15, what="reconnect")
    assert KazooState.SUSPENDED in states
    assert KazooState.LOST not in states
    assert a.client_id[0] == sid
    assert b.exists(base + "/eph").ephemeralOwner == sid
    assert proxy.accepted >= 2

    b.set(base, b"v1")
    b.create(base + "/new")
    wait_for(lambda: data_seen and data_seen[-1] == b"v1", 10, what="DataWatch after reconnect")
    wait_for(lambda: kids_seen and kids_seen[-1] == ["eph", "new"], 10,
             what="ChildrenWatch after reconnect")


def _raw_watch_all(port, base):
    """Open a session watching base (data), base/absent (exists) and base/dir (children)."""
    raw = zkwire.RawClient(port, timeout_ms=10000)
    assert raw.get_data(base, watch=True)[0] == 0
    assert raw.exists(base + "/absent", watch=True)[0] == zkwire.ERR_NO_NODE
    assert raw.get_children(base + "/dir", watch=True)[0] == 0
    assert raw.get_data(base + "/gone", watch=True)[0] == 0
    return raw


def _resume(port, old):
    raw = zkwire.RawClient(port, timeout_ms=10000, session_id=old.session_id,
                           passwd=old.passwd, last_zxid=old.last_zxid)
    assert raw.session_id == old.session_id
    assert raw.conn["timeout_ms"] > 0
    return raw


def test_set_watches_rearms_after_reconnect(server, kazoo_factory, base):
    b = kazoo_factory()
    b.create(base)
    b.create(base + "/dir")
    b.create(base + "/gone")
    old = _raw_watch_all(server.port, base)
    old.close()                           # connection gone, session alive
    raw = _resume(server.port, old)
    try:
        err = raw.set_watches(old.last_zxid, data=[base, base + "/gone"],
                              exist=[base + "/absent"], child=[base + "/dir"])
        assert err == 0
        assert raw.wait_event(QUIET_S) is None     # nothing changed while away
        b.set(base, b"x")
        assert raw.wait_event() == (zkwire.EVENT_DATA_CHANGED, zkwire.STATE_SYNC_CONNECTED, base)
        b.create(base + "/absent")
        assert raw.wait_event() == (zkwire.EVENT_CREATED, zkwire.STATE_SYNC_CONNECTED,
                                    base + "/absent")
        b.create(base + "/dir/kid")
        assert raw.wait_event() == (zkwire.EVENT_CHILDREN_CHANGED, zkwire.STATE_SYNC_CONNECTED,
                                    base + "/dir")
        b.delete(base + "/gone")
        assert raw.wait_event() == (zkwire.EVENT_DELETED, zkwire.STATE_SYNC_CONNECTED,
                                    base + "/gone")
        b.set(base, b"y")                          # all were one-shot
        assert raw.wait_event(QUIET_S) is None
    finally:
        raw.close_session()


def test_set_watches_reports_changes_missed_while_away(server, kazoo_factory, base):
    """relativeZxid: anything newer than the client's last zxid fires at once on SetWatches."""
    b = kazoo_factory()
    b.create(base)
    b.create(base + "/dir")
    b.create(base + "/gone")
    old = _raw_watch_all(server.port, base)
    old.close()
    b.set(base, b"changed")
    b.create(base + "/absent")
    b.create(base + "/dir/kid")
    b.delete(base + "/gone")
    raw = _resume(server.port, old)
    try:
        err = raw.set_watches(old.last_zxid, data=[base, base + "/gone"],
                              exist=[base + "/absent"], child=[base + "/dir"])
        assert err == 0
        got = set()
        for _ in range(4):
            ev = raw.wait_event(5)
            assert ev is not None, "missing events, got %r" % got
            got.add((ev[0], ev[2]))
        assert got == {(zkwire.EVENT_DATA_CHANGED, base),
                       (zkwire.EVENT_DELETED, base + "/gone"),
                       (zkwire.EVENT_CREATED, base + "/absent"),
                       (zkwire.EVENT_CHILDREN_CHANGED, base + "/dir")}
        b.set(base, b"again")                      # fired watches are not re-armed
        assert raw.wait_event(QUIET_S) is None
    finally:
        raw.close_session()
