"""Proves that an acknowledged write survives a crash: SIGKILL at a random moment under 4 x 32 pipelined writes loses nothing that was acknowledged, sessions and their ephemerals survive a restart (and expire after it when their client does not return), and a full disk (a file-size limit) stops writes without losing an acknowledged one while reads go on."""

import os
import random
import re
import threading
import time

import pytest

kazoo_client = pytest.importorskip("kazoo.client")

from kazoo.exceptions import SystemZookeeperError  # noqa: E402
from kazoo.protocol.states import KazooState  # noqa: E402

import harness  # noqa: E402
import persist  # noqa: E402
import zkwire  # noqa: E402
from persist import FAST_RETRY, DataServer, wait  # noqa: E402

CONNS = 4
IN_FLIGHT = 32
COUNTERS = 4                      # set_data targets per connection
CRASH_ROUNDS = int(os.environ.get("ZKD_CRASH_ROUNDS", "20"))
CRASH_SEED = int(os.environ.get("ZKD_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
CRASH_CFG = {"snapCount": 400, "preAllocSize": 64}
SESSION_TICK_MS = 200             # sessions may last 400..4000 ms


def kazoo(srv, **kw):
    return persist.kazoo_client(srv, start_timeout=15, **kw)


close = persist.close


def serve(srv):
    globals()["_zk_server"] = srv          # conftest adds its log to a failure report
    return srv.start()


# ---------------------------------------------------------------- pipelined writers

def create_value(c, r, i):
    return b"c%d r%d i%d " % (c, r, i) + b"." * ((i * 37) % 150)


def set_value(c, j, seq):
    return b"c%d k%d s%d" % (c, j, seq)


class ConnState:
    """What one connection sent and had acknowledged, over every round.

    Creates go to <base>/r<round>/i<index>; every 4th write is a set_data of <base>/k<j> to a
    value with a sequence number that only grows."""

    def __init__(self, c, base):
        self.c = c
        self.base = base
        self.set_sent = [0] * COUNTERS
        self.set_acked = [0] * COUNTERS
        self.set_seen = [0] * COUNTERS     # newest value served after a recovery
        self.issued = {}                   # round -> creates sent
        self.acked = {}                    # round -> indexes acknowledged
        self.seen = {}                     # round -> names served after a recovery
        self.errors = {}                   # exception name -> count
        self.lock = threading.Lock()

    def round_dir(self, r):
        return "%s/r%d" % (self.base, r)

    def counter(self, j):
        return "%s/k%d" % (self.base, j)

    def setup(self, zk, r):
        if r == 0:
            zk.ensure_path(self.base)
            for j in range(COUNTERS):
                zk.create(self.counter(j), set_value(self.c, j, 0))
        zk.create(self.round_dir(r))
        self.issued[r] = 0
        self.acked[r] = set()

    def failed(self):
        with self.lock:
            return sum(self.errors.values())


class Pipeline:
    """Keeps IN_FLIGHT async writes outstanding on one client until stopped."""

    def __init__(self, zk, st, r):
        self.zk, self.st, self.r = zk, st, r
        self.sem = threading.Semaphore(IN_FLIGHT)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _done(self, res, kind, key):
        st = self.st
        try:
            ok = res.successful()
            with st.lock:
                if ok and kind == "create":
                    st.acked[self.r].add(key)
                elif ok:
                    j, seq = key
                    st.set_acked[j] = max(st.set_acked[j], seq)
                else:
                    name = type(res.exception).__name__
                    st.errors[name] = st.errors.get(name, 0) + 1
        finally:
            self.sem.release()

    def _run(self):
        st, n = self.st, 0
        while not self.stop.is_set():
            if not self.sem.acquire(timeout=0.1):
                continue
            try:
                if n % 4 == 3:
                    j = (n // 4) % COUNTERS
                    with st.lock:
                        st.set_sent[j] += 1
                        seq = st.set_sent[j]
                    res = self.zk.set_async(st.counter(j), set_value(st.c, j, seq))
                    kind, key = "set", (j, seq)
                else:
                    with st.lock:
                        i = st.issued[self.r]
                        st.issued[self.r] = i + 1
                    res = self.zk.create_async("%s/i%d" % (st.round_dir(self.r), i),
                                               create_value(st.c, self.r, i))
                    kind, key = "create", i
            except Exception:
                self.sem.release()
                break                    # the client is closing
            res.rawlink(lambda a, kind=kind, key=key: self._done(a, kind, key))
            n += 1

    def start(self):
        self.thread.start()
        return self


def start_writers(srv, states, r):
    clients, pipes = [], []
    for st in states:
        zk = kazoo(srv, connection_retry=FAST_RETRY)
        clients.append(zk)
        st.setup(zk, r)
        pipes.append(Pipeline(zk, st, r))
    for p in pipes:
        p.start()
    return clients, pipes


def stop_writers(clients, pipes):
    for p in pipes:
        p.stop.set()
    for zk in clients:
        close(zk)            # runs the callbacks of every reply already read
    for p in pipes:
        p.thread.join(timeout=10)
        assert not p.thread.is_alive(), "a writer thread did not stop"


def verify(zk, states, upto, fail):
    """Every acknowledged (and every earlier recovered) write of rounds 0..upto is served."""
    for st in states:
        for r in range(upto + 1):
            d = st.round_dir(r)
            names = set(wait(zk.get_children_async(d)))
            acked = {"i%d" % i for i in st.acked[r]}
            if not acked <= names:
                fail("%s: %d acknowledged creates lost, e.g. %s"
                     % (d, len(acked - names), sorted(acked - names)[:5]))
            if not st.seen.get(r, set()) <= names:
                fail("%s: creates served after an earlier recovery are gone: %s"
                     % (d, sorted(st.seen[r] - names)[:5]))
            if r != upto and r in st.seen:
                continue                  # data already checked, and no one writes there
            bad = [n for n in names
                   if not n.startswith("i") or not n[1:].isdigit() or int(n[1:]) >= st.issued[r]]
            if bad:
                fail("%s: nodes no one created: %s" % (d, sorted(bad)[:5]))
            gets = [(n, zk.get_async(d + "/" + n)) for n in names]
            for n, g in gets:
                data = wait(g)[0]
                if data != create_value(st.c, r, int(n[1:])):
                    fail("%s/%s holds %r" % (d, n, data[:80]))
            st.seen[r] = names
        for j in range(COUNTERS):
            data = wait(zk.get_async(st.counter(j)))[0]
            m = re.fullmatch(rb"c%d k%d s(\d+)" % (st.c, j), data)
            if not m:
                fail("%s holds %r" % (st.counter(j), data))
            seq = int(m.group(1))
            lo = max(st.set_acked[j], st.set_seen[j])
            if not lo <= seq <= st.set_sent[j]:
                fail("%s holds sequence %d; acknowledged up to %d, served before %d, sent up to %d"
                     % (st.counter(j), seq, st.set_acked[j], st.set_seen[j], st.set_sent[j]))
            st.set_seen[j] = seq


@pytest.mark.timeout(max(120, CRASH_ROUNDS * 6))
def test_sigkill_under_pipelined_writes_loses_no_acknowledged_write(tmp_path):
    print("SEED=%d (rerun with ZKD_CRASH_SEED=%d)" % (CRASH_SEED, CRASH_SEED))
    rng = random.Random(CRASH_SEED)
    srv = DataServer(tmp_path, extra_cfg=CRASH_CFG)
    states = [ConnState(c, "/crash/c%d" % c) for c in range(CONNS)]
    round_no = [0]

    def fail(msg):
        raise AssertionError("SEED=%d round %d: %s" % (CRASH_SEED, round_no[0], msg))

    serve(srv)
    total_acked = 0
    try:
        for r in range(CRASH_ROUNDS):
            round_no[0] = r
            clients, pipes = start_writers(srv, states, r)
            try:
                time.sleep(rng.uniform(0.05, 0.6))
                whole_group = rng.random() < 0.7
                srv.kill(group=whole_group)
            finally:
                stop_writers(clients, pipes)
            if not whole_group:
                srv.wait_group_gone()       # a snapshot child may still be writing
            serve(srv)
            zk = kazoo(srv)
            try:
                verify(zk, states, r, fail)
            finally:
                close(zk)
            total_acked += sum(len(st.acked[r]) for st in states)
    finally:
        srv.stop()
    print("rounds=%d acknowledged creates=%d sets=%s errors=%s"
          % (CRASH_ROUNDS, total_acked, [sum(st.set_acked) for st in states],
             [st.errors for st in states]))
    assert total_acked >= CRASH_ROUNDS * 20, "too few writes were acknowledged to prove anything"


# ---------------------------------------------------------------- sessions across a restart

@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_session_and_its_ephemerals_survive_a_restart(tmp_path, how):
    srv = serve(DataServer(tmp_path, tick_time=SESSION_TICK_MS))
    states = []
    zk = kazoo(srv, timeout=3.0, connection_retry=FAST_RETRY)
    raw = None
    try:
        zk.add_listener(states.append)
        sid, passwd = zk.client_id
        zk.create("/s")
        zk.create("/s/eph", b"mine", ephemeral=True)
        raw = zkwire.RawClient(srv.port, timeout_ms=3000)
        assert raw.create("/s/raw-eph", b"raw", flags=zkwire.EPHEMERAL)[0] == 0
        if how == "SIGKILL":
            srv.kill()
        else:
            srv.stop()
        raw.close()
        serve(srv)
        # kazoo reconnects by itself with its session id and password ...
        harness.wait_for(lambda: zk.connected, 10, what="kazoo to reconnect")
        assert zk.client_id == (sid, passwd)
        # ... and so does a raw client, explicitly.
        again = zkwire.RawClient(srv.port, timeout_ms=3000, session_id=raw.session_id,
                                 passwd=raw.passwd, last_zxid=raw.last_zxid)
        try:
            assert again.session_id == raw.session_id and again.conn["timeout_ms"] == 3000, \
                "the restarted server did not take the session back: %r" % again.conn
            err, st = again.exists("/s/raw-eph")
            assert err == 0 and st["ephemeralOwner"] == raw.session_id
            assert again.create("/s/raw-eph2", flags=zkwire.EPHEMERAL)[0] == 0
            assert zk.exists("/s/eph").ephemeralOwner == sid
            # Both sessions stay alive past their timeout on the restarted server.
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                assert again.ping() == 0
                time.sleep(0.3)
            assert zk.exists("/s/eph").ephemeralOwner == sid
            assert zk.exists("/s/raw-eph2").ephemeralOwner == raw.session_id
            assert zk.client_id == (sid, passwd) and KazooState.LOST not in states
            zk.create("/s/after", b"x", ephemeral=True)
        finally:
            again.close_session()
        harness.wait_for(lambda: wait(zk.exists_async("/s/raw-eph")) is None, 5,
                         what="closeSession to remove the raw session's ephemerals")
    finally:
        if raw is not None:
            raw.close()
        close(zk)
        srv.stop()


def test_session_that_does_not_return_expires_after_restart(tmp_path):
    srv = serve(DataServer(tmp_path, tick_time=SESSION_TICK_MS))
    zk = None
    try:
        raw = zkwire.RawClient(srv.port, timeout_ms=3000)
        assert raw.create("/lonely", b"x", flags=zkwire.EPHEMERAL)[0] == 0
        srv.kill()
        raw.close()                         # the client never comes back
        t0 = time.monotonic()
        serve(srv)
        zk = kazoo(srv)
        st = zk.exists("/lonely")
        assert st is not None and st.ephemeralOwner == raw.session_id, \
            "the session's ephemeral did not survive the restart"
        harness.wait_for(lambda: wait(zk.exists_async("/lonely")) is None, 3.0 + 6.0, interval=0.05,
                         what="the dead session to expire after the restart")
        elapsed = time.monotonic() - t0
        assert elapsed >= 2.5, "the session expired %.2fs after the restart, before its 3s" % elapsed
    finally:
        if zk is not None:
            close(zk)
        srv.stop()


# ---------------------------------------------------------------- a full disk

FSIZE_LIMIT = 256 * 1024


@pytest.mark.timeout(90)
def test_full_disk_refuses_writes_and_loses_no_acknowledged_one(tmp_path):
    if harness.target() != "zkd":
        pytest.skip("zkd's full-disk behaviour (ZK_TARGET=apache)")
    srv = DataServer(tmp_path, kind="zkd", fsize_limit=FSIZE_LIMIT,
                     extra_cfg={"snapCount": 1000000, "preAllocSize": 64})
    serve(srv)
    states = [ConnState(c, "/full/c%d" % c) for c in range(CONNS)]
    bystander = kazoo(srv)             # idle while the disk fills: keeps its connection
    clients = pipes = None
    try:
        bystander.create("/full/before", b"before", makepath=True)
        clients, pipes = start_writers(srv, states, 0)
        harness.wait_for(lambda: any(st.failed() for st in states), 60, interval=0.02,
                         what="a write to fail once the log reaches RLIMIT_FSIZE")
        time.sleep(0.3)
        stop_writers(clients, pipes)
        clients = None
        acked = sum(len(st.acked[0]) for st in states)
        assert acked > 100, "only %d writes succeeded before the limit" % acked
        log = srv.log_since()
        errors = [ln for ln in log.splitlines() if " ERROR " in ln]
        assert any("File too large" in ln for ln in errors), \
            "no ERROR line saying why the log failed:\n%s" % log
        assert srv.alive(), "zkd exited after the failed write\n%s" % log
        seen = [st.errors for st in states]
        assert any("ConnectionLoss" in e for e in seen), \
            "no writer lost its connection with the failed batch: %s" % seen

        # Later writes are refused, not acknowledged ...
        with pytest.raises(SystemZookeeperError):
            bystander.create("/full/after", b"after")
        with pytest.raises(SystemZookeeperError):
            bystander.set("/full/before", b"changed")
        # ... a new session (a txn) is refused by closing its connection ...
        with pytest.raises((EOFError, ConnectionResetError)):
            zkwire.RawClient(srv.port, io_timeout=5.0).close()
        # ... and reads keep working.
        assert bystander.get("/full/before")[0] == b"before"
        for st in states:
            names = set(bystander.get_children(st.round_dir(0)))
            assert {"i%d" % i for i in st.acked[0]} <= names
        assert bystander.exists("/full/after") is None
    finally:
        if clients is not None:
            stop_writers(clients, pipes)
        close(bystander)
        srv.stop()

    # Without the limit, everything acknowledged is there and the refused writes are not.
    srv.fsize_limit = None
    serve(srv)
    zk = kazoo(srv)
    try:
        def fail(msg):
            raise AssertionError("after restarting without the limit: " + msg)

        verify(zk, states, 0, fail)
        assert zk.get("/full/before")[0] == b"before"
        assert zk.exists("/full/after") is None
        zk.create("/full/after", b"after the restart")
    finally:
        close(zk)
        srv.stop()
