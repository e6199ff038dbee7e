"""What applying objects would change, without changing anything: ``fluxd diff``.

Each object goes through the same dry-run the apply manager plans with (server-side
apply, ``dryRun=All``, the manager's field manager, ownership forced), and the answer is
compared to the live object the same way drift is detected, so ``fluxd diff`` reports
drift exactly when the next reconcile would write. Objects the manager would skip
(``ssa: Ignore``, ``reconcile: disabled``, ``ssa: IfNotPresent`` on an existing object)
are skipped here too. Objects of the previous inventory that a prune would delete are
reported as ``deleted`` (only those that exist, still carry the owner labels and are not
``prune: disabled``).

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

from fluxd.apply.errors import ApplyError
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef, apply_order
from fluxd.apply.manager import (
    EXCLUDED,
    IF_NOT_PRESENT,
    PRUNE_EXCLUDED,
    ApplyManager,
    any_in_metadata,
    drifted,
    dry_run_failure,
    server_words,
)
from fluxd.apply.mapper import NoKindMatchError
from fluxd.kube import client

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
        if await _would_delete(manager, ref, owner_labels or {}):
            found.append(ObjectDiff(ref, "deleted"))
    return found


async def _diff_one(
    manager: ApplyManager, obj: Mapping[str, Any], ignore: DriftIgnore | None
) -> ObjectDiff | None:
    ref = ObjectRef.of(obj)
    if not (ref.kind and ref.version and ref.name):
        raise ApplyError(
            f"{ref}: not a Kubernetes object: apiVersion, kind and metadata.name are required"
        )
    try:
        resource = await manager.mapper.resource_for(ref.api_version, ref.kind)
    except NoKindMatchError:
        return ObjectDiff(ref, "created")
    body = copy.deepcopy(dict(obj))
    if not resource.namespaced:
        body.setdefault("metadata", {}).pop("namespace", None)
        ref = dataclasses.replace(ref, namespace="")
    elif not ref.namespace:
        raise ApplyError(
            f"{ref} namespace not specified: a {ref.kind} lives in a namespace; set "
            "metadata.namespace or the Kustomization's spec.targetNamespace"
        )
    try:
        live = await manager._get(resource, ref)
    except client.ApiError as error:
        raise ApplyError(f"{ref} query failed: {server_words(error)}") from error
    if any_in_metadata(body, EXCLUDED) or (live is not None and any_in_metadata(live, EXCLUDED)):
        return None
    if live is not None and any_in_metadata(body, IF_NOT_PRESENT):
        return None
    if ignore and live is not None:
        body = ignore.keep_live(body, live)
    try:
        merged = await manager._apply(resource, ref, body, dry_run=True)
    except client.ApiError as error:
        if live is None and error.not_found:  # its namespace is created by this build
            return ObjectDiff(ref, "created")
        raise ApplyError(dry_run_failure(ref, error)) from error
    if live is None:
        return ObjectDiff(ref, "created")
    if not drifted(live, merged):
        return None
    if _is_secret(live):
        live, merged = _mask_changes(live, merged, "before"), _mask_changes(merged, live, "after")
    return ObjectDiff(ref, "drifted", _printable(live), _printable(merged))


async def _would_delete(
    manager: ApplyManager, ref: ObjectRef, owner_labels: Mapping[str, str]
) -> bool:
    try:
        resource = await manager.mapper.resource_for(ref.api_version, ref.kind)
    except NoKindMatchError:
        return False
    try:
        live = await manager._get(resource, ref)
    except client.ApiError as error:
        raise ApplyError(f"{ref} query failed: {server_words(error)}") from error
    if live is None:
        return False
    labels = (live.get("metadata") or {}).get("labels") or {}
    if any(labels.get(key) != value for key, value in owner_labels.items()):
        return False
    return not any_in_metadata(live, PRUNE_EXCLUDED)


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
