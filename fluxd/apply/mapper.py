"""Which REST collection serves an ``apiVersion``/``kind``: API discovery, cached.

Manifests name objects by ``apiVersion`` and ``kind``; URLs need the plural resource
name and whether it is namespaced. The answer comes from the API server's discovery
document of that group-version (``/api/v1``, ``/apis/<group>/<version>``), fetched on
first use and kept. A kind missing from the cache triggers one refresh of its
group-version before giving up, because a CustomResourceDefinition applied earlier in
the same run is only served once it is established.
"""

from __future__ import annotations

import asyncio

from fluxd.apply.errors import ApplyError
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import Resource

__all__ = ["NoKindMatchError", "RESTMapper"]


class NoKindMatchError(ApplyError):
    """The API server does not serve this kind at this version (no such CRD)."""


class RESTMapper:
    """``(apiVersion, kind) -> Resource``, from discovery, cached per group-version."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api
        self._kinds: dict[str, dict[str, Resource]] = {}
        self._lock = asyncio.Lock()

    async def resource_for(self, api_version: str, kind: str) -> Resource:
        """The collection of ``kind`` objects at ``api_version``.

        Raises :class:`ApplyError` when the server does not serve that kind (typically a
        custom resource whose CRD is not installed).
        """
        found = self._kinds.get(api_version, {}).get(kind)
        if found is not None:
            return found
        async with self._lock:
            # Another task may have refreshed this group-version while we waited.
            found = self._kinds.get(api_version, {}).get(kind)
            if found is None:
                self._kinds[api_version] = await self._discover(api_version)
                found = self._kinds[api_version].get(kind)
        if found is None:
            raise NoKindMatchError(
                f'no matches for kind "{kind}" in version "{api_version}": '
                "is its CustomResourceDefinition installed?"
            )
        return found

    def invalidate(self) -> None:
        """Forget everything; the next lookups ask the server again."""
        self._kinds.clear()

    async def _discover(self, api_version: str) -> dict[str, Resource]:
        group, _, version = api_version.rpartition("/")
        if not version or "/" in group:
            raise ApplyError(f'invalid apiVersion "{api_version}": want "v1" or "group/version"')
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = await client.request(self._api, "GET", path)
        except client.ApiError as error:
            if error.not_found:
                return {}
            raise ApplyError(f"API discovery of {api_version} failed: {error}") from error
        kinds: dict[str, Resource] = {}
        for entry in listing.get("resources") or []:
            name = str(entry.get("name") or "")
            if not name or "/" in name:  # subresources such as deployments/scale
                continue
            kinds[str(entry["kind"])] = Resource(
                group, version, name, namespaced=bool(entry.get("namespaced"))
            )
        return kinds
