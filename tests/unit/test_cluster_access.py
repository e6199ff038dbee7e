"""Which cluster and identity a Kustomization acts with: kubeconfig rules, client cache."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration

from fluxd.api import KUSTOMIZATION, KustomizationSpec
from fluxd.apply.access import (
    ClusterAccess,
    ClusterAccessError,
    kubeconfig_from_secret,
)
from fluxd.kube.events import EventRecorder
from fluxd.kube.objects import ObjectApi, SecretNotFound
from fluxd.runtime.keys import ObjectKey


def kubeconfig(user: dict[str, Any] | None = None, cluster: dict[str, Any] | None = None) -> bytes:
    document: str = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "prod",
            "contexts": [
                {"name": "other", "context": {"cluster": "other", "user": "other"}},
                {"name": "prod", "context": {"cluster": "prod", "user": "admin"}},
            ],
            "clusters": [
                {"name": "other", "cluster": {"server": "https://other:6443"}},
                {
                    "name": "prod",
                    "cluster": {"server": "https://prod:6443", **(cluster or {})},
                },
            ],
            "users": [
                {"name": "other", "user": {"token": "other-token"}},
                {"name": "admin", "user": user if user is not None else {"token": "t0k3n"}},
            ],
        }
    )
    return document.encode()


def test_default_keys_are_value_then_value_yaml_and_only_the_current_context_is_kept() -> None:
    both = {"value.yaml": kubeconfig({"token": "second"}), "value": kubeconfig()}
    config = kubeconfig_from_secret(both, secret="apps/prod", key=None)
    assert config["clusters"] == [{"name": "remote", "cluster": {"server": "https://prod:6443"}}]
    assert config["users"] == [{"name": "remote", "user": {"token": "t0k3n"}}]
    only_yaml = kubeconfig_from_secret(
        {"value.yaml": kubeconfig({"token": "second"})}, secret="apps/prod", key=None
    )
    assert only_yaml["users"][0]["user"] == {"token": "second"}


def test_an_explicit_key_is_the_only_one_tried() -> None:
    with pytest.raises(ClusterAccessError) as error:
        kubeconfig_from_secret({"value": kubeconfig()}, secret="apps/prod", key="config")
    assert str(error.value) == (
        "kubeconfig secret 'apps/prod' does not contain a 'config' key with a kubeconfig"
    )
    with pytest.raises(ClusterAccessError, match=r"'value' or 'value\.yaml'"):
        kubeconfig_from_secret({"config": kubeconfig()}, secret="apps/prod", key=None)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"clusters: [oops\n", "(key 'value') is not valid YAML"),
        (b"- a list\n", "not a kubeconfig"),
        (b"apiVersion: v1\nkind: Config\n", "has no current-context"),
        (kubeconfig().replace(b"current-context: prod", b"current-context: gone"), "'gone'"),
        (kubeconfig(cluster={"server": ""}), "cluster 'prod' has no server"),
        (kubeconfig({"exec": {"command": "aws"}}), "user 'admin' runs a command (exec)"),
        (kubeconfig({"tokenFile": "/etc/passwd"}), "reads a token file"),
        (kubeconfig({"client-certificate": "/tmp/c.pem"}), "reads a client certificate file"),
        (kubeconfig(cluster={"insecure-skip-tls-verify": True}), "turns off TLS verification"),
        (kubeconfig(cluster={"certificate-authority": "/ca.pem"}), "certificate authority file"),
    ],
)
def test_unusable_kubeconfigs_are_refused_naming_the_secret(payload: bytes, words: str) -> None:
    with pytest.raises(ClusterAccessError) as error:
        kubeconfig_from_secret({"value": payload}, secret="apps/prod", key=None)
    assert "'apps/prod'" in str(error.value)
    assert words in str(error.value)


class Secrets(ObjectApi):
    """An ObjectApi whose Secrets are a dict (no API server)."""

    def __init__(self, api: ApiClient, secrets: dict[str, dict[str, bytes]]) -> None:
        super().__init__(api, informers={}, events=EventRecorder(api))
        self.secrets = secrets

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        if name not in self.secrets:
            raise SecretNotFound(f"secret '{namespace}/{name}' not found")
        return self.secrets[name]


def spec(service_account: str | None = None, secret: str | None = None) -> KustomizationSpec:
    fields: dict[str, Any] = {
        "interval": "10m",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "apps"},
    }
    if service_account:
        fields["serviceAccountName"] = service_account
    if secret:
        fields["kubeConfig"] = {"secretRef": {"name": secret}}
    return KUSTOMIZATION.parse_spec({"spec": fields})


def key(name: str) -> ObjectKey:
    return ObjectKey(KUSTOMIZATION.kind, "apps", name)


async def test_clients_are_shared_per_identity_and_closed_when_unused() -> None:
    local = ApiClient(configuration=Configuration(host="https://local:6443"))
    objects = Secrets(local, {"prod": {"value": kubeconfig()}})
    access = ClusterAccess(objects, field_manager="kustomize-controller")
    try:
        assert (await access.for_kustomization(key("plain"), spec())) is access.local

        first = await access.for_kustomization(key("a"), spec("deployer"))
        second = await access.for_kustomization(key("b"), spec("deployer"))
        assert first is second
        assert first.api is not local
        assert first.api.configuration is local.configuration
        assert first.api.default_headers["Impersonate-User"] == (
            "system:serviceaccount:apps:deployer"
        )
        assert first.applier.mapper is first.mapper

        remote = await access.for_kustomization(key("c"), spec("deployer", secret="prod"))
        assert remote.api.configuration.host == "https://prod:6443"
        assert remote.api.default_headers["Impersonate-User"] == (
            "system:serviceaccount:apps:deployer"
        )

        access.forget(key("a"))
        await access.for_kustomization(key("b"), spec())  # b moves to the daemon's identity
        assert first.api.rest_client.pool_manager.closed, "an unused client was kept open"
        assert not remote.api.rest_client.pool_manager.closed
    finally:
        await access.close()
        assert remote.api.rest_client.pool_manager.closed
        assert not local.rest_client.pool_manager.closed, "the daemon's own client was closed"
        await local.close()


async def test_default_service_account_applies_only_without_an_own_one() -> None:
    local = ApiClient(configuration=Configuration(host="https://local:6443"))
    access = ClusterAccess(
        Secrets(local, {}), field_manager="kustomize-controller", default_service_account="tenant"
    )
    try:
        locked = await access.for_kustomization(key("a"), spec())
        own = await access.for_kustomization(key("b"), spec("deployer"))
        assert locked.identity.user == "system:serviceaccount:apps:tenant"
        assert own.identity.user == "system:serviceaccount:apps:deployer"
        with pytest.raises(ClusterAccessError, match="kubeconfig secret 'apps/absent' not found"):
            await access.for_kustomization(key("c"), spec(secret="absent"))
    finally:
        await access.close()
        await local.close()


@pytest.mark.parametrize(
    ("authority", "words"),
    [("bm90IGJhc2U2NA", "Incorrect padding"), ("Z2FyYmFnZQ==", "NO_CERTIFICATE_OR_CRL_FOUND")],
)
async def test_a_kubeconfig_with_a_broken_certificate_names_its_secret(
    authority: str, words: str
) -> None:
    local = ApiClient(configuration=Configuration(host="https://local:6443"))
    broken = kubeconfig(cluster={"certificate-authority-data": authority})
    access = ClusterAccess(Secrets(local, {"prod": {"value": broken}}), field_manager="fluxd")
    try:
        with pytest.raises(ClusterAccessError) as error:
            await access.for_kustomization(key("a"), spec(secret="prod"))
        assert str(error.value).startswith("kubeconfig in secret 'apps/prod' cannot be used: ")
        assert words in str(error.value)
    finally:
        await access.close()
        await local.close()
