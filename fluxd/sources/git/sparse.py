"""``spec.sparseCheckout``: which paths of a commit's tree end up in the artifact.

Flux hands the listed directories to go-git's sparse checkout after trimming a leading
``./``, then fails the reconcile when one of them does not exist in the checkout. fluxd
keeps those semantics and fixes two sharp edges of go-git's plain string-prefix match:

- a listed path keeps itself and everything under it, on path boundaries: ``deploy``
  keeps ``deploy/app.yaml`` but not ``deployment/x.yaml`` or ``deploy.yaml``; a listed
  file keeps that file;
- a trailing ``/`` is dropped; ``.`` (or ``./``) stands for the whole repository;
  absolute paths and paths that climb out with ``..`` match nothing in go-git, so they
  are refused up front (:class:`InvalidSparsePath`) instead of producing an empty
  artifact.

Submodules (``spec.recurseSubmodules``) are fetched only where the sparse paths reach
them (:meth:`SparseCheckout.reaches`): a submodule outside every listed directory
contributes nothing to the artifact, so it is not downloaded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["FULL_CHECKOUT", "InvalidSparsePath", "SparseCheckout"]


class InvalidSparsePath(ValueError):
    """A ``spec.sparseCheckout`` entry that cannot name a path inside the repository."""


@dataclass(frozen=True)
class SparseCheckout:
    """The normalised ``spec.sparseCheckout`` list; empty keeps everything."""

    paths: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, entries: Iterable[str]) -> SparseCheckout:
        """Normalise the entries; InvalidSparsePath names the first one that is unusable."""
        paths: list[str] = []
        for index, entry in enumerate(entries):
            path = _normalise(entry)
            if path is None:
                raise InvalidSparsePath(
                    f"spec.sparseCheckout[{index}] '{entry}' is not a directory inside the "
                    "repository: use a path relative to its root, without '..'"
                )
            paths.append(path)
        if "" in paths:
            return cls()
        return cls(tuple(dict.fromkeys(paths)))

    def covers(self, path: str) -> bool:
        """Whether the file at ``path`` is kept."""
        return not self.paths or any(_within(path, listed) for listed in self.paths)

    def reaches(self, submodule: str) -> bool:
        """Whether any kept path lies in the submodule at ``submodule``."""
        return not self.paths or any(
            _within(submodule, listed) or _within(listed, submodule) for listed in self.paths
        )

    def select(self, files: Mapping[str, bytes]) -> dict[str, bytes]:
        """The files that are kept."""
        return {path: data for path, data in files.items() if self.covers(path)}

    def missing(self, files: Collection[str], gitlinks: Collection[str]) -> list[str]:
        """Listed paths that are neither a file, a directory, nor a submodule of the tree."""
        known = set(files) | set(gitlinks)
        for path in list(known):
            while "/" in path:
                path = posixpath.dirname(path)
                known.add(path)
        return [path for path in self.paths if path not in known]


FULL_CHECKOUT = SparseCheckout()
"""No ``spec.sparseCheckout``: every path is kept."""


def _normalise(entry: str) -> str | None:
    """The entry as a clean relative path (``""`` for the root); None when it escapes."""
    if entry.startswith("/"):
        return None
    path = posixpath.normpath(entry)
    if path == ".":
        return ""
    if path == ".." or path.startswith("../"):
        return None
    return path


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")
