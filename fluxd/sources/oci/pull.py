"""Pulling an artifact: which manifest a ref names, and the layer that becomes the source.

Two steps, so a caller pays for the second only when the first found something new:

1. :func:`resolve`: the tag ``spec.ref`` names (the semver winner among the listed tags,
   or the tag itself) and the digest of its manifest (a HEAD), or the digest as given.
   The revision is Flux's: ``<tag>@sha256:<hex>``, or ``sha256:<hex>`` for a digest ref;
2. :func:`pull`: that manifest, its selected layer downloaded and checked against its
   digest, and the manifest's annotations (Flux's ``source``/``revision``/``created``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxd.sources.oci.client import RegistryClient
from fluxd.sources.oci.layers import Layer, select_layer
from fluxd.sources.oci.reference import DEFAULT_TAG, select_semver_tag

__all__ = ["Pulled", "Resolved", "pull", "resolve"]


@dataclass(frozen=True)
class Resolved:
    """A ref resolved: the tag (None for a digest ref) and the manifest digest."""

    tag: str | None
    digest: str

    @property
    def revision(self) -> str:
        return f"{self.tag}@{self.digest}" if self.tag else self.digest


@dataclass(frozen=True)
class Pulled:
    """The selected layer of a manifest, and the manifest's annotations."""

    layer: Layer
    content: bytes
    annotations: Mapping[str, str]


async def _tag_of(
    client: RegistryClient,
    *,
    semver: str | None,
    semver_filter: str | None,
    tag: str | None,
    media_type: str | None,
) -> str:
    """The tag a ref without a digest names: the semver winner, or the tag."""
    if semver:
        return select_semver_tag(await client.tags(), semver, semver_filter, media_type)
    return tag or DEFAULT_TAG


async def resolve(
    client: RegistryClient,
    *,
    digest: str | None = None,
    semver: str | None = None,
    semver_filter: str | None = None,
    tag: str | None = None,
    media_type: str | None = None,
) -> Resolved:
    """What a ref names, with Flux's precedence digest > semver > tag > ``latest``."""
    if digest:
        return Resolved(None, digest)
    chosen = await _tag_of(
        client, semver=semver, semver_filter=semver_filter, tag=tag, media_type=media_type
    )
    return Resolved(chosen, await client.resolve(chosen))


async def pull(
    client: RegistryClient, digest: str, *, media_type: str | None, limit: int
) -> Pulled:
    """The layer of manifest ``digest`` that ``media_type`` selects (the first when None),
    at most ``limit`` bytes."""
    manifest = (await client.manifest(digest)).json()
    layer = select_layer(manifest, media_type)
    content = await client.blob(layer.digest, limit=limit)
    annotations = manifest.get("annotations") or {}
    return Pulled(
        layer=layer,
        content=content,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
