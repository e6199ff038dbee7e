"""Opening the age-sealed SOPS data key with the identities of a decryption Secret.

SOPS stores, per age recipient, an ASCII-armored age file whose payload is the 32-byte
data key; Flux's decryption Secret holds age key files (``*.agekey`` entries). The age
format itself (armor, header and its MAC, X25519 stanza unwrap, STREAM payload) is
pyrage's, the Python binding of the Rust ``age`` crate (rage): a maintained
implementation of the spec sops' Go ``filippo.io/age`` implements, and it opens sops'
files as ``sops`` does. It is imported on first use, so a daemon whose Kustomizations
have no ``decryption`` never loads it.

Three small parts stay here, where pyrage does not do what Flux and sops do:

* key files: pyrage parses one ``AGE-SECRET-KEY-1...`` string; an age key file
  (``#`` comments, blank lines, several keys) is read line by line here, as Go's
  ``age.ParseIdentities`` reads it, so that an error names the line (never the key);
* armor only: sops reads the ``enc`` value through Go's ``armor.NewReader``, so only
  armored files open. pyrage also accepts binary age files, and for text that is
  neither reports a read error ("failed to fill whole buffer"): :func:`decrypt` refuses
  what sops refuses, saying what it expected;
* "not a recipient": pyrage raises one :class:`pyrage.DecryptError` for every failure.
  rage's "No matching keys found" (no identity opens a stanza) is told apart by its text
  and returned as ``None``, so the caller goes on with the file's other recipients; any
  other error is a damaged file (bad armor or header, header MAC, payload tag). Were that
  text to change, a wrong key would still fail the same way, with rage's words added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyrage import x25519

__all__ = ["AgeError", "Identity", "decrypt", "parse_identities"]

_ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
# rage's DecryptError::NoMatchingKeys, as pyrage passes it on (rage's en-US text).
_NO_MATCHING_KEYS = "No matching keys found"


class AgeError(Exception):
    """An age key or file could not be read, or a matching identity could not open it."""


@dataclass(frozen=True)
class Identity:
    """An X25519 age identity and the ``age1...`` recipient it answers to."""

    key: x25519.Identity
    recipient: str

    @classmethod
    def parse(cls, text: str) -> Identity:
        from pyrage import IdentityError, x25519

        try:
            key = x25519.Identity.from_str(text.strip())
        except IdentityError as error:
            raise AgeError(f"not an AGE-SECRET-KEY-1... X25519 identity ({error})") from None
        return cls(key, str(key.to_public()))


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


def decrypt(armored: str, identities: Sequence[Identity]) -> bytes | None:
    """The plaintext of an armored age file, or None when no identity is a recipient."""
    if not armored.lstrip().startswith(_ARMOR_BEGIN):
        raise AgeError(f"not an armored age file (it must start with '{_ARMOR_BEGIN}')")
    import pyrage

    try:
        return pyrage.decrypt(armored.encode(), [identity.key for identity in identities])
    except pyrage.DecryptError as error:
        if str(error) == _NO_MATCHING_KEYS:
            return None
        raise AgeError(
            f"age decryption failed: {error} (the file is malformed, truncated or was modified)"
        ) from None
