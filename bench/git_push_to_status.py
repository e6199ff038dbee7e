"""How long from a git push to the new revision in ``GitRepository`` status?

Runs everything for real on this machine: the local control plane (kube-apiserver + etcd),
a git repository served over smart HTTP on loopback, and fluxd in-process. Each run
commits to the repository (the push), then does what ``flux reconcile source git`` or a
notification Receiver does — sets ``reconcile.fluxcd.io/requestedAt`` — and measures until
``status.artifact.revision`` names the new commit. A second series measures the same with
no trigger at all and ``interval: 2s``, where the interval dominates.

Usage: ``python bench/git_push_to_status.py [--runs N]``; prints every run and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fluxd.api import GIT_REPOSITORY
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.dev.demo import demo_repository, serve_repository
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES

NAMESPACE = "bench"
MAIN = Ref(b"refs/heads/main")


def push(repo: MemoryRepo, number: int) -> str:
    """Add a commit on ``main`` whose tree holds one file with ``number`` in it."""
    parent = repo.refs[MAIN]
    blob = Blob.from_string(f"run {number}\n".encode())
    tree = Tree()
    tree.add(b"run.txt", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = [parent]
    commit.author = commit.committer = b"bench <bench@fluxd.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = f"run {number}\n".encode()
    for obj in (blob, tree, commit):
        repo.object_store.add_object(obj)
    repo.refs[MAIN] = commit.id
    return commit.id.decode()


async def wait_for_revision(api: Any, name: str, sha: str) -> None:
    resource = resource_of(GIT_REPOSITORY)
    async with asyncio.timeout(120):
        while True:
            obj = await client.get(api, resource, NAMESPACE, name)
            revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision", "")
            if revision.endswith(sha):
                return
            await asyncio.sleep(0.005)


async def series(
    api: Any, repo: MemoryRepo, url: str, *, name: str, runs: int, trigger: bool
) -> list[float]:
    resource = resource_of(GIT_REPOSITORY)
    interval = "1h" if trigger else "2s"
    await client.create(
        api,
        resource,
        {
            "apiVersion": GIT_REPOSITORY.api_version,
            "kind": GIT_REPOSITORY.kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"interval": interval, "url": url, "ref": {"branch": "main"}},
        },
    )
    await wait_for_revision(api, name, repo.refs[MAIN].decode())
    seconds: list[float] = []
    for number in range(runs):
        sha = push(repo, number)
        started = time.perf_counter()
        if trigger:
            stamp = datetime.now(UTC).isoformat()
            await client.patch(
                api,
                resource,
                NAMESPACE,
                name,
                {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
            )
        await wait_for_revision(api, name, sha)
        seconds.append(time.perf_counter() - started)
        print(f"  {name} run {number + 1}: {seconds[-1] * 1000:.0f} ms", flush=True)
    return seconds


async def measure(kubeconfig: str, url: str, repo: MemoryRepo, runs: int) -> None:
    api = await client.connect(kubeconfig)
    try:
        await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
        daemon = Daemon(api, Options(metrics_addr="127.0.0.1:0", artifact_addr="127.0.0.1:0"))
        task = asyncio.create_task(daemon.run())
        try:
            triggered = await series(api, repo, url, name="triggered", runs=runs, trigger=True)
            polled = await series(api, repo, url, name="interval-2s", runs=runs, trigger=False)
        finally:
            daemon.shutdown()
            await task
    finally:
        await api.close()
    report("push -> status, requestedAt trigger", triggered)
    report("push -> status, interval 2s, no trigger", polled)


def report(what: str, seconds: list[float]) -> None:
    milliseconds = sorted(value * 1000 for value in seconds)
    print(
        f"{what}: median {statistics.median(milliseconds):.0f} ms over {len(milliseconds)} runs "
        f"(min {milliseconds[0]:.0f}, max {milliseconds[-1]:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    repo = demo_repository()
    with LocalControlPlane() as plane, serve_repository(repo) as url:
        install_crds(plane.kubeconfig)
        asyncio.run(measure(str(plane.kubeconfig), url, repo, args.runs))


if __name__ == "__main__":
    main()
