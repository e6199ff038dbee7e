"""Commit statuses end to end: a Kustomization applied from a loopback git server gets
its commit marked on a loopback GitHub, as Flux marks it.

The GitHub stand-in below speaks the two endpoints Flux's github provider uses (list a
commit's statuses, create one, under GitHub Enterprise's ``/api/v3``), checks the token
and records every request. What a user sees: a ``success`` status with Flux's context
on the applied commit, nothing for a GitRepository's own info events, and a token
GitHub refuses reported on the Alert as ``NotificationDispatchFailed``, the token
masked, the daemon carrying on. PagerDuty, on the shared webhook recorder, resolves an
object's incident and records a change for its info events.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fluxd.api import ALERT, GIT_REPOSITORY, KUSTOMIZATION, PROVIDER
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import configmap, kustomization, setup_source
from tests.webhooks import WebhookServer, webhook_server  # noqa: F401

pytestmark = pytest.mark.integration

TOKEN = "ghp_good-token"
STATUSES = re.compile(r"^/api/v3/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
LISTING = re.compile(
    r"^/api/v3/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>[0-9a-f]{40})/statuses$"
)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    authorization: str
    body: dict[str, Any]


@dataclass
class FakeGitHub:
    """Statuses per (repository, sha), newest first, and every request seen."""

    url: str
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == "POST"]

    async def wait_posted(self, sha: str, what: str, timeout: float = 60.0) -> Received:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((r for r in self.posted() if r.path.endswith(sha)), None)
                    if found is not None:
                        return found
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(
                f"{what}: no status posted for {sha}; saw {self.received}"
            ) from None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the recorded requests instead."""

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, body: dict[str, Any]) -> str:
        github = self.server.github
        path = self.path.partition("?")[0]
        with github.lock:
            github.received.append(
                Received(self.command, path, self.headers.get("Authorization", ""), body)
            )
        return path

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._answer(401, {"message": "Bad credentials"})
        return False

    def do_GET(self) -> None:
        path = self._record({})
        if not self._authorized():
            return
        match = LISTING.match(path)
        if match is None:
            self._answer(404, {"message": "Not Found"})
            return
        with self.server.github.lock:
            listed = list(self.server.github.statuses.get((match["repo"], match["sha"]), []))
        self._answer(200, listed)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self._record(body)
        if not self._authorized():
            return
        match = STATUSES.match(path)
        if match is None:
            self._answer(404, {"message": "Not Found"})
            return
        with self.server.github.lock:
            self.server.github.statuses.setdefault((match["repo"], match["sha"]), []).insert(
                0, body
            )
        self._answer(201, body)


class _Server(http.server.ThreadingHTTPServer):
    github: FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.github = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.github
    finally:
        server.shutdown()
        server.server_close()


async def github_alert(fluxd: Fluxd, github: FakeGitHub, token: str) -> str:
    """A github Provider for ``org/app`` and an Alert for every Kustomization and
    GitRepository; the Provider's UID prefix (the last part of Flux's status context)."""
    await fluxd.secret("github-token", {"token": token})
    await fluxd.create(
        PROVIDER,
        "github",
        {
            "type": "github",
            "address": f"{github.url}/org/app.git",
            "secretRef": {"name": "github-token"},
            "timeout": "5s",
        },
    )
    await fluxd.create(
        ALERT,
        "github",
        {
            "providerRef": {"name": "github"},
            "eventSources": [
                {"kind": "Kustomization", "name": "*"},
                {"kind": "GitRepository", "name": "*"},
            ],
        },
    )
    provider = await fluxd.wait_ready(PROVIDER, "github")
    await fluxd.wait_ready(ALERT, "github")
    return str(provider["metadata"]["uid"]).split("-")[0]


async def test_applied_revision_gets_a_success_status_with_flux_context(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, github: FakeGitHub
) -> None:
    uid_prefix = await github_alert(fluxd, github, TOKEN)
    sha = git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./app"))

    status = await github.wait_posted(sha, "the applied commit's status")
    assert status.path == f"/api/v3/repos/org/app/statuses/{sha}"
    assert status.authorization == f"Bearer {TOKEN}"
    assert status.body == {
        "state": "success",
        "description": "reconciliation succeeded",
        "context": f"kustomization/apps/{uid_prefix}",
    }
    listings = [r for r in github.received if r.method == "GET"]
    assert listings, "existing statuses are read first, as Flux does"
    assert listings[0].path == f"/api/v3/repos/org/app/commits/{sha}/statuses"
    contexts = [r.body["context"] for r in github.posted()]
    assert all(c.startswith("kustomization/") for c in contexts), (
        "a GitRepository's info events (no commit status update) are not posted"
    )


async def test_refused_token_is_reported_on_the_alert_and_breaks_nothing(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, github: FakeGitHub
) -> None:
    await github_alert(fluxd, github, "ghp_revoked")
    git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./app"))

    event = await fluxd.wait_event(
        "github",
        lambda e: e["reason"] == "NotificationDispatchFailed",
        "NotificationDispatchFailed on the Alert",
    )
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "Alert"
    assert f"Kustomization/{fluxd.namespace}/apps" in event["message"]
    assert "could not list commit statuses" in event["message"]
    assert "401" in event["message"]
    assert "ghp_revoked" not in event["message"]
    assert not github.posted(), "nothing is posted once GitHub refuses the token"
    await fluxd.wait_ready(KUSTOMIZATION, "apps")
    await fluxd.wait_ready(PROVIDER, "github")


async def test_commit_status_expression_stalls_naming_the_field(
    fluxd: Fluxd, github: FakeGitHub
) -> None:
    await fluxd.secret("github-token", {"token": TOKEN})
    await fluxd.create(
        PROVIDER,
        "custom",
        {
            "type": "github",
            "address": f"{github.url}/org/app",
            "secretRef": {"name": "github-token"},
            "commitStatusExpr": "event.involvedObject.name +",
        },
    )
    obj = await fluxd.wait_not_ready(PROVIDER, "custom", "InvalidConfig")
    ready = conditions.get(obj["status"], "Ready")
    stalled = conditions.get(obj["status"], "Stalled")
    assert ready is not None
    assert "spec.commitStatusExpr" in ready["message"]
    assert stalled is not None
    assert stalled["status"] == "True"
    await fluxd.create(
        PROVIDER,
        "bad-address",
        {"type": "github", "address": f"{github.url}/org", "secretRef": {"name": "github-token"}},
    )
    obj = await fluxd.wait_not_ready(PROVIDER, "bad-address", "InvalidConfig")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert "invalid repository id 'org'" in ready["message"]


async def test_pagerduty_resolves_and_records_a_change_for_info_events(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    await fluxd.create(
        PROVIDER,
        "pagerduty",
        {"type": "pagerduty", "address": f"{webhook_server.url}/ignored", "channel": "route-1"},
    )
    await fluxd.create(
        ALERT,
        "pagerduty",
        {
            "providerRef": {"name": "pagerduty"},
            "eventSources": [{"kind": "GitRepository", "name": "*"}],
        },
    )
    await fluxd.wait_ready(PROVIDER, "pagerduty")
    await fluxd.wait_ready(ALERT, "pagerduty")
    sha = git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)

    change = await webhook_server.wait_for(
        "/v2/change/enqueue", lambda r: sha.encode() in r.body, "the change event"
    )
    source = await fluxd.get(GIT_REPOSITORY, "source")
    resolves = webhook_server.json("/v2/enqueue")
    assert {
        "routing_key": "route-1",
        "event_action": "resolve",
        "dedup_key": source["metadata"]["uid"],
    } in resolves, "the object's incident is resolved before the change is recorded"
    payload = json.loads(change.body)["payload"]
    assert payload["summary"] == "new artifact: gitrepository/source"
    assert payload["source"] == "Flux source-controller"
    assert payload["custom_details"]["metadata"]["revision"] == f"master@sha1:{sha}"


async def test_a_failing_kustomization_gets_a_failure_status_on_its_commit(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, github: FakeGitHub
) -> None:
    uid_prefix = await github_alert(fluxd, github, TOKEN)
    sha = git_remote.commit({"app/broken.yaml": "kind: ConfigMap\nmetadata: [unclosed\n"})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./app"))

    status = await github.wait_posted(sha, "the failing commit's status")
    assert status.body["state"] == "failure"
    assert status.body["context"] == f"kustomization/apps/{uid_prefix}"
