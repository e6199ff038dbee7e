"""What each Provider type sends: the request (address, body, headers) for one event.

Pure functions of the provider's settings and the notification, so every payload is
checked byte for byte without a network. The shapes are Flux's notification-controller's
(``internal/notifier``): same JSON fields in the same order, same headers, same
defaults. Flux iterates Go maps (metadata) in random order; here they are sorted, which
is one of the orders Flux sends. The request model is :mod:`~fluxd.notify.request`'s;
the further chat and incident types are built in :mod:`~fluxd.notify.chat`, PagerDuty
in :mod:`~fluxd.notify.pagerduty`, the git services' commit statuses and GitHub's
dispatch in :mod:`~fluxd.notify.commit_status` (their id from ``spec.commitStatusExpr``
in :mod:`~fluxd.notify.commit_status_expr`), pull and merge request comments in
:mod:`~fluxd.notify.pr_comment`, Sentry in :mod:`~fluxd.notify.sentry`, NATS (over its
own TCP protocol) in :mod:`~fluxd.notify.nats`, Azure Event Hubs in
:mod:`~fluxd.notify.eventhub` and Google Pub/Sub in :mod:`~fluxd.notify.pubsub`.

Types not listed in :data:`SUPPORTED_TYPES` are refused by the Provider reconciler by
name, never silently dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fluxd.notify.chat import CHAT_BUILDERS
from fluxd.notify.commit_status import COMMIT_STATUS_TYPES, GIT_SERVICE_BUILDERS
from fluxd.notify.commit_status_expr import with_commit_status
from fluxd.notify.event import Notification, go_json, rfc3339
from fluxd.notify.eventhub import eventhub_request
from fluxd.notify.nats import nats_request
from fluxd.notify.pagerduty import pagerduty_request
from fluxd.notify.pr_comment import CHANGE_REQUEST_BUILDERS
from fluxd.notify.pubsub import pubsub_request
from fluxd.notify.request import (
    InvalidProvider,
    NothingToSend,
    ProviderSettings,
    Request,
    UnsendableEvent,
)
from fluxd.notify.request import basic_auth as _basic
from fluxd.notify.request import json_request as _json_request
from fluxd.notify.request import require_url as _require_url
from fluxd.notify.sentry import sentry_request

__all__ = [
    "SUPPORTED_TYPES",
    "InvalidProvider",
    "NothingToSend",
    "ProviderSettings",
    "Request",
    "UnsendableEvent",
    "build_request",
]

#: Header Flux's forwarder names the reporting controller in.
COMPONENT_HEADER = "gotk-component"
SLACK_BOT_API = "https://slack.com/api/chat.postMessage"


def sign(body: bytes, key: bytes) -> str:
    """The ``X-Signature`` value Flux's generic-hmac provider sends."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _generic(settings: ProviderSettings, event: Notification, *, hmac_key: bool) -> Request:
    _require_url(settings.address, "hook")
    if hmac_key and not settings.token:
        raise InvalidProvider("HMAC key is empty: set 'token' in the Provider's secretRef")
    body = go_json(event.to_dict())
    headers = {"Content-Type": "application/json", COMPONENT_HEADER: event.reporting_controller}
    headers.update(settings.headers)
    if hmac_key:
        headers["X-Signature"] = sign(body, settings.token.encode())
    return Request(url=settings.address, body=body, headers=headers)


def _sorted_metadata(event: Notification) -> list[tuple[str, str]]:
    return sorted(event.metadata.items())


def _slack_attachment(event: Notification, *, fallback: str) -> dict[str, Any]:
    return {
        "fallback": fallback,
        "color": "danger" if event.severity == "error" else "good",
        "author_name": event.object_label,
        "text": event.message,
        "mrkdwn_in": ["text"],
        "fields": [{"title": k, "value": v, "short": False} for k, v in _sorted_metadata(event)],
    }


def _slack_response(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError as error:
        return f"unable to unmarshal response body: {error}"
    if isinstance(answer, dict) and answer.get("ok"):
        return None
    detail = answer.get("error", "") if isinstance(answer, dict) else ""
    return f"Slack responded with error: {detail}"


def _slack(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "Slack hook")
    fallback = f"{event.object_label}: {event.message.split(chr(10))[0]}"
    payload = {
        "channel": settings.channel,
        "username": settings.username or event.reporting_controller,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [_slack_attachment(event, fallback=fallback)],
    }
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    request = _json_request(settings.address, payload, headers)
    if settings.address == SLACK_BOT_API:
        return Request(
            url=request.url, body=request.body, headers=request.headers, check=_slack_response
        )
    return request


def _discord(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "Discord hook")
    url = settings.address
    if not url.endswith("/slack"):
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/slack"))
    payload = {
        "channel": "",
        "username": settings.username or event.reporting_controller,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [_slack_attachment(event, fallback="")],
    }
    return _json_request(url, payload)


def _teams_connector(event: Notification) -> dict[str, Any]:
    return {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": "FF0000" if event.severity == "error" else "0076D7",
        "summary": event.object_label,
        "sections": [
            {
                "activityTitle": event.message,
                "activitySubtitle": event.object_label,
                "facts": [{"name": k, "value": v} for k, v in _sorted_metadata(event)],
            }
        ],
    }


def _teams_card(event: Notification) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "TextBlock", "text": event.message}
    if event.severity == "error":
        message["color"] = "attention"
    message["wrap"] = True
    facts = (
        [{"title": "summary", "value": event.metadata["summary"]}]
        if "summary" in event.metadata
        else []
    )
    facts += [{"title": k, "value": v} for k, v in _sorted_metadata(event) if k != "summary"]
    fact_set: dict[str, Any] = {"type": "FactSet"}
    if facts:
        fact_set["facts"] = facts
    title = {
        "type": "TextBlock",
        "text": event.object_label,
        "size": "large",
        "weight": "bolder",
        "wrap": True,
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "Container", "items": [title, message, fact_set]}],
                    "msteams": {"width": "Full"},
                },
            }
        ],
    }


def _msteams(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "MS Teams webhook")
    host = urlsplit(settings.address).hostname or ""
    # Office 365 connectors (*.webhook.office.com) take the legacy MessageCard; Power
    # Automate workflows take an Adaptive Card.
    connector = host.endswith(".webhook.office.com")
    return _json_request(
        settings.address, _teams_connector(event) if connector else _teams_card(event)
    )


def _title_case(reason: str) -> str:
    """Go's ``cases.Title``: each word's first letter upper, the rest lower."""
    out, start = [], True
    for char in reason:
        out.append(char.upper() if start else char.lower())
        start = not char.isalnum() and char != "'"
    return "".join(out)


def _alertmanager(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "Alertmanager")
    labels = dict(event.metadata)
    annotations = {"message": event.message}
    if "summary" in labels:
        annotations["summary"] = labels.pop("summary")
    labels.update(
        {
            "alertname": f"Flux{event.kind}{_title_case(event.reason)}",
            "severity": event.severity,
            "reason": event.reason,
            "kind": event.kind,
            "name": event.name,
            "namespace": event.namespace,
            "reportingcontroller": event.reporting_controller,
        }
    )
    payload = [
        {
            "status": "firing",
            "labels": dict(sorted(labels.items())),
            "annotations": dict(sorted(annotations.items())),
            "startsAt": rfc3339(event.timestamp),
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ]
    headers: dict[str, str] = {}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    if settings.username and settings.password:
        headers["Authorization"] = _basic(settings.username, settings.password)
    return _json_request(settings.address, payload, headers)


def _grafana(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "Grafana")
    tags = ["flux", event.reporting_controller]
    tags += [f"{k.replace(':', '|')}: {v.replace(':', '|')}" for k, v in _sorted_metadata(event)]
    tags += [f"kind: {event.kind}", f"name: {event.name}", f"namespace: {event.namespace}"]
    payload = {"when": int(event.timestamp.timestamp()), "text": event.object_label, "tags": tags}
    headers: dict[str, str] = {}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    elif settings.username and settings.password:
        headers["Authorization"] = _basic(settings.username, settings.password)
    return _json_request(settings.address, payload, headers)


def _webex(settings: ProviderSettings, event: Notification) -> Request:
    _require_url(settings.address, "Webex hook")
    emoji = "💣" if event.severity == "error" else "✅"
    lines = [f"{emoji} **{event.object_label}**", event.message]
    lines += [f">**{k}**: {v}" for k, v in _sorted_metadata(event)]
    payload: dict[str, Any] = {}
    if settings.channel:
        payload["roomId"] = settings.channel
    payload["markdown"] = "\n".join(lines) + "\n"
    return _json_request(settings.address, payload, {"Authorization": f"Bearer {settings.token}"})


_BUILDERS: dict[str, Callable[[ProviderSettings, Notification], Request]] = {
    "generic": lambda s, e: _generic(s, e, hmac_key=False),
    "generic-hmac": lambda s, e: _generic(s, e, hmac_key=True),
    "slack": _slack,
    "discord": _discord,
    "msteams": _msteams,
    "alertmanager": _alertmanager,
    "grafana": _grafana,
    "webex": _webex,
    "pagerduty": pagerduty_request,
    "sentry": sentry_request,
    "nats": nats_request,
    "azureeventhub": eventhub_request,
    "googlepubsub": pubsub_request,
    **CHAT_BUILDERS,
    **GIT_SERVICE_BUILDERS,
    **CHANGE_REQUEST_BUILDERS,
}

SUPPORTED_TYPES = frozenset(_BUILDERS)


def build_request(
    settings: ProviderSettings,
    event: Notification,
    *,
    alert: Mapping[str, Any] | None = None,
    provider: Mapping[str, Any] | None = None,
) -> Request:
    """The request ``settings.type`` sends for ``event``; :class:`InvalidProvider` when
    the settings cannot make one, :class:`UnsendableEvent` when this event cannot go
    to it, :class:`NothingToSend` when the type skips it. The type must be one of
    :data:`SUPPORTED_TYPES`. ``alert`` and ``provider`` are the objects a commit status
    type's ``spec.commitStatusExpr`` reads; without them (the Provider's own check)
    the expression is compiled, not evaluated."""
    if settings.type in COMMIT_STATUS_TYPES:
        settings = with_commit_status(settings, event, alert, provider)
    return _BUILDERS[settings.type](settings, event)
