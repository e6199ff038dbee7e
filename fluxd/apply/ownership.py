"""Taking over the fields ``kubectl`` (or Flux) wrote, so the source decides them again.

Server-side apply only removes a field the applier owns and no longer sends. A field
someone added with ``kubectl edit``, ``kubectl patch``, ``kubectl label`` or a
client-side ``kubectl apply`` is owned by that kubectl manager, so a plain apply would
leave it in place forever. Flux's kustomize-controller hands such fields to its own field
manager before applying; this module does the same computation:

- the managers taken over are kubectl's (``kubectl``, ``kubectl-edit``,
  ``kubectl-client-side-apply``, ``kubectl-patch``, ... with an ``Update`` operation,
  and ``kubectl`` server-side applies), ``before-first-apply`` (fields written before
  server-side apply tracked them), the applier's own ``Update`` entries (what older
  controller versions wrote without server-side apply) and Flux's
  ``kustomize-controller`` (fluxd adopts its objects when it replaces Flux);
- their field sets are merged into the applier's ``Apply`` entry (one is created when
  there is none) and their entries dropped; ``status`` subresource entries stay;
- (the apply manager leaves alone objects annotated ``kustomize.toolkit.fluxcd.io/ssa:
  Merge``, Flux's opt-out for fields set by hand on purpose).

The apply that follows then removes whatever of those fields the source does not set,
the ``kubectl.kubernetes.io/last-applied-configuration`` annotation included.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["takeover"]

_PREFIX_MANAGERS = (("kubectl", "Update"), ("kubectl", "Apply"))
_EXACT_MANAGERS = (
    ("before-first-apply", "Update"),
    ("kustomize-controller", "Apply"),
    ("kustomize-controller", "Update"),
)


def takeover(live: Mapping[str, Any], field_manager: str) -> list[dict[str, Any]] | None:
    """``live``'s ``managedFields`` with the taken-over entries merged into
    ``field_manager``'s ``Apply`` entry; ``None`` when no entry is to be taken over."""
    entries: list[dict[str, Any]] = list((live.get("metadata") or {}).get("managedFields") or [])
    taken = [entry for entry in entries if _taken(entry, field_manager)]
    if not taken:
        return None
    kept = [copy.deepcopy(entry) for entry in entries if not _taken(entry, field_manager)]
    ours = next((entry for entry in kept if _is_ours(entry, field_manager)), None)
    if ours is None:
        ours = {
            "manager": field_manager,
            "operation": "Apply",
            "apiVersion": str(live.get("apiVersion") or ""),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        kept.append(ours)
    fields = ours.setdefault("fieldsV1", {})
    for entry in taken:
        _merge(fields, entry.get("fieldsV1") or {})
    return kept


def _taken(entry: Mapping[str, Any], field_manager: str) -> bool:
    if entry.get("subresource") == "status":
        return False
    manager = str(entry.get("manager") or "")
    operation = entry.get("operation")
    return (
        any(manager.startswith(name) and operation == op for name, op in _PREFIX_MANAGERS)
        or (manager, operation) in _EXACT_MANAGERS
        or (manager == field_manager and operation == "Update")
    )


def _is_ours(entry: Mapping[str, Any], field_manager: str) -> bool:
    return (
        entry.get("manager") == field_manager
        and entry.get("operation") == "Apply"
        and not entry.get("subresource")
    )


def _merge(into: dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Union of two FieldsV1 sets (nested maps whose leaves are empty maps)."""
    for key, value in fields.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
