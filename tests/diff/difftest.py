#!/usr/bin/python3
"""Differential tester: the same seeded random operations against Apache ZooKeeper 3.8 and zkd.

Design (read this before changing anything below)
-------------------------------------------------
* Both servers are started once per run (tests/integration/harness.py, forceSync=no) on free
  loopback ports.  Every seed runs in its own namespace /d<seed> (shrink replays in /d<seed>_<n>),
  so hundreds of seeds share one pair of servers.
* A seed is turned into a fixed list of operations *before* anything runs (random.Random(seed));
  nothing in the list depends on a server's answer, so any prefix/subset of it can be replayed
  (that is what the shrinker does).  An op is a plain tuple: (kind, session, args...).
* Lock-step: one op at a time, identically on both servers.  Each op is a generator per server
  that yields after it has sent its request(s); the driver alternates the two generators, so both
  servers work at once but neither sees the next op before both answered.  After every op each
  live session of each server is pinged; a ping reply comes after every notification queued
  before it, so "the events this session received during this op" is deterministic.  A session
  whose connection the server closed (AuthFailed) is reconnected with its id and password then,
  and that is recorded in its event stream.
* Compared after every op: the op's normalized result (error code, reply-header zxid, data,
  sorted children, ACLs, Stat, per-op multi results) and every session's events, in order.
* Normalization (function Side.n_*):
  - zxids -> offset from the zxid of the namespace create (both servers consume one zxid per
    txn, failed writes, createSession and closeSession included, so offsets must agree);
  - ctime/mtime -> ('T', consistent, sane, sane): consistent = each zxid has one time and times
    never decrease as zxids grow, over every Stat seen in the run; sane = no earlier than a
    minute before the run began, no later than a minute from now (system nodes have 0).
    (ctime==mtime itself is timing: two txns can share a millisecond.)
  - ephemeralOwner -> 0, 'S<k>' (k-th session opened in this seed), 'container', ('ttl', n);
  - paths in results/events -> '~' for the namespace root (so replays in other namespaces
    compare equal); sequential suffixes compared raw.
* Differences listed in tests/diff/known-differences.txt (`regex :: reason`, regex searched in
  the one-line rendering of a difference) are ignored; anything else fails the seed.
* Shrinking: delta debugging over the op list (chunks, then single ops), each candidate replayed
  on fresh sessions in a fresh namespace on both servers, until no single op can be removed.
  The report prints SEED=n, the minimal ops, and both servers' results for the failing op.
* Op kinds are generators listed in KINDS; ENABLED says which run (features still being built
  in zkd stay off until they land).  --kinds overrides it.
"""

import argparse
import base64
import hashlib
import os
import random
import re
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
from zkwire import (Reader, connect_request, frame, p_acl, p_bool, p_buf, p_int,  # noqa: E402
                    p_long, p_str, p_vec_str, parse_connect_response)

# ---------------------------------------------------------------------------------------------
# Which op kinds run.  Kinds whose zkd feature is still in progress stay off (see README).
ALL_KINDS = [
    # served by zkd before issue 4
    "create", "create2", "delete", "set", "exists", "get", "children", "children2", "getacl",
    "sync", "close", "reconnect", "setwatches", "badpath", "pipeline", "system",
    # acl helper
    "acl", "setacl", "addauth", "whoami",
    # multi helper
    "multi", "multiread",
    # watch helper
    "addwatch", "removewatches", "checkwatches", "setwatches2", "getephemerals", "allchildren",
    # ttl helper
    "container", "ttl", "quota",
]
ENABLED = [
    "create", "create2", "delete", "set", "exists", "get", "children", "children2", "getacl",
    "sync", "close", "reconnect", "setwatches", "badpath", "pipeline", "system",
    "addauth", "whoami", "acl", "setacl",
    "container", "ttl", "quota",
    "addwatch", "removewatches", "checkwatches", "setwatches2", "getephemerals", "allchildren",
    "multi", "multiread",
]

# Wire constants (ZooDefs.OpCode, KeeperException.Code); see /work/shared/ZK-FACTS.md.
OP = dict(create=1, delete=2, exists=3, getData=4, setData=5, getACL=6, setACL=7,
          getChildren=8, sync=9, ping=11, getChildren2=12, check=13, multi=14, create2=15,
          checkWatches=17, removeWatches=18, createContainer=19, createTTL=21, multiRead=22,
          auth=100, setWatches=101, getEphemerals=103, getAllChildrenNumber=104,
          setWatches2=105, addWatch=106, whoAmI=107, closeSession=-11, error=-1)
XID_NOTIFICATION, XID_PING, XID_AUTH, XID_SET_WATCHES = -1, -2, -4, -8
ERR_AUTHFAILED = -115

SESSION_TIMEOUT_MS = 30000
IO_TIMEOUT_S = 10.0
NAMES = ["a", "b", "c"]
QUOTA_ROOT = "/zookeeper/quota"
SEQ_NAMES = ["q0000000000", "q0000000001", "q0000000002"]


def digest(user, pw):
    return user + ":" + base64.b64encode(hashlib.sha1((user + ":" + pw).encode()).digest()).decode()


ACLS = {
    "open": [(31, "world", "anyone")],
    "read": [(1, "world", "anyone")],
    "noadmin": [(15, "world", "anyone")],
    "cd": [(12, "world", "anyone")],
    "creator": [(31, "auth", "")],
    "u1": [(31, "digest", digest("u1", "p1"))],
    "u1r_w": [(1, "world", "anyone"), (31, "digest", digest("u1", "p1"))],
    "u2": [(31, "digest", digest("u2", "p2"))],
    "ip": [(31, "ip", "127.0.0.1")],
    "ipnet": [(31, "ip", "10.0.0.0/8")],
    "badscheme": [(31, "foo", "bar")],
    "empty": [],
    "badperm": [(0, "world", "anyone")],
}
AUTHS = [("digest", b"u1:p1"), ("digest", b"u2:p2"), ("digest", b"u1:wrong"),
         ("foo", b"x"), ("ip", b"127.0.0.1"), ("digest", b"super:sp")]
SUPER_DIGEST = digest("super", "sp")      # both servers' superDigest


# ---------------------------------------------------------------------------------------------
# One session on one server: framed send, replies matched by xid, notifications queued.

class Sess:
    def __init__(self, port):
        self.port = port
        self.sock = None
        self.sid = 0
        self.passwd = b"\x00" * 16
        self.xid = 0
        self.events = []
        self.broken = False
        self.closed = False      # closeSession done: nothing more to read

    def open_send(self, sid=0, passwd=None, last_zxid=0):
        self.sock = socket.create_connection((harness.HOST, self.port), timeout=IO_TIMEOUT_S)
        self.sock.settimeout(IO_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(frame(connect_request(SESSION_TIMEOUT_MS, sid,
                                                passwd or b"\x00" * 16, last_zxid)))

    def open_recv(self):
        resp = parse_connect_response(self._frame())
        if resp["session_id"] != 0:
            self.sid, self.passwd = resp["session_id"], resp["passwd"]
        self.broken = False
        return resp

    def _frame(self):
        hdr = self._exact(4)
        (n,) = struct.unpack(">i", hdr)
        if n < 0 or n > 16 << 20:
            raise ValueError("bad frame length %d" % n)
        return self._exact(n)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise EOFError("closed by server")
            out += b
        return out

    def send(self, op, body=b"", xid=None):
        if self.sock is None:
            raise EOFError("no connection")
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(frame(p_int(xid) + p_int(op) + body))
        return xid

    def recv(self, want):
        """Read until the reply to xid `want`; queue notifications met on the way."""
        while True:
            r = Reader(self._frame())
            xid, zxid, err = r.int(), r.long(), r.int()
            if xid == XID_NOTIFICATION:
                self.events.append((r.int(), r.int(), r.str()))
                continue
            if xid != want:
                raise ValueError("reply xid %d, expected %d" % (xid, want))
            return zxid, err, r

    def drop(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


def call(sess, op, body=b"", xid=None):
    """Generator: send, yield (let the other server get its request), then read the reply."""
    x = sess.send(op, body, xid)
    yield
    return sess.recv(x)


# ---------------------------------------------------------------------------------------------
# One server's view of one seed run: sessions, zxid base, normalizers, op executors.

class Side:
    def __init__(self, name, port, ns, t0_ms):
        self.name = name
        self.port = port
        self.ns = ns
        self.t0_ms = t0_ms
        self.base = None
        self.sessions = []
        self.sid_index = {}
        self.nsessions = 0
        self.last_zxid = 0
        self.times = {}          # zxid -> time (ms) from every Stat seen in this run

    # --- normalizers
    def n_zxid(self, z):
        if z == 0 or self.base is None:
            return z
        return ("pre", z) if z < self.base else z - self.base

    def n_time(self, t):
        """Sane: after the run started and not in the future (a minute of slack each way)."""
        return self.t0_ms - 60000 <= t <= time.time() * 1000 + 60000

    def n_owner(self, o):
        if o == 0:
            return 0
        if o == -(1 << 63):
            return "container"
        if (o >> 56) & 0xFF == 0xFF:
            return ("ttl", o & ((1 << 40) - 1))
        return "S%d" % self.sid_index[o] if o in self.sid_index else ("foreign-session",)

    def n_times(self, pairs):
        """True if every (zxid, time) agrees with all seen before: one time per zxid, and times
        never decrease as zxids grow (a txn's time is fixed when it is logged)."""
        ok = True
        for z, t in pairs:
            if z == 0:
                continue
            for z2, t2 in self.times.items():
                if (z2 == z and t2 != t) or (z2 < z and t2 > t) or (z2 > z and t2 < t):
                    ok = False
            self.times.setdefault(z, t)
        return ok

    def n_stat(self, st):
        return (("czxid", self.n_zxid(st["czxid"])), ("mzxid", self.n_zxid(st["mzxid"])),
                ("pzxid", self.n_zxid(st["pzxid"])),
                ("T", self.n_times(((st["czxid"], st["ctime"]), (st["mzxid"], st["mtime"]))),
                 self.n_time(st["ctime"]), self.n_time(st["mtime"])),
                ("version", st["version"]), ("cversion", st["cversion"]),
                ("aversion", st["aversion"]), ("owner", self.n_owner(st["ephemeralOwner"])),
                ("dataLength", st["dataLength"]), ("numChildren", st["numChildren"]))

    def n_path(self, p):
        if p is None:
            return None
        for short, full in (("~", self.ns), ("Q~", QUOTA_ROOT + self.ns)):
            if p == full or p.startswith(full + "/"):
                return short + p[len(full):]
        return p

    def path(self, rel):
        """Op paths are stored relative: '~/a/b' in the namespace, 'Q~/a' in its quota tree."""
        if rel.startswith("Q~"):
            return QUOTA_ROOT + self.ns + rel[2:]
        return self.ns + rel[1:] if rel.startswith("~") else rel

    def take_events(self, i):
        s = self.sessions[i]
        ev = [(e[0], e[1], self.n_path(e[2])) if len(e) == 3 and isinstance(e[0], int) else e
              for e in s.events]
        s.events = []
        return ev

    # --- session management
    def new_session(self, i):
        s = Sess(self.port)
        s.open_send()
        yield
        s.open_recv()
        self.sid_index[s.sid] = self.nsessions
        self.nsessions += 1
        if i < len(self.sessions):
            self.sessions[i] = s
        else:
            self.sessions.append(s)
        return s

    def hdr(self, zxid, err):
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        return (err, self.n_zxid(zxid))

    def reconnect(self, i, how=True):
        """Same session id and password over a new connection; how="future" claims to have
        seen a zxid the server has not reached, "badpasswd" sends a wrong password (both are
        refused; the connection is then lost and the sync step reconnects properly)."""
        s = self.sessions[i]
        s.drop()
        passwd = s.passwd
        if how == "badpasswd":
            passwd = bytes([passwd[0] ^ 1]) + passwd[1:]
        s.open_send(s.sid, passwd, self.last_zxid + 1000 if how == "future" else 0)
        yield
        resp = s.open_recv()
        ok = resp["session_id"] == s.sid and resp["session_id"] != 0
        if not ok:
            s.broken = True
        return ("reconnect", ok, resp["timeout_ms"])


# ---------------------------------------------------------------------------------------------
# Request bodies and response decoders.

def body_create(path, data, acl, flags, ttl=None):
    b = p_str(path) + p_buf(data) + p_acl(acl) + p_int(flags)
    return b + p_long(ttl) if ttl is not None else b


def r_acl(r):
    n = r.int()
    return [(r.int(), r.str(), r.str()) for _ in range(max(n, 0))]


def sorted_children(lst):
    return None if lst is None else sorted(lst)


def parse_multi(side, r, read):
    """MultiResponse: (MultiHeader{type, done, err} + body)* until done."""
    out = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            break
        if typ == OP["error"]:
            out.append(("error", r.int()))
        elif typ == OP["create"]:
            out.append(("create", side.n_path(r.str())))
        elif typ in (OP["create2"], OP["createContainer"], OP["createTTL"]):
            out.append(("create2", side.n_path(r.str()), side.n_stat(r.stat())))
        elif typ == OP["setData"]:
            out.append(("set", side.n_stat(r.stat())))
        elif typ == OP["getData"] and read:
            out.append(("get", r.buf(), side.n_stat(r.stat())))
        elif typ == OP["getChildren"] and read:
            out.append(("children", sorted_children(r.vec_str())))
        elif typ in (OP["delete"], OP["check"]):
            out.append((typ,))
        else:
            out.append(("unknown-type", typ))
            break
    return out


# ---------------------------------------------------------------------------------------------
# Executors: exec_<kind>(side, *args) is a generator returning the normalized result.

def x_create(side, s, path, data, flags, acl, opname="create"):
    sess = side.sessions[s]
    z, err, r = yield from call(sess, OP[opname], body_create(side.path(path), data, ACLS[acl], flags))
    res = side.hdr(z, err)
    if err == 0:
        if opname == "create":
            return res + (side.n_path(r.str()),)
        return res + (side.n_path(r.str()), side.n_stat(r.stat()))
    return res


def x_ttl(side, s, path, data, flags, acl, ttl):
    sess = side.sessions[s]
    z, err, r = yield from call(sess, OP["createTTL"],
                                body_create(side.path(path), data, ACLS[acl], flags, ttl))
    res = side.hdr(z, err)
    return res + (side.n_path(r.str()), side.n_stat(r.stat())) if err == 0 else res


def x_delete(side, s, path, version):
    z, err, _ = yield from call(side.sessions[s], OP["delete"], p_str(side.path(path)) + p_int(version))
    return side.hdr(z, err)


def x_set(side, s, path, data, version):
    z, err, r = yield from call(side.sessions[s], OP["setData"],
                                p_str(side.path(path)) + p_buf(data) + p_int(version))
    res = side.hdr(z, err)
    return res + (side.n_stat(r.stat()),) if err == 0 else res


def x_exists(side, s, path, watch):
    z, err, r = yield from call(side.sessions[s], OP["exists"], p_str(side.path(path)) + p_bool(watch))
    res = side.hdr(z, err)
    return res + (side.n_stat(r.stat()),) if err == 0 else res


def x_get(side, s, path, watch):
    z, err, r = yield from call(side.sessions[s], OP["getData"], p_str(side.path(path)) + p_bool(watch))
    res = side.hdr(z, err)
    return res + (r.buf(), side.n_stat(r.stat())) if err == 0 else res


def x_children(side, s, path, watch, two):
    op = OP["getChildren2"] if two else OP["getChildren"]
    z, err, r = yield from call(side.sessions[s], op, p_str(side.path(path)) + p_bool(watch))
    res = side.hdr(z, err)
    if err:
        return res
    kids = sorted_children(r.vec_str())
    return res + ((kids, side.n_stat(r.stat())) if two else (kids,))


def x_getacl(side, s, path):
    z, err, r = yield from call(side.sessions[s], OP["getACL"], p_str(side.path(path)))
    res = side.hdr(z, err)
    return res + (r_acl(r), side.n_stat(r.stat())) if err == 0 else res


def x_setacl(side, s, path, acl, version):
    z, err, r = yield from call(side.sessions[s], OP["setACL"],
                                p_str(side.path(path)) + p_acl(ACLS[acl]) + p_int(version))
    res = side.hdr(z, err)
    return res + (side.n_stat(r.stat()),) if err == 0 else res


def x_sync(side, s, path):
    z, err, r = yield from call(side.sessions[s], OP["sync"], p_str(side.path(path)))
    res = side.hdr(z, err)
    return res + (side.n_path(r.str()),) if err == 0 else res


def x_expire(side, s):
    """Drop session s's connection without closeSession and wait until both servers must
    have expired it (timeout + 2 ticks, from the first server's drop); then reopen slot s.
    The expiry's closeSession txn and its ephemerals' events are compared as close's are."""
    sess = side.sessions[s]
    sess.drop()
    deadline = EXPIRE["deadline"]
    if deadline is None or deadline < time.monotonic():
        deadline = EXPIRE["deadline"] = time.monotonic() + EXPIRE["wait_s"]
    while time.monotonic() < deadline:
        yield               # the other server's turn: both keep their sessions alive
        for i, o in enumerate(side.sessions):
            if i != s and o.sock is not None and not o.broken:
                try:
                    o.recv(o.send(OP["ping"], b"", XID_PING))
                except IO_ERRORS:
                    o.broken = True
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    sess.closed = True
    yield from side.new_session(s)
    return ("expired",)


EXPIRE = {"wait_s": None, "deadline": None}


def x_close(side, s):
    sess = side.sessions[s]
    z, err, _ = yield from call(sess, OP["closeSession"])
    sess.drop()
    sess.closed = True
    res = side.hdr(z, err)
    yield from side.new_session(s)
    return res + ("reopened",)


def watches_body(side, rel, lists):
    relz = max(side.last_zxid + rel, 0)
    return p_long(relz) + b"".join(p_vec_str([side.path(p) for p in lst]) for lst in lists)


def x_setwatches(side, s, rel, lists, v2, reconnect):
    res = ()
    if reconnect:
        res = yield from side.reconnect(s, reconnect)
    if not any(lists) or side.sessions[s].broken:
        return res
    op = OP["setWatches2"] if v2 else OP["setWatches"]
    z, err, _ = yield from call(side.sessions[s], op, watches_body(side, rel, lists), XID_SET_WATCHES)
    return res + side.hdr(z, err)


def x_addauth(side, s, scheme, auth):
    z, err, _ = yield from call(side.sessions[s], OP["auth"],
                                p_int(0) + p_str(scheme) + p_buf(auth), XID_AUTH)
    return side.hdr(z, err)


def x_whoami(side, s):
    z, err, r = yield from call(side.sessions[s], OP["whoAmI"])
    res = side.hdr(z, err)
    if err:
        return res
    n = r.int()
    return res + (sorted((r.str(), r.str()) for _ in range(max(n, 0))),)


def multi_body(side, subops):
    b = b""
    for sub in subops:
        k = sub[0]
        if k in ("create", "create2", "createContainer"):
            _, path, data, flags, acl = sub
            b += p_int(OP[k]) + p_bool(False) + p_int(-1)
            b += body_create(side.path(path), data, ACLS[acl], flags)
        elif k == "createTTL":
            _, path, data, flags, acl, ttl = sub
            b += p_int(OP[k]) + p_bool(False) + p_int(-1)
            b += body_create(side.path(path), data, ACLS[acl], flags, ttl)
        elif k == "delete" or k == "check":
            _, path, version = sub
            b += p_int(OP[k]) + p_bool(False) + p_int(-1) + p_str(side.path(path)) + p_int(version)
        elif k == "setData":
            _, path, data, version = sub
            b += p_int(OP[k]) + p_bool(False) + p_int(-1)
            b += p_str(side.path(path)) + p_buf(data) + p_int(version)
        elif k in ("getData", "getChildren"):
            _, path = sub
            b += p_int(OP[k]) + p_bool(False) + p_int(-1) + p_str(side.path(path)) + p_bool(False)
        else:
            raise AssertionError(k)
    return b + p_int(-1) + p_bool(True) + p_int(-1)


def pipe_request(side, sub):
    """(opcode, body) of one pipelined request."""
    k, path = sub[0], side.path(sub[1])
    if k == "create":
        return OP["create2"], body_create(path, sub[2], ACLS["open"], sub[3])
    if k == "delete":
        return OP["delete"], p_str(path) + p_int(sub[2])
    if k == "set":
        return OP["setData"], p_str(path) + p_buf(sub[2]) + p_int(sub[3])
    if k in ("get", "exists", "children"):
        op = {"get": "getData", "exists": "exists", "children": "getChildren2"}[k]
        return OP[op], p_str(path) + p_bool(sub[2])
    if k == "sync":
        return OP["sync"], p_str(path)
    raise AssertionError(k)


def pipe_reply(side, sub, z, err, r):
    res = side.hdr(z, err)
    if err:
        return res
    k = sub[0]
    if k == "create":
        return res + (side.n_path(r.str()), side.n_stat(r.stat()))
    if k in ("set", "exists"):
        return res + (side.n_stat(r.stat()),)
    if k == "get":
        return res + (r.buf(), side.n_stat(r.stat()))
    if k == "children":
        return res + (sorted_children(r.vec_str()), side.n_stat(r.stat()))
    if k == "sync":
        return res + (side.n_path(r.str()),)
    return res


def x_pipeline(side, s, subs):
    """Send every request before reading any reply: replies must come in order, each
    seeing the effects of the requests before it; the session's events are interleaved with
    reply markers so their order relative to the replies is compared too."""
    sess = side.sessions[s]
    xids = []
    for sub in subs:
        op, body = pipe_request(side, sub)
        xids.append(sess.send(op, body))
    yield
    out = []
    for j, (sub, x) in enumerate(zip(subs, xids)):
        z, err, r = sess.recv(x)
        sess.events.append(("reply", j))
        out.append(pipe_reply(side, sub, z, err, r))
    return tuple(out)


def x_multi(side, s, subops, read):
    op = OP["multiRead"] if read else OP["multi"]
    z, err, r = yield from call(side.sessions[s], op, multi_body(side, subops))
    res = side.hdr(z, err)
    if r.remaining():
        res = res + (parse_multi(side, r, read),)
    return res


def x_addwatch(side, s, path, mode):
    z, err, _ = yield from call(side.sessions[s], OP["addWatch"], p_str(side.path(path)) + p_int(mode))
    return side.hdr(z, err)


def x_watchreq(side, s, path, wtype, remove):
    op = OP["removeWatches"] if remove else OP["checkWatches"]
    z, err, _ = yield from call(side.sessions[s], op, p_str(side.path(path)) + p_int(wtype))
    return side.hdr(z, err)


def x_ephemerals(side, s, path):
    z, err, r = yield from call(side.sessions[s], OP["getEphemerals"], p_str(side.path(path)))
    res = side.hdr(z, err)
    if err:
        return res
    lst = r.vec_str()
    return res + (None if lst is None else sorted(side.n_path(p) for p in lst),)


def x_allchildren(side, s, path):
    z, err, r = yield from call(side.sessions[s], OP["getAllChildrenNumber"], p_str(side.path(path)))
    res = side.hdr(z, err)
    return res + (r.int(),) if err == 0 else res


EXEC = {
    "create": x_create, "ttl": x_ttl, "delete": x_delete, "set": x_set, "exists": x_exists,
    "get": x_get, "children": x_children, "getacl": x_getacl, "setacl": x_setacl, "sync": x_sync,
    "close": x_close, "expire": x_expire, "setwatches": x_setwatches, "addauth": x_addauth, "whoami": x_whoami,
    "multi": x_multi, "addwatch": x_addwatch, "watchreq": x_watchreq,
    "getephemerals": x_ephemerals, "allchildren": x_allchildren, "pipeline": x_pipeline,
}


# ---------------------------------------------------------------------------------------------
# Generation: a seed -> (number of sessions, list of ops).  Kind generators take (rng, nsess).

def g_path(rng, allow_bad=False):
    r = rng.random()
    if r < 0.05:
        return "~"
    depth = 1 if r < 0.5 else 2 if r < 0.85 else 3
    parts = []
    for _ in range(depth):
        parts.append(rng.choice(SEQ_NAMES) if rng.random() < 0.1 else rng.choice(NAMES))
    return "~/" + "/".join(parts)


def g_parent(rng):
    p = g_path(rng)
    return p if rng.random() < 0.8 or p == "~" else p.rsplit("/", 1)[0]


def g_data(rng):
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.3:
        return b""
    return bytes(rng.choice(b"xyz0123") for _ in range(rng.randint(1, 6)))


def g_version(rng):
    return -1 if rng.random() < 0.4 else rng.randint(0, 3)


def g_flags(rng):
    return rng.choice([0, 0, 0, 1, 1, 2, 3])


def g_create_path(rng, flags):
    if flags & 2:
        return g_parent(rng).rstrip("/") + "/q"
    return g_path(rng)


ACL_OK = ["open", "open", "open", "read", "noadmin", "cd", "creator", "u1", "u1r_w", "u2", "ip",
          "ipnet"]
ACL_BAD = ["badscheme", "empty", "badperm"]


def g_acl(rng):
    return rng.choice(ACL_BAD) if rng.random() < 0.1 else rng.choice(ACL_OK)


def s_(rng, n):
    return rng.randrange(n)


def gen_create(rng, n):
    f = g_flags(rng)
    return ("create", s_(rng, n), g_create_path(rng, f), g_data(rng), f, "open", "create")


def gen_create2(rng, n):
    f = g_flags(rng)
    return ("create", s_(rng, n), g_create_path(rng, f), g_data(rng), f, "open", "create2")


def gen_acl(rng, n):
    if rng.random() < 0.02:  # /zookeeper/config is world:anyone READ only: NoAuth
        return ("create", s_(rng, n), "/zookeeper/config/x", b"", 0, "open", "create")
    f = g_flags(rng)
    return ("create", s_(rng, n), g_create_path(rng, f), g_data(rng), f, g_acl(rng),
            rng.choice(["create", "create2"]))


def gen_container(rng, n):
    f = 4 if rng.random() < 0.85 else rng.choice([0, 1, 5])
    return ("create", s_(rng, n), g_path(rng), g_data(rng), f, "open", "createContainer")


def gen_ttl(rng, n):
    f = rng.choice([5, 5, 5, 6, 6, 0, 4])
    ttl = rng.choice([1000000, 1000000, 1000000, 3600000, 0, -1, 1 << 41])
    if f not in (5, 6) and ttl < 0:
        ttl = 0     # Apache ZooKeeper 3.8.0 exits on createTTL, non-TTL mode, ttl<0 (README)
    path = g_parent(rng) + "/q" if f == 6 else g_path(rng)
    return ("ttl", s_(rng, n), path, g_data(rng), f, "open", ttl)


def gen_delete(rng, n):
    return ("delete", s_(rng, n), g_path(rng), g_version(rng))


def gen_set(rng, n):
    return ("set", s_(rng, n), g_path(rng), g_data(rng), g_version(rng))


def gen_exists(rng, n):
    return ("exists", s_(rng, n), g_path(rng), rng.random() < 0.6)


def gen_get(rng, n):
    return ("get", s_(rng, n), g_path(rng), rng.random() < 0.6)


def gen_children(rng, n):
    return ("children", s_(rng, n), g_path(rng), rng.random() < 0.6, False)


def gen_children2(rng, n):
    return ("children", s_(rng, n), g_path(rng), rng.random() < 0.6, True)


def gen_getacl(rng, n):
    return ("getacl", s_(rng, n), g_path(rng))


def gen_setacl(rng, n):
    return ("setacl", s_(rng, n), g_path(rng), g_acl(rng), g_version(rng))


def gen_sync(rng, n):
    return ("sync", s_(rng, n), g_path(rng) if rng.random() < 0.8 else "/")


def gen_expire(rng, n):
    return ("expire", s_(rng, n))


def gen_close(rng, n):
    return ("close", s_(rng, n))


def g_watch_lists(rng, k):
    return tuple(tuple(sorted({g_path(rng) for _ in range(rng.randint(0, 2))})) for _ in range(k))


def gen_reconnect(rng, n):
    how = rng.choice([True] * 8 + ["future", "badpasswd"])
    return ("setwatches", s_(rng, n), rng.choice([0, 0, -1, -3, -8]), g_watch_lists(rng, 3),
            False, how)


def gen_setwatches(rng, n):
    return ("setwatches", s_(rng, n), rng.choice([0, 0, -1, -3, -8]), g_watch_lists(rng, 3),
            False, rng.random() < 0.5)


def gen_setwatches2(rng, n):
    return ("setwatches", s_(rng, n), rng.choice([0, 0, -1, -3, -8]), g_watch_lists(rng, 5),
            True, rng.random() < 0.5)


BAD_PATHS = ["~/a/", "~//a", "~/a/..", "~/./b", "~/a\u0000b", "a", ""]


def gen_badpath(rng, n):
    p = rng.choice(BAD_PATHS)
    k = rng.choice(["create", "delete", "set", "exists", "get", "children"])
    s = s_(rng, n)
    if k == "create":
        return ("create", s, p, b"", rng.choice([0, 1, 2]), "open", "create")
    if k == "delete":
        return ("delete", s, p, -1)
    if k == "set":
        return ("set", s, p, b"x", -1)
    if k == "children":
        return ("children", s, p, rng.random() < 0.5, False)
    return (k, s, p, rng.random() < 0.5)


def gen_addauth(rng, n):
    scheme, auth = rng.choice(AUTHS)
    return ("addauth", s_(rng, n), scheme, auth)


def gen_whoami(rng, n):
    return ("whoami", s_(rng, n))


def g_sub_write(rng):
    k = rng.choice(["create", "create", "create2", "delete", "setData", "check", "check",
                    "createContainer", "createTTL"])
    if rng.random() < 0.03:
        k = "mixed"
    if k in ("create", "create2"):
        f = g_flags(rng)
        return (k, g_create_path(rng, f), g_data(rng), f, "open")
    if k == "createContainer":
        return (k, g_path(rng), g_data(rng), rng.choice([4, 4, 4, 0]), "open")
    if k == "createTTL":
        f = rng.choice([5, 5, 6, 0])
        return (k, g_create_path(rng, f & 2), g_data(rng), f,
                "open", rng.choice([1000000, 1000000, 0, 1 << 41]))
    if k == "mixed":        # a read inside a write multi (and vice versa in multiread)
        return (rng.choice(["getData", "getChildren"]), g_path(rng))
    if k == "setData":
        return (k, g_path(rng), g_data(rng), g_version(rng))
    return (k, g_path(rng), g_version(rng))


def gen_multi(rng, n):
    cnt = rng.choice([0, 1, 2, 2, 3, 3, 4, 5])
    return ("multi", s_(rng, n), tuple(g_sub_write(rng) for _ in range(cnt)), False)


def gen_multiread(rng, n):
    cnt = rng.choice([0, 1, 2, 3, 4])
    subs = [(rng.choice(["getData", "getChildren"]), g_path(rng)) for _ in range(cnt)]
    if cnt and rng.random() < 0.05:
        subs[rng.randrange(cnt)] = ("check", g_path(rng), g_version(rng))
    return ("multi", s_(rng, n), tuple(subs), True)


def gen_addwatch(rng, n):
    return ("addwatch", s_(rng, n), g_path(rng), rng.choice([0, 0, 1, 1, 1, 2]))


def gen_removewatches(rng, n):
    return ("watchreq", s_(rng, n), g_path(rng), rng.choice([1, 2, 3, 1, 2, 3, 4, 5]), True)


def gen_checkwatches(rng, n):
    return ("watchreq", s_(rng, n), g_path(rng), rng.choice([1, 2, 3, 1, 2, 3, 4, 5]), False)


def gen_getephemerals(rng, n):
    return ("getephemerals", s_(rng, n), rng.choice(["~", "~", "~/a", "/", "~/b/"]))


QUOTA_PATHS = ["Q~", "Q~/a", "Q~/b", "Q~/a/b"]
# Only well-formed StatsTrack strings: Apache ZooKeeper 3.8.0 exits when a write under a quota
# root meets an unparsable zookeeper_stats / zookeeper_limits (README).
QUOTA_DATA = [b"count=3,bytes=-1", b"count=-1,bytes=10", b"count=2,bytes=-1,countHardLimit=4",
              b"count=0,bytes=0"]


def gen_quota(rng, n):
    """Ops on the namespace's quota tree /zookeeper/quota/d<seed>/...: quota nodes, their
    zookeeper_limits (what setquota writes) and zookeeper_stats (kept by the server)."""
    p = rng.choice(QUOTA_PATHS)
    r = rng.random()
    if r < 0.3:
        # what zkCli's setquota does: the quota path's nodes, then limits, then stats
        s = s_(rng, n)
        ops = [("create", s, q, b"", 0, "open", "create")
               for q in dict.fromkeys(["Q~", "Q~/a", p]) if q == "Q~" or p.startswith(q)]
        ops.append(("create", s, p + "/zookeeper_limits", rng.choice(QUOTA_DATA[:3]), 0,
                    "open", "create"))
        ops.append(("create", s, p + "/zookeeper_stats", b"count=0,bytes=0", 0, "open", "create"))
        return ops
    leaf = p + "/" + rng.choice(["zookeeper_limits", "zookeeper_limits", "zookeeper_stats"])
    if r < 0.6:
        return ("create", s_(rng, n), leaf, rng.choice(QUOTA_DATA), 0, "open", "create")
    if r < 0.85:
        return ("get", s_(rng, n), leaf, False)
    if r < 0.95:
        return ("set", s_(rng, n), leaf, rng.choice(QUOTA_DATA), -1)
    return ("delete", s_(rng, n), rng.choice([leaf, p]), -1)


def gen_pipeline(rng, n):
    subs = []
    for _ in range(rng.randint(2, 6)):
        k = rng.choice(["create", "create", "delete", "set", "get", "exists", "children", "sync"])
        if k == "create":
            f = g_flags(rng)
            subs.append((k, g_create_path(rng, f), g_data(rng), f))
        elif k == "delete":
            subs.append((k, g_path(rng), g_version(rng)))
        elif k == "set":
            subs.append((k, g_path(rng), g_data(rng), g_version(rng)))
        elif k == "sync":
            subs.append((k, g_path(rng)))
        else:
            subs.append((k, g_path(rng), rng.random() < 0.5))
    return ("pipeline", s_(rng, n), tuple(subs))


SYS_PATHS = ["/zookeeper", "/zookeeper/config", "/zookeeper/quota"]


def gen_system(rng, n):
    """The system nodes every server has: reads, and writes that must fail (ACL or version)."""
    p = rng.choice(SYS_PATHS)
    k = rng.choice(["exists", "get", "children", "getacl", "set", "delete", "create"])
    s = s_(rng, n)
    if k == "getacl":
        return ("getacl", s, p)
    if k == "children":
        return ("children", s, p, False, rng.random() < 0.5)
    if k == "set":
        return ("set", s, p, b"x", 99)
    if k == "delete":
        return ("delete", s, p, 99)
    if k == "create":       # exists already (a child of /zookeeper/config: the acl kind)
        return ("create", s, p, b"", 0, "open", "create")
    return (k, s, p, False)


def gen_allchildren(rng, n):
    return ("allchildren", s_(rng, n), g_path(rng))


KINDS = {
    "create": (gen_create, 12), "create2": (gen_create2, 6), "delete": (gen_delete, 8),
    "set": (gen_set, 8), "exists": (gen_exists, 5), "get": (gen_get, 5),
    "children": (gen_children, 4), "children2": (gen_children2, 3), "getacl": (gen_getacl, 2),
    "sync": (gen_sync, 1), "close": (gen_close, 1), "reconnect": (gen_reconnect, 1),
    "setwatches": (gen_setwatches, 1), "badpath": (gen_badpath, 1),
    "acl": (gen_acl, 5), "setacl": (gen_setacl, 3), "addauth": (gen_addauth, 2),
    "whoami": (gen_whoami, 1), "multi": (gen_multi, 5), "multiread": (gen_multiread, 2),
    "addwatch": (gen_addwatch, 3), "removewatches": (gen_removewatches, 2),
    "checkwatches": (gen_checkwatches, 1), "setwatches2": (gen_setwatches2, 1),
    "getephemerals": (gen_getephemerals, 1), "allchildren": (gen_allchildren, 1),
    "container": (gen_container, 3), "ttl": (gen_ttl, 3), "quota": (gen_quota, 4),
    "pipeline": (gen_pipeline, 3), "system": (gen_system, 1), "expire": (gen_expire, 1),
}
# expire waits out a session timeout: only with --session-timeout, never in "all".
assert sorted(KINDS) == sorted(ALL_KINDS + ["expire"])


def generate(seed, kinds, nops):
    rng = random.Random(seed)
    nsess = rng.randint(2, 4)
    table = [(KINDS[k][0], KINDS[k][1]) for k in kinds]
    gens = [g for g, _ in table]
    weights = [w for _, w in table]
    ops = []
    while len(ops) < nops:
        op = rng.choices(gens, weights)[0](rng, nsess)
        ops.extend(op if isinstance(op, list) else [op])    # a generator may emit a few ops
    return nsess, ops[:nops]


# ---------------------------------------------------------------------------------------------
# Lock-step execution on both servers.

IO_ERRORS = (OSError, EOFError, ValueError)


def guarded(side, gen, sess_index=None):
    try:
        return (yield from gen)
    except IO_ERRORS:
        if sess_index is not None and sess_index < len(side.sessions):
            side.sessions[sess_index].broken = True
        return ("io-error",)    # EOF, reset or broken pipe: which one is timing


def both(gens):
    """Drive one generator per server, alternating, until all return; return their results."""
    res = [None] * len(gens)
    live = list(range(len(gens)))
    while live:
        for i in list(live):
            try:
                next(gens[i])
            except StopIteration as e:
                res[i] = e.value
                live.remove(i)
    return res


def sync_sessions(side):
    """Ping every session; a broken connection is reopened with its id (recorded as an event)."""
    pending = []
    for i, s in enumerate(side.sessions):
        if s.broken or s.sock is None:
            continue
        try:
            pending.append((i, s.send(OP["ping"], b"", XID_PING)))
        except IO_ERRORS:
            s.broken = True
    yield
    for i, x in pending:
        s = side.sessions[i]
        try:
            s.recv(x)
        except IO_ERRORS:
            s.broken = True
    for i, s in enumerate(side.sessions):
        if s.broken:
            s.events.append(("connection-lost",))
            try:
                r = yield from side.reconnect(i)
                s.events.append(r)
            except IO_ERRORS:
                s.events.append(("reconnect-failed",))


def render(v, limit=400):
    t = repr(v)
    return t if len(t) <= limit else t[:limit] + "..."


class Known:
    """known-differences.txt, one rule a line (# comments):
         <regex> :: <reason>            a difference whose rendering matches is ignored
         unordered <kind> :: <reason>   the events of ops of that kind are compared as multisets
    """

    def __init__(self, path):
        self.rules = []
        self.unordered = set()
        if path and Path(path).exists():
            for line in Path(path).read_text().splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                pat, sep, reason = line.partition(" :: ")
                if not sep or not reason.strip():
                    raise SystemExit("%s: a line needs `regex :: reason`: %r" % (path, line))
                if pat.startswith("unordered "):
                    self.unordered.add(pat.split(None, 1)[1].strip())
                else:
                    self.rules.append((re.compile(pat), reason.strip()))

    def same_events(self, kind, a, b):
        if kind in self.unordered:
            return sorted(a, key=repr) == sorted(b, key=repr)
        return a == b

    def filter(self, diffs):
        return [d for d in diffs if not any(p.search(d) for p, _ in self.rules)]


class ServerDied(Exception):
    pass


class Run:
    """Both servers, the enabled kinds, the known differences; runs and shrinks seeds."""

    def __init__(self, ports, known, verbose=False, fault=None, dead=lambda: []):
        self.dead = dead                    # () -> names of servers no longer running
        self.ports = ports                  # [reference port, tested port]
        self.known = known
        self.verbose = verbose
        self.fault = fault                  # self-test hook: f(op, zkd_result) -> result
        self.replays = 0
        self.stats = {}                     # (kind, apache error) -> count
        self.t0_ms = int(time.time() * 1000)

    def execute(self, ns, nsess, ops, stop_at_diff=True):
        """Replay ops in namespace ns on both servers.  Returns (index, diffs, trace) of the
        first op that differs (index None if none) with the per-op trace so far."""
        sides = [Side(name, port, ns, self.t0_ms) for name, port in zip(("apache", "zkd"), self.ports)]
        trace = []
        try:
            both([self._setup(sd, nsess) for sd in sides])
            for k, op in enumerate(ops):
                kind, s = op[0], op[1]
                res = both([guarded(sd, EXEC[kind](sd, *op[1:]), s) for sd in sides])
                if self.fault:
                    res[1] = self.fault(op, res[1])
                if any(r and r[0] == "io-error" for r in res) and self.dead():
                    raise ServerDied("%s exited during op %d %s" % (self.dead(), k, render(op)))
                both([sync_sessions(sd) for sd in sides])
                evs = [[sd.take_events(i) for i in range(nsess)] for sd in sides]
                diffs = []
                if res[0] != res[1]:
                    diffs.append("op %s result: apache=%s zkd=%s"
                                 % (render(op), render(res[0]), render(res[1])))
                for i in range(nsess):
                    if not self.known.same_events(kind, evs[0][i], evs[1][i]):
                        diffs.append("op %s events of session %d: apache=%s zkd=%s"
                                     % (render(op), i, render(evs[0][i]), render(evs[1][i])))
                diffs = self.known.filter(diffs)
                trace.append((op, res, evs))
                key = (kind, res[0][0] if isinstance(res[0], tuple) and res[0] else res[0])
                if not isinstance(key[1], (int, str)):
                    key = (kind, type(key[1]).__name__)
                self.stats[key] = self.stats.get(key, 0) + 1
                if self.verbose:
                    print("%4d %s\n     apache=%s\n     zkd   =%s%s" % (
                        k, render(op), render(res[0]), render(res[1]),
                        "".join("\n     events s%d: %s" % (i, render(evs[0][i]))
                                for i in range(nsess) if evs[0][i] or evs[1][i])))
                if diffs and stop_at_diff:
                    return k, diffs, trace
            return None, [], trace
        finally:
            for sd in sides:
                self._teardown(sd)

    def _setup(self, side, nsess):
        for i in range(nsess):
            yield from side.new_session(i)
        z, err, _ = yield from call(side.sessions[0], OP["create"],
                                    body_create(side.ns, b"", ACLS["open"], 0))
        if err != 0:
            raise RuntimeError("%s: cannot create namespace %s: %d" % (side.name, side.ns, err))
        side.base = z
        side.last_zxid = z

    def _teardown(self, side):
        """Close every session, then delete the namespace (not compared)."""
        for s in side.sessions:
            try:
                if s.sock is not None and not s.broken:
                    s.recv(s.send(OP["closeSession"]))
            except IO_ERRORS:
                pass
            s.drop()
        try:
            c = Sess(side.port)
            c.open_send()
            c.open_recv()
            self._rmr(c, side.ns)
            self._rmr(c, QUOTA_ROOT + side.ns)
            c.send(OP["closeSession"])
            c.drop()
        except IO_ERRORS:
            pass

    def _rmr(self, c, path):
        _, err, r = c.recv(c.send(OP["getChildren"], p_str(path) + p_bool(False)))
        if err:
            return
        for k in r.vec_str():
            self._rmr(c, path + "/" + k)
        c.recv(c.send(OP["delete"], p_str(path) + p_int(-1)))

    def check(self, seed, nsess, ops, ns):
        self.replays += 1
        k, diffs, _ = self.execute(ns, nsess, ops)
        return k, diffs

    def shrink(self, seed, nsess, ops, budget_s=120.0):
        """Delta debugging: drop chunks (halves, quarters, ...) then single ops while some
        difference remains.  Stops when no single op can be removed (or the budget ends)."""
        deadline = time.monotonic() + budget_s
        n = 0

        def fails(cand):
            nonlocal n
            n += 1
            k, _ = self.check(seed, nsess, cand, "/d%d_%d" % (seed, n))
            return k is not None

        k, _ = self.check(seed, nsess, ops, "/d%d_0" % seed)
        if k is None:
            return ops, False               # did not reproduce: report the original
        cur = list(ops[:k + 1])
        chunks = 2
        while len(cur) > 1 and time.monotonic() < deadline:
            size = max(1, len(cur) // chunks)
            removed = False
            i = 0
            while i < len(cur) and time.monotonic() < deadline:
                cand = cur[:i] + cur[i + size:]
                if cand and fails(cand):
                    cur = cand
                    removed = True
                else:
                    i += size
            if not removed:
                if size == 1:
                    break
                chunks = min(len(cur), chunks * 2)
        return cur, True


REPLAY_ARGS = ""     # the options a replay of one seed needs (ops, kinds, cfg), set by main


def run_seed(run, seed, kinds, nops, shrink=True):
    """0 if the seed agrees on both servers, else prints the report and returns 1."""
    nsess, ops = generate(seed, kinds, nops)
    try:
        k, diffs, trace = run.execute("/d%d" % seed, nsess, ops)
    except ServerDied as e:
        print("SEED=%d: %s" % (seed, e))
        return 1, None
    if k is None:
        return 0, None
    print("SEED=%d: difference at op %d of %d (%d sessions)" % (seed, k, len(ops), nsess))
    for d in diffs:
        print("  " + d)
    minimal = ops[:k + 1]
    if shrink:
        minimal, ok = run.shrink(seed, nsess, ops)
        if not ok:
            print("  (did not reproduce on replay: flaky?)")
    print("  minimal sequence (%d ops, %d sessions):" % (len(minimal), nsess))
    for op in minimal:
        print("    " + render(op, 1000))
    k2, diffs2, trace2 = run.execute("/d%d_min" % seed, nsess, minimal)
    if k2 is not None:
        print("  replay of the minimal sequence:")
        for op, res, evs in trace2:
            print("    %s\n      apache=%s\n      zkd   =%s" % (render(op), render(res[0]), render(res[1])))
            for i in range(nsess):
                if evs[0][i] or evs[1][i]:
                    print("      events s%d: apache=%s zkd=%s" % (i, evs[0][i], evs[1][i]))
        for d in diffs2:
            print("  " + d)
    print("  replay: tests/diff/difftest.py --seed %d %s-v" % (seed, REPLAY_ARGS))
    return 1, minimal


# ---------------------------------------------------------------------------------------------
# Servers.

class ApacheServer(harness.Server):
    """Apache ZooKeeper; the znode.container.* keys are JVM properties it does not take from
    zoo.cfg (ContainerManager reads them unprefixed), so they go on the command line too."""

    def _command(self, cfg_path):
        cmd = super()._command(cfg_path)
        props = ["-D%s=%s" % kv for kv in self.extra_cfg.items() if kv[0].startswith("znode.")]
        # zoo.cfg sets these as zookeeper.<key> properties, but some are read in static
        # initializers; the command line makes them certain.
        props += ["-Dzookeeper.%s=%s" % kv for kv in self.extra_cfg.items()
                  if kv[0] in ("extendedTypesEnabled", "enforceQuota", "skipACL",
                               "DigestAuthenticationProvider.superDigest")]
        return cmd[:1] + props + cmd[1:]


def start_servers(workdir, kinds=("apache", "zkd"), extra=None):
    """The reference first, the server under test second.  kinds=("apache", "apache") checks
    the tester itself: any difference then is nondeterminism in the tester."""
    cfg = {"forceSync": "no", "extendedTypesEnabled": "true",
           "znode.container.checkIntervalMs": "1000000000", "maxSessionTimeout": "60000",
           "DigestAuthenticationProvider.superDigest": SUPER_DIGEST}
    cfg.update(extra or {})
    servers = []
    for i, kind in enumerate(kinds):
        cls = ApacheServer if kind == "apache" else harness.Server
        srv = cls(Path(workdir) / ("%s%d" % (kind, i)), extra_cfg=cfg)
        srv.kind = kind
        servers.append(srv)
    try:
        for srv in servers:
            srv.start()
    except BaseException:
        for srv in servers:
            srv.stop()
        raise
    return servers


# ---------------------------------------------------------------------------------------------
# Self-test: the tester must be able to fail, and shrink.

def selftest(run, kinds, nops):
    """Inject a fake zkd difference (every setData result that succeeded on a node whose new
    version is 2 is altered) and require: a seed fails, and the shrunk sequence ends with that
    setData and is much shorter than the original."""
    def fault(op, res):
        if op[0] == "set" and isinstance(res, tuple) and res and res[0] == 0:
            st = dict((f[0], f[1:]) for f in res[2])
            if st["version"] == (2,):
                return res[:2] + ("injected",)
        return res

    run.fault = fault
    try:
        for seed in range(1, 200):
            nsess, ops = generate(seed, kinds, nops)
            k, diffs, _ = run.execute("/selftest%d" % seed, nsess, ops)
            if k is None:
                continue
            minimal, ok = run.shrink(seed, nsess, ops, budget_s=60)
            print("selftest: seed %d differs at op %d; shrunk %d -> %d ops:" % (seed, k, len(ops), len(minimal)))
            for op in minimal:
                print("    " + render(op))
            if not ok or minimal[-1][0] != "set" or len(minimal) > 6 or len(minimal) >= k + 1:
                print("selftest FAILED: the shrunk sequence is not minimal")
                return 1
            break
        else:
            print("selftest FAILED: the injected difference was never detected")
            return 1
    finally:
        run.fault = None
    # The known-differences filter must hide exactly the matching lines.
    kn = Known(None)
    kn.rules = [(re.compile(r"^op sync result"), "test")]
    if kn.filter(["op sync result: x", "op get result: y"]) != ["op get result: y"]:
        print("selftest FAILED: known-differences filter")
        return 1
    print("selftest: ok (a fake difference is found and shrunk; the filter works)")
    return 0


def main(argv=None):
    global SESSION_TIMEOUT_MS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, help="run only this seed")
    ap.add_argument("--seeds", type=int, default=300, help="number of seeds (default 300)")
    ap.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--ops", type=int, default=80, help="ops per seed (default 80)")
    ap.add_argument("--kinds", help="comma-separated op kinds (default: ENABLED); 'all' for all")
    ap.add_argument("--known", default=str(HERE / "known-differences.txt"))
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--keep-going", action="store_true", help="run every seed even after a failure")
    ap.add_argument("--selftest", action="store_true", help="also run the tester's self-test")
    ap.add_argument("--stats", action="store_true", help="print (kind, result) counts")
    ap.add_argument("--servers", default="apache,zkd",
                    help="reference,tested (apache,apache tests the tester's determinism)")
    ap.add_argument("--cfg", action="append", default=[], metavar="KEY=VALUE",
                    help="extra zoo.cfg line for both servers (repeatable)")
    ap.add_argument("--session-timeout", type=int, default=SESSION_TIMEOUT_MS, metavar="MS",
                    help="session timeout asked for (default %(default)s); the expire kind "
                         "needs <= 5000 and waits it out")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every op and result")
    args = ap.parse_args(argv)

    kinds = ENABLED if not args.kinds else args.kinds.split(",")
    if "all" in kinds:
        kinds = ALL_KINDS + [k for k in kinds if k != "all"]
    SESSION_TIMEOUT_MS = args.session_timeout
    tick = int(dict(kv.split("=", 1) for kv in args.cfg).get("tickTime", 2000))
    EXPIRE["wait_s"] = (SESSION_TIMEOUT_MS + 3 * tick) / 1000.0
    if "expire" in kinds and SESSION_TIMEOUT_MS > 5000:
        ap.error("the expire kind needs --session-timeout <= 5000 (and a tickTime to match)")
    for k in kinds:
        if k not in KINDS:
            ap.error("unknown kind %r (kinds: %s)" % (k, ", ".join(ALL_KINDS)))
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    global REPLAY_ARGS
    REPLAY_ARGS = "--ops %d " % args.ops + "".join(
        "%s %s " % (flag, val) for flag, val in
        [("--kinds", args.kinds), ("--servers", args.servers if args.servers != "apache,zkd" else None),
         ("--session-timeout", args.session_timeout if args.session_timeout != 30000 else None)]
        + [("--cfg", kv) for kv in args.cfg] if val)

    workdir = tempfile.mkdtemp(prefix="zkdiff-")
    t_start = time.monotonic()
    servers = start_servers(workdir, args.servers.split(","),
                            dict(kv.split("=", 1) for kv in args.cfg))
    failed = []
    try:
        run = Run([s.port for s in servers], Known(args.known), args.verbose,
                  dead=lambda: ["%s%d" % (s.kind, i) for i, s in enumerate(servers) if not s.alive()])
        if args.selftest and selftest(run, kinds, args.ops):
            failed.append("selftest")
        for done, seed in enumerate(seeds):
            if done and done % 1000 == 0:
                print("difftest: %d seeds done, %d failed, %.0f s" % (done, len(failed),
                                                                     time.monotonic() - t_start))
                sys.stdout.flush()
            rc, _ = run_seed(run, seed, kinds, args.ops, shrink=not args.no_shrink)
            if rc:
                failed.append(seed)
                if not args.keep_going:
                    break
            for srv in servers:
                if not srv.alive():
                    print("%s died:\n%s" % (srv.kind, srv.log_tail(40)))
                    failed.append("%s-died" % srv.kind)
            if any(isinstance(f, str) and f.endswith("died") for f in failed):
                break
        if args.stats:
            for key in sorted(run.stats, key=str):
                print("  %-16s %-18s %d" % (key[0], key[1], run.stats[key]))
    finally:
        for srv in servers:
            srv.stop()
        problem = servers[1].health_problems()
    if problem:
        print(problem)
        failed.append("zkd-health")
    dt = time.monotonic() - t_start
    print("difftest: %d seed(s) from %d, %d ops each, kinds %s: %s in %.1f s (workdir %s)"
          % (len(seeds), seeds[0] if len(seeds) else 0, args.ops, ",".join(kinds),
             "FAILED %s" % failed if failed else "all agree", dt, workdir))
    if not failed:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
