"""Tools shared by the durability, interop and corruption tests: a server that keeps its port and dataDir across restarts (and can be SIGKILLed or run under a file-size limit), a full tree dump to compare two servers, and a reader for the txn log's records."""

import os
import resource
import signal
import struct
import subprocess
import time
import zlib
from collections import namedtuple
from pathlib import Path

import harness

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")
OPEN_ACL = ((31, "world", "anyone"),)
FAST_RETRY = {"max_tries": -1, "delay": 0.05, "max_delay": 0.3}
IO_TIMEOUT_S = 20.0               # a kazoo call in a loop never waits longer than this


def wait(res):
    """The value of a kazoo async result, waiting at most IO_TIMEOUT_S."""
    return res.get(timeout=IO_TIMEOUT_S)


def have_apache():
    """Why Apache ZooKeeper cannot run here, or None when it can."""
    if not any(os.access(os.path.join(d, "java"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin").split(":") if d):
        return "java is not installed (Debian package: zookeeper)"
    for jar in harness.APACHE_CLASSPATH.split(":"):
        if not os.path.isfile(jar):
            return "%s is missing (Debian package: zookeeper)" % jar
    return None


class DataServer(harness.Server):
    """A harness.Server of a fixed kind whose port and dataDir stay the same across restarts.

    kill() sends SIGKILL to the server (and, with group=True, to its snapshot child);
    fsize_limit runs it under RLIMIT_FSIZE; log_mark()/log_since() read the stderr of one run."""

    def __init__(self, workdir, kind=None, tick_time=2000, extra_cfg=None, fsize_limit=None):
        super().__init__(workdir, tick_time=tick_time, extra_cfg=extra_cfg)
        if kind is not None:
            self.kind = kind
        self.fsize_limit = fsize_limit
        self.pinned_port = None
        self.pgid = None
        self.last_status = None   # exit status of the last run that ended (negative: signal)
        self.run_mark = 0         # stderr offset where the current/last run began
        self.sent = []            # signals this test sent, for reading the log of a failure

    @property
    def data_dir(self):
        return self.workdir / "data"

    @property
    def version_dir(self):
        return self.data_dir / "version-2"

    def log_mark(self):
        try:
            return self.stderr_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, mark=None):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(self.run_mark if mark is None else mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.pinned_port is None:
            self.pinned_port = harness.free_port()
        self.port = self.pinned_port
        cmd = self._command(self._write_cfg())
        self.run_mark = self.log_mark()
        limit = self.fsize_limit

        def set_limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True,
                                         preexec_fn=set_limit if limit is not None else None)
        self.pgid = self.proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _write_cfg(self):
        self.port = self.pinned_port
        return super()._write_cfg()

    def stop(self):
        """SIGTERM (SIGKILL after a while); wait for the snapshot child too; return the status."""
        proc = self.proc
        if proc is None:
            return self.last_status
        self._note("SIGTERM", proc.pid)
        super().stop()
        self.last_status = proc.returncode
        self.wait_group_gone()
        return self.last_status

    def kill(self, group=True):
        """SIGKILL the server, and its snapshot child unless group is False."""
        proc = self.proc
        if proc is None:
            return self.last_status
        self._note("SIGKILL" + (" (group)" if group else ""), proc.pid)
        try:
            if group:
                os.killpg(self.pgid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        self.proc = None
        self.last_status = proc.returncode
        return self.last_status

    def _note(self, what, pid):
        self.sent.append("%s UTC: the test sent %s to pid %d"
                         % (time.strftime("%H:%M:%S", time.gmtime()), what, pid))

    def log_tail(self, max_lines=200):
        tail = super().log_tail(max_lines)
        return tail + ("\n--- signals sent by the test ---\n" + "\n".join(self.sent[-20:])
                       if self.sent else "")

    def group_members(self):
        """Live (non-zombie) processes of the server's process group."""
        pids = []
        if self.pgid is None:
            return pids
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == self.pgid and fields[0] != "Z":
                pids.append(int(entry))
        return pids

    def wait_group_gone(self, timeout=20.0):
        """Wait for a snapshot child left behind by the server to finish and exit."""
        harness.wait_for(lambda: not self.group_members(), timeout,
                         what="the server's process group (snapshot child) to exit")

    def snapshots(self):
        return sorted_by_zxid(self.version_dir.glob("snapshot.*"))

    def logs(self):
        return sorted_by_zxid(self.version_dir.glob("log.*"))


def file_zxid(path):
    return int(Path(path).name.split(".", 1)[1], 16)


def sorted_by_zxid(paths):
    return sorted((p for p in paths if not p.name.startswith(".")), key=file_zxid)


# ---------------------------------------------------------------- tree dumps

def stat_tuple(st):
    return tuple(getattr(st, f) for f in STAT_FIELDS)


def dump_tree(zk, skip=("/zookeeper",)):
    """{path: (data, stat tuple)} for every node below / except the skipped subtrees."""
    out = {}
    stack = ["/"]
    while stack:
        path = stack.pop()
        data, st = wait(zk.get_async(path))
        out[path] = (data, stat_tuple(st))
        for child in wait(zk.get_children_async(path)):
            cp = path.rstrip("/") + "/" + child
            if cp not in skip:
                stack.append(cp)
    return out


def acl_tuples(acls):
    return tuple(sorted((a.perms, a.id.scheme, a.id.id) for a in acls))


def dump_acls(zk, paths):
    return {p: acl_tuples(wait(zk.get_acls_async(p))[0]) for p in paths}


def diff_dumps(a, b, name_a="a", name_b="b", limit=15):
    """A readable list of differences between two dump_tree() results ([] when equal)."""
    out = []
    for p in sorted(set(a) | set(b)):
        if p not in a:
            out.append("%s only on %s" % (p, name_b))
        elif p not in b:
            out.append("%s only on %s" % (p, name_a))
        elif a[p] != b[p]:
            (da, sa), (db, sb) = a[p], b[p]
            if da != db:
                out.append("%s data: %s=%r %s=%r" % (p, name_a, da[:60], name_b, db[:60]))
            for f, x, y in zip(STAT_FIELDS, sa, sb):
                if x != y:
                    out.append("%s %s: %s=%#x %s=%#x" % (p, f, name_a, x, name_b, y))
        if len(out) >= limit:
            out.append("...")
            break
    return out


# ---------------------------------------------------------------- txn log files

Record = namedtuple("Record", "off size length zxid type client_id path")
TXN_HEADER = struct.Struct(">qiqqi")   # clientId, cxid, zxid, time, type
OP_CREATE = 1


def read_log(path):
    """The whole valid records of a txn log file, in order (stops at the first bad one)."""
    b = Path(path).read_bytes()
    magic, version, _dbid = struct.unpack(">iiq", b[:16])
    assert magic == 0x5A4B4C47 and version == 2, "%s: not a version-2 txn log" % path
    recs = []
    off = 16
    while off + 12 <= len(b):
        crc, n = struct.unpack(">qi", b[off:off + 12])
        end = off + 12 + n
        if n <= 0 or end >= len(b) or b[end] != 0x42:
            break
        entry = b[off + 12:end]
        if zlib.adler32(entry) != crc:
            break
        client_id, _cxid, zxid, _time, typ = TXN_HEADER.unpack_from(entry)
        node = None
        if typ == OP_CREATE:
            (plen,) = struct.unpack_from(">i", entry, TXN_HEADER.size)
            node = entry[TXN_HEADER.size + 4:TXN_HEADER.size + 4 + plen].decode()
        recs.append(Record(off, n + 13, n, zxid, typ, client_id, node))
        off = end + 1
    return recs


def xor_byte(path, off, mask=0xFF):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        assert len(b) == 1, "%s has no byte at offset %d" % (path, off)
        f.seek(off)
        f.write(bytes([b[0] ^ mask]))


def kazoo_client(srv, start_timeout=30, **kw):
    """A started kazoo client for srv (10 s session timeout unless given)."""
    from kazoo import client as kazoo_client_mod
    kw.setdefault("timeout", 10.0)
    zk = kazoo_client_mod.KazooClient(hosts=srv.hosts, **kw)
    zk.start(timeout=start_timeout)
    return zk


def close(zk):
    try:
        zk.stop()
        zk.close()
    except Exception:
        pass
