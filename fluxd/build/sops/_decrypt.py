"""Decrypting a SOPS-encrypted Kubernetes object, as kustomize-controller does before apply.

A SOPS file is the original document with every selected leaf value replaced by
``ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<str|int|float|bool|bytes|comment>]``
and a ``sops`` key holding the metadata: the 32-byte data key sealed once per recipient
(``age`` / ``pgp`` lists, or ``key_groups``), ``lastmodified``, the encrypted ``mac`` and
the rule that chose which values were encrypted (``unencrypted_suffix`` (default
``_unencrypted``), ``encrypted_suffix``, ``unencrypted_regex``, ``encrypted_regex``,
each tested against every key on the value's path; the comment-based rules need the
comments a loaded object no longer has, so such files are read as "whatever is ENC[]").

Decryption, following ``sops``' tree walk exactly:

1. open the data key with one of the identities from Flux's decryption Secret
   (``*.agekey`` entries: age identities; ``*.asc`` entries: armored PGP private keys);
2. walk the tree in document order; a value the rule selects is AES-256-GCM-opened with
   the data key, the 32-byte IV, and the path of map keys joined by ``:`` plus a trailing
   ``:`` as additional data (list items share their parent's path), then restored to its
   type; an empty string stays empty (sops never encrypts ``""``);
3. with ``verify_mac``, feed each value (encrypted or not, unless ``mac_only_encrypted``)
   to SHA-512 in that order, in sops' byte form (``True``/``False`` for booleans, Go's
   shortest ``%f`` for floats; ``null`` is skipped), and compare the upper-case hex digest
   with the ``mac``, itself AES-GCM-opened with ``lastmodified`` as additional data.

kustomize-controller does not check the MAC (its ``checkSopsMac`` is off): kustomize
adds labels, a namespace, reorders keys, and any of that breaks a MAC computed over the
file. So ``verify_mac`` defaults to off here too. Each encrypted value is still
authenticated on its own (GCM tag, path as additional data), and a cleartext value where
the rule expects ciphertext is an error, as in Flux. For the MAC the object must keep the
key order of the file (every YAML loader in fluxd preserves it). Encrypted files (dotenv,
JSON, binary) are read and written by ``_files`` on top of :func:`decrypt_tree`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fluxd.build.sops import _age

__all__ = [
    "Comment",
    "CommentKey",
    "DecryptionError",
    "decrypt_object",
    "decrypt_tree",
    "is_encrypted",
]

_ENC = re.compile(
    r"ENC\[AES256_GCM,data:(?P<data>.*),iv:(?P<iv>.+),tag:(?P<tag>.+),type:(?P<type>.+)\]",
    re.DOTALL,
)
_DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
_MAC_ONLY_ENCRYPTED_SEED = hashlib.sha256(b"sops").digest()


class DecryptionError(Exception):
    """A SOPS object could not be decrypted; the message names the object and the step."""


class Comment(str):
    """A comment line of a dotenv file, kept in the tree at its position (never in the MAC)."""


@dataclass(frozen=True)
class CommentKey:
    """The tree key of the n-th comment line (comments have no key of their own)."""

    index: int


def is_encrypted(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` carries SOPS metadata (a ``sops`` mapping with a ``mac``)."""
    metadata = obj.get("sops")
    return isinstance(metadata, Mapping) and bool(metadata.get("mac"))


def _object_ref(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    kind, name, namespace = obj.get("kind"), metadata.get("name"), metadata.get("namespace")
    if not all(isinstance(part, str) and not part.startswith("ENC[") for part in (kind, name)):
        # kind and name are encrypted too unless an encrypted_regex spares them.
        return "SOPS-encrypted object"
    if isinstance(namespace, str) and not namespace.startswith("ENC["):
        return f"{kind}/{namespace}/{name}"
    return f"{kind}/{name}"


# -- the data key ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    kind: str  # "age" or "pgp"
    name: str  # the age recipient or the PGP fingerprint
    enc: str


def _recipients(metadata: Mapping[str, Any]) -> list[_Recipient]:
    groups: list[Mapping[str, Any]] = [metadata]
    key_groups = metadata.get("key_groups")
    if isinstance(key_groups, list):
        groups = [group for group in key_groups if isinstance(group, Mapping)]
        if len(groups) > 1:
            raise DecryptionError(
                "Shamir key groups (more than one key_groups entry) are not supported; "
                "re-encrypt the file with a single key group"
            )
    found = []
    for group in groups:
        for kind, name_field in (("age", "recipient"), ("pgp", "fp")):
            for entry in group.get(kind) or []:
                if isinstance(entry, Mapping) and isinstance(entry.get("enc"), str):
                    found.append(_Recipient(kind, str(entry.get(name_field, "?")), entry["enc"]))
    return found


def _data_key(recipients: Sequence[_Recipient], keys: Mapping[str, bytes]) -> bytes:
    identities: list[_age.Identity] = []
    pgp_keys: list[bytes] = []
    for name, value in keys.items():
        if name.endswith(".agekey"):
            try:
                identities.extend(_age.parse_identities(value.decode()))
            except (_age.AgeError, UnicodeDecodeError) as error:
                raise DecryptionError(
                    f"decryption key '{name}' is not an age key: {error}"
                ) from None
        elif name.endswith(".asc"):
            pgp_keys.append(value)
    failures: list[str] = []
    for recipient in recipients:
        if recipient.kind == "age" and identities:
            try:
                data_key = _age.decrypt(recipient.enc, identities)
            except _age.AgeError as error:
                failures.append(f"age recipient {recipient.name}: {error}")
                continue
            if data_key is not None:
                return data_key
    pgp = [recipient for recipient in recipients if recipient.kind == "pgp"]
    if pgp and pgp_keys:
        data_key = _pgp_decrypt(pgp, pgp_keys, failures)
        if data_key is not None:
            return data_key
    listed = ", ".join(f"{r.kind} {r.name}" for r in recipients) or "none"
    offered = ", ".join(sorted(keys)) or "none"
    detail = f" ({'; '.join(failures)})" if failures else ""
    raise DecryptionError(
        f"no decryption key matches the file's recipients [{listed}]{detail}; the "
        f"decryption Secret holds [{offered}]: add the private key of one recipient as a "
        "'<name>.agekey' (age) or '<name>.asc' (PGP) entry"
    )


def _pgp_decrypt(
    recipients: Sequence[_Recipient], armored_keys: Sequence[bytes], failures: list[str]
) -> bytes | None:
    """Open a PGP-sealed data key with ``gpg`` in a throwaway, private GNUPGHOME.

    Flux does the same (it imports ``.asc`` entries with the gpg binary, and sops decrypts
    through it): gpg is the maintained OpenPGP implementation, and reimplementing OpenPGP's
    packets and key types in Python is not worth the attack surface.
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        failures.append("gpg is not installed, so PGP recipients cannot be used")
        return None
    try:
        scratch = tempfile.TemporaryDirectory(prefix="fluxd-gnupg-")
    except OSError as error:
        raise _no_room_for_keys(error) from None
    with scratch as home:
        try:
            return _gpg_open(gpg, home, recipients, _write_keys(home, armored_keys), failures)
        finally:
            # gpg starts an agent for the secret keys: stop it before its home goes away.
            gpgconf = shutil.which("gpgconf")
            if gpgconf is not None:
                subprocess.run(
                    [gpgconf, "--homedir", home, "--kill", "all"],
                    capture_output=True,
                    check=False,
                    timeout=30,
                )


def _write_keys(home: str, armored_keys: Sequence[bytes]) -> list[str]:
    """The keys as files of the private GNUPGHOME, for gpg to import.

    Written by fluxd rather than piped to gpg, so a temporary directory without room is
    reported as that (gpg's own message would end in "no matching secret key").
    """
    os.chmod(home, 0o700)
    paths = []
    try:
        for number, armored in enumerate(armored_keys):
            path = os.path.join(home, f"key-{number}.asc")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                out.write(armored)
            paths.append(path)
    except OSError as error:
        raise _no_room_for_keys(error) from None
    return paths


def _no_room_for_keys(error: OSError) -> DecryptionError:
    return DecryptionError(
        "cannot write the PGP keys to a private GNUPGHOME in the temporary directory "
        f"'{tempfile.gettempdir()}': {error.strerror or error}; free space there or point "
        "TMPDIR at a writable directory"
    )


def _gpg_open(
    gpg: str,
    home: str,
    recipients: Sequence[_Recipient],
    key_files: Sequence[str],
    failures: list[str],
) -> bytes | None:
    base = [gpg, "--homedir", home, "--batch", "--quiet", "--no-tty"]
    base += ["--pinentry-mode", "loopback"]
    for key_file in key_files:
        imported = subprocess.run(
            [*base, "--import", key_file], capture_output=True, check=False, timeout=60
        )
        if imported.returncode != 0:
            reason = imported.stderr.decode(errors="replace").strip()
            failures.append(f"a .asc key could not be imported: {reason}")
    for recipient in recipients:
        opened = subprocess.run(
            [*base, "--decrypt"],
            input=recipient.enc.encode(),
            capture_output=True,
            check=False,
            timeout=60,
        )
        if opened.returncode == 0:
            return opened.stdout
        failures.append(f"pgp {recipient.name}: no matching secret key")
    return None


# -- values ----------------------------------------------------------------------------------


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise DecryptionError(f"malformed base64 in the {what} of an ENC[] value") from None


def _open_value(value: str, key: bytes, aad: str, where: str) -> Any:
    if value == "":
        return ""
    match = _ENC.fullmatch(value)
    if match is None:
        raise DecryptionError(f"value at '{where}' is not in sops' ENC[AES256_GCM,...] format")
    iv = _b64(match["iv"], "iv")
    sealed = _b64(match["data"], "data") + _b64(match["tag"], "tag")
    try:
        plaintext = AESGCM(key).decrypt(iv, sealed, aad.encode())
    except (InvalidTag, ValueError):
        raise DecryptionError(
            f"value at '{where}' failed authentication: it was modified, moved to another "
            "key, or encrypted with a different data key"
        ) from None
    kind = match["type"]
    try:
        text = plaintext.decode(errors="surrogateescape")  # binary files need not be UTF-8
        if kind == "str":
            return text
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return _parse_bool(text)
        if kind in ("bytes", "comment"):
            return text
    except ValueError:
        raise DecryptionError(f"value at '{where}' does not decode as type {kind}") from None
    raise DecryptionError(f"value at '{where}' has unknown sops type '{kind}'")


def _parse_bool(text: str) -> bool:
    # Go's strconv.ParseBool
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def _mac_bytes(value: Any) -> bytes:
    """A value as sops' ``ToBytes`` feeds it to the MAC."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text.encode()
    if isinstance(value, bytes):
        return value
    return str(value).encode(errors="surrogateescape")


# -- the walk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    unencrypted_suffix: str
    encrypted_suffix: str
    unencrypted_regex: re.Pattern[str] | None
    encrypted_regex: re.Pattern[str] | None
    mac_only_encrypted: bool
    # Comment rules pick values by the comments above them, which a loaded object no
    # longer has; such files are read by what is actually encrypted.
    by_comments: bool

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> _Rule:
        def text(name: str) -> str:
            value = metadata.get(name)
            return value if isinstance(value, str) else ""

        def pattern(name: str) -> re.Pattern[str] | None:
            source = text(name)
            if not source:
                return None
            try:
                return re.compile(source)
            except re.error as error:
                raise DecryptionError(
                    f"sops metadata {name} '{source}' is invalid: {error}"
                ) from None

        unencrypted_suffix = text("unencrypted_suffix")
        chosen = (
            "encrypted_suffix",
            "unencrypted_regex",
            "encrypted_regex",
            "unencrypted_comment_regex",
            "encrypted_comment_regex",
        )
        if not unencrypted_suffix and not any(text(name) for name in chosen):
            unencrypted_suffix = _DEFAULT_UNENCRYPTED_SUFFIX
        return cls(
            unencrypted_suffix,
            text("encrypted_suffix"),
            pattern("unencrypted_regex"),
            pattern("encrypted_regex"),
            metadata.get("mac_only_encrypted") in (True, "true"),
            bool(text("unencrypted_comment_regex") or text("encrypted_comment_regex")),
        )

    def selects(self, path: Sequence[str], value: Any) -> bool:
        if self.by_comments:
            return isinstance(value, str) and value.startswith("ENC[")
        encrypted = True
        if self.unencrypted_suffix and any(p.endswith(self.unencrypted_suffix) for p in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(p.endswith(self.encrypted_suffix) for p in path)
        if self.unencrypted_regex and any(self.unencrypted_regex.search(p) for p in path):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(self.encrypted_regex.search(p) for p in path)
        return encrypted


def _walk(node: Any, path: list[str]) -> Iterator[tuple[list[str], Any, Any, Any]]:
    """Yield ``(path, container, key, value)`` for every leaf, in document order.

    Map keys extend the path, list items keep their parent's; ``null`` is no leaf (sops
    neither encrypts it nor feeds it to the MAC).
    """
    entries = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, value in entries:
        mapped = isinstance(node, dict) and not isinstance(key, CommentKey)
        child = [*path, str(key)] if mapped else path
        if isinstance(value, dict | list):
            yield from _walk(value, child)
        elif value is not None:
            yield child, node, key, value


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy(value) for value in node]
    return node


def decrypt_object(
    obj: Mapping[str, Any], keys: Mapping[str, bytes], *, verify_mac: bool = False
) -> dict[str, Any]:
    """``obj`` decrypted, with its ``sops`` key removed.

    ``keys`` is the data of the Kustomization's decryption Secret. An object without SOPS
    metadata is returned as a plain copy. ``verify_mac`` also checks the file's MAC, which
    Flux does not (see the module notes). Raises :class:`DecryptionError` naming the
    object and what failed (no matching key, with the recipients found; a modified or
    moved value; a malformed value; a MAC mismatch).
    """
    tree = {key: _copy(value) for key, value in obj.items() if key != "sops"}
    if not is_encrypted(obj):
        return tree
    try:
        decrypt_tree(tree, obj["sops"], keys, verify_mac=verify_mac)
    except DecryptionError as error:
        raise DecryptionError(f"{_object_ref(obj)}: SOPS decryption failed: {error}") from None
    return tree


def decrypt_tree(
    tree: dict[Any, Any],
    metadata: Mapping[str, Any],
    keys: Mapping[str, bytes],
    *,
    verify_mac: bool = False,
) -> None:
    """Decrypt ``tree`` (a loaded SOPS document without its metadata) in place."""
    data_key = _data_key(_recipients(metadata), keys)
    if len(data_key) != 32:
        raise DecryptionError(f"the data key is {len(data_key)} bytes, sops uses 32")
    rule = _Rule.from_metadata(metadata)
    digest = hashlib.sha512()
    if rule.mac_only_encrypted:
        # sops seeds this MAC so that it can never equal the all-values one.
        digest.update(_MAC_ONLY_ENCRYPTED_SEED)
    for path, container, key, value in list(_walk(tree, [])):
        where = ":".join(path) if path else "<root>"
        aad = ":".join(path) + ":"
        selected = rule.selects(path, value)
        if isinstance(value, Comment):
            # sops keeps a comment it cannot open: older versions left comments clear.
            if selected:
                with contextlib.suppress(DecryptionError):
                    container[key] = Comment(_open_value(value, data_key, aad, where))
            continue
        plain = value
        if selected:
            if not isinstance(value, str):
                kind = type(value).__name__
                raise DecryptionError(f"value at '{where}' should be encrypted but is a {kind}")
            plain = _open_value(value, data_key, aad, where)
            container[key] = plain
        if selected or not rule.mac_only_encrypted:
            digest.update(_mac_bytes(plain))
    if verify_mac:
        _verify_mac(metadata, data_key, digest.hexdigest().upper())


def _verify_mac(metadata: Mapping[str, Any], data_key: bytes, computed: str) -> None:
    lastmodified = metadata.get("lastmodified")
    if isinstance(lastmodified, datetime):  # a YAML loader that resolves timestamps
        lastmodified = lastmodified.isoformat().replace("+00:00", "Z")
    if not isinstance(lastmodified, str):
        raise DecryptionError("sops metadata has no lastmodified")
    mac = metadata.get("mac")
    if not isinstance(mac, str):
        raise DecryptionError("sops metadata has no mac")
    try:
        stored = _open_value(mac, data_key, lastmodified, "sops.mac")
    except DecryptionError:
        raise DecryptionError(
            "the MAC does not open with the data key and lastmodified: the sops metadata "
            "was modified"
        ) from None
    if not isinstance(stored, str) or not hmac.compare_digest(stored, computed):
        raise DecryptionError(
            "MAC mismatch: the file was modified after it was encrypted (values added, "
            "removed, reordered or edited without sops); re-encrypt it with sops"
        )
