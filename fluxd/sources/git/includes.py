"""The files of a GitRepository's artifact: the commit's tree with includes copied in.

``spec.include`` copies the ``fromPath`` of another GitRepository's artifact to
``toPath`` in this one (the whole artifact, under the included repository's name, by
default), over the commit's own files; Flux's ignore rules then apply to the result.
The reconciler packages artifacts this way, and the CLI rebuilds them the same way
outside the daemon, so what it previews is what the daemon serves.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from fluxd.api import GitRepositoryInclude
from fluxd.sources.ignore import select_files

__all__ = ["artifact_files", "include_paths"]


def include_paths(include: GitRepositoryInclude) -> tuple[str, str]:
    """``(fromPath, toPath)`` of a ``spec.include`` entry, with Flux's defaults."""
    return include.from_path or ".", include.destination


def artifact_files(
    files: Mapping[str, bytes],
    includes: Iterable[tuple[Mapping[str, bytes], str, str]],
    *,
    ignore: str | None,
) -> dict[str, bytes]:
    """What the artifact holds: the commit's files, each include's files (``(files,
    fromPath, toPath)``) copied in over them, then the ignore rules applied."""
    merged = dict(files)
    for included, from_path, to_path in includes:
        merged.update(_relocate(included, from_path, to_path))
    return select_files(merged, spec_ignore=ignore)


def _relocate(files: Mapping[str, bytes], from_path: str, to_path: str) -> dict[str, bytes]:
    """Files under ``from_path`` of an included artifact, moved under ``to_path``."""
    source = posixpath.normpath(from_path).strip("/")
    target = posixpath.normpath(to_path).strip("/")
    moved: dict[str, bytes] = {}
    for path, content in files.items():
        if source in ("", "."):
            relative = path
        elif path.startswith(source + "/"):
            relative = path[len(source) + 1 :]
        else:
            continue
        moved[posixpath.join(target, relative) if target not in ("", ".") else relative] = content
    return moved
