"""Replicas that die or are stopped mid-work: what a user of ``--leader-elect`` relies on.

Real ``fluxd run`` processes (the command a pod runs), each with its own loopback
listeners and log file, reconcile a Kustomization that waits (``wait: true``) for a
Deployment:

- a leader killed (SIGKILL, no release of the Lease) while it waits for the Deployment
  is replaced by the standby within the lease duration, which finishes the work: the
  Kustomization ends Ready with every object applied once and an exact inventory;
- a daemon sent SIGTERM while it waits for a Deployment exits within its grace period,
  releases the Lease and leaves ``Ready=False``/``HealthCheckCanceled`` (not a
  ``Ready=Unknown`` that nobody will resolve); a new daemon finishes the same revision.

And a disk fluxd cannot write: with a memory budget and a spill directory that cannot
be written, the source storing an artifact says ``Ready=False``/``StorageOperationFailed``
naming the directory, stores nothing, and the daemon keeps serving.

The control plane's node simulator makes pods Ready at once; ``minReadySeconds`` makes
the Deployment take a few seconds to become Available, as a real rollout does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.kube import client
from fluxd.kube.resources import LEASES, Resource
from fluxd.runtime import conditions
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import (
    WAIT_TIMEOUT,
    Fluxd,
    _delete_flux_objects,
    is_ready_now,
    namespaced_fluxd,
    ready_reason,
)
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    configmap,
    kustomization,
    live,
    setup_source,
    until,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_ID = Options().leader_election_id
LEASE_DURATION = 6.0
RENEW_DEADLINE = 4.0
RETRY_PERIOD = 1.0
#: Process start-up and API round trips on a busy two-core test machine.
SLACK = 3.0
REPLICASETS = Resource("apps", "v1", "replicasets")


@dataclass
class Replica:
    """One ``fluxd run`` process and the JSON log lines it wrote."""

    process: asyncio.subprocess.Process
    log_file: Path

    def log_lines(self) -> Iterator[dict[str, Any]]:
        for line in self.log_file.read_text(errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                yield parsed

    @property
    def has_led(self) -> bool:
        """Whether this replica said it became leader (its logs redact the identity)."""
        return any(line.get("msg") == "became leader" for line in self.log_lines())

    @property
    def output(self) -> str:
        return self.log_file.read_text(errors="replace")


@asynccontextmanager
async def replica(
    kubeconfig: Path, namespace: str, log_file: Path, *extra: str
) -> AsyncIterator[Replica]:
    """``fluxd run --leader-elect`` for ``namespace``, its Lease in ``namespace`` with
    short timings; stopped with SIGTERM (then SIGKILL) on exit if still running."""
    with log_file.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxd",
            "run",
            f"--kubeconfig={kubeconfig}",
            f"--watch-namespace={namespace}",
            "--metrics-addr=127.0.0.1:0",
            "--artifact-addr=127.0.0.1:0",
            "--leader-elect",
            f"--leader-election-namespace={namespace}",
            f"--leader-election-lease-duration={LEASE_DURATION:g}s",
            f"--leader-election-renew-deadline={RENEW_DEADLINE:g}s",
            f"--leader-election-retry-period={RETRY_PERIOD:g}s",
            *extra,
            stdout=sink,
            stderr=sink,
            cwd=REPO_ROOT,
        )
    running = Replica(process, log_file)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(WAIT_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def view(api: ApiClient, namespace: str) -> Fluxd:
    """Helpers that drive the cluster; this Daemon is never run, it only names the kinds."""
    return Fluxd(Daemon(api, Options(watch_namespace=namespace)), api, namespace)


async def lease_holder(api: ApiClient, namespace: str) -> str:
    lease = await client.get(api, LEASES, namespace, LEASE_ID, missing_ok=True)
    return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")


async def leader_of(api: ApiClient, namespace: str, replicas: list[Replica]) -> Replica:
    """The one replica that became leader, once it said so and the Lease has a holder."""
    async with asyncio.timeout(WAIT_TIMEOUT):
        while True:
            for candidate in replicas:
                assert candidate.process.returncode is None, candidate.output
            leaders = [candidate for candidate in replicas if candidate.has_led]
            if leaders and await lease_holder(api, namespace):
                assert len(leaders) == 1, "two replicas led at once"
                return leaders[0]
            await asyncio.sleep(0.1)


def slow_deployment(namespace: str, name: str, *, min_ready_seconds: int) -> str:
    """One replica, Available only after its pod was Ready for ``min_ready_seconds``."""
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n  replicas: 1\n"
        f"  minReadySeconds: {min_ready_seconds}\n"
        f"  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n"
        f"      labels:\n        app: {name}\n    spec:\n      containers:\n"
        f"      - name: app\n        image: nginx:1.27\n"
    )


def fluxd_managers(obj: dict[str, Any]) -> list[str]:
    return [
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if entry.get("operation") == "Apply"
    ]


async def test_standby_takes_over_a_leader_killed_mid_apply(
    kubeconfig: Path,
    api_client: ApiClient,
    namespace: str,
    tmp_path: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    sha = git_remote.commit(
        {
            "app/deploy.yaml": slow_deployment(namespace, "web", min_ready_seconds=6),
            "app/settings.yaml": configmap(namespace, "settings"),
        }
    )
    fluxd = view(api_client, namespace)
    async with (
        replica(kubeconfig, namespace, tmp_path / "first.log") as first,
        replica(kubeconfig, namespace, tmp_path / "second.log") as second,
    ):
        leader = await leader_of(api_client, namespace, [first, second])
        standby = second if leader is first else first
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "app", kustomization("./app", wait=True, timeout="2m"))

        async def waiting_for_health() -> bool:
            return await live(fluxd, DEPLOYMENTS, "web") is not None

        await until("the leader applied the Deployment", waiting_for_health)
        midway = await fluxd.get(KUSTOMIZATION, "app")
        assert not is_ready_now(midway), "the health wait should still be running"

        killed_holder = await lease_holder(api_client, namespace)
        leader.process.kill()
        killed_at = time.monotonic()
        await leader.process.wait()
        assert standby.process.returncode is None
        async with asyncio.timeout(WAIT_TIMEOUT):
            while await lease_holder(api_client, namespace) in ("", killed_holder):
                await asyncio.sleep(0.05)
        takeover = time.monotonic() - killed_at
        assert standby.has_led, standby.output
        print(f"standby took over {takeover:.2f}s after the leader was killed")
        assert takeover < LEASE_DURATION + RETRY_PERIOD * 1.2 + SLACK, standby.output

        done = await fluxd.wait_for(
            KUSTOMIZATION, "app", is_ready_now, "Ready=True after the takeover"
        )
        status = done["status"]
        assert status["lastAppliedRevision"].endswith(f"@sha1:{sha}"), status
        healthy = conditions.get(status, "Healthy")
        assert healthy is not None, status
        assert healthy["status"] == "True", status
        assert conditions.get(status, conditions.RECONCILING) is None, status
        assert conditions.get(status, conditions.STALLED) is None, status
        entries = sorted(entry["id"] for entry in status["inventory"]["entries"])
        assert entries == [
            f"{namespace}_settings__ConfigMap",
            f"{namespace}_web_apps_Deployment",
        ]

        deployments = await client.list_page(api_client, DEPLOYMENTS, namespace)
        assert [item["metadata"]["name"] for item in deployments["items"]] == ["web"]
        web = deployments["items"][0]
        # Applied once: the takeover's apply changed nothing, so no second rollout.
        assert web["metadata"]["generation"] == 1
        replica_sets = await client.list_page(api_client, REPLICASETS, namespace)
        assert len(replica_sets["items"]) == 1
        assert len(fluxd_managers(web)) == 1, web["metadata"]["managedFields"]
        settings = await live(fluxd, CONFIGMAPS, "settings")
        assert settings is not None
        assert len(fluxd_managers(settings)) == 1

        await _delete_flux_objects(fluxd)


async def test_sigterm_during_a_health_wait_stops_in_grace_and_a_new_daemon_resumes(
    kubeconfig: Path,
    api_client: ApiClient,
    namespace: str,
    tmp_path: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    grace = 3.0
    sha = git_remote.commit(
        {"app/deploy.yaml": slow_deployment(namespace, "web", min_ready_seconds=12)}
    )
    fluxd = view(api_client, namespace)
    async with replica(
        kubeconfig, namespace, tmp_path / "stopped.log", f"--grace-period={grace:g}"
    ) as stopped:
        await leader_of(api_client, namespace, [stopped])
        await setup_source(fluxd, git_remote, git_http)
        await fluxd.create(KUSTOMIZATION, "app", kustomization("./app", wait=True, timeout="2m"))

        async def waiting_for_health() -> bool:
            return await live(fluxd, DEPLOYMENTS, "web") is not None

        await until("the daemon applied the Deployment", waiting_for_health)
        await asyncio.sleep(1.0)
        assert not is_ready_now(await fluxd.get(KUSTOMIZATION, "app"))
        stopped.process.send_signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await stopped.process.wait()
        stopping = time.monotonic() - signalled_at
        print(f"daemon stopped {stopping:.2f}s after SIGTERM (grace period {grace:g}s)")
        assert stopping < grace + SLACK, stopped.output
        assert stopped.process.returncode == 0, stopped.output

    left = await fluxd.get(KUSTOMIZATION, "app")
    assert ready_reason(left) == ("False", "HealthCheckCanceled"), left.get("status")
    ready = conditions.get(left["status"], conditions.READY)
    assert ready is not None
    assert "fluxd stopped before the applied objects became healthy" in ready["message"]
    healthy = conditions.get(left["status"], "Healthy")
    assert healthy is not None
    assert healthy["status"] == "Unknown", left["status"]
    assert await lease_holder(api_client, namespace) == "", "the Lease was not released"

    async with replica(kubeconfig, namespace, tmp_path / "resumed.log") as resumed:
        await leader_of(api_client, namespace, [resumed])
        done = await fluxd.wait_for(KUSTOMIZATION, "app", is_ready_now, "Ready=True after resuming")
        assert done["status"]["lastAppliedRevision"].endswith(f"@sha1:{sha}")
        healthy = conditions.get(done["status"], "Healthy")
        assert healthy is not None
        assert healthy["status"] == "True", done["status"]
        web = await live(fluxd, DEPLOYMENTS, "web")
        assert web is not None
        assert web["metadata"]["generation"] == 1
        await _delete_flux_objects(fluxd)


async def test_an_unwritable_spill_directory_fails_the_source_by_name_and_fluxd_stays_up(
    api_client: ApiClient,
    namespace: str,
    tmp_path: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    # Root ignores permission bits, so the directory is made unwritable another way: its
    # parent is a file. A full disk fails the same write with ENOSPC instead of ENOTDIR.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    spill_dir = blocker / "spill"
    big = {f"files/blob-{n}.txt": os.urandom(700 * 1024).hex()[: 700 * 1024] for n in (1, 2)}
    git_remote.commit(big)
    async with namespaced_fluxd(
        api_client, namespace, artifact_memory_mib=1, artifact_spill_dir=str(spill_dir)
    ) as fluxd:
        await fluxd.create(
            GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
        )
        failed = await fluxd.wait_not_ready(GIT_REPOSITORY, "source", "StorageOperationFailed")
        ready = conditions.get(failed["status"], conditions.READY)
        assert ready is not None
        print("status:", ready["reason"], ready["message"])
        assert "spill directory" in ready["message"], ready
        assert str(spill_dir) in ready["message"], ready
        assert "artifact" not in failed["status"], failed["status"]
        assert not spill_dir.exists()

        host, port = fluxd.daemon.addresses["probes"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/healthz") as response,
        ):
            assert response.status == 200
        assert fluxd.daemon.leading
