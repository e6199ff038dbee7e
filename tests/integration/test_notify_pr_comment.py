"""Pull and merge request comments and ``commitStatusExpr`` end to end: a Kustomization
annotated with its pull request's number, applied from a loopback git server, gets
Flux's status comment on a loopback GitHub, GitLab and Gitea, kept as one comment that
later events update.

The stand-in below speaks the REST endpoints Flux's comment notifiers call (the token's
user, a request's comments, create, edit) for the three services, under their API roots
(GitHub Enterprise's ``/api/v3``, GitLab's ``/api/v4``, Gitea's ``/api/v1``), plus
GitHub's commit statuses; it checks each service's token header and records every
request. What a user sees: the comment text Flux writes, one comment per object and
Provider, nothing at all for an object naming no pull request, a refused token
reported on the Alert with the daemon carrying on, and a commit status whose context is
what the Provider's expression computed.
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from fluxd.api import ALERT, KUSTOMIZATION, PROVIDER
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    configmap,
    kustomization,
    push_and_refresh,
    setup_source,
)
from tests.webhooks import WebhookServer, webhook_server  # noqa: F401

pytestmark = pytest.mark.integration

TOKEN = "good-token"
BOT = "flux-bot"
GITHUB_HEADERS = {
    "Accept": "application/vnd.github.v3+json",
    "Authorization": f"Bearer {TOKEN}",
    "X-GitHub-Api-Version": "2022-11-28",
}
_GITHUB = r"/api/v3/repos/(?P<repo>[^/]+/[^/]+)"
_GITEA = r"/api/v1/repos/(?P<repo>[^/]+/[^/]+)"
_GITLAB = r"/api/v4/projects/(?P<repo>[^/]+)/merge_requests/(?P<number>\d+)/notes"
#: (method, path) -> (service, what the path names).
ROUTES = [
    ("GET", re.compile(r"^/api/v3/user$"), "github", "user"),
    ("GET", re.compile(r"^/api/v4/user$"), "gitlab", "user"),
    ("GET", re.compile(r"^/api/v1/user$"), "gitea", "user"),
    ("GET", re.compile(rf"^{_GITHUB}/issues/(?P<number>\d+)/comments$"), "github", "list"),
    ("POST", re.compile(rf"^{_GITHUB}/issues/(?P<number>\d+)/comments$"), "github", "create"),
    ("PATCH", re.compile(rf"^{_GITHUB}/issues/comments/(?P<id>\d+)$"), "github", "edit"),
    ("GET", re.compile(rf"^{_GITLAB}$"), "gitlab", "list"),
    ("POST", re.compile(rf"^{_GITLAB}$"), "gitlab", "create"),
    ("PUT", re.compile(rf"^{_GITLAB}/(?P<id>\d+)$"), "gitlab", "edit"),
    ("GET", re.compile(rf"^{_GITEA}/issues/(?P<number>\d+)/comments$"), "gitea", "list"),
    ("POST", re.compile(rf"^{_GITEA}/issues/(?P<number>\d+)/comments$"), "gitea", "create"),
    ("PATCH", re.compile(rf"^{_GITEA}/issues/comments/(?P<id>\d+)$"), "gitea", "edit"),
    ("GET", re.compile(rf"^{_GITHUB}/commits/(?P<sha>[0-9a-f]{{40}})/statuses$"), "github", "-"),
    ("POST", re.compile(rf"^{_GITHUB}/statuses/(?P<sha>[0-9a-f]{{40}})$"), "github", "status"),
]
AUTH = {
    "github": ("Authorization", f"Bearer {TOKEN}"),
    "gitlab": ("PRIVATE-TOKEN", TOKEN),
    "gitea": ("Authorization", f"token {TOKEN}"),
}
AUTHOR = {"github": "user", "gitlab": "author", "gitea": "user"}
USER_FIELD = {"github": "login", "gitlab": "username", "gitea": "login"}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeHost:
    """Comments per (service, repository, request number), and every request seen."""

    url: str
    comments: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seed(self, service: str, repo: str, number: str, author: str, body: str) -> int:
        with self.lock:
            comment_id = next(self.ids)
            self.comments.setdefault((service, repo, number), []).append(
                {"id": comment_id, AUTHOR[service]: {USER_FIELD[service]: author}, "body": body}
            )
        return comment_id

    def writes(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method != "GET"]

    async def wait_write(self, what: str, match: Any, timeout: float = 60.0) -> Received:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((r for r in self.writes() if match(r)), None)
                    if found is not None:
                        return found
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{what}: not seen; saw {self.received}") from None


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

    def _handle(self) -> None:
        host = self.server.host
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path, _, query = self.path.partition("?")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        with host.lock:
            host.received.append(
                Received(self.command, path, query, headers, json.loads(raw) if raw else None)
            )
        route = next(
            (
                (service, what, m)
                for method, pattern, service, what in ROUTES
                if method == self.command and (m := pattern.match(path)) is not None
            ),
            None,
        )
        if route is None:
            self._answer(404, {"message": "Not Found"})
            return
        service, what, match = route
        header, value = AUTH[service]
        if self.headers.get(header) != value:
            self._answer(401, {"message": "401 Unauthorized"})
            return
        self._answer(*self._serve(service, what, match.groupdict(), json.loads(raw or b"{}")))

    def _serve(self, service: str, what: str, names: dict[str, str], body: Any) -> tuple[int, Any]:
        host = self.server.host
        with host.lock:
            if what == "user":
                return 200, {"id": 1, USER_FIELD[service]: BOT}
            if what == "-":
                return 200, []
            if what == "status":
                return 201, body
            key = (service, names["repo"], names.get("number", ""))
            if what == "list":
                return 200, list(host.comments.get(key, []))
            if what == "create":
                comment = {
                    "id": next(host.ids),
                    AUTHOR[service]: {USER_FIELD[service]: BOT},
                    "body": body["body"],
                }
                host.comments.setdefault(key, []).append(comment)
                return 201, comment
            for comment in itertools.chain.from_iterable(host.comments.values()):
                if str(comment["id"]) == names["id"]:
                    comment["body"] = body["body"]
                    return 200, comment
            return 404, {"message": "Not Found"}

    do_GET = do_POST = do_PATCH = do_PUT = _handle


class _Server(http.server.ThreadingHTTPServer):
    host: FakeHost


@pytest.fixture
def git_host() -> Iterator[FakeHost]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.host = FakeHost(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.host
    finally:
        server.shutdown()
        server.server_close()


async def provider_and_alert(
    fluxd: Fluxd, name: str, spec: dict[str, Any], token: str = TOKEN
) -> str:
    """A Provider ``name`` with a token Secret and an Alert for every Kustomization;
    the Provider's UID."""
    await fluxd.secret(f"{name}-token", {"token": token})
    await fluxd.create(PROVIDER, name, {**spec, "secretRef": {"name": f"{name}-token"}})
    await fluxd.create(
        ALERT,
        name,
        {"providerRef": {"name": name}, "eventSources": [{"kind": "Kustomization", "name": "*"}]},
    )
    provider = await fluxd.wait_ready(PROVIDER, name)
    await fluxd.wait_ready(ALERT, name)
    return str(provider["metadata"]["uid"])


async def annotated_kustomization(fluxd: Fluxd, change_request: str | None) -> None:
    """Kustomization ``apps`` of ``./app``, naming pull request ``change_request``."""
    annotations = (
        {"event.toolkit.fluxcd.io/change_request": change_request} if change_request else {}
    )
    await client.create(
        fluxd.api,
        resource_of(KUSTOMIZATION),
        {
            "apiVersion": KUSTOMIZATION.api_version,
            "kind": KUSTOMIZATION.kind,
            "metadata": {"name": "apps", "namespace": fluxd.namespace, "annotations": annotations},
            "spec": kustomization("./app"),
        },
    )


def flux_comment(prefix: str, uid: str, fluxd: Fluxd, message: str, sha: str) -> str:
    marker = f"<!-- {prefix}:{uid}/Kustomization/{fluxd.namespace}/apps -->"
    return (
        f"{marker}\n\n## Flux Status\n\n\u2139\ufe0f Kustomization/{fluxd.namespace}/apps\n\n"
        f"{message}\n\nMetadata:\n* `revision`: master@sha1:{sha}\n"
    )


async def test_pull_request_gets_flux_comment_and_later_events_update_it(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, git_host: FakeHost
) -> None:
    uid = await provider_and_alert(
        fluxd,
        "pr",
        {"type": "githubpullrequestcomment", "address": f"{git_host.url}/org/app.git"},
    )
    sha = git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await annotated_kustomization(fluxd, "42")

    created = await git_host.wait_write("the pull request comment", lambda r: True)
    assert (created.method, created.path) == ("POST", "/api/v3/repos/org/app/issues/42/comments")
    assert created.body == {
        "body": flux_comment(
            "flux-pr-comment-key", uid, fluxd, f"ConfigMap/{fluxd.namespace}/settings created", sha
        )
    }
    assert {k: created.headers[k] for k in GITHUB_HEADERS} == GITHUB_HEADERS
    assert created.headers["Content-Type"] == "application/json"
    calls = [(r.method, r.path, r.query) for r in git_host.received[:3]]
    assert calls == [
        ("GET", "/api/v3/user", ""),
        (
            "GET",
            "/api/v3/repos/org/app/issues/42/comments",
            "direction=asc&per_page=100&sort=created",
        ),
        ("POST", "/api/v3/repos/org/app/issues/42/comments", ""),
    ]

    new_sha = await push_and_refresh(
        fluxd, git_remote, {"app/cm.yaml": configmap(fluxd.namespace, "settings", "2")}
    )
    edited = await git_host.wait_write("the comment's update", lambda r: r.method == "PATCH")
    comment_id = git_host.comments[("github", "org/app", "42")][0]["id"]
    assert edited.path == f"/api/v3/repos/org/app/issues/comments/{comment_id}"
    assert edited.body == {
        "body": flux_comment(
            "flux-pr-comment-key",
            uid,
            fluxd,
            f"ConfigMap/{fluxd.namespace}/settings configured",
            new_sha,
        )
    }
    assert len(git_host.comments[("github", "org/app", "42")]) == 1, "one comment, kept current"
    assert [r.method for r in git_host.writes()].count("POST") == 1


async def test_gitlab_note_of_the_bot_is_updated_and_gitea_gets_a_new_comment(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, git_host: FakeHost
) -> None:
    gitlab_uid = await provider_and_alert(
        fluxd, "mr", {"type": "gitlabmergerequestcomment", "address": f"{git_host.url}/org/app"}
    )
    gitea_uid = await provider_and_alert(
        fluxd, "gitea", {"type": "giteapullrequestcomment", "address": f"{git_host.url}/org/app"}
    )
    marker = f"<!-- flux-mr-comment-key:{gitlab_uid}/Kustomization/{fluxd.namespace}/apps -->"
    git_host.seed("gitlab", "org%2Fapp", "7", "someone-else", f"{marker}\n\nquoted")
    note_id = git_host.seed("gitlab", "org%2Fapp", "7", BOT, f"{marker}\n\nold status")
    sha = git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await annotated_kustomization(fluxd, "7")

    message = f"ConfigMap/{fluxd.namespace}/settings created"
    note = await git_host.wait_write("the GitLab note", lambda r: r.path.startswith("/api/v4/"))
    assert (note.method, note.path) == (
        "PUT",
        f"/api/v4/projects/org%2Fapp/merge_requests/7/notes/{note_id}",
    )
    assert note.headers["PRIVATE-TOKEN"] == TOKEN
    assert note.body == {
        "body": flux_comment("flux-mr-comment-key", gitlab_uid, fluxd, message, sha)
    }
    listing = next(r for r in git_host.received if r.path.endswith("/merge_requests/7/notes"))
    assert listing.query == "order_by=created_at&per_page=100&sort=asc"

    comment = await git_host.wait_write(
        "the Gitea comment", lambda r: r.path.startswith("/api/v1/")
    )
    assert (comment.method, comment.path) == ("POST", "/api/v1/repos/org/app/issues/7/comments")
    assert comment.headers["Authorization"] == f"token {TOKEN}"
    assert comment.body == {
        "body": flux_comment("flux-pr-comment-key", gitea_uid, fluxd, message, sha)
    }
    gitea_listing = next(r for r in git_host.received if r.path.endswith("/issues/7/comments"))
    assert gitea_listing.query == "limit=100&page=1"
    assert [r.method for r in git_host.writes() if r.path.startswith("/api/v4/")] == ["PUT"]


async def test_object_naming_no_pull_request_sends_nothing(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    git_host: FakeHost,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    await provider_and_alert(
        fluxd, "pr", {"type": "githubpullrequestcomment", "address": f"{git_host.url}/org/app"}
    )
    await fluxd.create(
        PROVIDER, "hook", {"type": "generic", "address": f"{webhook_server.url}/hook"}
    )
    await fluxd.create(
        ALERT,
        "hook",
        {"providerRef": {"name": "hook"}, "eventSources": [{"kind": "Kustomization", "name": "*"}]},
    )
    await fluxd.wait_ready(ALERT, "hook")
    git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await annotated_kustomization(fluxd, None)

    await webhook_server.wait_for(
        "/hook", lambda r: b"settings created" in r.body, "the same event on the generic hook"
    )
    await fluxd.wait_ready(KUSTOMIZATION, "apps")
    await asyncio.sleep(1.0)
    assert git_host.received == [], "no pull request named: the host is not called at all"
    await fluxd.wait_ready(PROVIDER, "pr")


async def test_refused_token_is_reported_on_the_alert_and_breaks_nothing(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, git_host: FakeHost
) -> None:
    await provider_and_alert(
        fluxd,
        "pr",
        {"type": "githubpullrequestcomment", "address": f"{git_host.url}/org/app"},
        token="revoked-token",
    )
    git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await annotated_kustomization(fluxd, "42")

    event = await fluxd.wait_event(
        "pr",
        lambda e: e["reason"] == "NotificationDispatchFailed",
        "NotificationDispatchFailed on the Alert",
    )
    assert event["type"] == "Warning"
    assert f"Kustomization/{fluxd.namespace}/apps" in event["message"]
    assert "failed to get authenticated user info" in event["message"]
    assert "401" in event["message"]
    assert "revoked-token" not in event["message"]
    assert git_host.writes() == [], "nothing is written once the host refuses the token"
    await fluxd.wait_ready(KUSTOMIZATION, "apps")
    await fluxd.wait_ready(PROVIDER, "pr")


async def test_commit_status_context_is_what_the_expression_computes(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, git_host: FakeHost
) -> None:
    expression = (
        "(event.involvedObject.kind + '/' + event.involvedObject.name + '/' + "
        "event.metadata.env + '/' + alert.metadata.name + '/' + "
        "provider.metadata.uid.split('-').first().value()).lowerAscii()"
    )
    await fluxd.secret("github-token", {"token": TOKEN})
    await fluxd.create(
        PROVIDER,
        "github",
        {
            "type": "github",
            "address": f"{git_host.url}/org/app",
            "secretRef": {"name": "github-token"},
            "commitStatusExpr": expression,
        },
    )
    await fluxd.create(
        ALERT,
        "on-call",
        {
            "providerRef": {"name": "github"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "eventMetadata": {"env": "Production"},
        },
    )
    provider = await fluxd.wait_ready(PROVIDER, "github")
    await fluxd.wait_ready(ALERT, "on-call")
    sha = git_remote.commit({"app/cm.yaml": configmap(fluxd.namespace, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./app"))

    status = await git_host.wait_write("the commit status", lambda r: r.path.endswith(sha))
    uid_prefix = str(provider["metadata"]["uid"]).split("-")[0]
    assert status.path == f"/api/v3/repos/org/app/statuses/{sha}"
    assert status.body == {
        "state": "success",
        "description": "reconciliation succeeded",
        "context": f"kustomization/apps/production/on-call/{uid_prefix}",
    }


async def test_commit_status_expression_that_does_not_compile_stalls_the_provider(
    fluxd: Fluxd, git_host: FakeHost
) -> None:
    await fluxd.secret("github-token", {"token": TOKEN})
    await fluxd.create(
        PROVIDER,
        "custom",
        {
            "type": "github",
            "address": f"{git_host.url}/org/app",
            "secretRef": {"name": "github-token"},
            "commitStatusExpr": "event.involvedObject.name + ",
        },
    )
    obj = await fluxd.wait_not_ready(PROVIDER, "custom", "InvalidConfig")
    ready = conditions.get(obj["status"], "Ready")
    stalled = conditions.get(obj["status"], "Stalled")
    assert ready is not None
    assert ready["message"].startswith("invalid spec.commitStatusExpr: invalid CEL expression")
    assert stalled is not None
    assert stalled["status"] == "True"
    assert git_host.received == []
