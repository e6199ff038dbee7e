"""``fluxd check``, ``logs``, ``trace`` and ``create`` against the real control plane,
with the daemon under test reconciling what ``create`` writes from a loopback git server.

Each command runs as a user runs it: a separate process (``python -m fluxd``) with the
session's kubeconfig, its progress lines on stderr as ``flux`` prints them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fluxd.api import GIT_REPOSITORY, KINDS, KUSTOMIZATION
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import Resource
from fluxd.yaml import load_documents
from tests.chartservers import ChartRepository, package_chart
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd
from tests.integration.kustomizations import (
    CONFIGMAPS,
    DEPLOYMENTS,
    applied,
    configmap,
    kustomization,
    live,
    setup_source,
    until,
)

pytestmark = pytest.mark.integration

PODS = Resource("", "v1", "pods")


async def fluxd_cli(kubeconfig: Path, *args: str) -> tuple[int, str, list[str]]:
    """:func:`run_fluxd` with the stderr lines, where ``flux`` prints its progress."""
    code, out, err = await run_fluxd(kubeconfig, *args)
    return code, out, err.splitlines()


def fluxd_deployment(namespace: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "fluxd"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fluxd", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "fluxd", "image": "ghcr.io/fluxd/fluxd:test"}]},
            },
        },
    }


async def test_check_pre_passes_on_the_test_cluster(kubeconfig: Path) -> None:
    code, out, err = await fluxd_cli(kubeconfig, "check", "--pre")
    assert (code, out) == (0, ""), err
    assert err[0] == "► checking prerequisites"
    assert re.fullmatch(r"✔ Kubernetes 1\.\d+\.\d+ >=1\.33\.0-0", err[1]), err
    assert err[2:] == ["✔ prerequisites checks passed"]


async def test_check_needs_a_ready_fluxd_deployment_and_every_crd(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    crd_lines = [f"✔ {kind.crd_name}/{kind.storage_version}" for kind in KINDS]

    # No fluxd Deployment in the namespace: that check fails by name, the CRDs pass.
    code, out, err = await fluxd_cli(kubeconfig, "check", "-n", ns)
    assert (code, out) == (1, ""), err
    assert (
        f"✗ fluxd: no Deployment named 'fluxd' found in the '{ns}' namespace: "
        "install fluxd (manifests/install.yaml) or pass -n"
    ) in err
    assert [line for line in err if line.startswith("✔ ") and "/" in line] == crd_lines
    assert err[-1] == "✗ check failed"

    # Once a fluxd Deployment has rolled out (the simulated node runs its pod), all pass.
    await client.create(fluxd.api, DEPLOYMENTS, fluxd_deployment(ns))

    async def rolled_out() -> bool:
        found = await live(fluxd, DEPLOYMENTS, "fluxd")
        return bool(found and (found.get("status") or {}).get("readyReplicas") == 1)

    await until("the fluxd Deployment's ready replica", rolled_out)
    code, out, err = await fluxd_cli(kubeconfig, "check", "-n", ns)
    assert code == 0, err
    assert err[:5] == [
        "► checking prerequisites",
        err[1],
        "► checking controllers",
        "✔ fluxd: deployment ready",
        "► ghcr.io/fluxd/fluxd:test",
    ]
    assert err[5:] == ["► checking crds", *crd_lines, "✔ all checks passed"]

    # logs finds the fluxd pod by its label; this cluster has no kubelet to serve its
    # log, which the command says, naming the pod, and exits 1.
    page = await client.list_page(
        fluxd.api, PODS, ns, label_selector="app.kubernetes.io/name=fluxd"
    )
    (pod,) = [item["metadata"]["name"] for item in page["items"]]
    code, out, err = await fluxd_cli(kubeconfig, "logs", "--flux-namespace", ns, "--tail", "5")
    assert (code, out) == (1, ""), err
    assert err[0].startswith(f"✗ cannot read the logs of fluxd pod {ns}/{pod}: "), err


async def test_logs_without_a_fluxd_pod_says_so(fluxd: Fluxd, kubeconfig: Path) -> None:
    code, out, err = await fluxd_cli(kubeconfig, "logs", "--flux-namespace", fluxd.namespace)
    assert (code, out) == (1, "")
    assert err == [
        f"✗ no fluxd pods found in namespace '{fluxd.namespace}' with the label "
        "app.kubernetes.io/name=fluxd: is fluxd installed there? (pass --flux-namespace)"
    ]


async def test_trace_follows_a_configmap_to_its_kustomization_and_git_source(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    web = {**fluxd_deployment(ns), "metadata": {"name": "web", "namespace": ns}}
    sha = git_remote.commit(
        {
            "deploy/settings.yaml": configmap(ns, "settings"),
            "deploy/web.yaml": json.dumps(web),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy", targetNamespace=ns))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    revision = f"master@sha1:{sha}"

    code, out, err = await fluxd_cli(
        kubeconfig, "trace", "settings", "--kind", "ConfigMap", "--api-version", "v1", "-n", ns
    )
    assert code == 0, err
    blocks = [block.strip("\n").splitlines() for block in out.split("---\n")]
    assert blocks[0] == [
        "Object:          ConfigMap/settings",
        f"Namespace:       {ns}",
        "Status:          Managed by Flux",
    ]
    assert blocks[1][:5] == [
        "Kustomization:   apps",
        f"Namespace:       {ns}",
        f"Target:          {ns}",
        "Path:            ./deploy",
        f"Revision:        {revision}",
    ]
    assert blocks[1][5].startswith("Status:          Last reconciled at ")
    assert blocks[1][6] == f"Message:         Applied revision: {revision}"
    assert blocks[2][:4] == [
        "GitRepository:   source",
        f"Namespace:       {ns}",
        f"URL:             {git_http.url(git_remote)}",
        f"Revision:        {revision}",
    ]

    # The web Deployment's pod carries no Flux labels: it is traced through its owners,
    # its ReplicaSet and then the Deployment the Kustomization applied.
    pods: list[str] = []

    async def pod_created() -> bool:
        page = await client.list_page(
            fluxd.api, PODS, ns, label_selector="app.kubernetes.io/name=fluxd"
        )
        pods[:] = [item["metadata"]["name"] for item in page["items"]]
        return bool(pods)

    await until("the web Deployment's pod", pod_created)
    code, out, err = await fluxd_cli(
        kubeconfig, "trace", pods[0], "--kind", "Pod", "--api-version", "v1", "-n", ns
    )
    assert code == 0, err
    assert out.splitlines()[1] == f"Object:          Pod/{pods[0]}"
    assert "Kustomization:   apps" in out.splitlines()

    # An object no Flux object applied, and one that does not exist: exit 1, said why.
    await client.create(
        fluxd.api,
        CONFIGMAPS,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine", "namespace": ns}},
    )
    code, out, err = await fluxd_cli(
        kubeconfig, "trace", "mine", "--kind", "ConfigMap", "--api-version", "v1", "-n", ns
    )
    assert (code, out) == (1, "")
    assert err == [
        f"✗ failed to trace ConfigMap/mine in namespace {ns}: object not managed by Flux"
    ]
    code, out, err = await fluxd_cli(
        kubeconfig, "trace", "gone", "--kind", "ConfigMap", "--api-version", "v1", "-n", ns
    )
    assert (code, out) == (1, "")
    assert err == [f"✗ failed to find object: ConfigMap 'gone' not found in namespace {ns}"]
    code, out, err = await fluxd_cli(
        kubeconfig, "trace", "x", "--kind", "Widget", "--api-version", "v1", "-n", ns
    )
    assert code == 1
    assert 'no matches for kind "Widget" in version "v1"' in err[0]


async def test_create_export_prints_flux_shaped_yaml_and_applies_nothing(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    code, out, err = await fluxd_cli(
        kubeconfig,
        "create",
        "source",
        "git",
        "podinfo",
        "--url",
        "https://github.com/stefanprodan/podinfo",
        "--branch",
        "master",
        "-n",
        ns,
        "--export",
    )
    assert (code, err) == (0, [])
    assert out == (
        "---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\n"
        "kind: GitRepository\n"
        "metadata:\n"
        "  name: podinfo\n"
        f"  namespace: {ns}\n"
        "spec:\n"
        "  interval: 1m0s\n"
        "  ref:\n"
        "    branch: master\n"
        "  url: https://github.com/stefanprodan/podinfo\n"
    )
    code, out, err = await fluxd_cli(
        kubeconfig,
        "create",
        "ks",
        "podinfo",
        "--source",
        "GitRepository/podinfo",
        "--path",
        "./kustomize",
        "--prune",
        "--interval",
        "60m",
        "--depends-on",
        "infra",
        "-n",
        ns,
        "--export",
    )
    assert code == 0, err
    (document,) = load_documents(out.encode(), source="export")
    assert document == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "dependsOn": [{"name": "infra"}],
            "interval": "1h0m0s",
            "path": "./kustomize",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "podinfo"},
        },
    }
    # The API server accepts both as they are (a dry run), and neither was applied.
    await client.request(
        fluxd.api,
        "POST",
        resource_of(KUSTOMIZATION).path(ns),
        query={"dryRun": "All"},
        body=document,
    )
    for kind in (GIT_REPOSITORY, KUSTOMIZATION):
        assert (
            await client.get(fluxd.api, resource_of(kind), ns, "podinfo", missing_ok=True) is None
        )


async def test_create_source_and_kustomization_wait_until_ready(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    revision = f"master@sha1:{sha}"

    code, out, err = await fluxd_cli(
        kubeconfig, "create", "source", "git", "source", "--url", git_http.url(git_remote),
        "--branch", "master", "-n", ns,
    )  # fmt: skip
    assert (code, out) == (0, ""), err
    assert err == [
        "✚ generating GitRepository source",
        "► applying GitRepository source",
        "✔ GitRepository source created",
        "◎ waiting for GitRepository source reconciliation",
        "✔ GitRepository source reconciliation completed",
        f"✔ fetched revision: {revision}",
    ]

    code, out, err = await fluxd_cli(
        kubeconfig, "create", "kustomization", "apps", "--source", "source", "--path", "./deploy",
        "--prune", "--target-namespace", ns, "-n", ns,
    )  # fmt: skip
    assert (code, out) == (0, ""), err
    assert err == [
        "✚ generating Kustomization",
        "► applying Kustomization",
        "✔ Kustomization created",
        "◎ waiting for Kustomization reconciliation",
        "✔ Kustomization apps is ready",
        f"✔ applied revision {revision}",
    ]
    assert await live(fluxd, CONFIGMAPS, "settings") is not None
    spec = (await fluxd.get(KUSTOMIZATION, "apps"))["spec"]
    assert (spec["prune"], spec["interval"], spec["targetNamespace"]) == (True, "1m0s", ns)

    # Running it again updates the object in place; a path that does not exist never
    # gets Ready, which --timeout ends with the object's own message.
    code, out, err = await fluxd_cli(
        kubeconfig, "create", "ks", "apps", "--source", "source", "--path", "./missing",
        "-n", ns, "--timeout", "3s",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert "✔ Kustomization updated" in err
    assert err[-1].startswith("✗ timeout waiting for Kustomization reconciliation: last status: ")
    assert "missing" in err[-1]
    # Bad flags: refused before anything is applied.
    code, out, err = await fluxd_cli(
        kubeconfig, "create", "ks", "other", "--source", "Nope/x", "-n", ns
    )
    assert (code, out) == (1, "")
    assert err[0].startswith("✗ source kind 'Nope' is not supported")
    assert (
        await client.get(fluxd.api, resource_of(KUSTOMIZATION), ns, "other", missing_ok=True)
        is None
    )


CHART_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
"""


async def test_create_helm_source_and_release_then_trace_what_it_installed(
    fluxd: Fluxd, chart_repo: ChartRepository, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = fluxd.namespace
    files = {"templates/cm.yaml": CHART_TEMPLATE, "values.yaml": "greeting: hello\n"}
    chart_repo.publish(package_chart("demo", "1.2.0", files), "demo", "1.2.0")
    values = tmp_path / "values.yaml"
    values.write_text("greeting: from the command line\n")

    code, out, err = await fluxd_cli(
        kubeconfig, "create", "source", "helm", "charts", "--url", chart_repo.url, "-n", ns
    )
    assert (code, out) == (0, ""), err
    assert err[:3] == [
        "✚ generating HelmRepository source",
        "► applying HelmRepository source",
        "✔ HelmRepository source created",
    ]
    assert err[4] == "✔ HelmRepository source reconciliation completed"
    code, out, err = await fluxd_cli(
        kubeconfig, "create", "hr", "demo", "--source", "HelmRepository/charts", "--chart",
        "demo", "--chart-version", "1.x", "--values", str(values), "-n", ns,
    )  # fmt: skip
    assert (code, out) == (0, ""), err
    assert err == [
        "✚ generating HelmRelease",
        "► applying HelmRelease",
        "✔ HelmRelease created",
        "◎ waiting for HelmRelease reconciliation",
        "✔ HelmRelease demo is ready",
        "✔ applied revision 1.2.0",
    ]
    installed = await live(fluxd, CONFIGMAPS, "demo-settings")
    assert installed is not None
    assert installed["data"] == {"greeting": "from the command line"}

    code, out, err = await fluxd_cli(
        kubeconfig, "trace", "demo-settings", "--kind", "ConfigMap", "--api-version", "v1",
        "-n", ns,
    )  # fmt: skip
    assert code == 0, err
    blocks = [block.strip("\n").splitlines() for block in out.split("---\n")]
    assert blocks[0][0] == "Object:         ConfigMap/demo-settings"
    assert blocks[1][:3] == [
        "HelmRelease:    demo",
        f"Namespace:      {ns}",
        "Revision:       1.2.0",
    ]
    assert blocks[2][:5] == [
        f"HelmChart:      {ns}-demo",
        f"Namespace:      {ns}",
        "Chart:          demo",
        "Version:        1.x",
        "Revision:       1.2.0",
    ]
    assert blocks[3][:3] == [
        "HelmRepository: charts",
        f"Namespace:      {ns}",
        f"URL:            {chart_repo.url}",
    ]
