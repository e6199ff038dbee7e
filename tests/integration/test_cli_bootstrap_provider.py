"""``fluxd bootstrap github|gitlab`` against loopback stand-ins of the providers' REST APIs.

The stand-ins (``tests/gitproviders.py``) answer the documented endpoints over HTTPS and
back each repository they create with the suite's real git servers, so the push goes over
HTTPS with the token, the deploy key registered through the API is what the suite's sshd
accepts, and the in-process daemon (the ``fluxd`` fixture, watching the test's namespace)
syncs the cluster from the repository over SSH, as a cluster bootstrapped by Flux does.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.cli.bootstrap_provider import deploy_key_title
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import CONFIGMAPS, SECRETS, Resource
from tests.gitproviders import GitProviderStandIn
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd, is_ready_now
from tests.integration.kustomizations import configmap, until

pytestmark = pytest.mark.integration

CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
TOKEN_VARIABLES = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}


@pytest.fixture(params=["github", "gitlab"])
def provider(request: pytest.FixtureRequest) -> GitProviderStandIn:
    stand_in: GitProviderStandIn = request.getfixturevalue(f"{request.param}_provider")
    return stand_in


@pytest.fixture
async def cluster_rbac_removed(api_client: ApiClient, namespace: str) -> AsyncIterator[None]:
    yield
    await client.delete(api_client, CLUSTER_ROLES, None, f"fluxd-{namespace}")
    for name in (f"fluxd-{namespace}", f"fluxd-cluster-admin-{namespace}"):
        await client.delete(api_client, BINDINGS, None, name)


def _args(provider: GitProviderStandIn, namespace: str, *extra: str) -> list[str]:
    return [
        "bootstrap",
        provider.provider,
        f"--owner={provider.user}",
        "--repository=fleet",
        "--personal",
        f"--hostname={provider.hostname}",
        f"--ca-file={provider.ca_file}",
        "--path=./clusters/dev",
        f"--namespace={namespace}",
        "--timeout=60s",
        *extra,
    ]


@pytest.mark.usefixtures("cluster_rbac_removed")
async def test_bootstrap_creates_the_repository_registers_a_deploy_key_and_syncs(
    fluxd: Fluxd, provider: GitProviderStandIn, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    env = {TOKEN_VARIABLES[provider.provider]: provider.token}
    code, out, err = await run_fluxd(kubeconfig, *_args(provider, ns), env=env)
    assert (code, out) == (0, ""), err
    assert provider.token not in err
    hosted = provider.repositories[f"{provider.user}/fleet"]
    assert hosted.private, "--private is the default"
    files = hosted.remote.git("ls-tree", "-r", "--name-only", "main", cwd=hosted.remote.bare)
    assert files.split() == [
        f"clusters/dev/{ns}/gotk-components.yaml",
        f"clusters/dev/{ns}/gotk-sync.yaml",
        f"clusters/dev/{ns}/kustomization.yaml",
    ]
    # One read-only deploy key, Flux's title, the public half of the Secret's key.
    [key] = hosted.keys
    assert (key.title, key.read_only) == (deploy_key_title(ns, "main", ns, "clusters/dev"), True)
    secret = await client.get(fluxd.api, SECRETS, ns, ns)
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["identity.pub"].decode().split()[:2] == key.key.split()[:2]
    assert data["known_hosts"]
    # The cluster reads the repository over SSH with that key, and it is synced.
    source = await fluxd.get(GIT_REPOSITORY, ns)
    assert source["spec"]["url"] == hosted.ssh_url
    assert is_ready_now(source)
    assert is_ready_now(await fluxd.get(KUSTOMIZATION, ns))

    # A change pushed to the path is applied.
    hosted.remote.git("fetch", "-q", "origin", "main")
    hosted.remote.git("checkout", "-q", "-B", "main", "FETCH_HEAD")
    hosted.remote.commit({"clusters/dev/settings.yaml": configmap(ns, "settings")}, branch="main")
    await fluxd.patch(
        GIT_REPOSITORY, ns, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "1"}}}
    )

    async def applied() -> bool:
        return await client.get(fluxd.api, CONFIGMAPS, ns, "settings", missing_ok=True) is not None

    await until("the pushed ConfigMap applied", applied)

    # Again: the repository and the key are found, nothing new is committed.
    head = hosted.remote.rev("refs/heads/main")
    code, _, err = await run_fluxd(kubeconfig, *_args(provider, ns), env=env)
    assert code == 0, err
    assert f'✔ repository "{hosted.https_url}" cloned' in err.splitlines()
    assert len(hosted.keys) == 1
    assert hosted.remote.rev("refs/heads/main") == head


async def test_without_a_token_or_with_a_bad_one_it_fails_in_one_line(
    fluxd: Fluxd, provider: GitProviderStandIn, kubeconfig: Path
) -> None:
    variable = TOKEN_VARIABLES[provider.provider]
    code, out, err = await run_fluxd(
        kubeconfig, *_args(provider, fluxd.namespace), env={variable: ""}
    )
    assert (code, out) == (1, "")
    assert err.endswith(f"set the {variable} environment variable\n"), err
    code, out, err = await run_fluxd(
        kubeconfig, *_args(provider, fluxd.namespace), env={variable: "wrong-token"}
    )
    assert (code, out) == (1, "")
    assert err.splitlines()[-1].startswith("✗ "), err
    assert "401" in err
    assert "wrong-token" not in err
    assert not provider.repositories
