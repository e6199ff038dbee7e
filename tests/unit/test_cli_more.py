"""What ``fluxd check``, ``logs``, ``trace`` and ``create`` decide and print, from object
dicts and log lines alone: the verdicts, the filtered lines, the report and the YAML a
``flux`` user expects; and that fluxd's own log lines carry the keys ``flux logs`` reads."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.cli.check import crd_problem, deployment_problem, kubernetes_version
from fluxd.cli.create import (
    bucket_spec,
    depends_on,
    git_repository_spec,
    helm_repository_spec,
    helmrelease_spec,
    kustomization_spec,
    manifest,
    oci_repository_spec,
    source_reference,
)
from fluxd.cli.logs import LogFilter, log_query, pick_pods, render_line
from fluxd.cli.main import main
from fluxd.cli.trace import applier_block, applier_of, render_trace, source_block
from fluxd.runtime import logs
from fluxd.yaml import load_documents

# ----------------------------------------------------------------------------- check


def test_kubernetes_version_reads_git_version_and_refuses_a_dev_build() -> None:
    assert kubernetes_version({"gitVersion": "v1.34.2"}) == (1, 34, 2)
    assert kubernetes_version({"gitVersion": "v1.33.0-rc.1+abc"}) == (1, 33, 0)
    with pytest.raises(ValueError, match="can't be determined from 'master'"):
        kubernetes_version({"gitVersion": "master"})


def crd(*, versions: tuple[str, ...], established: bool = True) -> dict[str, Any]:
    return {
        "spec": {"versions": [{"name": v, "served": True} for v in versions]},
        "status": {
            "conditions": [{"type": "Established", "status": "True" if established else "False"}]
        },
    }


def test_crd_problem_names_what_is_missing() -> None:
    assert crd_problem(GIT_REPOSITORY, crd(versions=("v1beta2", "v1"))) is None
    assert "not installed" in str(crd_problem(GIT_REPOSITORY, None))
    assert "not Established" in str(
        crd_problem(GIT_REPOSITORY, crd(versions=("v1beta2", "v1"), established=False))
    )
    assert "does not serve v1beta2" in str(crd_problem(GIT_REPOSITORY, crd(versions=("v1",))))


def deployment(*, ready: int, updated: int, observed: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
        },
    }


def test_deployment_problem_counts_ready_and_updated_replicas() -> None:
    assert deployment_problem(deployment(ready=1, updated=1)) is None
    assert deployment_problem(deployment(ready=0, updated=1)) == "0/1 replicas ready, 1/1 updated"
    assert "not rolled out" in str(deployment_problem(deployment(ready=1, updated=1, observed=1)))


# ----------------------------------------------------------------------------- logs

RECONCILE = {
    "ts": "2026-01-02T12:00:00Z",
    "level": "info",
    "msg": "stored artifact",
    "kind": "GitRepository",
    "controllerKind": "GitRepository",
    "name": "podinfo",
    "namespace": "flux-system",
}
FAILURE = {
    **RECONCILE,
    "level": "error",
    "msg": "reconciliation failed",
    "error": "auth failed",
    "kind": "Kustomization",
    "controllerKind": "Kustomization",
    "name": "apps",
    "namespace": "apps",
}
DAEMON = {"ts": "2026-01-02T11:59:00Z", "level": "info", "msg": "leader elected"}


def test_render_line_prints_as_flux_logs_does() -> None:
    everything = LogFilter()
    assert (
        render_line(json.dumps(RECONCILE), everything)
        == "2026-01-02T12:00:00Z info GitRepository/podinfo.flux-system - stored artifact"
    )
    assert (
        render_line(json.dumps(FAILURE), everything)
        == "2026-01-02T12:00:00Z error Kustomization/apps.apps - reconciliation failed auth failed"
    )
    assert (
        render_line(json.dumps(DAEMON), everything) == "2026-01-02T11:59:00Z info  - leader elected"
    )


def test_render_line_skips_what_is_not_a_json_entry() -> None:
    for line in ("Traceback (most recent call last):", "{not json", "[1, 2]", ""):
        assert render_line(line, LogFilter()) is None


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        (LogFilter(level="error"), ["apps"]),
        (LogFilter(kind="gitrepository"), ["podinfo"]),
        (LogFilter(name="APPS"), ["apps"]),
        (LogFilter(namespace="flux-system"), ["podinfo"]),
        (LogFilter(namespace="apps", level="info"), []),
    ],
)
def test_filters_match_level_kind_name_and_namespace(wanted: LogFilter, kept: list[str]) -> None:
    shown = [
        entry["name"] for entry in (RECONCILE, FAILURE) if render_line(json.dumps(entry), wanted)
    ]
    assert shown == kept


def test_kind_filter_reads_controller_kind_when_kind_is_absent() -> None:
    entry = {**RECONCILE, "kind": None}
    assert render_line(json.dumps(entry), LogFilter(kind="GitRepository")) is not None


def test_pods_running_and_newest_first_and_log_query() -> None:
    pods = [
        {
            "metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"},
        },
        {
            "metadata": {"name": "pending", "creationTimestamp": "2026-01-03T00:00:00Z"},
            "status": {"phase": "Pending"},
        },
        {
            "metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z"},
            "status": {"phase": "Running"},
        },
    ]
    assert pick_pods(pods) == ["new", "old", "pending"]
    assert log_query(follow=True, tail=10, since_seconds=299.2, containers=1) == {
        "follow": "true",
        "tailLines": "10",
        "sinceSeconds": "300",
    }
    assert log_query(follow=False, tail=None, since_seconds=None, containers=2) == {
        "container": "manager"
    }


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.configure("info")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=buffer))
    yield buffer
    structlog.reset_defaults()


def test_fluxd_log_lines_carry_the_keys_flux_logs_filters_on(captured_log: io.StringIO) -> None:
    log = structlog.get_logger("test").bind(kind="Kustomization", namespace="apps", name="web")
    log.error("reconciliation failed", error="build failed")
    entry = json.loads(captured_log.getvalue())
    assert {
        key: entry[key]
        for key in ("level", "msg", "error", "kind", "controllerKind", "name", "namespace")
    } == {
        "level": "error",
        "msg": "reconciliation failed",
        "error": "build failed",
        "kind": "Kustomization",
        "controllerKind": "Kustomization",
        "name": "web",
        "namespace": "apps",
    }
    assert entry["ts"]
    shown = render_line(
        captured_log.getvalue().strip(), LogFilter(kind="kustomization", namespace="apps")
    )
    assert shown is not None
    assert shown.endswith("Kustomization/web.apps - reconciliation failed build failed")


def test_bad_since_and_tail_exit_1_before_touching_a_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["logs", "--since", "five minutes", "--kubeconfig", "/nonexistent"]) == 1
    assert "--since: invalid duration 'five minutes'" in capsys.readouterr().err
    assert main(["logs", "--tail", "-3", "--kubeconfig", "/nonexistent"]) == 1
    assert "--tail must not be negative" in capsys.readouterr().err


# ----------------------------------------------------------------------------- trace

CONFIGMAP = {
    "kind": "ConfigMap",
    "metadata": {
        "name": "settings",
        "namespace": "apps",
        "labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
    },
}
KS = {
    "kind": "Kustomization",
    "metadata": {"name": "apps", "namespace": "flux-system"},
    "spec": {"path": "./deploy", "targetNamespace": "apps"},
    "status": {
        "lastAppliedRevision": "main@sha1:abc",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "T1",
                "message": "Applied revision: main@sha1:abc",
            }
        ],
    },
}
REPO = {
    "kind": "GitRepository",
    "metadata": {"name": "repo", "namespace": "flux-system"},
    "spec": {"url": "https://example.com/repo", "ref": {"branch": "main"}},
    "status": {
        "artifact": {"revision": "main@sha1:abc"},
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": "T2",
                "message": "auth failed",
            }
        ],
    },
}


def test_applier_of_reads_kustomize_and_helm_labels() -> None:
    assert applier_of(CONFIGMAP) == ("Kustomization", "flux-system", "apps")
    helm = {
        "metadata": {
            "labels": {
                "helm.toolkit.fluxcd.io/name": "web",
                "helm.toolkit.fluxcd.io/namespace": "apps",
            }
        }
    }
    assert applier_of(helm) == ("HelmRelease", "apps", "web")
    assert applier_of({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "x"}}}) is None


def test_render_trace_lays_out_object_applier_and_source() -> None:
    report = render_trace(CONFIGMAP, [applier_block(KS), source_block(REPO)])
    assert report == (
        "\n"
        "Object:          ConfigMap/settings\n"
        "Namespace:       apps\n"
        "Status:          Managed by Flux\n"
        "---\n"
        "Kustomization:   apps\n"
        "Namespace:       flux-system\n"
        "Target:          apps\n"
        "Path:            ./deploy\n"
        "Revision:        main@sha1:abc\n"
        "Status:          Last reconciled at T1\n"
        "Message:         Applied revision: main@sha1:abc\n"
        "---\n"
        "GitRepository:   repo\n"
        "Namespace:       flux-system\n"
        "URL:             https://example.com/repo\n"
        "Branch:          main\n"
        "Revision:        main@sha1:abc\n"
        "Status:          Last reconciliation failed at T2\n"
        "Message:         auth failed\n"
    )


def test_source_without_status_is_unknown() -> None:
    chart = {
        "kind": "HelmChart",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"chart": "podinfo", "version": "6.x"},
    }
    assert source_block(chart).lines == [
        ("HelmChart", "c"),
        ("Namespace", "n"),
        ("Chart", "podinfo"),
        ("Version", "6.x"),
        ("Status", "Unknown"),
    ]


# ----------------------------------------------------------------------------- create


def test_git_repository_spec_as_flux_builds_it() -> None:
    spec = git_repository_spec(url="https://h/r", interval="1m", branch="main", secret_ref="auth")
    assert spec == {
        "interval": "1m0s",
        "ref": {"branch": "main"},
        "url": "https://h/r",
        "secretRef": {"name": "auth"},
    }
    assert git_repository_spec(url="ssh://git@h/r", interval="90s", tag="v1", semver=">=1")[
        "ref"
    ] == {"semver": ">=1"}
    with pytest.raises(ValueError, match="git URL scheme 'ftp' not supported"):
        git_repository_spec(url="ftp://h/r", interval="1m", branch="main")
    with pytest.raises(ValueError, match="a Git ref is required"):
        git_repository_spec(url="https://h/r", interval="1m")
    with pytest.raises(ValueError, match="invalid duration"):
        git_repository_spec(url="https://h/r", interval="soon", branch="main")


def test_helm_oci_and_bucket_specs() -> None:
    assert helm_repository_spec(url="oci://ghcr.io/charts", interval="10m") == {
        "interval": "10m0s",
        "url": "oci://ghcr.io/charts",
        "type": "oci",
    }
    with pytest.raises(ValueError, match="scheme 'git' not supported"):
        helm_repository_spec(url="git://x", interval="1m")
    assert oci_repository_spec(url="oci://r/a", interval="1m", tag="latest")["ref"] == {
        "tag": "latest"
    }
    with pytest.raises(ValueError, match="must start with oci://"):
        oci_repository_spec(url="https://r/a", interval="1m", tag="latest")
    with pytest.raises(ValueError, match="one of --tag, --tag-semver or --digest"):
        oci_repository_spec(url="oci://r/a", interval="1m")
    assert bucket_spec(bucket_name="b", endpoint="s3:9000", interval="1m", insecure=True) == {
        "bucketName": "b",
        "endpoint": "s3:9000",
        "interval": "1m0s",
        "provider": "generic",
        "insecure": True,
    }
    with pytest.raises(ValueError, match="--endpoint"):
        bucket_spec(bucket_name="b", endpoint="", interval="1m")


def test_source_references_and_dependencies() -> None:
    kinds = ("GitRepository", "OCIRepository")
    assert source_reference("repo", default_kind="GitRepository", kinds=kinds) == {
        "kind": "GitRepository",
        "name": "repo",
    }
    assert source_reference("OCIRepository/app.infra", default_kind=None, kinds=kinds) == {
        "kind": "OCIRepository",
        "name": "app",
        "namespace": "infra",
    }
    with pytest.raises(ValueError, match="source kind '' is not supported"):
        source_reference("repo", default_kind=None, kinds=kinds)
    with pytest.raises(ValueError, match="has no name"):
        source_reference("GitRepository/", default_kind=None, kinds=kinds)
    assert depends_on(["db,infra/cache", "web"]) == [
        {"name": "db"},
        {"name": "cache", "namespace": "infra"},
        {"name": "web"},
    ]
    with pytest.raises(ValueError, match="--depends-on 'infra/'"):
        depends_on(["infra/"])


def test_kustomization_and_helmrelease_specs_with_flux_defaults() -> None:
    assert kustomization_spec(source="repo", interval="5m") == {
        "interval": "5m0s",
        "path": "./",
        "prune": False,
        "sourceRef": {"kind": "GitRepository", "name": "repo"},
    }
    spec = helmrelease_spec(
        source="HelmRepository/charts", chart="podinfo", interval="1m", values={"replicas": 2}
    )
    assert spec == {
        "chart": {
            "spec": {
                "chart": "podinfo",
                "reconcileStrategy": "ChartVersion",
                "sourceRef": {"kind": "HelmRepository", "name": "charts"},
            }
        },
        "interval": "1m0s",
        "values": {"replicas": 2},
    }
    with pytest.raises(ValueError, match="source kind 'OCIRepository' is not supported"):
        helmrelease_spec(source="OCIRepository/x", chart="c", interval="1m")
    with pytest.raises(ValueError, match="--chart"):
        helmrelease_spec(source="HelmRepository/x", chart="", interval="1m")


def test_manifest_has_flux_shape_and_passes_fluxd_schema() -> None:
    obj = manifest(
        "Kustomization",
        "apps",
        "flux-system",
        kustomization_spec(source="repo", interval="1m"),
        {"team": "a"},
    )
    assert list(obj) == ["apiVersion", "kind", "metadata", "spec"]
    assert obj["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert obj["metadata"] == {"name": "apps", "namespace": "flux-system", "labels": {"team": "a"}}
    assert KUSTOMIZATION.parse_spec(obj).path == "./"


def test_export_prints_yaml_and_bad_flags_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("replicas: 3\n")
    assert (
        main(
            [
                "create",
                "hr",
                "web",
                "--source",
                "HelmRepository/charts",
                "--chart",
                "podinfo",
                "--values",
                str(values),
                "--export",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("---\n")
    (document,) = load_documents(out.encode(), source="export")
    assert document["spec"]["values"] == {"replicas": 3}

    assert (
        main(
            [
                "create",
                "source",
                "git",
                "x",
                "--url",
                "https://h/r",
                "--branch",
                "main",
                "--export",
                "--label",
                "nokey",
            ]
        )
        == 1
    )
    assert "invalid label format 'nokey'" in capsys.readouterr().err
    assert (
        main(
            [
                "create",
                "hr",
                "web",
                "--source",
                "HelmRepository/c",
                "--chart",
                "p",
                "--values",
                str(tmp_path / "missing.yaml"),
                "--export",
            ]
        )
        == 1
    )
    assert "reading values from" in capsys.readouterr().err
