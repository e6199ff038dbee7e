"""Does fluxd stay flat over many reconciles of the same objects?

A leak that costs a few kB per reconcile is invisible in a convergence bench and fatal
after a week. This soak runs N GitRepository + Kustomization pairs from one monorepo on
a fast clock (every object's ``interval`` is ``--interval``, 10 s by default), so each
object goes through dozens of reconciles in a few minutes, and watches fluxd's process:

- resident memory (``VmRSS``), open file descriptors (``/proc/<pid>/fd``) and threads,
  every ``--report-every`` seconds (30 by default), together with what fluxd's
  ``/metrics`` says: reconciles finished by kind and result, the queue depth, and the
  stuck-reconcile watchdog (``fluxd_reconcile_stuck``, ``fluxd_reconcile_oldest_seconds``).
  fluxd does not expose its asyncio task count, so none is printed;
- at the end, the RSS curve (min, max, last), the growth of descriptors and threads, the
  total reconciles, when RSS peaked, and its trend over the last third of the run (past
  convergence and warm-up), called flat under :data:`FLAT_MIB_PER_HOUR`.

Everything is real and on loopback, and shared with :mod:`kustomizations_at_scale`: its
local control plane, its in-memory git server, its fluxd launcher (a separate process, so
that the figures are fluxd's alone) and its Ready tracker. Deployments have zero replicas:
pods would measure the simulated node, not fluxd.

Usage::

    python bench/soak.py [--n 1000] [--minutes 10] [--interval 10s] [--concurrent 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.kustomizations_at_scale import (
    MIB,
    MONOREPO,
    NAMESPACE,
    Daemon,
    GitLoad,
    ReadyTracker,
    create_pairs,
    monorepo,
    proc_status,
    run_daemon,
    samples,
    serve_repositories,
    until_daemon_ready,
)
from fluxd.api import KUSTOMIZATION
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.kube import client
from fluxd.kube.resources import NAMESPACES
from fluxd.runtime import logs

CREATE_IN_FLIGHT = 64
#: The RSS trend, once converged, under which fluxd counts as flat: a daemon meant to run
#: for months may not grow by more than this per hour of steady reconciling.
FLAT_MIB_PER_HOUR = 10.0


@dataclass
class Sample:
    """One look at the daemon: its process, and its ``/metrics``."""

    elapsed: float
    rss: int
    fds: int
    threads: int
    ready: int
    reconciles: dict[str, float] = field(default_factory=dict)  # "kind/result" -> total
    stuck: dict[str, float] = field(default_factory=dict)  # kind -> reconciles stuck
    oldest: dict[str, float] = field(default_factory=dict)  # kind -> seconds
    queue_depth: float = 0.0

    @property
    def total_reconciles(self) -> float:
        return sum(self.reconciles.values())


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def thread_count(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


async def look(
    session: aiohttp.ClientSession, daemon: Daemon, elapsed: float, ready: int
) -> Sample:
    pid = daemon.process.pid
    sample = Sample(
        elapsed=elapsed,
        rss=proc_status(pid, "VmRSS"),
        fds=open_fds(pid),
        threads=thread_count(pid),
        ready=ready,
    )
    timeout = aiohttp.ClientTimeout(total=60)
    async with session.get(f"{daemon.metrics_url}/metrics", timeout=timeout) as resp:
        text = await resp.text()
    wanted = [
        "fluxd_reconcile_total",
        "fluxd_reconcile_stuck",
        "fluxd_reconcile_oldest_seconds",
        "fluxd_queue_depth",
    ]
    for name, labels, value in samples(text, wanted):
        kind = labels.get("kind", "")
        if name == "fluxd_reconcile_total":
            sample.reconciles[f"{kind}/{labels.get('result')}"] = value
        elif name == "fluxd_reconcile_stuck":
            sample.stuck[kind] = value
        elif name == "fluxd_reconcile_oldest_seconds":
            sample.oldest[kind] = value
        else:
            sample.queue_depth = value
    return sample


def _by_kind(values: dict[str, float], unit: str = "") -> str:
    return " ".join(f"{kind}={value:g}{unit}" for kind, value in sorted(values.items())) or "-"


def print_sample(sample: Sample, n: int) -> None:
    print(
        f"  {sample.elapsed:6.0f}s  RSS {sample.rss / MIB:6.1f} MiB  fds {sample.fds:4d}  "
        f"threads {sample.threads:3d}  Ready {sample.ready:5d}/{n}  "
        f"queue {sample.queue_depth:5.0f}  reconciles {sample.total_reconciles:7.0f} "
        f"({_by_kind(sample.reconciles)})  stuck {_by_kind(sample.stuck)}  "
        f"oldest {_by_kind(sample.oldest, 's')}",
        flush=True,
    )


async def soak(
    kubeconfig: Path, daemon: Daemon, base_url: str, args: argparse.Namespace
) -> list[Sample]:
    api = await client.connect(str(kubeconfig))
    names = [f"app-{index:04d}" for index in range(args.n)]
    kustomizations = ReadyTracker(api, KUSTOMIZATION)
    taken: list[Sample] = []
    try:
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
            await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
            await until_daemon_ready(session, daemon)
            watcher = tasks.create_task(kustomizations.informer.run())
            await kustomizations.informer.synced.wait()
            started = time.perf_counter()
            taken.append(await look(session, daemon, 0.0, 0))
            print_sample(taken[-1], args.n)
            await create_pairs(
                api,
                base_url,
                names,
                False,
                monorepo=True,
                interval=args.interval,
                spec_timeout="1m",
            )
            print(f"  created {2 * args.n} objects in {time.perf_counter() - started:.1f}s")
            end = started + args.minutes * 60
            while (now := time.perf_counter()) < end:
                await asyncio.sleep(min(args.report_every, end - now))
                if daemon.process.poll() is not None:
                    tail = daemon.log_file.read_text(errors="replace").splitlines()[-20:]
                    print(f"  fluxd exited with {daemon.process.returncode}; its log ends:")
                    print("\n".join(tail))
                    break
                ready = len(kustomizations.ready_at)
                elapsed = time.perf_counter() - started
                taken.append(await look(session, daemon, elapsed, ready))
                print_sample(taken[-1], args.n)
            watcher.cancel()
    finally:
        await api.close()
    return taken


def report(taken: list[Sample], n: int) -> None:
    """The curve's summary, and whether memory stayed flat once everything converged."""
    if len(taken) < 3:
        print("too few samples for a verdict; run longer")
        return
    loaded = taken[1:]
    rss = [sample.rss / MIB for sample in loaded]
    first, last = taken[0], taken[-1]
    print(
        f"RSS with {n} pairs: min {min(rss):.1f} MiB  max {max(rss):.1f} MiB  "
        f"last {rss[-1]:.1f} MiB  (idle before creating: {first.rss / MIB:.1f} MiB)"
    )
    print(
        f"fds: {first.fds} idle -> {loaded[0].fds} first loaded -> {last.fds} last "
        f"(max {max(sample.fds for sample in loaded)});  threads: {first.threads} -> "
        f"{loaded[0].threads} -> {last.threads} (max {max(s.threads for s in loaded)})"
    )
    minutes = max(last.elapsed / 60, 1e-9)
    print(
        f"reconciles: {last.total_reconciles:.0f} in {last.elapsed:.0f}s "
        f"({last.total_reconciles / minutes:.0f}/min; {_by_kind(last.reconciles)}); "
        f"per object about {last.total_reconciles / (2 * n):.1f}"
    )
    print(f"stuck at the end: {_by_kind(last.stuck)}; max stuck seen: {max_stuck(loaded):g}")
    peak = next(s for s in loaded if s.rss == max(sample.rss for sample in loaded))
    print(
        f"RSS peak first reached at {peak.elapsed:.0f}s, "
        f"{last.elapsed - peak.elapsed:.0f}s before the end"
    )
    # The first two thirds hold the warm-up (allocator arenas, caches filling); the verdict
    # is on the steady state after it.
    steady = [s for s in loaded if s.elapsed >= last.elapsed * 2 / 3]
    if len(steady) < 2:
        print("the last third has fewer than 2 samples: no flatness verdict; run longer")
        return
    span = steady[-1].elapsed - steady[0].elapsed
    reconciles = steady[-1].total_reconciles - steady[0].total_reconciles
    drift = (steady[-1].rss - steady[0].rss) / MIB
    slope = statistics.linear_regression(
        [s.elapsed / 60 for s in steady], [s.rss / MIB for s in steady]
    ).slope
    per_reconcile = drift * MIB / reconciles if reconciles else 0.0
    flat = slope * 60 < FLAT_MIB_PER_HOUR
    print(
        f"last third ({span:.0f}s, {reconciles:.0f} reconciles): RSS drift {drift:+.1f} MiB "
        f"({per_reconcile:+.0f} B/reconcile), trend {slope:+.2f} MiB/min "
        f"= {slope * 60:+.0f} MiB/hour -> "
        f"{'flat' if flat else f'GROWING (over {FLAT_MIB_PER_HOUR:.0f} MiB/hour)'}"
    )


def max_stuck(taken: Iterable[Sample]) -> float:
    return max((sum(sample.stuck.values()) for sample in taken), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="GitRepository+Kustomization pairs")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak")
    parser.add_argument("--interval", default="10s", help="every object's spec.interval")
    parser.add_argument("--concurrent", type=int, default=4, help="fluxd --concurrent")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()
    logs.configure("warning", json=False)
    # A SIGTERM (``timeout``) unwinds the context managers: daemon, git server, cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = [f"app-{index:04d}" for index in range(args.n)]
    print(
        f"soak: N={args.n} interval={args.interval} concurrent={args.concurrent} "
        f"for {args.minutes:g} min on {os.cpu_count()} cores",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="fluxd-soak-") as tmp,
        LocalControlPlane() as plane,
        serve_repositories({MONOREPO: monorepo(names, 0)}, GitLoad()) as base_url,
    ):
        install_crds(plane.kubeconfig)
        with run_daemon(plane.kubeconfig, Path(tmp), args.concurrent) as daemon:
            taken = asyncio.run(soak(plane.kubeconfig, daemon, base_url, args))
    report(taken, args.n)


if __name__ == "__main__":
    main()
