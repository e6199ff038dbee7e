"""SOPS decryption against files encrypted by the real ``sops`` (v3.13.3).

The fixtures, their plaintext sources and the test-only keys live in
``tests/fixtures/sops/``; ``generate.sh`` there rebuilds them. Decrypting an encrypted
fixture must give back exactly its plaintext source, which is what ``sops --decrypt``
gives (values restored to their types, ``sops`` metadata dropped).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fluxd.build.sops import DecryptionError, decrypt_object, is_encrypted
from fluxd.yaml import load_values

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sops"


def load(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if path.suffix == ".json":
        document: dict[str, Any] = json.loads(path.read_text())
        return document
    documents = load_values(path.read_bytes(), source=name)
    assert len(documents) == 1
    result: dict[str, Any] = documents[0]
    return result


def key(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


AGE_KEYS = {"age.agekey": key("age.agekey")}


@pytest.mark.parametrize(
    ("encrypted", "source"),
    [
        ("secret.age.enc.yaml", "secret.yaml"),
        ("secret.regex.enc.yaml", "secret.yaml"),
        ("secret.maconly.enc.yaml", "secret.yaml"),
        ("deployment.enc.yaml", "deployment.yaml"),
        ("configmap.enc.json", "configmap.json"),
    ],
)
def test_age_fixtures_decrypt_to_their_source(encrypted: str, source: str) -> None:
    obj = load(encrypted)
    assert is_encrypted(obj)
    assert decrypt_object(obj, AGE_KEYS) == load(source)
    assert decrypt_object(obj, AGE_KEYS, verify_mac=True) == load(source)


def test_types_are_restored() -> None:
    secret = decrypt_object(load("secret.age.enc.yaml"), AGE_KEYS)
    assert secret["data"] == {"username": "YWRtaW4=", "password": "czNjcjN0LXAkc3N3MHJk"}
    string_data = secret["stringData"]
    assert string_data["port"] == 5432
    assert string_data["ratio"] == 0.25
    assert string_data["tls"] is True
    assert string_data["debug"] is False
    assert string_data["empty"] == ""
    assert string_data["multiline"] == "line one\nline two\n"
    assert string_data["token_unencrypted"] == "left-in-clear"
    assert "sops" not in secret


def test_encrypted_regex_leaves_other_fields_readable() -> None:
    obj = load("secret.regex.enc.yaml")
    assert obj["metadata"]["name"] == "db-credentials"
    assert obj["stringData"]["token_unencrypted"].startswith("ENC[")  # the regex wins
    assert decrypt_object(obj, AGE_KEYS)["stringData"]["token_unencrypted"] == "left-in-clear"


def test_list_items_share_their_parents_path() -> None:
    deployment = decrypt_object(load("deployment.enc.yaml"), AGE_KEYS)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert containers[0]["args"] == ["--listen=:8080", "--verbose"]
    assert [e["value"] for e in containers[0]["env"]] == ["abc123", "3"]
    assert containers[1]["env"][0]["value"] == "s1d3car"


def test_input_object_is_not_modified() -> None:
    obj = load("secret.age.enc.yaml")
    before = copy.deepcopy(obj)
    decrypt_object(obj, AGE_KEYS)
    assert obj == before


def test_identity_file_with_comments_and_several_keys() -> None:
    combined = key("other.agekey") + b"\n" + key("age.agekey")
    assert decrypt_object(load("secret.age.enc.yaml"), {"keys.agekey": combined}) == load(
        "secret.yaml"
    )


def test_unencrypted_object_passes_through() -> None:
    source = load("secret.yaml")
    assert not is_encrypted(source)
    assert decrypt_object(source, {}) == source


def test_wrong_key_lists_the_recipients() -> None:
    recipient = re.search(r"age1[0-9a-z]+", key("age.agekey").decode())
    assert recipient is not None
    with pytest.raises(DecryptionError) as caught:
        decrypt_object(load("secret.age.enc.yaml"), {"other.agekey": key("other.agekey")})
    message = str(caught.value)
    assert "no decryption key matches" in message
    assert recipient.group() in message
    assert "other.agekey" in message


def test_no_keys_at_all() -> None:
    with pytest.raises(DecryptionError, match=r"no decryption key matches.*holds \[none\]"):
        decrypt_object(load("secret.regex.enc.yaml"), {})


def test_object_is_named_when_its_metadata_is_readable() -> None:
    with pytest.raises(DecryptionError, match=r"^Secret/apps/db-credentials: "):
        decrypt_object(load("secret.regex.enc.yaml"), {})


def test_tampered_value_fails_authentication() -> None:
    obj = load("secret.age.enc.yaml")
    other = obj["stringData"]["url"]
    obj["data"]["password"] = other  # a valid ENC[] value, but sealed for another path
    with pytest.raises(DecryptionError, match="'data:password' failed authentication"):
        decrypt_object(obj, AGE_KEYS)


def test_removed_value_is_a_mac_mismatch() -> None:
    obj = load("secret.regex.enc.yaml")
    del obj["stringData"]["port"]
    with pytest.raises(DecryptionError, match="MAC mismatch"):
        decrypt_object(obj, AGE_KEYS, verify_mac=True)


def test_edited_cleartext_value_is_a_mac_mismatch() -> None:
    obj = load("secret.regex.enc.yaml")
    obj["metadata"]["labels"]["app"] = "evil"
    with pytest.raises(DecryptionError, match="MAC mismatch"):
        decrypt_object(obj, AGE_KEYS, verify_mac=True)


def test_mac_only_encrypted_ignores_cleartext_edits() -> None:
    obj = load("secret.maconly.enc.yaml")
    obj["metadata"]["labels"]["app"] = "changed"
    result = decrypt_object(obj, AGE_KEYS, verify_mac=True)
    assert result["metadata"]["labels"]["app"] == "changed"


def test_reordered_values_are_a_mac_mismatch() -> None:
    obj = load("secret.regex.enc.yaml")
    string_data = obj["stringData"]
    obj["stringData"] = dict(reversed(list(string_data.items())))
    with pytest.raises(DecryptionError, match="MAC mismatch"):
        decrypt_object(obj, AGE_KEYS, verify_mac=True)


def test_kustomize_edits_pass_without_mac_check_like_flux() -> None:
    # What kustomize does to a Secret before Flux decrypts it: add labels, set the
    # namespace, reorder keys. Flux does not check the MAC, so this must decrypt.
    obj = load("secret.regex.enc.yaml")
    obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps"
    obj["metadata"]["namespace"] = "other"
    obj["stringData"] = dict(reversed(list(obj["stringData"].items())))
    result = decrypt_object(obj, AGE_KEYS)
    assert result["stringData"]["url"] == "postgres://admin@db.apps.svc:5432/main"
    assert result["metadata"]["namespace"] == "other"


def test_cleartext_where_ciphertext_is_expected_fails_like_flux() -> None:
    # Fully encrypted file: a label added in clear is not a sops value (sops errors too).
    obj = load("secret.age.enc.yaml")
    obj["metadata"]["labels"]["added"] = "by-kustomize"
    with pytest.raises(DecryptionError, match="'metadata:labels:added' is not in sops' ENC"):
        decrypt_object(obj, AGE_KEYS)


def test_changed_lastmodified_breaks_the_mac() -> None:
    obj = load("secret.age.enc.yaml")
    obj["sops"]["lastmodified"] = "2020-01-01T00:00:00Z"
    with pytest.raises(DecryptionError, match="sops metadata was modified"):
        decrypt_object(obj, AGE_KEYS, verify_mac=True)


def test_malformed_value_is_reported_with_its_path() -> None:
    obj = load("secret.regex.enc.yaml")
    obj["stringData"]["url"] = "ENC[AES256_GCM,data:!!!,iv:x,tag:y,type:str]"
    with pytest.raises(DecryptionError, match="malformed base64"):
        decrypt_object(obj, AGE_KEYS)
    obj["stringData"]["url"] = "plain text where sops expects a secret"
    with pytest.raises(DecryptionError, match="'stringData:url' is not in sops' ENC"):
        decrypt_object(obj, AGE_KEYS)


def test_tampered_age_stanza_is_reported() -> None:
    obj = load("secret.age.enc.yaml")
    obj["sops"]["age"][0]["enc"] = "not armor"
    with pytest.raises(DecryptionError, match="not an armored age file"):
        decrypt_object(obj, AGE_KEYS)


def test_bad_age_key_is_reported() -> None:
    with pytest.raises(DecryptionError, match=r"'broken\.agekey' is not an age key"):
        decrypt_object(load("secret.age.enc.yaml"), {"broken.agekey": b"AGE-SECRET-KEY-1XYZ"})


def test_pgp_fixture_decrypts_with_the_armored_key() -> None:
    obj = load("secret.pgp.enc.yaml")
    assert decrypt_object(obj, {"pgp.asc": key("pgp.asc")}, verify_mac=True) == load("secret.yaml")


def test_pgp_without_the_right_key_lists_the_fingerprint() -> None:
    obj = load("secret.pgp.enc.yaml")
    fingerprint = obj["sops"]["pgp"][0]["fp"]
    with pytest.raises(DecryptionError, match=f"pgp {fingerprint}"):
        decrypt_object(obj, AGE_KEYS)
