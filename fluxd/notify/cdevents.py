"""Checking a ``cdevents`` Receiver's request body as a CDEvents (spec v0.4) event.

Flux's ``cdevents`` receiver decodes the body with the CDEvents SDK for spec v0.4 and
validates it before anything is triggered; ``spec.events`` then filters the CloudEvents
``Ce-Type`` header (case-insensitively). fluxd checks what every v0.4 event shares:

- ``context``: ``version``, ``id`` and ``source`` present and non-empty, ``type`` of the
  form ``dev.cdevents.<subject>.<predicate>.<semver>`` naming an event of the v0.4
  vocabulary (or a custom ``dev.cdeventsx.<tool>-<subject>.<predicate>.<semver>``), and
  ``timestamp`` an RFC 3339 time;
- ``subject``: a non-empty ``id``, the ``type`` the event's subject has (``pipelineRun``
  for ``dev.cdevents.pipelinerun.*``) and a ``content`` object.

The fields inside ``content`` are not checked against each event's own schema (Flux's
SDK carries those schemas; fluxd does not), so a ``content`` lacking a field its event's
schema requires is accepted where Flux refuses it.
:class:`InvalidCDEvent` says what is wrong.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

__all__ = ["EVENT_TYPES", "SUBJECT_TYPES", "InvalidCDEvent", "event_type"]

#: The v0.4 vocabulary: subject -> its predicates.
EVENT_TYPES: dict[str, frozenset[str]] = {
    "artifact": frozenset({"deleted", "downloaded", "packaged", "published", "signed"}),
    "branch": frozenset({"created", "deleted"}),
    "build": frozenset({"finished", "queued", "started"}),
    "change": frozenset({"abandoned", "created", "merged", "reviewed", "updated"}),
    "environment": frozenset({"created", "deleted", "modified"}),
    "incident": frozenset({"detected", "reported", "resolved"}),
    "pipelinerun": frozenset({"finished", "queued", "started"}),
    "repository": frozenset({"created", "deleted", "modified"}),
    "service": frozenset({"deployed", "published", "removed", "rolledback", "upgraded"}),
    "taskrun": frozenset({"finished", "started"}),
    "testcaserun": frozenset({"finished", "queued", "skipped", "started"}),
    "testoutput": frozenset({"published"}),
    "testsuiterun": frozenset({"finished", "queued", "started"}),
    "ticket": frozenset({"closed", "created", "updated"}),
}
#: The ``subject.type`` of each subject's events, as the v0.4 schemas spell it.
SUBJECT_TYPES = {
    "pipelinerun": "pipelineRun",
    "taskrun": "taskRun",
    "testcaserun": "testCaseRun",
    "testoutput": "testOutput",
    "testsuiterun": "testSuiteRun",
}
_SEMVER = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_TYPE = re.compile(rf"dev\.cdevents\.([a-z]+)\.([a-z]+)\.({_SEMVER})")
_CUSTOM_TYPE = re.compile(rf"dev\.cdeventsx\.[a-z0-9]+-[a-z0-9]+\.[a-z]+\.({_SEMVER})")


class InvalidCDEvent(Exception):
    """The body is not a CDEvent; the message says what is wrong."""


def _non_empty(section: dict[str, Any], name: str, where: str) -> str:
    value = section.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidCDEvent(f"{where}.{name} is required (a non-empty string)")
    return value


def _subject(value: str) -> str | None:
    """The subject an event type names; None for a custom event."""
    if _CUSTOM_TYPE.fullmatch(value):
        return None
    match = _TYPE.fullmatch(value)
    if match is None:
        raise InvalidCDEvent(
            f"context.type {value!r} is not of the form dev.cdevents.<subject>.<predicate>."
            "<version>"
        )
    subject, predicate, _ = match.groups()
    if predicate not in EVENT_TYPES.get(subject, frozenset()):
        raise InvalidCDEvent(f"unknown event type {value!r}")
    return subject


def event_type(body: bytes) -> str:
    """The ``context.type`` of the CDEvent ``body``; :class:`InvalidCDEvent` when it is
    not one."""
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidCDEvent(f"the body is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise InvalidCDEvent("the body is not a JSON object")
    context = event.get("context")
    if not isinstance(context, dict):
        raise InvalidCDEvent("context is required (an object)")
    for name in ("version", "id", "source"):
        _non_empty(context, name, "context")
    kind = _non_empty(context, "type", "context")
    subject_name = _subject(kind)
    timestamp = _non_empty(context, "timestamp", "context")
    try:
        datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidCDEvent(f"context.timestamp {timestamp!r} is not an RFC 3339 time") from error
    subject = event.get("subject")
    if not isinstance(subject, dict):
        raise InvalidCDEvent("subject is required (an object)")
    _non_empty(subject, "id", "subject")
    subject_type = _non_empty(subject, "type", "subject")
    if subject_name is not None:
        expected = SUBJECT_TYPES.get(subject_name, subject_name)
        if subject_type != expected:
            raise InvalidCDEvent(
                f"subject.type {subject_type!r} is not {expected!r}, the subject of {kind!r}"
            )
    if not isinstance(subject.get("content"), dict):
        raise InvalidCDEvent("subject.content is required (an object)")
    return kind
