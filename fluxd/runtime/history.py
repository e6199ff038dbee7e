"""``status.history``: Flux's snapshots of the last reconciliations of an object.

Each snapshot stands for one outcome of one set of manifests: its ``digest`` (the
checksum ``sha256:<hex>`` of what was built), the reconcile ``lastReconciledStatus``
(``ReconciliationSucceeded`` or the failure reason), when it was first and last seen,
how long the last one took, how many reconciles ended that way, and ``metadata`` (the
source ``revision`` and, when the artifact has one, its ``originRevision``).

A reconcile ending with the digest and status of a known snapshot updates that snapshot
and moves it to the front; anything else is a new snapshot in front. At most
:data:`MAX_SNAPSHOTS` are kept, newest first, as Flux's ``meta.History.Upsert`` does, so
``kubectl get -o yaml`` answers "what ran here lately, and did it work".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from fluxd.api import format_duration
from fluxd.runtime.conditions import now_rfc3339
from fluxd.yaml import dump_documents

__all__ = ["MAX_SNAPSHOTS", "manifests_digest", "upsert"]

#: Flux's ``HistoryMaxSize``.
MAX_SNAPSHOTS = 5


def manifests_digest(objects: Sequence[Mapping[str, Any]]) -> str:
    """The ``sha256:<hex>`` checksum of the built objects, printed as one YAML stream."""
    text = dump_documents([dict(obj) for obj in objects])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def upsert(
    history: Sequence[Mapping[str, Any]],
    *,
    digest: str,
    duration_seconds: float,
    status: str,
    metadata: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``history`` with this reconcile recorded (a new list; ``history`` is not changed)."""
    now = now_rfc3339()
    update = {
        "lastReconciled": now,
        "lastReconciledDuration": format_duration(duration_seconds),
        "metadata": dict(metadata),
    }
    snapshots = [dict(snapshot) for snapshot in history]
    for index, snapshot in enumerate(snapshots):
        if snapshot.get("digest") == digest and snapshot.get("lastReconciledStatus") == status:
            total = int(snapshot.get("totalReconciliations") or 0) + 1
            found = {**snapshot, **update, "totalReconciliations": total}
            rest = snapshots[:index] + snapshots[index + 1 :]
            return [found, *rest][:MAX_SNAPSHOTS]
    created = {
        "digest": digest,
        "firstReconciled": now,
        **update,
        "lastReconciledStatus": status,
        "totalReconciliations": 1,
    }
    return [created, *snapshots][:MAX_SNAPSHOTS]
