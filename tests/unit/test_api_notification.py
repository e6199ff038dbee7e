"""Receiver, Provider and Alert specs as Flux's notification API declares them.

A ``generic-oidc`` Receiver authenticates webhooks with OIDC tokens instead of a
Secret, so exactly one of ``secretRef`` and ``oidcProviders`` belongs to each type;
the parser enforces the same four rules the CRD's CEL does (the API server side is in
``tests/integration/test_crds.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxd.api import ALERT, PROVIDER, RECEIVER, ReceiverSpec, SpecError, parse_spec, to_dict

_OIDC_PROVIDER = {
    "issuerURL": "https://token.actions.githubusercontent.com",
    "validations": [
        {"expression": "claims.repository_owner == 'acme'", "message": "not an acme workflow"}
    ],
}


def _receiver(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"resources": [{"kind": "GitRepository", "name": "app"}]}
    base.update(spec)
    return {"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver", "spec": base}


def _error(obj: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(obj)
    return str(info.value)


def test_generic_oidc_receiver_is_authenticated_by_its_oidc_providers() -> None:
    obj = _receiver(
        type="generic-oidc",
        oidcProviders=[
            {
                **_OIDC_PROVIDER,
                "audience": "fluxd",
                "variables": [{"name": "owner", "expression": "claims.repository_owner"}],
            }
        ],
        resources=[{"kind": "GitRepository", "name": "*", "filter": "res.metadata.name != 'x'"}],
    )

    spec = RECEIVER.parse_spec(obj)

    assert isinstance(spec, ReceiverSpec)
    assert spec.secret_ref is None
    [provider] = spec.oidc_providers
    assert provider.issuer_url == "https://token.actions.githubusercontent.com"
    assert provider.audience == "fluxd"
    assert provider.variables[0].name == "owner"
    assert provider.validations[0].message == "not an acme workflow"
    assert spec.resources[0].filter == "res.metadata.name != 'x'"
    assert to_dict(spec) == {**obj["spec"], "interval": "10m"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {"type": "generic-oidc"},
            "generic-oidc receivers must define at least one oidcProvider",
            id="oidc-without-providers",
        ),
        pytest.param(
            {"type": "generic-oidc", "oidcProviders": []},
            "generic-oidc receivers must define at least one oidcProvider",
            id="oidc-with-empty-providers",
        ),
        pytest.param(
            {
                "type": "generic-oidc",
                "oidcProviders": [_OIDC_PROVIDER],
                "secretRef": {"name": "token"},
            },
            "secretRef cannot be set when type is generic-oidc",
            id="oidc-with-secret",
        ),
        pytest.param(
            {"type": "github"},
            "secretRef is required when type is not generic-oidc",
            id="github-without-secret",
        ),
        pytest.param(
            {"type": "github", "secretRef": {"name": "token"}, "oidcProviders": [_OIDC_PROVIDER]},
            "oidcProviders can only be set when type is generic-oidc",
            id="github-with-providers",
        ),
    ],
)
def test_each_receiver_type_has_exactly_its_own_credentials(
    spec: dict[str, Any], message: str
) -> None:
    assert _error(_receiver(**spec)) == f"spec: {message}"


def test_a_secret_receiver_still_needs_nothing_else() -> None:
    spec = RECEIVER.parse_spec(_receiver(type="github", secretRef={"name": "token"}))
    assert spec.secret_ref is not None
    assert spec.secret_ref.name == "token"
    assert spec.oidc_providers == ()


@pytest.mark.parametrize(
    ("provider", "path", "problem"),
    [
        pytest.param(
            {**_OIDC_PROVIDER, "issuerURL": "token.actions.githubusercontent.com"},
            "spec.oidcProviders[0].issuerURL",
            "must match '^https?://'",
            id="issuer-without-scheme",
        ),
        pytest.param(
            {**_OIDC_PROVIDER, "validations": []},
            "spec.oidcProviders[0].validations",
            "must have at least 1 items",
            id="no-validations",
        ),
        pytest.param(
            {"issuerURL": "https://issuer.example.com"},
            "spec.oidcProviders[0].validations",
            "required value is missing",
            id="validations-missing",
        ),
        pytest.param(
            {**_OIDC_PROVIDER, "variables": [{"name": "owner"}]},
            "spec.oidcProviders[0].variables[0].expression",
            "required value is missing",
            id="variable-without-expression",
        ),
    ],
)
def test_a_bad_oidc_provider_names_its_field(
    provider: dict[str, Any], path: str, problem: str
) -> None:
    message = _error(_receiver(type="generic-oidc", oidcProviders=[provider]))
    assert message.startswith(f"{path}: "), message
    assert problem in message


@pytest.mark.parametrize(
    "provider_type",
    [
        "giteapullrequestcomment",
        "githubpullrequestcomment",
        "gitlabmergerequestcomment",
        "zulip",
        "otel",
        "zoom",
        "incident.io",
    ],
)
def test_flux_provider_types_are_accepted(provider_type: str) -> None:
    obj = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "spec": {"type": provider_type},
    }
    assert PROVIDER.parse_spec(obj).type == provider_type


def test_an_unknown_provider_type_names_the_field() -> None:
    obj = {
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
        "kind": "Provider",
        "spec": {"type": "carrier-pigeon"},
    }
    assert _error(obj).startswith("spec.type: unsupported value 'carrier-pigeon'")


def test_kubectl_get_shows_only_the_age_of_providers_and_alerts_like_flux() -> None:
    # Flux's v1beta3 Providers and Alerts have no status to print.
    for info in (PROVIDER, ALERT):
        assert [column.name for column in info.printer_columns] == ["Age"]
