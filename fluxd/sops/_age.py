"""Just enough of age (C2SP age v1) to open a SOPS data key sealed to an X25519 recipient.

SOPS stores, per age recipient, an ASCII-armored age file whose payload is the 32-byte
data key. Opening it takes: the armor (strict base64 in 64-column lines between
``-----BEGIN/END AGE ENCRYPTED FILE-----``), the header (version line, ``->`` stanzas,
``---`` MAC line), the X25519 stanza unwrap (ECDH, HKDF-SHA256 with salt
``ephemeral || recipient`` and info ``age-encryption.org/v1/X25519``, ChaCha20-Poly1305
with a zero nonce), the header MAC (HMAC-SHA256 keyed by HKDF(file key, info ``header``))
and the STREAM payload (HKDF(file key, salt nonce, info ``payload``), 64 KiB chunks,
ChaCha20-Poly1305 with an 11-byte counter and a last-chunk flag).

Identities are the Bech32 ``AGE-SECRET-KEY-1...`` strings of an age key file; other
stanza types (scrypt, ssh-*, plugins) are skipped: SOPS only writes X25519 ones for
``age1...`` recipients.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["AgeError", "Identity", "decrypt", "parse_identities"]

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_SECRET_HRP = "age-secret-key-"
_RECIPIENT_HRP = "age"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
_ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = "-----END AGE ENCRYPTED FILE-----"
_CHUNK = 64 * 1024


class AgeError(Exception):
    """An age key or file could not be read, or no identity opens it."""


# -- Bech32 (BIP 173; age uses it without the 90-character limit) -----------------------------


def _polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit in range(5):
            if (top >> bit) & 1:
                checksum ^= generator[bit]
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise AgeError("mixed-case Bech32 string")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text):
        raise AgeError("malformed Bech32 string")
    hrp, data_part = text[:separator], text[separator + 1 :]
    try:
        values = [_BECH32_CHARSET.index(c) for c in data_part]
    except ValueError:
        raise AgeError("invalid character in Bech32 string") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise AgeError("bad Bech32 checksum")
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator = (accumulator << 5) | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or (accumulator << (8 - bits)) & 0xFF:
        raise AgeError("bad Bech32 padding")
    return hrp, bytes(out)


def _bech32_encode(hrp: str, data: bytes) -> str:
    accumulator, bits, values = 0, 0, []
    for byte in data:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append((accumulator >> bits) & 31)
    if bits:
        values.append((accumulator << (5 - bits)) & 31)
    polymod = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)


# -- identities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """An X25519 age identity and the ``age1...`` recipient it answers to."""

    private_key: X25519PrivateKey
    recipient: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        hrp, key = _bech32_decode(text.strip())
        if hrp != _SECRET_HRP or len(key) != 32:
            raise AgeError("not an AGE-SECRET-KEY-1... X25519 identity")
        private_key = X25519PrivateKey.from_private_bytes(key)
        public = private_key.public_key().public_bytes_raw()
        return cls(private_key, _bech32_encode(_RECIPIENT_HRP, public))


def parse_identities(text: str) -> list[Identity]:
    """The identities of an age key file (``#`` comments and blank lines are skipped)."""
    identities = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(Identity.parse(line))
        except AgeError as error:
            raise AgeError(f"line {number}: {error}") from None
    return identities


# -- the file format -------------------------------------------------------------------------


def _b64_raw(text: str) -> bytes:
    """age's base64: standard alphabet, no padding, canonical."""
    if "=" in text or "\r" in text or "\n" in text:
        raise AgeError("malformed base64 in header")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise AgeError("malformed base64 in header") from None
    if base64.b64encode(data).decode().rstrip("=") != text:
        raise AgeError("non-canonical base64 in header")
    return data


def _dearmor(text: str) -> bytes:
    lines = text.strip().splitlines()
    if len(lines) < 2 or lines[0].strip() != _ARMOR_BEGIN or lines[-1].strip() != _ARMOR_END:
        raise AgeError("not an armored age file (BEGIN/END AGE ENCRYPTED FILE lines)")
    body = "".join(line.strip() for line in lines[1:-1])
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise AgeError("malformed base64 in age armor") from None


@dataclass
class _Stanza:
    kind: str
    args: list[str]
    body: bytes


def _parse_header(data: bytes) -> tuple[list[_Stanza], bytes, bytes, int]:
    """Stanzas, the bytes the MAC covers, the MAC, and where the payload starts."""
    position = data.find(b"\n")
    if data[:position] != b"age-encryption.org/v1":
        raise AgeError("unsupported age version line")
    position += 1
    stanzas: list[_Stanza] = []
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            raise AgeError("truncated age header")
        line = data[position:end].decode("ascii", errors="replace")
        if line.startswith("--- "):
            mac = _b64_raw(line[4:])
            return stanzas, data[: position + 3], mac, end + 1
        if not line.startswith("-> "):
            raise AgeError("malformed age header line")
        words = line[3:].split(" ")
        position = end + 1
        body = bytearray()
        while True:
            end = data.find(b"\n", position)
            if end < 0:
                raise AgeError("truncated age stanza")
            chunk = data[position:end].decode("ascii", errors="replace")
            position = end + 1
            body += _b64_raw(chunk)
            if len(chunk) < 64:
                break
        stanzas.append(_Stanza(words[0], words[1:], bytes(body)))


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _unwrap_x25519(stanza: _Stanza, identity: Identity) -> bytes | None:
    if stanza.kind != "X25519" or len(stanza.args) != 1 or len(stanza.body) != 32:
        return None
    share = _b64_raw(stanza.args[0])
    if len(share) != 32:
        raise AgeError("malformed X25519 stanza")
    shared = identity.private_key.exchange(X25519PublicKey.from_public_bytes(share))
    recipient = identity.private_key.public_key().public_bytes_raw()
    wrap_key = _hkdf(shared, share + recipient, _X25519_LABEL)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(b"\x00" * 12, stanza.body, None)
    except InvalidTag:
        return None  # sealed to someone else


def _payload(file_key: bytes, data: bytes) -> bytes:
    if len(data) < 16:
        raise AgeError("truncated age payload")
    cipher = ChaCha20Poly1305(_hkdf(file_key, data[:16], b"payload"))
    encrypted = data[16:]
    chunks = [encrypted[i : i + _CHUNK + 16] for i in range(0, len(encrypted), _CHUNK + 16)]
    if not chunks:
        raise AgeError("truncated age payload")
    out = bytearray()
    for counter, chunk in enumerate(chunks):
        last = counter == len(chunks) - 1
        nonce = counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        try:
            out += cipher.decrypt(nonce, chunk, None)
        except InvalidTag:
            raise AgeError("age payload failed authentication (tampered or truncated)") from None
    return bytes(out)


def decrypt(armored: str, identities: list[Identity]) -> bytes | None:
    """The plaintext of an armored age file, or None when no identity is a recipient."""
    data = _dearmor(armored)
    stanzas, covered, mac, start = _parse_header(data)
    for identity in identities:
        for stanza in stanzas:
            file_key = _unwrap_x25519(stanza, identity)
            if file_key is None:
                continue
            expected = hmac.new(_hkdf(file_key, b"", b"header"), covered, hashlib.sha256)
            if not hmac.compare_digest(expected.digest(), mac):
                raise AgeError("age header MAC mismatch (the header was modified)")
            return _payload(file_key, data[start:])
    return None
