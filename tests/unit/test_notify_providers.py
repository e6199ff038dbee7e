"""Each provider type's request: JSON fields in Flux's order, headers, HMAC signatures."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from fluxd.kube.events import RecordedEvent
from fluxd.notify import (
    InvalidProvider,
    Notification,
    ProviderSettings,
    build_request,
    go_json,
    notification_of,
)

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
    message="failed to checkout <main> & fetch",
    annotations={
        "source.toolkit.fluxcd.io/revision": "main@sha1:abc",
        "source.toolkit.fluxcd.io/digest": "sha256:dropped",
        "source.toolkit.fluxcd.io/token": "internal",
        "other.example.com/key": "dropped",
    },
    timestamp=WHEN,
    reporting_controller="source-controller",
    reporting_instance="fluxd-0",
    count=1,
)


def event() -> Notification:
    return notification_of(RECORDED).without_internal_metadata().for_alert({"env": "prod"}, "sum")


def test_metadata_is_cleaned_and_combined_as_flux_does() -> None:
    cleaned = notification_of(RECORDED)
    assert set(cleaned.metadata) == {
        "source.toolkit.fluxcd.io/revision",
        "source.toolkit.fluxcd.io/token",
    }
    assert event().metadata == {"revision": "main@sha1:abc", "env": "prod", "summary": "sum"}
    overridden = cleaned.for_alert({"revision": "from alert"}, None)
    assert overridden.metadata["revision"] == "main@sha1:abc", "object keys win (RFC 0008)"


def test_duplicates_share_a_key_and_other_revisions_do_not() -> None:
    first = notification_of(RECORDED)
    again = notification_of(RECORDED)
    assert first.dedupe_key() == again.dedupe_key()
    moved = dataclasses.replace(
        RECORDED, annotations={"source.toolkit.fluxcd.io/revision": "main@sha1:def"}
    )
    assert notification_of(moved).dedupe_key() != first.dedupe_key()


def test_generic_sends_the_event_as_go_marshals_it() -> None:
    settings = ProviderSettings(
        type="generic", address="http://hooks.local/x", headers={"X-Team": "a"}
    )
    request = build_request(settings, event())
    assert request.url == "http://hooks.local/x"
    assert request.headers["gotk-component"] == "source-controller"
    assert request.headers["X-Team"] == "a"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == (
        b'{"involvedObject":{"kind":"GitRepository","namespace":"prod","name":"app",'
        b'"uid":"1234","apiVersion":"source.toolkit.fluxcd.io/v1"},"severity":"error",'
        b'"timestamp":"2026-12-04T07:00:00Z",'
        b'"message":"failed to checkout \\u003cmain\\u003e \\u0026 fetch",'
        b'"reason":"GitOperationFailed",'
        b'"metadata":{"env":"prod","revision":"main@sha1:abc","summary":"sum"},'
        b'"reportingController":"source-controller","reportingInstance":"fluxd-0"}'
    )


def test_generic_hmac_signs_the_body_it_sends() -> None:
    settings = ProviderSettings(type="generic-hmac", address="https://h.local/", token="key")
    request = build_request(settings, event())
    expected = hmac.new(b"key", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == f"sha256={expected}"
    with pytest.raises(InvalidProvider, match="HMAC key is empty"):
        build_request(ProviderSettings(type="generic-hmac", address="https://h.local/"), event())


def test_bad_address_is_refused() -> None:
    with pytest.raises(InvalidProvider, match="not a url"):
        build_request(ProviderSettings(type="slack", address="not a url"), event())


def test_slack_payload() -> None:
    settings = ProviderSettings(
        type="slack", address="https://hooks.slack.com/x", channel="ops", token="xoxb"
    )
    request = build_request(settings, event())
    payload = json.loads(request.body)
    assert list(payload) == ["channel", "username", "icon_url", "icon_emoji", "attachments"]
    assert payload["channel"] == "ops"
    assert payload["username"] == "source-controller"
    (attachment,) = payload["attachments"]
    assert attachment == {
        "fallback": "gitrepository/app.prod: failed to checkout <main> & fetch",
        "color": "danger",
        "author_name": "gitrepository/app.prod",
        "text": "failed to checkout <main> & fetch",
        "mrkdwn_in": ["text"],
        "fields": [
            {"title": "env", "value": "prod", "short": False},
            {"title": "revision", "value": "main@sha1:abc", "short": False},
            {"title": "summary", "value": "sum", "short": False},
        ],
    }
    assert request.headers["Authorization"] == "Bearer xoxb"
    assert request.check is None
    bot = build_request(
        ProviderSettings(type="slack", address="https://slack.com/api/chat.postMessage"), event()
    )
    assert bot.check is not None
    assert bot.check(b'{"ok": false, "error": "channel_not_found"}') == (
        "Slack responded with error: channel_not_found"
    )
    assert bot.check(b'{"ok": true}') is None


def test_discord_posts_slack_shape_to_the_slack_endpoint() -> None:
    request = build_request(
        ProviderSettings(type="discord", address="https://discord.com/api/webhooks/1/t"), event()
    )
    assert request.url == "https://discord.com/api/webhooks/1/t/slack"
    payload = json.loads(request.body)
    assert payload["channel"] == ""
    assert payload["attachments"][0]["fallback"] == ""


def test_msteams_adaptive_card_and_legacy_connector() -> None:
    card = json.loads(
        build_request(
            ProviderSettings(type="msteams", address="https://prod.logic.azure.com/w"), event()
        ).body
    )
    content = card["attachments"][0]["content"]
    assert card["type"] == "message"
    assert content["version"] == "1.4"
    title, message, facts = content["body"][0]["items"]
    assert title["text"] == "gitrepository/app.prod"
    assert message == {
        "type": "TextBlock",
        "text": "failed to checkout <main> & fetch",
        "color": "attention",
        "wrap": True,
    }
    assert [f["title"] for f in facts["facts"]] == ["summary", "env", "revision"]
    legacy = json.loads(
        build_request(
            ProviderSettings(type="msteams", address="https://org.webhook.office.com/x"), event()
        ).body
    )
    assert legacy["@type"] == "MessageCard"
    assert legacy["themeColor"] == "FF0000"


def test_alertmanager_grafana_webex() -> None:
    alerts = json.loads(
        build_request(
            ProviderSettings(type="alertmanager", address="http://am/api/v2/alerts"), event()
        ).body
    )
    (alert,) = alerts
    assert alert["labels"]["alertname"] == "FluxGitRepositoryGitoperationfailed"
    assert alert["annotations"] == {
        "message": "failed to checkout <main> & fetch",
        "summary": "sum",
    }
    assert "summary" not in alert["labels"]
    assert alert["startsAt"] == "2026-12-04T07:00:00Z"

    grafana = build_request(
        ProviderSettings(type="grafana", address="http://g/api/annotations", token="t"), event()
    )
    payload = json.loads(grafana.body)
    assert payload["when"] == int(WHEN.timestamp())
    assert payload["tags"][:2] == ["flux", "source-controller"]
    assert "revision: main@sha1|abc" in payload["tags"]
    assert grafana.headers["Authorization"] == "Bearer t"

    webex = json.loads(
        build_request(
            ProviderSettings(
                type="webex", address="https://webexapis.com/v1/messages", channel="r"
            ),
            event(),
        ).body
    )
    assert webex["roomId"] == "r"
    assert webex["markdown"].startswith("💣 **gitrepository/app.prod**\n")


def test_go_json_escapes_html_characters() -> None:
    assert go_json({"a": "<&>\u2028é"}) == '{"a":"\\u003c\\u0026\\u003e\\u2028é"}'.encode()
