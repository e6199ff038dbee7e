"""Signature verification against commits and tags signed by the real git, gpg and ssh-keygen."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fluxd.sources.git.verify import (
    VerificationError,
    split_commit_signature,
    split_tag_signature,
    verify_signature,
)


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> bytes:
    return subprocess.run(
        args, cwd=cwd, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL
    ).stdout


@dataclass(frozen=True)
class GpgKey:
    fingerprint: str
    key_id: str
    armored: bytes


class Gpg:
    def __init__(self, home: Path) -> None:
        home.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(home)}

    def generate(self, uid: str, algo: str) -> GpgKey:
        run(
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            "never",
            env=self.env,
        )
        return self.key(uid)

    def key(self, uid: str) -> GpgKey:
        listing = run("gpg", "--with-colons", "--list-keys", uid, env=self.env).decode()
        pub = next(line.split(":") for line in listing.splitlines() if line.startswith("pub:"))
        fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        armored = run("gpg", "--armor", "--export", fpr, env=self.env)
        return GpgKey(fingerprint=fpr, key_id=pub[4], armored=armored)

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, check=False)


@dataclass(frozen=True)
class SshKey:
    private: Path
    public_line: bytes
    fingerprint: str


def ssh_key(directory: Path, name: str, *keygen_args: str) -> SshKey:
    private = directory / name
    run("ssh-keygen", "-q", "-N", "", "-C", f"{name}@example.com", *keygen_args, "-f", str(private))
    listing = run("ssh-keygen", "-l", "-E", "sha256", "-f", f"{private}.pub").decode()
    return SshKey(
        private=private,
        public_line=Path(f"{private}.pub").read_bytes(),
        fingerprint=listing.split()[1],
    )


class Repo:
    """A throwaway repository that makes signed commits and tags."""

    def __init__(self, path: Path, gpg: Gpg) -> None:
        self.path, self.env = path, gpg.env
        run("git", "init", "-q", "-b", "main", str(path))
        self.git("config", "user.name", "Test")
        self.git("config", "user.email", "test@example.com")
        self.count = 0

    def git(self, *args: str) -> bytes:
        return run("git", *args, cwd=self.path, env=self.env)

    def commit(self, *sign: str) -> bytes:
        self.count += 1
        (self.path / "file.txt").write_text(f"change {self.count}\n")
        self.git("add", "file.txt")
        self.git(*sign, "commit", "-q", "-m", f"change {self.count}", *(["-S"] if sign else []))
        return self.git("cat-file", "commit", "HEAD")

    def tag(self, name: str, *sign: str) -> bytes:
        self.git(*sign, "tag", "-s" if sign else "-a", name, "-m", f"release {name}")
        return self.git("cat-file", "tag", name)


def pgp_signing(key: GpgKey) -> tuple[str, ...]:
    return ("-c", "gpg.format=openpgp", "-c", f"user.signingkey={key.fingerprint}")


def ssh_signing(key: SshKey) -> tuple[str, ...]:
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}")


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    agent = Gpg(tmp_path_factory.mktemp("gpg") / "home")
    yield agent
    agent.close()


@pytest.fixture(scope="module")
def keys(gpg: Gpg) -> dict[str, GpgKey]:
    return {
        "rsa": gpg.generate("RSA Signer <rsa@example.com>", "rsa2048"),
        "ed25519": gpg.generate("Ed Signer <ed@example.com>", "ed25519"),
        "p256": gpg.generate("EC Signer <ec@example.com>", "nistp256"),
        "stranger": gpg.generate("Stranger <stranger@example.com>", "ed25519"),
    }


@pytest.fixture(scope="module")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SshKey]:
    directory = tmp_path_factory.mktemp("ssh")
    return {
        "ed25519": ssh_key(directory, "ed25519", "-t", "ed25519"),
        "rsa": ssh_key(directory, "rsa", "-t", "rsa", "-b", "2048"),
        "p256": ssh_key(directory, "p256", "-t", "ecdsa", "-b", "256"),
        "p384": ssh_key(directory, "p384", "-t", "ecdsa", "-b", "384"),
        "stranger": ssh_key(directory, "stranger", "-t", "ed25519"),
    }


@pytest.fixture
def repo(tmp_path: Path, gpg: Gpg) -> Repo:
    return Repo(tmp_path / "repo", gpg)


def verify_commit(raw: bytes, keys: dict[str, bytes]) -> str:
    payload, signature = split_commit_signature(raw)
    return verify_signature(payload=payload, signature=signature, keys=keys)


# --- OpenPGP ----------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["rsa", "ed25519", "p256"])
def test_pgp_signed_commit_verifies_and_names_the_key(
    repo: Repo, keys: dict[str, GpgKey], algo: str
) -> None:
    raw = repo.commit(*pgp_signing(keys[algo]))
    trusted = {f"{name}.asc": key.armored for name, key in keys.items() if name != "stranger"}
    assert verify_commit(raw, trusted) == keys[algo].key_id


def test_pgp_signed_tag_verifies(repo: Repo, keys: dict[str, GpgKey]) -> None:
    repo.commit()
    raw = repo.tag("v1.0.0", *pgp_signing(keys["ed25519"]))
    payload, signature = split_tag_signature(raw)
    assert signature is not None
    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----")
    assert payload.endswith(b"release v1.0.0\n")
    key_id = verify_signature(
        payload=payload, signature=signature, keys={"k": keys["ed25519"].armored}
    )
    assert key_id == keys["ed25519"].key_id


@pytest.mark.parametrize("algo", ["rsa", "ed25519", "p256"])
def test_pgp_tampered_commit_fails(repo: Repo, keys: dict[str, GpgKey], algo: str) -> None:
    raw = repo.commit(*pgp_signing(keys[algo]))
    payload, signature = split_commit_signature(raw)
    tampered = payload.replace(b"change 1", b"change 2")
    with pytest.raises(VerificationError, match="does not match the payload"):
        verify_signature(payload=tampered, signature=signature, keys={"k": keys[algo].armored})


def test_pgp_unknown_key_fails(repo: Repo, keys: dict[str, GpgKey]) -> None:
    raw = repo.commit(*pgp_signing(keys["stranger"]))
    with pytest.raises(VerificationError, match="no trusted key matched") as caught:
        verify_commit(raw, {"rsa.asc": keys["rsa"].armored, "ed.asc": keys["ed25519"].armored})
    assert keys["stranger"].key_id in str(caught.value)
    assert keys["rsa"].key_id in str(caught.value)


def test_pgp_signature_with_only_ssh_keys_fails(
    repo: Repo, keys: dict[str, GpgKey], ssh_keys: dict[str, SshKey]
) -> None:
    raw = repo.commit(*pgp_signing(keys["rsa"]))
    with pytest.raises(VerificationError, match=r"no trusted key matched.*no armored PGP"):
        verify_commit(raw, {"authorized_keys": ssh_keys["ed25519"].public_line})


def test_pgp_signing_subkey_reports_primary_key(tmp_path: Path, gpg: Gpg) -> None:
    primary = gpg.generate("Sub Signer <sub@example.com>", "ed25519")
    run(
        "gpg",
        "--batch",
        "--passphrase",
        "",
        "--quick-add-key",
        primary.fingerprint,
        "rsa2048",
        "sign",
        "never",
        env=gpg.env,
    )
    key = gpg.key(primary.fingerprint)
    repo = Repo(tmp_path / "repo", gpg)
    raw = repo.commit(*pgp_signing(key))
    signature = split_commit_signature(raw)[1]
    assert signature is not None
    (tmp_path / "sig.asc").write_bytes(signature)
    packets = run("gpg", "--list-packets", str(tmp_path / "sig.asc"), env=gpg.env).decode()
    assert primary.key_id not in packets  # the subkey made it
    assert verify_commit(raw, {"k": key.armored}) == primary.key_id


def test_malformed_pgp_key_entry_is_named(repo: Repo, keys: dict[str, GpgKey]) -> None:
    raw = repo.commit(*pgp_signing(keys["rsa"]))
    armored = keys["rsa"].armored
    checksum = armored.rindex(b"\n=") + 2
    broken = armored[:checksum] + b"AAAA" + armored[checksum + 4 :]
    with pytest.raises(VerificationError, match=r"'broken\.asc' is not a usable PGP key"):
        verify_commit(raw, {"broken.asc": broken})


# --- SSH --------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["ed25519", "rsa", "p256", "p384"])
def test_ssh_signed_commit_verifies_and_names_the_key(
    repo: Repo, ssh_keys: dict[str, SshKey], algo: str
) -> None:
    raw = repo.commit(*ssh_signing(ssh_keys[algo]))
    authorized = b"# team keys\n\n" + b"".join(
        key.public_line for name, key in ssh_keys.items() if name != "stranger"
    )
    assert verify_commit(raw, {"authorized_keys": authorized}) == ssh_keys[algo].fingerprint


def test_ssh_signed_tag_verifies(repo: Repo, ssh_keys: dict[str, SshKey]) -> None:
    repo.commit()
    raw = repo.tag("v2.0.0", *ssh_signing(ssh_keys["ed25519"]))
    payload, signature = split_tag_signature(raw)
    assert signature is not None
    assert signature.startswith(b"-----BEGIN SSH SIGNATURE-----")
    fingerprint = verify_signature(
        payload=payload, signature=signature, keys={"k": ssh_keys["ed25519"].public_line}
    )
    assert fingerprint == ssh_keys["ed25519"].fingerprint


@pytest.mark.parametrize("algo", ["ed25519", "rsa", "p256"])
def test_ssh_tampered_commit_fails(repo: Repo, ssh_keys: dict[str, SshKey], algo: str) -> None:
    raw = repo.commit(*ssh_signing(ssh_keys[algo]))
    payload, signature = split_commit_signature(raw)
    with pytest.raises(VerificationError, match="does not match the payload"):
        verify_signature(
            payload=payload + b"\nextra",
            signature=signature,
            keys={"k": ssh_keys[algo].public_line},
        )


def test_ssh_unknown_key_fails(repo: Repo, ssh_keys: dict[str, SshKey]) -> None:
    raw = repo.commit(*ssh_signing(ssh_keys["stranger"]))
    with pytest.raises(VerificationError, match="no trusted key matched") as caught:
        verify_commit(raw, {"k": ssh_keys["ed25519"].public_line})
    assert ssh_keys["stranger"].fingerprint in str(caught.value)


def test_ssh_key_lines_with_options_and_principals(repo: Repo, ssh_keys: dict[str, SshKey]) -> None:
    raw = repo.commit(*ssh_signing(ssh_keys["ed25519"]))
    line = ssh_keys["ed25519"].public_line
    allowed_signers = b'dev@example.com namespaces="git" ' + line
    assert verify_commit(raw, {"allowed": allowed_signers}) == ssh_keys["ed25519"].fingerprint


def test_ssh_signature_outside_git_namespace_fails(
    tmp_path: Path, ssh_keys: dict[str, SshKey]
) -> None:
    message = tmp_path / "message"
    message.write_bytes(b"tree 0000\n\nnot a commit\n")
    key = ssh_keys["ed25519"]
    run("ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", str(key.private), str(message))
    signature = (tmp_path / "message.sig").read_bytes()
    with pytest.raises(VerificationError, match="namespace 'file'"):
        verify_signature(
            payload=message.read_bytes(), signature=signature, keys={"k": key.public_line}
        )


def test_mixed_secret_serves_both_formats(
    repo: Repo, keys: dict[str, GpgKey], ssh_keys: dict[str, SshKey]
) -> None:
    secret = {"pgp.asc": keys["rsa"].armored, "ssh": ssh_keys["ed25519"].public_line}
    assert verify_commit(repo.commit(*pgp_signing(keys["rsa"])), secret) == keys["rsa"].key_id
    assert (
        verify_commit(repo.commit(*ssh_signing(ssh_keys["ed25519"])), secret)
        == ssh_keys["ed25519"].fingerprint
    )


# --- unsigned objects and the object format ----------------------------------------------


def test_unsigned_commit_fails_clearly(repo: Repo, keys: dict[str, GpgKey]) -> None:
    raw = repo.commit()
    payload, signature = split_commit_signature(raw)
    assert (payload, signature) == (raw, None)
    with pytest.raises(VerificationError, match="not signed"):
        verify_signature(payload=payload, signature=signature, keys={"k": keys["rsa"].armored})


def test_unsigned_tag_has_no_signature(repo: Repo) -> None:
    repo.commit()
    raw = repo.tag("v0.1.0")
    assert split_tag_signature(raw) == (raw, None)


def test_commit_split_keeps_other_headers_and_message() -> None:
    raw = (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"author A <a@example.com> 1700000000 +0000\n"
        b"committer A <a@example.com> 1700000000 +0000\n"
        b"mergetag object 1111111111111111111111111111111111111111\n"
        b" type commit\n"
        b" \n"
        b" -----BEGIN PGP SIGNATURE-----\n"
        b" abc\n"
        b" -----END PGP SIGNATURE-----\n"
        b"gpgsig -----BEGIN SSH SIGNATURE-----\n"
        b" U1NIU0lH\n"
        b" -----END SSH SIGNATURE-----\n"
        b"\n"
        b"subject\n\ngpgsig in the body is not a header\n"
    )
    payload, signature = split_commit_signature(raw)
    assert signature == (b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n")
    assert b" -----BEGIN PGP SIGNATURE-----\n abc\n" in payload
    assert b"gpgsig -----" not in payload
    assert payload.endswith(b"\n\nsubject\n\ngpgsig in the body is not a header\n")


def test_tag_split_uses_the_last_signature_block() -> None:
    raw = (
        b"object 1111111111111111111111111111111111111111\ntype commit\ntag v1\n"
        b"tagger T <t@example.com> 1700000000 +0000\n\n"
        b"notes quoting a block:\n-----BEGIN PGP SIGNATURE-----\nquoted\n"
        b"-----BEGIN PGP SIGNATURE-----\n\nreal\n-----END PGP SIGNATURE-----\n"
    )
    payload, signature = split_tag_signature(raw)
    assert signature == b"-----BEGIN PGP SIGNATURE-----\n\nreal\n-----END PGP SIGNATURE-----\n"
    assert payload.endswith(b"quoted\n")


def test_unknown_signature_format_is_named() -> None:
    with pytest.raises(VerificationError, match="unsupported signature format"):
        verify_signature(
            payload=b"x", signature=b"-----BEGIN SIGNED MESSAGE-----\n", keys={"k": b"x"}
        )


def test_empty_secret_fails() -> None:
    with pytest.raises(VerificationError, match="holds no keys"):
        verify_signature(payload=b"x", signature=b"-----BEGIN PGP SIGNATURE-----\n", keys={})


def rearmor(label: str, data: bytes) -> bytes:
    body = base64.b64encode(data)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n\n".encode() + lines + f"\n-----END {label}-----\n".encode()


def test_damaged_signatures_only_raise_verification_error(
    repo: Repo, keys: dict[str, GpgKey], ssh_keys: dict[str, SshKey]
) -> None:
    secret = {"pgp": keys["rsa"].armored, "ssh": ssh_keys["ed25519"].public_line}
    for signing, label in (
        (pgp_signing(keys["rsa"]), "PGP SIGNATURE"),
        (ssh_signing(ssh_keys["ed25519"]), "SSH SIGNATURE"),
    ):
        payload, signature = split_commit_signature(repo.commit(*signing))
        assert signature is not None
        body = b"".join(
            line for line in signature.splitlines()[1:-1] if line and not line.startswith(b"=")
        )
        data = base64.b64decode(body)
        for cut in range(0, len(data), 7):
            damaged = rearmor(label, data[:cut])
            with pytest.raises(VerificationError):
                verify_signature(payload=payload, signature=damaged, keys=secret)


def gpg_detached(gpg: Gpg, key: GpgKey, payload: bytes, tmp_path: Path, *opts: str) -> bytes:
    """Sign like git does (`gpg -bsau <key>`), with extra gpg options."""
    message = tmp_path / "payload"
    message.write_bytes(payload)
    run("gpg", *opts, "--batch", "--yes", "-bsau", key.fingerprint, str(message), env=gpg.env)
    return (tmp_path / "payload.asc").read_bytes()


def test_expired_pgp_key_fails(tmp_path: Path, gpg: Gpg, repo: Repo) -> None:
    then = "--faked-system-time=20200101T000000"
    run(
        "gpg",
        then,
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Old <old@example.com>",
        "ed25519",
        "sign",
        "1d",
        env=gpg.env,
    )
    old = gpg.key("old@example.com")
    payload = repo.commit()
    signature = gpg_detached(gpg, old, payload, tmp_path, "--faked-system-time=20200101T120000")
    with pytest.raises(VerificationError, match=f"key {old.key_id} expired on 2020-01-02"):
        verify_signature(payload=payload, signature=signature, keys={"k": old.armored})


def test_revoked_pgp_key_fails(tmp_path: Path, gpg: Gpg, repo: Repo) -> None:
    key = gpg.generate("Revoked <revoked@example.com>", "ed25519")
    payload = repo.commit()
    signature = gpg_detached(gpg, key, payload, tmp_path)
    assert verify_signature(payload=payload, signature=signature, keys={"k": key.armored})
    certificate = Path(gpg.env["GNUPGHOME"], "openpgp-revocs.d", f"{key.fingerprint}.rev")
    unlocked = certificate.read_bytes().replace(b":-----BEGIN", b"-----BEGIN")
    (tmp_path / "revoke.asc").write_bytes(unlocked)
    run("gpg", "--batch", "--import", str(tmp_path / "revoke.asc"), env=gpg.env)
    revoked = gpg.key(key.fingerprint)
    with pytest.raises(VerificationError, match=f"key {key.key_id} is revoked"):
        verify_signature(payload=payload, signature=signature, keys={"k": revoked.armored})
