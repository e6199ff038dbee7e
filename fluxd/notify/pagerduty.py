"""PagerDuty's Events API v2, as Flux's notification-controller drives it.

One incident per Flux object: the dedup key is the object's UID, so an error event
triggers (or updates) that incident and the next info event resolves it. An info
event is also recorded as a change event. The routing key is ``spec.channel``; only
the scheme and host of ``spec.address`` are used (``https://events.pagerduty.com``).
Progressing events are skipped. Bodies follow go-pagerduty's field order.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from fluxd.notify.commit_status import describe
from fluxd.notify.event import Notification, rfc3339
from fluxd.notify.request import (
    InvalidProvider,
    NothingToSend,
    ProviderSettings,
    Request,
    json_request,
)

__all__ = ["pagerduty_request"]

PROGRESSING = "Progressing"


def _details(event: Notification) -> dict[str, Any]:
    # Go marshals an empty metadata map as null.
    return {"message": event.message, "metadata": dict(sorted(event.metadata.items())) or None}


def pagerduty_request(settings: ProviderSettings, event: Notification) -> Request:
    """The enqueue of ``event`` (trigger on error, resolve otherwise), then for info
    events the change event."""
    parts = urlsplit(settings.address)
    if not parts.scheme or not parts.netloc:
        raise InvalidProvider(f"invalid PagerDuty endpoint URL {settings.address!r}")
    if event.reason == PROGRESSING:
        raise NothingToSend(f"{PROGRESSING} events open no PagerDuty incident")
    endpoint = f"{parts.scheme}://{parts.netloc}"
    name, description = describe(event)
    summary = f"{description}: {name}"
    source = f"Flux {event.reporting_controller}"
    uid = event.involved_object.get("uid", "")
    incident: dict[str, Any] = {"routing_key": settings.channel}
    incident["event_action"] = "trigger" if event.severity == "error" else "resolve"
    if uid:
        incident["dedup_key"] = uid
    if event.severity == "error":
        payload: dict[str, Any] = {
            "summary": summary,
            "source": source,
            "severity": "error",
            "timestamp": rfc3339(event.timestamp),
        }
        if event.name:
            payload["component"] = event.name
        if event.kind:
            payload["group"] = event.kind
        payload["custom_details"] = _details(event)
        incident["payload"] = payload
    request = replace(
        json_request(f"{endpoint}/v2/enqueue", incident),
        failure="failed sending event: postMessage failed",
    )
    if event.severity == "error":
        return request
    change = {
        "routing_key": settings.channel,
        "payload": {
            "summary": summary,
            "source": source,
            "timestamp": rfc3339(event.timestamp),
            "custom_details": _details(event),
        },
    }
    follow_up = replace(
        json_request(f"{endpoint}/v2/change/enqueue", change),
        failure="failed sending change event: postMessage failed",
    )
    return replace(request, follow_up=follow_up)
