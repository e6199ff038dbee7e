"""``fluxd push artifact`` and ``fluxd pull artifact`` against a real registry on loopback.

What a user sees: a pushed directory comes back byte for byte from a pull, annotated as
``flux push artifact`` annotates it (so an OCIRepository reports its origin), over plain
HTTP and over TLS with basic auth; bad input exits 1 with a message naming the problem.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fluxd.cli.main import main
from fluxd.sources import oci
from tests.gitservers import free_port
from tests.ociregistry import OCIRegistry


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


async def manifest_annotations(registry: OCIRegistry, url: str) -> dict[str, str]:
    reference = oci.parse_reference(url, insecure=registry.insecure)
    async with oci.RegistryClient(reference.repository, registry.auth) as client:
        resolved = await oci.resolve(client, tag=reference.tag)
        return dict(
            (await oci.pull(client, resolved.digest, media_type=None, limit=2**20)).annotations
        )


def test_push_then_pull_round_trips_a_directory(
    oci_registry: OCIRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    (source / "deploy").mkdir(parents=True)
    (source / "deploy" / "app.yaml").write_text("kind: ConfigMap\n")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    url = f"{oci_registry.fresh_url('cli')}:v1"

    code = main(
        [
            "push", "artifact", url, "--path", str(source), "--insecure-registry",
            "--source", "https://github.com/example/app", "--revision", "main@sha1:abc",
            "-a", "team=platform",
        ]
    )  # fmt: skip
    assert code == 0
    assert "✔ artifact successfully pushed to" in capsys.readouterr().err
    found = asyncio.run(manifest_annotations(oci_registry, url))
    assert found[oci.SOURCE_ANNOTATION] == "https://github.com/example/app"
    assert found[oci.REVISION_ANNOTATION] == "main@sha1:abc"
    assert found["team"] == "platform"
    assert oci.CREATED_ANNOTATION in found

    output = tmp_path / "pulled"
    assert main(["pull", "artifact", url, "-o", str(output), "--insecure-registry"]) == 0
    err = capsys.readouterr().err
    assert "✔ source https://github.com/example/app, revision main@sha1:abc" in err
    assert tree(output) == tree(source)
    assert (output / "run.sh").stat().st_mode & 0o100, "executables stay executable"


def test_tls_registry_with_credentials_and_ca(
    oci_registry_tls: OCIRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = oci_registry_tls
    assert registry.ca_pem is not None
    ca = tmp_path / "ca.pem"
    ca.write_bytes(registry.ca_pem)
    (tmp_path / "file.yaml").write_text("a: 1\n")
    url = f"{registry.fresh_url('cli-tls')}:latest"
    flags = ["--ca-file", str(ca), "--creds", f"{registry.username}:{registry.password}"]
    push = ["push", "artifact", url, "--path", str(tmp_path / "file.yaml")]
    push += ["--source", "s", "--revision", "r"]
    assert main([*push, *flags]) == 0
    assert main([*push, "--ca-file", str(ca)]) == 1
    err = capsys.readouterr().err
    assert "401" in err
    assert "check the registry credentials" in err
    output = tmp_path / "out"
    assert main(["pull", "artifact", url, "-o", str(output), *flags]) == 0
    assert tree(output) == {"file.yaml": b"a: 1\n"}


def test_bad_input_exits_1_naming_the_problem(
    oci_registry: OCIRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = oci_registry.fresh_url("cli-bad")
    push = ["push", "artifact", f"{url}:v1", "--insecure-registry", "--source", "s"]
    assert main([*push, "--revision", "r", "--path", str(tmp_path / "missing")]) == 1
    assert "is neither a directory nor a file" in capsys.readouterr().err

    pull = ["pull", "artifact", f"{url}:nope", "-o", str(tmp_path / "o"), "--insecure-registry"]
    assert main(pull) == 1
    assert "tag 'nope' does not exist" in capsys.readouterr().err

    dead = f"oci://127.0.0.1:{free_port()}/x:v1"
    assert main(["pull", "artifact", dead, "-o", str(tmp_path / "o"), "--insecure-registry"]) == 1
    assert "127.0.0.1" in capsys.readouterr().err

    assert main(["pull", "artifact", "https://r.io/x", "-o", str(tmp_path / "o")]) == 1
    assert "URL must be in format" in capsys.readouterr().err


def test_tag_list_and_diff_artifacts(
    oci_registry: OCIRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "app.yaml").write_text("kind: ConfigMap\n")
    repository = oci_registry.fresh_url("cli-tags")
    flags = ["--insecure-registry"]
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        push = ["push", "artifact", f"{repository}:{version}", "--path", str(source)]
        assert main([*push, "--source", "git@x", "--revision", f"{version}@sha1:1", *flags]) == 0
    capsys.readouterr()

    # tag: the same manifest under another tag, so the same digest.
    tag = ["tag", "artifact", f"{repository}:2.0.0", "--tag", "latest", "--tag", "stable"]
    assert main([*tag, *flags]) == 0
    err = capsys.readouterr().err.splitlines()
    bare = repository.removeprefix("oci://")
    assert err == [
        "► tagging artifact",
        f"✔ artifact tagged as {bare}:latest",
        f"✔ artifact tagged as {bare}:stable",
    ]

    # list: every tag with its digest, source and revision; filters by regex and semver.
    assert main(["list", "artifacts", repository, *flags]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["ARTIFACT", "DIGEST", "SOURCE", "REVISION"]
    by_tag = {row[0].rpartition(":")[2]: row for row in rows[1:]}
    assert sorted(by_tag) == ["1.0.0", "1.1.0", "2.0.0", "latest", "stable"]
    assert by_tag["latest"][1] == by_tag["2.0.0"][1] != by_tag["1.0.0"][1]
    assert by_tag["1.1.0"][2:] == ["git@x", "1.1.0@sha1:1"]
    assert main(["list", "artifacts", repository, "--filter-semver", ">=1.1.0", *flags]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert shown == [f"{bare}:2.0.0", f"{bare}:1.1.0"], "highest version first"
    assert main(["list", "artifacts", repository, "--filter-regex", "^st", *flags]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        f"{bare}:stable"
    ]

    # diff: nothing against what was pushed; a change names the file and exits 1.
    diff = ["diff", "artifact", f"{repository}:latest", "--path", str(source), *flags]
    assert main(diff) == 0
    assert capsys.readouterr().err == "✔ no changes detected\n"
    (source / "app.yaml").write_text("kind: Secret\n")
    (source / "new.yaml").write_text("a: 1\n")
    assert main(diff) == 1
    captured = capsys.readouterr()
    assert captured.out == "~ app.yaml\n+ new.yaml\n"
    assert "differs from" in captured.err
    assert "(2 file(s))" in captured.err

    # A tag that does not exist, and a bad filter, exit 1 naming them.
    assert main(["tag", "artifact", f"{repository}:9.9.9", "--tag", "x", *flags]) == 1
    assert "9.9.9" in capsys.readouterr().err
    assert main(["list", "artifacts", repository, "--filter-regex", "(", *flags]) == 1
    assert "--filter-regex '(' is not valid" in capsys.readouterr().err
