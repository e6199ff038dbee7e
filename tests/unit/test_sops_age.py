"""The age subset behind SOPS age recipients, checked on files made by the real tools.

``age.agekey`` was written by ``age-keygen`` (it records the public key in a comment) and
the armored stanzas by ``sops``; see ``tests/fixtures/sops/generate.sh``.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from fluxd.kustomize._yaml import load_values
from fluxd.sops._age import AgeError, Identity, decrypt, parse_identities

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sops"


def key_file(name: str) -> str:
    return (FIXTURES / name).read_text()


def sealed_data_key() -> str:
    obj = load_values((FIXTURES / "secret.age.enc.yaml").read_bytes(), source="fixture")[0]
    enc: str = obj["sops"]["age"][0]["enc"]
    return enc


def rearmor(data: bytes) -> str:
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        ["-----BEGIN AGE ENCRYPTED FILE-----", *lines, "-----END AGE ENCRYPTED FILE-----"]
    )


def dearmor(armored: str) -> bytes:
    return base64.b64decode("".join(armored.strip().splitlines()[1:-1]))


def test_identity_answers_to_the_public_key_age_keygen_printed() -> None:
    text = key_file("age.agekey")
    public = re.search(r"# public key: (age1[0-9a-z]+)", text)
    assert public is not None
    (identity,) = parse_identities(text)
    assert identity.recipient == public.group(1)


def test_opens_the_sops_data_key() -> None:
    data_key = decrypt(sealed_data_key(), parse_identities(key_file("age.agekey")))
    assert data_key is not None
    assert len(data_key) == 32


def test_other_identity_is_not_a_recipient() -> None:
    assert decrypt(sealed_data_key(), parse_identities(key_file("other.agekey"))) is None


def test_bech32_checksum_is_verified() -> None:
    line = next(
        line for line in key_file("age.agekey").splitlines() if line.startswith("AGE-SECRET")
    )
    broken = line[:-1] + ("Q" if line[-1] != "Q" else "P")
    with pytest.raises(AgeError, match="checksum"):
        Identity.parse(broken)


def test_recipient_string_is_not_an_identity() -> None:
    public = re.search(r"age1[0-9a-z]+", key_file("age.agekey"))
    assert public is not None
    with pytest.raises(AgeError, match="not an AGE-SECRET-KEY"):
        Identity.parse(public.group())


def test_modified_header_fails_the_header_mac() -> None:
    data = dearmor(sealed_data_key())
    # Change the first character of the MAC itself: the stanzas still open, the MAC fails.
    mac_line_start = data.index(b"\n--- ") + 5
    mac_char = data[mac_line_start : mac_line_start + 1]
    replacement = b"A" if mac_char != b"A" else b"B"
    tampered = data[:mac_line_start] + replacement + data[mac_line_start + 1 :]
    with pytest.raises(AgeError, match="header MAC mismatch"):
        decrypt(rearmor(tampered), parse_identities(key_file("age.agekey")))


def test_modified_payload_fails_authentication() -> None:
    data = bytearray(dearmor(sealed_data_key()))
    data[-1] ^= 1
    with pytest.raises(AgeError, match="payload failed authentication"):
        decrypt(rearmor(bytes(data)), parse_identities(key_file("age.agekey")))


def test_key_file_errors_name_the_line() -> None:
    with pytest.raises(AgeError, match="line 2"):
        parse_identities("# comment\nAGE-SECRET-KEY-1NOTVALID\n")
