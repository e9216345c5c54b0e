"""Pytest fixtures shared by the integration tests: one server per module, kazoo clients, timeouts.

A module may set SERVER_TICK_TIME (ms) and SERVER_EXTRA_CFG (dict of zoo.cfg keys) to change its
server.  Every test gets a timeout (pytest-timeout if installed, else SIGALRM), and a failing test's
report carries the tail of the server's stderr.
"""

import re
import signal
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

DEFAULT_TIMEOUT_S = 60

try:
    import pytest_timeout  # noqa: F401
    HAVE_PYTEST_TIMEOUT = True
except ImportError:
    HAVE_PYTEST_TIMEOUT = False


def pytest_collection_modifyitems(config, items):
    if not HAVE_PYTEST_TIMEOUT:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S))


@pytest.fixture(autouse=True)
def _alarm_timeout(request):
    """Fallback hang guard when pytest-timeout is not installed."""
    if HAVE_PYTEST_TIMEOUT:
        yield
        return
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker and marker.args else DEFAULT_TIMEOUT_S

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded %ds" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    srv = getattr(item.module, "_zk_server", None)
    if srv is not None:
        rep.sections.append(("server %s log" % srv.kind, srv.log_tail()))


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    mod = request.module
    workdir = tmp_path_factory.mktemp(mod.__name__.rsplit(".", 1)[-1])
    srv = harness.Server(workdir,
                         tick_time=getattr(mod, "SERVER_TICK_TIME", 2000),
                         extra_cfg=getattr(mod, "SERVER_EXTRA_CFG", None))
    mod._zk_server = srv
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    problem = srv.health_problems()
    if problem:
        pytest.fail(problem)


@pytest.fixture
def kazoo_factory(server):
    """make(hosts=None, **KazooClient kwargs) -> started client; all stopped at teardown."""
    from kazoo.client import KazooClient

    clients = []

    def make(hosts=None, start=True, start_timeout=15, **kwargs):
        c = KazooClient(hosts=hosts or server.hosts, **kwargs)
        clients.append(c)
        if start:
            c.start(timeout=start_timeout)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def raw(server):
    """One zkwire.RawClient session on the module's server (a module may define its own)."""
    import zkwire
    c = zkwire.RawClient(server.port)
    yield c
    c.close()


@pytest.fixture
def zk(kazoo_factory):
    return kazoo_factory()


@pytest.fixture
def base(request):
    """A path prefix unique to this test (not created)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    return "/it-%s-%s" % (name, uuid.uuid4().hex[:8])


@pytest.fixture
def proxy(server):
    p = harness.Proxy(server.port)
    yield p
    p.close()
