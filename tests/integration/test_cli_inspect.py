"""``fluxd events``, ``tree``, ``stats`` and ``export`` against the real control plane while
the daemon under test reconciles a GitRepository from a loopback git server and
Kustomizations that apply, fail, are suspended or apply another Kustomization.

Each command runs as a user runs it: a separate process (``python -m fluxd``) with the
session's kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sys
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient

from fluxd.api import GIT_REPOSITORY, HELM_RELEASE, HELM_REPOSITORY, KUSTOMIZATION
from fluxd.cli.stats import format_size
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.yaml import load_documents
from tests.chartservers import ChartRepository, package_chart
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.cli import REPO, run_fluxd
from tests.integration.conftest import WAIT_TIMEOUT, Fluxd, ready_reason
from tests.integration.kustomizations import applied, configmap, kustomization, setup_source

pytestmark = pytest.mark.integration


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.rstrip("\t").split("\t")]


def nested_kustomization(namespace: str, name: str, path: str) -> str:
    """A Kustomization manifest kept in git, applied by another Kustomization."""
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  interval: 1h\n  prune: true\n"
        f"  path: {path}\n  sourceRef:\n    kind: GitRepository\n    name: source\n"
    )


async def failed(fluxd: Fluxd, name: str) -> None:
    await fluxd.wait_for(
        KUSTOMIZATION,
        name,
        lambda o: (ready_reason(o) or ("",))[0] == "False",
        "Ready=False for its missing path",
    )


async def test_events_and_stats_show_what_flux_shows(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy", targetNamespace=ns))
    await fluxd.create(KUSTOMIZATION, "broken", kustomization("./missing", targetNamespace=ns))
    await fluxd.create(KUSTOMIZATION, "paused", kustomization("./deploy", suspend=True))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    await failed(fluxd, "broken")
    warning = await fluxd.wait_event("broken", lambda e: e["type"] == "Warning", "a Warning")

    # Every Flux object's Events, oldest first, in flux's columns.
    code, out, err = await run_fluxd(kubeconfig, "events", "-n", ns)
    assert code == 0, err
    lines = [cells(line) for line in out.splitlines()]
    assert lines[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    objects = {line[3] for line in lines[1:]}
    assert {"GitRepository/source", "Kustomization/apps", "Kustomization/broken"} <= objects
    broken = [line for line in lines[1:] if line[3] == "Kustomization/broken"]
    assert ["Warning", warning["reason"], warning["message"]] in [
        [line[1], line[2], line[4]] for line in broken
    ]
    assert "missing" in warning["message"]

    # --for one object: its Events and its source's, nothing of the other Kustomizations.
    code, out, err = await run_fluxd(
        kubeconfig, "events", "-n", ns, "--for", "Kustomization/broken"
    )
    assert code == 0, err
    objects = {cells(line)[3] for line in out.splitlines()[1:]}
    assert objects == {"Kustomization/broken", "GitRepository/source"}
    # --for a kind, --types Warning: only the failing Kustomization's warnings.
    code, out, err = await run_fluxd(
        kubeconfig, "events", "-n", ns, "--for", "kustomization", "--types", "warning"
    )
    assert code == 0, err
    rows = [cells(line) for line in out.splitlines()[1:]]
    assert rows
    assert {(row[1], row[3]) for row in rows} == {("Warning", "Kustomization/broken")}
    # Across namespaces: NAMESPACE first.
    code, out, err = await run_fluxd(kubeconfig, "events", "-A", "--for", "Kustomization")
    assert code == 0, err
    assert cells(out.splitlines()[0])[:2] == ["NAMESPACE", "LAST SEEN"]
    assert any(
        cells(line)[:1] + cells(line)[4:5] == [ns, "Kustomization/broken"]
        for line in out.splitlines()
    )

    # stats: the Kustomizations running, failing and suspended; the source's storage.
    code, out, err = await run_fluxd(kubeconfig, "stats", "-n", ns)
    assert code == 0, err
    table = {cells(line)[0]: cells(line)[1:] for line in out.splitlines()}
    assert table["RECONCILERS"] == ["RUNNING", "FAILING", "SUSPENDED", "STORAGE"]
    assert table["Kustomization"] == ["2", "1", "1", "-"]
    source = await fluxd.get(GIT_REPOSITORY, "source")
    size = int(source["status"]["artifact"].get("size") or 0)
    assert table["GitRepository"] == ["1", "0", "0", format_size(size)]
    assert table["HelmRelease"] == ["0", "0", "0", "-"]
    assert list(table)[1:] == [
        "GitRepository",
        "OCIRepository",
        "HelmRepository",
        "HelmChart",
        "Bucket",
        "Kustomization",
        "HelmRelease",
        "Alert",
        "Provider",
        "Receiver",
        "ImageUpdateAutomation",
        "ImagePolicy",
        "ImageRepository",
    ]


async def test_events_watch_streams_new_events(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxd",
        "events",
        "--watch",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfig),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            # What exists comes first, under the header ...
            assert cells((await process.stdout.readline()).decode())[0] == "LAST SEEN"
            assert cells((await process.stdout.readline()).decode())[3] == "GitRepository/source"
            # ... then what happens while it watches.
            await fluxd.create(KUSTOMIZATION, "later", kustomization("./missing"))
            while True:
                line = cells((await process.stdout.readline()).decode())
                if line[3] == "Kustomization/later" and line[1] == "Warning":
                    break
    finally:
        process.terminate()
        await process.wait()


async def test_tree_shows_nested_kustomizations(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {
            "deploy/settings.yaml": configmap(ns, "settings"),
            "deploy/inner.yaml": nested_kustomization(ns, "inner", "./inner"),
            "inner/values.yaml": configmap(ns, "inner-values"),
        }
    )
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "outer", kustomization("./deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "outer", lambda o: applied(o, sha), "applied")
    await fluxd.wait_for(KUSTOMIZATION, "inner", lambda o: applied(o, sha), "applied")

    code, out, err = await run_fluxd(kubeconfig, "tree", "kustomization", "outer", "-n", ns)
    assert code == 0, err
    assert out == (
        f"Kustomization/{ns}/outer\n"
        f"├── ConfigMap/{ns}/settings\n"
        f"└── Kustomization/{ns}/inner\n"
        f"    └── ConfigMap/{ns}/inner-values\n"
    )
    code, out, err = await run_fluxd(kubeconfig, "tree", "ks", "outer", "-n", ns, "--compact")
    assert code == 0, err
    assert out == f"Kustomization/{ns}/outer\n└── Kustomization/{ns}/inner\n"
    code, out, err = await run_fluxd(
        kubeconfig, "tree", "ks", "outer", "-n", ns, "--compact", "-o", "json"
    )
    assert code == 0, err
    inner = {"GroupKind": {"Group": "kustomize.toolkit.fluxcd.io", "Kind": "Kustomization"}}
    assert json.loads(out) == {
        "resource": {**inner, "Namespace": ns, "Name": "outer"},
        "resources": [{"resource": {**inner, "Namespace": ns, "Name": "inner"}}],
    }
    code, out, err = await run_fluxd(kubeconfig, "tree", "ks", "outer", "-n", ns, "-o", "yaml")
    assert code == 0, err
    assert out.startswith("resource:\n  GroupKind:\n    Group: kustomize.toolkit.fluxcd.io\n")
    assert f"      Name: inner-values\n      Namespace: {ns}\n" in out


HELM_RELEASE_MANIFEST = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: {namespace}
spec:
  interval: 1h
  chart:
    spec:
      chart: demo
      sourceRef:
        kind: HelmRepository
        name: charts
"""
CHART_TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
)


async def test_tree_expands_a_helmrelease_into_its_release_objects(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    chart_repo: ChartRepository,
    kubeconfig: Path,
) -> None:
    ns = fluxd.namespace
    chart_repo.publish(
        package_chart("demo", "1.0.0", {"templates/cm.yaml": CHART_TEMPLATE}), "demo", "1.0.0"
    )
    await fluxd.create(HELM_REPOSITORY, "charts", {"interval": "1h", "url": chart_repo.url})
    sha = git_remote.commit({"deploy/release.yaml": HELM_RELEASE_MANIFEST.format(namespace=ns)})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy"))
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")
    await fluxd.wait_ready(HELM_RELEASE, "web")

    code, out, err = await run_fluxd(kubeconfig, "tree", "ks", "apps", "-n", ns)
    assert code == 0, err
    # The chart's ConfigMap names no namespace: it is shown in the release's.
    assert out == (
        f"Kustomization/{ns}/apps\n└── HelmRelease/{ns}/web\n    └── ConfigMap/{ns}/web-settings\n"
    )


async def test_export_round_trips_through_server_side_apply(
    fluxd: Fluxd,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    kubeconfig: Path,
    api_client: ApiClient,
    other_namespace: str,
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit({"deploy/settings.yaml": configmap(ns, "settings")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./deploy", targetNamespace=ns))
    await fluxd.patch(KUSTOMIZATION, "apps", {"metadata": {"labels": {"team": "web"}}})
    await fluxd.wait_for(KUSTOMIZATION, "apps", lambda o: applied(o, sha), "applied")

    code, git_yaml, err = await run_fluxd(kubeconfig, "export", "source", "git", "source", "-n", ns)
    assert code == 0, err
    code, ks_yaml, err = await run_fluxd(kubeconfig, "export", "kustomization", "--all", "-n", ns)
    assert code == 0, err
    assert git_yaml.startswith(
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
    )
    exported = load_documents((git_yaml + ks_yaml).encode(), source="export")
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in exported] == [
        ("GitRepository", "source"),
        ("Kustomization", "apps"),
    ]
    for doc in exported:
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert set(doc["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert exported[1]["metadata"]["labels"] == {"team": "web"}

    # Applied again in place and into another namespace: accepted, the same spec.
    for doc in exported:
        kind = GIT_REPOSITORY if doc["kind"] == "GitRepository" else KUSTOMIZATION
        live = await fluxd.get(kind, doc["metadata"]["name"])
        for namespace in (ns, other_namespace):
            copy = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
            written = await client.patch(
                api_client,
                resource_of(kind),
                namespace,
                doc["metadata"]["name"],
                copy,
                patch_type="apply",
                field_manager="kubectl",
            )
            assert written["spec"] == live["spec"] == doc["spec"]
    for kind, name in ((KUSTOMIZATION, "apps"), (GIT_REPOSITORY, "source")):
        await client.delete(api_client, resource_of(kind), other_namespace, name)


async def test_export_with_credentials_follows_each_source_with_its_secret(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    await fluxd.secret("git-auth", {"username": "git", "password": "s3cret"})
    dead = "http://127.0.0.1:9/private.git"
    spec = {"interval": "1h", "url": dead, "secretRef": {"name": "git-auth"}}
    await fluxd.create(GIT_REPOSITORY, "private", spec)
    await fluxd.create(GIT_REPOSITORY, "public", {"interval": "1h", "url": dead})

    code, out, err = await run_fluxd(
        kubeconfig, "export", "source", "git", "--all", "-n", ns, "--with-credentials"
    )
    assert code == 0, err
    documents = load_documents(out.encode(), source="export")
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in documents] == [
        ("GitRepository", "private"),
        ("Secret", "git-auth"),
        ("GitRepository", "public"),
    ]
    secret = documents[1]
    assert secret["metadata"] == {"name": "git-auth", "namespace": ns}
    assert base64.b64decode(secret["data"]["password"]) == b"s3cret"
    assert secret["type"] == "Opaque"

    # Without the flag no Secret is printed; a secretRef to nothing is an error.
    code, out, _ = await run_fluxd(kubeconfig, "export", "source", "git", "private", "-n", ns)
    assert "kind: Secret" not in out
    await fluxd.patch(GIT_REPOSITORY, "public", {"spec": {"secretRef": {"name": "absent"}}})
    code, out, err = await run_fluxd(
        kubeconfig, "export", "source", "git", "public", "-n", ns, "--with-credentials"
    )
    assert (code, out) == (1, "")
    assert err == f"✗ failed to retrieve secret absent: not found in {ns}\n"


async def test_missing_objects_and_no_cluster_exit_1_naming_the_problem(
    fluxd: Fluxd, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = fluxd.namespace
    for args, message in (
        (("tree", "kustomization", "nope"), f"✗ Kustomization '{ns}/nope' not found"),
        (("export", "source", "git", "nope"), f"✗ GitRepository '{ns}/nope' not found"),
        (("export", "hr", "--all"), f"✗ no HelmRelease objects found in {ns} namespace"),
        (("events", "--for", "Kustomization/nope"), f"✗ Kustomization '{ns}/nope' not found"),
    ):
        code, out, err = await run_fluxd(kubeconfig, *args, "-n", ns)
        assert (code, out) == (1, ""), (args, err)
        assert message in err, (args, err)
    code, out, err = await run_fluxd(kubeconfig, "events", "--for", "Widget/x")
    assert (code, out) == (1, "")
    assert "'Widget' is not a recognized Flux kind" in err
    code, out, err = await run_fluxd(kubeconfig, "events", "-n", ns)
    assert (code, out) == (0, "")
    assert f"✗ No events found in {ns} namespace." in err

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    for command in (("events",), ("stats",), ("tree", "ks", "x"), ("export", "ks", "x")):
        code, out, err = await run_fluxd(unreachable, *command)
        assert (code, out) == (1, ""), command
        assert "cannot reach the Kubernetes API server" in err, (command, err)
        assert f"127.0.0.1:{port}" in err
