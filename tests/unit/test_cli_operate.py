"""The pure parts of ``fluxd reconcile | suspend | resume | delete``: the request
timestamp, how a handled reconcile is judged and reported, which source
``--with-source`` reconciles, and which nouns each verb takes."""

from __future__ import annotations

import io
from typing import Any

import pytest

from fluxd.cli.main import parser
from fluxd.cli.operate import confirmed
from fluxd.cli.outcome import (
    Outcome,
    SourceRef,
    handled_outcome,
    is_static,
    requested_at,
    source_of,
    success_message,
)

REQUEST = "2026-12-04T18:31:49.123456789Z"


def obj(kind: str, *conditions: dict[str, str], **status: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": "apps", "namespace": "ns", "generation": 2},
        "status": {
            "lastHandledReconcileAt": REQUEST,
            "conditions": list(conditions),
            **status,
        },
    }


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_requested_at_is_go_rfc3339nano_in_utc() -> None:
    assert requested_at(1_796_409_109_123_456_789) == "2026-12-04T18:31:49.123456789Z"
    assert requested_at(1_796_409_109_120_000_000) == "2026-12-04T18:31:49.12Z"
    assert requested_at(1_796_409_109_000_000_000) == "2026-12-04T18:31:49Z"


def test_an_unhandled_or_unsettled_request_keeps_waiting() -> None:
    ready = cond("Ready", "True", "ReconciliationSucceeded")
    assert handled_outcome(obj("Kustomization", ready), "another request") is None
    progressing = cond("Reconciling", "True", "Progressing", "applying")
    assert handled_outcome(obj("Kustomization", ready, progressing), REQUEST) is None
    unknown = cond("Ready", "Unknown", "Progressing")
    assert handled_outcome(obj("Kustomization", unknown), REQUEST) is None
    deleting = obj("Kustomization", ready)
    deleting["metadata"]["deletionTimestamp"] = "2026-12-04T18:31:50Z"
    assert handled_outcome(deleting, REQUEST) is None


def test_a_handled_request_reports_success_failure_or_stall() -> None:
    done = obj(
        "Kustomization",
        cond("Ready", "True", "ReconciliationSucceeded"),
        lastAppliedRevision="main@sha1:abc",
    )
    assert handled_outcome(done, REQUEST) == Outcome(True, "applied revision main@sha1:abc")
    # A failure the daemon will retry is reported, not waited on.
    failed = obj(
        "Kustomization",
        cond("Ready", "False", "BuildFailed", "kustomize build failed for path './x'"),
        cond("Reconciling", "True", "ProgressingWithRetry", "kustomize build failed"),
        observedGeneration=1,
    )
    assert handled_outcome(failed, REQUEST) == Outcome(
        False, "kustomize build failed for path './x'"
    )
    stalled = obj(
        "GitRepository",
        cond("Ready", "False", "UnsupportedField"),
        cond("Stalled", "True", "UnsupportedField", "spec.x is not supported"),
    )
    assert handled_outcome(stalled, REQUEST) == Outcome(False, "spec.x is not supported")
    assert handled_outcome(obj("Receiver"), REQUEST) == Outcome(False, "status can't be determined")


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        (
            "GitRepository",
            {"artifact": {"revision": "main@sha1:1"}},
            "fetched revision main@sha1:1",
        ),
        ("Bucket", {"artifact": {"revision": "sha256:2"}}, "fetched revision sha256:2"),
        ("HelmRelease", {"history": [{"chartVersion": "1.2.3"}]}, "applied revision 1.2.3"),
        ("HelmRelease", {"lastAttemptedRevision": "1.0.0"}, "applied revision 1.0.0"),
        ("ImageRepository", {"lastScanResult": {"tagCount": 7}}, "scan fetched 7 tags"),
        (
            "ImagePolicy",
            {"latestRef": {"name": "ghcr.io/app", "tag": "1.0", "digest": "sha256:d"}},
            "selected ref ghcr.io/app:1.0@sha256:d",
        ),
        ("Alert", {}, "Alert reconciliation completed"),
    ],
)
def test_success_messages_are_fluxs(kind: str, status: dict[str, Any], message: str) -> None:
    assert success_message({"kind": kind, "status": status}) == message


def test_an_oci_helm_repository_is_static() -> None:
    assert is_static({"kind": "HelmRepository", "spec": {"type": "oci"}})
    assert not is_static({"kind": "HelmRepository", "spec": {"type": "default"}})


def test_the_source_with_source_reconciles() -> None:
    meta = {"name": "app", "namespace": "ns"}
    ks = {
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {"sourceRef": {"kind": "OCIRepository", "name": "repo", "namespace": "shared"}},
    }
    assert source_of(ks) == SourceRef("OCIRepository", "repo", "shared")
    # A HelmChart's source is always in its own namespace.
    chart = {
        "kind": "HelmChart",
        "metadata": meta,
        "spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "ignored"}},
    }
    assert source_of(chart) == SourceRef("HelmRepository", "charts", "ns")
    # A HelmRelease's chart template: the HelmChart the daemon made, with its source.
    templated = {
        "kind": "HelmRelease",
        "metadata": meta,
        "spec": {
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                }
            }
        },
    }
    assert source_of(templated) == SourceRef("HelmChart", "ns-app", "ns", with_source=True)
    by_ref = {
        "kind": "HelmRelease",
        "metadata": meta,
        "spec": {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
    }
    assert source_of(by_ref) == SourceRef("OCIRepository", "podinfo", "ns")
    external = {
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "x"}},
    }
    with pytest.raises(ValueError, match="cannot reconcile source of kind ExternalArtifact"):
        source_of(external)


def test_each_verb_takes_fluxs_nouns(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["reconcile", "source", "chart", "c", "--with-source"])
    assert (args.target.kind, args.name, args.with_source) == ("HelmChart", "c", True)
    args = parser().parse_args(["suspend", "alert-provider", "--all", "-n", "x"])
    assert (args.target.kind, args.all, args.namespace) == ("Provider", True, "x")
    args = parser().parse_args(["resume", "image", "update", "a", "b", "--no-wait"])
    assert (args.target.kind, args.names, args.wait) == ("ImageUpdateAutomation", ["a", "b"], False)
    args = parser().parse_args(["delete", "hr", "web", "-s"])
    assert (args.target.kind, args.silent, args.timeout) == ("HelmRelease", True, "5m")
    # Flux reconciles neither Alerts nor Providers, nor a GitRepository "with source".
    for refused in (
        ["reconcile", "alert", "a"],
        ["reconcile", "source", "git", "g", "--with-source"],
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(refused)
    assert "invalid choice: 'alert'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("typed", "yes"), [("y\n", True), ("YES\n", True), ("n\n", False), ("", False)]
)
def test_delete_asks_and_only_yes_confirms(
    typed: str, yes: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert confirmed("Are you sure you want to delete this kustomization") is yes
    assert capsys.readouterr().err == "Are you sure you want to delete this kustomization? [y/N] \n"
