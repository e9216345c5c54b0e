"""Proves the ensemble checkers can fail: check_ensemble() on two standalone servers whose
trees differ (a Stat, a node, data), or that lack an acknowledged write or hold a forbidden
one, raises with a diff naming the path; HoldRecorder.overlaps() finds two holders at once.
Runs on any target (standalone servers only), so it guards the harness before zkd runs
ensembles."""

import pytest

import ensemble as E
import harness


class TwoServers:
    """Just enough of Ensemble for check_ensemble(): two independent standalone servers."""

    def __init__(self, a, b):
        self.servers = {1: a, 2: b}
        self.ports = {1: (a.port, 0, 0), 2: (b.port, 0, 0)}

    def up(self):
        return [1, 2]

    def wait_serving(self, sids, timeout=30.0):
        return {s: "standalone" for s in sids}

    def log_tails(self, max_lines=40):
        return ""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    servers = [harness.Server(tmp_path_factory.mktemp("checker%d" % i), tick_time=200).start()
               for i in (1, 2)]
    try:
        yield TwoServers(*servers)
    finally:
        for s in servers:
            s.stop()


def _client(srv):
    return E.kazoo_client(srv.hosts)


@pytest.fixture
def clients(pair):
    cs = [_client(pair.servers[1]), _client(pair.servers[2])]
    yield cs
    for c in cs:
        if c.exists("/t"):
            c.delete("/t", recursive=True)
        E.close_client(c)


def test_identical_trees_pass_and_a_missing_write_fails(pair, clients):
    for c in clients:
        c.create("/t", b"x")
    trees = {sid: E.read_tree(pair.ports[sid][0]) for sid in (1, 2)}
    assert trees[1]["/t"][0] == b"x"
    # Times differ between two standalone servers; everything else of /t matches.
    s1, s2 = trees[1]["/t"][1], trees[2]["/t"][1]
    fields = dict(zip(E.STAT_FIELDS, zip(s1, s2)))
    assert fields["version"] == (0, 0) and fields["numChildren"] == (0, 0)
    with pytest.raises(AssertionError, match=r"acknowledged /t/never \(version 0\) is missing"):
        E.check_ensemble(pair, {"/t/never": (0, b"v")}, timeout=2)
    with pytest.raises(AssertionError, match=r"acknowledged /t version 3, found version 0"):
        E.check_ensemble(pair, {"/t": (3, b"x")}, timeout=2)
    with pytest.raises(AssertionError, match=r"acknowledged /t version 0 data b'y', found b'x'"):
        E.check_ensemble(pair, {"/t": (0, b"y")}, timeout=2)
    with pytest.raises(AssertionError, match=r"server 1 holds /t, which must not exist"):
        E.check_ensemble(pair, {}, forbidden=["/t"], timeout=2)


def test_different_trees_fail_with_a_diff(pair, clients):
    a, b = clients
    a.create("/t", b"x")
    b.create("/t", b"x")
    a.create("/t/only-on-1", b"")
    b.set("/t", b"changed")
    with pytest.raises(AssertionError) as err:
        E.check_ensemble(pair, {}, timeout=1, settle_s=0.2)
    text = str(err.value)
    assert "servers hold different trees" in text
    assert "/t/only-on-1: server 1 has data=b''" in text and "server 2 has absent" in text
    assert "/t differs in data," in text and "version" in text and "numChildren" in text


def test_tree_diff_names_every_differing_field():
    st = (1, 1, 10, 10, 0, 0, 0, 0, 1, 0, 1)
    a = {"/a": (b"x", st)}
    b = {"/a": (b"x", st[:4] + (2,) + st[5:])}
    out = E.tree_diff(a, b, "s1", "s2")
    assert len(out) == 1 and out[0].startswith("/a differs in version:")
    assert E.tree_diff(a, dict(a), "s1", "s2") == []


def test_overlapping_holds_are_found():
    office = E.HoldRecorder("unused:1", "/x", "lock")
    office.holds = [("a", 1.0, 2.0), ("b", 2.0, 3.0), ("c", 5.0, 9.0), ("a", 6.0, 6.5)]
    assert office.overlaps() == ["c held 5.000..9.000 while a held from 6.000"]
    office.holds = [("a", 1.0, 2.0), ("b", 2.0, 3.0)]
    assert office.overlaps() == []
