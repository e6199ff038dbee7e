"""Loading a client certificate from a Secret into an SSL context, through files.

Helm repositories, OCI registries and buckets may present a client certificate taken
from a Secret. Python's ssl module loads a certificate chain from files only, so the PEM
data goes to a private temporary directory (files mode 0600) for the moment of loading,
and the directory is removed at once, whatever happens.

That directory is in the general temporary directory (``TMPDIR``), which may be full or
read-only. A failure to write there is not a bad Secret nor a bug:
:class:`CertificateFilesFailed` names the directory and the system's error, and callers
report it with :data:`STORAGE_OPERATION_FAILED`, so the user knows where space is missing.
"""

from __future__ import annotations

import os
import ssl
import tempfile

__all__ = ["STORAGE_OPERATION_FAILED", "CertificateFilesFailed", "load_client_certificate"]

#: Flux's reason when a controller cannot write what it needs to its storage.
STORAGE_OPERATION_FAILED = "StorageOperationFailed"


class CertificateFilesFailed(Exception):
    """The client certificate could not be written to the temporary directory."""

    def __init__(self, directory: str, error: OSError) -> None:
        super().__init__(
            "cannot write the client certificate to a temporary file in "
            f"'{directory}' (TLS loads it from files only): {error.strerror or error}; "
            "free space there or point TMPDIR at a writable directory"
        )


def load_client_certificate(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Make ``context`` present ``cert`` with ``key``.

    Raises :class:`ssl.SSLError` (or ValueError) for PEM data that is not valid, and
    :class:`CertificateFilesFailed` when the temporary files cannot be written.
    """
    directory = tempfile.gettempdir()
    try:
        with tempfile.TemporaryDirectory(prefix="fluxd-tls-") as private:
            paths = (os.path.join(private, "tls.crt"), os.path.join(private, "tls.key"))
            for path, content in zip(paths, (cert, key), strict=True):
                with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    out.write(content)
            context.load_cert_chain(*paths)
    except ssl.SSLError:
        raise  # an OSError too, but about the data, not the disk
    except OSError as error:
        raise CertificateFilesFailed(directory, error) from error
