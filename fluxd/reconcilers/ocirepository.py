"""OCIRepository: an OCI artifact's layer, as an artifact every consumer reads.

Steps, in order (each failure carries Flux's reason and sets ``FetchFailed``):

1. **refuse** fields fluxd does not serve (keyless cosign and notation ``verify``, a
   cloud ``provider``): Stalled, naming the field;
2. **url**: ``oci://<registry>/<repository>`` without a tag, else Stalled (``URLInvalid``);
3. **credentials** from ``spec.secretRef`` (dockerconfigjson), else the
   ``imagePullSecrets`` of ``spec.serviceAccountName``, and ``spec.certSecretRef``
   (``AuthenticationFailed``); ``spec.insecure`` talks plain HTTP; ``spec.proxySecretRef``
   sends every registry request through its proxy (``AuthenticationFailed`` when the
   Secret cannot be used);
4. **tag**: ``ref.digest`` wins; else the highest tag in ``ref.semver`` among those
   ``ref.semverFilter`` matches (one tag listing, ``ReadOperationFailed``), else
   ``ref.tag``, else ``latest``;
5. **digest**: a HEAD of the tag's manifest (``OCIArtifactPullFailed``). The revision is
   ``<tag>@sha256:<hex>`` (``sha256:<hex>`` for a digest ref). When it and the settings
   that shape the artifact (``ignore``, ``layerSelector``) are those of the stored
   artifact, stop here: an unchanged repository costs one HEAD per interval;
   **verify** comes first when ``spec.verify`` is set: the cosign signatures of the digest
   checked with the ``*.pub`` keys of ``verify.secretRef`` (condition ``SourceVerified``;
   ``VerificationError`` keeps the stored artifact and stores nothing new). A digest
   verified under the current generation is not verified again;
6. **pull**: the manifest, the layer ``layerSelector.mediaType`` names (the first one
   otherwise), downloaded and checked against its digest (``OCIArtifactPullFailed``;
   ``OCIArtifactLayerOperationFailed`` when no layer matches);
7. **package**: ``operation: extract`` (default) unpacks the tarball safely (no entry
   outside the root, links skipped, a size bound) and applies the ignore rules;
   ``copy`` keeps the layer as is. The artifact goes into the shared cache as
   ``ocirepository/<ns>/<name>/<hex>.tar.gz`` (``status.url``: ``latest.tar.gz`` beside
   it), its ``metadata`` the manifest's annotations, and consumers wake.

A failure leaves the stored artifact in place: consumers keep the last good revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from fluxd.api import OCI_REPOSITORY, OCIRepositorySpec, parse_duration
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import oci
from fluxd.sources.artifact import Artifact, artifact_url, make_artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.ignore import select_files
from fluxd.sources.proxy import Proxy

__all__ = ["OCIRepositoryReconciler"]

FETCH_FAILED: Final = "FetchFailed"
ARTIFACT_IN_STORAGE: Final = "ArtifactInStorage"
SOURCE_VERIFIED: Final = "SourceVerified"
LATEST_ALIAS: Final = "latest.tar.gz"
DEFAULT_TIMEOUT: Final = 60.0
#: Bytes a layer (compressed) and its unpacked files may each reach when the daemon sets
#: no ``--artifact-max-mib``: artifacts live in memory.
DEFAULT_MAX_BYTES: Final = 256 * 2**20


@dataclass(frozen=True)
class _Recipe:
    """What the stored artifact was made from: a new one is pulled when this changes."""

    revision: str
    ignore: str | None
    media_type: str | None
    operation: str


class OCIRepositoryReconciler(Reconciler[OCIRepositorySpec]):
    """``source.toolkit.fluxcd.io/v1`` OCIRepository."""

    kind = OCI_REPOSITORY
    negative_conditions: ClassVar[tuple[str, ...]] = (FETCH_FAILED,)

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        artifact_base_url: str,
        max_artifact_bytes: int | None = None,
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.artifact_base_url = artifact_base_url
        self.max_bytes = max_artifact_bytes or DEFAULT_MAX_BYTES
        self._recipes: dict[ObjectKey, _Recipe] = {}
        #: The manifest annotations of each stored artifact: ``status.artifact.metadata``.
        self._annotations: dict[ObjectKey, Mapping[str, str]] = {}
        #: The digest and generation each object last verified the signature of.
        self._verified: dict[ObjectKey, tuple[str, int]] = {}

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)
        self._recipes.pop(key, None)
        self._annotations.pop(key, None)
        self._verified.pop(key, None)

    async def reconcile(self, ctx: Context[OCIRepositorySpec]) -> None:
        spec = ctx.spec
        _refuse_unsupported(spec)
        try:
            repository = oci.parse_url(spec.url, insecure=spec.insecure)
        except oci.RegistryError as error:
            raise ReconcileError(
                error.reason,
                f"URL validation failed for '{spec.url}': {error}",
                condition=FETCH_FAILED,
                stalled=True,
            ) from error
        auth = await self._auth(ctx.key.namespace, spec, repository.host)
        proxy = await self._proxy(ctx.key.namespace, spec)
        selector = spec.layer_selector
        media_type = selector.media_type if selector else None
        operation = (selector.operation if selector else None) or "extract"
        timeout = parse_duration(spec.timeout) if spec.timeout else DEFAULT_TIMEOUT
        async with oci.RegistryClient(repository, auth, timeout=timeout, proxy=proxy) as client:
            resolved = await self._resolve(client, spec, media_type)
            await self._verify(ctx, client, repository, resolved)
            recipe = _Recipe(resolved.revision, spec.ignore, media_type, operation)
            current = self.cache.get(ctx.key)
            if current is not None and self._recipes.get(ctx.key) == recipe:
                self._report(ctx, current)
                return
            try:
                pulled = await oci.pull(
                    client, resolved.digest, media_type=media_type, limit=self.max_bytes
                )
            except oci.RegistryError as error:
                raise _pull_error(spec.url, error) from error
        artifact = self._package(ctx, resolved.revision, pulled, operation, spec.ignore)
        if self.cache.put(ctx.key, artifact):
            ctx.event(
                "Normal",
                "NewArtifact",
                _new_artifact_message(artifact.revision, spec.url, pulled.annotations),
                {
                    "source.toolkit.fluxcd.io/revision": artifact.revision,
                    "source.toolkit.fluxcd.io/digest": artifact.digest,
                },
            )
        self._recipes[ctx.key] = recipe
        self._annotations[ctx.key] = pulled.annotations
        self._report(ctx, self.cache.get(ctx.key) or artifact)

    async def _auth(self, namespace: str, spec: OCIRepositorySpec, host: str) -> oci.RegistryAuth:
        """Credentials for ``host`` from ``spec.secretRef`` (else the image pull secrets of
        ``spec.serviceAccountName``), TLS from ``spec.certSecretRef``."""
        try:
            return await oci.spec_registry_auth(self.objects, namespace, spec, host)
        except oci.RegistryError as error:
            raise ReconcileError(
                error.reason, f"failed to get credential: {error}", condition=FETCH_FAILED
            ) from error

    async def _proxy(self, namespace: str, spec: OCIRepositorySpec) -> Proxy | None:
        """The proxy of ``spec.proxySecretRef``, if any."""
        try:
            return await oci.spec_proxy(self.objects, namespace, spec)
        except oci.RegistryError as error:
            raise ReconcileError(error.reason, str(error), condition=FETCH_FAILED) from error

    async def _verify(
        self,
        ctx: Context[OCIRepositorySpec],
        client: oci.RegistryClient,
        repository: oci.Repository,
        resolved: oci.Resolved,
    ) -> None:
        """Check the cosign signature of the resolved digest when ``spec.verify`` asks;
        ``SourceVerified`` says how it went."""
        verify = ctx.spec.verify
        if verify is None or verify.secret_ref is None:
            conditions.delete(ctx.status, SOURCE_VERIFIED)
            self._verified.pop(ctx.key, None)
            return
        verified = conditions.get(ctx.status, SOURCE_VERIFIED)
        if (
            self._verified.get(ctx.key) == (resolved.digest, ctx.generation)
            and verified is not None
            and verified["status"] == "True"
        ):
            return
        self._verified.pop(ctx.key, None)
        secret = f"{ctx.key.namespace}/{verify.secret_ref.name}"
        try:
            try:
                data = await self.objects.secret_data(ctx.key.namespace, verify.secret_ref.name)
            except SecretNotFound as error:
                raise oci.RegistryError(
                    f"{error}: create it or fix spec.verify.secretRef",
                    reason=oci.VERIFICATION_ERROR,
                ) from error
            keys = oci.public_keys(data, secret)
            await oci.verify_signatures(
                client, resolved.digest, keys, reference=f"{repository}@{resolved.digest}"
            )
        except oci.RegistryError as error:
            message = f"failed to verify the signature using provider '{verify.provider}': {error}"
            conditions.mark_false(
                ctx.status,
                SOURCE_VERIFIED,
                oci.VERIFICATION_ERROR,
                message,
                generation=ctx.generation,
            )
            raise ReconcileError(oci.VERIFICATION_ERROR, message) from error
        conditions.mark_true(
            ctx.status,
            SOURCE_VERIFIED,
            "Succeeded",
            f"verified signature of revision {resolved.revision}",
            generation=ctx.generation,
        )
        self._verified[ctx.key] = (resolved.digest, ctx.generation)

    async def _resolve(
        self, client: oci.RegistryClient, spec: OCIRepositorySpec, media_type: str | None
    ) -> oci.Resolved:
        """The tag and manifest digest ``spec.ref`` names, with Flux's precedence."""
        ref = spec.reference
        if ref.digest:
            return oci.Resolved(None, ref.digest)
        tag = ref.tag or oci.DEFAULT_TAG
        if ref.semver:
            try:
                tag = oci.select_semver_tag(
                    await client.tags(), ref.semver, ref.semver_filter, media_type
                )
            except oci.RegistryError as error:
                raise ReconcileError(
                    oci.READ_OPERATION_FAILED,
                    f"failed to determine the artifact tag for '{spec.url}': {error}"
                    f"{_credentials_hint(error)}",
                    condition=FETCH_FAILED,
                ) from error
        try:
            digest = await client.resolve(tag)
        except oci.RegistryError as error:
            raise ReconcileError(
                oci.PULL_FAILED,
                f"failed to determine artifact digest: {error}{_credentials_hint(error)}",
                condition=FETCH_FAILED,
            ) from error
        return oci.Resolved(tag, digest)

    def _package(
        self,
        ctx: Context[OCIRepositorySpec],
        revision: str,
        pulled: oci.Pulled,
        operation: str,
        ignore: str | None,
    ) -> Artifact:
        """The artifact of the pulled layer: its files (extract), or the layer (copy)."""
        common: dict[str, Any] = {
            "kind": self.kind.kind,
            "namespace": ctx.key.namespace,
            "name": ctx.key.name,
            "revision": revision,
            "base_url": self.artifact_base_url,
            "alias": LATEST_ALIAS,
        }
        digest_hex = revision.rpartition(":")[2]
        if operation == "copy":
            blob = f"{digest_hex}.tgz"
            return make_artifact(
                files={blob: pulled.content},
                blob=blob,
                file_name=f"{digest_hex}.tar.gz",
                **common,
            )
        try:
            extracted = oci.extract_tarball(pulled.content, limit=self.max_bytes)
        except oci.RegistryError as error:
            raise ReconcileError(error.reason, str(error), condition=FETCH_FAILED) from error
        files = select_files(extracted.files, spec_ignore=ignore)
        return make_artifact(
            files=self.cache.store.tree(files),
            executables=extracted.executables & files.keys(),
            **common,
        )

    def _report(self, ctx: Context[OCIRepositorySpec], artifact: Artifact) -> None:
        """Status of a stored artifact, with the observations Flux records beside it."""
        status = ctx.status
        raw_spec = ctx.obj.get("spec") or {}
        entry = artifact.to_status()
        annotations = self._annotations.get(ctx.key)
        if annotations:
            entry["metadata"] = dict(annotations)
        status["artifact"] = entry
        status["url"] = artifact_url(self.artifact_base_url, artifact.alias_path or artifact.path)
        observed = {
            "observedIgnore": ctx.spec.ignore,
            "observedLayerSelector": raw_spec.get("layerSelector"),
        }
        for field, value in observed.items():
            if value is None:
                status.pop(field, None)
            else:
                status[field] = value
        message = f"stored artifact for digest '{artifact.revision}'"
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, "Succeeded", message, generation=ctx.generation
        )
        conditions.delete(status, "ArtifactOutdated")
        ctx.ready_reason = "Succeeded"
        ctx.ready_message = message


def _pull_error(url: str, error: oci.RegistryError) -> ReconcileError:
    if error.reason == oci.LAYER_OPERATION_FAILED:
        return ReconcileError(error.reason, str(error), condition=FETCH_FAILED)
    return ReconcileError(
        oci.PULL_FAILED,
        f"failed to pull artifact from '{url}': {error}{_credentials_hint(error)}",
        condition=FETCH_FAILED,
    )


def _credentials_hint(error: oci.RegistryError) -> str:
    """Where the credentials come from, when the registry refused them."""
    return " (spec.secretRef)" if error.status in (401, 403) else ""


def _new_artifact_message(revision: str, url: str, annotations: Mapping[str, str]) -> str:
    """Flux's NewArtifact text, with the origin the pusher annotated when it did."""
    message = f"stored artifact with revision '{revision}' from '{url}'"
    source = annotations.get(oci.SOURCE_ANNOTATION)
    origin = annotations.get(oci.REVISION_ANNOTATION)
    if source and origin:
        message += f", origin source '{source}', origin revision '{origin}'"
    return message


def _refuse_unsupported(spec: OCIRepositorySpec) -> None:
    """Stall on fields fluxd does not serve yet, rather than ignoring them silently."""
    unsupported = []
    verify = spec.verify
    if verify is not None and verify.provider == "notation":
        unsupported.append("spec.verify provider 'notation' (notation signature verification)")
    elif verify is not None:
        if verify.secret_ref is None:
            unsupported.append("spec.verify without secretRef (keyless cosign verification)")
        if verify.match_oidc_identity:
            unsupported.append("spec.verify.matchOIDCIdentity (keyless cosign verification)")
        if verify.trusted_root_secret_ref is not None:
            unsupported.append("spec.verify.trustedRootSecretRef (keyless cosign verification)")
    if spec.provider and spec.provider != "generic":
        unsupported.append(f"spec.provider '{spec.provider}' (cloud workload identity)")
    if unsupported:
        raise ReconcileError(
            "UnsupportedField",
            f"{', '.join(unsupported)} not supported by fluxd yet; remove the field(s)",
            stalled=True,
        )
