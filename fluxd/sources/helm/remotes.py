"""Where a chart's remote dependencies come from: the namespace's HelmRepositories first.

A dependency names its repository by URL. As Flux does, the HelmRepository of the chart's
namespace whose URL is the same (compared normalised) lends its credentials, TLS settings,
``insecure`` and ``timeout``, and for an HTTP repository its stored index, so an index
fluxd already holds is not fetched again. A URL no HelmRepository has is read anonymously:
its ``index.yaml`` fetched for this build (HTTP), or its tags listed (OCI).
"""

from __future__ import annotations

import anyio.to_thread

from fluxd.api import HELM_REPOSITORY, HelmRepositorySpec, SpecError, parse_duration
from fluxd.kube.objects import ObjectApi
from fluxd.runtime.keys import ObjectKey
from fluxd.sources import oci
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.helm.dependencies import DependencyError, normalize_url
from fluxd.sources.helm.index import InvalidIndex, RepositoryIndex, parse_index
from fluxd.sources.helm.indexes import ParsedIndexes
from fluxd.sources.helm.oci import (
    chart_image,
    chart_registry_auth,
    pull_chart,
    select_chart_version,
)
from fluxd.sources.helm.repository import (
    RepositoryAuth,
    RepositoryError,
    download_chart,
    fetch_index,
    repository_auth,
)

__all__ = ["NamespaceRepositories"]

DEFAULT_TIMEOUT = 60.0


class NamespaceRepositories:
    """:class:`~fluxd.sources.helm.dependencies.RemoteCharts` for charts of ``namespace``."""

    def __init__(
        self,
        *,
        objects: ObjectApi,
        cache: ArtifactCache,
        indexes: ParsedIndexes,
        namespace: str,
    ) -> None:
        self.objects = objects
        self.cache = cache
        self.indexes = indexes
        self.namespace = namespace

    async def fetch(self, repository: str, name: str, version: str) -> bytes:
        key, spec = self._repository(repository)
        if key is not None and spec is not None and spec.is_oci and spec.provider != "generic":
            raise DependencyError(
                f"HelmRepository '{key.name}' serving '{repository}' has spec.provider "
                f"'{spec.provider}' (cloud workload identity), which fluxd does not support yet"
            )
        time_limit = parse_duration(spec.timeout) if spec and spec.timeout else DEFAULT_TIMEOUT
        if repository.startswith("oci://"):
            return await self._from_registry(repository, name, version, spec, time_limit)
        try:
            auth = (
                await repository_auth(self.objects, self.namespace, spec)
                if spec
                else RepositoryAuth()
            )
            index = await self._index(repository, key, auth, time_limit)
        except (RepositoryError, InvalidIndex) as error:
            raise DependencyError(
                f"failed to get chart repository for URL '{repository}': {error}"
            ) from error
        try:
            chart = index.find(name, version)
        except (LookupError, ValueError) as error:
            raise DependencyError(
                f"failed to get chart '{name}' version '{version}' from '{repository}': {error}"
            ) from error
        try:
            return await download_chart(repository, chart, auth, time_limit)
        except RepositoryError as error:
            raise DependencyError(
                f"chart download of version '{chart.version}' failed: {error}"
            ) from error

    async def _from_registry(
        self,
        repository: str,
        name: str,
        version: str,
        spec: HelmRepositorySpec | None,
        time_limit: float,
    ) -> bytes:
        try:
            image = chart_image(repository, name, insecure=spec.insecure if spec else False)
            auth = (
                await chart_registry_auth(self.objects, self.namespace, spec, image.host)
                if spec
                else oci.RegistryAuth()
            )
            async with oci.RegistryClient(image, auth, timeout=time_limit) as client:
                try:
                    chosen = await select_chart_version(client, version)
                except oci.RegistryError as error:
                    raise DependencyError(
                        f"failed to get chart '{name}' version '{version}' from "
                        f"'{repository}': {error}"
                    ) from error
                try:
                    return await pull_chart(client, chosen)
                except oci.RegistryError as error:
                    raise DependencyError(
                        f"chart download of version '{chosen}' failed: {error}"
                    ) from error
        except oci.RegistryError as error:
            raise DependencyError(
                f"failed to get chart repository for URL '{repository}': {error}"
            ) from error

    def _repository(self, url: str) -> tuple[ObjectKey | None, HelmRepositorySpec | None]:
        """The first HelmRepository of the namespace (by name) serving ``url``; two Nones
        when none does."""
        candidates = sorted(
            self.objects.cached_list(HELM_REPOSITORY, self.namespace),
            key=lambda obj: str(obj["metadata"]["name"]),
        )
        for obj in candidates:
            try:
                spec = HELM_REPOSITORY.parse_spec(obj)
            except SpecError:
                continue
            if normalize_url(spec.url) == url:
                key = ObjectKey(HELM_REPOSITORY.kind, self.namespace, obj["metadata"]["name"])
                return key, spec
        return None, None

    async def _index(
        self, url: str, key: ObjectKey | None, auth: RepositoryAuth, time_limit: float
    ) -> RepositoryIndex:
        artifact = self.cache.get(key) if key is not None else None
        if artifact is not None:
            return await anyio.to_thread.run_sync(self.indexes.of, artifact)
        data = await fetch_index(url, auth, time_limit)
        return await anyio.to_thread.run_sync(parse_index, data)
