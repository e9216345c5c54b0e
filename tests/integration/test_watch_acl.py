"""Watch events and ACLs: a session only receives events about znodes it may READ.

ZooKeeper 3.8's NIOServerCnxn.process(event, acl) runs checkACL(READ) with the ACL of the
znode the change is about (the node for NodeCreated/Deleted/DataChanged, the parent for
NodeChildrenChanged) and the connection's auth ids, and drops the event when it fails; the
one-shot watch is consumed all the same. setWatches' catch-up events carry no ACL and are not
checked. Found by the differential tester (tests/diff, finding 3).
"""

import base64
import hashlib

import pytest

import zkwire
from zkwire import RawClient

OPEN = zkwire.OPEN_ACL_UNSAFE
EV_CREATED, EV_DELETED, EV_DATA, EV_CHILDREN = 1, 2, 3, 4
SYNC = zkwire.STATE_SYNC_CONNECTED


def digest(cred):
    user = cred.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(cred.encode()).digest()).decode()


U1_ONLY = [(31, "digest", digest("u1:p1"))]


@pytest.fixture
def ab(server, base):
    """(a, b, base): a authenticated as digest u1, b with only its ip; base created, open."""
    a, b = RawClient(server.port), RawClient(server.port)
    try:
        assert a.add_auth("digest", "u1:p1")[2] == 0
        assert a.create(base)[0] == 0
        yield a, b, base
    finally:
        a.close()
        b.close()


def settle(*clients):
    """A ping's reply follows every event queued before it: afterwards .events is complete."""
    for c in clients:
        assert c.ping() == 0


def test_events_need_read_on_the_node(ab):
    a, b, base = ab
    x = base + "/x"
    for c in (a, b):
        assert c.exists(x, watch=True)[0] == zkwire.ERR_NO_NODE
        assert c.get_children(base, watch=True)[0] == 0
    assert a.create(x, b"1", acl=U1_ONLY)[0] == 0
    settle(a, b)
    # NodeCreated is about x (u1 only): b loses it; NodeChildrenChanged is about base (open).
    assert a.events == [(EV_CREATED, SYNC, x), (EV_CHILDREN, SYNC, base)]
    assert b.events == [(EV_CHILDREN, SYNC, base)]
    a.events.clear()
    b.events.clear()
    for c in (a, b):
        assert c.exists(x, watch=True)[0] == 0
    assert a.set_data(x, b"2")[0] == 0
    assert a.delete(x) == 0
    settle(a, b)
    assert a.events == [(EV_DATA, SYNC, x)]
    assert b.events == []


def test_a_dropped_event_still_consumes_the_watch(ab):
    a, b, base = ab
    x = base + "/x"
    assert b.exists(x, watch=True)[0] == zkwire.ERR_NO_NODE
    assert a.create(x, b"1", acl=U1_ONLY)[0] == 0
    assert a.set_acl(x, OPEN)[0] == 0
    assert a.set_data(x, b"2")[0] == 0
    settle(b)
    assert b.events == []          # NodeCreated dropped, and no watch left for the set
    assert b.exists(x, watch=True)[0] == 0
    assert a.set_data(x, b"3")[0] == 0
    settle(b)
    assert b.events == [(EV_DATA, SYNC, x)]


def test_set_watches_catch_up_is_not_checked(ab):
    a, b, base = ab
    x = base + "/x"
    assert a.create(x, b"1", acl=U1_ONLY)[0] == 0
    assert a.set_data(x, b"2")[0] == 0
    # b registers a data watch as if it had last seen zxid 1: x changed since, so the
    # server answers with NodeDataChanged at once, with no ACL attached.
    assert b.set_watches(1, data=[x]) == 0
    settle(b)
    assert b.events == [(EV_DATA, SYNC, x)]
