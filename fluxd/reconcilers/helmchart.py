"""HelmChart: a packaged chart in the shared cache, from a repository or a source tree.

Steps, in order (each failure carries Flux's reason and condition):

1. **source**: ``spec.sourceRef`` in the object's namespace; the scheduler is told, so a
   new artifact of it wakes this chart (``SourceUnavailable`` when it does not exist,
   ``NoSourceArtifact`` until it has an artifact). A chart whose source artifact and
   spec did not change since its last artifact stops here;
2. **chart**, from a HelmRepository: the version ``spec.version`` selects in its index
   (``InvalidChartReference``: no such chart or version, a malformed range), downloaded
   with the repository's credentials (``ChartPullError``). From a HelmRepository of
   ``type: oci`` (which holds no artifact, as in Flux): the image ``<url>/<chart>`` of its
   registry, the version an exact tag or the newest tag in range (Helm's ``_`` read as
   ``+``), its Helm chart layer stored as pushed, with the repository's ``secretRef``
   (dockerconfigjson or username/password), ``certSecretRef`` and ``insecure``; the tag
   list is asked again each interval, the layer only when the version moved
   (``ChartPullError``; ``AuthenticationFailed`` for a Secret or a login the registry
   refuses). From a GitRepository or Bucket: the chart directory (or ``.tgz``) at
   ``spec.chart`` of its files, its missing dependencies fetched as ``helm dependency
   build`` would (from ``file://`` paths of the same source, or HTTP and OCI repositories
   with the credentials of the namespace's HelmRepository serving that URL;
   ``DependencyBuildError`` naming the dependency), packaged; with ``reconcileStrategy:
   Revision`` its version gains the source revision as build metadata, as Flux writes it;
3. **values files**: ``spec.valuesFiles`` merged into the chart's ``values.yaml`` in order
   (``ValuesFilesError`` for a missing file unless ``ignoreMissingValuesFiles``, or bad
   YAML), the version gaining the generation as build metadata so consumers notice;
4. **artifact**: the ``.tgz`` at ``<name>-<version>.tgz`` (``latest.tar.gz`` as
   ``status.url``), revision = the chart version, with the observations Flux records
   (``observedChartName``, ``observedSourceArtifactRevision``, ``observedValuesFiles``).

``spec.verify`` (``provider: cosign`` with the ``*.pub`` keys of ``secretRef``) checks,
at every reconcile as Flux does, the cosign signature of the selected chart version's
manifest digest in an OCI registry before anything is pulled, and the chart is then pulled
by that digest (``SourceVerified``; a missing or bad signature is ``ChartVerificationError``
with ``BuildFailed``, the stored artifact kept). A chart of an HTTP HelmRepository cannot
be verified, as in Flux: ``ChartVerificationError``, nothing downloaded.

fluxd does not yet verify keyless or notation signatures, or take registry credentials
from a cloud ``provider`` of an OCI HelmRepository: each stalls (``UnsupportedField``)
with a message naming the field rather than building something else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

import anyio.to_thread
import yaml

from fluxd.api import (
    HELM_CHART,
    HELM_REPOSITORY,
    HelmChartSpec,
    HelmRepositorySpec,
    OCIRepositoryVerification,
    SpecError,
    parse_duration,
)
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import helm, oci
from fluxd.sources.artifact import Artifact, artifact_url, make_artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.helm import oci as helm_oci
from fluxd.sources.helm.dependencies import DependencyError, build_dependencies
from fluxd.sources.helm.indexes import ParsedIndexes
from fluxd.sources.helm.package import (
    ChartFiles,
    InvalidChart,
    merge_values_files,
    read_archive,
    read_directory,
)
from fluxd.sources.helm.remotes import NamespaceRepositories

__all__ = ["HelmChartReconciler"]

FETCH_FAILED = "FetchFailed"
BUILD_FAILED = "BuildFailed"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
SOURCE_VERIFIED = "SourceVerified"
CHART_VERIFICATION_ERROR = "ChartVerificationError"
LATEST = "latest.tar.gz"
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class _Recipe:
    """What a chart artifact is made of: when none of it changed, neither did the chart."""

    source_revision: str
    chart: str
    version: str
    values_files: tuple[str, ...]
    ignore_missing: bool
    strategy: str
    generation: int


@dataclass(frozen=True)
class _Build:
    chart: ChartFiles | None  # None: the downloaded archive is stored as is
    archive: bytes
    name: str
    version: str
    packaged: bool
    values_files: tuple[str, ...]
    #: The version an OCI registry was asked for, so an unchanged answer reuses the build.
    selected: str = ""

    @property
    def reason(self) -> str:
        return "ChartPackageSucceeded" if self.packaged else "ChartPullSucceeded"

    def summary(self) -> str:
        action = "packaged" if self.packaged else "pulled"
        text = f"{action} '{self.name}' chart with version '{self.version}'"
        if self.values_files:
            text += f" and merged values files [{' '.join(self.values_files)}]"
        return text


class HelmChartReconciler(Reconciler[HelmChartSpec]):
    """``source.toolkit.fluxcd.io/v1`` HelmChart."""

    kind = HELM_CHART
    negative_conditions: ClassVar[tuple[str, ...]] = (FETCH_FAILED, BUILD_FAILED)

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        artifact_base_url: str,
        track_sources: Callable[[ObjectKey, Iterable[ObjectKey]], None],
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.artifact_base_url = artifact_base_url
        self.track_sources = track_sources
        self.indexes = ParsedIndexes()
        self._recipes: dict[ObjectKey, _Recipe] = {}
        self._builds: dict[ObjectKey, _Build] = {}

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)
        self._recipes.pop(key, None)
        self._builds.pop(key, None)
        self.track_sources(key, ())

    async def reconcile(self, ctx: Context[HelmChartSpec]) -> None:
        spec = ctx.spec
        _refuse_unsupported_verify(spec.verify)
        verified = conditions.get(ctx.status, SOURCE_VERIFIED)
        if spec.verify is None or (verified is not None and verified["status"] == "False"):
            conditions.delete(ctx.status, SOURCE_VERIFIED)  # a failed check is recalculated
        ref = spec.source_ref
        source_key = ObjectKey(ref.kind, ctx.key.namespace, ref.name)
        self.track_sources(ctx.key, [source_key])
        repository = self._repository_spec(source_key) if ref.kind == HELM_REPOSITORY.kind else None
        registry = repository if repository is not None and repository.is_oci else None
        # An OCI HelmRepository holds no artifact, as in Flux: its registry is asked directly.
        source = None if registry is not None else self.cache.get(source_key)
        recipe = _Recipe(
            source_revision=source.revision if source is not None else "",
            chart=spec.chart,
            version=spec.version,
            values_files=spec.all_values_files,
            ignore_missing=spec.ignore_missing_values_files,
            strategy=spec.reconcile_strategy,
            generation=ctx.generation,
        )
        current = self.cache.get(ctx.key)
        previous = self._builds.get(ctx.key)
        if current is None or self._recipes.get(ctx.key) != recipe:
            previous = None
        if registry is not None:
            build = await self._from_registry(ctx, registry, previous)
        elif source is None:
            raise ReconcileError(
                "NoSourceArtifact",
                f"no artifact available for {ref.kind} source '{ref.name}'",
                condition=FETCH_FAILED,
            )
        elif previous is not None:
            build = previous
        elif repository is not None:
            build = await self._from_repository(ctx, repository, source)
        else:
            build = await self._from_tree(ctx, source)
        if current is None or build is not previous:
            current = self._store(ctx, build)
            self._recipes[ctx.key] = recipe
            self._builds[ctx.key] = build
        self._report(ctx, current, build, source)

    def _repository_spec(self, key: ObjectKey) -> HelmRepositorySpec:
        obj = self.objects.cached(HELM_REPOSITORY, key.namespace, key.name)
        if obj is None:
            raise ReconcileError(
                "SourceUnavailable",
                f"failed to get source: HelmRepository '{key.namespace}/{key.name}' not found",
                condition=FETCH_FAILED,
            )
        try:
            repository = HELM_REPOSITORY.parse_spec(obj)
        except SpecError as error:
            raise ReconcileError(
                "SourceUnavailable", f"failed to get source: {error}", condition=FETCH_FAILED
            ) from error
        if repository.is_oci and repository.provider != "generic":
            raise ReconcileError(
                "UnsupportedField",
                f"HelmRepository '{key.name}' spec.provider '{repository.provider}' (cloud "
                "workload identity) is not supported by fluxd yet: use 'generic' with a "
                "spec.secretRef",
                stalled=True,
            )
        return repository

    async def _from_registry(
        self,
        ctx: Context[HelmChartSpec],
        repository: HelmRepositorySpec,
        previous: _Build | None,
    ) -> _Build:
        """The chart from an OCI HelmRepository; ``previous`` when the version it selects
        is the one built last (nothing downloaded then)."""
        spec = ctx.spec
        timeout = parse_timeout(repository.timeout)
        try:
            image = helm_oci.chart_image(repository.url, spec.chart, insecure=repository.insecure)
        except oci.RegistryError as error:
            raise ReconcileError(
                "URLInvalid",
                f"invalid Helm repository URL '{repository.url}' for chart '{spec.chart}': {error}",
                condition=FETCH_FAILED,
                stalled=True,
            ) from error
        try:
            auth = await helm_oci.chart_registry_auth(
                self.objects, ctx.key.namespace, repository, image.host
            )
        except oci.RegistryError as error:
            raise _registry_error(
                error, "failed to get chart version for remote reference"
            ) from error
        async with oci.RegistryClient(image, auth, timeout=timeout) as client:
            try:
                version = await helm_oci.select_chart_version(client, spec.version)
            except oci.RegistryError as error:
                raise _registry_error(
                    error, "failed to get chart version for remote reference"
                ) from error
            digest = None
            if spec.verify is not None:
                digest = await self._verify(ctx, client, image, version, spec.verify)
            if previous is not None and previous.selected == version:
                return previous
            try:
                archive = await helm_oci.pull_chart(client, version, digest=digest)
            except oci.RegistryError as error:
                raise _registry_error(
                    error, "failed to download chart for remote reference"
                ) from error
        build = await self._pulled(ctx, archive, spec.chart, version)
        return replace(build, selected=version)

    async def _verify(
        self,
        ctx: Context[HelmChartSpec],
        client: oci.RegistryClient,
        image: oci.Repository,
        version: str,
        verify: OCIRepositoryVerification,
    ) -> str:
        """The manifest digest of chart ``version``, once a ``*.pub`` key of
        ``verify.secretRef`` verified its cosign signature; ``SourceVerified`` False and an
        error with Flux's reason otherwise."""
        assert verify.secret_ref is not None  # keyless verification is refused earlier
        tag = helm_oci.chart_tag(version)
        try:
            digest = await client.resolve(tag)
        except oci.RegistryError as error:
            raise _registry_error(
                error, "failed to get chart version for remote reference"
            ) from error
        namespace, name = ctx.key.namespace, verify.secret_ref.name
        try:
            try:
                data = await self.objects.secret_data(namespace, name)
            except SecretNotFound as error:
                raise oci.RegistryError(
                    f"{error}: create it or fix spec.verify.secretRef",
                    reason=oci.VERIFICATION_ERROR,
                ) from error
            keys = oci.public_keys(data, f"{namespace}/{name}")
        except oci.RegistryError as error:
            text = f"failed to verify the signature using provider '{verify.provider}': {error}"
            conditions.mark_false(
                ctx.status,
                SOURCE_VERIFIED,
                oci.VERIFICATION_ERROR,
                text,
                generation=ctx.generation,
            )
            raise ReconcileError(oci.VERIFICATION_ERROR, text) from error
        try:
            await oci.verify_signatures(client, digest, keys, reference=f"{image}@{digest}")
        except oci.RegistryError as error:
            text = f"chart verification error: failed to verify oci://{image}:{tag}: {error}"
            conditions.mark_false(
                ctx.status,
                SOURCE_VERIFIED,
                oci.VERIFICATION_ERROR,
                text,
                generation=ctx.generation,
            )
            raise ReconcileError(CHART_VERIFICATION_ERROR, text, condition=BUILD_FAILED) from error
        return digest

    async def _from_repository(
        self, ctx: Context[HelmChartSpec], repository: HelmRepositorySpec, source: Artifact
    ) -> _Build:
        spec = ctx.spec
        try:
            index = await anyio.to_thread.run_sync(self.indexes.of, source)
            version = index.find(spec.chart, spec.version)
        except (LookupError, ValueError) as error:
            raise ReconcileError(
                "InvalidChartReference",
                f"invalid chart reference: failed to get chart version for remote reference: "
                f"{error}",
                condition=FETCH_FAILED,
                stalled=True,
            ) from error
        if spec.verify is not None:
            text = (
                f"chart verification error: failed to verify chart '{version.name}' version "
                f"'{version.version}': not implemented for the HTTP HelmRepository "
                f"'{spec.source_ref.name}'; spec.verify applies to charts of a HelmRepository "
                "of type 'oci' only"
            )
            conditions.mark_false(
                ctx.status, SOURCE_VERIFIED, oci.VERIFICATION_ERROR, text, generation=ctx.generation
            )
            raise ReconcileError(CHART_VERIFICATION_ERROR, text, condition=BUILD_FAILED)
        previous = self._builds.get(ctx.key)
        if (
            previous is not None
            and not spec.all_values_files
            and (previous.name, previous.version) == (version.name, version.version)
        ):
            return previous  # the index moved, the chart did not: no download
        timeout = parse_timeout(repository.timeout)
        try:
            auth = await helm.repository_auth(self.objects, ctx.key.namespace, repository)
            archive = await helm.download_chart(repository.url, version, auth, timeout)
        except helm.RepositoryError as error:
            raise ReconcileError(
                "ChartPullError",
                f"chart pull error: failed to download chart for remote reference: {error}",
                condition=FETCH_FAILED,
            ) from error
        return await self._pulled(ctx, archive, version.name, version.version)

    async def _pulled(
        self, ctx: Context[HelmChartSpec], archive: bytes, name: str, version: str
    ) -> _Build:
        """A downloaded chart: stored as it is, or repackaged with the values files."""
        try:
            chart = await anyio.to_thread.run_sync(read_archive, archive)
        except InvalidChart as error:
            raise ReconcileError(
                "ChartPackageError",
                f"chart package error: failed to load downloaded chart: {error}",
                condition=BUILD_FAILED,
            ) from error
        if not ctx.spec.all_values_files:
            return _Build(None, archive, name, version, False, ())
        return await anyio.to_thread.run_sync(self._with_values, ctx, chart, "")

    async def _from_tree(self, ctx: Context[HelmChartSpec], source: Artifact) -> _Build:
        """The chart at ``spec.chart`` of a source's files, its missing dependencies
        fetched, packaged."""
        spec = ctx.spec
        chart = await anyio.to_thread.run_sync(_chart_in_tree, spec.chart, source.files)
        if not spec.chart.endswith(".tgz"):  # a packaged chart carries its dependencies
            chart = await self._with_dependencies(ctx, chart, source)
        metadata = ""
        if spec.reconcile_strategy == "Revision":
            revision = source.revision.rpartition(":")[2]
            metadata = revision[:12] if len(revision) > 12 else revision
        return await anyio.to_thread.run_sync(self._with_values, ctx, chart, metadata)

    async def _with_dependencies(
        self, ctx: Context[HelmChartSpec], chart: ChartFiles, source: Artifact
    ) -> ChartFiles:
        """``chart`` with the dependencies it declares but does not carry added."""
        remotes = NamespaceRepositories(
            objects=self.objects,
            cache=self.cache,
            indexes=self.indexes,
            namespace=ctx.key.namespace,
        )
        try:
            chart, resolved = await build_dependencies(chart, source.files, ctx.spec.chart, remotes)
        except DependencyError as error:
            raise ReconcileError(
                "DependencyBuildError", f"dependency build error: {error}", condition=BUILD_FAILED
            ) from error
        if resolved:
            ctx.event("Normal", "ResolvedDependencies", f"resolved {resolved} chart dependencies")
        return chart

    def _with_values(self, ctx: Context[HelmChartSpec], chart: ChartFiles, metadata: str) -> _Build:
        """The chart packaged with its values files merged and its version's build metadata
        set (``metadata``, then the generation when values files are merged)."""
        spec = ctx.spec
        used: list[str] = []
        if spec.all_values_files:
            try:
                chart, used = merge_values_files(
                    chart, spec.all_values_files, ignore_missing=spec.ignore_missing_values_files
                )
            except InvalidChart as error:
                raise ReconcileError(
                    "ValuesFilesError",
                    f"values files merge error: failed to merge chart values: {error}",
                    condition=BUILD_FAILED,
                    stalled=True,
                ) from error
            metadata = f"{metadata}.{ctx.generation}" if metadata else str(ctx.generation)
        if metadata:
            chart = _with_build_metadata(chart, metadata)
        return _Build(chart, chart.archive(), chart.name, chart.version, True, tuple(used))

    def _store(self, ctx: Context[HelmChartSpec], build: _Build) -> Artifact:
        file_name = f"{build.name}-{build.version}.tgz"
        artifact = make_artifact(
            kind=self.kind.kind,
            namespace=ctx.key.namespace,
            name=ctx.key.name,
            revision=build.version,
            files={file_name: build.archive},
            blob=file_name,
            alias=LATEST,
            base_url=self.artifact_base_url,
        )
        if self.cache.put(ctx.key, artifact):
            ctx.event(
                "Normal",
                build.reason,
                build.summary(),
                {
                    "source.toolkit.fluxcd.io/revision": artifact.revision,
                    "source.toolkit.fluxcd.io/digest": artifact.digest,
                },
            )
        return self.cache.get(ctx.key) or artifact

    def _report(
        self,
        ctx: Context[HelmChartSpec],
        artifact: Artifact,
        build: _Build,
        source: Artifact | None,
    ) -> None:
        status = ctx.status
        status["artifact"] = artifact.to_status()
        status["url"] = artifact_url(self.artifact_base_url, artifact.alias_path or artifact.path)
        status["observedChartName"] = build.name
        if source is not None:
            status["observedSourceArtifactRevision"] = source.revision
        if ctx.spec.ignore_missing_values_files and build.values_files:
            status["observedValuesFiles"] = list(build.values_files)
        else:
            status.pop("observedValuesFiles", None)
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, build.reason, build.summary(), generation=ctx.generation
        )
        conditions.delete(status, "ArtifactOutdated")
        if ctx.spec.verify is not None:
            conditions.mark_true(
                status,
                SOURCE_VERIFIED,
                "Succeeded",
                f"verified signature of version {build.version}",
                generation=ctx.generation,
            )
        ctx.ready_reason = build.reason
        ctx.ready_message = build.summary()


def parse_timeout(text: str | None) -> float:
    return parse_duration(text) if text else DEFAULT_TIMEOUT


def _with_build_metadata(chart: ChartFiles, metadata: str) -> ChartFiles:
    """``chart`` with ``+metadata`` as its version's build metadata (replacing any)."""
    version = f"{chart.version.partition('+')[0]}+{metadata}"
    document = {**chart.metadata, "version": version}
    files = {**chart.files, "Chart.yaml": yaml.safe_dump(document, sort_keys=False).encode()}
    return ChartFiles(chart.name, version, document, files)


def _chart_in_tree(path: str, files: Mapping[str, bytes]) -> ChartFiles:
    """The chart directory (or ``.tgz``) at ``path`` of a source's files."""
    try:
        if path.endswith(".tgz"):
            clean = path.removeprefix("./")
            if clean not in files:
                raise InvalidChart(f"no chart archive at '{path}' in the source")
            return read_archive(files[clean])
        return read_directory(files, path)
    except InvalidChart as error:
        raise ReconcileError(
            "InvalidChartReference",
            f"invalid chart reference: {error}",
            condition=FETCH_FAILED,
        ) from error


def _refuse_unsupported_verify(verify: OCIRepositoryVerification | None) -> None:
    """Stall on the signature checks fluxd does not serve yet, naming the field."""
    if verify is None:
        return
    unsupported = []
    if verify.provider == "notation":
        unsupported.append("spec.verify provider 'notation' (notation signature verification)")
    else:
        if verify.secret_ref is None:
            unsupported.append("spec.verify without secretRef (keyless cosign verification)")
        if verify.match_oidc_identity:
            unsupported.append("spec.verify.matchOIDCIdentity (keyless cosign verification)")
        if verify.trusted_root_secret_ref is not None:
            unsupported.append("spec.verify.trustedRootSecretRef (keyless cosign verification)")
    if unsupported:
        raise ReconcileError(
            "UnsupportedField",
            f"{', '.join(unsupported)} not supported by fluxd yet; remove the field(s)",
            stalled=True,
        )


def _registry_error(error: oci.RegistryError, step: str) -> ReconcileError:
    """A registry failure as Flux reports it: a Secret that cannot be used, or credentials
    or a certificate the registry refuses, is ``AuthenticationFailed``; anything else is
    ``ChartPullError``."""
    text = str(error)
    if error.reason == oci.AUTHENTICATION_FAILED:
        return ReconcileError("AuthenticationFailed", text, condition=FETCH_FAILED)
    refused = error.status in (401, 403) or any(
        words in text.lower()
        for words in ("unauthorized", "authentication required", "certificate verify failed")
    )
    if refused:
        return ReconcileError(
            "AuthenticationFailed",
            f"failed to authenticate with the Helm repository: chart pull error: {step}: {text}",
            condition=FETCH_FAILED,
        )
    return ReconcileError(
        "ChartPullError", f"chart pull error: {step}: {text}", condition=FETCH_FAILED
    )
