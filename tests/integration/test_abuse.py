"""Proves hostile but well-formed load — thousands of idle connections, slow-loris handshakes,
a client that never reads its replies, frame-sized znodes and paths, 100,000 children and
100,000 watches — neither starves a well-behaved kazoo client (run in its own process, its
reads and writes keep succeeding within a bound) nor lets zkd's memory (VmHWM) grow without
bound.  Run with -s to see the figures; ZKD_ABUSE_LONG=1 multiplies the counts by ten."""

import errno
import json
import os
import resource
import select
import selectors
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness
import zkwire
from harness import HOST

pytestmark = pytest.mark.skipif(harness.target() != "zkd",
                                reason="zkd's memory bounds and limits")

LONG = os.environ.get("ZKD_ABUSE_LONG") == "1"
SCALE = 10 if LONG else 1
HERE = Path(__file__).resolve().parent
# Source addresses for spreading connections, so maxClientCnxns (60 per address) is not hit.
SPREAD = ["127.0.0.%d" % i for i in range(2, 251)]
MIB = 1024  # in KiB, the unit of /proc/<pid>/status


def sanitized():
    """True if the server binary is built with AddressSanitizer."""
    p = Path(os.environ.get("ZKD_BIN", str(harness.REPO / "zkd")))
    try:
        return b"__asan_init" in p.read_bytes()
    except OSError:
        return False


SANITIZED = sanitized()


def mem_bound(kib):
    """A memory bound (KiB) meant for the plain build.  Under AddressSanitizer every block
    carries redzones and shadow memory and freed blocks sit in a 256 MiB quarantine, so the
    bound is widened to 10x + 256 MiB: still far below what a per-item leak of the abused
    size (a reply, a frame, a 64 KiB buffer per connection) would cost."""
    return kib * 10 + 256 * MIB if SANITIZED else kib


# ---- helpers ----------------------------------------------------------------------------

def mem_kib(pid):
    """VmHWM and VmRSS of a process, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS"):
                out[k] = int(v.split()[0])
    return out


mntr = harness.mntr


def report(name, **figures):
    print("\n[abuse] %s: %s" % (name, ", ".join("%s=%s" % kv for kv in figures.items())))


@pytest.fixture
def fd_limit():
    """Raise this process's soft RLIMIT_NOFILE to its hard limit for one test (a server started
    meanwhile inherits it); yields the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    yield new
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def fd_limit_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no 'Max open files' in /proc/%d/limits" % pid)


class Healthy:
    """The well-behaved client: abuse_healthy.py in its own process."""

    def __init__(self, server, path):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "abuse_healthy.py"),
                                      server.hosts, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        r, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if r else ""
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError("healthy client did not start: %r" % line)

    def finish(self, name, max_read_ms, max_write_ms, window=None, min_ops=5):
        """Stop the client and assert it was served throughout, within the latency bounds;
        with window=(t0, t1) (time.monotonic) also that some of its rounds overlapped it.
        Returns its figures, with window_rounds and window_max_read_ms added."""
        out, _ = self.proc.communicate("stop\n", timeout=30)
        res = json.loads(out.strip().splitlines()[-1])
        figures = dict(reads=res["reads"], writes=res["writes"],
                       max_read_ms=res["max_read_ms"], p99_read_ms=res["p99_read_ms"],
                       max_write_ms=res["max_write_ms"], p99_write_ms=res["p99_write_ms"])
        if window:
            inside = [r for r in res["rounds"]
                      if r[0] <= window[1] and r[0] + r[1] + r[2] >= window[0]]
            res["window_rounds"] = len(inside)
            res["window_max_read_ms"] = round(1000 * max((r[2] for r in inside), default=0), 1)
            figures.update(abuse_s="%.2f" % (window[1] - window[0]), rounds_during=len(inside),
                           max_read_ms_during=res["window_max_read_ms"])
        report(name + " healthy client", **figures)
        assert res["errors"] == [], "healthy client failed: %r" % res["errors"]
        assert res["states"] == [] and res["same_session"], \
            "healthy session was disturbed: %r" % res["states"]
        assert res["reads"] >= min_ops and res["writes"] >= min_ops, "healthy client starved"
        if window:
            assert res["window_rounds"] >= 1, "no healthy round overlapped the abuse"
        assert res["max_read_ms"] < max_read_ms, "a healthy read took %s ms" % res["max_read_ms"]
        assert res["max_write_ms"] < max_write_ms, \
            "a healthy write took %s ms" % res["max_write_ms"]
        return res

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def connect_spread(port, addrs, payload, want_reply, limit_s=60.0, wave=250):
    """Open one connection per entry of addrs, bound to that source address, and send payload
    on each.  With want_reply, wait for a whole ConnectResponse on each (checked).  Returns
    [(socket, monotonic time its TCP connect completed)]; on failure closes them all."""
    conns = []
    sel = selectors.DefaultSelector()
    try:
        for i in range(0, len(addrs), wave):
            pending = {}
            for a in addrs[i:i + wave]:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                conns.append([s, None])
                s.setblocking(False)
                s.bind((a, 0))
                rc = s.connect_ex((HOST, port))
                assert rc in (0, errno.EINPROGRESS), "connect from %s: %s" % (a, os.strerror(rc))
                pending[s] = [len(conns) - 1, None]  # index, reply bytes (None: connecting)
                sel.register(s, selectors.EVENT_WRITE)
            deadline = time.monotonic() + limit_s
            while pending:
                left = deadline - time.monotonic()
                assert left > 0, "%d of %d connections in wave %d not done in %.0fs" \
                    % (len(pending), len(addrs[i:i + wave]), i // wave, limit_s)
                for key, _ in sel.select(min(left, 1.0)):
                    s = key.fileobj
                    st = pending[s]
                    if st[1] is None:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        assert err == 0, "connect failed: %s" % os.strerror(err)
                        conns[st[0]][1] = time.monotonic()
                        assert s.send(payload) == len(payload)
                        if not want_reply:
                            sel.unregister(s)
                            del pending[s]
                            continue
                        st[1] = b""
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    b = s.recv(4096)
                    assert b, "server closed a connection during its handshake"
                    st[1] += b
                    if len(st[1]) >= 4 and len(st[1]) >= 4 + struct.unpack(">i", st[1][:4])[0]:
                        resp = zkwire.parse_connect_response(st[1][4:])
                        assert resp["session_id"] != 0 and resp["timeout_ms"] > 0, resp
                        sel.unregister(s)
                        del pending[s]
    except BaseException:
        for s, _ in conns:
            s.close()
        raise
    finally:
        sel.close()
    return [tuple(c) for c in conns]


def closed_times(socks, timeout):
    """Wait up to timeout seconds; return {socket: monotonic time it saw EOF or a reset}."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    done = {}
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(socks):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(min(left, 0.5)):
                s = key.fileobj
                try:
                    b = s.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    b = b""
                if not b:
                    done[s] = time.monotonic()
                    sel.unregister(s)
    finally:
        sel.close()
    return done


def hdr(xid, op):
    return struct.pack(">ii", xid, op)


def pipeline(client, frames, window=1000, timeout=60.0):
    """Send frames (xids 1..n in order) over a handshaken RawClient keeping at most `window`
    unanswered; read the replies as they come.  Returns the error codes in reply order.
    The window keeps the server's pending output under its 256 KiB throttle, so the replies
    read here are never what holds the pipeline back."""
    sock = client.sock
    sock.settimeout(timeout)
    buf = bytearray()
    errs = []
    sent = 0
    n = len(frames)
    while len(errs) < n:
        if sent < n and sent - len(errs) < window:
            k = min(n, len(errs) + window)
            sock.sendall(b"".join(frames[sent:k]))
            sent = k
        b = sock.recv(1 << 20)
        if not b:
            raise EOFError("server closed the pipelining connection after %d replies" % len(errs))
        buf += b
        pos = 0
        while len(buf) - pos >= 4:
            (ln,) = struct.unpack_from(">i", buf, pos)
            if len(buf) - pos - 4 < ln:
                break
            xid, _, err = struct.unpack_from(">iqi", buf, pos + 4)
            pos += 4 + ln
            if xid in (zkwire.XID_NOTIFICATION, zkwire.XID_PING):
                continue
            assert xid == len(errs) + 1, "reply xid %d, expected %d" % (xid, len(errs) + 1)
            errs.append(err)
        del buf[:pos]
    return errs


def count_errs(errs):
    out = {}
    for e in errs:
        out[e] = out.get(e, 0) + 1
    return out


# ---- fixtures ---------------------------------------------------------------------------

@pytest.fixture
def start_server(request, tmp_path):
    """start(tick_time=2000, cfg=None) -> a started harness.Server, stopped and checked for
    sanitizer reports and an unclean exit at teardown."""
    started = []

    def start(tick_time=2000, cfg=None):
        srv = harness.Server(tmp_path / ("srv%d" % len(started)), tick_time=tick_time,
                             extra_cfg=cfg)
        request.module._zk_server = srv  # conftest puts its log in a failure report
        started.append(srv)
        srv.start()
        return srv

    yield start
    problems = []
    for srv in started:
        srv.stop()
        p = srv.health_problems()
        if p:
            problems.append(p)
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def healthy_factory():
    made = []

    def make(server, path):
        h = Healthy(server, path)
        made.append(h)
        return h

    yield make
    for h in made:
        h.kill()


@pytest.fixture
def kazoo_on():
    from kazoo.client import KazooClient
    made = []

    def make(server):
        c = KazooClient(hosts=server.hosts, timeout=10.0)
        c.start(timeout=15)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:  # noqa: BLE001
            pass


# ---- 1. many idle connections -----------------------------------------------------------

@pytest.mark.timeout(150)
def test_many_idle_connections(fd_limit, start_server, healthy_factory):
    """Thousands of idle handshaken sessions from many addresses are all kept and cost little
    memory each, maxClientCnxns still refuses the 61st from one address, and a healthy client
    is served meanwhile."""
    hard = fd_limit
    n = min(10_000, hard - 500)
    if n < 1000:
        pytest.skip("hard fd limit %d allows fewer than 1000 connections" % hard)
    srv = start_server(cfg={"maxSessionTimeout": 120_000})  # no idle session expires here
    assert fd_limit_of(srv.proc.pid) >= n + 200, "the server did not inherit the raised fd limit"
    healthy = healthy_factory(srv, "/abuse-idle")
    mem0 = mem_kib(srv.proc.pid)
    req = zkwire.frame(zkwire.connect_request(timeout_ms=120_000))
    addrs = [SPREAD[i % len(SPREAD)] for i in range(n)]
    t0 = time.monotonic()
    conns = connect_spread(srv.port, addrs, req, want_reply=True)
    open_s = time.monotonic() - t0
    socks = [s for s, _ in conns]
    try:
        # maxClientCnxns=60 (default) from one address: 60 are served, the 61st is closed,
        # and another address is still served.
        own = connect_spread(srv.port, ["127.0.0.251"] * 60, req, want_reply=True)
        socks += [s for s, _ in own]
        extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socks.append(extra)
        extra.bind(("127.0.0.251", 0))
        extra.settimeout(5)
        extra.connect((HOST, srv.port))
        try:
            extra.sendall(req)
        except OSError:
            pass  # already closed by the server: also a refusal
        assert zkwire.wait_closed(extra, 5.0), "the 61st connection from one address was kept"
        other = connect_spread(srv.port, ["127.0.0.252"], req, want_reply=True)
        socks += [s for s, _ in other]

        alive = int(mntr(srv)["zk_num_alive_connections"])
        assert alive >= n + 61, "server counts %d connections, expected >= %d" % (alive, n + 61)
        dropped = closed_times(socks[:n], 0.5)
        assert not dropped, "%d idle sessions were closed by the server" % len(dropped)
        mem1 = mem_kib(srv.proc.pid)
        grow_kib = mem1["VmHWM"] - mem0["VmHWM"]
        report("idle connections", connections=n, fd_hard_limit=hard, open_s="%.1f" % open_s,
               alive=alive, hwm_before_kib=mem0["VmHWM"], hwm_after_kib=mem1["VmHWM"],
               per_conn_kib="%.1f" % (grow_kib / n))
        # A handshaken idle connection holds its buffers, session and table entries: a few
        # KiB.  16 KiB each would already be 160 MiB for 10,000.
        assert grow_kib < mem_bound(n * 16 + 16 * MIB), \
            "VmHWM grew %d KiB for %d connections" % (grow_kib, n)
        assert open_s < 60, "opening %d connections took %.0fs" % (n, open_s)
    finally:
        for s in socks:
            s.close()
    healthy.finish("idle connections", max_read_ms=1000, max_write_ms=2000,
                   window=(t0, time.monotonic()))


# ---- 2. slow loris ----------------------------------------------------------------------

def test_slow_loris(fd_limit, start_server, healthy_factory):
    """Connections that send half a ConnectRequest and stop are all dropped once
    nio.sessionlessCnxnTimeout has passed (not before), and a healthy client is not delayed."""
    n = 500 * SCALE
    srv = start_server(cfg={"nio.sessionlessCnxnTimeout": 1000})
    healthy = healthy_factory(srv, "/abuse-loris")
    mem0 = mem_kib(srv.proc.pid)
    alive0 = int(mntr(srv)["zk_num_alive_connections"])
    half = zkwire.frame(zkwire.connect_request())[:24]
    t0 = time.monotonic()
    conns = connect_spread(srv.port, [SPREAD[i % len(SPREAD)] for i in range(n)], half,
                           want_reply=False)
    try:
        alive = int(mntr(srv)["zk_num_alive_connections"])
        assert alive >= alive0 + n * 9 // 10, "server holds %d connections" % alive
        done = closed_times([s for s, _ in conns], 1.0 + 1.0 + 3.0)
        assert len(done) == n, "%d of %d half-handshakes still open after 5 s" \
            % (n - len(done), n)
        after = [done[s] - t for s, t in conns]
        report("slow loris", connections=n, alive_at_peak=alive,
               first_drop_s="%.2f" % min(after), last_drop_s="%.2f" % max(after),
               hwm_growth_kib=mem_kib(srv.proc.pid)["VmHWM"] - mem0["VmHWM"])
        # Dropped after the 1 s timeout, by a housekeeping pass that runs once a second.
        assert min(after) >= 0.8, "a half-handshake was dropped after only %.2fs" % min(after)
        assert max(after) < 3.5, "a half-handshake was kept for %.2fs" % max(after)
        harness.wait_for(lambda: int(mntr(srv)["zk_num_alive_connections"]) == alive0, 5,
                         what="connection count back to %d" % alive0)
        t1 = time.monotonic()
    finally:
        for s, _ in conns:
            s.close()
    grow = mem_kib(srv.proc.pid)["VmHWM"] - mem0["VmHWM"]
    # As for an idle connection, but without a session: well under 16 KiB each.
    assert grow < mem_bound(n * 16 + 16 * MIB), \
        "VmHWM grew %d KiB for %d half-handshakes" % (grow, n)
    healthy.finish("slow loris", max_read_ms=500, max_write_ms=1000, window=(t0, t1))


# ---- 3. a client that never reads -------------------------------------------------------

def test_client_that_never_reads(start_server, healthy_factory, kazoo_on):
    """A session pipelining 200 getData of a ~1 MiB node without reading costs the server a
    few MiB at most (throttled at 256 KiB of pending output, then its session expires and it
    is dropped), while a healthy client is served."""
    srv = start_server(tick_time=200)  # sessions of 400..4000 ms
    healthy = healthy_factory(srv, "/abuse-hog-healthy")
    zk = kazoo_on(srv)
    big = os.urandom(1_000_000)
    zk.create("/abuse-hog", big)
    assert zk.get("/abuse-hog")[0] == big  # the server has built one such reply already
    alive0 = int(mntr(srv)["zk_num_alive_connections"])
    mem0 = mem_kib(srv.proc.pid)

    hog = zkwire.RawClient(srv.port, timeout_ms=2000)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        frames = b"".join(zkwire.frame(hdr(i + 1, zkwire.OP_GET_DATA) + zkwire.p_str("/abuse-hog")
                                       + zkwire.p_bool(False)) for i in range(200 * SCALE))
        t0 = time.monotonic()
        hog.sock.sendall(frames)  # ~6 KB: fits the socket buffers even if never taken
        sid = "sid=0x%x," % hog.session_id

        def taken():
            line = [x for x in srv.four_letter("cons").splitlines() if sid in x]
            return int(line[0].split("recved=")[1].split(",")[0]) if line else None
        # The server takes a request, and a few more as the kernel's socket buffers absorb
        # replies, then stops reading this connection until its session expires.
        takens = []
        for _ in range(5):
            t = time.monotonic()
            assert zk.get("/abuse-hog")[0] == big
            assert time.monotonic() - t < 2.0
        while time.monotonic() - t0 < 15:
            v = taken()
            if v is None:
                break
            takens.append(v)
            time.sleep(0.05)
        t1 = time.monotonic()
        drop_s = t1 - t0
        later = max(takens, default=None)
        assert takens, "the non-reading session never showed in cons"
        assert 2 <= later < 20, "the non-reading session had %s requests taken" % later
        assert taken() is None, "the non-reading connection was kept %.0fs" % drop_s
        harness.wait_for(lambda: int(mntr(srv)["zk_num_alive_connections"]) == alive0, 5,
                         what="the connection count back to %d" % alive0)
        assert ("0x%x" % hog.session_id) not in srv.four_letter("dump"), "hog session not expired"
    finally:
        hog.close()
    mem1 = mem_kib(srv.proc.pid)
    grow = mem1["VmHWM"] - mem0["VmHWM"]
    report("never-reading client", requests=200 * SCALE, taken=later, reply_kib=len(big) // 1024,
           dropped_after_s="%.1f" % drop_s, hwm_before_kib=mem0["VmHWM"],
           hwm_after_kib=mem1["VmHWM"], rss_after_kib=mem1["VmRSS"])
    # Unthrottled, 200 replies would be ~200 MiB; the hard output bound alone allows 8 MiB.
    assert grow < mem_bound(8 * MIB), "VmHWM grew %d KiB for one non-reading client" % grow
    healthy.finish("never-reading client", max_read_ms=1000, max_write_ms=1000,
                   window=(t0, t1))


# ---- 4. frame-sized znodes and long paths -----------------------------------------------

MAX_FRAME = 1048575  # jute.maxbuffer default


def create_frame(xid, path, data):
    return (hdr(xid, zkwire.OP_CREATE) + zkwire.p_str(path) + zkwire.p_buf(data)
            + zkwire.p_acl(zkwire.OPEN_ACL_UNSAFE) + zkwire.p_int(0))


def test_frame_sized_nodes_and_paths(start_server, healthy_factory, kazoo_on):
    """The largest setData and create that fit in one frame work and read back, one byte more
    closes only that connection, a path of ~1,000,000 bytes and a 4 KiB path component are
    handled cleanly, and 50 nodes of ~1 MiB keep RSS under 200 MiB."""
    srv = start_server()
    healthy = healthy_factory(srv, "/abuse-big-healthy")
    zk = kazoo_on(srv)
    mem0 = mem_kib(srv.proc.pid)
    t0 = time.monotonic()
    path = "/abuse-big"
    raw = zkwire.RawClient(srv.port)
    try:
        assert raw.create(path, b"")[0] == zkwire.ERR_OK
        # setData payload: xid, op, path, data, version = 20 + len(path) + len(data) bytes.
        n_set = MAX_FRAME - 20 - len(path)
        data = os.urandom(n_set)
        assert raw.set_data(path, data)[0] == zkwire.ERR_OK
        err, got, stat = raw.get_data(path)
        assert err == zkwire.ERR_OK and got == data and stat["dataLength"] == n_set
        assert zk.get(path)[0] == data  # a real client reads the reply bigger than a frame
        # One byte more does not fit: that connection is closed, the node is unchanged.
        over = zkwire.frame(hdr(99, zkwire.OP_SET_DATA) + zkwire.p_str(path)
                            + zkwire.p_buf(data + b"!") + zkwire.p_int(-1))
        assert len(over) - 4 == MAX_FRAME + 1
        try:
            raw.sock.sendall(over)
        except OSError:
            pass
        assert zkwire.wait_closed(raw.sock, 5.0), "an over-long frame was not refused"
    finally:
        raw.close()
    assert zk.get(path)[0] == data

    # A path of ~1,000,000 bytes fits in a frame: it works or is refused with an error code,
    # and the connection stays usable either way.
    raw = zkwire.RawClient(srv.port)
    try:
        long_path = "/" + "p" * 999_999
        err, name = raw.create(long_path, b"x")
        if err == zkwire.ERR_OK:
            assert name == long_path
            err2, got, _ = raw.get_data(long_path)
            assert err2 == zkwire.ERR_OK and got == b"x"
            assert raw.delete(long_path) == zkwire.ERR_OK
        assert raw.exists(long_path)[0] == zkwire.ERR_NO_NODE
        assert raw.exists("/")[0] == zkwire.ERR_OK
        long_result = "created" if err == zkwire.ERR_OK else "error %d" % err
        # A path longer than a frame closes the connection.
        too_long = zkwire.frame(create_frame(77, "/" + "q" * MAX_FRAME, b""))
        try:
            raw.sock.sendall(too_long)
        except OSError:
            pass
        assert zkwire.wait_closed(raw.sock, 5.0), "a create longer than a frame was not refused"
    finally:
        raw.close()

    comp = path + "/" + "c" * 4096
    assert zk.create(comp, b"4k") == comp
    assert zk.get(comp)[0] == b"4k" and zk.get_children(path) == ["c" * 4096]
    zk.delete(comp)

    # 50 nodes of the largest data a create frame holds (payload 47 + path + data bytes).
    n_create = MAX_FRAME - 47 - len(path + "/n00")
    paths = ["%s/n%02d" % (path, i) for i in range(50)]
    blobs = [bytes([i]) * n_create for i in range(50)]
    for p, b in zip(paths, blobs):
        zk.create(p, b)
    for p, b in zip(paths, blobs):
        assert zk.get(p)[0] == b
    mem1 = mem_kib(srv.proc.pid)
    for p in paths:
        zk.delete(p)
    zk.delete(path)
    assert zk.exists(path) is None
    mem2 = mem_kib(srv.proc.pid)
    report("frame-sized nodes", set_data_max=n_set, create_data_max=n_create,
           path_1e6=long_result, rss_before_kib=mem0["VmRSS"], rss_with_50_kib=mem1["VmRSS"],
           rss_after_delete_kib=mem2["VmRSS"], hwm_kib=mem2["VmHWM"])
    assert mem2["VmHWM"] < mem_bound(200 * MIB), \
        "VmHWM %d KiB with 50 nodes of 1 MiB" % mem2["VmHWM"]
    healthy.finish("frame-sized nodes", max_read_ms=1000, max_write_ms=2000,
                   window=(t0, time.monotonic()))


# ---- 5. 100,000 children ----------------------------------------------------------------

@pytest.mark.timeout(150 * SCALE)
def test_many_children(start_server, healthy_factory, kazoo_on):
    """100,000 children created by one pipelining session under one node are all listed by
    getChildren, and a healthy client's reads stay under 500 ms during the creation."""
    n = 100_000 * SCALE
    srv = start_server()
    healthy = healthy_factory(srv, "/abuse-kids-healthy")
    zk = kazoo_on(srv)
    zk.create("/abuse-kids")
    mem0 = mem_kib(srv.proc.pid)
    raw = zkwire.RawClient(srv.port, timeout_ms=30_000)
    try:
        frames = [zkwire.frame(create_frame(i + 1, "/abuse-kids/%d" % i, b""))
                  for i in range(n)]
        t0 = time.monotonic()
        errs = pipeline(raw, frames)
        t1 = time.monotonic()
        create_s = t1 - t0
        assert count_errs(errs) == {zkwire.ERR_OK: n}, count_errs(errs)
    finally:
        raw.close()
    res = healthy.finish("many children", max_read_ms=2000, max_write_ms=2000, window=(t0, t1))
    assert res["window_max_read_ms"] < 500, \
        "a healthy read took %s ms during the creation" % res["window_max_read_ms"]
    t0 = time.monotonic()
    kids = zk.get_children("/abuse-kids")
    list_s = time.monotonic() - t0
    assert len(kids) == n and set(kids) == {str(i) for i in range(n)}
    assert zk.exists("/abuse-kids").numChildren == n
    mem1 = mem_kib(srv.proc.pid)
    report("many children", children=n, create_s="%.1f" % create_s,
           creates_per_s=int(n / create_s), get_children_s="%.2f" % list_s,
           max_healthy_read_ms_during=res["window_max_read_ms"], hwm_before_kib=mem0["VmHWM"],
           hwm_after_kib=mem1["VmHWM"])
    # A child is a node (name, Stat, ACL reference, hash-table slot): a few hundred bytes.
    grow = mem1["VmHWM"] - mem0["VmHWM"]
    assert grow < mem_bound(n // 1000 * MIB), "VmHWM grew %d KiB for %d children" % (grow, n)


# ---- 6. 100,000 watches -----------------------------------------------------------------

@pytest.mark.timeout(120 * SCALE)
def test_many_watches(start_server, healthy_factory):
    """One session's exists watches on 100,000 missing paths are all registered (wchs, mntr)
    and cost bounded memory, closing the session frees every one of them, and a healthy
    client is served meanwhile."""
    n = 100_000 * SCALE
    srv = start_server()
    healthy = healthy_factory(srv, "/abuse-watch-healthy")
    base_watches = int(mntr(srv)["zk_watch_count"])
    mem0 = mem_kib(srv.proc.pid)
    raw = zkwire.RawClient(srv.port, timeout_ms=30_000)
    try:
        frames = [zkwire.frame(hdr(i + 1, zkwire.OP_EXISTS)
                               + zkwire.p_str("/abuse-watch/missing-%d" % i) + zkwire.p_bool(True))
                  for i in range(n)]
        t0 = time.monotonic()
        errs = pipeline(raw, frames)
        watch_s = time.monotonic() - t0
        assert count_errs(errs) == {zkwire.ERR_NO_NODE: n}, count_errs(errs)
        wchs = srv.four_letter("wchs")
        assert "watching %d paths" % n in wchs, wchs
        assert "Total watches:%d" % (base_watches + n) in wchs, wchs
        assert int(mntr(srv)["zk_watch_count"]) == base_watches + n
        mem1 = mem_kib(srv.proc.pid)
        assert raw.close_session() == zkwire.ERR_OK
    finally:
        raw.close()
    harness.wait_for(lambda: int(mntr(srv)["zk_watch_count"]) == base_watches, 10,
                     what="zk_watch_count back to %d" % base_watches)
    t1 = time.monotonic()
    mem2 = mem_kib(srv.proc.pid)
    grow = mem1["VmHWM"] - mem0["VmHWM"]
    report("many watches", watches=n, set_s="%.1f" % watch_s, wchs=" / ".join(wchs.splitlines()),
           hwm_before_kib=mem0["VmHWM"], hwm_with_watches_kib=mem1["VmHWM"],
           rss_after_close_kib=mem2["VmRSS"], per_watch_b=grow * 1024 // n)
    # A watch is a path entry plus a watcher entry: a few hundred bytes; 1 KiB each is a bug.
    assert grow < mem_bound(n // 1000 * MIB), "VmHWM grew %d KiB for %d watches" % (grow, n)
    healthy.finish("many watches", max_read_ms=500, max_write_ms=1000, window=(t0, t1))
