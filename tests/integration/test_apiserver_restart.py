"""The kube-apiserver fluxd talks to is killed and started again, on the same etcd.

The daemon under test is connected to a :class:`~tests.second_apiserver.SecondApiServer`,
a second apiserver of the session's cluster that the test kills (``SIGKILL``, or
``SIGTERM`` for a graceful stop) and starts again on the same port. The test reads and
writes through the session's own apiserver, which stays up, as a user with ``kubectl``
against another replica would. What that user must see:

- killed in the middle of an apply, the apiserver comes back and the Kustomization ends
  ``Ready`` with every object applied exactly once, the daemon up all along, any
  failure it reported meanwhile naming the lost connection, and its log saying so
  rather than reporting a crash;
- killed while the daemon is idle, its watches resume once the apiserver is back: a
  change that only a watch notices (the intervals are an hour) is acted on within
  :data:`~tests.integration.conftest.WAIT_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.kube import client
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, namespaced_fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    applied,
    configmap,
    kustomization,
    reconcile_now,
    setup_source,
)
from tests.integration.test_api_faults import inventory_ids, ready_log
from tests.second_apiserver import SecondApiServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("FLUXD_TEST_KUBECONFIG")),
        reason="starts a second apiserver of the local control plane; an existing cluster "
        "(FLUXD_TEST_KUBECONFIG) has none to copy",
    ),
]

CONFIGMAP_COUNT = 60
OWNER_SELECTOR = "kustomize.toolkit.fluxcd.io/name=apps"
#: Down long enough that every retry in flight meets a refused connection.
DOWNTIME = 2.0
#: Without it a SIGTERM waits a minute for open watches to end (HTTP/1.1 has no GOAWAY)
#: before the apiserver exits; with it, it ends them itself, as a managed control plane
#: configured for rolling restarts does.
GRACEFUL_WATCHES = ("--shutdown-watch-termination-grace-period=5s",)
#: Time to converge once the apiserver is back: retries back off while it is down.
CONVERGE_TIMEOUT = 60.0


@asynccontextmanager
async def restartable_fluxd(
    kubeconfig: Path, direct: ApiClient, namespace: str, workdir: Path
) -> AsyncIterator[tuple[Fluxd, SecondApiServer]]:
    """A daemon for ``namespace`` connected to a second apiserver that the test may stop
    and start; the :class:`Fluxd` it yields reads and writes through ``direct``."""
    async with SecondApiServer(kubeconfig, workdir, extra_args=GRACEFUL_WATCHES) as server:
        connected = await client.connect(str(server.kubeconfig))
        try:
            async with namespaced_fluxd(connected, namespace) as running:
                try:
                    yield Fluxd(running.daemon, direct, namespace), server
                finally:
                    # The daemon's teardown deletes the test's objects through it.
                    if not server.running:
                        await server.start()
        finally:
            await connected.close()


def deployment(namespace: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0.0
"""


async def first_configmap_applied(fluxd: Fluxd) -> None:
    """Return as soon as the first ConfigMap of the Kustomization ``apps`` exists."""
    async for change, _ in client.watch(
        fluxd.api, CONFIGMAPS, fluxd.namespace, label_selector=OWNER_SELECTOR
    ):
        if change == "ADDED":
            return


async def applied_configmaps(fluxd: Fluxd) -> dict[str, dict[str, Any]]:
    listed = await client.list_page(
        fluxd.api, CONFIGMAPS, fluxd.namespace, label_selector=OWNER_SELECTOR
    )
    return {item["metadata"]["name"]: item for item in listed["items"]}


async def probe(fluxd: Fluxd, path: str) -> int:
    host, port = fluxd.daemon.addresses["probes"]
    async with aiohttp.ClientSession() as session, session.get(f"http://{host}:{port}{path}") as r:
        return r.status


async def test_killed_mid_apply_every_object_is_applied_once(
    kubeconfig: Path,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    tmp_path: Path,
) -> None:
    names = [f"cm-{index:02d}" for index in range(CONFIGMAP_COUNT)]
    files = {f"apps/{name}.yaml": configmap(namespace, name, value=name) for name in names}
    files["apps/web.yaml"] = deployment(namespace)
    sha = git_remote.commit(files)
    async with restartable_fluxd(kubeconfig, api_client, namespace, tmp_path) as (fluxd, server):
        await setup_source(fluxd, git_remote, git_http)
        with structlog.testing.capture_logs() as daemon_log:
            async with ready_log(fluxd, "apps") as log:
                first_applied = asyncio.create_task(first_configmap_applied(fluxd))
                await fluxd.create(KUSTOMIZATION, "apps", kustomization("./apps"))
                await asyncio.wait_for(first_applied, CONVERGE_TIMEOUT)
                await server.stop(signal.SIGKILL)
                applied_before_kill = len(await applied_configmaps(fluxd))
                await asyncio.sleep(DOWNTIME)
                assert await probe(fluxd, "/healthz") == 200, "the daemon stays up"
                await server.start()
                done = await fluxd.wait_for(
                    KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied", CONVERGE_TIMEOUT
                )

        assert 0 < applied_before_kill < CONFIGMAP_COUNT, (
            f"the kill came mid-apply ({applied_before_kill} of {CONFIGMAP_COUNT} ConfigMaps)"
        )
        assert [e for e in daemon_log if e["log_level"] in ("error", "critical")] == [], (
            "losing the API server is no crash"
        )
        assert any(
            e["event"].startswith("reconciliation failed: a connection failed") for e in daemon_log
        ), "the lost connection is logged as such"
        for status, reason, message in log.failures():
            assert reason == "ReconciliationFailed", (status, reason, message)
            assert "connection" in message.lower(), message
        expected_ids = [f"{namespace}_{name}__ConfigMap" for name in names]
        assert sorted(inventory_ids(done)) == sorted(
            [*expected_ids, f"{namespace}_web_apps_Deployment"]
        )
        live = await applied_configmaps(fluxd)
        assert sorted(live) == names, "each ConfigMap once, none missing"
        assert {name: obj["data"] for name, obj in live.items()} == {
            name: {"value": name} for name in names
        }
        web = await client.get(fluxd.api, DEPLOYMENTS, namespace, "web")
        assert web["spec"]["template"]["spec"]["containers"][0]["image"] == (
            "registry.example/web:1.0.0"
        )
        assert web["metadata"]["generation"] == 1, "the Deployment's spec was written once"
        assert await probe(fluxd, "/readyz") == 200


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
async def test_watches_resume_after_a_restart(
    kubeconfig: Path,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    sha = git_remote.commit({"apps/cm-a.yaml": configmap(namespace, "cm-a")})
    async with restartable_fluxd(kubeconfig, api_client, namespace, tmp_path) as (fluxd, server):
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "apps", kustomization("./apps"))
        await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

        await server.stop(stop_signal)
        await asyncio.sleep(DOWNTIME)
        await server.start()
        back = time.monotonic()
        await reconcile_now(fluxd, "apps", "after-the-restart")
        await fluxd.create(
            GIT_REPOSITORY, "later", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        await fluxd.wait_ready(GIT_REPOSITORY, "later")
        reacted = time.monotonic() - back

        assert reacted < WAIT_TIMEOUT, f"the watches took {reacted:.1f}s to resume"
        assert await probe(fluxd, "/healthz") == 200
