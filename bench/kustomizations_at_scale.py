"""How long until N GitRepository + Kustomization pairs are all Ready, at what cost?

Flux's own scaling figure is 1000 Kustomizations Ready in 4m16s on a 16-core runner.
This bench measures fluxd on the same shape of work, everything real and on loopback:

- the local control plane of :mod:`fluxd.dev.controlplane` (kube-apiserver + etcd +
  controller-manager + scheduler + the simulated node that runs the pods);
- N git repositories served from memory over smart HTTP by ONE threaded WSGI server
  (dulwich ``DictBackend``, a path per repository), each holding ``deploy/`` with a
  Deployment (1 replica), a Service, a ServiceAccount and a ConfigMap;
- fluxd as a **separate process** (``python -m fluxd run``-equivalent, see
  :data:`_DAEMON`), so that its peak RSS (``VmHWM``) and CPU time are its own. The
  launcher counts the daemon's API requests by wrapping ``ApiClient.call_api``: the
  API server's ``apiserver_request_total`` has no user-agent label, and also counts
  the controller-manager's, the scheduler's, the simulated node's and this bench's.

All pairs live in one namespace (``bench``), names ``app-0000``...: one namespace is
the worst case for anything per-namespace in fluxd (its informers watch the whole
cluster anyway) and keeps the bench's own requests to two creates per pair. Limits of
the local cluster shape the manifests: its service range is a /24, so the Services are
headless; its node takes 500 pods, so above N=500 some pods stay Pending (harmless with
``wait: false``; ``--wait`` needs N <= 500 or ``--replicas 0``).

Each run starts everything fresh, waits for fluxd's ``/readyz`` (informers synced), then
creates the 2N objects as fast as the API server takes them (64 requests in flight) and
measures until every Kustomization is ``Ready=True`` for its current generation,
printing progress. Every ``--scrape-every`` seconds it reads fluxd's ``/metrics`` for the
queue depth; at N=1000 one scrape costs fluxd about a second and tens of MiB, so pass a
large value to measure without that load (the reconcile sums are read once at the end).

Usage::

    python bench/kustomizations_at_scale.py --n 100 --n 1000 --concurrent 4 --concurrent 16 \
        [--runs 3] [--wait] [--replicas 1] [--timeout 900] [--monorepo] [--idle 120] \
        [--profile DIR]

prints one line per run and a table of medians per (N, layout, concurrency). With
``--monorepo`` the N pairs share one repository holding ``apps/<name>/`` per pair, the
common shape of teams pointing their own GitRepository at one monorepo.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo
from dulwich.server import BackendRepo, DictBackend
from dulwich.web import make_wsgi_chain

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.kube import client
from fluxd.kube.informer import Informer
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES
from fluxd.runtime import conditions, logs

NAMESPACE = "bench"
MONOREPO = "monorepo"
MAIN = Ref(b"refs/heads/main")
CREATE_IN_FLIGHT = 64
PROGRESS_EVERY = 5.0
MIB = 1024 * 1024

#: The daemon's launcher: ``python -c _DAEMON COUNTS_FILE fluxd-args...``. It wraps
#: ``ApiClient.call_api`` to count requests by verb and resource (as the API server's
#: metrics name them) and writes the counts as JSON at exit. Kept as a string so that
#: the daemon imports nothing of this bench: its RSS is fluxd's alone. Each SIGUSR1
#: starts or stops a cProfile of its event loop thread (``--profile``); a stopped
#: profile is written next to the counts as ``COUNTS_FILE.phase<k>.prof``.
_DAEMON = """
import atexit, collections, json, sys, time
from kubernetes_asyncio.client import ApiClient
counts = collections.Counter()
seconds = collections.Counter()
original = ApiClient.call_api
def classify(method, path, query):
    query = dict(query or [])
    parts = [p for p in path.split("?")[0].split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(parts) > 2 and parts[0] == "namespaces":
        parts = parts[2:]
    resource = "/".join(parts[:1] + parts[2:3])
    verb = method
    if method == "GET":
        verb = "WATCH" if query.get("watch") in ("true", "1", True) else (
            "GET" if len(parts) >= 2 else "LIST")
    if query.get("dryRun"):
        verb += "(dry-run)"
    return verb + " " + resource
async def counted(self, path, method, *args, **kwargs):
    key = classify(method, path, kwargs.get("query_params"))
    counts[key] += 1
    started = time.monotonic()
    try:
        return await original(self, path, method, *args, **kwargs)
    finally:
        if not key.startswith("WATCH"):
            seconds[key] += time.monotonic() - started
ApiClient.call_api = counted
def dump():
    with open(sys.argv[1], "w") as out:
        json.dump({"counts": counts, "seconds": seconds}, out)
atexit.register(dump)
import cProfile, signal
profiling = []
def toggle_profile(*_):
    if profiling:
        profiler = profiling.pop()
        profiler.disable()
        profiler.dump_stats(sys.argv[1] + ".phase%d.prof" % toggle_profile.phase)
        toggle_profile.phase += 1
    else:
        profiling.append(cProfile.Profile())
        profiling[0].enable()
toggle_profile.phase = 0
signal.signal(signal.SIGUSR1, toggle_profile)
from fluxd.cli import main
sys.exit(main(sys.argv[2:]))
"""


# -- the git side ---------------------------------------------------------------------------


def manifests(name: str, replicas: int) -> dict[str, str]:
    """The four files of one pair's ``deploy/``; every name carries the pair's name."""
    labels = f"\n    app: {name}"
    return {
        "deployment.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {NAMESPACE}
  labels:{labels}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      serviceAccountName: {name}
      containers:
      - name: app
        image: nginx:1.25.0
        envFrom:
        - configMapRef:
            name: {name}
        ports:
        - containerPort: 80
""",
        "service.yaml": f"""\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  # Headless: the local control plane's service range is a /24 (254 ClusterIPs), and
  # allocating an IP is not what this bench measures.
  clusterIP: None
  selector:{labels}
  ports:
  - port: 80
    targetPort: 80
""",
        "serviceaccount.yaml": f"""\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  namespace: {NAMESPACE}
""",
        "configmap.yaml": f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {NAMESPACE}
data:
  GREETING: hello from {name}
""",
    }


def pair_repository(name: str, replicas: int) -> MemoryRepo:
    """A repository with one commit on ``main`` whose ``deploy/`` holds the pair's files."""
    files = {f"deploy/{file}": text for file, text in manifests(name, replicas).items()}
    return repository(files, message=name)


def monorepo(names: list[str], replicas: int) -> MemoryRepo:
    """One repository for every pair: ``apps/<name>/`` holds each pair's files."""
    files = {
        f"apps/{name}/{file}": text
        for name in names
        for file, text in manifests(name, replicas).items()
    }
    return repository(files, message=f"{len(names)} apps")


def repository(files: dict[str, str], *, message: str) -> MemoryRepo:
    """A repository with one commit on ``main`` holding ``files`` (path -> text)."""
    repo = MemoryRepo()
    commit = Commit()
    commit.tree = _tree(repo, {tuple(path.split("/")): text for path, text in files.items()})
    commit.author = commit.committer = b"bench <bench@fluxd.invalid>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = f"{message}\n".encode()
    repo.object_store.add_object(commit)
    repo.refs[MAIN] = commit.id
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), MAIN)
    return repo


def _tree(repo: MemoryRepo, files: dict[tuple[str, ...], str]) -> ObjectID:
    tree = Tree()
    below: dict[str, dict[tuple[str, ...], str]] = {}
    for parts, text in files.items():
        if len(parts) == 1:
            blob = Blob.from_string(text.encode())
            repo.object_store.add_object(blob)
            tree.add(parts[0].encode(), 0o100644, blob.id)
        else:
            below.setdefault(parts[0], {})[parts[1:]] = text
    for name, subtree in below.items():
        tree.add(name.encode(), 0o040000, _tree(repo, subtree))
    repo.object_store.add_object(tree)
    return tree.id


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Thousands of fetches are not worth a line each."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Thousands of fetches may connect at once; the default backlog of 5 drops them.
    request_queue_size = 1024


@dataclass
class GitLoad:
    """How busy the one git server was: requests, summed busy seconds, peak in flight."""

    requests: int = 0
    busy: float = 0.0
    in_flight: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def measured(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
        def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            started = time.perf_counter()
            with self.lock:
                self.requests += 1
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            try:
                # Drain the response inside the timing: the pack is generated lazily.
                return list(app(environ, start_response))
            finally:
                with self.lock:
                    self.in_flight -= 1
                    self.busy += time.perf_counter() - started

        return wrapper


@contextmanager
def serve_repositories(repos: dict[str, MemoryRepo], load: GitLoad) -> Iterator[str]:
    """Serve every repository at ``/<name>.git`` from one threaded server; yields the base URL."""
    backend = DictBackend(
        {f"/{name}.git": cast("BackendRepo", repo) for name, repo in repos.items()}
    )
    app = load.measured(make_wsgi_chain(backend))
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="bench git server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int, field_name: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` in bytes (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (the control plane's components, the daemon)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    metrics_url: str
    counts_file: Path
    log_file: Path

    def toggle_profile(self, run: Run) -> None:
        """Start or stop the daemon's cProfile when the run asks for profiles."""
        if run.profile_dir is not None:
            self.process.send_signal(signal.SIGUSR1)
            run.profile_toggles += 1

    def keep_profiles(self, run: Run) -> list[tuple[str, Path]]:
        """Move the phases' profiles into ``run.profile_dir``: ``(phase, path)`` each."""
        kept: list[tuple[str, Path]] = []
        if run.profile_dir is None:
            return kept
        run.profile_dir.mkdir(parents=True, exist_ok=True)
        for phase, name in enumerate(("run", "idle")[: run.profile_toggles // 2]):
            source = Path(f"{self.counts_file}.phase{phase}.prof")
            if source.exists():
                layout = "monorepo" if run.monorepo else "repos"
                target = run.profile_dir / f"n{run.n}-{layout}-c{run.concurrent}-{name}.prof"
                target.write_bytes(source.read_bytes())
                kept.append((name, target))
        return kept


@contextmanager
def run_daemon(
    kubeconfig: Path,
    workdir: Path,
    concurrent: int,
    *,
    environment: Mapping[str, str] | None = None,
) -> Iterator[Daemon]:
    """Start fluxd in its own process (``environment`` added to this one's); SIGTERM it
    (then SIGKILL after 30 s) on exit."""
    metrics_port, artifact_port = free_port(), free_port()
    counts_file = workdir / "daemon-requests.json"
    log_file = workdir / "daemon.log"
    args = [
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-addr",
        f"127.0.0.1:{metrics_port}",
        "--artifact-addr",
        f"127.0.0.1:{artifact_port}",
        "--artifact-base-url",
        f"http://127.0.0.1:{artifact_port}",
        "--concurrent",
        str(concurrent),
        "--grace-period",
        "5",
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _DAEMON, str(counts_file), *args],
            env={**os.environ, **(environment or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Daemon(process, f"http://127.0.0.1:{metrics_port}", counts_file, log_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- metrics --------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, wanted: Iterable[str]) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample in a Prometheus exposition named in ``wanted``."""
    names = tuple(wanted)
    for line in text.splitlines():
        if not line.startswith(names):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        yield name, dict(_LABEL.findall(labels or "")), float(value)


async def apiserver_requests(api: Any) -> Counter[str]:
    """``apiserver_request_total`` by verb (``WATCH`` counts watches opened)."""
    response = await client.open_response(api, "GET", "/metrics")
    try:
        text = (await response.read()).decode()
    finally:
        response.release()
    totals: Counter[str] = Counter()
    for _, labels, value in samples(text, ["apiserver_request_total{"]):
        verb = labels.get("verb", "")
        if labels.get("dry_run"):
            verb += "(dry-run)"
        totals[verb] += int(value)
    return totals


@dataclass
class DaemonMetrics:
    """What one scrape of fluxd's ``/metrics`` says."""

    queue_depth: float = 0.0
    duration_sum: dict[str, float] = field(default_factory=dict)
    duration_count: dict[str, float] = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)
    scrape_seconds: float = 0.0


async def scrape(session: aiohttp.ClientSession, url: str) -> DaemonMetrics:
    started = time.perf_counter()
    async with session.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=30)) as resp:
        text = await resp.text()
    found = DaemonMetrics(scrape_seconds=time.perf_counter() - started)
    wanted = [
        "fluxd_queue_depth ",
        "gotk_reconcile_duration_seconds_sum",
        "gotk_reconcile_duration_seconds_count",
        "fluxd_reconcile_total",
    ]
    for name, labels, value in samples(text, wanted):
        if name == "fluxd_queue_depth":
            found.queue_depth = value
        elif name == "fluxd_reconcile_total":
            key = f"{labels.get('kind')}/{labels.get('result')}"
            found.results[key] = found.results.get(key, 0.0) + value
        else:
            target = found.duration_sum if name.endswith("_sum") else found.duration_count
            kind = labels.get("kind", "")
            target[kind] = target.get(kind, 0.0) + value
    return found


# -- one run --------------------------------------------------------------------------------


@dataclass
class Run:
    n: int
    concurrent: int
    wait: bool
    monorepo: bool = False
    seconds: float | None = None  # None: not all Ready before the timeout
    create_seconds: float = 0.0
    sources_ready_seconds: float | None = None
    ready: int = 0
    apiserver: Counter[str] = field(default_factory=Counter)
    daemon_requests: Counter[str] = field(default_factory=Counter)
    daemon_request_seconds: Counter[str] = field(default_factory=Counter)
    bench_requests: int = 0
    peak_rss: int = 0
    idle_rss: int = 0
    daemon_cpu: float = 0.0
    plane_cpu: float = 0.0
    bench_cpu: float = 0.0
    machine_busy: float = 0.0
    git: GitLoad = field(default_factory=GitLoad)
    final: DaemonMetrics = field(default_factory=DaemonMetrics)
    peak_queue: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    idle_seconds: float = 0.0
    idle_cpu: float = 0.0  # fluxd CPU seconds over idle_seconds after convergence
    idle_apiserver: int = 0  # API server requests (everyone's) over the same time
    profile_dir: Path | None = None  # cProfile the daemon's event loop into this directory
    profile_toggles: int = 0
    profiles: list[tuple[str, Path]] = field(default_factory=list)

    @property
    def daemon_total(self) -> int:
        return sum(self.daemon_requests.values())


def _current(obj: dict[str, Any]) -> bool:
    """Ready=True and observed at the object's current generation."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    return conditions.is_ready(status) and status.get("observedGeneration") == generation


class ReadyTracker:
    """Watches one kind and remembers when each object first became Ready (current)."""

    def __init__(self, api: Any, kind: Any) -> None:
        self.ready_at: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.informer = Informer(api, resource_of(kind), namespace=NAMESPACE, on_event=self._on)

    async def _on(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if event_type != "DELETED" and _current(obj) and name not in self.ready_at:
            self.ready_at[name] = time.perf_counter()
            self.changed.set()


def _count_calls(api: Any) -> Counter[str]:
    """Count this bench's own requests (by HTTP method) on its ``ApiClient``."""
    counts: Counter[str] = Counter()
    original = api.call_api

    async def counted(path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        counts[method] += 1
        return await original(path, method, *args, **kwargs)

    api.call_api = counted
    return counts


async def create_pairs(
    api: Any,
    base_url: str,
    names: list[str],
    wait: bool,
    *,
    monorepo: bool,
    interval: str = "10m",
    spec_timeout: str = "5m",
) -> None:
    """A GitRepository and a Kustomization per name (of ``apps/<name>`` of one monorepo,
    or of ``deploy`` of a repository per name), ``CREATE_IN_FLIGHT`` creates at a time."""
    limit = asyncio.Semaphore(CREATE_IN_FLIGHT)

    async def one(kind: Any, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }
        async with limit:
            await client.create(api, resource_of(kind), body)

    async def pair(name: str) -> None:
        await one(
            GIT_REPOSITORY,
            name,
            {
                "interval": interval,
                "url": f"{base_url}/{MONOREPO if monorepo else name}.git",
                "ref": {"branch": "main"},
            },
        )
        await one(
            KUSTOMIZATION,
            name,
            {
                "interval": interval,
                "sourceRef": {"kind": "GitRepository", "name": name},
                "path": f"./apps/{name}" if monorepo else "./deploy",
                "prune": True,
                "wait": wait,
                "timeout": spec_timeout,
            },
        )

    await asyncio.gather(*(pair(name) for name in names))


async def measure(
    run: Run,
    kubeconfig: Path,
    daemon: Daemon,
    base_url: str,
    time_limit: float,
    scrape_every: float,
) -> None:
    api = await client.connect(str(kubeconfig))
    bench_counts = _count_calls(api)
    names = [f"app-{index:04d}" for index in range(run.n)]
    sources = ReadyTracker(api, GIT_REPOSITORY)
    kustomizations = ReadyTracker(api, KUSTOMIZATION)
    try:
        async with aiohttp.ClientSession() as session:
            await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
            await until_daemon_ready(session, daemon)
            run.idle_rss = proc_status(daemon.process.pid, "VmRSS")
            async with asyncio.TaskGroup() as tasks:
                watchers = [
                    tasks.create_task(tracker.informer.run())
                    for tracker in (sources, kustomizations)
                ]
                for tracker in (sources, kustomizations):
                    await tracker.informer.synced.wait()
                before = await apiserver_requests(api)
                bench_before = sum(bench_counts.values())
                plane = [pid for pid in descendants(os.getpid()) if pid != daemon.process.pid]
                cpu_before = (
                    cpu_seconds(daemon.process.pid),
                    sum(cpu_seconds(pid) for pid in plane),
                    time.process_time(),
                    machine_busy(),
                )
                started = time.perf_counter()
                daemon.toggle_profile(run)
                await create_pairs(api, base_url, names, run.wait, monorepo=run.monorepo)
                run.create_seconds = time.perf_counter() - started
                print(f"  created {2 * run.n} objects in {run.create_seconds:.1f}s", flush=True)
                await _follow(
                    run, daemon, session, sources, kustomizations, started, time_limit, scrape_every
                )
                run.ready = len(kustomizations.ready_at)
                if len(sources.ready_at) == run.n:
                    run.sources_ready_seconds = max(sources.ready_at.values()) - started
                if run.ready == run.n:
                    run.seconds = max(kustomizations.ready_at.values()) - started
                daemon.toggle_profile(run)
                run.daemon_cpu = cpu_seconds(daemon.process.pid) - cpu_before[0]
                run.plane_cpu = sum(cpu_seconds(pid) for pid in plane) - cpu_before[1]
                run.bench_cpu = time.process_time() - cpu_before[2]
                busy, total = machine_busy()
                run.machine_busy = (busy - cpu_before[3][0]) / max(total - cpu_before[3][1], 1.0)
                run.peak_rss = proc_status(daemon.process.pid, "VmHWM")
                run.final = await scrape(session, daemon.metrics_url)
                after = await apiserver_requests(api)
                run.apiserver = after - before
                run.bench_requests = sum(bench_counts.values()) - bench_before
                if run.idle_seconds and run.seconds is not None:
                    print(f"  idle for {run.idle_seconds:.0f}s after convergence", flush=True)
                    idle_from = cpu_seconds(daemon.process.pid)
                    daemon.toggle_profile(run)
                    await asyncio.sleep(run.idle_seconds)
                    daemon.toggle_profile(run)
                    run.idle_cpu = cpu_seconds(daemon.process.pid) - idle_from
                    run.idle_apiserver = sum((await apiserver_requests(api) - after).values())
                for watcher in watchers:
                    watcher.cancel()
    finally:
        await api.close()


async def until_daemon_ready(session: aiohttp.ClientSession, daemon: Daemon) -> None:
    async with asyncio.timeout(60):
        while True:
            if daemon.process.poll() is not None:
                raise RuntimeError(f"fluxd exited at start; see {daemon.log_file}")
            try:
                async with session.get(f"{daemon.metrics_url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def _follow(
    run: Run,
    daemon: Daemon,
    session: aiohttp.ClientSession,
    sources: ReadyTracker,
    kustomizations: ReadyTracker,
    started: float,
    time_limit: float,
    scrape_every: float,
) -> None:
    """Print progress until every Kustomization is Ready or ``time_limit`` passes."""
    last_print = last_scrape = 0.0
    queue = 0.0
    while len(kustomizations.ready_at) < run.n:
        now = time.perf_counter()
        if now - started > time_limit:
            print(f"  TIMEOUT after {time_limit:.0f}s", flush=True)
            return
        if daemon.process.poll() is not None:
            print(f"  fluxd exited with {daemon.process.returncode}; see {daemon.log_file}")
            return
        if now - last_scrape >= scrape_every:
            last_scrape = now
            metrics = await scrape(session, daemon.metrics_url)
            queue = metrics.queue_depth
            run.peak_queue = max(run.peak_queue, queue)
        if now - last_print >= PROGRESS_EVERY:
            last_print = now
            rss = proc_status(daemon.process.pid, "VmRSS") / MIB
            print(
                f"  {now - started:6.1f}s  sources Ready {len(sources.ready_at):5d}/{run.n}  "
                f"Kustomizations Ready {len(kustomizations.ready_at):5d}/{run.n}  "
                f"queue {queue:5.0f} ({now - last_scrape:3.0f}s ago)  fluxd RSS {rss:6.1f} MiB",
                flush=True,
            )
        kustomizations.changed.clear()
        try:
            async with asyncio.timeout(0.5):
                await kustomizations.changed.wait()
        except TimeoutError:
            pass


def one_run(
    n: int,
    concurrent: int,
    *,
    wait: bool,
    monorepo_layout: bool,
    idle: float,
    replicas: int,
    timeout: float,
    scrape_every: float,
    profile_dir: Path | None,
) -> Run:
    run = Run(
        n=n,
        concurrent=concurrent,
        wait=wait,
        monorepo=monorepo_layout,
        idle_seconds=idle,
        profile_dir=profile_dir,
    )
    layout = "monorepo" if monorepo_layout else "a repository per pair"
    print(f"N={n} concurrent={concurrent} wait={wait} ({layout}): preparing", flush=True)
    names = [f"app-{index:04d}" for index in range(n)]
    repos = (
        {MONOREPO: monorepo(names, replicas)}
        if monorepo_layout
        else {name: pair_repository(name, replicas) for name in names}
    )
    with (
        tempfile.TemporaryDirectory(prefix="fluxd-bench-") as tmp,
        LocalControlPlane() as plane,
        serve_repositories(repos, run.git) as base_url,
    ):
        install_crds(plane.kubeconfig)
        with run_daemon(plane.kubeconfig, Path(tmp), concurrent) as daemon:
            asyncio.run(measure(run, plane.kubeconfig, daemon, base_url, timeout, scrape_every))
        try:
            recorded = json.loads(daemon.counts_file.read_text())
        except (OSError, ValueError):
            recorded = {"counts": {}, "seconds": {}}
        run.daemon_requests = Counter(recorded["counts"])
        run.daemon_request_seconds = Counter(recorded["seconds"])
        run.failures = failure_reasons(daemon.log_file)
        run.profiles = daemon.keep_profiles(run)
        if run.seconds is None:
            keep = Path(tempfile.mkdtemp(prefix="fluxd-bench-log-")) / "daemon.log"
            keep.write_bytes(daemon.log_file.read_bytes())
            print(f"  daemon log kept at {keep}")
    report_run(run)
    return run


def failure_reasons(log_file: Path) -> Counter[str]:
    """``kind reason`` of every failed reconcile in the daemon's JSON log."""
    reasons: Counter[str] = Counter()
    with log_file.open() as lines:
        for line in lines:
            if '"reconciliation failed"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            reasons[f"{record.get('kind')} {record.get('reason')}"] += 1
    return reasons


# -- reporting ------------------------------------------------------------------------------


def _top(counter: Counter[str], count: int = 8) -> str:
    return ", ".join(f"{key} {value}" for key, value in counter.most_common(count))


def report_run(run: Run) -> None:
    done = f"{run.seconds:.1f}s" if run.seconds is not None else f"NOT DONE ({run.ready}/{run.n})"
    sources = f"{run.sources_ready_seconds:.1f}s" if run.sources_ready_seconds else "-"
    print(f"  all Kustomizations Ready: {done} (all sources Ready: {sources})")
    total = sum(run.apiserver.values())
    print(f"  API server requests: {total} ({total / run.n:.1f}/pair): {_top(run.apiserver)}")
    print(
        f"    of which fluxd {run.daemon_total} ({run.daemon_total / run.n:.1f}/pair, incl. its "
        f"start-up), this bench {run.bench_requests}; the rest are controller-manager, "
        "scheduler and simulated node"
    )
    print(f"    fluxd by verb/resource: {_top(run.daemon_requests, 12)}")
    waited = sum(run.daemon_request_seconds.values())
    slowest = _top(_rounded(run.daemon_request_seconds))
    print(f"    fluxd summed request latency {waited:.1f}s: {slowest}")
    print(
        f"  fluxd RSS: idle {run.idle_rss / MIB:.1f} MiB, peak (VmHWM) {run.peak_rss / MIB:.1f} MiB"
    )
    print(
        f"  CPU seconds during the run: fluxd {run.daemon_cpu:.1f}, control plane "
        f"{run.plane_cpu:.1f}, bench+git server {run.bench_cpu:.1f}; machine busy "
        f"{run.machine_busy * 100:.0f}% of {os.cpu_count()} cores"
    )
    print(
        f"  git server: {run.git.requests} requests, {run.git.busy:.1f}s busy (summed), "
        f"peak {run.git.peak} in flight"
    )
    final = run.final
    for kind in sorted(final.duration_sum):
        count = final.duration_count.get(kind, 0.0)
        print(
            f"  {kind}: {count:.0f} reconciles, {final.duration_sum[kind]:.1f}s summed, "
            f"mean {final.duration_sum[kind] / max(count, 1):.3f}s"
        )
    print(f"  reconcile results: {final.results}; peak queue depth {run.peak_queue:.0f}")
    print(f"  failed reconciles by reason: {dict(run.failures)}")
    print(f"  last /metrics scrape took {final.scrape_seconds * 1000:.0f} ms")
    if run.idle_seconds and run.seconds is not None:
        per_minute = 60 / run.idle_seconds
        print(
            f"  idle after convergence: fluxd {run.idle_cpu * per_minute:.2f} CPU-s per minute; "
            f"API server {run.idle_apiserver * per_minute:.0f} requests per minute (everyone's)"
        )
    for phase, path in run.profiles:
        report_profile(phase, path)


def report_profile(phase: str, path: Path, count: int = 25) -> None:
    """The functions of the daemon's event loop that took the most time of itself."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(count)
    print(f"  profile of the daemon's event loop, {phase} ({path}):")
    for line in out.getvalue().splitlines():
        if line.strip() and not line.startswith(("   Ordered", "   List reduced")):
            print(f"    {line.rstrip()}")


def _rounded(counter: Counter[str]) -> Counter[str]:
    return Counter({key: round(value, 1) for key, value in counter.items()})


def report_table(runs: list[Run]) -> None:
    print()
    print(
        "| N | layout | concurrent | wait | runs | time to all Ready (median) | API requests total "
        "(/pair) | fluxd requests (/pair) | fluxd peak RSS MiB | fluxd CPU s | "
        "control plane CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple[int, bool, int, bool], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.n, run.monorepo, run.concurrent, run.wait), []).append(run)
    for (n, monorepo_layout, concurrent, wait), group in groups.items():
        finished = [run.seconds for run in group if run.seconds is not None]
        time_text = (
            f"{statistics.median(finished):.1f}s ({', '.join(f'{s:.1f}' for s in finished)})"
            if len(finished) == len(group)
            else f"{len(group) - len(finished)} of {len(group)} timed out"
        )
        total = statistics.median(sum(run.apiserver.values()) for run in group)
        daemon = statistics.median(run.daemon_total for run in group)
        rss = statistics.median(run.peak_rss / MIB for run in group)
        cpu = statistics.median(run.daemon_cpu for run in group)
        plane = statistics.median(run.plane_cpu for run in group)
        print(
            f"| {n} | {'monorepo' if monorepo_layout else 'repo per pair'} | {concurrent} | "
            f"{wait} | {len(group)} | {time_text} | {total:.0f} "
            f"({total / n:.1f}) | {daemon:.0f} ({daemon / n:.1f}) | {rss:.1f} | {cpu:.1f} | "
            f"{plane:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="pairs (repeatable; 100)")
    parser.add_argument(
        "--concurrent", type=int, action="append", help="fluxd --concurrent (repeatable; 4)"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per (N, concurrency)")
    parser.add_argument("--wait", action="store_true", help="Kustomizations with wait: true")
    parser.add_argument(
        "--monorepo",
        action="store_true",
        help="one repository with apps/<name>/ per pair, every GitRepository on it",
    )
    parser.add_argument("--replicas", type=int, default=1, help="replicas of each Deployment")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="seconds to stay after convergence, measuring fluxd's idle CPU (0: none)",
    )
    parser.add_argument(
        "--scrape-every",
        type=float,
        default=10.0,
        help="seconds between fluxd /metrics scrapes (each blocks fluxd ~1.4 s at N=1000)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="directory for cProfiles of fluxd's event loop (the run, and the idle time)",
    )
    args = parser.parse_args()
    logs.configure("warning", json=False)
    # A SIGTERM (``timeout``) unwinds the context managers: daemon, git server, cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    runs = [
        one_run(
            n,
            concurrent,
            wait=args.wait,
            monorepo_layout=args.monorepo,
            idle=args.idle,
            replicas=args.replicas,
            timeout=args.timeout,
            scrape_every=args.scrape_every,
            profile_dir=args.profile,
        )
        for n in args.n or [100]
        for concurrent in args.concurrent or [4]
        for _ in range(args.runs)
    ]
    report_table(runs)


if __name__ == "__main__":
    main()
