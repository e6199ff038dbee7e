"""A manifest's layers: which one becomes the source, and its tarball unpacked safely.

Flux takes the first layer, or the first of ``layerSelector.mediaType``, and either
extracts it (a gzip tarball) or copies it as is. Extraction here happens in memory and
refuses what could hurt: an entry whose path leaves the root (absolute, or through
``..``) fails the pull naming the entry, links are skipped as Flux skips them (so none can
point outside), and the unpacked files may total at most a limit, so a small layer that
unpacks to gigabytes fails instead of filling memory.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

from fluxd.sources.oci.errors import LAYER_OPERATION_FAILED, RegistryError

__all__ = ["Extracted", "Layer", "extract_tarball", "select_layer"]


@dataclass(frozen=True)
class Layer:
    """A layer descriptor of a manifest."""

    media_type: str
    digest: str
    size: int


def select_layer(manifest: dict[str, Any], media_type: str | None) -> Layer:
    """The first layer, or the first of ``media_type``; ``OCIArtifactLayerOperationFailed``
    when the manifest has none."""
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise RegistryError("no layers found in artifact", reason=LAYER_OPERATION_FAILED)
    for index, entry in enumerate(layers):
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise RegistryError(
                f"layer[{index}] of the artifact has no digest", reason=LAYER_OPERATION_FAILED
            )
        if media_type is None or entry.get("mediaType") == media_type:
            return Layer(
                media_type=str(entry.get("mediaType", "")),
                digest=entry["digest"],
                size=int(entry.get("size") or 0),
            )
    raise RegistryError(
        f"failed to find layer with media type '{media_type}' in artifact",
        reason=LAYER_OPERATION_FAILED,
    )


@dataclass(frozen=True)
class Extracted:
    """The regular files of a tarball (path -> content) and which are executable."""

    files: dict[str, bytes]
    executables: frozenset[str]


def extract_tarball(data: bytes, *, limit: int) -> Extracted:
    """The files of the gzip tarball ``data``, unpacked to at most ``limit`` bytes."""
    files: dict[str, bytes] = {}
    executables: set[str] = set()
    total = 0
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped,
            tarfile.open(fileobj=unzipped, mode="r|") as tar,
        ):
            for member in tar:
                path = _inside_root(member.name)
                if not member.isfile() or path is None:
                    continue  # directories are implied by files; links are skipped
                total += member.size
                if total > limit:
                    raise RegistryError(
                        f"the layer unpacks to over {limit / 2**20:.0f} MiB: the artifact is "
                        "larger than fluxd allows",
                        reason=LAYER_OPERATION_FAILED,
                    )
                reader = tar.extractfile(member)
                files[path] = reader.read() if reader is not None else b""
                if member.mode & 0o100:
                    executables.add(path)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise RegistryError(
            f"failed to extract layer contents from artifact: {error}",
            reason=LAYER_OPERATION_FAILED,
        ) from error
    for path in files:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in files:
                raise RegistryError(
                    f"failed to extract layer contents from artifact: '{parent}' is both a "
                    "file and a directory",
                    reason=LAYER_OPERATION_FAILED,
                )
            parent = parent.rpartition("/")[0]
    return Extracted(files=files, executables=frozenset(executables & files.keys()))


def _inside_root(name: str) -> str | None:
    """``name`` as a clean relative path; None for the root itself; an error when it
    would land outside the root."""
    if name.startswith("/"):
        raise _escapes(name)
    cleaned = posixpath.normpath(name)
    if cleaned == ".":
        return None
    if cleaned == ".." or cleaned.startswith("../"):
        raise _escapes(name)
    return cleaned


def _escapes(name: str) -> RegistryError:
    return RegistryError(
        f"failed to extract layer contents from artifact: tar entry '{name}' points outside "
        "the artifact's root",
        reason=LAYER_OPERATION_FAILED,
    )
