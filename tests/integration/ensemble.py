"""An ensemble of ZooKeeper-compatible servers on loopback, and the tools to judge it.

Ensemble starts N voters and M observers of one kind: zkd ($ZKD_BIN, default <repo>/zkd, run
as `zkd zoo.cfg`) or Apache ZooKeeper 3.8 (QuorumPeerMain from the Debian jars), each with its
own dataDir (holding `myid`), zoo.cfg and log file, and lets a test SIGKILL, SIGSTOP/SIGCONT
and restart them.  WriteRecorder is a kazoo client that writes as fast as the ensemble lets it
and remembers every acknowledged write; check_ensemble() reads every serving server's whole
tree after a sync and asserts that each acknowledged write is there and that all trees are
identical (data and full Stat).  HoldRecorder runs lock and leader-election contenders and
remembers when each one held office, so a test can assert that no two ever overlapped.
Processes are killed by close() whatever happens, and at interpreter exit as a last resort.
"""

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
import weakref
from pathlib import Path

from harness import HOST, REPO, four_letter, target

APACHE_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-api.jar",
               "/usr/share/java/slf4j-simple.jar"]
START_TIMEOUT_S = 60.0
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
SERVING_MODES = ("leader", "follower", "observer")
_LIVE = weakref.WeakSet()   # every Ensemble not yet closed, for the atexit sweep


def free_ports(n):
    """n distinct ports that were free a moment ago (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def zkd_binary():
    return Path(os.environ.get("ZKD_BIN", str(REPO / "zkd")))


def probe_zkd_ensemble(workdir, wait_s=3.0):
    """None if zkd takes a 3-server zoo.cfg as an ensemble member, else why not (for a skip).

    Starts server 1 alone for up to wait_s.  zkd without ensemble support exits with status 2
    saying "not supported", or (while the ensemble is being wired in) runs the file
    standalone: it says "(standalone," when it starts, srvr answers "Mode: standalone", or it
    ignores the server line's client port and tries the default 2181.  Anything else (it
    waits for a quorum, or it fails in a new way) lets the scenarios run and judge it."""
    zkd = zkd_binary()
    if not (zkd.is_file() and os.access(zkd, os.X_OK)):
        return "zkd binary not found at %s" % zkd
    ens = Ensemble(workdir, voters=3, kind="zkd")
    try:
        ens.start(1)
        deadline = time.monotonic() + wait_s
        while True:
            log = ens.log_text(1)
            line = next((ln for ln in log.splitlines()
                         if "not supported" in ln or "(standalone," in ln), None)
            if line:
                return "zkd does not run ensembles yet: %s" % line.strip()
            if ens.mode(1) == "standalone":
                return "zkd does not run ensembles yet: srvr says Mode: standalone"
            if not ens.running(1):
                if ":2181" in log:
                    return ("zkd does not run ensembles yet: it ignored the server line's "
                            "client port and used 2181")
                return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
    finally:
        ens.close()


@contextlib.contextmanager
def prepared(workdir, start=True, voters=3, **kw):
    """An Ensemble of the target kind (tick 200 ms, initLimit 10, syncLimit 5 unless given),
    started with one serving leader when `start`; the test is skipped when the zkd binary
    cannot run ensembles; closed whatever happens."""
    import pytest
    kw = {"tick_ms": 200, "init_limit": 10, "sync_limit": 5, **kw}
    e = Ensemble(workdir, voters=voters, kind=target(), **kw)
    try:
        why = probe_zkd_ensemble(Path(workdir) / "probe") if e.kind == "zkd" else None
        if why:
            pytest.skip(why)
        if start:
            e.start_all()
            e.wait_leader()
        yield e
    finally:
        e.close()


def _all_threads_stopped(pid):
    """True when every thread of pid is in state T (stopped) according to /proc."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return True     # gone: nothing runs
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


class Ensemble:
    """Servers 1..voters are participants, voters+1..voters+observers observers."""

    def __init__(self, workdir, voters=3, observers=0, kind=None, tick_ms=200, init_limit=10,
                 sync_limit=5, extra_cfg=None, java_props=None, max_session_timeout_ms=8000):
        self.workdir = Path(workdir)
        self.kind = kind or target()
        self.voters = list(range(1, voters + 1))
        self.observers = list(range(voters + 1, voters + observers + 1))
        self.sids = self.voters + self.observers
        self.tick_ms, self.init_limit, self.sync_limit = tick_ms, init_limit, sync_limit
        self.extra_cfg = dict(extra_cfg or {})
        self.java_props = dict(java_props or {})
        self.max_session_timeout_ms = max_session_timeout_ms
        ports = free_ports(3 * len(self.sids))
        # sid -> (client, quorum, election)
        self.ports = {sid: tuple(ports[3 * i:3 * i + 3]) for i, sid in enumerate(self.sids)}
        self.procs = {}
        self.stopped = set()      # sids under SIGSTOP
        self.starts = {sid: 0 for sid in self.sids}
        _LIVE.add(self)

    # ---- configuration -------------------------------------------------------------------
    def server_dir(self, sid):
        return self.workdir / ("s%d" % sid)

    def data_dir(self, sid):
        return self.server_dir(sid) / "data"

    def log_path(self, sid):
        return self.server_dir(sid) / "server.log"

    def server_lines(self):
        lines = []
        for sid in self.sids:
            c, q, e = self.ports[sid]
            role = ":observer" if sid in self.observers else ""
            lines.append("server.%d=%s:%d:%d%s;%s:%d\n" % (sid, HOST, q, e, role, HOST, c))
        return "".join(lines)

    def write_config(self, sid):
        """Write sid's zoo.cfg (and myid) the way Apache ZooKeeper 3.8 documents them."""
        d = self.data_dir(sid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "myid").write_text("%d\n" % sid)
        cfg = {
            "tickTime": self.tick_ms,
            "initLimit": self.init_limit,
            "syncLimit": self.sync_limit,
            "dataDir": d,
            "maxSessionTimeout": self.max_session_timeout_ms,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
        }
        if sid in self.observers:
            cfg["peerType"] = "observer"
        cfg.update(self.extra_cfg)
        path = self.server_dir(sid) / "zoo.cfg"
        path.write_text("".join("%s=%s\n" % kv for kv in cfg.items()) + self.server_lines())
        return path

    def _command(self, cfg):
        # The kernel kills a server whose test process dies (even by SIGKILL, when no
        # close() or atexit runs).  The signal follows the thread that forked, so servers are
        # started from the test's main thread.
        return PDEATHSIG + self._server_command(cfg)

    def _server_command(self, cfg):
        if self.kind == "apache":
            props = {"org.slf4j.simpleLogger.defaultLogLevel": "info",
                     "org.slf4j.simpleLogger.showDateTime": "true",
                     "org.slf4j.simpleLogger.dateTimeFormat": "HH:mm:ss.SSS"}
            props.update(self.java_props)
            # Serial GC and the C1 compiler only: four JVMs share two cores here.
            return (["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
                    + ["-D%s=%s" % kv for kv in props.items()]
                    + ["-cp", ":".join(APACHE_JARS),
                       "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)])
        zkd = zkd_binary()
        if not (zkd.is_file() and os.access(zkd, os.X_OK)):
            raise RuntimeError("zkd binary not found at %s" % zkd)
        return [str(zkd), str(cfg)]

    def connect_string(self, sids=None):
        return ",".join("%s:%d" % (HOST, self.ports[s][0]) for s in (sids or self.sids))

    # ---- processes -----------------------------------------------------------------------
    def running(self, sid):
        p = self.procs.get(sid)
        return p is not None and p.poll() is None

    def up(self):
        """Sids whose process runs and is not stopped."""
        return [s for s in self.sids if self.running(s) and s not in self.stopped]

    def start(self, sid):
        assert not self.running(sid), "server %d already runs" % sid
        cfg = self.write_config(sid)
        env = dict(os.environ)
        env.setdefault("ZKD_LOG", "info")
        self.mark(sid, "start %d" % self.starts[sid])
        with open(self.log_path(sid), "ab") as log:
            self.procs[sid] = subprocess.Popen(self._command(cfg), cwd=self.server_dir(sid),
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                               env=env, start_new_session=True)
        self.starts[sid] += 1
        self.stopped.discard(sid)

    def start_all(self, timeout=START_TIMEOUT_S):
        for sid in self.sids:
            self.start(sid)
        self.wait_serving(self.sids, timeout)
        return self.wait_leader(timeout)

    def mark(self, sid, what):
        """A line in sid's log saying what the test did to it, in the servers' clock format."""
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + ".%03d" % (now % 1 * 1000)
        try:
            with open(self.log_path(sid), "ab") as log:
                log.write(("==== %s %s ====\n" % (stamp, what)).encode())
        except OSError:
            pass

    def _signal(self, sid, sig):
        p = self.procs.get(sid)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            self.mark(sid, signal.Signals(sig).name)

    def kill(self, sid):
        """SIGKILL sid and reap it (a stopped process dies too)."""
        p = self.procs.get(sid)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            self.mark(sid, "SIGKILL")
        p.wait(timeout=30)
        self.stopped.discard(sid)

    def stop(self, sid, timeout=5.0):
        """SIGSTOP, and wait until every thread of the process has stopped (a signal reaches
        a busy multi-threaded process a little later): from then on it keeps its sockets but
        reads, writes and logs nothing."""
        self._signal(sid, signal.SIGSTOP)
        self.stopped.add(sid)
        pid = self.procs[sid].pid
        deadline = time.monotonic() + timeout
        while not _all_threads_stopped(pid):
            assert time.monotonic() < deadline, "server %d did not stop on SIGSTOP" % sid
            time.sleep(0.002)

    def cont(self, sid):
        self._signal(sid, signal.SIGCONT)
        self.stopped.discard(sid)

    def restart(self, sid):
        self.kill(sid)
        self.start(sid)

    def close(self, term_timeout=5.0):
        """Stop every server; safe to call twice, and from atexit.  zkd gets SIGTERM first, so
        that it exits cleanly (a sanitizer build then checks for leaks, and exited_badly()
        sees a bad exit status); what still runs after term_timeout, and Apache's JVMs, get
        SIGKILL."""
        live = {sid: p for sid, p in self.procs.items() if p.poll() is None}
        if self.kind == "zkd":
            for sid, p in live.items():
                if sid in self.stopped:
                    p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + term_timeout
            for p in live.values():
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for p in live.values():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                except OSError:
                    pass
        for p in live.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.stopped.clear()
        _LIVE.discard(self)

    def thread_dumps(self):
        """Ask every running Apache server for a thread dump (SIGQUIT; the JVM prints it to
        its log and goes on), to see where a stuck one waits."""
        if self.kind != "apache":
            return
        for sid in self.sids:
            if sid in self.stopped:
                self.cont(sid)
            self._signal(sid, signal.SIGQUIT)
        time.sleep(0.5)

    def exited_badly(self):
        """Servers that exited on their own or badly on SIGTERM (not by our SIGKILL), with
        their status."""
        return {sid: p.returncode for sid, p in self.procs.items()
                if p.returncode not in (None, 0, -signal.SIGKILL)}

    # ---- observation ---------------------------------------------------------------------
    def srvr(self, sid, timeout=1.0):
        if not self.running(sid) or sid in self.stopped:
            return None
        try:
            return four_letter(self.ports[sid][0], "srvr", timeout=timeout)
        except OSError:
            return None

    def mode(self, sid):
        """'leader', 'follower', 'observer' or 'standalone' from srvr; None while not serving."""
        reply = self.srvr(sid)
        for line in (reply or "").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def modes(self):
        return {sid: self.mode(sid) for sid in self.sids}

    def wait_leader(self, timeout=30.0, among=None):
        """The sid of the one server that says it leads, once every server in `among` (default:
        all that are up) serves."""
        deadline = time.monotonic() + timeout
        while True:
            sids = [s for s in (among or self.up()) if s in self.up()]
            modes = {s: self.mode(s) for s in sids}
            leaders = [s for s, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m in SERVING_MODES for m in modes.values()):
                return leaders[0]
            if time.monotonic() >= deadline:
                raise AssertionError("no single serving leader after %.0fs: %s\n%s"
                                     % (timeout, modes, self.log_tails()))
            time.sleep(0.1)

    def wait_serving(self, sids, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            modes = {s: self.mode(s) for s in sids}
            if all(m in SERVING_MODES for m in modes.values()):
                return modes
            if time.monotonic() >= deadline:
                raise AssertionError("servers not serving after %.0fs: %s\n%s"
                                     % (timeout, modes, self.log_tails()))
            time.sleep(0.1)

    def followers(self, leader):
        return [s for s in self.voters if s != leader]

    def log_tail(self, sid, max_lines=40):
        try:
            lines = self.log_path(sid).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-max_lines:])

    def log_tails(self, max_lines=40):
        return "\n".join("--- server %d (%s) log tail: %s ---\n%s"
                         % (sid, self.kind, self.log_path(sid), self.log_tail(sid, max_lines))
                         for sid in self.sids)

    def log_text(self, sid):
        try:
            return self.log_path(sid).read_text(errors="replace")
        except OSError:
            return ""


@atexit.register
def _kill_leftovers():
    for ens in list(_LIVE):
        ens.close()


# ---- clients ---------------------------------------------------------------------------------

def kazoo_client(hosts, session_timeout_s=6.0, start_timeout=30.0, start=True):
    """A kazoo client that reconnects quickly and retries its connection forever."""
    from kazoo.client import KazooClient
    c = KazooClient(hosts=hosts, timeout=session_timeout_s,
                    connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5,
                                          max_jitter=0.2))
    if start:
        c.start(timeout=start_timeout)
    return c


def close_client(c):
    try:
        c.stop()
    except Exception:   # noqa: BLE001 - teardown of a client that may have no server
        pass
    try:
        c.close()
    except Exception:   # noqa: BLE001
        pass


def probe_write(ens, sids, t0, timeout=60.0, prefix="/ensemble-probe"):
    """Create a fresh node through each sid in turn until one create is acknowledged.

    Returns (sid, path, seconds since t0).  Each attempt is its own short session on one
    server, so a hung or refused attempt costs at most a second; an unanswered create may
    still land later, which is why every attempt uses a new path."""
    import zkwire
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        for sid in sids:
            if sid not in ens.up():
                continue
            n += 1
            path = "%s-%s-%d" % (prefix, uuid.uuid4().hex[:8], n)
            c = None
            try:
                c = zkwire.RawClient(ens.ports[sid][0], timeout_ms=4000, io_timeout=1.0)
                if c.session_id:
                    err, _ = c.create(path, b"probe")
                    if err == 0:
                        t = time.monotonic() - t0
                        try:
                            c.close_session()
                        except Exception:  # noqa: BLE001 - the write is what matters
                            pass
                        return sid, path, t
            except (OSError, EOFError, ValueError, AssertionError):
                pass
            finally:
                if c is not None:
                    c.close()
        time.sleep(0.05)
    raise AssertionError("no server in %s acknowledged a write within %.0fs\n%s"
                         % (sids, timeout, ens.log_tails()))


class WriteRecorder:
    """A thread writing as fast as it may through a multi-host kazoo client; every write the
    ensemble acknowledged is remembered as path -> (version, data).

    Writes alternate between a sequential create and a persistent create followed by two
    setData calls on it.  Any failure (ConnectionLoss, SessionExpired, a timeout) leaves the
    write's outcome unknown: it is counted, never recorded, and the next write takes a new
    path, so an unknown outcome can only ever make a node newer than recorded."""

    def __init__(self, hosts, prefix="/rec", op_timeout=10.0, pause=0.0):
        self.hosts, self.prefix, self.op_timeout, self.pause = hosts, prefix, op_timeout, pause
        self.acked = {}          # path -> (version, data, t_sent, t_acked)
        self.failures = {}       # exception name -> count
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.client = None
        self.error = None

    def start(self, start_timeout=30.0):
        self.client = kazoo_client(self.hosts, start_timeout=start_timeout)
        self.client.ensure_path(self.prefix)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def _ack(self, path, version, data, t_sent):
        with self.lock:
            self.acked[path] = (version, data, t_sent, time.monotonic())

    def _fail(self, e):
        name = type(e).__name__
        with self.lock:
            self.failures[name] = self.failures.get(name, 0) + 1

    def _one_round(self, i):
        c, to = self.client, self.op_timeout
        tag = b"w%d-" % i
        if i % 2 == 0:
            t = time.monotonic()
            path = c.create_async(self.prefix + "/s-", tag + b"seq", sequence=True).get(timeout=to)
            self._ack(path, 0, tag + b"seq", t)
            return
        path = "%s/p%07d" % (self.prefix, i)
        t = time.monotonic()
        c.create_async(path, tag + b"v0").get(timeout=to)
        self._ack(path, 0, tag + b"v0", t)
        for v in (1, 2):
            if self._stop.is_set():
                return
            data = tag + b"v%d" % v
            t = time.monotonic()
            stat = c.set_async(path, data).get(timeout=to)
            assert stat.version == v, "setData on %s gave version %d, not %d" % (path, stat.version, v)
            self._ack(path, v, data, t)

    def _run(self):
        from kazoo.exceptions import KazooException
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self._one_round(i)
            except AssertionError as e:
                self.error = e
                return
            except (KazooException, Exception) as e:   # noqa: BLE001 - outcome unknown
                self._fail(e)
                time.sleep(0.02)
            if self.pause:
                time.sleep(self.pause)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.op_timeout + 5)
            assert not self._thread.is_alive(), "recorder thread hung"
        if self.client is not None:
            close_client(self.client)
            self.client = None
        if self.error:
            raise self.error

    def count(self):
        with self.lock:
            return len(self.acked)

    def acked_between(self, t0, t1):
        """Writes sent at or after t0 and acknowledged at or before t1."""
        with self.lock:
            return [p for p, (_, _, ts, ta) in self.acked.items() if ts >= t0 and ta <= t1]

    def sent_after(self, t):
        """Acknowledged writes that were sent at or after t."""
        with self.lock:
            return [p for p, (_, _, ts, _) in self.acked.items() if ts >= t]

    def acked_after(self, t):
        with self.lock:
            return [p for p, (_, _, _, ta) in self.acked.items() if ta >= t]

    def expected(self):
        with self.lock:
            return {p: (v, d) for p, (v, d, _, _) in self.acked.items()}

    def summary(self):
        with self.lock:
            return "%d acknowledged writes, failures %s" % (len(self.acked), self.failures or "none")


def wait_writes(rec, n, timeout=30.0, after=None):
    """Wait until the recorder has n more acknowledged writes (after time `after`, if given)."""
    deadline = time.monotonic() + timeout
    base = rec.count() if after is None else 0
    while True:
        got = rec.count() - base if after is None else len(rec.acked_after(after))
        if got >= n:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("only %d of %d writes acknowledged within %.0fs (%s)"
                                 % (got, n, timeout, rec.summary()))
        time.sleep(0.05)


def burst_creates(client, prefix, n, window=200, timeout=60.0):
    """Create prefix/b<i> for i < n, up to `window` requests in flight; returns the
    acknowledged ones as {path: (0, data)} (a failed one is simply not in it)."""
    client.ensure_path(prefix)
    acked, inflight = {}, []
    for i in range(n):
        path, data = "%s/b%06d" % (prefix, i), b"burst-%d" % i
        inflight.append((path, data, client.create_async(path, data)))
        if len(inflight) >= window or i == n - 1:
            for p, d, r in inflight:
                try:
                    r.get(timeout=timeout)
                    acked[p] = (0, d)
                except Exception:   # noqa: BLE001 - outcome unknown, not recorded
                    pass
            inflight = []
    return acked


# ---- the checker -----------------------------------------------------------------------------

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")
# Fields that are each server's own, not replicated state: Apache ZooKeeper writes
# /zookeeper/config (version -1, zxid 0) itself when it loads its config, stamping its mtime
# with its own clock.  They read as None.
LOCAL_FIELDS = {"/zookeeper/config": ("mtime",)}


def read_tree(port, timeout=30.0):
    """{path: (data, stat tuple)} of one server's whole tree, read after sync('/').

    Reads are pipelined one tree level at a time through a client bound to that server only."""
    c = kazoo_client("%s:%d" % (HOST, port), start_timeout=timeout)
    try:
        c.sync("/")
        tree = {}
        level = ["/"]
        while level:
            pending = [(p, c.get_async(p), c.get_children_async(p)) for p in level]
            level = []
            for p, rd, rc in pending:
                data, st = rd.get(timeout=timeout)
                kids = rc.get(timeout=timeout)
                local = LOCAL_FIELDS.get(p, ())
                tree[p] = (data, tuple(None if f in local else getattr(st, f)
                                       for f in STAT_FIELDS))
                level.extend((p.rstrip("/") + "/" + k) for k in sorted(kids))
        return tree
    finally:
        close_client(c)


def _fmt_node(node):
    if node is None:
        return "absent"
    data, st = node
    return "data=%r %s" % (data[:40], " ".join("%s=%s" % kv for kv in zip(STAT_FIELDS, st)))


def tree_diff(a, b, name_a, name_b, limit=20):
    """Lines describing how trees a and b differ (at most `limit`)."""
    out = []
    for p in sorted(set(a) | set(b)):
        na, nb = a.get(p), b.get(p)
        if na == nb:
            continue
        if na is not None and nb is not None:
            fields = [f for f, x, y in zip(STAT_FIELDS, na[1], nb[1]) if x != y]
            if na[0] != nb[0]:
                fields.insert(0, "data")
            out.append("%s differs in %s:\n    %s: %s\n    %s: %s"
                       % (p, ",".join(fields), name_a, _fmt_node(na), name_b, _fmt_node(nb)))
        else:
            out.append("%s: %s has %s; %s has %s" % (p, name_a, _fmt_node(na), name_b, _fmt_node(nb)))
        if len(out) >= limit:
            out.append("... (more differences)")
            break
    return out


def tree_differences(ens, timeout=10.0):
    """How the trees of the servers that are up differ now (no waiting for them to agree),
    as text, for a failed scenario's report."""
    try:
        sids = [s for s in ens.up() if ens.mode(s) is not None]
        trees = {sid: read_tree(ens.ports[sid][0], timeout) for sid in sids}
    except Exception as e:   # noqa: BLE001 - a diagnosis must not hide the failure
        return "could not read the trees: %r" % (e,)
    if len(trees) < 2:
        return "fewer than two servers serve: %s" % sorted(trees)
    diffs = []
    for sid in sids[1:]:
        diffs += tree_diff(trees[sids[0]], trees[sid], "server %d" % sids[0], "server %d" % sid)
    return "\n".join(diffs) or "the trees of servers %s are identical" % sids


def _missing_writes(tree, expected, limit=20):
    out = []
    for p, (v, d) in sorted(expected.items()):
        node = tree.get(p)
        if node is None:
            out.append("acknowledged %s (version %d) is missing" % (p, v))
        elif node[1][4] < v:
            out.append("acknowledged %s version %d, found version %d" % (p, v, node[1][4]))
        elif node[1][4] == v and node[0] != d:
            out.append("acknowledged %s version %d data %r, found %r" % (p, v, d, node[0]))
        if len(out) >= limit:
            out.append("...")
            break
    return out


def check_ensemble(ens, expected=None, forbidden=(), timeout=60.0, settle_s=1.0):
    """Every serving server holds every acknowledged write, none of `forbidden`, and all hold
    the same tree (data and Stat).  Sessions may still be expiring (their ephemerals change
    the tree), so differences between servers are re-read until timeout.

    expected: {path: (version, data)} (merge several recorders' expected()).  Returns
    (number of nodes, the trees by sid)."""
    expected = expected or {}
    sids = ens.up()
    assert sids, "no server is up to check"
    ens.wait_serving(sids, timeout)
    deadline = time.monotonic() + timeout
    while True:
        trees = {sid: read_tree(ens.ports[sid][0]) for sid in sids}
        problems = []
        for sid, tree in trees.items():
            problems += ["server %d: %s" % (sid, m) for m in _missing_writes(tree, expected)]
            problems += ["server %d holds %s, which must not exist" % (sid, p)
                         for p in forbidden if p in tree]
        if problems:
            # A missing acknowledged write does not heal with time: fail at once.
            raise AssertionError("lost or forbidden writes:\n" + "\n".join(problems[:40])
                                 + "\n" + ens.log_tails(20))
        first = sids[0]
        diffs = []
        for sid in sids[1:]:
            diffs += tree_diff(trees[first], trees[sid], "server %d" % first, "server %d" % sid)
        if not diffs:
            return len(trees[first]), trees
        if time.monotonic() >= deadline:
            raise AssertionError("servers hold different trees after %.0fs:\n%s\n%s"
                                 % (timeout, "\n".join(diffs), ens.log_tails(20)))
        time.sleep(settle_s)


# ---- lock and election contenders -----------------------------------------------------------

class Contender:
    """One client session contending for office; `lost` counts connection losses."""

    def __init__(self, hosts, name, session_timeout_s=6.0):
        from kazoo.client import KazooState
        self.name = name
        self.gen = 0
        self.lost_at = None
        self.client = kazoo_client(hosts, session_timeout_s=session_timeout_s)
        self._states = KazooState

        def listener(state):
            if state != KazooState.CONNECTED:
                self.gen += 1
                self.lost_at = time.monotonic()
        self.client.add_listener(listener)

    def connected(self):
        return self.client.state == self._states.CONNECTED


class HoldRecorder:
    """Contenders for one office (kazoo's Lock, or the classic election recipe: an
    ephemeral-sequential node per candidate, the lowest leads, each watches its predecessor).

    A hold starts when the contender learns it holds office while connected and ends when it
    lets go or first hears its connection is gone (after that it cannot know, and a correct
    server lets another take over only once its session expired).  No two holds may overlap."""

    def __init__(self, hosts, path, kind, contenders=3, hold_s=0.03):
        assert kind in ("lock", "election")
        self.hosts, self.path, self.kind, self.hold_s = hosts, path, kind, hold_s
        self.n = contenders
        self.holds = []          # (name, start, end)
        self.errors = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._contenders = []

    def start(self):
        for i in range(self.n):
            c = Contender(self.hosts, "%s%d" % (self.kind, i))
            self._contenders.append(c)
            run = self._run_lock if self.kind == "lock" else self._run_election
            t = threading.Thread(target=self._guard, args=(run, c), daemon=True, name=c.name)
            self._threads.append(t)
            t.start()
        return self

    def _guard(self, run, c):
        try:
            run(c)
        except BaseException as e:   # noqa: BLE001 - reported by stop()
            self.errors.append("%s: %r" % (c.name, e))

    def _hold(self, c, gen):
        """Hold office for hold_s unless the connection goes; record the interval."""
        start = time.monotonic()
        if c.gen != gen or not c.connected():
            return
        end_by = start + self.hold_s
        while time.monotonic() < end_by and c.gen == gen:
            time.sleep(0.005)
        end = time.monotonic()
        if c.gen != gen:
            end = max(start, min(end, c.lost_at or end))
        with self.lock:
            self.holds.append((c.name, start, end))

    def _run_lock(self, c):
        from kazoo.exceptions import KazooException, LockTimeout
        lock = c.client.Lock(self.path, c.name)
        while not self._stop.is_set():
            try:
                if not lock.acquire(timeout=2.0):
                    continue
                try:
                    self._hold(c, c.gen)
                finally:
                    lock.release()
            except (KazooException, LockTimeout, Exception):   # noqa: BLE001 - retry
                time.sleep(0.05)

    def _run_election(self, c):
        from kazoo.exceptions import KazooException
        zk = c.client
        zk.ensure_path(self.path)
        while not self._stop.is_set():
            try:
                self._one_election(c, zk)
            except (KazooException, Exception):   # noqa: BLE001 - retry with a new node
                time.sleep(0.05)

    def _one_election(self, c, zk):
        """One candidacy: clear our old nodes, create one, lead or watch the predecessor."""
        me_tag = "n_%s_" % uuid.uuid4().hex
        gen = c.gen
        # A node whose create went unanswered may exist: the tag finds it and we delete it.
        mine = None
        try:
            mine = zk.create(self.path + "/" + me_tag, b"", ephemeral=True, sequence=True)
        except Exception:   # noqa: BLE001 - the create may still have happened
            self._delete_tagged(zk, me_tag)
            raise
        try:
            me = mine.rsplit("/", 1)[1]
            while not self._stop.is_set() and c.gen == gen:
                kids = sorted(zk.get_children(self.path), key=lambda k: k[-10:])
                if me not in kids:
                    return                      # our session expired: start over
                idx = kids.index(me)
                if idx == 0:
                    self._hold(c, gen)
                    return
                woke = threading.Event()
                if zk.exists(self.path + "/" + kids[idx - 1], watch=lambda ev: woke.set()):
                    woke.wait(0.5)
        finally:
            self._delete_tagged(zk, me_tag)

    def _delete_tagged(self, zk, tag):
        """Delete our nodes (whatever their sequence number) until it works: one left behind
        while our session lives would block every later candidate."""
        while True:
            if self._stop.is_set() and not self.connected_any():
                return
            try:
                for k in zk.get_children(self.path):
                    if k.startswith(tag):
                        zk.delete(self.path + "/" + k)
                return
            except Exception:   # noqa: BLE001 - wait for the reconnect
                time.sleep(0.1)

    def connected_any(self):
        return any(c.connected() for c in self._contenders)

    def count(self):
        with self.lock:
            return len(self.holds)

    def holds_after(self, t):
        with self.lock:
            return [h for h in self.holds if h[1] >= t]

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)
        hung = [t.name for t in self._threads if t.is_alive()]
        for c in self._contenders:
            close_client(c.client)
        assert not hung, "contenders hung: %s" % hung
        assert not self.errors, "contender errors: %s" % self.errors

    def overlaps(self):
        with self.lock:
            holds = sorted(self.holds, key=lambda h: h[1])
        out = []
        latest = None            # the hold that ends last among those started so far
        for h in holds:
            if latest is not None and h[1] < latest[2]:
                out.append("%s held %.3f..%.3f while %s held from %.3f"
                           % (latest[0], latest[1], latest[2], h[0], h[1]))
            if latest is None or h[2] > latest[2]:
                latest = h
        return out


def wait_holds(office, n, after=None, timeout=60.0):
    """Wait until `office` (a HoldRecorder) has n holds (starting after `after`, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        got = office.count() if after is None else len(office.holds_after(after))
        if got >= n:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("%s: only %d of %d holds within %.0fs (errors %s)"
                                 % (office.kind, got, n, timeout, office.errors))
        time.sleep(0.05)


def remove_workdir(path):
    shutil.rmtree(path, ignore_errors=True)
