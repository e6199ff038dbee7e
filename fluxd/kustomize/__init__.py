"""A kustomize build engine in pure Python, byte for byte what ``kubectl kustomize`` prints.

The public surface is three functions (and :func:`source_files`, what a build reads whole)::

    objects = build(files, "clusters/prod")       # files: {posix path: bytes}
    objects = build_directory(Path("./repo/app"))
    text = render(objects)                        # the YAML stream kubectl would print

A build reads only the files it is given (a source artifact) and fails with a
:class:`KustomizeError` naming the kustomization file and field at fault. With
``generate_missing=True`` a directory without a kustomization is built the way Flux's
kustomize-controller does: as if it had one listing every manifest below it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fluxd.kustomize import _loader
from fluxd.kustomize._build import build_files
from fluxd.kustomize._loader import Files, SourceFile
from fluxd.kustomize._model import KustomizeError
from fluxd.kustomize._selector import parse_label_selector

__all__ = [
    "KustomizeError",
    "SourceFile",
    "build",
    "build_directory",
    "parse_label_selector",
    "read_directory",
    "render",
    "source_files",
]


def build(
    files: Mapping[str, bytes],
    path: str = ".",
    *,
    generate_missing: bool = False,
    flux_spec: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Build the kustomization in directory ``path`` of the artifact ``files``.

    ``files`` maps posix paths relative to the artifact root to their contents; nothing
    outside it can be read. Returns the output objects in ``kubectl kustomize`` order.

    ``generate_missing`` builds as Flux's kustomize-controller does: a directory without
    a kustomization file gets a generated one listing every manifest below it (without it
    that is an error, as in ``kubectl kustomize``), and unknown top-level fields of the
    top kustomization are dropped rather than refused, since Flux rewrites that file
    before kustomize reads it. ``flux_spec`` is a Flux Kustomization's ``spec`` (camelCase):
    its ``targetNamespace``, ``namePrefix``, ``nameSuffix``, ``patches``, ``images`` and
    ``components`` are folded into the top kustomization before the build.
    """
    resources = build_files(
        Files(files), path, generate_missing=generate_missing, flux_spec=flux_spec
    )
    return [resource.obj for resource in resources]


def source_files(
    files: Mapping[str, bytes], path: str = ".", *, components: Sequence[str] = ()
) -> list[SourceFile]:
    """The files the build of ``path`` reads whole and Flux decrypts before building it.

    The ``files`` and ``envs`` of every ``secretGenerator`` and the ``path`` of every
    patch, in every kustomization reachable from ``path`` through directory ``resources``
    and ``components`` (``components`` adds a Flux Kustomization's own, relative to
    ``path``). Paths are resolved against each kustomization's directory; only files the
    artifact holds are listed, each once. Fails with a :class:`KustomizeError` where the
    build would (an unreadable kustomization file).
    """
    directory = _loader.resolve(
        ".", path.lstrip("/") or ".", kustomization_file="(build path)", field="path"
    )
    return list(_loader.source_files(Files(files), directory, components=tuple(components)))


def read_directory(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` as a files map (posix paths relative to it).

    Symlinks are followed only while they stay inside ``directory``; one pointing outside
    is refused, so a build cannot read what the artifact does not hold.
    """
    root = directory.resolve()
    files: dict[str, bytes] = {}
    seen: set[Path] = {root}
    for current, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(current)
        for name in list(dirnames):
            target = _check_inside(root, here / name)
            if target in seen:  # a link back up the tree: walk each directory once
                dirnames.remove(name)
            seen.add(target)
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


def build_directory(directory: Path, *, generate_missing: bool = False) -> list[dict[str, Any]]:
    """Build the kustomization in a real ``directory`` (read whole, symlinks checked)."""
    return build(read_directory(directory), ".", generate_missing=generate_missing)


def render(objects: list[dict[str, Any]]) -> str:
    """The YAML stream ``kubectl kustomize`` prints for ``objects``."""
    from fluxd.kustomize._yaml import dump_documents

    return dump_documents(objects)
