"""A kustomize build engine in pure Python, byte for byte what ``kubectl kustomize`` prints.

The public surface is three functions (with :func:`source_files`, what a build reads
whole, and :func:`is_directory`, whether it can start in a directory)::

    objects = build(files, "clusters/prod")       # files: {posix path: bytes}
    objects = build_directory(Path("./repo/app"), root=Path("./repo"))
    text = render(objects)                        # the YAML stream kubectl would print

A build reads only the files it is given (a source artifact) and fails with a
:class:`KustomizeError` naming the kustomization file and field at fault. It speaks
kustomize only: a caller with fields of its own (a GitOps controller's spec) turns them
into an :class:`Overlay`, edits to the top kustomization in kustomize's terms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fluxd.kustomize import _loader
from fluxd.kustomize._build import build_files
from fluxd.kustomize._disk import DiskFiles
from fluxd.kustomize._loader import KUSTOMIZATION_FILE_NAMES, Files, Overlay, SourceFile
from fluxd.kustomize._model import KustomizeError
from fluxd.kustomize._patch_keys import TABLE_PATH as PATCH_KEYS_PATH
from fluxd.kustomize._patch_keys import build_table as build_patch_keys_table

__all__ = [
    "KUSTOMIZATION_FILE_NAMES",
    "PATCH_KEYS_PATH",
    "KustomizeError",
    "Overlay",
    "SourceFile",
    "build",
    "build_directory",
    "build_patch_keys_table",
    "is_directory",
    "read_directory",
    "render",
    "source_files",
]


def build(
    files: Mapping[str, bytes],
    path: str = ".",
    *,
    generate_missing: bool = False,
    overlay: Overlay | None = None,
) -> list[dict[str, Any]]:
    """Build the kustomization in directory ``path`` of the artifact ``files``.

    ``files`` maps posix paths relative to the artifact root to their contents; nothing
    outside it can be read. Returns the output objects in ``kubectl kustomize`` order.

    ``generate_missing`` builds a directory without a kustomization file (an error in
    ``kubectl kustomize``) as if it had one listing its manifests: every ``.yaml`` and
    ``.yml`` file below it, and every subdirectory holding a kustomization instead of the
    files under it, much as ``kustomize create --autodetect --recursive`` writes it.
    ``overlay`` edits the top kustomization (the file or the generated one) before the
    build; see :class:`Overlay`.
    """
    resources = build_files(Files(files), path, generate_missing=generate_missing, overlay=overlay)
    return [resource.obj for resource in resources]


def is_directory(files: Mapping[str, bytes], path: str) -> bool:
    """Whether the artifact ``files`` holds directory ``path`` (relative to its root).

    ``path`` is read as :func:`build` reads its own: one that leaves the artifact root
    fails with the :class:`KustomizeError` a build of it would.
    """
    return Files(files).is_dir(_loader.top_directory(path))


def source_files(
    files: Mapping[str, bytes],
    path: str = ".",
    *,
    generate_missing: bool = False,
    overlay: Overlay | None = None,
) -> list[SourceFile]:
    """The files the build of ``path`` (with the same options) reads whole.

    The ``files`` and ``envs`` of every ``secretGenerator`` and the ``path`` of every
    patch, in every kustomization reachable from ``path`` through directory ``resources``
    and ``components`` (the overlay's included). Paths are resolved against each
    kustomization's directory; only files the artifact holds are listed, each once. Fails
    with a :class:`KustomizeError` where the build would (an unreadable kustomization
    file).
    """
    directory = _loader.top_directory(path)
    sources = _loader.source_files(
        Files(files), directory, generate_missing=generate_missing, overlay=overlay
    )
    return list(sources)


def read_directory(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` as a files map (posix paths relative to it).

    Symlinks are followed only while they stay inside ``directory``; one pointing outside
    is refused, so a build cannot read what the artifact does not hold.
    """
    root = directory.resolve()
    files: dict[str, bytes] = {}
    # Per directory walked, the real directories on its way down from the root: a link
    # to one of them is a loop and is not followed. A link to any other directory is
    # (even one walked already), as kustomize reads it where the kustomization names it.
    lineage: dict[Path, frozenset[Path]] = {root: frozenset({root})}
    for current, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(current)
        for name in list(dirnames):
            target = _check_inside(root, here / name)
            if target in lineage[here]:
                dirnames.remove(name)
            else:
                lineage[here / name] = lineage[here] | {target}
        for name in filenames:
            path = here / name
            target = _check_inside(root, path)
            if target.is_file():
                files[path.relative_to(root).as_posix()] = target.read_bytes()
    return files


def _check_inside(root: Path, path: Path) -> Path:
    target = path.resolve()
    if target != root and root not in target.parents:
        raise KustomizeError(
            f"symlink {path.relative_to(root).as_posix()!r} points outside {root}: refused"
        )
    return target


def build_directory(
    directory: Path, *, root: Path | None = None, generate_missing: bool = False
) -> list[dict[str, Any]]:
    """Build the kustomization in a real ``directory``, reading files as the build needs them.

    The build may read anything below ``root`` (by default ``directory`` itself), so an
    overlay can name ``../base`` when ``root`` holds both; symlinks are followed while
    they stay below ``root``.
    """
    top, target = (root or directory).resolve(), directory.resolve()
    if target != top and top not in target.parents:
        raise KustomizeError(f"{directory} is not a directory inside {top}")
    path = target.relative_to(top).as_posix()
    resources = build_files(DiskFiles(top), path, generate_missing=generate_missing, overlay=None)
    return [resource.obj for resource in resources]


def render(objects: list[dict[str, Any]]) -> str:
    """The YAML stream ``kubectl kustomize`` prints for ``objects``."""
    from fluxd.kustomize._documents import dump_documents

    return dump_documents(objects)
