"""Proves per-session FIFO order with many requests in flight: reads sent right behind a
session's own writes (in one TCP write, before any reply) see exactly those writes and no
later ones, replies come back in request order, and another session is not held up."""

import struct

import zkwire
from zkwire import p_bool, p_buf, p_int, p_str


def hdr(xid, op):
    return struct.pack(">ii", xid, op)


def create(xid, path, data):
    return zkwire.frame(hdr(xid, zkwire.OP_CREATE) + p_str(path) + p_buf(data) +
                        zkwire.p_acl(zkwire.OPEN_ACL_UNSAFE) + p_int(0))


def get(xid, path):
    return zkwire.frame(hdr(xid, zkwire.OP_GET_DATA) + p_str(path) + p_bool(False))


def set_(xid, path, data):
    return zkwire.frame(hdr(xid, zkwire.OP_SET_DATA) + p_str(path) + p_buf(data) + p_int(-1))


def delete(xid, path):
    return zkwire.frame(hdr(xid, zkwire.OP_DELETE) + p_str(path) + p_int(-1))


def exists(xid, path):
    return zkwire.frame(hdr(xid, zkwire.OP_EXISTS) + p_str(path) + p_bool(False))


def test_reads_behind_writes_see_exactly_the_writes_before_them(server, base):
    raw = zkwire.RawClient(server.port)
    other = zkwire.RawClient(server.port)
    try:
        batch = [create(1, base, b"v0"), get(2, base)]
        xid = 3
        expect = {2: b"v0"}
        for i in range(1, 50):
            batch.append(set_(xid, base, b"v%d" % i))
            batch.append(get(xid + 1, base))
            batch.append(get(xid + 2, base))
            expect[xid + 1] = expect[xid + 2] = b"v%d" % i
            xid += 3
        batch += [delete(xid, base), exists(xid + 1, base), get(xid + 2, base)]
        raw.sock.sendall(b"".join(batch))
        # Another session reads meanwhile and is answered.
        assert other.get_data("/")[0] == 0
        last_zxid = 0
        for want_xid in range(1, xid + 3):
            kind, got_xid, zxid, err, r = raw.read_one()
            assert kind == "reply" and got_xid == want_xid, "replies out of order"
            assert zxid >= last_zxid, "reply zxids went backwards"
            last_zxid = zxid
            if want_xid in expect:
                assert err == 0 and r.buf() == expect[want_xid], "read %d saw the wrong value" % want_xid
            elif want_xid in (xid + 1, xid + 2):
                assert err == zkwire.ERR_NO_NODE
            else:
                assert err == 0
    finally:
        raw.close()
        other.close()


def test_no_ephemeral_outlives_a_closed_session(server, base):
    """An ephemeral create pipelined right behind closeSession must not leave a node owned by
    the closed session (it could never expire)."""
    raw = zkwire.RawClient(server.port)
    other = zkwire.RawClient(server.port)
    try:
        assert other.create(base)[0] == 0
        close = zkwire.frame(hdr(1, zkwire.OP_CLOSE_SESSION))
        eph = zkwire.frame(hdr(2, zkwire.OP_CREATE) + p_str(base + "/e") + p_buf(b"") +
                           zkwire.p_acl(zkwire.OPEN_ACL_UNSAFE) + p_int(zkwire.EPHEMERAL))
        raw.sock.sendall(close + eph)
        replies = []
        raw.sock.settimeout(5)
        try:
            while True:
                msg = raw.read_one()
                if msg[0] == "reply":
                    replies.append((msg[1], msg[3]))
        except (ConnectionError, OSError, EOFError, ValueError, struct.error):
            pass
        assert all(not (xid == 2 and err == 0) for xid, err in replies), replies
        assert other.exists(base + "/e")[0] == zkwire.ERR_NO_NODE
    finally:
        raw.close()
        other.close()
