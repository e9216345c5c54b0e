"""Proves malformed, oversized, truncated and idle connections neither crash the server nor disturb a healthy session (its reads, writes and pending watch), and that each gets Apache ZooKeeper's answer."""

import random
import socket
import struct
import threading
import time

import pytest
from kazoo.protocol.states import EventType

import zkwire
from harness import HOST

MAX_FRAME = 0xFFFFF          # jute.maxbuffer: the largest frame length the server accepts
CLOSE_WAIT_S = 5.0


class Healthy:
    """A kazoo session with a data watch set before the abuse starts."""

    def __init__(self, server, make, path):
        self.server = server
        self.path = path
        self.client = make()
        self.writer = make()
        self.states = []
        self.client.add_listener(lambda s: self.states.append(s))
        self.client.create(path, b"before")
        self.sid = self.client.client_id[0]
        self.fired = threading.Event()
        self.events = []

        def watcher(ev):
            self.events.append(ev)
            self.fired.set()

        assert self.client.get(path, watch=watcher)[0] == b"before"

    def check(self):
        assert self.server.alive(), "server process died"
        assert self.server.four_letter("ruok") == "imok"
        assert self.client.connected and self.client.client_id[0] == self.sid
        assert self.client.get(self.path)[0] == b"before"
        self.writer.set(self.path, b"after")
        assert self.fired.wait(10), "the healthy session's watch did not fire"
        assert [(e.type, e.path) for e in self.events] == [(EventType.CHANGED, self.path)]
        self.client.create(self.path + "/kid", b"k")
        assert self.writer.get(self.path + "/kid")[0] == b"k"
        assert self.states == [], "healthy session was disturbed: %r" % self.states


@pytest.fixture
def healthy(server, kazoo_factory, base):
    return Healthy(server, kazoo_factory, base)


def connect_raw(server):
    return socket.create_connection((HOST, server.port), timeout=5)


def closed_soon(sock):
    return zkwire.wait_closed(sock, CLOSE_WAIT_S)


def send_until_closed(sock, data):
    """Send data; True if the server closes the connection (mid-send counts)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return True
    return closed_soon(sock)


def hdr(xid, op):
    return zkwire.p_int(xid) + zkwire.p_int(op)


def test_random_garbage(healthy, server):
    rng = random.Random(20240601)
    socks = []
    try:
        for i in range(40):
            s = connect_raw(server)
            blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
            try:
                s.sendall(blob)
            except OSError:
                pass                     # the server may already have hung up
            if i % 2:
                s.close()
            else:
                socks.append(s)
        time.sleep(0.5)
    finally:
        for s in socks:
            s.close()
    healthy.check()


def test_random_garbage_after_connect(healthy, server):
    rng = random.Random(7)
    for _ in range(20):
        raw = zkwire.RawClient(server.port)
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 512)))
        try:
            raw.sock.sendall(zkwire.frame(body))
            raw.sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
        except OSError:
            pass
        raw.close()
    healthy.check()


@pytest.mark.parametrize("length", [MAX_FRAME + 1, 0x7FFFFFFF, -1, -0x80000000])
def test_bad_length_before_connect_is_dropped(healthy, server, length):
    s = connect_raw(server)
    try:
        assert send_until_closed(s, struct.pack(">i", length)), \
            "server kept a connection announcing a %d-byte frame" % length
    finally:
        s.close()
    healthy.check()


@pytest.mark.parametrize("length", [MAX_FRAME + 1, 0x40000000, -1, -7])
def test_bad_length_after_connect_is_dropped(healthy, server, length):
    raw = zkwire.RawClient(server.port)
    try:
        assert send_until_closed(raw.sock, struct.pack(">i", length) + b"\x00" * 16)
    finally:
        raw.close()
    healthy.check()


def test_frame_size_limit_is_exact(healthy, server, base):
    raw = zkwire.RawClient(server.port)
    try:
        assert raw.create(base + "-big")[0] == 0
        prefix = hdr(1, zkwire.OP_SET_DATA) + zkwire.p_str(base + "-big")
        overhead = len(prefix) + 4 + 4          # data length field + version

        def frame_of(total):
            return zkwire.frame(prefix + zkwire.p_buf(b"z" * (total - overhead)) + zkwire.p_int(-1))

        raw.sock.sendall(frame_of(MAX_FRAME))
        msg = raw.read_one()
        assert msg[0] == "reply" and msg[1] == 1 and msg[3] == 0
        assert msg[4].stat()["dataLength"] == MAX_FRAME - overhead
        assert send_until_closed(raw.sock, frame_of(MAX_FRAME + 1))
    finally:
        raw.close()
    healthy.writer.delete(base + "-big")
    healthy.check()


def test_empty_or_short_connect_request_is_dropped(healthy, server):
    for payload in (b"", b"abc", b"\x00" * 20):
        s = connect_raw(server)
        try:
            assert send_until_closed(s, zkwire.frame(payload)), \
                "kept connection after %d-byte ConnectRequest" % len(payload)
        finally:
            s.close()
    healthy.check()


def test_truncated_frames_then_close(healthy, server):
    conreq = zkwire.frame(zkwire.connect_request())
    for cut in (1, 2, 3, 4, 5, 10, len(conreq) - 1):
        s = connect_raw(server)
        s.sendall(conreq[:cut])
        s.close()
    for cut in (1, 3, 4, 8, 12):
        raw = zkwire.RawClient(server.port)
        req = zkwire.frame(hdr(1, zkwire.OP_GET_DATA) + zkwire.p_str("/") + zkwire.p_bool(False))
        raw.sock.sendall(req[:cut])
        raw.close()
    healthy.check()


def test_unknown_opcode_answers_unimplemented_and_closes(healthy, server, base):
    for op in (999, 10, -42, 0):
        raw = zkwire.RawClient(server.port)
        try:
            assert raw.create("%s-op%d" % (base, op), flags=zkwire.EPHEMERAL)[0] == 0
            raw.sock.sendall(zkwire.frame(hdr(77, op) + b"junk"))
            msg = raw.read_one()
            assert msg[0] == "reply" and msg[1] == 77 and msg[3] == zkwire.ERR_UNIMPLEMENTED
            assert closed_soon(raw.sock)
        finally:
            raw.close()
        # only the connection was dropped; the session (and its ephemeral) lives on
        assert healthy.writer.exists("%s-op%d" % (base, op)) is not None
    healthy.check()


MALFORMED = {
    "truncated path": hdr(5, zkwire.OP_GET_DATA) + zkwire.p_int(10) + b"/ab",
    "no body": hdr(5, zkwire.OP_GET_DATA),
    "negative path length": hdr(5, zkwire.OP_GET_DATA) + zkwire.p_int(-5) + b"\x00",
    "huge path length": hdr(5, zkwire.OP_GET_DATA) + zkwire.p_int(0x7FFFFFFF) + b"/abc\x00",
    "null path": hdr(5, zkwire.OP_GET_DATA) + zkwire.p_int(-1) + b"\x00",
    "create huge acl count": (hdr(5, zkwire.OP_CREATE) + zkwire.p_str("/zz") + zkwire.p_buf(b"")
                              + zkwire.p_int(0x7FFFFFFF) + zkwire.p_int(0)),
    "create null path": (hdr(5, zkwire.OP_CREATE) + zkwire.p_int(-1) + zkwire.p_buf(b"")
                         + zkwire.p_acl(zkwire.OPEN_ACL_UNSAFE) + zkwire.p_int(0)),
    "setData truncated data": (hdr(5, zkwire.OP_SET_DATA) + zkwire.p_str("/")
                               + zkwire.p_int(100) + b"short"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_body_answers_marshalling_error(healthy, server, name):
    raw = zkwire.RawClient(server.port)
    try:
        raw.sock.sendall(zkwire.frame(MALFORMED[name]))
        msg = raw.read_one()
        assert msg[0] == "reply" and msg[1] == 5
        assert msg[3] == -5, "expected MARSHALLINGERROR, got %d" % msg[3]
        err, _, stat = raw.get_data("/")            # the connection stays usable
        assert err == 0 and stat["czxid"] == 0
    finally:
        raw.close_session()
    assert healthy.writer.exists("/zz") is None
    healthy.check()


def test_bad_field_values(healthy, server, base):
    raw = zkwire.RawClient(server.port)
    try:
        body = zkwire.p_str(base + "-f") + zkwire.p_buf(b"") + zkwire.p_acl(zkwire.OPEN_ACL_UNSAFE)
        assert raw.call(zkwire.OP_CREATE, body + zkwire.p_int(99))[1] == zkwire.ERR_BAD_ARGUMENTS
        empty_acl = zkwire.p_str(base + "-f") + zkwire.p_buf(b"") + zkwire.p_int(0)
        assert raw.call(zkwire.OP_CREATE, empty_acl + zkwire.p_int(0))[1] == -114  # INVALIDACL
        trailing = zkwire.p_str("/") + zkwire.p_bool(False) + b"trailing junk"
        assert raw.call(zkwire.OP_GET_DATA, trailing)[1] == 0           # extra bytes ignored
    finally:
        raw.close_session()
    assert healthy.writer.exists(base + "-f") is None
    healthy.check()


def test_pipelined_requests_in_one_write(healthy, server, base):
    healthy.writer.create(base + "-pipe", b"p")
    raw = zkwire.RawClient(server.port)
    try:
        n = 200
        blob = b"".join(zkwire.frame(hdr(i + 1, zkwire.OP_GET_DATA if i % 2 else zkwire.OP_EXISTS)
                                     + zkwire.p_str(base + "-pipe") + zkwire.p_bool(False))
                        for i in range(n))
        raw.sock.sendall(blob)
        xids = []
        for _ in range(n):
            msg = raw.read_one()
            assert msg[0] == "reply" and msg[3] == 0
            xids.append(msg[1])
        assert xids == list(range(1, n + 1))
    finally:
        raw.close_session()
    healthy.check()


def test_byte_at_a_time(healthy, server, base):
    healthy.writer.create(base + "-drip", b"drip")
    s = connect_raw(server)
    try:
        data = zkwire.frame(zkwire.connect_request(timeout_ms=10000))
        data += zkwire.frame(hdr(1, zkwire.OP_GET_DATA) + zkwire.p_str(base + "-drip")
                             + zkwire.p_bool(False))
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
            time.sleep(0.002)
        conn = zkwire.parse_connect_response(zkwire.recv_frame(s))
        assert conn["timeout_ms"] == 10000 and conn["session_id"] != 0
        r = zkwire.Reader(zkwire.recv_frame(s))
        assert (r.int(), r.long() > 0, r.int()) == (1, True, 0)
        assert r.buf() == b"drip"
        s.sendall(zkwire.frame(hdr(2, zkwire.OP_CLOSE_SESSION)))
        zkwire.recv_frame(s)
    finally:
        s.close()
    healthy.check()


def test_half_open_connections(healthy, server):
    """Held under Apache's default maxClientCnxns (60 per address), counting our own clients."""
    held = []
    try:
        for _ in range(15):
            held.append(connect_raw(server))                       # connect, send nothing
        conreq = zkwire.frame(zkwire.connect_request())
        for _ in range(15):
            s = connect_raw(server)
            s.sendall(conreq[:len(conreq) // 2])             # half a ConnectRequest
            held.append(s)
        for _ in range(10):
            raw = zkwire.RawClient(server.port)
            req = zkwire.frame(hdr(1, zkwire.OP_GET_DATA) + zkwire.p_str("/") + zkwire.p_bool(False))
            raw.sock.sendall(req[:7])                        # half a request on a live session
            held.append(raw.sock)
        time.sleep(0.5)
        assert server.four_letter("ruok") == "imok"
        assert healthy.client.get(healthy.path)[0] == b"before"
        fresh = zkwire.RawClient(server.port)
        assert fresh.get_data("/")[0] == 0
        fresh.close_session()
    finally:
        for s in held:
            s.close()
    healthy.check()
