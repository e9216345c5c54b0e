"""Container and TTL nodes (createContainer, createTTL) and the reaper that deletes them.

Proves, against zkd and Apache ZooKeeper 3.8 alike: the create modes' error codes (which
opcode/flag/ttl combinations are BadArguments or Unimplemented), Create2Response replies with
ephemeralOwner 0, that a container is deleted once its last child goes and not before it had
one, that a TTL node expires when childless and unmodified for its ttl and not while it has
children, that TTL needs extendedTypesEnabled, that a client's own deleteContainer is refused,
and that both kinds survive a restart (log replay, then snapshot) and are still reaped.
"""

import contextlib
import os
import re
import subprocess
import time

import pytest

import harness
from zkwire import (CONTAINER, EPHEMERAL, ERR_BAD_ARGUMENTS, ERR_NO_NODE, ERR_OK,
                    ERR_UNIMPLEMENTED, OP_CREATE, OP_CREATE2, OP_CREATE_CONTAINER,
                    OP_CREATE_TTL, OP_DELETE_CONTAINER, PERSISTENT, PERSISTENT_SEQUENTIAL,
                    PERSISTENT_SEQUENTIAL_WITH_TTL, PERSISTENT_WITH_TTL, RawClient, p_str)

CHECK_MS = 200
SERVER_EXTRA_CFG = {"extendedTypesEnabled": "true",
                    "znode.container.checkIntervalMs": CHECK_MS}
TTL_MAX = (1 << 40) - 1


@contextlib.contextmanager
def own_server(workdir, cfg=None):
    """A server of the test's own (its config differs from the module's), checked at stop."""
    srv = harness.Server(workdir, extra_cfg=cfg)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    assert srv.health_problems() is None


def gone_within(c, path, seconds):
    return c.gone_within(path, seconds)


def still_there_for(c, path, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if c.exists(path)[0] != ERR_OK:
            return False
        time.sleep(0.05)
    return True


def test_create_replies_are_create2_with_owner_zero(raw, base):
    assert raw.create(base)[0] == ERR_OK
    err, path, stat = raw.create_container(base + "/c", b"d")
    assert (err, path) == (ERR_OK, base + "/c")
    assert stat["ephemeralOwner"] == 0 and stat["dataLength"] == 1
    err, path, stat = raw.create_ttl(base + "/t", 60000, b"dd")
    assert (err, path) == (ERR_OK, base + "/t")
    assert stat["ephemeralOwner"] == 0 and stat["dataLength"] == 2
    err, path, stat = raw.create_ttl(base + "/s-", 60000, flags=PERSISTENT_SEQUENTIAL_WITH_TTL)
    assert (err, path) == (ERR_OK, base + "/s-0000000002")
    err, path, _ = raw.create_container(base + "/cs-", flags=PERSISTENT_SEQUENTIAL)
    assert (err, path) == (ERR_OK, base + "/cs-0000000003")
    assert raw.exists(base + "/c")[1]["ephemeralOwner"] == 0
    # An ephemeral may live under either: neither is a session's ephemeral.
    assert raw.create(base + "/c/e", flags=EPHEMERAL)[0] == ERR_OK
    assert raw.create(base + "/t/e", flags=EPHEMERAL)[0] == ERR_OK


@pytest.mark.parametrize("op,flags,ttl,want", [
    (OP_CREATE, CONTAINER, None, ERR_OK),            # a plain persistent node
    (OP_CREATE, PERSISTENT_WITH_TTL, None, ERR_BAD_ARGUMENTS),
    (OP_CREATE2, PERSISTENT_SEQUENTIAL_WITH_TTL, None, ERR_BAD_ARGUMENTS),
    (OP_CREATE, 7, None, ERR_BAD_ARGUMENTS),
    (OP_CREATE_CONTAINER, -1, None, ERR_BAD_ARGUMENTS),
    (OP_CREATE_CONTAINER, EPHEMERAL, None, ERR_OK),  # still a container
    (OP_CREATE_CONTAINER, PERSISTENT_WITH_TTL, None, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, PERSISTENT_WITH_TTL, 0, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, PERSISTENT_WITH_TTL, -5, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, PERSISTENT_WITH_TTL, TTL_MAX, ERR_OK),
    (OP_CREATE_TTL, PERSISTENT_WITH_TTL, TTL_MAX + 1, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL, 1 << 62, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, PERSISTENT, 1000, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, CONTAINER, 0, ERR_BAD_ARGUMENTS),
    (OP_CREATE_TTL, 7, 1000, ERR_BAD_ARGUMENTS),
])
def test_create_mode_errors(raw, base, op, flags, ttl, want):
    assert raw.create(base)[0] == ERR_OK
    err, _, _ = raw.create_any(op, base + "/n", b"", flags, ttl)
    assert err == want
    if want != ERR_OK:
        assert raw.exists(base + "/n")[0] == ERR_NO_NODE


def test_kinds_follow_the_opcode(raw, base):
    """create with flag CONTAINER makes a persistent node (never reaped); createContainer
    with flag EPHEMERAL makes a container (reaped, and not closed with the session)."""
    assert raw.create(base)[0] == ERR_OK
    assert raw.create(base + "/p", flags=CONTAINER)[0] == ERR_OK
    assert raw.create_container(base + "/c", flags=EPHEMERAL)[0] == ERR_OK
    for parent in (base + "/p", base + "/c"):
        assert raw.create(parent + "/k")[0] == ERR_OK
        assert raw.delete(parent + "/k") == ERR_OK
    assert gone_within(raw, base + "/c", 5)
    assert raw.exists(base + "/p")[0] == ERR_OK


def test_client_delete_container_is_refused(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_container(base + "/c")[0] == ERR_OK
    for body in (p_str(base + "/c"), (base + "/c").encode(), b""):
        zxid, err, _ = raw.call(OP_DELETE_CONTAINER, body)
        assert err == ERR_BAD_ARGUMENTS and zxid > 0  # an ErrorTxn, as ZooKeeper logs it
    assert raw.exists(base + "/c")[0] == ERR_OK


def test_container_kept_until_it_had_a_child(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_container(base + "/c")[0] == ERR_OK
    assert still_there_for(raw, base + "/c", 5 * CHECK_MS / 1000)
    assert raw.create(base + "/c/a")[0] == ERR_OK
    assert raw.create(base + "/c/b")[0] == ERR_OK
    assert raw.delete(base + "/c/a") == ERR_OK
    assert still_there_for(raw, base + "/c", 3 * CHECK_MS / 1000)
    assert raw.delete(base + "/c/b") == ERR_OK
    assert gone_within(raw, base + "/c", 5)
    assert raw.exists(base)[0] == ERR_OK  # the parent is not a container


def test_nested_containers_go_one_level_per_check(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_container(base + "/c")[0] == ERR_OK
    assert raw.create_container(base + "/c/d")[0] == ERR_OK
    assert raw.create(base + "/c/d/leaf")[0] == ERR_OK
    assert raw.delete(base + "/c/d/leaf") == ERR_OK
    assert gone_within(raw, base + "/c/d", 5)
    assert gone_within(raw, base + "/c", 5)


def test_ttl_node_expires_when_childless(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_ttl(base + "/t", 300)[0] == ERR_OK
    assert gone_within(raw, base + "/t", 5)


def test_ttl_node_kept_while_it_has_children(raw, base):
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_ttl(base + "/t", 200)[0] == ERR_OK
    assert raw.create(base + "/t/k")[0] == ERR_OK
    assert still_there_for(raw, base + "/t", 5 * CHECK_MS / 1000)
    assert raw.delete(base + "/t/k") == ERR_OK
    assert gone_within(raw, base + "/t", 5)  # its mtime is older than its ttl already


def test_ttl_needs_extended_types(tmp_path):
    with own_server(tmp_path / "plain") as srv:
        c = RawClient(srv.port)
        for op, flags, ttl in ((OP_CREATE_TTL, PERSISTENT_WITH_TTL, 1000),
                               (OP_CREATE_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL, 0),
                               (OP_CREATE, PERSISTENT_WITH_TTL, None),
                               (OP_CREATE_CONTAINER, PERSISTENT_WITH_TTL, None)):
            assert c.create_any(op, "/t", b"", flags, ttl)[0] == ERR_UNIMPLEMENTED
        assert c.create_any(OP_CREATE_TTL, "/t", b"", PERSISTENT, 1000)[0] == ERR_BAD_ARGUMENTS
        assert c.create_container("/c")[0] == ERR_OK  # containers need no flag
        c.close()


def test_kinds_survive_restart_and_are_reaped(tmp_path):
    with own_server(tmp_path / "restart", SERVER_EXTRA_CFG) as srv:
        c = RawClient(srv.port)
        assert c.create_container("/c")[0] == ERR_OK
        assert c.create("/c/k")[0] == ERR_OK
        assert c.create_ttl("/t", 1500)[0] == ERR_OK
        assert c.create(("/t/k"))[0] == ERR_OK
        c.close()
        for _ in range(2):  # the first start replays the log, the second loads a snapshot
            srv.stop()
            srv.start()
            c = RawClient(srv.port)
            assert c.exists("/c")[1]["ephemeralOwner"] == 0
            assert still_there_for(c, "/t", 3 * CHECK_MS / 1000)
            c.close()
        c = RawClient(srv.port)
        assert c.delete("/c/k") == ERR_OK
        assert c.delete("/t/k") == ERR_OK
        assert gone_within(c, "/c", 5)
        assert gone_within(c, "/t", 5)
        c.close()


def test_dump_log_shows_the_new_txns(server, raw, base):
    """zkd dump-log reads the txns either server logged: CreateContainerTxn, CreateTTLTxn and
    the reaper's deleteContainer (session 0, a DeleteTxn body)."""
    zkd = os.environ.get("ZKD_BIN", str(harness.REPO / "zkd"))
    if not os.access(zkd, os.X_OK):
        pytest.skip("no zkd binary to run dump-log")
    assert raw.create(base)[0] == ERR_OK
    assert raw.create_container(base + "/c")[0] == ERR_OK
    assert raw.create_ttl(base + "/t", 250)[0] == ERR_OK
    assert raw.create(base + "/c/k")[0] == ERR_OK
    assert raw.delete(base + "/c/k") == ERR_OK
    assert gone_within(raw, base + "/c", 5) and gone_within(raw, base + "/t", 5)
    logs = sorted((server.workdir / "data" / "version-2").glob("log.*"))
    out = subprocess.run([zkd, "dump-log"] + [str(p) for p in logs], capture_output=True,
                         text=True, timeout=30).stdout
    assert re.search(r" createContainer '%s/c' data='' parentCVersion=1$" % base, out, re.M), out
    assert re.search(r" createTTL '%s/t' data='' parentCVersion=2 ttl=250$" % base, out, re.M)
    for name in ("c", "t"):
        assert re.search(r"session 0x0 cxid 0x0 zxid 0x[0-9a-f]+ deleteContainer '%s/%s'$"
                         % (base, name), out, re.M), out


def test_kinds_inside_a_multi(raw, base):
    """In a multi the create op's flags pick the kind (CONTAINER makes a container), a
    createTTL op carries its ttl, and both are reaped like any other."""
    from zkwire import multi, mop_create, multi_header, p_acl, p_buf, p_int, p_long, OPEN_ACL_UNSAFE
    ttl_op = (multi_header(OP_CREATE_TTL) + p_str(base + "/t") + p_buf(b"t")
              + p_acl(OPEN_ACL_UNSAFE) + p_int(PERSISTENT_WITH_TTL) + p_long(300))
    zxid, err, res, _ = multi(raw, [mop_create(base), mop_create(base + "/c", flags=CONTAINER),
                                    mop_create(base + "/c/k"), ttl_op])
    assert err == ERR_OK, res
    assert [r[:2] for r in res] == [(OP_CREATE, 0), (OP_CREATE2, 0), (OP_CREATE, 0), (OP_CREATE2, 0)]
    assert res[3][2][0] == base + "/t" and res[3][2][1]["ephemeralOwner"] == 0
    assert gone_within(raw, base + "/t", 5)
    assert still_there_for(raw, base + "/c", 3 * CHECK_MS / 1000)
    assert raw.delete(base + "/c/k") == ERR_OK
    assert gone_within(raw, base + "/c", 5)


def test_max_per_minute_spaces_the_deletes(tmp_path):
    """znode.container.maxPerMinute=60: one delete a second, however many are due."""
    cfg = dict(SERVER_EXTRA_CFG, **{"znode.container.maxPerMinute": 60})
    with own_server(tmp_path / "rate", cfg) as srv:
        c = RawClient(srv.port)
        names = ["/c%d" % i for i in range(3)]
        for n in names:
            assert c.create_container(n)[0] == ERR_OK
            assert c.create(n + "/k")[0] == ERR_OK
        for n in names:
            assert c.delete(n + "/k") == ERR_OK
        left = lambda: sum(1 for n in names if c.exists(n)[0] == ERR_OK)  # noqa: E731
        harness.wait_for(lambda: left() < 3, 5, what="a first delete")
        first = time.monotonic()
        assert left() == 2
        time.sleep(0.5)
        assert left() == 2, "a second delete within half a second of the first"
        harness.wait_for(lambda: left() == 0, 5, what="the other deletes")
        assert time.monotonic() - first > 1.5
        c.close()


def test_never_used_containers_go_after_max_never_used(tmp_path):
    """znode.container.maxNeverUsedIntervalMs > 0: a container that never had a child goes
    once it is older (by mtime) than that; a setData makes it younger again."""
    cfg = dict(SERVER_EXTRA_CFG, **{"znode.container.maxNeverUsedIntervalMs": 1500})
    with own_server(tmp_path / "never", cfg) as srv:
        c = RawClient(srv.port)
        assert c.create_container("/old")[0] == ERR_OK
        assert c.create_container("/young")[0] == ERR_OK
        time.sleep(1.0)
        assert c.set_data("/young", b"touched")[0] == ERR_OK
        assert gone_within(c, "/old", 3)
        assert c.exists("/young")[0] == ERR_OK
        assert gone_within(c, "/young", 3)
        c.close()
