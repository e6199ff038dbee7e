"""How long from a git push, announced by a GitHub webhook, to the commit applied?

Everything real on this machine: the local control plane (kube-apiserver + etcd), a git
repository served over smart HTTP on loopback, and fluxd in-process. A ``github``
Receiver names the GitRepository; a Kustomization applies the repository's ConfigMap.
Each run commits a new ConfigMap to ``main`` (the push), then sends the request GitHub
sends for it (``X-GitHub-Event: push``, ``X-Hub-Signature-256`` over the push payload)
to the Receiver's ``status.webhookPath``, and measures until the Kustomization's
``status.lastAppliedRevision`` names the new commit: webhook -> requestedAt ->
GitRepository fetch -> Kustomization build and apply. Prints every run, the median,
and the process's peak RSS (harness included: fluxd runs in this process).

Usage: ``python bench/webhook_latency.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import resource
import statistics
import time
from typing import Any

import aiohttp
from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION, RECEIVER, KindInfo
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.dev.demo import serve_repository
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES, SECRETS

NAMESPACE = "bench"
MAIN = Ref(b"refs/heads/main")
TOKEN = "bench-webhook-t0ken"


def configmap(number: int) -> bytes:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: pushed\n  namespace: {NAMESPACE}\ndata:\n  run: '{number}'\n"
    ).encode()


def push(repo: MemoryRepo, number: int) -> str:
    """Commit ``configmap.yaml`` for ``number`` on ``main``; returns the commit's sha."""
    blob = Blob.from_string(configmap(number))
    tree = Tree()
    tree.add(b"configmap.yaml", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = [repo.refs[MAIN]] if MAIN in repo.refs else []
    commit.author = commit.committer = b"bench <bench@fluxd.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = f"run {number}\n".encode()
    for obj in (blob, tree, commit):
        repo.object_store.add_object(obj)
    repo.refs[MAIN] = commit.id
    return commit.id.decode()


def github_push(sha: str) -> tuple[dict[str, str], bytes]:
    """The headers and body GitHub sends for a push of ``sha`` to ``main``."""
    body = json.dumps(
        {"ref": "refs/heads/main", "after": sha, "repository": {"full_name": "team/app"}}
    ).encode()
    signature = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={signature}",
    }
    return headers, body


async def create(api: Any, kind: KindInfo[Any], name: str, spec: dict[str, Any]) -> None:
    await client.create(
        api,
        resource_of(kind),
        {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        },
    )


async def status_of(api: Any, kind: KindInfo[Any], name: str) -> dict[str, Any]:
    obj = await client.get(api, resource_of(kind), NAMESPACE, name)
    return dict(obj.get("status") or {})


async def wait_applied(api: Any, sha: str) -> None:
    async with asyncio.timeout(120):
        while True:
            status = await status_of(api, KUSTOMIZATION, "app")
            if status.get("lastAppliedRevision", "").endswith(sha):
                return
            await asyncio.sleep(0.005)


async def webhook_path(api: Any) -> str:
    async with asyncio.timeout(60):
        while True:
            path = (await status_of(api, RECEIVER, "github")).get("webhookPath")
            if path:
                return str(path)
            await asyncio.sleep(0.05)


async def measure(kubeconfig: str, url: str, repo: MemoryRepo, runs: int) -> list[float]:
    api = await client.connect(kubeconfig)
    try:
        await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
        await client.create(
            api,
            SECRETS,
            {"metadata": {"name": "webhook-token", "namespace": NAMESPACE},
             "stringData": {"token": TOKEN}},
        )  # fmt: skip
        daemon = Daemon(api, Options(metrics_addr="127.0.0.1:0", artifact_addr="127.0.0.1:0"))
        task = asyncio.create_task(daemon.run())
        try:
            await create(
                api,
                GIT_REPOSITORY,
                "app",
                {"interval": "1h", "url": url, "ref": {"branch": "main"}},
            )
            source = {"kind": "GitRepository", "name": "app"}
            kustomization = {"interval": "1h", "sourceRef": source, "path": "./", "prune": True}
            await create(api, KUSTOMIZATION, "app", kustomization)
            await create(
                api,
                RECEIVER,
                "github",
                {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"},
                 "resources": [source]},
            )  # fmt: skip
            await wait_applied(api, repo.refs[MAIN].decode())
            path = await webhook_path(api)
            host, port = daemon.addresses["artifacts"]
            seconds: list[float] = []
            async with aiohttp.ClientSession() as session:
                for number in range(1, runs + 1):
                    sha = push(repo, number)
                    started = time.perf_counter()
                    headers, body = github_push(sha)
                    async with session.post(
                        f"http://{host}:{port}{path}", data=body, headers=headers
                    ) as response:
                        if response.status != 200:
                            raise RuntimeError(f"the webhook answered {response.status}")
                    await wait_applied(api, sha)
                    seconds.append(time.perf_counter() - started)
                    print(f"  run {number}: {seconds[-1] * 1000:.0f} ms", flush=True)
        finally:
            daemon.shutdown()
            await task
    finally:
        await api.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    repo = MemoryRepo()
    push(repo, 0)
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), MAIN)
    with LocalControlPlane() as plane, serve_repository(repo) as url:
        install_crds(plane.kubeconfig)
        seconds = asyncio.run(measure(str(plane.kubeconfig), url, repo, args.runs))
    milliseconds = sorted(value * 1000 for value in seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"git push + GitHub webhook -> Kustomization applied: median "
        f"{statistics.median(milliseconds):.0f} ms over {len(milliseconds)} runs "
        f"(min {milliseconds[0]:.0f}, max {milliseconds[-1]:.0f}); "
        f"peak RSS {peak:.0f} MiB (fluxd and this harness, one process)"
    )


if __name__ == "__main__":
    main()
