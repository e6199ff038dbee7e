"""Credentials handling of fluxd.sources.git.transport (no network)."""

from __future__ import annotations

import base64

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from fluxd.sources.git.transport import GitAuth, GitError, _host_keys, _load_identity

KEYS: dict[str, PrivateKeyTypes] = {
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "ecdsa": ec.generate_private_key(ec.SECP384R1()),  # what `flux create secret git` makes
    "rsa": rsa.generate_private_key(65537, 2048),
}
FORMATS = {
    "openssh": serialization.PrivateFormat.OpenSSH,
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
}
EXPECTED = {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2-nistp384", "rsa": "ssh-rsa"}


def pem(key: PrivateKeyTypes, fmt: str, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, FORMATS[fmt], encryption)


CASES = [
    (kind, fmt)
    for kind in KEYS
    for fmt in FORMATS
    if not (kind == "ed25519" and fmt == "traditional")  # no such encoding exists
]


@pytest.mark.parametrize(("kind", "fmt"), CASES)
def test_every_key_format_go_ssh_accepts_loads(kind: str, fmt: str) -> None:
    plain = _load_identity(GitAuth(identity=pem(KEYS[kind], fmt)))
    encrypted = _load_identity(
        GitAuth(identity=pem(KEYS[kind], fmt, b"s3cret"), passphrase="s3cret")
    )
    assert plain.get_name() == EXPECTED[kind]
    assert encrypted.get_fingerprint() == plain.get_fingerprint()


def test_flux_password_key_doubles_as_passphrase() -> None:
    key = _load_identity(GitAuth(identity=pem(KEYS["ecdsa"], "pkcs8", b"pw"), password="pw"))
    assert key.get_name() == "ecdsa-sha2-nistp384"


def test_passphrase_for_a_plain_key_is_ignored() -> None:
    key = _load_identity(GitAuth(identity=pem(KEYS["rsa"], "openssh"), password="http-only"))
    assert key.get_name() == "ssh-rsa"


@pytest.mark.parametrize(
    ("auth", "words"),
    [
        (GitAuth(), "needs the 'identity' private key"),
        (GitAuth(identity=b"not a key"), "is not a valid private key"),
        (
            GitAuth(identity=pem(KEYS["ed25519"], "openssh", b"right")),
            "is encrypted: add its passphrase as 'password'",
        ),
        (
            GitAuth(identity=pem(KEYS["rsa"], "pkcs8", b"right"), passphrase="wrong"),
            "could not decrypt the SSH identity",
        ),
    ],
)
def test_identity_problems_are_authentication_failures(auth: GitAuth, words: str) -> None:
    with pytest.raises(GitError) as err:
        _load_identity(auth)
    assert err.value.reason == "AuthenticationFailed"
    assert words in err.value.message
    assert "right" not in err.value.message
    assert "wrong" not in err.value.message


def _host_line(host: str) -> tuple[str, paramiko.PKey]:
    public = KEYS["ed25519"].public_key()
    blob = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key = paramiko.Ed25519Key(data=base64.b64decode(blob.split()[1]))
    return f"{host} {blob.decode()}", key


def test_known_hosts_plain_hashed_ported_and_comments() -> None:
    plain, key = _host_line("github.com")
    hashed, _ = _host_line(paramiko.HostKeys.hash_host("[127.0.0.1]:2222"))
    text = f"# comment\n\n{plain}\ngarbage line\n{hashed}\n".encode()
    keys = _host_keys(GitAuth(known_hosts=text))
    assert keys.lookup("github.com") == {"ssh-ed25519": key}
    assert keys.lookup("[127.0.0.1]:2222") == {"ssh-ed25519": key}
    assert keys.lookup("127.0.0.1") is None


@pytest.mark.parametrize("known_hosts", [None, b"", b"# only a comment\n", b"host not-a-key\n"])
def test_missing_or_useless_known_hosts(known_hosts: bytes | None) -> None:
    with pytest.raises(GitError) as err:
        _host_keys(GitAuth(known_hosts=known_hosts))
    assert err.value.reason == "AuthenticationFailed"
    assert "known_hosts" in err.value.message
