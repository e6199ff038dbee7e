"""fluxd's use of age for SOPS recipients, checked on files made by the real tools.

``age.agekey`` was written by ``age-keygen`` (it records the public key in a comment) and
the armored stanzas by ``sops``; see ``tests/fixtures/sops/generate.sh``. Files sops
cannot make (several stanzas, binary) are sealed with ``pyrage.encrypt``.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pyrage
import pytest

from fluxd.build.sops._age import AgeError, Identity, decrypt, parse_identities
from fluxd.yaml import load_values

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sops"


def key_file(name: str) -> str:
    return (FIXTURES / name).read_text()


def sealed_data_key() -> str:
    obj = load_values((FIXTURES / "secret.age.enc.yaml").read_bytes(), source="fixture")[0]
    enc: str = obj["sops"]["age"][0]["enc"]
    return enc


def rearmor(data: bytes, columns: int = 64) -> str:
    body = base64.b64encode(data).decode()
    lines = [body[i : i + columns] for i in range(0, len(body), columns)]
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


def test_key_file_with_several_keys_keeps_their_order() -> None:
    text = key_file("other.agekey") + "\n" + key_file("age.agekey")
    recipients = re.findall(r"# public key: (age1[0-9a-z]+)", text)
    assert [identity.recipient for identity in parse_identities(text)] == recipients


def test_opens_the_sops_data_key() -> None:
    data_key = decrypt(sealed_data_key(), parse_identities(key_file("age.agekey")))
    assert data_key is not None
    assert len(data_key) == 32


def test_other_identity_is_not_a_recipient() -> None:
    assert decrypt(sealed_data_key(), parse_identities(key_file("other.agekey"))) is None


def test_any_identity_that_is_a_recipient_opens_the_file() -> None:
    expected = decrypt(sealed_data_key(), parse_identities(key_file("age.agekey")))
    assert expected is not None
    identities = parse_identities(key_file("other.agekey") + key_file("age.agekey"))
    assert decrypt(sealed_data_key(), identities) == expected


def test_file_with_several_stanzas_opens_with_either_identity() -> None:
    first, second = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    armored = pyrage.encrypt(b"k" * 32, [first.to_public(), second.to_public()], armored=True)
    for identity in (first, second):
        assert decrypt(armored.decode(), [Identity.parse(str(identity))]) == b"k" * 32


def test_binary_age_file_is_refused_like_sops() -> None:
    # sops reads enc through Go's armor reader; pyrage alone would open a binary file.
    identity = pyrage.x25519.Identity.generate()
    binary = pyrage.encrypt(b"k" * 32, [identity.to_public()])
    with pytest.raises(AgeError, match="not an armored age file"):
        decrypt(binary.decode("latin-1"), [Identity.parse(str(identity))])


def test_armor_lines_must_be_64_columns_as_in_go() -> None:
    with pytest.raises(AgeError, match="age decryption failed: invalid armor"):
        decrypt(
            rearmor(dearmor(sealed_data_key()), columns=76),
            parse_identities(key_file("age.agekey")),
        )


def test_low_order_share_is_a_malformed_file() -> None:
    # An all-zero ephemeral share makes X25519 yield zero: an AgeError, not a crash.
    zero = base64.b64encode(bytes(32)).decode().rstrip("=")
    header = f"age-encryption.org/v1\n-> X25519 {zero}\n{zero}\n--- {zero}\n".encode()
    with pytest.raises(AgeError, match="age decryption failed"):
        decrypt(rearmor(header + bytes(56)), parse_identities(key_file("age.agekey")))


def test_bech32_checksum_is_verified() -> None:
    line = next(
        line for line in key_file("age.agekey").splitlines() if line.startswith("AGE-SECRET")
    )
    broken = line[:-1] + ("Q" if line[-1] != "Q" else "P")
    with pytest.raises(AgeError, match=r"X25519 identity \(invalid Bech32"):
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
    with pytest.raises(AgeError, match="age decryption failed: Header MAC is invalid"):
        decrypt(rearmor(tampered), parse_identities(key_file("age.agekey")))


def test_modified_payload_fails_authentication() -> None:
    data = bytearray(dearmor(sealed_data_key()))
    data[-1] ^= 1
    with pytest.raises(AgeError, match=r"age decryption failed: .* was modified"):
        decrypt(rearmor(bytes(data)), parse_identities(key_file("age.agekey")))


def test_key_file_errors_name_the_line() -> None:
    with pytest.raises(AgeError, match="line 2"):
        parse_identities("# comment\nAGE-SECRET-KEY-1NOTVALID\n")
