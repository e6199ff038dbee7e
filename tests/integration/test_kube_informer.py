"""The informer against the real API server, watching ConfigMaps (no CRD needed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.dev.controlplane import LocalControlPlane
from fluxd.kube.client import connect, create, delete, list_page, patch
from fluxd.kube.informer import EventType, Informer
from fluxd.kube.resources import CONFIGMAPS, EVENTS, NAMESPACES

pytestmark = pytest.mark.integration

WAIT = 15.0  # upper bound for anything the API server should do "at once"


class Events:
    """Collects what an informer reports, for bounded waits on it."""

    def __init__(self) -> None:
        self.seen: list[tuple[EventType, str, dict[str, Any]]] = []
        self._changed = anyio.Event()

    async def __call__(self, kind: EventType, obj: dict[str, Any]) -> None:
        self.seen.append((kind, obj["metadata"]["name"], obj))
        self._changed.set()
        self._changed = anyio.Event()

    def pairs(self) -> list[tuple[EventType, str]]:
        return [(kind, name) for kind, name, _ in self.seen]

    async def wait_for(self, count: int) -> None:
        """Until at least ``count`` events have been seen."""
        with anyio.fail_after(WAIT):
            while len(self.seen) < count:
                await self._changed.wait()


async def make_cm(
    api_client: ApiClient,
    namespace: str,
    name: str,
    labels: dict[str, str] | None = None,
    **data: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return await create(api_client, CONFIGMAPS, {"metadata": meta, "data": data})


def configmaps(api_client: ApiClient, namespace: str, events: Events, **options: Any) -> Informer:
    """An informer on the test's ConfigMaps, without the ``kube-root-ca.crt`` that the
    controller manager puts into every namespace."""
    return Informer(
        api_client,
        CONFIGMAPS,
        namespace=namespace,
        field_selector="metadata.name!=kube-root-ca.crt",
        on_event=events,
        **options,
    )


def count_relists(informer: Informer) -> list[int]:
    """Wrap the informer's LIST so a test can tell a resumed watch from a relist."""
    calls = [0]
    relist = informer._relist

    async def counting() -> None:
        calls[0] += 1
        await relist()

    informer._relist = counting  # type: ignore[method-assign]
    return calls


async def test_sees_add_modify_delete(api_client: ApiClient, namespace: str) -> None:
    await make_cm(api_client, namespace, "before", a="1")
    events = Events()
    informer = configmaps(api_client, namespace, events)
    tasks_before = len(asyncio.all_tasks())
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        assert events.pairs() == [("ADDED", "before")]
        # LIST items carry no kind/apiVersion: the informer fills them in.
        assert events.seen[0][2]["kind"] == "ConfigMap"
        assert events.seen[0][2]["apiVersion"] == "v1"

        await make_cm(api_client, namespace, "after", b="1")
        await events.wait_for(2)
        await patch(api_client, CONFIGMAPS, namespace, "after", {"data": {"b": "2"}})
        await events.wait_for(3)
        await delete(api_client, CONFIGMAPS, namespace, "before")
        await events.wait_for(4)
        tg.cancel_scope.cancel()

    assert events.pairs() == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before"),
    ]
    assert events.seen[2][2]["data"] == {"b": "2"}
    assert "managedFields" not in events.seen[1][2]["metadata"]
    stored = informer.get(namespace, "after")
    assert stored is not None
    assert stored["data"] == {"b": "2"}
    assert [o["metadata"]["name"] for o in informer.list()] == ["after"]
    # Cancellation left nothing running behind.
    await anyio.lowlevel.checkpoint()
    assert len(asyncio.all_tasks()) == tasks_before


async def test_pages_the_initial_list(api_client: ApiClient, namespace: str) -> None:
    for i in range(7):
        await make_cm(api_client, namespace, f"cm-{i}")
    events = Events()
    informer = configmaps(api_client, namespace, events, page_size=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        tg.cancel_scope.cancel()
    assert sorted(events.pairs()) == [("ADDED", f"cm-{i}") for i in range(7)]


async def test_resumes_across_watch_timeouts_without_missing_changes(
    api_client: ApiClient, namespace: str
) -> None:
    events = Events()
    # The server ends each watch after 1-2 s, so the changes below span several watches.
    informer = configmaps(api_client, namespace, events, watch_timeout=1)
    relists = count_relists(informer)
    expected: list[tuple[EventType, str]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        for i in range(12):
            await make_cm(api_client, namespace, f"cm-{i}", v="0")
            expected.append(("ADDED", f"cm-{i}"))
            if i % 3 == 1:
                await patch(api_client, CONFIGMAPS, namespace, f"cm-{i}", {"data": {"v": "1"}})
                expected.append(("MODIFIED", f"cm-{i}"))
            if i % 4 == 2:
                await delete(api_client, CONFIGMAPS, namespace, f"cm-{i}")
                expected.append(("DELETED", f"cm-{i}"))
            await anyio.sleep(0.4)
        await events.wait_for(len(expected))
        await anyio.sleep(0.5)  # room for any duplicate to show up
        tg.cancel_scope.cancel()

    assert events.pairs() == expected
    assert relists[0] == 1, "a watch timeout must resume, not relist"
    page = await list_page(
        api_client, CONFIGMAPS, namespace, field_selector="metadata.name!=kube-root-ca.crt"
    )
    names = sorted(o["metadata"]["name"] for o in page["items"])
    assert sorted(o["metadata"]["name"] for o in informer.list()) == names


async def test_run_again_resumes_from_the_last_resource_version(
    api_client: ApiClient, namespace: str
) -> None:
    await make_cm(api_client, namespace, "kept")
    await make_cm(api_client, namespace, "removed")
    events = Events()
    informer = configmaps(api_client, namespace, events)
    relists = count_relists(informer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        tg.cancel_scope.cancel()

    # Changes while nobody watches.
    await make_cm(api_client, namespace, "new")
    await patch(api_client, CONFIGMAPS, namespace, "kept", {"data": {"k": "v"}})
    await delete(api_client, CONFIGMAPS, namespace, "removed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        await events.wait_for(5)
        tg.cancel_scope.cancel()

    assert events.pairs()[2:] == [("ADDED", "new"), ("MODIFIED", "kept"), ("DELETED", "removed")]
    assert relists[0] == 1


def etcd_url_of(kubeconfig: Path) -> str | None:
    """The etcd behind the test cluster's API server, found through the API server's
    command line; ``None`` for a cluster not started on this machine."""
    server = next(
        (line.split()[-1] for line in kubeconfig.read_text().splitlines() if "server:" in line),
        "",
    )
    port = server.rpartition(":")[2]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if f"--secure-port={port}" in args:
            for arg in args:
                if arg.startswith("--etcd-servers="):
                    return arg.removeprefix("--etcd-servers=").split(",")[0]
    return None


async def compact_etcd(etcd_url: str, revision: str) -> None:
    """Discard etcd's history before ``revision``, as the API server does every 5 minutes."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{etcd_url}/v3/kv/compaction", json={"revision": revision, "physical": True}
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()


def event(namespace: str, name: str, message: str = "m") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
        "reason": "Test",
        "message": message,
        "type": "Normal",
    }


@pytest.fixture
def compactable_cluster(kubeconfig: Path) -> Iterator[tuple[Path, str]]:
    """A cluster whose etcd the test may compact, with that etcd's URL: the session's own,
    or, when the session runs against an external cluster, a local one started for it."""
    etcd_url = etcd_url_of(kubeconfig)
    if etcd_url is not None:
        yield kubeconfig, etcd_url
        return
    with LocalControlPlane() as plane:
        local_url = etcd_url_of(plane.kubeconfig)
        assert local_url is not None, "the local control plane's etcd was not found"
        yield plane.kubeconfig, local_url


async def test_relists_after_410_gone_and_reports_what_changed(
    compactable_cluster: tuple[Path, str],
) -> None:
    # Events, because the API server keeps no watch cache for them: a watch from an old
    # resourceVersion goes to etcd, which answers 410 Gone once that revision has been
    # compacted away. (ConfigMaps are served from the watch cache, whose window is not
    # under a test's control.)
    kubeconfig, etcd_url = compactable_cluster
    namespace = f"relist-{uuid.uuid4().hex[:8]}"
    api_client = await connect(str(kubeconfig))
    try:
        await create(api_client, NAMESPACES, {"metadata": {"name": namespace}})
        await _relist_after_410(api_client, namespace, etcd_url)
        await delete(api_client, NAMESPACES, None, namespace)
    finally:
        await api_client.close()


async def _relist_after_410(api_client: ApiClient, namespace: str, etcd_url: str) -> None:
    for name in ("kept", "changed", "removed"):
        await create(api_client, EVENTS, event(namespace, name))
    events = Events()
    informer = Informer(api_client, EVENTS, namespace=namespace, on_event=events)
    relists = count_relists(informer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        tg.cancel_scope.cancel()
    assert sorted(events.pairs()) == [("ADDED", "changed"), ("ADDED", "kept"), ("ADDED", "removed")]
    assert events.seen[0][2]["kind"] == "Event"

    # Changes while the informer is away, then the history it would resume from is gone.
    await create(api_client, EVENTS, event(namespace, "new"))
    await patch(api_client, EVENTS, namespace, "changed", {"message": "changed"})
    await delete(api_client, EVENTS, namespace, "removed")
    latest = await list_page(api_client, EVENTS, namespace)
    await compact_etcd(etcd_url, latest["metadata"]["resourceVersion"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        await events.wait_for(6)
        await anyio.sleep(0.5)  # room for anything unexpected to show up
        tg.cancel_scope.cancel()

    assert relists[0] == 2, "410 Gone must trigger a relist"
    assert sorted(events.pairs()[3:]) == [
        ("ADDED", "new"),
        ("DELETED", "removed"),
        ("MODIFIED", "changed"),
    ]
    assert sorted(o["metadata"]["name"] for o in informer.list()) == ["changed", "kept", "new"]
    changed = informer.get(namespace, "changed")
    assert changed is not None
    assert changed["message"] == "changed"

    # After the relist, watching goes on from the new list.
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        await create(api_client, EVENTS, event(namespace, "later"))
        await events.wait_for(7)
        tg.cancel_scope.cancel()
    assert events.pairs()[6] == ("ADDED", "later")
    assert relists[0] == 2


async def test_label_selector_filters(api_client: ApiClient, namespace: str) -> None:
    events = Events()
    informer = configmaps(api_client, namespace, events, label_selector="app=fluxd")
    await make_cm(api_client, namespace, "listed", labels={"app": "fluxd"})
    await make_cm(api_client, namespace, "other", labels={"app": "else"})
    async with anyio.create_task_group() as tg:
        tg.start_soon(informer.run)
        with anyio.fail_after(WAIT):
            await informer.synced.wait()
        await make_cm(api_client, namespace, "ignored")
        await make_cm(api_client, namespace, "watched", labels={"app": "fluxd"})
        await events.wait_for(2)
        # Relabelling into and out of the selector shows up as ADDED and DELETED.
        await patch(
            api_client, CONFIGMAPS, namespace, "other", {"metadata": {"labels": {"app": "fluxd"}}}
        )
        await events.wait_for(3)
        await patch(
            api_client, CONFIGMAPS, namespace, "listed", {"metadata": {"labels": {"app": "no"}}}
        )
        await events.wait_for(4)
        await anyio.sleep(0.5)
        tg.cancel_scope.cancel()

    assert events.pairs() == [
        ("ADDED", "listed"),
        ("ADDED", "watched"),
        ("ADDED", "other"),
        ("DELETED", "listed"),
    ]
    assert sorted(o["metadata"]["name"] for o in informer.list()) == ["other", "watched"]


async def test_unreachable_server_is_retried_until_cancelled(api_client: ApiClient) -> None:
    events = Events()
    api_client.configuration.host = "https://127.0.0.1:1"  # nothing listens on port 1
    informer = Informer(api_client, CONFIGMAPS, on_event=events)
    with anyio.move_on_after(1.5):
        await informer.run()
    assert not informer.synced.is_set()
    assert events.seen == []
