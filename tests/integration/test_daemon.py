"""The daemon as an operator runs it: two replicas, SIGTERM, sharding, the README command."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, RECEIVER
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import cache_root
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import LEASES
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, is_ready_now, namespaced_fluxd

pytestmark = pytest.mark.integration

LEASE = "fluxd-leader-election"
REPO_ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def running(api: ApiClient, options: Options) -> AsyncIterator[Daemon]:
    daemon = Daemon(api, options)
    task = asyncio.create_task(daemon.run())
    try:
        yield daemon
    finally:
        daemon.shutdown()
        async with asyncio.timeout(WAIT_TIMEOUT):
            await task


async def lease_holder(api: ApiClient, namespace: str) -> str:
    try:
        lease = await client.get(api, LEASES, namespace, LEASE)
    except client.ApiError as error:
        if error.not_found:
            return ""
        raise
    return str(lease.get("spec", {}).get("holderIdentity") or "")


async def wait_until_leading(daemon: Daemon) -> None:
    async with asyncio.timeout(WAIT_TIMEOUT):
        while not daemon.leading:
            await asyncio.sleep(0.05)


async def test_standby_takes_over_when_the_leader_stops(
    fluxd: Fluxd, api_client: ApiClient, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    namespace = fluxd.namespace
    fluxd.daemon.shutdown()  # this test runs its own pair of replicas
    options = Options(
        metrics_addr="127.0.0.1:0",
        artifact_addr="127.0.0.1:0",
        artifact_base_url="http://127.0.0.1:1",
        leader_elect=True,
        leader_election_namespace=namespace,
        watch_namespace=namespace,
        grace_period=5,
    )
    git_remote.commit({"a.yaml": "a"})
    async with running(api_client, options) as first:
        await wait_until_leading(first)
        async with running(api_client, options) as second:
            async with asyncio.timeout(WAIT_TIMEOUT):
                while not second.ready():
                    await asyncio.sleep(0.05)
            await fluxd.create(
                GIT_REPOSITORY, "app", {"interval": "1h", "url": git_http.url(git_remote)}
            )
            await fluxd.wait_ready(GIT_REPOSITORY, "app")
            assert not second.leading, "two replicas lead at once"
            assert await lease_holder(api_client, namespace) == first.identity

            first.shutdown()
            await wait_until_leading(second)
            assert await lease_holder(api_client, namespace) == second.identity
            sha = git_remote.commit({"b.yaml": "b"})
            await fluxd.patch(
                GIT_REPOSITORY,
                "app",
                {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "takeover"}}},
            )
            await fluxd.wait_for(
                GIT_REPOSITORY,
                "app",
                lambda o: o["status"]["artifact"]["revision"].endswith(sha),
                "the new leader reconciling a push",
            )
            await fluxd.delete(GIT_REPOSITORY, "app")
            await fluxd.wait_gone(GIT_REPOSITORY, "app")


async def test_sigterm_stops_cleanly_and_releases_the_lease(
    kubeconfig: Path, api_client: ApiClient, namespace: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxd",
        "run",
        f"--kubeconfig={kubeconfig}",
        "--leader-elect",
        f"--leader-election-namespace={namespace}",
        f"--watch-namespace={namespace}",
        "--metrics-addr=127.0.0.1:0",
        "--artifact-addr=127.0.0.1:0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            while not await lease_holder(api_client, namespace):
                assert process.returncode is None, "fluxd exited before taking the lease"
                await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT_TIMEOUT):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert await lease_holder(api_client, namespace) == "", "the lease was not released"
    assert b'"msg": "stopped"' in stderr


async def test_watch_label_selector_shards_objects(
    api_client: ApiClient, fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer
) -> None:
    fluxd.daemon.shutdown()
    git_remote.commit({"a.yaml": "a"})
    url = git_http.url(git_remote)
    options = Options(
        metrics_addr="127.0.0.1:0",
        artifact_addr="127.0.0.1:0",
        artifact_base_url="http://127.0.0.1:1",
        watch_namespace=fluxd.namespace,
        watch_label_selector="sharding.fluxcd.io/key=shard1",
        grace_period=5,
    )
    async with running(api_client, options):
        for name, shard in (("mine", "shard1"), ("theirs", "shard2")):
            await client.create(
                api_client,
                resource_of(GIT_REPOSITORY),
                {
                    "apiVersion": GIT_REPOSITORY.api_version,
                    "kind": GIT_REPOSITORY.kind,
                    "metadata": {
                        "name": name,
                        "namespace": fluxd.namespace,
                        "labels": {"sharding.fluxcd.io/key": shard},
                    },
                    "spec": {"interval": "1h", "url": url},
                },
            )
        await fluxd.wait_ready(GIT_REPOSITORY, "mine")
        theirs = await fluxd.get(GIT_REPOSITORY, "theirs")
        assert not is_ready_now(theirs), "an object of another shard was reconciled"
        assert "finalizers" not in theirs["metadata"]
        await fluxd.delete(GIT_REPOSITORY, "mine")
        await fluxd.wait_gone(GIT_REPOSITORY, "mine")
    await fluxd.delete(GIT_REPOSITORY, "theirs")


async def test_readme_run_command_shows_a_ready_gitrepository(tmp_path: Path) -> None:
    """``scripts/run`` with no kubeconfig: local control plane, demo repo, both objects Ready."""
    env = {key: value for key, value in os.environ.items() if key not in {"KUBECONFIG"}} | {
        "HOME": str(tmp_path),
        "FLUXD_CACHE_DIR": str(cache_root()),
    }
    process = await asyncio.create_subprocess_exec(
        str(REPO_ROOT / "scripts" / "run"),
        "--metrics-addr=127.0.0.1:0",
        "--artifact-addr=127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(180):
            while True:
                line = (await process.stdout.readline()).decode()
                assert line, f"fluxd run ended early: {''.join(lines)}"
                lines.append(line)
                if line.startswith("stop with Ctrl-C"):
                    break
        ready = [line for line in lines if " is Ready: " in line]
        assert ready[0].startswith(
            "GitRepository flux-system/demo is Ready: stored artifact for revision 'main@sha1:"
        )
        assert ready[1].startswith(
            "Kustomization flux-system/demo is Ready: Applied revision: main@sha1:"
        )
        # Then the `fluxd get all -A` table, both objects in it, and what to try next.
        table = lines[lines.index(ready[1]) + 1 :]
        assert table[0].split()[:2] == ["NAMESPACE", "NAME"]
        names = [line.split()[1] for line in table if line.startswith("flux-system")]
        assert names == ["gitrepository/demo", "kustomization/demo"], "".join(table)
        assert any(line.startswith("try next:  export KUBECONFIG=") for line in table)
        assert any("fluxd tree kustomization demo -n flux-system" in line for line in table)
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await process.wait()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    assert process.returncode == 0, "".join(lines)


async def test_receivers_have_a_listener_of_their_own_that_serves_nothing_else(
    api_client: ApiClient, namespace: str
) -> None:
    async with namespaced_fluxd(api_client, namespace, receiver_addr="127.0.0.1:0") as fluxd:
        token = "listener-t0ken"
        await fluxd.secret("hook-token", {"token": token})
        dead = "http://127.0.0.1:9/nothing.git"
        await fluxd.create(GIT_REPOSITORY, "target", {"interval": "1h", "url": dead})
        await fluxd.create(
            RECEIVER,
            "generic",
            {
                "type": "generic",
                "secretRef": {"name": "hook-token"},
                "resources": [{"kind": "GitRepository", "name": "target"}],
            },
        )
        receiver = await fluxd.wait_ready(RECEIVER, "generic")
        host, port = fluxd.daemon.addresses["receivers"]
        base = f"http://{host}:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(base + receiver["status"]["webhookPath"]) as response:
                assert response.status == 200
            async with session.get(
                f"{base}/gitrepository/{namespace}/target/latest.tar.gz"
            ) as response:
                assert response.status == 404, "artifacts are not served on the webhook port"
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 404
        target = await fluxd.get(GIT_REPOSITORY, "target")
        assert "reconcile.fluxcd.io/requestedAt" in target["metadata"]["annotations"]
