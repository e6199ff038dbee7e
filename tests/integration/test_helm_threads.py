"""Helm actions wait in the SDK's own threads, against a real control plane.

A release action holds a thread for as long as Helm waits for the release's objects. Were
those anyio's shared worker threads, a few dozen waiting releases would leave none to the
rest of the daemon (chart archives, git, builds) until their waits ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.helm import ActionOptions, Releases, load_chart
from fluxd.kube import client
from fluxd.kube.resources import Resource
from tests import helmcharts

pytestmark = pytest.mark.integration

DEPLOYMENTS = Resource("apps", "v1", "deployments")

#: Its Pod fits no node, so its Deployment never becomes available: Helm's wait lasts
#: until its timeout.
NEVER_READY_CHART = helmcharts.package(
    "waiting",
    {
        "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      nodeSelector: {fluxd.test/nowhere: "true"}
      containers:
      - name: app
        image: registry.example/app:1.0
""",
    },
)


@pytest.fixture
def releases(kubeconfig: Path) -> Iterator[Releases]:
    engine = Releases(kubeconfig.read_text())
    yield engine
    engine.close()


async def test_a_release_waiting_for_its_objects_leaves_the_shared_worker_threads_free(
    releases: Releases, namespace: str, api_client: ApiClient
) -> None:
    chart = load_chart(NEVER_READY_CHART, helmcharts.digest(NEVER_READY_CHART))
    shared = anyio.to_thread.current_default_thread_limiter()
    tokens = shared.total_tokens
    shared.total_tokens = 1  # the rest of the daemon has one worker thread left
    waiting = ActionOptions(wait=True, timeout=120)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: releases.install(
                    chart,
                    "app",
                    {},
                    namespace=namespace,
                    storage=namespace,
                    user=None,
                    options=waiting,
                )
            )
            with anyio.fail_after(60):
                while (
                    await client.get(api_client, DEPLOYMENTS, namespace, "app", missing_ok=True)
                    is None
                ):
                    await anyio.sleep(0.2)
            # Helm has applied the Deployment and waits for it; another thread's work runs now.
            with anyio.fail_after(10):
                assert await anyio.to_thread.run_sync(lambda: "ran") == "ran"
            tasks.cancel_scope.cancel()
    finally:
        shared.total_tokens = tokens
