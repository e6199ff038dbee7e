"""The last kustomize build of each Kustomization, kept by what it was built from.

Every interval a Kustomization whose source did not move builds the same objects again
only to find, by a dry-run apply, that the cluster still matches them. The kustomize
build is most of that cost (a few milliseconds of CPU for a small app, far more for a
large one), so fluxd keeps each Kustomization's last build, pickled (compact, and every
reader gets objects of its own to mutate), under a fingerprint of its inputs: the
artifact tree's digest, the path and the Flux fields that edit the top kustomization.
Anything read from the cluster (postBuild variables, decryption keys) comes after this
step and is read again each time; builds that decrypt are never kept, so no plaintext
secret outlives its reconcile.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["BuildMemo"]

Objects = list[dict[str, Any]]


class BuildMemo:
    """One build per owner (a Kustomization), replaced when its fingerprint changes."""

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[Hashable, bytes]] = {}

    def build(self, owner: Hashable, fingerprint: Hashable, make: Callable[[], Objects]) -> Objects:
        """``make()``'s objects, or a fresh copy of them when ``owner`` last built with the
        same ``fingerprint``."""
        found = self._last.get(owner)
        if found is not None and found[0] == fingerprint:
            objects: Objects = pickle.loads(found[1])
            return objects
        built = make()
        self._last[owner] = (fingerprint, pickle.dumps(built, protocol=pickle.HIGHEST_PROTOCOL))
        return built

    def forget(self, owner: Hashable) -> None:
        self._last.pop(owner, None)

    def __len__(self) -> int:
        return len(self._last)
