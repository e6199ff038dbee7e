"""One fetch per commit, however many GitRepositories want it.

Teams often point their own GitRepository at one monorepo: a thousand objects, one URL,
one branch, one commit. Each fetching and checking out the same commit on its own costs
the git server a thousand packs and fluxd a thousand copies in flight. Here a fetch is
identified by everything that decides its result -- URL, ref, the commit the ref
resolved to, the credentials (never shared across different ones: a token that can read
the repository must not serve one that cannot), submodules and sparse paths -- and:

- reconciles that want the same fetch while it runs wait for it and share its result;
- the last few results stay (as store trees, whose contents the artifacts share anyway),
  so a reconcile that comes a little later does not fetch again.

A failed fetch is not kept: the next reconcile tries again, as it would alone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import anyio

from fluxd.api import GitRepositoryRef
from fluxd.sources.git.remote import Commit, fetch
from fluxd.sources.git.sparse import FULL_CHECKOUT, SparseCheckout
from fluxd.sources.git.transport import GitAuth
from fluxd.sources.store import ContentStore, Tree

__all__ = ["SharedFetches"]


@dataclass(frozen=True)
class _Key:
    url: str
    ref: GitRepositoryRef
    sha: str
    auth: GitAuth
    recurse_submodules: bool
    sparse: SparseCheckout


class _InFlight:
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: tuple[Commit, Tree] | None = None
        self.error: BaseException | None = None


class SharedFetches:
    """Fetches of git commits, shared by equal requests while running and shortly after."""

    def __init__(self, store: ContentStore, *, keep: int = 16) -> None:
        self._store = store
        self._keep = keep
        self._recent: OrderedDict[_Key, tuple[Commit, Tree]] = OrderedDict()
        self._running: dict[_Key, _InFlight] = {}
        self.fetches = 0  # fetches that went to the network
        self.shared = 0  # requests answered by another request's fetch

    async def fetch(
        self,
        url: str,
        ref: GitRepositoryRef,
        auth: GitAuth,
        timeout: float,  # noqa: ASYNC109 - the reconciler passes spec.timeout through
        *,
        sha: str,
        recurse_submodules: bool = False,
        sparse: SparseCheckout = FULL_CHECKOUT,
    ) -> tuple[Commit, Tree]:
        """The commit ``ref`` resolved to (``sha``, from ls-remote) and its files."""
        key = _Key(url, ref, sha, auth, recurse_submodules, sparse)
        while (running := self._running.get(key)) is not None:
            await running.done.wait()
            if running.result is not None:
                self.shared += 1
                return running.result
            if isinstance(running.error, Exception):
                raise running.error
            # The fetching reconcile was cancelled: that is not this one's outcome, try again.
        recent = self._recent.get(key)
        if recent is not None:
            self._recent.move_to_end(key)
            self.shared += 1
            return recent
        flight = self._running[key] = _InFlight()
        try:
            self.fetches += 1
            commit, files = await fetch(
                url, ref, auth, timeout, recurse_submodules=recurse_submodules, sparse=sparse
            )
            result = flight.result = (commit, self._store.tree(files))
        except BaseException as error:
            flight.error = error
            raise
        finally:
            del self._running[key]
            flight.done.set()
        # The branch may have moved between ls-remote and fetch: keep it under what came.
        self._remember(_Key(url, ref, commit.sha, auth, recurse_submodules, sparse), result)
        return result

    def _remember(self, key: _Key, result: tuple[Commit, Tree]) -> None:
        self._recent[key] = result
        self._recent.move_to_end(key)
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)
