"""HelmRelease specs (and the HelmChart verification rule) as Flux's APIs declare them.

Every field of helm-controller's ``v2`` API parses into the typed spec, in every
served version, and a mistake is reported at the field that holds it.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import HELM_CHART, HELM_RELEASE, SpecError, parse_spec, to_dict


def _release(version: str = "v2", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "app"}}
    base.update(spec)
    return {"apiVersion": f"helm.toolkit.fluxcd.io/{version}", "kind": "HelmRelease", "spec": base}


def _error(obj: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(obj)
    return str(info.value)


#: A HelmRelease using the fields Flux's v2 API added after fluxd's first API types.
NEWER_FIELDS: dict[str, Any] = {
    "chartRef": {"kind": "ExternalArtifact", "name": "chart", "namespace": "flux-system"},
    "commonMetadata": {"labels": {"team": "a"}, "annotations": {"owner": "ops"}},
    "dependsOn": [{"name": "db", "readyExpr": "dep.status.ready == true"}],
    "healthCheckExprs": [
        {"apiVersion": "example.com/v1", "kind": "Widget", "current": "status.ready"}
    ],
    "install": {
        "strategy": {"name": "RetryOnFailure", "retryInterval": "2m"},
        "serverSideApply": True,
        "disableSchemaValidation": True,
        "disableTakeOwnership": True,
    },
    "upgrade": {
        "strategy": {"name": "RetryOnFailure"},
        "serverSideApply": "auto",
        "chartNameChangeStrategy": "InPlaceUpdate",
        "disableSchemaValidation": True,
        "disableTakeOwnership": True,
    },
    "rollback": {"serverSideApply": "disabled"},
    "postRenderStrategy": "separate",
    "waitStrategy": {"name": "legacy"},
    "valuesFrom": [
        {"kind": "ConfigMap", "name": "files", "targetPath": "config.json", "literal": True}
    ],
}


@pytest.mark.parametrize("version", ["v2", "v2beta2", "v2beta1"])
def test_every_flux_v2_field_parses_in_every_served_version(version: str) -> None:
    obj = _release(version, **NEWER_FIELDS)

    spec = HELM_RELEASE.parse_spec(obj)

    assert spec.chart_ref is not None
    assert spec.chart_ref.kind == "ExternalArtifact"
    assert spec.common_metadata is not None
    assert spec.common_metadata.labels == {"team": "a"}
    assert spec.depends_on[0].ready_expr == "dep.status.ready == true"
    assert spec.health_check_exprs[0].kind == "Widget"
    assert spec.install is not None
    assert spec.install.strategy is not None
    assert spec.install.strategy.retry_interval == "2m"
    assert spec.install.server_side_apply is True
    assert spec.upgrade is not None
    assert spec.upgrade.chart_name_change_strategy == "InPlaceUpdate"
    assert spec.rollback is not None
    assert spec.rollback.server_side_apply == "disabled"
    assert spec.wait_strategy is not None
    assert spec.wait_strategy.name == "legacy"
    assert spec.post_render_strategy == "separate"
    assert spec.values_from[0].literal
    # Nothing is lost on the way back to JSON.
    assert to_dict(spec) == obj["spec"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}},
            "spec.install.strategy: .retryInterval cannot be set when .name is "
            "'RemediateOnFailure'",
            id="install-retry-interval-when-remediating",
        ),
        pytest.param(
            {"upgrade": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}},
            "spec.upgrade.strategy: .retryInterval can only be set when .name is 'RetryOnFailure'",
            id="upgrade-retry-interval-when-remediating",
        ),
        pytest.param(
            {"install": {"strategy": {"retryInterval": "1m"}}},
            "spec.install.strategy.name: required value is missing",
            id="strategy-without-name",
        ),
        pytest.param(
            {"install": {"strategy": {"name": "RetryOnFailure", "retryInterval": "soon"}}},
            "spec.install.strategy.retryInterval: invalid value 'soon'",
            id="bad-retry-interval",
        ),
        pytest.param(
            {"waitStrategy": {"name": "patient"}},
            "spec.waitStrategy.name: unsupported value 'patient'",
            id="bad-wait-strategy",
        ),
        pytest.param(
            {"postRenderStrategy": "all"},
            "spec.postRenderStrategy: unsupported value 'all'",
            id="bad-post-render-strategy",
        ),
        pytest.param(
            {"upgrade": {"serverSideApply": True}},
            "spec.upgrade.serverSideApply: must be a string, got boolean",
            id="upgrade-ssa-is-a-mode",
        ),
        pytest.param(
            {"upgrade": {"chartNameChangeStrategy": "Rename"}},
            "spec.upgrade.chartNameChangeStrategy: unsupported value 'Rename'",
            id="bad-chart-name-change-strategy",
        ),
        pytest.param(
            {"healthCheckExprs": [{"kind": "Widget", "current": "true"}]},
            "spec.healthCheckExprs[0].apiVersion: required value is missing",
            id="health-check-without-api-version",
        ),
        pytest.param(
            {"chartRef": {"kind": "GitRepository", "name": "app"}},
            "spec.chartRef.kind: unsupported value 'GitRepository'",
            id="chart-ref-to-a-git-repository",
        ),
    ],
)
def test_a_bad_field_is_named(spec: dict[str, Any], message: str) -> None:
    assert _error(_release(**spec)).startswith(message)


def test_retrying_needs_no_interval() -> None:
    spec = HELM_RELEASE.parse_spec(_release(install={"strategy": {"name": "RetryOnFailure"}}))
    assert spec.install is not None
    assert spec.install.strategy is not None
    assert spec.install.strategy.retry_interval is None


def _helm_chart(source_kind: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "chart": "podinfo",
        "interval": "10m",
        "sourceRef": {"kind": source_kind, "name": "source"},
    }
    base.update(spec)
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart", "spec": base}


def test_helm_chart_verification_needs_a_helm_repository() -> None:
    verify = {"provider": "notation", "secretRef": {"name": "keys"}}
    assert _error(_helm_chart("GitRepository", verify=verify)) == (
        "spec: spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'"
    )
    spec = HELM_CHART.parse_spec(_helm_chart("HelmRepository", verify=verify))
    assert spec.verify is not None
    assert spec.verify.provider == "notation"


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(
            _helm_chart("HelmRepository", verify={"secretRef": {"name": "keys"}}), id="HelmChart"
        ),
        pytest.param(
            _release(
                chartRef=None,
                chart={
                    "spec": {
                        "chart": "podinfo",
                        "sourceRef": {"kind": "HelmRepository", "name": "oci"},
                        "verify": {"secretRef": {"name": "keys"}},
                    }
                },
            ),
            id="HelmRelease-chart",
        ),
        pytest.param(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "spec": {
                    "interval": "5m",
                    "url": "oci://ghcr.io/org/app",
                    "verify": {"secretRef": {"name": "keys"}},
                },
            },
            id="OCIRepository",
        ),
    ],
)
def test_verification_without_a_provider_is_cosign(obj: dict[str, Any]) -> None:
    spec = parse_spec(obj)
    verify = spec.chart.spec.verify if obj["kind"] == "HelmRelease" else spec.verify
    assert verify.provider == "cosign"


def test_oci_repository_verification_rejects_an_unknown_provider() -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "spec": {"interval": "5m", "url": "oci://ghcr.io/org/app", "verify": {"provider": "gpg"}},
    }
    assert _error(obj).startswith("spec.verify.provider: unsupported value 'gpg'")
