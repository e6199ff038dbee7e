"""Notifications end to end: fluxd's own events reach loopback providers through Alerts,
and webhooks at a Receiver's path make its resources reconcile.

What a user sees: a failing GitRepository's Warning arrives at a generic webhook as
Flux's JSON event; ``eventSeverity`` and ``exclusionList`` filter what each Alert
forwards; a provider that does not answer leaves a ``NotificationDispatchFailed`` Event
on its Alert and nothing else broken; a Receiver answers at ``status.webhookPath``,
rejects a bad signature with 401 and annotates its resources for a valid one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import aiohttp
import pytest

from fluxd.api import ALERT, GIT_REPOSITORY, HELM_REPOSITORY, PROVIDER, RECEIVER
from fluxd.runtime import conditions
from tests.chartservers import ChartRepository
from tests.gitservers import free_port
from tests.integration.conftest import Fluxd
from tests.webhooks import Recorded, WebhookServer, webhook_server  # noqa: F401

pytestmark = pytest.mark.integration

UNREACHABLE_GIT = "http://127.0.0.1:9/never-answers.git"
SOURCES = [{"kind": "GitRepository", "name": "*"}, {"kind": "HelmRepository", "name": "*"}]


async def provider_and_alert(
    fluxd: Fluxd, name: str, address: str, alert: dict[str, object] | None = None
) -> None:
    await fluxd.create(PROVIDER, name, {"type": "generic", "address": address, "timeout": "2s"})
    await fluxd.create(
        ALERT, name, {"providerRef": {"name": name}, "eventSources": SOURCES, **(alert or {})}
    )
    await fluxd.wait_ready(PROVIDER, name)
    await fluxd.wait_ready(ALERT, name)


def is_git_failure(request: Recorded) -> bool:
    body = json.loads(request.body)
    return bool(body["involvedObject"]["kind"] == "GitRepository" and body["severity"] == "error")


async def test_failure_reaches_a_generic_provider_as_flux_sends_it(
    fluxd: Fluxd,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    path = f"/{fluxd.namespace}/generic"
    await provider_and_alert(
        fluxd,
        "generic",
        webhook_server.url + path,
        {"summary": "cluster prod", "eventMetadata": {"env": "prod"}},
    )
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": UNREACHABLE_GIT})
    request = await webhook_server.wait_for(path, is_git_failure, "the GitRepository failure")

    body = json.loads(request.body)
    assert list(body) == [
        "involvedObject",
        "severity",
        "timestamp",
        "message",
        "reason",
        "metadata",
        "reportingController",
        "reportingInstance",
    ], "Flux's field order"
    involved = body["involvedObject"]
    assert involved["kind"] == "GitRepository"
    assert involved["name"] == "broken"
    assert involved["namespace"] == fluxd.namespace
    assert involved["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert body["reportingController"] == "source-controller"
    assert "127.0.0.1:9" in body["message"] or "never-answers" in body["message"]
    assert body["metadata"]["summary"] == "cluster prod"
    assert body["metadata"]["env"] == "prod"
    assert request.headers["gotk-component"] == "source-controller"
    assert request.headers["Content-Type"] == "application/json"
    obj = await fluxd.get(GIT_REPOSITORY, "broken")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert body["reason"] == ready["reason"], "the event carries the condition's reason"


async def test_matrix_puts_into_the_room_and_telegram_needs_no_address(
    fluxd: Fluxd,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    await fluxd.secret("matrix-token", {"token": "s3cret"})
    await fluxd.create(
        PROVIDER,
        "matrix",
        {
            "type": "matrix",
            "address": f"{webhook_server.url}/{fluxd.namespace}",
            "channel": "room1",
            "secretRef": {"name": "matrix-token"},
        },
    )
    await fluxd.create(
        ALERT, "matrix", {"providerRef": {"name": "matrix"}, "eventSources": SOURCES}
    )
    await fluxd.create(
        PROVIDER,
        "telegram",
        {"type": "telegram", "channel": "-100123", "secretRef": {"name": "matrix-token"}},
    )
    await fluxd.wait_ready(PROVIDER, "telegram")
    await fluxd.wait_ready(ALERT, "matrix")
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": UNREACHABLE_GIT})

    prefix = f"/{fluxd.namespace}/_matrix/client/r0/rooms/room1/send/m.room.message/"
    async with asyncio.timeout(30):
        while not (sent := [r for r in webhook_server.requests if r.path.startswith(prefix)]):
            await asyncio.sleep(0.1)
    request = sent[0]
    assert request.method == "PUT", "Matrix takes a message by PUT under its transaction id"
    assert request.headers["Authorization"] == "Bearer s3cret"
    body = json.loads(request.body)
    assert body["msgtype"] == "m.text"
    assert "gitrepository/broken" in body["body"].lower()


async def test_severity_and_exclusion_list_filter_per_alert(
    fluxd: Fluxd,
    webhook_server: WebhookServer,  # noqa: F811
    chart_repo: ChartRepository,
) -> None:
    base = f"{webhook_server.url}/{fluxd.namespace}"
    await provider_and_alert(fluxd, "all", f"{base}/all")
    await provider_and_alert(fluxd, "errors", f"{base}/errors", {"eventSeverity": "error"})
    await provider_and_alert(
        fluxd, "filtered", f"{base}/filtered", {"exclusionList": ["^stored fetched index"]}
    )
    chart_repo.publish(b"archive", "podinfo", "6.0.0")
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": UNREACHABLE_GIT})

    all_path = f"/{fluxd.namespace}/all"
    await webhook_server.wait_for(
        all_path, lambda r: json.loads(r.body)["reason"] == "NewArtifact", "the index event"
    )
    await webhook_server.wait_for(all_path, is_git_failure, "the git failure")
    # Every Alert decides when the event is recorded: by now all three have decided.
    for path in ("errors", "filtered"):
        await webhook_server.wait_for(f"/{fluxd.namespace}/{path}", is_git_failure, "failure")
    for path in ("errors", "filtered"):
        reasons = [e["reason"] for e in webhook_server.json(f"/{fluxd.namespace}/{path}")]
        assert "NewArtifact" not in reasons, f"{path} must not forward the index event"


async def test_unreachable_provider_is_reported_and_breaks_nothing(
    fluxd: Fluxd,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    await provider_and_alert(fluxd, "dead", f"http://127.0.0.1:{free_port()}/hook")
    path = f"/{fluxd.namespace}/alive"
    await provider_and_alert(fluxd, "alive", webhook_server.url + path)
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": UNREACHABLE_GIT})
    await webhook_server.wait_for(path, is_git_failure, "the failure, despite a dead provider")
    event = await fluxd.wait_event(
        "dead",
        lambda e: e["reason"] == "NotificationDispatchFailed",
        "NotificationDispatchFailed on the Alert",
    )
    assert event["involvedObject"]["kind"] == "Alert"
    assert "GitRepository" in event["message"]
    assert "broken" in event["message"]
    assert event["source"]["component"] == "notification-controller"
    await fluxd.create(PROVIDER, "later", {"type": "generic", "address": webhook_server.url})
    await fluxd.wait_ready(PROVIDER, "later")


async def test_unsupported_provider_type_stalls_naming_it(fluxd: Fluxd) -> None:
    await fluxd.create(PROVIDER, "zoom", {"type": "zoom", "channel": "x"})
    obj = await fluxd.wait_not_ready(PROVIDER, "zoom", "UnsupportedField")
    ready = conditions.get(obj["status"], "Ready")
    stalled = conditions.get(obj["status"], "Stalled")
    assert ready is not None
    assert "'zoom'" in ready["message"]
    assert stalled is not None
    assert stalled["status"] == "True"


async def test_missing_provider_secret_is_not_ready_then_recovers(fluxd: Fluxd) -> None:
    await fluxd.create(
        PROVIDER,
        "secretive",
        {"type": "slack", "secretRef": {"name": "slack-url"}, "channel": "general"},
    )
    obj = await fluxd.wait_not_ready(PROVIDER, "secretive", "SecretNotFound")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert "slack-url" in ready["message"]
    await fluxd.secret("slack-url", {"address": "http://127.0.0.1:9/slack"})
    await fluxd.wait_ready(PROVIDER, "secretive")


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_receiver_webhook_requests_a_reconcile(fluxd: Fluxd) -> None:
    token = "s3cret-t0ken"
    await fluxd.secret("hook-token", {"token": token})
    await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": UNREACHABLE_GIT})
    await fluxd.create(
        RECEIVER,
        "github",
        {
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": "hook-token"},
            "resources": [{"kind": "GitRepository", "name": "target"}],
        },
    )
    obj = await fluxd.wait_ready(RECEIVER, "github")
    digest = hashlib.sha256((token + "github" + fluxd.namespace).encode()).hexdigest()
    path = f"/hook/{digest}"
    assert obj["status"]["webhookPath"] == path
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert ready["message"] == f"Receiver initialized for path: {path}"
    host, port = fluxd.daemon.addresses["artifacts"]
    url = f"http://{host}:{port}{path}"
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()

    bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"}
    assert await post(url, body, bad) == 401
    assert await post(f"http://{host}:{port}/hook/{'0' * 64}", body, bad) == 404
    ping = {"X-Hub-Signature-256": good, "X-GitHub-Event": "ping"}
    assert await post(url, body, ping) == 400, "events filters the GitHub event type"
    target = await fluxd.get(GIT_REPOSITORY, "target")
    annotations = target["metadata"].get("annotations") or {}
    assert "reconcile.fluxcd.io/requestedAt" not in annotations, "rejected: nothing triggered"

    assert await post(url, body, {"X-Hub-Signature-256": good, "X-GitHub-Event": "push"}) == 200
    target = await fluxd.get(GIT_REPOSITORY, "target")
    requested = target["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    await fluxd.wait_for(
        GIT_REPOSITORY,
        "target",
        lambda o: (o.get("status") or {}).get("lastHandledReconcileAt") == requested,
        "the requested reconcile handled",
    )


async def test_receiver_without_its_secret_is_not_ready(fluxd: Fluxd) -> None:
    await fluxd.create(
        RECEIVER,
        "generic",
        {
            "type": "generic",
            "secretRef": {"name": "absent"},
            "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"a": "b"}}],
        },
    )
    obj = await fluxd.wait_not_ready(RECEIVER, "generic", "TokenNotFound")
    ready = conditions.get(obj["status"], "Ready")
    assert ready is not None
    assert "absent" in ready["message"]
    assert "webhookPath" not in obj["status"]
