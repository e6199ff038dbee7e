"""The status UI's HTTP API against the real control plane: what a browser is told.

A daemon with the UI on loopback reconciles real sources; the tests read the overview,
an object page, the inventory's live health, the graph and the live stream as the page
does, and take actions with and without bearer tokens whose rights come from RBAC.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.resources import SERVICE_ACCOUNTS, Resource
from fluxd.ui.server import STATIC_DIR
from tests.gitservers import GitHTTPServer, GitRemote, free_port
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, namespaced_fluxd
from tests.integration.kustomizations import configmap, kustomization, setup_source

pytestmark = pytest.mark.integration

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")


@asynccontextmanager
async def ui_fluxd(api: ApiClient, namespace: str, **options: Any) -> AsyncIterator[UiClient]:
    async with (
        namespaced_fluxd(api, namespace, ui_addr="127.0.0.1:0", **options) as running,
        aiohttp.ClientSession() as session,
    ):
        host, port = running.daemon.addresses["ui"]
        yield UiClient(running, session, f"http://{host}:{port}")


class UiClient:
    """The UI's HTTP API as the page calls it."""

    def __init__(self, fluxd: Fluxd, session: aiohttp.ClientSession, base: str) -> None:
        self.fluxd = fluxd
        self.session = session
        self.base = base

    async def call(
        self, method: str, path: str, token: str | None = None
    ) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + path, headers=headers) as response:
            return response.status, await response.json(), dict(response.headers)

    async def get(self, path: str, token: str | None = None) -> dict[str, Any]:
        status, body, _ = await self.call("GET", path, token)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    async def until(
        self,
        path: str,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        token: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                while True:
                    body = await self.get(path, token)
                    if check(body):
                        return body
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{what} not seen at {path}; last answer: {body}") from None


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["key"]: line for line in body["objects"]}


async def test_overview_object_page_health_and_graph_from_real_reconciles(
    api_client: ApiClient, namespace: str, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    sha = git_remote.commit({"app/cm.yaml": configmap(namespace, "settings")})
    async with ui_fluxd(api_client, namespace) as ui:
        fluxd = ui.fluxd
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "app", kustomization("./app"))
        closed = f"http://127.0.0.1:{free_port()}/nothing.git"
        await fluxd.create(GIT_REPOSITORY, "down", {"interval": "1h", "url": closed})
        source, app, down = (
            f"GitRepository/{namespace}/source",
            f"Kustomization/{namespace}/app",
            f"GitRepository/{namespace}/down",
        )

        def settled(body: dict[str, Any]) -> bool:
            found = rows(body)
            return (
                found.get(app, {}).get("state") == "ready"
                and found.get(down, {}).get("state") == "failed"
            )

        overview = await ui.until("/api/objects", settled, "app ready and down failed")
        found = rows(overview)
        assert found[source]["revision"] == f"master@sha1:{sha}"
        assert found[app]["revision"] == f"master@sha1:{sha}"
        assert found[app]["reason"] == "ReconciliationSucceeded"
        assert found[app]["lastReconcile"] is not None
        assert found[app]["duration"] > 0
        assert found[down]["reason"] == "GitOperationFailed"
        assert found[down]["message"], "a failed source says why"
        assert [line["key"] for line in overview["objects"]] == [down, source, app]
        assert {"kind": "GitRepository", "count": 2, "states": {"failed": 1, "ready": 1}} in (
            overview["kinds"]
        )
        assert overview["actions"] is False
        _, _, headers = await ui.call("GET", "/api/objects")
        assert headers["Cache-Control"] == "no-store"

        page = await ui.until(
            f"/api/objects/Kustomization/{namespace}/app",
            lambda body: any(e["reason"] == "ReconciliationSucceeded" for e in body["events"]),
            "the Kustomization's closing event",
        )
        assert page["inventory"] == [
            {
                "id": f"{namespace}_settings__ConfigMap",
                "kind": "ConfigMap",
                "namespace": namespace,
                "name": "settings",
                "group": "",
                "version": "v1",
            }
        ]
        assert page["source"]["key"] == source
        assert page["source"]["revision"] == f"master@sha1:{sha}"
        assert page["history"], "status.history is shown"
        assert page["spec"]["path"] == "./app"
        assert page["conditions"][0]["type"] == "Ready"
        health = await ui.get(f"/api/objects/Kustomization/{namespace}/app/health")
        assert [(e["id"], e["health"]) for e in health["inventory"]] == [
            (f"{namespace}_settings__ConfigMap", "Current")
        ]

        graph = await ui.get("/api/graph")
        assert {"from": source, "to": app, "type": "source"} in graph["edges"]
        states = {node["key"]: node["state"] for node in graph["nodes"]}
        assert states[down] == "failed"

        status, body, headers = await ui.call("GET", f"/api/objects/Kustomization/{namespace}/x")
        assert (status, headers["Cache-Control"]) == (404, "no-store")
        assert "not found" in body["error"]
        status, body, _ = await ui.call(
            "POST", f"/api/actions/reconcile/Kustomization/{namespace}/app"
        )
        assert (status, body) == (403, {"error": "actions are disabled"})


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """``(event, data)`` pairs of a server-sent event stream."""
    event = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


async def test_stream_tells_a_row_change_after_a_reconcile_requested_outside(
    api_client: ApiClient, namespace: str, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({"a.yaml": configmap(namespace, "a")})
    async with ui_fluxd(api_client, namespace) as ui:
        await setup_source(ui.fluxd, git_remote, git_http)
        key = f"GitRepository/{namespace}/source"
        before = rows(await ui.get("/api/objects"))[key]
        async with ui.session.get(ui.base + "/api/stream") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            # As `flux reconcile source git` does, from outside the UI.
            await ui.fluxd.patch(
                GIT_REPOSITORY,
                "source",
                {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}},
            )
            async with asyncio.timeout(WAIT_TIMEOUT):
                async for event, data in read_events(response):
                    if event == "changed" and data["key"] == key:
                        break
        assert data["state"] == "ready"
        assert data["lastReconcile"] > before["lastReconcile"]

        async with ui.session.get(ui.base + "/api/stream") as response:
            await ui.fluxd.delete(GIT_REPOSITORY, "source")
            async with asyncio.timeout(WAIT_TIMEOUT):
                async for event, data in read_events(response):
                    if event == "deleted" and data == {"key": key}:
                        break


async def service_account_token(api: ApiClient, namespace: str, name: str) -> str:
    await client.create(api, SERVICE_ACCOUNTS, {"metadata": {"name": name, "namespace": namespace}})
    issued = await client.request(
        api,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    return str(issued["status"]["token"])


async def grant(api: ApiClient, namespace: str, account: str, resources: list[str]) -> None:
    name = f"{account}-{'-'.join(resources)}"
    await client.create(
        api,
        ROLES,
        {
            "metadata": {"name": name, "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["kustomize.toolkit.fluxcd.io", "source.toolkit.fluxcd.io"],
                    "resources": resources,
                    "verbs": ["patch"],
                }
            ],
        },
    )
    await client.create(
        api,
        ROLE_BINDINGS,
        {
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )


async def test_actions_need_a_token_and_the_users_own_rbac(
    api_client: ApiClient, namespace: str
) -> None:
    async with ui_fluxd(api_client, namespace, ui_auth=True, ui_actions=True) as ui:
        fluxd = ui.fluxd
        # A Kustomization whose source does not exist: it only has to be there.
        await fluxd.create(
            KUSTOMIZATION,
            "app",
            {**kustomization("./app"), "sourceRef": {"kind": "GitRepository", "name": "gone"}},
        )
        await fluxd.create(
            GIT_REPOSITORY, "gone", {"interval": "1h", "url": "http://127.0.0.1:1/x.git"}
        )
        reconcile = f"/api/actions/reconcile/Kustomization/{namespace}/app"

        status, body, headers = await ui.call("GET", "/api/objects")
        assert (status, headers["Cache-Control"]) == (401, "no-store")
        assert "bearer token" in body["error"]
        status, body, _ = await ui.call("POST", reconcile)
        assert status == 401
        status, body, _ = await ui.call("GET", "/api/objects", token="not-a-token")
        assert status == 401
        assert "not accepted" in body["error"]

        token = await service_account_token(api_client, namespace, "operator")
        overview = await ui.get("/api/objects", token)
        assert overview["actions"] is True
        assert f"Kustomization/{namespace}/app" in rows(overview)
        async with ui.session.get(f"{ui.base}/api/stream?token={token}") as response:
            assert response.status == 200, "EventSource passes the token in the query"

        status, body, _ = await ui.call("POST", reconcile, token)
        assert status == 403
        assert 'cannot patch resource "kustomizations"' in body["error"]
        assert "operator" in body["error"]

        await grant(api_client, namespace, "operator", ["kustomizations"])
        try:
            async with asyncio.timeout(WAIT_TIMEOUT):
                while (await ui.call("POST", reconcile, token))[0] != 200:
                    await asyncio.sleep(0.2)  # RBAC's caches take the binding in
        except TimeoutError:
            raise AssertionError("the RoleBinding never allowed the reconcile") from None
        live = await fluxd.get(KUSTOMIZATION, "app")
        assert "reconcile.fluxcd.io/requestedAt" in live["metadata"]["annotations"]

        with_source = f"/api/actions/reconcile-source/Kustomization/{namespace}/app"
        status, body, _ = await ui.call("POST", with_source, token)
        assert status == 403
        assert 'cannot patch resource "gitrepositories"' in body["error"]
        source = await fluxd.get(GIT_REPOSITORY, "gone")
        assert "reconcile.fluxcd.io/requestedAt" not in (
            source["metadata"].get("annotations") or {}
        ), "nothing is half-done when one of the two patches is denied"

        status, body, _ = await ui.call(
            "POST", f"/api/actions/reconcile-source/GitRepository/{namespace}/gone", token
        )
        assert (status, body) == (400, {"error": f"GitRepository {namespace}/gone has no source"})

        status, body, _ = await ui.call(
            "POST", f"/api/actions/suspend/Kustomization/{namespace}/app", token
        )
        assert (status, body) == (200, {"ok": True})
        assert (await fluxd.get(KUSTOMIZATION, "app"))["spec"]["suspend"] is True
        await ui.until(
            "/api/objects",
            lambda body: rows(body)[f"Kustomization/{namespace}/app"]["state"] == "suspended",
            "the suspended state",
            token,
        )
        status, _, _ = await ui.call(
            "POST", f"/api/actions/resume/Kustomization/{namespace}/app", token
        )
        assert status == 200
        assert (await fluxd.get(KUSTOMIZATION, "app"))["spec"]["suspend"] is False


async def test_static_files_are_cached_by_etag_and_nothing_else_is_served(
    api_client: ApiClient, namespace: str
) -> None:
    files = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())
    assert "index.html" in files
    async with ui_fluxd(api_client, namespace, ui_auth=True) as ui:
        async with ui.session.get(f"{ui.base}/static/{files[0]}") as response:
            assert response.status == 200, "static files need no token"
            assert response.headers["Cache-Control"] == "no-cache"
            etag = response.headers["ETag"]
            assert await response.read() == (STATIC_DIR / files[0]).read_bytes()
        headers = {"If-None-Match": etag}
        async with ui.session.get(f"{ui.base}/static/{files[0]}", headers=headers) as response:
            assert response.status == 304
        for path in (
            "/static/../pyproject.toml",
            "/static/%2e%2e%2fpyproject.toml",
            "/static/",
            "/static/.hidden",
            "/static/missing.js",
        ):
            async with ui.session.get(ui.base + path) as response:
                assert response.status == 404, path
        async with ui.session.get(ui.base + "/") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-cache"
            assert response.headers["Content-Type"].startswith("text/html")


async def test_an_open_stream_does_not_hold_up_the_daemons_stop(
    api_client: ApiClient, namespace: str
) -> None:
    async with (
        ui_fluxd(api_client, namespace) as ui,
        ui.session.get(ui.base + "/api/stream") as response,
    ):
        assert response.status == 200
        ui.fluxd.daemon.shutdown()
        async with asyncio.timeout(10):
            async for _ in response.content:
                pass
