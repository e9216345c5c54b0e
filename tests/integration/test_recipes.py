"""Proves kazoo's Lock and Election recipes work across separate client processes: the lock excludes, and exactly one leader holds office at a time with a successor taking over when it leaves or dies."""

import os
import subprocess
import threading
from pathlib import Path

import pytest

from harness import wait_for

WORKER = str(Path(__file__).resolve().parent / "recipe_worker.py")
PYTHON = "/usr/bin/python3"


class Worker:
    """One recipe_worker.py process; its stdout lines are collected as (event, name, t)."""

    def __init__(self, args, log_dir, name):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.stderr_path = Path(log_dir) / ("%s.stderr" % name)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([PYTHON, WORKER] + args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3:
                with self.cond:
                    self.lines.append((parts[0], parts[1], float(parts[2])))
                    self.cond.notify_all()

    def events(self, kind=None):
        with self.cond:
            return [e for e in self.lines if kind is None or e[0] == kind]

    def wait(self, kind, timeout=20.0):
        with self.cond:
            ok = self.cond.wait_for(lambda: any(e[0] == kind for e in self.lines), timeout)
        assert ok, "%s never said %s; stderr:\n%s" % (self.name, kind, self.stderr())
        return next(e for e in self.events(kind))

    def has(self, kind):
        return bool(self.events(kind))

    def tell(self, text="go\n"):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def finish(self, timeout=20.0):
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, "%s exited %d; stderr:\n%s" % (self.name, rc, self.stderr())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path):
    started = []

    def spawn(args, name):
        w = Worker(args, tmp_path, name)
        started.append(w)
        return w

    yield spawn
    for w in started:
        w.kill()


def test_lock_excludes_across_processes(server, zk, base, tmp_path, workers):
    iterations = 25
    counter = tmp_path / "counter"
    counter.write_text("0\n")
    lock_path = base + "/lock"
    ws = [workers(["lock", server.hosts, lock_path, str(counter), str(iterations), n], n)
          for n in ("w1", "w2")]
    for w in ws:
        w.wait("READY")
    for w in ws:
        w.tell()
    for w in ws:
        w.finish(timeout=45)
    assert int(counter.read_text()) == 2 * iterations, "lost updates: the lock did not exclude"

    intervals = []
    for w in ws:
        enters = [e[2] for e in w.events("ENTER")]
        exits = [e[2] for e in w.events("EXIT")]
        assert len(enters) == len(exits) == iterations
        intervals += [(a, b, w.name) for a, b in zip(enters, exits)]
    intervals.sort()
    for (a0, b0, n0), (a1, b1, n1) in zip(intervals, intervals[1:]):
        assert b0 <= a1, "%s held the lock until %.6f but %s entered at %.6f" % (n0, b0, n1, a1)
    switches = sum(1 for x, y in zip(intervals, intervals[1:]) if x[2] != y[2])
    assert switches >= 2, "the workers never contended; the test proved nothing"
    assert zk.get_children(lock_path) == []       # every lock node was removed


def test_election_one_leader_and_clean_handover(server, zk, base, workers):
    path = base + "/election"
    w1 = workers(["election", server.hosts, path, "p1", "10"], "p1")
    w1.wait("LEADER")
    w2 = workers(["election", server.hosts, path, "p2", "10"], "p2")
    w2.wait("READY")
    contenders = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(
        zk.Election(path).contenders()), 10, what="p2 to join the election")
    assert contenders == ["p1", "p2"]
    # p2 must stay a follower while p1 leads; give it time to get it wrong
    threading.Event().wait(1.0)
    assert not w2.has("LEADER"), "two leaders at once"

    w1.tell()
    _, _, resigned_at = w1.wait("RESIGN")
    _, _, p2_at = w2.wait("LEADER")
    assert p2_at >= resigned_at
    w1.finish()
    assert zk.Election(path).contenders() == ["p2"]
    w2.tell()
    w2.finish()
    assert zk.Election(path).contenders() == []


def test_election_successor_when_leader_dies(server, zk, base, workers):
    """A killed leader holds office until its session expires (timeout 4 s = 2*tickTime floor)."""
    path = base + "/election"
    w1 = workers(["election", server.hosts, path, "k1", "4"], "k1")
    w1.wait("LEADER")
    w2 = workers(["election", server.hosts, path, "k2", "4"], "k2")
    w2.wait("READY")
    wait_for(lambda: len(zk.Election(path).contenders()) == 2, 10, what="k2 to join")
    threading.Event().wait(0.5)
    assert not w2.has("LEADER")
    w1.kill()
    assert zk.Election(path).contenders()[0] == "k1"   # its session is still alive
    w2.wait("LEADER", timeout=30)
    assert not w1.has("RESIGN")
    assert zk.Election(path).contenders() == ["k2"]
    w2.tell()
    w2.finish()
