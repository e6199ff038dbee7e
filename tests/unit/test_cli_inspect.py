"""What ``fluxd events``, ``tree``, ``stats`` and ``export`` print, from object dicts alone:
the same cells, sizes, branches and YAML a user reads from ``flux``."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fluxd.apply import ObjectRef
from fluxd.cli.events import event_row, event_time, human_duration, last_seen, referenced
from fluxd.cli.export import clean_object, render_exports
from fluxd.cli.stats import format_size, kind_row
from fluxd.cli.tree import Node, release_manifest, render_tree, tree_document
from fluxd.yaml import load_documents

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (180, "3m"),
        (45 * 60, "45m"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (40 * 86400, "40d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_last_seen_counts_repeats_over_the_first_sighting() -> None:
    once = {"firstTimestamp": ago(30), "lastTimestamp": ago(30), "count": 1}
    assert last_seen(once, NOW) == "30s"
    repeated = {"firstTimestamp": ago(600), "lastTimestamp": ago(5), "count": 4}
    assert last_seen(repeated, NOW) == "5s (x4 over 10m)"
    series = {
        "eventTime": "2026-01-02T11:59:00.000000Z",
        "series": {"lastObservedTime": "2026-01-02T11:59:50.000000Z", "count": 2},
    }
    assert last_seen(series, NOW) == "10s (x2 over 60s)"
    assert last_seen({}, NOW) == "<unknown>"


def test_event_rows_name_the_object_and_sort_by_last_sighting() -> None:
    older = {
        "metadata": {"namespace": "apps"},
        "involvedObject": {"kind": "Kustomization", "name": "web"},
        "type": "Warning",
        "reason": "BuildFailed",
        "message": "kustomize build failed",
        "firstTimestamp": ago(300),
        "lastTimestamp": ago(300),
        "count": 1,
    }
    newer = {**older, "lastTimestamp": ago(10), "firstTimestamp": ago(10)}
    assert sorted([newer, older], key=event_time) == [older, newer]
    assert event_row(older, NOW, show_namespace=False) == [
        "5m",
        "Warning",
        "BuildFailed",
        "Kustomization/web",
        "kustomize build failed",
    ]
    assert event_row(older, NOW, show_namespace=True)[0] == "apps"


def test_referenced_objects_follow_flux_for_each_kind() -> None:
    ks = {
        "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "team"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux"}},
    }
    assert referenced(ks) == [("GitRepository", "flux", "repo")]
    hr = {
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts"}}}},
    }
    assert referenced(hr) == [
        ("HelmRepository", "team", "charts"),
        ("HelmChart", "team", "team-web"),
    ]
    alert = {
        "kind": "Alert",
        "metadata": {"name": "a", "namespace": "team"},
        "spec": {"providerRef": {"name": "slack", "namespace": "elsewhere"}},
    }
    assert referenced(alert) == [("Provider", "team", "slack")]
    assert referenced({"kind": "GitRepository", "metadata": {"name": "r"}, "spec": {}}) == []


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "-"),
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (3 * 1024**2, "3.0 MiB"),
        (5 * 1024**3, "5.0 GiB"),
    ],
)
def test_storage_reads_in_binary_units(size: int, shown: str) -> None:
    assert format_size(size) == shown


def test_stats_row_counts_running_failing_suspended_and_storage() -> None:
    def source(ready: str | None, *, suspend: bool = False, size: int = 0) -> dict[str, Any]:
        status: dict[str, Any] = {"artifact": {"size": size}} if size else {}
        if ready is not None:
            status["conditions"] = [{"type": "Ready", "status": ready}]
        return {"spec": {"suspend": suspend}, "status": status}

    objects = [
        source("True", size=1000),
        source("False", size=1048),
        source(None, suspend=True),
        source("Unknown"),
    ]
    assert kind_row("GitRepository", objects) == ["GitRepository", "3", "1", "1", "2.0 KiB"]
    assert kind_row("Alert", []) == ["Alert", "0", "0", "0", "-"]


def _node(text: str, *children: Node) -> Node:
    """A node from ``Kind/namespace/name`` (``Kind/name`` when cluster-scoped)."""
    kind, *where = text.split("/")
    namespace, name = where if len(where) == 2 else ("", where[0])
    group = {
        "Kustomization": "kustomize.toolkit.fluxcd.io",
        "HelmRelease": "helm.toolkit.fluxcd.io",
    }
    return Node(ObjectRef(group.get(kind, ""), kind, namespace, name), list(children))


def test_tree_is_drawn_with_flux_branches() -> None:
    root = _node(
        "Kustomization/flux-system/apps",
        _node(
            "Kustomization/flux-system/infra",
            _node("Namespace/infra"),
            _node("HelmRelease/infra/db", _node("Service/infra/db")),
        ),
        _node("ConfigMap/flux-system/settings"),
    )
    assert render_tree(root) == (
        "Kustomization/flux-system/apps\n"
        "├── Kustomization/flux-system/infra\n"
        "│   ├── Namespace/infra\n"
        "│   └── HelmRelease/infra/db\n"
        "│       └── Service/infra/db\n"
        "└── ConfigMap/flux-system/settings\n"
    )
    assert render_tree(_node("Kustomization/ns/empty")) == "Kustomization/ns/empty\n"


def test_tree_as_data_has_flux_tree_keys() -> None:
    root = _node("Kustomization/flux-system/apps", _node("Namespace/infra"))
    assert tree_document(root) == {
        "resource": {
            "Namespace": "flux-system",
            "Name": "apps",
            "GroupKind": {"Group": "kustomize.toolkit.fluxcd.io", "Kind": "Kustomization"},
        },
        "resources": [
            {
                "resource": {
                    "Namespace": "",
                    "Name": "infra",
                    "GroupKind": {"Group": "", "Kind": "Namespace"},
                }
            }
        ],
    }


def _storage(release: bytes) -> dict[str, Any]:
    """A Helm storage Secret as the API server returns it: Helm's base64 text, base64
    encoded once more as Secret data."""
    helm_text = base64.b64encode(release)
    return {"data": {"release": base64.b64encode(helm_text).decode()}}


def test_helm_release_manifest_is_read_from_its_storage_secret() -> None:
    release = json.dumps({"name": "db", "manifest": "kind: Service\n"}).encode()
    assert release_manifest(_storage(gzip.compress(release))) == "kind: Service\n"
    assert release_manifest(_storage(release)) == "kind: Service\n"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ({"data": {}}, "it has no 'release' data"),
        ({"data": {"release": "%%%"}}, "does not decode"),
        (_storage(b"[1, 2]"), "not a JSON object"),
        (_storage(b"\x1f\x8b\x08broken"), "does not decode"),
    ],
)
def test_a_secret_without_a_release_is_named_as_such(secret: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        release_manifest(secret)


def test_export_keeps_what_the_user_declared_only() -> None:
    live = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": "apps",
            "namespace": "flux-system",
            "uid": "1234",
            "resourceVersion": "99",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": ["finalizers.fluxcd.io"],
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"team": "web"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kustomize.toolkit.fluxcd.io/prune": "disabled",
            },
        },
        "spec": {"interval": "10m", "path": "./apps", "prune": True},
        "status": {"conditions": []},
    }
    cleaned = clean_object(live, "kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert cleaned == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": "apps",
            "namespace": "flux-system",
            "labels": {"team": "web"},
            "annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"},
        },
        "spec": {"interval": "10m", "path": "./apps", "prune": True},
    }
    text = render_exports([cleaned, cleaned])
    assert text.startswith("---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n")
    assert text.count("---\n") == 2
    assert load_documents(text.encode(), source="export") == [cleaned, cleaned]
