"""Status conditions with Flux's rules, on plain ``status`` dicts.

Flux objects report their state through ``status.conditions`` following kstatus:

- ``Ready`` is the summary a user reads (``kubectl get`` shows it).
- ``Reconciling`` and ``Stalled`` have *negative polarity*: they are present only while
  ``True`` and removed otherwise, so a healthy object carries just ``Ready=True`` plus its
  positive kind-specific conditions (``ArtifactInStorage``, ``SourceVerified``...).
- ``lastTransitionTime`` moves only when a condition's *status* flips; a new reason or
  message on the same status keeps the old time, so ``kubectl describe`` tells how long an
  object has been failing.
- ``observedGeneration`` on each condition records which spec the verdict is about.

The functions here mutate the ``status`` mapping they are given; the reconcile driver owns
the single status patch that sends it to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = [
    "READY",
    "RECONCILING",
    "STALLED",
    "ConditionStatus",
    "delete",
    "get",
    "is_ready",
    "mark_false",
    "mark_reconciling",
    "mark_stalled",
    "mark_true",
    "mark_unknown",
    "now_rfc3339",
    "set_condition",
]

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"

ConditionStatus = Literal["True", "False", "Unknown"]
Status = MutableMapping[str, Any]

# Flux lists conditions in this order; the rest follow in the order they were added.
_LEADING_TYPES: Final = (READY, RECONCILING, STALLED)


def now_rfc3339() -> str:
    """The current time as Kubernetes serialises ``metav1.Time`` (seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get(status: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of ``type_``, or ``None`` when absent."""
    for condition in status.get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return None


def is_ready(status: Mapping[str, Any]) -> bool:
    """True when ``Ready`` is present and ``True``."""
    condition = get(status, READY)
    return condition is not None and condition.get("status") == "True"


def set_condition(
    status: Status,
    type_: str,
    value: ConditionStatus,
    reason: str,
    message: str,
    *,
    observed_generation: int | None = None,
    now: str | None = None,
) -> None:
    """Create or update one condition, moving ``lastTransitionTime`` only on a flip."""
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    existing = next((c for c in conditions if c.get("type") == type_), None)
    transition = now or now_rfc3339()
    if existing is not None and existing.get("status") == value:
        transition = existing.get("lastTransitionTime", transition)
    condition: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    if existing is None:
        conditions.append(condition)
    else:
        conditions[conditions.index(existing)] = condition
    status["conditions"] = _ordered(conditions)


def delete(status: Status, type_: str) -> None:
    """Remove the condition of ``type_`` if present."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    status["conditions"] = conditions


def mark_true(
    status: Status, type_: str, reason: str, message: str, *, generation: int | None = None
) -> None:
    """Set ``type_`` to True."""
    set_condition(status, type_, "True", reason, message, observed_generation=generation)


def mark_false(
    status: Status, type_: str, reason: str, message: str, *, generation: int | None = None
) -> None:
    """Set ``type_`` to False."""
    set_condition(status, type_, "False", reason, message, observed_generation=generation)


def mark_unknown(
    status: Status, type_: str, reason: str, message: str, *, generation: int | None = None
) -> None:
    """Set ``type_`` to Unknown."""
    set_condition(status, type_, "Unknown", reason, message, observed_generation=generation)


def mark_reconciling(
    status: Status, reason: str, message: str, *, generation: int | None = None
) -> None:
    """Reconciling=True; an object cannot be reconciling and stalled at once."""
    delete(status, STALLED)
    mark_true(status, RECONCILING, reason, message, generation=generation)


def mark_stalled(
    status: Status, reason: str, message: str, *, generation: int | None = None
) -> None:
    """Stalled=True: retrying will not help until the spec changes."""
    delete(status, RECONCILING)
    mark_true(status, STALLED, reason, message, generation=generation)


def _ordered(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def rank(condition: dict[str, Any]) -> int:
        type_ = condition.get("type")
        return _LEADING_TYPES.index(type_) if type_ in _LEADING_TYPES else len(_LEADING_TYPES)

    return sorted(conditions, key=rank)
