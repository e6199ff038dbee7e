"""Flux's OCI artifact format, and publishing a file tree in it (``flux push artifact``).

What ``flux push artifact`` writes and source-controller reads: an OCI image manifest
whose config is the empty JSON object with media type
``application/vnd.cncf.flux.config.v1+json``, one layer
``application/vnd.cncf.flux.content.v1.tar+gzip`` holding the files, and the annotations
``org.opencontainers.image.created`` (RFC 3339), ``.source`` (where the files came from,
e.g. a git URL) and ``.revision`` (e.g. ``main@sha1:<hex>``). fluxd's pushes are read by
Flux, and Flux's by fluxd. The layer is the deterministic tarball fluxd's artifacts are
made of, so pushing the same files twice uploads nothing new.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fluxd.sources.artifact import build_tarball
from fluxd.sources.oci.client import OCI_MANIFEST, RegistryClient
from fluxd.sources.oci.credentials import RegistryAuth
from fluxd.sources.oci.errors import URL_INVALID, RegistryError
from fluxd.sources.oci.reference import DEFAULT_TAG, Reference

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "CONTENT_MEDIA_TYPE",
    "CREATED_ANNOTATION",
    "REVISION_ANNOTATION",
    "SOURCE_ANNOTATION",
    "PushLayer",
    "Pushed",
    "directory_files",
    "push_artifact",
    "push_files",
]

CONFIG_MEDIA_TYPE: Final = "application/vnd.cncf.flux.config.v1+json"
CONTENT_MEDIA_TYPE: Final = "application/vnd.cncf.flux.content.v1.tar+gzip"
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
SOURCE_ANNOTATION: Final = "org.opencontainers.image.source"
REVISION_ANNOTATION: Final = "org.opencontainers.image.revision"


@dataclass(frozen=True)
class PushLayer:
    """A layer to publish: its bytes and media type."""

    data: bytes
    media_type: str = CONTENT_MEDIA_TYPE


@dataclass(frozen=True)
class Pushed:
    """What a push stored: the manifest's digest, and the tag it is under."""

    reference: Reference
    digest: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def revision(self) -> str:
        """The revision an OCIRepository on this tag reports: ``<tag>@sha256:<hex>``."""
        return f"{self.reference.tag or DEFAULT_TAG}@{self.digest}"


def directory_files(root: Path) -> tuple[dict[str, bytes], frozenset[str]]:
    """The regular files under ``root`` (relative ``/`` paths) and the executable ones;
    links are left out, as Flux's archive leaves them out."""
    files: dict[str, bytes] = {}
    executables: set[str] = set()
    for directory, names, file_names in os.walk(root):
        names[:] = sorted(n for n in names if not Path(directory, n).is_symlink())
        for name in sorted(file_names):
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            files[relative] = path.read_bytes()
            if os.access(path, os.X_OK):
                executables.add(relative)
    return files, frozenset(executables)


async def push_files(
    reference: Reference,
    files: Mapping[str, bytes],
    *,
    source: str,
    revision: str,
    auth: RegistryAuth | None = None,
    executables: frozenset[str] = frozenset(),
    annotations: Mapping[str, str] | None = None,
    created: datetime | None = None,
    time_limit: float = 60.0,
) -> Pushed:
    """Publish ``files`` as a Flux artifact at ``reference`` (a tag)."""
    layer = PushLayer(build_tarball(files, executables=executables))
    stamp = (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flux_annotations = {
        CREATED_ANNOTATION: stamp,
        SOURCE_ANNOTATION: source,
        REVISION_ANNOTATION: revision,
        **(annotations or {}),
    }
    return await push_artifact(
        reference, [layer], annotations=flux_annotations, auth=auth, time_limit=time_limit
    )


async def push_artifact(
    reference: Reference,
    layers: Sequence[PushLayer],
    *,
    annotations: Mapping[str, str],
    config: bytes = b"{}",
    config_media_type: str = CONFIG_MEDIA_TYPE,
    auth: RegistryAuth | None = None,
    time_limit: float = 60.0,
) -> Pushed:
    """Publish an OCI image manifest of ``layers`` and ``config`` under the tag of
    ``reference``; any layers and media types (tests publish broken artifacts with it)."""
    if reference.digest is not None:
        raise RegistryError(
            f"cannot push to '{reference}': name a tag, not a digest", reason=URL_INVALID
        )
    tag = reference.tag or DEFAULT_TAG
    async with RegistryClient(reference.repository, auth, timeout=time_limit, push=True) as client:
        config_digest = await client.push_blob(config)
        descriptors = []
        for layer in layers:
            digest = await client.push_blob(layer.data)
            descriptors.append(
                {"mediaType": layer.media_type, "digest": digest, "size": len(layer.data)}
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": config_media_type,
                "digest": config_digest,
                "size": len(config),
            },
            "layers": descriptors,
            "annotations": dict(annotations),
        }
        data = json.dumps(manifest, separators=(",", ":")).encode()
        digest = await client.push_manifest(tag, data, OCI_MANIFEST)
    return Pushed(Reference(reference.repository, tag=tag), digest, dict(annotations))
