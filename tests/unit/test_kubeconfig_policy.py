"""Flux's ``--insecure-kubeconfig-tls`` / ``--insecure-kubeconfig-exec``: what a tenant's
kubeconfig Secret may use, from the flags to the kubeconfig fluxd connects with."""

from __future__ import annotations

import pytest
import yaml

from fluxd.apply.access import ClusterAccessError, KubeconfigPolicy, kubeconfig_from_secret
from fluxd.cli.main import parser
from fluxd.cli.run import options_from

EXEC = {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}


def secret(cluster: dict[str, object], user: dict[str, object]) -> dict[str, bytes]:
    document = {
        "current-context": "prod",
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin"}}],
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod:6443", **cluster}}],
        "users": [{"name": "admin", "user": user}],
    }
    return {"value": yaml.safe_dump(document).encode()}


@pytest.mark.parametrize(
    ("cluster", "user", "flag"),
    [
        ({"insecure-skip-tls-verify": True}, {"token": "t"}, "--insecure-kubeconfig-tls"),
        ({}, {"exec": EXEC}, "--insecure-kubeconfig-exec"),
    ],
)
def test_refusal_names_the_flag_that_allows_it(
    cluster: dict[str, object], user: dict[str, object], flag: str
) -> None:
    with pytest.raises(ClusterAccessError) as error:
        kubeconfig_from_secret(secret(cluster, user), secret="apps/prod", key=None)
    assert str(error.value).endswith(f"; fluxd allows it only when run with {flag}")
    assert "kubeconfig in secret 'apps/prod' (key 'value')" in str(error.value)


def test_allowed_fields_reach_the_kubeconfig_used() -> None:
    policy = KubeconfigPolicy(insecure_tls=True, exec_provider=True)
    config = kubeconfig_from_secret(
        secret({"insecure-skip-tls-verify": True}, {"exec": EXEC}),
        secret="apps/prod",
        key=None,
        policy=policy,
    )
    assert config["clusters"][0]["cluster"] == {
        "server": "https://prod:6443",
        "insecure-skip-tls-verify": True,
    }
    assert config["users"][0]["user"] == {"exec": EXEC}


def test_one_flag_does_not_allow_the_other() -> None:
    with pytest.raises(ClusterAccessError, match="--insecure-kubeconfig-exec"):
        kubeconfig_from_secret(
            secret({"insecure-skip-tls-verify": True}, {"exec": EXEC}),
            secret="apps/prod",
            key=None,
            policy=KubeconfigPolicy(insecure_tls=True),
        )


def test_lockdown_flags_reach_the_options() -> None:
    default = options_from(parser().parse_args(["run"]))
    assert (
        default.no_remote_bases,
        default.insecure_kubeconfig_tls,
        default.insecure_kubeconfig_exec,
    ) == (False, False, False)
    given = options_from(
        parser().parse_args(
            ["run", "--no-remote-bases", "--insecure-kubeconfig-tls", "--insecure-kubeconfig-exec"]
        )
    )
    assert given.no_remote_bases
    assert given.insecure_kubeconfig_tls
    assert given.insecure_kubeconfig_exec
