"""SOPS decryption for Kustomizations (Flux ``spec.decryption.provider: sops``).

The reconciler passes each built object and the data of the decryption Secret to
:func:`decrypt_object` (whole encrypted objects) and :func:`decrypt_secret_data` (Secrets
whose ``data`` entries are encrypted files); before the build, secretGenerator sources and
patch files go through :func:`decrypt_file`. Objects and files without SOPS metadata come
back unchanged. Key sources: age X25519 identities (``*.agekey`` entries, opened with
pyrage, imported on first use) and PGP private keys (``*.asc`` entries, opened with ``gpg`` in
a temporary GNUPGHOME). PGP runs a subprocess: call from a worker thread in async code.
"""

from fluxd.build.sops._decrypt import DecryptionError, decrypt_object, is_encrypted
from fluxd.build.sops._files import (
    Format,
    decrypt_file,
    decrypt_secret_data,
    detect_format,
    format_for_path,
    has_marker,
)

__all__ = [
    "DecryptionError",
    "Format",
    "decrypt_file",
    "decrypt_object",
    "decrypt_secret_data",
    "detect_format",
    "format_for_path",
    "has_marker",
    "is_encrypted",
]
