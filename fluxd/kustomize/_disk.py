"""A build's files read from a real directory, lazily, as ``kubectl kustomize`` reads them.

:class:`~fluxd.kustomize._loader.Files` holds a whole source artifact in memory. A local
build (``fluxd build kustomization --path DIR``) may instead reach ``../`` bases anywhere
in a git work tree, or on the whole filesystem, as ``kubectl kustomize DIR`` does: reading
all of that up front is out of the question, so :class:`DiskFiles` answers the same
questions from the disk, for the paths the build asks about only.

Symlinks are followed while their target stays below the root; one that leaves it fails
the build when the build reaches it. A link to a directory on its own way down from the
root (a loop) is not listed, so a walk of the tree ends.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from fluxd.kustomize._loader import Files
from fluxd.kustomize._model import KustomizeError

__all__ = ["DiskFiles"]


class DiskFiles(Files):
    """The tree below ``root`` as a :class:`Files`, read on demand."""

    def __init__(self, root: Path) -> None:
        super().__init__({})
        self._root = root.resolve()

    def _real(self, path: str) -> Path:
        target = (self._root / path).resolve()
        if target != self._root and self._root not in target.parents:
            raise KustomizeError(f"symlink {path!r} points outside {self._root}: refused")
        return target

    def is_file(self, path: str) -> bool:
        return self._real(path).is_file()

    def is_dir(self, path: str) -> bool:
        return self._real(path).is_dir()

    def read(self, path: str) -> bytes:
        try:
            return self._real(path).read_bytes()
        except OSError as error:
            raise KustomizeError(f"file {path!r} cannot be read: {error.strerror}") from None

    def children(self, directory: str) -> list[str]:
        real = self._real(directory)
        try:
            names = [entry.name for entry in real.iterdir()]
        except OSError as error:
            raise KustomizeError(
                f"directory {directory!r} cannot be listed: {error.strerror}"
            ) from None
        lineage = {self._real(prefix) for prefix in _prefixes(directory)}
        return sorted(
            (
                name
                for name in names
                if not ((real / name).is_symlink() and (real / name).resolve() in lineage)
            ),
            key=lambda name: name.encode(),
        )


def _prefixes(directory: str) -> list[str]:
    """``a/b/c`` -> ``.``, ``a``, ``a/b``, ``a/b/c``."""
    if directory == ".":
        return ["."]
    parts = directory.split("/")
    return [".", *(posixpath.join(*parts[: index + 1]) for index in range(len(parts)))]
