"""The shared artifact cache: what consumers read, and how they learn of a new revision."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from fluxd.runtime.keys import ObjectKey
from fluxd.sources.artifact import Artifact
from fluxd.sources.cache import ArtifactCache
from fluxd.sources.store import Tree

SOURCE = ObjectKey("GitRepository", "flux-system", "apps")


def artifact(revision: str, digest: str = "sha256:0") -> Artifact:
    return Artifact(
        revision=revision,
        digest=digest,
        size=0,
        path=f"gitrepository/flux-system/apps/{revision}.tar.gz",
        url=f"http://fluxd/{revision}.tar.gz",
        last_update_time=datetime.now(UTC),
        files={"a.yaml": b"a: 1\n"},
    )


async def test_next_revision_wakes_on_a_new_revision_only() -> None:
    cache = ArtifactCache()
    cache.put(SOURCE, artifact("main@sha1:1"))
    found: list[str] = []

    async def wait() -> None:
        found.append((await cache.next_revision(SOURCE, after="main@sha1:1")).revision)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        cache.put(SOURCE, artifact("main@sha1:1", digest="sha256:1"))  # same revision
        await anyio.sleep(0.01)
        assert found == []
        cache.put(SOURCE, artifact("main@sha1:2"))
    assert found == ["main@sha1:2"]
    assert not cache._waiters, "a woken waiter must not stay registered"


async def test_next_revision_returns_at_once_when_the_source_moved_already() -> None:
    cache = ArtifactCache()
    cache.put(SOURCE, artifact("main@sha1:2"))
    with anyio.fail_after(1):
        assert (await cache.next_revision(SOURCE, after="main@sha1:1")).revision == "main@sha1:2"


async def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    cache = ArtifactCache()
    with anyio.move_on_after(0.01):
        await cache.next_revision(SOURCE, after="")
    assert not cache._waiters
    assert cache.put(SOURCE, artifact("main@sha1:1")) is True


@pytest.mark.parametrize("revision", ["main@sha1:1", "main@sha1:2"])
def test_put_tells_listeners_only_of_changes(revision: str) -> None:
    cache = ArtifactCache()
    told: list[str] = []
    cache.subscribe(lambda key, stored: told.append(stored.revision))
    cache.put(SOURCE, artifact("main@sha1:1"))
    cache.put(SOURCE, artifact(revision))
    expected = ["main@sha1:1"] if revision == "main@sha1:1" else ["main@sha1:1", revision]
    assert told == expected


def test_sources_with_the_same_files_share_one_tree_and_its_contents() -> None:
    cache = ArtifactCache()
    teams = [ObjectKey("GitRepository", f"team-{n}", "monorepo") for n in range(3)]
    for key in teams:
        cache.put(key, artifact("main@sha1:1"))
    trees = [cache.get(key).files for key in teams]  # type: ignore[union-attr]
    assert all(isinstance(tree, Tree) for tree in trees)
    assert trees[0] is trees[1] is trees[2]
    assert dict(trees[0]) == {"a.yaml": b"a: 1\n"}
    stats = cache.store.stats()
    assert (stats.contents, stats.trees, stats.shared_trees) == (1, 1, 2)
