"""What the Kustomization tests share: a spec for a path of the test's git source, the
source itself, pushes that the daemon notices at once, reads of what landed, and polling
for what a user would wait to see."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.resources import Resource
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, is_ready_now

DEPLOYMENTS = Resource("apps", "v1", "deployments")
CONFIGMAPS = Resource("", "v1", "configmaps")


def kustomization(path: str, **fields: object) -> dict[str, object]:
    """A Kustomization spec for ``path`` of the test's ``source`` GitRepository."""
    return {
        "interval": "1h",
        "sourceRef": {"kind": "GitRepository", "name": "source"},
        "path": path,
        "prune": True,
        **fields,
    }


def configmap(namespace: str, name: str, value: str = "1") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\ndata:\n  value: '{value}'\n"
    )


async def setup_source(fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer) -> None:
    await fluxd.create(GIT_REPOSITORY, "source", {"interval": "1h", "url": server.url(remote)})
    await fluxd.wait_ready(GIT_REPOSITORY, "source")


async def push_and_refresh(fluxd: Fluxd, remote: GitRemote, files: dict[str, str]) -> str:
    sha = remote.commit(files)
    await fluxd.patch(
        GIT_REPOSITORY,
        "source",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": sha}}},
    )
    return sha


async def live(fluxd: Fluxd, resource: Resource, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(fluxd.api, resource, fluxd.namespace, name)
    except client.ApiError as error:
        if error.not_found:
            return None
        raise


def applied(obj: dict[str, Any], sha: str) -> bool:
    return is_ready_now(obj) and str(obj["status"].get("lastAppliedRevision", "")).endswith(sha)


async def reconcile_now(fluxd: Fluxd, name: str, token: str) -> dict[str, Any]:
    """Ask for a reconcile of Kustomization ``name`` now (as ``flux reconcile`` does) and
    return the object once the daemon has handled that request."""
    await fluxd.patch(
        KUSTOMIZATION,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
    )
    return await fluxd.wait_for(
        KUSTOMIZATION,
        name,
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == token,
        f"the reconcile requested as {token!r}",
    )


async def until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds, as a user re-running ``kubectl get`` would."""
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what} not seen in {WAIT_TIMEOUT:.0f}s") from None
