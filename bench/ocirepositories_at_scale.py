"""How long until N OCIRepository + Kustomization pairs are all Ready, at what cost?

Flux's published figure: 1000 OCIRepositories Ready in 1m25s at 67 MiB on a 16-core
runner (source-controller alone). This bench measures fluxd on that work plus a
Kustomization per source (so the artifacts are also unpacked and applied), everything
real and on loopback: the local control plane of :mod:`fluxd.dev.controlplane`, Debian's
``docker-registry`` holding N repositories (``bench/app-0000``...), each one Flux artifact
pushed with fluxd's own ``push artifact`` code (a ConfigMap and a ServiceAccount), and
fluxd in its own process (the launcher of ``kustomizations_at_scale.py``, so its peak RSS
and CPU are its own and its API requests are counted). The pushes happen before the clock
starts; then the 2N objects are created as fast as the API server takes them, and the
run ends when every Kustomization is ``Ready=True`` for its generation (which needs its
OCIRepository Ready first).

Usage::

    python bench/ocirepositories_at_scale.py --n 100 --n 1000 [--runs 3] [--concurrent 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.kustomizations_at_scale import (
    MIB,
    Daemon,
    ReadyTracker,
    cpu_seconds,
    proc_status,
    run_daemon,
    until_daemon_ready,
)
from fluxd.api import KUSTOMIZATION, OCI_REPOSITORY
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES
from fluxd.runtime import logs
from fluxd.sources import oci

NAMESPACE = "bench"
REGISTRY = "/usr/bin/docker-registry"
PUSHES_IN_FLIGHT = 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_registry(directory: Path) -> Iterator[str]:
    """``docker-registry`` on loopback (plain HTTP, anonymous); yields ``host:port``."""
    if not os.access(REGISTRY, os.X_OK):
        raise SystemExit(f"{REGISTRY} is missing: apt-get install docker-registry")
    port = _free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    path = directory / "config.yml"
    with path.open("w") as out:
        YAML(typ="safe").dump(config, out)
    with (directory / "registry.log").open("wb") as log:
        proc = subprocess.Popen(
            [REGISTRY, "serve", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"docker-registry did not start; see {directory}/registry.log")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _manifests(name: str) -> dict[str, bytes]:
    return {
        "app.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            f"  namespace: {NAMESPACE}\n"
            f"data:\n  greeting: hello {name}\n---\n"
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"
            f"  namespace: {NAMESPACE}\n"
        ).encode()
    }


async def push_all(host: str, n: int) -> float:
    """Push one artifact per repository; seconds it took."""
    started = time.perf_counter()
    limit = asyncio.Semaphore(PUSHES_IN_FLIGHT)

    async def one(index: int) -> None:
        name = f"app-{index:04d}"
        reference = oci.parse_reference(f"oci://{host}/bench/{name}:latest", insecure=True)
        async with limit:
            await oci.push_files(
                reference,
                _manifests(name),
                source="bench",
                revision=f"main@sha1:{index:040x}",
                auth=oci.RegistryAuth(),
                executables=frozenset(),
                annotations={},
                time_limit=60,
            )

    await asyncio.gather(*(one(index) for index in range(n)))
    return time.perf_counter() - started


async def measure(kubeconfig: Path, daemon: Daemon, host: str, n: int) -> dict[str, float]:
    api = await client.connect(str(kubeconfig))
    kustomizations = ReadyTracker(api, KUSTOMIZATION)
    sources = ReadyTracker(api, OCI_REPOSITORY)
    pid = daemon.process.pid
    try:
        async with aiohttp.ClientSession() as session:
            await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
            await until_daemon_ready(session, daemon)
            watchers = [
                asyncio.create_task(tracker.informer.run()) for tracker in (kustomizations, sources)
            ]
            for tracker in (kustomizations, sources):
                await tracker.informer.synced.wait()
            cpu_before = cpu_seconds(pid)
            started = time.perf_counter()
            limit = asyncio.Semaphore(64)

            async def one(index: int) -> None:
                name = f"app-{index:04d}"
                meta = {"name": name, "namespace": NAMESPACE}
                source = {
                    "interval": "10m",
                    "url": f"oci://{host}/bench/{name}",
                    "ref": {"tag": "latest"},
                    "insecure": True,
                }
                sync = {
                    "interval": "10m",
                    "sourceRef": {"kind": "OCIRepository", "name": name},
                    "path": "./",
                    "prune": True,
                }
                async with limit:
                    for kind, spec in ((OCI_REPOSITORY, source), (KUSTOMIZATION, sync)):
                        body = {
                            "apiVersion": kind.api_version,
                            "kind": kind.kind,
                            "metadata": meta,
                            "spec": spec,
                        }
                        await client.create(api, resource_of(kind), body)

            await asyncio.gather(*(one(index) for index in range(n)))
            while len(kustomizations.ready_at) < n:
                if time.perf_counter() - started > 900:
                    break
                await asyncio.sleep(1)
                print(
                    f"  {time.perf_counter() - started:6.1f}s  OCIRepository Ready "
                    f"{len(sources.ready_at)}/{n}  Kustomization Ready "
                    f"{len(kustomizations.ready_at)}/{n}  fluxd RSS "
                    f"{proc_status(pid, 'VmRSS') / MIB:6.1f} MiB",
                    flush=True,
                )
            for watcher in watchers:
                watcher.cancel()

            def last(tracker: ReadyTracker) -> float:
                if len(tracker.ready_at) < n:
                    return float("nan")
                return max(tracker.ready_at.values()) - started

            return {
                "sources_seconds": last(sources),
                "seconds": last(kustomizations),
                "peak_rss_mib": proc_status(pid, "VmHWM") / MIB,
                "cpu": cpu_seconds(pid) - cpu_before,
            }
    finally:
        await api.close()


def one_run(n: int, concurrent: int) -> dict[str, float]:
    print(f"N={n} concurrent={concurrent}: preparing", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="fluxd-oci-bench-"))
    try:
        with serve_registry(tmp) as host, LocalControlPlane() as plane:
            pushed = asyncio.run(push_all(host, n))
            print(f"  pushed {n} artifacts in {pushed:.1f}s", flush=True)
            install_crds(plane.kubeconfig)
            with run_daemon(plane.kubeconfig, tmp, concurrent) as daemon:
                figures = asyncio.run(measure(plane.kubeconfig, daemon, host, n))
            counts = Counter(json.loads(daemon.counts_file.read_text())["counts"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures["requests"] = float(sum(counts.values()))
    print(
        f"  all OCIRepositories Ready: {figures['sources_seconds']:.1f}s; all Kustomizations "
        f"Ready: {figures['seconds']:.1f}s; fluxd peak RSS {figures['peak_rss_mib']:.1f} MiB;"
        f" fluxd CPU {figures['cpu']:.1f}s; fluxd API requests {figures['requests']:.0f} "
        f"({figures['requests'] / n:.1f}/pair): {counts.most_common(6)}",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="pairs (repeatable; 100)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=16)
    args = parser.parse_args()
    logs.configure("warning", json=False)
    for n in args.n or [100]:
        runs = [one_run(n, args.concurrent) for _ in range(args.runs)]
        print(
            f"N={n}: median OCIRepositories Ready "
            f"{statistics.median(r['sources_seconds'] for r in runs):.1f}s, Kustomizations Ready "
            f"{statistics.median(r['seconds'] for r in runs):.1f}s, peak RSS "
            f"{statistics.median(r['peak_rss_mib'] for r in runs):.1f} MiB, CPU "
            f"{statistics.median(r['cpu'] for r in runs):.1f}s over {len(runs)} run(s)"
        )


if __name__ == "__main__":
    main()
