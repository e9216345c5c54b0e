"""zkd's election machine and peer wire codecs against real Apache ZooKeeper 3.8 servers.

A 3-server ensemble on loopback: servers 2 and 3 are Apache ZooKeeper (QuorumPeerMain),
server 1 is this test, speaking the election protocol with zkd's own code (zab/fle.c and
net/peerwire.c, loaded through tests/integration/fle_shim.c with ctypes). Proves: our decoder
reads Apache's initial messages and notifications; Apache reads ours (its log shows our
notifications); our machine decides what Apache decides, both when all start together and
when we join an ensemble that already has a leader (the out-of-election path), as a
participant or as an observer. Skipped when
the Apache jar, java or a C compiler is missing. Runs whatever ZK_TARGET says (zkd is not
started: the election is not wired into it yet).
"""

import ctypes
import os
import selectors
import shutil
import socket
import struct
import subprocess
import time

import pytest

from harness import HOST, REPO, free_port, server_mode

JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-simple.jar"]
LOOKING, FOLLOWING, LEADING, OBSERVING = 0, 1, 2, 3
ME = 1

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(j) for j in JARS) or not shutil.which("java") or not shutil.which("cc"),
    reason="needs Apache ZooKeeper's jars, java and cc")


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    out = tmp_path_factory.mktemp("shim") / "fle_shim.so"
    srcs = ["tests/integration/fle_shim.c", "net/peerwire.c", "net/jute.c", "net/zbuf.c",
            "net/log.c", "zab/fle.c"]
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-fPIC", "-shared", "-I.",
                    "-o", str(out)] + srcs, cwd=REPO, check=True)
    lib = ctypes.CDLL(str(out))
    i64, p = ctypes.c_int64, ctypes.c_char_p
    lib.shim_new.restype = ctypes.c_void_p
    lib.shim_new.argtypes = [i64, ctypes.c_int, ctypes.POINTER(i64), ctypes.POINTER(ctypes.c_int)]
    lib.shim_start.argtypes = [ctypes.c_void_p, i64, i64, p, ctypes.c_int]
    lib.shim_note.argtypes = [ctypes.c_void_p, i64, p, ctypes.c_int, p, ctypes.c_int]
    lib.shim_timer.argtypes = [ctypes.c_void_p, ctypes.c_uint64, p, ctypes.c_int]
    lib.shim_encode_note.argtypes = [ctypes.c_int, i64, i64, i64, i64, p, ctypes.c_int, p,
                                     ctypes.c_int]
    lib.shim_encode_initial.argtypes = [i64, p, p, ctypes.c_int]
    lib.shim_decode_note.argtypes = [p, ctypes.c_int, ctypes.POINTER(i64)]
    lib.shim_decode_initial.argtypes = [p, ctypes.c_int, ctypes.POINTER(i64)]
    return lib


class Ensemble:
    """Config for servers 1..3 on free loopback ports; 2 and 3 run Apache ZooKeeper."""

    def __init__(self, workdir, observer=False):
        self.workdir = workdir
        self.observer = observer  # server 1 (ours) is an observer
        self.ports = {sid: (free_port(), free_port(), free_port()) for sid in (1, 2, 3)}
        self.procs = {}

    def server_lines(self):
        return "".join("server.%d=%s:%d:%d%s;%s:%d\n"
                       % (sid, HOST, q, e, ":observer" if sid == ME and self.observer else "",
                          HOST, c)
                       for sid, (q, e, c) in sorted(self.ports.items()))

    def start_apache(self, sid):
        d = self.workdir / ("s%d" % sid)
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "data" / "myid").write_text("%d\n" % sid)
        cfg = d / "zoo.cfg"
        cfg.write_text("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n"
                       "admin.enableServer=false\n4lw.commands.whitelist=*\n%s"
                       % (d / "data", self.server_lines()))
        log = open(d / "log", "ab")
        self.procs[sid] = subprocess.Popen(
            ["java", "-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
             "-cp", ":".join(JARS), "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def config_text(self):
        """QuorumMaj.toString, the text every notification carries: the servers, then the
        config version in hex."""
        return ("".join("server.%d=%s:%d:%d:%s;%s:%d\n"
                        % (sid, HOST, q, e, "observer" if sid == ME and self.observer
                           else "participant", HOST, c)
                        for sid, (q, e, c) in sorted(self.ports.items()))
                + "version=0").encode()

    def log(self, sid):
        return (self.workdir / ("s%d" % sid) / "log").read_text(errors="replace")

    def mode(self, sid):
        return server_mode(self.ports[sid][2])

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def ensemble(tmp_path):
    e = Ensemble(tmp_path)
    yield e
    e.stop()


class Peer:
    """Server 1: a listening election port and zkd's FLE machine, driven the way net/ will
    drive it. Apache's servers have the higher sids, so they dial us (QuorumCnxManager keeps
    the connection the higher sid opened) and we only accept."""

    def __init__(self, lib, ens):
        self.lib, self.ens = lib, ens
        sids = (ctypes.c_int64 * 3)(1, 2, 3)
        voters = (ctypes.c_int * 3)(0 if ens.observer else 1, 1, 1)
        self.h = lib.shim_new(ME, 3, sids, voters)
        assert self.h
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, ens.ports[ME][1]))
        self.lsock.listen(8)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.conns = {}       # sid -> socket
        self.pending = {}     # sid -> latest frame we could not send yet (SEND_CAPACITY 1)
        self.timer = None     # (deadline, gen)
        self.decided = None
        self.initials = []    # decoded initial messages from Apache
        self.notes = []       # decoded notifications from Apache
        self.bad = []
        self.config = ens.config_text()  # what our notifications carry
        self.apache_config = None          # what Apache's carry
        self.dialled = {}     # sid -> when we last dialled it

    def _buf(self):
        return ctypes.create_string_buffer(8192)

    def _run(self, rc, out):
        assert rc >= 0, "shim returned %d" % rc
        for line in out.value.decode().splitlines():
            w = line.split()
            if w[0] == "send":
                state, leader, zxid, ee, pe = (int(x) for x in w[3:8])
                frame = self._encode(state, leader, zxid, ee, pe)
                targets = [2, 3] if w[1] == "voters" else [int(w[2])]
                for sid in targets:
                    self._send(sid, frame)
            elif w[0] == "arm":
                self.timer = (time.monotonic() + int(w[1]) / 1000.0, int(w[2]))
            elif w[0] == "cancel":
                self.timer = None
            elif w[0] == "decided":
                self.decided = tuple(int(x) for x in w[1:])

    def _encode(self, state, leader, zxid, ee, pe):
        cfg = self.config
        out = ctypes.create_string_buffer(4096)
        n = self.lib.shim_encode_note(state, leader, zxid, ee, pe, cfg, len(cfg), out, 4096)
        assert n > 0
        return out.raw[:n]

    def _send(self, sid, frame):
        s = self.conns.get(sid)
        if s is None:
            self.pending[sid] = frame
            return
        try:
            s.sendall(frame)
        except OSError:
            self._drop(sid)
            self.pending[sid] = frame

    def _drop(self, sid):
        s = self.conns.pop(sid, None)
        if s:
            self.sel.unregister(s)
            s.close()

    def start(self, zxid=0, epoch=0):
        out = self._buf()
        self._run(self.lib.shim_start(self.h, zxid, epoch, out, 8192), out)

    def _accept(self):
        s, _ = self.lsock.accept()
        s.setblocking(True)
        s.settimeout(5.0)
        head = b""
        f = (ctypes.c_int64 * 4)()
        while True:  # the initial message, read as a stream
            rc = self.lib.shim_decode_initial(head, len(head), f)
            if rc != -11:  # -EAGAIN
                break
            more = s.recv(4096)
            if not more:
                s.close()
                return
            head += more
        assert rc == 0, "our decoder refused Apache's initial message %r" % head
        sid = f[1]
        self.initials.append((f[0], sid, f[2], head[20:f[3]].decode()))
        s.setblocking(False)
        self._drop(sid)
        self.conns[sid] = s
        self.sel.register(s, selectors.EVENT_READ, [sid, head[f[3]:]])

    def _read(self, key):
        sid, buf = key.data
        try:
            more = key.fileobj.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            more = b""
        if not more:
            if self.conns.get(sid) is key.fileobj:
                self._drop(sid)
            else:
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
            return
        buf += more
        while len(buf) >= 4:
            n = struct.unpack(">i", buf[:4])[0]
            assert 0 < n <= 512 * 1024
            if len(buf) < 4 + n:
                break
            self._note(sid, buf[4:4 + n])
            buf = buf[4 + n:]
        key.data[1] = buf

    def _note(self, sid, payload):
        f = (ctypes.c_int64 * 8)()
        if self.lib.shim_decode_note(payload, len(payload), f) != 0:
            self.bad.append(payload)
            return
        self.notes.append((sid,) + tuple(f))
        if f[5] > 1 and f[7] > 0:
            self.apache_config = payload[44:44 + f[7]]
        out = self._buf()
        self._run(self.lib.shim_note(self.h, sid, payload, len(payload), out, 8192), out)

    def _dial(self, sid):
        """connectOne: our initial message (zkd's encoder) to a higher sid, which closes this
        connection and dials back - if it could read what we sent."""
        self.dialled[sid] = time.monotonic()
        out = ctypes.create_string_buffer(256)
        n = self.lib.shim_encode_initial(ME, ("%s:%d" % (HOST, self.ens.ports[ME][1])).encode(),
                                         out, 256)
        assert n > 0
        try:
            with socket.create_connection((HOST, self.ens.ports[sid][1]), timeout=1.0) as s:
                s.sendall(out.raw[:n])
        except OSError:
            pass

    def poll(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for sid in list(self.pending):
                if sid in self.conns:
                    self._send(sid, self.pending.pop(sid))
                elif sid not in self.conns and time.monotonic() - self.dialled.get(sid, 0) > 1.0:
                    self._dial(sid)
            wait = end - time.monotonic()
            if self.timer:
                wait = min(wait, self.timer[0] - time.monotonic())
            for key, _ in self.sel.select(max(0.0, min(wait, 0.05))):
                if key.fileobj.fileno() < 0:
                    continue  # closed by an earlier event of this batch
                if key.data is None:
                    self._accept()
                else:
                    self._read(key)
            if self.timer and time.monotonic() >= self.timer[0]:
                gen = self.timer[1]
                self.timer = None
                out = self._buf()
                self._run(self.lib.shim_timer(self.h, gen, out, 8192), out)

    def close(self):
        for sid in list(self.conns):
            self._drop(sid)
        self.sel.close()
        self.lsock.close()


def wait_ensemble(ens, peer, timeout):
    """Poll the peer until one Apache server leads and the other follows; the leader's sid."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        peer.poll(0.3)
        modes = {sid: ens.mode(sid) for sid in (2, 3)}
        if sorted(modes.values(), key=str) == ["follower", "leader"]:
            return next(sid for sid, m in modes.items() if m == "leader")
    raise AssertionError("Apache did not form an ensemble:\n%s\n%s"
                         % (ens.log(2)[-2000:], ens.log(3)[-2000:]))


def check_wire(peer, ens):
    assert not peer.bad, "our decoder refused Apache notifications: %r" % peer.bad[:3]
    assert peer.notes, "Apache sent no notification"
    for sid, state, leader, zxid, ee, pe, version, form, cfglen in peer.notes:
        assert sid in (2, 3) and form == 44 and version == 2 and cfglen > 0
        assert state in (LOOKING, FOLLOWING, LEADING) and leader in (1, 2, 3)
        assert not (ens.observer and leader == ME and state != LOOKING)
    assert peer.initials, "Apache never connected to our election port"
    for version, sid, naddr, addr in peer.initials:
        assert version in (-65536, -65535) and sid in (2, 3) and naddr == 1
        assert addr == "%s:%d" % (HOST, ens.ports[sid][1])
    # The config text we send is the one Apache sends, byte for byte.
    assert peer.apache_config == peer.config, (peer.apache_config, peer.config)
    # Apache logs every notification it reads from a voter (printNotification); an
    # observer's are answered at once, unlogged - its decision shows they were read.
    if not ens.observer:
        assert any("n.sid:1," in ens.log(s) for s in (2, 3)), "Apache logged none of ours"


def test_all_start_together_and_agree(shim, ensemble):
    peer = Peer(shim, ensemble)
    try:
        peer.start()
        ensemble.start_apache(2)
        ensemble.start_apache(3)
        # Whoever wins depends on when each JVM is up (1 and 2 are a quorum already), but
        # our machine must follow the leader Apache agreed on.
        leader = wait_ensemble(ensemble, peer, 40)
        peer.poll(0.5)
        assert peer.decided is not None, "our machine did not decide"
        assert peer.decided[:2] == (FOLLOWING, leader), (peer.decided, leader)
        check_wire(peer, ensemble)
    finally:
        peer.close()


@pytest.mark.parametrize("observer", [False, True], ids=["participant", "observer"])
def test_late_server_joins_the_apache_leader(shim, tmp_path, observer):
    ensemble = Ensemble(tmp_path, observer)
    peer = Peer(shim, ensemble)
    try:
        ensemble.start_apache(2)
        ensemble.start_apache(3)
        leader = wait_ensemble(ensemble, peer, 40)
        assert peer.decided is None
        # Close what Apache opened: our votes then need our own dial, so Apache must read
        # our initial message (zkd's encoder) before it dials back.
        for sid in list(peer.conns):
            peer._drop(sid)
        dialled_back = len(peer.initials)
        # A better vote than theirs: an established leader must still win.
        peer.start(zxid=7 << 32 | 5, epoch=7)
        end = time.monotonic() + 20
        while peer.decided is None and time.monotonic() < end:
            peer.poll(0.2)
        assert peer.decided is not None, "our machine did not join: %r" % ((
            peer.notes[-4:], peer.initials, peer.dialled, list(peer.conns), list(peer.pending)),)
        want = OBSERVING if observer else FOLLOWING
        assert peer.decided[:2] == (want, leader), (peer.decided, leader)
        assert ensemble.mode(leader) == "leader"
        assert peer.dialled and len(peer.initials) > dialled_back, "Apache never dialled back"
        check_wire(peer, ensemble)
    finally:
        peer.close()
        ensemble.stop()
