"""Proves the server works with Apache ZooKeeper's own C client: cclient.c's checks pass, the client's SetWatches re-arms watches after a reconnect (also for changes made while it was away), and the packaged cli_mt can create, list, get, set and delete."""

import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import harness

HERE = Path(__file__).resolve().parent
HEADER = Path("/usr/include/zookeeper/zookeeper.h")
CLI_MT_CANDIDATES = ("/usr/bin/cli_mt", "/usr/lib/zookeeper/bin/cli_mt")  # Debian zookeeper-bin

# Watcher.Event.EventType / KeeperState numbers as printed by cclient agent
CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4
CONNECTED = 3


@pytest.fixture(scope="module")
def cclient(tmp_path_factory):
    if not HEADER.exists():
        pytest.skip("libzookeeper-mt-dev is not installed")
    cc = os.environ.get("CC", "cc")
    out = tmp_path_factory.mktemp("cclient") / "cclient"
    res = subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-o", str(out),
                          str(HERE / "cclient.c"), "-lzookeeper_mt"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, "cclient.c did not compile:\n%s" % res.stderr
    return str(out)


def test_c_client_basic(server, cclient, base, zk):
    res = subprocess.run([cclient, "basic", server.hosts, base], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, "cclient failed:\n%s\n%s" % (res.stdout, res.stderr)
    assert res.stdout.strip().endswith("OK")
    assert zk.exists(base) is None            # it cleaned up after itself


class Agent:
    """`cclient agent` as a subprocess; its stdout lines land in a queue."""

    def __init__(self, binary, hosts, specs, log_path):
        self.log_path = log_path
        with open(log_path, "wb") as err:
            self.proc = subprocess.Popen([binary, "agent", hosts] + specs, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def next_matching(self, pred, timeout=15.0, what="line"):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("agent never printed %s; saw %r; stderr:\n%s"
                                     % (what, self.seen, self.stderr()))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if pred(line):
                return line

    def events(self, n, timeout=15.0):
        got = set()
        while len(got) < n:
            line = self.next_matching(lambda l: l.startswith("EVENT "), timeout,
                                      "%d events (have %r)" % (n, got))
            _, typ, path = line.split(" ", 2)
            got.add((int(typ), path))
        return got

    def quiet(self, seconds):
        """Lines printed in the next `seconds` that are events."""
        end = time.monotonic() + seconds
        extra = []
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith("EVENT "):
                extra.append(line)
        return extra

    def stderr(self):
        try:
            return Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def finish(self):
        """Ask the agent to quit; return the session id it had at the end."""
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        line = self.next_matching(lambda l: l.startswith("SESSION_ID "), what="SESSION_ID")
        assert self.proc.wait(timeout=10) == 0, self.stderr()
        return line.split()[1]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def agent_factory(cclient, tmp_path):
    agents = []

    def make(hosts, specs):
        a = Agent(cclient, hosts, specs, tmp_path / ("agent%d.stderr" % len(agents)))
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.stop()


def _setup_nodes(zk, base):
    zk.create(base, b"d0")
    zk.create(base + "/dir")
    zk.create(base + "/gone")
    return ["d:" + base, "e:" + base + "/absent", "c:" + base + "/dir", "d:" + base + "/gone"]


def _expected(base):
    return {(CHANGED, base), (CREATED, base + "/absent"), (CHILD, base + "/dir"),
            (DELETED, base + "/gone")}


def _change_all(zk, base):
    zk.set(base, b"d1")
    zk.create(base + "/absent")
    zk.create(base + "/dir/kid")
    zk.delete(base + "/gone")


def _wait_reconnected(agent, proxy):
    agent.next_matching(lambda l: l == "SESSION %d" % CONNECTED, what="reconnect")
    # The proxy counts a connection in its own thread, possibly just after forwarding it.
    harness.wait_for(lambda: proxy.accepted >= 2, 5, what="the reconnect through the proxy")


def test_c_client_rearms_watches_after_reconnect(server, zk, proxy, agent_factory, base):
    agent = agent_factory(proxy.hosts, _setup_nodes(zk, base))
    sid = agent.next_matching(lambda l: l.startswith("WATCHING "), what="WATCHING").split()[1]
    proxy.drop()
    _wait_reconnected(agent, proxy)
    assert agent.quiet(0.3) == []             # nothing changed, nothing fires
    _change_all(zk, base)
    assert agent.events(4) == _expected(base)
    zk.set(base, b"d2")                       # one-shot: not re-armed by the C client
    assert agent.quiet(0.5) == []
    assert agent.finish() == sid              # same session throughout


def test_c_client_sees_changes_made_while_disconnected(server, zk, proxy, agent_factory, base):
    agent = agent_factory(proxy.hosts, _setup_nodes(zk, base))
    agent.next_matching(lambda l: l.startswith("WATCHING "), what="WATCHING")
    proxy.accepting = False
    proxy.drop()
    _change_all(zk, base)                     # the client's old watches were dropped with
    proxy.accepting = True                    # its connection; SetWatches must report these
    _wait_reconnected(agent, proxy)
    assert agent.events(4) == _expected(base)


def _cli_mt():
    for p in CLI_MT_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("cli_mt")


def run_cli(hosts, command):
    cli = _cli_mt()
    res = subprocess.run([cli, "-h", hosts, "-c", command], capture_output=True, text=True,
                         timeout=20, stdin=subprocess.DEVNULL)
    return res.stdout + res.stderr


def test_cli_mt(server, zk, base):
    if _cli_mt() is None:
        pytest.skip("cli_mt not installed (Debian package zookeeper-bin)")
    out = run_cli(server.hosts, "create %s" % base)
    assert "[%s]: rc = 0" % base in out and "name = %s" % base in out
    out = run_cli(server.hosts, "create +s %s/s-" % base)
    assert "name = %s/s-0000000000" % base in out
    out = run_cli(server.hosts, "ls %s" % base)
    assert "%s: rc = 0" % base in out and "\ts-0000000000" in out
    assert zk.get(base)[0] == b"new"          # cli_mt's create stores the word "new"
    out = run_cli(server.hosts, "set %s hello" % base)
    assert "%s: rc = 0" % base in out
    out = run_cli(server.hosts, "get %s" % base)
    assert "value_len = 5" in out and "\nhello\n" in out and "version=1" in out
    out = run_cli(server.hosts, "delete %s" % base)
    assert "%s: rc = -111" % base in out      # ZNOTEMPTY
    out = run_cli(server.hosts, "create %s/a/b" % base)
    assert "rc = -101" in out                 # ZNONODE
    assert set(zk.get_children(base)) == {"s-0000000000"}
