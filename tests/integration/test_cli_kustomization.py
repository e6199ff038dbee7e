"""``fluxd build kustomization NAME`` and ``fluxd diff kustomization NAME`` against a
Kustomization that the daemon under test reconciles from a real git server.

The commands run as a user runs them: a separate process (``python -m fluxd``) with the
session's kubeconfig, reading the cluster and fetching the source on their own.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from fluxd.dev.demo import seed_deployment
from fluxd.kube import client
from fluxd.kube.resources import SECRETS, Resource
from tests.gitservers import GitHTTPServer, GitRemote
from tests.integration.cli import run_fluxd
from tests.integration.conftest import Fluxd, is_ready_now
from tests.integration.test_kustomization import SOPS_FIXTURES, valid_encrypted_secret

pytestmark = pytest.mark.integration

DEPLOYMENTS = Resource("apps", "v1", "deployments")
PASSWORD = "hunter2"
PLAIN_SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\n"
    f"stringData:\n  password: {PASSWORD}\n  user: admin\n"
)
EXTRA = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n"


async def reconcile(fluxd: Fluxd, name: str, token: str) -> None:
    await fluxd.patch(
        KUSTOMIZATION,
        name,
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
    )
    await fluxd.wait_for(
        KUSTOMIZATION,
        name,
        lambda o: o["status"].get("lastHandledReconcileAt") == token and is_ready_now(o),
        f"the reconcile requested as {token!r}",
    )


async def test_build_and_diff_a_reconciled_kustomization(
    fluxd: Fluxd, git_remote: GitRemote, git_http: GitHTTPServer, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = fluxd.namespace
    sha = git_remote.commit(
        {
            "deploy/my-app.yaml": seed_deployment("default", 2),
            "deploy/plain.yaml": PLAIN_SECRET,
            "deploy/sealed.yaml": valid_encrypted_secret(),
        }
    )
    await fluxd.create(
        GIT_REPOSITORY, "source", {"interval": "1h", "url": git_http.url(git_remote)}
    )
    await fluxd.secret("sops-age", {"identity.agekey": (SOPS_FIXTURES / "age.agekey").read_text()})
    await fluxd.create(
        KUSTOMIZATION,
        "apps",
        {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "source"},
            "path": "./deploy",
            "prune": True,
            "targetNamespace": ns,
            "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
        },
    )
    await fluxd.wait_for(
        KUSTOMIZATION,
        "apps",
        lambda o: is_ready_now(o) and o["status"]["lastAppliedRevision"].endswith(sha),
        "applied",
    )

    # build: the objects as applied, owner labels and targetNamespace included; the
    # values of SOPS-encrypted Secrets masked as `flux build` masks them.
    code, out, err = await run_fluxd(kubeconfig, "build", "kustomization", "apps", "-n", ns)
    assert code == 0, err
    built = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(out)}
    assert set(built) == {"my-app", "plain", "db-credentials"}
    for doc in built.values():
        assert doc["metadata"]["namespace"] == ns
        assert doc["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "apps"
        assert doc["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"] == ns
    sealed = built["db-credentials"]
    assert "sops" not in sealed
    assert set(sealed["data"].values()) == {base64.b64encode(b"**SOPS**").decode()}

    # A push the GitRepository has not fetched yet: the commands build the revision it
    # serves (and the daemon applies), not the branch tip.
    git_remote.commit({"deploy/my-app.yaml": seed_deployment("default", 3)})
    code, out, err = await run_fluxd(kubeconfig, "build", "kustomization", "apps", "-n", ns)
    assert code == 0, err
    assert "replicas: 2\n" in out

    # In sync (the encrypted Secret decrypted as the daemon does): nothing to show.
    code, out, err = await run_fluxd(kubeconfig, "diff", "kustomization", "apps", "-n", ns)
    assert (code, out) == (0, ""), err

    # kubectl scale and a hand-edited Secret: both drifted, the Secret's values hidden.
    await client.patch(fluxd.api, DEPLOYMENTS, ns, "my-app", {"spec": {"replicas": 5}})
    await client.patch(
        fluxd.api, SECRETS, ns, "plain", {"data": {"password": base64.b64encode(b"x").decode()}}
    )
    code, out, err = await run_fluxd(kubeconfig, "diff", "kustomization", "apps", "-n", ns)
    assert code == 1, err
    assert f"► Deployment/{ns}/my-app drifted\n" in out
    assert "-  replicas: 5\n" in out
    assert "+  replicas: 2\n" in out
    assert f"► Secret/{ns}/plain drifted\n" in out
    assert "-  password: '*** (before)'\n" in out
    assert "+  password: '*** (after)'\n" in out
    assert "  user: '***'\n" in out
    for secret in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), "eA=="):
        assert secret not in out
    assert "db-credentials" not in out

    # A local directory, built with the in-cluster fields: a new file is created, a file
    # missing from it would be pruned.
    local = tmp_path / "deploy"
    local.mkdir()
    (local / "my-app.yaml").write_text(seed_deployment("default", 5))
    (local / "plain.yaml").write_text(PLAIN_SECRET.replace(PASSWORD, "x"))
    (local / "extra.yaml").write_text(EXTRA)
    code, out, err = await run_fluxd(
        kubeconfig, "diff", "kustomization", "apps", "-n", ns, "--path", str(local)
    )
    assert code == 1, err
    assert out.splitlines() == [
        f"► ConfigMap/{ns}/extra created",
        f"► Secret/{ns}/db-credentials deleted",
    ]
    code, out, err = await run_fluxd(
        kubeconfig, "build", "kustomization", "apps", "-n", ns, "--path", str(local)
    )
    assert code == 0, err
    assert "name: extra\n" in out
    assert f"namespace: {ns}\n" in out

    # The next reconcile reverts the drift: nothing left to show.
    await reconcile(fluxd, "apps", "revert")
    code, out, err = await run_fluxd(kubeconfig, "diff", "kustomization", "apps", "-n", ns)
    assert (code, out) == (0, ""), err


async def test_unknown_kustomization_and_unsupported_source_are_errors(
    fluxd: Fluxd, kubeconfig: Path
) -> None:
    ns = fluxd.namespace
    code, out, err = await run_fluxd(kubeconfig, "diff", "kustomization", "nope", "-n", ns)
    assert (code, out) == (2, "")
    assert f"Kustomization '{ns}/nope' not found" in err
    code, out, err = await run_fluxd(kubeconfig, "build", "kustomization", "nope", "-n", ns)
    assert (code, out) == (1, "")
    assert f"Kustomization '{ns}/nope' not found" in err

    await fluxd.create(
        KUSTOMIZATION,
        "from-oci",
        {
            "interval": "1h",
            "sourceRef": {"kind": "OCIRepository", "name": "somewhere"},
            "path": ".",
            "prune": True,
        },
    )
    code, out, err = await run_fluxd(kubeconfig, "diff", "kustomization", "from-oci", "-n", ns)
    assert (code, out) == (2, "")
    assert "source kind OCIRepository is not supported yet" in err
