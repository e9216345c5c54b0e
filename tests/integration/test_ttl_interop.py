"""Proves containers, TTL nodes and quotas move between Apache ZooKeeper 3.8 and zkd on one
dataDir: zkd reads Apache's CreateContainerTxn, CreateTTLTxn and deleteContainer txns (log
replay) and snapshot, keeps each node's kind, recounts the quota, and reaps what is due; then
Apache reads what zkd wrote the same way. Runs both servers, whatever ZK_TARGET says."""

import time

import pytest

import harness
from persist import DataServer, have_apache
from zkwire import ERR_NO_NODE, ERR_OK, RawClient

_why = have_apache()
if _why:
    pytest.skip(_why, allow_module_level=True)

CFG = {"extendedTypesEnabled": "true", "znode.container.checkIntervalMs": 200}
pytestmark = pytest.mark.timeout(150)


def gone_within(c, path, seconds):
    return c.gone_within(path, seconds)


def stats(c, path):
    err, data, _ = c.get_data("/zookeeper/quota%s/zookeeper_stats" % path)
    assert err == ERR_OK
    return data


def write(c, tag):
    """A container with a child, a TTL node with a child, a reaped container, a quota."""
    base = "/" + tag
    assert c.create(base, b"b")[0] == ERR_OK
    assert c.create("/zookeeper/quota" + base, None)[0] == ERR_OK
    assert c.create("/zookeeper/quota%s/zookeeper_limits" % base, b"count=-1,bytes=-1")[0] == 0
    assert c.create("/zookeeper/quota%s/zookeeper_stats" % base, b"count=0,bytes=0")[0] == 0
    assert c.create_container(base + "/c", b"cc")[0] == ERR_OK
    assert c.create(base + "/c/k", b"k")[0] == ERR_OK
    assert c.create_ttl(base + "/t", 1000, b"ttt")[0] == ERR_OK
    assert c.create(base + "/t/k", b"")[0] == ERR_OK
    assert c.create_container(base + "/gone")[0] == ERR_OK
    assert c.create(base + "/gone/k")[0] == ERR_OK
    assert c.delete(base + "/gone/k") == ERR_OK
    assert gone_within(c, base + "/gone", 5)  # a deleteContainer txn in the log
    assert stats(c, base) == b"count=5,bytes=7"


def check_and_reap(c, tag):
    base = "/" + tag
    assert stats(c, base) == b"count=5,bytes=7"
    for kid in ("/c", "/t"):
        err, st = c.exists(base + kid)
        assert err == ERR_OK and st["ephemeralOwner"] == 0
    assert c.exists(base + "/gone")[0] == ERR_NO_NODE
    assert c.delete(base + "/c/k") == ERR_OK
    assert c.delete(base + "/t/k") == ERR_OK
    assert gone_within(c, base + "/c", 5) and gone_within(c, base + "/t", 5)
    assert stats(c, base) == b"count=1,bytes=1"


def run(srv, fn, *args):
    srv.start()
    try:
        c = RawClient(srv.port)
        fn(c, *args)
        c.close()
    finally:
        srv.stop()


def test_kinds_and_quotas_cross_both_ways(tmp_path):
    zkd = DataServer(tmp_path, kind="zkd", extra_cfg=CFG)
    apache = DataServer(tmp_path, kind="apache", extra_cfg=CFG)
    zkd.pinned_port = apache.pinned_port = harness.free_port()
    run(apache, write, "fromapache")
    run(zkd, check_and_reap, "fromapache")
    run(zkd, write, "fromzkd")
    run(apache, check_and_reap, "fromzkd")
    assert zkd.health_problems() is None
