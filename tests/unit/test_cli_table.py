"""The rows and table of ``fluxd get``: Flux's columns, digests cut short, the status
selector, and the layout ``flux get`` prints."""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.cli.table import (
    StatusSelector,
    header,
    ready_and_message,
    render_table,
    summary_row,
    truncate_hex,
)

SHA = "696f056df216eea4f9401adbee0ff744d4df390f"


def flux_object(
    kind: str,
    name: str = "podinfo",
    *,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    ready: tuple[str, str] | None = ("True", f"Fetched revision: main@sha1:{SHA}"),
) -> dict[str, Any]:
    conditions = (
        [] if ready is None else [{"type": "Ready", "status": ready[0], "message": ready[1]}]
    )
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec or {},
        "status": {"conditions": conditions, **(status or {})},
    }


def test_digests_are_cut_to_eight_characters() -> None:
    assert truncate_hex(f"main@sha1:{SHA}") == "main@sha1:696f056d"
    assert truncate_hex(f"sha256:{'a' * 64} and {SHA}") == "sha256:aaaaaaaa and 696f056d"
    assert truncate_hex("v1.2.3 abcdef") == "v1.2.3 abcdef"


def test_a_git_repository_row_shows_its_artifact_revision() -> None:
    obj = flux_object("GitRepository", status={"artifact": {"revision": f"main@sha1:{SHA}"}})
    assert summary_row(obj, all_namespaces=False, with_kind=False) == [
        "podinfo",
        "main@sha1:696f056d",
        "False",
        "True",
        "Fetched revision: main@sha1:696f056d",
    ]


def test_all_namespaces_puts_the_namespace_first_and_get_all_names_the_kind() -> None:
    obj = flux_object("Kustomization", "apps", status={"lastAppliedRevision": f"main@sha1:{SHA}"})
    row = summary_row(obj, all_namespaces=True, with_kind=True)
    assert row[:3] == ["flux-system", "kustomization/apps", "main@sha1:696f056d"]
    assert header(all_namespaces=True) == [
        "NAMESPACE",
        "NAME",
        "REVISION",
        "SUSPENDED",
        "READY",
        "MESSAGE",
    ]
    assert header(all_namespaces=False)[0] == "NAME"


def test_suspended_and_never_reconciled_objects() -> None:
    obj = flux_object("Bucket", spec={"suspend": True}, ready=None)
    assert summary_row(obj, all_namespaces=False, with_kind=False) == [
        "podinfo",
        "",
        "True",
        "False",
        "waiting to be reconciled",
    ]
    assert ready_and_message({"kind": "Bucket"}) == ("False", "waiting to be reconciled")


def test_a_helm_chart_keeps_its_version_and_a_helm_release_shows_the_deployed_chart() -> None:
    chart = flux_object("HelmChart", status={"artifact": {"revision": "6.5.4"}})
    assert summary_row(chart, all_namespaces=False, with_kind=False)[1] == "6.5.4"
    release = flux_object(
        "HelmRelease",
        ready=("True", f"Helm install succeeded for {SHA}"),
        status={"history": [{"chartVersion": "6.5.4"}], "lastAttemptedRevision": "6.5.3"},
    )
    row = summary_row(release, all_namespaces=False, with_kind=False)
    assert row[1] == "6.5.4"
    assert row[4] == f"Helm install succeeded for {SHA}"
    failed = flux_object("HelmRelease", status={"lastAttemptedRevision": "6.5.3"})
    assert summary_row(failed, all_namespaces=False, with_kind=False)[1] == "6.5.3"


def test_an_oci_helm_repository_is_always_ready() -> None:
    obj = flux_object("HelmRepository", spec={"type": "oci"}, ready=None)
    assert summary_row(obj, all_namespaces=False, with_kind=False)[3:] == [
        "True",
        "Helm repository is Ready",
    ]


def test_the_status_selector_compares_ignoring_case() -> None:
    ready = flux_object("GitRepository")
    failed = flux_object("GitRepository", ready=("False", "failed to checkout"))
    pending = flux_object("GitRepository", ready=None)
    equal = StatusSelector.parse("ready=false")
    assert (equal.matches(ready), equal.matches(failed), equal.matches(pending)) == (
        False,
        True,
        False,
    )
    negated = StatusSelector.parse("Ready!=True")
    assert (negated.matches(ready), negated.matches(failed), negated.matches(pending)) == (
        False,
        True,
        True,
    )
    assert StatusSelector.parse("READY=TRUE").matches(ready)


@pytest.mark.parametrize("text", ["ready", "=true", "ready=", "ready!="])
def test_a_malformed_status_selector_names_the_expected_forms(text: str) -> None:
    with pytest.raises(ValueError, match="type=status or type!=status format, but found"):
        StatusSelector.parse(text)


def test_the_table_is_laid_out_as_flux_get_prints_it() -> None:
    # flux's table writer pads each cell to its column and ends every row cell with a
    # tab; the last header cell is one space wider than its column.
    rows = [
        ["podinfo", "main@sha1:696f056d", "False", "True", "Fetched revision: main"],
        ["podinfo-shard1", "", "False", "False", "failed"],
    ]
    assert render_table(header(all_namespaces=False), rows) == (
        "NAME          \tREVISION          \tSUSPENDED\tREADY\tMESSAGE                \n"
        "podinfo       \tmain@sha1:696f056d\tFalse    \tTrue \tFetched revision: main\t\n"
        "podinfo-shard1\t                  \tFalse    \tFalse\tfailed                \t\n"
    )
    assert render_table([], rows[1:]) == "podinfo-shard1\t\tFalse\tFalse\tfailed\t\n"


def test_image_kinds_show_their_own_columns_as_flux_get_images() -> None:
    scanned = flux_object(
        "ImageRepository",
        "app",
        status={"lastScanResult": {"scanTime": "2026-12-04T18:00:00Z", "tagCount": 3}},
        spec={"suspend": True},
        ready=("True", "successful scan: found 3 tags with checksum 1623131655"),
    )
    assert header(all_namespaces=False, kind="ImageRepository") == [
        "NAME",
        "LAST SCAN",
        "SUSPENDED",
        "READY",
        "MESSAGE",
    ]
    assert summary_row(scanned, all_namespaces=False, with_kind=False) == [
        "app",
        "2026-12-04T18:00:00Z",
        "True",
        "True",
        "successful scan: found 3 tags with checksum 1623131655",
    ]
    policy = flux_object(
        "ImagePolicy", "app", status={"latestRef": {"name": "ghcr.io/org/app", "tag": "1.2.0"}}
    )
    assert header(all_namespaces=False, kind="ImagePolicy")[1:3] == ["IMAGE", "TAG"]
    assert summary_row(policy, all_namespaces=False, with_kind=False)[1:3] == [
        "ghcr.io/org/app",
        "1.2.0",
    ]
    automation = flux_object(
        "ImageUpdateAutomation", "app", status={"lastAutomationRunTime": "2026-12-04T18:01:00Z"}
    )
    assert header(all_namespaces=False, kind="ImageUpdateAutomation")[1] == "LAST RUN"
    assert summary_row(automation, all_namespaces=False, with_kind=False)[1:3] == [
        "2026-12-04T18:01:00Z",
        "False",
    ]


def test_notification_kinds_have_fewer_columns_and_flux_ready_text_without_status() -> None:
    provider = flux_object("Provider", "slack", ready=None)
    provider["status"] = {}
    assert header(all_namespaces=False, kind="Provider") == ["NAME", "READY", "MESSAGE"]
    assert summary_row(provider, all_namespaces=False, with_kind=False) == [
        "slack",
        "True",
        "Provider is Ready",
    ]
    broken = flux_object("Alert", "on-call", ready=("False", "Provider 'slack' not found"))
    assert header(all_namespaces=False, kind="Alert") == ["NAME", "SUSPENDED", "READY", "MESSAGE"]
    assert summary_row(broken, all_namespaces=False, with_kind=False) == [
        "on-call",
        "False",
        "False",
        "Provider 'slack' not found",
    ]


def test_show_source_names_the_source_after_the_name() -> None:
    local = flux_object(
        "Kustomization",
        "apps",
        spec={"sourceRef": {"kind": "GitRepository", "name": "repo"}},
        status={"lastAppliedRevision": f"main@sha1:{SHA}"},
    )
    assert summary_row(local, all_namespaces=False, with_kind=False, show_source=True)[:3] == [
        "apps",
        "GitRepository/flux-system/repo",
        "main@sha1:696f056d",
    ]
    chart = flux_object(
        "HelmRelease",
        "web",
        spec={"chart": {"spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts"}}}},
    )
    assert summary_row(chart, all_namespaces=True, with_kind=False, show_source=True)[:3] == [
        "flux-system",
        "web",
        "HelmRepository/flux-system/charts",
    ]
    other = {"kind": "OCIRepository", "name": "chart", "namespace": "shared"}
    by_ref = flux_object("HelmRelease", "api", spec={"chartRef": other})
    assert summary_row(by_ref, all_namespaces=False, with_kind=False, show_source=True)[1] == (
        "OCIRepository/shared/chart"
    )
    assert header(all_namespaces=True, kind="Kustomization", show_source=True)[:3] == [
        "NAMESPACE",
        "NAME",
        "SOURCE",
    ]
