"""A well-behaved kazoo client in its own process, for test_abuse.py (its own process so that
the abusing test's Python work cannot stall it through the GIL and inflate its latencies).

usage: abuse_healthy.py HOSTS PATH
Creates PATH, prints "ready <session id>", then every 10 ms writes PATH and reads it back, each
operation bounded by OP_TIMEOUT_S, until a line or EOF arrives on stdin; then prints one JSON
line: operation counts, errors, latencies (ms), the connection states it saw, and each
round as [start, write s, read s] on the monotonic clock (CLOCK_MONOTONIC, shared with the
test process) so the test can pick the rounds that overlapped its abuse.
"""

import json
import sys
import threading
import time

from kazoo.client import KazooClient

OP_TIMEOUT_S = 5.0
PERIOD_S = 0.01


def main():
    hosts, path = sys.argv[1], sys.argv[2]
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=15)
    states = []
    zk.add_listener(lambda s: states.append(str(s)))
    zk.create(path, b"0", makepath=True)
    sid = zk.client_id[0]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    print("ready %d" % sid, flush=True)

    reads, writes, errors, rounds = [], [], [], []
    i = 0
    while not stop.is_set():
        i += 1
        want = b"%d" % i
        try:
            t0 = time.monotonic()
            zk.set_async(path, want).get(timeout=OP_TIMEOUT_S)
            t1 = time.monotonic()
            data, _ = zk.get_async(path).get(timeout=OP_TIMEOUT_S)
            t2 = time.monotonic()
            writes.append(t1 - t0)
            reads.append(t2 - t1)
            rounds.append([t0, t1 - t0, t2 - t1])
            if data != want:
                errors.append("read %r after writing %r" % (data[:20], want))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            errors.append("%s at op %d: %r" % (type(e).__name__, i, e))
            if len(errors) > 20:
                break
        stop.wait(PERIOD_S)

    def ms(xs, q):
        if not xs:
            return None
        xs = sorted(xs)
        return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 1)

    out = {"reads": len(reads), "writes": len(writes), "errors": errors[:20],
           "max_read_ms": ms(reads, 1.0), "p99_read_ms": ms(reads, 0.99),
           "max_write_ms": ms(writes, 1.0), "p99_write_ms": ms(writes, 0.99),
           "states": list(states), "rounds": rounds,
           "same_session": zk.client_id is not None and zk.client_id[0] == sid}
    try:
        zk.stop()
        zk.close()
    except Exception:  # noqa: BLE001
        pass
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
