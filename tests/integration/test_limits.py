"""Proves zkd's limits behave as documented: a client that does not read its replies is
throttled and then dropped (its session expires) while others are served, maxClientCnxns
refuses extra connections from one address, a connection that never completes its handshake
is dropped after nio.sessionlessCnxnTimeout, and a bad zoo.cfg stops zkd naming the line."""

import os
import socket
import subprocess
import time

import pytest

import harness
import zkwire

SERVER_TICK_TIME = 200  # sessions of 400..4000 ms
SERVER_EXTRA_CFG = {"maxClientCnxns": 8, "nio.sessionlessCnxnTimeout": 500}

pytestmark = pytest.mark.skipif(harness.target() != "zkd", reason="zkd's own limits and messages")


mntr = harness.mntr


def test_non_reading_client_is_throttled_then_dropped(server, zk, base):
    zk.create(base, b"x" * 600_000)
    hog = zkwire.RawClient(server.port, timeout_ms=1000)
    hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.sock.setblocking(False)
    body = zkwire.p_str(base) + zkwire.p_bool(False)
    sent = 0
    try:
        # Ask for ~60 MB of replies and never read one.
        for i in range(100):
            try:
                hog.sock.send(zkwire.frame(zkwire.p_int(i + 1) + zkwire.p_int(zkwire.OP_GET_DATA) + body))
                sent += 1
            except BlockingIOError:
                break
        assert sent > 0
        # Meanwhile everyone else is served at once.
        t0 = time.monotonic()
        for i in range(20):
            zk.set(base, b"y" * 10)
            assert zk.get(base)[0] == b"y" * 10
            zk.set(base, b"x" * 600_000)
        assert time.monotonic() - t0 < 5.0
        # The hog is dropped (alive: zk and the mntr connection itself): its session expires because nothing it sends is taken while
        # it does not read, and the server closes the connection.
        harness.wait_for(lambda: int(mntr(server)["zk_num_alive_connections"]) == 2, 15,
                         what="the non-reading connection to be dropped")
        assert ("0x%x" % hog.session_id) not in server.four_letter("dump")
    finally:
        hog.close()
    assert zk.exists(base) is not None


def test_max_client_cnxns_per_address(server):
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection((harness.HOST, server.port), timeout=5)
            s.sendall(zkwire.frame(zkwire.connect_request(timeout_ms=4000)))
            assert len(zkwire.recv_frame(s)) >= 36
            socks.append(s)
        extra = socket.create_connection((harness.HOST, server.port), timeout=5)
        socks.append(extra)
        assert zkwire.wait_closed(extra, 5.0), "the 9th connection from one address was kept"
        assert server.four_letter("ruok") == ""  # also over the limit while 8 are open
    finally:
        for s in socks:
            s.close()
    harness.wait_for(lambda: server.four_letter("ruok") == "imok", 5, what="ruok after close")


def run_zkd(tmp_path, cfg_text):
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(cfg_text)
    zkd = os.environ.get("ZKD_BIN", str(harness.REPO / "zkd"))
    return subprocess.run([zkd, str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=10)


def test_unknown_key_is_an_error_naming_the_line(tmp_path):
    r = run_zkd(tmp_path, "tickTime=2000\ndataDir=%s\n\nclientPort=0\ntickTme=5\n" % (tmp_path / "d"))
    assert r.returncode == 2
    assert "zoo.cfg:5:" in r.stderr and "tickTme" in r.stderr


def test_bad_value_and_missing_value_are_errors(tmp_path):
    r = run_zkd(tmp_path, "tickTime=two\n")
    assert r.returncode == 2 and "zoo.cfg:1:" in r.stderr and "tickTime" in r.stderr
    r = run_zkd(tmp_path, "# comment\nclientPort\n")
    assert r.returncode == 2 and "zoo.cfg:2:" in r.stderr


def test_zookeeper_key_not_implemented_is_one_warning(tmp_path):
    port = harness.free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                   "secureClientPort=2281\nzookeeper.sslQuorum=false\n" % (tmp_path / "d", port))
    zkd = os.environ.get("ZKD_BIN", str(harness.REPO / "zkd"))
    p = subprocess.Popen([zkd, str(cfg)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    def up():
        try:
            return harness.four_letter(port, "ruok") == "imok"
        except OSError:
            return False
    try:
        harness.wait_for(up, 10, what="zkd up")
    finally:
        p.terminate()
        err = p.communicate(timeout=10)[1]
    assert err.count("secureClientPort") == 1 and err.count("sslQuorum") == 1


def test_slow_loris_handshakes_are_dropped(server, zk):
    silent = socket.create_connection((harness.HOST, server.port), timeout=5)
    half = socket.create_connection((harness.HOST, server.port), timeout=5)
    half.sendall(zkwire.frame(zkwire.connect_request())[:20])
    try:
        t0 = time.monotonic()
        assert zkwire.wait_closed(silent, 5.0) and zkwire.wait_closed(half, 5.0)
        assert time.monotonic() - t0 < 4.0
        assert zk.exists("/") is not None  # an idle session is not a slow loris
    finally:
        silent.close()
        half.close()


def test_one_reply_larger_than_the_output_bound_is_sent(server, base):
    """A getChildren reply over the 8 MiB output bound (nine ~1 MB child names) reaches a
    client that reads it; the bound is for output piling up, not for one answer."""
    raw = zkwire.RawClient(server.port)
    try:
        assert raw.create(base)[0] == 0
        names = ["%d%s" % (i, "n" * 1_000_000) for i in range(9)]
        for n in names:
            assert raw.create(base + "/" + n)[0] == 0
        err, kids = raw.get_children(base)
        assert err == 0 and sorted(kids) == sorted(names)
        assert raw.ping() == 0  # the connection is still usable
        for n in names:
            assert raw.delete(base + "/" + n) == 0
    finally:
        raw.close()
