"""Status as the driver writes it: the one merge patch per reconcile, and what a status says.

``observedGeneration``, conditions and kind fields are computed on a copy of the live
status; :func:`status_patch` turns the difference into a single merge patch, so a no-op
reconcile writes nothing. :func:`readiness` is what dependents wait on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluxd.runtime import conditions

__all__ = ["readiness", "ready_label", "revision", "status_patch"]


def status_patch(original: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``original`` into ``desired`` at the top level.

    Lists (conditions) are replaced whole, which is what merge patch does anyway; a key that
    disappeared becomes ``None`` so the API server removes it. Empty when nothing changed,
    so a no-op reconcile writes nothing.
    """
    patch: dict[str, Any] = {
        name: value for name, value in desired.items() if original.get(name) != value
    }
    patch.update({name: None for name in original if name not in desired})
    return patch


def readiness(status: Mapping[str, Any]) -> tuple[str, str, object]:
    """What objects waiting on this one (``dependsOn``) compare: Ready, revision, generation."""
    # The generation counts too: a dependency Ready again at a new generation, with the
    # same revision, must wake the objects waiting for it.
    return ready_label(status), revision(status), status.get("observedGeneration")


def ready_label(status: Mapping[str, Any]) -> str:
    """The ``Ready`` condition's status (``True``/``False``/``Unknown``), as metrics label it."""
    condition = conditions.get(status, conditions.READY)
    return condition["status"] if condition else "Unknown"


def revision(status: Mapping[str, Any]) -> str:
    """The revision a status reports: a source's artifact, else the last one applied."""
    artifact = status.get("artifact") or {}
    return str(artifact.get("revision") or status.get("lastAppliedRevision") or "")
