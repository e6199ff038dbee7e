"""Sentry, NATS, Azure Event Hubs and Google Pub/Sub Providers end to end: a reconcile's
event on the control plane reaches a loopback stand-in for each service through an
Alert, in the service's own protocol, and a refusal by the service is reported on the
Alert without breaking anything.

What a user sees: Sentry gets an error event for a failing source and a transaction
for a successful one, authenticated with the DSN's key; NATS subscribers get Flux's
JSON event on the subject, published as the Secret's user; the Event Hub gets the
event over HTTPS signed with the connection string's key, trusted through
certSecretRef; the Pub/Sub emulator gets the event as message data; a service account
key is exchanged for a token with a correctly signed assertion and the event published
with that token (Google's own host names, reached through the Provider's proxy), and a
refused exchange is reported.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fluxd.api import ALERT, GIT_REPOSITORY, HELM_REPOSITORY, PROVIDER
from tests.chartservers import ChartRepository
from tests.gitservers import make_ca
from tests.integration.conftest import Fluxd
from tests.natsserver import nats_stand_in
from tests.servicestandins import (
    Answer,
    Received,
    StandIn,
    redirecting_proxy,
    service_ca,
    service_stand_in,
)
from tests.webhooks import Recorded, WebhookServer, webhook_server  # noqa: F401

pytestmark = pytest.mark.integration

UNREACHABLE_GIT = "http://127.0.0.1:9/never-answers.git"
SOURCES = [{"kind": "GitRepository", "name": "*"}, {"kind": "HelmRepository", "name": "*"}]


async def provider_and_alert(fluxd: Fluxd, name: str, spec: dict[str, object]) -> None:
    await fluxd.create(PROVIDER, name, {"timeout": "5s", **spec})
    await fluxd.create(ALERT, name, {"providerRef": {"name": name}, "eventSources": SOURCES})
    await fluxd.wait_ready(PROVIDER, name)
    await fluxd.wait_ready(ALERT, name)


async def break_a_source(fluxd: Fluxd) -> None:
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": UNREACHABLE_GIT})


async def dispatch_failure(fluxd: Fluxd, alert: str) -> str:
    event = await fluxd.wait_event(
        alert,
        lambda e: e["reason"] == "NotificationDispatchFailed",
        "NotificationDispatchFailed on the Alert",
    )
    return str(event["message"])


def is_git_failure(event: dict[str, object]) -> bool:
    involved = event["involvedObject"]
    return isinstance(involved, dict) and involved["kind"] == "GitRepository"


# -- sentry ------------------------------------------------------------------------------


def envelope_item(request: Recorded) -> tuple[str, dict[str, object]]:
    _, item_header, item, _ = request.body.split(b"\n")
    return str(json.loads(item_header)["type"]), json.loads(item)


async def test_sentry_gets_errors_as_events_and_successes_as_transactions(
    fluxd: Fluxd,
    webhook_server: WebhookServer,  # noqa: F811
    chart_repo: ChartRepository,
) -> None:
    host = webhook_server.url.removeprefix("http://")
    dsn = f"http://publickey@{host}/{fluxd.namespace}/17"
    await provider_and_alert(fluxd, "sentry", {"type": "sentry", "address": dsn, "channel": "prod"})
    chart_repo.publish(b"archive", "podinfo", "6.0.0")
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    await break_a_source(fluxd)

    path = f"/{fluxd.namespace}/api/17/envelope/"
    failure = await webhook_server.wait_for(
        path, lambda r: envelope_item(r)[0] == "event", "the error event"
    )
    assert failure.headers["X-Sentry-Auth"] == (
        "Sentry sentry_version=7, sentry_client=sentry.go/0.46.2, sentry_key=publickey"
    )
    assert failure.headers["Content-Type"] == "application/x-sentry-envelope"
    _, error = envelope_item(failure)
    assert error["level"] == "error"
    assert error["transaction"] == f"GitRepository: {fluxd.namespace}/broken"
    assert error["server_name"] == "source-controller"
    assert error["environment"] == "prod"
    assert "never-answers" in str(error["message"]) or "127.0.0.1:9" in str(error["message"])

    success = await webhook_server.wait_for(
        path, lambda r: envelope_item(r)[0] == "transaction", "the info transaction"
    )
    _, transaction = envelope_item(success)
    assert transaction["transaction"] == f"HelmRepository: {fluxd.namespace}/charts"
    tags = transaction["tags"]
    assert isinstance(tags, dict)
    assert tags["flux_involved_object_kind"] == "HelmRepository"
    assert tags["flux_reporting_controller"] == "source-controller"


async def test_sentry_with_a_bad_dsn_is_not_ready_naming_it(fluxd: Fluxd) -> None:
    await fluxd.create(PROVIDER, "sentry", {"type": "sentry", "address": "https://host/1"})
    obj = await fluxd.wait_for(
        PROVIDER,
        "sentry",
        lambda o: any(
            c["type"] == "Ready" and c["status"] == "False" and "public key" in c["message"]
            for c in (o.get("status") or {}).get("conditions", [])
        ),
        "Ready=False naming the DSN's missing key",
    )
    assert obj["status"]["conditions"]


# -- nats --------------------------------------------------------------------------------


async def test_nats_subject_gets_the_event_as_the_secret_user(fluxd: Fluxd) -> None:
    with nats_stand_in(user=("flux", "s3cret")) as server:
        await fluxd.secret("nats-user", {"username": "flux", "password": "s3cret"})
        await fluxd.secret("nats-wrong", {"username": "flux", "password": "guess"})
        subject = f"flux.{fluxd.namespace}"
        await provider_and_alert(
            fluxd,
            "nats",
            {
                "type": "nats",
                "address": server.address,
                "channel": subject,
                "secretRef": {"name": "nats-user"},
            },
        )
        await provider_and_alert(
            fluxd,
            "nats-wrong",
            {
                "type": "nats",
                "address": server.address,
                "channel": "refused",
                "secretRef": {"name": "nats-wrong"},
            },
        )
        await break_a_source(fluxd)

        published = await server.wait_for(subject)
        event = json.loads(published.payload)
        assert list(event)[:5] == ["involvedObject", "severity", "timestamp", "message", "reason"]
        assert event["involvedObject"]["name"] == "broken"
        assert event["severity"] == "error"
        assert published.connect["user"] == "flux"

        message = await dispatch_failure(fluxd, "nats-wrong")
        assert "Authorization Violation" in message
        assert "refused" in message, "the error names the subject"
        assert server.on("refused") == []
        await fluxd.wait_ready(PROVIDER, "nats")


# -- azureeventhub -----------------------------------------------------------------------

SAS_KEY = base64.b64encode(b"event hub key, 32 bytes long....").decode()


def event_hub_answer(received: Received) -> Answer:
    """Accept a send whose SAS signature verifies with SAS_KEY, as Event Hubs does."""
    scheme, _, token = received.headers.get("Authorization", "").partition(" ")
    fields = {k: v[0] for k, v in parse_qs(token).items()}
    if scheme != "SharedAccessSignature" or not {"sr", "sig", "se", "skn"} <= set(fields):
        return 401, b'{"error":"MissingToken"}'
    signed = f"{quote(fields['sr'], safe='')}\n{fields['se']}".encode()
    expected = base64.b64encode(hmac.new(SAS_KEY.encode(), signed, hashlib.sha256).digest())
    if not hmac.compare_digest(expected.decode(), fields["sig"]):
        return 401, b'{"error":"InvalidSignature"}'
    return 201, b""


async def test_event_hub_gets_the_event_over_https_signed_with_the_key(fluxd: Fluxd) -> None:
    ca = make_ca()
    with service_stand_in(event_hub_answer, ca) as hub:
        endpoint = hub.url.replace("https://", "sb://") + "/"
        good = f"Endpoint={endpoint};SharedAccessKeyName=send;SharedAccessKey={SAS_KEY};"
        await fluxd.secret("hub-good", {"address": good + "EntityPath=events"})
        bad = good.replace(SAS_KEY, base64.b64encode(b"x" * 32).decode())
        await fluxd.secret("hub-bad", {"address": bad + "EntityPath=other"})
        await fluxd.secret("hub-ca", {"ca.crt": ca.cert_pem})
        for name in ("good", "bad"):
            await provider_and_alert(
                fluxd,
                f"hub-{name}",
                {
                    "type": "azureeventhub",
                    "secretRef": {"name": f"hub-{name}"},
                    "certSecretRef": {"name": "hub-ca"},
                },
            )
        await break_a_source(fluxd)

        message = await dispatch_failure(fluxd, "hub-bad")
        assert "401" in message
        assert "InvalidSignature" in message
        sent = hub.requests("/events/messages")
        assert sent, "the good hub was sent to"
        assert event_hub_answer(sent[0])[0] == 201, "its signature verified"
        token = parse_qs(sent[0].headers["Authorization"].partition(" ")[2])
        assert token["sr"] == [f"{hub.url}/events"], "signed for the hub"
        event = json.loads(sent[0].body)
        assert is_git_failure(event)
        assert sent[0].headers["Content-Type"].startswith("application/atom+xml")
        assert hub.requests("/other/messages"), "the bad one reached the hub and was refused"


async def test_event_hub_token_next_to_a_connection_string_is_refused(fluxd: Fluxd) -> None:
    connection = (
        "Endpoint=sb://flux.servicebus.windows.net/;SharedAccessKeyName=send;"
        f"SharedAccessKey={SAS_KEY};EntityPath=events"
    )
    await fluxd.secret("both", {"address": connection, "token": "a.jwt.token"})
    await fluxd.create(PROVIDER, "both", {"type": "azureeventhub", "secretRef": {"name": "both"}})
    await fluxd.wait_for(
        PROVIDER,
        "both",
        lambda o: any(
            c["type"] == "Ready"
            and c["status"] == "False"
            and "cannot be set at the same time" in c["message"]
            for c in (o.get("status") or {}).get("conditions", [])
        ),
        "Ready=False naming the conflicting credentials",
    )


# -- googlepubsub ------------------------------------------------------------------------


async def test_pubsub_emulator_gets_the_event_as_message_data(
    fluxd: Fluxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service_stand_in(lambda _: (200, b'{"messageIds":["1"]}')) as emulator:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.url.removeprefix("http://"))
        await fluxd.secret("attributes", {"headers": "team: platform\n"})
        await provider_and_alert(
            fluxd,
            "pubsub",
            {
                "type": "googlepubsub",
                "address": fluxd.namespace,
                "channel": "flux-events",
                "secretRef": {"name": "attributes"},
            },
        )
        await break_a_source(fluxd)
        path = f"/v1/projects/{fluxd.namespace}/topics/flux-events:publish"
        message = await published_failure(emulator, path)
        assert "Authorization" not in message.headers, "the emulator takes no credentials"
        [published] = json.loads(message.body)["messages"]
        assert published["attributes"] == {"team": "platform"}
        assert is_git_failure(json.loads(base64.b64decode(published["data"])))


async def published_failure(stand_in: StandIn, path: str) -> Received:
    """The first publish to ``path`` whose message is the GitRepository's failure."""
    async with asyncio.timeout(30):
        while True:
            for received in stand_in.requests(path):
                [message] = json.loads(received.body)["messages"]
                if is_git_failure(json.loads(base64.b64decode(message["data"]))):
                    return received
            await asyncio.sleep(0.1)


def decoded_segment(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def service_account(private_key: rsa.RSAPrivateKey, token_uri: str) -> str:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = {
        "type": "service_account",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "flux@proj.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    return json.dumps(key)


async def test_pubsub_publishes_with_the_token_its_key_was_exchanged_for(
    fluxd: Fluxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google's real endpoints, reached through the Provider's proxy, which tunnels them
    to the stand-in: the certificate names them, certSecretRef trusts its CA."""
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    publish_path = "/v1/projects/proj/topics/flux-events:publish"

    def google(received: Received) -> Answer:
        if received.path == "/token":
            form = {k: v[0] for k, v in parse_qs(received.body.decode()).items()}
            header, claims, signature = form["assertion"].split(".")
            private_key.public_key().verify(
                decoded_segment(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            return 200, b'{"access_token":"ya29.granted","token_type":"Bearer","expires_in":3599}'
        if received.path == publish_path:
            if received.headers.get("Authorization") != "Bearer ya29.granted":
                return 401, b'{"error":{"code":401,"status":"UNAUTHENTICATED"}}'
            return 200, b'{"messageIds":["4711"]}'
        return 404, b"{}"

    ca = service_ca("oauth2.googleapis.com", "pubsub.googleapis.com")
    with service_stand_in(google, ca) as stand_in:
        port = int(stand_in.url.rpartition(":")[2])
        with redirecting_proxy(port) as proxy:
            key = service_account(private_key, "https://oauth2.googleapis.com/token")
            await fluxd.secret("gcp-key", {"token": key})
            await fluxd.secret("google-ca", {"ca.crt": ca.cert_pem})
            await fluxd.secret("egress", {"address": proxy.url})
            await provider_and_alert(
                fluxd,
                "pubsub",
                {
                    "type": "googlepubsub",
                    "address": "proj",
                    "channel": "flux-events",
                    "secretRef": {"name": "gcp-key"},
                    "certSecretRef": {"name": "google-ca"},
                    "proxySecretRef": {"name": "egress"},
                },
            )
            await break_a_source(fluxd)
            published = await published_failure(stand_in, publish_path)
            assert published.headers["Authorization"] == "Bearer ya29.granted"
            assert stand_in.requests("/token"), "the key was exchanged first"
            assert "oauth2.googleapis.com:443" in proxy.targets
            assert "pubsub.googleapis.com:443" in proxy.targets


async def test_pubsub_key_is_exchanged_with_a_signed_assertion(
    fluxd: Fluxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verified: list[dict[str, object]] = []

    def token_endpoint(received: Received) -> Answer:
        form = {k: v[0] for k, v in parse_qs(received.body.decode()).items()}
        header, claims, signature = form["assertion"].split(".")
        private_key.public_key().verify(
            decoded_segment(signature),
            f"{header}.{claims}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        verified.append(json.loads(decoded_segment(claims)))
        return 401, b'{"error":"unauthorized_client","error_description":"account disabled"}'

    with service_stand_in(token_endpoint) as oauth:
        key = service_account(private_key, f"{oauth.url}/token")
        await fluxd.secret("gcp-key", {"token": key})
        await provider_and_alert(
            fluxd,
            "pubsub",
            {
                "type": "googlepubsub",
                "address": "proj",
                "channel": "flux-events",
                "secretRef": {"name": "gcp-key"},
            },
        )
        await break_a_source(fluxd)
        message = await dispatch_failure(fluxd, "pubsub")
        assert "token exchange" in message
        assert "account disabled" in message
        assert verified, "the token endpoint saw a validly signed assertion"
        assert verified[0]["iss"] == "flux@proj.iam.gserviceaccount.com"
        assert verified[0]["aud"] == f"{oauth.url}/token"


async def test_providers_fluxd_cannot_serve_stall_naming_why(
    fluxd: Fluxd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    await fluxd.create(
        PROVIDER, "pubsub", {"type": "googlepubsub", "address": "proj", "channel": "t"}
    )
    await fluxd.create(
        PROVIDER, "nats-tls", {"type": "nats", "address": "tls://127.0.0.1:4222", "channel": "s"}
    )
    for name, problem in (("pubsub", "workload identity"), ("nats-tls", "TLS connections")):
        obj = await fluxd.wait_not_ready(PROVIDER, name, "InvalidConfig")
        found = {c["type"]: c for c in obj["status"]["conditions"]}
        assert problem in found["Ready"]["message"]
        assert found["Stalled"]["status"] == "True"
    # Flux's NATS credentials file and nkey are named, not ignored.
    await fluxd.secret("nats-nkey", {"nkey": "SUAEXAMPLE"})
    nkey = {"type": "nats", "address": "nats://127.0.0.1:4222", "channel": "s"}
    await fluxd.create(PROVIDER, "nats-nkey", {**nkey, "secretRef": {"name": "nats-nkey"}})
    obj = await fluxd.wait_not_ready(PROVIDER, "nats-nkey", "InvalidConfig")
    ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
    assert "'nkey'" in ready["message"]
