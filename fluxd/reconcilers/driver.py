"""The reconcile driver every kind shares: finalizer, suspend, conditions, status, events.

A kind's reconciler is a short ordered list of steps (fetch -> build -> apply ...). It
reads the object, does its work, records what it produced on the context (status fields,
the Ready message, events) and raises :class:`ReconcileError` with a Flux reason when a
step fails. Everything around that is the same for every kind, and lives here:

1. an object that is gone is forgotten; one being deleted runs the kind's ``finalize``
   and then loses fluxd's finalizer (``finalizers.fluxcd.io``, Flux's own, so objects
   keep working across a swap between Flux and fluxd). A suspended object skips
   ``finalize``, as Flux does: deleting it leaves what it applied or installed running.
   An object that only holds data for others (:meth:`Reconciler.static`) loses fluxd's
   finalizer and status and is left alone;
2. ``spec.suspend: true`` skips the work and keeps the last status;
3. ``Reconciling`` is written for a new generation whose reconcile is still at work after
   :data:`PROGRESS_DELAY`, so ``kubectl get`` shows progress on long applies and waits;
4. success sets ``Ready=True`` and removes ``Reconciling``/``Stalled``; a retryable error
   sets ``Ready=False`` with the error's reason and ``Reconciling=ProgressingWithRetry``;
   an error that retrying cannot fix sets ``Stalled`` and waits for a spec change;
5. the status is patched through the status subresource in a ``finally``, shielded from
   cancellation, so every exit leaves an honest condition; ``observedGeneration`` and
   ``lastHandledReconcileAt`` follow Flux's rules;
6. a Warning Event for each failure, metrics for each outcome.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

import aiohttp
import anyio
import structlog

from fluxd.api import KindInfo, SpecError, parse_duration
from fluxd.kube.client import ApiError
from fluxd.kube.objects import EventType, ObjectApi
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import Metrics
from fluxd.runtime.scheduler import Outcome
from fluxd.runtime.status import readiness, ready_label, revision, status_patch

__all__ = [
    "FINALIZER",
    "REQUESTED_AT_ANNOTATION",
    "Context",
    "ReconcileDriver",
    "Reconciler",
]

FINALIZER: Final = "finalizers.fluxcd.io"
REQUESTED_AT_ANNOTATION: Final = "reconcile.fluxcd.io/requestedAt"
#: How long a reconcile of a new generation runs before its ``Reconciling`` status is
#: written: shorter ones go straight to their final status, one write instead of two.
PROGRESS_DELAY: Final = 2.0
DEFAULT_INTERVAL: Final = 60.0

log = structlog.get_logger(__name__)


class Periodic(Protocol):
    """What every kind's spec has: the interval between two reconciles."""

    @property
    def interval(self) -> str | None: ...


#: A kind's spec type (``GitRepositorySpec``...): reconcilers and their contexts are
#: generic over it, so a misspelt spec attribute is a type error, not a runtime one.
SpecT = TypeVar("SpecT", bound=Periodic)


@dataclass
class Context(Generic[SpecT]):
    """What one reconcile of one object works on; the driver turns it into status."""

    key: ObjectKey
    obj: dict[str, Any]
    spec: SpecT
    status: dict[str, Any]
    log: structlog.stdlib.BoundLogger
    ready_reason: str = "Succeeded"
    ready_message: str = ""
    events: list[tuple[EventType, str, str, dict[str, str]]] = field(default_factory=list)
    #: Keys whose dependents wake once the status is written: consumers that read this
    #: object's status (an ImagePolicy's ``latestRef``) then see the new one.
    wakes: list[ObjectKey] = field(default_factory=list)
    #: Annotations of the Warning Event of a failure, once the reconcile knows them (the
    #: revision it was applying, as Flux's controllers attach it: commit statuses need it).
    failure_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        return int(self.obj["metadata"].get("generation", 0))

    def event(
        self,
        type_: EventType,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Queue an Event; the driver records it after the status is written."""
        self.events.append((type_, reason, message, dict(annotations or {})))


class Reconciler(ABC, Generic[SpecT]):
    """One kind's steps. Subclasses set ``kind`` and implement ``reconcile``."""

    kind: KindInfo[SpecT]
    #: Failure conditions (negative polarity, e.g. ``FetchFailed``) removed on success.
    negative_conditions: ClassVar[tuple[str, ...]] = ()
    #: Whether objects of this kind are named in others' ``dependsOn``: those wait for it
    #: to be Ready at its latest revision, so every change of its readiness wakes them.
    #: (A source wakes its consumers when it stores a new artifact instead.)
    depended_on: ClassVar[bool] = False
    #: Status fields that change on every run (bookkeeping such as ``history``): a run
    #: that changes nothing else writes nothing, so periodic no-op reconciles cost no
    #: API write and wake no watcher.
    incidental_status: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    async def reconcile(self, ctx: Context[SpecT]) -> None:
        """Make the world match ``ctx.spec``; raise :class:`ReconcileError` on failure."""

    async def finalize(self, obj: dict[str, Any]) -> None:
        """Clean up what the object owns before it is deleted (default: nothing)."""

    def forget(self, key: ObjectKey) -> None:
        """Drop in-memory state of a deleted object (default: nothing)."""

    def static(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` only holds data for other objects (an OCI HelmRepository):
        fluxd then keeps no finalizer and no status on it and never reconciles it, as
        Flux does. Default: never."""
        return False

    def interval(self, spec: SpecT) -> float:
        """Seconds until the next periodic reconcile (``spec.interval``; a minute when the
        kind lets it be unset, as Flux's HelmRepository does)."""
        return parse_duration(spec.interval) if spec.interval else DEFAULT_INTERVAL

    def retry_interval(self, spec: SpecT) -> float | None:
        """Seconds until the retry after a failure; ``None`` (the default) leaves the delay
        to the scheduler's exponential backoff. Kinds with ``spec.retryInterval`` override
        it, as Flux requeues them."""
        return None


class ReconcileDriver(Generic[SpecT]):
    """Runs a :class:`Reconciler` for one key at a time, as the scheduler's handler."""

    def __init__(
        self,
        reconciler: Reconciler[SpecT],
        *,
        objects: ObjectApi,
        metrics: Metrics,
        wake_dependents: Callable[[ObjectKey], object] = lambda _: None,
        status_timeout: float = 10.0,
    ) -> None:
        self.reconciler = reconciler
        self.kind = reconciler.kind
        self.objects = objects
        self.metrics = metrics
        self.wake_dependents = wake_dependents
        self.status_timeout = status_timeout

    async def __call__(self, key: ObjectKey) -> Outcome:
        obj = self.objects.cached(self.kind, key.namespace, key.name)
        if obj is None:
            self.reconciler.forget(key)
            self.metrics.forget(key)
            return Outcome.idle()
        metadata = obj["metadata"]
        bound = log.bind(kind=key.kind, namespace=key.namespace, name=key.name)
        if metadata.get("deletionTimestamp"):
            return await self._delete(key, obj, bound)
        suspended = bool((obj.get("spec") or {}).get("suspend"))
        self.metrics.set_state(
            key,
            ready=ready_label(obj.get("status") or {}),
            suspended=suspended,
            revision=revision(obj.get("status") or {}),
        )
        if suspended:
            bound.info("reconciliation is suspended for this object")
            return Outcome.idle()
        if self.reconciler.static(obj):
            await self._make_static(obj)
            return Outcome.idle()
        if FINALIZER not in (metadata.get("finalizers") or []):
            await self.objects.add_finalizer(self.kind, obj, FINALIZER)
        return await self._reconcile(key, obj, bound)

    async def _make_static(self, obj: dict[str, Any]) -> None:
        """Drop fluxd's finalizer and the whole status of an object it does not reconcile."""
        if FINALIZER in (obj["metadata"].get("finalizers") or []):
            await self.objects.remove_finalizer(self.kind, obj, FINALIZER)
        status = obj.get("status") or {}
        if status:
            await self.objects.patch_status(self.kind, obj, status_patch(status, {}))

    async def _delete(
        self, key: ObjectKey, obj: dict[str, Any], bound: structlog.stdlib.BoundLogger
    ) -> Outcome:
        if FINALIZER in (obj["metadata"].get("finalizers") or []):
            if (obj.get("spec") or {}).get("suspend"):
                bound.info("object is suspended: deleted without cleaning up what it owns")
            else:
                try:
                    await self.reconciler.finalize(obj)
                except ReconcileError as error:
                    bound.warning("finalization failed", reason=error.reason, error=error.message)
                    await self.objects.record_event(obj, "Warning", error.reason, error.message)
                    return Outcome.failure()
            await self.objects.remove_finalizer(self.kind, obj, FINALIZER)
        self.reconciler.forget(key)
        self.metrics.forget(key)
        bound.info("object deleted, finalized")
        return Outcome.idle()

    async def _reconcile(
        self, key: ObjectKey, obj: dict[str, Any], bound: structlog.stdlib.BoundLogger
    ) -> Outcome:
        original = obj.get("status") or {}
        readiness_before = readiness(original)
        status = copy.deepcopy(original)
        generation = int(obj["metadata"].get("generation", 0))
        requested_at = (obj["metadata"].get("annotations") or {}).get(REQUESTED_AT_ANNOTATION)
        started = time.monotonic()
        result = "failure"
        ctx: Context[SpecT] | None = None
        outcome = Outcome.failure()
        try:
            try:
                spec = self.kind.parse_spec(obj)
            except SpecError as error:
                raise ReconcileError("InvalidSpec", str(error), stalled=True) from error
            ctx = Context(key=key, obj=obj, spec=spec, status=status, log=bound)
            progress: dict[str, Any] | None = None
            if status.get("observedGeneration") != generation:
                previous = status.get("observedGeneration", -1)
                conditions.mark_reconciling(
                    status,
                    "Progressing",
                    f"processing object: new generation {previous} -> {generation}",
                    generation=generation,
                )
                conditions.mark_unknown(
                    status,
                    conditions.READY,
                    "Progressing",
                    "reconciliation in progress",
                    generation=generation,
                )
                progress = copy.deepcopy(status)
            original, failure = await self._run_reporting_progress(ctx, original, progress)
            if failure is not None:
                raise failure
            for type_ in (conditions.RECONCILING, conditions.STALLED):
                conditions.delete(status, type_)
            for type_ in self.reconciler.negative_conditions:
                conditions.delete(status, type_)
            conditions.mark_true(
                status,
                conditions.READY,
                ctx.ready_reason,
                ctx.ready_message,
                generation=generation,
            )
            status["observedGeneration"] = generation
            result = "success"
            bound.info(
                "reconciliation finished",
                revision=revision(status),
                message=ctx.ready_message,
                seconds=round(time.monotonic() - started, 3),
            )
            outcome = Outcome.success(self.reconciler.interval(spec))
        except ReconcileError as error:
            self._mark_failed(status, error, generation)
            bound.error("reconciliation failed", reason=error.reason, error=error.message)
            result = "stalled" if error.stalled else "failure"
            if error.stalled:
                outcome = Outcome.idle()
            elif error.retry_after is None and ctx is not None:
                outcome = Outcome.failure(self.reconciler.retry_interval(ctx.spec))
            else:
                outcome = Outcome.failure(error.retry_after)
            if ctx is not None:
                ctx.event("Warning", error.reason, error.message, ctx.failure_annotations)
            else:
                await self.objects.record_event(obj, "Warning", error.reason, error.message)
        except (aiohttp.ClientError, ConnectionError) as error:  # e.g. the API server restarted
            bound.warning("reconciliation failed: a connection failed", error=str(error))
            message = f"a connection failed mid-reconcile, retrying: {error!r}"
            self._mark_failed(status, ReconcileError("ReconciliationFailed", message), generation)
        except Exception as error:  # a bug must not leave a stale Ready=True behind
            bound.exception("reconciliation crashed")
            self._mark_failed(
                status,
                ReconcileError("ReconciliationFailed", f"internal error: {error}"),
                generation,
            )
        finally:
            if requested_at is not None:
                status["lastHandledReconcileAt"] = requested_at
            # Metrics first: whoever sees the new status can already scrape its outcome.
            self.metrics.observe_reconcile(key, time.monotonic() - started, result)
            self.metrics.set_state(
                key, ready=ready_label(status), suspended=False, revision=revision(status)
            )
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.status_timeout):
                try:
                    await self._patch_status(obj, original, status)
                except (aiohttp.ClientError, ConnectionError) as error:
                    # The API server went away (e.g. it is restarting): not a crash. Retry
                    # soon, even after a success, so the next attempt writes this status.
                    bound.warning("status not written: a connection failed", error=str(error))
                    outcome = Outcome.failure()
                else:
                    for type_, reason, message, annotations in ctx.events if ctx else []:
                        await self.objects.record_event(obj, type_, reason, message, annotations)
            if self.reconciler.depended_on and readiness(status) != readiness_before:
                # Objects that depend on this one (dependsOn) wait for it to be Ready at
                # its latest revision: tell them now rather than at their next retry.
                self.wake_dependents(key)
            for woken in ctx.wakes if ctx else []:
                self.wake_dependents(woken)
        return outcome

    async def _run_reporting_progress(
        self, ctx: Context[SpecT], original: dict[str, Any], progress: dict[str, Any] | None
    ) -> tuple[dict[str, Any], ReconcileError | None]:
        """Run the reconciler; if it is still at work after :data:`PROGRESS_DELAY`, write
        the ``progress`` status (a new generation's ``Reconciling``) meanwhile.

        Most reconciles finish sooner, and their final status patch says it all in one
        write. Returns the status the server now holds (the baseline of the final patch)
        and the reconciler's error, raised by the caller: raised in here it would leave
        the task group wrapped in an exception group.
        """
        written = original
        failure: ReconcileError | None = None
        crash: Exception | None = None
        reporting = False

        async def report_progress(status: dict[str, Any]) -> None:
            nonlocal written, reporting
            await anyio.sleep(PROGRESS_DELAY)
            reporting = True
            try:
                await self._patch_status(ctx.obj, original, status)
            except ApiError as error:  # the final patch still writes the outcome
                ctx.log.warning("progress status not written", error=str(error))
                return
            written = status

        async with anyio.create_task_group() as tg:
            if progress is not None:
                tg.start_soon(report_progress, progress)
            try:
                await self.reconciler.reconcile(ctx)
            except ReconcileError as error:
                failure = error
            except Exception as error:  # re-raised as itself, not as an exception group
                crash = error
            finally:
                if not reporting:
                    tg.cancel_scope.cancel()
        if crash is not None:
            raise crash
        return copy.deepcopy(written), failure

    @staticmethod
    def _mark_failed(status: dict[str, Any], error: ReconcileError, generation: int) -> None:
        if error.condition:
            conditions.mark_true(
                status, error.condition, error.reason, error.message, generation=generation
            )
        conditions.mark_false(
            status, conditions.READY, error.reason, error.message, generation=generation
        )
        if error.stalled:
            conditions.mark_stalled(status, error.reason, error.message, generation=generation)
            status["observedGeneration"] = generation
        else:
            conditions.mark_reconciling(
                status, "ProgressingWithRetry", error.message, generation=generation
            )

    async def _patch_status(
        self, obj: dict[str, Any], original: dict[str, Any], status: dict[str, Any]
    ) -> None:
        patch = status_patch(original, status)
        if patch.keys() - self.reconciler.incidental_status:
            await self.objects.patch_status(self.kind, obj, patch)
