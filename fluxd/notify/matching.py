"""Which Alerts an event goes to, decided as Flux's notification-controller decides.

An Alert matches when it is not suspended, one of its ``eventSources`` names the
event's object (same kind; same namespace, the Alert's own when unset; the name or
``*``; every ``matchLabels`` label on the object), its ``eventSeverity`` lets the event
through (``info`` passes everything, ``error`` only errors), the message matches one of
``inclusionList`` (when set) and none of ``exclusionList``. Regular expressions use
Python's engine, which accepts the RE2 syntax Flux's lists are written in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fluxd.api import AlertSpec

__all__ = ["LabelsOf", "alert_matches", "invalid_patterns"]

#: The labels of an object (kind, namespace, name), or None when it cannot be found.
LabelsOf = Callable[[str, str, str], Mapping[str, str] | None]


def invalid_patterns(spec: AlertSpec) -> list[str]:
    """The ``inclusionList``/``exclusionList`` entries that do not compile, with why."""
    problems = []
    for field, patterns in (
        ("inclusionList", spec.inclusion_list),
        ("exclusionList", spec.exclusion_list),
    ):
        for index, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as error:
                problems.append(f"spec.{field}[{index}] {pattern!r}: {error}")
    return problems


def _searches(patterns: tuple[str, ...], message: str) -> bool:
    for pattern in patterns:
        try:
            if re.search(pattern, message):
                return True
        except re.error:
            continue  # reported on the Alert's Ready condition by its reconciler
    return False


def alert_matches(
    alert: Mapping[str, Any],
    spec: AlertSpec,
    involved: Mapping[str, str],
    severity: str,
    message: str,
    labels_of: LabelsOf,
) -> bool:
    """Whether the event about ``involved`` goes to ``alert``."""
    if spec.suspend:
        return False
    if spec.event_severity != "info" and severity != spec.event_severity:
        return False
    alert_namespace = alert["metadata"].get("namespace", "")
    kind, namespace, name = (involved.get(k, "") for k in ("kind", "namespace", "name"))
    matched = False
    for source in spec.event_sources:
        source_namespace = source.namespace or alert_namespace
        if source.kind != kind or source_namespace not in ("*", namespace):
            continue
        if source.name != "*" and source.name != name:
            continue
        if source.match_labels:
            labels = labels_of(kind, namespace, name)
            if labels is None or any(labels.get(k) != v for k, v in source.match_labels.items()):
                continue
        matched = True
        break
    if not matched:
        return False
    if spec.inclusion_list and not _searches(spec.inclusion_list, message):
        return False
    return not _searches(spec.exclusion_list, message)
