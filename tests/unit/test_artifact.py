"""The artifact tarball and the `status.artifact` fields."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fluxd.sources.artifact import Artifact, artifact_url, build_tarball, make_artifact

FILES = {
    "deploy/app.yaml": b"kind: Deployment\n",
    "a.txt": b"top\n",
    "a/b/c.yaml": b"deep\n",
    "kustomization.yaml": b"resources: [deploy/app.yaml]\n",
    "scripts/run.sh": b"#!/bin/sh\n",
    "dir-\u00e9t\u00e9/" + "n" * 120 + ".yaml": b"long non-ascii name\n",
}
COMMIT = "4d6f2a1c9b0e8f7a6d5c4b3a2918070605040302"


def artifact(files: dict[str, bytes] = FILES, **overrides: object) -> Artifact:
    args: dict[str, object] = {
        "kind": "GitRepository",
        "namespace": "flux-system",
        "name": "podinfo",
        "revision": f"main@sha1:{COMMIT}",
        "files": files,
        "base_url": "source-controller.flux-system.svc.cluster.local.",
        "now": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    args.update(overrides)
    return make_artifact(**args)  # type: ignore[arg-type]


def members(tarball: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        return tar.getmembers()


def test_same_tree_in_any_order_gives_the_same_digest() -> None:
    shuffled = dict(reversed(list(FILES.items())))
    assert list(shuffled) != list(FILES)
    first, second = artifact(FILES), artifact(shuffled, now=datetime.now(UTC))
    assert first.content() == second.content()
    assert first.digest == second.digest
    assert build_tarball(FILES) == build_tarball(shuffled)


def test_any_content_or_name_change_changes_the_digest() -> None:
    base = artifact().digest
    assert artifact({**FILES, "a.txt": b"top!\n"}).digest != base
    renamed = {("b.txt" if k == "a.txt" else k): v for k, v in FILES.items()}
    assert artifact(renamed).digest != base
    assert artifact(executables=["scripts/run.sh"]).digest != base


def test_tarball_round_trips_through_tarfile() -> None:
    tarball = artifact().content()
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for path, content in FILES.items():
            extracted = tar.extractfile(path)
            assert extracted is not None
            assert extracted.read() == content


def test_entries_follow_flux_walk_order_and_sanitised_headers() -> None:
    entries = members(build_tarball(FILES, executables=["scripts/run.sh"]))
    assert [m.name for m in entries] == [
        ".",
        "a",
        "a/b",
        "a/b/c.yaml",
        "a.txt",  # "a/" sorts before "a.txt" in a directory walk
        "deploy",
        "deploy/app.yaml",
        "dir-\u00e9t\u00e9",
        "dir-\u00e9t\u00e9/" + "n" * 120 + ".yaml",
        "kustomization.yaml",
        "scripts",
        "scripts/run.sh",
    ]
    for member in entries:
        assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (
            0,
            0,
            "",
            "",
            0,
        )
        if member.isdir():
            assert member.mode == 0o750
        elif member.name == "scripts/run.sh":
            assert member.mode == 0o700
        else:
            assert member.isfile()
            assert member.mode == 0o600


def test_gzip_header_has_no_timestamp() -> None:
    tarball = build_tarball(FILES)
    assert tarball[:3] == b"\x1f\x8b\x08"
    assert tarball[4:8] == b"\x00\x00\x00\x00"


def test_status_fields_use_flux_formats() -> None:
    made = artifact()
    path = f"gitrepository/flux-system/podinfo/{COMMIT}.tar.gz"
    assert made.path == path
    assert made.url == f"http://source-controller.flux-system.svc.cluster.local./{path}"
    assert made.digest == "sha256:" + hashlib.sha256(made.content()).hexdigest()
    assert made.size == len(made.content())
    assert made.to_status() == {
        "path": path,
        "url": made.url,
        "revision": f"main@sha1:{COMMIT}",
        "digest": made.digest,
        "lastUpdateTime": "2026-01-02T03:04:05Z",
        "size": made.size,
    }


def test_last_update_time_is_utc_seconds() -> None:
    local = datetime(2026, 1, 2, 5, 4, 5, 999, tzinfo=timezone(timedelta(hours=2)))
    made = artifact(now=local)
    assert made.last_update_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert made.last_update_time.tzinfo == UTC


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("source-controller.flux-system", "http://source-controller.flux-system/p/x.tar.gz"),
        ("localhost:9090/", "http://localhost:9090/p/x.tar.gz"),
        ("https://fluxd.example.com", "https://fluxd.example.com/p/x.tar.gz"),
        ("http://10.0.0.1:8080/", "http://10.0.0.1:8080/p/x.tar.gz"),
    ],
)
def test_url_composition(base: str, expected: str) -> None:
    assert artifact_url(base, "p/x.tar.gz") == expected


def test_file_name_from_revision_or_digest() -> None:
    tagged = artifact(revision=f"v1.2.3@sha1:{COMMIT}")
    assert tagged.path.endswith(f"/{COMMIT}.tar.gz")
    oci = artifact(kind="OCIRepository", revision="latest@sha256:" + "ab" * 32)
    assert oci.path == "ocirepository/flux-system/podinfo/" + "ab" * 32 + ".tar.gz"
    plain = artifact(revision="main")
    assert plain.path.endswith("/" + plain.digest.removeprefix("sha256:") + ".tar.gz")
    explicit = artifact(file_name="chart-1.0.0.tgz")
    assert explicit.path.endswith("/chart-1.0.0.tgz")


def test_files_are_an_immutable_snapshot() -> None:
    source = dict(FILES)
    made = artifact(source)
    source["new.yaml"] = b""
    assert "new.yaml" not in made.files
    with pytest.raises(TypeError):
        made.files["x"] = b""  # type: ignore[index]
    assert list(made.files) == sorted(FILES)


def test_empty_tree_is_a_valid_tarball() -> None:
    assert [m.name for m in members(build_tarball({}))] == ["."]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"/etc/passwd": b""}, "relative and normalised"),
        ({"a/../b": b""}, "relative and normalised"),
        ({"a//b": b""}, "relative and normalised"),
        ({"": b""}, "relative and normalised"),
        ({"a": b"", "a/b": b""}, "both a file and a directory"),
        ({"a/b": b"", "a": b""}, "both a file and a directory"),
    ],
)
def test_invalid_trees_are_rejected(files: dict[str, bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_tarball(files)


def test_unknown_executable_is_rejected() -> None:
    with pytest.raises(ValueError, match="not among the files"):
        build_tarball(FILES, executables=["missing.sh"])
