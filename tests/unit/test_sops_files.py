"""SOPS-encrypted files (secretGenerator sources, Secret data entries).

Each ``*.enc.*`` fixture was encrypted by the real ``sops`` and its ``*.dec.*`` twin is
what ``sops --decrypt`` printed for it (see ``tests/fixtures/sops/generate.sh``): the
output must match byte for byte, since a generated Secret's name hash covers it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from fluxd.build.sops import (
    DecryptionError,
    Format,
    decrypt_file,
    decrypt_secret_data,
    detect_format,
    format_for_path,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sops"
KEYS = {"age.agekey": (FIXTURES / "age.agekey").read_bytes()}


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("encrypted", "expected", "fmt"),
    [
        ("app.enc.env", "app.dec.env", "dotenv"),
        ("registry.enc.json", "registry.dec.json", "json"),
        ("blob.enc.bin", "blob.dec.bin", "binary"),
    ],
)
def test_files_decrypt_byte_for_byte_like_sops(encrypted: str, expected: str, fmt: Format) -> None:
    assert decrypt_file(read(encrypted), fmt, fmt, KEYS) == read(expected)
    assert decrypt_file(read(encrypted), fmt, fmt, KEYS, verify_mac=True) == read(expected)


def test_dotenv_comments_and_escaped_newlines_survive() -> None:
    text = decrypt_file(read("app.enc.env"), "dotenv", "dotenv", KEYS).decode()
    assert text.startswith("# database settings\n")
    assert "MULTI=line one\\nline two\n" in text
    assert "DB_PASS=s3cr3t=with=equals\n" in text


def test_binary_payload_need_not_be_utf8() -> None:
    assert b"\xff\xfe" in decrypt_file(read("blob.enc.bin"), "binary", "binary", KEYS)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("app.enc.env", "dotenv"),
        ("registry.enc.json", "json"),
        ("blob.enc.bin", "json"),  # a binary file is a JSON envelope
        ("secret.age.enc.yaml", "yaml"),
        ("secret.yaml", None),
    ],
)
def test_format_detection_by_marker(name: str, fmt: Format | None) -> None:
    assert detect_format(read(name)) == fmt


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("a.yaml", "yaml"),
        ("a.yml", "yaml"),
        ("a.json", "json"),
        (".dockerconfigjson", "json"),
        ("a.env", "dotenv"),
        ("a.ini", "ini"),
        ("a.txt", "binary"),
        ("password", "binary"),
    ],
)
def test_format_for_path_follows_flux(path: str, fmt: Format) -> None:
    assert format_for_path(path) == fmt


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "generated-abc123", "namespace": "apps"},
        "data": data,
    }


def test_secret_data_entries_are_decrypted_by_key_name() -> None:
    obj = secret(
        {
            "app.env": b64(read("app.enc.env")),
            "registry.json": b64(read("registry.enc.json")),
            "blob": b64(read("blob.enc.bin")),
            "plain": b64(b"hello"),
            "not-base64": "%%%",
        }
    )
    result = decrypt_secret_data(obj, KEYS)
    assert base64.b64decode(result["data"]["app.env"]) == read("app.dec.env")
    assert base64.b64decode(result["data"]["registry.json"]) == read("registry.dec.json")
    assert base64.b64decode(result["data"]["blob"]) == read("blob.dec.bin")
    assert result["data"]["plain"] == b64(b"hello")
    assert result["data"]["not-base64"] == "%%%"
    assert obj["data"]["app.env"] == b64(read("app.enc.env"))  # input untouched


def test_json_file_under_an_env_key_is_written_as_dotenv_when_flat() -> None:
    # Input format from the marker, output format from the key name, as in Flux.
    obj = secret({"settings.env": b64(read("configmap.enc.json"))})
    with pytest.raises(DecryptionError, match="nested value"):
        decrypt_secret_data(obj, KEYS)


def test_secret_data_error_names_secret_and_field() -> None:
    obj = secret({"app.env": b64(read("app.enc.env"))})
    with pytest.raises(DecryptionError, match=r"'apps/generated-abc123' Secret field 'app\.env'"):
        decrypt_secret_data(obj, {})


def test_yaml_output_is_refused_clearly() -> None:
    with pytest.raises(DecryptionError, match="writing decrypted YAML is not supported"):
        decrypt_file(read("secret.age.enc.yaml"), "yaml", "yaml", KEYS)


def test_yaml_input_can_be_written_as_json() -> None:
    # Checked against `sops --decrypt --output-type json secret.age.enc.yaml`.
    out = decrypt_file(read("secret.age.enc.yaml"), "yaml", "json", KEYS)
    assert out.startswith(b'{\n\t"apiVersion": "v1",\n\t"kind": "Secret",\n')
    assert b'\t\t"port": 5432,\n\t\t"ratio": 0.25,\n\t\t"tls": true,\n' in out


def test_non_secrets_are_left_alone() -> None:
    obj = {"kind": "ConfigMap", "data": {"app.env": b64(read("app.enc.env"))}}
    assert decrypt_secret_data(obj, KEYS) == obj


def test_file_without_metadata_is_an_error() -> None:
    with pytest.raises(DecryptionError, match="no sops metadata"):
        decrypt_file(b'{"a": 1}', "json", "json", KEYS)
