"""The generated CRDs against a real kube-apiserver.

Real-world Flux YAML (the seed examples) must be accepted as written, and invalid
specs must be rejected with a message that names the field -- the same field the
Python parser names, so a user sees one story whether the API server or fluxd
caught the mistake. Each test works in the per-test ``namespace`` fixture, so the
fixed seed names never collide with other tests.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from ruamel.yaml import YAML

from fluxd.api import KINDS, SpecError, kind_for, parse_spec, to_dict

pytestmark = pytest.mark.integration

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"


def _seed_documents() -> list[dict[str, Any]]:
    yaml = YAML(typ="safe")
    return [doc for path in sorted(SEEDS.glob("*.yaml")) for doc in yaml.load_all(path)]


async def _create(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    info = kind_for(obj["apiVersion"], obj["kind"])
    version = obj["apiVersion"].rpartition("/")[2]
    body = copy.deepcopy(obj)
    body["metadata"]["namespace"] = namespace
    created: dict[str, Any] = await client.CustomObjectsApi(api).create_namespaced_custom_object(
        info.group, version, namespace, info.plural, body
    )
    return created


async def _delete(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> None:
    info = kind_for(obj["apiVersion"], obj["kind"])
    await client.CustomObjectsApi(api).delete_namespaced_custom_object(
        info.group, info.storage_version, namespace, info.plural, obj["metadata"]["name"]
    )


def _missing(stored: Any, written: Any, path: str) -> list[str]:
    """Paths of ``written`` that ``stored`` lacks or changed; extra stored keys are fine."""
    if isinstance(written, dict) and isinstance(stored, dict):
        return [
            miss
            for key, value in written.items()
            for miss in _missing(stored.get(key), value, f"{path}.{key}")
        ]
    return [] if stored == written else [path]


async def test_all_crds_are_established(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    for info in KINDS:
        crd = await ext.read_custom_resource_definition(info.crd_name)
        established = [c for c in crd.status.conditions or [] if c.type == "Established"]
        assert established, f"{info.crd_name} has no Established condition"
        assert established[0].status == "True", f"{info.crd_name}: {established[0].message}"


@pytest.mark.parametrize(
    "document",
    _seed_documents(),
    ids=lambda d: f"{d['kind']}-{d['metadata']['name']}",
)
async def test_seed_examples_are_accepted_as_written(
    api_client: client.ApiClient, namespace: str, document: dict[str, Any]
) -> None:
    created = await _create(api_client, namespace, document)
    try:
        # Stored as written, plus CRD defaults (nothing pruned, nothing changed).
        assert _missing(created["spec"], document["spec"], "spec") == []
        if document["kind"] == "GitRepository":
            assert created["spec"]["timeout"] == "60s"  # the CRD default
    finally:
        await _delete(api_client, namespace, document)


def _obj(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec}


_SOURCE = "source.toolkit.fluxcd.io/v1"
_NOTIFY = "notification.toolkit.fluxcd.io"
_IMAGE = "image.toolkit.fluxcd.io/v1"

#: One small valid object per kind (and a few older served versions).
EXAMPLES = [
    _obj(
        _SOURCE,
        "GitRepository",
        {
            "interval": "5m",
            "url": "ssh://git@example.com/r",
            "ref": {"semver": ">=1.0.0"},
            "verify": {"secretRef": {"name": "k"}},
        },
    ),
    _obj(
        _SOURCE,
        "OCIRepository",
        {
            "interval": "5m",
            "url": "oci://ghcr.io/org/manifests",
            "ref": {"tag": "latest"},
            "verify": {"secretRef": {"name": "k"}},
        },
    ),
    _obj(_SOURCE, "HelmRepository", {"interval": "1h", "url": "https://charts.example.com"}),
    _obj(
        _SOURCE,
        "HelmChart",
        {
            "chart": "podinfo",
            "interval": "10m",
            "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
        },
    ),
    _obj(
        _SOURCE,
        "Bucket",
        {
            "bucketName": "b",
            "endpoint": "minio:9000",
            "interval": "5m",
            "sts": {"provider": "ldap", "endpoint": "https://sts"},
        },
    ),
    _obj(
        "source.toolkit.fluxcd.io/v1beta2",
        "GitRepository",
        {"interval": "5m", "url": "https://example.com/r"},
    ),
    _obj(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        {
            "interval": "10m",
            "prune": True,
            "sourceRef": {"kind": "OCIRepository", "name": "m"},
            "postBuild": {
                "substitute": {"a": "b"},
                "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}],
            },
            "patches": [{"patch": "- op: remove\n  path: /x", "target": {"kind": "Deployment"}}],
            "healthChecks": [{"kind": "Deployment", "name": "app", "namespace": "default"}],
            "decryption": {"provider": "sops", "secretRef": {"name": "sops"}},
        },
    ),
    _obj(
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        {
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": "chart"},
            "install": {"remediation": {"retries": 3}, "crds": "CreateReplace"},
            "upgrade": {"remediation": {"strategy": "uninstall"}},
            "uninstall": {"keepHistory": True},
            "valuesFrom": [
                {"kind": "Secret", "name": "vals", "valuesKey": "v.yaml", "targetPath": "a.b[0]"}
            ],
            "values": {"replicas": 2, "list": [1, "two"]},
            "driftDetection": {"mode": "warn", "ignore": [{"paths": ["/spec/replicas"]}]},
            "postRenderers": [{"kustomize": {"images": [{"name": "nginx", "newTag": "1"}]}}],
        },
    ),
    _obj(
        "helm.toolkit.fluxcd.io/v2beta2",
        "HelmRelease",
        {
            "interval": "10m",
            "chart": {"spec": {"chart": "c", "sourceRef": {"kind": "GitRepository", "name": "g"}}},
        },
    ),
    _obj(
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        {
            "interval": "10m",
            "chartRef": {"kind": "ExternalArtifact", "name": "chart"},
            "commonMetadata": {"labels": {"team": "a"}},
            "dependsOn": [{"name": "db", "readyExpr": "dep.status.ready == true"}],
            "healthCheckExprs": [{"apiVersion": "example.com/v1", "current": "status.ready"}],
            "install": {"strategy": {"name": "RetryOnFailure", "retryInterval": "2m"}},
            "upgrade": {"serverSideApply": "auto", "chartNameChangeStrategy": "InPlaceUpdate"},
            "rollback": {"serverSideApply": "enabled"},
            "postRenderStrategy": "combined",
            "waitStrategy": {"name": "poller"},
            "valuesFrom": [{"kind": "Secret", "name": "v", "targetPath": "a", "literal": True}],
        },
    ),
    _obj(
        _SOURCE,
        "HelmChart",
        {
            "chart": "podinfo",
            "interval": "10m",
            "sourceRef": {"kind": "HelmRepository", "name": "oci"},
            "verify": {"secretRef": {"name": "keys"}},
        },
    ),
    _obj(
        f"{_NOTIFY}/v1",
        "Receiver",
        {
            "type": "generic-oidc",
            "oidcProviders": [
                {
                    "issuerURL": "https://token.actions.githubusercontent.com",
                    "validations": [{"expression": "claims.sub != ''", "message": "no subject"}],
                }
            ],
            "resources": [{"kind": "OCIRepository", "name": "*", "filter": "true"}],
        },
    ),
    _obj(
        f"{_NOTIFY}/v1beta3",
        "Provider",
        {"type": "github", "address": "https://github.com/o/r", "commitStatusExpr": "event.reason"},
    ),
    _obj(
        f"{_NOTIFY}/v1beta3",
        "Alert",
        {
            "providerRef": {"name": "slack"},
            "eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "a"}}],
        },
    ),
    _obj(
        f"{_NOTIFY}/v1",
        "Receiver",
        {
            "type": "github",
            "secretRef": {"name": "token"},
            "resources": [{"kind": "GitRepository", "name": "r"}],
        },
    ),
    _obj(_IMAGE, "ImageRepository", {"image": "ghcr.io/org/app", "interval": "5m"}),
    _obj(
        _IMAGE,
        "ImagePolicy",
        {
            "imageRepositoryRef": {"name": "app"},
            "policy": {"numerical": {}},
            "digestReflectionPolicy": "Always",
            "interval": "1h",
        },
    ),
    _obj(
        _IMAGE,
        "ImageUpdateAutomation",
        {
            "interval": "30m",
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
            "git": {
                "checkout": {"ref": {"branch": "main"}},
                "commit": {"author": {"email": "bot@example.com"}},
                "push": {"branch": "auto"},
            },
        },
    ),
]


@pytest.mark.parametrize(
    "document", EXAMPLES, ids=lambda d: f"{d['apiVersion'].rpartition('/')[2]}-{d['kind']}"
)
async def test_server_and_parser_apply_the_same_defaults(
    api_client: client.ApiClient, namespace: str, document: dict[str, Any]
) -> None:
    created = await _create(api_client, namespace, document)
    try:
        assert to_dict(parse_spec(document)) == created["spec"]
        assert created["status"] == {"observedGeneration": -1}
    finally:
        await _delete(api_client, namespace, document)


def _git(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"interval": "1m", "url": "https://example.com/repo.git"}
    base.update(spec)
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "invalid"},
        "spec": base,
    }


def _without_interval() -> dict[str, Any]:
    obj = _git()
    del obj["spec"]["interval"]
    return obj


def _helm_release_with_both_chart_and_chart_ref() -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "invalid"},
        "spec": {
            "interval": "5m",
            "chart": {"spec": {"chart": "x", "sourceRef": {"kind": "HelmRepository", "name": "r"}}},
            "chartRef": {"kind": "OCIRepository", "name": "x"},
        },
    }


def _kustomization(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "interval": "10m",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "repo"},
    }
    base.update(spec)
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "invalid"},
        "spec": base,
    }


INVALID = [
    pytest.param(_git(url="ftp://example.com/repo"), "spec.url", id="bad-url-scheme"),
    pytest.param(_without_interval(), "spec.interval", id="missing-interval"),
    pytest.param(_git(interval="5 minutes"), "spec.interval", id="bad-interval"),
    pytest.param(_git(timeout="1h"), "spec.timeout", id="timeout-with-hours"),
    pytest.param(
        _git(verify={"mode": "all", "secretRef": {"name": "keys"}}),
        "spec.verify.mode",
        id="bad-enum",
    ),
    pytest.param(_git(provider="gitlab"), "spec.provider", id="bad-provider"),
    pytest.param(
        _kustomization(sourceRef={"kind": "HelmRepository", "name": "x"}),
        "spec.sourceRef.kind",
        id="bad-source-kind",
    ),
    pytest.param(_kustomization(retryInterval="soon"), "spec.retryInterval", id="bad-retry"),
    pytest.param(_helm_release_with_both_chart_and_chart_ref(), "spec", id="cel-chart-xor-ref"),
]


@pytest.mark.parametrize(("obj", "field_path"), INVALID)
async def test_invalid_specs_are_rejected_naming_the_field(
    api_client: client.ApiClient, namespace: str, obj: dict[str, Any], field_path: str
) -> None:
    with pytest.raises(ApiException) as info:
        await _create(api_client, namespace, obj)
    assert info.value.status == 422
    assert f"{field_path}:" in str(info.value.body), info.value.body
    # The parser reports the same path for the same mistake.
    with pytest.raises(SpecError) as parsed:
        parse_spec(obj)
    assert parsed.value.path == field_path


def _receiver(**spec: Any) -> dict[str, Any]:
    return _obj(
        f"{_NOTIFY}/v1", "Receiver", {"resources": [{"kind": "Bucket", "name": "b"}], **spec}
    )


_OIDC_PROVIDERS = [
    {
        "issuerURL": "https://issuer.example.com",
        "validations": [{"expression": "true", "message": "never"}],
    }
]

#: Objects only a CEL rule rejects: (object, field the rule is on, Flux's message).
CEL_REJECTED = [
    pytest.param(
        _receiver(type="generic-oidc"),
        "spec",
        "generic-oidc receivers must define at least one oidcProvider",
        id="oidc-receiver-without-providers",
    ),
    pytest.param(
        _receiver(type="gitlab", secretRef={"name": "t"}, oidcProviders=_OIDC_PROVIDERS),
        "spec",
        "oidcProviders can only be set when type is generic-oidc",
        id="providers-on-a-gitlab-receiver",
    ),
    pytest.param(
        _receiver(type="generic-oidc", secretRef={"name": "t"}, oidcProviders=_OIDC_PROVIDERS),
        "spec",
        "secretRef cannot be set when type is generic-oidc",
        id="secret-on-an-oidc-receiver",
    ),
    pytest.param(
        _receiver(type="gitlab"),
        "spec",
        "secretRef is required when type is not generic-oidc",
        id="gitlab-receiver-without-secret",
    ),
    pytest.param(
        _obj(
            _SOURCE,
            "HelmChart",
            {
                "chart": "./charts/app",
                "interval": "10m",
                "sourceRef": {"kind": "GitRepository", "name": "g"},
                "verify": {"provider": "cosign"},
            },
        ),
        "spec",
        "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'",
        id="verify-a-chart-from-git",
    ),
    pytest.param(
        _obj(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            {
                "interval": "5m",
                "chartRef": {"kind": "OCIRepository", "name": "c"},
                "install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}},
            },
        ),
        "spec.install.strategy",
        ".retryInterval cannot be set when .name is 'RemediateOnFailure'",
        id="install-retry-interval-when-remediating",
    ),
    pytest.param(
        _obj(
            "helm.toolkit.fluxcd.io/v2",
            "HelmRelease",
            {
                "interval": "5m",
                "chartRef": {"kind": "OCIRepository", "name": "c"},
                "upgrade": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}},
            },
        ),
        "spec.upgrade.strategy",
        ".retryInterval can only be set when .name is 'RetryOnFailure'",
        id="upgrade-retry-interval-when-remediating",
    ),
]


@pytest.mark.parametrize(("obj", "field_path", "message"), CEL_REJECTED)
async def test_cel_rules_reject_with_the_same_message_as_the_parser(
    api_client: client.ApiClient, namespace: str, obj: dict[str, Any], field_path: str, message: str
) -> None:
    with pytest.raises(ApiException) as info:
        await _create(api_client, namespace, obj)
    assert info.value.status == 422
    assert f"{field_path}: Invalid value" in str(info.value.body), info.value.body
    assert message in str(info.value.body), info.value.body
    with pytest.raises(SpecError) as parsed:
        parse_spec(obj)
    assert str(parsed.value) == f"{field_path}: {message}"
