"""A running fluxd for each test, scoped to a namespace of its own on the real API server.

Each test gets a fresh namespace and a :class:`~fluxd.daemon.manager.Daemon` that watches only
that namespace, so tests cannot see each other's objects. The daemon runs in-process
(same event loop as the test) and is stopped gracefully at teardown, after the test's
Flux objects were deleted while it still ran, so finalizers are honoured. That teardown
ends before the root conftest's ``no_leaked_tasks`` looks at the loop (an autouse fixture
is set up first, so it is torn down last): a daemon task still running then is a leak.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import KindInfo
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES, SECRETS, Resource
from fluxd.runtime import conditions
from tests.gitservers import free_port

WAIT_TIMEOUT = 30.0


@dataclass
class Fluxd:
    """The daemon under test and helpers to drive and observe it like a user would."""

    daemon: Daemon
    api: ApiClient
    namespace: str

    async def create(self, kind: KindInfo[Any], name: str, spec: dict[str, Any]) -> None:
        await client.create(
            self.api,
            resource_of(kind),
            {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": spec,
            },
        )

    async def get(self, kind: KindInfo[Any], name: str) -> dict[str, Any]:
        return await client.get(self.api, resource_of(kind), self.namespace, name)

    async def patch(self, kind: KindInfo[Any], name: str, body: dict[str, Any]) -> None:
        await client.patch(self.api, resource_of(kind), self.namespace, name, body)

    async def delete(self, kind: KindInfo[Any], name: str) -> None:
        await client.delete(self.api, resource_of(kind), self.namespace, name)

    async def secret(self, name: str, data: dict[str, str | bytes]) -> None:
        string_data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        await client.create(
            self.api,
            SECRETS,
            {"metadata": {"name": name, "namespace": self.namespace}, "stringData": string_data},
        )

    async def wait_for(
        self,
        kind: KindInfo[Any],
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = WAIT_TIMEOUT,
    ) -> dict[str, Any]:
        """Poll the API server (as ``kubectl wait`` would) until ``predicate`` holds."""
        last: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        last = await self.get(kind, name)
                    except client.ApiError as error:
                        if not error.not_found:
                            raise
                        last = {}
                    if last and predicate(last):
                        return last
                    await asyncio.sleep(0.1)
        except TimeoutError:
            status = (last.get("status") or {}) if last else "object not found"
            raise AssertionError(
                f"{kind.kind} {self.namespace}/{name}: {what} not seen in {timeout:.0f}s; "
                f"last status: {status}"
            ) from None

    async def wait_gone(self, kind: KindInfo[Any], name: str) -> None:
        """Wait until the object no longer exists (its finalizers were released)."""
        async with asyncio.timeout(WAIT_TIMEOUT):
            while True:
                try:
                    await self.get(kind, name)
                except client.ApiError as error:
                    if error.not_found:
                        return
                    raise
                await asyncio.sleep(0.05)

    async def wait_ready(self, kind: KindInfo[Any], name: str) -> dict[str, Any]:
        return await self.wait_for(kind, name, lambda o: is_ready_now(o), "Ready=True")

    async def wait_not_ready(self, kind: KindInfo[Any], name: str, reason: str) -> dict[str, Any]:
        return await self.wait_for(
            kind, name, lambda o: ready_reason(o) == ("False", reason), f"Ready=False/{reason}"
        )

    async def wait_event(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Wait for an Event about ``name`` (fluxd records them after the status patch)."""
        items: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                while True:
                    found = await client.request(
                        self.api,
                        "GET",
                        f"/api/v1/namespaces/{self.namespace}/events",
                        query={"fieldSelector": f"involvedObject.name={name}"},
                    )
                    items = found.get("items", [])
                    match = next((event for event in items if predicate(event)), None)
                    if match is not None:
                        return match
                    await asyncio.sleep(0.1)
        except TimeoutError:
            seen = [(event["reason"], event["message"]) for event in items]
            raise AssertionError(f"event about {name}: {what} not seen; seen: {seen}") from None

    async def metrics(self) -> str:
        host, port = self.daemon.addresses["probes"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/metrics") as response,
        ):
            return await response.text()

    async def fetch_artifact(self, url: str) -> bytes:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200, f"GET {url}: {response.status}"
            return await response.read()


def ready_reason(obj: dict[str, Any]) -> tuple[str, str] | None:
    ready = conditions.get(obj.get("status") or {}, conditions.READY)
    return (ready["status"], ready["reason"]) if ready else None


def is_ready_now(obj: dict[str, Any]) -> bool:
    """Ready=True for the current generation (not a leftover from the previous spec)."""
    status = obj.get("status") or {}
    return conditions.is_ready(status) and status.get("observedGeneration") == obj["metadata"].get(
        "generation"
    )


@pytest.fixture
async def namespace(api_client: ApiClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await client.create(api_client, NAMESPACES, {"metadata": {"name": name}})
    yield name
    await client.delete(api_client, NAMESPACES, None, name)


@asynccontextmanager
async def running_daemon(api: ApiClient, **options: Any) -> AsyncIterator[Daemon]:
    """fluxd in-process with loopback listeners and the given :class:`Options` fields,
    ready (informers synced) when yielded and stopped gracefully on exit."""
    artifact_port = free_port()
    daemon = Daemon(
        api,
        Options(
            metrics_addr="127.0.0.1:0",
            artifact_addr=f"127.0.0.1:{artifact_port}",
            artifact_base_url=f"http://127.0.0.1:{artifact_port}",
            grace_period=5,
            **options,
        ),
    )
    task = asyncio.create_task(daemon.run(), name="fluxd under test")
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            while not (daemon.addresses.get("probes") and daemon.ready()):
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield daemon
    finally:
        daemon.shutdown()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await task


@asynccontextmanager
async def namespaced_fluxd(api: ApiClient, namespace: str, **options: Any) -> AsyncIterator[Fluxd]:
    """A daemon watching ``namespace`` only; the Flux objects left in it are deleted
    while the daemon still runs, so its finalizers are honoured."""
    async with running_daemon(api, watch_namespace=namespace, **options) as daemon:
        running = Fluxd(daemon, api, namespace)
        try:
            yield running
        finally:
            await _delete_flux_objects(running)


@pytest.fixture
async def fluxd(api_client: ApiClient, namespace: str) -> AsyncIterator[Fluxd]:
    async with namespaced_fluxd(api_client, namespace) as running:
        yield running


@pytest.fixture
async def other_namespace(api_client: ApiClient) -> AsyncIterator[str]:
    """A second namespace, for references across namespaces."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    await client.create(api_client, NAMESPACES, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        await client.delete(api_client, NAMESPACES, None, name)


# A reference to another namespace needs a daemon that sees both namespaces; the
# ``fluxd`` fixture watches one. This one watches every namespace but only objects
# labelled for this test, so it cannot touch another test's objects.


@asynccontextmanager
async def labelled_fluxd(
    api: ApiClient, namespaces: list[str], **options: Any
) -> AsyncIterator[list[Fluxd]]:
    """A daemon (with ``options``) for Flux objects labelled ``fluxd.test/run=<first
    namespace>``; yields a :class:`Fluxd` view per namespace. Objects are deleted while it
    still runs."""
    selector = f"fluxd.test/run={namespaces[0]}"
    async with running_daemon(api, watch_label_selector=selector, **options) as daemon:
        try:
            yield [Fluxd(daemon, api, namespace) for namespace in namespaces]
        finally:
            # Consumers before their sources, each waited for: fluxd's finalizers run.
            for reconciler in reversed(daemon.reconcilers):
                await _delete_labelled(api, resource_of(reconciler.kind), namespaces, selector)


async def _delete_labelled(
    api: ApiClient, resource: Resource, namespaces: list[str], selector: str
) -> None:
    for namespace in namespaces:
        listed = await client.list_page(api, resource, namespace, label_selector=selector)
        for item in listed["items"]:
            await client.delete(api, resource, namespace, item["metadata"]["name"])
    async with asyncio.timeout(WAIT_TIMEOUT):
        while (await client.list_page(api, resource, label_selector=selector))["items"]:
            await asyncio.sleep(0.05)


async def create_labelled(
    view: Fluxd,
    kind: KindInfo[Any],
    name: str,
    spec: dict[str, object],
    labels: dict[str, str] | None = None,
) -> None:
    """Create a Flux object the :func:`labelled_fluxd` daemon of ``view`` watches, with
    ``labels`` besides."""
    run = view.daemon.options.watch_label_selector or ""
    await client.create(
        view.api,
        resource_of(kind),
        {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {
                "name": name,
                "namespace": view.namespace,
                "labels": {**(labels or {}), **dict([run.split("=", 1)])},
            },
            "spec": spec,
        },
    )


async def _delete_flux_objects(running: Fluxd) -> None:
    """Delete the test's Flux objects, consumers before sources, and wait for fluxd to
    release them (its finalizers run while the daemon is still up)."""
    for reconciler in reversed(running.daemon.reconcilers):
        resource = resource_of(reconciler.kind)
        listed = await client.list_page(running.api, resource, running.namespace)
        for item in listed.get("items", []):
            name = item["metadata"]["name"]
            await client.delete(running.api, resource, running.namespace, name)
        async with asyncio.timeout(WAIT_TIMEOUT):
            while (await client.list_page(running.api, resource, running.namespace)).get("items"):
                await asyncio.sleep(0.05)
