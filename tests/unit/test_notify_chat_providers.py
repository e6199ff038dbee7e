"""The chat and incident Provider types' requests: URL, method, headers and the exact
body Flux's notification-controller sends for the same event."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from fluxd.notify import (
    SUPPORTED_TYPES,
    InvalidProvider,
    Notification,
    ProviderSettings,
    Request,
    build_request,
)

WHEN = datetime(2026, 12, 4, 7, 0, 0, tzinfo=UTC)
GITREPOSITORY = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "GitRepository",
    "name": "app",
    "namespace": "prod",
    "uid": "1234",
}


def failure() -> Notification:
    return Notification(
        involved_object=GITREPOSITORY,
        severity="error",
        timestamp=WHEN,
        message="failed to checkout <main> & fetch",
        reason="GitOperationFailed",
        metadata={"summary": "sum", "revision": "main@sha1:abc", "env": "prod"},
        reporting_controller="source-controller",
        reporting_instance="fluxd-0",
    )


def success() -> Notification:
    return dataclasses.replace(
        failure(), severity="info", message="stored artifact", reason="NewArtifact", metadata={}
    )


def request_for(type_: str, event: Notification, **settings: Any) -> Request:
    defaults = ProviderSettings(type=type_, address="https://chat.example.com/hooks/1")
    return build_request(dataclasses.replace(defaults, **settings), event)


def test_every_chat_type_is_served() -> None:
    chat_types = {"rocket", "googlechat", "lark", "matrix", "telegram", "opsgenie", "datadog"}
    assert chat_types | {"zulip"} <= SUPPORTED_TYPES


def test_rocket_posts_a_slack_shaped_message_to_the_hook() -> None:
    request = request_for("rocket", failure(), channel="ops", username="flux")
    assert request.method == "POST"
    assert request.url == "https://chat.example.com/hooks/1"
    assert request.headers == {"Content-Type": "application/json"}
    assert request.body == (
        b'{"channel":"ops","username":"flux","icon_url":"","icon_emoji":"",'
        b'"attachments":[{"fallback":"","color":"#FF0000",'
        b'"author_name":"gitrepository/app.prod",'
        b'"text":"failed to checkout \\u003cmain\\u003e \\u0026 fetch","mrkdwn_in":["text"],'
        b'"fields":[{"title":"env","value":"prod","short":false},'
        b'{"title":"revision","value":"main@sha1:abc","short":false},'
        b'{"title":"summary","value":"sum","short":false}]}]}'
    )
    info = json.loads(request_for("rocket", success()).body)
    assert info["attachments"][0]["color"] == "#0076D7"
    assert info["attachments"][0]["fields"] == []
    assert info["username"] == "", "Rocket sends the Provider's username, nothing else"


def test_googlechat_sends_one_card_with_message_and_metadata_sections() -> None:
    request = request_for("googlechat", failure())
    assert request.url == "https://chat.example.com/hooks/1"
    assert request.headers == {"Content-Type": "application/json"}
    assert json.loads(request.body) == {
        "cards": [
            {
                "header": {
                    "title": "gitrepository/app.prod",
                    "subtitle": "source-controller",
                    "imageUrl": None,
                    "imageStyle": None,
                },
                "sections": [
                    {
                        "header": "",
                        "widgets": [
                            {
                                "textParagraph": {
                                    "text": '<font color="#ff0000">'
                                    "failed to checkout <main> & fetch</font>"
                                },
                                "keyValue": None,
                            }
                        ],
                    },
                    {
                        "header": "",
                        "widgets": [
                            {
                                "textParagraph": None,
                                "keyValue": {
                                    "topLabel": key,
                                    "content": value,
                                    "contentMultiline": False,
                                    "bottomLabel": None,
                                    "icon": None,
                                },
                            }
                            for key, value in [
                                ("env", "prod"),
                                ("revision", "main@sha1:abc"),
                                ("summary", "sum"),
                            ]
                        ],
                    },
                ],
            }
        ]
    }
    (card,) = json.loads(request_for("googlechat", success()).body)["cards"]
    assert card["sections"] == [
        {
            "header": "",
            "widgets": [{"textParagraph": {"text": "stored artifact"}, "keyValue": None}],
        }
    ], "info is plain text and no metadata section is sent when there is none"


def test_lark_sends_an_interactive_card() -> None:
    request = request_for("lark", failure())
    assert request.url == "https://chat.example.com/hooks/1"
    assert request.headers == {"Content-Type": "application/json"}
    assert json.loads(request.body) == {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": "🚨 gitrepository/app.prod"},
                "template": "red",
            },
            "elements": [
                {
                    "tag": "div",
                    "text": {
                        "tag": "lark_md",
                        "content": "**failed to checkout <main> & fetch**\n\n"
                        "env: prod\nrevision: main@sha1:abc\nsummary: sum\n",
                    },
                }
            ],
        },
    }
    header = json.loads(request_for("lark", success()).body)["card"]["header"]
    assert header == {
        "title": {"tag": "plain_text", "content": "💫 gitrepository/app.prod"},
        "template": "turquoise",
    }


def test_matrix_puts_the_message_into_the_room_under_the_events_digest() -> None:
    event = failure()
    request = request_for(
        "matrix",
        event,
        address="https://matrix.example.org",
        channel="!room:example.org",
        token="syt_secret",
    )
    event_json = request_for("generic", event).body
    transaction = hashlib.sha1(event_json, usedforsecurity=False).hexdigest()
    assert request.method == "PUT"
    assert request.url == (
        "https://matrix.example.org/_matrix/client/r0/rooms/!room:example.org"
        f"/send/m.room.message/{transaction}"
    )
    assert request.headers == {
        "Content-Type": "application/json",
        "Authorization": "Bearer syt_secret",
    }
    assert json.loads(request.body) == {
        "body": "🚨 gitrepository/app.prod\nfailed to checkout <main> & fetch\n"
        "- env: prod\n- revision: main@sha1:abc\n- summary: sum\n",
        "msgtype": "m.text",
    }
    again = request_for(
        "matrix", failure(), address="https://matrix.example.org", channel="!room:example.org"
    )
    other = request_for(
        "matrix", success(), address="https://matrix.example.org", channel="!room:example.org"
    )
    assert again.url == request.url, "a resent event keeps its transaction id"
    assert other.url != request.url


def test_telegram_calls_send_message_with_markdown_v2_escaping() -> None:
    event = dataclasses.replace(
        failure(),
        message="v1.2-rc (x) *bold* _it_ [l](u) a\\b ~#+=|{}!>`",
        metadata={"re_vision": "main@sha1:abc"},
    )
    request = request_for("telegram", event, channel="-100123", token="42:AAE")
    assert request.url == "https://api.telegram.org/bot42:AAE/sendMessage"
    assert request.headers == {"Content-Type": "application/json"}
    payload = json.loads(request.body)
    assert list(payload) == ["chat_id", "text", "parse_mode"]
    assert payload["chat_id"] == "-100123"
    assert payload["parse_mode"] == "MarkdownV2"
    assert payload["text"] == (
        "*🚨 gitrepository/app/prod*\n"
        r"v1\.2\-rc \(x\) \*bold\* \_it\_ \[l\]\(u\) a\\b "
        r"\~\#\+\=\|\{\}\!\>\`"
        "\n"
        "\\- *re\\_vision*: main@sha1:abc\n"
    )


def test_telegram_channel_may_name_a_forum_thread() -> None:
    request = request_for("telegram", success(), channel="-100123:7", token="42:AAE")
    payload = json.loads(request.body)
    assert list(payload) == ["chat_id", "message_thread_id", "text", "parse_mode"]
    assert (payload["chat_id"], payload["message_thread_id"]) == ("-100123", "7")
    assert payload["text"] == "*💫 gitrepository/app/prod*\nstored artifact\n"


def test_telegram_without_chat_or_token_is_refused() -> None:
    with pytest.raises(InvalidProvider, match="empty Telegram channel"):
        request_for("telegram", failure(), token="42:AAE")
    with pytest.raises(InvalidProvider, match="empty Telegram token"):
        request_for("telegram", failure(), channel="-100123")


def test_opsgenie_posts_an_alert_aliased_per_provider_object_and_reason() -> None:
    request = request_for(
        "opsgenie",
        failure(),
        address="https://api.opsgenie.com/v2/alerts",
        token="key",
        uid="provider-uid",
    )
    alias = hashlib.sha256(b"provider-uid/GitRepository/prod/app/GitOperationFailed").hexdigest()
    assert request.url == "https://api.opsgenie.com/v2/alerts"
    assert request.headers == {"Content-Type": "application/json", "Authorization": "GenieKey key"}
    assert request.body == (
        b'{"message":"GitRepository/app","alias":"' + alias.encode() + b'",'
        b'"description":"failed to checkout \\u003cmain\\u003e \\u0026 fetch",'
        b'"details":{"env":"prod","revision":"main@sha1:abc","severity":"error","summary":"sum"}}'
    )
    other = request_for("opsgenie", failure(), token="key", uid="another-provider")
    assert json.loads(other.body)["alias"] != alias
    with pytest.raises(InvalidProvider, match="empty Opsgenie apikey/token"):
        request_for("opsgenie", failure())


def test_datadog_posts_to_the_events_api_of_the_address_host() -> None:
    request = request_for(
        "datadog", failure(), address="https://api.datadoghq.eu/ignored/path?x=1", token="dd-key"
    )
    assert request.url == "https://api.datadoghq.eu/api/v1/events"
    assert request.headers == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "DD-API-KEY": "dd-key",
    }
    assert request.body == (
        b'{"alert_type":"error","date_happened":1796367600,"source_type_name":"fluxcd",'
        b'"tags":["flux_reporting_controller:source-controller",'
        b'"flux_reason:gitoperationfailed","kube_kind:gitrepository","kube_name:app",'
        b'"kube_namespace:prod","env:prod","revision:main@sha1:abc","summary:sum"],'
        b'"text":"failed to checkout \\u003cmain\\u003e \\u0026 fetch",'
        b'"title":"Events from the GitRepository app/prod"}'
    )
    assert json.loads(request_for("datadog", success(), token="k").body)["alert_type"] == "info"
    with pytest.raises(InvalidProvider, match="empty Datadog API key"):
        request_for("datadog", failure())


def test_zulip_posts_a_markdown_stream_message_as_a_form() -> None:
    event = dataclasses.replace(
        failure(), metadata={"revision": "main@sha1:abc", "change_request": "12"}
    )
    request = request_for(
        "zulip",
        event,
        address="https://zulip.example.com/whatever",
        channel="flux/prod alerts",
        username="bot@zulip.example.com",
        password="api-key",
    )
    assert request.url == "https://zulip.example.com/api/v1/messages"
    credentials = base64.b64encode(b"bot@zulip.example.com:api-key").decode()
    assert request.headers == {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"Basic {credentials}",
    }
    assert list(parse_qs(request.body.decode())) == ["content", "to", "topic", "type"]
    assert parse_qs(request.body.decode()) == {
        "content": [
            "## Flux Status\n\n\u26a0\ufe0f GitRepository/prod/app\n\n"
            "failed to checkout <main> & fetch\n\nMetadata:\n* `revision`: main@sha1:abc\n"
        ],
        "to": ["flux"],
        "topic": ["prod alerts"],
        "type": ["stream"],
    }
    assert b"topic=prod+alerts" in request.body, "spaces travel as '+', as Go encodes forms"
    info = parse_qs(request_for("zulip", success(), channel="flux/t").body.decode())
    assert info["content"] == [
        "## Flux Status\n\n\u2139\ufe0f GitRepository/prod/app\n\nstored artifact\n\nMetadata:\n"
    ]
    assert "Authorization" not in request_for("zulip", success(), channel="flux/t").headers


@pytest.mark.parametrize("channel", ["", "flux", "flux/", "/topic"])
def test_zulip_channel_must_name_stream_and_topic(channel: str) -> None:
    with pytest.raises(InvalidProvider, match="expected <channel>/<topic>"):
        request_for("zulip", failure(), channel=channel)


@pytest.mark.parametrize("type_", ["rocket", "googlechat", "lark", "matrix", "opsgenie", "datadog"])
def test_an_address_that_is_not_a_url_is_refused(type_: str) -> None:
    with pytest.raises(InvalidProvider, match="not a url"):
        request_for(type_, failure(), address="not a url", token="t")
