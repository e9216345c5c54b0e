"""Proves kazoo 2.8's coordination recipes work unmodified against the server: Semaphore,
Barrier, DoubleBarrier, Counter, Party, ShallowParty, Queue, LockingQueue (multi), Lock with
many contenders, and TreeCache (watch-driven cache of a subtree), each with several clients
(separate sessions) contending, and each asserting the recipe's own guarantee."""

import threading
import time

import pytest
from kazoo.recipe.cache import TreeCache, TreeEvent


def _run_all(fns, timeout=30.0):
    """Run fns in threads; re-raise the first failure."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(f,), daemon=True) for f in fns]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "recipe threads hung"
    if errors:
        raise errors[0]


def _contend(clients, make_recipe, rounds):
    """Each client enters its recipe `rounds` times; returns (most inside at once, entries)."""
    inside, peak, total = [0], [0], [0]
    guard = threading.Lock()

    def work(c, i):
        recipe = make_recipe(c, "c%d" % i)
        for _ in range(rounds):
            with recipe:
                with guard:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.002)
                with guard:
                    inside[0] -= 1
                    total[0] += 1

    _run_all([lambda c=c, i=i: work(c, i) for i, c in enumerate(clients)])
    return peak[0], total[0]


def test_lock_many_contenders_exclude_each_other(kazoo_factory, base):
    clients = [kazoo_factory() for _ in range(4)]
    peak, total = _contend(clients, lambda c, name: c.Lock(base + "/lock", name), 10)
    assert peak == 1
    assert total == 40
    assert clients[0].get_children(base + "/lock") == []


def test_semaphore_admits_at_most_max_leases(kazoo_factory, base):
    clients = [kazoo_factory() for _ in range(5)]
    peak, total = _contend(clients, lambda c, name: c.Semaphore(base + "/sem", name, max_leases=2), 4)
    assert 1 <= peak <= 2
    assert total == 20
    lease_holders = clients[0].Semaphore(base + "/sem", "probe", max_leases=2).lease_holders()
    assert lease_holders == []


def test_semaphore_blocks_past_its_leases(kazoo_factory, base):
    a, b, c = kazoo_factory(), kazoo_factory(), kazoo_factory()
    sa = a.Semaphore(base + "/sem1", "a", max_leases=2)
    sb = b.Semaphore(base + "/sem1", "b", max_leases=2)
    sc = c.Semaphore(base + "/sem1", "c", max_leases=2)
    assert sa.acquire(timeout=5)
    assert sb.acquire(timeout=5)
    assert not sc.acquire(blocking=False)
    assert sorted(sa.lease_holders()) == ["a", "b"]
    sa.release()
    assert sc.acquire(timeout=5)
    assert sorted(sc.lease_holders()) == ["b", "c"]
    sb.release()
    sc.release()


def test_barrier_holds_waiters_until_removed(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    barrier = a.Barrier(base + "/barrier")
    barrier.create()
    waiter = b.Barrier(base + "/barrier")
    assert waiter.wait(timeout=0.3) is False
    released = []
    t = threading.Thread(target=lambda: released.append(waiter.wait(timeout=10)), daemon=True)
    t.start()
    time.sleep(0.2)
    assert released == []
    assert barrier.remove()
    t.join(10)
    assert released == [True]


def test_double_barrier_enters_and_leaves_together(kazoo_factory, base):
    n = 3
    clients = [kazoo_factory() for _ in range(n)]
    entered, left = [], []
    guard = threading.Lock()

    def work(c, i):
        db = c.DoubleBarrier(base + "/db", n, identifier="m%d" % i)
        db.enter()
        with guard:
            entered.append((i, time.monotonic()))
            # No one may leave before all have entered.
            assert not left
        time.sleep(0.05 * i)
        db.leave()
        with guard:
            left.append((i, time.monotonic()))

    _run_all([lambda c=c, i=i: work(c, i) for i, c in enumerate(clients)])
    assert len(entered) == n and len(left) == n
    assert max(t for _, t in entered) <= min(t for _, t in left)


def test_counter_counts_every_concurrent_increment(kazoo_factory, base):
    clients = [kazoo_factory() for _ in range(3)]

    def work(c):
        counter = c.Counter(base + "/counter")
        for _ in range(25):
            counter += 1

    _run_all([lambda c=c: work(c) for c in clients])
    counter = clients[0].Counter(base + "/counter")
    assert counter.value == 75
    counter -= 5
    assert counter.value == 70
    fc = clients[1].Counter(base + "/fcounter", default=0.0)
    fc += 2.5
    assert clients[2].Counter(base + "/fcounter", default=0.0).value == 2.5


@pytest.mark.parametrize("shallow", [False, True])
def test_party_members_come_and_go_with_their_sessions(kazoo_factory, base, shallow):
    clients = [kazoo_factory() for _ in range(3)]
    make = (lambda c, name: c.ShallowParty(base + "/party", name)) if shallow else \
        (lambda c, name: c.Party(base + "/party", name))
    parties = [make(c, "member%d" % i) for i, c in enumerate(clients)]
    for p in parties:
        p.join()
    observer = make(clients[0], "observer")
    assert sorted(observer) == ["member0", "member1", "member2"]
    assert len(observer) == 3
    parties[1].leave()
    assert sorted(observer) == ["member0", "member2"]
    # A member whose session ends leaves the party (its node is ephemeral).
    clients[2].stop()
    clients[2].close()
    assert sorted(observer) == ["member0"]


def test_queue_is_fifo_within_a_priority_across_clients(kazoo_factory, base):
    producer, consumer = kazoo_factory(), kazoo_factory()
    q = producer.Queue(base + "/queue")
    for i in range(10):
        q.put(b"item%d" % i)
    q.put(b"urgent", priority=1)
    cq = consumer.Queue(base + "/queue")
    assert len(cq) == 11
    got = [cq.get() for _ in range(11)]
    assert got == [b"urgent"] + [b"item%d" % i for i in range(10)]
    assert cq.get() is None
    assert len(cq) == 0


def test_locking_queue_consume_is_atomic(kazoo_factory, base):
    producer, c1, c2 = kazoo_factory(), kazoo_factory(), kazoo_factory()
    q = producer.LockingQueue(base + "/lq")
    q.put_all([b"a", b"b", b"c"])
    q.put(b"first", priority=0)
    assert len(q) == 4
    q1 = c1.LockingQueue(base + "/lq")
    q2 = c2.LockingQueue(base + "/lq")
    item = q1.get(timeout=5)
    assert item == b"first"
    assert q1.holds_lock()
    # The locked item is not handed to another consumer.
    other = q2.get(timeout=5)
    assert other == b"a"
    # release puts the item back for others; consume removes it together with its lock.
    assert q1.release()
    assert q2.consume()
    assert not q2.holds_lock()
    again = q2.get(timeout=5)
    assert again == b"first"
    assert q2.consume()
    rest = []
    for _ in range(2):
        rest.append(q1.get(timeout=5))
        assert q1.consume()
    assert rest == [b"b", b"c"]
    assert len(q) == 0
    assert q1.get(timeout=0.3) is None


def test_tree_cache_mirrors_a_subtree(kazoo_factory, base):
    writer, reader = kazoo_factory(), kazoo_factory()
    writer.ensure_path(base + "/tc/a")
    writer.create(base + "/tc/a/x", b"x0")
    events = []
    cond = threading.Condition()

    def listener(event):
        with cond:
            events.append((event.event_type,
                           event.event_data.path if event.event_data else None,
                           event.event_data.data if event.event_data else None))
            cond.notify_all()

    cache = TreeCache(reader, base + "/tc")
    cache.listen(listener)
    cache.start()

    def wait_for(pred, timeout=10.0):
        with cond:
            assert cond.wait_for(pred, timeout), "events so far: %r" % (events,)

    wait_for(lambda: any(e[0] == TreeEvent.INITIALIZED for e in events))
    assert cache.get_data(base + "/tc/a/x").data == b"x0"
    assert sorted(cache.get_children(base + "/tc")) == ["a"]

    writer.create(base + "/tc/b", b"b0")
    writer.set(base + "/tc/a/x", b"x1")
    writer.create(base + "/tc/a/y/z", b"z0", makepath=True)
    writer.delete(base + "/tc/b")
    wait_for(lambda: (TreeEvent.NODE_REMOVED, base + "/tc/b", b"b0") in events)
    wait_for(lambda: (TreeEvent.NODE_ADDED, base + "/tc/a/y/z", b"z0") in events)
    wait_for(lambda: (TreeEvent.NODE_UPDATED, base + "/tc/a/x", b"x1") in events)
    assert cache.get_data(base + "/tc/a/x").data == b"x1"
    assert cache.get_data(base + "/tc/b") is None
    assert sorted(cache.get_children(base + "/tc/a")) == ["x", "y"]
    # Each change seen once, in the order the writer made it, for a given path.
    x_updates = [e for e in events if e[0] == TreeEvent.NODE_UPDATED and e[1] == base + "/tc/a/x"]
    assert x_updates == [(TreeEvent.NODE_UPDATED, base + "/tc/a/x", b"x1")]
    cache.close()
