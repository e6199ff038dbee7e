"""HelmRelease: a chart released into the cluster with the real Helm SDK, as Flux does.

Steps, in order (each failure carries Flux's reason):

1. **chart**: with ``spec.chart`` fluxd applies the HelmChart ``<namespace>-<name>`` (in
   the source's namespace) from the template, as helm-controller does (field manager
   ``helm-controller``, its owner labels) and records it in ``status.helmChart``; with
   ``spec.chartRef`` the named HelmChart, OCIRepository whose artifact is a packaged
   chart (``layerSelector`` operation ``copy``), or ExternalArtifact whose producer
   published a packaged chart (downloaded and verified by its digest, see
   :mod:`~fluxd.sources.external`), is used as is; an OCI chart, and an external one
   whose revision is a digest, is released under its version plus the digest's first 12
   hex digits as build metadata (``6.5.4+0123456789ab``), as Flux does, so a re-pushed
   tag upgrades. The scheduler is
   told, so a new chart artifact, a dependency turning Ready or a watched values source
   wakes it;
2. **dependencies** (``dependsOn``): each must exist and be Ready at its current
   generation, or, with a ``readyExpr``, make that CEL expression over ``self`` and
   ``dep`` true (``DependencyNotReady``, looked at again every 30 s; an expression that
   does not compile stalls with ``InvalidCELExpression``);
3. **values** from ``valuesFrom`` then ``values`` (``ValuesError`` naming the source);
4. **release state**, from the release's latest record in Helm storage (never cached):
   absent -> install; failed, pending, not made by this object, or chart/values changed
   -> upgrade; otherwise nothing to do, and no new Helm revision;
5. **action** with the per-action options. The wait for the release's objects is
   kstatus' (Flux's ``poller``, Helm's ``watcher``), and fluxd's own when nothing Helm
   does depends on its end (no ``post-install``/``post-upgrade`` hook, no upgrade
   ``cleanupOnFail``): the action then runs without Helm's waiter, fluxd waits on the
   watches every release shares (:mod:`fluxd.apply.health_watch`; Helm's waiter lists
   and watches the namespace's Deployments, ReplicaSets and Pods for each release), and a
   failed wait is stored in Helm's history as Helm stores one (:mod:`fluxd.helm.storage`).
   Otherwise Helm waits, and with ``healthCheckExprs`` fluxd then waits on the objects of
   the kinds they name (Helm's waiter knows no custom status), a failure there failing
   the action as a failed wait does; with ``waitStrategy: legacy`` Helm 3's waiter
   waits. Jobs are waited for unless ``disableWaitForJobs``. Then ``test`` when
   ``spec.test.enable``. With the action's
   ``strategy`` ``RetryOnFailure`` a failure is left as Helm stored it and tried again
   (as an upgrade) after ``retryInterval``, never stalling; with ``RemediateOnFailure``
   (the default) a failure counts against ``remediation.retries``: an install failure is
   remediated by uninstalling, an upgrade failure by a rollback (or an uninstall), and
   once the retries are spent the object stalls (``RetriesExceeded``) until its spec changes or a
   ``reconcile.fluxcd.io/resetAt`` request clears the counts; a
   ``reconcile.fluxcd.io/forceAt`` request upgrades once even when nothing changed (both
   count when equal to ``requestedAt``, once each, as ``fluxd reconcile hr --reset|--force``
   set them);
6. **status** as Flux writes it: ``Released``/``TestSuccess``/``Remediated`` conditions,
   ``history`` snapshots of the releases it made, ``inventory`` (the release's objects,
   hooks left out, then the chart's CRDs), ``lastAttempted*``, failure counters,
   ``storageNamespace``, and Flux's event reasons.

With ``spec.kubeConfig`` every Helm action, health check and drift check goes to the
cluster the kubeconfig Secret names (``RESTClientError`` when it cannot be used), as the
service account when one is named. Deleting a HelmRelease uninstalls its release
(``spec.uninstall``; skipped when its kubeconfig Secret is gone, as in Flux) and
deletes the HelmChart it made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio.to_thread

from fluxd.api import (
    EXTERNAL_ARTIFACT,
    HELM_CHART,
    HELM_RELEASE,
    OCI_REPOSITORY,
    HelmReleaseSpec,
    InstallRemediation,
    UpgradeRemediation,
    format_duration,
    parse_duration,
    to_dict,
)
from fluxd.apply import ApplyError, drift
from fluxd.apply.access import Cluster, ClusterAccess, ClusterAccessError
from fluxd.apply.health import HealthCheckError, HealthRef, StatusRule, custom_rules
from fluxd.apply.ignore import DriftIgnore
from fluxd.apply.inventory import ObjectRef
from fluxd.build.postrender import PostRendering
from fluxd.helm import (
    ActionOptions,
    DigestVersionError,
    HelmActionError,
    LoadedChart,
    NotAChartError,
    Release,
    Releases,
    ValuesError,
    inventory_entries,
    load_chart,
    mentions_late_hooks,
    record_failed_wait,
    release_refs,
    release_values,
    stamp_digest,
    values_digest,
)
from fluxd.kube.client import ApiError, kubeconfig_of
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.reconcilers.driver import REQUESTED_AT_ANNOTATION, Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.dependencies import DEPENDENCY_RETRY, TERMINAL, check_dependency
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.tenancy import UNRESTRICTED, Tenancy
from fluxd.sources.artifact import Artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.external import ExternalArtifactError, ExternalArtifacts

__all__ = ["HelmReleaseReconciler", "post_rendering", "release_name"]

RELEASED = "Released"
TEST_SUCCESS = "TestSuccess"
REMEDIATED = "Remediated"
DRIFTED = "Drifted"
FIELD_MANAGER = "helm-controller"
MAX_SNAPSHOTS = 5
#: Requests that ride with ``requestedAt``: upgrade once, and reset the failure counts.
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
OWNER_NAME = "helm.toolkit.fluxcd.io/name"
OWNER_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"
_JOB = ("batch", "Job")


def release_name(namespace: str, name: str, spec: HelmReleaseSpec) -> str:
    """``spec.releaseName``, else ``[targetNamespace-]name``, shortened as Flux does."""
    if spec.release_name:
        return spec.release_name
    full = f"{spec.target_namespace}-{name}" if spec.target_namespace else name
    if len(full) <= 53:
        return full
    return f"{full[:40]}-{hashlib.sha256(full.encode()).hexdigest()[:12]}"


class HelmReleaseReconciler(Reconciler[HelmReleaseSpec]):
    """``helm.toolkit.fluxcd.io/v2`` HelmRelease."""

    kind = HELM_RELEASE
    depended_on = True
    negative_conditions: ClassVar[tuple[str, ...]] = (REMEDIATED,)

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
        access: ClusterAccess,
        external: ExternalArtifacts,
        default_service_account: str | None = None,
        tenancy: Tenancy = UNRESTRICTED,
        concurrent: int = 1,
    ) -> None:
        self.objects = objects
        #: Verified downloads of ExternalArtifact charts, which no fluxd reconciler makes.
        self.external = external
        self.concurrent = concurrent
        self.cache = cache
        self.track_sources = track_sources
        self.access = access
        self.default_service_account = default_service_account
        self.tenancy = tenancy
        self._releases: Releases | None = None
        #: Release actions on remote clusters (``spec.kubeConfig``), by kubeconfig digest,
        #: and which one each HelmRelease uses: one is closed when none uses it any more.
        self._remote: dict[str, Releases] = {}
        self._remote_of: dict[ObjectKey, str] = {}

    @property
    def releases(self) -> Releases:
        """Release actions, set up when the first HelmRelease needs them (the SDK loads
        then, not when the daemon starts)."""
        if self._releases is None:
            self._releases = Releases(kubeconfig_of(self.objects.api), concurrent=self.concurrent)
        return self._releases

    def forget(self, key: ObjectKey) -> None:
        self.track_sources(key, ())
        self.access.forget(key)
        self.external.forget(key)
        if self._remote_of.pop(key, None) is not None:
            self._close_unused_remotes()

    async def _releases_for(self, key: ObjectKey, spec: HelmReleaseSpec) -> Releases:
        """Release actions on the cluster the HelmRelease releases into: the daemon's, or
        the one its ``spec.kubeConfig`` Secret names (read at every reconcile, so a
        rotated kubeconfig is used at once). Raises ``RESTClientError`` as Flux does when
        that Secret cannot be used."""
        if spec.kube_config is None:
            if self._remote_of.pop(key, None) is not None:
                self._close_unused_remotes()
            return self.releases
        try:
            _, document = await self.access.kubeconfig(key.namespace, spec.kube_config)
        except ClusterAccessError as error:
            raise ReconcileError("RESTClientError", str(error)) from error
        text = json.dumps(document, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        releases = self._remote.get(digest)
        if releases is None:
            releases = self._remote[digest] = Releases(text, concurrent=self.concurrent)
        if self._remote_of.get(key) != digest:
            self._remote_of[key] = digest
            self._close_unused_remotes()
        return releases

    def _close_unused_remotes(self) -> None:
        used = set(self._remote_of.values())
        for digest in [digest for digest in self._remote if digest not in used]:
            self._remote.pop(digest).close()

    async def reconcile(self, ctx: Context[HelmReleaseSpec]) -> None:
        spec = ctx.spec
        try:
            rules = custom_rules(spec.health_check_exprs)
        except ValueError as error:
            raise ReconcileError(
                "InvalidCELExpression", f"{TERMINAL}: {error}", stalled=True
            ) from error
        chart_key = await self._chart_source(ctx)
        dependencies = [
            ObjectKey(self.kind.kind, dep.namespace or ctx.key.namespace, dep.name)
            for dep in spec.depends_on
        ]
        configs = [ObjectKey(ref.kind, ctx.key.namespace, ref.name) for ref in spec.values_from]
        self.track_sources(ctx.key, [chart_key, *dependencies, *configs])
        await self._check_dependencies(ctx, dependencies)
        artifact = await self._chart_artifact(ctx.key, chart_key)
        values = await self._values(ctx)
        archive, archive_digest = artifact.content(), artifact.digest
        if chart_key.kind == OCI_REPOSITORY.kind or (
            # An external producer's revision may be a chart version rather than a digest.
            chart_key.kind == EXTERNAL_ARTIFACT.kind and ":" in artifact.revision
        ):
            try:
                archive, _, oci_digest = stamp_digest(archive, artifact.revision)
            except NotAChartError as error:
                raise ReconcileError("ArtifactFailed", f"Could not load chart: {error}") from error
            except DigestVersionError as error:
                raise ReconcileError("ChartMutateError", str(error)) from error
            archive_digest = "sha256:" + hashlib.sha256(archive).hexdigest()
            ctx.status["lastAttemptedRevisionDigest"] = oci_digest
        else:
            ctx.status.pop("lastAttemptedRevisionDigest", None)
        try:
            chart = await anyio.to_thread.run_sync(load_chart, archive, archive_digest)
        except Exception as error:  # the SDK's HelmError, imported lazily
            raise ReconcileError("ArtifactFailed", f"Could not load chart: {error}") from error
        await self._release(ctx, chart, values, rules)

    async def finalize(self, obj: dict[str, Any]) -> None:
        spec = self.kind.parse_spec(obj)
        metadata = obj["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        uninstall = spec.uninstall
        release = release_name(namespace, name, spec)
        storage = spec.storage_namespace or namespace
        user = self._user(namespace, spec)
        key = ObjectKey(self.kind.kind, namespace, name)
        reference = spec.kube_config.secret_ref if spec.kube_config else None
        if reference is not None and not await self._secret_exists(namespace, reference.name):
            # As Flux: without its kubeconfig the remote release cannot be reached, and
            # holding the HelmRelease would only block its namespace from going away.
            return
        releases = await self._releases_for(key, spec)
        try:
            if await releases.latest(release, storage=storage, user=user):
                await releases.uninstall(
                    release,
                    storage=storage,
                    user=user,
                    time_limit=_seconds(uninstall.timeout if uninstall else None, spec),
                    keep_history=bool(uninstall and uninstall.keep_history),
                    wait=not (uninstall and uninstall.disable_wait),
                    disable_hooks=bool(uninstall and uninstall.disable_hooks),
                    deletion_propagation=uninstall.deletion_propagation
                    if uninstall
                    else "background",
                )
        except HelmActionError as error:
            raise ReconcileError(
                "UninstallFailed",
                f"Helm uninstall failed for release {storage}/{release}: {error}",
            ) from error
        chart = (obj.get("status") or {}).get("helmChart")
        if spec.chart is not None and chart:
            chart_namespace, _, chart_name = str(chart).partition("/")
            await self.objects.delete(HELM_CHART, chart_namespace, chart_name)

    async def _secret_exists(self, namespace: str, name: str) -> bool:
        try:
            await self.objects.secret_data(namespace, name)
        except SecretNotFound:
            return False
        return True

    # -- steps ------------------------------------------------------------------------------

    async def _chart_source(self, ctx: Context[HelmReleaseSpec]) -> ObjectKey:
        spec = ctx.spec
        if spec.chart_ref is not None:
            ref = spec.chart_ref
            if ref.kind not in (HELM_CHART.kind, OCI_REPOSITORY.kind, EXTERNAL_ARTIFACT.kind):
                raise ReconcileError(
                    "UnsupportedField",
                    f"spec.chartRef.kind '{ref.kind}' is not supported by fluxd; "
                    "use a HelmChart, an OCIRepository, an ExternalArtifact or spec.chart",
                    stalled=True,
                )
            key = ObjectKey(ref.kind, ref.namespace or ctx.key.namespace, ref.name)
            self._check_access(ctx, key)
            return key
        assert spec.chart is not None
        template = spec.chart.spec
        namespace = template.source_ref.namespace or ctx.key.namespace
        name = f"{ctx.key.namespace}-{ctx.key.name}"
        self._check_access(ctx, ObjectKey(HELM_CHART.kind, namespace, name))
        meta = spec.chart.metadata
        labels = {
            **(dict(meta.labels) if meta and meta.labels else {}),
            OWNER_NAME: ctx.key.name,
            OWNER_NAMESPACE: ctx.key.namespace,
        }
        chart_spec: dict[str, Any] = {
            "chart": template.chart,
            "version": template.version,
            "sourceRef": {"kind": template.source_ref.kind, "name": template.source_ref.name},
            "interval": template.interval or spec.interval,
            "reconcileStrategy": template.reconcile_strategy,
        }
        if template.all_values_files:
            chart_spec["valuesFiles"] = list(template.all_values_files)
        if template.ignore_missing_values_files:
            chart_spec["ignoreMissingValuesFiles"] = True
        if template.verify is not None:
            verify: dict[str, Any] = {"provider": template.verify.provider}
            if template.verify.secret_ref is not None:
                verify["secretRef"] = {"name": template.verify.secret_ref.name}
            chart_spec["verify"] = verify
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
        if meta and meta.annotations:
            metadata["annotations"] = dict(meta.annotations)
        previous = ctx.status.get("helmChart")
        if previous and previous != f"{namespace}/{name}":
            old_namespace, _, old_name = str(previous).partition("/")
            await self.objects.delete(HELM_CHART, old_namespace, old_name)
        if await self.objects.apply(
            HELM_CHART, {"metadata": metadata, "spec": chart_spec}, field_manager=FIELD_MANAGER
        ):
            ctx.log.info("HelmChart applied", helm_chart=f"{namespace}/{name}")
        ctx.status["helmChart"] = f"{namespace}/{name}"
        return ObjectKey(HELM_CHART.kind, namespace, name)

    def _check_access(self, ctx: Context[HelmReleaseSpec], chart: ObjectKey) -> None:
        self.tenancy.check(
            ctx.key.namespace,
            chart.namespace,
            "cross-namespace references are not allowed: cannot access "
            f"{chart.kind} {chart.namespace}/{chart.name}",
        )

    async def _check_dependencies(
        self, ctx: Context[HelmReleaseSpec], dependencies: list[ObjectKey]
    ) -> None:
        """Flux's readiness of each dependency: it exists; then its ``readyExpr`` decides
        when it has one, else it must be Ready at its latest generation."""
        for ref, dependency in zip(ctx.spec.depends_on, dependencies, strict=True):
            where = f"'{dependency.namespace}/{dependency.name}'"
            obj = await self.objects.read(self.kind, dependency.namespace, dependency.name)
            check_dependency(ctx.obj, obj, ref.ready_expr, where)

    async def _chart_artifact(self, consumer: ObjectKey, key: ObjectKey) -> Artifact:
        if key.kind == EXTERNAL_ARTIFACT.kind:
            return await self._external_chart(consumer, key)
        artifact = self.cache.get(key)
        if artifact is not None:
            return artifact
        kind = OCI_REPOSITORY if key.kind == OCI_REPOSITORY.kind else HELM_CHART
        obj = self.objects.cached(kind, key.namespace, key.name)
        ready = conditions.get((obj or {}).get("status") or {}, conditions.READY)
        detail = ready["message"] if ready else "it has no artifact yet"
        raise ReconcileError(
            "SourceNotReady",
            f"{key.kind} '{key.namespace}/{key.name}' is not ready: {detail}",
        )

    async def _external_chart(self, consumer: ObjectKey, key: ObjectKey) -> Artifact:
        """The packaged chart an ExternalArtifact's producer published, verified; the
        reasons and messages are helm-controller's."""
        found = await self.objects.read(EXTERNAL_ARTIFACT, key.namespace, key.name)
        try:
            fetched = await self.external.fetch(consumer, key, found)
        except ExternalArtifactError as error:
            if error.problem == "absent":
                raise ReconcileError(
                    "ArtifactFailed", f"could not get Source object: {error}"
                ) from error
            if error.problem == "unpublished":
                raise ReconcileError(
                    "SourceNotReady",
                    f"ExternalArtifact '{key.namespace}/{key.name}' is not ready: "
                    "does not have an artifact",
                ) from error
            if error.problem == "missing":
                raise ReconcileError(
                    "ArtifactFailed",
                    "Source not ready: artifact not found. Retrying in "
                    f"{format_duration(DEPENDENCY_RETRY)}",
                    retry_after=DEPENDENCY_RETRY,
                ) from error
            raise ReconcileError("ArtifactFailed", f"Could not load chart: {error}") from error
        return fetched.artifact

    async def _values(self, ctx: Context[HelmReleaseSpec]) -> dict[str, Any]:
        try:
            return await release_values(self.objects, ctx.key.namespace, ctx.spec)
        except ValuesError as error:
            raise ReconcileError("ValuesError", str(error)) from error

    async def _release(
        self,
        ctx: Context[HelmReleaseSpec],
        chart: LoadedChart,
        values: dict[str, Any],
        rules: Mapping[tuple[str, str], StatusRule],
    ) -> None:
        spec = ctx.spec
        status = ctx.status
        namespace = spec.target_namespace or ctx.key.namespace
        storage = spec.storage_namespace or ctx.key.namespace
        name = release_name(ctx.key.namespace, ctx.key.name, spec)
        user = self._user(ctx.key.namespace, spec)
        digest = values_digest(values)
        if status.get("lastAttemptedGeneration") != ctx.generation or _handle_request(
            ctx, RESET_AT, "lastHandledResetAt"
        ):
            for counter in ("failures", "installFailures", "upgradeFailures"):
                status.pop(counter, None)
        forced = _handle_request(ctx, FORCE_AT, "lastHandledForceAt")
        status["storageNamespace"] = storage
        status["lastAttemptedRevision"] = chart.version
        status["lastAttemptedConfigDigest"] = digest
        status["lastAttemptedGeneration"] = ctx.generation
        status.pop("lastAttemptedValuesChecksum", None)
        releases = await self._releases_for(ctx.key, spec)
        try:
            current = await releases.latest(name, storage=storage, user=user)
        except HelmActionError as error:
            raise ReconcileError(
                "GetLastReleaseFailed", f"failed to get last release revision: {error}"
            ) from error
        latest = (status.get("history") or [None])[0]
        action = _next_action(current, latest, chart, digest)
        if action is None and forced:
            action = "upgrade"
        rendering = _post_rendering_digests(spec)
        if (
            action is None
            and status.get("observedGeneration") != ctx.generation
            and any(status.get(key, "") != value for key, value in rendering.items())
        ):
            action = "upgrade"  # post-renderers or common metadata changed
        for key, value in rendering.items():
            if value:
                status[key] = value
            else:
                status.pop(key, None)
        subject = f"release {storage}/{name}"
        chart_ref = f"{chart.name}@{chart.version}"
        if action is None:
            assert current is not None
            message = (
                f"Helm {_past(status.get('lastAttemptedReleaseAction'))} succeeded for "
                f"{subject}.v{current.revision} with chart {chart_ref}"
            )
            conditions.mark_true(
                status, RELEASED, _reason(status), message, generation=ctx.generation
            )
            ctx.ready_reason = _reason(status)
            ctx.ready_message = message
            if "inventory" not in status:
                cluster = await self._cluster(ctx, "InventoryBuildFailed")
                refs = await release_refs(
                    current.manifest, namespace=namespace, crds=chart.crds, mapper=cluster.mapper
                )
                status["inventory"] = {"entries": inventory_entries(refs)}
            await self._drift(ctx, current)
            return
        status["lastAttemptedReleaseAction"] = action
        with tempfile.TemporaryDirectory(prefix="fluxd-postrender-") as scratch:
            error_path = Path(scratch) / "error"
            options = dataclasses.replace(
                _options(spec, action),
                post_rendering=dataclasses.replace(
                    post_rendering(ctx.key, spec), error_path=str(error_path)
                ).encode(),
                post_render_strategy=spec.post_render_strategy,
            )
            # Without hooks that must follow Helm's wait, fluxd waits itself, on watches
            # every release shares, rather than Helm listing the namespace per release.
            own_wait = _fluxd_waits(options, chart, values, action)
            deploy = releases.install if action == "install" else releases.upgrade
            started = anyio.current_time()
            try:
                release = await deploy(
                    chart,
                    name,
                    values,
                    namespace=namespace,
                    storage=storage,
                    user=user,
                    options=dataclasses.replace(options, wait=False) if own_wait else options,
                )
            except HelmActionError as error:
                reason = str(error)
                if error_path.is_file():
                    reason = f"{reason}: {error_path.read_text()}"
                failure = await self._failed(
                    ctx, releases, action, name, storage, user, chart_ref, reason
                )
                raise failure from error
        cluster = await self._cluster(ctx, "InventoryBuildFailed")
        refs = await release_refs(
            release.manifest, namespace=namespace, crds=chart.crds, mapper=cluster.mapper
        )
        if own_wait or (rules and options.wait and options.wait_strategy == "watcher"):
            if own_wait:
                remaining = options.timeout - (anyio.current_time() - started)
                chosen = [r for r in refs if options.wait_for_jobs or (r.group, r.kind) != _JOB]
            else:  # Helm waited; the kinds healthCheckExprs name are fluxd's to judge
                remaining = options.timeout
                chosen = [r for r in refs if (r.group, r.kind) in rules or (r.group, "") in rules]
            try:
                await self._wait_healthy(cluster, chosen, rules, timeout=remaining)
            except (HealthCheckError, ApplyError) as error:
                if own_wait:
                    await self._record_failed_wait(
                        cluster, action, storage, name, release, current, str(error)
                    )
                failure = await self._failed(
                    ctx,
                    releases,
                    action,
                    name,
                    storage,
                    user,
                    chart_ref,
                    str(error),
                    unhealthy=not own_wait,
                )
                raise failure from error
        _record(status, release, digest, action)
        status["inventory"] = {"entries": inventory_entries(refs)}
        title = action.capitalize()
        message = (
            f"Helm {action} succeeded for {subject}.v{release.revision} with chart {chart_ref}"
        )
        conditions.mark_true(
            status, RELEASED, f"{title}Succeeded", message, generation=ctx.generation
        )
        ctx.event("Normal", f"{title}Succeeded", message, {"revision": chart.version})
        ctx.ready_reason = f"{title}Succeeded"
        ctx.ready_message = message
        for counter in ("failures", "installFailures", "upgradeFailures"):
            status.pop(counter, None)
        if spec.test is not None and spec.test.enable:
            await self._test(ctx, releases, name, storage, user, release, chart_ref)

    async def _wait_healthy(
        self,
        cluster: Cluster,
        refs: list[ObjectRef],
        rules: Mapping[tuple[str, str], StatusRule],
        *,
        timeout: float,  # noqa: ASYNC109 - the action's timeout, as Helm's own wait has it
    ) -> None:
        """Wait for ``refs`` to be healthy (kstatus, or ``healthCheckExprs`` for the kinds
        they name). Raises :class:`HealthCheckError` as the wait does, :class:`ApplyError`
        for a kind the cluster does not serve."""
        targets = []
        for ref in refs:
            resource = await cluster.mapper.resource_for(ref.api_version, ref.kind)
            targets.append(HealthRef(resource, ref.namespace or None, ref.name, ref.kind))
        await self.access.health.wait(cluster.api, targets, timeout=max(timeout, 0.0), rules=rules)

    async def _record_failed_wait(
        self,
        cluster: Cluster,
        action: str,
        storage: str,
        name: str,
        release: Release,
        previous: Release | None,
        error: str,
    ) -> None:
        """Store the release as Helm's failed wait would have (the upgrade's previous
        revision deployed again), so remediation and ``helm history`` see a failure."""
        replaced = None
        if action == "upgrade" and previous is not None and previous.status == "deployed":
            replaced = previous.revision
        try:
            await record_failed_wait(
                cluster.api,
                namespace=storage,
                name=name,
                action=action,
                revision=release.revision,
                error=error,
                replaced=replaced,
            )
        except ApiError as failure:
            raise ReconcileError(
                f"{action.capitalize()}Failed",
                f"recording the failed release {storage}/{name}.v{release.revision}: {failure}",
            ) from failure

    async def _test(
        self,
        ctx: Context[HelmReleaseSpec],
        releases: Releases,
        name: str,
        storage: str,
        user: str | None,
        release: Release,
        chart_ref: str,
    ) -> None:
        spec = ctx.spec
        assert spec.test is not None
        subject = f"release {storage}/{name}.v{release.revision} with chart {chart_ref}"
        try:
            tested = await releases.test(
                name, storage=storage, user=user, time_limit=_seconds(spec.test.timeout, spec)
            )
        except HelmActionError as error:
            message = f"Helm test failed for {subject}: {error}"
            conditions.mark_false(
                ctx.status, TEST_SUCCESS, "TestFailed", message, generation=ctx.generation
            )
            if spec.test.ignore_failures:
                ctx.event("Warning", "TestFailed", message)
                return
            raise ReconcileError("TestFailed", message) from error
        hooks = ", ".join(hook.name for hook in tested.test_hooks) or "no test hooks"
        message = f"Helm test succeeded for {subject}: {hooks}"
        history = ctx.status.get("history") or []
        if history:
            history[0]["testHooks"] = {
                hook.name: {
                    "lastStarted": hook.started,
                    "lastCompleted": hook.completed,
                    "phase": hook.phase,
                }
                for hook in tested.test_hooks
            }
        conditions.mark_true(
            ctx.status, TEST_SUCCESS, "TestSucceeded", message, generation=ctx.generation
        )
        ctx.event("Normal", "TestSucceeded", message)

    async def _failed(
        self,
        ctx: Context[HelmReleaseSpec],
        releases: Releases,
        action: str,
        name: str,
        storage: str,
        user: str | None,
        chart_ref: str,
        error: str,
        *,
        unhealthy: bool = False,
    ) -> ReconcileError:
        """Count the failure, remediate as configured (when Helm stored a failed release,
        or a deployed one whose objects failed ``healthCheckExprs``: ``unhealthy``), and
        return the failure to raise."""
        spec = ctx.spec
        status = ctx.status
        title = action.capitalize()
        counter = f"{action}Failures"
        status[counter] = int(status.get(counter) or 0) + 1
        status["failures"] = int(status.get("failures") or 0) + 1
        message = (
            f"Helm {action} failed for release {storage}/{name} with chart {chart_ref}: {error}"
        )
        conditions.mark_false(
            status, RELEASED, f"{title}Failed", message, generation=ctx.generation
        )
        ctx.event("Warning", f"{title}Failed", message)
        retry = _retry_interval(spec, action)
        if retry is not None:
            # RetryOnFailure: the failed release stays as Helm stored it, untouched, and the
            # next attempt (an upgrade of it) comes after the interval; no retry limit.
            return ReconcileError(
                f"{title}Failed",
                f"{message}; retrying after {format_duration(retry)}",
                retry_after=retry,
            )
        chosen: InstallRemediation | UpgradeRemediation | None = None
        if action == "install" and spec.install:
            chosen = spec.install.remediation
        elif action == "upgrade" and spec.upgrade:
            chosen = spec.upgrade.remediation
        retries = chosen.retries if chosen else 0
        failures = int(status[counter])
        exhausted = 0 <= retries < failures
        remediate_last = (
            chosen.remediate_last_failure
            if chosen is not None and chosen.remediate_last_failure is not None
            else retries > 0
        )
        if not exhausted or remediate_last:
            await self._remediate(ctx, releases, action, name, storage, user, unhealthy=unhealthy)
        if exhausted:
            return ReconcileError(
                "RetriesExceeded",
                f"Failed to {action} after {failures} attempt(s): {message}",
                stalled=True,
            )
        return ReconcileError(f"{title}Failed", message)

    async def _remediate(
        self,
        ctx: Context[HelmReleaseSpec],
        releases: Releases,
        action: str,
        name: str,
        storage: str,
        user: str | None,
        *,
        unhealthy: bool,
    ) -> None:
        spec = ctx.spec
        try:
            failed = await releases.latest(name, storage=storage, user=user)
        except HelmActionError:
            failed = None
        if failed is None or (failed.status == "deployed" and not unhealthy):
            return  # the action failed before Helm stored a release: nothing to undo
        uninstall = action == "install" or bool(
            spec.upgrade
            and spec.upgrade.remediation
            and spec.upgrade.remediation.effective_strategy == "uninstall"
        )
        try:
            if uninstall:
                await releases.uninstall(
                    name, storage=storage, user=user, time_limit=spec.timeout_seconds
                )
                reason, message = (
                    "UninstallSucceeded",
                    f"Helm uninstall succeeded for release {storage}/{name}",
                )
            else:
                rolled = await releases.rollback(
                    name, storage=storage, user=user, time_limit=spec.timeout_seconds
                )
                reason = "RollbackSucceeded"
                message = (
                    f"Helm rollback to previous release {storage}/{name}.v{rolled.revision} "
                    "succeeded"
                )
        except HelmActionError as error:
            reason = "UninstallFailed" if uninstall else "RollbackFailed"
            conditions.mark_false(
                ctx.status, REMEDIATED, reason, str(error), generation=ctx.generation
            )
            ctx.event("Warning", reason, str(error))
            return
        conditions.mark_true(ctx.status, REMEDIATED, reason, message, generation=ctx.generation)
        ctx.event("Normal", reason, message)

    async def _cluster(self, ctx: Context[HelmReleaseSpec], reason: str) -> Cluster:
        """The cluster the release's objects live in, as the HelmRelease's identity."""
        try:
            return await self.access.for_kustomization(ctx.key, ctx.spec)
        except ClusterAccessError as error:
            raise ReconcileError(reason, str(error)) from error

    async def _drift(self, ctx: Context[HelmReleaseSpec], current: Release) -> None:
        """Drift detection on a release in sync: report it, and with ``enabled`` correct it."""
        detection = ctx.spec.drift_detection
        mode = detection.effective_mode if detection else "disabled"
        if detection is None or mode == "disabled":
            conditions.delete(ctx.status, DRIFTED)
            return
        try:
            ignore = DriftIgnore(detection.ignore, field="spec.driftDetection.ignore")
        except ValueError as error:
            raise ReconcileError("InvalidSpec", str(error), stalled=True) from error
        cluster = await self._cluster(ctx, "DriftDetectionFailed")
        objects = drift.release_objects(
            current.manifest, release=current.name, namespace=current.namespace
        )
        try:
            drifts = await drift.detect(cluster.applier, objects, ignore)
        except ApplyError as error:
            raise ReconcileError("DriftDetectionFailed", str(error)) from error
        release = f"{current.namespace}/{current.name}.v{current.revision}"
        if not drifts:
            conditions.mark_false(
                ctx.status,
                DRIFTED,
                "NoDriftDetected",
                "No drift detected against the cluster state",
                generation=ctx.generation,
            )
            return
        summary = "\n".join(str(found) for found in drifts)
        message = (
            f"Cluster state of release {release} has drifted from the desired state:\n{summary}"
        )
        ctx.event("Warning", "DriftDetected", message)
        conditions.mark_true(
            ctx.status, DRIFTED, "DriftDetected", message, generation=ctx.generation
        )
        if mode != "enabled":
            return
        try:
            changes = await drift.correct(cluster.applier, drifts, ignore)
        except ApplyError as error:
            ctx.event(
                "Warning",
                "DriftCorrectionFailed",
                f"Failed to correct cluster state of release {release}:\n{error}",
            )
            return
        ctx.event(
            "Normal",
            "DriftCorrected",
            f"Cluster state of release {release} has been corrected:\n{changes.summary()}",
        )

    def _user(self, namespace: str, spec: HelmReleaseSpec) -> str | None:
        account = spec.service_account_name or self.default_service_account
        return f"system:serviceaccount:{namespace}:{account}" if account else None


def _handle_request(ctx: Context[HelmReleaseSpec], annotation: str, handled: str) -> bool:
    """Whether the request ``annotation`` is new: set to the same value as the object's
    ``requestedAt`` (so a stale one does not act again) and not yet recorded in the
    status field ``handled``, where it is recorded now."""
    annotations = ctx.obj["metadata"].get("annotations") or {}
    value = annotations.get(annotation)
    requested = annotations.get(REQUESTED_AT_ANNOTATION)
    if not value or value != requested or ctx.status.get(handled) == value:
        return False
    ctx.status[handled] = value
    return True


def _next_action(
    current: Release | None, latest: dict[str, Any] | None, chart: LoadedChart, digest: str
) -> str | None:
    """install, upgrade, or None when the release is what the spec asks for."""
    if current is None or current.status == "uninstalled":
        return "install"
    if current.status != "deployed" or latest is None:
        return "upgrade"
    if latest.get("version") != current.revision:
        return "upgrade"  # someone else made a newer revision
    same = (
        current.chart_name == chart.name
        and current.chart_version == chart.version
        and latest.get("configDigest") == digest
    )
    return None if same else "upgrade"


def _record(status: dict[str, Any], release: Release, digest: str, action: str) -> None:
    snapshot = {
        "apiVersion": "v2",
        "action": action,
        "name": release.name,
        "namespace": release.namespace,
        "version": release.revision,
        "status": release.status,
        "chartName": release.chart_name,
        "chartVersion": release.chart_version,
        "appVersion": release.app_version or None,
        "configDigest": digest,
        "ociDigest": status.get("lastAttemptedRevisionDigest"),
        "firstDeployed": release.first_deployed,
        "lastDeployed": release.last_deployed,
        "digest": "sha256:"
        + hashlib.sha256(
            json.dumps(
                [
                    release.name,
                    release.namespace,
                    release.revision,
                    release.chart_name,
                    release.chart_version,
                    digest,
                    release.last_deployed,
                ]
            ).encode()
        ).hexdigest(),
    }
    snapshot = {key: value for key, value in snapshot.items() if value not in (None, "")}
    history = [s for s in status.get("history") or [] if s.get("version") != release.revision]
    status["history"] = [snapshot, *history][:MAX_SNAPSHOTS]
    status["lastReleaseRevision"] = release.revision


def _options(spec: HelmReleaseSpec, action: str) -> ActionOptions:
    if action == "install":
        install = spec.install
        crds = (install.crds if install else None) or "Create"
        return ActionOptions(
            timeout=_seconds(install.timeout if install else None, spec),
            wait=not (install and install.disable_wait),
            wait_strategy=_waiter(spec),
            wait_for_jobs=not (install and install.disable_wait_for_jobs),
            disable_hooks=bool(install and install.disable_hooks),
            disable_schema_validation=bool(install and install.disable_schema_validation),
            skip_crds=crds == "Skip" or bool(install and install.skip_crds),
            create_namespace=bool(install and install.create_namespace),
            replace=bool(install and install.replace),
            max_history=spec.effective_max_history,
        )
    upgrade = spec.upgrade
    crds = (upgrade.crds if upgrade else None) or "Skip"
    return ActionOptions(
        timeout=_seconds(upgrade.timeout if upgrade else None, spec),
        wait=not (upgrade and upgrade.disable_wait),
        wait_strategy=_waiter(spec),
        wait_for_jobs=not (upgrade and upgrade.disable_wait_for_jobs),
        disable_hooks=bool(upgrade and upgrade.disable_hooks),
        disable_schema_validation=bool(upgrade and upgrade.disable_schema_validation),
        skip_crds=crds == "Skip",
        force=bool(upgrade and upgrade.force),
        cleanup_on_fail=bool(upgrade and upgrade.cleanup_on_fail),
        max_history=spec.effective_max_history,
    )


def post_rendering(key: ObjectKey, spec: HelmReleaseSpec) -> PostRendering:
    """Flux's post-renderers: the user's kustomize steps, commonMetadata, origin labels."""
    steps = []
    for renderer in spec.post_renderers:
        kustomize = renderer.kustomize
        if kustomize is None:
            continue
        patches = [to_dict(patch) for patch in kustomize.patches]
        # v2beta1's forms: a strategic merge patch names its target, a JSON 6902 one not.
        patches += [{"patch": json.dumps(patch)} for patch in kustomize.patches_strategic_merge]
        patches += [
            {
                "patch": json.dumps([to_dict(op) for op in patch.patch]),
                "target": to_dict(patch.target),
            }
            for patch in kustomize.patches_json6902
        ]
        steps.append({"patches": patches, "images": [to_dict(i) for i in kustomize.images]})
    common = spec.common_metadata
    return PostRendering(
        kustomize=steps,
        labels=dict(common.labels) if common else {},
        annotations=dict(common.annotations) if common else {},
        origin_labels={OWNER_NAME: key.name, OWNER_NAMESPACE: key.namespace},
    )


def _post_rendering_digests(spec: HelmReleaseSpec) -> dict[str, str]:
    """Flux's status digests of ``postRenderers`` and ``commonMetadata`` ("" when unset):
    sha256 of their JSON as Go encodes it (compact, HTML-escaped, a final newline)."""

    def digest(value: object) -> str:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"
        for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
            text = text.replace(char, escaped)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    return {
        "observedPostRenderersDigest": digest([to_dict(r) for r in spec.post_renderers])
        if spec.post_renderers
        else "",
        "observedCommonMetadataDigest": digest(to_dict(spec.common_metadata))
        if spec.common_metadata is not None
        else "",
    }


def _fluxd_waits(
    options: ActionOptions, chart: LoadedChart, values: Mapping[str, Any], action: str
) -> bool:
    """Whether fluxd, not Helm, waits for the action's objects: Helm's kstatus waiter was
    asked for, no hook has to run after it (``post-install``/``post-upgrade``, in the
    chart or in the values), and no failed upgrade has to be cleaned up by Helm."""
    if not options.wait or options.wait_strategy != "watcher":
        return False
    if action == "upgrade" and options.cleanup_on_fail:
        return False
    late_hooks = chart.hooks_after_wait or mentions_late_hooks(json.dumps(values).encode())
    return options.disable_hooks or not late_hooks


def _waiter(spec: HelmReleaseSpec) -> str:
    """Helm's waiter for ``spec.waitStrategy``: Flux's ``poller`` is Helm's kstatus
    ``watcher``; ``legacy`` is Helm 3's readiness polling, kept by Helm 4."""
    legacy = spec.wait_strategy is not None and spec.wait_strategy.name == "legacy"
    return "legacy" if legacy else "watcher"


def _retry_interval(spec: HelmReleaseSpec, action: str) -> float | None:
    """Seconds until a failed ``action`` is tried again when its strategy is
    ``RetryOnFailure`` (5m unless ``retryInterval`` says), None when it is remediated."""
    settings = spec.install if action == "install" else spec.upgrade
    strategy = settings.strategy if settings else None
    if strategy is None or strategy.name != "RetryOnFailure":
        return None
    return parse_duration(strategy.retry_interval) if strategy.retry_interval else 300.0


def _seconds(timeout: str | None, spec: HelmReleaseSpec) -> float:
    return parse_duration(timeout) if timeout else spec.timeout_seconds


def _reason(status: dict[str, Any]) -> str:
    return f"{str(status.get('lastAttemptedReleaseAction') or 'install').capitalize()}Succeeded"


def _past(action: object) -> str:
    return str(action or "install")
