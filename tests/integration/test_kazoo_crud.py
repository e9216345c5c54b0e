"""Proves basic znode operations through kazoo behave as in Apache ZooKeeper: versions, errors, Stat fields, sequential names, ephemerals and path validation."""

import pytest
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NoChildrenForEphemeralsError,
                              NodeExistsError, NoNodeError, NotEmptyError)

import zkwire


def test_create_get_set_delete_with_versions(zk, base):
    assert zk.create(base, b"v0") == base
    data, st = zk.get(base)
    assert data == b"v0"
    assert st.version == 0

    with pytest.raises(NodeExistsError):
        zk.create(base, b"again")
    with pytest.raises(BadVersionError):
        zk.set(base, b"v1", version=1)
    st1 = zk.set(base, b"v1", version=0)
    assert st1.version == 1
    st2 = zk.set(base, b"v2", version=-1)
    assert st2.version == 2
    assert zk.get(base)[0] == b"v2"

    with pytest.raises(BadVersionError):
        zk.delete(base, version=1)
    assert zk.exists(base) is not None
    zk.delete(base, version=2)
    assert zk.exists(base) is None

    with pytest.raises(NoNodeError):
        zk.get(base)
    with pytest.raises(NoNodeError):
        zk.set(base, b"x")
    with pytest.raises(NoNodeError):
        zk.set(base, b"x", version=7)
    with pytest.raises(NoNodeError):
        zk.delete(base)
    with pytest.raises(NoNodeError):
        zk.delete(base, version=3)
    with pytest.raises(NoNodeError):
        zk.get_children(base)
    with pytest.raises(NoNodeError):
        zk.create(base + "/no/parent")


def test_empty_and_large_data(zk, base):
    zk.create(base)
    data, st = zk.get(base)
    assert data == b""
    assert st.dataLength == 0
    big = bytes(range(256)) * 2000  # 512000 bytes, under jute.maxbuffer
    st = zk.set(base, big)
    assert st.dataLength == len(big)
    assert zk.get(base)[0] == big


def test_not_empty(zk, base):
    zk.create(base)
    zk.create(base + "/child")
    with pytest.raises(NotEmptyError):
        zk.delete(base)
    zk.delete(base + "/child")
    zk.delete(base)
    assert zk.exists(base) is None


def test_create2_stat_matches_exists(zk, base):
    path, st = zk.create(base, b"hello", include_data=True)
    assert path == base
    assert st == zk.exists(base)
    assert st.dataLength == 5
    assert st.version == 0 and st.cversion == 0 and st.numChildren == 0


def test_stat_fields_on_create_and_set(zk, base):
    before = zk.create(base + "-marker", include_data=True)[1].czxid
    zk.create(base, b"abc")
    st = zk.exists(base)
    assert st.czxid > before
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ctime == st.mtime
    assert st.ctime > 0
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert st.ephemeralOwner == 0
    assert st.dataLength == 3
    assert st.numChildren == 0

    st2 = zk.set(base, b"abcdef")
    assert st2.czxid == st.czxid
    assert st2.mzxid > st.mzxid
    assert st2.ctime == st.ctime
    assert st2.mtime >= st.mtime
    assert st2.version == 1
    assert st2.cversion == 0
    assert st2.pzxid == st.pzxid
    assert st2.dataLength == 6


def test_parent_stat_after_child_create_and_delete(zk, base):
    zk.create(base, b"p")
    p0 = zk.exists(base)

    _, c1 = zk.create(base + "/a", include_data=True)
    p1 = zk.exists(base)
    assert p1.cversion == p0.cversion + 1
    assert p1.numChildren == 1
    assert p1.pzxid == c1.czxid
    assert p1.version == p0.version
    assert p1.mzxid == p0.mzxid  # a child create is not a data change

    _, c2 = zk.create(base + "/b", include_data=True)
    p2 = zk.exists(base)
    assert p2.cversion == p0.cversion + 2
    assert p2.numChildren == 2
    assert p2.pzxid == c2.czxid

    zk.set(base + "/a", b"data")  # a child's setData leaves the parent alone
    assert zk.exists(base) == p2

    zk.delete(base + "/a")
    p3 = zk.exists(base)
    after = zk.create(base + "-after", include_data=True)[1].czxid
    assert p3.cversion == p0.cversion + 3
    assert p3.numChildren == 1
    assert c2.czxid < p3.pzxid < after  # pzxid is the delete's zxid
    assert p3.mzxid == p0.mzxid
    assert p3.version == p0.version

    with pytest.raises(NoNodeError):
        zk.delete(base + "/a")
    assert zk.exists(base) == p3  # a failed delete changes nothing


def test_get_children_and_children_stat(zk, base):
    zk.create(base)
    assert zk.get_children(base) == []
    names = {"x", "y", "z-1", "0"}
    for n in names:
        zk.create(base + "/" + n)
    zk.create(base + "/x/grandchild")
    assert set(zk.get_children(base)) == names
    assert len(zk.get_children(base)) == len(names)
    children, st = zk.get_children(base, include_data=True)
    assert set(children) == names
    assert st == zk.exists(base)
    assert st.numChildren == len(names)


def test_persistent_sequential_names(zk, base):
    """The suffix counts child CREATES: ZooKeeper stores cversion as a create counter and
    reports cversion = 2*stored - numChildren (DataNode.copyStat), i.e. creates + deletes."""
    zk.create(base)
    zk.create(base + "/plain")
    zk.delete(base + "/plain")
    assert zk.exists(base).cversion == 2        # one create + one delete
    p = zk.create(base + "/s-", b"d", sequence=True)
    assert p == base + "/s-0000000001"          # but only one create so far
    p = zk.create(base + "/s-", sequence=True)
    assert p == base + "/s-0000000002"
    p = zk.create(base + "/other", sequence=True)  # one counter per parent, not per prefix
    assert p == base + "/other0000000003"
    assert zk.get(base + "/s-0000000001")[0] == b"d"
    assert set(zk.get_children(base)) == {"s-0000000001", "s-0000000002", "other0000000003"}
    assert zk.exists(base).cversion == 5        # 4 creates + 1 delete
    zk.delete(base + "/s-0000000002")
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000004"  # never reused
    st = zk.exists(base)
    assert st.cversion == 7 and st.numChildren == 3


def test_ephemeral_sequential_names(zk, base):
    zk.create(base)
    names = [zk.create(base + "/e-", ephemeral=True, sequence=True) for _ in range(3)]
    assert names == [base + "/e-%010d" % i for i in range(3)]
    for n in names:
        assert zk.exists(n).ephemeralOwner == zk.client_id[0]


def test_sequential_name_with_trailing_slash(server, zk, base):
    """The sequence suffix is appended before path validation, so "/p/" names a child of /p."""
    zk.create(base)
    raw = zkwire.RawClient(server.port)
    try:
        err, name = raw.create(base + "/", flags=zkwire.PERSISTENT_SEQUENTIAL)
        assert err == zkwire.ERR_OK
        assert name == base + "/0000000000"
    finally:
        raw.close_session()
    assert zk.get_children(base) == ["0000000000"]


def test_ephemeral_owner_and_vanish_after_close(kazoo_factory, base):
    a = kazoo_factory()
    b = kazoo_factory()
    b.create(base)
    a.create(base + "/eph", b"mine", ephemeral=True)
    sid = a.client_id[0]
    st = b.exists(base + "/eph")
    assert st.ephemeralOwner == sid
    assert st.ephemeralOwner != b.client_id[0]
    assert b.exists(base).ephemeralOwner == 0
    assert b.exists(base).numChildren == 1
    a.stop()
    a.close()
    # close is synchronous: once the closeSession reply arrived the node is gone
    assert b.exists(base + "/eph") is None
    assert b.get_children(base) == []


def test_no_children_for_ephemerals(zk, base):
    zk.create(base, ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/child", ephemeral=True)
    assert zk.get_children(base) == []


def test_zookeeper_node(zk):
    st = zk.exists("/zookeeper")
    assert st is not None
    assert st.ephemeralOwner == 0
    assert set(zk.get_children("/zookeeper")) == {"config", "quota"}
    # Built-in nodes are added without counting creates, so 2*0 - numChildren.
    assert st.cversion == -2 and st.numChildren == 2
    assert zk.exists("/zookeeper/quota") is not None
    assert "zookeeper" in zk.get_children("/")
    data, root = zk.get("/")
    assert root.czxid == 0


def test_sync_returns(zk, base):
    zk.create(base)
    assert zk.sync(base) == base
    assert zk.sync("/") == "/"


def test_create_rejects_invalid_paths(zk, base):
    zk.create(base)
    # Kazoo passes these through unchanged; the server validates them.
    for bad in (base + "/a\x00b", base + "/\x01ctl", base + "/\x1f"):
        with pytest.raises(BadArgumentsError):
            zk.create(bad)
    with pytest.raises(NodeExistsError):
        zk.create("/")
    with pytest.raises(BadArgumentsError):
        zk.delete("/")
    assert zk.get_children(base) == []


def test_other_ops_with_invalid_paths(zk, base):
    zk.create(base)
    with pytest.raises(BadArgumentsError):
        zk.exists(base + "/a\x00b")
    with pytest.raises(BadArgumentsError):
        zk.set(base + "/\x01ctl", b"")
    with pytest.raises(BadArgumentsError):
        zk.delete(base + "/a\x00b")
    with pytest.raises(NoNodeError):       # reads do not validate, they just find nothing
        zk.get(base + "/\x01ctl")


@pytest.mark.parametrize("suffix,expect", [
    # The parent must exist: it is looked up before the full path is validated.
    ("/", zkwire.ERR_BAD_ARGUMENTS),
    ("/.", zkwire.ERR_BAD_ARGUMENTS),
    ("/..", zkwire.ERR_BAD_ARGUMENTS),
    ("/x/.", zkwire.ERR_BAD_ARGUMENTS),
    ("/x/..", zkwire.ERR_BAD_ARGUMENTS),
    ("/./x", zkwire.ERR_NO_NODE),
    ("/x/../y", zkwire.ERR_NO_NODE),
    ("//x", zkwire.ERR_NO_NODE),
])
def test_raw_create_rejects_unnormalised_paths(server, zk, base, suffix, expect):
    """kazoo refuses or normalises these itself, so they go over the raw protocol."""
    zk.create(base)
    zk.create(base + "/x")
    raw = zkwire.RawClient(server.port)
    try:
        err, _ = raw.create(base + suffix)
        assert err == expect
        err, _ = raw.create("relative")
        assert err == zkwire.ERR_BAD_ARGUMENTS
        err, _ = raw.create("")
        assert err == zkwire.ERR_BAD_ARGUMENTS
    finally:
        raw.close_session()
    assert set(zk.get_children(base)) == {"x"}
    assert zk.get_children(base + "/x") == []
