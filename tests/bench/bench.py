#!/usr/bin/python3
"""make bench: the same load matrix against zkd and Apache ZooKeeper 3.8 (when Debian's
`zookeeper` package is installed), one server after the other, each on a fresh dataDir with
forceSync on, on 127.0.0.1. Prints one table (zkd, ZooKeeper, ratio zkd/zk) and one
machine-readable `bench:` line per row, and appends those lines to tests/bench/results.txt.

Environment: ZKD_BIN (default ./zkd), ZKBENCH (default build/zkbench), BENCH_SECONDS (per
row, default 5), BENCH_NODES (big-tree size, default 1000000)."""

import datetime
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZKD = os.environ.get("ZKD_BIN", str(REPO / "zkd"))
ZKBENCH = os.environ.get("ZKBENCH", str(REPO / "build" / "zkbench"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
BIG = int(os.environ.get("BENCH_NODES", "1000000"))
ZK_JAR = "/usr/share/java/zookeeper.jar"
ZK_CP = ":".join([ZK_JAR, "/usr/share/java/slf4j-api.jar", "/usr/share/java/slf4j-nop.jar"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four(port, word, timeout=5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode(errors="replace")
                out += b
    except OSError:
        return ""


def vm_hwm_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Server:
    def __init__(self, kind, workdir):
        self.kind, self.dir = kind, Path(workdir)
        self.port = free_port()
        self.data = self.dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        cfg = ["tickTime=2000", "dataDir=%s" % self.data, "clientPort=%d" % self.port,
               "clientPortAddress=127.0.0.1", "forceSync=yes", "4lw.commands.whitelist=*",
               "maxClientCnxns=0"]
        if kind == "zk":
            cfg.append("admin.enableServer=false")
        (self.dir / "zoo.cfg").write_text("\n".join(cfg) + "\n")
        self.proc = None

    def start(self):
        """Start and return seconds from exec to answering srvr with a Mode: line."""
        cmd = [ZKD, str(self.dir / "zoo.cfg")] if self.kind == "zkd" else \
            ["java", "-Xmx2g", "-cp", ZK_CP, "org.apache.zookeeper.server.ZooKeeperServerMain",
             str(self.dir / "zoo.cfg")]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr", "ab"))
        while time.monotonic() - t0 < 300:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited during start; see %s" % (self.kind, self.dir / "stderr"))
            if "Mode:" in four(self.port, "srvr", 1):
                return time.monotonic() - t0
            time.sleep(0.02)
        raise RuntimeError("%s did not start" % self.kind)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def newest_snapshot_bytes(self):
        snaps = sorted((self.data / "version-2").glob("snapshot.*"), key=lambda p: p.stat().st_mtime)
        return snaps[-1].stat().st_size if snaps else 0

    def snapshots(self):
        return len(list((self.data / "version-2").glob("snapshot.*")))


def zkbench(port, mode, arg, conns, inflight, nodes=1000):
    env = dict(os.environ, ZKBENCH_NODES=str(nodes))
    out = subprocess.run([ZKBENCH, "127.0.0.1", str(port), mode, str(arg), str(conns), str(inflight), "100"],
                         capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError("zkbench %s failed: %s" % (mode, out.stderr.strip()))
    return dict(kv.split("=", 1) for kv in out.stdout.split())


def measure(kind):
    work = tempfile.mkdtemp(prefix="zkbench-%s-" % kind)
    s = Server(kind, work)
    r = {}
    try:
        s.start()
        time.sleep(1)
        r["rss_idle_kb"] = vm_hwm_kb(s.proc.pid)
        zkbench(s.port, "populate", 1000, 8, 32)
        g11 = zkbench(s.port, "get", SECONDS, 1, 1)
        r["get_1x1_p99_us"] = float(g11["p99_us"])
        r["get_1x1_ops"] = float(g11["ops_per_s"])
        g = zkbench(s.port, "get", SECONDS, 8, 32)
        r["get_8x32_ops"] = float(g["ops_per_s"])
        r["bench_cpu_share_get_8x32"] = float(g["cpu_s"]) / float(g["seconds"])
        s11 = zkbench(s.port, "set", SECONDS, 1, 1)
        r["set_1x1_p99_us"] = float(s11["p99_us"])
        r["set_1x1_ops"] = float(s11["ops_per_s"])
        r["set_8x32_ops"] = float(zkbench(s.port, "set", SECONDS, 8, 32)["ops_per_s"])
        r["seq_create_8x32_ops"] = float(zkbench(s.port, "seq", SECONDS, 8, 32)["ops_per_s"])
        m = zkbench(s.port, "mixed", SECONDS, 8, 32)
        r["mixed_8x32_ops"] = float(m["ops_per_s"])
        r["mixed_8x32_read_p99_us"] = float(m["read_p99_us"])
        # The big tree.
        s.stop()
        shutil.rmtree(s.data)
        s.data.mkdir()
        s.start()
        zkbench(s.port, "populate", BIG, 8, 32)
        r["rss_1m_znodes_kb"] = vm_hwm_kb(s.proc.pid)
        # Reads measured 1 x 1 while writes roll logs and take snapshots of the big tree.
        before = s.snapshots()
        w = subprocess.Popen([ZKBENCH, "127.0.0.1", str(s.port), "set", str(4 * SECONDS), "8", "32", "100"],
                             env=dict(os.environ, ZKBENCH_NODES=str(BIG)), stdout=subprocess.PIPE, text=True)
        rd = zkbench(s.port, "get", 4 * SECONDS, 1, 1, nodes=BIG)
        w.communicate(timeout=120)
        r["snapshots_during_spike_test"] = s.snapshots() - before
        r["read_spike_max_us_during_snapshots"] = float(rd["max_us"])
        time.sleep(3)  # let a snapshot in progress finish
        r["snapshot_bytes_1m"] = s.newest_snapshot_bytes()
        s.stop()
        r["recovery_1m_s"] = s.start()
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return r


# name, unit, higher is better
ROWS = [
    ("get_1x1_p99_us", "us", False), ("get_1x1_ops", "ops/s", True),
    ("get_8x32_ops", "ops/s", True), ("set_1x1_p99_us", "us", False), ("set_1x1_ops", "ops/s", True),
    ("set_8x32_ops", "ops/s", True), ("seq_create_8x32_ops", "ops/s", True),
    ("mixed_8x32_ops", "ops/s", True), ("mixed_8x32_read_p99_us", "us", False),
    ("rss_idle_kb", "KiB", False), ("rss_1m_znodes_kb", "KiB", False),
    ("snapshot_bytes_1m", "bytes", False), ("recovery_1m_s", "s", False),
    ("read_spike_max_us_during_snapshots", "us", False), ("snapshots_during_spike_test", "", True),
    ("bench_cpu_share_get_8x32", "cores", False),
]


def fmt(v):
    if v is None:
        return "-"
    return "%.3g" % v if isinstance(v, float) and v < 100 else "%d" % v


def main():
    if not Path(ZKBENCH).exists():
        sys.exit("build %s first (make bench does)" % ZKBENCH)
    have_zk = Path(ZK_JAR).exists() and shutil.which("java")
    results = {"zkd": measure("zkd")}
    if have_zk:
        results["zk"] = measure("zk")
    else:
        print("Apache ZooKeeper not installed (apt-get install zookeeper): zkd only")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    machine = "%s, %d cores, %s" % (platform.machine(), os.cpu_count(), platform.release())
    print("\nzkd vs Apache ZooKeeper 3.8 — %s — %s — %d s a row, %d-znode tree" % (when, machine, SECONDS, BIG))
    print("%-38s %14s %14s %10s" % ("row", "zkd", "zookeeper", "zkd/zk"))
    lines = []
    for name, unit, higher in ROWS:
        a = results["zkd"].get(name)
        b = results.get("zk", {}).get(name)
        ratio = (a / b) if (a is not None and b) else None
        label = "%s (%s, %s better)" % (name, unit, "higher" if higher else "lower") if unit else name
        print("%-38s %14s %14s %10s" % (label[:38], fmt(a), fmt(b), "%.2f" % ratio if ratio else "-"))
        lines.append("bench: date=%s name=%s zkd=%s zk=%s ratio=%s" % (
            when, name, fmt(a), fmt(b), "%.3f" % ratio if ratio else "-"))
    print()
    print("\n".join(lines))
    with open(REPO / "tests" / "bench" / "results.txt", "a") as f:
        f.write("# %s %s\n" % (when, machine))
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
