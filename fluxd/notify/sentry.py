"""The ``sentry`` Provider type: events sent to Sentry as Flux's sentry-go client sends them.

``spec.address`` is the project's DSN (``https://<public key>[:<secret>]@<host>/<project>``)
and ``spec.channel`` the environment. As in Flux, an error event becomes a Sentry
error event (level ``error``, the reporting controller as server name, the object as
transaction, the metadata in the ``metadata`` context) and an info event a transaction
of one span (``op`` ``event``, the object and reason in ``flux_*`` tags next to the
metadata), so routine reconciles chart as performance data rather than raising alerts.
Both go as one envelope to the project's envelope endpoint, authenticated by the
``X-Sentry-Auth`` header that carries the DSN's key. Go marshals maps with sorted
keys, so tags and metadata are sorted here too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from fluxd.notify.event import Notification, go_json, rfc3339
from fluxd.notify.request import InvalidProvider, ProviderSettings, Request

__all__ = ["SDK_NAME", "SDK_VERSION", "Dsn", "parse_dsn", "sentry_request"]

#: The client Flux's notification-controller reports itself as (its go.mod's sentry-go).
SDK_NAME = "sentry.go"
SDK_VERSION = "0.46.2"
ENVELOPE_TYPE = "application/x-sentry-envelope"


@dataclass(frozen=True)
class Dsn:
    """A Sentry DSN's parts: where the project's endpoints are, and its key."""

    origin: str
    path: str
    project: str
    public_key: str
    secret_key: str

    @property
    def envelope_url(self) -> str:
        return f"{self.origin}{self.path}/api/{self.project}/envelope/"

    @property
    def auth_header(self) -> str:
        value = (
            f"Sentry sentry_version=7, sentry_client={SDK_NAME}/{SDK_VERSION}, "
            f"sentry_key={self.public_key}"
        )
        if self.secret_key:
            value += f", sentry_secret={self.secret_key}"
        return value


def parse_dsn(dsn: str) -> Dsn:
    """The parts of ``dsn``; :class:`InvalidProvider` names what is missing."""
    if not dsn:
        raise InvalidProvider("DSN cannot be empty")
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https"):
        raise InvalidProvider(f"invalid Sentry DSN {dsn!r}: the scheme must be http or https")
    if not parts.username:
        raise InvalidProvider(f"invalid Sentry DSN {dsn!r}: the public key (user) is empty")
    if not parts.hostname:
        raise InvalidProvider(f"invalid Sentry DSN {dsn!r}: the host is empty")
    path, _, project = parts.path.rstrip("/").rpartition("/")
    if not project.isdigit():
        raise InvalidProvider(f"invalid Sentry DSN {dsn!r}: the path must end in the project ID")
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return Dsn(
        origin=origin,
        path=path,
        project=project,
        public_key=unquote(parts.username),
        secret_key=unquote(parts.password or ""),
    )


def _summary(event: Notification) -> str:
    obj = event.involved_object
    return f"{obj.get('kind', '')}: {obj.get('namespace', '')}/{obj.get('name', '')}"


def _common(settings: ProviderSettings, event_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"event_id": event_id, "platform": "go"}
    if settings.channel:
        fields["environment"] = settings.channel
    fields["sdk"] = {"name": SDK_NAME, "version": SDK_VERSION}
    return fields


def error_event(settings: ProviderSettings, event: Notification, event_id: str) -> dict[str, Any]:
    """The Sentry error event of a Flux error event."""
    return {
        **_common(settings, event_id),
        "level": event.severity,
        "message": event.message,
        "server_name": event.reporting_controller,
        "timestamp": rfc3339(event.timestamp),
        "transaction": _summary(event),
        "contexts": {"metadata": dict(sorted(event.metadata.items()))},
    }


def transaction_event(
    settings: ProviderSettings, event: Notification, event_id: str
) -> dict[str, Any]:
    """The one-span Sentry transaction of a Flux info event."""
    obj = event.involved_object
    tags = {
        "flux_involved_object_kind": str(obj.get("kind", "")),
        "flux_involved_object_namespace": str(obj.get("namespace", "")),
        "flux_involved_object_name": str(obj.get("name", "")),
        "flux_reporting_controller": event.reporting_controller,
        "flux_reporting_instance": event.reporting_instance,
        "flux_reason": event.reason,
        **event.metadata,
    }
    tags = dict(sorted(tags.items()))
    when = rfc3339(event.timestamp)
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    span = {
        "trace_id": trace_id,
        "span_id": span_id,
        "op": "event",
        "tags": tags,
        "start_timestamp": when,
        "timestamp": when,
    }
    return {
        **_common(settings, event_id),
        "type": "transaction",
        "message": event.message,
        "timestamp": when,
        "start_timestamp": when,
        "transaction": _summary(event),
        "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "event"}},
        "tags": tags,
        "spans": [span],
    }


def sentry_request(settings: ProviderSettings, event: Notification) -> Request:
    """The envelope carrying ``event``: a transaction for info, an error event otherwise."""
    dsn = parse_dsn(settings.address)
    event_id = uuid.uuid4().hex
    if event.severity == "info":
        item_type, item = "transaction", transaction_event(settings, event, event_id)
    else:
        item_type, item = "event", error_event(settings, event, event_id)
    payload = go_json(item)
    envelope_header = {
        "event_id": event_id,
        "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "dsn": settings.address,
        "sdk": {"name": SDK_NAME, "version": SDK_VERSION},
    }
    item_header = {"type": item_type, "length": len(payload)}
    body = b"\n".join([go_json(envelope_header), go_json(item_header), payload]) + b"\n"
    headers = {
        "Content-Type": ENVELOPE_TYPE,
        "X-Sentry-Auth": dsn.auth_header,
        "User-Agent": f"{SDK_NAME}/{SDK_VERSION}",
    }
    return Request(
        url=dsn.envelope_url, body=body, headers=headers, failure="sending event to Sentry failed"
    )
