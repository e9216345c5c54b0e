"""Proves zkd recovers from damaged files in a stopped server's dataDir the way it promises: a corrupt newest snapshot falls back to an older one plus the logs (WARN) and a corrupt only snapshot stops startup naming file and offset; a corrupt record followed by valid ones stops startup naming the log and offset; a torn or zero-filled tail of the newest log is cut off (WARN) and every write acknowledged before the last survives — always exiting with a status, never hanging or dying by a signal."""

import hashlib
import re
import shutil

import pytest

kazoo_client = pytest.importorskip("kazoo.client")

import harness  # noqa: E402
import zkwire  # noqa: E402
from persist import DataServer, diff_dumps, dump_tree, read_log, xor_byte  # noqa: E402

if harness.target() != "zkd":
    pytest.skip("zkd's recovery rules and messages (ZK_TARGET=apache)", allow_module_level=True)

CFG = {"snapCount": 100000, "preAllocSize": 64}
RUN1_NODES = 10
RUN2_NODES = 30


def data1(i):
    return b"run1-%d-" % i + bytes(range(i * 20))


def data2(i):
    return b"run2-%02d-" % i + bytes((i * 7 + k) & 0xFF for k in range(40 + i))


def kazoo(srv):
    zk = kazoo_client.KazooClient(hosts=srv.hosts, timeout=10.0)
    zk.start(timeout=15)
    return zk


def dump_of(srv):
    zk = kazoo(srv)
    try:
        return dump_tree(zk)
    finally:
        zk.stop()
        zk.close()


def hashes(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.glob("version-2/*")) if p.is_file()}


class Golden:
    """A stopped zkd's dataDir: snapshot.0, log.1 (run 1), snapshot.N taken at the second start,
    and log.N+1 (run 2: one session, /c2 and 30 creates, each acknowledged, then SIGKILL)."""


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    g = Golden()
    srv = DataServer(tmp_path_factory.mktemp("golden"), kind="zkd", extra_cfg=CFG)
    g.srv = srv
    globals()["_zk_server"] = srv
    srv.start()
    zk = kazoo(srv)
    zk.create("/c1")
    for i in range(RUN1_NODES):
        zk.create("/c1/n%02d" % i, data1(i))
    zk.set("/c1/n03", b"changed")
    zk.delete("/c1/n09")
    zk.stop()
    zk.close()
    assert srv.stop() == 0
    srv.start()                        # recovers, then snapshots at the last zxid
    # The snapshot is written by a child process; wait for it (slow on a loaded machine) so
    # the SIGKILL below cannot come first.
    harness.wait_for(lambda: len(srv.snapshots()) == 2, 30, what="the snapshot after recovery")
    raw = zkwire.RawClient(srv.port)
    try:
        assert raw.create("/c2")[0] == 0
        for i in range(RUN2_NODES):
            err, _ = raw.create("/c2/n%02d" % i, data2(i))
            assert err == 0
    finally:
        srv.kill()                     # no closeSession: the last record is the last create
        raw.close()
    snaps, logs = srv.snapshots(), srv.logs()
    assert [p.name for p in snaps][:1] == ["snapshot.0"] and len(snaps) == 2, snaps
    assert len(logs) == 2, logs
    g.snap_old, g.snap_new = snaps
    g.log_old, g.log_new = logs
    g.records_new = read_log(g.log_new)
    assert g.records_new[-1].path == "/c2/n%02d" % (RUN2_NODES - 1), g.records_new[-1]
    assert len(g.records_new) == RUN2_NODES + 2           # createSession, /c2, creates
    g.records_old = read_log(g.log_old)
    # The reference: what an undamaged copy serves.
    ref = DataServer(tmp_path_factory.mktemp("reference"), kind="zkd", extra_cfg=CFG)
    shutil.copytree(srv.data_dir, ref.data_dir)
    ref.start()
    try:
        g.reference = dump_of(ref)
    finally:
        ref.stop()
    assert g.reference["/c1/n03"][0] == b"changed"
    for i in range(RUN2_NODES):
        assert g.reference["/c2/n%02d" % i][0] == data2(i)
    return g


def copy_of(golden, tmp_path, drop=()):
    srv = DataServer(tmp_path / "srv", kind="zkd", extra_cfg=CFG)
    shutil.copytree(golden.srv.data_dir, srv.data_dir)
    for name in drop:
        (srv.version_dir / name).unlink()
    globals()["_zk_server"] = srv
    return srv


def expect_refusal(srv, file_name):
    """Start must fail with status 1 (no signal, no hang) and name the file and an offset."""
    before = hashes(srv.data_dir)
    with pytest.raises(RuntimeError):
        srv.start()
    log = srv.log_since()
    assert srv.last_status == 1, "status %r (negative: killed by a signal)\n%s" % (srv.last_status, log)
    m = re.search(r"zkd: cannot recover the database: (.*)", log)
    assert m, "no 'zkd: cannot recover the database:' line:\n%s" % log
    why = m.group(1)
    assert file_name in why, "the error does not name %s: %s" % (file_name, why)
    off = re.search(r"offset (\d+)", why)
    assert off, "the error names no offset: %s" % why
    assert hashes(srv.data_dir) == before, "a refused start changed the dataDir"
    return int(off.group(1))


def warn_lines(log):
    """WARN lines about the files of the dataDir (zkd also WARNs when it starts serving)."""
    return [ln for ln in log.splitlines() if " WARN " in ln and "version-2" in ln]


def snapshot_offset(path, where):
    size = path.stat().st_size
    return {"magic": 0, "middle": size // 2, "last byte": size - 1}[where]


@pytest.mark.parametrize("where", ["middle", "last byte"])
def test_corrupt_newest_snapshot_falls_back_to_older(golden, tmp_path, where):
    srv = copy_of(golden, tmp_path)
    xor_byte(srv.version_dir / golden.snap_new.name, snapshot_offset(golden.snap_new, where))
    srv.start()
    try:
        warns = warn_lines(srv.log_since())
        assert any(golden.snap_new.name in w for w in warns), \
            "no WARN naming %s:\n%s" % (golden.snap_new.name, srv.log_since())
        diff = diff_dumps(golden.reference, dump_of(srv), "reference", "recovered")
        assert not diff, "\n".join(diff)
    finally:
        status = srv.stop()
    assert status == 0, srv.log_since()


@pytest.mark.parametrize("where", ["magic", "middle", "last byte"])
def test_corrupt_only_snapshot_refuses_to_start(golden, tmp_path, where):
    # snapshot.N covers log.1, so without the older pair the dataDir is complete and valid.
    assert all(r.zxid <= int(golden.snap_new.name.split(".")[1], 16) for r in golden.records_old)
    srv = copy_of(golden, tmp_path, drop=(golden.snap_old.name, golden.log_old.name))
    xor_byte(srv.version_dir / golden.snap_new.name, snapshot_offset(golden.snap_new, where))
    off = expect_refusal(srv, golden.snap_new.name)
    assert off < golden.snap_new.stat().st_size


def test_undamaged_copy_without_older_files_starts(golden, tmp_path):
    """Control for the test above: the same dataDir without the flip is served in full."""
    srv = copy_of(golden, tmp_path, drop=(golden.snap_old.name, golden.log_old.name))
    srv.start()
    try:
        diff = diff_dumps(golden.reference, dump_of(srv), "reference", "recovered")
        assert not diff, "\n".join(diff)
        assert not warn_lines(srv.log_since()), srv.log_since()
    finally:
        assert srv.stop() == 0


def record_offset(rec, field):
    return rec.off + {"checksum": 4, "length": 11, "entry": 12 + rec.length // 2,
                      "end marker": rec.size - 1}[field]


@pytest.mark.parametrize("field", ["checksum", "length", "entry", "end marker"])
def test_corrupt_record_in_newest_log_refuses_to_start(golden, tmp_path, field):
    rec = golden.records_new[len(golden.records_new) // 2]
    srv = copy_of(golden, tmp_path)
    xor_byte(srv.version_dir / golden.log_new.name, record_offset(rec, field))
    off = expect_refusal(srv, golden.log_new.name)
    assert rec.off <= off < rec.off + rec.size, \
        "offset %d is not in the damaged record [%d, %d)" % (off, rec.off, rec.off + rec.size)


def test_corrupt_record_in_older_log_refuses_to_start(golden, tmp_path):
    # Without snapshot.N, recovery needs log.1 (snapshot.0 + log.1 + log.N+1).
    rec = golden.records_old[len(golden.records_old) // 2]
    srv = copy_of(golden, tmp_path, drop=(golden.snap_new.name,))
    xor_byte(srv.version_dir / golden.log_old.name, record_offset(rec, "entry"))
    off = expect_refusal(srv, golden.log_old.name)
    assert rec.off <= off < rec.off + rec.size, \
        "offset %d is not in the damaged record [%d, %d)" % (off, rec.off, rec.off + rec.size)


TAIL_CASES = [
    # (how, where in the last record the damage starts, a torn-tail WARN is expected)
    ("truncate", "checksum", True),
    ("truncate", "length", True),
    ("truncate", "entry", True),
    ("truncate", "end marker", True),
    ("zero-fill", "entry", True),
    ("zero-fill", "end marker", True),
    ("zero-fill", "length", False),   # a zero length is the end of the log, as in ZooKeeper
]


def damage_tail(path, rec, how, where):
    # The checksum is a long holding an Adler32: its first 4 bytes are always zero, so a cut
    # inside them looks like preallocated zeros. Cut inside its low half instead.
    start = rec.off + {"checksum": 6, "length": 8, "entry": 12 + rec.length // 2,
                       "end marker": rec.size - 1}[where]
    if how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(start)
    else:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.seek(start)
            f.write(b"\0" * (size - start))


def check_all_but_last(golden, dump):
    lost = "/c2/n%02d" % (RUN2_NODES - 1)
    assert lost not in dump, "%s came back from a torn record" % lost
    missing = [p for p in golden.reference if p != lost and p not in dump]
    assert not missing, "acknowledged writes lost: %s" % missing
    for p, (data, stat) in golden.reference.items():
        if p.startswith("/c1/") or (p.startswith("/c2/") and p != lost):
            assert dump[p] == (data, stat), "%s differs after recovery" % p
    assert dump["/c2"][1][9] == RUN2_NODES - 1   # numChildren


@pytest.mark.parametrize("how,where,warns", TAIL_CASES,
                         ids=["%s-%s" % (h, w.replace(" ", "-")) for h, w, _ in TAIL_CASES])
def test_torn_tail_of_newest_log_is_cut_off(golden, tmp_path, how, where, warns):
    srv = copy_of(golden, tmp_path)
    damage_tail(srv.version_dir / golden.log_new.name, golden.records_new[-1], how, where)
    srv.start()
    try:
        log = srv.log_since()
        if warns:
            assert any(golden.log_new.name in w and "truncat" in w for w in warn_lines(log)), \
                "no WARN about truncating %s:\n%s" % (golden.log_new.name, log)
        zk = kazoo(srv)
        try:
            check_all_but_last(golden, dump_tree(zk))
            zk.create("/after", b"written after the recovery")
        finally:
            zk.stop()
            zk.close()
    finally:
        assert srv.stop() == 0, srv.log_since()
    # A second start finds a clean log: no more WARNs, and the new write is there too.
    srv.start()
    try:
        assert not any("truncat" in w for w in warn_lines(srv.log_since())), srv.log_since()
        zk = kazoo(srv)
        try:
            dump = dump_tree(zk)
            check_all_but_last(golden, dump)
            assert dump["/after"][0] == b"written after the recovery"
        finally:
            zk.stop()
            zk.close()
    finally:
        assert srv.stop() == 0, srv.log_since()
