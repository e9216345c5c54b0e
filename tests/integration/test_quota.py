"""Quotas under /zookeeper/quota, as Apache ZooKeeper 3.8 keeps them.

Proves, against zkd and Apache ZooKeeper alike: once a quota's nodes exist (created exactly as
zkCli's setquota creates them), its zookeeper_stats node holds the count and bytes of the
subtree and follows every create, delete, setData, session close and reaper delete below it
(the deepest quota wins); its data changes in place (no new mzxid or version); keys it holds
beyond count and bytes are kept; deleting the limits node stops the counting and re-creating the
stats node recounts; with enforceQuota a hard limit refuses a create or setData with
QuotaExceeded (before the version check) while a soft one does not; and the stats are right
after a restart that replays the log and after one that loads a snapshot (which recounts).
"""

import time

import harness
from zkwire import (EPHEMERAL, ERR_BAD_VERSION, ERR_NO_NODE, ERR_OK, RawClient)

import pytest

ERR_QUOTA_EXCEEDED = -125
SERVER_EXTRA_CFG = {"enforceQuota": "true", "extendedTypesEnabled": "true",
                    "znode.container.checkIntervalMs": 200}
UNLIMITED = b"count=-1,bytes=-1"


def set_quota(c, path, limits):
    """SetQuotaCommand.createQuota: the quota path's nodes (null data), the limits node, then
    the stats node with count=0,bytes=0 (which the server recounts)."""
    parts = path.strip("/").split("/")
    for i in range(len(parts)):
        assert c.create("/zookeeper/quota/" + "/".join(parts[:i + 1]), None)[0] in (ERR_OK, -110)
    assert c.create("/zookeeper/quota%s/zookeeper_limits" % path, limits)[0] == ERR_OK
    assert c.create("/zookeeper/quota%s/zookeeper_stats" % path, b"count=0,bytes=0")[0] == ERR_OK


def stats(c, path):
    err, data, _ = c.get_data("/zookeeper/quota%s/zookeeper_stats" % path)
    assert err == ERR_OK
    return data


def test_stats_follow_the_subtree(raw, base):
    assert raw.create(base, b"1")[0] == ERR_OK
    assert raw.create(base + "/b", b"22")[0] == ERR_OK
    set_quota(raw, base, UNLIMITED)
    assert stats(raw, base) == b"count=2,bytes=3"
    _, _, st = raw.get_data("/zookeeper/quota%s/zookeeper_stats" % base)
    assert st["mzxid"] == st["czxid"] and st["version"] == 0 and st["dataLength"] == 15
    assert raw.create(base + "/b/c", b"333")[0] == ERR_OK
    assert stats(raw, base) == b"count=3,bytes=6"
    assert raw.set_data(base + "/b", b"4444")[0] == ERR_OK
    assert stats(raw, base) == b"count=3,bytes=8"
    assert raw.delete(base + "/b/c") == ERR_OK
    assert stats(raw, base) == b"count=2,bytes=5"
    _, _, st2 = raw.get_data("/zookeeper/quota%s/zookeeper_stats" % base)
    assert (st2["mzxid"], st2["version"]) == (st["mzxid"], 0)  # rewritten in place
    # A session's ephemerals count until the session closes.
    other = RawClient(raw.sock.getpeername()[1])
    assert other.create(base + "/e", b"ee", flags=EPHEMERAL)[0] == ERR_OK
    assert stats(raw, base) == b"count=3,bytes=7"
    other.close_session()
    assert stats(raw, base) == b"count=2,bytes=5"


def test_deepest_quota_counts(raw, base):
    assert raw.create(base, b"1")[0] == ERR_OK
    assert raw.create(base + "/in", b"22")[0] == ERR_OK
    assert raw.create(base + "/in/c", b"333")[0] == ERR_OK
    set_quota(raw, base, UNLIMITED)
    set_quota(raw, base + "/in", UNLIMITED)
    assert (stats(raw, base), stats(raw, base + "/in")) == (b"count=3,bytes=6", b"count=2,bytes=5")
    assert raw.create(base + "/in/d", b"4444")[0] == ERR_OK
    assert raw.create(base + "/x", b"55555")[0] == ERR_OK
    assert (stats(raw, base), stats(raw, base + "/in")) == (b"count=4,bytes=11", b"count=3,bytes=9")
    # Without its limits node the inner quota stops counting: the outer one takes over.
    assert raw.delete("/zookeeper/quota%s/in/zookeeper_limits" % base) == ERR_OK
    assert raw.create(base + "/in/f", b"f")[0] == ERR_OK
    assert (stats(raw, base), stats(raw, base + "/in")) == (b"count=5,bytes=12", b"count=3,bytes=9")
    # Re-creating a stats node recounts, whatever data it is created with.
    assert raw.delete("/zookeeper/quota%s/zookeeper_stats" % base) == ERR_OK
    assert raw.create(base + "/g", b"g")[0] == ERR_OK
    assert raw.create("/zookeeper/quota%s/zookeeper_stats" % base, b"junk")[0] == ERR_OK
    assert stats(raw, base) == b"count=7,bytes=17"


def test_other_keys_are_kept_in_order(raw, base):
    assert raw.create(base, b"")[0] == ERR_OK
    set_quota(raw, base, UNLIMITED)
    statpath = "/zookeeper/quota%s/zookeeper_stats" % base
    assert raw.set_data(statpath, b"count=100,bytes=5=;foo=7;bar=-3")[0] == ERR_OK
    assert raw.create(base + "/n", b"x")[0] == ERR_OK
    assert stats(raw, base) == b"count=101,bytes=6=;bar=-3;foo=7"
    assert raw.set_data(statpath, b"bytes=4")[0] == ERR_OK  # a missing count reads as -1
    assert raw.delete(base + "/n") == ERR_OK
    assert stats(raw, base) == b"count=-2,bytes=3"


def test_reaped_container_leaves_the_stats(raw, base):
    assert raw.create(base, b"")[0] == ERR_OK
    set_quota(raw, base, UNLIMITED)
    assert raw.create_container(base + "/c", b"cc")[0] == ERR_OK
    assert raw.create_ttl(base + "/t", 100, b"ttt")[0] == ERR_OK
    assert raw.create(base + "/c/k", b"")[0] == ERR_OK
    assert stats(raw, base) == b"count=4,bytes=5"
    assert raw.delete(base + "/c/k") == ERR_OK
    harness.wait_for(lambda: raw.exists(base + "/c")[0] == ERR_NO_NODE
                     and raw.exists(base + "/t")[0] == ERR_NO_NODE, 5, what="reaper")
    assert stats(raw, base) == b"count=1,bytes=0"


def test_hard_limits_refuse_soft_ones_do_not(raw, base):
    assert raw.create(base, b"")[0] == ERR_OK
    assert raw.create(base + "/soft", b"")[0] == ERR_OK
    set_quota(raw, base + "/soft", b"count=2,bytes=1")
    for i in range(3):
        assert raw.create(base + "/soft/n%d" % i, b"xy")[0] == ERR_OK
    assert stats(raw, base + "/soft") == b"count=4,bytes=6"
    hard = base + "/hard"
    assert raw.create(hard, b"")[0] == ERR_OK
    set_quota(raw, hard, b"count=-1,bytes=-1=;countHardLimit=2;byteHardLimit=10")
    assert raw.create(hard + "/n0", b"xy")[0] == ERR_OK
    assert raw.create(hard + "/n1", b"xy")[0] == ERR_QUOTA_EXCEEDED
    assert raw.create_container(hard + "/c")[0] == ERR_QUOTA_EXCEEDED
    assert raw.create(hard + "/no/n", b"")[0] == ERR_NO_NODE  # the parent is checked first
    assert raw.set_data(hard + "/n0", b"123456789")[0] == ERR_OK  # 9 of 10 bytes
    assert raw.set_data(hard + "/n0", b"12345678901")[0] == ERR_QUOTA_EXCEEDED
    assert raw.set_data(hard + "/n0", b"12345678901", 99)[0] == ERR_QUOTA_EXCEEDED
    assert raw.set_data(hard + "/n0", b"1", 99)[0] == ERR_BAD_VERSION
    assert stats(raw, hard) == b"count=2,bytes=9"
    assert raw.exists(hard + "/n1")[0] == ERR_NO_NODE
    assert raw.delete(hard + "/n0") == ERR_OK
    assert raw.create(hard + "/n1", b"xy")[0] == ERR_OK


def snapshots(srv):
    return list((srv.workdir / "data" / "version-2").glob("snapshot.*"))


def test_stats_right_after_restart(tmp_path):
    srv = harness.Server(tmp_path / "restart", extra_cfg={"snapCount": 100000})
    srv.start()
    try:
        c = RawClient(srv.port)
        assert c.create("/q", b"ab")[0] == ERR_OK
        assert c.create("/q/a", b"cde")[0] == ERR_OK
        set_quota(c, "/q", UNLIMITED)
        assert c.create("/q/b", b"f")[0] == ERR_OK
        # Stats set by hand: a replay keeps adding to them, a snapshot load recounts.
        assert c.set_data("/zookeeper/quota/q/zookeeper_stats", b"count=100,bytes=100")[0] == 0
        assert c.create("/q/c", b"gh")[0] == ERR_OK
        assert stats(c, "/q") == b"count=101,bytes=102"
        c.close()
        srv.stop()
        before = len(snapshots(srv))
        srv.start()  # the log is replayed over the snapshot taken at the first start
        c = RawClient(srv.port)
        assert stats(c, "/q") == b"count=101,bytes=102"
        c.close()
        # zkd writes its start-up snapshot in the background; wait for it.
        harness.wait_for(lambda: len(snapshots(srv)) > before, 10, what="a new snapshot")
        srv.stop()
        srv.start()  # the snapshot taken after that replay is loaded: recounted
        c = RawClient(srv.port)
        assert stats(c, "/q") == b"count=4,bytes=8"
        assert c.create("/q/d", b"")[0] == ERR_OK
        assert stats(c, "/q") == b"count=5,bytes=8"
        c.close()
    finally:
        srv.stop()
    assert srv.health_problems() is None


def test_quota_inside_a_multi(raw, base):
    """Each op of a multi is checked against the applied stats, as in ZooKeeper: two creates
    in one multi both fit a limit with room for one; a third multi op past it fails the
    whole multi, which then changes nothing."""
    from zkwire import multi, mop_create
    assert raw.create(base, b"")[0] == ERR_OK
    set_quota(raw, base, b"count=-1,bytes=-1=;countHardLimit=2")
    zxid, err, res, _ = multi(raw, [mop_create(base + "/a"), mop_create(base + "/b")])
    assert err == ERR_OK
    assert stats(raw, base) == b"count=3,bytes=0"
    zxid, err, res, _ = multi(raw, [mop_set_data_ok(base), mop_create(base + "/c")])
    # ZooKeeper's layout for a failed multi: header OK, an ErrorResult per op.
    assert (err, res) == (ERR_OK, [(-1, 0, 0), (-1, ERR_QUOTA_EXCEEDED, ERR_QUOTA_EXCEEDED)])
    assert raw.exists(base + "/c")[0] == ERR_NO_NODE
    assert raw.get_data(base)[2]["version"] == 0


def mop_set_data_ok(path):
    from zkwire import mop_set_data
    return mop_set_data(path, b"")
