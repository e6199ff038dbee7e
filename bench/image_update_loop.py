"""How long from a new image tag to that image live in the cluster, through git?

The whole image automation loop, everything real on this machine: Debian's
``docker-registry`` on loopback, a git repository served over smart HTTP from memory
(fluxd pushes to it), the local control plane, and fluxd in-process. Each run pushes a
new tag ``1.<n>.0`` to the registry, then does what ``flux reconcile image repository``
does (``reconcile.fluxcd.io/requestedAt`` on the ImageRepository) and measures until the
Kustomization has applied the ConfigMap whose marked ``image`` names the new tag:
scan -> ImagePolicy -> ImageUpdateAutomation commit and push -> GitRepository ->
Kustomization. Prints every run, the median, and the process's peak RSS (harness
included: fluxd runs in this process).

Usage: ``python bench/image_update_loop.py [--runs N]`` (needs /usr/bin/docker-registry).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fluxd.api import (
    GIT_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    IMAGE_UPDATE_AUTOMATION,
    KUSTOMIZATION,
    KindInfo,
)
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.dev.demo import serve_repository
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES, Resource
from fluxd.sources import oci

NAMESPACE = "bench"
MAIN = Ref(b"refs/heads/main")
REGISTRY = "/usr/bin/docker-registry"
CONFIGMAPS = Resource("", "v1", "configmaps")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry() -> Iterator[str]:
    """A plain-HTTP docker-registry on loopback; yields its ``host:port``."""
    directory = Path(tempfile.mkdtemp(prefix="fluxd-bench-registry-"))
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "bench"},
    }
    (directory / "config.yml").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [REGISTRY, "serve", str(directory / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def app_repository(image: str) -> MemoryRepo:
    """``deploy/app.yaml`` on ``main``: a ConfigMap whose ``image`` carries the marker."""
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
        f"  namespace: {NAMESPACE}\ndata:\n"
        f'  image: {image}:1.0.0 # {{"$imagepolicy": "{NAMESPACE}:app"}}\n'
    )
    repo = MemoryRepo()
    blob = Blob.from_string(manifest.encode())
    deploy = Tree()
    deploy.add(b"app.yaml", 0o100644, blob.id)
    root = Tree()
    root.add(b"deploy", 0o040000, deploy.id)
    commit = Commit()
    commit.tree = root.id
    commit.author = commit.committer = b"bench <bench@fluxd.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"app\n"
    for obj in (blob, deploy, root, commit):
        repo.object_store.add_object(obj)
    repo.refs[MAIN] = commit.id
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), MAIN)
    return repo


async def push_tag(host: str, tag: str) -> None:
    reference = oci.parse_reference(f"oci://{host}/app:{tag}", insecure=True)
    await oci.push_files(
        reference, {"tag.txt": tag.encode()}, source="bench", revision=f"{tag}@sha1:0"
    )


async def create(api: Any, kind: KindInfo[Any], name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }
    await client.create(api, resource_of(kind), body)


async def deployed(api: Any, image: str) -> None:
    async with asyncio.timeout(120):
        while True:
            try:
                found = await client.get(api, CONFIGMAPS, NAMESPACE, "app")
                if found["data"]["image"] == image:
                    return
            except client.ApiError as error:
                if not error.not_found:
                    raise
            await asyncio.sleep(0.005)


async def measure(kubeconfig: str, url: str, host: str, runs: int) -> list[float]:
    api = await client.connect(kubeconfig)
    image = f"{host}/app"
    try:
        await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
        await push_tag(host, "1.0.0")
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
            await create(
                api,
                KUSTOMIZATION,
                "app",
                {"interval": "1h", "sourceRef": source, "path": "./deploy", "prune": True},
            )
            await create(
                api, IMAGE_REPOSITORY, "app", {"image": image, "interval": "1h", "insecure": True}
            )
            await create(
                api,
                IMAGE_POLICY,
                "app",
                {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}}},
            )
            await create(
                api,
                IMAGE_UPDATE_AUTOMATION,
                "app",
                {
                    "interval": "1h",
                    "sourceRef": source,
                    "git": {
                        "commit": {"author": {"name": "bench", "email": "bench@fluxd.invalid"}},
                        "push": {"branch": "main"},
                    },
                    "update": {"path": "./deploy", "strategy": "Setters"},
                },
            )
            await deployed(api, f"{image}:1.0.0")
            return await series(api, host, image, runs)
        finally:
            daemon.shutdown()
            await task
    finally:
        await api.close()


async def series(api: Any, host: str, image: str, runs: int) -> list[float]:
    seconds: list[float] = []
    for number in range(1, runs + 1):
        tag = f"1.{number}.0"
        await push_tag(host, tag)
        started = time.perf_counter()
        stamp = datetime.now(UTC).isoformat()
        await client.patch(
            api,
            resource_of(IMAGE_REPOSITORY),
            NAMESPACE,
            "app",
            {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}},
        )
        await deployed(api, f"{image}:{tag}")
        seconds.append(time.perf_counter() - started)
        print(f"  run {number}: {seconds[-1] * 1000:.0f} ms", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with registry() as host:
        repo = app_repository(f"{host}/app")
        with LocalControlPlane() as plane, serve_repository(repo) as url:
            install_crds(plane.kubeconfig)
            seconds = asyncio.run(measure(str(plane.kubeconfig), url, host, args.runs))
    milliseconds = sorted(value * 1000 for value in seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"new tag -> image live in the cluster: median {statistics.median(milliseconds):.0f} ms"
        f" over {len(milliseconds)} runs (min {milliseconds[0]:.0f}, max {milliseconds[-1]:.0f});"
        f" peak RSS {peak:.0f} MiB (fluxd and this harness, one process)"
    )


if __name__ == "__main__":
    main()
