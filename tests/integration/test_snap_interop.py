"""zkd's SNAP stream reader (snap/snap.c) against a real Apache ZooKeeper 3.8 leader.

Servers 2 and 3 are Apache ZooKeeper, started with zookeeper.forceSnapshotSync=true; this test
is server 1, an observer, and speaks to the leader's quorum port with hand-made QuorumPackets
(OBSERVERINFO, ACKEPOCH). The leader answers SNAP and writes its database into the socket
(LearnerHandler: serializeSnapshot, then "BenWasHere"), then NEWLEADER. Proves: zkd's scanner,
fed the bytes as they arrive, finds where Apache's stream ends (NEWLEADER starts exactly
there); zkd's reader builds from it the tree the leader serves - every znode's data and stat
as a client sees them - and the sessions, the client's among them; spooled into a snapshot
file in pieces (snap_spool_*) it gives the same. Skipped without Apache's
jars, java or a C compiler. Runs whatever ZK_TARGET says (zkd is not started).
"""

import ctypes
import socket
import struct
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from harness import HOST, REPO
from test_fle_interop import JARS, Ensemble, pytestmark  # noqa: F401  (the same skip)

SNAP, NEWLEADER, OBSERVERINFO, LEADERINFO, ACKEPOCH = 15, 10, 16, 17, 18
LIB = ["net/*.c", "zab/*.c", "tree/*.c", "wal/*.c", "snap/*.c"]


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    out = tmp_path_factory.mktemp("shim") / "snap_shim.so"
    srcs = sorted(str(p.relative_to(REPO)) for g in LIB for p in REPO.glob(g))
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-fPIC", "-shared", "-I.",
                    "-o", str(out), "tests/integration/snap_shim.c"] + srcs, cwd=REPO, check=True)
    lib = ctypes.CDLL(str(out))
    sz = ctypes.POINTER(ctypes.c_size_t)
    lib.shim_scan.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, sz]
    lib.shim_read.argtypes = [ctypes.c_char_p, ctypes.c_size_t, sz, ctypes.c_char_p, ctypes.c_size_t]
    lib.shim_spool.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_char_p,
                               ctypes.c_char_p, ctypes.c_size_t]
    return lib


def packet(ptype, zxid, data=b""):
    """A QuorumPacket record: type, zxid, data, authinfo (null)."""
    return struct.pack(">iqi", ptype, zxid, len(data)) + data + struct.pack(">i", -1)


def parse_packet(buf):
    """(type, zxid, data, length) of the QuorumPacket at buf[0], or None if not all there."""
    if len(buf) < 16:
        return None
    ptype, zxid, dlen = struct.unpack(">iqi", buf[:16])
    off = 16 + max(dlen, 0)
    if len(buf) < off + 4:
        return None
    data = buf[16:off] if dlen >= 0 else None
    n = struct.unpack(">i", buf[off:off + 4])[0]
    off += 4
    for _ in range(max(n, 0) * 2):  # vector<Id>: scheme, id
        if len(buf) < off + 4:
            return None
        slen = struct.unpack(">i", buf[off:off + 4])[0]
        off += 4 + max(slen, 0)
    if len(buf) < off:
        return None
    return ptype, zxid, data, off


class Learner:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=20)
        self.buf = b""

    def recv(self):
        chunk = self.sock.recv(65536)
        assert chunk, "the leader closed the connection"
        self.buf += chunk

    def read_packet(self):
        while (p := parse_packet(self.buf)) is None:
            self.recv()
        self.buf = self.buf[p[3]:]
        return p[:3]


@pytest.fixture
def apache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-Dzookeeper.forceSnapshotSync=true")
    e = Ensemble(tmp_path, observer=True)
    e.start_apache(2)
    e.start_apache(3)
    deadline = time.time() + 60
    while time.time() < deadline:
        leader = [sid for sid in (2, 3) if e.mode(sid) == "leader"]
        if leader and e.mode(5 - leader[0]) == "follower":
            e.leader = leader[0]
            break
        time.sleep(0.2)
    else:
        e.stop()
        pytest.fail("no Apache leader: %s" % e.log(2)[-2000:])
    yield e
    e.stop()


def fill(zk):
    """Every kind of znode the stream carries: data with NULs and none, ACLs, ephemerals and
    sequentials of a live session, deletes, many versions, a big value."""
    digest = make_digest_acl("bob", "secret", all=True)
    zk.create("/app", b"v0")
    zk.create("/app/cfg", b"c\x00fg\x00", acl=[digest])
    zk.create("/app/null", None)
    zk.create("/app/empty", b"")
    zk.create("/app/big", bytes(range(256)) * 300)
    zk.create("/q", b"")
    for i in range(5):
        zk.create("/q/job-", b"%d" % i, sequence=True, ephemeral=i % 2 == 0)
    zk.delete("/q/" + sorted(zk.get_children("/q"))[1])
    for i in range(4):
        zk.set("/app", b"v%d" % (i + 1))
    zk.create("/eph", b"e", ephemeral=True)
    zk.create("/tmp/a/b/c", b"deep", makepath=True)
    zk.delete("/tmp/a/b/c")


def walk(zk, path, out):
    data, st = zk.get(path)
    out[path] = (data, st)
    for c in zk.get_children(path):
        walk(zk, (path if path != "/" else "") + "/" + c, out)


def test_zkd_reads_the_snap_stream_of_an_apache_leader(shim, apache, tmp_path):
    e = apache
    zk = KazooClient(hosts="%s:%d" % (HOST, e.ports[e.leader][2]), timeout=10)
    zk.start(timeout=30)
    try:
        fill(zk)
        zk.add_auth("digest", "bob:secret")  # to read /app/cfg back
        zk.sync("/")
        want = {}
        walk(zk, "/", want)
        sid = zk.client_id[0]

        lr = Learner(e.ports[e.leader][0])
        lr.sock.sendall(packet(OBSERVERINFO, 0, struct.pack(">qiq", 1, 0x10000, 0)))
        ptype, newleader_zxid, _ = lr.read_packet()
        assert ptype == LEADERINFO
        lr.sock.sendall(packet(ACKEPOCH, 0, struct.pack(">i", 0)))
        ptype, snap_zxid, _ = lr.read_packet()
        assert ptype == SNAP, "forceSnapshotSync makes Apache send SNAP, not %d" % ptype
        assert snap_zxid >= max(st.mzxid for _, st in want.values()) and snap_zxid >> 32 == 1

        # The scanner, fed the bytes as they come, says where the stream ends.
        end = ctypes.c_size_t(0)
        reset, pieces = 1, 0
        while True:
            rc = shim.shim_scan(lr.buf, len(lr.buf), reset, ctypes.byref(end))
            reset = 0
            if rc == 0:
                break
            assert rc == -11, "scan: %d" % rc  # -EAGAIN
            lr.recv()
            pieces += 1
        stream = lr.buf[:end.value]
        assert stream.endswith(b"\x00\x00\x00\x0aBenWasHere")
        lr.buf = lr.buf[end.value:]
        ptype, zxid, _ = lr.read_packet()
        assert ptype == NEWLEADER and zxid == newleader_zxid, "NEWLEADER right after the stream"
        lr.sock.close()

        used = ctypes.c_size_t(0)
        cap = 4 << 20
        out = ctypes.create_string_buffer(cap)
        rc = shim.shim_read(stream, len(stream), ctypes.byref(used), out, cap)
        text = out.value.decode()
        assert rc == 0, text
        assert used.value == len(stream)
        # Spooled into a snapshot file in 1000-byte pieces instead: the same tree.
        spool = ctypes.create_string_buffer(cap)
        rc = shim.shim_spool(stream, len(stream), 1000, str(tmp_path).encode(), spool, cap)
        assert rc == 0, spool.value.decode()
        assert spool.value.decode() == text
        assert (tmp_path / "snapshot.1").exists()
    finally:
        zk.stop()
        zk.close()

    sessions = {int(ln.split()[1], 16) for ln in text.splitlines() if ln.startswith("session ")}
    assert sid in sessions, "the client's session is in the stream"
    got = {}
    for ln in text.splitlines():
        if ln.startswith("node "):
            path, data, cz, mz, pz, ver, cver, aver, owner, kids = ln.split(" ")[1:]
            got[path] = (None if data == "-" else bytes.fromhex(data), int(cz, 16), int(mz, 16),
                         int(pz, 16), int(ver), int(cver), int(aver), int(owner, 16), int(kids))
    assert set(got) == set(want), set(got) ^ set(want)
    for path, (data, st) in want.items():
        g = got[path]
        assert g[0] == data or (data is None and g[0] is None), path
        assert (g[1], g[2], g[3]) == (st.czxid, st.mzxid, st.pzxid), path
        assert (g[4], g[6], g[7], g[8]) == (st.version, st.aversion, st.ephemeralOwner,
                                            st.numChildren), path
        assert 2 * g[5] - g[8] == st.cversion, "%s: Apache shows cversion 2 * stored - children" % path
    assert got["/eph"][7] == sid
    assert pieces >= 1, "the stream came in more than one read"
    print("SNAP 0x%x: %d bytes in %d reads, %d znodes, %d sessions"
          % (snap_zxid, len(stream), pieces + 1, len(got), len(sessions)))
