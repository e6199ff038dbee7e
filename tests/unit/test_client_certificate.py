"""A client certificate goes through temporary files: a directory that cannot take them
is named in the error, bad PEM data is still a TLS error, and no file stays behind."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

import pytest

from fluxd.sources.client_certificate import CertificateFilesFailed, load_client_certificate
from tests.gitservers import make_ca


def test_a_certificate_is_loaded_and_its_files_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = make_ca()
    context = ssl.create_default_context()

    load_client_certificate(context, client.server_cert_pem, client.server_key_pem)

    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_temporary_directory_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root may write anywhere, so the directory is made unusable as the child of a file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))
    client = make_ca()

    with pytest.raises(CertificateFilesFailed) as failure:
        load_client_certificate(
            ssl.create_default_context(), client.server_cert_pem, client.server_key_pem
        )

    message = str(failure.value)
    assert str(blocker / "tmp") in message
    assert "Not a directory" in message
    assert "TMPDIR" in message


def test_pem_data_that_is_not_a_certificate_stays_a_tls_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with pytest.raises(ssl.SSLError):
        load_client_certificate(ssl.create_default_context(), b"not a cert", b"not a key")

    assert list(tmp_path.iterdir()) == []
