"""Proves the four-letter-word commands answer as Apache ZooKeeper's do: exact replies for ruok/isro, the fields tools parse from srvr/stat/mntr, counters that track the tree, and plain netcat use."""

import shutil
import subprocess

import pytest

from harness import HOST, wait_for

MNTR_KEYS = ("zk_version", "zk_server_state", "zk_znode_count", "zk_watch_count",
             "zk_ephemerals_count", "zk_num_alive_connections", "zk_outstanding_requests",
             "zk_avg_latency")


def mntr(server):
    text = server.four_letter("mntr")
    out = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split("\t")
        assert len(parts) == 2, "mntr line is not key<TAB>value: %r" % line
        out[parts[0]] = parts[1]
    return out


def test_ruok(server):
    assert server.four_letter("ruok") == "imok"


def test_isro(server):
    assert server.four_letter("isro") == "rw"


def test_srvr(server):
    lines = server.four_letter("srvr").splitlines()
    assert lines[0].startswith("Zookeeper version: ")
    assert "Mode: standalone" in lines
    assert any(l.startswith("Node count: ") and int(l.split(": ")[1]) >= 4 for l in lines)
    assert any(l.startswith("Zxid: 0x") for l in lines)
    assert any(l.startswith("Latency min/avg/max: ") for l in lines)


def test_mntr_keys_and_types(server, zk):
    m = mntr(server)
    for k in MNTR_KEYS:
        assert k in m, "mntr lacks %s" % k
    assert m["zk_server_state"] == "standalone"
    assert m["zk_version"]
    for k in ("zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
              "zk_num_alive_connections", "zk_outstanding_requests"):
        assert int(m[k]) >= 0, k
    assert float(m["zk_avg_latency"]) >= 0
    assert int(m["zk_znode_count"]) >= 4          # /, /zookeeper, its config and quota
    assert int(m["zk_num_alive_connections"]) >= 1


def test_mntr_counts_follow_the_tree(server, kazoo_factory, base):
    a = kazoo_factory()
    m0 = mntr(server)
    a.create(base)
    a.create(base + "/p1")
    a.create(base + "/e1", ephemeral=True)
    a.create(base + "/e2", ephemeral=True)
    a.get(base + "/p1", watch=lambda e: None)
    a.get_children(base, watch=lambda e: None)
    m1 = mntr(server)
    assert int(m1["zk_znode_count"]) == int(m0["zk_znode_count"]) + 4
    assert int(m1["zk_ephemerals_count"]) == int(m0["zk_ephemerals_count"]) + 2
    assert int(m1["zk_watch_count"]) == int(m0["zk_watch_count"]) + 2   # data + child

    b = kazoo_factory()
    wait_for(lambda: int(mntr(server)["zk_num_alive_connections"])
             == int(m1["zk_num_alive_connections"]) + 1, 5, what="connection count +1")
    a.stop()
    m2 = mntr(server)
    assert int(m2["zk_ephemerals_count"]) == int(m0["zk_ephemerals_count"])
    assert int(m2["zk_znode_count"]) == int(m0["zk_znode_count"]) + 2
    # watches go with the connection, which may close just after the closeSession reply
    wait_for(lambda: int(mntr(server)["zk_watch_count"]) == int(m0["zk_watch_count"]), 5,
             what="watch count back to its start value")
    b.delete(base, recursive=True)
    assert int(mntr(server)["zk_znode_count"]) == int(m0["zk_znode_count"])


def test_stat(server, zk):
    text = server.four_letter("stat")
    lines = text.splitlines()
    assert lines[0].startswith("Zookeeper version: ")
    assert "Clients:" in lines
    assert "Mode: standalone" in lines
    assert any(l.startswith("Node count: ") for l in lines)
    local_port = zk._connection._socket.getsockname()[1]
    assert ":%d[" % local_port in text           # our connection is listed


def test_cons_lists_session(server, zk):
    text = server.four_letter("cons")
    assert "sid=0x%x" % zk.client_id[0] in text


def test_conf(server):
    lines = server.four_letter("conf").splitlines()
    assert "clientPort=%d" % server.port in lines
    assert "tickTime=%d" % server.tick_time in lines
    assert any(l.startswith("dataDir=") for l in lines)
    assert "minSessionTimeout=%d" % (2 * server.tick_time) in lines
    assert "maxSessionTimeout=%d" % (20 * server.tick_time) in lines


def test_envi(server):
    lines = server.four_letter("envi").splitlines()
    assert lines[0] == "Environment:"
    assert any(l.startswith("zookeeper.version=") for l in lines)
    assert any(l.startswith("host.name=") for l in lines)


def test_dump_shows_ephemerals(server, zk, base):
    zk.create(base, ephemeral=True)
    text = server.four_letter("dump")
    assert "Sessions with Ephemerals" in text
    sid = "0x%x" % zk.client_id[0]
    after = text[text.index("Sessions with Ephemerals"):]
    assert sid in after and base in after


def test_watch_commands(server, zk, base):
    zk.create(base)
    zk.get(base, watch=lambda e: None)
    wchs = server.four_letter("wchs")
    assert "connections watching" in wchs
    total = [l for l in wchs.splitlines() if l.startswith("Total watches:")]
    assert total and int(total[0].split(":")[1]) >= 1
    sid = "0x%x" % zk.client_id[0]
    wchc = server.four_letter("wchc")
    assert sid in wchc and "\t" + base in wchc
    wchp = server.four_letter("wchp")
    assert base + "\n\t" in wchp and sid in wchp


def test_dirs(server):
    lines = server.four_letter("dirs").splitlines()
    assert any(l.startswith("datadir_size: ") and int(l.split(": ")[1]) >= 0 for l in lines)
    assert any(l.startswith("logdir_size: ") for l in lines)


def test_srst_and_crst(server, zk):
    assert server.four_letter("srst").strip() == "Server stats reset."
    assert server.four_letter("crst").strip() == "Connection stats reset."
    # the server still counts after a reset
    zk.exists("/")
    assert "Received: " in server.four_letter("srvr")


@pytest.mark.parametrize("flag", [["-q", "1"], ["-N"]])
def test_netcat_ruok(server, flag):
    nc = shutil.which("nc")
    if nc is None:
        pytest.skip("nc (netcat-openbsd) not installed")
    out = subprocess.run([nc] + flag + [HOST, str(server.port)], input=b"ruok\n",
                         capture_output=True, timeout=10)
    assert out.stdout == b"imok"


def test_netcat_mntr(server):
    nc = shutil.which("nc")
    if nc is None:
        pytest.skip("nc (netcat-openbsd) not installed")
    out = subprocess.run([nc, "-q", "1", HOST, str(server.port)], input=b"mntr\n",
                         capture_output=True, timeout=10)
    assert b"zk_server_state\tstandalone\n" in out.stdout
