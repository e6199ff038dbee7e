"""The sentry, nats, azureeventhub and googlepubsub Provider types: what each sends for
an event (Flux's payloads, headers and signatures), what settings each refuses, and
NATS's publish over its TCP protocol to a loopback stand-in."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fluxd.kube.events import RecordedEvent
from fluxd.notify import (
    SUPPORTED_TYPES,
    InvalidProvider,
    Notification,
    ProviderSettings,
    build_request,
    go_json,
    notification_of,
)
from fluxd.notify.delivery import DeliveryError, Transport, send
from tests.natsserver import nats_stand_in

WHEN = datetime(2026, 12, 4, 7, 0, 0, tzinfo=UTC)
RECORDED = RecordedEvent(
    involved_object={
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "name": "app",
        "namespace": "prod",
        "uid": "1234",
    },
    type="Warning",
    reason="GitOperationFailed",
    message="failed to checkout <main>",
    annotations={"source.toolkit.fluxcd.io/revision": "main@sha1:abc"},
    timestamp=WHEN,
    reporting_controller="source-controller",
    reporting_instance="fluxd-0",
    count=1,
)


def error_event() -> Notification:
    return notification_of(RECORDED).for_alert({"env": "prod"}, None)


def info_event() -> Notification:
    return dataclasses.replace(error_event(), severity="info", reason="Succeeded")


def test_the_four_types_are_served() -> None:
    assert {"sentry", "nats", "azureeventhub", "googlepubsub"} <= SUPPORTED_TYPES


# -- sentry ------------------------------------------------------------------------------

DSN = "https://pubkey@sentry.example.com/prefix/42"


def envelope(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    header, item_header, item, rest = body.split(b"\n")
    assert rest == b""
    assert item_header.startswith(b'{"type":')
    assert json.loads(item_header)["length"] == len(item)
    return json.loads(header), json.loads(item_header), json.loads(item)


def test_sentry_error_is_an_error_event_in_an_envelope() -> None:
    settings = ProviderSettings(type="sentry", address=DSN, channel="staging")
    request = build_request(settings, error_event())
    assert request.url == "https://sentry.example.com/prefix/api/42/envelope/"
    assert request.headers["X-Sentry-Auth"] == (
        "Sentry sentry_version=7, sentry_client=sentry.go/0.46.2, sentry_key=pubkey"
    )
    assert request.headers["Content-Type"] == "application/x-sentry-envelope"
    header, item_header, item = envelope(request.body)
    assert item_header["type"] == "event"
    assert header["event_id"] == item["event_id"]
    assert header["dsn"] == DSN
    assert item["level"] == "error"
    assert item["message"] == "failed to checkout <main>"
    assert item["server_name"] == "source-controller"
    assert item["transaction"] == "GitRepository: prod/app"
    assert item["environment"] == "staging"
    assert item["timestamp"] == "2026-12-04T07:00:00Z"
    assert item["contexts"] == {"metadata": {"env": "prod", "revision": "main@sha1:abc"}}


def test_sentry_info_is_a_transaction_with_flux_tags() -> None:
    request = build_request(ProviderSettings(type="sentry", address=DSN), info_event())
    _, item_header, item = envelope(request.body)
    assert item_header["type"] == "transaction"
    assert item["type"] == "transaction"
    assert "environment" not in item, "no channel, no environment"
    assert item["transaction"] == "GitRepository: prod/app"
    assert item["message"] == "failed to checkout <main>"
    tags = {
        "env": "prod",
        "flux_involved_object_kind": "GitRepository",
        "flux_involved_object_name": "app",
        "flux_involved_object_namespace": "prod",
        "flux_reason": "Succeeded",
        "flux_reporting_controller": "source-controller",
        "flux_reporting_instance": "fluxd-0",
        "revision": "main@sha1:abc",
    }
    assert item["tags"] == tags
    assert list(item["tags"]) == sorted(tags), "sorted, as Go marshals maps"
    trace = item["contexts"]["trace"]
    [span] = item["spans"]
    assert span["trace_id"] == trace["trace_id"]
    assert len(trace["trace_id"]) == 32
    assert span["span_id"] == trace["span_id"]
    assert len(trace["span_id"]) == 16
    assert span["op"] == trace["op"] == "event"
    assert span["start_timestamp"] == span["timestamp"] == "2026-12-04T07:00:00Z"


def test_sentry_secret_key_joins_the_auth_header() -> None:
    settings = ProviderSettings(type="sentry", address="http://pub:sec@127.0.0.1:9000/7")
    request = build_request(settings, error_event())
    assert request.url == "http://127.0.0.1:9000/api/7/envelope/"
    assert request.headers["X-Sentry-Auth"].endswith("sentry_key=pub, sentry_secret=sec")


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("", "DSN cannot be empty"),
        ("ftp://k@host/1", "scheme"),
        ("https://sentry.example.com/1", "public key"),
        ("https://k@sentry.example.com/project", "project ID"),
    ],
)
def test_sentry_refuses_a_bad_dsn(dsn: str, problem: str) -> None:
    with pytest.raises(InvalidProvider, match=problem):
        build_request(ProviderSettings(type="sentry", address=dsn), error_event())


# -- nats --------------------------------------------------------------------------------


def test_nats_publishes_the_generic_json() -> None:
    settings = ProviderSettings(type="nats", address="nats://nats.local", channel="flux.events")
    request = build_request(settings, error_event())
    assert request.url == "nats://nats.local:4222"
    assert request.body == go_json(error_event().to_dict())
    assert request.publish is not None


@pytest.mark.parametrize(
    ("address", "channel", "problem"),
    [
        ("", "s", "address"),
        ("http://nats.local:4222", "s", "nats://host:port"),
        ("tls://nats.local:4222", "s", "TLS connections are not supported"),
        ("nats://nats.local:4222", "", "subject \\(channel\\) cannot be empty"),
        ("nats://nats.local:4222", "a b", "no spaces"),
    ],
)
def test_nats_refuses_bad_settings(address: str, channel: str, problem: str) -> None:
    settings = ProviderSettings(type="nats", address=address, channel=channel)
    with pytest.raises(InvalidProvider, match=problem):
        build_request(settings, error_event())


async def test_nats_delivers_with_the_user_and_reports_a_refusal() -> None:
    with nats_stand_in(user=("flux", "s3cret")) as server:
        good = ProviderSettings(
            type="nats", address=server.address, channel="flux", username="flux", password="s3cret"
        )
        await send(build_request(good, error_event()), Transport(timeout=5))
        [published] = server.on("flux")
        assert published.payload == go_json(error_event().to_dict())
        assert published.connect["name"] == "NATS Provider Publisher"
        assert (published.connect["user"], published.connect["pass"]) == ("flux", "s3cret")

        wrong = dataclasses.replace(good, password="wrong", channel="other")
        with pytest.raises(DeliveryError, match="Authorization Violation"):
            await send(build_request(wrong, error_event()), Transport(timeout=5))
        assert server.on("other") == []


async def test_nats_unreachable_server_is_a_delivery_error() -> None:
    settings = ProviderSettings(type="nats", address="nats://127.0.0.1:9", channel="flux")
    with pytest.raises(DeliveryError, match="error publishing event to subject flux"):
        await send(build_request(settings, error_event()), Transport(timeout=5))


# -- azureeventhub -----------------------------------------------------------------------

KEY = base64.b64encode(b"k" * 32).decode()
CONNECTION = (
    "Endpoint=sb://flux.servicebus.windows.net/;SharedAccessKeyName=send;"
    f"SharedAccessKey={KEY};EntityPath=events"
)


def check_sas(authorization: str, resource: str, key: str) -> dict[str, str]:
    scheme, _, token = authorization.partition(" ")
    assert scheme == "SharedAccessSignature"
    fields = {k: v[0] for k, v in parse_qs(token).items()}
    assert fields["sr"] == resource
    signed = f"{quote(resource, safe='')}\n{fields['se']}".encode()
    expected = base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest())
    assert fields["sig"] == expected.decode()
    return fields


def test_eventhub_connection_string_signs_each_request() -> None:
    settings = ProviderSettings(type="azureeventhub", address=CONNECTION)
    request = build_request(settings, error_event())
    assert request.url == "https://flux.servicebus.windows.net/events/messages"
    assert request.body == go_json(error_event().to_dict()), "the generic JSON"
    assert request.headers["Content-Type"].startswith("application/atom+xml")
    fields = check_sas(
        request.headers["Authorization"], "https://flux.servicebus.windows.net/events", KEY
    )
    assert fields["skn"] == "send"
    assert 3500 < int(fields["se"]) - time.time() <= 3600


def test_eventhub_token_goes_to_the_namespace_of_the_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ProviderSettings(
        type="azureeventhub", address="events", channel="flux", token="jwt.token.here"
    )
    request = build_request(settings, error_event())
    assert request.url == "https://flux.servicebus.windows.net/events/messages"
    assert request.headers["Authorization"] == "Bearer jwt.token.here"
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.chinacloudapi.cn/")
    china = build_request(settings, error_event())
    assert china.url == "https://flux.servicebus.chinacloudapi.cn/events/messages"


@pytest.mark.parametrize(
    ("address", "token", "channel", "problem"),
    [
        ("", "", "", "endpoint URL cannot be empty"),
        (CONNECTION, "jwt", "", "cannot be set at the same time"),
        (CONNECTION.replace(";EntityPath=events", ""), "", "", "EntityPath"),
        (CONNECTION.replace("sb://", "https://"), "", "", "Endpoint must be sb://"),
        (
            "Endpoint=sb://x/;SharedAccessKeyName=send;EntityPath=e",
            "",
            "",
            "SharedAccessKey are both",
        ),
        ("events", "", "flux", "workload identity is not supported"),
        ("events", "jwt", "", "namespace is empty"),
    ],
)
def test_eventhub_refuses_bad_settings(
    address: str, token: str, channel: str, problem: str
) -> None:
    settings = ProviderSettings(type="azureeventhub", address=address, token=token, channel=channel)
    with pytest.raises(InvalidProvider, match=problem):
        build_request(settings, error_event())


# -- googlepubsub ------------------------------------------------------------------------


def service_account_key(token_uri: str) -> tuple[str, rsa.RSAPrivateKey]:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "flux@proj.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    return json.dumps(key), private_key


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_pubsub_exchanges_the_key_for_a_token_then_publishes() -> None:
    key, private_key = service_account_key("https://oauth2.example.com/token")
    settings = ProviderSettings(
        type="googlepubsub", address="proj", channel="flux", token=key, headers={"team": "a"}
    )
    token_request = build_request(settings, error_event())
    assert token_request.url == "https://oauth2.example.com/token"
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header, claims, signature = form["assertion"].split(".")
    private_key.public_key().verify(
        b64url(signature),
        f"{header}.{claims}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert json.loads(b64url(header)) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    assertion = json.loads(b64url(claims))
    assert assertion["iss"] == "flux@proj.iam.gserviceaccount.com"
    assert assertion["aud"] == "https://oauth2.example.com/token"
    assert "https://www.googleapis.com/auth/pubsub" in assertion["scope"].split()
    assert assertion["exp"] - assertion["iat"] == 3600

    assert token_request.then is not None
    publish = token_request.then(b'{"access_token":"ya29.x","token_type":"Bearer"}')
    assert publish.url == "https://pubsub.googleapis.com/v1/projects/proj/topics/flux:publish"
    assert publish.headers["Authorization"] == "Bearer ya29.x"
    [message] = json.loads(publish.body)["messages"]
    assert base64.b64decode(message["data"]) == go_json(error_event().to_dict())
    assert message["attributes"] == {"team": "a"}
    assert publish.check is not None
    assert publish.check(b'{"messageIds":["1"]}') is None
    assert publish.check(b"{}") is not None
    with pytest.raises(InvalidProvider, match="no access_token"):
        token_request.then(b'{"error":"invalid_grant"}')


def test_pubsub_emulator_takes_the_publish_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    settings = ProviderSettings(type="googlepubsub", address="proj", channel="flux")
    request = build_request(settings, error_event())
    assert request.url == "http://127.0.0.1:8085/v1/projects/proj/topics/flux:publish"
    assert "Authorization" not in request.headers
    [message] = json.loads(request.body)["messages"]
    assert "attributes" not in message, "no headers, no attributes (Flux sends nil)"
    assert unquote(request.url).endswith("topics/flux:publish")


@pytest.mark.parametrize(
    ("project", "topic", "token", "problem"),
    [
        ("", "t", "{}", "project ID cannot be empty"),
        ("p", "", "{}", "topic ID cannot be empty"),
        ("p", "t", "", "workload identity is not supported"),
        ("p", "t", "not json", "not a JSON service account key"),
        ("p", "t", '{"type": "authorized_user"}', "'authorized_user' are not supported"),
        ("p", "t", '{"type": "service_account"}', "has no client_email, private_key"),
        (
            "p",
            "t",
            '{"type":"service_account","client_email":"a","private_key":"x","token_uri":"u"}',
            "private_key is not valid",
        ),
    ],
)
def test_pubsub_refuses_bad_settings(
    project: str, topic: str, token: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    settings = ProviderSettings(type="googlepubsub", address=project, channel=topic, token=token)
    with pytest.raises(InvalidProvider, match=problem):
        build_request(settings, error_event())
