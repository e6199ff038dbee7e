"""What every test session shares: Kubernetes for the integration tests, and a check that
no test leaves asyncio tasks behind.

One real control plane per test session (see ``fluxd.dev.controlplane``), or an existing
cluster when ``FLUXD_TEST_KUBECONFIG`` names its kubeconfig (kind, k3d, ...). Either way
fluxd's CRDs from ``manifests/crds/`` are installed and ``Established`` before the first
test gets the kubeconfig, so tests never race CRD registration. The control plane starts
only when a selected test asks for it (``-m "not integration"`` never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.dev.controlplane import ControlPlaneError, LocalControlPlane, ensure_binary, install_crds
from fluxd.kube.client import connect

pytest_plugins = [
    "tests.gitservers",
    "tests.githubapi",
    "tests.gitproviders",
    "tests.proxyserver",
    "tests.chartservers",
    "tests.s3servers",
    "tests.ociregistry",
]

#: Seconds a leaked task gets to finish once cancelled, before the check stops waiting.
LEAK_CANCEL_GRACE = 5.0


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control-plane binary before the first test when a selected test needs it.

    A first build compiles Kubernetes for minutes; done in the ``kubeconfig`` fixture it
    would count against the first integration test's timeout.
    """
    if session.config.option.collectonly or os.environ.get("FLUXD_TEST_KUBECONFIG"):
        return
    if any(
        isinstance(item, pytest.Function) and "kubeconfig" in item.fixturenames
        for item in session.items
    ):
        # A failed build is not fatal here: the kubeconfig fixture meets the same error and
        # reports it on the tests that need the cluster, while every other test still runs.
        with contextlib.suppress(ControlPlaneError):
            ensure_binary()


@pytest.fixture(autouse=True)
def no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Fail an async test that leaves asyncio tasks running, naming them, and cancel them.

    Being autouse, this is set up before the fixtures a test asks for and torn down after
    them, so a daemon that a fixture started has been stopped by the time it looks. A
    sync test has no event loop of its own and is left alone: giving every one a loop
    only to look at it costs a fifth of the unit suite's time.
    """
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue(leaked_tasks_check.__name__)


@pytest.fixture
async def leaked_tasks_check() -> AsyncIterator[None]:
    """The check itself, on the test's event loop: tasks of other loops are not the test's."""
    yield
    own = asyncio.current_task()
    leaked = [task for task in asyncio.all_tasks() if task is not own and not task.done()]
    if not leaked:
        return
    names = ", ".join(_describe(task) for task in leaked)
    for task in leaked:
        task.cancel()
    _, stubborn = await asyncio.wait(leaked, timeout=LEAK_CANCEL_GRACE)
    refused = f"; still running after cancel: {len(stubborn)}" if stubborn else ""
    pytest.fail(
        f"the test left {len(leaked)} asyncio task(s) running: {names}{refused}", pytrace=False
    )


def _describe(task: asyncio.Task[object]) -> str:
    """The task's name, its coroutine and the line that coroutine waits at."""
    coro = task.get_coro()
    what = getattr(coro, "__qualname__", repr(coro))
    frames = task.get_stack(limit=1)
    where = f" at {frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else ""
    return f"{task.get_name()!r} ({what}{where})"


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Kubeconfig of the session's cluster, with fluxd's CRDs installed."""
    existing = os.environ.get("FLUXD_TEST_KUBECONFIG")
    if existing:
        path = Path(existing).expanduser()
        install_crds(path)
        yield path
        return
    with LocalControlPlane() as control_plane:
        install_crds(control_plane.kubeconfig)
        yield control_plane.kubeconfig


@pytest.fixture
async def api_client(kubeconfig: Path) -> AsyncIterator[ApiClient]:
    """An API client (fluxd's own connection code) for the session's cluster."""
    api = await connect(str(kubeconfig))
    try:
        yield api
    finally:
        await api.close()
