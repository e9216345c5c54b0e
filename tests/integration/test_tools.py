"""Proves the inspection tools print real logs and snapshots (and fail clearly on a corrupt
one), and that autopurge keeps autopurge.snapRetainCount snapshots plus the logs they need,
with every znode still there after a restart."""

import os
import subprocess
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.skipif(harness.target() != "zkd", reason="zkd's own tools")

SERVER_EXTRA_CFG = {"snapCount": 20}


def zkd_bin():
    return os.environ.get("ZKD_BIN", str(harness.REPO / "zkd"))


def files(server, prefix):
    d = server.workdir / "data" / "version-2"
    return sorted(p for p in d.iterdir() if p.name.startswith(prefix + "."))


def test_dump_log_and_dump_snap(server, zk, base):
    zk.create(base, b"top")
    for i in range(30):
        zk.create("%s/c%d" % (base, i), b"value-%d" % i)
    zk.set(base + "/c7", b"changed")
    zk.delete(base + "/c8")
    logs = files(server, "log")
    out = subprocess.run([zkd_bin(), "dump-log"] + [str(p) for p in logs],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "create '%s/c3' data='value-3'" % base in out.stdout
    assert "setData '%s/c7' data='changed' version=1" % base in out.stdout
    assert "delete '%s/c8'" % base in out.stdout
    assert "createSession timeout=" in out.stdout
    # Snapshots are written by a child process: give a loaded machine time to finish one.
    harness.wait_for(lambda: len(files(server, "snapshot")) >= 2, 30,
                     what="snapCount=20 rolling the log and snapshotting")
    snaps = files(server, "snapshot")
    out = subprocess.run([zkd_bin(), "dump-snap", str(snaps[-1])], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert base + "/c1\n" in out.stdout and "/zookeeper\n" in out.stdout


def test_dump_of_a_corrupt_snapshot_fails_naming_the_offset(server, tmp_path):
    snap = files(server, "snapshot")[-1]
    bad = tmp_path / snap.name
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xff
    bad.write_bytes(bytes(data))
    out = subprocess.run([zkd_bin(), "dump-snap", str(bad)], capture_output=True, timeout=30)
    out.stdout = out.stdout.decode(errors="replace")
    out.stderr = out.stderr.decode(errors="replace")
    assert out.returncode == 1
    assert str(bad) in out.stderr and "offset" in out.stderr


def test_autopurge_keeps_retained_snapshots_and_needed_logs(tmp_path):
    srv = harness.Server(tmp_path / "purge", extra_cfg={"snapCount": 10})
    srv.start()
    try:
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=srv.hosts)
        zk.start(timeout=15)
        # A snapshot is skipped while the previous one is still being written (slow under
        # load), so write until enough exist rather than a fixed count.
        created = 0
        while created < 2000 and (created < 200 or len(files(srv, "snapshot")) <= 5):
            for i in range(created, created + 20):
                zk.create("/p%d" % i, b"%d" % i)
            created += 20
        zk.stop()
        zk.close()
        assert len(files(srv, "snapshot")) > 5
    finally:
        srv.stop()
    srv = harness.Server(tmp_path / "purge", extra_cfg={
        "snapCount": 10, "autopurge.purgeInterval": 1, "autopurge.snapRetainCount": 3})
    srv.start()
    try:
        harness.wait_for(lambda: len(files(srv, "snapshot")) == 3, 10, what="purge to 3 snapshots")
        oldest = int(files(srv, "snapshot")[0].name.split(".")[1], 16)
        starts = [int(p.name.split(".")[1], 16) for p in files(srv, "log")]
        assert starts and min(starts) <= oldest + 1, "a log the oldest snapshot needs was purged"
        assert sum(1 for s in starts if s <= oldest) <= 1, "logs older than needed were kept"
    finally:
        srv.stop()
    srv.start()
    try:
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=srv.hosts)
        zk.start(timeout=15)
        for i in range(created):
            assert zk.get("/p%d" % i)[0] == b"%d" % i
        zk.stop()
        zk.close()
    finally:
        srv.stop()
