"""Shared fetches: equal requests fetch once, different credentials never share."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from fluxd.api import GitRepositoryRef
from fluxd.sources import git
from fluxd.sources.git import shared
from fluxd.sources.git.remote import Commit
from fluxd.sources.store import ContentStore

URL = "https://git.example/monorepo.git"
MAIN = GitRepositoryRef(branch="main")
SHA = "a" * 40


class FakeRemote:
    """git.fetch at fluxd's seam: counts calls, can be slow or fail."""

    def __init__(self) -> None:
        self.calls: list[git.GitAuth] = []
        self.release = anyio.Event()
        self.fail = False

    async def __call__(
        self, url: str, ref: Any, auth: git.GitAuth, timeout: float, **_: Any
    ) -> Any:
        self.calls.append(auth)
        await self.release.wait()
        if self.fail:
            raise git.GitError("connection refused")
        commit = Commit(SHA, f"main@sha1:{SHA}", "msg", "me", None, None)
        return commit, {"apps/a/cm.yaml": b"a: 1\n"}


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> FakeRemote:
    fake = FakeRemote()
    monkeypatch.setattr(shared, "fetch", fake)
    return fake


async def test_concurrent_equal_requests_fetch_once_and_share_one_tree(remote: FakeRemote) -> None:
    fetches = shared.SharedFetches(ContentStore())
    results: list[Any] = []

    async def want() -> None:
        results.append(await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(want)
        await anyio.sleep(0.01)
        remote.release.set()
    assert len(remote.calls) == 1
    assert all(tree is results[0][1] for _, tree in results)
    # Shortly after, the same commit is still at hand.
    await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA)
    assert (len(remote.calls), fetches.fetches, fetches.shared) == (1, 1, 5)


async def test_different_credentials_or_commits_fetch_on_their_own(remote: FakeRemote) -> None:
    remote.release.set()
    fetches = shared.SharedFetches(ContentStore())
    await fetches.fetch(URL, MAIN, git.GitAuth(username="a", password="1"), 5, sha=SHA)
    await fetches.fetch(URL, MAIN, git.GitAuth(username="b", password="2"), 5, sha=SHA)
    await fetches.fetch(URL, MAIN, git.GitAuth(username="a", password="1"), 5, sha="b" * 40)
    assert len(remote.calls) == 3


async def test_a_failed_fetch_is_not_kept(remote: FakeRemote) -> None:
    remote.release.set()
    remote.fail = True
    fetches = shared.SharedFetches(ContentStore())
    with pytest.raises(git.GitError):
        await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA)
    remote.fail = False
    _, tree = await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA)
    assert dict(tree) == {"apps/a/cm.yaml": b"a: 1\n"}
    assert len(remote.calls) == 2


async def test_a_waiter_fetches_itself_when_the_fetching_reconcile_is_cancelled(
    remote: FakeRemote,
) -> None:
    fetches = shared.SharedFetches(ContentStore())
    got: list[Any] = []
    first = anyio.CancelScope()

    async def cancelled() -> None:
        with first:
            await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA)

    async def second() -> None:
        got.append(await fetches.fetch(URL, MAIN, git.GitAuth(), 5, sha=SHA))

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancelled)
        await anyio.sleep(0.01)
        tg.start_soon(second)
        await anyio.sleep(0.01)
        first.cancel()
        await anyio.sleep(0.01)
        remote.release.set()
    assert len(got) == 1
    assert len(remote.calls) == 2
