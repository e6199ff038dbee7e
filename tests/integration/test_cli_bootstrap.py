"""``fluxd bootstrap git`` against the suite's real git servers and control plane.

The command runs as a user runs it (a separate process); the in-process daemon of the
``fluxd`` fixture plays the installed fluxd, so each bootstrap targets the test's own
namespace (``-n``), the only one that daemon watches. The fluxd CRDs the bootstrap applies
are the suite's own (identical, never pruned); the cluster-wide RBAC it creates is named
after the namespace and removed when the test ends.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.cli.deploy_key import load_deploy_key
from fluxd.kube import client
from fluxd.kube.client import ApiClient
from fluxd.kube.resources import CONFIGMAPS, SECRETS, Resource
from tests.gitservers import (
    HTTP_PASSWORD,
    HTTP_USERNAME,
    GitHTTPServer,
    GitRemote,
    RepoRoot,
    SSHServer,
    free_port,
)
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd, is_ready_now

pytestmark = pytest.mark.integration

PATH = "clusters/my-cluster"
DEPLOYMENTS = Resource("apps", "v1", "deployments")
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)


@pytest.fixture
async def cluster_rbac_removed(api_client: ApiClient, namespace: str) -> AsyncIterator[None]:
    """Remove the cluster-scoped RBAC a bootstrap into ``namespace`` creates."""
    yield
    await client.delete(api_client, CLUSTER_ROLES, None, f"fluxd-{namespace}")
    for name in (f"fluxd-{namespace}", f"fluxd-cluster-admin-{namespace}"):
        await client.delete(api_client, BINDINGS, None, name)


def _bootstrap_args(url: str, namespace: str, *extra: str) -> list[str]:
    return [
        "bootstrap",
        "git",
        f"--url={url}",
        "--branch=main",
        f"--path=./{PATH}",
        f"--namespace={namespace}",
        "--timeout=60s",
        *extra,
    ]


def _tree(remote: GitRemote, branch: str = "main") -> list[str]:
    return remote.git("ls-tree", "-r", "--name-only", branch, cwd=remote.bare).splitlines()


def _secret_data(secret: dict[str, object]) -> dict[str, bytes]:
    data = secret.get("data") or {}
    assert isinstance(data, dict)
    return {key: base64.b64decode(value) for key, value in data.items()}


async def _assert_synced(fluxd: Fluxd, remote: GitRemote) -> None:
    revision = f"main@sha1:{remote.rev('refs/heads/main')}"
    name = fluxd.namespace
    source = await fluxd.get(GIT_REPOSITORY, name)
    assert is_ready_now(source), source.get("status")
    assert source["status"]["artifact"]["revision"] == revision
    kustomization = await fluxd.get(KUSTOMIZATION, name)
    assert is_ready_now(kustomization), kustomization.get("status")
    assert kustomization["status"]["lastAppliedRevision"] == revision
    assert kustomization["spec"]["path"] == f"./{PATH}"


async def test_bootstrap_over_ssh_syncs_the_path_and_a_rerun_changes_nothing(
    fluxd: Fluxd,
    cluster_rbac_removed: None,
    kubeconfig: Path,
    git_remote: GitRemote,
    git_root: RepoRoot,
    git_sshd: SSHServer,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "identity"
    key_file.write_bytes(git_sshd.keys.identity)
    url = git_sshd.url(git_remote, git_root)
    args = _bootstrap_args(url, fluxd.namespace, f"--private-key-file={key_file}")

    code, _, err = await run_fluxd(kubeconfig, *args)

    assert code == 0, err
    head = git_remote.rev("refs/heads/main")
    folder = f"{PATH}/{fluxd.namespace}"
    assert _tree(git_remote) == [
        f"{folder}/gotk-components.yaml",
        f"{folder}/gotk-sync.yaml",
        f"{folder}/kustomization.yaml",
    ]
    # One root commit on the new branch of the empty repository, authored as Flux.
    assert git_remote.git("rev-list", "--count", "main", cwd=git_remote.bare) == "1"
    author = git_remote.git("log", "-1", "--format=%an", "main", cwd=git_remote.bare)
    assert author == "Flux"
    lines = err.splitlines()
    assert f'► cloning branch "main" from Git repository "{url}"' in lines
    assert f'✔ committed component manifests to "main" ("{head}")' in lines
    assert "✔ reconciled sync configuration" in lines
    ns = fluxd.namespace
    assert f'◎ waiting for GitRepository "{ns}/{ns}" to be reconciled' in lines
    assert lines[-1] == "✔ bootstrap finished"
    secret = _secret_data(await client.get(fluxd.api, SECRETS, ns, ns))
    assert secret["identity"] == git_sshd.keys.identity
    assert secret["known_hosts"] == git_sshd.keys.known_hosts  # scanned from the server
    assert (
        secret["identity.pub"].decode()
        == load_deploy_key(git_sshd.keys.identity, None, source="key").public
    )
    await _assert_synced(fluxd, git_remote)
    assert await client.get(fluxd.api, DEPLOYMENTS, ns, "fluxd")

    # What is pushed to the bootstrap path from then on is applied by fluxd.
    git_remote.git("fetch", "-q", "origin", "main")
    git_remote.git("checkout", "-q", "-B", "main", "FETCH_HEAD")
    configmap = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\n  namespace: {ns}\n"
        "data:\n  greeting: hello\n"
    )
    pushed = git_remote.commit({f"{PATH}/app.yaml": configmap}, "add app", branch="main")
    await fluxd.patch(
        GIT_REPOSITORY,
        ns,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}},
    )
    await fluxd.wait_for(
        KUSTOMIZATION,
        ns,
        lambda k: (k.get("status") or {}).get("lastAppliedRevision") == f"main@sha1:{pushed}",
        "the pushed commit applied",
    )
    applied = await client.get(fluxd.api, CONFIGMAPS, ns, "from-git")
    assert applied["data"] == {"greeting": "hello"}

    code, _, err = await run_fluxd(kubeconfig, *args)

    assert code == 0, err
    assert git_remote.rev("refs/heads/main") == pushed  # no new commit
    assert "✔ component manifests are up to date" in err.splitlines()
    await _assert_synced(fluxd, git_remote)


async def test_bootstrap_over_http_with_basic_auth(
    fluxd: Fluxd,
    cluster_rbac_removed: None,
    kubeconfig: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    git_remote.commit({"README.md": "hello\n"}, "first", branch="master")
    url = git_http.url(git_remote, "basic")
    args = _bootstrap_args(
        url,
        fluxd.namespace,
        f"--username={HTTP_USERNAME}",
        f"--password={HTTP_PASSWORD}",
        "--allow-insecure-http",
        "--author-name=Bootstrapper",
        "--author-email=boot@example.com",
        "--commit-message-appendix=[ci skip]",
    )

    code, out, err = await run_fluxd(kubeconfig, *args)

    assert code == 0, err
    assert HTTP_PASSWORD not in out + err
    # A new branch beside master, which is left as it was.
    assert _tree(git_remote, "master") == ["README.md"]
    assert len(_tree(git_remote)) == 3
    log = git_remote.git("log", "-1", "--format=%an <%ae>%n%B", "main", cwd=git_remote.bare)
    assert log.splitlines()[0] == "Bootstrapper <boot@example.com>"
    assert log.rstrip().endswith("[ci skip]")
    ns = fluxd.namespace
    secret = _secret_data(await client.get(fluxd.api, SECRETS, ns, ns))
    assert secret == {"username": HTTP_USERNAME.encode(), "password": HTTP_PASSWORD.encode()}
    source = await fluxd.get(GIT_REPOSITORY, ns)
    assert source["spec"]["url"] == url
    await _assert_synced(fluxd, git_remote)
    first = git_remote.rev("refs/heads/main")

    # Another image is an upgrade: one commit on top, changing the components only.
    code, _, err = await run_fluxd(kubeconfig, *args, "--components-image=registry.local/fluxd:2")

    assert code == 0, err
    second = git_remote.rev("refs/heads/main")
    assert git_remote.git("rev-parse", "main^", cwd=git_remote.bare) == first
    changed = git_remote.git("diff", "--name-only", first, second, cwd=git_remote.bare)
    assert changed == f"{PATH}/{ns}/gotk-components.yaml"
    deployment = await client.get(fluxd.api, DEPLOYMENTS, ns, "fluxd")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.local/fluxd:2"
    )
    await _assert_synced(fluxd, git_remote)


async def test_a_generated_deploy_key_is_printed_kept_and_used_once_accepted(
    fluxd: Fluxd,
    cluster_rbac_removed: None,
    kubeconfig: Path,
    git_remote: GitRemote,
    git_root: RepoRoot,
    git_sshd: SSHServer,
) -> None:
    url = git_sshd.url(git_remote, git_root)
    args = _bootstrap_args(url, fluxd.namespace)

    code, out, err = await run_fluxd(kubeconfig, *args)

    # The server does not know the new key yet: the key is printed and kept, nothing
    # is pushed, and the failure says what to do.
    assert (code, out) == (1, ""), err
    printed = [line for line in err.splitlines() if line.startswith("✚ deploy key: ")]
    assert len(printed) == 1
    public = printed[0].removeprefix("✚ deploy key: ")
    assert public.startswith("ssh-ed25519 ")
    failures = [line for line in err.splitlines() if line.startswith("✗")]
    assert len(failures) == 1
    assert "SSH authentication failed" in failures[0]
    assert "give the deploy key printed above write access" in failures[0]
    ns = fluxd.namespace
    secret = _secret_data(await client.get(fluxd.api, SECRETS, ns, ns))
    assert secret["identity.pub"].decode() == public
    assert secret["known_hosts"] == git_sshd.keys.known_hosts
    assert await client.get(fluxd.api, DEPLOYMENTS, ns, "fluxd", missing_ok=True) is None
    assert git_remote.git("for-each-ref", cwd=git_remote.bare) == ""

    # The user registers the key with the server; the next run uses it, no new key.
    authorized = git_root.path.parent / "sshd" / "authorized_keys"
    with authorized.open("a") as keys:
        keys.write(f"{public}\n")
    code, _, err = await run_fluxd(kubeconfig, *args)

    assert code == 0, err
    assert "✚ deploy key" not in err
    assert f"✔ using the deploy key in Secret {ns}/{ns}" in err.splitlines()
    assert _secret_data(await client.get(fluxd.api, SECRETS, ns, ns)) == secret
    await _assert_synced(fluxd, git_remote)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ssh-refused", "cannot reach the SSH server 127.0.0.1:{port}: connection refused"),
        ("http-refused", "failed to clone repository: unable to list the branches of"),
        ("http-bad-password", "authentication failed (HTTP 401)"),
    ],
)
async def test_an_unusable_repository_fails_in_one_line_and_applies_nothing(
    api_client: ApiClient,
    namespace: str,
    kubeconfig: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
    git_sshd: SSHServer,
    tmp_path: Path,
    target: str,
    expected: str,
) -> None:
    port = free_port()
    secret_password = "s3cret-Passw0rd"
    key_file = tmp_path / "identity"
    key_file.write_bytes(git_sshd.keys.identity)
    if target == "ssh-refused":
        extra = [f"--private-key-file={key_file}"]
        url = f"ssh://git@127.0.0.1:{port}/repo.git"
    else:
        extra = [f"--password={secret_password}", "--allow-insecure-http"]
        url = (
            f"http://127.0.0.1:{port}/basic/repo.git"
            if target == "http-refused"
            else git_http.url(git_remote, "basic")
        )

    code, out, err = await run_fluxd(kubeconfig, *_bootstrap_args(url, namespace, *extra))

    assert code == 1, err
    failures = [line for line in err.splitlines() if line.startswith("✗")]
    assert len(failures) == 1, err
    assert expected.format(port=port) in failures[0]
    assert secret_password not in out + err
    assert await client.get(api_client, SECRETS, namespace, namespace, missing_ok=True) is None
    assert await client.get(api_client, DEPLOYMENTS, namespace, "fluxd", missing_ok=True) is None
    binding = await client.get(api_client, BINDINGS, None, f"fluxd-{namespace}", missing_ok=True)
    assert binding is None


async def test_no_cluster_fails_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-kubeconfig"
    code, _, err = await run_fluxd(
        missing, *_bootstrap_args("https://127.0.0.1:1/repo.git", "flux-system", "-p", "pw")
    )

    assert code == 1
    assert err.splitlines() == [f"✗ kubeconfig '{missing}' does not exist"]
