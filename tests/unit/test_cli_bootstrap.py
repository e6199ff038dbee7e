"""The pure parts of ``fluxd bootstrap git``: flags, the files it commits, the sync
objects, when it calls the cluster synced, and deploy keys."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ruamel.yaml import YAML

from fluxd.api.install import InstallOptions, install_objects
from fluxd.cli.bootstrap import sync_url
from fluxd.cli.bootstrap_repo import (
    repository_files,
    repository_path,
    sync_objects,
    synced_state,
)
from fluxd.cli.deploy_key import DeployKeyError, generate_deploy_key, load_deploy_key
from fluxd.cli.main import main


def _load_all(data: bytes) -> list[Any]:
    return [doc for doc in YAML(typ="safe").load_all(data.decode()) if doc is not None]


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("./clusters/my-cluster", "clusters/my-cluster"),
        ("clusters/my-cluster/", "clusters/my-cluster"),
        ("./a/../b", "b"),
        ("./", ""),
    ],
)
def test_the_path_is_cleaned(given: str, clean: str) -> None:
    assert repository_path(given) == clean


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "--path is required"),
        ("/clusters", "must be relative"),
        ("../elsewhere", "leaves the repository"),
        ("a/../../b", "leaves the repository"),
    ],
)
def test_a_path_outside_the_repository_is_refused(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        repository_path(given)


def test_sync_objects_are_fluxs_gotk_sync() -> None:
    source, kustomization = sync_objects(
        namespace="flux-system",
        url="ssh://git@example.com/org/fleet.git",
        branch="main",
        interval="1m",
        path="clusters/my-cluster",
        secret_name="flux-system",
    )

    assert source == {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {
            "interval": "1m0s",
            "ref": {"branch": "main"},
            "secretRef": {"name": "flux-system"},
            "url": "ssh://git@example.com/org/fleet.git",
        },
    }
    assert kustomization == {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {
            "interval": "10m0s",
            "path": "./clusters/my-cluster",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        },
    }


def test_the_repository_root_syncs_as_dot_slash() -> None:
    _, kustomization = sync_objects(
        namespace="ns", url="https://h/r", branch="b", interval="30s", path="", secret_name="s"
    )
    assert kustomization["spec"]["path"] == "./"


def test_the_three_files_sit_in_the_namespace_folder() -> None:
    options = InstallOptions(namespace="fleet", image="registry.local/fluxd:1", cluster_admin=True)
    sync = sync_objects(
        namespace="fleet",
        url="https://h/r",
        branch="main",
        interval="1m",
        path="c/x",
        secret_name="fleet",
    )

    files = repository_files(path="c/x", options=options, sync=sync)

    assert sorted(files) == [
        "c/x/fleet/gotk-components.yaml",
        "c/x/fleet/gotk-sync.yaml",
        "c/x/fleet/kustomization.yaml",
    ]
    assert _load_all(files["c/x/fleet/gotk-components.yaml"]) == install_objects(options)
    assert _load_all(files["c/x/fleet/gotk-sync.yaml"]) == sync
    assert _load_all(files["c/x/fleet/kustomization.yaml"]) == [
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["gotk-components.yaml", "gotk-sync.yaml"],
        }
    ]
    # The same flags give the same bytes: a re-run has nothing to commit.
    assert repository_files(path="c/x", options=options, sync=sync) == files


def _status(
    ready: str, *, generation: int = 2, observed: int = 2, revision: str = "main@sha1:abc"
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "lastAppliedRevision": revision,
            "conditions": [{"type": "Ready", "status": ready, "message": "m"}],
        },
    }


def test_synced_means_ready_at_the_pushed_revision_for_the_current_generation() -> None:
    assert synced_state(_status("True"), "main@sha1:abc") == (True, None)
    assert synced_state(_status("True", revision="main@sha1:old"), "main@sha1:abc") == (
        False,
        None,
    )
    assert synced_state(_status("True", observed=1), "main@sha1:abc") == (False, None)
    assert synced_state(_status("False"), "main@sha1:abc") == (False, None)
    source = {
        "metadata": {},
        "status": {
            "artifact": {"revision": "main@sha1:abc"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    assert synced_state(source, "main@sha1:abc") == (True, None)


def test_stalled_is_a_failure_with_its_message() -> None:
    obj = _status("False")
    obj["status"]["conditions"].append(
        {"type": "Stalled", "status": "True", "message": "invalid path"}
    )
    assert synced_state(obj, "main@sha1:abc") == (False, "invalid path")


@pytest.mark.parametrize(
    ("given", "username", "synced"),
    [
        ("ssh://example.com/org/r.git", "git", "ssh://git@example.com/org/r.git"),
        ("ssh://deploy@example.com:2222/r.git", "git", "ssh://deploy@example.com:2222/r.git"),
        ("https://user:pw@example.com/r.git", "git", "https://example.com/r.git"),
        ("http://example.com:8080/r.git", "u", "http://example.com:8080/r.git"),
    ],
)
def test_the_cluster_fetches_a_url_without_credentials(
    given: str, username: str, synced: str
) -> None:
    assert sync_url(given, username) == synced


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="scheme 'git' not supported"):
        sync_url("git://example.com/r.git", "git")


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--path=c"], "--url is required"),
        (["--url=ssh://h/r", "--path=../c"], "leaves the repository"),
        (["--url=http://h/r", "--path=c", "-p", "pw"], "--allow-insecure-http"),
        (["--url=https://h/r", "--path=c"], "needs --password"),
        (["--url=https://h/r", "--path=c", "-p", "pw", "--private-key-file=k"], "ssh:// URL"),
        (["--url=ssh://h/r", "--path=c", "--with-bearer-token"], "http(s):// URL"),
        (["--url=ssh://h/r", "--path=c", "--interval=soon"], "soon"),
    ],
)
def test_bad_flags_fail_in_one_line_before_anything_is_touched(
    flags: list[str], problem: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("GIT_PASSWORD", raising=False)

    code = main(["bootstrap", "git", *flags, "--kubeconfig=/nonexistent"])

    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1
    assert err.startswith("✗ ")
    assert problem in err


def test_a_generated_deploy_key_loads_back_to_the_same_public_key() -> None:
    key = generate_deploy_key()

    assert key.public.startswith("ssh-ed25519 ")
    assert load_deploy_key(key.private, None, source="k").public == key.public


def test_an_encrypted_key_needs_its_passphrase() -> None:
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"secret"),
    )

    with pytest.raises(DeployKeyError, match="encrypted: give its passphrase with --password"):
        load_deploy_key(private, None, source="key.pem")
    assert load_deploy_key(private, "secret", source="key.pem").public.startswith("ssh-ed25519")


def test_a_file_that_is_no_key_is_refused_by_name() -> None:
    with pytest.raises(DeployKeyError, match=r"notes\.txt is not a private key"):
        load_deploy_key(b"hello", None, source="notes.txt")
