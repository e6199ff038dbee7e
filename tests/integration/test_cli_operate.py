"""``fluxd reconcile | suspend | resume | delete`` against the real control plane while the
daemon under test reconciles a GitRepository from a loopback git server and
Kustomizations of it.

The command runs as a user runs it: a separate process (``python -m fluxd``) with the
session's kubeconfig, its progress lines on stderr as ``flux`` prints them.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fluxd.api import GIT_REPOSITORY, HELM_CHART, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    applied,
    configmap,
    kustomization,
    live,
    setup_source,
)

pytestmark = pytest.mark.integration


async def fluxd_cli(
    kubeconfig: Path, *args: str, answer: str | None = None
) -> tuple[int, str, list[str]]:
    """:func:`run_fluxd` with the stderr lines, where ``flux`` prints its progress."""
    code, out, err = await run_fluxd(kubeconfig, *args, answer=answer)
    return code, out, err.splitlines()


async def applied_apps(fluxd: Fluxd, remote: GitRemote, server: GitHTTPServer) -> str:
    """The ``source`` GitRepository and Kustomization ``apps`` applying its ``deploy``
    ConfigMap; the commit applied."""
    ns = fluxd.namespace
    sha = remote.commit({"deploy/settings.yaml": configmap(ns, "settings", "1")})
    await setup_source(fluxd, remote, server)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy", targetNamespace=ns))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    return sha


async def test_reconcile_with_source_fetches_and_applies_the_new_commit(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    await applied_apps(fluxd, git_remote, git_http)
    # A new commit the daemon has not been told about (the source's interval is 1h).
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings", "2")})

    code, out, err = await fluxd_cli(
        kubeconfig, "reconcile", "ks", "apps", "--with-source", "-n", ns
    )

    assert (code, out) == (0, ""), err
    revision = f"master@sha1:{sha}"
    assert err == [
        f"► annotating GitRepository source in {ns} namespace",
        "✔ GitRepository annotated",
        "◎ waiting for GitRepository reconciliation",
        f"✔ fetched revision {revision}",
        f"► annotating Kustomization apps in {ns} namespace",
        "✔ Kustomization annotated",
        "◎ waiting for Kustomization reconciliation",
        f"✔ applied revision {revision}",
    ]
    settings = await live(fluxd, CONFIGMAPS, "settings")
    assert settings is not None
    assert settings["data"] == {"value": "2"}


async def test_a_suspended_kustomization_refuses_reconcile_until_resumed(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    sha = await applied_apps(fluxd, git_remote, git_http)

    code, _, err = await fluxd_cli(kubeconfig, "suspend", "kustomization", "apps", "-n", ns)
    assert code == 0, err
    assert err == [
        f"► suspending kustomization apps in {ns} namespace",
        "✔ kustomization suspended",
    ]
    assert (await fluxd.get(KUSTOMIZATION, "apps"))["spec"]["suspend"] is True

    code, _, err = await fluxd_cli(kubeconfig, "reconcile", "ks", "apps", "-n", ns)
    assert code == 1
    assert err == [
        f"✗ resource is suspended: resume it first with 'fluxd resume kustomization apps -n {ns}'"
    ]

    # One name: resume waits for the reconcile it requests, as flux does.
    code, _, err = await fluxd_cli(kubeconfig, "resume", "ks", "apps", "-n", ns)
    assert code == 0, err
    assert err == [
        f"► resuming kustomization apps in {ns} namespace",
        "✔ kustomization resumed",
        "◎ waiting for Kustomization reconciliation",
        "✔ Kustomization apps reconciliation completed",
        f"✔ applied revision master@sha1:{sha}",
    ]
    resumed = await fluxd.get(KUSTOMIZATION, "apps")
    assert resumed["spec"]["suspend"] is False
    assert (
        resumed["status"]["lastHandledReconcileAt"]
        == (resumed["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"])
    )


async def test_all_suspends_and_resumes_every_kustomization_of_the_namespace_only(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    kubeconfig: Path,
    other_namespace: str,
) -> None:
    ns = fluxd.namespace
    await applied_apps(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "more", kustomization("./deploy", targetNamespace=ns))
    elsewhere = {
        "apiVersion": KUSTOMIZATION.api_version,
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": other_namespace},
        "spec": kustomization("./deploy"),
    }
    await client.create(fluxd.api, resource_of(KUSTOMIZATION), elsewhere)

    code, _, err = await fluxd_cli(kubeconfig, "suspend", "ks", "--all", "-n", ns)
    assert code == 0, err
    assert err == [
        f"► suspending kustomization apps in {ns} namespace",
        "✔ kustomization suspended",
        f"► suspending kustomization more in {ns} namespace",
        "✔ kustomization suspended",
    ]
    for name in ("apps", "more"):
        assert (await fluxd.get(KUSTOMIZATION, name))["spec"]["suspend"] is True
    other = await client.get(fluxd.api, resource_of(KUSTOMIZATION), other_namespace, "apps")
    assert "suspend" not in other["spec"]

    # Several objects: no waiting unless --wait.
    code, _, err = await fluxd_cli(kubeconfig, "resume", "ks", "--all", "-n", ns)
    assert code == 0, err
    assert err == [
        f"► resuming kustomization apps in {ns} namespace",
        "✔ kustomization resumed",
        f"► resuming kustomization more in {ns} namespace",
        "✔ kustomization resumed",
    ]
    for name in ("apps", "more"):
        assert (await fluxd.get(KUSTOMIZATION, name))["spec"]["suspend"] is False


async def test_a_missing_object_or_cluster_is_one_line_and_exit_1(
    fluxd: Fluxd, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = fluxd.namespace
    missing = f"✗ Kustomization object 'nope' not found in \"{ns}\" namespace"
    for verb in (["reconcile", "ks", "nope"], ["delete", "ks", "nope", "--silent"]):
        code, out, err = await fluxd_cli(kubeconfig, *verb, "-n", ns)
        assert (code, out, err) == (1, "", [missing])
    code, _, err = await fluxd_cli(kubeconfig, "suspend", "ks", "nope", "-n", ns)
    assert (code, err) == (1, [missing])
    code, _, err = await fluxd_cli(kubeconfig, "suspend", "ks", "--all", "-n", ns)
    assert (code, err) == (1, [f'✗ no Kustomization objects found in "{ns}" namespace'])
    code, _, err = await fluxd_cli(kubeconfig, "resume", "ks", "-n", ns)
    assert (code, err) == (1, ["✗ kustomization name is required (or --all)"])

    absent = tmp_path / "no-such-kubeconfig"
    code, out, err = await fluxd_cli(absent, "reconcile", "source", "git", "source", "-n", ns)
    assert (code, out, err) == (1, "", [f"✗ kubeconfig '{absent}' does not exist"])


async def test_a_failed_reconcile_prints_the_ready_message_and_exits_1(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await fluxd.create(
        GIT_REPOSITORY, "dead", {"interval": "1h", "url": f"http://127.0.0.1:{port}/repo.git"}
    )

    code, _, err = await fluxd_cli(kubeconfig, "reconcile", "source", "git", "dead", "-n", ns)

    assert code == 1
    assert err[:3] == [
        f"► annotating GitRepository dead in {ns} namespace",
        "✔ GitRepository annotated",
        "◎ waiting for GitRepository reconciliation",
    ]
    assert len(err) == 4
    assert err[3].startswith("✗ GitRepository reconciliation failed: ")
    assert f"127.0.0.1:{port}" in err[3]


async def test_reconcile_gives_up_at_the_timeout_naming_what_it_awaited(
    fluxd: Fluxd, kubeconfig: Path, other_namespace: str
) -> None:
    # The daemon under test watches its own namespace only: nothing handles this request.
    unwatched = {
        "apiVersion": GIT_REPOSITORY.api_version,
        "kind": "GitRepository",
        "metadata": {"name": "idle", "namespace": other_namespace},
        "spec": {"interval": "1h", "url": "http://127.0.0.1:9/repo.git"},
    }
    await client.create(fluxd.api, resource_of(GIT_REPOSITORY), unwatched)

    code, _, err = await fluxd_cli(
        kubeconfig, "reconcile", "source", "git", "idle", "-n", other_namespace, "--timeout", "1s"
    )

    assert code == 1
    assert err[-1] == (
        f"✗ timed out after 1s waiting for GitRepository {other_namespace}/idle reconciliation"
    )
    annotated = await client.get(fluxd.api, resource_of(GIT_REPOSITORY), other_namespace, "idle")
    assert "reconcile.fluxcd.io/requestedAt" in annotated["metadata"]["annotations"]


async def test_delete_asks_first_then_waits_until_the_finalizer_pruned_it(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    await applied_apps(fluxd, git_remote, git_http)

    code, _, err = await fluxd_cli(kubeconfig, "delete", "ks", "apps", "-n", ns, answer="n\n")
    assert code == 1
    assert err == ["Are you sure you want to delete this kustomization? [y/N] ", "✗ aborting"]
    assert await fluxd.get(KUSTOMIZATION, "apps")

    code, _, err = await fluxd_cli(kubeconfig, "delete", "ks", "apps", "-n", ns, "--silent")

    assert code == 0, err
    assert err == [
        f"► deleting kustomization apps in {ns} namespace",
        "◎ waiting for Kustomization apps to be deleted",
        "✔ kustomization deleted",
    ]
    # Gone when the command returns, and what it applied pruned by the daemon's finalizer.
    assert await live(fluxd, resource_of(KUSTOMIZATION), "apps") is None
    assert await live(fluxd, CONFIGMAPS, "settings") is None


async def test_reconcile_of_a_chart_with_source_and_of_a_stalled_one(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    chart = {"charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n"}
    git_remote.commit(chart)
    await setup_source(fluxd, git_remote, git_http)
    source = {"kind": "GitRepository", "name": "source"}
    await fluxd.create(
        HELM_CHART,
        "app",
        {
            "interval": "1h",
            "chart": "charts/app",
            "sourceRef": source,
            "reconcileStrategy": "Revision",
        },
    )
    await fluxd.wait_ready(HELM_CHART, "app")
    sha = git_remote.commit({"charts/app/values.yaml": "greeting: new\n"})

    code, _, err = await fluxd_cli(
        kubeconfig, "reconcile", "source", "chart", "app", "--with-source", "-n", ns
    )

    assert code == 0, err
    assert err[3] == f"✔ fetched revision master@sha1:{sha}"
    assert err[4:] == [
        f"► annotating HelmChart app in {ns} namespace",
        "✔ HelmChart annotated",
        "◎ waiting for HelmChart reconciliation",
        f"✔ fetched revision 0.1.0+{sha[:12]}",
    ]

    # A chart whose dependencies cannot be built stalls: reported at once, exit 1.
    deps = "charts/deps/Chart.yaml"
    git_remote.commit(
        {
            deps: "apiVersion: v2\nname: deps\nversion: 0.1.0\ndependencies:\n"
            "- name: redis\n  version: 17.x\n  repository: https://charts.example.com\n"
        }
    )
    await fluxd.create(
        HELM_CHART, "deps", {"interval": "1h", "chart": "charts/deps", "sourceRef": source}
    )
    code, _, err = await fluxd_cli(
        kubeconfig, "reconcile", "source", "chart", "deps", "--with-source", "-n", ns
    )
    assert code == 1
    assert err[-1].startswith("✗ HelmChart reconciliation failed: ")
    assert "'redis'" in err[-1]
