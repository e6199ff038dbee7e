"""How long until N HelmReleases of one chart are all Ready, at what cost?

Flux's published figures (16-core runner): 500 HelmReleases in 2m45s at 240 MiB, 1000 in
8m12s at 400 MiB. This bench measures fluxd on the same shape of work, everything real
and on loopback: the local control plane of :mod:`fluxd.dev.controlplane`, one chart
repository served over HTTP from memory (a chart of a Deployment with one replica, a
Service and a ConfigMap, as in Flux's benchmark), and fluxd in its own process (the
launcher of ``kustomizations_at_scale.py``, so its peak RSS and CPU are its own and its
API requests are counted), with the Go memory limit the install YAML and chart give it
(``GOMEMLIMIT``, for the Helm SDK's heap). One HelmRepository, N HelmReleases in
namespace ``bench``, created as fast as the API server takes them; the run ends when every
HelmRelease is ``Ready=True`` for its generation.

Two request counts are printed: fluxd's own (its Python client, counted in the daemon),
and the API server's ``apiserver_request_total`` over the run, by verb and resource. The
second includes the Helm SDK's requests (its Go client is invisible to the first: release
storage, discovery, OpenAPI, the waits' watches) and the control plane's own controllers
(ReplicaSets, Pods, Endpoints, their Events). ``--profile DIR`` writes a cProfile of the
daemon's event loop over the run to ``DIR/n<N>-c<concurrent>.prof``.

``--unthrottled-controllers`` swaps the control plane's kube-controller-manager for one
whose client may send 1000 requests per second instead of its default 20: the Deployment
controller writes about four requests per Deployment rolled out, so at 20 per second it
alone caps any GitOps tool at about four Deployments a second, whatever the tool does
(500 releases: over two minutes).

Usage::

    python bench/helmreleases_at_scale.py --n 100 --n 500 [--runs 3] [--concurrent 16]
        [--profile DIR] [--unthrottled-controllers]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.kustomizations_at_scale import (
    MIB,
    Daemon,
    ReadyTracker,
    cpu_seconds,
    proc_status,
    run_daemon,
    samples,
    until_daemon_ready,
)
from fluxd.api import HELM_RELEASE, HELM_REPOSITORY
from fluxd.api.install import GO_MEMORY_LIMIT
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES
from fluxd.runtime import logs

NAMESPACE = "bench"
TEMPLATES = {
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: app
        image: registry.example/app:1.0
""",
    "templates/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  clusterIP: None
  selector: {app: {{ .Release.Name }}}
  ports:
  - port: 80
""",
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
""",
    "values.yaml": "replicas: 1\ngreeting: hello\n",
    "Chart.yaml": "apiVersion: v2\nname: bench\nversion: 1.0.0\n",
}


def chart_archive() -> bytes:
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for path, text in sorted(TEMPLATES.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"bench/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@contextmanager
def serve_chart() -> Iterator[str]:
    archive = chart_archive()
    index = (
        "apiVersion: v1\nentries:\n  bench:\n  - name: bench\n    version: 1.0.0\n"
        f"    digest: {hashlib.sha256(archive).hexdigest()}\n    urls: [bench-1.0.0.tgz]\n"
    ).encode()
    files = {"/index.yaml": index, "/bench-1.0.0.tgz": archive}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _argv(pid: int) -> list[str]:
    try:
        return [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return []


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


@contextmanager
def unthrottled_controllers(kubeconfig: Path) -> Iterator[None]:
    """Run the control plane's kube-controller-manager with 1000 requests per second: the
    plane's own one is stopped (SIGSTOP: its ``up`` ends the plane if a child exits) and
    a copy with the same arguments and higher client limits runs until it is resumed."""
    data_dir = str(kubeconfig.resolve().parent)
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    ups = {pid for pid in pids if _argv(pid)[1:2] == ["up"] and data_dir in _argv(pid)}
    (manager,) = [
        pid
        for pid in pids
        if _argv(pid)[1:2] == ["kube-controller-manager"] and _parent(pid) in ups
    ]
    arguments = [arg for arg in _argv(manager) if arg]
    os.kill(manager, signal.SIGSTOP)
    replacement = subprocess.Popen(
        [*arguments, "--kube-api-qps=1000", "--kube-api-burst=2000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        replacement.terminate()
        replacement.wait(timeout=30)
        os.kill(manager, signal.SIGCONT)


async def server_requests(api: Any) -> Counter[str]:
    """``apiserver_request_total`` by ``VERB resource[/subresource]`` (every client's)."""
    response = await client.open_response(api, "GET", "/metrics")
    try:
        text = (await response.read()).decode()
    finally:
        response.release()
    totals: Counter[str] = Counter()
    for _, labels, value in samples(text, ["apiserver_request_total{"]):
        resource = "/".join(filter(None, (labels.get("resource"), labels.get("subresource"))))
        totals[f"{labels.get('verb', '')} {resource}"] += int(value)
    return totals


async def measure(
    kubeconfig: Path, daemon: Daemon, url: str, n: int, *, profile: bool
) -> tuple[dict[str, float], Counter[str]]:
    api = await client.connect(str(kubeconfig))
    releases = ReadyTracker(api, HELM_RELEASE)
    pid = daemon.process.pid
    try:
        async with aiohttp.ClientSession() as session:
            await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
            await until_daemon_ready(session, daemon)
            watcher = asyncio.create_task(releases.informer.run())
            await releases.informer.synced.wait()
            requests_before = await server_requests(api)
            if profile:
                daemon.process.send_signal(signal.SIGUSR1)
            cpu_before = cpu_seconds(pid)
            started = time.perf_counter()
            await client.create(
                api,
                resource_of(HELM_REPOSITORY),
                {
                    "apiVersion": HELM_REPOSITORY.api_version,
                    "kind": "HelmRepository",
                    "metadata": {"name": "charts", "namespace": NAMESPACE},
                    "spec": {"interval": "10m", "url": url},
                },
            )
            limit = asyncio.Semaphore(64)

            async def one(index: int) -> None:
                async with limit:
                    await client.create(
                        api,
                        resource_of(HELM_RELEASE),
                        {
                            "apiVersion": HELM_RELEASE.api_version,
                            "kind": "HelmRelease",
                            "metadata": {"name": f"app-{index:04d}", "namespace": NAMESPACE},
                            "spec": {
                                "interval": "10m",
                                "chart": {
                                    "spec": {
                                        "chart": "bench",
                                        "version": "1.x",
                                        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                                    }
                                },
                                "values": {"greeting": f"hello {index}"},
                            },
                        },
                    )

            await asyncio.gather(*(one(index) for index in range(n)))
            while len(releases.ready_at) < n:
                if time.perf_counter() - started > 900:
                    break
                await asyncio.sleep(1)
                print(
                    f"  {time.perf_counter() - started:6.1f}s  Ready {len(releases.ready_at)}/{n}"
                    f"  fluxd RSS {proc_status(pid, 'VmRSS') / MIB:6.1f} MiB",
                    flush=True,
                )
            watcher.cancel()
            cpu = cpu_seconds(pid) - cpu_before
            if profile:
                daemon.process.send_signal(signal.SIGUSR1)
            server = await server_requests(api)
            server.subtract(requests_before)
            done = max(releases.ready_at.values()) - started if releases.ready_at else float("nan")
            figures = {
                "seconds": done if len(releases.ready_at) == n else float("nan"),
                "peak_rss_mib": proc_status(pid, "VmHWM") / MIB,
                "cpu": cpu,
            }
            return figures, +server
    finally:
        await api.close()


def one_run(
    n: int, concurrent: int, profile_dir: Path | None, *, unthrottled: bool
) -> dict[str, float]:
    print(f"N={n} concurrent={concurrent}: preparing", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="fluxd-helm-bench-") as tmp,
        LocalControlPlane() as plane,
        serve_chart() as url,
    ):
        install_crds(plane.kubeconfig)
        with (
            unthrottled_controllers(plane.kubeconfig) if unthrottled else nullcontext(),
            run_daemon(
                plane.kubeconfig,
                Path(tmp),
                concurrent,
                environment={"GOMEMLIMIT": os.environ.get("GOMEMLIMIT", GO_MEMORY_LIMIT)},
            ) as daemon,
        ):
            figures, server = asyncio.run(
                measure(plane.kubeconfig, daemon, url, n, profile=profile_dir is not None)
            )
        counts = Counter(json.loads(daemon.counts_file.read_text())["counts"])
        profile = Path(f"{daemon.counts_file}.phase0.prof")
        if profile_dir is not None and profile.exists():
            profile_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(profile, profile_dir / f"n{n}-c{concurrent}.prof")
    figures["requests"] = float(sum(counts.values()))
    print(
        f"  all Ready: {figures['seconds']:.1f}s; fluxd peak RSS {figures['peak_rss_mib']:.1f} MiB;"
        f" fluxd CPU {figures['cpu']:.1f}s; fluxd API requests {figures['requests']:.0f} "
        f"({figures['requests'] / n:.1f}/release): {counts.most_common(8)}",
        flush=True,
    )
    print(
        f"  API server requests {server.total()} ({server.total() / n:.1f}/release, every "
        f"client): {server.most_common(16)}",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="HelmReleases (repeatable; 100)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrent", type=int, default=16)
    parser.add_argument("--profile", type=Path, help="write the daemon's cProfile here")
    parser.add_argument(
        "--unthrottled-controllers",
        action="store_true",
        help="kube-controller-manager at 1000 requests/s instead of its default 20",
    )
    args = parser.parse_args()
    logs.configure("warning", json=False)
    for n in args.n or [100]:
        runs = [
            one_run(n, args.concurrent, args.profile, unthrottled=args.unthrottled_controllers)
            for _ in range(args.runs)
        ]
        print(
            f"N={n}: median all Ready {statistics.median(r['seconds'] for r in runs):.1f}s, "
            f"peak RSS {statistics.median(r['peak_rss_mib'] for r in runs):.1f} MiB, "
            f"CPU {statistics.median(r['cpu'] for r in runs):.1f}s over {len(runs)} run(s)"
        )


if __name__ == "__main__":
    main()
