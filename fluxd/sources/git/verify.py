"""Git commit and tag signature verification for `GitRepository.spec.verify`.

Flux (fluxcd/pkg `git/signatures`) accepts two signature formats and takes the trusted
keys from the data entries of the Secret named by `spec.verify.secretRef`:

- OpenPGP (`-----BEGIN PGP SIGNATURE-----`): each entry holds an armored public key
  block. A good signature is reported with the signer's *primary* key ID, 16 upper-case
  hex digits (go-crypto `KeyIdString`), even when a signing subkey made it.
- SSH (`-----BEGIN SSH SIGNATURE-----`, the SSHSIG format `git -c gpg.format=ssh`
  writes): each entry holds authorized-keys lines (`ssh-ed25519 AAAA... comment`;
  options or an allowed-signers principal before the key type are tolerated). The
  namespace must be `git`. A good signature is reported with the key's
  `SHA256:<base64>` fingerprint, as `ssh-keygen -l` prints it.

The OpenPGP side is implemented here on `cryptography` rather than through a PGP
package: verifying one detached v4 signature needs only armor, packet and MPI parsing,
and the maintained Python OpenPGP libraries either wrap `gpg` or lag behind
`cryptography`. Supported: RSA, EdDSA (Ed25519, legacy and RFC 9580 encodings) and
ECDSA (P-256/384/521) keys; SHA-2 hashes; binary-document signatures (what git makes).
Like go-crypto, a key that its own packets in the Secret mark as revoked, expired or
not certified for signing is refused, and so is an expired signature. Those packets'
signatures are not checked: the Secret is the root of trust, and honouring what it
says can only fail closed.

`split_commit_signature` and `split_tag_signature` cut a raw git object (the content
after the `<type> <size>\\0` header) into the signed payload and the signature, exactly
as `git verify-commit` / `git verify-tag` do, so fetcher and reconciler agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from fluxd.sources.git import wire

__all__ = [
    "VerificationError",
    "split_commit_signature",
    "split_tag_signature",
    "verify_signature",
]

PGP_SIGNATURE_BEGIN = b"-----BEGIN PGP SIGNATURE-----"
PGP_MESSAGE_BEGIN = b"-----BEGIN PGP MESSAGE-----"
SSH_SIGNATURE_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
X509_SIGNATURE_BEGIN = b"-----BEGIN SIGNED MESSAGE-----"
_SIGNATURE_STARTS = (
    PGP_SIGNATURE_BEGIN,
    PGP_MESSAGE_BEGIN,
    SSH_SIGNATURE_BEGIN,
    X509_SIGNATURE_BEGIN,
)


class VerificationError(Exception):
    """The signature is missing, malformed, untrusted or does not match the payload."""


# ---------------------------------------------------------------------------------------
# git object formats


def split_commit_signature(raw_commit: bytes) -> tuple[bytes, bytes | None]:
    """Split a raw commit into (signed payload, signature or None).

    The payload is the commit without its `gpgsig` header (and the header's
    continuation lines); the signature is the header value with the one-space
    continuation indent removed, ending in a newline.
    """
    header_end = raw_commit.find(b"\n\n")
    headers = raw_commit if header_end < 0 else raw_commit[: header_end + 1]
    body = b"" if header_end < 0 else raw_commit[header_end + 1 :]
    payload: list[bytes] = []
    signature: list[bytes] = []
    in_signature = False
    for line in headers.splitlines(keepends=True):
        if in_signature and line.startswith(b" "):
            signature.append(line[1:])
            continue
        in_signature = line.startswith(b"gpgsig ")
        if in_signature:
            signature.append(line[len(b"gpgsig ") :])
        else:
            payload.append(line)
    if not signature:
        return raw_commit, None
    sig = b"".join(signature)
    return b"".join(payload) + body, sig if sig.endswith(b"\n") else sig + b"\n"


def split_tag_signature(raw_tag: bytes) -> tuple[bytes, bytes | None]:
    """Split a raw annotated tag into (signed payload, signature or None).

    Like git's `parse_signed_buffer`, the signature starts at the last line that opens
    a signature block; everything before it is the payload.
    """
    start = None
    offset = 0
    for line in raw_tag.splitlines(keepends=True):
        if line.startswith(_SIGNATURE_STARTS):
            start = offset
        offset += len(line)
    if start is None:
        return raw_tag, None
    return raw_tag[:start], raw_tag[start:]


# ---------------------------------------------------------------------------------------
# entry point


def verify_signature(*, payload: bytes, signature: bytes | None, keys: Mapping[str, bytes]) -> str:
    """Verify `signature` over `payload` with the trusted `keys` (a Secret's data).

    Returns the identity of the key that verified: a PGP primary key ID or an SSH
    `SHA256:` fingerprint. Raises VerificationError with a message that says why not.
    """
    if not signature or not signature.strip():
        raise VerificationError("the object is not signed (no signature found)")
    if not payload:
        raise VerificationError("the signed payload is empty")
    if not keys:
        raise VerificationError("the verification Secret holds no keys")
    text = signature.lstrip()
    if text.startswith(PGP_SIGNATURE_BEGIN):
        return _verify_pgp(payload, text, keys)
    if text.startswith(SSH_SIGNATURE_BEGIN):
        return _verify_ssh(payload, text, keys)
    first = text.splitlines()[0][:60].decode("ascii", errors="replace")
    raise VerificationError(
        f"unsupported signature format (starts with {first!r}); "
        "only OpenPGP and SSH signatures can be verified"
    )


# ---------------------------------------------------------------------------------------
# armor


def _dearmor(text: bytes, label: str) -> Iterator[bytes]:
    """Yield the binary body of each `-----BEGIN <label>-----` block in `text`."""
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    lines = iter(text.decode("ascii", errors="replace").splitlines())
    for line in lines:
        if line.strip() != begin:
            continue
        body: list[str] = []
        checksum: str | None = None
        in_headers = True
        for inner in lines:  # continues the outer walk: blocks never nest
            line = inner.strip()
            if line == end:
                break
            if in_headers and (": " in line or not line):
                in_headers = bool(line)
                continue
            in_headers = False
            if line.startswith("=") and len(line) == 5:
                checksum = line[1:]
            elif line:
                body.append(line)
        else:
            raise VerificationError(f"armored {label} has no {end!r} line")
        try:
            data = base64.b64decode("".join(body), validate=True)
            expected = None if checksum is None else base64.b64decode(checksum, validate=True)
        except binascii.Error as exc:
            raise VerificationError(f"armored {label} is not valid base64: {exc}") from exc
        if expected is not None and wire.crc24(data).to_bytes(3, "big") != expected:
            raise VerificationError(f"armored {label} fails its CRC-24 checksum")
        yield data


# ---------------------------------------------------------------------------------------
# OpenPGP (RFC 4880 / RFC 9580, version 4 keys and signatures)

_HASHES: dict[int, Callable[[], hashes.HashAlgorithm]] = {
    8: hashes.SHA256,
    9: hashes.SHA384,
    10: hashes.SHA512,
    11: hashes.SHA224,
}
_HASH_NAMES = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160"}
_OID_ED25519 = bytes.fromhex("2b06010401da470f01")
_EC_CURVES: dict[bytes, Callable[[], ec.EllipticCurve]] = {
    bytes.fromhex("2a8648ce3d030107"): ec.SECP256R1,
    bytes.fromhex("2b81040022"): ec.SECP384R1,
    bytes.fromhex("2b81040023"): ec.SECP521R1,
}
_RSA_ALGOS = (1, 3)
_ALGO_ECDSA, _ALGO_EDDSA_LEGACY, _ALGO_ED25519 = 19, 22, 27

_PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class _PgpKey:
    key_id: bytes
    algorithm: int
    created: int
    public: _PublicKey | None  # None: an algorithm fluxd cannot verify with
    # From the key's own revocation and latest self/binding signature, when present.
    revoked: bool = False
    expires: int | None = None
    can_sign: bool = True


@dataclass(frozen=True)
class _PgpEntity:
    primary: _PgpKey
    keys: tuple[_PgpKey, ...]  # primary first, then subkeys


@dataclass(frozen=True)
class _PgpSignature:
    sig_type: int
    algorithm: int
    hash_algorithm: int
    hashed_part: bytes  # version byte through the hashed subpackets
    left16: bytes
    values: bytes  # the algorithm-specific signature fields
    issuer: bytes | None  # 8-byte key ID
    # Hashed subpackets only: the unhashed area is not covered by the signature.
    created: int = 0
    lifetime: int = 0  # seconds after `created`; 0 = forever
    key_lifetime: int = 0  # self-signatures: seconds after the key's creation
    key_flags: int | None = None


def _packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    try:
        yield from wire.packets(data)
    except wire.MalformedData as exc:
        raise VerificationError(f"malformed OpenPGP data: {exc}") from exc


def _read_mpi(data: bytes, i: int) -> tuple[int, int]:
    try:
        return wire.read_mpi(data, i)
    except wire.MalformedData as exc:
        raise VerificationError(f"malformed OpenPGP data: {exc}") from exc


def _parse_public_key(body: bytes) -> _PgpKey | None:
    if not body or body[0] != 4:
        return None  # v3/v5/v6 keys: not produced by git signing setups fluxd supports
    fingerprint = hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).digest()
    algorithm, fields = body[5], body[6:]
    public: _PublicKey | None = None
    try:
        if algorithm in _RSA_ALGOS:
            n, i = _read_mpi(fields, 0)
            e, _ = _read_mpi(fields, i)
            public = rsa.RSAPublicNumbers(e, n).public_key()
        elif algorithm in (_ALGO_EDDSA_LEGACY, _ALGO_ECDSA):
            oid = fields[1 : 1 + fields[0]]
            point, _ = _read_mpi(fields, 1 + fields[0])
            point_bytes = point.to_bytes((point.bit_length() + 7) // 8, "big")
            if algorithm == _ALGO_EDDSA_LEGACY and oid == _OID_ED25519:
                public = ed25519.Ed25519PublicKey.from_public_bytes(point_bytes[1:])  # 0x40
            elif algorithm == _ALGO_ECDSA and oid in _EC_CURVES:
                curve = _EC_CURVES[oid]()
                public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point_bytes)
        elif algorithm == _ALGO_ED25519:
            public = ed25519.Ed25519PublicKey.from_public_bytes(fields[:32])
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise VerificationError(f"malformed OpenPGP public key: {exc}") from exc
    created = int.from_bytes(body[1:5], "big")
    return _PgpKey(key_id=fingerprint[-8:], algorithm=algorithm, created=created, public=public)


_SELF_CERTIFICATIONS = frozenset({0x10, 0x11, 0x12, 0x13, 0x1F})
_SUBKEY_BINDING, _KEY_REVOCATION, _SUBKEY_REVOCATION = 0x18, 0x20, 0x28
_FLAG_SIGN = 0x02


def _parse_keyring(data: bytes) -> list[_PgpEntity]:
    """Keys with the state their own signatures declare (revoked, expiry, may sign).

    The signatures on the keys are not themselves verified: the Secret is the root of
    trust, and honouring a revocation or expiry found there can only fail closed.
    """
    entities: list[list[_PgpKey]] = []
    latest: dict[tuple[int, int], _PgpSignature] = {}
    revoked: set[tuple[int, int]] = set()
    current: tuple[int, int] | None = None  # (entity, key) the next signatures belong to
    for tag, body in _packets(data):
        if tag in (5, 7):
            raise VerificationError("a PGP *private* key was given; only public keys belong here")
        if tag == 6:
            key = _parse_public_key(body)
            current = None
            if key is not None:
                entities.append([key])
                current = (len(entities) - 1, 0)
        elif tag == 14:
            sub = _parse_public_key(body) if current is not None else None
            if sub is not None and entities:
                entities[-1].append(sub)
                current = (len(entities) - 1, len(entities[-1]) - 1)
            elif current is not None and current[1] > 0:
                current = None  # an unsupported subkey: skip its signatures
        elif tag == 2 and current is not None:
            sig = _parse_signature_packet(body)
            primary_id = entities[current[0]][0].key_id
            if sig is None or sig.issuer not in (None, primary_id):
                continue  # third-party certifications say nothing about the key
            is_primary = current[1] == 0
            if sig.sig_type == (_KEY_REVOCATION if is_primary else _SUBKEY_REVOCATION):
                revoked.add(current)
            elif (is_primary and sig.sig_type in _SELF_CERTIFICATIONS) or (
                not is_primary and sig.sig_type == _SUBKEY_BINDING
            ):
                previous = latest.get(current)
                if previous is None or sig.created >= previous.created:
                    latest[current] = sig
    result = []
    for e, keys in enumerate(entities):
        resolved = []
        for k, key in enumerate(keys):
            sig = latest.get((e, k))
            # go-crypto ignores subkeys without a binding signature
            can_sign = sig is not None if k else True
            if sig is not None and sig.key_flags is not None:
                can_sign = bool(sig.key_flags & _FLAG_SIGN)
            expires = key.created + sig.key_lifetime if sig and sig.key_lifetime else None
            resolved.append(
                replace(key, revoked=(e, k) in revoked, expires=expires, can_sign=can_sign)
            )
        result.append(_PgpEntity(primary=resolved[0], keys=tuple(resolved)))
    return result


def _subpackets(data: bytes) -> Iterator[tuple[int, bytes]]:
    i = 0
    while i < len(data):
        first = data[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            length, i = ((first - 192) << 8) + data[i + 1] + 192, i + 2
        else:
            length, i = int.from_bytes(data[i + 1 : i + 5], "big"), i + 5
        if length == 0 or i + length > len(data):
            raise VerificationError("malformed OpenPGP signature: bad subpacket")
        yield data[i] & 0x7F, data[i + 1 : i + length]
        i += length


def _parse_signature(data: bytes) -> _PgpSignature:
    signatures = [body for tag, body in _packets(data) if tag == 2]
    if len(signatures) != 1:
        raise VerificationError(f"expected one OpenPGP signature packet, found {len(signatures)}")
    sig = _parse_signature_packet(signatures[0])
    if sig is None:
        version = signatures[0][0] if signatures[0] else "?"
        raise VerificationError(f"unsupported OpenPGP signature version {version} (want 4)")
    return sig


def _parse_signature_packet(body: bytes) -> _PgpSignature | None:
    """Parse a v4 signature packet body; None for other versions."""
    if not body or body[0] != 4:
        return None
    hashed_len = int.from_bytes(body[4:6], "big")
    hashed_end = 6 + hashed_len
    unhashed_len = int.from_bytes(body[hashed_end : hashed_end + 2], "big")
    values_start = hashed_end + 2 + unhashed_len + 2
    if values_start > len(body):
        raise VerificationError("malformed OpenPGP signature: truncated packet")
    issuer = None
    times: dict[int, int] = {}
    key_flags = None
    for area in (body[hashed_end + 2 : hashed_end + 2 + unhashed_len], body[6:hashed_end]):
        for kind, value in _subpackets(area):
            if kind == 16 and len(value) == 8:
                issuer = value
            elif kind == 33 and len(value) == 21 and value[0] == 4:
                issuer = value[-8:]
    for kind, value in _subpackets(body[6:hashed_end]):
        if kind in (2, 3, 9) and len(value) == 4:
            times[kind] = int.from_bytes(value, "big")
        elif kind == 27 and value:
            key_flags = value[0]
    return _PgpSignature(
        sig_type=body[1],
        algorithm=body[2],
        hash_algorithm=body[3],
        hashed_part=body[:hashed_end],
        left16=body[values_start - 2 : values_start],
        values=body[values_start:],
        issuer=issuer,
        created=times.get(2, 0),
        lifetime=times.get(3, 0),
        key_lifetime=times.get(9, 0),
        key_flags=key_flags,
    )


def _pgp_check(
    key: _PgpKey, sig: _PgpSignature, digest: bytes, hash_alg: hashes.HashAlgorithm
) -> bool:
    public = key.public
    try:
        if isinstance(public, rsa.RSAPublicKey) and sig.algorithm in _RSA_ALGOS:
            s, _ = _read_mpi(sig.values, 0)
            raw = s.to_bytes((public.key_size + 7) // 8, "big")
            public.verify(raw, digest, padding.PKCS1v15(), Prehashed(hash_alg))
        elif isinstance(public, ed25519.Ed25519PublicKey) and sig.algorithm == _ALGO_EDDSA_LEGACY:
            r, i = _read_mpi(sig.values, 0)
            s, _ = _read_mpi(sig.values, i)
            public.verify(r.to_bytes(32, "big") + s.to_bytes(32, "big"), digest)
        elif isinstance(public, ed25519.Ed25519PublicKey) and sig.algorithm == _ALGO_ED25519:
            public.verify(sig.values[:64], digest)
        elif isinstance(public, ec.EllipticCurvePublicKey) and sig.algorithm == _ALGO_ECDSA:
            r, i = _read_mpi(sig.values, 0)
            s, _ = _read_mpi(sig.values, i)
            public.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hash_alg)))
        else:
            return False
    except (InvalidSignature, OverflowError, ValueError):
        return False
    return True


def _verify_pgp(payload: bytes, armored: bytes, keys: Mapping[str, bytes]) -> str:
    blocks = list(_dearmor(armored, "PGP SIGNATURE"))
    if not blocks:
        raise VerificationError("the PGP signature block is empty")
    try:
        sig = _parse_signature(blocks[0])
    except IndexError:
        raise VerificationError("malformed OpenPGP signature: truncated packet") from None
    if sig.sig_type != 0x00:
        raise VerificationError(
            f"unsupported OpenPGP signature type 0x{sig.sig_type:02x} (git signs binary documents)"
        )
    if sig.hash_algorithm not in _HASHES:
        name = _HASH_NAMES.get(sig.hash_algorithm, f"algorithm {sig.hash_algorithm}")
        raise VerificationError(f"the signature uses {name}, which is not accepted (need SHA-2)")
    hash_alg = _HASHES[sig.hash_algorithm]()
    hasher = hashes.Hash(hash_alg)
    hasher.update(payload)
    hasher.update(sig.hashed_part)
    hasher.update(b"\x04\xff" + len(sig.hashed_part).to_bytes(4, "big"))
    digest = hasher.finalize()

    entities: list[_PgpEntity] = []
    for entry, data in sorted(keys.items()):
        if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in data:
            continue
        try:
            for block in _dearmor(data, "PGP PUBLIC KEY BLOCK"):
                entities.extend(_parse_keyring(block))
        except (VerificationError, IndexError) as exc:
            raise VerificationError(
                f"Secret entry {entry!r} is not a usable PGP key: {exc}"
            ) from exc
    if not entities:
        raise VerificationError(
            "no trusted key matched: the signature is OpenPGP but the Secret holds no armored "
            f"PGP public key (entries: {', '.join(sorted(keys))})"
        )
    issuer = sig.issuer.hex().upper() if sig.issuer else "an unnamed key"
    candidates = [
        (entity, key)
        for entity in entities
        for key in entity.keys
        if sig.issuer is None or key.key_id == sig.issuer
    ]
    if not candidates:
        trusted = ", ".join(e.primary.key_id.hex().upper() for e in entities)
        raise VerificationError(
            f"no trusted key matched: the signature was made by key {issuer}, which is not "
            f"among the trusted PGP keys ({trusted})"
        )
    if sig.left16 != digest[:2]:
        raise VerificationError(
            f"the signature by key {issuer} does not match the payload (content was changed)"
        )
    for entity, key in candidates:
        if _pgp_check(key, sig, digest, hash_alg):
            _check_usable(entity, key, sig)
            return entity.primary.key_id.hex().upper()
    if all(key.public is None for _, key in candidates):
        raise VerificationError(
            f"key {issuer} uses OpenPGP public-key algorithm {candidates[0][1].algorithm}, "
            "which fluxd cannot verify (supported: RSA, Ed25519, ECDSA P-256/384/521)"
        )
    raise VerificationError(f"the signature by key {issuer} does not match the payload")


def _check_usable(entity: _PgpEntity, key: _PgpKey, sig: _PgpSignature) -> None:
    """Refuse what go-crypto refuses: revoked or expired keys, non-signing keys, old sigs."""
    now = datetime.now(UTC).timestamp()
    primary = entity.primary.key_id.hex().upper()
    owner = f"key {primary}"
    if key is not entity.primary:
        owner = f"subkey {key.key_id.hex().upper()} of key {primary}"
    if entity.primary.revoked:
        raise VerificationError(f"key {primary} is revoked")
    if key.revoked:
        raise VerificationError(f"{owner} is revoked")
    if not key.can_sign:
        raise VerificationError(f"{owner} is not certified for signing")
    for checked, label in ((entity.primary, f"key {primary}"), (key, owner)):
        if checked.expires is not None and checked.expires <= now:
            raise VerificationError(f"{label} expired on {_utc(checked.expires)}")
    if sig.lifetime and sig.created + sig.lifetime <= now:
        raise VerificationError(f"the signature expired on {_utc(sig.created + sig.lifetime)}")


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------------------------
# SSH signatures (OpenSSH PROTOCOL.sshsig)

_SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_SSHSIG_HASHES: dict[bytes, Callable[[], hashes.HashAlgorithm]] = {
    b"sha256": hashes.SHA256,
    b"sha512": hashes.SHA512,
}
_ECDSA_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "ecdsa-sha2-nistp256": hashes.SHA256,
    "ecdsa-sha2-nistp384": hashes.SHA384,
    "ecdsa-sha2-nistp521": hashes.SHA512,
}
_RSA_SIG_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "rsa-sha2-256": hashes.SHA256,
    "rsa-sha2-512": hashes.SHA512,
}


class _SshReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def raw(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise VerificationError("malformed SSH signature: truncated field")
        value, self._pos = self._data[self._pos : end], end
        return value

    def uint32(self) -> int:
        return int.from_bytes(self.raw(4), "big")

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)


def _ssh_fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _authorized_keys(keys: Mapping[str, bytes]) -> dict[bytes, tuple[str, str]]:
    """Trusted key blobs -> (key type, Secret entry), from authorized-keys style lines."""
    found: dict[bytes, tuple[str, str]] = {}
    for entry, data in sorted(keys.items()):
        if b"-----BEGIN PGP" in data:
            continue
        for raw_line in data.decode("utf-8", errors="replace").splitlines():
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            tokens = line.split()
            for index, token in enumerate(tokens[:-1]):
                if token in _SSH_KEY_TYPES:
                    try:
                        blob = base64.b64decode(tokens[index + 1], validate=True)
                    except binascii.Error as exc:
                        raise VerificationError(
                            f"Secret entry {entry!r} has a malformed {token} key: {exc}"
                        ) from exc
                    found[blob] = (token, entry)
                    break
    return found


def _verify_ssh(payload: bytes, armored: bytes, keys: Mapping[str, bytes]) -> str:
    blocks = list(_dearmor(armored, "SSH SIGNATURE"))
    if not blocks:
        raise VerificationError("the SSH signature block is empty")
    reader = _SshReader(blocks[0])
    if reader.raw(6) != b"SSHSIG":
        raise VerificationError("malformed SSH signature: missing SSHSIG magic")
    if (version := reader.uint32()) != 1:
        raise VerificationError(f"unsupported SSH signature version {version}")
    signer_blob = reader.string()
    namespace = reader.string()
    reserved = reader.string()
    hash_name = reader.string()
    sig_blob = reader.string()
    if namespace != b"git":
        raise VerificationError(
            f"the SSH signature has namespace {namespace.decode(errors='replace')!r}, "
            "git signatures use 'git'"
        )
    if hash_name not in _SSHSIG_HASHES:
        raise VerificationError(
            f"unsupported SSH signature hash {hash_name.decode(errors='replace')!r}"
        )

    fingerprint = _ssh_fingerprint(signer_blob)
    trusted = _authorized_keys(keys)
    if signer_blob not in trusted:
        known = ", ".join(_ssh_fingerprint(blob) for blob in trusted) or "none"
        raise VerificationError(
            f"no trusted key matched: the signature was made by SSH key {fingerprint}, which "
            f"is not among the trusted SSH keys ({known})"
        )
    key_type, entry = trusted[signer_blob]
    try:
        public = serialization.load_ssh_public_key(
            key_type.encode() + b" " + base64.b64encode(signer_blob)
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise VerificationError(
            f"SSH key {fingerprint} from Secret entry {entry!r} cannot be used: {exc}"
        ) from exc

    hash_alg = _SSHSIG_HASHES[hash_name]()
    hasher = hashes.Hash(hash_alg)
    hasher.update(payload)
    signed = b"SSHSIG" + b"".join(
        wire.ssh_string(part) for part in (namespace, reserved, hash_name, hasher.finalize())
    )
    sig_reader = _SshReader(sig_blob)
    sig_format = sig_reader.string().decode(errors="replace")
    sig_bytes = sig_reader.string()
    try:
        if isinstance(public, ed25519.Ed25519PublicKey) and sig_format == "ssh-ed25519":
            public.verify(sig_bytes, signed)
        elif isinstance(public, rsa.RSAPublicKey) and sig_format in _RSA_SIG_HASHES:
            public.verify(sig_bytes, signed, padding.PKCS1v15(), _RSA_SIG_HASHES[sig_format]())
        elif isinstance(public, ec.EllipticCurvePublicKey) and sig_format == key_type:
            values = _SshReader(sig_bytes)
            der = encode_dss_signature(values.mpint(), values.mpint())
            public.verify(der, signed, ec.ECDSA(_ECDSA_HASHES[key_type]()))
        else:
            raise VerificationError(
                f"unsupported SSH signature algorithm {sig_format!r} for a {key_type} key"
            )
    except InvalidSignature:
        raise VerificationError(
            f"the signature by SSH key {fingerprint} does not match the payload "
            "(content was changed)"
        ) from None
    return fingerprint
