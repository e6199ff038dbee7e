"""The shared, in-memory artifact cache: what sources produce and everything else reads.

In Flux the source-controller writes tarballs to disk and other controllers download them
over HTTP. In fluxd every kind lives in one process, so a source's artifact is handed over
by reference: a Kustomization reads ``files`` straight from here. The files of a stored
artifact live in the :class:`~fluxd.sources.store.ContentStore`, so sources with the same
contents (one monorepo behind many GitRepositories, successive revisions) share them. The
HTTP server serves the same entries to in-cluster consumers that expect Flux's
``status.artifact.url``.

Storing an artifact whose revision or digest differs from the previous one notifies the
listeners (the scheduler's reverse index), which wake the dependents at once, and wakes
whoever awaits :meth:`ArtifactCache.next_revision` of that source (a health check that a
newer revision makes moot): nobody polls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import anyio

from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import Artifact
from fluxd.sources.store import ContentStore

__all__ = ["ArtifactCache"]

Listener = Callable[[ObjectKey, Artifact], None]


class ArtifactCache:
    """Artifacts by the key of the source object that produced them."""

    def __init__(self, store: ContentStore | None = None) -> None:
        self.store = store or ContentStore()
        self._by_key: dict[ObjectKey, Artifact] = {}
        self._by_path: dict[str, Artifact] = {}
        self._listeners: list[Listener] = []
        self._waiters: dict[ObjectKey, set[anyio.Event]] = {}

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(key, artifact)`` whenever a source gets a new artifact."""
        self._listeners.append(listener)

    def get(self, key: ObjectKey) -> Artifact | None:
        """The artifact source ``key`` serves now, if any."""
        return self._by_key.get(key)

    async def next_revision(self, key: ObjectKey, *, after: str) -> Artifact:
        """Wait until source ``key`` serves a revision other than ``after``; that artifact."""
        while True:
            current = self._by_key.get(key)
            if current is not None and current.revision != after:
                return current
            stored = anyio.Event()
            waiters = self._waiters.setdefault(key, set())
            waiters.add(stored)
            try:
                await stored.wait()
            finally:
                waiters.discard(stored)
                if not waiters:
                    del self._waiters[key]

    def by_path(self, path: str) -> Artifact | None:
        """The artifact whose ``status.artifact.path`` or alias path (``status.url``) is
        ``path``, for the HTTP server."""
        return self._by_path.get(path)

    def put(self, key: ObjectKey, artifact: Artifact) -> bool:
        """Store ``artifact`` for ``key``, its files in the content store; True (and
        listeners told) when it is new."""
        artifact = dataclasses.replace(artifact, files=self.store.tree(artifact.files))
        previous = self._by_key.get(key)
        self._by_key[key] = artifact
        if previous is not None:
            for path in _paths(previous):
                self._by_path.pop(path, None)
        for path in _paths(artifact):
            self._by_path[path] = artifact
        changed = previous is None or (previous.revision, previous.digest) != (
            artifact.revision,
            artifact.digest,
        )
        if changed:
            for listener in self._listeners:
                listener(key, artifact)
            for waiter in self._waiters.get(key, ()):
                waiter.set()
        return changed

    def remove(self, key: ObjectKey) -> None:
        """Forget the artifact of a deleted source."""
        previous = self._by_key.pop(key, None)
        if previous is not None:
            for path in _paths(previous):
                self._by_path.pop(path, None)

    def __len__(self) -> int:
        return len(self._by_key)


def _paths(artifact: Artifact) -> tuple[str, ...]:
    """Where the HTTP server finds ``artifact``: its path, and its alias beside it."""
    alias = artifact.alias_path
    return (artifact.path,) if alias is None else (artifact.path, alias)
