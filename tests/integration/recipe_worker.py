"""A client process for test_recipes.py: runs a kazoo Lock or Election recipe and reports on stdout.

usage: recipe_worker.py lock HOSTS LOCK_PATH COUNTER_FILE ITERATIONS NAME  (starts on a stdin line)
       recipe_worker.py election HOSTS ELECTION_PATH NAME SESSION_TIMEOUT_S
Every stdout line is "<event> <name> <time.monotonic()>"; CLOCK_MONOTONIC is system-wide on
Linux, so times from different processes compare.  The election leader holds leadership until
it reads a line on stdin.
"""

import sys
import time

from kazoo.client import KazooClient


def say(event, name):
    print("%s %s %.6f" % (event, name, time.monotonic()), flush=True)


def run_lock(hosts, lock_path, counter_file, iterations, name):
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=15)
    lock = zk.Lock(lock_path, name)
    say("READY", name)
    sys.stdin.readline()                 # start together, so the two really contend
    for _ in range(int(iterations)):
        with lock:
            say("ENTER", name)
            with open(counter_file) as f:
                n = int(f.read().strip() or "0")
            time.sleep(0.005)            # widen the race a broken lock would lose
            with open(counter_file, "w") as f:
                f.write("%d\n" % (n + 1))
            say("EXIT", name)
    zk.stop()
    zk.close()
    say("DONE", name)


def run_election(hosts, path, name, session_timeout_s):
    zk = KazooClient(hosts=hosts, timeout=float(session_timeout_s))
    zk.start(timeout=15)
    election = zk.Election(path, name)
    say("READY", name)

    def lead():
        say("LEADER", name)
        sys.stdin.readline()
        say("RESIGN", name)

    election.run(lead)
    zk.stop()
    zk.close()
    say("DONE", name)


def main(argv):
    if argv[1] == "lock":
        run_lock(*argv[2:7])
    elif argv[1] == "election":
        run_election(*argv[2:6])
    else:
        raise SystemExit("unknown mode %r" % argv[1])


if __name__ == "__main__":
    main(sys.argv)
