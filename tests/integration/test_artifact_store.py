"""Artifacts in the content store, end to end: sources on one repository share its
contents, and under a small memory budget every consumer keeps working."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import Fluxd, namespaced_fluxd
from tests.integration.kustomizations import CONFIGMAPS, kustomization, live
from tests.integration.test_gitrepository import artifact_files

pytestmark = pytest.mark.integration

KIB = 1024


def big_configmap(namespace: str, name: str, size: int) -> str:
    # Random letters: contents that neither compress away nor repeat between files.
    value = "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=size))
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\ndata:\n  value: {value}\n"
    )


@pytest.fixture
async def budgeted(api_client: ApiClient, namespace: str, tmp_path: Path) -> AsyncIterator[Fluxd]:
    async with namespaced_fluxd(
        api_client, namespace, artifact_memory_mib=1, artifact_spill_dir=str(tmp_path)
    ) as running:
        yield running


async def test_sources_on_one_commit_fetch_it_once_and_serve_one_tree(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit({f"apps/{n}/cm.yaml": f"n: {n}\n" for n in range(3)})
    url = git_http.url(git_remote)
    teams = [f"team-{n}" for n in range(4)]
    for team in teams:
        await fluxd.create(GIT_REPOSITORY, team, {"interval": "1h", "url": url})
    repos = [await fluxd.wait_ready(GIT_REPOSITORY, team) for team in teams]

    assert len({repo["status"]["artifact"]["digest"] for repo in repos}) == 1
    # Each asked for the remote's refs; one fetched the commit.
    fetches = [path for path in git_http.fetches if f"/{git_remote.name}/" in path]
    assert len(fetches) == 1
    stats = fluxd.daemon.cache.store.stats()
    assert (stats.trees, stats.contents) == (1, 3)


async def test_under_a_small_budget_contents_spill_and_every_consumer_works(
    budgeted: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    ns = budgeted.namespace
    files = {f"apps/{name}/cm.yaml": big_configmap(ns, name, 400 * KIB) for name in ("a", "b", "c")}
    git_remote.commit(files)
    url = git_http.url(git_remote)
    for team in ("team-1", "team-2"):
        await budgeted.create(GIT_REPOSITORY, team, {"interval": "1h", "url": url})
    for name in ("a", "b", "c"):
        await budgeted.create(
            KUSTOMIZATION,
            name,
            {
                **kustomization(f"./apps/{name}"),
                "sourceRef": {"kind": "GitRepository", "name": "team-1"},
            },
        )
    for team in ("team-1", "team-2"):
        repo = await budgeted.wait_ready(GIT_REPOSITORY, team)
        # The tarball served over HTTP is the one status.artifact.digest names.
        served = await artifact_files(budgeted, repo)
        assert served == {path: text.encode() for path, text in files.items()}
    for name in ("a", "b", "c"):
        await budgeted.wait_ready(KUSTOMIZATION, name)
        applied = await live(budgeted, CONFIGMAPS, name)
        assert applied is not None
        assert len(applied["data"]["value"]) == 400 * KIB

    stats = budgeted.daemon.cache.store.stats()
    # Both GitRepositories serve one tree of three contents, part of it on disk.
    assert (stats.trees, stats.contents) == (1, 3)
    assert stats.memory_bytes <= 2**20
    assert stats.disk_bytes > 0


async def test_a_source_over_the_size_limit_is_refused_by_name_until_it_shrinks(
    api_client: ApiClient, namespace: str, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    git_remote.commit(
        {"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n", "videos/demo.txt": "x" * 1536 * KIB}
    )
    async with namespaced_fluxd(api_client, namespace, artifact_max_mib=1) as limited:
        await limited.create(
            GIT_REPOSITORY, "big", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        refused = await limited.wait_not_ready(GIT_REPOSITORY, "big", "ArtifactTooLarge")
        ready = conditions.get(refused["status"], conditions.READY)
        assert ready is not None
        message = ready["message"]
        assert "1.5 MiB" in message
        assert "--artifact-max-mib" in message
        assert "artifact" not in refused["status"], "nothing stored"

        await limited.patch(GIT_REPOSITORY, "big", {"spec": {"ignore": "/videos/\n"}})
        ready = await limited.wait_ready(GIT_REPOSITORY, "big")
        assert set(await artifact_files(limited, ready)) == {"deploy/cm.yaml"}
