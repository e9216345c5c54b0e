"""Proves an ensemble survives the failures issue 5 lists, with no acknowledged write lost.

Each scenario starts its own 3- or 5-server ensemble on loopback (zkd, or Apache ZooKeeper 3.8
with ZK_TARGET=apache), writes through a multi-host kazoo client that records every
acknowledged write, breaks servers (SIGKILL, SIGSTOP past syncLimit, a majority down, stale
leaders with proposals no one else logged, observers down), and ends with the checker: through
every server, after sync, every acknowledged write is there and all trees are identical, Stats
included.  Failover times are printed as "new leader serving writes after X.XX s" and summed
up at the end of the module.  ENSEMBLE_REPEAT=n runs every scenario n times (`make
ensemble-long`: 10).  A failed scenario's directories (configs, logs, data; Apache servers
add a thread dump) are moved to $ENSEMBLE_KEEP_DIR (default /tmp/zkd-ensemble-failures).
Against zkd the module skips itself while zkd cannot run an ensemble.
"""

import functools
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import ensemble as E
from harness import target, wait_for

# kazoo 2.8's Lock calls Event.isSet(), deprecated since Python 3.10.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPEAT = max(1, int(os.environ.get("ENSEMBLE_REPEAT", "1")))
REPS = pytest.mark.parametrize("rep", range(REPEAT))
TIMINGS = {}            # what -> [seconds]

# What a learner logs when the leader synchronises it, by target.  zkd logs a SNAP and a
# TRUNC but not a DIFF: for zkd a resync that logged neither was a DIFF.
SYNC_LOG = {"apache": {"DIFF": "Getting a diff from the leader",
                       "SNAP": "Getting a snapshot from leader",
                       "TRUNC": "Truncating log to get in sync with the leader"},
            "zkd": {"SNAP": "installed the leader's snapshot",
                    "TRUNC": "the leader truncated our log"}}


@pytest.fixture(scope="module")
def kind(request, tmp_path_factory):
    k = target()
    if k == "zkd":
        reason = E.probe_zkd_ensemble(tmp_path_factory.mktemp("probe"))
        if reason:
            pytest.skip(reason)
    elif not (shutil.which("java") and all(os.path.exists(j) for j in E.APACHE_JARS)):
        pytest.skip("needs java and Apache ZooKeeper's jars")
    yield k
    if TIMINGS:
        lines = ["", "ensemble failover times (%s, %d run%s):" % (k, REPEAT, "s" * (REPEAT > 1))]
        for what, ts in TIMINGS.items():
            lines.append("  %-42s n=%-3d min %.2f s  median %.2f s  max %.2f s"
                         % (what, len(ts), min(ts), sorted(ts)[len(ts) // 2], max(ts)))
        # Past the capture, so the figures show under -q as well.
        capman = request.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled():
            print("\n".join(lines), flush=True)


@pytest.fixture
def make_ensemble(kind, tmp_path):
    """make(**Ensemble kwargs) -> a not yet started Ensemble; every one is killed at the end.
    The servers' directories and logs are kept when the test fails, removed when it passes."""
    made = []

    def make(**kw):
        e = E.Ensemble(tmp_path / ("ens%d" % len(made)), kind=kind, **kw)
        made.append(e)
        return e

    make.made = made
    make.failed = False         # set by @scenario
    yield make
    for e in made:
        e.close()
    problems = _server_health(made)
    assert not problems, problems
    if not make.failed:
        for e in made:
            E.remove_workdir(e.workdir)


def _server_health(ensembles):
    """Servers that died on their own, or (zkd) logged a sanitizer report or failed assertion."""
    out = []
    for e in ensembles:
        for sid, rc in e.exited_badly().items():
            out.append("server %d exited with status %s:\n%s" % (sid, rc, e.log_tail(sid)))
        if e.kind != "zkd":
            continue
        for sid in e.sids:
            log = e.log_text(sid)
            for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                           "assertion failed"):
                if marker in log:
                    out.append("server %d log has %r:\n%s" % (sid, marker, e.log_tail(sid, 80)))
    return "\n".join(out)


KEEP_DIR = Path(os.environ.get("ENSEMBLE_KEEP_DIR", "/tmp/zkd-ensemble-failures"))


def scenario(fn):
    """On failure: how the servers' trees differ, thread dumps from Apache servers that still
    run, each ensemble's directory (configs, logs, data) moved to KEEP_DIR (pytest's own tmp
    dirs are pruned by any other pytest run), and their log tails printed (pytest shows a
    failed test's stdout)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException:
            make = kwargs["make_ensemble"]
            make.failed = True
            for e in make.made:
                modes = e.modes()
                print("trees at failure:\n%s" % E.tree_differences(e))
                e.thread_dumps()
                e.close()
                kept = KEEP_DIR / ("%s-%s-%s" % (fn.__name__, time.strftime("%H%M%S"),
                                                 e.workdir.name))
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(e.workdir), str(kept))
                e.workdir = kept
                print("ensemble kept in %s; modes at failure %s" % (kept, modes))
                print(e.log_tails(60))
            raise
    return run


def timing(what, seconds):
    TIMINGS.setdefault(what, []).append(seconds)
    print("%s: new leader serving writes after %.2f s" % (what, seconds))


def sync_kinds(e, sid, offset=0):
    """The synchronisations (DIFF/SNAP/TRUNC) sid's log reports after byte `offset`."""
    words = SYNC_LOG[e.kind]
    text = e.log_text(sid)[offset:]
    return [k for line in text.splitlines() for k, w in words.items() if w in line]


def expect_sync(e, sid, offset, want):
    """Assert that sid's first synchronisation logged after `offset` was `want`."""
    kinds = sync_kinds(e, sid, offset)
    if want not in SYNC_LOG[e.kind]:
        assert not kinds, "server %d: %s expected, log shows %s" % (sid, want, kinds)
    else:
        assert kinds and kinds[0] == want, "server %d: %s expected, log shows %s" % (sid, want, kinds)


def log_size(e, sid):
    return len(e.log_text(sid))


def merged(*dicts):
    out = {}
    for d in dicts:
        out.update(d)
    return out


def wait_mode(e, sid, want, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        m = e.mode(sid)
        if m == want:
            return
        if time.monotonic() >= deadline:
            raise AssertionError("server %d is %r, not %r, after %.0fs" % (sid, m, want, timeout))
        time.sleep(0.1)


def assert_no_writes_after(rec, t0, e, hold_s):
    """Once no server serves (within a few seconds of losing the quorum), for hold_s seconds
    still none serves; and no write sent after t0 is ever acknowledged meanwhile."""
    deadline = time.monotonic() + 10.0
    while any(m is not None for m in e.modes().values()):
        assert time.monotonic() < deadline, "servers still serve without a quorum: %s" % e.modes()
        time.sleep(0.1)
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        late = rec.sent_after(t0)
        assert not late, "writes acknowledged without a quorum: %s" % late[:5]
        serving = {s: m for s, m in e.modes().items() if m is not None}
        assert not serving, "servers serve without a quorum: %s" % serving
        time.sleep(0.2)


def writing_ensemble(make_ensemble, **kw):
    """A started ensemble, its leader, and a recorder writing through every server that has
    50 acknowledged writes already."""
    e = make_ensemble(**kw)
    leader = e.start_all()
    rec = E.WriteRecorder(e.connect_string()).start()
    E.wait_writes(rec, 50)
    return e, leader, rec


def lose_quorum_then_restore(e, rec, victims, down, what):
    """Kill victims, leaving no quorum: soon nothing serves and no write sent afterwards is
    acknowledged.  Restart every server in `down`: a leader serves writes again (timed as
    `what`) and the recorder's writes flow.  Returns the path the probe wrote."""
    t0 = time.monotonic()
    for v in victims:
        e.kill(v)
    assert_no_writes_after(rec, t0 + 0.2, e, 3.0)
    t1 = time.monotonic()
    for v in down:
        e.start(v)
    _, probe, dt = E.probe_write(e, e.sids, t1)
    timing(what, dt)
    e.wait_serving(e.sids)
    E.wait_writes(rec, 30, after=time.monotonic())
    return probe


def async_creates(client, paths):
    return [client.create_async(p, b"must-not-survive") for p in paths]


def assert_all_failed(results, timeout=30.0):
    for r in results:
        r.wait(timeout)
        assert r.ready(), "a write to a stale leader neither failed nor succeeded"
        assert not r.successful(), "a stale leader acknowledged %r" % (r.value,)


def logged_paths(e, sid, prefix):
    """Paths under prefix in sid's txn logs (read by `zkd dump-log`), or None without zkd."""
    zkd = E.zkd_binary()
    if not (zkd.is_file() and os.access(zkd, os.X_OK)):
        return None
    found = set()
    for log in sorted((e.data_dir(sid) / "version-2").glob("log.*")):
        out = subprocess.run([str(zkd), "dump-log", str(log)], capture_output=True, text=True,
                             timeout=60).stdout
        for line in out.splitlines():
            for word in line.split():
                w = word.strip("'")
                if w.startswith(prefix):
                    found.add(w)
    return found


# ---- scenarios ---------------------------------------------------------------------------

@REPS
@pytest.mark.timeout(180)
@scenario
def test_sigkill_leader_new_leader_serves_old_one_rejoins(make_ensemble, rep):
    e, leader, rec = writing_ensemble(make_ensemble)
    others = e.followers(leader)
    t0 = time.monotonic()
    e.kill(leader)
    _, probe, dt = E.probe_write(e, others, t0)
    timing("SIGKILL leader (3 servers)", dt)
    new = e.wait_leader(among=others)
    assert new != leader
    E.wait_writes(rec, 30, after=time.monotonic())
    e.start(leader)
    e.wait_serving(e.sids)
    assert e.mode(leader) == "follower"
    assert e.wait_leader() == new
    E.wait_writes(rec, 30)
    rec.stop()
    E.check_ensemble(e, merged(rec.expected(), {probe: (0, b"probe")}))


@REPS
@pytest.mark.timeout(180)
@scenario
def test_lagging_follower_catches_up_by_diff(make_ensemble, rep):
    e = make_ensemble()
    leader = e.start_all()
    lag = e.followers(leader)[0]
    # The writer stays off the lagging server: a stopped server stalls its clients until
    # their read timeout.
    rec = E.WriteRecorder(e.connect_string([s for s in e.sids if s != lag]), pause=0.005).start()
    E.wait_writes(rec, 30)
    off = log_size(e, lag)
    # A client of the lagging follower alone sees it leave service when it resynchronises.
    # (Its session outlives the stop: it must not give up on the server on its own.)
    watch = E.Contender(e.connect_string([lag]), "watch", session_timeout_s=8.0)
    e.stop(lag)
    t0 = time.monotonic()
    # Twice syncLimit: the leader drops the follower, which must resynchronise; the writes
    # go on meanwhile.
    time.sleep(e.tick_ms * e.sync_limit * 2.5 / 1000.0)
    assert len(rec.sent_after(t0)) >= 20, "writes stalled without one follower: %s" % rec.summary()
    gen = watch.gen
    e.cont(lag)
    try:
        wait_for(lambda: watch.gen != gen, 15, what="the lagging follower to drop its clients")
    finally:
        E.close_client(watch.client)
    wait_mode(e, lag, "follower")
    assert e.wait_leader() == leader
    kinds = sync_kinds(e, lag, off)
    print("lagging follower %d synchronised by %s" % (lag, kinds))
    expect_sync(e, lag, off, "DIFF")
    E.wait_writes(rec, 30)
    rec.stop()
    E.check_ensemble(e, rec.expected())


@REPS
@pytest.mark.timeout(240)
@scenario
def test_far_behind_follower_catches_up_by_snapshot(make_ensemble, rep):
    # snapCount small: logs roll and snapshots are taken while the follower is away.
    # commitLogCount (both read it from zoo.cfg): how many committed txns a leader keeps to
    # sync a learner by DIFF (Apache: 500, zkd: 20000).  Apache's txn-log DIFF fallback does
    # not apply: its preallocated log files outweigh a third of the snapshot.
    e = make_ensemble(extra_cfg={"snapCount": 100, "commitLogCount": 200})
    leader = e.start_all()
    rec = E.WriteRecorder(e.connect_string(), pause=0.01).start()
    E.wait_writes(rec, 30)
    far = e.followers(leader)[0]
    e.kill(far)
    # Far more than a leader keeps for DIFF.
    c = E.kazoo_client(e.connect_string([s for s in e.sids if s != far]))
    try:
        burst = E.burst_creates(c, "/burst", 1500)
    finally:
        E.close_client(c)
    off = log_size(e, far)
    e.start(far)
    wait_mode(e, far, "follower")
    kinds = sync_kinds(e, far, off)
    print("far-behind follower %d synchronised by %s" % (far, kinds))
    expect_sync(e, far, off, "SNAP")
    E.wait_writes(rec, 30)
    rec.stop()
    n, _ = E.check_ensemble(e, merged(rec.expected(), burst))
    assert n > 1500


@REPS
@pytest.mark.parametrize("new_epoch_writes", [False, True], ids=["trunc", "writes-first"])
@pytest.mark.timeout(240)
@scenario
def test_stale_leader_uncommitted_proposals_truncated(make_ensemble, rep, new_epoch_writes):
    """The old leader logged proposals no one else has.  Rejoining before the new leader
    commits anything it must TRUNC them; rejoining after (writes-first) Apache 3.8 will not
    TRUNC across an epoch boundary and sends a SNAP instead.  Either way they vanish."""
    e = make_ensemble()
    leader = e.start_all()
    rec1 = E.WriteRecorder(e.connect_string()).start()
    E.wait_writes(rec1, 50)
    rec1.stop()
    followers = e.followers(leader)
    stale = E.kazoo_client(e.connect_string([leader]))
    # The followers stop before the proposals reach them and die before reading them: only
    # the leader's log holds these txns, and no quorum ever acknowledged them.
    for f in followers:
        e.stop(f)
    paths = ["/stale-%s-%d" % (uuid.uuid4().hex[:6], i) for i in range(20)]
    results = async_creates(stale, paths)
    time.sleep(0.5)
    e.kill(leader)
    for f in followers:
        e.kill(f)
    assert_all_failed(results)
    E.close_client(stale)
    logged = logged_paths(e, leader, "/stale-")
    print("the stale leader's log holds %s of %d uncommitted creates"
          % ("?" if logged is None else len(logged), len(paths)))
    if logged is not None:
        assert logged, "the leader logged none of the proposals: the scenario proves nothing"
        for f in followers:
            assert not logged_paths(e, f, "/stale-"), "follower %d logged them too" % f
    for f in followers:
        e.start(f)
    new = e.wait_leader(among=followers)
    rec2 = E.WriteRecorder(e.connect_string(followers))
    if new_epoch_writes:
        rec2.start()
        E.wait_writes(rec2, 50)
    off = log_size(e, leader)
    e.start(leader)
    wait_mode(e, leader, "follower")
    assert e.wait_leader() == new
    kinds = sync_kinds(e, leader, off)
    print("stale ex-leader %d synchronised by %s" % (leader, kinds))
    if not new_epoch_writes:
        expect_sync(e, leader, off, "TRUNC")
    if not new_epoch_writes:
        rec2.start()
    E.wait_writes(rec2, 30)
    rec2.stop()
    E.check_ensemble(e, merged(rec1.expected(), rec2.expected()), forbidden=paths)


@REPS
@pytest.mark.timeout(180)
@scenario
def test_sigstop_leader_past_synclimit_steps_down(make_ensemble, rep):
    e, leader, rec = writing_ensemble(make_ensemble)
    others = e.followers(leader)
    alone = E.kazoo_client(e.connect_string([leader]))
    t0 = time.monotonic()
    e.stop(leader)
    # Queued in the stopped leader's socket: it reads them when it wakes, alone.
    paths = ["/alone-%s-%d" % (uuid.uuid4().hex[:6], i) for i in range(10)]
    results = async_creates(alone, paths)
    _, probe, dt = E.probe_write(e, others, t0)
    timing("SIGSTOP leader past syncLimit (3 servers)", dt)
    new = e.wait_leader(among=others)
    E.wait_writes(rec, 30, after=time.monotonic())
    e.cont(leader)
    wait_mode(e, leader, "follower")
    assert e.wait_leader() == new
    assert_all_failed(results)
    E.close_client(alone)
    E.wait_writes(rec, 30)
    rec.stop()
    E.check_ensemble(e, merged(rec.expected(), {probe: (0, b"probe")}), forbidden=paths)


@REPS
@pytest.mark.timeout(180)
@scenario
def test_majority_killed_writes_stop_then_resume(make_ensemble, rep):
    e, leader, rec = writing_ensemble(make_ensemble)
    victims = [leader, e.followers(leader)[0]]
    probe = lose_quorum_then_restore(e, rec, victims, victims, "majority restarted (3 servers)")
    rec.stop()
    E.check_ensemble(e, merged(rec.expected(), {probe: (0, b"probe")}))


@REPS
@pytest.mark.timeout(240)
@scenario
def test_observers_serve_and_forward_and_never_count(make_ensemble, rep):
    e = make_ensemble(voters=3, observers=2)
    leader = e.start_all()
    assert [e.mode(o) for o in e.observers] == ["observer", "observer"]
    rec = E.WriteRecorder(e.connect_string(e.voters)).start()
    E.wait_writes(rec, 30)
    own = {}
    for o in e.observers:
        c = E.kazoo_client(e.connect_string([o]))
        try:
            path = "/via-observer-%d" % o
            c.create(path, b"forwarded")              # forwarded to the leader
            own[path] = (0, b"forwarded")
            assert c.get(path)[0] == b"forwarded"     # and applied before the reply
            c.sync("/rec")
            seen = set(c.get_children("/rec"))
            assert len(seen) >= 30                    # reads served from the observer's tree
        finally:
            E.close_client(c)
    # Observers going away touches neither the quorum nor the writes.
    fails = dict(rec.failures)
    t0 = time.monotonic()
    for o in e.observers:
        e.kill(o)
    E.wait_writes(rec, 50, after=t0, timeout=10)
    assert dict(rec.failures) == fails, "observers' death cost writes: %s" % rec.failures
    assert e.mode(leader) == "leader"
    # Nor do they make a quorum: two voters down with both observers up stops writes.
    for o in e.observers:
        e.start(o)
    e.wait_serving(e.sids)
    victims = [leader, e.followers(leader)[0]]
    probe = lose_quorum_then_restore(e, rec, victims, victims,
                                     "2 of 3 voters restarted (+2 observers)")
    rec.stop()
    E.check_ensemble(e, merged(rec.expected(), own, {probe: (0, b"probe")}))


@REPS
@pytest.mark.timeout(300)
@scenario
def test_election_and_lock_recipes_keep_one_holder(make_ensemble, rep):
    e = make_ensemble()
    e.start_all()
    hosts = e.connect_string()
    offices = [E.HoldRecorder(hosts, "/recipe-lock", "lock").start(),
               E.HoldRecorder(hosts, "/recipe-election", "election").start()]
    try:
        for o in offices:
            E.wait_holds(o, 5)
        for rnd in range(4):
            leader = e.wait_leader()
            victim = leader if rnd % 2 == 0 else e.followers(leader)[rnd % 3 % 2]
            t = time.monotonic()
            e.kill(victim)
            time.sleep(1.0)
            e.start(victim)
            e.wait_serving(e.sids)
            for o in offices:
                E.wait_holds(o, 3, after=t)
    finally:
        for o in offices:
            o.stop()
    for o in offices:
        print("%s: %d holds, none overlapping" % (o.kind, o.count()))
        assert not o.overlaps(), "%s: two holders at once:\n%s" % (o.kind, "\n".join(o.overlaps()))
    E.check_ensemble(e)


@REPS
@pytest.mark.timeout(240)
@scenario
def test_five_servers_survive_two_down_not_three(make_ensemble, rep):
    e, leader, rec = writing_ensemble(make_ensemble, voters=5)
    down = [leader, e.followers(leader)[0]]
    t0 = time.monotonic()
    for v in down:
        e.kill(v)
    alive = [s for s in e.sids if s not in down]
    _, probe, dt = E.probe_write(e, alive, t0)
    timing("SIGKILL leader + 1 follower (5 servers)", dt)
    new = e.wait_leader(among=alive)
    E.wait_writes(rec, 30, after=time.monotonic())
    # A third one down (the new leader): no quorum of five.
    probe2 = lose_quorum_then_restore(e, rec, [new], down + [new], "3 of 5 restarted")
    rec.stop()
    E.check_ensemble(e, merged(rec.expected(), {probe: (0, b"probe"), probe2: (0, b"probe")}))
