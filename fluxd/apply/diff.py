"""What applying objects would change, without changing anything: ``fluxd diff``.

Each object goes through the apply manager's own planning (:meth:`ApplyManager.plan`:
the same dry-run, skips, drift-ignore rules and drift test), so ``fluxd diff`` reports
an object when the next reconcile would change its content. (Fields ``kubectl`` added,
which that apply takes over and so removes, are still in the dry-run's answer: they do
not show.) Objects of
the previous inventory that a prune would delete are reported as ``deleted``
(:meth:`ApplyManager.would_delete`: they exist, still carry the owner labels and are
not ``prune: disabled``).

An object is ``created`` when it does not exist; also when its kind or namespace does not
exist yet (a CRD or Namespace that the same build creates): the dry-run cannot run then.

Secret values never reach the output: ``data`` and ``stringData`` values print as
``***``, or ``*** (before)`` / ``*** (after)`` where they differ.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import yaml

from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef, apply_order
from fluxd.apply.manager import ApplyManager, drifted
from fluxd.apply.mapper import NoKindMatchError

__all__ = ["DiffAction", "ObjectDiff", "diff_objects", "render_diff"]

DiffAction = Literal["created", "drifted", "deleted"]

MASK = "***"
#: Fields that change on every write and say nothing about the desired state.
_NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")
_SECRET_FIELDS = ("data", "stringData")


@dataclasses.dataclass(frozen=True)
class ObjectDiff:
    """One object that applying would change; for a drifted one, ``before``/``after`` are
    the live object and the dry-run result, cleaned and masked for printing."""

    ref: ObjectRef
    action: DiffAction
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


async def diff_objects(
    manager: ApplyManager,
    objects: Iterable[Mapping[str, Any]],
    *,
    prune: Iterable[ObjectRef] = (),
    owner_labels: Mapping[str, str] | None = None,
    ignore: DriftIgnore | None = None,
) -> list[ObjectDiff]:
    """The changes applying ``objects`` (and pruning ``prune``) would make, in apply
    order then deletion order, leaving out the fields ``ignore`` names. Raises
    :class:`ApplyError` when the server refuses an object, naming it."""
    found: list[ObjectDiff] = []
    for obj in apply_order(list(objects)):
        change = await _diff_one(manager, obj, ignore)
        if change is not None:
            found.append(change)
    for ref in prune:
        if await manager.would_delete(ref, owner_labels or {}):
            found.append(ObjectDiff(ref, "deleted"))
    return found


async def _diff_one(
    manager: ApplyManager, obj: Mapping[str, Any], ignore: DriftIgnore | None
) -> ObjectDiff | None:
    try:
        plan = await manager.plan(obj, ignore=ignore, namespace_pending=True)
    except NoKindMatchError:  # its CRD is created by this build
        return ObjectDiff(ObjectRef.of(obj), "created")
    if plan.action == "created":
        return ObjectDiff(plan.ref, "created")
    # The content the dry-run shows: fields kubectl added, which the apply would take
    # over and so remove, are still in its answer and not shown.
    if plan.live is None or plan.merged is None or not drifted(plan.live, plan.merged):
        return None
    live, merged = plan.live, plan.merged
    if _is_secret(live):
        live, merged = _mask_changes(live, merged, "before"), _mask_changes(merged, live, "after")
    return ObjectDiff(plan.ref, "drifted", _printable(live), _printable(merged))


def _printable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without status and server bookkeeping, Secret values masked."""
    cleaned = copy.deepcopy({key: value for key, value in obj.items() if key != "status"})
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        for key in _NOISE:
            metadata.pop(key, None)
    if _is_secret(cleaned):
        for field in _SECRET_FIELDS:
            if isinstance(cleaned.get(field), dict):
                cleaned[field] = {
                    key: value if str(value).startswith(MASK) else MASK
                    for key, value in cleaned[field].items()
                }
    return cleaned


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _mask_changes(obj: Mapping[str, Any], other: Mapping[str, Any], side: str) -> dict[str, Any]:
    """``obj`` with each Secret value that differs from ``other``'s replaced by
    ``*** (side)``, so the diff shows which keys changed without showing a value."""
    marked = dict(obj)
    for field in _SECRET_FIELDS:
        values = obj.get(field)
        if not isinstance(values, Mapping):
            continue
        theirs = other.get(field) or {}
        marked[field] = {
            key: MASK if theirs.get(key) == value else f"{MASK} ({side})"
            for key, value in values.items()
        }
    return marked


def render_diff(change: ObjectDiff) -> str:
    """Flux's header (``► Kind/namespace/name drifted``) and, for a drifted object, a
    unified diff of the live object against the dry-run result."""
    header = f"► {change.ref} {change.action}\n"
    if change.action != "drifted":
        return header
    lines = difflib.unified_diff(
        _yaml(change.before).splitlines(keepends=True),
        _yaml(change.after).splitlines(keepends=True),
        fromfile=f"{change.ref} (cluster)",
        tofile=f"{change.ref} (applied)",
    )
    return header + "".join(lines)


def _yaml(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return ""
    return str(yaml.safe_dump(obj, sort_keys=True, default_flow_style=False))
