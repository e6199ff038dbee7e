"""How ``reconcile`` and ``resume`` read an object's status: whether the reconcile they
asked for has been handled, how it ended, and what to print about it.

A request is the ``reconcile.fluxcd.io/requestedAt`` annotation set to a fresh
timestamp; the daemon copies that value to ``status.lastHandledReconcileAt`` in the
status patch that ends the reconcile. Comparing the two (not just "did it change")
ties the outcome to this request: the status then describes a reconcile of the spec as
it was when the request was made (``resume`` patches both at once), whatever
``observedGeneration`` says after a failure, which does not advance it. The rest
follows the kstatus rules ``flux`` waits with: ``Reconciling=True`` is still in
progress, except ``ProgressingWithRetry``, a failure that will be retried later, which
``flux`` users see reported as the failure it is; ``Stalled=True`` has failed; otherwise
``Ready`` decides. Everything here is pure: the commands in :mod:`fluxd.cli.operate`
fetch, this module judges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REQUESTED_AT",
    "RETRYING",
    "Outcome",
    "SourceRef",
    "condition",
    "handled_outcome",
    "is_static",
    "requested_at",
    "source_of",
    "success_message",
]

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
#: The ``Reconciling`` reason of a failed reconcile that will be retried.
RETRYING = "ProgressingWithRetry"

_NANOS_PER_SECOND = 1_000_000_000


def requested_at(now_ns: int) -> str:
    """``now_ns`` (nanoseconds since the epoch) in Go's RFC3339Nano, in UTC, as ``flux``
    writes the annotation: trailing zeros of the fraction dropped, no fraction if zero."""
    import datetime

    seconds, nanos = divmod(now_ns, _NANOS_PER_SECOND)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    fraction = f"{nanos:09d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a handled reconcile ended: ``ok``, and ``message``: what it fetched or
    applied (``flux``'s success line), or why it failed (the condition's message)."""

    ok: bool
    message: str


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The status condition of ``type_``, if the object has one."""
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return None


def _is_true(obj: Mapping[str, Any], type_: str) -> bool:
    found = condition(obj, type_)
    return found is not None and found.get("status") == "True"


def handled_outcome(obj: Mapping[str, Any], requested: str) -> Outcome | None:
    """The outcome of the reconcile requested at ``requested``; ``None`` while it is not
    handled yet or still in progress."""
    status = obj.get("status") or {}
    if status.get("lastHandledReconcileAt") != requested:
        return None
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    reconciling = condition(obj, "Reconciling") or {}
    if reconciling.get("status") == "True" and reconciling.get("reason") != RETRYING:
        return None
    if _is_true(obj, "Stalled"):
        stalled = condition(obj, "Stalled") or {}
        return Outcome(False, str(stalled.get("message", "")))
    ready = condition(obj, "Ready")
    if ready is None:
        return Outcome(False, "status can't be determined")
    if ready.get("status") == "Unknown":
        return None
    if ready.get("status") != "True":
        return Outcome(False, str(ready.get("message", "")))
    return Outcome(True, success_message(obj))


def success_message(obj: Mapping[str, Any]) -> str:
    """What ``flux`` prints after a kind's successful reconcile."""
    kind = obj.get("kind")
    status = obj.get("status") or {}
    artifact = status.get("artifact") or {}
    if kind in ("GitRepository", "OCIRepository", "Bucket", "HelmChart", "HelmRepository"):
        return f"fetched revision {artifact.get('revision', '')}"
    if kind == "Kustomization":
        return f"applied revision {status.get('lastAppliedRevision', '')}"
    if kind == "HelmRelease":
        history = status.get("history") or []
        revision = (history[0].get("chartVersion") if history else None) or status.get(
            "lastAttemptedRevision", ""
        )
        return f"applied revision {revision}"
    if kind == "ImageRepository":
        scan = status.get("lastScanResult") or {}
        return f"scan fetched {scan.get('tagCount', 0)} tags"
    if kind == "ImagePolicy":
        return f"selected ref {_image_ref(status.get('latestRef') or {})}"
    if kind == "ImageUpdateAutomation":
        ready = condition(obj, "Ready") or {}
        return str(ready.get("message") or "automation not yet run")
    return f"{kind} reconciliation completed"


def _image_ref(ref: Mapping[str, Any]) -> str:
    text = f"{ref.get('name', '')}:{ref.get('tag', '')}"
    return f"{text}@{ref['digest']}" if ref.get("digest") else text


def is_static(obj: Mapping[str, Any]) -> bool:
    """Whether the object only holds data and is never reconciled (an OCI
    HelmRepository, as in Flux)."""
    spec = obj.get("spec") or {}
    return obj.get("kind") == "HelmRepository" and spec.get("type") == "oci"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """The source ``--with-source`` reconciles first."""

    kind: str
    name: str
    namespace: str
    #: Reconcile the source's own source too (a HelmRelease's HelmChart, as Flux does).
    with_source: bool = False


_SOURCE_KINDS = {
    "Kustomization": ("GitRepository", "OCIRepository", "Bucket"),
    "HelmChart": ("GitRepository", "HelmRepository", "Bucket"),
}


def source_of(obj: Mapping[str, Any]) -> SourceRef:
    """The source of a Kustomization, HelmChart or HelmRelease.

    Raises ``ValueError`` naming a source kind the CLI cannot reconcile.
    """
    kind = str(obj.get("kind"))
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "")
    spec = obj.get("spec") or {}
    if kind == "HelmRelease":
        chart_ref = spec.get("chartRef")
        if chart_ref:
            ref_kind = str(chart_ref.get("kind"))
            if ref_kind not in ("HelmChart", "OCIRepository"):
                raise ValueError(f"cannot reconcile source of kind {ref_kind}")
            return SourceRef(
                ref_kind,
                str(chart_ref.get("name")),
                str(chart_ref.get("namespace") or namespace),
                with_source=ref_kind == "HelmChart",
            )
        template = ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
        return SourceRef(
            "HelmChart",
            f"{namespace}-{metadata.get('name')}",
            str(template.get("namespace") or namespace),
            with_source=True,
        )
    ref = spec.get("sourceRef") or {}
    ref_kind = str(ref.get("kind"))
    if ref_kind not in _SOURCE_KINDS.get(kind, ()):
        raise ValueError(f"cannot reconcile source of kind {ref_kind}")
    ref_namespace = namespace if kind == "HelmChart" else ref.get("namespace") or namespace
    return SourceRef(ref_kind, str(ref.get("name")), str(ref_namespace))
