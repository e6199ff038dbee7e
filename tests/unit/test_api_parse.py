"""Parsing Flux objects into typed specs: defaults, validation, error paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fluxd.api import (
    BUCKET,
    GIT_REPOSITORY,
    HELM_RELEASE,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
    KINDS,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    FetchedSourceSpec,
    GitRepositoryRef,
    GitRepositorySpec,
    HelmReleaseSpec,
    KindInfo,
    KustomizationSpec,
    LocalObjectReference,
    SpecError,
    format_duration,
    from_dict,
    kind_for,
    openapi_schema,
    parse_duration,
    parse_spec,
    to_dict,
)

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"


def _git(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"url": "https://example.com/repo.git", "interval": "1m"}
    base.update(spec)
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "spec": base}


def _error(obj: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(obj)
    return str(info.value)


def test_git_repository_defaults_are_applied() -> None:
    spec = GIT_REPOSITORY.parse_spec(_git())
    assert isinstance(spec, GitRepositorySpec)
    assert spec.timeout == "60s"
    assert spec.suspend is False
    assert spec.recurse_submodules is False
    assert spec.include == ()
    assert spec.ref is None
    assert spec.reference.effective() == ("branch", "master")


def test_git_repository_nested_fields_are_typed() -> None:
    spec = GIT_REPOSITORY.parse_spec(
        _git(
            ref={"branch": "main"},
            secretRef={"name": "auth"},
            verify={"secretRef": {"name": "keys"}},
            include=[{"repository": {"name": "other"}, "toPath": "vendor"}],
        )
    )
    assert spec.ref == GitRepositoryRef(branch="main")
    assert spec.secret_ref is not None
    assert spec.secret_ref.name == "auth"
    assert spec.verify is not None
    assert spec.verify.mode == "HEAD"
    assert spec.verify.verify_head
    assert not spec.verify.verify_tag
    assert spec.include[0].destination == "vendor"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"branch": "main", "tag": "v1"}, ("tag", "v1")),
        ({"tag": "v1", "semver": ">=1.0.0"}, ("semver", ">=1.0.0")),
        ({"semver": "1.x", "name": "refs/pull/1/head"}, ("name", "refs/pull/1/head")),
        ({"branch": "main", "commit": "abc123", "name": "refs/heads/x"}, ("commit", "abc123")),
        ({"branch": "dev"}, ("branch", "dev")),
    ],
)
def test_git_ref_precedence(ref: dict[str, str], expected: tuple[str, str]) -> None:
    spec = GIT_REPOSITORY.parse_spec(_git(ref=ref))
    assert spec.reference.effective() == expected


def test_bad_url_scheme_names_the_field() -> None:
    message = _error(_git(url="ftp://example.com/repo"))
    assert message.startswith("spec.url: invalid value 'ftp://example.com/repo'")


def test_missing_interval_names_the_field() -> None:
    obj = _git()
    del obj["spec"]["interval"]
    assert _error(obj) == "spec.interval: required value is missing"


def test_bad_duration_names_the_field() -> None:
    assert _error(_git(timeout="1h")).startswith("spec.timeout: invalid value '1h'")
    assert _error(_git(interval="5 minutes")).startswith("spec.interval: invalid value")


def test_bad_enum_names_the_nested_field() -> None:
    message = _error(_git(verify={"mode": "all", "secretRef": {"name": "k"}}))
    assert message.startswith("spec.verify.mode: unsupported value 'all', must be one of")


def test_wrong_type_names_the_list_index() -> None:
    message = _error(_git(include=[{"repository": {"name": "a"}}, {"repository": "b"}]))
    assert message == "spec.include[1].repository: must be an object, got string"
    assert _error(_git(suspend="yes")) == "spec.suspend: must be a boolean, got string"


def test_cel_rule_is_enforced_by_the_parser() -> None:
    message = _error(_git(serviceAccountName="sa"))
    assert message == "spec: serviceAccountName can only be set when provider is 'azure' or 'aws'"
    spec = GIT_REPOSITORY.parse_spec(_git(serviceAccountName="sa", provider="azure"))
    assert spec.service_account_name == "sa"


def test_unknown_fields_are_ignored_like_the_api_server_prunes_them() -> None:
    spec = GIT_REPOSITORY.parse_spec(_git(gitImplementation="libgit2"))
    assert spec.url == "https://example.com/repo.git"


@pytest.mark.parametrize(
    ("kind", "spec", "timeout_words"),
    [
        (
            GIT_REPOSITORY,
            {"url": "https://example.com/r.git"},
            "Timeout of Git operations such as clone.",
        ),
        (OCI_REPOSITORY, {"url": "oci://ghcr.io/app"}, "Timeout of registry operations."),
        (BUCKET, {"bucketName": "b", "endpoint": "minio:9000"}, "Timeout of fetch operations."),
    ],
)
def test_fetched_sources_share_their_base_fields_in_their_own_words(
    kind: KindInfo[Any], spec: dict[str, Any], timeout_words: str
) -> None:
    parsed = kind.parse_spec({"spec": {**spec, "interval": "1m", "proxySecretRef": {"name": "p"}}})
    assert isinstance(parsed, FetchedSourceSpec)
    assert (parsed.interval, parsed.timeout, parsed.suspend, parsed.ignore) == (
        "1m",
        "60s",
        False,
        None,
    )
    assert (parsed.secret_ref, parsed.proxy_secret_ref) == (None, LocalObjectReference(name="p"))
    assert openapi_schema(kind.spec)["properties"]["timeout"]["description"] == timeout_words


def test_kustomization_requires_prune_and_derives_timeouts() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "spec": {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": "repo"}},
    }
    assert _error(obj) == "spec.prune: required value is missing"
    obj["spec"]["prune"] = True
    spec = KUSTOMIZATION.parse_spec(obj)
    assert isinstance(spec, KustomizationSpec)
    assert spec.force is False
    assert spec.timeout_seconds == 570.0
    assert spec.retry_interval_seconds == 600.0
    assert spec.effective_deletion_policy == "MirrorPrune"
    obj["spec"]["sourceRef"]["kind"] = "HelmRepository"
    assert _error(obj).startswith("spec.sourceRef.kind: unsupported value 'HelmRepository'")


def test_helm_release_chart_defaults_and_exclusive_chart_ref() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": "redis",
                    "sourceRef": {"kind": "HelmRepository", "name": "bitnami"},
                }
            },
            "values": {"auth": {"enabled": False}},
        },
    }
    spec = HELM_RELEASE.parse_spec(obj)
    assert isinstance(spec, HelmReleaseSpec)
    assert spec.chart is not None
    assert spec.chart.spec.version == "*"
    assert spec.chart.spec.reconcile_strategy == "ChartVersion"
    assert spec.values == {"auth": {"enabled": False}}
    assert spec.timeout_seconds == 300.0
    assert spec.effective_max_history == 5
    obj["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "chart"}
    assert _error(obj) == "spec: either chart or chartRef must be set"


def test_bucket_and_image_rules() -> None:
    bucket: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "Bucket",
        "spec": {
            "bucketName": "b",
            "endpoint": "minio:9000",
            "interval": "1m",
            "serviceAccountName": "sa",
        },
    }
    assert "not supported for the 'generic' Bucket provider" in _error(bucket)
    bucket["spec"]["provider"] = "aws"
    assert BUCKET.parse_spec(bucket).provider == "aws"

    policy: dict[str, Any] = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}}},
    }
    parsed = IMAGE_POLICY.parse_spec(policy)
    assert parsed.digest_reflection_policy == "Never"
    policy["spec"]["interval"] = "5m"
    assert "only accepted when spec.digestReflectionPolicy" in _error(policy)


def test_image_update_automation_update_default() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImageUpdateAutomation",
        "spec": {
            "interval": "30m",
            "sourceRef": {"name": "repo"},
            "git": {"commit": {"author": {"email": "bot@example.com"}}},
        },
    }
    spec = IMAGE_UPDATE_AUTOMATION.parse_spec(obj)
    assert spec.update.strategy == "Setters"
    assert spec.source_ref.kind == "GitRepository"


def test_to_dict_round_trips_camel_case() -> None:
    data = {
        "url": "ssh://git@example.com/x",
        "interval": "1m",
        "ref": {"branch": "main"},
        "secretRef": {"name": "auth"},
    }
    spec = from_dict(GitRepositorySpec, data)
    assert to_dict(spec) == {**data, "timeout": "60s"}
    assert from_dict(GitRepositorySpec, to_dict(spec)) == spec


def test_kind_lookup_accepts_served_versions_only() -> None:
    assert kind_for("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease") is HELM_RELEASE
    with pytest.raises(KeyError):
        kind_for("helm.toolkit.fluxcd.io/v3", "HelmRelease")
    assert _error({"apiVersion": "v1", "kind": "ConfigMap"}).startswith("apiVersion: v1 ConfigMap")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60.0), ("1m0s", 60.0), ("1.5h", 5400.0), ("500ms", 0.5), ("1h2m3s", 3723.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (5, "5s"),
        (600, "10m0s"),
        (3600, "1h0m0s"),
        (123.5, "2m3.5s"),
        (1.25, "1.25s"),
        (0.5123, "512.3ms"),
        (0.0000015, "1.5µs"),
        (1e-9, "1ns"),
        (90061.5, "25h1m1.5s"),
        (-2, "-2s"),
    ],
)
def test_format_duration_prints_as_go_does(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_parse_duration_rejects_what_the_crd_rejects() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("5d")


def test_every_seed_example_parses() -> None:
    yaml = YAML(typ="safe")
    documents = [d for path in sorted(SEEDS.glob("*.yaml")) for d in yaml.load_all(path)]
    assert len(documents) >= 8
    for doc in documents:
        parse_spec(doc)


def test_each_kind_names_the_flux_controller_that_reconciles_it() -> None:
    controllers = {info.kind: info.controller for info in KINDS}
    assert controllers == {
        "GitRepository": "source-controller",
        "ExternalArtifact": "source-controller",
        "OCIRepository": "source-controller",
        "HelmRepository": "source-controller",
        "HelmChart": "source-controller",
        "Bucket": "source-controller",
        "Kustomization": "kustomize-controller",
        "HelmRelease": "helm-controller",
        "Provider": "notification-controller",
        "Alert": "notification-controller",
        "Receiver": "notification-controller",
        "ImageRepository": "image-reflector-controller",
        "ImagePolicy": "image-reflector-controller",
        "ImageUpdateAutomation": "image-automation-controller",
    }
