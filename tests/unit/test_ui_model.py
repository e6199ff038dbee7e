"""What the status UI shows, from object dicts: states, rows, the graph, the object page,
the spec allow-list, recent events, the last reconcile, and live row changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from fluxd.kube.events import RecordedEvent
from fluxd.runtime.keys import ObjectKey
from fluxd.runtime.metrics import LastReconcile, Metrics
from fluxd.ui import model
from fluxd.ui.events import RecentEvents
from fluxd.ui.hub import UiHub


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def obj(
    kind: str,
    name: str,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    *,
    namespace: str = "apps",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"kind": kind, "metadata": metadata, "spec": spec or {}, "status": status or {}}


READY = condition("Ready", "True", "Succeeded", "stored artifact")


@pytest.mark.parametrize(
    ("spec", "conds", "state"),
    [
        ({}, [], "unknown"),
        ({}, [READY], "ready"),
        ({}, [condition("Ready", "False", "GitOperationFailed", "no route")], "failed"),
        (
            {},
            [
                condition("Ready", "False", "BuildFailed"),
                condition("Reconciling", "True", "ProgressingWithRetry"),
            ],
            "failed",
        ),
        (
            {},
            [condition("Ready", "False", "UnsupportedField"), condition("Stalled", "True")],
            "stalled",
        ),
        ({}, [condition("Ready", "Unknown", "Progressing")], "progressing"),
        ({}, [condition("Reconciling", "True", "Progressing")], "progressing"),
        ({"suspend": True}, [condition("Ready", "False", "BuildFailed")], "suspended"),
        ({"suspend": False}, [READY], "ready"),
    ],
)
def test_state_of_each_condition_shape(
    spec: dict[str, Any], conds: list[dict[str, str]], state: str
) -> None:
    assert model.state_of(obj("GitRepository", "x", spec, {"conditions": conds})) == state


def test_row_carries_ready_reason_revision_and_last_reconcile() -> None:
    repo = obj(
        "GitRepository",
        "podinfo",
        {"url": "https://example.com/podinfo"},
        {"conditions": [READY], "artifact": {"revision": "main@sha1:abc"}},
    )
    finished = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    line = model.row("GitRepository", repo, LastReconcile(finished, 0.25, "success"))
    assert line == {
        "key": "GitRepository/apps/podinfo",
        "kind": "GitRepository",
        "namespace": "apps",
        "name": "podinfo",
        "state": "ready",
        "reason": "Succeeded",
        "message": "stored artifact",
        "revision": "main@sha1:abc",
        "suspended": False,
        "lastReconcile": "2026-03-01T12:00:00.000000Z",
        "duration": 0.25,
    }
    assert model.row("GitRepository", obj("GitRepository", "new"))["lastReconcile"] is None


def test_revision_is_what_flux_get_shows_per_kind() -> None:
    ks = obj("Kustomization", "a", status={"lastAppliedRevision": "main@sha1:1"})
    hr = obj("HelmRelease", "b", status={"history": [{"chartVersion": "1.2.3"}]})
    policy = obj("ImagePolicy", "c", status={"latestRef": {"name": "ghcr.io/app", "tag": "v2"}})
    assert model.row("Kustomization", ks)["revision"] == "main@sha1:1"
    assert model.row("HelmRelease", hr)["revision"] == "1.2.3"
    assert model.row("ImagePolicy", policy)["revision"] == "ghcr.io/app:v2"


def test_kind_counts_per_state() -> None:
    rows = [
        {"kind": "GitRepository", "state": "ready"},
        {"kind": "GitRepository", "state": "failed"},
        {"kind": "GitRepository", "state": "ready"},
        {"kind": "Kustomization", "state": "stalled"},
    ]
    assert model.kind_counts(rows) == [
        {"kind": "GitRepository", "count": 3, "states": {"failed": 1, "ready": 2}},
        {"kind": "Kustomization", "count": 1, "states": {"stalled": 1}},
    ]


def edges(objects: list[tuple[str, dict[str, Any]]]) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e["type"]) for e in model.graph(objects)["edges"]}


def test_graph_edges_of_every_reference() -> None:
    objects = [
        ("GitRepository", obj("GitRepository", "repo")),
        (
            "Kustomization",
            obj(
                "Kustomization",
                "apps",
                {
                    "sourceRef": {"kind": "GitRepository", "name": "repo"},
                    "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "system"}],
                },
            ),
        ),
        ("HelmRepository", obj("HelmRepository", "charts")),
        (
            "HelmRelease",
            obj(
                "HelmRelease",
                "web",
                {
                    "chart": {
                        "spec": {
                            "chart": "web",
                            "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                        }
                    },
                    "dependsOn": [{"name": "db"}],
                },
            ),
        ),
        (
            "HelmChart",
            obj(
                "HelmChart",
                "apps-web",
                {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "charts"}},
            ),
        ),
        (
            "HelmRelease",
            obj("HelmRelease", "oci", {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}}),
        ),
        ("ImageRepository", obj("ImageRepository", "app")),
        ("ImagePolicy", obj("ImagePolicy", "app", {"imageRepositoryRef": {"name": "app"}})),
        (
            "ImageUpdateAutomation",
            obj(
                "ImageUpdateAutomation",
                "bump",
                {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
            ),
        ),
        ("Provider", obj("Provider", "slack")),
        (
            "Alert",
            obj(
                "Alert",
                "on-call",
                {
                    "providerRef": {"name": "slack"},
                    "eventSources": [{"kind": "Kustomization", "name": "*"}],
                },
            ),
        ),
        (
            "Receiver",
            obj(
                "Receiver",
                "hook",
                {"resources": [{"kind": "GitRepository", "name": "repo"}]},
            ),
        ),
    ]
    assert edges(objects) == {
        ("GitRepository/apps/repo", "Kustomization/apps/apps", "source"),
        ("Kustomization/apps/infra", "Kustomization/apps/apps", "dependsOn"),
        ("Kustomization/system/crds", "Kustomization/apps/apps", "dependsOn"),
        ("HelmChart/apps/apps-web", "HelmRelease/apps/web", "chart"),
        ("HelmRelease/apps/db", "HelmRelease/apps/web", "dependsOn"),
        ("HelmRepository/apps/charts", "HelmChart/apps/apps-web", "source"),
        ("OCIRepository/apps/podinfo", "HelmRelease/apps/oci", "chart"),
        ("ImageRepository/apps/app", "ImagePolicy/apps/app", "source"),
        ("GitRepository/apps/repo", "ImageUpdateAutomation/apps/bump", "source"),
        ("ImagePolicy/apps/app", "ImageUpdateAutomation/apps/bump", "policy"),
        ("Provider/apps/slack", "Alert/apps/on-call", "provider"),
        ("Kustomization/apps/apps", "Alert/apps/on-call", "alert"),
        ("Receiver/apps/hook", "GitRepository/apps/repo", "receiver"),
    }
    nodes = {node["key"]: node["state"] for node in model.graph(objects)["nodes"]}
    # Referenced but missing: drawn, so a broken reference is visible.
    assert nodes["Kustomization/apps/infra"] == "unknown"
    assert nodes["OCIRepository/apps/podinfo"] == "unknown"


def test_helmrelease_chart_edge_follows_the_helmchart_its_status_names() -> None:
    release = obj(
        "HelmRelease",
        "web",
        {"chart": {"spec": {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "x"}}}},
        {"helmChart": "flux-system/apps-web"},
    )
    assert edges([("HelmRelease", release)]) == {
        ("HelmChart/flux-system/apps-web", "HelmRelease/apps/web", "chart")
    }


def test_automation_policies_follow_the_policy_selector() -> None:
    objects = [
        ("ImagePolicy", obj("ImagePolicy", "a", labels={"team": "web"})),
        ("ImagePolicy", obj("ImagePolicy", "b", labels={"team": "db"})),
        (
            "ImageUpdateAutomation",
            obj(
                "ImageUpdateAutomation",
                "bump",
                {"policySelector": {"matchLabels": {"team": "web"}}},
            ),
        ),
    ]
    policy_edges = {e for e in edges(objects) if e[2] == "policy"}
    assert policy_edges == {("ImagePolicy/apps/a", "ImageUpdateAutomation/apps/bump", "policy")}


def test_spec_allow_list_strips_credentials_and_never_shows_values() -> None:
    repo = obj("GitRepository", "r", {"url": "https://bot:s3cret@git.example.com/r.git"})
    assert model.spec_summary("GitRepository", repo) == {"url": "https://git.example.com/r.git"}
    release = obj(
        "HelmRelease",
        "web",
        {
            "interval": "5m",
            "values": {"password": "hunter2"},
            "valuesFrom": [{"kind": "Secret", "name": "web-values"}],
            "chart": {
                "spec": {
                    "chart": "web",
                    "version": "1.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                }
            },
        },
    )
    assert model.spec_summary("HelmRelease", release) == {
        "interval": "5m",
        "chart": "web",
        "version": "1.x",
        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
    }
    ks = obj(
        "Kustomization",
        "apps",
        {
            "path": "./apps",
            "postBuild": {"substitute": {"token": "abc"}},
            "suspend": True,
            "sourceRef": {"kind": "GitRepository", "name": "r"},
        },
    )
    summary = model.spec_summary("Kustomization", ks)
    assert "postBuild" not in summary
    assert summary["path"] == "./apps"
    assert summary["suspend"] is True
    provider = obj("Provider", "hook", {"type": "generic", "address": "https://x/?key=secret"})
    assert "address" not in model.spec_summary("Provider", provider)
    assert "secret" not in str(model.detail("Provider", provider, [("Provider", provider)]))


def test_strip_userinfo_leaves_other_urls_alone() -> None:
    assert model.strip_userinfo("ssh://git@github.com/x/y") == "ssh://github.com/x/y"
    assert model.strip_userinfo("oci://ghcr.io/x") == "oci://ghcr.io/x"
    assert model.strip_userinfo("not a url") == "not a url"


def test_detail_has_inventory_history_source_and_neighbours() -> None:
    repo = obj(
        "GitRepository",
        "repo",
        status={"conditions": [READY], "artifact": {"revision": "main@sha1:abc"}},
    )
    history = [{"digest": "sha256:1", "lastReconciledStatus": "ReconciliationSucceeded"}]
    ks = obj(
        "Kustomization",
        "apps",
        {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
        {
            "conditions": [condition("Ready", "False", "HealthCheckFailed", "timeout")],
            "inventory": {
                "entries": [
                    {"id": "apps_web_apps_Deployment", "v": "v1"},
                    {"id": "_apps__Namespace", "v": "v1"},
                    {"id": "broken", "v": "v1"},
                ]
            },
            "history": history,
        },
    )
    later = obj("Kustomization", "later", {"dependsOn": [{"name": "apps"}]})
    objects = [("GitRepository", repo), ("Kustomization", ks), ("Kustomization", later)]
    page = model.detail("Kustomization", ks, objects, events=[{"reason": "Progressing"}])
    assert page["object"]["state"] == "failed"
    assert page["conditions"][0]["reason"] == "HealthCheckFailed"
    assert page["events"] == [{"reason": "Progressing"}]
    assert page["inventory"] == [
        {
            "id": "apps_web_apps_Deployment",
            "kind": "Deployment",
            "namespace": "apps",
            "name": "web",
            "group": "apps",
            "version": "v1",
        },
        {
            "id": "_apps__Namespace",
            "kind": "Namespace",
            "namespace": "",
            "name": "apps",
            "group": "",
            "version": "v1",
        },
    ]
    assert page["history"] == history
    assert page["source"] == {
        "key": "GitRepository/apps/repo",
        "kind": "GitRepository",
        "namespace": "apps",
        "name": "repo",
        "revision": "main@sha1:abc",
    }
    assert page["dependencies"] == [
        {
            "key": "GitRepository/apps/repo",
            "kind": "GitRepository",
            "namespace": "apps",
            "name": "repo",
            "state": "ready",
        }
    ]
    assert [ref["key"] for ref in page["dependents"]] == ["Kustomization/apps/later"]


def test_metrics_remember_the_last_reconcile_until_forgotten() -> None:
    metrics = Metrics()
    key = ObjectKey("GitRepository", "apps", "repo")
    assert metrics.last_reconcile(key) is None
    metrics.observe_reconcile(key, 0.5, "failure")
    metrics.observe_reconcile(key, 0.125, "success")
    last = metrics.last_reconcile(key)
    assert last is not None
    assert (last.seconds, last.result) == (0.125, "success")
    assert abs(last.finished - datetime.now(UTC).timestamp()) < 5
    metrics.forget(key)
    assert metrics.last_reconcile(key) is None


def recorded(name: str, reason: str, kind: str = "Kustomization") -> RecordedEvent:
    return RecordedEvent(
        involved_object={"kind": kind, "namespace": "apps", "name": name},
        type="Normal",
        reason=reason,
        message="m",
        annotations={},
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        reporting_controller="kustomize-controller",
        reporting_instance="host",
        count=1,
    )


def test_recent_events_newest_first_repeats_counted_and_bounded() -> None:
    events = RecentEvents(per_object=3, max_objects=2)
    for reason in ("A", "B", "A", "C", "D"):
        events.add(recorded("apps", reason))
    assert [(e["reason"], e["count"]) for e in events.of("Kustomization", "apps", "apps")] == [
        ("D", 1),
        ("C", 1),
        ("A", 2),
    ]
    events.add(recorded("two", "X"))
    events.add(recorded("three", "Y"))
    assert events.of("Kustomization", "apps", "apps") == [], "the oldest object is dropped"
    events.forget("Kustomization", "apps", "three")
    assert events.of("Kustomization", "apps", "three") == []
    assert events.of("Kustomization", "apps", "two")[0]["reason"] == "X"


async def test_hub_publishes_row_changes_only_and_drops_a_slow_client() -> None:
    events = RecentEvents()
    hub = UiHub(metrics=Metrics(), events=events, queue_size=2)
    repo = obj("GitRepository", "repo", status={"conditions": [READY]})
    with hub.subscribe() as subscription:
        hub.changed("GitRepository", repo)
        # A new resourceVersion alone changes nothing the overview shows.
        hub.changed("GitRepository", {**repo, "metadata": {**repo["metadata"], "x": 1}})
        message = subscription.queue.get_nowait()
        assert message is not None
        assert message[0] == "changed"
        assert message[1]["state"] == "ready"
        assert subscription.queue.empty()
        events.add(recorded("repo", "A", kind="GitRepository"))
        hub.deleted("GitRepository", repo)
        assert subscription.queue.get_nowait() == ("deleted", {"key": "GitRepository/apps/repo"})
        assert events.of("GitRepository", "apps", "repo") == []
    with hub.subscribe() as slow:
        for generation in range(5):
            hub.changed("GitRepository", obj("GitRepository", f"r{generation}"))
        assert slow.dropped
        assert await asyncio.wait_for(slow.queue.get(), 1) is None, "the stream ends"
        assert hub.subscribers == 0
