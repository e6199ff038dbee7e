"""Drift of a Helm release: the cluster's objects against the manifest Helm stored.

Flux's helm-controller (``driftDetection.mode`` warn or enabled) reads the objects of
the release's manifest, sets the metadata Helm sets on them (``app.kubernetes.io/
managed-by: Helm``, the ``meta.helm.sh/release-name|namespace`` annotations; the release
namespace on namespaced objects that name none), leaves out those annotated
``helm.toolkit.fluxcd.io/driftDetection: disabled``, and asks the API server for a
dry-run server-side apply of each as ``helm-controller``. An object that is gone is
``removed``; one whose dry-run differs from what is live is ``changed``, counted in
additions, changes and removals of fields as Flux's summary counts its JSON patch
operations. ``ignore`` rules (JSON pointers, optionally targeted) keep the live value.

Correcting the drift is applying the drifted objects again, with ownership forced: the
same staged apply a Kustomization uses (:class:`~fluxd.apply.manager.ApplyManager`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from fluxd.apply.changeset import ChangeSet
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef
from fluxd.apply.manager import ApplyManager

__all__ = ["DISABLED_ANNOTATION", "Drift", "correct", "detect", "release_objects"]

DISABLED_ANNOTATION = "helm.toolkit.fluxcd.io/driftDetection"


@dataclass(frozen=True)
class Drift:
    """One object of the release that is not as the manifest has it."""

    ref: ObjectRef
    body: dict[str, Any]
    removed: bool
    additions: int = 0
    changes: int = 0
    removals: int = 0

    def __str__(self) -> str:
        if self.removed:
            return f"{self.ref} removed"
        return (
            f"{self.ref} changed ({self.additions} additions, {self.changes} changes, "
            f"{self.removals} removals)"
        )


def release_objects(manifest: str, *, release: str, namespace: str) -> list[dict[str, Any]]:
    """The objects of a release manifest with the metadata Helm gives them, those
    excluded from drift detection left out."""
    objects = []
    for document in yaml.load_all(manifest, Loader=yaml.CSafeLoader):
        if not isinstance(document, dict) or not document.get("kind"):
            continue
        metadata = document.setdefault("metadata", {})
        annotations = metadata.get("annotations") or {}
        if annotations.get(DISABLED_ANNOTATION) == "disabled":
            continue
        metadata["labels"] = {
            **(metadata.get("labels") or {}),
            "app.kubernetes.io/managed-by": "Helm",
        }
        metadata["annotations"] = {
            **annotations,
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        }
        # Cluster-scoped kinds lose it again when planned (the API server knows which).
        metadata.setdefault("namespace", namespace)
        objects.append(document)
    return objects


async def detect(
    applier: ApplyManager, objects: Sequence[Mapping[str, Any]], ignore: DriftIgnore
) -> list[Drift]:
    """The drifted objects, in the order given. Raises :class:`ApplyError` when a dry-run
    is refused."""
    drifts = []
    for obj in objects:
        plan = await applier.plan(obj, ignore=ignore or None)
        if plan.action == "created":
            drifts.append(Drift(plan.ref, plan.body, removed=True))
        elif plan.action == "configured" and plan.live is not None and plan.merged is not None:
            counts = [0, 0, 0]
            _count(_compared(plan.live), _compared(plan.merged), counts)
            drifts.append(Drift(plan.ref, plan.body, False, *counts))
    return drifts


async def correct(applier: ApplyManager, drifts: Sequence[Drift], ignore: DriftIgnore) -> ChangeSet:
    """Apply the drifted objects again; raises :class:`ApplyError` with what was done."""
    return await applier.apply_all([drift.body for drift in drifts], ignore=ignore or None)


def _compared(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    compared = {key: value for key, value in obj.items() if key not in ("metadata", "status")}
    compared["metadata"] = {key: metadata.get(key) or {} for key in ("labels", "annotations")}
    return compared


def _count(live: Any, desired: Any, counts: list[int]) -> None:
    """Add to ``[additions, changes, removals]`` the operations turning live into desired."""
    if isinstance(live, dict) and isinstance(desired, dict):
        counts[0] += len(desired.keys() - live.keys())
        counts[2] += len(live.keys() - desired.keys())
        for key in live.keys() & desired.keys():
            _count(live[key], desired[key], counts)
    elif isinstance(live, list) and isinstance(desired, list) and len(live) == len(desired):
        for old, new in zip(live, desired, strict=True):
            _count(old, new, counts)
    elif live != desired:
        counts[1] += 1
