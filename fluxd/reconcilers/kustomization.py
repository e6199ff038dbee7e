"""Kustomization: make the cluster match a path of a source artifact, continuously.

Steps, in order; each failure carries Flux's reason:

1. **artifact**: the source's artifact, read from the shared cache (``ArtifactFailed``
   while it has none: a missing or unready source, or a kind fluxd does not reconcile
   yet). An ``ExternalArtifact`` source has no
   fluxd reconciler: its producer's ``status.artifact`` is downloaded and verified by
   :mod:`~fluxd.sources.external` (``ArtifactFailed`` until it is published, and for a
   digest mismatch). The scheduler is told what this object depends on (its source,
   its dependencies, the ConfigMaps and Secrets of ``postBuild.substituteFrom``) so that
   a new artifact, a dependency turning Ready, or a change to a watched ConfigMap or
   Secret (labelled ``reconcile.fluxcd.io/watch: Enabled``) wakes it at once;
2. **dependencies** (``dependsOn``): each must exist and be Ready at its current
   generation, having applied this revision when it builds from the same source; a
   ``readyExpr`` (CEL over ``self`` and ``dep``) replaces that check. Until then
   ``DependencyNotReady``, looked at again every 30 s (Flux's
   ``--requeue-dependency``) unless a dependency wakes it sooner. A dependency outside
   what this daemon watches is read from the API server (found, but without wake-ups);
3. **build**: :mod:`~fluxd.build.kustomization` (shared with ``fluxd build`` and
   ``fluxd diff``): the native kustomize engine over the artifact's files with the Flux
   fields folded in, SOPS decryption, ``postBuild`` variable substitution, owner labels,
   ``commonMetadata`` (``BuildFailed`` naming the file);
4. **apply**: staged server-side apply with drift detection: unchanged objects are not
   written, fields named by ``ignore`` keep their live values
   (``ReconciliationFailed`` naming the object when the server refuses one);
5. **prune**: objects in the previous inventory but not in this build are deleted when
   ``prune: true`` (``PruneFailed``);
6. **health**: with ``wait: true`` every applied object (but the Kustomization itself),
   else ``healthChecks``, must become Current within ``timeout`` (Flux's rule: the
   interval minus 30 s when not set, never under 30 s) (``HealthCheckFailed``); a new
   source revision arriving meanwhile cancels the stale wait, and so does a shutdown
   (``HealthCheckCanceled`` either way, so no ``Ready=Unknown`` outlives the wait). Invalid
   ``healthCheckExprs`` stall the Kustomization before anything is applied.

Steps 4 to 6, and the deletion below, act as the Kustomization's identity
(``serviceAccountName`` or the daemon's default account, impersonated; ``kubeConfig``, a
remote cluster): see :mod:`~fluxd.apply.access`. An unusable kubeconfig
fails with ``ReconciliationFailed`` before the build.

Fields that need cloud workload identity (``kubeConfig.configMapRef``,
``decryption.serviceAccountName``) stall the Kustomization before anything is read.

The status records ``lastAttemptedRevision`` before the work and ``lastAppliedRevision``,
``lastAppliedOriginRevision`` (the artifact's ``org.opencontainers.image.revision``) and
``inventory`` after it, as Flux does; every outcome of steps 4 to 6 is a snapshot in
``history`` (:mod:`~fluxd.runtime.history`), keyed by the digest of the built manifests.
Unlike Flux, a periodic run that changes nothing but ``history`` is not written (see
``incidental_status``), so ``totalReconciliations`` counts the runs with news to report.
Each apply that changed something records an Event listing the objects
(``ConfigMap/ns/a created``...), and each success ends with Flux's
``ReconciliationSucceeded`` Event, "Reconciliation finished in 1.2s, next run in 10m0s",
annotated for commit-status updates.

Deletion (the finalizer) follows ``deletionPolicy``: ``MirrorPrune`` (the default) deletes
the inventory when ``prune: true``, ``Delete`` always, ``WaitForTermination`` always and
then waits, up to ``timeout``, until the objects are gone; ``Orphan`` leaves them. A
suspended Kustomization deletes nothing, as in Flux.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import anyio

from fluxd.api import (
    EXTERNAL_ARTIFACT,
    KUSTOMIZATION,
    KustomizationSpec,
    format_duration,
    parse_duration,
)
from fluxd.apply.access import Cluster, ClusterAccess, ClusterAccessError
from fluxd.apply.health import (
    HealthCheckError,
    HealthRef,
    StatusRule,
    custom_rules,
    wait_for_health,
)
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef, entries, parse, recorded, stale
from fluxd.apply.manager import ApplyError
from fluxd.apply.mapper import NoKindMatchError
from fluxd.build.kustomization import build_objects
from fluxd.build.labels import owner_labels
from fluxd.build.memo import BuildMemo
from fluxd.kube import client
from fluxd.kube.objects import ObjectApi
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.dependencies import DEPENDENCY_RETRY, TERMINAL, check_dependency, not_ready
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.history import manifests_digest, upsert
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.tenancy import UNRESTRICTED, Tenancy
from fluxd.sources.artifact import Artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.external import ExternalArtifactError, ExternalArtifacts

__all__ = ["KustomizationReconciler"]

HEALTHY = "Healthy"
HEALTH_CHECK_CANCELED = "HealthCheckCanceled"
COMMIT_STATUS_ANNOTATION = "kustomize.toolkit.fluxcd.io/commit_status"
#: How often ``WaitForTermination`` looks whether the deleted objects are gone.
TERMINATION_POLL = 0.5


class KustomizationReconciler(Reconciler[KustomizationSpec]):
    """``kustomize.toolkit.fluxcd.io/v1`` Kustomization."""

    kind = KUSTOMIZATION
    depended_on: ClassVar[bool] = True
    incidental_status: ClassVar[frozenset[str]] = frozenset({"history"})

    def retry_interval(self, spec: KustomizationSpec) -> float | None:
        """``spec.retryInterval`` when set, as Flux requeues a failed Kustomization."""
        return parse_duration(spec.retry_interval) if spec.retry_interval else None

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
        access: ClusterAccess,
        external: ExternalArtifacts,
        tenancy: Tenancy = UNRESTRICTED,
    ) -> None:
        self.objects = objects
        self.tenancy = tenancy
        self.cache = cache
        #: Verified downloads of ExternalArtifact sources, which no fluxd reconciler makes.
        self.external = external
        self.track_sources = track_sources
        #: Each Kustomization's last kustomize build, reused while its inputs are the same.
        self.builds = BuildMemo()
        #: Which cluster client each Kustomization acts with (its service account, its
        #: kubeconfig); the daemon owns it and closes it on stop.
        self.access = access

    def forget(self, key: ObjectKey) -> None:
        self.track_sources(key, ())
        self.builds.forget((key.namespace, key.name))
        self.access.forget(key)
        self.external.forget(key)

    async def reconcile(self, ctx: Context[KustomizationSpec]) -> None:
        started = time.monotonic()
        spec = ctx.spec
        try:
            rules = custom_rules(spec.health_check_exprs)
        except ValueError as error:
            raise ReconcileError(
                "InvalidCELExpression", f"{TERMINAL}: {error}", stalled=True
            ) from error
        _refuse_unserved_fields(spec)
        source_key = self._source_key(ctx)
        dependencies = [
            ObjectKey(self.kind.kind, dep.namespace or ctx.key.namespace, dep.name)
            for dep in spec.depends_on
        ]
        # ConfigMaps and Secrets read by postBuild wake it when they change, if watched.
        configs = [
            ObjectKey(ref.kind, ctx.key.namespace, ref.name)
            for ref in (spec.post_build.substitute_from if spec.post_build else ())
        ]
        self.track_sources(ctx.key, [source_key, *dependencies, *configs])

        artifact, origin_revision = await self._source_artifact(ctx.key, source_key)
        revision = artifact.revision
        ctx.failure_annotations.update(self._revision_note(revision))
        await self._check_dependencies(ctx, dependencies, source_key, revision)
        ctx.status["lastAttemptedRevision"] = revision
        cluster = await self._cluster(ctx.key, spec)

        objects = await build_objects(
            artifact.files,
            spec,
            path=spec.path,
            namespace=ctx.key.namespace,
            name=ctx.key.name,
            objects=self.objects,
            memo=self.builds,
        )
        history_note = {"revision": revision}
        if origin_revision:
            history_note["originRevision"] = origin_revision
        snapshot_digest = manifests_digest(objects)
        try:
            await self._apply(ctx, cluster, objects, source_key, revision, rules)
        except ReconcileError as error:
            # A health check cut short by a newer revision is no outcome (nor in Flux).
            if error.reason != HEALTH_CHECK_CANCELED:
                self._record_history(ctx, snapshot_digest, started, error.reason, history_note)
            raise
        if origin_revision:
            ctx.status["lastAppliedOriginRevision"] = origin_revision
        else:
            ctx.status.pop("lastAppliedOriginRevision", None)
        self._record_history(ctx, snapshot_digest, started, "ReconciliationSucceeded", history_note)
        # Flux's closing event, the one notification providers turn into commit statuses.
        ctx.event(
            "Normal",
            "ReconciliationSucceeded",
            f"Reconciliation finished in {format_duration(time.monotonic() - started)}, "
            f"next run in {format_duration(spec.interval_seconds)}",
            {**self._revision_note(revision), COMMIT_STATUS_ANNOTATION: "update"},
        )

    def _record_history(
        self,
        ctx: Context[KustomizationSpec],
        digest: str,
        started: float,
        outcome: str,
        metadata: Mapping[str, str],
    ) -> None:
        ctx.status["history"] = upsert(
            ctx.status.get("history") or (),
            digest=digest,
            duration_seconds=time.monotonic() - started,
            status=outcome,
            metadata=metadata,
        )

    async def _apply(
        self,
        ctx: Context[KustomizationSpec],
        cluster: Cluster,
        objects: list[dict[str, Any]],
        source_key: ObjectKey,
        revision: str,
        rules: Mapping[tuple[str, str], StatusRule],
    ) -> None:
        """Apply, prune and wait for health; on success the revision is applied."""
        spec = ctx.spec
        owner = owner_labels(ctx.key.namespace, ctx.key.name)

        try:
            ignore = DriftIgnore(spec.ignore)
        except ValueError as error:
            raise ReconcileError("ReconciliationFailed", str(error), stalled=True) from error
        try:
            changes = await cluster.applier.apply_all(
                objects, force=spec.force, ignore=ignore, wait_timeout=spec.timeout_seconds
            )
        except ApplyError as error:
            raise ReconcileError(
                "ReconciliationFailed", f"{error} (revision {revision})"
            ) from error
        if changes.has_changes:
            ctx.event("Normal", "Progressing", changes.summary(), self._revision_note(revision))

        applied = entries(changes.refs)
        previous = recorded(ctx.status)
        if spec.prune:
            removed = stale(previous, parse(applied))
            try:
                pruned = await cluster.applier.delete_all(removed, owner_labels=owner)
            except ApplyError as error:
                ctx.status["inventory"] = {"entries": applied}
                raise ReconcileError("PruneFailed", str(error)) from error
            if pruned.has_changes:
                ctx.event("Normal", "Progressing", pruned.summary(), self._revision_note(revision))
        ctx.status["inventory"] = {"entries": applied}

        await self._check_health(ctx, cluster, objects, source_key, revision, rules)
        ctx.status["lastAppliedRevision"] = revision
        ctx.ready_reason = "ReconciliationSucceeded"
        ctx.ready_message = f"Applied revision: {revision}"

    async def finalize(self, obj: dict[str, Any]) -> None:
        """Apply ``spec.deletionPolicy`` to the inventory, as the Kustomization's identity.

        (A suspended Kustomization never gets here: the driver lets it go without
        finalizing, so it deletes nothing whatever its policy, as in Flux.) When the
        service account to impersonate is gone (its namespace is being deleted, say) the
        objects are left in place with a Warning event rather than holding the
        Kustomization forever. ``WaitForTermination`` gives up after ``timeout`` with a
        Warning event and lets the Kustomization go.
        """
        spec = self.kind.parse_spec(obj)
        metadata = obj["metadata"]
        key = ObjectKey(self.kind.kind, metadata["namespace"], metadata["name"])
        inventory = recorded(obj.get("status") or {})
        if not inventory or not _deletes_objects(spec):
            return
        revision = str((obj.get("status") or {}).get("lastAppliedRevision") or "")
        note = self._revision_note(revision) if revision else {}
        if spec.kube_config is None and not await self._account_exists(key, spec):
            account = self.access.service_account(spec)
            listed = ", ".join(str(ref) for ref in inventory)
            message = (
                f"unable to prune objects: service account '{key.namespace}/{account}' to "
                f"impersonate is gone; left in place: {listed}"
            )
            await self.objects.record_event(obj, "Warning", "PruneFailed", message, note)
            return
        cluster = await self._cluster(key, spec, reason="PruneFailed")
        owner = owner_labels(key.namespace, key.name)
        try:
            deleted = await cluster.applier.delete_all(inventory, owner_labels=owner)
        except ApplyError as error:
            raise ReconcileError("PruneFailed", f"finalizing: {error}") from error
        if not deleted.has_changes:
            return
        await self.objects.record_event(obj, "Normal", "Progressing", deleted.summary(), note)
        if spec.effective_deletion_policy != "WaitForTermination":
            return
        timeout = spec.timeout_seconds
        remaining = await _wait_terminated(cluster, deleted.with_action("deleted"), timeout)
        if remaining:
            listed = ", ".join(str(ref) for ref in remaining)
            message = (
                f"failed to wait for resources termination: still there after {timeout:g}s: "
                f"{listed}"
            )
            await self.objects.record_event(obj, "Warning", "PruneFailed", message, note)

    # -- steps -----------------------------------------------------------------------------

    async def _cluster(
        self, key: ObjectKey, spec: KustomizationSpec, *, reason: str = "ReconciliationFailed"
    ) -> Cluster:
        """The cluster client ``key`` acts with; an unusable kubeconfig fails with
        ``reason`` before anything is built or applied."""
        try:
            return await self.access.for_kustomization(key, spec)
        except ClusterAccessError as error:
            raise ReconcileError(reason, f"failed to build kube client: {error}") from error

    async def _account_exists(self, key: ObjectKey, spec: KustomizationSpec) -> bool:
        try:
            return await self.access.account_exists(key.namespace, spec)
        except client.ApiError as error:
            raise ReconcileError(
                "PruneFailed", f"finalizing: looking up the service account: {error}"
            ) from error

    async def _source_artifact(self, key: ObjectKey, source_key: ObjectKey) -> tuple[Artifact, str]:
        """The artifact to build from and its origin revision (``""`` when it has none)."""
        where = f"'{source_key.kind}/{source_key.namespace}/{source_key.name}' (spec.sourceRef)"
        if source_key.kind != EXTERNAL_ARTIFACT.kind:
            artifact = self.cache.get(source_key)
            if artifact is None:
                raise ReconcileError(
                    "ArtifactFailed",
                    f"Source {where} has no artifact yet: it is missing, not ready, or of "
                    "a kind fluxd does not reconcile yet; waiting for the source",
                    retry_after=DEPENDENCY_RETRY,
                )
            return artifact, ""
        found = await self.objects.read(EXTERNAL_ARTIFACT, source_key.namespace, source_key.name)
        try:
            fetched = await self.external.fetch(key, source_key, found)
        except ExternalArtifactError as error:
            if error.problem == "absent":
                message = f"Source {where} not found; waiting for its producer to create it"
            elif error.problem == "unpublished":
                message = (
                    f"Source artifact of {where} not found: its producer has not published "
                    f"status.artifact yet, retrying in {format_duration(DEPENDENCY_RETRY)}"
                )
            else:
                message = str(error)
            raise ReconcileError(
                "ArtifactFailed",
                message,
                retry_after=None if error.problem == "invalid" else DEPENDENCY_RETRY,
            ) from error
        return fetched.artifact, fetched.origin_revision

    def _source_key(self, ctx: Context[KustomizationSpec]) -> ObjectKey:
        ref = ctx.spec.source_ref
        key = ObjectKey(ref.kind, ref.namespace or ctx.key.namespace, ref.name)
        self.tenancy.check(
            ctx.key.namespace,
            key.namespace,
            f"can't access '{key.kind}/{key.namespace}/{key.name}', cross-namespace "
            "references have been blocked",
        )
        return key

    async def _check_dependencies(
        self,
        ctx: Context[KustomizationSpec],
        dependencies: list[ObjectKey],
        source_key: ObjectKey,
        revision: str,
    ) -> None:
        """Flux's readiness of each dependency: it exists; then its ``readyExpr`` decides
        when it has one, else it must be Ready at its latest generation and, when it
        builds from the same source, have applied this revision."""
        for ref, key in zip(ctx.spec.depends_on, dependencies, strict=True):
            where = f"'{key.namespace}/{key.name}'"
            dep = await self.objects.read(self.kind, key.namespace, key.name)
            if check_dependency(ctx.obj, dep, ref.ready_expr, where):
                continue
            assert dep is not None
            status = dep.get("status") or {}
            dep_ref = dep["spec"]["sourceRef"]
            dep_source = ObjectKey(
                dep_ref["kind"], dep_ref.get("namespace") or key.namespace, dep_ref["name"]
            )
            if dep_source == source_key and status.get("lastAppliedRevision") != revision:
                raise not_ready(f"dependency {where} revision is not up to date")

    async def _check_health(
        self,
        ctx: Context[KustomizationSpec],
        cluster: Cluster,
        objects: list[dict[str, Any]],
        source_key: ObjectKey,
        revision: str,
        rules: Mapping[tuple[str, str], StatusRule],
    ) -> None:
        spec = ctx.spec
        if spec.wait:
            # Never wait for itself: flux-system applies its own Kustomization.
            itself = (self.kind.group, self.kind.kind, ctx.key.namespace, ctx.key.name)
            targets = [
                ref
                for ref in map(ObjectRef.of, objects)
                if (ref.group, ref.kind, ref.namespace, ref.name) != itself
            ]
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
            refs = [
                HealthRef(
                    await cluster.mapper.resource_for(target.api_version, target.kind),
                    target.namespace or None,
                    target.name,
                    target.kind,
                )
                for target in targets
            ]
        except ApplyError as error:
            raise ReconcileError("HealthCheckFailed", str(error)) from error
        timeout = spec.timeout_seconds
        started = time.monotonic()
        superseded = False
        failure: HealthCheckError | None = None

        async def watch_source(scope: anyio.CancelScope) -> None:
            nonlocal superseded
            await self.cache.next_revision(source_key, after=revision)
            superseded = True
            scope.cancel()

        # Errors are raised after the task group closes: raised inside it, they would
        # reach the driver wrapped in an ExceptionGroup.
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_source, tg.cancel_scope)
            try:
                await wait_for_health(cluster.api, refs, timeout=timeout, rules=rules)
            except HealthCheckError as error:
                failure = error
            except anyio.get_cancelled_exc_class():
                if not superseded:  # stopped from outside: the driver writes this status
                    self._mark_health_interrupted(ctx, revision)
                raise
            tg.cancel_scope.cancel()
        if superseded:
            raise ReconcileError(
                HEALTH_CHECK_CANCELED,
                f"health check for revision {revision} canceled: a new source revision arrived",
                retry_after=0.0,
            )
        if failure is not None:
            conditions.mark_false(
                ctx.status, HEALTHY, "HealthCheckFailed", str(failure), generation=ctx.generation
            )
            raise ReconcileError(
                "HealthCheckFailed",
                f"health check failed after {time.monotonic() - started:.1f}s: {failure}",
            ) from failure
        conditions.mark_true(
            ctx.status,
            HEALTHY,
            "Succeeded",
            f"Health check passed in {time.monotonic() - started:.1f}s",
            generation=ctx.generation,
        )

    @staticmethod
    def _mark_health_interrupted(ctx: Context[KustomizationSpec], revision: str) -> None:
        """The status a health wait leaves when the daemon stops it (SIGTERM past the
        grace period, leadership lost): objects applied, health unknown, to be retried."""
        message = (
            f"health check for revision {revision} canceled: fluxd stopped before the "
            "applied objects became healthy; the next reconcile checks them again"
        )
        generation = ctx.generation
        conditions.mark_unknown(
            ctx.status, HEALTHY, HEALTH_CHECK_CANCELED, message, generation=generation
        )
        conditions.mark_false(
            ctx.status, conditions.READY, HEALTH_CHECK_CANCELED, message, generation=generation
        )
        conditions.mark_reconciling(
            ctx.status, "ProgressingWithRetry", message, generation=generation
        )

    @staticmethod
    def _revision_note(revision: str) -> dict[str, str]:
        return {"kustomize.toolkit.fluxcd.io/revision": revision}


def _deletes_objects(spec: KustomizationSpec) -> bool:
    """Whether ``deletionPolicy`` deletes the inventory when the Kustomization goes:
    ``MirrorPrune`` (the default) as ``prune`` says, ``Delete`` and
    ``WaitForTermination`` always, ``Orphan`` never."""
    policy = spec.effective_deletion_policy
    if policy == "MirrorPrune":
        return bool(spec.prune)
    return policy in ("Delete", "WaitForTermination")


async def _wait_terminated(
    cluster: Cluster, refs: list[ObjectRef], patience: float
) -> list[ObjectRef]:
    """Wait until every object of ``refs`` is gone from ``cluster`` (finalizers run,
    garbage collected); what is still there after ``patience`` seconds."""
    remaining = list(refs)
    with anyio.move_on_after(patience):
        while remaining:
            remaining = [ref for ref in remaining if await _exists(cluster, ref)]
            if remaining:
                await anyio.sleep(TERMINATION_POLL)
    return remaining


async def _exists(cluster: Cluster, ref: ObjectRef) -> bool:
    try:
        resource = await cluster.mapper.resource_for(ref.api_version, ref.kind)
        live = await client.get(
            cluster.api, resource, ref.namespace or None, ref.name, missing_ok=True
        )
    except NoKindMatchError:
        return False  # its CRD went, and every object of the kind with it
    except (client.ApiError, ApplyError):
        return True  # unknown yet, so keep waiting
    return live is not None


def _refuse_unserved_fields(spec: KustomizationSpec) -> None:
    """Stall on the fields that need cloud workload identity, which fluxd does not offer:
    nothing is built or applied, and retrying cannot help until the spec changes."""
    unserved = []
    if spec.kube_config is not None and spec.kube_config.config_map_ref is not None:
        unserved.append(
            "spec.kubeConfig.configMapRef (workload identity for a remote cluster); "
            "use spec.kubeConfig.secretRef with a kubeconfig Secret"
        )
    if spec.decryption is not None and spec.decryption.service_account_name:
        unserved.append(
            "spec.decryption.serviceAccountName (workload identity for cloud KMS); "
            "use spec.decryption.secretRef with the keys or KMS credentials"
        )
    if unserved:
        raise ReconcileError(
            "ReconciliationFailed",
            f"{TERMINAL}: not supported by fluxd: {'; '.join(unserved)}",
            stalled=True,
        )
