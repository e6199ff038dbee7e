"""Commit signing: what fluxd signs must verify with the real gpg, ssh-keygen and git."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from fluxd.sources.git.signing import SigningError, commit_signer
from fluxd.sources.git.verify import split_commit_signature, verify_signature

PAYLOAD = (
    b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
    b"author Bot <bot@example.com> 1700000000 +0000\n"
    b"committer Bot <bot@example.com> 1700000000 +0000\n"
    b"\n"
    b"Update image to v1.2.3\n"
)


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: bytes = b""
) -> bytes:
    return subprocess.run(
        args, cwd=cwd, env=env, check=True, capture_output=True, input=stdin
    ).stdout


def require(tool: str) -> None:
    """The real tool that checks fluxd's signature: scripts/test installs git, gnupg and
    openssh, so a missing one is a broken setup, not a reason to prove nothing."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: scripts/test installs it")


def signed_commit(repo_dir: Path, sign: Callable[[bytes], bytes]) -> tuple[Repo, Commit]:
    """A real on-disk repository whose HEAD is a commit carrying ``sign``'s signature."""
    repo = Repo.init(str(repo_dir), mkdir=True)
    blob = Blob.from_string(b"image: app:v1.2.3\n")
    tree = Tree()
    tree.add(b"deploy.yaml", 0o100644, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = b"Bot <bot@example.com>"
    commit.author_time = commit.commit_time = 1700000000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"Update image to v1.2.3\n"
    commit.gpgsig = sign(commit.as_raw_string())
    for obj in (blob, tree, commit):
        repo.object_store.add_object(obj)
    repo.refs[Ref(b"refs/heads/main")] = commit.id
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))
    return repo, commit


# ---------------------------------------------------------------------------------------
# gpg


@dataclass(frozen=True)
class GpgKey:
    fingerprint: str
    secret: bytes  # armored secret key block, as a Flux user exports it
    public: bytes


class Gpg:
    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700)
        self.home = home
        self.env = {**os.environ, "GNUPGHOME": str(home)}

    def gpg(self, *args: str, passphrase: str = "", stdin: bytes = b"") -> bytes:
        return run(
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            *args,
            env=self.env,
            stdin=stdin,
        )

    def generate(self, uid: str, algo: str, usage: str, passphrase: str = "") -> str:
        self.gpg("--quick-gen-key", uid, algo, usage, "never", passphrase=passphrase)
        listing = self.gpg("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))

    def export(self, fingerprint: str, passphrase: str = "") -> GpgKey:
        secret = self.gpg("--armor", "--export-secret-keys", fingerprint, passphrase=passphrase)
        public = self.gpg("--armor", "--export", fingerprint)
        return GpgKey(fingerprint=fingerprint, secret=secret, public=public)

    def stop_agent(self) -> None:
        """End the gpg-agent gpg started for this home (it would outlive the test)."""
        run("gpgconf", "--kill", "gpg-agent", env=self.env)

    def verify(self, signature: bytes, payload: bytes) -> list[str]:
        """The VALIDSIG status line's fields; raises when gpg rejects the signature."""
        sig_file, payload_file = self.home / "sig.asc", self.home / "payload"
        sig_file.write_bytes(signature)
        payload_file.write_bytes(payload)
        status = self.gpg("--status-fd", "1", "--verify", str(sig_file), str(payload_file))
        return next(
            line.split()[2:] for line in status.decode().splitlines() if " VALIDSIG " in line
        )


@dataclass(frozen=True)
class GpgKeys:
    gpg: Gpg
    ed25519: GpgKey
    nistp256: GpgKey
    rsa_protected: GpgKey
    # A certify-only primary, a signing subkey, an encryption subkey, then a newer
    # signing subkey that has expired.
    with_subkeys: GpgKey
    signing_subkey: str
    cert_only: GpgKey


RSA_PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeys]:
    require("gpg")
    gpg = Gpg(tmp_path_factory.mktemp("gpg") / "home")
    try:
        yield generate_keys(gpg)
    finally:
        gpg.stop_agent()


@pytest.fixture
def fresh_gpg(tmp_path: Path) -> Iterator[Gpg]:
    require("gpg")
    gpg = Gpg(tmp_path / "home")
    try:
        yield gpg
    finally:
        gpg.stop_agent()


def generate_keys(gpg: Gpg) -> GpgKeys:
    ed = gpg.generate("Bot <bot@example.com>", "ed25519", "sign")
    p256 = gpg.generate("EC Bot <ec@example.com>", "nistp256", "sign")
    rsa_fpr = gpg.generate("RSA Bot <rsa@example.com>", "rsa3072", "sign", RSA_PASSPHRASE)
    primary = gpg.generate("Sub Bot <sub@example.com>", "ed25519", "cert")
    gpg.gpg("--quick-add-key", primary, "ed25519", "sign", "never")
    gpg.gpg("--quick-add-key", primary, "cv25519", "encr", "never")
    gpg.gpg("--quick-add-key", primary, "ed25519", "sign", "seconds=1")
    cert_only = gpg.generate("Cert Bot <cert@example.com>", "ed25519", "cert")
    listing = gpg.gpg("--with-colons", "--list-keys", primary).decode().splitlines()
    sub_index = next(
        i for i, line in enumerate(listing) if line.startswith("sub:") and ":s:" in line
    )
    signing_subkey = listing[sub_index + 1].split(":")[9]
    return GpgKeys(
        gpg=gpg,
        ed25519=gpg.export(ed),
        nistp256=gpg.export(p256),
        rsa_protected=gpg.export(rsa_fpr, RSA_PASSPHRASE),
        with_subkeys=gpg.export(primary),
        signing_subkey=signing_subkey,
        cert_only=gpg.export(cert_only),
    )


@pytest.mark.parametrize("algorithm", ["ed25519", "nistp256"])
def test_gpg_signature_verifies_with_gpg_and_fluxd(gpg_keys: GpgKeys, algorithm: str) -> None:
    key: GpgKey = getattr(gpg_keys, algorithm)
    sign = commit_signer({"git.asc": key.secret}, "gpg", secret="signing")
    signature = sign(PAYLOAD)

    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----\n\n")
    assert signature.endswith(b"\n-----END PGP SIGNATURE-----")
    assert gpg_keys.gpg.verify(signature, PAYLOAD)[0] == key.fingerprint
    assert (
        verify_signature(payload=PAYLOAD, signature=signature, keys={"k": key.public})
        == (key.fingerprint[-16:])
    )


def test_gpg_type_defaults_to_gpg(gpg_keys: GpgKeys) -> None:
    key = gpg_keys.ed25519
    for key_type in (None, ""):
        signature = commit_signer({"git.asc": key.secret}, key_type, secret="s")(PAYLOAD)
        assert gpg_keys.gpg.verify(signature, PAYLOAD)[0] == key.fingerprint


def test_gpg_passphrase_protected_rsa_key_signs(gpg_keys: GpgKeys) -> None:
    key = gpg_keys.rsa_protected
    assert b"-----BEGIN PGP PRIVATE KEY BLOCK-----" in key.secret
    data = {"git.asc": key.secret, "passphrase": RSA_PASSPHRASE.encode()}
    signature = commit_signer(data, "gpg", secret="signing")(PAYLOAD)

    assert gpg_keys.gpg.verify(signature, PAYLOAD)[0] == key.fingerprint
    assert (
        verify_signature(payload=PAYLOAD, signature=signature, keys={"k": key.public})
        == (key.fingerprint[-16:])
    )


def test_gpg_live_signing_subkey_signs_rather_than_a_certify_only_primary(
    gpg_keys: GpgKeys,
) -> None:
    key = gpg_keys.with_subkeys
    time.sleep(1.1)  # the newest signing subkey lives one second
    signature = commit_signer({"git.asc": key.secret}, "gpg", secret="signing")(PAYLOAD)

    validsig = gpg_keys.gpg.verify(signature, PAYLOAD)
    assert validsig[0] == gpg_keys.signing_subkey
    assert validsig[-1] == key.fingerprint  # the primary the subkey belongs to
    assert (
        verify_signature(payload=PAYLOAD, signature=signature, keys={"k": key.public})
        == (key.fingerprint[-16:])
    )


def protect_ed25519_key(
    armored: bytes, passphrase: bytes, cipher: int, digest: str, usage: int
) -> bytes:
    """Re-protect gpg's unprotected Ed25519 secret key the RFC 4880 way (S2K 3, AES CFB).

    gpg 2.2 only ever exports AES-128 with SHA-1; this covers the other ciphers, hashes
    and the two-octet checksum, and gpg itself proves the result right by using it.
    """
    lines = armored.decode().splitlines()
    data = base64.b64decode("".join(line for line in lines[2:] if line[:1] not in ("=", "-")))
    assert data[0] == 0x94  # old-format header, one-octet length: gpg's secret key packet
    body, rest = data[2 : 2 + data[1]], data[2 + data[1] :]
    oid_end = 7 + body[6]
    public_end = oid_end + 2 + (int.from_bytes(body[oid_end : oid_end + 2], "big") + 7) // 8
    assert body[public_end] == 0  # unprotected
    fields = body[public_end + 1 : -2]
    salt, coded_count = os.urandom(8), 0x60  # 65536 octets hashed
    count = (16 + (coded_count & 15)) << ((coded_count >> 4) + 6)
    stream = (salt + passphrase) * (count // len(salt + passphrase) + 1)
    key_size = {7: 16, 8: 24, 9: 32}[cipher]
    key = b""
    while len(key) < key_size:
        key += hashlib.new(
            digest, b"\0" * (len(key) // hashlib.new(digest).digest_size) + stream[:count]
        ).digest()
    check = (
        hashlib.sha1(fields).digest() if usage == 254 else (sum(fields) & 0xFFFF).to_bytes(2, "big")
    )
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key[:key_size]), CFB(iv)).encryptor()
    hash_id = {"sha1": 2, "sha256": 8, "sha512": 10}[digest]
    protection = bytes([usage, cipher, 3, hash_id]) + salt + bytes([coded_count]) + iv
    new_body = (
        body[:public_end] + protection + encryptor.update(fields + check) + encryptor.finalize()
    )
    packet = bytes([0xC5, len(new_body)]) + new_body
    text = base64.b64encode(packet + rest).decode()
    wrapped = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return (
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{wrapped}\n-----END PGP PRIVATE KEY BLOCK-----\n"
    ).encode()


@pytest.mark.parametrize(
    ("cipher", "digest", "usage"),
    [(9, "sha256", 254), (8, "sha1", 255), (7, "sha512", 254)],
    ids=["aes256-sha256-sha1check", "aes192-sha1-checksum", "aes128-sha512-sha1check"],
)
def test_gpg_key_protected_with_other_ciphers_and_hashes_signs(
    gpg_keys: GpgKeys, fresh_gpg: Gpg, cipher: int, digest: str, usage: int
) -> None:
    protected = protect_ed25519_key(gpg_keys.ed25519.secret, b"pw", cipher, digest, usage)
    other = fresh_gpg
    other.gpg("--import", passphrase="pw", stdin=protected)
    other.gpg("--detach-sign", "--armor", passphrase="pw", stdin=PAYLOAD)  # gpg can use it

    with pytest.raises(SigningError, match="wrong passphrase"):
        commit_signer({"git.asc": protected, "passphrase": b"pW"}, "gpg", secret="s")
    signer = commit_signer({"git.asc": protected, "passphrase": b"pw"}, "gpg", secret="s")
    assert other.verify(signer(PAYLOAD), PAYLOAD)[0] == gpg_keys.ed25519.fingerprint


def test_gpg_signed_commit_passes_git_verify_commit(gpg_keys: GpgKeys, tmp_path: Path) -> None:
    require("git")
    key = gpg_keys.rsa_protected
    data = {"git.asc": key.secret, "passphrase": RSA_PASSPHRASE.encode()}
    repo, commit = signed_commit(tmp_path / "repo", commit_signer(data, None, secret="signing"))

    output = subprocess.run(
        ("git", "verify-commit", "--raw", "HEAD"),
        cwd=repo.path,
        env=gpg_keys.gpg.env,
        capture_output=True,
        check=True,
    )
    assert f"VALIDSIG {key.fingerprint}".encode() in output.stderr
    payload, signature = split_commit_signature(commit.as_raw_string())
    assert verify_signature(payload=payload, signature=signature, keys={"k": key.public})


# ---------------------------------------------------------------------------------------
# ssh


SshPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def ssh_pem(key: SshPrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def authorized_key(pem: bytes) -> bytes:
    key = serialization.load_ssh_private_key(pem, None)
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


SSH_KEYS: dict[str, Callable[[], SshPrivateKey]] = {
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def ssh_keygen_verify(tmp_path: Path, public: bytes, signature: bytes, payload: bytes) -> None:
    allowed = tmp_path / "allowed_signers"
    allowed.write_bytes(b"bot@example.com " + public + b"\n")
    sig_file = tmp_path / "payload.sig"
    sig_file.write_bytes(signature + b"\n")
    run(
        "ssh-keygen",
        "-Y",
        "verify",
        "-f",
        str(allowed),
        "-I",
        "bot@example.com",
        "-n",
        "git",
        "-s",
        str(sig_file),
        stdin=payload,
    )


@pytest.mark.parametrize("kind", sorted(SSH_KEYS))
def test_ssh_signature_verifies_with_ssh_keygen_and_fluxd(kind: str, tmp_path: Path) -> None:
    require("ssh-keygen")
    pem = ssh_pem(SSH_KEYS[kind]())
    signature = commit_signer({"identity": pem}, "ssh", secret="signing")(PAYLOAD)

    assert signature.startswith(b"-----BEGIN SSH SIGNATURE-----\n")
    assert signature.endswith(b"\n-----END SSH SIGNATURE-----")
    assert all(len(line) <= 70 for line in signature.splitlines())
    ssh_keygen_verify(tmp_path, authorized_key(pem), signature, PAYLOAD)
    fingerprint = verify_signature(
        payload=PAYLOAD, signature=signature, keys={"k": authorized_key(pem)}
    )
    assert fingerprint.startswith("SHA256:")


def test_ssh_ed25519_signature_is_byte_identical_to_ssh_keygen(tmp_path: Path) -> None:
    require("ssh-keygen")
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    reference = run(
        "ssh-keygen", "-q", "-Y", "sign", "-f", str(key_file), "-n", "git", stdin=PAYLOAD
    )

    signature = commit_signer({"identity": pem}, "ssh", secret="signing")(PAYLOAD)
    assert signature + b"\n" == reference


def test_ssh_passphrase_protected_key_signs(tmp_path: Path) -> None:
    require("ssh-keygen")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = ssh_pem(key, b"s3cret")
    data = {"identity": pem, "password": b"s3cret"}
    signature = commit_signer(data, "ssh", secret="signing")(PAYLOAD)

    ssh_keygen_verify(tmp_path, authorized_key(ssh_pem(key)), signature, PAYLOAD)


def test_ssh_password_next_to_an_unprotected_key_is_harmless(tmp_path: Path) -> None:
    require("ssh-keygen")
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    signature = commit_signer({"identity": pem, "password": b"x"}, "ssh", secret="s")(PAYLOAD)

    ssh_keygen_verify(tmp_path, authorized_key(pem), signature, PAYLOAD)


def test_signatures_do_not_verify_over_a_changed_payload(gpg_keys: GpgKeys, tmp_path: Path) -> None:
    require("ssh-keygen")
    changed = PAYLOAD.replace(b"v1.2.3", b"v6.6.6")
    pgp = commit_signer({"git.asc": gpg_keys.ed25519.secret}, "gpg", secret="s")(PAYLOAD)
    with pytest.raises(subprocess.CalledProcessError):
        gpg_keys.gpg.verify(pgp, changed)
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    ssh = commit_signer({"identity": pem}, "ssh", secret="s")(PAYLOAD)
    with pytest.raises(subprocess.CalledProcessError):
        ssh_keygen_verify(tmp_path, authorized_key(pem), ssh, changed)


def test_ssh_signed_commit_passes_git_verify_commit(tmp_path: Path) -> None:
    require("git")
    require("ssh-keygen")
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    repo, commit = signed_commit(
        tmp_path / "repo", commit_signer({"identity": pem}, "ssh", secret="signing")
    )
    allowed = tmp_path / "allowed_signers"
    allowed.write_bytes(b"bot@example.com " + authorized_key(pem) + b"\n")

    output = run(
        "git",
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed}",
        "verify-commit",
        "-v",
        "HEAD",
        cwd=Path(repo.path),
    )
    raw = commit.as_raw_string()
    assert b"-----END SSH SIGNATURE-----\n\nUpdate image" in raw  # no dangling header line
    assert run("git", "cat-file", "commit", "HEAD", cwd=Path(repo.path)) == raw
    assert b"Update image to v1.2.3" in output


# ---------------------------------------------------------------------------------------
# bad input


def test_unknown_type_is_refused() -> None:
    with pytest.raises(SigningError, match="unknown signing key type 'x509'"):
        commit_signer({"git.asc": b""}, "x509", secret="signing")


@pytest.mark.parametrize(
    ("data", "key_type", "message"),
    [
        ({"identity": b"x"}, "gpg", "secret 'signing' does not contain a 'git.asc' key"),
        ({"git.asc": b"x"}, "ssh", "secret 'signing' does not contain an 'identity' key"),
    ],
)
def test_missing_secret_key_is_named(data: dict[str, bytes], key_type: str, message: str) -> None:
    with pytest.raises(SigningError, match=message):
        commit_signer(data, key_type, secret="signing")


@pytest.mark.parametrize(
    ("armored", "problem"),
    [
        (b"not a key at all", "not an armored PGP private key block"),
        (
            b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n",
            "bad OpenPGP packet header",
        ),
        (
            b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n!!!\n-----END PGP PRIVATE KEY BLOCK-----\n",
            "not valid base64",
        ),
        (b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQ==\n", "has no '-----END"),
    ],
)
def test_garbage_gpg_key_is_refused(armored: bytes, problem: str) -> None:
    with pytest.raises(SigningError, match=r"secret 'signing' key 'git\.asc'") as error:
        commit_signer({"git.asc": armored}, "gpg", secret="signing")
    assert problem in str(error.value)


def test_gpg_public_key_instead_of_secret_key_is_refused(gpg_keys: GpgKeys) -> None:
    public = gpg_keys.ed25519.public.replace(b"PUBLIC KEY", b"PRIVATE KEY")
    with pytest.raises(SigningError, match="signing needs the secret key"):
        commit_signer({"git.asc": public}, "gpg", secret="signing")


def test_gpg_corrupted_key_fails_its_checksum(gpg_keys: GpgKeys) -> None:
    lines = gpg_keys.ed25519.secret.splitlines()
    body = next(i for i, line in enumerate(lines) if len(line) == 64)
    swapped = lines[body][:10] + (b"B" if lines[body][10:11] != b"B" else b"C") + lines[body][11:]
    corrupted = b"\n".join([*lines[:body], swapped, *lines[body + 1 :]])
    with pytest.raises(SigningError, match="CRC-24"):
        commit_signer({"git.asc": corrupted}, "gpg", secret="signing")


def test_gpg_two_keys_in_one_secret_are_ambiguous(gpg_keys: GpgKeys) -> None:
    block = gpg_keys.gpg.gpg(
        "--armor",
        "--export-secret-keys",
        gpg_keys.ed25519.fingerprint,
        gpg_keys.with_subkeys.fingerprint,
    )
    with pytest.raises(SigningError, match="more than one key"):
        commit_signer({"git.asc": block}, "gpg", secret="signing")


def test_gpg_key_that_may_not_sign_is_refused(gpg_keys: GpgKeys) -> None:
    with pytest.raises(SigningError, match="no key in it can sign"):
        commit_signer({"git.asc": gpg_keys.cert_only.secret}, "gpg", secret="signing")


def test_gpg_wrong_passphrase_is_reported(gpg_keys: GpgKeys) -> None:
    data = {"git.asc": gpg_keys.rsa_protected.secret, "passphrase": b"wrong"}
    with pytest.raises(SigningError, match="wrong passphrase in 'passphrase'"):
        commit_signer(data, "gpg", secret="signing")


def test_gpg_protected_key_without_passphrase_names_the_missing_key(gpg_keys: GpgKeys) -> None:
    with pytest.raises(
        SigningError, match="passphrase-protected but the secret has no 'passphrase'"
    ):
        commit_signer({"git.asc": gpg_keys.rsa_protected.secret}, "gpg", secret="signing")


def test_ssh_garbage_key_is_refused() -> None:
    with pytest.raises(SigningError, match="secret 'signing' key 'identity'"):
        commit_signer({"identity": b"garbage"}, "ssh", secret="signing")


def test_ssh_wrong_password_is_reported() -> None:
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate(), b"right")
    with pytest.raises(SigningError, match="wrong password"):
        commit_signer({"identity": pem, "password": b"wrong"}, "ssh", secret="signing")


def test_ssh_protected_key_without_password_names_the_missing_key() -> None:
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate(), b"right")
    with pytest.raises(SigningError, match="the secret has no 'password' key"):
        commit_signer({"identity": pem}, "ssh", secret="signing")


def test_ssh_public_key_is_not_a_private_key() -> None:
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SigningError, match="not an OpenSSH private key"):
        commit_signer({"identity": authorized_key(pem)}, "ssh", secret="signing")


def test_ssh_signer_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    require("ssh-keygen")
    pem = ssh_pem(ed25519.Ed25519PrivateKey.generate())
    public_file = tmp_path / "id.pub"
    public_file.write_bytes(authorized_key(pem) + b"\n")
    listed = run("ssh-keygen", "-l", "-f", str(public_file)).split()[1].decode()
    signature = commit_signer({"identity": pem}, "ssh", secret="signing")(PAYLOAD)
    keys = {"k": authorized_key(pem)}
    assert verify_signature(payload=PAYLOAD, signature=signature, keys=keys) == listed
