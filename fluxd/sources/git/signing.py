"""Signing of the commits image automation pushes (`spec.git.commit.signingKey`).

Flux reads the signing key from the Secret named by `signingKey.secretRef`, by
`signingKey.type`:

- `gpg` (the default): `git.asc` holds one ASCII-armored OpenPGP *secret* key
  (`gpg --export-secret-keys --armor`), `passphrase` its passphrase when it has one.
  The signature is a detached v4 binary-document signature with SHA-256, made by a
  subkey certified for signing when there is one, else by the primary key, armored
  as `-----BEGIN PGP SIGNATURE-----`: what `git commit -S` writes with gpg.
- `ssh`: `identity` holds an OpenSSH private key, `password` its passphrase when it
  has one. The signature is an SSHSIG (namespace `git`, SHA-512) armored as
  `-----BEGIN SSH SIGNATURE-----`: what `git -c gpg.format=ssh` writes.

The OpenPGP side is written on `cryptography` for the same reason verification is
(see `fluxd.sources.git.verify`): reading one secret key and writing one signature
packet needs only armor, packet, MPI and S2K handling. Supported: v4 RSA, EdDSA
(Ed25519, legacy and RFC 9580 encodings) and ECDSA (P-256/384/521) keys, unprotected
or protected with an iterated+salted S2K and AES in CFB mode, as gpg exports them.

A signer receives the raw commit (`Commit.as_raw_string()` without `gpgsig`) and
returns the signature without its final newline: the commit header serialisation adds
the line break, so the commit object comes out byte for byte as git writes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from fluxd.sources.git import wire

__all__ = ["SigningError", "commit_signer"]

GPG_KEY_ENTRY = "git.asc"
GPG_PASSPHRASE_ENTRY = "passphrase"
SSH_KEY_ENTRY = "identity"
SSH_PASSWORD_ENTRY = "password"

Signer = Callable[[bytes], bytes]


class SigningError(ValueError):
    """The Secret's key cannot sign: message names the Secret key and the problem."""


def commit_signer(data: Mapping[str, bytes], key_type: str | None, *, secret: str) -> Signer:
    """A signer for the Secret ``data`` (named ``secret`` in messages) of type 'gpg' or 'ssh'.

    An empty or missing type means 'gpg', as in Flux. Raises SigningError when the key
    cannot be read; the returned signer does not fail.
    """
    if key_type in (None, "", "gpg"):
        if GPG_KEY_ENTRY not in data:
            raise SigningError(
                f"signing key secret '{secret}' does not contain a '{GPG_KEY_ENTRY}' key"
            )
        return _pgp_signer(data[GPG_KEY_ENTRY], data.get(GPG_PASSPHRASE_ENTRY), secret)
    if key_type == "ssh":
        if SSH_KEY_ENTRY not in data:
            raise SigningError(
                f"signing key secret '{secret}' does not contain an '{SSH_KEY_ENTRY}' key"
            )
        return _ssh_signer(data[SSH_KEY_ENTRY], data.get(SSH_PASSWORD_ENTRY), secret)
    raise SigningError(f"unknown signing key type '{key_type}' (expected 'gpg' or 'ssh')")


def _armor(label: str, body: bytes, width: int, *, crc: bool) -> bytes:
    text = base64.b64encode(body).decode("ascii")
    lines = [f"-----BEGIN {label}-----"]
    if crc:
        lines.append("")  # the empty line that ends the (absent) armor headers
    lines.extend(text[i : i + width] for i in range(0, len(text), width))
    if crc:
        lines.append("=" + base64.b64encode(wire.crc24(body).to_bytes(3, "big")).decode("ascii"))
    lines.append(f"-----END {label}-----")
    return "\n".join(lines).encode("ascii")


# ---------------------------------------------------------------------------------------
# SSH (OpenSSH PROTOCOL.sshsig)

_SSHSIG_NAMESPACE = b"git"
_SSHSIG_HASH = b"sha512"
_ECDSA_SSH_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


_SshPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _ssh_mpint(value: int) -> bytes:
    return wire.ssh_string(value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def _load_ssh_key(pem: bytes, password: bytes | None, where: str) -> _SshPrivateKey:
    try:
        try:
            key = serialization.load_ssh_private_key(pem, password or None)
        except TypeError:
            if not password:
                raise SigningError(
                    f"the SSH signing key in {where} is passphrase-protected but the secret "
                    f"has no '{SSH_PASSWORD_ENTRY}' key"
                ) from None
            # A password next to an unprotected key is harmless: Flux signs with it too.
            key = serialization.load_ssh_private_key(pem, None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "wrong password or " if password else ""
        raise SigningError(
            f"could not read the SSH signing key in {where} ({hint}not an OpenSSH private key):"
            f" {exc}"
        ) from None
    if not isinstance(key, _SshPrivateKey):
        raise SigningError(
            f"the SSH signing key in {where} is a {type(key).__name__}; "
            "supported: Ed25519, ECDSA, RSA"
        )
    return key


def _ssh_signer(pem: bytes, password: bytes | None, secret: str) -> Signer:
    key = _load_ssh_key(pem, password, f"secret '{secret}' key '{SSH_KEY_ENTRY}'")
    public_line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public_blob = base64.b64decode(public_line.split()[1])

    def sign(payload: bytes) -> bytes:
        signed = b"SSHSIG" + b"".join(
            wire.ssh_string(part)
            for part in (_SSHSIG_NAMESPACE, b"", _SSHSIG_HASH, hashlib.sha512(payload).digest())
        )
        if isinstance(key, ed25519.Ed25519PrivateKey):
            sig_blob = wire.ssh_string(b"ssh-ed25519") + wire.ssh_string(key.sign(signed))
        elif isinstance(key, rsa.RSAPrivateKey):
            raw = key.sign(signed, padding.PKCS1v15(), hashes.SHA512())
            sig_blob = wire.ssh_string(b"rsa-sha2-512") + wire.ssh_string(raw)
        else:
            der = key.sign(signed, ec.ECDSA(_ECDSA_SSH_HASHES[key.curve.name]()))
            r, s = decode_dss_signature(der)
            sig_blob = wire.ssh_string(public_line.split()[0]) + wire.ssh_string(
                _ssh_mpint(r) + _ssh_mpint(s)
            )
        body = (
            b"SSHSIG"
            + (1).to_bytes(4, "big")
            + b"".join(
                wire.ssh_string(part)
                for part in (public_blob, _SSHSIG_NAMESPACE, b"", _SSHSIG_HASH, sig_blob)
            )
        )
        return _armor("SSH SIGNATURE", body, 70, crc=False)

    return sign


# ---------------------------------------------------------------------------------------
# OpenPGP (RFC 4880 / RFC 9580, version 4 keys and signatures)

_TAG_SIGNATURE, _TAG_SECRET_KEY, _TAG_PUBLIC_KEY, _TAG_SECRET_SUBKEY = 2, 5, 6, 7
_ALGO_RSA, _ALGO_RSA_SIGN_ONLY = 1, 3
_ALGO_ECDSA, _ALGO_EDDSA_LEGACY, _ALGO_ED25519 = 19, 22, 27
_SIGNING_ALGORITHMS = frozenset(
    {_ALGO_RSA, _ALGO_RSA_SIGN_ONLY, _ALGO_ECDSA, _ALGO_EDDSA_LEGACY, _ALGO_ED25519}
)
_OID_ED25519 = bytes.fromhex("2b06010401da470f01")
_EC_CURVES: dict[bytes, Callable[[], ec.EllipticCurve]] = {
    bytes.fromhex("2a8648ce3d030107"): ec.SECP256R1,
    bytes.fromhex("2b81040022"): ec.SECP384R1,
    bytes.fromhex("2b81040023"): ec.SECP521R1,
}
_S2K_HASHES: dict[int, Callable[[], hashes.HashAlgorithm]] = {
    2: hashes.SHA1,
    8: hashes.SHA256,
    9: hashes.SHA384,
    10: hashes.SHA512,
    11: hashes.SHA224,
}
_AES_KEY_SIZES = {7: 16, 8: 24, 9: 32}
_AES_BLOCK_SIZE = 16
_S2K_USAGE_SHA1, _S2K_USAGE_CHECKSUM = 254, 255
_S2K_CHUNK = 1 << 16
_S2K_ITERATED_SALTED, _S2K_GNU_EXTENSION = 3, 101
_S2K_SPEC_SIZE = 11  # type, hash algorithm, 8-octet salt, coded count
_SUBKEY_BINDING, _SUBKEY_REVOCATION = 0x18, 0x28
_SELF_CERTIFICATIONS = frozenset({0x10, 0x11, 0x12, 0x13, 0x1F})
_FLAG_SIGN = 0x02
_HASH_SHA256 = 8

_PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class _NeedsPassphrase(Exception):
    """The key is encrypted and no passphrase was given."""


class _WrongPassphrase(Exception):
    """The passphrase does not decrypt the key (its checksum does not match)."""


class _Malformed(Exception):
    """The key data is not what its packets declare; the caller names the Secret key."""


@dataclass(frozen=True)
class _SecretKeyPacket:
    algorithm: int
    created: int
    fingerprint: bytes
    public_fields: bytes  # the algorithm-specific public key fields
    protection: bytes  # S2K usage byte onwards: how the secret fields are stored


@dataclass
class _Candidate:
    packet: _SecretKeyPacket | None  # None: an algorithm that cannot sign (e.g. ECDH)
    # From its latest self/binding signature (flags) and its revocation, when present.
    can_sign: bool | None = None
    lifetime: int = 0  # seconds after the key's creation; 0 = forever
    revoked: bool = False

    def live(self, now: float) -> bool:
        """Neither revoked nor expired (whether it may sign is `can_sign`)."""
        if self.packet is None or self.revoked:
            return False
        return not self.lifetime or self.packet.created + self.lifetime > now


def _dearmor_private_key(text: bytes) -> bytes:
    begin, end = "-----BEGIN PGP PRIVATE KEY BLOCK-----", "-----END PGP PRIVATE KEY BLOCK-----"
    lines = [line.strip() for line in text.decode("ascii", errors="replace").splitlines()]
    if begin not in lines:
        raise _Malformed("not an armored PGP private key block (no '" + begin + "' line)")
    start = lines.index(begin) + 1
    if end not in lines[start:]:
        raise _Malformed(f"the armored key has no '{end}' line")
    block = lines[start : lines.index(end, start)]
    if "" in block:  # armor headers (`Comment: ...`) end at the first empty line
        block = block[block.index("") + 1 :]
    checksum = next((line[1:] for line in block if line.startswith("=") and len(line) == 5), None)
    body = "".join(line for line in block if line and not line.startswith("="))
    try:
        data = base64.b64decode(body, validate=True)
        expected = None if checksum is None else base64.b64decode(checksum, validate=True)
    except binascii.Error as exc:
        raise _Malformed(f"the armored key is not valid base64: {exc}") from None
    if expected is not None and wire.crc24(data).to_bytes(3, "big") != expected:
        raise _Malformed("the armored key fails its CRC-24 checksum (it was cut or changed)")
    return data


def _packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    try:
        yield from wire.packets(data)
    except wire.MalformedData as exc:
        raise _Malformed(str(exc)) from exc


def _mpi(data: bytes, i: int) -> tuple[int, int]:
    try:
        return wire.read_mpi(data, i)
    except wire.MalformedData as exc:
        raise _Malformed(f"{exc} in the key") from exc


def _encode_mpi(value: int) -> bytes:
    return value.bit_length().to_bytes(2, "big") + value.to_bytes(
        (value.bit_length() + 7) // 8, "big"
    )


def _public_fields_end(algorithm: int, fields: bytes) -> int:
    """Where the public fields of a signing-capable `algorithm` key end in `fields`."""
    if algorithm in (_ALGO_RSA, _ALGO_RSA_SIGN_ONLY):
        return _mpi(fields, _mpi(fields, 0)[1])[1]
    if algorithm in (_ALGO_ECDSA, _ALGO_EDDSA_LEGACY):
        return _mpi(fields, 1 + fields[0])[1]
    return 32  # Ed25519 (RFC 9580): the raw public key


def _parse_secret_key(body: bytes) -> _SecretKeyPacket | None:
    """The key in a secret (sub)key packet; None when its algorithm cannot sign."""
    if not body or body[0] != 4:
        version = body[0] if body else "?"
        raise _Malformed(f"version {version} OpenPGP keys are not supported (need version 4)")
    algorithm = body[5]
    if algorithm not in _SIGNING_ALGORITHMS:
        return None
    end = 6 + _public_fields_end(algorithm, body[6:])
    public = body[:end]
    fingerprint = hashlib.sha1(b"\x99" + len(public).to_bytes(2, "big") + public).digest()
    created = int.from_bytes(body[1:5], "big")
    return _SecretKeyPacket(algorithm, created, fingerprint, body[6:end], body[end:])


def _key_claims(body: bytes) -> tuple[int, int | None, int]:
    """(signature type, key flags or None, key lifetime) from a v4 signature's hashed part."""
    if len(body) < 6 or body[0] != 4:
        return -1, None, 0
    hashed_end = 6 + int.from_bytes(body[4:6], "big")
    i, flags, lifetime = 6, None, 0
    while i < hashed_end:
        first = body[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            length, i = ((first - 192) << 8) + body[i + 1] + 192, i + 2
        else:
            length, i = int.from_bytes(body[i + 1 : i + 5], "big"), i + 5
        kind, value = body[i] & 0x7F, body[i + 1 : i + length]
        if kind == 27 and value:
            flags = value[0]
        elif kind == 9 and len(value) == 4:
            lifetime = int.from_bytes(value, "big")
        i += length
    return body[1], flags, lifetime


def _read_keys(data: bytes) -> list[_Candidate]:
    """The primary key then its subkeys, with what their own signatures say of them."""
    keys: list[_Candidate] = []
    for tag, body in _packets(data):
        if tag == _TAG_SECRET_KEY:
            if keys:
                raise _Malformed(
                    "it holds more than one key (primary key); which one signs is ambiguous"
                )
            primary_key = _parse_secret_key(body)
            if primary_key is None:
                raise _Malformed(
                    f"the primary key's algorithm ({body[5]}) cannot sign; "
                    "supported: RSA, EdDSA (Ed25519), ECDSA"
                )
            keys.append(_Candidate(primary_key))
        elif tag == _TAG_SECRET_SUBKEY and keys:
            keys.append(_Candidate(_parse_secret_key(body)))
        elif tag == _TAG_PUBLIC_KEY:
            raise _Malformed("it holds a PGP public key; signing needs the secret key")
        elif tag == _TAG_SIGNATURE and keys:
            sig_type, flags, lifetime = _key_claims(body)
            current = keys[-1]
            primary = len(keys) == 1
            if sig_type == _SUBKEY_REVOCATION and not primary:
                current.revoked = True
            elif flags is not None and sig_type in (
                _SELF_CERTIFICATIONS if primary else {_SUBKEY_BINDING}
            ):
                # Certifications by others carry no key flags: only self-signatures count.
                current.can_sign = bool(flags & _FLAG_SIGN)
                current.lifetime = lifetime
    if not keys:
        raise _Malformed("it holds no PGP secret key packet")
    return keys


def _s2k_key(passphrase: bytes, spec: bytes, key_size: int) -> bytes:
    """Derive the key-encryption key from an iterated+salted S2K specifier."""
    if spec[0] != _S2K_ITERATED_SALTED:
        raise _Malformed(f"S2K specifier {spec[0]} is not supported (need 3, iterated+salted)")
    if spec[1] not in _S2K_HASHES:
        raise _Malformed(f"S2K hash algorithm {spec[1]} is not supported")
    salt, coded = spec[2:10], spec[10]
    count = (16 + (coded & 15)) << ((coded >> 4) + 6)
    material = salt + passphrase
    count = max(count, len(material))
    # gpg's default count is ~65 MB: feed it in chunks rather than building it whole.
    chunk = material * max(1, _S2K_CHUNK // len(material))
    derived = b""
    while len(derived) < key_size:
        hasher = hashes.Hash(_S2K_HASHES[spec[1]]())
        hasher.update(b"\x00" * (len(derived) // hasher.algorithm.digest_size))
        remaining = count
        while remaining > 0:
            hasher.update(chunk[:remaining])
            remaining -= len(chunk)
        derived += hasher.finalize()
    return derived[:key_size]


def _secret_fields(packet: _SecretKeyPacket, passphrase: bytes | None) -> bytes | None:
    """The decrypted secret fields; None for a gpg stub key (secret part not exported)."""
    usage, rest = packet.protection[0], packet.protection[1:]
    if usage == 0:
        fields, check = rest[:-2], rest[-2:]
        if (sum(fields) & 0xFFFF).to_bytes(2, "big") != check:
            raise _Malformed("the unprotected secret key fails its checksum")
        return fields
    if usage not in (_S2K_USAGE_SHA1, _S2K_USAGE_CHECKSUM):
        raise _Malformed(f"secret key protection (S2K usage {usage}) is not supported")
    cipher_algo, spec = rest[0], rest[1:]
    if spec[0] == _S2K_GNU_EXTENSION:
        return None
    if cipher_algo not in _AES_KEY_SIZES:
        raise _Malformed(
            f"the key is encrypted with cipher algorithm {cipher_algo}; supported: AES-128/192/256"
        )
    if passphrase is None:
        raise _NeedsPassphrase
    key = _s2k_key(passphrase, spec, _AES_KEY_SIZES[cipher_algo])
    iv_end = _S2K_SPEC_SIZE + _AES_BLOCK_SIZE
    iv, encrypted = spec[_S2K_SPEC_SIZE:iv_end], spec[iv_end:]
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    plain = decryptor.update(encrypted) + decryptor.finalize()
    if usage == _S2K_USAGE_SHA1:
        fields, check = plain[:-20], plain[-20:]
        if hashlib.sha1(fields).digest() != check:
            raise _WrongPassphrase
        return fields
    fields, check = plain[:-2], plain[-2:]
    if (sum(fields) & 0xFFFF).to_bytes(2, "big") != check:
        raise _WrongPassphrase
    return fields


def _private_key(packet: _SecretKeyPacket, fields: bytes) -> _PrivateKey:
    public = packet.public_fields
    try:
        if packet.algorithm in (_ALGO_RSA, _ALGO_RSA_SIGN_ONLY):
            n, i = _mpi(public, 0)
            e, _ = _mpi(public, i)
            d, i = _mpi(fields, 0)
            p, i = _mpi(fields, i)
            q, _ = _mpi(fields, i)
            numbers = rsa.RSAPrivateNumbers(
                p,
                q,
                d,
                d % (p - 1),
                d % (q - 1),
                rsa.rsa_crt_iqmp(p, q),
                rsa.RSAPublicNumbers(e, n),
            )
            return numbers.private_key()
        if packet.algorithm == _ALGO_EDDSA_LEGACY:
            if public[1 : 1 + public[0]] != _OID_ED25519:
                raise _Malformed("only the Ed25519 curve is supported for EdDSA keys")
            seed, _ = _mpi(fields, 0)
            return ed25519.Ed25519PrivateKey.from_private_bytes(seed.to_bytes(32, "big"))
        if packet.algorithm == _ALGO_ED25519:
            return ed25519.Ed25519PrivateKey.from_private_bytes(fields[:32])
        if packet.algorithm == _ALGO_ECDSA:
            curve = _EC_CURVES.get(public[1 : 1 + public[0]])
            if curve is None:
                raise _Malformed("the ECDSA key's curve is not supported (need P-256/384/521)")
            d, _ = _mpi(fields, 0)
            return ec.derive_private_key(d, curve())
    except (ValueError, OverflowError, UnsupportedAlgorithm) as exc:
        raise _Malformed(f"the secret key numbers are invalid: {exc}") from None
    raise _Malformed(f"OpenPGP public-key algorithm {packet.algorithm} is not supported")


def _choose_signing_key(keys: list[_Candidate]) -> _SecretKeyPacket:
    """The newest live subkey certified for signing, else the primary (as go-crypto does)."""
    now = time.time()
    primary = keys[0]
    if primary.packet is None or not primary.live(now):
        raise _Malformed("the key is revoked or expired")
    subkeys = [key.packet for key in keys[1:] if key.packet and key.can_sign and key.live(now)]
    if subkeys:
        return subkeys[-1]
    if primary.can_sign is False:
        raise _Malformed(
            "no key in it can sign: the primary key is not certified for signing and no "
            "live subkey is"
        )
    return primary.packet


def _pgp_signer(armored: bytes, passphrase: bytes | None, secret: str) -> Signer:
    where = f"secret '{secret}' key '{GPG_KEY_ENTRY}'"
    try:
        keys = _read_keys(_dearmor_private_key(armored))
        packet = _choose_signing_key(keys)
        fields = _secret_fields(packet, passphrase)
        if fields is None:
            raise _Malformed(
                f"the secret part of signing key {packet.fingerprint.hex().upper()} was not "
                "exported (gpg stub key)"
            )
        private = _private_key(packet, fields)
    except _NeedsPassphrase:
        raise SigningError(
            f"the PGP signing key in {where} is passphrase-protected but the secret has no "
            f"'{GPG_PASSPHRASE_ENTRY}' key"
        ) from None
    except _WrongPassphrase:
        raise SigningError(
            f"could not decrypt the PGP signing key in {where}: wrong passphrase in "
            f"'{GPG_PASSPHRASE_ENTRY}'"
        ) from None
    except (_Malformed, IndexError) as exc:
        problem = str(exc) if isinstance(exc, _Malformed) else "truncated OpenPGP data"
        raise SigningError(f"could not read the PGP signing key in {where}: {problem}") from None
    return _PgpSigner(packet, private).sign


@dataclass(frozen=True)
class _PgpSigner:
    packet: _SecretKeyPacket
    private: _PrivateKey

    def sign(self, payload: bytes) -> bytes:
        hashed_subpackets = _subpacket(2, int(time.time()).to_bytes(4, "big")) + _subpacket(
            33, b"\x04" + self.packet.fingerprint
        )
        hashed_part = (
            bytes([4, 0x00, self.packet.algorithm, _HASH_SHA256])
            + len(hashed_subpackets).to_bytes(2, "big")
            + hashed_subpackets
        )
        hasher = hashes.Hash(hashes.SHA256())
        hasher.update(payload)
        hasher.update(hashed_part)
        hasher.update(b"\x04\xff" + len(hashed_part).to_bytes(4, "big"))
        digest = hasher.finalize()
        unhashed = _subpacket(16, self.packet.fingerprint[-8:])
        body = (
            hashed_part
            + len(unhashed).to_bytes(2, "big")
            + unhashed
            + digest[:2]
            + self._values(digest)
        )
        return _armor("PGP SIGNATURE", _packet(_TAG_SIGNATURE, body), 64, crc=True)

    def _values(self, digest: bytes) -> bytes:
        key = self.private
        if isinstance(key, rsa.RSAPrivateKey):
            raw = key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            return _encode_mpi(int.from_bytes(raw, "big"))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.sign(digest)
            if self.packet.algorithm == _ALGO_ED25519:
                return raw
            return _encode_mpi(int.from_bytes(raw[:32], "big")) + _encode_mpi(
                int.from_bytes(raw[32:], "big")
            )
        r, s = decode_dss_signature(key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
        return _encode_mpi(r) + _encode_mpi(s)


def _subpacket(kind: int, value: bytes) -> bytes:
    return bytes([len(value) + 1, kind]) + value


def _packet(tag: int, body: bytes) -> bytes:
    if len(body) < 192:
        length = bytes([len(body)])
    elif len(body) < 8384:
        length = bytes([((len(body) - 192) >> 8) + 192, (len(body) - 192) & 0xFF])
    else:
        length = b"\xff" + len(body).to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body
