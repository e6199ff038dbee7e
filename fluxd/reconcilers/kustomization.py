"""Kustomization: make the cluster match a path of a source artifact, continuously.

Steps, in order; each failure carries Flux's reason:

1. **dependencies** (``dependsOn``): each must be Ready for its current generation;
   until then ``DependencyNotReady``. The scheduler is told what this object depends on
   (its source and its dependencies) so that a new artifact, or a dependency turning
   Ready, wakes it at once;
2. **artifact**: the source's artifact, read from the shared cache (``ArtifactFailed``
   while it has none);
3. **build**: :mod:`~fluxd.reconcilers.kustomize_build` (shared with ``fluxd build`` and
   ``fluxd diff``): the native kustomize engine over the artifact's files with the Flux
   fields folded in, ``commonMetadata``, ``postBuild`` variable substitution, SOPS
   decryption, owner labels (``BuildFailed`` naming the file);
4. **apply**: staged server-side apply with drift detection: unchanged objects are not
   written (``ReconciliationFailed`` naming the object when the server refuses one);
5. **prune**: objects in the previous inventory but not in this build are deleted when
   ``prune: true`` (``PruneFailed``);
6. **health**: with ``wait: true`` every applied object, else ``healthChecks``, must become
   Current within ``timeout`` (``HealthCheckFailed``); a new source revision arriving
   meanwhile cancels the stale wait.

The status records ``lastAttemptedRevision`` before the work and ``lastAppliedRevision`` and
``inventory`` after it, as Flux does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import anyio

from fluxd import conditions
from fluxd.api import KUSTOMIZATION, KindInfo, parse_duration
from fluxd.apply.health import HealthCheckError, HealthRef, custom_rules, wait_for_health
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef, entries, parse, stale
from fluxd.apply.manager import ApplyError, ApplyManager
from fluxd.apply.mapper import RESTMapper
from fluxd.objectkey import ObjectKey
from fluxd.reconcilers.base import Context, ReconcileError, Reconciler
from fluxd.reconcilers.kustomize_build import NAME_LABEL, NAMESPACE_LABEL, build_objects
from fluxd.reconcilers.objects import ObjectApi
from fluxd.sources.cache import ArtifactCache

__all__ = ["KustomizationReconciler"]

HEALTHY = "Healthy"
#: Flux's ``--requeue-dependency``: how soon to look again at an unready dependency.
DEPENDENCY_RETRY = 30.0


class KustomizationReconciler(Reconciler):
    """``kustomize.toolkit.fluxcd.io/v1`` Kustomization."""

    kind: ClassVar[KindInfo[Any]] = KUSTOMIZATION

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.track_sources = track_sources
        self.mapper = RESTMapper(objects.api)
        self.applier = ApplyManager(objects.api, self.mapper, field_manager="kustomize-controller")

    def forget(self, key: ObjectKey) -> None:
        self.track_sources(key, ())

    async def reconcile(self, ctx: Context) -> None:
        spec = ctx.spec
        source_key = self._source_key(ctx)
        dependencies = [
            ObjectKey(self.kind.kind, dep.namespace or ctx.key.namespace, dep.name)
            for dep in spec.depends_on
        ]
        self.track_sources(ctx.key, [source_key, *dependencies])
        self._check_dependencies(ctx, dependencies, spec)

        artifact = self.cache.get(source_key)
        if artifact is None:
            raise ReconcileError(
                "ArtifactFailed",
                f"Source '{source_key.kind}/{source_key.namespace}/{source_key.name}' has no "
                "artifact yet: it is missing, not ready, or not reconciled by fluxd",
                retry_after=DEPENDENCY_RETRY,
            )
        revision = artifact.revision
        ctx.status["lastAttemptedRevision"] = revision

        objects = await build_objects(
            artifact.files,
            spec,
            path=spec.path,
            namespace=ctx.key.namespace,
            name=ctx.key.name,
            objects=self.objects,
        )
        owner = {NAME_LABEL: ctx.key.name, NAMESPACE_LABEL: ctx.key.namespace}

        try:
            ignore = DriftIgnore(spec.drift_ignore_rules)
        except ValueError as error:
            raise ReconcileError("ReconciliationFailed", f"spec.{error}", stalled=True) from error
        try:
            changes = await self.applier.apply_all(objects, force=spec.force, ignore=ignore)
        except ApplyError as error:
            raise ReconcileError(
                "ReconciliationFailed", f"{error} (revision {revision})"
            ) from error
        if changes.has_changes:
            ctx.event("Normal", "Progressing", changes.summary(), self._revision_note(revision))

        applied = entries(changes.refs)
        previous = _inventory(ctx.status)
        if spec.prune:
            removed = stale(previous, parse(applied))
            try:
                pruned = await self.applier.delete_all(removed, owner_labels=owner)
            except ApplyError as error:
                ctx.status["inventory"] = {"entries": applied}
                raise ReconcileError("PruneFailed", str(error)) from error
            if pruned.has_changes:
                ctx.event("Normal", "Progressing", pruned.summary(), self._revision_note(revision))
        ctx.status["inventory"] = {"entries": applied}

        await self._check_health(ctx, objects, source_key, revision)
        ctx.status["lastAppliedRevision"] = revision
        ctx.ready_reason = "ReconciliationSucceeded"
        ctx.ready_message = f"Applied revision: {revision}"

    async def finalize(self, obj: dict[str, Any]) -> None:
        spec = self.kind.parse_spec(obj)
        policy = spec.deletion_policy or "MirrorPrune"
        if policy == "Orphan" or (policy == "MirrorPrune" and not spec.prune):
            return
        metadata = obj["metadata"]
        inventory = _inventory(obj.get("status") or {})
        owner = {NAME_LABEL: metadata["name"], NAMESPACE_LABEL: metadata["namespace"]}
        try:
            await self.applier.delete_all(list(reversed(inventory)), owner_labels=owner)
        except ApplyError as error:
            raise ReconcileError("PruneFailed", f"finalizing: {error}") from error

    # -- steps -----------------------------------------------------------------------------

    def _source_key(self, ctx: Context) -> ObjectKey:
        ref = ctx.spec.source_ref
        return ObjectKey(ref.kind, ref.namespace or ctx.key.namespace, ref.name)

    def _check_dependencies(self, ctx: Context, dependencies: list[ObjectKey], spec: Any) -> None:
        for dependency in dependencies:
            dep = self.objects.cached(self.kind, dependency.namespace, dependency.name)
            status = (dep or {}).get("status") or {}
            generation = (dep or {}).get("metadata", {}).get("generation")
            if (
                dep is None
                or not conditions.is_ready(status)
                or status.get("observedGeneration") != generation
            ):
                raise ReconcileError(
                    "DependencyNotReady",
                    f"dependency '{dependency.namespace}/{dependency.name}' is not ready",
                    retry_after=parse_duration(spec.retry_interval or spec.interval),
                )

    async def _check_health(
        self,
        ctx: Context,
        objects: list[dict[str, Any]],
        source_key: ObjectKey,
        revision: str,
    ) -> None:
        spec = ctx.spec
        if spec.wait:
            targets = [ObjectRef.of(obj) for obj in objects]
        else:
            targets = [
                ObjectRef(
                    group=check.api_version.rpartition("/")[0] if check.api_version else "",
                    kind=check.kind,
                    namespace=check.namespace or ctx.key.namespace,
                    name=check.name,
                    version=check.api_version.rpartition("/")[2] if check.api_version else "v1",
                )
                for check in spec.health_checks
            ]
        if not targets:
            conditions.delete(ctx.status, HEALTHY)
            return
        try:
            rules = custom_rules(spec.health_check_exprs)
        except ValueError as error:
            raise ReconcileError("InvalidCELExpression", str(error), stalled=True) from error
        try:
            refs = [
                HealthRef(
                    await self.mapper.resource_for(target.api_version, target.kind),
                    target.namespace or None,
                    target.name,
                    target.kind,
                )
                for target in targets
            ]
        except ApplyError as error:
            raise ReconcileError("HealthCheckFailed", str(error)) from error
        timeout = parse_duration(spec.timeout or spec.interval)
        superseded = False
        failure: HealthCheckError | None = None

        async def watch_source(scope: anyio.CancelScope) -> None:
            nonlocal superseded
            while True:
                await anyio.sleep(0.5)
                current = self.cache.get(source_key)
                if current is not None and current.revision != revision:
                    superseded = True
                    scope.cancel()
                    return

        # Errors are raised after the task group closes: raised inside it, they would
        # reach the driver wrapped in an ExceptionGroup.
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_source, tg.cancel_scope)
            try:
                await wait_for_health(self.objects.api, refs, timeout=timeout, rules=rules)
            except HealthCheckError as error:
                failure = error
            tg.cancel_scope.cancel()
        if superseded:
            raise ReconcileError(
                "HealthCheckCanceled",
                f"health check for revision {revision} canceled: a new source revision arrived",
                retry_after=0.0,
            )
        if failure is not None:
            message = f"health check failed after {timeout:g}s: {failure}"
            conditions.mark_false(
                ctx.status, HEALTHY, "HealthCheckFailed", message, generation=ctx.generation
            )
            raise ReconcileError("HealthCheckFailed", message) from failure
        conditions.mark_true(
            ctx.status, HEALTHY, "Succeeded", "Health check passed", generation=ctx.generation
        )

    @staticmethod
    def _revision_note(revision: str) -> dict[str, str]:
        return {"kustomize.toolkit.fluxcd.io/revision": revision}


def _inventory(status: Mapping[str, Any]) -> list[ObjectRef]:
    """The objects recorded in ``status.inventory``; a corrupt record counts as empty (a
    prune then deletes nothing it cannot name) and is replaced by this reconcile's."""
    try:
        return parse((status.get("inventory") or {}).get("entries") or [])
    except ValueError:
        return []
