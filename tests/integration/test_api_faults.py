"""The API server misbehaving under a running fluxd: nothing lost, status honest, daemon up.

The daemon talks to the real kube-apiserver through :class:`~tests.apiproxy.ApiFaultProxy`,
which injects the faults of a real cluster: watch streams cut mid-body, a resume answered
with ``410 Gone``, bursts of 429 and 5xx answers, the server unreachable for seconds or
restarting under an apply, and answers slower than the client waits. The test itself
reads and writes directly (no faults), as a user with ``kubectl`` would, and checks what
that user would see: every change made meanwhile is still reconciled, ``Ready`` says
what went wrong while it is wrong, and everything in git ends up applied exactly once.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.runtime import conditions
from tests.apiproxy import ApiFaultProxy
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, is_ready_now, namespaced_fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    applied,
    configmap,
    kustomization,
    live,
    setup_source,
    until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def api_proxy(kubeconfig: Path) -> Iterator[ApiFaultProxy]:
    """A fresh fault proxy in front of the session's API server, for one test."""
    with (
        tempfile.TemporaryDirectory(prefix="fluxd-apiproxy-") as workdir,
        ApiFaultProxy(kubeconfig, Path(workdir)) as proxy,
    ):
        yield proxy


@asynccontextmanager
async def proxied_fluxd(
    proxy: ApiFaultProxy, direct: ApiClient, namespace: str, **connect_options: Any
) -> AsyncIterator[Fluxd]:
    """A daemon for ``namespace`` connected through ``proxy``; the :class:`Fluxd` it yields
    reads and writes with ``direct``, past the proxy's faults."""
    proxied = await client.connect(str(proxy.kubeconfig), **connect_options)
    try:
        async with namespaced_fluxd(proxied, namespace) as running:
            yield Fluxd(running.daemon, direct, namespace)
    finally:
        await proxied.close()


def configmaps(namespace: str, names: list[str]) -> dict[str, str]:
    """Git files for ConfigMaps ``names``, each in the folder its name starts with."""
    return {f"{path}/{name}.yaml": configmap(namespace, name) for path, name in _paths(names)}


def _paths(names: list[str]) -> list[tuple[str, str]]:
    return [(name.rsplit("-", 1)[0], name) for name in names]


async def applied_objects(fluxd: Fluxd, names: list[str]) -> dict[str, str | None]:
    """Each ConfigMap's ``data.value`` as the cluster holds it (``None``: missing)."""
    found: dict[str, str | None] = {}
    for name in names:
        obj = await live(fluxd, CONFIGMAPS, name)
        found[name] = None if obj is None else obj["data"]["value"]
    return found


def inventory_ids(obj: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in obj["status"]["inventory"]["entries"]]


async def warnings_about(fluxd: Fluxd, name: str) -> list[tuple[str, str]]:
    found = await client.request(
        fluxd.api,
        "GET",
        f"/api/v1/namespaces/{fluxd.namespace}/events",
        query={"fieldSelector": f"involvedObject.name={name},type=Warning"},
    )
    return [(event["reason"], event["message"]) for event in found.get("items", [])]


class ReadyLog:
    """Every ``Ready`` condition a user polling the Kustomization saw, in order."""

    def __init__(self, fluxd: Fluxd, name: str) -> None:
        self.fluxd, self.name = fluxd, name
        self.seen: list[tuple[str, str, str]] = []

    async def watch(self) -> None:
        while True:
            try:
                obj = await self.fluxd.get(KUSTOMIZATION, self.name)
            except client.ApiError:
                obj = {}
            ready = conditions.get(obj.get("status") or {}, conditions.READY)
            entry = (ready["status"], ready["reason"], ready["message"]) if ready else None
            if entry and (not self.seen or self.seen[-1] != entry):
                self.seen.append(entry)
            await asyncio.sleep(0.05)

    def failures(self) -> list[tuple[str, str, str]]:
        return [entry for entry in self.seen if entry[0] == "False"]


@asynccontextmanager
async def ready_log(fluxd: Fluxd, name: str) -> AsyncIterator[ReadyLog]:
    log = ReadyLog(fluxd, name)
    task = asyncio.create_task(log.watch(), name=f"polling Ready of {name}")
    try:
        yield log
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def start_applied(
    fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer, names: list[str]
) -> str:
    """A source and a Kustomization ``apps`` of ``./<first name's folder>``, applied."""
    sha = remote.commit(configmaps(fluxd.namespace, names))
    await setup_source(fluxd, remote, server)
    folder = _paths(names)[0][0]
    await fluxd.create(KUSTOMIZATION, "apps", kustomization(f"./{folder}"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    return sha


async def test_change_made_while_watches_are_cut_is_reconciled(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        await start_applied(fluxd, git_remote, git_http, ["one-a", "two-b"])
        kustomizations = resource_of(KUSTOMIZATION).path(namespace)
        lists_before = api_proxy.lists(kustomizations)
        assert api_proxy.cut_watches() >= 2, "the daemon holds a watch per kind"
        await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"path": "./two"}})

        done = await fluxd.wait_for(KUSTOMIZATION, "apps", is_ready_now, "the new path applied")
        assert done["status"]["inventory"]["entries"] == [
            {"id": f"{namespace}_two-b__ConfigMap", "v": "v1"}
        ]
        await until("one-a pruned", lambda: _gone(fluxd, "one-a"))
        assert api_proxy.lists(kustomizations) == lists_before, (
            "resumed from its resourceVersion: no relist"
        )


async def _gone(fluxd: Fluxd, name: str) -> bool:
    return await live(fluxd, CONFIGMAPS, name) is None


@pytest.mark.parametrize("as_event", [False, True], ids=["http-410", "error-event"])
async def test_resume_answered_410_relists_and_misses_nothing(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    as_event: bool,
) -> None:
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        await start_applied(fluxd, git_remote, git_http, ["one-a", "two-b"])
        kustomizations = resource_of(KUSTOMIZATION).path(namespace)
        lists_before = api_proxy.lists(kustomizations)
        api_proxy.expire_next_watch(path_prefix=kustomizations, as_event=as_event)
        api_proxy.cut_watches()
        await fluxd.patch(KUSTOMIZATION, "apps", {"spec": {"path": "./two"}})

        done = await fluxd.wait_for(KUSTOMIZATION, "apps", is_ready_now, "the new path applied")
        assert inventory_ids(done) == [f"{namespace}_two-b__ConfigMap"]
        await until("one-a pruned", lambda: _gone(fluxd, "one-a"))
        assert api_proxy.faults("410"), "the resume was answered 410"
        assert api_proxy.lists(kustomizations) > lists_before, "the informer relisted"


async def test_429_and_503_with_retry_after_are_waited_out_not_reported(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    names = ["cm-1", "cm-2", "cm-3"]
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        sha = git_remote.commit(configmaps(namespace, names))
        await setup_source(fluxd, git_remote, git_http)
        configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"
        api_proxy.fail_next(2, 429, method="PATCH", path_prefix=configmaps_path, retry_after=3)
        api_proxy.fail_next(1, 503, method="PATCH", path_prefix=configmaps_path, retry_after=3)
        async with ready_log(fluxd, "apps") as log:
            await fluxd.create(KUSTOMIZATION, "apps", kustomization("./cm"))
            done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

        assert [entry.fault for entry in api_proxy.injected] == ["429", "429", "503"]
        assert log.seen[0][:2] == ("Unknown", "Progressing"), "in progress while waiting"
        assert log.failures() == [], "a server asking to retry later is not a failure"
        assert await warnings_about(fluxd, "apps") == []
        assert inventory_ids(done) == [f"{namespace}_{name}__ConfigMap" for name in names]
        assert await applied_objects(fluxd, names) == dict.fromkeys(names, "1")


async def test_500_burst_fails_honestly_then_applies_everything(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    names = ["cm-1", "cm-2", "cm-3"]
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        sha = git_remote.commit(configmaps(namespace, names))
        await setup_source(fluxd, git_remote, git_http)
        configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"
        api_proxy.fail_next(2, 500, method="PATCH", path_prefix=configmaps_path)
        async with ready_log(fluxd, "apps") as log:
            await fluxd.create(KUSTOMIZATION, "apps", kustomization("./cm", retryInterval="1s"))
            done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

        failures = log.failures()
        assert failures, f"the 500s were not reported; Ready went {log.seen}"
        _, reason, message = failures[0]
        assert reason == "ReconciliationFailed"
        assert "ConfigMap/" in message, message
        assert "(InternalError): injected 500 by the test proxy" in message, message
        assert [entry.fault for entry in api_proxy.injected] == ["500", "500"]
        assert inventory_ids(done) == [f"{namespace}_{name}__ConfigMap" for name in names]
        assert await applied_objects(fluxd, names) == dict.fromkeys(names, "1")


async def test_api_server_down_mid_reconcile_daemon_stays_up_and_converges(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    names = ["cm-1", "cm-2"]
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        sha = git_remote.commit(configmaps(namespace, names))
        await setup_source(fluxd, git_remote, git_http)
        configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"
        # The apply is held at the API server when it goes away.
        api_proxy.delay(2.0, count=1, method="PATCH", path_prefix=configmaps_path)
        await fluxd.create(KUSTOMIZATION, "apps", kustomization("./cm", retryInterval="1s"))
        await until("the apply reaching the API server", _delayed(api_proxy))
        api_proxy.go_down()
        try:
            await asyncio.sleep(3.0)
            assert await _probe(fluxd, "/healthz") == 200, "the daemon stays up"
        finally:
            api_proxy.come_up()

        done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
        assert inventory_ids(done) == [f"{namespace}_{name}__ConfigMap" for name in names]
        assert await applied_objects(fluxd, names) == dict.fromkeys(names, "1")
        assert await _probe(fluxd, "/readyz") == 200


async def test_connection_dropped_mid_apply_is_reported_then_converges(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    names = ["cm-1", "cm-2"]
    async with proxied_fluxd(api_proxy, api_client, namespace) as fluxd:
        sha = git_remote.commit(configmaps(namespace, names))
        await setup_source(fluxd, git_remote, git_http)
        configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"
        api_proxy.delay(2.0, count=1, method="PATCH", path_prefix=configmaps_path)
        async with ready_log(fluxd, "apps") as log:
            await fluxd.create(KUSTOMIZATION, "apps", kustomization("./cm", retryInterval="1s"))
            await until("the apply reaching the API server", _delayed(api_proxy))
            # A restart too quick to refuse the status write: only the apply is lost.
            api_proxy.go_down()
            api_proxy.come_up()
            done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

        failures = log.failures()
        assert failures, f"the dropped connection was not reported; Ready went {log.seen}"
        assert failures[0][1] == "ReconciliationFailed"
        # The connection's own error, not an exception group or an "internal error".
        assert failures[0][2].startswith("a connection failed mid-reconcile, retrying: "), failures
        assert inventory_ids(done) == [f"{namespace}_{name}__ConfigMap" for name in names]
        assert await applied_objects(fluxd, names) == dict.fromkeys(names, "1")


def _delayed(proxy: ApiFaultProxy) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(proxy.faults("delayed 2s"))

    return check


async def _probe(fluxd: Fluxd, path: str) -> int:
    host, port = fluxd.daemon.addresses["probes"]
    async with aiohttp.ClientSession() as session, session.get(f"http://{host}:{port}{path}") as r:
        return r.status


async def test_answer_slower_than_the_client_timeout_fails_clearly_then_succeeds(
    api_proxy: ApiFaultProxy,
    api_client: ApiClient,
    namespace: str,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    names = ["cm-1"]
    async with proxied_fluxd(api_proxy, api_client, namespace, request_timeout=1.0) as fluxd:
        sha = git_remote.commit(configmaps(namespace, names))
        await setup_source(fluxd, git_remote, git_http)
        configmaps_path = f"/api/v1/namespaces/{namespace}/configmaps"
        api_proxy.delay(3.0, count=1, method="PATCH", path_prefix=configmaps_path)
        async with ready_log(fluxd, "apps") as log:
            await fluxd.create(KUSTOMIZATION, "apps", kustomization("./cm", retryInterval="1s"))
            done = await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

        failures = log.failures()
        assert failures, f"the timeout was not reported; Ready went {log.seen}"
        _, reason, message = failures[0]
        assert reason == "ReconciliationFailed"
        assert "ConfigMap/" in message, message
        assert "no answer from the API server within 1s" in message, message
        assert inventory_ids(done) == [f"{namespace}_cm-1__ConfigMap"]
        assert await applied_objects(fluxd, names) == {"cm-1": "1"}
