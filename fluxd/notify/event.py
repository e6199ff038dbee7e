"""The notification an Alert forwards: Flux's ``event.toolkit.fluxcd.io`` Event, built
from an Event fluxd recorded, and the bytes it travels as.

In Flux every controller POSTs its events to the notification-controller; here the
recorded Kubernetes Event is turned into the same JSON document without leaving the
process. What Flux's event server does to an incoming event is done here in the same
order, so providers receive what Flux's would for the same event:

1. metadata keeps only keys prefixed with ``event.toolkit.fluxcd.io/`` or the involved
   object's API group, without the ``checksum`` and ``digest`` keys (cleanup);
2. the duplicate key (object, message, revision, origin revision, token) is taken from
   that metadata, before the ``token`` key is dropped;
3. per Alert, metadata is combined as RFC 0008 orders it: event-group keys, the Alert's
   ``eventMetadata``, its ``summary``, then the object-group keys, each stripped of its
   prefix and each overriding the ones before.

:func:`go_json` encodes the way Go's ``encoding/json`` does (compact, HTML characters
escaped), so a ``generic-hmac`` signature computed by a Go receiver over the body matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from fluxd.kube.events import META_ORIGIN_REVISION, META_REVISION, META_TOKEN, RecordedEvent

__all__ = [
    "EVENT_GROUP",
    "Notification",
    "go_json",
    "notification_of",
]

EVENT_GROUP = "event.toolkit.fluxcd.io"
_EXCLUDED_KEYS = ("checksum", "digest")
#: Field order of Kubernetes' ObjectReference, as Go marshals it.
_REFERENCE_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One event as Flux's notification-controller hands it to a provider."""

    involved_object: Mapping[str, str]
    severity: Literal["info", "error"]
    timestamp: datetime
    message: str
    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    reporting_controller: str = ""
    reporting_instance: str = ""

    @property
    def kind(self) -> str:
        return self.involved_object.get("kind", "")

    @property
    def name(self) -> str:
        return self.involved_object.get("name", "")

    @property
    def namespace(self) -> str:
        return self.involved_object.get("namespace", "")

    @property
    def group(self) -> str:
        return self.involved_object.get("apiVersion", "").rpartition("/")[0]

    @property
    def object_label(self) -> str:
        """``kind/name.namespace`` with the kind lowercased, as chat providers title it."""
        return f"{self.kind.lower()}/{self.name}.{self.namespace}"

    def dedupe_key(self) -> str:
        """Flux's rate-limit key: equal for repeats of the same event."""
        parts = [
            "event",
            f"name={self.name}",
            f"namespace={self.namespace}",
            f"kind={self.kind}",
            f"message={self.message}",
        ]
        for key in (META_ORIGIN_REVISION, META_REVISION, META_TOKEN):
            value = self.metadata.get(f"{self.group}/{key}")
            if value is not None:
                parts.append(f"{key}={value}")
        return hashlib.sha256("/".join(parts).encode()).hexdigest()

    def without_internal_metadata(self) -> Notification:
        """The event without its ``token`` (used for deduplication only)."""
        token = f"{self.group}/{META_TOKEN}"
        return replace(self, metadata={k: v for k, v in self.metadata.items() if k != token})

    def for_alert(self, event_metadata: Mapping[str, str], summary: str | None) -> Notification:
        """The metadata an Alert sends: prefixes stripped, its own keys merged in."""
        combined: dict[str, str] = {}
        event_prefix = f"{EVENT_GROUP}/"
        object_prefix = f"{self.group}/"
        for key, value in self.metadata.items():
            if key.startswith(event_prefix):
                combined[key.removeprefix(event_prefix)] = value
        combined.update(event_metadata)
        if summary:
            combined["summary"] = summary
        for key, value in self.metadata.items():
            if key.startswith(object_prefix):
                combined[key.removeprefix(object_prefix)] = value
        return replace(self, metadata=combined) if combined else self

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, fields in Go's order (``metadata`` omitted when empty)."""
        reference = {
            k: self.involved_object[k] for k in _REFERENCE_FIELDS if self.involved_object.get(k)
        }
        document: dict[str, Any] = {
            "involvedObject": reference,
            "severity": self.severity,
            "timestamp": rfc3339(self.timestamp),
            "message": self.message,
            "reason": self.reason,
        }
        if self.metadata:
            document["metadata"] = dict(sorted(self.metadata.items()))
        document["reportingController"] = self.reporting_controller
        if self.reporting_instance:
            document["reportingInstance"] = self.reporting_instance
        return document


def rfc3339(moment: datetime) -> str:
    """A timestamp as Kubernetes' ``metav1.Time`` writes it (UTC, whole seconds)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def notification_of(event: RecordedEvent) -> Notification:
    """The cleaned-up notification of a recorded event (step 1 of the module doc)."""
    group = str(event.involved_object.get("apiVersion", "")).rpartition("/")[0]
    excluded = {f"{group}/{key}".lower() for key in _EXCLUDED_KEYS}
    metadata = {
        key: value
        for key, value in event.annotations.items()
        if key.lower() not in excluded
        and (key.startswith(f"{EVENT_GROUP}/") or key.startswith(f"{group}/"))
    }
    return Notification(
        involved_object=dict(event.involved_object),
        severity=event.severity,
        timestamp=event.timestamp,
        message=event.message,
        reason=event.reason,
        metadata=metadata,
        reporting_controller=event.reporting_controller,
        reporting_instance=event.reporting_instance,
    )


_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(value: Any) -> bytes:
    """``value`` encoded as Go's ``json.Marshal`` encodes it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_GO_ESCAPES).encode()
