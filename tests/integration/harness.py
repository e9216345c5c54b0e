"""Starts one ZooKeeper-compatible server (zkd or Apache ZooKeeper 3.8) on a free loopback port.

ZK_TARGET=zkd (default) runs $ZKD_BIN (default <repo>/zkd) as `zkd <tmpdir>/zoo.cfg`;
ZK_TARGET=apache runs org.apache.zookeeper.server.ZooKeeperServerMain from the Debian jar.
Also holds the small tools the tests share: four-letter words, a droppable TCP proxy, and a
bounded polling helper.
"""

import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
APACHE_CLASSPATH = ":".join([
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-nop.jar",
])


def target():
    t = os.environ.get("ZK_TARGET", "zkd")
    if t not in ("zkd", "apache"):
        raise RuntimeError("ZK_TARGET must be 'zkd' or 'apache', not %r" % t)
    return t


def free_port():
    """A port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def four_letter(port, cmd, timeout=5.0):
    """Send a four-letter word and return everything the server writes before closing."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(cmd.encode("ascii"))
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")


def server_mode(port):
    """The Mode: srvr reports on a client port (leader, follower, standalone...), or None."""
    try:
        for line in four_letter(port, "srvr", timeout=1.0).splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def mntr(server):
    """The server's mntr answer as a dict of key -> value (strings)."""
    out = {}
    for line in server.four_letter("mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; raise AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Server:
    """One server process with its own tmpdir, zoo.cfg and captured stderr."""

    def __init__(self, workdir, tick_time=2000, extra_cfg=None):
        self.workdir = Path(workdir)
        self.tick_time = tick_time
        self.extra_cfg = dict(extra_cfg or {})
        self.kind = target()
        self.port = None
        self.proc = None
        self.stderr_path = self.workdir / "server.stderr"
        self.stdout_path = self.workdir / "server.stdout"

    @property
    def hosts(self):
        return "%s:%d" % (HOST, self.port)

    def _write_cfg(self):
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": self.tick_time,
            "dataDir": data_dir,
            "clientPort": self.port,
            "clientPortAddress": HOST,
            "4lw.commands.whitelist": "*",
        }
        if self.kind == "apache":
            cfg["admin.enableServer"] = "false"
        cfg.update(self.extra_cfg)
        path = self.workdir / "zoo.cfg"
        path.write_text("".join("%s=%s\n" % kv for kv in cfg.items()))
        return path

    def _command(self, cfg_path):
        if self.kind == "apache":
            # ZooKeeper reads znode.container.* as bare system properties (ContainerManager),
            # which a zoo.cfg key (set as zookeeper.<key>) does not reach.
            props = ["-D%s=%s" % kv for kv in self.extra_cfg.items()
                     if kv[0].startswith("znode.container.")]
            return ["java", "-Xmx256m"] + props + ["-cp", APACHE_CLASSPATH,
                    "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg_path)]
        zkd = Path(os.environ.get("ZKD_BIN", str(REPO / "zkd")))
        if not (zkd.is_file() and os.access(zkd, os.X_OK)):
            raise RuntimeError("zkd binary not found at %s: build it, set ZKD_BIN, "
                               "or run with ZK_TARGET=apache" % zkd)
        return [str(zkd), str(cfg_path)]

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = self._command(self._write_cfg())
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with status %s during startup\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                reply = four_letter(self.port, "srvr", timeout=2.0)
                if any(line.startswith("Mode:") for line in reply.splitlines()):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not answer srvr with Mode: within %.0fs\n%s"
                           % (START_TIMEOUT_S, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Terminate, then kill after STOP_TIMEOUT_S; safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.exit_status = self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
                self.exit_status = "hung on SIGTERM"
        else:
            self.exit_status = self.proc.returncode
        self.proc = None

    def health_problems(self):
        """For zkd: sanitizer reports, failed assertions, or an unclean exit at stop."""
        if self.kind != "zkd":
            return None
        try:
            log = self.stderr_path.read_text(errors="replace")
        except OSError:
            log = ""
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "assertion failed"):
            if marker in log:
                return "server stderr has %r:\n%s" % (marker, self.log_tail())
        if getattr(self, "exit_status", 0) not in (0, None):
            return "server exited with %r at stop:\n%s" % (self.exit_status, self.log_tail())
        return None

    def log_tail(self, max_lines=200):
        parts = []
        for p in (self.stderr_path, self.stdout_path):
            try:
                lines = p.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if lines:
                parts.append("--- %s (last %d lines) ---\n%s"
                             % (p, min(max_lines, len(lines)), "\n".join(lines[-max_lines:])))
        return "\n".join(parts) if parts else "(server wrote nothing to stderr/stdout)"

    def four_letter(self, cmd, timeout=5.0):
        return four_letter(self.port, cmd, timeout)


class Proxy:
    """A TCP forwarder to the server whose connections the test can cut.

    drop() resets every forwarded connection at once; while `accepting` is False new
    connections are accepted and closed immediately, so a client cannot reconnect."""

    def __init__(self, target_port, target_host=HOST):
        self.target = (target_host, target_port)
        self.accepting = True
        self._pairs = set()
        self._lock = threading.Lock()
        self._closed = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((HOST, 0))
        self._lsock.listen(64)
        self.port = self._lsock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def hosts(self):
        return "%s:%d" % (HOST, self.port)

    def _accept_loop(self):
        while not self._closed:
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            if not self.accepting or self._closed:
                c.close()
                continue
            try:
                s = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            pair = (c, s)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair):
        c, s = pair
        try:
            while True:
                with self._lock:
                    if pair not in self._pairs:
                        break
                r, _, _ = select.select([c, s], [], [], 0.2)
                for x in r:
                    data = x.recv(65536)
                    if not data:
                        raise EOFError
                    (s if x is c else c).sendall(data)
        except (OSError, EOFError, ValueError):
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            for x in pair:
                try:
                    x.close()
                except OSError:
                    pass

    def connections(self):
        with self._lock:
            return len(self._pairs)

    def drop(self):
        """Cut every forwarded connection now (both sides see EOF)."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            for x in pair:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self._closed = True
        self.accepting = False
        self.drop()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
