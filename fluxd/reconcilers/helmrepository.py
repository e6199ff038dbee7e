"""HelmRepository: a chart repository's index, as an artifact every HelmChart reads.

Steps, in order (each failure carries Flux's reason and the ``FetchFailed`` condition):

1. ``type: oci`` makes the object a plain holder of a registry address and credentials,
   as in Flux: no finalizer, no status, nothing fetched (the chart is pulled when a
   HelmChart or HelmRelease needs it);
2. **url**: an ``oci://`` URL without ``type: oci`` stalls (``URLInvalid``);
3. **credentials** from ``spec.secretRef`` and ``spec.certSecretRef``
   (``AuthenticationFailed``);
4. **fetch** ``<url>/index.yaml`` within ``spec.timeout`` (``Failed``); its sha256 is the
   revision, and an unchanged revision ends the reconcile here;
5. **index**: parsed and cleaned (``IndexationFailed`` for bytes that are no index), stored
   as Flux stores it (indented JSON at ``index-<revision hex>.yaml``), ``status.url``
   pointing at ``.../index.yaml``; a ``NewArtifact`` event gives its size and origin.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from fluxd.api import HELM_REPOSITORY, HelmRepositorySpec, parse_duration
from fluxd.kube.objects import ObjectApi
from fluxd.reconcilers.driver import Context, Reconciler
from fluxd.runtime import conditions
from fluxd.runtime.errors import ReconcileError
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import helm
from fluxd.sources.artifact import Artifact, artifact_url, make_artifact
from fluxd.sources.cache import ArtifactCache

__all__ = ["HelmRepositoryReconciler", "human_size"]

FETCH_FAILED = "FetchFailed"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
#: Where the cleaned index sits in the artifact's files (its blob).
INDEX_FILE = "index.yaml"
DEFAULT_TIMEOUT = 60.0


class HelmRepositoryReconciler(Reconciler[HelmRepositorySpec]):
    """``source.toolkit.fluxcd.io/v1`` HelmRepository."""

    kind = HELM_REPOSITORY
    negative_conditions: ClassVar[tuple[str, ...]] = (FETCH_FAILED,)

    def __init__(self, *, objects: ObjectApi, cache: ArtifactCache, artifact_base_url: str):
        self.objects = objects
        self.cache = cache
        self.artifact_base_url = artifact_base_url

    def static(self, obj: dict[str, Any]) -> bool:
        return (obj.get("spec") or {}).get("type") == "oci"

    def forget(self, key: ObjectKey) -> None:
        self.cache.remove(key)

    async def reconcile(self, ctx: Context[HelmRepositorySpec]) -> None:
        spec = ctx.spec
        if spec.url.startswith("oci://"):
            raise ReconcileError(
                "URLInvalid",
                "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' "
                "HelmRepository type: set spec.type to 'oci'",
                condition=FETCH_FAILED,
                stalled=True,
            )
        timeout = parse_duration(spec.timeout) if spec.timeout else DEFAULT_TIMEOUT
        try:
            auth = await helm.repository_auth(self.objects, ctx.key.namespace, spec)
            data = await helm.fetch_index(spec.url, auth, timeout)
        except helm.RepositoryError as error:
            raise ReconcileError(
                error.reason,
                f"failed to fetch Helm repository index: {error}",
                condition=FETCH_FAILED,
            ) from error
        revision = f"sha256:{hashlib.sha256(data).hexdigest()}"
        current = self.cache.get(ctx.key)
        if current is None or current.revision != revision:
            current = self._store(ctx, spec.url, data, revision)
        status = ctx.status
        status["artifact"] = current.to_status()
        status["url"] = artifact_url(self.artifact_base_url, current.alias_path or current.path)
        message = f"stored artifact: revision '{revision}'"
        conditions.mark_true(
            status, ARTIFACT_IN_STORAGE, "Succeeded", message, generation=ctx.generation
        )
        conditions.delete(status, "ArtifactOutdated")
        ctx.ready_message = message

    def _store(
        self, ctx: Context[HelmRepositorySpec], url: str, data: bytes, revision: str
    ) -> Artifact:
        try:
            index = helm.parse_index(data)
        except helm.InvalidIndex as error:
            raise ReconcileError(
                "IndexationFailed",
                f"failed to load Helm repository from index YAML: {error}",
                condition=FETCH_FAILED,
            ) from error
        artifact = make_artifact(
            kind=self.kind.kind,
            namespace=ctx.key.namespace,
            name=ctx.key.name,
            revision=revision,
            files={INDEX_FILE: index.to_json()},
            blob=INDEX_FILE,
            alias=INDEX_FILE,
            file_name=f"index-{revision.partition(':')[2]}.yaml",
            base_url=self.artifact_base_url,
        )
        if self.cache.put(ctx.key, artifact):
            ctx.event(
                "Normal",
                "NewArtifact",
                f"stored fetched index of size {human_size(artifact.size)} from '{url}'",
                {
                    "source.toolkit.fluxcd.io/revision": revision,
                    "source.toolkit.fluxcd.io/digest": artifact.digest,
                },
            )
        return self.cache.get(ctx.key) or artifact


def human_size(size: float) -> str:
    """Sizes as Flux's events print them: decimal units, four significant digits."""
    units = ("B", "kB", "MB", "GB", "TB")
    unit = 0
    while size >= 1000 and unit < len(units) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{units[unit]}"
