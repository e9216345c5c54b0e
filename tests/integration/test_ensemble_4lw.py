"""srvr, mntr and conf in an ensemble, as Apache ZooKeeper 3.8 answers them: the mode of
each server, the leader's learner figures, the detailed peer state, and the membership."""

import pytest

import ensemble as E
from harness import four_letter


@pytest.fixture
def ens(tmp_path):
    with E.prepared(tmp_path, voters=3, observers=1) as e:
        e.wait_serving(e.sids)
        yield e


def mntr(e, sid):
    out = four_letter(e.ports[sid][0], "mntr")
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def test_modes_and_the_leaders_figures(ens):
    leader = ens.wait_leader()
    observer = ens.observers[0]
    for sid in ens.sids:
        want = "leader" if sid == leader else "observer" if sid == observer else "follower"
        assert ens.mode(sid) == want
        m = mntr(ens, sid)
        assert m["zk_server_state"] == want, m
        state = {"leader": "leading", "follower": "following", "observer": "observing"}[want]
        assert m["zk_peer_state"] == state + " - broadcast", m
        keys = list(m)
        assert keys.index("zk_peer_state") == keys.index("zk_server_state") + 1, keys[:4]
    m = mntr(ens, leader)
    assert m["zk_learners"] == "3", m
    assert m["zk_synced_followers"] == "2", m
    assert m["zk_synced_observers"] == "1", m
    assert m["zk_pending_syncs"] == "0", m
    assert int(m["zk_last_proposal_size"]) == -1 or int(m["zk_last_proposal_size"]) >= 0


def test_conf_names_the_server_and_its_limits(ens):
    for sid in ens.sids:
        conf = four_letter(ens.ports[sid][0], "conf")
        lines = dict(l.split("=", 1) for l in conf.splitlines() if "=" in l)
        assert lines["serverId"] == str(sid), conf
        assert lines["initLimit"] == str(ens.init_limit), conf
        assert lines["syncLimit"] == str(ens.sync_limit), conf
        for other in ens.sids:
            assert "server.%d" % other in lines, conf
