"""The build step the reconciler and ``fluxd build`` share: Flux's order (decrypt, then
substitute, then owner labels, then ``commonMetadata``), decryption off the event loop,
and errors that name what the user wrote."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fluxd.api import KUSTOMIZATION
from fluxd.build.kustomization import build_objects
from fluxd.kube.objects import ObjectApi
from fluxd.runtime.errors import ReconcileError

SOPS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sops"
PGP_KEY = {"identity.asc": (SOPS_FIXTURES / "pgp.asc").read_bytes()}


class KeysOnly(ObjectApi):
    """The build's seam to the API server, holding only the decryption Secret."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        return self.keys


async def build(
    files: dict[str, str], keys: dict[str, bytes] | None = None, **fields: Any
) -> list[dict[str, Any]]:
    spec = KUSTOMIZATION.parse_spec(
        {
            "spec": {
                "interval": "1h",
                "sourceRef": {"kind": "GitRepository", "name": "source"},
                "path": "app",
                "prune": True,
                **fields,
            }
        }
    )
    return await build_objects(
        {path: text.encode() for path, text in files.items()},
        spec,
        path="app",
        namespace="apps",
        name="web",
        objects=KeysOnly(keys or {}),
    )


def configmap(name: str, metadata: str = "", data: str = "  value: '1'\n") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\n"
        f"{metadata}data:\n{data}"
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pgp_encrypted_secret(string_data: dict[str, str]) -> str:
    """A Secret as ``sops --encrypt --pgp FP --encrypted-regex '^(data|stringData)$'``
    writes it, made without the sops binary: each value sealed with AES-256-GCM under a
    fresh data key (32-byte IV, the key path plus ``:`` as additional data), the data key
    sealed by gpg to the fixture's PGP key. The MAC is a placeholder: Flux never checks it.
    """
    data_key = os.urandom(32)

    def seal(value: str, aad: str) -> str:
        iv = os.urandom(32)
        sealed = AESGCM(data_key).encrypt(iv, value.encode(), aad.encode())
        return (
            f"ENC[AES256_GCM,data:{b64(sealed[:-16])},iv:{b64(iv)},"
            f"tag:{b64(sealed[-16:])},type:str]"
        )

    fingerprint = yaml.safe_load((SOPS_FIXTURES / "secret.pgp.enc.yaml").read_text())["sops"][
        "pgp"
    ][0]["fp"]
    home = tempfile.mkdtemp(prefix="gpg-")
    base = ["gpg", "--homedir", home, "--batch", "--quiet", "--no-tty"]
    try:
        subprocess.run([*base, "--import"], input=PGP_KEY["identity.asc"], check=True)
        sealed_key = subprocess.run(
            [*base, "--trust-model", "always", "--armor", "--encrypt", "-r", fingerprint],
            input=data_key,
            check=True,
            capture_output=True,
        ).stdout.decode()
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    lastmodified = "2026-01-01T00:00:00Z"
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "apps"},
        "stringData": {
            key: seal(value, f"stringData:{key}:") for key, value in string_data.items()
        },
        "sops": {
            "pgp": [{"fp": fingerprint, "enc": sealed_key, "created_at": lastmodified}],
            "encrypted_regex": "^(data|stringData)$",
            "lastmodified": lastmodified,
            "mac": seal("0" * 128, lastmodified),
            "version": "3.13.3",
        },
    }
    return str(yaml.safe_dump(document, sort_keys=False))


async def test_decrypted_values_are_substituted_as_in_flux() -> None:
    secret = pgp_encrypted_secret({"dsn": "postgres://${DB_HOST}/main"})
    [built] = await build(
        {"app/secret.yaml": secret},
        PGP_KEY,
        decryption={"provider": "sops", "secretRef": {"name": "sops-keys"}},
        postBuild={"substitute": {"DB_HOST": "db.prod"}},
    )
    assert built["stringData"] == {"dsn": "postgres://db.prod/main"}
    assert "sops" not in built


async def test_pgp_decryption_leaves_the_event_loop_free() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        [built] = await build(
            {"app/secret.yaml": (SOPS_FIXTURES / "secret.pgp.enc.yaml").read_text()},
            PGP_KEY,
            decryption={"provider": "sops", "secretRef": {"name": "sops-keys"}},
        )
    finally:
        task.cancel()
    assert built["data"]["username"] == "YWRtaW4="
    assert ticks > 0, "gpg ran on the event loop: every other reconcile waited for it"


async def test_a_wrong_key_names_the_object_and_the_recipient_once() -> None:
    encrypted = (SOPS_FIXTURES / "secret.regex.enc.yaml").read_text()
    other = {"other.agekey": (SOPS_FIXTURES / "other.agekey").read_bytes()}
    with pytest.raises(ReconcileError) as caught:
        await build(
            {"app/secret.yaml": encrypted},
            other,
            decryption={"provider": "sops", "secretRef": {"name": "sops-keys"}},
        )
    message = str(caught.value)
    assert caught.value.reason == "BuildFailed"
    assert "Secret/apps/db-credentials" in message
    assert message.count("SOPS decryption failed") == 1


async def test_common_metadata_comes_last_unsubstituted_and_overrides_the_manifest() -> None:
    manifest = configmap(
        "settings",
        metadata="  labels:\n    team: payments\n  annotations:\n    note: ${NOTE}\n",
    )
    [built] = await build(
        {"app/settings.yaml": manifest},
        postBuild={"substitute": {"NOTE": "substituted"}},
        commonMetadata={"labels": {"team": "platform"}, "annotations": {"docs": "${NOTE}"}},
    )
    metadata = built["metadata"]
    assert metadata["labels"] == {
        "team": "platform",
        "kustomize.toolkit.fluxcd.io/name": "web",
        "kustomize.toolkit.fluxcd.io/namespace": "apps",
    }
    # Flux sets commonMetadata at apply time, after substitution.
    assert metadata["annotations"] == {"note": "substituted", "docs": "${NOTE}"}


async def test_a_broken_spec_patch_is_named_by_its_index_in_the_spec() -> None:
    own_patch = (
        "resources:\n- settings.yaml\npatches:\n- patch: |\n    apiVersion: v1\n"
        "    kind: ConfigMap\n    metadata:\n      name: settings\n      namespace: apps\n"
    )
    files = {"app/settings.yaml": configmap("settings"), "app/kustomization.yaml": own_patch}
    with pytest.raises(ReconcileError) as caught:
        await build(files, patches=[{"patch": "kind: ConfigMap\nmetadata: [oops\n"}])
    message = str(caught.value)
    assert "spec.patches[0].patch (inline)" in message
    assert "app/kustomization.yaml" not in message, "the file does not hold this patch"
    assert "patches[1]" not in message


async def test_an_unmatched_spec_patch_is_named_and_a_file_patch_keeps_its_file() -> None:
    unmatched = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: absent\n  namespace: apps\n"
    with pytest.raises(ReconcileError) as caught:
        await build({"app/settings.yaml": configmap("settings")}, patches=[{"patch": unmatched}])
    assert "(field spec.patches[0])" in str(caught.value)

    own_broken = "resources:\n- settings.yaml\npatches:\n- patch: '[oops'\n"
    files = {"app/settings.yaml": configmap("settings"), "app/kustomization.yaml": own_broken}
    with pytest.raises(ReconcileError) as caught:
        await build(files, patches=[{"patch": unmatched}])
    assert "(in app/kustomization.yaml, field patches[0])" in str(caught.value)


async def test_flux_fields_are_an_overlay_on_the_top_kustomization() -> None:
    files = {
        "app/kustomization.yaml": (
            "resources: [deploy.yaml]\nnamespace: from-file\nnamePrefx: dropped-\n"
            "images:\n- {name: nginx, newTag: '1.0'}\n- {name: redis, newTag: '6'}\n"
        ),
        "app/deploy.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            "  template:\n    spec:\n      containers:\n"
            "      - {name: web, image: nginx}\n      - {name: cache, image: redis}\n"
        ),
        "comp/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "commonAnnotations: {component: 'yes'}\n"
        ),
    }
    # Flux rewrites the file: the unknown namePrefx is dropped, the spec's fields win.
    [deployment] = await build(
        files,
        targetNamespace="flux-target",
        namePrefix="f-",
        images=[{"name": "nginx", "newTag": "2.0"}],
        components=["../comp", "../missing"],
        ignoreMissingComponents=True,
    )
    assert deployment["metadata"]["name"] == "f-web"
    assert deployment["metadata"]["namespace"] == "flux-target"
    assert deployment["metadata"]["annotations"] == {"component": "yes"}
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["nginx:2.0", "redis:6"]


async def test_spec_components_must_exist_unless_ignored() -> None:
    files = {"app/settings.yaml": configmap("settings")}
    with pytest.raises(ReconcileError, match=re.escape("component '../gone' not found")):
        await build(files, components=["../gone"])
    [built] = await build(files, components=["../gone"], ignoreMissingComponents=True)
    assert built["metadata"]["name"] == "settings"


async def test_a_path_that_is_not_a_directory_points_at_spec_path() -> None:
    with pytest.raises(ReconcileError) as caught:
        await build({"other/settings.yaml": configmap("settings")})
    assert caught.value.message == (
        "kustomize build failed for path 'app': path 'app' is not a directory in the"
        " source artifact: check spec.path"
    )


async def test_a_secret_data_entry_holding_an_encrypted_file_is_decrypted() -> None:
    encrypted = b64((SOPS_FIXTURES / "registry.enc.json").read_bytes())
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: registry\n  namespace: apps\n"
        f"type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {encrypted}\n"
    )
    [built] = await build(
        {"app/secret.yaml": secret},
        {"identity.agekey": (SOPS_FIXTURES / "age.agekey").read_bytes()},
        decryption={"provider": "sops", "secretRef": {"name": "sops-keys"}},
    )
    plain = (SOPS_FIXTURES / "registry.dec.json").read_bytes()
    assert base64.b64decode(built["data"][".dockerconfigjson"]) == plain
