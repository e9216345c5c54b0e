"""The election driver (net/election.c) over real sockets: elect_main processes on loopback.

Proves: 3 and 5 servers agree on one leader (the highest sid when zxids are equal, the
highest zxid otherwise); after the leader is SIGKILLed the others elect a new one (the time is
printed); a restarted server joins the established ensemble as a follower even with a better
vote (the out-of-election path); an observer learns the leader and never leads; a SIGSTOPped
server blocks no one and joins after SIGCONT; garbage on an election port (random bytes, bad
initial messages, an unknown or our own sid, a huge frame length, silence past cnxTimeout)
closes that connection while short notifications are ignored, and the election still
completes; five servers under churn (random kills, restarts, stops; ZKD_ELECT_CHURN_S
seconds, 4 by default, 300 in `make test-long`) always settle on one live leader once ZAB's
reactions are modelled; and the driver, beside two Apache ZooKeeper 3.8 servers, decides what
they decide (as participant or observer, starting together or joining late), and Apache
follows it when it has the best vote.

zkd's own thing (elect_main is not a ZooKeeper server), so it runs whatever ZK_TARGET says.
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from harness import HOST, REPO, server_mode

LOOKING, FOLLOWING, LEADING, OBSERVING = "LOOKING", "FOLLOWING", "LEADING", "OBSERVING"
JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-simple.jar"]


@pytest.fixture(scope="module")
def elect_bin():
    path = os.environ.get("ELECT_BIN") or str(REPO / "build" / "elect_main")
    if not os.path.exists(path):
        subprocess.run(["make", "-s", "build/elect_main"], cwd=REPO, check=True)
    return path


def quiet_ports(n):
    """n distinct ports that bind on every address now, from below the kernel's ephemeral
    range: our own dials (and everyone else's) take source ports from that range, which
    can make a later bind of a free_port() fail."""
    rnd, ports = random.Random(), set()
    while len(ports) < n:
        port = rnd.randrange(12000, 30000)
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            try:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", port))
            except OSError:
                continue
        ports.add(port)
    return sorted(ports)


class Cluster:
    """server.1..n on free loopback ports; each runs elect_main (or Apache, for interop)."""

    def __init__(self, workdir, binary, n, observers=(), extra=""):
        self.workdir, self.binary, self.extra = workdir, binary, extra
        self.observers = set(observers)
        ports = quiet_ports(3 * n)
        self.ports = {sid: tuple(ports[3 * sid - 3:3 * sid]) for sid in range(1, n + 1)}
        self.procs = {}
        self.outs = {}

    def server_lines(self):
        return "".join("server.%d=%s:%d:%d%s;%s:%d\n"
                       % (sid, HOST, q, e, ":observer" if sid in self.observers else "", HOST, c)
                       for sid, (q, e, c) in sorted(self.ports.items()))

    def write_cfg(self, sid, apache=False):
        d = self.workdir / ("s%d" % sid)
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "data" / "myid").write_text("%d\n" % sid)
        extra = "admin.enableServer=false\n4lw.commands.whitelist=*\n" if apache else self.extra
        (d / "zoo.cfg").write_text("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\n%s%s"
                                   % (d / "data", extra, self.server_lines()))
        return d

    def start(self, sid, zxid=0, epoch=0):
        d = self.write_cfg(sid)
        out = d / ("out.%d" % len([p for p in d.iterdir() if p.name.startswith("out.")]))
        self.outs[sid] = out
        with open(out, "wb") as o, open(d / "err", "ab") as err:
            self.procs[sid] = subprocess.Popen(
                [self.binary, "--zxid", str(zxid), "--epoch", str(epoch), str(d / "zoo.cfg")],
                stdin=subprocess.DEVNULL, stdout=o, stderr=err, start_new_session=True)
        proc = self.procs[sid]
        wait(lambda: any(l.get("ready") for l in self.lines(sid)) or proc.poll() is not None,
             10, "sid %d ready" % sid, self)
        assert proc.poll() is None, "sid %d exited %s:\n%s" % (sid, proc.returncode, self.err(sid))

    def start_apache(self, sid, level="warn"):
        d = self.write_cfg(sid, apache=True)
        log = open(d / "err", "ab")
        self.procs[sid] = subprocess.Popen(
            ["java", "-Xmx128m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=" + level,
             "-cp", ":".join(JARS), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             str(d / "zoo.cfg")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def mode(self, sid):
        return server_mode(self.ports[sid][2])

    def lines(self, sid):
        try:
            text = self.outs[sid].read_text()
        except (OSError, KeyError):
            return []
        return [json.loads(l) for l in text.splitlines() if l.endswith("}")]

    def decisions(self, sid):
        return [l for l in self.lines(sid) if "state" in l]

    def last(self, sid):
        d = self.decisions(sid)
        return d[-1] if d else None

    def signal(self, sid, sig):
        self.procs[sid].send_signal(sig)

    def kill(self, sid):
        p = self.procs.pop(sid)
        p.kill()
        p.wait()

    def err(self, sid):
        try:
            return (self.workdir / ("s%d" % sid) / "err").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for sid, p in list(self.procs.items()):
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            assert rc in (0, -signal.SIGTERM, 143), "sid %d exited %s:\n%s" % (sid, rc, self.err(sid))
        self.procs = {}

    def check_health(self):
        for sid in self.ports:
            log = self.err(sid)
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "assertion failed"):
                assert marker not in log, "sid %d: %s" % (sid, log[-3000:])


def wait(pred, timeout, what, cluster=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    detail = ""
    if cluster:
        detail = "\n".join("sid %d: %s\n%s" % (s, cluster.lines(s), cluster.err(s)[-1500:])
                           for s in cluster.ports)
    raise AssertionError("timed out after %ss waiting for %s\n%s" % (timeout, what, detail))


@pytest.fixture
def cluster_factory(tmp_path, elect_bin):
    made = []

    def make(n, **kw):
        c = Cluster(tmp_path / ("c%d" % len(made)), elect_bin, n, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()
        c.check_health()


def agreed(cluster, sids, n=1):
    """Every sid has made its n-th decision, and they name one leader: that leader's sid."""
    def done():
        last = [cluster.last(s) for s in sids]
        if any(l is None or l["n"] < n for l in last):
            return None
        leaders = {l["leader"] for l in last}
        return leaders.pop() if len(leaders) == 1 else None
    return done


def check_roles(cluster, sids, leader):
    for s in sids:
        l = cluster.last(s)
        want = LEADING if s == leader else OBSERVING if s in cluster.observers else FOLLOWING
        assert l["state"] == want, (s, l)


def test_three_agree_on_the_highest_sid(cluster_factory):
    c = cluster_factory(3)
    for sid in (1, 2, 3):
        c.start(sid)
    leader = wait(agreed(c, (1, 2, 3)), 10, "agreement", c)
    assert leader == 3
    check_roles(c, (1, 2, 3), 3)
    assert len({c.last(s)["election_epoch"] for s in (1, 2, 3)}) == 1


def test_five_agree_on_the_highest_zxid(cluster_factory):
    c = cluster_factory(5, extra="quorumListenOnAllIPs=true\n")  # election ports on every address
    zxids = {1: 5, 2: 9, 3: 7, 4: 9 - 1, 5: 3}
    for sid in (5, 4, 3, 2, 1):
        c.start(sid, zxid=(1 << 32) | zxids[sid], epoch=1)
    leader = wait(agreed(c, range(1, 6)), 15, "agreement", c)
    assert leader == 2
    check_roles(c, range(1, 6), 2)
    assert c.last(1)["zxid"] == (1 << 32) | 9 and c.last(1)["peer_epoch"] == 1


def test_leader_killed_then_restarted_joins_as_follower(cluster_factory):
    c = cluster_factory(3)
    for sid in (1, 2, 3):
        c.start(sid)
    assert wait(agreed(c, (1, 2, 3)), 10, "agreement", c) == 3
    c.kill(3)
    t0 = time.monotonic()
    for sid in (1, 2):  # what ZAB does when its leader is gone
        c.signal(sid, signal.SIGUSR1)
    assert wait(agreed(c, (1, 2), n=2), 10, "re-election", c) == 2
    took = time.monotonic() - t0
    print("\nre-election after SIGKILL of the leader: %.3f s (driver says %s ms)"
          % (took, [c.last(s)["ms"] for s in (1, 2)]))
    assert took < 5
    check_roles(c, (1, 2), 2)
    # Restart 3 with a better vote than anyone's: the established leader still wins.
    c.start(3, zxid=(5 << 32) | 1, epoch=5)
    wait(lambda: c.last(3), 10, "sid 3 decides", c)
    assert c.last(3)["state"] == FOLLOWING and c.last(3)["leader"] == 2, c.last(3)
    assert c.last(1)["n"] == 2 and c.last(2)["n"] == 2, "the others did not elect again"


def test_observer_learns_the_leader_and_never_leads(cluster_factory):
    c = cluster_factory(4, observers={4})
    c.start(4, zxid=(9 << 32) | 9, epoch=9)  # the best vote, but an observer's
    for sid in (1, 2, 3):
        c.start(sid)
    leader = wait(agreed(c, (1, 2, 3, 4)), 10, "agreement", c)
    assert leader == 3
    check_roles(c, (1, 2, 3, 4), 3)
    # It learns again after the leader goes. While the voters are still LOOKING they answer
    # an observer with their last decided vote (Apache's WorkerReceiver does: currentVote),
    # so it may first settle on the dead leader; like ZAB it then finds no leader there and
    # looks again, until it hears the new one.
    seen = [c.last(4)["n"]]
    c.kill(3)
    for sid in (1, 2, 4):
        c.signal(sid, signal.SIGUSR1)
    assert wait(agreed(c, (1, 2), n=2), 10, "re-election", c) == 2

    def observer_follows_2():
        last = c.last(4)
        if last["leader"] == 2:
            return True
        if last["n"] > seen[0]:  # decided on the dead leader: ZAB would go LOOKING again
            seen[0] = last["n"]
            c.signal(4, signal.SIGUSR1)
        return False
    wait(observer_follows_2, 10, "the observer learns leader 2", c)
    assert all(d["state"] == OBSERVING for d in c.decisions(4))


def test_stopped_peer_blocks_no_one(cluster_factory):
    c = cluster_factory(3)
    c.start(1)
    c.signal(1, signal.SIGSTOP)
    t0 = time.monotonic()
    c.start(2)
    c.start(3)
    assert wait(agreed(c, (2, 3)), 10, "agreement without 1", c) == 3
    assert time.monotonic() - t0 < 5
    time.sleep(0.5)  # FLE resends to the stopped one; nothing may pile up or stall
    c.signal(1, signal.SIGCONT)
    assert wait(agreed(c, (1, 2, 3)), 10, "1 joins", c) == 3
    assert c.last(1)["state"] == FOLLOWING
    assert c.last(2)["n"] == 1 and c.last(3)["n"] == 1


def initial(sid, addr, version=-65535):
    a = addr.encode()
    return struct.pack(">qqi", version, sid, len(a)) + a


def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_garbage_on_the_election_port(cluster_factory):
    c = cluster_factory(3, extra="cnxTimeout=1000\n")
    c.start(1)
    port = c.ports[1][1]
    rnd = random.Random(5)
    me = "%s:%d" % (HOST, port)
    bad = {
        "random bytes": bytes(rnd.randrange(256) for _ in range(3000)),
        "bad version": struct.pack(">qqi", -7, 3, 4) + b"a:12",
        "bad address": initial(3, "no-port-here"),
        "address too long": struct.pack(">qqi", -65535, 3, 5000) + b"x" * 5000,
        "unknown sid": initial(99, "127.0.0.1:1"),
        "our own sid": initial(1, me),
        "huge frame": initial(3, "127.0.0.1:1") + struct.pack(">i", 1 << 30),
        "zero frame": initial(2, "127.0.0.1:1") + struct.pack(">i", 0),
    }
    silent = socket.create_connection((HOST, port))  # says nothing: cnxTimeout closes it
    socks = {}
    short = None
    try:
        for what, data in bad.items():
            s = socket.create_connection((HOST, port))
            s.sendall(data)
            socks[what] = s
        for what, s in socks.items():
            assert closed_by_peer(s, 5), "%s: not closed" % what
        # A sid 3 that sends a notification too short to read: ignored, the connection stays.
        short = socket.create_connection((HOST, port))
        short.sendall(initial(3, "127.0.0.1:1") + struct.pack(">i", 10) + b"\0" * 10)
        assert not closed_by_peer(short, 0.5), "a short notification closed the connection"
        assert closed_by_peer(silent, 5), "a silent connection outlived cnxTimeout"
    finally:
        for s in list(socks.values()) + [silent, short]:
            if s:
                s.close()
    log = c.err(1)
    for why in ("bad initial message", "not a server.N line", "which is ours", "frame length",
                "no initial message"):
        assert why in log, "no log line for %r:\n%s" % (why, log[-3000:])
    c.start(2)
    c.start(3)
    assert wait(agreed(c, (1, 2, 3)), 10, "agreement after the garbage", c) == 3
    assert c.procs[1].poll() is None


def test_flood_of_connections_is_bounded(cluster_factory):
    c = cluster_factory(3, extra="cnxTimeout=2000\n")
    c.start(1)
    port = c.ports[1][1]
    socks = [socket.create_connection((HOST, port)) for _ in range(60)]
    try:
        time.sleep(0.3)
        closed = sum(closed_by_peer(s, 0.05) for s in socks)
        assert closed >= 60 - 16, "more than 16 silent connections were kept (%d closed)" % closed
        c.start(2)
        c.start(3)
        assert wait(agreed(c, (1, 2, 3)), 10, "agreement beside the flood", c) == 3
    finally:
        for s in socks:
            s.close()


class ZabModel:
    """What ZAB does with each decision, so that FLE's legitimate split outcomes settle: a
    follower whose leader is not LEADING, or a leader without a quorum following it, goes
    LOOKING again after a while (a leader takes its followers with it)."""

    def __init__(self, cluster, alive, quorum):
        self.c, self.alive, self.quorum = cluster, alive, quorum
        self.since = {}
        self.looks = {}   # sid -> elections it must have started (its "looking" lines)
        self.nudges = 0

    def state(self, sid):
        ls = [l for l in self.c.lines(sid) if "state" in l or "looking" in l]
        if sum(1 for l in ls if "looking" in l) < self.looks.get(sid, 1):
            return None  # the signal is not handled yet: what it says is stale
        return dict(ls[-1], state=LOOKING) if "looking" in ls[-1] else ls[-1]

    def restart(self, sids, nudge=False):
        for s in sids:
            self.nudges += nudge
            self.looks[s] = sum(1 for l in self.c.lines(s) if "looking" in l) + 1
            self.c.signal(s, signal.SIGUSR1)

    def settled(self):
        """One leader, all others follow it; else nudge the stuck ones and return None."""
        last = {s: self.state(s) for s in self.alive}
        if any(l is None for l in last.values()):
            return None
        leaders = {s for s, l in last.items() if l["state"] == LEADING}
        now = time.monotonic()
        for s, l in last.items():
            if l["state"] == LOOKING:
                continue
            if l["state"] == LEADING:
                group = [x for x, y in last.items() if y["state"] != LOOKING and y["leader"] == s]
                ok = len(group) >= self.quorum
            else:
                group, ok = [s], l["leader"] in leaders
            if not ok and now - self.since.setdefault((s, l["n"]), now) > 0.6:
                self.restart(group, nudge=True)
                return None
        if len(leaders) != 1 or any(l["state"] == LOOKING for l in last.values()):
            return None
        return leaders.pop() if all(l["leader"] in leaders for l in last.values()) else None


CHURN_S = float(os.environ.get("ZKD_ELECT_CHURN_S", "4"))


@pytest.mark.timeout(int(CHURN_S) + 60)
def test_churn(cluster_factory):
    """Kill, restart and stop random servers of five for ZKD_ELECT_CHURN_S seconds (default
    4); after each change every live one looks again: they always settle on one live leader."""
    seconds = CHURN_S
    rnd = random.Random(int(os.environ.get("ZKD_ELECT_CHURN_SEED", "1")))
    c = cluster_factory(5, extra="cnxTimeout=1000\n")
    alive = set()
    for sid in range(1, 6):
        c.start(sid, zxid=rnd.randrange(3))
        alive.add(sid)
    model = ZabModel(c, alive, 3)
    end, times = time.monotonic() + seconds, []
    while time.monotonic() < end:
        op = rnd.random()
        if op < 0.3 and len(alive) > 3:
            sid = rnd.choice(sorted(alive))
            c.kill(sid)
            alive.discard(sid)
        elif op < 0.6 and len(alive) < 5:
            sid = rnd.choice(sorted(set(range(1, 6)) - alive))
            c.start(sid, zxid=rnd.randrange(3))
            alive.add(sid)
        elif op < 0.7:
            sid = rnd.choice(sorted(alive))
            c.signal(sid, signal.SIGSTOP)
            time.sleep(rnd.random() * 0.5)
            c.signal(sid, signal.SIGCONT)
        t0 = time.monotonic()
        model.restart(sorted(alive))
        leader = wait(model.settled, 20, "one leader among %s" % sorted(alive), c)
        assert leader in alive
        times.append(time.monotonic() - t0)
    print("\nchurn: %d rounds, settled in mean %.3f s, max %.3f s; %d nudges"
          % (len(times), sum(times) / len(times), max(times), model.nudges))


apache = pytest.mark.skipif(not all(os.path.exists(j) for j in JARS) or not shutil.which("java"),
                            reason="needs Apache ZooKeeper's jars and java")


@apache
@pytest.mark.parametrize("observer", [False, True], ids=["participant", "observer"])
def test_interop_with_two_apache_servers(cluster_factory, observer):
    """Our driver is server 1, Apache 3.8 runs 2 and 3: all decide one leader; then ours
    restarts with a better vote and joins the Apache leader (as a follower or observer)."""
    c = cluster_factory(3, observers={1} if observer else ())
    want = OBSERVING if observer else FOLLOWING
    c.start(1)
    c.start_apache(2)
    c.start_apache(3)

    def apache_formed():
        modes = {s: c.mode(s) for s in (2, 3)}
        if sorted(modes.values(), key=str) == ["follower", "leader"]:
            return next(s for s, m in modes.items() if m == "leader")
        return None
    leader = wait(apache_formed, 40, "Apache forms an ensemble", c)
    wait(lambda: c.last(1), 10, "our decision", c)
    assert c.last(1)["state"] == want and c.last(1)["leader"] == leader, (c.last(1), leader)
    c.kill(1)
    c.start(1, zxid=(7 << 32) | 5, epoch=7)
    wait(lambda: c.last(1), 15, "our late decision", c)
    assert c.last(1)["state"] == want and c.last(1)["leader"] == leader, (c.last(1), leader)
    assert c.mode(leader) == "leader"
    print("\ninterop: Apache leader %d; ours decided %s" % (leader, c.decisions(1)))


@apache
def test_interop_apache_follows_our_driver(cluster_factory):
    """Our driver is server 3 (the best vote), Apache runs 1 and 2: ours decides LEADING and
    both Apache servers decide to follow it (they then find no ZAB leader on its quorum port,
    which is the lead's part, not the election's)."""
    c = cluster_factory(3)
    c.start(3)
    c.start_apache(1, level="info")
    c.start_apache(2, level="info")
    wait(lambda: c.last(3), 40, "our decision", c)
    assert c.last(3)["state"] == LEADING, c.last(3)

    def apache_followed():
        return all("QuorumPeer - FOLLOWING" in c.err(s) and "n.sid:3, n.state:" in c.err(s)
                   and "n.leader:3" in c.err(s) for s in (1, 2))
    wait(apache_followed, 20, "Apache follows sid 3", c)
    for s in (1, 2):
        assert "QuorumPeer - LEADING" not in c.err(s), s
