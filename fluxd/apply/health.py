"""Health of applied objects: kstatus, computed on plain dicts, and a wait for it.

:func:`compute_status` answers the question Flux asks after an apply: has the cluster
caught up with what was written? It follows the rules of kstatus (``cli-utils``
``pkg/kstatus/status``), in the same order:

1. **generic** rules, for every object: a ``deletionTimestamp`` means ``Terminating``; a
   ``status.observedGeneration`` behind ``metadata.generation`` means ``InProgress``; a
   ``Reconciling=True`` condition means ``InProgress`` and ``Stalled=True`` means
   ``Failed`` (whichever comes first in the list);
2. **kind** rules for the built-in workloads whose controllers predate those conditions
   (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, PVC, Service, CRD, ...),
   reading their replica counters, phases and conditions;
3. otherwise the object is ``Current``: no status, or no condition kstatus knows, means
   there is nothing to wait for.

Two rules differ from upstream kstatus:

- a **Job** is ``Current`` only once it has completed, not while it runs (as Flux's own
  status reader for Jobs has it: a migration Job in a Kustomization has to *finish*);
- fluxd honours a **Ready** condition on objects without a kind rule, where kstatus would
  call them ``Current``: ``Ready=False`` or ``Unknown`` is ``InProgress`` (a Flux object
  retrying a transient failure reports exactly that; terminal failures carry
  ``Stalled``, which kstatus already reads as ``Failed``). Flux's own kinds
  (``*.toolkit.fluxcd.io``) that have no ``observedGeneration`` yet are ``InProgress``:
  their controller has not looked at them, so an empty status says nothing.

:func:`wait_for_health` polls objects until all are ``Current``, failing early when one is
``Failed`` and with a message naming every straggler on timeout, worded as Flux words it.

A Kustomization's ``healthCheckExprs`` replace these rules for the kinds they name
(:func:`custom_rules`): Flux's RFC-0009 order is an ``observedGeneration`` check, then the
``inProgress``, ``failed`` and ``current`` expressions, the first true one deciding, and
``InProgress`` when none is. The expressions are CEL, evaluated by the
``common-expression-language`` package (imported only when a Kustomization has some): it
covers CEL's standard macros and functions (``has``, ``exists``, ``all``, ``filter``,
``map``, cross-type numeric comparison) but not cel-go's optional syntax (``a.?b``,
``orValue``) nor its string extensions, which fail with an "invalid CEL expression" error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import aiohttp

from fluxd import cel
from fluxd.api import CustomHealthCheck
from fluxd.cel import Predicate
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import Resource

__all__ = [
    "HealthCheckError",
    "HealthRef",
    "ObjectHealth",
    "ObjectStatus",
    "Predicate",
    "Status",
    "StatusRule",
    "compute_status",
    "custom_rules",
    "expression_rule",
    "read_status",
    "settled",
    "wait_for_health",
]

#: How long kstatus lets a pod stay unschedulable before calling it ``Failed``.
SCHEDULE_WINDOW = 15.0
_MAX_INT32 = 2**31 - 1


class Status(StrEnum):
    """kstatus' verdicts; they compare equal to their names (``Status.CURRENT == "Current"``)."""

    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """The verdict on one object and why, in kstatus' words."""

    status: Status
    message: str


#: Tells the health of one object; keyed by ``(group, kind)`` in a rules mapping.
StatusRule = Callable[[Mapping[str, Any]], ObjectStatus]


class HealthRef(NamedTuple):
    """Where to read an object: its REST collection, namespace, name, and kind (for messages)."""

    resource: Resource
    namespace: str | None
    name: str
    kind: str

    def describe(self) -> str:
        """``Kind/namespace/name``, or ``Kind/name`` when cluster-scoped, as Flux writes it."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class ObjectHealth:
    """The last status seen for one object while waiting."""

    ref: HealthRef
    status: ObjectStatus

    def describe(self) -> str:
        text = f"{self.ref.describe()} status: '{self.status.status}'"
        return f"{text}: {self.status.message}" if self.status.message else text


class HealthCheckError(Exception):
    """Objects did not become ``Current``: the wait timed out or one of them ``Failed``.

    ``pending`` lists every object that was not ``Current`` at the last look; ``failed``
    tells whether the wait stopped early on a ``Failed`` object rather than timing out.
    """

    def __init__(self, pending: Sequence[ObjectHealth], *, failed: bool) -> None:
        self.pending = tuple(pending)
        self.failed = failed
        listed = ", ".join(item.describe() for item in self.pending)
        if failed:
            super().__init__(f"failed early due to stalled resources: [{listed}]")
        else:
            super().__init__(f"timeout waiting for: [{listed}]")


# -- field access with kstatus' leniency: a missing or mistyped field is its default --------


def _field(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _int(obj: Mapping[str, Any], path: str, default: int) -> int:
    value = _field(obj, path)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(obj: Mapping[str, Any], path: str, default: str) -> str:
    value = _field(obj, path)
    return value if isinstance(value, str) else default


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = _field(obj, "status.conditions")
    if not isinstance(found, list):
        return []
    return [c for c in found if isinstance(c, Mapping)]


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in _conditions(obj) if c.get("type") == type_), None)


def _has_true(obj: Mapping[str, Any], type_: str) -> bool:
    found = _condition(obj, type_)
    return found is not None and found.get("status") == "True"


def _current(message: str) -> ObjectStatus:
    return ObjectStatus(Status.CURRENT, message)


def _in_progress(message: str) -> ObjectStatus:
    return ObjectStatus(Status.IN_PROGRESS, message)


def _failed(message: str) -> ObjectStatus:
    return ObjectStatus(Status.FAILED, message)


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind") or "")


# -- generic rules ------------------------------------------------------------------------


def _generation_not_observed(obj: Mapping[str, Any]) -> ObjectStatus | None:
    # Objects without status.observedGeneration cannot be checked this way; they pass.
    generation = _field(obj, "metadata.generation")
    observed = _field(obj, "status.observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and generation != observed:
        kind = _group_kind(obj)[1]
        return _in_progress(
            f"{kind} generation is {generation}, but latest observed generation is {observed}"
        )
    return None


def _generic(obj: Mapping[str, Any]) -> ObjectStatus | None:
    if _field(obj, "metadata.deletionTimestamp"):
        return ObjectStatus(Status.TERMINATING, "Resource scheduled for deletion")
    stale = _generation_not_observed(obj)
    if stale is not None:
        return stale
    for condition in _conditions(obj):
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Reconciling":
            return _in_progress(str(condition.get("message") or ""))
        if condition.get("type") == "Stalled":
            return _failed(str(condition.get("message") or ""))
    return None


# -- kind rules ---------------------------------------------------------------------------


def _always_current(_: Mapping[str, Any]) -> ObjectStatus:
    return _current("Resource is always ready")


def _deployment(obj: Mapping[str, Any]) -> ObjectStatus:
    # Without progressDeadlineSeconds the controller never reports progress, so the
    # Progressing condition cannot be waited for.
    progressing = _int(obj, "spec.progressDeadlineSeconds", _MAX_INT32) == _MAX_INT32
    available = False
    for condition in _conditions(obj):
        if condition.get("type") == "Progressing":
            if condition.get("reason") == "ProgressDeadlineExceeded":
                return _failed("Progress deadline exceeded")
            if condition.get("status") == "True" and (
                condition.get("reason") == "NewReplicaSetAvailable"
            ):
                progressing = True
        elif condition.get("type") == "Available" and condition.get("status") == "True":
            available = True

    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    available_replicas = _int(obj, "status.availableReplicas", 0)
    if spec > replicas:
        return _in_progress(f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return _in_progress(f"Updated: {updated}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    if updated > available_replicas:
        return _in_progress(f"Available: {available_replicas}/{updated}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSet not Available")
    if not available:
        return _in_progress("Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: Mapping[str, Any]) -> ObjectStatus:
    # The StatefulSet controller sets no conditions: only counters and revisions tell.
    if _str(obj, "spec.updateStrategy.type", "") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec.replicas", 1)
    ready = _int(obj, "status.readyReplicas", 0)
    current = _int(obj, "status.currentReplicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    replicas = _int(obj, "status.replicas", 0)
    partition = _int(obj, "spec.updateStrategy.rollingUpdate.partition", -1)
    if spec > replicas:
        return _in_progress(f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return _in_progress(f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress(f"current: {current}/{spec}")
    if _str(obj, "status.currentRevision", "") != _str(obj, "status.updateRevision", ""):
        return _in_progress("Waiting for updated revision to match current")
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemonset(obj: Mapping[str, Any]) -> ObjectStatus:
    # The generic check skips objects without observedGeneration; a DaemonSet the
    # controller has seen always has it, so its absence means "not seen yet".
    kind = _group_kind(obj)[1]
    if not isinstance(_field(obj, "metadata.generation"), int):
        return _in_progress(f"{kind} metadata.generation not found")
    if not isinstance(_field(obj, "status.observedGeneration"), int):
        return _in_progress(f"{kind} status.observedGeneration not found")
    desired = _int(obj, "status.desiredNumberScheduled", -1)
    current = _int(obj, "status.currentNumberScheduled", 0)
    updated = _int(obj, "status.updatedNumberScheduled", 0)
    available = _int(obj, "status.numberAvailable", 0)
    ready = _int(obj, "status.numberReady", 0)
    if desired == -1:
        return _in_progress("Missing .status.desiredNumberScheduled")
    if desired > current:
        return _in_progress(f"Current: {current}/{desired}")
    if desired > updated:
        return _in_progress(f"Updated: {updated}/{desired}")
    if desired > available:
        return _in_progress(f"Available: {available}/{desired}")
    if desired > ready:
        return _in_progress(f"Ready: {ready}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replicaset(obj: Mapping[str, Any]) -> ObjectStatus:
    if _has_true(obj, "ReplicaFailure"):
        return _in_progress("Replica Failure condition. Check Pods")
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    available = _int(obj, "status.availableReplicas", 0)
    labelled = _int(obj, "status.fullyLabeledReplicas", 0)
    if spec > labelled:
        return _in_progress(f"Labelled: {labelled}/{spec}")
    if spec > available:
        return _in_progress(f"Available: {available}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {replicas}")


def _created_at(obj: Mapping[str, Any]) -> float | None:
    stamp = _str(obj, "metadata.creationTimestamp", "")
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _pod(obj: Mapping[str, Any]) -> ObjectStatus:
    phase = _str(obj, "status.phase", "")
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        # kstatus: a finished pod is settled, whatever its outcome; its owner decides.
        return _current("Pod has completed, but not successfully")
    if phase == "Running":
        if _has_true(obj, "Ready"):
            return _current("Pod is Ready")
        looping = [
            str(cs.get("name"))
            for cs in _field(obj, "status.containerStatuses") or []
            if isinstance(cs, Mapping)
            and _str(cs, "state.waiting.reason", "") == "CrashLoopBackOff"
        ]
        if looping:
            return _failed(f"Containers in CrashLoop state: {','.join(looping)}")
        return _in_progress("Pod is running but is not Ready")
    if phase == "Pending":
        scheduled = _condition(obj, "PodScheduled")
        if (
            scheduled is not None
            and scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
        ):
            created = _created_at(obj)
            if created is not None and time.time() - SCHEDULE_WINDOW < created:
                return _in_progress("Pod has not been scheduled")
            return _failed("Pod could not be scheduled")
        return _in_progress("Pod is in the Pending phase")
    if not phase:
        return _in_progress("Pod phase not available")
    return ObjectStatus(Status.UNKNOWN, f"unknown phase {phase}")


def _job(obj: Mapping[str, Any]) -> ObjectStatus:
    parallelism = _int(obj, "spec.parallelism", 1)
    completions = _int(obj, "spec.completions", parallelism)
    succeeded = _int(obj, "status.succeeded", 0)
    failed = _int(obj, "status.failed", 0)
    for condition in _conditions(obj):
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if condition.get("type") == "Failed":
            return _failed(f"Job Failed. failed: {failed}/{completions}")
    return _in_progress("Job in progress")


def _pvc(obj: Mapping[str, Any]) -> ObjectStatus:
    phase = _str(obj, "status.phase", "unknown")
    if phase != "Bound":
        return _in_progress(f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


def _service(obj: Mapping[str, Any]) -> ObjectStatus:
    # As kstatus: a LoadBalancer Service needs its cluster IP, not an external address,
    # or clusters without a load-balancer controller could never finish a health check.
    if _str(obj, "spec.type", "ClusterIP") == "LoadBalancer" and not _str(
        obj, "spec.clusterIP", ""
    ):
        return _in_progress("ClusterIP not set. Service type: LoadBalancer")
    return _current("Service is ready")


def _crd(obj: Mapping[str, Any]) -> ObjectStatus:
    for condition in _conditions(obj):
        kind, state = condition.get("type"), condition.get("status")
        if kind == "NamesAccepted" and state == "False":
            return _failed(str(condition.get("message") or ""))
        if kind == "Established":
            if state == "False" and condition.get("reason") != "Installing":
                return _failed(str(condition.get("message") or ""))
            if state == "True":
                return _current("CRD is established")
    return _in_progress("Install in progress")


def _pdb(_: Mapping[str, Any]) -> ObjectStatus:
    # Reached only once the disruption controller observed the current generation.
    return _current("AllowedDisruptions has been computed.")


_KIND_RULES: dict[tuple[str, str], StatusRule] = {
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("", "Secret"): _always_current,
    ("", "ConfigMap"): _always_current,
    ("", "PersistentVolumeClaim"): _pvc,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("batch", "CronJob"): _always_current,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}

_FLUX_GROUP_SUFFIX = ".toolkit.fluxcd.io"


def _ready_condition(obj: Mapping[str, Any]) -> ObjectStatus | None:
    group, kind = _group_kind(obj)
    if group.endswith(_FLUX_GROUP_SUFFIX) and not isinstance(
        _field(obj, "status.observedGeneration"), int
    ):
        return _in_progress(f"{kind} status.observedGeneration not found")
    ready = _condition(obj, "Ready")
    if ready is None:
        return None
    message = str(ready.get("message") or "")
    if ready.get("status") == "True":
        return _current(message or "Resource is Ready")
    return _in_progress(message or f"Ready condition is {ready.get('status') or 'Unknown'}")


def compute_status(
    obj: Mapping[str, Any], rules: Mapping[tuple[str, str], StatusRule] | None = None
) -> ObjectStatus:
    """kstatus' verdict on one object as read from the API server (with its ``status``).

    ``rules`` (from :func:`custom_rules`) take over whole kinds, built-in ones included.
    """
    custom = _custom_rule(obj, rules) if rules else None
    if custom is not None:
        return custom(obj)
    found = _generic(obj)
    if found is not None:
        return found
    rule = _KIND_RULES.get(_group_kind(obj))
    if rule is not None:
        return rule(obj)
    return _ready_condition(obj) or _current("Resource is current")


def _custom_rule(
    obj: Mapping[str, Any], rules: Mapping[tuple[str, str], StatusRule]
) -> StatusRule | None:
    group, kind = _group_kind(obj)
    return rules.get((group, kind)) or rules.get((group, ""))


# -- healthCheckExprs ---------------------------------------------------------------------


def expression_rule(
    *, current: Predicate, in_progress: Predicate | None = None, failed: Predicate | None = None
) -> StatusRule:
    """A rule from health expressions, with Flux's RFC-0009 semantics.

    An expression that cannot be evaluated (it names a field the object does not have yet)
    makes the object ``Unknown``: it is waited for until the timeout, as in Flux.
    """
    ordered = (
        ("inProgress", in_progress, Status.IN_PROGRESS),
        ("failed", failed, Status.FAILED),
        ("current", current, Status.CURRENT),
    )

    def rule(obj: Mapping[str, Any]) -> ObjectStatus:
        stale = _generation_not_observed(obj)
        if stale is not None:
            return stale
        for name, predicate, verdict in ordered:
            if predicate is None:
                continue
            try:
                hit = predicate(obj)
            except Exception as error:  # a user's expression: any failure is "not known yet"
                return ObjectStatus(Status.UNKNOWN, f"{name} expression: {error}")
            if hit:
                return ObjectStatus(verdict, f"{name} expression is true")
        return _in_progress("no health check expression is true yet")

    return rule


def custom_rules(
    checks: Iterable[CustomHealthCheck],
    compile_expression: Callable[[str], Predicate] = cel.compile_predicate,
) -> dict[tuple[str, str], StatusRule]:
    """Rules for ``compute_status`` from a Kustomization's ``healthCheckExprs``.

    Kinds match by API group, whatever the version, as Flux's status readers do; a check
    without ``kind`` covers every kind of its group that has no check of its own. Raises
    :class:`ValueError` for an expression that does not compile (Flux's terminal
    ``InvalidCELExpression``) and for two checks of one group and kind.
    """
    rules: dict[tuple[str, str], StatusRule] = {}
    for check in checks:
        group = (check.api_version or "").rpartition("/")[0]
        if (group, check.kind) in rules:
            what = f"kind {check.kind}" if check.kind else "every kind"
            raise ValueError(
                f"healthCheckExprs: more than one check for {what} of apiVersion "
                f"{check.api_version}"
            )
        rules[(group, check.kind)] = expression_rule(
            current=compile_expression(check.current),
            in_progress=compile_expression(check.in_progress) if check.in_progress else None,
            failed=compile_expression(check.failed) if check.failed else None,
        )
    return rules


# -- waiting ------------------------------------------------------------------------------


async def read_status(
    api: ApiClient, ref: HealthRef, rules: Mapping[tuple[str, str], StatusRule] | None
) -> ObjectStatus:
    """The object's verdict as the API server has it now (``Unknown`` when unreadable)."""
    try:
        obj = await client.get(api, ref.resource, ref.namespace, ref.name, missing_ok=True)
    except client.ApiError as error:
        return ObjectStatus(Status.UNKNOWN, f"reading it failed: {error}")
    except (aiohttp.ClientError, TimeoutError) as error:
        return ObjectStatus(Status.UNKNOWN, f"reading it failed: {error or type(error).__name__}")
    if obj is None:
        return ObjectStatus(Status.NOT_FOUND, "Resource not found")
    return compute_status(obj, rules)


def settled(pending: Sequence[ObjectHealth], remaining: float) -> bool:
    """A wait's verdict after one look: True when nothing is ``pending``; raises
    :class:`HealthCheckError` when an object ``Failed`` or no time is ``remaining``;
    False to look again."""
    if not pending:
        return True
    if any(item.status.status == Status.FAILED for item in pending):
        raise HealthCheckError(pending, failed=True)
    if remaining <= 0:
        raise HealthCheckError(pending, failed=False)
    return False


async def wait_for_health(
    api: ApiClient,
    refs: Sequence[tuple[Resource, str | None, str, str]],
    *,
    timeout: float,  # noqa: ASYNC109 - the deadline is Flux's spec.timeout, part of the result
    poll: float = 0.5,
    rules: Mapping[tuple[str, str], StatusRule] | None = None,
) -> None:
    """Poll the objects until every one is ``Current``.

    ``refs`` are ``(resource, namespace, name, kind)`` (a :class:`HealthRef` is one).
    Raises :class:`HealthCheckError` when ``timeout`` seconds pass first, or at once when an
    object is ``Failed`` (Flux's "failed early"); its message lists each object not
    ``Current`` with its status and kstatus' message. Objects are re-read on every round,
    so one that regresses is waited for again. Cancelling the caller (a newer revision to
    apply) stops the wait at its next await: nothing here shields it. ``rules`` are
    passed to :func:`compute_status` (``healthCheckExprs``).
    """
    targets = [HealthRef(*ref) for ref in refs]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Until an object has been read once, all that is known is that it has not answered.
    statuses = [ObjectStatus(Status.UNKNOWN, "no answer from the API server")] * len(targets)
    while targets:
        # A slow API server must not stretch the wait past its deadline: a round cut short
        # keeps what the previous one saw.
        try:
            async with asyncio.timeout_at(deadline):
                statuses = await asyncio.gather(*(read_status(api, ref, rules) for ref in targets))
        except TimeoutError:
            pass
        pending = [
            ObjectHealth(ref, found)
            for ref, found in zip(targets, statuses, strict=True)
            if found.status != Status.CURRENT
        ]
        remaining = deadline - loop.time()
        if settled(pending, remaining):
            return
        await asyncio.sleep(min(poll, remaining))
