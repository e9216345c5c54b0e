"""A minimal raw ZooKeeper wire-protocol client (jute), for the checks a real client cannot make.

Used where the packaged clients hide the server's behaviour: kazoo 2.8 normalises paths and never
sends SetWatches, and no client sends malformed frames on purpose.  Layouts follow
zookeeper-jute/src/main/resources/zookeeper.jute; see /work/shared/ZK-FACTS.md section 1.
"""

import socket
import struct
import time

# OpCodes (ZooDefs.OpCode).
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_ACL = 6
OP_SET_ACL = 7
OP_GET_CHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GET_CHILDREN2 = 12
OP_CREATE2 = 15
OP_CREATE_CONTAINER = 19
OP_DELETE_CONTAINER = 20
OP_CREATE_TTL = 21
OP_AUTH = 100
OP_SET_WATCHES = 101
OP_WHO_AM_I = 107
OP_CLOSE_SESSION = -11

# Special xids (ClientCnxn).
XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

# Error codes (KeeperException.Code).
ERR_OK = 0
ERR_UNIMPLEMENTED = -6
ERR_BAD_ARGUMENTS = -8
ERR_NO_NODE = -101
ERR_NO_AUTH = -102
ERR_BAD_VERSION = -103
ERR_NODE_EXISTS = -110
ERR_NOT_EMPTY = -111
ERR_SESSION_EXPIRED = -112
ERR_INVALID_ACL = -114
ERR_AUTH_FAILED = -115

# Watcher event types and states.
EVENT_CREATED = 1
EVENT_DELETED = 2
EVENT_DATA_CHANGED = 3
EVENT_CHILDREN_CHANGED = 4
STATE_SYNC_CONNECTED = 3

# CreateMode flags.
PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

OPEN_ACL_UNSAFE = [(31, "world", "anyone")]

# Watch management and the session's own reads (3.6+ opcodes), ZooDefs/Watcher constants.
OP_CHECK_WATCHES = 17
OP_REMOVE_WATCHES = 18
OP_GET_EPHEMERALS = 103
OP_GET_ALL_CHILDREN_NUMBER = 104
OP_SET_WATCHES2 = 105
OP_ADD_WATCH = 106
ERR_MARSHALLING = -5
ERR_NO_WATCHER = -121
ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1
WATCHER_CHILDREN = 1
WATCHER_DATA = 2
WATCHER_ANY = 3

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")


def p_int(v):
    return struct.pack(">i", v)


def p_long(v):
    return struct.pack(">q", v)


def p_bool(v):
    return b"\x01" if v else b"\x00"


def p_buf(b):
    if b is None:
        return p_int(-1)
    return p_int(len(b)) + b


def p_str(s):
    if s is None:
        return p_int(-1)
    return p_buf(s.encode("utf-8") if isinstance(s, str) else s)


def p_vec_str(items):
    return p_int(len(items)) + b"".join(p_str(s) for s in items)


def p_acl(acl):
    out = p_int(len(acl))
    for perms, scheme, ident in acl:
        out += p_int(perms) + p_str(scheme) + p_str(ident)
    return out


def frame(payload):
    return p_int(len(payload)) + payload


class Reader:
    """Sequential jute decoder over one frame's payload."""

    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short frame: need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buf(self):
        n = self.int()
        return None if n < 0 else self._take(n)

    def str(self):
        b = self.buf()
        return None if b is None else b.decode("utf-8")

    def acl(self):
        n = self.int()
        return None if n < 0 else [(self.int(), self.str(), self.str()) for _ in range(n)]

    def vec_str(self):
        n = self.int()
        return None if n < 0 else [self.str() for _ in range(n)]

    def stat(self):
        vals = (self.long(), self.long(), self.long(), self.long(), self.int(), self.int(),
                self.int(), self.long(), self.int(), self.int(), self.long())
        return dict(zip(STAT_FIELDS, vals))

    def remaining(self):
        return len(self.data) - self.pos


def connect_request(timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0,
                    read_only=False, protocol_version=0):
    return (p_int(protocol_version) + p_long(last_zxid) + p_int(timeout_ms) + p_long(session_id)
            + p_buf(passwd) + p_bool(read_only))


def parse_connect_response(payload):
    r = Reader(payload)
    resp = {"protocol_version": r.int(), "timeout_ms": r.int(), "session_id": r.long(),
            "passwd": r.buf()}
    resp["read_only"] = r.bool() if r.remaining() else None
    return resp


def recv_exact(sock, n):
    """Read exactly n bytes; raise EOFError if the peer closes first."""
    chunks = []
    while n:
        b = sock.recv(n)
        if not b:
            raise EOFError("connection closed by server")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def recv_frame(sock, max_len=16 * 1024 * 1024):
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    if n < 0 or n > max_len:
        raise ValueError("bad frame length %d from server" % n)
    return recv_exact(sock, n)


def wait_closed(sock, timeout):
    """True if the server closes the connection (EOF or reset) within timeout seconds.

    Any bytes received meanwhile are discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


class RawClient:
    """One session over one socket, requests answered in order; notifications are queued."""

    def __init__(self, port, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0,
                 io_timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=io_timeout)
        self.sock.settimeout(io_timeout)
        self.sock.sendall(frame(connect_request(timeout_ms, session_id, passwd, last_zxid)))
        self.conn = parse_connect_response(recv_frame(self.sock))
        self.session_id = self.conn["session_id"]
        self.passwd = self.conn["passwd"]
        self.xid = 0
        self.events = []       # (type, state, path) in arrival order
        self.log = []          # ("event", type, path) / ("reply", xid, err) in arrival order
        self.last_zxid = last_zxid

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(frame(p_int(xid) + p_int(op) + body))
        return xid

    def read_one(self):
        """Read one frame; return ('event', (type, state, path)) or ('reply', xid, zxid, err, Reader)."""
        r = Reader(recv_frame(self.sock))
        xid, zxid, err = r.int(), r.long(), r.int()
        if xid == XID_NOTIFICATION:
            ev = (r.int(), r.int(), r.str())
            self.events.append(ev)
            self.log.append(("event", ev[0], ev[2]))
            return ("event", ev)
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        self.log.append(("reply", xid, err))
        return ("reply", xid, zxid, err, r)

    def call(self, op, body=b"", xid=None):
        """Send one request and return (zxid, err, Reader) of its reply."""
        want = self.send(op, body, xid)
        while True:
            msg = self.read_one()
            if msg[0] == "event":
                continue
            _, rxid, zxid, err, r = msg
            if rxid == XID_PING and want != XID_PING:
                continue
            if rxid != want:
                raise AssertionError("reply xid %d, expected %d" % (rxid, want))
            return zxid, err, r

    def wait_event(self, timeout=10.0):
        """Return the next queued or arriving notification, or None after timeout."""
        deadline = time.monotonic() + timeout
        while not self.events:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                self.read_one()
            except socket.timeout:
                return None
        return self.events.pop(0)

    # Typed requests.  Each returns err first so callers can assert on it.
    def create(self, path, data=b"", flags=PERSISTENT, acl=OPEN_ACL_UNSAFE):
        _, err, r = self.call(OP_CREATE, p_str(path) + p_buf(data) + p_acl(acl) + p_int(flags))
        return err, (r.str() if err == 0 else None)

    def create_any(self, op, path, data=b"", flags=PERSISTENT, ttl=None, acl=OPEN_ACL_UNSAFE):
        """create/create2/createContainer/createTTL (ttl appended when given):
        (err, path, stat) with stat None for a plain create."""
        body = p_str(path) + p_buf(data) + p_acl(acl) + p_int(flags)
        if ttl is not None:
            body += p_long(ttl)
        _, err, r = self.call(op, body)
        if err:
            return err, None, None
        created = r.str()
        return err, created, (r.stat() if r.remaining() else None)

    def gone_within(self, path, seconds):
        """True once exists(path) answers NoNode, polling for up to `seconds` (a reaper)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.exists(path)[0] == ERR_NO_NODE:
                return True
            time.sleep(0.05)
        return False

    def create_container(self, path, data=b"", flags=CONTAINER):
        return self.create_any(OP_CREATE_CONTAINER, path, data, flags)

    def create_ttl(self, path, ttl, data=b"", flags=PERSISTENT_WITH_TTL):
        return self.create_any(OP_CREATE_TTL, path, data, flags, ttl)

    def delete(self, path, version=-1):
        return self.call(OP_DELETE, p_str(path) + p_int(version))[1]

    def get_data(self, path, watch=False):
        _, err, r = self.call(OP_GET_DATA, p_str(path) + p_bool(watch))
        if err:
            return err, None, None
        return err, r.buf(), r.stat()

    def set_data(self, path, data, version=-1):
        _, err, r = self.call(OP_SET_DATA, p_str(path) + p_buf(data) + p_int(version))
        return err, (r.stat() if err == 0 else None)

    def exists(self, path, watch=False):
        _, err, r = self.call(OP_EXISTS, p_str(path) + p_bool(watch))
        return err, (r.stat() if err == 0 else None)

    def get_children(self, path, watch=False):
        _, err, r = self.call(OP_GET_CHILDREN, p_str(path) + p_bool(watch))
        return err, (r.vec_str() if err == 0 else None)

    def ping(self):
        return self.call(OP_PING, b"", xid=XID_PING)[1]

    def set_watches(self, relative_zxid, data=(), exist=(), child=()):
        body = (p_long(relative_zxid) + p_vec_str(list(data)) + p_vec_str(list(exist))
                + p_vec_str(list(child)))
        return self.call(OP_SET_WATCHES, body, xid=XID_SET_WATCHES)[1]

    def close_session(self):
        try:
            return self.call(OP_CLOSE_SESSION)[1]
        finally:
            self.close()

    # Watch management (3.6+).  Each returns err first, like the typed requests above.
    def add_watch(self, path, mode):
        """addWatch; returns (err, the reply body's remaining bytes)."""
        _, err, r = self.call(OP_ADD_WATCH, p_str(path) + p_int(mode))
        return err, r.data[r.pos:]

    def remove_watches(self, path, wtype):
        return self.call(OP_REMOVE_WATCHES, p_str(path) + p_int(wtype))[1]

    def check_watches(self, path, wtype):
        return self.call(OP_CHECK_WATCHES, p_str(path) + p_int(wtype))[1]

    def set_watches2(self, relative_zxid, data=(), exist=(), child=(), persistent=(),
                     recursive=(), xid=XID_SET_WATCHES):
        body = p_long(relative_zxid) + b"".join(
            p_vec_str(list(v)) for v in (data, exist, child, persistent, recursive))
        return self.call(OP_SET_WATCHES2, body, xid=xid)[1]

    def get_ephemerals(self, prefix):
        _, err, r = self.call(OP_GET_EPHEMERALS, p_str(prefix))
        return err, (r.vec_str() if err == 0 else None)

    def get_all_children_number(self, path):
        _, err, r = self.call(OP_GET_ALL_CHILDREN_NUMBER, p_str(path))
        return err, (r.int() if err == 0 else None)

    # ACLs and authentication.
    def add_auth(self, scheme, auth, xid=XID_AUTH):
        """Send AuthPacket{type 0, scheme, auth}; return (xid, zxid, err) of the reply."""
        body = p_int(0) + p_str(scheme) + p_buf(auth.encode() if isinstance(auth, str) else auth)
        self.send(OP_AUTH, body, xid=xid)
        while True:
            msg = self.read_one()
            if msg[0] == "reply" and msg[1] != XID_PING:
                return msg[1], msg[2], msg[3]

    def get_acl(self, path):
        _, err, r = self.call(OP_GET_ACL, p_str(path))
        if err:
            return err, None, None
        return err, r.acl(), r.stat()

    def set_acl(self, path, acl, version=-1):
        zxid, err, r = self.call(OP_SET_ACL, p_str(path) + p_acl(acl) + p_int(version))
        return err, (r.stat() if err == 0 else None)

    def who_am_i(self):
        _, err, r = self.call(OP_WHO_AM_I)
        if err:
            return err, None
        return err, [(r.str(), r.str()) for _ in range(r.int())]


# ---- multi (14) and multiRead (22): MultiOperationRecord / MultiResponse ----
OP_CHECK = 13
OP_MULTI = 14
OP_MULTI_READ = 22
ERR_RUNTIME_INCONSISTENCY = -2
ERR_MARSHALLING = -5
ERR_NO_CHILDREN_FOR_EPHEMERALS = -108
OP_ERROR = -1


def multi_header(op, done=False, err=-1):
    return p_int(op) + p_bool(done) + p_int(err)


MULTI_END = multi_header(-1, True, -1)


def mop_create(path, data=b"", flags=PERSISTENT, acl=OPEN_ACL_UNSAFE, op=OP_CREATE):
    return multi_header(op) + p_str(path) + p_buf(data) + p_acl(acl) + p_int(flags)


def mop_delete(path, version=-1):
    return multi_header(OP_DELETE) + p_str(path) + p_int(version)


def mop_set_data(path, data, version=-1):
    return multi_header(OP_SET_DATA) + p_str(path) + p_buf(data) + p_int(version)


def mop_check(path, version):
    return multi_header(OP_CHECK) + p_str(path) + p_int(version)


def mop_read(path, op=OP_GET_DATA, watch=False):
    """getData / getChildren inside a multiRead (GetDataRequest, GetChildrenRequest)."""
    return multi_header(op) + p_str(path) + p_bool(watch)


def parse_multi_response(r):
    """MultiResponse -> list of (type, err, result): result is the path (create), (path, stat)
    (create2), stat (setData), None (delete/check), the ErrorResponse's err (type -1),
    (data, stat) (getData) or the children (getChildren). Checks the end marker."""
    out = []
    while True:
        op, done, err = r.int(), r.bool(), r.int()
        if done:
            if (op, err) != (-1, -1):
                raise ValueError("end marker %r" % ((op, done, err),))
            return out
        if op == OP_CREATE:
            res = r.str()
        elif op == OP_CREATE2:
            res = (r.str(), r.stat())
        elif op == OP_SET_DATA:
            res = r.stat()
        elif op in (OP_DELETE, OP_CHECK):
            res = None
        elif op == OP_ERROR:
            res = r.int()
        elif op == OP_GET_DATA:
            res = (r.buf(), r.stat())
        elif op == OP_GET_CHILDREN:
            res = r.vec_str()
        else:
            raise ValueError("unknown op %d in a MultiResponse" % op)
        out.append((op, err, res))


def multi(client, ops, op=OP_MULTI, end=MULTI_END):
    """Send a multi (or multiRead) of the encoded ops; returns (zxid, err, results, body) where
    results is parse_multi_response's list (None when the body is empty) and body the raw bytes."""
    zxid, err, r = client.call(op, b"".join(ops) + end)
    body = r.data[r.pos:]
    results = parse_multi_response(Reader(body)) if body else None
    return zxid, err, results, body
