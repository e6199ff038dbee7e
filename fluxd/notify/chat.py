"""Requests of the chat and incident Provider types beyond the first few: Rocket.Chat,
Google Chat, Lark, Matrix, Telegram, Opsgenie, Datadog and Zulip.

Each builder is a pure function of the provider's settings and one notification,
shaped as Flux's notification-controller shapes it (``internal/notifier``): the same
JSON fields in the same order, headers, URL derivation and defaults. Where Flux walks
a Go map (metadata, Go-marshalled maps) the keys are sorted, one of the orders Flux
sends. :mod:`~fluxd.notify.providers` registers :data:`CHAT_BUILDERS` with the rest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fluxd.notify.event import Notification, go_json
from fluxd.notify.request import (
    InvalidProvider,
    ProviderSettings,
    Request,
    basic_auth,
    json_request,
    require_url,
)

__all__ = [
    "CHAT_BUILDERS",
    "TELEGRAM_API",
    "markdown_post",
    "matrix_transaction_id",
    "opsgenie_alias",
    "telegram_escape",
]

TELEGRAM_API = "https://api.telegram.org"
#: Characters Telegram's MarkdownV2 needs escaped, as Flux escapes them.
_TELEGRAM_SPECIAL = re.compile(r"([\\.\-_\[\]()~>`#+=|{}!*])")
#: Metadata key Flux keeps out of Markdown posts (it addresses a pull request).
_CHANGE_REQUEST_KEY = "change_request"


def _metadata(event: Notification) -> list[tuple[str, str]]:
    return sorted(event.metadata.items())


def _rocket(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Rocket hook")
    attachment = {
        "fallback": "",
        "color": "#FF0000" if event.severity == "error" else "#0076D7",
        "author_name": event.object_label,
        "text": event.message,
        "mrkdwn_in": ["text"],
        "fields": [{"title": k, "value": v, "short": False} for k, v in _metadata(event)],
    }
    payload = {
        "channel": settings.channel,
        "username": settings.username,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [attachment],
    }
    return json_request(settings.address, payload)


def _text_widget(text: str) -> dict[str, Any]:
    return {"textParagraph": {"text": text}, "keyValue": None}


def _key_value_widget(key: str, value: str) -> dict[str, Any]:
    return {
        "textParagraph": None,
        "keyValue": {
            "topLabel": key,
            "content": value,
            "contentMultiline": False,
            "bottomLabel": None,
            "icon": None,
        },
    }


def _googlechat(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Google Chat hook")
    text = event.message
    if event.severity == "error":
        text = f'<font color="#ff0000">{event.message}</font>'
    sections = [{"header": "", "widgets": [_text_widget(text)]}]
    if event.metadata:
        widgets = [_key_value_widget(k, v) for k, v in _metadata(event)]
        sections.append({"header": "", "widgets": widgets})
    header = {
        "title": event.object_label,
        "subtitle": event.reporting_controller,
        "imageUrl": None,
        "imageStyle": None,
    }
    return json_request(settings.address, {"cards": [{"header": header, "sections": sections}]})


def _lark(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Lark hook")
    error = event.severity == "error"
    content = f"**{event.message}**\n\n" + "".join(f"{k}: {v}\n" for k, v in _metadata(event))
    card = {
        "config": {"wide_screen_mode": True},
        "header": {
            "title": {
                "tag": "plain_text",
                "content": f"{'🚨' if error else '💫'} {event.object_label}",
            },
            "template": "red" if error else "turquoise",
        },
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
    }
    return json_request(settings.address, {"msg_type": "interactive", "card": card})


def matrix_transaction_id(event: Notification) -> str:
    """Flux's Matrix transaction id: the SHA-1 of the event's JSON, so a retried send
    of the same event is one message in the room."""
    return hashlib.sha1(go_json(event.to_dict()), usedforsecurity=False).hexdigest()


def _matrix(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Matrix homeserver")
    emoji = "🚨" if event.severity == "error" else "💫"
    metadata = "".join(f"- {k}: {v}\n" for k, v in _metadata(event))
    body = f"{emoji} {event.object_label}\n{event.message}\n{metadata}"
    url = (
        f"{settings.address}/_matrix/client/r0/rooms/{settings.channel}"
        f"/send/m.room.message/{matrix_transaction_id(event)}"
    )
    request = json_request(
        url, {"body": body, "msgtype": "m.text"}, {"Authorization": f"Bearer {settings.token}"}
    )
    return Request(url=request.url, body=request.body, headers=request.headers, method="PUT")


def telegram_escape(text: str) -> str:
    """``text`` with every MarkdownV2 special character backslash-escaped."""
    return _TELEGRAM_SPECIAL.sub(r"\\\1", text)


def _telegram(settings: ProviderSettings, event: Notification) -> Request:
    if not settings.channel:
        raise InvalidProvider("empty Telegram channel: set spec.channel to the chat id")
    if not settings.token:
        raise InvalidProvider("empty Telegram token: set 'token' in the Provider's secretRef")
    emoji = "🚨" if event.severity == "error" else "💫"
    heading = f"{emoji} {event.kind.lower()}/{event.name}/{event.namespace}"
    metadata = "".join(
        f"\\- *{telegram_escape(k)}*: {telegram_escape(v)}\n" for k, v in _metadata(event)
    )
    text = f"*{telegram_escape(heading)}*\n{telegram_escape(event.message)}\n{metadata}"
    chat_id, has_thread, thread = settings.channel.partition(":")
    payload = {"chat_id": chat_id}
    if has_thread:
        payload["message_thread_id"] = thread
    payload["text"] = text
    payload["parse_mode"] = "MarkdownV2"
    return json_request(f"{TELEGRAM_API}/bot{settings.token}/sendMessage", payload)


def opsgenie_alias(provider_uid: str, event: Notification) -> str:
    """Flux's Opsgenie alias: one open alert per provider, object and reason."""
    key = f"{provider_uid}/{event.kind}/{event.namespace}/{event.name}/{event.reason}"
    return hashlib.sha256(key.encode()).hexdigest()


def _opsgenie(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Opsgenie hook")
    if not settings.token:
        raise InvalidProvider(
            "empty Opsgenie apikey/token: set 'token' in the Provider's secretRef"
        )
    details = dict(sorted({**event.metadata, "severity": event.severity}.items()))
    payload = {
        "message": f"{event.kind}/{event.name}",
        "alias": opsgenie_alias(settings.uid, event),
        "description": event.message,
        "details": details,
    }
    return json_request(settings.address, payload, {"Authorization": f"GenieKey {settings.token}"})


def _datadog(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Datadog API")
    if not settings.token:
        raise InvalidProvider("empty Datadog API key: set 'token' in the Provider's secretRef")
    tags = [
        f"flux_reporting_controller:{event.reporting_controller}",
        f"flux_reason:{event.reason}",
        f"kube_kind:{event.kind}",
        f"kube_name:{event.name}",
        f"kube_namespace:{event.namespace}",
    ]
    tags += [f"{k}:{v}" for k, v in _metadata(event)]
    # The Datadog client marshals the request as a Go map: keys in sorted order.
    payload = {
        "alert_type": "error" if event.severity == "error" else "info",
        "date_happened": int(event.timestamp.timestamp()),
        "source_type_name": "fluxcd",
        "tags": [tag.lower() for tag in tags],
        "text": event.message,
        "title": f"Events from the {event.kind} {event.name}/{event.namespace}",
    }
    parts = urlsplit(settings.address)
    url = urlunsplit((parts.scheme, parts.netloc, "/api/v1/events", "", ""))
    return json_request(url, payload, {"Accept": "application/json", "DD-API-KEY": settings.token})


def markdown_post(event: Notification) -> str:
    """Flux's Markdown rendering of an event for forums and chat topics."""
    emoji = "\u26a0\ufe0f" if event.severity == "error" else "\u2139\ufe0f"
    lines = "".join(f"* `{k}`: {v}\n" for k, v in _metadata(event) if k != _CHANGE_REQUEST_KEY)
    return (
        f"## Flux Status\n\n{emoji} {event.kind}/{event.namespace}/{event.name}\n\n"
        f"{event.message}\n\nMetadata:\n{lines}"
    )


def _zulip(settings: ProviderSettings, event: Notification) -> Request:
    require_url(settings.address, "Zulip endpoint")
    stream, _, topic = settings.channel.partition("/")
    if not stream or not topic:
        raise InvalidProvider(
            f"invalid Zulip channel format, expected <channel>/<topic>, got {settings.channel!r}"
        )
    form = {"content": markdown_post(event), "to": stream, "topic": topic, "type": "stream"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if settings.username or settings.password:
        headers["Authorization"] = basic_auth(settings.username, settings.password)
    url = urlunsplit(urlsplit(settings.address)._replace(path="/api/v1/messages"))
    return Request(url=url, body=urlencode(form).encode(), headers=headers)


CHAT_BUILDERS: dict[str, Callable[[ProviderSettings, Notification], Request]] = {
    "rocket": _rocket,
    "googlechat": _googlechat,
    "lark": _lark,
    "matrix": _matrix,
    "telegram": _telegram,
    "opsgenie": _opsgenie,
    "datadog": _datadog,
    "zulip": _zulip,
}
