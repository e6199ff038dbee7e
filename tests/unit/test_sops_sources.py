"""SOPS-encrypted files a build reads whole: found through the kustomizations reachable
from the path, decrypted before the build as Flux's kustomize-controller does.

The encrypted fixtures were made by the real ``sops`` (``tests/fixtures/sops``); their
``*.dec.*`` twins are what ``sops --decrypt`` printed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fluxd.api import KUSTOMIZATION
from fluxd.build.kustomization import SopsMode, build_objects
from fluxd.kube.objects import ObjectApi
from fluxd.kustomize import KustomizeError, Overlay, source_files
from fluxd.runtime.errors import ReconcileError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sops"
AGE_KEYS = {"identity.agekey": (FIXTURES / "age.agekey").read_bytes()}
DECRYPTION = {"provider": "sops", "secretRef": {"name": "sops-keys"}}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def found(files: dict[str, str], path: str = "app", **options: Any) -> list[tuple[str, str, str]]:
    """(path, field, name) of each source file, in order."""
    encoded = {name: text.encode() for name, text in files.items()}
    return [
        (source.path, source.field, source.name)
        for source in source_files(encoded, path, **options)
    ]


# -- finding the files -------------------------------------------------------------------------


def test_sources_of_nested_resource_directories_and_components() -> None:
    files = {
        "app/kustomization.yaml": (
            "resources:\n- base\n- ../shared/settings.yaml\n"
            "- https://github.com/example/repo//deploy?ref=main\n"
            "components:\n- ../components/extra\n"
            "secretGenerator:\n"
            "- name: creds\n"
            "  files:\n  - .dockerconfigjson=secrets/registry.enc.json\n  - plain.txt\n"
            "  envs:\n  - env/app.env\n"
            "patches:\n- path: patches/replicas.yaml\n"
            '- patch: \'[{"op": "remove", "path": "/data"}]\'\n'
            "  target:\n    kind: ConfigMap\n"
        ),
        "app/secrets/registry.enc.json": "{}",
        "app/plain.txt": "plain",
        "app/env/app.env": "A=1\n",
        "app/patches/replicas.yaml": "kind: Deployment\n",
        "app/base/kustomization.yaml": (
            "resources:\n- nested\n- deployment.yaml\n"
            "secretGenerator:\n- name: base\n  envs:\n  - base.txt\n"
        ),
        "app/base/base.txt": "B=2\n",
        "app/base/deployment.yaml": "kind: Deployment\n",
        "app/base/nested/kustomization.yaml": (
            "resources:\n- ../deployment.yaml\npatches:\n- path: ../../../shared/patch.json\n"
        ),
        "shared/settings.yaml": "kind: ConfigMap\n",
        "shared/patch.json": "[]",
        "components/extra/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "secretGenerator:\n- name: extra\n  files:\n  - token=token.bin\n"
        ),
        "components/extra/token.bin": "t",
    }
    assert found(files) == [
        ("app/secrets/registry.enc.json", "files", ".dockerconfigjson"),
        ("app/plain.txt", "files", "plain.txt"),
        ("app/env/app.env", "envs", "env/app.env"),
        ("app/patches/replicas.yaml", "patches", "patches/replicas.yaml"),
        ("app/base/base.txt", "envs", "base.txt"),
        ("shared/patch.json", "patches", "../../../shared/patch.json"),
        ("components/extra/token.bin", "files", "token"),
    ]


def test_each_file_and_directory_is_visited_once_and_missing_files_are_skipped() -> None:
    files = {
        "app/kustomization.yaml": (
            "resources:\n- one\n- two\n"
            "secretGenerator:\n- name: s\n  envs:\n  - shared.env\n  - absent.env\n"
            "  files:\n  - key=shared.env\n"
        ),
        "app/shared.env": "A=1\n",
        "app/one/kustomization.yaml": "resources:\n- ../two\n",
        "app/two/kustomization.yaml": (
            "resources:\n- ../one\nsecretGenerator:\n- name: t\n  envs:\n  - ../shared.env\n"
            "  - ../../outside.env\n"
        ),
    }
    # Files come before envs within an entry, as Flux visits them; the first one wins.
    assert found(files) == [("app/shared.env", "files", "key")]


def test_overlay_components_and_a_generated_top_kustomization_are_followed() -> None:
    files = {
        # No kustomization at the path: Flux generates one listing the directory below.
        "app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n",
        "app/sub/kustomization.yaml": "secretGenerator:\n- name: sub\n  envs:\n  - sub.env\n",
        "app/sub/sub.env": "A=1\n",
        "comp/kustomization.yaml": (
            "kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\n"
            "patches:\n- path: patch.yaml\n"
        ),
        "comp/patch.yaml": "kind: ConfigMap\n",
    }
    overlay = Overlay(components=["../comp", "../missing"])
    assert found(files, overlay=overlay) == [], "the build would fail: no kustomization"
    assert found(files, generate_missing=True, overlay=overlay) == [
        ("app/sub/sub.env", "envs", "sub.env"),
        ("comp/patch.yaml", "patches", "patch.yaml"),
    ]


def test_an_invalid_kustomization_file_fails_as_the_build_would() -> None:
    with pytest.raises(KustomizeError, match="unknown field"):
        found({"app/kustomization.yaml": "resources:\n- b\n", "app/b/kustomization.yaml": "x: 1\n"})


# -- decrypting them before the build ----------------------------------------------------------


class KeysOnly(ObjectApi):
    """The build's seam to the API server, holding only the decryption Secret."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        return self.keys


async def build(
    files: dict[str, bytes],
    keys: dict[str, bytes] | None = None,
    sops: SopsMode = "decrypt",
    **fields: Any,
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
        files,
        spec,
        path="app",
        namespace="apps",
        name="web",
        objects=KeysOnly(keys or {}),
        sops=sops,
    )


ENV_KUSTOMIZATION = (
    b"namespace: apps\nsecretGenerator:\n- name: app\n  envs:\n  - config/app.enc.env\n"
)


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


async def test_an_encrypted_dotenv_envs_file_is_decrypted_before_the_build() -> None:
    files = {
        "app/kustomization.yaml": ENV_KUSTOMIZATION,
        "app/config/app.enc.env": fixture("app.enc.env"),
    }
    original = dict(files)
    [secret] = await build(files, AGE_KEYS, decryption=DECRYPTION)
    assert decoded(secret) == {
        "DB_USER": "admin",
        "DB_PASS": "s3cr3t=with=equals",
        "MULTI": "line one\\nline two",
        "EMPTY": "",
        "API_unencrypted": "clear",
    }
    assert files == original, "the artifact's files map must not be modified"
    # The name hash covers the bytes sops prints: the same as building the plaintext.
    plain = {**files, "app/config/app.enc.env": fixture("app.dec.env")}
    [expected] = await build(plain)
    assert secret["metadata"]["name"] == expected["metadata"]["name"]
    assert secret["metadata"]["name"].startswith("app-")
    assert secret == expected


async def test_envs_of_any_name_default_to_dotenv_and_files_take_the_key_format() -> None:
    kustomization = (
        b"secretGenerator:\n- name: app\n  envs:\n  - app.secret\n"
        b"  files:\n  - .dockerconfigjson=registry.enc\n  - plain.txt\n"
        b"  type: kubernetes.io/dockerconfigjson\n"
    )
    files = {
        "app/kustomization.yaml": kustomization,
        "app/app.secret": fixture("app.enc.env"),
        "app/registry.enc": fixture("registry.enc.json"),
        "app/plain.txt": b"not encrypted\n",
    }
    [secret] = await build(files, AGE_KEYS, decryption=DECRYPTION)
    data = secret["data"]
    assert base64.b64decode(data["DB_USER"]) == b"admin"
    assert base64.b64decode(data[".dockerconfigjson"]) == fixture("registry.dec.json")
    assert base64.b64decode(data["plain.txt"]) == b"not encrypted\n"


async def test_without_decryption_or_when_masking_the_file_is_left_encrypted() -> None:
    files = {
        "app/kustomization.yaml": ENV_KUSTOMIZATION,
        "app/config/app.enc.env": fixture("app.enc.env"),
    }
    for secret in (
        (await build(files))[0],
        (await build(files, sops="mask", decryption=DECRYPTION))[0],
    ):
        assert decoded(secret)["DB_USER"].startswith("ENC[AES256_GCM,")


async def test_a_file_that_fails_to_decrypt_fails_the_build_naming_it() -> None:
    files = {
        "app/kustomization.yaml": ENV_KUSTOMIZATION,
        "app/config/app.enc.env": fixture("app.enc.env"),
    }
    wrong = {"identity.agekey": fixture("other.agekey")}
    with pytest.raises(ReconcileError) as caught:
        await build(files, wrong, decryption=DECRYPTION)
    assert caught.value.reason == "BuildFailed"
    message = str(caught.value)
    assert "app/config/app.enc.env" in message
    assert "app/kustomization.yaml" in message
