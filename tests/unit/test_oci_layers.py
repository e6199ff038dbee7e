"""Layer selection and the safe extraction of a layer's tarball."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from fluxd.sources import oci


def tarball(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return gzip.compress(out.getvalue())


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    return info


def test_files_are_unpacked_with_clean_paths_and_executables() -> None:
    data = tarball(
        (entry("./", tarfile.DIRTYPE), b""),
        (entry("./deploy/app.yaml"), b"a: 1"),
        (entry("bin/run.sh", mode=0o755), b"#!/bin/sh"),
    )
    extracted = oci.extract_tarball(data, limit=1024)
    assert extracted.files == {"deploy/app.yaml": b"a: 1", "bin/run.sh": b"#!/bin/sh"}
    assert extracted.executables == {"bin/run.sh"}


@pytest.mark.parametrize("name", ["../evil.yaml", "/etc/evil", "a/../../evil"])
def test_entries_outside_the_root_fail_naming_the_entry(name: str) -> None:
    data = tarball((entry("ok.yaml"), b"ok"), (entry(name), b"evil"))
    with pytest.raises(oci.RegistryError) as raised:
        oci.extract_tarball(data, limit=1024)
    assert raised.value.reason == oci.LAYER_OPERATION_FAILED
    assert f"tar entry '{name}' points outside the artifact's root" in str(raised.value)


def test_links_are_skipped_so_none_points_out() -> None:
    data = tarball(
        (entry("passwd", tarfile.SYMTYPE, link="/etc/passwd"), b""),
        (entry("hard", tarfile.LNKTYPE, link="../../etc/shadow"), b""),
        (entry("kept.yaml"), b"k"),
    )
    assert oci.extract_tarball(data, limit=1024).files == {"kept.yaml": b"k"}


def test_unpacked_size_is_bounded() -> None:
    data = tarball((entry("big"), b"x" * 2048))
    with pytest.raises(oci.RegistryError, match="the layer unpacks to over"):
        oci.extract_tarball(data, limit=1024)


def test_a_layer_that_is_no_gzip_tarball_fails() -> None:
    with pytest.raises(oci.RegistryError, match="failed to extract layer contents"):
        oci.extract_tarball(b"not gzip", limit=1024)


def test_layer_selection_by_media_type_or_first() -> None:
    manifest = {
        "layers": [
            {"mediaType": "application/x-a", "digest": "sha256:a", "size": 1},
            {"mediaType": oci.CONTENT_MEDIA_TYPE, "digest": "sha256:b", "size": 2},
        ]
    }
    assert oci.select_layer(manifest, None).digest == "sha256:a"
    assert oci.select_layer(manifest, oci.CONTENT_MEDIA_TYPE).digest == "sha256:b"
    with pytest.raises(oci.RegistryError, match="failed to find layer with media type 'x/y'"):
        oci.select_layer(manifest, "x/y")
    with pytest.raises(oci.RegistryError, match="no layers found in artifact"):
        oci.select_layer({"layers": []}, None)
